/* SPDX-License-Identifier: Apache-2.0 */
/* Guest RAM must be mappable by KVM with 2 MiB pages: 2 MiB aligned and
 * advised for transparent huge pages. On a memfd (shmem, 4 KiB pages by
 * default) a Linux boot took 26,752 nested page faults instead of ~1,400. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/guest_mem.h"

/* The VmFlags line of the mapping that starts at addr, from /proc/self/smaps. */
static int vm_flags(const void *addr, char *out, size_t len)
{
	char line[512], want[32];
	FILE *f = fopen("/proc/self/smaps", "r");
	int found = 0;

	if (!f)
		return -errno;
	snprintf(want, sizeof(want), "%lx-", (unsigned long)(uintptr_t)addr);
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, want, strlen(want)))
			found = 1;
		else if (found && !strncmp(line, "VmFlags:", 8)) {
			size_t n = strlen(line + 8);
			n = n < len ? n : len - 1;
			memcpy(out, line + 8, n);
			out[n] = 0;
			break;
		}
	}
	fclose(f);
	return found ? 0 : -ENOENT;
}

static void ram_is_huge_page_ready(void **state)
{
	struct guest_mem m;
	struct verr err = { 0 };
	char flags[256] = "";

	(void)state;
	assert_int_equal(guest_mem_create(&m, (256ull << 20) + 4096, &err), 0);
	assert_int_equal((uintptr_t)m.base & ((2u << 20) - 1), 0);
	assert_int_equal(m.fd, -1);
	/* MADV_HUGEPAGE from 2 MiB up; the first 2 MiB keep small pages */
	assert_int_equal(vm_flags(m.base + (2u << 20), flags, sizeof(flags)), 0);
	assert_non_null(strstr(flags, " hg"));
	assert_int_equal(vm_flags(m.base, flags, sizeof(flags)), 0);
	assert_null(strstr(flags, " hg"));
	m.base[0] = 1;
	m.base[m.size - 1] = 2;                  /* the whole size is mapped */
	assert_int_equal(guest_mem_add_region(&m, 0, 0, m.size, &err), 0);
	assert_ptr_equal(guest_mem_ptr(&m, m.size - 1, 1), m.base + m.size - 1);
	guest_mem_destroy(&m);
	assert_null(m.base);
}

static void ram_rejects_zero_size(void **state)
{
	struct guest_mem m;
	struct verr err = { 0 };

	(void)state;
	assert_int_equal(guest_mem_create(&m, 0, &err), -EINVAL);
	guest_mem_destroy(&m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ram_is_huge_page_ready),
		cmocka_unit_test(ram_rejects_zero_size),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
