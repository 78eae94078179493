/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Checks the boot information from inside.  Command line:
 *   expect_ram=N     RAM in the e820/PVH memmap must sum to N bytes
 *   token=T          printed back as "TOKEN: T" (the harness compares)
 *   cmdline_len=N    strlen of the command line the guest received
 *   initrd_size=N    the initrd's size
 *   initrd_sum=H     FNV-1a 32 of the initrd bytes (hex)
 *   noacpi           do not require ACPI tables with valid checksums
 *   platform=vireo   check the machine against docs/platform.md: boot
 *                    structures, memory map, ACPI and MP tables as written
 *                    there (needs expect_ram)
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

static bool has_range(uint64_t start, uint64_t end, uint32_t type)
{
	for (int i = 0; i < bootinfo.nmem; i++)
		if (bootinfo.mem[i].addr == start && bootinfo.mem[i].size == end - start &&
		    bootinfo.mem[i].type == type)
			return true;
	return false;
}

static void check_vireo_memory(void)
{
	uint64_t mem = cmdline_u64("expect_ram", 0) + 0x60400, gib = 1ull << 30;
	CHECK(cmdline_has("expect_ram"), "platform=vireo needs expect_ram");
	uint64_t low = mem < 3 * gib ? mem : 3 * gib;
	CHECK(has_range(0, 0x9fc00, 1), "no RAM entry [0, 0x9fc00)");
	CHECK(has_range(0x9fc00, 0xa0000, 2), "no reserved EBDA entry [0x9fc00, 0xa0000)");
	CHECK(has_range(0xe0000, 0x100000, 2), "no reserved entry [0xe0000, 0x100000)");
	CHECK(has_range(0x100000, low, 1), "no RAM entry [1 MiB, %lx)", low);
	CHECK(has_range(0xe0000000, 0xe0100000, 2), "no reserved ECAM entry [0xe0000000, 0xe0100000) (bus 0)");
	if (mem > 3 * gib)
		CHECK(has_range(4 * gib, 4 * gib + mem - low, 1), "no RAM entry above 4 GiB");
	CHECK(bootinfo.nmem == 5 + (mem > 3 * gib), "%d memory map entries", bootinfo.nmem);
}

static void check_vireo_tables(void)
{
	CHECK(acpi.rsdp == 0xe0000, "RSDP at %lx, not 0xe0000", acpi.rsdp);
	CHECK(!acpi.hw_reduced, "FADT says HW-reduced ACPI");
	CHECK(acpi.pm1a_evt == 0x600 && acpi.pm1a_cnt == 0x604 && acpi.pm_tmr == 0x608,
	      "PM blocks evt %x cnt %x tmr %x", acpi.pm1a_evt, acpi.pm1a_cnt, acpi.pm_tmr);
	CHECK(acpi.sci_int == 9, "SCI %u, not 9", acpi.sci_int);
	CHECK(acpi.reset_sup && acpi.reset_reg.space == 1 && acpi.reset_reg.addr == 0xcf9 &&
		      acpi.reset_val == 6,
	      "reset register: supported %d space %u addr %lx value %x", acpi.reset_sup,
	      acpi.reset_reg.space, acpi.reset_reg.addr, acpi.reset_val);
	CHECK(acpi.s5_typ == 5, "\\_S5 SLP_TYP %d, not 5", acpi.s5_typ);
	CHECK(acpi.lapic_addr == 0xfee00000, "MADT local APIC address %x", acpi.lapic_addr);
	for (int i = 0; i < acpi.ncpus; i++)
		CHECK(acpi.apic_ids[i] == i, "MADT CPU %d has APIC ID %u", i, acpi.apic_ids[i]);
	CHECK(acpi.ioapics == 1 && acpi.ioapic_id == 0 && acpi.ioapic_addr == 0xfec00000 &&
		      acpi.ioapic_gsi_base == 0,
	      "MADT IOAPICs %d, first id %u at %x GSI base %u", acpi.ioapics, acpi.ioapic_id,
	      acpi.ioapic_addr, acpi.ioapic_gsi_base);
	CHECK(acpi.isa0_overridden && acpi.isa0_gsi == 2, "no MADT override ISA 0 -> GSI 2");
	struct mptable mp;
	CHECK(mp_scan(&mp) == 0, "no MP table");
	CHECK(!mp.bad_checksums && !mp.count_mismatch, "MP table checksum or entry count wrong");
	CHECK(mp.ncpus == acpi.ncpus && mp.bsp_apic_id == 0, "MP: %d CPUs, BSP %d", mp.ncpus,
	      mp.bsp_apic_id);
	CHECK(mp.isa_buses == 1 && mp.ioapics == 1 && mp.ioapic_addr == 0xfec00000 && mp.irq_entries > 0,
	      "MP: %d ISA buses, %d IOAPICs at %x, %d I/O interrupt entries", mp.isa_buses, mp.ioapics,
	      mp.ioapic_addr, mp.irq_entries);
}

/* Where docs/platform.md puts the boot structures. */
static void check_vireo_boot(void)
{
	if (bootinfo.kind == BOOT_PVH) {
		CHECK(bootinfo.raw == 0x6000, "hvm_start_info at %lx, not 0x6000", bootinfo.raw);
		return;
	}
	CHECK(bootinfo.raw == 0x7000, "boot_params at %lx, not 0x7000", bootinfo.raw);
	uint8_t loader = *(volatile uint8_t *)(bootinfo.raw + 0x210);
	CHECK(loader == 0xff, "type_of_loader %x, not 0xff", loader);
	if (*bootinfo.cmdline)
		CHECK((uint64_t)bootinfo.cmdline == 0x20000, "command line at %p, not 0x20000",
		      (const void *)bootinfo.cmdline);
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
	char platform[16];
	if (cmdline_get("platform", platform, sizeof(platform))) {
		CHECK(!strcmp(platform, "vireo"), "unknown platform=%s", platform);
		check_vireo_boot();
		check_vireo_memory();
		check_vireo_tables();
		printf("PLATFORM: matches docs/platform.md\n");
	}
}
