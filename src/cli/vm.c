/* SPDX-License-Identifier: Apache-2.0 */
/* `vireo vm VERB`: the daemon's client, HTTP over its Unix socket with
 * libcurl, JSON with json-c. */
#include "cli/mgmt.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <termios.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <json-c/json.h>

#include "cli/client.h"

#define VM_MAX_RESPONSE (4u << 20)
#define VM_MAX_DEFINITION (1u << 20)
#define DEFAULT_CONNECT "/run/vireo/vireod.sock"

struct vm_args {
	const char *verb;
	const char *connect;
	const char *arg[2];   /* positional arguments */
	int n_args;
	bool all, json;
	long timeout_s;
};

struct buf {
	char *data;
	size_t len;
	bool overflow;
};

static const struct {
	const char *name, *args, *summary;
} verbs[] = {
	{ "define", "FILE", "define a VM from a JSON definition" },
	{ "undefine", "NAME", "forget a VM that is not running" },
	{ "list", "[--all]", "list running and paused VMs (--all: every defined VM)" },
	{ "info", "NAME", "show a VM's state (and, if it crashed, why)" },
	{ "dumpconfig", "NAME", "print a VM's definition as JSON" },
	{ "start", "NAME", "start a VM (its own `vireo run` process)" },
	{ "shutdown", "NAME [--timeout S]", "send Ctrl-Alt-Del and wait for the VM to end" },
	{ "destroy", "NAME", "stop a VM at once (SIGTERM, then SIGKILL)" },
	{ "suspend", "NAME", "pause a running VM" },
	{ "resume", "NAME", "resume a paused VM" },
	{ "autostart", "NAME on|off", "start the VM whenever the daemon starts" },
	{ "stats", "NAME", "show a running VM's CPU time, memory and exit counters" },
	{ "console", "NAME", "show the VM's console output and follow it (Ctrl-] detaches)" },
};
#define N_VERBS (sizeof(verbs) / sizeof(verbs[0]))

static void vm_usage(FILE *out)
{
	fprintf(out, "usage: vireo vm VERB [--connect PATH] [--json] ARGS\n\nverbs:\n");
	for (size_t i = 0; i < N_VERBS; i++)
		fprintf(out, "  %-10s %-20s %s\n", verbs[i].name, verbs[i].args, verbs[i].summary);
	fprintf(out, "\n  -c, --connect PATH  the daemon's socket (default $VIREO_CONNECT, else\n"
		     "                      " DEFAULT_CONNECT ")\n"
		     "      --json          print the daemon's JSON answer\n"
		     "\nExit status: 0 done; 1 refused (the daemon's message is printed); 2 bad\n"
		     "command line; 3 the daemon could not be reached.\n");
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "vireo vm: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see 'vireo vm --help')\n");
	return -1;
}

static int verb_args(const char *verb)
{
	if (strcmp(verb, "list") == 0)
		return 0;
	return strcmp(verb, "autostart") == 0 ? 2 : 1;
}

static int parse(int argc, char **argv, struct vm_args *a)
{
	static const struct option opts[] = {
		{ "connect", required_argument, NULL, 'c' },
		{ "all", no_argument, NULL, 'a' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	char *end;
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': a->connect = optarg; break;
		case 'a': a->all = true; break;
		case 'j': a->json = true; break;
		case 't':
			errno = 0;
			a->timeout_s = strtol(optarg, &end, 10);
			if (errno || *end || a->timeout_s < 1 || a->timeout_s > 3600)
				return usage_error("--timeout must be 1 to 3600 seconds, not '%s'",
						   optarg);
			break;
		case 'h': vm_usage(stdout); return 1;
		default: return usage_error("bad option '%s'", argv[optind - 1]);
		}
	}
	for (; optind < argc; optind++) {
		if (a->n_args >= verb_args(a->verb))
			return usage_error("unexpected argument '%s'", argv[optind]);
		a->arg[a->n_args++] = argv[optind];
	}
	if (a->n_args < verb_args(a->verb))
		return usage_error("'%s' needs more arguments", a->verb);
	return 0;
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct buf *r = userdata;
	size_t n = size * nmemb;
	char *nd;

	if (r->len + n > VM_MAX_RESPONSE) {
		r->overflow = true;
		return 0;
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

/* One request; the HTTP status, or -1 when the daemon was not reached. */
static long request(const struct vm_args *a, const char *method, const char *path,
		    const char *body, struct buf *r)
{
	char url[512], errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdrs = curl_slist_append(NULL, "Expect:");
	long status = -1;
	CURL *c = curl_easy_init();
	CURLcode rc;

	if (!c || !hdrs) {
		fprintf(stderr, "vireo vm %s: cannot initialise libcurl\n", a->verb);
		curl_easy_cleanup(c);
		curl_slist_free_all(hdrs);
		return -1;
	}
	snprintf(url, sizeof(url), "http://localhost%s", path);
	curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, a->connect);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
	if (body)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	else
		fprintf(stderr, "vireo vm %s: cannot talk to the daemon at %s: %s\n", a->verb,
			a->connect, r->overflow ? "the answer is too large" :
			errbuf[0] ? errbuf : curl_easy_strerror(rc));
	curl_easy_cleanup(c);
	curl_slist_free_all(hdrs);
	return status;
}

static void print_error(const struct vm_args *a, long status, const char *body)
{
	json_object *o = body ? json_tokener_parse(body) : NULL, *m;

	if (o && json_object_object_get_ex(o, "error", &m) &&
	    json_object_is_type(m, json_type_string))
		fprintf(stderr, "vireo vm %s: %s\n", a->verb, json_object_get_string(m));
	else
		fprintf(stderr, "vireo vm %s: the daemon answered HTTP %ld\n", a->verb, status);
	json_object_put(o);
}

/* The exit status; on success *out (if given) gets the parsed answer. */
static int call(const struct vm_args *a, const char *method, const char *path,
		const char *body, json_object **out)
{
	struct buf r = { 0 };
	long status = request(a, method, path, body, &r);
	int code = CLIENT_EXIT_OK;

	if (status < 0) {
		code = CLIENT_EXIT_UNREACHABLE;
	} else if (status < 200 || status > 299) {
		print_error(a, status, r.data);
		code = CLIENT_EXIT_REFUSED;
	} else if (out) {
		*out = r.data ? json_tokener_parse(r.data) : NULL;
		if (!*out) {
			fprintf(stderr, "vireo vm %s: the daemon's answer is not JSON\n", a->verb);
			code = CLIENT_EXIT_REFUSED;
		}
	}
	free(r.data);
	return code;
}

static const char *str_field(json_object *o, const char *key, const char *dflt)
{
	json_object *v;

	if (o && json_object_object_get_ex(o, key, &v) && !json_object_is_type(v, json_type_null))
		return json_object_get_string(v);
	return dflt;
}

static void print_json(json_object *o)
{
	printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
						      JSON_C_TO_STRING_NOSLASHESCAPE));
}

static int read_file(const char *path, char **out)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "re");
	size_t n;
	char *b;

	if (!f) {
		fprintf(stderr, "vireo vm define: cannot open %s: %s\n", path, strerror(errno));
		return -1;
	}
	b = malloc(VM_MAX_DEFINITION + 1);
	n = b ? fread(b, 1, VM_MAX_DEFINITION + 1, f) : 0;
	if (f != stdin)
		fclose(f);
	if (!b || n > VM_MAX_DEFINITION) {
		fprintf(stderr, "vireo vm define: %s: %s\n", path,
			b ? "larger than 1 MiB" : "out of memory");
		free(b);
		return -1;
	}
	b[n] = '\0';
	*out = b;
	return 0;
}

static int do_define(const struct vm_args *a)
{
	json_object *o = NULL;
	char *text;
	int code;

	if (read_file(a->arg[0], &text) < 0)
		return CLIENT_EXIT_REFUSED;
	code = call(a, "POST", "/vms", text, &o);
	free(text);
	if (code == CLIENT_EXIT_OK) {
		if (a->json)
			print_json(o);
		else
			printf("defined %s (uuid %s)\n", str_field(o, "name", "?"),
			       str_field(o, "uuid", "?"));
	}
	json_object_put(o);
	return code;
}

static int do_list(const struct vm_args *a)
{
	json_object *o = NULL, *vms, *vm;
	int code = call(a, "GET", "/vms", NULL, &o);

	if (code != CLIENT_EXIT_OK || a->json) {
		if (o)
			print_json(o);
		json_object_put(o);
		return code;
	}
	printf("%-32s %-10s %s\n", "NAME", "STATE", "PID");
	if (json_object_object_get_ex(o, "vms", &vms) && json_object_is_type(vms, json_type_array))
		for (size_t i = 0; i < json_object_array_length(vms); i++) {
			vm = json_object_array_get_idx(vms, i);
			const char *state = str_field(vm, "state", "?");
			if (!a->all && strcmp(state, "running") != 0 && strcmp(state, "paused") != 0)
				continue;
			printf("%-32s %-10s %s\n", str_field(vm, "name", "?"), state,
			       str_field(vm, "pid", "-"));
		}
	json_object_put(o);
	return code;
}

static int do_info(const struct vm_args *a, const char *path)
{
	static const char *const keys[] = { "name", "uuid", "state", "pid", "memory", "vcpus",
					    "autostart", "exit", "console_log", NULL };
	json_object *o = NULL;
	int code = call(a, "GET", path, NULL, &o);

	if (code != CLIENT_EXIT_OK)
		return code;
	if (a->json) {
		print_json(o);
	} else {
		for (int i = 0; keys[i]; i++)
			if (str_field(o, keys[i], NULL))
				printf("%-12s %s%s\n", keys[i], str_field(o, keys[i], ""),
				       strcmp(keys[i], "memory") == 0 ? " MiB" : "");
		if (str_field(o, "console_tail", NULL))
			printf("last console output:\n%s", str_field(o, "console_tail", ""));
	}
	json_object_put(o);
	return code;
}

static int print_get(const struct vm_args *a, const char *path)
{
	json_object *o = NULL;
	int code = call(a, "GET", path, NULL, &o);

	if (code == CLIENT_EXIT_OK)
		print_json(o);
	json_object_put(o);
	return code;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* After Ctrl-Alt-Del: the guest decides; wait for its process to end. */
static int wait_stopped(const struct vm_args *a, const char *path)
{
	long waited_ms = 0, limit_ms = (a->timeout_s ? a->timeout_s : 30) * 1000;
	json_object *o;
	int code;

	for (;;) {
		o = NULL;
		code = call(a, "GET", path, NULL, &o);
		if (code != CLIENT_EXIT_OK)
			return code;
		const char *state = str_field(o, "state", "?");
		bool done = strcmp(state, "shut off") == 0 || strcmp(state, "crashed") == 0;
		if (done)
			printf("%s is %s\n", a->arg[0], state);
		json_object_put(o);
		if (done)
			return CLIENT_EXIT_OK;
		if (waited_ms >= limit_ms)
			break;
		sleep_ms(100);
		waited_ms += 100;
	}
	fprintf(stderr, "vireo vm shutdown: %s did not stop within %ld s (try 'vireo vm destroy "
		"%s')\n", a->arg[0], limit_ms / 1000, a->arg[0]);
	return CLIENT_EXIT_REFUSED;
}

static int do_autostart(const struct vm_args *a, const char *path)
{
	char url[256];
	bool on = strcmp(a->arg[1], "on") == 0;

	if (!on && strcmp(a->arg[1], "off") != 0) {
		usage_error("autostart takes on or off, not '%s'", a->arg[1]);
		return CLIENT_EXIT_USAGE;
	}
	snprintf(url, sizeof(url), "%s/autostart", path);
	return call(a, "PUT", url, on ? "{\"autostart\": true}" : "{\"autostart\": false}", NULL);
}

static int do_action(const struct vm_args *a, const char *path)
{
	char url[256];
	int code;

	snprintf(url, sizeof(url), "%s/%s", path, strcmp(a->verb, "destroy") == 0 ? "destroy" :
		 a->verb);
	code = call(a, "POST", url, NULL, NULL);
	if (code != CLIENT_EXIT_OK)
		return code;
	if (strcmp(a->verb, "shutdown") == 0)
		return wait_stopped(a, path);
	printf("%s: %s done\n", a->arg[0], a->verb);
	return code;
}

/* Copies what the file holds beyond our offset to stdout. */
static void drain(int fd)
{
	char b[4096];
	ssize_t n;

	while ((n = read(fd, b, sizeof(b))) > 0)
		if (fwrite(b, 1, (size_t)n, stdout) != (size_t)n)
			break;
	fflush(stdout);
}

/* The logger rotated the file: finish the old one, go on with the new. */
static int follow_rotation(int fd, const char *log)
{
	struct stat now, cur;
	int nfd;

	if (stat(log, &now) < 0 || fstat(fd, &cur) < 0 || now.st_ino == cur.st_ino)
		return fd;
	nfd = open(log, O_RDONLY | O_CLOEXEC);
	if (nfd < 0)
		return fd;
	drain(fd);
	close(fd);
	return nfd;
}

/* 1 when the user typed Ctrl-] (or stdin ended), else 0. */
static int detach_key(bool tty)
{
	struct pollfd p = { .fd = 0, .events = POLLIN };
	char b[64];
	ssize_t n;

	if (!tty || poll(&p, 1, 0) <= 0)
		return 0;
	n = read(0, b, sizeof(b));
	return n <= 0 || memchr(b, 0x1d, (size_t)n) != NULL;
}

static bool vm_active(const struct vm_args *a, const char *path)
{
	json_object *o = NULL;
	bool active = false;

	if (call(a, "GET", path, NULL, &o) == CLIENT_EXIT_OK) {
		const char *st = str_field(o, "state", "");
		active = strcmp(st, "running") == 0 || strcmp(st, "paused") == 0;
	}
	json_object_put(o);
	return active;
}

static int follow(const struct vm_args *a, const char *path, const char *log, int fd)
{
	bool tty = isatty(0);
	struct termios saved, raw;
	int ticks = 0;

	if (tty && tcgetattr(0, &saved) == 0) {
		raw = saved;
		cfmakeraw(&raw);
		raw.c_oflag |= OPOST | ONLCR;
		tcsetattr(0, TCSANOW, &raw);
		fprintf(stderr, "[vireo: console of %s; Ctrl-] detaches]\r\n", a->arg[0]);
	}
	for (;;) {
		drain(fd);
		fd = follow_rotation(fd, log);
		if (detach_key(tty))
			break;
		if (++ticks % 5 == 0 && !vm_active(a, path)) {
			drain(fd);
			break;
		}
		sleep_ms(100);
	}
	if (tty)
		tcsetattr(0, TCSANOW, &saved);
	close(fd);
	return CLIENT_EXIT_OK;
}

static int do_console(const struct vm_args *a, const char *path)
{
	json_object *o = NULL;
	char log[4096];
	int code = call(a, "GET", path, NULL, &o), fd;

	if (code != CLIENT_EXIT_OK)
		return code;
	snprintf(log, sizeof(log), "%s", str_field(o, "console_log", ""));
	json_object_put(o);
	fd = open(log, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "vireo vm console: cannot open %s: %s (has %s ever run?)\n", log,
			strerror(errno), a->arg[0]);
		return CLIENT_EXIT_REFUSED;
	}
	return follow(a, path, log, fd);
}

/* NAME goes into the URL: only the characters a VM name may have. */
static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= 64 && strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUV"
					   "WXYZ0123456789_.-") == n;
}

static int dispatch(const struct vm_args *a)
{
	char path[128];
	const char *v = a->verb;

	if (strcmp(v, "define") == 0)
		return do_define(a);
	if (strcmp(v, "list") == 0)
		return do_list(a);
	if (!name_ok(a->arg[0])) {
		usage_error("'%s' is not a VM name", a->arg[0]);
		return CLIENT_EXIT_USAGE;
	}
	snprintf(path, sizeof(path), "/vms/%s", a->arg[0]);
	if (strcmp(v, "info") == 0)
		return do_info(a, path);
	if (strcmp(v, "dumpconfig") == 0) {
		strcat(path, "/config");
		return print_get(a, path);
	}
	if (strcmp(v, "stats") == 0) {
		strcat(path, "/stats");
		return print_get(a, path);
	}
	if (strcmp(v, "undefine") == 0)
		return call(a, "DELETE", path, NULL, NULL);
	if (strcmp(v, "autostart") == 0)
		return do_autostart(a, path);
	if (strcmp(v, "console") == 0)
		return do_console(a, path);
	return do_action(a, path);
}

int cmd_vm(int argc, char **argv)
{
	struct vm_args a = { 0 };
	size_t i;
	int rc;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		vm_usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? CLIENT_EXIT_USAGE : CLIENT_EXIT_OK;
	}
	for (i = 0; i < N_VERBS && strcmp(verbs[i].name, argv[1]) != 0; i++)
		;
	if (i == N_VERBS) {
		usage_error("unknown verb '%s'", argv[1]);
		return CLIENT_EXIT_USAGE;
	}
	a.verb = verbs[i].name;
	a.connect = getenv("VIREO_CONNECT");
	if (!a.connect || !a.connect[0])
		a.connect = DEFAULT_CONNECT;
	rc = parse(argc - 1, argv + 1, &a);
	if (rc != 0)
		return rc > 0 ? CLIENT_EXIT_OK : CLIENT_EXIT_USAGE;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		fprintf(stderr, "vireo vm: cannot initialise libcurl\n");
		return CLIENT_EXIT_UNREACHABLE;
	}
	rc = dispatch(&a);
	curl_global_cleanup();
	return rc;
}
