/* SPDX-License-Identifier: Apache-2.0 */
/*
 * x86 vCPU state in vireo's own terms, so the boot code and (later) snapshots
 * do not depend on KVM's structures and a software CPU can fill the same.
 */
#ifndef VIREO_ARCH_X86_CPU_STATE_H
#define VIREO_ARCH_X86_CPU_STATE_H

#include <stdint.h>

struct x86_regs {
	uint64_t rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp;
	uint64_t r8, r9, r10, r11, r12, r13, r14, r15;
	uint64_t rip, rflags;
};

struct x86_segment {
	uint64_t base;
	uint32_t limit;
	uint16_t selector;
	uint8_t type, present, dpl, db, s, l, g, avl;
};

struct x86_dtable {
	uint64_t base;
	uint16_t limit;
};

struct x86_sregs {
	struct x86_segment cs, ds, es, fs, gs, ss, tr, ldt;
	struct x86_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8, efer, apic_base;
};

/* One CPUID leaf/subleaf, the shape KVM_GET_SUPPORTED_CPUID reports. */
struct x86_cpuid_entry {
	uint32_t function, index, flags;
	uint32_t eax, ebx, ecx, edx;
};
#define X86_CPUID_FLAG_SIGNIFICANT_INDEX 1u

struct x86_msr {
	uint32_t index;
	uint64_t value;
};

#define X86_CR0_PE (1ull << 0)
#define X86_CR0_ET (1ull << 4)
#define X86_CR0_NE (1ull << 5)
#define X86_CR0_PG (1ull << 31)
#define X86_CR4_PAE (1ull << 5)
#define X86_EFER_LME (1ull << 8)
#define X86_EFER_LMA (1ull << 10)

#endif
