/* SPDX-License-Identifier: Apache-2.0 */
/* VM definitions: strict JSON → struct defn, and back to canonical JSON. */
#include "daemon/defn.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include <json-c/json.h>

#include "core/size.h"

bool defn_name_ok(const char *name)
{
	size_t n = strlen(name);

	if (n == 0 || n > DEFN_NAME_MAX || name[0] == '.' || name[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = name[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '.' || c == '-'))
			return false;
	}
	return true;
}

static int bad(struct verr *err, const char *field, const char *why)
{
	return verr_set(err, EINVAL, "%s: %s", field, why);
}

/* A string field: the right type, no NUL, no control characters, fits. */
static int get_str(json_object *v, const char *field, char *dst, size_t size, struct verr *err)
{
	const char *s;
	size_t len;

	if (!json_object_is_type(v, json_type_string))
		return bad(err, field, "must be a string");
	s = json_object_get_string(v);
	len = (size_t)json_object_get_string_len(v);
	if (strlen(s) != len)
		return bad(err, field, "must not contain NUL");
	if (len >= size)
		return verr_set(err, EINVAL, "%s: longer than %zu bytes", field, size - 1);
	for (size_t i = 0; i < len; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return bad(err, field, "must not contain control characters");
	memcpy(dst, s, len + 1);
	return 0;
}

/* Paths go on vireo run's command line, where ',' separates options. */
static int get_path(json_object *v, const char *field, char *dst, struct verr *err)
{
	int rc = get_str(v, field, dst, DEFN_PATH_MAX, err);

	if (rc < 0)
		return rc;
	if (dst[0] != '/')
		return bad(err, field, "must be an absolute path");
	if (strchr(dst, ','))
		return bad(err, field, "must not contain ','");
	return 0;
}

static int get_uint(json_object *v, const char *field, uint64_t max, uint64_t *out,
		    struct verr *err)
{
	int64_t x;

	if (!json_object_is_type(v, json_type_int))
		return bad(err, field, "must be an integer");
	errno = 0;
	x = json_object_get_int64(v);
	if (errno || x < 1 || (uint64_t)x > max)
		return verr_set(err, EINVAL, "%s: must be between 1 and %llu", field,
				(unsigned long long)max);
	*out = (uint64_t)x;
	return 0;
}

static int get_memory(json_object *v, uint32_t *mib, struct verr *err)
{
	uint64_t x;
	char s[32];
	struct verr sub = { 0 };

	if (json_object_is_type(v, json_type_int)) {
		if (get_uint(v, "memory", DEFN_MAX_MEMORY_MIB, &x, err) < 0)
			return -EINVAL;
		*mib = (uint32_t)x;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return bad(err, "memory", "must be MiB as an integer or a size such as \"512M\"");
	if (get_str(v, "memory", s, sizeof(s), err) < 0)
		return -EINVAL;
	if (size_parse(s, 'M', &x, &sub) < 0)
		return verr_set(err, EINVAL, "memory: %s", sub.msg);
	if (x % (1u << 20) || x == 0 || x / (1u << 20) > DEFN_MAX_MEMORY_MIB)
		return bad(err, "memory", "must be a whole number of MiB, 1M to 1T");
	*mib = (uint32_t)(x >> 20);
	return 0;
}

static int get_bool(json_object *v, const char *field, bool *out, struct verr *err)
{
	if (!json_object_is_type(v, json_type_boolean))
		return bad(err, field, "must be true or false");
	*out = json_object_get_boolean(v);
	return 0;
}

static bool one_of(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (strcmp(s, *set) == 0)
			return true;
	return false;
}

static int parse_disk(json_object *o, const char *field, struct defn_disk *dk, struct verr *err)
{
	static const char *const formats[] = { "raw", "qcow2", "vmdk", NULL };
	char f[96];
	int rc = 0;

	if (!json_object_is_type(o, json_type_object))
		return bad(err, field, "must be an object");
	strcpy(dk->format, "raw");
	json_object_object_foreach(o, key, v) {
		snprintf(f, sizeof(f), "%s.%.32s", field, key);
		if (strcmp(key, "path") == 0)
			rc = get_path(v, f, dk->path, err);
		else if (strcmp(key, "format") == 0)
			rc = get_str(v, f, dk->format, sizeof(dk->format), err) < 0 ||
			     !one_of(dk->format, formats) ? bad(err, f, "must be raw, qcow2 or vmdk")
							  : 0;
		else if (strcmp(key, "readonly") == 0)
			rc = get_bool(v, f, &dk->readonly, err);
		else
			rc = bad(err, f, "unknown field");
		if (rc < 0)
			return rc;
	}
	if (!dk->path[0])
		return verr_set(err, EINVAL, "%s.path: required", field);
	return 0;
}

static bool mac_ok(const char *m)
{
	static const char hex[] = "0123456789abcdefABCDEF";

	if (strlen(m) != 17)
		return false;
	for (int i = 0; i < 17; i++)
		if (i % 3 == 2 ? m[i] != ':' : !strchr(hex, m[i]) || !m[i])
			return false;
	return true;
}

static int parse_net(json_object *o, const char *field, struct defn_net *n, struct verr *err)
{
	char f[96];
	int rc = 0;

	if (!json_object_is_type(o, json_type_object))
		return bad(err, field, "must be an object");
	json_object_object_foreach(o, key, v) {
		snprintf(f, sizeof(f), "%s.%.32s", field, key);
		if (strcmp(key, "tap") == 0)
			rc = get_str(v, f, n->tap, sizeof(n->tap), err) < 0 || !defn_name_ok(n->tap)
				     ? bad(err, f, "must be an interface name of 1-15 of "
					   "[A-Za-z0-9_.-]") : 0;
		else if (strcmp(key, "mac") == 0)
			rc = get_str(v, f, n->mac, sizeof(n->mac), err) < 0 || !mac_ok(n->mac)
				     ? bad(err, f, "must be xx:xx:xx:xx:xx:xx") : 0;
		else
			rc = bad(err, f, "unknown field");
		if (rc < 0)
			return rc;
	}
	if (!n->tap[0])
		return verr_set(err, EINVAL, "%s.tap: required", field);
	return 0;
}

static int parse_array(json_object *v, const char *field, size_t max, struct defn *d,
		       struct verr *err)
{
	bool disks = strcmp(field, "disks") == 0;
	char f[32];
	size_t n;
	int rc;

	if (!json_object_is_type(v, json_type_array))
		return bad(err, field, "must be an array");
	n = json_object_array_length(v);
	if (n > max)
		return verr_set(err, EINVAL, "%s: at most %zu entries", field, max);
	for (size_t i = 0; i < n; i++) {
		snprintf(f, sizeof(f), "%s[%zu]", field, i);
		json_object *e = json_object_array_get_idx(v, i);
		rc = disks ? parse_disk(e, f, &d->disks[i], err) : parse_net(e, f, &d->nets[i], err);
		if (rc < 0)
			return rc;
	}
	*(disks ? &d->n_disks : &d->n_nets) = n;
	return 0;
}

static bool uuid_ok(const char *u)
{
	static const char hex[] = "0123456789abcdef";

	if (strlen(u) != 36)
		return false;
	for (int i = 0; i < 36; i++) {
		bool dash = i == 8 || i == 13 || i == 18 || i == 23;
		if (dash ? u[i] != '-' : !strchr(hex, u[i]) || !u[i])
			return false;
	}
	return true;
}

static int make_uuid(char *out, struct verr *err)
{
	unsigned char b[16];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return verr_set(err, errno ? errno : EIO, "getrandom: %s", strerror(errno));
	b[6] = (b[6] & 0x0f) | 0x40; /* version 4 */
	b[8] = (b[8] & 0x3f) | 0x80; /* RFC 4122 variant */
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11],
		 b[12], b[13], b[14], b[15]);
	return 0;
}

static int parse_field(const char *key, json_object *v, struct defn *d, struct verr *err)
{
	static const char *const consoles[] = { "serial", "virtio", NULL };
	uint64_t x;

	if (strcmp(key, "name") == 0)
		return get_str(v, "name", d->name, sizeof(d->name), err) < 0 || !defn_name_ok(d->name)
			       ? bad(err, "name", "must be 1-64 of [A-Za-z0-9_.-], not starting "
				     "with '.' or '-'") : 0;
	if (strcmp(key, "uuid") == 0)
		return get_str(v, "uuid", d->uuid, sizeof(d->uuid), err) < 0 || !uuid_ok(d->uuid)
			       ? bad(err, "uuid", "must be a lower-case UUID "
				     "(xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)") : 0;
	if (strcmp(key, "memory") == 0)
		return get_memory(v, &d->memory_mib, err);
	if (strcmp(key, "vcpus") == 0) {
		if (get_uint(v, "vcpus", DEFN_MAX_VCPUS, &x, err) < 0)
			return -EINVAL;
		d->vcpus = (uint32_t)x;
		return 0;
	}
	if (strcmp(key, "kernel") == 0)
		return get_path(v, "kernel", d->kernel, err);
	if (strcmp(key, "initrd") == 0)
		return get_path(v, "initrd", d->initrd, err);
	if (strcmp(key, "cmdline") == 0)
		return get_str(v, "cmdline", d->cmdline, sizeof(d->cmdline), err);
	if (strcmp(key, "console") == 0)
		return get_str(v, "console", d->console, sizeof(d->console), err) < 0 ||
		       !one_of(d->console, consoles) ? bad(err, "console", "must be serial or "
							   "virtio") : 0;
	if (strcmp(key, "disks") == 0)
		return parse_array(v, "disks", DEFN_MAX_DISKS, d, err);
	if (strcmp(key, "nets") == 0)
		return parse_array(v, "nets", DEFN_MAX_NETS, d, err);
	return verr_set(err, EINVAL, "%.64s: unknown field", key);
}

static int parse_object(json_object *root, struct defn *d, struct verr *err)
{
	int rc;

	if (!json_object_is_type(root, json_type_object))
		return verr_set(err, EINVAL, "the definition must be a JSON object");
	json_object_object_foreach(root, key, v) {
		rc = parse_field(key, v, d, err);
		if (rc < 0)
			return rc;
	}
	if (!d->name[0])
		return bad(err, "name", "required");
	if (!d->kernel[0])
		return bad(err, "kernel", "required");
	return d->uuid[0] ? 0 : make_uuid(d->uuid, err);
}

static bool only_space(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t' && s[i] != '\n' && s[i] != '\r')
			return false;
	return true;
}

/* The text gets a terminating NUL, which json-c needs to see a bare
 * value ("null", "12") end. */
static int parse_text(struct json_tokener *tok, const char *text, size_t len,
		      struct defn *d, struct verr *err)
{
	char *copy = malloc(len + 1);
	json_object *root;
	size_t end;
	int rc;

	if (!copy)
		return verr_set(err, ENOMEM, "out of memory");
	memcpy(copy, text, len);
	copy[len] = '\0';
	root = json_tokener_parse_ex(tok, copy, (int)len + 1);
	end = json_tokener_get_parse_end(tok);
	if (end > len)
		end = len;
	if (!root && json_tokener_get_error(tok) == json_tokener_success) {
		rc = verr_set(err, EINVAL, "the definition must be a JSON object, not null");
	} else if (!root) {
		enum json_tokener_error e = json_tokener_get_error(tok);
		rc = verr_set(err, EINVAL, "malformed JSON at byte %zu: %s", end,
			      e == json_tokener_continue ? "unexpected end of the text"
							 : json_tokener_error_desc(e));
	} else if (!only_space(copy + end, len - end)) {
		rc = verr_set(err, EINVAL, "malformed JSON: text after the object at byte %zu", end);
	} else {
		rc = parse_object(root, d, err);
	}
	json_object_put(root);
	free(copy);
	return rc;
}

int defn_parse(const char *text, size_t len, struct defn *d, struct verr *err)
{
	struct json_tokener *tok;
	int rc;

	memset(d, 0, sizeof(*d));
	d->memory_mib = 128;
	d->vcpus = 1;
	strcpy(d->console, "serial");
	if (len > DEFN_MAX_TEXT)
		return verr_set(err, EINVAL, "the definition is larger than %u bytes", DEFN_MAX_TEXT);
	if (memchr(text, '\0', len))
		return verr_set(err, EINVAL, "the definition contains a NUL byte");
	tok = json_tokener_new_ex(32);
	if (!tok)
		return verr_set(err, ENOMEM, "out of memory");
	rc = parse_text(tok, text, len, d, err);
	json_tokener_free(tok);
	return rc;
}

static void add_str(json_object *o, const char *key, const char *v)
{
	if (v[0])
		json_object_object_add(o, key, json_object_new_string(v));
}

static json_object *disks_json(const struct defn *d)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; a && i < d->n_disks; i++) {
		json_object *o = json_object_new_object();
		add_str(o, "path", d->disks[i].path);
		add_str(o, "format", d->disks[i].format);
		json_object_object_add(o, "readonly", json_object_new_boolean(d->disks[i].readonly));
		json_object_array_add(a, o);
	}
	return a;
}

static json_object *nets_json(const struct defn *d)
{
	json_object *a = json_object_new_array();

	for (size_t i = 0; a && i < d->n_nets; i++) {
		json_object *o = json_object_new_object();
		add_str(o, "tap", d->nets[i].tap);
		add_str(o, "mac", d->nets[i].mac);
		json_object_array_add(a, o);
	}
	return a;
}

char *defn_to_json(const struct defn *d)
{
	json_object *o = json_object_new_object();
	char *out;

	if (!o)
		return NULL;
	add_str(o, "name", d->name);
	add_str(o, "uuid", d->uuid);
	json_object_object_add(o, "memory", json_object_new_int64(d->memory_mib));
	json_object_object_add(o, "vcpus", json_object_new_int64(d->vcpus));
	add_str(o, "kernel", d->kernel);
	add_str(o, "initrd", d->initrd);
	add_str(o, "cmdline", d->cmdline);
	add_str(o, "console", d->console);
	json_object_object_add(o, "disks", disks_json(d));
	json_object_object_add(o, "nets", nets_json(d));
	out = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
	return out;
}
