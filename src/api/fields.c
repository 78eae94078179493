/* SPDX-License-Identifier: Apache-2.0 */
#include "api/fields.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Our bodies nest at most four levels (config file -> drives -> drive ->
 * rate_limiter); a low bound keeps json-c's recursive free cheap. */
#define API_JSON_DEPTH 16

static const char *json_type_word(struct json_object *v)
{
	switch (json_object_get_type(v)) {
	case json_type_null: return "null";
	case json_type_boolean: return "a boolean";
	case json_type_double: return "a number with a fraction";
	case json_type_int: return "an integer";
	case json_type_object: return "an object";
	case json_type_array: return "an array";
	case json_type_string: return "a string";
	}
	return "an unknown value";
}

int api_json_parse(const char *text, size_t len, struct json_object **out, struct verr *err)
{
	struct json_tokener *tok;
	struct json_object *obj;
	enum json_tokener_error jerr;
	size_t used;

	*out = NULL;
	if (len == 0)
		return verr_set(err, EINVAL, "the body is empty: expected a JSON object");
	if (len > INT32_MAX)
		return verr_set(err, EINVAL, "the body is too large");
	if (memchr(text, '\0', len))
		return verr_set(err, EINVAL, "invalid JSON: the body holds a NUL byte");
	tok = json_tokener_new_ex(API_JSON_DEPTH);
	if (!tok)
		return verr_set(err, ENOMEM, "out of memory parsing JSON");
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, text, (int)len);
	jerr = json_tokener_get_error(tok);
	used = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue) {
		/* A top-level scalar ("42", "null") only ends at the end of the
		 * input, which json-c learns from a terminating NUL. */
		obj = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		used = len;
	}
	json_tokener_free(tok);
	if (jerr == json_tokener_success && !obj)
		return verr_set(err, EINVAL, "expected a JSON object, not null");
	if (!obj || jerr != json_tokener_success) {
		json_object_put(obj);
		return verr_set(err, EINVAL, "invalid JSON at byte %zu: %s", used,
				jerr == json_tokener_continue ? "unexpected end of input"
							      : json_tokener_error_desc(jerr));
	}
	/* json-c stops after the first value; anything but whitespace after it
	 * would be silently dropped, so refuse it. */
	for (; used < len; used++) {
		if (!strchr(" \t\r\n", text[used])) {
			json_object_put(obj);
			return verr_set(err, EINVAL, "invalid JSON: unexpected data at byte %zu "
					"after the value", used);
		}
	}
	*out = obj;
	return 0;
}

int api_json_string(struct json_object *v, const char *name, char *buf, size_t size,
		    struct verr *err)
{
	size_t len;

	if (!json_object_is_type(v, json_type_string))
		return verr_set(err, EINVAL, "'%s' must be a string, not %s", name,
				json_type_word(v));
	len = (size_t)json_object_get_string_len(v);
	if (len >= size)
		return verr_set(err, EINVAL, "'%s' is too long (%zu bytes; at most %zu)", name,
				len, size - 1);
	memcpy(buf, json_object_get_string(v), len);
	buf[len] = '\0';
	if (strlen(buf) != len)
		return verr_set(err, EINVAL, "'%s' must not contain a NUL character", name);
	return 0;
}

static bool is_choice(const char *s, const char *const *choices)
{
	for (; *choices; choices++)
		if (strcmp(s, *choices) == 0)
			return true;
	return false;
}

static int choice_error(const char *name, const char *value, const char *const *choices,
			struct verr *err)
{
	char list[256] = "";
	size_t used = 0;

	for (; *choices && used < sizeof(list); choices++)
		used += (size_t)snprintf(list + used, sizeof(list) - used, "%s\"%s\"",
					 used ? ", " : "", *choices);
	return verr_set(err, EINVAL, "'%s' has the unknown value \"%.64s\" (expected one of %s)",
			name, value, list);
}

static int parse_str(struct json_object *v, const struct api_field *f, char *dst,
		     struct verr *err)
{
	int rc = api_json_string(v, f->name, dst, f->size, err);

	if (rc == 0 && f->choices && !is_choice(dst, f->choices))
		return choice_error(f->name, dst, f->choices, err);
	return rc;
}

static int parse_uint(struct json_object *v, const struct api_field *f, void *dst,
		      struct verr *err)
{
	uint64_t max = f->size == 4 ? UINT32_MAX : UINT64_MAX;
	uint64_t u;

	if (!json_object_is_type(v, json_type_int))
		return verr_set(err, EINVAL, "'%s' must be an integer, not %s", f->name,
				json_type_word(v));
	if (json_object_get_int64(v) < 0)
		return verr_set(err, EINVAL, "'%s' must not be negative", f->name);
	/* json-c keeps integers above INT64_MAX as uint64; beyond that it
	 * saturates, so UINT64_MAX itself is refused as "too large". */
	u = json_object_get_uint64(v);
	if (u > max || u == UINT64_MAX)
		return verr_set(err, EINVAL, "'%s' is too large", f->name);
	if (f->size == 4) {
		uint32_t u32 = (uint32_t)u;
		memcpy(dst, &u32, sizeof(u32));
	} else {
		memcpy(dst, &u, sizeof(u));
	}
	return 0;
}

static int parse_unsupported(struct json_object *v, const struct api_field *f,
			     struct verr *err)
{
	if (json_object_is_type(v, json_type_null))
		return 0;
	if (json_object_is_type(v, json_type_boolean) && !json_object_get_boolean(v))
		return 0;
	if (f->choices && json_object_is_type(v, json_type_string) &&
	    is_choice(json_object_get_string(v), f->choices))
		return 0;
	if (f->choices)
		return verr_set(err, ENOTSUP, "'%s' is not supported by vireo (only \"%s\" is)",
				f->name, f->choices[0]);
	return verr_set(err, ENOTSUP, "'%s' is not supported by vireo", f->name);
}

static int parse_one(struct json_object *v, const struct api_field *f, void *target,
		     struct verr *err)
{
	char *dst = (char *)target + f->off;

	switch (f->kind) {
	case AF_STR:
		return parse_str(v, f, dst, err);
	case AF_BOOL:
		if (!json_object_is_type(v, json_type_boolean))
			return verr_set(err, EINVAL, "'%s' must be a boolean, not %s", f->name,
					json_type_word(v));
		*(bool *)(void *)dst = json_object_get_boolean(v);
		return 0;
	case AF_UINT:
		return parse_uint(v, f, dst, err);
	case AF_UNSUPPORTED:
		return parse_unsupported(v, f, err);
	case AF_CUSTOM:
		return f->custom(v, target, err);
	}
	return verr_set(err, EINVAL, "'%s': internal error (bad field kind)", f->name);
}

static int check_unknown(struct json_object *obj, const char *what,
			 const struct api_field *fields, size_t n, struct verr *err)
{
	json_object_object_foreach(obj, key, val) {
		size_t i;
		(void)val;
		for (i = 0; i < n && strcmp(key, fields[i].name) != 0; i++)
			;
		if (i == n)
			return verr_set(err, EINVAL, "%s: unknown field '%.64s'", what, key);
	}
	return 0;
}

int api_fields_parse(struct json_object *obj, const char *what, const struct api_field *fields,
		     size_t n, void *target, bool partial, uint32_t *seen, struct verr *err)
{
	uint32_t mask = 0;
	int rc;

	if (n > 32) /* the seen mask has 32 bits */
		return verr_set(err, EINVAL, "%s: internal error (field table too large)", what);
	if (!json_object_is_type(obj, json_type_object))
		return verr_set(err, EINVAL, "%s must be a JSON object, not %s", what,
				json_type_word(obj));
	rc = check_unknown(obj, what, fields, n, err);
	if (rc < 0)
		return rc;
	/* Bad values first, so that e.g. a vhost-user drive ("socket") is told
	 * about the missing feature rather than the missing path_on_host. */
	for (size_t i = 0; i < n; i++) {
		struct json_object *v;

		if (!json_object_object_get_ex(obj, fields[i].name, &v))
			continue;
		rc = parse_one(v, &fields[i], target, err);
		if (rc < 0)
			return verr_prefix(err, "%s: ", what);
		mask |= 1u << i;
	}
	for (size_t i = 0; i < n && !partial; i++)
		if (fields[i].required && !(mask & (1u << i)))
			return verr_set(err, EINVAL, "%s: missing required field '%s'", what,
					fields[i].name);
	if (seen)
		*seen = mask;
	return 0;
}
