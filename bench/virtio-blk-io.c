/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Guest side of bench/virtio-blk.sh: a tiny static I/O load generator run
 * from the benchmark initramfs (fio is not there). O_DIRECT on the raw
 * device, so every request reaches the virtio-blk back end; queue depth N
 * is N threads each with one request in flight, which is what the block
 * multi-queue layer turns into N outstanding virtio requests.
 *
 *   virtio-blk-io DEV {randread|randwrite|read|write} BS QD SECONDS SPAN_MB
 * prints: RESULT <name> <ops> <bytes> <seconds>
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct job {
	const char *dev;
	int write, random;
	size_t bs;
	uint64_t span;
	double seconds;
	unsigned seed;
	uint64_t ops;
	uint64_t next;     /* sequential position, per thread */
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void *worker(void *arg)
{
	struct job *j = arg;
	int fd = open(j->dev, (j->write ? O_RDWR : O_RDONLY) | O_DIRECT);
	uint64_t blocks = j->span / j->bs;
	void *buf;
	double end;

	if (fd < 0 || posix_memalign(&buf, 4096, j->bs)) {
		perror(j->dev);
		return NULL;
	}
	memset(buf, 0x5a, j->bs);
	end = now() + j->seconds;
	while (now() < end) {
		uint64_t b = j->random ? (uint64_t)rand_r(&j->seed) % blocks : j->next++ % blocks;
		ssize_t n = j->write ? pwrite(fd, buf, j->bs, (off_t)(b * j->bs))
				     : pread(fd, buf, j->bs, (off_t)(b * j->bs));

		if (n != (ssize_t)j->bs) {
			perror("io");
			break;
		}
		j->ops++;
	}
	free(buf);
	close(fd);
	return NULL;
}

int main(int argc, char **argv)
{
	struct job jobs[64];
	pthread_t th[64];
	unsigned qd;
	uint64_t ops = 0;
	double t0, t;

	if (argc != 7) {
		fprintf(stderr, "usage: %s DEV randread|randwrite|read|write BS QD SECONDS SPAN_MB\n",
			argv[0]);
		return 2;
	}
	qd = (unsigned)atoi(argv[4]);
	if (qd < 1 || qd > 64)
		return 2;
	for (unsigned i = 0; i < qd; i++) {
		jobs[i] = (struct job){
			.dev = argv[1], .write = strstr(argv[2], "write") != NULL,
			.random = strncmp(argv[2], "rand", 4) == 0, .bs = (size_t)atol(argv[3]),
			.seconds = atof(argv[5]), .span = (uint64_t)atol(argv[6]) << 20,
			.seed = 12345 + i,
		};
		/* Sequential streams start in different places so they do not
		 * read the same blocks in lockstep. */
		jobs[i].next = i * (jobs[i].span / jobs[i].bs / qd);
	}
	t0 = now();
	for (unsigned i = 0; i < qd; i++)
		pthread_create(&th[i], NULL, worker, &jobs[i]);
	for (unsigned i = 0; i < qd; i++) {
		pthread_join(th[i], NULL);
		ops += jobs[i].ops;
	}
	t = now() - t0;
	printf("RESULT %s-%s-qd%u %llu %llu %.3f\n", argv[2], argv[3], qd,
	       (unsigned long long)ops, (unsigned long long)(ops * jobs[0].bs), t);
	return 0;
}
