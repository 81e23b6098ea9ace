/* sim_model.h -- the policy lab's model: a deterministic discrete-event simulation of the fleet
 * that drives the real planner_decide() with a simulated clock (issue 15,
 * structure_docs/simulation.md).
 *
 * Pure: no I/O, clock, environment or unseeded randomness. It allocates (the world grows with
 * the trace) but reads only its arguments; every random draw comes from a SimRng seeded from
 * SimParams.seed, so the same trace, configuration and parameters give the same result.
 *
 * The simulated world: a RunPod that creates pods of the pool's GPU types (a price, a
 * boot-time distribution for a cold create and for the start of a stopped pod, a probability of
 * no capacity, a probability that the worker crashes at start); workers that heartbeat, claim
 * the oldest claimable task of their pool on a poll interval once active, run it for its
 * duration (scaled by the GPU's speed) and complete, fail or crash as the trace says; and the
 * orchestrator's cycle every ORCHESTRATOR_POLL_SEC and, with ENABLE_NOTIFY_WAKEUP, shortly after
 * each arrival, as `continuous` does. Or, instead of the planner, one of three baseline rules.
 */
#ifndef ORCH_SIM_MODEL_H
#define ORCH_SIM_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "planner.h"
#include "sim_trace.h"
#include "status.h"

#define SIM_GPUS_MAX 32

/* One GPU type of the simulated RunPod. */
typedef struct {
    char name[SNAP_NAME_MAX];
    double price_per_hr;    /* $/h while the pod exists (RunPod bills from creation) */
    double speed;           /* task duration multiplier: 1.0 the trace's reference GPU */
    double boot_median_sec; /* cold create -> first heartbeat (log-normal) */
    double boot_sigma;
    double restart_median_sec; /* start of a stopped pod -> first heartbeat (log-normal) */
    double restart_sigma;
    double no_capacity;    /* probability a create of this type finds no capacity */
    double crash_at_start; /* probability a booted pod's worker dies before its first heartbeat */
    double restart_fail; /* probability a start of a stopped pod fails (no free GPU on its host) */
    double storage_per_hr; /* $/h of a stopped pod (its disk) */
} SimGpu;

typedef enum {
    SIM_POLICY_PLANNER = 0, /* the real planner_decide, with the configuration given */
    SIM_POLICY_LEGACY,      /* the replaced system: scale up while queued/active > 3; 300 s idle */
    SIM_POLICY_KEDA,        /* desired = ceil((queued + running) / target); 300 s cooldown */
    SIM_POLICY_RUNPOD, /* RunPod serverless: add while the oldest task waited > 4 s; 5 s idle */
} SimPolicyKind;

typedef enum {
    SIM_CHOICE_ORDERED = 0, /* the pool's GPU types in their configured order */
    SIM_CHOICE_CHEAPEST,    /* lowest price per hour first */
    SIM_CHOICE_VALUE,       /* lowest price per task first (median duration on the type x price) */
} SimGpuChoice;

/* Parameters of the simulated world (SIM_* variables, structure_docs/simulation.md). */
typedef struct {
    SimPolicyKind policy;
    SimGpuChoice gpu_choice;
    int value_min_samples; /* a type with fewer durations is valued at the pool's median */
    size_t n_gpus;         /* GPU types named in SIM_GPU or built in */
    SimGpu gpus[SIM_GPUS_MAX];
    SimGpu fallback;        /* any other type: SIM_PRICE_USD_PER_HR, SIM_BOOT_SEC, ... */
    double worker_poll_sec; /* an idle worker's claim interval (the worker's --poll-interval) */
    double poll_after_task_sec;
    double heartbeat_sec;
    double notify_debounce_sec; /* a NOTIFY wakes `continuous` after this debounce */
    int warm_stopped_pods;      /* per pool: stop up to N idle pods instead of terminating */
    long long stopped_max_age_sec;
    long long drain_sec;     /* the run lasts until the last arrival + this, and all tasks end */
    long long max_extra_sec; /* ... but at most this past that, tasks left unfinished */
    double initial_idle_sec; /* the starting fleet has been idle this long at 0 */
    uint64_t seed;           /* every draw of the simulated RunPod */
} SimParams;

/* Parses the SIM_* variables of envp (and RUNPOD_GPU_CHOICE, WARM_STOPPED_PODS and
 * STOPPED_POD_MAX_AGE_SEC, issue 16's names, when SIM_GPU_CHOICE, SIM_WARM_STOPPED_PODS and
 * SIM_STOPPED_POD_MAX_AGE_SEC are unset) into *out, over the built-in defaults. Every problem
 * goes to errs (as config_parse does). Returns STATUS_OK or STATUS_ERR_CONFIG; *out is written
 * only on success. */
Status sim_params_parse(const char *const *envp, SimParams *out, ConfigErrors *errs);

/* The parameters of GPU type name: its SIM_GPU / built-in entry, else the fallback with that
 * name. Cannot fail. */
SimGpu sim_params_gpu(const SimParams *p, const char *name);

/* Stable names ("planner", "legacy", "keda", "runpod"; "ordered", "cheapest", "value"). */
const char *sim_policy_str(SimPolicyKind k);
const char *sim_choice_str(SimGpuChoice c);

/* What one run measured, for one pool or for the total. Money and GPU time count from a pod's
 * creation (or restart) to its termination (or stop), at its GPU's price; "idle" is everything
 * that is not running a task: booting, waiting for promotion, idle, draining. */
typedef struct {
    char name[SNAP_POOL_NAME_MAX]; /* the pool's, or "total" */
    long long tasks;               /* tasks of its run types in the trace */
    long long completed, failed, unfinished;
    double busy_gpu_sec, idle_gpu_sec;
    double busy_usd, idle_usd, stopped_usd; /* stopped: the disks of stopped pods */
    double wait_p50_sec, wait_p95_sec, wait_p99_sec, wait_max_sec, wait_mean_sec;
    long long cold_starts;  /* tasks claimed by a worker that booted after they arrived */
    long long pods_created; /* successful creates */
    long long restarts;     /* stopped pods started again */
    long long peak_fleet;   /* most pods live at once (stopped ones not counted) */
    long long no_capacity;  /* creates answered "no capacity" */
    long long crashed_at_start;
} SimMetrics;

typedef struct {
    size_t n_pools; /* Policy.pools order */
    SimMetrics pools[PLAN_POOLS_MAX];
    SimMetrics total;
    long long unserved; /* tasks of run types no pool serves (never claimed) */
    long long cycles;   /* planner cycles (or baseline decisions) */
    long long events;   /* events processed */
    double end_sec;     /* simulated time the run ended at */
    size_t n_tasks;
    long long *completion_ms; /* per trace task: when it ended (Complete or Failed); -1 never */
    long long *wait_ms;       /* per trace task: first claim - arrival; -1 never claimed */
} SimResult;

/* Runs the simulation of trace under cfg (the same configuration as a real run) and params.
 * Returns STATUS_OK and fills *out (free with sim_result_clear), STATUS_ERR_USAGE when a trace
 * task's run type is unknown to every pool and nothing could be simulated, or STATUS_ERR_NOMEM.
 * Deterministic: same inputs, same *out. */
Status sim_run(const SimTrace *trace, const Config *cfg, const SimParams *params, SimResult *out);

/* Frees what sim_run allocated in r and empties it (r may be NULL). */
void sim_result_clear(SimResult *r);

/* Fills m's wait figures from waits_sec[0..n) (sorted in place). Cannot fail. */
void sim_metrics_set_waits(SimMetrics *m, double *waits_sec, size_t n);

#endif
