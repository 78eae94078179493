/* SPDX-License-Identifier: Apache-2.0 */
/* Loaders, e820 and CPUID checked from memory, without KVM. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "arch/x86/boot.h"
#include "arch/x86/cpuid.h"

#define MEM (64ull << 20)

struct membuf {
	const uint8_t *data;
};

static int mem_read_at(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct membuf *m = ctx;
	memcpy(buf, m->data + off, len);
	return (int)len;
}

static struct boot_reader reader(struct membuf *m, const uint8_t *data, size_t len, const char *name)
{
	m->data = data;
	return (struct boot_reader){ mem_read_at, m, len, name };
}

static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static uint8_t *make_bzimage(size_t *len)
{
	size_t n = 5 * 512 + 4096;
	uint8_t *b = calloc(1, n);
	b[0x1f1] = 4;
	put16(b + 0x1fe, 0xaa55);
	b[0x201] = 0x66;
	memcpy(b + 0x202, "HdrS", 4);
	put16(b + 0x206, 0x020f);
	b[0x211] = 1;
	put32(b + 0x22c, 0x37ffffff);
	put16(b + 0x236, 1);
	put32(b + 0x238, 2048);
	put32(b + 0x260, 0x20000);
	memset(b + 5 * 512, 0x90, 4096); /* "kernel" */
	*len = n;
	return b;
}

static struct guest_mem g;

static int setup_mem(void **state)
{
	(void)state;
	struct verr err = { 0 };
	if (guest_mem_create(&g, MEM, &err) < 0 || guest_mem_add_region(&g, 0, 0, MEM, &err) < 0)
		return -1;
	return 0;
}

static int teardown_mem(void **state)
{
	(void)state;
	guest_mem_destroy(&g);
	return 0;
}

static void e820_sums_to_ram_minus_holes(void **state)
{
	(void)state;
	uint64_t sizes[] = { 64ull << 20, 3ull << 30, 4ull << 30, 5ull << 30 };
	for (unsigned i = 0; i < 4; i++) {
		struct x86_mem_layout l = x86_mem_layout_for(sizes[i]);
		struct e820_entry e[E820_MAX];
		unsigned n = x86_build_e820(&l, e, E820_MAX);
		uint64_t ram = 0;
		for (unsigned j = 0; j < n; j++)
			if (e[j].type == E820_RAM)
				ram += e[j].size;
		assert_int_equal(ram, sizes[i] - 0x60400);
		assert_int_equal(n, sizes[i] > X86_LOWMEM_MAX ? 6 : 5);
		/* ECAM reserved, never RAM. */
		assert_int_equal(e[4].addr, X86_PCI_ECAM_BASE);
		assert_int_equal(e[4].size, X86_PCI_ECAM_SIZE);
		assert_int_equal(e[4].type, E820_RESERVED);
	}
}

static void bzimage_boot_params(void **state)
{
	(void)state;
	size_t len;
	uint8_t *bz = make_bzimage(&len);
	uint8_t initrd[10000];
	struct membuf km, im;
	struct boot_reader k = reader(&km, bz, len, "bz"), ir;
	struct x86_mem_layout l = x86_mem_layout_for(MEM);
	struct boot_params_in in = { &l, "console=ttyS0 token=abc", NULL, 0xe0000 };
	struct boot_result out;
	struct verr err = { 0 };

	for (size_t i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i * 7);
	ir = reader(&im, initrd, sizeof(initrd), "initrd");
	in.initrd = &ir;
	assert_int_equal(x86_boot_load(&g, &k, &in, &out, &err), 0);
	assert_int_equal(out.kind, BOOT_LINUX64);
	assert_int_equal(out.entry, 0x100200);
	assert_int_equal(out.regs.rip, 0x100200);
	assert_int_equal(out.regs.rsi, X86_ZERO_PAGE);
	assert_true(out.sregs.efer & X86_EFER_LMA);
	const uint8_t *zp = guest_mem_ptr(&g, X86_ZERO_PAGE, 4096);
	assert_memory_equal(zp + 0x202, "HdrS", 4);
	assert_int_equal(zp[0x210], 0xff);
	assert_int_equal(get32(zp + 0x228), X86_CMDLINE);
	assert_string_equal((const char *)guest_mem_ptr(&g, X86_CMDLINE, 1), "console=ttyS0 token=abc");
	assert_int_equal(get64(zp + 0x070), 0xe0000);
	assert_int_equal(zp[0x1e8], 5);
	uint32_t rd = get32(zp + 0x218);
	assert_int_equal(get32(zp + 0x21c), sizeof(initrd));
	assert_int_equal(rd % 4096, 0);
	assert_true(rd + sizeof(initrd) <= MEM);
	assert_true(rd >= out.kernel_end);
	assert_memory_equal(guest_mem_ptr(&g, rd, sizeof(initrd)), initrd, sizeof(initrd));
	/* the kernel payload landed at 1 MiB */
	assert_int_equal(*(uint8_t *)guest_mem_ptr(&g, 0x100000, 1), 0x90);
	/* identity map with user bit for 4 GiB */
	assert_int_equal(*(uint64_t *)guest_mem_ptr(&g, X86_PML4, 8), X86_PDPT | 7);
	assert_int_equal(((uint64_t *)guest_mem_ptr(&g, X86_PD, 4 * 4096))[2047], (2047ull << 21) | 0x87);
	free(bz);
}

static void bzimage_cmdline_too_long(void **state)
{
	(void)state;
	size_t len;
	uint8_t *bz = make_bzimage(&len);
	char *cmd = malloc(3000);
	struct membuf km;
	struct boot_reader k = reader(&km, bz, len, "bz");
	struct x86_mem_layout l = x86_mem_layout_for(MEM);
	struct boot_params_in in = { &l, cmd, NULL, 0 };
	struct boot_result out;
	struct verr err = { 0 };

	memset(cmd, 'a', 2999);
	cmd[2999] = 0;
	assert_int_equal(x86_boot_load(&g, &k, &in, &out, &err), -E2BIG);
	assert_non_null(strstr(err.msg, "at most 2048"));
	free(cmd);
	free(bz);
}

static void initrd_too_big(void **state)
{
	(void)state;
	size_t len;
	uint8_t *bz = make_bzimage(&len);
	struct membuf km, im;
	struct boot_reader k = reader(&km, bz, len, "bz");
	struct boot_reader ir = reader(&im, bz, len, "initrd");
	struct x86_mem_layout l = x86_mem_layout_for(MEM);
	struct boot_params_in in = { &l, NULL, &ir, 0 };
	struct boot_result out;
	struct verr err = { 0 };

	ir.size = MEM + 1; /* never read: refused before */
	assert_int_equal(x86_boot_load(&g, &k, &in, &out, &err), -EFBIG);
	assert_non_null(strstr(err.msg, "larger than guest RAM"));
	free(bz);
}

static void pvh_start_info(void **state)
{
	(void)state;
	uint8_t elf[0x2000] = { 0 };
	struct membuf km;
	struct x86_mem_layout l = x86_mem_layout_for(MEM);
	struct boot_params_in in = { &l, "pvh", NULL, 0xe0000 };
	struct boot_result out;
	struct verr err = { 0 };
	uint8_t note[20];

	memcpy(elf, "\x7f" "ELF\x02\x01\x01", 7);
	put16(elf + 16, 2);
	put16(elf + 18, 62);
	memcpy(elf + 32, &(uint64_t){ 64 }, 8);
	put16(elf + 54, 56);
	put16(elf + 56, 2);
	/* PT_NOTE at 0x400, PT_LOAD of 0x100 bytes at 0x200000 */
	put32(elf + 64, 4);
	memcpy(elf + 64 + 8, &(uint64_t){ 0x400 }, 8);
	memcpy(elf + 64 + 32, &(uint64_t){ 20 }, 8);
	put32(elf + 120, 1);
	memcpy(elf + 120 + 8, &(uint64_t){ 0x1000 }, 8);
	memcpy(elf + 120 + 24, &(uint64_t){ 0x200000 }, 8);
	memcpy(elf + 120 + 32, &(uint64_t){ 0x100 }, 8);
	memcpy(elf + 120 + 40, &(uint64_t){ 0x2000 }, 8);
	put32(note, 4);
	put32(note + 4, 4);
	put32(note + 8, 18);
	memcpy(note + 12, "Xen", 4);
	put32(note + 16, 0x200010);
	memcpy(elf + 0x400, note, sizeof(note));
	memset(elf + 0x1000, 0xcc, 0x100);
	memset(guest_mem_ptr(&g, 0x200100, 16), 0x55, 16); /* must be cleared (bss) */

	struct boot_reader k = reader(&km, elf, sizeof(elf), "pvh.elf");
	assert_int_equal(x86_boot_load(&g, &k, &in, &out, &err), 0);
	assert_int_equal(out.kind, BOOT_PVH);
	assert_int_equal(out.regs.rip, 0x200010);
	assert_int_equal(out.regs.rbx, X86_PVH_START_INFO);
	assert_int_equal(out.sregs.cr0 & X86_CR0_PG, 0);
	const uint8_t *si = guest_mem_ptr(&g, X86_PVH_START_INFO, 64);
	assert_int_equal(get32(si), 0x336ec578);
	assert_int_equal(get32(si + 4), 1);
	assert_int_equal(get64(si + 24), X86_CMDLINE);
	assert_int_equal(get64(si + 32), 0xe0000);
	assert_int_equal(get32(si + 48), 5);
	assert_int_equal(*(uint8_t *)guest_mem_ptr(&g, 0x200000, 1), 0xcc);
	assert_int_equal(*(uint8_t *)guest_mem_ptr(&g, 0x200100, 1), 0);
}

static const struct x86_cpuid_entry *find(const struct x86_cpuid_entry *e, unsigned n,
					  uint32_t fn, uint32_t idx)
{
	for (unsigned i = 0; i < n; i++)
		if (e[i].function == fn && e[i].index == idx)
			return &e[i];
	return NULL;
}

static void cpuid_topology(void **state)
{
	(void)state;
	struct x86_cpuid_entry sup[] = {
		{ 0, 0, 0, 0xd, 0, 0, 0 },
		{ 1, 0, 0, 0, 0x800, 0, 0 },
		{ 0xb, 0, 1, 1, 1, 0x100, 0 },
	};
	struct x86_cpuid_entry out[3 + X86_CPUID_EXTRA];
	unsigned n;
	struct verr err = { 0 };

	assert_int_equal(x86_cpuid_for_vcpu(sup, 3, 2, 4, out, &n, &err), 0);
	const struct x86_cpuid_entry *l1 = find(out, n, 1, 0);
	assert_non_null(l1);
	assert_int_equal(l1->ebx >> 24, 2);
	assert_int_equal((l1->ebx >> 16) & 0xff, 4);
	assert_true(l1->ecx & (1u << 31));
	const struct x86_cpuid_entry *core = find(out, n, 0xb, 1);
	assert_non_null(core);
	assert_int_equal(core->ebx, 4);
	assert_int_equal(core->edx, 2);
	assert_int_equal(core->eax, 2);
	assert_non_null(find(out, n, 0x40000000, 0));
	assert_true(x86_cpuid_for_vcpu(sup, 3, 4, 4, out, &n, &err) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(e820_sums_to_ram_minus_holes),
		cmocka_unit_test(bzimage_boot_params),
		cmocka_unit_test(bzimage_cmdline_too_long),
		cmocka_unit_test(initrd_too_big),
		cmocka_unit_test(pvh_start_info),
		cmocka_unit_test(cpuid_topology),
	};
	return cmocka_run_group_tests(tests, setup_mem, teardown_mem);
}
