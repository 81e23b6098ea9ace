/* task_cost.c -- cost per completed task and idle GPU cost (see task_cost.h).
 *
 * Shell module: two parameterised statements over orchestrator_task_costs(), and the JSON form
 * of a report. No logging except db_exec_params' own failure line.
 */
#include "task_cost.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_exec.h"

const double TASK_COST_BOUNDS[TASK_COST_BUCKETS] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                                    0.25,  0.5,    1,     2.5,  5,     10};

/* Columns after the caller's own leading ones: kind, pool, task_type, bucket, tasks, task_usd,
 * runtime_sec, unpriced, gpu_usd, busy_usd. */
enum {
    COL_KIND,
    COL_POOL,
    COL_TYPE,
    COL_BUCKET,
    COL_TASKS,
    COL_TASK_USD,
    COL_RUNTIME,
    COL_UNPRICED,
    COL_GPU_USD,
    COL_BUSY_USD,
    N_COLS
};

static double num(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtod(PQgetvalue(res, row, col), NULL);
}

static long long count(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/* Adds row `row` (columns from `c0`) to r. A row of no kind (an observation with nothing in
 * it) adds nothing. */
static void add_row(TaskCostReport *r, const PGresult *res, int row, int c0)
{
    if (PQgetisnull(res, row, c0 + COL_KIND))
        return;
    const char *kind = PQgetvalue(res, row, c0 + COL_KIND);
    const char *pool = PQgetvalue(res, row, c0 + COL_POOL);
    if (strcmp(kind, "pool") == 0) {
        if (r->n_pools >= TASK_COST_POOLS_MAX)
            return;
        TaskCostPool *p = &r->pools[r->n_pools++];
        snprintf(p->pool, sizeof p->pool, "%s", pool);
        p->gpu_usd = num(res, row, c0 + COL_GPU_USD);
        p->busy_usd = num(res, row, c0 + COL_BUSY_USD);
        return;
    }
    if (r->n_types >= TASK_COST_ROWS_MAX) {
        r->types_truncated = true;
        return;
    }
    TaskCostType *t = &r->types[r->n_types++];
    snprintf(t->pool, sizeof t->pool, "%s", pool);
    snprintf(t->task_type, sizeof t->task_type, "%s", PQgetvalue(res, row, c0 + COL_TYPE));
    t->bucket = PQgetisnull(res, row, c0 + COL_BUCKET) ? -1 : (int)count(res, row, c0 + COL_BUCKET);
    t->tasks = count(res, row, c0 + COL_TASKS);
    t->usd = num(res, row, c0 + COL_TASK_USD);
    t->runtime_sec = num(res, row, c0 + COL_RUNTIME);
    t->unpriced = count(res, row, c0 + COL_UNPRICED);
}

Status task_cost_load(PGconn *conn, const long long *window_sec, size_t n, TaskCostReport *out)
{
    char windows[96] = "{";
    for (size_t i = 0; i < n && i < 4; i++) {
        size_t len = strlen(windows);
        snprintf(windows + len, sizeof windows - len, "%s%lld", i ? "," : "", window_sec[i]);
    }
    snprintf(windows + strlen(windows), sizeof windows - strlen(windows), "}");
    char max_tasks[24];
    snprintf(max_tasks, sizeof max_tasks, "%d", TASK_COST_MAX_TASKS);
    const char *p[] = {windows, max_tasks};
    PGresult *res = db_exec_params(
        conn, "task_costs",
        "SELECT w.i::int, extract(epoch FROM now() - make_interval(secs => w.sec))::float8,"
        " extract(epoch FROM now())::float8, c.*"
        " FROM unnest($1::bigint[]) WITH ORDINALITY AS w(sec, i)"
        " CROSS JOIN LATERAL orchestrator_task_costs(now() - make_interval(secs => w.sec),"
        "   now(), NULL, $2::int) c"
        " ORDER BY w.i, c.kind DESC, c.tasks DESC NULLS LAST, c.pool, c.task_type",
        2, p, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    for (size_t i = 0; i < n && i < 4; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].observed = true;
    }
    for (int row = 0; row < PQntuples(res); row++) {
        long long i = count(res, row, 0) - 1;
        if (i < 0 || (size_t)i >= n || i >= 4)
            continue;
        out[i].lo_epoch = num(res, row, 1);
        out[i].hi_epoch = num(res, row, 2);
        add_row(&out[i], res, row, 3);
    }
    /* A window with no row at all still has its bounds. */
    for (size_t i = 0; i < n && i < 4; i++)
        if (out[i].hi_epoch == 0 && PQntuples(res) > 0) {
            out[i].hi_epoch = num(res, 0, 2);
            out[i].lo_epoch = out[i].hi_epoch - (double)window_sec[i];
        }
    PQclear(res);
    return STATUS_OK;
}

Status task_cost_observe(PGconn *conn, long long first_window_sec, TaskCostReport *out)
{
    char first[24], lookback[24], max_tasks[24], bounds[256] = "{";
    snprintf(first, sizeof first, "%lld", first_window_sec);
    snprintf(lookback, sizeof lookback, "%d", TASK_COST_LOOKBACK_SEC);
    snprintf(max_tasks, sizeof max_tasks, "%d", TASK_COST_MAX_TASKS);
    for (size_t b = 0; b < TASK_COST_BUCKETS; b++) {
        size_t len = strlen(bounds);
        snprintf(bounds + len, sizeof bounds - len, "%s%g", b ? "," : "", TASK_COST_BOUNDS[b]);
    }
    snprintf(bounds + strlen(bounds), sizeof bounds - strlen(bounds), "}");
    const char *p[] = {first, lookback, bounds, max_tasks};
    /* The watermark moves only from the value this statement read: a concurrent observation
     * (there is none under the cycle lease) would find it moved and observe nothing. */
    PGresult *res = db_exec_params(
        conn, "task_costs_observe",
        "WITH prev AS ("
        "  SELECT cost_observed_until AS old,"
        "         greatest(coalesce(cost_observed_until, now() - make_interval(secs => $1::int)),"
        "                  now() - make_interval(secs => $2::int)) AS lo,"
        "         now() - interval '10 seconds' AS hi"
        "    FROM orchestrator_state WHERE id = 1),"
        " moved AS ("
        "  UPDATE orchestrator_state s SET cost_observed_until = prev.hi FROM prev"
        "   WHERE s.id = 1 AND s.cost_observed_until IS NOT DISTINCT FROM prev.old"
        "     AND prev.lo < prev.hi"
        "  RETURNING prev.lo, prev.hi)"
        " SELECT extract(epoch FROM m.lo)::float8, extract(epoch FROM m.hi)::float8, c.*"
        "  FROM moved m LEFT JOIN LATERAL"
        "   orchestrator_task_costs(m.lo, m.hi, $3::float8[], $4::int) c ON true"
        " ORDER BY c.kind DESC, c.tasks DESC NULLS LAST, c.pool, c.task_type, c.bucket",
        4, p, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    memset(out, 0, sizeof *out);
    for (int row = 0; row < PQntuples(res); row++) {
        out->observed = true;
        out->lo_epoch = num(res, row, 0);
        out->hi_epoch = num(res, row, 1);
        add_row(out, res, row, 2);
    }
    PQclear(res);
    return STATUS_OK;
}

double task_cost_idle(const TaskCostPool *p)
{
    double idle = p->gpu_usd - p->busy_usd;
    return idle > 0 ? idle : 0;
}

void task_cost_totals(const TaskCostReport *r, long long *tasks, double *task_usd, double *gpu_usd,
                      double *idle_usd)
{
    *tasks = 0;
    *task_usd = *gpu_usd = *idle_usd = 0;
    for (size_t i = 0; i < r->n_types; i++) {
        *tasks += r->types[i].tasks;
        *task_usd += r->types[i].usd;
    }
    for (size_t p = 0; p < r->n_pools; p++) {
        *gpu_usd += r->pools[p].gpu_usd;
        *idle_usd += task_cost_idle(&r->pools[p]);
    }
}

/* The merged (pool, task_type) entry of by_type, added when new. */
static cJSON *type_entry(cJSON *arr, const TaskCostType *t)
{
    for (cJSON *o = arr->child; o; o = o->next)
        if (strcmp(cJSON_GetObjectItem(o, "pool")->valuestring, t->pool) == 0 &&
            strcmp(cJSON_GetObjectItem(o, "task_type")->valuestring, t->task_type) == 0)
            return o;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "pool", t->pool);
    cJSON_AddStringToObject(o, "task_type", t->task_type);
    cJSON_AddNumberToObject(o, "tasks", 0);
    cJSON_AddNumberToObject(o, "cost_usd", 0);
    cJSON_AddNumberToObject(o, "runtime_sec", 0);
    cJSON_AddNumberToObject(o, "unpriced", 0);
    cJSON_AddItemToArray(arr, o);
    return o;
}

static void add_to(cJSON *o, const char *key, double v)
{
    cJSON *n = cJSON_GetObjectItem(o, key);
    cJSON_SetNumberValue(n, n->valuedouble + v);
}

/* Per pool: its completed tasks and their cost (from the type rows). */
static void pool_tasks(const TaskCostReport *r, const char *pool, long long *tasks, double *usd)
{
    *tasks = 0;
    *usd = 0;
    for (size_t i = 0; i < r->n_types; i++)
        if (strcmp(r->types[i].pool, pool) == 0) {
            *tasks += r->types[i].tasks;
            *usd += r->types[i].usd;
        }
}

cJSON *task_cost_json(const TaskCostReport *r)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    long long tasks = 0, unpriced = 0;
    double task_usd = 0, gpu_usd = 0, idle_usd = 0;
    task_cost_totals(r, &tasks, &task_usd, &gpu_usd, &idle_usd);
    cJSON_AddNumberToObject(
        o, "window_sec",
        r->hi_epoch > r->lo_epoch ? (double)(long long)(r->hi_epoch - r->lo_epoch) : 0);
    cJSON_AddNumberToObject(o, "tasks", (double)tasks);
    cJSON_AddNumberToObject(o, "task_cost_usd", task_usd);
    cJSON_AddNumberToObject(o, "gpu_cost_usd", gpu_usd);
    cJSON_AddNumberToObject(o, "idle_cost_usd", idle_usd);
    cJSON *types = cJSON_AddArrayToObject(o, "by_type");
    for (size_t i = 0; types && i < r->n_types; i++) {
        const TaskCostType *t = &r->types[i];
        cJSON *e = type_entry(types, t);
        if (!e)
            break;
        add_to(e, "tasks", (double)t->tasks);
        add_to(e, "cost_usd", t->usd);
        add_to(e, "runtime_sec", t->runtime_sec);
        add_to(e, "unpriced", (double)t->unpriced);
        unpriced += t->unpriced;
    }
    for (cJSON *e = types ? types->child : NULL; e; e = e->next) {
        double n = cJSON_GetObjectItem(e, "tasks")->valuedouble;
        cJSON_AddNumberToObject(e, "avg_cost_usd",
                                n > 0 ? cJSON_GetObjectItem(e, "cost_usd")->valuedouble / n : 0);
        cJSON_AddNumberToObject(e, "avg_runtime_sec",
                                n > 0 ? cJSON_GetObjectItem(e, "runtime_sec")->valuedouble / n : 0);
    }
    cJSON *pools = cJSON_AddArrayToObject(o, "by_pool");
    for (size_t p = 0; pools && p < r->n_pools; p++) {
        const TaskCostPool *tp = &r->pools[p];
        long long n = 0;
        double usd = 0;
        pool_tasks(r, tp->pool, &n, &usd);
        cJSON *e = cJSON_CreateObject();
        if (!e)
            break;
        cJSON_AddStringToObject(e, "pool", tp->pool);
        cJSON_AddNumberToObject(e, "tasks", (double)n);
        cJSON_AddNumberToObject(e, "task_cost_usd", usd);
        cJSON_AddNumberToObject(e, "gpu_cost_usd", tp->gpu_usd);
        cJSON_AddNumberToObject(e, "busy_cost_usd", tp->busy_usd);
        cJSON_AddNumberToObject(e, "idle_cost_usd", task_cost_idle(tp));
        cJSON_AddItemToArray(pools, e);
    }
    cJSON_AddNumberToObject(o, "unpriced_tasks", (double)unpriced);
    /* Cut short: more (pool, task_type) rows than kept, or the window held more completed
     * tasks than are read (the newest TASK_COST_MAX_TASKS were counted). */
    cJSON_AddBoolToObject(o, "truncated", r->types_truncated || tasks >= TASK_COST_MAX_TASKS);
    return o;
}
