/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Generic virtio device: feature negotiation, queue lifecycle and the
 * epoll-driven I/O thread every device model runs its queues on.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "virtio/device.h"

#define GENERIC_FEATURES ((1ull << VIRTIO_F_VERSION_1) | (1ull << VIRTIO_F_INDIRECT_DESC) | \
			  (1ull << VIRTIO_F_EVENT_IDX))
/* epoll tags: queues are 0..VIRTIO_MAX_QUEUES-1, then these. */
#define TAG_WAKE 0xffffu
#define TAG_WATCH 0x10000u
/* Adaptive polling: quick events in a row before polling is tried again. */
#define POLL_NEED_MIN 8u
#define POLL_NEED_MAX 4096u
#define FAILS_LOGGED 10u

uint64_t virtio_dev_features(struct virtio_dev *d)
{
	return GENERIC_FEATURES | d->ops->features(d);
}

enum virtio_id virtio_dev_id(const struct virtio_dev *d)
{
	return d->ops->device_id;
}

unsigned virtio_dev_num_queues(const struct virtio_dev *d)
{
	return d->nqueues;
}

uint16_t virtio_dev_queue_max_size(const struct virtio_dev *d)
{
	return d->queue_max_size;
}

size_t virtio_dev_config_size(const struct virtio_dev *d)
{
	return d->ops->config_size;
}

void virtio_dev_config_read(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len)
{
	size_t size = d->ops->config_size;

	memset(buf, 0, len);
	if (off >= size || len > size - off || !d->ops->config_read)
		return;
	pthread_mutex_lock(&d->lock);
	d->ops->config_read(d, off, buf, len);
	pthread_mutex_unlock(&d->lock);
}

void virtio_dev_config_write(struct virtio_dev *d, uint32_t off, const void *buf, uint32_t len)
{
	size_t size = d->ops->config_size;

	if (off >= size || len > size - off || !d->ops->config_write)
		return;
	pthread_mutex_lock(&d->lock);
	d->ops->config_write(d, off, buf, len);
	pthread_mutex_unlock(&d->lock);
}

int virtio_dev_activate(struct virtio_dev *d, uint64_t features, const struct virtq_mem *mem,
			void (*config_changed)(void *opaque), void *opaque, struct verr *err)
{
	uint64_t offer = virtio_dev_features(d);
	int r = 0;

	if (features & ~offer)
		return verr_set(err, EINVAL, "%s: driver accepted features 0x%llx not offered",
				d->name, (unsigned long long)(features & ~offer));
	pthread_mutex_lock(&d->lock);
	d->features = features;
	d->mem = *mem;
	d->config_changed = config_changed;
	d->config_opaque = opaque;
	if (d->ops->activate)
		r = d->ops->activate(d, err);
	d->active = r == 0;
	pthread_mutex_unlock(&d->lock);
	return r;
}

static void wake(struct virtio_dev *d)
{
	uint64_t one = 1;

	if (write(d->wakefd, &one, sizeof(one)) < 0)
		log_warn(d->name, "cannot wake the I/O thread: %s", strerror(errno));
}

int virtio_dev_queue_start(struct virtio_dev *d, unsigned q, const struct virtio_queue_setup *s,
			   struct verr *err)
{
	struct virtio_queue *vq;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = q };
	int r;

	if (q >= d->nqueues)
		return verr_set(err, EINVAL, "%s: queue %u of %u", d->name, q, d->nqueues);
	if (s->size > d->queue_max_size)
		return verr_set(err, EINVAL, "%s: queue %u size %u > %u", d->name, q, s->size,
				d->queue_max_size);
	virtio_dev_queue_stop(d, q);
	pthread_mutex_lock(&d->lock);
	vq = &d->q[q];
	r = virtq_start(&vq->vq, &d->mem, s->size, s->desc, s->avail, s->used, d->features,
			s->base, err);
	if (r)
		goto out;
	vq->own_kick = s->kick_fd < 0;
	vq->kick_fd = vq->own_kick ? eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC) : s->kick_fd;
	if (vq->kick_fd < 0) {
		r = verr_set(err, errno, "%s: eventfd: %s", d->name, strerror(errno));
		goto out;
	}
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, vq->kick_fd, &ev) < 0) {
		r = verr_set(err, errno, "%s: queue %u: cannot watch the kick fd: %s", d->name, q,
			     strerror(errno));
		if (vq->own_kick)
			close(vq->kick_fd);
		goto out;
	}
	vq->notify = s->notify;
	vq->notify_opaque = s->notify_opaque;
	vq->started = true;
	if (d->ops->queues_changed)
		d->ops->queues_changed(d);
	/* The driver may have queued buffers before the kick fd existed. */
	virtio_dev_kick(d, q);
out:
	if (r)
		verr_prefix(err, "queue %u: ", q);
	pthread_mutex_unlock(&d->lock);
	return r;
}

uint16_t virtio_dev_queue_stop(struct virtio_dev *d, unsigned q)
{
	struct virtio_queue *vq;
	uint16_t base;

	if (q >= d->nqueues)
		return 0;
	pthread_mutex_lock(&d->lock);
	vq = &d->q[q];
	if (vq->started && d->ops->quiesce)
		d->ops->quiesce(d, q);
	base = vq->vq.last_avail;
	if (vq->started) {
		int fd = vq->kick_fd;

		/* Unpublish the fd before closing it, for virtio_dev_kick. */
		__atomic_store_n(&vq->kick_fd, -1, __ATOMIC_RELEASE);
		epoll_ctl(d->epfd, EPOLL_CTL_DEL, fd, NULL);
		if (vq->own_kick)
			close(fd);
		vq->started = false;
		if (d->ops->queues_changed)
			d->ops->queues_changed(d);
	}
	pthread_mutex_unlock(&d->lock);
	return base;
}

void virtio_dev_kick(struct virtio_dev *d, unsigned q)
{
	uint64_t one = 1;
	int fd;

	if (q >= d->nqueues)
		return;
	fd = __atomic_load_n(&d->q[q].kick_fd, __ATOMIC_RELAXED);
	if (fd >= 0 && write(fd, &one, sizeof(one)) < 0)
		log_debug(d->name, "kick of queue %u: %s", q, strerror(errno));
}

void virtio_dev_reset(struct virtio_dev *d)
{
	for (unsigned q = 0; q < d->nqueues; q++)
		virtio_dev_queue_stop(d, q);
	pthread_mutex_lock(&d->lock);
	if (d->ops->reset)
		d->ops->reset(d);
	d->features = 0;
	d->active = false;
	d->needs_reset = false;
	pthread_mutex_unlock(&d->lock);
}

bool virtio_dev_needs_reset(struct virtio_dev *d)
{
	return __atomic_load_n(&d->needs_reset, __ATOMIC_ACQUIRE);
}

int virtio_dev_save(struct virtio_dev *d, void *buf, size_t len, struct verr *err)
{
	if (!d->ops->save)
		return verr_set(err, ENOTSUP, "%s: no saved state", d->name);
	return d->ops->save(d, buf, len, err);
}

int virtio_dev_restore(struct virtio_dev *d, const void *buf, size_t len, struct verr *err)
{
	if (!d->ops->restore)
		return verr_set(err, ENOTSUP, "%s: no saved state", d->name);
	return d->ops->restore(d, buf, len, err);
}

void virtio_dev_restored(struct virtio_dev *d)
{
	pthread_mutex_lock(&d->lock);
	if (d->ops->restored && d->active)
		d->ops->restored(d);
	pthread_mutex_unlock(&d->lock);
}

bool virtio_dev_queue_ready(struct virtio_dev *d, unsigned q)
{
	return q < d->nqueues && d->q[q].started && d->active && !d->needs_reset;
}

void virtio_dev_notify(struct virtio_dev *d, unsigned q)
{
	struct virtio_queue *vq = &d->q[q];

	if (vq->notify && virtq_should_notify(&vq->vq))
		vq->notify(vq->notify_opaque, q);
}

void virtio_dev_fail(struct virtio_dev *d, unsigned q, const struct verr *err)
{
	if (d->needs_reset)
		return;
	__atomic_store_n(&d->needs_reset, true, __ATOMIC_RELEASE);
	/* A driver that breaks and resets the device over and over must not
	 * flood the log. */
	if (d->fails < FAILS_LOGGED)
		log_error(d->name, "queue %u: %s; device needs reset%s", q, err->msg,
			  ++d->fails == FAILS_LOGGED ? " (further ones at debug level)" : "");
	else
		log_debug(d->name, "queue %u: %s; device needs reset", q, err->msg);
	if (d->config_changed)
		d->config_changed(d->config_opaque);
}

int virtio_dev_process(struct virtio_dev *d, unsigned q)
{
	struct verr err = { 0 };
	int r;

	if (!virtio_dev_queue_ready(d, q))
		return 0;
	r = d->ops->process(d, q, &err);
	if (r < 0)
		virtio_dev_fail(d, q, &err);
	return r;
}

int virtio_dev_serve(struct virtio_dev *d, unsigned q, virtio_chain_fn fn, struct verr *err)
{
	struct virtq *vq = &d->q[q].vq;
	unsigned done = 0;
	uint32_t len;
	int r = 0;

	for (;;) {
		r = virtq_pop_or_arm(vq, d->chain, err);
		if (r <= 0)
			break;
		len = 0;
		r = fn(d, q, d->chain, &len, err);
		if (!r)
			r = virtq_push(vq, d->chain->head, len, err);
		if (r < 0)
			break;
		if (++done >= vq->num) {
			virtio_dev_kick(d, q);
			break;
		}
	}
	if (done)
		virtio_dev_notify(d, q);
	return r < 0 ? r : 0;
}

static void handle_event(struct virtio_dev *d, uint64_t tag)
{
	uint64_t v;

	if (tag == TAG_WAKE) {
		if (read(d->wakefd, &v, sizeof(v)) < 0)
			v = 0;
		return;
	}
	if (tag >= TAG_WATCH) {
		struct virtio_watch *w = &d->watch[tag - TAG_WATCH];

		if (d->active && !d->needs_reset)
			w->cb(d, w->arg);
		return;
	}
	if (tag < d->nqueues && d->q[tag].started) {
		if (read(d->q[tag].kick_fd, &v, sizeof(v)) < 0)
			v = 0;
		virtio_dev_process(d, (unsigned)tag);
	}
}

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Wait for events, polling first while that pays. Waking a sleeping thread
 * costs tens of microseconds on these (nested) hosts, as much as a guest
 * waiting on one request takes to send the next, so a device whose events
 * keep coming within a few poll windows of each other polls for up to
 * poll_max_us before it sleeps. A window that runs out without an event
 * (the guest is slow, or shares our CPU) stops polling, and each such
 * failure doubles the run of quick events needed to try again, so an idle
 * or starved device does not spin. */
static int wait_events(struct virtio_dev *d, struct epoll_event *ev, int max)
{
	uint64_t limit = (uint64_t)d->ops->poll_max_us * 1000, t0, waited;
	int n;

	if (!limit)
		return epoll_wait(d->epfd, ev, max, -1);
	t0 = now_ns();
	if (d->polling) {
		do {
			if ((n = epoll_wait(d->epfd, ev, max, 0)) != 0) {
				d->poll_need = POLL_NEED_MIN;
				return n;
			}
		} while (now_ns() - t0 < limit);
		d->polling = false;
		d->poll_quick = 0;
		if (d->poll_need < POLL_NEED_MAX)
			d->poll_need *= 2;
	}
	n = epoll_wait(d->epfd, ev, max, -1);
	waited = now_ns() - t0;
	if (waited > 4 * limit)
		d->poll_quick = 0;
	else if (++d->poll_quick >= d->poll_need)
		d->polling = true;
	return n;
}

static void *io_thread(void *arg)
{
	struct virtio_dev *d = arg;
	struct epoll_event ev[16];

	for (;;) {
		int n = wait_events(d, ev, 16);

		if (n < 0 && errno != EINTR) {
			log_error(d->name, "epoll_wait: %s", strerror(errno));
			break;
		}
		pthread_mutex_lock(&d->lock);
		if (d->stop) {
			pthread_mutex_unlock(&d->lock);
			break;
		}
		for (int i = 0; i < n; i++)
			handle_event(d, ev[i].data.u64);
		pthread_mutex_unlock(&d->lock);
	}
	return NULL;
}

int virtio_dev_init(struct virtio_dev *d, const struct virtio_dev_ops *ops, const char *name,
		    unsigned nqueues, uint16_t queue_max_size, struct verr *err)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TAG_WAKE };

	memset(d, 0, sizeof(*d));
	d->epfd = d->wakefd = -1;
	if (nqueues == 0 || nqueues > VIRTIO_MAX_QUEUES)
		return verr_set(err, EINVAL, "%s: %u queues (1..%u)", name, nqueues,
				VIRTIO_MAX_QUEUES);
	d->ops = ops;
	snprintf(d->name, sizeof(d->name), "%s", name);
	d->nqueues = nqueues;
	d->queue_max_size = queue_max_size;
	d->poll_need = POLL_NEED_MIN;
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		d->q[q].kick_fd = -1;
	pthread_mutex_init(&d->lock, NULL);
	d->chain = malloc(sizeof(*d->chain));
	d->epfd = epoll_create1(EPOLL_CLOEXEC);
	d->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (!d->chain || d->epfd < 0 || d->wakefd < 0 ||
	    epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->wakefd, &ev) < 0) {
		verr_set(err, errno ? errno : ENOMEM, "%s: cannot set up the I/O thread", name);
		goto fail;
	}
	if (pthread_create(&d->thread, NULL, io_thread, d)) {
		verr_set(err, EAGAIN, "%s: cannot start the I/O thread", name);
		goto fail;
	}
	d->thread_started = true;
	return 0;
fail:
	free(d->chain);
	d->chain = NULL;
	if (d->epfd >= 0)
		close(d->epfd);
	if (d->wakefd >= 0)
		close(d->wakefd);
	pthread_mutex_destroy(&d->lock);
	return -err->code;
}

int virtio_dev_watch_fd(struct virtio_dev *d, int fd, void (*cb)(struct virtio_dev *d, void *arg),
			void *arg, struct verr *err)
{
	struct epoll_event ev = { .events = EPOLLIN | EPOLLET };
	int r = 0;

	pthread_mutex_lock(&d->lock);
	if (d->nwatch == VIRTIO_MAX_WATCHES) {
		r = verr_set(err, ENOSPC, "%s: too many watched fds", d->name);
		goto out;
	}
	ev.data.u64 = TAG_WATCH + d->nwatch;
	d->watch[d->nwatch] = (struct virtio_watch){ .fd = fd, .cb = cb, .arg = arg };
	if (epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		r = verr_set(err, errno, "%s: cannot watch fd %d: %s", d->name, fd, strerror(errno));
		goto out;
	}
	d->nwatch++;
out:
	pthread_mutex_unlock(&d->lock);
	return r;
}

void virtio_dev_destroy(struct virtio_dev *d)
{
	if (!d)
		return;
	for (unsigned q = 0; q < d->nqueues; q++)
		virtio_dev_queue_stop(d, q);
	if (d->thread_started) {
		pthread_mutex_lock(&d->lock);
		d->stop = true;
		pthread_mutex_unlock(&d->lock);
		wake(d);
		pthread_join(d->thread, NULL);
	}
	free(d->chain);
	d->chain = NULL;
	close(d->epfd);
	close(d->wakefd);
	pthread_mutex_destroy(&d->lock);
	/* Last: the model's hook may free the struct that embeds d. */
	if (d->ops && d->ops->destroy)
		d->ops->destroy(d);
}
