/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-vsock against rings in a memory buffer, served by the device's I/O
 * thread: the host side of Firecracker's hybrid Unix-socket convention
 * ("CONNECT <port>\n") with and without a guest driver, and the transport
 * reset event a restored device owes its driver. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "virtio/vsock.h"

#include "ring_fixture.h"

#define CID 77
#define OP_REQUEST 1
#define OP_RESPONSE 2
#define OP_RST 3

struct pkt_hdr {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

struct fix {
	struct ring_fix r;                /* device, guest memory, notify counts */
	char path[80];
};

static void start_queue(struct fix *f, unsigned q)
{
	assert_int_equal(ring_start_queue(&f->r, q), 0);
}

static struct fix *fix_new(bool driver)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct virtq_mem mem = { .gpa_to_hva = ring_xlate, .ctx = &f->r };

	f->r.mem = calloc(1, MEM_SIZE);
	snprintf(f->path, sizeof(f->path), "/tmp/vireo-vsock-%d.sock", (int)getpid());
	assert_int_equal(virtio_vsock_create(CID, f->path, &f->r.d, &f->r.err), 0);
	if (driver) {
		assert_int_equal(virtio_dev_activate(f->r.d, virtio_dev_features(f->r.d), &mem, NULL,
						     NULL, &f->r.err), 0);
		offer(&f->r, 0, 4, 4096);
		offer(&f->r, 2, 1, 8);
		for (unsigned q = 0; q < 3; q++)
			start_queue(f, q);
	}
	return f;
}

static void fix_free(struct fix *f)
{
	virtio_dev_destroy(f->r.d);
	assert_int_equal(access(f->path, F_OK), -1);     /* the socket goes with the device */
	free(f->r.mem);
	free(f);
}

static int host_connect(struct fix *f, const char *line)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(send(fd, line, strlen(line), MSG_NOSIGNAL), (ssize_t)strlen(line));
	return fd;
}

/* What the host reads within ms: bytes, 0 at EOF, -1 when nothing came. */
static ssize_t host_read(int fd, char *buf, size_t n, int ms)
{
	struct pollfd p = { fd, POLLIN, 0 };

	if (poll(&p, 1, ms) <= 0)
		return -1;
	return recv(fd, buf, n, 0);
}

/* Until a driver is there the host's request waits (the guest may still
 * be loading one); nothing is answered or closed. */
static void test_connect_waits_for_driver(void **state)
{
	struct fix *f = fix_new(false);
	char buf[32];
	int fd = host_connect(f, "CONNECT 5000\n");

	assert_int_equal(host_read(fd, buf, sizeof(buf), 300), -1);
	close(fd);
	fix_free(f);
}

/* One device-readable packet from the guest on the TX queue. */
static void guest_send(struct fix *f, const struct pkt_hdr *h, uint16_t avail_idx)
{
	uint64_t desc = RING(1), avail = RING(1) + 0x1000, addr = BUF(1, avail_idx % QSIZE);
	uint32_t len = sizeof(*h);
	uint16_t i = avail_idx % QSIZE, zero = 0;

	memcpy(at(&f->r, addr), h, sizeof(*h));
	memcpy(at(&f->r, desc + 16 * i), &addr, 8);
	memcpy(at(&f->r, desc + 16 * i + 8), &len, 4);
	memcpy(at(&f->r, desc + 16 * i + 12), &zero, 2);
	memcpy(at(&f->r, desc + 16 * i + 14), &zero, 2);
	memcpy(at(&f->r, avail + 4 + 2 * i), &i, 2);
	__atomic_store_n((uint16_t *)at(&f->r, avail + 2), (uint16_t)(avail_idx + 1), __ATOMIC_RELEASE);
	virtio_dev_kick(f->r.d, 1);
}

static void test_bad_connect_line_is_refused(void **state)
{
	struct fix *f = fix_new(true);
	char buf[32];
	int fd = host_connect(f, "HELLO 5000\n");

	assert_int_equal(host_read(fd, buf, sizeof(buf), 3000), 0);
	assert_int_equal(used_idx(&f->r, 0), 0);              /* the guest heard nothing */
	close(fd);
	fix_free(f);
}

static void test_connect_reaches_guest(void **state)
{
	struct fix *f = fix_new(true);
	struct pkt_hdr h;
	char buf[32];
	int fd = host_connect(f, "CONNECT 5000\n");
	uint32_t len;

	assert_int_equal(wait_used(&f->r, 0, 1), 1);
	memcpy(&len, at(&f->r, RING(0) + 0x2000 + 8), 4);
	assert_int_equal(len, sizeof(h));
	memcpy(&h, at(&f->r, BUF(0, 0)), sizeof(h));
	assert_int_equal(h.op, OP_REQUEST);
	assert_int_equal(h.src_cid, 2);
	assert_int_equal(h.dst_cid, CID);
	assert_int_equal(h.dst_port, 5000);
	assert_true(f->r.notifies[0] > 0);
	/* no answer from the guest yet: the host waits, the socket stays open */
	assert_int_equal(host_read(fd, buf, sizeof(buf), 200), -1);
	/* nobody listens on 5000 in the guest: it resets the connection, and
	 * the host's socket closes without "OK <port>" */
	struct pkt_hdr rst = { .src_cid = CID, .dst_cid = 2, .src_port = h.dst_port,
			       .dst_port = h.src_port, .type = 1, .op = OP_RST };
	guest_send(f, &rst, 0);
	assert_int_equal(host_read(fd, buf, sizeof(buf), 3000), 0);
	assert_int_equal(wait_used(&f->r, 1, 1), 1);
	close(fd);
	fix_free(f);
}

/* RX buffers first..first+n-1 (4 KiB each) made available after `idx`
 * earlier ones: returns the new avail index. */
static uint16_t rx_post(struct fix *f, uint16_t idx, unsigned n)
{
	uint64_t desc = RING(0), avail = RING(0) + 0x1000;

	for (unsigned k = 0; k < n; k++, idx++) {
		uint16_t i = idx % QSIZE, flags = F_WRITE, next = 0;
		uint64_t addr = BUF(0, i);
		uint32_t len = 4096;

		memcpy(at(&f->r, desc + 16 * i), &addr, 8);
		memcpy(at(&f->r, desc + 16 * i + 8), &len, 4);
		memcpy(at(&f->r, desc + 16 * i + 12), &flags, 2);
		memcpy(at(&f->r, desc + 16 * i + 14), &next, 2);
		memcpy(at(&f->r, avail + 4 + 2 * i), &i, 2);
	}
	__atomic_store_n((uint16_t *)at(&f->r, avail + 2), idx, __ATOMIC_RELEASE);
	virtio_dev_kick(f->r.d, 0);
	return idx;
}

/* A host connection the guest accepts: the i-th request on the RX queue,
 * answered on TX buffer i; returns the host's fd once "OK" came. */
static int open_conn(struct fix *f, const char *line, unsigned i)
{
	int fd = host_connect(f, line);
	struct pkt_hdr h;
	char buf[32];

	assert_int_equal(wait_used(&f->r, 0, (uint16_t)(i + 1)), i + 1);
	memcpy(&h, at(&f->r, BUF(0, i)), sizeof(h));
	assert_int_equal(h.op, OP_REQUEST);
	struct pkt_hdr resp = { .src_cid = CID, .dst_cid = 2, .src_port = h.dst_port,
				.dst_port = h.src_port, .type = 1, .op = OP_RESPONSE,
				.buf_alloc = 1 << 20 };
	guest_send(f, &resp, (uint16_t)i);
	assert_true(host_read(fd, buf, sizeof(buf), 3000) > 0);
	assert_memory_equal(buf, "OK ", 3);
	return fd;
}

/* The host gives up before the guest answered its request: the guest is
 * told with RST, and the connection's slot is freed. */
static void test_host_leaving_while_connecting_resets(void **state)
{
	struct fix *f = fix_new(true);
	int fd = host_connect(f, "CONNECT 5000\n");
	struct pkt_hdr h;

	assert_int_equal(wait_used(&f->r, 0, 1), 1);
	close(fd);
	assert_int_equal(wait_used(&f->r, 0, 2), 2);
	memcpy(&h, at(&f->r, BUF(0, 1)), sizeof(h));
	assert_int_equal(h.op, OP_RST);
	assert_int_equal(h.dst_port, 5000);
	fix_free(f);
}

/* The guest shuts its receiving side: the host's writes then fail, and no
 * data reaches the guest. */
static void test_guest_shutdown_rcv_stops_host_data(void **state)
{
	struct fix *f = fix_new(true);
	int fd = open_conn(f, "CONNECT 5000\n", 0);
	struct pkt_hdr h;
	ssize_t n = 0;

	memcpy(&h, at(&f->r, BUF(0, 0)), sizeof(h));
	struct pkt_hdr shut = { .src_cid = CID, .dst_cid = 2, .src_port = 5000,
				.dst_port = h.src_port, .type = 1, .op = 4, .flags = 1 };
	guest_send(f, &shut, 1);
	assert_int_equal(wait_used(&f->r, 1, 2), 2);
	for (int i = 0; i < 100 && n >= 0; i++) {
		n = send(fd, "data", 4, MSG_NOSIGNAL);
		if (n >= 0)
			usleep(10000);
	}
	assert_int_equal(n, -1);
	assert_int_equal(errno, EPIPE);
	usleep(200000);
	assert_int_equal(used_idx(&f->r, 0), 1);     /* no data packet for the guest */
	close(fd);
	fix_free(f);
}

/* Two host connections, the first with far more data: RX buffers go to
 * them in turn, so the second is not starved until the first runs dry. */
static void test_rx_serves_connections_in_turn(void **state)
{
	struct fix *f = fix_new(true);
	static char big[65536];
	int fd[2];
	struct pkt_hdr h;
	unsigned rw[2] = { 0, 0 };
	uint16_t idx;

	fd[0] = open_conn(f, "CONNECT 5000\n", 0);
	fd[1] = open_conn(f, "CONNECT 5001\n", 1);
	/* the two buffers left go to the first connection's data */
	assert_int_equal(send(fd[0], big, sizeof(big), MSG_NOSIGNAL), (ssize_t)sizeof(big));
	assert_int_equal(wait_used(&f->r, 0, 4), 4);
	assert_int_equal(send(fd[1], big, 1024, MSG_NOSIGNAL), 1024);
	usleep(100000);
	idx = rx_post(f, 4, 4);
	assert_int_equal(wait_used(&f->r, 0, idx), idx);
	for (uint16_t i = 4; i < idx; i++) {
		memcpy(&h, at(&f->r, BUF(0, i % QSIZE)), sizeof(h));
		if (h.op == 5)                            /* OP_RW */
			rw[h.dst_port == 5001]++;
	}
	assert_true(rw[1] >= 1);                  /* the second connection got its turn */
	assert_true(rw[0] >= 1);
	close(fd[0]);
	close(fd[1]);
	fix_free(f);
}

static uint32_t used_len(struct fix *f, unsigned q, unsigned i)
{
	uint32_t len;

	memcpy(&len, at(&f->r, RING(q) + 0x2000 + 8 + 8 * i), 4);
	return len;
}

/* virtio 1.2, 5.10.6.7: after a restore the driver gets
 * VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (id 0, 4 bytes) on the event queue. */
static void test_restored_sends_transport_reset(void **state)
{
	struct fix *f = fix_new(true);
	uint32_t id;

	memset(at(&f->r, BUF(2, 0)), 0xee, 8);
	assert_int_equal(used_idx(&f->r, 2), 0);            /* nothing before the restore */
	virtio_dev_restored(f->r.d);
	assert_int_equal(wait_used(&f->r, 2, 1), 1);
	assert_int_equal(used_len(f, 2, 0), 4);
	memcpy(&id, at(&f->r, BUF(2, 0)), 4);
	assert_int_equal(id, 0);
	assert_true(f->r.notifies[2] > 0);
	assert_int_equal(used_idx(&f->r, 0), 0);            /* no stray RX packet */
	/* exactly one event: another kick of the event queue sends nothing */
	offer(&f->r, 2, 2, 8);
	virtio_dev_kick(f->r.d, 2);
	usleep(100000);
	assert_int_equal(used_idx(&f->r, 2), 1);
	assert_false(virtio_dev_needs_reset(f->r.d));
	fix_free(f);
}

/* With no event buffer offered yet, the event waits for one. */
static void test_transport_reset_waits_for_a_buffer(void **state)
{
	struct fix *f = fix_new(true);
	uint16_t none = 0;
	uint32_t id = 0xffffffff;

	/* take back the buffer fix_new offered (the ring was not consumed) */
	memcpy(at(&f->r, RING(2) + 0x1000 + 2), &none, 2);
	virtio_dev_restored(f->r.d);
	usleep(100000);
	assert_int_equal(used_idx(&f->r, 2), 0);
	offer(&f->r, 2, 1, 8);
	virtio_dev_kick(f->r.d, 2);
	assert_int_equal(wait_used(&f->r, 2, 1), 1);
	memcpy(&id, at(&f->r, BUF(2, 0)), 4);
	assert_int_equal(id, 0);
	fix_free(f);
}

/* A device that was never running has no driver to tell. */
static void test_restored_without_driver_sends_nothing(void **state)
{
	struct fix *f = fix_new(false);

	virtio_dev_restored(f->r.d);
	usleep(50000);
	assert_int_equal(used_idx(&f->r, 2), 0);
	fix_free(f);
}

/* An event buffer too small for the event is a malformed queue. */
static void test_short_event_buffer_needs_reset(void **state)
{
	struct fix *f = fix_new(false);
	struct virtq_mem mem = { .gpa_to_hva = ring_xlate, .ctx = &f->r };

	assert_int_equal(virtio_dev_activate(f->r.d, virtio_dev_features(f->r.d), &mem, NULL, NULL,
					     &f->r.err), 0);
	offer(&f->r, 2, 1, 2);
	for (unsigned q = 0; q < 3; q++)
		start_queue(f, q);
	virtio_dev_restored(f->r.d);
	assert_true(virtio_dev_needs_reset(f->r.d));
	assert_int_equal(used_idx(&f->r, 2), 0);
	fix_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_connect_waits_for_driver),
		cmocka_unit_test(test_bad_connect_line_is_refused),
		cmocka_unit_test(test_connect_reaches_guest),
		cmocka_unit_test(test_rx_serves_connections_in_turn),
		cmocka_unit_test(test_guest_shutdown_rcv_stops_host_data),
		cmocka_unit_test(test_host_leaving_while_connecting_resets),
		cmocka_unit_test(test_restored_sends_transport_reset),
		cmocka_unit_test(test_transport_reset_waits_for_a_buffer),
		cmocka_unit_test(test_restored_without_driver_sends_nothing),
		cmocka_unit_test(test_short_event_buffer_needs_reset),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
