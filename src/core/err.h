/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one error convention of vireo: a function that can fail returns 0 (or
 * a non-negative result) on success and a negative errno on failure, and fills
 * the caller's struct verr with a human message naming the file, offset or
 * field at fault. Only the CLI layer prints errors and chooses exit codes.
 */
#ifndef VIREO_CORE_ERR_H
#define VIREO_CORE_ERR_H

#include <stddef.h>

#define VERR_MSG_MAX 512

struct verr {
	int code;                 /* positive errno of the first failure, 0 if none */
	char msg[VERR_MSG_MAX];   /* human-readable, no trailing newline */
};

/* Record an error (the first one wins) and return -code, so callers can write
 * `return verr_set(err, EINVAL, "...")`. err may be NULL. */
int verr_set(struct verr *err, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Prefix the existing message with more context ("disk.qcow2: " + msg). */
int verr_prefix(struct verr *err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

void verr_clear(struct verr *err);

#endif
