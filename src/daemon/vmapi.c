/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon's side of a VM's API socket: one small HTTP/1.1 request per
 * connection, answered in full or cut at the caller's buffer. The VM is
 * another process: its answer is bounded in size and time like any input. */
#include "daemon/internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#define VMAPI_TIMEOUT_MS 3000

static int connect_to(const char *path, struct verr *err)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { VMAPI_TIMEOUT_MS / 1000, (VMAPI_TIMEOUT_MS % 1000) * 1000 };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return verr_set(err, ENAMETOOLONG, "%s: socket path too long", path);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return verr_set(err, errno, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		return verr_set(err, e, "cannot reach the VM's API at %s: %s", path, strerror(e));
	}
	return fd;
}

static int send_all(int fd, const char *buf, size_t len, struct verr *err)
{
	while (len) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return verr_set(err, errno ? errno : EIO, "writing to the VM's API: %s",
					strerror(errno));
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Reads until EOF or the buffer is full; returns the bytes read. */
static ssize_t recv_all(int fd, char *buf, size_t size, struct verr *err)
{
	size_t len = 0;

	while (len < size - 1) {
		ssize_t n = recv(fd, buf + len, size - 1 - len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return verr_set(err, errno, "reading the VM's API answer: %s", strerror(errno));
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return (ssize_t)len;
}

static int parse_answer(char *raw, int *status, char *resp, size_t size, struct verr *err)
{
	char *body;

	if (sscanf(raw, "HTTP/1.%*1[01] %3d", status) != 1 || *status < 100 || *status > 599)
		return verr_set(err, EPROTO, "the VM's API answered something other than HTTP");
	body = strstr(raw, "\r\n\r\n");
	snprintf(resp, size, "%s", body ? body + 4 : "");
	return 0;
}

int vmapi_call(const char *sock, const char *method, const char *path, const char *body,
	       int *status, char *resp, size_t size, struct verr *err)
{
	char req[1024], raw[8192];
	int fd, n, rc;

	n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
		     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s", method,
		     path, body ? strlen(body) : 0, body ? body : "");
	if (n < 0 || (size_t)n >= sizeof(req))
		return verr_set(err, E2BIG, "request to the VM too large");
	fd = connect_to(sock, err);
	if (fd < 0)
		return fd;
	rc = send_all(fd, req, (size_t)n, err);
	if (rc == 0)
		rc = recv_all(fd, raw, sizeof(raw), err) < 0 ? -EIO : 0;
	close(fd);
	if (rc < 0)
		return rc;
	return parse_answer(raw, status, resp, size, err);
}
