/* SPDX-License-Identifier: Apache-2.0 */
/* The daemon's SQLite store: schema creation, queries, refusals, reopening. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "store/store.h"

#define U1 "11111111-1111-4111-8111-111111111111"
#define U2 "22222222-2222-4222-8222-222222222222"

struct fixture {
	char dir[64];
	char db[96];
	struct store *s;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct verr err = { 0 };

	snprintf(f->dir, sizeof(f->dir), "/tmp/vireo-store-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->db, sizeof(f->db), "%s/vireo.db", f->dir);
	if (store_open(&f->s, f->db, &err) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];

	store_close(f->s);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static void add_get_list_remove(void **state)
{
	struct fixture *f = *state;
	struct verr err = { 0 };
	struct store_vm vm, *vms;
	size_t n;

	assert_int_equal(store_vm_add(f->s, "b", U1, "{\"b\":1}", &err), 0);
	assert_int_equal(store_vm_add(f->s, "a", U2, "{\"a\":1}", &err), 0);
	assert_int_equal(store_vm_get(f->s, "b", &vm, &err), 0);
	assert_string_equal(vm.uuid, U1);
	assert_string_equal(vm.config, "{\"b\":1}");
	assert_string_equal(vm.run.state, "shut off");
	assert_int_equal(vm.run.pid, 0);
	assert_false(vm.autostart);
	store_vm_free(&vm);
	assert_int_equal(store_vm_list(f->s, &vms, &n, &err), 0);
	assert_int_equal(n, 2);
	assert_string_equal(vms[0].name, "a"); /* by name */
	assert_string_equal(vms[1].name, "b");
	store_vm_list_free(vms, n);
	assert_int_equal(store_vm_remove(f->s, "b", &err), 0);
	assert_int_equal(store_vm_get(f->s, "b", &vm, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "no VM named 'b'"));
}

static void duplicates_name_the_field(void **state)
{
	struct fixture *f = *state;
	struct verr err = { 0 };

	assert_int_equal(store_vm_add(f->s, "a", U1, "{}", &err), 0);
	assert_int_equal(store_vm_add(f->s, "a", U2, "{}", &err), -EEXIST);
	assert_non_null(strstr(err.msg, "name:"));
	verr_clear(&err);
	assert_int_equal(store_vm_add(f->s, "c", U1, "{}", &err), -EEXIST);
	assert_non_null(strstr(err.msg, "uuid:"));
	verr_clear(&err);
	assert_int_equal(store_vm_remove(f->s, "zz", &err), -ENOENT);
	verr_clear(&err);
	assert_int_equal(store_vm_set_autostart(f->s, "zz", true, &err), -ENOENT);
}

static void run_state_and_autostart_persist(void **state)
{
	struct fixture *f = *state;
	struct verr err = { 0 };
	struct store_run run = { .pid = 4242, .start_time = 123456789012ull, .exit_known = true,
				 .exit_status = 9, .stop_requested = true };
	struct store_vm vm;

	snprintf(run.state, sizeof(run.state), "crashed");
	assert_int_equal(store_vm_add(f->s, "vm", U1, "{}", &err), 0);
	assert_int_equal(store_vm_set_run(f->s, "vm", &run, &err), 0);
	assert_int_equal(store_vm_set_autostart(f->s, "vm", true, &err), 0);
	store_close(f->s);
	assert_int_equal(store_open(&f->s, f->db, &err), 0);
	assert_int_equal(store_vm_get(f->s, "vm", &vm, &err), 0);
	assert_int_equal(vm.run.pid, 4242);
	assert_int_equal(vm.run.start_time, 123456789012ull);
	assert_string_equal(vm.run.state, "crashed");
	assert_true(vm.run.exit_known && vm.run.stop_requested && vm.autostart);
	assert_int_equal(vm.run.exit_status, 9);
	store_vm_free(&vm);
	assert_int_equal(store_vm_set_run(f->s, "nope", &run, &err), -ENOENT);
}

static void wal_and_schema_version(void **state)
{
	struct fixture *f = *state;
	sqlite3 *db;
	sqlite3_stmt *st;

	assert_int_equal(sqlite3_open(f->db, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT version FROM schema_version", -1, &st,
					    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), STORE_SCHEMA_VERSION);
	sqlite3_finalize(st);
	/* A database from a newer vireo is refused, not misread. */
	assert_int_equal(sqlite3_exec(db, "UPDATE schema_version SET version = 99", NULL, NULL,
				      NULL), SQLITE_OK);
	sqlite3_close(db);
	store_close(f->s);
	{
		struct verr err = { 0 };
		assert_int_equal(store_open(&f->s, f->db, &err), -EPROTO);
		assert_non_null(strstr(err.msg, "newer"));
		assert_null(f->s);
	}
}

static void not_a_database_is_refused(void **state)
{
	struct fixture *f = *state;
	struct verr err = { 0 };
	struct store *s;
	char path[128];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/junk.db", f->dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	for (int i = 0; i < 200; i++)
		fputs("this is not SQLite ", fp);
	fclose(fp);
	assert_true(store_open(&s, path, &err) < 0);
	assert_null(s);
	assert_non_null(strstr(err.msg, path));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(add_get_list_remove, setup, teardown),
		cmocka_unit_test_setup_teardown(duplicates_name_the_field, setup, teardown),
		cmocka_unit_test_setup_teardown(run_state_and_autostart_persist, setup, teardown),
		cmocka_unit_test_setup_teardown(wal_and_schema_version, setup, teardown),
		cmocka_unit_test_setup_teardown(not_a_database_is_refused, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
