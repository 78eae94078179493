/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The transport-independent virtio device: what virtio-pci (vireo run) and
 * the vhost-user server both drive. A device model (blk, net, rng, console)
 * fills a virtio_dev_ops table and embeds struct virtio_dev; the transport
 * only calls the virtio_dev_* functions below.
 *
 * Threads: every device owns one I/O thread that waits (epoll) on the kick
 * eventfd of each started queue and on the device's own fds (tap, console
 * input); queue processing never runs on a vCPU or transport thread. The
 * I/O thread holds the device lock while it processes, and the transport
 * calls below take the same lock, so a queue is never reconfigured while a
 * request on it is being walked.
 *
 * Lifecycle (virtio 1.2, 3.1): create -> [config_read/write any time] ->
 * activate(negotiated features, memory) at DRIVER_OK -> queue_start per
 * queue -> ... -> queue_stop / reset. A malformed queue makes the device
 * "need reset": it stops processing, logs one line, and calls the
 * transport's config callback so it can set DEVICE_NEEDS_RESET in the
 * status and raise a configuration change interrupt. The VMM carries on.
 */
#ifndef VIREO_VIRTIO_DEVICE_H
#define VIREO_VIRTIO_DEVICE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"
#include "virtio/virtq.h"

#define VIRTIO_MAX_QUEUES 64
#define VIRTIO_MAX_WATCHES 8

/* Device IDs (virtio 1.2, 5). */
enum virtio_id {
	VIRTIO_ID_NET = 1,
	VIRTIO_ID_BLOCK = 2,
	VIRTIO_ID_CONSOLE = 3,
	VIRTIO_ID_RNG = 4,
	VIRTIO_ID_VSOCK = 19,
};

struct virtio_dev;

/* Everything a transport knows about one queue when the driver enables it. */
struct virtio_queue_setup {
	uint16_t size;                 /* negotiated size, power of 2, <= queue_max_size */
	uint64_t desc, avail, used;    /* guest-physical ring addresses */
	uint16_t base;                 /* first available index (0 after a reset) */
	/* Eventfd the transport signals on a driver notification (KVM
	 * ioeventfd or vhost-user kick); -1: the device makes one and the
	 * transport calls virtio_dev_kick(). The device does not close it. */
	int kick_fd;
	/* Used-buffer notification (interrupt) for this queue; called from the
	 * I/O thread with the device lock held: it must not call back into
	 * the device. */
	void (*notify)(void *opaque, unsigned queue);
	void *notify_opaque;
};

struct virtio_dev_ops {
	const char *name;              /* "virtio-blk" */
	enum virtio_id device_id;
	/* Device-specific feature bits offered (the generic layer adds
	 * VERSION_1, INDIRECT_DESC and EVENT_IDX). */
	uint64_t (*features)(struct virtio_dev *d);
	/* Bytes of device-specific configuration space. */
	size_t config_size;
	/* Copy config bytes [off, off+len) (already bounds-checked). */
	void (*config_read)(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len);
	/* Optional: the driver wrote config bytes (already bounds-checked). */
	void (*config_write)(struct virtio_dev *d, uint32_t off, const void *buf, uint32_t len);
	/* Optional: the features are final (d->features); prepare backends
	 * (tap offloads). Called before any queue starts. */
	int (*activate)(struct virtio_dev *d, struct verr *err);
	/* Serve queue q after a kick (or after it starts): pop, complete, push,
	 * notify. <0 with *err means the queue is malformed: needs reset. */
	int (*process)(struct virtio_dev *d, unsigned q, struct verr *err);
	/* Optional, for models that complete requests asynchronously: queue q
	 * is being stopped (reset, snapshot, vhost-user GET_VRING_BASE); wait
	 * until none of its requests is in flight and push their completions,
	 * so the used ring accounts for every chain popped. Called with the
	 * device lock held, before the queue stops. */
	void (*quiesce)(struct virtio_dev *d, unsigned q);
	/* Optional: back to the power-on state; all queues are stopped. */
	void (*reset)(struct virtio_dev *d);
	/* Optional: a queue was started or stopped (device lock held). */
	void (*queues_changed)(struct virtio_dev *d);
	/* Optional: device-specific state for snapshots, as an opaque blob
	 * (save with buf NULL returns the size needed). */
	int (*save)(struct virtio_dev *d, void *buf, size_t len, struct verr *err);
	int (*restore)(struct virtio_dev *d, const void *buf, size_t len, struct verr *err);
	/* Optional: the device was just restored from a snapshot into a new
	 * process and its queues run again (virtio-pci restore calls it when
	 * the driver had the device running); tell the driver what did not
	 * survive (vsock: host connections). Called with the device lock held. */
	void (*restored)(struct virtio_dev *d);
	/* Free the model's resources (the generic part is freed after). */
	void (*destroy)(struct virtio_dev *d);
	/* Optional: the I/O thread may poll its fds for up to this long before
	 * sleeping, adapting to how soon events arrive (0: never poll). */
	unsigned poll_max_us;
};

struct virtio_queue {
	struct virtq vq;
	bool started;
	int kick_fd;
	bool own_kick;                 /* kick_fd created by us */
	void (*notify)(void *opaque, unsigned queue);
	void *notify_opaque;
};

struct virtio_watch {
	int fd;
	void (*cb)(struct virtio_dev *d, void *arg);
	void *arg;
};

/* The generic part of every device. Models embed it as their first member
 * and fill it with virtio_dev_init(); transports treat it as opaque. */
struct virtio_dev {
	const struct virtio_dev_ops *ops;
	char name[48];                 /* log context, e.g. "virtio-blk:disk.img" */
	unsigned nqueues;
	uint16_t queue_max_size;
	uint64_t features;             /* negotiated, valid after activate */
	bool active;
	bool needs_reset;
	unsigned fails;                /* needs-reset events logged as errors */
	struct virtq_mem mem;
	struct virtio_queue q[VIRTIO_MAX_QUEUES];
	struct virtio_watch watch[VIRTIO_MAX_WATCHES];
	unsigned nwatch;
	void (*config_changed)(void *opaque);
	void *config_opaque;
	pthread_mutex_t lock;
	pthread_t thread;
	bool thread_started, stop;
	int epfd, wakefd;
	/* Adaptive polling state, I/O thread only (see poll_max_us). */
	bool polling;
	unsigned poll_quick, poll_need;
	struct virtq_chain *chain;     /* scratch for process(), I/O thread only */
};

/* ---- transport API ---- */

/* Features the device offers (device bits + the generic ones). */
uint64_t virtio_dev_features(struct virtio_dev *d);
enum virtio_id virtio_dev_id(const struct virtio_dev *d);
unsigned virtio_dev_num_queues(const struct virtio_dev *d);
uint16_t virtio_dev_queue_max_size(const struct virtio_dev *d);
size_t virtio_dev_config_size(const struct virtio_dev *d);
/* Out-of-range bytes read as 0 / writes are ignored (never an error). */
void virtio_dev_config_read(struct virtio_dev *d, uint32_t off, void *buf, uint32_t len);
void virtio_dev_config_write(struct virtio_dev *d, uint32_t off, const void *buf, uint32_t len);

/* FEATURES_OK/DRIVER_OK: fix the features (must be a subset of the offer,
 * else -EINVAL) and the guest memory translation. config_changed is called
 * (I/O thread, lock held) when the device needs reset or its config
 * changes; the transport then raises a configuration change interrupt. */
int virtio_dev_activate(struct virtio_dev *d, uint64_t features, const struct virtq_mem *mem,
			void (*config_changed)(void *opaque), void *opaque, struct verr *err);
/* Start serving queue q; pending buffers are processed at once. */
int virtio_dev_queue_start(struct virtio_dev *d, unsigned q, const struct virtio_queue_setup *s,
			   struct verr *err);
/* Stop serving queue q (waits for a walk in progress and for the requests
 * in flight, whose completions are pushed first) and return the next
 * available index to consume (vhost-user GET_VRING_BASE). */
uint16_t virtio_dev_queue_stop(struct virtio_dev *d, unsigned q);
/* Driver notification for a queue started with kick_fd -1. Callable from
 * any thread (a vCPU's MMIO exit), but not concurrently with stopping or
 * resetting that queue: the transport serialises those. */
void virtio_dev_kick(struct virtio_dev *d, unsigned q);
/* Device reset (status 0): stops every queue, forgets the features, clears
 * needs-reset, and resets the model. */
void virtio_dev_reset(struct virtio_dev *d);
bool virtio_dev_needs_reset(struct virtio_dev *d);
/* Snapshot hooks: the model's blob (-ENOTSUP when it has none). */
int virtio_dev_save(struct virtio_dev *d, void *buf, size_t len, struct verr *err);
int virtio_dev_restore(struct virtio_dev *d, const void *buf, size_t len, struct verr *err);
/* After a restore: run the model's restored hook, if it has one. */
void virtio_dev_restored(struct virtio_dev *d);
/* Stop the I/O thread and free the device. */
void virtio_dev_destroy(struct virtio_dev *d);

/* ---- for device models ---- */

int virtio_dev_init(struct virtio_dev *d, const struct virtio_dev_ops *ops, const char *name,
		    unsigned nqueues, uint16_t queue_max_size, struct verr *err);
/* Call cb(d, arg) from the I/O thread (lock held) when fd is readable
 * (edge-triggered: cb must drain fd or remember that it stopped early). */
int virtio_dev_watch_fd(struct virtio_dev *d, int fd, void (*cb)(struct virtio_dev *d, void *arg),
			void *arg, struct verr *err);
/* Whether queue q is started (and the device not broken). */
bool virtio_dev_queue_ready(struct virtio_dev *d, unsigned q);
/* After pushing a batch on q: interrupt the driver if it asked for one. */
void virtio_dev_notify(struct virtio_dev *d, unsigned q);
/* Mark the device broken: one log line, needs-reset, config callback. */
void virtio_dev_fail(struct virtio_dev *d, unsigned q, const struct verr *err);
/* Handle one popped chain: set *used_len to the bytes written into its
 * device-writable part; <0 with *err when the chain is malformed. */
typedef int (*virtio_chain_fn)(struct virtio_dev *d, unsigned q, struct virtq_chain *c,
			       uint32_t *used_len, struct verr *err);
/* The usual process(): pop every available chain of q through fn, push,
 * then notify once. Serves at most one queue's worth per call, then
 * re-kicks itself so one busy queue cannot starve the others. */
int virtio_dev_serve(struct virtio_dev *d, unsigned q, virtio_chain_fn fn, struct verr *err);
/* Run process() on queue q as a kick would (for use inside the I/O thread,
 * or by tests without a thread). */
int virtio_dev_process(struct virtio_dev *d, unsigned q);

#endif
