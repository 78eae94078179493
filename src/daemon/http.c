/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon's two Unix sockets, served by libmicrohttpd (as the VM API):
 * RUN/vireod.sock (mode 0600, read-write) and RUN/vireod-ro.sock (mode
 * 0666, GET only). Each has one server thread that takes no signals.
 */
#include "daemon/internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "core/log.h"
#include "core/unix_sock.h"

#define HTTP_MAX_BODY (64u * 1024u)
#define HTTP_MAX_DISCARD (1024u * 1024u)

struct endpoint {
	struct daemon *d;
	bool read_only;
	struct MHD_Daemon *mhd;
	char path[108];
};

struct daemon_http {
	struct endpoint ep[2];
};

struct upload {
	char *buf;
	size_t len, total;
};

static enum MHD_Result reply(struct MHD_Connection *conn, int status, char *body)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;

	resp = body ? MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE)
		    : MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
	if (!resp) {
		free(body);
		return MHD_NO;
	}
	if (body)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	ret = MHD_queue_response(conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result gather(struct upload *up, const char *data, size_t *size)
{
	char *nb;

	if (*size > HTTP_MAX_DISCARD - up->total)
		return MHD_NO; /* far too large: drop the connection */
	up->total += *size;
	if (up->total <= HTTP_MAX_BODY) {
		nb = realloc(up->buf, up->len + *size + 1);
		if (!nb)
			return MHD_NO;
		memcpy(nb + up->len, data, *size);
		up->buf = nb;
		up->len += *size;
		up->buf[up->len] = '\0';
	}
	*size = 0;
	return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **req_cls)
{
	struct endpoint *ep = cls;
	struct upload *up = *req_cls;
	char *body = NULL;
	int status;

	(void)version;
	if (!up) {
		up = calloc(1, sizeof(*up));
		*req_cls = up;
		return up ? MHD_YES : MHD_NO;
	}
	if (*upload_data_size)
		return gather(up, upload_data, upload_data_size);
	if (up->total > HTTP_MAX_BODY)
		return reply(conn, 413, strdup("{\"error\": \"request body too large (the limit "
					       "is 65536 bytes)\"}"));
	daemon_handle(ep->d, ep->read_only, method, url, up->buf, up->len, &status, &body);
	log_debug("daemon", "%s %s -> %d", method, url, status);
	return reply(conn, status, body);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct upload *up = *req_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (up) {
		free(up->buf);
		free(up);
		*req_cls = NULL;
	}
}

static int start_endpoint(struct endpoint *ep, mode_t mode, struct verr *err)
{
	sigset_t all, old;
	int fd;

	/* The lock file keeps other daemons away, so a socket here is stale. */
	unlink(ep->path);
	fd = unix_listen(ep->path, 64, 0, mode, err);
	if (fd < 0)
		return fd;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	ep->mhd = MHD_start_daemon(MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ITC, 0, NULL, NULL,
				   on_request, ep, MHD_OPTION_LISTEN_SOCKET, fd,
				   MHD_OPTION_CONNECTION_LIMIT, 64u,
				   MHD_OPTION_CONNECTION_TIMEOUT, 30u,
				   MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
				   MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (!ep->mhd) {
		close(fd);
		unlink(ep->path);
		return verr_set(err, EIO, "cannot start the HTTP server on %s", ep->path);
	}
	log_info("daemon", "listening on %s", ep->path);
	return 0;
}

int daemon_http_start(struct daemon *d, struct daemon_http **out, struct verr *err)
{
	static const char *const names[2] = { "vireod.sock", "vireod-ro.sock" };
	struct daemon_http *h = calloc(1, sizeof(*h));
	int rc = 0, n;

	if (!h)
		return verr_set(err, ENOMEM, "out of memory");
	for (int i = 0; i < 2 && rc == 0; i++) {
		h->ep[i].d = d;
		h->ep[i].read_only = i == 1;
		n = snprintf(h->ep[i].path, sizeof(h->ep[i].path), "%s/%s", d->opts.run_dir,
			     names[i]);
		if (n < 0 || (size_t)n >= sizeof(h->ep[i].path))
			rc = verr_set(err, ENAMETOOLONG, "--run-dir %s is too long for a Unix "
				      "socket path", d->opts.run_dir);
		else
			rc = start_endpoint(&h->ep[i], i == 1 ? 0666 : 0600, err);
	}
	if (rc < 0) {
		daemon_http_stop(h);
		return rc;
	}
	*out = h;
	return 0;
}

void daemon_http_stop(struct daemon_http *h)
{
	if (!h)
		return;
	for (int i = 0; i < 2; i++) {
		if (h->ep[i].mhd) {
			MHD_stop_daemon(h->ep[i].mhd);
			unlink(h->ep[i].path);
		}
	}
	free(h);
}
