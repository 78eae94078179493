/* SPDX-License-Identifier: Apache-2.0 */
/* virtio-rng (virtio 1.2, 5.4) from ring 3: two reads of 64 bytes, each
 * completed through the used ring with an MSI-X interrupt, must be
 * non-zero and differ.  Command line: event_idx, indirect (as virtio_blk);
 * expect_vsock_cid=N: a virtio-vsock function must also be on the bus, its
 * configuration holding guest_cid N (5.10.4). */
#include "virtio.h"

const char guest_name[] = "virtio_rng";

#define VIRTIO_ID_RNG 4
#define VIRTIO_ID_VSOCK 19

/* The device may return fewer bytes than asked: ask until n are in. */
static void fill(struct vq *q, uint8_t *out, uint32_t n)
{
	static uint8_t buf[64];
	uint32_t have = 0;
	for (int tries = 0; have < n && tries < 64; tries++) {
		struct vbuf b = { buf, n - have, true };
		uint32_t len = vq_exec(q, &b, 1);
		CHECK(len <= n - have, "device wrote %u bytes into %u", len, n - have);
		memcpy(out + have, buf, len);
		have += len;
	}
	CHECK(have == n, "only %u of %u random bytes after 64 requests", have, n);
}

static bool all_zero(const uint8_t *p, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static void check_vsock(void)
{
	static struct vdev vs;
	uint64_t want = cmdline_u64("expect_vsock_cid", 0), cid = 0;

	if (!want)
		return;
	virtio_open(&vs, VIRTIO_ID_VSOCK, 0, 0);
	CHECK(vs.nqueues == 3, "vsock device has %u queues, not rx, tx and event", vs.nqueues);
	virtio_config_read(&vs, 0, &cid, 8);
	CHECK(cid == want, "vsock guest_cid %lu, expected %lu", cid, want);
	printf("VSOCK: guest_cid %lu\n", cid);
	virtio_reset(&vs);
}

void guest_main(void)
{
	check_vsock();
	static struct vdev dev;
	uint8_t a[64], b[64];
	virtio_open(&dev, VIRTIO_ID_RNG, 0, virtio_cmdline_features());
	virtio_require(&dev, virtio_cmdline_features());
	struct vq *q = virtio_queue(&dev, 0, 16);
	virtio_driver_ok(&dev);
	uint64_t irqs0 = vq_irqs(q);
	fill(q, a, sizeof(a));
	fill(q, b, sizeof(b));
	printf("RNG: %02x%02x%02x%02x... %02x%02x%02x%02x...\n", a[0], a[1], a[2], a[3], b[0], b[1],
	       b[2], b[3]);
	CHECK(!all_zero(a, 64) && !all_zero(b, 64), "random bytes all zero");
	CHECK(memcmp(a, b, 64), "two reads returned the same 64 bytes");
	printf("RNG: %lu requests, %lu MSI-X interrupts\n", q->completed, vq_irqs(q) - irqs0);
	virtio_reset(&dev);
}
