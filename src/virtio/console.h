/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-console (virtio 1.2, 5.3): one port (hvc0), no multiport. */
#ifndef VIREO_VIRTIO_CONSOLE_H
#define VIREO_VIRTIO_CONSOLE_H

#include "virtio/device.h"

#define VIRTIO_CONSOLE_QUEUE_SIZE 64
#define VIRTIO_CONSOLE_CONFIG_SIZE 12

/* Guest output goes to out_fd; bytes readable on in_fd (-1: none) become
 * guest input. Both fds stay the caller's; in_fd should be non-blocking. */
int virtio_console_create(int in_fd, int out_fd, struct virtio_dev **out, struct verr *err);

#endif
