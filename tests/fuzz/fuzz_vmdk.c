/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the vmdk descriptor, sparse header, grain tables and
 * (stream) compressed grains. The input is a file named fuzz.vmdk, the name
 * the seeds' extent lines give (tests/fuzz/seeds/vmdk), so that a monolithic
 * image reaches its own extent rather than stopping at a missing file. */
#include "fuzz_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_image_named(data, size, "vmdk", "fuzz.vmdk");
}
