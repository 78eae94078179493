/* SPDX-License-Identifier: Apache-2.0 */
/* Every endpoint of api_handle_request: happy paths, statuses, shapes. */
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

/* Configure and boot the fake, as a client would. */
static void boot(struct fake_vmm *f)
{
	expect_ok(f, "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\"}");
	expect_ok(f, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
}

static void root_info(void **state)
{
	struct fake_vmm *f = *state;
	struct json_object *o;

	assert_int_equal(call(f, "GET", "/", NULL, &o), 200);
	assert_int_equal(json_object_object_length(o), 4);
	assert_string_equal(jstr(o, "id"), "fake-vm");
	assert_string_equal(jstr(o, "state"), "Not started");
	assert_string_equal(jstr(o, "vmm_version"), "0.1.0");
	assert_string_equal(jstr(o, "app_name"), "vireo");
	json_object_put(o);
	boot(f);
	assert_int_equal(call(f, "GET", "/", NULL, &o), 200);
	assert_string_equal(jstr(o, "state"), "Running");
	json_object_put(o);
	assert_int_equal(call(f, "GET", "/version", NULL, &o), 200);
	assert_string_equal(jstr(o, "firecracker_version"), "0.1.0");
	json_object_put(o);
}

static void machine_config(void **state)
{
	struct fake_vmm *f = *state;
	struct json_object *o;

	assert_int_equal(call(f, "GET", "/machine-config", NULL, &o), 200);
	assert_int_equal(jint(o, "vcpu_count"), 1);
	assert_int_equal(jint(o, "mem_size_mib"), 128);
	assert_false(jbool(o, "smt"));
	assert_false(jbool(o, "track_dirty_pages"));
	json_object_put(o);

	expect_ok(f, "PUT", "/machine-config",
		  "{\"vcpu_count\": 2, \"mem_size_mib\": 256, \"track_dirty_pages\": true, "
		  "\"smt\": false, \"cpu_template\": \"None\", \"huge_pages\": \"None\"}");
	assert_int_equal(f->mc.vcpu_count, 2);
	assert_int_equal(f->mc.mem_size_mib, 256);
	assert_true(f->mc.track_dirty_pages);

	/* PATCH keeps what it does not name; PUT resets it */
	expect_ok(f, "PATCH", "/machine-config", "{\"mem_size_mib\": 512}");
	assert_int_equal(f->mc.vcpu_count, 2);
	assert_int_equal(f->mc.mem_size_mib, 512);
	assert_true(f->mc.track_dirty_pages);
	expect_ok(f, "PUT", "/machine-config", "{\"vcpu_count\": 4, \"mem_size_mib\": 64}");
	assert_false(f->mc.track_dirty_pages);

	assert_int_equal(call(f, "GET", "/machine-config/", NULL, &o), 200);
	assert_int_equal(jint(o, "vcpu_count"), 4);
	json_object_put(o);
}

static void machine_config_bad(void **state)
{
	struct fake_vmm *f = *state;

	expect_fault(f, "PUT", "/machine-config", "{\"mem_size_mib\": 256}", 400,
		     "missing required field 'vcpu_count'");
	expect_fault(f, "PUT", "/machine-config", "{\"vcpu_count\": \"2\", \"mem_size_mib\": 1}",
		     400, "'vcpu_count' must be an integer, not a string");
	expect_fault(f, "PUT", "/machine-config", "{\"vcpu_count\": 1.5, \"mem_size_mib\": 1}",
		     400, "'vcpu_count' must be an integer");
	expect_fault(f, "PUT", "/machine-config", "{\"vcpu_count\": -1, \"mem_size_mib\": 1}",
		     400, "'vcpu_count' must not be negative");
	expect_fault(f, "PUT", "/machine-config",
		     "{\"vcpu_count\": 4294967296, \"mem_size_mib\": 1}", 400,
		     "'vcpu_count' is too large");
	expect_fault(f, "PUT", "/machine-config",
		     "{\"vcpu_count\": 1, \"mem_size_mib\": 99999999999999999999999}", 400,
		     "mem_size_mib");
	expect_fault(f, "PUT", "/machine-config",
		     "{\"vcpu_count\": 1, \"mem_size_mib\": 1, \"smt\": 1}", 400,
		     "'smt' must be a boolean");
	expect_fault(f, "PUT", "/machine-config",
		     "{\"vcpu_count\": 1, \"mem_size_mib\": 1, \"frobnicate\": true}", 400,
		     "unknown field 'frobnicate'");
	expect_fault(f, "PUT", "/machine-config",
		     "{\"vcpu_count\": 1, \"mem_size_mib\": 1, \"cpu_template\": \"T2\"}", 400,
		     "'cpu_template' is not supported by vireo");
	/* the VMM's own refusal, with its message */
	expect_fault(f, "PUT", "/machine-config", "{\"vcpu_count\": 0, \"mem_size_mib\": 1}",
		     400, "vcpu_count must be 1 to 32");
	expect_fault(f, "PATCH", "/machine-config", "{\"smt\": true}", 400,
		     "smt is not supported");
	expect_fault(f, "PATCH", "/machine-config", "{\"bogus\": 1}", 400,
		     "unknown field 'bogus'");
	assert_int_equal(f->mc.vcpu_count, 1);
	assert_int_equal(f->calls[FAKE_PUT_MC], 2);
}

static void boot_source(void **state)
{
	struct fake_vmm *f = *state;
	char *big = malloc(6000);

	expect_ok(f, "PUT", "/boot-source",
		  "{\"kernel_image_path\": \"/vmlinux\", \"initrd_path\": \"/initrd\", "
		  "\"boot_args\": \"console=ttyS0 reboot=k\"}");
	assert_string_equal(f->boot.kernel_image_path, "/vmlinux");
	assert_string_equal(f->boot.initrd_path, "/initrd");
	assert_string_equal(f->boot.boot_args, "console=ttyS0 reboot=k");
	expect_ok(f, "PUT", "/boot-source", "{\"kernel_image_path\": \"/k2\"}");
	assert_string_equal(f->boot.initrd_path, "");

	expect_fault(f, "PUT", "/boot-source", "{\"boot_args\": \"x\"}", 400,
		     "missing required field 'kernel_image_path'");
	expect_fault(f, "PUT", "/boot-source", "{\"kernel_image_path\": \"/a\\u0000b\"}", 400,
		     "must not contain a NUL");
	expect_fault(f, "PUT", "/boot-source", "{\"kernel_image_path\": 7}", 400,
		     "must be a string, not an integer");
	assert_non_null(big);
	strcpy(big, "{\"kernel_image_path\": \"");
	memset(big + strlen(big), 'a', 5000);
	strcpy(big + 23 + 5000, "\"}");
	expect_fault(f, "PUT", "/boot-source", big, 400,
		     "'kernel_image_path' is too long (5000 bytes; at most 4095)");
	free(big);
	assert_string_equal(f->boot.kernel_image_path, "/k2");
}

static void drives(void **state)
{
	struct fake_vmm *f = *state;

	expect_ok(f, "PUT", "/drives/rootfs",
		  "{\"drive_id\": \"rootfs\", \"path_on_host\": \"/img\", \"is_root_device\": true,"
		  " \"is_read_only\": false, \"cache_type\": \"Writeback\", \"io_engine\": \"Sync\","
		  " \"partuuid\": null, \"rate_limiter\": null}");
	expect_ok(f, "PUT", "/drives/data_2",
		  "{\"drive_id\": \"data_2\", \"path_on_host\": \"/d\", \"is_root_device\": false,"
		  " \"is_read_only\": true}");
	assert_int_equal(f->ndrives, 2);
	assert_string_equal(f->drives[0].cache_type, "Writeback");
	assert_true(f->drives[0].is_root_device);
	assert_string_equal(f->drives[1].cache_type, "Unsafe");
	assert_true(f->drives[1].is_read_only);

	expect_fault(f, "PUT", "/drives/rootfs",
		     "{\"drive_id\": \"other\", \"path_on_host\": \"/i\", \"is_root_device\": true}",
		     400, "does not match \"rootfs\" in the path");
	expect_fault(f, "PUT", "/drives/a-b",
		     "{\"drive_id\": \"a-b\", \"path_on_host\": \"/i\", \"is_root_device\": true}",
		     400, "invalid drive_id 'a-b'");
	expect_fault(f, "PUT", "/drives/x",
		     "{\"drive_id\": \"x\", \"path_on_host\": \"/i\"}", 400,
		     "missing required field 'is_root_device'");
	expect_fault(f, "PUT", "/drives/x",
		     "{\"drive_id\": \"x\", \"path_on_host\": \"/i\", \"is_root_device\": true,"
		     " \"cache_type\": \"Bogus\"}", 400, "'cache_type' has the unknown value");
	expect_fault(f, "PUT", "/drives/x",
		     "{\"drive_id\": \"x\", \"path_on_host\": \"/i\", \"is_root_device\": true,"
		     " \"io_engine\": \"Async\"}", 400, "'io_engine' is not supported");
	expect_fault(f, "PUT", "/drives/x",
		     "{\"drive_id\": \"x\", \"socket\": \"/s\", \"is_root_device\": true}", 400,
		     "'socket' is not supported");
	expect_fault(f, "PATCH", "/drives/rootfs", "{\"drive_id\": \"rootfs\"}", 400,
		     "not supported by vireo");
	expect_fault(f, "GET", "/drives/rootfs", NULL, 405, "allowed: PUT, PATCH");
	assert_int_equal(f->ndrives, 2);
	boot(f);
	expect_fault(f, "PUT", "/drives/late",
		     "{\"drive_id\": \"late\", \"path_on_host\": \"/i\", \"is_root_device\": false}",
		     400, "not allowed after the instance started");
}

static void network(void **state)
{
	struct fake_vmm *f = *state;

	expect_ok(f, "PUT", "/network-interfaces/eth0",
		  "{\"iface_id\": \"eth0\", \"host_dev_name\": \"tap0\", "
		  "\"guest_mac\": \"06:00:AC:10:00:02\"}");
	assert_int_equal(f->nnets, 1);
	assert_string_equal(f->nets[0].host_dev_name, "tap0");
	assert_string_equal(f->nets[0].guest_mac, "06:00:AC:10:00:02");
	expect_ok(f, "PUT", "/network-interfaces/eth1",
		  "{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap1\"}");
	expect_fault(f, "PUT", "/network-interfaces/eth1",
		     "{\"iface_id\": \"eth2\", \"host_dev_name\": \"tap1\"}", 400, "does not match");
	expect_fault(f, "PUT", "/network-interfaces/eth1",
		     "{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap1\", \"guest_mac\": "
		     "\"06:00:AC:10:00\"}", 400, "invalid 'guest_mac'");
	expect_fault(f, "PUT", "/network-interfaces/eth1",
		     "{\"iface_id\": \"eth1\", \"host_dev_name\": \"tap1\", \"guest_mac\": "
		     "\"06:00:AC:10:00:0g\"}", 400, "invalid 'guest_mac'");
	expect_fault(f, "PUT", "/network-interfaces/eth1", "{\"iface_id\": \"eth1\"}", 400,
		     "missing required field 'host_dev_name'");
	expect_fault(f, "PUT", "/network-interfaces/eth1",
		     "{\"iface_id\": \"eth1\", \"host_dev_name\": \"t\", \"mtu\": 1500}", 400,
		     "'mtu' is not supported");
	assert_int_equal(f->nnets, 2);
}

static void vsock(void **state)
{
	struct fake_vmm *f = *state;

	expect_ok(f, "PUT", "/vsock",
		  "{\"guest_cid\": 3, \"uds_path\": \"/tmp/v.sock\", \"vsock_id\": \"vsock0\"}");
	assert_true(f->has_vsock);
	assert_int_equal(f->vsock.guest_cid, 3);
	assert_string_equal(f->vsock.uds_path, "/tmp/v.sock");
	expect_fault(f, "PUT", "/vsock", "{\"guest_cid\": 2, \"uds_path\": \"/v\"}", 400,
		     "guest_cid must be at least 3");
	expect_fault(f, "PUT", "/vsock", "{\"guest_cid\": 3}", 400,
		     "missing required field 'uds_path'");
	expect_fault(f, "PUT", "/vsock", "{\"guest_cid\": 3, \"uds_path\": \"/v\", "
		     "\"vsock_id\": 1}", 400, "'vsock_id' must be a string");
}

static void entropy(void **state)
{
	struct fake_vmm *f = *state;

	expect_fault(f, "PUT", "/entropy", "{\"rate_limiter\": {\"bandwidth\": {\"size\": 1, "
		     "\"refill_time\": 1}}}", 400, "'rate_limiter' is not supported by vireo");
	expect_fault(f, "PUT", "/entropy", "{\"rate\": 1}", 400, "unknown field 'rate'");
	expect_fault(f, "PUT", "/entropy", "[]", 400, "");
	expect_fault(f, "GET", "/entropy", NULL, 405, "PUT");
	assert_false(f->has_entropy);
	expect_ok(f, "PUT", "/entropy", "{}");
	assert_true(f->has_entropy);
	expect_ok(f, "PUT", "/entropy", "{\"rate_limiter\": null}");
	expect_ok(f, "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\"}");
	expect_ok(f, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}");
	expect_fault(f, "PUT", "/entropy", "{}", 400, "not allowed after the instance started");
}

static void actions(void **state)
{
	struct fake_vmm *f = *state;

	expect_fault(f, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400,
		     "no boot source");
	expect_fault(f, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", 400,
		     "needs a running instance");
	expect_ok(f, "PUT", "/actions", "{\"action_type\": \"FlushMetrics\"}");
	boot(f);
	assert_int_equal(f->state, VMM_RUNNING);
	expect_fault(f, "PUT", "/actions", "{\"action_type\": \"InstanceStart\"}", 400,
		     "already started");
	expect_ok(f, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}");
	assert_int_equal(f->calls[FAKE_CAD], 2);
	expect_fault(f, "PUT", "/actions", "{\"action_type\": \"Reboot\"}", 400,
		     "'action_type' has the unknown value \"Reboot\"");
	expect_fault(f, "PUT", "/actions", "{}", 400, "missing required field 'action_type'");
	expect_fault(f, "PUT", "/actions", "{\"action_type\": \"InstanceStart\", \"x\": 1}", 400,
		     "unknown field 'x'");
	expect_fault(f, "GET", "/actions", NULL, 405, "allowed: PUT");
}

static void pause_resume(void **state)
{
	struct fake_vmm *f = *state;
	struct json_object *o;

	expect_fault(f, "PATCH", "/vm", "{\"state\": \"Paused\"}", 400, "needs a running");
	boot(f);
	expect_ok(f, "PATCH", "/vm", "{\"state\": \"Paused\"}");
	assert_int_equal(f->state, VMM_PAUSED);
	assert_int_equal(call(f, "GET", "/", NULL, &o), 200);
	assert_string_equal(jstr(o, "state"), "Paused");
	json_object_put(o);
	expect_fault(f, "PATCH", "/vm", "{\"state\": \"Paused\"}", 400, "needs a running");
	expect_ok(f, "PATCH", "/vm", "{\"state\": \"Resumed\"}");
	assert_int_equal(f->state, VMM_RUNNING);
	expect_fault(f, "PATCH", "/vm", "{\"state\": \"Stopped\"}", 400, "unknown value");
	expect_fault(f, "PATCH", "/vm", "{\"state\": true}", 400, "must be a string");
	expect_fault(f, "PUT", "/vm", "{\"state\": \"Paused\"}", 405, "allowed: PATCH");
}

static void snapshot_create(void **state)
{
	struct fake_vmm *f = *state;
	const char *full = "{\"snapshot_type\": \"Full\", \"snapshot_path\": \"/s\", "
			   "\"mem_file_path\": \"/m\"}";

	boot(f);
	expect_fault(f, "PUT", "/snapshot/create", full, 400, "needs a paused instance");
	expect_ok(f, "PATCH", "/vm", "{\"state\": \"Paused\"}");
	expect_ok(f, "PUT", "/snapshot/create", full);
	assert_int_equal(f->last_create.type, VMM_SNAPSHOT_FULL);
	assert_string_equal(f->last_create.snapshot_path, "/s");
	assert_string_equal(f->last_create.mem_file_path, "/m");
	expect_ok(f, "PUT", "/snapshot/create", "{\"snapshot_path\": \"/s2\", "
		  "\"mem_file_path\": \"/m2\"}");
	assert_int_equal(f->last_create.type, VMM_SNAPSHOT_FULL);
	expect_fault(f, "PUT", "/snapshot/create", "{\"snapshot_type\": \"Diff\", "
		     "\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\"}", 400,
		     "diff snapshots need track_dirty_pages");
	expect_fault(f, "PUT", "/snapshot/create", "{\"snapshot_path\": \"/s\"}", 400,
		     "missing required field 'mem_file_path'");
	expect_fault(f, "PUT", "/snapshot/create", "{\"snapshot_type\": \"Half\", "
		     "\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\"}", 400, "unknown value");
	expect_fault(f, "PUT", "/snapshot/create", "{\"version\": \"1.0\", "
		     "\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\"}", 400,
		     "unknown field 'version'");
}

static void snapshot_create_diff(void **state)
{
	struct fake_vmm *f = *state;

	expect_ok(f, "PUT", "/machine-config", "{\"vcpu_count\": 1, \"mem_size_mib\": 64, "
		  "\"track_dirty_pages\": true}");
	boot(f);
	expect_ok(f, "PATCH", "/vm", "{\"state\": \"Paused\"}");
	expect_ok(f, "PUT", "/snapshot/create", "{\"snapshot_type\": \"Diff\", "
		  "\"snapshot_path\": \"/s\", \"mem_file_path\": \"/m\"}");
	assert_int_equal(f->last_create.type, VMM_SNAPSHOT_DIFF);
}

static void snapshot_load(void **state)
{
	struct fake_vmm *f = *state;

	expect_fault(f, "PUT", "/snapshot/load", "{\"snapshot_path\": \"/s\", \"mem_file_path\":"
		     " \"/m\", \"mem_backend\": {\"backend_type\": \"File\", \"backend_path\": \"/m\"}}",
		     400, "not both");
	expect_fault(f, "PUT", "/snapshot/load", "{\"snapshot_path\": \"/s\"}", 400,
		     "missing 'mem_backend'");
	expect_fault(f, "PUT", "/snapshot/load", "{\"snapshot_path\": \"/s\", \"mem_backend\": "
		     "{\"backend_type\": \"Uffd\", \"backend_path\": \"/u\"}}", 400,
		     "\"Uffd\" is not supported");
	expect_fault(f, "PUT", "/snapshot/load", "{\"snapshot_path\": \"/s\", \"mem_backend\": "
		     "{\"backend_type\": \"File\"}}", 400,
		     "mem_backend: missing required field 'backend_path'");
	expect_fault(f, "PUT", "/snapshot/load", "{\"snapshot_path\": \"/s\", \"mem_backend\": "
		     "{\"backend_type\": \"File\", \"backend_path\": \"/m\", \"x\": 0}}", 400,
		     "mem_backend: unknown field 'x'");
	expect_fault(f, "PUT", "/snapshot/load", "{\"snapshot_path\": \"/s\", \"mem_backend\": "
		     "\"/m\"}", 400, "mem_backend must be a JSON object");
	expect_fault(f, "PUT", "/snapshot/load", "{\"snapshot_path\": \"/s\", \"mem_file_path\": "
		     "\"/m\", \"clock_realtime\": true}", 400, "'clock_realtime' is not supported");
	assert_int_equal(f->calls[FAKE_SNAP_LOAD], 0);

	expect_ok(f, "PUT", "/snapshot/load", "{\"snapshot_path\": \"/s\", \"mem_backend\": "
		  "{\"backend_type\": \"File\", \"backend_path\": \"/mem\"}, "
		  "\"enable_diff_snapshots\": true, \"resume_vm\": false, \"huge_pages\": \"None\"}");
	assert_string_equal(f->last_load.snapshot_path, "/s");
	assert_string_equal(f->last_load.mem_file_path, "/mem");
	assert_true(f->last_load.enable_diff_snapshots);
	assert_false(f->last_load.resume_vm);
	assert_int_equal(f->state, VMM_PAUSED);
	expect_fault(f, "PUT", "/snapshot/load", "{\"snapshot_path\": \"/s\", "
		     "\"mem_file_path\": \"/m\"}", 400, "needs a fresh instance");
}

static void snapshot_load_legacy(void **state)
{
	struct fake_vmm *f = *state;

	expect_ok(f, "PUT", "/snapshot/load", "{\"snapshot_path\": \"/s\", \"mem_file_path\": "
		  "\"/legacy\", \"track_dirty_pages\": true, \"resume_vm\": true}");
	assert_string_equal(f->last_load.mem_file_path, "/legacy");
	assert_true(f->last_load.enable_diff_snapshots);
	assert_int_equal(f->state, VMM_RUNNING);
}

static void vm_config(void **state)
{
	struct fake_vmm *f = *state;
	struct json_object *o, *mc, *bs, *dr, *d0;

	expect_ok(f, "PUT", "/machine-config", "{\"vcpu_count\": 2, \"mem_size_mib\": 256}");
	expect_ok(f, "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\", \"boot_args\": \"q\"}");
	expect_ok(f, "PUT", "/drives/root", "{\"drive_id\": \"root\", \"path_on_host\": \"/r\", "
		  "\"is_root_device\": true, \"is_read_only\": true}");
	assert_int_equal(call(f, "GET", "/vm/config", NULL, &o), 200);
	assert_true(json_object_object_get_ex(o, "machine-config", &mc));
	assert_int_equal(jint(mc, "vcpu_count"), 2);
	assert_int_equal(jint(mc, "mem_size_mib"), 256);
	assert_true(json_object_object_get_ex(o, "boot-source", &bs));
	assert_string_equal(jstr(bs, "kernel_image_path"), "/k");
	assert_string_equal(jstr(bs, "boot_args"), "q");
	assert_false(json_object_object_get_ex(bs, "initrd_path", NULL));
	assert_true(json_object_object_get_ex(o, "drives", &dr));
	assert_int_equal(json_object_array_length(dr), 1);
	d0 = json_object_array_get_idx(dr, 0);
	assert_string_equal(jstr(d0, "drive_id"), "root");
	assert_string_equal(jstr(d0, "path_on_host"), "/r");
	assert_true(jbool(d0, "is_root_device"));
	assert_true(jbool(d0, "is_read_only"));
	assert_string_equal(jstr(d0, "cache_type"), "Unsafe");
	json_object_put(o);
}

static void stats_and_clone(void **state)
{
	struct fake_vmm *f = *state;
	struct json_object *o;

	assert_int_equal(call(f, "GET", "/vireo/stats", NULL, &o), 200);
	assert_int_equal(jint(o, "uptime_ms"), 1234);
	assert_int_equal(jint(o, "vcpu_exits"), 5678);
	assert_int_equal(jint(o, "guest_memory_bytes"), 128 << 20);
	json_object_put(o);
	expect_fault(f, "PUT", "/vireo/clone", "{}", 400, "not supported by this VMM");
	expect_fault(f, "GET", "/vireo/clone", NULL, 405, "allowed: PUT");
}

static void vmm_failures_map_to_status(void **state)
{
	struct fake_vmm *f = *state;
	static const struct { int code, status; } map[] = {
		{ EINVAL, 400 }, { ENOENT, 400 }, { EEXIST, 400 }, { EBUSY, 400 },
		{ EPERM, 400 }, { ENOTSUP, 400 }, { EIO, 500 }, { ENOMEM, 500 }, { ENOSPC, 500 },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		f->fail_next = map[i].code;
		expect_fault(f, "PUT", "/boot-source", "{\"kernel_image_path\": \"/k\"}",
			     map[i].status, "injected failure");
		f->fail_next = map[i].code;
		expect_fault(f, "GET", "/machine-config", NULL, map[i].status, "injected");
	}
	f->fail_next = EIO;
	expect_fault(f, "GET", "/vm/config", NULL, 500, "injected");
	f->fail_next = EIO;
	expect_fault(f, "GET", "/vireo/stats", NULL, 500, "injected");
}

static void missing_ops(void **state)
{
	static const struct vmm_ctl_ops none = { 0 };
	const char *mc = "{\"vcpu_count\": 1, \"mem_size_mib\": 1}";
	int status;
	char *body = NULL;

	(void)state;
	assert_int_equal(api_handle_request(&none, NULL, "GET", "/", NULL, 0, &status, &body), 0);
	assert_int_equal(status, 200);
	assert_non_null(strstr(body, "\"app_name\":\"vireo\""));
	assert_non_null(strstr(body, "\"state\":\"Not started\""));
	free(body);
	assert_int_equal(api_handle_request(&none, NULL, "PUT", "/machine-config", mc,
					    strlen(mc), &status, &body), 0);
	assert_int_equal(status, 400);
	assert_non_null(strstr(body, "not supported by this VMM"));
	free(body);
	assert_int_equal(api_handle_request(&none, NULL, "GET", "/vm/config", NULL, 0, &status,
					    &body), 0);
	assert_int_equal(status, 400);
	free(body);
	/* no ops table at all: the same as an empty one */
	assert_int_equal(api_handle_request(NULL, NULL, "PATCH", "/vm", "{\"state\": \"Paused\"}",
					    19, &status, &body), 0);
	assert_int_equal(status, 400);
	assert_non_null(strstr(body, "pausing is not supported by this VMM"));
	free(body);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(root_info), T(machine_config), T(machine_config_bad), T(boot_source), T(drives),
		T(network), T(vsock), T(entropy), T(actions), T(pause_resume), T(snapshot_create),
		T(snapshot_create_diff), T(snapshot_load), T(snapshot_load_legacy), T(vm_config),
		T(stats_and_clone), T(vmm_failures_map_to_status), T(missing_ops),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
