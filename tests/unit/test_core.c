/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/size.h"

static void size_units(void **state)
{
	uint64_t v;
	struct verr err = {0};
	(void)state;
	assert_int_equal(size_parse("128M", 0, &v, &err), 0);
	assert_int_equal(v, 128ull << 20);
	assert_int_equal(size_parse("4G", 0, &v, &err), 0);
	assert_int_equal(v, 4ull << 30);
	assert_int_equal(size_parse("4GiB", 0, &v, &err), 0);
	assert_int_equal(v, 4ull << 30);
	assert_int_equal(size_parse("512", 'M', &v, &err), 0);
	assert_int_equal(v, 512ull << 20);
	assert_int_equal(size_parse("4096", 0, &v, &err), 0);
	assert_int_equal(v, 4096);
}

static void size_rejects(void **state)
{
	static const char *const bad[] = { "", "M", "-1", "12Q", "1.5G", "4G junk",
		"99999999999999999999", "17179869184G", " 4G" };
	uint64_t v;
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct verr err = {0};
		assert_true(size_parse(bad[i], 0, &v, &err) < 0);
		assert_true(err.msg[0] != '\0');
	}
}

static void err_first_wins(void **state)
{
	struct verr err = {0};
	(void)state;
	assert_int_equal(verr_set(&err, EINVAL, "first %d", 1), -EINVAL);
	assert_int_equal(verr_set(&err, ENOENT, "second"), -ENOENT);
	assert_string_equal(err.msg, "first 1");
	assert_int_equal(err.code, EINVAL);
	verr_prefix(&err, "%s: ", "disk.img");
	assert_string_equal(err.msg, "disk.img: first 1");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(size_units),
		cmocka_unit_test(size_rejects),
		cmocka_unit_test(err_first_wins),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
