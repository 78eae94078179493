/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `vireo run` for a definition. The VM's stdout and stderr go into a pipe
 * read by a logger process that appends to console.log and rotates it to
 * console.log.1 past --console-max bytes; both are in sessions of their own,
 * so a signal to the daemon's terminal or its death leaves them running.
 */
#include "daemon/launch.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/internal.h"

static int add(struct launch *l, struct verr *err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int add(struct launch *l, struct verr *err, const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	if (l->argc >= LAUNCH_MAX_ARGS)
		return verr_set(err, E2BIG, "too many arguments for vireo run");
	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return verr_set(err, ENOMEM, "out of memory");
	l->argv[l->argc++] = s;
	return 0;
}

static int add_devices(struct launch *l, const struct defn *def, struct verr *err)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < def->n_disks; i++) {
		const struct defn_disk *dk = &def->disks[i];
		rc = add(l, err, "--disk");
		if (rc == 0)
			rc = add(l, err, "%s,format=%s%s", dk->path, dk->format,
				 dk->readonly ? ",readonly=on" : "");
	}
	for (size_t i = 0; rc == 0 && i < def->n_nets; i++) {
		const struct defn_net *n = &def->nets[i];
		rc = add(l, err, "--net");
		if (rc == 0)
			rc = add(l, err, "tap=%s%s%s", n->tap, n->mac[0] ? ",mac=" : "", n->mac);
	}
	return rc;
}

static int add_opt(struct launch *l, struct verr *err, const char *opt, const char *value)
{
	int rc = add(l, err, "%s", opt);

	return rc < 0 ? rc : add(l, err, "%s", value);
}

static int build_argv(struct launch *l, const struct daemon *d, const struct defn *def,
		      struct verr *err)
{
	char cpus[16], mem[16];
	int rc = add_opt(l, err, d->vireo_path, "run");

	snprintf(cpus, sizeof(cpus), "%u", def->vcpus);
	snprintf(mem, sizeof(mem), "%uM", def->memory_mib);
	if (rc == 0)
		rc = add_opt(l, err, "--api-socket", l->api_sock);
	if (rc == 0)
		rc = add_opt(l, err, "--kernel", def->kernel);
	if (rc == 0 && def->initrd[0])
		rc = add_opt(l, err, "--initrd", def->initrd);
	if (rc == 0 && def->cmdline[0])
		rc = add_opt(l, err, "--cmdline", def->cmdline);
	if (rc == 0)
		rc = add_opt(l, err, "--cpus", cpus);
	if (rc == 0)
		rc = add_opt(l, err, "--memory", mem);
	if (rc == 0)
		rc = add_opt(l, err, "--console", def->console);
	return rc == 0 ? add_devices(l, def, err) : rc;
}

static int make_dir(const char *path, struct verr *err)
{
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return verr_set(err, errno, "cannot create %s: %s", path, strerror(errno));
	return 0;
}

int launch_prepare(struct launch *l, const struct daemon *d, const struct defn *def,
		   struct verr *err)
{
	char dir[PATH_MAX];
	int n, rc;

	memset(l, 0, sizeof(*l));
	n = snprintf(l->api_sock, sizeof(l->api_sock), "%s/vms/%s/api.sock", d->opts.run_dir,
		     def->name);
	if (n < 0 || (size_t)n >= sizeof(l->api_sock))
		return verr_set(err, ENAMETOOLONG, "the API socket path %s/vms/%s/api.sock is "
				"longer than a Unix socket allows (%zu bytes): use a shorter "
				"--run-dir or VM name", d->opts.run_dir, def->name,
				sizeof(l->api_sock) - 1);
	sup_paths(d, def->name, "console.log", l->log, sizeof(l->log));
	sup_paths(d, def->name, "console.log.1", l->log_old, sizeof(l->log_old));
	l->log_max = d->opts.console_max;
	snprintf(dir, sizeof(dir), "%s/vms", d->opts.run_dir);
	rc = make_dir(dir, err);
	sup_paths(d, def->name, "", dir, sizeof(dir));
	if (rc == 0)
		rc = make_dir(dir, err);
	/* A socket left by a VM that died is in the way of the next one. */
	unlink(l->api_sock);
	if (rc == 0)
		rc = build_argv(l, d, def, err);
	if (rc < 0)
		launch_free(l);
	return rc;
}

void launch_free(struct launch *l)
{
	for (size_t i = 0; i < l->argc; i++)
		free(l->argv[i]);
	l->argc = 0;
}

static int open_log(const char *path)
{
	return open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
}

/* The daemon blocks signals in all its threads and ignores SIGPIPE; a
 * child starts afresh. */
static void reset_signals(void)
{
	sigset_t none;

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	signal(SIGPIPE, SIG_DFL);
}

/* Appends to the log, rotating it whenever the next byte would pass the
 * cap; returns the log's new size. Only async-signal-safe calls. */
static unsigned long log_write(const struct launch *l, int *out, unsigned long size,
			       const char *buf, size_t n)
{
	size_t chunk;

	while (n && *out >= 0) {
		if (size >= l->log_max) {
			close(*out);
			rename(l->log, l->log_old);
			*out = open_log(l->log);
			size = 0;
			continue;
		}
		chunk = n < l->log_max - size ? n : l->log_max - size;
		if (write(*out, buf, chunk) != (ssize_t)chunk)
			break;
		size += chunk;
		buf += chunk;
		n -= chunk;
	}
	return size;
}

/* The logger's whole life: a reader of the VM's output until it ends. */
static void run_logger(const struct launch *l, int in)
{
	char buf[4096];
	unsigned long size;
	ssize_t n;
	off_t end;
	int out;

	reset_signals();
	setsid();
	dup2(in, 0);
	close_range(1, ~0u, 0);
	out = open_log(l->log);
	end = out >= 0 ? lseek(out, 0, SEEK_END) : 0;
	size = end > 0 ? (unsigned long)end : 0;
	while ((n = read(0, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			break;
		size = log_write(l, &out, size, buf, (size_t)n);
	}
	_exit(0);
}

static void run_vm(const struct launch *l, int out)
{
	int null = open("/dev/null", O_RDONLY);

	reset_signals();
	setsid();
	if (null < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
		_exit(127);
	close_range(3, ~0u, 0);
	execv(l->argv[0], l->argv);
	_exit(127);
}

int launch_spawn(struct launch *l, pid_t *pid, struct verr *err)
{
	int p[2];
	pid_t logger, vm;

	l->argv[l->argc] = NULL;
	if (pipe2(p, O_CLOEXEC) < 0)
		return verr_set(err, errno, "pipe: %s", strerror(errno));
	logger = fork();
	if (logger == 0) {
		close(p[1]);
		run_logger(l, p[0]);
	}
	if (logger < 0) {
		close(p[0]);
		close(p[1]);
		return verr_set(err, errno, "fork: %s", strerror(errno));
	}
	close(p[0]);
	vm = fork();
	if (vm == 0)
		run_vm(l, p[1]);
	close(p[1]);
	if (vm < 0)
		return verr_set(err, errno, "fork: %s", strerror(errno));
	*pid = vm;
	return 0;
}
