/* SPDX-License-Identifier: Apache-2.0 */
/* `vireo run`: options -> vm_config, the console loop, exit codes. */
#include "cli/cli.h"

#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accel/accel.h"
#include "cli/console.h"
#include "core/log.h"
#include "core/size.h"
#include "vmm/vm.h"

static void run_usage(FILE *out)
{
	fprintf(out,
		"usage: vireo run --kernel PATH [options]\n"
		"\n"
		"Boot a Linux kernel (bzImage or PVH ELF) in a KVM virtual machine with\n"
		"its serial console (COM1) on this terminal.\n"
		"\n"
		"  -k, --kernel PATH     kernel: bzImage (64-bit boot protocol) or ELF with a PVH note\n"
		"  -i, --initrd PATH     initial ramdisk\n"
		"  -a, --cmdline STR     kernel command line\n"
		"  -c, --cpus N          number of vCPUs (default 1)\n"
		"  -m, --memory SIZE     guest RAM, e.g. 512M, 4G (default 128M; bare numbers are MiB)\n"
		"      --no-reboot       end vireo when the guest resets (the default)\n"
		"      --overcommit      allow more guest RAM than the host has\n"
		"      --debug-exit      isa-debug-exit port 0x501: a guest write of V exits with (V<<1)|1\n"
		"  -v, --verbose         more log output (repeat for debug)\n"
		"  -h, --help            this help\n"
		"\n"
		"Console: when stdin is a terminal it is put in raw mode; type Ctrl-A x to\n"
		"quit, Ctrl-A Ctrl-A to send Ctrl-A to the guest.\n"
		"\n"
		"Exit status: 0 guest powered off or reset; 2 bad configuration; 4 guest\n"
		"triple fault; 6 KVM error; 8 host error; 10 quit with Ctrl-A x;\n"
		"odd values come from the guest through --debug-exit.\n");
}

enum { OPT_NO_REBOOT = 256, OPT_OVERCOMMIT, OPT_DEBUG_EXIT };

static const struct option run_options[] = {
	{ "kernel", required_argument, NULL, 'k' },
	{ "initrd", required_argument, NULL, 'i' },
	{ "cmdline", required_argument, NULL, 'a' },
	{ "cpus", required_argument, NULL, 'c' },
	{ "memory", required_argument, NULL, 'm' },
	{ "no-reboot", no_argument, NULL, OPT_NO_REBOOT },
	{ "overcommit", no_argument, NULL, OPT_OVERCOMMIT },
	{ "debug-exit", no_argument, NULL, OPT_DEBUG_EXIT },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

static int parse_cpus(const char *s, unsigned *out, struct verr *err)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (!*s || *end || errno || s[0] == '-' || v > 100000)
		return verr_set(err, EINVAL, "invalid --cpus '%s': expected a number such as 2", s);
	*out = (unsigned)v;
	return 0;
}

/* Returns 0 to run, 1 when help was shown, or a negative error. */
static int parse_args(int argc, char **argv, struct vm_config *cfg, struct verr *err)
{
	int opt, verbose = 0;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":k:i:a:c:m:vh", run_options, NULL)) != -1) {
		switch (opt) {
		case 'k': cfg->kernel = optarg; break;
		case 'i': cfg->initrd = optarg; break;
		case 'a': cfg->cmdline = optarg; break;
		case 'c':
			if (parse_cpus(optarg, &cfg->ncpus, err) < 0)
				return -EINVAL;
			break;
		case 'm':
			if (size_parse(optarg, 'M', &cfg->mem_size, err) < 0)
				return verr_prefix(err, "--memory: ");
			break;
		case OPT_NO_REBOOT: break;
		case OPT_OVERCOMMIT: cfg->overcommit = true; break;
		case OPT_DEBUG_EXIT: cfg->debug_exit = true; break;
		case 'v': verbose++; break;
		case 'h': run_usage(stdout); return 1;
		case ':':
			return verr_set(err, EINVAL, "option '%s' needs a value", argv[optind - 1]);
		default:
			return verr_set(err, EINVAL, "unknown option '%s' (see 'vireo run --help')",
					argv[optind - 1]);
		}
	}
	if (optind < argc)
		return verr_set(err, EINVAL, "unexpected argument '%s' (see 'vireo run --help')",
				argv[optind]);
	if (verbose)
		vlog_set_level(verbose > 1 ? VLOG_DEBUG : VLOG_INFO);
	return 0;
}

static uint64_t host_memory(void)
{
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	return pages > 0 && psize > 0 ? (uint64_t)pages * (uint64_t)psize : 0;
}

static int exit_code_for(const struct vm_result *res, bool user_quit)
{
	if (user_quit)
		return VIREO_EXIT_USER_QUIT;
	switch (res->reason) {
	case VM_STOP_POWEROFF:
	case VM_STOP_RESET:
		return VIREO_EXIT_OK;
	case VM_STOP_USER:
		return VIREO_EXIT_USER_QUIT;
	case VM_STOP_DEBUG_EXIT:
		return res->code;
	case VM_STOP_TRIPLE_FAULT:
		fprintf(stderr, "vireo: the guest triple-faulted (shut down)\n");
		return VIREO_EXIT_TRIPLE_FAULT;
	case VM_STOP_ACCEL_ERROR:
		fprintf(stderr, "vireo: KVM could not run the guest (see the registers above)\n");
		return VIREO_EXIT_KVM_ERROR;
	default:
		fprintf(stderr, "vireo: stopped by a host-side error\n");
		return VIREO_EXIT_HOST_ERROR;
	}
}

int cmd_run(int argc, char **argv)
{
	struct vm_config cfg = { .ncpus = 1, .mem_size = 128ull << 20, .console_out_fd = STDOUT_FILENO };
	struct accel_caps caps;
	struct verr err = { 0 };
	struct vm_result res = { 0 };
	struct vm *vm = NULL;
	bool user_quit = false;
	int rc;

	rc = parse_args(argc, argv, &cfg, &err);
	if (rc == 1)
		return 0;
	if (rc < 0 || vm_config_check(&cfg, VM_MAX_VCPUS, host_memory(), &err) < 0) {
		fprintf(stderr, "vireo run: %s\n", err.msg);
		return VIREO_EXIT_CONFIG;
	}
	if (accel_open(&caps, &err) < 0 ||
	    vm_config_check(&cfg, caps.max_vcpus, host_memory(), &err) < 0) {
		fprintf(stderr, "vireo run: %s\n", err.msg);
		return err.code == EINVAL ? VIREO_EXIT_CONFIG : VIREO_EXIT_HOST_ERROR;
	}
	console_prepare(STDIN_FILENO);
	if (vm_create(&vm, &cfg, &err) < 0) {
		console_restore();
		fprintf(stderr, "vireo run: %s\n", err.msg);
		return err.code == ENOMEM || err.code == EIO ? VIREO_EXIT_HOST_ERROR : VIREO_EXIT_CONFIG;
	}
	if (vm_start(vm, &err) < 0) {
		vm_destroy(vm);
		console_restore();
		fprintf(stderr, "vireo run: %s\n", err.msg);
		return VIREO_EXIT_HOST_ERROR;
	}
	user_quit = console_loop(vm, STDIN_FILENO) != CONSOLE_STOPPED;
	vm_join(vm, &res);
	vm_destroy(vm);
	console_restore();
	return exit_code_for(&res, user_quit);
}
