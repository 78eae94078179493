/* SPDX-License-Identifier: Apache-2.0 */
/* The qcow2 driver: open/close and the I/O operations of the ops table. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>

#include "block/file.h"
#include "block/qcow2/qcow2.h"

#define L2_CACHE_DEFAULT (1u << 20)
#define RB_CACHE_ENTRIES 8

int qcow2_pread(struct qcow2 *q, uint64_t off, void *buf, size_t len, struct verr *err)
{
	return file_pread(q->bd, off, buf, len, err);
}

int qcow2_pwrite(struct qcow2 *q, uint64_t off, const void *buf, size_t len, struct verr *err)
{
	int r;

	if (off < q->cluster_size && off + len > 0 && q->file_end >= q->cluster_size &&
	    len != 0 && off != 0)
		return verr_set(err, EIO, "%s: refusing a write at 0x%llx into the header cluster",
				q->name, (unsigned long long)off);
	r = file_pwrite(q->bd, off, buf, len, err);
	if (!r && off + len > q->file_end)
		q->file_end = off + len;
	return r;
}

int qcow2_sync(struct qcow2 *q, struct verr *err)
{
	return file_sync(q->bd, err);
}

int qcow2_check_offset(struct qcow2 *q, uint64_t off, uint64_t len, const char *what,
		       struct verr *err)
{
	if (off % q->cluster_size || off < q->cluster_size || off > q->file_end ||
	    len > q->file_end - off)
		return verr_set(err, EIO, "%s: %s offset 0x%llx is not cluster aligned or not "
				"inside the file", q->name, what, (unsigned long long)off);
	return 0;
}

static void qcow2_free(struct qcow2 *q)
{
	qcow2_cache_destroy(&q->l2c);
	qcow2_cache_destroy(&q->rbc);
	qcow2_snapshots_free(q);
	free(q->l1);
	free(q->rt);
	free(q->zcache);
	free(q->zbuf);
	free(q->other_exts);
	free(q);
}

static int setup_caches(struct qcow2 *q, const struct block_open_opts *o, struct verr *err)
{
	size_t bytes = o->l2_cache_bytes ? o->l2_cache_bytes : L2_CACHE_DEFAULT;
	int n = (int)(bytes / q->cluster_size);

	if (n < 4)
		n = 4;
	if (n > 4096)
		n = 4096;
	q->zcache = file_alloc(q->cluster_size);
	q->zbuf = file_alloc(2 * q->cluster_size + 1024);
	if (!q->zcache || !q->zbuf || qcow2_cache_init(&q->l2c, n, q->cluster_size, true) ||
	    qcow2_cache_init(&q->rbc, RB_CACHE_ENTRIES, q->cluster_size, false))
		return verr_set(err, ENOMEM, "%s: out of memory for caches", q->name);
	return 0;
}

static int open_rw_checks(struct qcow2 *q, struct verr *err)
{
	if (q->ext_l2)
		return verr_set(err, ENOTSUP, "%s: images with extended L2 entries are read-only "
				"in vireo", q->name);
	if (q->autoclear & 1) {
		/* We don't maintain bitmaps: clear the bit so they read as stale. */
		q->autoclear &= ~1ull;
		return qcow2_header_update(q, err);
	}
	return 0;
}

static int qcow2_open(struct block_dev *bd, const struct block_open_opts *o, struct verr *err)
{
	struct qcow2 *q = calloc(1, sizeof(*q));
	int r;

	if (!q)
		return verr_set(err, ENOMEM, "out of memory");
	q->bd = bd;
	q->name = bd->filename;
	bd->opaque = q;
	r = file_size(bd, &q->file_end, err);
	if (!r)
		r = qcow2_header_read(q, err);
	if (!r)
		r = setup_caches(q, o, err);
	if (!r)
		r = qcow2_snapshots_read(q, err);
	if (!r && !bd->read_only && (q->incompat & QCOW2_INCOMPAT_CORRUPT))
		r = verr_set(err, EROFS, "%s: image is marked corrupt; open it read-only or "
			     "repair it with 'check -r all'", q->name);
	if (!r && q->backing[0] && !o->no_backing)
		r = block_open_backing(bd, q->backing, q->backing_fmt, o, err);
	/* Only now, with everything validated, may the image be modified. */
	if (!r && !bd->read_only)
		r = open_rw_checks(q, err);
	if (!r && !bd->read_only && (q->incompat & QCOW2_INCOMPAT_DIRTY)) {
		struct block_check res;
		/* Refcounts may be stale after a crash with lazy refcounts. */
		q->check_quiet = true;
		r = qcow2_check(bd, BLOCK_FIX_LEAKS | BLOCK_FIX_ERRORS, &res, err);
		q->check_quiet = false;
		if (!r) {
			q->incompat &= ~QCOW2_INCOMPAT_DIRTY;
			r = qcow2_header_update(q, err);
		}
	}
	if (r) {
		if (bd->backing)
			block_close(bd->backing);
		bd->backing = NULL;
		qcow2_free(q);
		bd->opaque = NULL;
	}
	return r;
}

static void qcow2_close(struct block_dev *bd)
{
	struct qcow2 *q = bd->opaque;
	struct verr err = {0};

	if (!q)
		return;
	if (!bd->read_only) {
		/* Twice: the first pass releases deferred clusters, the second
		 * writes the refcount blocks that changed. */
		if (qcow2_flush_metadata(q, &err) == 0)
			qcow2_flush_metadata(q, &err);
	}
	qcow2_free(q);
	bd->opaque = NULL;
}

/* Data clusters that follow each other in the file are read in one go;
 * anything else goes cluster by cluster through qcow2_read_cluster. */
static int read_contiguous(struct qcow2 *q, uint64_t off, uint8_t *p, size_t len, size_t *n,
			   struct verr *err)
{
	uint64_t in = off % q->cluster_size, host;
	struct qcow2_map m;
	int r = q->ext_l2 ? 0 : qcow2_lookup(q, off, &m, err);

	if (r)
		return r;
	if (q->ext_l2 || m.type != QC_NORMAL)
		return qcow2_read_cluster(q, off, p, in, *n, err);
	host = m.host + in;
	while (*n < len && *n < (8u << 20)) {
		size_t more = len - *n < q->cluster_size ? len - *n : q->cluster_size;
		r = qcow2_lookup(q, off + *n, &m, err);
		if (r)
			return r;
		if (m.type != QC_NORMAL || m.host != host + *n)
			break;
		*n += more;
	}
	return qcow2_pread(q, host, p, *n, err);
}

static int qcow2_read(struct block_dev *bd, uint64_t off, void *buf, size_t len,
		      struct verr *err)
{
	struct qcow2 *q = bd->opaque;
	uint8_t *p = buf;

	while (len) {
		uint64_t in = off % q->cluster_size;
		size_t n = q->cluster_size - in < len ? (size_t)(q->cluster_size - in) : len;
		int r = read_contiguous(q, off, p, len, &n, err);
		if (r)
			return r;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* Whole unallocated clusters in a row (one L2 table) get one contiguous
 * allocation and one write: the common case of converting into a new image. */
static int write_new_run(struct qcow2 *q, uint64_t off, const uint8_t *p, size_t len,
			 size_t *done, struct verr *err)
{
	uint64_t cs = q->cluster_size, i0 = (off >> q->cluster_bits) & (q->l2_entries - 1);
	uint64_t k = 0, max = len / cs, host;
	uint8_t *l2;
	int r;

	*done = 0;
	if (off % cs || max < 2)
		return 0;
	if (max > q->l2_entries - i0)
		max = q->l2_entries - i0;
	if (max > 512)
		max = 512;
	/* A run must fit beside the refcount block that covers it: with small
	 * refcount blocks (4 KiB clusters, 64-bit refcounts) a run as long as
	 * one block covers could never be found free. */
	if (max > q->rb_entries / 2)
		max = q->rb_entries / 2;
	while (k < max) {
		struct qcow2_map m;
		r = qcow2_lookup(q, off + k * cs, &m, err);
		if (r)
			return r;
		if (m.entry & ~QCOW2_OFLAG_ZERO)
			break;
		k++;
	}
	if (k < 2)
		return 0;
	r = qcow2_get_l2(q, off, true, &l2, err);
	if (!r)
		r = qcow2_alloc_clusters(q, k, &host, err);
	if (!r)
		r = qcow2_pwrite(q, host, p, k * cs, err);
	if (!r)
		r = qcow2_get_l2(q, off, true, &l2, err);
	if (r)
		return r;
	for (uint64_t i = 0; i < k; i++)
		qcow2_l2_set(q, l2, i0 + i, (host + i * cs) | QCOW2_OFLAG_COPIED);
	qcow2_cache_mark_dirty(&q->l2c, l2);
	*done = k * cs;
	return 0;
}

static int qcow2_write(struct block_dev *bd, uint64_t off, const void *buf, size_t len,
		       struct verr *err)
{
	struct qcow2 *q = bd->opaque;
	const uint8_t *p = buf;

	while (len) {
		uint64_t in = off % q->cluster_size;
		size_t n = q->cluster_size - in < len ? (size_t)(q->cluster_size - in) : len;
		int r = write_new_run(q, off, p, len, &n, err);
		if (r)
			return r;
		if (n) {
			p += n;
			off += n;
			len -= n;
			continue;
		}
		n = q->cluster_size - in < len ? (size_t)(q->cluster_size - in) : len;
		r = qcow2_write_cluster(q, off, p, in, n, err);
		if (r)
			return r;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

/* Store one cluster whose compressed form is dst[0..clen) (clen 0: did not
 * compress well, so it is written plainly). */
static int store_compressed(struct qcow2 *q, uint64_t off, const uint8_t *src,
			    const uint8_t *dst, size_t clen, struct verr *err)
{
	uint64_t host, e, nsec, i = (off >> q->cluster_bits) & (q->l2_entries - 1);
	uint32_t x = 62 - (q->cluster_bits - 8);
	uint8_t *l2;
	int r;

	if (clen == 0)
		return qcow2_write_cluster(q, off, src, 0, q->cluster_size, err);
	r = qcow2_alloc_bytes(q, clen, &host, err);
	if (!r)
		r = qcow2_pwrite(q, host, dst, clen, err);
	if (!r)
		r = qcow2_get_l2(q, off, true, &l2, err);
	if (r)
		return r;
	nsec = ((host + clen - 1) >> 9) - (host >> 9);
	e = qcow2_l2_get(q, l2, i);
	qcow2_l2_set(q, l2, i, QCOW2_OFLAG_COMPRESSED | (nsec << x) | host);
	qcow2_cache_mark_dirty(&q->l2c, l2);
	if (q->zcache_entry == e)
		q->zcache_entry = 0;
	if (e & QCOW2_OFLAG_COMPRESSED) {
		uint64_t o, l;
		qcow2_compressed_range(q, e, &o, &l);
		return qcow2_defer_free(q, o & ~511ull, l + (o & 511), err);
	}
	if (e & QCOW2_OFFSET_MASK)
		return qcow2_defer_free(q, e & QCOW2_OFFSET_MASK, q->cluster_size, err);
	return 0;
}

/* Compression is CPU-bound and independent per cluster: spread it over a
 * few threads, then allocate and write in order on the caller's thread. */
#define COMP_THREADS 8

struct comp_job {
	const struct qcow2 *q;
	const uint8_t *src;
	uint8_t *dst;
	size_t *clen;
	atomic_int *done;
	size_t n;
	atomic_size_t next;      /* clusters are taken one at a time: no stragglers */
};

/* Compress one more cluster; false when none is left to take. */
static bool comp_one(struct comp_job *j)
{
	size_t cs = j->q->cluster_size, k = atomic_fetch_add(&j->next, 1), c;

	if (k >= j->n)
		return false;
	c = qcow2_compress(j->q->compression_type, j->src + k * cs, cs, j->dst + k * cs,
			   cs - 512);
	j->clen[k] = c >= cs - 512 ? 0 : c;
	atomic_store(&j->done[k], 1);
	return true;
}

static void *comp_worker(void *arg)
{
	while (comp_one(arg))
		;
	return NULL;
}

/* Workers compress in order while this thread stores each cluster as soon
 * as it is ready, helping with the compression when it would wait. */
static int compress_batch(struct qcow2 *q, uint64_t off, const uint8_t *src, size_t n,
			  struct verr *err)
{
	size_t cs = q->cluster_size;
	uint8_t *dst = malloc(n * cs);
	size_t *clen = calloc(n, sizeof(size_t));
	atomic_int *done = calloc(n, sizeof(atomic_int));
	struct comp_job job = { .q = q, .src = src, .n = n };
	pthread_t th[COMP_THREADS];
	int nt = n < COMP_THREADS ? (int)n : COMP_THREADS, started = 0, r = 0;

	if (!dst || !clen || !done) {
		free(dst);
		free(clen);
		free(done);
		return verr_set(err, ENOMEM, "out of memory");
	}
	job.dst = dst;
	job.clen = clen;
	job.done = done;
	atomic_init(&job.next, 0);
	for (int t = 1; t < nt; t++)
		if (pthread_create(&th[started], NULL, comp_worker, &job) == 0)
			started++;
	for (size_t k = 0; k < n && !r; k++) {
		while (!atomic_load(&done[k]))
			if (!comp_one(&job))
				sched_yield();
		r = store_compressed(q, off + k * cs, src + k * cs, dst + k * cs, clen[k], err);
	}
	atomic_store(&job.next, n); /* on error: stop handing out work */
	for (int t = 0; t < started; t++)
		pthread_join(th[t], NULL);
	free(dst);
	free(clen);
	free(done);
	return r;
}

static int qcow2_write_compressed(struct block_dev *bd, uint64_t off, const void *buf,
				  size_t len, struct verr *err)
{
	struct qcow2 *q = bd->opaque;
	const uint8_t *p = buf;
	size_t cs = q->cluster_size;
	int r = 0;

	if (off % cs)
		return verr_set(err, EINVAL, "%s: compressed writes must be cluster aligned",
				q->name);
	if (len >= cs) {
		r = compress_batch(q, off, p, len / cs, err);
		p += len / cs * cs;
		off += len / cs * cs;
		len %= cs;
	}
	if (!r && len) {
		/* A short tail (image end): pad; past the end reads as zeros. */
		uint8_t *tmp = calloc(1, cs);
		if (!tmp)
			return verr_set(err, ENOMEM, "out of memory");
		memcpy(tmp, p, len);
		r = compress_batch(q, off, tmp, 1, err);
		free(tmp);
	}
	return r;
}

static int qcow2_flush(struct block_dev *bd, struct verr *err)
{
	struct qcow2 *q = bd->opaque;
	int r = qcow2_flush_metadata(q, err);

	if (!r)
		r = qcow2_sync(q, err);
	return r;
}

/* Whole clusters get metadata updates; the partial edges get zeros written. */
static int zero_range(struct block_dev *bd, uint64_t off, uint64_t len, bool discard,
		      struct verr *err)
{
	struct qcow2 *q = bd->opaque;
	uint64_t cs = q->cluster_size;
	uint8_t *z = NULL;
	int r = 0;

	while (len && !r) {
		uint64_t in = off % cs, n = cs - in < len ? cs - in : len;
		if (in == 0 && (n == cs || off + n == bd->size))
			r = qcow2_zero_cluster(q, off, discard, err);
		else
			r = -ENOTSUP;
		if (r == -ENOTSUP && discard) {
			r = 0; /* a partial discard is a no-op */
		} else if (r == -ENOTSUP) {
			if (!z && !(z = calloc(1, cs)))
				return verr_set(err, ENOMEM, "out of memory");
			r = qcow2_write_cluster(q, off, z, in, (size_t)n, err);
		}
		off += n;
		len -= n;
	}
	free(z);
	return r;
}

static int qcow2_discard(struct block_dev *bd, uint64_t off, uint64_t len, struct verr *err)
{
	return zero_range(bd, off, len, true, err);
}

static int qcow2_write_zeroes(struct block_dev *bd, uint64_t off, uint64_t len,
			      struct verr *err)
{
	return zero_range(bd, off, len, false, err);
}

static void map_status(struct qcow2 *q, const struct qcow2_map *m, uint64_t in,
		       struct block_status *st)
{
	switch (m->type) {
	case QC_UNALLOC:
		st->flags = 0;
		break;
	case QC_ZERO:
		st->flags = BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_ZERO;
		break;
	case QC_NORMAL:
		st->flags = BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_DATA | BLOCK_STATUS_OFFSET;
		st->offset = m->host + in;
		break;
	case QC_COMPRESSED:
		st->flags = BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_DATA | BLOCK_STATUS_COMPRESSED;
		break;
	}
	if (q->ext_l2 && m->type != QC_COMPRESSED) {
		/* Report by subcluster: only the first one's kind, conservatively. */
		uint64_t s = in / (q->cluster_size / 32);
		if (m->bitmap & (1ull << s)) {
			st->flags = BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_DATA | BLOCK_STATUS_OFFSET;
			st->offset = m->host + in;
		} else if (m->bitmap & (1ull << (s + 32))) {
			st->flags = BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_ZERO;
		} else {
			st->flags = 0;
		}
	}
}

static int qcow2_block_status(struct block_dev *bd, uint64_t off, uint64_t len,
			      struct block_status *st, struct verr *err)
{
	struct qcow2 *q = bd->opaque;
	uint64_t cs = q->ext_l2 ? q->cluster_size / 32 : q->cluster_size;
	struct qcow2_map m;
	struct block_status next;
	int r;

	r = qcow2_lookup(q, off, &m, err);
	if (r)
		return r;
	map_status(q, &m, off % q->cluster_size, st);
	st->length = cs - off % cs;
	/* Extend over following clusters of the same kind (and contiguous). */
	while (st->length < len && st->length < (1ull << 30)) {
		uint64_t o = off + st->length;
		r = qcow2_lookup(q, o, &m, err);
		if (r)
			return r;
		map_status(q, &m, o % q->cluster_size, &next);
		if (next.flags != st->flags ||
		    ((st->flags & BLOCK_STATUS_OFFSET) && next.offset != st->offset + st->length))
			break;
		st->length += cs;
	}
	if (st->length > len)
		st->length = len;
	return 0;
}

static int qcow2_resize(struct block_dev *bd, uint64_t size, bool shrink, struct verr *err)
{
	struct qcow2 *q = bd->opaque;
	int r;

	/* Whole sectors, rounded up as QEMU does: readers count the size in
	 * 512-byte sectors, and a size rounded down would lose the tail of a
	 * converted file whose length is not a multiple of 512. */
	if (size <= UINT64_MAX - 511)
		size = (size + 511) & ~511ull;

	if (size < bd->size)
		return verr_set(err, ENOTSUP, "%s: shrinking qcow2 images is not supported",
				q->name);
	if (q->nb_snapshots && size != bd->size)
		return verr_set(err, ENOTSUP, "%s: cannot resize an image with internal snapshots",
				q->name);
	if (size > (1ull << 56))
		return verr_set(err, EFBIG, "%s: size %llu is too large", q->name,
				(unsigned long long)size);
	uint64_t old = bd->size;

	r = qcow2_grow_l1(q, qcow2_l1_needed(q, size), err);
	if (r)
		return r;
	bd->size = size;
	r = qcow2_header_update(q, err);
	/* The new area reads as zeros, not as whatever the backing file holds
	 * beyond the old end (as QEMU does). */
	if (!r && bd->backing && bd->backing->size > old) {
		uint64_t end = size < bd->backing->size ? size : bd->backing->size;

		r = qcow2_write_zeroes(bd, old, end - old, err);
	}
	return r ? r : qcow2_sync(q, err);
}

int qcow2_preallocate(struct qcow2 *q, const char *mode, struct verr *err)
{
	uint64_t cs = q->cluster_size, size = q->bd->size;
	uint8_t *l2;
	int r = 0;

	if (strcmp(mode, "metadata") && strcmp(mode, "falloc") && strcmp(mode, "full"))
		return verr_set(err, EINVAL, "%s: unknown preallocation mode '%s'", q->name, mode);
	for (uint64_t off = 0; off < size && !r; off += cs) {
		uint64_t host, i = (off >> q->cluster_bits) & (q->l2_entries - 1);
		r = qcow2_get_l2(q, off, true, &l2, err);
		if (!r && qcow2_l2_get(q, l2, i))
			continue;
		if (!r)
			r = qcow2_alloc_clusters(q, 1, &host, err);
		if (!r)
			r = qcow2_get_l2(q, off, true, &l2, err);
		if (r)
			break;
		qcow2_l2_set(q, l2, i, host | QCOW2_OFLAG_COPIED);
		qcow2_cache_mark_dirty(&q->l2c, l2);
	}
	if (!r)
		r = qcow2_flush_metadata(q, err);
	if (r)
		return r;
	/* metadata: the data clusters stay holes; falloc and full reserve them. */
	if (!strcmp(mode, "metadata"))
		return file_truncate(q->bd, q->file_end, err);
	if (posix_fallocate(q->bd->fd, 0, (off_t)q->file_end))
		return verr_set(err, EIO, "%s: preallocation failed", q->name);
	return 0;
}

static int qcow2_get_info(struct block_dev *bd, struct block_info *info, struct verr *err)
{
	struct qcow2 *q = bd->opaque;

	info->cluster_size = q->cluster_size;
	snprintf(info->backing_file, sizeof(info->backing_file), "%s", q->backing);
	snprintf(info->backing_format, sizeof(info->backing_format), "%s", q->backing_fmt);
	info->dirty = (q->incompat & QCOW2_INCOMPAT_DIRTY) != 0;
	info->qcow2_version = (int)q->version;
	info->compression_type = q->compression_type == QCOW2_COMP_ZSTD ? "zstd" : "zlib";
	info->lazy_refcounts = (q->compat & QCOW2_COMPAT_LAZY) != 0;
	info->refcount_bits = (int)q->refcount_bits;
	info->corrupt = (q->incompat & QCOW2_INCOMPAT_CORRUPT) != 0;
	info->extended_l2 = q->ext_l2;
	return 0;
}

/* Only plain allocated clusters qualify; writes also need COPIED (refcount
 * 1), so overwriting in place touches no metadata. */
static int qcow2_map_direct(struct block_dev *bd, uint64_t off, size_t len, bool write,
			    uint64_t *host)
{
	struct qcow2 *q = bd->opaque;
	uint64_t in = off % q->cluster_size;
	struct qcow2_map m;
	struct verr err = {0};

	if (q->ext_l2 || in + len > q->cluster_size || !len)
		return -EAGAIN;
	if (qcow2_lookup(q, off, &m, &err) || m.type != QC_NORMAL)
		return -EAGAIN;
	if (write && !(m.entry & QCOW2_OFLAG_COPIED))
		return -EAGAIN;
	if (m.host + q->cluster_size > q->file_end)
		return -EAGAIN;
	*host = m.host + in;
	return 0;
}

static uint32_t qcow2_granularity(struct block_dev *bd)
{
	return ((struct qcow2 *)bd->opaque)->cluster_size;
}

static int qcow2_set_backing(struct block_dev *bd, const char *file, const char *fmt,
			     struct verr *err)
{
	struct qcow2 *q = bd->opaque;
	int r = qcow2_flush_metadata(q, err);

	if (r)
		return r;
	if (file && strlen(file) > QCOW2_MAX_BACKING_NAME)
		return verr_set(err, EINVAL, "%s: backing file name is too long", q->name);
	snprintf(q->backing, sizeof(q->backing), "%s", file ? file : "");
	snprintf(q->backing_fmt, sizeof(q->backing_fmt), "%s", file && fmt ? fmt : "");
	return qcow2_header_rewrite(q, err);
}

static int amend_compat(struct qcow2 *q, int compat, struct verr *err)
{
	if (compat == 3 && q->version == 2) {
		q->version = 3;
		q->header_length = 112;
		q->refcount_order = 4;
		return 0;
	}
	if (compat == 2 && q->version == 3) {
		if (q->incompat & ~QCOW2_INCOMPAT_DIRTY || q->compat || q->refcount_order != 4)
			return verr_set(err, ENOTSUP, "%s: cannot downgrade: the image uses "
					"features version 2 lacks", q->name);
		/* v2 has no zero flag: zero clusters must become real data. */
		for (uint64_t off = 0; off < q->bd->size; off += q->cluster_size) {
			struct qcow2_map m;
			int r = qcow2_lookup(q, off, &m, err);
			if (!r && m.type == QC_ZERO) {
				uint8_t *z = calloc(1, q->cluster_size);
				if (!z)
					return verr_set(err, ENOMEM, "out of memory");
				if (q->bd->backing)
					r = qcow2_write_cluster(q, off, z, 0, q->cluster_size, err);
				else
					r = qcow2_zero_cluster(q, off, true, err);
				free(z);
			}
			if (r)
				return r;
		}
		if (q->nb_snapshots)
			return verr_set(err, ENOTSUP, "%s: cannot downgrade an image with "
					"snapshots", q->name);
		q->version = 2;
		q->header_length = QCOW2_V2_HEADER;
		free(q->other_exts);
		q->other_exts = NULL;
		q->other_exts_len = 0;
	}
	return 0;
}

static int qcow2_amend(struct block_dev *bd, const struct block_create_opts *o,
		       const char *keys, struct verr *err)
{
	struct qcow2 *q = bd->opaque;
	int r = 0;

	if (strstr(keys, "compat,"))
		r = amend_compat(q, o->compat, err);
	if (!r && strstr(keys, "lazy_refcounts,")) {
		if (o->lazy_refcounts && q->version == 2)
			return verr_set(err, EINVAL, "%s: lazy_refcounts needs compat=1.1", q->name);
		q->compat = o->lazy_refcounts ? q->compat | QCOW2_COMPAT_LAZY
					      : q->compat & ~QCOW2_COMPAT_LAZY;
	}
	if (!r)
		r = qcow2_flush_metadata(q, err);
	if (!r)
		r = qcow2_header_rewrite(q, err);
	return r;
}

const struct block_driver block_qcow2_driver = {
	.name = "qcow2",
	.probe = qcow2_probe,
	.create = qcow2_create,
	.open = qcow2_open,
	.close = qcow2_close,
	.read = qcow2_read,
	.write = qcow2_write,
	.write_compressed = qcow2_write_compressed,
	.flush = qcow2_flush,
	.discard = qcow2_discard,
	.write_zeroes = qcow2_write_zeroes,
	.block_status = qcow2_block_status,
	.resize = qcow2_resize,
	.get_info = qcow2_get_info,
	.check = qcow2_check,
	.snapshot_list = qcow2_snapshot_list,
	.snapshot_create = qcow2_snapshot_create,
	.snapshot_apply = qcow2_snapshot_apply,
	.snapshot_delete = qcow2_snapshot_delete,
	.set_backing = qcow2_set_backing,
	.amend = qcow2_amend,
	.granularity = qcow2_granularity,
	.map_direct = qcow2_map_direct,
};
