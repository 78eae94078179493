/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-net (virtio 1.2, 5.1) driven from ring 3 over modern virtio-pci
 * with MSI-X.  The guest talks to the host end of a tap: it resolves the
 * host's MAC by ARP, pings it (ICMP echo with a payload that must come back
 * unchanged), and sends a UDP datagram that an echo server on the host
 * returns prefixed with "ECHO ".  It answers ARP requests for its own
 * address, so the host can reach it.  Received IPv4 headers, ICMP and UDP
 * checksums are verified (no checksum offload is negotiated, so the device
 * must deliver complete packets).  Each transmit completes with a tx-queue
 * MSI-X interrupt, and received frames must have raised rx-queue ones.
 *
 * Command line:
 *   guest_ip=A.B.C.D  host_ip=A.B.C.D  (required)
 *   port=N            the host's UDP echo port (default 7777)
 *   token=WORD        carried in the ICMP and UDP payloads (default "vireo")
 *   expect_mac=xx:xx:xx:xx:xx:xx  the MAC the device's config must hold
 *   event_idx, indirect  negotiate and require VIRTIO_F_EVENT_IDX /
 *                    VIRTIO_F_INDIRECT_DESC (tx header + frame then go
 *                    through an indirect table)
 *   expect_pairs=N   the device must offer VIRTIO_NET_F_MQ with
 *                    max_virtqueue_pairs N (1..4); the guest enables all N
 *                    through the control queue (5.1.6.5.5), transmits on
 *                    each in turn, receives on all, and every transmit
 *                    queue must have carried frames
 *   mrg_rxbuf=LEN    negotiate and require VIRTIO_NET_F_MRG_RXBUF and post
 *                    receive buffers of LEN bytes (12..2048); a frame may
 *                    then span num_buffers of them, which must all be in
 *                    the used ring once its first one is (5.1.6.4)
 *   ping_len=N       ICMP echo payload of N bytes (up to 1472; default:
 *                    the text "vireo-icmp <token>"), so replies can be
 *                    bigger than one small receive buffer
 */
#include "virtio.h"

const char guest_name[] = "virtio_net";

#define VIRTIO_ID_NET 1
#define F_MAC (1ull << 5)
#define F_STATUS (1ull << 16)
#define F_MRG_RXBUF (1ull << 15)
#define F_CTRL_VQ (1ull << 17)
#define F_MQ (1ull << 22)
#define MAX_PAIRS 4
#define CTRL_MQ 4
#define CTRL_MQ_VQ_PAIRS_SET 0

#define HDR_LEN 12			/* virtio_net_hdr with num_buffers (VERSION_1) */
#define RX_BUFS 16
#define RX_BUF_LEN 2048			/* >= 1526: header + a full Ethernet frame */
#define RX_MRG_BUFS 64			/* mergeable: the whole (64-entry) ring */
#define MAX_FRAME (HDR_LEN + 1514)
#define MAX_ICMP 1472			/* a 1500-byte IPv4 packet */
#define ETH_ARP 0x0806
#define ETH_IP 0x0800
#define GUEST_PORT 40123
#define ICMP_ID 0x7669

static struct vdev dev;
static struct vq *rxqs[MAX_PAIRS], *txqs[MAX_PAIRS];
static unsigned pairs = 1, next_tx;
static uint8_t *rx_buf[MAX_PAIRS][256];	/* by queue pair and descriptor head */
static uint64_t rx_frames[MAX_PAIRS];
static uint8_t mac[6], host_mac[6], guest_ip[4], host_ip[4];
static uint16_t host_port;
static char token[64] = "vireo";
static bool have_host_mac, got_echo, got_udp;
static uint64_t frames_in, arp_answered, ipid = 1;
static char want_udp[128];
static uint8_t want_icmp[MAX_ICMP];
static uint32_t icmp_len, rx_len = RX_BUF_LEN;
static bool mrg;
static uint64_t mrg_multi, mrg_bufs;	/* frames over several buffers; buffers used */
static unsigned mrg_most;
static uint8_t mrg_frame[MAX_FRAME];

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }

/* RFC 1071 one's-complement sum, seeded so a pseudo-header can go first. */
static uint32_t sum_add(uint32_t s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += get16(p + i);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

static uint16_t sum_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static uint32_t pseudo(const uint8_t *src, const uint8_t *dst, uint8_t proto, uint16_t len)
{
	uint8_t ph[12];
	memcpy(ph, src, 4);
	memcpy(ph + 4, dst, 4);
	ph[8] = 0;
	ph[9] = proto;
	put16(ph + 10, len);
	return sum_add(0, ph, 12);
}

static bool parse_ip(const char *key, uint8_t ip[4])
{
	char buf[32];
	const char *s = cmdline_get(key, buf, sizeof(buf));
	if (!s)
		return false;
	for (int i = 0; i < 4; i++) {
		const char *end;
		uint64_t v = parse_u64(s, &end);
		if (end == s || v > 255 || (i < 3 && *end != '.') || (i == 3 && *end))
			return false;
		ip[i] = (uint8_t)v;
		s = end + 1;
	}
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c |= 0x20;
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static void send_frame(const uint8_t *frame, uint32_t len)
{
	static uint8_t hdr[HDR_LEN];	/* no offloads: all zero */
	struct vbuf b[2] = { { hdr, HDR_LEN, false }, { frame, len < 60 ? 60 : len, false } };
	vq_exec(txqs[next_tx++ % pairs], b, 2);
}

static uint8_t *eth(uint8_t *f, const uint8_t *dst, uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, mac, 6);
	put16(f + 12, type);
	return f + 14;
}

static void send_arp(uint16_t op, const uint8_t *dst_mac, const uint8_t *tha, const uint8_t *tpa)
{
	static uint8_t f[64];
	static const uint8_t bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	memset(f, 0, sizeof(f));
	uint8_t *a = eth(f, dst_mac ? dst_mac : bcast, ETH_ARP);
	put16(a, 1);
	put16(a + 2, ETH_IP);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, op);
	memcpy(a + 8, mac, 6);
	memcpy(a + 14, guest_ip, 4);
	memcpy(a + 18, tha, 6);
	memcpy(a + 24, tpa, 4);
	send_frame(f, 14 + 28);
}

/* An IPv4 packet to the host around `payload`, whose checksum field (at
 * csum_off, for ICMP or UDP) is filled in here. */
static void send_ip(uint8_t proto, const uint8_t *payload, uint16_t len, uint16_t csum_off)
{
	static uint8_t f[1514];
	uint8_t *ip = eth(f, host_mac, ETH_IP), *l4 = ip + 20;
	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, (uint16_t)(20 + len));
	put16(ip + 4, (uint16_t)ipid++);
	put16(ip + 6, 0x4000);		/* don't fragment */
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, guest_ip, 4);
	memcpy(ip + 16, host_ip, 4);
	put16(ip + 10, sum_fold(sum_add(0, ip, 20)));
	memcpy(l4, payload, len);
	put16(l4 + csum_off, 0);
	uint32_t s = proto == 17 ? pseudo(guest_ip, host_ip, 17, len) : 0;
	uint16_t c = sum_fold(sum_add(s, l4, len));
	put16(l4 + csum_off, proto == 17 && !c ? 0xffff : c);
	send_frame(f, 14 + 20 + len);
}

static void send_ping(uint16_t seq)
{
	static uint8_t p[8 + sizeof(want_icmp)];
	size_t n = icmp_len;
	p[0] = 8;
	p[1] = 0;
	put16(p + 4, ICMP_ID);
	put16(p + 6, seq);
	memcpy(p + 8, want_icmp, n);
	send_ip(1, p, (uint16_t)(8 + n), 2);
}

static void send_udp(void)
{
	static uint8_t p[8 + sizeof(want_udp)];
	size_t n = strlen(want_udp) - 5;	/* without the "ECHO " the host adds */
	put16(p, GUEST_PORT);
	put16(p + 2, host_port);
	put16(p + 4, (uint16_t)(8 + n));
	memcpy(p + 8, want_udp + 5, n);
	send_ip(17, p, (uint16_t)(8 + n), 6);
}

static void rx_arp(const uint8_t *a, uint32_t len)
{
	if (len < 28 || get16(a) != 1 || get16(a + 2) != ETH_IP || a[4] != 6 || a[5] != 4)
		return;
	uint16_t op = get16(a + 6);
	if (op == 1 && !memcmp(a + 24, guest_ip, 4)) {
		send_arp(2, a + 8, a + 8, a + 14);
		arp_answered++;
	} else if (op == 2 && !memcmp(a + 14, host_ip, 4) && !memcmp(a + 24, guest_ip, 4)) {
		memcpy(host_mac, a + 8, 6);
		have_host_mac = true;
	}
}

static void rx_ip(const uint8_t *ip, uint32_t len)
{
	if (len < 20 || (ip[0] >> 4) != 4 || memcmp(ip + 16, guest_ip, 4))
		return;
	uint32_t hl = (ip[0] & 15) * 4u, tot = get16(ip + 2);
	CHECK(hl >= 20 && tot >= hl && tot <= len, "bad IPv4 lengths: header %u total %u frame %u",
	      hl, tot, len);
	CHECK(sum_fold(sum_add(0, ip, hl)) == 0, "IPv4 header checksum wrong");
	if (memcmp(ip + 12, host_ip, 4) || (get16(ip + 6) & 0x3fff))
		return;			/* not from the host, or a fragment */
	const uint8_t *l4 = ip + hl;
	uint32_t n = tot - hl;
	if (ip[9] == 1 && n >= 8 && l4[0] == 0 && get16(l4 + 4) == ICMP_ID) {
		CHECK(sum_fold(sum_add(0, l4, n)) == 0, "ICMP checksum wrong");
		CHECK(n - 8 == icmp_len && !memcmp(l4 + 8, want_icmp, n - 8),
		      "ICMP echo reply payload differs (%u bytes)", n - 8);
		got_echo = true;
	} else if (ip[9] == 17 && n >= 8 && get16(l4 + 2) == GUEST_PORT) {
		CHECK(get16(l4 + 4) == n, "UDP length %u in a %u-byte payload", get16(l4 + 4), n);
		if (get16(l4 + 6))
			CHECK(sum_fold(sum_add(pseudo(ip + 12, ip + 16, 17, (uint16_t)n), l4, n)) == 0,
			      "UDP checksum wrong");
		CHECK(get16(l4) == host_port, "UDP reply from port %u", get16(l4));
		CHECK(n - 8 == strlen(want_udp) && !memcmp(l4 + 8, want_udp, n - 8),
		      "UDP reply payload differs (%u bytes)", n - 8);
		got_udp = true;
	}
}

static void rx_frame(const uint8_t *b, uint32_t len)
{
	/* 5.1.6.4: without GUEST_CSUM the device sets no checksum flags, and
	 * without MRG_RXBUF a packet fills one buffer. */
	CHECK(len >= HDR_LEN + 14, "received %u bytes: shorter than header + Ethernet", len);
	CHECK(!(b[0] & 3), "rx header flags 0x%x without VIRTIO_NET_F_GUEST_CSUM", b[0]);
	CHECK(b[1] == 0, "rx gso_type %u without GSO features", b[1]);
	if (!mrg)
		CHECK((b[10] | b[11] << 8) <= 1, "rx num_buffers %u without MRG_RXBUF",
		      b[10] | b[11] << 8);
	frames_in++;
	const uint8_t *f = b + HDR_LEN;
	len -= HDR_LEN;
	if (memcmp(f, mac, 6) && !(f[0] & 1))
		return;			/* not for us (the tap may flood) */
	if (get16(f + 12) == ETH_ARP)
		rx_arp(f + 14, len - 14);
	else if (get16(f + 12) == ETH_IP)
		rx_ip(f + 14, len - 14);
}

static void rx_post(unsigned p, uint8_t *buf)
{
	struct vbuf b = { buf, rx_len, true };
	int head = vq_add(rxqs[p], &b, 1);
	CHECK(head >= 0, "rx queue %u full", 2 * p);
	rx_buf[p][head] = buf;
}

/* 5.1.6.4: a frame whose first buffer (first, len bytes) says num_buffers
 * N continues in the next N-1 used buffers, already in the ring. */
static void rx_merge(unsigned p, uint8_t *first, uint32_t len)
{
	CHECK(len >= HDR_LEN, "mergeable rx: first buffer of %u bytes, no header", len);
	unsigned nb = first[10] | first[11] << 8, total = len;
	CHECK(nb >= 1 && nb <= RX_MRG_BUFS, "rx num_buffers %u with %u buffers posted", nb,
	      RX_MRG_BUFS);
	CHECK(len <= sizeof(mrg_frame), "rx frame over %u bytes", len);
	memcpy(mrg_frame, first, len);
	for (unsigned i = 1; i < nb; i++) {
		uint32_t l;
		int head = vq_get(rxqs[p], &l);
		CHECK(head >= 0, "frame of %u buffers: buffer %u is not in the used ring", nb, i + 1);
		CHECK(rx_buf[p][head], "rx queue %u: used id %d was not posted", 2 * p, head);
		CHECK(l <= rx_len, "rx used length %u > buffer %u", l, rx_len);
		CHECK(total + l <= sizeof(mrg_frame), "rx frame over %u bytes", total + l);
		uint8_t *buf = rx_buf[p][head];
		rx_buf[p][head] = NULL;
		memcpy(mrg_frame + total, buf, l);
		total += l;
		rx_post(p, buf);
	}
	mrg_bufs += nb;
	mrg_multi += nb > 1;
	if (nb > mrg_most)
		mrg_most = nb;
	rx_frame(mrg_frame, total);
}

/* One received frame from any receive queue; false when none is there. */
static bool rx_one(void)
{
	for (unsigned p = 0; p < pairs; p++) {
		uint32_t len;
		int head = vq_get(rxqs[p], &len);
		if (head < 0)
			continue;
		CHECK(rx_buf[p][head], "rx queue %u: used id %d was not posted", 2 * p, head);
		CHECK(len <= rx_len, "rx used length %u > buffer %u", len, rx_len);
		uint8_t *buf = rx_buf[p][head];
		rx_buf[p][head] = NULL;
		rx_frames[p]++;
		if (mrg)
			rx_merge(p, buf, len);
		else
			rx_frame(buf, len);
		rx_post(p, buf);
		vq_kick(rxqs[p]);
		return true;
	}
	return false;
}

/* Handle received frames until *flag is set; false on timeout. */
static bool poll_until(volatile bool *flag, uint64_t timeout_us)
{
	uint64_t end = tsc_deadline(timeout_us);
	while (!*flag) {
		if (rx_one())
			continue;
		if (rdtsc() > end)
			return false;
		cpu_relax();
	}
	return true;
}

/* Send, then wait up to 1 s for the answer; ten tries. */
static void exchange(void (*send)(void), volatile bool *flag, const char *what)
{
	for (int i = 0; i < 10; i++) {
		send();
		if (poll_until(flag, 1000000))
			return;
	}
	guest_fail("no %s from the host within 10 s (%lu frames received)", what, frames_in);
}

static void arp_request(void)
{
	static const uint8_t zero[6];
	send_arp(1, NULL, zero, host_ip);
}

static uint16_t ping_seq;
static void ping(void) { send_ping(++ping_seq); }

/* 5.1.6.5.5: enable `pairs` queue pairs through the control queue. */
static void set_pairs(struct vq *ctrl)
{
	static uint8_t cmd[2] = { CTRL_MQ, CTRL_MQ_VQ_PAIRS_SET }, ack;
	static uint16_t n;
	n = (uint16_t)pairs;
	ack = 0xee;
	struct vbuf b[3] = { { cmd, 2, false }, { &n, 2, false }, { &ack, 1, true } };
	uint32_t used = vq_exec(ctrl, b, 3);
	CHECK(used == 1 && ack == 0, "VQ_PAIRS_SET %u: ack %u, used length %u", pairs, ack, used);
}

static void configure(void)
{
	uint64_t want_pairs = cmdline_u64("expect_pairs", 0);
	uint64_t mq = want_pairs ? F_MQ | F_CTRL_VQ : 0;
	CHECK(want_pairs <= MAX_PAIRS, "expect_pairs=%lu: at most %u", want_pairs, MAX_PAIRS);
	rx_len = (uint32_t)cmdline_u64("mrg_rxbuf", 0);
	mrg = rx_len != 0;
	if (!mrg)
		rx_len = RX_BUF_LEN;
	CHECK(rx_len >= HDR_LEN && rx_len <= RX_BUF_LEN, "mrg_rxbuf=%u: %u..%u", rx_len, HDR_LEN,
	      RX_BUF_LEN);
	virtio_open(&dev, VIRTIO_ID_NET, 0,
		    F_MAC | F_STATUS | mq | (mrg ? F_MRG_RXBUF : 0) | virtio_cmdline_features());
	virtio_require(&dev, virtio_cmdline_features());
	CHECK(dev.features & F_MAC, "device offers no VIRTIO_NET_F_MAC");
	CHECK(mrg == !!(dev.features & F_MRG_RXBUF), "MRG_RXBUF %s",
	      mrg ? "not offered" : "negotiated without being asked for");
	virtio_config_read(&dev, 0, mac, 6);
	if (dev.features & F_STATUS) {
		uint16_t st;
		virtio_config_read(&dev, 6, &st, 2);
		printf("NET: link %s\n", st & 1 ? "up" : "down");
	}
	if (want_pairs) {
		uint16_t max;
		CHECK((dev.features & mq) == mq, "device offers no VIRTIO_NET_F_MQ with CTRL_VQ");
		virtio_config_read(&dev, 8, &max, 2);
		CHECK(max == want_pairs, "max_virtqueue_pairs %u, expected %lu", max, want_pairs);
		CHECK(dev.nqueues == 2 * max + 1, "%u queues for %u pairs and control", dev.nqueues,
		      max);
		pairs = max;
	}
	for (unsigned p = 0; p < pairs; p++) {
		rxqs[p] = virtio_queue(&dev, (uint16_t)(2 * p), 64);
		txqs[p] = virtio_queue(&dev, (uint16_t)(2 * p + 1), 64);
	}
	struct vq *ctrl = want_pairs ? virtio_queue(&dev, (uint16_t)(2 * pairs), 8) : NULL;
	/* 5.1.6.3: receive buffers before DRIVER_OK, so no frame is lost. */
	for (unsigned p = 0; p < pairs; p++)
		for (int i = 0; i < (mrg ? RX_MRG_BUFS : RX_BUFS) && i < rxqs[p]->size; i++)
			rx_post(p, dma_alloc(rx_len, 64));
	virtio_driver_ok(&dev);
	for (unsigned p = 0; p < pairs; p++)
		vq_kick(rxqs[p]);
	if (ctrl) {
		set_pairs(ctrl);
		printf("NET: %u queue pairs enabled\n", pairs);
	}
	printf("NET: mac %02x:%02x:%02x:%02x:%02x:%02x\n", mac[0], mac[1], mac[2], mac[3], mac[4],
	       mac[5]);
}

static void check_mac(void)
{
	char want[32];
	if (!cmdline_get("expect_mac", want, sizeof(want)))
		return;
	CHECK(strlen(want) == 17, "expect_mac=%s is not xx:xx:xx:xx:xx:xx", want);
	for (int i = 0; i < 6; i++) {
		int hi = hexval(want[3 * i]), lo = hexval(want[3 * i + 1]);
		CHECK(hi >= 0 && lo >= 0, "expect_mac=%s is not hex", want);
		CHECK(mac[i] == (hi << 4 | lo), "MAC byte %d is %02x, expected %s", i, mac[i], want);
	}
}

void guest_main(void)
{
	CHECK(parse_ip("guest_ip", guest_ip) && parse_ip("host_ip", host_ip),
	      "need guest_ip=A.B.C.D host_ip=A.B.C.D");
	host_port = (uint16_t)cmdline_u64("port", 7777);
	cmdline_get("token", token, sizeof(token));
	size_t t = strlen(token);
	memcpy(want_icmp, "vireo-icmp ", 11);
	memcpy(want_icmp + 11, token, t);
	icmp_len = (uint32_t)(11 + t);
	uint64_t plen = cmdline_u64("ping_len", 0);
	CHECK(plen <= MAX_ICMP, "ping_len=%lu: at most %u", plen, MAX_ICMP);
	for (; icmp_len < plen; icmp_len++)
		want_icmp[icmp_len] = (uint8_t)('a' + icmp_len % 26);
	memcpy(want_udp, "ECHO vireo-udp ", 15);
	memcpy(want_udp + 15, token, t + 1);

	configure();
	check_mac();

	exchange(arp_request, &have_host_mac, "ARP reply");
	printf("NET: ARP: host %u.%u.%u.%u is at %02x:%02x:%02x:%02x:%02x:%02x\n", host_ip[0],
	       host_ip[1], host_ip[2], host_ip[3], host_mac[0], host_mac[1], host_mac[2],
	       host_mac[3], host_mac[4], host_mac[5]);
	/* one ping per pair: consecutive sends go round every transmit queue */
	for (unsigned i = 0; i < pairs; i++) {
		got_echo = false;
		exchange(ping, &got_echo, "ICMP echo reply");
	}
	printf("NET: ICMP echo reply verified\n");
	exchange(send_udp, &got_udp, "UDP echo");
	printf("NET: UDP echo verified: \"%s\"\n", want_udp);

	/* Counted from the queue's setup: with EVENT_IDX the one interrupt
	 * rx is sure to get (used_event stays 0) may come with an early frame. */
	uint64_t rx_irqs = 0;
	for (unsigned p = 0; p < pairs; p++) {
		rx_irqs += vq_irqs(rxqs[p]);
		printf("NET: pair %u: %lu frames in, %lu out; MSI-X rx %lu tx %lu; doorbells rx %lu "
		       "(%lu suppressed) tx %lu (%lu suppressed)\n", p, rx_frames[p],
		       txqs[p]->completed, vq_irqs(rxqs[p]), vq_irqs(txqs[p]), rxqs[p]->kicks,
		       rxqs[p]->kicks_suppressed, txqs[p]->kicks, txqs[p]->kicks_suppressed);
		CHECK(txqs[p]->completed > 0, "transmit queue %u carried no frame", 2 * p + 1);
	}
	printf("NET: %lu frames in, %lu ARP requests answered\n", frames_in, arp_answered);
	if (mrg)
		printf("NET: mergeable: %lu frames in %lu buffers of %u bytes, %lu over several "
		       "(most %u)\n", frames_in, mrg_bufs, rx_len, mrg_multi, mrg_most);
	CHECK(rx_irqs > 0, "frames received without an rx MSI-X interrupt");
	virtio_reset(&dev);
}
