/* SPDX-License-Identifier: Apache-2.0 */
/* The VM's virtio-pci devices: block, net, rng, console and vsock models from src/virtio on
 * the virtio-pci transport, with MSI routes and eventfds through the
 * accelerator. BARs are pre-assigned from the start of the PCI hole. */
#include "vmm/vm_priv.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"
#include "core/log.h"
#include "virtio/blk.h"
#include "virtio/console.h"
#include "virtio/net.h"
#include "virtio/rng.h"
#include "virtio/vsock.h"

_Static_assert(VM_NET_MAX_QUEUES <= VIRTIO_NET_MAX_PAIRS, "queue pair limits disagree");
_Static_assert(VM_VSOCK_UDS_MAX < VIRTIO_VSOCK_PATH_MAX, "vsock path limits disagree");

#define MAX_MSI 1024

static int msi_alloc(void *ctx, unsigned *gsi, struct verr *err)
{
	struct vm *vm = ctx;
	int rc = 0;

	pthread_mutex_lock(&vm->msi_lock);
	if (!vm->msi)
		vm->msi = calloc(MAX_MSI, sizeof(*vm->msi));
	if (!vm->msi || vm->nmsi >= MAX_MSI) {
		rc = verr_set(err, ENOSPC, "out of MSI routes");
	} else {
		if (!vm->next_gsi)
			vm->next_gsi = ACCEL_FIRST_MSI_GSI;
		*gsi = vm->next_gsi++;
		vm->msi[vm->nmsi++] = (struct accel_msi_route){ .gsi = *gsi };
	}
	pthread_mutex_unlock(&vm->msi_lock);
	return rc;
}

/* KVM takes the routing table whole: update one entry, send them all. */
static int msi_set(void *ctx, unsigned gsi, uint64_t addr, uint32_t data, struct verr *err)
{
	struct vm *vm = ctx;
	struct accel_msi_route *live;
	unsigned n = 0;
	int rc;

	pthread_mutex_lock(&vm->msi_lock);
	live = calloc(vm->nmsi ? vm->nmsi : 1, sizeof(*live));
	if (!live) {
		pthread_mutex_unlock(&vm->msi_lock);
		return verr_set(err, ENOMEM, "out of memory");
	}
	for (unsigned i = 0; i < vm->nmsi; i++) {
		if (vm->msi[i].gsi == gsi) {
			vm->msi[i].addr = addr;
			vm->msi[i].data = data;
		}
		if (vm->msi[i].addr) /* unprogrammed vectors stay unrouted */
			live[n++] = vm->msi[i];
	}
	rc = accel_set_msi_routes(vm->accel, live, n, err);
	pthread_mutex_unlock(&vm->msi_lock);
	free(live);
	return rc;
}

static int irqfd(void *ctx, int fd, unsigned gsi, bool assign, struct verr *err)
{
	struct vm *vm = ctx;
	return accel_irqfd(vm->accel, fd, gsi, assign, err);
}

static int ioeventfd(void *ctx, uint64_t addr, unsigned len, int fd, bool assign, struct verr *err)
{
	struct vm *vm = ctx;
	return accel_ioeventfd(vm->accel, addr, len, fd, assign, err);
}

static void *gpa_to_hva(void *ctx, uint64_t gpa, uint64_t len)
{
	return guest_mem_ptr(ctx, gpa, len);
}

static int plug(struct vm *vm, struct virtio_dev *dev, struct verr *err)
{
	struct virtio_pci_platform plat = { &vm->mmio, msi_alloc, msi_set, irqfd, ioeventfd, vm };
	struct virtq_mem mem = { gpa_to_hva, &vm->mem };
	uint64_t bar;
	int rc;

	if (!vm->next_bar)
		vm->next_bar = X86_LOWMEM_MAX;
	bar = vm->next_bar;
	vm->next_bar += VIRTIO_PCI_BAR_SIZE;
	rc = virtio_pci_create(&vm->virtio[vm->nvirtio], dev, &vm->pci, &plat, &mem, bar, err);
	if (rc == 0)
		vm->nvirtio++;
	return rc;
}

static int add_disk(struct vm *vm, unsigned i, struct verr *err)
{
	const struct vm_disk *d = &vm->cfg.disks[i];
	struct block_open_opts o = { .format = d->format, .read_write = !d->read_only,
				     .cache = d->cache_none ? BLOCK_CACHE_NONE : BLOCK_CACHE_WRITEBACK };
	struct virtio_blk_opts bo = { .read_only = d->read_only, .num_queues = 1, .serial = d->serial };
	struct virtio_dev *dev;
	int rc = block_open(d->path, &o, &vm->disks[i], err);

	if (rc < 0)
		return verr_prefix(err, "--disk %s: ", d->path);
	bo.bd = vm->disks[i];
	if ((rc = virtio_blk_create(&bo, &dev, err)) < 0)
		return rc;
	return plug(vm, dev, err);
}

static int add_net(struct vm *vm, unsigned i, struct verr *err)
{
	struct vm_net *n = &vm->cfg.nets[i];
	struct virtio_net_opts no = { .tap = n->tap, .tap_fd = -1,
				      .queue_pairs = n->queues ? n->queues : 1 };
	struct virtio_dev *dev;
	int rc;

	memcpy(no.mac, n->mac, 6);
	if (n->has_fd) {
		if ((rc = virtio_net_tap_check(n->fd, vm->net_ifname[i], err)) < 0)
			return verr_prefix(err, "--net fd=%d: ", n->fd);
		/* The device adopts (and closes) a duplicate: the fd handed in
		 * stays open for another start should this one fail. A snapshot
		 * names the tap. */
		no.tap_fd = fcntl(n->fd, F_DUPFD_CLOEXEC, 3);
		if (no.tap_fd < 0)
			return verr_set(err, errno, "--net fd=%d: cannot duplicate it: %s", n->fd,
					strerror(errno));
		n->has_fd = false;
		n->tap = vm->net_ifname[i];
		no.tap = NULL;
		no.tap_name = n->tap;
	}
	if ((rc = virtio_net_create(&no, &dev, err)) < 0)
		return verr_prefix(err, "--net %s%s: ", no.tap ? "tap=" : "fd of ", n->tap);
	return plug(vm, dev, err);
}

/* hvc0: input arrives through a pipe the CLI's console loop writes, so the
 * Ctrl-A escape and signals stay where they are handled for COM1. */
static int add_console(struct vm *vm, struct verr *err)
{
	struct virtio_dev *dev;
	int rc;

	if (pipe2(vm->console_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
		return verr_set(err, errno, "console pipe: %s", strerror(errno));
	rc = virtio_console_create(vm->console_pipe[0], vm->cfg.console_out_fd, &dev, err);
	return rc < 0 ? rc : plug(vm, dev, err);
}

static int add_vsock(struct vm *vm, struct verr *err)
{
	struct virtio_dev *dev;
	int rc = virtio_vsock_create(vm->cfg.vsock.cid, vm->cfg.vsock.uds, &dev, err);

	if (rc < 0)
		return verr_prefix(err, "--vsock: ");
	return plug(vm, dev, err);
}

int vm_setup_virtio(struct vm *vm, struct verr *err)
{
	struct virtio_dev *dev;
	int rc = 0;

	pthread_mutex_init(&vm->msi_lock, NULL);
	for (unsigned i = 0; rc == 0 && i < vm->cfg.ndisks; i++)
		rc = add_disk(vm, i, err);
	for (unsigned i = 0; rc == 0 && i < vm->cfg.nnets; i++)
		rc = add_net(vm, i, err);
	if (rc == 0 && vm->cfg.rng && (rc = virtio_rng_create(&dev, err)) == 0)
		rc = plug(vm, dev, err);
	if (rc == 0 && vm->cfg.console_virtio)
		rc = add_console(vm, err);
	if (rc == 0 && vm->cfg.vsock.cid)
		rc = add_vsock(vm, err);
	return rc;
}

void vm_teardown_virtio(struct vm *vm)
{
	for (unsigned i = 0; i < vm->nvirtio; i++)
		virtio_pci_destroy(vm->virtio[i]);
	vm->nvirtio = 0;
	for (unsigned i = 0; i < 2; i++)
		if (vm->console_pipe[i] >= 0) {
			close(vm->console_pipe[i]);
			vm->console_pipe[i] = -1;
		}
	for (unsigned i = 0; i < VM_MAX_DISKS; i++)
		if (vm->disks[i]) {
			block_close(vm->disks[i]);
			vm->disks[i] = NULL;
		}
	free(vm->msi);
	vm->msi = NULL;
	vm->nmsi = 0;
}
