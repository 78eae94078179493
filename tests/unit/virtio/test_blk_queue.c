/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-blk with many requests in flight: a started queue on a ring in a
 * memory buffer, served by the device's I/O thread and block queue (raw
 * through io_uring, qcow2 allocation through the worker). Checks data,
 * statuses and used lengths, that FLUSH and multi-segment requests work,
 * and that stopping or resetting a queue drains what is in flight. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "block/block.h"
#include "virtio/blk.h"

#define MEM_GPA 0x100000ull
#define MEM_SIZE (4ull << 20)
#define DESC (MEM_GPA + 0x1000)
#define AVAIL (MEM_GPA + 0x2000)
#define USED (MEM_GPA + 0x3000)
#define IND (MEM_GPA + 0x10000)       /* 4 indirect entries per request */
#define HDR (MEM_GPA + 0x20000)
#define STATUS (MEM_GPA + 0x21000)
#define DATA (MEM_GPA + 0x100000)
#define SLOT 16384u                   /* data bytes reserved per request */
#define REQ_LEN 8192u
#define NREQ 64u
#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4
#define IMG_SIZE (8u << 20)

struct fix {
	char path[64];
	struct block_dev *bd;
	struct virtio_dev *d;
	uint8_t *mem;
	uint16_t num;                     /* queue size */
	int notifies;
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

static uint16_t load16(struct fix *f, uint64_t gpa)
{
	return __atomic_load_n((uint16_t *)at(f, gpa), __ATOMIC_ACQUIRE);
}

static void set_desc(struct fix *f, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
		     uint16_t flags)
{
	uint8_t *p = at(f, table) + 16 * i;
	uint16_t next = (uint16_t)(i + 1);

	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

static void on_notify(void *opaque, unsigned q)
{
	__atomic_add_fetch(&((struct fix *)opaque)->notifies, 1, __ATOMIC_SEQ_CST);
}

static uint8_t *data(struct fix *f, unsigned i)
{
	return at(f, DATA + (uint64_t)i * SLOT);
}

/* Post request `head`: header, nseg data segments of len/nseg bytes (the
 * second one 4 KiB further on, so they are not contiguous), status byte;
 * through an indirect table so one ring descriptor holds it. */
static void post(struct fix *f, uint16_t head, uint32_t type, uint64_t sector, unsigned nseg,
		 uint32_t len)
{
	uint64_t table = IND + (uint64_t)head * 64, hdr = HDR + 16ull * head;
	bool in = type == VIRTIO_BLK_T_IN;
	uint32_t reserved = 0;
	unsigned n = 0;
	uint16_t idx = load16(f, AVAIL + 2);

	memcpy(at(f, hdr), &type, 4);
	memcpy(at(f, hdr + 4), &reserved, 4);
	memcpy(at(f, hdr + 8), &sector, 8);
	*at(f, STATUS + head) = 0xee;
	set_desc(f, table, n++, hdr, 16, F_NEXT);
	for (unsigned s = 0; s < nseg; s++)
		set_desc(f, table, n++, DATA + (uint64_t)head * SLOT + s * (len / nseg + 4096),
			 len / nseg, F_NEXT | (in ? F_WRITE : 0));
	set_desc(f, table, n++, STATUS + head, 1, F_WRITE);
	set_desc(f, DESC, head, table, 16 * n, F_INDIRECT);
	memcpy(at(f, AVAIL + 4 + 2 * (idx % f->num)), &head, 2);
	__atomic_store_n((uint16_t *)at(f, AVAIL + 2), (uint16_t)(idx + 1), __ATOMIC_RELEASE);
}

static void fill(struct fix *f, unsigned head, unsigned nseg, uint8_t seed)
{
	for (unsigned s = 0; s < nseg; s++)
		for (uint32_t k = 0; k < REQ_LEN / nseg; k++)
			data(f, head)[s * (REQ_LEN / nseg + 4096) + k] = (uint8_t)(seed + k * 13 + s);
}

static bool check(struct fix *f, unsigned head, unsigned nseg, uint8_t seed)
{
	for (unsigned s = 0; s < nseg; s++)
		for (uint32_t k = 0; k < REQ_LEN / nseg; k++)
			if (data(f, head)[s * (REQ_LEN / nseg + 4096) + k] != (uint8_t)(seed + k * 13 + s))
				return false;
	return true;
}

static uint16_t wait_used(struct fix *f, uint16_t want)
{
	for (int i = 0; i < 10000 && (uint16_t)(load16(f, USED + 2) - want) > 0x8000; i++)
		usleep(1000);
	return load16(f, USED + 2);
}

/* Until the I/O thread has popped up to avail index `want` (peeking at
 * its state without the lock: a test-only shortcut). */
static void wait_popped(struct fix *f, uint16_t want)
{
	for (int i = 0; i < 50000 &&
			__atomic_load_n(&f->d->q[0].vq.last_avail, __ATOMIC_RELAXED) != want; i++)
		usleep(100);
}

static void start_queue(struct fix *f, uint16_t base)
{
	struct virtio_queue_setup s = { .size = f->num, .desc = DESC, .avail = AVAIL, .used = USED,
					.base = base, .kick_fd = -1, .notify = on_notify,
					.notify_opaque = f };

	assert_int_equal(virtio_dev_queue_start(f->d, 0, &s, &f->err), 0);
}

/* drop: feature bits not to negotiate (FLUSH: every write is durable,
 * so slow enough to be caught in flight). */
static struct fix *fix_new(const char *fmt, uint16_t num, uint64_t drop)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct block_create_opts co = { .size = IMG_SIZE };
	struct block_open_opts oo = { .format = fmt, .read_write = true };
	struct virtio_blk_opts bo = { .num_queues = 2 };
	struct virtq_mem mem = { .gpa_to_hva = xlate, .ctx = f };
	int fd;

	f->num = num;
	f->mem = calloc(1, MEM_SIZE);
	snprintf(f->path, sizeof(f->path), "/tmp/vireo-blkq-XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(block_create(fmt, f->path, &co, &f->err), 0);
	assert_int_equal(block_open(f->path, &oo, &f->bd, &f->err), 0);
	bo.bd = f->bd;
	assert_int_equal(virtio_blk_create(&bo, &f->d, &f->err), 0);
	assert_int_equal(virtio_dev_activate(f->d, virtio_dev_features(f->d) & ~drop, &mem, NULL,
					     NULL, &f->err), 0);
	start_queue(f, 0);
	return f;
}

static void fix_free(struct fix *f)
{
	virtio_dev_destroy(f->d);
	block_close(f->bd);
	unlink(f->path);
	free(f->mem);
	free(f);
}

/* Used entries [from, to): every head once, with len_of(head). */
static void check_used(struct fix *f, uint16_t from, uint16_t to, uint32_t len, uint8_t status)
{
	bool seen[NREQ] = { false };

	for (uint16_t i = from; i != to; i++) {
		uint32_t id, l;

		memcpy(&id, at(f, USED + 4 + 8 * (i % f->num)), 4);
		memcpy(&l, at(f, USED + 8 + 8 * (i % f->num)), 4);
		assert_true(id < NREQ);
		assert_false(seen[id]);
		seen[id] = true;
		assert_int_equal(l, len);
		assert_int_equal(*at(f, STATUS + id), status);
	}
}

static void write_all(struct fix *f, uint16_t used0, uint8_t seed, uint64_t sector0)
{
	for (unsigned i = 0; i < NREQ; i++) {
		unsigned nseg = i % 2 ? 2 : 1;

		fill(f, i, nseg, (uint8_t)(seed + i));
		post(f, (uint16_t)i, VIRTIO_BLK_T_OUT, sector0 + i * (REQ_LEN / 512), nseg, REQ_LEN);
	}
	virtio_dev_kick(f->d, 0);
	assert_int_equal(wait_used(f, (uint16_t)(used0 + NREQ)), (uint16_t)(used0 + NREQ));
	check_used(f, used0, (uint16_t)(used0 + NREQ), 1, VIRTIO_BLK_S_OK);
}

static void read_all(struct fix *f, uint16_t used0, uint8_t seed, uint64_t sector0)
{
	memset(at(f, DATA), 0, NREQ * SLOT);
	for (unsigned i = 0; i < NREQ; i++)
		post(f, (uint16_t)i, VIRTIO_BLK_T_IN, sector0 + i * (REQ_LEN / 512), i % 2 ? 2 : 1,
		     REQ_LEN);
	virtio_dev_kick(f->d, 0);
	assert_int_equal(wait_used(f, (uint16_t)(used0 + NREQ)), (uint16_t)(used0 + NREQ));
	check_used(f, used0, (uint16_t)(used0 + NREQ), REQ_LEN + 1, VIRTIO_BLK_S_OK);
	for (unsigned i = 0; i < NREQ; i++)
		assert_true(check(f, i, i % 2 ? 2 : 1, (uint8_t)(seed + i)));
}

static void many_in_flight(const char *fmt)
{
	struct fix *f = fix_new(fmt, 64, 0);

	write_all(f, 0, 1, 0);
	post(f, 0, VIRTIO_BLK_T_FLUSH, 0, 0, 0);
	virtio_dev_kick(f->d, 0);
	assert_int_equal(wait_used(f, NREQ + 1), NREQ + 1);
	assert_int_equal(*at(f, STATUS), VIRTIO_BLK_S_OK);
	read_all(f, NREQ + 1, 1, 0);
	/* Overwrite in place (qcow2: now the fast path, no allocation). */
	write_all(f, 2 * NREQ + 1, 7, 0);
	read_all(f, 3 * NREQ + 1, 7, 0);
	assert_true(__atomic_load_n(&f->notifies, __ATOMIC_SEQ_CST) > 0);
	assert_false(virtio_dev_needs_reset(f->d));
	fix_free(f);
}

static void test_many_in_flight_raw(void **state)
{
	many_in_flight("raw");
}

static void test_many_in_flight_qcow2(void **state)
{
	many_in_flight("qcow2");
}

/* Stop the queue while its requests are in flight: on return the used ring
 * must account for every chain popped, and a restart at the returned base
 * carries on. */
static void stop_drains(const char *fmt)
{
	struct fix *f = fix_new(fmt, 64, 1ull << VIRTIO_BLK_F_FLUSH);
	uint16_t base;

	for (int round = 0; round < 4; round++) {
		uint64_t sector0 = (uint64_t)round * NREQ * (REQ_LEN / 512);
		uint16_t used0 = (uint16_t)(round * NREQ * 2);

		for (unsigned i = 0; i < NREQ; i++) {
			fill(f, i, i % 2 ? 2 : 1, (uint8_t)(round + i));
			post(f, (uint16_t)i, VIRTIO_BLK_T_OUT, sector0 + i * (REQ_LEN / 512),
			     i % 2 ? 2 : 1, REQ_LEN);
		}
		virtio_dev_kick(f->d, 0);
		/* Half the rounds stop as soon as the I/O thread has popped
		 * them, the others at once, whatever it has done by then. */
		if (round % 2 == 0)
			wait_popped(f, (uint16_t)(used0 + NREQ));
		base = virtio_dev_queue_stop(f->d, 0);
		assert_int_equal(load16(f, USED + 2), base);
		for (uint16_t i = used0; i != base; i++) {
			uint32_t id;

			memcpy(&id, at(f, USED + 4 + 8 * (i % f->num)), 4);
			assert_int_equal(*at(f, STATUS + id), VIRTIO_BLK_S_OK);
		}
		/* The rest is served after the restart. */
		start_queue(f, base);
		assert_int_equal(wait_used(f, (uint16_t)(used0 + NREQ)), (uint16_t)(used0 + NREQ));
		check_used(f, used0, (uint16_t)(used0 + NREQ), 1, VIRTIO_BLK_S_OK);
		read_all(f, (uint16_t)(used0 + NREQ), (uint8_t)round, sector0);
	}
	assert_false(virtio_dev_needs_reset(f->d));
	fix_free(f);
}

static void test_stop_drains_raw(void **state)
{
	stop_drains("raw");
}

static void test_stop_drains_qcow2(void **state)
{
	stop_drains("qcow2");
}

/* A reset drains as well: afterwards nothing is in flight and the image
 * holds what the completed writes wrote. */
static void test_reset_drains(void **state)
{
	struct fix *f = fix_new("qcow2", 64, 1ull << VIRTIO_BLK_F_FLUSH);
	uint16_t used;

	for (unsigned i = 0; i < NREQ; i++) {
		fill(f, i, 1, (uint8_t)(3 * i));
		post(f, (uint16_t)i, VIRTIO_BLK_T_OUT, i * (REQ_LEN / 512), 1, REQ_LEN);
	}
	virtio_dev_kick(f->d, 0);
	wait_popped(f, NREQ);
	virtio_dev_reset(f->d);
	used = load16(f, USED + 2);
	assert_int_equal(used, f->d->q[0].vq.last_avail);
	check_used(f, 0, used, 1, VIRTIO_BLK_S_OK);
	fix_free(f);
}

/* A driver that re-offers chains still in flight (a bug, but a guest may
 * do it) meets the in-flight limit: popping pauses at the queue size and
 * resumes as completions free slots. */
static void test_limit(void **state)
{
	struct fix *f = fix_new("qcow2", 8, 1ull << VIRTIO_BLK_F_FLUSH);

	for (unsigned i = 0; i < 8; i++) {
		fill(f, i, 1, (uint8_t)i);
		post(f, (uint16_t)i, VIRTIO_BLK_T_OUT, i * 64, 1, REQ_LEN);
	}
	virtio_dev_kick(f->d, 0);
	wait_popped(f, 8);
	for (unsigned i = 0; i < 8; i++)
		post(f, (uint16_t)i, VIRTIO_BLK_T_OUT, i * 64, 1, REQ_LEN);
	virtio_dev_kick(f->d, 0);
	assert_int_equal(wait_used(f, 16), 16);
	assert_int_equal(virtio_dev_queue_stop(f->d, 0), 16);
	assert_false(virtio_dev_needs_reset(f->d));
	fix_free(f);
}

/* Requests that fail validation complete at once, in between good ones. */
static void test_bad_requests_mixed(void **state)
{
	struct fix *f = fix_new("raw", 64, 0);

	for (unsigned i = 0; i < 16; i++) {
		uint64_t sector = i % 2 ? (IMG_SIZE / 512) : i * 16;   /* odd: past the end */

		fill(f, i, 1, (uint8_t)i);
		post(f, (uint16_t)i, VIRTIO_BLK_T_OUT, sector, 1, REQ_LEN);
	}
	post(f, 16, 99, 0, 0, 0);
	virtio_dev_kick(f->d, 0);
	assert_int_equal(wait_used(f, 17), 17);
	for (unsigned i = 0; i < 16; i++)
		assert_int_equal(*at(f, STATUS + i), i % 2 ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK);
	assert_int_equal(*at(f, STATUS + 16), VIRTIO_BLK_S_UNSUPP);
	fix_free(f);
}

/* ---- requests across qcow2 clusters that lie out of order in the file ---- */

#define CLUSTER 65536u
#define BIG (DATA + (1u << 20))       /* 2 MiB of data space */

static uint8_t pattern(uint64_t off, uint8_t seed)
{
	return (uint8_t)(off * 7 + off / 4096 + seed);
}

/* One request of n segments (lens[]) laid out from BIG with 4 KiB gaps;
 * data[i] of the request is at guest offset sector*512 + i. */
static void post_segs(struct fix *f, uint16_t head, uint32_t type, uint64_t sector,
		      const uint32_t *lens, unsigned n, uint8_t seed)
{
	uint64_t table = IND + (uint64_t)head * 64, hdr = HDR + 16ull * head, gpa = BIG, off;
	bool in = type == VIRTIO_BLK_T_IN;
	uint16_t idx = load16(f, AVAIL + 2);
	unsigned k = 0;

	memcpy(at(f, hdr), &type, 4);
	memcpy(at(f, hdr + 8), &sector, 8);
	*at(f, STATUS + head) = 0xee;
	set_desc(f, table, k++, hdr, 16, F_NEXT);
	off = sector * 512;
	for (unsigned i = 0; i < n; i++) {
		for (uint32_t j = 0; j < lens[i]; j++)
			*at(f, gpa + j) = in ? 0 : pattern(off + j, seed);
		set_desc(f, table, k++, gpa, lens[i], F_NEXT | (in ? F_WRITE : 0));
		off += lens[i];
		gpa += lens[i] + 4096;
	}
	set_desc(f, table, k++, STATUS + head, 1, F_WRITE);
	set_desc(f, DESC, head, table, 16 * k, F_INDIRECT);
	memcpy(at(f, AVAIL + 4 + 2 * (idx % f->num)), &head, 2);
	__atomic_store_n((uint16_t *)at(f, AVAIL + 2), (uint16_t)(idx + 1), __ATOMIC_RELEASE);
}

static bool check_segs(struct fix *f, uint64_t sector, const uint32_t *lens, unsigned n,
		       uint8_t seed)
{
	uint64_t gpa = BIG, off = sector * 512;

	for (unsigned i = 0; i < n; i++) {
		for (uint32_t j = 0; j < lens[i]; j++)
			if (*at(f, gpa + j) != pattern(off + j, seed))
				return false;
		off += lens[i];
		gpa += lens[i] + 4096;
	}
	return true;
}

static uint16_t run_one(struct fix *f, uint16_t used, uint32_t type, uint64_t sector,
			const uint32_t *lens, unsigned n, uint8_t seed)
{
	post_segs(f, 0, type, sector, lens, n, seed);
	virtio_dev_kick(f->d, 0);
	used++;
	assert_int_equal(wait_used(f, used), used);
	assert_int_equal(*at(f, STATUS), VIRTIO_BLK_S_OK);
	return used;
}

static void test_across_clusters(void **state)
{
	static const unsigned order[] = { 5, 2, 7, 0, 3, 6, 1, 4 };
	static const uint32_t one[] = { CLUSTER };
	static const uint32_t uneven[] = { 102400, 307200, 49152 };   /* 448 KiB */
	static const uint32_t whole[] = { 458752 };
	struct fix *f = fix_new("qcow2", 64, 0);
	uint64_t sector = 16384 / 512;                      /* 16 KiB into cluster 0 */
	uint16_t used = 0;

	/* Clusters allocated out of order: guest ranges map to scattered
	 * file extents. */
	for (unsigned i = 0; i < 8; i++)
		used = run_one(f, used, VIRTIO_BLK_T_OUT, order[i] * (CLUSTER / 512), one, 1, 1);
	used = run_one(f, used, VIRTIO_BLK_T_IN, sector, uneven, 3, 0);
	assert_true(check_segs(f, sector, uneven, 3, 1));
	/* Overwrite in place (all allocated: the io_uring path, with the
	 * segments cut at extent boundaries), read back in one segment. */
	used = run_one(f, used, VIRTIO_BLK_T_OUT, sector, uneven, 3, 9);
	used = run_one(f, used, VIRTIO_BLK_T_IN, sector, whole, 1, 0);
	assert_true(check_segs(f, sector, whole, 1, 9));
	/* The clusters' untouched edges kept the first pattern. */
	used = run_one(f, used, VIRTIO_BLK_T_IN, 0, (const uint32_t[]){ 16384 }, 1, 0);
	assert_true(check_segs(f, 0, (const uint32_t[]){ 16384 }, 1, 1));
	assert_false(virtio_dev_needs_reset(f->d));
	fix_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_in_flight_raw),
		cmocka_unit_test(test_many_in_flight_qcow2),
		cmocka_unit_test(test_stop_drains_raw),
		cmocka_unit_test(test_stop_drains_qcow2),
		cmocka_unit_test(test_reset_drains),
		cmocka_unit_test(test_limit),
		cmocka_unit_test(test_bad_requests_mixed),
		cmocka_unit_test(test_across_clusters),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
