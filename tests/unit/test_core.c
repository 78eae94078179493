/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "core/err.h"
#include "core/size.h"
#include "core/unix_sock.h"

static void size_units(void **state)
{
	uint64_t v;
	struct verr err = {0};
	(void)state;
	assert_int_equal(size_parse("128M", 0, &v, &err), 0);
	assert_int_equal(v, 128ull << 20);
	assert_int_equal(size_parse("4G", 0, &v, &err), 0);
	assert_int_equal(v, 4ull << 30);
	assert_int_equal(size_parse("4GiB", 0, &v, &err), 0);
	assert_int_equal(v, 4ull << 30);
	assert_int_equal(size_parse("512", 'M', &v, &err), 0);
	assert_int_equal(v, 512ull << 20);
	assert_int_equal(size_parse("4096", 0, &v, &err), 0);
	assert_int_equal(v, 4096);
}

static void size_rejects(void **state)
{
	static const char *const bad[] = { "", "M", "-1", "12Q", "1.5G", "4G junk",
		"99999999999999999999", "17179869184G", " 4G" };
	uint64_t v;
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct verr err = {0};
		assert_true(size_parse(bad[i], 0, &v, &err) < 0);
		assert_true(err.msg[0] != '\0');
	}
}

static void err_first_wins(void **state)
{
	struct verr err = {0};
	(void)state;
	assert_int_equal(verr_set(&err, EINVAL, "first %d", 1), -EINVAL);
	assert_int_equal(verr_set(&err, ENOENT, "second"), -ENOENT);
	assert_string_equal(err.msg, "first 1");
	assert_int_equal(err.code, EINVAL);
	verr_prefix(&err, "%s: ", "disk.img");
	assert_string_equal(err.msg, "disk.img: first 1");
}

static int connect_to(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc;

	assert_true(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	return rc;
}

/* Number of entries in dir besides . and .. */
static int entries(const char *dir)
{
	char cmd[256];
	FILE *f;
	int n = -1;

	snprintf(cmd, sizeof(cmd), "ls -A '%s' | wc -l", dir);
	f = popen(cmd, "r");
	assert_non_null(f);
	assert_int_equal(fscanf(f, "%d", &n), 1);
	pclose(f);
	return n;
}

/* The file appears listening, with its mode, replacing what was there, and
 * no temporary name is left beside it. */
static void unix_listen_renames_a_listening_socket(void **state)
{
	char dir[] = "/tmp/vireo-unix-XXXXXX", path[128];
	struct verr err = {0};
	struct stat st;
	int fd;
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	fclose(fopen(path, "w"));
	fd = unix_listen(path, 4, SOCK_NONBLOCK, 0600, &err);
	assert_true(fd >= 0);
	assert_int_equal(stat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(connect_to(path), 0);
	assert_int_equal(entries(dir), 1);
	close(fd);
	unlink(path);
	rmdir(dir);
}

/* A path too long for a temporary name beside it is bound in place. */
static void unix_listen_long_path_in_place(void **state)
{
	char dir[] = "/tmp/vireo-unix-XXXXXX", path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	struct verr err = {0};
	size_t n;
	int fd;
	(void)state;
	assert_non_null(mkdtemp(dir));
	n = (size_t)snprintf(path, sizeof(path), "%s/", dir);
	memset(path + n, 'x', sizeof(path) - 1 - n);
	path[sizeof(path) - 1] = '\0';
	fd = unix_listen(path, 1, 0, 0, &err);
	assert_true(fd >= 0);
	assert_int_equal(connect_to(path), 0);
	assert_int_equal(entries(dir), 1);
	close(fd);
	unlink(path);
	rmdir(dir);
}

/* A client that connects the moment the file appears, as a test or a
 * front end polling for it does. */
struct watcher {
	const char *path;
	atomic_int go;
	int result;	/* 0 connected, else the errno; -1 never saw the file */
};

static void *watch_and_connect(void *arg)
{
	struct watcher *w = arg;
	struct timespec t0, t;

	while (!atomic_load(&w->go))
		;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		if (access(w->path, F_OK) == 0) {
			w->result = connect_to(w->path) == 0 ? 0 : errno;
			return NULL;
		}
		clock_gettime(CLOCK_MONOTONIC, &t);
	} while (t.tv_sec - t0.tv_sec < 5);
	w->result = -1;
	return NULL;
}

/* Bound in place, a client racing listen() is refused a few times in a
 * hundred; through the rename never. */
static void unix_listen_visible_means_listening(void **state)
{
	char dir[] = "/tmp/vireo-unix-XXXXXX", path[128];
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s.sock", dir);
	for (int i = 0; i < 300; i++) {
		struct watcher w = { .path = path };
		struct verr err = {0};
		pthread_t t;
		int fd;

		assert_int_equal(pthread_create(&t, NULL, watch_and_connect, &w), 0);
		atomic_store(&w.go, 1);
		fd = unix_listen(path, 1, 0, 0, &err);
		assert_int_equal(pthread_join(t, NULL), 0);
		assert_true(fd >= 0);
		close(fd);
		unlink(path);
		if (w.result != 0)
			fail_msg("iteration %d: a client that saw the file got %s", i,
				 w.result < 0 ? "no file" : strerror(w.result));
	}
	rmdir(dir);
}

static void unix_listen_failures(void **state)
{
	char dir[] = "/tmp/vireo-unix-XXXXXX", path[256];
	struct verr err = {0};
	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/missing/s.sock", dir);
	assert_int_equal(unix_listen(path, 1, 0, 0, &err), -ENOENT);
	assert_non_null(strstr(err.msg, path));
	assert_int_equal(entries(dir), 0);
	memset(path, 'y', sizeof(path) - 1);
	path[sizeof(path) - 1] = '\0';
	err = (struct verr){0};
	assert_int_equal(unix_listen(path, 1, 0, 0, &err), -ENAMETOOLONG);
	err = (struct verr){0};
	assert_int_equal(unix_listen("", 1, 0, 0, &err), -ENAMETOOLONG);
	rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(size_units),
		cmocka_unit_test(size_rejects),
		cmocka_unit_test(err_first_wins),
		cmocka_unit_test(unix_listen_renames_a_listening_socket),
		cmocka_unit_test(unix_listen_long_path_in_place),
		cmocka_unit_test(unix_listen_visible_means_listening),
		cmocka_unit_test(unix_listen_failures),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
