/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PCI Express ECAM against configuration mechanism #1, from ring 3.  Finds
 * the MCFG table through the RSDP and XSDT, then walks every bus the MCFG
 * covers with both mechanisms: IDs of every device and function must
 * agree, and for every function conf1 finds, all 256 bytes (as dwords) and
 * the 64-byte header (as words and bytes) must read the same through
 * ECAM.  The Interrupt Line register is written through one mechanism and
 * read back through the other.  Prints "ECAM: N functions agree with
 * conf1".  Command line:
 *   min_functions=N  fail unless at least N functions were found
 *   platform=vireo   also check docs/platform.md: one MCFG entry, ECAM at
 *                    0xE0000000 for bus 0 only, extended registers of
 *                    every function read 0, and 8-byte or dword-crossing
 *                    reads return all-ones
 */
#include "pci.h"

const char guest_name[] = "ecam";

static uint64_t ecam_addr(uint8_t bus, uint8_t dev, uint8_t fn, uint16_t reg)
{
	return acpi.ecam_base + ((uint64_t)bus << 20 | (uint64_t)dev << 15 | (uint64_t)fn << 12 | reg);
}

static uint32_t ecam_read(const struct pci_dev *d, uint16_t reg, int len)
{
	uint64_t a = ecam_addr(d->bus, d->dev, d->fn, reg);
	if (len == 1)
		return *(volatile uint8_t *)a;
	if (len == 2)
		return *(volatile uint16_t *)a;
	return *(volatile uint32_t *)a;
}

static uint32_t conf1_read(const struct pci_dev *d, uint8_t reg, int len)
{
	if (len == 1)
		return pci_read8(d, reg);
	if (len == 2)
		return pci_read16(d, reg);
	return pci_read32(d, reg);
}

/* The window must be reachable through the identity map and not be RAM. */
static void check_window(void)
{
	uint64_t start = acpi.ecam_base + ((uint64_t)acpi.ecam_bus_start << 20);
	uint64_t end = acpi.ecam_base + (((uint64_t)acpi.ecam_bus_end + 1) << 20);
	printf("MCFG: %d entries, segment 0 at 0x%lx, buses %u-%u\n", acpi.ecam_entries,
	       acpi.ecam_base, acpi.ecam_bus_start, acpi.ecam_bus_end);
	CHECK(acpi.ecam_base && !(acpi.ecam_base & 0xfffff), "ECAM base 0x%lx", acpi.ecam_base);
	CHECK(acpi.ecam_bus_start <= acpi.ecam_bus_end, "MCFG bus range %u-%u",
	      acpi.ecam_bus_start, acpi.ecam_bus_end);
	CHECK(end <= 0x100000000ull && end > start, "ECAM [0x%lx, 0x%lx) not below 4 GiB", start, end);
	for (int i = 0; i < bootinfo.nmem; i++) {
		const struct memrange *m = &bootinfo.mem[i];
		CHECK(m->type != 1 || m->addr + m->size <= start || m->addr >= end,
		      "ECAM [0x%lx, 0x%lx) overlaps RAM [0x%lx, 0x%lx)", start, end, m->addr,
		      m->addr + m->size);
	}
}

static void compare_function(const struct pci_dev *d)
{
	for (int reg = 0; reg < 256; reg += 4) {
		uint32_t a = conf1_read(d, (uint8_t)reg, 4), b = ecam_read(d, (uint16_t)reg, 4);
		CHECK(a == b, "%02x:%02x.%x reg 0x%02x: conf1 %08x, ECAM %08x", d->bus, d->dev, d->fn,
		      reg, a, b);
	}
	for (int len = 1; len <= 2; len *= 2)
		for (int reg = 0; reg < 64; reg += len) {
			uint32_t a = conf1_read(d, (uint8_t)reg, len), b = ecam_read(d, (uint16_t)reg, len);
			CHECK(a == b, "%02x:%02x.%x reg 0x%02x (%d bytes): conf1 %x, ECAM %x", d->bus,
			      d->dev, d->fn, reg, len, a, b);
		}
}

/* Interrupt Line (0x3c) is read-write on every function. */
static void cross_write(const struct pci_dev *d)
{
	uint8_t old = pci_read8(d, 0x3c);
	*(volatile uint8_t *)ecam_addr(d->bus, d->dev, d->fn, 0x3c) = 0xa5;
	uint8_t via_conf1 = pci_read8(d, 0x3c);
	pci_write8(d, 0x3c, 0x5a);
	uint8_t via_ecam = (uint8_t)ecam_read(d, 0x3c, 1);
	pci_write8(d, 0x3c, old);
	CHECK(via_conf1 == 0xa5 && via_ecam == 0x5a,
	      "%02x:%02x.%x interrupt line: ECAM wrote a5, conf1 read %x; conf1 wrote 5a, ECAM read %x",
	      d->bus, d->dev, d->fn, via_conf1, via_ecam);
}

/* docs/platform.md: what vireo's ECAM does with the rest of the window. */
static void check_vireo_function(const struct pci_dev *d)
{
	for (uint16_t reg = 0x100; reg < 0x1000; reg += 0x3fc) {
		uint32_t v = ecam_read(d, reg, 4);
		CHECK(v == 0, "%02x:%02x.%x extended reg 0x%x reads %x, not 0", d->bus, d->dev, d->fn,
		      reg, v);
	}
	uint64_t q = *(volatile uint64_t *)ecam_addr(d->bus, d->dev, d->fn, 0);
	CHECK(q == ~0ull, "%02x:%02x.%x 8-byte read gives %lx, not all-ones", d->bus, d->dev, d->fn, q);
	uint32_t x = *(volatile uint32_t *)ecam_addr(d->bus, d->dev, d->fn, 2);
	CHECK(x == ~0u, "%02x:%02x.%x dword read at 2 gives %x, not all-ones", d->bus, d->dev, d->fn, x);
}

static int walk_device(uint8_t bus, uint8_t dev, bool vireo)
{
	int found = 0;
	for (uint8_t fn = 0; fn < 8; fn++) {
		struct pci_dev d = { bus, dev, fn, 0, 0 };
		uint32_t a = pci_read32(&d, 0), b = ecam_read(&d, 0, 4);
		CHECK(a == b, "%02x:%02x.%x IDs: conf1 %08x, ECAM %08x", bus, dev, fn, a, b);
		if ((a & 0xffff) == 0xffff) {
			if (fn == 0)
				return 0;	/* no device: no functions */
			continue;
		}
		compare_function(&d);
		cross_write(&d);
		if (vireo)
			check_vireo_function(&d);
		printf("PCI: %02x:%02x.%x %04x:%04x agrees\n", bus, dev, fn, a & 0xffff, a >> 16);
		found++;
	}
	return found;
}

void guest_main(void)
{
	char platform[16];
	bool vireo = cmdline_get("platform", platform, sizeof(platform)) != NULL;
	CHECK(!vireo || !strcmp(platform, "vireo"), "unknown platform=%s", platform);
	CHECK(acpi_init() == 0, "no ACPI tables (RSDP %lx)", bootinfo.rsdp);
	CHECK(acpi.bad_checksums == 0, "%d ACPI tables with bad checksums", acpi.bad_checksums);
	CHECK(acpi.mcfg, "no MCFG table in the XSDT/RSDT");
	CHECK(acpi.ecam_entries > 0 && acpi.ecam_base, "MCFG has no entry for segment 0");
	check_window();
	if (vireo)
		CHECK(acpi.ecam_entries == 1 && acpi.ecam_base == 0xe0000000ull &&
			      acpi.ecam_bus_start == 0 && acpi.ecam_bus_end == 0,
		      "MCFG is not one entry for bus 0 at 0xe0000000");
	int n = 0;
	for (unsigned bus = acpi.ecam_bus_start; bus <= acpi.ecam_bus_end; bus++)
		for (uint8_t dev = 0; dev < 32; dev++)
			n += walk_device((uint8_t)bus, dev, vireo);
	printf("ECAM: %d functions agree with conf1\n", n);
	uint64_t min = cmdline_u64("min_functions", 1);
	CHECK((uint64_t)n >= min, "%d PCI functions, expected at least %lu", n, min);
}
