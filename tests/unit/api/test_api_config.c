/* SPDX-License-Identifier: Apache-2.0 */
/* api_load_config_file: Firecracker's --config-file shape, through the ops. */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "helpers.h"

struct cfg_test {
	struct fake_vmm f;
	char path[64];
};

static int setup(void **state)
{
	struct cfg_test *t = calloc(1, sizeof(*t));
	int fd;

	if (!t)
		return -1;
	fake_vmm_init(&t->f);
	strcpy(t->path, "/tmp/vireo-api-cfg-XXXXXX");
	fd = mkstemp(t->path);
	if (fd < 0)
		return -1;
	close(fd);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct cfg_test *t = *state;

	unlink(t->path);
	free(t);
	return 0;
}

static void write_file(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	assert_int_equal(fwrite(text, 1, strlen(text), fp), strlen(text));
	assert_int_equal(fclose(fp), 0);
}

static int load(struct cfg_test *t, const char *text, struct verr *err)
{
	write_file(t->path, text);
	return api_load_config_file(t->path, &fake_vmm_ops, &t->f, err);
}

static void full_config(void **state)
{
	struct cfg_test *t = *state;
	struct verr err = { 0 };

	assert_int_equal(load(t,
		"{\n"
		"  \"boot-source\": {\"kernel_image_path\": \"/vmlinux\", \"boot_args\": \"console=ttyS0\"},\n"
		"  \"drives\": [\n"
		"    {\"drive_id\": \"rootfs\", \"path_on_host\": \"/r.ext4\", \"is_root_device\": true,\n"
		"     \"is_read_only\": false},\n"
		"    {\"drive_id\": \"scratch\", \"path_on_host\": \"/s.img\", \"is_root_device\": false}\n"
		"  ],\n"
		"  \"machine-config\": {\"vcpu_count\": 2, \"mem_size_mib\": 1024, \"smt\": false},\n"
		"  \"network-interfaces\": [{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\"}],\n"
		"  \"vsock\": {\"guest_cid\": 3, \"uds_path\": \"/v.sock\"},\n"
		"  \"entropy\": {},\n"
		"  \"logger\": null, \"metrics\": null, \"balloon\": null\n"
		"}\n", &err), 0);
	assert_int_equal(t->f.mc.vcpu_count, 2);
	assert_int_equal(t->f.mc.mem_size_mib, 1024);
	assert_string_equal(t->f.boot.kernel_image_path, "/vmlinux");
	assert_int_equal(t->f.ndrives, 2);
	assert_string_equal(t->f.drives[1].drive_id, "scratch");
	assert_int_equal(t->f.nnets, 1);
	assert_true(t->f.has_vsock);
	assert_true(t->f.has_entropy);
	assert_int_equal(t->f.state, VMM_NOT_STARTED);
}

static void minimal_and_empty(void **state)
{
	struct cfg_test *t = *state;
	struct verr err = { 0 };

	assert_int_equal(load(t, "{}", &err), 0);
	assert_int_equal(load(t, "{\"boot-source\": {\"kernel_image_path\": \"/k\"}, "
			      "\"drives\": [], \"vsock\": null}", &err), 0);
	assert_string_equal(t->f.boot.kernel_image_path, "/k");
	assert_false(t->f.has_vsock);
}

static void expect_load_error(struct cfg_test *t, const char *text, int code,
			      const char *needle)
{
	struct verr err = { 0 };
	int rc = load(t, text, &err);

	if (rc != -code || !strstr(err.msg, needle) || !strstr(err.msg, t->path))
		fail_msg("config %s: got %d '%s', wanted %d with '%s'", text, rc, err.msg,
			 -code, needle);
}

static void refusals(void **state)
{
	struct cfg_test *t = *state;

	expect_load_error(t, "", EINVAL, "the body is empty");
	expect_load_error(t, "{", EINVAL, "invalid JSON");
	expect_load_error(t, "[]", EINVAL, "configuration must be a JSON object");
	expect_load_error(t, "{\"boot_source\": {}}", EINVAL, "unknown field 'boot_source'");
	expect_load_error(t, "{\"drives\": {}}", EINVAL, "'drives' must be an array");
	expect_load_error(t, "{\"network-interfaces\": 1}", EINVAL,
			  "'network-interfaces' must be an array");
	expect_load_error(t, "{\"drives\": [{\"drive_id\": \"a\", \"path_on_host\": \"/a\", "
			  "\"is_root_device\": true}, {\"drive_id\": \"b\"}]}", EINVAL,
			  "drives[1]: drive: missing required field 'path_on_host'");
	expect_load_error(t, "{\"network-interfaces\": [{\"iface_id\": \"e\", "
			  "\"host_dev_name\": \"t\", \"bogus\": 1}]}", EINVAL,
			  "network-interfaces[0]: network interface: unknown field 'bogus'");
	expect_load_error(t, "{\"logger\": {\"level\": \"Info\"}}", ENOTSUP,
			  "'logger' is not supported by vireo");
	expect_load_error(t, "{\"machine-config\": {\"vcpu_count\": 99, \"mem_size_mib\": 1}}",
			  EINVAL, "vcpu_count must be 1 to 32");
	expect_load_error(t, "{\"vsock\": {\"guest_cid\": 1, \"uds_path\": \"/v\"}}", EINVAL,
			  "guest_cid must be at least 3");
	expect_load_error(t, "{\"entropy\": {\"rate_limiter\": {}}}", ENOTSUP,
			  "'rate_limiter' is not supported by vireo");
}

static void file_errors(void **state)
{
	struct cfg_test *t = *state;
	struct verr err = { 0 };
	char *big;
	FILE *fp;

	assert_int_equal(api_load_config_file("/nonexistent/vireo.json", &fake_vmm_ops, &t->f,
					      &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent/vireo.json"));
	verr_clear(&err);
	assert_true(api_load_config_file("/tmp", &fake_vmm_ops, &t->f, &err) < 0);
	assert_non_null(strstr(err.msg, "not a regular file"));
	verr_clear(&err);
	big = malloc(API_MAX_CONFIG_FILE + 2);
	assert_non_null(big);
	memset(big, ' ', API_MAX_CONFIG_FILE + 1);
	big[0] = '{';
	big[API_MAX_CONFIG_FILE - 1] = '}';
	fp = fopen(t->path, "w");
	assert_non_null(fp);
	assert_int_equal(fwrite(big, 1, API_MAX_CONFIG_FILE + 1, fp), API_MAX_CONFIG_FILE + 1);
	fclose(fp);
	assert_int_equal(api_load_config_file(t->path, &fake_vmm_ops, &t->f, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "at most"));
	free(big);
}

/* GET /vm/config's answer is a valid config file for a new instance. */
static void vm_config_round_trip(void **state)
{
	struct cfg_test *t = *state;
	struct fake_vmm *fresh = malloc(sizeof(*fresh));
	struct verr err = { 0 };
	char *resp = NULL;
	int status;

	assert_non_null(fresh);
	expect_ok(&t->f, "PUT", "/machine-config", "{\"vcpu_count\": 3, \"mem_size_mib\": 96, "
		  "\"track_dirty_pages\": true}");
	expect_ok(&t->f, "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\", "
		  "\"initrd_path\": \"/i\", \"boot_args\": \"a b\"}");
	expect_ok(&t->f, "PUT", "/drives/d1", "{\"drive_id\": \"d1\", \"path_on_host\": \"/d\", "
		  "\"is_root_device\": true, \"cache_type\": \"Writeback\"}");
	assert_int_equal(api_handle_request(&fake_vmm_ops, &t->f, "GET", "/vm/config", NULL, 0,
					    &status, &resp), 0);
	assert_int_equal(status, 200);
	write_file(t->path, resp);
	free(resp);
	fake_vmm_init(fresh);
	assert_int_equal(api_load_config_file(t->path, &fake_vmm_ops, fresh, &err), 0);
	assert_int_equal(fresh->mc.vcpu_count, 3);
	assert_int_equal(fresh->mc.mem_size_mib, 96);
	assert_true(fresh->mc.track_dirty_pages);
	assert_memory_equal(&fresh->boot, &t->f.boot, sizeof(fresh->boot));
	assert_int_equal(fresh->ndrives, 1);
	assert_memory_equal(&fresh->drives[0], &t->f.drives[0], sizeof(fresh->drives[0]));
	free(fresh);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(full_config), T(minimal_and_empty), T(refusals), T(file_errors),
		T(vm_config_round_trip),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
