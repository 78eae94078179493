/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "devices/pci.h"
#include "helpers.h"

struct fixture {
	struct bus bus;
	struct pci_host host;
	struct plat_rec plat;
	struct pci_dev dev;
	unsigned hook_writes, hook_off;
};

static int setup(void **state)
{
	static struct fixture fx;
	struct fixture *f = &fx;
	struct verr err = {0};
	struct platform_ops plat;

	memset(f, 0, sizeof(*f));
	plat = plat_rec_ops(&f->plat);
	if (bus_init(&f->bus, "pio", &err) || pci_host_init(&f->host, &plat, &err) ||
	    pci_host_attach(&f->host, &f->bus, &err))
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	pci_host_destroy(&f->host);
	bus_destroy(&f->bus);
	return 0;
}

static uint32_t addr(unsigned bus, unsigned slot, unsigned fn, unsigned reg)
{
	return 0x80000000u | bus << 16 | slot << 11 | fn << 8 | (reg & 0xfc);
}

static uint32_t cfg_readl(struct fixture *f, unsigned slot, unsigned reg)
{
	outl(&f->bus, 0xcf8, addr(0, slot, 0, reg));
	return inl(&f->bus, 0xcfc);
}

static void cfg_writel(struct fixture *f, unsigned slot, unsigned reg, uint32_t v)
{
	outl(&f->bus, 0xcf8, addr(0, slot, 0, reg));
	outl(&f->bus, 0xcfc, v);
}

static void host_bridge(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(cfg_readl(f, 0, 0x00), 0x00081b36);
	assert_int_equal(cfg_readl(f, 0, 0x08) >> 8, 0x060000);
	assert_int_equal((cfg_readl(f, 0, 0x0c) >> 16) & 0xff, 0x00);
	/* IDs are read-only. */
	cfg_writel(f, 0, 0x00, 0x12345678);
	assert_int_equal(cfg_readl(f, 0, 0x00), 0x00081b36);
	/* Linux's type-1 probe: the address register reads back. */
	outl(&f->bus, 0xcf8, 0x80000000);
	assert_int_equal(inl(&f->bus, 0xcf8), 0x80000000);
	outl(&f->bus, 0xcf8, 0xffffffff);
	assert_int_equal(inl(&f->bus, 0xcf8), 0x80fffffc);
}

static void byte_word_offsets(void **state)
{
	struct fixture *f = *state;

	outl(&f->bus, 0xcf8, addr(0, 0, 0, 0));
	assert_int_equal(inb(&f->bus, 0xcfc), 0x36);
	assert_int_equal(inb(&f->bus, 0xcfd), 0x1b);
	assert_int_equal(inb(&f->bus, 0xcfe), 0x08);
	assert_int_equal(inb(&f->bus, 0xcff), 0x00);
	assert_int_equal(inw(&f->bus, 0xcfc), 0x1b36);
	assert_int_equal(inw(&f->bus, 0xcfe), 0x0008);
	outl(&f->bus, 0xcf8, addr(0, 0, 0, 0x08));
	assert_int_equal(inb(&f->bus, 0xcff), 0x06);  /* base class */
	/* The latency timer byte is writable, byte-wise. */
	outl(&f->bus, 0xcf8, addr(0, 0, 0, 0x0c));
	outb(&f->bus, 0xcfd, 0x40);
	assert_int_equal(inl(&f->bus, 0xcfc), 0x00004000);
	outw(&f->bus, 0xcfc, 0x1234);  /* cache line and latency */
	assert_int_equal(inl(&f->bus, 0xcfc), 0x00001234);
	/* A word at 0xcfe reaches register + 2. */
	outl(&f->bus, 0xcf8, addr(0, 0, 0, 0x3c));
	outw(&f->bus, 0xcfe, 0xffff);  /* pin read-only, and 0x3f too */
	outb(&f->bus, 0xcfc, 0x0b);
	assert_int_equal(inl(&f->bus, 0xcfc), 0x0000000b);
}

static void absent_devices(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(cfg_readl(f, 5, 0x00), 0xffffffff);
	assert_int_equal(cfg_readl(f, 31, 0x00), 0xffffffff);
	outl(&f->bus, 0xcf8, addr(1, 0, 0, 0));   /* other bus */
	assert_int_equal(inl(&f->bus, 0xcfc), 0xffffffff);
	outl(&f->bus, 0xcf8, addr(0, 0, 1, 0));   /* other function */
	assert_int_equal(inw(&f->bus, 0xcfe), 0xffff);
	outl(&f->bus, 0xcf8, 0x00000000);         /* enable bit clear */
	assert_int_equal(inl(&f->bus, 0xcfc), 0xffffffff);
	outl(&f->bus, 0xcfc, 0);                   /* dropped */
	assert_int_equal(cfg_readl(f, 0, 0x00), 0x00081b36);
	assert_int_equal(pci_host_cfg_read(&f->host, 0, 0, 0x100, 4), 0xffffffff);
	assert_int_equal(pci_host_cfg_read(&f->host, 0, 0, 0xfe, 4), 0xffffffff);
}

static void reset_register(void **state)
{
	struct fixture *f = *state;

	outb(&f->bus, 0xcf9, 0x02);
	assert_int_equal(inb(&f->bus, 0xcf9), 0x02);
	assert_int_equal(f->plat.resets, 0);
	outb(&f->bus, 0xcf9, 0x06);
	assert_int_equal(f->plat.resets, 1);
	assert_int_equal(inb(&f->bus, 0xcf9), 0x06);
	/* A dword write to 0xcf8 is the address register, never a reset. */
	outl(&f->bus, 0xcf8, 0x80000400);
	assert_int_equal(f->plat.resets, 1);
}

static void hook_write(struct pci_dev *d, unsigned off, unsigned len, uint32_t val)
{
	struct fixture *f = d->opaque;

	f->hook_writes++;
	f->hook_off = off;
}

static void hook_read(struct pci_dev *d, unsigned off, unsigned len, uint32_t *val)
{
	if (off == PCI_SUBSYSTEM_ID && len == 2)
		*val = 0xbeef;
}

static void device_bars(void **state)
{
	struct fixture *f = *state;
	struct verr err = {0};
	struct pci_dev *d = &f->dev;

	pci_dev_init(d, "test", 0x1af4, 0x1041, 0x020000, true);
	assert_int_equal(pci_dev_set_bar(d, 0, 0x1000, 0, &err), 0);
	assert_int_equal(pci_dev_set_bar(d, 1, 0x20, PCI_BAR_IO, &err), 0);
	assert_int_equal(pci_dev_set_bar(d, 2, 1 << 20, PCI_BAR_MEM64 | PCI_BAR_PREFETCH, &err), 0);
	assert_int_equal(pci_dev_set_bar(d, 3, 0x1000, 0, &err), -EEXIST);
	verr_clear(&err);
	assert_int_equal(pci_dev_set_bar(d, 5, 0x1000, PCI_BAR_MEM64, &err), -EINVAL);
	verr_clear(&err);
	assert_int_equal(pci_dev_set_bar(d, 4, 0x1800, 0, &err), -EINVAL);
	verr_clear(&err);
	pci_dev_set_irq_pin(d, 1);
	d->opaque = f;
	d->cfg_write = hook_write;
	d->cfg_read = hook_read;
	assert_int_equal(pci_host_add(&f->host, d, 3, &err), 3);
	assert_int_equal(pci_host_add(&f->host, d, PCI_SLOT_ANY, &err), -EEXIST);
	verr_clear(&err);

	assert_int_equal(cfg_readl(f, 3, 0x00), 0x10411af4);
	assert_int_equal(cfg_readl(f, 3, 0x3c), 0x00000100);
	/* Sizing: all-ones reads back the size mask and the flag bits. */
	cfg_writel(f, 3, 0x10, 0xffffffff);
	assert_int_equal(cfg_readl(f, 3, 0x10), 0xfffff000);
	cfg_writel(f, 3, 0x14, 0xffffffff);
	assert_int_equal(cfg_readl(f, 3, 0x14), 0x0000ffe1);
	cfg_writel(f, 3, 0x18, 0xffffffff);
	cfg_writel(f, 3, 0x1c, 0xffffffff);
	assert_int_equal(cfg_readl(f, 3, 0x18), 0xfff0000c);
	assert_int_equal(cfg_readl(f, 3, 0x1c), 0xffffffff);
	assert_int_equal(cfg_readl(f, 3, 0x20), 0x00000000); /* unused BAR */
	cfg_writel(f, 3, 0x20, 0xffffffff);
	assert_int_equal(cfg_readl(f, 3, 0x20), 0x00000000);
	/* Programming. */
	cfg_writel(f, 3, 0x10, 0xfe001234);
	cfg_writel(f, 3, 0x14, 0xc040);
	cfg_writel(f, 3, 0x18, 0x00200000);
	cfg_writel(f, 3, 0x1c, 0x1);
	assert_int_equal(pci_dev_bar_addr(d, 0), 0xfe001000);
	assert_int_equal(pci_dev_bar_addr(d, 1), 0xc040);
	assert_int_equal(pci_dev_bar_addr(d, 2), 0x100200000ull);
	assert_int_equal(f->hook_off, 0x1c);
	assert_int_equal(f->hook_writes, 9);
	/* Command register masked; status error bits write-one-to-clear. */
	d->config[PCI_STATUS + 1] = 0x80 | 0x02;  /* parity error, devsel timing */
	cfg_writel(f, 3, 0x04, 0xffffffff);
	assert_int_equal(cfg_readl(f, 3, 0x04), 0x02000547);
	/* The read hook supplies computed registers. */
	outl(&f->bus, 0xcf8, addr(0, 3, 0, 0x2c));
	assert_int_equal(inw(&f->bus, 0xcfe), 0xbeef);
	/* Extended config space is only reachable through ECAM (test_ecam.c). */
	assert_int_equal(pci_host_cfg_read(&f->host, 0, 3 << 3, 0x100, 4), 0);
	assert_int_equal(pci_host_cfg_read(&f->host, 0, 3 << 3, 0xffe, 2), 0);
	assert_int_equal(pci_host_cfg_read(&f->host, 0, 3 << 3, 0xffe, 4), 0xffffffff);

	pci_host_remove(&f->host, d);
	assert_int_equal(cfg_readl(f, 3, 0x00), 0xffffffff);
	assert_int_equal(pci_host_add(&f->host, d, PCI_SLOT_ANY, &err), 1);
	assert_int_equal(pci_host_add(&f->host, &f->host.bridge, 1, &err), -EBUSY);
	assert_non_null(strstr(err.msg, "test"));
}

static void save_restore(void **state)
{
	struct fixture *f = *state;
	struct pci_host_state st;

	cfg_writel(f, 0, 0x0c, 0x00002010);
	outl(&f->bus, 0xcf8, addr(0, 0, 0, 0x08));
	pci_host_save(&f->host, &st);
	cfg_writel(f, 0, 0x0c, 0);
	st.bridge_config[0] = 0x00;   /* identity is not writable, even here */
	pci_host_restore(&f->host, &st);
	assert_int_equal(inl(&f->bus, 0xcf8), addr(0, 0, 0, 0x08));
	assert_int_equal(cfg_readl(f, 0, 0x0c), 0x00002010);
	assert_int_equal(cfg_readl(f, 0, 0x00), 0x00081b36);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(host_bridge), T(byte_word_offsets), T(absent_devices), T(reset_register),
		T(device_bars), T(save_restore),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
