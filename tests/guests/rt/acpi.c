/* SPDX-License-Identifier: Apache-2.0 */
/* ACPI (RSDP -> XSDT/RSDT -> FADT, MADT, MCFG, DSDT's \_S5) and MP 1.4 table
 * readers.  Only tables below 4 GiB are reachable (the identity map). */
#include "rt.h"

struct acpi acpi;

#define LOW4G(a) ((a) && (a) < 0x100000000ull)

static uint8_t sum8(uint64_t p, uint64_t n)
{
	uint8_t s = 0;
	for (uint64_t i = 0; i < n; i++)
		s += *(volatile uint8_t *)(p + i);
	return s;
}

static uint32_t u32(uint64_t p) { return *(volatile uint32_t *)p; }
static uint64_t u64(uint64_t p) { return *(volatile uint64_t *)p; }

static uint64_t find_rsdp(void)
{
	if (LOW4G(bootinfo.rsdp))
		return bootinfo.rsdp;
	uint64_t ebda = (uint64_t)*(volatile uint16_t *)0x40e << 4;
	if (ebda >= 0x80000 && ebda < 0xa0000)
		for (uint64_t p = ebda; p < ebda + 1024; p += 16)
			if (!memcmp((void *)p, "RSD PTR ", 8))
				return p;
	for (uint64_t p = 0xe0000; p < 0x100000; p += 16)
		if (!memcmp((void *)p, "RSD PTR ", 8) && !sum8(p, 20))
			return p;
	return 0;
}

static void read_gas(struct gas *g, uint64_t p)
{
	g->space = *(volatile uint8_t *)p;
	g->width = *(volatile uint8_t *)(p + 1);
	g->offset = *(volatile uint8_t *)(p + 2);
	g->access = *(volatile uint8_t *)(p + 3);
	g->addr = u64(p + 4);
}

void gas_write(const struct gas *g, uint64_t v)
{
	if (g->space == 1) {			/* system I/O */
		if (g->width == 16) outw((uint16_t)g->addr, (uint16_t)v);
		else if (g->width == 32) outl((uint16_t)g->addr, (uint32_t)v);
		else outb((uint16_t)g->addr, (uint8_t)v);
	} else if (g->space == 0 && LOW4G(g->addr)) {	/* system memory */
		if (g->width == 16) *(volatile uint16_t *)g->addr = (uint16_t)v;
		else if (g->width == 32) *(volatile uint32_t *)g->addr = (uint32_t)v;
		else *(volatile uint8_t *)g->addr = (uint8_t)v;
	}
}

/* Scan the DSDT's AML for Name(_S5, Package(){a, ...}) and return a. */
static int find_s5(uint64_t dsdt)
{
	uint32_t len = u32(dsdt + 4);
	const volatile uint8_t *a = (const volatile uint8_t *)dsdt;
	for (uint32_t i = 36; i + 10 < len; i++) {
		if (a[i] != '_' || a[i + 1] != 'S' || a[i + 2] != '5' || a[i + 3] != '_')
			continue;
		uint32_t j = i + 4;
		if (a[j++] != 0x12)		/* PackageOp */
			continue;
		j += 1 + (a[j] >> 6);		/* PkgLength */
		j++;				/* NumElements */
		switch (a[j]) {
		case 0x00: return 0;		/* ZeroOp */
		case 0x01: return 1;		/* OneOp */
		case 0x0a: return a[j + 1];	/* BytePrefix */
		default: return a[j] < 8 ? a[j] : -1;
		}
	}
	return -1;
}

static void parse_fadt(uint64_t f)
{
	uint32_t len = u32(f + 4);
	acpi.fadt = f;
	acpi.pm1a_cnt = u32(f + 64);
	acpi.pm1a_evt = u32(f + 56);
	acpi.sci_int = *(volatile uint16_t *)(f + 46);
	acpi.pm_tmr = u32(f + 76);
	uint32_t flags = len >= 116 ? u32(f + 112) : 0;
	acpi.hw_reduced = flags & (1u << 20);
	if (len >= 129) {
		acpi.reset_sup = flags & (1u << 10);
		read_gas(&acpi.reset_reg, f + 116);
		acpi.reset_val = *(volatile uint8_t *)(f + 128);
	}
	uint64_t dsdt = u32(f + 40);
	if (len >= 148 && LOW4G(u64(f + 140)))
		dsdt = u64(f + 140);
	if (!acpi.pm1a_cnt && len >= 184) {
		struct gas g;
		read_gas(&g, f + 172);
		if (g.space == 1)
			acpi.pm1a_cnt = (uint32_t)g.addr;
	}
	if (len >= 256)
		read_gas(&acpi.sleep_ctl, f + 244);
	if (LOW4G(dsdt)) {
		acpi.dsdt = dsdt;
		if (sum8(dsdt, u32(dsdt + 4)))
			acpi.bad_checksums++;
		acpi.s5_typ = find_s5(dsdt);
	}
}

static void parse_madt(uint64_t m)
{
	uint32_t len = u32(m + 4);
	acpi.madt = m;
	acpi.lapic_addr = u32(m + 36);
	for (uint32_t off = 44; off + 2 <= len;) {
		uint8_t type = *(volatile uint8_t *)(m + off);
		uint8_t elen = *(volatile uint8_t *)(m + off + 1);
		if (elen < 2)
			break;
		if (type == 0 && elen >= 8 && (u32(m + off + 4) & 1) && acpi.ncpus < 256)
			acpi.apic_ids[acpi.ncpus++] = *(volatile uint8_t *)(m + off + 3);
		else if (type == 9 && elen >= 16 && (u32(m + off + 8) & 1) && acpi.ncpus < 256)
			acpi.apic_ids[acpi.ncpus++] = (uint8_t)u32(m + off + 4);
		else if (type == 1 && elen >= 12) {
			if (!acpi.ioapics++) {
				acpi.ioapic_id = *(volatile uint8_t *)(m + off + 2);
				acpi.ioapic_addr = u32(m + off + 4);
				acpi.ioapic_gsi_base = u32(m + off + 8);
			}
		} else if (type == 2 && elen >= 10) {
			acpi.overrides++;
			if (*(volatile uint8_t *)(m + off + 2) == 0 && *(volatile uint8_t *)(m + off + 3) == 0) {
				acpi.isa0_overridden = 1;
				acpi.isa0_gsi = u32(m + off + 4);
			}
		}
		off += elen;
	}
}

/* MCFG (PCI Firmware 3.x, 4.1.2): 16-byte entries after a 44-byte header,
 * as many as the table length holds. */
static void parse_mcfg(uint64_t t)
{
	uint32_t len = u32(t + 4);
	acpi.mcfg = t;
	for (uint32_t off = 44; off + 16 <= len && acpi.ecam_entries < 256; off += 16) {
		uint16_t seg = *(volatile uint16_t *)(t + off + 8);
		if (seg == 0 && !acpi.ecam_base) {
			acpi.ecam_base = u64(t + off);
			acpi.ecam_bus_start = *(volatile uint8_t *)(t + off + 10);
			acpi.ecam_bus_end = *(volatile uint8_t *)(t + off + 11);
		}
		acpi.ecam_entries++;
	}
}

static void parse_table(uint64_t t)
{
	if (!LOW4G(t))
		return;
	if (sum8(t, u32(t + 4)))
		acpi.bad_checksums++;
	if (!memcmp((void *)t, "FACP", 4))
		parse_fadt(t);
	else if (!memcmp((void *)t, "APIC", 4))
		parse_madt(t);
	else if (!memcmp((void *)t, "MCFG", 4) && !acpi.mcfg)
		parse_mcfg(t);
}

int acpi_init(void)
{
	if (acpi.ok)
		return 0;
	acpi.s5_typ = -1;
	uint64_t rsdp = find_rsdp();
	if (!rsdp || memcmp((void *)rsdp, "RSD PTR ", 8))
		return -1;
	acpi.rsdp = rsdp;
	if (sum8(rsdp, 20))
		acpi.bad_checksums++;
	uint8_t rev = *(volatile uint8_t *)(rsdp + 15);
	uint64_t xsdt = rev >= 2 ? u64(rsdp + 24) : 0;
	if (rev >= 2 && sum8(rsdp, u32(rsdp + 20)))
		acpi.bad_checksums++;
	if (LOW4G(xsdt)) {
		uint32_t len = u32(xsdt + 4);
		if (sum8(xsdt, len))
			acpi.bad_checksums++;
		for (uint32_t off = 36; off + 8 <= len; off += 8)
			parse_table(u64(xsdt + off));
	} else {
		uint64_t rsdt = u32(rsdp + 16);
		if (!LOW4G(rsdt))
			return -1;
		uint32_t len = u32(rsdt + 4);
		if (sum8(rsdt, len))
			acpi.bad_checksums++;
		for (uint32_t off = 36; off + 4 <= len; off += 4)
			parse_table(u32(rsdt + off));
	}
	acpi.ok = acpi.fadt != 0;
	return acpi.ok ? 0 : -1;
}

void acpi_poweroff(void)
{
	if (acpi_init() || acpi.s5_typ < 0)
		return;
	if (acpi.hw_reduced || !acpi.pm1a_cnt) {
		/* HW-reduced ACPI: SLP_TYP in bits 2-4, SLP_EN bit 5. */
		if (acpi.sleep_ctl.addr)
			gas_write(&acpi.sleep_ctl, (uint64_t)(acpi.s5_typ & 7) << 2 | 1u << 5);
		return;
	}
	outw((uint16_t)acpi.pm1a_cnt, (uint16_t)((acpi.s5_typ & 7) << 10 | 1u << 13));
}

/* MP 1.4: the floating pointer lives in the EBDA's first KiB, the last KiB
 * of base memory or the BIOS area 0xF0000-0xFFFFF, 16-byte aligned. */
static uint64_t mp_find_in(uint64_t start, uint64_t len)
{
	for (uint64_t p = start; p + 16 <= start + len; p += 16)
		if (!memcmp((void *)p, "_MP_", 4) && !sum8(p, 16))
			return p;
	return 0;
}

int mp_scan(struct mptable *mp)
{
	memset(mp, 0, sizeof(*mp));
	mp->bsp_apic_id = -1;
	uint64_t ebda = (uint64_t)*(volatile uint16_t *)0x40e << 4;
	uint64_t fp = 0;
	if (ebda >= 0x80000 && ebda < 0xa0000)
		fp = mp_find_in(ebda, 1024);
	if (!fp)
		fp = mp_find_in(0x9fc00, 1024);
	if (!fp)
		fp = mp_find_in(0xf0000, 0x10000);
	if (!fp)
		return -1;
	uint64_t cfg = u32(fp + 4);
	if (!cfg || *(volatile uint8_t *)(fp + 11))
		return -1;	/* default configurations are not used by vireo */
	if (memcmp((void *)cfg, "PCMP", 4))
		return -1;
	uint16_t len = *(volatile uint16_t *)(cfg + 4);
	uint16_t count = *(volatile uint16_t *)(cfg + 34);
	if (sum8(cfg, len))
		mp->bad_checksums++;
	uint64_t p = cfg + 44, end = cfg + len;
	unsigned walked = 0;
	/* Walk by the table length; the entry count is checked, not trusted. */
	while (p < end && walked < 1024) {
		uint8_t type = *(volatile uint8_t *)p;
		if (type == 0) {
			uint8_t id = *(volatile uint8_t *)(p + 1);
			uint8_t flags = *(volatile uint8_t *)(p + 3);
			if ((flags & 1) && mp->ncpus < 256) {
				mp->apic_ids[mp->ncpus++] = id;
				if (flags & 2)
					mp->bsp_apic_id = id;
			}
			p += 20;
		} else if (type <= 4) {
			if (type == 1 && !memcmp((void *)(p + 2), "ISA   ", 6))
				mp->isa_buses++;
			if (type == 2 && (*(volatile uint8_t *)(p + 3) & 1)) {
				if (!mp->ioapics++)
					mp->ioapic_addr = u32(p + 4);
			}
			if (type == 3)
				mp->irq_entries++;
			p += 8;
		} else {
			break;	/* extended entries only follow the base table */
		}
		walked++;
	}
	mp->count_mismatch = walked != count;
	mp->ok = true;
	return 0;
}
