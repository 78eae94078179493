/* SPDX-License-Identifier: Apache-2.0 */
/* COM1 input, polled from ring 3.  Command line:
 *   expect_input=W   the line typed after READY must be W */
#include "rt.h"

const char guest_name[] = "serial";

void guest_main(void)
{
	char line[256], want[256];
	size_t n = 0;
	printf("READY\n");
	for (;;) {
		int c = serial_getc(30000000);
		CHECK(c >= 0, "no input within 30 s (got %lu bytes)", (uint64_t)n);
		if (c == '\n' || c == '\r')
			break;
		if (n + 1 < sizeof(line))
			line[n++] = (char)c;
	}
	line[n] = 0;
	printf("GOT: %s\n", line);
	if (cmdline_get("expect_input", want, sizeof(want)))
		CHECK(!strcmp(line, want), "got \"%s\", expected \"%s\"", line, want);
}
