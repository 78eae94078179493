/* SPDX-License-Identifier: Apache-2.0 */
/* `vireo img bench`: keep `depth` requests in flight through block_queue,
 * with qemu-img bench's options and output. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block/file.h"
#include "core/size.h"
#include "img/img_priv.h"

struct bench {
	struct block_dev *bd;
	struct block_queue *q;
	uint64_t offset, step, size, count, submitted, done;
	uint64_t flush_interval, since_flush;
	size_t bufsize;
	bool write, failed, flushing, log_flushes;
	int depth, inflight;
	struct block_req *reqs;
	bool *busy;
};

static void complete(struct block_req *r, void *opaque)
{
	struct bench *b = opaque;

	if (r->ret < 0)
		b->failed = true;
	if (r->op == BLOCK_OP_FLUSH) {
		b->flushing = false;
		return;
	}
	b->done++;
	b->inflight--;
	b->busy[r - b->reqs] = false;
}

static void next_offset(struct bench *b)
{
	b->offset += b->step;
	if (b->offset + b->bufsize > b->size)
		b->offset = b->offset % b->size;
	if (b->offset + b->bufsize > b->size)
		b->offset = 0;
}

/* Drain, then flush: every write acknowledged before is durable after. */
static void flush_now(struct bench *b)
{
	struct block_req flush = { .op = BLOCK_OP_FLUSH, .cb = complete, .opaque = b };

	while (b->inflight && !b->failed)
		block_queue_poll(b->q, true);
	b->flushing = true;
	block_submit(b->q, &flush);
	while (b->flushing)
		block_queue_poll(b->q, true);
	b->since_flush = 0;
	if (b->log_flushes && !b->failed) {
		/* For crash tests: these requests must survive a kill from now on. */
		printf("flushed %llu\n", (unsigned long long)b->done);
		fflush(stdout);
	}
}

static int run(struct bench *b, uint8_t *bufs, struct verr *err)
{
	bool want_flush = b->write && b->flush_interval;

	while (b->done < b->count && !b->failed) {
		for (int i = 0; i < b->depth && b->submitted < b->count; i++) {
			if (b->busy[i] || (want_flush && b->since_flush >= b->flush_interval))
				continue;
			b->reqs[i] = (struct block_req){ .op = b->write ? BLOCK_OP_WRITE
								: BLOCK_OP_READ,
				.offset = b->offset, .buf = bufs + (size_t)i * b->bufsize,
				.len = b->bufsize, .cb = complete, .opaque = b };
			b->busy[i] = true;
			b->inflight++;
			b->submitted++;
			b->since_flush++;
			block_submit(b->q, &b->reqs[i]);
			next_offset(b);
		}
		if (want_flush && b->since_flush >= b->flush_interval) {
			flush_now(b);
			continue;
		}
		block_queue_poll(b->q, true);
	}
	while (b->inflight)
		block_queue_poll(b->q, true);
	if (b->failed)
		return verr_set(err, EIO, "%s: a request failed", b->bd->filename);
	return 0;
}

int img_bench(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "pattern", required_argument, NULL, 'P' },
		{ "flush-interval", required_argument, NULL, 'I' },
		{ "no-drain", no_argument, NULL, 'N' },
		{ "log-flushes", no_argument, NULL, 'L' },
		{ 0, 0, 0, 0 },
	};
	struct bench b = { .count = 75000, .depth = 64, .bufsize = 4096 };
	const char *fmt = NULL, *cache = NULL;
	bool step_set = false;
	int pattern = 0, c, r;
	uint64_t v;
	struct verr err = {0};
	struct timespec t0, t1;

	if (img_want_help(argc, argv, "bench"))
		return 0;
	optind = 1;
	while ((c = getopt_long(argc, argv, "c:d:f:ns:S:t:wo:i:q", lo, NULL)) != -1) {
		switch (c) {
		case 'c': b.count = strtoull(optarg, NULL, 0); break;
		case 'd': b.depth = atoi(optarg); break;
		case 'f': fmt = optarg; break;
		case 'w': b.write = true; break;
		case 't': cache = optarg; break;
		case 'P': pattern = atoi(optarg); break;
		case 'I': b.flush_interval = strtoull(optarg, NULL, 0); break;
		case 's': case 'S': case 'o':
			if (size_parse(optarg, 0, &v, &err))
				return img_fail(&err);
			if (c == 's') b.bufsize = (size_t)v;
			else if (c == 'S') { b.step = v; step_set = true; }
			else b.offset = v;
			break;
		case 'L': b.log_flushes = true; break;
		case 'n': case 'i': case 'q': case 'N': break;
		default: return img_usage_error("bench", "bad option");
		}
	}
	if (argc - optind != 1 || b.depth < 1 || b.depth > 4096 || !b.bufsize ||
	    b.bufsize > (64u << 20))
		return img_usage_error("bench", "expected one image file and sane -d/-s values");
	if (!step_set)
		b.step = b.bufsize;
	if (img_open(argv[optind], fmt, b.write, cache, false, &b.bd, &err))
		return img_fail(&err);
	b.size = b.bd->size;
	if (b.size < b.bufsize) {
		block_close(b.bd);
		return img_usage_error("bench", "image smaller than the buffer");
	}
	uint8_t *bufs = file_alloc(b.bufsize * (size_t)b.depth);
	struct block_req *reqs = calloc((size_t)b.depth, sizeof(*reqs));
	b.reqs = reqs;
	b.busy = calloc((size_t)b.depth, sizeof(bool));
	r = bufs && reqs && b.busy ? block_queue_new(b.bd, b.depth, &b.q, &err)
			 : verr_set(&err, ENOMEM, "out of memory");
	if (!r) {
		memset(bufs, pattern, b.bufsize * (size_t)b.depth);
		printf("Sending %llu %s requests, %zu bytes each, %d in parallel (starting at "
		       "offset %llu, step size %llu)\n", (unsigned long long)b.count,
		       b.write ? "write" : "read", b.bufsize, b.depth,
		       (unsigned long long)b.offset, (unsigned long long)b.step);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		r = run(&b, bufs, &err);
		block_queue_free(b.q);
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if (!r)
			r = block_flush(b.bd, &err);
		if (!r)
			printf("Run completed in %.3f seconds.\n", (double)(t1.tv_sec - t0.tv_sec) +
			       (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
	}
	free(bufs);
	free(reqs);
	free(b.busy);
	block_close(b.bd);
	return r ? img_fail(&err) : 0;
}
