/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "devices/debug_exit.h"
#include "helpers.h"

struct exits {
	unsigned n;
	int code;
};

static void record(void *ctx, int code)
{
	struct exits *e = ctx;

	e->n++;
	e->code = code;
}

static void exit_codes(void **state)
{
	struct bus b;
	struct debug_exit d;
	struct exits e = {0};
	struct verr err = {0};
	(void)state;

	assert_int_equal(bus_init(&b, "pio", &err), 0);
	assert_int_equal(debug_exit_init(&d, NULL, NULL, &err), -EINVAL);
	verr_clear(&err);
	assert_int_equal(debug_exit_init(&d, record, &e, &err), 0);
	assert_int_equal(debug_exit_attach(&d, &b, &err), 0);
	outb(&b, DEBUG_EXIT_PORT, 0);
	assert_int_equal(e.code, 1);
	outb(&b, DEBUG_EXIT_PORT, 0x10);
	assert_int_equal(e.code, 0x21);
	outb(&b, DEBUG_EXIT_PORT, 0xff);
	assert_int_equal(e.code, 0x1ff);
	assert_int_equal(e.n, 3);
	/* Neighbours and wide accesses are not the port; reads are all-ones. */
	outb(&b, DEBUG_EXIT_PORT + 1, 1);
	outw(&b, DEBUG_EXIT_PORT, 1);
	assert_int_equal(e.n, 3);
	assert_int_equal(inb(&b, DEBUG_EXIT_PORT), 0xff);
	debug_exit_destroy(&d);
	bus_destroy(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(exit_codes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
