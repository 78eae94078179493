/* SPDX-License-Identifier: Apache-2.0 */
/* Subcommand dispatch only: each subcommand parses its own options. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/client.h"
#include "cli/mgmt.h"
#include "img/img.h"
#include "cli/vhost_user.h"

struct subcommand {
	const char *name;
	int (*fn)(int argc, char **argv);
	const char *summary;
};

static int cmd_help(int argc, char **argv);
static int cmd_version(int argc, char **argv);

static const struct subcommand subcommands[] = {
	{ "run", cmd_run, "boot a virtual machine on KVM" },
	{ "img", cmd_img, "create, inspect and convert disk images (qemu-img compatible)" },
	{ "pause", cmd_pause, "pause a running VM through its API socket" },
	{ "resume", cmd_resume, "resume a paused VM through its API socket" },
	{ "info", cmd_info, "show a VM's id, state and version through its API socket" },
	{ "snapshot", cmd_snapshot, "snapshot a paused VM through its API socket" },
	{ "restore", cmd_restore, "load a snapshot into a fresh VM through its API socket" },
	{ "vhost-user", cmd_vhost_user, "serve a virtio device (blk, net) to QEMU over vhost-user" },
	{ "daemon", cmd_daemon, "run vireod, the management daemon for many VMs" },
	{ "vm", cmd_vm, "manage VMs through the daemon (define, start, list, ...)" },
	{ "help", cmd_help, "show this help, or a subcommand's help" },
	{ "version", cmd_version, "print the version" },
};
#define N_SUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

static void usage(FILE *out)
{
	fprintf(out, "usage: vireo <command> [options]\n\ncommands:\n");
	for (size_t i = 0; i < N_SUBCOMMANDS; i++)
		fprintf(out, "  %-10s %s\n", subcommands[i].name, subcommands[i].summary);
	fprintf(out, "\n'vireo <command> --help' shows a command's options; "
		     "'man vireo' (docs/vireo.1) has the details.\n");
}

static const struct subcommand *find(const char *name)
{
	for (size_t i = 0; i < N_SUBCOMMANDS; i++)
		if (strcmp(subcommands[i].name, name) == 0)
			return &subcommands[i];
	return NULL;
}

static int cmd_version(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	printf("vireo %s\n", VIREO_VERSION);
	return 0;
}

static int cmd_help(int argc, char **argv)
{
	const struct subcommand *sc;
	char help[] = "--help";
	char *sub_argv[] = { NULL, help, NULL };

	if (argc < 2) {
		usage(stdout);
		return 0;
	}
	sc = find(argv[1]);
	if (!sc || sc->fn == cmd_help) {
		if (!sc)
			fprintf(stderr, "vireo: unknown command '%s'\n", argv[1]);
		usage(sc ? stdout : stderr);
		return sc ? 0 : 2;
	}
	sub_argv[0] = argv[1];
	return sc->fn(2, sub_argv);
}

int main(int argc, char **argv)
{
	const struct subcommand *sc;

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)
		return cmd_version(argc - 1, argv + 1);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)
		return cmd_help(1, argv + 1);
	sc = find(argv[1]);
	if (!sc) {
		fprintf(stderr, "vireo: unknown command '%s' (see 'vireo help')\n", argv[1]);
		return 2;
	}
	return sc->fn(argc - 1, argv + 1);
}
