/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Entries of every test guest.  Ring-0 code is emulated slowly on the
 * target hosts, so each path does the least it can at ring 0 and drops to
 * ring 3 with iretq.  Page tables, GDT and TSS are static data: building
 * them costs no ring-0 instructions.  Port I/O from ring 3 is granted by the
 * TSS I/O permission bitmap (all ports allowed), not by IOPL: on the nested
 * KVM of our hosts, an emulated iretq to ring 3 ignores the RFLAGS image and
 * lands with RFLAGS = 0x202 (IOPL 0, interrupts on), so ring 3 cannot rely on
 * IOPL, cli or sti.
 *
 *   +0x000  32-bit boot protocol (code32_start), ESI = boot_params
 *   +0x200  64-bit boot protocol, RSI = boot_params, long mode already on
 *   entry_pvh  PVH (Xen note 18), EBX = hvm_start_info
 *
 * All of them reach rt_start3(kind, info) in ring 3 with EDI = kind and
 * RSI = the boot structure.  RT_MINIMAL (the stop guest) skips the IDT (it
 * still loads the TSS for its I/O bitmap): such a guest never returns to
 * ring 0.
 */
#include "seg.h"

	.section .text.entry, "ax"
	.code32
	.globl entry32_linux
entry32_linux:
	mov $BOOT_LINUX32, %edi
	jmp entry32_common

	.globl entry_pvh
entry_pvh:
	mov %ebx, %esi
	mov $BOOT_PVH, %edi
	/* fall through */

/* Paging is off: pick the static tables (1 GiB pages when the CPU has
 * them), enable PAE + LME and jump into 64-bit code. */
entry32_common:
	lgdt gdt_ptr
	mov $0x80000001, %eax
	cpuid
	mov $pml4_2m, %eax
	bt $26, %edx
	jnc 1f
	mov $pml4_1g, %eax
1:	mov %eax, %cr3
	mov %cr4, %eax
	or $0x20, %eax
	mov %eax, %cr4
	mov $0xc0000080, %ecx
	rdmsr
	or $0x101, %eax			/* LME | SCE */
	wrmsr
	mov %cr0, %eax
	or $0x80000001, %eax
	mov %eax, %cr0
	ljmp $SEL_KCODE, $entry64_common

	.org 0x200
	.code64
	.globl entry64_linux
entry64_linux:
	/* vireo's identity map already has U/S set: keep it. */
	xor %edi, %edi
entry64_common:
	lgdt gdt_ptr(%rip)
	mov $kstack_top, %esp
	mov $SEL_TSS, %eax
	ltr %ax
#ifndef RT_MINIMAL
	lidt idt_ptr(%rip)
	/* Mask the legacy PIC: firmware (qboot) may leave the PIT running. */
	mov $0xff, %al
	out %al, $0x21
	out %al, $0xa1
#define USER_RFLAGS 0x3202		/* IOPL 3, interrupts on (see above) */
#else
#define USER_RFLAGS 0x3002		/* never takes interrupts: no IDT */
#endif
	push $(SEL_UDATA | 3)
	push $ustack_top
	push $USER_RFLAGS
	push $(SEL_UCODE | 3)
	push $rt_start3
	iretq

/*
 * ring0(): INT3 from ring 3, through a DPL-3 gate, runs RAX(RDI) at ring 0
 * and returns with iretq.  SYSCALL is not used: on the nested KVM of our
 * hosts it does not reach ring 0 (the handler runs at CPL 3), while INT3
 * from ring 3 is delivered properly.  The C caller lists every register the
 * SysV ABI lets the callee clobber.
 */
	.text
	.globl ring0_entry
ring0_entry:
	push %rbp
	mov %rsp, %rbp
	and $-16, %rsp
	call *%rax
	mov %rbp, %rsp
	pop %rbp
	iretq

/* The LAPIC timer handler stays tiny: it runs emulated at ring 0. */
	.globl timer_isr
timer_isr:
	push %rax
	incq rt_ticks(%rip)
	mov $0xfee000b0, %eax
	movl $0, (%rax)
	pop %rax
	iretq

/* Spurious-vector handler: no EOI by definition. */
	.globl spurious_isr
spurious_isr:
	iretq

/* Exception stubs push a uniform frame: vector, error code, CPU frame. */
.macro EXC vec
exc_\vec:
	.if !(\vec == 8 || (\vec >= 10 && \vec <= 14) || \vec == 17 || \vec == 21 || \vec == 29 || \vec == 30)
	push $0
	.endif
	push $\vec
	jmp exc_common
.endm
.altmacro
.set v, 0
.rept 32
	EXC %v
	.set v, v + 1
.endr

exc_common:
	mov %rsp, %rdi
	and $-16, %rsp
	call rt_exception		/* does not return */
2:	hlt
	jmp 2b

/* An AP arrives here from the trampoline at ring 0, marks itself seen by
 * APIC ID and sleeps: a handful of emulated instructions and no stack. */
	.globl ap_entry64
ap_entry64:
	mov $0xfee00020, %eax
	mov (%rax), %eax
	shr $24, %eax
	movb $1, ap_seen(%rax)
3:	hlt
	jmp 3b

	.section .rodata
	.globl rt_entry_minimal
rt_entry_minimal:
#ifdef RT_MINIMAL
	.byte 1
#else
	.byte 0
#endif
	.globl exc_stubs
	.balign 8
exc_stubs:
.macro EXCPTR vec
	.quad exc_\vec
.endm
.set v, 0
.rept 32
	EXCPTR %v
	.set v, v + 1
.endr

/*
 * AP start-up code, copied to AP_TRAMPOLINE (SIPI vector 0x08) by ring 3.
 * Kept out of executable sections so the 64-bit disassembly check does not
 * misread 16-bit bytes.  Real mode -> 32-bit -> long mode on the 2 MiB
 * static tables, which every CPU supports.
 */
	.section .rodata.trampoline, "a"
	.globl ap_tramp_start, ap_tramp_end
#define TR(x) (AP_TRAMPOLINE + (x) - ap_tramp_start)
	.code16
ap_tramp_start:
	cli
	xor %ax, %ax
	mov %ax, %ds
	lgdtl TR(ap_gdt_ptr)
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	ljmpl $SEL_CODE32, $TR(ap_tramp32)
	.code32
ap_tramp32:
	mov $SEL_KDATA, %ax
	mov %ax, %ds
	mov %ax, %es
	mov %ax, %ss
	mov %cr4, %eax
	or $0x20, %eax
	mov %eax, %cr4
	mov $pml4_2m, %eax
	mov %eax, %cr3
	mov $0xc0000080, %ecx
	rdmsr
	or $0x101, %eax
	wrmsr
	mov %cr0, %eax
	or $0x80000000, %eax
	mov %eax, %cr0
	ljmp $SEL_KCODE, $ap_entry64
	.balign 8
ap_gdt_ptr:
	.word gdt_end - gdt - 1
	.long gdt
ap_tramp_end:

	.data
	.balign 16
	.globl gdt, gdt_end
gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* 0x08 kernel code, 64-bit */
	.quad 0x00cf92000000ffff	/* 0x10 kernel data (also 32-bit flat) */
	.quad 0x00cff2000000ffff	/* 0x18 user data */
	.quad 0x00affa000000ffff	/* 0x20 user code, 64-bit */
	.word 104 + 8192		/* 0x28 TSS, 64-bit available, with I/O bitmap */
	.word tss_base_0_15
	.byte tss_base_16_23
	.byte 0x89
	.byte 0
	.byte tss_base_24_31
	.long 0
	.long 0
	.quad 0x00cf9a000000ffff	/* 0x38 code, 32-bit flat (APs) */
gdt_end:
	.balign 8
	.word 0
gdt_ptr:
	.word gdt_end - gdt - 1
	.quad gdt
	.word 0
	.globl idt_ptr
idt_ptr:
	.word 256 * 16 - 1
	.quad rt_idt

	.balign 16
	.globl rt_tss
rt_tss:
	.long 0
	.quad kstack_top		/* rsp0: interrupts taken in ring 3 */
	.fill 88, 1, 0
	.word 104			/* I/O bitmap right after the TSS */
	.fill 8192, 1, 0		/* every port allowed from ring 3 */
	.byte 0xff			/* the bitmap's required terminator */

/* Identity map of the first 4 GiB, user-accessible, the top GiB uncached. */
	.section .data.pagetables, "aw"
	.balign 4096
	.globl pml4_2m, pml4_1g
pml4_2m:
	.quad pdpt_2m + 7
	.fill 511, 8, 0
pml4_1g:
	.quad pdpt_1g + 7
	.fill 511, 8, 0
pdpt_2m:
	.quad pd_2m + 7, pd_2m + 0x1007, pd_2m + 0x2007, pd_2m + 0x3007
	.fill 508, 8, 0
pdpt_1g:
	.quad 0x87, 0x40000087, 0x80000087, 0xc000009f
	.fill 508, 8, 0
pd_2m:
.set i, 0
.rept 2048
	.quad (i << 21) | 0x87 | (((i >> 9) & (i >> 10) & 1) * 0x18)
	.set i, i + 1
.endr

	.section .note.Xen, "a"
	.balign 4
	.long 4				/* name size */
	.long 8				/* desc size */
	.long 18			/* XEN_ELFNOTE_PHYS32_ENTRY */
	.asciz "Xen"
	.quad entry_pvh

	.section .stack, "aw", @nobits
	.balign 4096
	.space 16384
kstack_top:
	.space 65536
	.globl ustack_top
ustack_top:
