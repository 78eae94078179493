/* SPDX-License-Identifier: Apache-2.0 */
/* Plain ACPI power-off (PM1a_CNT with \_S5's SLP_TYP, SLP_EN).
 *   debug_exit_ok   if ACPI power-off does not work (QEMU firmware that
 *                   leaves the PM block off), fall back to the debug exit */
#include "rt.h"

const char guest_name[] = "poweroff";

void guest_main(void)
{
	printf("POWEROFF\n");
	acpi_poweroff();
	udelay(1000000);
	if (cmdline_has("debug_exit_ok")) {
		outb(0x501, 0);
		halt_forever();
	}
	CHECK(acpi.ok, "no ACPI tables");
	CHECK(acpi.s5_typ >= 0, "no \\_S5 in the DSDT");
	guest_fail("still running 1 s after ACPI power-off (PM1a_CNT %x, SLP_TYP %d)", acpi.pm1a_cnt,
		   acpi.s5_typ);
}
