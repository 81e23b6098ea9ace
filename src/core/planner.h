/* planner.h -- pure: planner_decide() turns (snapshot, policy) into a Plan.
 *
 * Reads only its arguments: no clock, environment, I/O, allocation or logging. Every action
 * carries a machine-readable Reason; the shell logs them, prints them (--dry-run, SAFE_MODE)
 * and applies them (actuator). The rules are SPEC section 6, steps 1-7, in that order.
 */
#ifndef ORCH_PLANNER_H
#define ORCH_PLANNER_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "gpu_choice.h"
#include "snapshot.h"

#define PLAN_MAX_ACTIONS 4096
#define PLAN_DETAIL_MAX 160
#define PLAN_GPU_TYPES_MAX 16
#define PLAN_POOLS_MAX 16 /* CONFIG_POOLS_MAX */
#define PLAN_RUN_TYPES_MAX 16
#define PLAN_UNSERVED_MAX 8

typedef enum {
    ACTION_PROMOTE_WORKER = 1, /* spawning -> active */
    ACTION_FAIL_WORKER,        /* spawning|active|crashed -> error (detail = error_reason) */
    ACTION_RECOVER_TASK,       /* In Progress -> Queued (attempt counted) or Failed */
    ACTION_DRAIN_WORKER,       /* active -> terminating, proving it holds no task */
    ACTION_TERMINATE_WORKER,   /* terminate its pod, then -> terminated */
    ACTION_SPAWN_WORKER,       /* insert a spawning row, create its pod, record the pod id */
    ACTION_ADOPT_POD,          /* record the pod id of a spawning row that has none */
    ACTION_TERMINATE_POD,      /* a leaked pod: ours by name, no live worker row */
    ACTION_STOP_WORKER,        /* issue 16: stop a drained worker's pod (warm pool), -> stopped;
                                  the pod is terminated instead when the stop fails */
    ACTION_START_WORKER,       /* issue 16: stopped -> spawning, start its pod (a scale-up slot); a
                                  start that is refused becomes a fresh create in the same slot */
} ActionKind;

typedef enum {
    REASON_NONE = 0,
    REASON_FIRST_HEARTBEAT,
    REASON_NO_POD_ID,
    REASON_POD_ERROR,
    REASON_POD_EXITED,
    REASON_POD_TERMINATED,
    REASON_POD_GONE,
    REASON_SPAWNING_TIMEOUT,
    REASON_STALE_HEARTBEAT,
    REASON_STUCK_TASK,
    REASON_GPU_NOT_VISIBLE,
    REASON_WORKER_CRASHED,
    REASON_WORKER_FAILED,    /* task recovery: its worker failed or is gone */
    REASON_GRACEFUL_TIMEOUT, /* task recovery / termination after GRACEFUL_SHUTDOWN_TIMEOUT */
    REASON_IDLE,             /* scale-down */
    REASON_DRAINED,          /* terminating worker holds no task */
    REASON_ERROR_CLEANUP,    /* error worker's pod */
    REASON_BACKLOG,          /* scale-up for queued tasks */
    REASON_MIN_FLOOR,        /* scale-up to MIN_ACTIVE_GPUS */
    REASON_KEEP_IDLE,        /* scale-up for MACHINES_TO_KEEP_IDLE */
    REASON_LEAKED_POD,
    REASON_ADOPT_ORPHAN_POD,
    REASON_OPERATOR,        /* spawn, terminate, shutdown-all by hand */
    REASON_LEGACY_INACTIVE, /* a legacy `inactive` row: its pod terminated, the row ended */
    REASON_MIN_REBALANCE,   /* drained so that a pool below its MIN gets a slot of a full fleet */
    REASON_WARM_POOL,       /* a drained worker's pod stopped, not terminated (WARM_STOPPED_PODS) */
    REASON_STOPPED_EXPIRED, /* a stopped pod older than STOPPED_POD_MAX_AGE_SEC */
    REASON_STOPPED_EXCESS,  /* more stopped pods in its pool than WARM_STOPPED_PODS */
    REASON_STOPPED_POOL_GONE, /* a stopped pod of a pool no longer configured */
    REASON_STOPPED_POD_STATE, /* a stopped worker whose pod RunPod shows running, failed or gone
                                 (someone else started or removed it) */
    REASON_PREDICTED_BACKLOG, /* scale-up for the backlog expected one cold start from now */
    REASON_STOPPED_TYPE_GONE, /* a stopped pod of a GPU type no longer configured for its pool */
} Reason;

/* Why scale-up spawned fewer workers than desired (SPAWN_LIMIT_NONE when it did not). */
typedef enum {
    SPAWN_LIMIT_NONE = 0,
    SPAWN_LIMIT_MAX_ACTIVE,      /* MAX_ACTIVE_GPUS counting spawning and terminating pods */
    SPAWN_LIMIT_BREAKER,         /* failure-rate circuit breaker open */
    SPAWN_LIMIT_SPEND_CAP,       /* MAX_HOURLY_SPEND_USD */
    SPAWN_LIMIT_GPU_BACKOFF,     /* every GPU type is in capacity backoff */
    SPAWN_LIMIT_UNSAFE_SNAPSHOT, /* snapshot truncated: act on nothing */
    SPAWN_LIMIT_FLEET_CEILING,   /* the fleet's MAX_ACTIVE_GPUS, shared with the other pools */
    SPAWN_LIMIT_OUT_OF_STOCK,    /* the fresh catalog shows every usable GPU type out of stock */
    SPAWN_LIMIT_RATE_LIMIT,      /* RunPod's rate-limit quota: the rest waits for later cycles */
} SpawnLimit;

typedef struct {
    ActionKind kind;
    Reason reason;
    char worker_id[SNAP_WORKER_ID_MAX];
    char pod_id[SNAP_ID_MAX];
    char task_id[SNAP_TASK_ID_MAX];
    WorkerState from_state; /* compare-and-swap guard for worker updates */
    bool task_to_failed;    /* RECOVER_TASK: attempts exhausted -> Failed */
    bool unexpected;        /* FAIL_WORKER: counts toward the circuit breaker */
    bool force;             /* DRAIN_WORKER by an operator: no proof that it holds no task */
    char detail[PLAN_DETAIL_MAX];
    char gpu_type[SNAP_NAME_MAX]; /* ADOPT_POD: the pod's GPU type, as RunPod lists it */
    double cost_per_hr;           /* ADOPT_POD: the pod's price (0 unknown), for the spend cap */
    int pool;                     /* SPAWN_WORKER: index into Policy.pools and Plan.pools */
    bool pod_unconfirmed; /* TERMINATE_WORKER without a pod id, yet a pod may still surface */
    bool fetch_logs;      /* TERMINATE_WORKER of a failed (error/crashed) worker: read the tail of
                             its pod's log first (bounded), for `logs --worker` */
} Action;

/* What an operator's request found (MANUAL_RESULT_NONE for a cycle). */
typedef enum {
    MANUAL_RESULT_NONE = 0,
    MANUAL_RESULT_WORKER,    /* terminate: a live worker (by worker id or its pod id) */
    MANUAL_RESULT_POD,       /* terminate: a pod of ours that no live row owns */
    MANUAL_RESULT_NOT_FOUND, /* terminate: no live worker and no listed pod of ours by that id */
    MANUAL_RESULT_NOT_OURS,  /* terminate: a listed pod whose name is not of our worker shape */
    MANUAL_RESULT_NO_POOL,   /* spawn: no such pool (or several pools and none named) */
} ManualResult;

/* One pool's part of the policy (issue 14). */
typedef struct {
    char name[SNAP_POOL_NAME_MAX];
    size_t n_run_types;
    char run_types[PLAN_RUN_TYPES_MAX][SNAP_NAME_MAX];
    int min_active;
    int max_active;
    int tasks_per_gpu;
    int keep_idle;
    long long idle_timeout_sec;
    long long stuck_timeout_sec;
    long long spawning_timeout_sec;
    long long grace_period_sec;
    double max_hourly_spend; /* 0 = off */
    char cloud_type[16];     /* SECURE or COMMUNITY: which of gpu_prices' prices applies */
    size_t n_gpu_types;
    char gpu_types[PLAN_GPU_TYPES_MAX][SNAP_NAME_MAX];
    char catalog_scope[SNAP_SCOPE_MAX]; /* catalog_scope() of its cloud and the data centers */
    int warm_stopped;                   /* WARM_STOPPED_PODS: drained pods kept stopped (0 = off) */
    double stopped_cost_per_hr;         /* what one stopped pod costs per hour (its disk) */
} PolicyPool;

/* The policy: the part of Config the planner needs, as plain numbers. The flat fields are the
 * global settings: max_active and max_hourly_spend are the fleet-wide ceilings, and the rest is
 * what workers of a pool that is no longer configured are held to (they get MIN 0, MAX 0: they
 * finish their work and go). Every configured pool has its own entry in pools. */
typedef struct {
    int min_active;
    int max_active;
    int tasks_per_gpu;
    int keep_idle;
    long long idle_timeout_sec;
    long long stuck_timeout_sec;
    long long spawning_timeout_sec;
    long long graceful_timeout_sec;
    long long grace_period_sec;
    long long pod_id_grace_sec;
    long long pod_not_found_grace_sec;
    int max_task_attempts;
    double max_failure_rate;
    long long min_workers_for_rate;
    double max_hourly_spend;
    long long reconcile_interval_sec;
    long long orphan_pod_grace_sec;
    char worker_prefix[33];
    size_t n_gpu_types;
    char gpu_types[PLAN_GPU_TYPES_MAX][SNAP_NAME_MAX];
    size_t n_pools;
    PolicyPool pools[PLAN_POOLS_MAX];
    /* issue 16: the order of GPU types, and RunPod's rate limit */
    GpuChoicePolicy gpu_choice;
    long long catalog_ttl_sec; /* 0 = no catalog */
    long long value_min_samples;
    long long rate_limit_reserve;
    long long stopped_max_age_sec; /* STOPPED_POD_MAX_AGE_SEC */
    /* Adaptive policies (issue 15; planner_adaptive.c): each off unless set. */
    bool adaptive_warm_pool;
    long long warm_min_arrivals;
    long long warm_cold_start_sec;
    long long warm_demote_sec;
    bool predictive_scale_up;
    long long rate_window_sec;
    bool adaptive_idle_grace;
    long long idle_grace_min_sec;
    double idle_wait_weight;
} Policy;

_Static_assert(GPU_CHOICE_MAX == PLAN_GPU_TYPES_MAX, "one candidate per configured GPU type");

/* One pool in the plan: its counts after this plan's transitions and its scale-up decision. */
typedef struct {
    char name[SNAP_POOL_NAME_MAX];
    long long queued; /* claimable tasks of its run types, plus those this plan re-queues */
    long long queued_total;
    long long oldest_queued_age_sec;
    long long running; /* tasks its workers hold */
    long long spawning, active, idle, busy, terminating;
    long long min_active, max_active;
    long long desired;
    long long to_spawn;
    SpawnLimit spawn_limit;
    bool breaker_open;
    double failure_rate;
    double cost_per_hr;
    double price_bound; /* the most a new pod may cost per hour; -1 a type's price is unknown */
    size_t n_gpu_types; /* its types to try, in order, with backed-off ones removed */
    char gpu_types[PLAN_GPU_TYPES_MAX][SNAP_NAME_MAX];
    GpuChoice choice;   /* the order of its GPU types and every input of it (gpu_choice.h) */
    long long stopped;  /* warm stopped pods after this plan (issue 16) */
    long long to_start; /* of to_spawn: stopped pods started again */
    /* Why it has the size it has (issue 17, `orchestrator explain`): the same numbers the
     * decision used, so an explanation never re-derives a rule. */
    long long wanted;     /* desired before the pool's MAX_ACTIVE_GPUS cap */
    Reason desired_by;    /* the term that set it: REASON_MIN_FLOOR, _BACKLOG or _KEEP_IDLE */
    unsigned limits;      /* every limit that keeps it below `wanted`, as bits 1u << SpawnLimit
                             (spawn_limit names only the last one applied) */
    long long own_cap;    /* what it would spawn within its own limits, before the fleet's share */
    long long spend_room; /* pods its own spend cap still allows; -1 = no cap */
    /* The adaptive policies' view of the pool (issue 15), when one is on: */
    bool hot;                 /* ADAPTIVE_WARM_POOL: MACHINES_TO_KEEP_IDLE applies */
    double predicted_backlog; /* PREDICTIVE_SCALE_UP: tasks expected one cold start from now */
    long long idle_grace_sec; /* ADAPTIVE_IDLE_GRACE: idle time before scale-down; -1 off */
} PlanPool;

typedef struct {
    /* counts after this plan's own transitions (what the summary reports) */
    long long queued;  /* claimable, plus tasks this plan re-queues */
    long long running; /* In Progress tasks */
    long long spawning, active, idle, busy, terminating;
    long long desired;
    long long to_spawn;
    SpawnLimit spawn_limit;
    bool breaker_open;
    bool fleet_breaker_open; /* the fleet-wide rate tripped with failures in two or more pools:
                                every pool stops spawning (one broken image shared by pools) */
    bool over_spend_cap;     /* the live fleet (or a pool) costs more than its spend cap */
    double failure_rate;     /* unexpected / ended in the window; 0 when too few endings */
    double fleet_cost_per_hr;
    bool reconcile_due;
    bool reconcile_ran; /* due and the pod list was available */
    size_t n_gpu_types; /* types to try, in order, with backed-off ones removed */
    char gpu_types[PLAN_GPU_TYPES_MAX][SNAP_NAME_MAX];
    long long foreign_held_tasks; /* In Progress tasks held by a claimer that is not ours */
    ManualResult manual_result;   /* operator requests: whether the target was found */
    size_t n_pools;               /* per pool, in Policy.pools order */
    PlanPool pools[PLAN_POOLS_MAX];
    long long unserved_queued; /* Queued tasks of run types no pool serves */
    size_t n_unserved;         /* those run types (at most PLAN_UNSERVED_MAX listed) */
    char unserved[PLAN_UNSERVED_MAX][SNAP_NAME_MAX];
    long long rate_remaining; /* RunPod calls the quota allows now; -1 unknown */
    long long rate_allowance; /* pod creates it allows after the reserve and the planned
                                 terminations; -1 unknown (no limit) */
    long long rate_deferred;  /* spawns the rate limit moved to later cycles */
    /* issue 16 */
    long long stopped;            /* warm stopped pods after this plan */
    long long to_start;           /* of to_spawn: stopped pods started again */
    double spend_estimate_per_hr; /* the fleet's cost from prices (stopped pods at storage) */
    double spend_billed_per_hr;   /* what RunPod billed in the last complete hour (0 unknown) */
    /* fleet_cost_per_hr, the figure the spend cap uses, is per pod the larger of estimate and
     * bill, plus what was billed for pods no worker row records */
    long long fleet_room;    /* MAX_ACTIVE_GPUS - every live pod (>= 0) */
    bool fleet_spend_capped; /* the fleet's MAX_HOURLY_SPEND_USD cut a pool's share */

    size_t count;
    bool truncated; /* more actions than PLAN_MAX_ACTIONS: the rest wait for the next cycle */
    Action actions[PLAN_MAX_ACTIONS];
} Plan;

/* Fills the policy from a validated configuration. Cannot fail. */
void policy_from_config(const Config *cfg, Policy *out);

/* True when reconcile is due: never done, or RECONCILE_INTERVAL_SEC has passed. */
bool planner_reconcile_due(const Snapshot *snap, const Policy *policy);

/* Decides one cycle. Reads only snap and policy; writes only *out (fully overwritten).
 * Cannot fail: capacity limits are reported in out->truncated / out->spawn_limit. */
void planner_decide(const Snapshot *snap, const Policy *policy, Plan *out);

/* Operator requests, planned with the same actions and guards as the cycle. */
typedef enum {
    MANUAL_SPAWN = 1,   /* count workers, within MAX_ACTIVE_GPUS, the breaker, the spend cap
                           and the GPU backoff, exactly as a scale-up */
    MANUAL_TERMINATE,   /* one worker: drain, recover its tasks, terminate its pod */
    MANUAL_SHUTDOWN_ALL /* every live worker, as MANUAL_TERMINATE */
} ManualKind;

typedef struct {
    ManualKind kind;
    int count;                          /* MANUAL_SPAWN */
    char pool[SNAP_POOL_NAME_MAX];      /* MANUAL_SPAWN: the pool ("" = the only pool) */
    char worker_id[SNAP_WORKER_ID_MAX]; /* MANUAL_TERMINATE: a worker id, or a RunPod pod id */
} ManualRequest;

/* Plans an operator request. Pure, like planner_decide. MANUAL_TERMINATE takes a live worker's
 * id or its pod id (the worker is drained, its tasks recovered, its pod terminated), or the id
 * of a listed pod of ours that no live row owns (the pod is terminated); anything else gives an
 * empty plan and out->manual_result NOT_FOUND or NOT_OURS. MANUAL_SHUTDOWN_ALL terminates every
 * live worker and, when the pod list is in the snapshot, every pod of ours no row owns. Cannot
 * fail. */
void planner_manual(const Snapshot *snap, const Policy *policy, const ManualRequest *req,
                    Plan *out);

/* Number of actions of a kind in the plan. Cannot fail. */
size_t plan_count(const Plan *plan, ActionKind kind);

/* Stable snake_case names for logs, the journal and --dry-run. Cannot fail. */
const char *action_kind_str(ActionKind kind);
const char *reason_str(Reason reason);
const char *spawn_limit_str(SpawnLimit limit);

#endif
