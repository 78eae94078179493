/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-pci modern transport (virtio 1.2, 4.1) for devices inside `vireo
 * run`: a PCI function with the virtio capabilities and MSI-X in one 64-bit
 * memory BAR. Queue notifications arrive on eventfds (KVM ioeventfd) and
 * interrupts leave on eventfds (KVM irqfd bound to MSI routes), so the data
 * path never passes through a vCPU thread. The VMM supplies the platform
 * hooks; this file knows neither KVM nor the VM.
 */
#ifndef VIREO_VIRTIO_PCI_H
#define VIREO_VIRTIO_PCI_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"
#include "devices/bus.h"
#include "devices/pci.h"
#include "virtio/device.h"

#define VIRTIO_PCI_BAR_SIZE 0x8000u

struct virtio_pci_platform {
	struct bus *mmio;
	/* A GSI for one MSI-X vector (called once per vector at creation). */
	int (*msi_alloc)(void *ctx, unsigned *gsi, struct verr *err);
	/* Point gsi at this MSI message (address 0: not routed). */
	int (*msi_set)(void *ctx, unsigned gsi, uint64_t addr, uint32_t data, struct verr *err);
	int (*irqfd)(void *ctx, int fd, unsigned gsi, bool assign, struct verr *err);
	int (*ioeventfd)(void *ctx, uint64_t addr, unsigned len, int fd, bool assign,
			 struct verr *err);
	void *ctx;
};

struct virtio_pci;

/* Wraps dev (which the transport then owns) in a PCI function plugged into
 * host, its BAR pre-assigned at bar_addr (VIRTIO_PCI_BAR_SIZE aligned). */
int virtio_pci_create(struct virtio_pci **out, struct virtio_dev *dev, struct pci_host *host,
		      const struct virtio_pci_platform *plat, const struct virtq_mem *mem,
		      uint64_t bar_addr, struct verr *err);
void virtio_pci_destroy(struct virtio_pci *vp);

/* Snapshots. Save stops each running queue (so no request is half done)
 * and records where it stands; the vCPUs must be paused. The queues stay
 * stopped until virtio_pci_save_finish, which the caller runs once guest
 * memory is written: a device still running (a frame from the tap, a
 * request the guest queued before the pause) would write guest memory and
 * used entries past the saved position, and a restore would do them again.
 * Restore checks every value against this device before using any: the
 * blob is untrusted. */
int virtio_pci_save(struct virtio_pci *vp, struct vbuf *out, struct verr *err);
/* Starts the queues a save stopped, where they stood; a no-op otherwise. */
void virtio_pci_save_finish(struct virtio_pci *vp);
int virtio_pci_restore(struct virtio_pci *vp, const uint8_t *blob, size_t len, struct verr *err);
/* After a restore, once the vCPUs' state (their local APICs) is back: start
 * the queues that ran and let the device act on its restored state. Doing
 * it earlier would send interrupts (a frame received, vsock's transport
 * reset) to local APICs that are about to be overwritten: lost for good. */
void virtio_pci_restore_finish(struct virtio_pci *vp);
struct virtio_dev *virtio_pci_dev(struct virtio_pci *vp);

#endif
