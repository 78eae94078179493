/* SPDX-License-Identifier: Apache-2.0 */
/* The ACPI tables read back the way an OS finds them: RSDP -> XSDT -> each
 * table, with offsets taken from ACPI 6.x chapter 5 (written out here
 * independently of acpi.c). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/acpi.h"
#include "arch/x86/aml.h"

#define GPA 0xe0000u
#define AREA 0x10000u
#define CANARY 0xa5

struct tables {
	const uint8_t *area;
	size_t len;
	const uint8_t *rsdp, *xsdt, *fadt, *facs, *madt, *mcfg, *dsdt;
};

static uint64_t get(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;
	for (size_t i = 0; i < n; i++)
		s = (uint8_t)(s + p[i]);
	return s;
}

static struct acpi_config base_config(unsigned ncpus)
{
	struct acpi_config c = {
		.ncpus = ncpus, .lapic_addr = 0xfee00000u, .ioapic_addr = 0xfec00000u,
		.ioapic_id = 0, .pm1a_evt_port = 0x600, .pm1a_cnt_port = 0x604,
		.pm_tmr_port = 0x608, .sci_irq = 9, .reset_port = 0xcf9,
		.reset_value = 0x06, .s5_slp_typ = 5,
		.pci_mmio32_base = 0xc0000000u, .pci_mmio32_size = 0x20000000u,
	};
	return c;
}

static struct acpi_config ecam_config(unsigned ncpus)
{
	struct acpi_config c = base_config(ncpus);
	c.pci_ecam_base = 0xe0000000u;
	c.pci_ecam_end_bus = 0x3f;
	c.pci_mmio32_size = 0x10000000u;
	for (int i = 0; i < 4; i++)
		c.pci_intx_gsi[i] = (uint8_t)(16 + i);
	return c;
}

/* A table at gpa that lies wholly inside the area, with a valid checksum
 * and a plausible header, or a failed assertion. */
static const uint8_t *table(const struct tables *t, uint64_t gpa, const char *sig)
{
	assert_true(gpa >= GPA && gpa + 36 <= GPA + t->len);
	const uint8_t *p = t->area + (gpa - GPA);
	size_t len = (size_t)get(p + 4, 4);
	assert_memory_equal(p, sig, 4);
	assert_true(len >= 36 && gpa + len <= GPA + t->len);
	assert_int_equal(sum(p, len), 0);
	assert_memory_equal(p + 10, "VIREO ", 6);
	assert_memory_equal(p + 16, "VIREOVM ", 8);
	assert_true(gpa % 8 == 0);   /* keeps 64-bit fields naturally aligned */
	return p;
}

static void walk(struct tables *t, const uint8_t *area, size_t len, uint64_t rsdp_gpa)
{
	memset(t, 0, sizeof(*t));
	t->area = area;
	t->len = len;
	assert_int_equal(rsdp_gpa, GPA);   /* first, for the legacy scan */
	t->rsdp = area;
	assert_memory_equal(t->rsdp, "RSD PTR ", 8);
	assert_int_equal(sum(t->rsdp, 20), 0);
	assert_int_equal(sum(t->rsdp, 36), 0);
	assert_int_equal(t->rsdp[15], 2);
	assert_int_equal(get(t->rsdp + 20, 4), 36);
	assert_memory_equal(t->rsdp + 9, "VIREO ", 6);

	t->xsdt = table(t, get(t->rsdp + 24, 8), "XSDT");
	size_t xlen = (size_t)get(t->xsdt + 4, 4);
	assert_int_equal((xlen - 36) % 8, 0);
	for (size_t off = 36; off < xlen; off += 8) {
		uint64_t gpa = get(t->xsdt + off, 8);
		assert_true(gpa >= GPA && gpa + 36 <= GPA + len);
		const uint8_t *p = area + (gpa - GPA);
		if (memcmp(p, "FACP", 4) == 0 && !t->fadt)
			t->fadt = table(t, gpa, "FACP");
		else if (memcmp(p, "APIC", 4) == 0 && !t->madt)
			t->madt = table(t, gpa, "APIC");
		else if (memcmp(p, "MCFG", 4) == 0 && !t->mcfg)
			t->mcfg = table(t, gpa, "MCFG");
		else
			fail_msg("unexpected or repeated XSDT entry %.4s", (const char *)p);
	}
	assert_non_null(t->fadt);
	assert_non_null(t->madt);
	t->dsdt = table(t, get(t->fadt + 140, 8), "DSDT");
	uint64_t facs = get(t->fadt + 132, 8);
	assert_true(facs % 64 == 0 && facs >= GPA && facs + 64 <= GPA + len);
	t->facs = area + (facs - GPA);
}

/* Builds into a canary-filled area and checks nothing past the tables'
 * end was touched. */
static void build(uint8_t *area, const struct acpi_config *cfg, struct tables *t)
{
	struct verr err = { 0 };
	uint64_t rsdp = 0;

	memset(area, CANARY, AREA);
	assert_int_equal(acpi_build(area, GPA, AREA, cfg, &rsdp, &err), 0);
	assert_int_equal(err.code, 0);
	walk(t, area, AREA, rsdp);
}

static void check_fadt(const uint8_t *f, const struct tables *t, const struct acpi_config *c)
{
	static const uint8_t reset_gas[12] = { 1, 8, 0, 1, 0xf9, 0x0c };
	uint32_t flags = (uint32_t)get(f + 112, 4);

	assert_int_equal(get(f + 4, 4), 276);
	assert_int_equal(f[8], 6);
	assert_int_equal(get(f + 36, 4), get(f + 132, 8));      /* FACS both ways */
	assert_int_equal(get(f + 40, 4), get(f + 140, 8));      /* DSDT both ways */
	assert_int_equal(get(f + 46, 2), c->sci_irq);
	assert_int_equal(get(f + 48, 4), 0);                    /* SMI_CMD */
	assert_int_equal(get(f + 56, 4), c->pm1a_evt_port);
	assert_int_equal(get(f + 64, 4), c->pm1a_cnt_port);
	assert_int_equal(get(f + 76, 4), c->pm_tmr_port);
	assert_int_equal(f[88], 4);
	assert_int_equal(f[89], 2);
	assert_int_equal(f[91], 4);
	assert_int_equal(get(f + 109, 2) & 3, 3);               /* legacy devices, 8042 */
	assert_true(flags & (1u << 0));                         /* WBINVD */
	assert_false(flags & (1u << 4));                        /* fixed power button */
	assert_true(flags & (1u << 5));                         /* no sleep button */
	assert_true(flags & (1u << 10));                        /* RESET_REG_SUP */
	assert_false(flags & (1u << 20));                       /* not HW-reduced */
	assert_memory_equal(f + 116, reset_gas, sizeof(reset_gas));
	assert_int_equal(f[128], c->reset_value);
	assert_int_equal(get(f + 148 + 4, 8), c->pm1a_evt_port);  /* X_PM1a_EVT_BLK */
	assert_int_equal(get(f + 172 + 4, 8), c->pm1a_cnt_port);
	assert_int_equal(get(f + 208 + 4, 8), c->pm_tmr_port);
	assert_memory_equal(t->facs, "FACS", 4);
	assert_int_equal(get(t->facs + 4, 4), 64);
}

static void check_madt(const uint8_t *m, const struct acpi_config *c)
{
	size_t len = (size_t)get(m + 4, 4), off = 44;
	uint8_t seen[256] = { 0 };
	unsigned lapics = 0, ioapics = 0, nmis = 0, iso0 = 0, isosci = 0;

	assert_int_equal(get(m + 36, 4), c->lapic_addr);
	assert_int_equal(get(m + 40, 4) & 1, 1);                /* PCAT_COMPAT */
	while (off < len) {
		const uint8_t *e = m + off;
		assert_true(off + 2 <= len && e[1] >= 2 && off + e[1] <= len);
		switch (e[0]) {
		case 0:
			assert_int_equal(e[1], 8);
			assert_true(e[3] < c->ncpus && !seen[e[3]]);
			seen[e[3]] = 1;
			assert_int_equal(get(e + 4, 4) & 1, 1);
			lapics++;
			break;
		case 1:
			assert_int_equal(e[1], 12);
			assert_int_equal(e[2], c->ioapic_id);
			assert_int_equal(get(e + 4, 4), c->ioapic_addr);
			assert_int_equal(get(e + 8, 4), 0);
			ioapics++;
			break;
		case 2:
			assert_int_equal(e[1], 10);
			assert_int_equal(e[2], 0);
			if (e[3] == 0) {
				assert_int_equal(get(e + 4, 4), 2);
				assert_int_equal(get(e + 8, 2), 0);
				iso0++;
			} else {
				assert_int_equal(e[3], c->sci_irq);
				assert_int_equal(get(e + 4, 4), c->sci_irq);
				assert_int_equal(get(e + 8, 2), 0x0d);   /* level, active high */
				isosci++;
			}
			break;
		case 4:
			assert_int_equal(e[1], 6);
			assert_int_equal(e[2], 0xff);
			assert_int_equal(e[5], 1);
			nmis++;
			break;
		default:
			fail_msg("unexpected MADT entry type %u", e[0]);
		}
		off += e[1];
	}
	assert_int_equal(off, len);
	assert_int_equal(lapics, c->ncpus);
	assert_int_equal(ioapics, 1);
	assert_int_equal(iso0, 1);
	assert_int_equal(isosci, 1);
	assert_int_equal(nmis, 1);
}

static int contains(const uint8_t *p, size_t n, const void *needle, size_t k)
{
	for (size_t i = 0; i + k <= n; i++)
		if (memcmp(p + i, needle, k) == 0)
			return 1;
	return 0;
}

/* Finds Name(_PRT, Package(124){...}) and checks slot 3, pin 2 (INTC):
 * GSI pci_intx_gsi[(3 + 2) % 4]. */
static void check_prt(const uint8_t *d, size_t len, const struct acpi_config *c)
{
	static const uint8_t name[] = { 0x08, '_', 'P', 'R', 'T', 0x12 };
	const uint8_t want[] = { 0x12, 0x0c, 0x04, 0x0c, 0xff, 0xff, 0x03, 0x00, 0x0a, 0x02,
				 0x00, 0x0a, c->pci_intx_gsi[1] };
	int any = c->pci_intx_gsi[0] | c->pci_intx_gsi[1] | c->pci_intx_gsi[2] |
		  c->pci_intx_gsi[3];
	size_t at = 0;

	while (at + sizeof(name) <= len && memcmp(d + at, name, sizeof(name)) != 0)
		at++;
	if (!any) {
		assert_true(at + sizeof(name) > len);
		return;
	}
	assert_true(at + sizeof(name) + 3 <= len);
	/* A two-byte PkgLength, then 31 slots x 4 pins. */
	assert_int_equal(d[at + 6] >> 6, 1);
	assert_int_equal(d[at + 8], 124);
	assert_true(contains(d + at, len - at, want, sizeof(want)));
}

static void check_dsdt(const uint8_t *d, const struct acpi_config *c)
{
	size_t len = (size_t)get(d + 4, 4);
	const uint8_t s5[] = { 0x08, '\\', '_', 'S', '5', '_', 0x12, 0x08, 0x04, 0x0a,
			       c->s5_slp_typ, 0x0a, c->s5_slp_typ, 0x00, 0x00 };
	uint8_t hid[5] = { 0x0c };

	assert_int_equal(d[8], 2);
	assert_true(contains(d, len, s5, sizeof(s5)));
	static const char *const ids[] = { "PNP0A08", "PNP0A03", "PNP0501", "PNP0B00", "PNP0303" };
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		uint32_t v = (uint32_t)aml_eisaid_value(ids[i]);
		for (unsigned b = 0; b < 4; b++)
			hid[1 + b] = (uint8_t)(v >> (8 * b));
		assert_true(contains(d, len, hid, sizeof(hid)));
	}
	assert_true(contains(d, len, "PCI0", 4));
	assert_true(contains(d, len, "COM1", 4));
	check_prt(d, len, c);
}

static void check_mcfg(const struct tables *t, const struct acpi_config *c)
{
	if (!c->pci_ecam_base) {
		assert_null(t->mcfg);
		return;
	}
	assert_non_null(t->mcfg);
	assert_int_equal(get(t->mcfg + 4, 4), 60);
	assert_int_equal(get(t->mcfg + 44, 8), c->pci_ecam_base);
	assert_int_equal(get(t->mcfg + 52, 2), 0);
	assert_int_equal(t->mcfg[54], 0);
	assert_int_equal(t->mcfg[55], c->pci_ecam_end_bus);
}

static void check_all(const struct acpi_config *cfg)
{
	uint8_t *area = malloc(AREA);
	struct tables t;

	assert_non_null(area);
	build(area, cfg, &t);
	check_fadt(t.fadt, &t, cfg);
	check_madt(t.madt, cfg);
	check_dsdt(t.dsdt, cfg);
	check_mcfg(&t, cfg);
	free(area);
}

static void cpus(void **state)
{
	static const unsigned counts[] = { 1, 2, 8, 255 };
	(void)state;
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		struct acpi_config c = base_config(counts[i]);
		check_all(&c);
		c = ecam_config(counts[i]);
		check_all(&c);
	}
}

static void other_values(void **state)
{
	struct acpi_config c = base_config(3);
	(void)state;
	c.pm1a_evt_port = 0xb000;
	c.pm1a_cnt_port = 0xb004;
	c.pm_tmr_port = 0xb008;
	c.sci_irq = 11;
	c.reset_value = 0x0e;
	c.s5_slp_typ = 7;
	c.ioapic_id = 3;
	c.pci_mmio32_size = 0;    /* no MMIO window at all */
	check_all(&c);
}

/* The smallest len that succeeds, found by bisection. */
static size_t needed(const struct acpi_config *cfg, uint8_t *area)
{
	size_t lo = 0, hi = AREA;
	uint64_t rsdp;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		struct verr err = { 0 };
		if (acpi_build(area, GPA, mid, cfg, &rsdp, &err) == 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

static void too_small(void **state)
{
	uint8_t *area = malloc(AREA);
	(void)state;

	assert_non_null(area);
	for (unsigned n = 1; n <= 255; n += 127) {
		struct acpi_config c = ecam_config(n);
		size_t need = needed(&c, area);
		assert_true(need > 36 && need < AREA);
		size_t lens[] = { 0, 1, 35, 36, need / 2, need - 1 };
		for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
			struct verr err = { 0 };
			uint64_t rsdp = 0;
			memset(area, CANARY, AREA);
			assert_int_equal(acpi_build(area, GPA, lens[i], &c, &rsdp, &err), -ENOSPC);
			assert_int_equal(err.code, ENOSPC);
			assert_non_null(strstr(err.msg, "bytes"));
			for (size_t b = 0; b < AREA; b++)
				assert_int_equal(area[b], CANARY);
		}
		/* At exactly the size it fits, and writes nothing beyond. */
		struct verr err = { 0 };
		uint64_t rsdp = 0;
		memset(area, CANARY, AREA);
		assert_int_equal(acpi_build(area, GPA, need, &c, &rsdp, &err), 0);
		for (size_t b = need; b < AREA; b++)
			assert_int_equal(area[b], CANARY);
	}
	free(area);
}

static void expect_einval(const struct acpi_config *c, uint64_t gpa)
{
	uint8_t *area = malloc(AREA);
	struct verr err = { 0 };
	uint64_t rsdp = 0;

	assert_non_null(area);
	assert_int_equal(acpi_build(area, gpa, AREA, c, &rsdp, &err), -EINVAL);
	assert_int_equal(err.code, EINVAL);
	assert_true(err.msg[0] != '\0');
	free(area);
}

static void bad_config(void **state)
{
	struct acpi_config c;
	(void)state;

	c = base_config(0);
	expect_einval(&c, GPA);
	c = base_config(256);
	expect_einval(&c, GPA);
	c = base_config(1);
	c.sci_irq = 0;
	expect_einval(&c, GPA);
	c = base_config(1);
	c.sci_irq = 16;
	expect_einval(&c, GPA);
	c = base_config(1);
	c.s5_slp_typ = 8;
	expect_einval(&c, GPA);
	c = base_config(1);
	c.pci_mmio32_base = 0xf0000000u;
	c.pci_mmio32_size = 0x20000000u;
	expect_einval(&c, GPA);
	c = base_config(1);
	c.pci_ecam_base = 0xe0000800u;
	expect_einval(&c, GPA);
	c = ecam_config(1);
	c.pci_mmio32_size = 0x20000001u;            /* one byte into the ECAM */
	expect_einval(&c, GPA);
	c = base_config(1);
	c.pci_intx_gsi[2] = 9;                      /* an ISA IRQ */
	expect_einval(&c, GPA);
	c = base_config(1);
	expect_einval(&c, GPA + 8);                 /* misaligned area */
	expect_einval(&c, 0xffffff00u);             /* would cross 4 GiB */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(cpus),
		cmocka_unit_test(other_values),
		cmocka_unit_test(too_small),
		cmocka_unit_test(bad_config),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
