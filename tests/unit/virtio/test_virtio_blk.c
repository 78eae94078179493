/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-blk request handling on a raw image, and virtio-rng filling. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>
#include <cmocka.h>

#include "block/block.h"
#include "virtio/blk.h"
#include "virtio/net.h"
#include "virtio/rng.h"

#define IMG_SIZE (1024 * 1024)
#define CAP_SECTORS (IMG_SIZE / 512)

struct fixture {
	char path[64];
	struct block_dev *bd;
	struct virtio_dev *d;
	struct virtq_chain c;
	struct verr err;
	uint8_t hdr[16];
	uint8_t data[8192];
	uint8_t status;
};

static void *no_mem(void *ctx, uint64_t gpa, uint64_t len)
{
	return NULL;
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct block_create_opts co = { .size = IMG_SIZE };
	struct block_open_opts oo = { .format = "raw", .read_write = true };
	struct virtio_blk_opts bo = { .num_queues = 2, .serial = "vireo-serial" };
	struct virtq_mem mem = { .gpa_to_hva = no_mem };
	int fd;

	snprintf(f->path, sizeof(f->path), "/tmp/vireo-blk-XXXXXX");
	fd = mkstemp(f->path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(block_create("raw", f->path, &co, &f->err), 0);
	assert_int_equal(block_open(f->path, &oo, &f->bd, &f->err), 0);
	bo.bd = f->bd;
	assert_int_equal(virtio_blk_create(&bo, &f->d, &f->err), 0);
	assert_int_equal(virtio_dev_activate(f->d, virtio_dev_features(f->d), &mem, NULL, NULL,
					     &f->err), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	virtio_dev_destroy(f->d);
	block_close(f->bd);
	unlink(f->path);
	free(f);
	return 0;
}

static void set_hdr(struct fixture *f, uint32_t type, uint64_t sector)
{
	memset(f->hdr, 0, sizeof(f->hdr));
	memcpy(f->hdr, &type, 4);
	memcpy(f->hdr + 8, &sector, 8);
	f->status = 0xee;
}

/* Chain: header (readable) [+ data readable or writable] + status byte. */
static void chain(struct fixture *f, size_t hdr_len, size_t data_len, bool data_writable)
{
	struct virtq_chain *c = &f->c;
	unsigned n = 0;

	memset(c, 0, sizeof(*c));
	c->iov[n++] = (struct iovec){ f->hdr, hdr_len };
	c->nout = 1;
	c->out_len = hdr_len;
	if (data_len && !data_writable) {
		c->iov[n++] = (struct iovec){ f->data, data_len };
		c->nout++;
		c->out_len += data_len;
	}
	if (data_len && data_writable) {
		c->iov[n++] = (struct iovec){ f->data, data_len };
		c->nin++;
		c->in_len += data_len;
	}
	c->iov[n++] = (struct iovec){ &f->status, 1 };
	c->nin++;
	c->in_len++;
}

static int handle(struct fixture *f, uint32_t *used)
{
	*used = 0;
	return virtio_blk_handle(f->d, 0, &f->c, used, &f->err);
}

static void test_write_read(void **state)
{
	struct fixture *f = *state;
	uint32_t used;

	for (int i = 0; i < 4096; i++)
		f->data[i] = (uint8_t)(i * 7 + 1);
	set_hdr(f, VIRTIO_BLK_T_OUT, 10);
	chain(f, 16, 4096, false);
	assert_int_equal(handle(f, &used), 0);
	assert_int_equal(f->status, VIRTIO_BLK_S_OK);
	assert_int_equal(used, 1);
	memset(f->data, 0, sizeof(f->data));
	set_hdr(f, VIRTIO_BLK_T_IN, 10);
	chain(f, 16, 4096, true);
	assert_int_equal(handle(f, &used), 0);
	assert_int_equal(f->status, VIRTIO_BLK_S_OK);
	assert_int_equal(used, 4097);
	for (int i = 0; i < 4096; i++)
		assert_int_equal(f->data[i], (uint8_t)(i * 7 + 1));
}

static void test_bad_header_sizes(void **state)
{
	struct fixture *f = *state;
	uint32_t used;

	set_hdr(f, VIRTIO_BLK_T_IN, 0);
	chain(f, 8, 512, true);
	assert_int_equal(handle(f, &used), -EIO);
	/* No writable byte for the status. */
	set_hdr(f, VIRTIO_BLK_T_OUT, 0);
	memset(&f->c, 0, sizeof(f->c));
	f->c.iov[0] = (struct iovec){ f->hdr, 16 };
	f->c.nout = 1;
	f->c.out_len = 16;
	assert_int_equal(handle(f, &used), -EIO);
}

static void test_unknown_type(void **state)
{
	struct fixture *f = *state;
	uint32_t used;

	set_hdr(f, 99, 0);
	chain(f, 16, 0, false);
	assert_int_equal(handle(f, &used), 0);
	assert_int_equal(f->status, VIRTIO_BLK_S_UNSUPP);
}

static void test_past_capacity(void **state)
{
	struct fixture *f = *state;
	uint32_t used;

	set_hdr(f, VIRTIO_BLK_T_IN, CAP_SECTORS - 1);
	chain(f, 16, 1024, true);
	assert_int_equal(handle(f, &used), 0);
	assert_int_equal(f->status, VIRTIO_BLK_S_IOERR);
	assert_int_equal(used, 1);
	/* A sector number that overflows when scaled to bytes. */
	set_hdr(f, VIRTIO_BLK_T_OUT, UINT64_MAX / 256);
	chain(f, 16, 512, false);
	assert_int_equal(handle(f, &used), 0);
	assert_int_equal(f->status, VIRTIO_BLK_S_IOERR);
	/* The last sector itself is fine. */
	set_hdr(f, VIRTIO_BLK_T_IN, CAP_SECTORS - 1);
	chain(f, 16, 512, true);
	assert_int_equal(handle(f, &used), 0);
	assert_int_equal(f->status, VIRTIO_BLK_S_OK);
}

static void test_unaligned_length(void **state)
{
	struct fixture *f = *state;
	uint32_t used;

	set_hdr(f, VIRTIO_BLK_T_IN, 0);
	chain(f, 16, 100, true);
	assert_int_equal(handle(f, &used), 0);
	assert_int_equal(f->status, VIRTIO_BLK_S_IOERR);
}

static void test_get_id_and_flush(void **state)
{
	struct fixture *f = *state;
	uint32_t used;

	set_hdr(f, VIRTIO_BLK_T_GET_ID, 0);
	chain(f, 16, 20, true);
	assert_int_equal(handle(f, &used), 0);
	assert_int_equal(f->status, VIRTIO_BLK_S_OK);
	assert_int_equal(used, 21);
	assert_string_equal((char *)f->data, "vireo-serial");
	set_hdr(f, VIRTIO_BLK_T_FLUSH, 0);
	chain(f, 16, 0, false);
	assert_int_equal(handle(f, &used), 0);
	assert_int_equal(f->status, VIRTIO_BLK_S_OK);
}

static void range(struct fixture *f, uint64_t sector, uint32_t n, uint32_t flags)
{
	memcpy(f->data, &sector, 8);
	memcpy(f->data + 8, &n, 4);
	memcpy(f->data + 12, &flags, 4);
}

static void test_write_zeroes_discard(void **state)
{
	struct fixture *f = *state;
	uint32_t used;

	memset(f->data, 0xab, 1024);
	set_hdr(f, VIRTIO_BLK_T_OUT, 4);
	chain(f, 16, 1024, false);
	assert_int_equal(handle(f, &used), 0);
	range(f, 4, 2, 0);
	set_hdr(f, VIRTIO_BLK_T_WRITE_ZEROES, 0);
	chain(f, 16, 16, false);
	assert_int_equal(handle(f, &used), 0);
	assert_int_equal(f->status, VIRTIO_BLK_S_OK);
	set_hdr(f, VIRTIO_BLK_T_IN, 4);
	chain(f, 16, 1024, true);
	assert_int_equal(handle(f, &used), 0);
	for (int i = 0; i < 1024; i++)
		assert_int_equal(f->data[i], 0);
	/* Discard with the unmap flag (reserved for discard) is unsupported. */
	range(f, 0, 8, 1);
	set_hdr(f, VIRTIO_BLK_T_DISCARD, 0);
	chain(f, 16, 16, false);
	assert_int_equal(handle(f, &used), 0);
	assert_int_equal(f->status, VIRTIO_BLK_S_UNSUPP);
	range(f, CAP_SECTORS, 8, 0);
	set_hdr(f, VIRTIO_BLK_T_DISCARD, 0);
	chain(f, 16, 16, false);
	assert_int_equal(handle(f, &used), 0);
	assert_int_equal(f->status, VIRTIO_BLK_S_IOERR);
	/* A segment list that is not a whole number of segments. */
	set_hdr(f, VIRTIO_BLK_T_DISCARD, 0);
	chain(f, 16, 10, false);
	assert_int_equal(handle(f, &used), 0);
	assert_int_equal(f->status, VIRTIO_BLK_S_UNSUPP);
}

static void test_config(void **state)
{
	struct fixture *f = *state;
	uint64_t cap;
	uint16_t nq;
	uint8_t beyond[4] = { 1, 1, 1, 1 };

	virtio_dev_config_read(f->d, 0, &cap, 8);
	assert_int_equal(cap, CAP_SECTORS);
	virtio_dev_config_read(f->d, 34, &nq, 2);
	assert_int_equal(nq, 2);
	virtio_dev_config_read(f->d, VIRTIO_BLK_CONFIG_SIZE - 2, beyond, 4);
	assert_int_equal(beyond[0] | beyond[3], 0);
	assert_int_equal(virtio_dev_num_queues(f->d), 2);
	assert_true(virtio_dev_features(f->d) & (1ull << VIRTIO_BLK_F_MQ));
	assert_false(virtio_dev_features(f->d) & (1ull << VIRTIO_BLK_F_RO));
}

static void test_rng_fills(void **state)
{
	struct virtio_dev *d;
	struct virtq_chain *c = calloc(1, sizeof(*c));
	struct verr err = { 0 };
	uint8_t a[300] = { 0 }, b[5000] = { 0 }, zero[300] = { 0 };
	uint32_t used = 0;

	assert_int_equal(virtio_rng_create(&d, &err), 0);
	c->iov[0] = (struct iovec){ a, sizeof(a) };
	c->iov[1] = (struct iovec){ b, sizeof(b) };
	c->nin = 2;
	c->in_len = sizeof(a) + sizeof(b);
	assert_int_equal(virtio_rng_handle(d, 0, c, &used, &err), 0);
	assert_int_equal(used, sizeof(a) + sizeof(b));
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_memory_not_equal(b + 4700, zero, 300);
	virtio_dev_destroy(d);
	free(c);
}

/* virtio-net's parsers: control commands and TX chains. */
static void test_net_ctrl_and_tx(void **state)
{
	struct virtio_net_opts o = { .tap_fd = eventfd(0, EFD_NONBLOCK) };
	struct virtq_chain *c = calloc(1, sizeof(*c));
	struct virtio_dev *d;
	struct verr err = { 0 };
	uint8_t cmd[4] = { 4, 0, 1, 0 }, ack = 0xee, frame[60] = { 0 };
	uint32_t used = 0;
	uint64_t flen;

	assert_int_equal(virtio_net_create(&o, &d, &err), 0);
	c->iov[0] = (struct iovec){ cmd, 4 };
	c->iov[1] = (struct iovec){ &ack, 1 };
	c->nout = c->nin = 1;
	c->out_len = 4;
	c->in_len = 1;
	assert_int_equal(virtio_net_ctrl(d, 2, c, &used, &err), 0);
	assert_int_equal(ack, 0);                /* 1 pair: accepted */
	cmd[2] = 2;
	assert_int_equal(virtio_net_ctrl(d, 2, c, &used, &err), 0);
	assert_int_equal(ack, 1);                /* more pairs than offered */
	cmd[0] = 9;
	assert_int_equal(virtio_net_ctrl(d, 2, c, &used, &err), 0);
	assert_int_equal(ack, 1);                /* unknown class */
	c->nin = 0;
	c->in_len = 0;
	assert_int_equal(virtio_net_ctrl(d, 2, c, &used, &err), -EIO);
	/* TX: header + frame is fine; short or writable chains are not. */
	memset(c, 0, sizeof(*c));
	c->iov[0] = (struct iovec){ frame, 60 };
	c->nout = 1;
	c->out_len = 60;
	assert_int_equal(virtio_net_tx_check(c, &flen, &err), 0);
	assert_int_equal(flen, 60 - VIRTIO_NET_HDR_SIZE);
	c->out_len = 4;
	assert_int_equal(virtio_net_tx_check(c, &flen, &err), -EIO);
	c->out_len = 60;
	c->nin = 1;
	assert_int_equal(virtio_net_tx_check(c, &flen, &err), -EIO);
	virtio_dev_destroy(d);
	free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_write_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_header_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_type, setup, teardown),
		cmocka_unit_test_setup_teardown(test_past_capacity, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unaligned_length, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_id_and_flush, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_zeroes_discard, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config, setup, teardown),
		cmocka_unit_test(test_rng_fills),
		cmocka_unit_test(test_net_ctrl_and_tx),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
