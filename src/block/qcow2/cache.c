/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Write-back caches for L2 tables and refcount blocks, LRU replacement.
 * Dirty entries reach the file only in the order qcow2.h describes: an L2
 * table is written after the refcount blocks it depends on are durable.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/file.h"
#include "block/qcow2/qcow2.h"

int qcow2_cache_init(struct qcow2_cache *c, int n, uint32_t size, bool is_l2)
{
	c->e = calloc((size_t)n, sizeof(*c->e));
	if (!c->e)
		return -ENOMEM;
	c->n = n;
	c->is_l2 = is_l2;
	for (int i = 0; i < n; i++) {
		c->e[i].data = file_alloc(size);
		if (!c->e[i].data)
			return -ENOMEM;
	}
	return 0;
}

void qcow2_cache_destroy(struct qcow2_cache *c)
{
	for (int i = 0; c->e && i < c->n; i++)
		free(c->e[i].data);
	free(c->e);
	c->e = NULL;
}

static int write_entry(struct qcow2 *q, struct qcow2_cache *c, struct qcow2_cache_entry *e,
		       struct verr *err)
{
	int r;

	if (!e->dirty)
		return 0;
	if (c->is_l2 && (r = qcow2_flush_refcounts(q, err)) < 0)
		return r;
	r = qcow2_pwrite(q, e->offset, e->data, q->cluster_size, err);
	if (r == 0) {
		e->dirty = false;
		c->written = true;
	}
	return r;
}

int qcow2_cache_write_dirty(struct qcow2 *q, struct qcow2_cache *c, struct verr *err)
{
	for (int i = 0; i < c->n; i++) {
		int r = write_entry(q, c, &c->e[i], err);
		if (r)
			return r;
	}
	return 0;
}

static struct qcow2_cache_entry *find(struct qcow2_cache *c, uint64_t off)
{
	for (int i = 0; i < c->n; i++)
		if (c->e[i].offset == off)
			return &c->e[i];
	return NULL;
}

static int victim(struct qcow2 *q, struct qcow2_cache *c, struct qcow2_cache_entry **out,
		  struct verr *err)
{
	struct qcow2_cache_entry *v = &c->e[0];

	for (int i = 1; i < c->n; i++) {
		if (!v->offset)
			break;
		if (!c->e[i].offset || c->e[i].lru < v->lru)
			v = &c->e[i];
	}
	*out = v;
	return write_entry(q, c, v, err);
}

int qcow2_cache_get(struct qcow2 *q, struct qcow2_cache *c, uint64_t off, bool fresh,
		    uint8_t **data, struct verr *err)
{
	struct qcow2_cache_entry *e = find(c, off);
	int r;

	if (!e) {
		r = victim(q, c, &e, err);
		if (r)
			return r;
		e->offset = 0;
		if (fresh) {
			memset(e->data, 0, q->cluster_size);
			e->dirty = true;
		} else {
			r = qcow2_check_offset(q, off, q->cluster_size,
					       c->is_l2 ? "L2 table" : "refcount block", err);
			if (!r)
				r = qcow2_pread(q, off, e->data, q->cluster_size, err);
			if (r)
				return r;
		}
		e->offset = off;
	} else if (fresh) {
		memset(e->data, 0, q->cluster_size);
		e->dirty = true;
	}
	e->lru = ++c->tick;
	*data = e->data;
	return 0;
}

void qcow2_cache_mark_dirty(struct qcow2_cache *c, const uint8_t *data)
{
	for (int i = 0; i < c->n; i++)
		if (c->e[i].data == data)
			c->e[i].dirty = true;
}

void qcow2_cache_forget(struct qcow2_cache *c, uint64_t off)
{
	struct qcow2_cache_entry *e = find(c, off);

	if (e) {
		e->offset = 0;
		e->dirty = false;
	}
}

static int write_l1(struct qcow2 *q, struct verr *err)
{
	size_t n = (size_t)q->l1_size * 8;
	uint64_t *be = malloc(n ? n : 8);
	int r;

	if (!be)
		return verr_set(err, ENOMEM, "out of memory");
	for (uint32_t i = 0; i < q->l1_size; i++)
		be64_put(&be[i], q->l1[i]);
	r = qcow2_pwrite(q, q->l1_offset, be, n, err);
	free(be);
	return r;
}

static int write_rt(struct qcow2 *q, struct verr *err)
{
	size_t n = (size_t)q->rt_entries * 8;
	uint64_t *be = malloc(n);
	int r;

	if (!be)
		return verr_set(err, ENOMEM, "out of memory");
	for (uint64_t i = 0; i < q->rt_entries; i++)
		be64_put(&be[i], q->rt[i]);
	r = qcow2_pwrite(q, q->rt_offset, be, n, err);
	free(be);
	return r;
}

static bool any_dirty(const struct qcow2_cache *c)
{
	for (int i = 0; i < c->n; i++)
		if (c->e[i].dirty)
			return true;
	return false;
}

/* Refcount blocks, sync, refcount table, sync. */
int qcow2_flush_refcounts(struct qcow2 *q, struct verr *err)
{
	int r;

	if (any_dirty(&q->rbc)) {
		r = qcow2_cache_write_dirty(q, &q->rbc, err);
		if (r)
			return r;
	}
	if (q->rbc.written) {
		r = qcow2_sync(q, err);
		if (r)
			return r;
		q->rbc.written = false;
	}
	if (q->rt_dirty) {
		r = write_rt(q, err);
		if (!r)
			r = qcow2_sync(q, err);
		if (r)
			return r;
		q->rt_dirty = false;
	}
	return 0;
}

int qcow2_flush_metadata(struct qcow2 *q, struct verr *err)
{
	int r = qcow2_flush_refcounts(q, err);

	if (!r)
		r = qcow2_cache_write_dirty(q, &q->l2c, err);
	if (!r && q->l2c.written) {
		r = qcow2_sync(q, err);
		q->l2c.written = false;
	}
	if (!r && q->l1_dirty) {
		r = write_l1(q, err);
		if (!r)
			r = qcow2_sync(q, err);
		if (!r)
			q->l1_dirty = false;
	}
	/* References dropped above are durable now: release their clusters. */
	if (!r && q->n_deferred)
		r = qcow2_apply_deferred(q, err);
	return r;
}
