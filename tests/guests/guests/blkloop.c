/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Snapshot test guest for virtio-blk: loops writing 4 KiB block i, reading
 * it back, and re-reading block i-16 (written before, so across a snapshot
 * or from a clone overlay's backing file), all verified; every `every`
 * iterations prints "COUNT <n> SUM ok" once MSI-X interrupts have arrived
 * since the previous report. A restore that loses queue positions or
 * interrupt routes stalls or fails here. Command line:
 *   every=N   iterations between reports (default 64)
 */
#include "rt.h"
#include "virtio.h"

const char guest_name[] = "blkloop";

#define T_IN 0
#define T_OUT 1
#define BLOCKS 256
#define LAG 16

struct req_hdr {
	uint32_t type, reserved;
	uint64_t sector;
};

static struct vdev dev;
static struct vq *rq;
static uint8_t wbuf[4096] __attribute__((aligned(4096)));
static uint8_t rbuf[4096] __attribute__((aligned(4096)));

static void fill(uint8_t *b, uint64_t iter)
{
	uint64_t *p = (uint64_t *)b;
	for (unsigned i = 0; i < 512; i++)
		p[i] = (iter + 1) * 0x9e3779b97f4a7c15ull ^ i;
}

static uint8_t io(uint32_t type, uint64_t block, uint8_t *buf)
{
	static struct req_hdr hdr;
	static volatile uint8_t status;
	struct vbuf b[3];

	hdr = (struct req_hdr){ type, 0, block * 8 };
	status = 0xee;
	b[0] = (struct vbuf){ &hdr, sizeof(hdr), false };
	b[1] = (struct vbuf){ buf, 4096, type == T_IN };
	b[2] = (struct vbuf){ (const void *)&status, 1, true };
	vq_exec(rq, b, 3);
	return status;
}

static void check_block(uint64_t iter)
{
	fill(wbuf, iter);
	memset(rbuf, 0x5a, sizeof(rbuf));
	CHECK(io(T_IN, iter % BLOCKS, rbuf) == 0, "read of iteration %lu failed", iter);
	CHECK(!memcmp(rbuf, wbuf, sizeof(rbuf)), "block of iteration %lu reads back wrong", iter);
}

void guest_main(void)
{
	uint64_t every = cmdline_u64("every", 64), irqs = 0;

	CHECK(every > 0, "every=0");
	virtio_open(&dev, 2, 0, 0);
	rq = virtio_queue(&dev, 0, 64);
	virtio_driver_ok(&dev);
	printf("PATTERN ok\n");
	for (uint64_t i = 0;; i++) {
		fill(wbuf, i);
		CHECK(io(T_OUT, i % BLOCKS, wbuf) == 0, "write of iteration %lu failed", i);
		check_block(i);
		if (i >= LAG)
			check_block(i - LAG);
		if ((i + 1) % every)
			continue;
		CHECK(vq_irqs(rq) > irqs, "no MSI-X interrupt in the last %lu iterations", every);
		irqs = vq_irqs(rq);
		printf("COUNT %lu SUM ok\n", (i + 1) / every);
	}
}
