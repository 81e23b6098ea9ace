/* sim_world.h -- the simulated world (internal to sim_model.c, sim_fleet.c, sim_cycle.c and
 * sim_policy.c).
 *
 * Pure: plain data and the operations on it; no I/O, clock or environment. One SimWorld is one
 * run: the event queue, the tasks' states, the pods (each a worker row and its pod), the
 * queues per run type, the simulated RunPod's per-GPU-type state, and the accounting.
 */
#ifndef ORCH_SIM_WORLD_H
#define ORCH_SIM_WORLD_H

#include <stdbool.h>
#include <stddef.h>

#include "sim_model.h"

#define SIM_NEVER (-(1LL << 60))
#define SIM_INF (1LL << 60)
#define SIM_EPOCH0_SEC 1735689600LL /* the simulated clock's 0: 2025-01-01T00:00:00Z */
#define SIM_DUR_SAMPLES 50          /* completed durations per run type (the snapshot's 50) */
#define SIM_BOOT_SAMPLES 20         /* cold starts per pool (the snapshot's 20) */
#define SIM_GPU_SAMPLES 32          /* durations per GPU type (value choice) */
#define SIM_GPU_TABLE_MAX (PLAN_POOLS_MAX * 4)
#define SIM_KEDA_HISTORY 64

enum { SIM_EV_CYCLE = 1, SIM_EV_BOOT, SIM_EV_POLL, SIM_EV_TASK_END, SIM_EV_AVAILABLE };

typedef struct {
    long long t;
    unsigned long long seq; /* ties: scheduling order */
    long long a;            /* pod or task index */
    unsigned gen;           /* the pod's generation when scheduled (stale when it changed) */
    int kind;
} SimEvent;

typedef enum {
    SIM_TS_PENDING = 0, /* not arrived yet (or of a run type no pool serves) */
    SIM_TS_QUEUED,      /* claimable */
    SIM_TS_BACKOFF,     /* Queued, available_at in the future (retry after a failure) */
    SIM_TS_RUNNING,
    SIM_TS_DONE,
    SIM_TS_FAILED,
} SimTaskState;

typedef struct {
    unsigned char state;
    unsigned char attempts;
    bool cold;        /* its first claim was by a worker that booted after it arrived */
    long long holder; /* pod index while running; -1 */
    long long first_claim_ms, started_ms, done_ms;
} SimTask;

typedef struct {
    char id[48]; /* the worker id and pod name, of the WORKER_ID_PREFIX shape */
    int pool;
    int gpu; /* index into SimWorld.gpus */
    WorkerState state;
    bool live;       /* a billed pod: created (or restarted) and not terminated or stopped */
    bool stopped;    /* in the stopped warm pool: its disk billed, no worker */
    bool exited;     /* its worker process died: no more heartbeats, pod EXITED */
    bool booted;     /* its worker heartbeats */
    bool will_crash; /* dies at boot instead */
    bool ended;      /* left service (drain, failure): counted once in the breaker window */
    bool restart;    /* started from a stopped pod */
    long long created_ms, boot_ms, promoted_ms, activity_ms, terminating_ms, dead_ms;
    long long bill_ms;    /* start of the current billing (create, restart) */
    long long busy_ms;    /* task time within the current billing */
    long long stopped_ms; /* when it was stopped (its disk billed since) */
    long long task;       /* the task it holds, -1 */
    unsigned gen;
    long long poll_anchor_ms, poll_first_ms, poll_pending_ms; /* claim polls */
} SimPod;

typedef struct {
    long long *v; /* task indexes: a min-heap (smaller index = older task) */
    size_t n, cap;
} SimIdxHeap;

typedef struct {
    int pool; /* the pool serving it, -1 none */
    SimIdxHeap ready, backoff;
    long long n_ready, n_backoff, n_running;
    /* measures (the snapshot's SnapArrivals) */
    long long *arr;    /* its tasks' arrival times, in order */
    long long *peak_c; /* per arrival: its tasks within the warm window up to it */
    size_t n_arr, arrived, rate_lo, dq_head, dq_tail, dq_pushed;
    size_t *dq; /* arrivals within the demote window with decreasing peak_c (a max-deque) */
    long long durs[SIM_DUR_SAMPLES];
    size_t n_durs, next_dur;
} SimRunType;

typedef struct {
    long long live, stopped;
    long long boots[SIM_BOOT_SAMPLES];
    size_t n_boots, next_boot;
    long long keda_t[SIM_KEDA_HISTORY], keda_d[SIM_KEDA_HISTORY]; /* desired over time */
    size_t keda_n, keda_next;
    SimMetrics m;
} SimPoolState;

typedef struct {
    SimGpu p;
    bool price_known; /* a pod of the type was created: its price is in gpu_prices */
    int failures;     /* capacity backoff, as gpu_capacity_backoff */
    long long backoff_until_ms;
    long long no_capacity_cycle; /* the cycle its last no-capacity answer was recorded in */
    long long durs[SIM_GPU_SAMPLES];
    size_t n_durs, next_dur;
} SimGpuState;

typedef struct {
    long long t;
    int pool;
    bool unexpected;
} SimEnding;

typedef struct SimWorld {
    const SimTrace *trace;
    const Config *cfg;
    const SimParams *par;
    Policy *policy;
    Snapshot *snap;
    Plan *plan;
    SimRng rng;
    long long now;
    SimEvent *ev;
    size_t n_ev, cap_ev;
    unsigned long long seq;
    size_t next_arrival;
    SimTask *tasks;
    SimPod *pods;
    size_t n_pods, cap_pods;
    long long *live; /* pods neither terminated nor gone (live or stopped), in creation order */
    size_t n_live, cap_live;
    SimRunType rts[SIM_TYPES_MAX];
    size_t n_rts;
    SimPoolState pools[PLAN_POOLS_MAX];
    size_t n_pools;
    SimGpuState gpus[SIM_GPU_TABLE_MAX];
    size_t n_gpus;
    SimEnding *endings;
    size_t n_end, end_head, cap_end;
    long long live_total, peak_total;
    long long finals, unserved, last_final_ms;
    long long cycle_pending_ms; /* the next cycle, SIM_INF none */
    long long cycles, events, cycle_number, last_reconcile_ms;
    long long horizon_ms, limit_ms;
    long long poll_ms, worker_poll_ms, after_task_ms, hb_ms, debounce_ms;
    int max_attempts;
    bool notify, measures;
    Status st; /* sticky: out of memory */
} SimWorld;

/* Event queue. */
void sim_schedule(SimWorld *w, long long t, int kind, long long a, unsigned gen);

/* A cycle (or baseline decision) at t, unless one is due earlier. */
void sim_request_cycle(SimWorld *w, long long t);

/* Creates a pod for pool: a stopped pod of the pool first (SIM_WARM_STOPPED_PODS), else a
 * create per GPU type of types[0..n) in the order the GPU choice gives, each answering no
 * capacity with its type's probability. Returns the new pod's index, or -1 when every type had
 * no capacity (recorded as the capacity backoff and an expected ending). */
long long sim_spawn(SimWorld *w, int pool, const char (*types)[SNAP_NAME_MAX], size_t n_types);

/* spawning -> active, now. */
void sim_promote(SimWorld *w, long long pod);

/* The pod left service (drain or failure): one ending in the breaker window. */
void sim_end_service(SimWorld *w, long long pod, bool unexpected);

/* Recovers a running task: its holder loses it; attempts + 1; back to the queue, or Failed
 * when the attempts reach the limit. */
void sim_recover_task(SimWorld *w, long long task);

/* Terminates the pod (or, with may_stop and room in the stopped warm pool, stops it): billing
 * ends, the worker row is terminated. */
void sim_terminate(SimWorld *w, long long pod, bool may_stop);

/* Lets every idle active worker of every pool with claimable work poll at its next poll. */
void sim_dispatch_all(SimWorld *w);

/* The pod index named by a worker id or task id ("t<index>"); -1 when not ours. */
long long sim_pod_index(const SimWorld *w, const char *worker_id);
long long sim_task_index(const char *task_id);

/* The oldest queued task (claimable or not) of run type r, -1 none. */
long long sim_oldest_queued(SimWorld *w, size_t r);

/* The planner's cycle (sim_cycle.c) and the baselines' decision (sim_policy.c). */
void sim_cycle_planner(SimWorld *w);
void sim_cycle_baseline(SimWorld *w);

/* Median of v[0..n) (copied, v untouched, at most 64 values); -1 when n is 0. */
double sim_median(const long long *v, size_t n);

/* Internal to sim_model.c and sim_fleet.c. sim_grow: makes *p hold at least need items of
 * size bytes (false: out of memory, *p unchanged). The task heaps are min-heaps of task indexes
 * (sim_heap_push sets w->st on out of memory). */
bool sim_grow(void **p, size_t *cap, size_t need, size_t size);
void sim_heap_push(SimWorld *w, SimIdxHeap *h, long long v);
void sim_heap_pop(SimIdxHeap *h);

/* sim_fleet.c, for the event loop: the GPU table's index of a type (added when new); the
 * candidate types in the order the GPU choice gives; a new booting pod; a stopped pod ended for
 * good; a task into its run type's queue; polls scheduled for a pool's idle workers when it has
 * claimable work; a pod's boot, claim poll and task end; whether a pod can claim. */
int sim_gpu_index(SimWorld *w, const char *name);
size_t sim_choose_order(SimWorld *w, const char (*types)[SNAP_NAME_MAX], size_t n, int *out);
long long sim_new_pod(SimWorld *w, int pool, int gpu, bool restart);
void sim_stopped_close(SimWorld *w, long long pod);
void sim_enqueue(SimWorld *w, long long task);
void sim_dispatch(SimWorld *w, int pool);
void sim_boot(SimWorld *w, long long pod);
void sim_claim(SimWorld *w, long long pod);
bool sim_can_claim(const SimPod *p);
void sim_task_end(SimWorld *w, long long pod);

#endif
