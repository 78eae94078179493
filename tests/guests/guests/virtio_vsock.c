/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-vsock (virtio 1.2, 5.10) driven from ring 3 over modern virtio-pci:
 * stream sockets to the host (CID 2), with the credit protocol in both
 * directions.  Queues are polled; the rx queue must still have raised an
 * MSI-X interrupt by the end.
 *
 * Two connections, one after the other:
 *  listen=P   accept the host's connection to guest port P (the host side
 *             of vireo's Unix socket says "CONNECT P"), read rx_len bytes
 *             that must be pattern(rx_seed), and echo every byte back
 *             (`noecho`: consume them and answer "SUM <n> <fnv1a32>\n"
 *             instead).  The host then shuts its sending side; the guest
 *             sends SHUTDOWN (both directions) and waits for the RST.
 *  connect=P  connect to host port P, send tx_len bytes of
 *             pattern(tx_seed) within the host's credit (CREDIT_REQUEST when
 *             it runs out), SHUTDOWN its sending side, and expect the host's
 *             answer "GOT <n> <fnv1a32 as %08x>\n" before the final SHUTDOWN
 *             and RST.
 *
 * pattern(seed): 32-bit little-endian words x1, x2, ... with
 * x0 = seed, x(k+1) = x(k) * 1664525 + 1013904223 (mod 2^32).
 *
 * Command line:
 *   listen= rx_len= rx_seed= noecho   connect= tx_len= tx_seed=
 *   buf_alloc=N   the receive buffer the guest advertises (default 65536;
 *                 with echo at most 262144, the echo ring; without, any
 *                 32-bit value: data is consumed as it arrives)
 *   expect_cid=N  the guest CID the device's config must hold
 *   event_idx, indirect  as virtio_blk
 *
 * Every check fails the guest: pattern mismatch, more data than announced,
 * the device sending beyond the credit the guest gave, a reset connection,
 * a wrong answer from the host, no progress for 30 s.
 */
#include "virtio.h"

const char guest_name[] = "virtio_vsock";

#define VIRTIO_ID_VSOCK 19
#define HOST_CID 2
#define HDR 44
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

#define RX_BUFS 32
#define RX_DATA 4096
#define TX_SLOTS 16
#define TX_CHUNK 16384
#define EV_BUFS 4
#define ECHO_CAP (256u * 1024)
#define LOCAL_PORT 49152
#define STALL_US 30000000ull

struct pkt {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));
_Static_assert(sizeof(struct pkt) == HDR, "virtio_vsock_hdr is 44 bytes");

struct gen {
	uint32_t x, word;
	unsigned left;
};

struct conn {
	bool open, connected, rst, peer_shut_send;
	uint32_t local_port, peer_port;
	uint32_t buf_alloc, fwd_cnt, fwd_sent;	/* ours: what we advertise */
	uint32_t rx_total;			/* payload bytes received */
	uint32_t peer_buf_alloc, peer_fwd_cnt, tx_cnt;
	bool credit_asked;
	uint64_t stalls, credit_requests;
	/* what to do with received payload */
	void (*deliver)(struct conn *c, const uint8_t *p, uint32_t n);
};

static struct vdev dev;
static struct vq *rxq, *txq, *evq;
static uint64_t cid;
static uint8_t *rx_buf[256];
static uint8_t *tx_slot[TX_SLOTS];
static bool tx_busy[TX_SLOTS];
static int8_t slot_of_head[256];
static uint32_t ev_buf_len;
static struct conn conn;
static uint64_t progress_at, rx_packets, foreign_rst;
static uint32_t listen_port;

/* listen side */
static struct gen rx_gen;
static uint32_t rx_len, rx_got, rx_fnv = 0x811c9dc5u;
static bool echo;
static uint8_t echo_ring[ECHO_CAP];
static uint32_t echo_head, echo_used;
static uint64_t echoed;

/* connect side */
static char reply[64];
static uint32_t reply_len;

static uint8_t gen_byte(struct gen *g)
{
	if (!g->left) {
		g->x = g->x * 1664525u + 1013904223u;
		g->word = g->x;
		g->left = 4;
	}
	uint8_t b = (uint8_t)g->word;
	g->word >>= 8;
	g->left--;
	return b;
}

static uint32_t fnv_add(uint32_t h, uint8_t b)
{
	return (h ^ b) * 0x01000193u;
}

/* "<word> <n> <fnv as %08x>\n" into buf (at least 32 bytes); its length. */
static uint32_t sum_line(char *buf, const char *word, uint32_t n, uint32_t fnv)
{
	char dec[12];
	int nd = 0;
	uint32_t len = 0;
	while (*word)
		buf[len++] = *word++;
	buf[len++] = ' ';
	do {
		dec[nd++] = (char)('0' + n % 10);
		n /= 10;
	} while (n);
	while (nd)
		buf[len++] = dec[--nd];
	buf[len++] = ' ';
	for (int sh = 28; sh >= 0; sh -= 4)
		buf[len++] = "0123456789abcdef"[(fnv >> sh) & 15];
	buf[len++] = '\n';
	buf[len] = 0;
	return len;
}

static void progress(void)
{
	progress_at = rdtsc();
}

static void check_stall(const char *what)
{
	if (rdtsc() > progress_at + tsc_hz() / 1000000 * STALL_US)
		guest_fail("%s: no progress for 30 s (rx %u/%u, tx_cnt %u, peer buf_alloc %u fwd_cnt %u, "
			   "%lu stalls)", what, rx_got, rx_len, conn.tx_cnt, conn.peer_buf_alloc,
			   conn.peer_fwd_cnt, conn.stalls);
}

/* ---- transmit ---- */

static void tx_reclaim(void)
{
	int head;
	while ((head = vq_get(txq, NULL)) >= 0) {
		int s = slot_of_head[head];
		CHECK(s >= 0 && tx_busy[s], "tx used id %d was not posted", head);
		tx_busy[s] = false;
		slot_of_head[head] = -1;
	}
}

/* A free transmit buffer: its slot; the payload goes at tx_slot[s] + HDR. */
static int tx_slot_get(void)
{
	uint64_t end = tsc_deadline(10000000);
	for (;;) {
		tx_reclaim();
		for (int s = 0; s < TX_SLOTS; s++)
			if (!tx_busy[s])
				return s;
		CHECK(rdtsc() < end, "tx queue: no buffer returned within 10 s");
		cpu_relax();
	}
}

static void tx_post(int s, const struct pkt *h)
{
	memcpy(tx_slot[s], h, HDR);
	/* Header and payload in separate descriptors, as Linux does. */
	struct vbuf b[2] = { { tx_slot[s], HDR, false }, { tx_slot[s] + HDR, h->len, false } };
	int head = vq_add(txq, b, h->len ? 2 : 1);
	CHECK(head >= 0, "tx queue full");
	tx_busy[s] = true;
	slot_of_head[head] = (int8_t)s;
	vq_kick(txq);
}

static struct pkt hdr_for(struct conn *c, uint16_t op, uint32_t flags, uint32_t len)
{
	c->fwd_sent = c->fwd_cnt;
	return (struct pkt){ .src_cid = cid, .dst_cid = HOST_CID, .src_port = c->local_port,
			     .dst_port = c->peer_port, .len = len, .type = TYPE_STREAM, .op = op,
			     .flags = flags, .buf_alloc = c->buf_alloc, .fwd_cnt = c->fwd_cnt };
}

static void send_ctl(struct conn *c, uint16_t op, uint32_t flags)
{
	int s = tx_slot_get();
	struct pkt h = hdr_for(c, op, flags, 0);
	tx_post(s, &h);
}

/* Payload already at tx_slot[s] + HDR. */
static void send_rw(struct conn *c, int s, uint32_t n)
{
	struct pkt h = hdr_for(c, OP_RW, 0, n);
	c->tx_cnt += n;
	tx_post(s, &h);
}

/* 5.10.6.3: what the peer can still take, in 32-bit wrapping arithmetic. */
static uint32_t credit(const struct conn *c)
{
	uint32_t inflight = c->tx_cnt - c->peer_fwd_cnt;
	return inflight >= c->peer_buf_alloc ? 0 : c->peer_buf_alloc - inflight;
}

/* Some credit, or false after asking for it (once until it comes). */
static bool have_credit(struct conn *c)
{
	if (credit(c))
		return true;
	if (!c->credit_asked) {
		c->credit_asked = true;
		c->stalls++;
		c->credit_requests++;
		send_ctl(c, OP_CREDIT_REQUEST, 0);
	}
	return false;
}

static void send_rst_for(const struct pkt *in)
{
	int s = tx_slot_get();
	struct pkt h = { .src_cid = cid, .dst_cid = HOST_CID, .src_port = in->dst_port,
			 .dst_port = in->src_port, .type = TYPE_STREAM, .op = OP_RST };
	tx_post(s, &h);
}

/* ---- receive ---- */

static void rx_post(uint8_t *buf)
{
	struct vbuf b = { buf, HDR + RX_DATA, true };
	int head = vq_add(rxq, &b, 1);
	CHECK(head >= 0, "rx queue full");
	rx_buf[head] = buf;
}

static void conn_packet(struct conn *c, const struct pkt *h, const uint8_t *data)
{
	c->peer_buf_alloc = h->buf_alloc;
	c->peer_fwd_cnt = h->fwd_cnt;
	if (credit(c))
		c->credit_asked = false;
	switch (h->op) {
	case OP_RESPONSE:
		CHECK(!c->connected, "RESPONSE on an established connection");
		c->connected = true;
		break;
	case OP_RW:
		CHECK(c->connected, "RW before the connection was established");
		CHECK(!c->peer_shut_send, "RW of %u bytes after the host's SHUTDOWN(send)", h->len);
		c->rx_total += h->len;
		/* Our fwd_cnt as last sent bounds what the device may send. */
		CHECK(c->rx_total - c->fwd_sent <= c->buf_alloc,
		      "device sent beyond our credit: %u bytes in flight, buf_alloc %u",
		      c->rx_total - c->fwd_sent, c->buf_alloc);
		c->deliver(c, data, h->len);
		break;
	case OP_SHUTDOWN:
		if (h->flags & SHUT_SEND)
			c->peer_shut_send = true;
		break;
	case OP_CREDIT_REQUEST:
		send_ctl(c, OP_CREDIT_UPDATE, 0);
		break;
	case OP_CREDIT_UPDATE:
		break;
	case OP_RST:
		c->rst = true;
		c->open = false;
		break;
	default:
		guest_fail("unexpected op %u on port %u", h->op, c->local_port);
	}
}

static void listen_accept(const struct pkt *h);

static void rx_packet(const uint8_t *buf, uint32_t len)
{
	struct pkt h;
	CHECK(len >= HDR && len <= HDR + RX_DATA, "rx used length %u", len);
	memcpy(&h, buf, HDR);
	CHECK(h.len == len - HDR, "rx header len %u in a %u-byte completion", h.len, len);
	CHECK(h.src_cid == HOST_CID && h.dst_cid == cid && h.type == TYPE_STREAM,
	      "rx packet cid %lu -> %lu type %u", h.src_cid, h.dst_cid, h.type);
	rx_packets++;
	if (conn.open && h.dst_port == conn.local_port && h.src_port == conn.peer_port) {
		conn_packet(&conn, &h, buf + HDR);
	} else if (h.op == OP_REQUEST && listen_port && h.dst_port == listen_port && !conn.open &&
		   !conn.connected) {
		listen_accept(&h);
	} else if (h.op == OP_RST) {
		foreign_rst++;
	} else {
		/* Not for a socket of ours (a host that CONNECTs too early). */
		send_rst_for(&h);
	}
}

static void ev_poll(void)
{
	uint32_t len;
	int head = vq_get(evq, &len);
	if (head >= 0)
		guest_fail("event queue: event of %u bytes (transport reset?)", len);
}

/* Handle whatever the device completed; true if anything was. */
static bool poll_once(void)
{
	bool any = false;
	uint32_t len;
	int head;
	tx_reclaim();
	while ((head = vq_get(rxq, &len)) >= 0) {
		CHECK(rx_buf[head], "rx used id %d was not posted", head);
		uint8_t *buf = rx_buf[head];
		rx_buf[head] = NULL;
		rx_packet(buf, len);
		rx_post(buf);
		any = true;
	}
	if (any) {
		vq_kick(rxq);
		progress();
	}
	ev_poll();
	return any;
}

/* 5.10.6.3: tell the device about consumed data before it runs dry. */
static void maybe_credit_update(struct conn *c)
{
	if (c->open && c->fwd_cnt - c->fwd_sent >= c->buf_alloc / 2)
		send_ctl(c, OP_CREDIT_UPDATE, 0);
}

/* Close our side: SHUTDOWN of both directions, answered by RST. */
static void close_conn(struct conn *c, const char *what)
{
	send_ctl(c, OP_SHUTDOWN, SHUT_RCV | SHUT_SEND);
	progress();
	while (!c->rst) {
		poll_once();
		check_stall(what);
	}
	printf("VSOCK: %s: RST after SHUTDOWN\n", what);
}

/* ---- listen: host-initiated connection ---- */

static void listen_deliver(struct conn *c, const uint8_t *p, uint32_t n)
{
	CHECK(n <= rx_len - rx_got, "host sent %u bytes more than the %u announced",
	      n - (rx_len - rx_got), rx_len);
	for (uint32_t i = 0; i < n; i++) {
		uint8_t want = gen_byte(&rx_gen);
		if (p[i] != want)
			guest_fail("listen: byte %u is 0x%02x, pattern(rx_seed) has 0x%02x", rx_got + i,
				   p[i], want);
		rx_fnv = fnv_add(rx_fnv, p[i]);
	}
	rx_got += n;
	if (!echo) {
		c->fwd_cnt += n;
		return;
	}
	/* Our buf_alloc <= ECHO_CAP bounds what is not echoed yet. */
	CHECK(echo_used + n <= ECHO_CAP, "echo ring overflow: device ignored our credit");
	for (uint32_t i = 0; i < n; i++)
		echo_ring[(echo_head + echo_used + i) % ECHO_CAP] = p[i];
	echo_used += n;
}

static void listen_accept(const struct pkt *h)
{
	memset(&conn, 0, sizeof(conn));
	conn.open = conn.connected = true;
	conn.local_port = h->dst_port;
	conn.peer_port = h->src_port;
	conn.buf_alloc = (uint32_t)cmdline_u64("buf_alloc", 65536);
	conn.peer_buf_alloc = h->buf_alloc;
	conn.peer_fwd_cnt = h->fwd_cnt;
	conn.deliver = listen_deliver;
	send_ctl(&conn, OP_RESPONSE, 0);
	printf("VSOCK: accepted host port %u on port %u (host buf_alloc %u)\n", h->src_port,
	       h->dst_port, h->buf_alloc);
}

/* Echo what the ring holds, as far as credit and transmit buffers allow. */
static void echo_pump(struct conn *c)
{
	while (echo_used && have_credit(c)) {
		uint32_t n = echo_used, cr = credit(c);
		if (n > TX_CHUNK)
			n = TX_CHUNK;
		if (n > cr)
			n = cr;
		int s = tx_slot_get();
		for (uint32_t i = 0; i < n; i++)
			tx_slot[s][HDR + i] = echo_ring[(echo_head + i) % ECHO_CAP];
		echo_head = (echo_head + n) % ECHO_CAP;
		echo_used -= n;
		echoed += n;
		c->fwd_cnt += n;	/* released: the peer may send that much more */
		send_rw(c, s, n);
		progress();
	}
}

static void do_listen(void)
{
	rx_len = (uint32_t)cmdline_u64("rx_len", 65536);
	rx_gen = (struct gen){ .x = (uint32_t)cmdline_u64("rx_seed", 1) };
	echo = !cmdline_has("noecho");
	if (echo)
		CHECK(cmdline_u64("buf_alloc", 65536) <= ECHO_CAP, "buf_alloc > %u with echo", ECHO_CAP);
	printf("VSOCK: listening on port %u for %u bytes\n", listen_port, rx_len);
	progress();
	/* The host connects when it likes: a longer bound until then. */
	uint64_t end = tsc_deadline(120000000);
	while (!conn.open) {
		poll_once();
		CHECK(rdtsc() < end, "listen: no connection to port %u within 120 s", listen_port);
	}
	progress();
	while (!(rx_got == rx_len && conn.peer_shut_send && !echo_used)) {
		CHECK(!conn.rst, "listen: connection reset after %u of %u bytes", rx_got, rx_len);
		CHECK(!conn.peer_shut_send || rx_got == rx_len,
		      "listen: host shut down after %u of %u bytes", rx_got, rx_len);
		poll_once();
		if (echo)
			echo_pump(&conn);
		else
			maybe_credit_update(&conn);
		check_stall("listen");
	}
	if (!echo) {
		char line[48];
		uint32_t n = sum_line(line, "SUM", rx_got, rx_fnv);
		while (credit(&conn) < n) {
			have_credit(&conn);
			poll_once();
			check_stall("listen SUM");
		}
		int s = tx_slot_get();
		memcpy(tx_slot[s] + HDR, line, n);
		send_rw(&conn, s, n);
	}
	printf("VSOCK: listen port %u: %u bytes verified, fnv1a32 %08x, %lu echoed, %lu credit "
	       "stalls\n", listen_port, rx_got, rx_fnv, echoed, conn.stalls);
	close_conn(&conn, "listen");
}

/* ---- connect: guest-initiated connection ---- */

static void connect_deliver(struct conn *c, const uint8_t *p, uint32_t n)
{
	CHECK(reply_len + n < sizeof(reply), "host reply longer than %u bytes",
	      (unsigned)sizeof(reply) - 1);
	memcpy(reply + reply_len, p, n);
	reply_len += n;
	c->fwd_cnt += n;
}

static void do_connect(uint32_t port)
{
	uint32_t len = (uint32_t)cmdline_u64("tx_len", 65536), sent = 0, fnv = 0x811c9dc5u;
	struct gen g = { .x = (uint32_t)cmdline_u64("tx_seed", 1) };
	memset(&conn, 0, sizeof(conn));
	conn.open = true;
	conn.local_port = LOCAL_PORT;
	conn.peer_port = port;
	conn.buf_alloc = (uint32_t)cmdline_u64("buf_alloc", 65536);
	conn.deliver = connect_deliver;
	send_ctl(&conn, OP_REQUEST, 0);
	progress();
	while (!conn.connected) {
		CHECK(!conn.rst, "connect to host port %u refused (RST)", port);
		poll_once();
		check_stall("connect");
	}
	printf("VSOCK: connected to host port %u (host buf_alloc %u)\n", port, conn.peer_buf_alloc);
	while (sent < len) {
		CHECK(!conn.rst, "connect: reset after %u of %u bytes", sent, len);
		poll_once();
		if (!have_credit(&conn)) {
			check_stall("connect");
			continue;
		}
		uint32_t n = len - sent, cr = credit(&conn);
		if (n > TX_CHUNK)
			n = TX_CHUNK;
		if (n > cr)
			n = cr;
		int s = tx_slot_get();
		uint8_t *p = tx_slot[s] + HDR;
		for (uint32_t i = 0; i < n; i++) {
			p[i] = gen_byte(&g);
			fnv = fnv_add(fnv, p[i]);
		}
		send_rw(&conn, s, n);
		sent += n;
		progress();
	}
	send_ctl(&conn, OP_SHUTDOWN, SHUT_SEND);
	printf("VSOCK: connect port %u: %u bytes sent, %lu credit stalls, %lu credit requests\n",
	       port, sent, conn.stalls, conn.credit_requests);
	progress();
	while (!conn.peer_shut_send) {
		CHECK(!conn.rst, "connect: reset before the host's answer (got %u bytes)", reply_len);
		poll_once();
		maybe_credit_update(&conn);
		check_stall("connect answer");
	}
	char want[48];
	uint32_t wl = sum_line(want, "GOT", sent, fnv);
	reply[reply_len] = 0;
	CHECK(reply_len == wl && !memcmp(reply, want, wl),
	      "host answered \"%s\", expected \"GOT %u %08x\"", reply, sent, fnv);
	printf("VSOCK: connect port %u: host confirmed %u bytes, fnv1a32 %08x\n", port, sent, fnv);
	close_conn(&conn, "connect");
}

/* ---- device ---- */

static void configure(void)
{
	virtio_open(&dev, VIRTIO_ID_VSOCK, 0, virtio_cmdline_features());
	virtio_require(&dev, virtio_cmdline_features());
	CHECK(dev.nqueues >= 3, "%u queues, virtio-vsock has 3", dev.nqueues);
	virtio_config_read(&dev, 0, &cid, 8);
	CHECK(cid >= 3 && cid < 0xffffffffull, "guest CID %lu is reserved", cid);
	rxq = virtio_queue(&dev, 0, 64);
	txq = virtio_queue(&dev, 1, 64);
	evq = virtio_queue(&dev, 2, 8);
	for (int i = 0; i < RX_BUFS && i < rxq->size; i++)
		rx_post(dma_alloc(HDR + RX_DATA, 64));
	for (int s = 0; s < TX_SLOTS; s++)
		tx_slot[s] = dma_alloc(HDR + TX_CHUNK, 64);
	for (int i = 0; i < 256; i++)
		slot_of_head[i] = -1;
	ev_buf_len = 8;
	for (int i = 0; i < EV_BUFS && i < evq->size; i++) {
		struct vbuf b = { dma_alloc(ev_buf_len, 8), ev_buf_len, true };
		CHECK(vq_add(evq, &b, 1) >= 0, "event queue full");
	}
	virtio_driver_ok(&dev);
	vq_kick(rxq);
	vq_kick(evq);
	printf("VSOCK: guest cid %lu\n", cid);
}

void guest_main(void)
{
	uint64_t want_cid = cmdline_u64("expect_cid", 0);
	listen_port = (uint32_t)cmdline_u64("listen", 0);
	uint32_t connect_port = (uint32_t)cmdline_u64("connect", 0);
	CHECK(listen_port || connect_port, "need listen=PORT and/or connect=PORT");
	configure();
	CHECK(!want_cid || cid == want_cid, "guest CID %lu, expected %lu", cid, want_cid);
	if (listen_port)
		do_listen();
	listen_port = 0;
	if (connect_port)
		do_connect(connect_port);
	uint64_t rx_irqs = vq_irqs(rxq);
	/* The queues are polled, so the last packet can be consumed before
	 * the MSI-X write for it lands (under QEMU's TCG the front end's main
	 * loop turns the back end's call eventfd into that write, and a busy
	 * host may not have run it yet): wait for it as vq_exec() does. */
	if (rx_irqs == 0 && rx_packets) {
		uint64_t t0 = rdtsc();
		if (vq_wait_irq(rxq, 0, 1000000))
			printf("VSOCK: first rx MSI-X %lu ms after the last packet\n",
			       (rdtsc() - t0) * 1000 / tsc_hz());
		rx_irqs = vq_irqs(rxq);
	}
	printf("VSOCK: %lu packets in, %lu out; %lu RSTs for unknown sockets; MSI-X rx %lu\n",
	       rx_packets, txq->completed, foreign_rst, rx_irqs);
	CHECK(rx_irqs > 0, "packets received without an rx MSI-X interrupt");
	virtio_reset(&dev);
}
