/* SPDX-License-Identifier: Apache-2.0 */
/* The split-queue walker on rings crafted in a memory buffer: good chains,
 * indirect tables, event-idx decisions, and every malformed layout. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "virtio/device.h"
#include "virtio/console.h"
#include "virtio/rng.h"
#include "virtio/virtq.h"

#define MEM_GPA 0x100000ull
#define MEM_SIZE 0x40000ull
#define NUM 8
#define DESC (MEM_GPA + 0x1000)
#define AVAIL (MEM_GPA + 0x2000)
#define USED (MEM_GPA + 0x3000)
#define DATA (MEM_GPA + 0x10000)
#define F_NEXT 1
#define F_WRITE 2
#define F_INDIRECT 4

struct ring {
	uint8_t *mem;
	struct virtq_mem xl;
	struct virtq vq;
	struct virtq_chain c;
	struct verr err;
};

static void *xlate(void *ctx, uint64_t gpa, uint64_t len)
{
	struct ring *r = ctx;

	if (gpa < MEM_GPA || gpa - MEM_GPA > MEM_SIZE || len > MEM_SIZE - (gpa - MEM_GPA))
		return NULL;
	return r->mem + (gpa - MEM_GPA);
}

static uint8_t *at(struct ring *r, uint64_t gpa)
{
	return r->mem + (gpa - MEM_GPA);
}

static void set_desc_at(struct ring *r, uint64_t table, unsigned i, uint64_t addr, uint32_t len,
			uint16_t flags, uint16_t next)
{
	uint8_t *p = at(r, table) + 16 * i;

	memcpy(p, &addr, 8);
	memcpy(p + 8, &len, 4);
	memcpy(p + 12, &flags, 2);
	memcpy(p + 14, &next, 2);
}

static void set_desc(struct ring *r, unsigned i, uint64_t addr, uint32_t len, uint16_t flags,
		     uint16_t next)
{
	set_desc_at(r, DESC, i, addr, len, flags, next);
}

static uint16_t get16(struct ring *r, uint64_t gpa)
{
	uint16_t v;

	memcpy(&v, at(r, gpa), 2);
	return v;
}

static uint32_t get32(struct ring *r, uint64_t gpa)
{
	uint32_t v;

	memcpy(&v, at(r, gpa), 4);
	return v;
}

static void put16(struct ring *r, uint64_t gpa, uint16_t v)
{
	memcpy(at(r, gpa), &v, 2);
}

/* Make head available as the next avail entry. */
static void offer(struct ring *r, uint16_t head)
{
	uint16_t idx = get16(r, AVAIL + 2);

	put16(r, AVAIL + 4 + 2 * (idx % NUM), head);
	put16(r, AVAIL + 2, idx + 1);
}

static struct ring *ring_new(uint64_t features)
{
	struct ring *r = calloc(1, sizeof(*r));

	r->mem = calloc(1, MEM_SIZE);
	r->xl = (struct virtq_mem){ .gpa_to_hva = xlate, .ctx = r };
	assert_int_equal(virtq_start(&r->vq, &r->xl, NUM, DESC, AVAIL, USED, features, 0, &r->err),
			 0);
	return r;
}

static void ring_free(struct ring *r)
{
	free(r->mem);
	free(r);
}

static const uint64_t ALL = (1ull << VIRTIO_F_INDIRECT_DESC) | (1ull << VIRTIO_F_EVENT_IDX);

static void test_normal_chain(void **state)
{
	struct ring *r = ring_new(ALL);

	assert_int_equal(virtq_pop(&r->vq, &r->c, &r->err), 0);
	set_desc(r, 3, DATA, 100, F_NEXT, 5);
	set_desc(r, 5, DATA + 100, 20, F_NEXT, 6);
	set_desc(r, 6, DATA + 200, 50, F_WRITE, 0);
	offer(r, 3);
	assert_int_equal(virtq_pop(&r->vq, &r->c, &r->err), 1);
	assert_int_equal(r->c.head, 3);
	assert_int_equal(r->c.nout, 2);
	assert_int_equal(r->c.nin, 1);
	assert_int_equal(r->c.out_len, 120);
	assert_int_equal(r->c.in_len, 50);
	assert_ptr_equal(r->c.iov[2].iov_base, at(r, DATA + 200));
	/* avail_event tells the driver which index to kick for next. */
	assert_int_equal(get16(r, USED + 4 + 8 * NUM), 1);
	assert_int_equal(virtq_pop(&r->vq, &r->c, &r->err), 0);
	assert_int_equal(virtq_push(&r->vq, 3, 42, &r->err), 0);
	assert_int_equal(get16(r, USED + 2), 1);
	assert_int_equal(get32(r, USED + 4), 3);
	assert_int_equal(get32(r, USED + 8), 42);
	/* A second push without a pop is refused. */
	assert_int_equal(virtq_push(&r->vq, 3, 1, &r->err), -EIO);
	ring_free(r);
}

static void test_wraparound(void **state)
{
	struct ring *r = calloc(1, sizeof(*r));

	r->mem = calloc(1, MEM_SIZE);
	r->xl = (struct virtq_mem){ .gpa_to_hva = xlate, .ctx = r };
	/* Start near the 16-bit wrap, as after a long-running vhost-user ring. */
	put16(r, AVAIL + 2, 65534);
	assert_int_equal(virtq_start(&r->vq, &r->xl, NUM, DESC, AVAIL, USED, 0, 65534, &r->err), 0);
	set_desc(r, 0, DATA, 8, F_WRITE, 0);
	for (int i = 0; i < 4; i++) {
		offer(r, 0);
		assert_int_equal(virtq_pop(&r->vq, &r->c, &r->err), 1);
		assert_int_equal(virtq_push(&r->vq, 0, 8, &r->err), 0);
	}
	assert_int_equal(get16(r, USED + 2), 2);
	ring_free(r);
}

/* Several chains returned together: one used->idx store, entries in order,
 * across the end of the used ring; a batch larger than what was popped, or
 * naming a head outside the ring, publishes nothing. */
static void test_push_many(void **state)
{
	struct ring *r = ring_new(0);
	uint16_t heads[NUM];
	uint32_t lens[NUM];

	for (unsigned i = 0; i < NUM; i++)
		set_desc(r, i, DATA + 64 * i, 64, F_WRITE, 0);
	/* 6 singles first, so the batch of 5 wraps the used ring (size 8). */
	for (unsigned i = 0; i < 6; i++) {
		offer(r, (uint16_t)i);
		assert_int_equal(virtq_pop(&r->vq, &r->c, &r->err), 1);
		assert_int_equal(virtq_push(&r->vq, r->c.head, 1, &r->err), 0);
	}
	for (unsigned i = 0; i < 5; i++) {
		offer(r, (uint16_t)(7 - i));
		assert_int_equal(virtq_pop(&r->vq, &r->c, &r->err), 1);
		heads[i] = r->c.head;
		lens[i] = 10 + i;
	}
	assert_int_equal(virtq_push_many(&r->vq, heads, lens, 6, &r->err), -EIO);
	heads[2] = NUM;
	assert_int_equal(virtq_push_many(&r->vq, heads, lens, 5, &r->err), -EIO);
	assert_int_equal(get16(r, USED + 2), 6);
	heads[2] = 5;
	assert_int_equal(virtq_push_many(&r->vq, heads, lens, 5, &r->err), 0);
	assert_int_equal(get16(r, USED + 2), 11);
	for (unsigned i = 0; i < 5; i++) {
		unsigned slot = (6 + i) % NUM;

		assert_int_equal(get32(r, USED + 4 + 8 * slot), 7 - i);
		assert_int_equal(get32(r, USED + 8 + 8 * slot), 10 + i);
	}
	/* all five were pushed: nothing is left to push */
	assert_int_equal(virtq_push(&r->vq, 7, 1, &r->err), -EIO);
	ring_free(r);
}

static void test_indirect(void **state)
{
	struct ring *r = ring_new(ALL);
	uint64_t table = DATA + 0x1000;

	set_desc_at(r, table, 0, DATA, 16, F_NEXT, 2);
	set_desc_at(r, table, 2, DATA + 16, 512, F_NEXT | F_WRITE, 1);
	set_desc_at(r, table, 1, DATA + 600, 1, F_WRITE, 0);
	set_desc(r, 0, DATA + 0x800, 4, F_NEXT, 1);
	set_desc(r, 1, table, 3 * 16, F_INDIRECT, 0);
	offer(r, 0);
	assert_int_equal(virtq_pop(&r->vq, &r->c, &r->err), 1);
	assert_int_equal(r->c.nout, 2);
	assert_int_equal(r->c.nin, 2);
	assert_int_equal(r->c.out_len, 20);
	assert_int_equal(r->c.in_len, 513);
	ring_free(r);
}

static void test_event_idx_notify(void **state)
{
	struct ring *r = ring_new(ALL);

	set_desc(r, 0, DATA, 8, F_WRITE, 0);
	for (int i = 0; i < 6; i++)
		offer(r, 0);
	/* The first decision always notifies (nothing signalled yet). */
	assert_int_equal(virtq_pop(&r->vq, &r->c, &r->err), 1);
	assert_int_equal(virtq_push(&r->vq, 0, 8, &r->err), 0);
	assert_true(virtq_should_notify(&r->vq));
	/* used_event = 4: the driver wants an interrupt once entry 4 is used. */
	put16(r, AVAIL + 4 + 2 * NUM, 4);
	assert_int_equal(virtq_pop(&r->vq, &r->c, &r->err), 1);
	assert_int_equal(virtq_push(&r->vq, 0, 8, &r->err), 0);
	assert_false(virtq_should_notify(&r->vq));       /* used idx 2 */
	for (int i = 0; i < 2; i++) {
		assert_int_equal(virtq_pop(&r->vq, &r->c, &r->err), 1);
		assert_int_equal(virtq_push(&r->vq, 0, 8, &r->err), 0);
	}
	assert_false(virtq_should_notify(&r->vq));       /* used idx 4: entry 4 not used */
	assert_int_equal(virtq_pop(&r->vq, &r->c, &r->err), 1);
	assert_int_equal(virtq_push(&r->vq, 0, 8, &r->err), 0);
	assert_true(virtq_should_notify(&r->vq));        /* used idx 5 crosses event 4 */
	/* Nothing pushed since: no interrupt. */
	assert_false(virtq_should_notify(&r->vq));
	/* avail_event follows our consumption; one more buffer is waiting. */
	assert_true(virtq_enable_kicks(&r->vq));
	assert_int_equal(get16(r, USED + 4 + 8 * NUM), 5);
	ring_free(r);
}

static void test_no_interrupt_flag(void **state)
{
	struct ring *r = ring_new(0);

	set_desc(r, 0, DATA, 8, F_WRITE, 0);
	offer(r, 0);
	offer(r, 0);
	assert_int_equal(virtq_pop(&r->vq, &r->c, &r->err), 1);
	assert_int_equal(virtq_push(&r->vq, 0, 8, &r->err), 0);
	assert_true(virtq_should_notify(&r->vq));
	put16(r, AVAIL, 1);     /* VIRTQ_AVAIL_F_NO_INTERRUPT */
	assert_int_equal(virtq_pop(&r->vq, &r->c, &r->err), 1);
	assert_int_equal(virtq_push(&r->vq, 0, 8, &r->err), 0);
	assert_false(virtq_should_notify(&r->vq));
	ring_free(r);
}

static void expect_malformed(struct ring *r)
{
	verr_clear(&r->err);
	assert_int_equal(virtq_pop(&r->vq, &r->c, &r->err), -EIO);
	assert_int_equal(r->err.code, EIO);
	assert_true(strlen(r->err.msg) > 0);
	ring_free(r);
}

static void test_bad_head(void **state)
{
	struct ring *r = ring_new(ALL);

	offer(r, NUM);
	expect_malformed(r);
}

static void test_bad_next(void **state)
{
	struct ring *r = ring_new(ALL);

	set_desc(r, 0, DATA, 8, F_NEXT, 200);
	offer(r, 0);
	expect_malformed(r);
}

static void test_loop(void **state)
{
	struct ring *r = ring_new(ALL);

	set_desc(r, 0, DATA, 8, F_NEXT, 1);
	set_desc(r, 1, DATA, 8, F_NEXT, 0);
	offer(r, 0);
	expect_malformed(r);
}

static void test_self_loop_zero_len(void **state)
{
	struct ring *r = ring_new(ALL);

	set_desc(r, 2, DATA, 0, F_NEXT, 2);
	offer(r, 2);
	expect_malformed(r);
}

static void test_too_long_indirect(void **state)
{
	struct ring *r = ring_new(ALL);
	uint64_t table = DATA + 0x1000;

	/* A 4-entry indirect table whose chain visits 5 entries (a loop). */
	for (unsigned i = 0; i < 4; i++)
		set_desc_at(r, table, i, DATA, 8, F_NEXT, (i + 1) % 4);
	set_desc(r, 0, table, 4 * 16, F_INDIRECT, 0);
	offer(r, 0);
	expect_malformed(r);
}

static void test_addr_outside(void **state)
{
	struct ring *r = ring_new(ALL);

	set_desc(r, 0, MEM_GPA + MEM_SIZE - 4, 8, 0, 0);
	offer(r, 0);
	expect_malformed(r);
}

static void test_len_overflow(void **state)
{
	struct ring *r = ring_new(ALL);

	set_desc(r, 0, UINT64_MAX - 16, 0xffffffffu, 0, 0);
	offer(r, 0);
	expect_malformed(r);
}

static void test_nested_indirect(void **state)
{
	struct ring *r = ring_new(ALL);
	uint64_t t1 = DATA + 0x1000, t2 = DATA + 0x2000;

	set_desc_at(r, t2, 0, DATA, 8, 0, 0);
	set_desc_at(r, t1, 0, t2, 16, F_INDIRECT, 0);
	set_desc(r, 0, t1, 16, F_INDIRECT, 0);
	offer(r, 0);
	expect_malformed(r);
}

static void test_indirect_bad_size(void **state)
{
	uint32_t sizes[] = { 0, 15, 17, (VIRTQ_MAX_SIZE + 1) * 16 };

	for (unsigned i = 0; i < 4; i++) {
		struct ring *r = ring_new(ALL);

		set_desc(r, 0, DATA + 0x1000, sizes[i], F_INDIRECT, 0);
		offer(r, 0);
		expect_malformed(r);
	}
}

static void test_indirect_not_negotiated(void **state)
{
	struct ring *r = ring_new(0);

	set_desc_at(r, DATA + 0x1000, 0, DATA, 8, 0, 0);
	set_desc(r, 0, DATA + 0x1000, 16, F_INDIRECT, 0);
	offer(r, 0);
	expect_malformed(r);
}

static void test_indirect_with_next(void **state)
{
	struct ring *r = ring_new(ALL);

	set_desc_at(r, DATA + 0x1000, 0, DATA, 8, 0, 0);
	set_desc(r, 0, DATA + 0x1000, 16, F_INDIRECT | F_NEXT, 1);
	set_desc(r, 1, DATA, 8, 0, 0);
	offer(r, 0);
	expect_malformed(r);
}

static void test_read_after_write(void **state)
{
	struct ring *r = ring_new(ALL);

	set_desc(r, 0, DATA, 8, F_WRITE | F_NEXT, 1);
	set_desc(r, 1, DATA, 8, 0, 0);
	offer(r, 0);
	expect_malformed(r);
}

static void test_avail_too_far(void **state)
{
	struct ring *r = ring_new(ALL);

	put16(r, AVAIL + 2, NUM + 1);
	expect_malformed(r);
}

static void test_bad_layout(void **state)
{
	uint8_t *mem = calloc(1, MEM_SIZE);
	struct ring r = { .mem = mem };
	struct virtq_mem xl = { .gpa_to_hva = xlate, .ctx = &r };
	struct virtq vq;
	struct verr err = { 0 };

	assert_int_equal(virtq_start(&vq, &xl, 6, DESC, AVAIL, USED, 0, 0, &err), -EINVAL);
	assert_int_equal(virtq_start(&vq, &xl, 0, DESC, AVAIL, USED, 0, 0, &err), -EINVAL);
	assert_int_equal(virtq_start(&vq, &xl, NUM, DESC + 8, AVAIL, USED, 0, 0, &err), -EINVAL);
	assert_int_equal(virtq_start(&vq, &xl, NUM, DESC, AVAIL + 1, USED, 0, 0, &err), -EINVAL);
	assert_int_equal(virtq_start(&vq, &xl, NUM, DESC, AVAIL, USED + 2, 0, 0, &err), -EINVAL);
	assert_int_equal(virtq_start(&vq, &xl, NUM, DESC, AVAIL, MEM_GPA + MEM_SIZE - 8, 0, 0, &err),
			 -EINVAL);
	assert_int_equal(virtq_start(&vq, &xl, NUM, 0, AVAIL, USED, 0, 0, &err), -EINVAL);
	free(mem);
}

static void test_too_many_segments(void **state)
{
	struct ring *r = calloc(1, sizeof(*r));
	uint64_t table = DATA + 0x4000;
	unsigned n = VIRTQ_MAX_SEGS + 1;

	r->mem = calloc(1, MEM_SIZE);
	r->xl = (struct virtq_mem){ .gpa_to_hva = xlate, .ctx = r };
	assert_int_equal(virtq_start(&r->vq, &r->xl, NUM, DESC, AVAIL, USED, ALL, 0, &r->err), 0);
	for (unsigned i = 0; i < n; i++)
		set_desc_at(r, table, i, DATA, 1, i + 1 < n ? F_NEXT : 0, (uint16_t)(i + 1));
	set_desc(r, 0, table, n * 16, F_INDIRECT, 0);
	offer(r, 0);
	expect_malformed(r);
}

/* ---- the generic device on a broken ring: needs reset, no crash ---- */

struct dev_probe {
	int config_changes;
	int notifies;
};

static void on_config(void *opaque)
{
	__atomic_add_fetch(&((struct dev_probe *)opaque)->config_changes, 1, __ATOMIC_SEQ_CST);
}

static void on_notify(void *opaque, unsigned q)
{
	__atomic_add_fetch(&((struct dev_probe *)opaque)->notifies, 1, __ATOMIC_SEQ_CST);
}

static int wait_for(int *v, int want)
{
	for (int i = 0; i < 2000 && __atomic_load_n(v, __ATOMIC_SEQ_CST) < want; i++)
		usleep(1000);
	return __atomic_load_n(v, __ATOMIC_SEQ_CST);
}

static void start_rng(struct ring *r, struct virtio_dev **d, struct dev_probe *p)
{
	struct virtio_queue_setup s = { .size = NUM, .desc = DESC, .avail = AVAIL, .used = USED,
					.kick_fd = -1, .notify = on_notify, .notify_opaque = p };

	assert_int_equal(virtio_rng_create(d, &r->err), 0);
	assert_int_equal(virtio_dev_activate(*d, virtio_dev_features(*d), &r->xl, on_config, p,
					     &r->err), 0);
	assert_int_equal(virtio_dev_queue_start(*d, 0, &s, &r->err), 0);
}

static void test_device_rng_serves(void **state)
{
	struct ring *r = ring_new(0);
	struct dev_probe p = { 0 };
	struct virtio_dev *d;
	uint8_t zero[64] = { 0 };

	set_desc(r, 0, DATA, 64, F_WRITE, 0);
	offer(r, 0);
	start_rng(r, &d, &p);
	assert_int_equal(wait_for(&p.notifies, 1), 1);
	assert_int_equal(get16(r, USED + 2), 1);
	assert_int_equal(get32(r, USED + 8), 64);
	assert_memory_not_equal(at(r, DATA), zero, 64);
	/* A kick after more buffers arrive is served too; with EVENT_IDX the
	 * driver asks for the interrupt through used_event. */
	put16(r, AVAIL + 4 + 2 * NUM, 1);
	offer(r, 0);
	virtio_dev_kick(d, 0);
	assert_int_equal(wait_for(&p.notifies, 2), 2);
	assert_int_equal(virtio_dev_queue_stop(d, 0), 2);
	assert_false(virtio_dev_needs_reset(d));
	virtio_dev_destroy(d);
	ring_free(r);
}

static void test_device_needs_reset(void **state)
{
	struct ring *r = ring_new(0);
	struct dev_probe p = { 0 };
	struct virtio_dev *d;

	offer(r, NUM + 3);
	start_rng(r, &d, &p);
	assert_int_equal(wait_for(&p.config_changes, 1), 1);
	assert_true(virtio_dev_needs_reset(d));
	assert_int_equal(p.notifies, 0);
	/* Further kicks are ignored; a reset makes the device usable again. */
	virtio_dev_kick(d, 0);
	virtio_dev_reset(d);
	assert_false(virtio_dev_needs_reset(d));
	virtio_dev_destroy(d);
	ring_free(r);
}

static void test_device_refuses_unoffered(void **state)
{
	struct ring *r = ring_new(0);
	struct virtio_dev *d;

	assert_int_equal(virtio_rng_create(&d, &r->err), 0);
	assert_int_equal(virtio_dev_activate(d, 1ull << 60, &r->xl, NULL, NULL, &r->err), -EINVAL);
	virtio_dev_destroy(d);
	ring_free(r);
}

/* virtio-console: guest output reaches the out fd, host input fills an RX
 * buffer once one is offered. Queue 0 (RX) and 1 (TX) share the ring area
 * layout of the tests above at different addresses. */
static void test_console_io(void **state)
{
	struct ring *r = ring_new(0);
	struct dev_probe p = { 0 };
	struct virtio_dev *d;
	int in[2], out[2];
	char buf[32] = { 0 };
	const uint64_t tx = 0x8000;
	struct virtio_queue_setup rx_s = { .size = NUM, .desc = DESC, .avail = AVAIL, .used = USED,
					   .kick_fd = -1, .notify = on_notify, .notify_opaque = &p };
	struct virtio_queue_setup tx_s = rx_s;

	assert_int_equal(pipe2(in, O_NONBLOCK), 0);
	assert_int_equal(pipe(out), 0);
	assert_int_equal(virtio_console_create(in[0], out[1], &d, &r->err), 0);
	assert_int_equal(virtio_dev_activate(d, 0, &r->xl, NULL, NULL, &r->err), 0);
	/* TX ring at +0x8000: one readable buffer "hello". */
	tx_s.desc = DESC + tx;
	tx_s.avail = AVAIL + tx;
	tx_s.used = USED + tx;
	memcpy(at(r, DATA + 0x100), "hello", 5);
	set_desc_at(r, DESC + tx, 0, DATA + 0x100, 5, 0, 0);
	put16(r, AVAIL + tx + 4, 0);
	put16(r, AVAIL + tx + 2, 1);
	assert_int_equal(virtio_dev_queue_start(d, 1, &tx_s, &r->err), 0);
	assert_int_equal(read(out[0], buf, 5), 5);
	assert_memory_equal(buf, "hello", 5);
	/* RX: input first, buffer later: delivered when the guest kicks. */
	assert_int_equal(write(in[1], "typed", 5), 5);
	assert_int_equal(virtio_dev_queue_start(d, 0, &rx_s, &r->err), 0);
	set_desc(r, 0, DATA, 16, F_WRITE, 0);
	offer(r, 0);
	virtio_dev_kick(d, 0);
	for (int i = 0; i < 2000 && get16(r, USED + 2) == 0; i++)
		usleep(1000);
	assert_int_equal(get16(r, USED + 2), 1);
	assert_int_equal(get32(r, USED + 8), 5);
	assert_memory_equal(at(r, DATA), "typed", 5);
	virtio_dev_destroy(d);
	close(in[0]);
	close(in[1]);
	close(out[0]);
	close(out[1]);
	ring_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normal_chain),
		cmocka_unit_test(test_wraparound),
		cmocka_unit_test(test_push_many),
		cmocka_unit_test(test_indirect),
		cmocka_unit_test(test_event_idx_notify),
		cmocka_unit_test(test_no_interrupt_flag),
		cmocka_unit_test(test_bad_head),
		cmocka_unit_test(test_bad_next),
		cmocka_unit_test(test_loop),
		cmocka_unit_test(test_self_loop_zero_len),
		cmocka_unit_test(test_too_long_indirect),
		cmocka_unit_test(test_addr_outside),
		cmocka_unit_test(test_len_overflow),
		cmocka_unit_test(test_nested_indirect),
		cmocka_unit_test(test_indirect_bad_size),
		cmocka_unit_test(test_indirect_not_negotiated),
		cmocka_unit_test(test_indirect_with_next),
		cmocka_unit_test(test_read_after_write),
		cmocka_unit_test(test_avail_too_far),
		cmocka_unit_test(test_bad_layout),
		cmocka_unit_test(test_too_many_segments),
		cmocka_unit_test(test_device_rng_serves),
		cmocka_unit_test(test_device_needs_reset),
		cmocka_unit_test(test_device_refuses_unoffered),
		cmocka_unit_test(test_console_io),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
