/* task_cost.h -- what completed tasks cost, and what GPU time no task used (issue 17 item 5).
 *
 * Shell module. Reads orchestrator_task_costs() (sql/migrations/0013_task_cost.sql), one
 * set-based statement bounded by a time window and by TASK_COST_MAX_TASKS completed tasks: a
 * task's cost is its worker's cost_per_hr times its runtime (generation_started_at to
 * generation_processed_at); a pool's GPU cost is its workers' alive time in the window times
 * their price, and its idle cost the part of that no task was running in. Used by `status`
 * (the last hour and the last day), and by the cycle on the reconcile cadence for the metrics
 * and the summary (structure_docs/cost.md explains the cadence and the approximations).
 */
#ifndef ORCH_TASK_COST_H
#define ORCH_TASK_COST_H

#include <stdbool.h>
#include <stddef.h>

#include <cJSON.h>
#include <libpq-fe.h>

#include "snapshot.h"
#include "status.h"

#define TASK_COST_MAX_TASKS 100000  /* completed tasks read per window, the newest */
#define TASK_COST_ROWS_MAX 1024     /* (pool, task_type[, bucket]) rows kept; the rest dropped */
#define TASK_COST_POOLS_MAX 64      /* SNAP_POOLS_MAX */
#define TASK_COST_LOOKBACK_SEC 3600 /* the metrics never observe further back than this */
#define TASK_COST_BUCKETS 13        /* histogram upper bounds in USD, +Inf apart */

/* The histogram's upper bounds (USD), ascending: from a 5-second job on a cheap card to a long
 * video job on an H100. */
extern const double TASK_COST_BOUNDS[TASK_COST_BUCKETS];

typedef struct {
    char pool[SNAP_POOL_NAME_MAX];
    char task_type[SNAP_NAME_MAX];
    int bucket; /* index of the first bound >= cost (TASK_COST_BUCKETS: above all); -1 none */
    long long tasks;
    double usd;         /* summed cost of those tasks */
    double runtime_sec; /* summed runtime */
    long long unpriced; /* tasks whose worker had no price (counted at $0) */
} TaskCostType;

typedef struct {
    char pool[SNAP_POOL_NAME_MAX];
    double gpu_usd;  /* the pool's workers' alive time in the window x their price */
    double busy_usd; /* the part of it a task was running in */
} TaskCostPool;

typedef struct {
    bool observed;   /* the read happened (task_cost_observe: the window moved) */
    double lo_epoch; /* the window (lo, hi], database clock */
    double hi_epoch;
    size_t n_types;
    TaskCostType types[TASK_COST_ROWS_MAX];
    bool types_truncated;
    size_t n_pools;
    TaskCostPool pools[TASK_COST_POOLS_MAX];
} TaskCostReport;

/* The last window_sec seconds up to the database's now(), for each of the n windows (status:
 * 3600 and 86400), in one statement; out[i] gets window i, grouped by (pool, task_type).
 * Returns STATUS_OK (out written), STATUS_ERR_DB (logged). n is at most 4. */
Status task_cost_load(PGconn *conn, const long long *window_sec, size_t n, TaskCostReport *out);

/* The interval since the last observation (orchestrator_state.cost_observed_until; the first
 * one covers first_window_sec, none goes back further than TASK_COST_LOOKBACK_SEC, and the
 * last 10 s are left to the next one so a completion still committing is not missed), grouped
 * by (pool, task_type, bucket), and moves the watermark to its end, in one statement. Call it
 * only under the cycle lease, never in a dry run (it writes). out->observed is false when the
 * watermark did not move (observed less than 10 s ago, or moved concurrently). Returns
 * STATUS_OK or STATUS_ERR_DB (logged). */
Status task_cost_observe(PGconn *conn, long long first_window_sec, TaskCostReport *out);

/* The report as JSON: {"window_sec", "tasks", "task_cost_usd", "gpu_cost_usd", "idle_cost_usd",
 * "unpriced_tasks", "truncated", "by_type": [{"pool", "task_type", "tasks", "cost_usd",
 * "avg_cost_usd", "avg_runtime_sec"}], "by_pool": [{"pool", "tasks", "task_cost_usd",
 * "gpu_cost_usd", "busy_cost_usd", "idle_cost_usd"}]}; histogram buckets are merged. Returns a
 * new object (caller deletes) or NULL when out of memory. */
cJSON *task_cost_json(const TaskCostReport *r);

/* Totals of a report: tasks, their cost, GPU cost, idle cost (GPU - busy, never below 0).
 * Cannot fail. */
void task_cost_totals(const TaskCostReport *r, long long *tasks, double *task_usd, double *gpu_usd,
                      double *idle_usd);

/* A pool's idle cost in r: gpu - busy, never below 0. Cannot fail. */
double task_cost_idle(const TaskCostPool *p);

#endif
