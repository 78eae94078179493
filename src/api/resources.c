/* SPDX-License-Identifier: Apache-2.0 */
#include "api/resources.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "api/fields.h"

static const char *const none_only[] = { "None", NULL };
static const char *const sync_only[] = { "Sync", NULL };
static const char *const cache_types[] = { "Unsafe", "Writeback", NULL };

int api_check_id(const char *id, const char *what, struct verr *err)
{
	size_t len = strlen(id);

	if (len == 0 || len > 64)
		return verr_set(err, EINVAL, "invalid %s '%.64s': 1 to 64 characters expected",
				what, id);
	for (size_t i = 0; i < len; i++)
		if (!isalnum((unsigned char)id[i]) && id[i] != '_')
			return verr_set(err, EINVAL, "invalid %s '%.64s': only letters, digits "
					"and '_' are allowed", what, id);
	return 0;
}

static int check_path_id(const char *body_id, const char *path_id, const char *name,
			 struct verr *err)
{
	if (path_id && strcmp(body_id, path_id) != 0)
		return verr_set(err, EINVAL, "'%s' \"%.64s\" in the body does not match \"%.64s\" "
				"in the path", name, body_id, path_id);
	return api_check_id(body_id, name, err);
}

int api_parse_machine_config(struct json_object *o, struct vmm_machine_config *mc, bool partial,
			     struct verr *err)
{
	static const struct api_field f[] = {
		AF_UINT_FIELD("vcpu_count", struct vmm_machine_config, vcpu_count, true),
		AF_UINT_FIELD("mem_size_mib", struct vmm_machine_config, mem_size_mib, true),
		AF_BOOL_FIELD("smt", struct vmm_machine_config, smt, false),
		AF_BOOL_FIELD("track_dirty_pages", struct vmm_machine_config, track_dirty_pages,
			      false),
		AF_UNSUPPORTED_FIELD("cpu_template", none_only),
		AF_UNSUPPORTED_FIELD("huge_pages", none_only),
	};

	if (!partial) /* PUT resets what it does not name, as Firecracker does */
		*mc = (struct vmm_machine_config){ 0 };
	return api_fields_parse(o, "machine-config", f, AF_COUNT(f), mc, partial, NULL, err);
}

int api_parse_boot_source(struct json_object *o, struct vmm_boot_source *b, struct verr *err)
{
	static const struct api_field f[] = {
		AF_STR_FIELD("kernel_image_path", struct vmm_boot_source, kernel_image_path, true),
		AF_STR_FIELD("initrd_path", struct vmm_boot_source, initrd_path, false),
		AF_STR_FIELD("boot_args", struct vmm_boot_source, boot_args, false),
	};

	*b = (struct vmm_boot_source){ 0 };
	return api_fields_parse(o, "boot-source", f, AF_COUNT(f), b, false, NULL, err);
}

int api_parse_drive(struct json_object *o, const char *path_id, struct vmm_drive *d,
		    struct verr *err)
{
	static const struct api_field f[] = {
		AF_STR_FIELD("drive_id", struct vmm_drive, drive_id, true),
		/* required: vireo has no vhost-user-block drives ("socket") */
		AF_STR_FIELD("path_on_host", struct vmm_drive, path_on_host, true),
		AF_BOOL_FIELD("is_root_device", struct vmm_drive, is_root_device, true),
		AF_BOOL_FIELD("is_read_only", struct vmm_drive, is_read_only, false),
		AF_ENUM_FIELD("cache_type", struct vmm_drive, cache_type, false, cache_types),
		AF_UNSUPPORTED_FIELD("partuuid", NULL),
		AF_UNSUPPORTED_FIELD("rate_limiter", NULL),
		AF_UNSUPPORTED_FIELD("io_engine", sync_only),
		AF_UNSUPPORTED_FIELD("socket", NULL),
	};
	int rc;

	*d = (struct vmm_drive){ .cache_type = "Unsafe" };
	rc = api_fields_parse(o, "drive", f, AF_COUNT(f), d, false, NULL, err);
	if (rc == 0)
		rc = check_path_id(d->drive_id, path_id, "drive_id", err);
	return rc;
}

static int check_mac(const char *mac, struct verr *err)
{
	if (!mac[0])
		return 0;
	for (size_t i = 0; i < 17; i++) {
		bool colon = i % 3 == 2;
		if (colon ? mac[i] != ':' : !isxdigit((unsigned char)mac[i]))
			return verr_set(err, EINVAL, "network interface: invalid 'guest_mac' "
					"\"%s\" (expected xx:xx:xx:xx:xx:xx)", mac);
	}
	if (mac[17])
		return verr_set(err, EINVAL, "network interface: invalid 'guest_mac' \"%s\"", mac);
	return 0;
}

int api_parse_net(struct json_object *o, const char *path_id, struct vmm_net *n,
		  struct verr *err)
{
	static const struct api_field f[] = {
		AF_STR_FIELD("iface_id", struct vmm_net, iface_id, true),
		AF_STR_FIELD("host_dev_name", struct vmm_net, host_dev_name, true),
		AF_STR_FIELD("guest_mac", struct vmm_net, guest_mac, false),
		AF_UNSUPPORTED_FIELD("mtu", NULL),
		AF_UNSUPPORTED_FIELD("rx_rate_limiter", NULL),
		AF_UNSUPPORTED_FIELD("tx_rate_limiter", NULL),
	};
	int rc;

	*n = (struct vmm_net){ 0 };
	rc = api_fields_parse(o, "network interface", f, AF_COUNT(f), n, false, NULL, err);
	if (rc == 0)
		rc = check_path_id(n->iface_id, path_id, "iface_id", err);
	if (rc == 0)
		rc = check_mac(n->guest_mac, err);
	return rc;
}

struct vsock_req {
	struct vmm_vsock v;
	char vsock_id[65]; /* deprecated by Firecracker: accepted, unused */
};

int api_parse_vsock(struct json_object *o, struct vmm_vsock *v, struct verr *err)
{
	static const struct api_field f[] = {
		AF_UINT_FIELD("guest_cid", struct vsock_req, v.guest_cid, true),
		AF_STR_FIELD("uds_path", struct vsock_req, v.uds_path, true),
		AF_STR_FIELD("vsock_id", struct vsock_req, vsock_id, false),
	};
	struct vsock_req r = { 0 };
	int rc = api_fields_parse(o, "vsock", f, AF_COUNT(f), &r, false, NULL, err);

	*v = r.v;
	return rc;
}

int api_parse_entropy(struct json_object *o, struct verr *err)
{
	/* EntropyDevice has only a rate limiter, which vireo does not offer:
	 * the device draws from getrandom as fast as the guest asks. */
	static const struct api_field f[] = {
		AF_UNSUPPORTED_FIELD("rate_limiter", NULL),
	};

	char none;

	return api_fields_parse(o, "entropy", f, AF_COUNT(f), &none, false, NULL, err);
}

int api_parse_clone(struct json_object *o, struct vmm_clone_request *r, struct verr *err)
{
	static const struct api_field f[] = {
		AF_UINT_FIELD("count", struct vmm_clone_request, count, true),
		AF_STR_FIELD("dir", struct vmm_clone_request, dir, true),
	};
	int rc = api_fields_parse(o, "clone", f, AF_COUNT(f), r, false, NULL, err);

	if (rc == 0 && (r->count == 0 || r->count > VMM_MAX_CLONES))
		rc = verr_set(err, EINVAL, "clone: count must be between 1 and %d", VMM_MAX_CLONES);
	if (rc == 0 && r->dir[0] != '/')
		rc = verr_set(err, EINVAL, "clone: dir must be an absolute path");
	return rc;
}

struct snap_create_req {
	struct vmm_snapshot_create s;
	char snapshot_type[8];
};

int api_parse_snapshot_create(struct json_object *o, struct vmm_snapshot_create *s,
			      struct verr *err)
{
	static const char *const types[] = { "Full", "Diff", NULL };
	static const struct api_field f[] = {
		AF_STR_FIELD("snapshot_path", struct snap_create_req, s.snapshot_path, true),
		AF_STR_FIELD("mem_file_path", struct snap_create_req, s.mem_file_path, true),
		AF_ENUM_FIELD("snapshot_type", struct snap_create_req, snapshot_type, false, types),
	};
	struct snap_create_req r = { .snapshot_type = "Full" };
	int rc = api_fields_parse(o, "snapshot/create", f, AF_COUNT(f), &r, false, NULL, err);

	r.s.type = strcmp(r.snapshot_type, "Diff") == 0 ? VMM_SNAPSHOT_DIFF : VMM_SNAPSHOT_FULL;
	*s = r.s;
	return rc;
}

struct snap_load_req {
	struct vmm_snapshot_load s;
	char legacy_mem[sizeof(((struct vmm_snapshot_load *)0)->mem_file_path)];
	bool track_dirty_pages;
};

struct mem_backend {
	char backend_type[8];
	char backend_path[sizeof(((struct vmm_snapshot_load *)0)->mem_file_path)];
};

static int parse_mem_backend(struct json_object *v, void *target, struct verr *err)
{
	static const char *const types[] = { "File", "Uffd", NULL };
	static const struct api_field f[] = {
		AF_ENUM_FIELD("backend_type", struct mem_backend, backend_type, true, types),
		AF_STR_FIELD("backend_path", struct mem_backend, backend_path, true),
	};
	struct snap_load_req *r = target;
	struct mem_backend mb = { .backend_type = "" };
	int rc = api_fields_parse(v, "mem_backend", f, AF_COUNT(f), &mb, false, NULL, err);

	if (rc < 0)
		return rc;
	if (strcmp(mb.backend_type, "File") != 0)
		return verr_set(err, ENOTSUP, "mem_backend: 'backend_type' \"%s\" is not "
				"supported by vireo (only \"File\" is)", mb.backend_type);
	memcpy(r->s.mem_file_path, mb.backend_path, sizeof(mb.backend_path));
	return 0;
}

int api_parse_snapshot_load(struct json_object *o, struct vmm_snapshot_load *s,
			    struct verr *err)
{
	static const char *const huge[] = { "Snapshot", "None", NULL };
	static const struct api_field f[] = {
		AF_STR_FIELD("snapshot_path", struct snap_load_req, s.snapshot_path, true),
		AF_STR_FIELD("mem_file_path", struct snap_load_req, legacy_mem, false),
		AF_CUSTOM_FIELD("mem_backend", false, parse_mem_backend),
		AF_BOOL_FIELD("enable_diff_snapshots", struct snap_load_req,
			      s.enable_diff_snapshots, false),
		AF_BOOL_FIELD("track_dirty_pages", struct snap_load_req, track_dirty_pages, false),
		AF_BOOL_FIELD("resume_vm", struct snap_load_req, s.resume_vm, false),
		AF_UNSUPPORTED_FIELD("network_overrides", NULL),
		AF_UNSUPPORTED_FIELD("vsock_override", NULL),
		AF_UNSUPPORTED_FIELD("clock_realtime", NULL),
		AF_UNSUPPORTED_FIELD("huge_pages", huge),
	};
	struct snap_load_req r = { 0 };
	uint32_t seen = 0;
	int rc = api_fields_parse(o, "snapshot/load", f, AF_COUNT(f), &r, false, &seen, err);

	if (rc < 0)
		return rc;
	/* Exactly one of the two ways to name the memory file (bits 1, 2). */
	if ((seen & 6) == 6)
		return verr_set(err, EINVAL, "snapshot/load: give either 'mem_backend' or "
				"'mem_file_path', not both");
	if ((seen & 6) == 0)
		return verr_set(err, EINVAL, "snapshot/load: missing 'mem_backend' (or the "
				"deprecated 'mem_file_path')");
	if (seen & 2)
		memcpy(r.s.mem_file_path, r.legacy_mem, sizeof(r.legacy_mem));
	r.s.enable_diff_snapshots = r.s.enable_diff_snapshots || r.track_dirty_pages;
	*s = r.s;
	return 0;
}

int api_parse_vm_state(struct json_object *o, bool *pause, struct verr *err)
{
	static const char *const states[] = { "Paused", "Resumed", NULL };
	struct vm_req {
		char state[16];
	} r = { "" };
	static const struct api_field f[] = {
		AF_ENUM_FIELD("state", struct vm_req, state, true, states),
	};
	int rc = api_fields_parse(o, "vm", f, AF_COUNT(f), &r, false, NULL, err);

	*pause = strcmp(r.state, "Paused") == 0;
	return rc;
}

int api_parse_action(struct json_object *o, enum api_action *a, struct verr *err)
{
	static const char *const actions[] = { "InstanceStart", "SendCtrlAltDel",
					       "FlushMetrics", NULL };
	struct action_req {
		char action_type[32];
	} r = { "" };
	static const struct api_field f[] = {
		AF_ENUM_FIELD("action_type", struct action_req, action_type, true, actions),
	};
	int rc = api_fields_parse(o, "actions", f, AF_COUNT(f), &r, false, NULL, err);

	*a = API_ACTION_FLUSH_METRICS;
	if (strcmp(r.action_type, "InstanceStart") == 0)
		*a = API_ACTION_START;
	else if (strcmp(r.action_type, "SendCtrlAltDel") == 0)
		*a = API_ACTION_CTRL_ALT_DEL;
	return rc;
}

static const char *state_name(enum vmm_state s)
{
	switch (s) {
	case VMM_NOT_STARTED: return "Not started";
	case VMM_RUNNING: return "Running";
	case VMM_PAUSED: return "Paused";
	}
	return "Not started";
}

/* A NULL value from a failed allocation is added as JSON null; the final
 * json_object_to_json_string_ext() then still fails or yields valid JSON. */
static void add_str(struct json_object *o, const char *key, const char *val)
{
	json_object_object_add(o, key, json_object_new_string(val));
}

static void add_strn(struct json_object *o, const char *key, const char *val, size_t size)
{
	json_object_object_add(o, key, json_object_new_string_len(val, (int)strnlen(val, size)));
}

#define ADD_FIELD_STR(o, key, arr) add_strn(o, key, arr, sizeof(arr))

struct json_object *api_json_info(const struct vmm_info *info)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	ADD_FIELD_STR(o, "id", info->id);
	add_str(o, "state", state_name(info->state));
	ADD_FIELD_STR(o, "vmm_version", info->vmm_version);
	ADD_FIELD_STR(o, "app_name", info->app_name);
	return o;
}

struct json_object *api_json_machine_config(const struct vmm_machine_config *mc)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "vcpu_count", json_object_new_int64(mc->vcpu_count));
	json_object_object_add(o, "mem_size_mib", json_object_new_uint64(mc->mem_size_mib));
	json_object_object_add(o, "smt", json_object_new_boolean(mc->smt));
	json_object_object_add(o, "track_dirty_pages",
			       json_object_new_boolean(mc->track_dirty_pages));
	add_str(o, "huge_pages", "None");
	return o;
}

struct json_object *api_json_boot_source(const struct vmm_boot_source *b)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	ADD_FIELD_STR(o, "kernel_image_path", b->kernel_image_path);
	if (b->initrd_path[0])
		ADD_FIELD_STR(o, "initrd_path", b->initrd_path);
	if (b->boot_args[0])
		ADD_FIELD_STR(o, "boot_args", b->boot_args);
	return o;
}

struct json_object *api_json_drive(const struct vmm_drive *d)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	ADD_FIELD_STR(o, "drive_id", d->drive_id);
	ADD_FIELD_STR(o, "path_on_host", d->path_on_host);
	json_object_object_add(o, "is_root_device", json_object_new_boolean(d->is_root_device));
	json_object_object_add(o, "is_read_only", json_object_new_boolean(d->is_read_only));
	if (d->cache_type[0])
		ADD_FIELD_STR(o, "cache_type", d->cache_type);
	else
		add_str(o, "cache_type", "Unsafe");
	add_str(o, "io_engine", "Sync");
	return o;
}

struct json_object *api_json_net(const struct vmm_net *n)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	ADD_FIELD_STR(o, "iface_id", n->iface_id);
	ADD_FIELD_STR(o, "host_dev_name", n->host_dev_name);
	if (n->guest_mac[0])
		ADD_FIELD_STR(o, "guest_mac", n->guest_mac);
	return o;
}

struct json_object *api_json_vsock(const struct vmm_vsock *v)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "guest_cid", json_object_new_int64(v->guest_cid));
	ADD_FIELD_STR(o, "uds_path", v->uds_path);
	return o;
}

struct json_object *api_json_stats(const struct vmm_stats *st)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "uptime_ms", json_object_new_uint64(st->uptime_ms));
	json_object_object_add(o, "vcpu_exits", json_object_new_uint64(st->vcpu_exits));
	json_object_object_add(o, "guest_memory_bytes",
			       json_object_new_uint64(st->guest_memory_bytes));
	return o;
}
