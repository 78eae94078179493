/* SPDX-License-Identifier: Apache-2.0 */
/*
 * acpi_dump DIR NCPUS [ECAM]: builds vireo's ACPI tables as the VMM would
 * (at 0xE0000), then follows RSDP -> XSDT -> FADT like an OS and writes each
 * table it reaches to DIR/<SIGNATURE>.dat for iasl_check.py to disassemble.
 * With ECAM it also wires PCI INTA-D to GSI 16-19, for a _PRT.
 * It also writes SSDT.dat, an AML sample using every aml.h builder, so
 * iasl checks encodings the DSDT itself does not use.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/acpi.h"
#include "arch/x86/aml.h"

#define AREA_GPA 0xe0000u
#define AREA_LEN 0x10000u

static uint64_t get(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static int dump(const char *dir, const char *name, const uint8_t *p, size_t n)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s.dat", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		fprintf(stderr, "acpi_dump: cannot write %s\n", path);
		return -1;
	}
	return 0;
}

/* The table at gpa, bounds-checked against the area, or NULL. */
static const uint8_t *table_at(const uint8_t *area, uint64_t gpa, size_t *len)
{
	if (gpa < AREA_GPA || gpa - AREA_GPA + 8 > AREA_LEN)
		return NULL;
	const uint8_t *t = area + (gpa - AREA_GPA);
	*len = memcmp(t, "FACS", 4) == 0 ? 64 : (size_t)get(t + 4, 4);
	if (*len < 8 || gpa - AREA_GPA + *len > AREA_LEN)
		return NULL;
	return t;
}

static int dump_table(const char *dir, const uint8_t *area, uint64_t gpa)
{
	size_t len;
	const uint8_t *t = table_at(area, gpa, &len);
	char sig[5] = { 0 };

	if (!t) {
		fprintf(stderr, "acpi_dump: bad table pointer 0x%llx\n", (unsigned long long)gpa);
		return -1;
	}
	memcpy(sig, t, 4);
	if (dump(dir, sig, t, len) < 0)
		return -1;
	if (strcmp(sig, "FACP") == 0)
		return dump_table(dir, area, get(t + 140, 8)) |
		       dump_table(dir, area, get(t + 132, 8));
	return 0;
}

/* One of everything aml.h can emit, in a body iasl must accept. */
static void sample_aml(struct aml *a)
{
	aml_scope_begin(a, "\\_SB");
	aml_device_begin(a, "SMPL");
	aml_name_string(a, "_HID", "VIRE0001");
	aml_name_integer(a, "_UID", 0x123456789abcull);
	aml_name_integer(a, "INTW", 0x1234);
	aml_name_integer(a, "INTD", 0x12345678);
	aml_name_integer(a, "VONE", 1);
	aml_name(a, "BUF");
	aml_buffer_begin(a);
	for (int i = 0; i < 100; i++)
		aml_byte(a, (uint8_t)i);
	aml_end(a);
	aml_name(a, "_CRS");
	aml_restemplate_begin(a);
	aml_res_irq(a, 5, true, true, true);
	aml_res_ext_irq(a, AML_IRQ_CONSUMER | AML_IRQ_ACTIVE_LOW | AML_IRQ_SHARED, 40);
	aml_res_qword_mem(a, false, true, 0x100000000ull, 0x1ffffffffull);
	aml_res_dword_mem(a, false, false, 0xd0000000u, 0xd0000fffu);
	aml_restemplate_end(a);
	aml_method_begin(a, "_STA", 0, false);
	aml_return_integer(a, 0x0f);
	aml_end(a);
	aml_method_begin(a, "GETP", 0, true);
	aml_return(a);
	aml_package_begin(a, 2);
	aml_string(a, "vireo");
	aml_eisaid(a, "PNP0C02");
	aml_end(a);
	aml_end(a);
	aml_end(a);
	aml_end(a);
	aml_name_integer(a, "\\_SB.SMPL.EXTR", 7);
}

static int dump_sample(const char *dir)
{
	static uint8_t t[4096];
	struct aml a;

	aml_init(&a, t + 36, sizeof(t) - 36);
	sample_aml(&a);
	if (aml_finish(&a) < 0) {
		fprintf(stderr, "acpi_dump: sample AML: %s\n", a.why);
		return -1;
	}
	size_t len = 36 + a.len;
	memcpy(t, "SSDT", 4);
	for (unsigned i = 0; i < 4; i++)
		t[4 + i] = (uint8_t)(len >> (8 * i));
	t[8] = 2;
	memcpy(t + 10, "VIREO VIREOSMP", 14);
	uint8_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum = (uint8_t)(sum + t[i]);
	t[9] = (uint8_t)-sum;
	return dump(dir, "SSDT", t, len);
}

int main(int argc, char **argv)
{
	static uint8_t area[AREA_LEN];
	struct acpi_config cfg = {
		.lapic_addr = 0xfee00000, .ioapic_addr = 0xfec00000, .ioapic_id = 0,
		.pm1a_evt_port = 0x600, .pm1a_cnt_port = 0x604, .pm_tmr_port = 0x608,
		.sci_irq = 9, .reset_port = 0xcf9, .reset_value = 0x06, .s5_slp_typ = 5,
		.pci_mmio32_base = 0xc0000000u, .pci_mmio32_size = 0x20000000u,
	};
	struct verr err = { 0 };
	uint64_t rsdp;

	if (argc < 3) {
		fprintf(stderr, "usage: acpi_dump DIR NCPUS [ECAM]\n");
		return 2;
	}
	cfg.ncpus = (unsigned)strtoul(argv[2], NULL, 0);
	if (argc > 3) {
		cfg.pci_ecam_base = strtoull(argv[3], NULL, 0);
		cfg.pci_ecam_end_bus = 0xff;
		cfg.pci_mmio32_size = 0x10000000u;   /* below the ECAM at 0xe0000000 */
		for (int i = 0; i < 4; i++)
			cfg.pci_intx_gsi[i] = (uint8_t)(16 + i);
	}
	if (acpi_build(area, AREA_GPA, sizeof(area), &cfg, &rsdp, &err) < 0) {
		fprintf(stderr, "acpi_dump: %s\n", err.msg);
		return 1;
	}
	const uint8_t *r = area + (rsdp - AREA_GPA);
	int bad = dump(argv[1], "RSDP", r, 36);
	uint64_t xsdt = get(r + 24, 8);
	size_t xlen;
	const uint8_t *x = table_at(area, xsdt, &xlen);
	if (!x || xlen < 36) {
		fprintf(stderr, "acpi_dump: bad XSDT\n");
		return 1;
	}
	bad |= dump(argv[1], "XSDT", x, xlen);
	for (size_t off = 36; off + 8 <= xlen; off += 8)
		bad |= dump_table(argv[1], area, get(x + off, 8));
	bad |= dump_sample(argv[1]);
	return bad ? 1 : 0;
}
