/* SPDX-License-Identifier: Apache-2.0 */
/* `vireo run`: options -> vm_config, the console loop, exit codes. */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accel/accel.h"
#include "api/api.h"
#include "cli/console.h"
#include "core/log.h"
#include "core/size.h"
#include "virtio/net.h"
#include "vmm/instance.h"
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
		"      --disk PATH[,format=raw|qcow2|vmdk][,readonly=on][,cache=none|writeback][,serial=ID]\n"
		"                        a virtio-blk disk (repeatable)\n"
		"      --net tap=NAME[,mac=52:54:00:..][,queues=N]  a virtio-net interface on a tap\n"
		"                        (repeatable); queues=N: N queue pairs on a multi-queue tap\n"
		"      --net fd=N[,mac=..]  the same on an open tap fd handed to vireo\n"
		"      --console serial|virtio  where console input goes: COM1 (default) or a\n"
		"                        virtio-console (hvc0), whose output is also on stdout\n"
		"      --rng             a virtio-rng device fed by the host's getrandom\n"
		"      --vsock cid=N,uds=PATH  a virtio-vsock device with guest CID N (>= 3); the host\n"
		"                        connects to PATH and sends \"CONNECT <port>\\n\"; guest\n"
		"                        connections to the host's port P reach PATH_P\n"
		"      --no-reboot       end vireo when the guest resets (the default)\n"
		"      --overcommit      allow more guest RAM than the host has\n"
		"      --debug-exit      isa-debug-exit port 0x501: a guest write of V exits with (V<<1)|1\n"
		"      --api-socket PATH serve the control API (Firecracker-compatible) on this Unix socket;\n"
		"                        without --kernel, wait to be configured or restored through it\n"
		"      --config FILE     configure from a Firecracker-style JSON file and boot\n"
		"      --restore STATE   restore a snapshot's state file instead of booting a kernel\n"
		"      --restore-mem MEM the snapshot's memory file (mapped copy-on-write)\n"
		"      --paused          with --restore: stay paused (resume through the API)\n"
		"      --clone-overlays DIR  with --restore: each disk of the snapshot gets a new\n"
		"                        qcow2 overlay in DIR (the snapshot's disk is its backing file);\n"
		"                        --net options replace the snapshot's taps, in order\n"
		"      --track-dirty-pages  log written pages, for diff snapshots\n"
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

enum { OPT_NO_REBOOT = 256, OPT_OVERCOMMIT, OPT_DEBUG_EXIT, OPT_RESTORE, OPT_RESTORE_MEM,
       OPT_PAUSED, OPT_DIRTY, OPT_API, OPT_CONFIG, OPT_DISK, OPT_NET, OPT_RNG, OPT_OVERLAYS,
       OPT_VSOCK, OPT_CONSOLE };

struct run_opts {
	const char *restore, *restore_mem;
	const char *api_socket, *config;
	bool paused;
};

static const struct option run_options[] = {
	{ "kernel", required_argument, NULL, 'k' },
	{ "initrd", required_argument, NULL, 'i' },
	{ "cmdline", required_argument, NULL, 'a' },
	{ "cpus", required_argument, NULL, 'c' },
	{ "memory", required_argument, NULL, 'm' },
	{ "no-reboot", no_argument, NULL, OPT_NO_REBOOT },
	{ "overcommit", no_argument, NULL, OPT_OVERCOMMIT },
	{ "debug-exit", no_argument, NULL, OPT_DEBUG_EXIT },
	{ "restore", required_argument, NULL, OPT_RESTORE },
	{ "restore-mem", required_argument, NULL, OPT_RESTORE_MEM },
	{ "paused", no_argument, NULL, OPT_PAUSED },
	{ "api-socket", required_argument, NULL, OPT_API },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "disk", required_argument, NULL, OPT_DISK },
	{ "net", required_argument, NULL, OPT_NET },
	{ "rng", no_argument, NULL, OPT_RNG },
	{ "vsock", required_argument, NULL, OPT_VSOCK },
	{ "console", required_argument, NULL, OPT_CONSOLE },
	{ "clone-overlays", required_argument, NULL, OPT_OVERLAYS },
	{ "track-dirty-pages", no_argument, NULL, OPT_DIRTY },
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

/* Splits "a,b=c,d" in place; calls fn(key, value) per item (value NULL
 * for a bare item). */
static int each_option(char *s, int (*fn)(void *ctx, char *k, char *v, struct verr *err),
		       void *ctx, struct verr *err)
{
	char *save = NULL;

	for (char *tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(tok, '=');
		int rc;
		if (eq)
			*eq++ = '\0';
		if ((rc = fn(ctx, tok, eq, err)) < 0)
			return rc;
	}
	return 0;
}

static int on_off(const char *opt, const char *k, const char *v, bool *out, struct verr *err)
{
	if (!v || !strcmp(v, "on") || !strcmp(v, "true"))
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "false"))
		*out = false;
	else
		return verr_set(err, EINVAL, "%s: %s=%s: expected on or off", opt, k, v);
	return 0;
}

static int disk_item(void *ctx, char *k, char *v, struct verr *err)
{
	struct vm_disk *d = ctx;

	if (!v && !d->path) {
		d->path = k;
		return 0;
	}
	if (!strcmp(k, "path") || !strcmp(k, "file"))
		d->path = v;
	else if (!strcmp(k, "format") && v && (!strcmp(v, "raw") || !strcmp(v, "qcow2") || !strcmp(v, "vmdk")))
		d->format = v;
	else if (!strcmp(k, "readonly"))
		return on_off("--disk", k, v, &d->read_only, err);
	else if (!strcmp(k, "cache") && v && (!strcmp(v, "none") || !strcmp(v, "writeback")))
		d->cache_none = !strcmp(v, "none");
	else if (!strcmp(k, "serial") && v && strlen(v) <= 20)
		d->serial = v;
	else
		return verr_set(err, EINVAL, "--disk: bad option '%s%s%s'", k, v ? "=" : "", v ? v : "");
	return 0;
}

static int parse_uint(const char *v, unsigned long max, unsigned long *out)
{
	char *end;

	errno = 0;
	*out = v ? strtoul(v, &end, 10) : 0;
	return !v || !*v || *end || errno || v[0] == '-' || *out > max ? -1 : 0;
}

static int net_item(void *ctx, char *k, char *v, struct verr *err)
{
	struct vm_net *n = ctx;
	unsigned long x;

	if (!strcmp(k, "tap") && v && *v && strlen(v) < 16)
		n->tap = v;
	else if (!strcmp(k, "mac") && v && virtio_net_parse_mac(v, n->mac) == 0)
		return 0;
	else if (!strcmp(k, "queues") && parse_uint(v, VM_NET_MAX_QUEUES, &x) == 0 && x >= 1)
		n->queues = (unsigned)x;
	else if (!strcmp(k, "queues"))
		return verr_set(err, EINVAL, "--net: queues=%s: expected 1 to %d queue pairs",
				v ? v : "", VM_NET_MAX_QUEUES);
	else if (!strcmp(k, "fd") && parse_uint(v, INT32_MAX, &x) == 0) {
		n->has_fd = true;
		n->fd = (int)x;
	} else
		return verr_set(err, EINVAL, "--net: bad option '%s%s%s' (want tap=NAME or fd=N, [mac=52:54:00:12:34:56], [queues=N])",
				k, v ? "=" : "", v ? v : "");
	return 0;
}

static int vsock_item(void *ctx, char *k, char *v, struct verr *err)
{
	struct vm_vsock *vs = ctx;
	char *end;

	if (!strcmp(k, "cid") && v) {
		errno = 0;
		vs->cid = strtoull(v, &end, 10);
		if (!*v || *end || errno || v[0] == '-' || vs->cid < 3 || vs->cid > UINT32_MAX - 1)
			return verr_set(err, EINVAL, "--vsock: cid=%s: the guest CID must be a number from 3 to 4294967294 (0-2 are reserved)",
					v);
	} else if (!strcmp(k, "uds") && v) {
		if (!*v || strlen(v) > VM_VSOCK_UDS_MAX)
			return verr_set(err, EINVAL, "--vsock: uds= must be a path of 1 to %d bytes",
					VM_VSOCK_UDS_MAX);
		vs->uds = v;
	} else {
		return verr_set(err, EINVAL, "--vsock: bad option '%s%s%s' (want cid=N,uds=PATH)", k,
				v ? "=" : "", v ? v : "");
	}
	return 0;
}

static int vsock_opt(struct vm_config *cfg, char *arg, struct verr *err)
{
	if (cfg->vsock.uds)
		return verr_set(err, EINVAL, "only one --vsock device");
	if (each_option(arg, vsock_item, &cfg->vsock, err) < 0)
		return -EINVAL;
	if (!cfg->vsock.uds)
		return verr_set(err, EINVAL, "--vsock needs uds=PATH");
	return 0;
}

static int add_disk_opt(struct vm_config *cfg, char *arg, struct verr *err)
{
	struct vm_disk *d;

	if (cfg->ndisks >= VM_MAX_DISKS)
		return verr_set(err, E2BIG, "at most %d --disk options", VM_MAX_DISKS);
	d = &cfg->disks[cfg->ndisks];
	memset(d, 0, sizeof(*d));
	if (each_option(arg, disk_item, d, err) < 0)
		return -EINVAL;
	if (!d->path || !*d->path)
		return verr_set(err, EINVAL, "--disk needs a path");
	cfg->ndisks++;
	return 0;
}

static int add_net_opt(struct vm_config *cfg, char *arg, struct verr *err)
{
	struct vm_net *n;

	if (cfg->nnets >= VM_MAX_NETS)
		return verr_set(err, E2BIG, "at most %d --net options", VM_MAX_NETS);
	n = &cfg->nets[cfg->nnets];
	memset(n, 0, sizeof(*n));
	if (each_option(arg, net_item, n, err) < 0)
		return -EINVAL;
	if (!n->tap == !n->has_fd)
		return verr_set(err, EINVAL, "--net needs either tap=NAME or fd=N (an open tap)");
	if (n->has_fd && n->queues > 1)
		return verr_set(err, EINVAL, "--net fd=%d: one fd is one queue pair; queues=N needs tap=NAME",
				n->fd);
	if (n->has_fd && fcntl(n->fd, F_GETFD) < 0)
		return verr_set(err, EBADF, "--net fd=%d: not an open file descriptor", n->fd);
	cfg->nnets++;
	return 0;
}

/* Returns 0 to run, 1 when help was shown, or a negative error. */
static int parse_args(int argc, char **argv, struct vm_config *cfg, struct run_opts *ro,
		      struct verr *err)
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
		case OPT_RESTORE: ro->restore = optarg; break;
		case OPT_RESTORE_MEM: ro->restore_mem = optarg; break;
		case OPT_PAUSED: ro->paused = true; break;
		case OPT_API: ro->api_socket = optarg; break;
		case OPT_CONFIG: ro->config = optarg; break;
		case OPT_DISK:
			if (add_disk_opt(cfg, optarg, err) < 0)
				return -EINVAL;
			break;
		case OPT_NET:
			if (add_net_opt(cfg, optarg, err) < 0)
				return -EINVAL;
			break;
		case OPT_RNG: cfg->rng = true; break;
		case OPT_CONSOLE:
			if (strcmp(optarg, "serial") && strcmp(optarg, "virtio"))
				return verr_set(err, EINVAL, "--console %s: expected serial or virtio",
						optarg);
			cfg->console_virtio = !strcmp(optarg, "virtio");
			break;
		case OPT_VSOCK:
			if (vsock_opt(cfg, optarg, err) < 0)
				return -EINVAL;
			break;
		case OPT_OVERLAYS: cfg->clone_overlay_dir = optarg; break;
		case OPT_DIRTY: cfg->track_dirty_pages = true; break;
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
	if (!ro->restore != !ro->restore_mem)
		return verr_set(err, EINVAL, "--restore and --restore-mem go together");
	if (ro->restore && cfg->kernel)
		return verr_set(err, EINVAL, "--restore and --kernel exclude each other");
	if (ro->paused && !ro->restore)
		return verr_set(err, EINVAL, "--paused needs --restore");
	if (cfg->clone_overlay_dir && !ro->restore)
		return verr_set(err, EINVAL, "--clone-overlays needs --restore");
	if (ro->restore && (cfg->ndisks || cfg->rng))
		return verr_set(err, EINVAL, "a restored VM has the snapshot's disks and devices: --disk and --rng do not go with --restore");
	/* a restored VM keeps its CID (the guest knows it); --vsock can move the socket */
	if (!ro->restore && cfg->vsock.uds && !cfg->vsock.cid)
		return verr_set(err, EINVAL, "--vsock needs cid=N (3 or more)");
	if ((ro->restore || ro->config) && (cfg->kernel || (ro->restore && ro->config)))
		return verr_set(err, EINVAL, "--kernel, --config and --restore exclude each other");
	if (!cfg->kernel && !ro->restore && !ro->config && !ro->api_socket)
		return verr_set(err, EINVAL, "no kernel given: use --kernel PATH (or --api-socket, --config, --restore)");
	return 0;
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

static int config_exit_code(int code)
{
	switch (code) {
	case ENOMEM:
	case EIO:
	case ENODEV:
	case EBUSY:
		return VIREO_EXIT_HOST_ERROR;
	default:
		return VIREO_EXIT_CONFIG;
	}
}

/* Starts the VM now when the command line says what to run; with only an
 * API socket the API starts (or restores) it later. */
static int launch(struct vmm_instance *inst, const struct vm_config *cfg,
		  const struct run_opts *ro, struct verr *err)
{
	int rc;

	if (ro->restore)
		return vmm_instance_restore(inst, ro->restore, ro->restore_mem, !ro->paused, err);
	if (ro->config) {
		rc = api_load_config_file(ro->config, &vmm_instance_ops, inst, err);
		return rc < 0 ? verr_prefix(err, "%s: ", ro->config) : vmm_instance_start(inst, err);
	}
	return cfg->kernel ? vmm_instance_start(inst, err) : 0;
}

int cmd_run(int argc, char **argv)
{
	struct vm_config cfg = { .ncpus = 1, .mem_size = 128ull << 20, .console_out_fd = STDOUT_FILENO };
	struct run_opts ro = { 0 };
	struct verr err = { 0 };
	struct vm_result res = { 0 };
	struct vmm_instance *inst = NULL;
	struct api_server *api = NULL;
	bool user_quit;
	int rc;

	rc = parse_args(argc, argv, &cfg, &ro, &err);
	if (rc == 1)
		return 0;
	if (rc == 0 && cfg.kernel)
		rc = vm_config_check(&cfg, VM_MAX_VCPUS, 0, &err);
	if (rc < 0) {
		fprintf(stderr, "vireo run: %s\n", err.msg);
		return VIREO_EXIT_CONFIG;
	}
	/* A closed stdout or API client must not kill the VMM: writes fail instead. */
	signal(SIGPIPE, SIG_IGN);
	console_prepare(STDIN_FILENO);
	rc = vmm_instance_create(&inst, &cfg, &err);
	if (rc == 0 && ro.api_socket)
		rc = api_server_start(&api, ro.api_socket, &vmm_instance_ops, inst, &err);
	if (rc == 0)
		rc = launch(inst, &cfg, &ro, &err);
	if (rc < 0) {
		api_server_stop(api);
		vmm_instance_destroy(inst);
		console_restore();
		fprintf(stderr, "vireo run: %s\n", err.msg);
		return config_exit_code(err.code);
	}
	if (!console_wait_fd(vmm_instance_ready_fd(inst))) {
		user_quit = true; /* signalled before anything was started */
	} else {
		user_quit = console_loop(vmm_instance_vm(inst), STDIN_FILENO) != CONSOLE_STOPPED;
		vm_join(vmm_instance_vm(inst), &res);
	}
	api_server_stop(api);
	vmm_instance_destroy(inst);
	console_restore();
	return exit_code_for(&res, user_quit);
}
