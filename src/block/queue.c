/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Asynchronous submission. Requests whose bytes map directly onto the image
 * file (all of raw; allocated clusters of qcow2, one extent per run of
 * clusters that follow each other in the file) go to io_uring and run in
 * parallel, straight from and into the caller's buffers or iovecs; such
 * writes through the page cache (no O_DIRECT, no FUA) are done right away
 * on the submitting thread instead.
 * Everything else (allocation, compressed or backing reads, flush, discard)
 * runs in one worker thread, in order, because format metadata needs
 * sequential handling. A slow request waits until no fast request is in
 * flight, so a cluster it frees can never be the target of a pending write,
 * and while one is queued no fast request starts, so the driver is never
 * entered by two threads. Completions are delivered by block_queue_poll; the
 * eventfd signals both io_uring and worker completions.
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
#include "core/iov.h"
#include "core/log.h"

#define MAX_PARTS 64                  /* file extents of one fast request */
#define FAST_MAX (1u << 30)           /* io_uring lengths are 32-bit */
#define BOUNCE_CHUNK (1u << 20)       /* slow-path scatter-gather bounce */
#define PART_TAG 1u                   /* user_data: a struct part, not a request */

struct block_queue {
	struct block_dev *bd;
	pthread_mutex_t lock;          /* the lists and counters below */
	pthread_cond_t cond;
	struct io_uring ring;
	bool have_ring, plugged, unsubmitted;
	int efd;
	pthread_t worker;
	bool worker_started, stop;
	uint8_t *bounce;               /* worker only */
	struct block_req *slow_head, *slow_tail;
	struct block_req *done_head, *done_tail;
	int fast_inflight, slow_pending;
	unsigned total_inflight;
};

/* One file extent of a fast request that spans several. */
struct part {
	struct block_req *req;
	uint64_t host;
	size_t len;
	void *buf;                     /* iovcnt == 0 */
	const struct iovec *iov;
	unsigned iovcnt;
};

struct extent {
	uint64_t guest, host;
	size_t len;
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

/* Slow path for a scatter-gather read or write: through a bounce buffer,
 * a chunk at a time, so a huge request needs no huge allocation. */
static int rw_iov(struct block_dev *bd, const struct block_req *r, uint8_t **bounce,
		  struct verr *err)
{
	bool write = r->op == BLOCK_OP_WRITE;
	size_t done = 0;

	if (!*bounce && !(*bounce = file_alloc(BOUNCE_CHUNK)))
		return verr_set(err, ENOMEM, "out of memory");
	while (done < r->len) {
		size_t n = r->len - done < BOUNCE_CHUNK ? r->len - done : BOUNCE_CHUNK;
		int ret;

		if (write) {
			iov_to_buf(r->iov, r->iovcnt, done, *bounce, n);
			ret = block_write(bd, r->offset + done, *bounce, n, err);
		} else {
			ret = block_read(bd, r->offset + done, *bounce, n, err);
			if (ret >= 0)
				iov_from_buf(r->iov, r->iovcnt, done, *bounce, n);
		}
		if (ret < 0)
			return ret;
		done += n;
	}
	return 0;
}

static int run_sync(struct block_dev *bd, struct block_req *r, uint8_t **bounce)
{
	struct verr err = {0};
	int ret;

	switch (r->op) {
	case BLOCK_OP_READ:
	case BLOCK_OP_WRITE:
		if (r->iov)
			ret = rw_iov(bd, r, bounce, &err);
		else if (r->op == BLOCK_OP_READ)
			ret = block_read(bd, r->offset, r->buf, r->len, &err);
		else
			ret = block_write(bd, r->offset, r->buf, r->len, &err);
		if (ret >= 0 && r->op == BLOCK_OP_WRITE && (r->flags & BLOCK_REQ_FUA))
			ret = block_flush(bd, &err);
		return ret < 0 ? ret : 0;
	case BLOCK_OP_FLUSH: return block_flush(bd, &err);
	case BLOCK_OP_DISCARD: return block_discard(bd, r->offset, r->len, &err);
	case BLOCK_OP_WRITE_ZEROES: return block_write_zeroes(bd, r->offset, r->len, &err);
	}
	return -EINVAL;
}

int block_req_run(struct block_dev *bd, struct block_req *req)
{
	uint8_t *bounce = NULL;

	req->ret = run_sync(bd, req, &bounce);
	free(bounce);
	return req->ret;
}

/* ---- the worker ---- */

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
		/* Unlocked: slow_pending stays above 0 until we are done, so
		 * no fast request enters the driver meanwhile. */
		pthread_mutex_unlock(&q->lock);
		r->ret = run_sync(q->bd, r, &q->bounce);
		pthread_mutex_lock(&q->lock);
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
		int e = errno;
		pthread_cond_destroy(&q->cond);
		pthread_mutex_destroy(&q->lock);
		free(q);
		return verr_set(err, e, "%s: eventfd failed", bd->filename);
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

/* ---- the io_uring fast path ---- */

static bool iov_aligned(const struct iovec *iov, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (((uintptr_t)iov[i].iov_base | iov[i].iov_len) & (FILE_DIRECT_ALIGN - 1))
			return false;
	return true;
}

/* Map [offset, offset+len) to file extents, merging runs that are
 * contiguous in the file. Returns how many, or 0 if any byte needs the
 * driver (unallocated, compressed, shared, ...) or there are too many. */
static unsigned map_extents(struct block_queue *q, const struct block_req *r, bool write,
			    struct extent *ext)
{
	struct block_dev *bd = q->bd;
	uint64_t off = r->offset, end = r->offset + r->len, g = block_granularity(bd);
	bool whole = true;             /* try the rest in one go first */
	unsigned n = 0;

	while (off < end) {
		uint64_t host, chunk = end - off;

		if (!whole || bd->drv->map_direct(bd, off, (size_t)chunk, write, &host)) {
			whole = false;
			if (g && chunk > g - off % g)
				chunk = g - off % g;
			if (bd->drv->map_direct(bd, off, (size_t)chunk, write, &host))
				return 0;
		}
		if (n && ext[n - 1].host + ext[n - 1].len == host) {
			ext[n - 1].len += (size_t)chunk;
		} else {
			if (n == MAX_PARTS)
				return 0;
			ext[n++] = (struct extent){ off, host, (size_t)chunk };
		}
		off += chunk;
	}
	return n;
}

static void prep_rw(struct block_queue *q, struct io_uring_sqe *sqe, bool write, uint64_t host,
		    void *buf, const struct iovec *iov, unsigned iovcnt, size_t len, unsigned flags)
{
	int fd = q->bd->fd;

	if (iov && write)
		io_uring_prep_writev(sqe, fd, iov, iovcnt, host);
	else if (iov)
		io_uring_prep_readv(sqe, fd, iov, iovcnt, host);
	else if (write)
		io_uring_prep_write(sqe, fd, buf, (unsigned)len, host);
	else
		io_uring_prep_read(sqe, fd, buf, (unsigned)len, host);
	if (write && (flags & BLOCK_REQ_FUA) && q->bd->cache != BLOCK_CACHE_UNSAFE)
		sqe->rw_flags = RWF_DSYNC;
}

static void ring_submit(struct block_queue *q)
{
	/* A failed submit leaves the entries queued; poll retries it. */
	q->unsubmitted = io_uring_submit(&q->ring) < 0;
}

/* Split a request over its extents: each part gets its slice of the buffer
 * or of the iovecs (a segment that straddles two extents is cut in two). */
static struct part *make_parts(struct block_req *r, const struct extent *ext, unsigned n)
{
	unsigned nio = r->iov ? r->iovcnt + n : 0, seg = 0;
	struct part *p = malloc(n * sizeof(*p) + nio * sizeof(struct iovec));
	struct iovec *io = (struct iovec *)(p + n);
	size_t skip = 0;               /* bytes of iov[seg] already used */

	if (!p)
		return NULL;
	for (unsigned i = 0; i < n; i++) {
		size_t want = ext[i].len;

		p[i] = (struct part){ .req = r, .host = ext[i].host, .len = ext[i].len };
		if (!r->iov) {
			p[i].buf = (uint8_t *)r->buf + (ext[i].guest - r->offset);
			continue;
		}
		p[i].iov = io;
		while (want && seg < r->iovcnt) {
			size_t l = r->iov[seg].iov_len - skip;

			if (l > want)
				l = want;
			if (l)
				io[p[i].iovcnt++] = (struct iovec){
					(uint8_t *)r->iov[seg].iov_base + skip, l };
			want -= l;
			skip += l;
			if (skip == r->iov[seg].iov_len) {
				seg++;
				skip = 0;
			}
		}
		io += p[i].iovcnt;
	}
	return p;
}

static bool direct_ok(const struct block_dev *bd, const struct block_req *r,
		      const struct extent *ext, unsigned n)
{
	if (!bd->direct)
		return true;
	if ((r->offset | r->len) & (FILE_DIRECT_ALIGN - 1))
		return false;
	if (r->iov ? !iov_aligned(r->iov, r->iovcnt)
		   : ((uintptr_t)r->buf & (FILE_DIRECT_ALIGN - 1)))
		return false;
	for (unsigned i = 0; i < n; i++)
		if ((ext[i].host | ext[i].len) & (FILE_DIRECT_ALIGN - 1))
			return false;
	return true;
}

/* A buffered write only copies into the page cache, and io_uring hands most
 * of them to a kernel worker thread (ext4 cannot do them without blocking):
 * writing at once on the submitting thread is quicker than two thread
 * switches per request. Bytes [skip, skip+len) of r's data go to host. */
static int write_now(struct block_queue *q, const struct block_req *r, size_t skip, size_t len,
		     uint64_t host)
{
	struct iovec one = { r->buf, r->len }, v[64];
	const struct iovec *iov = r->iov ? r->iov : &one;
	unsigned n = r->iov ? r->iovcnt : 1, seg = 0;

	while (seg < n && skip >= iov[seg].iov_len)
		skip -= iov[seg++].iov_len;
	while (len) {
		unsigned k = 0;
		size_t want = 0;
		ssize_t w;

		for (unsigned i = seg; i < n && k < 64 && want < len; i++) {
			size_t off = i == seg ? skip : 0, l = iov[i].iov_len - off;

			if (l > len - want)
				l = len - want;
			v[k++] = (struct iovec){ (uint8_t *)iov[i].iov_base + off, l };
			want += l;
		}
		w = pwritev(q->bd->fd, v, (int)k, (off_t)host);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? -errno : -EIO;
		len -= (size_t)w;
		host += (uint64_t)w;
		skip += (size_t)w;
		while (seg < n && skip >= iov[seg].iov_len)
			skip -= iov[seg++].iov_len;
	}
	return 0;
}

static void complete_now(struct block_queue *q, struct block_req *r, const struct extent *ext,
			 unsigned n)
{
	int ret = 0;

	for (unsigned i = 0; i < n && !ret; i++)
		ret = write_now(q, r, (size_t)(ext[i].guest - r->offset), ext[i].len, ext[i].host);
	r->ret = ret;
	r->parts = NULL;
	push(&q->done_head, &q->done_tail, r);
	/* Plugged callers poll after unplug; spare them the wakeup. */
	if (!q->plugged)
		signal_efd(q);
}

static bool try_fast(struct block_queue *q, struct block_req *r)
{
	struct block_dev *bd = q->bd;
	bool write = r->op == BLOCK_OP_WRITE;
	struct extent ext[MAX_PARTS];
	struct part *parts = NULL;
	unsigned n;

	if (!q->have_ring || q->slow_pending || (r->op != BLOCK_OP_READ && !write))
		return false;
	if (!r->len || r->len > FAST_MAX || r->offset > bd->size ||
	    r->len > bd->size - r->offset || (write && bd->read_only))
		return false;
	/* A mapping may still live only in the driver's metadata cache: the
	 * data alone on disk would not be durable (qcow2's new clusters). */
	if (write && (r->flags & BLOCK_REQ_FUA) && !bd->drv->direct_fua)
		return false;
	n = map_extents(q, r, write, ext);
	if (!n || !direct_ok(bd, r, ext, n))
		return false;
	if (write && !bd->direct && !(r->flags & BLOCK_REQ_FUA)) {
		complete_now(q, r, ext, n);
		return true;
	}
	if (io_uring_sq_space_left(&q->ring) < n) {
		ring_submit(q);
		if (io_uring_sq_space_left(&q->ring) < n)
			return false;
	}
	if (n > 1 && !(parts = make_parts(r, ext, n)))
		return false;
	r->parts = parts;
	r->parts_left = n;
	r->part_err = 0;
	r->host = ext[0].host;
	for (unsigned i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(&q->ring);

		if (parts) {
			prep_rw(q, sqe, write, parts[i].host, parts[i].buf, parts[i].iov,
				parts[i].iovcnt, parts[i].len, r->flags);
			io_uring_sqe_set_data(sqe, (void *)((uintptr_t)&parts[i] | PART_TAG));
		} else {
			prep_rw(q, sqe, write, r->host, r->buf, r->iov, r->iovcnt, r->len, r->flags);
			io_uring_sqe_set_data(sqe, r);
		}
	}
	if (!q->plugged)
		ring_submit(q);
	q->fast_inflight++;
	return true;
}

#define PROBE_SECTOR 512u

/* On a raw image whose format was probed, a write reaching into the first
 * sector must leave it looking raw. Guests write whole sectors, so a write
 * there that starts past 0 or is shorter than a sector is refused too. */
static bool first_sector_ok(struct block_dev *bd, const struct block_req *r)
{
	uint8_t sector[PROBE_SECTOR];
	const char *fmt = "a partial sector";

	if (!bd->probed_raw || r->op != BLOCK_OP_WRITE || r->offset >= PROBE_SECTOR)
		return true;
	if (r->offset == 0 && r->len >= PROBE_SECTOR) {
		if (r->iov)
			iov_to_buf(r->iov, r->iovcnt, 0, sector, PROBE_SECTOR);
		else
			memcpy(sector, r->buf, PROBE_SECTOR);
		fmt = block_probe(sector, PROBE_SECTOR);
		if (!strcmp(fmt, "raw"))
			return true;
	}
	if (!bd->probe_refusals++)
		log_warn(bd->filename, "refused a write that would make sector 0 of this probed "
			 "raw image look like %s; give its format (format=raw) to allow it", fmt);
	return false;
}

int block_submit(struct block_queue *q, struct block_req *req)
{
	pthread_mutex_lock(&q->lock);
	q->total_inflight++;
	if (!first_sector_ok(q->bd, req)) {
		req->ret = -EPERM;
		req->parts = NULL;
		push(&q->done_head, &q->done_tail, req);
		if (!q->plugged)
			signal_efd(q);
	} else if (!try_fast(q, req)) {
		req->parts = NULL;
		q->slow_pending++;
		push(&q->slow_head, &q->slow_tail, req);
		pthread_cond_broadcast(&q->cond);
	}
	pthread_mutex_unlock(&q->lock);
	return 0;
}

void block_queue_plug(struct block_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->plugged = true;
	pthread_mutex_unlock(&q->lock);
}

void block_queue_unplug(struct block_queue *q)
{
	pthread_mutex_lock(&q->lock);
	q->plugged = false;
	if (q->have_ring && io_uring_sq_ready(&q->ring))
		ring_submit(q);
	pthread_mutex_unlock(&q->lock);
}

/* Finish a short or interrupted transfer of one extent synchronously:
 * rare (end of file, signals), so simplicity wins. */
static int finish_part(struct block_queue *q, bool write, unsigned flags, uint64_t host,
		       void *buf, const struct iovec *iov, unsigned iovcnt, size_t len, size_t done)
{
	struct block_dev *bd = q->bd;
	struct verr err = {0};
	int r = 0;

	if (!iov) {
		struct iovec one = { buf, len };
		return finish_part(q, write, flags, host, NULL, &one, 1, len, done);
	}
	for (unsigned i = 0; i < iovcnt && r == 0; i++) {
		size_t l = iov[i].iov_len;
		uint8_t *p = iov[i].iov_base;

		if (done >= l) {
			done -= l;
			host += l;
			continue;
		}
		p += done;
		host += done;
		l -= done;
		done = 0;
		r = write ? file_pwrite(bd, host, p, l, &err) : file_pread(bd, host, p, l, &err);
		host += l;
	}
	if (r == 0 && write && (flags & BLOCK_REQ_FUA))
		r = file_sync(bd, &err);
	return r;
}

static int part_result(struct block_queue *q, struct block_req *r, const struct part *p, int res)
{
	bool write = r->op == BLOCK_OP_WRITE;
	size_t len = p ? p->len : r->len;

	if (res == -EAGAIN || res == -EINTR)
		res = 0;                   /* redo it all synchronously */
	if (res < 0 || (size_t)res >= len)
		return res < 0 ? res : 0;
	if (p)
		return finish_part(q, write, r->flags, p->host, p->buf, p->iov, p->iovcnt, len,
				   (size_t)res);
	return finish_part(q, write, r->flags, r->host, r->buf, r->iov, r->iovcnt, len,
			   (size_t)res);
}

/* Reap io_uring completions (lock held). */
static void reap_ring(struct block_queue *q)
{
	struct io_uring_cqe *cqe;

	if (q->have_ring && q->unsubmitted)
		ring_submit(q);
	while (q->have_ring && io_uring_peek_cqe(&q->ring, &cqe) == 0) {
		uintptr_t data = (uintptr_t)io_uring_cqe_get_data(cqe);
		struct part *p = data & PART_TAG ? (struct part *)(data & ~(uintptr_t)PART_TAG) : NULL;
		struct block_req *r = p ? p->req : (struct block_req *)data;
		int res = cqe->res;

		io_uring_cqe_seen(&q->ring, cqe);
		res = part_result(q, r, p, res);
		if (res < 0 && !r->part_err)
			r->part_err = res;
		if (--r->parts_left)
			continue;
		free(r->parts);
		r->parts = NULL;
		r->ret = r->part_err;
		q->fast_inflight--;
		push(&q->done_head, &q->done_tail, r);
	}
	if (!q->fast_inflight && q->slow_head)
		pthread_cond_broadcast(&q->cond);
}

int block_queue_poll(struct block_queue *q, bool wait)
{
	for (;;) {
		struct block_req *done;
		unsigned n = 0, left;

		/* Every completion writes the eventfd, which wakes an epoll
		 * watcher (edge-triggered) whatever the counter holds, so only
		 * a caller about to sleep on it needs it drained: first, so a
		 * completion racing with the reap below still wakes it. */
		if (wait) {
			uint64_t v;
			ssize_t rd = read(q->efd, &v, sizeof(v));
			(void)rd;
		}
		pthread_mutex_lock(&q->lock);
		reap_ring(q);
		done = q->done_head;
		q->done_head = q->done_tail = NULL;
		for (struct block_req *r = done; r; r = r->next)
			n++;
		q->total_inflight -= n;
		left = q->total_inflight;
		pthread_mutex_unlock(&q->lock);
		for (struct block_req *r = done, *next; r; r = next) {
			next = r->next;        /* the callback may resubmit r */
			if (r->cb)
				r->cb(r, r->opaque);
		}
		if (n || !wait || !left)
			return (int)n;
		/* Sleep until io_uring or the worker signals the eventfd; the
		 * timeout only guards against a lost wakeup. */
		struct pollfd pfd = { .fd = q->efd, .events = POLLIN };
		poll(&pfd, 1, 100);
	}
}

unsigned block_queue_inflight(struct block_queue *q)
{
	unsigned n;

	pthread_mutex_lock(&q->lock);
	n = q->total_inflight;
	pthread_mutex_unlock(&q->lock);
	return n;
}

void block_queue_free(struct block_queue *q)
{
	if (!q)
		return;
	while (block_queue_inflight(q))
		block_queue_poll(q, true);
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_broadcast(&q->cond);
	pthread_mutex_unlock(&q->lock);
	if (q->worker_started)
		pthread_join(q->worker, NULL);
	if (q->have_ring)
		io_uring_queue_exit(&q->ring);
	close(q->efd);
	free(q->bounce);
	pthread_cond_destroy(&q->cond);
	pthread_mutex_destroy(&q->lock);
	free(q);
}
