/* SPDX-License-Identifier: Apache-2.0 */
/* PCI host bridge, configuration mechanism #1 and ECAM; see pci.h. */
#include "devices/pci.h"

#include <errno.h>
#include <string.h>

#include "core/log.h"

#define CONF1_ENABLE 0x80000000u
/* Enable, bus, device, function, register: reserved bits read as 0. */
#define CONF1_ADDR_MASK 0x80fffffcu
#define RCR_RESET_CPU 0x04

/* Command: I/O, memory, bus master, parity, SERR, INTx disable. */
#define CMD_WMASK 0x0547
/* Status error bits are write-one-to-clear. */
#define STATUS_W1C 0xf900

static const char *const PCI_CTX = "pci";

static void pci_set_wmask16(struct pci_dev *d, unsigned off, uint16_t m)
{
	pci_put16(d->wmask, off, m);
}

void pci_dev_init(struct pci_dev *d, const char *name, uint16_t vendor,
		  uint16_t device, uint32_t class_code, bool extended)
{
	memset(d, 0, sizeof(*d));
	d->name = name ? name : "pci";
	d->cfg_size = extended ? PCI_CFG_EXP_SIZE : PCI_CFG_SIZE;
	d->slot = -1;
	pci_put16(d->config, PCI_VENDOR_ID, vendor);
	pci_put16(d->config, PCI_DEVICE_ID, device);
	pci_put32(d->config, PCI_CLASS_REVISION, (class_code & 0xffffff) << 8);
	d->config[PCI_HEADER_TYPE] = 0;
	pci_set_wmask16(d, PCI_COMMAND, CMD_WMASK);
	pci_put16(d->w1cmask, PCI_STATUS, STATUS_W1C);
	d->wmask[0x0c] = 0xff;   /* cache line size */
	d->wmask[0x0d] = 0xff;   /* latency timer */
	d->wmask[PCI_INTERRUPT_LINE] = 0xff;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static int pci_bar_check(const struct pci_dev *d, unsigned bar, uint64_t size,
			 unsigned flags, struct verr *err)
{
	bool io = flags & PCI_BAR_IO, wide = flags & PCI_BAR_MEM64;

	if (bar >= PCI_NUM_BARS || (wide && bar + 1 >= PCI_NUM_BARS))
		return verr_set(err, EINVAL, "%s: no BAR %u", d->name, bar);
	if (flags & ~(PCI_BAR_IO | PCI_BAR_MEM64 | PCI_BAR_PREFETCH) ||
	    (io && (flags & ~PCI_BAR_IO)))
		return verr_set(err, EINVAL, "%s: BAR %u: bad flags 0x%x", d->name, bar, flags);
	if (!is_pow2(size) || size < (io ? 4u : 16u) || (io && size > 256) ||
	    (!wide && size > (1ull << 31)))
		return verr_set(err, EINVAL, "%s: BAR %u: bad size 0x%llx", d->name, bar,
				(unsigned long long)size);
	if (d->bar_size[bar] || (wide && d->bar_size[bar + 1]))
		return verr_set(err, EEXIST, "%s: BAR %u already set", d->name, bar);
	return 0;
}

int pci_dev_set_bar(struct pci_dev *d, unsigned bar, uint64_t size,
		    unsigned flags, struct verr *err)
{
	unsigned off = PCI_BAR0 + 4 * bar;
	uint64_t mask = ~(size - 1);
	int rc = pci_bar_check(d, bar, size, flags, err);

	if (rc)
		return rc;
	/* The flag bits are read-only, so sizing reads back mask | flags. */
	pci_put32(d->config, off, flags);
	pci_put32(d->wmask, off, (uint32_t)mask & ~0xfu);
	if (flags & PCI_BAR_IO)
		pci_put32(d->wmask, off, (uint32_t)mask & ~0x3u & 0xffff);
	d->bar_size[bar] = size;
	if (flags & PCI_BAR_MEM64) {
		pci_put32(d->wmask, off + 4, (uint32_t)(mask >> 32));
		/* The upper half is part of the same BAR, not its own. */
		d->bar_size[bar + 1] = size;
	}
	return 0;
}

uint64_t pci_dev_bar_addr(const struct pci_dev *d, unsigned bar)
{
	uint32_t lo;

	if (bar >= PCI_NUM_BARS)
		return 0;
	lo = pci_get32(d->config, PCI_BAR0 + 4 * bar);
	if (lo & PCI_BAR_IO)
		return lo & ~0x3u;
	if ((lo & PCI_BAR_MEM64) && bar + 1 < PCI_NUM_BARS)
		return (lo & ~0xfull) | (uint64_t)pci_get32(d->config, PCI_BAR0 + 4 * bar + 4) << 32;
	return lo & ~0xfu;
}

void pci_dev_set_irq_pin(struct pci_dev *d, uint8_t pin)
{
	d->config[PCI_INTERRUPT_PIN] = pin <= 4 ? pin : 0;
}

static struct pci_dev *pci_lookup(struct pci_host *h, uint8_t bus, uint8_t devfn)
{
	/* Only bus 0, function 0 exist; the slot is devfn bits 3-7. */
	if (bus != 0 || (devfn & 7) != 0)
		return NULL;
	return h->slots[devfn >> 3];
}

static uint32_t ones(unsigned len)
{
	return len >= 4 ? 0xffffffffu : (1u << (8 * len)) - 1;
}

static bool pci_range_ok(const struct pci_dev *d, unsigned off, unsigned len)
{
	return len >= 1 && len <= 4 && off < d->cfg_size && len <= d->cfg_size - off;
}

static uint32_t pci_cfg_read_locked(struct pci_host *h, uint8_t bus, uint8_t devfn,
				    unsigned off, unsigned len)
{
	struct pci_dev *d = pci_lookup(h, bus, devfn);
	uint32_t v = 0;

	if (!d || !pci_range_ok(d, off, len))
		return ones(len);
	for (unsigned i = 0; i < len; i++)
		v |= (uint32_t)d->config[off + i] << (8 * i);
	if (d->cfg_read)
		d->cfg_read(d, off, len, &v);
	return v & ones(len);
}

static void pci_cfg_write_locked(struct pci_host *h, uint8_t bus, uint8_t devfn,
				 unsigned off, unsigned len, uint32_t val)
{
	struct pci_dev *d = pci_lookup(h, bus, devfn);

	if (!d || !pci_range_ok(d, off, len))
		return;
	for (unsigned i = 0; i < len; i++) {
		uint8_t b = (uint8_t)(val >> (8 * i)), m = d->wmask[off + i];
		uint8_t c = (d->config[off + i] & ~m) | (b & m);
		d->config[off + i] = c & ~(b & d->w1cmask[off + i]);
	}
	if (d->cfg_write)
		d->cfg_write(d, off, len, val & ones(len));
}

uint32_t pci_host_cfg_read(struct pci_host *h, uint8_t bus, uint8_t devfn,
			   unsigned off, unsigned len)
{
	uint32_t v;

	pthread_mutex_lock(&h->lock);
	v = pci_cfg_read_locked(h, bus, devfn, off, len);
	pthread_mutex_unlock(&h->lock);
	return v;
}

void pci_host_cfg_write(struct pci_host *h, uint8_t bus, uint8_t devfn,
			unsigned off, unsigned len, uint32_t val)
{
	pthread_mutex_lock(&h->lock);
	pci_cfg_write_locked(h, bus, devfn, off, len, val);
	pthread_mutex_unlock(&h->lock);
}

static void put_le(void *data, uint32_t v, unsigned len)
{
	uint8_t *d = data;

	for (unsigned i = 0; i < len; i++)
		d[i] = (uint8_t)(v >> (8 * (i % 4)));
}

static uint32_t get_le(const void *data, unsigned len)
{
	const uint8_t *d = data;
	uint32_t v = 0;

	for (unsigned i = 0; i < len && i < 4; i++)
		v |= (uint32_t)d[i] << (8 * i);
	return v;
}

/* A data-port access (offset 4-7) as a config access; false if it does
 * not fit in the data dword or the enable bit is off. */
static bool conf1_target(const struct pci_host *h, uint64_t offset, unsigned len,
			 uint8_t *bus, uint8_t *devfn, unsigned *reg)
{
	unsigned lane = (unsigned)offset - 4;

	if (offset < 4 || lane + len > 4 || !(h->addr & CONF1_ENABLE))
		return false;
	*bus = (uint8_t)(h->addr >> 16);
	*devfn = (uint8_t)(h->addr >> 8);
	*reg = (h->addr & 0xfc) + lane;
	return true;
}

static void conf1_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	struct pci_host *h = opaque;
	uint32_t v = ones(len);
	uint8_t bus, devfn;
	unsigned reg;

	pthread_mutex_lock(&h->lock);
	if (offset == 0 && len == 4)
		v = h->addr;
	else if (offset == 1 && len == 1)
		v = h->rcr;
	else if (conf1_target(h, offset, len, &bus, &devfn, &reg))
		v = pci_cfg_read_locked(h, bus, devfn, reg, len);
	pthread_mutex_unlock(&h->lock);
	put_le(data, v, len);
}

static void conf1_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct pci_host *h = opaque;
	uint32_t v = get_le(data, len);
	bool reset = false;
	uint8_t bus, devfn;
	unsigned reg;

	pthread_mutex_lock(&h->lock);
	if (offset == 0 && len == 4) {
		h->addr = v & CONF1_ADDR_MASK;
	} else if (offset == 1 && len == 1) {
		h->rcr = (uint8_t)v;
		reset = v & RCR_RESET_CPU;
	} else if (conf1_target(h, offset, len, &bus, &devfn, &reg)) {
		pci_cfg_write_locked(h, bus, devfn, reg, len, v);
	}
	pthread_mutex_unlock(&h->lock);
	/* Outside the lock: the VM may stop vCPUs that are waiting on it. */
	if (reset) {
		log_debug(PCI_CTX, "reset via 0xcf9");
		if (h->plat.request_reset)
			h->plat.request_reset(h->plat.ctx);
	}
}

const struct bus_dev_ops pci_conf1_ops = {
	.read = conf1_read,
	.write = conf1_write,
};

/* An ECAM access as a config access; false if it is outside the window,
 * not 1, 2 or 4 bytes, or crosses a dword (PCIe config requests carry byte
 * enables for one dword only). */
static bool ecam_target(const struct pci_host *h, uint64_t offset, unsigned len,
			uint8_t *bus, uint8_t *devfn, unsigned *reg)
{
	if (offset >= h->ecam_size || (len != 1 && len != 2 && len != 4) ||
	    (offset & 3) + len > 4)
		return false;
	*bus = (uint8_t)(offset >> PCI_ECAM_BUS_SHIFT);
	*devfn = (uint8_t)(offset >> 12);
	*reg = (unsigned)offset & 0xfff;
	return true;
}

static void ecam_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	struct pci_host *h = opaque;
	const struct pci_dev *d;
	uint8_t bus, devfn;
	unsigned reg;
	uint32_t v;

	memset(data, 0xff, len);
	if (!ecam_target(h, offset, len, &bus, &devfn, &reg))
		return;
	pthread_mutex_lock(&h->lock);
	d = pci_lookup(h, bus, devfn);
	if (d && reg >= d->cfg_size)
		v = 0;  /* an all-zero header at 0x100: no extended capabilities */
	else
		v = pci_cfg_read_locked(h, bus, devfn, reg, len);
	pthread_mutex_unlock(&h->lock);
	put_le(data, v, len);
}

static void ecam_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct pci_host *h = opaque;
	uint8_t bus, devfn;
	unsigned reg;

	if (!ecam_target(h, offset, len, &bus, &devfn, &reg))
		return;
	pthread_mutex_lock(&h->lock);
	pci_cfg_write_locked(h, bus, devfn, reg, len, get_le(data, len));
	pthread_mutex_unlock(&h->lock);
}

const struct bus_dev_ops pci_ecam_ops = {
	.read = ecam_read,
	.write = ecam_write,
};

int pci_host_attach_ecam(struct pci_host *h, struct bus *mmio, uint64_t base,
			 unsigned nbuses, struct verr *err)
{
	uint64_t size = (uint64_t)nbuses << PCI_ECAM_BUS_SHIFT;
	int rc;

	if (nbuses < 1 || nbuses > PCI_ECAM_MAX_BUSES)
		return verr_set(err, EINVAL, "pci: ECAM for %u buses (1..256)", nbuses);
	if (base & ((1ull << PCI_ECAM_BUS_SHIFT) - 1) || base > UINT64_MAX - size)
		return verr_set(err, EINVAL, "pci: bad ECAM base 0x%llx", (unsigned long long)base);
	if (h->ecam_size)
		return verr_set(err, EEXIST, "pci: ECAM is already mapped");
	rc = bus_register(mmio, base, size, "pci-ecam", &pci_ecam_ops, h, err);
	if (rc == 0)
		h->ecam_size = size;
	return rc;
}

int pci_host_init(struct pci_host *h, const struct platform_ops *plat, struct verr *err)
{
	int rc;

	memset(h, 0, sizeof(*h));
	if (plat)
		h->plat = *plat;
	/* The generic PCIe host bridge IDs, class "host bridge". */
	pci_dev_init(&h->bridge, "host-bridge", 0x1b36, 0x0008, 0x060000, false);
	h->bridge.slot = 0;
	h->slots[0] = &h->bridge;
	rc = pthread_mutex_init(&h->lock, NULL);
	if (rc)
		return verr_set(err, rc, "pci: cannot create lock");
	return 0;
}

void pci_host_destroy(struct pci_host *h)
{
	if (h)
		pthread_mutex_destroy(&h->lock);
}

int pci_host_attach(struct pci_host *h, struct bus *pio, struct verr *err)
{
	return bus_register(pio, PCI_CONF1_BASE, PCI_CONF1_PORTS, "pci-conf1",
			    &pci_conf1_ops, h, err);
}

static int pci_free_slot(const struct pci_host *h)
{
	for (int s = 1; s < PCI_SLOTS; s++)
		if (!h->slots[s])
			return s;
	return -1;
}

int pci_host_add(struct pci_host *h, struct pci_dev *d, int slot, struct verr *err)
{
	int rc;

	pthread_mutex_lock(&h->lock);
	if (slot == PCI_SLOT_ANY)
		slot = pci_free_slot(h);
	if (slot < 1 || slot >= PCI_SLOTS)
		rc = verr_set(err, ENOSPC, "pci: no slot for %s", d->name);
	else if (h->slots[slot])
		rc = verr_set(err, EBUSY, "pci: slot %d for %s is taken by %s", slot,
			      d->name, h->slots[slot]->name);
	else if (d->slot >= 0)
		rc = verr_set(err, EEXIST, "pci: %s is already in slot %d", d->name, d->slot);
	else {
		h->slots[slot] = d;
		d->slot = slot;
		rc = slot;
	}
	pthread_mutex_unlock(&h->lock);
	return rc;
}

void pci_host_remove(struct pci_host *h, struct pci_dev *d)
{
	pthread_mutex_lock(&h->lock);
	if (d->slot > 0 && d->slot < PCI_SLOTS && h->slots[d->slot] == d) {
		h->slots[d->slot] = NULL;
		d->slot = -1;
	}
	pthread_mutex_unlock(&h->lock);
}

void pci_dev_restore_config(struct pci_dev *d, const uint8_t *cfg, size_t len)
{
	if (len > d->cfg_size)
		len = d->cfg_size;
	for (size_t i = 0; i < len; i++)
		d->config[i] = (d->config[i] & ~d->wmask[i]) | (cfg[i] & d->wmask[i]);
}

void pci_host_save(struct pci_host *h, struct pci_host_state *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&h->lock);
	st->addr = h->addr;
	st->rcr = h->rcr;
	memcpy(st->bridge_config, h->bridge.config, sizeof(st->bridge_config));
	pthread_mutex_unlock(&h->lock);
}

void pci_host_restore(struct pci_host *h, const struct pci_host_state *st)
{
	pthread_mutex_lock(&h->lock);
	h->addr = st->addr & CONF1_ADDR_MASK;
	h->rcr = st->rcr;
	pci_dev_restore_config(&h->bridge, st->bridge_config, sizeof(st->bridge_config));
	pthread_mutex_unlock(&h->lock);
}
