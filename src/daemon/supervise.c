/* SPDX-License-Identifier: Apache-2.0 */
/*
 * VM processes: each running VM is `vireo run --api-socket RUN/vms/NAME/
 * api.sock` in a session of its own (so it outlives the daemon), its serial
 * output piped to a small logger process that keeps RUN/vms/NAME/
 * console.log under a size cap. The store keeps pid + start time; the
 * process's truth wins over the store's memory on every look.
 */
#include "daemon/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "daemon/defn.h"
#include "daemon/launch.h"

void sup_paths(const struct daemon *d, const char *name, const char *leaf, char *out,
	       size_t size)
{
	snprintf(out, size, "%s/vms/%s%s%s", d->opts.run_dir, name, leaf[0] ? "/" : "", leaf);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static struct daemon_child *find_child(struct daemon *d, pid_t pid)
{
	for (size_t i = 0; i < d->n_children; i++)
		if (d->children[i].pid == pid)
			return &d->children[i];
	return NULL;
}

static void drop_child(struct daemon *d, struct daemon_child *c)
{
	*c = d->children[--d->n_children];
}

static void save_run(struct daemon *d, const char *name, const struct store_run *run)
{
	struct verr err = { 0 };

	if (store_vm_set_run(d->store, name, run, &err) < 0)
		log_error("daemon", "%s: cannot record its state: %s", name, err.msg);
}

/* A VM's end: shut off when asked for or when the guest powered off. */
static void record_exit(struct store_run *run, bool known, int status)
{
	bool clean = known && WIFEXITED(status) && WEXITSTATUS(status) == 0;

	snprintf(run->state, sizeof(run->state), "%s",
		 run->stop_requested || clean ? "shut off" : "crashed");
	run->exit_known = known;
	run->exit_status = known ? status : 0;
	run->pid = 0;
	run->start_time = 0;
}

static void on_child_exit(struct daemon *d, struct daemon_child *c, int status)
{
	struct store_vm vm;
	struct verr err = { 0 };

	if (store_vm_get(d->store, c->name, &vm, &err) == 0) {
		if (vm.run.pid == c->pid) {
			record_exit(&vm.run, true, status);
			save_run(d, vm.name, &vm.run);
			log_info("daemon", "%s: process %d ended (%s)", vm.name, (int)c->pid,
				 vm.run.state);
		}
		store_vm_free(&vm);
	}
	drop_child(d, c);
}

void sup_reap(struct daemon *d)
{
	struct daemon_child *c;
	int status;
	pid_t pid;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		c = find_child(d, pid);
		if (c)
			on_child_exit(d, c, status);
	}
}

static void api_state(struct daemon *d, struct store_vm *vm)
{
	char sock[PATH_MAX], resp[1024];
	struct verr err = { 0 };
	json_object *o, *st;
	int status;

	sup_paths(d, vm->name, "api.sock", sock, sizeof(sock));
	if (vmapi_call(sock, "GET", "/", NULL, &status, resp, sizeof(resp), &err) < 0 ||
	    status != 200)
		return; /* keep what the store says: the VM may be starting */
	o = json_tokener_parse(resp);
	if (o && json_object_object_get_ex(o, "state", &st) &&
	    json_object_is_type(st, json_type_string))
		snprintf(vm->run.state, sizeof(vm->run.state), "%s",
			 strcmp(json_object_get_string(st), "Paused") == 0 ? "paused" : "running");
	json_object_put(o);
}

void sup_refresh(struct daemon *d, struct store_vm *vm)
{
	struct store_run before = vm->run;

	if (vm->run.pid <= 0)
		return;
	sup_reap(d);
	if (find_child(d, (pid_t)vm->run.pid) ? proc_start_time((pid_t)vm->run.pid,
			&(uint64_t){ 0 }) == 0 : proc_is((pid_t)vm->run.pid, vm->run.start_time)) {
		api_state(d, vm);
	} else if (!find_child(d, (pid_t)vm->run.pid)) {
		/* Not ours (a daemon before us started it): how it ended is lost. */
		record_exit(&vm->run, false, 0);
	} else {
		return; /* a zombie child: the next reap records its status */
	}
	if (memcmp(&before, &vm->run, sizeof(before)) != 0)
		save_run(d, vm->name, &vm->run);
}

static bool is_active(const struct store_vm *vm)
{
	return vm->run.pid > 0;
}

static int wait_socket(struct daemon *d, struct store_vm *vm, pid_t pid, const char *sock,
		       struct verr *err)
{
	char resp[256];
	int status, http;

	for (int i = 0; i < 500; i++) {
		/* Up when its API says the guest runs: the API is served before
		 * the kernel is loaded, which may still fail. */
		if (vmapi_call(sock, "GET", "/", NULL, &http, resp, sizeof(resp), NULL) == 0 &&
		    http == 200 && (strstr(resp, "\"Running\"") || strstr(resp, "\"Paused\"")))
			return 0;
		if (waitpid(pid, &status, WNOHANG) == pid) {
			drop_child(d, find_child(d, pid));
			record_exit(&vm->run, true, status);
			save_run(d, vm->name, &vm->run);
			/* A guest may power off before its socket is seen. */
			if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
				return 0;
			return verr_set(err, EIO, "the VM's process ended at once (%s %d); see "
					"'vireo vm info %s'", WIFEXITED(status) ? "exit status" :
					"signal", WIFEXITED(status) ? WEXITSTATUS(status) :
					WTERMSIG(status), vm->name);
		}
		sleep_ms(10);
	}
	return verr_set(err, ETIMEDOUT, "the VM's API socket %s did not appear in 5 s", sock);
}

static int check_file(const char *field, const char *path, int mode, struct verr *err)
{
	if (path[0] && access(path, mode) < 0)
		return verr_set(err, EINVAL, "%s: %s: %s", field, path, strerror(errno));
	return 0;
}

/* The usual mistakes, named by field before a process is spent on them. */
static int check_files(const struct defn *def, struct verr *err)
{
	char field[48];
	int rc = check_file("kernel", def->kernel, R_OK, err);

	if (rc == 0)
		rc = check_file("initrd", def->initrd, R_OK, err);
	for (size_t i = 0; rc == 0 && i < def->n_disks; i++) {
		snprintf(field, sizeof(field), "disks[%zu].path", i);
		rc = check_file(field, def->disks[i].path,
				def->disks[i].readonly ? R_OK : R_OK | W_OK, err);
	}
	return rc;
}

int sup_start(struct daemon *d, struct store_vm *vm, struct verr *err)
{
	struct launch l;
	struct defn def;
	pid_t pid;
	int rc;

	sup_refresh(d, vm);
	if (is_active(vm))
		return verr_set(err, EBUSY, "%s is already %s", vm->name, vm->run.state);
	if (d->n_children >= DAEMON_MAX_CHILDREN)
		return verr_set(err, EAGAIN, "this daemon supervises %d VMs already",
				DAEMON_MAX_CHILDREN);
	rc = defn_parse(vm->config, strlen(vm->config), &def, err);
	if (rc == 0)
		rc = check_files(&def, err);
	if (rc == 0)
		rc = launch_prepare(&l, d, &def, err);
	if (rc < 0)
		return rc;
	rc = launch_spawn(&l, &pid, err);
	if (rc < 0) {
		launch_free(&l);
		return rc;
	}
	d->children[d->n_children].pid = pid;
	memcpy(d->children[d->n_children++].name, vm->name, sizeof(vm->name));
	memset(&vm->run, 0, sizeof(vm->run));
	vm->run.pid = pid;
	if (proc_start_time(pid, &vm->run.start_time) < 0)
		log_warn("daemon", "%s: cannot read the start time of process %d", vm->name, pid);
	snprintf(vm->run.state, sizeof(vm->run.state), "running");
	save_run(d, vm->name, &vm->run);
	rc = wait_socket(d, vm, pid, l.api_sock, err);
	launch_free(&l);
	if (rc == 0)
		log_info("daemon", "%s: started, process %d", vm->name, (int)pid);
	return rc;
}

static bool gone(struct daemon *d, struct store_vm *vm)
{
	sup_reap(d);
	if (!find_child(d, (pid_t)vm->run.pid) &&
	    !proc_is((pid_t)vm->run.pid, vm->run.start_time))
		return true;
	return false;
}

int sup_destroy(struct daemon *d, struct store_vm *vm, struct verr *err)
{
	struct store_vm now;
	pid_t pid;

	sup_refresh(d, vm);
	if (!is_active(vm))
		return verr_set(err, EPERM, "%s is not running", vm->name);
	pid = (pid_t)vm->run.pid;
	vm->run.stop_requested = true;
	save_run(d, vm->name, &vm->run);
	kill(pid, SIGTERM);
	for (int i = 0; i < 300 && !gone(d, vm); i++)
		sleep_ms(10);
	if (!gone(d, vm)) {
		kill(pid, SIGKILL);
		for (int i = 0; i < 500 && !gone(d, vm); i++)
			sleep_ms(10);
	}
	if (!gone(d, vm))
		return verr_set(err, ETIMEDOUT, "process %d of %s did not end", (int)pid, vm->name);
	/* Re-read what the reaper recorded; a foreign process leaves no status. */
	if (store_vm_get(d->store, vm->name, &now, NULL) == 0) {
		store_vm_free(vm);
		*vm = now;
	}
	if (vm->run.pid == (int64_t)pid) {
		record_exit(&vm->run, false, 0);
		save_run(d, vm->name, &vm->run);
	}
	return 0;
}

/* The VM's API refused (4xx/5xx): pass its fault_message on. */
static int vm_call(struct daemon *d, struct store_vm *vm, const char *method, const char *path,
		   const char *body, struct verr *err)
{
	char sock[PATH_MAX], resp[1024];
	json_object *o, *m;
	int status, rc;

	sup_paths(d, vm->name, "api.sock", sock, sizeof(sock));
	rc = vmapi_call(sock, method, path, body, &status, resp, sizeof(resp), err);
	if (rc < 0)
		return rc;
	if (status < 300)
		return 0;
	o = json_tokener_parse(resp);
	rc = verr_set(err, status >= 500 ? EIO : EINVAL, "the VM refused: %s",
		      o && json_object_object_get_ex(o, "fault_message", &m)
			      ? json_object_get_string(m) : "no reason given");
	json_object_put(o);
	return rc;
}

int sup_shutdown(struct daemon *d, struct store_vm *vm, struct verr *err)
{
	int rc;

	sup_refresh(d, vm);
	if (!is_active(vm))
		return verr_set(err, EPERM, "%s is not running", vm->name);
	/* No stop_requested: a guest that obeys powers off or resets, and vireo
	 * run ends with status 0 (shut off) either way; one that ignores the
	 * keys and crashes later is a crash. */
	rc = vm_call(d, vm, "PUT", "/actions", "{\"action_type\": \"SendCtrlAltDel\"}", err);
	return rc < 0 ? rc : 0;
}

int sup_pause(struct daemon *d, struct store_vm *vm, bool pause, struct verr *err)
{
	int rc;

	sup_refresh(d, vm);
	if (!is_active(vm))
		return verr_set(err, EPERM, "%s is not running", vm->name);
	rc = vm_call(d, vm, "PATCH", "/vm", pause ? "{\"state\": \"Paused\"}"
						 : "{\"state\": \"Resumed\"}", err);
	if (rc < 0)
		return rc;
	snprintf(vm->run.state, sizeof(vm->run.state), "%s", pause ? "paused" : "running");
	save_run(d, vm->name, &vm->run);
	return 0;
}

int sup_stats(struct daemon *d, struct store_vm *vm, void **out, struct verr *err)
{
	char sock[PATH_MAX], resp[1024];
	uint64_t cpu_ms, rss;
	json_object *o;
	int status;

	sup_refresh(d, vm);
	if (!is_active(vm))
		return verr_set(err, EPERM, "%s is not running", vm->name);
	if (proc_usage((pid_t)vm->run.pid, &cpu_ms, &rss) < 0)
		return verr_set(err, EIO, "cannot read the usage of process %d",
				(int)vm->run.pid);
	sup_paths(d, vm->name, "api.sock", sock, sizeof(sock));
	if (vmapi_call(sock, "GET", "/vireo/stats", NULL, &status, resp, sizeof(resp), err) < 0)
		return -EIO;
	o = status == 200 ? json_tokener_parse(resp) : NULL;
	if (!json_object_is_type(o, json_type_object)) {
		json_object_put(o);
		return verr_set(err, EIO, "the VM's API gave no stats (HTTP %d)", status);
	}
	json_object_object_add(o, "cpu_time_ms", json_object_new_int64((int64_t)cpu_ms));
	json_object_object_add(o, "rss_bytes", json_object_new_int64((int64_t)rss));
	json_object_object_add(o, "pid", json_object_new_int64(vm->run.pid));
	*out = o;
	return 0;
}

/* A new daemon: VMs whose process lives on are running again under it;
 * the others ended while no daemon watched. */
void sup_recover(struct daemon *d)
{
	struct store_vm *vms;
	struct verr err = { 0 };
	size_t n;

	if (store_vm_list(d->store, &vms, &n, &err) < 0) {
		log_error("daemon", "%s", err.msg);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		sup_refresh(d, &vms[i]);
		if (is_active(&vms[i]))
			log_info("daemon", "%s: found running as process %d", vms[i].name,
				 (int)vms[i].run.pid);
	}
	store_vm_list_free(vms, n);
}

#define SUP_TAIL_LINES 10

char *sup_console_tail(const struct daemon *d, const char *name, size_t max_bytes)
{
	char path[PATH_MAX], *buf, *start;
	ssize_t n;
	off_t size;
	int fd;

	sup_paths(d, name, "console.log", path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size = lseek(fd, 0, SEEK_END);
	buf = malloc(max_bytes + 1);
	if (!buf || size < 0) {
		free(buf);
		close(fd);
		return NULL;
	}
	n = pread(fd, buf, max_bytes, size > (off_t)max_bytes ? size - (off_t)max_bytes : 0);
	close(fd);
	buf[n > 0 ? n : 0] = '\0';
	/* Keep the last SUP_TAIL_LINES whole lines. */
	start = buf + strlen(buf);
	for (int lines = 0; start > buf; start--)
		if (start[-1] == '\n' && start[0] && ++lines >= SUP_TAIL_LINES)
			break;
	memmove(buf, start, strlen(start) + 1);
	return buf;
}
