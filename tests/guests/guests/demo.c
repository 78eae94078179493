/* SPDX-License-Identifier: Apache-2.0 */
/* What `make demo` shows a newcomer: what the guest found, then power-off. */
#include "rt.h"

const char guest_name[] = "demo";

static const char *proto_text(void)
{
	switch (bootinfo.kind) {
	case BOOT_LINUX64: return "64-bit boot protocol (bzImage)";
	case BOOT_LINUX32: return "32-bit boot protocol (bzImage)";
	default: return "PVH (ELF)";
	}
}

void guest_main(void)
{
	printf("\nHello from a vireo test guest!\n");
	printf("  booted through: %s\n", proto_text());
	printf("  command line:   \"%s\"\n", bootinfo.cmdline);
	printf("  memory map:\n");
	for (int i = 0; i < bootinfo.nmem; i++) {
		const struct memrange *m = &bootinfo.mem[i];
		if (!m->size)
			continue;
		printf("    %016lx-%016lx %s\n", m->addr, m->addr + m->size - 1,
		       m->type == 1 ? "RAM" : m->type == 2 ? "reserved" : "other");
	}
	printf("  RAM:            %lu MiB (%lu bytes)\n", bootinfo_ram() >> 20, bootinfo_ram());
	if (acpi_init() == 0) {
		printf("  CPUs (MADT):    %d\n", acpi.ncpus);
		printf("  ACPI:           PM1a_CNT %x, \\_S5 SLP_TYP %d, PM timer %x%s\n", acpi.pm1a_cnt,
		       acpi.s5_typ, acpi.pm_tmr, acpi.hw_reduced ? " (HW-reduced)" : "");
	} else {
		printf("  ACPI:           none found\n");
	}
	struct mptable mp;
	if (mp_scan(&mp) == 0)
		printf("  CPUs (MP 1.4):  %d\n", mp.ncpus);
	if (!cmdline_has("nortc")) {
		struct rtc_time t;
		rtc_read(&t);
		printf("  RTC:            %04d-%02d-%02dT%02d:%02d:%02dZ\n", t.year, t.mon, t.day,
		       t.hour, t.min, t.sec);
	}
	uint64_t hz = tsc_hz();
	printf("  TSC:            %lu.%03lu GHz%s\n", hz / 1000000000, hz / 1000000 % 1000,
	       acpi.pm_tmr ? " (measured against the ACPI PM timer)" : "");
	uint64_t flags;
	uint16_t cs;
	__asm__ volatile("pushfq; pop %0; mov %%cs, %1" : "=r"(flags), "=r"(cs));
	printf("  running in ring %u (RFLAGS %lx, IOPL %lu); powering off now. Bye!\n\n", cs & 3,
	       flags, flags >> 12 & 3);
}
