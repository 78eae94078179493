/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "devices/acpi_pm.h"
#include "helpers.h"

#define STS 0x600
#define EN 0x602
#define CNT 0x604
#define TMR 0x608

struct fixture {
	struct bus bus;
	struct acpi_pm pm;
	struct irq_rec irq;
	struct plat_rec plat;
};

static int setup(void **state)
{
	static struct fixture fx;
	struct fixture *f = &fx;
	struct verr err = {0};
	struct irq_line sci;
	struct platform_ops plat;

	memset(f, 0, sizeof(*f));
	sci = irq_rec_line(&f->irq, ACPI_SCI_GSI);
	plat = plat_rec_ops(&f->plat);
	if (bus_init(&f->bus, "pio", &err) || acpi_pm_init(&f->pm, &sci, &plat, &err) ||
	    acpi_pm_attach(&f->pm, &f->bus, &err))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	acpi_pm_destroy(&f->pm);
	bus_destroy(&f->bus);
	return 0;
}

static void poweroff_s5_only(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(inw(&f->bus, CNT), 0x0001);  /* always in ACPI mode */
	for (unsigned typ = 0; typ < 8; typ++) {
		if (typ == ACPI_SLP_TYP_S5)
			continue;
		outw(&f->bus, CNT, (uint16_t)(0x2000 | typ << 10 | 1));
	}
	assert_int_equal(f->plat.poweroffs, 0);
	/* SLP_TYP 5 without SLP_EN only arms it. */
	outw(&f->bus, CNT, 5 << 10);
	assert_int_equal(f->plat.poweroffs, 0);
	assert_int_equal(inw(&f->bus, CNT), 0x1401);  /* SLP_EN reads 0 */
	/* Then SLP_EN through a byte write of the high half, as some do. */
	outb(&f->bus, CNT + 1, 0x20 | (5 << 2));
	assert_int_equal(f->plat.poweroffs, 1);
	outw(&f->bus, CNT, 0x2000 | 5 << 10);
	assert_int_equal(f->plat.poweroffs, 2);
	assert_int_equal(f->plat.resets, 0);
}

static void status_write_one_to_clear(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(inw(&f->bus, STS), 0);
	acpi_pm_press_power_button(&f->pm);
	assert_int_equal(inw(&f->bus, STS), ACPI_PM1_STS_PWRBTN);
	/* Writing zeros (or other bits) leaves it. */
	outw(&f->bus, STS, 0x0000);
	outw(&f->bus, STS, 0x0001);
	assert_int_equal(inw(&f->bus, STS), ACPI_PM1_STS_PWRBTN);
	outw(&f->bus, STS, ACPI_PM1_STS_PWRBTN);
	assert_int_equal(inw(&f->bus, STS), 0);
	/* The enable register is a plain register of the defined bits. */
	outw(&f->bus, EN, 0xffff);
	assert_int_equal(inw(&f->bus, EN), 0x0721);
	/* A dword read covers both. */
	acpi_pm_press_power_button(&f->pm);
	assert_int_equal(inl(&f->bus, STS), 0x07210100);
}

static void power_button_sci(void **state)
{
	struct fixture *f = *state;
	unsigned gsi = ACPI_SCI_GSI;

	/* Not enabled: status set, no SCI. */
	acpi_pm_press_power_button(&f->pm);
	assert_int_equal(f->irq.level[gsi], 0);
	outw(&f->bus, EN, ACPI_PM1_EN_PWRBTN);
	assert_int_equal(f->irq.level[gsi], 1);      /* level while STS & EN */
	outw(&f->bus, STS, ACPI_PM1_STS_PWRBTN);
	assert_int_equal(f->irq.level[gsi], 0);
	acpi_pm_press_power_button(&f->pm);
	assert_int_equal(f->irq.level[gsi], 1);
	assert_int_equal(f->irq.raises[gsi], 2);
	outb(&f->bus, EN + 1, 0);                    /* disabling drops it too */
	assert_int_equal(f->irq.level[gsi], 0);
}

static void pm_timer(void **state)
{
	struct fixture *f = *state;
	struct timespec ms = { 0, 2000000 };
	uint32_t a, b;

	a = inl(&f->bus, TMR);
	nanosleep(&ms, NULL);
	b = inl(&f->bus, TMR);
	assert_true(a <= 0xffffff && b <= 0xffffff);
	/* 2 ms is at least 7159 ticks; the 24-bit counter wraps after 4.7 s. */
	assert_true(((b - a) & 0xffffff) >= 7159);
	assert_true(((b - a) & 0xffffff) < 0x800000);
	for (unsigned i = 0; i < 1000; i++) {
		uint32_t c = inl(&f->bus, TMR);
		assert_true(((c - b) & 0xffffff) < 0x800000);
		b = c;
	}
	/* Writes are ignored; narrow reads see the low bytes. */
	outl(&f->bus, TMR, 0);
	assert_true(inw(&f->bus, TMR) <= 0xffff);
	assert_int_equal(inb(&f->bus, TMR + 3), 0);
}

static void gaps_unclaimed(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(inw(&f->bus, 0x606), 0xffff);
	assert_int_equal(inl(&f->bus, 0x604), 0xffffffff);  /* straddles */
}

static void save_restore(void **state)
{
	struct fixture *f = *state;
	struct acpi_pm_state st;
	uint32_t t;

	outw(&f->bus, EN, ACPI_PM1_EN_PWRBTN);
	outw(&f->bus, CNT, 5 << 10);
	acpi_pm_press_power_button(&f->pm);
	acpi_pm_save(&f->pm, &st);
	outw(&f->bus, STS, 0xffff);
	outw(&f->bus, EN, 0);
	outw(&f->bus, CNT, 0);
	assert_int_equal(f->irq.level[ACPI_SCI_GSI], 0);
	st.tmr = 0x123456;
	acpi_pm_restore(&f->pm, &st);
	assert_int_equal(f->irq.level[ACPI_SCI_GSI], 1);
	assert_int_equal(inw(&f->bus, STS), ACPI_PM1_STS_PWRBTN);
	assert_int_equal(inw(&f->bus, CNT), 0x1401);
	t = inl(&f->bus, TMR);
	assert_true(t >= 0x123455 && t < 0x123456 + ACPI_PM_TIMER_HZ);
	/* Junk bits in a snapshot do not land. */
	st.tmr = 0xffffffff;
	st.cnt = 0xffff;
	acpi_pm_restore(&f->pm, &st);
	assert_true(inl(&f->bus, TMR) <= 0xffffff);
	assert_int_equal(inw(&f->bus, CNT), 0x1c03);
	assert_int_equal(f->plat.poweroffs, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(poweroff_s5_only), T(status_write_one_to_clear), T(power_button_sci),
		T(pm_timer), T(gaps_unclaimed), T(save_restore),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
