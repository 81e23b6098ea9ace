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
