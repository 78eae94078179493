/* SPDX-License-Identifier: Apache-2.0 */
/* Fails on purpose: proves failures reach the VMM's exit code (3 with
 * --debug-exit, 4 by triple fault without).
 *   how=call (default)  guest_fail() directly
 *   how=ud              an invalid opcode in ring 3: exercises the IDT, the
 *                       TSS stack switch and the ring-0 exception report
 *   how=pf              a page fault in ring 3 (address above the 4 GiB map) */
#include "rt.h"

const char guest_name[] = "fail";

void guest_main(void)
{
	char how[8];
	if (!cmdline_get("how", how, sizeof(how)))
		memcpy(how, "call", 5);
	if (!strcmp(how, "ud"))
		__asm__ volatile("ud2");
	if (!strcmp(how, "pf"))
		(void)*(volatile uint64_t *)0x4000000000ull;
	guest_fail("deliberate failure");
}
