/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: the qcow2 header, table and snapshot parsers. */
#include "fuzz_image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	return fuzz_image(data, size, "qcow2");
}
