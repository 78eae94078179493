/* SPDX-License-Identifier: Apache-2.0 */
/* Firecracker's --config-file: the same documents as the PUT bodies, in one
 * file, applied through the same parsers and ops. */
#include "api/api.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/fields.h"
#include "api/resources.h"

struct config_apply {
	const struct vmm_ctl_ops *ops;
	void *ctx;
};

static int need(const void *op, const char *what, struct verr *err)
{
	return op ? 0 : verr_set(err, ENOTSUP, "%s is not supported by this VMM", what);
}

static int apply_machine_config(struct json_object *v, void *target, struct verr *err)
{
	struct config_apply *a = target;
	struct vmm_machine_config mc;
	int rc = need(a->ops->put_machine_config, "machine-config", err);

	if (rc == 0)
		rc = api_parse_machine_config(v, &mc, false, err);
	return rc < 0 ? rc : a->ops->put_machine_config(a->ctx, &mc, err);
}

static int apply_boot_source(struct json_object *v, void *target, struct verr *err)
{
	struct config_apply *a = target;
	struct vmm_boot_source b;
	int rc = need(a->ops->put_boot_source, "boot-source", err);

	if (rc == 0)
		rc = api_parse_boot_source(v, &b, err);
	return rc < 0 ? rc : a->ops->put_boot_source(a->ctx, &b, err);
}

static int check_array(struct json_object *v, const char *name, struct verr *err)
{
	if (!json_object_is_type(v, json_type_array))
		return verr_set(err, EINVAL, "'%s' must be an array", name);
	return 0;
}

static int apply_drives(struct json_object *v, void *target, struct verr *err)
{
	struct config_apply *a = target;
	struct vmm_drive d;
	int rc = check_array(v, "drives", err);

	if (rc == 0)
		rc = need(a->ops->put_drive, "drives", err);
	for (size_t i = 0; rc == 0 && i < json_object_array_length(v); i++) {
		rc = api_parse_drive(json_object_array_get_idx(v, i), NULL, &d, err);
		if (rc == 0)
			rc = a->ops->put_drive(a->ctx, &d, err);
		if (rc < 0)
			return verr_prefix(err, "drives[%zu]: ", i);
	}
	return rc;
}

static int apply_nets(struct json_object *v, void *target, struct verr *err)
{
	struct config_apply *a = target;
	struct vmm_net n;
	int rc = check_array(v, "network-interfaces", err);

	if (rc == 0)
		rc = need(a->ops->put_net, "network-interfaces", err);
	for (size_t i = 0; rc == 0 && i < json_object_array_length(v); i++) {
		rc = api_parse_net(json_object_array_get_idx(v, i), NULL, &n, err);
		if (rc == 0)
			rc = a->ops->put_net(a->ctx, &n, err);
		if (rc < 0)
			return verr_prefix(err, "network-interfaces[%zu]: ", i);
	}
	return rc;
}

static int apply_vsock(struct json_object *v, void *target, struct verr *err)
{
	struct config_apply *a = target;
	struct vmm_vsock vs;
	int rc;

	if (!v) /* "vsock": null, as Firecracker writes it when there is none */
		return 0;
	rc = need(a->ops->put_vsock, "vsock", err);
	if (rc == 0)
		rc = api_parse_vsock(v, &vs, err);
	return rc < 0 ? rc : a->ops->put_vsock(a->ctx, &vs, err);
}

static int apply_entropy(struct json_object *v, void *target, struct verr *err)
{
	struct config_apply *a = target;
	int rc;

	if (!v)
		return 0;
	rc = need(a->ops->put_entropy, "entropy", err);
	if (rc == 0)
		rc = api_parse_entropy(v, err);
	return rc < 0 ? rc : a->ops->put_entropy(a->ctx, err);
}

static int apply_document(struct json_object *doc, struct config_apply *a, struct verr *err)
{
	/* Order matters to the VMM: memory and vCPUs before devices. */
	static const struct api_field f[] = {
		AF_CUSTOM_FIELD("machine-config", false, apply_machine_config),
		AF_CUSTOM_FIELD("boot-source", false, apply_boot_source),
		AF_CUSTOM_FIELD("drives", false, apply_drives),
		AF_CUSTOM_FIELD("network-interfaces", false, apply_nets),
		AF_CUSTOM_FIELD("vsock", false, apply_vsock),
		AF_CUSTOM_FIELD("entropy", false, apply_entropy),
		AF_UNSUPPORTED_FIELD("balloon", NULL),
		AF_UNSUPPORTED_FIELD("cpu-config", NULL),
		AF_UNSUPPORTED_FIELD("logger", NULL),
		AF_UNSUPPORTED_FIELD("metrics", NULL),
		AF_UNSUPPORTED_FIELD("mmds-config", NULL),
		AF_UNSUPPORTED_FIELD("pmem", NULL),
		AF_UNSUPPORTED_FIELD("memory-hotplug", NULL),
		AF_UNSUPPORTED_FIELD("serial", NULL),
	};

	return api_fields_parse(doc, "configuration", f, AF_COUNT(f), a, false, NULL, err);
}

static int read_file(const char *path, char **out, size_t *len, struct verr *err)
{
	struct stat st;
	size_t got = 0;
	char *buf;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return verr_set(err, errno, "cannot open: %s", strerror(errno));
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > API_MAX_CONFIG_FILE) {
		close(fd);
		return verr_set(err, EINVAL, "not a regular file of at most %u bytes",
				API_MAX_CONFIG_FILE);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		close(fd);
		return verr_set(err, ENOMEM, "out of memory");
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	close(fd);
	*out = buf;
	*len = got;
	return 0;
}

int api_load_config_file(const char *path, const struct vmm_ctl_ops *ops, void *ctx,
			 struct verr *err)
{
	struct config_apply a = { ops, ctx };
	struct json_object *doc = NULL;
	char *text = NULL;
	size_t len = 0;
	int rc = read_file(path, &text, &len, err);

	if (rc == 0)
		rc = api_json_parse(text, len, &doc, err);
	if (rc == 0)
		rc = apply_document(doc, &a, err);
	json_object_put(doc);
	free(text);
	return rc < 0 ? verr_prefix(err, "config file %s: ", path) : 0;
}
