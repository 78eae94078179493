/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The management API, without HTTP: path + method → store and supervisor →
 * status and JSON. Every request runs under the daemon's lock, so two
 * clients acting on one VM are served one after the other.
 */
#include "daemon/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include <json-c/json.h>

#include "core/log.h"
#include "daemon/defn.h"

#define TAIL_BYTES 2048

struct reply {
	int status;
	json_object *body; /* NULL: no body */
};

static void set_error(struct reply *r, int status, const char *msg)
{
	r->status = status;
	json_object_put(r->body);
	r->body = json_object_new_object();
	json_object_object_add(r->body, "error", json_object_new_string(msg));
}

static void from_verr(struct reply *r, const struct verr *err)
{
	int st;

	switch (err->code) {
	case EINVAL: case ENAMETOOLONG: case E2BIG: st = 400; break;
	case ENOENT: st = 404; break;
	case EEXIST: case EBUSY: case EPERM: st = 409; break;
	default: st = 500; break;
	}
	set_error(r, st, err->msg[0] ? err->msg : strerror(err->code));
}

static void add_exit(json_object *o, const struct store_run *run)
{
	char why[64];

	if (!run->exit_known) {
		json_object_object_add(o, "exit_status", NULL);
		snprintf(why, sizeof(why), "unknown (the process was not this daemon's child)");
	} else if (WIFEXITED(run->exit_status)) {
		json_object_object_add(o, "exit_status",
				       json_object_new_int(WEXITSTATUS(run->exit_status)));
		snprintf(why, sizeof(why), "exited with status %d", WEXITSTATUS(run->exit_status));
	} else {
		json_object_object_add(o, "exit_status", NULL);
		snprintf(why, sizeof(why), "killed by signal %d", WTERMSIG(run->exit_status));
	}
	json_object_object_add(o, "exit", json_object_new_string(why));
}

static json_object *vm_summary(struct daemon *d, struct store_vm *vm)
{
	json_object *o = json_object_new_object();

	sup_refresh(d, vm);
	json_object_object_add(o, "name", json_object_new_string(vm->name));
	json_object_object_add(o, "uuid", json_object_new_string(vm->uuid));
	json_object_object_add(o, "state", json_object_new_string(vm->run.state));
	json_object_object_add(o, "autostart", json_object_new_boolean(vm->autostart));
	if (vm->run.pid > 0)
		json_object_object_add(o, "pid", json_object_new_int64(vm->run.pid));
	return o;
}

static void copy_config_field(json_object *o, json_object *cfg, const char *key)
{
	json_object *v;

	if (cfg && json_object_object_get_ex(cfg, key, &v))
		json_object_object_add(o, key, json_object_get(v));
}

static json_object *vm_info(struct daemon *d, struct store_vm *vm)
{
	json_object *o = vm_summary(d, vm), *cfg = json_tokener_parse(vm->config);
	char path[PATH_MAX], *tail;

	copy_config_field(o, cfg, "memory");
	copy_config_field(o, cfg, "vcpus");
	json_object_put(cfg);
	sup_paths(d, vm->name, "console.log", path, sizeof(path));
	json_object_object_add(o, "console_log", json_object_new_string(path));
	if (strcmp(vm->run.state, "crashed") == 0 ||
	    (strcmp(vm->run.state, "shut off") == 0 && vm->run.exit_known)) {
		add_exit(o, &vm->run);
		tail = sup_console_tail(d, vm->name, TAIL_BYTES);
		if (tail)
			json_object_object_add(o, "console_tail", json_object_new_string(tail));
		free(tail);
	}
	return o;
}

static void list_vms(struct daemon *d, struct reply *r)
{
	struct store_vm *vms;
	struct verr err = { 0 };
	json_object *a;
	size_t n;

	if (store_vm_list(d->store, &vms, &n, &err) < 0) {
		from_verr(r, &err);
		return;
	}
	a = json_object_new_array();
	for (size_t i = 0; i < n; i++)
		json_object_array_add(a, vm_summary(d, &vms[i]));
	store_vm_list_free(vms, n);
	r->status = 200;
	r->body = json_object_new_object();
	json_object_object_add(r->body, "vms", a);
}

static void define_vm(struct daemon *d, const char *body, size_t len, struct reply *r)
{
	struct verr err = { 0 };
	struct defn *def = malloc(sizeof(*def));
	char *text = NULL;

	if (!def) {
		set_error(r, 500, "out of memory");
		return;
	}
	if (defn_parse(body ? body : "", len, def, &err) == 0) {
		text = defn_to_json(def);
		if (!text)
			verr_set(&err, ENOMEM, "out of memory");
		else
			store_vm_add(d->store, def->name, def->uuid, text, &err);
	}
	if (err.code) {
		from_verr(r, &err);
	} else {
		r->status = 201;
		r->body = json_object_new_object();
		json_object_object_add(r->body, "name", json_object_new_string(def->name));
		json_object_object_add(r->body, "uuid", json_object_new_string(def->uuid));
		log_info("daemon", "%s: defined", def->name);
	}
	free(text);
	free(def);
}

static int set_autostart(struct daemon *d, struct store_vm *vm, const char *body, size_t len,
			 struct verr *err)
{
	json_object *o = len < 256 && body ? json_tokener_parse(body) : NULL, *v;
	int rc;

	if (!o || !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "autostart", &v) ||
	    !json_object_is_type(v, json_type_boolean) || json_object_object_length(o) != 1)
		rc = verr_set(err, EINVAL, "autostart: the body must be {\"autostart\": true|false}");
	else
		rc = store_vm_set_autostart(d->store, vm->name, json_object_get_boolean(v), err);
	json_object_put(o);
	return rc;
}

static int undefine(struct daemon *d, struct store_vm *vm, struct verr *err)
{
	sup_refresh(d, vm);
	if (vm->run.pid > 0)
		return verr_set(err, EBUSY, "%s is %s: destroy it first", vm->name, vm->run.state);
	return store_vm_remove(d->store, vm->name, err);
}

/* POST /vms/NAME/ACTION, PUT /vms/NAME/autostart, DELETE /vms/NAME. */
static int vm_action(struct daemon *d, struct store_vm *vm, const char *method,
		     const char *action, const char *body, size_t len, struct verr *err)
{
	bool post = strcmp(method, "POST") == 0;

	if (!action && strcmp(method, "DELETE") == 0)
		return undefine(d, vm, err);
	if (action && post && strcmp(action, "start") == 0)
		return sup_start(d, vm, err);
	if (action && post && strcmp(action, "destroy") == 0)
		return sup_destroy(d, vm, err);
	if (action && post && strcmp(action, "shutdown") == 0)
		return sup_shutdown(d, vm, err);
	if (action && post && (strcmp(action, "suspend") == 0 || strcmp(action, "resume") == 0))
		return sup_pause(d, vm, action[0] == 's', err);
	if (action && strcmp(method, "PUT") == 0 && strcmp(action, "autostart") == 0)
		return set_autostart(d, vm, body, len, err);
	return -ENOSYS;
}

static void one_vm(struct daemon *d, const char *method, char *rest, const char *body,
		   size_t len, struct reply *r)
{
	char *action = strchr(rest, '/');
	struct store_vm vm;
	struct verr err = { 0 };
	int rc;

	if (action)
		*action++ = '\0';
	if (!defn_name_ok(rest) || (action && strchr(action, '/'))) {
		set_error(r, 404, "no such path");
		return;
	}
	if (store_vm_get(d->store, rest, &vm, &err) < 0) {
		from_verr(r, &err);
		return;
	}
	if (strcmp(method, "GET") == 0 && !action) {
		r->status = 200;
		r->body = vm_info(d, &vm);
	} else if (strcmp(method, "GET") == 0 && strcmp(action, "config") == 0) {
		r->status = 200;
		r->body = json_tokener_parse(vm.config);
	} else if (strcmp(method, "GET") == 0 && strcmp(action, "stats") == 0) {
		void *stats = NULL;
		if (sup_stats(d, &vm, &stats, &err) < 0) {
			from_verr(r, &err);
		} else {
			r->status = 200;
			r->body = stats;
		}
	} else if ((rc = vm_action(d, &vm, method, action, body, len, &err)) == -ENOSYS) {
		set_error(r, 405, "method not allowed on this path");
	} else if (rc < 0) {
		from_verr(r, &err);
	} else {
		r->status = 204;
	}
	store_vm_free(&vm);
}

static void route(struct daemon *d, const char *method, const char *url, const char *body,
		  size_t len, struct reply *r)
{
	char path[256];

	if (strlen(url) >= sizeof(path)) {
		set_error(r, 404, "no such path");
		return;
	}
	snprintf(path, sizeof(path), "%s", url);
	if (strcmp(path, "/") == 0 && strcmp(method, "GET") == 0) {
		r->status = 200;
		r->body = json_object_new_object();
		json_object_object_add(r->body, "app", json_object_new_string("vireod"));
		json_object_object_add(r->body, "version", json_object_new_string(VIREO_VERSION));
	} else if (strcmp(path, "/vms") == 0 && strcmp(method, "GET") == 0) {
		list_vms(d, r);
	} else if (strcmp(path, "/vms") == 0 && strcmp(method, "POST") == 0) {
		define_vm(d, body, len, r);
	} else if (strncmp(path, "/vms/", 5) == 0) {
		one_vm(d, method, path + 5, body, len, r);
	} else if (strcmp(path, "/") == 0 || strcmp(path, "/vms") == 0) {
		set_error(r, 405, "method not allowed on this path");
	} else {
		set_error(r, 404, "no such path");
	}
}

void daemon_handle(struct daemon *d, bool read_only, const char *method, const char *url,
		   const char *body, size_t len, int *status, char **resp)
{
	struct reply r = { 500, NULL };
	const char *text;

	if (read_only && strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		set_error(&r, 403, "this socket is read-only: use the read-write socket "
			  "(vireod.sock) to change anything");
	} else {
		pthread_mutex_lock(&d->lock);
		route(d, method, url, body, len, &r);
		pthread_mutex_unlock(&d->lock);
	}
	*status = r.status;
	*resp = NULL;
	if (r.body) {
		text = json_object_to_json_string_ext(r.body, JSON_C_TO_STRING_PLAIN |
						      JSON_C_TO_STRING_NOSLASHESCAPE);
		*resp = strdup(text);
		json_object_put(r.body);
	}
	if (r.body && !*resp)
		*status = 500;
}
