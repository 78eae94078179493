/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: arbitrary queue layouts and guest memory through the
 * split-queue walker and the device request handlers (virtio-blk on a
 * scratch raw image, virtio-rng). Input: a 16-byte layout header, then the
 * guest memory image (mapped at GPA 0x1000, so low addresses are holes).
 * One input in four also goes through virtio-blk's asynchronous path: a
 * started queue served by process() and the block queue, then stopped
 * (which must drain it) and the device reset.
 *
 * Build (scripts/fuzz.sh style):
 *   clang -std=c17 -D_GNU_SOURCE -DVIREO_VERSION='"fuzz"' -Isrc -g -O1 \
 *     -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
 *     -o build-fuzz/fuzz_virtq tests/fuzz/fuzz_virtq.c src/core/err.c src/core/log.c \
 *     src/core/size.c src/block/[!m]*.c src/block/qcow2/[!m]*.c src/virtio/virtq.c \
 *     src/virtio/device.c src/virtio/blk.c src/virtio/rng.c src/virtio/net.c -luring -lz -lzstd -lpthread -lm
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "block/block.h"
#include "core/log.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "virtio/rng.h"
#include "virtio/virtq.h"

#define MEM_GPA 0x1000u
#define MEM_MAX (256u * 1024)

struct fuzz_mem {
	uint8_t *buf;
	uint64_t size;
};

struct fuzz_ctx {
	struct block_dev *bd;
	struct virtio_dev *blk;
	struct virtio_dev *blk_async;  /* same image; idle outside fuzz_async */
	struct virtio_dev *rng;
	struct virtio_dev *net;
	struct virtq_chain chain;
};

static void *xlate(void *ctx, uint64_t gpa, uint64_t len)
{
	struct fuzz_mem *m = ctx;

	if (gpa < MEM_GPA || gpa - MEM_GPA > m->size || len > m->size - (gpa - MEM_GPA))
		return NULL;
	return m->buf + (gpa - MEM_GPA);
}

static void *no_mem(void *ctx, uint64_t gpa, uint64_t len)
{
	return NULL;
}

static struct fuzz_ctx *setup(void)
{
	static struct fuzz_ctx *ctx;   /* libFuzzer keeps one process: set up once */
	char path[] = "/tmp/vireo-fuzz-virtq-XXXXXX";
	struct block_create_opts co = { .size = 1 << 20 };
	struct block_open_opts oo = { .format = "raw", .read_write = true };
	struct virtq_mem none = { .gpa_to_hva = no_mem };
	struct virtio_blk_opts bo = { .num_queues = 1 };
	struct virtio_net_opts no = { 0 };
	struct verr err = { 0 };
	int fd;

	if (ctx)
		return ctx;
	ctx = calloc(1, sizeof(*ctx));
	fd = mkstemp(path);
	if (fd < 0 || block_create("raw", path, &co, &err) || block_open(path, &oo, &ctx->bd, &err))
		abort();
	close(fd);
	unlink(path);
	bo.bd = ctx->bd;
	no.tap_fd = eventfd(0, EFD_NONBLOCK);
	if (virtio_blk_create(&bo, &ctx->blk, &err) || virtio_blk_create(&bo, &ctx->blk_async, &err) ||
	    virtio_rng_create(&ctx->rng, &err) || virtio_net_create(&no, &ctx->net, &err))
		abort();
	virtio_dev_activate(ctx->blk, virtio_dev_features(ctx->blk), &none, NULL, NULL, &err);
	virtio_dev_activate(ctx->rng, virtio_dev_features(ctx->rng), &none, NULL, NULL, &err);
	return ctx;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint64_t ring_off(const uint8_t *p, unsigned align)
{
	uint16_t v = get16(p);

	return v & 0x8000 ? (uint64_t)v * 97 * align : (uint64_t)(v & 0x3ff) * align;
}

/* The same ring through a started queue: process() as the I/O thread runs
 * it (lock held), completions from the block queue, then a stop that must
 * leave nothing in flight (the memory is freed right after). */
static void fuzz_async(struct fuzz_ctx *ctx, const struct virtq_mem *xl,
		       const struct virtio_queue_setup *s, uint64_t features)
{
	struct virtio_dev *d = ctx->blk_async;
	struct verr err = { 0 };

	if (virtio_dev_activate(d, features & virtio_dev_features(d), xl, NULL, NULL, &err) == 0 &&
	    virtio_dev_queue_start(d, 0, s, &err) == 0) {
		pthread_mutex_lock(&d->lock);
		virtio_dev_process(d, 0);
		pthread_mutex_unlock(&d->lock);
		virtio_dev_queue_stop(d, 0);
	}
	virtio_dev_reset(d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_ctx *ctx = setup();
	struct fuzz_mem m;
	struct virtq_mem xl = { .gpa_to_hva = xlate, .ctx = &m };
	struct virtq vq;
	struct verr err = { 0 };
	uint64_t features, desc_gpa, avail_gpa, used_gpa;
	uint16_t num;

	if (size < 16)
		return 0;
	num = (uint16_t)(1u << (data[0] % 9));             /* 1..256 */
	features = (uint64_t)(data[1] & 3) << VIRTIO_F_INDIRECT_DESC;
	m.size = size - 16 > MEM_MAX ? MEM_MAX : size - 16;
	/* A private, writable copy: the device writes used entries and data. */
	m.buf = malloc(m.size ? m.size : 1);
	memcpy(m.buf, data + 16, m.size);
	/* Ring offsets mostly land inside the memory image (low 12 bits),
	 * sometimes anywhere (bit 15), so both good and bad layouts are hit. */
	desc_gpa = MEM_GPA + ring_off(data + 4, 16);
	avail_gpa = MEM_GPA + ring_off(data + 6, 2);
	used_gpa = MEM_GPA + ring_off(data + 8, 4);
	if (virtq_start(&vq, &xl, num, desc_gpa, avail_gpa, used_gpa, features, get16(data + 2),
			&err) == 0) {
		for (int i = 0; i < 64; i++) {
			struct virtio_dev *d = data[10] & 1 ? ctx->rng : ctx->blk;
			uint32_t used = 0;
			uint64_t frame;
			int r = virtq_pop(&vq, &ctx->chain, &err);

			if (r <= 0)
				break;
			virtio_net_tx_check(&ctx->chain, &frame, &err);
			if (data[10] & 2) {
				uint32_t acked = 0;

				virtio_net_ctrl(ctx->net, 2, &ctx->chain, &acked, &err);
			}
			if (d == ctx->rng)
				r = virtio_rng_handle(d, 0, &ctx->chain, &used, &err);
			else
				r = virtio_blk_handle(d, 0, &ctx->chain, &used, &err);
			if (r < 0 || virtq_push(&vq, ctx->chain.head, used, &err) < 0)
				break;
			virtq_should_notify(&vq);
		}
		virtq_enable_kicks(&vq);
	}
	if ((data[10] & 12) == 12) {
		struct virtio_queue_setup s = { .size = num, .desc = desc_gpa,
						.avail = avail_gpa, .used = used_gpa,
						.base = get16(data + 2), .kick_fd = -1 };
		/* Device bits (FLUSH unless bit 4: write-through), the ring's. */
		uint64_t f = features | (1ull << VIRTIO_F_VERSION_1) |
			     (data[10] & 16 ? 0xffffull & ~(1ull << VIRTIO_BLK_F_FLUSH) : 0xffffull);

		/* Fresh memory: the walk above wrote used entries and data. */
		memcpy(m.buf, data + 16, m.size);
		fuzz_async(ctx, &xl, &s, f);
	}
	free(m.buf);
	return 0;
}
