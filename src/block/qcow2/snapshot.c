/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Internal snapshots: a snapshot is a copy of the L1 table plus one more
 * reference on every L2 table and data cluster it reaches. Each step below
 * makes refcounts too high rather than too low if it is interrupted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "block/file.h"
#include "block/qcow2/qcow2.h"

#define SN_MAX_TABLE (64u << 20)
#define SN_MAX_EXTRA 1024
#define SN_MAX_L1_TOTAL (256u << 20)

void qcow2_snapshots_free(struct qcow2 *q)
{
	for (uint32_t i = 0; q->snaps && i < q->nb_snapshots; i++) {
		free(q->snaps[i].id);
		free(q->snaps[i].name);
		free(q->snaps[i].extra);
	}
	free(q->snaps);
	q->snaps = NULL;
}

static char *dup_bytes(const uint8_t *p, size_t n)
{
	char *s = malloc(n + 1);
	if (s) {
		memcpy(s, p, n);
		s[n] = 0;
	}
	return s;
}

static int parse_one(struct qcow2 *q, const uint8_t *t, uint64_t len, uint64_t *pos,
		     struct qcow2_snapshot *s, struct verr *err)
{
	uint64_t p = *pos, need;
	uint16_t idl, nl;

	if (len - p < 40)
		return verr_set(err, EINVAL, "%s: snapshot table truncated at entry offset %llu",
				q->name, (unsigned long long)p);
	s->l1_offset = be64_get(t + p);
	s->l1_size = be32_get(t + p + 8);
	idl = be16_get(t + p + 12);
	nl = be16_get(t + p + 14);
	s->date_sec = be32_get(t + p + 16);
	s->date_nsec = be32_get(t + p + 20);
	s->vm_clock_nsec = be64_get(t + p + 24);
	s->vm_state_size = be32_get(t + p + 32);
	s->extra_size = be32_get(t + p + 36);
	if (s->extra_size > SN_MAX_EXTRA)
		return verr_set(err, EINVAL, "%s: snapshot extra_data_size %u is too large",
				q->name, s->extra_size);
	need = 40ull + s->extra_size + idl + nl;
	if (len - p < need)
		return verr_set(err, EINVAL, "%s: snapshot entry at table offset %llu runs past "
				"the table", q->name, (unsigned long long)p);
	s->extra = malloc(s->extra_size ? s->extra_size : 1);
	s->id = dup_bytes(t + p + 40 + s->extra_size, idl);
	s->name = dup_bytes(t + p + 40 + s->extra_size + idl, nl);
	if (!s->extra || !s->id || !s->name)
		return verr_set(err, ENOMEM, "out of memory");
	memcpy(s->extra, t + p + 40, s->extra_size);
	s->disk_size = s->extra_size >= 16 ? be64_get(s->extra + 8) : q->bd->size;
	s->icount = s->extra_size >= 24 ? be64_get(s->extra + 16) : UINT64_MAX;
	if ((uint64_t)s->l1_size * 8 > QCOW2_MAX_L1_BYTES ||
	    (s->l1_size && qcow2_check_offset(q, s->l1_offset, (uint64_t)s->l1_size * 8,
					      "snapshot L1 table", err)))
		return verr_set(err, EINVAL, "%s: snapshot '%s' L1 table at 0x%llx (%u entries) is "
				"invalid", q->name, s->id, (unsigned long long)s->l1_offset,
				s->l1_size);
	*pos = p + ((need + 7) & ~7ull);
	return 0;
}

int qcow2_snapshots_read(struct qcow2 *q, struct verr *err)
{
	uint64_t len, pos = 0;
	uint8_t *t;
	int r = 0;

	if (!q->nb_snapshots)
		return 0;
	len = q->file_end - q->snapshots_offset;
	if (len > SN_MAX_TABLE)
		len = SN_MAX_TABLE;
	t = malloc(len);
	q->snaps = calloc(q->nb_snapshots, sizeof(*q->snaps));
	if (!t || !q->snaps) {
		free(t);
		return verr_set(err, ENOMEM, "out of memory");
	}
	r = qcow2_pread(q, q->snapshots_offset, t, len, err);
	uint64_t total = 0;
	for (uint32_t i = 0; i < q->nb_snapshots && !r; i++) {
		r = parse_one(q, t, len, &pos, &q->snaps[i], err);
		total += (uint64_t)q->snaps[i].l1_size * 8;
		if (!r && total > SN_MAX_L1_TOTAL)
			r = verr_set(err, EFBIG, "%s: snapshot L1 tables total more than %u bytes",
				     q->name, SN_MAX_L1_TOTAL);
	}
	free(t);
	q->snap_table_len = pos;
	return r;
}

static int serialize(struct qcow2 *q, uint8_t **out, uint64_t *outlen, struct verr *err)
{
	uint64_t len = 0, p = 0;
	uint8_t *t;

	for (uint32_t i = 0; i < q->nb_snapshots; i++)
		len += (40 + q->snaps[i].extra_size + strlen(q->snaps[i].id) +
			strlen(q->snaps[i].name) + 7) & ~7ull;
	t = calloc(1, len ? len : 8);
	if (!t)
		return verr_set(err, ENOMEM, "out of memory");
	for (uint32_t i = 0; i < q->nb_snapshots; i++) {
		struct qcow2_snapshot *s = &q->snaps[i];
		size_t idl = strlen(s->id), nl = strlen(s->name);
		be64_put(t + p, s->l1_offset);
		be32_put(t + p + 8, s->l1_size);
		be16_put(t + p + 12, (uint16_t)idl);
		be16_put(t + p + 14, (uint16_t)nl);
		be32_put(t + p + 16, s->date_sec);
		be32_put(t + p + 20, s->date_nsec);
		be64_put(t + p + 24, s->vm_clock_nsec);
		be32_put(t + p + 32, s->vm_state_size);
		be32_put(t + p + 36, s->extra_size);
		memcpy(t + p + 40, s->extra, s->extra_size);
		memcpy(t + p + 40 + s->extra_size, s->id, idl);
		memcpy(t + p + 40 + s->extra_size + idl, s->name, nl);
		p += (40 + s->extra_size + idl + nl + 7) & ~7ull;
	}
	*out = t;
	*outlen = len;
	return 0;
}

/* Write the table to new clusters, switch the header, free the old table. */
static int write_table(struct qcow2 *q, struct verr *err)
{
	uint64_t len = 0, off = 0, old = q->snapshots_offset, cs = q->cluster_size;
	uint64_t old_len = 0;
	uint8_t *t = NULL;
	int r;

	r = serialize(q, &t, &len, err);
	if (r)
		return r;
	if (len)
		r = qcow2_alloc_clusters(q, (len + cs - 1) / cs, &off, err);
	if (!r)
		r = qcow2_flush_refcounts(q, err);
	if (!r && len)
		r = qcow2_pwrite(q, off, t, len, err);
	free(t);
	if (!r)
		r = qcow2_sync(q, err);
	if (r)
		return r;
	old_len = q->snapshots_offset ? q->snap_table_len : 0;
	q->snapshots_offset = off;
	q->snap_table_len = len;
	r = qcow2_header_update(q, err);
	if (!r)
		r = qcow2_sync(q, err);
	if (!r && old && old_len)
		r = qcow2_free_now(q, old, old_len, err);
	return r;
}

int qcow2_tree_refs(struct qcow2 *q, const uint64_t *l1, uint32_t l1_size, int delta,
		    struct verr *err)
{
	for (uint32_t i = 0; i < l1_size; i++) {
		uint64_t l2off = l1[i] & QCOW2_OFFSET_MASK;
		uint8_t *l2;
		int r;
		if (!l2off)
			continue;
		r = qcow2_cache_get(q, &q->l2c, l2off, false, &l2, err);
		for (uint64_t j = 0; j < q->l2_entries && !r; j++) {
			uint64_t e = qcow2_l2_get(q, l2, j), off, len;
			if (e & QCOW2_OFLAG_COMPRESSED) {
				qcow2_compressed_range(q, e, &off, &len);
				off &= ~511ull;
				for (uint64_t c = off / q->cluster_size;
				     c <= (off + len - 1) / q->cluster_size && !r; c++)
					r = qcow2_update_refcount(q, c, delta, err);
			} else if (e & QCOW2_OFFSET_MASK) {
				r = qcow2_update_refcount(q, (e & QCOW2_OFFSET_MASK) /
							  q->cluster_size, delta, err);
			}
			/* The refcount cache never evicts L2 tables, but reload
			 * to be safe against future changes. */
			if (!r)
				r = qcow2_cache_get(q, &q->l2c, l2off, false, &l2, err);
		}
		if (!r)
			r = qcow2_update_refcount(q, l2off / q->cluster_size, delta, err);
		if (r)
			return r;
	}
	return 0;
}

/* COPIED must be set exactly where the refcount is 1 in the active tables. */
int qcow2_fix_copied(struct qcow2 *q, struct verr *err)
{
	for (uint32_t i = 0; i < q->l1_size; i++) {
		uint64_t l2off = q->l1[i] & QCOW2_OFFSET_MASK, rc;
		uint8_t *l2;
		int r;
		if (!l2off)
			continue;
		r = qcow2_get_refcount(q, l2off / q->cluster_size, &rc, err);
		if (r)
			return r;
		uint64_t want = rc == 1 ? (q->l1[i] | QCOW2_OFLAG_COPIED)
					: (q->l1[i] & ~QCOW2_OFLAG_COPIED);
		if (want != q->l1[i]) {
			q->l1[i] = want;
			q->l1_dirty = true;
		}
		for (uint64_t j = 0; j < q->l2_entries; j++) {
			uint64_t e, host, ne;
			r = qcow2_cache_get(q, &q->l2c, l2off, false, &l2, err);
			if (r)
				return r;
			e = qcow2_l2_get(q, l2, j);
			host = e & QCOW2_OFFSET_MASK;
			if ((e & QCOW2_OFLAG_COMPRESSED) || !host)
				continue;
			r = qcow2_get_refcount(q, host / q->cluster_size, &rc, err);
			if (r)
				return r;
			ne = rc == 1 ? (e | QCOW2_OFLAG_COPIED) : (e & ~QCOW2_OFLAG_COPIED);
			if (ne != e) {
				r = qcow2_cache_get(q, &q->l2c, l2off, false, &l2, err);
				if (r)
					return r;
				qcow2_l2_set(q, l2, j, ne);
				qcow2_cache_mark_dirty(&q->l2c, l2);
			}
		}
	}
	return 0;
}

static int read_l1(struct qcow2 *q, uint64_t off, uint32_t n, uint64_t **out, struct verr *err)
{
	uint64_t *l1 = calloc(n ? n : 1, 8);
	int r;

	if (!l1)
		return verr_set(err, ENOMEM, "out of memory");
	r = qcow2_pread(q, off, l1, (size_t)n * 8, err);
	for (uint32_t i = 0; i < n; i++) {
		l1[i] = be64_get(&l1[i]);
		if (!r && (l1[i] & QCOW2_OFFSET_MASK) &&
		    qcow2_check_offset(q, l1[i] & QCOW2_OFFSET_MASK, q->cluster_size,
				       "snapshot L2 table", err))
			r = -EIO;
	}
	if (r) {
		free(l1);
		return r;
	}
	*out = l1;
	return 0;
}

static int find(struct qcow2 *q, const char *name)
{
	for (uint32_t i = 0; i < q->nb_snapshots; i++)
		if (!strcmp(q->snaps[i].name, name))
			return (int)i;
	for (uint32_t i = 0; i < q->nb_snapshots; i++)
		if (!strcmp(q->snaps[i].id, name))
			return (int)i;
	return -1;
}

int qcow2_snapshot_list(struct block_dev *bd, struct block_snapshot_info **list, int *n,
			struct verr *err)
{
	struct qcow2 *q = bd->opaque;
	struct block_snapshot_info *l = calloc(q->nb_snapshots + 1, sizeof(*l));

	if (!l)
		return verr_set(err, ENOMEM, "out of memory");
	for (uint32_t i = 0; i < q->nb_snapshots; i++) {
		struct qcow2_snapshot *s = &q->snaps[i];
		snprintf(l[i].id, sizeof(l[i].id), "%s", s->id);
		snprintf(l[i].name, sizeof(l[i].name), "%s", s->name);
		l[i].vm_state_size = s->extra_size >= 8 ? be64_get(s->extra) : s->vm_state_size;
		l[i].date_sec = s->date_sec;
		l[i].date_nsec = s->date_nsec;
		l[i].vm_clock_nsec = s->vm_clock_nsec;
		l[i].disk_size = s->disk_size;
		l[i].icount = s->icount;
	}
	*list = l;
	*n = (int)q->nb_snapshots;
	return 0;
}

static int next_id(struct qcow2 *q, char *buf, size_t len)
{
	unsigned long max = 0;
	for (uint32_t i = 0; i < q->nb_snapshots; i++) {
		unsigned long v = strtoul(q->snaps[i].id, NULL, 10);
		if (v > max)
			max = v;
	}
	return snprintf(buf, len, "%lu", max + 1);
}

int qcow2_snapshot_create(struct block_dev *bd, const char *name, struct verr *err)
{
	struct qcow2 *q = bd->opaque;
	uint64_t cs = q->cluster_size, l1b = (uint64_t)q->l1_size * 8, off = 0;
	struct qcow2_snapshot *ns, s = {0};
	struct timespec ts;
	char id[32];
	uint64_t *copy;
	int r;

	if (find(q, name) >= 0)
		return verr_set(err, EEXIST, "%s: a snapshot named '%s' already exists", q->name,
				name);
	if (strlen(name) > 65535 || q->nb_snapshots >= QCOW2_MAX_SNAPSHOTS)
		return verr_set(err, EINVAL, "%s: snapshot name too long or too many snapshots",
				q->name);
	r = qcow2_flush_metadata(q, err);
	if (!r)
		r = qcow2_tree_refs(q, q->l1, q->l1_size, 1, err);
	if (!r)
		r = qcow2_flush_metadata(q, err);
	if (!r)
		r = qcow2_fix_copied(q, err);
	if (!r)
		r = qcow2_flush_metadata(q, err);
	if (!r && l1b)
		r = qcow2_alloc_clusters(q, (l1b + cs - 1) / cs, &off, err);
	if (!r)
		r = qcow2_flush_refcounts(q, err);
	if (r)
		return r;
	copy = calloc(1, (l1b + cs - 1) / cs * cs + 8);
	if (!copy)
		return verr_set(err, ENOMEM, "out of memory");
	for (uint32_t i = 0; i < q->l1_size; i++)
		be64_put(&copy[i], q->l1[i] & ~QCOW2_OFLAG_COPIED);
	if (l1b)
		r = qcow2_pwrite(q, off, copy, (l1b + cs - 1) / cs * cs, err);
	free(copy);
	if (r)
		return r;
	clock_gettime(CLOCK_REALTIME, &ts);
	next_id(q, id, sizeof(id));
	s.l1_offset = off;
	s.l1_size = q->l1_size;
	s.id = strdup(id);
	s.name = strdup(name);
	s.date_sec = (uint32_t)ts.tv_sec;
	s.date_nsec = (uint32_t)ts.tv_nsec;
	/* vm_state_size_large, disk_size and icount, as qemu-img writes them. */
	s.extra_size = 24;
	s.extra = calloc(1, 24);
	s.disk_size = bd->size;
	s.icount = 0;
	ns = realloc(q->snaps, (q->nb_snapshots + 1) * sizeof(*ns));
	if (!s.id || !s.name || !s.extra || !ns) {
		free(s.id);
		free(s.name);
		free(s.extra);
		if (ns)
			q->snaps = ns;
		return verr_set(err, ENOMEM, "out of memory");
	}
	be64_put(s.extra + 8, bd->size);
	q->snaps = ns;
	q->snaps[q->nb_snapshots++] = s;
	return write_table(q, err);
}

int qcow2_snapshot_apply(struct block_dev *bd, const char *name, struct verr *err)
{
	struct qcow2 *q = bd->opaque;
	int i = find(q, name);
	uint64_t *snap_l1, *old_l1;
	uint32_t old_size = q->l1_size;
	int r;

	if (i < 0)
		return verr_set(err, ENOENT, "%s: no snapshot named '%s'", q->name, name);
	r = read_l1(q, q->snaps[i].l1_offset, q->snaps[i].l1_size, &snap_l1, err);
	if (r)
		return r;
	r = qcow2_flush_metadata(q, err);
	if (!r)
		r = qcow2_grow_l1(q, q->snaps[i].l1_size, err);
	if (!r)
		r = qcow2_tree_refs(q, snap_l1, q->snaps[i].l1_size, 1, err);
	if (!r)
		r = qcow2_flush_metadata(q, err);
	old_l1 = calloc(q->l1_size ? q->l1_size : 1, 8);
	if (r || !old_l1) {
		free(snap_l1);
		free(old_l1);
		return r ? r : verr_set(err, ENOMEM, "out of memory");
	}
	old_size = q->l1_size;
	memcpy(old_l1, q->l1, (size_t)old_size * 8);
	memset(q->l1, 0, (size_t)q->l1_size * 8);
	memcpy(q->l1, snap_l1, (size_t)q->snaps[i].l1_size * 8);
	q->l1_dirty = true;
	bd->size = q->snaps[i].disk_size;
	q->zcache_entry = 0;
	r = qcow2_flush_metadata(q, err);
	if (!r)
		r = qcow2_header_update(q, err);
	if (!r)
		r = qcow2_sync(q, err);
	if (!r)
		r = qcow2_tree_refs(q, old_l1, old_size, -1, err);
	if (!r)
		r = qcow2_fix_copied(q, err);
	if (!r)
		r = qcow2_flush_metadata(q, err);
	free(snap_l1);
	free(old_l1);
	return r;
}

int qcow2_snapshot_delete(struct block_dev *bd, const char *name, struct verr *err)
{
	struct qcow2 *q = bd->opaque;
	int i = find(q, name);
	struct qcow2_snapshot s;
	uint64_t *l1;
	int r;

	if (i < 0)
		return verr_set(err, ENOENT, "%s: no snapshot named '%s'", q->name, name);
	s = q->snaps[i];
	r = read_l1(q, s.l1_offset, s.l1_size, &l1, err);
	if (!r)
		r = qcow2_flush_metadata(q, err);
	if (r) {
		if (!r)
			free(l1);
		return r;
	}
	memmove(&q->snaps[i], &q->snaps[i + 1], (q->nb_snapshots - (uint32_t)i - 1) * sizeof(s));
	q->nb_snapshots--;
	r = write_table(q, err);
	if (!r)
		r = qcow2_tree_refs(q, l1, s.l1_size, -1, err);
	if (!r && s.l1_size)
		r = qcow2_free_now(q, s.l1_offset, (uint64_t)s.l1_size * 8, err);
	if (!r)
		r = qcow2_fix_copied(q, err);
	if (!r)
		r = qcow2_flush_metadata(q, err);
	free(l1);
	free(s.id);
	free(s.name);
	free(s.extra);
	return r;
}
