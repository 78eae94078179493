/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A growable byte buffer for serialising state, and a bounds-checked reader
 * for parsing it back: every get fails (and stays failed) rather than read
 * past the end, so parsers of untrusted snapshot files stay simple.
 */
#ifndef VIREO_CORE_BUF_H
#define VIREO_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vbuf {
	uint8_t *data;
	size_t len, cap;
	bool oom;             /* an append failed: the buffer is incomplete */
};

void vbuf_free(struct vbuf *b);
void vbuf_put(struct vbuf *b, const void *p, size_t n);
void vbuf_put_u32(struct vbuf *b, uint32_t v);
void vbuf_put_u64(struct vbuf *b, uint64_t v);
/* Tag-length-value record: u32 tag, u32 length, bytes. */
void vbuf_put_tlv(struct vbuf *b, uint32_t tag, const void *p, size_t n);

struct vreader {
	const uint8_t *p;
	size_t left;
	bool bad;             /* a read went past the end */
};

static inline struct vreader vreader_init(const void *p, size_t n)
{
	return (struct vreader){ p, n, false };
}
bool vreader_get(struct vreader *r, void *out, size_t n);
uint32_t vreader_u32(struct vreader *r);
uint64_t vreader_u64(struct vreader *r);
/* Next TLV: returns false at the end or on a malformed record (r->bad). */
bool vreader_tlv(struct vreader *r, uint32_t *tag, const uint8_t **val, uint32_t *len);

#endif
