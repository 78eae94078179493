/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Positioned file I/O for the drivers: full transfers (retrying short ones),
 * and transparent bounce buffers when the file was opened with O_DIRECT and
 * the caller's buffer, offset or length is not aligned.
 */
#ifndef VIREO_BLOCK_FILE_H
#define VIREO_BLOCK_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "block/block.h"

#define FILE_DIRECT_ALIGN 4096

/* Reads past end of file return zeros. */
int file_pread(struct block_dev *bd, uint64_t off, void *buf, size_t len, struct verr *err);
int file_pwrite(struct block_dev *bd, uint64_t off, const void *buf, size_t len,
		struct verr *err);
int file_sync(struct block_dev *bd, struct verr *err);
int file_size(struct block_dev *bd, uint64_t *size, struct verr *err);
int file_truncate(struct block_dev *bd, uint64_t size, struct verr *err);
/* Zeroes a byte range, punching a hole when possible. */
int file_zero(struct block_dev *bd, uint64_t off, uint64_t len, bool punch, struct verr *err);
void *file_alloc(size_t len);

/* Big-endian and little-endian helpers for on-disk structures. */
static inline uint16_t be16_get(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)(b[0] << 8 | b[1]);
}
static inline uint32_t be32_get(const void *p)
{
	const uint8_t *b = p;
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}
static inline uint64_t be64_get(const void *p)
{
	return (uint64_t)be32_get(p) << 32 | be32_get((const uint8_t *)p + 4);
}
static inline void be16_put(void *p, uint16_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}
static inline void be32_put(void *p, uint32_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)(v >> 24);
	b[1] = (uint8_t)(v >> 16);
	b[2] = (uint8_t)(v >> 8);
	b[3] = (uint8_t)v;
}
static inline void be64_put(void *p, uint64_t v)
{
	be32_put(p, (uint32_t)(v >> 32));
	be32_put((uint8_t *)p + 4, (uint32_t)v);
}
static inline uint16_t le16_get(const void *p)
{
	const uint8_t *b = p;
	return (uint16_t)(b[1] << 8 | b[0]);
}
static inline uint32_t le32_get(const void *p)
{
	const uint8_t *b = p;
	return (uint32_t)b[3] << 24 | (uint32_t)b[2] << 16 | (uint32_t)b[1] << 8 | b[0];
}
static inline uint64_t le64_get(const void *p)
{
	return (uint64_t)le32_get((const uint8_t *)p + 4) << 32 | le32_get(p);
}
static inline void le32_put(void *p, uint32_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
	b[2] = (uint8_t)(v >> 16);
	b[3] = (uint8_t)(v >> 24);
}
static inline void le64_put(void *p, uint64_t v)
{
	le32_put(p, (uint32_t)v);
	le32_put((uint8_t *)p + 4, (uint32_t)(v >> 32));
}
static inline void le16_put(void *p, uint16_t v)
{
	uint8_t *b = p;
	b[0] = (uint8_t)v;
	b[1] = (uint8_t)(v >> 8);
}

#endif
