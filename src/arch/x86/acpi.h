/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ACPI tables for the vireo x86 machine (docs/platform.md): RSDP (rev 2),
 * XSDT, FADT (rev 6, 276 bytes), FACS, MADT, MCFG (only with ECAM) and a
 * DSDT emitted as AML by aml.c.
 */
#ifndef VIREO_ARCH_X86_ACPI_H
#define VIREO_ARCH_X86_ACPI_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

struct acpi_config {
	unsigned ncpus;              /* 1..255; APIC IDs 0..ncpus-1 */
	uint32_t lapic_addr;         /* 0xfee00000 */
	uint32_t ioapic_addr;        /* 0xfec00000 */
	uint8_t  ioapic_id;          /* 0 */
	uint16_t pm1a_evt_port;      /* 0x600 */
	uint16_t pm1a_cnt_port;      /* 0x604 */
	uint16_t pm_tmr_port;        /* 0x608 */
	uint16_t sci_irq;            /* 9 */
	uint16_t reset_port;         /* 0xcf9 */
	uint8_t  reset_value;        /* 0x06 */
	uint8_t  s5_slp_typ;         /* 5 */
	uint64_t pci_ecam_base;      /* 0 = no MCFG (PCI via conf1 only); else base of ECAM for bus 0..(pci_ecam_end_bus) */
	uint8_t  pci_ecam_end_bus;
	uint32_t pci_mmio32_base, pci_mmio32_size;  /* window for the PCI0 _CRS */
	/* Bus-0 INTx wiring for PCI0._PRT: slot s (1..31), pin p (0 = INTA)
	 * raises GSI pci_intx_gsi[(s + p) % 4], level, active low. All zero:
	 * no _PRT (guests then fall back to the Interrupt Line register). */
	uint8_t  pci_intx_gsi[4];
};

/* The most vCPUs the MADT's 8-bit APIC IDs can name (0xff is broadcast). */
#define ACPI_MAX_CPUS 255

/* Lays out all ACPI tables in buf, which is the guest memory [gpa, gpa+len),
 * RSDP first at gpa (so gpa 0xE0000 lets a legacy scan find it), returns the
 * RSDP guest-physical address in *rsdp_gpa. -ENOSPC with a message if len is too small,
 * -EINVAL for a bad config (0 CPUs, too many). */
int acpi_build(void *buf, uint64_t gpa, size_t len, const struct acpi_config *cfg, uint64_t *rsdp_gpa, struct verr *err);

#endif
