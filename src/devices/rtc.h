/* SPDX-License-Identifier: Apache-2.0 */
/*
 * MC146818 CMOS RTC + 128 bytes of NVRAM at ports 0x70 (index; bit 7, the
 * NMI mask, is ignored) and 0x71 (data).
 *
 * Device pattern (shared by src/devices): rtc_init() fills a struct the VM
 * owns, rtc_attach() registers it on the port bus, rtc_destroy() frees.
 * The VM keeps the struct across a guest reset, so NVRAM survives it.
 *
 * The time registers are computed from the injected clock (host UTC by
 * default) plus an offset that changes when the guest sets the clock. UIP
 * reads as 1 only in the last 244 us of each second, so "wait for UIP to
 * clear" loops always end. No interrupt is raised on GSI 8 (there is no
 * timer behind this model yet); register C reports UF to polling guests.
 */
#ifndef VIREO_DEVICES_RTC_H
#define VIREO_DEVICES_RTC_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "core/err.h"
#include "devices/bus.h"
#include "devices/irq.h"

#define RTC_BASE 0x70
#define RTC_GSI 8
#define RTC_CMOS_SIZE 128
#define RTC_REG_CENTURY 0x32

/* Fills ts with the current wall-clock (UTC) time. */
typedef void (*rtc_clock_fn)(void *ctx, struct timespec *ts);

struct rtc_state {
	uint8_t cmos[RTC_CMOS_SIZE];
	uint8_t index;
	int64_t offset;             /* guest time minus host time, seconds */
};

struct rtc {
	pthread_mutex_t lock;
	struct irq_line irq;        /* kept for a future timer-driven model */
	rtc_clock_fn clock;
	void *clock_ctx;
	uint8_t index;
	uint8_t cmos[RTC_CMOS_SIZE];
	int64_t offset;
	int64_t last_uf_sec;        /* guest second when C last reported UF */
};

/* clock may be NULL for CLOCK_REALTIME; irq may be NULL. */
int rtc_init(struct rtc *r, const struct irq_line *irq, rtc_clock_fn clock,
	     void *clock_ctx, struct verr *err);
void rtc_destroy(struct rtc *r);
int rtc_attach(struct rtc *r, struct bus *pio, struct verr *err);

/* Seed or inspect NVRAM from the VMM (index masked to 0..127). The clock
 * registers 0x00-0x0d are not plain bytes: use these for the others. */
void rtc_cmos_set(struct rtc *r, uint8_t index, uint8_t value);
uint8_t rtc_cmos_get(struct rtc *r, uint8_t index);

void rtc_save(struct rtc *r, struct rtc_state *st);
int rtc_restore(struct rtc *r, const struct rtc_state *st, struct verr *err);

extern const struct bus_dev_ops rtc_ops;

#endif
