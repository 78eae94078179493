/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "devices/rtc.h"
#include "helpers.h"

/* 2024-02-29 13:05:09 UTC, a Thursday. */
#define T0 1709211909

struct fixture {
	struct bus bus;
	struct rtc rtc;
	struct timespec now;
};

static void fixed_clock(void *ctx, struct timespec *ts)
{
	*ts = ((struct fixture *)ctx)->now;
}

static int setup(void **state)
{
	static struct fixture fx;
	struct fixture *f = &fx;
	struct verr err = {0};

	memset(f, 0, sizeof(*f));
	f->now.tv_sec = T0;
	f->now.tv_nsec = 500000000;
	if (bus_init(&f->bus, "pio", &err) || rtc_init(&f->rtc, NULL, fixed_clock, f, &err) ||
	    rtc_attach(&f->rtc, &f->bus, &err))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	rtc_destroy(&f->rtc);
	bus_destroy(&f->bus);
	return 0;
}

static uint8_t cmos_read(struct fixture *f, uint8_t idx)
{
	outb(&f->bus, 0x70, idx);
	return inb(&f->bus, 0x71);
}

static void cmos_write(struct fixture *f, uint8_t idx, uint8_t v)
{
	outb(&f->bus, 0x70, idx);
	outb(&f->bus, 0x71, v);
}

static void time_bcd_default(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(cmos_read(f, 0x0b), 0x02);
	assert_int_equal(cmos_read(f, 0x00), 0x09);
	assert_int_equal(cmos_read(f, 0x02), 0x05);
	assert_int_equal(cmos_read(f, 0x04), 0x13);
	assert_int_equal(cmos_read(f, 0x06), 0x05);
	assert_int_equal(cmos_read(f, 0x07), 0x29);
	assert_int_equal(cmos_read(f, 0x08), 0x02);
	assert_int_equal(cmos_read(f, 0x09), 0x24);
	assert_int_equal(cmos_read(f, 0x32), 0x20);
	/* Reads follow the clock, no latching. */
	f->now.tv_sec += 51;
	assert_int_equal(cmos_read(f, 0x00), 0x00);
	assert_int_equal(cmos_read(f, 0x02), 0x06);
	/* Bit 7 of the index (NMI mask) is ignored. */
	outb(&f->bus, 0x70, 0x80 | 0x02);
	assert_int_equal(inb(&f->bus, 0x71), 0x06);
}

static void time_binary_and_12h(void **state)
{
	struct fixture *f = *state;

	cmos_write(f, 0x0b, 0x06);  /* binary, 24 h */
	assert_int_equal(cmos_read(f, 0x00), 9);
	assert_int_equal(cmos_read(f, 0x04), 13);
	assert_int_equal(cmos_read(f, 0x07), 29);
	assert_int_equal(cmos_read(f, 0x09), 24);
	assert_int_equal(cmos_read(f, 0x32), 20);
	cmos_write(f, 0x0b, 0x04);  /* binary, 12 h: 1 PM */
	assert_int_equal(cmos_read(f, 0x04), 0x81);
	cmos_write(f, 0x0b, 0x00);  /* BCD, 12 h */
	assert_int_equal(cmos_read(f, 0x04), 0x81);
	f->now.tv_sec -= 13 * 3600; /* 00:05 is 12 AM */
	assert_int_equal(cmos_read(f, 0x04), 0x12);
	f->now.tv_sec += 12 * 3600; /* 12:05 is 12 PM */
	assert_int_equal(cmos_read(f, 0x04), 0x92);
}

static void guest_sets_clock(void **state)
{
	struct fixture *f = *state;

	/* 2030-12-31 23:59:50, written the way a guest does: SET, then fields. */
	cmos_write(f, 0x0b, 0x82);
	assert_int_equal(cmos_read(f, 0x00), 0x09); /* frozen at the latch */
	f->now.tv_sec += 5;
	assert_int_equal(cmos_read(f, 0x00), 0x09);
	cmos_write(f, 0x00, 0x50);
	cmos_write(f, 0x02, 0x59);
	cmos_write(f, 0x04, 0x23);
	cmos_write(f, 0x07, 0x31);
	cmos_write(f, 0x08, 0x12);
	cmos_write(f, 0x09, 0x30);
	cmos_write(f, 0x32, 0x20);
	cmos_write(f, 0x0b, 0x02);
	assert_int_equal(cmos_read(f, 0x00), 0x50);
	assert_int_equal(cmos_read(f, 0x09), 0x30);
	f->now.tv_sec += 10;   /* rolls over into 2031 */
	assert_int_equal(cmos_read(f, 0x00), 0x00);
	assert_int_equal(cmos_read(f, 0x02), 0x00);
	assert_int_equal(cmos_read(f, 0x04), 0x00);
	assert_int_equal(cmos_read(f, 0x07), 0x01);
	assert_int_equal(cmos_read(f, 0x08), 0x01);
	assert_int_equal(cmos_read(f, 0x09), 0x31);
	assert_int_equal(f->rtc.offset, 1924991990 - (T0 + 5));

	/* A single field written while the clock runs takes effect at once. */
	cmos_write(f, 0x02, 0x30);
	assert_int_equal(cmos_read(f, 0x02), 0x30);
	assert_int_equal(cmos_read(f, 0x09), 0x31);
	/* Nonsense (BCD 0x99 minutes) is ignored. */
	cmos_write(f, 0x02, 0x99);
	assert_int_equal(cmos_read(f, 0x02), 0x30);
}

static void status_registers(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(cmos_read(f, 0x0a), 0x26);
	f->now.tv_nsec = 999900000;  /* inside the update window */
	assert_int_equal(cmos_read(f, 0x0a), 0xa6);
	f->now.tv_nsec = 0;
	assert_int_equal(cmos_read(f, 0x0a), 0x26);
	cmos_write(f, 0x0a, 0xa6);   /* UIP is read-only */
	assert_int_equal(cmos_read(f, 0x0a), 0x26);

	assert_int_equal(cmos_read(f, 0x0d), 0x80);
	cmos_write(f, 0x0d, 0x00);
	assert_int_equal(cmos_read(f, 0x0d), 0x80);

	/* C is read-to-clear: UF once per elapsed second. */
	assert_int_equal(cmos_read(f, 0x0c) & 0x10, 0x10);
	assert_int_equal(cmos_read(f, 0x0c), 0x00);
	f->now.tv_sec++;
	cmos_write(f, 0x0b, 0x12);    /* UIE */
	assert_int_equal(cmos_read(f, 0x0c), 0x90);
	assert_int_equal(cmos_read(f, 0x0c), 0x00);
	cmos_write(f, 0x0c, 0xff);
	assert_int_equal(cmos_read(f, 0x0c), 0x00);
}

static void nvram(void **state)
{
	struct fixture *f = *state;
	struct rtc_state st;
	struct verr err = {0};

	for (unsigned i = 0x0e; i < 0x80; i++)
		if (i != 0x32)
			cmos_write(f, (uint8_t)i, (uint8_t)(i ^ 0x5a));
	for (unsigned i = 0x0e; i < 0x80; i++)
		if (i != 0x32)
			assert_int_equal(cmos_read(f, (uint8_t)i), (uint8_t)(i ^ 0x5a));
	/* Alarm registers are plain bytes. */
	cmos_write(f, 0x01, 0x42);
	assert_int_equal(cmos_read(f, 0x01), 0x42);
	/* One 16-bit write: index then data. */
	outw(&f->bus, 0x70, 0x40 | (0x77 << 8));
	assert_int_equal(cmos_read(f, 0x40), 0x77);
	assert_int_equal(inb(&f->bus, 0x70), 0xff);
	rtc_cmos_set(&f->rtc, 0x34, 0x12);
	assert_int_equal(cmos_read(f, 0x34), 0x12);
	assert_int_equal(rtc_cmos_get(&f->rtc, 0x40 | 0x80), 0x77);

	rtc_save(&f->rtc, &st);
	cmos_write(f, 0x40, 0);
	assert_int_equal(rtc_restore(&f->rtc, &st, &err), 0);
	assert_int_equal(cmos_read(f, 0x40), 0x77);
	st.offset = INT64_MAX;
	assert_int_equal(rtc_restore(&f->rtc, &st, &err), -EINVAL);
}

static void host_clock(void **state)
{
	struct rtc r;
	struct bus b;
	struct verr err = {0};
	uint8_t yy;
	(void)state;

	assert_int_equal(bus_init(&b, "pio", &err), 0);
	assert_int_equal(rtc_init(&r, NULL, NULL, NULL, &err), 0);
	assert_int_equal(rtc_attach(&r, &b, &err), 0);
	outb(&b, 0x70, 0x09);
	yy = inb(&b, 0x71);
	assert_true(yy >= 0x24 && (yy & 0xf) <= 9);
	rtc_destroy(&r);
	bus_destroy(&b);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(time_bcd_default), T(time_binary_and_12h), T(guest_sets_clock),
		T(status_registers), T(nvram), cmocka_unit_test(host_clock),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
