/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Table-driven, strict mapping of JSON objects onto C structs. Every
 * request body is hostile: each field's JSON type is checked, strings must
 * fit their buffer and hold no NUL, integers must be non-negative and fit,
 * and a field the table does not name is refused by name, as Firecracker
 * refuses unknown fields.
 */
#ifndef VIREO_API_FIELDS_H
#define VIREO_API_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "core/err.h"

enum api_fkind {
	AF_STR,         /* string into char[size]; choices limit the values */
	AF_BOOL,        /* bool */
	AF_UINT,        /* unsigned integer of size 4 or 8 */
	AF_UNSUPPORTED, /* known to Firecracker, not to vireo: only null, false or a choice */
	AF_CUSTOM,      /* custom(value, target, err) */
};

struct api_field {
	const char *name;
	enum api_fkind kind;
	bool required;
	size_t off;
	size_t size;
	const char *const *choices; /* NULL-terminated */
	int (*custom)(struct json_object *v, void *target, struct verr *err);
};

#define API_MEMBER_SIZE(type, m) sizeof(((type *)0)->m)
/* name is the JSON key; m the member (possibly nested) of the target type. */
#define AF_STR_FIELD(name, type, m, req) \
	{ name, AF_STR, req, offsetof(type, m), API_MEMBER_SIZE(type, m), NULL, NULL }
#define AF_ENUM_FIELD(name, type, m, req, ch) \
	{ name, AF_STR, req, offsetof(type, m), API_MEMBER_SIZE(type, m), ch, NULL }
#define AF_BOOL_FIELD(name, type, m, req) \
	{ name, AF_BOOL, req, offsetof(type, m), API_MEMBER_SIZE(type, m), NULL, NULL }
#define AF_UINT_FIELD(name, type, m, req) \
	{ name, AF_UINT, req, offsetof(type, m), API_MEMBER_SIZE(type, m), NULL, NULL }
#define AF_UNSUPPORTED_FIELD(name, ch) { name, AF_UNSUPPORTED, false, 0, 0, ch, NULL }
#define AF_CUSTOM_FIELD(name, req, fn) { name, AF_CUSTOM, req, 0, 0, NULL, fn }
#define AF_COUNT(tbl) (sizeof(tbl) / sizeof((tbl)[0]))

/* Fields are applied in table order. With partial, required fields may be
 * absent (PATCH). *seen (may be NULL) gets bit i set for field i present;
 * tables have at most 32 entries. what names the object in messages. */
int api_fields_parse(struct json_object *obj, const char *what, const struct api_field *fields,
		     size_t n, void *target, bool partial, uint32_t *seen, struct verr *err);

/* Strict parse of a whole text as one JSON value: no trailing bytes, valid
 * UTF-8, no NUL, bounded nesting. */
int api_json_parse(const char *text, size_t len, struct json_object **out, struct verr *err);

/* A string field's value into buf (helper for custom fields). */
int api_json_string(struct json_object *v, const char *name, char *buf, size_t size,
		    struct verr *err);

#endif
