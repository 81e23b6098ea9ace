/* gw_db.h -- the gateway's bounded pool of PostgreSQL connections and its one kind of call.
 *
 * Gateway module (shell-like: it talks to PostgreSQL). At most `size` connections, opened on
 * demand with the gateway's own URL (GATEWAY_DATABASE_URL, else DATABASE_URL) as a login role
 * that should hold only orchestrator_worker. Every call is one prepared statement running one
 * of the func_gateway_* functions of 0006_gateway.sql, with its values as parameters. A
 * connection found broken (the server restarted) is dropped and reopened on next use, so the
 * pool survives a database restart without a restart of its own. Thread-safe: the HTTP
 * threads share one pool.
 */
#ifndef ORCH_GW_DB_H
#define ORCH_GW_DB_H

#include "status.h"

typedef struct GwPool GwPool;

/* The statements, one per gateway function. */
typedef enum {
    GW_SQL_HEARTBEAT = 0, /* worker, vram_total|NULL, vram_used|NULL, logs jsonb, crashed bool */
    GW_SQL_COUNTS,        /* worker, run_type */
    GW_SQL_CLAIM,         /* worker, run_type */
    GW_SQL_HELD,          /* worker, limit */
    GW_SQL_UPDATE,        /* worker, task uuid, status, text|NULL, reset bool */
    GW_SQL_FOR_UPLOAD,    /* worker, task uuid */
    GW_SQL_COMPLETE,      /* worker, task uuid, result jsonb, output_location */
    GW_SQL_COUNT_
} GwSql;

/* One answer: outcome ("ok", "empty", "refused", "not_found", "not_holder",
 * "not_in_progress") and the JSON body text (malloc'd, may be NULL). */
typedef struct {
    char outcome[32];
    char *body;
} GwResult;

/* Creates the pool for conninfo (a libpq URI or conninfo; "" = the PG* variables) with at most
 * size connections, and opens one to prove the settings (logged either way; a role that can
 * read the tables directly is warned about). Returns STATUS_OK and *out (gw_pool_free it);
 * STATUS_ERR_DB when the first connection fails; STATUS_ERR_NOMEM. conninfo is copied. */
Status gw_pool_new(const char *conninfo, int size, GwPool **out);

/* Closes every connection and frees the pool. The caller guarantees no call is running.
 * NULL-safe. */
void gw_pool_free(GwPool *p);

/* Runs statement `which` with its parameters (NULL = SQL NULL) on a pooled connection, waiting
 * up to 5 s for one to be free. On STATUS_OK fills *out (gw_result_clear it). STATUS_ERR_DB
 * when no connection could be had or the statement failed (logged once, here); a statement
 * that failed because the connection had died is retried once on a fresh connection. */
Status gw_pool_call(GwPool *p, GwSql which, const char *const *params, GwResult *out);

/* Frees a result's body and zeroes it. NULL-safe. */
void gw_result_clear(GwResult *r);

#endif
