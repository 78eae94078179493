/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MP 1.4 floating pointer and configuration table (MultiProcessor
 * Specification 1.4, chapter 4). Sized first, bounds-checked, then written
 * byte by byte in little-endian order.
 */
#include "arch/x86/mptable.h"

#include <errno.h>
#include <string.h>

/* Floating pointer structure (4.1). */
enum {
	MPF_PHYSPTR = 4, MPF_LENGTH = 8, MPF_SPEC_REV = 9, MPF_CHECKSUM = 10,
	MPF_LEN = 16,
};

/* Configuration table header (4.2). */
enum {
	MPC_LENGTH = 4, MPC_SPEC_REV = 6, MPC_CHECKSUM = 7, MPC_OEM_ID = 8,
	MPC_PRODUCT_ID = 16, MPC_ENTRY_COUNT = 34, MPC_LAPIC_ADDR = 36,
	MPC_HDR_LEN = 44,
};

enum {
	MP_T_PROCESSOR = 0, MP_T_BUS = 1, MP_T_IOAPIC = 2, MP_T_IOINT = 3, MP_T_LINT = 4,
	MP_PROCESSOR_LEN = 20, MP_ENTRY_LEN = 8,
};

enum { MP_INT = 0, MP_NMI = 1, MP_EXTINT = 3 };

enum {
	MP_SPEC_REV = 4, MP_LAPIC_VERSION = 0x14, MP_IOAPIC_VERSION = 0x11,
	MP_CPU_EN = 1, MP_CPU_BP = 2, MP_IOAPIC_EN = 1,
	MP_ISA_BUS = 0, MP_ISA_IRQS = 16, MP_ALL_LAPICS = 0xff,
};

/* Family 6 in the signature and FPU + APIC in the feature flags: enough for
 * an OS that reads these rather than CPUID, which none we know of does. */
#define MP_CPU_SIGNATURE 0x00000600u
#define MP_CPU_FEATURES  0x00000201u

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

static uint8_t checksum(const uint8_t *p, size_t n)
{
	uint8_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum = (uint8_t)(sum + p[i]);
	return (uint8_t)-sum;
}

/* ISA IRQ 0 reaches the IOAPIC on pin 2 (the 8259 cascade input); IRQ 2
 * itself has no pin, every other IRQ its own number. */
static unsigned isa_irq_entries(void)
{
	return MP_ISA_IRQS - 1;
}

static size_t mpc_len(unsigned ncpus)
{
	return MPC_HDR_LEN + (size_t)ncpus * MP_PROCESSOR_LEN +
	       (2 + isa_irq_entries() + 2) * (size_t)MP_ENTRY_LEN;
}

static uint8_t *put_processors(uint8_t *p, unsigned ncpus)
{
	for (unsigned i = 0; i < ncpus; i++, p += MP_PROCESSOR_LEN) {
		p[0] = MP_T_PROCESSOR;
		p[1] = (uint8_t)i;
		p[2] = MP_LAPIC_VERSION;
		p[3] = (uint8_t)(MP_CPU_EN | (i == 0 ? MP_CPU_BP : 0));
		put32(p + 4, MP_CPU_SIGNATURE);
		put32(p + 8, MP_CPU_FEATURES);
	}
	return p;
}

static uint8_t *put_bus_ioapic(uint8_t *p, const struct mptable_config *cfg)
{
	p[0] = MP_T_BUS;
	p[1] = MP_ISA_BUS;
	memcpy(p + 2, "ISA   ", 6);
	p += MP_ENTRY_LEN;
	p[0] = MP_T_IOAPIC;
	p[1] = cfg->ioapic_id;
	p[2] = MP_IOAPIC_VERSION;
	p[3] = MP_IOAPIC_EN;
	put32(p + 4, cfg->ioapic_addr);
	return p + MP_ENTRY_LEN;
}

/* Flags 0 everywhere: polarity and trigger conform to the ISA bus. */
static uint8_t *put_int(uint8_t *p, uint8_t type, uint8_t kind, uint8_t irq,
			uint8_t dest, uint8_t pin)
{
	p[0] = type;
	p[1] = kind;
	put16(p + 2, 0);
	p[4] = MP_ISA_BUS;
	p[5] = irq;
	p[6] = dest;
	p[7] = pin;
	return p + MP_ENTRY_LEN;
}

static uint8_t *put_interrupts(uint8_t *p, const struct mptable_config *cfg)
{
	for (unsigned irq = 0; irq < MP_ISA_IRQS; irq++) {
		if (irq == 2)
			continue;
		p = put_int(p, MP_T_IOINT, MP_INT, (uint8_t)irq, cfg->ioapic_id,
			    (uint8_t)(irq == 0 ? 2 : irq));
	}
	p = put_int(p, MP_T_LINT, MP_EXTINT, 0, MP_ALL_LAPICS, 0);
	return put_int(p, MP_T_LINT, MP_NMI, 0, MP_ALL_LAPICS, 1);
}

static void put_mpc_header(uint8_t *t, size_t len, unsigned nentries, uint32_t lapic_addr)
{
	memcpy(t, "PCMP", 4);
	put16(t + MPC_LENGTH, (uint16_t)len);
	t[MPC_SPEC_REV] = MP_SPEC_REV;
	memcpy(t + MPC_OEM_ID, "VIREO   ", 8);
	memcpy(t + MPC_PRODUCT_ID, "VIREOVM     ", 12);
	put16(t + MPC_ENTRY_COUNT, (uint16_t)nentries);
	put32(t + MPC_LAPIC_ADDR, lapic_addr);
	/* OEM table and extended table fields stay zero. */
	t[MPC_CHECKSUM] = checksum(t, len);
}

static void put_floating(uint8_t *f, uint32_t mpc_gpa)
{
	memcpy(f, "_MP_", 4);
	put32(f + MPF_PHYSPTR, mpc_gpa);
	f[MPF_LENGTH] = 1;              /* in 16-byte paragraphs */
	f[MPF_SPEC_REV] = MP_SPEC_REV;
	/* Feature bytes zero: a configuration table follows, and the IMCR is
	 * absent (virtual wire mode). */
	f[MPF_CHECKSUM] = checksum(f, MPF_LEN);
}

int mptable_build(void *buf, uint64_t gpa, size_t len, const struct mptable_config *cfg,
		  struct verr *err)
{
	uint8_t *b = buf;

	if (cfg->ncpus < 1 || cfg->ncpus > MPTABLE_MAX_CPUS)
		return verr_set(err, EINVAL, "mptable: %u vCPUs, the table takes 1..%u",
				cfg->ncpus, MPTABLE_MAX_CPUS);
	if (gpa % 16)
		return verr_set(err, EINVAL, "mptable: floating pointer at 0x%llx is not 16-byte aligned",
				(unsigned long long)gpa);
	size_t table_len = mpc_len(cfg->ncpus);
	size_t need = MPF_LEN + table_len;
	if (need > len)
		return verr_set(err, ENOSPC, "mptable: needs %zu bytes, the area at 0x%llx has %zu",
				need, (unsigned long long)gpa, len);
	if (gpa > UINT32_MAX || need - 1 > UINT32_MAX - gpa)
		return verr_set(err, EINVAL, "mptable: area 0x%llx+%zu is not below 4 GiB",
				(unsigned long long)gpa, need);

	memset(b, 0, need);
	uint8_t *t = b + MPF_LEN;
	uint8_t *p = put_processors(t + MPC_HDR_LEN, cfg->ncpus);
	p = put_bus_ioapic(p, cfg);
	put_interrupts(p, cfg);
	put_mpc_header(t, table_len, cfg->ncpus + 2 + isa_irq_entries() + 2, cfg->lapic_addr);
	put_floating(b, (uint32_t)(gpa + MPF_LEN));
	return 0;
}
