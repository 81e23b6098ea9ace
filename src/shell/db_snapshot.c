/* db_snapshot.c -- the snapshot: a fixed number of set-based statements in one read-only,
 * repeatable-read transaction (see db.h, db_load_snapshot); what the database knows about listed
 * pods is in db_snapshot_pods.c.
 *
 * Shell module. Never keeps pointers into a PGresult; a malformed cell is a database error
 * naming the column, never a crash.
 */
#include "db.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_exec.h"
#include "db_runpod.h"
#include "db_lifecycle.h"
#include "log.h"

/* ------------------------------------------------------------------------------------------ */
/* Snapshot                                                                                    */

/* Cell readers: a malformed value (or NaN) is a database error naming the column, never a
 * crash. A value beyond +-CELL_VALUE_MAX reads as +-CELL_VALUE_MAX, so casts to long long are
 * defined and sums of ages cannot overflow.
 *
 * Every age below is a difference of epochs, (extract(epoch FROM now()) - extract(epoch FROM
 * x)), never of timestamps: a row holding 'infinity' or '-infinity' (anyone may write a task
 * row) then yields -Infinity or Infinity, which these readers clamp, not "cannot subtract
 * infinite timestamps", which would fail the snapshot and with it every cycle. */
#define CELL_VALUE_MAX 1e15
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
    if (errno || end == s || *end != '\0' || isnan(v)) {
        log_error("db.bad_value", "column=%s value=%s", PQfname(res, col), s);
        return -1;
    }
    *out = fmax(-CELL_VALUE_MAX, fmin(v, CELL_VALUE_MAX));
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

/* The cell readers for the other db_*.c modules (db_exec.h). */
int db_cell_double(const PGresult *res, int row, int col, double *out)
{
    return cell_double(res, row, col, out);
}

int db_cell_ll(const PGresult *res, int row, int col, long long *out)
{
    return cell_ll(res, row, col, out);
}

void db_cell_str(const PGresult *res, int row, int col, char *out, size_t cap)
{
    cell_str(res, row, col, out, cap);
}

bool db_cell_bool(const PGresult *res, int row, int col)
{
    return cell_bool(res, row, col);
}

static const char SQL_SNAPSHOT_SUMMARY[] =
    "SELECT extract(epoch FROM now())::float8 AS now_epoch,"
    " NULL::bigint AS queued_claimable," /* summed from SQL_SNAPSHOT_DEMAND */
    " (SELECT count(*) FROM tasks WHERE status = 'Queued') AS queued_total,"
    " (SELECT (extract(epoch FROM now()) - extract(epoch FROM min(created_at)))::float8"
    "    FROM tasks WHERE status = 'Queued' AND isfinite(created_at)) AS oldest_queued_age,"
    " (SELECT count(*) FROM tasks WHERE status = 'In Progress') AS in_progress,"
    " s.last_cycle_number,"
    " coalesce((extract(epoch FROM now()) - extract(epoch FROM s.last_reconcile_at)), -1)::float8"
    "   AS since_reconcile,"
    " s.breaker_open,"
    " (SELECT count(*) FROM workers WHERE ended_at > now() - make_interval(mins => $1::int))"
    "   AS ended_in_window,"
    " (SELECT count(*) FROM workers WHERE ended_at > now() - make_interval(mins => $1::int)"
    "    AND end_kind = 'unexpected') AS unexpected_in_window,"
    " (SELECT coalesce(max(cost_per_hr), 0)::float8 FROM workers"
    "    WHERE cost_per_hr IS NOT NULL AND status <> 'terminated') AS max_live_cost,"
    " (extract(epoch FROM now()) - extract(epoch FROM s.last_success_at))::float8 AS since_success"
    " FROM orchestrator_state s WHERE s.id = 1";

/* Demand per run_type, one row per run_type with Queued tasks, the largest first. Claimable =
 * no dependency, or every dependency Complete, and available_at passed (as in
 * func_claim_next_task); counted in two parts so almost every task is an index-only count of
 * idx_tasks_queued_nodeps and only tasks with dependencies get the probe
 * (0004_snapshot_claimable_indexes.sql). Grouped by run type, not a query per pool: the planner
 * maps run types to pools. */
static const char SQL_SNAPSHOT_DEMAND[] =
    "WITH q AS (SELECT run_type, count(*) AS queued,"
    "   min(created_at) FILTER (WHERE isfinite(created_at)) AS oldest"
    "   FROM tasks WHERE status = 'Queued' GROUP BY run_type),"
    " nd AS (SELECT run_type, count(*) AS n FROM tasks"
    "   WHERE status = 'Queued' AND available_at <= now() AND dependant_on IS NULL"
    "   GROUP BY run_type),"
    " d AS (SELECT t.run_type, count(*) AS n FROM tasks t"
    "   WHERE t.status = 'Queued' AND t.available_at <= now() AND t.dependant_on IS NOT NULL"
    "     AND NOT EXISTS (SELECT 1 FROM unnest(t.dependant_on) AS x(id)"
    "       LEFT JOIN tasks p ON p.id = x.id WHERE p.status IS DISTINCT FROM 'Complete')"
    "   GROUP BY t.run_type),"
    " r AS (SELECT q.run_type, coalesce(nd.n, 0) + coalesce(d.n, 0) AS claimable, q.queued,"
    "   (extract(epoch FROM now()) - extract(epoch FROM q.oldest))::float8 AS age,"
    "   q.run_type IN (SELECT jsonb_array_elements_text($2::jsonb)) AS served"
    "   FROM q LEFT JOIN nd USING (run_type) LEFT JOIN d USING (run_type)),"
    " k AS (SELECT *, row_number() OVER (PARTITION BY served ORDER BY queued DESC, run_type)"
    "   AS rank FROM r)"
    " SELECT * FROM ("
    "  SELECT run_type, claimable::float8 AS c, queued::float8 AS n, age, 1::float8 AS types"
    "   FROM k WHERE served OR rank <= $1::int"
    "  UNION ALL"
    "  SELECT NULL, sum(claimable)::float8, sum(queued)::float8, max(age), count(*)::float8"
    "   FROM k WHERE NOT served AND rank > $1::int HAVING count(*) > 0) u"
    " ORDER BY run_type IS NULL, n DESC, run_type";

/* Per pool: workers that ended within the breaker window (kind 'ended'), and the run types
 * worker_pools lets each pool's workers claim (kind 'claims', compared with the configuration
 * by the loop, which rewrites the table when they differ). */
static const char SQL_SNAPSHOT_POOLS[] =
    "SELECT 'ended', pool, count(*)::float8,"
    "  (count(*) FILTER (WHERE end_kind = 'unexpected'))::float8, NULL::text"
    " FROM workers WHERE ended_at > now() - make_interval(mins => $1::int) GROUP BY pool"
    " UNION ALL"
    " SELECT 'claims', name, NULL, NULL, array_to_string(run_types, ',') FROM worker_pools"
    " UNION ALL"
    " SELECT 'price', gpu_type, cost_per_hr::float8, NULL, cloud_type FROM gpu_prices"
    " ORDER BY 1, 2 LIMIT $2::int";

static const char SQL_SNAPSHOT_WORKERS[] =
    "SELECT w.id, w.status::text, coalesce(w.runpod_id, ''),"
    " (extract(epoch FROM now()) - extract(epoch FROM w.created_at))::float8,"
    " (extract(epoch FROM now()) - extract(epoch FROM w.last_heartbeat))::float8,"
    " coalesce(w.last_heartbeat > w.created_at, false),"
    " (extract(epoch FROM now()) - extract(epoch FROM w.promoted_at))::float8,"
    " (extract(epoch FROM now()) - extract(epoch FROM w.last_task_activity_at))::float8,"
    " CASE WHEN jsonb_typeof(w.metadata -> 'terminating_at') = 'number'"
    "   THEN greatest(extract(epoch FROM now())::float8"
    "                 - (w.metadata ->> 'terminating_at')::float8, 0)"
    "   WHEN w.status = 'terminating'" /* moved there by someone else: the trigger's ended_at */
    "   THEN (extract(epoch FROM now()) - extract(epoch FROM w.ended_at))::float8 END,"
    /* A negative figure means "unknown" (as no figure), never "no GPU". */
    " CASE WHEN jsonb_typeof(w.metadata -> 'vram_total_mb') = 'number'"
    "   AND (w.metadata ->> 'vram_total_mb')::float8 >= 0"
    "   THEN (w.metadata ->> 'vram_total_mb')::float8 END,"
    " CASE WHEN jsonb_typeof(w.metadata -> 'vram_used_mb') = 'number'"
    "   AND (w.metadata ->> 'vram_used_mb')::float8 >= 0"
    "   THEN (w.metadata ->> 'vram_used_mb')::float8 END,"
    " coalesce(w.cost_per_hr, 0)::float8, coalesce(w.gpu_type, ''),"
    /* Per-worker task facts over every In Progress task (idx_tasks_in_progress_worker), so
     * they are right however many tasks run: how many it holds, and its oldest non-exempt
     * one (the stuck check). */
    " (SELECT count(*) FROM tasks t WHERE t.worker_id = w.id AND t.status = 'In Progress'),"
    " o.id, o.age,"
    " coalesce(w.metadata -> 'create_outcome_unknown' = 'true'::jsonb, false), w.pool,"
    /* The lag windows count from the create's answer, not the row's insert (a create can take
     * as long as RUNPOD_REQUEST_TIMEOUT_SEC): when its outcome became unknown, when the pod
     * id was recorded. */
    " CASE WHEN jsonb_typeof(w.metadata -> 'create_unknown_at') = 'string'"
    "   THEN (extract(epoch FROM now())"
    "     - extract(epoch FROM (w.metadata ->> 'create_unknown_at')::timestamptz))"
    "   END::float8,"
    " CASE WHEN w.runpod_id IS NULL THEN NULL"
    "   WHEN jsonb_typeof(w.metadata -> 'pod_recorded_at') = 'string'"
    "   THEN (extract(epoch FROM now())"
    "     - extract(epoch FROM (w.metadata ->> 'pod_recorded_at')::timestamptz))"
    "   ELSE (extract(epoch FROM now()) - extract(epoch FROM w.created_at)) END::float8,"
    " octet_length(w.id) >= $3::int"
    " FROM workers w"
    " LEFT JOIN LATERAL (SELECT t.id::text AS id,"
    "     (extract(epoch FROM now()) - extract(epoch FROM t.generation_started_at))::float8 AS age"
    "   FROM tasks t WHERE t.worker_id = w.id AND t.status = 'In Progress'"
    "     AND NOT ($2::text <> '' AND coalesce(t.task_type, '') LIKE $2::text)"
    "   ORDER BY t.generation_started_at NULLS LAST, t.id LIMIT 1) o ON true"
    " WHERE w.status <> 'terminated' ORDER BY w.created_at, w.id LIMIT $1::int";

static const char SQL_SNAPSHOT_TASKS[] =
    "SELECT t.id::text, coalesce(t.worker_id, ''), coalesce(t.task_type, ''),"
    " ($1::text <> '' AND coalesce(t.task_type, '') LIKE $1::text),"
    " (extract(epoch FROM now()) - extract(epoch FROM t.generation_started_at))::float8,"
    " coalesce(t.attempts, 0), coalesce(t.max_attempts, 0),"
    /* Whether the holder is, or was, one of our workers: only those tasks are ever recovered
     * (a task held by an API worker or another system is not ours to re-queue). */
    " EXISTS (SELECT 1 FROM workers w WHERE w.id = t.worker_id), t.run_type,"
    " coalesce(octet_length(t.worker_id) >= $3::int, false)"
    " FROM tasks t WHERE t.status = 'In Progress'"
    " ORDER BY t.generation_started_at NULLS FIRST, t.id LIMIT $2::int";

static const char SQL_SNAPSHOT_BACKOFF[] =
    "SELECT gpu_type, extract(epoch FROM backoff_until - now())::float8, failures"
    " FROM gpu_capacity_backoff WHERE backoff_until > now() ORDER BY gpu_type LIMIT $1::int";

/* The adaptive policies' measured inputs (issue 15), only when one of them is on: per run
 * type served by a pool, the tasks created within the rate window, the most created within
 * the warm window up to any task created within the demote window (RANGE counts equal
 * created_at together, as the simulator does), the age of the newest, and the median duration
 * of its last 50 completed tasks; per pool, the median creation-to-promotion time of its last
 * 20 promoted workers. Index-backed slices (0015_adaptive_measures.sql), not scans. */
static const char SQL_SNAPSHOT_MEASURES[] =
    "WITH rt AS (SELECT DISTINCT jsonb_array_elements_text($1::jsonb) AS run_type),"
    " pl AS (SELECT DISTINCT jsonb_array_elements_text($2::jsonb) AS pool)"
    " SELECT 'run_type', rt.run_type,"
    "  (SELECT count(*) FROM tasks t WHERE t.run_type = rt.run_type"
    "     AND t.created_at > now() - make_interval(secs => $3::int)"
    "     AND isfinite(t.created_at))::float8,"
    "  (SELECT coalesce(max(w.c), 0) FROM (SELECT t.created_at, count(*) OVER (ORDER BY"
    "       t.created_at RANGE BETWEEN make_interval(secs => $4::int) PRECEDING AND CURRENT ROW)"
    "       AS c FROM tasks t WHERE t.run_type = rt.run_type"
    "       AND t.created_at > now() - make_interval(secs => $4::int + $5::int)"
    "       AND isfinite(t.created_at)) w"
    "     WHERE w.created_at > now() - make_interval(secs => $5::int))::float8,"
    "  (SELECT extract(epoch FROM now() - max(t.created_at)) FROM tasks t"
    "     WHERE t.run_type = rt.run_type"
    "     AND t.created_at > now() - make_interval(secs => $5::int)"
    "     AND isfinite(t.created_at))::float8,"
    /* The slice is idx_tasks_run_type_complete_processed's (0015), backwards, even for a run
     * type with no completed task: with `run_type = rt.run_type` PostgreSQL drops the constant
     * run_type from the ORDER BY and may walk 0010's global idx_tasks_complete_processed to its
     * end (1,000,000 rows for a run type that never completed one); `= ANY (ARRAY[...])` is the
     * same test but keeps run_type in the order, which only the per-run-type index gives.
     * Hostile timestamps (infinite, or processed before started) are skipped. */
    "  (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY d.s) FROM (SELECT"
    "       extract(epoch FROM t.generation_processed_at - t.generation_started_at) AS s"
    "       FROM tasks t WHERE t.run_type = ANY (ARRAY[rt.run_type]) AND t.status = 'Complete'"
    "       AND t.generation_processed_at IS NOT NULL AND t.generation_started_at IS NOT NULL"
    "       AND isfinite(t.generation_processed_at) AND isfinite(t.generation_started_at)"
    "       AND t.generation_processed_at >= t.generation_started_at"
    "       ORDER BY t.run_type DESC, t.generation_processed_at DESC LIMIT 50) d)::float8"
    " FROM rt"
    " UNION ALL"
    /* A cold start runs from the pod's last (re)start: orchestrator_restart_worker (0011)
     * keeps created_at and clears promoted_at, so for a restarted pod promoted_at - created_at
     * would span its whole stopped time. Negative or infinite spans are skipped. */
    " SELECT 'pool', pl.pool, b.n, NULL, NULL, b.m FROM pl CROSS JOIN LATERAL (SELECT"
    "   count(*)::float8 AS n, percentile_cont(0.5) WITHIN GROUP (ORDER BY x.s)::float8 AS m"
    "   FROM (SELECT extract(epoch FROM w.promoted_at - coalesce(w.restarted_at, w.created_at))"
    "     AS s FROM workers w"
    "     WHERE w.pool = pl.pool AND w.promoted_at IS NOT NULL AND isfinite(w.promoted_at)"
    "     AND isfinite(coalesce(w.restarted_at, w.created_at))"
    "     AND w.promoted_at >= coalesce(w.restarted_at, w.created_at)"
    "     ORDER BY w.promoted_at DESC LIMIT 20) x) b"
    " ORDER BY 1 DESC, 2";

static Status load_summary(PGconn *conn, const Config *cfg, Snapshot *snap)
{
    char window[16];
    snprintf(window, sizeof window, "%d", cfg->failure_window_minutes);
    const char *p[] = {window};
    PGresult *res =
        db_exec_params(conn, "snapshot_summary", SQL_SNAPSHOT_SUMMARY, 1, p, PGRES_TUPLES_OK);
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
    if (cell_double(res, 0, 0, &now) || cell_ll(res, 0, 2, &snap->queued_total) ||
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

static Status load_workers(PGconn *conn, const Config *cfg, Snapshot *snap)
{
    char limit[16], idmax[16];
    snprintf(limit, sizeof limit, "%d", SNAP_WORKERS_MAX + 1);
    snprintf(idmax, sizeof idmax, "%d", SNAP_WORKER_ID_MAX);
    const char *p[] = {limit, cfg->stuck_exempt_task_types, idmax};
    PGresult *res =
        db_exec_params(conn, "snapshot_workers", SQL_SNAPSHOT_WORKERS, 3, p, PGRES_TUPLES_OK);
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
        if (cell_ll(res, r, 13, &w->tasks_held) || cell_ll(res, r, 15, &w->oldest_task_age_sec))
            goto out;
        cell_str(res, r, 14, w->oldest_task_id, sizeof w->oldest_task_id);
        if (!w->oldest_task_id[0])
            w->oldest_task_age_sec = -1;
        w->create_unknown = cell_bool(res, r, 16);
        cell_str(res, r, 17, w->pool, sizeof w->pool);
        if (cell_ll(res, r, 18, &w->create_unknown_age_sec) || cell_ll(res, r, 19, &w->pod_age_sec))
            goto out;
        w->id_too_long = cell_bool(res, r, 20);
        if (w->id_too_long)
            log_error("snapshot.worker_id_too_long",
                      "worker_id=%s limit=%d msg=\"a worker row id this long cannot be acted on; "
                      "its pod and tasks are left alone: rename or delete the row\"",
                      w->id, SNAP_WORKER_ID_MAX - 1);
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
    char idmax[16];
    snprintf(idmax, sizeof idmax, "%d", SNAP_WORKER_ID_MAX);
    const char *p[] = {cfg->stuck_exempt_task_types, limit, idmax};
    PGresult *res =
        db_exec_params(conn, "snapshot_tasks", SQL_SNAPSHOT_TASKS, 3, p, PGRES_TUPLES_OK);
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
        t->holder_known = cell_bool(res, r, 7);
        cell_str(res, r, 8, t->run_type, sizeof t->run_type);
        t->holder_too_long = cell_bool(res, r, 9);
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
        db_exec_params(conn, "snapshot_backoff", SQL_SNAPSHOT_BACKOFF, 1, p, PGRES_TUPLES_OK);
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

/* Every run type a pool of cfg serves, as a JSON array (the demand query's $2). NULL: no memory. */
static char *served_json(const Config *cfg)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t p = 0; arr && p < cfg->n_pools; p++)
        for (size_t r = 0; r < cfg->pools[p].run_types.count; r++)
            cJSON_AddItemToArray(arr, cJSON_CreateString(cfg->pools[p].run_types.items[r]));
    char *out = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    return out;
}

/* Demand: a row for every served run type with Queued tasks and for the SNAP_UNSERVED_NAMED
 * largest unserved ones, then one row (name NULL) summing the other unserved run types. However
 * many unserved run types fill the queue, a served queue is always seen (a flood of 70 unknown
 * run types used to push a pool's own small queue out of the snapshot). */
static Status load_demand(PGconn *conn, const Config *cfg, Snapshot *snap)
{
    char limit[16];
    snprintf(limit, sizeof limit, "%d", SNAP_UNSERVED_NAMED);
    char *served = served_json(cfg);
    if (!served)
        return STATUS_ERR_NOMEM;
    const char *p[] = {limit, served};
    PGresult *res =
        db_exec_params(conn, "snapshot_demand", SQL_SNAPSHOT_DEMAND, 2, p, PGRES_TUPLES_OK);
    cJSON_free(served);
    if (!res)
        return STATUS_ERR_DB;
    Status st = STATUS_ERR_DB;
    int rows = PQntuples(res);
    snap->n_run_types = 0;
    snap->queued_claimable = 0;
    snap->unserved_other_types = snap->unserved_other_queued = 0;
    snap->run_types_truncated = false;
    for (int r = 0; r < rows; r++) {
        long long claimable = 0, queued = 0, age = 0, types = 0;
        if (cell_ll(res, r, 1, &claimable) || cell_ll(res, r, 2, &queued) ||
            cell_ll(res, r, 3, &age) || cell_ll(res, r, 4, &types))
            goto out;
        snap->queued_claimable += claimable;
        if (PQgetisnull(res, r, 0)) { /* the other unserved run types, summed */
            snap->unserved_other_types = types;
            snap->unserved_other_queued = queued;
            continue;
        }
        if (snap->n_run_types >= SNAP_RUN_TYPES_MAX) { /* cannot happen: bounded by the query */
            snap->run_types_truncated = true;
            continue;
        }
        SnapRunType *t = &snap->run_types[snap->n_run_types++];
        memset(t, 0, sizeof *t);
        cell_str(res, r, 0, t->name, sizeof t->name);
        t->claimable = claimable;
        t->queued = queued;
        t->oldest_queued_age_sec = age;
    }
    if (snap->run_types_truncated)
        log_warn("snapshot.run_types_truncated",
                 "limit=%d msg=\"more run types with Queued tasks than the snapshot holds\"",
                 SNAP_RUN_TYPES_MAX);
    st = STATUS_OK;
out:
    PQclear(res);
    return st;
}

static Status load_pools(PGconn *conn, const Config *cfg, Snapshot *snap)
{
    char window[16], limit[16];
    snprintf(window, sizeof window, "%d", cfg->failure_window_minutes);
    snprintf(limit, sizeof limit, "%d", 2 * SNAP_POOLS_MAX + SNAP_GPU_PRICES_MAX);
    const char *p[] = {window, limit};
    PGresult *res =
        db_exec_params(conn, "snapshot_pools", SQL_SNAPSHOT_POOLS, 2, p, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    Status st = STATUS_ERR_DB;
    snap->n_pool_endings = 0;
    snap->n_pool_claims = 0;
    snap->n_prices = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        const char *kind = PQgetvalue(res, r, 0);
        if (strcmp(kind, "ended") == 0 && snap->n_pool_endings < SNAP_POOLS_MAX) {
            SnapPoolEndings *e = &snap->pool_endings[snap->n_pool_endings];
            cell_str(res, r, 1, e->pool, sizeof e->pool);
            if (cell_ll(res, r, 2, &e->ended) || cell_ll(res, r, 3, &e->unexpected))
                goto out;
            snap->n_pool_endings++;
        } else if (strcmp(kind, "claims") == 0 && snap->n_pool_claims < SNAP_POOLS_MAX) {
            SnapPoolClaims *c = &snap->pool_claims[snap->n_pool_claims++];
            cell_str(res, r, 1, c->pool, sizeof c->pool);
            cell_str(res, r, 4, c->run_types, sizeof c->run_types);
        } else if (strcmp(kind, "price") == 0 && snap->n_prices < SNAP_GPU_PRICES_MAX) {
            SnapGpuPrice *g = &snap->prices[snap->n_prices];
            cell_str(res, r, 1, g->gpu_type, sizeof g->gpu_type);
            cell_str(res, r, 4, g->cloud_type, sizeof g->cloud_type);
            if (cell_double(res, r, 2, &g->usd_per_hr))
                goto out;
            snap->n_prices++;
        }
    }
    st = STATUS_OK;
out:
    PQclear(res);
    return st;
}

/* A JSON array of the pools' names, or of the run types they serve. */
static char *names_json(const Config *cfg, bool run_types)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t p = 0; arr && p < cfg->n_pools; p++) {
        if (!run_types)
            cJSON_AddItemToArray(arr, cJSON_CreateString(cfg->pools[p].name));
        for (size_t r = 0; run_types && r < cfg->pools[p].run_types.count; r++)
            cJSON_AddItemToArray(arr, cJSON_CreateString(cfg->pools[p].run_types.items[r]));
    }
    char *s = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    return s;
}

static Status load_measures(PGconn *conn, const Config *cfg, Snapshot *snap)
{
    SnapMeasures *m = &snap->measures;
    memset(m, 0, sizeof *m);
    if (!cfg->adaptive_warm_pool && !cfg->predictive_scale_up && !cfg->adaptive_idle_grace)
        return STATUS_OK; /* no adaptive policy: no statement, no measures */
    char *rts = names_json(cfg, true), *pools = names_json(cfg, false);
    char rate[16], warm[16], demote[16];
    snprintf(rate, sizeof rate, "%d", cfg->adaptive_rate_window_sec);
    snprintf(warm, sizeof warm, "%d", cfg->adaptive_warm_window_sec);
    snprintf(demote, sizeof demote, "%d", cfg->adaptive_warm_demote_sec);
    Status st = STATUS_ERR_NOMEM;
    PGresult *res = NULL;
    if (!rts || !pools)
        goto out;
    const char *p[] = {rts, pools, rate, warm, demote};
    st = STATUS_ERR_DB;
    res = db_exec_params(conn, "snapshot_measures", SQL_SNAPSHOT_MEASURES, 5, p, PGRES_TUPLES_OK);
    if (!res)
        goto out;
    for (int r = 0; r < PQntuples(res); r++) {
        bool run_type = strcmp(PQgetvalue(res, r, 0), "run_type") == 0;
        if (run_type && m->n_arrivals < SNAP_RUN_TYPES_MAX) {
            SnapArrivals *a = &m->arrivals[m->n_arrivals];
            cell_str(res, r, 1, a->name, sizeof a->name);
            if (cell_ll(res, r, 2, &a->arrivals_rate) || cell_ll(res, r, 3, &a->warm_peak) ||
                cell_ll(res, r, 4, &a->last_arrival_age_sec) ||
                cell_double(res, r, 5, &a->median_duration_sec))
                goto out;
            m->n_arrivals++;
        } else if (!run_type && m->n_boots < SNAP_POOLS_MAX) {
            SnapPoolBoot *b = &m->boots[m->n_boots];
            cell_str(res, r, 1, b->pool, sizeof b->pool);
            if (cell_ll(res, r, 2, &b->boots) || cell_double(res, r, 5, &b->median_boot_sec))
                goto out;
            m->n_boots++;
        }
    }
    m->measured = true;
    st = STATUS_OK;
out:
    PQclear(res);
    free(rts);
    free(pools);
    return st;
}

Status db_load_snapshot(PGconn *conn, const Config *cfg, Snapshot *out)
{
    /* One consistent view: every count and row from the same MVCC snapshot and now(). */
    Snapshot *snap = calloc(1, sizeof *snap);
    if (!snap)
        return STATUS_ERR_NOMEM;
    Status st = db_exec_command(conn, "snapshot_begin",
                                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, NULL);
    if (st != STATUS_OK)
        goto out;
    /* No JIT for the snapshot: the planner charges the claimable count a dependency probe per
     * queued row, so from ~1,200 queued tasks its cost passes jit_above_cost (100,000), from
     * ~6,000 the inline/optimize thresholds, and compiling then takes ~270 ms for a ~10 ms
     * query (structure_docs/performance.md). SET LOCAL: this transaction only, so it is also
     * right behind a transaction-pooling PgBouncer. */
    st = db_exec_command(conn, "snapshot_no_jit", "SET LOCAL jit = off", 0, NULL, NULL);
    if (st == STATUS_OK)
        st = load_summary(conn, cfg, snap);
    if (st == STATUS_OK)
        st = load_demand(conn, cfg, snap);
    if (st == STATUS_OK)
        st = load_pools(conn, cfg, snap);
    if (st == STATUS_OK)
        st = load_workers(conn, cfg, snap);
    if (st == STATUS_OK)
        st = load_tasks(conn, cfg, snap);
    if (st == STATUS_OK)
        st = load_backoffs(conn, snap);
    if (st == STATUS_OK)
        st = db_load_runpod(conn, cfg, snap); /* catalog cache and rate limit (db_runpod.c) */
    if (st == STATUS_OK)
        st = db_load_lifecycle(conn, snap); /* issue 16: stopped pods, restarts, billing */
    if (st == STATUS_OK)
        st = load_measures(conn, cfg, snap); /* issue 15: only when an adaptive policy is on */
    Status end = db_exec_command(conn, "snapshot_end", st == STATUS_OK ? "COMMIT" : "ROLLBACK", 0,
                                 NULL, NULL);
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
