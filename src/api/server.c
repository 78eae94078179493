/* SPDX-License-Identifier: Apache-2.0 */
/* The HTTP side: a Unix socket served by libmicrohttpd on its own thread. */
#include "api/api.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api/internal.h"
#include "core/log.h"
#include "core/unix_sock.h"

/* Slow or idle clients must not hold connections forever. */
#define API_CONN_TIMEOUT_S 30u
#define API_CONN_LIMIT 32u

struct api_server {
	struct MHD_Daemon *mhd;
	const struct vmm_ctl_ops *ops;
	void *ctx;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
};

/* One request's body, gathered across the access handler's calls. */
struct api_upload {
	char *buf;
	size_t len;
	size_t total;  /* bytes received, kept or not */
	bool replied;  /* a 413 went out before the body was read */
};

/* libmicrohttpd can only queue a reply before or after the body. A body a
 * little over the limit is read and dropped, then answered with 413, so the
 * client, still writing, does not meet a closed socket; one declared larger
 * than this gets its 413 at once, and one that grows past it (chunked) has
 * its connection closed. */
#define API_MAX_DISCARD (16u * API_MAX_BODY)

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
	char msg[256];
	size_t n;

	(void)cls;
	vsnprintf(msg, sizeof(msg), fmt, ap);
	n = strlen(msg);
	while (n && msg[n - 1] == '\n')
		msg[--n] = '\0';
	log_debug("api", "libmicrohttpd: %s", msg);
}

static enum MHD_Result send_reply(struct MHD_Connection *conn, int status, char *body,
				  const char *url)
{
	struct MHD_Response *resp;
	enum MHD_Result ret;
	const char *allow;

	if (body) {
		resp = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
		if (!resp) {
			free(body);
			return MHD_NO;
		}
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	} else {
		resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
		if (!resp)
			return MHD_NO;
	}
	allow = status == 405 && url ? api_allowed_methods(url) : NULL;
	if (allow)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
	ret = MHD_queue_response(conn, (unsigned)status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result refuse_too_large(struct MHD_Connection *conn)
{
	char *body = strdup("{\"fault_message\": \"request body too large (the limit is "
			    "65536 bytes)\"}");

	if (!body)
		return MHD_NO;
	return send_reply(conn, 413, body, NULL);
}

static bool declared_too_large(struct MHD_Connection *conn)
{
	const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
						     MHD_HTTP_HEADER_CONTENT_LENGTH);
	char *end;
	unsigned long long v;

	if (!cl)
		return false;
	errno = 0;
	v = strtoull(cl, &end, 10);
	return errno != 0 || v > API_MAX_DISCARD;
}

static enum MHD_Result gather(struct api_upload *up, const char *data, size_t *size)
{
	char *nb;

	if (up->replied || *size > API_MAX_DISCARD - up->total)
		return MHD_NO;
	up->total += *size;
	if (up->total > API_MAX_BODY) {
		*size = 0;
		return MHD_YES;
	}
	nb = realloc(up->buf, up->len + *size + 1);
	if (!nb)
		return MHD_NO;
	memcpy(nb + up->len, data, *size);
	up->buf = nb;
	up->len += *size;
	up->buf[up->len] = '\0';
	*size = 0;
	return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size,
				  void **req_cls)
{
	struct api_server *s = cls;
	struct api_upload *up = *req_cls;
	char *body = NULL;
	int status = 500;

	(void)version;
	if (!up) {
		up = calloc(1, sizeof(*up));
		if (!up)
			return MHD_NO;
		*req_cls = up;
		if (!declared_too_large(conn))
			return MHD_YES;
		up->replied = true;
		return refuse_too_large(conn);
	}
	if (*upload_data_size)
		return gather(up, upload_data, upload_data_size);
	if (up->replied)
		return MHD_YES;
	if (up->total > API_MAX_BODY)
		return refuse_too_large(conn);
	api_handle_request(s->ops, s->ctx, method, url, up->buf, up->len, &status, &body);
	log_debug("api", "%s %s -> %d", method, url, status);
	return send_reply(conn, status, body, url);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct api_upload *up = *req_cls;

	(void)cls;
	(void)conn;
	(void)toe;
	if (up) {
		free(up->buf);
		free(up);
		*req_cls = NULL;
	}
}

/* A socket file left by a dead server is replaced; a live one is not. */
static int clear_stale(const struct sockaddr_un *sa, struct verr *err)
{
	struct stat st;
	int probe, rc;

	if (lstat(sa->sun_path, &st) < 0)
		return 0;
	if (!S_ISSOCK(st.st_mode))
		return verr_set(err, EEXIST, "%s exists and is not a socket", sa->sun_path);
	probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (probe < 0)
		return verr_set(err, errno, "socket: %s", strerror(errno));
	rc = connect(probe, (const struct sockaddr *)sa, sizeof(*sa));
	close(probe);
	if (rc == 0)
		return verr_set(err, EADDRINUSE, "%s: another server is listening there",
				sa->sun_path);
	if (unlink(sa->sun_path) < 0 && errno != ENOENT)
		return verr_set(err, errno, "cannot remove the stale socket %s: %s",
				sa->sun_path, strerror(errno));
	return 0;
}

static int listen_unix(const char *path, struct verr *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int rc;

	if (!path[0] || strlen(path) >= sizeof(sa.sun_path))
		return verr_set(err, ENAMETOOLONG, "API socket path '%.200s' is empty or longer "
				"than %zu bytes", path, sizeof(sa.sun_path) - 1);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	rc = clear_stale(&sa, err);
	if (rc < 0)
		return rc;
	/* Only this user may connect: the API controls the VM. */
	return unix_listen(path, 16, 0, 0600, err);
}

/* The server thread takes no signals: SIGINT/SIGTERM, SIGWINCH or vCPU
 * kicks are the VMM's, and must not land on (or interrupt) this thread. It
 * inherits the mask of the thread that creates it, hence the dance. */
static struct MHD_Daemon *start_mhd(struct api_server *s, int fd)
{
	struct MHD_Daemon *d;
	sigset_t all, old;

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	/* poll, not epoll: with epoll libmicrohttpd 0.9.75 sometimes misses a
	 * client's half-close on a Unix socket and holds the connection until
	 * the timeout. */
	d = MHD_start_daemon(MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG,
			     0, NULL, NULL, on_request, s,
			     MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
			     MHD_OPTION_LISTEN_SOCKET, fd,
			     MHD_OPTION_CONNECTION_LIMIT, API_CONN_LIMIT,
			     MHD_OPTION_CONNECTION_TIMEOUT, API_CONN_TIMEOUT_S,
			     MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
			     MHD_OPTION_END);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return d;
}

int api_server_start(struct api_server **out, const char *socket_path,
		     const struct vmm_ctl_ops *ops, void *ctx, struct verr *err)
{
	struct api_server *s;
	int fd;

	*out = NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return verr_set(err, ENOMEM, "out of memory");
	fd = listen_unix(socket_path, err);
	if (fd < 0) {
		free(s);
		return fd;
	}
	s->ops = ops;
	s->ctx = ctx;
	memcpy(s->path, socket_path, strlen(socket_path) + 1);
	s->mhd = start_mhd(s, fd);
	if (!s->mhd) {
		close(fd);
		unlink(socket_path);
		free(s);
		return verr_set(err, EIO, "cannot start the HTTP server on %s", socket_path);
	}
	log_info("api", "listening on %s", socket_path);
	*out = s;
	return 0;
}

void api_server_stop(struct api_server *s)
{
	if (!s)
		return;
	/* Also closes the listening socket MHD was handed. */
	MHD_stop_daemon(s->mhd);
	unlink(s->path);
	free(s);
}
