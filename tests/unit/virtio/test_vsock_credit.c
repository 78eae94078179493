/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-vsock against a driver written here: rings in a memory buffer,
 * served by the device's I/O thread, with real Unix sockets on the host
 * side.  Checks the credit arithmetic for any guest buf_alloc and that a
 * guest SHUTDOWN never loses data the host socket has not taken yet. */
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

#define MEM_GPA 0x100000ull
#define MEM_SIZE (4ull << 20)
#define NUM 16
#define RING(q) (MEM_GPA + 0x4000ull * (q))     /* desc, +0x1000 avail, +0x2000 used */
#define RXBUF (MEM_GPA + 0x10000)
#define RXLEN (VIRTIO_VSOCK_HDR_SIZE + 4096)
#define TXBUF (MEM_GPA + 0x40000)
#define TXSLOT 0x11000u
#define F_WRITE 2
#define Q_RX 0
#define Q_TX 1
#define GUEST_CID 3
#define OP_REQUEST 1
#define OP_RESPONSE 2
#define OP_RST 3
#define OP_SHUTDOWN 4
#define OP_RW 5
#define OP_CREDIT_UPDATE 6

struct pkt {
	uint64_t src_cid, dst_cid;
	uint32_t src_port, dst_port;
	uint32_t len;
	uint16_t type, op;
	uint32_t flags, buf_alloc, fwd_cnt;
} __attribute__((packed));

struct fix {
	char dir[64], path[96];
	struct virtio_dev *d;
	uint8_t *mem;
	uint16_t avail[2], used_seen[2];
	unsigned tx_n;
	struct verr err;
};

static void *xlate(void *ctx, uint64_t gpa, uint64_t len)
{
	struct fix *f = ctx;

	if (gpa < MEM_GPA || gpa - MEM_GPA > MEM_SIZE || len > MEM_SIZE - (gpa - MEM_GPA))
		return NULL;
	return f->mem + (gpa - MEM_GPA);
}

static uint8_t *at(struct fix *f, uint64_t gpa)
{
	return f->mem + (gpa - MEM_GPA);
}

static void on_notify(void *opaque, unsigned q)
{
}

/* One-descriptor chain at `head` of queue q. */
static void post(struct fix *f, unsigned q, uint16_t head, uint64_t addr, uint32_t len,
		 uint16_t flags)
{
	uint8_t *d = at(f, RING(q)) + 16 * head;
	uint16_t zero = 0, idx = f->avail[q];

	memcpy(d, &addr, 8);
	memcpy(d + 8, &len, 4);
	memcpy(d + 12, &flags, 2);
	memcpy(d + 14, &zero, 2);
	memcpy(at(f, RING(q) + 0x1000 + 4 + 2 * (idx % NUM)), &head, 2);
	f->avail[q] = (uint16_t)(idx + 1);
	__atomic_store_n((uint16_t *)at(f, RING(q) + 0x1000 + 2), f->avail[q], __ATOMIC_RELEASE);
	virtio_dev_kick(f->d, q);
}

/* Next used element of q within timeout_ms: its id and length. */
static bool used_next(struct fix *f, unsigned q, int timeout_ms, uint32_t *id, uint32_t *len)
{
	uint16_t *idx = (uint16_t *)at(f, RING(q) + 0x2000 + 2);
	uint64_t e = RING(q) + 0x2000 + 4 + 8ull * (f->used_seen[q] % NUM);

	for (int i = 0; __atomic_load_n(idx, __ATOMIC_ACQUIRE) == f->used_seen[q]; i++) {
		if (i >= timeout_ms)
			return false;
		usleep(1000);
	}
	memcpy(id, at(f, e), 4);
	memcpy(len, at(f, e + 4), 4);
	f->used_seen[q]++;
	return true;
}

static struct pkt hdr(uint16_t op, uint32_t sport, uint32_t dport, uint32_t len,
		      uint32_t buf_alloc, uint32_t fwd_cnt)
{
	return (struct pkt){ .src_cid = GUEST_CID, .dst_cid = 2, .src_port = sport,
			     .dst_port = dport, .len = len, .type = 1, .op = op,
			     .buf_alloc = buf_alloc, .fwd_cnt = fwd_cnt };
}

/* Guest to device: header + payload in one buffer; waits for its use. */
static void tx(struct fix *f, struct pkt h, const void *data)
{
	uint16_t head = (uint16_t)(f->tx_n++ % NUM);
	uint64_t buf = TXBUF + (uint64_t)head * TXSLOT;
	uint32_t id, len;

	assert_true(h.len <= TXSLOT - sizeof(h));
	memcpy(at(f, buf), &h, sizeof(h));
	if (h.len)
		memcpy(at(f, buf + sizeof(h)), data, h.len);
	post(f, Q_TX, head, buf, (uint32_t)sizeof(h) + h.len, 0);
	assert_true(used_next(f, Q_TX, 5000, &id, &len));
	assert_int_equal(id, head);
}

/* Device to guest: the next packet (payload into data, up to 4096). */
static bool rx(struct fix *f, struct pkt *h, uint8_t *data, int timeout_ms)
{
	uint32_t id, len;

	if (!used_next(f, Q_RX, timeout_ms, &id, &len))
		return false;
	assert_true(id < NUM && len >= sizeof(*h) && len <= RXLEN);
	memcpy(h, at(f, RXBUF + (uint64_t)id * RXLEN), sizeof(*h));
	assert_int_equal(h->len, len - sizeof(*h));
	if (data)
		memcpy(data, at(f, RXBUF + (uint64_t)id * RXLEN + sizeof(*h)), h->len);
	post(f, Q_RX, (uint16_t)id, RXBUF + (uint64_t)id * RXLEN, RXLEN, F_WRITE);
	return true;
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct virtq_mem mem = { .gpa_to_hva = xlate, .ctx = f };

	f->mem = calloc(1, MEM_SIZE);
	snprintf(f->dir, sizeof(f->dir), "/tmp/vireo-vsock-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/v.sock", f->dir);
	assert_int_equal(virtio_vsock_create(GUEST_CID, f->path, &f->d, &f->err), 0);
	assert_int_equal(virtio_dev_activate(f->d, virtio_dev_features(f->d), &mem, NULL, NULL,
					     &f->err), 0);
	for (unsigned q = 0; q < 3; q++) {
		struct virtio_queue_setup s = { .size = NUM, .desc = RING(q),
						.avail = RING(q) + 0x1000, .used = RING(q) + 0x2000,
						.kick_fd = -1, .notify = on_notify };

		assert_int_equal(virtio_dev_queue_start(f->d, q, &s, &f->err), 0);
	}
	for (uint16_t i = 0; i < NUM; i++)
		post(f, Q_RX, i, RXBUF + (uint64_t)i * RXLEN, RXLEN, F_WRITE);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;
	char p[128];

	virtio_dev_destroy(f->d);
	for (int port = 5000; port < 5010; port++) {
		snprintf(p, sizeof(p), "%s_%d", f->path, port);
		unlink(p);
	}
	rmdir(f->dir);
	free(f->mem);
	free(f);
	return 0;
}

static int host_listen(struct fix *f, int port)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s_%d", f->path, port);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 4), 0);
	return fd;
}

/* The guest connects from `sport` to host port `port`; the host accepts. */
static int guest_connect(struct fix *f, int lfd, uint32_t sport, int port, uint32_t buf_alloc)
{
	struct pkt h;
	int c;

	tx(f, hdr(OP_REQUEST, sport, (uint32_t)port, 0, buf_alloc, 0), NULL);
	do                              /* skip what earlier connections still get */
		assert_true(rx(f, &h, NULL, 5000));
	while (h.dst_port != sport);
	assert_int_equal(h.op, OP_RESPONSE);
	c = accept(lfd, NULL, NULL);
	assert_true(c >= 0);
	return c;
}

/* Payload bytes of RW packets until `want` arrived or none comes for
 * timeout_ms; other packets are skipped. */
static uint32_t rx_data(struct fix *f, uint8_t *out, uint32_t want, int timeout_ms)
{
	uint32_t got = 0;
	uint8_t buf[4096];
	struct pkt h;

	while (got < want && rx(f, &h, buf, timeout_ms)) {
		if (h.op != OP_RW)
			continue;
		assert_true(h.len <= want - got);
		memcpy(out + got, buf, h.len);
		got += h.len;
	}
	return got;
}

/* Guest buffers above 16 MiB, up to 2^32 - 1, are valid and get data. */
static void test_big_guest_buffer(void **state)
{
	struct fix *f = *state;
	static const uint32_t sizes[] = { 64u << 20, 0xffffffffu, 0x80000000u };
	uint8_t sent[3000], got[3000];
	int lfd = host_listen(f, 5000);

	for (unsigned i = 0; i < sizeof(sent); i++)
		sent[i] = (uint8_t)(i * 31 + 7);
	for (unsigned k = 0; k < 3; k++) {
		int c = guest_connect(f, lfd, 1000 + k, 5000, sizes[k]);

		assert_int_equal(write(c, sent, sizeof(sent)), (ssize_t)sizeof(sent));
		memset(got, 0, sizeof(got));
		assert_int_equal(rx_data(f, got, sizeof(got), 5000), sizeof(got));
		assert_memory_equal(got, sent, sizeof(sent));
		close(c);
	}
	close(lfd);
	assert_false(virtio_dev_needs_reset(f->d));
}

/* A small guest buffer is honoured, and a CREDIT_UPDATE opens it again;
 * the counters may wrap (fwd_cnt near 2^32 is just a number). */
static void test_small_guest_buffer(void **state)
{
	struct fix *f = *state;
	uint8_t sent[3000], got[3000];
	int lfd = host_listen(f, 5001), c;

	for (unsigned i = 0; i < sizeof(sent); i++)
		sent[i] = (uint8_t)(i * 7 + 1);
	c = guest_connect(f, lfd, 2000, 5001, 1000);
	assert_int_equal(write(c, sent, sizeof(sent)), (ssize_t)sizeof(sent));
	assert_int_equal(rx_data(f, got, 3000, 300), 1000);
	tx(f, hdr(OP_CREDIT_UPDATE, 2000, 5001, 0, 1000, 1000), NULL);
	assert_int_equal(rx_data(f, got + 1000, 2000, 300), 1000);
	tx(f, hdr(OP_CREDIT_UPDATE, 2000, 5001, 0, 4096, 2000), NULL);
	assert_int_equal(rx_data(f, got + 2000, 1000, 1000), 1000);
	assert_memory_equal(got, sent, sizeof(sent));
	close(c);
	close(lfd);
}

/* Guest sends `total` bytes in packets of 60 KiB; the host reads nothing
 * yet, so part of it waits in the device when the SHUTDOWN comes. */
static uint8_t *send_bulk(struct fix *f, uint32_t sport, int port, uint32_t total)
{
	uint8_t *p = malloc(total);

	for (uint32_t i = 0; i < total; i++)
		p[i] = (uint8_t)(i ^ (i >> 9));
	for (uint32_t off = 0; off < total; off += 60 * 1024) {
		uint32_t n = total - off < 60 * 1024 ? total - off : 60 * 1024;

		tx(f, hdr(OP_RW, sport, (uint32_t)port, n, 65536, 0), p + off);
	}
	return p;
}

/* Read to EOF, slowly at first. */
static uint32_t host_read_all(int c, uint8_t *out, uint32_t max)
{
	uint32_t got = 0;
	ssize_t n;

	usleep(100000);
	while (got < max && (n = read(c, out + got, max - got < 8192 ? max - got : 8192)) > 0)
		got += (uint32_t)n;
	return got;
}

static void test_shutdown_both_flushes(void **state)
{
	struct fix *f = *state;
	uint32_t total = 240 * 1024;
	uint8_t *got = malloc(total + 1);
	int lfd = host_listen(f, 5002), c = guest_connect(f, lfd, 3000, 5002, 65536);
	uint8_t *sent = send_bulk(f, 3000, 5002, total);
	struct pkt h;
	bool rst = false;

	h = hdr(OP_SHUTDOWN, 3000, 5002, 0, 65536, 0);
	h.flags = 3;                    /* receive and send: the connection ends */
	tx(f, h, NULL);
	assert_int_equal(host_read_all(c, got, total + 1), total);
	assert_memory_equal(got, sent, total);
	/* The device's answer to a full shutdown, once everything is out. */
	while (!rst && rx(f, &h, NULL, 2000))
		rst = h.op == OP_RST && h.dst_port == 3000;
	assert_true(rst);
	free(sent);
	free(got);
	close(c);
	close(lfd);
}

static void test_shutdown_send_flushes(void **state)
{
	struct fix *f = *state;
	uint32_t total = 240 * 1024;
	uint8_t *got = malloc(total + 1), back[3];
	int lfd = host_listen(f, 5003), c = guest_connect(f, lfd, 4000, 5003, 65536);
	uint8_t *sent = send_bulk(f, 4000, 5003, total);
	struct pkt h;

	h = hdr(OP_SHUTDOWN, 4000, 5003, 0, 65536, 0);
	h.flags = 2;                    /* VIRTIO_VSOCK_SHUTDOWN_F_SEND */
	tx(f, h, NULL);
	assert_int_equal(host_read_all(c, got, total + 1), total);
	assert_memory_equal(got, sent, total);
	/* Half closed: the host can still answer. */
	assert_int_equal(write(c, "bye", 3), 3);
	assert_int_equal(rx_data(f, back, 3, 2000), 3);
	assert_memory_equal(back, "bye", 3);
	free(sent);
	free(got);
	close(c);
	close(lfd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_big_guest_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_small_guest_buffer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_both_flushes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_send_flushes, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
