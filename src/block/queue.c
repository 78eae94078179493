/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Asynchronous submission. Requests whose bytes map directly onto the image
 * file (all of raw; allocated clusters of qcow2) go to io_uring and run in
 * parallel. Everything else (allocation, compressed or backing reads, flush,
 * discard) runs in one worker thread, in order, because format metadata
 * needs sequential handling. A slow request waits until no fast request is
 * in flight, so a cluster it frees can never be the target of a pending
 * write. Completions are delivered by block_queue_poll; the eventfd signals
 * both io_uring and worker completions.
 */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "block/block.h"
#include "block/file.h"

struct block_queue {
	struct block_dev *bd;
	pthread_mutex_t lock;          /* driver state and the lists below */
	pthread_cond_t cond;
	struct io_uring ring;
	bool have_ring;
	int efd;
	pthread_t worker;
	bool worker_started, stop;
	struct block_req *slow_head, *slow_tail;
	struct block_req *done_head, *done_tail;
	int fast_inflight, slow_pending, total_inflight;
};

static void push(struct block_req **h, struct block_req **t, struct block_req *r)
{
	r->next = NULL;
	if (*t)
		(*t)->next = r;
	else
		*h = r;
	*t = r;
}

static void signal_efd(struct block_queue *q)
{
	uint64_t one = 1;
	ssize_t n = write(q->efd, &one, sizeof(one));
	(void)n;
}

static int run_sync(struct block_dev *bd, struct block_req *r)
{
	struct verr err = {0};

	switch (r->op) {
	case BLOCK_OP_READ: return block_read(bd, r->offset, r->buf, r->len, &err);
	case BLOCK_OP_WRITE: return block_write(bd, r->offset, r->buf, r->len, &err);
	case BLOCK_OP_FLUSH: return block_flush(bd, &err);
	case BLOCK_OP_DISCARD: return block_discard(bd, r->offset, r->len, &err);
	case BLOCK_OP_WRITE_ZEROES: return block_write_zeroes(bd, r->offset, r->len, &err);
	}
	return -EINVAL;
}

static void *worker(void *arg)
{
	struct block_queue *q = arg;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		while (!q->stop && (!q->slow_head || q->fast_inflight))
			pthread_cond_wait(&q->cond, &q->lock);
		if (q->stop && !q->slow_head)
			break;
		struct block_req *r = q->slow_head;
		q->slow_head = r->next;
		if (!q->slow_head)
			q->slow_tail = NULL;
		r->ret = run_sync(q->bd, r);
		q->slow_pending--;
		push(&q->done_head, &q->done_tail, r);
		signal_efd(q);
		pthread_cond_broadcast(&q->cond);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

int block_queue_new(struct block_dev *bd, int depth, struct block_queue **out, struct verr *err)
{
	struct block_queue *q = calloc(1, sizeof(*q));

	if (!q)
		return verr_set(err, ENOMEM, "out of memory");
	q->bd = bd;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->cond, NULL);
	q->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (q->efd < 0) {
		free(q);
		return verr_set(err, errno, "%s: eventfd failed", bd->filename);
	}
	if (depth < 1)
		depth = 1;
	if (bd->drv->map_direct &&
	    io_uring_queue_init((unsigned)(depth > 4096 ? 4096 : depth), &q->ring, 0) == 0) {
		q->have_ring = true;
		io_uring_register_eventfd(&q->ring, q->efd);
	}
	if (pthread_create(&q->worker, NULL, worker, q)) {
		block_queue_free(q);
		return verr_set(err, EAGAIN, "%s: cannot start the I/O worker", bd->filename);
	}
	q->worker_started = true;
	*out = q;
	return 0;
}

int block_queue_eventfd(struct block_queue *q)
{
	return q->efd;
}

static bool try_fast(struct block_queue *q, struct block_req *r)
{
	struct block_dev *bd = q->bd;
	struct io_uring_sqe *sqe;
	bool write = r->op == BLOCK_OP_WRITE;
	uint64_t host;

	if (!q->have_ring || q->slow_pending || (r->op != BLOCK_OP_READ && !write))
		return false;
	if (r->offset > bd->size || r->len > bd->size - r->offset || (write && bd->read_only))
		return false;
	if (bd->direct && ((r->offset | r->len | (uintptr_t)r->buf) & (FILE_DIRECT_ALIGN - 1)))
		return false;
	if (bd->drv->map_direct(bd, r->offset, r->len, write, &host))
		return false;
	sqe = io_uring_get_sqe(&q->ring);
	if (!sqe)
		return false;
	if (write)
		io_uring_prep_write(sqe, bd->fd, r->buf, (unsigned)r->len, host);
	else
		io_uring_prep_read(sqe, bd->fd, r->buf, (unsigned)r->len, host);
	io_uring_sqe_set_data(sqe, r);
	if (io_uring_submit(&q->ring) < 0)
		return false;
	q->fast_inflight++;
	return true;
}

int block_submit(struct block_queue *q, struct block_req *req)
{
	pthread_mutex_lock(&q->lock);
	q->total_inflight++;
	if (!try_fast(q, req)) {
		q->slow_pending++;
		push(&q->slow_head, &q->slow_tail, req);
		pthread_cond_broadcast(&q->cond);
	}
	pthread_mutex_unlock(&q->lock);
	return 0;
}

/* Reap io_uring completions; short transfers are finished synchronously. */
static void reap_ring(struct block_queue *q)
{
	struct io_uring_cqe *cqe;

	while (q->have_ring && io_uring_peek_cqe(&q->ring, &cqe) == 0) {
		struct block_req *r = io_uring_cqe_get_data(cqe);
		int res = cqe->res;
		io_uring_cqe_seen(&q->ring, cqe);
		if (res >= 0 && (size_t)res < r->len) {
			/* Rare: finish the tail the slow, always-correct way. */
			struct block_req tail = *r;
			tail.offset += (uint64_t)res;
			tail.buf = (uint8_t *)r->buf + res;
			tail.len -= (size_t)res;
			res = run_sync(q->bd, &tail);
		}
		r->ret = res < 0 ? res : 0;
		q->fast_inflight--;
		push(&q->done_head, &q->done_tail, r);
	}
	if (!q->fast_inflight)
		pthread_cond_broadcast(&q->cond);
}

int block_queue_poll(struct block_queue *q, bool wait)
{
	struct block_req *done;
	int n = 0;

	for (;;) {
		uint64_t v;
		ssize_t rd = read(q->efd, &v, sizeof(v));
		(void)rd;
		pthread_mutex_lock(&q->lock);
		reap_ring(q);
		done = q->done_head;
		q->done_head = q->done_tail = NULL;
		pthread_mutex_unlock(&q->lock);
		for (struct block_req *r = done, *next; r; r = next) {
			next = r->next;
			n++;
			pthread_mutex_lock(&q->lock);
			q->total_inflight--;
			pthread_mutex_unlock(&q->lock);
			if (r->cb)
				r->cb(r, r->opaque);
		}
		if (n || !wait || !q->total_inflight)
			return n;
		/* Sleep until io_uring or the worker signals the eventfd; the
		 * timeout only guards against a lost wakeup. */
		struct pollfd pfd = { .fd = q->efd, .events = POLLIN };
		poll(&pfd, 1, 100);
	}
}

void block_queue_free(struct block_queue *q)
{
	if (!q)
		return;
	while (q->total_inflight && block_queue_poll(q, true) >= 0)
		;
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	if (q->worker_started)
		pthread_join(q->worker, NULL);
	if (q->have_ring)
		io_uring_queue_exit(&q->ring);
	close(q->efd);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	free(q);
}
