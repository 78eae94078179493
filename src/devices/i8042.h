/* SPDX-License-Identifier: Apache-2.0 */
/*
 * i8042 keyboard controller at ports 0x60 (data) and 0x64 (status/command),
 * with a keyboard that answers just enough for Linux's atkbd probe and no
 * mouse. Its real job in a VM is the reset line: command 0xFE (or any
 * 0xF0-0xFF pulse with bit 0 clear, or an output-port write with bit 0
 * clear) calls platform_ops.request_reset.
 *
 * Device pattern (shared by src/devices): i8042_init() fills a struct the
 * VM owns, i8042_attach() registers it on the port bus, i8042_destroy()
 * frees. Bytes for the guest wait in a bounded queue; each one reaching the
 * output buffer pulses GSI 1 (keyboard) or 12 (aux) when the command byte
 * enables that interrupt.
 */
#ifndef VIREO_DEVICES_I8042_H
#define VIREO_DEVICES_I8042_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"
#include "devices/bus.h"
#include "devices/irq.h"

#define I8042_DATA_PORT 0x60
#define I8042_CMD_PORT 0x64
#define I8042_KBD_GSI 1
#define I8042_AUX_GSI 12
#define I8042_QUEUE_CAP 16

struct i8042_byte {
	uint8_t value;
	bool aux;                   /* from the aux port: AUXB, GSI 12 */
};

/* Guest-visible state, for snapshots. */
struct i8042_state {
	uint8_t ram[32];
	uint8_t status, outport, ctrl_pending, kbd_pending, last_out, scanning;
	uint8_t count;              /* bytes in queue[], oldest first */
	struct i8042_byte queue[I8042_QUEUE_CAP];
};

struct i8042 {
	pthread_mutex_t lock;
	struct irq_line kbd_irq, aux_irq;
	struct platform_ops plat;
	uint8_t ram[32];            /* ram[0] is the command byte */
	uint8_t status;             /* SYS and A2; OBF/AUXB are derived */
	uint8_t outport;
	uint8_t ctrl_pending;       /* controller command awaiting its data byte */
	uint8_t kbd_pending;        /* keyboard command awaiting its parameter */
	uint8_t last_out;           /* what 0x60 reads when nothing is queued */
	bool scanning;
	struct i8042_byte queue[I8042_QUEUE_CAP];
	unsigned head, count;
};

/* Any pointer argument may be NULL (nothing wired). */
int i8042_init(struct i8042 *k, const struct irq_line *kbd_irq,
	       const struct irq_line *aux_irq, const struct platform_ops *plat,
	       struct verr *err);
void i8042_destroy(struct i8042 *k);
/* Registers ports 0x60 and 0x64. */
int i8042_attach(struct i8042 *k, struct bus *pio, struct verr *err);

/* Types Ctrl-Alt-Del on the keyboard (press all three, then release), in
 * the scan code set the guest reads: set 1 while the controller translates,
 * set 2 otherwise. Fails with EAGAIN when the guest has not enabled the
 * keyboard or the output queue lacks room for the eight bytes. */
int i8042_send_ctrl_alt_del(struct i8042 *k, struct verr *err);

void i8042_save(struct i8042 *k, struct i8042_state *st);
/* Fails with EINVAL (state left untouched) if st is inconsistent. */
int i8042_restore(struct i8042 *k, const struct i8042_state *st, struct verr *err);

extern const struct bus_dev_ops i8042_data_ops, i8042_cmd_ops;

#endif
