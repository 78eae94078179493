/* SPDX-License-Identifier: Apache-2.0 */
/* CMOS clock sanity.  Command line:
 *   expect_epoch=S   the RTC must be within 120 s of Unix time S */
#include "rt.h"

const char guest_name[] = "rtc";

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
	if (cmdline_has("expect_epoch")) {
		int64_t want = (int64_t)cmdline_u64("expect_epoch", 0);
		int64_t d = now - want;
		CHECK(d >= -120 && d <= 120, "RTC is %ld s off the host's clock", d);
	}
}
