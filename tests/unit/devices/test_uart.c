/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "devices/uart.h"
#include "helpers.h"

#define COM1 UART_COM1_BASE
#define RBR (COM1 + 0)
#define IER (COM1 + 1)
#define IIR (COM1 + 2)
#define FCR (COM1 + 2)
#define LCR (COM1 + 3)
#define MCR (COM1 + 4)
#define LSR (COM1 + 5)
#define MSR (COM1 + 6)
#define SCR (COM1 + 7)

struct fixture {
	struct bus bus;
	struct uart uart;
	struct irq_rec irq;
	uint8_t out[256];
	size_t out_len;
};

static void capture(void *ctx, const uint8_t *buf, size_t len)
{
	struct fixture *f = ctx;

	for (size_t i = 0; i < len && f->out_len < sizeof(f->out); i++)
		f->out[f->out_len++] = buf[i];
}

static int setup(void **state)
{
	static struct fixture fx;
	struct fixture *f = &fx;
	struct verr err = {0};
	struct irq_line line;

	memset(f, 0, sizeof(*f));
	line = irq_rec_line(&f->irq, UART_COM1_GSI);
	if (bus_init(&f->bus, "pio", &err) || uart_init(&f->uart, "com1", &line, capture, f, &err) ||
	    uart_attach(&f->uart, &f->bus, COM1, &err))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	uart_destroy(&f->uart);
	bus_destroy(&f->bus);
	return 0;
}

static void transmit_and_lsr(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(inb(&f->bus, LSR), 0x60); /* THRE | TEMT, no data */
	outb(&f->bus, RBR, 'h');
	outb(&f->bus, RBR, 'i');
	assert_int_equal(f->out_len, 2);
	assert_memory_equal(f->out, "hi", 2);
	assert_int_equal(uart_push_input(&f->uart, (const uint8_t *)"x", 1), 1);
	assert_int_equal(inb(&f->bus, LSR), 0x61);
	assert_int_equal(inb(&f->bus, RBR), 'x');
	assert_int_equal(inb(&f->bus, LSR), 0x60);
	outb(&f->bus, SCR, 0xa5);
	assert_int_equal(inb(&f->bus, SCR), 0xa5);
	/* No interrupt enabled, so the line never rose. */
	assert_int_equal(f->irq.raises[UART_COM1_GSI], 0);
}

static void divisor_latch(void **state)
{
	struct fixture *f = *state;

	outb(&f->bus, IER, 0x05);
	outb(&f->bus, LCR, 0x83);  /* DLAB, 8N1 */
	outb(&f->bus, RBR, 0x01);  /* DLL: 115200 baud */
	outb(&f->bus, IER, 0x02);  /* DLM */
	assert_int_equal(inb(&f->bus, RBR), 0x01);
	assert_int_equal(inb(&f->bus, IER), 0x02);
	assert_int_equal(f->out_len, 0); /* DLL write is not a transmission */
	outb(&f->bus, LCR, 0x03);
	assert_int_equal(inb(&f->bus, LCR), 0x03);
	assert_int_equal(inb(&f->bus, IER), 0x05);
	outb(&f->bus, LCR, 0x83);
	assert_int_equal(inb(&f->bus, RBR), 0x01);
	assert_int_equal(inb(&f->bus, IER), 0x02);
}

static void loopback(void **state)
{
	struct fixture *f = *state;

	/* What Linux's 8250 autoconfig does: loop with RTS and OUT2. */
	outb(&f->bus, MCR, 0x1a);
	assert_int_equal(inb(&f->bus, MSR) & 0xf0, 0x90);
	outb(&f->bus, MCR, 0x1f);
	assert_int_equal(inb(&f->bus, MSR) & 0xf0, 0xf0);
	outb(&f->bus, MCR, 0x10);
	assert_int_equal(inb(&f->bus, MSR) & 0xf0, 0x00);
	outb(&f->bus, RBR, 0x55);
	outb(&f->bus, RBR, 0xaa);
	assert_int_equal(f->out_len, 0);
	assert_int_equal(inb(&f->bus, LSR) & 0x01, 0x01);
	assert_int_equal(inb(&f->bus, RBR), 0x55);
	assert_int_equal(inb(&f->bus, RBR), 0xaa);
	assert_int_equal(inb(&f->bus, LSR) & 0x01, 0x00);
	outb(&f->bus, MCR, 0x0b);
	assert_int_equal(inb(&f->bus, MSR) & 0xf0, 0xb0);
	outb(&f->bus, RBR, 'z');
	assert_int_equal(f->out_len, 1);
}

static void modem_status_deltas(void **state)
{
	struct fixture *f = *state;

	inb(&f->bus, MSR);
	outb(&f->bus, IER, 0x08);
	outb(&f->bus, MCR, 0x10 | 0x04);  /* loop, OUT1 -> RI */
	/* DCD, DSR and CTS dropped; RI rose (no TERI on a rising edge). */
	assert_int_equal(f->irq.level[UART_COM1_GSI], 1);
	assert_int_equal(inb(&f->bus, IIR) & 0x0f, 0x00);
	assert_int_equal(inb(&f->bus, MSR), 0x40 | 0x01 | 0x02 | 0x08);
	assert_int_equal(f->irq.level[UART_COM1_GSI], 0);
	outb(&f->bus, MCR, 0x10);
	assert_int_equal(inb(&f->bus, MSR), 0x04);
}

static void thre_interrupt(void **state)
{
	struct fixture *f = *state;
	unsigned gsi = UART_COM1_GSI;

	assert_int_equal(inb(&f->bus, IIR), 0x01);
	outb(&f->bus, IER, 0x02);
	assert_int_equal(f->irq.level[gsi], 1);
	assert_int_equal(inb(&f->bus, IIR), 0x02);
	/* Reading IIR acknowledged it. */
	assert_int_equal(f->irq.level[gsi], 0);
	assert_int_equal(inb(&f->bus, IIR), 0x01);
	/* A transmission empties THR again: a fresh edge. */
	outb(&f->bus, RBR, 'a');
	assert_int_equal(f->irq.level[gsi], 1);
	assert_int_equal(f->irq.raises[gsi], 2);
	outb(&f->bus, RBR, 'b');
	assert_int_equal(f->irq.raises[gsi], 3);
	/* Disabling ETBEI drops the line. */
	outb(&f->bus, IER, 0x00);
	assert_int_equal(f->irq.level[gsi], 0);
	assert_int_equal(inb(&f->bus, IIR), 0x01);
	/* Re-enabling raises it at once, since THR is empty. */
	outb(&f->bus, IER, 0x02);
	assert_int_equal(f->irq.level[gsi], 1);
}

static void rx_interrupt_and_priority(void **state)
{
	struct fixture *f = *state;
	unsigned gsi = UART_COM1_GSI;

	outb(&f->bus, FCR, 0x07);
	assert_int_equal(inb(&f->bus, IIR), 0xc1);  /* FIFOs enabled */
	outb(&f->bus, IER, 0x01);
	assert_int_equal(f->irq.level[gsi], 0);
	assert_int_equal(uart_push_input(&f->uart, (const uint8_t *)"abc", 3), 3);
	assert_int_equal(f->irq.level[gsi], 1);
	assert_int_equal(inb(&f->bus, IIR), 0xc4);
	/* RX outranks THRE. */
	outb(&f->bus, IER, 0x03);
	assert_int_equal(inb(&f->bus, IIR), 0xc4);
	assert_int_equal(inb(&f->bus, RBR), 'a');
	assert_int_equal(inb(&f->bus, RBR), 'b');
	assert_int_equal(inb(&f->bus, RBR), 'c');
	assert_int_equal(inb(&f->bus, IIR), 0xc2);
	assert_int_equal(inb(&f->bus, IIR), 0xc1);
	assert_int_equal(f->irq.level[gsi], 0);
	/* FCR bit 1 empties the receive FIFO. */
	uart_push_input(&f->uart, (const uint8_t *)"de", 2);
	assert_int_equal(f->irq.level[gsi], 1);
	outb(&f->bus, FCR, 0x03);
	assert_int_equal(inb(&f->bus, LSR) & 0x01, 0);
	assert_int_equal(f->irq.level[gsi], 0);
}

static void rx_bound_and_overrun(void **state)
{
	struct fixture *f = *state;
	uint8_t buf[100];

	for (unsigned i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)i;
	assert_int_equal(uart_push_input(&f->uart, buf, sizeof(buf)), UART_RX_CAP);
	assert_false(uart_rx_has_room(&f->uart));
	assert_int_equal(uart_push_input(&f->uart, buf, 1), 0);
	assert_int_equal(inb(&f->bus, RBR), 0);
	assert_true(uart_rx_has_room(&f->uart));
	assert_int_equal(uart_push_input(&f->uart, buf + UART_RX_CAP, 10), 1);
	for (unsigned i = 1; i <= UART_RX_CAP; i++)
		assert_int_equal(inb(&f->bus, RBR), (uint8_t)i);
	assert_int_equal(inb(&f->bus, LSR) & 0x01, 0);

	/* Loopback into a full FIFO is an overrun: line status interrupt. */
	uart_push_input(&f->uart, buf, sizeof(buf));
	outb(&f->bus, IER, 0x05);
	outb(&f->bus, MCR, 0x10);
	outb(&f->bus, RBR, 0x42);
	assert_int_equal(inb(&f->bus, IIR) & 0x0f, 0x06);
	assert_int_equal(inb(&f->bus, LSR), 0x63);  /* DR, OE, THRE, TEMT */
	assert_int_equal(inb(&f->bus, LSR), 0x61);  /* OE is read-to-clear */
	assert_int_equal(inb(&f->bus, IIR) & 0x0f, 0x04);
}

static void save_restore(void **state)
{
	struct fixture *f = *state;
	struct uart_state st, bad;
	struct verr err = {0};

	outb(&f->bus, LCR, 0x80);
	outb(&f->bus, RBR, 0x03);
	outb(&f->bus, LCR, 0x03);
	outb(&f->bus, SCR, 0x77);
	outb(&f->bus, IER, 0x01);
	uart_push_input(&f->uart, (const uint8_t *)"xyz", 3);
	inb(&f->bus, RBR);
	uart_save(&f->uart, &st);
	assert_int_equal(st.rx_count, 2);

	bad = st;
	bad.rx_count = UART_RX_CAP + 1;
	assert_int_equal(uart_restore(&f->uart, &bad, &err), -EINVAL);

	outb(&f->bus, SCR, 0);
	outb(&f->bus, FCR, 0x03); /* empties RX */
	outb(&f->bus, IER, 0);
	assert_int_equal(f->irq.level[UART_COM1_GSI], 0);
	assert_int_equal(uart_restore(&f->uart, &st, &err), 0);
	assert_int_equal(f->irq.level[UART_COM1_GSI], 1);
	assert_int_equal(inb(&f->bus, SCR), 0x77);
	assert_int_equal(inb(&f->bus, LCR), 0x03);
	assert_int_equal(inb(&f->bus, RBR), 'y');
	assert_int_equal(inb(&f->bus, RBR), 'z');
	outb(&f->bus, LCR, 0x80);
	assert_int_equal(inb(&f->bus, RBR), 0x03);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(transmit_and_lsr), T(divisor_latch), T(loopback), T(modem_status_deltas),
		T(thre_interrupt), T(rx_interrupt_and_priority), T(rx_bound_and_overrun),
		T(save_restore),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
