/* test_planner_warm.c -- the planner's part of issue 16: the stopped-pod warm pool (stop
 * instead of terminate, start before create, the bounds that keep stopped pods from leaking,
 * restarted rows timed from their start), the spend cap with billing, and which terminations
 * read a failed worker's log tail first.
 *
 * Pure: builds a Snapshot and a Policy in memory (one pool, `default`), runs the planner and
 * checks the Plan as a string of "kind:reason[:id]" words. Rows of a table share one test body
 * (tcase_add_loop_test).
 */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static Snapshot snap;
static Policy pol;
static Plan plan;

enum {
    IDLE = 300,        /* GPU_IDLE_TIMEOUT_SEC */
    SPAWN_TO = 400,    /* SPAWNING_TIMEOUT_SEC */
    NOT_FOUND = 60,    /* POD_NOT_FOUND_GRACE_SEC */
    MAX_AGE = 86400,   /* STOPPED_POD_MAX_AGE_SEC */
    STORAGE_CENTS = 2, /* a stopped pod's disk: $0.02/h */
};

static void reset(int warm, int max_active)
{
    memset(&snap, 0, sizeof snap);
    memset(&plan, 0, sizeof plan);
    memset(&pol, 0, sizeof pol);
    pol.max_active = max_active;
    pol.tasks_per_gpu = 1;
    pol.idle_timeout_sec = IDLE;
    pol.stuck_timeout_sec = 350;
    pol.spawning_timeout_sec = SPAWN_TO;
    pol.graceful_timeout_sec = 600;
    pol.grace_period_sec = 120;
    pol.pod_id_grace_sec = 90;
    pol.pod_not_found_grace_sec = NOT_FOUND;
    pol.max_task_attempts = 3;
    pol.max_failure_rate = 0.8;
    pol.min_workers_for_rate = 5;
    pol.reconcile_interval_sec = 200;
    pol.orphan_pod_grace_sec = 500;
    pol.stopped_max_age_sec = MAX_AGE;
    snprintf(pol.worker_prefix, sizeof pol.worker_prefix, "gpu-");
    PolicyPool *pp = &pol.pools[pol.n_pools++];
    snprintf(pp->name, sizeof pp->name, "default");
    pp->n_run_types = 1;
    snprintf(pp->run_types[0], SNAP_NAME_MAX, "gpu");
    pp->max_active = max_active;
    pp->tasks_per_gpu = 1;
    pp->idle_timeout_sec = IDLE;
    pp->stuck_timeout_sec = 350;
    pp->spawning_timeout_sec = SPAWN_TO;
    pp->grace_period_sec = 120;
    pp->n_gpu_types = 1;
    snprintf(pp->gpu_types[0], SNAP_NAME_MAX, "GPU-A");
    pp->warm_stopped = warm;
    pp->stopped_cost_per_hr = STORAGE_CENTS / 100.0;
    pol.max_active = max_active;
}

static SnapWorker *worker(const char *id, WorkerState st)
{
    ck_assert_uint_lt(snap.n_workers, SNAP_WORKERS_MAX);
    SnapWorker *w = &snap.workers[snap.n_workers++];
    memset(w, 0, sizeof *w);
    snprintf(w->id, sizeof w->id, "%s", id);
    snprintf(w->pool, sizeof w->pool, "default");
    snprintf(w->runpod_id, sizeof w->runpod_id, "pod-%.50s", id);
    snprintf(w->gpu_type, sizeof w->gpu_type, "GPU-A");
    w->state = st;
    w->age_sec = 5000;
    w->heartbeat_age_sec = 5;
    w->heartbeat_after_create = true;
    w->promoted_age_sec = 4000;
    w->activity_age_sec = 10;
    w->terminating_age_sec = -1;
    w->vram_total_mb = -1;
    w->vram_used_mb = -1;
    w->create_unknown_age_sec = -1;
    w->pod_age_sec = -1;
    w->oldest_task_age_sec = -1;
    w->cost_per_hr = 0.69;
    return w;
}

/* An active worker idle long enough to be drained. */
static SnapWorker *idle_worker(const char *id)
{
    SnapWorker *w = worker(id, WORKER_ACTIVE);
    w->activity_age_sec = 1000;
    return w;
}

static SnapWorker *stopped(const char *id, long long stopped_age)
{
    SnapWorker *w = worker(id, WORKER_STOPPED);
    w->stopped_age_sec = stopped_age;
    w->heartbeat_age_sec = stopped_age + 5;
    return w;
}

static void pod(const char *worker_id, SnapPodStatus st)
{
    SnapPod *p = &snap.pods[snap.n_pods++];
    memset(p, 0, sizeof *p);
    snprintf(p->id, sizeof p->id, "pod-%.50s", worker_id);
    snprintf(p->name, sizeof p->name, "%s", worker_id);
    p->status = st;
    p->age_sec = 5000;
    p->cost_per_hr = st == SNAP_POD_EXITED ? 0 : 0.69;
    snap.pods_listed = true;
}

static void demand(long long n)
{
    snap.n_run_types = 1;
    snprintf(snap.run_types[0].name, SNAP_NAME_MAX, "gpu");
    snap.run_types[0].claimable = snap.run_types[0].queued = n;
    snap.queued_claimable = snap.queued_total = n;
}

static void price(double usd)
{
    snprintf(snap.prices[0].gpu_type, SNAP_NAME_MAX, "GPU-A");
    snap.prices[0].usd_per_hr = usd;
    snap.n_prices = 1;
}

static const char *id_of(const Action *a)
{
    if (a->kind == ACTION_RECOVER_TASK)
        return a->task_id;
    if (a->kind == ACTION_TERMINATE_POD)
        return a->pod_id;
    return a->worker_id;
}

static const char *plan_str(void)
{
    static char buf[4096];
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < plan.count; i++) {
        const Action *a = &plan.actions[i];
        int n = snprintf(buf + off, sizeof buf - off, "%s%s:%s%s%s", i ? " " : "",
                         action_kind_str(a->kind), reason_str(a->reason), id_of(a)[0] ? ":" : "",
                         id_of(a));
        if (n < 0 || (size_t)n >= sizeof buf - off)
            break;
        off += (size_t)n;
    }
    return buf;
}

static void decide(void)
{
    planner_decide(&snap, &pol, &plan);
}

/* ------------------------------------------------------------------------------------------ */
/* Stop instead of terminate                                                                   */

static const struct {
    const char *name;
    int warm;
    int already_stopped;
    long long heartbeat_age;
    int listed; /* 0 not listed, else the pod's status */
    const char *want;
} STOP_CASES[] = {
    {"warm 1, none stopped: the drained pod is stopped", 1, 0, 5, 0,
     "drain_worker:idle:w stop_worker:warm_pool:w"},
    {"warm 0 (off): terminated as before", 0, 0, 5, 0,
     "drain_worker:idle:w terminate_worker:drained:w"},
    {"warm 1, one stopped already: terminated", 1, 1, 5, 0,
     "drain_worker:idle:w terminate_worker:drained:w"},
    {"warm 2, heartbeat stale: failed by the health check, never kept", 2, 0, IDLE + 1, 0,
     "fail_worker:stale_heartbeat:w terminate_worker:error_cleanup:w"},
    {"warm 2, its pod listed RUNNING: stopped", 2, 0, 5, SNAP_POD_RUNNING,
     "drain_worker:idle:w stop_worker:warm_pool:w"},
    {"warm 2, its pod listed EXITED: failed, never kept", 2, 0, 5, SNAP_POD_EXITED,
     "fail_worker:pod_exited:w terminate_worker:error_cleanup:w"},
};

START_TEST(test_warm_stop_or_terminate)
{
    reset(STOP_CASES[_i].warm, 10);
    SnapWorker *w = idle_worker("w");
    w->heartbeat_age_sec = STOP_CASES[_i].heartbeat_age;
    if (STOP_CASES[_i].already_stopped)
        stopped("s", 100);
    if (STOP_CASES[_i].listed) {
        pod("w", (SnapPodStatus)STOP_CASES[_i].listed);
        if (STOP_CASES[_i].already_stopped)
            pod("s", SNAP_POD_EXITED);
    }
    snap.since_reconcile_sec = 0;
    decide();
    ck_assert_msg(strcmp(plan_str(), STOP_CASES[_i].want) == 0, "%s: got \"%s\"",
                  STOP_CASES[_i].name, plan_str());
    ck_assert_int_eq(plan.stopped, STOP_CASES[_i].already_stopped +
                                       (strstr(STOP_CASES[_i].want, "stop_worker") != NULL));
}
END_TEST

/* Only the pool's room is used: two drained, room for one. */
START_TEST(test_warm_stop_fills_the_pool_only)
{
    reset(1, 10);
    idle_worker("a");
    idle_worker("b");
    decide();
    ck_assert_uint_eq(plan_count(&plan, ACTION_STOP_WORKER), 1);
    ck_assert_uint_eq(plan_count(&plan, ACTION_TERMINATE_WORKER), 1);
}
END_TEST

/* A worker terminating since an earlier cycle (maybe an operator's) is terminated, not kept. */
START_TEST(test_warm_stop_only_what_this_plan_drained)
{
    reset(2, 10);
    SnapWorker *w = worker("t", WORKER_TERMINATING);
    w->terminating_age_sec = 30;
    decide();
    ck_assert_str_eq(plan_str(), "terminate_worker:drained:t");
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Start before create                                                                         */

static const struct {
    const char *name;
    int n_stopped;
    int active;
    int max;
    long long demand;
    int list; /* 0 unlisted, 1 every stopped pod EXITED, 2 the oldest still RUNNING (lag) */
    const char *want;
} START_CASES[] = {
    {"two stopped, demand 2: both started, nothing created", 2, 0, 10, 2, 0,
     "start_worker:backlog:s2 start_worker:backlog:s1"},
    {"one stopped, demand 3: started first, then 2 creates", 1, 0, 10, 3, 0,
     "start_worker:backlog:s1 spawn_worker:backlog spawn_worker:backlog"},
    {"demand 1: the longest stopped is started", 2, 0, 10, 1, 1, "start_worker:backlog:s2"},
    {"MAX counts the starts: 2 active of 3, one slot", 3, 2, 3, 5, 0, "start_worker:backlog:s3"},
    {"MAX full: nothing started", 2, 2, 2, 5, 0, ""},
    {"the longest stopped still reads RUNNING: the next one is started", 2, 0, 10, 1, 2,
     "start_worker:backlog:s1"},
    {"no demand: stopped pods stay stopped", 2, 0, 10, 0, 1, ""},
};

START_TEST(test_warm_start_before_create)
{
    reset(5, START_CASES[_i].max);
    char id[16];
    for (int k = 1; k <= START_CASES[_i].n_stopped; k++) {
        snprintf(id, sizeof id, "s%d", k);
        stopped(id, 20 * k); /* s<k> stopped 20k s ago (within the list's lag): the highest k
                                the longest */
        if (START_CASES[_i].list)
            pod(id, START_CASES[_i].list == 2 && k == START_CASES[_i].n_stopped ? SNAP_POD_RUNNING
                                                                                : SNAP_POD_EXITED);
    }
    for (int k = 0; k < START_CASES[_i].active; k++) {
        snprintf(id, sizeof id, "a%d", k);
        SnapWorker *w = worker(id, WORKER_ACTIVE);
        w->tasks_held = 1;
        w->activity_age_sec = 1;
    }
    demand(START_CASES[_i].demand);
    decide();
    ck_assert_msg(strcmp(plan_str(), START_CASES[_i].want) == 0, "%s: got \"%s\"",
                  START_CASES[_i].name, plan_str());
    ck_assert_uint_eq((size_t)plan.to_spawn, plan_count(&plan, ACTION_SPAWN_WORKER) +
                                                 plan_count(&plan, ACTION_START_WORKER));
    ck_assert_uint_eq((size_t)plan.to_start, plan_count(&plan, ACTION_START_WORKER));
    for (size_t i = 0; i < plan.count; i++)
        if (plan.actions[i].kind == ACTION_START_WORKER) {
            ck_assert_int_eq(plan.actions[i].from_state, WORKER_STOPPED);
            ck_assert_int_eq(plan.actions[i].pool, 0);
            ck_assert_str_eq(plan.actions[i].pod_id + 4, plan.actions[i].worker_id);
        }
}
END_TEST

/* Stopped pods are never capacity: not active, not spawning, not under MAX, not idle. */
START_TEST(test_stopped_is_not_capacity)
{
    reset(5, 2);
    pol.min_active = pol.pools[0].min_active = 1;
    stopped("s1", 10);
    stopped("s2", 20);
    stopped("s3", 30);
    decide();
    ck_assert_int_eq(plan.active, 0);
    ck_assert_int_eq(plan.spawning, 0);
    ck_assert_int_eq(plan.stopped, 2); /* one started for MIN */
    ck_assert_int_eq(plan.desired, 1);
    ck_assert_str_eq(plan_str(), "start_worker:min_floor:s3");
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Bounds: stopped pods never leak                                                             */

static const struct {
    const char *name;
    int warm;
    int pool_configured;
    long long ages[3];
    int list; /* 0 unlisted; else the status of s1's pod (the others EXITED); -1 s1 not listed */
    const char *want;
} BOUND_CASES[] = {
    {"within bounds: nothing", 3, 1, {10, 20, 30}, 0, ""},
    {"older than STOPPED_POD_MAX_AGE_SEC",
     3,
     1,
     {10, MAX_AGE + 1, 30},
     0,
     "terminate_worker:stopped_expired:s2"},
    {"two over WARM_STOPPED_PODS: the longest stopped go",
     1,
     1,
     {10, 20, 30},
     0,
     "terminate_worker:stopped_excess:s3 terminate_worker:stopped_excess:s2"},
    {"pool no longer configured: all go",
     3,
     0,
     {10, 20, 30},
     0,
     "terminate_worker:stopped_pool_gone:s3 terminate_worker:stopped_pool_gone:s2 "
     "terminate_worker:stopped_pool_gone:s1"},
    {"s1's pod RUNNING (started by someone else)",
     3,
     1,
     {NOT_FOUND + 1, 20, 30},
     SNAP_POD_RUNNING,
     "terminate_worker:stopped_pod_state:s1"},
    {"s1's pod RUNNING within the lag of its stop: left",
     3,
     1,
     {NOT_FOUND, 20, 30},
     SNAP_POD_RUNNING,
     ""},
    {"s1's pod gone", 3, 1, {NOT_FOUND + 1, 20, 30}, -1, "terminate_worker:stopped_pod_state:s1"},
    {"s1's pod ERROR",
     3,
     1,
     {NOT_FOUND + 1, 20, 30},
     SNAP_POD_ERROR,
     "terminate_worker:stopped_pod_state:s1"},
};

START_TEST(test_stopped_bounds)
{
    reset(BOUND_CASES[_i].warm, 10);
    if (!BOUND_CASES[_i].pool_configured)
        snprintf(pol.pools[0].name, sizeof pol.pools[0].name, "other");
    const char *ids[] = {"s1", "s2", "s3"};
    for (int k = 0; k < 3; k++) {
        stopped(ids[k], BOUND_CASES[_i].ages[k]);
        if (BOUND_CASES[_i].list && !(k == 0 && BOUND_CASES[_i].list < 0))
            pod(ids[k], k == 0 && BOUND_CASES[_i].list > 0 ? (SnapPodStatus)BOUND_CASES[_i].list
                                                           : SNAP_POD_EXITED);
    }
    if (BOUND_CASES[_i].list < 0)
        snap.pods_listed = true;
    decide();
    ck_assert_msg(strcmp(plan_str(), BOUND_CASES[_i].want) == 0, "%s: got \"%s\"",
                  BOUND_CASES[_i].name, plan_str());
    for (size_t i = 0; i < plan.count; i++) {
        ck_assert_int_eq(plan.actions[i].from_state, WORKER_STOPPED);
        ck_assert(!plan.actions[i].fetch_logs);
    }
}
END_TEST

/* The kill switch and terminate ID take stopped workers too; spawn by hand starts them first. */
START_TEST(test_manual_requests_and_stopped)
{
    reset(2, 10);
    stopped("s1", 10);
    stopped("s2", 20);
    ManualRequest all = {.kind = MANUAL_SHUTDOWN_ALL};
    planner_manual(&snap, &pol, &all, &plan);
    ck_assert_str_eq(plan_str(), "terminate_worker:operator:s1 terminate_worker:operator:s2");
    ManualRequest one = {.kind = MANUAL_TERMINATE};
    snprintf(one.worker_id, sizeof one.worker_id, "pod-s2");
    planner_manual(&snap, &pol, &one, &plan);
    ck_assert_str_eq(plan_str(), "terminate_worker:operator:s2");
    ManualRequest spawn = {.kind = MANUAL_SPAWN, .count = 3};
    planner_manual(&snap, &pol, &spawn, &plan);
    ck_assert_str_eq(plan_str(),
                     "start_worker:operator:s2 start_worker:operator:s1 spawn_worker:operator");
}
END_TEST

/* A task held by a stopped worker (it cannot be working) is recovered. */
START_TEST(test_task_of_stopped_worker_recovered)
{
    reset(2, 10);
    stopped("s1", 10);
    SnapTask *t = &snap.tasks[snap.n_tasks++];
    snprintf(t->id, sizeof t->id, "t1");
    snprintf(t->worker_id, sizeof t->worker_id, "s1");
    snprintf(t->run_type, sizeof t->run_type, "gpu");
    t->holder_known = true;
    t->max_attempts = 3;
    decide();
    ck_assert_str_eq(plan_str(), "recover_task:worker_failed:t1 start_worker:backlog:s1");
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* A restarted row lives from its start                                                        */

static const struct {
    const char *name;
    long long restart_age;
    bool heartbeat_after_start;
    int list;
    const char *want;
} RESTART_CASES[] = {
    {"old row, young start: waits", 10, false, 0, ""},
    {"first heartbeat after the start: promoted", 10, true, 0, "promote_worker:first_heartbeat:r"},
    {"no heartbeat SPAWNING_TIMEOUT_SEC after the start: failed", SPAWN_TO + 1, false, 0,
     "fail_worker:spawning_timeout:r terminate_worker:error_cleanup:r"},
    {"still EXITED within the lag of the start: waits", NOT_FOUND, false, SNAP_POD_EXITED, ""},
    {"still EXITED after the lag: failed", NOT_FOUND + 1, false, SNAP_POD_EXITED,
     "fail_worker:pod_exited:r terminate_worker:error_cleanup:r"},
};

START_TEST(test_restarted_row_timed_from_its_start)
{
    reset(2, 10);
    SnapWorker *w = worker("r", WORKER_SPAWNING);
    w->age_sec = 100000; /* created long ago: only the start may count */
    w->restarted = true;
    w->restart_age_sec = RESTART_CASES[_i].restart_age;
    w->heartbeat_after_create = RESTART_CASES[_i].heartbeat_after_start;
    if (RESTART_CASES[_i].list)
        pod("r", (SnapPodStatus)RESTART_CASES[_i].list);
    decide();
    ck_assert_msg(strcmp(plan_str(), RESTART_CASES[_i].want) == 0, "%s: got \"%s\"",
                  RESTART_CASES[_i].name, plan_str());
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Spend: the larger of estimate and bill                                                      */

static const struct {
    const char *name;
    double billed_w;    /* billed for the active worker's pod (0 none) */
    double unexplained; /* billed for pods no row records */
    bool known;         /* a recent billing read */
    int n_stopped;
    long long want_spawn;
    double want_effective;
} SPEND_CASES[] = {
    /* cap 3.00, price 0.69: one active pod (0.69) leaves room for 3 more on the estimate */
    {"estimate alone", 0, 0, false, 0, 3, 0.69},
    {"billed below the estimate changes nothing", 0.10, 0, true, 0, 3, 0.69},
    {"a mis-priced pod: billed 1.50 for it", 1.50, 0, true, 0, 2, 1.50},
    {"a pod this system cannot see: 1.00 unexplained", 0, 1.00, true, 0, 1, 1.69},
    {"an unknown read never counts its unexplained part", 0, 1.00, false, 0, 3, 0.69},
    {"stopped pods count at their disk price", 0, 0, false, 10, 3, 0.69 + 10 * 0.02},
    {"stopped pods at disk price can tip the cap", 0, 0, false, 20, 2, 0.69 + 20 * 0.02},
};

START_TEST(test_spend_takes_the_larger_of_estimate_and_bill)
{
    reset(30, 10);
    pol.max_hourly_spend = pol.pools[0].max_hourly_spend = 3.0;
    price(0.69);
    SnapWorker *w = worker("a", WORKER_ACTIVE);
    w->tasks_held = 1;
    w->billed_usd_per_hr = SPEND_CASES[_i].billed_w;
    snap.billing_known = SPEND_CASES[_i].known;
    snap.billing_unexplained_usd_per_hr = SPEND_CASES[_i].unexplained;
    char id[16];
    for (int k = 0; k < SPEND_CASES[_i].n_stopped; k++) {
        snprintf(id, sizeof id, "s%d", k);
        SnapWorker *s = stopped(id, 10);
        s->runpod_id[0] = '\0'; /* cannot be started: only its cost matters here */
    }
    demand(10);
    decide();
    ck_assert_msg(plan.to_spawn == SPEND_CASES[_i].want_spawn, "%s: to_spawn %lld",
                  SPEND_CASES[_i].name, plan.to_spawn);
    ck_assert_msg(fabs(plan.fleet_cost_per_hr - SPEND_CASES[_i].want_effective) < 1e-9,
                  "%s: effective %f", SPEND_CASES[_i].name, plan.fleet_cost_per_hr);
    ck_assert(plan.fleet_cost_per_hr >= plan.spend_estimate_per_hr - 1e-12);
    if (SPEND_CASES[_i].want_spawn < 3)
        ck_assert_int_eq(plan.spawn_limit, SPAWN_LIMIT_SPEND_CAP);
}
END_TEST

/* Whatever the bill says, the figure the cap uses is never below the estimate. */
START_TEST(test_spend_never_below_the_estimate)
{
    unsigned seed = 12345;
    for (int round = 0; round < 500; round++) {
        reset(3, 10);
        price(0.69);
        snap.billing_known = (seed >> 3) & 1;
        int n = (int)(seed % 6);
        for (int k = 0; k < n; k++) {
            char id[16];
            snprintf(id, sizeof id, "w%d", k);
            SnapWorker *w = worker(id, k % 3 == 0 ? WORKER_STOPPED : WORKER_ACTIVE);
            w->tasks_held = 1;
            seed = seed * 1103515245u + 12345u;
            w->billed_usd_per_hr = (double)(seed % 300) / 100.0;
            w->cost_per_hr = (seed >> 8) % 2 ? 0.69 : 0; /* unknown price: the ceiling */
        }
        seed = seed * 1103515245u + 12345u;
        snap.billing_unexplained_usd_per_hr = (double)(seed % 200) / 100.0;
        decide();
        ck_assert(plan.fleet_cost_per_hr >= plan.spend_estimate_per_hr - 1e-12);
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Which terminations read a log tail first                                                    */

START_TEST(test_fetch_logs_for_failed_workers_only)
{
    reset(0, 10);
    SnapWorker *e = worker("err", WORKER_ERROR);
    (void)e;
    SnapWorker *nopod = worker("nopod", WORKER_ERROR);
    nopod->runpod_id[0] = '\0';
    idle_worker("idle");
    SnapWorker *stale = worker("stale", WORKER_ACTIVE);
    stale->heartbeat_age_sec = IDLE + 1;
    decide();
    for (size_t i = 0; i < plan.count; i++) {
        const Action *a = &plan.actions[i];
        if (a->kind != ACTION_TERMINATE_WORKER)
            continue;
        bool want = strcmp(a->worker_id, "err") == 0 || strcmp(a->worker_id, "stale") == 0;
        ck_assert_msg(a->fetch_logs == want, "%s: fetch_logs %d", a->worker_id, a->fetch_logs);
    }
    ck_assert_uint_eq(plan_count(&plan, ACTION_TERMINATE_WORKER), 4);

    /* By hand: a crashed row's tail is read, an active one's is not. */
    reset(0, 10);
    worker("c", WORKER_CRASHED);
    worker("a", WORKER_ACTIVE);
    ManualRequest all = {.kind = MANUAL_SHUTDOWN_ALL};
    planner_manual(&snap, &pol, &all, &plan);
    for (size_t i = 0; i < plan.count; i++)
        if (plan.actions[i].kind == ACTION_TERMINATE_WORKER)
            ck_assert_int_eq(plan.actions[i].fetch_logs,
                             strcmp(plan.actions[i].worker_id, "c") == 0);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* The policy from the configuration                                                           */

START_TEST(test_policy_warm_settings_per_pool)
{
    static Config cfg;
    static ConfigErrors errs;
    const char *envp[] = {"POOLS=a,b",
                          "POOL_A_RUN_TYPES=a",
                          "POOL_B_RUN_TYPES=b",
                          "MIN_ACTIVE_GPUS=0",
                          "WARM_STOPPED_PODS=1",
                          "POOL_A_WARM_STOPPED_PODS=3",
                          "RUNPOD_CONTAINER_DISK_GB=100",
                          "STOPPED_POD_DISK_USD_PER_GB_MONTH=0.73",
                          "STOPPED_POD_MAX_AGE_SEC=7200",
                          NULL};
    ck_assert_int_eq(config_parse(envp, "h", CONFIG_NEED_NOTHING, &cfg, &errs), STATUS_OK);
    policy_from_config(&cfg, &pol);
    ck_assert_int_eq(pol.pools[0].warm_stopped, 3);
    ck_assert_int_eq(pol.pools[1].warm_stopped, 1);
    ck_assert(fabs(pol.pools[0].stopped_cost_per_hr - 0.1) < 1e-9); /* 100 GB x 0.73 / 730 h */
    ck_assert_int_eq(pol.stopped_max_age_sec, 7200);

    const char *bad[] = {"POOLS=a", "POOL_A_RUN_TYPES=a", "MIN_ACTIVE_GPUS=0",
                         "POOL_A_WARM_STOPPED_PODS=-1", NULL};
    ck_assert_int_eq(config_parse(bad, "h", CONFIG_NEED_NOTHING, &cfg, &errs), STATUS_ERR_CONFIG);
    ck_assert_msg(strstr(errs.messages[0], "POOL_A_WARM_STOPPED_PODS"), "%s", errs.messages[0]);

    const char *dflt[] = {NULL};
    ck_assert_int_eq(config_parse(dflt, "h", CONFIG_NEED_NOTHING, &cfg, &errs), STATUS_OK);
    ck_assert_int_eq(cfg.warm_stopped_pods, 0); /* off: today's behaviour */
    ck_assert_int_eq(cfg.pools[0].warm_stopped_pods, 0);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* A stopped pod's GPU type and price (review of issue 16, defect 2)                           */

/* Only a stopped pod of a type the pool may use now is started, its slot charged at the larger
 * of the pool's price bound and its own price; one of a type taken out of the pool goes. Pool
 * types GPU-A ($0.40) and, when `both`, GPU-H ($2.69); one stopped pod s1. */
static const struct {
    const char *name;
    bool both, h_backoff, pool_cap;
    const char *type;
    double own_price, cap;
    long long demand;
    const char *want;
} TYPE_CASES[] = {
    {"its type taken out of the pool: terminated, a create instead", false, false, false, "GPU-H",
     2.69, 0, 1, "terminate_worker:stopped_type_gone:s1 spawn_worker:backlog"},
    {"the review's case: type gone under a $1 cap: two $0.40 creates, never the $2.69 pod", false,
     false, false, "GPU-H", 2.69, 1.0, 2,
     "terminate_worker:stopped_type_gone:s1 spawn_worker:backlog spawn_worker:backlog"},
    {"its type in capacity backoff: kept, not started; a create", true, true, false, "GPU-H", 2.69,
     0, 1, "spawn_worker:backlog"},
    {"its type usable: started", true, false, false, "GPU-H", 2.69, 0, 1,
     "start_worker:backlog:s1"},
    {"priced above the bound ($2.69 > $0.40): does not fit $1, nothing", false, false, false,
     "GPU-A", 2.69, 1.0, 2, ""},
    {"the same under the pool's own cap", false, false, true, "GPU-A", 2.69, 1.0, 2, ""},
    {"priced above the bound: room for it and two creates", false, false, false, "GPU-A", 2.69, 3.6,
     3, "start_worker:backlog:s1 spawn_worker:backlog spawn_worker:backlog"},
    {"the same under the pool's own cap", false, false, true, "GPU-A", 2.69, 3.6, 3,
     "start_worker:backlog:s1 spawn_worker:backlog spawn_worker:backlog"},
    {"cheaper than the bound: charged at the bound", false, false, false, "GPU-A", 0.30, 1.0, 3,
     "start_worker:backlog:s1 spawn_worker:backlog"},
    {"no type recorded, its price known: started", false, false, false, "", 0.69, 1.0, 1,
     "start_worker:backlog:s1"},
    {"no type, no price recorded: charged at the dearest known ($2.69), nothing", false, false,
     false, "", 0, 1.0, 1, ""},
};

START_TEST(test_stopped_type_and_price)
{
    reset(5, 10);
    PolicyPool *pp = &pol.pools[0];
    if (TYPE_CASES[_i].both)
        snprintf(pp->gpu_types[pp->n_gpu_types++], SNAP_NAME_MAX, "GPU-H");
    if (TYPE_CASES[_i].pool_cap)
        pp->max_hourly_spend = TYPE_CASES[_i].cap;
    else
        pol.max_hourly_spend = TYPE_CASES[_i].cap;
    snprintf(snap.prices[0].gpu_type, SNAP_NAME_MAX, "GPU-A");
    snap.prices[0].usd_per_hr = 0.40;
    snprintf(snap.prices[1].gpu_type, SNAP_NAME_MAX, "GPU-H");
    snap.prices[1].usd_per_hr = 2.69;
    snap.n_prices = 2;
    if (TYPE_CASES[_i].h_backoff) {
        snprintf(snap.backoffs[0].gpu_type, SNAP_NAME_MAX, "GPU-H");
        snap.backoffs[0].remaining_sec = 100;
        snap.backoffs[0].failures = 1;
        snap.n_backoffs = 1;
    }
    SnapWorker *w = stopped("s1", 20);
    snprintf(w->gpu_type, sizeof w->gpu_type, "%s", TYPE_CASES[_i].type);
    w->cost_per_hr = TYPE_CASES[_i].own_price;
    demand(TYPE_CASES[_i].demand);
    decide();
    ck_assert_msg(strcmp(plan_str(), TYPE_CASES[_i].want) == 0, "%s: got \"%s\"",
                  TYPE_CASES[_i].name, plan_str());
    /* What the plan starts and creates never takes the fleet past its cap. */
    double after = 0.02 * (double)plan.stopped;
    for (size_t i = 0; i < plan.count; i++)
        after += plan.actions[i].kind == ACTION_START_WORKER   ? TYPE_CASES[_i].own_price
                 : plan.actions[i].kind == ACTION_SPAWN_WORKER ? 0.40
                                                               : 0;
    if (TYPE_CASES[_i].cap > 0)
        ck_assert_msg(after <= TYPE_CASES[_i].cap + 1e-9, "%s: $%.2f/h", TYPE_CASES[_i].name,
                      after);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("planner_warm");
    TCase *tc = tcase_create("warm_stop");
    tcase_add_loop_test(tc, test_warm_stop_or_terminate, 0, (int)ARRAY_LEN(STOP_CASES));
    tcase_add_test(tc, test_warm_stop_fills_the_pool_only);
    tcase_add_test(tc, test_warm_stop_only_what_this_plan_drained);
    suite_add_tcase(s, tc);
    tc = tcase_create("warm_start");
    tcase_add_loop_test(tc, test_warm_start_before_create, 0, (int)ARRAY_LEN(START_CASES));
    tcase_add_test(tc, test_stopped_is_not_capacity);
    tcase_add_test(tc, test_task_of_stopped_worker_recovered);
    suite_add_tcase(s, tc);
    tc = tcase_create("stopped_bounds");
    tcase_add_loop_test(tc, test_stopped_bounds, 0, (int)ARRAY_LEN(BOUND_CASES));
    tcase_add_test(tc, test_manual_requests_and_stopped);
    tcase_add_loop_test(tc, test_stopped_type_and_price, 0, (int)ARRAY_LEN(TYPE_CASES));
    suite_add_tcase(s, tc);
    tc = tcase_create("restarted");
    tcase_add_loop_test(tc, test_restarted_row_timed_from_its_start, 0,
                        (int)ARRAY_LEN(RESTART_CASES));
    suite_add_tcase(s, tc);
    tc = tcase_create("spend");
    tcase_add_loop_test(tc, test_spend_takes_the_larger_of_estimate_and_bill, 0,
                        (int)ARRAY_LEN(SPEND_CASES));
    tcase_add_test(tc, test_spend_never_below_the_estimate);
    suite_add_tcase(s, tc);
    tc = tcase_create("policy");
    tcase_add_test(tc, test_policy_warm_settings_per_pool);
    suite_add_tcase(s, tc);
    tc = tcase_create("fetch_logs");
    tcase_add_test(tc, test_fetch_logs_for_failed_workers_only);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
