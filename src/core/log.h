/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Levelled logging to stderr, quiet by default. The threshold is the one
 * piece of process-wide mutable state in vireo: it is set once by the CLI
 * (from -v/--log-level or VIREO_LOG) before any thread starts.
 */
#ifndef VIREO_CORE_LOG_H
#define VIREO_CORE_LOG_H

enum vlog_level { VLOG_ERROR = 0, VLOG_WARN, VLOG_INFO, VLOG_DEBUG };

void vlog_set_level(enum vlog_level level);
enum vlog_level vlog_get_level(void);
/* Parse "error|warn|info|debug"; returns -1 when unknown. */
int vlog_parse_level(const char *s);

/* ctx names the subsystem and instance, e.g. "uart0", "qcow2:disk.img". */
void vlog(enum vlog_level level, const char *ctx, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define log_error(ctx, ...) vlog(VLOG_ERROR, ctx, __VA_ARGS__)
#define log_warn(ctx, ...) vlog(VLOG_WARN, ctx, __VA_ARGS__)
#define log_info(ctx, ...) vlog(VLOG_INFO, ctx, __VA_ARGS__)
#define log_debug(ctx, ...) \
	do { if (vlog_get_level() >= VLOG_DEBUG) vlog(VLOG_DEBUG, ctx, __VA_ARGS__); } while (0)

#endif
