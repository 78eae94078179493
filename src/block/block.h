/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The block layer: one driver interface for every image format (raw, qcow2,
 * vmdk). A struct block_dev is one open image; its driver is a const ops
 * table. The synchronous calls are the primary API; block_queue (below) adds
 * asynchronous submission with completion callbacks and an eventfd.
 *
 * Every call follows core/err.h: 0 (or a count) on success, -errno on failure
 * with a message in *err naming the file and the field or offset at fault.
 */
#ifndef VIREO_BLOCK_BLOCK_H
#define VIREO_BLOCK_BLOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "core/err.h"

#define BLOCK_MAX_BACKING_DEPTH 64
#define BLOCK_PATH_MAX 4096
#define BLOCK_FMT_MAX 32

enum block_cache { BLOCK_CACHE_WRITEBACK = 0, BLOCK_CACHE_NONE, BLOCK_CACHE_UNSAFE };

struct block_dev;
struct block_driver;

/* The chain of images already open above this one, to refuse backing loops. */
struct block_chain {
	int n;
	dev_t dev[BLOCK_MAX_BACKING_DEPTH + 1];
	ino_t ino[BLOCK_MAX_BACKING_DEPTH + 1];
	const char *name[BLOCK_MAX_BACKING_DEPTH + 1];
};

struct block_open_opts {
	const char *format;        /* NULL: probe the file's contents */
	bool read_write;
	enum block_cache cache;
	bool no_backing;           /* don't open the backing file (info, rebase -u) */
	size_t l2_cache_bytes;     /* qcow2 metadata cache size; 0 = default */
	const struct block_chain *chain; /* internal: images above this one */
};

/* Status of a range as block_status reports it. */
enum {
	BLOCK_STATUS_DATA = 1u << 0,      /* reads come from a data area */
	BLOCK_STATUS_ZERO = 1u << 1,      /* reads return zeros */
	BLOCK_STATUS_ALLOCATED = 1u << 2, /* defined in this layer (not backing) */
	BLOCK_STATUS_OFFSET = 1u << 3,    /* host offset below is valid */
	BLOCK_STATUS_COMPRESSED = 1u << 4,
};

struct block_status {
	uint64_t length;      /* bytes from the queried offset with this status */
	unsigned flags;
	uint64_t offset;      /* host offset in this layer's file, if OFFSET */
	int depth;            /* 0 = this image, 1 = its backing file, ... */
};

struct block_snapshot_info {
	char id[64];
	char name[256];
	uint64_t vm_state_size;
	uint32_t date_sec, date_nsec;
	uint64_t vm_clock_nsec;
	uint64_t disk_size;
	uint64_t icount;       /* UINT64_MAX if absent */
};

struct block_info {
	uint64_t virtual_size;
	const char *format;
	uint32_t cluster_size;    /* 0 if not applicable */
	char backing_file[BLOCK_PATH_MAX];
	char backing_format[BLOCK_FMT_MAX];
	bool dirty;
	/* qcow2 */
	int qcow2_version;
	const char *compression_type;
	bool lazy_refcounts;
	int refcount_bits;
	bool corrupt;
	bool extended_l2;
	/* vmdk */
	char vmdk_create_type[64];
	uint32_t vmdk_cid, vmdk_parent_cid;
};

struct block_check {
	int64_t corruptions, leaks, check_errors;
	int64_t corruptions_fixed, leaks_fixed;
	uint64_t image_end_offset;
	uint64_t total_clusters, allocated_clusters, fragmented_clusters, compressed_clusters;
};

enum block_fix { BLOCK_FIX_NONE = 0, BLOCK_FIX_LEAKS = 1, BLOCK_FIX_ERRORS = 2 };

/* Options for creating an image; unset fields take each format's default. */
struct block_create_opts {
	uint64_t size;
	uint32_t cluster_size;
	const char *backing_file;
	const char *backing_format;
	const char *compression_type; /* "zlib" | "zstd" */
	const char *preallocation;    /* off|metadata|falloc|full */
	bool lazy_refcounts;
	int compat;                   /* 2 (0.10) or 3 (1.1) */
	int refcount_bits;
	bool extended_l2;
	const char *subformat;        /* vmdk */
};

/* One image format. Optional operations may be NULL: the generic layer then
 * reports -ENOTSUP with a message naming the format. */
struct block_driver {
	const char *name;
	/* Score how likely buf (the file's first bytes) is this format. */
	int (*probe)(const uint8_t *buf, size_t len);
	int (*create)(const char *path, const struct block_create_opts *o, struct verr *err);
	int (*open)(struct block_dev *bd, const struct block_open_opts *o, struct verr *err);
	void (*close)(struct block_dev *bd);
	int (*read)(struct block_dev *bd, uint64_t off, void *buf, size_t len, struct verr *err);
	int (*write)(struct block_dev *bd, uint64_t off, const void *buf, size_t len, struct verr *err);
	int (*write_compressed)(struct block_dev *bd, uint64_t off, const void *buf, size_t len,
				struct verr *err);
	int (*flush)(struct block_dev *bd, struct verr *err);
	int (*discard)(struct block_dev *bd, uint64_t off, uint64_t len, struct verr *err);
	int (*write_zeroes)(struct block_dev *bd, uint64_t off, uint64_t len, struct verr *err);
	int (*block_status)(struct block_dev *bd, uint64_t off, uint64_t len,
			    struct block_status *st, struct verr *err);
	int (*resize)(struct block_dev *bd, uint64_t size, bool shrink, struct verr *err);
	int (*get_info)(struct block_dev *bd, struct block_info *info, struct verr *err);
	int (*check)(struct block_dev *bd, enum block_fix fix, struct block_check *res,
		     struct verr *err);
	int (*snapshot_list)(struct block_dev *bd, struct block_snapshot_info **list, int *n,
			     struct verr *err);
	int (*snapshot_create)(struct block_dev *bd, const char *name, struct verr *err);
	int (*snapshot_apply)(struct block_dev *bd, const char *name, struct verr *err);
	int (*snapshot_delete)(struct block_dev *bd, const char *name, struct verr *err);
	/* Point the image at a new backing file (header only). */
	int (*set_backing)(struct block_dev *bd, const char *file, const char *fmt,
			   struct verr *err);
	int (*amend)(struct block_dev *bd, const struct block_create_opts *o, const char *keys,
		     struct verr *err);
	/* For the asynchronous fast path: if [off, off+len) maps to contiguous
	 * bytes of bd->fd that can be read (or overwritten in place) without any
	 * metadata change, set *host and return 0; otherwise -EAGAIN. */
	int (*map_direct)(struct block_dev *bd, uint64_t off, size_t len, bool write,
			  uint64_t *host);
	/* map_direct's mappings never depend on metadata still to be written
	 * (raw): a FUA write through them is durable once the data is. Else a
	 * FUA write takes the slow path, which flushes the metadata too. */
	bool direct_fua;
	/* Bytes of data a guest write is rounded to for best results (cluster). */
	uint32_t (*granularity)(struct block_dev *bd);
};

/* An open image. drv and opaque belong to the driver; the rest is common. */
struct block_dev {
	const struct block_driver *drv;
	char filename[BLOCK_PATH_MAX];
	int fd;
	bool read_only;
	bool direct;              /* opened with O_DIRECT */
	enum block_cache cache;
	uint64_t size;            /* virtual size in bytes */
	/* The format was probed and found raw: a guest write that would make
	 * the first sector probe as another format is refused (block_submit),
	 * or the guest could plant, say, a qcow2 header naming a host file as
	 * its backing file and read that file after the next probe. */
	bool probed_raw;
	unsigned probe_refusals;  /* writes refused for it (the first is logged) */
	struct block_dev *backing;
	void *opaque;
};

/* Open path (format probed when o->format is NULL). */
int block_open(const char *path, const struct block_open_opts *o, struct block_dev **out,
	       struct verr *err);
void block_close(struct block_dev *bd);
int block_create(const char *fmt, const char *path, const struct block_create_opts *o,
		 struct verr *err);
const struct block_driver *block_find_driver(const char *name);
/* Best-guess format name of a file's contents ("raw" when nothing matches). */
const char *block_probe(const uint8_t *buf, size_t len);

int block_read(struct block_dev *bd, uint64_t off, void *buf, size_t len, struct verr *err);
int block_write(struct block_dev *bd, uint64_t off, const void *buf, size_t len, struct verr *err);
int block_write_compressed(struct block_dev *bd, uint64_t off, const void *buf, size_t len,
			   struct verr *err);
int block_flush(struct block_dev *bd, struct verr *err);
int block_discard(struct block_dev *bd, uint64_t off, uint64_t len, struct verr *err);
int block_write_zeroes(struct block_dev *bd, uint64_t off, uint64_t len, struct verr *err);
/* Status of [off, off+len): fills st for the leading run (st->length > 0). */
int block_status(struct block_dev *bd, uint64_t off, uint64_t len, struct block_status *st,
		 struct verr *err);
/* As block_status, but follows unallocated ranges down the backing chain. */
int block_status_chain(struct block_dev *bd, uint64_t off, uint64_t len,
		       struct block_status *st, struct verr *err);
int block_resize(struct block_dev *bd, uint64_t size, bool shrink, struct verr *err);
int block_get_info(struct block_dev *bd, struct block_info *info, struct verr *err);
int block_check(struct block_dev *bd, enum block_fix fix, struct block_check *res,
		struct verr *err);
uint32_t block_granularity(struct block_dev *bd);

/* Open bd's backing file `name` (relative to bd's directory), format fmt
 * (NULL: probe), refusing loops and chains deeper than BLOCK_MAX_BACKING_DEPTH. */
int block_open_backing(struct block_dev *bd, const char *name, const char *fmt,
		       const struct block_open_opts *o, struct verr *err);
/* Resolve a backing file name relative to the image that names it. */
void block_backing_path(const char *image, const char *backing, char *out, size_t outlen);

/* Asynchronous submission. A queue owns a worker thread (and an io_uring
 * when the driver has map_direct) and keeps up to `depth` requests in
 * flight; completions are collected with block_queue_poll, which runs each
 * req->cb, from the thread watching block_queue_eventfd. One thread submits
 * and polls; the queue must be the only user of the image meanwhile.
 *
 * Ordering: requests that map straight onto the file run in parallel and
 * complete in any order. Any other request (allocation, flush, discard, ...)
 * starts only after every request submitted before it has completed, and
 * later ones wait for it; so a FLUSH covers every write submitted before it. */
enum block_op { BLOCK_OP_READ, BLOCK_OP_WRITE, BLOCK_OP_FLUSH, BLOCK_OP_DISCARD,
		BLOCK_OP_WRITE_ZEROES };

/* req->flags */
#define BLOCK_REQ_FUA 1u           /* a write completes only once it is durable */

struct block_req {
	enum block_op op;
	uint64_t offset;
	void *buf;
	size_t len;
	int ret;                   /* 0 or -errno, set on completion */
	void (*cb)(struct block_req *req, void *opaque);
	void *opaque;
	struct block_req *next;    /* internal */
	/* Scatter-gather: when iov is set, the data is iov[0..iovcnt) (len
	 * bytes in all) and buf is unused. The array and the memory it points
	 * to must stay valid until the request completes. */
	const struct iovec *iov;
	unsigned iovcnt;
	unsigned flags;            /* BLOCK_REQ_* */
	/* internal: the fast path's file extents */
	uint64_t host;
	unsigned parts_left;
	int part_err;
	void *parts;
};

struct block_queue;
int block_queue_new(struct block_dev *bd, int depth, struct block_queue **out, struct verr *err);
/* Queue a request; it completes later (req->cb, via block_queue_poll). */
int block_submit(struct block_queue *q, struct block_req *req);
/* Between plug and unplug, fast requests are only queued; unplug hands the
 * batch to the kernel in one system call. A request may also complete
 * inside block_submit (a write through the page cache); while plugged, the
 * eventfd is not written for those: poll after unplug. */
void block_queue_plug(struct block_queue *q);
void block_queue_unplug(struct block_queue *q);
/* An eventfd written on every completion: watch it edge-triggered (it is
 * drained only by block_queue_poll with wait set). */
int block_queue_eventfd(struct block_queue *q);
/* Run the callbacks of completed requests; returns how many completed. If
 * wait is true, blocks until at least one completes (or none is in flight).
 * Callbacks may submit new requests. */
int block_queue_poll(struct block_queue *q, bool wait);
/* Requests submitted and not yet returned by block_queue_poll. */
unsigned block_queue_inflight(struct block_queue *q);
/* Waits for every request in flight, then frees the queue. */
void block_queue_free(struct block_queue *q);
/* Run one request synchronously on the calling thread (no queue, no cb):
 * the same semantics as block_submit, for callers without a queue. Returns
 * req->ret. Not while a queue on bd has requests in flight. */
int block_req_run(struct block_dev *bd, struct block_req *req);

#endif
