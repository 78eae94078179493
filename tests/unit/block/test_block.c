/* SPDX-License-Identifier: Apache-2.0 */
/* Unit tests of the block layer: drivers driven in-process on temp files. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "block/block.h"
#include "block/file.h"
#include "block/qcow2/qcow2.h"

struct tmp {
	char dir[64];
};

static int setup(void **state)
{
	struct tmp *t = calloc(1, sizeof(*t));
	snprintf(t->dir, sizeof(t->dir), "/tmp/vireo-ut-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct tmp *t = *state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", t->dir);
	assert_int_equal(system(cmd), 0);
	free(t);
	return 0;
}

static void path(void **state, const char *name, char *out)
{
	struct tmp *t = *state;
	snprintf(out, BLOCK_PATH_MAX, "%s/%s", t->dir, name);
}

static struct block_dev *open_img(const char *p, const char *fmt, bool rw)
{
	struct block_open_opts o = { .format = fmt, .read_write = rw };
	struct block_dev *bd = NULL;
	struct verr err = {0};
	int r = block_open(p, &o, &bd, &err);
	if (r)
		fprintf(stderr, "open %s: %s\n", p, err.msg);
	assert_int_equal(r, 0);
	return bd;
}

static void fill(uint8_t *b, size_t n, unsigned seed)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)((i * 31 + seed * 7 + (i >> 9)) & 0xff);
}

static void qcow2_roundtrip_cs(void **state, uint32_t cs, int compat, int rbits)
{
	char p[BLOCK_PATH_MAX];
	struct block_create_opts co = { .size = 8 << 20, .cluster_size = cs, .compat = compat,
					.refcount_bits = rbits };
	struct verr err = {0};
	size_t n = 300000;
	uint8_t *w = malloc(n), *r = malloc(n);
	struct block_check chk;
	struct block_dev *bd;

	path(state, "rt.qcow2", p);
	assert_int_equal(block_create("qcow2", p, &co, &err), 0);
	bd = open_img(p, "qcow2", true);
	fill(w, n, cs);
	assert_int_equal(block_write(bd, 12345, w, n, &err), 0);
	assert_int_equal(block_write(bd, (8 << 20) - 1000, w, 1000, &err), 0);
	assert_int_equal(block_write_zeroes(bd, 100000, 200000, &err), 0);
	memset(w + 100000 - 12345, 0, 200000);
	assert_int_equal(block_read(bd, 12345, r, n, &err), 0);
	assert_memory_equal(w, r, n);
	block_close(bd);
	bd = open_img(p, NULL, false);
	assert_string_equal(bd->drv->name, "qcow2");
	assert_int_equal(block_read(bd, 12345, r, n, &err), 0);
	assert_memory_equal(w, r, n);
	assert_int_equal(block_check(bd, BLOCK_FIX_NONE, &chk, &err), 0);
	assert_int_equal(chk.corruptions, 0);
	assert_int_equal(chk.leaks, 0);
	block_close(bd);
	free(w);
	free(r);
}

static void qcow2_roundtrip(void **state)
{
	qcow2_roundtrip_cs(state, 65536, 3, 16);
	qcow2_roundtrip_cs(state, 512, 3, 16);
	qcow2_roundtrip_cs(state, 4096, 2, 16);
	qcow2_roundtrip_cs(state, 2 << 20, 3, 16);
	for (int b = 1; b <= 64; b *= 2)
		qcow2_roundtrip_cs(state, 4096, 3, b);
}

static void refcount_packing(void **state)
{
	uint8_t blk[64];
	(void)state;
	for (uint32_t order = 0; order <= 6; order++) {
		struct qcow2 q = { .refcount_order = order, .refcount_bits = 1u << order };
		uint64_t n = sizeof(blk) * 8 / q.refcount_bits;
		uint64_t max = q.refcount_bits == 64 ? UINT64_MAX : (1ull << q.refcount_bits) - 1;
		memset(blk, 0, sizeof(blk));
		for (uint64_t i = 0; i < n; i++)
			qcow2_rc_set_raw(&q, blk, i, (i * 3) & max);
		for (uint64_t i = 0; i < n; i++)
			assert_int_equal(qcow2_rc_get_raw(&q, blk, i), (i * 3) & max);
	}
	/* Sub-byte entries pack from the least significant bit. */
	struct qcow2 q1 = { .refcount_order = 0, .refcount_bits = 1 };
	memset(blk, 0, sizeof(blk));
	qcow2_rc_set_raw(&q1, blk, 1, 1);
	assert_int_equal(blk[0], 2);
}

static void compression_roundtrip(void **state)
{
	uint8_t src[65536], dst[65536 * 2], out[65536];
	(void)state;
	for (int type = 0; type < 2; type++) {
		struct qcow2 q = { .cluster_size = 65536, .compression_type = (uint8_t)type,
				   .name = "x" };
		struct verr err = {0};
		memset(src, 'a', sizeof(src));
		memcpy(src + 1000, "hello", 5);
		size_t n = qcow2_compress(type, src, sizeof(src), dst, sizeof(dst));
		assert_true(n > 0 && n < 2000);
		/* Sector padding after the stream must be ignored. */
		memset(dst + n, 0xee, 512);
		assert_int_equal(qcow2_decompress(&q, dst, n + 512, out, &err), 0);
		assert_memory_equal(src, out, sizeof(src));
		memset(dst, 0x55, 100);
		assert_true(qcow2_decompress(&q, dst, n, out, &err) < 0);
	}
}

static void compressed_writes(void **state)
{
	char p[BLOCK_PATH_MAX];
	struct block_create_opts co = { .size = 4 << 20, .compression_type = "zstd" };
	struct verr err = {0};
	uint8_t *w = calloc(1, 1 << 20), *r = malloc(1 << 20);
	struct block_check chk;
	struct block_dev *bd;

	path(state, "c.qcow2", p);
	assert_int_equal(block_create("qcow2", p, &co, &err), 0);
	bd = open_img(p, "qcow2", true);
	for (int i = 0; i < (1 << 20); i += 100)
		w[i] = (uint8_t)i;
	assert_int_equal(block_write_compressed(bd, 0, w, 1 << 20, &err), 0);
	assert_int_equal(block_write(bd, 70000, "patch", 5, &err), 0);
	memcpy(w + 70000, "patch", 5);
	assert_int_equal(block_read(bd, 0, r, 1 << 20, &err), 0);
	assert_memory_equal(w, r, 1 << 20);
	assert_int_equal(block_flush(bd, &err), 0);
	assert_int_equal(block_check(bd, BLOCK_FIX_NONE, &chk, &err), 0);
	assert_int_equal(chk.corruptions, 0);
	assert_true(chk.compressed_clusters > 0);
	block_close(bd);
	free(w);
	free(r);
}

static void backing_chain_and_loop(void **state)
{
	char a[BLOCK_PATH_MAX], b[BLOCK_PATH_MAX];
	struct block_create_opts co = { .size = 1 << 20 };
	struct verr err = {0};
	struct block_dev *bd;
	uint8_t buf[512];

	path(state, "base.qcow2", a);
	path(state, "top.qcow2", b);
	assert_int_equal(block_create("qcow2", a, &co, &err), 0);
	bd = open_img(a, "qcow2", true);
	memset(buf, 0x42, sizeof(buf));
	assert_int_equal(block_write(bd, 4096, buf, sizeof(buf), &err), 0);
	block_close(bd);
	co.backing_file = "base.qcow2";
	co.backing_format = "qcow2";
	assert_int_equal(block_create("qcow2", b, &co, &err), 0);
	bd = open_img(b, "qcow2", false);
	memset(buf, 0, sizeof(buf));
	assert_int_equal(block_read(bd, 4096, buf, sizeof(buf), &err), 0);
	assert_int_equal(buf[100], 0x42);
	block_close(bd);
	/* Point base at top: a loop, refused with a message naming it. */
	bd = open_img(a, "qcow2", true);
	assert_int_equal(bd->drv->set_backing(bd, "top.qcow2", "qcow2", &err), 0);
	block_close(bd);
	struct block_open_opts o = { .format = "qcow2" };
	assert_int_equal(block_open(b, &o, &bd, &err), -ELOOP);
	assert_non_null(strstr(err.msg, "loop"));
}

static void bad_header_not_written(void **state)
{
	char p[BLOCK_PATH_MAX];
	struct block_create_opts co = { .size = 1 << 20 };
	struct block_open_opts o = { .format = "qcow2", .read_write = true };
	struct verr err = {0};
	struct block_dev *bd;
	uint8_t v[4] = { 0, 0, 0, 30 }, before[4096], after[4096];
	int fd;

	path(state, "bad.qcow2", p);
	assert_int_equal(block_create("qcow2", p, &co, &err), 0);
	fd = open(p, O_RDWR);
	assert_int_equal(pwrite(fd, v, 4, 20), 4); /* cluster_bits 30 */
	assert_int_equal(pread(fd, before, sizeof(before), 0), sizeof(before));
	assert_true(block_open(p, &o, &bd, &err) < 0);
	assert_non_null(strstr(err.msg, "cluster_bits"));
	assert_int_equal(pread(fd, after, sizeof(after), 0), sizeof(after));
	assert_memory_equal(before, after, sizeof(before));
	close(fd);
}

static void raw_status_and_zero(void **state)
{
	char p[BLOCK_PATH_MAX];
	struct block_create_opts co = { .size = 4 << 20 };
	struct verr err = {0};
	struct block_status st;
	struct block_dev *bd;
	uint8_t buf[8192];

	path(state, "r.raw", p);
	assert_int_equal(block_create("raw", p, &co, &err), 0);
	bd = open_img(p, "raw", true);
	memset(buf, 1, sizeof(buf));
	assert_int_equal(block_write(bd, 1 << 20, buf, sizeof(buf), &err), 0);
	assert_int_equal(block_status(bd, 0, bd->size, &st, &err), 0);
	assert_true(st.flags & BLOCK_STATUS_ZERO);
	assert_int_equal(st.length, 1 << 20);
	assert_int_equal(block_status(bd, 1 << 20, bd->size - (1 << 20), &st, &err), 0);
	assert_true(st.flags & BLOCK_STATUS_DATA);
	assert_int_equal(block_discard(bd, 1 << 20, 4096, &err), 0);
	assert_int_equal(block_read(bd, 1 << 20, buf, sizeof(buf), &err), 0);
	assert_int_equal(buf[0], 0);
	assert_int_equal(buf[4096], 1);
	assert_true(block_read(bd, (4 << 20) - 10, buf, 20, &err) < 0);
	block_close(bd);
}

static void snapshots(void **state)
{
	char p[BLOCK_PATH_MAX];
	struct block_create_opts co = { .size = 1 << 20 };
	struct verr err = {0};
	struct block_check chk;
	struct block_dev *bd;
	uint8_t buf[4096];

	path(state, "s.qcow2", p);
	assert_int_equal(block_create("qcow2", p, &co, &err), 0);
	bd = open_img(p, "qcow2", true);
	memset(buf, 1, sizeof(buf));
	assert_int_equal(block_write(bd, 0, buf, sizeof(buf), &err), 0);
	assert_int_equal(bd->drv->snapshot_create(bd, "one", &err), 0);
	memset(buf, 2, sizeof(buf));
	assert_int_equal(block_write(bd, 0, buf, sizeof(buf), &err), 0);
	assert_int_equal(bd->drv->snapshot_apply(bd, "one", &err), 0);
	assert_int_equal(block_read(bd, 0, buf, sizeof(buf), &err), 0);
	assert_int_equal(buf[0], 1);
	assert_int_equal(bd->drv->snapshot_delete(bd, "one", &err), 0);
	assert_int_equal(block_flush(bd, &err), 0);
	assert_int_equal(block_check(bd, BLOCK_FIX_NONE, &chk, &err), 0);
	assert_int_equal(chk.corruptions, 0);
	assert_int_equal(bd->drv->snapshot_apply(bd, "nope", &err), -ENOENT);
	block_close(bd);
}

static void count_cb(struct block_req *r, void *opaque)
{
	int *n = opaque;
	assert_int_equal(r->ret, 0);
	(*n)++;
}

static void async_queue(void **state)
{
	char p[BLOCK_PATH_MAX];
	const char *fmts[] = { "raw", "qcow2" };
	struct verr err = {0};

	for (int f = 0; f < 2; f++) {
		struct block_create_opts co = { .size = 4 << 20 };
		struct block_queue *q;
		struct block_req reqs[32];
		static uint8_t bufs[32][4096];
		struct block_dev *bd;
		int done = 0;

		path(state, f ? "q.qcow2" : "q.raw", p);
		assert_int_equal(block_create(fmts[f], p, &co, &err), 0);
		bd = open_img(p, fmts[f], true);
		assert_int_equal(block_queue_new(bd, 32, &q, &err), 0);
		assert_true(block_queue_eventfd(q) >= 0);
		for (int i = 0; i < 32; i++) {
			memset(bufs[i], i + 1, 4096);
			reqs[i] = (struct block_req){ .op = BLOCK_OP_WRITE, .offset = (uint64_t)i * 65536,
						      .buf = bufs[i], .len = 4096, .cb = count_cb,
						      .opaque = &done };
			block_submit(q, &reqs[i]);
		}
		while (done < 32)
			block_queue_poll(q, true);
		done = 0;
		for (int i = 0; i < 32; i++) {
			memset(bufs[i], 0, 4096);
			reqs[i].op = BLOCK_OP_READ;
			block_submit(q, &reqs[i]);
		}
		while (done < 32)
			block_queue_poll(q, true);
		for (int i = 0; i < 32; i++)
			assert_int_equal(bufs[i][4095], i + 1);
		block_queue_free(q);
		block_close(bd);
	}
}

static void ret_cb(struct block_req *r, void *opaque)
{
	int *ret = opaque;
	*ret = r->ret;
}

/* One request through a fresh queue: its result. */
static int queue_one_flags(struct block_dev *bd, enum block_op op, uint64_t off, void *buf,
			   size_t len, unsigned flags)
{
	struct block_queue *q;
	struct verr err = {0};
	int ret = 1;
	struct block_req r = { .op = op, .offset = off, .buf = buf, .len = len, .cb = ret_cb,
			       .opaque = &ret, .flags = flags };

	assert_int_equal(block_queue_new(bd, 4, &q, &err), 0);
	block_submit(q, &r);
	while (ret == 1)
		block_queue_poll(q, true);
	block_queue_free(q);
	return ret;
}

static int queue_one(struct block_dev *bd, enum block_op op, uint64_t off, void *buf, size_t len)
{
	return queue_one_flags(bd, op, off, buf, len, 0);
}

/* A FUA write is durable when it completes, metadata included: a process
 * that ends right after it (no flush, no close) leaves it in the image.
 * The write into a cluster just allocated (its L2 entry only in the cache)
 * could take the fast path and complete with the data alone on disk. */
static void fua_write_durable_at_once(void **state)
{
	static uint8_t a[4096] __attribute__((aligned(4096))), b[4096] __attribute__((aligned(4096)));
	struct block_create_opts co = { .size = 1 << 20 };
	struct verr err = {0};
	char p[BLOCK_PATH_MAX];
	struct block_dev *bd;
	int status = -1;
	pid_t pid;

	memset(a, 'A', sizeof(a));
	memset(b, 'B', sizeof(b));
	path(state, "fua.qcow2", p);
	assert_int_equal(block_create("qcow2", p, &co, &err), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct block_open_opts o = { .format = "qcow2", .read_write = true };

		if (block_open(p, &o, &bd, &err) ||
		    queue_one(bd, BLOCK_OP_WRITE, 0, a, sizeof(a)) ||
		    queue_one_flags(bd, BLOCK_OP_WRITE, 0, b, sizeof(b), BLOCK_REQ_FUA))
			_exit(1);
		_exit(0);                      /* as if the power went now */
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	bd = open_img(p, "qcow2", false);
	assert_int_equal(block_read(bd, 0, a, sizeof(a), &err), 0);
	assert_memory_equal(a, b, sizeof(b));
	block_close(bd);
}

/* A raw image opened by probing: guest writes may not make its first
 * sector look like qcow2 or vmdk (a planted qcow2 header could name any
 * host file as backing), nor touch part of that sector; everything else,
 * and any write when the format was given, goes through. */
static void probed_raw_guards_sector0(void **state)
{
	static uint8_t qcow[4096], vmdk[4096], zero[4096], data[4096], got[4096];
	struct block_create_opts co = { .size = 1 << 20 };
	struct verr err = {0};
	char p[BLOCK_PATH_MAX];
	struct block_dev *bd;

	memcpy(qcow, "QFI\xfb\0\0\0\3", 8);
	memcpy(vmdk, "KDMV\1\0\0\0", 8);
	fill(data, sizeof(data), 7);
	path(state, "probe.raw", p);
	assert_int_equal(block_create("raw", p, &co, &err), 0);
	bd = open_img(p, NULL, true);
	assert_string_equal(bd->drv->name, "raw");
	assert_true(bd->probed_raw);
	assert_int_equal(queue_one(bd, BLOCK_OP_WRITE, 0, qcow, 4096), -EPERM);
	assert_int_equal(queue_one(bd, BLOCK_OP_WRITE, 0, vmdk, 512), -EPERM);
	assert_int_equal(queue_one(bd, BLOCK_OP_WRITE, 0, data, 256), -EPERM);
	assert_int_equal(queue_one(bd, BLOCK_OP_WRITE, 256, data, 512), -EPERM);
	assert_int_equal(bd->probe_refusals, 4);
	assert_int_equal(queue_one(bd, BLOCK_OP_READ, 0, got, 4096), 0);
	assert_memory_equal(got, zero, 4096);
	assert_int_equal(queue_one(bd, BLOCK_OP_WRITE, 4096, qcow, 4096), 0);
	assert_int_equal(queue_one(bd, BLOCK_OP_WRITE, 0, data, 4096), 0);
	assert_int_equal(queue_one(bd, BLOCK_OP_READ, 0, got, 4096), 0);
	assert_memory_equal(got, data, 4096);
	block_close(bd);
	/* named raw, the image takes any write */
	bd = open_img(p, "raw", true);
	assert_false(bd->probed_raw);
	assert_int_equal(queue_one(bd, BLOCK_OP_WRITE, 0, qcow, 4096), 0);
	block_close(bd);
}

static void vmdk_roundtrip(void **state)
{
	const char *subs[] = { "monolithicSparse", "monolithicFlat" };
	struct verr err = {0};
	char p[BLOCK_PATH_MAX];
	uint8_t w[70000], r[70000];

	for (int s = 0; s < 2; s++) {
		struct block_create_opts co = { .size = 4 << 20, .subformat = subs[s] };
		struct block_dev *bd;
		path(state, s ? "f.vmdk" : "s.vmdk", p);
		assert_int_equal(block_create("vmdk", p, &co, &err), 0);
		bd = open_img(p, NULL, true);
		assert_string_equal(bd->drv->name, "vmdk");
		assert_int_equal(bd->size, 4 << 20);
		fill(w, sizeof(w), (unsigned)s);
		assert_int_equal(block_write(bd, 1000, w, sizeof(w), &err), 0);
		block_close(bd);
		bd = open_img(p, NULL, false);
		assert_int_equal(block_read(bd, 1000, r, sizeof(r), &err), 0);
		assert_memory_equal(w, r, sizeof(w));
		block_close(bd);
	}
}

/* A stream takes a grain in pieces (a sparse source leaves holes inside a
 * grain), in any order of grains, once each; its last grain is partial. */
static void vmdk_stream_pieces(void **state)
{
	const uint64_t size = 3 * 65536 + 1024;
	struct block_create_opts co = { .size = size, .subformat = "streamOptimized" };
	static uint8_t model[3 * 65536 + 1024], got[3 * 65536 + 1024];
	const struct { uint64_t off, len; } pieces[] = {
		{ 1000, 4000 }, { 60000, 10000 }, { 100000, 100 }, { size - 900, 900 },
		{ 2 * 65536 + 10, 5000 },
	};
	struct verr err = {0};
	char p[BLOCK_PATH_MAX];
	struct block_dev *bd;

	path(state, "st.vmdk", p);
	assert_int_equal(block_create("vmdk", p, &co, &err), 0);
	bd = open_img(p, "vmdk", true);
	memset(model, 0, sizeof(model));
	for (unsigned i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++) {
		fill(model + pieces[i].off, pieces[i].len, i + 1);
		assert_int_equal(block_write(bd, pieces[i].off, model + pieces[i].off,
					     pieces[i].len, &err), 0);
	}
	/* The grain still being gathered reads back before it is written. */
	assert_int_equal(block_read(bd, 2 * 65536, got, 8192, &err), 0);
	assert_memory_equal(got, model + 2 * 65536, 8192);
	/* Grain 1 went out when grain 3 came: it cannot be written again. */
	assert_true(block_write(bd, 65536, model, 512, &err) < 0);
	assert_int_equal(block_flush(bd, &err), 0);
	block_close(bd);
	bd = open_img(p, "vmdk", false);
	assert_int_equal(bd->size, size);
	assert_int_equal(block_read(bd, 0, got, size, &err), 0);
	assert_memory_equal(got, model, size);
	block_close(bd);
}

/* Random writes, zero writes, discards, compressed writes and snapshots on
 * a qcow2 image over a backing file, checked against a flat model. */
static void random_ops_variant(void **state, uint32_t cs, int compat, unsigned seed)
{
	char base[BLOCK_PATH_MAX], top[BLOCK_PATH_MAX];
	const uint64_t size = 2 << 20;
	struct block_create_opts co = { .size = size, .cluster_size = cs, .compat = compat };
	struct verr err = {0};
	uint8_t *model = malloc(size), *buf = malloc(size), *got = malloc(size);
	struct block_check chk;
	struct block_dev *bd;

	srand(seed);
	path(state, "base.qcow2", base);
	path(state, "top.qcow2", top);
	assert_int_equal(block_create("qcow2", base, &co, &err), 0);
	bd = open_img(base, "qcow2", true);
	fill(model, size, seed);
	assert_int_equal(block_write(bd, 0, model, size / 2, &err), 0);
	memset(model + size / 2, 0, size / 2);
	block_close(bd);
	co.backing_file = "base.qcow2";
	co.backing_format = "qcow2";
	assert_int_equal(block_create("qcow2", top, &co, &err), 0);
	bd = open_img(top, "qcow2", true);
	for (int i = 0; i < 600; i++) {
		uint64_t off = (uint64_t)rand() % size, len = 1 + (uint64_t)rand() % (3 * cs);
		int op = rand() % 10;
		if (off + len > size)
			len = size - off;
		if (op < 5) {
			for (uint64_t k = 0; k < len; k++)
				buf[k] = (uint8_t)rand();
			assert_int_equal(block_write(bd, off, buf, len, &err), 0);
			memcpy(model + off, buf, len);
		} else if (op < 7) {
			assert_int_equal(block_write_zeroes(bd, off, len, &err), 0);
			memset(model + off, 0, len);
		} else if (op < 8) {
			off -= off % cs;
			len = cs;
			if (off + len > size)
				continue;
			memset(buf, (uint8_t)i, len);
			assert_int_equal(block_write_compressed(bd, off, buf, len, &err), 0);
			memcpy(model + off, buf, len);
		} else if (op < 9) {
			/* Discarded data reads from below: mirror it from the base. */
			struct block_dev *b = open_img(base, "qcow2", false);
			off -= off % cs;
			len = len < cs ? cs : len - len % cs;
			if (off + len > size)
				len = (size - off) - (size - off) % cs;
			assert_int_equal(block_discard(bd, off, len, &err), 0);
			assert_int_equal(block_read(b, off, model + off, len, &err), 0);
			block_close(b);
		} else if (i % 50 == 9) {
			char name[16];
			snprintf(name, sizeof(name), "s%d", i);
			if (compat == 3)
				assert_int_equal(bd->drv->snapshot_create(bd, name, &err), 0);
		}
		if (i % 97 == 0) {
			assert_int_equal(block_read(bd, 0, got, size, &err), 0);
			assert_memory_equal(model, got, size);
		}
	}
	assert_int_equal(block_flush(bd, &err), 0);
	assert_int_equal(block_read(bd, 0, got, size, &err), 0);
	assert_memory_equal(model, got, size);
	block_close(bd);
	bd = open_img(top, "qcow2", false);
	assert_int_equal(block_read(bd, 0, got, size, &err), 0);
	assert_memory_equal(model, got, size);
	assert_int_equal(block_check(bd, BLOCK_FIX_NONE, &chk, &err), 0);
	assert_int_equal(chk.corruptions, 0);
	assert_int_equal(chk.leaks, 0);
	block_close(bd);
	free(model);
	free(buf);
	free(got);
}

static void random_ops(void **state)
{
	random_ops_variant(state, 65536, 3, 1);
	random_ops_variant(state, 512, 3, 2);
	random_ops_variant(state, 4096, 2, 3);
	random_ops_variant(state, 2 << 20, 3, 4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(qcow2_roundtrip, setup, teardown),
		cmocka_unit_test(refcount_packing),
		cmocka_unit_test(compression_roundtrip),
		cmocka_unit_test_setup_teardown(compressed_writes, setup, teardown),
		cmocka_unit_test_setup_teardown(backing_chain_and_loop, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_header_not_written, setup, teardown),
		cmocka_unit_test_setup_teardown(raw_status_and_zero, setup, teardown),
		cmocka_unit_test_setup_teardown(snapshots, setup, teardown),
		cmocka_unit_test_setup_teardown(async_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(probed_raw_guards_sector0, setup, teardown),
		cmocka_unit_test_setup_teardown(fua_write_durable_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(vmdk_roundtrip, setup, teardown),
		cmocka_unit_test_setup_teardown(vmdk_stream_pieces, setup, teardown),
		cmocka_unit_test_setup_teardown(random_ops, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
