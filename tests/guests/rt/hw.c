/* SPDX-License-Identifier: Apache-2.0 */
/* CMOS RTC, TSC timing, the ring-0 gate and the IDT. */
#include "rt.h"

volatile uint64_t rt_ticks;
volatile uint8_t ap_seen[256];
/* Filled from ring 3 (the IDT is ordinary user-accessible memory); the
 * entry code loaded IDTR with its address before leaving ring 0. */
uint64_t rt_idt[512] __attribute__((aligned(16)));
extern const uint8_t rt_entry_minimal;

uint8_t cmos_read(uint8_t reg)
{
	outb(0x70, reg);
	return inb(0x71);
}

static int bcd(int v) { return (v & 15) + (v >> 4) * 10; }

static void rtc_raw(int r[7])
{
	static const uint8_t regs[7] = { 0, 2, 4, 7, 8, 9, 0x32 };
	/* Wait out an update in progress: it lasts under 2 ms, so 20 ms
	 * bounds it (an absent RTC reads 0xff, UIP forever). */
	uint64_t end = tsc_deadline(20000);
	while ((cmos_read(0x0a) & 0x80) && rdtsc() < end)
		cpu_relax();
	for (int i = 0; i < 7; i++)
		r[i] = cmos_read(regs[i]);
}

void rtc_read(struct rtc_time *t)
{
	int a[7], b[7];
	/* Two identical reads in a row cannot straddle an update. */
	rtc_raw(a);
	for (int tries = 0; tries < 10; tries++) {
		rtc_raw(b);
		if (!memcmp(a, b, sizeof(a)))
			break;
		memcpy(a, b, sizeof(a));
	}
	uint8_t sb = cmos_read(0x0b);
	t->bcd = !(sb & 4);
	t->h24 = sb & 2;
	bool pm = !t->h24 && (b[2] & 0x80);
	int hour = b[2] & 0x7f;
	if (t->bcd) {
		for (int i = 0; i < 7; i++)
			b[i] = bcd(b[i]);
		hour = bcd(hour);
	}
	if (!t->h24)
		hour = (hour % 12) + (pm ? 12 : 0);
	int century = (b[6] >= 19 && b[6] <= 21) ? b[6] : 20;
	t->sec = b[0];
	t->min = b[1];
	t->hour = hour;
	t->day = b[3];
	t->mon = b[4];
	t->year = century * 100 + b[5];
}

int64_t rtc_epoch(const struct rtc_time *t)
{
	/* Days from civil date (proleptic Gregorian), March-based year. */
	int64_t y = t->year - (t->mon <= 2);
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t m = t->mon;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + t->day - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	int64_t days = era * 146097 + doe - 719468;
	return days * 86400 + t->hour * 3600 + t->min * 60 + t->sec;
}

static uint64_t tsc_rate;

/* Measure the TSC against the 3.579545 MHz ACPI PM timer over ~10 ms;
 * without one, trust the hypervisor's timing leaf or guess 3 GHz (only
 * timeouts depend on it). */
uint64_t tsc_hz(void)
{
	if (tsc_rate)
		return tsc_rate;
	acpi_init();
	if (acpi.pm_tmr) {
		uint16_t port = (uint16_t)acpi.pm_tmr;
		uint32_t first = inl(port) & 0xffffff, start, now;
		/* Start on a tick edge.  A timer that is not decoded (firmware
		 * left the PM block off) reads constant: give up quickly. */
		int i = 0;
		while ((start = inl(port) & 0xffffff) == first && ++i < 1000)
			;
		if (start != first) {
			uint64_t t0 = rdtsc(), t1;
			do {
				now = inl(port) & 0xffffff;
				t1 = rdtsc();
			} while (((now - start) & 0xffffff) < 35795 && t1 - t0 < 20000000000ull);
			uint64_t ticks = (now - start) & 0xffffff;
			if (ticks)
				tsc_rate = (t1 - t0) * 3579545ull / ticks;
		}
	}
	if (!tsc_rate) {
		uint32_t r[4];
		cpuid(0x40000000, 0, r);
		if (r[0] >= 0x40000010 && r[0] < 0x40000100) {
			cpuid(0x40000010, 0, r);
			tsc_rate = (uint64_t)r[0] * 1000;
		}
	}
	if (!tsc_rate)
		tsc_rate = 3000000000ull;
	return tsc_rate;
}

uint64_t tsc_deadline(uint64_t us)
{
	return rdtsc() + tsc_hz() / 1000000 * us;
}

void udelay(uint64_t us)
{
	uint64_t end = tsc_deadline(us);
	while (rdtsc() < end)
		cpu_relax();
}

void lapic_eoi(void)
{
	lapic_write(0xb0, 0);
}

__attribute__((noinline)) uint64_t ring0(uint64_t (*fn)(uint64_t), uint64_t arg)
{
	register uint64_t rax __asm__("rax") = (uint64_t)fn;
	register uint64_t rdi __asm__("rdi") = arg;
	/* int3 reaches ring0_entry through the DPL-3 gate of vector 3. */
	__asm__ volatile("int3"
			 : "+r"(rax), "+r"(rdi)
			 :
			 : "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11", "memory", "cc");
	return rax;
}

void idt_set_dpl(int vec, void (*handler)(void), unsigned dpl)
{
	uint64_t a = (uint64_t)handler;
	uint64_t type = 0x8e00ull | (uint64_t)(dpl & 3) << 13;
	/* 64-bit interrupt gate, present, selector KCODE. */
	rt_idt[2 * vec] = (a & 0xffff) | (uint64_t)SEL_KCODE << 16 | type << 32 |
			  (a >> 16 & 0xffff) << 48;
	rt_idt[2 * vec + 1] = a >> 32;
}

void idt_set(int vec, void (*handler)(void))
{
	idt_set_dpl(vec, handler, 0);
}

static uint64_t r0_halt(uint64_t unused)
{
	(void)unused;
	for (;;)
		__asm__ volatile("cli; hlt");
	return 0;
}

void halt_forever(void)
{
	if (!rt_entry_minimal)
		ring0(r0_halt, 0);
	for (;;)	/* no ring-0 gate: spin where we are */
		cpu_relax();
}

static uint64_t r0_lidt_null(uint64_t unused)
{
	static const struct __attribute__((packed)) { uint16_t limit; uint64_t base; } null_idt;
	(void)unused;
	__asm__ volatile("lidt %0" :: "m"(null_idt));
	return 0;
}

/* An empty IDT turns any exception into a triple fault (shutdown). */
void triple_fault(void)
{
	uint16_t cs;
	__asm__ volatile("mov %%cs, %0" : "=r"(cs));
	if (!(cs & 3))
		r0_lidt_null(0);
	else if (!rt_entry_minimal)
		ring0(r0_lidt_null, 0);
	else
		memset(rt_idt, 0, sizeof(rt_idt));
	for (;;)
		__asm__ volatile("ud2");
}
