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

/* Fields 14 and 15 of /proc/PID/stat, and field 2 of /proc/PID/statm. */
int proc_usage(pid_t pid, uint64_t *cpu_ms, uint64_t *rss_bytes)
{
	unsigned long long utime, stime, pages;
	char path[64], buf[1024], *p;
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
			 &utime, &stime) != 2)
		return -EIO;
	*cpu_ms = (utime + stime) * 1000ull / (unsigned long long)sysconf(_SC_CLK_TCK);
	snprintf(path, sizeof(path), "/proc/%d/statm", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	if (sscanf(buf, "%*u %llu", &pages) != 1)
		return -EIO;
	*rss_bytes = pages * (unsigned long long)sysconf(_SC_PAGESIZE);
	return 0;
}
