/* db_exec.h -- running one parameterised statement (internal to the db_*.c modules and
 * lease.c, whose statements are counted and logged the same way).
 *
 * Shell module. Every statement is counted (db_statement_count) and every failure is logged
 * here, once, as db.query_failed with the statement's name and SQLSTATE.
 */
#ifndef ORCH_DB_EXEC_H
#define ORCH_DB_EXEC_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "status.h"

/* Runs one parameterised statement (n text parameters). Returns the result (caller PQclears)
 * when its status is `want`; otherwise logs db.query_failed naming the statement and returns
 * NULL. */
PGresult *db_exec_params(PGconn *conn, const char *name, const char *sql, int n,
                         const char *const *params, ExecStatusType want);

/* Runs a statement that returns no rows; *rows (may be NULL) gets the affected row count.
 * Returns STATUS_OK or STATUS_ERR_DB (logged). */
Status db_exec_command(PGconn *conn, const char *name, const char *sql, int n,
                       const char *const *params, int *rows);

/* Cell readers (db_snapshot.c): a malformed number is logged as db.bad_value naming the column
 * and gives -1; NULL reads as -1 (numbers), "" (strings) or false. Negative ages read as 0.
 * The number readers return 0, or -1 after logging. */
int db_cell_double(const PGresult *res, int row, int col, double *out);
int db_cell_ll(const PGresult *res, int row, int col, long long *out);
void db_cell_str(const PGresult *res, int row, int col, char *out, size_t cap);
bool db_cell_bool(const PGresult *res, int row, int col);

#endif
