/* status_cmd.c -- `orchestrator status [--json] [--watch S]`: the fleet at a glance.
 *
 * Shell module. Reads one snapshot (the cycle's own read-only queries; no lock, no write),
 * lets the pure planner compute `desired` and the limits as the next cycle would see them, and
 * prints a table that fits 100 columns, or the JSON document described in
 * structure_docs/operating.md. The fleet and the workers are grouped by pool (issue 14), and
 * tasks of run types no pool serves get a line of their own.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "db.h"
#include "planner.h"
#include "task_cost.h"
#include "status_runpod.h"
#include "status_lifecycle.h"

static void fmt_age(long long sec, char *out, size_t cap)
{
    if (sec < 0)
        snprintf(out, cap, "-");
    else if (sec < 120)
        snprintf(out, cap, "%llds", sec);
    else if (sec < 7200)
        snprintf(out, cap, "%lldm%02llds", sec / 60, sec % 60);
    else if (sec < 172800)
        snprintf(out, cap, "%lldh%02lldm", sec / 3600, (sec % 3600) / 60);
    else
        snprintf(out, cap, "%lldd%02lldh", sec / 86400, (sec % 86400) / 3600);
}

/* The oldest In Progress task a worker holds, or NULL. */
static const SnapTask *task_of(const Snapshot *snap, const char *worker_id)
{
    const SnapTask *best = NULL;
    for (size_t t = 0; t < snap->n_tasks; t++)
        if (strcmp(snap->tasks[t].worker_id, worker_id) == 0 &&
            (!best || snap->tasks[t].age_sec > best->age_sec))
            best = &snap->tasks[t];
    return best;
}

/* The fleet as it is now (the plan's counts are after the next cycle's own transitions). */
typedef struct {
    long long spawning, active, busy, idle, terminating, error;
    double failure_rate;
} Now;

/* The live workers now, of pool (NULL: every pool). */
static Now now_of_pool(const Snapshot *snap, const char *pool)
{
    Now n = {0};
    for (size_t i = 0; i < snap->n_workers; i++) {
        const SnapWorker *w = &snap->workers[i];
        if (pool && strcmp(w->pool, pool) != 0)
            continue;
        if (w->state == WORKER_SPAWNING)
            n.spawning++;
        else if (w->state == WORKER_TERMINATING)
            n.terminating++;
        else if (w->state == WORKER_ERROR || w->state == WORKER_CRASHED)
            n.error++;
        else if (w->state == WORKER_ACTIVE) {
            n.active++;
            if (task_of(snap, w->id))
                n.busy++;
            else
                n.idle++;
        }
    }
    n.failure_rate = snap->ended_in_window > 0
                         ? (double)snap->unexpected_in_window / (double)snap->ended_in_window
                         : 0.0;
    return n;
}

static Now now_of(const Snapshot *snap)
{
    return now_of_pool(snap, NULL);
}

/* Queued tasks of one run type (0 when the snapshot has none). */
static long long run_type_queued(const Snapshot *snap, const char *run_type)
{
    for (size_t k = 0; k < snap->n_run_types; k++)
        if (strcmp(snap->run_types[k].name, run_type) == 0)
            return snap->run_types[k].queued;
    return 0;
}

/* The pool names the live workers carry that POOLS no longer has (their workers drain), in
 * the order first seen; at most cap. */
static size_t retired_pools(const Snapshot *snap, const Config *cfg,
                            char (*out)[SNAP_POOL_NAME_MAX], size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < snap->n_workers; i++) {
        const char *name = snap->workers[i].pool;
        bool seen = config_pool_named(cfg, name) != NULL;
        for (size_t k = 0; k < n && !seen; k++)
            seen = strcmp(out[k], name) == 0;
        if (!seen && n < cap)
            snprintf(out[n++], SNAP_POOL_NAME_MAX, "%s", name);
    }
    return n;
}

/* The plan's entry for pool name, or NULL (a snapshot too large to plan on). */
static const PlanPool *plan_pool(const Plan *plan, const char *name)
{
    for (size_t p = 0; p < plan->n_pools; p++)
        if (strcmp(plan->pools[p].name, name) == 0)
            return &plan->pools[p];
    return NULL;
}

static cJSON *string_list(const char (*items)[CONFIG_ITEM_MAX], size_t n)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t k = 0; a && k < n; k++)
        cJSON_AddItemToArray(a, cJSON_CreateString(items[k]));
    return a;
}

/* "pools": one object per configured pool, then one per pool the configuration no longer has
 * that still has live workers (configured false). */
static cJSON *pools_json(const Snapshot *snap, const Plan *plan, const Config *cfg)
{
    cJSON *arr = cJSON_CreateArray();
    char retired[SNAP_POOLS_MAX][SNAP_POOL_NAME_MAX];
    size_t n_retired = retired_pools(snap, cfg, retired, SNAP_POOLS_MAX);
    for (size_t k = 0; arr && k < cfg->n_pools + n_retired; k++) {
        const PoolConfig *pc = k < cfg->n_pools ? &cfg->pools[k] : NULL;
        const char *name = pc ? pc->name : retired[k - cfg->n_pools];
        const PlanPool *pp = plan_pool(plan, name);
        Now n = now_of_pool(snap, name);
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddBoolToObject(o, "configured", pc != NULL);
        cJSON_AddNumberToObject(o, "desired", pp ? (double)pp->desired : 0);
        cJSON_AddNumberToObject(o, "spawning", (double)n.spawning);
        cJSON_AddNumberToObject(o, "active", (double)n.active);
        cJSON_AddNumberToObject(o, "busy", (double)n.busy);
        cJSON_AddNumberToObject(o, "idle", (double)n.idle);
        cJSON_AddNumberToObject(o, "terminating", (double)n.terminating);
        cJSON_AddNumberToObject(o, "error", (double)n.error);
        cJSON_AddNumberToObject(o, "min", pc ? pc->min_active_gpus : 0);
        cJSON_AddNumberToObject(o, "max", pc ? pc->max_active_gpus : 0);
        cJSON *q = cJSON_AddObjectToObject(o, "queue");
        cJSON_AddNumberToObject(q, "claimable", pp ? (double)pp->queued : 0);
        cJSON_AddNumberToObject(q, "queued", pp ? (double)pp->queued_total : 0);
        cJSON_AddNumberToObject(q, "running", pp ? (double)pp->running : 0);
        cJSON_AddNumberToObject(q, "oldest_queued_age_sec",
                                pp ? (double)pp->oldest_queued_age_sec : -1);
        cJSON *b = cJSON_AddObjectToObject(o, "breaker");
        cJSON_AddBoolToObject(b, "open", pp && pp->breaker_open);
        cJSON_AddNumberToObject(b, "failure_rate", pp ? pp->failure_rate : 0);
        cJSON_AddStringToObject(o, "spawn_limit",
                                spawn_limit_str(pp ? pp->spawn_limit : plan->spawn_limit));
        cJSON_AddNumberToObject(o, "cost_per_hr", pp ? pp->cost_per_hr : 0);
        cJSON_AddItemToObject(o, "run_types",
                              pc ? string_list(pc->run_types.items, pc->run_types.count)
                                 : cJSON_CreateArray());
        cJSON_AddItemToObject(o, "gpu_types",
                              pc ? string_list(pc->gpu_types.items, pc->gpu_types.count)
                                 : cJSON_CreateArray());
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

/* "unserved": {queued, run_types: [{run_type, queued}]} (the plan lists at most
 * PLAN_UNSERVED_MAX run types; queued counts them all). */
static cJSON *unserved_json(const Snapshot *snap, const Plan *plan)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "queued", (double)plan->unserved_queued);
    cJSON *a = cJSON_AddArrayToObject(o, "run_types");
    for (size_t k = 0; a && k < plan->n_unserved && k < PLAN_UNSERVED_MAX; k++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "run_type", plan->unserved[k]);
        cJSON_AddNumberToObject(x, "queued", (double)run_type_queued(snap, plan->unserved[k]));
        cJSON_AddItemToArray(a, x);
    }
    return o;
}

static double fleet_cost(const Snapshot *snap)
{
    double c = 0;
    for (size_t i = 0; i < snap->n_workers; i++)
        c += snap->workers[i].cost_per_hr;
    return c;
}

/* The windows of the cost section (issue 17): the last hour and the last day. */
static const long long COST_WINDOWS[2] = {3600, 86400};

/* "task_cost": {"last_hour", "last_day"} (task_cost_json each), or null when it could not be
 * read (a database not migrated to 0013 yet: the rest of status still works). */
static cJSON *task_cost_status_json(const TaskCostReport *costs)
{
    if (!costs)
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    if (o) {
        cJSON_AddItemToObject(o, "last_hour", task_cost_json(&costs[0]));
        cJSON_AddItemToObject(o, "last_day", task_cost_json(&costs[1]));
    }
    return o;
}

static cJSON *status_json(const Snapshot *snap, const Plan *plan, const Config *cfg,
                          const TaskCostReport *costs)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON *q = cJSON_AddObjectToObject(o, "queue");
    cJSON_AddNumberToObject(q, "claimable", (double)snap->queued_claimable);
    cJSON_AddNumberToObject(q, "queued", (double)snap->queued_total);
    cJSON_AddNumberToObject(q, "running", (double)snap->in_progress_total);
    cJSON_AddNumberToObject(q, "oldest_queued_age_sec", (double)snap->oldest_queued_age_sec);
    Now n = now_of(snap);
    cJSON *f = cJSON_AddObjectToObject(o, "fleet");
    cJSON_AddNumberToObject(f, "desired", (double)plan->desired);
    cJSON_AddNumberToObject(f, "spawning", (double)n.spawning);
    cJSON_AddNumberToObject(f, "active", (double)n.active);
    cJSON_AddNumberToObject(f, "busy", (double)n.busy);
    cJSON_AddNumberToObject(f, "idle", (double)n.idle);
    cJSON_AddNumberToObject(f, "terminating", (double)n.terminating);
    cJSON_AddNumberToObject(f, "error", (double)n.error);
    cJSON_AddNumberToObject(f, "min", cfg->min_active_gpus);
    cJSON_AddNumberToObject(f, "max", cfg->max_active_gpus);
    cJSON_AddNumberToObject(f, "cost_per_hr", fleet_cost(snap));
    cJSON_AddStringToObject(f, "spawn_limit", spawn_limit_str(plan->spawn_limit));
    cJSON *b = cJSON_AddObjectToObject(o, "breaker");
    cJSON_AddBoolToObject(b, "open", snap->breaker_was_open);
    cJSON_AddNumberToObject(b, "failure_rate", n.failure_rate);
    cJSON_AddNumberToObject(b, "ended_in_window", (double)snap->ended_in_window);
    cJSON_AddNumberToObject(b, "unexpected_in_window", (double)snap->unexpected_in_window);
    cJSON_AddNumberToObject(b, "window_minutes", cfg->failure_window_minutes);
    cJSON *bo = cJSON_AddArrayToObject(o, "gpu_backoff");
    for (size_t i = 0; bo && i < snap->n_backoffs; i++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "gpu_type", snap->backoffs[i].gpu_type);
        cJSON_AddNumberToObject(x, "remaining_sec", (double)snap->backoffs[i].remaining_sec);
        cJSON_AddNumberToObject(x, "failures", snap->backoffs[i].failures);
        cJSON_AddItemToArray(bo, x);
    }
    cJSON_AddItemToObject(o, "runpod", status_runpod_json(snap, cfg)); /* issue 16 */
    cJSON *c = cJSON_AddObjectToObject(o, "cycles");
    cJSON_AddNumberToObject(c, "last_cycle", (double)(snap->cycle_number - 1));
    cJSON_AddNumberToObject(c, "since_last_success_sec", (double)snap->since_success_sec);
    cJSON_AddNumberToObject(c, "since_last_reconcile_sec", (double)snap->since_reconcile_sec);
    cJSON *ws = cJSON_AddArrayToObject(o, "workers");
    for (size_t i = 0; ws && i < snap->n_workers; i++) {
        const SnapWorker *w = &snap->workers[i];
        const SnapTask *t = task_of(snap, w->id);
        cJSON *x = cJSON_CreateObject();
        if (!x)
            break;
        cJSON_AddStringToObject(x, "id", w->id);
        cJSON_AddStringToObject(x, "status", worker_state_str(w->state));
        cJSON_AddStringToObject(x, "pool", w->pool);
        cJSON_AddStringToObject(x, "pod_id", w->runpod_id);
        cJSON_AddStringToObject(x, "gpu_type", w->gpu_type);
        cJSON_AddNumberToObject(x, "age_sec", (double)w->age_sec);
        cJSON_AddNumberToObject(x, "heartbeat_age_sec", (double)w->heartbeat_age_sec);
        cJSON_AddNumberToObject(x, "vram_total_mb", (double)w->vram_total_mb);
        cJSON_AddNumberToObject(x, "vram_used_mb", (double)w->vram_used_mb);
        if (w->vram_total_mb > 0 && w->vram_used_mb >= 0)
            cJSON_AddNumberToObject(x, "vram_percent",
                                    100.0 * (double)w->vram_used_mb / (double)w->vram_total_mb);
        else
            cJSON_AddNullToObject(x, "vram_percent");
        if (t) {
            cJSON_AddStringToObject(x, "task_id", t->id);
            cJSON_AddStringToObject(x, "task_type", t->task_type);
            cJSON_AddNumberToObject(x, "task_runtime_sec", (double)t->age_sec);
        } else {
            cJSON_AddNullToObject(x, "task_id");
            cJSON_AddNullToObject(x, "task_type");
            cJSON_AddNullToObject(x, "task_runtime_sec");
        }
        cJSON_AddNumberToObject(x, "cost_per_hr", w->cost_per_hr);
        cJSON_AddItemToArray(ws, x);
    }
    cJSON_AddItemToObject(o, "pools", pools_json(snap, plan, cfg));
    cJSON_AddItemToObject(o, "unserved", unserved_json(snap, plan));
    cJSON_AddItemToObject(o, "task_cost", task_cost_status_json(costs));
    return o;
}

/* One line per pool (configured ones, then pools no longer configured that still have live
 * workers): desired, the workers now, its queue, its breaker and its spawn limit. */
static void pools_text(const Snapshot *snap, const Plan *plan, const Config *cfg)
{
    char retired[SNAP_POOLS_MAX][SNAP_POOL_NAME_MAX];
    size_t n_retired = retired_pools(snap, cfg, retired, SNAP_POOLS_MAX);
    printf("%-18s %4s %4s %4s %4s %4s %4s %6s %6s %6s %-7s %s\n", "POOL", "WANT", "ACT", "BUSY",
           "IDLE", "SPWN", "TERM", "CLAIM", "QUEUED", "OLDEST", "BREAKER", "LIMIT");
    for (size_t k = 0; k < cfg->n_pools + n_retired; k++) {
        const char *name = k < cfg->n_pools ? cfg->pools[k].name : retired[k - cfg->n_pools];
        const PlanPool *pp = plan_pool(plan, name);
        Now n = now_of_pool(snap, name);
        char oldest[32];
        fmt_age(pp ? pp->oldest_queued_age_sec : -1, oldest, sizeof oldest);
        SpawnLimit lim = pp ? pp->spawn_limit : plan->spawn_limit;
        printf("%-18.18s %4lld %4lld %4lld %4lld %4lld %4lld %6lld %6lld %6s %-7s %s\n", name,
               pp ? pp->desired : 0, n.active, n.busy, n.idle, n.spawning, n.terminating,
               pp ? pp->queued : 0, pp ? pp->queued_total : 0, oldest,
               pp && pp->breaker_open ? "OPEN" : "closed",
               k >= cfg->n_pools         ? "(not in POOLS: drains)"
               : lim == SPAWN_LIMIT_NONE ? "-"
                                         : spawn_limit_str(lim));
    }
}

/* The run types no pool serves, with their queued counts, cut to 100 columns. */
static void unserved_text(const Snapshot *snap, const Plan *plan)
{
    if (plan->unserved_queued <= 0 && plan->n_unserved == 0)
        return;
    char line[101];
    int len =
        snprintf(line, sizeof line, "unserved %lld queued, no pool serves:", plan->unserved_queued);
    for (size_t k = 0; len > 0 && k < plan->n_unserved && k < PLAN_UNSERVED_MAX; k++) {
        char item[160];
        snprintf(item, sizeof item, "%s %.40s %lld", k ? "," : "", plan->unserved[k],
                 run_type_queued(snap, plan->unserved[k]));
        if ((size_t)len + strlen(item) + 4 >= sizeof line) {
            snprintf(line + len, sizeof line - (size_t)len, " ...");
            len = -1;
            break;
        }
        len += snprintf(line + len, sizeof line - (size_t)len, "%s", item);
    }
    if (len > 0 && plan->n_unserved > PLAN_UNSERVED_MAX && (size_t)len + 4 < sizeof line)
        snprintf(line + len, sizeof line - (size_t)len, " ...");
    printf("%s\n", line);
}

/* One worker's row of the table. */
static void worker_row(const Snapshot *snap, const SnapWorker *w)
{
    const SnapTask *t = task_of(snap, w->id);
    char vram[64], run[32], age[32], beat[32];
    if (w->vram_total_mb > 0 && w->vram_used_mb >= 0)
        snprintf(vram, sizeof vram, "%lld/%lld %3.0f%%", w->vram_used_mb, w->vram_total_mb,
                 100.0 * (double)w->vram_used_mb / (double)w->vram_total_mb);
    else if (w->vram_total_mb == 0)
        snprintf(vram, sizeof vram, "no GPU");
    else
        snprintf(vram, sizeof vram, "-");
    fmt_age(w->age_sec, age, sizeof age);
    fmt_age(w->heartbeat_age_sec, beat, sizeof beat);
    fmt_age(t ? t->age_sec : -1, run, sizeof run);
    printf("%-28.28s %-11s %6s %6s %17s %-8.8s %6s %6.3f\n", w->id, worker_state_str(w->state), age,
           beat, vram, t ? t->id : "-", run, w->cost_per_hr);
}

/* One row per live worker, grouped by pool: configured pools in POOLS order, then the rest. */
static void workers_text(const Snapshot *snap, const Config *cfg)
{
    char retired[SNAP_POOLS_MAX][SNAP_POOL_NAME_MAX];
    size_t n_retired = retired_pools(snap, cfg, retired, SNAP_POOLS_MAX);
    printf("%-28s %-11s %6s %6s %17s %-8s %6s %6s\n", "WORKER", "STATE", "AGE", "BEAT", "VRAM MB",
           "TASK", "RUN", "$/H");
    for (size_t k = 0; k < cfg->n_pools + n_retired; k++) {
        const char *name = k < cfg->n_pools ? cfg->pools[k].name : retired[k - cfg->n_pools];
        long long live = 0;
        for (size_t i = 0; i < snap->n_workers; i++)
            live += strcmp(snap->workers[i].pool, name) == 0;
        if (live == 0)
            continue;
        printf("-- pool %.31s: %lld live worker%s%s\n", name, live, live == 1 ? "" : "s",
               k >= cfg->n_pools ? " (pool not in POOLS: they drain)" : "");
        for (size_t i = 0; i < snap->n_workers; i++)
            if (strcmp(snap->workers[i].pool, name) == 0)
                worker_row(snap, &snap->workers[i]);
    }
    if (snap->n_workers == 0)
        printf("(no live workers)\n");
}

/* One window's totals: "12 tasks $0.420 ($0.0350/task), GPU $1.20, idle $0.78 (65%)". */
static void cost_totals_text(const TaskCostReport *r, char *out, size_t cap)
{
    long long tasks = 0;
    double task_usd = 0, gpu_usd = 0, idle_usd = 0;
    task_cost_totals(r, &tasks, &task_usd, &gpu_usd, &idle_usd);
    snprintf(out, cap, "%lld tasks $%.3f ($%.4f/task), GPU $%.2f, idle $%.2f (%.0f%%)", tasks,
             task_usd, tasks > 0 ? task_usd / (double)tasks : 0.0, gpu_usd, idle_usd,
             gpu_usd > 0 ? 100.0 * idle_usd / gpu_usd : 0.0);
}

/* A (pool, task_type)'s tasks and cost in r (its rows merged). */
static void cost_of_type(const TaskCostReport *r, const TaskCostType *t, long long *n, double *usd)
{
    *n = 0;
    *usd = 0;
    for (size_t i = 0; i < r->n_types; i++)
        if (strcmp(r->types[i].pool, t->pool) == 0 &&
            strcmp(r->types[i].task_type, t->task_type) == 0) {
            *n += r->types[i].tasks;
            *usd += r->types[i].usd;
        }
}

/* The cost section: totals of the last hour and day, then one row per (task type, pool) of
 * the last day (most tasks first; at most 20 rows). */
static void cost_text(const TaskCostReport *costs)
{
    if (!costs) {
        printf("cost     unavailable (see the error above; `orchestrator migrate` applies "
               "0013_task_cost)\n");
        return;
    }
    char line[160];
    cost_totals_text(&costs[0], line, sizeof line);
    printf("cost 1h  %s\n", line);
    cost_totals_text(&costs[1], line, sizeof line);
    printf("cost 24h %s\n", line);
    if (costs[1].n_types == 0)
        return;
    printf("%-20s %-14s %8s %9s %8s %9s %9s %8s\n", "TASK TYPE", "POOL", "1H TASKS", "1H $",
           "$/TASK", "24H TASKS", "24H $", "$/TASK");
    for (size_t i = 0; i < costs[1].n_types && i < 20; i++) {
        long long n1 = 0, n24 = 0;
        double u1 = 0, u24 = 0;
        cost_of_type(&costs[0], &costs[1].types[i], &n1, &u1);
        cost_of_type(&costs[1], &costs[1].types[i], &n24, &u24);
        printf("%-20.20s %-14.14s %8lld %9.3f %8.4f %9lld %9.3f %8.4f\n",
               costs[1].types[i].task_type, costs[1].types[i].pool, n1, u1,
               n1 > 0 ? u1 / (double)n1 : 0.0, n24, u24, n24 > 0 ? u24 / (double)n24 : 0.0);
    }
    if (costs[1].n_types > 20)
        printf("(%zu more task types: status --json lists them all)\n", costs[1].n_types - 20);
}

static Status status_text(PGconn *conn, const Snapshot *snap, const Plan *plan, const Config *cfg,
                          const TaskCostReport *costs)
{
    char age[32], a2[32], a3[32];
    fmt_age(snap->oldest_queued_age_sec, age, sizeof age);
    printf("queue    %lld claimable, %lld queued (oldest %s), %lld running\n",
           snap->queued_claimable, snap->queued_total, age, snap->in_progress_total);
    Now n = now_of(snap);
    printf("fleet    desired %lld; %lld active (%lld busy, %lld idle), %lld spawning, "
           "%lld terminating, %lld error; min %d max %d\n",
           plan->desired, n.active, n.busy, n.idle, n.spawning, n.terminating, n.error,
           cfg->min_active_gpus, cfg->max_active_gpus);
    printf("spawning %s; breaker %s (%lld of %lld endings unexpected in %d min)\n",
           plan->spawn_limit == SPAWN_LIMIT_NONE ? "allowed" : spawn_limit_str(plan->spawn_limit),
           snap->breaker_was_open ? "OPEN" : "closed", snap->unexpected_in_window,
           snap->ended_in_window, cfg->failure_window_minutes);
    for (size_t i = 0; i < snap->n_backoffs; i++) {
        fmt_age(snap->backoffs[i].remaining_sec, age, sizeof age);
        printf("backoff  %s for %s more (%d failures)\n", snap->backoffs[i].gpu_type, age,
               snap->backoffs[i].failures);
    }
    status_runpod_text(snap, cfg); /* issue 16 */
    fmt_age(snap->since_success_sec, a2, sizeof a2);
    fmt_age(snap->since_reconcile_sec, a3, sizeof a3);
    printf("cycles   last #%lld, last success %s ago, last reconcile %s ago; fleet $%.2f/h\n",
           snap->cycle_number - 1, a2, a3, fleet_cost(snap));
    Status st = status_lifecycle_text(conn, snap, plan, cfg); /* spend, warm, last failure */
    if (st != STATUS_OK)
        return st;
    unserved_text(snap, plan);
    cost_text(costs);
    printf("\n");
    pools_text(snap, plan, cfg);
    printf("\n");
    workers_text(snap, cfg);
    return STATUS_OK;
}

static volatile sig_atomic_t g_stop_watch;

static void on_signal(int sig)
{
    (void)sig;
    g_stop_watch = 1;
}

Status cmd_status(int argc, char **argv)
{
    bool json = false;
    long watch = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--watch") == 0 && i + 1 < argc) {
            char *end = NULL;
            watch = strtol(argv[++i], &end, 10);
            if (!end || *end || watch < 1 || watch > 3600) {
                fprintf(stderr, "orchestrator status: --watch needs seconds in [1, 3600]\n");
                return STATUS_ERR_USAGE;
            }
        } else {
            fprintf(stderr,
                    "orchestrator status: unknown argument '%s'; see `orchestrator "
                    "status --help`\n",
                    argv[i]);
            return STATUS_ERR_USAGE;
        }
    }
    Config *cfg = NULL;
    Status st = commands_load_config(CONFIG_NEED_DB, &cfg);
    if (st != STATUS_OK)
        return st;
    PGconn *conn = NULL;
    Snapshot *snap = calloc(1, sizeof *snap);
    Plan *plan = calloc(1, sizeof *plan);
    TaskCostReport *costs = calloc(2, sizeof *costs);
    if (!snap || !plan || !costs) {
        st = STATUS_ERR_NOMEM;
        goto out;
    }
    st = db_connect(cfg, &conn);
    if (st != STATUS_OK)
        goto out;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (watch > 0) {
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    bool tty = isatty(STDOUT_FILENO);
    do {
        st = db_load_snapshot(conn, cfg, snap);
        if (st != STATUS_OK)
            break;
        Policy pol;
        policy_from_config(cfg, &pol);
        planner_decide(snap, &pol, plan);
        bool have_costs = task_cost_load(conn, COST_WINDOWS, 2, costs) == STATUS_OK;
        if (watch > 0 && tty && !json)
            printf("\033[H\033[2J");
        if (json) {
            cJSON *o = status_json(snap, plan, cfg, have_costs ? costs : NULL);
            if (o && (st = status_lifecycle_json(conn, snap, plan, o)) != STATUS_OK) {
                cJSON_Delete(o);
                break;
            }
            char *s = o ? cJSON_PrintUnformatted(o) : NULL;
            printf("%s\n", s ? s : "{}");
            free(s);
            cJSON_Delete(o);
        } else if ((st = status_text(conn, snap, plan, cfg, have_costs ? costs : NULL)) !=
                   STATUS_OK) {
            break;
        }
        fflush(stdout);
        for (long k = 0; watch > 0 && k < watch * 10 && !g_stop_watch; k++) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = 100000000L};
            nanosleep(&ts, NULL);
        }
    } while (watch > 0 && !g_stop_watch);
out:
    if (conn)
        PQfinish(conn);
    free(snap);
    free(plan);
    free(costs);
    free(cfg);
    return st;
}
