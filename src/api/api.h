/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The control API: Firecracker-compatible HTTP/1.1 + JSON over a Unix
 * socket (see src/api/README.md for the endpoints and status codes).
 *
 * The API layer owns HTTP and JSON: it checks shapes, types, sizes and
 * unknown fields, and calls struct vmm_ctl_ops. The VMM owns the state
 * machine (what is allowed before and after boot) and refuses with a verr.
 */
#ifndef VIREO_API_API_H
#define VIREO_API_API_H

#include <stddef.h>

#include "core/err.h"
#include "vmm/control.h"

/* Request bodies above this are refused with 413, before any parsing. */
#define API_MAX_BODY (64u * 1024u)
/* A --config-file above this is refused. */
#define API_MAX_CONFIG_FILE (1024u * 1024u)

struct api_server;

/*
 * Create the Unix socket at socket_path (mode 0600), and serve it on one
 * thread of its own, so requests never run on a vCPU or the VMM's loop.
 * The ops are called from that thread, one request at a time. A stale
 * socket file nobody listens on is replaced; a live one is EADDRINUSE.
 */
int api_server_start(struct api_server **out, const char *socket_path,
		     const struct vmm_ctl_ops *ops, void *ctx, struct verr *err);
/* Stop serving (waits for the request in flight) and remove the socket file.
 * NULL is a no-op. */
void api_server_stop(struct api_server *s);

/*
 * The routing and JSON core, without HTTP: method ("GET", "PUT", ...), path
 * ("/drives/rootfs"), and the request body (need not be NUL-terminated; NULL
 * when body_len is 0). Always sets *status (200, 204, 400, 404, 405, 413 or
 * 500) and *response_body: a malloc'd JSON text for the caller to free(),
 * or NULL when there is no body (204). Returns 0, or -ENOMEM when even the
 * error response could not be built (then *status is 500 and the body NULL).
 */
int api_handle_request(const struct vmm_ctl_ops *ops, void *ctx, const char *method,
		       const char *path, const char *body, size_t body_len, int *status,
		       char **response_body);

/*
 * Apply a Firecracker --config-file JSON ({"boot-source": {...}, "drives":
 * [...], "machine-config": {...}, "network-interfaces": [...], "vsock":
 * {...}}) through the same ops and checks as the HTTP API: machine-config
 * first, then boot-source, drives, network interfaces and vsock. Stops at
 * the first refusal; err names the file and the field.
 */
int api_load_config_file(const char *path, const struct vmm_ctl_ops *ops, void *ctx,
			 struct verr *err);

#endif
