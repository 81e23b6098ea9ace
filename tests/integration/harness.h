/* harness.h -- integration-test helpers: a fresh database per test, copied from the migrated
 * template that scripts/test.sh prepares (ORCH_TEST_TEMPLATE_DB, default orch_tpl), on the
 * private server named by PGHOST/PGPORT/PGUSER. A missing server fails the test; it never
 * skips. Use from a *checked* fixture (inside the forked child), so no PGconn crosses fork(). */
#ifndef ORCH_TEST_HARNESS_H
#define ORCH_TEST_HARNESS_H

#include <libpq-fe.h>
#include <stddef.h>

/* Creates a uniquely named database from the template and connects to it. Aborts the test
 * (ck_abort) on any failure. name receives the database name. */
PGconn *harness_db_create(char name[64]);

/* Closes conn and drops the database. NULL-safe. */
void harness_db_drop(PGconn *conn, const char *name);

/* A libpq URI for database name on the test server (for DATABASE_URL). */
void harness_db_url(const char *name, char *out, size_t cap);

/* Runs SQL (no parameters) and aborts the test when it fails. Returns the first column of the
 * first row as a newly allocated string ("" when no row; caller frees). */
char *harness_sql(PGconn *conn, const char *sql);

/* Like harness_sql but returns the value as a long long. */
long long harness_sql_ll(PGconn *conn, const char *sql);

#endif
