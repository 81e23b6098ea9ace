/* db_lifecycle.c -- stopped and restarted workers, failed workers' log tails, the last billing
 * read (see db_lifecycle.h; sql/migrations/0011_runpod_lifecycle.sql).
 *
 * Shell module. Never builds SQL from values; never keeps pointers into a PGresult.
 */
#include "db_lifecycle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_exec.h"
#include "log.h"

/* Per live worker that is stopped, was restarted or was billed: stopped age, restart age,
 * heartbeat after the restart, billed amount (while the read is fresh); then one row for the
 * billing read: attempt age, read age, fresh, total, and what was billed for pods no worker row
 * (live or ended) records. */
static const char SQL_LIFECYCLE[] =
    "WITH b AS (SELECT r.*, (r.bucket_end IS NOT NULL"
    "   AND r.bucket_end > now() - make_interval(secs => $1::float8)) AS fresh"
    "   FROM runpod_billing r WHERE r.id = 1)"
    " SELECT 'worker' AS kind, w.id,"
    "  CASE WHEN w.status = 'stopped'"
    "    THEN extract(epoch FROM now() - coalesce(w.stopped_at, w.updated_at)) END::float8,"
    "  extract(epoch FROM now() - w.restarted_at)::float8,"
    "  coalesce(w.last_heartbeat > w.restarted_at, false),"
    "  (SELECT bp.usd FROM runpod_billing_pods bp, b WHERE b.fresh AND bp.pod_id = w.runpod_id)"
    "    ::float8,"
    "  NULL::float8"
    " FROM workers w"
    " WHERE w.status <> 'terminated' AND (w.status = 'stopped' OR w.restarted_at IS NOT NULL"
    "   OR EXISTS (SELECT 1 FROM runpod_billing_pods bp WHERE bp.pod_id = w.runpod_id))"
    " UNION ALL"
    " SELECT 'billing', NULL, extract(epoch FROM now() - b.attempted_at)::float8,"
    "  extract(epoch FROM now() - b.read_at)::float8, b.fresh,"
    "  CASE WHEN b.fresh THEN b.total_usd END::float8,"
    "  CASE WHEN b.fresh THEN (SELECT coalesce(sum(bp.usd), 0) FROM runpod_billing_pods bp"
    "    WHERE NOT EXISTS (SELECT 1 FROM workers w WHERE w.runpod_id = bp.pod_id)) END::float8"
    " FROM b"
    " LIMIT $2::int";

static SnapWorker *worker_named(Snapshot *snap, const char *id)
{
    for (size_t i = 0; i < snap->n_workers; i++)
        if (strcmp(snap->workers[i].id, id) == 0)
            return &snap->workers[i];
    return NULL;
}

static bool cell_true(const PGresult *res, int row, int col)
{
    return !PQgetisnull(res, row, col) && strcmp(PQgetvalue(res, row, col), "t") == 0;
}

/* One worker row of SQL_LIFECYCLE into its SnapWorker. Returns -1 on a malformed cell. */
static int load_worker_row(const PGresult *res, int r, Snapshot *snap)
{
    SnapWorker *w = worker_named(snap, PQgetvalue(res, r, 1));
    if (!w)
        return 0; /* beyond the snapshot's bound: not acted on anyway */
    long long stopped, restart;
    double billed;
    if (db_cell_ll(res, r, 2, &stopped) || db_cell_ll(res, r, 3, &restart) ||
        db_cell_double(res, r, 5, &billed))
        return -1;
    w->stopped_age_sec = stopped > 0 ? stopped : 0;
    w->restarted = !PQgetisnull(res, r, 3);
    w->restart_age_sec = w->restarted ? restart : 0;
    if (w->restarted) /* this life began at the start: only a heartbeat after it promotes */
        w->heartbeat_after_create = cell_true(res, r, 4);
    w->billed_usd_per_hr = billed > 0 ? billed : 0;
    return 0;
}

Status db_load_lifecycle(PGconn *conn, Snapshot *snap)
{
    char age[16], limit[16];
    snprintf(age, sizeof age, "%d", DB_BILLING_MAX_AGE_SEC);
    snprintf(limit, sizeof limit, "%d", SNAP_WORKERS_MAX + 2);
    const char *p[] = {age, limit};
    PGresult *res =
        db_exec_params(conn, "snapshot_lifecycle", SQL_LIFECYCLE, 2, p, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    Status st = STATUS_ERR_DB;
    for (int r = 0; r < PQntuples(res); r++) {
        if (strcmp(PQgetvalue(res, r, 0), "worker") == 0) {
            if (load_worker_row(res, r, snap) != 0)
                goto out;
            continue;
        }
        long long attempt, read;
        double total, unexplained;
        if (db_cell_ll(res, r, 2, &attempt) || db_cell_ll(res, r, 3, &read) ||
            db_cell_double(res, r, 5, &total) || db_cell_double(res, r, 6, &unexplained))
            goto out;
        snap->billing_attempted = !PQgetisnull(res, r, 2);
        snap->billing_attempt_age_sec = snap->billing_attempted ? attempt : 0;
        snap->billing_read_age_sec = read;
        snap->billing_known = cell_true(res, r, 4);
        snap->billing_total_usd_per_hr = snap->billing_known && total > 0 ? total : 0;
        snap->billing_unexplained_usd_per_hr =
            snap->billing_known && unexplained > 0 ? unexplained : 0;
    }
    st = STATUS_OK;
out:
    PQclear(res);
    return st;
}

/* Runs SELECT fn($1) for a function returning boolean. */
static Status call_bool(PGconn *conn, const char *name, const char *sql, const char *id,
                        bool *applied)
{
    const char *p[] = {id};
    PGresult *res = db_exec_params(conn, name, sql, 1, p, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    *applied = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return STATUS_OK;
}

Status db_stop_worker(PGconn *conn, const char *id, bool *applied)
{
    return call_bool(conn, "stop_worker", "SELECT orchestrator_stop_worker($1)", id, applied);
}

Status db_restart_worker(PGconn *conn, const char *id, const char *lease_holder,
                         const char *lease_fence, bool *applied)
{
    const char *p[] = {id, lease_holder, lease_fence};
    PGresult *res = db_exec_params(
        conn, "restart_worker",
        "SELECT orchestrator_restart_worker($1) FROM (SELECT 1) AS one"
        " WHERE $2::text IS NULL OR EXISTS (SELECT 1 FROM orchestrator_lease"
        "  WHERE name = 'cycle' AND holder = $2 AND fence = $3::bigint AND expires_at > now())",
        3, p, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    Status st = PQntuples(res) == 1 ? STATUS_OK : STATUS_ERR_LEASE_LOST;
    *applied = st == STATUS_OK && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return st;
}

Status db_store_log_tail(PGconn *conn, const LogTailRecord *rec)
{
    char ms[32], bytes[32];
    snprintf(ms, sizeof ms, "%lld", rec->fetch_ms);
    snprintf(bytes, sizeof bytes, "%lld", rec->bytes);
    const char *p[] = {rec->worker_id,
                       rec->pod_id,
                       rec->reason,
                       rec->outcome,
                       rec->error,
                       ms,
                       bytes,
                       rec->truncated ? "t" : "f",
                       rec->tail ? rec->tail : ""};
    return db_exec_command(
        conn, "store_log_tail",
        "INSERT INTO worker_failure_logs AS l (worker_id, pod_id, reason, outcome, error,"
        " fetch_ms, bytes, truncated, tail)"
        " SELECT $1, $2, coalesce(nullif($3, ''),"
        "   (SELECT w.metadata ->> 'error_reason' FROM workers w WHERE w.id = $1)),"
        "  $4, nullif($5, ''), $6::int, $7::int, $8::bool, $9"
        " WHERE EXISTS (SELECT 1 FROM workers w WHERE w.id = $1)"
        " ON CONFLICT (worker_id) DO UPDATE SET pod_id = EXCLUDED.pod_id,"
        "  reason = EXCLUDED.reason, outcome = EXCLUDED.outcome, error = EXCLUDED.error,"
        "  fetch_ms = EXCLUDED.fetch_ms, bytes = EXCLUDED.bytes,"
        "  truncated = EXCLUDED.truncated, tail = EXCLUDED.tail, fetched_at = now()",
        9, p, NULL);
}

Status db_store_billing(PGconn *conn, const BillingHour *h)
{
    cJSON *pods = cJSON_CreateArray();
    if (!pods)
        return STATUS_ERR_NOMEM;
    for (size_t i = 0; h->have_bucket && i < h->n_pods; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        cJSON_AddStringToObject(o, "pod_id", h->pods[i].pod_id);
        cJSON_AddNumberToObject(o, "usd", h->pods[i].usd);
        cJSON_AddItemToArray(pods, o);
    }
    char *json = cJSON_PrintUnformatted(pods);
    cJSON_Delete(pods);
    if (!json)
        return STATUS_ERR_NOMEM;
    char start[32], end[32], total[64], records[32], malformed[32];
    snprintf(start, sizeof start, "%lld", h->bucket_start);
    snprintf(end, sizeof end, "%lld", h->bucket_end);
    snprintf(total, sizeof total, "%.6f", h->total_usd);
    snprintf(records, sizeof records, "%zu", h->records);
    snprintf(malformed, sizeof malformed, "%zu", h->malformed);
    /* A read with malformed records cannot say what they meant: it only raises figures (each
     * pod's amount and the total are the larger of the last read's and this one's, and no pod
     * of the last read is forgotten), so a broken answer never loosens the spend cap. */
    const char *merge = h->malformed > 0 ? "t" : "f";
    const char *p[] = {json, h->have_bucket ? "t" : "f", start, end, total, records, malformed,
                       merge};
    /* One statement: the pods of this read replace the last read's (upsert the new, delete the
     * rest -- disjoint rows, so the two never meet), and the read is recorded. A clean read
     * without a complete hour keeps no pod. */
    Status st = db_exec_command(
        conn, "store_billing",
        "WITH n AS (SELECT x.pod_id, x.usd FROM jsonb_to_recordset($1::jsonb)"
        "   AS x(pod_id text, usd numeric)),"
        " up AS (INSERT INTO runpod_billing_pods AS bp (pod_id, usd, bucket_start, bucket_end)"
        "   SELECT n.pod_id, n.usd, to_timestamp($3::float8), to_timestamp($4::float8) FROM n"
        "   ON CONFLICT (pod_id) DO UPDATE SET"
        "   usd = CASE WHEN $8::bool THEN greatest(bp.usd, EXCLUDED.usd) ELSE EXCLUDED.usd END,"
        "   bucket_start = EXCLUDED.bucket_start, bucket_end = EXCLUDED.bucket_end),"
        " del AS (DELETE FROM runpod_billing_pods"
        "   WHERE NOT $8::bool AND pod_id NOT IN (SELECT pod_id FROM n))"
        " UPDATE runpod_billing SET attempted_at = now(), read_at = now(),"
        "  bucket_start = CASE WHEN $2::bool THEN to_timestamp($3::float8)"
        "    WHEN $8::bool THEN bucket_start END,"
        "  bucket_end = CASE WHEN $2::bool THEN to_timestamp($4::float8)"
        "    WHEN $8::bool THEN bucket_end END,"
        "  total_usd = CASE WHEN $2::bool AND $8::bool"
        "    THEN greatest(coalesce(total_usd, 0), $5::numeric)"
        "    WHEN $2::bool THEN $5::numeric WHEN $8::bool THEN total_usd END,"
        "  records = $6::int, malformed = $7::int, last_error = NULL"
        " WHERE id = 1",
        8, p, NULL);
    free(json);
    return st;
}

Status db_billing_failed(PGconn *conn, const char *error)
{
    const char *p[] = {error};
    return db_exec_command(conn, "billing_failed",
                           "UPDATE runpod_billing SET attempted_at = now(), last_error = $1"
                           " WHERE id = 1",
                           1, p, NULL);
}

/* Rows of a query as one JSON object (the first row), or NULL when it has none. */
static Status first_row_json(PGconn *conn, const char *name, const char *sql, int n,
                             const char *const *p, cJSON **out)
{
    *out = NULL;
    PGresult *res = db_exec_params(conn, name, sql, n, p, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    Status st = STATUS_OK;
    if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0)) {
        *out = cJSON_Parse(PQgetvalue(res, 0, 0));
        if (!*out)
            st = STATUS_ERR_NOMEM;
    }
    PQclear(res);
    return st;
}

Status db_failure_log(PGconn *conn, const char *worker_id, cJSON **out)
{
    const char *p[] = {worker_id};
    return first_row_json(
        conn, "failure_log",
        "SELECT json_build_object('worker_id', l.worker_id, 'pod_id', l.pod_id,"
        " 'reason', l.reason, 'outcome', l.outcome, 'error', l.error, 'fetch_ms', l.fetch_ms,"
        " 'bytes', l.bytes, 'truncated', l.truncated,"
        " 'fetched_at', to_char(l.fetched_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
        " 'tail', l.tail)::text FROM worker_failure_logs l WHERE l.worker_id = $1",
        1, p, out);
}

Status db_last_failure(PGconn *conn, cJSON **out)
{
    return first_row_json(
        conn, "last_failure",
        "SELECT json_build_object('worker_id', w.id, 'status', w.status::text,"
        " 'reason', coalesce(w.metadata ->> 'error_reason', l.reason), 'pod_id', w.runpod_id,"
        " 'failed_at', to_char(coalesce(w.ended_at, l.fetched_at) AT TIME ZONE 'UTC',"
        "   'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),"
        " 'age_sec', floor(extract(epoch FROM now() - coalesce(w.ended_at, l.fetched_at))),"
        " 'log_outcome', l.outcome, 'log_bytes', octet_length(l.tail),"
        " 'log_last_line', (SELECT x FROM regexp_split_to_table(rtrim(l.tail, E'\\n'), E'\\n')"
        "   WITH ORDINALITY AS t(x, n) ORDER BY n DESC LIMIT 1))::text"
        " FROM workers w LEFT JOIN worker_failure_logs l ON l.worker_id = w.id"
        " WHERE w.end_kind = 'unexpected' AND w.ended_at > now() - interval '7 days'"
        " ORDER BY w.ended_at DESC, w.id LIMIT 1",
        0, NULL, out);
}
