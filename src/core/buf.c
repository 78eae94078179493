/* SPDX-License-Identifier: Apache-2.0 */
#include "core/buf.h"

#include <stdlib.h>
#include <string.h>

void vbuf_free(struct vbuf *b)
{
	free(b->data);
	*b = (struct vbuf){ 0 };
}

void vbuf_put(struct vbuf *b, const void *p, size_t n)
{
	if (b->oom)
		return;
	if (n > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *d;
		while (cap - b->len < n) {
			if (cap > SIZE_MAX / 2) {
				b->oom = true;
				return;
			}
			cap *= 2;
		}
		d = realloc(b->data, cap);
		if (!d) {
			b->oom = true;
			return;
		}
		b->data = d;
		b->cap = cap;
	}
	if (n)
		memcpy(b->data + b->len, p, n);
	b->len += n;
}

void vbuf_put_u32(struct vbuf *b, uint32_t v) { vbuf_put(b, &v, 4); }
void vbuf_put_u64(struct vbuf *b, uint64_t v) { vbuf_put(b, &v, 8); }

void vbuf_put_tlv(struct vbuf *b, uint32_t tag, const void *p, size_t n)
{
	if (n > UINT32_MAX) {
		b->oom = true;
		return;
	}
	vbuf_put_u32(b, tag);
	vbuf_put_u32(b, (uint32_t)n);
	vbuf_put(b, p, n);
}

bool vreader_get(struct vreader *r, void *out, size_t n)
{
	if (r->bad || n > r->left) {
		r->bad = true;
		if (out && n)
			memset(out, 0, n);
		return false;
	}
	if (out && n)
		memcpy(out, r->p, n);
	r->p += n;
	r->left -= n;
	return true;
}

uint32_t vreader_u32(struct vreader *r)
{
	uint32_t v = 0;
	vreader_get(r, &v, 4);
	return v;
}

uint64_t vreader_u64(struct vreader *r)
{
	uint64_t v = 0;
	vreader_get(r, &v, 8);
	return v;
}

bool vreader_tlv(struct vreader *r, uint32_t *tag, const uint8_t **val, uint32_t *len)
{
	if (r->bad || r->left == 0)
		return false;
	*tag = vreader_u32(r);
	*len = vreader_u32(r);
	*val = r->p;
	return vreader_get(r, NULL, *len);
}
