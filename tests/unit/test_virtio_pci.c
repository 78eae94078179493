/* SPDX-License-Identifier: Apache-2.0 */
/* The virtio-pci transport driven as a guest driver would, through PCI
 * config space and the BAR, with a fake platform instead of KVM: caps, MSI-X
 * routing, feature negotiation, a virtio-rng request end to end, the
 * interrupt eventfd, and reset. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "devices/bus.h"
#include "devices/pci.h"
#include "core/buf.h"
#include "virtio/pci.h"
#include "virtio/rng.h"

#define BAR 0xc0000000ull
#define MEMSZ (1u << 20)

struct fake {
	unsigned next_gsi;
	int irqfd_of_gsi[64];
	uint64_t msi_addr[64];
	uint32_t msi_data[64];
	unsigned ioeventfds;
	uint8_t *ram;
};

static int f_alloc(void *ctx, unsigned *gsi, struct verr *err)
{
	struct fake *f = ctx;
	*gsi = 24 + f->next_gsi++;
	return 0;
}
static int f_set(void *ctx, unsigned gsi, uint64_t a, uint32_t d, struct verr *err)
{
	struct fake *f = ctx;
	f->msi_addr[gsi - 24] = a;
	f->msi_data[gsi - 24] = d;
	return 0;
}
static int f_irqfd(void *ctx, int fd, unsigned gsi, bool assign, struct verr *err)
{
	struct fake *f = ctx;
	f->irqfd_of_gsi[gsi - 24] = assign ? fd : -1;
	return 0;
}
static int f_ioev(void *ctx, uint64_t addr, unsigned len, int fd, bool assign, struct verr *err)
{
	struct fake *f = ctx;
	f->ioeventfds += assign ? 1 : -1;
	return 0;
}
static void *f_gpa(void *ctx, uint64_t gpa, uint64_t len)
{
	struct fake *f = ctx;
	return gpa < MEMSZ && len <= MEMSZ - gpa ? f->ram + gpa : NULL;
}

static struct fake fk;
static struct bus mmio, pio, mmio2;
static struct pci_host host;
static struct virtio_pci *vp;

static uint32_t cfg(unsigned off, unsigned len) { return pci_host_cfg_read(&host, 0, 1 << 3, off, len); }
static void cfgw(unsigned off, unsigned len, uint32_t v) { pci_host_cfg_write(&host, 0, 1 << 3, off, len, v); }
static uint32_t r32(uint64_t off) { uint32_t v = 0; assert_true(bus_read(&mmio, BAR + off, &v, 4)); return v; }
static uint16_t r16(uint64_t off) { uint16_t v = 0; assert_true(bus_read(&mmio, BAR + off, &v, 2)); return v; }
static uint8_t r8(uint64_t off) { uint8_t v = 0; assert_true(bus_read(&mmio, BAR + off, &v, 1)); return v; }
static void w32(uint64_t off, uint32_t v) { assert_true(bus_write(&mmio, BAR + off, &v, 4)); }
static void w16(uint64_t off, uint16_t v) { assert_true(bus_write(&mmio, BAR + off, &v, 2)); }
static void w8(uint64_t off, uint8_t v) { assert_true(bus_write(&mmio, BAR + off, &v, 1)); }

static int setup(void **state)
{
	struct virtio_pci_platform plat = { &mmio, f_alloc, f_set, f_irqfd, f_ioev, &fk };
	struct virtq_mem mem = { f_gpa, &fk };
	struct platform_ops po = { 0 };
	struct virtio_dev *dev;
	struct verr err = { 0 };

	memset(&fk, 0, sizeof(fk));
	fk.ram = calloc(1, MEMSZ);
	if (bus_init(&mmio, "mmio", &err) || bus_init(&pio, "pio", &err) ||
	    pci_host_init(&host, &po, &err) || virtio_rng_create(&dev, &err) ||
	    virtio_pci_create(&vp, dev, &host, &plat, &mem, BAR, &err))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	virtio_pci_destroy(vp);
	pci_host_destroy(&host);
	bus_destroy(&mmio);
	bus_destroy(&pio);
	free(fk.ram);
	return 0;
}

/* Finds the vendor capability of cfg_type t; returns its config offset. */
static unsigned find_cap(unsigned type)
{
	for (unsigned p = cfg(0x34, 1), n = 0; p && n < 48; p = cfg(p + 1, 1), n++)
		if (cfg(p, 1) == 0x09 && cfg(p + 3, 1) == type)
			return p;
	return 0;
}

static void identity_and_caps(void **state)
{
	assert_int_equal(cfg(0, 2), 0x1af4);
	assert_int_equal(cfg(2, 2), 0x1044);   /* 0x1040 + rng */
	assert_int_equal(cfg(8, 1), 1);        /* revision 1: modern */
	assert_true(cfg(6, 2) & 0x10);
	assert_int_equal(cfg(0x10, 4) & ~0xfu, (uint32_t)BAR);
	assert_int_equal(cfg(0x10, 4) & 0x6, 0x4); /* 64-bit memory BAR */
	unsigned common = find_cap(1), notify = find_cap(2), isr = find_cap(3);
	assert_true(common && notify && isr);
	assert_int_equal(cfg(common + 8, 4), 0);    /* offset in BAR */
	assert_true(cfg(notify + 16, 4) > 0);       /* notify_off_multiplier */
	assert_int_equal(find_cap(4), 0);           /* rng has no device config */
	assert_int_equal(fk.ioeventfds, 1);         /* one queue, notify address registered */
	/* BAR sizing: all-ones then back */
	cfgw(4, 2, 0);
	cfgw(0x10, 4, 0xffffffff);
	assert_int_equal(cfg(0x10, 4) & ~0xfu, ~(VIRTIO_PCI_BAR_SIZE - 1));
	uint8_t dummy;
	assert_false(bus_read(&mmio, BAR, &dummy, 1)); /* decoding off: unmapped */
	cfgw(0x10, 4, (uint32_t)BAR);
	cfgw(4, 2, 6);
	assert_int_equal(fk.ioeventfds, 1);
	assert_int_equal(r16(0x12), 1);             /* num_queues */
}

static void negotiate_and_serve(void **state)
{
	/* MSI-X on; vector 1 (queue 0) to APIC 0 vector 0x41 */
	cfgw(0x40 + 2, 2, 0x8000);
	w32(0x4000 + 16, 0xfee00000);
	w32(0x4000 + 20, 0);
	w32(0x4000 + 24, 0x41);
	w32(0x4000 + 28, 0);                        /* unmask */
	assert_int_equal(fk.msi_addr[1], 0xfee00000);
	assert_int_equal(fk.msi_data[1], 0x41);

	w8(0x14, 1 | 2);
	w32(0x00, 1);
	assert_true(r32(0x04) & 1);                 /* VERSION_1 */
	w32(0x08, 1);
	w32(0x0c, 1);
	w32(0x08, 0);
	w32(0x0c, 0);
	w8(0x14, 1 | 2 | 8);
	assert_true(r8(0x14) & 8);                  /* FEATURES_OK accepted */

	w16(0x16, 0);
	assert_true(r16(0x18) >= 8);
	w16(0x18, 8);
	w16(0x1a, 1);
	assert_int_equal(r16(0x1a), 1);
	w32(0x20, 0x1000); w32(0x24, 0);            /* desc */
	w32(0x28, 0x2000); w32(0x2c, 0);            /* avail */
	w32(0x30, 0x3000); w32(0x34, 0);            /* used */
	w16(0x1c, 1);
	w8(0x14, 1 | 2 | 8 | 4);

	/* one 64-byte device-writable buffer at 0x10000 */
	uint8_t *desc = fk.ram + 0x1000, *avail = fk.ram + 0x2000, *used = fk.ram + 0x3000;
	uint64_t a = 0x10000;
	uint32_t l = 64;
	uint16_t fl = 2, idx = 1;
	memcpy(desc, &a, 8);
	memcpy(desc + 8, &l, 4);
	memcpy(desc + 12, &fl, 2);
	memset(avail + 4, 0, 2);                    /* ring[0] = desc 0 */
	memcpy(avail + 2, &idx, 2);
	w16(0x3000, 0);                             /* notify queue 0 (no ioeventfd here) */

	int fd = fk.irqfd_of_gsi[1];
	struct pollfd p = { fd, POLLIN, 0 };
	assert_int_equal(poll(&p, 1, 2000), 1);     /* the interrupt eventfd fired */
	uint16_t used_idx;
	uint32_t used_len;
	memcpy(&used_idx, used + 2, 2);
	memcpy(&used_len, used + 8, 4);
	assert_int_equal(used_idx, 1);
	assert_int_equal(used_len, 64);
	static const uint8_t zero[64];
	assert_memory_not_equal(fk.ram + 0x10000, zero, 64);
}

/* 8-byte reads of the MSI-X table return both dwords of an entry (the
 * message address, low and high); the PBA reads as a bitmap of pending
 * vectors, none here. */
static void msix_qword_reads(void **state)
{
	uint64_t v = 0;

	w32(0x4000 + 20, 0x12);
	assert_true(bus_read(&mmio, BAR + 0x4000 + 16, &v, 8));
	assert_int_equal(v, 0x12fee00000ull);
	w32(0x4000 + 20, 0);
	assert_true(bus_read(&mmio, BAR + 0x4000 + 16, &v, 8));
	assert_int_equal(v, 0xfee00000ull);
	assert_int_equal(r32(0x4000 + 24), 0x41);
	v = ~0ull;
	assert_true(bus_read(&mmio, BAR + 0x5000, &v, 8));
	assert_int_equal(v, 0);
}

/* A restored device stays still until virtio_pci_restore_finish: on KVM the
 * vCPUs' local APICs are restored between the two, and an interrupt sent
 * before would be lost. Runs after negotiate_and_serve (queue 0 live, one
 * buffer used). */
static void restore_goes_live_at_finish(void **state)
{
	struct virtio_pci_platform plat = { &mmio2, f_alloc, f_set, f_irqfd, f_ioev, &fk };
	struct virtq_mem mem = { f_gpa, &fk };
	struct platform_ops po = { 0 };
	struct pci_host host2;
	struct virtio_pci *vp2;
	struct virtio_dev *dev;
	struct verr err = { 0 };
	struct vbuf blob = { 0 };
	uint8_t *desc = fk.ram + 0x1000, *avail = fk.ram + 0x2000, *used = fk.ram + 0x3000;
	uint64_t a = 0x10100;
	uint16_t idx = 2, slot = 1, uidx;
	unsigned gsi0 = fk.next_gsi;

	assert_int_equal(virtio_pci_save(vp, &blob, &err), 0);
	/* the guest posted a second buffer before the snapshot was taken */
	memcpy(desc + 16, &a, 8);
	memcpy(desc + 24, &(uint32_t){ 64 }, 4);
	memcpy(desc + 28, &(uint16_t){ 2 }, 2);
	memcpy(avail + 4 + 2, &slot, 2);
	memcpy(avail + 2, &idx, 2);
	/* Until the snapshot's memory is written the saved device stays still,
	 * kicked or not: serving now would put a used entry in memory past
	 * the position the snapshot recorded. */
	w16(0x3000, 0);
	usleep(100000);
	memcpy(&uidx, used + 2, 2);
	assert_int_equal(uidx, 1);
	w8(0x14, 0);            /* the source device stops: only vp2 may serve */
	assert_int_equal(bus_init(&mmio2, "mmio2", &err), 0);
	assert_int_equal(pci_host_init(&host2, &po, &err), 0);
	assert_int_equal(virtio_rng_create(&dev, &err), 0);
	assert_int_equal(virtio_pci_create(&vp2, dev, &host2, &plat, &mem, BAR, &err), 0);
	assert_int_equal(virtio_pci_restore(vp2, blob.data, blob.len, &err), 0);
	usleep(100000);
	memcpy(&uidx, used + 2, 2);
	assert_int_equal(uidx, 1);                  /* not served yet */
	virtio_pci_restore_finish(vp2);
	/* the queue runs again from where it was, and interrupts on vp2's vector 1 */
	struct pollfd p = { fk.irqfd_of_gsi[gsi0 + 1], POLLIN, 0 };
	assert_true(p.fd > 0);
	assert_int_equal(poll(&p, 1, 2000), 1);
	memcpy(&uidx, used + 2, 2);
	assert_int_equal(uidx, 2);
	virtio_pci_restore_finish(vp2);             /* once only */
	virtio_pci_destroy(vp2);
	pci_host_destroy(&host2);
	bus_destroy(&mmio2);
	vbuf_free(&blob);
}

static void bad_features_and_reset(void **state)
{
	w8(0x14, 0);
	assert_int_equal(r8(0x14), 0);
	assert_int_equal(r16(0x1a), 0xffff);        /* vectors back to NO_VECTOR */
	w8(0x14, 1 | 2);
	w32(0x08, 1);
	w32(0x0c, 1 | (1u << 30));                  /* a feature bit never offered */
	w8(0x14, 1 | 2 | 8);
	assert_false(r8(0x14) & 8);
	w8(0x14, 0);
	/* no VERSION_1: refused too */
	w8(0x14, 1 | 2 | 8);
	assert_false(r8(0x14) & 8);
	/* queue size must be a power of two within the maximum */
	w8(0x14, 0);
	w16(0x16, 0);
	uint16_t max = r16(0x18);
	w16(0x18, 3);
	assert_int_equal(r16(0x18), max);
	w16(0x16, 5);                               /* no such queue */
	assert_int_equal(r16(0x18), 0);
}

/* A BAR moved through ECAM: the device re-registers its region on the
 * very MMIO bus whose handler is running, as a guest's MMCONFIG write does. */
static void bar_moved_through_ecam(void **state)
{
	const uint64_t ecam = 0xe0000000ull, cfg1 = ecam + (1u << 15), moved = BAR + 0x100000;
	struct verr err = { 0 };
	uint16_t v16 = 0;
	uint32_t v;

	assert_int_equal(pci_host_attach_ecam(&host, &mmio, ecam, 256, &err), 0);
	assert_true(bus_read(&mmio, cfg1, &v, 4));
	assert_int_equal(v, 0x10441af4);
	v16 = 0;
	assert_true(bus_write(&mmio, cfg1 + 0x04, &v16, 2));     /* decoding off */
	v = (uint32_t)moved;
	assert_true(bus_write(&mmio, cfg1 + 0x10, &v, 4));
	v16 = 6;
	assert_true(bus_write(&mmio, cfg1 + 0x04, &v16, 2));     /* memory + bus master */
	assert_int_equal(cfg(0x10, 4) & ~0xfu, (uint32_t)moved);
	assert_false(bus_read(&mmio, BAR + 0x12, &v16, 2));
	assert_true(bus_read(&mmio, moved + 0x12, &v16, 2));
	assert_int_equal(v16, 1);                                 /* num_queues */
	assert_int_equal(fk.ioeventfds, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(identity_and_caps),
		cmocka_unit_test(negotiate_and_serve),
		cmocka_unit_test(msix_qword_reads),
		cmocka_unit_test(restore_goes_live_at_finish),
		cmocka_unit_test(bad_features_and_reset),
		cmocka_unit_test(bar_moved_through_ecam),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
