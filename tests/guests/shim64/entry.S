/* SPDX-License-Identifier: Apache-2.0 */
/* PVH entry of the shim (EBX = hvm_start_info) and its final jump into a
 * guest's 64-bit boot-protocol entry, in the state docs/platform.md gives. */
	.section .text.entry, "ax"
	.code32
	.globl shim_entry
shim_entry:
	mov $stack_top, %esp
	push %ebx
	call shim_main			/* returns the entry address */
	mov %eax, %edi
	lgdt gdtr
	mov %cr4, %eax
	or $0x20, %eax			/* PAE */
	mov %eax, %cr4
	mov $0x9000, %eax
	mov %eax, %cr3
	mov $0xc0000080, %ecx
	rdmsr
	or $0x100, %eax			/* LME */
	wrmsr
	mov %cr0, %eax
	or $0x80000001, %eax
	mov %eax, %cr0
	mov $0x18, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %edi, jump_target
	mov $0x7000, %esi
	ljmp *jump_far

	.data
	.balign 8
gdtr:
	.word 0x1f
	.long 0x500
jump_far:
jump_target:
	.long 0
	.word 0x10

	.section .note.Xen, "a"
	.balign 4
	.long 4, 4, 18
	.asciz "Xen"
	.long shim_entry

	.bss
	.balign 16
	.space 16384
stack_top:
