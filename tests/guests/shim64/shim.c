/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test-only loader: lets QEMU exercise a bzImage's 64-bit entry (the one
 * vireo uses) before vireo can.  QEMU boots this shim through PVH with the
 * guest bzImage as its initrd; the shim lays out memory as docs/platform.md
 * describes vireo's bzImage boot (boot_params at 0x7000, GDT at 0x500, page
 * tables at 0x9000, command line at 0x20000) and jumps to 0x100200 in long
 * mode.  The bzImage also stays the guest's "initrd", so the bootinfo
 * guest can checksum it.
 */
#include <stdint.h>

struct memmap_entry {
	uint64_t addr, size;
	uint32_t type, reserved;
};

static void copy(void *d, const void *s, uint32_t n)
{
	uint8_t *p = d;
	const uint8_t *q = s;
	if (p > q)
		while (n--)
			p[n] = q[n];
	else
		while (n--)
			*p++ = *q++;
}

static void zero(void *d, uint32_t n)
{
	uint8_t *p = d;
	while (n--)
		*p++ = 0;
}

#define U32(a) (*(volatile uint32_t *)(uintptr_t)(a))
#define U64(a) (*(volatile uint64_t *)(uintptr_t)(a))

static struct memmap_entry map[128];
static char cmdline[4096];

uint32_t shim_main(uint32_t si);

uint32_t shim_main(uint32_t si)
{
	uint32_t nmap = U32(si + 48), cmd = (uint32_t)U64(si + 24);
	uint32_t mod = (uint32_t)U64(si + 16);
	uint64_t rsdp = U64(si + 32);
	if (nmap > 128)
		nmap = 128;
	copy(map, (void *)(uintptr_t)U64(si + 40), nmap * sizeof(map[0]));
	uint32_t clen = 0;
	if (cmd)
		while (clen < sizeof(cmdline) - 1 && ((char *)(uintptr_t)cmd)[clen])
			clen++;
	copy(cmdline, (void *)(uintptr_t)cmd, clen);
	cmdline[clen] = 0;
	uint32_t img = (uint32_t)U64(mod), img_size = (uint32_t)U64(mod + 8);
	const uint8_t *bz = (const uint8_t *)(uintptr_t)img;
	uint32_t setup = ((uint32_t)bz[0x1f1] + 1) * 512;

	/* Kernel's protected-mode part at 1 MiB. */
	copy((void *)0x100000, bz + setup, img_size - setup);

	/* boot_params: zero page with the setup header copied in. */
	uint8_t *bp = (uint8_t *)0x7000;
	zero(bp, 4096);
	uint32_t hdr_end = 0x202 + bz[0x201];
	copy(bp + 0x1f1, bz + 0x1f1, hdr_end - 0x1f1);
	bp[0x210] = 0xff;				/* type_of_loader */
	copy((void *)0x20000, cmdline, clen + 1);
	*(uint32_t *)(bp + 0x228) = 0x20000;		/* cmd_line_ptr */
	*(uint32_t *)(bp + 0x218) = img;		/* ramdisk_image */
	*(uint32_t *)(bp + 0x21c) = img_size;		/* ramdisk_size */
	*(uint64_t *)(bp + 0x70) = rsdp;
	uint32_t n = 0;
	for (uint32_t i = 0; i < nmap && n < 128; i++) {
		if (!map[i].size)
			continue;
		uint8_t *e = bp + 0x2d0 + 20 * n++;
		*(uint64_t *)e = map[i].addr;
		*(uint64_t *)(e + 8) = map[i].size;
		*(uint32_t *)(e + 16) = map[i].type;
	}
	bp[0x1e8] = (uint8_t)n;

	/* GDT: 0x10 flat 64-bit code, 0x18 flat data. */
	uint64_t *gdt = (uint64_t *)0x500;
	gdt[0] = 0;
	gdt[1] = 0;
	gdt[2] = 0x00af9a000000ffffull;
	gdt[3] = 0x00cf92000000ffffull;

	/* Identity map of 4 GiB by 2 MiB pages, present, writable, user. */
	uint64_t *pml4 = (uint64_t *)0x9000, *pdpt = (uint64_t *)0xa000;
	zero(pml4, 0x6000);
	pml4[0] = 0xa000 | 7;
	for (uint32_t i = 0; i < 4; i++)
		pdpt[i] = (0xb000 + i * 0x1000) | 7;
	uint64_t *pd = (uint64_t *)0xb000;
	for (uint32_t i = 0; i < 2048; i++)
		pd[i] = ((uint64_t)i << 21) | 0x87;
	return 0x100200;
}
