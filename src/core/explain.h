/* explain.h -- pure: why a task is not running, and why the fleet has the size it has
 * (`orchestrator explain`, issue 17).
 *
 * Reads only its arguments: the snapshot the cycle loads, the plan planner_decide() made from it
 * (dry run), the facts about one task that the shell read with SQL, and measured boot times. It
 * never re-derives a sizing rule: every pool-level reason is a number or a limit bit of the plan
 * (PlanPool.wanted, .desired_by, .limits, ...). No I/O, clock, environment or allocation.
 *
 * Reasons are listed most decisive first (the order of ExplainCode): what would still hold with
 * an infinite fleet (no pool, a dependency, a backoff) before what the fleet's limits hold back,
 * before the queue.
 */
#ifndef ORCH_EXPLAIN_H
#define ORCH_EXPLAIN_H

#include <stdbool.h>
#include <stddef.h>

#include "planner.h"
#include "snapshot.h"

#define EXPLAIN_DEPS_MAX 32
#define EXPLAIN_REASONS_MAX 24
#define EXPLAIN_DETAIL_MAX 400
#define EXPLAIN_TEXT_MAX 512
#define EXPLAIN_STATUS_MAX 16

/* In order of decisiveness: a lower value is listed first. Names: explain_code_str(). */
typedef enum {
    EXPLAIN_TASK_COMPLETE = 1, /* ended: its outcome */
    EXPLAIN_TASK_FAILED,
    EXPLAIN_TASK_CANCELLED,
    EXPLAIN_TASK_RUNNING,       /* In Progress: who holds it and since when */
    EXPLAIN_NO_POOL,            /* no pool serves its run_type */
    EXPLAIN_DEPENDENCY_FAILED,  /* a dependency ended Failed or Cancelled: never claimable */
    EXPLAIN_DEPENDENCY_MISSING, /* a dependency id names no task: never claimable */
    EXPLAIN_DEPENDENCY_PENDING, /* a dependency is not Complete yet */
    EXPLAIN_RETRY_BACKOFF,      /* available_at is in the future */
    EXPLAIN_NO_RECENT_CYCLE,    /* no cycle succeeded lately: nothing scales */
    EXPLAIN_UNSAFE_SNAPSHOT,    /* more live workers than a cycle can see: it acts on nothing */
    EXPLAIN_POOL_SIZE,          /* --fleet: how the pool's desired size was computed */
    EXPLAIN_BREAKER_OPEN,       /* the pool's circuit breaker stops its spawns */
    EXPLAIN_GPU_BACKOFF,        /* every GPU type of the pool is in capacity backoff */
    EXPLAIN_OUT_OF_STOCK,       /* RunPod's catalog shows every usable GPU type sold out */
    EXPLAIN_SPEND_CAP,          /* MAX_HOURLY_SPEND_USD (the pool's or the fleet's) */
    EXPLAIN_POOL_AT_MAX,        /* the pool's MAX_ACTIVE_GPUS is below what its demand wants */
    EXPLAIN_FLEET_CEILING,      /* the fleet's MAX_ACTIVE_GPUS, shared with the other pools */
    EXPLAIN_RATE_LIMIT,         /* RunPod's rate-limit quota holds creates back this cycle */
    EXPLAIN_UNSERVED,           /* --fleet: queued run types no pool serves */
    EXPLAIN_BOOTING,            /* workers of the pool are still booting */
    EXPLAIN_QUEUE_POSITION,     /* claimable, behind other tasks of its pool */
    EXPLAIN_SCALE_UP_NEXT,      /* the next cycle spawns workers for the pool */
    EXPLAIN_SCALE_DOWN,         /* --fleet: idle workers above desired are drained */
    EXPLAIN_AT_DESIRED,         /* --fleet: the pool has the size its rule wants */
    EXPLAIN_CLAIM_IMMINENT,     /* an idle worker of its pool should claim it within seconds */
} ExplainCode;

/* One dependency of a task (tasks.dependant_on), as the database holds it. */
typedef struct {
    char id[SNAP_TASK_ID_MAX];
    char status[EXPLAIN_STATUS_MAX]; /* "" = no task has this id */
} ExplainDep;

/* The facts about one task, read by the shell with SQL (db_explain.h). */
typedef struct {
    char id[SNAP_TASK_ID_MAX];
    char status[EXPLAIN_STATUS_MAX]; /* Queued, In Progress, Complete, Failed, Cancelled */
    char task_type[SNAP_NAME_MAX];
    char run_type[SNAP_NAME_MAX];
    int attempts;
    int max_attempts; /* the effective limit (func_task_max_attempts) */
    long long created_age_sec;
    long long available_in_sec; /* > 0: not claimable for this many seconds more */
    bool claimable;             /* Queued and claimable now, by the claim's own predicate */
    long long ahead; /* claimable tasks of its pool's run types before it in claim order; -1 */
    size_t n_deps;
    bool deps_truncated; /* more than EXPLAIN_DEPS_MAX dependencies: the rest not listed */
    ExplainDep deps[EXPLAIN_DEPS_MAX];
    char worker_id[SNAP_WORKER_ID_MAX];
    char worker_status[EXPLAIN_STATUS_MAX]; /* of worker_id's row; "" = no such row */
    long long running_sec;                  /* since generation_started_at; -1 */
    long long finished_age_sec;             /* since it ended (Complete/Failed/Cancelled); -1 */
    char output_location[EXPLAIN_TEXT_MAX];
    char error_message[EXPLAIN_TEXT_MAX];
} ExplainTask;

/* Boot times measured from past workers of one pool: created_at -> promoted_at (the first
 * heartbeat), over its most recent promotions. */
typedef struct {
    char pool[SNAP_POOL_NAME_MAX];
    long long samples;
    double median_sec;
    double p90_sec;
} ExplainBoot;

typedef struct {
    size_t n;
    ExplainBoot pools[SNAP_POOLS_MAX];
} ExplainBootTimes;

typedef struct {
    ExplainCode code;
    long long wait_sec; /* expected seconds until it clears; -1 unknown or not a matter of time */
    char detail[EXPLAIN_DETAIL_MAX];
} ExplainReason;

typedef struct {
    int pool; /* the pool concerned: index into Policy.pools and Plan.pools; -1 none */
    size_t n;
    bool truncated; /* more than EXPLAIN_REASONS_MAX reasons: the least decisive left out */
    ExplainReason reasons[EXPLAIN_REASONS_MAX];
} Explanation;

/* What a caller passes beside the snapshot and the plan. */
typedef struct {
    long long stale_cycle_sec; /* no successful cycle for longer than this: NO_RECENT_CYCLE */
    double max_failure_rate;   /* MAX_WORKER_FAILURE_RATE, for the breaker's wording */
    int failure_window_minutes;
} ExplainOptions;

/* Why task t is where it is: its outcome or holder when it ran, else every reason it is not
 * running, most decisive first. plan is planner_decide(snap, policy) (dry run). Cannot fail. */
void explain_task(const Snapshot *snap, const Policy *policy, const Plan *plan,
                  const ExplainTask *t, const ExplainBootTimes *boot, const ExplainOptions *opt,
                  Explanation *out);

/* Why pool p (index into Plan.pools) has the size it has: how desired was computed, every limit
 * that holds, workers booting, spawns and drains planned. Cannot fail. */
void explain_pool(const Snapshot *snap, const Policy *policy, const Plan *plan, size_t p,
                  const ExplainBootTimes *boot, const ExplainOptions *opt, Explanation *out);

/* What concerns the whole fleet: no recent cycle, an unsafe snapshot, the fleet's ceilings, run
 * types no pool serves. out->pool is -1. Cannot fail. */
void explain_fleet(const Snapshot *snap, const Policy *policy, const Plan *plan,
                   const ExplainOptions *opt, Explanation *out);

/* The pool serving run_type (index into Policy.pools), or -1. Cannot fail. */
int explain_pool_of_run_type(const Policy *policy, const char *run_type);

/* The boot times of the pool named pool, or NULL when none were measured. Cannot fail. */
const ExplainBoot *explain_boot_of(const ExplainBootTimes *boot, const char *pool);

/* Stable snake_case name of a code ("no_pool", "pool_at_max", ...). Cannot fail. */
const char *explain_code_str(ExplainCode code);

#endif
