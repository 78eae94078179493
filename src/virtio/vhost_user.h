/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A vhost-user back end (QEMU docs/interop/vhost-user.rst) serving one
 * virtio_dev over a Unix socket. The front end is hostile: every message
 * size, region count, ring index and fd count is bounded; a protocol error
 * drops the connection, the device is reset and the server waits for the
 * next front end.
 */
#ifndef VIREO_VIRTIO_VHOST_USER_H
#define VIREO_VIRTIO_VHOST_USER_H

#include "core/err.h"
#include "virtio/device.h"

#define VHOST_USER_MAX_REGIONS 8

struct vhost_user_server;

/* Listen on path (replacing a stale socket file). dev is borrowed. */
int vhost_user_server_new(const char *path, struct virtio_dev *dev,
			  struct vhost_user_server **out, struct verr *err);
/* Serve front ends one after another until stop_fd (e.g. a signalfd)
 * becomes readable; then return 0. -errno only for listener failures. */
int vhost_user_server_run(struct vhost_user_server *s, int stop_fd, struct verr *err);
/* Serve exactly one connection already accepted on fd (tests, fuzzing). */
int vhost_user_server_serve_fd(struct vhost_user_server *s, int fd, int stop_fd);
void vhost_user_server_free(struct vhost_user_server *s);

#endif
