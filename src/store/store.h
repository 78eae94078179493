/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The daemon's persistent state: one SQLite database (WAL journal, one
 * transaction per change) under the state directory. One function per
 * query; nothing here knows HTTP, processes or JSON beyond storing text.
 */
#ifndef VIREO_STORE_STORE_H
#define VIREO_STORE_STORE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/err.h"

#define STORE_SCHEMA_VERSION 1
#define STORE_NAME_MAX 64
#define STORE_UUID_LEN 36

struct store;

/* What the daemon remembers of a VM's process between its own lives. */
struct store_run {
	int64_t pid;            /* 0: no process recorded */
	uint64_t start_time;    /* /proc/PID/stat field 22, to tell a recycled pid */
	char state[16];         /* "shut off", "running", "paused", "crashed" */
	bool exit_known;        /* exit_status is valid */
	int exit_status;        /* as waitpid() reported it */
	bool stop_requested;    /* destroy/shutdown asked: a death is not a crash */
};

struct store_vm {
	char name[STORE_NAME_MAX + 1];
	char uuid[STORE_UUID_LEN + 1];
	char *config;           /* the definition's JSON text, malloc'd */
	bool autostart;
	struct store_run run;
};

/* Open (creating) DIR/vireo.db and bring its schema to the current version. */
int store_open(struct store **out, const char *path, struct verr *err);
void store_close(struct store *s);

/* -EEXIST naming "name" or "uuid" when either is taken. */
int store_vm_add(struct store *s, const char *name, const char *uuid, const char *config,
		 struct verr *err);
/* -ENOENT when there is no such VM. */
int store_vm_remove(struct store *s, const char *name, struct verr *err);
/* Fills *vm (free its config with store_vm_free); -ENOENT when absent. */
int store_vm_get(struct store *s, const char *name, struct store_vm *vm, struct verr *err);
void store_vm_free(struct store_vm *vm);
/* All VMs by name; *out is a malloc'd array for store_vm_list_free. */
int store_vm_list(struct store *s, struct store_vm **out, size_t *n, struct verr *err);
void store_vm_list_free(struct store_vm *vms, size_t n);
int store_vm_set_run(struct store *s, const char *name, const struct store_run *run,
		     struct verr *err);
int store_vm_set_autostart(struct store *s, const char *name, bool on, struct verr *err);

#endif
