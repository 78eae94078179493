/* SPDX-License-Identifier: Apache-2.0 */
/* Fails on purpose: proves failures reach the VMM's exit code (3 with
 * --debug-exit, 4 by triple fault without). */
#include "rt.h"

const char guest_name[] = "fail";

void guest_main(void)
{
	guest_fail("deliberate failure");
}
