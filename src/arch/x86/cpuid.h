/* SPDX-License-Identifier: Apache-2.0 */
#ifndef VIREO_ARCH_X86_CPUID_H
#define VIREO_ARCH_X86_CPUID_H

#include "arch/x86/cpu_state.h"
#include "core/err.h"

/* Upper bound of entries x86_cpuid_for_vcpu can produce from n supported ones. */
#define X86_CPUID_EXTRA 8

/* The CPUID one vCPU sees: what the accelerator supports, with the topology
 * (one socket, ncpus cores, one thread each; APIC ID = cpu index) and the
 * hypervisor-present bit. out must hold n + X86_CPUID_EXTRA entries. */
int x86_cpuid_for_vcpu(const struct x86_cpuid_entry *supported, unsigned n, unsigned cpu,
		       unsigned ncpus, struct x86_cpuid_entry *out, unsigned *nout,
		       struct verr *err);

/* The MSRs vireo sets at power-on for a Linux guest; returns how many. */
unsigned x86_boot_msrs(struct x86_msr *out, unsigned max);

#endif
