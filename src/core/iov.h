/* SPDX-License-Identifier: Apache-2.0 */
/* Copies between a scatter-gather list and a flat buffer. */
#ifndef VIREO_CORE_IOV_H
#define VIREO_CORE_IOV_H

#include <stddef.h>
#include <sys/uio.h>

/* Copy up to len bytes starting `skip` bytes into the n segments of iov;
 * returns the bytes copied (fewer when the segments end first). */
size_t iov_to_buf(const struct iovec *iov, unsigned n, size_t skip, void *buf, size_t len);
size_t iov_from_buf(const struct iovec *iov, unsigned n, size_t skip, const void *buf,
		    size_t len);

#endif
