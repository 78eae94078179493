/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The vireo snapshot state file: a fixed header, then tag-length-value
 * sections. The header carries a format version and a CRC32 of the whole
 * payload; a file from another version, a damaged or truncated file, or one
 * with sections out of bounds is refused before anything is restored.
 *
 *   0  8  magic "VIREOSNP"
 *   8  4  format version (SNAPSHOT_VERSION)
 *  12  4  flags (0)
 *  16  8  payload length
 *  24  4  CRC32 (zlib) of the payload
 *  28  4  reserved (0)
 *  32  .. payload: sections { u32 tag, u32 length, bytes }
 */
#ifndef VIREO_STATE_FORMAT_H
#define VIREO_STATE_FORMAT_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/err.h"

#define SNAPSHOT_MAGIC "VIREOSNP"
#define SNAPSHOT_VERSION 1
#define SNAPSHOT_HEADER_SIZE 32
#define SNAPSHOT_MAX_SIZE (64u << 20)   /* state files are small: memory is apart */

enum snapshot_section {
	SNAP_CONFIG = 1,     /* struct snapshot_config */
	SNAP_VM = 2,         /* accelerator VM state blob */
	SNAP_VCPU = 3,       /* u32 index, then the accelerator's vCPU blob */
	SNAP_DEV_UART = 10,
	SNAP_DEV_RTC,
	SNAP_DEV_I8042,
	SNAP_DEV_PM,
	SNAP_DEV_PCI,
	SNAP_VIRTIO_DEVICES = 20, /* what the VM's virtio devices are (disks, nets, rng) */
	SNAP_VIRTIO = 21,         /* u32 index, then the transport's state */
};

struct snapshot_config {
	uint32_t ncpus;
	uint32_t page_size;
	uint64_t mem_size;
	uint64_t lowmem;
	uint64_t highmem;
};

/* Wraps payload (sections) with the header into out. */
int snapshot_encode(const struct vbuf *payload, struct vbuf *out, struct verr *err);
/* Checks the header, version, length and CRC; on success *payload points
 * into data. name is used in messages. */
int snapshot_decode(const uint8_t *data, size_t len, const char *name, const uint8_t **payload,
		    size_t *payload_len, struct verr *err);

#endif
