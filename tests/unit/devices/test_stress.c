/* SPDX-License-Identifier: Apache-2.0 */
/* Threads against the locks, and a hostile guest poking every device. */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "devices/acpi_pm.h"
#include "devices/debug_exit.h"
#include "devices/i8042.h"
#include "devices/pci.h"
#include "devices/rtc.h"
#include "devices/uart.h"
#include "helpers.h"

#define RX_TOTAL 20000

struct rx_run {
	struct uart uart;
	struct bus bus;
};

static void *rx_producer(void *arg)
{
	struct rx_run *r = arg;
	unsigned sent = 0;

	while (sent < RX_TOTAL) {
		uint8_t chunk[37];
		size_t n = RX_TOTAL - sent < sizeof(chunk) ? RX_TOTAL - sent : sizeof(chunk);

		for (size_t i = 0; i < n; i++)
			chunk[i] = (uint8_t)(sent + i);
		int got = uart_push_input(&r->uart, chunk, n);
		sent += (unsigned)got;
		if (got == 0)
			sched_yield();
	}
	return NULL;
}

static void uart_input_thread(void **state)
{
	static struct rx_run r;
	struct verr err = {0};
	pthread_t t;
	unsigned got = 0;
	(void)state;

	assert_int_equal(bus_init(&r.bus, "pio", &err), 0);
	assert_int_equal(uart_init(&r.uart, "com1", NULL, NULL, NULL, &err), 0);
	assert_int_equal(uart_attach(&r.uart, &r.bus, UART_COM1_BASE, &err), 0);
	assert_int_equal(pthread_create(&t, NULL, rx_producer, &r), 0);
	while (got < RX_TOTAL) {
		if (inb(&r.bus, UART_COM1_BASE + 5) & 0x01)
			assert_int_equal(inb(&r.bus, UART_COM1_BASE), (uint8_t)got++);
		else
			sched_yield();
	}
	pthread_join(t, NULL);
	uart_destroy(&r.uart);
	bus_destroy(&r.bus);
}

struct bus_run {
	struct bus bus;
	atomic_bool stop;
	atomic_uint reads;
};

static void fixed_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	memset(data, 0x42, len);
}

static const struct bus_dev_ops fixed_ops = { fixed_read, NULL };

static void *bus_reader(void *arg)
{
	struct bus_run *r = arg;

	while (!atomic_load(&r->stop)) {
		uint32_t v = 0;
		if (!bus_read(&r->bus, 0x1004, &v, 4) || v != 0x42424242)
			return (void *)1;
		atomic_fetch_add(&r->reads, 1);
	}
	return NULL;
}

static void bus_concurrent_register(void **state)
{
	static struct bus_run r;
	struct verr err = {0};
	pthread_t t[4];
	int dummy;
	(void)state;

	assert_int_equal(bus_init(&r.bus, "mmio", &err), 0);
	assert_int_equal(bus_register(&r.bus, 0x1000, 0x10, "steady", &fixed_ops, &r, &err), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(pthread_create(&t[i], NULL, bus_reader, &r), 0);
	/* Move a "BAR" around on both sides of the steady region. */
	for (unsigned i = 0; i < 3000; i++) {
		uint64_t base = (i & 1) ? 0x2000 + i * 0x10 : 0x100 + (i % 64) * 0x10;
		assert_int_equal(bus_register(&r.bus, base, 0x10, "bar", &fixed_ops, &dummy, &err), 0);
		assert_int_equal(bus_unregister(&r.bus, base, &dummy), 0);
	}
	atomic_store(&r.stop, true);
	for (int i = 0; i < 4; i++) {
		void *ret;
		pthread_join(t[i], &ret);
		assert_null(ret);
	}
	assert_int_equal(r.bus.count, 1);
	bus_destroy(&r.bus);
}

/* Every device on one bus, as the VM will wire them. */
struct machine {
	struct bus pio;
	struct uart uart;
	struct rtc rtc;
	struct i8042 kbc;
	struct pci_host pci;
	struct acpi_pm pm;
	struct debug_exit dbg;
	struct irq_rec irq;
	struct plat_rec plat;
	unsigned exits;
};

static void count_exit(void *ctx, int code) { ((struct machine *)ctx)->exits++; }

static void machine_init(struct machine *m)
{
	struct verr err = {0};
	struct irq_line l4 = irq_rec_line(&m->irq, 4), l1 = irq_rec_line(&m->irq, 1),
		l12 = irq_rec_line(&m->irq, 12), l9 = irq_rec_line(&m->irq, 9);
	struct platform_ops plat = plat_rec_ops(&m->plat);

	assert_int_equal(bus_init(&m->pio, "pio", &err), 0);
	assert_int_equal(uart_init(&m->uart, "com1", &l4, NULL, NULL, &err), 0);
	assert_int_equal(rtc_init(&m->rtc, NULL, NULL, NULL, &err), 0);
	assert_int_equal(i8042_init(&m->kbc, &l1, &l12, &plat, &err), 0);
	assert_int_equal(pci_host_init(&m->pci, &plat, &err), 0);
	assert_int_equal(acpi_pm_init(&m->pm, &l9, &plat, &err), 0);
	assert_int_equal(debug_exit_init(&m->dbg, count_exit, m, &err), 0);
	assert_int_equal(uart_attach(&m->uart, &m->pio, UART_COM1_BASE, &err), 0);
	assert_int_equal(rtc_attach(&m->rtc, &m->pio, &err), 0);
	assert_int_equal(i8042_attach(&m->kbc, &m->pio, &err), 0);
	assert_int_equal(pci_host_attach(&m->pci, &m->pio, &err), 0);
	assert_int_equal(acpi_pm_attach(&m->pm, &m->pio, &err), 0);
	assert_int_equal(debug_exit_attach(&m->dbg, &m->pio, &err), 0);
	/* A second attach of anything collides, naming both. */
	assert_int_equal(uart_attach(&m->uart, &m->pio, 0x3fc, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "com1"));
}

static void machine_destroy(struct machine *m)
{
	debug_exit_destroy(&m->dbg);
	acpi_pm_destroy(&m->pm);
	pci_host_destroy(&m->pci);
	i8042_destroy(&m->kbc);
	rtc_destroy(&m->rtc);
	uart_destroy(&m->uart);
	bus_destroy(&m->pio);
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void hostile_guest(void **state)
{
	static struct machine m;
	static const uint16_t ports[] = { 0x60, 0x64, 0x70, 0x71, 0x3f8, 0x501, 0x600,
		0x604, 0x608, 0xcf8, 0xcfc };
	static const unsigned lens[] = { 1, 2, 4, 8, 3, 0, 16 };
	uint64_t s = 0x9e3779b97f4a7c15ull;
	uint8_t buf[16];
	(void)state;

	memset(&m, 0, sizeof(m));
	machine_init(&m);
	for (unsigned i = 0; i < 300000; i++) {
		uint64_t r = xorshift(&s);
		uint16_t port = (uint16_t)(ports[r % 11] + (r >> 8) % 8);
		unsigned len = lens[(r >> 16) % 7];
		uint64_t v = xorshift(&s);

		/* Keep the enable bit on often, so config space gets traffic. */
		if (port == 0xcf8 && len == 4)
			v |= 0x80000000u;
		memcpy(buf, &v, 8);
		memcpy(buf + 8, &v, 8);
		if ((r >> 24) & 1)
			bus_write(&m.pio, port, buf, len);
		else
			bus_read(&m.pio, port, buf, len);
		if ((r >> 25) % 64 == 0)
			uart_push_input(&m.uart, buf, (r >> 32) % 16);
		if ((r >> 40) % 4096 == 0)
			acpi_pm_press_power_button(&m.pm);
	}
	/* The guest could do all of that, and the devices still answer. */
	assert_true(m.exits > 0 && m.plat.resets > 0 && m.plat.poweroffs > 0);
	outl(&m.pio, 0xcf8, 0x80000000);
	assert_int_equal(inl(&m.pio, 0xcfc), 0x00081b36);
	outb(&m.pio, 0x70, 0x0d);
	assert_int_equal(inb(&m.pio, 0x71), 0x80);
	assert_true(m.uart.rx_count <= UART_RX_CAP);
	assert_true(m.kbc.count <= I8042_QUEUE_CAP);
	machine_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(uart_input_thread),
		cmocka_unit_test(bus_concurrent_register),
		cmocka_unit_test(hostile_guest),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
