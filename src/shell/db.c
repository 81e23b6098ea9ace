/* db.c -- libpq access: connection, guarded writes, controller state, journal (see db.h; the
 * snapshot is db_snapshot.c, the operator commands' statements db_ops.c, the cycle lease
 * lease.c).
 *
 * Shell module. Never builds SQL from values: every value travels as a parameter. Never keeps
 * pointers into a PGresult: values are copied out before PQclear.
 */
#include "db.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_exec.h"
#include "log.h"

static long long g_statements;

long long db_statement_count(void)
{
    return g_statements;
}

PGresult *db_exec_params(PGconn *conn, const char *name, const char *sql, int n,
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

Status db_exec_command(PGconn *conn, const char *name, const char *sql, int n,
                       const char *const *params, int *rows)
{
    PGresult *res = db_exec_params(conn, name, sql, n, params, PGRES_COMMAND_OK);
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

/* ------------------------------------------------------------------------------------------ */
/* Guarded writes                                                                              */

Status db_promote_worker(PGconn *conn, const char *id, bool *applied)
{
    const char *p[] = {id};
    int rows = 0;
    Status st =
        db_exec_command(conn, "promote_worker",
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
    Status st = db_exec_command(
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
    /* One statement: orchestrator_drain_worker (0007_hardening.sql) locks the worker row, as
     * func_claim_next_task does before claiming, and proves it holds no task. */
    const char *p[] = {id, reason};
    PGresult *res = db_exec_params(conn, "drain_worker", "SELECT orchestrator_drain_worker($1, $2)",
                                   2, p, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    *applied = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return STATUS_OK;
}

Status db_force_drain_worker(PGconn *conn, const char *id, WorkerState from, const char *reason,
                             bool *applied)
{
    const char *p[] = {id, worker_state_str(from), reason};
    PGresult *res = db_exec_params(conn, "force_drain_worker",
                                   "SELECT orchestrator_mark_terminating($1, $2::worker_status,"
                                   " $3, false)",
                                   3, p, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    *applied = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return STATUS_OK;
}

Status db_mark_terminated(PGconn *conn, const char *id, WorkerState from, const char *reason,
                          bool *applied)
{
    const char *p[] = {id, worker_state_str(from), reason};
    int rows = 0;
    Status st = db_exec_command(
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

/* The last price RunPod charged for a pod of gpu_type in cloud_type (the spend cap's bound on
 * new pods). Nothing is recorded without a cloud: a price is only ever used for its own cloud. */
static Status record_price(PGconn *conn, const char *gpu_type, const char *cloud_type,
                           double cost_per_hr)
{
    if (!gpu_type || !gpu_type[0] || !(cost_per_hr > 0) || !cloud_type ||
        (strcmp(cloud_type, "SECURE") != 0 && strcmp(cloud_type, "COMMUNITY") != 0))
        return STATUS_OK;
    char cost[32];
    snprintf(cost, sizeof cost, "%.6f", cost_per_hr);
    const char *p[] = {gpu_type, cost, cloud_type};
    /* Best effort: the pod is recorded either way; a type without a price only makes the spend
     * cap more careful (one pod at a time until a price is known). Failures are logged. */
    db_exec_command(conn, "record_price",
                    "INSERT INTO gpu_prices (gpu_type, cost_per_hr, cloud_type)"
                    " VALUES ($1, $2::numeric, $3)"
                    " ON CONFLICT (gpu_type, cloud_type) DO UPDATE"
                    " SET cost_per_hr = EXCLUDED.cost_per_hr, seen_at = now()",
                    3, p, NULL);
    return STATUS_OK;
}

Status db_record_pod(PGconn *conn, const char *id, const char *pod_id, const char *gpu_type,
                     const char *cloud_type, double cost_per_hr, bool *applied)
{
    char cost[32];
    snprintf(cost, sizeof cost, "%.6f", cost_per_hr);
    const char *p[] = {id, pod_id, gpu_type && gpu_type[0] ? gpu_type : NULL,
                       cost_per_hr > 0 ? cost : NULL};
    int rows = 0;
    Status st = db_exec_command(
        conn, "record_pod",
        "UPDATE workers SET runpod_id = $2, gpu_type = coalesce($3::text, gpu_type),"
        " cost_per_hr = coalesce($4::numeric, cost_per_hr),"
        " metadata = metadata || jsonb_build_object('runpod_id', $2::text,"
        "   'pod_recorded_at', now())"
        "   || CASE WHEN $4::numeric IS NULL THEN '{}'::jsonb"
        "      ELSE jsonb_build_object('cost_per_hr', $4::numeric) END"
        " WHERE id = $1 AND status = 'spawning' AND runpod_id IS NULL",
        4, p, &rows);
    if (st == STATUS_OK && rows == 1)
        st = record_price(conn, gpu_type, cloud_type, cost_per_hr);
    if (st == STATUS_OK)
        *applied = rows == 1;
    return st;
}

Status db_adopt_pod(PGconn *conn, const char *id, const char *pod_id, const char *gpu_type,
                    const char *cloud_type, double cost_per_hr, bool *applied)
{
    char cost[32];
    snprintf(cost, sizeof cost, "%.6f", cost_per_hr);
    const char *p[] = {id, pod_id, gpu_type && gpu_type[0] ? gpu_type : NULL,
                       cost_per_hr > 0 ? cost : NULL};
    int rows = 0;
    Status st = db_exec_command(
        conn, "adopt_pod",
        "UPDATE workers SET runpod_id = $2, gpu_type = coalesce($3::text, gpu_type),"
        " cost_per_hr = coalesce($4::numeric, cost_per_hr),"
        " metadata = metadata || jsonb_build_object('runpod_id', $2::text, 'adopted', true,"
        "   'pod_recorded_at', now())"
        "   || CASE WHEN $4::numeric IS NULL THEN '{}'::jsonb"
        "      ELSE jsonb_build_object('cost_per_hr', $4::numeric) END"
        " WHERE id = $1 AND runpod_id IS NULL AND status <> 'terminated'",
        4, p, &rows);
    if (st == STATUS_OK && rows == 1)
        st = record_price(conn, gpu_type, cloud_type, cost_per_hr);
    if (st == STATUS_OK)
        *applied = rows == 1;
    return st;
}

Status db_insert_spawning_worker(PGconn *conn, const char *id, const char *gpu_type,
                                 const char *pool, const char *lease_holder,
                                 const char *lease_fence)
{
    const char *p[] = {id, gpu_type, pool, lease_holder, lease_fence};
    int rows = 0;
    /* The row is written only while the cycle lease is still ours (in the same statement): a
     * process paused after its last fence check inserts nothing once another took over. */
    Status st = db_exec_command(
        conn, "insert_worker",
        "INSERT INTO workers (id, instance_type, gpu_type, status, pool, metadata)"
        " SELECT $1, $2, $2, 'spawning', $3,"
        "  jsonb_build_object('orchestrator_status', 'spawning', 'pool', $3::text)"
        " WHERE $4::text IS NULL OR EXISTS (SELECT 1 FROM orchestrator_lease"
        "  WHERE name = 'cycle' AND holder = $4 AND fence = $5::bigint AND expires_at > now())",
        5, p, &rows);
    if (st == STATUS_OK && rows != 1)
        return STATUS_ERR_LEASE_LOST;
    return st;
}

Status db_sync_pools(PGconn *conn, const Config *cfg, const Snapshot *snap, bool *changed)
{
    /* What the configuration says, as {pool: [run types]}, and whether the table says so. */
    cJSON *want = cJSON_CreateObject();
    if (!want)
        return STATUS_ERR_NOMEM;
    bool same = true;
    for (size_t i = 0; i < cfg->n_pools; i++) {
        const PoolConfig *pc = &cfg->pools[i];
        cJSON *arr = cJSON_AddArrayToObject(want, pc->name);
        char csv[1024] = "";
        size_t len = 0;
        for (size_t r = 0; arr && r < pc->run_types.count; r++) {
            cJSON_AddItemToArray(arr, cJSON_CreateString(pc->run_types.items[r]));
            int w =
                snprintf(csv + len, sizeof csv - len, "%s%s", r ? "," : "", pc->run_types.items[r]);
            if (w > 0 && (size_t)w < sizeof csv - len)
                len += (size_t)w;
        }
        bool found = false;
        for (size_t k = 0; k < snap->n_pool_claims && !found; k++)
            if (strcmp(snap->pool_claims[k].pool, pc->name) == 0) {
                found = true;
                same = same && strcmp(snap->pool_claims[k].run_types, csv) == 0;
            }
        same = same && found;
    }
    for (size_t k = 0; k < snap->n_pool_claims; k++) /* a pool no longer configured */
        if (!config_pool_named(cfg, snap->pool_claims[k].pool) && snap->pool_claims[k].run_types[0])
            same = false;
    *changed = false;
    if (same) {
        cJSON_Delete(want);
        return STATUS_OK;
    }
    char *text = cJSON_PrintUnformatted(want);
    cJSON_Delete(want);
    if (!text)
        return STATUS_ERR_NOMEM;
    const char *p[] = {text};
    PGresult *res = db_exec_params(conn, "sync_pools", "SELECT orchestrator_sync_pools($1::jsonb)",
                                   1, p, PGRES_TUPLES_OK);
    free(text);
    if (!res)
        return STATUS_ERR_DB;
    *changed = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "0") != 0;
    PQclear(res);
    return STATUS_OK;
}

Status db_recover_task(PGconn *conn, const char *task_id, const char *worker_id,
                       int max_task_attempts, const char *reason, bool *applied,
                       char new_status[16])
{
    char maxa[16];
    snprintf(maxa, sizeof maxa, "%d", max_task_attempts);
    const char *p[] = {task_id, worker_id, reason, maxa};
    /* The attempt limit: the task's max_attempts when set, else MAX_TASK_ATTEMPTS (the rule of
     * func_task_max_attempts, which func_mark_task_failed uses with the value each cycle
     * records in orchestrator_state). */
    PGresult *res = db_exec_params(
        conn, "recover_task",
        "UPDATE tasks SET attempts = attempts + 1,"
        " status = CASE WHEN attempts + 1 >= coalesce(nullif(max_attempts, 0), $4::int)"
        "   THEN 'Failed'::task_status ELSE 'Queued'::task_status END,"
        " worker_id = CASE WHEN attempts + 1 >= coalesce(nullif(max_attempts, 0), $4::int)"
        "   THEN worker_id ELSE NULL END,"
        " generation_started_at = CASE WHEN attempts + 1 >= coalesce(nullif(max_attempts, 0), "
        "$4::int)"
        "   THEN generation_started_at ELSE NULL END,"
        " generation_processed_at = CASE WHEN attempts + 1 >= coalesce(nullif(max_attempts, 0),"
        "   $4::int) THEN now() ELSE NULL END,"
        " available_at = now(),"
        " error_message = $3"
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

Status db_recover_tasks_of(PGconn *conn, const char *worker_id, int max_task_attempts,
                           const char *reason, int *recovered)
{
    char maxa[16];
    snprintf(maxa, sizeof maxa, "%d", max_task_attempts);
    const char *p[] = {worker_id, maxa, reason};
    int rows = 0;
    Status st = db_exec_command(
        conn, "recover_tasks_of",
        "UPDATE tasks SET attempts = attempts + 1,"
        " status = CASE WHEN attempts + 1 >= coalesce(nullif(max_attempts, 0), $2::int)"
        "   THEN 'Failed'::task_status ELSE 'Queued'::task_status END,"
        " worker_id = CASE WHEN attempts + 1 >= coalesce(nullif(max_attempts, 0), $2::int)"
        "   THEN worker_id ELSE NULL END,"
        " generation_started_at = CASE WHEN attempts + 1 >= coalesce(nullif(max_attempts, 0),"
        "   $2::int) THEN generation_started_at ELSE NULL END,"
        " generation_processed_at = CASE WHEN attempts + 1 >= coalesce(nullif(max_attempts, 0),"
        "   $2::int) THEN now() ELSE NULL END,"
        " available_at = now(), error_message = $3"
        " WHERE worker_id = $1 AND status = 'In Progress'"
        "   AND EXISTS (SELECT 1 FROM workers w WHERE w.id = $1 AND w.status = 'terminated')",
        3, p, &rows);
    if (st == STATUS_OK)
        *recovered = rows;
    return st;
}

/* Marks a spawning row whose create's outcome is unknown (metadata only). */
Status db_mark_create_unknown(PGconn *conn, const char *id, const char *detail)
{
    const char *p[] = {id, detail};
    return db_exec_command(
        conn, "mark_create_unknown",
        "UPDATE workers SET metadata = metadata || jsonb_build_object("
        "  'create_outcome_unknown', true, 'create_unknown_at', now(), 'create_unknown_detail',"
        "  $2::text)"
        " WHERE id = $1 AND status = 'spawning' AND runpod_id IS NULL",
        2, p, NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* State, backoff, journal                                                                     */

Status db_save_state(PGconn *conn, long long cycle_number, const CycleStateUpdate *u)
{
    char cycle[32], maxa[16];
    snprintf(cycle, sizeof cycle, "%lld", cycle_number);
    snprintf(maxa, sizeof maxa, "%d", u->max_task_attempts > 0 ? u->max_task_attempts : 3);
    const char *p[] = {cycle,
                       u->success ? "t" : "f",
                       u->reconciled ? "t" : "f",
                       u->scaled_up ? "t" : "f",
                       u->scaled_down ? "t" : "f",
                       u->breaker_open ? "t" : "f",
                       u->breaker_reason,
                       maxa};
    return db_exec_command(
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
        " breaker_reason = $7::text,"
        " max_task_attempts = $8::int"
        " WHERE id = 1",
        8, p, NULL);
}

Status db_record_capacity_failure(PGconn *conn, const char *gpu_type, int base_sec, int max_sec,
                                  const char *detail)
{
    char base[16], max[16];
    snprintf(base, sizeof base, "%d", base_sec);
    snprintf(max, sizeof max, "%d", max_sec);
    const char *p[] = {gpu_type, base, max, detail};
    return db_exec_command(
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
    return db_exec_command(conn, "capacity_clear",
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
    return db_exec_command(
        conn, "insert_journal",
        "INSERT INTO orchestrator_cycles (cycle_number, instance_id, command, version,"
        " config_hash, safe_mode, dry_run, started_at, finished_at, duration_ms, snapshot, plan,"
        " outcomes, errors, exit_status, exit_code)"
        " VALUES ($1::bigint, $2, $3, $4, $5, $6::bool, $7::bool,"
        "  now() - make_interval(secs => $8::float8 / 1000), now(), $8::int,"
        "  $9::jsonb, $10::jsonb, $11::jsonb, $12::jsonb, $13, $14::int)",
        14, p, NULL);
}
