/* SPDX-License-Identifier: Apache-2.0 */
/* MC146818 RTC: clock registers derived from host time, the rest NVRAM. */
#include "devices/rtc.h"

#include <errno.h>
#include <string.h>

#include "core/log.h"

enum {
	REG_SEC = 0x00, REG_MIN = 0x02, REG_HOUR = 0x04, REG_WDAY = 0x06,
	REG_MDAY = 0x07, REG_MON = 0x08, REG_YEAR = 0x09,
	REG_A = 0x0a, REG_B = 0x0b, REG_C = 0x0c, REG_D = 0x0d,
};

#define A_UIP 0x80
#define B_SET 0x80
#define B_UIE 0x10
#define B_DM_BINARY 0x04
#define B_24H 0x02
#define C_IRQF 0x80
#define C_UF 0x10
#define D_VRT 0x80
#define HOUR_PM 0x80

/* UIP rises 244 us before each update (MC146818 datasheet). */
#define UIP_WINDOW_NS 244000L

static const char *const RTC_CTX = "rtc";

static void rtc_host_now(struct rtc *r, struct timespec *ts)
{
	if (r->clock)
		r->clock(r->clock_ctx, ts);
	else
		clock_gettime(CLOCK_REALTIME, ts);
}

/* Registers that follow the running clock (alarms 1, 3, 5 are plain bytes). */
static bool rtc_is_time_reg(unsigned idx)
{
	switch (idx) {
	case REG_SEC: case REG_MIN: case REG_HOUR: case REG_WDAY:
	case REG_MDAY: case REG_MON: case REG_YEAR: case RTC_REG_CENTURY:
		return true;
	default:
		return false;
	}
}

static uint8_t rtc_enc(const struct rtc *r, unsigned v)
{
	v %= 100;
	if (r->cmos[REG_B] & B_DM_BINARY)
		return (uint8_t)v;
	return (uint8_t)(((v / 10) << 4) | (v % 10));
}

/* Decodes a guest-written value; garbage BCD nibbles give -1. */
static int rtc_dec(const struct rtc *r, uint8_t v)
{
	if (r->cmos[REG_B] & B_DM_BINARY)
		return v;
	if ((v >> 4) > 9 || (v & 0xf) > 9)
		return -1;
	return (v >> 4) * 10 + (v & 0xf);
}

static uint8_t rtc_enc_hour(const struct rtc *r, int hour)
{
	int h12;

	if (r->cmos[REG_B] & B_24H)
		return rtc_enc(r, hour);
	h12 = hour % 12 ? hour % 12 : 12;
	return rtc_enc(r, h12) | (hour >= 12 ? HOUR_PM : 0);
}

static int rtc_dec_hour(const struct rtc *r, uint8_t v)
{
	int h;

	if (r->cmos[REG_B] & B_24H)
		return rtc_dec(r, v);
	h = rtc_dec(r, v & ~HOUR_PM);
	if (h < 1 || h > 12)
		return -1;
	return h % 12 + ((v & HOUR_PM) ? 12 : 0);
}

static int64_t rtc_host_sec(struct rtc *r, long *nsec)
{
	struct timespec ts;

	rtc_host_now(r, &ts);
	if (nsec)
		*nsec = ts.tv_nsec;
	return (int64_t)ts.tv_sec;
}

static int64_t rtc_guest_sec(struct rtc *r, long *nsec)
{
	return rtc_host_sec(r, nsec) + r->offset;
}

/* Value of one clock register at guest time t. */
static uint8_t rtc_clock_value(struct rtc *r, unsigned idx, int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm))
		memset(&tm, 0, sizeof(tm));
	switch (idx) {
	case REG_SEC: return rtc_enc(r, tm.tm_sec);
	case REG_MIN: return rtc_enc(r, tm.tm_min);
	case REG_HOUR: return rtc_enc_hour(r, tm.tm_hour);
	case REG_WDAY: return rtc_enc(r, tm.tm_wday + 1);
	case REG_MDAY: return rtc_enc(r, tm.tm_mday);
	case REG_MON: return rtc_enc(r, tm.tm_mon + 1);
	case REG_YEAR: return rtc_enc(r, tm.tm_year % 100);
	case RTC_REG_CENTURY: return rtc_enc(r, (tm.tm_year + 1900) / 100);
	default: return r->cmos[idx]; /* alarms are plain bytes */
	}
}

/* Copy the running time into the clock registers, so that reads while SET
 * is on, and a partial write by the guest, start from the current time. */
static void rtc_latch(struct rtc *r)
{
	int64_t t = rtc_guest_sec(r, NULL);
	static const unsigned regs[] = { REG_SEC, REG_MIN, REG_HOUR, REG_WDAY,
		REG_MDAY, REG_MON, REG_YEAR, RTC_REG_CENTURY };

	for (unsigned i = 0; i < sizeof(regs) / sizeof(regs[0]); i++)
		r->cmos[regs[i]] = rtc_clock_value(r, regs[i], t);
}

/* The guest wrote the clock registers: remember how far its time is from
 * the host's. Impossible dates leave the clock as it was. */
static void rtc_commit(struct rtc *r)
{
	struct tm tm = {0};
	int yy = rtc_dec(r, r->cmos[REG_YEAR]), cc = rtc_dec(r, r->cmos[RTC_REG_CENTURY]);
	time_t t;

	tm.tm_sec = rtc_dec(r, r->cmos[REG_SEC]);
	tm.tm_min = rtc_dec(r, r->cmos[REG_MIN]);
	tm.tm_hour = rtc_dec_hour(r, r->cmos[REG_HOUR]);
	tm.tm_mday = rtc_dec(r, r->cmos[REG_MDAY]);
	tm.tm_mon = rtc_dec(r, r->cmos[REG_MON]) - 1;
	if (cc < 19 || cc > 99)   /* no usable century: pick the usual window */
		cc = yy >= 70 ? 19 : 20;
	if (tm.tm_sec < 0 || tm.tm_sec > 59 || tm.tm_min < 0 || tm.tm_min > 59 ||
	    tm.tm_hour < 0 || tm.tm_hour > 23 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
	    tm.tm_mon < 0 || tm.tm_mon > 11 || yy < 0 || yy > 99) {
		log_debug(RTC_CTX, "guest set an invalid time, ignored");
		return;
	}
	tm.tm_year = cc * 100 + yy - 1900;
	t = timegm(&tm);
	r->offset = (int64_t)t - rtc_host_sec(r, NULL);
}

static void rtc_write_b(struct rtc *r, uint8_t v)
{
	uint8_t old = r->cmos[REG_B];

	if (v & B_SET)
		v &= ~B_UIE;  /* setting SET clears UIE (datasheet) */
	r->cmos[REG_B] = v;
	if (!(old & B_SET) && (v & B_SET))
		rtc_latch(r);
	else if ((old & B_SET) && !(v & B_SET))
		rtc_commit(r);
}

static void rtc_write_clock(struct rtc *r, unsigned idx, uint8_t v)
{
	if (r->cmos[REG_B] & B_SET) {
		r->cmos[idx] = v;
		return;
	}
	/* A write while the clock runs takes effect at once. */
	rtc_latch(r);
	r->cmos[idx] = v;
	rtc_commit(r);
}

static void rtc_write_data(struct rtc *r, uint8_t v)
{
	unsigned idx = r->index;

	if (rtc_is_time_reg(idx))
		rtc_write_clock(r, idx, v);
	else if (idx == REG_A)
		r->cmos[REG_A] = v & ~A_UIP;
	else if (idx == REG_B)
		rtc_write_b(r, v);
	else if (idx != REG_C && idx != REG_D)
		r->cmos[idx] = v;
}

static uint8_t rtc_read_a(struct rtc *r)
{
	long nsec;

	rtc_guest_sec(r, &nsec);
	if (!(r->cmos[REG_B] & B_SET) && nsec >= 1000000000L - UIP_WINDOW_NS)
		return r->cmos[REG_A] | A_UIP;
	return r->cmos[REG_A] & ~A_UIP;
}

/* Flags are computed when read, then cleared: only UF is reported (a
 * second has passed since the last read). */
static uint8_t rtc_read_c(struct rtc *r)
{
	int64_t t = rtc_guest_sec(r, NULL);
	uint8_t c = 0;

	if (t != r->last_uf_sec && !(r->cmos[REG_B] & B_SET))
		c |= C_UF;
	r->last_uf_sec = t;
	if (c & r->cmos[REG_B] & 0x70)
		c |= C_IRQF;
	return c;
}

static uint8_t rtc_read_data(struct rtc *r)
{
	unsigned idx = r->index;

	if (rtc_is_time_reg(idx) && !(r->cmos[REG_B] & B_SET))
		return rtc_clock_value(r, idx, rtc_guest_sec(r, NULL));
	switch (idx) {
	case REG_A: return rtc_read_a(r);
	case REG_C: return rtc_read_c(r);
	case REG_D: return D_VRT;
	default: return r->cmos[idx];
	}
}

static void rtc_bus_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	struct rtc *r = opaque;
	uint8_t *d = data;

	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < len; i++)
		d[i] = (offset + i) % 2 ? rtc_read_data(r) : 0xff; /* index is write-only */
	pthread_mutex_unlock(&r->lock);
}

static void rtc_bus_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct rtc *r = opaque;
	const uint8_t *d = data;

	pthread_mutex_lock(&r->lock);
	for (unsigned i = 0; i < len; i++) {
		if ((offset + i) % 2)
			rtc_write_data(r, d[i]);
		else
			r->index = d[i] & 0x7f;
	}
	pthread_mutex_unlock(&r->lock);
}

const struct bus_dev_ops rtc_ops = {
	.read = rtc_bus_read,
	.write = rtc_bus_write,
};

int rtc_init(struct rtc *r, const struct irq_line *irq, rtc_clock_fn clock,
	     void *clock_ctx, struct verr *err)
{
	int rc;

	memset(r, 0, sizeof(*r));
	if (irq)
		r->irq = *irq;
	r->clock = clock;
	r->clock_ctx = clock_ctx;
	r->cmos[REG_A] = 0x26;          /* 32.768 kHz time base, 1024 Hz rate */
	r->cmos[REG_B] = B_24H;         /* BCD, 24-hour, as PC firmware leaves it */
	r->cmos[REG_D] = D_VRT;
	rc = pthread_mutex_init(&r->lock, NULL);
	if (rc)
		return verr_set(err, rc, "rtc: cannot create lock");
	return 0;
}

void rtc_destroy(struct rtc *r)
{
	if (r)
		pthread_mutex_destroy(&r->lock);
}

int rtc_attach(struct rtc *r, struct bus *pio, struct verr *err)
{
	return bus_register(pio, RTC_BASE, 2, "rtc", &rtc_ops, r, err);
}

void rtc_cmos_set(struct rtc *r, uint8_t index, uint8_t value)
{
	pthread_mutex_lock(&r->lock);
	r->cmos[index & 0x7f] = value;
	pthread_mutex_unlock(&r->lock);
}

uint8_t rtc_cmos_get(struct rtc *r, uint8_t index)
{
	uint8_t v;

	pthread_mutex_lock(&r->lock);
	v = r->cmos[index & 0x7f];
	pthread_mutex_unlock(&r->lock);
	return v;
}

void rtc_save(struct rtc *r, struct rtc_state *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&r->lock);
	memcpy(st->cmos, r->cmos, sizeof(st->cmos));
	st->index = r->index;
	st->offset = r->offset;
	pthread_mutex_unlock(&r->lock);
}

int rtc_restore(struct rtc *r, const struct rtc_state *st, struct verr *err)
{
	/* Beyond +-10000 years gmtime cannot represent the result. */
	if (st->offset > 315569520000LL || st->offset < -315569520000LL)
		return verr_set(err, EINVAL, "rtc: bad saved clock offset %lld",
				(long long)st->offset);
	pthread_mutex_lock(&r->lock);
	memcpy(r->cmos, st->cmos, sizeof(r->cmos));
	r->cmos[REG_D] = D_VRT;
	r->index = st->index & 0x7f;
	r->offset = st->offset;
	pthread_mutex_unlock(&r->lock);
	return 0;
}
