/* SPDX-License-Identifier: Apache-2.0 */
/* 16550A UART register model; see uart.h for what is simplified. */
#include "devices/uart.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"

enum {
	UART_RBR_THR = 0, UART_IER, UART_IIR_FCR, UART_LCR, UART_MCR, UART_LSR,
	UART_MSR, UART_SCR,
};

#define IER_ERBFI 0x01   /* received data available */
#define IER_ETBEI 0x02   /* transmitter holding register empty */
#define IER_ELSI 0x04    /* receiver line status */
#define IER_EDSSI 0x08   /* modem status */
#define IER_MASK 0x0f

#define IIR_NONE 0x01
#define IIR_MSR 0x00
#define IIR_THRE 0x02
#define IIR_RDA 0x04
#define IIR_RLS 0x06
#define IIR_FIFO_ON 0xc0

#define FCR_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define FCR_KEPT 0xc9    /* enable, DMA mode, trigger level */

#define LCR_DLAB 0x80
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f

#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40

#define MSR_DCTS 0x01
#define MSR_DDSR 0x02
#define MSR_TERI 0x04
#define MSR_DDCD 0x08
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80
#define MSR_DELTAS 0x0f

/* Outside loopback a terminal is always connected and ready. */
#define MSR_IDLE_LINES (MSR_DCD | MSR_DSR | MSR_CTS)

static uint8_t uart_lsr(const struct uart *u)
{
	uint8_t lsr = (u->lsr & LSR_OE) | LSR_THRE | LSR_TEMT;

	if (u->rx_count)
		lsr |= LSR_DR;
	return lsr;
}

/* Highest-priority pending interrupt, as IIR bits 0-3. */
static uint8_t uart_pending(const struct uart *u)
{
	if ((u->ier & IER_ELSI) && (u->lsr & LSR_OE))
		return IIR_RLS;
	if ((u->ier & IER_ERBFI) && u->rx_count)
		return IIR_RDA;
	if ((u->ier & IER_ETBEI) && u->thr_pending)
		return IIR_THRE;
	if ((u->ier & IER_EDSSI) && (u->msr & MSR_DELTAS))
		return IIR_MSR;
	return IIR_NONE;
}

static void uart_update_irq(struct uart *u)
{
	int level = uart_pending(u) != IIR_NONE;

	if (level != u->irq_level) {
		u->irq_level = level;
		irq_line_set(&u->irq, level);
	}
}

static bool uart_rx_put(struct uart *u, uint8_t b)
{
	if (u->rx_count >= UART_RX_CAP)
		return false;
	u->rx[(u->rx_head + u->rx_count) % UART_RX_CAP] = b;
	u->rx_count++;
	return true;
}

static uint8_t uart_rx_get(struct uart *u)
{
	uint8_t b;

	if (!u->rx_count)
		return 0;
	b = u->rx[u->rx_head];
	u->rx_head = (u->rx_head + 1) % UART_RX_CAP;
	u->rx_count--;
	return b;
}

static uint8_t uart_modem_lines(const struct uart *u)
{
	uint8_t m = 0;

	if (!(u->mcr & MCR_LOOP))
		return MSR_IDLE_LINES;
	/* Loopback wires the modem control outputs back to the inputs. */
	if (u->mcr & MCR_RTS)
		m |= MSR_CTS;
	if (u->mcr & MCR_DTR)
		m |= MSR_DSR;
	if (u->mcr & MCR_OUT1)
		m |= MSR_RI;
	if (u->mcr & MCR_OUT2)
		m |= MSR_DCD;
	return m;
}

static void uart_update_msr(struct uart *u)
{
	uint8_t old = u->msr, now = uart_modem_lines(u), delta = 0;

	if ((old ^ now) & MSR_CTS)
		delta |= MSR_DCTS;
	if ((old ^ now) & MSR_DSR)
		delta |= MSR_DDSR;
	if ((old & MSR_RI) && !(now & MSR_RI))
		delta |= MSR_TERI;
	if ((old ^ now) & MSR_DCD)
		delta |= MSR_DDCD;
	u->msr = now | (old & MSR_DELTAS) | delta;
}

static void uart_write_thr(struct uart *u, uint8_t b)
{
	/* Drop THRE first so that an edge-triggered guest sees a fresh edge
	 * when the (instant) transmission empties the register again. */
	u->thr_pending = false;
	uart_update_irq(u);
	if (u->mcr & MCR_LOOP) {
		if (!uart_rx_put(u, b))
			u->lsr |= LSR_OE;
	} else if (u->out) {
		u->out(u->out_ctx, &b, 1);
	}
	u->thr_pending = true;
}

static void uart_write_ier(struct uart *u, uint8_t v)
{
	uint8_t old = u->ier;

	u->ier = v & IER_MASK;
	/* Enabling ETBEI with THR empty (always, here) raises THRE at once. */
	if (!(old & IER_ETBEI) && (u->ier & IER_ETBEI))
		u->thr_pending = true;
}

static void uart_write_fcr(struct uart *u, uint8_t v)
{
	/* Toggling the FIFO enable also clears the FIFOs on a 16550A. */
	if ((v & FCR_CLEAR_RX) || ((v ^ u->fcr) & FCR_ENABLE)) {
		u->rx_head = 0;
		u->rx_count = 0;
	}
	u->fcr = v & FCR_KEPT;
	if (!(u->fcr & FCR_ENABLE))
		u->fcr = 0;
}

static void uart_write_reg(struct uart *u, unsigned reg, uint8_t v)
{
	bool dlab = u->lcr & LCR_DLAB;

	switch (reg) {
	case UART_RBR_THR:
		if (dlab)
			u->dll = v;
		else
			uart_write_thr(u, v);
		break;
	case UART_IER:
		if (dlab)
			u->dlm = v;
		else
			uart_write_ier(u, v);
		break;
	case UART_IIR_FCR: uart_write_fcr(u, v); break;
	case UART_LCR: u->lcr = v; break;
	case UART_MCR:
		u->mcr = v & MCR_MASK;
		uart_update_msr(u);
		break;
	case UART_SCR: u->scr = v; break;
	default: break; /* LSR and MSR writes are factory-test only */
	}
	uart_update_irq(u);
}

static uint8_t uart_read_iir(struct uart *u)
{
	uint8_t id = uart_pending(u);

	/* Reading IIR acknowledges a THRE interrupt (and only that one). */
	if (id == IIR_THRE)
		u->thr_pending = false;
	return id | ((u->fcr & FCR_ENABLE) ? IIR_FIFO_ON : 0);
}

static uint8_t uart_read_reg(struct uart *u, unsigned reg)
{
	bool dlab = u->lcr & LCR_DLAB;
	uint8_t v;

	switch (reg) {
	case UART_RBR_THR: v = dlab ? u->dll : uart_rx_get(u); break;
	case UART_IER: v = dlab ? u->dlm : u->ier; break;
	case UART_IIR_FCR: v = uart_read_iir(u); break;
	case UART_LCR: v = u->lcr; break;
	case UART_MCR: v = u->mcr; break;
	case UART_LSR:
		v = uart_lsr(u);
		u->lsr &= ~LSR_OE;
		break;
	case UART_MSR:
		v = u->msr;
		u->msr &= ~MSR_DELTAS;
		break;
	default: v = u->scr; break;
	}
	uart_update_irq(u);
	return v;
}

static void uart_bus_read(void *opaque, uint64_t offset, void *data, unsigned len)
{
	struct uart *u = opaque;
	uint8_t *d = data;

	pthread_mutex_lock(&u->lock);
	for (unsigned i = 0; i < len; i++)
		d[i] = uart_read_reg(u, (offset + i) % UART_NR_PORTS);
	pthread_mutex_unlock(&u->lock);
}

static void uart_bus_write(void *opaque, uint64_t offset, const void *data, unsigned len)
{
	struct uart *u = opaque;
	const uint8_t *d = data;

	pthread_mutex_lock(&u->lock);
	for (unsigned i = 0; i < len; i++)
		uart_write_reg(u, (offset + i) % UART_NR_PORTS, d[i]);
	pthread_mutex_unlock(&u->lock);
}

const struct bus_dev_ops uart_ops = {
	.read = uart_bus_read,
	.write = uart_bus_write,
};

static void uart_reset_regs(struct uart *u)
{
	u->ier = u->lcr = u->mcr = u->scr = u->fcr = 0;
	u->lsr = 0;
	u->msr = MSR_IDLE_LINES;
	u->dll = 0x0c;  /* 9600 baud with the usual 1.8432 MHz clock */
	u->dlm = 0;
	u->thr_pending = false;
	u->rx_head = u->rx_count = 0;
}

int uart_init(struct uart *u, const char *name, const struct irq_line *irq,
	      uart_out_fn out, void *out_ctx, struct verr *err)
{
	int rc;

	memset(u, 0, sizeof(*u));
	snprintf(u->name, sizeof(u->name), "%s", name ? name : "uart");
	if (irq)
		u->irq = *irq;
	u->out = out;
	u->out_ctx = out_ctx;
	uart_reset_regs(u);
	rc = pthread_mutex_init(&u->lock, NULL);
	if (rc)
		return verr_set(err, rc, "%s: cannot create lock", u->name);
	return 0;
}

void uart_destroy(struct uart *u)
{
	if (u)
		pthread_mutex_destroy(&u->lock);
}

int uart_attach(struct uart *u, struct bus *pio, uint16_t base, struct verr *err)
{
	return bus_register(pio, base, UART_NR_PORTS, u->name, &uart_ops, u, err);
}

int uart_push_input(struct uart *u, const uint8_t *buf, size_t len)
{
	int n = 0;

	pthread_mutex_lock(&u->lock);
	while ((size_t)n < len && uart_rx_put(u, buf[n]))
		n++;
	uart_update_irq(u);
	pthread_mutex_unlock(&u->lock);
	return n;
}

bool uart_rx_has_room(struct uart *u)
{
	bool room;

	pthread_mutex_lock(&u->lock);
	room = u->rx_count < UART_RX_CAP;
	pthread_mutex_unlock(&u->lock);
	return room;
}

void uart_save(struct uart *u, struct uart_state *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&u->lock);
	st->ier = u->ier;
	st->lcr = u->lcr;
	st->mcr = u->mcr;
	st->lsr = u->lsr;
	st->msr = u->msr;
	st->scr = u->scr;
	st->dll = u->dll;
	st->dlm = u->dlm;
	st->fcr = u->fcr;
	st->thr_pending = u->thr_pending;
	st->rx_count = u->rx_count;
	for (unsigned i = 0; i < u->rx_count; i++)
		st->rx[i] = u->rx[(u->rx_head + i) % UART_RX_CAP];
	pthread_mutex_unlock(&u->lock);
}

int uart_restore(struct uart *u, const struct uart_state *st, struct verr *err)
{
	if (st->rx_count > UART_RX_CAP || st->thr_pending > 1)
		return verr_set(err, EINVAL, "%s: bad saved state (rx_count %u)",
				u->name, st->rx_count);
	pthread_mutex_lock(&u->lock);
	u->ier = st->ier & IER_MASK;
	u->lcr = st->lcr;
	u->mcr = st->mcr & MCR_MASK;
	u->lsr = st->lsr & LSR_OE;
	u->msr = st->msr;
	u->scr = st->scr;
	u->dll = st->dll;
	u->dlm = st->dlm;
	u->fcr = st->fcr & FCR_KEPT;
	u->thr_pending = st->thr_pending;
	u->rx_head = 0;
	u->rx_count = st->rx_count;
	memcpy(u->rx, st->rx, st->rx_count);
	/* Drive the line even if our idea of it already matches. */
	u->irq_level = uart_pending(u) != IIR_NONE;
	irq_line_set(&u->irq, u->irq_level);
	pthread_mutex_unlock(&u->lock);
	return 0;
}
