/* SPDX-License-Identifier: Apache-2.0 */
/* Requests as hostile input: bad JSON, sizes, paths, methods, bytes. */
#include <errno.h>

#include "helpers.h"

static int setup(void **state)
{
	struct fake_vmm *f = malloc(sizeof(*f));

	if (!f)
		return -1;
	fake_vmm_init(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	free(*state);
	return 0;
}

static void bad_json(void **state)
{
	static const struct { const char *body, *needle; } cases[] = {
		{ "", "the body is empty" },
		{ "null", "not null" },
		{ "[]", "must be a JSON object, not an array" },
		{ "42", "must be a JSON object, not an integer" },
		{ "\"s\"", "must be a JSON object, not a string" },
		{ "{", "invalid JSON" },
		{ "{\"kernel_image_path\": \"/k\"", "invalid JSON" },
		{ "{\"kernel_image_path\": \"/k\"} x", "at byte 28" },
		{ "{\"kernel_image_path\": \"/k\"}{}", "at byte 27" },
		{ "{'kernel_image_path': '/k'}", "invalid JSON" },
		{ "{\"kernel_image_path\": \"/k\",}", "invalid JSON" },
		{ "{\"kernel_image_path\": \"\xff\"}", "invalid JSON" },
		{ "{\"kernel_image_path\": NaN}", "must be a string, not a number" },
		{ "{\"kernel_image_path\": \"/k\" /* c */}", "invalid JSON" },
	};
	struct fake_vmm *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_fault(f, "PUT", "/boot-source", cases[i].body, 400, cases[i].needle);
	assert_int_equal(f->calls[FAKE_PUT_BOOT], 0);
}

static void nul_byte_in_body(void **state)
{
	static const char body[] = "{\"kernel_image_path\": \"/k\"}\0{}";
	struct fake_vmm *f = *state;
	char *resp = NULL;
	int status;

	assert_int_equal(api_handle_request(&fake_vmm_ops, f, "PUT", "/boot-source", body,
					    sizeof(body) - 1, &status, &resp), 0);
	assert_int_equal(status, 400);
	assert_non_null(strstr(resp, "NUL"));
	free(resp);
	/* the body need not be NUL-terminated */
	assert_int_equal(api_handle_request(&fake_vmm_ops, f, "PUT", "/boot-source", body, 27,
					    &status, &resp), 0);
	assert_int_equal(status, 204);
	assert_null(resp);
}

static void deep_nesting(void **state)
{
	struct fake_vmm *f = *state;
	char *body = malloc(20001);

	assert_non_null(body);
	memset(body, '[', 10000);
	memset(body + 10000, ']', 10000);
	body[20000] = '\0';
	expect_fault(f, "PUT", "/boot-source", body, 400, "invalid JSON");
	strcpy(body, "{\"kernel_image_path\": ");
	for (int i = 0; i < 20; i++)
		strcat(body, "{\"a\": ");
	strcat(body, "1");
	for (int i = 0; i < 21; i++)
		strcat(body, "}");
	expect_fault(f, "PUT", "/boot-source", body, 400, "invalid JSON");
	free(body);
}

static void body_size_limit(void **state)
{
	struct fake_vmm *f = *state;
	char *body = malloc(API_MAX_BODY + 2);
	const char *json = "{\"kernel_image_path\": \"/k\"}";
	char *resp = NULL;
	int status;

	assert_non_null(body);
	memset(body, ' ', API_MAX_BODY + 1);
	memcpy(body, json, strlen(json));
	body[API_MAX_BODY] = '\0';
	expect_ok(f, "PUT", "/boot-source", body);  /* exactly at the limit */
	body[API_MAX_BODY] = ' ';
	body[API_MAX_BODY + 1] = '\0';
	expect_fault(f, "PUT", "/boot-source", body, 413, "request body too large (65537 bytes");
	free(body);
	/* the size is checked before the bytes are looked at */
	assert_int_equal(api_handle_request(&fake_vmm_ops, f, "PUT", "/boot-source", "x",
					    (size_t)1 << 40, &status, &resp), 0);
	assert_int_equal(status, 413);
	free(resp);
	assert_int_equal(f->calls[FAKE_PUT_BOOT], 1);
}

static void unknown_paths(void **state)
{
	static const char *const paths[] = {
		"/foo", "/drives", "/drives/", "/drives/a/b", "", "machine-config",
		"/machine-configX", "/vm/config/x", "//", "/vireo", "/vireo/", "/snapshot",
		"/actions/x", "/network-interfaces", "/%2e%2e/etc",
	};
	struct fake_vmm *f = *state;
	char longpath[600];

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		expect_fault(f, "GET", paths[i], NULL, 404, "invalid request path");
		expect_fault(f, "PUT", paths[i], "{}", 404, "invalid request path");
	}
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	expect_fault(f, "GET", longpath, NULL, 404, "invalid request path");
	memcpy(longpath, "/drives/", 8);
	expect_fault(f, "PUT", longpath, "{}", 404, "invalid request path");
}

static void long_id(void **state)
{
	struct fake_vmm *f = *state;
	char path[128], body[256];

	memset(path, 0, sizeof(path));
	memcpy(path, "/drives/", 8);
	memset(path + 8, 'd', 70);
	snprintf(body, sizeof(body), "{\"drive_id\": \"%s\", \"path_on_host\": \"/p\", "
		 "\"is_root_device\": false}", path + 8);
	expect_fault(f, "PUT", path, body, 400, "'drive_id' is too long");
	path[8 + 65] = '\0';
	snprintf(body, sizeof(body), "{\"drive_id\": \"%s\", \"path_on_host\": \"/p\", "
		 "\"is_root_device\": false}", path + 8);
	expect_fault(f, "PUT", path, body, 400, "'drive_id' is too long");
	path[8 + 63] = '\0';
	snprintf(body, sizeof(body), "{\"drive_id\": \"%s\", \"path_on_host\": \"/p\", "
		 "\"is_root_device\": false}", path + 8);
	expect_ok(f, "PUT", path, body);
}

static void wrong_methods(void **state)
{
	static const struct { const char *method, *path, *allow; } cases[] = {
		{ "POST", "/", "allowed: GET" },
		{ "PUT", "/", "allowed: GET" },
		{ "DELETE", "/machine-config", "allowed: GET, PUT, PATCH" },
		{ "HEAD", "/", "allowed: GET" },
		{ "get", "/", "allowed: GET" },
		{ "GET", "/boot-source", "allowed: PUT" },
		{ "PATCH", "/boot-source", "allowed: PUT" },
		{ "GET", "/snapshot/create", "allowed: PUT" },
		{ "POST", "/snapshot/load", "allowed: PUT" },
		{ "PUT", "/vm/config", "allowed: GET" },
		{ "PUT", "/vireo/stats", "allowed: GET" },
		{ "GET", "/vsock", "allowed: PUT" },
		{ "GET", "/network-interfaces/eth0", "allowed: PUT, PATCH" },
		{ "", "/", "allowed: GET" },
	};
	struct fake_vmm *f = *state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		expect_fault(f, cases[i].method, cases[i].path, "{}", 405, cases[i].allow);
}

static void firecracker_only_endpoints(void **state)
{
	static const char *const paths[] = {
		"/balloon", "/balloon/statistics", "/balloon/hinting/start", "/cpu-config",
		"/pmem/p0", "/logger", "/metrics", "/mmds", "/mmds/config", "/serial",
		"/hotplug/memory",
	};
	struct fake_vmm *f = *state;

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		expect_fault(f, "PUT", paths[i], "{}", 400, "not supported by vireo");
		expect_fault(f, "GET", paths[i], NULL, 400, "not supported by vireo");
		expect_fault(f, "PUT", paths[i], "not json at all", 400, "not supported");
	}
}

static void get_ignores_body(void **state)
{
	struct fake_vmm *f = *state;

	assert_int_equal(call(f, "GET", "/", "{ broken", NULL), 200);
	assert_int_equal(call(f, "GET", "/machine-config", "[]", NULL), 200);
}

static void null_arguments(void **state)
{
	struct fake_vmm *f = *state;
	char *resp = NULL;
	int status;

	assert_int_equal(api_handle_request(&fake_vmm_ops, f, NULL, "/", NULL, 0, &status,
					    &resp), 0);
	assert_int_equal(status, 400);
	free(resp);
	assert_int_equal(api_handle_request(&fake_vmm_ops, f, "GET", NULL, NULL, 0, &status,
					    &resp), 0);
	assert_int_equal(status, 400);
	free(resp);
	assert_int_equal(api_handle_request(&fake_vmm_ops, f, "PUT", "/vsock", NULL, 0, &status,
					    &resp), 0);
	assert_int_equal(status, 400);
	free(resp);
}

static void duplicate_and_null_fields(void **state)
{
	struct fake_vmm *f = *state;

	/* the last duplicate wins, as in most JSON parsers */
	expect_ok(f, "PUT", "/boot-source", "{\"kernel_image_path\": \"/a\", "
		  "\"kernel_image_path\": \"/b\"}");
	assert_string_equal(f->boot.kernel_image_path, "/b");
	expect_fault(f, "PUT", "/boot-source", "{\"kernel_image_path\": null}", 400,
		     "must be a string, not null");
	expect_fault(f, "PUT", "/machine-config", "{\"vcpu_count\": null, \"mem_size_mib\": 1}",
		     400, "must be an integer, not null");
	expect_fault(f, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 1e3}",
		     400, "must be an integer, not a number with a fraction");
	expect_fault(f, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": true}",
		     400, "must be an integer, not a boolean");
	expect_fault(f, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": {}}",
		     400, "must be an integer, not an object");
	expect_fault(f, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": "
		     "18446744073709551615}", 400, "too large");
	expect_fault(f, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": "
		     "-9223372036854775809}", 400, "mem_size_mib");
}

/* Error messages quote the request; the answer must stay valid UTF-8. */
static void fault_messages_are_utf8(void **state)
{
	struct fake_vmm *f = *state;
	char path[256], *resp = NULL;
	int status;

	/* the path's id is quoted up to 64 bytes: with one ASCII byte first,
	 * the cut falls inside a two-byte character */
	strcpy(path, "/drives/x");
	for (int i = 0; i < 40; i++)
		strcat(path, "\xc3\xa9");
	expect_fault(f, "PUT", path, "{\"drive_id\": \"a\", \"path_on_host\": \"/p\", "
		     "\"is_root_device\": true}", 400, "?\" in the path");
	assert_int_equal(api_handle_request(&fake_vmm_ops, f, "GET", "/\xff\xfe", NULL, 0, &status,
					    &resp), 0);
	assert_int_equal(status, 404);
	assert_null(strchr(resp, '\xff'));
	assert_non_null(strstr(resp, "/??"));
	free(resp);
}

static void long_unknown_field_name(void **state)
{
	struct fake_vmm *f = *state;
	char body[2048];

	strcpy(body, "{\"");
	memset(body + 2, 'k', 1500);
	strcpy(body + 1502, "\": 1}");
	expect_fault(f, "PUT", "/vsock", body, 400, "unknown field 'kkkk");
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(bad_json), T(nul_byte_in_body), T(deep_nesting), T(body_size_limit),
		T(unknown_paths), T(long_id), T(wrong_methods), T(firecracker_only_endpoints),
		T(get_ignores_body), T(null_arguments), T(duplicate_and_null_fields),
		T(long_unknown_field_name), T(fault_messages_are_utf8),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
