/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Compressed clusters. zlib clusters are raw deflate streams with a 4 KiB
 * window (windowBits -12), zstd clusters are zstd frames. The stored length
 * is rounded up to sectors, so decompression stops at the end of the stream
 * and ignores whatever follows.
 */
#include <errno.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

#include "block/qcow2/qcow2.h"

static int inflate_cluster(struct qcow2 *q, const uint8_t *src, size_t slen, uint8_t *dst,
			   struct verr *err)
{
	z_stream s = {0};
	int r;

	if (inflateInit2(&s, -12) != Z_OK)
		return verr_set(err, ENOMEM, "%s: zlib init failed", q->name);
	s.next_in = (Bytef *)src;
	s.avail_in = (uInt)slen;
	s.next_out = dst;
	s.avail_out = q->cluster_size;
	r = inflate(&s, Z_FINISH);
	inflateEnd(&s);
	/* A full output buffer is success even if the stream has no end marker. */
	if ((r == Z_STREAM_END || r == Z_BUF_ERROR || r == Z_OK) && s.avail_out == 0)
		return 0;
	return verr_set(err, EIO, "%s: corrupt zlib compressed cluster (inflate %d, %u bytes "
			"short)", q->name, r, s.avail_out);
}

static int zstd_cluster(struct qcow2 *q, const uint8_t *src, size_t slen, uint8_t *dst,
			struct verr *err)
{
	ZSTD_DCtx *d = ZSTD_createDCtx();
	ZSTD_inBuffer in = { src, slen, 0 };
	ZSTD_outBuffer out = { dst, q->cluster_size, 0 };
	size_t r = 1;

	if (!d)
		return verr_set(err, ENOMEM, "%s: zstd init failed", q->name);
	/* Bounded: each call consumes input or produces output, or fails. */
	for (int i = 0; i < 1024 && out.pos < out.size && in.pos < in.size; i++) {
		size_t before = in.pos + out.pos;
		r = ZSTD_decompressStream(d, &out, &in);
		if (ZSTD_isError(r) || r == 0 || in.pos + out.pos == before)
			break;
	}
	ZSTD_freeDCtx(d);
	if (!ZSTD_isError(r) && out.pos == out.size)
		return 0;
	return verr_set(err, EIO, "%s: corrupt zstd compressed cluster (%s)", q->name,
			ZSTD_isError(r) ? ZSTD_getErrorName(r) : "short output");
}

int qcow2_decompress(struct qcow2 *q, const uint8_t *src, size_t slen, uint8_t *dst,
		     struct verr *err)
{
	if (q->compression_type == QCOW2_COMP_ZSTD)
		return zstd_cluster(q, src, slen, dst, err);
	return inflate_cluster(q, src, slen, dst, err);
}

static size_t deflate_cluster(const uint8_t *src, size_t len, uint8_t *dst, size_t dlen)
{
	z_stream s = {0};
	size_t out = 0;

	if (deflateInit2(&s, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -12, 9, Z_DEFAULT_STRATEGY) != Z_OK)
		return 0;
	s.next_in = (Bytef *)src;
	s.avail_in = (uInt)len;
	s.next_out = dst;
	s.avail_out = (uInt)dlen;
	if (deflate(&s, Z_FINISH) == Z_STREAM_END)
		out = dlen - s.avail_out;
	deflateEnd(&s);
	return out;
}

size_t qcow2_compress(int type, const uint8_t *src, size_t len, uint8_t *dst, size_t dlen)
{
	size_t r;

	if (type != QCOW2_COMP_ZSTD)
		return deflate_cluster(src, len, dst, dlen);
	r = ZSTD_compress(dst, dlen, src, len, 1);
	return ZSTD_isError(r) ? 0 : r;
}
