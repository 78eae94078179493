/* SPDX-License-Identifier: Apache-2.0 */
/* `vireo img convert`: copy an image into a new (or existing, -n) one,
 * keeping it sparse: ranges that read as zeros are not written. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/file.h"
#include "img/img_priv.h"

#define CHUNK (2u << 20)

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

static int copy_run(struct conv *c, uint64_t off, uint64_t len, bool zero, struct verr *err)
{
	while (len) {
		size_t n = len < CHUNK ? (size_t)len : CHUNK;
		int r;
		if (zero && c->fresh && !c->backed) {
			r = 0;
		} else if (zero && !c->backed) {
			r = block_write_zeroes(c->dst, off, n, err);
		} else {
			if (zero)
				memset(c->buf, 0, n);
			else if ((r = block_read(c->src, off, c->buf, n, err)) < 0)
				return r;
			r = put(c, off, n, err);
		}
		if (r)
			return r;
		off += n;
		len -= n;
	}
	return 0;
}

static int run(struct conv *c, struct verr *err)
{
	uint64_t size = c->src->size, off = 0;
	int last = -1;

	while (off < size) {
		struct block_status st;
		int r = block_status_chain(c->src, off, size - off, &st, err);
		if (r)
			return r;
		/* Compression needs whole clusters: read everything, and let
		 * put() skip the all-zero ones. */
		if (c->compress) {
			st.flags &= ~BLOCK_STATUS_ZERO;
			st.length = size - off < CHUNK ? size - off : CHUNK;
		}
		r = copy_run(c, off, st.length, st.flags & BLOCK_STATUS_ZERO, err);
		if (r)
			return r;
		off += st.length;
		if (c->progress && (int)(off * 100 / size) != last) {
			last = (int)(off * 100 / size);
			fprintf(stderr, "    (%d.00/100%%)\r", last);
		}
	}
	if (c->progress)
		fprintf(stderr, "    (100.00/100%%)\n");
	return block_flush(c->dst, err);
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
	struct conv_args a = { .ofmt = "raw" };
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
		c.buf = file_alloc(CHUNK);
		c.cmp = file_alloc(CHUNK);
		r = c.buf && c.cmp ? run(&c, &err) : verr_set(&err, ENOMEM, "out of memory");
	}
	free(c.buf);
	free(c.cmp);
	block_close(c.dst);
	block_close(c.src);
	return r ? img_fail(&err) : 0;
}
