/* snapshot.h -- plain data: the world at one tick, as the planner sees it.
 *
 * Filled by db_load_snapshot() (and, when due, the RunPod pod list) in the shell; read by the
 * pure planner. Every age is computed by PostgreSQL from its own now(), so the planner never
 * compares clocks. Ages are in seconds; -1 means "never" / "unknown".
 */
#ifndef ORCH_SNAPSHOT_H
#define ORCH_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog.h"
#include "ratelimit.h"

#define SNAP_WORKERS_MAX 1024
#define SNAP_TASKS_MAX 4096
#define SNAP_PODS_MAX 2048
#define SNAP_GPU_BACKOFF_MAX 32
#define SNAP_ID_MAX 64         /* RunPod pod ids */
#define SNAP_WORKER_ID_MAX 256 /* workers.id: ours are ~30 bytes, rows of others may be longer */
#define SNAP_TASK_ID_MAX 40
#define SNAP_NAME_MAX 128
#define SNAP_POOL_NAME_MAX 32 /* CONFIG_POOL_NAME_MAX */
/* Every run type a pool serves (at most 16 pools x 16 run types) and the SNAP_UNSERVED_NAMED
 * unserved run types with the most Queued tasks; the other unserved ones are summed. */
#define SNAP_UNSERVED_NAMED 16
#define SNAP_RUN_TYPES_MAX (16 * 16 + SNAP_UNSERVED_NAMED)
#define SNAP_POOLS_MAX 64 /* pools named by worker rows (configured, or removed since) */
#define SNAP_GPU_PRICES_MAX 64
#define SNAP_CATALOG_MAX 256      /* cached catalog entries of the configured GPU types */
#define SNAP_CATALOG_SCOPES_MAX 4 /* clouds (x the data-center filter) the pools use */
#define SNAP_SCOPE_MAX 40         /* CATALOG_SCOPE_MAX */
#define SNAP_GPU_STATS_MAX 256    /* (pool, GPU type) task-duration figures */

typedef enum {
    WORKER_INACTIVE = 0,
    WORKER_SPAWNING,
    WORKER_ACTIVE,
    WORKER_TERMINATING,
    WORKER_ERROR,
    WORKER_TERMINATED,
    WORKER_CRASHED,
    WORKER_STOPPED, /* its pod is stopped: a warm pod, started again on a scale-up (issue 16) */
} WorkerState;

typedef struct {
    char id[SNAP_WORKER_ID_MAX];
    char pool[SNAP_POOL_NAME_MAX]; /* workers.pool */
    WorkerState state;
    char runpod_id[SNAP_ID_MAX];   /* "" = no pod id recorded yet */
    long long age_sec;             /* since created_at */
    long long heartbeat_age_sec;   /* since last_heartbeat; -1 never */
    bool heartbeat_after_create;   /* last_heartbeat > created_at */
    long long promoted_age_sec;    /* since promoted_at; -1 not promoted */
    long long activity_age_sec;    /* since last_task_activity_at; -1 never had a task */
    long long terminating_age_sec; /* since the move to terminating; -1 unknown */
    long long vram_total_mb;       /* -1 unknown (never reported) */
    long long vram_used_mb;        /* -1 unknown */
    double cost_per_hr;            /* 0 unknown */
    char gpu_type[SNAP_NAME_MAX];
    /* Computed in SQL over every In Progress task, so they hold however many tasks run: */
    long long tasks_held;                  /* In Progress tasks this worker holds */
    char oldest_task_id[SNAP_TASK_ID_MAX]; /* its oldest non-exempt one; "" none */
    long long oldest_task_age_sec;         /* since its generation_started_at; -1 none */
    bool create_unknown; /* spawning, no pod id, its create's outcome unknown (may exist) */
    long long create_unknown_age_sec; /* since its create's ambiguous answer; -1 none */
    long long pod_age_sec; /* since its pod id was recorded (created_at for older rows); -1 none */
    bool id_too_long;      /* workers.id longer than SNAP_WORKER_ID_MAX - 1: not addressable, so
                              nothing is done to it (it still counts toward MAX) */
    /* Stopped pods and billing (issue 16; db_lifecycle.c). Zero is "none", so snapshots built
     * without these facts (tests, the simulator) mean what they always meant: */
    long long stopped_age_sec; /* status stopped: since its pod was stopped */
    bool restarted;            /* its stopped pod was started again (this life began then) */
    long long restart_age_sec; /* when restarted: since that start */
    double billed_usd_per_hr;  /* what RunPod billed for its pod in the last complete hour of
                                  the last good billing read; 0 none known */
} SnapWorker;

typedef struct {
    char id[SNAP_TASK_ID_MAX];
    char worker_id[SNAP_WORKER_ID_MAX]; /* "" = none */
    char task_type[SNAP_NAME_MAX];
    char run_type[SNAP_NAME_MAX]; /* decides which pool's queue a recovered task joins */
    bool exempt;                  /* task_type matches STUCK_EXEMPT_TASK_TYPES */
    long long age_sec;            /* since generation_started_at; -1 unknown */
    int attempts;
    int max_attempts;     /* 0 = not set: MAX_TASK_ATTEMPTS applies */
    bool holder_known;    /* worker_id names a row of workers (live or ended): one of ours */
    bool holder_too_long; /* worker_id longer than SNAP_WORKER_ID_MAX - 1: left alone */
} SnapTask;               /* an In Progress task */

typedef enum {
    SNAP_POD_UNKNOWN = 0,
    SNAP_POD_PROVISIONING,
    SNAP_POD_STARTING,
    SNAP_POD_RUNNING,
    SNAP_POD_EXITED,
    SNAP_POD_ERROR,
    SNAP_POD_TERMINATED,
} SnapPodStatus;

typedef struct {
    char id[SNAP_ID_MAX];
    char name[SNAP_NAME_MAX]; /* "" when RunPod's name could not be read */
    SnapPodStatus status;
    long long age_sec; /* from RunPod's createdAt against the database clock, or from when this
                          system first saw the pod when createdAt is unreadable; -1 unknown */
    double cost_per_hr;
    char gpu_type[SNAP_NAME_MAX];
    bool partial;   /* a field of the entry was unreadable (kept with its default) */
    bool ended_row; /* its name is a worker row that has ended: ours, and unwanted */
} SnapPod;

typedef struct {
    char gpu_type[SNAP_NAME_MAX];
    long long remaining_sec; /* backoff left; > 0 means do not try this type */
    int failures;
} SnapGpuBackoff;

/* Queued tasks of one run_type (demand is counted per run type, set-based, and mapped to pools
 * by the planner). */
typedef struct {
    char name[SNAP_NAME_MAX];
    long long claimable; /* Queued, dependencies complete, available_at passed */
    long long queued;    /* every Queued task */
    long long oldest_queued_age_sec;
} SnapRunType;

/* The last price RunPod charged for a pod of a GPU type in a cloud (gpu_prices). */
typedef struct {
    char gpu_type[SNAP_NAME_MAX];
    char cloud_type[16]; /* SECURE or COMMUNITY: the same type is priced differently in each */
    double usd_per_hr;
} SnapGpuPrice;

/* The run types worker_pools lets a pool's workers claim, as the database holds them (comma
 * list), so the loop can tell whether the configuration changed. */
typedef struct {
    char pool[SNAP_POOL_NAME_MAX];
    char run_types[1024];
} SnapPoolClaims;

/* Workers of one pool that ended within FAILURE_WINDOW_MINUTES (the per-pool breaker). */
typedef struct {
    char pool[SNAP_POOL_NAME_MAX];
    long long ended;
    long long unexpected;
} SnapPoolEndings;

/* One cached catalog read (runpod_catalog_reads): a cloud and data-center filter. */
typedef struct {
    char scope[SNAP_SCOPE_MAX]; /* catalog_scope(): "SECURE", "COMMUNITY@<hash>" */
    long long age_sec;          /* since the last successful read; -1 never */
    long long attempt_age_sec;  /* since the last read attempted; -1 never */
    bool last_failed;           /* the last attempt failed (its entries are older) */
    char error[128];            /* why, when it failed */
} SnapCatalogScope;

/* One GPU type of a cached catalog read (runpod_gpu_catalog). */
typedef struct {
    char scope[SNAP_SCOPE_MAX];
    char gpu_type[SNAP_NAME_MAX];
    GpuStock stock;
    GpuLevel availability;
    double price_per_hr; /* -1 unknown */
} SnapCatalogEntry;

/* Completed tasks of one pool on one GPU type (gpu_type "" = on any type) within
 * RUNPOD_VALUE_WINDOW_HOURS: how many, and their median duration (the `value` choice). */
typedef struct {
    char pool[SNAP_POOL_NAME_MAX];
    char gpu_type[SNAP_NAME_MAX];
    long long samples;
    double median_sec;
} SnapGpuStat;
/* What the adaptive policies (issue 15) measure of one run type, from its tasks (filled only
 * when one of them is on; db_load_snapshot, one set-based statement). */
typedef struct {
    char name[SNAP_NAME_MAX];
    long long arrivals_rate;        /* tasks created within ADAPTIVE_RATE_WINDOW_SEC */
    long long warm_peak;            /* most tasks created within ADAPTIVE_WARM_WINDOW_SEC up to a
                                       task created within ADAPTIVE_WARM_DEMOTE_SEC (0 none) */
    long long last_arrival_age_sec; /* since its newest task; -1 none within the demote window */
    double median_duration_sec;     /* of its last 50 completed tasks; -1 none */
} SnapArrivals;

/* The measured cold start of one pool: creation to promotion of its last 20 promoted workers. */
typedef struct {
    char pool[SNAP_POOL_NAME_MAX];
    double median_boot_sec; /* -1 none */
    long long boots;        /* how many that median is of */
} SnapPoolBoot;

/* The adaptive policies' measured inputs (see SnapArrivals, SnapPoolBoot). */
typedef struct {
    bool measured; /* false: not loaded (no adaptive policy on): the policies stay neutral */
    size_t n_arrivals;
    SnapArrivals arrivals[SNAP_RUN_TYPES_MAX];
    size_t n_boots;
    SnapPoolBoot boots[SNAP_POOLS_MAX];
} SnapMeasures;

typedef struct {
    double now_epoch;       /* database now(), seconds since the epoch */
    long long cycle_number; /* this cycle's number (persisted counter + 1) */

    /* demand */
    long long queued_claimable; /* Queued, deps complete, available_at passed (any run_type) */
    long long queued_total;     /* every Queued task */
    long long oldest_queued_age_sec;
    long long in_progress_total;
    size_t n_run_types; /* the same, per run_type (the run types that have Queued tasks) */
    SnapRunType run_types[SNAP_RUN_TYPES_MAX];
    bool run_types_truncated; /* more run types than SNAP_RUN_TYPES_MAX: the rest are unseen */
    long long unserved_other_types;  /* unserved run types beyond the named ones: how many, */
    long long unserved_other_queued; /* and their Queued tasks */

    /* fleet: every worker row that is not terminated */
    size_t n_workers;
    SnapWorker workers[SNAP_WORKERS_MAX];
    bool workers_truncated; /* more live rows than SNAP_WORKERS_MAX: act on nothing */

    /* In Progress tasks (bounded; the oldest first). Only the recovery of tasks reads this list;
     * per-worker facts come from SnapWorker, computed over every task. */
    size_t n_tasks;
    SnapTask tasks[SNAP_TASKS_MAX];
    bool tasks_truncated;

    /* persisted controller state */
    long long since_reconcile_sec; /* -1 never */
    long long since_success_sec;   /* since the last successful cycle; -1 never */
    long long ended_in_window;     /* workers that ended within FAILURE_WINDOW_MINUTES */
    long long unexpected_in_window;
    size_t n_pool_endings; /* the same, per pool */
    SnapPoolEndings pool_endings[SNAP_POOLS_MAX];
    size_t n_pool_claims; /* worker_pools, as the database holds it */
    SnapPoolClaims pool_claims[SNAP_POOLS_MAX];
    bool breaker_was_open;
    double max_known_pod_cost; /* highest cost_per_hr seen for a pod (spend-cap estimate) */

    size_t n_backoffs;
    SnapGpuBackoff backoffs[SNAP_GPU_BACKOFF_MAX];
    size_t n_prices; /* known prices per GPU type (the spend cap's bound on a new pod) */
    SnapGpuPrice prices[SNAP_GPU_PRICES_MAX];

    /* RunPod pods, listed when reconcile is due or a spawning worker needs its pod checked */
    bool pods_listed;
    size_t n_pods;
    SnapPod pods[SNAP_PODS_MAX];
    size_t pods_foreign; /* listed pods neither of our name shape nor a live row's pod: not kept */
    size_t pods_skipped; /* list entries dropped (no usable id) */
    size_t pods_partial; /* list entries kept with an unreadable field */

    /* RunPod's GPU catalog as cached in the database (issue 16): per scope, and per type */
    size_t n_catalog_scopes;
    SnapCatalogScope catalog_scopes[SNAP_CATALOG_SCOPES_MAX];
    size_t n_catalog;
    SnapCatalogEntry catalog[SNAP_CATALOG_MAX];
    /* task durations per (pool, GPU type): loaded only when a `value` choice needs them */
    bool gpu_stats_loaded;
    size_t n_gpu_stats;
    SnapGpuStat gpu_stats[SNAP_GPU_STATS_MAX];
    /* RunPod's rate-limit quota: what this process saw last, else what the last run persisted
     * (runpod_rate_limit), with its age */
    RateQuota quota;
    /* RunPod billing (issue 16 item 2; runpod_billing, db_lifecycle.c): the last good read of
     * GET /v2/billing/pods while its complete hour is recent enough to describe the fleet. */
    bool billing_known;
    bool billing_attempted;                /* a read was ever attempted */
    long long billing_attempt_age_sec;     /* since the last read attempt (paces the reads) */
    long long billing_read_age_sec;        /* since the last good read; -1 never */
    double billing_total_usd_per_hr;       /* every pod billed in that hour */
    double billing_unexplained_usd_per_hr; /* pods billed that no worker row (live or ended)
                                              records: pods this system cannot see */
    SnapMeasures measures;                 /* the adaptive policies' inputs (issue 15) */
} Snapshot;

/* Lower-case database name of a worker state ("spawning", ...). Cannot fail. */
const char *worker_state_str(WorkerState s);

/* Parses a database worker_status; returns 0 and sets *out, or -1. */
int worker_state_parse(const char *s, WorkerState *out);

#endif
