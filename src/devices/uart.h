/* SPDX-License-Identifier: Apache-2.0 */
/*
 * 16550A UART (COM1 at 0x3f8, GSI 4).
 *
 * Device pattern shared by every legacy device in src/devices: the VM owns
 * one struct per instance (no globals); X_init() fills it, X_attach()
 * registers it on the VM's port bus, X_destroy() frees what init took. The
 * owner stops the vCPUs before destroying a device.
 *
 * Transmission is instantaneous: a THR write goes straight to the output
 * callback, so THR and the shift register are always empty (LSR.THRE and
 * LSR.TEMT stay set). Received bytes wait in a bounded RX queue that the
 * guest drains through RBR; the RX interrupt fires as soon as one byte is
 * there, whatever the FIFO trigger level says.
 */
#ifndef VIREO_DEVICES_UART_H
#define VIREO_DEVICES_UART_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "devices/bus.h"
#include "devices/irq.h"

#define UART_COM1_BASE 0x3f8
#define UART_COM1_GSI 4
#define UART_NR_PORTS 8
#define UART_RX_CAP 64

typedef void (*uart_out_fn)(void *ctx, const uint8_t *buf, size_t len);

/* Guest-visible register state, for snapshots. */
struct uart_state {
	uint8_t ier, lcr, mcr, lsr, msr, scr, dll, dlm, fcr;
	uint8_t thr_pending;        /* THRE interrupt pending (0 or 1) */
	uint8_t rx_count;           /* bytes in rx[], oldest first */
	uint8_t rx[UART_RX_CAP];
};

struct uart {
	pthread_mutex_t lock;
	char name[16];
	struct irq_line irq;
	uart_out_fn out;
	void *out_ctx;
	uint8_t ier, lcr, mcr, lsr, msr, scr, dll, dlm, fcr;
	bool thr_pending;
	int irq_level;              /* last level driven on irq */
	uint8_t rx[UART_RX_CAP];    /* ring buffer */
	unsigned rx_head, rx_count;
};

/* irq may be NULL (no interrupt wired); out may be NULL (output dropped).
 * out runs with the UART lock held, one byte per call, and must not call
 * back into the UART. */
int uart_init(struct uart *u, const char *name, const struct irq_line *irq,
	      uart_out_fn out, void *out_ctx, struct verr *err);
void uart_destroy(struct uart *u);
/* Registers UART_NR_PORTS ports at base (UART_COM1_BASE for COM1). */
int uart_attach(struct uart *u, struct bus *pio, uint16_t base, struct verr *err);

/* Host input: queues up to len bytes and returns how many fit (0 when full);
 * the caller keeps the rest and retries when uart_rx_has_room() says so. */
int uart_push_input(struct uart *u, const uint8_t *buf, size_t len);
bool uart_rx_has_room(struct uart *u);

void uart_save(struct uart *u, struct uart_state *st);
/* Fails with EINVAL (state left untouched) if st is inconsistent. */
int uart_restore(struct uart *u, const struct uart_state *st, struct verr *err);

extern const struct bus_dev_ops uart_ops;

#endif
