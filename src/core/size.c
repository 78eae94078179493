/* SPDX-License-Identifier: Apache-2.0 */
#include "core/size.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int unit_shift(char u)
{
	switch (toupper((unsigned char)u)) {
	case 'B': return 0;
	case 'K': return 10;
	case 'M': return 20;
	case 'G': return 30;
	case 'T': return 40;
	case 'P': return 50;
	case 'E': return 60;
	default: return -1;
	}
}

int size_parse(const char *s, char default_unit, uint64_t *out, struct verr *err)
{
	const char *p = s;
	char *end;
	unsigned long long v;
	int shift = default_unit ? unit_shift(default_unit) : 0;

	if (!s || !*s)
		return verr_set(err, EINVAL, "empty size");
	if (!isdigit((unsigned char)*p))
		return verr_set(err, EINVAL, "invalid size '%s': expected a number such as 128M or 4G", s);
	errno = 0;
	v = strtoull(p, &end, 10);
	if (errno == ERANGE)
		return verr_set(err, ERANGE, "size '%s' is too large", s);
	if (*end) {
		shift = unit_shift(*end);
		if (shift < 0)
			return verr_set(err, EINVAL, "invalid size '%s': unknown unit '%c' (use K, M, G or T)", s, *end);
		end++;
		if (shift > 0 && (*end == 'i' || *end == 'I'))
			end++;
		if (shift > 0 && (*end == 'b' || *end == 'B'))
			end++;
		if (*end)
			return verr_set(err, EINVAL, "invalid size '%s': trailing characters '%s'", s, end);
	}
	if (shift > 0 && v > (UINT64_MAX >> shift))
		return verr_set(err, ERANGE, "size '%s' is too large", s);
	*out = (uint64_t)v << shift;
	return 0;
}

void size_format(uint64_t bytes, char *buf, int len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	int i = 0;
	double v = (double)bytes;

	while (v >= 1024 && i < 6 && (bytes % 1024 == 0 || v >= 10240)) {
		v /= 1024;
		bytes /= 1024;
		i++;
	}
	if (v == (double)(uint64_t)v)
		snprintf(buf, len, "%llu %s", (unsigned long long)v, units[i]);
	else
		snprintf(buf, len, "%.1f %s", v, units[i]);
}
