/* SPDX-License-Identifier: Apache-2.0 */
/* One view of the boot information, whether it came as Linux boot_params
 * (Documentation/arch/x86/zero-page.rst, boot.rst) or as a PVH
 * hvm_start_info (xen/include/public/arch-x86/hvm/start_info.h). */
#include "rt.h"

struct bootinfo bootinfo;

#define PVH_MAGIC 0x336ec578u

static uint64_t rd(uint64_t base, unsigned off, unsigned size)
{
	switch (size) {
	case 1: return *(volatile uint8_t *)(base + off);
	case 2: return *(volatile uint16_t *)(base + off);
	case 4: return *(volatile uint32_t *)(base + off);
	default: return *(volatile uint64_t *)(base + off);
	}
}

static void from_boot_params(uint64_t bp)
{
	uint64_t cmd = rd(bp, 0x228, 4) | rd(bp, 0xc8, 4) << 32;
	bootinfo.cmdline = cmd ? (const char *)cmd : "";
	bootinfo.cmdline_size = (uint32_t)rd(bp, 0x238, 4);
	unsigned n = (unsigned)rd(bp, 0x1e8, 1);
	if (n > MEM_MAX)
		n = MEM_MAX;
	for (unsigned i = 0; i < n; i++) {
		uint64_t e = bp + 0x2d0 + 20 * i;
		bootinfo.mem[i].addr = rd(e, 0, 8);
		bootinfo.mem[i].size = rd(e, 8, 8);
		bootinfo.mem[i].type = (uint32_t)rd(e, 16, 4);
	}
	bootinfo.nmem = (int)n;
	bootinfo.initrd_addr = rd(bp, 0x218, 4) | rd(bp, 0xc0, 4) << 32;
	bootinfo.initrd_size = rd(bp, 0x21c, 4) | rd(bp, 0xc4, 4) << 32;
	bootinfo.rsdp = rd(bp, 0x70, 8);
}

static void from_start_info(uint64_t si)
{
	if (rd(si, 0, 4) != PVH_MAGIC)
		return;			/* the bootinfo guest reports it */
	uint64_t cmd = rd(si, 24, 8);
	bootinfo.cmdline = cmd ? (const char *)cmd : "";
	if (rd(si, 12, 4) > 0) {
		uint64_t mod = rd(si, 16, 8);
		bootinfo.initrd_addr = rd(mod, 0, 8);
		bootinfo.initrd_size = rd(mod, 8, 8);
	}
	bootinfo.rsdp = rd(si, 32, 8);
	if (rd(si, 4, 4) >= 1) {
		uint64_t map = rd(si, 40, 8);
		unsigned n = (unsigned)rd(si, 48, 4);
		if (n > MEM_MAX)
			n = MEM_MAX;
		for (unsigned i = 0; map && i < n; i++) {
			uint64_t e = map + 24 * i;
			bootinfo.mem[i].addr = rd(e, 0, 8);
			bootinfo.mem[i].size = rd(e, 8, 8);
			bootinfo.mem[i].type = (uint32_t)rd(e, 16, 4);
		}
		bootinfo.nmem = map ? (int)n : 0;
	}
}

void bootinfo_init(int kind, uint64_t raw)
{
	static const char *const names[] = { "linux64", "linux32", "pvh" };
	bootinfo.kind = kind;
	bootinfo.proto = names[kind];
	bootinfo.raw = raw;
	bootinfo.cmdline = "";
	if (kind == BOOT_PVH)
		from_start_info(raw);
	else
		from_boot_params(raw);
}

uint64_t bootinfo_ram(void)
{
	uint64_t sum = 0;
	for (int i = 0; i < bootinfo.nmem; i++)
		if (bootinfo.mem[i].type == 1)
			sum += bootinfo.mem[i].size;
	return sum;
}

const char *cmdline_get(const char *key, char *buf, size_t n)
{
	size_t kl = strlen(key);
	const char *p = bootinfo.cmdline;
	while (*p) {
		while (*p == ' ')
			p++;
		const char *tok = p;
		while (*p && *p != ' ')
			p++;
		if ((size_t)(p - tok) > kl && !strncmp(tok, key, kl) && tok[kl] == '=') {
			size_t len = (size_t)(p - tok) - kl - 1;
			if (len >= n)
				len = n - 1;
			memcpy(buf, tok + kl + 1, len);
			buf[len] = 0;
			return buf;
		}
	}
	return NULL;
}

/* A bare word, or key=anything. */
bool cmdline_has(const char *key)
{
	size_t kl = strlen(key);
	for (const char *p = bootinfo.cmdline; *p;) {
		while (*p == ' ')
			p++;
		if (!strncmp(p, key, kl) && (p[kl] == 0 || p[kl] == ' ' || p[kl] == '='))
			return true;
		while (*p && *p != ' ')
			p++;
	}
	return false;
}

uint64_t cmdline_u64(const char *key, uint64_t dflt)
{
	char buf[32];
	return cmdline_get(key, buf, sizeof(buf)) ? parse_u64(buf, NULL) : dflt;
}
