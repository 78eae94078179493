/* SPDX-License-Identifier: Apache-2.0 */
/* libFuzzer target: arbitrary bytes as a snapshot state file, both as they
 * are (header, version, CRC) and wrapped as the payload of a well-formed
 * header so that the section parser and the virtio device list see them. */
#include <stddef.h>
#include <stdint.h>

#include "state/format.h"
#include "vmm/vm.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct verr err = { 0 };
	struct vbuf payload = { 0 }, file = { 0 };

	vm_snapshot_check(data, size, "fuzz", &err);
	vbuf_put(&payload, data, size);
	verr_clear(&err);
	if (!payload.oom && snapshot_encode(&payload, &file, &err) == 0) {
		verr_clear(&err);
		vm_snapshot_check(file.data, file.len, "fuzz", &err);
	}
	vbuf_free(&payload);
	vbuf_free(&file);
	return 0;
}
