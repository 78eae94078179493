/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "helpers.h"

/* A device that records its last access and reads back its id + offset. */
struct probe {
	unsigned id;
	uint64_t last_off;
	unsigned last_len, writes;
	uint8_t last_val;
};

static void probe_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct probe *p = opaque;
	uint8_t *d = data;

	p->last_off = off;
	p->last_len = len;
	for (unsigned i = 0; i < len; i++)
		d[i] = (uint8_t)(p->id * 16 + off + i);
}

static void probe_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct probe *p = opaque;

	p->last_off = off;
	p->last_len = len;
	p->last_val = *(const uint8_t *)data;
	p->writes++;
}

static const struct bus_dev_ops probe_ops = { probe_read, probe_write };

static void overlap_refused(void **state)
{
	struct bus b;
	struct verr err = {0};
	struct probe a = { .id = 1 }, c = { .id = 2 };
	(void)state;

	assert_int_equal(bus_init(&b, "pio", &err), 0);
	assert_int_equal(bus_register(&b, 0x100, 8, "alpha", &probe_ops, &a, &err), 0);
	assert_int_equal(bus_register(&b, 0x104, 8, "beta", &probe_ops, &c, &err), -EEXIST);
	assert_non_null(strstr(err.msg, "alpha"));
	assert_non_null(strstr(err.msg, "beta"));
	verr_clear(&err);
	assert_int_equal(bus_register(&b, 0xfc, 5, "beta", &probe_ops, &c, &err), -EEXIST);
	verr_clear(&err);
	assert_int_equal(bus_register(&b, 0x0, 0x1000, "beta", &probe_ops, &c, &err), -EEXIST);
	verr_clear(&err);
	/* Adjacent on both sides is fine. */
	assert_int_equal(bus_register(&b, 0x108, 8, "beta", &probe_ops, &c, &err), 0);
	assert_int_equal(bus_register(&b, 0xf8, 8, "gamma", &probe_ops, &c, &err), 0);
	assert_int_equal(b.count, 3);
	bus_destroy(&b);
}

static void bad_ranges_refused(void **state)
{
	struct bus b;
	struct verr err = {0};
	struct probe a = { .id = 1 };
	(void)state;

	assert_int_equal(bus_init(&b, "mmio", &err), 0);
	assert_int_equal(bus_register(&b, 0x100, 0, "zero", &probe_ops, &a, &err), -EINVAL);
	verr_clear(&err);
	assert_int_equal(bus_register(&b, UINT64_MAX - 3, 8, "wrap", &probe_ops, &a, &err), -EINVAL);
	verr_clear(&err);
	/* The very top of the address space is a valid region. */
	assert_int_equal(bus_register(&b, UINT64_MAX - 7, 8, "top", &probe_ops, &a, &err), 0);
	assert_true(bus_read(&b, UINT64_MAX - 7, &(uint64_t){0}, 8));
	assert_false(bus_read(&b, UINT64_MAX - 3, &(uint64_t){0}, 8));
	bus_destroy(&b);
}

static void unclaimed_all_ones(void **state)
{
	struct bus b;
	struct verr err = {0};
	struct probe a = { .id = 1 };
	uint64_t v;
	uint8_t big[16];
	(void)state;

	assert_int_equal(bus_init(&b, "pio", &err), 0);
	assert_int_equal(bus_register(&b, 0x100, 8, "alpha", &probe_ops, &a, &err), 0);
	v = 0;
	assert_false(bus_read(&b, 0x50, &v, 8));
	assert_int_equal(v, UINT64_MAX);
	assert_int_equal(inb(&b, 0x108), 0xff);
	assert_int_equal(inw(&b, 0xff), 0xffff);    /* straddles the start */
	assert_int_equal(inl(&b, 0x106), 0xffffffff); /* straddles the end */
	assert_int_equal(a.last_len, 0);
	/* Odd lengths are not accesses a CPU makes: unclaimed, no crash. */
	assert_false(bus_read(&b, 0x100, big, 0));
	assert_false(bus_read(&b, 0x100, big, 3));
	memset(big, 0, sizeof(big));
	assert_false(bus_read(&b, 0x100, big, 16));
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(big[i], 0xff);
	assert_false(bus_write(&b, 0x100, big, 16));
	assert_false(bus_write(&b, 0x100, big, 0));
	assert_false(bus_write(&b, 0x200, big, 1));
	assert_int_equal(a.writes, 0);
	bus_destroy(&b);
}

static void dispatch_offsets(void **state)
{
	struct bus b;
	struct verr err = {0};
	struct probe p[40];
	(void)state;

	assert_int_equal(bus_init(&b, "pio", &err), 0);
	/* Register out of order so the sorted insert is exercised. */
	for (unsigned i = 0; i < 40; i++) {
		unsigned k = (i * 17) % 40;
		p[k] = (struct probe){ .id = k };
		assert_int_equal(bus_register(&b, 0x1000 + k * 0x10, 4, "probe",
					      &probe_ops, &p[k], &err), 0);
	}
	for (unsigned k = 0; k < 40; k++) {
		assert_int_equal(inb(&b, 0x1000 + k * 0x10 + 2), (uint8_t)(k * 16 + 2));
		assert_int_equal(p[k].last_off, 2);
		assert_int_equal(inb(&b, 0x1000 + k * 0x10 + 4), 0xff);
		outw(&b, 0x1000 + k * 0x10 + 2, 0x5a);
		assert_int_equal(p[k].last_len, 2);
		assert_int_equal(p[k].last_val, 0x5a);
	}
	assert_int_equal(bus_unregister(&b, 0x1000 + 5 * 0x10, &p[4]), -ENOENT);
	assert_int_equal(bus_unregister(&b, 0x1000 + 5 * 0x10, &p[5]), 0);
	assert_int_equal(inb(&b, 0x1000 + 5 * 0x10), 0xff);
	assert_int_equal(inb(&b, 0x1000 + 6 * 0x10), 6 * 16);
	assert_int_equal(b.count, 39);
	bus_destroy(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(overlap_refused),
		cmocka_unit_test(bad_ranges_refused),
		cmocka_unit_test(unclaimed_all_ones),
		cmocka_unit_test(dispatch_offsets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
