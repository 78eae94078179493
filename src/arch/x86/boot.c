/* SPDX-License-Identifier: Apache-2.0 */
/* Boot pieces shared by the bzImage and PVH loaders: e820 map, GDT, page
 * tables, command line, initrd placement, entry CPU state; and the format
 * identification that picks a loader or says why a file is not bootable. */
#include "arch/x86/boot.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#define PAGE 0x1000ull

int boot_read_exact(struct boot_reader *r, uint64_t off, void *buf, size_t len,
		    struct verr *err)
{
	int n;

	if (off > r->size || len > r->size - off)
		return verr_set(err, EINVAL, "%s: truncated (needs %llu bytes at offset 0x%llx, file has %llu)",
				r->name, (unsigned long long)len, (unsigned long long)off,
				(unsigned long long)r->size);
	n = r->read_at(r->ctx, off, buf, len);
	if (n < 0)
		return verr_set(err, -n, "%s: read error at offset 0x%llx: %s", r->name,
				(unsigned long long)off, strerror(-n));
	if ((size_t)n != len)
		return verr_set(err, EIO, "%s: short read at offset 0x%llx", r->name,
				(unsigned long long)off);
	return 0;
}

unsigned x86_build_e820(const struct x86_mem_layout *l, struct e820_entry *e, unsigned max)
{
	/* ECAM is reserved here as well as in the DSDT: Linux trusts an MCFG
	 * window that either one reserves, and nothing mistakes it for RAM. */
	struct e820_entry all[6] = {
		{ 0, X86_EBDA, E820_RAM },
		{ X86_EBDA, X86_HOLE_START - X86_EBDA, E820_RESERVED },
		{ X86_ACPI_BASE, X86_HIGH_MEM - X86_ACPI_BASE, E820_RESERVED },
		{ X86_HIGH_MEM, l->lowmem - X86_HIGH_MEM, E820_RAM },
		{ X86_PCI_ECAM_BASE, X86_PCI_ECAM_SIZE, E820_RESERVED },
		{ X86_4G, l->highmem, E820_RAM },
	};
	unsigned n = l->highmem ? 6 : 5;

	if (n > max)
		n = max;
	memcpy(e, all, n * sizeof(*e));
	return n;
}

static int write_gdt(struct guest_mem *mem, struct verr *err)
{
	static const uint64_t gdt[6] = {
		0,
		0x00cf9b000000ffffull, /* 0x08: flat 32-bit code */
		0x00af9b000000ffffull, /* 0x10: flat 64-bit code (__BOOT_CS) */
		0x00cf93000000ffffull, /* 0x18: flat data (__BOOT_DS) */
		0x00008b0000000067ull, /* 0x20: TSS, busy, base 0 */
		0,                     /* upper half of the 64-bit TSS descriptor */
	};
	return guest_mem_write(mem, X86_BOOT_GDT, gdt, sizeof(gdt), err);
}

/* Identity map of the first 4 GiB with 2 MiB pages; the user bit is set so
 * test guests can run ring-3 code on these tables (Linux builds its own). */
static int write_page_tables(struct guest_mem *mem, struct verr *err)
{
	uint64_t *pml4 = guest_mem_ptr(mem, X86_PML4, PAGE);
	uint64_t *pdpt = guest_mem_ptr(mem, X86_PDPT, PAGE);
	uint64_t *pd = guest_mem_ptr(mem, X86_PD, 4 * PAGE);

	if (!pml4 || !pdpt || !pd)
		return verr_set(err, ENOMEM, "guest RAM too small for boot page tables");
	memset(pml4, 0, PAGE);
	memset(pdpt, 0, PAGE);
	pml4[0] = X86_PDPT | 0x7;
	for (unsigned i = 0; i < 4; i++)
		pdpt[i] = (X86_PD + i * PAGE) | 0x7;
	for (uint64_t j = 0; j < 4 * 512; j++)
		pd[j] = (j << 21) | 0x87;
	return 0;
}

int x86_write_gdt_and_tables(struct guest_mem *mem, struct verr *err)
{
	int rc = write_gdt(mem, err);
	return rc < 0 ? rc : write_page_tables(mem, err);
}

int x86_write_cmdline(struct guest_mem *mem, const char *cmdline, uint64_t max_len,
		      struct verr *err)
{
	size_t len = cmdline ? strlen(cmdline) : 0;

	if (max_len > X86_CMDLINE_MAX - 1)
		max_len = X86_CMDLINE_MAX - 1;
	if (len > max_len)
		return verr_set(err, E2BIG, "kernel command line is %zu bytes; this kernel accepts at most %llu",
				len, (unsigned long long)max_len);
	if (guest_mem_write(mem, X86_CMDLINE, cmdline ? cmdline : "", len, err) < 0)
		return -EFAULT;
	return guest_mem_write(mem, X86_CMDLINE + len, "", 1, err);
}

int x86_load_initrd(struct guest_mem *mem, const struct x86_mem_layout *l,
		    struct boot_reader *initrd, uint64_t min_addr, uint64_t max_addr,
		    uint64_t *gpa, struct verr *err)
{
	uint64_t top = l->lowmem, addr;
	uint8_t *dst;

	if (initrd->size == 0)
		return verr_set(err, EINVAL, "initrd %s is empty", initrd->name);
	if (max_addr && max_addr + 1 < top)
		top = max_addr + 1;
	min_addr = (min_addr + PAGE - 1) & ~(PAGE - 1);
	if (initrd->size > l->total)
		return verr_set(err, EFBIG, "initrd %s (%llu bytes) is larger than guest RAM (%llu bytes)",
				initrd->name, (unsigned long long)initrd->size,
				(unsigned long long)l->total);
	if (top < min_addr || initrd->size > top - min_addr)
		return verr_set(err, EFBIG, "initrd %s (%llu bytes) does not fit between the kernel end (0x%llx) and 0x%llx; give the guest more memory",
				initrd->name, (unsigned long long)initrd->size,
				(unsigned long long)min_addr, (unsigned long long)top);
	addr = (top - initrd->size) & ~(PAGE - 1);
	dst = guest_mem_ptr(mem, addr, initrd->size);
	if (!dst)
		return verr_set(err, EFAULT, "initrd placement 0x%llx is not RAM",
				(unsigned long long)addr);
	if (boot_read_exact(initrd, 0, dst, initrd->size, err) < 0)
		return -EIO;
	*gpa = addr;
	return 0;
}

static struct x86_segment flat_seg(uint16_t sel, uint8_t type, uint8_t db, uint8_t l)
{
	return (struct x86_segment){ .base = 0, .limit = 0xffffffff, .selector = sel,
		.type = type, .present = 1, .dpl = 0, .db = db, .s = 1, .l = l, .g = 1 };
}

static void common_sregs(struct x86_sregs *s, uint16_t code_sel, uint8_t code_db, uint8_t l)
{
	struct x86_segment data = flat_seg(X86_SEL_DATA, 3, 1, 0);

	memset(s, 0, sizeof(*s));
	s->cs = flat_seg(code_sel, 11, code_db, l);
	s->ds = s->es = s->fs = s->gs = s->ss = data;
	s->tr = (struct x86_segment){ .selector = X86_SEL_TSS, .limit = 0x67, .type = 11,
		.present = 1 };
	s->ldt = (struct x86_segment){ .type = 2 };
	s->gdt = (struct x86_dtable){ X86_BOOT_GDT, 6 * 8 - 1 };
}

void x86_regs_linux64(struct boot_result *out)
{
	memset(&out->regs, 0, sizeof(out->regs));
	out->regs.rip = out->entry;
	out->regs.rsi = X86_ZERO_PAGE;
	out->regs.rflags = 0x2;
	common_sregs(&out->sregs, X86_SEL_CODE64, 0, 1);
	out->sregs.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_NE | X86_CR0_PG;
	out->sregs.cr3 = X86_PML4;
	out->sregs.cr4 = X86_CR4_PAE;
	out->sregs.efer = X86_EFER_LME | X86_EFER_LMA;
}

void x86_regs_pvh(struct boot_result *out)
{
	memset(&out->regs, 0, sizeof(out->regs));
	out->regs.rip = out->entry;
	out->regs.rbx = X86_PVH_START_INFO;
	out->regs.rflags = 0x2;
	common_sregs(&out->sregs, X86_SEL_CODE32, 1, 0);
	out->sregs.cr0 = X86_CR0_PE | X86_CR0_ET;
}

/* Names what an unbootable file looks like, for the refusal message. */
static const char *describe(const uint8_t *b, size_t n)
{
	if (n >= 2 && b[0] == 0x1f && b[1] == 0x8b)
		return "gzip-compressed data (an initrd or a compressed vmlinux?), not a kernel image";
	if (n >= 6 && memcmp(b, "070701", 6) == 0)
		return "a cpio archive (an initramfs?), not a kernel image";
	if (n >= 4 && memcmp(b, "\x28\xb5\x2f\xfd", 4) == 0)
		return "zstd-compressed data, not a kernel image";
	if (n >= 3 && memcmp(b, "BZh", 3) == 0)
		return "bzip2-compressed data, not a kernel image";
	if (n >= 4 && memcmp(b, "#!", 2) == 0)
		return "a script, not a kernel image";
	if (n >= 4 && memcmp(b, "QFI\xfb", 4) == 0)
		return "a qcow2 disk image, not a kernel image";
	if (n >= 2 && memcmp(b, "MZ", 2) == 0)
		return "a PE/EFI executable without a Linux boot header";
	return "not a Linux bzImage (no 'HdrS' magic at offset 0x202) nor an ELF file";
}

int x86_boot_load(struct guest_mem *mem, struct boot_reader *k,
		  const struct boot_params_in *in, struct boot_result *out, struct verr *err)
{
	uint8_t head[0x208];
	size_t n;

	memset(out, 0, sizeof(*out));
	if (k->size == 0)
		return verr_set(err, EINVAL, "%s: file is empty, not a kernel image", k->name);
	n = k->size < sizeof(head) ? (size_t)k->size : sizeof(head);
	if (boot_read_exact(k, 0, head, n, err) < 0)
		return -EIO;
	if (n >= 4 && memcmp(head, "\x7f" "ELF", 4) == 0)
		return x86_pvh_load(mem, k, in, out, err);
	if (n >= 0x206 && memcmp(head + 0x202, "HdrS", 4) == 0)
		return x86_bzimage_load(mem, k, in, out, err);
	if (n < 0x206 && !(n >= 4 && memcmp(head, "\x7f" "ELF", 4) == 0) &&
	    !(n >= 2 && head[0] == 0x1f))
		return verr_set(err, EINVAL, "%s: only %llu bytes: too small to be a kernel image (%s)",
				k->name, (unsigned long long)k->size, describe(head, n));
	return verr_set(err, EINVAL, "%s: %s", k->name, describe(head, n));
}
