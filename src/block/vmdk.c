/* SPDX-License-Identifier: Apache-2.0 */
/*
 * VMDK, written from VMware's Virtual Disk Format 1.1 specification.
 * Read: monolithicSparse, monolithicFlat, streamOptimized, twoGbMaxExtent
 * Sparse/Flat (any mix of SPARSE, FLAT and ZERO extents). Write: sparse and
 * flat extents in place; streamOptimized only as a fresh stream (grains are
 * appended, tables and footer written on close), as conversion produces.
 * Sparse extent headers are little-endian; sizes are in 512-byte sectors.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "block/drivers.h"
#include "block/file.h"

#define VMDK_MAGIC 0x564d444bu   /* "KDMV" */
#define VMDK_GD_AT_END 0xffffffffffffffffull
#define VMDK_FLAG_RGD (1u << 1)
#define VMDK_FLAG_ZERO_GRAIN (1u << 2)
#define VMDK_FLAG_COMPRESSED (1u << 16)
#define VMDK_FLAG_MARKERS (1u << 17)
#define VMDK_DESC_MAX (64u << 10)
#define VMDK_MAX_EXTENTS 1024
#define VMDK_MAX_GRAIN 2048       /* sectors: 1 MiB */
#define VMDK_MAX_GD_BYTES (64u << 20)
#define MARKER_EOS 0
#define MARKER_GT 1
#define MARKER_GD 2
#define MARKER_FOOTER 3

enum ext_type { EXT_FLAT, EXT_SPARSE, EXT_ZERO };

struct extent {
	enum ext_type type;
	struct block_dev file;       /* fd and name, for the file helpers */
	bool own_fd;
	uint64_t start, sectors;     /* guest sectors covered */
	uint64_t flat_offset;        /* sectors into the file (flat) */
	uint8_t header[512];
	uint32_t flags, gtes;
	uint64_t grain, gd_off, rgd_off, overhead, capacity, file_size;
	uint32_t n_gd, *gd, *rgd;
	uint32_t *gt;                /* cached grain table */
	int64_t gt_index;
	/* streamOptimized writer */
	bool stream;
	uint32_t *all_gt;            /* every grain table, in memory */
	uint64_t next_sector;
	uint8_t *zbuf;
	bool pending;                /* pend_buf holds grain pend_grain, not yet */
	uint64_t pend_grain;         /* compressed: a grain may come in pieces */
	uint8_t *pend_buf;
};

struct vmdk {
	struct extent *ext;
	int n_ext;
	char create_type[64];
	uint32_t cid, parent_cid;
	uint8_t *grain_buf;
};

static int vmdk_probe(const uint8_t *buf, size_t len)
{
	if (len >= 4 && le32_get(buf) == VMDK_MAGIC)
		return 100;
	if (len >= 21 && !memcmp(buf, "# Disk DescriptorFile", 21))
		return 100;
	return 0;
}

static const char *E(const struct extent *e)
{
	return e->file.filename;
}

static int parse_header(struct extent *e, struct verr *err)
{
	const uint8_t *h = e->header;
	uint64_t gts_cover;

	if (le32_get(h) != VMDK_MAGIC)
		return verr_set(err, EINVAL, "%s: not a VMDK sparse extent (bad magic)", E(e));
	if (le32_get(h + 4) < 1 || le32_get(h + 4) > 3)
		return verr_set(err, ENOTSUP, "%s: VMDK version %u at offset 4 is not supported",
				E(e), le32_get(h + 4));
	e->flags = le32_get(h + 8);
	e->capacity = le64_get(h + 12);
	e->grain = le64_get(h + 20);
	e->gtes = le32_get(h + 44);
	e->rgd_off = le64_get(h + 48);
	e->gd_off = le64_get(h + 56);
	e->overhead = le64_get(h + 64);
	if (!e->grain || e->grain > VMDK_MAX_GRAIN || (e->grain & (e->grain - 1)))
		return verr_set(err, EINVAL, "%s: grainSize %llu at offset 20 is invalid", E(e),
				(unsigned long long)e->grain);
	if (e->gtes != 512)
		return verr_set(err, EINVAL, "%s: numGTEsPerGT %u at offset 44 is not 512", E(e),
				e->gtes);
	if (e->capacity > (1ull << 40))
		return verr_set(err, EFBIG, "%s: capacity %llu at offset 12 is too large", E(e),
				(unsigned long long)e->capacity);
	if ((e->flags & VMDK_FLAG_COMPRESSED) && le16_get(h + 77) != 1)
		return verr_set(err, ENOTSUP, "%s: compressAlgorithm %u is not supported", E(e),
				le16_get(h + 77));
	gts_cover = e->grain * e->gtes;
	e->n_gd = (uint32_t)((e->capacity + gts_cover - 1) / gts_cover);
	if ((uint64_t)e->n_gd * 4 > VMDK_MAX_GD_BYTES)
		return verr_set(err, EFBIG, "%s: grain directory too large", E(e));
	return 0;
}

/* streamOptimized images keep the real header in a footer at the end. */
static int read_footer(struct extent *e, struct verr *err)
{
	uint8_t m[512];
	int r;

	if (e->file_size < 1536 + 512)
		return verr_set(err, EINVAL, "%s: grain directory at end but no footer", E(e));
	r = file_pread(&e->file, e->file_size - 1536, m, 512, err);
	if (!r && (le32_get(m + 12) != MARKER_FOOTER || le32_get(m + 8) != 0))
		return verr_set(err, EINVAL, "%s: footer marker missing at offset %llu", E(e),
				(unsigned long long)(e->file_size - 1536));
	if (!r)
		r = file_pread(&e->file, e->file_size - 1024, e->header, 512, err);
	if (!r)
		r = parse_header(e, err);
	if (!r && e->gd_off == VMDK_GD_AT_END)
		return verr_set(err, EINVAL, "%s: footer has no grain directory offset", E(e));
	return r;
}

static int load_gd(struct extent *e, uint64_t off, uint32_t **out, struct verr *err)
{
	uint32_t *gd = calloc(e->n_gd ? e->n_gd : 1, 4);
	int r;

	if (!gd)
		return verr_set(err, ENOMEM, "out of memory");
	if (off > e->file_size / 512 || (uint64_t)e->n_gd * 4 > e->file_size - off * 512) {
		free(gd);
		return verr_set(err, EINVAL, "%s: grain directory at sector %llu is outside the "
				"file", E(e), (unsigned long long)off);
	}
	r = file_pread(&e->file, off * 512, gd, (size_t)e->n_gd * 4, err);
	for (uint32_t i = 0; i < e->n_gd && !r; i++) {
		gd[i] = le32_get(&gd[i]);
		if (gd[i] && ((uint64_t)gd[i] * 512 + e->gtes * 4ull > e->file_size))
			r = verr_set(err, EINVAL, "%s: grain table %u at sector %u is outside the file",
				     E(e), i, gd[i]);
	}
	if (r) {
		free(gd);
		return r;
	}
	*out = gd;
	return 0;
}

static int open_stream_rw(struct extent *e, struct verr *err);

static int open_sparse(struct extent *e, bool rw, struct verr *err)
{
	int r = file_size(&e->file, &e->file_size, err);

	if (!r)
		r = file_pread(&e->file, 0, e->header, 512, err);
	if (!r)
		r = parse_header(e, err);
	if (r)
		return r;
	if (e->gd_off == VMDK_GD_AT_END) {
		r = read_footer(e, err);
		if (r)
			return r;
		if (rw)
			return open_stream_rw(e, err);
	} else if (rw && (e->flags & VMDK_FLAG_COMPRESSED)) {
		return verr_set(err, ENOTSUP, "%s: compressed VMDK images are read-only", E(e));
	}
	if (e->capacity < e->sectors)
		return verr_set(err, EINVAL, "%s: capacity %llu is smaller than the extent (%llu)",
				E(e), (unsigned long long)e->capacity,
				(unsigned long long)e->sectors);
	e->gt = calloc(e->gtes, 4);
	e->gt_index = -1;
	if (!e->gt)
		return verr_set(err, ENOMEM, "out of memory");
	r = load_gd(e, e->gd_off, &e->gd, err);
	if (!r && (e->flags & VMDK_FLAG_RGD) && e->rgd_off && rw)
		r = load_gd(e, e->rgd_off, &e->rgd, err);
	return r;
}

/* A stream holding no grain yet (as create leaves it) can be written: grains
 * are appended from the overhead on, and close writes tables and footer. */
static int open_stream_rw(struct extent *e, struct verr *err)
{
	int r = load_gd(e, e->gd_off, &e->gd, err);

	for (uint32_t i = 0; i < e->n_gd && !r; i++)
		if (e->gd[i])
			r = verr_set(err, ENOTSUP, "%s: streamOptimized images with data are "
				     "read-only", E(e));
	free(e->gd);
	e->gd = NULL;
	if (!r)
		e->stream = true;
	return r;
}

/* ---- descriptor ---- */

static char *trim(char *s)
{
	char *end;
	while (*s == ' ' || *s == '\t')
		s++;
	end = s + strlen(s);
	while (end > s && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
		*--end = 0;
	return s;
}

static int add_extent(struct block_dev *bd, struct vmdk *v, char *line, bool rw,
		      struct verr *err)
{
	char access[16], type[16], name[BLOCK_PATH_MAX], path[BLOCK_PATH_MAX];
	unsigned long long sectors, offset = 0;
	struct extent *e, *n;
	int k;

	k = sscanf(line, "%15s %llu %15s \"%4095[^\"]\" %llu", access, &sectors, type, name,
		   &offset);
	if (k < 3)
		return verr_set(err, EINVAL, "%s: bad extent line '%.80s'", bd->filename, line);
	if (v->n_ext >= VMDK_MAX_EXTENTS)
		return verr_set(err, EINVAL, "%s: too many extents", bd->filename);
	if (sectors > (1ull << 40))
		return verr_set(err, EINVAL, "%s: extent of %llu sectors is too large",
				bd->filename, sectors);
	n = realloc(v->ext, (size_t)(v->n_ext + 1) * sizeof(*n));
	if (!n)
		return verr_set(err, ENOMEM, "out of memory");
	v->ext = n;
	e = &v->ext[v->n_ext];
	memset(e, 0, sizeof(*e));
	e->file.fd = -1;
	e->start = bd->size / 512;
	e->sectors = sectors;
	e->flat_offset = offset;
	v->n_ext++;
	if (!strcmp(type, "ZERO")) {
		e->type = EXT_ZERO;
		bd->size += sectors * 512;
		return 0;
	}
	if (k < 4)
		return verr_set(err, EINVAL, "%s: extent line without a file name", bd->filename);
	if (!strcmp(type, "FLAT") || !strcmp(type, "VMFS"))
		e->type = EXT_FLAT;
	else if (!strcmp(type, "SPARSE") || !strcmp(type, "VMFSSPARSE"))
		e->type = EXT_SPARSE;
	else
		return verr_set(err, ENOTSUP, "%s: extent type %s is not supported", bd->filename,
				type);
	block_backing_path(bd->filename, name, path, sizeof(path));
	snprintf(e->file.filename, sizeof(e->file.filename), "%s", path);
	e->file.cache = bd->cache;
	e->file.read_only = bd->read_only;
	struct stat a, b;
	if (fstat(bd->fd, &a) == 0 && stat(path, &b) == 0 && a.st_ino == b.st_ino &&
	    a.st_dev == b.st_dev) {
		e->file.fd = bd->fd;
		e->file.direct = bd->direct;
	} else {
		e->file.fd = open(path, (rw ? O_RDWR : O_RDONLY) | O_CLOEXEC);
		if (e->file.fd < 0)
			return verr_set(err, errno, "%s: cannot open extent '%s': %s",
					bd->filename, path, strerror(errno));
		e->own_fd = true;
	}
	bd->size += sectors * 512;
	return e->type == EXT_SPARSE ? open_sparse(e, rw, err) : 0;
}

static int parse_descriptor(struct block_dev *bd, struct vmdk *v, char *text, bool rw,
			    struct verr *err)
{
	char *save = NULL;
	int r = 0, lines = 0;

	if (strncmp(text, "# Disk DescriptorFile", 21))
		return verr_set(err, EINVAL, "%s: descriptor does not start with '# Disk "
				"DescriptorFile'", bd->filename);
	for (char *l = strtok_r(text, "\n", &save); l && !r; l = strtok_r(NULL, "\n", &save)) {
		l = trim(l);
		if (++lines > 10000)
			return verr_set(err, EINVAL, "%s: descriptor has too many lines",
					bd->filename);
		if (!*l || *l == '#')
			continue;
		if (!strncmp(l, "RW ", 3) || !strncmp(l, "RDONLY ", 7) || !strncmp(l, "NOACCESS ", 9))
			r = add_extent(bd, v, l, rw, err);
		else if (!strncmp(l, "CID=", 4))
			v->cid = (uint32_t)strtoul(l + 4, NULL, 16);
		else if (!strncmp(l, "parentCID=", 10))
			v->parent_cid = (uint32_t)strtoul(l + 10, NULL, 16);
		else if (!strncmp(l, "createType=", 11))
			sscanf(l + 11, "\"%63[^\"]\"", v->create_type);
		else if (!strncmp(l, "parentFileNameHint=", 19))
			r = verr_set(err, ENOTSUP, "%s: VMDK backing files are not supported",
				     bd->filename);
	}
	if (!r && !v->n_ext)
		r = verr_set(err, EINVAL, "%s: descriptor lists no extents", bd->filename);
	return r;
}

static void vmdk_free(struct vmdk *v)
{
	for (int i = 0; i < v->n_ext; i++) {
		struct extent *e = &v->ext[i];
		if (e->own_fd)
			close(e->file.fd);
		free(e->gd);
		free(e->rgd);
		free(e->gt);
		free(e->all_gt);
		free(e->zbuf);
		free(e->pend_buf);
	}
	free(v->ext);
	free(v->grain_buf);
	free(v);
}

static int vmdk_open(struct block_dev *bd, const struct block_open_opts *o, struct verr *err)
{
	struct vmdk *v = calloc(1, sizeof(*v));
	uint8_t head[512];
	char *text = NULL;
	uint64_t off = 0, len, fsize;
	int r;

	if (!v)
		return verr_set(err, ENOMEM, "out of memory");
	bd->opaque = v;
	bd->size = 0;
	r = file_size(bd, &fsize, err);
	if (!r)
		r = file_pread(bd, 0, head, sizeof(head), err);
	if (r)
		goto fail;
	if (le32_get(head) == VMDK_MAGIC) {
		off = le64_get(head + 28) * 512;
		len = le64_get(head + 36) * 512;
		if (!off || len > VMDK_DESC_MAX || off > fsize || len > fsize - off) {
			r = verr_set(err, EINVAL, "%s: embedded descriptor at sector %llu is invalid "
				     "(offset 28)", bd->filename, (unsigned long long)(off / 512));
			goto fail;
		}
	} else {
		len = fsize < VMDK_DESC_MAX ? fsize : VMDK_DESC_MAX;
	}
	text = calloc(1, len + 1);
	if (!text) {
		r = verr_set(err, ENOMEM, "out of memory");
		goto fail;
	}
	r = file_pread(bd, off, text, len, err);
	if (!r)
		r = parse_descriptor(bd, v, text, o->read_write, err);
	free(text);
	if (!r)
		v->grain_buf = file_alloc(VMDK_MAX_GRAIN * 512);
	if (!r && !v->grain_buf)
		r = verr_set(err, ENOMEM, "out of memory");
	if (!r)
		return 0;
fail:
	vmdk_free(v);
	bd->opaque = NULL;
	return r;
}

/* ---- sparse extents ---- */

static int load_gt(struct extent *e, uint32_t gdi, struct verr *err)
{
	int r;

	if ((int64_t)gdi == e->gt_index)
		return 0;
	e->gt_index = -1;
	r = file_pread(&e->file, (uint64_t)e->gd[gdi] * 512, e->gt, e->gtes * 4ull, err);
	if (r)
		return r;
	for (uint32_t i = 0; i < e->gtes; i++)
		e->gt[i] = le32_get(&e->gt[i]);
	e->gt_index = gdi;
	return 0;
}

/* Grain table entry for extent sector s: 0 unallocated, 1 zero (if enabled). */
static int gte(struct extent *e, uint64_t s, uint32_t *out, struct verr *err)
{
	uint64_t g = s / e->grain;
	uint32_t gdi = (uint32_t)(g / e->gtes);
	int r;

	*out = 0;
	if (e->stream) {
		*out = e->all_gt ? e->all_gt[g] : 0;
		return 0;
	}
	if (gdi >= e->n_gd || !e->gd[gdi])
		return 0;
	r = load_gt(e, gdi, err);
	if (!r)
		*out = e->gt[g % e->gtes];
	return r;
}

/* Bytes of grain grain_no that the extent shows: a whole grain, except for a
 * last grain cut short by the extent's end (capacity need not be a multiple
 * of grainSize, and a stream writer may compress only the part inside it). */
static uint64_t grain_need(const struct extent *e, uint64_t grain_no)
{
	uint64_t first = grain_no * e->grain;

	if (first < e->sectors && e->sectors - first < e->grain)
		return (e->sectors - first) * 512;
	return e->grain * 512;
}

static int read_compressed(struct extent *e, uint32_t sector, uint64_t grain_no, uint8_t *dst,
			   struct verr *err)
{
	uint64_t off = (uint64_t)sector * 512, hdr = (e->flags & VMDK_FLAG_MARKERS) ? 12 : 0;
	uint64_t max = e->grain * 512 * 2 + 1024;
	uint8_t m[12];
	uLongf out = (uLongf)(e->grain * 512);
	uint32_t clen;
	int r;

	if (!hdr)
		return verr_set(err, ENOTSUP, "%s: compressed grains without markers", E(e));
	r = file_pread(&e->file, off, m, 12, err);
	if (r)
		return r;
	clen = le32_get(m + 8);
	if (le64_get(m) != grain_no * e->grain || clen == 0 || clen > max ||
	    off + 12 + clen > e->file_size)
		return verr_set(err, EIO, "%s: grain marker at offset %llu is invalid", E(e),
				(unsigned long long)off);
	if (!e->zbuf && !(e->zbuf = malloc(max)))
		return verr_set(err, ENOMEM, "out of memory");
	r = file_pread(&e->file, off + 12, e->zbuf, clen, err);
	if (r)
		return r;
	/* At most a grain (zlib stops at the buffer), at least what the extent
	 * shows of it; the rest of the grain lies past the extent: zeros. */
	if (uncompress(dst, &out, e->zbuf, clen) != Z_OK || out < grain_need(e, grain_no))
		return verr_set(err, EIO, "%s: compressed grain at offset %llu is corrupt", E(e),
				(unsigned long long)off);
	memset(dst + out, 0, (size_t)(e->grain * 512 - out));
	return 0;
}

static int sparse_read(struct vmdk *v, struct extent *e, uint64_t off, uint8_t *buf, size_t n,
		       struct verr *err)
{
	uint64_t gbytes = e->grain * 512, in = off % gbytes, g = off / gbytes;
	uint32_t s;
	int r = gte(e, off / 512, &s, err);

	if (r)
		return r;
	if (e->stream && e->pending && g == e->pend_grain) {
		memcpy(buf, e->pend_buf + in, n);
		return 0;
	}
	if (s == 0 || (s == 1 && (e->flags & VMDK_FLAG_ZERO_GRAIN))) {
		memset(buf, 0, n);
		return 0;
	}
	if (e->flags & VMDK_FLAG_COMPRESSED) {
		r = read_compressed(e, s, g, v->grain_buf, err);
		if (!r)
			memcpy(buf, v->grain_buf + in, n);
		return r;
	}
	if ((uint64_t)s * 512 + in >= e->file_size)
		return verr_set(err, EIO, "%s: grain at sector %u is outside the file", E(e), s);
	return file_pread(&e->file, (uint64_t)s * 512 + in, buf, n, err);
}

static int set_gte(struct extent *e, uint64_t s, uint32_t val, struct verr *err)
{
	uint64_t g = s / e->grain;
	uint32_t gdi = (uint32_t)(g / e->gtes), le;
	int r;

	if (gdi >= e->n_gd || !e->gd[gdi])
		return verr_set(err, ENOTSUP, "%s: grain table %u is not allocated", E(e), gdi);
	le32_put(&le, val);
	r = file_pwrite(&e->file, (uint64_t)e->gd[gdi] * 512 + (g % e->gtes) * 4, &le, 4, err);
	if (!r && e->rgd && e->rgd[gdi])
		r = file_pwrite(&e->file, (uint64_t)e->rgd[gdi] * 512 + (g % e->gtes) * 4, &le,
				4, err);
	if (!r && e->gt_index == gdi)
		e->gt[g % e->gtes] = val;
	return r;
}

static int stream_write(struct extent *e, uint64_t off, const uint8_t *buf, size_t n,
			struct verr *err);

static int sparse_write(struct vmdk *v, struct extent *e, uint64_t off, const uint8_t *buf,
			size_t n, struct verr *err)
{
	uint64_t gbytes = e->grain * 512, in = off % gbytes, sec;
	uint32_t s;
	int r;

	if (e->stream)
		return stream_write(e, off, buf, n, err);
	r = gte(e, off / 512, &s, err);
	if (r)
		return r;
	if (s > 1 || (s == 1 && !(e->flags & VMDK_FLAG_ZERO_GRAIN)))
		return file_pwrite(&e->file, (uint64_t)s * 512 + in, buf, n, err);
	/* New grain at the end of the file: data first, then the table entry. */
	memset(v->grain_buf, 0, gbytes);
	memcpy(v->grain_buf + in, buf, n);
	sec = (e->file_size + 511) / 512;
	if (sec > UINT32_MAX - e->grain)
		return verr_set(err, EFBIG, "%s: extent is full", E(e));
	r = file_pwrite(&e->file, sec * 512, v->grain_buf, gbytes, err);
	if (!r) {
		e->file_size = (sec + e->grain) * 512;
		r = set_gte(e, off / 512, (uint32_t)sec, err);
	}
	return r;
}

/* ---- streamOptimized writer ---- */

static int marker(struct extent *e, uint64_t val, uint32_t type, struct verr *err)
{
	uint8_t m[512] = {0};

	le64_put(m, val);
	le32_put(m + 12, type);
	int r = file_pwrite(&e->file, e->next_sector * 512, m, 512, err);
	e->next_sector++;
	return r;
}

/* Compress the pending grain and append it after the last one. */
static int stream_put_grain(struct extent *e, struct verr *err)
{
	uint64_t gbytes = e->grain * 512, g = e->pend_grain, clen_max;
	uLongf clen;
	int r;

	if (!e->pending)
		return 0;
	clen_max = compressBound((uLong)gbytes) + 12;
	if (!e->zbuf && !(e->zbuf = malloc(clen_max + 512)))
		return verr_set(err, ENOMEM, "out of memory");
	clen = (uLongf)clen_max;
	if (compress2(e->zbuf + 12, &clen, e->pend_buf, (uLong)gbytes, Z_DEFAULT_COMPRESSION) != Z_OK)
		return verr_set(err, EIO, "%s: compression failed", E(e));
	le64_put(e->zbuf, g * e->grain);
	le32_put(e->zbuf + 8, (uint32_t)clen);
	size_t total = (12 + clen + 511) & ~(size_t)511;
	memset(e->zbuf + 12 + clen, 0, total - 12 - clen);
	r = file_pwrite(&e->file, e->next_sector * 512, e->zbuf, total, err);
	if (r)
		return r;
	e->all_gt[g] = (uint32_t)e->next_sector;
	e->next_sector += total / 512;
	e->pending = false;
	return 0;
}

/* A grain is kept until a write lands in another one (or a flush or close),
 * so that a grain written in pieces (a source with holes inside a grain)
 * still goes out once. Each grain is whole: the last one too, with zeros
 * past the capacity, as the specification's grainSize says. */
static int stream_write(struct extent *e, uint64_t off, const uint8_t *buf, size_t n,
			struct verr *err)
{
	uint64_t gbytes = e->grain * 512, g = off / gbytes;
	int r;

	if (!e->all_gt) {
		e->all_gt = calloc((size_t)e->n_gd * e->gtes, 4);
		e->next_sector = e->overhead;
		if (!e->all_gt)
			return verr_set(err, ENOMEM, "out of memory");
	}
	if (e->all_gt[g])
		return verr_set(err, ENOTSUP, "%s: streamOptimized grain %llu written twice",
				E(e), (unsigned long long)g);
	if (e->pending && e->pend_grain != g && (r = stream_put_grain(e, err)))
		return r;
	if (!e->pending) {
		if (!e->pend_buf && !(e->pend_buf = malloc(gbytes)))
			return verr_set(err, ENOMEM, "out of memory");
		memset(e->pend_buf, 0, gbytes);
		e->pend_grain = g;
		e->pending = true;
	}
	memcpy(e->pend_buf + off % gbytes, buf, n);
	return 0;
}

static int stream_finish(struct extent *e, struct verr *err)
{
	if (!e->all_gt)
		e->next_sector = e->overhead;
	uint32_t *gd = calloc(e->n_gd ? e->n_gd : 1, 4), buf[512];
	uint64_t gd_sectors = ((uint64_t)e->n_gd * 4 + 511) / 512;
	int r = stream_put_grain(e, err);

	if (!gd)
		return verr_set(err, ENOMEM, "out of memory");
	if (!e->all_gt)
		e->all_gt = calloc((size_t)e->n_gd * e->gtes + 1, 4);
	for (uint32_t i = 0; i < e->n_gd && !r && e->all_gt; i++) {
		bool any = false;
		for (uint32_t j = 0; j < e->gtes; j++) {
			le32_put(&buf[j], e->all_gt[(uint64_t)i * e->gtes + j]);
			any |= buf[j] != 0;
		}
		if (!any)
			continue;
		r = marker(e, 4, MARKER_GT, err);
		gd[i] = (uint32_t)e->next_sector;
		if (!r)
			r = file_pwrite(&e->file, e->next_sector * 512, buf, sizeof(buf), err);
		e->next_sector += 4;
	}
	for (uint32_t i = 0; i < e->n_gd; i++)
		le32_put(&gd[i], gd[i]);
	if (!r)
		r = marker(e, gd_sectors, MARKER_GD, err);
	uint64_t gd_at = e->next_sector;
	if (!r)
		r = file_pwrite(&e->file, gd_at * 512, gd, (size_t)e->n_gd * 4, err);
	e->next_sector += gd_sectors;
	free(gd);
	uint8_t footer[512];
	memcpy(footer, e->header, 512);
	le64_put(footer + 56, gd_at);
	if (!r)
		r = marker(e, 1, MARKER_FOOTER, err);
	if (!r)
		r = file_pwrite(&e->file, e->next_sector * 512, footer, 512, err);
	e->next_sector++;
	if (!r)
		r = marker(e, 0, MARKER_EOS, err);
	if (!r)
		r = file_truncate(&e->file, e->next_sector * 512, err);
	return r;
}

/* ---- ops ---- */

static struct extent *find_ext(struct vmdk *v, uint64_t off, uint64_t *rel, uint64_t *avail)
{
	uint64_t s = off / 512;

	for (int i = 0; i < v->n_ext; i++) {
		struct extent *e = &v->ext[i];
		if (s >= e->start && s < e->start + e->sectors) {
			*rel = off - e->start * 512;
			*avail = (e->start + e->sectors) * 512 - off;
			return e;
		}
	}
	return NULL;
}

static int do_io(struct block_dev *bd, uint64_t off, uint8_t *rbuf, const uint8_t *wbuf,
		 size_t len, struct verr *err)
{
	struct vmdk *v = bd->opaque;

	while (len) {
		uint64_t rel, avail, n;
		struct extent *e = find_ext(v, off, &rel, &avail);
		int r = 0;
		if (!e)
			return verr_set(err, EIO, "%s: no extent covers offset %llu", bd->filename,
					(unsigned long long)off);
		n = avail < len ? avail : len;
		if (e->type == EXT_SPARSE) {
			uint64_t gb = e->grain * 512;
			if (n > gb - rel % gb)
				n = gb - rel % gb;
			r = rbuf ? sparse_read(v, e, rel, rbuf, (size_t)n, err)
				 : sparse_write(v, e, rel, wbuf, (size_t)n, err);
		} else if (e->type == EXT_FLAT) {
			uint64_t fo = e->flat_offset * 512 + rel;
			r = rbuf ? file_pread(&e->file, fo, rbuf, (size_t)n, err)
				 : file_pwrite(&e->file, fo, wbuf, (size_t)n, err);
		} else if (rbuf) {
			memset(rbuf, 0, (size_t)n);
		} else {
			r = verr_set(err, EROFS, "%s: cannot write to a ZERO extent", bd->filename);
		}
		if (r)
			return r;
		off += n;
		len -= (size_t)n;
		if (rbuf)
			rbuf += n;
		else
			wbuf += n;
	}
	return 0;
}

static int vmdk_read(struct block_dev *bd, uint64_t off, void *buf, size_t len, struct verr *err)
{
	return do_io(bd, off, buf, NULL, len, err);
}

static int vmdk_write(struct block_dev *bd, uint64_t off, const void *buf, size_t len,
		      struct verr *err)
{
	return do_io(bd, off, NULL, buf, len, err);
}

static int vmdk_flush(struct block_dev *bd, struct verr *err)
{
	struct vmdk *v = bd->opaque;

	for (int i = 0; i < v->n_ext; i++) {
		int r = 0;
		if (v->ext[i].stream)
			r = stream_put_grain(&v->ext[i], err);
		else if (v->ext[i].file.fd >= 0)
			r = file_sync(&v->ext[i].file, err);
		if (r)
			return r;
	}
	return 0;
}

static void vmdk_close(struct block_dev *bd)
{
	struct vmdk *v = bd->opaque;
	struct verr err = {0};

	if (!v)
		return;
	for (int i = 0; i < v->n_ext; i++)
		if (v->ext[i].stream)
			stream_finish(&v->ext[i], &err);
	vmdk_free(v);
	bd->opaque = NULL;
}

static int vmdk_block_status(struct block_dev *bd, uint64_t off, uint64_t len,
			     struct block_status *st, struct verr *err)
{
	struct vmdk *v = bd->opaque;
	uint64_t rel, avail;
	struct extent *e = find_ext(v, off, &rel, &avail);
	uint32_t s;
	int r;

	if (!e)
		return verr_set(err, EIO, "%s: no extent covers offset %llu", bd->filename,
				(unsigned long long)off);
	st->length = avail;
	if (e->type == EXT_FLAT) {
		st->flags = BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_DATA | BLOCK_STATUS_OFFSET;
		st->offset = e->flat_offset * 512 + rel;
		return 0;
	}
	if (e->type == EXT_ZERO) {
		st->flags = BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_ZERO;
		return 0;
	}
	st->length = e->grain * 512 - rel % (e->grain * 512);
	r = gte(e, rel / 512, &s, err);
	if (r)
		return r;
	if (s == 0)
		st->flags = BLOCK_STATUS_ZERO;
	else if (s == 1 && (e->flags & VMDK_FLAG_ZERO_GRAIN))
		st->flags = BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_ZERO;
	else if (e->flags & VMDK_FLAG_COMPRESSED)
		st->flags = BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_DATA | BLOCK_STATUS_COMPRESSED;
	else {
		st->flags = BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_DATA | BLOCK_STATUS_OFFSET;
		st->offset = (uint64_t)s * 512 + rel % (e->grain * 512);
	}
	return 0;
}

/* Every grain a table names must lie inside its extent file, after the
 * metadata; anything else is a corruption (there are no refcounts to leak). */
static int vmdk_check(struct block_dev *bd, enum block_fix fix, struct block_check *res,
		      struct verr *err)
{
	struct vmdk *v = bd->opaque;

	if (fix)
		return verr_set(err, ENOTSUP, "%s: VMDK images cannot be repaired", bd->filename);
	for (int i = 0; i < v->n_ext; i++) {
		struct extent *e = &v->ext[i];
		if (e->type != EXT_SPARSE || e->stream)
			continue;
		res->total_clusters += (e->sectors + e->grain - 1) / e->grain;
		res->image_end_offset += e->file_size;
		for (uint32_t g = 0; g < e->n_gd; g++) {
			int r;
			if (!e->gd[g])
				continue;
			r = load_gt(e, g, err);
			if (r)
				return r;
			for (uint32_t k = 0; k < e->gtes; k++) {
				uint64_t s = e->gt[k];
				bool comp = e->flags & VMDK_FLAG_COMPRESSED;
				if (s == 0 || (s == 1 && (e->flags & VMDK_FLAG_ZERO_GRAIN)))
					continue;
				res->allocated_clusters++;
				res->compressed_clusters += comp;
				if (s < e->overhead && !comp) {
					fprintf(stderr, "ERROR: %s: grain at sector %llu overlaps the "
						"metadata\n", E(e), (unsigned long long)s);
					res->corruptions++;
				} else if (s * 512 + (comp ? 12 : e->grain * 512) > e->file_size) {
					fprintf(stderr, "ERROR: %s: grain at sector %llu is beyond the "
						"end of the file\n", E(e), (unsigned long long)s);
					res->corruptions++;
				}
			}
		}
	}
	return 0;
}

static int vmdk_get_info(struct block_dev *bd, struct block_info *info, struct verr *err)
{
	struct vmdk *v = bd->opaque;

	snprintf(info->vmdk_create_type, sizeof(info->vmdk_create_type), "%s", v->create_type);
	info->vmdk_cid = v->cid;
	info->vmdk_parent_cid = v->parent_cid;
	for (int i = 0; i < v->n_ext; i++)
		if (v->ext[i].type == EXT_SPARSE) {
			info->cluster_size = (uint32_t)(v->ext[i].grain * 512);
			break;
		}
	return 0;
}

static uint32_t vmdk_granularity(struct block_dev *bd)
{
	struct vmdk *v = bd->opaque;
	for (int i = 0; i < v->n_ext; i++)
		if (v->ext[i].type == EXT_SPARSE)
			return (uint32_t)(v->ext[i].grain * 512);
	return 65536;
}

/* ---- create ---- */

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static void descriptor(char *out, size_t len, const char *type, const char *extents,
		       uint64_t sectors)
{
	uint64_t cyl = sectors / (16 * 63);
	if (cyl > 16383)
		cyl = 16383;
	snprintf(out, len, "# Disk DescriptorFile\nversion=1\nCID=%08x\nparentCID=ffffffff\n"
		 "createType=\"%s\"\n\n# Extent description\n%s\n# The Disk Data Base\n#DDB\n\n"
		 "ddb.virtualHWVersion = \"4\"\nddb.geometry.cylinders = \"%llu\"\n"
		 "ddb.geometry.heads = \"16\"\nddb.geometry.sectors = \"63\"\n"
		 "ddb.adapterType = \"ide\"\n", (unsigned)time(NULL) ^ 0x5a5a1234u, type,
		 extents, (unsigned long long)cyl);
}

static int write_all(int fd, uint64_t off, const void *buf, size_t len, const char *path,
		     struct verr *err)
{
	if (pwrite(fd, buf, len, (off_t)off) != (ssize_t)len)
		return verr_set(err, errno ? errno : EIO, "%s: write failed", path);
	return 0;
}

static int stream_finish(struct extent *e, struct verr *err);

/* An empty stream: header, descriptor, then an all-zero directory and footer. */
static int finish_empty_stream(int fd, const char *path, const uint8_t *h, struct verr *err)
{
	struct extent e;
	int r;

	memset(&e, 0, sizeof(e));
	e.file.fd = fd;
	snprintf(e.file.filename, sizeof(e.file.filename), "%s", path);
	memcpy(e.header, h, 512);
	r = parse_header(&e, err);
	if (!r)
		r = stream_finish(&e, err);
	free(e.all_gt);
	free(e.zbuf);
	return r;
}

static int create_sparse(const char *path, uint64_t sectors, bool stream, struct verr *err)
{
	uint64_t grain = 128, cover = grain * 512, ngd = (sectors + cover - 1) / cover;
	uint64_t gd_sec = (ngd * 4 + 511) / 512, gd_at = 21, gts_at = gd_at + gd_sec;
	uint64_t overhead = stream ? 128 : (gts_at + ngd * 4 + grain - 1) / grain * grain;
	uint8_t h[512] = {0};
	char desc[20 * 512] = {0}, ext[BLOCK_PATH_MAX + 64];
	int fd, r;

	le32_put(h, VMDK_MAGIC);
	le32_put(h + 4, stream ? 3 : 1);
	le32_put(h + 8, 1 | (stream ? VMDK_FLAG_COMPRESSED | VMDK_FLAG_MARKERS : 0));
	le64_put(h + 12, sectors);
	le64_put(h + 20, grain);
	le64_put(h + 28, 1);
	le64_put(h + 36, 20);
	le32_put(h + 44, 512);
	le64_put(h + 56, stream ? VMDK_GD_AT_END : gd_at);
	le64_put(h + 64, overhead);
	h[73] = '\n';
	h[74] = ' ';
	h[75] = '\r';
	h[76] = '\n';
	le16_put(h + 77, stream ? 1 : 0);
	snprintf(ext, sizeof(ext), "RW %llu SPARSE \"%s\"\n", (unsigned long long)sectors,
		 base_name(path));
	descriptor(desc, sizeof(desc), stream ? "streamOptimized" : "monolithicSparse", ext,
		   sectors);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return verr_set(err, errno, "%s: cannot create: %s", path, strerror(errno));
	r = write_all(fd, 0, h, 512, path, err);
	if (!r)
		r = write_all(fd, 512, desc, sizeof(desc), path, err);
	for (uint64_t i = 0; i < ngd && !r && !stream; i++) {
		uint8_t le[4];
		le32_put(le, (uint32_t)(gts_at + i * 4));
		r = write_all(fd, gd_at * 512 + i * 4, le, 4, path, err);
	}
	if (!r && ftruncate(fd, (off_t)(overhead * 512)) < 0)
		r = verr_set(err, errno, "%s: cannot size the file", path);
	if (!r && stream)
		r = finish_empty_stream(fd, path, h, err);
	close(fd);
	return r;
}

static int create_flat(const char *path, uint64_t sectors, struct verr *err)
{
	char flat[BLOCK_PATH_MAX], ext[BLOCK_PATH_MAX + 64], desc[8192];
	const char *dot = strrchr(path, '.');
	int fd, r = 0;

	snprintf(flat, sizeof(flat), "%.*s-flat.vmdk", (int)(dot ? dot - path : (long)strlen(path)),
		 path);
	fd = open(flat, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return verr_set(err, errno, "%s: cannot create: %s", flat, strerror(errno));
	if (ftruncate(fd, (off_t)(sectors * 512)) < 0)
		r = verr_set(err, errno, "%s: cannot size the file", flat);
	close(fd);
	snprintf(ext, sizeof(ext), "RW %llu FLAT \"%s\" 0\n", (unsigned long long)sectors,
		 base_name(flat));
	descriptor(desc, sizeof(desc), "monolithicFlat", ext, sectors);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return verr_set(err, errno, "%s: cannot create: %s", path, strerror(errno));
	if (!r)
		r = write_all(fd, 0, desc, strlen(desc), path, err);
	close(fd);
	return r;
}

static int vmdk_create(const char *path, const struct block_create_opts *o, struct verr *err)
{
	const char *sub = o->subformat ? o->subformat : "monolithicSparse";
	uint64_t sectors = (o->size + 511) / 512;

	if (o->backing_file)
		return verr_set(err, ENOTSUP, "%s: VMDK backing files are not supported", path);
	if (sectors > (1ull << 32) * 128)
		return verr_set(err, EFBIG, "%s: size too large for VMDK", path);
	if (!strcmp(sub, "monolithicSparse"))
		return create_sparse(path, sectors, false, err);
	if (!strcmp(sub, "streamOptimized"))
		return create_sparse(path, sectors, true, err);
	if (!strcmp(sub, "monolithicFlat"))
		return create_flat(path, sectors, err);
	return verr_set(err, ENOTSUP, "%s: VMDK subformat '%s' cannot be created (use "
			"monolithicSparse, monolithicFlat or streamOptimized)", path, sub);
}

const struct block_driver block_vmdk_driver = {
	.name = "vmdk",
	.probe = vmdk_probe,
	.create = vmdk_create,
	.open = vmdk_open,
	.close = vmdk_close,
	.read = vmdk_read,
	.write = vmdk_write,
	.flush = vmdk_flush,
	.block_status = vmdk_block_status,
	.get_info = vmdk_get_info,
	.check = vmdk_check,
	.granularity = vmdk_granularity,
};
