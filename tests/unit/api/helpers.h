/* SPDX-License-Identifier: Apache-2.0 */
/* Helpers for driving api_handle_request against the fake VMM in cmocka. */
#ifndef VIREO_TESTS_API_HELPERS_H
#define VIREO_TESTS_API_HELPERS_H

#include <setjmp.h>
#include <stdio.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <json-c/json.h>

#include "api/api.h"
#include "fake_vmm.h"

/* One request; returns the status, and the parsed JSON body in *out (NULL
 * for none) when out is given. Every body must be valid JSON. */
static inline int call(struct fake_vmm *f, const char *method, const char *path,
		       const char *body, struct json_object **out)
{
	int status = 0;
	char *resp = (char *)1;

	assert_int_equal(api_handle_request(&fake_vmm_ops, f, method, path, body,
					    body ? strlen(body) : 0, &status, &resp), 0);
	if (status == 204)
		assert_null(resp);
	else
		assert_non_null(resp);
	if (out) {
		*out = resp ? json_tokener_parse(resp) : NULL;
		if (resp)
			assert_non_null(*out);
	} else if (resp) {
		struct json_object *o = json_tokener_parse(resp);
		assert_non_null(o);
		json_object_put(o);
	}
	free(resp);
	return status;
}

/* Expect an error status whose body is exactly {"fault_message": "..."}
 * with the message containing needle. */
static inline void expect_fault(struct fake_vmm *f, const char *method, const char *path,
				const char *body, int status, const char *needle)
{
	struct json_object *o = NULL, *m;
	int st = call(f, method, path, body, &o);

	if (st != status || !json_object_object_get_ex(o, "fault_message", &m) ||
	    !strstr(json_object_get_string(m), needle))
		fail_msg("%s %s %s: got %d %s, wanted %d with '%s'", method, path,
			 body ? body : "", st, o ? json_object_to_json_string(o) : "(none)",
			 status, needle);
	assert_int_equal(json_object_object_length(o), 1);
	json_object_put(o);
}

static inline void expect_ok(struct fake_vmm *f, const char *method, const char *path,
			     const char *body)
{
	struct json_object *o = NULL;
	int st = call(f, method, path, body, &o);

	if (st != 204)
		fail_msg("%s %s %s: got %d %s, wanted 204", method, path, body ? body : "", st,
			 o ? json_object_to_json_string(o) : "");
	json_object_put(o);
}

static inline const char *jstr(struct json_object *o, const char *key)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(o, key, &v));
	assert_true(json_object_is_type(v, json_type_string));
	return json_object_get_string(v);
}

static inline int64_t jint(struct json_object *o, const char *key)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(o, key, &v));
	assert_true(json_object_is_type(v, json_type_int));
	return json_object_get_int64(v);
}

static inline bool jbool(struct json_object *o, const char *key)
{
	struct json_object *v;

	assert_true(json_object_object_get_ex(o, key, &v));
	assert_true(json_object_is_type(v, json_type_boolean));
	return json_object_get_boolean(v);
}

#endif
