/* SPDX-License-Identifier: Apache-2.0 */
/*
 * vireod's life: take the state directory (an flock, so only one daemon
 * owns it), open the store, find the VMs still running from an earlier
 * life, start the autostart ones, serve the sockets, and reap VM processes
 * until SIGINT or SIGTERM. VMs are left running when it ends.
 */
#include "daemon/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

static int make_dir(const char *path, mode_t mode, struct verr *err)
{
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return verr_set(err, errno, "cannot create %s: %s", path, strerror(errno));
	return 0;
}

/* Returns the lock's fd, held until the process ends (O_CLOEXEC: the VMs
 * it starts must not inherit it, or a new daemon could not take it). */
static int take_lock(const char *state_dir, struct verr *err)
{
	char path[PATH_MAX], pid[32] = "";
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/vireod.lock", state_dir);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return verr_set(err, errno, "cannot open %s: %s", path, strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		n = pread(fd, pid, sizeof(pid) - 1, 0);
		pid[n > 0 ? n : 0] = '\0';
		pid[strcspn(pid, "\n")] = '\0';
		close(fd);
		if (e == EWOULDBLOCK)
			return verr_set(err, EBUSY, "another vireo daemon (pid %s) is using the "
					"state directory %s", pid[0] ? pid : "?", state_dir);
		return verr_set(err, e, "cannot lock %s: %s", path, strerror(e));
	}
	n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
	if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)n, 0) != n)
		log_warn("daemon", "cannot write the pid into %s", path);
	return fd;
}

static void autostart(struct daemon *d)
{
	struct store_vm *vms;
	struct verr err = { 0 };
	size_t n;

	if (store_vm_list(d->store, &vms, &n, &err) < 0)
		return;
	for (size_t i = 0; i < n; i++) {
		if (!vms[i].autostart || vms[i].run.pid > 0)
			continue;
		verr_clear(&err);
		if (sup_start(d, &vms[i], &err) < 0)
			log_error("daemon", "%s: autostart failed: %s", vms[i].name, err.msg);
	}
	store_vm_list_free(vms, n);
}

static int setup(struct daemon *d, int *lock_fd, struct verr *err)
{
	char db[PATH_MAX];
	ssize_t n;
	int rc;

	rc = make_dir(d->opts.state_dir, 0700, err);
	if (rc == 0)
		rc = make_dir(d->opts.run_dir, 0755, err);
	if (rc < 0)
		return rc;
	*lock_fd = take_lock(d->opts.state_dir, err);
	if (*lock_fd < 0)
		return *lock_fd;
	n = readlink("/proc/self/exe", d->vireo_path, sizeof(d->vireo_path) - 1);
	if (n <= 0)
		return verr_set(err, errno, "cannot find this program: %s", strerror(errno));
	d->vireo_path[n] = '\0';
	snprintf(db, sizeof(db), "%s/vireo.db", d->opts.state_dir);
	return store_open(&d->store, db, err);
}

/* SIGINT/SIGTERM end the loop; SIGCHLD, or a second passing, reaps. */
static void serve(struct daemon *d)
{
	struct timespec tick = { 1, 0 };
	sigset_t set;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	for (;;) {
		sig = sigtimedwait(&set, NULL, &tick);
		if (sig == SIGINT || sig == SIGTERM)
			break;
		pthread_mutex_lock(&d->lock);
		sup_reap(d);
		pthread_mutex_unlock(&d->lock);
	}
	log_info("daemon", "stopping on signal %d; the VMs run on", sig);
}

int daemon_run(const struct daemon_opts *opts, struct verr *err)
{
	struct daemon *d = calloc(1, sizeof(*d));
	struct daemon_http *http = NULL;
	int lock_fd = -1, rc;

	if (!d)
		return verr_set(err, ENOMEM, "out of memory");
	d->opts = *opts;
	pthread_mutex_init(&d->lock, NULL);
	rc = setup(d, &lock_fd, err);
	if (rc == 0) {
		pthread_mutex_lock(&d->lock);
		sup_recover(d);
		autostart(d);
		pthread_mutex_unlock(&d->lock);
		rc = daemon_http_start(d, &http, err);
	}
	if (rc == 0)
		serve(d);
	daemon_http_stop(http);
	store_close(d->store);
	if (lock_fd >= 0)
		close(lock_fd);
	pthread_mutex_destroy(&d->lock);
	free(d);
	return rc;
}
