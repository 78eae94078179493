/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Starts every AP with INIT/SIPI/SIPI and waits for each to report its APIC
 * ID.  Command line:
 *   expect_cpus=N    MADT and MP table must list N enabled processors
 *   nomp             do not require an MP table (firmware without one)
 *   mp_lenient       accept an MP table whose entry count is wrong
 */
#include "rt.h"

const char guest_name[] = "smp";

static void check_tables(int n, int bsp)
{
	CHECK(acpi_init() == 0, "no ACPI tables");
	printf("MADT: %d CPUs\n", acpi.ncpus);
	CHECK(acpi.ncpus == n, "MADT lists %d CPUs, expected %d", acpi.ncpus, n);
	if (cmdline_has("nomp"))
		return;
	struct mptable mp;
	CHECK(mp_scan(&mp) == 0, "no MP floating pointer / configuration table");
	printf("MP: %d CPUs, BSP %d\n", mp.ncpus, mp.bsp_apic_id);
	CHECK(mp.bad_checksums == 0, "MP configuration table checksum is wrong");
	CHECK(!mp.count_mismatch || cmdline_has("mp_lenient"), "MP entry count disagrees with the table");
	CHECK(mp.ncpus == n, "MP table lists %d CPUs, expected %d", mp.ncpus, n);
	CHECK(mp.bsp_apic_id == bsp, "MP table flags APIC %d as BSP, we are %d", mp.bsp_apic_id, bsp);
}

static void send_ipi(int apic, uint32_t low)
{
	lapic_write(0x310, (uint32_t)apic << 24);
	lapic_write(0x300, low);
	for (int i = 0; i < 100000 && (lapic_read(0x300) & (1u << 12)); i++)
		cpu_relax();	/* delivery status: wait for "idle" */
}

static bool start_ap(int apic)
{
	send_ipi(apic, 0x4500);				/* INIT, level assert */
	udelay(10000);
	for (int sipi = 0; sipi < 2 && !ap_seen[apic]; sipi++) {
		send_ipi(apic, 0x4600 | (AP_TRAMPOLINE >> 12));	/* start-up */
		udelay(200);
	}
	/* Real mode and ring 0 are emulated: allow a generous while. */
	uint64_t end = tsc_deadline(5000000);
	while (!ap_seen[apic] && rdtsc() < end)
		cpu_relax();
	return ap_seen[apic];
}

void guest_main(void)
{
	int n = (int)cmdline_u64("expect_cpus", 0);
	CHECK(n > 0, "expect_cpus=N missing");
	lapic_write(0xf0, 0x1ff);			/* software-enable, spurious 0xff */
	int bsp = (int)lapic_id();
	check_tables(n, bsp);
	memcpy((void *)AP_TRAMPOLINE, ap_tramp_start, (size_t)(ap_tramp_end - ap_tramp_start));
	int up = 1;
	for (int i = 0; i < acpi.ncpus; i++) {
		int id = acpi.apic_ids[i];
		if (id == bsp)
			continue;
		CHECK(start_ap(id), "AP with APIC ID %d did not report in", id);
		printf("AP %d: up\n", id);
		up++;
	}
	printf("CPUS: %d\n", up);
	CHECK(up == n, "%d CPUs up, expected %d", up, n);
}
