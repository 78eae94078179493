/* SPDX-License-Identifier: Apache-2.0 */
/* api_handle_request: path and method -> handler -> vmm_ctl_ops -> status. */
#include "api/api.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/fields.h"
#include "api/internal.h"
#include "api/resources.h"

#define API_MAX_PATH 256

struct api_call {
	const struct vmm_ctl_ops *ops;
	void *ctx;
	const char *id;          /* the {id} of the path, or NULL */
	struct json_object *in;  /* the parsed body of a PUT or PATCH */
	struct json_object *out; /* set by a handler that answers 200 */
	struct verr err;
};

typedef int (*api_handler)(struct api_call *c);

struct api_route {
	const char *path;  /* exact path, or the prefix before {id} */
	bool has_id;
	api_handler get, put, patch;
	const char *allow; /* for the Allow header of a 405 */
};

/* An op the VMM left NULL is a feature it does not offer (yet). */
#define NEED_OP(c, op, what) \
	do { \
		if (!(c)->ops->op) \
			return verr_set(&(c)->err, ENOTSUP, "%s is not supported by this VMM", what); \
	} while (0)

static int out_or_enomem(struct api_call *c, struct json_object *o)
{
	c->out = o;
	return o ? 0 : verr_set(&c->err, ENOMEM, "out of memory building the response");
}

static void get_info(struct api_call *c, struct vmm_info *info)
{
	*info = (struct vmm_info){ .state = VMM_NOT_STARTED, .vmm_version = VIREO_VERSION,
				   .app_name = "vireo" };
	if (c->ops->get_info)
		c->ops->get_info(c->ctx, info);
}

static int h_get_root(struct api_call *c)
{
	struct vmm_info info;

	get_info(c, &info);
	return out_or_enomem(c, api_json_info(&info));
}

static int h_get_version(struct api_call *c)
{
	struct vmm_info info;
	struct json_object *o = json_object_new_object();

	get_info(c, &info);
	if (o)
		json_object_object_add(o, "firecracker_version",
				       json_object_new_string_len(info.vmm_version,
					       (int)strnlen(info.vmm_version,
							    sizeof(info.vmm_version))));
	return out_or_enomem(c, o);
}

static int h_get_machine_config(struct api_call *c)
{
	struct vmm_machine_config mc = { 0 };
	int rc;

	NEED_OP(c, get_machine_config, "GET /machine-config");
	rc = c->ops->get_machine_config(c->ctx, &mc, &c->err);
	return rc < 0 ? rc : out_or_enomem(c, api_json_machine_config(&mc));
}

static int h_put_machine_config(struct api_call *c)
{
	struct vmm_machine_config mc;
	int rc;

	NEED_OP(c, put_machine_config, "PUT /machine-config");
	rc = api_parse_machine_config(c->in, &mc, false, &c->err);
	return rc < 0 ? rc : c->ops->put_machine_config(c->ctx, &mc, &c->err);
}

/* PATCH: the current configuration with the named fields replaced. */
static int h_patch_machine_config(struct api_call *c)
{
	struct vmm_machine_config mc = { 0 };
	int rc;

	NEED_OP(c, get_machine_config, "PATCH /machine-config");
	NEED_OP(c, put_machine_config, "PATCH /machine-config");
	rc = c->ops->get_machine_config(c->ctx, &mc, &c->err);
	if (rc == 0)
		rc = api_parse_machine_config(c->in, &mc, true, &c->err);
	return rc < 0 ? rc : c->ops->put_machine_config(c->ctx, &mc, &c->err);
}

static int h_put_boot_source(struct api_call *c)
{
	struct vmm_boot_source b;
	int rc;

	NEED_OP(c, put_boot_source, "PUT /boot-source");
	rc = api_parse_boot_source(c->in, &b, &c->err);
	return rc < 0 ? rc : c->ops->put_boot_source(c->ctx, &b, &c->err);
}

static int h_put_drive(struct api_call *c)
{
	struct vmm_drive d;
	int rc;

	NEED_OP(c, put_drive, "PUT /drives");
	rc = api_parse_drive(c->in, c->id, &d, &c->err);
	return rc < 0 ? rc : c->ops->put_drive(c->ctx, &d, &c->err);
}

static int h_put_net(struct api_call *c)
{
	struct vmm_net n;
	int rc;

	NEED_OP(c, put_net, "PUT /network-interfaces");
	rc = api_parse_net(c->in, c->id, &n, &c->err);
	return rc < 0 ? rc : c->ops->put_net(c->ctx, &n, &c->err);
}

static int h_put_vsock(struct api_call *c)
{
	struct vmm_vsock v;
	int rc;

	NEED_OP(c, put_vsock, "PUT /vsock");
	rc = api_parse_vsock(c->in, &v, &c->err);
	return rc < 0 ? rc : c->ops->put_vsock(c->ctx, &v, &c->err);
}

static int h_put_entropy(struct api_call *c)
{
	int rc;

	NEED_OP(c, put_entropy, "PUT /entropy");
	rc = api_parse_entropy(c->in, &c->err);
	return rc < 0 ? rc : c->ops->put_entropy(c->ctx, &c->err);
}

static int h_put_actions(struct api_call *c)
{
	enum api_action a;
	int rc = api_parse_action(c->in, &a, &c->err);

	if (rc < 0)
		return rc;
	switch (a) {
	case API_ACTION_START:
		NEED_OP(c, instance_start, "InstanceStart");
		return c->ops->instance_start(c->ctx, &c->err);
	case API_ACTION_CTRL_ALT_DEL:
		NEED_OP(c, send_ctrl_alt_del, "SendCtrlAltDel");
		return c->ops->send_ctrl_alt_del(c->ctx, &c->err);
	case API_ACTION_FLUSH_METRICS:
		break;
	}
	return 0; /* vireo keeps no metrics file, so there is nothing to flush */
}

static int h_patch_vm(struct api_call *c)
{
	bool pause;
	int rc = api_parse_vm_state(c->in, &pause, &c->err);

	if (rc < 0)
		return rc;
	if (pause) {
		NEED_OP(c, pause, "pausing");
		return c->ops->pause(c->ctx, &c->err);
	}
	NEED_OP(c, resume, "resuming");
	return c->ops->resume(c->ctx, &c->err);
}

static int h_put_snapshot_create(struct api_call *c)
{
	struct vmm_snapshot_create s;
	int rc;

	NEED_OP(c, snapshot_create, "PUT /snapshot/create");
	rc = api_parse_snapshot_create(c->in, &s, &c->err);
	return rc < 0 ? rc : c->ops->snapshot_create(c->ctx, &s, &c->err);
}

static int h_put_snapshot_load(struct api_call *c)
{
	struct vmm_snapshot_load s;
	int rc;

	NEED_OP(c, snapshot_load, "PUT /snapshot/load");
	rc = api_parse_snapshot_load(c->in, &s, &c->err);
	return rc < 0 ? rc : c->ops->snapshot_load(c->ctx, &s, &c->err);
}

static void add_devices_json(struct json_object *o, const struct vmm_devices *dev)
{
	struct json_object *arr = json_object_new_array();

	for (unsigned i = 0; arr && i < dev->nnets && i < VMM_MAX_NETS; i++)
		json_object_array_add(arr, api_json_net(&dev->nets[i]));
	if (arr)
		json_object_object_add(o, "network-interfaces", arr);
	if (dev->have_vsock)
		json_object_object_add(o, "vsock", api_json_vsock(&dev->vsock));
	if (dev->have_entropy)
		json_object_object_add(o, "entropy", json_object_new_object());
}

static struct json_object *vm_config_json(const struct vmm_machine_config *mc,
					  const struct vmm_boot_source *bs,
					  const struct vmm_drive *drives, unsigned n,
					  const struct vmm_devices *dev)
{
	struct json_object *o = json_object_new_object();
	struct json_object *arr = json_object_new_array();

	if (!o || !arr) {
		json_object_put(o);
		json_object_put(arr);
		return NULL;
	}
	/* Firecracker leaves the boot source out after a snapshot load. */
	if (bs->kernel_image_path[0])
		json_object_object_add(o, "boot-source", api_json_boot_source(bs));
	for (unsigned i = 0; i < n; i++)
		json_object_array_add(arr, api_json_drive(&drives[i]));
	json_object_object_add(o, "drives", arr);
	json_object_object_add(o, "machine-config", api_json_machine_config(mc));
	if (dev)
		add_devices_json(o, dev);
	return o;
}

static int h_get_vm_config(struct api_call *c)
{
	struct vmm_machine_config mc = { 0 };
	struct vmm_boot_source *bs = calloc(1, sizeof(*bs));
	struct vmm_drive *drives = calloc(API_MAX_DRIVES, sizeof(*drives));
	struct vmm_devices *dev = c->ops->get_devices ? calloc(1, sizeof(*dev)) : NULL;
	unsigned n = 0;
	int rc = -ENOMEM;

	if (!c->ops->get_vm_config)
		rc = verr_set(&c->err, ENOTSUP, "GET /vm/config is not supported by this VMM");
	else if (!bs || !drives || (c->ops->get_devices && !dev))
		rc = verr_set(&c->err, ENOMEM, "out of memory reading the configuration");
	else
		rc = c->ops->get_vm_config(c->ctx, &mc, bs, drives, &n, API_MAX_DRIVES, &c->err);
	if (rc == 0 && dev)
		rc = c->ops->get_devices(c->ctx, dev, &c->err);
	if (rc == 0)
		rc = out_or_enomem(c, vm_config_json(&mc, bs, drives,
						     n < API_MAX_DRIVES ? n : API_MAX_DRIVES, dev));
	free(dev);
	free(bs);
	free(drives);
	return rc;
}

static int h_get_stats(struct api_call *c)
{
	struct vmm_stats st = { 0 };
	int rc;

	NEED_OP(c, get_stats, "GET /vireo/stats");
	rc = c->ops->get_stats(c->ctx, &st, &c->err);
	return rc < 0 ? rc : out_or_enomem(c, api_json_stats(&st));
}

static struct json_object *clone_json(const struct vmm_clone_result *r)
{
	struct json_object *o = json_object_new_object(), *arr = json_object_new_array();

	if (!o || !arr) {
		json_object_put(o);
		json_object_put(arr);
		return NULL;
	}
	for (unsigned i = 0; i < r->count && i < VMM_MAX_CLONES; i++) {
		struct json_object *e = json_object_new_object();
		json_object_object_add(e, "pid", json_object_new_int(r->clones[i].pid));
		json_object_object_add(e, "api_socket", json_object_new_string(r->clones[i].api_socket));
		json_object_object_add(e, "console_log", json_object_new_string(r->clones[i].console_log));
		json_object_array_add(arr, e);
	}
	json_object_object_add(o, "clones", arr);
	return o;
}

static int h_put_clone(struct api_call *c)
{
	struct vmm_clone_request r = { 0 };
	struct vmm_clone_result *res;
	int rc;

	NEED_OP(c, clone, "PUT /vireo/clone");
	if ((rc = api_parse_clone(c->in, &r, &c->err)) < 0)
		return rc;
	res = calloc(1, sizeof(*res));
	if (!res)
		return verr_set(&c->err, ENOMEM, "out of memory");
	rc = c->ops->clone(c->ctx, &r, res, &c->err);
	if (rc == 0)
		rc = out_or_enomem(c, clone_json(res));
	free(res);
	return rc;
}

/* Firecracker endpoints vireo does not implement: 400, not 404, so a
 * Firecracker client learns the feature is missing rather than mistyped. */
static int h_unsupported(struct api_call *c)
{
	return verr_set(&c->err, ENOTSUP, "this Firecracker endpoint is not supported by vireo");
}

#define UNSUPPORTED(p, id) { p, id, h_unsupported, h_unsupported, h_unsupported, "GET, PUT, PATCH" }

static const struct api_route routes[] = {
	{ "/", false, h_get_root, NULL, NULL, "GET" },
	{ "/version", false, h_get_version, NULL, NULL, "GET" },
	{ "/machine-config", false, h_get_machine_config, h_put_machine_config,
	  h_patch_machine_config, "GET, PUT, PATCH" },
	{ "/boot-source", false, NULL, h_put_boot_source, NULL, "PUT" },
	{ "/drives/", true, NULL, h_put_drive, h_unsupported, "PUT, PATCH" },
	{ "/network-interfaces/", true, NULL, h_put_net, h_unsupported, "PUT, PATCH" },
	{ "/vsock", false, NULL, h_put_vsock, NULL, "PUT" },
	{ "/entropy", false, NULL, h_put_entropy, NULL, "PUT" },
	{ "/actions", false, NULL, h_put_actions, NULL, "PUT" },
	{ "/vm", false, NULL, NULL, h_patch_vm, "PATCH" },
	{ "/vm/config", false, h_get_vm_config, NULL, NULL, "GET" },
	{ "/snapshot/create", false, NULL, h_put_snapshot_create, NULL, "PUT" },
	{ "/snapshot/load", false, NULL, h_put_snapshot_load, NULL, "PUT" },
	{ "/vireo/stats", false, h_get_stats, NULL, NULL, "GET" },
	{ "/vireo/clone", false, NULL, h_put_clone, NULL, "PUT" },
	UNSUPPORTED("/balloon", false),
	UNSUPPORTED("/balloon/statistics", false),
	UNSUPPORTED("/balloon/hinting/start", false),
	UNSUPPORTED("/balloon/hinting/status", false),
	UNSUPPORTED("/balloon/hinting/stop", false),
	UNSUPPORTED("/cpu-config", false),
	UNSUPPORTED("/pmem/", true),
	UNSUPPORTED("/logger", false),
	UNSUPPORTED("/metrics", false),
	UNSUPPORTED("/mmds", false),
	UNSUPPORTED("/mmds/config", false),
	UNSUPPORTED("/serial", false),
	UNSUPPORTED("/hotplug/memory", false),
};

/* Matches path against the table; *id points into path for {id} routes.
 * One trailing '/' is tolerated, as clients sometimes add it. */
static const struct api_route *find_route(const char *path, char *norm, const char **id)
{
	size_t len = strlen(path);

	*id = NULL;
	if (len == 0 || len >= API_MAX_PATH || path[0] != '/')
		return NULL;
	memcpy(norm, path, len + 1);
	if (len > 1 && norm[len - 1] == '/' && norm[len - 2] != '/')
		norm[--len] = '\0';
	for (size_t i = 0; i < AF_COUNT(routes); i++) {
		const struct api_route *r = &routes[i];
		size_t plen = strlen(r->path);

		if (!r->has_id && strcmp(norm, r->path) == 0)
			return r;
		if (r->has_id && strncmp(norm, r->path, plen) == 0 && norm[plen] &&
		    !strchr(norm + plen, '/')) {
			*id = norm + plen;
			return r;
		}
	}
	return NULL;
}

const char *api_allowed_methods(const char *path)
{
	char norm[API_MAX_PATH];
	const char *id;
	const struct api_route *r = find_route(path, norm, &id);

	return r ? r->allow : NULL;
}

static api_handler pick_handler(const struct api_route *r, const char *method)
{
	if (strcmp(method, "GET") == 0)
		return r->get;
	if (strcmp(method, "PUT") == 0)
		return r->put;
	if (strcmp(method, "PATCH") == 0)
		return r->patch;
	return NULL;
}

/* control.h: the VMM's refusals are the client's fault, the rest ours. */
static int status_for(int code)
{
	switch (code) {
	case EINVAL: case ENOENT: case EEXIST: case EBUSY: case EPERM: case ENOTSUP:
	case EAGAIN:
		return 400;
	default:
		return 500;
	}
}

static int reply(int status, struct json_object *o, int *st, char **body)
{
	const char *text;

	*st = status;
	*body = NULL;
	if (!o)
		return 0;
	text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						      JSON_C_TO_STRING_NOSLASHESCAPE);
	*body = text ? strdup(text) : NULL;
	json_object_put(o);
	if (!*body) {
		*st = 500;
		return -ENOMEM;
	}
	return 0;
}

/* Length of the valid UTF-8 sequence at s, or 0. */
static size_t utf8_seq(const unsigned char *s)
{
	size_t n = s[0] < 0x80 ? 1 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 :
		   s[0] >= 0xe0 && s[0] < 0xf0 ? 3 : s[0] >= 0xf0 && s[0] < 0xf5 ? 4 : 0;

	for (size_t i = 1; i < n; i++)
		if ((s[i] & 0xc0) != 0x80)
			return 0;
	return n;
}

/* Messages quote paths and values from the request, possibly cut in the
 * middle of a character; json-c would pass broken UTF-8 on, and strict
 * clients would then fail to read the error. */
static void fix_utf8(char *msg)
{
	unsigned char *s = (unsigned char *)msg;

	while (*s) {
		size_t n = utf8_seq(s);
		if (n == 0)
			*s++ = '?';
		else
			s += n;
	}
}

static int reply_fault(int status, const char *text, int *st, char **body)
{
	struct json_object *o = json_object_new_object();
	struct json_object *m;
	char msg[VERR_MSG_MAX + 64];

	snprintf(msg, sizeof(msg), "%s", text);
	fix_utf8(msg);
	m = json_object_new_string(msg);

	if (!o || !m) {
		json_object_put(o);
		json_object_put(m);
		*st = 500;
		*body = NULL;
		return -ENOMEM;
	}
	json_object_object_add(o, "fault_message", m);
	return reply(status, o, st, body);
}

static int run_handler(struct api_call *c, api_handler h, int *status, char **body)
{
	int rc = h(c);

	if (rc < 0) {
		int code = c->err.code ? c->err.code : -rc;
		if (!c->err.msg[0])
			snprintf(c->err.msg, sizeof(c->err.msg), "%s", strerror(code));
		json_object_put(c->out);
		return reply_fault(status_for(code), c->err.msg, status, body);
	}
	return reply(c->out ? 200 : 204, c->out, status, body);
}

int api_handle_request(const struct vmm_ctl_ops *ops, void *ctx, const char *method,
		       const char *path, const char *body, size_t body_len, int *status,
		       char **response_body)
{
	static const struct vmm_ctl_ops no_ops;
	struct api_call c = { .ops = ops ? ops : &no_ops, .ctx = ctx };
	char norm[API_MAX_PATH], msg[VERR_MSG_MAX];
	const struct api_route *r;
	api_handler h;
	int rc;

	*response_body = NULL;
	if (!method || !path)
		return reply_fault(400, "request without a method or path", status, response_body);
	if (body_len > API_MAX_BODY) {
		snprintf(msg, sizeof(msg), "request body too large (%zu bytes; the limit is %u)",
			 body_len, API_MAX_BODY);
		return reply_fault(413, msg, status, response_body);
	}
	r = find_route(path, norm, &c.id);
	if (!r) {
		snprintf(msg, sizeof(msg), "invalid request path: %.16s %.200s", method, path);
		return reply_fault(404, msg, status, response_body);
	}
	h = pick_handler(r, method);
	if (!h) {
		snprintf(msg, sizeof(msg), "method %.16s is not allowed on %s (allowed: %s)",
			 method, r->path, r->allow);
		return reply_fault(405, msg, status, response_body);
	}
	if (strcmp(method, "GET") != 0 && h != h_unsupported) {
		if (api_json_parse(body_len ? body : "", body_len, &c.in, &c.err) < 0)
			return reply_fault(400, c.err.msg, status, response_body);
	}
	rc = run_handler(&c, h, status, response_body);
	json_object_put(c.in);
	return rc;
}
