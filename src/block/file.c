/* SPDX-License-Identifier: Apache-2.0 */
#include "block/file.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ALIGN FILE_DIRECT_ALIGN

void *file_alloc(size_t len)
{
	void *p = NULL;
	size_t n = (len + ALIGN - 1) & ~(size_t)(ALIGN - 1);

	if (posix_memalign(&p, ALIGN, n ? n : ALIGN))
		return NULL;
	return p;
}

static bool aligned(const struct block_dev *bd, uint64_t off, const void *buf, size_t len)
{
	return !bd->direct ||
	       ((off | len | (uintptr_t)buf) & (ALIGN - 1)) == 0;
}

static int raw_pread(struct block_dev *bd, uint64_t off, void *buf, size_t len, struct verr *err)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t r = pread(bd->fd, p, len, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return verr_set(err, errno, "%s: read of %zu bytes at offset 0x%llx failed: %s",
					bd->filename, len, (unsigned long long)off, strerror(errno));
		if (r == 0) {
			memset(p, 0, len);
			break;
		}
		p += r;
		off += (uint64_t)r;
		len -= (size_t)r;
	}
	return 0;
}

static int raw_pwrite(struct block_dev *bd, uint64_t off, const void *buf, size_t len,
		      struct verr *err)
{
	const uint8_t *p = buf;

	while (len) {
		ssize_t r = pwrite(bd->fd, p, len, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return verr_set(err, r < 0 ? errno : EIO,
					"%s: write of %zu bytes at offset 0x%llx failed: %s",
					bd->filename, len, (unsigned long long)off,
					r < 0 ? strerror(errno) : "no progress");
		p += r;
		off += (uint64_t)r;
		len -= (size_t)r;
	}
	return 0;
}

/* O_DIRECT with an unaligned request: go through an aligned bounce buffer
 * covering the enclosing aligned range. */
static int bounce(struct block_dev *bd, uint64_t off, void *rbuf, const void *wbuf, size_t len,
		  struct verr *err)
{
	uint64_t start = off & ~(uint64_t)(ALIGN - 1);
	uint64_t end = (off + len + ALIGN - 1) & ~(uint64_t)(ALIGN - 1);
	size_t n = (size_t)(end - start);
	uint8_t *b = file_alloc(n);
	int r;

	if (!b)
		return verr_set(err, ENOMEM, "%s: out of memory for a bounce buffer", bd->filename);
	r = raw_pread(bd, start, b, n, err);
	if (r == 0 && rbuf)
		memcpy(rbuf, b + (off - start), len);
	if (r == 0 && wbuf) {
		memcpy(b + (off - start), wbuf, len);
		r = raw_pwrite(bd, start, b, n, err);
	}
	free(b);
	return r;
}

int file_pread(struct block_dev *bd, uint64_t off, void *buf, size_t len, struct verr *err)
{
	if (!len)
		return 0;
	if (!aligned(bd, off, buf, len))
		return bounce(bd, off, buf, NULL, len, err);
	return raw_pread(bd, off, buf, len, err);
}

int file_pwrite(struct block_dev *bd, uint64_t off, const void *buf, size_t len,
		struct verr *err)
{
	uint64_t size;
	int r;

	if (!len)
		return 0;
	if (aligned(bd, off, buf, len))
		return raw_pwrite(bd, off, buf, len, err);
	/* A bounced write past EOF would extend the file to the aligned end;
	 * trim it back so the file size stays what the caller asked for. */
	if (file_size(bd, &size, err) < 0)
		return -EIO;
	r = bounce(bd, off, NULL, buf, len, err);
	if (r == 0 && off + len > size && ((off + len) & (ALIGN - 1)))
		r = file_truncate(bd, off + len, err);
	return r;
}

int file_sync(struct block_dev *bd, struct verr *err)
{
	if (bd->cache == BLOCK_CACHE_UNSAFE)
		return 0;
	if (fdatasync(bd->fd) < 0)
		return verr_set(err, errno, "%s: flush failed: %s", bd->filename, strerror(errno));
	return 0;
}

int file_size(struct block_dev *bd, uint64_t *size, struct verr *err)
{
	struct stat st;

	if (fstat(bd->fd, &st) < 0)
		return verr_set(err, errno, "%s: stat failed: %s", bd->filename, strerror(errno));
	if (S_ISBLK(st.st_mode)) {
		off_t end = lseek(bd->fd, 0, SEEK_END);
		if (end < 0)
			return verr_set(err, errno, "%s: cannot size block device", bd->filename);
		*size = (uint64_t)end;
		return 0;
	}
	*size = (uint64_t)st.st_size;
	return 0;
}

int file_truncate(struct block_dev *bd, uint64_t size, struct verr *err)
{
	if (ftruncate(bd->fd, (off_t)size) < 0)
		return verr_set(err, errno, "%s: cannot set file size to %llu: %s", bd->filename,
				(unsigned long long)size, strerror(errno));
	return 0;
}

static int write_zero_buf(struct block_dev *bd, uint64_t off, uint64_t len, struct verr *err)
{
	size_t chunk = 1u << 20;
	uint8_t *z = file_alloc(chunk);
	int r = 0;

	if (!z)
		return verr_set(err, ENOMEM, "%s: out of memory", bd->filename);
	memset(z, 0, chunk);
	while (len && r == 0) {
		size_t n = len < chunk ? (size_t)len : chunk;
		r = file_pwrite(bd, off, z, n, err);
		off += n;
		len -= n;
	}
	free(z);
	return r;
}

int file_zero(struct block_dev *bd, uint64_t off, uint64_t len, bool punch, struct verr *err)
{
	uint64_t size;

	if (!len)
		return 0;
	if (file_size(bd, &size, err) < 0)
		return -EIO;
	if (punch && fallocate(bd->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off,
			       (off_t)len) == 0) {
		if (off + len > size)
			return file_truncate(bd, off + len, err);
		return 0;
	}
	if (fallocate(bd->fd, FALLOC_FL_ZERO_RANGE, (off_t)off, (off_t)len) == 0)
		return 0;
	return write_zero_buf(bd, off, len, err);
}
