/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest side of the network row of bench/linux-lab.sh: a tiny static TCP
 * sender (busybox nc would add a pipe and a second copy per byte, which
 * the emulated guest CPU pays for). Sends MIB MiB of zeros to HOST:PORT
 * in 256 KiB writes, shuts its side down and waits for the receiver to
 * close, so the time covers every byte having reached the host.
 *
 *   net-send HOST PORT MIB
 * prints: RESULT net-send <bytes> <seconds>
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK (256u << 10)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int connect_to(const char *host, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
		return -1;
	/* The receiver may still be starting on the host: retry for ~30 s. */
	for (int i = 0; i < 300; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);

		if (fd < 0)
			return -1;
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		close(fd);
		usleep(100000);
	}
	return -1;
}

int main(int argc, char **argv)
{
	static char buf[CHUNK];
	uint64_t total, sent = 0;
	double t0;
	int fd;

	if (argc != 4) {
		fprintf(stderr, "usage: %s HOST PORT MIB\n", argv[0]);
		return 2;
	}
	total = (uint64_t)atol(argv[3]) << 20;
	fd = connect_to(argv[1], atoi(argv[2]));
	if (fd < 0) {
		perror("connect");
		return 1;
	}
	t0 = now();
	while (sent < total) {
		size_t n = total - sent < CHUNK ? (size_t)(total - sent) : CHUNK;
		ssize_t w = write(fd, buf, n);

		if (w <= 0) {
			perror("write");
			return 1;
		}
		sent += (uint64_t)w;
	}
	shutdown(fd, SHUT_WR);
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	printf("RESULT net-send %llu %.3f\n", (unsigned long long)sent, now() - t0);
	close(fd);
	return 0;
}
