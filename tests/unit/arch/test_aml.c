/* SPDX-License-Identifier: Apache-2.0 */
/* AML encodings checked byte for byte against ACPI 6.x chapter 20 and
 * section 6.4; the whole-table view is iasl_check.py's job. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/aml.h"

#define BUF 256

/* Emits with fn into a fresh buffer, checks measure mode agrees, and
 * compares with the expected bytes. */
static void expect(void (*fn)(struct aml *), const uint8_t *want, size_t n)
{
	uint8_t buf[BUF];
	struct aml a, m;

	aml_init(&a, buf, sizeof(buf));
	fn(&a);
	assert_int_equal(aml_finish(&a), 0);
	aml_init(&m, NULL, 0);
	fn(&m);
	assert_int_equal(aml_finish(&m), 0);
	assert_int_equal(m.len, a.len);
	assert_int_equal(a.len, n);
	assert_memory_equal(buf, want, n);
}

static void emit_integers(struct aml *a)
{
	aml_integer(a, 0);
	aml_integer(a, 1);
	aml_integer(a, 2);
	aml_integer(a, 0xff);
	aml_integer(a, 0x100);
	aml_integer(a, 0x10000);
	aml_integer(a, 0x100000000ull);
}

static void integers(void **state)
{
	static const uint8_t want[] = {
		0x00, 0x01, 0x0a, 0x02, 0x0a, 0xff, 0x0b, 0x00, 0x01,
		0x0c, 0x00, 0x00, 0x01, 0x00,
		0x0e, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
	};
	(void)state;
	expect(emit_integers, want, sizeof(want));
}

static void emit_names(struct aml *a)
{
	aml_namestring(a, "_SB");
	aml_namestring(a, "\\_SB.PCI0");
	aml_namestring(a, "\\_SB.PCI0.COM1");
	aml_namestring(a, "^FOO");
	aml_namestring(a, "\\");
}

static void names(void **state)
{
	static const uint8_t want[] = {
		'_', 'S', 'B', '_',
		'\\', 0x2e, '_', 'S', 'B', '_', 'P', 'C', 'I', '0',
		'\\', 0x2f, 3, '_', 'S', 'B', '_', 'P', 'C', 'I', '0', 'C', 'O', 'M', '1',
		'^', 'F', 'O', 'O', '_',
		'\\', 0x00,
	};
	(void)state;
	expect(emit_names, want, sizeof(want));
}

static void bad_names(void **state)
{
	static const char *const bad[] = { "pci0", "ABCDE", "1ABC", "A..B", "A.", ".A",
		"\\^A", "A-B" };
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct aml a;
		aml_init(&a, NULL, 0);
		aml_namestring(&a, bad[i]);
		assert_int_equal(aml_finish(&a), -EINVAL);
		assert_non_null(a.why);
	}
}

static void eisaid(void **state)
{
	(void)state;
	assert_int_equal(aml_eisaid_value("PNP0A08"), 0x080ad041);
	assert_int_equal(aml_eisaid_value("PNP0A03"), 0x030ad041);
	assert_int_equal(aml_eisaid_value("PNP0501"), 0x0105d041);
	assert_int_equal(aml_eisaid_value("PNP0B00"), 0x000bd041);
	assert_int_equal(aml_eisaid_value("PNP0A0"), -1);
	assert_int_equal(aml_eisaid_value("pnp0a08"), -1);
	assert_int_equal(aml_eisaid_value("PNP0A0G"), -1);
	assert_int_equal(aml_eisaid_value("PNP0A080"), -1);
}

static void emit_objects(struct aml *a)
{
	aml_name_eisaid(a, "_HID", "PNP0A08");
	aml_string(a, "ab");
	aml_buffer_begin(a);
	aml_byte(a, 1);
	aml_byte(a, 2);
	aml_byte(a, 3);
	aml_end(a);
	aml_device_begin(a, "DEV");
	aml_end(a);
	aml_method_begin(a, "_STA", 0, false);
	aml_return_integer(a, 0x0f);
	aml_end(a);
	aml_method_begin(a, "M", 3, true);
	aml_end(a);
	aml_package_begin(a, 2);
	aml_integer(a, 5);
	aml_integer(a, 0);
	aml_end(a);
	aml_scope_begin(a, "\\_SB");
	aml_end(a);
}

static void objects(void **state)
{
	static const uint8_t want[] = {
		0x08, '_', 'H', 'I', 'D', 0x0c, 0x41, 0xd0, 0x0a, 0x08,
		0x0d, 'a', 'b', 0x00,
		0x11, 0x06, 0x0a, 0x03, 1, 2, 3,
		0x5b, 0x82, 0x05, 'D', 'E', 'V', '_',
		0x14, 0x09, '_', 'S', 'T', 'A', 0x00, 0xa4, 0x0a, 0x0f,
		0x14, 0x06, 'M', '_', '_', '_', 0x0b,
		0x12, 0x05, 0x02, 0x0a, 0x05, 0x00,
		0x10, 0x06, '\\', '_', 'S', 'B', '_',
	};
	(void)state;
	expect(emit_objects, want, sizeof(want));
}

/* Reads a PkgLength as the spec defines it; returns bytes used. */
static size_t pkglen_decode(const uint8_t *p, size_t *value)
{
	size_t n = (size_t)(p[0] >> 6) + 1;
	if (n == 1) {
		*value = p[0] & 0x3f;
		return 1;
	}
	assert_int_equal(p[0] & 0x30, 0);
	*value = p[0] & 0x0f;
	for (size_t i = 1; i < n; i++)
		*value |= (size_t)p[i] << (4 + 8 * (i - 1));
	return n;
}

/* A Package whose body (count byte + filler) is body bytes long. */
static void package_pkglen(size_t body, size_t want_bytes)
{
	size_t cap = body + 16;
	uint8_t *buf = malloc(cap);
	struct aml a;
	size_t v;

	assert_non_null(buf);
	aml_init(&a, buf, cap);
	aml_package_begin(&a, 0);
	for (size_t i = 1; i < body; i++)
		aml_byte(&a, 0);
	aml_end(&a);
	assert_int_equal(aml_finish(&a), 0);
	assert_int_equal(buf[0], 0x12);
	assert_int_equal(pkglen_decode(buf + 1, &v), want_bytes);
	assert_int_equal(v, body + want_bytes);
	assert_int_equal(a.len, 1 + want_bytes + body);
	free(buf);
}

static void pkglen_sizes(void **state)
{
	(void)state;
	package_pkglen(1, 1);
	package_pkglen(62, 1);          /* 63 in total: the one-byte limit */
	package_pkglen(63, 2);
	package_pkglen(0xffd, 2);       /* 0xfff */
	package_pkglen(0xffe, 3);
	package_pkglen(0xffffc, 3);     /* 0xfffff */
	package_pkglen(0xffffd, 4);
}

static void nested_pkglen(void **state)
{
	static uint8_t buf[4096];
	struct aml a;
	size_t v, n;
	(void)state;

	/* The inner body grows past 63 bytes, so both lengths move. */
	aml_init(&a, buf, sizeof(buf));
	aml_scope_begin(&a, "\\_SB");
	aml_device_begin(&a, "DEV");
	for (int i = 0; i < 100; i++)
		aml_byte(&a, 0xa5);
	aml_end(&a);
	aml_end(&a);
	assert_int_equal(aml_finish(&a), 0);
	n = pkglen_decode(buf + 1, &v);
	assert_int_equal(1 + v, a.len);
	assert_memory_equal(buf + 1 + n, "\\_SB_", 5);
	const uint8_t *d = buf + 1 + n + 5;
	assert_int_equal(d[0], 0x5b);
	assert_int_equal(d[1], 0x82);
	n = pkglen_decode(d + 2, &v);
	assert_int_equal(v, n + 4 + 100);
	assert_int_equal(d[2 + n + 4], 0xa5);
}

static void emit_resources(struct aml *a)
{
	aml_restemplate_begin(a);
	aml_res_io(a, 0x3f8, 0x3f8, 1, 8);
	aml_res_irq_noflags(a, 4);
	aml_res_irq(a, 5, true, true, true);
	aml_res_ext_irq(a, AML_IRQ_CONSUMER | AML_IRQ_EDGE, 40);
	aml_res_word_bus(a, 0, 0xff);
	aml_restemplate_end(a);
}

static void resources(void **state)
{
	static const uint8_t want[] = {
		0x11, 0x2d, 0x0a, 0x2a,
		0x47, 0x01, 0xf8, 0x03, 0xf8, 0x03, 0x01, 0x08,
		0x22, 0x10, 0x00,
		0x23, 0x20, 0x00, 0x18,
		0x89, 0x06, 0x00, 0x03, 0x01, 0x28, 0x00, 0x00, 0x00,
		0x88, 0x0d, 0x00, 0x02, 0x0c, 0x00,
		0x00, 0x00, 0x00, 0x00, 0xff, 0x00, 0x00, 0x00, 0x00, 0x01,
		0x79, 0x00,
	};
	(void)state;
	expect(emit_resources, want, sizeof(want));
}

static void address_descriptors(void **state)
{
	uint8_t buf[BUF];
	struct aml a;
	(void)state;

	aml_init(&a, buf, sizeof(buf));
	aml_restemplate_begin(&a);
	aml_res_dword_io(&a, 0xd00, 0xffff);
	aml_res_dword_mem(&a, true, false, 0xc0000000u, 0xdfffffffu);
	aml_res_qword_mem(&a, false, true, 0x100000000ull, 0x1ffffffffull);
	aml_restemplate_end(&a);
	assert_int_equal(aml_finish(&a), 0);
	/* Buffer, a two-byte PkgLength, BufferSize 0x0a 91, then descriptors. */
	assert_int_equal(buf[0], 0x11);
	assert_int_equal(buf[1] >> 6, 1);
	assert_int_equal(buf[3], 0x0a);
	assert_int_equal(buf[4], 26 + 26 + 46 + 2);
	const uint8_t *d = buf + 5;
	static const uint8_t io[] = { 0x87, 0x17, 0x00, 0x01, 0x0c, 0x03 };
	assert_memory_equal(d, io, sizeof(io));
	assert_int_equal(d[6 + 16], 0x00);          /* length 0xf300, LE */
	assert_int_equal(d[6 + 17], 0xf3);
	d += 3 + 0x17;
	static const uint8_t mem[] = { 0x87, 0x17, 0x00, 0x00, 0x0c, 0x01 };
	assert_memory_equal(d, mem, sizeof(mem));
	d += 3 + 0x17;
	static const uint8_t qmem[] = { 0x8a, 0x2b, 0x00, 0x00, 0x0d, 0x03 };
	assert_memory_equal(d, qmem, sizeof(qmem));
	assert_int_equal(d[6 + 32 + 4], 0x01);      /* length 1 << 32 */
	assert_int_equal(d[3 + 0x2b], 0x79);
}

static void bad_ranges(void **state)
{
	struct aml a;
	(void)state;

	aml_init(&a, NULL, 0);
	aml_restemplate_begin(&a);
	aml_res_word_bus(&a, 0, 0xffff);            /* length 0x10000 needs 17 bits */
	assert_int_equal(a.err, -EINVAL);
	aml_init(&a, NULL, 0);
	aml_restemplate_begin(&a);
	aml_res_dword_io(&a, 0x10, 0x0f);
	assert_int_equal(a.err, -EINVAL);
	aml_init(&a, NULL, 0);
	aml_restemplate_begin(&a);
	aml_res_irq_noflags(&a, 16);
	assert_int_equal(a.err, -EINVAL);
}

static void misuse(void **state)
{
	struct aml a;
	(void)state;

	aml_init(&a, NULL, 0);
	aml_end(&a);
	assert_int_equal(aml_finish(&a), -EINVAL);

	aml_init(&a, NULL, 0);
	aml_device_begin(&a, "DEV");
	assert_int_equal(aml_finish(&a), -EINVAL);       /* left open */

	aml_init(&a, NULL, 0);
	aml_res_io(&a, 0x60, 0x60, 1, 1);                /* no template */
	assert_int_equal(aml_finish(&a), -EINVAL);

	aml_init(&a, NULL, 0);
	aml_buffer_begin(&a);
	aml_restemplate_end(&a);                         /* plain buffer */
	assert_int_equal(aml_finish(&a), -EINVAL);

	aml_init(&a, NULL, 0);
	for (int i = 0; i <= AML_MAX_DEPTH; i++)
		aml_scope_begin(&a, "S");
	assert_int_equal(aml_finish(&a), -E2BIG);

	aml_init(&a, NULL, 0);
	aml_method_begin(&a, "M", 8, false);
	assert_int_equal(aml_finish(&a), -EINVAL);

	aml_init(&a, NULL, 0);
	aml_eisaid(&a, "XYZ");
	assert_int_equal(aml_finish(&a), -EINVAL);
}

static void emit_nested(struct aml *a)
{
	aml_scope_begin(a, "\\_SB");
	aml_device_begin(a, "DEV");
	aml_name_integer(a, "_UID", 0x12345678);
	aml_end(a);
	aml_end(a);
}

/* Writes stop at cap, including the shifts that insert a PkgLength. */
static void bounded(void **state)
{
	uint8_t buf[64];
	(void)state;

	struct aml m;
	aml_init(&m, NULL, 0);
	emit_nested(&m);
	assert_int_equal(aml_finish(&m), 0);
	assert_int_equal(m.len, 24);
	for (size_t cap = 0; cap < 40; cap++) {
		struct aml a;
		memset(buf, 0xcc, sizeof(buf));
		aml_init(&a, buf, cap);
		emit_nested(&a);
		int r = aml_finish(&a);
		if (cap < m.len)
			assert_int_equal(r, -ENOSPC);
		else
			assert_int_equal(r, 0);
		for (size_t i = cap; i < sizeof(buf); i++)
			assert_int_equal(buf[i], 0xcc);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(integers),
		cmocka_unit_test(names),
		cmocka_unit_test(bad_names),
		cmocka_unit_test(eisaid),
		cmocka_unit_test(objects),
		cmocka_unit_test(pkglen_sizes),
		cmocka_unit_test(nested_pkglen),
		cmocka_unit_test(resources),
		cmocka_unit_test(address_descriptors),
		cmocka_unit_test(bad_ranges),
		cmocka_unit_test(misuse),
		cmocka_unit_test(bounded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
