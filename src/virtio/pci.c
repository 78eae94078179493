/* SPDX-License-Identifier: Apache-2.0 */
#include "virtio/pci.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/log.h"

/* BAR 0 layout */
#define OFF_COMMON 0x0000u
#define OFF_ISR 0x1000u
#define OFF_DEVCFG 0x2000u
#define OFF_NOTIFY 0x3000u
#define OFF_MSIX_TABLE 0x4000u
#define OFF_MSIX_PBA 0x5000u
#define COMMON_SIZE 0x40u
#define NOTIFY_MULT 4u

/* config-space layout of the capabilities */
#define CAP_MSIX 0x40u
#define CAP_COMMON 0x4cu
#define CAP_NOTIFY 0x5cu
#define CAP_ISR 0x70u
#define CAP_DEVCFG 0x80u

#define STATUS_ACK 1u
#define STATUS_DRIVER 2u
#define STATUS_DRIVER_OK 4u
#define STATUS_FEATURES_OK 8u
#define STATUS_NEEDS_RESET 0x40u
#define STATUS_FAILED 0x80u
#define NO_VECTOR 0xffffu
#define MAX_VECTORS (VIRTIO_MAX_QUEUES + 1)
#define PBA_BYTES (8 * ((MAX_VECTORS + 63) / 64))   /* whole qwords */
#define MSIX_ENABLE 0x8000u
#define MSIX_MASKALL 0x4000u

struct vp_queue {
	uint16_t size, vector;
	bool enabled, started;
	uint64_t desc, driver, device;
	int kick_fd;
};

struct vp_vector {
	uint32_t addr_lo, addr_hi, data, ctrl;
	int fd;
	unsigned gsi;
	bool pending;
};

struct virtio_pci {
	struct pci_dev pci;
	struct pci_host *host;
	struct virtio_dev *dev;
	struct virtio_pci_platform plat;
	struct virtq_mem mem;
	char name[64];

	pthread_mutex_t cfg_lock;      /* common config; may call into the device */
	uint32_t dfselect, gfselect;
	uint64_t driver_features;
	uint8_t status, generation;
	uint16_t queue_select, config_vector;
	struct vp_queue q[VIRTIO_MAX_QUEUES];
	unsigned nqueues;

	pthread_mutex_t irq_lock;      /* ISR and MSI-X; a leaf lock */
	uint8_t isr;
	unsigned nvectors;
	struct vp_vector vec[MAX_VECTORS];

	uint64_t bar;                  /* where BAR 0 is mapped, 0 if not */
	bool ioeventfds;
	/* Restored but not yet live: queues to start (at these bases) once the
	 * vCPUs' interrupt state is back (virtio_pci_restore_finish). */
	bool restore_pending;
	bool restore_start[VIRTIO_MAX_QUEUES];
	uint16_t restore_base[VIRTIO_MAX_QUEUES];
	/* Saved and held still until the snapshot's memory is written
	 * (virtio_pci_save_finish): the queues stopped at these bases. */
	bool save_pending;
	uint16_t save_base[VIRTIO_MAX_QUEUES];
};

/* ---- interrupts (any thread; irq_lock only) ---- */

static bool vector_masked(struct virtio_pci *vp, unsigned v)
{
	uint16_t ctl = (uint16_t)(vp->pci.config[CAP_MSIX + 2] | vp->pci.config[CAP_MSIX + 3] << 8);
	return !(ctl & MSIX_ENABLE) || (ctl & MSIX_MASKALL) || (vp->vec[v].ctrl & 1);
}

static void fire_locked(struct virtio_pci *vp, unsigned v)
{
	uint64_t one = 1;

	if (v >= vp->nvectors)
		return; /* NO_VECTOR or out of range: the driver polls the ISR */
	if (vector_masked(vp, v)) {
		vp->vec[v].pending = true;
		return;
	}
	vp->vec[v].pending = false;
	if (write(vp->vec[v].fd, &one, sizeof(one)) < 0)
		log_warn(vp->name, "cannot signal MSI-X vector %u", v);
}

static void queue_notify(void *opaque, unsigned q)
{
	struct virtio_pci *vp = opaque;

	pthread_mutex_lock(&vp->irq_lock);
	vp->isr |= 1;
	fire_locked(vp, q < vp->nqueues ? vp->q[q].vector : NO_VECTOR);
	pthread_mutex_unlock(&vp->irq_lock);
}

static void config_changed(void *opaque)
{
	struct virtio_pci *vp = opaque;

	pthread_mutex_lock(&vp->irq_lock);
	vp->generation++;
	vp->isr |= 2;
	if (virtio_dev_needs_reset(vp->dev))
		vp->status |= STATUS_NEEDS_RESET;
	fire_locked(vp, vp->config_vector);
	pthread_mutex_unlock(&vp->irq_lock);
}

/* Unmasking delivers what arrived while masked; called with irq_lock. */
static void deliver_pending(struct virtio_pci *vp)
{
	for (unsigned v = 0; v < vp->nvectors; v++)
		if (vp->vec[v].pending && !vector_masked(vp, v))
			fire_locked(vp, v);
}

static void route_vector(struct virtio_pci *vp, unsigned v)
{
	struct vp_vector *e = &vp->vec[v];
	uint64_t addr = (uint64_t)e->addr_hi << 32 | e->addr_lo;
	struct verr err = { 0 };

	if (vp->plat.msi_set(vp->plat.ctx, e->gsi, addr, e->data, &err) < 0)
		log_warn(vp->name, "MSI-X vector %u: %s", v, err.msg);
}

/* ---- MSI-X table and PBA in BAR 0 ---- */

/* One dword of the MSI-X table or PBA at off (dword aligned). */
static uint32_t msix_dword(struct virtio_pci *vp, uint32_t off)
{
	uint32_t val = 0;

	if (off >= OFF_MSIX_PBA) {
		/* bit v of the PBA: vector v's pending bit */
		unsigned first = (off - OFF_MSIX_PBA) * 8;
		for (unsigned b = 0; b < 32; b++)
			if (first + b < vp->nvectors && vp->vec[first + b].pending)
				val |= 1u << b;
	} else {
		unsigned v = (off - OFF_MSIX_TABLE) / 16, w = ((off - OFF_MSIX_TABLE) % 16) / 4;
		if (v < vp->nvectors)
			val = (&vp->vec[v].addr_lo)[w];
	}
	return val;
}

static void msix_read(struct virtio_pci *vp, uint32_t off, void *data, unsigned len)
{
	uint32_t base = off & ~3u;
	uint64_t val;

	pthread_mutex_lock(&vp->irq_lock);
	val = msix_dword(vp, base);
	if (len == 8 && off % 8 == 0)
		val |= (uint64_t)msix_dword(vp, base + 4) << 32;
	else
		val >>= 8 * (off % 4);
	pthread_mutex_unlock(&vp->irq_lock);
	memcpy(data, &val, len > 8 ? 8 : len);
}

static void msix_write(struct virtio_pci *vp, uint32_t off, const void *data, unsigned len)
{
	unsigned v = (off - OFF_MSIX_TABLE) / 16, w = ((off - OFF_MSIX_TABLE) % 16) / 4;
	uint64_t val = 0;

	if (off >= OFF_MSIX_PBA || v >= vp->nvectors || off % 4 || (len != 4 && len != 8))
		return; /* PBA is read-only; only aligned dword/qword writes */
	memcpy(&val, data, len);
	pthread_mutex_lock(&vp->irq_lock);
	for (unsigned i = 0; i < len / 4 && w + i < 4; i++) {
		uint32_t *f = &vp->vec[v].addr_lo;
		f[w + i] = (uint32_t)(val >> (32 * i));
	}
	vp->vec[v].ctrl &= 1;
	route_vector(vp, v);
	deliver_pending(vp);
	pthread_mutex_unlock(&vp->irq_lock);
}

/* ---- common configuration ---- */

static uint32_t common_queue_read(struct virtio_pci *vp, uint32_t off)
{
	struct vp_queue *q = vp->queue_select < vp->nqueues ? &vp->q[vp->queue_select] : NULL;

	if (!q)
		return off == 0x1a ? NO_VECTOR : 0;
	switch (off) {
	case 0x18: return q->size;
	case 0x1a: return q->vector;
	case 0x1c: return q->enabled;
	case 0x1e: return vp->queue_select;  /* queue_notify_off */
	case 0x20: return (uint32_t)q->desc;
	case 0x24: return (uint32_t)(q->desc >> 32);
	case 0x28: return (uint32_t)q->driver;
	case 0x2c: return (uint32_t)(q->driver >> 32);
	case 0x30: return (uint32_t)q->device;
	case 0x34: return (uint32_t)(q->device >> 32);
	default: return 0;
	}
}

static uint32_t common_read32(struct virtio_pci *vp, uint32_t off)
{
	uint64_t f;

	switch (off) {
	case 0x00: return vp->dfselect;
	case 0x04:
		f = virtio_dev_features(vp->dev);
		return vp->dfselect == 0 ? (uint32_t)f : vp->dfselect == 1 ? (uint32_t)(f >> 32) : 0;
	case 0x08: return vp->gfselect;
	case 0x0c:
		f = vp->driver_features;
		return vp->gfselect == 0 ? (uint32_t)f : vp->gfselect == 1 ? (uint32_t)(f >> 32) : 0;
	case 0x10: return vp->config_vector | (uint32_t)vp->nqueues << 16;
	case 0x14:
		return vp->status | (uint32_t)vp->generation << 8 | (uint32_t)vp->queue_select << 16;
	default:
		return common_queue_read(vp, off);
	}
}

static void common_read(struct virtio_pci *vp, uint32_t off, void *data, unsigned len)
{
	uint32_t base = off & ~3u, val;

	pthread_mutex_lock(&vp->cfg_lock);
	pthread_mutex_lock(&vp->irq_lock);
	val = common_read32(vp, base);
	if (base == 0x18 || base == 0x1c || base == 0x1e) /* two 16-bit registers per dword */
		val = common_read32(vp, base) | common_read32(vp, base + 2) << 16;
	pthread_mutex_unlock(&vp->irq_lock);
	pthread_mutex_unlock(&vp->cfg_lock);
	val >>= 8 * (off - base);
	memcpy(data, &val, len > 4 ? 4 : len);
}

static void start_queue(struct virtio_pci *vp, unsigned i)
{
	struct vp_queue *q = &vp->q[i];
	struct virtio_queue_setup s = { q->size, q->desc, q->driver, q->device, 0, q->kick_fd,
					queue_notify, vp };
	struct verr err = { 0 };

	if (q->started || !q->enabled)
		return;
	if (virtio_dev_queue_start(vp->dev, i, &s, &err) < 0) {
		log_warn(vp->name, "queue %u: %s", i, err.msg);
		vp->status |= STATUS_NEEDS_RESET;
		return;
	}
	q->started = true;
}

static void reset_queues(struct virtio_pci *vp)
{
	for (unsigned i = 0; i < vp->nqueues; i++) {
		uint64_t drain;
		vp->q[i] = (struct vp_queue){ .size = virtio_dev_queue_max_size(vp->dev),
					      .vector = NO_VECTOR, .kick_fd = vp->q[i].kick_fd };
		if (read(vp->q[i].kick_fd, &drain, sizeof(drain)) < 0)
			continue; /* nothing pending */
	}
}

static void device_reset(struct virtio_pci *vp)
{
	virtio_dev_reset(vp->dev);
	reset_queues(vp);
	vp->save_pending = false;
	vp->driver_features = 0;
	vp->status = 0;
	vp->config_vector = NO_VECTOR;
	pthread_mutex_lock(&vp->irq_lock);
	vp->isr = 0;
	pthread_mutex_unlock(&vp->irq_lock);
}

static void set_status(struct virtio_pci *vp, uint8_t st)
{
	struct verr err = { 0 };

	if (st == 0) {
		device_reset(vp);
		return;
	}
	if ((st & STATUS_FEATURES_OK) && !(vp->status & STATUS_FEATURES_OK)) {
		uint64_t offer = virtio_dev_features(vp->dev);
		/* refuse features not offered, or a driver without VERSION_1 */
		if ((vp->driver_features & ~offer) || !(vp->driver_features & (1ull << VIRTIO_F_VERSION_1)))
			st &= (uint8_t)~STATUS_FEATURES_OK;
	}
	if ((st & STATUS_DRIVER_OK) && !(vp->status & STATUS_DRIVER_OK)) {
		if (!(st & STATUS_FEATURES_OK) ||
		    virtio_dev_activate(vp->dev, vp->driver_features, &vp->mem, config_changed, vp,
					&err) < 0) {
			if (err.msg[0])
				log_warn(vp->name, "%s", err.msg);
			vp->status = st | STATUS_NEEDS_RESET;
			return;
		}
		vp->status = st;
		for (unsigned i = 0; i < vp->nqueues; i++)
			start_queue(vp, i);
		return;
	}
	vp->status = st;
}

static void set_queue_reg(struct virtio_pci *vp, uint32_t off, uint32_t val)
{
	struct vp_queue *q;

	if (vp->queue_select >= vp->nqueues)
		return;
	q = &vp->q[vp->queue_select];
	if (q->started && off != 0x1a)
		return; /* a live queue's layout is fixed until reset */
	switch (off) {
	case 0x18:
		/* a power of two no larger than the maximum */
		if (val && val <= virtio_dev_queue_max_size(vp->dev) && !(val & (val - 1)))
			q->size = (uint16_t)val;
		break;
	case 0x1a:
		q->vector = (uint16_t)(val < vp->nvectors ? val : NO_VECTOR);
		break;
	case 0x1c:
		q->enabled = val == 1;
		if (q->enabled && (vp->status & STATUS_DRIVER_OK))
			start_queue(vp, vp->queue_select);
		break;
	case 0x20: q->desc = (q->desc & ~0xffffffffull) | val; break;
	case 0x24: q->desc = (q->desc & 0xffffffffull) | (uint64_t)val << 32; break;
	case 0x28: q->driver = (q->driver & ~0xffffffffull) | val; break;
	case 0x2c: q->driver = (q->driver & 0xffffffffull) | (uint64_t)val << 32; break;
	case 0x30: q->device = (q->device & ~0xffffffffull) | val; break;
	case 0x34: q->device = (q->device & 0xffffffffull) | (uint64_t)val << 32; break;
	default: break;
	}
}

static void common_write_reg(struct virtio_pci *vp, uint32_t off, uint32_t val)
{
	switch (off) {
	case 0x00: vp->dfselect = val; break;
	case 0x08: vp->gfselect = val; break;
	case 0x0c:
		if (vp->status & STATUS_FEATURES_OK)
			break; /* features are final */
		if (vp->gfselect == 0)
			vp->driver_features = (vp->driver_features & ~0xffffffffull) | val;
		else if (vp->gfselect == 1)
			vp->driver_features = (vp->driver_features & 0xffffffffull) | (uint64_t)val << 32;
		break;
	case 0x10: vp->config_vector = (uint16_t)(val < vp->nvectors ? val : NO_VECTOR); break;
	case 0x14: set_status(vp, (uint8_t)val); break;
	case 0x16: vp->queue_select = (uint16_t)val; break;
	default: set_queue_reg(vp, off, val); break;
	}
}

/* Registers by their own offset and width: a byte at 0x14 is the status,
 * a word at 0x16 the queue select, and so on. */
static void common_write(struct virtio_pci *vp, uint32_t off, const void *data, unsigned len)
{
	uint64_t val = 0;

	memcpy(&val, data, len > 8 ? 8 : len);
	pthread_mutex_lock(&vp->cfg_lock);
	if (len == 8 && (off == 0x20 || off == 0x28 || off == 0x30)) {
		common_write_reg(vp, off, (uint32_t)val);
		common_write_reg(vp, off + 4, (uint32_t)(val >> 32));
	} else if (off == 0x14 && len == 1) {
		common_write_reg(vp, off, (uint32_t)val);
	} else if (len == 4 && off % 4 == 0) {
		common_write_reg(vp, off, (uint32_t)val);
	} else if (len == 2 && off % 2 == 0) {
		common_write_reg(vp, off, (uint32_t)val);
	}
	pthread_mutex_unlock(&vp->cfg_lock);
}

/* ---- BAR 0 dispatch ---- */

static void bar_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct virtio_pci *vp = opaque;

	memset(data, 0, len);
	if (off < OFF_COMMON + COMMON_SIZE) {
		common_read(vp, (uint32_t)off, data, len);
	} else if (off >= OFF_ISR && off < OFF_ISR + 4) {
		pthread_mutex_lock(&vp->irq_lock);
		*(uint8_t *)data = off == OFF_ISR ? vp->isr : 0;
		if (off == OFF_ISR)
			vp->isr = 0; /* reading the ISR clears it */
		pthread_mutex_unlock(&vp->irq_lock);
	} else if (off >= OFF_DEVCFG && off < OFF_NOTIFY) {
		virtio_dev_config_read(vp->dev, (uint32_t)(off - OFF_DEVCFG), data, len);
	} else if (off >= OFF_MSIX_TABLE && off < OFF_MSIX_PBA + PBA_BYTES) {
		msix_read(vp, (uint32_t)off, data, len);
	}
}

static void bar_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct virtio_pci *vp = opaque;

	if (off < OFF_COMMON + COMMON_SIZE) {
		common_write(vp, (uint32_t)off, data, len);
	} else if (off >= OFF_DEVCFG && off < OFF_NOTIFY) {
		virtio_dev_config_write(vp->dev, (uint32_t)(off - OFF_DEVCFG), data, len);
	} else if (off >= OFF_NOTIFY && off < OFF_NOTIFY + NOTIFY_MULT * vp->nqueues) {
		/* only when the access did not match the ioeventfd (other width) */
		uint64_t one = 1;
		unsigned q = (unsigned)(off - OFF_NOTIFY) / NOTIFY_MULT;
		if (write(vp->q[q].kick_fd, &one, sizeof(one)) < 0)
			log_warn(vp->name, "cannot kick queue %u", q);
	} else if (off >= OFF_MSIX_TABLE && off < OFF_MSIX_PBA) {
		msix_write(vp, (uint32_t)off, data, len);
	}
}

static const struct bus_dev_ops bar_ops = { bar_read, bar_write };

/* ---- BAR placement and PCI config hooks ---- */

static void set_ioeventfds(struct virtio_pci *vp, bool assign)
{
	struct verr err = { 0 };

	if (vp->ioeventfds == assign)
		return;
	for (unsigned i = 0; i < vp->nqueues; i++)
		if (vp->plat.ioeventfd(vp->plat.ctx, vp->bar + OFF_NOTIFY + i * NOTIFY_MULT, 2,
				       vp->q[i].kick_fd, assign, &err) < 0 && assign)
			log_warn(vp->name, "queue %u notifications will exit to the VMM: %s", i, err.msg);
	vp->ioeventfds = assign;
}

/* Maps BAR 0 where the guest put it, while memory decoding is on. */
static void update_bar(struct virtio_pci *vp)
{
	uint16_t cmd = (uint16_t)(vp->pci.config[PCI_COMMAND] | vp->pci.config[PCI_COMMAND + 1] << 8);
	uint64_t addr = pci_dev_bar_addr(&vp->pci, 0);
	struct verr err = { 0 };
	bool want = (cmd & 2) && addr && addr + VIRTIO_PCI_BAR_SIZE > addr &&
		    addr + VIRTIO_PCI_BAR_SIZE <= (1ull << 48);

	if (vp->bar && (!want || addr != vp->bar)) {
		set_ioeventfds(vp, false);
		bus_unregister(vp->plat.mmio, vp->bar, vp);
		vp->bar = 0;
	}
	if (want && !vp->bar) {
		if (bus_register(vp->plat.mmio, addr, VIRTIO_PCI_BAR_SIZE, vp->name, &bar_ops, vp,
				 &err) < 0) {
			log_warn(vp->name, "BAR 0 at 0x%llx: %s", (unsigned long long)addr, err.msg);
			return;
		}
		vp->bar = addr;
		set_ioeventfds(vp, true);
	}
}

static void pci_cfg_written(struct pci_dev *d, unsigned off, unsigned len, uint32_t val)
{
	struct virtio_pci *vp = d->opaque;

	if (off <= PCI_COMMAND + 1 || (off < PCI_BAR0 + 8 && off + len > PCI_BAR0))
		update_bar(vp);
	if (off < CAP_MSIX + 4 && off + len > CAP_MSIX + 2) {
		pthread_mutex_lock(&vp->irq_lock);
		deliver_pending(vp);
		pthread_mutex_unlock(&vp->irq_lock);
	}
}

static void put_cap(struct virtio_pci *vp, unsigned at, unsigned next, uint8_t type,
		    uint32_t offset, uint32_t length, unsigned caplen)
{
	uint8_t *c = vp->pci.config + at;

	c[0] = 0x09; /* vendor-specific */
	c[1] = (uint8_t)next;
	c[2] = (uint8_t)caplen;
	c[3] = type;
	c[4] = 0;    /* BAR 0 */
	pci_put32(c, 8, offset);
	pci_put32(c, 12, length);
}

static uint32_t class_for(enum virtio_id id)
{
	switch (id) {
	case VIRTIO_ID_NET: return 0x020000;
	case VIRTIO_ID_BLOCK: return 0x018000;
	case VIRTIO_ID_CONSOLE: return 0x078000;
	default: return 0x00ff00;
	}
}

static int build_config(struct virtio_pci *vp, uint64_t bar_addr, struct verr *err)
{
	struct pci_dev *d = &vp->pci;
	enum virtio_id id = virtio_dev_id(vp->dev);
	size_t dcfg = virtio_dev_config_size(vp->dev);

	pci_dev_init(d, vp->name, 0x1af4, (uint16_t)(0x1040 + id), class_for(id), false);
	d->config[PCI_CLASS_REVISION] = 1;
	pci_put16(d->config, PCI_SUBSYSTEM_VENDOR_ID, 0x1af4);
	pci_put16(d->config, PCI_SUBSYSTEM_ID, 0x40);
	d->config[PCI_STATUS] |= PCI_STATUS_CAP_LIST;
	d->config[PCI_CAPABILITY_LIST] = CAP_MSIX;
	/* MSI-X: table and PBA in BAR 0; enable and mask-all are writable */
	d->config[CAP_MSIX] = 0x11;
	d->config[CAP_MSIX + 1] = CAP_COMMON;
	pci_put16(d->config, CAP_MSIX + 2, (uint16_t)(vp->nvectors - 1));
	pci_put32(d->config, CAP_MSIX + 4, OFF_MSIX_TABLE);
	pci_put32(d->config, CAP_MSIX + 8, OFF_MSIX_PBA);
	d->wmask[CAP_MSIX + 3] = 0xc0;
	put_cap(vp, CAP_COMMON, CAP_NOTIFY, 1, OFF_COMMON, COMMON_SIZE, 16);
	put_cap(vp, CAP_NOTIFY, CAP_ISR, 2, OFF_NOTIFY, NOTIFY_MULT * vp->nqueues, 20);
	pci_put32(d->config, CAP_NOTIFY + 16, NOTIFY_MULT);
	put_cap(vp, CAP_ISR, dcfg ? CAP_DEVCFG : 0, 3, OFF_ISR, 4, 16);
	if (dcfg)
		put_cap(vp, CAP_DEVCFG, 0, 4, OFF_DEVCFG, (uint32_t)dcfg, 16);
	/* pre-assigned BAR with decoding on, as firmware would leave it */
	if (pci_dev_set_bar(d, 0, VIRTIO_PCI_BAR_SIZE, PCI_BAR_MEM64, err) < 0)
		return -EINVAL;
	pci_put32(d->config, PCI_BAR0, (uint32_t)bar_addr | PCI_BAR_MEM64);
	pci_put32(d->config, PCI_BAR0 + 4, (uint32_t)(bar_addr >> 32));
	d->config[PCI_COMMAND] |= 0x6;
	d->cfg_write = pci_cfg_written;
	d->opaque = vp;
	return 0;
}

static int make_eventfds(struct virtio_pci *vp, struct verr *err)
{
	for (unsigned i = 0; i < vp->nqueues; i++) {
		vp->q[i].kick_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vp->q[i].kick_fd < 0)
			return verr_set(err, errno, "eventfd: %s", strerror(errno));
	}
	for (unsigned v = 0; v < vp->nvectors; v++) {
		int rc;
		vp->vec[v].ctrl = 1; /* masked at reset */
		vp->vec[v].fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (vp->vec[v].fd < 0)
			return verr_set(err, errno, "eventfd: %s", strerror(errno));
		if ((rc = vp->plat.msi_alloc(vp->plat.ctx, &vp->vec[v].gsi, err)) < 0 ||
		    (rc = vp->plat.irqfd(vp->plat.ctx, vp->vec[v].fd, vp->vec[v].gsi, true, err)) < 0)
			return rc;
	}
	return 0;
}

int virtio_pci_create(struct virtio_pci **out, struct virtio_dev *dev, struct pci_host *host,
		      const struct virtio_pci_platform *plat, const struct virtq_mem *mem,
		      uint64_t bar_addr, struct verr *err)
{
	struct virtio_pci *vp = calloc(1, sizeof(*vp));
	int rc;

	if (!vp) {
		virtio_dev_destroy(dev);
		return verr_set(err, ENOMEM, "out of memory");
	}
	for (unsigned i = 0; i < VIRTIO_MAX_QUEUES; i++)
		vp->q[i].kick_fd = -1;
	for (unsigned v = 0; v < MAX_VECTORS; v++)
		vp->vec[v].fd = -1;
	vp->dev = dev;
	vp->plat = *plat;
	vp->mem = *mem;
	vp->nqueues = virtio_dev_num_queues(dev);
	vp->nvectors = vp->nqueues + 1;
	snprintf(vp->name, sizeof(vp->name), "virtio-pci:%s", dev->name);
	pthread_mutex_init(&vp->cfg_lock, NULL);
	pthread_mutex_init(&vp->irq_lock, NULL);
	vp->config_vector = NO_VECTOR;
	rc = make_eventfds(vp, err);
	reset_queues(vp);
	if (rc == 0)
		rc = build_config(vp, bar_addr, err);
	if (rc == 0 && (rc = pci_host_add(host, &vp->pci, PCI_SLOT_ANY, err)) >= 0) {
		vp->host = host;
		update_bar(vp);
		*out = vp;
		return 0;
	}
	virtio_pci_destroy(vp);
	return rc;
}

void virtio_pci_destroy(struct virtio_pci *vp)
{
	struct verr err = { 0 };

	if (!vp)
		return;
	if (vp->host)
		pci_host_remove(vp->host, &vp->pci);
	if (vp->bar) {
		set_ioeventfds(vp, false);
		bus_unregister(vp->plat.mmio, vp->bar, vp);
	}
	virtio_dev_destroy(vp->dev);
	for (unsigned i = 0; i < vp->nqueues; i++)
		if (vp->q[i].kick_fd >= 0)
			close(vp->q[i].kick_fd);
	for (unsigned v = 0; v < vp->nvectors; v++) {
		if (vp->vec[v].fd < 0)
			continue;
		vp->plat.irqfd(vp->plat.ctx, vp->vec[v].fd, vp->vec[v].gsi, false, &err);
		close(vp->vec[v].fd);
	}
	pthread_mutex_destroy(&vp->cfg_lock);
	pthread_mutex_destroy(&vp->irq_lock);
	free(vp);
}

struct virtio_dev *virtio_pci_dev(struct virtio_pci *vp)
{
	return vp->dev;
}

/* ---- snapshots ---- */

struct vp_saved_queue {
	uint64_t desc, driver, device;
	uint16_t size, vector, base;
	uint8_t enabled, started;
};

struct vp_saved_vec {
	uint32_t addr_lo, addr_hi, data, ctrl;
	uint8_t pending, pad[3];
};

struct vp_saved {
	uint32_t device_id, nqueues, nvectors, dfselect, gfselect;
	uint64_t driver_features;
	uint16_t queue_select, config_vector;
	uint8_t status, generation, isr, pad;
	uint8_t config[PCI_CFG_SIZE];
	struct vp_saved_queue q[VIRTIO_MAX_QUEUES];
	struct vp_saved_vec vec[MAX_VECTORS];
};

static void restart_queue(struct virtio_pci *vp, unsigned i, uint16_t base)
{
	struct vp_queue *q = &vp->q[i];
	struct virtio_queue_setup s = { q->size, q->desc, q->driver, q->device, base, q->kick_fd,
					queue_notify, vp };
	struct verr err = { 0 };

	if (virtio_dev_queue_start(vp->dev, i, &s, &err) < 0) {
		log_warn(vp->name, "queue %u: %s", i, err.msg);
		vp->status |= STATUS_NEEDS_RESET;
		q->started = false;
	}
}

int virtio_pci_save(struct virtio_pci *vp, struct vbuf *out, struct verr *err)
{
	struct vp_saved *sv = calloc(1, sizeof(*sv));

	if (!sv)
		return verr_set(err, ENOMEM, "out of memory");
	pthread_mutex_lock(&vp->cfg_lock);
	pthread_mutex_lock(&vp->irq_lock);
	sv->device_id = virtio_dev_id(vp->dev);
	sv->nqueues = vp->nqueues;
	sv->nvectors = vp->nvectors;
	sv->dfselect = vp->dfselect;
	sv->gfselect = vp->gfselect;
	sv->driver_features = vp->driver_features;
	sv->queue_select = vp->queue_select;
	sv->config_vector = vp->config_vector;
	sv->status = vp->status;
	sv->generation = vp->generation;
	sv->isr = vp->isr;
	memcpy(sv->config, vp->pci.config, PCI_CFG_SIZE);
	for (unsigned v = 0; v < vp->nvectors; v++)
		sv->vec[v] = (struct vp_saved_vec){ vp->vec[v].addr_lo, vp->vec[v].addr_hi,
			vp->vec[v].data, vp->vec[v].ctrl, vp->vec[v].pending, { 0 } };
	pthread_mutex_unlock(&vp->irq_lock);
	for (unsigned i = 0; i < vp->nqueues; i++) {
		struct vp_queue *q = &vp->q[i];
		uint16_t base = q->started && !vp->save_pending ?
				virtio_dev_queue_stop(vp->dev, i) : vp->save_base[i];
		sv->q[i] = (struct vp_saved_queue){ q->desc, q->driver, q->device, q->size, q->vector,
			base, q->enabled, q->started };
		vp->save_base[i] = base;
	}
	vp->save_pending = true;
	pthread_mutex_unlock(&vp->cfg_lock);
	vbuf_put(out, sv, sizeof(*sv));
	free(sv);
	return out->oom ? verr_set(err, ENOMEM, "out of memory") : 0;
}

static int check_saved(struct virtio_pci *vp, const struct vp_saved *sv, struct verr *err)
{
	uint16_t max = virtio_dev_queue_max_size(vp->dev);

	if (sv->device_id != (uint32_t)virtio_dev_id(vp->dev) || sv->nqueues != vp->nqueues ||
	    sv->nvectors != vp->nvectors)
		return verr_set(err, EINVAL, "%s: snapshot is of another device", vp->name);
	if (sv->driver_features & ~virtio_dev_features(vp->dev))
		return verr_set(err, EINVAL, "%s: snapshot features not offered here", vp->name);
	if (sv->config_vector != NO_VECTOR && sv->config_vector >= vp->nvectors)
		return verr_set(err, EINVAL, "%s: snapshot config vector out of range", vp->name);
	for (unsigned i = 0; i < vp->nqueues; i++) {
		const struct vp_saved_queue *q = &sv->q[i];
		if (q->size > max || (q->size & (q->size - 1)) ||
		    (q->vector != NO_VECTOR && q->vector >= vp->nvectors) ||
		    (q->started && (!q->enabled || !q->size)))
			return verr_set(err, EINVAL, "%s: snapshot queue %u is malformed", vp->name, i);
	}
	return 0;
}

static void apply_saved(struct virtio_pci *vp, const struct vp_saved *sv)
{
	pci_dev_restore_config(&vp->pci, sv->config, PCI_CFG_SIZE);
	update_bar(vp);
	vp->dfselect = sv->dfselect;
	vp->gfselect = sv->gfselect;
	vp->driver_features = sv->driver_features;
	vp->queue_select = sv->queue_select;
	vp->config_vector = sv->config_vector;
	vp->status = sv->status;
	pthread_mutex_lock(&vp->irq_lock);
	vp->generation = sv->generation;
	vp->isr = sv->isr;
	for (unsigned v = 0; v < vp->nvectors; v++) {
		const struct vp_saved_vec *e = &sv->vec[v];
		vp->vec[v].addr_lo = e->addr_lo;
		vp->vec[v].addr_hi = e->addr_hi;
		vp->vec[v].data = e->data;
		vp->vec[v].ctrl = e->ctrl & 1;
		vp->vec[v].pending = e->pending != 0;
		route_vector(vp, v);
	}
	pthread_mutex_unlock(&vp->irq_lock);
	for (unsigned i = 0; i < vp->nqueues; i++) {
		const struct vp_saved_queue *q = &sv->q[i];
		vp->q[i].size = q->size ? q->size : virtio_dev_queue_max_size(vp->dev);
		vp->q[i].vector = q->vector;
		vp->q[i].enabled = q->enabled;
		vp->q[i].desc = q->desc;
		vp->q[i].driver = q->driver;
		vp->q[i].device = q->device;
	}
}

int virtio_pci_restore(struct virtio_pci *vp, const uint8_t *blob, size_t len, struct verr *err)
{
	struct vp_saved *sv;
	int rc;

	if (len != sizeof(*sv))
		return verr_set(err, EINVAL, "%s: snapshot state is %zu bytes, expected %zu", vp->name,
				len, sizeof(*sv));
	sv = malloc(sizeof(*sv));
	if (!sv)
		return verr_set(err, ENOMEM, "out of memory");
	memcpy(sv, blob, len);
	pthread_mutex_lock(&vp->cfg_lock);
	rc = check_saved(vp, sv, err);
	if (rc == 0)
		apply_saved(vp, sv);
	if (rc == 0 && (vp->status & STATUS_DRIVER_OK) && !(vp->status & STATUS_NEEDS_RESET)) {
		rc = virtio_dev_activate(vp->dev, vp->driver_features, &vp->mem, config_changed, vp, err);
		for (unsigned i = 0; rc == 0 && i < vp->nqueues; i++) {
			vp->restore_start[i] = sv->q[i].started;
			vp->restore_base[i] = sv->q[i].base;
		}
		vp->restore_pending = rc == 0;
	}
	pthread_mutex_unlock(&vp->cfg_lock);
	free(sv);
	return rc;
}

void virtio_pci_save_finish(struct virtio_pci *vp)
{
	pthread_mutex_lock(&vp->cfg_lock);
	if (vp->save_pending) {
		vp->save_pending = false;
		for (unsigned i = 0; i < vp->nqueues; i++)
			if (vp->q[i].started)
				restart_queue(vp, i, vp->save_base[i]);
	}
	pthread_mutex_unlock(&vp->cfg_lock);
}

void virtio_pci_restore_finish(struct virtio_pci *vp)
{
	pthread_mutex_lock(&vp->cfg_lock);
	if (vp->restore_pending) {
		vp->restore_pending = false;
		for (unsigned i = 0; i < vp->nqueues; i++) {
			if (!vp->restore_start[i])
				continue;
			vp->q[i].started = true;
			restart_queue(vp, i, vp->restore_base[i]);
		}
		virtio_dev_restored(vp->dev);
	}
	pthread_mutex_unlock(&vp->cfg_lock);
}
