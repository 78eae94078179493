/* SPDX-License-Identifier: Apache-2.0 */
#include "block/block.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/drivers.h"
#include "block/file.h"

static const struct block_driver *const drivers[] = {
	&block_raw_driver,
	&block_qcow2_driver,
	&block_vmdk_driver,
};
#define N_DRIVERS (sizeof(drivers) / sizeof(drivers[0]))

const struct block_driver *block_find_driver(const char *name)
{
	for (size_t i = 0; i < N_DRIVERS; i++)
		if (strcmp(drivers[i]->name, name) == 0)
			return drivers[i];
	return NULL;
}

const char *block_probe(const uint8_t *buf, size_t len)
{
	const char *best = "raw";
	int score = 0;

	for (size_t i = 0; i < N_DRIVERS; i++) {
		int s = drivers[i]->probe ? drivers[i]->probe(buf, len) : 0;
		if (s > score) {
			score = s;
			best = drivers[i]->name;
		}
	}
	return best;
}

static int open_fd(const char *path, const struct block_open_opts *o, bool *direct,
		   struct verr *err)
{
	int flags = (o->read_write ? O_RDWR : O_RDONLY) | O_CLOEXEC;
	int fd;

	*direct = o->cache == BLOCK_CACHE_NONE;
	fd = open(path, flags | (*direct ? O_DIRECT : 0));
	if (fd < 0 && *direct && errno == EINVAL) {
		/* tmpfs and friends have no O_DIRECT: fall back to the page cache. */
		*direct = false;
		fd = open(path, flags);
	}
	if (fd < 0)
		return verr_set(err, errno, "%s: cannot open: %s", path, strerror(errno));
	return fd;
}

static int probe_fd(struct block_dev *bd, const char **fmt, struct verr *err)
{
	uint8_t *buf = file_alloc(4096);
	int r;

	if (!buf)
		return verr_set(err, ENOMEM, "out of memory");
	r = file_pread(bd, 0, buf, 4096, err);
	if (r == 0)
		*fmt = block_probe(buf, 4096);
	free(buf);
	return r;
}

int block_open(const char *path, const struct block_open_opts *o, struct block_dev **out,
	       struct verr *err)
{
	struct block_dev *bd = calloc(1, sizeof(*bd));
	const char *fmt = o->format;
	int r;

	if (!bd)
		return verr_set(err, ENOMEM, "out of memory");
	snprintf(bd->filename, sizeof(bd->filename), "%s", path);
	bd->read_only = !o->read_write;
	bd->cache = o->cache;
	r = open_fd(path, o, &bd->direct, err);
	if (r < 0) {
		free(bd);
		return r;
	}
	bd->fd = r;
	if (!fmt && (r = probe_fd(bd, &fmt, err)) < 0)
		goto fail;
	bd->drv = block_find_driver(fmt);
	if (!bd->drv) {
		r = verr_set(err, EINVAL, "%s: unknown format '%s'", path, fmt);
		goto fail;
	}
	r = bd->drv->open(bd, o, err);
	if (r < 0)
		goto fail;
	bd->probed_raw = !o->format && !strcmp(bd->drv->name, "raw");
	*out = bd;
	return 0;
fail:
	close(bd->fd);
	free(bd);
	return r;
}

void block_close(struct block_dev *bd)
{
	if (!bd)
		return;
	if (bd->drv && bd->drv->close)
		bd->drv->close(bd);
	if (bd->backing)
		block_close(bd->backing);
	if (bd->fd >= 0)
		close(bd->fd);
	free(bd);
}

int block_create(const char *fmt, const char *path, const struct block_create_opts *o,
		 struct verr *err)
{
	const struct block_driver *drv = block_find_driver(fmt);

	if (!drv)
		return verr_set(err, EINVAL, "unknown format '%s'", fmt);
	if (!drv->create)
		return verr_set(err, ENOTSUP, "format '%s' cannot create images", fmt);
	return drv->create(path, o, err);
}

void block_backing_path(const char *image, const char *backing, char *out, size_t outlen)
{
	char tmp[BLOCK_PATH_MAX];

	if (backing[0] == '/' || !strchr(image, '/')) {
		snprintf(out, outlen, "%s", backing);
		return;
	}
	snprintf(tmp, sizeof(tmp), "%s", image);
	snprintf(out, outlen, "%s/%s", dirname(tmp), backing);
}

static int chain_push(struct block_chain *c, const struct block_dev *bd, struct verr *err)
{
	struct stat st;

	if (fstat(bd->fd, &st) < 0)
		return verr_set(err, errno, "%s: stat failed", bd->filename);
	for (int i = 0; i < c->n; i++)
		if (c->dev[i] == st.st_dev && c->ino[i] == st.st_ino)
			return verr_set(err, ELOOP,
					"%s: backing file loop: '%s' is already in the chain",
					c->name[c->n - 1] ? c->name[c->n - 1] : bd->filename,
					bd->filename);
	if (c->n > BLOCK_MAX_BACKING_DEPTH)
		return verr_set(err, ELOOP, "%s: backing chain deeper than %d images",
				bd->filename, BLOCK_MAX_BACKING_DEPTH);
	c->dev[c->n] = st.st_dev;
	c->ino[c->n] = st.st_ino;
	c->name[c->n] = bd->filename;
	c->n++;
	return 0;
}

int block_open_backing(struct block_dev *bd, const char *name, const char *fmt,
		       const struct block_open_opts *o, struct verr *err)
{
	struct block_chain chain = {0};
	struct block_open_opts bo = *o;
	char path[BLOCK_PATH_MAX];
	int r;

	if (o->chain)
		chain = *o->chain;
	r = chain_push(&chain, bd, err);
	if (r < 0)
		return r;
	block_backing_path(bd->filename, name, path, sizeof(path));
	bo.format = fmt && *fmt ? fmt : NULL;
	bo.read_write = false;
	bo.chain = &chain;
	/* The chain struct lives on this stack frame: only the nested open uses it. */
	r = block_open(path, &bo, &bd->backing, err);
	/* Name the image whose backing file failed, once: deeper failures
	 * already say which file of the chain is at fault. */
	if (r < 0 && err && !strstr(err->msg, "loop") && !strstr(err->msg, "backing"))
		verr_prefix(err, "%s: cannot open backing file: ", bd->filename);
	if (r == 0) {
		struct stat st;
		if (fstat(bd->backing->fd, &st) == 0)
			for (int i = 0; i < chain.n; i++)
				if (chain.dev[i] == st.st_dev && chain.ino[i] == st.st_ino) {
					block_close(bd->backing);
					bd->backing = NULL;
					return verr_set(err, ELOOP,
						"%s: backing file loop: '%s' is already in the chain",
						bd->filename, path);
				}
	}
	return r;
}

static int bounds(struct block_dev *bd, uint64_t off, uint64_t len, struct verr *err)
{
	if (off > bd->size || len > bd->size - off)
		return verr_set(err, EINVAL, "%s: request [0x%llx, +0x%llx) is beyond the end "
				"of the image (%llu bytes)", bd->filename,
				(unsigned long long)off, (unsigned long long)len,
				(unsigned long long)bd->size);
	return 0;
}

static int writable(struct block_dev *bd, struct verr *err)
{
	if (bd->read_only)
		return verr_set(err, EROFS, "%s: image is open read-only", bd->filename);
	return 0;
}

static int unsupported(struct block_dev *bd, const char *what, struct verr *err)
{
	return verr_set(err, ENOTSUP, "%s: format %s does not support %s", bd->filename,
			bd->drv->name, what);
}

int block_read(struct block_dev *bd, uint64_t off, void *buf, size_t len, struct verr *err)
{
	int r = bounds(bd, off, len, err);
	return r ? r : bd->drv->read(bd, off, buf, len, err);
}

int block_write(struct block_dev *bd, uint64_t off, const void *buf, size_t len, struct verr *err)
{
	int r = writable(bd, err);
	if (!r)
		r = bounds(bd, off, len, err);
	if (!r && !bd->drv->write)
		r = unsupported(bd, "writing", err);
	return r ? r : bd->drv->write(bd, off, buf, len, err);
}

int block_write_compressed(struct block_dev *bd, uint64_t off, const void *buf, size_t len,
			   struct verr *err)
{
	int r = writable(bd, err);
	if (!r)
		r = bounds(bd, off, len, err);
	if (!r && !bd->drv->write_compressed)
		r = unsupported(bd, "compression", err);
	return r ? r : bd->drv->write_compressed(bd, off, buf, len, err);
}

int block_flush(struct block_dev *bd, struct verr *err)
{
	if (bd->read_only || !bd->drv->flush)
		return 0;
	return bd->drv->flush(bd, err);
}

int block_discard(struct block_dev *bd, uint64_t off, uint64_t len, struct verr *err)
{
	int r = writable(bd, err);
	if (!r)
		r = bounds(bd, off, len, err);
	if (r || !bd->drv->discard)
		return r; /* discard is a hint: nothing to do is fine */
	return bd->drv->discard(bd, off, len, err);
}

int block_write_zeroes(struct block_dev *bd, uint64_t off, uint64_t len, struct verr *err)
{
	int r = writable(bd, err);
	if (!r)
		r = bounds(bd, off, len, err);
	if (r)
		return r;
	if (bd->drv->write_zeroes)
		return bd->drv->write_zeroes(bd, off, len, err);
	return unsupported(bd, "write_zeroes", err);
}

int block_status(struct block_dev *bd, uint64_t off, uint64_t len, struct block_status *st,
		 struct verr *err)
{
	int r = bounds(bd, off, len, err);

	if (r)
		return r;
	memset(st, 0, sizeof(*st));
	if (!len)
		return 0;
	if (!bd->drv->block_status) {
		st->length = len;
		st->flags = BLOCK_STATUS_DATA | BLOCK_STATUS_ALLOCATED;
		return 0;
	}
	r = bd->drv->block_status(bd, off, len, st, err);
	if (r == 0 && (st->length == 0 || st->length > len))
		st->length = len;
	return r;
}

int block_status_chain(struct block_dev *bd, uint64_t off, uint64_t len,
		       struct block_status *st, struct verr *err)
{
	int depth = 0;
	int r;

	for (;;) {
		r = block_status(bd, off, len, st, err);
		if (r < 0)
			return r;
		st->depth = depth;
		if (st->flags & BLOCK_STATUS_ALLOCATED)
			return 0;
		if (!bd->backing || off >= bd->backing->size) {
			st->flags |= BLOCK_STATUS_ZERO;
			return 0;
		}
		/* Continue in the backing file for this run only. */
		len = st->length;
		if (off + len > bd->backing->size)
			len = bd->backing->size - off;
		bd = bd->backing;
		depth++;
	}
}

int block_resize(struct block_dev *bd, uint64_t size, bool shrink, struct verr *err)
{
	int r = writable(bd, err);
	if (r)
		return r;
	if (!bd->drv->resize)
		return unsupported(bd, "resizing", err);
	if (size < bd->size && !shrink)
		return verr_set(err, EINVAL, "%s: shrinking needs --shrink (data past the new "
				"end is lost)", bd->filename);
	return bd->drv->resize(bd, size, shrink, err);
}

int block_get_info(struct block_dev *bd, struct block_info *info, struct verr *err)
{
	memset(info, 0, sizeof(*info));
	info->virtual_size = bd->size;
	info->format = bd->drv->name;
	if (bd->drv->get_info)
		return bd->drv->get_info(bd, info, err);
	return 0;
}

int block_check(struct block_dev *bd, enum block_fix fix, struct block_check *res,
		struct verr *err)
{
	memset(res, 0, sizeof(*res));
	if (!bd->drv->check)
		return unsupported(bd, "checks", err);
	return bd->drv->check(bd, fix, res, err);
}

uint32_t block_granularity(struct block_dev *bd)
{
	return bd->drv->granularity ? bd->drv->granularity(bd) : 65536;
}
