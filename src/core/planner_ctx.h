/* planner_ctx.h -- the planner's working view of one decision (internal to planner*.c).
 *
 * Pure. planner_decide (planner.c) and planner_manual (planner_manual.c) share it: the state each
 * worker has after this plan's own transitions so far, so that later steps see the effect of
 * earlier ones (a worker failed in step 2 has its tasks recovered in step 3 and its pod
 * terminated in step 5), exactly as the actuator applies them in order.
 */
#ifndef ORCH_PLANNER_CTX_H
#define ORCH_PLANNER_CTX_H

#include <stdbool.h>
#include <stddef.h>

#include "planner.h"

/* Pool index of a worker whose pool is not configured (any more): held to the global settings
 * with MIN 0 and MAX 0 -- it finishes its work and goes, and nothing is spawned for it. */
#define POOL_RETIRED (-1)

typedef struct {
    WorkerState state;      /* after this plan's transitions so far */
    long long tasks_held;   /* In Progress tasks this worker holds (all of them, from SQL) */
    bool has_pod;           /* a pod id is recorded (or adopted in this plan) */
    const SnapPod *adopted; /* the pod adopted in this plan (the row has no pod id yet) */
    bool promoted_in_plan;
    bool terminated_in_plan;
    int pool;          /* index into Policy.pools, or POOL_RETIRED */
    bool drained_idle; /* drained for idleness in this plan: its pod may be kept stopped */
    bool started;      /* a stopped worker started again in this plan */
} View;

/* The adaptive policies' view of one pool (planner_adaptive.c), from the snapshot's measures:
 * the sums and medians of its run types and its measured cold start. */
typedef struct {
    bool measured;                  /* the snapshot carries measures */
    double rate_per_sec;            /* arrivals of its run types per second (rate window) */
    double boot_sec;                /* median cold start (creation to promotion); -1 unknown */
    double duration_sec;            /* median task duration of its run types; -1 unknown */
    long long warm_peak;            /* tasks within the warm window, at its recent peak */
    long long last_arrival_age_sec; /* -1 none within the demote window */
} PoolAdaptive;

typedef struct {
    const Snapshot *snap;
    const Policy *policy;
    Plan *plan;
    View view[SNAP_WORKERS_MAX];
    PolicyPool retired;                 /* the policy of workers of pools no longer configured */
    long long requeued[PLAN_POOLS_MAX]; /* tasks this plan puts back into each pool's queue */
    long long want_override[PLAN_POOLS_MAX];      /* operator spawn count; -1 = from desired */
    long long new_unexpected[PLAN_POOLS_MAX + 1]; /* failures this plan records; last: retired */
    bool adaptive_ready;                          /* adaptive[] computed (on first use) */
    PoolAdaptive adaptive[PLAN_POOLS_MAX];
    /* A worker of the pool has been idle past GPU_IDLE_TIMEOUT_SEC: the predicted backlog is
     * not arriving, so this plan sizes the pool without it (planner_scale.c, step 4). */
    bool prediction_refuted[PLAN_POOLS_MAX];
} Ctx;

/* The policy of worker i's pool (the retired policy for a pool no longer configured). */
const PolicyPool *planner_pool_of(const Ctx *c, size_t i);

/* Steps 4 and 6 (planner_scale.c, planner_fleet.c): idle workers above each pool's desired size are
 * drained; each pool is scaled up within its own limits, then the fleet's MAX_ACTIVE_GPUS and spend
 * cap are shared out (every pool's MIN first, then unmet demand in proportion); the plan's per-pool
 * and total counts are filled. */
void planner_step_scale_down(Ctx *c);

/* Resets the plan and builds the working view. Returns false when the snapshot is unsafe to act
 * on (more live workers than it holds): the plan then stays empty. */
bool planner_ctx_init(Ctx *c, const Snapshot *snap, const Policy *policy, Plan *out);

/* Appends an action about worker w (may be NULL); NULL when the plan is full (then
 * plan->truncated is set). */
Action *planner_add_action(Ctx *c, ActionKind kind, Reason reason, const SnapWorker *w);

/* Index of the live worker named id in the snapshot, or -1. */
long long planner_find_worker(const Snapshot *snap, const char *id);

/* The listed pod with this id, or NULL. Cannot fail. */
const SnapPod *planner_pod_by_id(const Snapshot *snap, const char *pod_id);

/* The pod id of worker i: recorded, or adopted earlier in this plan; "" when none. */
const char *planner_worker_pod_id(const Ctx *c, size_t i);

/* Fails worker i: -> error with a reason (counted as unexpected). */
void planner_fail_worker(Ctx *c, size_t i, Reason reason, const char *detail);

/* Recovers an In Progress task: back to Queued (attempt counted) or Failed for good. */
void planner_recover_task(Ctx *c, const SnapTask *t, Reason reason);

/* Whether a live row owns pod (its recorded or adopted pod id, or its name when the row has
 * no pod id yet). */
bool planner_pod_owned(const Ctx *c, const SnapPod *pod);

/* Step 0, for worker i: when it has no pod id and RunPod lists a pod under its name, records
 * that pod (ADOPT_POD), so whatever happens to the row next acts on the pod by id. */
void planner_adopt(Ctx *c, size_t i);

/* Step 6: scale up (or, with want_override, an operator's spawn), and the plan's counts
 * (planner_fleet.c). */
void planner_step_scale_up(Ctx *c);

/* Step 6 for one pool, and the prices the fleet's spend cap is shared with (planner_scale.c, for
 * planner_fleet.c). planner_size_pool: pool p's counts, desired size and own spawn limit.
 * planner_serves: whether a pool serves a run type. planner_fleet_cost_of: the live workers' cost
 * per hour. planner_price_ceiling: the dearest price known. planner_unpriced_live: a live worker
 * of no known price. planner_affordable: whether a pod fits a budget. planner_next_slot_price:
 * the price of a pool's next scale-up slot (Slots). */
/* Pool p's scale-up slots in the order they are filled: its stopped pods to start first
 * (planner_warm_next_start), then creates. Each slot is charged for the spend cap at `base`
 * (the pool's price bound) or, for a start, at that pod's known price when larger: a stopped
 * pod may be dearer than every type the bound covers (its price recorded when it was created,
 * or raised since). */
typedef struct {
    int pool;
    double base;
    double unknown; /* a start of no known price (no price recorded, no type): the dearest */
    long long at;   /* the last stopped worker handed out; -1 none yet; -2 none left */
} Slots;
void planner_size_pool(Ctx *c, int p, long long *cap, long long *min_deficit, Reason *why);
bool planner_serves(const PolicyPool *pp, const char *run_type);
double planner_fleet_cost_of(const Ctx *c, int pool, double *estimate);
double planner_price_ceiling(const Snapshot *snap);
bool planner_unpriced_live(const Ctx *c, int pool);
bool planner_affordable(double budget, double price);
double planner_next_slot_price(const Ctx *c, Slots *s);

/* Counts of workers in state st (not terminated in this plan), of pool p or of every pool
 * (p = PLANNER_ALL_POOLS), and of busy active workers. */
#define PLANNER_ALL_POOLS (-2)
long long planner_count_state(const Ctx *c, WorkerState st, int pool);
long long planner_count_busy(const Ctx *c, int pool);

/* Stopped pods (planner_warm.c, issue 16). */

/* Stopped workers whose pod must go: gone or running (someone else's doing), of a GPU type no
 * longer configured for their pool, older than STOPPED_POD_MAX_AGE_SEC, beyond their pool's
 * WARM_STOPPED_PODS (oldest first), or of a pool no longer configured. Their pods are
 * terminated and the rows end. */
void planner_step_stopped(Ctx *c);

/* Step 5, for worker i (terminating, no task, drained for idleness in this plan): when its
 * pool keeps warm pods and has room, plans ACTION_STOP_WORKER and returns true; otherwise
 * false (the caller terminates it). */
bool planner_warm_stop(Ctx *c, size_t i);

/* Step 6: starts one stopped worker of pool p (the longest stopped first) for a scale-up slot
 * with reason r. Only a pod whose GPU type is among the pool's usable types this plan
 * (c->plan->pools[p]: configured, not backed off, not out of stock), or whose row recorded no
 * type, is started. Returns false
 * when the pool has none to start (the caller creates a pod). */
bool planner_warm_start(Ctx *c, int p, Reason r);

/* The stopped workers planner_warm_start would start for pool p, in that order: the one after
 * worker index `after` (-1: the first); -1 when none is left. */
long long planner_warm_next_start(const Ctx *c, int p, long long after);

/* What stopped worker i's pod costs per hour once started, for the spend cap: the larger of
 * its own recorded price and gpu_prices' for its type in its pool's cloud; 0 when neither is
 * known. */
double planner_warm_start_price(const Ctx *c, size_t i);

/* What worker i costs per hour for the spend cap: its estimate (stopped: its disk; a pod of no
 * known price: `unknown`) or, when larger, what RunPod billed for it. *estimate gets the
 * estimate alone (may be NULL). */
double planner_worker_cost(const Ctx *c, size_t i, double unknown, double *estimate);
/* Adaptive policies (planner_adaptive.c, issue 15). Each is neutral -- the configured value --
 * when its setting is off, for a retired pool (p < 0), or when the snapshot has no measures.
 *
 * planner_keep_idle: pool p's MACHINES_TO_KEEP_IDLE, or 0 while ADAPTIVE_WARM_POOL finds the pool
 * cold. planner_predicted_backlog: with PREDICTIVE_SCALE_UP, the tasks expected to be waiting
 * one cold start from now beyond what busy workers finish meanwhile (>= 0; 0 once step 4 found
 * it refuted in this plan). planner_idle_grace:
 * with ADAPTIVE_IDLE_GRACE, how long the marginal one of n_idle idle workers of pool p may stay
 * idle before scale-down: the pool's GPU_IDLE_TIMEOUT_SEC while it is likely to be needed within
 * a cold start, else ADAPTIVE_IDLE_GRACE_MIN_SEC.
 * planner_adaptive_report: fills the adaptive fields of the plan's pool p. */
int planner_keep_idle(Ctx *c, int p);
double planner_predicted_backlog(Ctx *c, int p, long long busy);
long long planner_idle_grace(Ctx *c, int p, long long n_idle);
void planner_adaptive_report(Ctx *c, int p, PlanPool *out);

#endif
