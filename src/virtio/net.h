/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-net (virtio 1.2, 5.1) on a Linux tap interface. */
#ifndef VIREO_VIRTIO_NET_H
#define VIREO_VIRTIO_NET_H

#include <stdint.h>

#include "virtio/device.h"

#define VIRTIO_NET_F_CSUM 0
#define VIRTIO_NET_F_GUEST_CSUM 1
#define VIRTIO_NET_F_MAC 5
#define VIRTIO_NET_F_GUEST_TSO4 7
#define VIRTIO_NET_F_GUEST_TSO6 8
#define VIRTIO_NET_F_GUEST_ECN 9
#define VIRTIO_NET_F_HOST_TSO4 11
#define VIRTIO_NET_F_HOST_TSO6 12
#define VIRTIO_NET_F_HOST_ECN 13
#define VIRTIO_NET_F_MRG_RXBUF 15
#define VIRTIO_NET_F_STATUS 16
#define VIRTIO_NET_F_CTRL_VQ 17
#define VIRTIO_NET_F_MQ 22

#define VIRTIO_NET_HDR_SIZE 12     /* struct virtio_net_hdr with num_buffers (v1) */
#define VIRTIO_NET_QUEUE_SIZE 256
#define VIRTIO_NET_CONFIG_SIZE 12
#define VIRTIO_NET_MAX_PAIRS 8

struct virtio_net_opts {
	const char *tap;            /* interface name; created if missing */
	int tap_fd;                 /* with tap NULL: an open tap fd, adopted (1 pair) */
	const char *tap_name;       /* with tap_fd: its interface name, for the derived MAC */
	unsigned queue_pairs;       /* 0 means 1; > 1 needs a multi_queue tap */
	uint8_t mac[6];             /* all zero: derived from the tap name */
};

/* Parses "52:54:00:12:34:56"; -EINVAL for anything else or a multicast
 * address (it cannot be a NIC's). */
int virtio_net_parse_mac(const char *s, uint8_t mac[6]);

int virtio_net_create(const struct virtio_net_opts *o, struct virtio_dev **out,
		      struct verr *err);

/* Check that fd is an open tap (not a tun, not another file) with a
 * virtio-net header, and prepare it for virtio_net_opts.tap_fd: 12-byte
 * header, non-blocking, close-on-exec. name gets its interface name. */
int virtio_net_tap_check(int fd, char name[16], struct verr *err);

/* The interface name of an open tap fd, without changing anything about
 * the fd (unlike virtio_net_tap_check); -errno if it is not a tun/tap. */
int virtio_net_tap_name(int fd, char name[16]);

/* Serve one control-queue command (exposed for tests): writes the ack. */
int virtio_net_ctrl(struct virtio_dev *d, unsigned q, struct virtq_chain *c, uint32_t *used_len,
		    struct verr *err);

/* Check one TX chain (exposed for tests and the fuzzer): 0 and the frame
 * length if it can go to the tap, -EIO if the chain is malformed. */
int virtio_net_tx_check(const struct virtq_chain *c, uint64_t *frame_len, struct verr *err);

#endif
