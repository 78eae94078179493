/* SPDX-License-Identifier: Apache-2.0 */
/* Guest-physical layout of the vireo x86 machine; docs/platform.md is the
 * reference and must change together with this file. */
#ifndef VIREO_ARCH_X86_LAYOUT_H
#define VIREO_ARCH_X86_LAYOUT_H

#include <stdint.h>

#define X86_BOOT_GDT 0x500ull
#define X86_PVH_START_INFO 0x6000ull
#define X86_PVH_MODLIST (X86_PVH_START_INFO + 0x40)
#define X86_PVH_MEMMAP (X86_PVH_START_INFO + 0x80)
#define X86_ZERO_PAGE 0x7000ull
#define X86_PML4 0x9000ull
#define X86_PDPT 0xa000ull
#define X86_PD 0xb000ull          /* four PDs: 0xb000..0xefff, 4 GiB by 2 MiB */
#define X86_CMDLINE 0x20000ull
#define X86_CMDLINE_MAX 0x10000ull
#define X86_EBDA 0x9fc00ull
#define X86_HOLE_START 0xa0000ull
#define X86_ACPI_BASE 0xe0000ull
#define X86_ACPI_SIZE 0x10000ull
#define X86_MPTABLE_BASE 0xf0000ull
#define X86_MPTABLE_SIZE 0x10000ull
#define X86_HIGH_MEM 0x100000ull  /* 1 MiB: kernels load here */
#define X86_LOWMEM_MAX 0xc0000000ull  /* 3 GiB: the PCI hole starts here */
#define X86_4G 0x100000000ull
/* PCI Express ECAM, 1 MiB per bus, for the buses the machine has: bus 0
 * only (no bridges). The MCFG's last bus becomes Linux's pcibios_last_bus,
 * and Linux then probes every bus up to it for peer host bridges through
 * conf1: with buses 0-255 that was 16,700 port I/O exits (8,160 reads), 1.4 s
 * of a nested boot. The 32-bit PCI MMIO window is
 * [X86_LOWMEM_MAX, X86_PCI_ECAM_BASE). */
#define X86_PCI_ECAM_BASE 0xe0000000ull
#define X86_PCI_ECAM_BUSES 1u
#define X86_PCI_ECAM_SIZE ((uint64_t)X86_PCI_ECAM_BUSES << 20)
#define X86_IOAPIC_ADDR 0xfec00000u
#define X86_LAPIC_ADDR 0xfee00000u

/* Selectors of the boot GDT. */
#define X86_SEL_CODE32 0x08
#define X86_SEL_CODE64 0x10
#define X86_SEL_DATA 0x18
#define X86_SEL_TSS 0x20

/* I/O ports (docs/platform.md). */
#define X86_PORT_I8042 0x60
#define X86_PORT_RTC 0x70
#define X86_PORT_COM1 0x3f8
#define X86_PORT_DEBUG_EXIT 0x501
#define X86_PORT_PM1A_EVT 0x600
#define X86_PORT_PM1A_CNT 0x604
#define X86_PORT_PM_TMR 0x608
#define X86_PORT_PCI_CONF 0xcf8
#define X86_S5_SLP_TYP 5
#define X86_GSI_COM1 4
#define X86_GSI_I8042_KBD 1
#define X86_GSI_RTC 8
#define X86_GSI_SCI 9

/* The RAM layout for a given memory size: low RAM up to 3 GiB, the rest above 4 GiB. */
struct x86_mem_layout {
	uint64_t total;     /* configured bytes */
	uint64_t lowmem;    /* bytes of RAM at [0, lowmem) */
	uint64_t highmem;   /* bytes of RAM at [4 GiB, 4 GiB + highmem) */
};

static inline struct x86_mem_layout x86_mem_layout_for(uint64_t total)
{
	struct x86_mem_layout l = { .total = total };
	l.lowmem = total < X86_LOWMEM_MAX ? total : X86_LOWMEM_MAX;
	l.highmem = total - l.lowmem;
	return l;
}

#endif
