/* SPDX-License-Identifier: Apache-2.0 */
/* qcow2 header: parse and validate every field, write it back, create. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "block/file.h"
#include "block/qcow2/qcow2.h"

int qcow2_probe(const uint8_t *buf, size_t len)
{
	return len >= 8 && be32_get(buf) == QCOW2_MAGIC &&
	       (be32_get(buf + 4) == 2 || be32_get(buf + 4) == 3) ? 100 : 0;
}

static int check_fixed(struct qcow2 *q, const uint8_t *h, uint64_t fsize, struct verr *err)
{
	const char *n = q->name;

	if (be32_get(h) != QCOW2_MAGIC)
		return verr_set(err, EINVAL, "%s: not a qcow2 image (bad magic)", n);
	q->version = be32_get(h + 4);
	if (q->version != 2 && q->version != 3)
		return verr_set(err, ENOTSUP, "%s: qcow2 version %u is not supported (2 or 3)",
				n, q->version);
	q->cluster_bits = be32_get(h + 20);
	if (q->cluster_bits < QCOW2_MIN_CLUSTER_BITS || q->cluster_bits > QCOW2_MAX_CLUSTER_BITS)
		return verr_set(err, EINVAL, "%s: cluster_bits %u at offset 20 is out of range "
				"(9..21)", n, q->cluster_bits);
	q->cluster_size = 1u << q->cluster_bits;
	if (be32_get(h + 32) != 0)
		return verr_set(err, ENOTSUP, "%s: encrypted images (crypt_method %u) are not "
				"supported", n, be32_get(h + 32));
	if (q->version == 2) {
		q->header_length = QCOW2_V2_HEADER;
		q->refcount_order = 4;
		return 0;
	}
	q->incompat = be64_get(h + 72);
	q->compat = be64_get(h + 80);
	q->autoclear = be64_get(h + 88);
	q->refcount_order = be32_get(h + 96);
	q->header_length = be32_get(h + 100);
	if (q->header_length < QCOW2_V3_HEADER || q->header_length % 8 ||
	    q->header_length > q->cluster_size)
		return verr_set(err, EINVAL, "%s: header_length %u at offset 100 is invalid", n,
				q->header_length);
	if (q->incompat & ~QCOW2_INCOMPAT_KNOWN)
		return verr_set(err, ENOTSUP, "%s: unknown incompatible features 0x%llx", n,
				(unsigned long long)(q->incompat & ~QCOW2_INCOMPAT_KNOWN));
	if (q->incompat & QCOW2_INCOMPAT_DATA_FILE)
		return verr_set(err, ENOTSUP, "%s: external data files are not supported", n);
	if (q->refcount_order > 6)
		return verr_set(err, EINVAL, "%s: refcount_order %u at offset 96 is out of range "
				"(0..6)", n, q->refcount_order);
	if (q->header_length > 104)
		q->compression_type = h[104];
	if (q->compression_type > QCOW2_COMP_ZSTD)
		return verr_set(err, ENOTSUP, "%s: unknown compression_type %u at offset 104", n,
				q->compression_type);
	if (q->compression_type != QCOW2_COMP_ZLIB &&
	    !(q->incompat & QCOW2_INCOMPAT_COMPRESSION))
		return verr_set(err, EINVAL, "%s: compression_type %u without the compression "
				"incompatible feature bit", n, q->compression_type);
	q->ext_l2 = (q->incompat & QCOW2_INCOMPAT_EXTL2) != 0;
	if (q->ext_l2 && q->cluster_bits < 14)
		return verr_set(err, EINVAL, "%s: extended L2 entries need clusters of at least "
				"16 KiB (cluster_bits %u)", n, q->cluster_bits);
	(void)fsize;
	return 0;
}

static bool overlaps(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

static int check_tables(struct qcow2 *q, const uint8_t *h, uint64_t fsize, struct verr *err)
{
	const char *n = q->name;
	uint64_t cs = q->cluster_size;
	uint64_t l1_bytes, rt_bytes, sn_min;

	q->bd->size = be64_get(h + 24);
	if (q->bd->size > (1ull << 56))
		return verr_set(err, EFBIG, "%s: virtual size %llu at offset 24 is too large", n,
				(unsigned long long)q->bd->size);
	q->l2_entry_size = q->ext_l2 ? 16 : 8;
	q->l2_entries = cs / q->l2_entry_size;
	q->l2_bits = q->cluster_bits - (q->ext_l2 ? 4 : 3);
	q->refcount_bits = 1u << q->refcount_order;
	q->rb_entries = cs * 8 / q->refcount_bits;

	q->l1_size = be32_get(h + 36);
	q->l1_offset = be64_get(h + 40);
	l1_bytes = (uint64_t)q->l1_size * 8;
	if (l1_bytes > QCOW2_MAX_L1_BYTES)
		return verr_set(err, EFBIG, "%s: l1_size %u at offset 36 is too large", n,
				q->l1_size);
	if (q->l1_size < qcow2_l1_needed(q, q->bd->size))
		return verr_set(err, EINVAL, "%s: l1_size %u at offset 36 is too small for the "
				"virtual size %llu", n, q->l1_size,
				(unsigned long long)q->bd->size);
	if (q->l1_size && (q->l1_offset % cs || q->l1_offset < cs ||
			   q->l1_offset + l1_bytes > fsize))
		return verr_set(err, EINVAL, "%s: L1 table offset 0x%llx (size %u) is not cluster "
				"aligned or not inside the file", n,
				(unsigned long long)q->l1_offset, q->l1_size);

	q->rt_offset = be64_get(h + 48);
	q->rt_clusters = be32_get(h + 56);
	rt_bytes = (uint64_t)q->rt_clusters * cs;
	if (!q->rt_clusters || rt_bytes > QCOW2_MAX_RT_BYTES)
		return verr_set(err, EINVAL, "%s: refcount_table_clusters %u at offset 56 is out "
				"of range", n, q->rt_clusters);
	if (q->rt_offset % cs || q->rt_offset < cs || q->rt_offset + rt_bytes > fsize)
		return verr_set(err, EINVAL, "%s: refcount table offset 0x%llx is not cluster "
				"aligned or not inside the file", n,
				(unsigned long long)q->rt_offset);
	q->rt_entries = rt_bytes / 8;

	q->nb_snapshots = be32_get(h + 60);
	q->snapshots_offset = be64_get(h + 64);
	sn_min = (uint64_t)q->nb_snapshots * 40;
	if (q->nb_snapshots > QCOW2_MAX_SNAPSHOTS)
		return verr_set(err, EINVAL, "%s: nb_snapshots %u at offset 60 is too large", n,
				q->nb_snapshots);
	if (q->nb_snapshots && (q->snapshots_offset % cs || q->snapshots_offset < cs ||
				q->snapshots_offset + sn_min > fsize))
		return verr_set(err, EINVAL, "%s: snapshot table offset 0x%llx is not cluster "
				"aligned or not inside the file", n,
				(unsigned long long)q->snapshots_offset);
	if (overlaps(q->l1_offset, l1_bytes, q->rt_offset, rt_bytes))
		return verr_set(err, EINVAL, "%s: L1 table at 0x%llx overlaps the refcount table "
				"at 0x%llx", n, (unsigned long long)q->l1_offset,
				(unsigned long long)q->rt_offset);
	if (q->nb_snapshots && (overlaps(q->snapshots_offset, sn_min, q->rt_offset, rt_bytes) ||
				overlaps(q->snapshots_offset, sn_min, q->l1_offset, l1_bytes)))
		return verr_set(err, EINVAL, "%s: snapshot table at 0x%llx overlaps other metadata",
				n, (unsigned long long)q->snapshots_offset);
	return 0;
}

static int parse_exts(struct qcow2 *q, const uint8_t *c, struct verr *err)
{
	uint64_t off = q->header_length;
	const char *n = q->name;

	for (int i = 0; i < 1024; i++) {
		uint32_t type, len;
		if (off + 8 > q->cluster_size)
			return verr_set(err, EINVAL, "%s: header extension at offset %llu runs past "
					"the first cluster", n, (unsigned long long)off);
		type = be32_get(c + off);
		len = be32_get(c + off + 4);
		if (type == QCOW2_EXT_END)
			return 0;
		if (len > q->cluster_size - off - 8)
			return verr_set(err, EINVAL, "%s: header extension 0x%x at offset %llu has "
					"length %u past the first cluster", n, type,
					(unsigned long long)off, len);
		if (type == QCOW2_EXT_BACKING_FMT) {
			if (len >= BLOCK_FMT_MAX)
				return verr_set(err, EINVAL, "%s: backing format extension at offset "
						"%llu is too long (%u)", n,
						(unsigned long long)off, len);
			memcpy(q->backing_fmt, c + off + 8, len);
			q->backing_fmt[len] = 0;
		} else if (type == QCOW2_EXT_CRYPTO || type == QCOW2_EXT_DATA_FILE) {
			return verr_set(err, ENOTSUP, "%s: header extension 0x%x is not supported",
					n, type);
		} else if (type != QCOW2_EXT_FEATURES) {
			/* Bitmaps and unknown extensions: carried over verbatim. */
			uint32_t sz = 8 + ((len + 7) & ~7u);
			uint8_t *p = realloc(q->other_exts, q->other_exts_len + sz);
			if (!p)
				return verr_set(err, ENOMEM, "out of memory");
			q->other_exts = p;
			memset(p + q->other_exts_len, 0, sz);
			memcpy(p + q->other_exts_len, c + off, 8 + len);
			q->other_exts_len += sz;
		}
		off += 8 + ((uint64_t)(len + 7) & ~7ull);
	}
	return verr_set(err, EINVAL, "%s: too many header extensions", n);
}

static int read_backing_name(struct qcow2 *q, const uint8_t *h, struct verr *err)
{
	q->backing_offset = be64_get(h + 8);
	q->backing_size = be32_get(h + 16);
	if (!q->backing_offset)
		return 0;
	if (q->backing_size > QCOW2_MAX_BACKING_NAME || q->backing_size == 0 ||
	    q->backing_offset > q->cluster_size ||
	    q->backing_size > q->cluster_size - q->backing_offset ||
	    q->backing_offset < q->header_length)
		return verr_set(err, EINVAL, "%s: backing file name at offset 0x%llx size %u is "
				"outside the header cluster", q->name,
				(unsigned long long)q->backing_offset, q->backing_size);
	memcpy(q->backing, h + q->backing_offset, q->backing_size);
	q->backing[q->backing_size] = 0;
	if (strlen(q->backing) != q->backing_size)
		return verr_set(err, EINVAL, "%s: backing file name contains a NUL byte", q->name);
	return 0;
}

static int load_tables(struct qcow2 *q, struct verr *err)
{
	size_t l1b = (size_t)q->l1_size * 8, rtb = (size_t)q->rt_entries * 8;
	int r;

	q->l1 = calloc(1, l1b ? l1b : 8);
	q->rt = calloc(1, rtb);
	if (!q->l1 || !q->rt)
		return verr_set(err, ENOMEM, "%s: out of memory for metadata tables", q->name);
	r = qcow2_pread(q, q->l1_offset, q->l1, l1b, err);
	if (!r)
		r = qcow2_pread(q, q->rt_offset, q->rt, rtb, err);
	if (r)
		return r;
	for (uint32_t i = 0; i < q->l1_size; i++)
		q->l1[i] = be64_get(&q->l1[i]);
	for (uint64_t i = 0; i < q->rt_entries; i++) {
		uint64_t e = be64_get(&q->rt[i]);
		q->rt[i] = e;
		if (e & QCOW2_RT_RESERVED || e % q->cluster_size ||
		    (e && (e < q->cluster_size || e >= q->file_end)))
			return verr_set(err, EINVAL, "%s: refcount table entry %llu (0x%llx) is not "
					"a cluster-aligned offset inside the file", q->name,
					(unsigned long long)i, (unsigned long long)e);
	}
	return 0;
}

int qcow2_header_read(struct qcow2 *q, struct verr *err)
{
	uint8_t *c = malloc(1u << QCOW2_MAX_CLUSTER_BITS);
	int r;

	if (!c)
		return verr_set(err, ENOMEM, "out of memory");
	r = qcow2_pread(q, 0, c, QCOW2_V3_HEADER + 8, err);
	if (!r && q->file_end < QCOW2_V2_HEADER)
		r = verr_set(err, EINVAL, "%s: file too small for a qcow2 header (%llu bytes)",
			     q->name, (unsigned long long)q->file_end);
	if (!r)
		r = check_fixed(q, c, q->file_end, err);
	if (!r)
		r = qcow2_pread(q, 0, c, q->cluster_size, err);
	if (!r)
		r = check_tables(q, c, q->file_end, err);
	if (!r)
		r = parse_exts(q, c, err);
	if (!r)
		r = read_backing_name(q, c, err);
	free(c);
	if (!r)
		r = load_tables(q, err);
	return r;
}

static void put_fixed(const struct qcow2 *q, uint8_t *h)
{
	be32_put(h, QCOW2_MAGIC);
	be32_put(h + 4, q->version);
	be64_put(h + 8, q->backing_offset);
	be32_put(h + 16, q->backing_size);
	be32_put(h + 20, q->cluster_bits);
	be64_put(h + 24, q->bd->size);
	be32_put(h + 36, q->l1_size);
	be64_put(h + 40, q->l1_offset);
	be64_put(h + 48, q->rt_offset);
	be32_put(h + 56, q->rt_clusters);
	be32_put(h + 60, q->nb_snapshots);
	be64_put(h + 64, q->snapshots_offset);
	if (q->version < 3)
		return;
	be64_put(h + 72, q->incompat);
	be64_put(h + 80, q->compat);
	be64_put(h + 88, q->autoclear);
	be32_put(h + 96, q->refcount_order);
	be32_put(h + 100, q->header_length);
	if (q->header_length > 104)
		h[104] = q->compression_type;
}

/* Rewrite the fixed fields in place (they never move). */
int qcow2_header_update(struct qcow2 *q, struct verr *err)
{
	uint8_t h[112] = {0};
	uint32_t len = q->version == 3 ? q->header_length : QCOW2_V2_HEADER;
	int r;

	if (len > sizeof(h))
		len = sizeof(h);
	r = qcow2_pread(q, 0, h, len, err);
	if (r)
		return r;
	put_fixed(q, h);
	return qcow2_pwrite(q, 0, h, len, err);
}

static void put_ext(uint8_t *c, uint32_t *off, uint32_t type, const void *data, uint32_t len)
{
	be32_put(c + *off, type);
	be32_put(c + *off + 4, len);
	memcpy(c + *off + 8, data, len);
	*off += 8 + ((len + 7) & ~7u);
}

/* Build the whole first cluster: fixed fields, extensions, backing name. */
static int build_header(struct qcow2 *q, uint8_t *c, struct verr *err)
{
	uint32_t off = q->version == 3 ? q->header_length : QCOW2_V2_HEADER;
	uint32_t fmtlen = (uint32_t)strlen(q->backing_fmt);
	uint32_t need = off + 8 + (fmtlen ? 8 + ((fmtlen + 7) & ~7u) : 0) + q->other_exts_len +
			(uint32_t)strlen(q->backing);

	if (need > q->cluster_size)
		return verr_set(err, ENOSPC, "%s: header extensions and backing file name do not "
				"fit in the first cluster", q->name);
	memset(c, 0, q->cluster_size);
	if (q->version == 3 || fmtlen) {
		if (fmtlen && *q->backing)
			put_ext(c, &off, QCOW2_EXT_BACKING_FMT, q->backing_fmt, fmtlen);
		if (q->other_exts_len) {
			memcpy(c + off, q->other_exts, q->other_exts_len);
			off += q->other_exts_len;
		}
		off += 8; /* end-of-extensions marker: all zeros */
	}
	q->backing_size = (uint32_t)strlen(q->backing);
	q->backing_offset = q->backing_size ? off : 0;
	memcpy(c + off, q->backing, q->backing_size);
	put_fixed(q, c);
	return 0;
}

int qcow2_header_rewrite(struct qcow2 *q, struct verr *err)
{
	uint8_t *c = malloc(q->cluster_size);
	int r;

	if (!c)
		return verr_set(err, ENOMEM, "out of memory");
	r = build_header(q, c, err);
	if (!r)
		r = qcow2_sync(q, err);
	if (!r)
		r = qcow2_pwrite(q, 0, c, q->cluster_size, err);
	if (!r)
		r = qcow2_sync(q, err);
	free(c);
	return r;
}

static int parse_create(const struct block_create_opts *o, struct qcow2 *q, struct verr *err)
{
	uint32_t cs = o->cluster_size ? o->cluster_size : 65536;
	int rb = o->refcount_bits ? o->refcount_bits : 16;

	if (cs < 512 || cs > (2u << 20) || (cs & (cs - 1)))
		return verr_set(err, EINVAL, "cluster size %u must be a power of two between 512 "
				"and 2M", cs);
	q->cluster_bits = (uint32_t)__builtin_ctz(cs);
	q->cluster_size = cs;
	q->version = o->compat == 2 ? 2 : 3;
	if (rb < 1 || rb > 64 || (rb & (rb - 1)))
		return verr_set(err, EINVAL, "refcount_bits %d must be a power of two up to 64", rb);
	if (q->version == 2 && rb != 16)
		return verr_set(err, EINVAL, "compat=0.10 images need refcount_bits=16");
	q->refcount_order = (uint32_t)__builtin_ctz((unsigned)rb);
	q->refcount_bits = (uint32_t)rb;
	q->header_length = q->version == 3 ? 112 : QCOW2_V2_HEADER;
	if (o->compression_type && !strcmp(o->compression_type, "zstd")) {
		if (q->version == 2)
			return verr_set(err, EINVAL, "compression_type=zstd needs compat=1.1");
		q->compression_type = QCOW2_COMP_ZSTD;
		q->incompat |= QCOW2_INCOMPAT_COMPRESSION;
	} else if (o->compression_type && strcmp(o->compression_type, "zlib")) {
		return verr_set(err, EINVAL, "unknown compression_type '%s'", o->compression_type);
	}
	if (o->lazy_refcounts) {
		if (q->version == 2)
			return verr_set(err, EINVAL, "lazy_refcounts=on needs compat=1.1");
		q->compat |= QCOW2_COMPAT_LAZY;
	}
	if (o->extended_l2)
		return verr_set(err, ENOTSUP, "extended_l2 images are read-only in vireo");
	if (o->backing_file) {
		if (strlen(o->backing_file) > QCOW2_MAX_BACKING_NAME)
			return verr_set(err, EINVAL, "backing file name is too long");
		snprintf(q->backing, sizeof(q->backing), "%s", o->backing_file);
		snprintf(q->backing_fmt, sizeof(q->backing_fmt), "%s",
			 o->backing_format ? o->backing_format : "");
	}
	return 0;
}

/* Write the smallest valid image: header, a one-cluster refcount table and
 * one refcount block, no L1 table. The driver then grows L1 to the size. */
static int write_skeleton(const char *path, struct qcow2 *q, struct verr *err)
{
	uint32_t cs = q->cluster_size;
	uint8_t *buf = calloc(3, cs);
	struct block_dev bd = { .fd = -1 };
	int r;

	if (!buf)
		return verr_set(err, ENOMEM, "out of memory");
	snprintf(bd.filename, sizeof(bd.filename), "%s", path);
	q->bd = &bd;
	q->name = bd.filename;
	q->rt_offset = cs;
	q->rt_clusters = 1;
	bd.size = 0;
	r = build_header(q, buf, err);
	if (r)
		goto out;
	be64_put(buf + cs, 2ull * cs);
	for (int i = 0; i < 3; i++)
		qcow2_rc_set_raw(q, buf + 2 * cs, (uint64_t)i, 1);
	bd.fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (bd.fd < 0) {
		r = verr_set(err, errno, "%s: cannot create: %s", path, strerror(errno));
		goto out;
	}
	if (pwrite(bd.fd, buf, 3ull * cs, 0) != (ssize_t)(3ull * cs))
		r = verr_set(err, errno ? errno : EIO, "%s: write failed", path);
	close(bd.fd);
out:
	free(buf);
	free(q->other_exts);
	return r;
}

int qcow2_create(const char *path, const struct block_create_opts *o, struct verr *err)
{
	struct qcow2 q = {0};
	struct block_open_opts oo = { .format = "qcow2", .read_write = true, .no_backing = true };
	struct block_dev *bd;
	int r = parse_create(o, &q, err);

	if (!r)
		r = write_skeleton(path, &q, err);
	if (!r)
		r = block_open(path, &oo, &bd, err);
	if (r)
		return r;
	r = block_resize(bd, o->size, false, err);
	if (!r && o->preallocation && strcmp(o->preallocation, "off"))
		r = qcow2_preallocate(bd->opaque, o->preallocation, err);
	if (!r)
		r = block_flush(bd, err);
	block_close(bd);
	return r;
}
