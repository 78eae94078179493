/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-blk on the block layer. Requests are served synchronously on the
 * device's I/O thread, straight between guest memory and the image (no
 * bounce buffer); all queues share that thread, so the block layer is
 * never entered concurrently.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "virtio/blk.h"

#define SECTOR 512ull
#define HDR_SIZE 16u
#define ID_BYTES 20u
#define SEG_MAX (VIRTIO_BLK_QUEUE_SIZE - 2)
#define MAX_DISCARD_SEG 32u
#define MAX_DISCARD_SECTORS (1u << 22)   /* 2 GiB per segment */
#define BOUNCE_MAX (2u << 20)

struct virtio_blk {
	struct virtio_dev dev;
	struct block_dev *bd;
	bool read_only;
	unsigned num_queues;
	uint8_t config[VIRTIO_BLK_CONFIG_SIZE];
	char serial[ID_BYTES];
	uint8_t *bounce;           /* BOUNCE_MAX bytes, I/O thread only */
};

struct blk_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct blk_range {
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

static struct virtio_blk *to_blk(struct virtio_dev *d)
{
	return (struct virtio_blk *)d;
}

static uint64_t blk_features(struct virtio_dev *d)
{
	struct virtio_blk *b = to_blk(d);
	uint64_t f = (1ull << VIRTIO_BLK_F_SEG_MAX) | (1ull << VIRTIO_BLK_F_BLK_SIZE) |
		     (1ull << VIRTIO_BLK_F_FLUSH) | (1ull << VIRTIO_BLK_F_TOPOLOGY) |
		     (1ull << VIRTIO_BLK_F_MQ);

	if (b->read_only)
		return f | (1ull << VIRTIO_BLK_F_RO);
	if (b->bd->drv->discard)
		f |= 1ull << VIRTIO_BLK_F_DISCARD;
	if (b->bd->drv->write_zeroes)
		f |= 1ull << VIRTIO_BLK_F_WRITE_ZEROES;
	return f;
}

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

/* Config layout: virtio 1.2, 5.2.4 (little-endian on our hosts). */
static void blk_build_config(struct virtio_blk *b)
{
	uint32_t gran = block_granularity(b->bd);
	uint32_t align = gran >= SECTOR ? (uint32_t)(gran / SECTOR) : 1;
	uint8_t *c = b->config;

	memset(c, 0, sizeof(b->config));
	put64(c + 0, b->bd->size / SECTOR);
	put32(c + 12, SEG_MAX);
	put32(c + 20, SECTOR);
	put16(c + 26, 1);                    /* min_io_size, in blocks */
	put32(c + 28, align);                /* opt_io_size: one cluster */
	put16(c + 34, (uint16_t)b->num_queues);
	put32(c + 36, MAX_DISCARD_SECTORS);
	put32(c + 40, MAX_DISCARD_SEG);
	put32(c + 44, align);
	put32(c + 48, MAX_DISCARD_SECTORS);
	put32(c + 52, MAX_DISCARD_SEG);
}

static void blk_config_read(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len)
{
	memcpy(buf, to_blk(d)->config + off, len);
}

/* Move len bytes between the image at off and the chain's segments
 * iov[0..n) starting skip bytes in, one block-layer call per segment. */
static int blk_rw_segs(struct virtio_blk *b, bool write, uint64_t off, const struct iovec *iov,
		  unsigned n, size_t skip, size_t len)
{
	struct verr err = { 0 };

	for (unsigned i = 0; i < n && len; i++) {
		size_t l = iov[i].iov_len;
		uint8_t *p = iov[i].iov_base;
		int r;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		p += skip;
		l -= skip;
		skip = 0;
		if (l > len)
			l = len;
		r = write ? block_write(b->bd, off, p, l, &err) : block_read(b->bd, off, p, l, &err);
		if (r < 0) {
			log_warn(b->dev.name, "%s at %llu: %s", write ? "write" : "read",
				 (unsigned long long)off, err.msg);
			return r;
		}
		off += l;
		len -= l;
	}
	return 0;
}

/* A guest's large request arrives as many page-sized segments; one copy
 * through a bounce buffer costs far less than a system call per page. */
static int blk_rw(struct virtio_blk *b, bool write, uint64_t off, const struct iovec *iov,
		  unsigned n, size_t skip, size_t len)
{
	struct verr err = { 0 };
	int r;

	if (len > BOUNCE_MAX || n < 2 || !b->bounce)
		return blk_rw_segs(b, write, off, iov, n, skip, len);
	if (write) {
		iov_to_buf(iov, n, skip, b->bounce, len);
		r = block_write(b->bd, off, b->bounce, len, &err);
	} else {
		r = block_read(b->bd, off, b->bounce, len, &err);
		if (r >= 0)
			iov_from_buf(iov, n, skip, b->bounce, len);
	}
	if (r < 0)
		log_warn(b->dev.name, "%s at %llu: %s", write ? "write" : "read",
			 (unsigned long long)off, err.msg);
	return r < 0 ? r : 0;
}

static bool in_range(struct virtio_blk *b, uint64_t sector, uint64_t bytes)
{
	uint64_t cap = b->bd->size / SECTOR;

	return sector <= cap && bytes / SECTOR <= cap - sector;
}

static uint8_t blk_read_write(struct virtio_blk *b, struct virtq_chain *c,
			      const struct blk_hdr *h, uint32_t *data_written)
{
	bool write = h->type == VIRTIO_BLK_T_OUT;
	uint64_t len = write ? c->out_len - HDR_SIZE : c->in_len - 1;

	if (len % SECTOR || !in_range(b, h->sector, len))
		return VIRTIO_BLK_S_IOERR;
	if (write && b->read_only)
		return VIRTIO_BLK_S_IOERR;
	if (write)
		return blk_rw(b, true, h->sector * SECTOR, c->iov, c->nout, HDR_SIZE, len)
			       ? VIRTIO_BLK_S_IOERR : VIRTIO_BLK_S_OK;
	if (blk_rw(b, false, h->sector * SECTOR, c->iov + c->nout, c->nin, 0, len))
		return VIRTIO_BLK_S_IOERR;
	*data_written = (uint32_t)len;
	return VIRTIO_BLK_S_OK;
}

static uint8_t blk_one_range(struct virtio_blk *b, bool zeroes, const struct blk_range *s)
{
	struct verr err = { 0 };
	uint32_t allowed = zeroes ? 1u : 0u;     /* only WRITE_ZEROES knows "unmap" */
	uint64_t off = s->sector * SECTOR, len = (uint64_t)s->num_sectors * SECTOR;
	int r;

	if (s->flags & ~allowed)
		return VIRTIO_BLK_S_UNSUPP;
	if (s->num_sectors > MAX_DISCARD_SECTORS || !in_range(b, s->sector, len))
		return VIRTIO_BLK_S_IOERR;
	r = zeroes ? block_write_zeroes(b->bd, off, len, &err)
		   : block_discard(b->bd, off, len, &err);
	/* Discard is a hint: a format that cannot drop the range has done no harm. */
	if (r == -ENOTSUP && !zeroes)
		return VIRTIO_BLK_S_OK;
	if (r < 0) {
		log_warn(b->dev.name, "%s: %s", zeroes ? "write-zeroes" : "discard", err.msg);
		return VIRTIO_BLK_S_IOERR;
	}
	return VIRTIO_BLK_S_OK;
}

static uint8_t blk_ranges(struct virtio_blk *b, struct virtq_chain *c, bool zeroes)
{
	uint64_t len = c->out_len - HDR_SIZE;
	struct blk_range s;

	if (b->read_only)
		return VIRTIO_BLK_S_IOERR;
	if (len == 0 || len % sizeof(s) || len / sizeof(s) > MAX_DISCARD_SEG)
		return VIRTIO_BLK_S_UNSUPP;
	for (uint64_t i = 0; i < len / sizeof(s); i++) {
		uint8_t st;

		iov_to_buf(c->iov, c->nout, HDR_SIZE + i * sizeof(s), &s, sizeof(s));
		st = blk_one_range(b, zeroes, &s);
		if (st != VIRTIO_BLK_S_OK)
			return st;
	}
	return VIRTIO_BLK_S_OK;
}

static uint8_t blk_get_id(struct virtio_blk *b, struct virtq_chain *c, uint32_t *written)
{
	uint64_t room = c->in_len - 1;
	size_t n = room < ID_BYTES ? (size_t)room : ID_BYTES;

	*written = (uint32_t)iov_from_buf(c->iov + c->nout, c->nin, 0, b->serial, n);
	return VIRTIO_BLK_S_OK;
}

static uint8_t blk_dispatch(struct virtio_blk *b, struct virtq_chain *c, const struct blk_hdr *h,
			    uint32_t *written)
{
	struct verr err = { 0 };

	switch (h->type) {
	case VIRTIO_BLK_T_IN:
		return blk_read_write(b, c, h, written);
	case VIRTIO_BLK_T_OUT: {
		uint8_t st = blk_read_write(b, c, h, written);
		/* Without a negotiated FLUSH the driver cannot ask for one, so
		 * writes must be durable when they complete (virtio 1.2, 5.2.6.2). */
		if (st == VIRTIO_BLK_S_OK && !(b->dev.features & (1ull << VIRTIO_BLK_F_FLUSH)) &&
		    block_flush(b->bd, &err) < 0) {
			log_warn(b->dev.name, "write-through flush: %s", err.msg);
			st = VIRTIO_BLK_S_IOERR;
		}
		return st;
	}
	case VIRTIO_BLK_T_FLUSH:
		if (block_flush(b->bd, &err) < 0) {
			log_warn(b->dev.name, "flush: %s", err.msg);
			return VIRTIO_BLK_S_IOERR;
		}
		return VIRTIO_BLK_S_OK;
	case VIRTIO_BLK_T_GET_ID:
		return blk_get_id(b, c, written);
	case VIRTIO_BLK_T_DISCARD:
		if (!(b->dev.features & (1ull << VIRTIO_BLK_F_DISCARD)))
			return VIRTIO_BLK_S_UNSUPP;
		return blk_ranges(b, c, false);
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (!(b->dev.features & (1ull << VIRTIO_BLK_F_WRITE_ZEROES)))
			return VIRTIO_BLK_S_UNSUPP;
		return blk_ranges(b, c, true);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

int virtio_blk_handle(struct virtio_dev *d, unsigned q, struct virtq_chain *c,
		      uint32_t *used_len, struct verr *err)
{
	struct virtio_blk *b = to_blk(d);
	struct blk_hdr h;
	uint32_t written = 0;
	uint8_t status;

	/* Without a header to read and a byte to answer in there is no request
	 * to fail politely: the driver broke the protocol (virtio 1.2 5.2.6). */
	if (c->out_len < HDR_SIZE || c->in_len < 1)
		return verr_set(err, EIO, "request %u: %llu header bytes, %llu status bytes",
				c->head, (unsigned long long)c->out_len,
				(unsigned long long)c->in_len);
	iov_to_buf(c->iov, c->nout, 0, &h, sizeof(h));
	status = blk_dispatch(b, c, &h, &written);
	iov_from_buf(c->iov + c->nout, c->nin, c->in_len - 1, &status, 1);
	*used_len = written + 1;
	return 0;
}

static int blk_process(struct virtio_dev *d, unsigned q, struct verr *err)
{
	return virtio_dev_serve(d, q, virtio_blk_handle, err);
}

static void blk_destroy(struct virtio_dev *d)
{
	free(to_blk(d)->bounce);
	free(to_blk(d));
}

static const struct virtio_dev_ops blk_ops = {
	.name = "virtio-blk",
	.device_id = VIRTIO_ID_BLOCK,
	.features = blk_features,
	.config_size = VIRTIO_BLK_CONFIG_SIZE,
	.config_read = blk_config_read,
	.process = blk_process,
	.destroy = blk_destroy,
};

int virtio_blk_create(const struct virtio_blk_opts *o, struct virtio_dev **out,
		      struct verr *err)
{
	struct virtio_blk *b = calloc(1, sizeof(*b));
	const char *base;
	char name[48];
	int r;

	if (!b)
		return verr_set(err, ENOMEM, "virtio-blk: out of memory");
	b->bd = o->bd;
	b->bounce = malloc(BOUNCE_MAX);    /* optional: without it, per-segment I/O */
	b->read_only = o->read_only || o->bd->read_only;
	b->num_queues = o->num_queues ? o->num_queues : 1;
	base = strrchr(o->bd->filename, '/');
	base = base ? base + 1 : o->bd->filename;
	/* The ID is 20 bytes, NUL-padded, not necessarily terminated. */
	memcpy(b->serial, o->serial ? o->serial : base,
	       strnlen(o->serial ? o->serial : base, ID_BYTES));
	snprintf(name, sizeof(name), "virtio-blk:%.30s", base);
	r = virtio_dev_init(&b->dev, &blk_ops, name, b->num_queues, VIRTIO_BLK_QUEUE_SIZE, err);
	if (r) {
		free(b->bounce);
		free(b);
		return r;
	}
	blk_build_config(b);
	*out = &b->dev;
	return 0;
}
