/* SPDX-License-Identifier: Apache-2.0 */
/*
 * isa-debug-exit compatible port (0x501, one byte, present only with
 * --debug-exit): the guest writes V and the VM should end with exit code
 * (V << 1) | 1, so guest-chosen codes are always odd and never collide with
 * vireo's own even ones.
 *
 * Device pattern (shared by src/devices): debug_exit_init() fills a struct
 * the VM owns, debug_exit_attach() registers it on the port bus,
 * debug_exit_destroy() frees.
 */
#ifndef VIREO_DEVICES_DEBUG_EXIT_H
#define VIREO_DEVICES_DEBUG_EXIT_H

#include "core/err.h"
#include "devices/bus.h"

#define DEBUG_EXIT_PORT 0x501

/* Records the exit request; like platform_ops it must not block. */
typedef void (*debug_exit_fn)(void *ctx, int code);

struct debug_exit {
	debug_exit_fn fn;
	void *ctx;
};

int debug_exit_init(struct debug_exit *d, debug_exit_fn fn, void *ctx, struct verr *err);
void debug_exit_destroy(struct debug_exit *d);
int debug_exit_attach(struct debug_exit *d, struct bus *pio, struct verr *err);

extern const struct bus_dev_ops debug_exit_ops;

#endif
