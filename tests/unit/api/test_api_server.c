/* SPDX-License-Identifier: Apache-2.0 */
/* api_server_start/stop over a real Unix socket: the socket file's life,
 * and HTTP framing details the pure core cannot see (413 on a declared
 * Content-Length, Allow on 405). Requests are written by hand here on
 * purpose: the test must control every byte. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "helpers.h"

struct srv_test {
	struct fake_vmm f;
	char dir[64];
	char sock[128];
};

static int setup(void **state)
{
	struct srv_test *t = calloc(1, sizeof(*t));

	if (!t)
		return -1;
	fake_vmm_init(&t->f);
	strcpy(t->dir, "/tmp/vireo-api-srv-XXXXXX");
	if (!mkdtemp(t->dir))
		return -1;
	snprintf(t->sock, sizeof(t->sock), "%s/api.sock", t->dir);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct srv_test *t = *state;

	unlink(t->sock);
	rmdir(t->dir);
	free(t);
	return 0;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	assert_non_null(d);
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* Send raw bytes, read the whole answer (the server closes or we time out). */
static void exchange(const char *sock, const char *req, size_t len, char *resp, size_t size)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct timeval tv = { .tv_sec = 5 };
	size_t got = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	strcpy(sa.sun_path, sock);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_int_equal(send(fd, req, len, MSG_NOSIGNAL), (ssize_t)len);
	while (got < size - 1) {
		ssize_t n = recv(fd, resp + got, size - 1 - got, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
		resp[got] = '\0';
		/* "Connection: close" requests end with the server closing */
	}
	resp[got] = '\0';
	close(fd);
}

static void exchange_str(const char *sock, const char *req, char *resp, size_t size)
{
	exchange(sock, req, strlen(req), resp, size);
}

static void serves_requests(void **state)
{
	struct srv_test *t = *state;
	struct api_server *s = NULL;
	struct verr err = { 0 };
	struct stat st;
	char resp[4096];
	int fds = count_fds();
	const char *put = "PUT /machine-config HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
			  "Content-Type: application/json\r\nContent-Length: 36\r\n\r\n"
			  "{\"vcpu_count\": 2, \"mem_size_mib\": 8}";

	assert_int_equal(api_server_start(&s, t->sock, &fake_vmm_ops, &t->f, &err), 0);
	assert_int_equal(stat(t->sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0600);

	exchange_str(t->sock, "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
		     resp, sizeof(resp));
	assert_true(strncmp(resp, "HTTP/1.1 200", 12) == 0);
	assert_non_null(strstr(resp, "application/json"));
	assert_non_null(strstr(resp, "\"app_name\":\"vireo\""));

	exchange_str(t->sock, put, resp, sizeof(resp));
	assert_true(strncmp(resp, "HTTP/1.1 204", 12) == 0);
	assert_int_equal(t->f.mc.vcpu_count, 2);

	exchange_str(t->sock, "DELETE /vm HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		     resp, sizeof(resp));
	assert_true(strncmp(resp, "HTTP/1.1 405", 12) == 0);
	assert_non_null(strstr(resp, "Allow: PATCH"));

	exchange_str(t->sock, "GET /nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
		     resp, sizeof(resp));
	assert_true(strncmp(resp, "HTTP/1.1 404", 12) == 0);
	assert_non_null(strstr(resp, "fault_message"));

	api_server_stop(s);
	assert_int_equal(stat(t->sock, &st), -1);
	assert_int_equal(count_fds(), fds);
}

/* Every thread but ours is the server's; each must block SIGINT and SIGTERM. */
static void server_thread_blocks_signals(void **state)
{
	struct srv_test *t = *state;
	struct api_server *s = NULL;
	struct verr err = { 0 };
	struct dirent *de;
	char path[300], line[256];
	int others = 0;
	DIR *d;

	assert_int_equal(api_server_start(&s, t->sock, &fake_vmm_ops, &t->f, &err), 0);
	d = opendir("/proc/self/task");
	assert_non_null(d);
	while ((de = readdir(d))) {
		unsigned long long blk = 0;
		FILE *fp;

		if (de->d_name[0] == '.' || atoi(de->d_name) == gettid())
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/status", de->d_name);
		fp = fopen(path, "r");
		assert_non_null(fp);
		while (fgets(line, sizeof(line), fp))
			if (sscanf(line, "SigBlk: %llx", &blk) == 1)
				break;
		fclose(fp);
		assert_true(blk & (1ull << (SIGINT - 1)));
		assert_true(blk & (1ull << (SIGTERM - 1)));
		others++;
	}
	closedir(d);
	assert_true(others >= 1);
	api_server_stop(s);
}

static void refuses_large_bodies(void **state)
{
	struct srv_test *t = *state;
	struct api_server *s = NULL;
	struct verr err = { 0 };
	char resp[4096], *req;
	size_t len;

	assert_int_equal(api_server_start(&s, t->sock, &fake_vmm_ops, &t->f, &err), 0);
	/* declared too large: refused before the body is read */
	exchange_str(t->sock, "PUT /boot-source HTTP/1.1\r\nHost: x\r\nContent-Length: 10000000\r\n"
		     "\r\n{", resp, sizeof(resp));
	assert_true(strncmp(resp, "HTTP/1.1 413", 12) == 0);
	assert_non_null(strstr(resp, "too large"));
	/* chunked, so only the bytes tell */
	req = malloc(200000);
	assert_non_null(req);
	len = (size_t)sprintf(req, "PUT /boot-source HTTP/1.1\r\nHost: x\r\n"
			      "Connection: close\r\nTransfer-Encoding: chunked\r\n\r\n");
	for (int i = 0; i < 20; i++) {
		len += (size_t)sprintf(req + len, "1000\r\n");
		memset(req + len, ' ', 0x1000);
		len += 0x1000;
		len += (size_t)sprintf(req + len, "\r\n");
	}
	len += (size_t)sprintf(req + len, "0\r\n\r\n");
	exchange(t->sock, req, len, resp, sizeof(resp));
	assert_true(strncmp(resp, "HTTP/1.1 413", 12) == 0);
	free(req);
	assert_int_equal(t->f.calls[FAKE_PUT_BOOT], 0);
	api_server_stop(s);
}

static void socket_file_rules(void **state)
{
	struct srv_test *t = *state;
	struct api_server *s = NULL, *s2 = NULL;
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct verr err = { 0 };
	char longpath[200];
	FILE *fp;
	int fd;

	/* a live server keeps its socket */
	assert_int_equal(api_server_start(&s, t->sock, &fake_vmm_ops, &t->f, &err), 0);
	assert_int_equal(api_server_start(&s2, t->sock, &fake_vmm_ops, &t->f, &err), -EADDRINUSE);
	assert_null(s2);
	assert_non_null(strstr(err.msg, "another server"));
	api_server_stop(s);

	/* a stale socket file (its server died) is replaced */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	strcpy(sa.sun_path, t->sock);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	verr_clear(&err);
	assert_int_equal(api_server_start(&s, t->sock, &fake_vmm_ops, &t->f, &err), 0);
	api_server_stop(s);

	/* anything else at the path is left alone */
	fp = fopen(t->sock, "w");
	assert_non_null(fp);
	fclose(fp);
	assert_int_equal(api_server_start(&s, t->sock, &fake_vmm_ops, &t->f, &err), -EEXIST);
	assert_int_equal(unlink(t->sock), 0);

	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = '\0';
	verr_clear(&err);
	assert_int_equal(api_server_start(&s, longpath, &fake_vmm_ops, &t->f, &err),
			 -ENAMETOOLONG);
	verr_clear(&err);
	assert_int_equal(api_server_start(&s, "/nonexistent-dir/api.sock", &fake_vmm_ops, &t->f,
					  &err), -ENOENT);
	assert_non_null(strstr(err.msg, "/nonexistent-dir/api.sock"));
	api_server_stop(NULL);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(serves_requests), T(server_thread_blocks_signals), T(refuses_large_bodies), T(socket_file_rules),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
