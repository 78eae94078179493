/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the vmdk sparse header and descriptor parsers. */
#include "fuzz_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_image(data, size, "vmdk");
}
