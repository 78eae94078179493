/* SPDX-License-Identifier: Apache-2.0 */
/* PVH ELF loader: an ELF kernel whose "Xen" note XEN_ELFNOTE_PHYS32_ENTRY
 * gives a 32-bit entry, started with hvm_start_info (Xen's PVH ABI).
 * Every header, segment and note is bounds-checked: the file is untrusted. */
#include "arch/x86/boot.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define EM_386 3
#define EM_X86_64 62
#define PT_LOAD 1
#define PT_NOTE 4
#define XEN_ELFNOTE_PHYS32_ENTRY 18
#define MAX_PHDRS 64
#define MAX_NOTE_BYTES 0x10000
#define HVM_START_MAGIC 0x336ec578u

struct phdr {
	uint32_t type;
	uint64_t offset, paddr, filesz, memsz;
};

struct elf_info {
	bool is64;
	unsigned phnum;
	struct phdr ph[MAX_PHDRS];
};

static uint16_t le16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const uint8_t *p) { return le16(p) | (uint32_t)le16(p + 2) << 16; }
static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

static void parse_phdr(const struct elf_info *e, const uint8_t *b, struct phdr *p)
{
	if (e->is64) {
		*p = (struct phdr){ le32(b), le64(b + 8), le64(b + 24), le64(b + 32), le64(b + 40) };
	} else {
		*p = (struct phdr){ le32(b), le32(b + 4), le32(b + 12), le32(b + 16), le32(b + 20) };
	}
}

static int read_phdrs(struct boot_reader *k, struct elf_info *e, struct verr *err)
{
	uint8_t eh[64], buf[64];
	uint64_t phoff;
	unsigned phentsize, need;

	if (boot_read_exact(k, 0, eh, k->size < 64 ? (size_t)k->size : 64, err) < 0 || k->size < 52)
		return verr_set(err, EINVAL, "%s: truncated ELF header", k->name);
	if (eh[4] != 1 && eh[4] != 2)
		return verr_set(err, EINVAL, "%s: ELF class %u is neither 32- nor 64-bit", k->name, eh[4]);
	if (eh[5] != 1)
		return verr_set(err, EINVAL, "%s: big-endian ELF file, not an x86 kernel", k->name);
	e->is64 = eh[4] == 2;
	if (e->is64 && k->size < 64)
		return verr_set(err, EINVAL, "%s: truncated ELF header", k->name);
	if (le16(eh + 18) != EM_X86_64 && le16(eh + 18) != EM_386)
		return verr_set(err, EINVAL, "%s: ELF file for machine %u, not x86", k->name, le16(eh + 18));
	phoff = e->is64 ? le64(eh + 32) : le32(eh + 28);
	phentsize = le16(eh + (e->is64 ? 54 : 42));
	e->phnum = le16(eh + (e->is64 ? 56 : 44));
	need = e->is64 ? 56 : 32;
	if (e->phnum == 0 || e->phnum > MAX_PHDRS || phentsize < need || phentsize > sizeof(buf))
		return verr_set(err, EINVAL, "%s: ELF program headers malformed (%u entries of %u bytes)",
				k->name, e->phnum, phentsize);
	for (unsigned i = 0; i < e->phnum; i++) {
		if (boot_read_exact(k, phoff + (uint64_t)i * phentsize, buf, need, err) < 0)
			return -EINVAL;
		parse_phdr(e, buf, &e->ph[i]);
	}
	return 0;
}

/* Walks one PT_NOTE segment; returns 1 and sets *entry when the PVH note is there. */
static int scan_notes(struct boot_reader *k, const struct phdr *p, uint64_t *entry,
		      struct verr *err)
{
	uint64_t len = p->filesz < MAX_NOTE_BYTES ? p->filesz : MAX_NOTE_BYTES;
	uint8_t *buf = malloc(len ? len : 1);
	uint64_t off = 0;
	int found = 0;

	if (!buf)
		return verr_set(err, ENOMEM, "out of memory");
	if (boot_read_exact(k, p->offset, buf, len, err) < 0) {
		free(buf);
		return -EINVAL;
	}
	while (!found && len - off >= 12) {
		uint64_t namesz = le32(buf + off), descsz = le32(buf + off + 4);
		uint32_t type = le32(buf + off + 8);
		uint64_t name_pad = (namesz + 3) & ~3ull, desc_pad = (descsz + 3) & ~3ull;
		const uint8_t *name = buf + off + 12, *desc = name + name_pad;

		if (name_pad > len - off - 12 || desc_pad > len - off - 12 - name_pad)
			break;
		if (type == XEN_ELFNOTE_PHYS32_ENTRY && namesz == 4 && memcmp(name, "Xen", 4) == 0 &&
		    (descsz == 4 || descsz == 8)) {
			*entry = descsz == 4 ? le32(desc) : le64(desc);
			found = 1;
		}
		off += 12 + name_pad + desc_pad;
	}
	free(buf);
	return found;
}

static int find_entry(struct boot_reader *k, const struct elf_info *e, uint64_t *entry,
		      struct verr *err)
{
	for (unsigned i = 0; i < e->phnum; i++) {
		int rc;
		if (e->ph[i].type != PT_NOTE)
			continue;
		rc = scan_notes(k, &e->ph[i], entry, err);
		if (rc != 0)
			return rc < 0 ? rc : 0;
	}
	return verr_set(err, ENOTSUP, "%s: ELF file without a PVH entry note (Xen note XEN_ELFNOTE_PHYS32_ENTRY): for Linux, build with CONFIG_PVH=y or boot the bzImage",
			k->name);
}

static int load_segments(struct guest_mem *mem, struct boot_reader *k, const struct elf_info *e,
			 const struct x86_mem_layout *l, struct boot_result *out,
			 struct verr *err)
{
	bool any = false;

	out->kernel_start = UINT64_MAX;
	for (unsigned i = 0; i < e->phnum; i++) {
		const struct phdr *p = &e->ph[i];
		uint8_t *dst;

		if (p->type != PT_LOAD || p->memsz == 0)
			continue;
		if (p->filesz > p->memsz || p->paddr < X86_HIGH_MEM || p->paddr >= l->lowmem ||
		    p->memsz > l->lowmem - p->paddr)
			return verr_set(err, EINVAL, "%s: segment %u (0x%llx, %llu bytes) does not fit guest RAM from 1 MiB to 0x%llx",
					k->name, i, (unsigned long long)p->paddr,
					(unsigned long long)p->memsz, (unsigned long long)l->lowmem);
		dst = guest_mem_ptr(mem, p->paddr, p->memsz);
		if (!dst)
			return verr_set(err, EFAULT, "%s: segment %u is not in RAM", k->name, i);
		if (boot_read_exact(k, p->offset, dst, p->filesz, err) < 0)
			return -EINVAL;
		memset(dst + p->filesz, 0, p->memsz - p->filesz);
		if (p->paddr < out->kernel_start)
			out->kernel_start = p->paddr;
		if (p->paddr + p->memsz > out->kernel_end)
			out->kernel_end = p->paddr + p->memsz;
		any = true;
	}
	if (!any)
		return verr_set(err, EINVAL, "%s: ELF file has no loadable segment", k->name);
	return 0;
}

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

static int write_start_info(struct guest_mem *mem, const struct boot_params_in *in,
			    const struct boot_result *out, struct verr *err)
{
	uint8_t *si = guest_mem_ptr(mem, X86_PVH_START_INFO, 0x1000);
	struct e820_entry e820[E820_MAX];
	unsigned n = x86_build_e820(in->layout, e820, E820_MAX);

	if (!si)
		return verr_set(err, ENOMEM, "guest RAM too small for hvm_start_info");
	memset(si, 0, 0x1000);
	put32(si + 0, HVM_START_MAGIC);
	put32(si + 4, 1);                          /* version: has memmap */
	put32(si + 12, out->initrd_size ? 1 : 0);  /* nr_modules */
	put64(si + 16, out->initrd_size ? X86_PVH_MODLIST : 0);
	put64(si + 24, X86_CMDLINE);
	put64(si + 32, in->rsdp_gpa);
	put64(si + 40, X86_PVH_MEMMAP);
	put32(si + 48, n);
	if (out->initrd_size) {
		uint8_t *mod = si + (X86_PVH_MODLIST - X86_PVH_START_INFO);
		put64(mod + 0, out->initrd_gpa);
		put64(mod + 8, out->initrd_size);
	}
	for (unsigned i = 0; i < n; i++) {
		uint8_t *m = si + (X86_PVH_MEMMAP - X86_PVH_START_INFO) + i * 24;
		put64(m + 0, e820[i].addr);
		put64(m + 8, e820[i].size);
		put32(m + 16, e820[i].type);
	}
	return 0;
}

int x86_pvh_load(struct guest_mem *mem, struct boot_reader *k,
		 const struct boot_params_in *in, struct boot_result *out, struct verr *err)
{
	struct elf_info *e = calloc(1, sizeof(*e));
	uint64_t entry = 0;
	int rc;

	if (!e)
		return verr_set(err, ENOMEM, "out of memory");
	rc = read_phdrs(k, e, err);
	if (rc == 0)
		rc = find_entry(k, e, &entry, err);
	if (rc == 0 && (entry < X86_HIGH_MEM || entry >= in->layout->lowmem))
		rc = verr_set(err, EINVAL, "%s: PVH entry 0x%llx is outside guest RAM",
			      k->name, (unsigned long long)entry);
	if (rc == 0)
		rc = load_segments(mem, k, e, in->layout, out, err);
	free(e);
	if (rc < 0)
		return rc;
	out->kind = BOOT_PVH;
	out->entry = entry;
	if (in->initrd) {
		out->initrd_size = in->initrd->size;
		rc = x86_load_initrd(mem, in->layout, in->initrd, out->kernel_end, 0,
				     &out->initrd_gpa, err);
		if (rc < 0)
			return rc;
	}
	if ((rc = x86_write_cmdline(mem, in->cmdline, X86_CMDLINE_MAX - 1, err)) < 0)
		return rc;
	if ((rc = write_start_info(mem, in, out, err)) < 0)
		return rc;
	if ((rc = x86_write_gdt_and_tables(mem, err)) < 0)
		return rc;
	x86_regs_pvh(out);
	return 0;
}
