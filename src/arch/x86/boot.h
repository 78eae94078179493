/* SPDX-License-Identifier: Apache-2.0 */
/* Direct kernel boot without firmware: loaders for Linux bzImages (64-bit
 * boot protocol) and PVH ELF kernels, and the boot-time CPU state. */
#ifndef VIREO_ARCH_X86_BOOT_H
#define VIREO_ARCH_X86_BOOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "arch/x86/cpu_state.h"
#include "arch/x86/layout.h"
#include "core/err.h"
#include "core/guest_mem.h"

/* Reads len bytes at off of a kernel file; returns bytes read or -errno.
 * Loaders parse through this so fuzzers can feed memory instead of files. */
struct boot_reader {
	int (*read_at)(void *ctx, uint64_t off, void *buf, size_t len);
	void *ctx;
	uint64_t size;     /* file size in bytes */
	const char *name;  /* for messages */
};

enum boot_kind { BOOT_LINUX64, BOOT_PVH };

struct e820_entry {
	uint64_t addr, size;
	uint32_t type;
} __attribute__((packed));
#define E820_RAM 1
#define E820_RESERVED 2
#define E820_MAX 8

struct boot_params_in {
	const struct x86_mem_layout *layout;
	const char *cmdline;        /* may be NULL */
	struct boot_reader *initrd; /* may be NULL */
	uint64_t rsdp_gpa;
};

struct boot_result {
	enum boot_kind kind;
	uint64_t entry;             /* guest-physical entry point */
	uint64_t kernel_start, kernel_end;
	uint64_t initrd_gpa, initrd_size;
	struct x86_regs regs;
	struct x86_sregs sregs;
};

/* Identifies the file and loads it, or refuses it saying what it is. */
int x86_boot_load(struct guest_mem *mem, struct boot_reader *kernel,
		  const struct boot_params_in *in, struct boot_result *out, struct verr *err);

/* Shared pieces (boot.c), used by the two loaders. */
unsigned x86_build_e820(const struct x86_mem_layout *l, struct e820_entry *e, unsigned max);
int x86_write_gdt_and_tables(struct guest_mem *mem, struct verr *err);
int x86_write_cmdline(struct guest_mem *mem, const char *cmdline, uint64_t max_len,
		      struct verr *err);
int x86_load_initrd(struct guest_mem *mem, const struct x86_mem_layout *l,
		    struct boot_reader *initrd, uint64_t min_addr, uint64_t max_addr,
		    uint64_t *gpa, struct verr *err);
int boot_read_exact(struct boot_reader *r, uint64_t off, void *buf, size_t len,
		    struct verr *err);
void x86_regs_linux64(struct boot_result *out);
void x86_regs_pvh(struct boot_result *out);

int x86_bzimage_load(struct guest_mem *mem, struct boot_reader *k,
		     const struct boot_params_in *in, struct boot_result *out,
		     struct verr *err);
int x86_pvh_load(struct guest_mem *mem, struct boot_reader *k,
		 const struct boot_params_in *in, struct boot_result *out, struct verr *err);

#endif
