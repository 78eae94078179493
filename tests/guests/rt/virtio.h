/* SPDX-License-Identifier: Apache-2.0 */
/* A modern virtio-pci driver core (virtio 1.2, 4.1 and 2.7) for ring 3. */
#ifndef RT_VIRTIO_H
#define RT_VIRTIO_H
#include "pci.h"

#define VIRTIO_VENDOR 0x1af4
#define VIRTIO_PCI_DEVICE(id) (0x1040 + (id))

#define VIRTIO_F_INDIRECT_DESC (1ull << 28)
#define VIRTIO_F_EVENT_IDX (1ull << 29)
#define VIRTIO_F_VERSION_1 (1ull << 32)

#define VIRTIO_S_ACKNOWLEDGE 1
#define VIRTIO_S_DRIVER 2
#define VIRTIO_S_DRIVER_OK 4
#define VIRTIO_S_FEATURES_OK 8
#define VIRTIO_S_NEEDS_RESET 64
#define VIRTIO_S_FAILED 128

#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2
#define VIRTQ_DESC_F_INDIRECT 4
#define VIRTQ_INDIRECT_MAX 32		/* descriptors in one indirect table */

#define VIRTIO_MAX_QUEUES 9		/* virtio_net: 4 queue pairs + control */
#define VIRTIO_NO_VECTOR 0xffff
/* CPU vectors for MSI-X, one counter each; clear of TIMER_VECTOR (0x40)
 * so a guest may run the LAPIC timer alongside. */
#define VIRTIO_VEC_BASE 0x50
#define VIRTIO_NVEC 16

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtq_used_elem {
	uint32_t id;
	uint32_t len;
};

struct vdev;

struct vq {
	struct vdev *dev;
	uint16_t index, size;
	volatile struct virtq_desc *desc;
	volatile uint16_t *avail;		/* flags, idx, ring[size], used_event */
	volatile uint16_t *used;		/* flags, idx, then elems */
	uint16_t avail_idx, last_used, free_head, num_free;
	uint64_t notify;			/* MMIO address of this queue's doorbell */
	int cpu_vector;				/* -1: no MSI-X vector accepted */
	bool event_idx;				/* VIRTIO_F_EVENT_IDX negotiated */
	volatile struct virtq_desc *indirect;	/* VIRTQ_INDIRECT_MAX per head, or NULL */
	uint16_t kicked_idx;			/* avail idx at the last doorbell */
	uint64_t submitted, completed, kicks, kicks_suppressed;
};

struct vdev {
	struct pci_dev pci;
	uint64_t common, notify, isr, device;	/* MMIO addresses of the capabilities */
	uint32_t device_len, notify_mult;
	uint64_t features;			/* negotiated */
	uint8_t msix_cap;
	uint16_t msix_size;
	uint64_t msix_table;
	int config_cpu_vector;			/* -1 when refused */
	uint16_t nqueues;			/* num_queues from the device */
	struct vq q[VIRTIO_MAX_QUEUES];
};

/* A buffer of a descriptor chain; `dev_writes` for device-writable ones. */
struct vbuf {
	const void *addr;
	uint32_t len;
	bool dev_writes;
};

extern volatile uint64_t virtio_irqs[VIRTIO_NVEC];

/* Bump allocator over a static, identity-mapped pool: guest-physical ==
 * virtual, so the addresses go straight into descriptors. */
void *dma_alloc(size_t size, size_t align);

/* VIRTIO_F_EVENT_IDX / VIRTIO_F_INDIRECT_DESC when the command line says
 * `event_idx` / `indirect`: a guest then also requires them (virtio_require). */
uint64_t virtio_cmdline_features(void);
/* Fail unless every feature in `bits` was negotiated. */
void virtio_require(struct vdev *d, uint64_t bits);

/* Find the nth device of this virtio ID, map its capabilities, reset it,
 * set ACKNOWLEDGE|DRIVER and negotiate `wanted` & offered (VERSION_1 is
 * always asked for and required); fails the guest on any error. */
void virtio_open(struct vdev *d, uint16_t virtio_id, int nth, uint64_t wanted);
/* Set up queue `index` (size capped at `max_size`) with its own MSI-X
 * vector when the device accepts one. */
struct vq *virtio_queue(struct vdev *d, uint16_t index, uint16_t max_size);
void virtio_driver_ok(struct vdev *d);
void virtio_reset(struct vdev *d);
uint8_t virtio_status(struct vdev *d);
/* Device-specific configuration, read consistently (config_generation). */
void virtio_config_read(struct vdev *d, uint32_t off, void *buf, uint32_t len);

/* Post a chain (device-readable buffers first); returns the head. */
int vq_add(struct vq *q, const struct vbuf *b, int n);
void vq_kick(struct vq *q);
/* One used element if there is one: its head (chain freed), else -1. */
int vq_get(struct vq *q, uint32_t *len);
/* With EVENT_IDX: have the next completion interrupt (see virtio.c). */
void vq_want_irq(struct vq *q);
/* vq_get with a bounded wait; -1 on timeout. */
int vq_wait(struct vq *q, uint64_t timeout_us, uint32_t *len);
uint64_t vq_irqs(const struct vq *q);
/* Wait until the queue's interrupt count passes `before`; false on timeout. */
bool vq_wait_irq(const struct vq *q, uint64_t before, uint64_t timeout_us);
/* Add, kick, wait for that chain; fails the guest on timeout or when no
 * MSI-X interrupt accompanies the completion. */
uint32_t vq_exec(struct vq *q, const struct vbuf *b, int n);
#endif
