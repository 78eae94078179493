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

#include "ring_fixture.h"


struct fix {
	struct ring_fix r;                /* device, guest memory, notify counts */
	int in[2], out[2];                /* console input and output pipes */
};

static void start_queue(struct fix *f, unsigned q)
{
	assert_int_equal(ring_start_queue(&f->r, q), 0);
}

static struct fix *fix_new(void)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct virtq_mem mem = { .gpa_to_hva = ring_xlate, .ctx = &f->r };

	f->r.mem = calloc(1, MEM_SIZE);
	assert_int_equal(pipe2(f->in, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(pipe2(f->out, O_NONBLOCK | O_CLOEXEC), 0);
	assert_int_equal(virtio_console_create(f->in[0], f->out[1], &f->r.d, &f->r.err), 0);
	assert_int_equal(virtio_dev_activate(f->r.d, virtio_dev_features(f->r.d), &mem, NULL, NULL,
					     &f->r.err), 0);
	return f;
}

static void fix_free(struct fix *f)
{
	virtio_dev_destroy(f->r.d);
	for (int i = 0; i < 2; i++) {
		close(f->in[i]);
		close(f->out[i]);
	}
	free(f->r.mem);
	free(f);
}

static uint32_t used_len(struct fix *f, unsigned q, unsigned i)
{
	uint32_t len;

	memcpy(&len, at(&f->r, RING(q) + 0x2000 + 8 + 8 * i), 4);
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
	assert_int_equal(used_idx(&f->r, 0), 0);             /* no buffer yet */
	offer(&f->r, 0, 2, 64);
	virtio_dev_kick(f->r.d, 0);
	assert_int_equal(wait_used(&f->r, 0, 1), 1);
	assert_int_equal(used_len(f, 0, 0), 8);
	assert_memory_equal(at(&f->r, BUF(0, 0)), "ping 42\n", 8);
	assert_true(f->r.notifies[0] > 0);
	/* more input goes to the next buffer as it arrives */
	assert_int_equal(write(f->in[1], "x", 1), 1);
	assert_int_equal(wait_used(&f->r, 0, 2), 2);
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

	memcpy(at(&f->r, addr), "HVC hello\r\n", 11);
	memcpy(at(&f->r, desc), &addr, 8);
	memcpy(at(&f->r, desc + 8), &len, 4);
	memcpy(at(&f->r, desc + 12), &zero, 2);
	memcpy(at(&f->r, avail + 4), &zero, 2);
	__atomic_store_n((uint16_t *)at(&f->r, avail + 2), one, __ATOMIC_RELEASE);
	start_queue(f, 1);
	assert_int_equal(wait_used(&f->r, 1, 1), 1);
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
