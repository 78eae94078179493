/* SPDX-License-Identifier: Apache-2.0 */
/* isa-debug-exit compatible port; see debug_exit.h. */
#include "devices/debug_exit.h"

#include <errno.h>
#include <string.h>

#include "core/log.h"

static void debug_exit_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct debug_exit *d = opaque;
	uint8_t v = *(const uint8_t *)data;  /* a one-byte port */

	log_debug("debug-exit", "guest wrote 0x%02x", v);
	if (d->fn)
		d->fn(d->ctx, (v << 1) | 1);
}

/* Reads are write-only-port all-ones; left to the bus (no read hook). */
const struct bus_dev_ops debug_exit_ops = { NULL, debug_exit_write };

int debug_exit_init(struct debug_exit *d, debug_exit_fn fn, void *ctx, struct verr *err)
{
	if (!fn)
		return verr_set(err, EINVAL, "debug-exit: no exit callback");
	memset(d, 0, sizeof(*d));
	d->fn = fn;
	d->ctx = ctx;
	return 0;
}

void debug_exit_destroy(struct debug_exit *d)
{
	(void)d;  /* nothing allocated; kept for the shared device pattern */
}

int debug_exit_attach(struct debug_exit *d, struct bus *pio, struct verr *err)
{
	return bus_register(pio, DEBUG_EXIT_PORT, 1, "debug-exit", &debug_exit_ops, d, err);
}
