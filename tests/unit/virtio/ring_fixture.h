/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rings in a memory buffer for device unit tests: guest memory at MEM_GPA,
 * each queue's descriptor table, available and used rings a page apart from
 * RING(q), its buffers from BUF(q, i). The device's I/O thread serves them;
 * the test plays the driver.
 */
#ifndef VIREO_TESTS_RING_FIXTURE_H
#define VIREO_TESTS_RING_FIXTURE_H

#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "virtio/device.h"

#define MEM_GPA 0x100000ull
#define MEM_SIZE (1ull << 20)
#define QSIZE 16u
#define RING(q) (MEM_GPA + 0x1000 * (3 * (q) + 1))  /* desc, avail, used: a page each */
#define BUF(q, i) (MEM_GPA + 0x20000 + 0x10000 * (q) + 0x1000 * (i))
#define F_WRITE 2

struct ring_fix {
	struct virtio_dev *d;
	uint8_t *mem;
	int notifies[3];
	struct verr err;
};

static inline void *ring_xlate(void *ctx, uint64_t gpa, uint64_t len)
{
	struct ring_fix *r = ctx;

	if (gpa < MEM_GPA || gpa - MEM_GPA > MEM_SIZE || len > MEM_SIZE - (gpa - MEM_GPA))
		return NULL;
	return r->mem + (gpa - MEM_GPA);
}

static inline uint8_t *at(struct ring_fix *r, uint64_t gpa)
{
	return r->mem + (gpa - MEM_GPA);
}

static inline void on_notify(void *opaque, unsigned q)
{
	struct ring_fix *r = opaque;

	__atomic_add_fetch(&r->notifies[q], 1, __ATOMIC_SEQ_CST);
}

static inline uint16_t used_idx(struct ring_fix *r, unsigned q)
{
	return __atomic_load_n((uint16_t *)at(r, RING(q) + 0x2000 + 2), __ATOMIC_ACQUIRE);
}

static inline uint16_t wait_used(struct ring_fix *r, unsigned q, uint16_t want)
{
	for (int i = 0; i < 3000 && used_idx(r, q) != want; i++)
		usleep(1000);
	return used_idx(r, q);
}

/* Offer n device-writable buffers of len bytes on queue q. */
static inline void offer(struct ring_fix *r, unsigned q, unsigned n, uint32_t len)
{
	uint64_t desc = RING(q), avail = RING(q) + 0x1000;

	for (uint16_t i = 0; i < n; i++) {
		uint64_t addr = BUF(q, i);
		uint16_t flags = F_WRITE, next = 0;

		memcpy(at(r, desc + 16 * i), &addr, 8);
		memcpy(at(r, desc + 16 * i + 8), &len, 4);
		memcpy(at(r, desc + 16 * i + 12), &flags, 2);
		memcpy(at(r, desc + 16 * i + 14), &next, 2);
		memcpy(at(r, avail + 4 + 2 * i), &i, 2);
	}
	__atomic_store_n((uint16_t *)at(r, avail + 2), (uint16_t)n, __ATOMIC_RELEASE);
}

/* Start queue q on its rings; 0 or the device's error (in r->err). */
static inline int ring_start_queue(struct ring_fix *r, unsigned q)
{
	struct virtio_queue_setup s = { .size = QSIZE, .desc = RING(q), .avail = RING(q) + 0x1000,
					.used = RING(q) + 0x2000, .kick_fd = -1,
					.notify = on_notify, .notify_opaque = r };

	return virtio_dev_queue_start(r->d, q, &s, &r->err);
}

#endif
