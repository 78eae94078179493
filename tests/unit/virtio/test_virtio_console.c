/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-console as vireo run wires it for --console virtio: input from a
 * non-blocking pipe (which the CLI's console loop writes) into receive
 * buffers, transmit buffers out to the console fd; rings in a memory
 * buffer, served by the device's I/O thread. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "virtio/console.h"

#define MEM_GPA 0x100000ull
#define MEM_SIZE (1ull << 20)
#define QSIZE 16u
#define RING(q) (MEM_GPA + 0x1000 * (3 * (q) + 1))  /* desc, avail, used: a page each */
#define BUF(q, i) (MEM_GPA + 0x20000 + 0x10000 * (q) + 0x1000 * (i))
#define F_WRITE 2

struct fix {
	int in[2], out[2];                /* console input and output pipes */
	struct virtio_dev *d;
	uint8_t *mem;
	int notifies[3];
	struct verr err;
};

static void *xlate(void *ctx, uint64_t gpa, uint64_t len)
{
	struct fix *f = ctx;

	if (gpa < MEM_GPA || gpa - MEM_GPA > MEM_SIZE || len > MEM_SIZE - (gpa - MEM_GPA))
		return NULL;
	return f->mem + (gpa - MEM_GPA);
}

static uint8_t *at(struct fix *f, uint64_t gpa)
{
	return f->mem + (gpa - MEM_GPA);
}

static void on_notify(void *opaque, unsigned q)
{
	struct fix *f = opaque;

	__atomic_add_fetch(&f->notifies[q], 1, __ATOMIC_SEQ_CST);
}

static uint16_t used_idx(struct fix *f, unsigned q)
{
	return __atomic_load_n((uint16_t *)at(f, RING(q) + 0x2000 + 2), __ATOMIC_ACQUIRE);
}

static uint16_t wait_used(struct fix *f, unsigned q, uint16_t want)
{
	for (int i = 0; i < 3000 && used_idx(f, q) != want; i++)
		usleep(1000);
	return used_idx(f, q);
}

/* Offer n device-writable buffers of len bytes on queue q. */
static void offer(struct fix *f, unsigned q, unsigned n, uint32_t len)
{
	uint64_t desc = RING(q), avail = RING(q) + 0x1000;

	for (uint16_t i = 0; i < n; i++) {
		uint64_t addr = BUF(q, i);
		uint16_t flags = F_WRITE, next = 0;

		memcpy(at(f, desc + 16 * i), &addr, 8);
		memcpy(at(f, desc + 16 * i + 8), &len, 4);
		memcpy(at(f, desc + 16 * i + 12), &flags, 2);
		memcpy(at(f, desc + 16 * i + 14), &next, 2);
		memcpy(at(f, avail + 4 + 2 * i), &i, 2);
	}
	__atomic_store_n((uint16_t *)at(f, avail + 2), (uint16_t)n, __ATOMIC_RELEASE);
}

static void start_queue(struct fix *f, unsigned q)
{
	struct virtio_queue_setup s = { .size = QSIZE, .desc = RING(q), .avail = RING(q) + 0x1000,
					.used = RING(q) + 0x2000, .kick_fd = -1,
					.notify = on_notify, .notify_opaque = f };

	assert_int_equal(virtio_dev_queue_start(f->d, q, &s, &f->err), 0);
}

static struct fix *fix_new(void)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct virtq_mem mem = { .gpa_to_hva = xlate, .ctx = f };

	f->mem = calloc(1, MEM_SIZE);
	assert_int_equal(pipe2(f->in, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(pipe2(f->out, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(virtio_console_create(f->in[0], f->out[1], &f->d, &f->err), 0);
	assert_int_equal(virtio_dev_activate(f->d, virtio_dev_features(f->d), &mem, NULL, NULL,
					     &f->err), 0);
	return f;
}

static void fix_free(struct fix *f)
{
	virtio_dev_destroy(f->d);
	for (int i = 0; i < 2; i++) {
		close(f->in[i]);
		close(f->out[i]);
	}
	free(f->mem);
	free(f);
}

static uint32_t used_len(struct fix *f, unsigned q, unsigned i)
{
	uint32_t len;

	memcpy(&len, at(f, RING(q) + 0x2000 + 8 + 8 * i), 4);
	return len;
}

/* Typed input waits in the pipe until the driver offers buffers, then
 * lands in them. */
static void test_input_reaches_receive_queue(void **state)
{
	struct fix *f = fix_new();

	start_queue(f, 0);
	assert_int_equal(write(f->in[1], "ping 42\n", 8), 8);
	usleep(100000);
	assert_int_equal(used_idx(f, 0), 0);             /* no buffer yet */
	offer(f, 0, 2, 64);
	virtio_dev_kick(f->d, 0);
	assert_int_equal(wait_used(f, 0, 1), 1);
	assert_int_equal(used_len(f, 0, 0), 8);
	assert_memory_equal(at(f, BUF(0, 0)), "ping 42\n", 8);
	assert_true(f->notifies[0] > 0);
	/* more input goes to the next buffer as it arrives */
	assert_int_equal(write(f->in[1], "x", 1), 1);
	assert_int_equal(wait_used(f, 0, 2), 2);
	assert_int_equal(used_len(f, 0, 1), 1);
	fix_free(f);
}

static void test_output_reaches_console_fd(void **state)
{
	struct fix *f = fix_new();
	uint64_t desc = RING(1), avail = RING(1) + 0x1000, addr = BUF(1, 0);
	uint32_t len = 11;
	uint16_t zero = 0, one = 1;
	struct pollfd p = { f->out[0], POLLIN, 0 };
	char buf[32] = { 0 };

	memcpy(at(f, addr), "HVC hello\r\n", 11);
	memcpy(at(f, desc), &addr, 8);
	memcpy(at(f, desc + 8), &len, 4);
	memcpy(at(f, desc + 12), &zero, 2);
	memcpy(at(f, avail + 4), &zero, 2);
	__atomic_store_n((uint16_t *)at(f, avail + 2), one, __ATOMIC_RELEASE);
	start_queue(f, 1);
	assert_int_equal(wait_used(f, 1, 1), 1);
	assert_int_equal(used_len(f, 1, 0), 0);
	assert_int_equal(poll(&p, 1, 3000), 1);
	assert_int_equal(read(f->out[0], buf, sizeof(buf)), 11);
	assert_string_equal(buf, "HVC hello\r\n");
	fix_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_input_reaches_receive_queue),
		cmocka_unit_test(test_output_reaches_console_fd),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
