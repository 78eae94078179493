/* SPDX-License-Identifier: Apache-2.0 */
/* Asks for a reset; reaching the end of the wait is the failure.
 *   via=kbd (default)  0xFE to the i8042 command port 0x64
 *   via=cf9            0x06 to port 0xcf9
 *   via=acpi           the FADT reset register */
#include "rt.h"

const char guest_name[] = "reset";

void guest_main(void)
{
	char via[16];
	if (!cmdline_get("via", via, sizeof(via)))
		memcpy(via, "kbd", 4);
	printf("RESETTING via %s\n", via);
	if (!strcmp(via, "kbd")) {
		outb(0x64, 0xfe);
	} else if (!strcmp(via, "cf9")) {
		outb(0xcf9, 0x06);
	} else if (!strcmp(via, "acpi")) {
		CHECK(acpi_init() == 0, "no ACPI tables");
		CHECK(acpi.reset_sup, "FADT does not advertise RESET_REG_SUP");
		printf("FADT reset register: space %u addr %lx value %x\n", acpi.reset_reg.space,
		       acpi.reset_reg.addr, acpi.reset_val);
		gas_write(&acpi.reset_reg, acpi.reset_val);
	} else {
		guest_fail("unknown via=%s", via);
	}
	udelay(2000000);
	guest_fail("still running 2 s after the reset request via %s", via);
}
