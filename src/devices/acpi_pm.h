/* SPDX-License-Identifier: Apache-2.0 */
/*
 * ACPI fixed hardware: PM1a event block (0x600: PM1_STS, PM1_EN), PM1a
 * control block (0x604: PM1_CNT) and the PM timer (0x608). The machine is
 * always in ACPI mode (SCI_EN reads 1, there is no SMI command port). Sleep
 * type 5 (S5, as the DSDT's \_S5 says) powers off; other sleep states are
 * ignored. The SCI (GSI 9, level) is asserted while PM1_STS & PM1_EN != 0;
 * only the power button sets a status bit (TMR_STS is never raised).
 *
 * Device pattern (shared by src/devices): acpi_pm_init() fills a struct the
 * VM owns, acpi_pm_attach() registers its three blocks on the port bus,
 * acpi_pm_destroy() frees.
 */
#ifndef VIREO_DEVICES_ACPI_PM_H
#define VIREO_DEVICES_ACPI_PM_H

#include <pthread.h>
#include <stdint.h>

#include "core/err.h"
#include "devices/bus.h"
#include "devices/irq.h"

#define ACPI_PM1A_EVT_BASE 0x600
#define ACPI_PM1A_CNT_BASE 0x604
#define ACPI_PM_TMR_BASE 0x608
#define ACPI_SCI_GSI 9
#define ACPI_PM_TIMER_HZ 3579545u

#define ACPI_PM1_STS_PWRBTN 0x0100
#define ACPI_PM1_EN_PWRBTN 0x0100
#define ACPI_PM1_CNT_SCI_EN 0x0001
#define ACPI_PM1_CNT_SLP_EN 0x2000
#define ACPI_SLP_TYP_S5 5

/* Guest-visible state, for snapshots; the timer continues from tmr. */
struct acpi_pm_state {
	uint16_t sts, en, cnt;
	uint32_t tmr;
};

struct acpi_pm {
	pthread_mutex_t lock;
	struct irq_line sci;
	struct platform_ops plat;
	uint16_t sts, en, cnt;
	int sci_level;            /* last level driven on sci */
	uint64_t t0_ns;           /* CLOCK_MONOTONIC when the timer read 0 */
};

/* sci and plat may be NULL (nothing wired). */
int acpi_pm_init(struct acpi_pm *pm, const struct irq_line *sci,
		 const struct platform_ops *plat, struct verr *err);
void acpi_pm_destroy(struct acpi_pm *pm);
int acpi_pm_attach(struct acpi_pm *pm, struct bus *pio, struct verr *err);

/* Sets PWRBTN_STS; the SCI rises if the guest enabled PWRBTN_EN. */
void acpi_pm_press_power_button(struct acpi_pm *pm);

void acpi_pm_save(struct acpi_pm *pm, struct acpi_pm_state *st);
void acpi_pm_restore(struct acpi_pm *pm, const struct acpi_pm_state *st);

extern const struct bus_dev_ops acpi_pm_evt_ops, acpi_pm_cnt_ops, acpi_pm_tmr_ops;

#endif
