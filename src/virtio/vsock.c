/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-vsock bridged to Unix stream sockets. All work runs on the
 * device's I/O thread: the sockets sit in a private edge-triggered epoll
 * set whose fd the device watches, and every wake-up (socket event, RX
 * buffers offered, a TX packet) runs one "pump" that moves whatever can
 * move: control packets first, then socket data within the guest's credit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "core/unix_sock.h"
#include "virtio/vsock.h"

#define HOST_CID 2
#define TYPE_STREAM 1
#define OP_REQUEST 1
#define OP_RESPONSE 2
#define OP_RST 3
#define OP_SHUTDOWN 4
#define OP_RW 5
#define OP_CREDIT_UPDATE 6
#define OP_CREDIT_REQUEST 7
#define SHUT_RCV 1u
#define SHUT_SEND 2u
#define SHUT_BOTH 3u
#define BUF_ALLOC (256u * 1024)
#define MAX_PAYLOAD (64u * 1024)
#define FIRST_HOST_PORT (1u << 30)
#define MAX_ORPHAN_RST 64
#define LINE_MAX_LEN 32
#define Q_RX 0
#define Q_TX 1
#define Q_EVENT 2
#define EVENT_TRANSPORT_RESET 0     /* virtio 1.2, 5.10.6.7 */

struct pkt_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

enum conn_state { CONN_FREE = 0, CONN_HANDSHAKE, CONN_CONNECTING, CONN_OPEN, CONN_CLOSING };

struct conn {
	enum conn_state state;
	int fd;
	uint32_t local_port, peer_port;
	uint32_t peer_buf_alloc, peer_fwd_cnt;
	uint32_t tx_cnt;          /* payload bytes sent to the guest */
	uint32_t fwd_cnt;         /* guest bytes written to the socket */
	uint32_t fwd_advertised;
	bool want_request, want_response, want_rst, want_credit, want_shutdown, host_eof;
	/* The guest shut its sending side (shut_wr) or the whole connection
	 * (rst_when_flushed): done once pending data reached the socket. */
	bool shut_wr_when_flushed, rst_when_flushed;
	bool guest_no_rcv;        /* the guest shut its receiving side */
	char line[LINE_MAX_LEN];  /* "CONNECT <port>\n" being read */
	unsigned line_len;
	uint8_t *pending;         /* guest bytes the socket did not take yet */
	uint32_t pending_len;
};

struct vsock {
	struct virtio_dev dev;
	uint64_t guest_cid;
	char path[VIRTIO_VSOCK_PATH_MAX];
	int listen_fd, ep;
	uint32_t next_port;
	struct conn conns[VIRTIO_VSOCK_MAX_CONNS];
	struct pkt_hdr orphan[MAX_ORPHAN_RST];   /* RSTs for unknown connections */
	unsigned norphan;
	unsigned next_conn;                /* where fill_one's round robin starts */
	bool reset_pending;       /* a transport reset event the guest has not got yet */
	uint8_t config[VIRTIO_VSOCK_CONFIG_SIZE];
};

static struct vsock *to_vs(struct virtio_dev *d)
{
	return (struct vsock *)d;
}

static uint64_t vs_features(struct virtio_dev *d)
{
	return 0;
}

static void vs_config_read(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len)
{
	memcpy(buf, to_vs(d)->config + off, len);
}

static void conn_close(struct vsock *v, struct conn *c)
{
	if (c->fd >= 0) {
		epoll_ctl(v->ep, EPOLL_CTL_DEL, c->fd, NULL);
		close(c->fd);
	}
	free(c->pending);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

static struct conn *conn_new(struct vsock *v, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET };

	for (unsigned i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++) {
		struct conn *c = &v->conns[i];

		if (c->state != CONN_FREE)
			continue;
		memset(c, 0, sizeof(*c));
		c->fd = fd;
		ev.data.u32 = i;
		if (epoll_ctl(v->ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			return NULL;
		return c;
	}
	return NULL;
}

static struct conn *conn_find(struct vsock *v, uint32_t local, uint32_t peer)
{
	for (unsigned i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++) {
		struct conn *c = &v->conns[i];

		if (c->state > CONN_HANDSHAKE && c->local_port == local && c->peer_port == peer)
			return c;
	}
	return NULL;
}

static void hdr_for(struct vsock *v, struct conn *c, uint16_t op, struct pkt_hdr *h)
{
	*h = (struct pkt_hdr){ .src_cid = HOST_CID, .dst_cid = v->guest_cid,
			       .src_port = c->local_port, .dst_port = c->peer_port,
			       .type = TYPE_STREAM, .op = op, .buf_alloc = BUF_ALLOC,
			       .fwd_cnt = c->fwd_cnt };
	c->fwd_advertised = c->fwd_cnt;
}

static void orphan_rst(struct vsock *v, const struct pkt_hdr *in)
{
	if (in->op == OP_RST || v->norphan == MAX_ORPHAN_RST)
		return;
	v->orphan[v->norphan++] = (struct pkt_hdr){
		.src_cid = HOST_CID, .dst_cid = in->src_cid, .src_port = in->dst_port,
		.dst_port = in->src_port, .type = TYPE_STREAM, .op = OP_RST };
}

/* ---- guest to host (TX queue) ---- */

/* Guest bytes into the socket as far as it takes them; a socket that
 * failed (the host program went away) drops them and resets the stream. */
static void conn_flush(struct conn *c)
{
	while (c->pending_len) {
		ssize_t n = send(c->fd, c->pending, c->pending_len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			c->pending_len = 0;
			c->want_rst = true;
			return;
		}
		memmove(c->pending, c->pending + n, c->pending_len - (size_t)n);
		c->pending_len -= (uint32_t)n;
		c->fwd_cnt += (uint32_t)n;
	}
	if (c->shut_wr_when_flushed) {
		c->shut_wr_when_flushed = false;
		shutdown(c->fd, SHUT_WR);
	}
	if (c->rst_when_flushed) {
		c->rst_when_flushed = false;
		c->want_rst = true;
	}
}

/* Payload of an RW packet into the socket; what it does not take waits in
 * c->pending, which the guest's credit (our BUF_ALLOC) bounds. */
static void rx_from_guest(struct conn *c, const struct virtq_chain *ch, uint32_t len)
{
	uint8_t tmp[4096];
	size_t off = VIRTIO_VSOCK_HDR_SIZE;

	if (c->pending_len + len > BUF_ALLOC) {
		c->want_rst = true;          /* the guest ignored our credit */
		return;
	}
	if (!c->pending)
		c->pending = malloc(BUF_ALLOC);
	if (!c->pending) {
		c->want_rst = true;
		return;
	}
	while (len) {
		size_t n = iov_to_buf(ch->iov, ch->nout, off, tmp, len < sizeof(tmp) ? len : sizeof(tmp));

		if (n == 0)
			break;
		memcpy(c->pending + c->pending_len, tmp, n);
		c->pending_len += (uint32_t)n;
		off += n;
		len -= (uint32_t)n;
	}
	conn_flush(c);
}

static void guest_connect(struct vsock *v, const struct pkt_hdr *h)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct conn *c;
	int fd;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%u", v->path, h->dst_port);
	/* Non-blocking: the I/O thread must never wait on a host program. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    !(c = conn_new(v, fd))) {
		log_debug(v->dev.name, "guest connect to %s: %s", sa.sun_path, strerror(errno));
		if (fd >= 0)
			close(fd);
		orphan_rst(v, h);
		return;
	}
	c->state = CONN_OPEN;
	c->local_port = h->dst_port;
	c->peer_port = h->src_port;
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	c->want_response = true;
}

static void guest_packet(struct vsock *v, const struct pkt_hdr *h, const struct virtq_chain *ch)
{
	struct conn *c;

	if (h->dst_cid != HOST_CID || h->src_cid != v->guest_cid || h->type != TYPE_STREAM) {
		orphan_rst(v, h);
		return;
	}
	c = conn_find(v, h->dst_port, h->src_port);
	if (!c) {
		if (h->op == OP_REQUEST)
			guest_connect(v, h);
		else
			orphan_rst(v, h);
		return;
	}
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	switch (h->op) {
	case OP_RESPONSE:
		if (c->state == CONN_CONNECTING) {
			char ok[32];
			int n = snprintf(ok, sizeof(ok), "OK %u\n", c->local_port);

			c->state = CONN_OPEN;
			if (send(c->fd, ok, (size_t)n, MSG_NOSIGNAL) != n)
				c->want_rst = true;
		}
		break;
	case OP_RW:
		if (c->state == CONN_OPEN)
			rx_from_guest(c, ch, h->len);
		break;
	case OP_CREDIT_REQUEST:
		c->want_credit = true;
		break;
	case OP_SHUTDOWN:
		/* Finish what the guest sent, then end it the way Linux expects:
		 * a full shutdown is answered with RST.  Data the socket has not
		 * taken yet (a slow host reader) goes first: conn_flush() acts
		 * once it is all out, on this or a later wake-up. */
		if ((h->flags & SHUT_BOTH) == SHUT_BOTH) {
			c->rst_when_flushed = true;
			c->state = CONN_CLOSING;
		} else {
			if (h->flags & SHUT_SEND)
				c->shut_wr_when_flushed = true;
			/* The guest takes no more data: the host's writes fail
			 * (EPIPE) as they would on a socket whose peer shut its
			 * reading side, and nothing more is sent to the guest. */
			if ((h->flags & SHUT_RCV) && !c->guest_no_rcv) {
				c->guest_no_rcv = true;
				shutdown(c->fd, SHUT_RD);
			}
		}
		conn_flush(c);
		break;
	case OP_RST:
		conn_close(v, c);
		break;
	default:
		break;
	}
}

static int vs_tx_one(struct virtio_dev *d, unsigned q, struct virtq_chain *ch, uint32_t *used,
		     struct verr *err)
{
	struct vsock *v = to_vs(d);
	struct pkt_hdr h;

	if (ch->out_len < sizeof(h))
		return verr_set(err, EIO, "tx chain %u: %llu bytes, no header", ch->head,
				(unsigned long long)ch->out_len);
	iov_to_buf(ch->iov, ch->nout, 0, &h, sizeof(h));
	if (h.len > MAX_PAYLOAD || h.len > ch->out_len - sizeof(h))
		return verr_set(err, EIO, "tx chain %u: payload %u of %llu bytes", ch->head, h.len,
				(unsigned long long)(ch->out_len - sizeof(h)));
	guest_packet(v, &h, ch);
	*used = 0;
	return 0;
}

/* ---- host to guest (RX queue) ---- */

static bool conn_line(struct vsock *v, struct conn *c)
{
	unsigned port;

	while (c->line_len < LINE_MAX_LEN - 1) {
		ssize_t n = recv(c->fd, c->line + c->line_len, 1, MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return false;
		if (n < 0)
			return true;
		if (c->line[c->line_len++] != '\n')
			continue;
		c->line[c->line_len] = 0;
		if (sscanf(c->line, "CONNECT %u", &port) != 1)
			return false;
		c->peer_port = port;
		c->local_port = v->next_port++;
		c->state = CONN_CONNECTING;
		c->want_request = true;
		return true;
	}
	return false;
}

/* Whether the host closed a connection the guest has not answered yet
 * (nothing else reads its socket in that state). */
static bool host_left(struct conn *c)
{
	char b;

	return !c->want_rst && recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
}

static void accept_all(struct vsock *v)
{
	for (;;) {
		int fd = accept4(v->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		struct conn *c;

		if (fd < 0)
			return;
		c = conn_new(v, fd);
		if (!c) {
			close(fd);
			continue;
		}
		c->state = CONN_HANDSHAKE;
	}
}

/* Next control packet c owes the guest, if any. */
static bool conn_control(struct vsock *v, struct conn *c, struct pkt_hdr *h)
{
	if (c->want_rst) {
		hdr_for(v, c, OP_RST, h);
		return true;
	}
	if (c->want_request) {
		c->want_request = false;
		hdr_for(v, c, OP_REQUEST, h);
		return true;
	}
	if (c->want_response) {
		c->want_response = false;
		hdr_for(v, c, OP_RESPONSE, h);
		return true;
	}
	if (c->want_shutdown) {
		c->want_shutdown = false;
		/* The host stopped sending; it may still read the guest's answer. */
		hdr_for(v, c, OP_SHUTDOWN, h);
		h->flags = SHUT_SEND;
		return true;
	}
	if (c->want_credit || c->fwd_cnt - c->fwd_advertised >= BUF_ALLOC / 4) {
		c->want_credit = false;
		hdr_for(v, c, OP_CREDIT_UPDATE, h);
		return true;
	}
	return false;
}

/*
 * What the guest can still take (virtio 1.2, 5.10.6.3): the counters are
 * free-running 32-bit values, so the bytes in flight are their wrapping
 * difference, and any buf_alloc up to 2^32 - 1 is valid.  A guest that
 * shrank its buffer below what is in flight (or reports a fwd_cnt ahead of
 * what we sent) gets nothing until it catches up; a single packet is
 * bounded by MAX_PAYLOAD and the RX buffer anyway.
 */
static uint32_t conn_credit(const struct conn *c)
{
	uint32_t inflight = c->tx_cnt - c->peer_fwd_cnt;

	return inflight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - inflight;
}

/* Fill one RX chain; returns bytes written, 0 if nothing to send. */
static uint32_t fill_one(struct vsock *v, struct virtq_chain *ch)
{
	const struct iovec *in = ch->iov + ch->nout;
	struct iovec data[VIRTQ_MAX_SEGS];
	struct pkt_hdr h;

	if (v->norphan) {
		iov_from_buf(in, ch->nin, 0, &v->orphan[--v->norphan], sizeof(h));
		return sizeof(h);
	}
	/* Round robin from the connection after the last one served, so one
	 * that always has data cannot starve the others. */
	for (unsigned k = 0; k < VIRTIO_VSOCK_MAX_CONNS; k++) {
		unsigned i = (v->next_conn + k) % VIRTIO_VSOCK_MAX_CONNS;
		struct conn *c = &v->conns[i];
		uint64_t room = ch->in_len - sizeof(h), credit;
		unsigned nd = 0;
		size_t skip = sizeof(h);
		ssize_t n;

		if (c->state <= CONN_HANDSHAKE)
			continue;
		if (conn_control(v, c, &h)) {
			iov_from_buf(in, ch->nin, 0, &h, sizeof(h));
			if (h.op == OP_RST)
				conn_close(v, c);
			v->next_conn = i + 1;
			return sizeof(h);
		}
		credit = conn_credit(c);
		if (c->state != CONN_OPEN || c->host_eof || c->guest_no_rcv || credit == 0)
			continue;
		if (room > credit)
			room = credit;
		if (room > MAX_PAYLOAD)
			room = MAX_PAYLOAD;
		for (unsigned k = 0; k < ch->nin && room; k++) {
			size_t l = in[k].iov_len;

			if (skip >= l) {
				skip -= l;
				continue;
			}
			l -= skip;
			if (l > room)
				l = (size_t)room;
			data[nd++] = (struct iovec){ (uint8_t *)in[k].iov_base + skip, l };
			room -= l;
			skip = 0;
		}
		if (!nd)
			continue;
		n = recvmsg(c->fd, &(struct msghdr){ .msg_iov = data, .msg_iovlen = nd },
			    MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			c->host_eof = true;
			c->want_shutdown = true;
			k--;                    /* send the SHUTDOWN in this buffer */
			continue;
		}
		if (n < 0)
			continue;
		hdr_for(v, c, OP_RW, &h);
		h.len = (uint32_t)n;
		c->tx_cnt += (uint32_t)n;
		iov_from_buf(in, ch->nin, 0, &h, sizeof(h));
		v->next_conn = i + 1;
		return (uint32_t)(sizeof(h) + (size_t)n);
	}
	return 0;
}

static int vs_pump(struct vsock *v, struct verr *err)
{
	struct virtio_dev *d = &v->dev;
	struct virtq *vq = &d->q[Q_RX].vq;
	struct epoll_event ev[VIRTIO_VSOCK_MAX_CONNS];
	unsigned done = 0;
	int r = 0;

	/* Clear the edge; the pump below looks at every connection anyway. */
	while (epoll_wait(v->ep, ev, VIRTIO_VSOCK_MAX_CONNS, 0) > 0)
		;
	accept_all(v);
	for (unsigned i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++) {
		struct conn *c = &v->conns[i];

		if (c->state == CONN_HANDSHAKE && !conn_line(v, c))
			conn_close(v, c);
		else if (c->state == CONN_CONNECTING && host_left(c)) {
			/* gone before the guest answered: tell it, if it was asked */
			if (c->want_request)
				conn_close(v, c);
			else
				c->want_rst = true;
		} else if (c->state >= CONN_OPEN)
			conn_flush(c);
	}
	while (virtio_dev_queue_ready(d, Q_RX)) {
		uint32_t len;

		if (done == vq->num) {
			/* a ring's worth: let other queues run, then carry on */
			virtio_dev_kick(d, Q_RX);
			break;
		}
		r = virtq_pop_or_arm(vq, d->chain, err);
		if (r <= 0)
			break;
		if (d->chain->in_len < VIRTIO_VSOCK_HDR_SIZE) {
			r = verr_set(err, EIO, "rx chain %u: %llu writable bytes", d->chain->head,
				     (unsigned long long)d->chain->in_len);
			break;
		}
		len = fill_one(v, d->chain);
		if (!len) {
			virtq_unpop(vq);
			break;
		}
		r = virtq_push(vq, d->chain->head, len, err);
		if (r < 0)
			break;
		done++;
	}
	if (r >= 0 && virtio_dev_queue_ready(d, Q_RX))
		virtq_enable_kicks(vq);
	if (done)
		virtio_dev_notify(d, Q_RX);
	return r < 0 ? r : 0;
}

/* The event queue carries one kind of event: the transport reset after a
 * restore. It waits for a buffer if the driver has none there yet. */
static int vs_send_reset(struct vsock *v, struct verr *err)
{
	struct virtio_dev *d = &v->dev;
	struct virtq *vq = &d->q[Q_EVENT].vq;
	uint32_t id = EVENT_TRANSPORT_RESET;
	int r;

	if (!v->reset_pending || !virtio_dev_queue_ready(d, Q_EVENT))
		return 0;
	r = virtq_pop_or_arm(vq, d->chain, err);
	if (r <= 0)
		return r;
	if (d->chain->in_len < sizeof(id))
		return verr_set(err, EIO, "event chain %u: %llu writable bytes", d->chain->head,
				(unsigned long long)d->chain->in_len);
	iov_from_buf(d->chain->iov + d->chain->nout, d->chain->nin, 0, &id, sizeof(id));
	if ((r = virtq_push(vq, d->chain->head, sizeof(id), err)) < 0)
		return r;
	v->reset_pending = false;
	virtio_dev_notify(d, Q_EVENT);
	return 0;
}

static int vs_process(struct virtio_dev *d, unsigned q, struct verr *err)
{
	int r = 0;

	if (q == Q_TX)
		r = virtio_dev_serve(d, q, vs_tx_one, err);
	if (r == 0 && q == Q_EVENT)
		return vs_send_reset(to_vs(d), err);
	if (r == 0)
		r = vs_pump(to_vs(d), err);
	return r;
}

/* The guest's connections ended with the old process (5.10.6.7): the
 * driver must drop them all and re-read its CID. */
static void vs_restored(struct virtio_dev *d)
{
	struct verr err = { 0 };

	to_vs(d)->reset_pending = true;
	if (vs_send_reset(to_vs(d), &err) < 0)
		virtio_dev_fail(d, Q_EVENT, &err);
}

static void vs_wake(struct virtio_dev *d, void *arg)
{
	struct verr err = { 0 };

	if (vs_pump(to_vs(d), &err) < 0)
		virtio_dev_fail(d, Q_RX, &err);
}

static void vs_reset(struct virtio_dev *d)
{
	struct vsock *v = to_vs(d);

	for (unsigned i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++)
		if (v->conns[i].state != CONN_FREE)
			conn_close(v, &v->conns[i]);
	v->norphan = 0;
	v->reset_pending = false;
}

static void vs_destroy(struct virtio_dev *d)
{
	struct vsock *v = to_vs(d);

	vs_reset(d);
	if (v->listen_fd >= 0) {
		close(v->listen_fd);
		unlink(v->path);
	}
	if (v->ep >= 0)
		close(v->ep);
	free(v);
}

static const struct virtio_dev_ops vs_ops = {
	.name = "virtio-vsock",
	.device_id = VIRTIO_ID_VSOCK,
	.features = vs_features,
	.config_size = VIRTIO_VSOCK_CONFIG_SIZE,
	.config_read = vs_config_read,
	.process = vs_process,
	.reset = vs_reset,
	.restored = vs_restored,
	.destroy = vs_destroy,
};

static int vs_listen(struct vsock *v, struct verr *err)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET, .data.u32 = UINT32_MAX };
	int fd = unix_listen(v->path, 16, SOCK_NONBLOCK, 0, err);

	if (fd < 0) {
		verr_prefix(err, "vsock: ");
		return fd;
	}
	v->listen_fd = fd;
	if (epoll_ctl(v->ep, EPOLL_CTL_ADD, v->listen_fd, &ev) < 0)
		return verr_set(err, errno, "vsock socket %s: epoll: %s", v->path, strerror(errno));
	return 0;
}

int virtio_vsock_create(uint64_t guest_cid, const char *uds_path, struct virtio_dev **out,
			struct verr *err)
{
	struct vsock *v;
	int r;

	if (guest_cid < 3 || guest_cid > UINT32_MAX - 1)
		return verr_set(err, EINVAL, "vsock guest CID %llu (3..2^32-2)",
				(unsigned long long)guest_cid);
	if (strlen(uds_path) >= sizeof(((struct vsock *)0)->path))
		return verr_set(err, ENAMETOOLONG, "%s: vsock socket path too long", uds_path);
	v = calloc(1, sizeof(*v));
	if (!v)
		return verr_set(err, ENOMEM, "virtio-vsock: out of memory");
	v->guest_cid = guest_cid;
	v->next_port = FIRST_HOST_PORT;
	v->listen_fd = -1;
	snprintf(v->path, sizeof(v->path), "%s", uds_path);
	for (unsigned i = 0; i < VIRTIO_VSOCK_MAX_CONNS; i++)
		v->conns[i].fd = -1;
	memcpy(v->config, &guest_cid, 8);
	v->ep = epoll_create1(EPOLL_CLOEXEC);
	r = v->ep < 0 ? verr_set(err, errno, "epoll: %s", strerror(errno)) : vs_listen(v, err);
	if (!r)
		r = virtio_dev_init(&v->dev, &vs_ops, "virtio-vsock", 3, VIRTIO_VSOCK_QUEUE_SIZE, err);
	if (r) {
		vs_destroy(&v->dev);
		return r;
	}
	r = virtio_dev_watch_fd(&v->dev, v->ep, vs_wake, NULL, err);
	if (r) {
		virtio_dev_destroy(&v->dev);
		return r;
	}
	*out = &v->dev;
	return 0;
}
