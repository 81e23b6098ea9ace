/* metrics.h -- Prometheus metrics of the control cycle (SPEC section 9).
 *
 * Shell module. A MetricsState holds the gauges of the last cycle and the counters of the
 * process (plus, when METRICS_FILE is set, the counters of the earlier runs restored from the
 * file). metrics_observe_cycle() updates it from one cycle's plan and actuator outcomes;
 * metrics_render() turns it into the Prometheus text exposition format 0.0.4 (prefix
 * `gpu_orchestrator_`). No I/O except metrics_file_load() and metrics_file_write(); no logging
 * except from those two. Labels are low-cardinality names (planner reasons, cycle results,
 * worker and task states, the configured pool names): never worker, pod or task ids, never
 * other configuration values. metrics.c keeps the state; metrics_text.c renders it and reads
 * and writes the textfile. See structure_docs/metrics.md for every family.
 */
#ifndef ORCH_METRICS_H
#define ORCH_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "actuator.h"
#include "config.h"
#include "planner.h"
#include "snapshot.h"
#include "status.h"
#include "task_cost.h"

#define METRICS_PREFIX "gpu_orchestrator_"
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"
#define METRICS_LABELS_MAX 256 /* label sets per counter family; more fold into "other" */
#define METRICS_LABEL_MAX 48
#define METRICS_POOL_MAX 32                          /* SNAP_POOL_NAME_MAX */
#define METRICS_POOLS_MAX (PLAN_POOLS_MAX + 1)       /* the configured pools and METRICS_NO_POOL */
#define METRICS_UNSERVED_MAX (PLAN_UNSERVED_MAX + 1) /* named run types and "other" */
#define METRICS_FILE_MAX_BYTES (1u << 20)
/* The pool label of what belongs to no configured pool: a leaked pod, a worker of a pool removed
 * from POOLS, a task held by neither. Pool names are [a-z0-9_], so it never names a pool. */
#define METRICS_NO_POOL "(none)"

/* One counter family: a bounded list of (label value, pool, count). pool is "" in a family
 * without the pool label, else a configured pool name or METRICS_NO_POOL. */
typedef struct {
    size_t count;
    struct {
        char label[METRICS_LABEL_MAX];
        char pool[METRICS_POOL_MAX];
        double value;
    } samples[METRICS_LABELS_MAX];
} MetricsCounter;

/* One pool's gauges of the last cycle (the plan's PlanPool), or the fleet's remainder that no
 * configured pool holds (name METRICS_NO_POOL, configured false). */
typedef struct {
    char name[METRICS_POOL_MAX];
    bool configured;
    long long spawning, active, idle, busy, terminating;
    long long stopped;       /* warm stopped pods (issue 16): never capacity */
    long long tasks_queued;  /* claimable tasks of its run types, plus those re-queued */
    long long tasks_running; /* In Progress tasks its workers hold */
    long long oldest_queued_age_sec;
    long long desired;
    bool breaker_open;
    SpawnLimit spawn_limit;
    double cost_per_hr;
} MetricsPool;

/* One series of the task cost histogram (issue 17): cumulative counts per upper bound of
 * TASK_COST_BOUNDS, then the +Inf count and the sum. */
typedef struct {
    char pool[METRICS_POOL_MAX];
    char task_type[METRICS_LABEL_MAX];
    double le[TASK_COST_BUCKETS];
    double count;
    double sum;
} MetricsCostSeries;

/* (pool, task_type) series of the histogram; a new one beyond this folds into (pool, other),
 * which may always be added (at most one per pool label value). */
#define METRICS_COST_SERIES_MAX 48

/* What alerts compare against and what reconcile found (metrics_ops.c, issue 17). */
typedef struct {
    double poll_interval_sec;      /* ORCHESTRATOR_POLL_SEC, or continuous's --interval */
    double reconcile_interval_sec; /* RECONCILE_INTERVAL_SEC */
    double fleet_spend_cap_usd;    /* MAX_HOURLY_SPEND_USD; 0 = off */
    double pool_spend_cap_usd[PLAN_POOLS_MAX]; /* each pool's, by pool_names index; 0 = off */
    long long orphan_grace_sec;                /* ORPHAN_POD_GRACE_SEC */
    char worker_prefix[40];                    /* WORKER_ID_PREFIX: which pods are ours */
    double last_reconcile_epoch;    /* from orchestrator_state (database clock); 0 unknown */
    bool pods_known;                /* a pod list was read (this run, or the textfile's) */
    long long leaked_within_grace;  /* pods of ours no live row owns, younger than the grace */
    long long leaked_past_grace;    /* ... past ORPHAN_POD_GRACE_SEC and not terminated */
    long long workers_vanished;     /* live rows whose recorded pod the list does not show */
    long long gpu_types_backed_off; /* GPU types in capacity backoff (last snapshot) */
    size_t n_cost;
    MetricsCostSeries cost[METRICS_COST_SERIES_MAX + METRICS_POOLS_MAX];
} MetricsOps;
/* RunPod's rate limit and GPU catalog as the last cycle left them (metrics_runpod.c). */
typedef struct {
    bool quota_seen; /* a RateLimit field was ever seen (this run, or persisted) */
    bool malformed;
    long long remaining; /* -1 unknown */
    double reset_in_sec; /* -1 unknown */
    size_t n_windows;
    struct {
        char name[24]; /* [a-z0-9_] or "other" */
        long long remaining, quota;
    } windows[RATE_WINDOWS_MAX];
    size_t n_scopes;
    struct {
        char scope[SNAP_SCOPE_MAX];
        long long age_sec;
        bool failed;
    } scopes[SNAP_CATALOG_SCOPES_MAX];
} MetricsRunpod;

/* Everything /metrics and the textfile show. Plain data: copy it by assignment. */
typedef struct MetricsState {
    /* from the configuration */
    long long workers_min;
    long long workers_max;
    bool safe_mode;
    size_t n_pool_names; /* the configured pools: the only pool label values besides (none) */
    char pool_names[PLAN_POOLS_MAX][METRICS_POOL_MAX];

    /* gauges of the last cycle whose snapshot loaded (fleet_known false until one did: an
     * unknown fleet is never reported as zero workers) */
    bool fleet_known;
    size_t n_pools; /* the configured pools in POOLS order, then METRICS_NO_POOL when used */
    MetricsPool pools[METRICS_POOLS_MAX];
    long long tasks_queued_all;   /* every Queued task */
    long long tasks_foreign_held; /* In Progress tasks held by a claimer that is not ours */
    size_t n_unserved;            /* Queued tasks of run types no pool serves, by run type */
    struct {
        char run_type[METRICS_LABEL_MAX]; /* the run type, or "other" (see metrics.md) */
        long long queued;
    } unserved[METRICS_UNSERVED_MAX];
    /* issue 16: the fleet's cost from prices alone, and what RunPod billed (billing_known) */
    double spend_estimated;
    bool billing_known;
    double spend_billed;

    /* the last cycle of any result */
    bool cycle_seen;
    double cycle_duration_sec;
    double last_success_epoch; /* wall clock of the last STATUS_OK cycle; 0 = none known */

    /* counters (process lifetime, plus what metrics_file_load restored) */
    MetricsCounter pods_created; /* reason: backlog, min_floor, keep_idle; pool */
    MetricsCounter
        pod_create_failures;         /* reason: no_capacity, outcome_unknown, <api class>; pool */
    MetricsCounter pods_terminated;  /* reason: drained, error_cleanup, ...; pool */
    MetricsCounter workers_failed;   /* reason: stale_heartbeat, stuck_task, ... */
    MetricsCounter tasks_recovered;  /* outcome: requeued, failed */
    MetricsCounter cycles;           /* result: ok, locked, database, runpod_api, partial... */
    MetricsCounter pod_list_defects; /* kind: skipped (no usable id), partial (a bad field) */
    MetricsCounter pod_list_reads;   /* result: ok, failed (issue 17) */
    MetricsCounter worker_cost;      /* use: busy, idle; pool (issue 17) */
    MetricsOps ops;                  /* issue 17: limits, intervals, reconcile, task cost */
    MetricsCounter spawns_deferred;  /* reason: rate_limit (issue 16) */
    MetricsCounter catalog_reads;    /* result: ok, failed (issue 16) */
    MetricsRunpod runpod;            /* gauges of RunPod's rate limit and catalog */
    MetricsCounter warm_pool;        /* event: stopped, started, start_refused, stop_failed */
    MetricsCounter pod_log_reads;    /* outcome: read, failed */
} MetricsState;

/* Initialises m from a validated configuration: gauges unknown, counters at zero for every
 * label value known in advance (so rate() sees the first increment). Cannot fail. */
void metrics_init(MetricsState *m, const Config *cfg);

/* Allocates and initialises a state (metrics_init). Returns STATUS_OK and sets *out (caller
 * frees with metrics_free), or STATUS_ERR_NOMEM. */
Status metrics_new(const Config *cfg, MetricsState **out);

/* Frees a state from metrics_new; NULL-safe. */
void metrics_free(MetricsState *m);

/* Records one cycle. m may be NULL (metrics off: nothing happens). snap and plan are read only
 * when the snapshot loaded (snap non-NULL with a cycle number), since the planner ran exactly
 * then; otherwise the fleet gauges keep their last known values. act is the actuator's result,
 * NULL when nothing was applied (dry run, SAFE_MODE, early failure). st is the cycle's status
 * (cycles_total{result}); STATUS_OK also sets last_success to the wall clock. Cannot fail. */
void metrics_observe_cycle(MetricsState *m, const Snapshot *snap, const Plan *plan,
                           const ActResult *act, Status st, double duration_sec);

/* The poll interval continuous runs with (--interval overrides ORCHESTRATOR_POLL_SEC), for
 * gpu_orchestrator_poll_interval_seconds. m may be NULL. Cannot fail. */
void metrics_set_poll_interval(MetricsState *m, int interval_sec);

/* Counts one read of RunPod's pod list (pod_list_reads_total{result}). m may be NULL. */
void metrics_count_pod_list(MetricsState *m, bool ok);

/* Adds an observation of task_cost_observe() to the task cost histogram and the busy/idle
 * worker cost counters. Nothing happens when r was not observed or m is NULL. Cannot fail. */
void metrics_observe_task_costs(MetricsState *m, const TaskCostReport *r);
/* Records RunPod's rate-limit quota as the cycle left it (q; NULL keeps the last) and the
 * ages of the cached catalog reads (snap; NULL keeps them). m may be NULL. Cannot fail. */
void metrics_observe_runpod(MetricsState *m, const RateQuota *q, const Snapshot *snap);

/* Counts one read of RunPod's GPU catalog (gpu_catalog_reads_total{result}). m may be NULL. */
void metrics_count_catalog_read(MetricsState *m, bool ok);

/* The RunPod gauges (rate limit, catalog ages) as exposition text; metrics_render appends it.
 * Returns a malloc'd string (caller frees), or NULL when out of memory. */
char *metrics_runpod_render(const MetricsState *m);

/* Renders m in the text exposition format 0.0.4, HELP and TYPE lines for each family.
 * Returns a malloc'd NUL-terminated string (caller frees), or NULL when out of memory. */
char *metrics_render(const MetricsState *m);

/* Restores the counters and last_success of an earlier run from a textfile this module wrote
 * (so counters of `single`, a fresh process per run, keep counting across runs). Unknown
 * families, gauges and malformed lines are ignored. Returns STATUS_OK, STATUS_ERR_NOT_FOUND
 * when the file does not exist (nothing restored: counters start at zero), or STATUS_ERR_PARSE
 * when it cannot be read or is larger than METRICS_FILE_MAX_BYTES (logged). m may be NULL. */
Status metrics_file_load(MetricsState *m, const char *path);

/* Writes metrics_render(m) to path atomically for node_exporter's textfile collector: to
 * "<path>.tmp.<pid>", fsync, rename over path, fsync the directory. A no-op returning
 * STATUS_OK when m is NULL or path is NULL or empty. Returns STATUS_ERR_INTERNAL when a step
 * fails (logged as metrics.write_failed; the temporary file is removed), STATUS_ERR_NOMEM. */
Status metrics_file_write(const MetricsState *m, const char *path);

/* The value of the samples of a family with label value label, summed over every pool (0 when
 * absent). For tests and the HTTP module. Cannot fail. */
double metrics_counter_get(const MetricsCounter *c, const char *label);

/* The value of the one sample with label value label and pool pool (0 when absent). Cannot
 * fail. */
double metrics_counter_get_pool(const MetricsCounter *c, const char *label, const char *pool);

#endif
