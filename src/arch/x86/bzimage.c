/* SPDX-License-Identifier: Apache-2.0 */
/* Linux bzImage loader, 64-bit boot protocol (Documentation/arch/x86/boot.rst).
 * Every header field is checked before use: the file is untrusted. */
#include "arch/x86/boot.h"

#include <errno.h>
#include <string.h>

#define HDR_OFF 0x1f1
#define HDR_MAX_END 0x280        /* boot_params space reserved for the header */
#define XLF_KERNEL_64 (1u << 0)
#define LOADED_HIGH (1u << 0)
#define MIN_PROTOCOL 0x020c      /* 2.12: xloadflags tell us about the 64-bit entry */

/* boot_params offsets */
#define BP_ACPI_RSDP 0x070
#define BP_E820_ENTRIES 0x1e8
#define BP_E820_TABLE 0x2d0
#define BP_TYPE_OF_LOADER 0x210
#define BP_LOADFLAGS 0x211
#define BP_RAMDISK_IMAGE 0x218
#define BP_RAMDISK_SIZE 0x21c
#define BP_CMD_LINE_PTR 0x228
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4

struct bz_header {
	uint8_t setup_sects;
	uint16_t version;
	uint8_t loadflags;
	uint32_t initrd_addr_max;
	uint32_t kernel_alignment;
	uint8_t relocatable;
	uint16_t xloadflags;
	uint32_t cmdline_size;
	uint64_t pref_address;
	uint32_t init_size;
	size_t hdr_end;          /* one past the last header byte in the file */
};

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) { return le16(p) | (uint32_t)le16(p + 2) << 16; }
static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }
static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static void parse_header(const uint8_t *f, struct bz_header *h)
{
	h->setup_sects = f[0x1f1] ? f[0x1f1] : 4; /* 0 means 4, for old kernels */
	h->version = le16(f + 0x206);
	h->loadflags = f[0x211];
	h->initrd_addr_max = le32(f + 0x22c);
	h->kernel_alignment = le32(f + 0x230);
	h->relocatable = f[0x234];
	h->xloadflags = le16(f + 0x236);
	h->cmdline_size = le32(f + 0x238);
	h->pref_address = le64(f + 0x258);
	h->init_size = le32(f + 0x260);
	h->hdr_end = 0x202 + (size_t)f[0x201];
	if (h->hdr_end > HDR_MAX_END)
		h->hdr_end = HDR_MAX_END;
}

static int check_header(const struct bz_header *h, struct boot_reader *k, struct verr *err)
{
	uint64_t setup_size = ((uint64_t)h->setup_sects + 1) * 512;

	if (h->version < MIN_PROTOCOL)
		return verr_set(err, ENOTSUP, "%s: Linux boot protocol %u.%02u is too old; vireo needs 2.12 or later (kernel 3.8+) for the 64-bit entry",
				k->name, h->version >> 8, h->version & 0xff);
	if (!(h->xloadflags & XLF_KERNEL_64))
		return verr_set(err, ENOTSUP, "%s: this kernel has no 64-bit entry point (XLF_KERNEL_64 clear): a 32-bit kernel cannot be booted",
				k->name);
	if (!(h->loadflags & LOADED_HIGH))
		return verr_set(err, ENOTSUP, "%s: zImage kernels loaded at 0x10000 are not supported",
				k->name);
	if (setup_size >= k->size)
		return verr_set(err, EINVAL, "%s: truncated: %u setup sectors but the file is only %llu bytes",
				k->name, h->setup_sects, (unsigned long long)k->size);
	return 0;
}

static uint64_t pick_load_addr(const struct bz_header *h, const struct x86_mem_layout *l)
{
	uint64_t a = h->pref_address;
	uint64_t align = h->kernel_alignment;

	if (h->relocatable && a >= X86_HIGH_MEM && a < l->lowmem &&
	    (align == 0 || (align & (align - 1)) != 0 || a % align == 0))
		return a;
	return X86_HIGH_MEM;
}

static int write_zero_page(struct guest_mem *mem, const uint8_t *head, const struct bz_header *h,
			   const struct boot_params_in *in, const struct boot_result *out,
			   struct verr *err)
{
	uint8_t *zp = guest_mem_ptr(mem, X86_ZERO_PAGE, 0x1000);
	struct e820_entry e820[E820_MAX];
	unsigned n;

	if (!zp)
		return verr_set(err, ENOMEM, "guest RAM too small for boot_params");
	memset(zp, 0, 0x1000);
	memcpy(zp + HDR_OFF, head + HDR_OFF, h->hdr_end - HDR_OFF);
	zp[BP_TYPE_OF_LOADER] = 0xff;
	zp[BP_LOADFLAGS] &= (uint8_t)~0x20; /* QUIET_FLAG off */
	put32(zp + BP_CMD_LINE_PTR, (uint32_t)X86_CMDLINE);
	put32(zp + BP_RAMDISK_IMAGE, (uint32_t)out->initrd_gpa);
	put32(zp + BP_RAMDISK_SIZE, (uint32_t)out->initrd_size);
	put32(zp + BP_EXT_RAMDISK_IMAGE, (uint32_t)(out->initrd_gpa >> 32));
	put32(zp + BP_EXT_RAMDISK_SIZE, (uint32_t)(out->initrd_size >> 32));
	put64(zp + BP_ACPI_RSDP, in->rsdp_gpa);
	n = x86_build_e820(in->layout, e820, E820_MAX);
	zp[BP_E820_ENTRIES] = (uint8_t)n;
	memcpy(zp + BP_E820_TABLE, e820, n * sizeof(e820[0]));
	return 0;
}

int x86_bzimage_load(struct guest_mem *mem, struct boot_reader *k,
		     const struct boot_params_in *in, struct boot_result *out,
		     struct verr *err)
{
	uint8_t head[HDR_MAX_END];
	struct bz_header h;
	uint64_t setup_size, payload, load, need;
	void *dst;
	int rc;

	memset(head, 0, sizeof(head));
	if (boot_read_exact(k, 0, head, k->size < sizeof(head) ? k->size : sizeof(head), err) < 0)
		return -EIO;
	if (le16(head + 0x1fe) != 0xaa55)
		return verr_set(err, EINVAL, "%s: has the HdrS magic but no 0xAA55 boot flag at 0x1fe: damaged bzImage",
				k->name);
	parse_header(head, &h);
	if ((rc = check_header(&h, k, err)) < 0)
		return rc;
	setup_size = ((uint64_t)h.setup_sects + 1) * 512;
	payload = k->size - setup_size;
	load = pick_load_addr(&h, in->layout);
	need = payload > h.init_size ? payload : h.init_size;
	if (load + need > in->layout->lowmem || need > in->layout->lowmem)
		return verr_set(err, EFBIG, "%s: kernel needs %llu bytes at 0x%llx but guest RAM below 3 GiB ends at 0x%llx; give it more --memory",
				k->name, (unsigned long long)need, (unsigned long long)load,
				(unsigned long long)in->layout->lowmem);
	dst = guest_mem_ptr(mem, load, payload);
	if (!dst)
		return verr_set(err, EFAULT, "%s: load address 0x%llx is not RAM", k->name,
				(unsigned long long)load);
	if ((rc = boot_read_exact(k, setup_size, dst, payload, err)) < 0)
		return rc;
	out->kind = BOOT_LINUX64;
	out->kernel_start = load;
	out->kernel_end = load + need;
	out->entry = load + 0x200;
	if (in->initrd) {
		out->initrd_size = in->initrd->size;
		rc = x86_load_initrd(mem, in->layout, in->initrd, out->kernel_end,
				     h.initrd_addr_max ? h.initrd_addr_max : 0x37ffffff,
				     &out->initrd_gpa, err);
		if (rc < 0)
			return rc;
	}
	if ((rc = x86_write_cmdline(mem, in->cmdline, h.cmdline_size ? h.cmdline_size : 255, err)) < 0)
		return rc;
	if ((rc = write_zero_page(mem, head, &h, in, out, err)) < 0)
		return rc;
	if ((rc = x86_write_gdt_and_tables(mem, err)) < 0)
		return rc;
	x86_regs_linux64(out);
	return 0;
}
