/* SPDX-License-Identifier: Apache-2.0 */
/* Loads an empty IDT and faults: the VMM must report a triple fault. */
#include "rt.h"

const char guest_name[] = "triplefault";

void guest_main(void)
{
	printf("TRIPLEFAULT\n");
	triple_fault();
}
