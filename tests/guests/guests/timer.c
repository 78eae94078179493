/* SPDX-License-Identifier: Apache-2.0 */
/*
 * LAPIC timer, periodic, interrupts taken from ring 3.  Ticks are counted
 * over one RTC second.  The LAPIC timer of KVM and QEMU counts a 1 GHz bus
 * clock; the divider is set to 16.  Over the same second the ACPI PM timer
 * (FADT PM_TMR_BLK) must advance 3579545 ticks, within 5% (a wrong clock is
 * off by far more; a loaded host adds jitter to the RTC edges).  Command line:
 *   timer_hz=N       programmed rate (default 1000)
 *   nopmtimer        skip the PM timer check (firmware leaves it off)
 *   tscdeadline      CPUID must offer the TSC-deadline timer (leaf 1 ECX 24)
 */
#include "rt.h"

const char guest_name[] = "timer";

/* Returns once the RTC seconds register changes (bounded: ~3 s). */
static void next_second(void)
{
	uint8_t s = cmos_read(0);
	uint64_t end = tsc_deadline(3000000);
	while (cmos_read(0) == s)
		CHECK(rdtsc() < end, "RTC seconds did not advance");
}

void guest_main(void)
{
	uint64_t hz = cmdline_u64("timer_hz", 1000);
	CHECK(hz >= 10 && hz <= 100000, "timer_hz=%lu out of range", hz);
	uint32_t r[4];
	cpuid(1, 0, r);
	printf("TIMER: TSC deadline %s\n", r[2] & (1u << 24) ? "offered" : "not offered");
	CHECK(!cmdline_has("tscdeadline") || (r[2] & (1u << 24)), "CPUID 1 ECX bit 24 (TSC deadline) is clear");
	lapic_write(0xf0, 0x1ff);
	lapic_write(0x3e0, 0x3);				/* divide by 16 */
	lapic_write(0x320, TIMER_VECTOR | 1u << 17);		/* periodic */
	lapic_write(0x380, (uint32_t)(1000000000ull / 16 / hz));
	acpi_init();
	uint16_t pm = cmdline_has("nopmtimer") ? 0 : (uint16_t)acpi.pm_tmr;
	next_second();
	uint64_t t0 = rt_ticks;
	uint32_t pm0 = pm ? inl(pm) : 0;
	next_second();
	uint64_t ticks = rt_ticks - t0;
	/* 24-bit counter, wraps every 4.7 s: one second fits. */
	uint32_t pm_ticks = pm ? (inl(pm) - pm0) & 0xffffff : 0;
	lapic_write(0x320, 1u << 16);				/* mask */
	lapic_write(0x380, 0);
	printf("TIMER: %lu ticks in one RTC second (programmed %lu Hz)\n", ticks, hz);
	/* Fast by at most 20%; slow by at most 40%: on a loaded host the
	 * emulated ring-0 handler of a descheduled vCPU loses ticks, while a
	 * wrong divider or period shows as a factor of two or more. */
	CHECK(ticks * 10 >= hz * 6 && ticks * 10 <= hz * 12, "rate %lu Hz is not within -40%%/+20%% of %lu Hz",
	      ticks, hz);
	if (pm) {
		printf("PMTIMER: %u ticks in one RTC second (nominal 3579545)\n", pm_ticks);
		CHECK(pm_ticks >= 3400568 && pm_ticks <= 3758522,
		      "ACPI PM timer ran %u ticks in one RTC second, not 3579545 +-5%%", pm_ticks);
	}
}
