/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Real-mode part of the bzImage, for loaders that run the setup code
 * (QEMU's linuxboot/qboot enter at setup segment + 0x20 : 0, i.e. file
 * offset 0x200, whose jump lands here at 0x280).  It does what the Linux
 * 32-bit boot protocol promises: flat __BOOT_CS (0x10) / __BOOT_DS (0x18),
 * paging and interrupts off, ESI = boot_params (= our setup base, which
 * the loader filled), then jumps to code32_start.
 *
 * Linked at 0x280: DS = setup base makes link addresses DS offsets.
 */
	.code16
	.section .text
	.globl setup16_start
setup16_start:
	cli
	mov %cs, %ax
	sub $0x20, %ax
	mov %ax, %ds
	movzwl %ax, %esi
	shl $4, %esi
	/* The GDT's linear address depends on where we were loaded. */
	lea gdt(%esi), %eax
	mov %eax, gdt_ptr + 2
	lea pm32(%esi), %eax
	mov %eax, far_ptr
	mov 0x214, %ebx			/* header field code32_start */
	lgdtl gdt_ptr
	mov %cr0, %eax
	or $1, %eax
	mov %eax, %cr0
	/* DS still holds its real-mode base until reloaded. */
	ljmpl *far_ptr
	.code32
pm32:
	mov $0x18, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %fs
	mov %eax, %gs
	mov %eax, %ss
	jmp *%ebx

	.balign 8
gdt:
	.quad 0
	.quad 0
	.quad 0x00cf9a000000ffff	/* 0x10 __BOOT_CS */
	.quad 0x00cf92000000ffff	/* 0x18 __BOOT_DS */
gdt_end:
gdt_ptr:
	.word gdt_end - gdt - 1
	.long 0
far_ptr:
	.long 0
	.word 0x10
