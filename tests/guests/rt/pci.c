/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PCI configuration mechanism #1 (PCI Local Bus 3.0, 3.2.2.3.2): an address
 * dword to 0xcf8, data through 0xcfc..0xcff.  Port I/O works from ring 3
 * through the TSS I/O bitmap; a config access is two port exits, and no
 * other CPU touches 0xcf8 in these single-threaded guests.
 */
#include "pci.h"

#define CONF_ADDR 0xcf8
#define CONF_DATA 0xcfc
#define BAR0 0x10
#define HOLE_START 0xc0000000ull
#define HOLE_END 0xfec00000ull		/* IOAPIC and LAPIC above */

static void select_reg(const struct pci_dev *d, uint8_t off)
{
	outl(CONF_ADDR, 0x80000000u | (uint32_t)d->bus << 16 | (uint32_t)d->dev << 11 |
			    (uint32_t)d->fn << 8 | (off & 0xfc));
}

uint32_t pci_read32(const struct pci_dev *d, uint8_t off)
{
	select_reg(d, off);
	return inl(CONF_DATA);
}

uint16_t pci_read16(const struct pci_dev *d, uint8_t off)
{
	select_reg(d, off);
	return inw(CONF_DATA + (off & 2));
}

uint8_t pci_read8(const struct pci_dev *d, uint8_t off)
{
	select_reg(d, off);
	return inb(CONF_DATA + (off & 3));
}

void pci_write32(const struct pci_dev *d, uint8_t off, uint32_t v)
{
	select_reg(d, off);
	outl(CONF_DATA, v);
}

void pci_write16(const struct pci_dev *d, uint8_t off, uint16_t v)
{
	select_reg(d, off);
	outw(CONF_DATA + (off & 2), v);
}

void pci_write8(const struct pci_dev *d, uint8_t off, uint8_t v)
{
	select_reg(d, off);
	outb(CONF_DATA + (off & 3), v);
}

int pci_find(uint16_t vendor, uint16_t device, int nth, struct pci_dev *out)
{
	for (int dev = 0; dev < 32; dev++) {
		for (int fn = 0; fn < 8; fn++) {
			struct pci_dev d = { 0, (uint8_t)dev, (uint8_t)fn, 0, 0 };
			uint32_t id = pci_read32(&d, 0);
			if ((id & 0xffff) == 0xffff) {
				if (fn == 0)
					break;	/* no device: no functions */
				continue;
			}
			d.vendor = (uint16_t)id;
			d.device = (uint16_t)(id >> 16);
			if (d.vendor == vendor && d.device == device && nth-- == 0) {
				*out = d;
				return 0;
			}
			/* Header type bit 7: only then do functions 1-7 exist. */
			if (fn == 0 && !(pci_read8(&d, 0x0e) & 0x80))
				break;
		}
	}
	return -1;
}

uint8_t pci_cap_next(const struct pci_dev *d, uint8_t id, uint8_t after)
{
	if (!(pci_read16(d, 0x06) & 0x10))	/* status: capabilities list */
		return 0;
	uint8_t p = after ? pci_read8(d, after + 1) : pci_read8(d, 0x34);
	/* 48 capabilities fill the 192 bytes: a longer walk is a loop. */
	for (int n = 0; n < 48 && p >= 0x40; n++) {
		p &= 0xfc;
		if (pci_read8(d, p) == id)
			return p;
		p = pci_read8(d, p + 1);
	}
	return 0;
}

static uint64_t bar_raw(const struct pci_dev *d, int bar, bool *is64)
{
	uint32_t lo = pci_read32(d, BAR0 + 4 * bar);
	*is64 = (lo & 7) == 4;
	uint64_t a = lo & ~0xfull;
	if (*is64 && bar < 5)
		a |= (uint64_t)pci_read32(d, BAR0 + 4 * bar + 4) << 32;
	return a;
}

/* Size by the all-ones probe, with decoding off so the probe address
 * never claims a window. */
static uint64_t bar_size(const struct pci_dev *d, int bar, bool is64)
{
	uint16_t cmd = pci_read16(d, 0x04);
	pci_write16(d, 0x04, cmd & ~3);
	uint8_t off = BAR0 + 4 * bar;
	uint32_t lo = pci_read32(d, off), hi = 0, mlo, mhi = 0xffffffff;
	pci_write32(d, off, 0xffffffff);
	mlo = pci_read32(d, off);
	pci_write32(d, off, lo);
	if (is64) {
		hi = pci_read32(d, off + 4);
		pci_write32(d, off + 4, 0xffffffff);
		mhi = pci_read32(d, off + 4);
		pci_write32(d, off + 4, hi);
	}
	pci_write16(d, 0x04, cmd);
	uint64_t mask = (uint64_t)mhi << 32 | (mlo & ~0xfu);
	if (!is64)
		mask |= 0xffffffff00000000ull;
	return mask ? ~mask + 1 : 0;
}

/* First free address in the hole above every memory BAR already there. */
static uint64_t hole_free(uint64_t align)
{
	uint64_t top = HOLE_START;
	for (int dev = 0; dev < 32; dev++) {
		struct pci_dev d = { 0, (uint8_t)dev, 0, 0, 0 };
		if ((pci_read32(&d, 0) & 0xffff) == 0xffff)
			continue;
		for (int b = 0; b < 6; b++) {
			bool is64;
			uint32_t lo = pci_read32(&d, BAR0 + 4 * b);
			if (lo & 1)
				continue;
			uint64_t a = bar_raw(&d, b, &is64);
			if (a >= HOLE_START && a < HOLE_END) {
				uint64_t end = a + bar_size(&d, b, is64);
				if (end > top)
					top = end;
			}
			if (is64)
				b++;
		}
	}
	return (top + align - 1) & ~(align - 1);
}

uint64_t pci_bar(const struct pci_dev *d, int bar, uint64_t *size)
{
	bool is64;
	if (bar < 0 || bar > 5 || (pci_read32(d, BAR0 + 4 * bar) & 1))
		return 0;
	uint64_t a = bar_raw(d, bar, &is64);
	uint64_t sz = bar_size(d, bar, is64);
	if (!sz || (sz & (sz - 1)))
		return 0;
	if (!a) {
		/* Firmware without PCI enumeration (or a VMM that leaves it
		 * to the guest): place the BAR ourselves. */
		a = hole_free(sz < 4096 ? 4096 : sz);
		if (a + sz > HOLE_END)
			return 0;
		pci_write32(d, BAR0 + 4 * bar, (uint32_t)a);
		if (is64)
			pci_write32(d, BAR0 + 4 * bar + 4, 0);
		printf("PCI: %02x.%x BAR%d assigned at 0x%lx\n", d->dev, d->fn, bar, a);
	}
	if (size)
		*size = sz;
	return a;
}

void pci_enable(const struct pci_dev *d)
{
	uint16_t cmd = pci_read16(d, 0x04);
	pci_write16(d, 0x04, cmd | 0x0002 | 0x0004 | 0x0400);
}
