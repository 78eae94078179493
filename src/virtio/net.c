/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-net on a tap opened with IFF_VNET_HDR and a 12-byte header, so the
 * virtio header passes through the kernel unchanged in both directions and
 * checksum/TSO offloads cost nothing here. RX reads straight into guest
 * buffers; TX writes straight from them.
 *
 * With mergeable RX buffers (VIRTIO_NET_F_MRG_RXBUF) a frame may span
 * several chains: enough of them for the largest frame the tap can hand
 * over are popped and read into with one readv, the header's num_buffers
 * says how many were filled, and the rest go back unused. As a frame's
 * size is only known once it is read, the largest possible one must fit:
 * 64 KiB with guest TSO, else the tap's MTU-sized frame. When the posted
 * buffers are fewer than that, one frame is read into a host buffer and
 * copied out once buffers for its real size are there (dropped if a whole
 * ring of them could not hold it).
 *
 * With several queue pairs, tap queue i is attached only while pair i is in
 * use: its receive queue runs and, when the control queue is ours (vireo
 * run), the driver enabled that many pairs with VQ_PAIRS_SET (one until it
 * does, 5.1.6.5.5). Behind vhost-user the front end keeps the control
 * queue and disables the rings of unused pairs instead. A queue left
 * attached would get its share of the host's flows, into a ring the driver
 * never fills: they would vanish.
 *
 * A tap cuts a frame that does not fit the buffers it is read into, and
 * says nothing. Buffers filled to the last byte while smaller than the
 * largest frame mean exactly that (the tap's MTU grew, or the driver posts
 * buffers too small): the cut frame is dropped, as a wire drops a frame
 * too long for it, and never reaches the guest.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "virtio/net.h"

#define MAX_FRAME (64u * 1024 + VIRTIO_NET_HDR_SIZE)
#define MRG_MAX_IOV 1024u        /* readv's limit (IOV_MAX) */
#define MRG_MAX_CHAINS 256u      /* chains one frame may take */
#define ETH_OVERHEAD (14u + 4u)  /* Ethernet header and one VLAN tag */

#define CTRL_MQ 4
#define CTRL_MQ_VQ_PAIRS_SET 0
#define CTRL_OK 0
#define CTRL_ERR 1

struct virtio_net {
	struct virtio_dev dev;
	unsigned pairs;
	int tap[VIRTIO_NET_MAX_PAIRS];   /* one tap queue per queue pair */
	uint8_t config[VIRTIO_NET_CONFIG_SIZE];
	/* Queue pairs in use, under the device lock. */
	unsigned pairs_set;              /* VQ_PAIRS_SET's count; 0: not sent */
	bool pairs_unknown;              /* restored: the count is not known */
	bool detached[VIRTIO_NET_MAX_PAIRS];
	/* RX, under the device lock (I/O thread, or activation) */
	uint32_t rx_need;                /* bytes of buffer a frame may need */
	struct iovec mrg_iov[MRG_MAX_IOV];
	uint16_t mrg_head[MRG_MAX_CHAINS];
	uint32_t mrg_cap[MRG_MAX_CHAINS];
	uint32_t mrg_len[MRG_MAX_CHAINS];
	/* Per pair: a frame read while its buffers were too few, until they
	 * can take it (MAX_FRAME bytes, allocated on first use). */
	uint8_t *held[VIRTIO_NET_MAX_PAIRS];
	uint32_t held_len[VIRTIO_NET_MAX_PAIRS];
};

static struct virtio_net *to_net(struct virtio_dev *d)
{
	return (struct virtio_net *)d;
}

static uint64_t net_features(struct virtio_dev *d)
{
	uint64_t mq = to_net(d)->pairs > 1 ?
		      (1ull << VIRTIO_NET_F_MQ) | (1ull << VIRTIO_NET_F_CTRL_VQ) : 0;

	return mq | (1ull << VIRTIO_NET_F_CSUM) | (1ull << VIRTIO_NET_F_GUEST_CSUM) |
	       (1ull << VIRTIO_NET_F_MAC) | (1ull << VIRTIO_NET_F_STATUS) |
	       (1ull << VIRTIO_NET_F_GUEST_TSO4) | (1ull << VIRTIO_NET_F_GUEST_TSO6) |
	       (1ull << VIRTIO_NET_F_GUEST_ECN) | (1ull << VIRTIO_NET_F_HOST_TSO4) |
	       (1ull << VIRTIO_NET_F_HOST_TSO6) | (1ull << VIRTIO_NET_F_HOST_ECN) |
	       (1ull << VIRTIO_NET_F_MRG_RXBUF);
}

/* The largest frame plus header the tap may deliver to this guest. */
static uint32_t rx_need(struct virtio_net *n)
{
	uint64_t f = n->dev.features;
	struct ifreq ifr = { 0 };
	int s;

	if (f & ((1ull << VIRTIO_NET_F_GUEST_TSO4) | (1ull << VIRTIO_NET_F_GUEST_TSO6)))
		return MAX_FRAME;
	if (ioctl(n->tap[0], TUNGETIFF, &ifr) < 0 || (s = socket(AF_INET, SOCK_DGRAM, 0)) < 0)
		return MAX_FRAME;
	if (ioctl(s, SIOCGIFMTU, &ifr) < 0 || ifr.ifr_mtu <= 0 ||
	    (uint32_t)ifr.ifr_mtu > MAX_FRAME - ETH_OVERHEAD - VIRTIO_NET_HDR_SIZE)
		ifr.ifr_mtu = (int)(MAX_FRAME - ETH_OVERHEAD - VIRTIO_NET_HDR_SIZE);
	close(s);
	return (uint32_t)ifr.ifr_mtu + ETH_OVERHEAD + VIRTIO_NET_HDR_SIZE;
}

static void net_config_read(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len)
{
	memcpy(buf, to_net(d)->config + off, len);
}

/* What the tap may hand us must match what the guest said it can take. */
static int net_activate(struct virtio_dev *d, struct verr *err)
{
	struct virtio_net *n = to_net(d);
	unsigned off = 0;

	if (d->features & (1ull << VIRTIO_NET_F_GUEST_CSUM)) {
		off |= TUN_F_CSUM;
		if (d->features & (1ull << VIRTIO_NET_F_GUEST_TSO4))
			off |= TUN_F_TSO4;
		if (d->features & (1ull << VIRTIO_NET_F_GUEST_TSO6))
			off |= TUN_F_TSO6;
		if (d->features & (1ull << VIRTIO_NET_F_GUEST_ECN) && off & (TUN_F_TSO4 | TUN_F_TSO6))
			off |= TUN_F_TSO_ECN;
	}
	for (unsigned i = 0; i < n->pairs; i++)
		if (ioctl(n->tap[i], TUNSETOFFLOAD, off) < 0)
			return verr_set(err, errno, "%s: TUNSETOFFLOAD 0x%x: %s", d->name, off,
					strerror(errno));
	n->rx_need = rx_need(n);
	return 0;
}

int virtio_net_tx_check(const struct virtq_chain *c, uint64_t *frame_len, struct verr *err)
{
	if (c->nin)
		return verr_set(err, EIO, "tx chain %u has writable buffers", c->head);
	if (c->out_len < VIRTIO_NET_HDR_SIZE || c->out_len > MAX_FRAME)
		return verr_set(err, EIO, "tx chain %u: %llu bytes", c->head,
				(unsigned long long)c->out_len);
	*frame_len = c->out_len - VIRTIO_NET_HDR_SIZE;
	return 0;
}

static int net_tx_one(struct virtio_dev *d, unsigned q, struct virtq_chain *c,
		      uint32_t *used_len, struct verr *err)
{
	struct virtio_net *n = to_net(d);
	uint64_t len;
	int r = virtio_net_tx_check(c, &len, err);

	if (r)
		return r;
	/* A full tap drops the frame, as a busy wire would. */
	if (writev(n->tap[q / 2], c->iov, (int)c->nout) < 0 && errno != EAGAIN)
		log_debug(d->name, "tap write: %s", strerror(errno));
	*used_len = 0;
	return 0;
}

static void unpop_n(struct virtq *vq, unsigned k)
{
	while (k--)
		virtq_unpop(vq);
}

/* A read that filled `room` bytes of buffer to the end: was the frame cut?
 * Rare (a full buffer), so the tap's MTU is asked afresh. */
static bool rx_cut(struct virtio_net *n, size_t got, uint64_t room)
{
	if (got < room)
		return false;
	n->rx_need = rx_need(n);
	if (room >= n->rx_need)
		return false;          /* a largest frame, exactly */
	log_debug(n->dev.name, "dropped a frame cut at %zu bytes: frames may take %u now", got,
		  n->rx_need);
	return true;
}

/* Pop chains until they hold `need` bytes, the ring runs dry or the
 * arrays are full (*full then says which). Their iovecs go to n->mrg_iov
 * (*niov), their room to *have; returns how many (left popped), or <0 for a
 * malformed chain (all given back). */
static int mrg_pop(struct virtio_net *n, struct virtq *vq, uint64_t need, unsigned *niov,
		   uint64_t *have, bool *full, struct verr *err)
{
	struct virtio_dev *d = &n->dev;
	unsigned k = 0;

	*niov = 0;
	*have = 0;
	*full = false;
	while (*have < need) {
		int r;

		if (k == MRG_MAX_CHAINS) {
			*full = true;
			break;
		}
		r = virtq_pop_or_arm(vq, d->chain, err);
		if (r == 0)
			break;
		if (r < 0 || d->chain->nout || d->chain->in_len < VIRTIO_NET_HDR_SIZE) {
			if (r > 0)
				r = verr_set(err, EIO, "rx chain %u: %llu writable bytes",
					     d->chain->head, (unsigned long long)d->chain->in_len);
			unpop_n(vq, k);
			return r;
		}
		if (*niov + d->chain->nin > MRG_MAX_IOV) {
			virtq_unpop(vq);
			*full = true;
			break;
		}
		memcpy(n->mrg_iov + *niov, d->chain->iov, d->chain->nin * sizeof(struct iovec));
		*niov += d->chain->nin;
		n->mrg_head[k] = d->chain->head;
		n->mrg_cap[k] = (uint32_t)(d->chain->in_len > UINT32_MAX ? UINT32_MAX
								  : d->chain->in_len);
		*have += d->chain->in_len;
		k++;
	}
	return (int)k;
}

/* A frame of `got` bytes is in the first k popped chains' buffers, its
 * header's num_buffers not yet set: set it, give back the chains it did
 * not reach, publish the rest at once. Returns the chains used or <0. */
static int mrg_publish(struct virtio_net *n, struct virtq *vq, unsigned k, unsigned niov,
		       uint32_t got, struct verr *err)
{
	unsigned used = 0;
	uint32_t left;
	uint16_t nbuf;
	int r;

	/* Chains are filled in order: count those the frame reached. */
	for (left = got; left && used < k; used++)
		left -= left < n->mrg_cap[used] ? left : n->mrg_cap[used];
	nbuf = (uint16_t)used;
	iov_from_buf(n->mrg_iov, niov, 10, &nbuf, 2);
	unpop_n(vq, k - used);
	left = got;
	for (unsigned i = 0; i < used; i++) {
		n->mrg_len[i] = left < n->mrg_cap[i] ? left : n->mrg_cap[i];
		left -= n->mrg_len[i];
	}
	/* All of a frame's buffers appear in one store of used->idx: drivers
	 * read num_buffers entries as soon as they see the first. */
	r = virtq_push_many(vq, n->mrg_head, n->mrg_len, used, err);
	return r < 0 ? r : (int)used;
}

/* The frame held for pair p: into guest buffers if they can take it now.
 * 1 delivered (or dropped: *used says how many chains went), 0 wait for
 * more buffers, <0 malformed ring. */
static int mrg_deliver_held(struct virtio_net *n, struct virtq *vq, unsigned p, unsigned *used,
			    struct verr *err)
{
	uint32_t len = n->held_len[p];
	unsigned niov;
	uint64_t have;
	bool full;
	int k = mrg_pop(n, vq, len, &niov, &have, &full, err), r;

	*used = 0;
	if (k < 0)
		return k;
	if (have < len) {
		unpop_n(vq, (unsigned)k);
		/* A whole ring of these buffers cannot take it: as a wire drops
		 * a frame too long for it. */
		if (full || (unsigned)k == vq->num) {
			log_debug(n->dev.name, "dropped a %u-byte frame: %u buffers hold %llu bytes",
				  len, k, (unsigned long long)have);
			n->held_len[p] = 0;
			return 1;
		}
		return 0;
	}
	iov_from_buf(n->mrg_iov, niov, 0, n->held[p], len);
	n->held_len[p] = 0;
	r = mrg_publish(n, vq, (unsigned)k, niov, len, err);
	if (r < 0)
		return r;
	*used = (unsigned)r;
	return 1;
}

/*
 * net_rx with mergeable buffers: one frame per round. When the chains
 * available hold the largest frame the tap may deliver, it is read straight
 * into them. When they do not (a small ring, small buffers), one frame is
 * read into a host buffer instead and held there until buffers for its
 * real size are posted; the tap keeps the frames behind it.
 */
static int net_rx_mrg(struct virtio_net *n, unsigned q, struct verr *err)
{
	struct virtio_dev *d = &n->dev;
	struct virtq *vq = &d->q[q].vq;
	unsigned p = q / 2, done = 0;
	int r = 0;

	if (!n->rx_need)                 /* features set without an activate */
		n->rx_need = rx_need(n);
	while (virtio_dev_queue_ready(d, q) && done < vq->num) {
		unsigned niov, used;
		uint32_t need = n->rx_need;
		uint64_t have;
		bool full;
		ssize_t got;
		int k;

		if (n->held_len[p]) {
			r = mrg_deliver_held(n, vq, p, &used, err);
			if (r <= 0)
				break;
			done += used;
			continue;
		}
		k = mrg_pop(n, vq, need, &niov, &have, &full, err);
		if (k <= 0) {
			r = k;
			break;
		}
		if (have < need) {
			unpop_n(vq, (unsigned)k);
			if (!n->held[p] && !(n->held[p] = malloc(MAX_FRAME)))
				break;
			got = read(n->tap[p], n->held[p], need);
			if (got < VIRTIO_NET_HDR_SIZE)
				break;
			if (!rx_cut(n, (size_t)got, need))
				n->held_len[p] = (uint32_t)got;
			continue;
		}
		got = readv(n->tap[p], n->mrg_iov, (int)niov);
		if (got < VIRTIO_NET_HDR_SIZE) {
			unpop_n(vq, (unsigned)k);
			break;
		}
		if (rx_cut(n, (size_t)got, have)) {
			unpop_n(vq, (unsigned)k);
			continue;
		}
		r = mrg_publish(n, vq, (unsigned)k, niov, (uint32_t)got, err);
		if (r < 0)
			break;
		done += (unsigned)r;
		r = 0;
	}
	if (done)
		virtio_dev_notify(d, q);
	return r < 0 ? r : 0;
}

/* Move frames from the tap into guest RX buffers until either runs out. */
static int net_rx(struct virtio_net *n, unsigned q, struct verr *err)
{
	struct virtio_dev *d = &n->dev;
	struct virtq *vq = &d->q[q].vq;
	const uint16_t one = 1;
	unsigned done = 0;
	int r = 0;

	if (d->features & (1ull << VIRTIO_NET_F_MRG_RXBUF))
		return net_rx_mrg(n, q, err);
	while (virtio_dev_queue_ready(d, q) && done < vq->num) {
		ssize_t got;

		r = virtq_pop_or_arm(vq, d->chain, err);
		if (r <= 0)
			break;
		if (d->chain->in_len < VIRTIO_NET_HDR_SIZE || d->chain->nout) {
			r = verr_set(err, EIO, "rx chain %u: %llu writable bytes", d->chain->head,
				     (unsigned long long)d->chain->in_len);
			break;
		}
		got = readv(n->tap[q / 2], d->chain->iov, (int)d->chain->nin);
		if (got < VIRTIO_NET_HDR_SIZE) {
			virtq_unpop(vq);
			r = 0;
			break;
		}
		if (rx_cut(n, (size_t)got, d->chain->in_len)) {
			virtq_unpop(vq);
			continue;
		}
		/* The tap leaves num_buffers alone; without mergeable buffers it is 1. */
		iov_from_buf(d->chain->iov, d->chain->nin, 10, &one, 2);
		r = virtq_push(vq, d->chain->head, (uint32_t)got, err);
		if (r < 0)
			break;
		done++;
	}
	if (done)
		virtio_dev_notify(d, q);
	return r < 0 ? r : 0;
}

/* Attach the tap queues of the pairs in use, detach the others. */
static void net_update_taps(struct virtio_dev *d)
{
	struct virtio_net *n = to_net(d);
	bool ours = n->pairs > 1 && d->q[2 * n->pairs].started;
	unsigned active = !ours || n->pairs_unknown ? n->pairs : n->pairs_set ? n->pairs_set : 1;

	for (unsigned i = 0; i < n->pairs; i++)
		if (!d->q[2 * i].started)
			n->held_len[i] = 0;     /* a stopped queue drops what it held */
	for (unsigned i = 1; i < n->pairs; i++) {
		bool detach = !(i < active && d->q[2 * i].started);
		struct ifreq ifr = { .ifr_flags = detach ? IFF_DETACH_QUEUE : IFF_ATTACH_QUEUE };

		if (detach == n->detached[i])
			continue;
		if (ioctl(n->tap[i], TUNSETQUEUE, &ifr) < 0) {
			log_warn(d->name, "tap queue %u: cannot %s it: %s", i,
				 detach ? "detach" : "attach", strerror(errno));
			continue;
		}
		n->detached[i] = detach;
		log_debug(d->name, "tap queue %u %s", i, detach ? "detached" : "attached");
	}
}

static void net_reset(struct virtio_dev *d)
{
	to_net(d)->pairs_set = 0;
	to_net(d)->pairs_unknown = false;
}

/* After a restore: the driver's pair count died with the old process, so
 * every pair whose queues run is served. */
static void net_restored(struct virtio_dev *d)
{
	to_net(d)->pairs_unknown = true;
	net_update_taps(d);
}

int virtio_net_ctrl(struct virtio_dev *d, unsigned q, struct virtq_chain *c, uint32_t *used_len,
		    struct verr *err)
{
	struct virtio_net *n = to_net(d);
	uint8_t hdr[2], ack = CTRL_ERR;
	uint16_t pairs;

	if (c->out_len < 2 || c->in_len < 1)
		return verr_set(err, EIO, "control chain %u: %llu/%llu bytes", c->head,
				(unsigned long long)c->out_len, (unsigned long long)c->in_len);
	iov_to_buf(c->iov, c->nout, 0, hdr, 2);
	/* Only the queue-pair count is a command here. */
	if (hdr[0] == CTRL_MQ && hdr[1] == CTRL_MQ_VQ_PAIRS_SET && c->out_len == 4 &&
	    iov_to_buf(c->iov, c->nout, 2, &pairs, 2) == 2 && pairs >= 1 && pairs <= n->pairs) {
		ack = CTRL_OK;
		n->pairs_set = pairs;
		n->pairs_unknown = false;
		net_update_taps(d);
	}
	iov_from_buf(c->iov + c->nout, c->nin, c->in_len - 1, &ack, 1);
	*used_len = 1;
	return 0;
}

static int net_process(struct virtio_dev *d, unsigned q, struct verr *err)
{
	if (q == 2 * to_net(d)->pairs)
		return virtio_dev_serve(d, q, virtio_net_ctrl, err);
	if (q % 2 == 0)
		return net_rx(to_net(d), q, err);
	return virtio_dev_serve(d, q, net_tx_one, err);
}

static void net_tap_readable(struct virtio_dev *d, void *arg)
{
	unsigned q = 2 * (unsigned)(uintptr_t)arg;
	struct verr err = { 0 };

	if (net_rx(to_net(d), q, &err) < 0)
		virtio_dev_fail(d, q, &err);
}

static void net_destroy(struct virtio_dev *d)
{
	struct virtio_net *n = to_net(d);

	for (unsigned i = 0; i < n->pairs; i++) {
		if (n->tap[i] >= 0)
			close(n->tap[i]);
		free(n->held[i]);
	}
	free(n);
}

static const struct virtio_dev_ops net_ops = {
	.name = "virtio-net",
	.device_id = VIRTIO_ID_NET,
	.features = net_features,
	.config_size = VIRTIO_NET_CONFIG_SIZE,
	.config_read = net_config_read,
	.activate = net_activate,
	.process = net_process,
	.reset = net_reset,
	.queues_changed = net_update_taps,
	.restored = net_restored,
	.destroy = net_destroy,
};

int virtio_net_parse_mac(const char *s, uint8_t mac[6])
{
	unsigned b[6];
	char end;

	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &end) != 6)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return (mac[0] & 1) ? -EINVAL : 0;
}

static int tap_open(const char *name, bool multi, struct verr *err)
{
	struct ifreq ifr = { .ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR |
					  (multi ? IFF_MULTI_QUEUE : 0) };
	int hdr = VIRTIO_NET_HDR_SIZE;
	int fd;

	if (strlen(name) >= IFNAMSIZ)
		return verr_set(err, EINVAL, "tap name '%s' is too long", name);
	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return verr_set(err, errno, "/dev/net/tun: %s", strerror(errno));
	memcpy(ifr.ifr_name, name, strlen(name));
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		/* A tap made with "multi_queue" only opens as one. */
		ifr.ifr_flags |= IFF_MULTI_QUEUE;
		if (multi || errno != EINVAL || ioctl(fd, TUNSETIFF, &ifr) < 0) {
			verr_set(err, errno, "tap %s: TUNSETIFF: %s", name, strerror(errno));
			close(fd);
			return -err->code;
		}
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0) {
		verr_set(err, errno, "tap %s: TUNSETVNETHDRSZ: %s", name, strerror(errno));
		close(fd);
		return -err->code;
	}
	return fd;
}

int virtio_net_tap_check(int fd, char name[16], struct verr *err)
{
	struct ifreq ifr = { 0 };
	int hdr = VIRTIO_NET_HDR_SIZE, fl;

	if (ioctl(fd, TUNGETIFF, &ifr) < 0)
		return verr_set(err, errno == EBADF ? EBADF : EINVAL, "fd %d is not a tap device (TUNGETIFF: %s)",
				fd, strerror(errno));
	if ((ifr.ifr_flags & (IFF_TAP | IFF_TUN)) != IFF_TAP)
		return verr_set(err, EINVAL, "fd %d is a tun device (%.16s), not a tap", fd,
				ifr.ifr_name);
	if (!(ifr.ifr_flags & IFF_VNET_HDR))
		return verr_set(err, EINVAL, "tap %.16s (fd %d) was opened without IFF_VNET_HDR",
				ifr.ifr_name, fd);
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr) < 0)
		return verr_set(err, errno, "tap %.16s (fd %d): TUNSETVNETHDRSZ: %s", ifr.ifr_name,
				fd, strerror(errno));
	fl = fcntl(fd, F_GETFL);
	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
		return verr_set(err, errno, "tap fd %d: fcntl: %s", fd, strerror(errno));
	memcpy(name, ifr.ifr_name, IFNAMSIZ);
	name[IFNAMSIZ - 1] = '\0';
	return 0;
}

int virtio_net_tap_name(int fd, char name[16])
{
	struct ifreq ifr = { 0 };

	if (ioctl(fd, TUNGETIFF, &ifr) < 0)
		return -errno;
	memcpy(name, ifr.ifr_name, IFNAMSIZ);
	name[IFNAMSIZ - 1] = '\0';
	return 0;
}

static void net_build_config(struct virtio_net *n, const struct virtio_net_opts *o)
{
	static const uint8_t zero[6];
	uint16_t status = 1, pairs = (uint16_t)n->pairs;     /* VIRTIO_NET_S_LINK_UP */
	uint32_t h = 2166136261u;

	memcpy(n->config, o->mac, 6);
	if (!memcmp(o->mac, zero, 6)) {
		const char *seed = o->tap ? o->tap : o->tap_name ? o->tap_name : "vireo";

		for (const char *p = seed; *p; p++)
			h = (h ^ (uint8_t)*p) * 16777619u;
		/* Locally administered, unicast. */
		n->config[0] = 0x52;
		n->config[1] = 0x54;
		memcpy(n->config + 2, &h, 4);
	}
	memcpy(n->config + 6, &status, 2);
	memcpy(n->config + 8, &pairs, 2);
}

static int net_open_taps(struct virtio_net *n, const struct virtio_net_opts *o,
			 struct verr *err)
{
	for (unsigned i = 0; i < n->pairs; i++)
		n->tap[i] = -1;
	if (!o->tap) {
		n->tap[0] = o->tap_fd;
		return 0;
	}
	for (unsigned i = 0; i < n->pairs; i++) {
		n->tap[i] = tap_open(o->tap, n->pairs > 1, err);
		if (n->tap[i] < 0)
			return n->tap[i];
	}
	return 0;
}

int virtio_net_create(const struct virtio_net_opts *o, struct virtio_dev **out,
		      struct verr *err)
{
	unsigned pairs = o->queue_pairs ? o->queue_pairs : 1;
	struct virtio_net *n;
	int r;

	if (pairs > VIRTIO_NET_MAX_PAIRS || (pairs > 1 && !o->tap))
		return verr_set(err, EINVAL, "virtio-net: %u queue pairs (1..%u, by tap name)",
				pairs, VIRTIO_NET_MAX_PAIRS);
	n = calloc(1, sizeof(*n));
	if (!n)
		return verr_set(err, ENOMEM, "virtio-net: out of memory");
	n->pairs = pairs;
	r = net_open_taps(n, o, err);
	if (r) {
		net_destroy(&n->dev);
		return r;
	}
	net_build_config(n, o);
	/* Queues: rx0, tx0, rx1, tx1, ..., then the control queue with MQ. */
	r = virtio_dev_init(&n->dev, &net_ops, "virtio-net", 2 * pairs + (pairs > 1),
			    VIRTIO_NET_QUEUE_SIZE, err);
	if (r) {
		net_destroy(&n->dev);
		return r;
	}
	for (unsigned i = 0; i < pairs && !r; i++)
		r = virtio_dev_watch_fd(&n->dev, n->tap[i], net_tap_readable, (void *)(uintptr_t)i,
					err);
	if (r) {
		virtio_dev_destroy(&n->dev);
		return r;
	}
	*out = &n->dev;
	return 0;
}
