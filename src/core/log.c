/* SPDX-License-Identifier: Apache-2.0 */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static enum vlog_level threshold = VLOG_WARN;

void vlog_set_level(enum vlog_level level) { threshold = level; }
enum vlog_level vlog_get_level(void) { return threshold; }

int vlog_parse_level(const char *s)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	for (int i = 0; i < 4; i++)
		if (strcmp(s, names[i]) == 0)
			return i;
	return -1;
}

void vlog(enum vlog_level level, const char *ctx, const char *fmt, ...)
{
	static const char *const tags[] = { "error", "warning", "info", "debug" };
	char line[1024];
	va_list ap;
	int n;

	if (level > threshold)
		return;
	n = snprintf(line, sizeof(line), "vireo: %s: %s: ", tags[level], ctx ? ctx : "-");
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	va_start(ap, fmt);
	vsnprintf(line + n, sizeof(line) - n, fmt, ap);
	va_end(ap);
	/* One fputs per line keeps lines from different threads whole. */
	strncat(line, "\n", sizeof(line) - strlen(line) - 1);
	fputs(line, stderr);
}
