/* SPDX-License-Identifier: Apache-2.0 */
/* Guest-to-host mapping through L1 and L2 tables, and cluster allocation. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "block/file.h"
#include "block/qcow2/qcow2.h"

uint64_t qcow2_l1_needed(const struct qcow2 *q, uint64_t size)
{
	uint64_t per_l2 = q->l2_entries << q->cluster_bits;
	return (size + per_l2 - 1) / per_l2;
}

uint64_t qcow2_l2_get(const struct qcow2 *q, const uint8_t *l2, uint64_t i)
{
	return be64_get(l2 + i * q->l2_entry_size);
}

void qcow2_l2_set(const struct qcow2 *q, uint8_t *l2, uint64_t i, uint64_t v)
{
	be64_put(l2 + i * q->l2_entry_size, v);
}

static uint64_t l1_index(const struct qcow2 *q, uint64_t guest)
{
	return guest >> (q->cluster_bits + q->l2_bits);
}

static uint64_t l2_index(const struct qcow2 *q, uint64_t guest)
{
	return (guest >> q->cluster_bits) & (q->l2_entries - 1);
}

int qcow2_compressed_range(const struct qcow2 *q, uint64_t entry, uint64_t *off, uint64_t *len)
{
	uint32_t x = 62 - (q->cluster_bits - 8);
	uint64_t nsec = (entry >> x) & ((1ull << (q->cluster_bits - 8)) - 1);

	*off = entry & ((1ull << x) - 1);
	*len = (nsec + 1) * 512 - (*off & 511);
	return 0;
}

static int bad_entry(struct qcow2 *q, const char *what, uint64_t guest, uint64_t e,
		     struct verr *err)
{
	return verr_set(err, EIO, "%s: %s for guest offset 0x%llx (entry 0x%llx) is invalid or "
			"points outside the file", q->name, what, (unsigned long long)guest,
			(unsigned long long)e);
}

static int l2_offset(struct qcow2 *q, uint64_t guest, uint64_t *off, struct verr *err)
{
	uint64_t i = l1_index(q, guest), e;

	*off = 0;
	if (i >= q->l1_size)
		return 0;
	e = q->l1[i];
	*off = e & QCOW2_OFFSET_MASK;
	if (*off && ((e & QCOW2_L1_RESERVED) || *off % q->cluster_size ||
		     *off + q->cluster_size > q->file_end))
		return bad_entry(q, "L1 entry", guest, e, err);
	return 0;
}

static int classify(struct qcow2 *q, uint64_t guest, uint64_t e, struct qcow2_map *m,
		    struct verr *err)
{
	m->entry = e;
	if (e & QCOW2_OFLAG_COMPRESSED) {
		uint64_t off, len;
		qcow2_compressed_range(q, e, &off, &len);
		if (q->ext_l2 ? m->bitmap != 0 : false)
			return bad_entry(q, "compressed L2 entry bitmap", guest, e, err);
		if (!off || off >= q->file_end || (e & QCOW2_OFLAG_COPIED))
			return bad_entry(q, "compressed L2 entry", guest, e, err);
		m->type = QC_COMPRESSED;
		m->host = off;
		return 0;
	}
	m->host = e & QCOW2_OFFSET_MASK;
	if ((e & QCOW2_L2_RESERVED) || m->host % q->cluster_size ||
	    (m->host && m->host >= q->file_end))
		return bad_entry(q, "L2 entry", guest, e, err);
	if (q->version == 2 && (e & QCOW2_OFLAG_ZERO))
		return bad_entry(q, "L2 entry (zero flag in a v2 image)", guest, e, err);
	if (!q->ext_l2 && (e & QCOW2_OFLAG_ZERO))
		m->type = QC_ZERO;
	else if (m->host)
		m->type = QC_NORMAL;
	else
		m->type = QC_UNALLOC;
	if (q->ext_l2 && (m->bitmap & (m->bitmap >> 32)))
		return bad_entry(q, "extended L2 bitmap (allocated and zero)", guest, e, err);
	if (q->ext_l2 && !m->host && (uint32_t)m->bitmap)
		return bad_entry(q, "extended L2 bitmap (allocated without offset)", guest, e, err);
	return 0;
}

int qcow2_lookup(struct qcow2 *q, uint64_t guest, struct qcow2_map *m, struct verr *err)
{
	uint64_t l2off, i = l2_index(q, guest);
	uint8_t *l2;
	int r = l2_offset(q, guest, &l2off, err);

	memset(m, 0, sizeof(*m));
	if (r || !l2off)
		return r;
	r = qcow2_cache_get(q, &q->l2c, l2off, false, &l2, err);
	if (r)
		return r;
	if (q->ext_l2)
		m->bitmap = be64_get(l2 + i * 16 + 8);
	return classify(q, guest, qcow2_l2_get(q, l2, i), m, err);
}

/* Returns the L2 table for guest, allocating it, or copying it when it is
 * shared with a snapshot, so the caller may modify it. */
int qcow2_get_l2(struct qcow2 *q, uint64_t guest, bool alloc, uint8_t **l2, struct verr *err)
{
	uint64_t i = l1_index(q, guest), old, nw;
	uint8_t *tmp;
	int r = l2_offset(q, guest, &old, err);

	if (r)
		return r;
	if (i >= q->l1_size)
		return verr_set(err, EINVAL, "%s: guest offset 0x%llx beyond the L1 table", q->name,
				(unsigned long long)guest);
	if (old && (q->l1[i] & QCOW2_OFLAG_COPIED))
		return qcow2_cache_get(q, &q->l2c, old, false, l2, err);
	if (!alloc)
		return verr_set(err, EINVAL, "%s: no L2 table", q->name);
	tmp = malloc(q->cluster_size);
	if (!tmp)
		return verr_set(err, ENOMEM, "out of memory");
	if (old) {
		uint8_t *src;
		r = qcow2_cache_get(q, &q->l2c, old, false, &src, err);
		if (!r)
			memcpy(tmp, src, q->cluster_size);
	}
	if (!r)
		r = qcow2_alloc_clusters(q, 1, &nw, err);
	if (!r)
		r = qcow2_cache_get(q, &q->l2c, nw, true, l2, err);
	if (!r && old) {
		memcpy(*l2, tmp, q->cluster_size);
		r = qcow2_defer_free(q, old, q->cluster_size, err);
	}
	free(tmp);
	if (r)
		return r;
	q->l1[i] = nw | QCOW2_OFLAG_COPIED;
	q->l1_dirty = true;
	return 0;
}

static int read_compressed(struct qcow2 *q, const struct qcow2_map *m, struct verr *err)
{
	uint64_t off, len;
	int r;

	if (q->zcache_entry == m->entry && q->zcache_entry)
		return 0;
	qcow2_compressed_range(q, m->entry, &off, &len);
	if (len > 2ull * q->cluster_size + 512)
		return verr_set(err, EIO, "%s: compressed cluster at 0x%llx is too long", q->name,
				(unsigned long long)off);
	q->zcache_entry = 0;
	r = qcow2_pread(q, off, q->zbuf, (size_t)len, err);
	if (!r)
		r = qcow2_decompress(q, q->zbuf, (size_t)len, q->zcache, err);
	if (!r)
		q->zcache_entry = m->entry;
	return r;
}

static int read_below(struct qcow2 *q, uint64_t guest, uint8_t *buf, size_t n, struct verr *err)
{
	struct block_dev *b = q->bd->backing;
	uint64_t avail;

	if (!b || guest >= b->size) {
		memset(buf, 0, n);
		return 0;
	}
	avail = b->size - guest < n ? b->size - guest : n;
	memset(buf + avail, 0, n - avail);
	return block_read(b, guest, buf, (size_t)avail, err);
}

/* Subclusters: each 1/32 of the cluster is data, zero or unallocated. */
static int read_subclusters(struct qcow2 *q, const struct qcow2_map *m, uint64_t guest,
			    uint8_t *buf, uint64_t in, size_t n, struct verr *err)
{
	uint64_t sc = q->cluster_size / 32;

	while (n) {
		uint64_t s = in / sc, chunk = sc - in % sc;
		int r = 0;
		if (chunk > n)
			chunk = n;
		if (m->bitmap & (1ull << s))
			r = qcow2_pread(q, m->host + in, buf, (size_t)chunk, err);
		else if (m->bitmap & (1ull << (s + 32)) || m->type == QC_ZERO)
			memset(buf, 0, (size_t)chunk);
		else
			r = read_below(q, guest - (guest % q->cluster_size) + in, buf,
				       (size_t)chunk, err);
		if (r)
			return r;
		buf += chunk;
		in += chunk;
		n -= chunk;
	}
	return 0;
}

int qcow2_read_cluster(struct qcow2 *q, uint64_t guest, uint8_t *buf, uint64_t in, size_t n,
		       struct verr *err)
{
	struct qcow2_map m;
	int r = qcow2_lookup(q, guest, &m, err);

	if (r)
		return r;
	if (q->ext_l2 && m.type != QC_COMPRESSED)
		return read_subclusters(q, &m, guest, buf, in, n, err);
	switch (m.type) {
	case QC_UNALLOC:
		return read_below(q, guest, buf, n, err);
	case QC_ZERO:
		memset(buf, 0, n);
		return 0;
	case QC_NORMAL:
		return qcow2_pread(q, m.host + in, buf, n, err);
	case QC_COMPRESSED:
		r = read_compressed(q, &m, err);
		if (!r)
			memcpy(buf, q->zcache + in, n);
		return r;
	}
	return 0;
}

/* Release what an L2 entry pointed to, once the new entry is durable. */
static int drop_entry(struct qcow2 *q, uint64_t e, struct verr *err)
{
	uint64_t off, len;

	if (e & QCOW2_OFLAG_COMPRESSED) {
		qcow2_compressed_range(q, e, &off, &len);
		return qcow2_defer_free(q, off & ~511ull, len + (off & 511), err);
	}
	off = e & QCOW2_OFFSET_MASK;
	return off ? qcow2_defer_free(q, off, q->cluster_size, err) : 0;
}

int qcow2_write_cluster(struct qcow2 *q, uint64_t guest, const uint8_t *buf, uint64_t in,
			size_t n, struct verr *err)
{
	uint64_t cs = q->cluster_size, base = guest - guest % cs, i = l2_index(q, guest);
	uint64_t e, host, nw;
	uint8_t *l2, *full = NULL;
	int r = qcow2_get_l2(q, guest, true, &l2, err);

	if (r)
		return r;
	e = qcow2_l2_get(q, l2, i);
	host = e & QCOW2_OFFSET_MASK;
	if ((e & QCOW2_OFLAG_COPIED) && !(e & QCOW2_OFLAG_COMPRESSED) && host &&
	    !(e & QCOW2_OFLAG_ZERO)) {
		if (host + cs > q->file_end || host % cs)
			return bad_entry(q, "L2 entry", guest, e, err);
		return qcow2_pwrite(q, host + in, buf, n, err);
	}
	if (n < cs) {
		full = file_alloc(cs);
		if (!full)
			return verr_set(err, ENOMEM, "out of memory");
		r = qcow2_read_cluster(q, base, full, 0, cs, err);
		memcpy(full + in, buf, n);
		buf = full;
	}
	if (!r)
		r = qcow2_alloc_clusters(q, 1, &nw, err);
	if (!r)
		r = qcow2_pwrite(q, nw, buf, cs, err);
	free(full);
	if (r)
		return r;
	/* The table may have been evicted while we allocated: fetch it again. */
	r = qcow2_get_l2(q, guest, true, &l2, err);
	if (r)
		return r;
	qcow2_l2_set(q, l2, i, nw | QCOW2_OFLAG_COPIED);
	qcow2_cache_mark_dirty(&q->l2c, l2);
	if (q->zcache_entry == e)
		q->zcache_entry = 0;
	return drop_entry(q, e, err);
}

/* Make a whole cluster read as zeros (or, for discard, fall through to the
 * backing file when that is what the guest expects). */
int qcow2_zero_cluster(struct qcow2 *q, uint64_t guest, bool discard, struct verr *err)
{
	uint64_t i = l2_index(q, guest), e, nv;
	struct qcow2_map m;
	uint8_t *l2;
	int r = qcow2_lookup(q, guest, &m, err);

	if (r)
		return r;
	if (q->version == 2 || discard) {
		if (q->bd->backing && !discard)
			return -ENOTSUP;
		if (m.type == QC_UNALLOC && !m.entry)
			return 0;
		nv = 0; /* discarded data reads from below, as unwritten data does */
	} else {
		if (m.type == QC_ZERO && !m.host)
			return 0;
		nv = QCOW2_OFLAG_ZERO;
	}
	r = qcow2_get_l2(q, guest, true, &l2, err);
	if (r)
		return r;
	e = qcow2_l2_get(q, l2, i);
	qcow2_l2_set(q, l2, i, nv);
	qcow2_cache_mark_dirty(&q->l2c, l2);
	if (q->zcache_entry == e)
		q->zcache_entry = 0;
	return drop_entry(q, e, err);
}

/* Move the active L1 table to a bigger one; old one freed after the switch. */
int qcow2_grow_l1(struct qcow2 *q, uint64_t min_size, struct verr *err)
{
	uint64_t cs = q->cluster_size, bytes = min_size * 8, nw, old = q->l1_offset;
	uint64_t old_bytes = (uint64_t)q->l1_size * 8;
	uint64_t *l1;
	int r;

	if (min_size <= q->l1_size)
		return 0;
	if (bytes > QCOW2_MAX_L1_BYTES)
		return verr_set(err, EFBIG, "%s: L1 table would exceed %u bytes", q->name,
				QCOW2_MAX_L1_BYTES);
	l1 = calloc(1, (bytes + cs - 1) / cs * cs);
	if (!l1)
		return verr_set(err, ENOMEM, "out of memory");
	memcpy(l1, q->l1, old_bytes);
	r = qcow2_flush_metadata(q, err);
	if (!r)
		r = qcow2_alloc_clusters(q, (bytes + cs - 1) / cs, &nw, err);
	if (!r)
		r = qcow2_flush_refcounts(q, err);
	for (uint64_t i = 0; i < min_size; i++)
		be64_put(&l1[i], l1[i]);
	if (!r)
		r = qcow2_pwrite(q, nw, l1, (bytes + cs - 1) / cs * cs, err);
	for (uint64_t i = 0; i < min_size; i++)
		l1[i] = be64_get(&l1[i]);
	if (!r)
		r = qcow2_sync(q, err);
	if (r) {
		free(l1);
		return r;
	}
	free(q->l1);
	q->l1 = l1;
	q->l1_offset = nw;
	q->l1_size = (uint32_t)min_size;
	r = qcow2_header_update(q, err);
	if (!r)
		r = qcow2_sync(q, err);
	if (!r && old_bytes)
		r = qcow2_free_now(q, old, old_bytes, err);
	return r;
}
