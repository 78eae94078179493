/* SPDX-License-Identifier: Apache-2.0 */
/* `vireo img convert`: copy an image into a new (or existing, -n) one,
 * keeping it sparse: ranges that read as zeros are not written. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/file.h"
#include "img/img_priv.h"

#define CHUNK (8u << 20)

struct conv {
	struct block_dev *src, *dst;
	bool compress, fresh, progress, backed;
	uint32_t gran;           /* output cluster size */
	uint8_t *buf, *cmp;
};

static bool is_zero(const uint8_t *p, size_t n)
{
	static const uint8_t z[4096];
	while (n >= sizeof(z)) {
		if (memcmp(p, z, sizeof(z)))
			return false;
		p += sizeof(z);
		n -= sizeof(z);
	}
	return memcmp(p, z, n) == 0;
}

/* Write [off, off+n) from c->buf, skipping granules that need no write. */
static int put(struct conv *c, uint64_t off, size_t n, struct verr *err)
{
	size_t g = c->gran, i = 0;

	while (i < n) {
		size_t len = g - (off + i) % g, j;
		int r = 0;
		if (len > n - i)
			len = n - i;
		bool skip = c->fresh && !c->backed && is_zero(c->buf + i, len);
		if (!skip && c->backed) {
			r = block_read(c->dst, off + i, c->cmp, len, err);
			skip = !r && !memcmp(c->cmp, c->buf + i, len);
		}
		if (r)
			return r;
		if (skip) {
			i += len;
			continue;
		}
		{
			/* Merge following granules that also need writing. */
			for (j = i + len; j < n && !c->backed; j += g) {
				size_t l2 = n - j < g ? n - j : g;
				if (c->fresh && is_zero(c->buf + j, l2))
					break;
				len += l2;
			}
			r = c->compress ? block_write_compressed(c->dst, off + i, c->buf + i, len, err)
				       : block_write(c->dst, off + i, c->buf + i, len, err);
			i += len;
		}
		if (r)
			return r;
	}
	return 0;
}

/* Reading and writing overlap: a reader thread walks the source into a
 * small ring of buffers while this thread writes. The two touch different
 * images, so no block device is shared between threads. */
#define NSLOTS 4
#define ZERO_PIECE (1ull << 30)

struct piece {
	uint64_t off, len;
	bool zero;
	uint8_t *buf;
};

struct pipeline {
	struct conv *c;
	pthread_mutex_t m;
	pthread_cond_t cv;
	struct piece slot[NSLOTS];
	uint8_t *bufs[NSLOTS];
	unsigned head, tail;     /* consumed / produced pieces */
	bool done, failed, stop;
	struct verr err;
};

/* Wait for a free slot; false if the writer gave up. */
static bool slot_free(struct pipeline *p, unsigned *i)
{
	pthread_mutex_lock(&p->m);
	while (p->tail - p->head == NSLOTS && !p->stop)
		pthread_cond_wait(&p->cv, &p->m);
	*i = p->tail % NSLOTS;
	bool ok = !p->stop;
	pthread_mutex_unlock(&p->m);
	return ok;
}

static int produce(struct pipeline *p, uint64_t off, uint64_t len, bool zero)
{
	struct conv *c = p->c;

	while (len) {
		uint64_t n = len < (zero ? ZERO_PIECE : CHUNK) ? len : (zero ? ZERO_PIECE : CHUNK);
		unsigned i;
		int r = 0;
		if (!slot_free(p, &i))
			return -ECANCELED;
		if (!zero)
			r = block_read(c->src, off, p->bufs[i], (size_t)n, &p->err);
		if (r)
			return r;
		pthread_mutex_lock(&p->m);
		p->slot[i] = (struct piece){ off, n, zero, p->bufs[i] };
		p->tail++;
		pthread_cond_broadcast(&p->cv);
		pthread_mutex_unlock(&p->m);
		off += n;
		len -= n;
	}
	return 0;
}

static void *reader(void *arg)
{
	struct pipeline *p = arg;
	struct conv *c = p->c;
	uint64_t size = c->src->size, off = 0;
	int r = 0;

	while (off < size && !r) {
		struct block_status st;
		r = block_status_chain(c->src, off, size - off, &st, &p->err);
		if (r)
			break;
		/* Compression needs whole clusters: read everything, and let
		 * put() skip the all-zero ones. */
		if (c->compress) {
			st.flags &= ~BLOCK_STATUS_ZERO;
			st.length = size - off < CHUNK ? size - off : CHUNK;
		}
		r = produce(p, off, st.length, st.flags & BLOCK_STATUS_ZERO);
		off += st.length;
	}
	pthread_mutex_lock(&p->m);
	p->done = true;
	p->failed = r != 0 && r != -ECANCELED;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->m);
	return NULL;
}

static int consume(struct conv *c, const struct piece *pc, struct verr *err)
{
	int r = 0;

	c->buf = pc->buf;
	if (!pc->zero)
		return put(c, pc->off, (size_t)pc->len, err);
	if (c->fresh && !c->backed)
		return 0;
	if (!c->backed)
		return block_write_zeroes(c->dst, pc->off, pc->len, err);
	/* Over a backing file, zeros must still be written where it differs. */
	memset(c->buf, 0, CHUNK);
	for (uint64_t o = 0; o < pc->len && !r; o += CHUNK)
		r = put(c, pc->off + o, pc->len - o < CHUNK ? (size_t)(pc->len - o) : CHUNK, err);
	return r;
}

static int next_piece(struct pipeline *p, struct piece *pc)
{
	pthread_mutex_lock(&p->m);
	while (p->head == p->tail && !p->done)
		pthread_cond_wait(&p->cv, &p->m);
	bool have = p->head != p->tail;
	if (have)
		*pc = p->slot[p->head % NSLOTS];
	pthread_mutex_unlock(&p->m);
	return have;
}

static void release(struct pipeline *p, bool stop)
{
	pthread_mutex_lock(&p->m);
	p->head++;
	p->stop |= stop;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->m);
}

static int pump(struct conv *c, struct pipeline *p, struct verr *err)
{
	uint64_t size = c->src->size;
	struct piece pc;
	pthread_t th;
	int last = -1, r = 0;

	if (pthread_create(&th, NULL, reader, p))
		return verr_set(err, EAGAIN, "cannot start the reader thread");
	while (!r && next_piece(p, &pc)) {
		r = consume(c, &pc, err);
		release(p, r != 0);
		if (c->progress && size && (int)((pc.off + pc.len) * 100 / size) != last) {
			last = (int)((pc.off + pc.len) * 100 / size);
			fprintf(stderr, "    (%d.00/100%%)\r", last);
		}
	}
	pthread_join(th, NULL);
	if (!r && p->failed) {
		*err = p->err;
		r = -(err->code ? err->code : EIO);
	}
	return r;
}

static int run(struct conv *c, struct verr *err)
{
	struct pipeline p = { .c = c };
	int r = 0;

	pthread_mutex_init(&p.m, NULL);
	pthread_cond_init(&p.cv, NULL);
	for (int i = 0; i < NSLOTS; i++)
		if (!(p.bufs[i] = file_alloc(CHUNK)))
			r = verr_set(err, ENOMEM, "out of memory");
	if (!r)
		r = pump(c, &p, err);
	for (int i = 0; i < NSLOTS; i++)
		free(p.bufs[i]);
	pthread_cond_destroy(&p.cv);
	pthread_mutex_destroy(&p.m);
	c->buf = NULL;
	if (c->progress && !r)
		fprintf(stderr, "    (100.00/100%%)\n");
	return r ? r : block_flush(c->dst, err);
}

struct conv_args {
	const char *fmt, *ofmt, *backing, *cache, *scache;
	struct block_create_opts o;
	bool compress, progress, no_create;
};

static int parse(int argc, char **argv, struct conv_args *a, struct verr *err)
{
	int c;

	optind = 1;
	while ((c = getopt(argc, argv, "f:O:co:pnB:Wt:T:qm:r:U")) != -1) {
		switch (c) {
		case 'f': a->fmt = optarg; break;
		case 'O': a->ofmt = optarg; break;
		case 'c': a->compress = true; break;
		case 'o':
			if (img_parse_opts(optarg, &a->o, NULL, 0, err))
				return -EINVAL;
			break;
		case 'p': a->progress = true; break;
		case 'n': a->no_create = true; break;
		case 'B': a->backing = optarg; break;
		case 't': a->cache = optarg; break;
		case 'T': a->scache = optarg; break;
		case 'W': case 'q': case 'm': case 'r': case 'U': break;
		default: return verr_set(err, EINVAL, "convert: bad option");
		}
	}
	if (argc - optind != 2)
		return verr_set(err, EINVAL, "convert: expected an input and an output file");
	return 0;
}

int img_convert(int argc, char **argv)
{
	/* As in qemu-img, the output defaults to cache=unsafe: a conversion that
	 * dies half way is redone, not recovered, so it skips the flushes. */
	struct conv_args a = { .ofmt = "raw", .cache = "unsafe" };
	struct conv c = {0};
	struct verr err = {0};
	int r;

	if (img_want_help(argc, argv, "convert"))
		return 0;
	if (parse(argc, argv, &a, &err))
		return img_fail(&err);
	if (a.backing)
		a.o.backing_file = a.backing;
	r = img_open(argv[optind], a.fmt, false, a.scache, false, &c.src, &err);
	if (r)
		return img_fail(&err);
	a.o.size = c.src->size;
	if (!a.no_create) {
		if (a.o.backing_file && !a.o.backing_format) {
			char p[BLOCK_PATH_MAX];
			struct block_dev *b;
			block_backing_path(argv[optind + 1], a.o.backing_file, p, sizeof(p));
			if (img_open(p, NULL, false, NULL, true, &b, &err) == 0) {
				a.o.backing_format = b->drv->name;
				block_close(b);
			}
			verr_clear(&err);
		}
		r = block_create(a.ofmt, argv[optind + 1], &a.o, &err);
	}
	if (!r)
		r = img_open(argv[optind + 1], a.no_create ? NULL : a.ofmt, true, a.cache, false,
			     &c.dst, &err);
	if (!r && c.dst->size < c.src->size)
		r = verr_set(&err, EINVAL, "%s: output is smaller than the input",
			     argv[optind + 1]);
	if (!r) {
		c.compress = a.compress;
		c.fresh = !a.no_create;
		c.backed = c.dst->backing != NULL;
		c.progress = a.progress;
		c.gran = block_granularity(c.dst);
		if (c.gran < 4096 && !a.compress)
			c.gran = 4096;
		c.cmp = file_alloc(CHUNK);
		r = c.cmp ? run(&c, &err) : verr_set(&err, ENOMEM, "out of memory");
	}
	free(c.cmp);
	block_close(c.dst);
	block_close(c.src);
	return r ? img_fail(&err) : 0;
}
