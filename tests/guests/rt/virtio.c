/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Modern virtio-pci (virtio 1.2, 4.1) with split virtqueues (2.7), driven
 * from ring 3: every register is MMIO in a BAR, and the only ring-0 code is
 * the interrupt stub below, which the CPU enters through the IDT.  MSI-X
 * messages go straight to this CPU's LAPIC, one CPU vector per queue, each
 * with a counter: a counter that moves is the proof that the device's
 * MSI-X write reached the CPU.
 */
#include "virtio.h"

/* Common configuration structure (4.1.4.3). */
#define CC_DFSELECT 0x00
#define CC_DF 0x04
#define CC_GFSELECT 0x08
#define CC_GF 0x0c
#define CC_MSIX 0x10
#define CC_NUMQ 0x12
#define CC_STATUS 0x14
#define CC_CFGGEN 0x15
#define CC_Q_SELECT 0x16
#define CC_Q_SIZE 0x18
#define CC_Q_MSIX 0x1a
#define CC_Q_ENABLE 0x1c
#define CC_Q_NOFF 0x1e
#define CC_Q_DESC 0x20
#define CC_Q_DRIVER 0x28
#define CC_Q_DEVICE 0x30

#define CAP_COMMON 1
#define CAP_NOTIFY 2
#define CAP_ISR 3
#define CAP_DEVICE 4

volatile uint64_t virtio_irqs[VIRTIO_NVEC];
static int next_cpu_vector;

/*
 * One stub per CPU vector: count and EOI (the LAPIC's EOI register at
 * 0xfee000b0), five instructions because ring 0 is emulated.  Written as
 * assembly so no compiler prologue touches the stack or SSE state.
 */
#define STUB(n) \
	"virtio_isr" #n ":\n" \
	"	push %rax\n" \
	"	incq virtio_irqs+8*" #n "(%rip)\n" \
	"	mov $0xfee000b0, %eax\n" \
	"	movl $0, (%rax)\n" \
	"	pop %rax\n" \
	"	iretq\n"
__asm__(".text\n"
	STUB(0) STUB(1) STUB(2) STUB(3) STUB(4) STUB(5) STUB(6) STUB(7)
	STUB(8) STUB(9) STUB(10) STUB(11) STUB(12) STUB(13) STUB(14) STUB(15)
	".section .rodata\n"
	".balign 8\n"
	"virtio_isr_table:\n"
	".quad virtio_isr0, virtio_isr1, virtio_isr2, virtio_isr3\n"
	".quad virtio_isr4, virtio_isr5, virtio_isr6, virtio_isr7\n"
	".quad virtio_isr8, virtio_isr9, virtio_isr10, virtio_isr11\n"
	".quad virtio_isr12, virtio_isr13, virtio_isr14, virtio_isr15\n"
	".text\n");
extern void (*const virtio_isr_table[VIRTIO_NVEC])(void);

/* DMA memory starts past the image's end (bss and stacks): RAM that no
 * guest uses, so the pool costs the other guests no .bss clearing. */
extern char _end[];
#define POOL_SIZE (1ull << 20)
static size_t pool_used;

void *dma_alloc(size_t size, size_t align)
{
	uint8_t *pool = (uint8_t *)(((uint64_t)_end + 4095) & ~4095ull);
	size_t at = (pool_used + align - 1) & ~(align - 1);
	CHECK(at + size <= POOL_SIZE, "dma pool exhausted (%lu bytes wanted)", (uint64_t)size);
	pool_used = at + size;
	memset(pool + at, 0, size);
	return pool + at;
}

static uint8_t rd8(uint64_t a) { return *(volatile uint8_t *)a; }
static uint16_t rd16(uint64_t a) { return *(volatile uint16_t *)a; }
static uint32_t rd32(uint64_t a) { return *(volatile uint32_t *)a; }
static void wr8(uint64_t a, uint8_t v) { *(volatile uint8_t *)a = v; }
static void wr16(uint64_t a, uint16_t v) { *(volatile uint16_t *)a = v; }
static void wr32(uint64_t a, uint32_t v) { *(volatile uint32_t *)a = v; }
/* 64-bit fields as two 32-bit writes, low first (4.1.3.1 allows it). */
static void wr64(uint64_t a, uint64_t v)
{
	wr32(a, (uint32_t)v);
	wr32(a + 4, (uint32_t)(v >> 32));
}

static int alloc_cpu_vector(void)
{
	if (next_cpu_vector >= VIRTIO_NVEC)
		return -1;
	int n = next_cpu_vector++;
	idt_set(VIRTIO_VEC_BASE + n, virtio_isr_table[n]);
	return n;
}

uint8_t virtio_status(struct vdev *d)
{
	return rd8(d->common + CC_STATUS);
}

static void set_status(struct vdev *d, uint8_t bits)
{
	wr8(d->common + CC_STATUS, virtio_status(d) | bits);
}

void virtio_reset(struct vdev *d)
{
	wr8(d->common + CC_STATUS, 0);
	/* 4.1.4.3.2: the reset is done when status reads back 0. */
	uint64_t end = tsc_deadline(1000000);
	while (virtio_status(d))
		CHECK(rdtsc() < end, "device status stays 0x%x after reset", virtio_status(d));
}

/* Walk the vendor capabilities (4.1.4) and keep the first of each type
 * whose BAR is a usable memory BAR. */
static void map_caps(struct vdev *d)
{
	for (uint8_t c = pci_cap_find(&d->pci, PCI_CAP_VENDOR); c;
	     c = pci_cap_next(&d->pci, PCI_CAP_VENDOR, c)) {
		uint8_t type = pci_read8(&d->pci, c + 3), bar = pci_read8(&d->pci, c + 4);
		uint32_t off = pci_read32(&d->pci, c + 8), len = pci_read32(&d->pci, c + 12);
		uint64_t size, base;
		if (type < CAP_COMMON || type > CAP_DEVICE || bar > 5)
			continue;
		if (!(base = pci_bar(&d->pci, bar, &size)) || (uint64_t)off + len > size)
			continue;
		uint64_t a = base + off;
		switch (type) {
		case CAP_COMMON:
			if (!d->common && len >= 0x38)
				d->common = a;
			break;
		case CAP_NOTIFY:
			if (!d->notify) {
				d->notify = a;
				d->notify_mult = pci_read32(&d->pci, c + 16);
			}
			break;
		case CAP_ISR:
			if (!d->isr)
				d->isr = a;
			break;
		case CAP_DEVICE:
			if (!d->device) {
				d->device = a;
				d->device_len = len;
			}
			break;
		}
	}
	CHECK(d->common && d->notify && d->isr, "%04x:%04x lacks common/notify/ISR capabilities",
	      d->pci.vendor, d->pci.device);
}

/*
 * MSI-X (PCI Local Bus 3.0, 6.8.2): enable with the function masked, fill
 * the table (address 0xfee00000 | APIC ID << 12, fixed delivery, edge;
 * data = CPU vector), then unmask.
 */
static void msix_setup(struct vdev *d)
{
	d->msix_cap = pci_cap_find(&d->pci, PCI_CAP_MSIX);
	CHECK(d->msix_cap, "%04x:%04x has no MSI-X capability", d->pci.vendor, d->pci.device);
	uint16_t ctl = pci_read16(&d->pci, d->msix_cap + 2);
	uint32_t tbl = pci_read32(&d->pci, d->msix_cap + 4);
	uint64_t size, base = pci_bar(&d->pci, tbl & 7, &size);
	d->msix_size = (ctl & 0x7ff) + 1;
	CHECK(base && (tbl & ~7u) + 16ull * d->msix_size <= size, "MSI-X table outside BAR%u",
	      tbl & 7);
	d->msix_table = base + (tbl & ~7u);
	pci_write16(&d->pci, d->msix_cap + 2, (ctl & ~0x3fffu) | 0x8000 | 0x4000);
	for (uint16_t i = 0; i < d->msix_size; i++)
		wr32(d->msix_table + 16 * i + 12, 1);	/* masked until used */
	pci_write16(&d->pci, d->msix_cap + 2, (ctl & ~0x3fffu) | 0x8000);
	/* An MSI to a software-disabled LAPIC is dropped: enable it (SVR). */
	lapic_write(0xf0, 0x1ff);
}

/* Point MSI-X entry `entry` at a fresh CPU vector; -1 when none is left. */
static int msix_route(struct vdev *d, uint16_t entry)
{
	int n = alloc_cpu_vector();
	if (n < 0 || entry >= d->msix_size)
		return -1;
	uint64_t e = d->msix_table + 16 * entry;
	wr32(e + 0, 0xfee00000u | lapic_id() << 12);
	wr32(e + 4, 0);
	wr32(e + 8, VIRTIO_VEC_BASE + n);
	wr32(e + 12, 0);
	return n;
}

uint64_t virtio_cmdline_features(void)
{
	return (cmdline_has("event_idx") ? VIRTIO_F_EVENT_IDX : 0) |
	       (cmdline_has("indirect") ? VIRTIO_F_INDIRECT_DESC : 0);
}

void virtio_require(struct vdev *d, uint64_t bits)
{
	CHECK((d->features & bits) == bits, "features 0x%lx asked for, 0x%lx negotiated", bits,
	      d->features & bits);
}

void virtio_open(struct vdev *d, uint16_t virtio_id, int nth, uint64_t wanted)
{
	memset(d, 0, sizeof(*d));
	CHECK(!pci_find(VIRTIO_VENDOR, VIRTIO_PCI_DEVICE(virtio_id), nth, &d->pci),
	      "no virtio device %u (PCI %04x:%04x) on bus 0", virtio_id, VIRTIO_VENDOR,
	      VIRTIO_PCI_DEVICE(virtio_id));
	map_caps(d);
	pci_enable(&d->pci);
	printf("VIRTIO: %04x:%04x at 00:%02x.%x common 0x%lx notify 0x%lx x%u device 0x%lx\n",
	       d->pci.vendor, d->pci.device, d->pci.dev, d->pci.fn, d->common, d->notify,
	       d->notify_mult, d->device);
	virtio_reset(d);
	set_status(d, VIRTIO_S_ACKNOWLEDGE);
	set_status(d, VIRTIO_S_DRIVER);

	uint64_t offered = 0;
	for (uint32_t sel = 0; sel < 2; sel++) {
		wr32(d->common + CC_DFSELECT, sel);
		offered |= (uint64_t)rd32(d->common + CC_DF) << (32 * sel);
	}
	CHECK(offered & VIRTIO_F_VERSION_1, "device offers no VIRTIO_F_VERSION_1 (0x%lx)", offered);
	d->features = offered & (wanted | VIRTIO_F_VERSION_1);
	for (uint32_t sel = 0; sel < 2; sel++) {
		wr32(d->common + CC_GFSELECT, sel);
		wr32(d->common + CC_GF, (uint32_t)(d->features >> (32 * sel)));
	}
	set_status(d, VIRTIO_S_FEATURES_OK);
	CHECK(virtio_status(d) & VIRTIO_S_FEATURES_OK, "device refused features 0x%lx",
	      d->features);
	printf("VIRTIO: features offered 0x%lx accepted 0x%lx\n", offered, d->features);

	d->nqueues = rd16(d->common + CC_NUMQ);
	msix_setup(d);
	d->config_cpu_vector = -1;
	int n = msix_route(d, 0);
	wr16(d->common + CC_MSIX, n < 0 ? VIRTIO_NO_VECTOR : 0);
	if (n >= 0 && rd16(d->common + CC_MSIX) == 0)
		d->config_cpu_vector = n;
	printf("VIRTIO: MSI-X table of %u entries; config vector %s\n", d->msix_size,
	       d->config_cpu_vector < 0 ? "refused" : "accepted");
}

struct vq *virtio_queue(struct vdev *d, uint16_t index, uint16_t max_size)
{
	CHECK(index < VIRTIO_MAX_QUEUES && index < d->nqueues, "queue %u of %u", index, d->nqueues);
	struct vq *q = &d->q[index];
	wr16(d->common + CC_Q_SELECT, index);
	uint16_t size = rd16(d->common + CC_Q_SIZE);
	CHECK(size, "queue %u is not available", index);
	CHECK(!rd16(d->common + CC_Q_ENABLE), "queue %u enabled after reset", index);
	if (size > max_size)
		size = max_size;
	/* A split ring's size is a power of 2 (2.7): round a cap down. */
	while (size & (size - 1))
		size &= size - 1;
	wr16(d->common + CC_Q_SIZE, size);
	q->dev = d;
	q->index = index;
	q->size = size;
	q->desc = dma_alloc(16ull * size, 16);
	q->avail = dma_alloc(6 + 2ull * size, 2);
	q->used = dma_alloc(6 + 8ull * size, 4);
	for (uint16_t i = 0; i < size; i++)
		q->desc[i].next = (uint16_t)(i + 1);
	q->num_free = size;
	q->event_idx = d->features & VIRTIO_F_EVENT_IDX;
	if (d->features & VIRTIO_F_INDIRECT_DESC)
		q->indirect = dma_alloc(16ull * VIRTQ_INDIRECT_MAX * size, 16);
	wr64(d->common + CC_Q_DESC, (uint64_t)q->desc);
	wr64(d->common + CC_Q_DRIVER, (uint64_t)q->avail);
	wr64(d->common + CC_Q_DEVICE, (uint64_t)q->used);

	/* Entry 0 is the config vector; queue i takes entry i + 1, or
	 * shares entry 0 when the table is smaller. */
	uint16_t entry = index + 1 < d->msix_size ? index + 1 : 0;
	q->cpu_vector = entry ? msix_route(d, entry) : d->config_cpu_vector;
	wr16(d->common + CC_Q_MSIX, q->cpu_vector < 0 ? VIRTIO_NO_VECTOR : entry);
	if (rd16(d->common + CC_Q_MSIX) != entry)
		q->cpu_vector = -1;	/* 0xffff: the device refused it */
	uint32_t noff = rd16(d->common + CC_Q_NOFF);
	q->notify = d->notify + (uint64_t)noff * d->notify_mult;
	wr16(d->common + CC_Q_ENABLE, 1);
	if (q->cpu_vector < 0)
		printf("VIRTIO: queue %u size %u: MSI-X vector refused\n", index, size);
	else
		printf("VIRTIO: queue %u size %u msix entry %u -> cpu vector 0x%x notify +0x%x\n",
		       index, size, entry, VIRTIO_VEC_BASE + q->cpu_vector, noff * d->notify_mult);
	return q;
}

void virtio_driver_ok(struct vdev *d)
{
	set_status(d, VIRTIO_S_DRIVER_OK);
	CHECK(!(virtio_status(d) & (VIRTIO_S_NEEDS_RESET | VIRTIO_S_FAILED)),
	      "device status 0x%x after DRIVER_OK", virtio_status(d));
}

void virtio_config_read(struct vdev *d, uint32_t off, void *buf, uint32_t len)
{
	CHECK(d->device && (uint64_t)off + len <= d->device_len,
	      "device config [%u, +%u) beyond its %u bytes", off, len, d->device_len);
	/* 4.1.3.1: fields are read at their own width, 64-bit ones as two
	 * 32-bit reads; byte arrays (a MAC) byte by byte. */
	unsigned w = (len == 1 || len == 2 || len == 4) ? len : (len == 8 ? 4 : 1);
	CHECK(off % w == 0, "device config offset %u not aligned for %u-byte reads", off, w);
	for (int tries = 0; tries < 100; tries++) {
		uint8_t gen = rd8(d->common + CC_CFGGEN);
		for (uint32_t i = 0; i < len; i += w) {
			uint64_t a = d->device + off + i;
			if (w == 4)
				*(uint32_t *)((uint8_t *)buf + i) = rd32(a);
			else if (w == 2)
				*(uint16_t *)((uint8_t *)buf + i) = rd16(a);
			else
				((uint8_t *)buf)[i] = rd8(a);
		}
		if (rd8(d->common + CC_CFGGEN) == gen)
			return;
	}
	guest_fail("device config keeps changing (config_generation)");
}

/* Fill n descriptors of `t` from `first` on, chained through next. */
static uint16_t fill_chain(volatile struct virtq_desc *t, uint16_t first, const struct vbuf *b,
			   int n, bool table)
{
	uint16_t i = first;
	for (int k = 0; k < n; k++) {
		t[i].addr = (uint64_t)b[k].addr;
		t[i].len = b[k].len;
		t[i].flags = (uint16_t)((b[k].dev_writes ? VIRTQ_DESC_F_WRITE : 0) |
					(k + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
		if (table)
			t[i].next = (uint16_t)(i + 1);
		i = t[i].next;
	}
	return i;
}

int vq_add(struct vq *q, const struct vbuf *b, int n)
{
	if (n <= 0)
		return -1;
	uint16_t head = q->free_head;
	if (q->indirect && n > 1 && n <= VIRTQ_INDIRECT_MAX && q->num_free) {
		/* 2.7.5.3: one ring descriptor pointing at a table of n. */
		volatile struct virtq_desc *t = q->indirect + (uint32_t)head * VIRTQ_INDIRECT_MAX;
		fill_chain(t, 0, b, n, true);
		q->desc[head].addr = (uint64_t)t;
		q->desc[head].len = 16u * (uint32_t)n;
		q->desc[head].flags = VIRTQ_DESC_F_INDIRECT;
		q->free_head = q->desc[head].next;
		q->num_free--;
	} else {
		if (n > q->num_free)
			return -1;
		q->free_head = fill_chain(q->desc, head, b, n, false);
		q->num_free = (uint16_t)(q->num_free - n);
	}
	q->avail[2 + (q->avail_idx & (q->size - 1))] = head;
	/* The ring entry must be visible before idx moves (2.7.13.2). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	q->avail[1] = ++q->avail_idx;
	q->submitted++;
	return head;
}

/* 2.7.10: with EVENT_IDX the device names the avail index it wants a
 * doorbell for (avail_event, after the used ring); ring only when the
 * entries added since the last doorbell pass it. */
void vq_kick(struct vq *q)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	uint16_t old = q->kicked_idx, now = q->avail_idx;
	q->kicked_idx = now;
	if (q->event_idx) {
		uint16_t ev = q->used[2 + 4 * q->size];
		if ((uint16_t)(now - ev - 1) >= (uint16_t)(now - old)) {
			q->kicks_suppressed++;
			return;
		}
	}
	q->kicks++;
	wr16(q->notify, q->index);
}

int vq_get(struct vq *q, uint32_t *len)
{
	if (q->used[1] == q->last_used)
		return -1;
	__atomic_thread_fence(__ATOMIC_SEQ_CST);	/* read the element after idx */
	volatile struct virtq_used_elem *e =
		(volatile struct virtq_used_elem *)(q->used + 2) + (q->last_used & (q->size - 1));
	uint32_t id = e->id;
	if (len)
		*len = e->len;
	CHECK(id < q->size, "queue %u: used id %u out of range", q->index, id);
	q->last_used++;
	/* Return the chain to the free list. */
	uint16_t i = (uint16_t)id, n = 1;
	while ((q->desc[i].flags & VIRTQ_DESC_F_NEXT) && n < q->size) {
		i = q->desc[i].next;
		n++;
	}
	q->desc[i].next = q->free_head;
	q->free_head = (uint16_t)id;
	q->num_free = (uint16_t)(q->num_free + n);
	q->completed++;
	return (int)id;
}

/*
 * 2.7.10: with EVENT_IDX the device interrupts only when the used index
 * passes used_event.  Moving used_event on every vq_get() would race: a
 * driver that polls may consume an entry before the device decides about
 * its interrupt, and the device then rightly skips it.  So used_event only
 * moves here, before chains are made available, and stays put until the
 * interrupt it asks for has been seen (otherwise it stays at 0: one
 * interrupt, at the first completion).
 */
void vq_want_irq(struct vq *q)
{
	if (q->event_idx)
		q->avail[2 + q->size] = q->last_used;
}

int vq_wait(struct vq *q, uint64_t timeout_us, uint32_t *len)
{
	uint64_t end = tsc_deadline(timeout_us);
	for (;;) {
		int id = vq_get(q, len);
		if (id >= 0 || rdtsc() > end)
			return id;
		cpu_relax();
	}
}

uint64_t vq_irqs(const struct vq *q)
{
	return q->cpu_vector < 0 ? 0 : virtio_irqs[q->cpu_vector];
}

bool vq_wait_irq(const struct vq *q, uint64_t before, uint64_t timeout_us)
{
	uint64_t end = tsc_deadline(timeout_us);
	while (vq_irqs(q) <= before) {
		if (rdtsc() > end)
			return false;
		cpu_relax();
	}
	return true;
}

uint32_t vq_exec(struct vq *q, const struct vbuf *b, int n)
{
	uint32_t len = 0;
	uint64_t irqs = vq_irqs(q);
	vq_want_irq(q);
	int head = vq_add(q, b, n);
	CHECK(head >= 0, "queue %u: no room for %d descriptors", q->index, n);
	vq_kick(q);
	int got = vq_wait(q, 5000000, &len);
	CHECK(got >= 0, "queue %u: no completion within 5 s (status 0x%x)", q->index,
	      virtio_status(q->dev));
	CHECK(got == head, "queue %u: used id %d, expected head %d", q->index, got, head);
	CHECK(q->cpu_vector >= 0, "queue %u has no MSI-X vector", q->index);
	/* The used ring may be seen before the MSI-X write lands. */
	if (!vq_wait_irq(q, irqs, 1000000))
		guest_fail("queue %u: completion without an MSI-X interrupt (request %lu, used idx %u, "
			   "used_event %u%s)", q->index, q->completed, q->used[1],
			   q->avail[2 + q->size], q->event_idx ? "" : " unused: no EVENT_IDX");
	return len;
}
