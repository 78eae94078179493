/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon's SQLite store: schema, migrations, one function per query. */
#include "store/store.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

struct store {
	sqlite3 *db;
};

static const char *const schema_v1 =
	"CREATE TABLE vms ("
	" name TEXT PRIMARY KEY NOT NULL,"
	" uuid TEXT UNIQUE NOT NULL,"
	" config TEXT NOT NULL,"
	" autostart INTEGER NOT NULL DEFAULT 0,"
	" pid INTEGER NOT NULL DEFAULT 0,"
	" start_time INTEGER NOT NULL DEFAULT 0,"
	" state TEXT NOT NULL DEFAULT 'shut off',"
	" exit_known INTEGER NOT NULL DEFAULT 0,"
	" exit_status INTEGER NOT NULL DEFAULT 0,"
	" stop_requested INTEGER NOT NULL DEFAULT 0);"
	"UPDATE schema_version SET version = 1;";

static int db_error(struct store *s, struct verr *err, const char *what)
{
	int rc = sqlite3_extended_errcode(s->db);
	int code = (rc & 0xff) == SQLITE_FULL ? ENOSPC : (rc & 0xff) == SQLITE_BUSY ? EBUSY : EIO;

	return verr_set(err, code, "state database: %s: %s", what, sqlite3_errmsg(s->db));
}

static int exec(struct store *s, const char *sql, struct verr *err)
{
	if (sqlite3_exec(s->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return db_error(s, err, sql);
	return 0;
}

static int prepare(struct store *s, const char *sql, sqlite3_stmt **st, struct verr *err)
{
	if (sqlite3_prepare_v2(s->db, sql, -1, st, NULL) != SQLITE_OK)
		return db_error(s, err, "prepare");
	return 0;
}

/* Runs a statement that returns no rows; finalizes it. */
static int step_done(struct store *s, sqlite3_stmt *st, const char *what, struct verr *err)
{
	int rc = sqlite3_step(st);

	sqlite3_finalize(st);
	if (rc != SQLITE_DONE)
		return db_error(s, err, what);
	return 0;
}

static int schema_version(struct store *s, int *version, struct verr *err)
{
	sqlite3_stmt *st;
	int rc = prepare(s, "SELECT version FROM schema_version", &st, err);

	if (rc < 0)
		return rc;
	rc = sqlite3_step(st);
	*version = rc == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return verr_set(err, EIO, "state database: no schema version row");
	return 0;
}

/* Each step from version N to N+1 runs in its own transaction. */
static int migrate(struct store *s, struct verr *err)
{
	int v, rc;

	rc = exec(s, "BEGIN IMMEDIATE;"
		     "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL);"
		     "INSERT INTO schema_version SELECT 0 WHERE NOT EXISTS "
		     "(SELECT 1 FROM schema_version);", err);
	if (rc == 0)
		rc = schema_version(s, &v, err);
	if (rc == 0 && v > STORE_SCHEMA_VERSION)
		rc = verr_set(err, EPROTO, "state database: schema version %d is newer than this "
			      "vireo's %d", v, STORE_SCHEMA_VERSION);
	if (rc == 0 && v < 1)
		rc = exec(s, schema_v1, err);
	if (rc < 0) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	return exec(s, "COMMIT", err);
}

int store_open(struct store **out, const char *path, struct verr *err)
{
	struct store *s = calloc(1, sizeof(*s));
	int rc;

	*out = NULL;
	if (!s)
		return verr_set(err, ENOMEM, "out of memory");
	if (sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_FULLMUTEX, NULL) != SQLITE_OK) {
		rc = verr_set(err, EIO, "cannot open the state database %s: %s", path,
			      s->db ? sqlite3_errmsg(s->db) : "out of memory");
		store_close(s);
		return rc;
	}
	sqlite3_busy_timeout(s->db, 5000);
	rc = exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; "
		     "PRAGMA foreign_keys=ON;", err);
	if (rc == 0)
		rc = migrate(s, err);
	if (rc < 0) {
		verr_prefix(err, "%s: ", path);
		store_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

void store_close(struct store *s)
{
	if (!s)
		return;
	sqlite3_close(s->db);
	free(s);
}

static int count_where(struct store *s, const char *sql, const char *arg, struct verr *err)
{
	sqlite3_stmt *st;
	int rc = prepare(s, sql, &st, err);

	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, arg, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
	sqlite3_finalize(st);
	return rc < 0 ? db_error(s, err, "count") : rc;
}

static int insert_vm(struct store *s, const char *name, const char *uuid, const char *config,
		     struct verr *err)
{
	sqlite3_stmt *st;
	int rc;

	rc = count_where(s, "SELECT count(*) FROM vms WHERE name = ?", name, err);
	if (rc > 0)
		return verr_set(err, EEXIST, "name: a VM named '%s' is already defined", name);
	if (rc == 0)
		rc = count_where(s, "SELECT count(*) FROM vms WHERE uuid = ?", uuid, err);
	if (rc > 0)
		return verr_set(err, EEXIST, "uuid: %s is already the UUID of another VM", uuid);
	if (rc < 0)
		return rc;
	rc = prepare(s, "INSERT INTO vms (name, uuid, config) VALUES (?, ?, ?)", &st, err);
	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 2, uuid, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, config, -1, SQLITE_TRANSIENT);
	return step_done(s, st, "insert", err);
}

int store_vm_add(struct store *s, const char *name, const char *uuid, const char *config,
		 struct verr *err)
{
	int rc = exec(s, "BEGIN IMMEDIATE", err);

	if (rc < 0)
		return rc;
	rc = insert_vm(s, name, uuid, config, err);
	if (rc < 0) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	return exec(s, "COMMIT", err);
}

int store_vm_remove(struct store *s, const char *name, struct verr *err)
{
	sqlite3_stmt *st;
	int rc = prepare(s, "DELETE FROM vms WHERE name = ?", &st, err);

	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	rc = step_done(s, st, "delete", err);
	if (rc == 0 && sqlite3_changes(s->db) == 0)
		return verr_set(err, ENOENT, "no VM named '%s'", name);
	return rc;
}

#define VM_COLUMNS "name, uuid, config, autostart, pid, start_time, state, exit_known, " \
		   "exit_status, stop_requested"

static void copy_text(char *dst, size_t size, const unsigned char *src)
{
	snprintf(dst, size, "%s", src ? (const char *)src : "");
}

static int read_row(sqlite3_stmt *st, struct store_vm *vm)
{
	const unsigned char *cfg = sqlite3_column_text(st, 2);

	memset(vm, 0, sizeof(*vm));
	copy_text(vm->name, sizeof(vm->name), sqlite3_column_text(st, 0));
	copy_text(vm->uuid, sizeof(vm->uuid), sqlite3_column_text(st, 1));
	vm->config = strdup(cfg ? (const char *)cfg : "{}");
	if (!vm->config)
		return -ENOMEM;
	vm->autostart = sqlite3_column_int(st, 3) != 0;
	vm->run.pid = sqlite3_column_int64(st, 4);
	vm->run.start_time = (uint64_t)sqlite3_column_int64(st, 5);
	copy_text(vm->run.state, sizeof(vm->run.state), sqlite3_column_text(st, 6));
	vm->run.exit_known = sqlite3_column_int(st, 7) != 0;
	vm->run.exit_status = sqlite3_column_int(st, 8);
	vm->run.stop_requested = sqlite3_column_int(st, 9) != 0;
	return 0;
}

int store_vm_get(struct store *s, const char *name, struct store_vm *vm, struct verr *err)
{
	sqlite3_stmt *st;
	int rc = prepare(s, "SELECT " VM_COLUMNS " FROM vms WHERE name = ?", &st, err);

	if (rc < 0)
		return rc;
	sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		rc = read_row(st, vm) < 0 ? verr_set(err, ENOMEM, "out of memory") : 0;
	else if (rc == SQLITE_DONE)
		rc = verr_set(err, ENOENT, "no VM named '%s'", name);
	else
		rc = db_error(s, err, "select");
	sqlite3_finalize(st);
	return rc;
}

void store_vm_free(struct store_vm *vm)
{
	if (vm) {
		free(vm->config);
		vm->config = NULL;
	}
}

static int grow(struct store_vm **vms, size_t n, size_t *cap)
{
	struct store_vm *nv;

	if (n < *cap)
		return 0;
	*cap = *cap ? *cap * 2 : 16;
	nv = realloc(*vms, *cap * sizeof(**vms));
	if (!nv)
		return -ENOMEM;
	*vms = nv;
	return 0;
}

int store_vm_list(struct store *s, struct store_vm **out, size_t *n, struct verr *err)
{
	struct store_vm *vms = NULL;
	size_t cap = 0;
	sqlite3_stmt *st;
	int rc = prepare(s, "SELECT " VM_COLUMNS " FROM vms ORDER BY name", &st, err);

	*out = NULL;
	*n = 0;
	if (rc < 0)
		return rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (grow(&vms, *n, &cap) < 0 || read_row(st, &vms[*n]) < 0) {
			rc = -ENOMEM;
			break;
		}
		(*n)++;
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		store_vm_list_free(vms, *n);
		*n = 0;
		return rc == -ENOMEM ? verr_set(err, ENOMEM, "out of memory")
				     : db_error(s, err, "list");
	}
	*out = vms;
	return 0;
}

void store_vm_list_free(struct store_vm *vms, size_t n)
{
	for (size_t i = 0; i < n; i++)
		store_vm_free(&vms[i]);
	free(vms);
}

static int changed_one(struct store *s, const char *name, int rc, struct verr *err)
{
	if (rc == 0 && sqlite3_changes(s->db) == 0)
		return verr_set(err, ENOENT, "no VM named '%s'", name);
	return rc;
}

int store_vm_set_run(struct store *s, const char *name, const struct store_run *run,
		     struct verr *err)
{
	sqlite3_stmt *st;
	int rc = prepare(s, "UPDATE vms SET pid = ?, start_time = ?, state = ?, exit_known = ?, "
			 "exit_status = ?, stop_requested = ? WHERE name = ?", &st, err);

	if (rc < 0)
		return rc;
	sqlite3_bind_int64(st, 1, run->pid);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)run->start_time);
	sqlite3_bind_text(st, 3, run->state, -1, SQLITE_TRANSIENT);
	sqlite3_bind_int(st, 4, run->exit_known);
	sqlite3_bind_int(st, 5, run->exit_status);
	sqlite3_bind_int(st, 6, run->stop_requested);
	sqlite3_bind_text(st, 7, name, -1, SQLITE_TRANSIENT);
	return changed_one(s, name, step_done(s, st, "update", err), err);
}

int store_vm_set_autostart(struct store *s, const char *name, bool on, struct verr *err)
{
	sqlite3_stmt *st;
	int rc = prepare(s, "UPDATE vms SET autostart = ? WHERE name = ?", &st, err);

	if (rc < 0)
		return rc;
	sqlite3_bind_int(st, 1, on);
	sqlite3_bind_text(st, 2, name, -1, SQLITE_TRANSIENT);
	return changed_one(s, name, step_done(s, st, "update", err), err);
}
