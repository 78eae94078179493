/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ACPI tables, laid out from ACPI 6.x chapter 5. Every table is sized first,
 * then the whole layout is checked against the buffer, and only then is guest
 * memory written; multi-byte fields go through put16/32/64 so neither host
 * alignment nor packing matters.
 */
#include "arch/x86/acpi.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include "arch/x86/aml.h"

#define ACPI_OEM_ID        "VIREO "
#define ACPI_OEM_TABLE_ID  "VIREOVM "
#define ACPI_OEM_REVISION  1
#define ACPI_CREATOR_ID    "VIRO"
#define ACPI_CREATOR_REV   1

enum { HDR_LEN = 36, HDR_LENGTH = 4, HDR_REVISION = 8, HDR_CHECKSUM = 9 };

/* RSDP (5.2.5.3). */
enum {
	RSDP_CHECKSUM = 8, RSDP_OEMID = 9, RSDP_REVISION = 15, RSDP_LENGTH = 20,
	RSDP_XSDT = 24, RSDP_EXT_CHECKSUM = 32, RSDP_LEN = 36, RSDP_V1_LEN = 20,
};

/* FADT (5.2.9), revision 6 layout. */
enum {
	FADT_FIRMWARE_CTRL = 36, FADT_DSDT = 40, FADT_PM_PROFILE = 45,
	FADT_SCI_INT = 46, FADT_SMI_CMD = 48, FADT_PM1A_EVT_BLK = 56,
	FADT_PM1A_CNT_BLK = 64, FADT_PM_TMR_BLK = 76, FADT_PM1_EVT_LEN = 88,
	FADT_PM1_CNT_LEN = 89, FADT_PM_TMR_LEN = 91, FADT_P_LVL2_LAT = 96,
	FADT_P_LVL3_LAT = 98, FADT_IAPC_BOOT_ARCH = 109, FADT_FLAGS = 112,
	FADT_RESET_REG = 116, FADT_RESET_VALUE = 128, FADT_MINOR_VERSION = 131,
	FADT_X_FIRMWARE_CTRL = 132, FADT_X_DSDT = 140, FADT_X_PM1A_EVT_BLK = 148,
	FADT_X_PM1A_CNT_BLK = 172, FADT_X_PM_TMR_BLK = 208, FADT_LEN = 276,
};

enum {
	FADT_F_WBINVD = 1u << 0, FADT_F_PROC_C1 = 1u << 2,
	FADT_F_SLP_BUTTON = 1u << 5, FADT_F_FIX_RTC = 1u << 6,
	FADT_F_RESET_REG_SUP = 1u << 10,
};

enum {
	BOOT_ARCH_LEGACY_DEVICES = 1u << 0, BOOT_ARCH_8042 = 1u << 1,
	BOOT_ARCH_VGA_NOT_PRESENT = 1u << 2,
};

enum { GAS_SYSTEM_IO = 1, GAS_ACCESS_BYTE = 1, GAS_ACCESS_WORD = 2, GAS_ACCESS_DWORD = 3 };

/* FACS (5.2.10): no checksum, 64-byte aligned. */
enum { FACS_LENGTH = 4, FACS_VERSION = 32, FACS_LEN = 64, FACS_ALIGN = 64 };

/* MADT (5.2.12). */
enum {
	MADT_LAPIC_ADDR = 36, MADT_FLAGS = 40, MADT_HDR_LEN = 44,
	MADT_LAPIC_LEN = 8, MADT_IOAPIC_LEN = 12, MADT_ISO_LEN = 10,
	MADT_LAPIC_NMI_LEN = 6,
	MADT_T_LAPIC = 0, MADT_T_IOAPIC = 1, MADT_T_ISO = 2, MADT_T_LAPIC_NMI = 4,
	MADT_PCAT_COMPAT = 1,
};

/* MPS INTI flags used by overrides and NMI entries. */
enum { INTI_ACTIVE_HIGH = 0x1, INTI_LEVEL = 0xc };

/* MCFG (PCI Firmware Specification 3.x, 4.1.2). */
enum { MCFG_HDR_LEN = 44, MCFG_ENTRY_LEN = 16 };

enum { TABLE_ALIGN = 16 };

/* Slots 1..31 of bus 0 may raise INTx; slot 0 is the host bridge. */
enum { PCI_INTX_SLOTS = 31 };

struct layout {
	size_t rsdp, xsdt, fadt, facs, madt, mcfg, dsdt, end;
	size_t xsdt_len, madt_len, mcfg_len, dsdt_len;
	unsigned xsdt_entries;
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)v);
	put16(p + 2, (uint16_t)(v >> 16));
}

static void put64(uint8_t *p, uint64_t v)
{
	put32(p, (uint32_t)v);
	put32(p + 4, (uint32_t)(v >> 32));
}

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum = (uint8_t)(sum + p[i]);
	return (uint8_t)-sum;
}

static void header(uint8_t *t, const char sig[4], size_t len, uint8_t rev)
{
	memcpy(t, sig, 4);
	put32(t + HDR_LENGTH, (uint32_t)len);
	t[HDR_REVISION] = rev;
	memcpy(t + 10, ACPI_OEM_ID, 6);
	memcpy(t + 16, ACPI_OEM_TABLE_ID, 8);
	put32(t + 24, ACPI_OEM_REVISION);
	memcpy(t + 28, ACPI_CREATOR_ID, 4);
	put32(t + 32, ACPI_CREATOR_REV);
}

/* Called last on each table, once every field is in place. */
static void seal(uint8_t *t)
{
	uint32_t len = (uint32_t)t[4] | (uint32_t)t[5] << 8 | (uint32_t)t[6] << 16 |
		       (uint32_t)t[7] << 24;
	t[HDR_CHECKSUM] = 0;
	t[HDR_CHECKSUM] = checksum(t, len);
}

static void gas_io(uint8_t *p, uint8_t bits, uint8_t access, uint16_t port)
{
	p[0] = GAS_SYSTEM_IO;
	p[1] = bits;
	p[2] = 0;
	p[3] = access;
	put64(p + 4, port);
}

/* ---- DSDT ---- */

static void dsdt_pci0_crs(struct aml *a, const struct acpi_config *cfg)
{
	uint8_t end_bus = cfg->pci_ecam_base ? cfg->pci_ecam_end_bus : 0xff;

	aml_name(a, "_CRS");
	aml_restemplate_begin(a);
	aml_res_word_bus(a, 0, end_bus);
	/* The conf1 ports belong to the bridge itself; the I/O windows skip them. */
	aml_res_io(a, 0xcf8, 0xcf8, 1, 8);
	aml_res_dword_io(a, 0x0000, 0x0cf7);
	aml_res_dword_io(a, 0x0d00, 0xffff);
	if (cfg->pci_mmio32_size)
		aml_res_dword_mem(a, true, false, cfg->pci_mmio32_base,
				  (uint32_t)(cfg->pci_mmio32_base + (cfg->pci_mmio32_size - 1)));
	aml_restemplate_end(a);
}

static bool has_prt(const struct acpi_config *cfg)
{
	for (int i = 0; i < 4; i++)
		if (cfg->pci_intx_gsi[i])
			return true;
	return false;
}

/* _PRT entries: Package {address 0xSSSSFFFF (any function), pin, source 0
 * (a GSI, not a link device), GSI}. */
static void dsdt_pci0_prt(struct aml *a, const struct acpi_config *cfg)
{
	aml_name(a, "_PRT");
	aml_package_begin(a, PCI_INTX_SLOTS * 4);
	for (unsigned slot = 1; slot <= PCI_INTX_SLOTS; slot++) {
		for (unsigned pin = 0; pin < 4; pin++) {
			aml_package_begin(a, 4);
			aml_integer(a, (uint64_t)slot << 16 | 0xffff);
			aml_integer(a, pin);
			aml_integer(a, 0);
			aml_integer(a, cfg->pci_intx_gsi[(slot + pin) % 4]);
			aml_end(a);
		}
	}
	aml_end(a);
}

static void dsdt_pci0(struct aml *a, const struct acpi_config *cfg)
{
	aml_device_begin(a, "PCI0");
	aml_name_eisaid(a, "_HID", "PNP0A08");
	aml_name_eisaid(a, "_CID", "PNP0A03");
	aml_name_integer(a, "_SEG", 0);
	aml_name_integer(a, "_UID", 0);
	aml_name_integer(a, "_BBN", 0);
	dsdt_pci0_crs(a, cfg);
	if (has_prt(cfg))
		dsdt_pci0_prt(a, cfg);
	aml_end(a);
}

/* 1 MiB of configuration space per bus. */
static uint64_t ecam_size(const struct acpi_config *cfg)
{
	return ((uint64_t)cfg->pci_ecam_end_bus + 1) << 20;
}

/* Linux uses ECAM only if a motherboard resource (PNP0C02) reserves it. */
static void dsdt_ecam_reserve(struct aml *a, const struct acpi_config *cfg)
{
	uint64_t end = cfg->pci_ecam_base + ecam_size(cfg) - 1;

	aml_device_begin(a, "MRES");
	aml_name_eisaid(a, "_HID", "PNP0C02");
	aml_name_integer(a, "_UID", 0);
	aml_name(a, "_CRS");
	aml_restemplate_begin(a);
	if (end <= UINT32_MAX)
		aml_res_dword_mem(a, false, false, (uint32_t)cfg->pci_ecam_base, (uint32_t)end);
	else
		aml_res_qword_mem(a, false, false, cfg->pci_ecam_base, end);
	aml_restemplate_end(a);
	aml_end(a);
}

static void dsdt_com1(struct aml *a)
{
	aml_device_begin(a, "COM1");
	aml_name_eisaid(a, "_HID", "PNP0501");
	aml_name_integer(a, "_UID", 1);
	aml_name(a, "_CRS");
	aml_restemplate_begin(a);
	aml_res_io(a, 0x3f8, 0x3f8, 1, 8);
	aml_res_irq_noflags(a, 4);
	aml_restemplate_end(a);
	aml_end(a);
}

static void dsdt_rtc(struct aml *a)
{
	aml_device_begin(a, "RTC");
	aml_name_eisaid(a, "_HID", "PNP0B00");
	aml_name(a, "_CRS");
	aml_restemplate_begin(a);
	aml_res_io(a, 0x70, 0x70, 1, 2);
	aml_res_irq_noflags(a, 8);
	aml_restemplate_end(a);
	aml_end(a);
}

static void dsdt_i8042(struct aml *a)
{
	aml_device_begin(a, "KBD");
	aml_name_eisaid(a, "_HID", "PNP0303");
	aml_name(a, "_CRS");
	aml_restemplate_begin(a);
	aml_res_io(a, 0x60, 0x60, 1, 1);
	aml_res_io(a, 0x64, 0x64, 1, 1);
	aml_res_irq_noflags(a, 1);
	aml_restemplate_end(a);
	aml_end(a);

	/* The aux port shares the controller's ports; it only adds IRQ 12. */
	aml_device_begin(a, "MOU");
	aml_name_eisaid(a, "_HID", "PNP0F13");
	aml_name(a, "_CRS");
	aml_restemplate_begin(a);
	aml_res_irq_noflags(a, 12);
	aml_restemplate_end(a);
	aml_end(a);
}

/* Processor devices tie each MADT entry (by its UID) to the namespace. */
static void dsdt_cpus(struct aml *a, unsigned ncpus)
{
	static const char hex[] = "0123456789ABCDEF";

	for (unsigned i = 0; i < ncpus; i++) {
		char name[5] = { 'C', hex[(i >> 8) & 0xf], hex[(i >> 4) & 0xf], hex[i & 0xf], 0 };
		aml_device_begin(a, name);
		aml_name_string(a, "_HID", "ACPI0007");
		aml_name_integer(a, "_UID", i);
		aml_end(a);
	}
}

static void dsdt_body(struct aml *a, const struct acpi_config *cfg)
{
	/* \_S5: SLP_TYP values for PM1a and PM1b control, then reserved. */
	aml_name(a, "\\_S5");
	aml_package_begin(a, 4);
	aml_integer(a, cfg->s5_slp_typ);
	aml_integer(a, cfg->s5_slp_typ);
	aml_integer(a, 0);
	aml_integer(a, 0);
	aml_end(a);

	aml_scope_begin(a, "\\_SB");
	dsdt_pci0(a, cfg);
	if (cfg->pci_ecam_base)
		dsdt_ecam_reserve(a, cfg);
	dsdt_com1(a);
	dsdt_rtc(a);
	dsdt_i8042(a);
	dsdt_cpus(a, cfg->ncpus);
	aml_end(a);
}

static int dsdt_measure(const struct acpi_config *cfg, size_t *len, struct verr *err)
{
	struct aml a;

	aml_init(&a, NULL, 0);
	dsdt_body(&a, cfg);
	if (aml_finish(&a) < 0)
		return verr_set(err, -a.err, "DSDT: %s", a.why);
	*len = HDR_LEN + a.len;
	return 0;
}

static int dsdt_write(uint8_t *t, size_t len, const struct acpi_config *cfg, struct verr *err)
{
	struct aml a;

	aml_init(&a, t + HDR_LEN, len - HDR_LEN);
	dsdt_body(&a, cfg);
	if (aml_finish(&a) < 0)
		return verr_set(err, -a.err, "DSDT: %s", a.why);
	if (a.len != len - HDR_LEN)
		return verr_set(err, EFAULT, "DSDT: AML is %zu bytes, measured %zu",
				a.len, len - HDR_LEN);
	/* Revision 2: AML integers are 64 bits wide. */
	header(t, "DSDT", len, 2);
	seal(t);
	return 0;
}

/* ---- fixed-layout tables ---- */

static void write_rsdp(uint8_t *t, uint64_t xsdt_gpa)
{
	memcpy(t, "RSD PTR ", 8);
	memcpy(t + RSDP_OEMID, ACPI_OEM_ID, 6);
	t[RSDP_REVISION] = 2;
	put32(t + RSDP_LENGTH, RSDP_LEN);
	put64(t + RSDP_XSDT, xsdt_gpa);
	t[RSDP_CHECKSUM] = checksum(t, RSDP_V1_LEN);
	t[RSDP_EXT_CHECKSUM] = checksum(t, RSDP_LEN);
}

static void write_xsdt(uint8_t *t, const struct layout *l, uint64_t gpa)
{
	uint64_t entries[3] = { gpa + l->fadt, gpa + l->madt, gpa + l->mcfg };

	header(t, "XSDT", l->xsdt_len, 1);
	for (unsigned i = 0; i < l->xsdt_entries; i++)
		put64(t + HDR_LEN + 8 * i, entries[i]);
	seal(t);
}

static void write_fadt_pm(uint8_t *t, const struct acpi_config *cfg)
{
	put16(t + FADT_SCI_INT, cfg->sci_irq);
	/* SMI_CMD 0: the machine is always in ACPI mode, nothing to switch. */
	put32(t + FADT_SMI_CMD, 0);
	put32(t + FADT_PM1A_EVT_BLK, cfg->pm1a_evt_port);
	put32(t + FADT_PM1A_CNT_BLK, cfg->pm1a_cnt_port);
	put32(t + FADT_PM_TMR_BLK, cfg->pm_tmr_port);
	t[FADT_PM1_EVT_LEN] = 4;
	t[FADT_PM1_CNT_LEN] = 2;
	t[FADT_PM_TMR_LEN] = 4;
	/* The extended blocks say the same as the legacy ones, which ACPICA
	 * cross-checks; they take precedence on ACPI 2.0+ OSes. */
	gas_io(t + FADT_X_PM1A_EVT_BLK, 32, GAS_ACCESS_WORD, cfg->pm1a_evt_port);
	gas_io(t + FADT_X_PM1A_CNT_BLK, 16, GAS_ACCESS_WORD, cfg->pm1a_cnt_port);
	gas_io(t + FADT_X_PM_TMR_BLK, 32, GAS_ACCESS_DWORD, cfg->pm_tmr_port);
}

static void write_fadt(uint8_t *t, const struct layout *l, uint64_t gpa,
		       const struct acpi_config *cfg)
{
	header(t, "FACP", FADT_LEN, 6);
	put32(t + FADT_FIRMWARE_CTRL, (uint32_t)(gpa + l->facs));
	put32(t + FADT_DSDT, (uint32_t)(gpa + l->dsdt));
	put64(t + FADT_X_FIRMWARE_CTRL, gpa + l->facs);
	put64(t + FADT_X_DSDT, gpa + l->dsdt);
	write_fadt_pm(t, cfg);
	/* Latencies above 100 and 1000 us say C2 and C3 are unsupported. */
	put16(t + FADT_P_LVL2_LAT, 0x0fff);
	put16(t + FADT_P_LVL3_LAT, 0x0fff);
	put16(t + FADT_IAPC_BOOT_ARCH, BOOT_ARCH_LEGACY_DEVICES | BOOT_ARCH_8042 |
	      BOOT_ARCH_VGA_NOT_PRESENT);
	/* PWR_BUTTON clear: the power button is the fixed feature one. The
	 * RTC has no wake alarm in PM1, hence FIX_RTC. */
	put32(t + FADT_FLAGS, FADT_F_WBINVD | FADT_F_PROC_C1 | FADT_F_SLP_BUTTON |
	      FADT_F_FIX_RTC | FADT_F_RESET_REG_SUP);
	gas_io(t + FADT_RESET_REG, 8, GAS_ACCESS_BYTE, cfg->reset_port);
	t[FADT_RESET_VALUE] = cfg->reset_value;
	t[FADT_MINOR_VERSION] = 0;
	seal(t);
}

static void write_facs(uint8_t *t)
{
	memcpy(t, "FACS", 4);
	put32(t + FACS_LENGTH, FACS_LEN);
	t[FACS_VERSION] = 2;
}

static uint8_t *madt_entry(uint8_t *p, uint8_t type, uint8_t len)
{
	p[0] = type;
	p[1] = len;
	return p + 2;
}

static uint8_t *madt_iso(uint8_t *p, uint8_t irq, uint32_t gsi, uint16_t flags)
{
	uint8_t *e = madt_entry(p, MADT_T_ISO, MADT_ISO_LEN);
	e[0] = 0;   /* bus: ISA */
	e[1] = irq;
	put32(e + 2, gsi);
	put16(e + 6, flags);
	return p + MADT_ISO_LEN;
}

static void write_madt(uint8_t *t, size_t len, const struct acpi_config *cfg)
{
	uint8_t *p = t + MADT_HDR_LEN, *e;

	header(t, "APIC", len, 5);
	put32(t + MADT_LAPIC_ADDR, cfg->lapic_addr);
	/* PCAT_COMPAT: the 8259s exist and the OS must mask them. */
	put32(t + MADT_FLAGS, MADT_PCAT_COMPAT);
	for (unsigned i = 0; i < cfg->ncpus; i++, p += MADT_LAPIC_LEN) {
		e = madt_entry(p, MADT_T_LAPIC, MADT_LAPIC_LEN);
		e[0] = (uint8_t)i;   /* ACPI processor UID, matching _UID in the DSDT */
		e[1] = (uint8_t)i;   /* APIC ID */
		put32(e + 2, 1);     /* enabled */
	}
	e = madt_entry(p, MADT_T_IOAPIC, MADT_IOAPIC_LEN);
	e[0] = cfg->ioapic_id;
	put32(e + 2, cfg->ioapic_addr);
	put32(e + 6, 0);         /* GSI base */
	p += MADT_IOAPIC_LEN;
	p = madt_iso(p, 0, 2, 0);
	p = madt_iso(p, (uint8_t)cfg->sci_irq, cfg->sci_irq, INTI_ACTIVE_HIGH | INTI_LEVEL);
	e = madt_entry(p, MADT_T_LAPIC_NMI, MADT_LAPIC_NMI_LEN);
	e[0] = 0xff;             /* all processors */
	put16(e + 1, 0);         /* conforming to the bus */
	e[3] = 1;                /* LINT1 */
	seal(t);
}

static void write_mcfg(uint8_t *t, const struct acpi_config *cfg)
{
	uint8_t *e = t + MCFG_HDR_LEN;

	header(t, "MCFG", MCFG_HDR_LEN + MCFG_ENTRY_LEN, 1);
	put64(e, cfg->pci_ecam_base);
	put16(e + 8, 0);         /* PCI segment group */
	e[10] = 0;               /* start bus */
	e[11] = cfg->pci_ecam_end_bus;
	seal(t);
}

/* ---- layout ---- */

static int check_config(const struct acpi_config *cfg, struct verr *err)
{
	if (cfg->ncpus < 1 || cfg->ncpus > ACPI_MAX_CPUS)
		return verr_set(err, EINVAL, "acpi: %u vCPUs, the MADT takes 1..%u",
				cfg->ncpus, ACPI_MAX_CPUS);
	if (cfg->sci_irq == 0 || cfg->sci_irq == 2 || cfg->sci_irq > 15)
		return verr_set(err, EINVAL, "acpi: SCI IRQ %u is not a free ISA IRQ",
				cfg->sci_irq);
	if (cfg->s5_slp_typ > 7)
		return verr_set(err, EINVAL, "acpi: SLP_TYP %u does not fit 3 bits",
				cfg->s5_slp_typ);
	if (cfg->pci_mmio32_size &&
	    cfg->pci_mmio32_size - 1 > UINT32_MAX - cfg->pci_mmio32_base)
		return verr_set(err, EINVAL, "acpi: PCI MMIO window 0x%x+0x%x passes 4 GiB",
				cfg->pci_mmio32_base, cfg->pci_mmio32_size);
	/* GSIs below 16 are ISA IRQs, edge and active high; PCI INTx is level
	 * and active low, which only the free IOAPIC pins 16-23 can be. */
	for (int i = 0; has_prt(cfg) && i < 4; i++)
		if (cfg->pci_intx_gsi[i] < 16 || cfg->pci_intx_gsi[i] > 23)
			return verr_set(err, EINVAL, "acpi: PCI INT%c on GSI %u, not an IOAPIC pin 16-23",
					'A' + i, cfg->pci_intx_gsi[i]);
	if (cfg->pci_ecam_base & ((1u << 20) - 1))
		return verr_set(err, EINVAL, "acpi: ECAM base 0x%llx is not 1 MiB aligned",
				(unsigned long long)cfg->pci_ecam_base);
	if (cfg->pci_ecam_base &&
	    cfg->pci_ecam_base > UINT64_MAX - ecam_size(cfg))
		return verr_set(err, EINVAL, "acpi: ECAM at 0x%llx wraps the address space",
				(unsigned long long)cfg->pci_ecam_base);
	if (cfg->pci_ecam_base && cfg->pci_mmio32_size &&
	    cfg->pci_ecam_base < (uint64_t)cfg->pci_mmio32_base + cfg->pci_mmio32_size &&
	    cfg->pci_mmio32_base < cfg->pci_ecam_base + ecam_size(cfg))
		return verr_set(err, EINVAL, "acpi: ECAM at 0x%llx overlaps the PCI MMIO window at 0x%x",
				(unsigned long long)cfg->pci_ecam_base, cfg->pci_mmio32_base);
	return 0;
}

/* Offset of the next table after one ending at off, aligned in guest
 * memory (alignment is a property of the address, not the buffer). */
static size_t place(uint64_t gpa, size_t off, size_t align)
{
	uint64_t at = gpa + off;
	return off + (size_t)((align - at % align) % align);
}

static int plan(struct layout *l, uint64_t gpa, const struct acpi_config *cfg,
		struct verr *err)
{
	int r = dsdt_measure(cfg, &l->dsdt_len, err);
	if (r < 0)
		return r;
	l->xsdt_entries = cfg->pci_ecam_base ? 3 : 2;
	l->xsdt_len = HDR_LEN + 8 * (size_t)l->xsdt_entries;
	l->madt_len = MADT_HDR_LEN + MADT_LAPIC_LEN * (size_t)cfg->ncpus + MADT_IOAPIC_LEN +
		      2 * MADT_ISO_LEN + MADT_LAPIC_NMI_LEN;
	l->mcfg_len = cfg->pci_ecam_base ? MCFG_HDR_LEN + MCFG_ENTRY_LEN : 0;

	l->rsdp = 0;
	l->xsdt = place(gpa, l->rsdp + RSDP_LEN, TABLE_ALIGN);
	l->fadt = place(gpa, l->xsdt + l->xsdt_len, TABLE_ALIGN);
	l->facs = place(gpa, l->fadt + FADT_LEN, FACS_ALIGN);
	l->madt = place(gpa, l->facs + FACS_LEN, TABLE_ALIGN);
	l->mcfg = place(gpa, l->madt + l->madt_len, TABLE_ALIGN);
	l->dsdt = place(gpa, l->mcfg + l->mcfg_len, TABLE_ALIGN);
	l->end = l->dsdt + l->dsdt_len;
	return 0;
}

int acpi_build(void *buf, uint64_t gpa, size_t len, const struct acpi_config *cfg,
	       uint64_t *rsdp_gpa, struct verr *err)
{
	struct layout l = { 0 };
	uint8_t *b = buf;
	int r;

	r = check_config(cfg, err);
	if (r < 0)
		return r;
	if (gpa % TABLE_ALIGN)
		return verr_set(err, EINVAL, "acpi: table area 0x%llx is not 16-byte aligned",
				(unsigned long long)gpa);
	r = plan(&l, gpa, cfg, err);
	if (r < 0)
		return r;
	if (l.end > len)
		return verr_set(err, ENOSPC, "acpi: tables need %zu bytes, the area at 0x%llx has %zu",
				l.end, (unsigned long long)gpa, len);
	/* FADT and its DSDT/FACS pointers have 32-bit forms we fill too. */
	if (gpa > UINT32_MAX || l.end - 1 > UINT32_MAX - gpa)
		return verr_set(err, EINVAL, "acpi: table area 0x%llx+%zu is not below 4 GiB",
				(unsigned long long)gpa, l.end);

	memset(b, 0, l.end);   /* reserved fields and padding are zero */
	r = dsdt_write(b + l.dsdt, l.dsdt_len, cfg, err);
	if (r < 0)
		return r;
	write_facs(b + l.facs);
	write_fadt(b + l.fadt, &l, gpa, cfg);
	write_madt(b + l.madt, l.madt_len, cfg);
	if (cfg->pci_ecam_base)
		write_mcfg(b + l.mcfg, cfg);
	write_xsdt(b + l.xsdt, &l, gpa);
	write_rsdp(b + l.rsdp, gpa + l.xsdt);
	*rsdp_gpa = gpa + l.rsdp;
	return 0;
}
