/* SPDX-License-Identifier: Apache-2.0 */
/* Benchmark guest: boot, then ask to stop at once.  Silent on purpose:
 * every byte of console output is a VM exit.  Ring 0 runs only the
 * minimal entry (see rt/entry.S); the ACPI lookup happens in ring 3. */
#include "rt.h"

const char guest_name[] = "stop";

void guest_main(void)
{
	acpi_poweroff();
	outb(0x501, 0);		/* no ACPI (or it failed): QEMU/vireo debug exit */
	halt_forever();
}
