/* SPDX-License-Identifier: Apache-2.0 */
/* ACPI PM1a event/control blocks and PM timer; see acpi_pm.h. */
#include "devices/acpi_pm.h"

#include <string.h>
#include <time.h>

#include "core/log.h"

#define EVT_LEN 4
#define CNT_LEN 2
#define TMR_LEN 4

/* Status/enable bits that exist here: TMR, GBL, PWRBTN, SLPBTN, RTC. */
#define PM1_EN_MASK 0x0721
/* PM1_CNT bits kept: BM_RLD and SLP_TYP; SLP_EN and GBL_RLS are
 * write-only, SCI_EN is hardwired to 1. */
#define PM1_CNT_KEPT 0x1c02
#define SLP_TYP_SHIFT 10
#define TMR_MASK 0xffffffu

static const char *const PM_CTX = "acpi-pm";

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Split so that the product does not overflow 64 bits in long uptimes. */
static uint32_t pm_timer_ticks(const struct acpi_pm *pm)
{
	uint64_t ns = mono_ns() - pm->t0_ns;
	uint64_t ticks = ns / 1000000000u * ACPI_PM_TIMER_HZ +
			 ns % 1000000000u * ACPI_PM_TIMER_HZ / 1000000000u;

	return (uint32_t)ticks & TMR_MASK;
}

static void pm_update_sci(struct acpi_pm *pm)
{
	int level = (pm->sts & pm->en & PM1_EN_MASK) != 0;

	if (level != pm->sci_level) {
		pm->sci_level = level;
		irq_line_set(&pm->sci, level);
	}
}

static void put_le(void *data, uint32_t v, unsigned len)
{
	uint8_t *d = data;

	for (unsigned i = 0; i < len; i++)
		d[i] = i < 4 ? (uint8_t)(v >> (8 * i)) : 0xff;
}

static void evt_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	struct acpi_pm *pm = opaque;
	uint32_t both;

	pthread_mutex_lock(&pm->lock);
	both = pm->sts | (uint32_t)pm->en << 16;
	pthread_mutex_unlock(&pm->lock);
	put_le(data, both >> (8 * offset), len);
}

static void evt_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct acpi_pm *pm = opaque;
	const uint8_t *d = data;

	pthread_mutex_lock(&pm->lock);
	for (unsigned i = 0; i < len; i++) {
		unsigned off = (unsigned)offset + i, shift = 8 * (off & 1);

		if (off < 2)       /* PM1_STS: write one to clear */
			pm->sts &= ~(uint16_t)(d[i] << shift);
		else
			pm->en = ((pm->en & ~(0xff << shift)) | d[i] << shift) & PM1_EN_MASK;
	}
	pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

static void cnt_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	struct acpi_pm *pm = opaque;
	uint16_t v;

	pthread_mutex_lock(&pm->lock);
	v = pm->cnt | ACPI_PM1_CNT_SCI_EN;
	pthread_mutex_unlock(&pm->lock);
	put_le(data, v >> (8 * offset), len);
}

/* Returns true when the guest entered S5. */
static bool cnt_apply(struct acpi_pm *pm, uint16_t v)
{
	unsigned typ = (v >> SLP_TYP_SHIFT) & 7;

	pm->cnt = v & PM1_CNT_KEPT;
	if (!(v & ACPI_PM1_CNT_SLP_EN))
		return false;
	if (typ == ACPI_SLP_TYP_S5)
		return true;
	log_debug(PM_CTX, "sleep type %u not supported, ignored", typ);
	return false;
}

static void cnt_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct acpi_pm *pm = opaque;
	const uint8_t *d = data;
	bool off;
	uint16_t v;

	pthread_mutex_lock(&pm->lock);
	v = pm->cnt;
	for (unsigned i = 0; i < len && offset + i < CNT_LEN; i++) {
		unsigned shift = 8 * (unsigned)(offset + i);
		v = (uint16_t)((v & ~(0xff << shift)) | d[i] << shift);
	}
	off = cnt_apply(pm, v);
	pthread_mutex_unlock(&pm->lock);
	/* Outside the lock: the VM may stop vCPUs that are waiting on it. */
	if (off) {
		log_debug(PM_CTX, "guest entered S5");
		if (pm->plat.request_poweroff)
			pm->plat.request_poweroff(pm->plat.ctx);
	}
}

static void tmr_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	/* No lock: the timer is a pure function of the clock. */
	put_le(data, pm_timer_ticks(opaque) >> (8 * offset), len);
}

const struct bus_dev_ops acpi_pm_evt_ops = { evt_read, evt_write };
const struct bus_dev_ops acpi_pm_cnt_ops = { cnt_read, cnt_write };
const struct bus_dev_ops acpi_pm_tmr_ops = { tmr_read, NULL };

int acpi_pm_init(struct acpi_pm *pm, const struct irq_line *sci,
		 const struct platform_ops *plat, struct verr *err)
{
	int rc;

	memset(pm, 0, sizeof(*pm));
	if (sci)
		pm->sci = *sci;
	if (plat)
		pm->plat = *plat;
	pm->t0_ns = mono_ns();
	rc = pthread_mutex_init(&pm->lock, NULL);
	if (rc)
		return verr_set(err, rc, "acpi-pm: cannot create lock");
	return 0;
}

void acpi_pm_destroy(struct acpi_pm *pm)
{
	if (pm)
		pthread_mutex_destroy(&pm->lock);
}

int acpi_pm_attach(struct acpi_pm *pm, struct bus *pio, struct verr *err)
{
	int rc;

	rc = bus_register(pio, ACPI_PM1A_EVT_BASE, EVT_LEN, "acpi-pm1a-evt", &acpi_pm_evt_ops, pm, err);
	if (rc)
		return rc;
	rc = bus_register(pio, ACPI_PM1A_CNT_BASE, CNT_LEN, "acpi-pm1a-cnt", &acpi_pm_cnt_ops, pm, err);
	if (rc)
		goto undo_evt;
	rc = bus_register(pio, ACPI_PM_TMR_BASE, TMR_LEN, "acpi-pm-tmr", &acpi_pm_tmr_ops, pm, err);
	if (rc == 0)
		return 0;
	bus_unregister(pio, ACPI_PM1A_CNT_BASE, pm);
undo_evt:
	bus_unregister(pio, ACPI_PM1A_EVT_BASE, pm);
	return rc;
}

void acpi_pm_press_power_button(struct acpi_pm *pm)
{
	pthread_mutex_lock(&pm->lock);
	pm->sts |= ACPI_PM1_STS_PWRBTN;
	pm_update_sci(pm);
	pthread_mutex_unlock(&pm->lock);
}

void acpi_pm_save(struct acpi_pm *pm, struct acpi_pm_state *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&pm->lock);
	st->sts = pm->sts;
	st->en = pm->en;
	st->cnt = pm->cnt;
	st->tmr = pm_timer_ticks(pm);
	pthread_mutex_unlock(&pm->lock);
}

void acpi_pm_restore(struct acpi_pm *pm, const struct acpi_pm_state *st)
{
	uint64_t tmr = st->tmr & TMR_MASK;

	pthread_mutex_lock(&pm->lock);
	pm->sts = st->sts & PM1_EN_MASK;
	pm->en = st->en & PM1_EN_MASK;
	pm->cnt = st->cnt & PM1_CNT_KEPT;
	/* Rebase the counter so it carries on from the saved value. */
	pm->t0_ns = mono_ns() - tmr * 1000000000u / ACPI_PM_TIMER_HZ;
	pm->sci_level = (pm->sts & pm->en) != 0;
	irq_line_set(&pm->sci, pm->sci_level);
	pthread_mutex_unlock(&pm->lock);
}
