/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest RAM: anonymous memory with transparent huge pages (see
 * guest_mem_create), or a snapshot's memory file mapped copy-on-write,
 * mapped once into vireo, exposed to the guest as up to a few regions of
 * guest-physical space. Every access from device or loader code goes through
 * guest_mem_ptr(), which checks the whole range lies in one region.
 */
#ifndef VIREO_CORE_GUEST_MEM_H
#define VIREO_CORE_GUEST_MEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define GUEST_MEM_MAX_REGIONS 4

struct guest_mem_region {
	uint64_t gpa;
	uint64_t size;
	uint64_t fd_offset;   /* where the region starts inside the mapping (and file) */
	uint8_t *hva;
};

struct guest_mem {
	int fd;               /* the memory file, or -1 for anonymous RAM */
	bool private_file;    /* a snapshot file mapped copy-on-write */
	uint64_t size;        /* bytes of guest RAM */
	uint8_t *base;        /* all of it, mapped at once */
	unsigned nregions;
	struct guest_mem_region regions[GUEST_MEM_MAX_REGIONS];
};

int guest_mem_create(struct guest_mem *m, uint64_t size, struct verr *err);
/* Maps a memory image file copy-on-write (MAP_PRIVATE): nothing is read
 * until the guest touches it, and the file is never written. */
int guest_mem_open_file(struct guest_mem *m, const char *path, uint64_t size, struct verr *err);
void guest_mem_destroy(struct guest_mem *m);

/* Expose [fd_offset, fd_offset+size) of the mapping at guest address gpa. */
int guest_mem_add_region(struct guest_mem *m, uint64_t gpa, uint64_t fd_offset, uint64_t size,
			 struct verr *err);

/* Host pointer for [gpa, gpa+len) or NULL when any byte of it is not RAM or
 * the range wraps. len 0 is allowed (a pointer to gpa, if gpa is RAM). */
void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len);

int guest_mem_write(const struct guest_mem *m, uint64_t gpa, const void *src, uint64_t len,
		    struct verr *err);
int guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *dst, uint64_t len,
		   struct verr *err);

#endif
