/* db_explain.c -- the reads of `orchestrator explain` beyond the snapshot (see db_explain.h).
 *
 * Shell module. Read-only: never writes a row, never keeps a pointer into a PGresult. Every
 * number is computed by PostgreSQL as float8 (ages on the database clock), so a cell that does
 * not parse is a bug of this file, reported as a database error naming the column.
 */
#include "db_explain.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_exec.h"
#include "log.h"

/* The claim's predicate (func_claim_next_task, 0008_pools.sql) for a row aliased x. */
#define CLAIMABLE(x)                                                                               \
    " (" x ".status = 'Queued' AND " x ".available_at <= now() AND (" x ".dependant_on IS NULL"    \
    " OR NOT EXISTS (SELECT 1 FROM unnest(" x ".dependant_on) AS d(id)"                            \
    " LEFT JOIN tasks p ON p.id = d.id WHERE p.status IS DISTINCT FROM 'Complete')))"

/* $1 the task id; $2 a JSON object {run type: [the run types of the pool serving it]}: a worker
 * of that pool claims any of them, oldest first, so they share one queue. The position counts
 * with idx_tasks_claim (run_type, created_at, id) WHERE Queued. */
static const char SQL_EXPLAIN_TASK[] =
    "WITH t AS (SELECT * FROM tasks WHERE id = $1::uuid),"
    " c AS (SELECT t.id," CLAIMABLE(
        "t") " AS claimable,"
             "   CASE WHEN $2::jsonb ? t.run_type"
             "     THEN ARRAY(SELECT jsonb_array_elements_text($2::jsonb -> t.run_type))"
             "     ELSE ARRAY[t.run_type] END AS queue_types FROM t)"
             " SELECT t.id::text, t.status::text, t.task_type, t.run_type, t.attempts,"
             "  func_task_max_attempts(t.max_attempts),"
             "  extract(epoch FROM now() - t.created_at)::float8,"
             "  extract(epoch FROM t.available_at - now())::float8, c.claimable,"
             "  CASE WHEN c.claimable THEN (SELECT count(*) FROM tasks q"
             "    WHERE q.run_type = ANY (c.queue_types) AND (q.created_at, q.id) < (t.created_at, "
             "t.id)"
             "      AND" CLAIMABLE(
                 "q") ") END::float8,"
                      "  coalesce(t.worker_id, ''), coalesce(w.status::text, ''),"
                      "  extract(epoch FROM now() - t.generation_started_at)::float8,"
                      "  CASE WHEN t.status IN ('Complete', 'Failed', 'Cancelled')"
                      "    THEN extract(epoch FROM now() - coalesce(t.generation_processed_at, "
                      "t.updated_at))"
                      "    END::float8,"
                      "  coalesce(t.output_location, ''), coalesce(t.error_message, ''),"
                      "  (SELECT coalesce(jsonb_agg(jsonb_build_array(d.id::text, p.status::text) "
                      "ORDER BY d.n),"
                      "     '[]'::jsonb) FROM unnest(t.dependant_on) WITH ORDINALITY AS d(id, n)"
                      "     LEFT JOIN tasks p ON p.id = d.id)::text"
                      " FROM t JOIN c ON c.id = t.id LEFT JOIN workers w ON w.id = t.worker_id";

/* The most recent promotions of each pool (idx_workers_promoted, 0012), each boot timed from
 * the pod's last (re)start: orchestrator_restart_worker (0011) keeps created_at, so a restarted
 * pod's promoted_at - created_at would include its whole stopped time. */
static const char SQL_BOOT_TIMES[] =
    "SELECT p.name, s.n, s.median, s.p90 FROM worker_pools p CROSS JOIN LATERAL ("
    "  SELECT count(*)::float8 AS n,"
    "   (percentile_cont(0.5) WITHIN GROUP (ORDER BY x.boot))::float8 AS median,"
    "   (percentile_cont(0.9) WITHIN GROUP (ORDER BY x.boot))::float8 AS p90"
    "  FROM (SELECT extract(epoch FROM w.promoted_at - coalesce(w.restarted_at, w.created_at))"
    "    AS boot FROM workers w"
    "    WHERE w.pool = p.name AND w.promoted_at IS NOT NULL AND isfinite(w.promoted_at)"
    "    AND isfinite(coalesce(w.restarted_at, w.created_at))"
    "    AND w.promoted_at >= coalesce(w.restarted_at, w.created_at)"
    "    ORDER BY w.promoted_at DESC LIMIT $1::int) x) s"
    " WHERE s.n > 0 ORDER BY p.name LIMIT $2::int";

/* A float8 cell as long long (NULL -> when_null); false when it does not parse. */
static bool num(const PGresult *res, int col, long long when_null, long long *out)
{
    if (PQgetisnull(res, 0, col)) {
        *out = when_null;
        return true;
    }
    const char *s = PQgetvalue(res, 0, col);
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || isnan(v)) {
        log_error("db.bad_value", "query=explain_task column=%d value=%s", col, s);
        return false;
    }
    *out = (long long)fmax(-1e15, fmin(v, 1e15)); /* +-Infinity: a defined cast */
    return true;
}

static void text(const PGresult *res, int col, char *out, size_t cap)
{
    snprintf(out, cap, "%s", PQgetisnull(res, 0, col) ? "" : PQgetvalue(res, 0, col));
}

/* {run type: [its pool's run types]} for every configured pool. NULL when out of memory. */
static char *queue_types_json(const Config *cfg)
{
    cJSON *o = cJSON_CreateObject();
    for (size_t p = 0; o && p < cfg->n_pools; p++) {
        const ConfigList *rt = &cfg->pools[p].run_types;
        for (size_t r = 0; r < rt->count; r++) {
            cJSON *arr = cJSON_AddArrayToObject(o, rt->items[r]);
            for (size_t k = 0; arr && k < rt->count; k++)
                cJSON_AddItemToArray(arr, cJSON_CreateString(rt->items[k]));
        }
    }
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return s;
}

/* The dependencies, from [[id, status or null], ...]. */
static void parse_deps(const char *json, ExplainTask *t)
{
    cJSON *arr = cJSON_Parse(json);
    t->n_deps = 0;
    for (const cJSON *e = arr ? arr->child : NULL; e; e = e->next) {
        if (t->n_deps >= EXPLAIN_DEPS_MAX) {
            t->deps_truncated = true;
            break;
        }
        const cJSON *id = cJSON_GetArrayItem(e, 0), *st = cJSON_GetArrayItem(e, 1);
        ExplainDep *d = &t->deps[t->n_deps++];
        snprintf(d->id, sizeof d->id, "%s", cJSON_IsString(id) ? id->valuestring : "?");
        snprintf(d->status, sizeof d->status, "%s", cJSON_IsString(st) ? st->valuestring : "");
    }
    cJSON_Delete(arr);
}

static Status read_task(PGconn *conn, const Config *cfg, const char *id, ExplainTask *out)
{
    char *types = queue_types_json(cfg);
    if (!types)
        return STATUS_ERR_NOMEM;
    const char *p[] = {id, types};
    PGresult *res = db_exec_params(conn, "explain_task", SQL_EXPLAIN_TASK, 2, p, PGRES_TUPLES_OK);
    free(types);
    if (!res)
        return STATUS_ERR_DB;
    ExplainTask *t = calloc(1, sizeof *t);
    Status st = t ? STATUS_ERR_DB : STATUS_ERR_NOMEM;
    if (!t)
        goto out;
    if (PQntuples(res) != 1) {
        st = STATUS_ERR_NOT_FOUND;
        goto out;
    }
    long long attempts, max_attempts;
    text(res, 0, t->id, sizeof t->id);
    text(res, 1, t->status, sizeof t->status);
    text(res, 2, t->task_type, sizeof t->task_type);
    text(res, 3, t->run_type, sizeof t->run_type);
    t->claimable = strcmp(PQgetvalue(res, 0, 8), "t") == 0;
    text(res, 10, t->worker_id, sizeof t->worker_id);
    text(res, 11, t->worker_status, sizeof t->worker_status);
    text(res, 14, t->output_location, sizeof t->output_location);
    text(res, 15, t->error_message, sizeof t->error_message);
    if (!num(res, 4, 0, &attempts) || !num(res, 5, 0, &max_attempts) ||
        !num(res, 6, -1, &t->created_age_sec) || !num(res, 7, 0, &t->available_in_sec) ||
        !num(res, 9, -1, &t->ahead) || !num(res, 12, -1, &t->running_sec) ||
        !num(res, 13, -1, &t->finished_age_sec))
        goto out;
    t->attempts = (int)(attempts > 1000000 ? 1000000 : attempts);
    t->max_attempts = (int)(max_attempts > 1000000 ? 1000000 : max_attempts);
    parse_deps(PQgetvalue(res, 0, 16), t);
    *out = *t;
    st = STATUS_OK;
out:
    free(t);
    PQclear(res);
    return st;
}

static Status read_boot_times(PGconn *conn, ExplainBootTimes *out)
{
    char samples[16], limit[16];
    snprintf(samples, sizeof samples, "%d", DB_BOOT_SAMPLES);
    snprintf(limit, sizeof limit, "%d", SNAP_POOLS_MAX);
    const char *p[] = {samples, limit};
    PGresult *res = db_exec_params(conn, "boot_times", SQL_BOOT_TIMES, 2, p, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    ExplainBootTimes bt = {0};
    for (int r = 0; r < PQntuples(res) && bt.n < SNAP_POOLS_MAX; r++) {
        ExplainBoot *b = &bt.pools[bt.n++];
        snprintf(b->pool, sizeof b->pool, "%s", PQgetvalue(res, r, 0));
        b->samples = strtoll(PQgetvalue(res, r, 1), NULL, 10);
        b->median_sec = strtod(PQgetvalue(res, r, 2), NULL);
        b->p90_sec = strtod(PQgetvalue(res, r, 3), NULL);
    }
    PQclear(res);
    *out = bt;
    return STATUS_OK;
}

Status db_explain_read(PGconn *conn, const Config *cfg, const char *task_id, ExplainTask *task,
                       ExplainBootTimes *boot)
{
    Status st = db_exec_command(conn, "explain_begin",
                                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, NULL);
    if (st == STATUS_OK && task_id)
        st = read_task(conn, cfg, task_id, task);
    if (st == STATUS_OK)
        st = read_boot_times(conn, boot);
    Status end = db_exec_command(conn, "explain_end", st == STATUS_OK ? "COMMIT" : "ROLLBACK", 0,
                                 NULL, NULL);
    return st == STATUS_OK ? end : st;
}
