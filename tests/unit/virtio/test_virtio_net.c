/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-net on a real tap, in a network namespace of this process's own
 * (so nothing on the host sees it and IPv6 chatter is off). Frames reach
 * the tap through a packet socket bound to it and come out of the guest's
 * receive buffers; transmitted frames come back on the packet socket.
 * Rings in a memory buffer (ring_fixture.h), served by the device's I/O
 * thread. Needs root (CAP_NET_ADMIN) and /dev/net/tun; without them every
 * test reports SKIPPED.
 */
#include <errno.h>
#include <fcntl.h>
#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "virtio/net.h"

#include "ring_fixture.h"

#define ETH_TYPE 0x88b5             /* IEEE local experimental */
#define HDR VIRTIO_NET_HDR_SIZE
#define F_TSO ((1ull << VIRTIO_NET_F_GUEST_TSO4) | (1ull << VIRTIO_NET_F_GUEST_TSO6) | \
	       (1ull << VIRTIO_NET_F_GUEST_ECN) | (1ull << VIRTIO_NET_F_GUEST_CSUM))
#define F_MRG (1ull << VIRTIO_NET_F_MRG_RXBUF)

static const char *no_tap;          /* why the tests cannot run here */

struct fix {
	struct ring_fix r;
	int pkt;                    /* AF_PACKET socket on the tap */
	int ifindex;
	char tap[IFNAMSIZ];         /* a new name each time: a failed test's tap stays */
	uint16_t avail[5];          /* avail->idx the test has published, per queue */
};

static void set_mtu(struct fix *f, int mtu)
{
	struct ifreq ifr = { .ifr_mtu = mtu };
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(s >= 0);
	strcpy(ifr.ifr_name, f->tap);
	assert_int_equal(ioctl(s, SIOCSIFMTU, &ifr), 0);
	close(s);
}

/* The device on a fresh tap (multi-queue with pairs > 1), activated with
 * the offered features minus `without`, the tap up at MTU 1500. */
static struct fix *fix_new_pairs(uint64_t without, unsigned pairs)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct virtq_mem mem = { .gpa_to_hva = ring_xlate, .ctx = &f->r };
	struct virtio_net_opts o = { .tap = f->tap, .mac = { 0x52, 0x54, 0, 1, 2, 3 },
				     .queue_pairs = pairs };
	static unsigned taps;
	struct ifreq ifr = { 0 };
	struct sockaddr_ll sll = { .sll_family = AF_PACKET, .sll_protocol = htons(ETH_P_ALL) };
	int s;

	if (no_tap)
		skip();
	snprintf(f->tap, sizeof(f->tap), "vnt%u", taps++);
	f->r.mem = calloc(1, MEM_SIZE);
	assert_int_equal(virtio_net_create(&o, &f->r.d, &f->r.err), 0);
	assert_int_equal(virtio_dev_activate(f->r.d, virtio_dev_features(f->r.d) & ~without, &mem,
					     NULL, NULL, &f->r.err), 0);
	s = socket(AF_INET, SOCK_DGRAM, 0);
	assert_true(s >= 0);
	strcpy(ifr.ifr_name, f->tap);
	assert_int_equal(ioctl(s, SIOCGIFFLAGS, &ifr), 0);
	ifr.ifr_flags |= IFF_UP;
	assert_int_equal(ioctl(s, SIOCSIFFLAGS, &ifr), 0);
	close(s);
	f->ifindex = (int)if_nametoindex(f->tap);
	assert_true(f->ifindex > 0);
	f->pkt = socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL));
	assert_true(f->pkt >= 0);
	sll.sll_ifindex = f->ifindex;
	assert_int_equal(bind(f->pkt, (struct sockaddr *)&sll, sizeof(sll)), 0);
	return f;
}

static struct fix *fix_new(uint64_t without)
{
	return fix_new_pairs(without, 1);
}

static void fix_free(struct fix *f)
{
	virtio_dev_destroy(f->r.d);    /* closes the tap: the interface goes */
	close(f->pkt);
	free(f->r.mem);
	free(f);
}

/* Publish avail entries for descriptors first..first+n-1 (mod QSIZE), each a
 * single buffer of len bytes at BUF(q, i), device-writable unless tx. */
static void post(struct fix *f, unsigned q, unsigned first, unsigned n, uint32_t len, bool tx)
{
	uint64_t desc = RING(q), avail = RING(q) + 0x1000;

	for (unsigned k = 0; k < n; k++) {
		uint16_t i = (uint16_t)((first + k) % QSIZE), flags = tx ? 0 : F_WRITE, next = 0;
		uint64_t addr = BUF(q, i);
		uint16_t slot = (uint16_t)(f->avail[q] % QSIZE);

		memcpy(at(&f->r, desc + 16 * i), &addr, 8);
		memcpy(at(&f->r, desc + 16 * i + 8), &len, 4);
		memcpy(at(&f->r, desc + 16 * i + 12), &flags, 2);
		memcpy(at(&f->r, desc + 16 * i + 14), &next, 2);
		memcpy(at(&f->r, avail + 4 + 2 * slot), &i, 2);
		f->avail[q]++;
	}
	__atomic_store_n((uint16_t *)at(&f->r, avail + 2), f->avail[q], __ATOMIC_RELEASE);
}

static void used_entry(struct fix *f, unsigned q, unsigned n, uint32_t *head, uint32_t *len)
{
	uint64_t e = RING(q) + 0x2000 + 4 + 8 * (n % QSIZE);

	memcpy(head, at(&f->r, e), 4);
	memcpy(len, at(&f->r, e + 4), 4);
}

/* A frame of len bytes to the device's MAC, its payload a pattern from seed. */
static void frame(uint8_t *b, size_t len, uint8_t seed)
{
	static const uint8_t dst[6] = { 0x52, 0x54, 0, 1, 2, 3 }, src[6] = { 2, 0, 0, 0, 0, 9 };

	memcpy(b, dst, 6);
	memcpy(b + 6, src, 6);
	b[12] = ETH_TYPE >> 8;
	b[13] = ETH_TYPE & 0xff;
	for (size_t i = 14; i < len; i++)
		b[i] = (uint8_t)(seed + i * 7);
}

/* Send a frame into the tap as the host's network would. */
static void inject(struct fix *f, size_t len, uint8_t seed)
{
	uint8_t b[9000];
	struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_ifindex = f->ifindex,
				  .sll_halen = 6 };

	assert_true(len <= sizeof(b));
	frame(b, len, seed);
	memcpy(to.sll_addr, b, 6);
	assert_int_equal(sendto(f->pkt, b, len, 0, (struct sockaddr *)&to, sizeof(to)),
			 (ssize_t)len);
}

/* The frame spread over used entries from..from+k-1: its bytes after the
 * header, gathered; checks each buffer's used length and num_buffers. */
static size_t gather(struct fix *f, unsigned from, unsigned k, uint32_t buf_len, uint8_t *out)
{
	size_t got = 0;
	uint16_t nbuf;

	for (unsigned i = 0; i < k; i++) {
		uint32_t head, len;

		used_entry(f, 0, from + i, &head, &len);
		assert_true(head < QSIZE);
		if (i + 1 < k)
			assert_int_equal(len, buf_len);  /* only the last one is partial */
		assert_true(len <= buf_len);
		memcpy(out + got, at(&f->r, BUF(0, head)), len);
		got += len;
	}
	memcpy(&nbuf, out + 10, 2);
	assert_int_equal(nbuf, k);
	return got;
}

static void expect_frame(const uint8_t *got, size_t got_len, size_t len, uint8_t seed)
{
	uint8_t want[9000];

	assert_int_equal(got_len, HDR + len);
	frame(want, len, seed);
	assert_memory_equal(got + HDR, want, len);
}

/* Without mergeable buffers each frame takes one buffer, num_buffers 1. */
static void test_rx_one_buffer_per_frame(void **state)
{
	struct fix *f = fix_new(F_TSO | F_MRG);
	static const size_t sizes[] = { 60, 1000, 1514 };
	uint8_t got[2048];

	ring_start_queue(&f->r, 0);
	post(f, 0, 0, 4, 1600, false);
	virtio_dev_kick(f->r.d, 0);
	for (unsigned i = 0; i < 3; i++)
		inject(f, sizes[i], (uint8_t)i);
	assert_int_equal(wait_used(&f->r, 0, 3), 3);
	for (unsigned i = 0; i < 3; i++) {
		uint32_t head, len;

		used_entry(f, 0, i, &head, &len);
		assert_int_equal(head, i);
		assert_int_equal(gather(f, i, 1, 1600, got), len);
		expect_frame(got, len, sizes[i], (uint8_t)i);
	}
	assert_true(f->r.notifies[0] > 0);
	assert_false(virtio_dev_needs_reset(f->r.d));
	fix_free(f);
}

/*
 * Mergeable buffers of 256 bytes: a 1514-byte frame (1526 with the header)
 * takes 6, a 60-byte one 1, a 1000-byte one 4, in ring order: the chains the
 * device popped beyond a frame's need were given back, not lost. With only
 * 5 buffers left (1280 bytes, less than an MTU frame) a small frame still
 * comes at once (held by the device, then copied); a big one waits for
 * more buffers and then lands whole.
 */
static void test_rx_mergeable(void **state)
{
	struct fix *f = fix_new(F_TSO);
	uint8_t got[4096];
	uint32_t head, len;

	ring_start_queue(&f->r, 0);
	post(f, 0, 0, QSIZE, 256, false);
	virtio_dev_kick(f->r.d, 0);
	inject(f, 1514, 1);
	assert_int_equal(wait_used(&f->r, 0, 6), 6);
	expect_frame(got, gather(f, 0, 6, 256, got), 1514, 1);
	inject(f, 60, 2);
	assert_int_equal(wait_used(&f->r, 0, 7), 7);
	expect_frame(got, gather(f, 6, 1, 256, got), 60, 2);
	inject(f, 1000, 3);
	assert_int_equal(wait_used(&f->r, 0, 11), 11);
	expect_frame(got, gather(f, 7, 4, 256, got), 1000, 3);
	for (unsigned i = 0; i < 11; i++) {
		used_entry(f, 0, i, &head, &len);
		assert_int_equal(head, i);
	}
	inject(f, 60, 4);
	assert_int_equal(wait_used(&f->r, 0, 12), 12);
	used_entry(f, 0, 11, &head, &len);
	assert_int_equal(head, 11);
	expect_frame(got, gather(f, 11, 1, 256, got), 60, 4);
	inject(f, 1514, 5);                    /* 4 buffers left: 1024 bytes */
	usleep(200000);
	assert_int_equal(used_idx(&f->r, 0), 12);
	post(f, 0, 0, 2, 256, false);          /* buffers 0 and 1 again: 1536 bytes */
	virtio_dev_kick(f->r.d, 0);
	assert_int_equal(wait_used(&f->r, 0, 18), 18);
	expect_frame(got, gather(f, 12, 6, 256, got), 1514, 5);
	assert_false(virtio_dev_needs_reset(f->r.d));
	fix_free(f);
}

/* Buffers of 16 bytes with guest TSO (frames may take 64 KiB, far more
 * than the ring holds): small frames still arrive, over several buffers; a
 * frame the whole ring cannot hold is dropped, and the device carries on. */
static void test_rx_mergeable_tiny_buffers(void **state)
{
	struct fix *f = fix_new(0);
	uint8_t got[4096];

	ring_start_queue(&f->r, 0);
	post(f, 0, 0, QSIZE, 16, false);
	virtio_dev_kick(f->r.d, 0);
	inject(f, 60, 1);                      /* 72 bytes: 5 buffers */
	assert_int_equal(wait_used(&f->r, 0, 5), 5);
	expect_frame(got, gather(f, 0, 5, 16, got), 60, 1);
	post(f, 0, 0, 5, 16, false);           /* the ring full again: 256 bytes */
	inject(f, 1000, 2);
	inject(f, 100, 3);                     /* 112 bytes: 7 buffers */
	assert_int_equal(wait_used(&f->r, 0, 12), 12);
	expect_frame(got, gather(f, 5, 7, 16, got), 100, 3);
	assert_false(virtio_dev_needs_reset(f->r.d));
	fix_free(f);
}

/* The tap's MTU grows behind the device's back: a frame longer than the
 * buffers would arrive cut, so it is dropped, and the next one is whole. */
static void test_rx_cut_frame_dropped(void **state)
{
	for (int mrg = 0; mrg < 2; mrg++) {
		struct fix *f = fix_new(F_TSO | (mrg ? 0 : F_MRG));
		uint32_t blen = mrg ? 256 : 1530;  /* 1530: MTU 1500 + 18 + header */
		uint8_t got[4096];
		uint32_t head, len;

		ring_start_queue(&f->r, 0);
		post(f, 0, 0, QSIZE, blen, false);
		virtio_dev_kick(f->r.d, 0);
		set_mtu(f, 4000);
		inject(f, 3000, 5);
		inject(f, 100, 6);
		assert_int_equal(wait_used(&f->r, 0, 1), 1);
		usleep(100000);
		assert_int_equal(used_idx(&f->r, 0), 1);
		used_entry(f, 0, 0, &head, &len);
		assert_int_equal(head, 0);
		expect_frame(got, gather(f, 0, 1, blen, got), 100, 6);
		if (mrg) {
			/* 15 buffers (3840 bytes) cannot hold an MTU-4000 frame, but
			 * this 3000-byte one fits them: it is held, then copied. */
			inject(f, 3000, 7);
			assert_int_equal(wait_used(&f->r, 0, 13), 13);
			expect_frame(got, gather(f, 1, 12, blen, got), 3000, 7);
		}
		assert_false(virtio_dev_needs_reset(f->r.d));
		fix_free(f);
	}
}

/* Header + frame from the guest reach the tap's network side unchanged. */
static void test_tx_reaches_tap(void **state)
{
	struct fix *f = fix_new(0);
	uint8_t want[1514], got[2048];
	struct pollfd p = { f->pkt, POLLIN, 0 };
	uint32_t head, len;
	ssize_t n;

	memset(at(&f->r, BUF(1, 0)), 0, HDR);
	frame(want, sizeof(want), 9);
	memcpy(at(&f->r, BUF(1, 0)) + HDR, want, sizeof(want));
	post(f, 1, 0, 1, HDR + sizeof(want), true);
	ring_start_queue(&f->r, 1);
	assert_int_equal(wait_used(&f->r, 1, 1), 1);
	used_entry(f, 1, 0, &head, &len);
	assert_int_equal(len, 0);
	/* the packet socket also sees its own injections: none were made */
	assert_int_equal(poll(&p, 1, 3000), 1);
	n = recv(f->pkt, got, sizeof(got), 0);
	assert_int_equal(n, sizeof(want));
	assert_memory_equal(got, want, sizeof(want));
	fix_free(f);
}

/* A receive chain the device may not write, or a mergeable buffer smaller
 * than the header: the device needs reset, and says so once. */
static void test_rx_malformed_chain(void **state)
{
	for (int mrg = 0; mrg < 2; mrg++) {
		struct fix *f = fix_new(F_TSO | (mrg ? 0 : F_MRG));

		ring_start_queue(&f->r, 0);
		if (mrg)
			post(f, 0, 0, 1, HDR - 1, false);
		else
			post(f, 0, 0, 1, 1600, true);
		virtio_dev_kick(f->r.d, 0);
		inject(f, 60, 1);
		for (int i = 0; i < 3000 && !virtio_dev_needs_reset(f->r.d); i++)
			usleep(1000);
		assert_true(virtio_dev_needs_reset(f->r.d));
		assert_int_equal(used_idx(&f->r, 0), 0);
		fix_free(f);
	}
}

/* A UDP/IPv4 frame to the device from source port sport: a flow of its own
 * for the tap's queue selection. */
static void inject_flow(struct fix *f, uint16_t sport)
{
	uint8_t b[60] = { 0 };
	struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_ifindex = f->ifindex,
				  .sll_halen = 6 };
	static const uint8_t ip[20] = { 0x45, 0, 0, 46, 0, 0, 0x40, 0, 64, 17, 0, 0,
					10, 0, 0, 2, 10, 0, 0, 1 };

	frame(b, sizeof(b), 0);
	b[12] = 0x08;
	b[13] = 0x00;
	memcpy(b + 14, ip, sizeof(ip));
	b[34] = (uint8_t)(sport >> 8);
	b[35] = (uint8_t)sport;
	b[37] = 9;
	b[39] = 26;
	memcpy(to.sll_addr, b, 6);
	assert_int_equal(sendto(f->pkt, b, sizeof(b), 0, (struct sockaddr *)&to, sizeof(to)), 60);
}

/* VQ_PAIRS_SET n on the control queue (4 with two pairs); the ack. */
static uint8_t pairs_set(struct fix *f, uint16_t pairs)
{
	uint64_t desc = RING(4), avail = RING(4) + 0x1000, buf = BUF(4, 0);
	const uint8_t cmd[4] = { 4, 0, (uint8_t)pairs, (uint8_t)(pairs >> 8) };
	const struct { uint64_t addr; uint32_t len; uint16_t flags, next; } d[3] = {
		{ buf, 2, 1, 1 }, { buf + 2, 2, 1, 2 }, { buf + 64, 1, F_WRITE, 0 } };
	uint16_t slot = f->avail[4] % QSIZE, head = 0;

	memcpy(at(&f->r, buf), cmd, 4);
	at(&f->r, buf + 64)[0] = 0xee;
	memcpy(at(&f->r, desc), d, sizeof(d));
	memcpy(at(&f->r, avail + 4 + 2 * slot), &head, 2);
	f->avail[4]++;
	__atomic_store_n((uint16_t *)at(&f->r, avail + 2), f->avail[4], __ATOMIC_RELEASE);
	virtio_dev_kick(f->r.d, 4);
	assert_int_equal(wait_used(&f->r, 4, f->avail[4]), f->avail[4]);
	return at(&f->r, buf + 64)[0];
}

/* Two queue pairs with our control queue: until the driver enables the
 * second pair, the tap's flows all reach the first (the second tap queue
 * is detached); after VQ_PAIRS_SET 2 they spread over both. */
static void test_mq_pairs_follow_the_driver(void **state)
{
	struct fix *f = fix_new_pairs(F_TSO | F_MRG, 2);
	uint16_t n0, n1;

	for (unsigned q = 0; q <= 4; q += 2) {
		if (q < 4)
			post(f, q, 0, QSIZE, 1600, false);
		assert_int_equal(ring_start_queue(&f->r, q), 0);
	}
	for (uint16_t i = 0; i < QSIZE; i++)
		inject_flow(f, (uint16_t)(1000 + i));
	assert_int_equal(wait_used(&f->r, 0, QSIZE), QSIZE);
	usleep(100000);
	assert_int_equal(used_idx(&f->r, 2), 0);
	assert_int_equal(pairs_set(f, 3), 1);          /* more than the device has */
	assert_int_equal(pairs_set(f, 2), 0);
	post(f, 0, 0, QSIZE, 1600, false);
	virtio_dev_kick(f->r.d, 0);
	for (uint16_t i = 0; i < QSIZE; i++)
		inject_flow(f, (uint16_t)(2000 + i));
	for (int i = 0; i < 3000; i++) {
		n0 = used_idx(&f->r, 0);
		n1 = used_idx(&f->r, 2);
		if (n0 + n1 == 2 * QSIZE)
			break;
		usleep(1000);
	}
	assert_int_equal(n0 + n1, 2 * QSIZE);
	assert_true(n1 > 0);                          /* 16 flows, none on queue 1: 2^-16 */
	assert_false(virtio_dev_needs_reset(f->r.d));
	fix_free(f);
}

/* A namespace of our own: the tap, its MTU changes and its traffic stay
 * out of the host's; no IPv6 so no router solicitations reach the guest. */
static void private_netns(void)
{
	int fd;

	if (access("/dev/net/tun", R_OK | W_OK) != 0) {
		no_tap = "/dev/net/tun is not usable";
		return;
	}
	if (unshare(CLONE_NEWNET) != 0) {
		no_tap = "cannot make a network namespace (needs root)";
		return;
	}
	fd = open("/proc/sys/net/ipv6/conf/default/disable_ipv6", O_WRONLY);
	if (fd >= 0) {
		if (write(fd, "1", 1) != 1)
			no_tap = "cannot turn IPv6 off in the test's namespace";
		close(fd);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rx_one_buffer_per_frame),
		cmocka_unit_test(test_rx_mergeable),
		cmocka_unit_test(test_rx_mergeable_tiny_buffers),
		cmocka_unit_test(test_rx_cut_frame_dropped),
		cmocka_unit_test(test_tx_reaches_tap),
		cmocka_unit_test(test_rx_malformed_chain),
		cmocka_unit_test(test_mq_pairs_follow_the_driver),
	};

	private_netns();
	if (no_tap)
		fprintf(stderr, "SKIPPED: %s\n", no_tap);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
