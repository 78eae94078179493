/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest side of test_vhost_user_vsock.py, built static into the initramfs.
 *   vsock-test connect PORT NBYTES  send a pattern to the host (CID 2), half-
 *                                   close, read the echo: "ECHO <n> <fnv>"
 *   vsock-test listen PORT          accept one host connection, read to EOF,
 *                                   answer "GOT <n> <fnv>\n": "SERVED <n> <fnv>"
 */
#include <linux/vm_sockets.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static uint32_t fnv(uint32_t h, const uint8_t *p, size_t n)
{
	while (n--)
		h = (h ^ *p++) * 16777619u;
	return h;
}

static int do_connect(unsigned port, size_t total)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = 2, .svm_port = port };
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);
	uint8_t buf[8192];
	size_t sent = 0, got = 0;
	uint32_t h = 2166136261u;

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror("vsock connect");
		return 1;
	}
	while (sent < total) {
		size_t n = total - sent < sizeof(buf) ? total - sent : sizeof(buf);
		ssize_t w;

		for (size_t i = 0; i < n; i++)
			buf[i] = (uint8_t)((sent + i) * 7 % 251);
		w = write(fd, buf, n);
		if (w <= 0) {
			perror("vsock write");
			return 1;
		}
		sent += (size_t)w;
		/* Read some echo as we go so neither side's credit runs dry. */
		ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r > 0) {
			h = fnv(h, buf, (size_t)r);
			got += (size_t)r;
		}
	}
	shutdown(fd, SHUT_WR);
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r <= 0)
			break;
		h = fnv(h, buf, (size_t)r);
		got += (size_t)r;
	}
	printf("ECHO %zu %08x\n", got, h);
	close(fd);
	return 0;
}

static int do_listen(unsigned port)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
				  .svm_port = port };
	int lfd = socket(AF_VSOCK, SOCK_STREAM, 0), fd;
	uint8_t buf[8192];
	size_t got = 0;
	uint32_t h = 2166136261u;
	char reply[64];
	int n;

	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0) {
		perror("vsock listen");
		return 1;
	}
	printf("LISTENING %u\n", port);
	fflush(stdout);
	fd = accept(lfd, NULL, NULL);
	if (fd < 0) {
		perror("vsock accept");
		return 1;
	}
	for (;;) {
		ssize_t r = read(fd, buf, sizeof(buf));

		if (r <= 0)
			break;
		h = fnv(h, buf, (size_t)r);
		got += (size_t)r;
	}
	n = snprintf(reply, sizeof(reply), "GOT %zu %08x\n", got, h);
	if (write(fd, reply, (size_t)n) != n)
		perror("vsock reply");
	printf("SERVED %zu %08x\n", got, h);
	close(fd);
	close(lfd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "connect"))
		return do_connect((unsigned)atoi(argv[2]), (size_t)atol(argv[3]));
	if (argc == 3 && !strcmp(argv[1], "listen"))
		return do_listen((unsigned)atoi(argv[2]));
	fprintf(stderr, "usage: vsock-test connect PORT NBYTES | listen PORT\n");
	return 2;
}
