/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-blk on the block layer. Each chain popped from a queue becomes a
 * struct blk_req handed to the device's block_queue: reads and writes go
 * straight between guest memory and the image (io_uring where the image
 * maps directly onto its file, the queue's worker otherwise), so up to a
 * queue's size of requests per virtqueue are in flight at once. The I/O
 * thread watches the block queue's eventfd and completes requests in the
 * order they finish, which split virtqueues allow. Requests that fail
 * validation, and GET_ID, complete at once.
 *
 * A queue at its in-flight limit stops popping; the completion that frees
 * a slot kicks it again. virtio_dev_queue_stop drains the queue first (the
 * quiesce hook), so a stopped queue has nothing in flight and its used ring
 * holds every chain popped: snapshots and vhost-user GET_VRING_BASE rely on
 * that. Only the I/O thread, or a transport call holding the device lock,
 * touches requests.
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
#define IOV_INLINE 4u
#define ST_SUBMIT 0xffu                  /* not a status: the request goes on */

struct virtio_blk;

struct blk_req {
	struct block_req br;           /* the block-layer request in progress */
	struct virtio_blk *b;
	struct blk_req *next_free;
	uint16_t head, q;
	uint32_t type;
	uint8_t *status;               /* the chain's last device-writable byte */
	uint32_t written;              /* device-writable bytes filled */
	/* discard / write-zeroes: the segments run one after the other */
	unsigned nranges, range;
	/* The data segments (read/write) or the range list (discard): a copy
	 * of the chain's iovecs, as the chain itself is scratch. */
	struct iovec *iov;
	unsigned niov;
	struct iovec *heap;            /* for chains of more than IOV_INLINE */
	unsigned heap_cap;
	struct iovec inline_iov[IOV_INLINE];
};

struct blk_vq {
	unsigned inflight;             /* blk_reqs taken from the free list */
	bool stalled;                  /* stopped popping at the limit */
	bool pushed;                   /* used entries since the last notify */
	struct blk_req *free;
};

struct virtio_blk {
	struct virtio_dev dev;
	struct block_dev *bd;
	struct block_queue *bq;
	bool read_only;
	unsigned num_queues;
	uint8_t config[VIRTIO_BLK_CONFIG_SIZE];
	char serial[ID_BYTES];
	struct blk_vq vq[VIRTIO_MAX_QUEUES];
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

/* ---- parsing a chain into a request ---- */

static bool in_range(struct virtio_blk *b, uint64_t sector, uint64_t bytes)
{
	uint64_t cap = b->bd->size / SECTOR;

	return sector <= cap && bytes / SECTOR <= cap - sector;
}

static bool write_through(struct virtio_blk *b)
{
	/* Without a negotiated FLUSH the driver cannot ask for one, so writes
	 * must be durable when they complete (virtio 1.2, 5.2.6.2). */
	return !(b->dev.features & (1ull << VIRTIO_BLK_F_FLUSH));
}

/* Copy the segments holding bytes [skip, skip+len) of src[0..n) into the
 * request (the chain is scratch, reused by the next pop). */
static int req_set_iov(struct blk_req *r, const struct iovec *src, unsigned n, size_t skip,
		       size_t len)
{
	struct iovec *dst = r->inline_iov;

	if (n > IOV_INLINE) {
		if (n > r->heap_cap) {
			free(r->heap);
			r->heap = malloc(n * sizeof(*r->heap));
			r->heap_cap = r->heap ? n : 0;
			if (!r->heap)
				return -ENOMEM;
		}
		dst = r->heap;
	}
	r->iov = dst;
	r->niov = 0;
	for (unsigned i = 0; i < n && len; i++) {
		size_t l = src[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l -= skip;
		if (l > len)
			l = len;
		if (l)
			dst[r->niov++] = (struct iovec){ (uint8_t *)src[i].iov_base + skip, l };
		skip = 0;
		len -= l;
	}
	return 0;
}

static uint8_t prep_read_write(struct virtio_blk *b, struct blk_req *r,
			       const struct virtq_chain *c, const struct blk_hdr *h)
{
	bool write = h->type == VIRTIO_BLK_T_OUT;
	uint64_t len = write ? c->out_len - HDR_SIZE : c->in_len - 1;
	int ret;

	if (len % SECTOR || !in_range(b, h->sector, len))
		return VIRTIO_BLK_S_IOERR;
	if (write && b->read_only)
		return VIRTIO_BLK_S_IOERR;
	if (len == 0) {
		if (!write || !write_through(b))
			return VIRTIO_BLK_S_OK;
		r->br = (struct block_req){ .op = BLOCK_OP_FLUSH };
		return ST_SUBMIT;
	}
	ret = write ? req_set_iov(r, c->iov, c->nout, HDR_SIZE, len)
		    : req_set_iov(r, c->iov + c->nout, c->nin, 0, len);
	if (ret)
		return VIRTIO_BLK_S_IOERR;
	r->br = (struct block_req){ .op = write ? BLOCK_OP_WRITE : BLOCK_OP_READ,
				    .offset = h->sector * SECTOR, .len = len };
	if (write && write_through(b))
		r->br.flags = BLOCK_REQ_FUA;
	/* The usual 4 KiB request has one data segment: no iovec needed. */
	if (r->niov == 1)
		r->br.buf = r->iov[0].iov_base;
	else {
		r->br.iov = r->iov;
		r->br.iovcnt = r->niov;
	}
	return ST_SUBMIT;
}

/* Read and check segment r->range of a discard/write-zeroes list. */
static uint8_t prep_range(struct virtio_blk *b, struct blk_req *r)
{
	bool zeroes = r->type == VIRTIO_BLK_T_WRITE_ZEROES;
	uint32_t allowed = zeroes ? 1u : 0u;     /* only WRITE_ZEROES knows "unmap" */
	struct blk_range s;

	iov_to_buf(r->iov, r->niov, (size_t)r->range * sizeof(s), &s, sizeof(s));
	if (s.flags & ~allowed)
		return VIRTIO_BLK_S_UNSUPP;
	if (s.num_sectors > MAX_DISCARD_SECTORS ||
	    !in_range(b, s.sector, (uint64_t)s.num_sectors * SECTOR))
		return VIRTIO_BLK_S_IOERR;
	r->br = (struct block_req){ .op = zeroes ? BLOCK_OP_WRITE_ZEROES : BLOCK_OP_DISCARD,
				    .offset = s.sector * SECTOR,
				    .len = (uint64_t)s.num_sectors * SECTOR };
	return ST_SUBMIT;
}

static uint8_t prep_ranges(struct virtio_blk *b, struct blk_req *r, const struct virtq_chain *c)
{
	uint64_t len = c->out_len - HDR_SIZE;

	if (b->read_only)
		return VIRTIO_BLK_S_IOERR;
	if (len == 0 || len % sizeof(struct blk_range) ||
	    len / sizeof(struct blk_range) > MAX_DISCARD_SEG)
		return VIRTIO_BLK_S_UNSUPP;
	if (req_set_iov(r, c->iov, c->nout, HDR_SIZE, len))
		return VIRTIO_BLK_S_IOERR;
	r->nranges = (unsigned)(len / sizeof(struct blk_range));
	r->range = 0;
	return prep_range(b, r);
}

static uint8_t blk_get_id(struct virtio_blk *b, struct blk_req *r, const struct virtq_chain *c)
{
	uint64_t room = c->in_len - 1;
	size_t n = room < ID_BYTES ? (size_t)room : ID_BYTES;

	r->written = (uint32_t)iov_from_buf(c->iov + c->nout, c->nin, 0, b->serial, n);
	return VIRTIO_BLK_S_OK;
}

/* Turn a chain into a request: a final status, or ST_SUBMIT with r->br
 * ready for the block layer. */
static uint8_t blk_prepare(struct virtio_blk *b, struct blk_req *r, const struct virtq_chain *c)
{
	struct blk_hdr h;

	iov_to_buf(c->iov, c->nout, 0, &h, sizeof(h));
	r->type = h.type;
	r->written = 0;
	switch (h.type) {
	case VIRTIO_BLK_T_IN:
	case VIRTIO_BLK_T_OUT:
		return prep_read_write(b, r, c, &h);
	case VIRTIO_BLK_T_FLUSH:
		r->br = (struct block_req){ .op = BLOCK_OP_FLUSH };
		return ST_SUBMIT;
	case VIRTIO_BLK_T_GET_ID:
		return blk_get_id(b, r, c);
	case VIRTIO_BLK_T_DISCARD:
		if (!(b->dev.features & (1ull << VIRTIO_BLK_F_DISCARD)))
			return VIRTIO_BLK_S_UNSUPP;
		return prep_ranges(b, r, c);
	case VIRTIO_BLK_T_WRITE_ZEROES:
		if (!(b->dev.features & (1ull << VIRTIO_BLK_F_WRITE_ZEROES)))
			return VIRTIO_BLK_S_UNSUPP;
		return prep_ranges(b, r, c);
	default:
		return VIRTIO_BLK_S_UNSUPP;
	}
}

static const char *op_name(enum block_op op)
{
	static const char *const names[] = { "read", "write", "flush", "discard",
					     "write-zeroes" };

	return op <= BLOCK_OP_WRITE_ZEROES ? names[op] : "?";
}

/* r->br finished: the request's status, or ST_SUBMIT with the next step
 * (the next discard segment) in r->br. */
static uint8_t blk_advance(struct virtio_blk *b, struct blk_req *r)
{
	int ret = r->br.ret;

	/* Discard is a hint: a format that cannot drop the range has done no harm. */
	if (ret == -ENOTSUP && r->br.op == BLOCK_OP_DISCARD)
		ret = 0;
	if (ret < 0) {
		log_warn(b->dev.name, "%s at %llu: %s", op_name(r->br.op),
			 (unsigned long long)r->br.offset, strerror(-ret));
		return VIRTIO_BLK_S_IOERR;
	}
	if (r->type == VIRTIO_BLK_T_DISCARD || r->type == VIRTIO_BLK_T_WRITE_ZEROES) {
		if (++r->range == r->nranges)
			return VIRTIO_BLK_S_OK;
		return prep_range(b, r);
	}
	if (r->type == VIRTIO_BLK_T_IN)
		r->written = (uint32_t)r->br.len;
	return VIRTIO_BLK_S_OK;
}

static uint8_t *status_byte(const struct virtq_chain *c)
{
	for (unsigned i = c->nout + c->nin; i-- > c->nout;)
		if (c->iov[i].iov_len)
			return (uint8_t *)c->iov[i].iov_base + c->iov[i].iov_len - 1;
	return NULL;
}

static int check_chain(const struct virtq_chain *c, struct verr *err)
{
	/* Without a header to read and a byte to answer in there is no request
	 * to fail politely: the driver broke the protocol (virtio 1.2 5.2.6). */
	if (c->out_len < HDR_SIZE || c->in_len < 1 || !status_byte(c))
		return verr_set(err, EIO, "request %u: %llu header bytes, %llu status bytes",
				c->head, (unsigned long long)c->out_len,
				(unsigned long long)c->in_len);
	return 0;
}

int virtio_blk_handle(struct virtio_dev *d, unsigned q, struct virtq_chain *c,
		      uint32_t *used_len, struct verr *err)
{
	struct virtio_blk *b = to_blk(d);
	struct blk_req r = { .b = b, .q = (uint16_t)q };
	uint8_t st;

	if (check_chain(c, err))
		return -EIO;
	st = blk_prepare(b, &r, c);
	while (st == ST_SUBMIT) {
		block_req_run(b->bd, &r.br);
		st = blk_advance(b, &r);
	}
	*status_byte(c) = st;
	*used_len = r.written + 1;
	free(r.heap);
	return 0;
}

/* ---- the asynchronous path ---- */

static struct blk_req *req_get(struct virtio_blk *b, unsigned q)
{
	struct blk_vq *v = &b->vq[q];
	struct blk_req *r = v->free;

	if (r)
		v->free = r->next_free;
	else if (!(r = calloc(1, sizeof(*r))))
		return NULL;
	r->b = b;
	r->q = (uint16_t)q;
	v->inflight++;
	return r;
}

static void req_put(struct virtio_blk *b, struct blk_req *r)
{
	struct blk_vq *v = &b->vq[r->q];

	v->inflight--;
	r->next_free = v->free;
	v->free = r;
}

/* Answer the driver: status byte, used entry; the notify comes after the
 * batch (blk_notify). */
static void blk_finish(struct virtio_blk *b, struct blk_req *r, uint8_t st)
{
	struct virtio_dev *d = &b->dev;
	struct blk_vq *v = &b->vq[r->q];
	struct verr err = { 0 };
	unsigned q = r->q;

	/* Every stop drains first, so a stopped queue has nothing to answer;
	 * should one ever complete late, its ring is no longer ours. */
	if (d->q[q].started) {
		*r->status = st;
		if (virtq_push(&d->q[q].vq, r->head, r->written + 1, &err) < 0)
			virtio_dev_fail(d, q, &err);
		v->pushed = true;
	}
	req_put(b, r);
	if (v->stalled && d->q[q].started) {
		/* A slot is free again: pop more on the I/O thread's next turn. */
		v->stalled = false;
		virtio_dev_kick(d, q);
	}
}

static void blk_notify(struct virtio_blk *b)
{
	for (unsigned q = 0; q < b->dev.nqueues; q++) {
		if (!b->vq[q].pushed)
			continue;
		b->vq[q].pushed = false;
		if (b->dev.q[q].started)
			virtio_dev_notify(&b->dev, q);
	}
}

static void blk_req_done(struct block_req *br, void *opaque)
{
	struct blk_req *r = (struct blk_req *)br;
	struct virtio_blk *b = opaque;
	uint8_t st = blk_advance(b, r);

	if (st != ST_SUBMIT) {
		blk_finish(b, r, st);
		return;
	}
	r->br.cb = blk_req_done;
	r->br.opaque = b;
	block_submit(b->bq, &r->br);
}

/* One popped chain: submit it, or answer it at once. <0 only for a chain
 * too malformed to carry a status. */
static int blk_start(struct virtio_blk *b, unsigned q, struct virtq_chain *c, struct verr *err)
{
	struct blk_req *r;
	uint8_t st;

	if (check_chain(c, err) < 0)
		return -EIO;
	r = req_get(b, q);
	if (!r) {
		struct verr e = { 0 };

		*status_byte(c) = VIRTIO_BLK_S_IOERR;
		if (virtq_push(&b->dev.q[q].vq, c->head, 1, &e) < 0)
			return verr_set(err, EIO, "%s", e.msg);
		b->vq[q].pushed = true;
		return 0;
	}
	r->head = c->head;
	r->status = status_byte(c);
	st = blk_prepare(b, r, c);
	if (st != ST_SUBMIT) {
		blk_finish(b, r, st);
		return 0;
	}
	r->br.cb = blk_req_done;
	r->br.opaque = b;
	block_submit(b->bq, &r->br);
	return 0;
}

static int blk_process(struct virtio_dev *d, unsigned q, struct verr *err)
{
	struct virtio_blk *b = to_blk(d);
	struct virtq *vq = &d->q[q].vq;
	struct blk_vq *v = &b->vq[q];
	unsigned popped = 0;
	int r = 0;

	block_queue_plug(b->bq);
	for (;;) {
		if (v->inflight >= vq->num) {
			v->stalled = true;
			break;
		}
		r = virtq_pop_or_arm(vq, d->chain, err);
		if (r <= 0)
			break;
		r = blk_start(b, q, d->chain, err);
		if (r < 0)
			break;
		/* One queue's worth per call, so a busy queue cannot starve
		 * the others. */
		if (++popped >= vq->num) {
			virtio_dev_kick(d, q);
			break;
		}
	}
	block_queue_unplug(b->bq);
	/* Reads from the page cache often finish inside the submission:
	 * answer them now rather than after another trip through epoll. */
	if (popped)
		block_queue_poll(b->bq, false);
	blk_notify(b);
	return r < 0 ? r : 0;
}

/* The block queue's eventfd: completions to hand back. */
static void blk_on_completion(struct virtio_dev *d, void *arg)
{
	struct virtio_blk *b = arg;

	block_queue_poll(b->bq, false);
	blk_notify(b);
}

static void blk_quiesce(struct virtio_dev *d, unsigned q)
{
	struct virtio_blk *b = to_blk(d);

	while (b->vq[q].inflight) {
		if (block_queue_poll(b->bq, true) == 0 && !block_queue_inflight(b->bq)) {
			log_error(d->name, "queue %u: %u requests lost", q, b->vq[q].inflight);
			break;
		}
	}
	blk_notify(b);
	b->vq[q].stalled = false;
}

static void blk_drain(struct virtio_blk *b)
{
	if (!b->bq)
		return;
	while (block_queue_inflight(b->bq))
		block_queue_poll(b->bq, true);
}

static void blk_reset(struct virtio_dev *d)
{
	struct virtio_blk *b = to_blk(d);

	/* The queues are stopped, so drained; this is only a safety net. */
	blk_drain(b);
	for (unsigned q = 0; q < d->nqueues; q++) {
		b->vq[q].stalled = false;
		b->vq[q].pushed = false;
	}
}

static void blk_free_reqs(struct virtio_blk *b)
{
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		while (b->vq[q].free) {
			struct blk_req *r = b->vq[q].free;

			b->vq[q].free = r->next_free;
			free(r->heap);
			free(r);
		}
	}
}

static void blk_destroy(struct virtio_dev *d)
{
	struct virtio_blk *b = to_blk(d);

	block_queue_free(b->bq);
	blk_free_reqs(b);
	free(b);
}

static const struct virtio_dev_ops blk_ops = {
	.name = "virtio-blk",
	.device_id = VIRTIO_ID_BLOCK,
	.features = blk_features,
	.config_size = VIRTIO_BLK_CONFIG_SIZE,
	.config_read = blk_config_read,
	.process = blk_process,
	.quiesce = blk_quiesce,
	.reset = blk_reset,
	.destroy = blk_destroy,
	.poll_max_us = 50,
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
		free(b);
		return r;
	}
	r = block_queue_new(b->bd, (int)(b->num_queues * VIRTIO_BLK_QUEUE_SIZE), &b->bq, err);
	if (!r)
		r = virtio_dev_watch_fd(&b->dev, block_queue_eventfd(b->bq), blk_on_completion, b,
					err);
	if (r) {
		virtio_dev_destroy(&b->dev);   /* frees b through blk_destroy */
		return r;
	}
	blk_build_config(b);
	*out = &b->dev;
	return 0;
}
