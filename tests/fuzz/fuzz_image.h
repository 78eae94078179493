/* SPDX-License-Identifier: Apache-2.0 */
/* Shared body of the image fuzzers: the input becomes an image file in
 * memory (memfd), opened with the format under test, then read and checked. */
#ifndef VIREO_FUZZ_IMAGE_H
#define VIREO_FUZZ_IMAGE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "block/block.h"

static inline int fuzz_image(const uint8_t *data, size_t size, const char *fmt)
{
	struct block_open_opts o = { .format = fmt, .no_backing = true,
				     .l2_cache_bytes = 64 << 10 };
	struct block_dev *bd = NULL;
	struct verr err = {0};
	char path[64];
	uint8_t buf[4096];
	int fd = memfd_create("fuzz-image", MFD_CLOEXEC);

	if (fd < 0 || size > (16u << 20))
		goto out;
	if (write(fd, data, size) != (ssize_t)size)
		goto out;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	if (block_open(path, &o, &bd, &err) < 0)
		goto out;
	/* A few sectors at the start, middle and end, then the metadata walk. */
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
		FILE *saved = stderr;
		(void)saved;
		block_check(bd, BLOCK_FIX_NONE, &res, &err);
	}
	block_close(bd);
out:
	if (fd >= 0)
		close(fd);
	return 0;
}

#endif
