/* SPDX-License-Identifier: Apache-2.0 */
/* raw: the image is the disk, byte for byte. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/drivers.h"
#include "block/file.h"

static int raw_open(struct block_dev *bd, const struct block_open_opts *o, struct verr *err)
{
	return file_size(bd, &bd->size, err);
}

static int raw_read(struct block_dev *bd, uint64_t off, void *buf, size_t len, struct verr *err)
{
	return file_pread(bd, off, buf, len, err);
}

static int raw_write(struct block_dev *bd, uint64_t off, const void *buf, size_t len,
		     struct verr *err)
{
	return file_pwrite(bd, off, buf, len, err);
}

static int raw_flush(struct block_dev *bd, struct verr *err)
{
	return file_sync(bd, err);
}

static int raw_discard(struct block_dev *bd, uint64_t off, uint64_t len, struct verr *err)
{
	return file_zero(bd, off, len, true, err);
}

static int raw_write_zeroes(struct block_dev *bd, uint64_t off, uint64_t len, struct verr *err)
{
	return file_zero(bd, off, len, false, err);
}

/* SEEK_DATA/SEEK_HOLE tell data from holes; a file system without them
 * reports everything as data, which is always correct. */
static int raw_block_status(struct block_dev *bd, uint64_t off, uint64_t len,
			    struct block_status *st, struct verr *err)
{
	off_t data = lseek(bd->fd, (off_t)off, SEEK_DATA);
	off_t hole;

	st->flags = BLOCK_STATUS_ALLOCATED | BLOCK_STATUS_OFFSET;
	st->offset = off;
	if (data < 0 && errno == ENXIO) {
		st->flags |= BLOCK_STATUS_ZERO;
		st->length = len;
		return 0;
	}
	if (data < 0) {
		st->flags |= BLOCK_STATUS_DATA;
		st->length = len;
		return 0;
	}
	if ((uint64_t)data > off) {
		st->flags |= BLOCK_STATUS_ZERO;
		st->length = (uint64_t)data - off;
		return 0;
	}
	hole = lseek(bd->fd, (off_t)off, SEEK_HOLE);
	st->flags |= BLOCK_STATUS_DATA;
	st->length = hole > (off_t)off ? (uint64_t)hole - off : len;
	return 0;
}

static int raw_map_direct(struct block_dev *bd, uint64_t off, size_t len, bool write,
			  uint64_t *host)
{
	*host = off;
	return 0;
}

static int raw_resize(struct block_dev *bd, uint64_t size, bool shrink, struct verr *err)
{
	int r = file_truncate(bd, size, err);
	if (r == 0)
		bd->size = size;
	return r;
}

static int prealloc(int fd, const char *path, uint64_t size, const char *mode, struct verr *err)
{
	if (!mode || !strcmp(mode, "off") || !strcmp(mode, "metadata"))
		return 0;
	if (!strcmp(mode, "falloc")) {
		if (posix_fallocate(fd, 0, (off_t)size))
			return verr_set(err, EIO, "%s: preallocation failed", path);
		return 0;
	}
	if (!strcmp(mode, "full")) {
		size_t chunk = 1 << 20;
		char *z = calloc(1, chunk);
		uint64_t off = 0;
		if (!z)
			return verr_set(err, ENOMEM, "out of memory");
		while (off < size) {
			size_t n = size - off < chunk ? (size_t)(size - off) : chunk;
			if (pwrite(fd, z, n, (off_t)off) != (ssize_t)n) {
				free(z);
				return verr_set(err, errno ? errno : EIO, "%s: write failed", path);
			}
			off += n;
		}
		free(z);
		return 0;
	}
	return verr_set(err, EINVAL, "%s: unknown preallocation mode '%s'", path, mode);
}

static int raw_create(const char *path, const struct block_create_opts *o, struct verr *err)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int r;

	if (fd < 0)
		return verr_set(err, errno, "%s: cannot create: %s", path, strerror(errno));
	r = ftruncate(fd, (off_t)o->size) < 0
		? verr_set(err, errno, "%s: cannot set size: %s", path, strerror(errno))
		: prealloc(fd, path, o->size, o->preallocation, err);
	close(fd);
	return r;
}

const struct block_driver block_raw_driver = {
	.name = "raw",
	.create = raw_create,
	.open = raw_open,
	.read = raw_read,
	.write = raw_write,
	.flush = raw_flush,
	.discard = raw_discard,
	.write_zeroes = raw_write_zeroes,
	.block_status = raw_block_status,
	.resize = raw_resize,
	.map_direct = raw_map_direct,
	.direct_fua = true,
};
