/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-vsock (virtio 1.2, 5.10), stream sockets only, bridged to Unix
 * sockets with Firecracker's hybrid convention:
 *  - host-initiated: connect to uds_path, write "CONNECT <port>\n", read
 *    "OK <host port>\n", then the stream is the guest's socket on <port>;
 *  - guest-initiated: a connection to CID 2 port P goes to "<uds_path>_<P>".
 */
#ifndef VIREO_VIRTIO_VSOCK_H
#define VIREO_VIRTIO_VSOCK_H

#include <stdint.h>

#include "virtio/device.h"

#define VIRTIO_VSOCK_QUEUE_SIZE 256
#define VIRTIO_VSOCK_CONFIG_SIZE 8
#define VIRTIO_VSOCK_HDR_SIZE 44
#define VIRTIO_VSOCK_MAX_CONNS 64
/* uds_path is shorter than this: sun_path must still hold "_<port>" */
#define VIRTIO_VSOCK_PATH_MAX 96

int virtio_vsock_create(uint64_t guest_cid, const char *uds_path, struct virtio_dev **out,
			struct verr *err);

#endif
