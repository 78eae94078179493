/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-console with a single port: queue 0 carries host input to the
 * guest, queue 1 guest output to the host. Input that finds no guest buffer
 * stays in the fd (edge-triggered watch), and is read once the guest
 * offers buffers and kicks queue 0.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "virtio/console.h"

struct virtio_console {
	struct virtio_dev dev;
	int in_fd, out_fd;
	uint8_t config[VIRTIO_CONSOLE_CONFIG_SIZE];
};

static struct virtio_console *to_con(struct virtio_dev *d)
{
	return (struct virtio_console *)d;
}

static uint64_t con_features(struct virtio_dev *d)
{
	return 0;
}

static void con_config_read(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len)
{
	memcpy(buf, to_con(d)->config + off, len);
}

static int con_tx_one(struct virtio_dev *d, unsigned q, struct virtq_chain *c,
		      uint32_t *used_len, struct verr *err)
{
	struct virtio_console *con = to_con(d);
	unsigned i = 0;

	/* Output may block briefly (a pipe); a dead reader just loses it. */
	while (i < c->nout) {
		ssize_t n = writev(con->out_fd, c->iov + i, (int)(c->nout - i));

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			log_debug(d->name, "output: %s", strerror(errno));
			break;
		}
		while (i < c->nout && (size_t)n >= c->iov[i].iov_len)
			n -= (ssize_t)c->iov[i++].iov_len;
		if (i < c->nout && n > 0) {
			struct iovec rest = { (uint8_t *)c->iov[i].iov_base + n,
					      c->iov[i].iov_len - (size_t)n };

			if (write(con->out_fd, rest.iov_base, rest.iov_len) < 0)
				break;
			i++;
		}
	}
	*used_len = 0;
	return 0;
}

static int con_rx(struct virtio_console *con, struct verr *err)
{
	struct virtio_dev *d = &con->dev;
	struct virtq *vq = &d->q[0].vq;
	unsigned done = 0;
	int r = 0;

	while (con->in_fd >= 0 && virtio_dev_queue_ready(d, 0) && done < vq->num) {
		ssize_t got;

		r = virtq_pop_or_arm(vq, d->chain, err);
		if (r <= 0)
			break;
		got = d->chain->nin ? readv(con->in_fd, d->chain->iov + d->chain->nout,
					    (int)d->chain->nin) : 0;
		if (got <= 0) {
			virtq_unpop(vq);
			r = 0;
			break;
		}
		r = virtq_push(vq, d->chain->head, (uint32_t)got, err);
		if (r < 0)
			break;
		done++;
	}
	if (done)
		virtio_dev_notify(d, 0);
	return r < 0 ? r : 0;
}

static int con_process(struct virtio_dev *d, unsigned q, struct verr *err)
{
	if (q == 0)
		return con_rx(to_con(d), err);
	return virtio_dev_serve(d, q, con_tx_one, err);
}

static void con_input(struct virtio_dev *d, void *arg)
{
	struct verr err = { 0 };

	if (con_rx(to_con(d), &err) < 0)
		virtio_dev_fail(d, 0, &err);
}

static void con_destroy(struct virtio_dev *d)
{
	free(to_con(d));
}

static const struct virtio_dev_ops con_ops = {
	.name = "virtio-console",
	.device_id = VIRTIO_ID_CONSOLE,
	.features = con_features,
	.config_size = VIRTIO_CONSOLE_CONFIG_SIZE,
	.config_read = con_config_read,
	.process = con_process,
	.destroy = con_destroy,
};

int virtio_console_create(int in_fd, int out_fd, struct virtio_dev **out, struct verr *err)
{
	struct virtio_console *con = calloc(1, sizeof(*con));
	uint32_t one = 1;
	int r;

	if (!con)
		return verr_set(err, ENOMEM, "virtio-console: out of memory");
	con->in_fd = in_fd;
	con->out_fd = out_fd;
	memcpy(con->config + 4, &one, 4);          /* max_nr_ports */
	r = virtio_dev_init(&con->dev, &con_ops, "virtio-console", 2, VIRTIO_CONSOLE_QUEUE_SIZE,
			    err);
	if (r) {
		free(con);
		return r;
	}
	if (in_fd >= 0) {
		r = virtio_dev_watch_fd(&con->dev, in_fd, con_input, NULL, err);
		if (r) {
			virtio_dev_destroy(&con->dev);
			return r;
		}
	}
	*out = &con->dev;
	return 0;
}
