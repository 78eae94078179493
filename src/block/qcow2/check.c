/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Consistency check: count the references every cluster should have by
 * walking all metadata, compare with the stored refcounts, and optionally
 * repair (leaks: lower refcounts; errors: raise them and fix COPIED flags).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "block/file.h"
#include "block/qcow2/qcow2.h"

/* Findings go to stderr like qemu-img's, except during the silent repair of
 * a dirty image at open time. */
#define REPORT(q, ...) \
	do { if (!(q)->check_quiet) fprintf(stderr, __VA_ARGS__); } while (0)

struct refs {
	struct qcow2 *q;
	uint32_t *n;          /* computed references per cluster */
	uint64_t nclusters;
	struct block_check *res;
	uint64_t last_data;   /* for fragmentation statistics */
	uint64_t budget;      /* L2 entries we still agree to walk */
};

/* Hostile images can make many tables point at the same big L2 tables; a
 * real image never needs this many entries walked. */
#define CHECK_BUDGET (256ull << 20)

static void ref(struct refs *rf, uint64_t off, uint64_t len, const char *what)
{
	uint64_t cs = rf->q->cluster_size;

	if (!len)
		return;
	for (uint64_t c = off / cs; c <= (off + len - 1) / cs; c++) {
		if (c >= rf->nclusters || rf->n[c] == UINT32_MAX) {
			REPORT(rf->q, "ERROR %s at offset 0x%llx is beyond the end of the image\n",
				what, (unsigned long long)(c * cs));
			rf->res->corruptions++;
			return;
		}
		rf->n[c]++;
	}
}

static int walk_l2(struct refs *rf, uint64_t l2off, bool active, struct verr *err)
{
	struct qcow2 *q = rf->q;
	uint8_t *l2, *copy = malloc(q->cluster_size);
	int r;

	if (!copy)
		return verr_set(err, ENOMEM, "out of memory");
	r = qcow2_cache_get(q, &q->l2c, l2off, false, &l2, err);
	if (r) {
		free(copy);
		return r;
	}
	memcpy(copy, l2, q->cluster_size);
	if (rf->budget < q->l2_entries) {
		free(copy);
		return verr_set(err, EFBIG, "%s: metadata too large or too repetitive to check",
				q->name);
	}
	rf->budget -= q->l2_entries;
	for (uint64_t j = 0; j < q->l2_entries; j++) {
		uint64_t e = qcow2_l2_get(q, copy, j), off, len;
		if (e & QCOW2_OFLAG_COMPRESSED) {
			qcow2_compressed_range(q, e, &off, &len);
			ref(rf, off & ~511ull, len + (off & 511), "compressed cluster");
			if (active) {
				rf->res->compressed_clusters++;
				rf->res->allocated_clusters++;
			}
			continue;
		}
		off = e & QCOW2_OFFSET_MASK;
		if (e & QCOW2_L2_RESERVED || (q->version == 2 && (e & QCOW2_OFLAG_ZERO))) {
			REPORT(q, "ERROR L2 entry 0x%llx has reserved bits set\n",
				(unsigned long long)e);
			rf->res->corruptions++;
		}
		if (!off) {
			if (active && (e & QCOW2_OFLAG_ZERO))
				rf->res->allocated_clusters++;
			continue;
		}
		if (off % q->cluster_size) {
			REPORT(q, "ERROR offset=%llx: data cluster is not properly aligned; "
				"L2 entry corrupted.\n", (unsigned long long)off);
			rf->res->corruptions++;
			continue;
		}
		ref(rf, off, q->cluster_size, "data cluster");
		if (active) {
			rf->res->allocated_clusters++;
			if (rf->last_data && off != rf->last_data + q->cluster_size)
				rf->res->fragmented_clusters++;
			rf->last_data = off;
		}
	}
	free(copy);
	return 0;
}

static int walk_l1(struct refs *rf, const uint64_t *l1, uint32_t n, bool active,
		   struct verr *err)
{
	struct qcow2 *q = rf->q;

	for (uint32_t i = 0; i < n; i++) {
		uint64_t off = l1[i] & QCOW2_OFFSET_MASK;
		int r;
		if (!off)
			continue;
		if (off % q->cluster_size || off + q->cluster_size > q->file_end ||
		    (l1[i] & QCOW2_L1_RESERVED)) {
			REPORT(q, "ERROR L2 table offset 0x%llx (L1 index %u) is not aligned "
				"or beyond the end of the file\n", (unsigned long long)off, i);
			rf->res->corruptions++;
			continue;
		}
		ref(rf, off, q->cluster_size, "L2 table");
		r = walk_l2(rf, off, active, err);
		if (r)
			return r;
	}
	return 0;
}

static int walk_snapshots(struct refs *rf, struct verr *err)
{
	struct qcow2 *q = rf->q;

	ref(rf, q->snapshots_offset, q->snap_table_len, "snapshot table");
	for (uint32_t i = 0; i < q->nb_snapshots; i++) {
		struct qcow2_snapshot *s = &q->snaps[i];
		uint64_t *l1 = calloc(s->l1_size ? s->l1_size : 1, 8);
		int r;
		if (!l1)
			return verr_set(err, ENOMEM, "out of memory");
		ref(rf, s->l1_offset, (uint64_t)s->l1_size * 8, "snapshot L1 table");
		r = qcow2_pread(q, s->l1_offset, l1, (size_t)s->l1_size * 8, err);
		for (uint32_t k = 0; k < s->l1_size; k++)
			l1[k] = be64_get(&l1[k]);
		if (!r)
			r = walk_l1(rf, l1, s->l1_size, false, err);
		free(l1);
		if (r)
			return r;
	}
	return 0;
}

static int count_refs(struct refs *rf, struct verr *err)
{
	struct qcow2 *q = rf->q;
	int r;

	ref(rf, 0, q->cluster_size, "header");
	ref(rf, q->l1_offset, (uint64_t)q->l1_size * 8, "L1 table");
	ref(rf, q->rt_offset, (uint64_t)q->rt_clusters * q->cluster_size, "refcount table");
	for (uint64_t i = 0; i < q->rt_entries; i++)
		if (q->rt[i])
			ref(rf, q->rt[i], q->cluster_size, "refcount block");
	r = walk_l1(rf, q->l1, q->l1_size, true, err);
	if (!r)
		r = walk_snapshots(rf, err);
	return r;
}

/* Compare stored and computed refcounts; fix per mode. */
static int compare(struct refs *rf, enum block_fix fix, struct verr *err)
{
	struct qcow2 *q = rf->q;
	uint64_t end = rf->nclusters, limit = q->rt_entries * q->rb_entries;
	int r = 0;

	for (uint64_t bi = 0; bi < q->rt_entries; bi++)
		if (q->rt[bi] && (bi + 1) * q->rb_entries > end)
			end = (bi + 1) * q->rb_entries;
	if (end > limit && limit >= rf->nclusters)
		end = limit;
	/* Refcounts far past the end of the file are not worth a long walk. */
	if (end > rf->nclusters + (1ull << 20))
		end = rf->nclusters + (1ull << 20);
	for (uint64_t c = 0; c < end && !r; c++) {
		uint64_t stored, want = c < rf->nclusters ? rf->n[c] : 0;
		if (c / q->rb_entries < q->rt_entries && !q->rt[c / q->rb_entries] && !want) {
			c += q->rb_entries - 1 - c % q->rb_entries;
			continue;
		}
		r = qcow2_get_refcount(q, c, &stored, err);
		if (r || stored == want)
			continue;
		if (want && want > stored) {
			REPORT(q, "ERROR cluster %llu refcount=%llu reference=%llu\n",
				(unsigned long long)c, (unsigned long long)stored,
				(unsigned long long)want);
			rf->res->corruptions++;
			if (fix & BLOCK_FIX_ERRORS) {
				r = qcow2_update_refcount(q, c, (int64_t)(want - stored), err);
				rf->res->corruptions_fixed += !r;
			}
		} else {
			if (!(fix & BLOCK_FIX_LEAKS))
				REPORT(q, "Leaked cluster %llu refcount=%llu reference=%llu\n",
					(unsigned long long)c, (unsigned long long)stored,
					(unsigned long long)want);
			rf->res->leaks++;
			if (fix & BLOCK_FIX_LEAKS) {
				r = qcow2_update_refcount(q, c, -(int64_t)(stored - want), err);
				rf->res->leaks_fixed += !r;
			}
		}
	}
	return r;
}

static int check_copied(struct qcow2 *q, struct block_check *res, struct verr *err)
{
	for (uint32_t i = 0; i < q->l1_size; i++) {
		uint64_t l2off = q->l1[i] & QCOW2_OFFSET_MASK, rc;
		uint8_t *l2;
		int r;
		if (!l2off || l2off % q->cluster_size || l2off + q->cluster_size > q->file_end)
			continue;
		r = qcow2_get_refcount(q, l2off / q->cluster_size, &rc, err);
		if (r)
			return r;
		if ((rc == 1) != !!(q->l1[i] & QCOW2_OFLAG_COPIED)) {
			REPORT(q, "ERROR OFLAG_COPIED L2 cluster: l1_index=%u l1_entry=%llx "
				"refcount=%llu\n", i, (unsigned long long)q->l1[i],
				(unsigned long long)rc);
			res->corruptions++;
		}
		for (uint64_t j = 0; j < q->l2_entries; j++) {
			uint64_t e, host;
			r = qcow2_cache_get(q, &q->l2c, l2off, false, &l2, err);
			if (r)
				return r;
			e = qcow2_l2_get(q, l2, j);
			host = e & QCOW2_OFFSET_MASK;
			if ((e & QCOW2_OFLAG_COMPRESSED) || !host || host % q->cluster_size)
				continue;
			r = qcow2_get_refcount(q, host / q->cluster_size, &rc, err);
			if (r)
				return r;
			if ((rc == 1) != !!(e & QCOW2_OFLAG_COPIED)) {
				REPORT(q, "ERROR OFLAG_COPIED data cluster: l2_entry=%llx "
					"refcount=%llu\n", (unsigned long long)e,
					(unsigned long long)rc);
				res->corruptions++;
			}
		}
	}
	return 0;
}

static int run_check(struct qcow2 *q, enum block_fix fix, struct block_check *res,
		     struct verr *err)
{
	struct refs rf = { .q = q, .res = res, .budget = CHECK_BUDGET };
	int r;

	rf.nclusters = (q->file_end + q->cluster_size - 1) / q->cluster_size;
	rf.n = calloc(rf.nclusters ? rf.nclusters : 1, sizeof(uint32_t));
	if (!rf.n)
		return verr_set(err, ENOMEM, "%s: out of memory for %llu clusters", q->name,
				(unsigned long long)rf.nclusters);
	res->total_clusters = (q->bd->size + q->cluster_size - 1) / q->cluster_size;
	r = count_refs(&rf, err);
	if (!r)
		r = compare(&rf, fix, err);
	if (!r && (fix & BLOCK_FIX_ERRORS))
		r = qcow2_fix_copied(q, err);
	if (!r)
		r = check_copied(q, res, err);
	for (uint64_t c = rf.nclusters; c > 0; c--)
		if (rf.n[c - 1]) {
			res->image_end_offset = c * q->cluster_size;
			break;
		}
	free(rf.n);
	return r;
}

int qcow2_check(struct block_dev *bd, enum block_fix fix, struct block_check *res,
		struct verr *err)
{
	struct qcow2 *q = bd->opaque;
	struct block_check first = {0};
	int r;

	memset(res, 0, sizeof(*res));
	if (fix && bd->read_only)
		return verr_set(err, EROFS, "%s: repair needs the image open read-write", q->name);
	if (!fix)
		return run_check(q, BLOCK_FIX_NONE, res, err);
	r = qcow2_flush_metadata(q, err);
	if (!r)
		r = run_check(q, fix, &first, err);
	if (!r)
		r = qcow2_flush_metadata(q, err);
	if (!r)
		r = qcow2_flush_metadata(q, err);
	if (r)
		return r;
	/* Report what is left after the repair, plus what was fixed. */
	r = run_check(q, BLOCK_FIX_NONE, res, err);
	res->leaks_fixed = first.leaks_fixed;
	res->corruptions_fixed = first.corruptions_fixed;
	if (first.corruptions > first.corruptions_fixed && !res->corruptions)
		res->corruptions_fixed = first.corruptions;
	return r;
}
