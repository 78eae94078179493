/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-rng: entropy from getrandom(2). A request is capped so one greedy
 * guest buffer cannot make the I/O thread spin in the kernel's generator.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/random.h>

#include "virtio/rng.h"

#define RNG_MAX_PER_REQUEST (64u * 1024)

static uint64_t rng_features(struct virtio_dev *d)
{
	return 0;
}

int virtio_rng_handle(struct virtio_dev *d, unsigned q, struct virtq_chain *c,
		      uint32_t *used_len, struct verr *err)
{
	uint32_t total = 0;

	for (unsigned i = c->nout; i < c->nout + c->nin && total < RNG_MAX_PER_REQUEST; i++) {
		size_t want = c->iov[i].iov_len;
		ssize_t got;

		if (want > RNG_MAX_PER_REQUEST - total)
			want = RNG_MAX_PER_REQUEST - total;
		got = getrandom(c->iov[i].iov_base, want, 0);
		if (got < 0)
			break;       /* EINTR and the like: hand back what we have */
		total += (uint32_t)got;
		if ((size_t)got < want)
			break;
	}
	*used_len = total;
	return 0;
}

static int rng_process(struct virtio_dev *d, unsigned q, struct verr *err)
{
	return virtio_dev_serve(d, q, virtio_rng_handle, err);
}

static void rng_destroy(struct virtio_dev *d)
{
	free(d);
}

static const struct virtio_dev_ops rng_ops = {
	.name = "virtio-rng",
	.device_id = VIRTIO_ID_RNG,
	.features = rng_features,
	.config_size = 0,
	.process = rng_process,
	.destroy = rng_destroy,
};

int virtio_rng_create(struct virtio_dev **out, struct verr *err)
{
	struct virtio_dev *d = calloc(1, sizeof(*d));
	int r;

	if (!d)
		return verr_set(err, ENOMEM, "virtio-rng: out of memory");
	r = virtio_dev_init(d, &rng_ops, "virtio-rng", 1, VIRTIO_RNG_QUEUE_SIZE, err);
	if (r) {
		free(d);
		return r;
	}
	*out = d;
	return 0;
}
