/* SPDX-License-Identifier: Apache-2.0 */
/* Unix listening sockets; see unix_sock.h. */
#include "core/unix_sock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int unix_listen(const char *path, int backlog, int sock_flags, mode_t mode, struct verr *err)
{
	struct sockaddr_un tmp = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	int fd, rc;

	if (!len || len >= sizeof(tmp.sun_path))
		return verr_set(err, ENAMETOOLONG, "socket path '%.200s' is empty or longer "
				"than %zu bytes", path, sizeof(tmp.sun_path) - 1);
	if (snprintf(tmp.sun_path, sizeof(tmp.sun_path), "%s.%d", path, (int)getpid()) >=
	    (int)sizeof(tmp.sun_path))
		memcpy(tmp.sun_path, path, len + 1);	/* no room: bind in place */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | sock_flags, 0);
	if (fd < 0)
		return verr_set(err, errno, "socket for %s: %s", path, strerror(errno));
	unlink(tmp.sun_path);
	if (bind(fd, (struct sockaddr *)&tmp, sizeof(tmp)) < 0) {
		rc = verr_set(err, errno, "cannot bind %s: %s", path, strerror(errno));
		close(fd);
		return rc;
	}
	/* chmod before listen: no moment in which a client the mode keeps out
	 * could connect. */
	if ((mode && chmod(tmp.sun_path, mode) < 0) || listen(fd, backlog) < 0 ||
	    (strcmp(tmp.sun_path, path) != 0 && rename(tmp.sun_path, path) < 0)) {
		rc = verr_set(err, errno, "cannot listen on %s: %s", path, strerror(errno));
		close(fd);
		unlink(tmp.sun_path);
		return rc;
	}
	return fd;
}
