/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest side of test_linux_blk.py, built static into the initramfs:
 * busybox's blkdiscard has no -z, so this issues the block ioctls itself.
 *   blkrange zeroout DEV OFFSET LEN   BLKZEROOUT  (a write-zeroes request)
 *   blkrange discard DEV OFFSET LEN   BLKDISCARD
 * Prints "BLKRANGE <op> ok" or the errno's message, and exits non-zero on
 * failure so the test sees a refused request.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	unsigned long req;
	uint64_t range[2];
	int fd;

	if (argc != 5) {
		fprintf(stderr, "usage: blkrange zeroout|discard DEV OFFSET LEN\n");
		return 2;
	}
	if (!strcmp(argv[1], "zeroout"))
		req = BLKZEROOUT;
	else if (!strcmp(argv[1], "discard"))
		req = BLKDISCARD;
	else {
		fprintf(stderr, "blkrange: unknown operation '%s'\n", argv[1]);
		return 2;
	}
	range[0] = strtoull(argv[3], NULL, 0);
	range[1] = strtoull(argv[4], NULL, 0);
	fd = open(argv[2], O_RDWR);
	if (fd < 0) {
		printf("BLKRANGE %s open-failed %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (ioctl(fd, req, range) < 0) {
		printf("BLKRANGE %s failed %s\n", argv[1], strerror(errno));
		return 1;
	}
	close(fd);
	printf("BLKRANGE %s ok\n", argv[1]);
	return 0;
}
