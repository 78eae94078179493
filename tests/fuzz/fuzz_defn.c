/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: vireod's VM definition parser (src/daemon/defn.c) on
 * arbitrary bytes. Whatever it accepts must come back unchanged through its
 * own canonical JSON (defn_to_json, then defn_parse again).
 *
 *   scripts/fuzz.sh 30 defn
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/defn.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct defn *d = malloc(sizeof(*d)), *again = malloc(sizeof(*again));
	struct verr err = { 0 };
	char *json;

	if (!d || !again)
		goto out;
	if (defn_parse((const char *)data, size, d, &err) < 0)
		goto out;
	json = defn_to_json(d);
	if (!json)
		goto out;
	if (defn_parse(json, strlen(json), again, &err) < 0 ||
	    memcmp(d, again, sizeof(*d)) != 0) {
		fprintf(stderr, "round trip changed the definition: %s\n", err.msg);
		abort();
	}
	free(json);
out:
	free(d);
	free(again);
	return 0;
}
