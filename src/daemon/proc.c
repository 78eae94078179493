/* SPDX-License-Identifier: Apache-2.0 */
/* A process's identity: its pid plus its start time (/proc/PID/stat field
 * 22, in clock ticks since boot), so a recycled pid is never taken for a VM. */
#include "daemon/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int proc_start_time(pid_t pid, uint64_t *start_time)
{
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return -EIO;
	buf[n] = '\0';
	/* comm (field 2) may hold spaces and parentheses: count from the last ')'. */
	p = strrchr(buf, ')');
	if (!p)
		return -EIO;
	/* p + 2 is field 3 (state); a zombie has no VM left in it. */
	if (p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
		return -ESRCH;
	for (field = 3, p += 2; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -EIO;
		p++;
	}
	*start_time = strtoull(p, NULL, 10);
	return 0;
}

bool proc_is(pid_t pid, uint64_t start_time)
{
	uint64_t t;

	return pid > 0 && proc_start_time(pid, &t) == 0 && t == start_time;
}
