/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-rng (virtio 1.2, 5.4): one queue filled from getrandom(2). */
#ifndef VIREO_VIRTIO_RNG_H
#define VIREO_VIRTIO_RNG_H

#include "virtio/device.h"

#define VIRTIO_RNG_QUEUE_SIZE 256

int virtio_rng_create(struct virtio_dev **out, struct verr *err);

/* Fill one chain's writable part (exposed for unit tests). */
int virtio_rng_handle(struct virtio_dev *d, unsigned q, struct virtq_chain *c,
		      uint32_t *used_len, struct verr *err);

#endif
