/* SPDX-License-Identifier: Apache-2.0 */
/* `vireo daemon`: options, signals and exit status around daemon_run(). */
#include "cli/mgmt.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/size.h"
#include "daemon/daemon.h"

static void daemon_usage(FILE *out)
{
	fprintf(out,
		"usage: vireo daemon [--state-dir DIR] [--run-dir DIR] [-v]\n"
		"\n"
		"Run vireod, the management daemon: VM definitions kept in DIR/vireo.db\n"
		"(SQLite), each running VM a `vireo run` process of its own that outlives\n"
		"the daemon. Clients ('vireo vm ...') connect to RUN_DIR/vireod.sock\n"
		"(read-write) or RUN_DIR/vireod-ro.sock (read-only).\n"
		"\n"
		"      --state-dir DIR   persistent state (default /var/lib/vireo)\n"
		"      --run-dir DIR     sockets, VM API sockets and console logs\n"
		"                        (default /run/vireo)\n"
		"      --console-max SIZE  rotate a VM's console.log to console.log.1\n"
		"                        past SIZE (default 1M)\n"
		"  -v, --verbose         more log output (repeat for debug)\n"
		"  -h, --help            this help\n"
		"\n"
		"SIGINT or SIGTERM stops the daemon; its VMs keep running, and the next\n"
		"daemon on the same state directory finds them. Exit status: 0 stopped\n"
		"by a signal; 1 could not start (e.g. another daemon holds DIR); 2 usage.\n");
}

static int set_dir(char *dst, size_t size, const char *src, const char *opt)
{
	if (!src[0] || strlen(src) >= size) {
		fprintf(stderr, "vireo daemon: %s must be a path of 1 to %zu bytes\n", opt,
			size - 1);
		return -1;
	}
	snprintf(dst, size, "%s", src);
	return 0;
}

static int set_console_max(struct daemon_opts *o, const char *s)
{
	struct verr err = { 0 };
	uint64_t v;

	if (size_parse(s, 0, &v, &err) < 0 || v < 256 || v > (1ull << 32)) {
		fprintf(stderr, "vireo daemon: --console-max must be 256 bytes to 4G, not '%s'\n", s);
		return -1;
	}
	o->console_max = (unsigned long)v;
	return 0;
}

static int parse(int argc, char **argv, struct daemon_opts *o, int *verbose)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 's' },
		{ "run-dir", required_argument, NULL, 'r' },
		{ "console-max", required_argument, NULL, 'm' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vh", opts, NULL)) != -1) {
		if (c == 'h') {
			daemon_usage(stdout);
			return 1;
		}
		if (c == 's' && set_dir(o->state_dir, sizeof(o->state_dir), optarg, "--state-dir"))
			return -1;
		if (c == 'r' && set_dir(o->run_dir, sizeof(o->run_dir), optarg, "--run-dir"))
			return -1;
		if (c == 'v')
			(*verbose)++;
		if (c == 'm' && set_console_max(o, optarg) < 0)
			return -1;
		if (c == '?' || c == ':') {
			fprintf(stderr, "vireo daemon: bad option '%s' (see 'vireo daemon --help')\n",
				argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vireo daemon: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	return 0;
}

int cmd_daemon(int argc, char **argv)
{
	struct daemon_opts o = { "/var/lib/vireo", "/run/vireo", 1ul << 20 };
	struct verr err = { 0 };
	sigset_t set;
	int verbose = 0, rc = parse(argc, argv, &o, &verbose);

	if (rc != 0)
		return rc > 0 ? 0 : 2;
	vlog_set_level(verbose >= 2 ? VLOG_DEBUG : verbose ? VLOG_INFO : VLOG_WARN);
	/* Blocked before any thread starts, so only the main loop takes them. */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (daemon_run(&o, &err) < 0) {
		fprintf(stderr, "vireo daemon: %s\n", err.msg);
		return 1;
	}
	return 0;
}
