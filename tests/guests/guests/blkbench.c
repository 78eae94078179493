/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-blk benchmark guest: keeps `qd` requests of `bs` bytes in flight on
 * queue 0 for `ops` requests, random (4 KiB aligned, an odd stride through
 * the disk) or sequential, reads or writes, polling the used ring from ring
 * 3, and prints "BENCH <ops> ops in <us> us". The same image runs under
 * vireo and under QEMU's virtio-blk-pci, so the host compares like with like.
 * Command line:
 *   qd=N (default 1)  ops=N (default 20000)  bs=BYTES (default 4096)
 *   write             write instead of read
 *   seq               sequential instead of random
 *   writethrough      do not negotiate FLUSH: every write must be durable
 */
#include "rt.h"
#include "virtio.h"

const char guest_name[] = "blkbench";

#define MAX_QD 32
#define BUF_BASE (64ull << 20)

struct req_hdr {
	uint32_t type, reserved;
	uint64_t sector;
};

static struct vdev dev;
static struct vq *rq;
static struct req_hdr hdr[MAX_QD];
static volatile uint8_t status[MAX_QD];
static int slot_of_head[1024];

static uint8_t *bufs[MAX_QD];

static uint64_t next_sector(uint64_t i, uint64_t blocks, uint64_t bs, bool seq)
{
	/* an odd stride visits every block before repeating */
	uint64_t b = seq ? i % blocks : (i * 2654435761ull) % blocks;
	return b * (bs / 512);
}

static void submit(int slot, uint64_t sector, uint32_t bs, bool write)
{
	struct vbuf b[3];
	int head;

	hdr[slot] = (struct req_hdr){ write ? 1 : 0, 0, sector };
	status[slot] = 0xee;
	b[0] = (struct vbuf){ &hdr[slot], sizeof(hdr[slot]), false };
	b[1] = (struct vbuf){ bufs[slot], bs, !write };
	b[2] = (struct vbuf){ (const void *)&status[slot], 1, true };
	head = vq_add(rq, b, 3);
	CHECK(head >= 0 && head < 1024, "queue full at depth %d", slot);
	slot_of_head[head] = slot;
}

void guest_main(void)
{
	uint64_t qd = cmdline_u64("qd", 1), ops = cmdline_u64("ops", 20000);
	uint64_t bs = cmdline_u64("bs", 4096), capacity, blocks, done = 0, issued = 0, t0, t1;
	bool write = cmdline_has("write"), seq = cmdline_has("seq");
	char tmp[8];

	CHECK(qd >= 1 && qd <= MAX_QD && bs >= 512 && bs % 512 == 0 && bs <= (1u << 20),
	      "bad qd/bs");
	/* FLUSH as Linux negotiates it: the device may then cache writes
	 * (without it, both vireo and QEMU must write through) */
	virtio_open(&dev, 2, 0, cmdline_has("writethrough") ? 0 : 1ull << 9);
	rq = virtio_queue(&dev, 0, 128);
	virtio_driver_ok(&dev);
	virtio_config_read(&dev, 0, &capacity, 8);
	blocks = capacity * 512 / bs;
	CHECK(blocks > 0, "disk smaller than one request");
	/* buffers at 64 MiB: the DMA pool is too small for 1 MiB requests;
	 * the guest needs 64 MiB + qd * bs of RAM */
	for (uint64_t s = 0; s < qd; s++)
		bufs[s] = (uint8_t *)(BUF_BASE + s * bs);
	(void)tmp;
	t0 = rdtsc();
	for (; issued < qd && issued < ops; issued++)
		submit((int)issued, next_sector(issued, blocks, bs, seq), (uint32_t)bs, write);
	vq_kick(rq);
	while (done < ops) {
		uint32_t len;
		int head = vq_get(rq, &len);
		if (head < 0) {
			cpu_relax();
			continue;
		}
		int slot = slot_of_head[head];
		CHECK(status[slot] == 0, "request failed with status %u", status[slot]);
		done++;
		if (issued < ops) {
			submit(slot, next_sector(issued++, blocks, bs, seq), (uint32_t)bs, write);
			vq_kick(rq);
		}
	}
	t1 = rdtsc();
	printf("BENCH %lu ops in %lu us\n", ops, (t1 - t0) / (tsc_hz() / 1000000));
}
