/* SPDX-License-Identifier: Apache-2.0 */
#include "state/format.h"

#include <errno.h>
#include <string.h>
#include <zlib.h>

static uint32_t crc_of(const uint8_t *p, size_t n)
{
	uLong crc = crc32(0L, Z_NULL, 0);

	while (n > 0) {
		uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
		crc = crc32(crc, p, chunk);
		p += chunk;
		n -= chunk;
	}
	return (uint32_t)crc;
}

int snapshot_encode(const struct vbuf *payload, struct vbuf *out, struct verr *err)
{
	uint8_t h[SNAPSHOT_HEADER_SIZE];
	uint32_t v = SNAPSHOT_VERSION, zero = 0, crc;
	uint64_t len = payload->len;

	if (payload->oom)
		return verr_set(err, ENOMEM, "out of memory while saving state");
	crc = crc_of(payload->data, payload->len);
	memcpy(h, SNAPSHOT_MAGIC, 8);
	memcpy(h + 8, &v, 4);
	memcpy(h + 12, &zero, 4);
	memcpy(h + 16, &len, 8);
	memcpy(h + 24, &crc, 4);
	memcpy(h + 28, &zero, 4);
	vbuf_put(out, h, sizeof(h));
	vbuf_put(out, payload->data, payload->len);
	return out->oom ? verr_set(err, ENOMEM, "out of memory while saving state") : 0;
}

int snapshot_decode(const uint8_t *data, size_t len, const char *name, const uint8_t **payload,
		    size_t *payload_len, struct verr *err)
{
	uint32_t version, flags, crc;
	uint64_t plen;

	if (len < SNAPSHOT_HEADER_SIZE)
		return verr_set(err, EINVAL, "%s: too short to be a vireo snapshot (%zu bytes)", name, len);
	if (memcmp(data, SNAPSHOT_MAGIC, 8) != 0)
		return verr_set(err, EINVAL, "%s: not a vireo snapshot state file (bad magic)", name);
	memcpy(&version, data + 8, 4);
	memcpy(&flags, data + 12, 4);
	memcpy(&plen, data + 16, 8);
	memcpy(&crc, data + 24, 4);
	if (version != SNAPSHOT_VERSION)
		return verr_set(err, ENOTSUP, "%s: snapshot format version %u; this vireo reads version %u",
				name, version, SNAPSHOT_VERSION);
	if (flags != 0)
		return verr_set(err, ENOTSUP, "%s: unknown snapshot flags 0x%x", name, flags);
	if (plen != len - SNAPSHOT_HEADER_SIZE)
		return verr_set(err, EINVAL, "%s: truncated or padded: header says %llu payload bytes, file has %zu",
				name, (unsigned long long)plen, len - SNAPSHOT_HEADER_SIZE);
	if (crc_of(data + SNAPSHOT_HEADER_SIZE, plen) != crc)
		return verr_set(err, EINVAL, "%s: checksum mismatch: the snapshot is damaged", name);
	*payload = data + SNAPSHOT_HEADER_SIZE;
	*payload_len = plen;
	return 0;
}
