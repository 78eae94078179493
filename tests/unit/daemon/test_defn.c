/* SPDX-License-Identifier: Apache-2.0 */
/* The VM definition validator: what it accepts, the canonical JSON it
 * writes back, and refusals that name the field. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "daemon/defn.h"

static int parse(const char *text, struct defn *d, struct verr *err)
{
	verr_clear(err);
	return defn_parse(text, strlen(text), d, err);
}

static void full_definition_round_trips(void **state)
{
	static const char text[] =
		"{\"name\": \"web-1.a\", \"uuid\": \"0b6a1c1e-0000-4000-8000-00000000000a\", "
		"\"memory\": \"2G\", \"vcpus\": 4, \"kernel\": \"/boot/vmlinuz\", "
		"\"initrd\": \"/boot/initrd\", \"cmdline\": \"console=ttyS0 quiet\", "
		"\"console\": \"virtio\", \"disks\": [{\"path\": \"/d/a.qcow2\", \"format\": "
		"\"qcow2\"}, {\"path\": \"/d/b.img\", \"readonly\": true}], \"nets\": [{\"tap\": "
		"\"tap0\", \"mac\": \"52:54:00:12:34:56\"}, {\"tap\": \"tap1\"}]}\n";
	struct defn *d = malloc(sizeof(*d)), *again = malloc(sizeof(*again));
	struct verr err = { 0 };
	char *json;

	(void)state;
	assert_int_equal(parse(text, d, &err), 0);
	assert_string_equal(d->name, "web-1.a");
	assert_int_equal(d->memory_mib, 2048);
	assert_int_equal(d->vcpus, 4);
	assert_int_equal(d->n_disks, 2);
	assert_string_equal(d->disks[0].format, "qcow2");
	assert_string_equal(d->disks[1].format, "raw");
	assert_true(d->disks[1].readonly);
	assert_int_equal(d->n_nets, 2);
	assert_string_equal(d->nets[1].mac, "");
	json = defn_to_json(d);
	assert_non_null(json);
	assert_int_equal(parse(json, again, &err), 0);
	assert_memory_equal(d, again, sizeof(*d));
	free(json);
	free(d);
	free(again);
}

static void defaults_and_generated_uuid(void **state)
{
	struct defn d1, d2;
	struct verr err = { 0 };
	const char *text = "{\"name\": \"a\", \"kernel\": \"/k\"}";

	(void)state;
	assert_int_equal(parse(text, &d1, &err), 0);
	assert_int_equal(parse(text, &d2, &err), 0);
	assert_int_equal(d1.memory_mib, 128);
	assert_int_equal(d1.vcpus, 1);
	assert_string_equal(d1.console, "serial");
	assert_int_equal(strlen(d1.uuid), 36);
	assert_int_equal(d1.uuid[14], '4');
	assert_true(strchr("89ab", d1.uuid[19]) != NULL);
	assert_string_not_equal(d1.uuid, d2.uuid);
}

static const struct {
	const char *text, *needle;
} bad[] = {
	{ "", "malformed JSON" },
	{ "{\"name\": \"a\"", "unexpected end" },
	{ "{\"name\": \"a\", \"kernel\": \"/k\"} {}", "text after" },
	{ "null", "JSON object" },
	{ "{\"kernel\": \"/k\"}", "name: required" },
	{ "{\"name\": \"a\"}", "kernel: required" },
	{ "{\"name\": \"\", \"kernel\": \"/k\"}", "name: must be" },
	{ "{\"name\": \"-a\", \"kernel\": \"/k\"}", "name: must be" },
	{ "{\"name\": \"a/b\", \"kernel\": \"/k\"}", "name: must be" },
	{ "{\"name\": \"a\", \"kernel\": \"/k\", \"memory\": \"0M\"}", "memory:" },
	{ "{\"name\": \"a\", \"kernel\": \"/k\", \"memory\": \"1500K\"}", "memory: must be a whole" },
	{ "{\"name\": \"a\", \"kernel\": \"/k\", \"memory\": 1048577}", "memory: must be between" },
	{ "{\"name\": \"a\", \"kernel\": \"/k\", \"memory\": true}", "memory: must be MiB" },
	{ "{\"name\": \"a\", \"kernel\": \"/k\", \"vcpus\": 65}", "vcpus: must be between 1 and 64" },
	{ "{\"name\": \"a\", \"kernel\": \"/k\", \"vcpus\": 9223372036854775808}", "vcpus:" },
	{ "{\"name\": \"a\", \"kernel\": \"/k\", \"cmdline\": \"a\\u0001\"}", "cmdline: must not" },
	{ "{\"name\": \"a\", \"kernel\": \"/k\\u0000x\"}", "kernel: must not contain NUL" },
	{ "{\"name\": \"a\", \"kernel\": \"/k\", \"uuid\": \"0B6A1C1E-0000-4000-8000-00000000000A\"}",
	  "uuid: must be" },
	{ "{\"name\": \"a\", \"kernel\": \"/k\", \"disks\": [7]}", "disks[0]: must be an object" },
	{ "{\"name\": \"a\", \"kernel\": \"/k\", \"disks\": [{\"path\": \"/x\", \"format\": 1}]}",
	  "disks[0].format" },
	{ "{\"name\": \"a\", \"kernel\": \"/k\", \"nets\": [{\"tap\": \"t\", \"mac\": "
	  "\"52:54:00:12:34:5g\"}]}", "nets[0].mac" },
	{ "{\"name\": \"a\", \"kernel\": \"/k\", \"nets\": [{\"tap\": \"t\"}, {\"tap\": \"t\"}, "
	  "{\"tap\": \"t\"}, {\"tap\": \"t\"}, {\"tap\": \"t\"}, {\"tap\": \"t\"}, {\"tap\": \"t\"}, "
	  "{\"tap\": \"t\"}, {\"tap\": \"t\"}]}", "nets: at most 8" },
	{ "{\"name\": \"a\", \"kernel\": \"/k\", \"extra\": {}}", "extra: unknown field" },
};

static void bad_definitions_name_the_field(void **state)
{
	struct defn d;
	struct verr err = { 0 };

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (parse(bad[i].text, &d, &err) != -EINVAL || !strstr(err.msg, bad[i].needle)) {
			print_error("case %zu (%s): got '%s'\n", i, bad[i].text, err.msg);
			fail();
		}
	}
}

static void embedded_nul_and_size_limit(void **state)
{
	static const char with_nul[] = "{\"name\": \"a\", \"kernel\": \"/k\"}\0junk";
	struct defn d;
	struct verr err = { 0 };
	char *big = malloc(DEFN_MAX_TEXT + 2);

	(void)state;
	assert_int_equal(defn_parse(with_nul, sizeof(with_nul) - 1, &d, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "NUL"));
	memset(big, ' ', DEFN_MAX_TEXT + 1);
	big[DEFN_MAX_TEXT + 1] = '\0';
	verr_clear(&err);
	assert_int_equal(defn_parse(big, DEFN_MAX_TEXT + 1, &d, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "larger than"));
	free(big);
}

static void names(void **state)
{
	char long_name[80];

	(void)state;
	memset(long_name, 'a', sizeof(long_name) - 1);
	long_name[sizeof(long_name) - 1] = '\0';
	assert_true(defn_name_ok("vm_01.test-x"));
	assert_false(defn_name_ok(".hidden"));
	assert_false(defn_name_ok(".."));
	assert_false(defn_name_ok("a b"));
	assert_false(defn_name_ok(long_name));
	long_name[64] = '\0';
	assert_true(defn_name_ok(long_name));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(full_definition_round_trips),
		cmocka_unit_test(defaults_and_generated_uuid),
		cmocka_unit_test(bad_definitions_name_the_field),
		cmocka_unit_test(embedded_nul_and_size_limit),
		cmocka_unit_test(names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
