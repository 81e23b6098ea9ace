/* db.c -- libpq access: snapshot, guarded writes, controller state, journal (see db.h).
 *
 * Shell module. Never builds SQL from values: every value travels as a parameter. Never keeps
 * pointers into a PGresult: values are copied out before PQclear.
 */
#include "db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

/* Key of the cluster-wide cycle lock: "orchestr" in ASCII, a fixed arbitrary bigint. */
#define CYCLE_LOCK_KEY "8030606375798600818"

static long long g_statements;

long long db_statement_count(void)
{
    return g_statements;
}

/* Runs one parameterised statement. Returns the result (caller PQclears) when its status is
 * `want`; otherwise logs db.query_failed with the query name and returns NULL. */
static PGresult *exec_params(PGconn *conn, const char *name, const char *sql, int n,
                             const char *const *params, ExecStatusType want)
{
    g_statements++;
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != want) {
        const char *msg = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
        char clean[512];
        snprintf(clean, sizeof clean, "%s", msg ? msg : "");
        size_t len = strlen(clean);
        while (len > 0 && (clean[len - 1] == '\n' || clean[len - 1] == ' '))
            clean[--len] = '\0';
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        log_error("db.query_failed", "query=%s sqlstate=%s error=%s", name, state ? state : "",
                  clean);
        PQclear(res);
        return NULL;
    }
    return res;
}

static Status exec_command(PGconn *conn, const char *name, const char *sql, int n,
                           const char *const *params, int *rows)
{
    PGresult *res = exec_params(conn, name, sql, n, params, PGRES_COMMAND_OK);
    if (!res)
        return STATUS_ERR_DB;
    if (rows) {
        char *end = NULL;
        long v = strtol(PQcmdTuples(res), &end, 10);
        *rows = (end && *end == '\0') ? (int)v : 0;
    }
    PQclear(res);
    return STATUS_OK;
}

Status db_connect(const Config *cfg, PGconn **out)
{
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {cfg->database_url[0] ? cfg->database_url : NULL, "10", "orchestrator",
                          NULL};
    /* expand_dbname=1 lets dbname carry a full URI or conninfo string. */
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (!conn) {
        log_error("db.connect_failed", "error=\"out of memory\"");
        return STATUS_ERR_DB;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof msg, "%s", PQerrorMessage(conn));
        size_t len = strlen(msg);
        while (len > 0 && msg[len - 1] == '\n')
            msg[--len] = '\0';
        log_error("db.connect_failed",
                  "error=%s hint=\"check DATABASE_URL (host, port, user, password, dbname) and "
                  "that the server accepts connections\"",
                  msg);
        PQfinish(conn);
        return STATUS_ERR_DB;
    }
    *out = conn;
    return STATUS_OK;
}

Status db_try_cycle_lock(PGconn *conn, bool *got)
{
    const char *p[] = {CYCLE_LOCK_KEY};
    PGresult *res = exec_params(conn, "try_cycle_lock", "SELECT pg_try_advisory_lock($1::bigint)",
                                1, p, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    *got = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return STATUS_OK;
}

Status db_release_cycle_lock(PGconn *conn)
{
    const char *p[] = {CYCLE_LOCK_KEY};
    PGresult *res = exec_params(conn, "release_cycle_lock", "SELECT pg_advisory_unlock($1::bigint)",
                                1, p, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    PQclear(res);
    return STATUS_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Snapshot                                                                                    */

/* Cell readers: a malformed value is a database error naming the column, never a crash. */
static int cell_double(const PGresult *res, int row, int col, double *out)
{
    if (PQgetisnull(res, row, col)) {
        *out = -1;
        return 0;
    }
    const char *s = PQgetvalue(res, row, col);
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0') {
        log_error("db.bad_value", "column=%s value=%s", PQfname(res, col), s);
        return -1;
    }
    *out = v;
    return 0;
}

/* Ages and counts: NULL (never) is -1; a negative age (a timestamp slightly in the future) is 0. */
static int cell_ll(const PGresult *res, int row, int col, long long *out)
{
    double d;
    if (cell_double(res, row, col, &d) != 0)
        return -1;
    if (PQgetisnull(res, row, col))
        *out = -1;
    else
        *out = d < 0 ? 0 : (long long)d;
    return 0;
}

static void cell_str(const PGresult *res, int row, int col, char *out, size_t cap)
{
    snprintf(out, cap, "%s", PQgetisnull(res, row, col) ? "" : PQgetvalue(res, row, col));
}

static bool cell_bool(const PGresult *res, int row, int col)
{
    return !PQgetisnull(res, row, col) && strcmp(PQgetvalue(res, row, col), "t") == 0;
}

static const char SQL_SNAPSHOT_SUMMARY[] =
    "SELECT extract(epoch FROM now())::float8 AS now_epoch,"
    /* Claimable = no dependency, or every dependency Complete; counted in two parts so the
     * first (almost every task) is an index-only scan of idx_tasks_queued_nodeps and only
     * tasks with dependencies get the probe (0004_snapshot_claimable_indexes.sql).
     * available_at is NOT NULL, as in func_claim_next_task. */
    " (SELECT count(*) FROM tasks t WHERE t.status = 'Queued' AND t.run_type = 'gpu'"
    "    AND t.available_at <= now() AND t.dependant_on IS NULL)"
    " + (SELECT count(*) FROM tasks t WHERE t.status = 'Queued' AND t.run_type = 'gpu'"
    "    AND t.available_at <= now() AND t.dependant_on IS NOT NULL AND NOT EXISTS ("
    "      SELECT 1 FROM unnest(t.dependant_on) AS d(id) LEFT JOIN tasks p ON p.id = d.id"
    "      WHERE p.status IS DISTINCT FROM 'Complete')) AS queued_claimable,"
    " (SELECT count(*) FROM tasks WHERE status = 'Queued') AS queued_total,"
    " (SELECT extract(epoch FROM now() - min(created_at))::float8"
    "    FROM tasks WHERE status = 'Queued') AS oldest_queued_age,"
    " (SELECT count(*) FROM tasks WHERE status = 'In Progress') AS in_progress,"
    " s.last_cycle_number,"
    " coalesce(extract(epoch FROM now() - s.last_reconcile_at), -1)::float8 AS since_reconcile,"
    " s.breaker_open,"
    " (SELECT count(*) FROM workers WHERE ended_at > now() - make_interval(mins => $1::int))"
    "   AS ended_in_window,"
    " (SELECT count(*) FROM workers WHERE ended_at > now() - make_interval(mins => $1::int)"
    "    AND end_kind = 'unexpected') AS unexpected_in_window,"
    " (SELECT coalesce(max(cost_per_hr), 0)::float8 FROM workers"
    "    WHERE cost_per_hr IS NOT NULL AND status <> 'terminated') AS max_live_cost,"
    " extract(epoch FROM now() - s.last_success_at)::float8 AS since_success"
    " FROM orchestrator_state s WHERE s.id = 1";

static const char SQL_SNAPSHOT_WORKERS[] =
    "SELECT id, status::text, coalesce(runpod_id, ''),"
    " extract(epoch FROM now() - created_at)::float8,"
    " extract(epoch FROM now() - last_heartbeat)::float8,"
    " coalesce(last_heartbeat > created_at, false),"
    " extract(epoch FROM now() - promoted_at)::float8,"
    " extract(epoch FROM now() - last_task_activity_at)::float8,"
    " CASE WHEN jsonb_typeof(metadata -> 'terminating_at') = 'number'"
    "   THEN greatest(extract(epoch FROM now())::float8"
    "                 - (metadata ->> 'terminating_at')::float8, 0)"
    "   WHEN status = 'terminating'" /* moved there by someone else: the trigger's ended_at */
    "   THEN extract(epoch FROM now() - ended_at)::float8 END,"
    " CASE WHEN jsonb_typeof(metadata -> 'vram_total_mb') = 'number'"
    "   THEN greatest((metadata ->> 'vram_total_mb')::float8, 0) END,"
    " CASE WHEN jsonb_typeof(metadata -> 'vram_used_mb') = 'number'"
    "   THEN greatest((metadata ->> 'vram_used_mb')::float8, 0) END,"
    " coalesce(cost_per_hr, 0)::float8, coalesce(gpu_type, '')"
    " FROM workers WHERE status <> 'terminated' ORDER BY created_at, id LIMIT $1::int";

static const char SQL_SNAPSHOT_TASKS[] =
    "SELECT id::text, coalesce(worker_id, ''), coalesce(task_type, ''),"
    " ($1::text <> '' AND coalesce(task_type, '') LIKE $1::text),"
    " extract(epoch FROM now() - generation_started_at)::float8,"
    " coalesce(attempts, 0), coalesce(max_attempts, 0)"
    " FROM tasks WHERE status = 'In Progress'"
    " ORDER BY generation_started_at NULLS FIRST, id LIMIT $2::int";

static const char SQL_SNAPSHOT_BACKOFF[] =
    "SELECT gpu_type, extract(epoch FROM backoff_until - now())::float8, failures"
    " FROM gpu_capacity_backoff WHERE backoff_until > now() ORDER BY gpu_type LIMIT $1::int";

static Status load_summary(PGconn *conn, const Config *cfg, Snapshot *snap)
{
    char window[16];
    snprintf(window, sizeof window, "%d", cfg->failure_window_minutes);
    const char *p[] = {window};
    PGresult *res =
        exec_params(conn, "snapshot_summary", SQL_SNAPSHOT_SUMMARY, 1, p, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    Status st = STATUS_ERR_DB;
    if (PQntuples(res) != 1) {
        log_error("db.bad_state", "msg=\"orchestrator_state has no row 1: run `orchestrator "
                                  "migrate`\"");
        goto out;
    }
    double now, since;
    long long last_cycle;
    if (cell_double(res, 0, 0, &now) || cell_ll(res, 0, 1, &snap->queued_claimable) ||
        cell_ll(res, 0, 2, &snap->queued_total) ||
        cell_ll(res, 0, 3, &snap->oldest_queued_age_sec) ||
        cell_ll(res, 0, 4, &snap->in_progress_total) || cell_ll(res, 0, 5, &last_cycle) ||
        cell_double(res, 0, 6, &since) || cell_ll(res, 0, 8, &snap->ended_in_window) ||
        cell_ll(res, 0, 9, &snap->unexpected_in_window) ||
        cell_double(res, 0, 10, &snap->max_known_pod_cost) ||
        cell_ll(res, 0, 11, &snap->since_success_sec))
        goto out;
    snap->now_epoch = now;
    snap->cycle_number = (last_cycle < 0 ? 0 : last_cycle) + 1;
    snap->since_reconcile_sec = since < 0 ? -1 : (long long)since;
    snap->breaker_was_open = cell_bool(res, 0, 7);
    st = STATUS_OK;
out:
    PQclear(res);
    return st;
}

static Status load_workers(PGconn *conn, Snapshot *snap)
{
    char limit[16];
    snprintf(limit, sizeof limit, "%d", SNAP_WORKERS_MAX + 1);
    const char *p[] = {limit};
    PGresult *res =
        exec_params(conn, "snapshot_workers", SQL_SNAPSHOT_WORKERS, 1, p, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    Status st = STATUS_ERR_DB;
    int rows = PQntuples(res);
    snap->workers_truncated = rows > SNAP_WORKERS_MAX;
    if (snap->workers_truncated) {
        log_error("snapshot.too_many_workers",
                  "limit=%d msg=\"more live worker rows than the snapshot holds; acting on "
                  "nothing this cycle. Terminate stale rows (orchestrator reconcile) or raise "
                  "SNAP_WORKERS_MAX\"",
                  SNAP_WORKERS_MAX);
        rows = SNAP_WORKERS_MAX;
    }
    snap->n_workers = 0;
    for (int r = 0; r < rows; r++) {
        SnapWorker *w = &snap->workers[snap->n_workers];
        memset(w, 0, sizeof *w);
        cell_str(res, r, 0, w->id, sizeof w->id);
        if (worker_state_parse(PQgetvalue(res, r, 1), &w->state) != 0) {
            log_error("db.bad_value", "column=status worker_id=%s value=%s", w->id,
                      PQgetvalue(res, r, 1));
            goto out;
        }
        cell_str(res, r, 2, w->runpod_id, sizeof w->runpod_id);
        if (cell_ll(res, r, 3, &w->age_sec) || cell_ll(res, r, 4, &w->heartbeat_age_sec) ||
            cell_ll(res, r, 6, &w->promoted_age_sec) || cell_ll(res, r, 7, &w->activity_age_sec) ||
            cell_ll(res, r, 8, &w->terminating_age_sec) || cell_ll(res, r, 9, &w->vram_total_mb) ||
            cell_ll(res, r, 10, &w->vram_used_mb) || cell_double(res, r, 11, &w->cost_per_hr))
            goto out;
        w->heartbeat_after_create = cell_bool(res, r, 5);
        cell_str(res, r, 12, w->gpu_type, sizeof w->gpu_type);
        snap->n_workers++;
    }
    st = STATUS_OK;
out:
    PQclear(res);
    return st;
}

static Status load_tasks(PGconn *conn, const Config *cfg, Snapshot *snap)
{
    char limit[16];
    snprintf(limit, sizeof limit, "%d", SNAP_TASKS_MAX + 1);
    const char *p[] = {cfg->stuck_exempt_task_types, limit};
    PGresult *res = exec_params(conn, "snapshot_tasks", SQL_SNAPSHOT_TASKS, 2, p, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    Status st = STATUS_ERR_DB;
    int rows = PQntuples(res);
    snap->tasks_truncated = rows > SNAP_TASKS_MAX;
    if (snap->tasks_truncated) {
        log_warn("snapshot.tasks_truncated",
                 "limit=%d msg=\"more In Progress tasks than the snapshot holds; the oldest are "
                 "checked this cycle, the rest in later cycles\"",
                 SNAP_TASKS_MAX);
        rows = SNAP_TASKS_MAX;
    }
    snap->n_tasks = 0;
    for (int r = 0; r < rows; r++) {
        SnapTask *t = &snap->tasks[snap->n_tasks];
        memset(t, 0, sizeof *t);
        cell_str(res, r, 0, t->id, sizeof t->id);
        cell_str(res, r, 1, t->worker_id, sizeof t->worker_id);
        cell_str(res, r, 2, t->task_type, sizeof t->task_type);
        t->exempt = cell_bool(res, r, 3);
        long long attempts, max_attempts;
        if (cell_ll(res, r, 4, &t->age_sec) || cell_ll(res, r, 5, &attempts) ||
            cell_ll(res, r, 6, &max_attempts))
            goto out;
        t->attempts = (int)(attempts < 0 ? 0 : attempts > 1000000 ? 1000000 : attempts);
        t->max_attempts = (int)(max_attempts < 0         ? 0
                                : max_attempts > 1000000 ? 1000000
                                                         : max_attempts);
        snap->n_tasks++;
    }
    st = STATUS_OK;
out:
    PQclear(res);
    return st;
}

static Status load_backoffs(PGconn *conn, Snapshot *snap)
{
    char limit[16];
    snprintf(limit, sizeof limit, "%d", SNAP_GPU_BACKOFF_MAX);
    const char *p[] = {limit};
    PGresult *res =
        exec_params(conn, "snapshot_backoff", SQL_SNAPSHOT_BACKOFF, 1, p, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    Status st = STATUS_ERR_DB;
    snap->n_backoffs = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        SnapGpuBackoff *b = &snap->backoffs[snap->n_backoffs];
        long long failures;
        cell_str(res, r, 0, b->gpu_type, sizeof b->gpu_type);
        if (cell_ll(res, r, 1, &b->remaining_sec) || cell_ll(res, r, 2, &failures))
            goto out;
        b->failures = (int)(failures > 1000000 ? 1000000 : failures);
        snap->n_backoffs++;
    }
    st = STATUS_OK;
out:
    PQclear(res);
    return st;
}

Status db_load_snapshot(PGconn *conn, const Config *cfg, Snapshot *out)
{
    /* One consistent view: every count and row from the same MVCC snapshot and now(). */
    Snapshot *snap = calloc(1, sizeof *snap);
    if (!snap)
        return STATUS_ERR_NOMEM;
    Status st = exec_command(conn, "snapshot_begin",
                             "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, NULL);
    if (st != STATUS_OK)
        goto out;
    /* No JIT for the snapshot: the planner charges the claimable count a dependency probe per
     * queued row, so from ~1,200 queued tasks its cost passes jit_above_cost (100,000), from
     * ~6,000 the inline/optimize thresholds, and compiling then takes ~270 ms for a ~10 ms
     * query (structure_docs/performance.md). SET LOCAL: this transaction only, so it is also
     * right behind a transaction-pooling PgBouncer. */
    st = exec_command(conn, "snapshot_no_jit", "SET LOCAL jit = off", 0, NULL, NULL);
    if (st == STATUS_OK)
        st = load_summary(conn, cfg, snap);
    if (st == STATUS_OK)
        st = load_workers(conn, snap);
    if (st == STATUS_OK)
        st = load_tasks(conn, cfg, snap);
    if (st == STATUS_OK)
        st = load_backoffs(conn, snap);
    Status end =
        exec_command(conn, "snapshot_end", st == STATUS_OK ? "COMMIT" : "ROLLBACK", 0, NULL, NULL);
    if (st == STATUS_OK)
        st = end;
    if (st == STATUS_OK) {
        snap->pods_listed = false; /* the caller lists pods when it needs them */
        snap->n_pods = 0;
        memcpy(out, snap, sizeof *snap);
    }
out:
    free(snap);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* Guarded writes                                                                              */

Status db_promote_worker(PGconn *conn, const char *id, bool *applied)
{
    const char *p[] = {id};
    int rows = 0;
    Status st =
        exec_command(conn, "promote_worker",
                     "UPDATE workers SET status = 'active', promoted_at = now(),"
                     " metadata = metadata || jsonb_build_object('promoted_to_active_at', now())"
                     " WHERE id = $1 AND status = 'spawning'",
                     1, p, &rows);
    if (st == STATUS_OK)
        *applied = rows == 1;
    return st;
}

Status db_fail_worker(PGconn *conn, const char *id, WorkerState from, const char *reason,
                      bool unexpected, bool *applied)
{
    const char *p[] = {id, worker_state_str(from), reason, unexpected ? "unexpected" : "expected"};
    int rows = 0;
    Status st = exec_command(
        conn, "fail_worker",
        "UPDATE workers SET status = 'error',"
        " metadata = metadata || jsonb_build_object('error_reason', $3::text, 'error_time', now()),"
        " ended_at = coalesce(ended_at, now()), end_kind = coalesce(end_kind, $4::text)"
        " WHERE id = $1 AND status = $2::worker_status",
        4, p, &rows);
    if (st == STATUS_OK)
        *applied = rows == 1;
    return st;
}

Status db_drain_worker(PGconn *conn, const char *id, const char *reason, bool *applied)
{
    const char *p[] = {id};
    const char *p2[] = {id, reason};
    Status st = exec_command(conn, "drain_begin", "BEGIN", 0, NULL, NULL);
    if (st != STATUS_OK)
        return st;
    /* Lock the worker row first: func_claim_next_task locks it too (FOR NO KEY UPDATE) before
     * claiming, so once we hold it no claim is in flight and none can start. */
    PGresult *res =
        exec_params(conn, "drain_lock", "SELECT status::text FROM workers WHERE id = $1 FOR UPDATE",
                    1, p, PGRES_TUPLES_OK);
    bool ok = res && PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "active") == 0;
    PQclear(res);
    if (!res) {
        st = STATUS_ERR_DB;
        goto rollback;
    }
    int rows = 0;
    if (ok) {
        st = exec_command(
            conn, "drain_worker",
            "UPDATE workers SET status = 'terminating',"
            " metadata = metadata || jsonb_build_object('terminating_at',"
            "   extract(epoch FROM now()), 'terminating_reason', $2::text),"
            " ended_at = coalesce(ended_at, now()), end_kind = coalesce(end_kind, 'expected')"
            " WHERE id = $1 AND status = 'active' AND NOT EXISTS ("
            "   SELECT 1 FROM tasks WHERE worker_id = $1 AND status = 'In Progress')",
            2, p2, &rows);
        if (st != STATUS_OK)
            goto rollback;
    }
    st = exec_command(conn, "drain_commit", "COMMIT", 0, NULL, NULL);
    if (st == STATUS_OK)
        *applied = rows == 1;
    return st;
rollback:
    exec_command(conn, "drain_rollback", "ROLLBACK", 0, NULL, NULL);
    return st;
}

Status db_force_drain_worker(PGconn *conn, const char *id, WorkerState from, const char *reason,
                             bool *applied)
{
    const char *p[] = {id, worker_state_str(from), reason};
    int rows = 0;
    Status st = exec_command(
        conn, "force_drain_worker",
        "UPDATE workers SET status = 'terminating',"
        " metadata = metadata || jsonb_build_object('terminating_at',"
        "   extract(epoch FROM now()), 'terminating_reason', $3::text),"
        " ended_at = coalesce(ended_at, now()), end_kind = coalesce(end_kind, 'expected')"
        " WHERE id = $1 AND status = $2::worker_status",
        3, p, &rows);
    if (st == STATUS_OK)
        *applied = rows == 1;
    return st;
}

Status db_mark_terminated(PGconn *conn, const char *id, WorkerState from, const char *reason,
                          bool *applied)
{
    const char *p[] = {id, worker_state_str(from), reason};
    int rows = 0;
    Status st = exec_command(
        conn, "mark_terminated",
        "UPDATE workers SET status = 'terminated',"
        " metadata = metadata || jsonb_build_object('terminated_at', now(),"
        "   'terminated_reason', $3::text),"
        " ended_at = coalesce(ended_at, now()), end_kind = coalesce(end_kind, 'expected')"
        " WHERE id = $1 AND status = $2::worker_status",
        3, p, &rows);
    if (st == STATUS_OK)
        *applied = rows == 1;
    return st;
}

Status db_record_pod(PGconn *conn, const char *id, const char *pod_id, const char *gpu_type,
                     double cost_per_hr, bool *applied)
{
    char cost[32];
    snprintf(cost, sizeof cost, "%.6f", cost_per_hr);
    const char *p[] = {id, pod_id, gpu_type && gpu_type[0] ? gpu_type : NULL,
                       cost_per_hr > 0 ? cost : NULL};
    int rows = 0;
    Status st =
        exec_command(conn, "record_pod",
                     "UPDATE workers SET runpod_id = $2, gpu_type = coalesce($3::text, gpu_type),"
                     " cost_per_hr = coalesce($4::numeric, cost_per_hr),"
                     " metadata = metadata || jsonb_build_object('runpod_id', $2::text)"
                     "   || CASE WHEN $4::numeric IS NULL THEN '{}'::jsonb"
                     "      ELSE jsonb_build_object('cost_per_hr', $4::numeric) END"
                     " WHERE id = $1 AND status = 'spawning' AND runpod_id IS NULL",
                     4, p, &rows);
    if (st == STATUS_OK)
        *applied = rows == 1;
    return st;
}

Status db_insert_spawning_worker(PGconn *conn, const char *id, const char *gpu_type)
{
    const char *p[] = {id, gpu_type};
    return exec_command(conn, "insert_worker",
                        "INSERT INTO workers (id, instance_type, gpu_type, status, metadata)"
                        " VALUES ($1, $2, $2, 'spawning',"
                        "  jsonb_build_object('orchestrator_status', 'spawning'))",
                        2, p, NULL);
}

Status db_recover_task(PGconn *conn, const char *task_id, const char *worker_id,
                       int max_task_attempts, const char *reason, bool *applied,
                       char new_status[16])
{
    char maxa[16];
    snprintf(maxa, sizeof maxa, "%d", max_task_attempts);
    const char *p[] = {task_id, worker_id, maxa, reason};
    PGresult *res = exec_params(
        conn, "recover_task",
        "UPDATE tasks SET attempts = attempts + 1,"
        " status = CASE WHEN attempts + 1 >= least(coalesce(nullif(max_attempts, 0), $3::int),"
        "   $3::int) THEN 'Failed'::task_status ELSE 'Queued'::task_status END,"
        " worker_id = CASE WHEN attempts + 1 >= least(coalesce(nullif(max_attempts, 0), $3::int),"
        "   $3::int) THEN worker_id ELSE NULL END,"
        " generation_started_at = CASE WHEN attempts + 1 >= least(coalesce(nullif(max_attempts,"
        "   0), $3::int), $3::int) THEN generation_started_at ELSE NULL END,"
        " generation_processed_at = CASE WHEN attempts + 1 >= least(coalesce(nullif("
        "   max_attempts, 0), $3::int), $3::int) THEN now() ELSE NULL END,"
        " available_at = now(),"
        " error_message = $4"
        " WHERE id = $1::uuid AND worker_id = $2 AND status = 'In Progress'"
        " RETURNING status::text",
        4, p, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    *applied = PQntuples(res) == 1;
    if (*applied)
        snprintf(new_status, 16, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return STATUS_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* State, backoff, journal                                                                     */

Status db_save_state(PGconn *conn, long long cycle_number, const CycleStateUpdate *u)
{
    char cycle[32];
    snprintf(cycle, sizeof cycle, "%lld", cycle_number);
    const char *p[] = {cycle,
                       u->success ? "t" : "f",
                       u->reconciled ? "t" : "f",
                       u->scaled_up ? "t" : "f",
                       u->scaled_down ? "t" : "f",
                       u->breaker_open ? "t" : "f",
                       u->breaker_reason};
    return exec_command(
        conn, "save_state",
        "UPDATE orchestrator_state SET"
        " last_cycle_number = greatest(coalesce(last_cycle_number, 0), $1::bigint),"
        " last_cycle_at = now(),"
        " last_success_at = CASE WHEN $2::bool THEN now() ELSE last_success_at END,"
        " last_reconcile_at = CASE WHEN $3::bool THEN now() ELSE last_reconcile_at END,"
        " last_scale_up_at = CASE WHEN $4::bool THEN now() ELSE last_scale_up_at END,"
        " last_scale_down_at = CASE WHEN $5::bool THEN now() ELSE last_scale_down_at END,"
        " breaker_opened_at = CASE WHEN $6::bool AND NOT breaker_open THEN now()"
        "   WHEN NOT $6::bool THEN NULL ELSE breaker_opened_at END,"
        " breaker_open = $6::bool,"
        " breaker_reason = $7::text"
        " WHERE id = 1",
        7, p, NULL);
}

Status db_record_capacity_failure(PGconn *conn, const char *gpu_type, int base_sec, int max_sec,
                                  const char *detail)
{
    char base[16], max[16];
    snprintf(base, sizeof base, "%d", base_sec);
    snprintf(max, sizeof max, "%d", max_sec);
    const char *p[] = {gpu_type, base, max, detail};
    return exec_command(
        conn, "capacity_failure",
        "INSERT INTO gpu_capacity_backoff AS b (gpu_type, failures, last_failure_at,"
        "  backoff_until, last_error)"
        " VALUES ($1, 1, now(), now() + make_interval(secs => $2::int), $4)"
        " ON CONFLICT (gpu_type) DO UPDATE SET failures = b.failures + 1,"
        "  last_failure_at = now(), last_error = $4,"
        "  backoff_until = now() + make_interval(secs => least($3::float8,"
        "    $2::float8 * power(2, least(b.failures, 20))))",
        4, p, NULL);
}

Status db_clear_capacity_backoff(PGconn *conn, const char *gpu_type)
{
    const char *p[] = {gpu_type};
    return exec_command(conn, "capacity_clear",
                        "DELETE FROM gpu_capacity_backoff WHERE gpu_type = $1", 1, p, NULL);
}

Status db_insert_journal(PGconn *conn, const JournalEntry *e)
{
    char cycle[32], dur[32], code[16];
    snprintf(cycle, sizeof cycle, "%lld", e->cycle_number);
    snprintf(dur, sizeof dur, "%lld", e->duration_ms);
    snprintf(code, sizeof code, "%d", e->exit_code);
    const char *p[] = {cycle,
                       e->instance_id,
                       e->command,
                       ORCH_VERSION,
                       e->config_hash,
                       e->safe_mode ? "t" : "f",
                       e->dry_run ? "t" : "f",
                       dur,
                       e->snapshot_json,
                       e->plan_json,
                       e->outcomes_json,
                       e->errors_json,
                       e->exit_status,
                       code};
    return exec_command(
        conn, "insert_journal",
        "INSERT INTO orchestrator_cycles (cycle_number, instance_id, command, version,"
        " config_hash, safe_mode, dry_run, started_at, finished_at, duration_ms, snapshot, plan,"
        " outcomes, errors, exit_status, exit_code)"
        " VALUES ($1::bigint, $2, $3, $4, $5, $6::bool, $7::bool,"
        "  now() - make_interval(secs => $8::float8 / 1000), now(), $8::int,"
        "  $9::jsonb, $10::jsonb, $11::jsonb, $12::jsonb, $13, $14::int)",
        14, p, NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* Operator commands                                                                           */

Status db_insert_tasks(PGconn *conn, const char *tasks_json, int default_max_attempts, cJSON **ids)
{
    char maxa[16];
    snprintf(maxa, sizeof maxa, "%d", default_max_attempts);
    const char *p[] = {tasks_json, maxa};
    /* One statement: all rows or none. */
    PGresult *res = exec_params(
        conn, "insert_tasks",
        "INSERT INTO tasks (task_type, params, run_type, dependant_on, max_attempts)"
        " SELECT r.task_type, coalesce(r.params, '{}'::jsonb), coalesce(r.run_type, 'gpu'),"
        "   r.dependant_on, coalesce(r.max_attempts, $2::int)"
        " FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(doc, n),"
        "   jsonb_to_record(e.doc) AS r(task_type text, params jsonb, run_type text,"
        "     dependant_on uuid[], max_attempts int)"
        " ORDER BY e.n RETURNING id::text",
        2, p, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    cJSON *arr = cJSON_CreateArray();
    for (int r = 0; arr && r < PQntuples(res); r++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(PQgetvalue(res, r, 0)));
    PQclear(res);
    if (!arr)
        return STATUS_ERR_NOMEM;
    *ids = arr;
    return STATUS_OK;
}

Status db_query_logs(PGconn *conn, const LogQuery *q, cJSON **rows)
{
    char cycle[32], since[32], limit[16];
    snprintf(cycle, sizeof cycle, "%lld", q->cycle);
    snprintf(since, sizeof since, "%lld", q->since_sec);
    snprintf(limit, sizeof limit, "%d", q->limit);
    const char *p[] = {q->worker_id,
                       q->task_id,
                       q->cycle > 0 ? cycle : NULL,
                       q->min_level,
                       q->since_sec > 0 ? since : NULL,
                       limit};
    PGresult *res = exec_params(
        conn, "query_logs",
        "SELECT to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
        " log_level, source_type, source_id, coalesce(worker_id, ''), coalesce(task_id::text, ''),"
        " coalesce(cycle_number::text, ''), message, coalesce(metadata, '{}'::jsonb)::text"
        " FROM (SELECT * FROM system_logs"
        "  WHERE ($1::text IS NULL OR worker_id = $1)"
        "    AND ($2::text IS NULL OR task_id::text = $2)"
        "    AND ($3::int IS NULL OR cycle_number = $3::int)"
        "    AND ($4::text IS NULL OR array_position(ARRAY['DEBUG','INFO','WARNING','ERROR',"
        "         'CRITICAL'], log_level) >= array_position(ARRAY['DEBUG','INFO','WARNING',"
        "         'ERROR','CRITICAL'], $4::text))"
        "    AND ($5::float8 IS NULL OR timestamp > now() - make_interval(secs => $5::float8))"
        "  ORDER BY timestamp DESC LIMIT $6::int) l"
        " ORDER BY timestamp",
        6, p, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    static const char *keys[] = {"time",      "level",   "source_type", "source_id",
                                 "worker_id", "task_id", "cycle",       "message"};
    cJSON *arr = cJSON_CreateArray();
    for (int r = 0; arr && r < PQntuples(res); r++) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        for (int k = 0; k < 8; k++)
            cJSON_AddStringToObject(o, keys[k], PQgetvalue(res, r, k));
        cJSON *meta = cJSON_Parse(PQgetvalue(res, r, 8));
        cJSON_AddItemToObject(o, "metadata", meta ? meta : cJSON_CreateObject());
        cJSON_AddItemToArray(arr, o);
    }
    PQclear(res);
    if (!arr)
        return STATUS_ERR_NOMEM;
    *rows = arr;
    return STATUS_OK;
}
