/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-blk (virtio 1.2, 5.2) on an open block_dev. */
#ifndef VIREO_VIRTIO_BLK_H
#define VIREO_VIRTIO_BLK_H

#include <stdbool.h>

#include "block/block.h"
#include "virtio/device.h"

#define VIRTIO_BLK_F_SIZE_MAX 1
#define VIRTIO_BLK_F_SEG_MAX 2
#define VIRTIO_BLK_F_RO 5
#define VIRTIO_BLK_F_BLK_SIZE 6
#define VIRTIO_BLK_F_FLUSH 9
#define VIRTIO_BLK_F_TOPOLOGY 10
#define VIRTIO_BLK_F_MQ 12
#define VIRTIO_BLK_F_DISCARD 13
#define VIRTIO_BLK_F_WRITE_ZEROES 14

#define VIRTIO_BLK_T_IN 0
#define VIRTIO_BLK_T_OUT 1
#define VIRTIO_BLK_T_FLUSH 4
#define VIRTIO_BLK_T_GET_ID 8
#define VIRTIO_BLK_T_DISCARD 11
#define VIRTIO_BLK_T_WRITE_ZEROES 13

#define VIRTIO_BLK_S_OK 0
#define VIRTIO_BLK_S_IOERR 1
#define VIRTIO_BLK_S_UNSUPP 2

#define VIRTIO_BLK_QUEUE_SIZE 256
#define VIRTIO_BLK_CONFIG_SIZE 60

struct virtio_blk_opts {
	struct block_dev *bd;       /* borrowed: the caller closes it after destroy */
	bool read_only;
	unsigned num_queues;        /* 0 means 1 */
	const char *serial;         /* GET_ID answer, up to 20 bytes; NULL: file name */
};

int virtio_blk_create(const struct virtio_blk_opts *o, struct virtio_dev **out,
		      struct verr *err);

/* Serve one request chain (exposed for unit tests and the fuzzer): the
 * status byte is written; *used_len gets the bytes written. <0 only for a
 * chain too malformed to carry a status. */
int virtio_blk_handle(struct virtio_dev *d, unsigned q, struct virtq_chain *c,
		      uint32_t *used_len, struct verr *err);

#endif
