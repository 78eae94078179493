/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `vireo vhost-user`: a virtio device (blk on an image, net on a tap) served
 * to a vhost-user front end such as QEMU until SIGINT/SIGTERM.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "block/block.h"
#include "cli/cli.h"
#include "cli/vhost_user.h"
#include "core/log.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "virtio/rng.h"
#include "virtio/vhost_user.h"
#include "virtio/vsock.h"

struct vu_opts {
	const char *socket, *image, *format, *tap, *uds_path;
	unsigned long long cid;
	bool read_only;
	unsigned queues;
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: vireo vhost-user blk --socket PATH --image IMG [--format raw|qcow2|vmdk]\n"
		"                            [--readonly] [--num-queues N] [-v]\n"
		"       vireo vhost-user net --socket PATH --tap NAME [--num-queue-pairs N] [-v]\n"
		"       vireo vhost-user rng --socket PATH [-v]\n"
		"       vireo vhost-user vsock --socket PATH --guest-cid N --uds-path P [-v]\n"
		"\n"
		"Serve a virtio device to a vhost-user front end (QEMU: -chardev socket,path=PATH\n"
		"-device vhost-user-blk-pci,chardev=... or -netdev vhost-user,chardev=...).\n"
		"The guest memory must be shared (memory-backend-memfd,share=on). Front ends\n"
		"may disconnect and reconnect; SIGINT or SIGTERM stops the server.\n"
		"\n"
		"  --socket PATH        Unix socket to listen on (replaced if it exists)\n"
		"  --image IMG          disk image for blk (format probed unless --format)\n"
		"  --format F           image format: raw, qcow2, vmdk\n"
		"  --readonly           refuse guest writes (VIRTIO_BLK_F_RO)\n"
		"  --num-queues N       blk request queues (1..%u, default 1)\n"
		"  --tap NAME           existing or new tap interface for net\n"
		"  --num-queue-pairs N  net queue pairs (1..%u, default 1)\n"
		"  --guest-cid N        vsock: the guest's context ID (>= 3)\n"
		"  --uds-path P         vsock: host side; guest connections to port X go to P_X,\n"
		"                       host programs connect to P and send \"CONNECT <port>\\n\"\n"
		"  -v, --verbose        log more (twice: debug)\n",
		VIRTIO_MAX_QUEUES, VIRTIO_NET_MAX_PAIRS);
}

static const struct option vu_options[] = {
	{ "socket", required_argument, NULL, 's' },
	{ "image", required_argument, NULL, 'i' },
	{ "format", required_argument, NULL, 'f' },
	{ "readonly", no_argument, NULL, 'r' },
	{ "num-queues", required_argument, NULL, 'q' },
	{ "num-queue-pairs", required_argument, NULL, 'q' },
	{ "tap", required_argument, NULL, 't' },
	{ "guest-cid", required_argument, NULL, 'c' },
	{ "uds-path", required_argument, NULL, 'u' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

static int parse_count(const char *s, unsigned max, unsigned *out, struct verr *err)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (!*s || *end || errno || s[0] == '-' || v == 0 || v > max)
		return verr_set(err, EINVAL, "invalid queue count '%s' (1..%u)", s, max);
	*out = (unsigned)v;
	return 0;
}

/* 0 to run, 1 after --help, <0 on a bad command line. */
static int parse(int argc, char **argv, struct vu_opts *o, struct verr *err)
{
	int opt, verbose = 0;

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, ":vh", vu_options, NULL)) != -1) {
		switch (opt) {
		case 's': o->socket = optarg; break;
		case 'i': o->image = optarg; break;
		case 'f': o->format = optarg; break;
		case 'r': o->read_only = true; break;
		case 't': o->tap = optarg; break;
		case 'u': o->uds_path = optarg; break;
		case 'c': {
			char *end;

			errno = 0;
			o->cid = strtoull(optarg, &end, 10);
			if (!*optarg || *end || errno || optarg[0] == '-')
				return verr_set(err, EINVAL, "invalid --guest-cid '%s'", optarg);
			break;
		}
		case 'q':
			if (parse_count(optarg, VIRTIO_MAX_QUEUES, &o->queues, err))
				return -EINVAL;
			break;
		case 'v': verbose++; break;
		case 'h': usage(stdout); return 1;
		case ':':
			return verr_set(err, EINVAL, "option '%s' needs a value", argv[optind - 1]);
		default:
			return verr_set(err, EINVAL, "unknown option '%s' (see 'vireo vhost-user --help')",
					argv[optind - 1]);
		}
	}
	if (optind < argc)
		return verr_set(err, EINVAL, "unexpected argument '%s'", argv[optind]);
	if (verbose)
		vlog_set_level(verbose > 1 ? VLOG_DEBUG : VLOG_INFO);
	if (!o->socket)
		return verr_set(err, EINVAL, "--socket PATH is required");
	return 0;
}

static int make_blk(const struct vu_opts *o, struct block_dev **bd, struct virtio_dev **dev,
		    struct verr *err)
{
	struct block_open_opts bo = { .format = o->format, .read_write = !o->read_only };
	struct virtio_blk_opts vo = { .read_only = o->read_only, .num_queues = o->queues };
	int r;

	if (!o->image)
		return verr_set(err, EINVAL, "blk needs --image IMG");
	if (o->tap)
		return verr_set(err, EINVAL, "--tap is for net, not blk");
	r = block_open(o->image, &bo, bd, err);
	if (r)
		return r;
	vo.bd = *bd;
	r = virtio_blk_create(&vo, dev, err);
	if (r) {
		block_close(*bd);
		*bd = NULL;
	}
	return r;
}

static int make_net(const struct vu_opts *o, struct virtio_dev **dev, struct verr *err)
{
	struct virtio_net_opts no = { .tap = o->tap, .queue_pairs = o->queues };

	if (!o->tap)
		return verr_set(err, EINVAL, "net needs --tap NAME");
	if (o->image || o->format || o->read_only)
		return verr_set(err, EINVAL, "--image, --format and --readonly are for blk");
	return virtio_net_create(&no, dev, err);
}

static int make_dev(const char *kind, const struct vu_opts *o, struct block_dev **bd,
		    struct virtio_dev **dev, struct verr *err)
{
	if (!strcmp(kind, "blk"))
		return make_blk(o, bd, dev, err);
	if (!strcmp(kind, "net"))
		return make_net(o, dev, err);
	if (o->image || o->format || o->read_only || o->tap || o->queues > 1)
		return verr_set(err, EINVAL, "%s: unexpected blk or net option", kind);
	if (!strcmp(kind, "rng"))
		return virtio_rng_create(dev, err);
	if (!o->uds_path || !o->cid)
		return verr_set(err, EINVAL, "vsock needs --guest-cid N and --uds-path P");
	return virtio_vsock_create(o->cid, o->uds_path, dev, err);
}

/* Signals become a readable fd so the server loop can stop cleanly; they are
 * blocked before any device thread starts so only that fd sees them. */
static int stop_signals(struct verr *err)
{
	sigset_t set;
	int fd;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	fd = signalfd(-1, &set, SFD_CLOEXEC);
	if (fd < 0)
		return verr_set(err, errno, "signalfd: %s", strerror(errno));
	return fd;
}

static int serve(struct virtio_dev *dev, const char *path, int stop_fd, struct verr *err)
{
	struct vhost_user_server *s;
	int r = vhost_user_server_new(path, dev, &s, err);

	if (r)
		return r;
	log_info(dev->name, "listening on %s", path);
	r = vhost_user_server_run(s, stop_fd, err);
	vhost_user_server_free(s);
	return r;
}

int cmd_vhost_user(int argc, char **argv)
{
	struct vu_opts o = { 0 };
	struct verr err = { 0 };
	struct block_dev *bd = NULL;
	struct virtio_dev *dev = NULL;
	const char *kind = argc > 1 ? argv[1] : "";
	int r, stop_fd = -1;

	if (!strcmp(kind, "--help") || !strcmp(kind, "-h") || !strcmp(kind, "help")) {
		usage(stdout);
		return 0;
	}
	if (strcmp(kind, "blk") && strcmp(kind, "net") && strcmp(kind, "rng") &&
	    strcmp(kind, "vsock")) {
		fprintf(stderr, "vireo vhost-user: expected 'blk', 'net', 'rng' or 'vsock'%s%s\n",
			*kind ? ", not " : "", kind);
		usage(stderr);
		return VIREO_EXIT_CONFIG;
	}
	r = parse(argc - 1, argv + 1, &o, &err);
	if (r == 1)
		return 0;
	if (r < 0) {
		fprintf(stderr, "vireo vhost-user %s: %s\n", kind, err.msg);
		return VIREO_EXIT_CONFIG;
	}
	stop_fd = stop_signals(&err);
	if (stop_fd >= 0)
		r = make_dev(kind, &o, &bd, &dev, &err);
	else
		r = stop_fd;
	if (!r)
		r = serve(dev, o.socket, stop_fd, &err);
	virtio_dev_destroy(dev);
	if (bd)
		block_close(bd);
	if (stop_fd >= 0)
		close(stop_fd);
	if (r) {
		fprintf(stderr, "vireo vhost-user %s: %s\n", kind, err.msg);
		return r == -EINVAL ? VIREO_EXIT_CONFIG : VIREO_EXIT_HOST_ERROR;
	}
	return 0;
}
