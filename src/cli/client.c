/* SPDX-License-Identifier: Apache-2.0 */
/* `vireo pause|resume|info|snapshot|restore`: HTTP over the API's Unix
 * socket with libcurl, JSON with json-c. */
#include "cli/client.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <curl/curl.h>
#include <json-c/json.h>

/* Answers of the API are small; anything larger is not ours. */
#define CLIENT_MAX_RESPONSE (1024 * 1024)

enum verb_opt { VO_SNAPSHOT = 1, VO_MEM = 2, VO_DIFF = 4, VO_RESUME = 8 };

struct verb {
	const char *name;
	const char *summary;
	unsigned opts;      /* which of enum verb_opt it takes */
	const char *usage;  /* the options beyond --api-socket, --json, --help */
};

struct client_args {
	const struct verb *verb;
	const char *socket;
	const char *snapshot;
	const char *mem;
	bool json, diff, resume;
};

struct response {
	char *data;
	size_t len;
	bool overflow;
};

static const struct verb verbs[] = {
	{ "pause", "pause the VM's vCPUs (PATCH /vm {\"state\": \"Paused\"})", 0, "" },
	{ "resume", "resume a paused VM (PATCH /vm {\"state\": \"Resumed\"})", 0, "" },
	{ "info", "show the instance's id, state and version (GET /)", 0, "" },
	{ "snapshot", "write the VM's state and memory to files (PUT /snapshot/create); "
		      "pause it first", VO_SNAPSHOT | VO_MEM | VO_DIFF,
	  "  -s, --snapshot PATH   file for the VM state (required)\n"
	  "  -m, --mem PATH        file for the guest memory (required)\n"
	  "      --diff            only the memory dirtied since the last snapshot\n"
	  "                        (needs track_dirty_pages in the machine config)\n" },
	{ "restore", "load a snapshot into a fresh instance (PUT /snapshot/load)",
	  VO_SNAPSHOT | VO_MEM | VO_RESUME,
	  "  -s, --snapshot PATH   the VM state file (required)\n"
	  "  -m, --mem PATH        the guest memory file (required)\n"
	  "      --resume          run the VM once loaded (default: stay paused)\n" },
};

static void verb_usage(const struct verb *v, FILE *out)
{
	fprintf(out,
		"usage: vireo %s --api-socket PATH [options]\n"
		"\n"
		"%c%s.\n"
		"\n"
		"  -S, --api-socket PATH the Unix socket of the VMM's API (vireo run\n"
		"                        --api-socket, or a Firecracker --api-sock)\n"
		"%s"
		"      --json            print the server's JSON answer as it is\n"
		"  -h, --help            this help\n"
		"\n"
		"Exit status: 0 done; 1 the VMM refused (its message is printed);\n"
		"2 bad command line; 3 the API socket could not be reached.\n",
		v->name, toupper((unsigned char)v->summary[0]), v->summary + 1, v->usage);
}

enum { OPT_JSON = 256, OPT_DIFF, OPT_RESUME };

static const struct option client_options[] = {
	{ "api-socket", required_argument, NULL, 'S' },
	{ "snapshot", required_argument, NULL, 's' },
	{ "mem", required_argument, NULL, 'm' },
	{ "diff", no_argument, NULL, OPT_DIFF },
	{ "resume", no_argument, NULL, OPT_RESUME },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

static int usage_error(const struct verb *v, const char *fmt, const char *arg)
{
	fprintf(stderr, "vireo %s: ", v->name);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see 'vireo %s --help')\n", v->name);
	return -1;
}

/* An option the verb does not take is refused, not ignored. */
static bool takes(const struct verb *v, unsigned opt)
{
	return (v->opts & opt) != 0;
}

static int apply_opt(struct client_args *a, int opt, char **argv)
{
	const struct verb *v = a->verb;

	switch (opt) {
	case 'S': a->socket = optarg; return 0;
	case OPT_JSON: a->json = true; return 0;
	case 's': if (takes(v, VO_SNAPSHOT)) { a->snapshot = optarg; return 0; } break;
	case 'm': if (takes(v, VO_MEM)) { a->mem = optarg; return 0; } break;
	case OPT_DIFF: if (takes(v, VO_DIFF)) { a->diff = true; return 0; } break;
	case OPT_RESUME: if (takes(v, VO_RESUME)) { a->resume = true; return 0; } break;
	case ':': return usage_error(v, "option '%s' needs a value", argv[optind - 1]);
	default: break;
	}
	return usage_error(v, "unknown option '%s'", argv[optind - 1]);
}

/* Returns 0 to go on, 1 when help was shown, -1 on a usage error. */
static int parse_args(int argc, char **argv, struct client_args *a)
{
	int opt;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":S:s:m:h", client_options, NULL)) != -1) {
		if (opt == 'h') {
			verb_usage(a->verb, stdout);
			return 1;
		}
		if (apply_opt(a, opt, argv) < 0)
			return -1;
	}
	if (optind < argc)
		return usage_error(a->verb, "unexpected argument '%s'", argv[optind]);
	if (!a->socket)
		return usage_error(a->verb, "%s", "--api-socket PATH is required");
	if (takes(a->verb, VO_SNAPSHOT) && (!a->snapshot || !a->mem))
		return usage_error(a->verb, "%s", "--snapshot PATH and --mem PATH are required");
	return 0;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct response *r = userdata;
	size_t n = size * nmemb;
	char *nd;

	if (r->len + n > CLIENT_MAX_RESPONSE) {
		r->overflow = true;
		return 0; /* makes curl fail the transfer */
	}
	nd = realloc(r->data, r->len + n + 1);
	if (!nd)
		return 0;
	memcpy(nd + r->len, ptr, n);
	r->data = nd;
	r->len += n;
	r->data[r->len] = '\0';
	return n;
}

/* Explain why the socket cannot be used before curl gives a vaguer error. */
static int check_socket(const struct client_args *a)
{
	struct stat st;

	if (stat(a->socket, &st) < 0) {
		fprintf(stderr, "vireo %s: no API socket at %s (%s); is 'vireo run --api-socket "
			"%s' running?\n", a->verb->name, a->socket, strerror(errno), a->socket);
		return -1;
	}
	if (!S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "vireo %s: %s is not a socket\n", a->verb->name, a->socket);
		return -1;
	}
	return 0;
}

static CURL *make_handle(const struct client_args *a, const char *method, const char *path,
			 const char *body, struct curl_slist *hdrs, struct response *r,
			 char *errbuf)
{
	char url[256];
	CURL *c = curl_easy_init();

	if (!c)
		return NULL;
	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, a->socket);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	/* Snapshots of large guests take a while: no overall timeout for them,
	 * but a server that never accepts is noticed. */
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	if (!takes(a->verb, VO_SNAPSHOT))
		curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	return c;
}

/* One request. Returns the HTTP status, or -1 when it could not be made
 * (reported here). r->data holds the answer (may be NULL). */
static long request(const struct client_args *a, const char *method, const char *path,
		    const char *body, struct response *r)
{
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = NULL, *h;
	long status = -1;
	CURLcode rc;
	CURL *c;

	if (check_socket(a) < 0)
		return -1;
	/* No "Expect: 100-continue" round trip for our small bodies. */
	h = curl_slist_append(NULL, "Expect:");
	hdrs = h ? curl_slist_append(h, "Content-Type: application/json") : NULL;
	if (!hdrs)
		curl_slist_free_all(h);
	c = hdrs ? make_handle(a, method, path, body, hdrs, r, errbuf) : NULL;
	if (!c) {
		curl_slist_free_all(hdrs);
		fprintf(stderr, "vireo %s: out of memory\n", a->verb->name);
		return -1;
	}
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	else
		fprintf(stderr, "vireo %s: cannot talk to %s: %s\n", a->verb->name, a->socket,
			r->overflow ? "the answer is too large" :
			errbuf[0] ? errbuf : curl_easy_strerror(rc));
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	return status;
}

static void print_fault(const struct client_args *a, long status, const char *body)
{
	struct json_object *o = body ? json_tokener_parse(body) : NULL, *m = NULL;

	if (o && json_object_object_get_ex(o, "fault_message", &m) &&
	    json_object_is_type(m, json_type_string))
		fprintf(stderr, "vireo %s: %s (HTTP %ld)\n", a->verb->name,
			json_object_get_string(m), status);
	else
		fprintf(stderr, "vireo %s: the server answered HTTP %ld\n", a->verb->name, status);
	json_object_put(o);
}

/* Make the request and turn its outcome into an exit status; on success
 * *out (if given) receives the answer for the caller to free. */
static int run(const struct client_args *a, const char *method, const char *path,
	       const char *body, char **out)
{
	struct response r = { 0 };
	long status = request(a, method, path, body, &r);
	int code = CLIENT_EXIT_OK;

	if (status < 0) {
		code = CLIENT_EXIT_UNREACHABLE;
	} else if (status < 200 || status > 299) {
		print_fault(a, status, r.data);
		if (a->json && r.data)
			printf("%s\n", r.data);
		code = CLIENT_EXIT_REFUSED;
	} else if (out) {
		*out = r.data;
		return code;
	}
	free(r.data);
	return code;
}

static int run_json(const struct client_args *a, const char *method, const char *path,
		    struct json_object *body)
{
	const char *text = body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN |
							JSON_C_TO_STRING_NOSLASHESCAPE) : NULL;
	int code;

	if (!text) {
		fprintf(stderr, "vireo %s: out of memory\n", a->verb->name);
		json_object_put(body);
		return CLIENT_EXIT_UNREACHABLE;
	}
	code = run(a, method, path, text, NULL);
	json_object_put(body);
	return code;
}

static struct json_object *object_with(const char *key, struct json_object *val)
{
	struct json_object *o = json_object_new_object();

	if (o)
		json_object_object_add(o, key, val);
	else
		json_object_put(val);
	return o;
}

static int do_vm_state(const struct client_args *a, const char *state)
{
	return run_json(a, "PATCH", "/vm", object_with("state", json_object_new_string(state)));
}

static const char *field(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		return json_object_get_string(v);
	return "?";
}

static int do_info(const struct client_args *a)
{
	char *body = NULL;
	struct json_object *o;
	int code = run(a, "GET", "/", NULL, &body);

	if (code != CLIENT_EXIT_OK)
		return code;
	if (a->json) {
		printf("%s\n", body ? body : "");
		free(body);
		return code;
	}
	o = body ? json_tokener_parse(body) : NULL;
	free(body);
	if (!json_object_is_type(o, json_type_object)) {
		fprintf(stderr, "vireo info: the server's answer is not a JSON object\n");
		json_object_put(o);
		return CLIENT_EXIT_REFUSED;
	}
	printf("id:          %s\nstate:       %s\nvmm_version: %s\napp_name:    %s\n",
	       field(o, "id"), field(o, "state"), field(o, "vmm_version"),
	       field(o, "app_name"));
	json_object_put(o);
	return code;
}

static int do_snapshot(const struct client_args *a)
{
	struct json_object *o = json_object_new_object();

	if (o) {
		json_object_object_add(o, "snapshot_type",
				       json_object_new_string(a->diff ? "Diff" : "Full"));
		json_object_object_add(o, "snapshot_path", json_object_new_string(a->snapshot));
		json_object_object_add(o, "mem_file_path", json_object_new_string(a->mem));
	}
	return run_json(a, "PUT", "/snapshot/create", o);
}

static int do_restore(const struct client_args *a)
{
	struct json_object *o = json_object_new_object();
	struct json_object *mb = json_object_new_object();

	if (mb) {
		json_object_object_add(mb, "backend_type", json_object_new_string("File"));
		json_object_object_add(mb, "backend_path", json_object_new_string(a->mem));
	}
	if (o) {
		json_object_object_add(o, "snapshot_path", json_object_new_string(a->snapshot));
		json_object_object_add(o, "mem_backend", mb);
		json_object_object_add(o, "resume_vm", json_object_new_boolean(a->resume));
	} else {
		json_object_put(mb);
	}
	return run_json(a, "PUT", "/snapshot/load", o);
}

static int client_main(size_t verb, int argc, char **argv)
{
	struct client_args a = { .verb = &verbs[verb] };
	int rc = parse_args(argc, argv, &a);

	if (rc != 0)
		return rc > 0 ? CLIENT_EXIT_OK : CLIENT_EXIT_USAGE;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "vireo %s: cannot initialise libcurl\n", a.verb->name);
		return CLIENT_EXIT_UNREACHABLE;
	}
	switch (verb) {
	case 0: rc = do_vm_state(&a, "Paused"); break;
	case 1: rc = do_vm_state(&a, "Resumed"); break;
	case 2: rc = do_info(&a); break;
	case 3: rc = do_snapshot(&a); break;
	default: rc = do_restore(&a); break;
	}
	curl_global_cleanup();
	return rc;
}

int cmd_pause(int argc, char **argv) { return client_main(0, argc, argv); }
int cmd_resume(int argc, char **argv) { return client_main(1, argc, argv); }
int cmd_info(int argc, char **argv) { return client_main(2, argc, argv); }
int cmd_snapshot(int argc, char **argv) { return client_main(3, argc, argv); }
int cmd_restore(int argc, char **argv) { return client_main(4, argc, argv); }
