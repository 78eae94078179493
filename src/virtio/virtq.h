/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Split virtqueues (virtio 1.2, 2.7) walked from the device side over guest
 * memory reached only through a translation function, so the same walker
 * serves guest_mem (vireo run) and a vhost-user memory table.
 *
 * Guest memory is hostile: every index, length, address, chain length and
 * indirect table is checked, each descriptor is read once into a local copy,
 * and a malformed queue makes virtq_pop/virtq_push fail with -EIO and a
 * message; the caller then puts its device in the needs-reset state.
 */
#ifndef VIREO_VIRTIO_VIRTQ_H
#define VIREO_VIRTIO_VIRTQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "core/err.h"
#include "core/iov.h"

#define VIRTQ_MAX_SIZE 32768u     /* the spec's largest split queue */
#define VIRTQ_MAX_SEGS 1024u      /* segments one popped chain may hold */

/* Feature bits the walker implements (device-independent, virtio 1.2 6). */
#define VIRTIO_F_INDIRECT_DESC 28
#define VIRTIO_F_EVENT_IDX 29
#define VIRTIO_F_VERSION_1 32
#define VIRTIO_F_ACCESS_PLATFORM 33
#define VIRTIO_F_RING_PACKED 34

/* Device status bits (virtio 1.2, 2.1). */
#define VIRTIO_STATUS_ACKNOWLEDGE 1u
#define VIRTIO_STATUS_DRIVER 2u
#define VIRTIO_STATUS_DRIVER_OK 4u
#define VIRTIO_STATUS_FEATURES_OK 8u
#define VIRTIO_STATUS_NEEDS_RESET 64u
#define VIRTIO_STATUS_FAILED 128u

/* Host pointer for [gpa, gpa+len) or NULL if any byte is not guest RAM. */
struct virtq_mem {
	void *(*gpa_to_hva)(void *ctx, uint64_t gpa, uint64_t len);
	void *ctx;
};

struct virtq {
	uint16_t num;             /* queue size: a power of 2, 1..VIRTQ_MAX_SIZE */
	uint64_t desc_gpa, avail_gpa, used_gpa;
	bool event_idx;           /* VIRTIO_F_EVENT_IDX negotiated */
	bool indirect;            /* VIRTIO_F_INDIRECT_DESC negotiated */
	struct virtq_mem mem;
	/* Ring pointers, translated once by virtq_start. */
	volatile uint8_t *desc;
	volatile uint8_t *avail;
	volatile uint8_t *used;
	uint16_t last_avail;      /* next avail ring entry to consume */
	uint16_t used_idx;        /* our copy of used->idx */
	uint16_t signalled_used;  /* used_idx when we last decided about a notify */
	bool signalled_valid;
	unsigned pending;         /* chains popped and not yet pushed */
};

/* One popped descriptor chain: `nout` device-readable segments, then `nin`
 * device-writable ones, in iov[]. */
struct virtq_chain {
	uint16_t head;
	unsigned nout, nin;
	uint64_t out_len, in_len;     /* bytes in each direction */
	struct iovec iov[VIRTQ_MAX_SEGS];
};

/* Set up vq from its layout and translate the three rings; -EINVAL (with a
 * message) if the size is bad or a ring is misaligned or not in memory.
 * last_avail/used_idx start at `base` (vhost-user SET_VRING_BASE; 0 else). */
int virtq_start(struct virtq *vq, const struct virtq_mem *mem, uint16_t num, uint64_t desc,
		uint64_t avail, uint64_t used, uint64_t features, uint16_t base, struct verr *err);

/* Pop the next available chain into *c. Returns 1 if one was popped, 0 if
 * the ring is empty, -EIO if the queue is malformed (message in *err). */
int virtq_pop(struct virtq *vq, struct virtq_chain *c, struct verr *err);

/* virtq_pop, and when the ring is empty ask for kicks (virtq_enable_kicks)
 * and look once more, so a buffer added meanwhile is not left waiting for a
 * kick that will not come. 0 means empty with kicks on: the caller may sleep. */
int virtq_pop_or_arm(struct virtq *vq, struct virtq_chain *c, struct verr *err);

/* Give back the chain just popped, unused (e.g. no packet to put in it):
 * the next virtq_pop returns it again. */
void virtq_unpop(struct virtq *vq);

/* Return a chain to the driver with `len` bytes written into its
 * device-writable part. -EIO if the chain head is not one we popped. */
int virtq_push(struct virtq *vq, uint16_t head, uint32_t len, struct verr *err);

/* Return n popped chains at once: every used entry is written before one
 * store of the used index publishes them all, so a driver never sees part
 * of the set (a frame spread over mergeable receive buffers, 5.1.6.4). */
int virtq_push_many(struct virtq *vq, const uint16_t *heads, const uint32_t *lens, unsigned n,
		    struct verr *err);

/* Whether the driver wants an interrupt for the chains pushed since the
 * last call (VIRTQ_AVAIL_F_NO_INTERRUPT or used_event). Call after a batch
 * of virtq_push; a true result means "signal the used buffer notification". */
bool virtq_should_notify(struct virtq *vq);

/* Ask the driver to kick us for every new buffer (writes avail_event, or
 * clears VIRTQ_USED_F_NO_NOTIFY); returns true if more buffers arrived
 * meanwhile, so the caller should pop again before sleeping. */
bool virtq_enable_kicks(struct virtq *vq);

/* Whether avail has entries we have not popped. */
bool virtq_has_avail(struct virtq *vq);


#endif
