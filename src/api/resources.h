/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Firecracker's JSON shapes <-> struct vmm_* (vmm/control.h), shared by the
 * HTTP routes and the --config-file loader so both accept exactly the same
 * documents. Parsers fill err (EINVAL for bad input, ENOTSUP for a
 * Firecracker feature vireo lacks); builders return NULL only on ENOMEM.
 */
#ifndef VIREO_API_RESOURCES_H
#define VIREO_API_RESOURCES_H

#include <stdbool.h>

#include <json-c/json.h>

#include "core/err.h"
#include "vmm/control.h"

enum api_action { API_ACTION_START, API_ACTION_CTRL_ALT_DEL, API_ACTION_FLUSH_METRICS };

/* Firecracker's resource ids: 1..64 characters of [A-Za-z0-9_]. */
int api_check_id(const char *id, const char *what, struct verr *err);

/* With partial (PATCH), fields absent from o keep their value in *mc. */
int api_parse_machine_config(struct json_object *o, struct vmm_machine_config *mc, bool partial,
			     struct verr *err);
int api_parse_boot_source(struct json_object *o, struct vmm_boot_source *b, struct verr *err);
/* path_id: the {drive_id} of the URL, which the body must repeat; NULL in a
 * config file. */
int api_parse_drive(struct json_object *o, const char *path_id, struct vmm_drive *d,
		    struct verr *err);
int api_parse_net(struct json_object *o, const char *path_id, struct vmm_net *n,
		  struct verr *err);
int api_parse_vsock(struct json_object *o, struct vmm_vsock *v, struct verr *err);
int api_parse_entropy(struct json_object *o, struct verr *err);
int api_parse_snapshot_create(struct json_object *o, struct vmm_snapshot_create *s,
			      struct verr *err);
int api_parse_snapshot_load(struct json_object *o, struct vmm_snapshot_load *s,
			    struct verr *err);
/* PATCH /vm: *pause is true for "Paused", false for "Resumed". */
int api_parse_clone(struct json_object *o, struct vmm_clone_request *r, struct verr *err);
int api_parse_vm_state(struct json_object *o, bool *pause, struct verr *err);
int api_parse_action(struct json_object *o, enum api_action *a, struct verr *err);

struct json_object *api_json_info(const struct vmm_info *info);
struct json_object *api_json_machine_config(const struct vmm_machine_config *mc);
struct json_object *api_json_boot_source(const struct vmm_boot_source *b);
struct json_object *api_json_net(const struct vmm_net *n);
struct json_object *api_json_vsock(const struct vmm_vsock *v);
struct json_object *api_json_drive(const struct vmm_drive *d);
struct json_object *api_json_stats(const struct vmm_stats *st);

#endif
