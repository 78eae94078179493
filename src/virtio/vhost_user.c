/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vhost-user back end. One connection at a time, served from the calling
 * thread; the device's own I/O thread does the queue work. Rings arrive as
 * front-end virtual addresses and are turned into guest-physical ones
 * through the memory table, so the device sees one kind of address.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "core/unix_sock.h"
#include "virtio/vhost_user.h"

enum {
	VU_GET_FEATURES = 1,
	VU_SET_FEATURES = 2,
	VU_SET_OWNER = 3,
	VU_RESET_OWNER = 4,
	VU_SET_MEM_TABLE = 5,
	VU_SET_LOG_BASE = 6,
	VU_SET_LOG_FD = 7,
	VU_SET_VRING_NUM = 8,
	VU_SET_VRING_ADDR = 9,
	VU_SET_VRING_BASE = 10,
	VU_GET_VRING_BASE = 11,
	VU_SET_VRING_KICK = 12,
	VU_SET_VRING_CALL = 13,
	VU_SET_VRING_ERR = 14,
	VU_GET_PROTOCOL_FEATURES = 15,
	VU_SET_PROTOCOL_FEATURES = 16,
	VU_GET_QUEUE_NUM = 17,
	VU_SET_VRING_ENABLE = 18,
	VU_GET_CONFIG = 24,
	VU_SET_CONFIG = 25,
	VU_RESET_DEVICE = 34,
};

#define VU_F_PROTOCOL_FEATURES 30
#define VU_PF_MQ 0
#define VU_PF_REPLY_ACK 3
#define VU_PF_CONFIG 9
#define VU_PF_RESET_DEVICE 13
#define VU_PROTOCOL_FEATURES ((1ull << VU_PF_MQ) | (1ull << VU_PF_REPLY_ACK) | \
			      (1ull << VU_PF_CONFIG) | (1ull << VU_PF_RESET_DEVICE))

#define VU_VERSION 1u
#define VU_FLAG_REPLY (1u << 2)
#define VU_FLAG_NEED_REPLY (1u << 3)
#define VU_VRING_IDX_MASK 0xffu
#define VU_VRING_NOFD (1u << 8)
#define VU_MAX_FDS 8
#define VU_MAX_CONFIG 256
#define VU_MAX_PAYLOAD 512
#define VU_IO_TIMEOUT_S 5          /* a message must arrive whole within this */

struct vu_hdr {
	uint32_t request;
	uint32_t flags;
	uint32_t size;
};

struct vu_region_desc {
	uint64_t gpa;
	uint64_t size;
	uint64_t uaddr;
	uint64_t mmap_offset;
};

struct vu_vring_state {
	uint32_t index;
	uint32_t num;
};

struct vu_vring_addr {
	uint32_t index;
	uint32_t flags;
	uint64_t desc;
	uint64_t used;
	uint64_t avail;
	uint64_t log;
};

struct vu_config {
	uint32_t offset;
	uint32_t size;
	uint32_t flags;
	uint8_t data[VU_MAX_CONFIG];
};

struct vu_msg {
	struct vu_hdr hdr;
	union {
		uint64_t u64;
		struct vu_vring_state state;
		struct vu_vring_addr addr;
		struct vu_config config;
		uint8_t bytes[VU_MAX_PAYLOAD];
	};
	int fds[VU_MAX_FDS];
	unsigned nfds;
};

struct vu_region {
	uint64_t gpa, size, uaddr;
	uint8_t *map;          /* the whole mmap, from file offset 0 */
	size_t map_len;
	uint8_t *hva;          /* map + mmap_offset */
};

struct vu_vring {
	struct vhost_user_server *s;
	unsigned index;
	uint16_t num;
	uint64_t desc, used, avail;   /* front-end virtual addresses */
	uint16_t base;
	int kick_fd, call_fd, err_fd;
	bool enabled, running;
};

struct vhost_user_server {
	struct virtio_dev *dev;
	char path[108];
	int listen_fd;
	int conn_fd;
	uint64_t features;          /* as set by SET_FEATURES, with bit 30 */
	uint64_t protocol_features;
	unsigned nregions;
	struct vu_region regions[VHOST_USER_MAX_REGIONS];
	struct vu_vring vrings[VIRTIO_MAX_QUEUES];
};

static void *vu_gpa_to_hva(void *ctx, uint64_t gpa, uint64_t len)
{
	struct vhost_user_server *s = ctx;

	for (unsigned i = 0; i < s->nregions; i++) {
		struct vu_region *r = &s->regions[i];

		if (gpa >= r->gpa && gpa - r->gpa < r->size && len <= r->size - (gpa - r->gpa))
			return r->hva + (gpa - r->gpa);
	}
	return NULL;
}

/* Front-end virtual address to guest-physical, for the ring addresses. */
static int vu_uaddr_to_gpa(struct vhost_user_server *s, uint64_t ua, uint64_t *gpa)
{
	for (unsigned i = 0; i < s->nregions; i++) {
		struct vu_region *r = &s->regions[i];

		if (ua >= r->uaddr && ua - r->uaddr < r->size) {
			*gpa = r->gpa + (ua - r->uaddr);
			return 0;
		}
	}
	return -EINVAL;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void vu_notify(void *opaque, unsigned q)
{
	struct vu_vring *vr = opaque;
	uint64_t one = 1;

	if (vr->call_fd >= 0 && write(vr->call_fd, &one, sizeof(one)) < 0)
		log_debug(vr->s->dev->name, "call fd of queue %u: %s", q, strerror(errno));
}

static void vu_config_changed(void *opaque)
{
	struct vhost_user_server *s = opaque;

	/* vhost-user has no config interrupt without a back-end channel: the
	 * error eventfd is the spec's way to say a ring went bad. */
	for (unsigned q = 0; q < s->dev->nqueues; q++) {
		uint64_t one = 1;

		if (s->vrings[q].err_fd >= 0 && write(s->vrings[q].err_fd, &one, 8) < 0)
			log_debug(s->dev->name, "err fd of queue %u: %s", q, strerror(errno));
	}
}

static void vu_vring_stop(struct vhost_user_server *s, struct vu_vring *vr)
{
	if (!vr->running)
		return;
	vr->base = virtio_dev_queue_stop(s->dev, vr->index);
	vr->running = false;
}

static bool vu_any_running(struct vhost_user_server *s)
{
	for (unsigned q = 0; q < s->dev->nqueues; q++)
		if (s->vrings[q].running)
			return true;
	return false;
}

/* A ring runs once it has a kick fd and is enabled (vhost-user.rst,
 * "Starting and stopping rings"). */
static int vu_vring_try_start(struct vhost_user_server *s, struct vu_vring *vr)
{
	struct virtio_queue_setup qs = { .size = vr->num, .base = vr->base, .kick_fd = vr->kick_fd,
					 .notify = vu_notify, .notify_opaque = vr };
	struct virtq_mem mem = { .gpa_to_hva = vu_gpa_to_hva, .ctx = s };
	uint64_t features = s->features & ~(1ull << VU_F_PROTOCOL_FEATURES);
	struct verr err = { 0 };
	int r;

	if (vr->running || vr->kick_fd < 0 || !vr->enabled)
		return 0;
	if (vu_uaddr_to_gpa(s, vr->desc, &qs.desc) || vu_uaddr_to_gpa(s, vr->avail, &qs.avail) ||
	    vu_uaddr_to_gpa(s, vr->used, &qs.used)) {
		log_error(s->dev->name, "queue %u: ring addresses outside the memory table",
			  vr->index);
		return -EINVAL;
	}
	/* A device that needed reset is reset when a ring starts again with
	 * none running: vhost-user has no status register, and this is how a
	 * front end restarts the device after the driver reset it. */
	if (virtio_dev_needs_reset(s->dev) && !vu_any_running(s))
		virtio_dev_reset(s->dev);
	r = virtio_dev_activate(s->dev, features, &mem, vu_config_changed, s, &err);
	if (!r)
		r = virtio_dev_queue_start(s->dev, vr->index, &qs, &err);
	if (r) {
		log_error(s->dev->name, "%s", err.msg);
		return r;
	}
	vr->running = true;
	log_debug(s->dev->name, "queue %u started (size %u, base %u)", vr->index, vr->num,
		  vr->base);
	return 0;
}

/*
 * Guest memory that shrinks under us. The front end owns the memory files;
 * one that truncates a file after SET_MEM_TABLE (unsealed memfds, files in
 * /dev/shm) turns the next touch of those pages into SIGBUS, which would
 * kill the back end. The handler puts a zero page where the fault was (the
 * access then completes, reading zeros) and tells the server, which drops
 * that front end. A SIGBUS outside guest memory still kills, as before.
 */
#define VU_MAX_MAPS 64
static struct {
	uintptr_t start, end;                  /* end 0: free slot */
} vu_maps[VU_MAX_MAPS];
static int vu_fault_fd = -1;              /* eventfd the handler writes */
static uintptr_t vu_page_size;
static pthread_once_t vu_sigbus_once = PTHREAD_ONCE_INIT;

static void vu_sigbus(int sig, siginfo_t *si, void *uc)
{
	uintptr_t a = (uintptr_t)si->si_addr;

	(void)uc;
	for (unsigned i = 0; i < VU_MAX_MAPS; i++) {
		uintptr_t start = __atomic_load_n(&vu_maps[i].start, __ATOMIC_ACQUIRE);
		uintptr_t end = __atomic_load_n(&vu_maps[i].end, __ATOMIC_ACQUIRE);
		uint64_t one = 1;

		if (a < start || a >= end)
			continue;
		if (mmap((void *)(a & ~(vu_page_size - 1)), vu_page_size, PROT_READ | PROT_WRITE,
			 MAP_FIXED | MAP_PRIVATE | MAP_ANONYMOUS, -1, 0) == MAP_FAILED)
			break;
		/* a full counter (EAGAIN) has woken the server already */
		(void)!write(vu_fault_fd, &one, sizeof(one));
		return;
	}
	signal(sig, SIG_DFL);                    /* not guest memory: die as before */
}

/* Whether the handler reported a fault since the last call (and forget it). */
static bool vu_fault_drain(void)
{
	uint64_t n;

	return read(vu_fault_fd, &n, sizeof(n)) == sizeof(n);
}

static void vu_sigbus_install(void)
{
	struct sigaction sa = { .sa_sigaction = vu_sigbus, .sa_flags = SA_SIGINFO };

	vu_page_size = (uintptr_t)sysconf(_SC_PAGESIZE);
	vu_fault_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	sigemptyset(&sa.sa_mask);
	if (vu_fault_fd >= 0)
		sigaction(SIGBUS, &sa, NULL);
}

static void vu_maps_add(void *map, size_t len)
{
	for (unsigned i = 0; i < VU_MAX_MAPS; i++) {
		if (__atomic_load_n(&vu_maps[i].end, __ATOMIC_ACQUIRE))
			continue;
		__atomic_store_n(&vu_maps[i].start, (uintptr_t)map, __ATOMIC_RELEASE);
		__atomic_store_n(&vu_maps[i].end, (uintptr_t)map + len, __ATOMIC_RELEASE);
		return;
	}
}

static void vu_maps_del(void *map)
{
	for (unsigned i = 0; i < VU_MAX_MAPS; i++)
		if (__atomic_load_n(&vu_maps[i].start, __ATOMIC_ACQUIRE) == (uintptr_t)map &&
		    __atomic_load_n(&vu_maps[i].end, __ATOMIC_ACQUIRE)) {
			__atomic_store_n(&vu_maps[i].end, 0, __ATOMIC_RELEASE);
			return;
		}
}

static void vu_unmap(struct vhost_user_server *s)
{
	for (unsigned i = 0; i < s->nregions; i++) {
		vu_maps_del(s->regions[i].map);
		munmap(s->regions[i].map, s->regions[i].map_len);
	}
	s->nregions = 0;
}

/* Rings stopped, memory unmapped, fds closed, device reset. The protocol
 * features belong to the connection: a front end never negotiates them
 * again after RESET_DEVICE, so only the end of a connection drops them. */
static void vu_reset_state(struct vhost_user_server *s, bool connection_ends)
{
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++) {
		struct vu_vring *vr = &s->vrings[q];

		if (q < s->dev->nqueues)
			vu_vring_stop(s, vr);
		/* the I/O thread may still write an err fd (vu_config_changed) */
		pthread_mutex_lock(&s->dev->lock);
		close_fd(&vr->kick_fd);
		close_fd(&vr->call_fd);
		close_fd(&vr->err_fd);
		*vr = (struct vu_vring){ .s = s, .index = q, .kick_fd = -1, .call_fd = -1,
					 .err_fd = -1 };
		pthread_mutex_unlock(&s->dev->lock);
	}
	virtio_dev_reset(s->dev);
	vu_unmap(s);
	s->features = 0;
	if (connection_ends)
		s->protocol_features = 0;
}

static int vu_map_region(struct vu_region *r, const struct vu_region_desc *d, int fd,
			 struct verr *err)
{
	struct stat st;
	uint64_t end;

	if (d->size == 0 || d->gpa + d->size < d->gpa || d->uaddr + d->size < d->uaddr ||
	    __builtin_add_overflow(d->mmap_offset, d->size, &end) || end > SIZE_MAX)
		return verr_set(err, EINVAL, "memory region gpa 0x%llx size 0x%llx is invalid",
				(unsigned long long)d->gpa, (unsigned long long)d->size);
	/* Touching a mapping past the end of its file is SIGBUS: refuse. */
	if (fstat(fd, &st) < 0 || (S_ISREG(st.st_mode) && (uint64_t)st.st_size < end))
		return verr_set(err, EINVAL, "memory region fd is smaller than offset+size");
	r->map = mmap(NULL, end, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (r->map == MAP_FAILED)
		return verr_set(err, errno, "mmap of memory region: %s", strerror(errno));
	vu_maps_add(r->map, end);
	r->map_len = end;
	r->hva = r->map + d->mmap_offset;
	r->gpa = d->gpa;
	r->size = d->size;
	r->uaddr = d->uaddr;
	return 0;
}

static int vu_set_mem_table(struct vhost_user_server *s, struct vu_msg *m, struct verr *err)
{
	uint32_t n;
	bool was_running[VIRTIO_MAX_QUEUES];
	int r = 0;

	if (m->hdr.size < 8)
		return verr_set(err, EINVAL, "SET_MEM_TABLE: payload of %u bytes", m->hdr.size);
	memcpy(&n, m->bytes, 4);
	if (n == 0 || n > VHOST_USER_MAX_REGIONS || n != m->nfds ||
	    m->hdr.size != 8 + n * sizeof(struct vu_region_desc))
		return verr_set(err, EINVAL, "SET_MEM_TABLE: %u regions, %u fds, %u bytes", n,
				m->nfds, m->hdr.size);
	/* The device must not walk rings while their memory is replaced. */
	for (unsigned q = 0; q < s->dev->nqueues; q++) {
		was_running[q] = s->vrings[q].running;
		vu_vring_stop(s, &s->vrings[q]);
	}
	vu_unmap(s);
	for (unsigned i = 0; i < n && !r; i++) {
		struct vu_region_desc d;

		memcpy(&d, m->bytes + 8 + i * sizeof(d), sizeof(d));
		r = vu_map_region(&s->regions[i], &d, m->fds[i], err);
		if (!r)
			s->nregions = i + 1;
	}
	if (r) {
		vu_unmap(s);
		return r;
	}
	for (unsigned q = 0; q < s->dev->nqueues; q++)
		if (was_running[q])
			vu_vring_try_start(s, &s->vrings[q]);
	return 0;
}

static struct vu_vring *vu_ring(struct vhost_user_server *s, uint32_t index, struct verr *err)
{
	if (index >= s->dev->nqueues) {
		verr_set(err, EINVAL, "ring index %u >= %u queues", index, s->dev->nqueues);
		return NULL;
	}
	return &s->vrings[index];
}

/* SET_VRING_KICK/CALL/ERR: the fd (or none) replaces the old one. */
static int vu_set_ring_fd(struct vhost_user_server *s, struct vu_msg *m, struct verr *err)
{
	struct vu_vring *vr;
	int *slot, fd;
	bool restart;

	if (m->hdr.size != 8)
		return verr_set(err, EINVAL, "vring fd message: payload of %u bytes", m->hdr.size);
	vr = vu_ring(s, (uint32_t)(m->u64 & VU_VRING_IDX_MASK), err);
	if (!vr)
		return -EINVAL;
	if (!(m->u64 & VU_VRING_NOFD) && m->nfds != 1)
		return verr_set(err, EINVAL, "vring fd message without its fd");
	fd = -1;                             /* with NOFD, fds sent along are closed */
	if (!(m->u64 & VU_VRING_NOFD)) {
		int fl = fcntl(m->fds[0], F_GETFL);

		/* The I/O thread must never block on a front end's fd (an
		 * eventfd at its maximum count blocks a write forever). */
		if (fl < 0 || fcntl(m->fds[0], F_SETFL, fl | O_NONBLOCK) < 0)
			return verr_set(err, EINVAL, "vring fd: %s", strerror(errno));
		fd = m->fds[0];
		m->nfds = 0;                 /* the fd is ours now */
	}
	slot = m->hdr.request == VU_SET_VRING_KICK ? &vr->kick_fd :
	       m->hdr.request == VU_SET_VRING_CALL ? &vr->call_fd : &vr->err_fd;
	/* Stop the ring so the I/O thread never uses an fd we are closing; an
	 * err fd of any ring may be written by it, so swap under its lock. */
	restart = vr->running || m->hdr.request == VU_SET_VRING_KICK;
	vu_vring_stop(s, vr);
	pthread_mutex_lock(&s->dev->lock);
	close_fd(slot);
	*slot = fd;
	pthread_mutex_unlock(&s->dev->lock);
	/* Without protocol features a ring is enabled as soon as it starts. */
	if (m->hdr.request == VU_SET_VRING_KICK &&
	    !(s->features & (1ull << VU_F_PROTOCOL_FEATURES)))
		vr->enabled = true;
	return restart ? vu_vring_try_start(s, vr) : 0;
}

static int vu_vring_msg(struct vhost_user_server *s, struct vu_msg *m, bool *reply,
			struct verr *err)
{
	size_t want = m->hdr.request == VU_SET_VRING_ADDR ? sizeof(struct vu_vring_addr)
							  : sizeof(struct vu_vring_state);
	struct vu_vring *vr;

	if (m->hdr.size != want)
		return verr_set(err, EINVAL, "request %u: payload of %u bytes", m->hdr.request,
				m->hdr.size);
	vr = vu_ring(s, m->state.index, err);
	if (!vr)
		return -EINVAL;
	switch (m->hdr.request) {
	case VU_SET_VRING_NUM:
		if (m->state.num == 0 || m->state.num > s->dev->queue_max_size ||
		    (m->state.num & (m->state.num - 1)))
			return verr_set(err, EINVAL, "ring %u: size %u", vr->index, m->state.num);
		vr->num = (uint16_t)m->state.num;
		return 0;
	case VU_SET_VRING_ADDR:
		vr->desc = m->addr.desc;
		vr->used = m->addr.used;
		vr->avail = m->addr.avail;
		return 0;
	case VU_SET_VRING_BASE:
		if (m->state.num > 0xffff)
			return verr_set(err, EINVAL, "ring %u: base %u", vr->index, m->state.num);
		vr->base = (uint16_t)m->state.num;
		return 0;
	case VU_GET_VRING_BASE:
		vu_vring_stop(s, vr);
		close_fd(&vr->kick_fd);
		m->state.num = vr->base;
		*reply = true;
		return 0;
	default: /* VU_SET_VRING_ENABLE */
		if (m->state.num > 1)
			return verr_set(err, EINVAL, "ring %u: enable %u", vr->index, m->state.num);
		vr->enabled = m->state.num;
		if (!vr->enabled) {
			vu_vring_stop(s, vr);
			return 0;
		}
		return vu_vring_try_start(s, vr);
	}
}

static int vu_config_msg(struct vhost_user_server *s, struct vu_msg *m, bool *reply,
			 struct verr *err)
{
	struct vu_config *c = &m->config;

	if (m->hdr.size < 12 || c->size > VU_MAX_CONFIG || m->hdr.size != 12 + c->size)
		return verr_set(err, EINVAL, "config message: %u bytes for %u config bytes",
				m->hdr.size, c->size);
	if (m->hdr.request == VU_SET_CONFIG) {
		virtio_dev_config_write(s->dev, c->offset, c->data, c->size);
		return 0;
	}
	virtio_dev_config_read(s->dev, c->offset, c->data, c->size);
	*reply = true;
	return 0;
}

static int vu_u64_msg(struct vhost_user_server *s, struct vu_msg *m, bool *reply,
		      struct verr *err)
{
	bool set = m->hdr.request == VU_SET_FEATURES || m->hdr.request == VU_SET_PROTOCOL_FEATURES;

	if (set && m->hdr.size != 8)
		return verr_set(err, EINVAL, "request %u: payload of %u bytes", m->hdr.request,
				m->hdr.size);
	switch (m->hdr.request) {
	case VU_GET_FEATURES:
		m->u64 = virtio_dev_features(s->dev) | (1ull << VU_F_PROTOCOL_FEATURES);
		break;
	case VU_SET_FEATURES:
		if (m->u64 & ~(virtio_dev_features(s->dev) | (1ull << VU_F_PROTOCOL_FEATURES)))
			return verr_set(err, EINVAL, "SET_FEATURES 0x%llx: not offered",
					(unsigned long long)m->u64);
		s->features = m->u64;
		return 0;
	case VU_GET_PROTOCOL_FEATURES:
		m->u64 = VU_PROTOCOL_FEATURES;
		/* QEMU's vhost-user net keeps the config itself and warns if offered. */
		if (virtio_dev_id(s->dev) == VIRTIO_ID_NET)
			m->u64 &= ~(1ull << VU_PF_CONFIG);
		break;
	case VU_SET_PROTOCOL_FEATURES:
		s->protocol_features = m->u64 & VU_PROTOCOL_FEATURES;
		return 0;
	default: /* VU_GET_QUEUE_NUM */
		/* Net front ends count queue pairs (one vhost device per pair). */
		m->u64 = s->dev->nqueues;
		if (virtio_dev_id(s->dev) == VIRTIO_ID_NET)
			m->u64 /= 2;
		break;
	}
	*reply = true;
	m->hdr.size = 8;
	return 0;
}

static int vu_dispatch(struct vhost_user_server *s, struct vu_msg *m, bool *reply,
		       struct verr *err)
{
	switch (m->hdr.request) {
	case VU_GET_FEATURES:
	case VU_SET_FEATURES:
	case VU_GET_PROTOCOL_FEATURES:
	case VU_SET_PROTOCOL_FEATURES:
	case VU_GET_QUEUE_NUM:
		return vu_u64_msg(s, m, reply, err);
	case VU_SET_OWNER:
		return 0;
	case VU_RESET_OWNER:
	case VU_RESET_DEVICE:
		vu_reset_state(s, false);
		return 0;
	case VU_SET_MEM_TABLE:
		return vu_set_mem_table(s, m, err);
	case VU_SET_VRING_NUM:
	case VU_SET_VRING_ADDR:
	case VU_SET_VRING_BASE:
	case VU_GET_VRING_BASE:
	case VU_SET_VRING_ENABLE:
		return vu_vring_msg(s, m, reply, err);
	case VU_SET_VRING_KICK:
	case VU_SET_VRING_CALL:
	case VU_SET_VRING_ERR:
		return vu_set_ring_fd(s, m, err);
	case VU_GET_CONFIG:
	case VU_SET_CONFIG:
		return vu_config_msg(s, m, reply, err);
	default:
		return verr_set(err, ENOTSUP, "request %u not supported", m->hdr.request);
	}
}

static void vu_close_fds(struct vu_msg *m)
{
	for (unsigned i = 0; i < m->nfds; i++)
		close(m->fds[i]);
	m->nfds = 0;
}

static int read_full(int fd, void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = read(fd, (uint8_t *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n == 0 ? -ECONNRESET : -errno;
		done += (size_t)n;
	}
	return 0;
}

/* One message: header (with its fds), then a bounded payload. */
static int vu_recv(int fd, struct vu_msg *m)
{
	char cbuf[CMSG_SPACE(VU_MAX_FDS * sizeof(int))];
	struct iovec iov = { &m->hdr, sizeof(m->hdr) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ssize_t n;

	m->nfds = 0;
	do
		n = recvmsg(fd, &mh, MSG_CMSG_CLOEXEC | MSG_WAITALL);
	while (n < 0 && errno == EINTR);
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++)
			if (m->nfds < VU_MAX_FDS)
				memcpy(&m->fds[m->nfds++], CMSG_DATA(c) + i * sizeof(int),
				       sizeof(int));
	}
	if (n != (ssize_t)sizeof(m->hdr) || (mh.msg_flags & MSG_CTRUNC))
		return n == 0 ? -ECONNRESET : -EPROTO;
	if ((m->hdr.flags & 3u) != VU_VERSION || m->hdr.size > VU_MAX_PAYLOAD)
		return -EPROTO;
	memset(m->bytes, 0, sizeof(m->bytes));
	return read_full(fd, m->bytes, m->hdr.size);
}

static int vu_send(int fd, struct vu_msg *m)
{
	/* The payload union is 8-aligned: send header and payload separately
	 * so the padding between them never reaches the wire. */
	struct iovec iov[2] = { { &m->hdr, sizeof(m->hdr) }, { m->bytes, m->hdr.size } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };

	m->hdr.flags = VU_VERSION | VU_FLAG_REPLY;
	while (iov[0].iov_len || iov[1].iov_len) {
		ssize_t n = sendmsg(fd, &mh, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		for (unsigned i = 0; i < 2; i++) {
			size_t k = (size_t)n < iov[i].iov_len ? (size_t)n : iov[i].iov_len;

			iov[i].iov_base = (uint8_t *)iov[i].iov_base + k;
			iov[i].iov_len -= k;
			n -= (ssize_t)k;
		}
		if (!iov[0].iov_len) {
			mh.msg_iov = &iov[1];
			mh.msg_iovlen = 1;
		}
	}
	return 0;
}

/* Handle one message; <0 ends the connection. */
static int vu_handle(struct vhost_user_server *s, struct vu_msg *m)
{
	struct verr err = { 0 };
	bool reply = false;
	bool ack = (m->hdr.flags & VU_FLAG_NEED_REPLY) &&
		   (s->protocol_features & (1ull << VU_PF_REPLY_ACK));
	int r;

	log_debug(s->dev->name, "vhost-user: request %u, %u bytes, %u fds", m->hdr.request,
		  m->hdr.size, m->nfds);
	r = vu_dispatch(s, m, &reply, &err);
	vu_close_fds(m);
	if (r && r != -ENOTSUP) {
		log_error(s->dev->name, "vhost-user: %s; dropping the front end", err.msg);
		return r;
	}
	if (r)
		log_warn(s->dev->name, "vhost-user: %s", err.msg);
	if (reply)
		return vu_send(s->conn_fd, m);
	if (ack) {
		m->hdr.size = 8;
		m->u64 = r ? 1 : 0;
		return vu_send(s->conn_fd, m);
	}
	return 0;
}

int vhost_user_server_serve_fd(struct vhost_user_server *s, int fd, int stop_fd)
{
	struct vu_msg *m = malloc(sizeof(*m));
	struct pollfd p[3] = { { .fd = fd, .events = POLLIN }, { .fd = stop_fd, .events = POLLIN },
			       { .fd = vu_fault_fd, .events = POLLIN } };
	int r = 0;

	if (!m)
		return -ENOMEM;
	s->conn_fd = fd;
	/* A front end that stops mid-message, or stops reading replies, is
	 * dropped after this long instead of holding the server (and SIGTERM). */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &(struct timeval){ .tv_sec = VU_IO_TIMEOUT_S },
		   sizeof(struct timeval));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &(struct timeval){ .tv_sec = VU_IO_TIMEOUT_S },
		   sizeof(struct timeval));
	log_info(s->dev->name, "vhost-user: front end connected");
	vu_fault_drain();         /* faults in the last front end's memory */
	for (;;) {
		if (poll(p, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			break;
		}
		if (p[1].revents & POLLIN) {
			r = 1;
			break;
		}
		if ((p[2].revents & POLLIN) && vu_fault_drain()) {
			log_error(s->dev->name, "vhost-user: guest memory shrank under its mapping "
				  "(the front end truncated a memory file); dropping the front end");
			r = -EFAULT;
			break;
		}
		if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		r = vu_recv(fd, m);
		if (!r)
			r = vu_handle(s, m);
		else
			vu_close_fds(m);
		if (r < 0)
			break;
	}
	log_info(s->dev->name, "vhost-user: front end gone (%s)",
		 r == 1 ? "stopping" : r == -ECONNRESET ? "disconnected" : strerror(-r));
	vu_reset_state(s, true);
	close(fd);
	s->conn_fd = -1;
	free(m);
	return r == 1 ? 1 : 0;
}

int vhost_user_server_new(const char *path, struct virtio_dev *dev,
			  struct vhost_user_server **out, struct verr *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct vhost_user_server *s;

	if (strlen(path) >= sizeof(sa.sun_path))
		return verr_set(err, ENAMETOOLONG, "%s: socket path too long", path);
	pthread_once(&vu_sigbus_once, vu_sigbus_install);
	s = calloc(1, sizeof(*s));
	if (!s)
		return verr_set(err, ENOMEM, "out of memory");
	s->dev = dev;
	s->conn_fd = -1;
	snprintf(s->path, sizeof(s->path), "%s", path);
	for (unsigned q = 0; q < VIRTIO_MAX_QUEUES; q++)
		s->vrings[q] = (struct vu_vring){ .s = s, .index = q, .kick_fd = -1,
						  .call_fd = -1, .err_fd = -1 };
	/* Front ends connect as soon as the file appears: it must listen by then. */
	s->listen_fd = unix_listen(path, 1, 0, 0, err);
	if (s->listen_fd < 0) {
		int rc = s->listen_fd;

		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

int vhost_user_server_run(struct vhost_user_server *s, int stop_fd, struct verr *err)
{
	struct pollfd p[2] = { { .fd = s->listen_fd, .events = POLLIN },
			       { .fd = stop_fd, .events = POLLIN } };

	for (;;) {
		int fd;

		if (poll(p, stop_fd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return verr_set(err, errno, "poll: %s", strerror(errno));
		}
		if (p[1].revents & POLLIN)
			return 0;
		fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			return verr_set(err, errno, "accept on %s: %s", s->path, strerror(errno));
		}
		if (vhost_user_server_serve_fd(s, fd, stop_fd) == 1)
			return 0;
	}
}

void vhost_user_server_free(struct vhost_user_server *s)
{
	if (!s)
		return;
	if (s->listen_fd >= 0) {
		close(s->listen_fd);
		unlink(s->path);
	}
	free(s);
}
