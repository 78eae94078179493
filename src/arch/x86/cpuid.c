/* SPDX-License-Identifier: Apache-2.0 */
/* Per-vCPU CPUID and power-on MSRs. */
#include "arch/x86/cpuid.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#define LEAF_FEATURES 0x1
#define LEAF_CACHE 0x4
#define LEAF_TOPOLOGY 0xb
#define LEAF_TOPOLOGY2 0x1f
#define LEAF_HV 0x40000000u
#define LEAF_AMD_SIZES 0x80000008u
#define LEAF_AMD_TOPO 0x8000001eu
#define ECX_HYPERVISOR (1u << 31)
#define EDX_HTT (1u << 28)

static unsigned bits_for(unsigned n)
{
	unsigned b = 0;
	while ((1u << b) < n)
		b++;
	return b;
}

static void fix_leaf(struct x86_cpuid_entry *e, unsigned cpu, unsigned ncpus)
{
	switch (e->function) {
	case LEAF_FEATURES:
		e->ebx = (e->ebx & 0x0000ffffu) | (cpu << 24) | ((ncpus > 255 ? 255 : ncpus) << 16);
		e->ecx |= ECX_HYPERVISOR;
		if (ncpus > 1)
			e->edx |= EDX_HTT;
		break;
	case LEAF_CACHE:
		/* cores per package - 1; each cache private to one thread */
		e->eax = (e->eax & 0x03ffc3ffu) | ((ncpus - 1) << 26);
		break;
	case LEAF_AMD_SIZES:
		e->ecx = (e->ecx & ~0xf0ffu) | (bits_for(ncpus) << 12) | (ncpus - 1);
		break;
	case LEAF_AMD_TOPO:
		e->eax = cpu;
		e->ebx = cpu & 0xff;   /* core id, one thread per core */
		e->ecx = 0;            /* node 0 */
		break;
	default:
		break;
	}
}

/* x2APIC topology: level 0 = SMT (1 thread), level 1 = core (ncpus). */
static unsigned topology_leaf(struct x86_cpuid_entry *out, unsigned cpu, unsigned ncpus)
{
	out[0] = (struct x86_cpuid_entry){ LEAF_TOPOLOGY, 0, X86_CPUID_FLAG_SIGNIFICANT_INDEX,
		0, 1, (1u << 8) | 0, cpu };
	out[1] = (struct x86_cpuid_entry){ LEAF_TOPOLOGY, 1, X86_CPUID_FLAG_SIGNIFICANT_INDEX,
		bits_for(ncpus), ncpus, (2u << 8) | 1, cpu };
	out[2] = (struct x86_cpuid_entry){ LEAF_TOPOLOGY, 2, X86_CPUID_FLAG_SIGNIFICANT_INDEX,
		0, 0, 2, cpu };
	return 3;
}

int x86_cpuid_for_vcpu(const struct x86_cpuid_entry *sup, unsigned n, unsigned cpu,
		       unsigned ncpus, struct x86_cpuid_entry *out, unsigned *nout,
		       struct verr *err)
{
	unsigned k = 0, max_basic = 0;
	bool topo_done = false, hv_seen = false;

	if (ncpus == 0 || cpu >= ncpus)
		return verr_set(err, EINVAL, "vCPU %u of %u", cpu, ncpus);
	for (unsigned i = 0; i < n; i++)
		if (sup[i].function == 0)
			max_basic = sup[i].eax;
	for (unsigned i = 0; i < n; i++) {
		const struct x86_cpuid_entry *e = &sup[i];
		if (e->function == LEAF_TOPOLOGY || e->function == LEAF_TOPOLOGY2) {
			if (!topo_done && e->function == LEAF_TOPOLOGY)
				k += topology_leaf(out + k, cpu, ncpus);
			topo_done = topo_done || e->function == LEAF_TOPOLOGY;
			continue;
		}
		if (e->function == LEAF_HV)
			hv_seen = true;
		out[k] = *e;
		fix_leaf(&out[k], cpu, ncpus);
		k++;
	}
	if (!topo_done && max_basic >= LEAF_TOPOLOGY)
		k += topology_leaf(out + k, cpu, ncpus);
	if (!hv_seen) {
		/* Guests look here for "KVMKVMKVM" to find the paravirt clock. */
		out[k++] = (struct x86_cpuid_entry){ LEAF_HV, 0, 0, LEAF_HV + 1,
			0x4b4d564b, 0x564b4d56, 0x0000004d };
	}
	*nout = k;
	return 0;
}

unsigned x86_boot_msrs(struct x86_msr *out, unsigned max)
{
	static const struct x86_msr boot[] = {
		{ 0x174, 0 },              /* IA32_SYSENTER_CS */
		{ 0x175, 0 },              /* IA32_SYSENTER_ESP */
		{ 0x176, 0 },              /* IA32_SYSENTER_EIP */
		{ 0xc0000081, 0 },         /* STAR */
		{ 0xc0000082, 0 },         /* LSTAR */
		{ 0xc0000083, 0 },         /* CSTAR */
		{ 0xc0000084, 0 },         /* SFMASK */
		{ 0xc0000102, 0 },         /* KERNEL_GS_BASE */
		{ 0x1a0, 1 },              /* IA32_MISC_ENABLE: fast strings */
		{ 0x2ff, (1u << 11) | 6 }, /* MTRRdefType: enabled, write-back */
	};
	unsigned n = sizeof(boot) / sizeof(boot[0]);

	if (n > max)
		n = max;
	memcpy(out, boot, n * sizeof(boot[0]));
	return n;
}
