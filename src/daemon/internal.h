/* SPDX-License-Identifier: Apache-2.0 */
/* Shared by the daemon's files, not part of its interface. */
#ifndef VIREO_DAEMON_INTERNAL_H
#define VIREO_DAEMON_INTERNAL_H

#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/err.h"
#include "daemon/daemon.h"
#include "store/store.h"

#define DAEMON_MAX_CHILDREN 1024

/* A VM process this daemon forked (so waitpid tells how it ended). */
struct daemon_child {
	pid_t pid;
	char name[STORE_NAME_MAX + 1];
};

struct daemon {
	pthread_mutex_t lock;          /* one request or reap at a time */
	struct store *store;
	struct daemon_opts opts;
	char vireo_path[PATH_MAX];     /* this binary, to run `vireo run` */
	struct daemon_child children[DAEMON_MAX_CHILDREN];
	size_t n_children;
};

/* proc.c: process identity from /proc. */
int proc_start_time(pid_t pid, uint64_t *start_time);
bool proc_is(pid_t pid, uint64_t start_time);
/* CPU time (user + system) and resident memory of a process. */
int proc_usage(pid_t pid, uint64_t *cpu_ms, uint64_t *rss_bytes);

/* vmapi.c: one HTTP request to a VM's API socket; *status is the HTTP status,
 * resp (NUL-terminated, truncated to size) the body. */
int vmapi_call(const char *sock, const char *method, const char *path, const char *body,
	       int *status, char *resp, size_t size, struct verr *err);

/* supervise.c: VM processes. Called with d->lock held. */
void sup_paths(const struct daemon *d, const char *name, const char *leaf, char *out,
	       size_t size);
void sup_reap(struct daemon *d);
/* Brings vm->run up to date with the process (persisting changes). */
void sup_refresh(struct daemon *d, struct store_vm *vm);
int sup_start(struct daemon *d, struct store_vm *vm, struct verr *err);
int sup_destroy(struct daemon *d, struct store_vm *vm, struct verr *err);
int sup_shutdown(struct daemon *d, struct store_vm *vm, struct verr *err);
int sup_pause(struct daemon *d, struct store_vm *vm, bool pause, struct verr *err);
/* The VM's counters: its process's CPU time and RSS, and the VM API's
 * GET /vireo/stats; *out is a json_object for the caller to put. */
int sup_stats(struct daemon *d, struct store_vm *vm, void **out, struct verr *err);
void sup_recover(struct daemon *d);
/* The last lines of the VM's console log, malloc'd (NULL when none). */
char *sup_console_tail(const struct daemon *d, const char *name, size_t max_bytes);

/* routes.c: one request, without HTTP. Sets *status and *resp (malloc'd
 * JSON or NULL). read_only: the caller came through the read-only socket. */
void daemon_handle(struct daemon *d, bool read_only, const char *method, const char *url,
		   const char *body, size_t len, int *status, char **resp);

/* http.c: the two Unix sockets. */
struct daemon_http;
int daemon_http_start(struct daemon *d, struct daemon_http **out, struct verr *err);
void daemon_http_stop(struct daemon_http *h);

#endif
