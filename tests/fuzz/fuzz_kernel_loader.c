/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: arbitrary bytes as a kernel file (and, split off its
 * tail, an initrd) through the bzImage/PVH identification and loaders. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "arch/x86/boot.h"

#define MEM (32ull << 20)

struct membuf {
	const uint8_t *data;
};

static int mem_read_at(void *ctx, uint64_t off, void *buf, size_t len)
{
	struct membuf *m = ctx;
	memcpy(buf, m->data + off, len);
	return (int)len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct guest_mem g;
	static int ready;
	struct verr err = { 0 };
	struct membuf km = { data }, im = { data };
	struct boot_reader k = { mem_read_at, &km, size, "fuzz" };
	struct boot_reader ir = { mem_read_at, &im, size / 4, "initrd" };
	struct x86_mem_layout l = x86_mem_layout_for(MEM);
	struct boot_params_in in = { &l, "console=ttyS0", size & 1 ? &ir : NULL, 0xe0000 };
	struct boot_result out;

	if (!ready) {
		if (guest_mem_create(&g, MEM, &err) < 0 || guest_mem_add_region(&g, 0, 0, MEM, &err) < 0)
			return 0;
		ready = 1;
	}
	x86_boot_load(&g, &k, &in, &out, &err);
	return 0;
}
