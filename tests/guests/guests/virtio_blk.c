/* SPDX-License-Identifier: Apache-2.0 */
/*
 * virtio-blk (virtio 1.2, 5.2) driven from ring 3 over modern virtio-pci
 * with MSI-X: every request must complete through the used ring AND raise
 * its queue's MSI-X interrupt.
 *
 * Eight reads are also put in flight at once, completing in any order.
 *
 * Disk layout written (sectors of 512 bytes, C = capacity, needs C >= 16384):
 *   pattern  [0, 128)  [2049, 2177)  [M, M+128) with M = (C/2) & ~7  [C-128, C)
 *   discard  [4096, 4224) (when VIRTIO_BLK_F_DISCARD: contents then unspecified)
 *   zeroes   [6144, 6272) gets the pattern, then (when VIRTIO_BLK_F_WRITE_ZEROES)
 *            [6176, 6240) is zeroed: pattern / zeros / pattern on disk
 * The pattern's 64-bit little-endian word at byte offset 8*w of the disk is
 * pat(seed, w) below, so the host can check the image afterwards.
 *
 * Command line:
 *   seed=N        pattern seed (default 1)
 *   expect_id=S   GET_ID must return S (NUL-padded to 20 bytes)
 *   event_idx, indirect  negotiate (and require) VIRTIO_F_EVENT_IDX /
 *                 VIRTIO_F_INDIRECT_DESC: doorbells only where the device asks
 *                 for them, multi-buffer requests through indirect tables
 *   readonly      the device must offer VIRTIO_BLK_F_RO; the pattern regions
 *                 are only read and verified (the host wrote them), and a
 *                 write must fail
 */
#include "virtio.h"

const char guest_name[] = "virtio_blk";

#define VIRTIO_ID_BLOCK 2
#define F_SIZE_MAX (1ull << 1)
#define F_SEG_MAX (1ull << 2)
#define F_RO (1ull << 5)
#define F_BLK_SIZE (1ull << 6)
#define F_FLUSH (1ull << 9)
#define F_DISCARD (1ull << 13)
#define F_WRITE_ZEROES (1ull << 14)

#define T_IN 0
#define T_OUT 1
#define T_FLUSH 4
#define T_GET_ID 8
#define T_DISCARD 11
#define T_WRITE_ZEROES 13
#define S_OK 0
#define S_IOERR 1
#define S_UNSUPP 2

#define REGION 128			/* sectors: 64 KiB */
#define SEG_BYTES 4096
#define MAX_SEGS 16

struct req_hdr {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
};

struct range {				/* discard / write-zeroes payload (5.2.6) */
	uint64_t sector;
	uint32_t num_sectors;
	uint32_t flags;
};

static struct vdev dev;
static struct vq *rq;
static uint64_t capacity;
static uint32_t seg_bytes = SEG_BYTES, max_segs = MAX_SEGS;
static uint64_t seed = 1;
static uint8_t wbuf[REGION * 512] __attribute__((aligned(4096)));
static uint8_t rbuf[REGION * 512] __attribute__((aligned(4096)));

static uint64_t pat(uint64_t s, uint64_t w)
{
	uint64_t x = (w + 1) * 0x9e3779b97f4a7c15ull ^ s;
	x ^= x >> 29;
	x *= 0xbf58476d1ce4e5b9ull;
	return x ^ (x >> 32);
}

static void fill(uint8_t *buf, uint64_t sector, uint64_t nsect)
{
	uint64_t *p = (uint64_t *)buf, w0 = sector * 64;
	for (uint64_t i = 0; i < nsect * 64; i++)
		p[i] = pat(seed, w0 + i);
}

/* One request: header, up to max_segs data segments, status byte. */
static uint8_t request(uint32_t type, uint64_t sector, void *data, uint32_t len, bool dev_writes,
		       uint32_t *used_len)
{
	static struct req_hdr hdr;
	static volatile uint8_t status;
	struct vbuf b[MAX_SEGS + 2];
	int n = 0;
	hdr = (struct req_hdr){ type, 0, sector };
	b[n++] = (struct vbuf){ &hdr, sizeof(hdr), false };
	for (uint32_t off = 0; off < len; off += seg_bytes) {
		uint32_t l = len - off < seg_bytes ? len - off : seg_bytes;
		b[n++] = (struct vbuf){ (uint8_t *)data + off, l, dev_writes };
	}
	status = 0xee;
	b[n++] = (struct vbuf){ (const void *)&status, 1, true };
	uint32_t got = vq_exec(rq, b, n);
	if (used_len)
		*used_len = got;
	return status;
}

/* Read or write nsect sectors, split into requests the device accepts. */
static void rw(uint32_t type, uint64_t sector, uint8_t *buf, uint64_t nsect)
{
	uint64_t per = (uint64_t)seg_bytes * max_segs / 512;
	while (nsect) {
		uint64_t n = nsect < per ? nsect : per;
		uint8_t st = request(type, sector, buf, (uint32_t)(n * 512), type == T_IN, NULL);
		CHECK(st == S_OK, "%s of %lu sectors at %lu: status %u", type == T_IN ? "read" : "write",
		      n, sector, st);
		sector += n;
		buf += n * 512;
		nsect -= n;
	}
}

static void verify(uint64_t sector, uint64_t nsect, const char *what)
{
	memset(rbuf, 0x5a, nsect * 512);
	rw(T_IN, sector, rbuf, nsect);
	fill(wbuf, sector, nsect);
	for (uint64_t i = 0; i < nsect * 512; i++)
		CHECK(rbuf[i] == wbuf[i], "%s: byte %lu of sector %lu reads 0x%x, wrote 0x%x", what,
		      i % 512, sector + i / 512, rbuf[i], wbuf[i]);
}

/* Eight reads in flight at once, one doorbell: the device may complete
 * them in any order, each must land in its own buffer with its own status. */
#define BATCH 8
static void batch_read(const uint64_t *regions)
{
	static struct req_hdr hdr[BATCH];
	static volatile uint8_t status[BATCH];
	int head_of[BATCH], done = 0;
	uint64_t irqs = vq_irqs(rq);
	memset(rbuf, 0x5a, sizeof(rbuf));
	vq_want_irq(rq);
	for (int i = 0; i < BATCH; i++) {
		uint64_t sector = regions[i % 4] + (uint64_t)(i / 4) * 64;
		hdr[i] = (struct req_hdr){ T_IN, 0, sector };
		status[i] = 0xee;
		struct vbuf b[3] = { { &hdr[i], sizeof(hdr[i]), false },
				     { rbuf + i * 8 * 512, 8 * 512, true },
				     { (const void *)&status[i], 1, true } };
		head_of[i] = vq_add(rq, b, 3);
		CHECK(head_of[i] >= 0, "batch: no room for request %d", i);
	}
	vq_kick(rq);
	while (done < BATCH) {
		uint32_t len;
		int head = vq_wait(rq, 5000000, &len);
		CHECK(head >= 0, "batch: %d of %d reads completed within 5 s", done, BATCH);
		int i = 0;
		while (i < BATCH && head_of[i] != head)
			i++;
		CHECK(i < BATCH, "batch: used id %d is no request's head", head);
		head_of[i] = -1;
		CHECK(status[i] == S_OK, "batch: read %d status %u", i, status[i]);
		done++;
	}
	for (int i = 0; i < BATCH; i++) {
		fill(wbuf, hdr[i].sector, 8);
		CHECK(!memcmp(rbuf + i * 8 * 512, wbuf, 8 * 512), "batch: read %d (sector %lu) wrong",
		      i, hdr[i].sector);
	}
	CHECK(vq_wait_irq(rq, irqs, 1000000), "batch: no MSI-X interrupt");
	printf("BLK: %d concurrent reads verified, %lu interrupts\n", BATCH, vq_irqs(rq) - irqs);
}

static void range_op(uint32_t type, uint64_t sector, uint32_t nsect)
{
	static struct range r;
	r = (struct range){ sector, nsect, 0 };
	uint8_t st = request(type, 0, &r, sizeof(r), false, NULL);
	CHECK(st == S_OK, "%s of [%lu, +%u): status %u", type == T_DISCARD ? "discard" : "write-zeroes",
	      sector, nsect, st);
}

static void write_zeroes_check(uint64_t base)
{
	fill(wbuf, base, REGION);
	rw(T_OUT, base, wbuf, REGION);
	range_op(T_WRITE_ZEROES, base + 32, 64);
	memset(rbuf, 0x5a, sizeof(rbuf));
	rw(T_IN, base, rbuf, REGION);
	fill(wbuf, base, REGION);
	memset(wbuf + 32 * 512, 0, 64 * 512);
	CHECK(!memcmp(rbuf, wbuf, sizeof(rbuf)), "write-zeroes: region at %lu reads wrong", base);
	printf("BLK: write-zeroes verified\n");
}

static void get_id(void)
{
	static char id[21];
	char want[32];
	memset(id, 0, sizeof(id));
	uint8_t st = request(T_GET_ID, 0, id, 20, true, NULL);
	printf("BLK: GET_ID status %u id \"%s\"\n", st, id);
	if (cmdline_get("expect_id", want, sizeof(want))) {
		CHECK(st == S_OK, "GET_ID status %u", st);
		CHECK(!strncmp(id, want, 20), "GET_ID \"%s\", expected \"%s\"", id, want);
	}
}

static void configure(void)
{
	virtio_open(&dev, VIRTIO_ID_BLOCK, 0, F_SIZE_MAX | F_SEG_MAX | F_RO | F_BLK_SIZE | F_FLUSH |
					       F_DISCARD | F_WRITE_ZEROES | virtio_cmdline_features());
	virtio_require(&dev, virtio_cmdline_features());
	virtio_config_read(&dev, 0, &capacity, 8);
	if (dev.features & F_SEG_MAX) {
		uint32_t v;
		virtio_config_read(&dev, 12, &v, 4);
		CHECK(v >= 1, "seg_max 0");
		if (v < max_segs)
			max_segs = v;
	}
	if (dev.features & F_SIZE_MAX) {
		uint32_t v;
		virtio_config_read(&dev, 8, &v, 4);
		CHECK(v >= 512, "size_max %u below a sector", v);
		if (v < seg_bytes)
			seg_bytes = v & ~511u;
	}
	rq = virtio_queue(&dev, 0, 64);
	CHECK(rq->size >= max_segs + 2, "queue of %u descriptors", rq->size);
	virtio_driver_ok(&dev);
	printf("BLK: capacity %lu sectors, %u segments of %u bytes per request\n", capacity,
	       max_segs, seg_bytes);
	CHECK(capacity >= 16384, "capacity %lu sectors: the test needs 8 MiB", capacity);
}

void guest_main(void)
{
	seed = cmdline_u64("seed", 1);
	bool ro = cmdline_has("readonly");
	configure();
	uint64_t irqs0 = vq_irqs(rq);
	const uint64_t regions[] = { 0, 2049, (capacity / 2) & ~7ull, capacity - REGION };

	if (ro) {
		CHECK(dev.features & F_RO, "readonly: VIRTIO_BLK_F_RO not offered");
		for (int i = 0; i < 4; i++)
			verify(regions[i], REGION, "readonly read");
		fill(wbuf, 0, REGION);
		memset(wbuf, 0xa5, 512);
		uint8_t st = request(T_OUT, 0, wbuf, 512, false, NULL);
		CHECK(st != S_OK, "write to a read-only disk succeeded");
		verify(0, REGION, "after a refused write");
		printf("BLK: read-only: reads verified, write refused with status %u\n", st);
	} else {
		CHECK(!(dev.features & F_RO), "device is read-only");
		for (int i = 0; i < 4; i++) {
			fill(wbuf, regions[i], REGION);
			rw(T_OUT, regions[i], wbuf, REGION);
		}
		if (dev.features & F_FLUSH) {
			uint8_t st = request(T_FLUSH, 0, NULL, 0, false, NULL);
			CHECK(st == S_OK, "flush: status %u", st);
			printf("BLK: flush ok\n");
		}
		for (int i = 0; i < 4; i++)
			verify(regions[i], REGION, "read back");
		printf("BLK: %d regions of %u KiB written and verified, seed %lu\n", 4,
		       REGION / 2, seed);
		batch_read(regions);
		if (dev.features & F_DISCARD) {
			range_op(T_DISCARD, 4096, REGION);
			printf("BLK: discard ok\n");
		}
		if (dev.features & F_WRITE_ZEROES)
			write_zeroes_check(6144);
	}
	get_id();

	/* Out of range: one sector at the capacity must fail with IOERR. */
	memset(rbuf, 0, 512);
	uint8_t st = request(T_IN, capacity, rbuf, 512, true, NULL);
	CHECK(st == S_IOERR, "read beyond the end: status %u, expected IOERR", st);
	printf("BLK: out-of-range read -> IOERR\n");

	uint64_t irqs = vq_irqs(rq) - irqs0;
	printf("BLK: %lu requests, %lu MSI-X interrupts, %lu doorbells (%lu suppressed)\n",
	       rq->completed, irqs, rq->kicks, rq->kicks_suppressed);
	CHECK(irqs > 0 && irqs <= rq->completed, "%lu interrupts for %lu requests", irqs,
	      rq->completed);
	virtio_reset(&dev);
}
