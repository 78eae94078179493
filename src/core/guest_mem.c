/* SPDX-License-Identifier: Apache-2.0 */
#include "core/guest_mem.h"

#include <errno.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define HUGE_2M (2u << 20)

/* Anonymous memory, 2 MiB aligned and advised for transparent huge pages,
 * so that KVM can map the guest with 2 MiB pages (host and guest addresses
 * then agree modulo 2 MiB). A memfd is shmem, which gets huge pages only
 * where /sys/kernel/mm/transparent_hugepage/shmem_enabled allows (by default
 * it does not): a Linux boot in the lab took 26,752 nested page faults on a
 * memfd against QEMU's 1,453, each a VM exit. */
static uint8_t *map_ram(uint64_t size)
{
	uint64_t rsize = (size + 4095) & ~4095ull, len = rsize + HUGE_2M;
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uintptr_t a;
	size_t head;

	if (p == MAP_FAILED)
		return NULL;
	a = ((uintptr_t)p + HUGE_2M - 1) & ~(uintptr_t)(HUGE_2M - 1);
	head = a - (uintptr_t)p;
	if (head)
		munmap(p, head);
	if (len - head > rsize)
		munmap((uint8_t *)a + rsize, len - head - rsize);
	/* Not the first 2 MiB: there the loader writes a few pages (boot page
	 * tables, zero page, ACPI and MP tables) and a guest touches little
	 * more, and one huge page would be 2 MiB to zero and keep (a fifth of
	 * vireo's CPU time for a guest that only stops). A hint: fine if refused. */
	if (rsize > HUGE_2M)
		(void)madvise((uint8_t *)a + HUGE_2M, rsize - HUGE_2M, MADV_HUGEPAGE);
	return (uint8_t *)a;
}

int guest_mem_create(struct guest_mem *m, uint64_t size, struct verr *err)
{
	memset(m, 0, sizeof(*m));
	m->fd = -1;
	if (size == 0)
		return verr_set(err, EINVAL, "guest memory size is zero");
	if (size > UINT64_MAX - (4u << 20))
		return verr_set(err, EINVAL, "guest memory size %llu is too large",
				(unsigned long long)size);
	/* NORESERVE: memory is committed as the guest touches it, so RSS tracks
	 * what the guest uses (in 2 MiB steps), not what it was given. */
	m->base = map_ram(size);
	if (!m->base)
		return verr_set(err, errno, "cannot map %llu bytes of guest memory: %s",
				(unsigned long long)size, strerror(errno));
	m->size = size;
	return 0;
}

int guest_mem_open_file(struct guest_mem *m, const char *path, uint64_t size, struct verr *err)
{
	struct stat st;

	memset(m, 0, sizeof(*m));
	m->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (m->fd < 0)
		return verr_set(err, errno, "cannot open memory file %s: %s", path, strerror(errno));
	if (fstat(m->fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		guest_mem_destroy(m);
		return verr_set(err, EINVAL, "memory file %s is not a regular file", path);
	}
	if ((uint64_t)st.st_size != size) {
		guest_mem_destroy(m);
		return verr_set(err, EINVAL, "memory file %s is %llu bytes but the snapshot's guest has %llu: truncated or not its memory",
				path, (unsigned long long)st.st_size, (unsigned long long)size);
	}
	m->base = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, m->fd, 0);
	if (m->base == MAP_FAILED) {
		int e = errno;
		m->base = NULL;
		guest_mem_destroy(m);
		return verr_set(err, e, "cannot map memory file %s: %s", path, strerror(e));
	}
	m->size = size;
	m->private_file = true;
	return 0;
}

void guest_mem_destroy(struct guest_mem *m)
{
	if (m->base)
		munmap(m->base, (m->size + 4095) & ~4095ull);
	if (m->fd >= 0)
		close(m->fd);
	m->base = NULL;
	m->fd = -1;
	m->nregions = 0;
}

int guest_mem_add_region(struct guest_mem *m, uint64_t gpa, uint64_t fd_offset, uint64_t size,
			 struct verr *err)
{
	if (m->nregions >= GUEST_MEM_MAX_REGIONS)
		return verr_set(err, ENOSPC, "too many guest memory regions");
	if (size == 0 || fd_offset > m->size || size > m->size - fd_offset ||
	    gpa + size < gpa)
		return verr_set(err, EINVAL, "guest memory region out of range");
	m->regions[m->nregions++] = (struct guest_mem_region){
		.gpa = gpa, .size = size, .fd_offset = fd_offset, .hva = m->base + fd_offset,
	};
	return 0;
}

void *guest_mem_ptr(const struct guest_mem *m, uint64_t gpa, uint64_t len)
{
	for (unsigned i = 0; i < m->nregions; i++) {
		const struct guest_mem_region *r = &m->regions[i];
		if (gpa < r->gpa || gpa - r->gpa >= r->size)
			continue;
		if (len > r->size - (gpa - r->gpa))
			return NULL;
		return r->hva + (gpa - r->gpa);
	}
	return NULL;
}

int guest_mem_write(const struct guest_mem *m, uint64_t gpa, const void *src, uint64_t len,
		    struct verr *err)
{
	void *p = guest_mem_ptr(m, gpa, len);

	if (!p)
		return verr_set(err, EFAULT, "guest range 0x%llx+0x%llx is not RAM",
				(unsigned long long)gpa, (unsigned long long)len);
	memcpy(p, src, len);
	return 0;
}

int guest_mem_read(const struct guest_mem *m, uint64_t gpa, void *dst, uint64_t len,
		   struct verr *err)
{
	const void *p = guest_mem_ptr(m, gpa, len);

	if (!p)
		return verr_set(err, EFAULT, "guest range 0x%llx+0x%llx is not RAM",
				(unsigned long long)gpa, (unsigned long long)len);
	memcpy(dst, p, len);
	return 0;
}
