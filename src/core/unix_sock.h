/* SPDX-License-Identifier: Apache-2.0 */
/* Listening Unix stream sockets whose file appears only once they listen. */
#ifndef VIREO_CORE_UNIX_SOCK_H
#define VIREO_CORE_UNIX_SOCK_H

#include <sys/types.h>

#include "core/err.h"

/*
 * Creates a SOCK_STREAM socket (plus sock_flags, e.g. SOCK_NONBLOCK; always
 * SOCK_CLOEXEC) listening on path with the given backlog; mode, when not 0,
 * is applied to the socket file before it listens. Clients wait for the
 * file to appear and then connect, so the file must not exist before
 * listen(): the socket is bound under a temporary name beside path and
 * renamed over path once it listens (in place when the temporary name
 * does not fit in sun_path). An existing path is replaced. Returns the fd,
 * or a negative errno with err naming the path; nothing is left behind on
 * failure.
 */
int unix_listen(const char *path, int backlog, int sock_flags, mode_t mode, struct verr *err);

#endif
