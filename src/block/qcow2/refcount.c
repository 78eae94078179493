/* SPDX-License-Identifier: Apache-2.0 */
/* Refcounts: reading and updating them, and allocating clusters. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/file.h"
#include "block/qcow2/qcow2.h"

/* Entries narrower than a byte are packed from the least significant bit;
 * wider ones are big-endian. */
uint64_t qcow2_rc_get_raw(const struct qcow2 *q, const uint8_t *b, uint64_t i)
{
	uint32_t bits = q->refcount_bits;

	switch (bits) {
	case 1: case 2: case 4: {
		uint64_t bit = i * bits;
		return (b[bit / 8] >> (bit % 8)) & ((1u << bits) - 1);
	}
	case 8: return b[i];
	case 16: return be16_get(b + 2 * i);
	case 32: return be32_get(b + 4 * i);
	default: return be64_get(b + 8 * i);
	}
}

void qcow2_rc_set_raw(const struct qcow2 *q, uint8_t *b, uint64_t i, uint64_t v)
{
	uint32_t bits = q->refcount_bits;

	switch (bits) {
	case 1: case 2: case 4: {
		uint64_t bit = i * bits;
		uint8_t mask = (uint8_t)(((1u << bits) - 1) << (bit % 8));
		b[bit / 8] = (uint8_t)((b[bit / 8] & ~mask) | ((v << (bit % 8)) & mask));
		break;
	}
	case 8: b[i] = (uint8_t)v; break;
	case 16: be16_put(b + 2 * i, (uint16_t)v); break;
	case 32: be32_put(b + 4 * i, (uint32_t)v); break;
	default: be64_put(b + 8 * i, v); break;
	}
}

static uint64_t rc_max(const struct qcow2 *q)
{
	return q->refcount_bits == 64 ? UINT64_MAX : (1ull << q->refcount_bits) - 1;
}

int qcow2_get_refcount(struct qcow2 *q, uint64_t cluster, uint64_t *rc, struct verr *err)
{
	uint64_t bi = cluster / q->rb_entries;
	uint8_t *b;
	int r;

	*rc = 0;
	if (bi >= q->rt_entries || !q->rt[bi])
		return 0;
	r = qcow2_cache_get(q, &q->rbc, q->rt[bi], false, &b, err);
	if (r)
		return r;
	*rc = qcow2_rc_get_raw(q, b, cluster % q->rb_entries);
	return 0;
}

/* Grow the refcount table so that block index `need` fits. The new table and
 * the refcount blocks that cover it go after the end of the file; the header
 * switches to them only once they are durable. */
static int grow_table(struct qcow2 *q, uint64_t need, struct verr *err)
{
	uint64_t cs = q->cluster_size, per_cl = cs / 8;
	uint64_t entries = q->rt_entries * 2 > need + 1 ? q->rt_entries * 2 : need + 1;
	uint64_t tc = (entries + per_cl - 1) / per_cl, nb = 0, start, prev;
	uint64_t old_off = q->rt_offset, old_cl = q->rt_clusters, *nt;
	uint8_t *blocks = NULL;
	int r;

	if (tc * cs > QCOW2_MAX_RT_BYTES)
		return verr_set(err, EFBIG, "%s: refcount table would exceed %u bytes", q->name,
				QCOW2_MAX_RT_BYTES);
	entries = tc * per_cl;
	r = qcow2_flush_refcounts(q, err);
	if (r)
		return r;
	start = (q->file_end + cs - 1) / cs;
	/* Blocks needed to cover [start, start + tc + nb) that don't exist yet. */
	do {
		prev = nb;
		nb = 0;
		for (uint64_t bi = start / q->rb_entries;
		     bi <= (start + tc + prev) / q->rb_entries; bi++)
			if (bi >= q->rt_entries || !q->rt[bi])
				nb++;
	} while (nb != prev);
	nt = calloc(entries, 8);
	blocks = calloc(nb ? nb : 1, cs);
	if (!nt || !blocks) {
		free(nt);
		free(blocks);
		return verr_set(err, ENOMEM, "out of memory");
	}
	memcpy(nt, q->rt, q->rt_entries * 8);
	uint64_t k = 0;
	for (uint64_t bi = start / q->rb_entries; bi <= (start + tc + nb) / q->rb_entries; bi++)
		if (!nt[bi])
			nt[bi] = (start + tc + k++) * cs;
	/* Refcount 1 for the table and new blocks, in old or new blocks. */
	for (uint64_t c = start; c < start + tc + nb && !r; c++) {
		uint64_t bi = c / q->rb_entries;
		if (nt[bi] >= (start + tc) * cs) {
			uint64_t idx = nt[bi] / cs - start - tc;
			qcow2_rc_set_raw(q, blocks + idx * cs, c % q->rb_entries, 1);
		} else {
			r = qcow2_update_refcount(q, c, 1, err);
		}
	}
	if (!r)
		r = qcow2_flush_refcounts(q, err);
	if (!r && nb)
		r = qcow2_pwrite(q, (start + tc) * cs, blocks, nb * cs, err);
	free(blocks);
	for (uint64_t i = 0; i < entries; i++)
		be64_put(&nt[i], nt[i]);
	if (!r)
		r = qcow2_pwrite(q, start * cs, nt, tc * cs, err);
	for (uint64_t i = 0; i < entries; i++)
		nt[i] = be64_get(&nt[i]);
	if (!r)
		r = qcow2_sync(q, err);
	if (r) {
		free(nt);
		return r;
	}
	free(q->rt);
	q->rt = nt;
	q->rt_entries = entries;
	q->rt_offset = start * cs;
	q->rt_clusters = (uint32_t)tc;
	r = qcow2_header_update(q, err);
	if (!r)
		r = qcow2_sync(q, err);
	if (!r)
		r = qcow2_free_now(q, old_off, old_cl * cs, err);
	return r;
}

/* Make sure the refcount block for cluster exists, creating it inside its
 * own range (all free, since nothing covers them yet). */
static int ensure_block(struct qcow2 *q, uint64_t cluster, bool *created, struct verr *err)
{
	uint64_t bi = cluster / q->rb_entries, first;
	uint8_t *b;
	int r;

	*created = false;
	if (bi >= q->rt_entries) {
		r = grow_table(q, bi, err);
		if (r)
			return r;
		*created = true;
	}
	if (q->rt[bi])
		return 0;
	first = bi * q->rb_entries;
	if (first * q->cluster_size < q->cluster_size)
		first = 1;
	r = qcow2_cache_get(q, &q->rbc, first * q->cluster_size, true, &b, err);
	if (r)
		return r;
	qcow2_rc_set_raw(q, b, first % q->rb_entries, 1);
	q->rt[bi] = first * q->cluster_size;
	q->rt_dirty = true;
	if ((first + 1) * q->cluster_size > q->file_end)
		q->file_end = (first + 1) * q->cluster_size;
	*created = true;
	return 0;
}

int qcow2_update_refcount(struct qcow2 *q, uint64_t cluster, int64_t delta, struct verr *err)
{
	uint64_t bi = cluster / q->rb_entries, v;
	bool created;
	uint8_t *b;
	int r;

	if (delta > 0 && (r = ensure_block(q, cluster, &created, err)) < 0)
		return r;
	if (bi >= q->rt_entries || !q->rt[bi])
		return verr_set(err, EINVAL, "%s: cluster 0x%llx has no refcount block to "
				"decrement", q->name, (unsigned long long)cluster);
	r = qcow2_cache_get(q, &q->rbc, q->rt[bi], false, &b, err);
	if (r)
		return r;
	v = qcow2_rc_get_raw(q, b, cluster % q->rb_entries);
	if ((delta < 0 && v < (uint64_t)-delta) || (delta > 0 && rc_max(q) - v < (uint64_t)delta))
		return verr_set(err, EINVAL, "%s: refcount of cluster 0x%llx would go out of range "
				"(%llu%+lld)", q->name, (unsigned long long)cluster,
				(unsigned long long)v, (long long)delta);
	v += (uint64_t)delta;
	qcow2_rc_set_raw(q, b, cluster % q->rb_entries, v);
	qcow2_cache_mark_dirty(&q->rbc, b);
	if (v == 0 && cluster < q->free_hint)
		q->free_hint = cluster;
	if (v == 0 && q->comp_cursor / q->cluster_size == cluster)
		q->comp_cursor = 0;
	return 0;
}

/* Find n contiguous free clusters at or after the hint. */
static int find_free(struct qcow2 *q, uint64_t n, uint64_t *first, struct verr *err)
{
	uint64_t c = q->free_hint ? q->free_hint : 1, run = 0, rc;
	uint64_t limit = (q->file_end / q->cluster_size) + n + 1;
	int r;

	for (; c < limit + n; c++) {
		r = qcow2_get_refcount(q, c, &rc, err);
		if (r)
			return r;
		run = rc ? 0 : run + 1;
		if (run == n) {
			*first = c + 1 - n;
			return 0;
		}
	}
	*first = limit;
	return 0;
}

int qcow2_alloc_clusters(struct qcow2 *q, uint64_t n, uint64_t *offset, struct verr *err)
{
	uint64_t first;
	int r;

	for (int tries = 0; tries < 64; tries++) {
		bool created = false;
		r = find_free(q, n, &first, err);
		if (r)
			return r;
		for (uint64_t c = first; c < first + n && !created; c += q->rb_entries -
		     c % q->rb_entries) {
			r = ensure_block(q, c, &created, err);
			if (r)
				return r;
		}
		if (!created)
			r = ensure_block(q, first + n - 1, &created, err);
		if (r)
			return r;
		if (created)
			continue; /* a new refcount block may sit in our run: look again */
		for (uint64_t c = first; c < first + n; c++) {
			r = qcow2_update_refcount(q, c, 1, err);
			if (r)
				return r;
		}
		if (n == 1 || first == q->free_hint)
			q->free_hint = first + n;
		if ((first + n) * q->cluster_size > q->file_end)
			q->file_end = (first + n) * q->cluster_size;
		*offset = first * q->cluster_size;
		return 0;
	}
	return verr_set(err, EIO, "%s: cannot find free clusters", q->name);
}

int qcow2_alloc_bytes(struct qcow2 *q, uint64_t len, uint64_t *offset, struct verr *err)
{
	uint64_t cs = q->cluster_size, cur = q->comp_cursor, off;
	int r;

	len = (len + 511) & ~511ull;
	if (cur && cur % cs && cs - cur % cs >= len) {
		uint64_t rc;

		/* Share the cluster only while its refcount can count one more
		 * (refcount_bits 1 or 2 run out fast); else start a new one. */
		r = qcow2_get_refcount(q, cur / cs, &rc, err);
		if (r)
			return r;
		if (rc < rc_max(q)) {
			r = qcow2_update_refcount(q, cur / cs, 1, err);
			if (r)
				return r;
			*offset = cur;
			q->comp_cursor = cur + len;
			return 0;
		}
	}
	r = qcow2_alloc_clusters(q, (len + cs - 1) / cs, &off, err);
	if (r)
		return r;
	*offset = off;
	q->comp_cursor = off + len;
	return 0;
}

int qcow2_free_now(struct qcow2 *q, uint64_t off, uint64_t len, struct verr *err)
{
	uint64_t cs = q->cluster_size;

	for (uint64_t c = off / cs; len && c <= (off + len - 1) / cs; c++) {
		int r = qcow2_update_refcount(q, c, -1, err);
		if (r)
			return r;
	}
	return 0;
}

int qcow2_defer_free(struct qcow2 *q, uint64_t off, uint64_t len, struct verr *err)
{
	if (q->n_deferred == QCOW2_MAX_DEFERRED) {
		int r = qcow2_flush_metadata(q, err);
		if (r)
			return r;
	}
	q->deferred[q->n_deferred].offset = off;
	q->deferred[q->n_deferred].length = len;
	q->n_deferred++;
	return 0;
}

int qcow2_apply_deferred(struct qcow2 *q, struct verr *err)
{
	int n = q->n_deferred;

	q->n_deferred = 0;
	for (int i = 0; i < n; i++) {
		int r = qcow2_free_now(q, q->deferred[i].offset, q->deferred[i].length, err);
		if (r)
			return r;
	}
	return 0;
}
