/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: a sequence of API requests against the fake VMM, so
 * the state machine is walked as well as the parsers. The input is split
 * into records at '\x1e'; each record is
 *     [method byte] [path byte] [path text '\n'] body...
 * The method byte picks GET/PUT/PATCH/other; the path byte picks a known
 * path (or, when high, the record's own path text, so odd paths and ids
 * are tried). A first byte of '#' instead feeds the rest to
 * api_load_config_file through a memfd.
 *
 * Build and run (from the repository root):
 *   clang -std=c17 -D_GNU_SOURCE -DVIREO_VERSION='"fuzz"' -Isrc -Itests/unit/api -g -O1 \
 *     -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *     -o build-fuzz/fuzz_api_request tests/fuzz/fuzz_api_request.c \
 *     src/api/fields.c src/api/resources.c src/api/routes.c src/api/config.c \
 *     src/core/err.c src/core/log.c tests/unit/api/fake_vmm.c -ljson-c
 *   build-fuzz/fuzz_api_request -max_total_time=30 -max_len=70000 build-fuzz/corpus_api
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <json-c/json.h>

#include "api/api.h"
#include "fake_vmm.h"

#define MAX_RECORDS 16

static const char *const methods[] = { "GET", "PUT", "PATCH", "POST", "DELETE", "" };

static const char *const paths[] = {
	"/", "/version", "/machine-config", "/boot-source", "/drives/rootfs",
	"/network-interfaces/eth0", "/vsock", "/actions", "/vm", "/vm/config",
	"/snapshot/create", "/snapshot/load", "/vireo/stats", "/vireo/clone", "/logger",
	"/balloon", "/drives/", "/pmem/x", "/entropy",
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* Every answer must be one valid JSON object, even for hostile requests. */
static void check_json(const char *text)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;

	if (!tok)
		return;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	o = json_tokener_parse_ex(tok, text, (int)strlen(text) + 1);
	if (!json_object_is_type(o, json_type_object))
		abort();
	json_object_put(o);
	json_tokener_free(tok);
}

static void one_request(struct fake_vmm *f, const uint8_t *rec, size_t size)
{
	const char *method, *path;
	char own[300];
	const uint8_t *text, *nl, *body;
	size_t tlen, plen;
	char *resp = NULL;
	int status = 0;

	if (size < 2)
		return;
	method = methods[rec[0] % COUNT(methods)];
	text = rec + 2;
	tlen = size - 2;
	nl = memchr(text, '\n', tlen);
	plen = nl ? (size_t)(nl - text) : 0;
	body = nl ? nl + 1 : text;
	if (rec[1] < 200) {
		path = paths[rec[1] % COUNT(paths)];
	} else {
		if (plen >= sizeof(own))
			plen = sizeof(own) - 1;
		memcpy(own, text, plen);
		own[plen] = '\0';
		path = own;
	}
	/* a copy exactly the body's size, so ASan sees any read past it */
	size_t blen = (size_t)(rec + size - body);
	char *b = blen ? malloc(blen) : NULL;
	if (blen && !b)
		return;
	if (b)
		memcpy(b, body, blen);
	api_handle_request(&fake_vmm_ops, f, method, path, b, blen, &status, &resp);
	if (status < 200 || status > 599)
		abort();
	if ((status == 204) != (resp == NULL))
		abort();
	if (resp)
		check_json(resp);
	free(resp);
	free(b);
}

static void config_file(struct fake_vmm *f, const uint8_t *data, size_t size)
{
	char path[64];
	struct verr err = { 0 };
	int fd = memfd_create("fuzz-config", MFD_CLOEXEC);

	if (fd < 0)
		return;
	if (write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		api_load_config_file(path, &fake_vmm_ops, f, &err);
	}
	close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fake_vmm f;
	size_t n = 0;

	fake_vmm_init(&f);
	if (size && data[0] == '#') {
		config_file(&f, data + 1, size - 1);
		return 0;
	}
	while (size && n++ < MAX_RECORDS) {
		const uint8_t *end = memchr(data, 0x1e, size);
		size_t len = end ? (size_t)(end - data) : size;

		one_request(&f, data, len);
		data += len + (end ? 1 : 0);
		size -= len + (end ? 1 : 0);
	}
	return 0;
}
