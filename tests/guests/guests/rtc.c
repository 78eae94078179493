/* SPDX-License-Identifier: Apache-2.0 */
/* CMOS clock sanity.  Command line:
 *   expect_epoch=S   the RTC must be within 120 s of Unix time S
 *   nomodes          skip re-reading the clock in binary and 12-hour modes */
#include "rt.h"

const char guest_name[] = "rtc";

static void set_mode(uint8_t b)
{
	outb(0x70, 0x0b);
	outb(0x71, b);
}

/* Status B's DM (binary) and 24/12 bits change how the clock reads, not
 * what time it is: the same instant must come back in every format. */
static void check_modes(int64_t base)
{
	static const struct { uint8_t bits; const char *name; } modes[] = {
		{ 0x06, "binary, 24h" }, { 0x00, "BCD, 12h" }, { 0x04, "binary, 12h" },
	};
	uint8_t b = cmos_read(0x0b);
	for (unsigned i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		struct rtc_time t;
		set_mode((uint8_t)((b & ~0x06) | modes[i].bits));
		rtc_read(&t);
		int64_t d = rtc_epoch(&t) - base;
		printf("RTC %s: %04d-%02d-%02dT%02d:%02d:%02dZ\n", modes[i].name, t.year, t.mon, t.day,
		       t.hour, t.min, t.sec);
		CHECK(t.bcd == !(modes[i].bits & 4) && t.h24 == !!(modes[i].bits & 2),
		      "status B did not keep mode %s", modes[i].name);
		CHECK(d >= 0 && d <= 3, "in mode %s the clock reads %ld s off", modes[i].name, d);
	}
	set_mode(b);
}

void guest_main(void)
{
	struct rtc_time t;
	rtc_read(&t);
	printf("RTC: %04d-%02d-%02dT%02d:%02d:%02dZ (%s, %s)\n", t.year, t.mon, t.day, t.hour, t.min,
	       t.sec, t.bcd ? "BCD" : "binary", t.h24 ? "24h" : "12h");
	CHECK(t.year >= 2024 && t.year <= 2099, "year %d", t.year);
	CHECK(t.mon >= 1 && t.mon <= 12, "month %d", t.mon);
	CHECK(t.day >= 1 && t.day <= 31, "day %d", t.day);
	CHECK(t.hour >= 0 && t.hour < 24, "hour %d", t.hour);
	CHECK(t.min >= 0 && t.min < 60, "minute %d", t.min);
	CHECK(t.sec >= 0 && t.sec < 60, "second %d", t.sec);
	int64_t now = rtc_epoch(&t);
	printf("EPOCH: %ld\n", now);
	if (!cmdline_has("nomodes"))
		check_modes(now);
	if (cmdline_has("expect_epoch")) {
		int64_t want = (int64_t)cmdline_u64("expect_epoch", 0);
		int64_t d = now - want;
		CHECK(d >= -120 && d <= 120, "RTC is %ld s off the host's clock", d);
	}
}
