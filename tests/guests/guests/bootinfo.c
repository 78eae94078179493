/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Checks the boot information from inside.  Command line:
 *   expect_ram=N     RAM in the e820/PVH memmap must sum to N bytes
 *   token=T          printed back as "TOKEN: T" (the harness compares)
 *   cmdline_len=N    strlen of the command line the guest received
 *   initrd_size=N    the initrd's size
 *   initrd_sum=H     FNV-1a 32 of the initrd bytes (hex)
 *   noacpi           do not require ACPI tables with valid checksums
 */
#include "rt.h"

const char guest_name[] = "bootinfo";

/* The map need not be sorted (QEMU's is not), but ranges must not overlap. */
static void check_memmap(void)
{
	const struct memrange *m = bootinfo.mem;
	for (int i = 0; i < bootinfo.nmem; i++) {
		printf("MEM: %lx-%lx type %u\n", m[i].addr, m[i].addr + m[i].size, m[i].type);
		for (int j = 0; j < i; j++)
			CHECK(!m[i].size || !m[j].size || m[i].addr >= m[j].addr + m[j].size ||
				      m[j].addr >= m[i].addr + m[i].size,
			      "memory map entries %d and %d overlap", j, i);
	}
	uint64_t ram = bootinfo_ram();
	printf("RAM: %lu\n", ram);
	if (cmdline_has("expect_ram"))
		CHECK(ram == cmdline_u64("expect_ram", 0), "RAM %lu, expected %lu", ram,
		      cmdline_u64("expect_ram", 0));
}

static void check_pvh(void)
{
	volatile uint32_t *si = (volatile uint32_t *)bootinfo.raw;
	CHECK(si[0] == 0x336ec578u, "hvm_start_info magic %x", si[0]);
	CHECK(si[1] >= 1, "hvm_start_info version %u, want >= 1", si[1]);
	CHECK(bootinfo.nmem > 0, "no PVH memmap");
	CHECK(bootinfo.rsdp != 0, "rsdp_paddr is 0");
}

static void check_cmdline(void)
{
	char tok[128];
	uint64_t len = strlen(bootinfo.cmdline);
	printf("CMDLINE_LEN: %lu\n", len);
	if (bootinfo.kind != BOOT_PVH) {
		printf("CMDLINE_SIZE: %u\n", bootinfo.cmdline_size);
		CHECK(bootinfo.cmdline_size >= len, "cmdline_size %u < command line length %lu",
		      bootinfo.cmdline_size, len);
	}
	if (cmdline_get("token", tok, sizeof(tok)))
		printf("TOKEN: %s\n", tok);
	if (cmdline_has("cmdline_len"))
		CHECK(len == cmdline_u64("cmdline_len", 0), "command line truncated: %lu bytes, expected %lu",
		      len, cmdline_u64("cmdline_len", 0));
}

static void check_initrd(void)
{
	printf("INITRD: addr %lx size %lu\n", bootinfo.initrd_addr, bootinfo.initrd_size);
	if (!cmdline_has("initrd_size"))
		return;
	uint64_t want = cmdline_u64("initrd_size", 0);
	CHECK(bootinfo.initrd_size == want, "initrd size %lu, expected %lu", bootinfo.initrd_size, want);
	CHECK(bootinfo.initrd_addr && bootinfo.initrd_addr + want <= 0x100000000ull,
	      "initrd at %lx not below 4 GiB", bootinfo.initrd_addr);
	CHECK(!(bootinfo.initrd_addr & 0xfff), "initrd at %lx not page aligned", bootinfo.initrd_addr);
	if (bootinfo.kind != BOOT_PVH) {
		uint64_t max = *(volatile uint32_t *)(bootinfo.raw + 0x22c);	/* initrd_addr_max */
		CHECK(bootinfo.initrd_addr + want - 1 <= max, "initrd ends at %lx, above initrd_addr_max %lx",
		      bootinfo.initrd_addr + want - 1, max);
	}
	bool in_ram = false;
	for (int i = 0; i < bootinfo.nmem; i++) {
		const struct memrange *m = &bootinfo.mem[i];
		if (m->type == 1 && m->addr <= bootinfo.initrd_addr &&
		    bootinfo.initrd_addr + want <= m->addr + m->size)
			in_ram = true;
	}
	CHECK(in_ram || bootinfo.nmem == 0, "initrd at %lx is not inside a RAM range", bootinfo.initrd_addr);
	uint32_t sum = fnv1a32((const void *)bootinfo.initrd_addr, want);
	printf("INITRD_SUM: %08x\n", sum);
	if (cmdline_has("initrd_sum"))
		CHECK(sum == (uint32_t)cmdline_u64("initrd_sum", 0), "initrd checksum %08x, expected %lx",
		      sum, cmdline_u64("initrd_sum", 0));
}

void guest_main(void)
{
	printf("BOOT: %s\n", bootinfo.proto);
	if (bootinfo.kind == BOOT_PVH)
		check_pvh();
	check_cmdline();
	check_memmap();
	check_initrd();
	if (!cmdline_has("noacpi")) {
		CHECK(acpi_init() == 0, "no ACPI tables (RSDP %lx)", bootinfo.rsdp);
		CHECK(acpi.bad_checksums == 0, "%d ACPI tables with bad checksums", acpi.bad_checksums);
		printf("ACPI: RSDP %lx FADT %lx MADT %lx DSDT %lx S5 %d\n", acpi.rsdp, acpi.fadt, acpi.madt,
		       acpi.dsdt, acpi.s5_typ);
	}
}
