/* SPDX-License-Identifier: Apache-2.0 */
#ifndef VIREO_CORE_SIZE_H
#define VIREO_CORE_SIZE_H

#include <stdint.h>
#include "core/err.h"

/* Parse "4096", "128K", "128M", "4G", "1T" (binary units, optional "iB"/"B").
 * A bare number means bytes unless default_unit is given (e.g. 'M' for
 * --memory as in QEMU). Rejects empty, negative, overflowing or junk input. */
int size_parse(const char *s, char default_unit, uint64_t *out, struct verr *err);

/* Format bytes as "128 MiB" style into buf. */
void size_format(uint64_t bytes, char *buf, int len);

#endif
