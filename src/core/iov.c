/* SPDX-License-Identifier: Apache-2.0 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "core/iov.h"

/* Walk the segments from byte `skip` on, copying len bytes one way. */
static size_t iov_copy(const struct iovec *iov, unsigned n, size_t skip, uint8_t *buf,
		       size_t len, bool to_buf)
{
	size_t done = 0;

	for (unsigned i = 0; i < n && done < len; i++) {
		size_t l = iov[i].iov_len;

		if (skip >= l) {
			skip -= l;
			continue;
		}
		l -= skip;
		if (l > len - done)
			l = len - done;
		if (to_buf)
			memcpy(buf + done, (uint8_t *)iov[i].iov_base + skip, l);
		else
			memcpy((uint8_t *)iov[i].iov_base + skip, buf + done, l);
		skip = 0;
		done += l;
	}
	return done;
}

size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len)
{
	return iov_copy(iov, n, skip, buf, len, true);
}

size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t skip, const void *buf,
		    size_t len)
{
	return iov_copy(iov, n, skip, (uint8_t *)(uintptr_t)buf, len, false);
}
