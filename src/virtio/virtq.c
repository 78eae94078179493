/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Device side of split virtqueues. The rings live in guest memory that the
 * guest may rewrite at any moment, so every field is loaded once into a
 * local before it is checked and used. Multi-byte ring fields are
 * little-endian; vireo only runs on little-endian hosts (x86-64).
 */
#include <errno.h>
#include <string.h>

#include "virtio/virtq.h"

#define DESC_SIZE 16u
#define DESC_F_NEXT 1u
#define DESC_F_WRITE 2u
#define DESC_F_INDIRECT 4u
#define AVAIL_F_NO_INTERRUPT 1u
#define USED_F_NO_NOTIFY 1u

struct desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

static uint16_t load16(volatile const uint8_t *p)
{
	return __atomic_load_n((const uint16_t *)(uintptr_t)p, __ATOMIC_RELAXED);
}

static void store16(volatile uint8_t *p, uint16_t v)
{
	__atomic_store_n((uint16_t *)(uintptr_t)p, v, __ATOMIC_RELAXED);
}

static void store32(volatile uint8_t *p, uint32_t v)
{
	__atomic_store_n((uint32_t *)(uintptr_t)p, v, __ATOMIC_RELAXED);
}

static void *xlate(const struct virtq *vq, uint64_t gpa, uint64_t len)
{
	if (len && gpa + len < gpa)
		return NULL;
	return vq->mem.gpa_to_hva(vq->mem.ctx, gpa, len);
}

static int ring_ptr(struct virtq *vq, volatile uint8_t **out, const char *what, uint64_t gpa,
		    uint64_t len, uint64_t align, struct verr *err)
{
	if (gpa % align)
		return verr_set(err, EINVAL, "%s ring at 0x%llx is not %llu-byte aligned", what,
				(unsigned long long)gpa, (unsigned long long)align);
	*out = xlate(vq, gpa, len);
	if (!*out)
		return verr_set(err, EINVAL, "%s ring [0x%llx, +%llu) is not in guest memory", what,
				(unsigned long long)gpa, (unsigned long long)len);
	/* The host mapping must keep the guest's alignment for atomic access. */
	if ((uintptr_t)*out % align)
		return verr_set(err, EINVAL, "%s ring is misaligned in host memory", what);
	return 0;
}

int virtq_start(struct virtq *vq, const struct virtq_mem *mem, uint16_t num, uint64_t desc,
		uint64_t avail, uint64_t used, uint64_t features, uint16_t base, struct verr *err)
{
	int r;

	memset(vq, 0, sizeof(*vq));
	if (num == 0 || (num & (num - 1)))
		return verr_set(err, EINVAL, "queue size %u is not a power of 2", num);
	vq->num = num;
	vq->mem = *mem;
	vq->desc_gpa = desc;
	vq->avail_gpa = avail;
	vq->used_gpa = used;
	vq->event_idx = features & (1ull << VIRTIO_F_EVENT_IDX);
	vq->indirect = features & (1ull << VIRTIO_F_INDIRECT_DESC);
	r = ring_ptr(vq, &vq->desc, "descriptor", desc, (uint64_t)DESC_SIZE * num, 16, err);
	if (!r)
		r = ring_ptr(vq, &vq->avail, "available", avail, 6 + 2ull * num, 2, err);
	if (!r)
		r = ring_ptr(vq, &vq->used, "used", used, 6 + 8ull * num, 4, err);
	if (r)
		return r;
	vq->last_avail = base;
	vq->used_idx = base;
	return 0;
}

static void read_desc(volatile const uint8_t *table, unsigned i, struct desc *d)
{
	/* One copy, then only the copy is trusted. */
	memcpy(d, (const void *)(table + (size_t)i * DESC_SIZE), sizeof(*d));
}

/* A walk over one descriptor table (the ring's, or one indirect table). */
struct walk {
	volatile const uint8_t *table;
	unsigned size;       /* entries in table */
	unsigned seen;       /* descriptors visited in this table */
};

static int add_seg(struct virtq *vq, struct virtq_chain *c, const struct desc *d,
		   struct verr *err)
{
	bool write = d->flags & DESC_F_WRITE;
	void *p;

	if (!write && c->nin)
		return verr_set(err, EIO, "chain %u: readable descriptor after a writable one",
				c->head);
	if (d->len == 0)
		return 0;
	if (c->nout + c->nin >= VIRTQ_MAX_SEGS)
		return verr_set(err, EIO, "chain %u: more than %u segments", c->head,
				VIRTQ_MAX_SEGS);
	p = xlate(vq, d->addr, d->len);
	if (!p)
		return verr_set(err, EIO, "chain %u: buffer [0x%llx, +%u) is not in guest memory",
				c->head, (unsigned long long)d->addr, d->len);
	c->iov[c->nout + c->nin] = (struct iovec){ .iov_base = p, .iov_len = d->len };
	if (write) {
		c->nin++;
		c->in_len += d->len;
	} else {
		c->nout++;
		c->out_len += d->len;
	}
	return 0;
}

static int walk_indirect(struct virtq *vq, struct virtq_chain *c, const struct desc *d,
			 struct verr *err);

/* Follow one chain through table w starting at index i. */
static int walk_table(struct virtq *vq, struct virtq_chain *c, struct walk *w, unsigned i,
		      bool nested, struct verr *err)
{
	struct desc d;
	int r;

	for (;;) {
		if (i >= w->size)
			return verr_set(err, EIO, "chain %u: descriptor index %u >= table size %u",
					c->head, i, w->size);
		if (++w->seen > w->size)
			return verr_set(err, EIO, "chain %u: loop or chain longer than %u",
					c->head, w->size);
		read_desc(w->table, i, &d);
		if (d.flags & DESC_F_INDIRECT) {
			if (nested)
				return verr_set(err, EIO, "chain %u: nested indirect table", c->head);
			if (d.flags & DESC_F_NEXT)
				return verr_set(err, EIO, "chain %u: indirect descriptor with NEXT",
						c->head);
			return walk_indirect(vq, c, &d, err);
		}
		r = add_seg(vq, c, &d, err);
		if (r)
			return r;
		if (!(d.flags & DESC_F_NEXT))
			return 0;
		i = d.next;
	}
}

static int walk_indirect(struct virtq *vq, struct virtq_chain *c, const struct desc *d,
			 struct verr *err)
{
	struct walk w;

	if (!vq->indirect)
		return verr_set(err, EIO, "chain %u: indirect descriptor not negotiated", c->head);
	if (d->len == 0 || d->len % DESC_SIZE || d->len / DESC_SIZE > VIRTQ_MAX_SIZE)
		return verr_set(err, EIO, "chain %u: indirect table length %u is invalid",
				c->head, d->len);
	if (d->addr % 8)
		return verr_set(err, EIO, "chain %u: indirect table misaligned", c->head);
	w.table = xlate(vq, d->addr, d->len);
	if (!w.table)
		return verr_set(err, EIO, "chain %u: indirect table [0x%llx, +%u) not in memory",
				c->head, (unsigned long long)d->addr, d->len);
	w.size = d->len / DESC_SIZE;
	w.seen = 0;
	return walk_table(vq, c, &w, 0, true, err);
}

bool virtq_has_avail(struct virtq *vq)
{
	return load16(vq->avail + 2) != vq->last_avail;
}

int virtq_pop(struct virtq *vq, struct virtq_chain *c, struct verr *err)
{
	uint16_t avail_idx = load16(vq->avail + 2);
	struct walk w = { .table = vq->desc, .size = vq->num };
	uint16_t head;
	int r;

	if ((uint16_t)(avail_idx - vq->last_avail) > vq->num)
		return verr_set(err, EIO, "available index %u is %u ahead of %u (queue size %u)",
				avail_idx, (uint16_t)(avail_idx - vq->last_avail), vq->last_avail,
				vq->num);
	if (avail_idx == vq->last_avail)
		return 0;
	/* Ring entries are only valid once we have seen the index move. */
	__atomic_thread_fence(__ATOMIC_ACQUIRE);
	head = load16(vq->avail + 4 + 2u * (vq->last_avail % vq->num));
	c->head = head;
	c->nout = c->nin = 0;
	c->out_len = c->in_len = 0;
	if (head >= vq->num)
		return verr_set(err, EIO, "head index %u >= queue size %u", head, vq->num);
	r = walk_table(vq, c, &w, head, false, err);
	if (r)
		return r;
	vq->last_avail++;
	vq->pending++;
	if (vq->event_idx)
		store16(vq->used + 4 + 8u * vq->num, vq->last_avail);
	return 1;
}

int virtq_pop_or_arm(struct virtq *vq, struct virtq_chain *c, struct verr *err)
{
	int r = virtq_pop(vq, c, err);

	if (r == 0 && virtq_enable_kicks(vq))
		r = virtq_pop(vq, c, err);
	return r;
}

void virtq_unpop(struct virtq *vq)
{
	if (vq->pending == 0)
		return;
	vq->pending--;
	vq->last_avail--;
}

int virtq_push_many(struct virtq *vq, const uint16_t *heads, const uint32_t *lens, unsigned n,
		    struct verr *err)
{
	if (n > vq->pending)
		return verr_set(err, EIO, "push of %u chains with %u popped", n, vq->pending);
	for (unsigned i = 0; i < n; i++)
		if (heads[i] >= vq->num)
			return verr_set(err, EIO, "push of chain %u that was not popped", heads[i]);
	for (unsigned i = 0; i < n; i++) {
		volatile uint8_t *e = vq->used + 4 + 8u * ((uint16_t)(vq->used_idx + i) % vq->num);

		store32(e, heads[i]);
		store32(e + 4, lens[i]);
	}
	vq->pending -= n;
	vq->used_idx = (uint16_t)(vq->used_idx + n);
	/* The entries must be visible before the index that publishes them. */
	__atomic_thread_fence(__ATOMIC_RELEASE);
	store16(vq->used + 2, vq->used_idx);
	return 0;
}

int virtq_push(struct virtq *vq, uint16_t head, uint32_t len, struct verr *err)
{
	return virtq_push_many(vq, &head, &len, 1, err);
}

bool virtq_should_notify(struct virtq *vq)
{
	uint16_t old = vq->signalled_used, now = vq->used_idx, event;
	bool valid = vq->signalled_valid;

	/* Our used->idx store must be ordered before reading the driver's
	 * suppression fields, or we could miss its latest request. */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	if (!vq->event_idx)
		return !(load16(vq->avail) & AVAIL_F_NO_INTERRUPT);
	vq->signalled_used = now;
	vq->signalled_valid = true;
	if (!valid)
		return true;
	event = load16(vq->avail + 4 + 2u * vq->num);
	/* virtio 1.2 2.7.10: notify when used_event lies in [old, now). */
	return (uint16_t)(now - event - 1) < (uint16_t)(now - old);
}

bool virtq_enable_kicks(struct virtq *vq)
{
	if (vq->event_idx)
		store16(vq->used + 4 + 8u * vq->num, vq->last_avail);
	else
		store16(vq->used, 0);
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return virtq_has_avail(vq);
}
