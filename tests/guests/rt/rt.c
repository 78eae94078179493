/* SPDX-License-Identifier: Apache-2.0 */
/* Ring-3 start, exception reports and the PASS/FAIL protocol. */
#include "rt.h"

extern char _bss_start[], _bss_end[];
extern const uint8_t rt_entry_minimal;
extern const uint64_t exc_stubs[32];
void rt_start3(int kind, uint64_t raw);
void rt_exception(uint64_t *frame);

#define DEBUG_EXIT 0x501

void rt_start3(int kind, uint64_t raw)
{
	/* Loaders do not promise a zeroed .bss; clear it here in ring 3
	 * rather than with a slow emulated rep stos at ring 0. */
	for (char *p = _bss_start; p < _bss_end; p++)
		*(volatile char *)p = 0;
	if (!rt_entry_minimal) {
		for (int v = 0; v < 32; v++)
			idt_set(v, (void (*)(void))exc_stubs[v]);
		idt_set_dpl(3, ring0_entry, 3);	/* ring0(): INT3 from ring 3 */
		idt_set(TIMER_VECTOR, timer_isr);
		idt_set(0xff, spurious_isr);
	}
	bootinfo_init(kind, raw);
	guest_main();
	guest_pass();
}

void guest_pass(void)
{
	printf("VIREO-GUEST: PASS %s\n", guest_name);
	acpi_poweroff();
	/* A VMM may act on the power-off request asynchronously (QEMU does):
	 * give it time before the debug exit, so the exit status says which
	 * way the guest ended. */
	udelay(200000);
	outb(DEBUG_EXIT, 0);
	halt_forever();
}

void guest_fail(const char *fmt, ...)
{
	va_list ap;
	printf("VIREO-GUEST: FAIL %s: ", guest_name);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	serial_puts("\n");
	outb(DEBUG_EXIT, 1);
	triple_fault();
}

/* frame: vector, error code, RIP, CS, RFLAGS, RSP, SS (ring 0, emulated). */
void rt_exception(uint64_t *frame)
{
	uint64_t cr2 = 0;
	if (frame[0] == 14)
		__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	guest_fail("exception %lu error %lx at rip %lx cs %lx rsp %lx cr2 %lx", frame[0], frame[1],
		   frame[2], frame[3], frame[5], cr2);
}
