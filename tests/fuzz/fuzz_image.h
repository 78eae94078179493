/* SPDX-License-Identifier: Apache-2.0 */
/* Shared body of the image fuzzers: the input becomes an image file (a memfd,
 * or a file of a fixed name), opened with the format under test, then read
 * and checked. */
#ifndef VIREO_FUZZ_IMAGE_H
#define VIREO_FUZZ_IMAGE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "block/block.h"

#define FUZZ_IMAGE_MAX (16u << 20)

/* Open path as fmt, read a few sectors at the start, middle and end, then
 * walk the metadata. */
static inline void fuzz_image_path(const char *path, const char *fmt)
{
	struct block_open_opts o = { .format = fmt, .no_backing = true,
				     .l2_cache_bytes = 64 << 10 };
	struct block_dev *bd = NULL;
	struct verr err = {0};
	uint8_t buf[4096];

	if (block_open(path, &o, &bd, &err) < 0)
		return;
	uint64_t offs[3] = { 0, bd->size / 2, bd->size > sizeof(buf) ? bd->size - sizeof(buf) : 0 };
	for (int i = 0; i < 3; i++) {
		size_t n = bd->size - offs[i] < sizeof(buf) ? (size_t)(bd->size - offs[i])
							      : sizeof(buf);
		struct block_status st;
		verr_clear(&err);
		block_read(bd, offs[i], buf, n, &err);
		if (n)
			block_status(bd, offs[i], n, &st, &err);
	}
	if (bd->drv->check) {
		struct block_check res;
		block_check(bd, BLOCK_FIX_NONE, &res, &err);
	}
	block_close(bd);
}

static inline int fuzz_image(const uint8_t *data, size_t size, const char *fmt)
{
	char path[64];
	int fd = memfd_create("fuzz-image", MFD_CLOEXEC);

	if (fd >= 0 && size <= FUZZ_IMAGE_MAX && write(fd, data, size) == (ssize_t)size) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		fuzz_image_path(path, fmt);
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

/* The same, with the input in a file called `name` in a directory of this
 * process's own: an image that names its own file (a monolithic VMDK's
 * extent line) then opens as one file, as it does for a user. */
struct fuzz_named {
	char dir[64], path[128];
};

static inline struct fuzz_named *fuzz_named(void)
{
	static struct fuzz_named n;
	return &n;
}

static inline void fuzz_named_cleanup(void)
{
	unlink(fuzz_named()->path);
	rmdir(fuzz_named()->dir);
}

static inline int fuzz_image_named(const uint8_t *data, size_t size, const char *fmt,
				   const char *name)
{
	struct fuzz_named *n = fuzz_named();
	FILE *f;
	bool ok;

	if (!n->dir[0]) {
		snprintf(n->dir, sizeof(n->dir), "/tmp/vireo-fuzz-XXXXXX");
		if (!mkdtemp(n->dir)) {
			n->dir[0] = 0;
			return 0;
		}
		snprintf(n->path, sizeof(n->path), "%s/%s", n->dir, name);
		atexit(fuzz_named_cleanup);
	}
	if (size > FUZZ_IMAGE_MAX || !(f = fopen(n->path, "wb")))
		return 0;
	ok = fwrite(data, 1, size, f) == size;
	if (fclose(f) == 0 && ok)
		fuzz_image_path(n->path, fmt);
	return 0;
}

#endif
