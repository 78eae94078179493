/* SPDX-License-Identifier: Apache-2.0 */
/* PCI Express ECAM against configuration mechanism #1: both must reach the
 * same config space, register for register. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "devices/pci.h"
#include "helpers.h"

#define ECAM_BASE 0xe0000000ull
#define ECAM_BUSES 256u

struct fixture {
	struct bus pio, mmio;
	struct pci_host host;
	struct pci_dev plain, wide;   /* 256-byte and 4 KiB config space */
	unsigned hook_writes, hook_off, hook_len;
};

static void hook_write(struct pci_dev *d, unsigned off, unsigned len, uint32_t val)
{
	struct fixture *f = d->opaque;

	(void)val;
	f->hook_writes++;
	f->hook_off = off;
	f->hook_len = len;
}

/* A computed register, so the read hook is exercised on both paths. */
static void hook_read(struct pci_dev *d, unsigned off, unsigned len, uint32_t *val)
{
	(void)d;
	if (off <= 0x2e && off + len > 0x2e) {
		uint32_t shift = 8 * (0x2e - off);
		*val = (*val & ~(0xffffu << shift)) | (0xbeefu << shift);
	}
}

static int make_devices(struct fixture *f, struct verr *err)
{
	pci_dev_init(&f->plain, "plain", 0x1af4, 0x1044, 0x00ff00, false);
	pci_dev_init(&f->wide, "wide", 0x1af4, 0x1041, 0x020000, true);
	if (pci_dev_set_bar(&f->plain, 0, 0x8000, PCI_BAR_MEM64, err) ||
	    pci_dev_set_bar(&f->wide, 0, 0x1000, 0, err) ||
	    pci_dev_set_bar(&f->wide, 1, 0x40, PCI_BAR_IO, err))
		return -1;
	pci_dev_set_irq_pin(&f->plain, 1);
	f->plain.opaque = f;
	f->plain.cfg_write = hook_write;
	f->plain.cfg_read = hook_read;
	/* Something in the extended space of the wide device: an extended
	 * capability header, read-only. */
	pci_put32(f->wide.config, 0x100, 0x00010003);
	f->plain.config[0x40] = 0x5a;  /* bytes no mask lets the guest change */
	if (pci_host_add(&f->host, &f->plain, 2, err) != 2 ||
	    pci_host_add(&f->host, &f->wide, 7, err) != 7)
		return -1;
	return 0;
}

static int setup(void **state)
{
	static struct fixture fx;
	struct fixture *f = &fx;
	struct verr err = {0};

	memset(f, 0, sizeof(*f));
	if (bus_init(&f->pio, "pio", &err) || bus_init(&f->mmio, "mmio", &err) ||
	    pci_host_init(&f->host, NULL, &err) || pci_host_attach(&f->host, &f->pio, &err) ||
	    pci_host_attach_ecam(&f->host, &f->mmio, ECAM_BASE, ECAM_BUSES, &err) ||
	    make_devices(f, &err)) {
		print_error("setup: %s\n", err.msg);
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	pci_host_destroy(&f->host);
	bus_destroy(&f->mmio);
	bus_destroy(&f->pio);
	return 0;
}

static uint64_t ecam_addr(unsigned bus, unsigned dev, unsigned fn, unsigned reg)
{
	return ECAM_BASE + ((uint64_t)bus << 20 | dev << 15 | fn << 12 | reg);
}

static uint32_t ecam_rd(struct fixture *f, unsigned bus, unsigned dev, unsigned fn,
			unsigned reg, unsigned len)
{
	return in_n(&f->mmio, ecam_addr(bus, dev, fn, reg), len);
}

static void ecam_wr(struct fixture *f, unsigned dev, unsigned reg, unsigned len, uint32_t v)
{
	out_n(&f->mmio, ecam_addr(0, dev, 0, reg), v, len);
}

static uint32_t conf1_rd(struct fixture *f, unsigned bus, unsigned dev, unsigned fn,
			 unsigned reg, unsigned len)
{
	outl(&f->pio, 0xcf8, 0x80000000u | bus << 16 | dev << 11 | fn << 8 | (reg & 0xfc));
	return in_n(&f->pio, 0xcfc + (reg & 3), len);
}

static void conf1_wr(struct fixture *f, unsigned dev, unsigned reg, unsigned len, uint32_t v)
{
	outl(&f->pio, 0xcf8, 0x80000000u | dev << 11 | (reg & 0xfc));
	out_n(&f->pio, 0xcfc + (reg & 3), v, len);
}

/* Every register of every function of bus 0 (and a few other buses), in
 * every width and byte lane a dword allows, reads the same both ways. */
static void reads_equal_conf1(void **state)
{
	struct fixture *f = *state;
	static const unsigned buses[] = { 0, 1, 255 };
	unsigned compared = 0, present = 0;

	for (unsigned b = 0; b < 3; b++)
		for (unsigned dev = 0; dev < 32; dev++)
			for (unsigned fn = 0; fn < 8; fn++) {
				if (conf1_rd(f, buses[b], dev, fn, 0, 4) != 0xffffffff)
					present++;
				for (unsigned reg = 0; reg < 0x100; reg++)
					for (unsigned len = 1; len <= 4; len *= 2) {
						if ((reg & 3) + len > 4)
							continue;
						assert_int_equal(ecam_rd(f, buses[b], dev, fn, reg, len),
								 conf1_rd(f, buses[b], dev, fn, reg, len));
						compared++;
					}
			}
	assert_int_equal(present, 3);  /* bridge, plain, wide */
	assert_int_equal(compared, 3 * 32 * 8 * (256 + 192 + 64));
	/* Not vacuous: the identities and the computed register are there. */
	assert_int_equal(ecam_rd(f, 0, 0, 0, 0, 4), 0x00081b36);
	assert_int_equal(ecam_rd(f, 0, 2, 0, 0, 4), 0x10441af4);
	assert_int_equal(ecam_rd(f, 0, 2, 0, 0x2e, 2), 0xbeef);
	assert_int_equal(ecam_rd(f, 0, 2, 0, 0x2c, 4) >> 16, 0xbeef);
	assert_int_equal(ecam_rd(f, 0, 2, 0, 0x3d, 1), 1);
	assert_int_equal(ecam_rd(f, 0, 7, 0, 0x0b, 1), 0x02);
}

static void writes_seen_by_conf1(void **state)
{
	struct fixture *f = *state;

	/* BAR sizing of a 64-bit BAR through ECAM. */
	ecam_wr(f, 2, 0x10, 4, 0xffffffff);
	ecam_wr(f, 2, 0x14, 4, 0xffffffff);
	assert_int_equal(conf1_rd(f, 0, 2, 0, 0x10, 4), 0xffff8004);
	assert_int_equal(conf1_rd(f, 0, 2, 0, 0x14, 4), 0xffffffff);
	assert_int_equal(f->hook_off, 0x14);
	ecam_wr(f, 2, 0x10, 4, 0xc0008000);
	ecam_wr(f, 2, 0x14, 4, 0);
	assert_int_equal(pci_dev_bar_addr(&f->plain, 0), 0xc0008000);
	/* An I/O BAR, programmed by halves. */
	ecam_wr(f, 7, 0x14, 4, 0xffffffff);
	assert_int_equal(conf1_rd(f, 0, 7, 0, 0x14, 4), 0x0000ffc1);
	ecam_wr(f, 7, 0x14, 2, 0xc100);
	ecam_wr(f, 7, 0x16, 2, 0x1234);   /* above the 16-bit I/O space: read-only */
	assert_int_equal(pci_dev_bar_addr(&f->wide, 1), 0xc100);
	/* Command register, a word at offset 4, masked as through conf1. */
	f->hook_writes = 0;
	ecam_wr(f, 2, 0x04, 2, 0xffff);
	assert_int_equal(conf1_rd(f, 0, 2, 0, 0x04, 2), 0x0547);
	assert_int_equal(f->hook_writes, 1);
	assert_int_equal(f->hook_off, 0x04);
	assert_int_equal(f->hook_len, 2);
	/* A byte in the middle lane: the latency timer. */
	ecam_wr(f, 0, 0x0d, 1, 0x40);
	assert_int_equal(conf1_rd(f, 0, 0, 0, 0x0c, 4), 0x00004000);
	/* A word in the middle lanes (byte enables 0110): latency timer and
	 * the read-only header type. */
	ecam_wr(f, 2, 0x0c, 4, 0);
	ecam_wr(f, 2, 0x0d, 2, 0x2010);
	assert_int_equal(conf1_rd(f, 0, 2, 0, 0x0c, 4), 0x00001000);
	/* And the other way round. */
	conf1_wr(f, 2, 0x3c, 1, 0x0b);
	assert_int_equal(ecam_rd(f, 0, 2, 0, 0x3c, 4), 0x0000010b);
	/* Identity stays read-only through ECAM too. */
	ecam_wr(f, 2, 0x00, 4, 0x12345678);
	assert_int_equal(conf1_rd(f, 0, 2, 0, 0x00, 4), 0x10441af4);
	/* Writes to absent functions and buses change nothing anywhere. */
	out_n(&f->mmio, ecam_addr(1, 2, 0, 0x04), 0, 2);
	out_n(&f->mmio, ecam_addr(0, 2, 1, 0x04), 0, 2);
	assert_int_equal(conf1_rd(f, 0, 2, 0, 0x04, 2), 0x0547);
}

static void absent_read_ones(void **state)
{
	struct fixture *f = *state;
	static const unsigned widths[] = { 1, 2, 4 };

	for (unsigned w = 0; w < 3; w++) {
		uint32_t ones = widths[w] == 4 ? 0xffffffffu : (1u << (8 * widths[w])) - 1;

		assert_int_equal(ecam_rd(f, 0, 5, 0, 0, widths[w]), ones);
		assert_int_equal(ecam_rd(f, 0, 2, 3, 0, widths[w]), ones);
		assert_int_equal(ecam_rd(f, 1, 0, 0, 0, widths[w]), ones);
		assert_int_equal(ecam_rd(f, 255, 31, 7, 0xffc, widths[w]), ones);
		assert_int_equal(ecam_rd(f, 0, 5, 0, 0x100, widths[w]), ones);
	}
}

/* Past 0xff: the PCIe "no extended capability" header for a 256-byte
 * function, the real bytes for a 4 KiB one; writes go nowhere. */
static void extended_space(void **state)
{
	struct fixture *f = *state;
	uint8_t before[PCI_CFG_EXP_SIZE];

	assert_int_equal(ecam_rd(f, 0, 0, 0, 0x100, 4), 0);
	assert_int_equal(ecam_rd(f, 0, 2, 0, 0x100, 4), 0);
	assert_int_equal(ecam_rd(f, 0, 2, 0, 0xffc, 4), 0);
	assert_int_equal(ecam_rd(f, 0, 2, 0, 0xfff, 1), 0);
	assert_int_equal(ecam_rd(f, 0, 7, 0, 0x100, 4), 0x00010003);
	assert_int_equal(ecam_rd(f, 0, 7, 0, 0x102, 2), 0x0001);
	assert_int_equal(ecam_rd(f, 0, 7, 0, 0xffc, 4), 0);

	memcpy(before, f->plain.config, sizeof(before));
	f->hook_writes = 0;
	ecam_wr(f, 2, 0x100, 4, 0xffffffff);
	ecam_wr(f, 2, 0xffe, 2, 0xffff);
	assert_memory_equal(before, f->plain.config, sizeof(before));
	assert_int_equal(f->hook_writes, 0);
	assert_int_equal(ecam_rd(f, 0, 2, 0, 0x100, 4), 0);
	ecam_wr(f, 7, 0x100, 4, 0xffffffff);
	assert_int_equal(ecam_rd(f, 0, 7, 0, 0x100, 4), 0x00010003);
	/* Read-only bytes below 0x100 stay so. */
	ecam_wr(f, 2, 0x40, 1, 0);
	assert_int_equal(ecam_rd(f, 0, 2, 0, 0x40, 1), 0x5a);
}

static void bad_widths(void **state)
{
	struct fixture *f = *state;
	uint64_t q = 0;
	uint32_t cmd;

	/* 8 bytes: all-ones, and a write changes nothing. */
	assert_true(bus_read(&f->mmio, ecam_addr(0, 2, 0, 0), &q, 8));
	assert_int_equal(q, UINT64_MAX);
	cmd = conf1_rd(f, 0, 2, 0, 0x04, 4);
	q = 0;
	assert_true(bus_write(&f->mmio, ecam_addr(0, 2, 0, 0x00), &q, 8));
	assert_int_equal(conf1_rd(f, 0, 2, 0, 0x04, 4), cmd);
	/* Crossing a dword: a word at 3, a dword at 2 or 1. */
	assert_int_equal(ecam_rd(f, 0, 2, 0, 0x03, 2), 0xffff);
	assert_int_equal(ecam_rd(f, 0, 2, 0, 0x02, 4), 0xffffffff);
	assert_int_equal(ecam_rd(f, 0, 2, 0, 0x01, 4), 0xffffffff);
	ecam_wr(f, 2, 0x0f, 2, 0);      /* header type + next cache line: dropped */
	ecam_wr(f, 2, 0x0e, 4, 0);
	f->hook_writes = 0;
	ecam_wr(f, 2, 0x03, 2, 0x0000); /* status high byte + command low byte */
	assert_int_equal(f->hook_writes, 0);
	assert_int_equal(conf1_rd(f, 0, 2, 0, 0x04, 4), cmd);
	/* The window's last byte is claimed, one past it is not; an access
	 * straddling the end is not claimed either. */
	assert_true(bus_read(&f->mmio, ECAM_BASE + (256ull << 20) - 1, &q, 1));
	assert_false(bus_read(&f->mmio, ECAM_BASE + (256ull << 20), &q, 1));
	assert_false(bus_read(&f->mmio, ECAM_BASE + (256ull << 20) - 2, &q, 4));
	assert_false(bus_read(&f->mmio, ECAM_BASE - 1, &q, 1));
}

static void attach_errors(void **state)
{
	struct fixture *f = *state;
	struct pci_host h2;
	struct bus mmio2;
	struct verr err = {0};

	assert_int_equal(pci_host_attach_ecam(&f->host, &f->mmio, 0xd0000000, 1, &err), -EEXIST);
	verr_clear(&err);
	assert_int_equal(pci_host_init(&h2, NULL, &err), 0);
	assert_int_equal(bus_init(&mmio2, "mmio", &err), 0);
	assert_int_equal(pci_host_attach_ecam(&h2, &mmio2, ECAM_BASE, 0, &err), -EINVAL);
	verr_clear(&err);
	assert_int_equal(pci_host_attach_ecam(&h2, &mmio2, ECAM_BASE, 257, &err), -EINVAL);
	verr_clear(&err);
	assert_int_equal(pci_host_attach_ecam(&h2, &mmio2, ECAM_BASE + 0x1000, 1, &err), -EINVAL);
	verr_clear(&err);
	assert_int_equal(pci_host_attach_ecam(&h2, &mmio2, UINT64_MAX & ~0xfffffull, 2, &err),
			 -EINVAL);
	verr_clear(&err);
	/* The first host's window is taken on the shared bus. */
	assert_int_equal(pci_host_attach_ecam(&h2, &f->mmio, ECAM_BASE + (255ull << 20), 2, &err),
			 -EEXIST);
	assert_non_null(strstr(err.msg, "pci-ecam"));
	verr_clear(&err);
	/* A small window: bus 1 is outside it. */
	assert_int_equal(pci_host_attach_ecam(&h2, &mmio2, 0x80000000, 1, &err), 0);
	assert_int_equal(in_n(&mmio2, 0x80000000, 4), 0x00081b36);
	assert_false(bus_read(&mmio2, 0x80000000 + (1u << 20), &(uint32_t){0}, 4));
	pci_host_destroy(&h2);
	bus_destroy(&mmio2);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(reads_equal_conf1), T(writes_seen_by_conf1), T(absent_read_ones),
		T(extended_space), T(bad_widths), T(attach_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
