/* test_planner.c -- table-driven unit tests of planner_decide() (SPEC section 6, section 8).
 *
 * Pure: builds a Snapshot and a Policy in memory, runs the planner and checks the Plan. No I/O,
 * no clock. Snapshot and Plan are megabytes, so they are file-scope statics reset by every test
 * (CK_FORK runs each row in its own process; reset() also keeps CK_FORK=no correct).
 *
 * Every timeout in the base policy has a different value, so a boundary row fails if the planner
 * compares against the wrong setting. A plan is compared as one string of
 * "kind:reason[:id]" words in order, so a row also fails on any unexpected extra action.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static Snapshot snap;
static Policy pol;
static Plan plan;

/* ------------------------------------------------------------------------------------------ */
/* Builders                                                                                    */

enum {
    IDLE_TIMEOUT = 300,     /* GPU_IDLE_TIMEOUT_SEC */
    STUCK_TIMEOUT = 350,    /* TASK_STUCK_TIMEOUT_SEC */
    SPAWNING_TIMEOUT = 400, /* SPAWNING_TIMEOUT_SEC */
    GRACEFUL_TIMEOUT = 600, /* GRACEFUL_SHUTDOWN_TIMEOUT_SEC */
    GRACE_PERIOD = 120,     /* WORKER_GRACE_PERIOD_SEC */
    POD_ID_GRACE = 90,      /* SPAWN_POD_ID_GRACE_SEC */
    NOT_FOUND_GRACE = 60,   /* POD_NOT_FOUND_GRACE_SEC */
    RECONCILE_EVERY = 200,  /* RECONCILE_INTERVAL_SEC */
    ORPHAN_GRACE = 500,     /* ORPHAN_POD_GRACE_SEC */
};

/* Empty world, default policy (MIN 0 so that nothing spawns unless a row asks), reconcile not
 * due, pods not listed. */
static void reset(void)
{
    memset(&snap, 0, sizeof snap);
    memset(&plan, 0, sizeof plan);
    memset(&pol, 0, sizeof pol);
    pol.min_active = 0;
    pol.max_active = 10;
    pol.tasks_per_gpu = 3;
    pol.keep_idle = 0;
    pol.idle_timeout_sec = IDLE_TIMEOUT;
    pol.stuck_timeout_sec = STUCK_TIMEOUT;
    pol.spawning_timeout_sec = SPAWNING_TIMEOUT;
    pol.graceful_timeout_sec = GRACEFUL_TIMEOUT;
    pol.grace_period_sec = GRACE_PERIOD;
    pol.pod_id_grace_sec = POD_ID_GRACE;
    pol.pod_not_found_grace_sec = NOT_FOUND_GRACE;
    pol.max_task_attempts = 3;
    pol.max_failure_rate = 0.8;
    pol.min_workers_for_rate = 5;
    pol.max_hourly_spend = 0;
    pol.reconcile_interval_sec = RECONCILE_EVERY;
    pol.orphan_pod_grace_sec = ORPHAN_GRACE;
    snprintf(pol.worker_prefix, sizeof pol.worker_prefix, "gpu-");
    pol.n_gpu_types = 1;
    snprintf(pol.gpu_types[0], sizeof pol.gpu_types[0], "NVIDIA GeForce RTX 4090");
    snap.since_reconcile_sec = 0;
}

/* A worker row; ages in seconds, -1 = never. Its pod id is "pod-<id>", its first heartbeat came
 * after its creation when it has one, and its VRAM and price are unknown. */
static SnapWorker *add_worker(const char *id, WorkerState state, long long age_sec,
                              long long heartbeat_age_sec, long long promoted_age_sec,
                              long long activity_age_sec)
{
    ck_assert_uint_lt(snap.n_workers, SNAP_WORKERS_MAX);
    SnapWorker *w = &snap.workers[snap.n_workers++];
    memset(w, 0, sizeof *w);
    snprintf(w->id, sizeof w->id, "%s", id);
    w->state = state;
    snprintf(w->runpod_id, sizeof w->runpod_id, "pod-%.50s", id);
    w->age_sec = age_sec;
    w->heartbeat_age_sec = heartbeat_age_sec;
    w->heartbeat_after_create = heartbeat_age_sec >= 0;
    w->promoted_age_sec = promoted_age_sec;
    w->activity_age_sec = activity_age_sec;
    w->terminating_age_sec = -1;
    w->vram_total_mb = -1;
    w->vram_used_mb = -1;
    w->create_unknown_age_sec = -1;
    w->pod_age_sec = -1; /* the lag windows then count from the row's age */
    snprintf(w->gpu_type, sizeof w->gpu_type, "NVIDIA GeForce RTX 4090");
    return w;
}

/* An In Progress task held by worker_id ("" = none), started age_sec ago. */
static SnapTask *add_task(const char *id, const char *worker_id, long long age_sec, int attempts)
{
    ck_assert_uint_lt(snap.n_tasks, SNAP_TASKS_MAX);
    SnapTask *t = &snap.tasks[snap.n_tasks++];
    memset(t, 0, sizeof *t);
    snprintf(t->id, sizeof t->id, "%s", id);
    snprintf(t->worker_id, sizeof t->worker_id, "%s", worker_id);
    snprintf(t->task_type, sizeof t->task_type, "generate");
    t->age_sec = age_sec;
    t->attempts = attempts;
    t->max_attempts = 3;
    t->holder_known = true; /* held by one of ours (a live row, or one that has ended) */
    snap.in_progress_total++;
    return t;
}

/* A RunPod pod in the listing (the caller sets snap.pods_listed). */
static SnapPod *add_pod(const char *id, const char *name, SnapPodStatus status, long long age_sec)
{
    ck_assert_uint_lt(snap.n_pods, SNAP_PODS_MAX);
    SnapPod *p = &snap.pods[snap.n_pods++];
    memset(p, 0, sizeof *p);
    snprintf(p->id, sizeof p->id, "%s", id);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->status = status;
    p->age_sec = age_sec;
    return p;
}

/* Healthy active worker that finished a task 10 s ago: neither failed nor drained. */
static SnapWorker *add_active(const char *id, long long age_sec)
{
    return add_worker(id, WORKER_ACTIVE, age_sec, 5, age_sec / 2, 10);
}

/* Healthy active worker holding task "t-<id>" (started 5 s ago). */
static SnapWorker *add_busy(const char *id)
{
    char task_id[SNAP_TASK_ID_MAX];
    snprintf(task_id, sizeof task_id, "t-%.30s", id);
    add_task(task_id, id, 5, 0);
    return add_worker(id, WORKER_ACTIVE, 5000, 5, 4000, 5);
}

/* Active worker idle for 1000 s and promoted long ago: past every scale-down threshold. */
static SnapWorker *add_idle_old(const char *id, long long age_sec)
{
    return add_worker(id, WORKER_ACTIVE, age_sec, 5, age_sec - 50, 1000);
}

/* Young spawning worker with a pod id and no heartbeat yet: left alone. */
static SnapWorker *add_spawning(const char *id)
{
    return add_worker(id, WORKER_SPAWNING, 10, -1, -1, -1);
}

/* Terminating worker still holding task "t-<id>", moved to terminating 10 s ago. */
static SnapWorker *add_terminating_busy(const char *id)
{
    char task_id[SNAP_TASK_ID_MAX];
    snprintf(task_id, sizeof task_id, "t-%.30s", id);
    add_task(task_id, id, 5, 0);
    SnapWorker *w = add_worker(id, WORKER_TERMINATING, 5000, 5, 4000, 5);
    w->terminating_age_sec = 10;
    return w;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading the plan                                                                            */

static const char *action_id(const Action *a)
{
    if (a->kind == ACTION_RECOVER_TASK)
        return a->task_id;
    if (a->kind == ACTION_TERMINATE_POD)
        return a->pod_id;
    return a->worker_id;
}

/* The plan as "kind:reason[:id]" words in order, e.g. "fail_worker:worker_crashed:w1". */
static const char *plan_str(void)
{
    static char buf[8192];
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < plan.count; i++) {
        const Action *a = &plan.actions[i];
        const char *id = action_id(a);
        int n = snprintf(buf + off, sizeof buf - off, "%s%s:%s%s%s", i ? " " : "",
                         action_kind_str(a->kind), reason_str(a->reason), id[0] ? ":" : "", id);
        if (n < 0 || (size_t)n >= sizeof buf - off)
            break;
        off += (size_t)n;
    }
    return buf;
}

/* Index of the first action of a kind for an id (worker, task or pod as in action_id), or -1. */
static long long find_action(ActionKind kind, const char *id)
{
    for (size_t i = 0; i < plan.count; i++)
        if (plan.actions[i].kind == kind && strcmp(action_id(&plan.actions[i]), id) == 0)
            return (long long)i;
    return -1;
}

static size_t count_for(ActionKind kind, const char *id)
{
    size_t n = 0;
    for (size_t i = 0; i < plan.count; i++)
        if (plan.actions[i].kind == kind && strcmp(action_id(&plan.actions[i]), id) == 0)
            n++;
    return n;
}

/* Ids of the DRAIN_WORKER actions in plan order, space-separated. */
static const char *drained_str(void)
{
    static char buf[1024];
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < plan.count; i++) {
        if (plan.actions[i].kind != ACTION_DRAIN_WORKER)
            continue;
        int n = snprintf(buf + off, sizeof buf - off, "%s%s", off ? " " : "",
                         plan.actions[i].worker_id);
        if (n < 0 || (size_t)n >= sizeof buf - off)
            break;
        off += (size_t)n;
    }
    return buf;
}

/* Rules every plan obeys, whatever the row: a drained worker and a failed worker are terminated
 * later in the same plan, a task is recovered before its worker is terminated, nothing is
 * failed, terminated or recovered twice, and to_spawn matches the spawn actions. */
static void check_invariants(const char *name)
{
    ck_assert_msg(!plan.truncated, "%s: plan truncated", name);
    ck_assert_msg((size_t)plan.to_spawn == plan_count(&plan, ACTION_SPAWN_WORKER),
                  "%s: to_spawn %lld but %zu spawn actions", name, plan.to_spawn,
                  plan_count(&plan, ACTION_SPAWN_WORKER));
    for (size_t i = 0; i < plan.count; i++) {
        const Action *a = &plan.actions[i];
        const char *id = action_id(a);
        long long term = find_action(ACTION_TERMINATE_WORKER, a->worker_id);
        switch (a->kind) {
        case ACTION_DRAIN_WORKER:
            ck_assert_msg(a->from_state == WORKER_ACTIVE, "%s: drain %s not from active", name, id);
            ck_assert_msg(term > (long long)i, "%s: drained %s not terminated after", name, id);
            ck_assert_msg(plan.actions[term].reason == REASON_DRAINED &&
                              plan.actions[term].from_state == WORKER_TERMINATING,
                          "%s: drained %s terminated as %s", name, id,
                          reason_str(plan.actions[term].reason));
            ck_assert_msg(count_for(ACTION_DRAIN_WORKER, id) == 1, "%s: %s drained twice", name,
                          id);
            break;
        case ACTION_FAIL_WORKER:
            ck_assert_msg(a->unexpected, "%s: failure of %s not unexpected", name, id);
            ck_assert_msg(a->detail[0], "%s: failure of %s without error_reason", name, id);
            ck_assert_msg(term > (long long)i, "%s: failed %s not terminated after", name, id);
            ck_assert_msg(plan.actions[term].reason == REASON_ERROR_CLEANUP &&
                              plan.actions[term].from_state == WORKER_ERROR,
                          "%s: failed %s terminated as %s", name, id,
                          reason_str(plan.actions[term].reason));
            ck_assert_msg(count_for(ACTION_FAIL_WORKER, id) == 1, "%s: %s failed twice", name, id);
            break;
        case ACTION_RECOVER_TASK:
            ck_assert_msg(count_for(ACTION_RECOVER_TASK, id) == 1, "%s: %s recovered twice", name,
                          id);
            ck_assert_msg(term < 0 || term > (long long)i,
                          "%s: task %s recovered after its worker %s was terminated", name, id,
                          a->worker_id);
            break;
        case ACTION_TERMINATE_WORKER:
            ck_assert_msg(count_for(ACTION_TERMINATE_WORKER, id) == 1, "%s: %s terminated twice",
                          name, id);
            break;
        default:
            break;
        }
    }
}

/* What db_load_snapshot computes in SQL over every In Progress task: each worker's count of
 * held tasks and its oldest non-exempt task (id, age; NULL ages last). A test that sets these
 * fields itself (holding tasks past SNAP_TASKS_MAX) marks the worker with tasks_held < 0 first,
 * and this leaves it alone. */
static void derive_worker_task_facts(void)
{
    for (size_t i = 0; i < snap.n_workers; i++) {
        SnapWorker *w = &snap.workers[i];
        if (w->tasks_held < 0) {
            w->tasks_held = -w->tasks_held;
            continue;
        }
        w->tasks_held = 0;
        w->oldest_task_id[0] = '\0';
        w->oldest_task_age_sec = -1;
        for (size_t t = 0; t < snap.n_tasks; t++) {
            const SnapTask *task = &snap.tasks[t];
            if (strcmp(task->worker_id, w->id) != 0)
                continue;
            w->tasks_held++;
            if (task->exempt || task->age_sec < 0)
                continue;
            if (!w->oldest_task_id[0] || task->age_sec > w->oldest_task_age_sec) {
                snprintf(w->oldest_task_id, sizeof w->oldest_task_id, "%s", task->id);
                w->oldest_task_age_sec = task->age_sec;
            }
        }
    }
}

/* The single-pool world most rows describe with the flat fields: when a test configured no
 * pool, the one pool `default` (run_type gpu) takes the policy's settings, the queue its
 * queued_claimable, the breaker its window counts, and every worker without a pool joins it --
 * exactly what policy_from_config and db_load_snapshot give with POOLS unset. */
static void default_pool(void)
{
    if (pol.n_pools == 0) {
        PolicyPool *pp = &pol.pools[pol.n_pools++];
        memset(pp, 0, sizeof *pp);
        snprintf(pp->name, sizeof pp->name, "default");
        pp->n_run_types = 1;
        snprintf(pp->run_types[0], sizeof pp->run_types[0], "gpu");
        pp->min_active = pol.min_active;
        pp->max_active = pol.max_active;
        pp->tasks_per_gpu = pol.tasks_per_gpu;
        pp->keep_idle = pol.keep_idle;
        pp->idle_timeout_sec = pol.idle_timeout_sec;
        pp->stuck_timeout_sec = pol.stuck_timeout_sec;
        pp->spawning_timeout_sec = pol.spawning_timeout_sec;
        pp->grace_period_sec = pol.grace_period_sec;
        pp->max_hourly_spend = pol.max_hourly_spend;
        snprintf(pp->cloud_type, sizeof pp->cloud_type, "SECURE");
        pp->n_gpu_types = pol.n_gpu_types;
        memcpy(pp->gpu_types, pol.gpu_types, sizeof pp->gpu_types);
    }
    if (snap.n_run_types == 0 && snap.queued_claimable > 0) {
        snap.n_run_types = 1;
        snprintf(snap.run_types[0].name, sizeof snap.run_types[0].name, "gpu");
        snap.run_types[0].claimable = snap.queued_claimable;
        snap.run_types[0].queued =
            snap.queued_total > snap.queued_claimable ? snap.queued_total : snap.queued_claimable;
    }
    if (snap.n_pool_endings == 0 && snap.ended_in_window > 0) {
        snap.n_pool_endings = 1;
        snprintf(snap.pool_endings[0].pool, sizeof snap.pool_endings[0].pool, "default");
        snap.pool_endings[0].ended = snap.ended_in_window;
        snap.pool_endings[0].unexpected = snap.unexpected_in_window;
    }
    for (size_t i = 0; i < snap.n_workers; i++)
        if (!snap.workers[i].pool[0])
            snprintf(snap.workers[i].pool, sizeof snap.workers[i].pool, "default");
    for (size_t t = 0; t < snap.n_tasks; t++)
        if (!snap.tasks[t].run_type[0])
            snprintf(snap.tasks[t].run_type, sizeof snap.tasks[t].run_type, "gpu");
}

static void decide(const char *name)
{
    derive_worker_task_facts();
    default_pool();
    planner_decide(&snap, &pol, &plan);
    check_invariants(name);
}

static void check_plan(const char *name, const char *want)
{
    const char *got = plan_str();
    ck_assert_msg(strcmp(got, want) == 0, "%s:\n  plan \"%s\"\n  want \"%s\"", name, got, want);
}

static const Action *the_action(const char *name, ActionKind kind, const char *id)
{
    long long k = find_action(kind, id);
    ck_assert_msg(k >= 0, "%s: no %s for %s in \"%s\"", name, action_kind_str(kind), id,
                  plan_str());
    return &plan.actions[k];
}

/* ------------------------------------------------------------------------------------------ */
/* Step 2: stale heartbeat (GPU_IDLE_TIMEOUT_SEC, strictly older)                              */

static const struct {
    const char *name;
    long long heartbeat_age, promoted_age;
    int with_task;
    const char *want_plan;
    const char *want_detail;
} HEARTBEAT_CASES[] = {
    {"heartbeat 300s old (= timeout): alive", 300, 4000, 0, "", NULL},
    {"heartbeat 301s old: stale", 301, 4000, 0,
     "fail_worker:stale_heartbeat:w1 terminate_worker:error_cleanup:w1",
     "Stale heartbeat (301s old)"},
    {"heartbeat 300s old with a task: alive", 300, 4000, 1, "", NULL},
    {"heartbeat 301s old with a task: stale, task recovered", 301, 4000, 1,
     "fail_worker:stale_heartbeat:w1 recover_task:worker_failed:t1 "
     "terminate_worker:error_cleanup:w1 spawn_worker:backlog",
     "Stale heartbeat with active tasks (301s old)"},
    {"never a heartbeat, promoted 300s ago: alive", -1, 300, 0, "", NULL},
    {"never a heartbeat, promoted 301s ago: stale", -1, 301, 0,
     "fail_worker:stale_heartbeat:w1 terminate_worker:error_cleanup:w1",
     "Stale heartbeat (301s old)"},
};

START_TEST(test_planner_heartbeat)
{
    const char *name = HEARTBEAT_CASES[_i].name;
    reset();
    add_worker("w1", WORKER_ACTIVE, 5000, HEARTBEAT_CASES[_i].heartbeat_age,
               HEARTBEAT_CASES[_i].promoted_age, 10);
    if (HEARTBEAT_CASES[_i].with_task)
        add_task("t1", "w1", 10, 0);
    decide(name);
    check_plan(name, HEARTBEAT_CASES[_i].want_plan);
    if (HEARTBEAT_CASES[_i].want_detail) {
        const Action *a = the_action(name, ACTION_FAIL_WORKER, "w1");
        ck_assert_str_eq(a->detail, HEARTBEAT_CASES[_i].want_detail);
        ck_assert_int_eq(a->from_state, WORKER_ACTIVE);
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Step 2: stuck task (TASK_STUCK_TIMEOUT_SEC), exempt types                                   */

static const struct {
    const char *name;
    long long task_age;
    int exempt;
    int exempt_sibling; /* w1 also holds an old exempt task "t0" */
    const char *want_plan;
    const char *want_detail;
} STUCK_CASES[] = {
    {"task 350s old (= timeout): not stuck", 350, 0, 0, "", NULL},
    {"task 351s old: stuck", 351, 0, 0,
     "fail_worker:stuck_task:w1 recover_task:worker_failed:t1 terminate_worker:error_cleanup:w1 "
     "spawn_worker:backlog",
     "Stuck task t1 (timeout: 350s)"},
    {"exempt task 100000s old: not stuck", 100000, 1, 0, "", NULL},
    {"task start unknown (-1): not stuck", -1, 0, 0, "", NULL},
    {"exempt task old, other task 350s: not stuck", 350, 0, 1, "", NULL},
    {"exempt task old, other task 351s: stuck on the other", 351, 0, 1,
     "fail_worker:stuck_task:w1 recover_task:worker_failed:t0 recover_task:worker_failed:t1 "
     "terminate_worker:error_cleanup:w1 spawn_worker:backlog",
     "Stuck task t1 (timeout: 350s)"},
};

START_TEST(test_planner_stuck)
{
    const char *name = STUCK_CASES[_i].name;
    reset();
    add_worker("w1", WORKER_ACTIVE, 5000, 5, 4000, 5);
    if (STUCK_CASES[_i].exempt_sibling)
        add_task("t0", "w1", 100000, 0)->exempt = true;
    add_task("t1", "w1", STUCK_CASES[_i].task_age, 0)->exempt = STUCK_CASES[_i].exempt;
    decide(name);
    check_plan(name, STUCK_CASES[_i].want_plan);
    if (STUCK_CASES[_i].want_detail)
        ck_assert_str_eq(the_action(name, ACTION_FAIL_WORKER, "w1")->detail,
                         STUCK_CASES[_i].want_detail);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Step 1: spawning workers -- promotion, pod id grace, pod status, 404 grace, timeout, adoption */

static const struct {
    const char *name;
    long long age, heartbeat_age;
    int heartbeat_after_create;
    int pod_recorded; /* the row has pod id "p1" */
    int pods_listed;
    int pod_exists; /* pod "p1" named "gpu-20261130_120000-5e1a1a1a" is in snap.pods */
    SnapPodStatus pod_status;
    const char *want_plan;
    const char *want_detail;
    const char *want_pod_id; /* of the adopt / terminate action, when there is one */
} SPAWNING_CASES[] = {
    {"first heartbeat after creation: promoted", 30, 5, 1, 1, 0, 0, SNAP_POD_RUNNING,
     "promote_worker:first_heartbeat:gpu-20261130_120000-5e1a1a1a", NULL, NULL},
    {"heartbeat not after creation: not promoted", 30, 5, 0, 1, 0, 0, SNAP_POD_RUNNING, "", NULL,
     NULL},
    {"first heartbeat after the spawning timeout still promotes", 1000, 5, 1, 1, 0, 0,
     SNAP_POD_RUNNING, "promote_worker:first_heartbeat:gpu-20261130_120000-5e1a1a1a", NULL, NULL},
    {"first heartbeat, no pod id, pod exists by name: adopted, then promoted", 100, 5, 1, 0, 1, 1,
     SNAP_POD_RUNNING,
     "adopt_pod:adopt_orphan_pod:gpu-20261130_120000-5e1a1a1a "
     "promote_worker:first_heartbeat:gpu-20261130_120000-5e1a1a1a",
     NULL, "p1"},
    {"first heartbeat, no pod id, pods not listed: promoted", 100, 5, 1, 0, 0, 1, SNAP_POD_RUNNING,
     "promote_worker:first_heartbeat:gpu-20261130_120000-5e1a1a1a", NULL, NULL},
    {"no heartbeat, 400s (= timeout): waits", 400, -1, 0, 1, 0, 0, SNAP_POD_RUNNING, "", NULL,
     NULL},
    {"no heartbeat, 401s: spawning timeout", 401, -1, 0, 1, 0, 0, SNAP_POD_RUNNING,
     "fail_worker:spawning_timeout:gpu-20261130_120000-5e1a1a1a "
     "terminate_worker:error_cleanup:gpu-20261130_120000-5e1a1a1a",
     NULL, "p1"},
    {"old heartbeat from before creation, 401s: spawning timeout", 401, 5, 0, 1, 0, 0,
     SNAP_POD_RUNNING,
     "fail_worker:spawning_timeout:gpu-20261130_120000-5e1a1a1a "
     "terminate_worker:error_cleanup:gpu-20261130_120000-5e1a1a1a",
     NULL, "p1"},
    {"no pod id, 90s (= grace): waits", 90, -1, 0, 0, 1, 0, SNAP_POD_RUNNING, "", NULL, NULL},
    {"no pod id, 91s, pod positively absent from the list: failed", 91, -1, 0, 0, 1, 0,
     SNAP_POD_RUNNING,
     "fail_worker:no_pod_id:gpu-20261130_120000-5e1a1a1a "
     "terminate_worker:error_cleanup:gpu-20261130_120000-5e1a1a1a",
     "No Runpod ID: no pod named gpu-20261130_120000-5e1a1a1a listed 91s after its registration",
     ""},
    /* Issue 12.1/12.2: without the list the create's outcome is unknown; failing the row would
     * mark it terminated without any API call while its pod may bill forever. */
    {"no pod id, 91s, pods not listed: waits, holding its slot", 91, -1, 0, 0, 0, 1,
     SNAP_POD_RUNNING, "", NULL, NULL},
    {"no pod id, past SPAWNING_TIMEOUT, pods not listed: still waits", 100000, -1, 0, 0, 0, 1,
     SNAP_POD_RUNNING, "", NULL, NULL},
    {"no pod id, pod exists by name: adopted, not failed", 91, -1, 0, 0, 1, 1, SNAP_POD_RUNNING,
     "adopt_pod:adopt_orphan_pod:gpu-20261130_120000-5e1a1a1a", NULL, "p1"},
    {"no pod id, adopted pod in ERROR: adopted, failed, that pod terminated", 30, -1, 0, 0, 1, 1,
     SNAP_POD_ERROR,
     "adopt_pod:adopt_orphan_pod:gpu-20261130_120000-5e1a1a1a "
     "fail_worker:pod_error:gpu-20261130_120000-5e1a1a1a "
     "terminate_worker:error_cleanup:gpu-20261130_120000-5e1a1a1a",
     NULL, "p1"},
    {"no pod id, adopted pod, 401s: adopted, timed out, that pod terminated", 401, -1, 0, 0, 1, 1,
     SNAP_POD_RUNNING,
     "adopt_pod:adopt_orphan_pod:gpu-20261130_120000-5e1a1a1a "
     "fail_worker:spawning_timeout:gpu-20261130_120000-5e1a1a1a "
     "terminate_worker:error_cleanup:gpu-20261130_120000-5e1a1a1a",
     NULL, "p1"},
    {"pod ERROR: failed", 30, -1, 0, 1, 1, 1, SNAP_POD_ERROR,
     "fail_worker:pod_error:gpu-20261130_120000-5e1a1a1a "
     "terminate_worker:error_cleanup:gpu-20261130_120000-5e1a1a1a",
     NULL, "p1"},
    {"pod EXITED: failed", 30, -1, 0, 1, 1, 1, SNAP_POD_EXITED,
     "fail_worker:pod_exited:gpu-20261130_120000-5e1a1a1a "
     "terminate_worker:error_cleanup:gpu-20261130_120000-5e1a1a1a",
     NULL, "p1"},
    {"pod TERMINATED: failed", 30, -1, 0, 1, 1, 1, SNAP_POD_TERMINATED,
     "fail_worker:pod_terminated:gpu-20261130_120000-5e1a1a1a "
     "terminate_worker:error_cleanup:gpu-20261130_120000-5e1a1a1a",
     NULL, "p1"},
    {"pod RUNNING: waits", 30, -1, 0, 1, 1, 1, SNAP_POD_RUNNING, "", NULL, NULL},
    {"pod PROVISIONING: waits", 30, -1, 0, 1, 1, 1, SNAP_POD_PROVISIONING, "", NULL, NULL},
    {"pod status UNKNOWN: waits", 30, -1, 0, 1, 1, 1, SNAP_POD_UNKNOWN, "", NULL, NULL},
    {"pod ERROR but pods not listed: waits", 30, -1, 0, 1, 0, 1, SNAP_POD_ERROR, "", NULL, NULL},
    {"pod not found, 60s (= grace): waits", 60, -1, 0, 1, 1, 0, SNAP_POD_RUNNING, "", NULL, NULL},
    {"pod not found, 61s: failed", 61, -1, 0, 1, 1, 0, SNAP_POD_RUNNING,
     "fail_worker:pod_gone:gpu-20261130_120000-5e1a1a1a "
     "terminate_worker:error_cleanup:gpu-20261130_120000-5e1a1a1a",
     NULL, "p1"},
    {"pod not found, 61s, pods not listed: waits", 61, -1, 0, 1, 0, 0, SNAP_POD_RUNNING, "", NULL,
     NULL},
};

START_TEST(test_planner_spawning)
{
    const char *name = SPAWNING_CASES[_i].name;
    reset();
    SnapWorker *w = add_worker("gpu-20261130_120000-5e1a1a1a", WORKER_SPAWNING,
                               SPAWNING_CASES[_i].age, SPAWNING_CASES[_i].heartbeat_age, -1, -1);
    w->heartbeat_after_create = SPAWNING_CASES[_i].heartbeat_after_create;
    snprintf(w->runpod_id, sizeof w->runpod_id, "%s", SPAWNING_CASES[_i].pod_recorded ? "p1" : "");
    snap.pods_listed = SPAWNING_CASES[_i].pods_listed;
    if (SPAWNING_CASES[_i].pod_exists)
        add_pod("p1", "gpu-20261130_120000-5e1a1a1a", SPAWNING_CASES[_i].pod_status,
                SPAWNING_CASES[_i].age);
    decide(name);
    check_plan(name, SPAWNING_CASES[_i].want_plan);
    if (SPAWNING_CASES[_i].want_detail)
        ck_assert_str_eq(
            the_action(name, ACTION_FAIL_WORKER, "gpu-20261130_120000-5e1a1a1a")->detail,
            SPAWNING_CASES[_i].want_detail);
    if (find_action(ACTION_FAIL_WORKER, "gpu-20261130_120000-5e1a1a1a") >= 0)
        ck_assert_int_eq(
            the_action(name, ACTION_FAIL_WORKER, "gpu-20261130_120000-5e1a1a1a")->from_state,
            WORKER_SPAWNING);
    if (find_action(ACTION_PROMOTE_WORKER, "gpu-20261130_120000-5e1a1a1a") >= 0)
        ck_assert_int_eq(
            the_action(name, ACTION_PROMOTE_WORKER, "gpu-20261130_120000-5e1a1a1a")->from_state,
            WORKER_SPAWNING);
    if (find_action(ACTION_ADOPT_POD, "gpu-20261130_120000-5e1a1a1a") >= 0)
        ck_assert_str_eq(the_action(name, ACTION_ADOPT_POD, "gpu-20261130_120000-5e1a1a1a")->pod_id,
                         SPAWNING_CASES[_i].want_pod_id);
    if (find_action(ACTION_TERMINATE_WORKER, "gpu-20261130_120000-5e1a1a1a") >= 0)
        ck_assert_msg(
            strcmp(
                the_action(name, ACTION_TERMINATE_WORKER, "gpu-20261130_120000-5e1a1a1a")->pod_id,
                SPAWNING_CASES[_i].want_pod_id) == 0,
            "%s: terminate_worker pod_id \"%s\", want \"%s\"", name,
            the_action(name, ACTION_TERMINATE_WORKER, "gpu-20261130_120000-5e1a1a1a")->pod_id,
            SPAWNING_CASES[_i].want_pod_id);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Steps 2 and 7: an active worker's pod                                                       */

static const struct {
    const char *name;
    long long age;
    int pods_listed, pod_exists;
    SnapPodStatus pod_status;
    const char *want_plan;
    const char *want_detail;
} ACTIVE_POD_CASES[] = {
    {"pod RUNNING: healthy", 5000, 1, 1, SNAP_POD_RUNNING, "", NULL},
    {"pod gone, worker 61s old: externally terminated", 61, 1, 0, SNAP_POD_RUNNING,
     "fail_worker:pod_gone:gpu-a1 terminate_worker:error_cleanup:gpu-a1",
     "Pod externally terminated - not found in RunPod"},
    {"pod gone, worker 60s old (= 404 grace): waits", 60, 1, 0, SNAP_POD_RUNNING, "", NULL},
    {"pod gone but pods not listed: no decision", 5000, 0, 0, SNAP_POD_RUNNING, "", NULL},
    {"pod ERROR: failed", 5000, 1, 1, SNAP_POD_ERROR,
     "fail_worker:pod_error:gpu-a1 terminate_worker:error_cleanup:gpu-a1", NULL},
    {"pod EXITED: failed", 5000, 1, 1, SNAP_POD_EXITED,
     "fail_worker:pod_exited:gpu-a1 terminate_worker:error_cleanup:gpu-a1", NULL},
    {"pod TERMINATED: failed", 5000, 1, 1, SNAP_POD_TERMINATED,
     "fail_worker:pod_terminated:gpu-a1 terminate_worker:error_cleanup:gpu-a1", NULL},
    {"pod EXITED but pods not listed: no decision", 5000, 0, 1, SNAP_POD_EXITED, "", NULL},
};

START_TEST(test_planner_active_pod)
{
    const char *name = ACTIVE_POD_CASES[_i].name;
    reset();
    SnapWorker *w = add_worker("gpu-a1", WORKER_ACTIVE, ACTIVE_POD_CASES[_i].age, 5,
                               ACTIVE_POD_CASES[_i].age / 2, 5);
    snprintf(w->runpod_id, sizeof w->runpod_id, "p1");
    snap.pods_listed = ACTIVE_POD_CASES[_i].pods_listed;
    if (ACTIVE_POD_CASES[_i].pod_exists)
        add_pod("p1", "gpu-a1", ACTIVE_POD_CASES[_i].pod_status, ACTIVE_POD_CASES[_i].age);
    decide(name);
    check_plan(name, ACTIVE_POD_CASES[_i].want_plan);
    if (ACTIVE_POD_CASES[_i].want_detail)
        ck_assert_str_eq(the_action(name, ACTION_FAIL_WORKER, "gpu-a1")->detail,
                         ACTIVE_POD_CASES[_i].want_detail);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Step 5: graceful shutdown (GRACEFUL_SHUTDOWN_TIMEOUT_SEC)                                    */

static const struct {
    const char *name;
    long long terminating_age;
    int with_task;
    const char *want_plan;
} SHUTDOWN_CASES[] = {
    {"terminating without a task: terminated at once", 5, 0, "terminate_worker:drained:w1"},
    {"terminating with a task, 600s (= timeout): waits", 600, 1, ""},
    {"terminating with a task, 601s: task recovered, then terminated", 601, 1,
     "recover_task:graceful_timeout:t1 terminate_worker:graceful_timeout:w1 "
     "spawn_worker:backlog"},
    {"terminating with a task, time unknown (-1): waits", -1, 1, ""},
};

START_TEST(test_planner_shutdown)
{
    const char *name = SHUTDOWN_CASES[_i].name;
    reset();
    SnapWorker *w = add_worker("w1", WORKER_TERMINATING, 5000, 5, 4000, 5);
    w->terminating_age_sec = SHUTDOWN_CASES[_i].terminating_age;
    if (SHUTDOWN_CASES[_i].with_task)
        add_task("t1", "w1", 10, 0);
    decide(name);
    check_plan(name, SHUTDOWN_CASES[_i].want_plan);
    if (find_action(ACTION_TERMINATE_WORKER, "w1") >= 0) {
        const Action *a = the_action(name, ACTION_TERMINATE_WORKER, "w1");
        ck_assert_int_eq(a->from_state, WORKER_TERMINATING);
        ck_assert_str_eq(a->pod_id, "pod-w1");
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Step 4: which idle worker may be drained (idle time, grace period, never the heartbeat)     */

static const struct {
    const char *name;
    long long idle_timeout; /* 0 = the base 300 */
    long long age, heartbeat_age, promoted_age, activity_age;
    int want_drain;
    int task; /* 1: holds a task started activity_age ago; 2: an exempt one */
} IDLE_CASES[] = {
    {"idle 300s since last task (= timeout): kept", 0, 5000, 5, 4000, 300, 0, 0},
    {"idle 301s since last task: drained", 0, 5000, 5, 4000, 301, 1, 0},
    {"never a task, promoted 300s ago: kept", 0, 5000, 5, 300, -1, 0, 0},
    {"never a task, promoted 301s ago: drained", 0, 5000, 5, 301, -1, 1, 0},
    {"never a task nor promotion, created 300s ago: kept", 0, 300, 5, -1, -1, 0, 0},
    {"never a task nor promotion, created 301s ago: drained", 0, 301, 5, -1, -1, 1, 0},
    {"recent task, old promotion: kept", 0, 5000, 5, 4000, 10, 0, 0},
    {"fresh heartbeat does not make it busy", 0, 5000, 1, 4000, 1000, 1, 0},
    {"old heartbeat does not make it idle", 0, 5000, 299, 4000, 10, 0, 0},
    {"idle timeout 60: promoted 120s ago (= grace period): kept", 60, 5000, 5, 120, -1, 0, 0},
    {"idle timeout 60: promoted 121s ago: drained", 60, 5000, 5, 121, -1, 1, 0},
    {"idle timeout 60: task 100s ago, promoted 120s ago: kept", 60, 5000, 5, 120, 100, 0, 0},
    {"holding a task started 340s ago: never drained", 0, 5000, 5, 4000, 340, 0, 1},
    {"holding an exempt task started 100000s ago: never drained", 0, 200000, 5, 150000, 100000, 0,
     2},
};

START_TEST(test_planner_idle)
{
    const char *name = IDLE_CASES[_i].name;
    reset();
    if (IDLE_CASES[_i].idle_timeout)
        pol.idle_timeout_sec = IDLE_CASES[_i].idle_timeout;
    add_worker("w1", WORKER_ACTIVE, IDLE_CASES[_i].age, IDLE_CASES[_i].heartbeat_age,
               IDLE_CASES[_i].promoted_age, IDLE_CASES[_i].activity_age);
    if (IDLE_CASES[_i].task) {
        add_task("t1", "w1", IDLE_CASES[_i].activity_age, 0)->exempt = IDLE_CASES[_i].task == 2;
        add_spawning("s1"); /* one over desired (busy 1), so only the task protects w1 */
    }
    decide(name);
    check_plan(name,
               IDLE_CASES[_i].want_drain ? "drain_worker:idle:w1 terminate_worker:drained:w1" : "");
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Step 4: how many and which workers are drained                                              */

/* Idle workers i1..i4, all past the thresholds; creation ages out of index order so that
 * "newest first" cannot pass by accident: newest first is i4 i2 i3 i1. */
static const long long IDLE_AGES[] = {5000, 3000, 4000, 2000};

static const struct {
    const char *name;
    int min_active, keep_idle, tasks_per_gpu;
    int n_busy, n_idle, n_spawning;
    long long queued;
    int promote_one; /* an old spawning worker "p1" is promoted in this plan */
    int n_failed;    /* crashed workers holding one task each (re-queued in this plan) */
    const char *want_drained;
} SCALE_DOWN_CASES[] = {
    {"MIN 0: every idle worker, newest first", 0, 0, 3, 0, 4, 0, 0, 0, 0, "i4 i2 i3 i1"},
    {"MIN 2: the two newest", 2, 0, 3, 0, 4, 0, 0, 0, 0, "i4 i2"},
    {"MIN 3: the newest", 3, 0, 3, 0, 4, 0, 0, 0, 0, "i4"},
    {"MIN 4 = fleet: none", 4, 0, 3, 0, 4, 0, 0, 0, 0, ""},
    {"MIN 6 above fleet: none", 6, 0, 3, 0, 4, 0, 0, 0, 0, ""},
    {"busy workers are never drained", 0, 0, 3, 3, 0, 0, 0, 0, 0, ""},
    {"busy workers are never drained, idle ones are", 0, 0, 3, 2, 2, 0, 0, 0, 0, "i2 i1"},
    {"floor busy + KEEP_IDLE (2 + 1)", 0, 1, 3, 2, 4, 0, 0, 0, 0, "i4 i2 i3"},
    {"floor busy + KEEP_IDLE (2 + 3)", 0, 3, 3, 2, 4, 0, 0, 0, 0, "i4"},
    {"backlog keeps workers: busy 1 + ceil(4/3)", 0, 0, 3, 1, 4, 0, 4, 0, 0, "i4 i2"},
    {"backlog keeps workers: T=1, 3 queued", 0, 0, 1, 0, 4, 0, 3, 0, 0, "i4"},
    {"spawning workers count as capacity", 2, 0, 3, 0, 4, 1, 0, 0, 0, "i4 i2 i3"},
    {"worker promoted in this plan is never drained", 0, 0, 3, 0, 0, 0, 0, 1, 0, ""},
    {"worker promoted in this plan counts as active", 1, 0, 3, 0, 2, 0, 0, 1, 0, "i2 i1"},
    {"re-queued tasks count as queued: ceil(4/3)", 0, 0, 3, 0, 4, 0, 0, 0, 4, "i4 i2"},
};

START_TEST(test_planner_scale_down)
{
    char id[16];
    const char *name = SCALE_DOWN_CASES[_i].name;
    reset();
    pol.min_active = SCALE_DOWN_CASES[_i].min_active;
    pol.keep_idle = SCALE_DOWN_CASES[_i].keep_idle;
    pol.tasks_per_gpu = SCALE_DOWN_CASES[_i].tasks_per_gpu;
    snap.queued_claimable = SCALE_DOWN_CASES[_i].queued;
    for (int k = 0; k < SCALE_DOWN_CASES[_i].n_busy; k++) {
        snprintf(id, sizeof id, "b%d", k + 1);
        add_busy(id);
    }
    for (int k = 0; k < SCALE_DOWN_CASES[_i].n_idle; k++) {
        snprintf(id, sizeof id, "i%d", k + 1);
        add_idle_old(id, IDLE_AGES[k]);
    }
    for (int k = 0; k < SCALE_DOWN_CASES[_i].n_spawning; k++) {
        snprintf(id, sizeof id, "s%d", k + 1);
        add_spawning(id);
    }
    if (SCALE_DOWN_CASES[_i].promote_one)
        add_worker("p1", WORKER_SPAWNING, 6000, 5, -1, -1);
    for (int k = 0; k < SCALE_DOWN_CASES[_i].n_failed; k++) {
        char task_id[16];
        snprintf(id, sizeof id, "c%d", k + 1);
        snprintf(task_id, sizeof task_id, "tc%d", k + 1);
        add_worker(id, WORKER_CRASHED, 5000, 5, 4000, 5);
        add_task(task_id, id, 5, 0);
    }
    decide(name);
    ck_assert_msg(strcmp(drained_str(), SCALE_DOWN_CASES[_i].want_drained) == 0,
                  "%s: drained \"%s\", want \"%s\" (plan \"%s\")", name, drained_str(),
                  SCALE_DOWN_CASES[_i].want_drained, plan_str());
    if (SCALE_DOWN_CASES[_i].promote_one)
        the_action(name, ACTION_PROMOTE_WORKER, "p1");
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Step 6: desired and the spawn count                                                         */

static const struct {
    const char *name;
    int min_active, max_active, tasks_per_gpu, keep_idle;
    int n_busy, n_idle, n_spawning, n_terminating;
    long long queued;
    long long want_desired, want_spawn;
    SpawnLimit want_limit;
    Reason want_reason; /* of the spawn actions */
} SCALE_UP_CASES[] = {
    {"empty, MIN 2: floor", 2, 10, 3, 0, 0, 0, 0, 0, 0, 2, 2, SPAWN_LIMIT_NONE, REASON_MIN_FLOOR},
    {"empty, MIN 0: nothing", 0, 10, 3, 0, 0, 0, 0, 0, 0, 0, 0, SPAWN_LIMIT_NONE, REASON_NONE},
    {"T=3, 3 queued: one", 0, 10, 3, 0, 0, 0, 0, 0, 3, 1, 1, SPAWN_LIMIT_NONE, REASON_BACKLOG},
    {"T=3, 4 queued: ceil to two", 0, 10, 3, 0, 0, 0, 0, 0, 4, 2, 2, SPAWN_LIMIT_NONE,
     REASON_BACKLOG},
    {"T=3, 7 queued: three", 0, 10, 3, 0, 0, 0, 0, 0, 7, 3, 3, SPAWN_LIMIT_NONE, REASON_BACKLOG},
    {"T=1, 5 queued: one GPU per task", 0, 10, 1, 0, 0, 0, 0, 0, 5, 5, 5, SPAWN_LIMIT_NONE,
     REASON_BACKLOG},
    {"T=1, 1 queued", 0, 10, 1, 0, 0, 0, 0, 0, 1, 1, 1, SPAWN_LIMIT_NONE, REASON_BACKLOG},
    {"busy 2 + ceil(4/3)", 0, 10, 3, 0, 2, 0, 0, 0, 4, 4, 2, SPAWN_LIMIT_NONE, REASON_BACKLOG},
    {"idle workers absorb the backlog", 0, 10, 3, 0, 0, 2, 0, 0, 6, 2, 0, SPAWN_LIMIT_NONE,
     REASON_NONE},
    {"MIN clamps above the backlog", 3, 10, 3, 0, 0, 0, 0, 0, 1, 3, 3, SPAWN_LIMIT_NONE,
     REASON_MIN_FLOOR},
    {"MAX clamps desired", 0, 4, 1, 0, 0, 0, 0, 0, 10, 4, 4, SPAWN_LIMIT_NONE, REASON_BACKLOG},
    {"MAX 4 with 3 busy: one more", 0, 4, 1, 0, 3, 0, 0, 0, 10, 4, 1, SPAWN_LIMIT_NONE,
     REASON_BACKLOG},
    {"at MAX: none", 0, 3, 1, 0, 3, 0, 0, 0, 10, 3, 0, SPAWN_LIMIT_NONE, REASON_NONE},
    {"busy 2 + KEEP_IDLE 1", 0, 10, 3, 1, 2, 0, 0, 0, 0, 3, 1, SPAWN_LIMIT_NONE, REASON_KEEP_IDLE},
    {"KEEP_IDLE already met", 0, 10, 3, 1, 2, 1, 0, 0, 0, 3, 0, SPAWN_LIMIT_NONE, REASON_NONE},
    {"KEEP_IDLE clamped by MAX", 0, 2, 3, 1, 2, 0, 0, 0, 0, 2, 0, SPAWN_LIMIT_NONE, REASON_NONE},
    {"KEEP_IDLE on an empty fleet", 0, 10, 3, 2, 0, 0, 0, 0, 0, 2, 2, SPAWN_LIMIT_NONE,
     REASON_KEEP_IDLE},
    {"spawning covers the backlog", 0, 10, 3, 0, 0, 0, 2, 0, 6, 2, 0, SPAWN_LIMIT_NONE,
     REASON_NONE},
    {"spawning covers part of it", 0, 10, 3, 0, 0, 0, 1, 0, 9, 3, 2, SPAWN_LIMIT_NONE,
     REASON_BACKLOG},
    {"terminating counts toward MAX", 0, 4, 1, 0, 0, 0, 0, 3, 10, 4, 1, SPAWN_LIMIT_MAX_ACTIVE,
     REASON_BACKLOG},
    {"terminating fills MAX: none", 0, 4, 1, 0, 0, 0, 0, 4, 10, 4, 0, SPAWN_LIMIT_MAX_ACTIVE,
     REASON_NONE},
    {"terminating does not count as capacity", 0, 10, 1, 0, 0, 0, 0, 2, 3, 3, 3, SPAWN_LIMIT_NONE,
     REASON_BACKLOG},
    {"MAX 0 kill switch", 0, 0, 1, 0, 0, 0, 0, 0, 10, 0, 0, SPAWN_LIMIT_NONE, REASON_NONE},
    {"MAX 0 kill switch with busy workers", 0, 0, 1, 2, 2, 0, 0, 0, 10, 0, 0, SPAWN_LIMIT_NONE,
     REASON_NONE},
};

START_TEST(test_planner_scale_up)
{
    char id[16];
    const char *name = SCALE_UP_CASES[_i].name;
    reset();
    pol.min_active = SCALE_UP_CASES[_i].min_active;
    pol.max_active = SCALE_UP_CASES[_i].max_active;
    pol.tasks_per_gpu = SCALE_UP_CASES[_i].tasks_per_gpu;
    pol.keep_idle = SCALE_UP_CASES[_i].keep_idle;
    snap.queued_claimable = SCALE_UP_CASES[_i].queued;
    for (int k = 0; k < SCALE_UP_CASES[_i].n_busy; k++) {
        snprintf(id, sizeof id, "b%d", k + 1);
        add_busy(id);
    }
    for (int k = 0; k < SCALE_UP_CASES[_i].n_idle; k++) {
        snprintf(id, sizeof id, "i%d", k + 1);
        add_active(id, 5000);
    }
    for (int k = 0; k < SCALE_UP_CASES[_i].n_spawning; k++) {
        snprintf(id, sizeof id, "s%d", k + 1);
        add_spawning(id);
    }
    for (int k = 0; k < SCALE_UP_CASES[_i].n_terminating; k++) {
        snprintf(id, sizeof id, "x%d", k + 1);
        add_terminating_busy(id);
    }
    decide(name);
    ck_assert_msg(plan.desired == SCALE_UP_CASES[_i].want_desired, "%s: desired %lld, want %lld",
                  name, plan.desired, SCALE_UP_CASES[_i].want_desired);
    ck_assert_msg(plan.to_spawn == SCALE_UP_CASES[_i].want_spawn, "%s: spawn %lld, want %lld", name,
                  plan.to_spawn, SCALE_UP_CASES[_i].want_spawn);
    ck_assert_msg(plan.spawn_limit == SCALE_UP_CASES[_i].want_limit, "%s: limit %s, want %s", name,
                  spawn_limit_str(plan.spawn_limit),
                  spawn_limit_str(SCALE_UP_CASES[_i].want_limit));
    ck_assert_msg(plan_count(&plan, ACTION_DRAIN_WORKER) == 0, "%s: drained in \"%s\"", name,
                  plan_str());
    for (size_t k = 0; k < plan.count; k++)
        if (plan.actions[k].kind == ACTION_SPAWN_WORKER)
            ck_assert_msg(plan.actions[k].reason == SCALE_UP_CASES[_i].want_reason,
                          "%s: spawn reason %s, want %s", name, reason_str(plan.actions[k].reason),
                          reason_str(SCALE_UP_CASES[_i].want_reason));
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Steps 2, 3, 5: failed workers and their tasks                                               */

static void setup_crashed_with_task(void)
{
    add_worker("w1", WORKER_CRASHED, 5000, 5, 4000, 5);
    add_task("t1", "w1", 10, 0);
}
static void setup_crashed_idle(void)
{
    add_worker("w1", WORKER_CRASHED, 5000, 5, 4000, 5);
}
static void setup_vram_zero(void)
{
    add_active("w1", 5000)->vram_total_mb = 0;
}
static void setup_vram_unknown(void)
{
    add_active("w1", 5000)->vram_total_mb = -1;
}
static void setup_vram_present(void)
{
    add_active("w1", 5000)->vram_total_mb = 24564;
}
static void setup_vram_zero_with_task(void)
{
    add_busy("w1")->vram_total_mb = 0;
}
static void setup_error_with_task(void)
{
    add_worker("w1", WORKER_ERROR, 5000, 5, 4000, 5);
    add_task("t1", "w1", 10, 0);
}
static void setup_missing_worker(void)
{
    add_task("t1", "ghost", 10, 0);
}
static void setup_no_worker_id(void)
{
    add_task("t1", "", 10, 0);
}
static void setup_healthy_holder(void)
{
    add_busy("w1");
}
/* Issue 12.7: a task held by a claimer that never was one of ours (an API worker). */
static void setup_foreign_holder(void)
{
    add_task("t1", "api-worker-7", 10, 0)->holder_known = false;
}
/* A holder of our worker-id shape whose row is gone (deleted by hand): ours. */
static void setup_deleted_row_holder(void)
{
    add_task("t1", "gpu-20261130_120000-0a1b2c3d", 10, 0)->holder_known = false;
}
/* Issue 12.3: a legacy inactive row holding a task, and one without a pod. */
static void setup_legacy_inactive(void)
{
    add_worker("old1", WORKER_INACTIVE, 90000, -1, -1, -1);
    add_task("t1", "old1", 80000, 0);
    add_worker("old2", WORKER_INACTIVE, 90000, -1, -1, -1)->runpod_id[0] = '\0';
}
static void setup_two_failures(void)
{
    add_worker("w1", WORKER_CRASHED, 5000, 5, 4000, 5);
    add_worker("w2", WORKER_ACTIVE, 5000, 400, 4000, 5);
    add_task("t2", "w2", 10, 0);
    add_task("t1", "w1", 10, 0);
}

static const struct {
    const char *name;
    void (*setup)(void);
    const char *want_plan;
} FAILURE_CASES[] = {
    {"crashed worker with a task: failed, task recovered, pod terminated", setup_crashed_with_task,
     "fail_worker:worker_crashed:w1 recover_task:worker_failed:t1 "
     "terminate_worker:error_cleanup:w1 spawn_worker:backlog"},
    {"crashed idle worker: failed, pod terminated", setup_crashed_idle,
     "fail_worker:worker_crashed:w1 terminate_worker:error_cleanup:w1"},
    {"vram_total_mb 0: GPU not visible", setup_vram_zero,
     "fail_worker:gpu_not_visible:w1 terminate_worker:error_cleanup:w1"},
    {"vram_total_mb 0 with a task: task recovered", setup_vram_zero_with_task,
     "fail_worker:gpu_not_visible:w1 recover_task:worker_failed:t-w1 "
     "terminate_worker:error_cleanup:w1 spawn_worker:backlog"},
    {"vram_total_mb -1 (unknown): healthy", setup_vram_unknown, ""},
    {"task held by a claimer that is not ours: left alone", setup_foreign_holder, ""},
    {"task held by a deleted row of our shape: recovered", setup_deleted_row_holder,
     "recover_task:worker_failed:t1 spawn_worker:backlog"},
    {"legacy inactive rows: task recovered, pods terminated, rows ended", setup_legacy_inactive,
     "recover_task:worker_failed:t1 terminate_worker:legacy_inactive:old1 "
     "terminate_worker:legacy_inactive:old2 spawn_worker:backlog"},
    {"vram_total_mb 24564: healthy", setup_vram_present, ""},
    {"error worker in the snapshot: task recovered, pod terminated", setup_error_with_task,
     "recover_task:worker_failed:t1 terminate_worker:error_cleanup:w1 spawn_worker:backlog"},
    {"task held by a missing worker: recovered", setup_missing_worker,
     "recover_task:worker_failed:t1 spawn_worker:backlog"},
    {"task without a worker id: untouched", setup_no_worker_id, ""},
    {"task held by a healthy worker: untouched", setup_healthy_holder, ""},
    {"two failures: each worker's tasks recovered before its pod", setup_two_failures,
     "fail_worker:worker_crashed:w1 fail_worker:stale_heartbeat:w2 "
     "recover_task:worker_failed:t2 recover_task:worker_failed:t1 "
     "terminate_worker:error_cleanup:w1 terminate_worker:error_cleanup:w2 spawn_worker:backlog"},
};

START_TEST(test_planner_failures)
{
    const char *name = FAILURE_CASES[_i].name;
    reset();
    FAILURE_CASES[_i].setup();
    decide(name);
    check_plan(name, FAILURE_CASES[_i].want_plan);
    for (size_t k = 0; k < plan.count; k++) {
        const Action *a = &plan.actions[k];
        if (a->kind == ACTION_FAIL_WORKER) {
            long long w = -1;
            for (size_t j = 0; j < snap.n_workers; j++)
                if (strcmp(snap.workers[j].id, a->worker_id) == 0)
                    w = (long long)j;
            ck_assert_msg(w >= 0 && a->from_state == snap.workers[w].state,
                          "%s: fail_worker %s from_state %s", name, a->worker_id,
                          worker_state_str(a->from_state));
        }
        if (a->kind == ACTION_RECOVER_TASK) {
            /* the recovery is guarded by the holder: worker_id must be the task's */
            for (size_t t = 0; t < snap.n_tasks; t++)
                if (strcmp(snap.tasks[t].id, a->task_id) == 0)
                    ck_assert_str_eq(a->worker_id, snap.tasks[t].worker_id);
            ck_assert(!a->task_to_failed);
        }
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Step 3 and section 5: the recovery that exhausts the attempts fails the task for good      */

static const struct {
    const char *name;
    int attempts, task_max, policy_max;
    int want_failed;
} ATTEMPT_CASES[] = {
    {"first recovery of 3", 0, 3, 3, 0},
    {"second recovery of 3", 1, 3, 3, 0},
    {"third recovery reaches 3: Failed", 2, 3, 3, 1},
    {"already past the limit: Failed", 5, 3, 3, 1},
    {"task max 2 below policy 3: first", 0, 2, 3, 0},
    {"task max 2 below policy 3: second is Failed", 1, 2, 3, 1},
    /* Issue 12.7: one rule -- the task's own max_attempts when set, MAX_TASK_ATTEMPTS when not
     * (func_task_max_attempts), so raising the setting is not capped by a column default. */
    {"task max 5 above policy 2: second is not Failed", 1, 5, 2, 0},
    {"task max 5 above policy 2: fifth is Failed", 4, 5, 2, 1},
    {"task max unset (0): policy 3 applies, second", 1, 0, 3, 0},
    {"task max unset (0): policy 3 applies, third is Failed", 2, 0, 3, 1},
    {"max 1: the first recovery is Failed", 0, 1, 3, 1},
};

START_TEST(test_planner_attempts)
{
    const char *name = ATTEMPT_CASES[_i].name;
    reset();
    pol.max_task_attempts = ATTEMPT_CASES[_i].policy_max;
    SnapTask *t = add_task("t1", "ghost", 10, ATTEMPT_CASES[_i].attempts);
    t->max_attempts = ATTEMPT_CASES[_i].task_max;
    decide(name);
    const Action *a = the_action(name, ACTION_RECOVER_TASK, "t1");
    ck_assert_msg(a->task_to_failed == (bool)ATTEMPT_CASES[_i].want_failed,
                  "%s: task_to_failed %d (%s)", name, a->task_to_failed, a->detail);
    /* a re-queued task is queued demand; a task failed for good is not */
    ck_assert_int_eq(plan.queued, ATTEMPT_CASES[_i].want_failed ? 0 : 1);
    ck_assert_uint_eq(plan_count(&plan, ACTION_SPAWN_WORKER),
                      ATTEMPT_CASES[_i].want_failed ? 0 : 1);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Step 7: leaked pods (ORPHAN_POD_GRACE_SEC), our prefix only, owned pods never              */

enum { OWNER_NONE, OWNER_BY_NAME, OWNER_BY_ID, OWNER_ENDED };

/* A name of our worker-id shape (worker_name.h). */
#define W "gpu-20261130_120000-0a1b2c3d"

static const struct {
    const char *name;
    const char *pod_name;
    long long pod_age;
    SnapPodStatus status;
    int owner;
    long long since_reconcile;
    int pods_listed;
    const char *want_plan;
} LEAK_CASES[] = {
    {"ours, no row, 501s: terminated", W, 501, SNAP_POD_RUNNING, OWNER_NONE, -1, 1,
     "terminate_pod:leaked_pod:px"},
    {"ours, no row, 500s (= grace): kept", W, 500, SNAP_POD_RUNNING, OWNER_NONE, -1, 1, ""},
    {"ours, no row, age unknown: kept", W, -1, SNAP_POD_RUNNING, OWNER_NONE, -1, 1, ""},
    {"ours, EXITED, 501s: terminated", W, 501, SNAP_POD_EXITED, OWNER_NONE, -1, 1,
     "terminate_pod:leaked_pod:px"},
    {"ours, already TERMINATED: kept", W, 501, SNAP_POD_TERMINATED, OWNER_NONE, -1, 1, ""},
    {"not our prefix, very old: never touched", "other-x", 100000, SNAP_POD_RUNNING, OWNER_NONE, -1,
     1, ""},
    {"prefix not at the start: never touched", "my-gpu-x", 100000, SNAP_POD_RUNNING, OWNER_NONE, -1,
     1, ""},
    /* Issue 12.7: a name that merely starts with the prefix is somebody else's pod. */
    {"prefix only, not our worker-id shape: never touched", "gpu-x", 100000, SNAP_POD_RUNNING,
     OWNER_NONE, -1, 1, ""},
    {"our shape with upper-case hex: never touched", "gpu-20261130_120000-0A1B2C3D", 100000,
     SNAP_POD_RUNNING, OWNER_NONE, -1, 1, ""},
    {"owned by a worker row without pod id (name): adopted, never terminated", W, 100000,
     SNAP_POD_RUNNING, OWNER_BY_NAME, -1, 1, "adopt_pod:adopt_orphan_pod:" W},
    {"owned by a worker row (pod id): never touched", W, 100000, SNAP_POD_RUNNING, OWNER_BY_ID, -1,
     1, ""},
    {"reconcile not due (199s < 200s): kept", W, 100000, SNAP_POD_RUNNING, OWNER_NONE, 199, 1, ""},
    {"reconcile due (201s): terminated", W, 100000, SNAP_POD_RUNNING, OWNER_NONE, 201, 1,
     "terminate_pod:leaked_pod:px"},
    {"pods not listed: kept", W, 100000, SNAP_POD_RUNNING, OWNER_NONE, -1, 0, ""},
    /* Issue 12.2: a pod named after a worker row that has ended is ours and unwanted: no grace. */
    {"named after an ended row, 5s old: terminated at once", W, 5, SNAP_POD_RUNNING, OWNER_ENDED,
     -1, 1, "terminate_pod:leaked_pod:px"},
    {"named after an ended row, age unknown: terminated", W, -1, SNAP_POD_RUNNING, OWNER_ENDED, -1,
     1, "terminate_pod:leaked_pod:px"},
};

START_TEST(test_planner_leaked_pods)
{
    const char *name = LEAK_CASES[_i].name;
    reset();
    snap.since_reconcile_sec = LEAK_CASES[_i].since_reconcile;
    snap.pods_listed = LEAK_CASES[_i].pods_listed;
    SnapPod *pod =
        add_pod("px", LEAK_CASES[_i].pod_name, LEAK_CASES[_i].status, LEAK_CASES[_i].pod_age);
    pod->ended_row = LEAK_CASES[_i].owner == OWNER_ENDED; /* db_annotate_pods found the row */
    if (LEAK_CASES[_i].owner == OWNER_BY_NAME) /* legacy row without pod id: no pod check */
        add_active(W, 5000)->runpod_id[0] = '\0';
    if (LEAK_CASES[_i].owner == OWNER_BY_ID)
        snprintf(add_active("gpu-y", 5000)->runpod_id, SNAP_ID_MAX, "px");
    decide(name);
    check_plan(name, LEAK_CASES[_i].want_plan);
    ck_assert_msg(plan.reconcile_ran == (plan.reconcile_due && snap.pods_listed),
                  "%s: reconcile_ran %d", name, plan.reconcile_ran);
}
END_TEST

/* reconcile_due: every RECONCILE_INTERVAL_SEC (200 here), or never reconciled. */
static const struct {
    const char *name;
    long long since;
    int want_due;
} RECONCILE_CASES[] = {
    {"never reconciled: due", -1, 1}, {"just reconciled: not due", 0, 0},
    {"199s ago: not due", 199, 0},    {"200s ago (= interval): due", 200, 1},
    {"201s ago: due", 201, 1},
};

START_TEST(test_planner_reconcile_due)
{
    reset();
    snap.since_reconcile_sec = RECONCILE_CASES[_i].since;
    decide(RECONCILE_CASES[_i].name);
    ck_assert_msg(plan.reconcile_due == (bool)RECONCILE_CASES[_i].want_due, "%s: due %d",
                  RECONCILE_CASES[_i].name, plan.reconcile_due);
    ck_assert(!plan.reconcile_ran); /* pods not listed */
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Section 8: circuit breaker                                                                  */

static const struct {
    const char *name;
    long long ended, unexpected;
    int new_failures; /* crashed workers failed by this plan */
    int want_open;
    double want_rate;
} BREAKER_CASES[] = {
    {"no endings: closed", 0, 0, 0, 0, 0.0},
    {"4 endings (< MIN_WORKERS 5), all unexpected: closed", 4, 4, 0, 0, 1.0},
    {"5 endings, 4 unexpected (= 0.8): closed", 5, 4, 0, 0, 0.8},
    {"5 endings, 5 unexpected: open", 5, 5, 0, 1, 1.0},
    {"10 endings, 8 unexpected (= 0.8): closed", 10, 8, 0, 0, 0.8},
    {"10 endings, 9 unexpected: open", 10, 9, 0, 1, 0.9},
    {"10 endings, 7 unexpected: closed", 10, 7, 0, 0, 0.7},
    {"4 + 1 failure in this plan, all unexpected: open", 4, 4, 1, 1, 1.0},
    {"3 + 1 failure in this plan: still below MIN_WORKERS", 3, 3, 1, 0, 1.0},
    {"4 (3 unexpected) + 1 failure in this plan (= 0.8): closed", 4, 3, 1, 0, 0.8},
    {"5 (4 unexpected) + 1 failure in this plan: open", 5, 4, 1, 1, 5.0 / 6.0},
};

START_TEST(test_planner_breaker)
{
    char id[16];
    const char *name = BREAKER_CASES[_i].name;
    reset();
    pol.min_active = 2; /* demand: two spawns unless the breaker is open */
    snap.ended_in_window = BREAKER_CASES[_i].ended;
    snap.unexpected_in_window = BREAKER_CASES[_i].unexpected;
    for (int k = 0; k < BREAKER_CASES[_i].new_failures; k++) {
        snprintf(id, sizeof id, "c%d", k + 1);
        add_worker(id, WORKER_CRASHED, 5000, 5, 4000, 5);
    }
    decide(name);
    ck_assert_msg(plan.breaker_open == (bool)BREAKER_CASES[_i].want_open, "%s: open %d", name,
                  plan.breaker_open);
    double diff = plan.failure_rate - BREAKER_CASES[_i].want_rate;
    ck_assert_msg(diff < 1e-9 && diff > -1e-9, "%s: rate %g", name, plan.failure_rate);
    ck_assert_int_eq(plan.to_spawn, BREAKER_CASES[_i].want_open ? 0 : 2);
    ck_assert_int_eq(plan.spawn_limit,
                     BREAKER_CASES[_i].want_open ? SPAWN_LIMIT_BREAKER : SPAWN_LIMIT_NONE);
    ck_assert_int_eq(plan.desired, 2);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Section 8: spend cap                                                                        */

static const struct {
    const char *name;
    double cap, known_cost;
    int n_fleet;
    double fleet_cost_each; /* 0 = unknown, estimated at the highest known */
    long long want_spawn;
    SpawnLimit want_limit;
} SPEND_CASES[] = {
    {"cap 0 = off", 0, 2.0, 0, 0, 5, SPAWN_LIMIT_NONE},
    {"cap 10, 2/h each: five fit exactly", 10, 2.0, 0, 0, 5, SPAWN_LIMIT_NONE},
    {"cap 9.99, 2/h each: four", 9.99, 2.0, 0, 0, 4, SPAWN_LIMIT_SPEND_CAP},
    {"fleet cost counted: 2 x 2/h, cap 10", 10, 2.0, 2, 2.0, 3, SPAWN_LIMIT_NONE},
    {"fleet cost counted: 2 x 2/h, cap 9", 9, 2.0, 2, 2.0, 2, SPAWN_LIMIT_SPEND_CAP},
    {"fleet of unknown price estimated at the highest known", 9, 2.0, 2, 0, 2,
     SPAWN_LIMIT_SPEND_CAP},
    {"fleet already over the cap: none", 10, 4.0, 3, 4.0, 0, SPAWN_LIMIT_SPEND_CAP},
    {"unknown price: one spawn to learn it", 10, 0, 0, 0, 1, SPAWN_LIMIT_SPEND_CAP},
    {"unknown price, fleet at the cap: none", 10, 0, 2, 5.0, 0, SPAWN_LIMIT_SPEND_CAP},
};

START_TEST(test_planner_spend_cap)
{
    char id[16];
    const char *name = SPEND_CASES[_i].name;
    reset();
    pol.min_active = 5;
    pol.max_hourly_spend = SPEND_CASES[_i].cap;
    snap.max_known_pod_cost = SPEND_CASES[_i].known_cost;
    if (SPEND_CASES[_i].known_cost > 0) { /* the GPU type's price is on record (gpu_prices) */
        snap.n_prices = 1;
        snprintf(snap.prices[0].gpu_type, SNAP_NAME_MAX, "NVIDIA GeForce RTX 4090");
        snap.prices[0].usd_per_hr = SPEND_CASES[_i].known_cost;
        snprintf(snap.prices[0].cloud_type, sizeof snap.prices[0].cloud_type, "SECURE");
    }
    for (int k = 0; k < SPEND_CASES[_i].n_fleet; k++) {
        snprintf(id, sizeof id, "w%d", k + 1);
        add_active(id, 5000)->cost_per_hr = SPEND_CASES[_i].fleet_cost_each;
    }
    decide(name);
    ck_assert_msg(plan.to_spawn == SPEND_CASES[_i].want_spawn, "%s: spawn %lld, want %lld", name,
                  plan.to_spawn, SPEND_CASES[_i].want_spawn);
    ck_assert_msg(plan.spawn_limit == SPEND_CASES[_i].want_limit, "%s: limit %s", name,
                  spawn_limit_str(plan.spawn_limit));
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Section 8: GPU capacity backoff                                                             */

static const struct {
    const char *name;
    struct {
        const char *type;
        long long remaining;
    } backoffs[3];
    const char *want_types;
    long long want_spawn;
    SpawnLimit want_limit;
} BACKOFF_CASES[] = {
    {"no backoff: A B C", {{NULL, 0}}, "A B C", 1, SPAWN_LIMIT_NONE},
    {"B backed off", {{"B", 100}, {NULL, 0}}, "A C", 1, SPAWN_LIMIT_NONE},
    {"B backoff expired (0s left)", {{"B", 0}, {NULL, 0}}, "A B C", 1, SPAWN_LIMIT_NONE},
    {"A and C backed off", {{"C", 1}, {"A", 300}, {NULL, 0}}, "B", 1, SPAWN_LIMIT_NONE},
    {"unknown type backed off", {{"Z", 100}, {NULL, 0}}, "A B C", 1, SPAWN_LIMIT_NONE},
    {"all backed off: no spawn", {{"A", 1}, {"B", 1}, {"C", 1}}, "", 0, SPAWN_LIMIT_GPU_BACKOFF},
};

START_TEST(test_planner_gpu_backoff)
{
    char types[256];
    size_t off = 0;
    const char *name = BACKOFF_CASES[_i].name;
    reset();
    pol.min_active = 1;
    pol.n_gpu_types = 3;
    snprintf(pol.gpu_types[0], SNAP_NAME_MAX, "A");
    snprintf(pol.gpu_types[1], SNAP_NAME_MAX, "B");
    snprintf(pol.gpu_types[2], SNAP_NAME_MAX, "C");
    for (size_t k = 0; k < 3 && BACKOFF_CASES[_i].backoffs[k].type; k++) {
        SnapGpuBackoff *b = &snap.backoffs[snap.n_backoffs++];
        snprintf(b->gpu_type, sizeof b->gpu_type, "%s", BACKOFF_CASES[_i].backoffs[k].type);
        b->remaining_sec = BACKOFF_CASES[_i].backoffs[k].remaining;
        b->failures = 1;
    }
    decide(name);
    types[0] = '\0';
    for (size_t g = 0; g < plan.n_gpu_types; g++)
        off += (size_t)snprintf(types + off, sizeof types - off, "%s%s", g ? " " : "",
                                plan.gpu_types[g]);
    ck_assert_msg(strcmp(types, BACKOFF_CASES[_i].want_types) == 0, "%s: types \"%s\"", name,
                  types);
    ck_assert_int_eq(plan.to_spawn, BACKOFF_CASES[_i].want_spawn);
    ck_assert_int_eq(plan.spawn_limit, BACKOFF_CASES[_i].want_limit);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Section 8: fail closed on a truncated worker list                                           */

static void setup_truncated_failures(void)
{
    setup_two_failures();
    add_task("t9", "ghost", 10, 0);
}
static void setup_truncated_backlog(void)
{
    pol.min_active = 2;
    snap.queued_claimable = 10;
    add_idle_old("i1", 5000);
}
static void setup_truncated_pods(void)
{
    snap.pods_listed = true;
    snap.since_reconcile_sec = -1;
    add_pod("px", "gpu-leak", SNAP_POD_RUNNING, 100000);
    add_pod("p1", "gpu-20261130_120000-5e1a1a1a", SNAP_POD_RUNNING, 100);
    add_worker("gpu-20261130_120000-5e1a1a1a", WORKER_SPAWNING, 100, -1, -1, -1)->runpod_id[0] =
        '\0';
    add_worker("gpu-s2", WORKER_SPAWNING, 30, 5, -1, -1);
}

static const struct {
    const char *name;
    void (*setup)(void);
} TRUNCATED_CASES[] = {
    {"failures and orphaned tasks pending", setup_truncated_failures},
    {"backlog and an idle worker", setup_truncated_backlog},
    {"leaked pod, adoption and promotion pending", setup_truncated_pods},
};

START_TEST(test_planner_fail_closed)
{
    const char *name = TRUNCATED_CASES[_i].name;
    reset();
    TRUNCATED_CASES[_i].setup();
    decide(name); /* sanity: the same world without truncation does act */
    ck_assert_msg(plan.count > 0, "%s: the untruncated world should act", name);
    snap.workers_truncated = true;
    decide(name);
    check_plan(name, "");
    ck_assert_int_eq(plan.to_spawn, 0);
    ck_assert_int_eq(plan.spawn_limit, SPAWN_LIMIT_UNSAFE_SNAPSHOT);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Plan counts, as the summary reports them (after this plan's own transitions)               */

/* b1 busy; i1 idle but recently used; i2 idle past every threshold; s1 spawning; s2 promoted in
 * this plan; x1 terminating with a task; x2 terminating without; c1 crashed holding tc1.
 * queued 4 + tc1 re-queued = 5; busy 1; desired 1 + ceil(5/3) = 3; active b1 i1 i2 s2 and s1
 * spawning = 5, so 2 over desired, but only i2 may be drained. */
static void setup_mixed_fleet(void)
{
    snap.queued_claimable = 4;
    add_busy("b1");
    add_active("i1", 5000);
    add_idle_old("i2", 5000);
    add_spawning("s1");
    add_worker("s2", WORKER_SPAWNING, 60, 5, -1, -1);
    add_terminating_busy("x1");
    add_worker("x2", WORKER_TERMINATING, 5000, 5, 4000, 500)->terminating_age_sec = 10;
    add_worker("c1", WORKER_CRASHED, 5000, 5, 4000, 5);
    add_task("tc1", "c1", 10, 0);
}
static void setup_empty_min2(void)
{
    pol.min_active = 2;
}
static void setup_busy_backlog(void)
{
    snap.queued_claimable = 7;
    add_busy("b1");
    add_busy("b2");
    add_busy("b3");
}

static const struct {
    const char *name;
    void (*setup)(void);
    long long queued, running, busy, idle, active, spawning, terminating, desired, to_spawn;
    const char *want_plan;
} COUNT_CASES[] = {
    {"mixed fleet", setup_mixed_fleet, 5, 3, 1, 2, 3, 1, 1, 3, 0,
     "promote_worker:first_heartbeat:s2 fail_worker:worker_crashed:c1 "
     "recover_task:worker_failed:tc1 drain_worker:idle:i2 terminate_worker:drained:i2 "
     "terminate_worker:drained:x2 terminate_worker:error_cleanup:c1"},
    {"empty fleet, MIN 2", setup_empty_min2, 0, 0, 0, 0, 0, 0, 0, 2, 2,
     "spawn_worker:min_floor spawn_worker:min_floor"},
    {"3 busy, 7 queued", setup_busy_backlog, 7, 3, 3, 0, 3, 0, 0, 6, 3,
     "spawn_worker:backlog spawn_worker:backlog spawn_worker:backlog"},
};

START_TEST(test_planner_counts)
{
    const char *name = COUNT_CASES[_i].name;
    reset();
    COUNT_CASES[_i].setup();
    decide(name);
    check_plan(name, COUNT_CASES[_i].want_plan);
    const long long got[] = {plan.queued,      plan.running, plan.busy,
                             plan.idle,        plan.active,  plan.spawning,
                             plan.terminating, plan.desired, plan.to_spawn};
    const long long want[] = {
        COUNT_CASES[_i].queued,      COUNT_CASES[_i].running, COUNT_CASES[_i].busy,
        COUNT_CASES[_i].idle,        COUNT_CASES[_i].active,  COUNT_CASES[_i].spawning,
        COUNT_CASES[_i].terminating, COUNT_CASES[_i].desired, COUNT_CASES[_i].to_spawn};
    static const char *const field[] = {"queued",   "running",     "busy",    "idle",    "active",
                                        "spawning", "terminating", "desired", "to_spawn"};
    for (size_t k = 0; k < ARRAY_LEN(field); k++)
        ck_assert_msg(got[k] == want[k], "%s: %s = %lld, want %lld", name, field[k], got[k],
                      want[k]);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Operator requests (planner_manual)                                                          */

static void setup_manual_fleet(void)
{
    add_busy("w1");                                    /* active, holds t1 */
    add_worker("w2", WORKER_SPAWNING, 10, -1, -1, -1); /* still booting */
    add_worker("w3", WORKER_ERROR, 500, 400, 450, -1);
    add_worker("w4", WORKER_CRASHED, 500, 400, 450, -1);
}

/* The manual fleet, a legacy inactive row, and the pod list: w1's pod, a leaked pod of ours,
 * the legacy row's pod (found by name), and a foreign pod. */
static void setup_manual_with_pods(void)
{
    setup_manual_fleet();
    add_worker("gpu-20250101_000000-1e9ac100", WORKER_INACTIVE, 90000, -1, -1, -1)->runpod_id[0] =
        '\0';
    snap.pods_listed = true;
    add_pod("pod-w1", "w1", SNAP_POD_RUNNING, 100);
    add_pod("pleak", "gpu-20250101_000000-0eaced00", SNAP_POD_RUNNING, 10);
    add_pod("plegacy", "gpu-20250101_000000-1e9ac100", SNAP_POD_RUNNING, 90000);
    add_pod("pforeign", "jupyter-notebook", SNAP_POD_RUNNING, 90000);
}

static const struct {
    const char *name;
    void (*setup)(void);
    ManualKind kind;
    int count;
    const char *worker;
    int max_active;
    const char *want;
} MANUAL_CASES[] = {
    {"spawn 2", NULL, MANUAL_SPAWN, 2, "", 10, "spawn_worker:operator spawn_worker:operator"},
    {"spawn within MAX", setup_manual_fleet, MANUAL_SPAWN, 5, "", 3, "spawn_worker:operator"},
    {"spawn at MAX (active + spawning)", setup_manual_fleet, MANUAL_SPAWN, 1, "", 2, ""},
    {"terminate a busy worker: drain, recover its task, terminate", setup_manual_fleet,
     MANUAL_TERMINATE, 0, "w1", 10,
     "drain_worker:operator:w1 recover_task:operator:t-w1 terminate_worker:operator:w1"},
    {"terminate a spawning worker", setup_manual_fleet, MANUAL_TERMINATE, 0, "w2", 10,
     "drain_worker:operator:w2 terminate_worker:operator:w2"},
    {"terminate an error worker", setup_manual_fleet, MANUAL_TERMINATE, 0, "w3", 10,
     "terminate_worker:operator:w3"},
    {"terminate a crashed worker goes through error", setup_manual_fleet, MANUAL_TERMINATE, 0, "w4",
     10, "fail_worker:operator:w4 terminate_worker:operator:w4"},
    {"terminate an unknown worker: nothing", setup_manual_fleet, MANUAL_TERMINATE, 0, "zz", 10, ""},
    /* Issue 12.5: terminate takes a pod id too. */
    {"terminate by a worker's pod id", setup_manual_with_pods, MANUAL_TERMINATE, 0, "pod-w1", 10,
     "drain_worker:operator:w1 recover_task:operator:t-w1 terminate_worker:operator:w1"},
    {"terminate a leaked pod of ours by its id", setup_manual_with_pods, MANUAL_TERMINATE, 0,
     "pleak", 10, "terminate_pod:operator:pleak"},
    {"terminate a foreign pod: refused", setup_manual_with_pods, MANUAL_TERMINATE, 0, "pforeign",
     10, ""},
    /* Issue 12.3: a legacy inactive row is not drained (illegal), its pod is adopted first. */
    {"terminate a legacy inactive row: pod adopted, terminated", setup_manual_with_pods,
     MANUAL_TERMINATE, 0, "gpu-20250101_000000-1e9ac100", 10,
     "adopt_pod:adopt_orphan_pod:gpu-20250101_000000-1e9ac100 "
     "terminate_worker:operator:gpu-20250101_000000-1e9ac100"},
    {"shutdown-all with the pod list: every row, and the leaked pod of ours",
     setup_manual_with_pods, MANUAL_SHUTDOWN_ALL, 0, "", 10,
     "drain_worker:operator:w1 recover_task:operator:t-w1 terminate_worker:operator:w1 "
     "drain_worker:operator:w2 terminate_worker:operator:w2 terminate_worker:operator:w3 "
     "fail_worker:operator:w4 terminate_worker:operator:w4 "
     "adopt_pod:adopt_orphan_pod:gpu-20250101_000000-1e9ac100 "
     "terminate_worker:operator:gpu-20250101_000000-1e9ac100 terminate_pod:operator:pleak"},
    {"shutdown-all: every live worker, no spawn even below MIN", setup_manual_fleet,
     MANUAL_SHUTDOWN_ALL, 0, "", 10,
     "drain_worker:operator:w1 recover_task:operator:t-w1 terminate_worker:operator:w1 "
     "drain_worker:operator:w2 terminate_worker:operator:w2 terminate_worker:operator:w3 "
     "fail_worker:operator:w4 terminate_worker:operator:w4"},
};

START_TEST(test_planner_manual)
{
    reset();
    pol.min_active = 2; /* manual plans never add the cycle's own scale-up */
    pol.max_active = MANUAL_CASES[_i].max_active;
    if (MANUAL_CASES[_i].setup)
        MANUAL_CASES[_i].setup();
    ManualRequest req = {.kind = MANUAL_CASES[_i].kind, .count = MANUAL_CASES[_i].count};
    snprintf(req.worker_id, sizeof req.worker_id, "%s", MANUAL_CASES[_i].worker);
    derive_worker_task_facts();
    default_pool();
    planner_manual(&snap, &pol, &req, &plan);
    check_plan(MANUAL_CASES[_i].name, MANUAL_CASES[_i].want);
    for (size_t i = 0; i < plan.count; i++) {
        const Action *a = &plan.actions[i];
        ck_assert_msg(!a->unexpected, "%s: operator actions never count toward the breaker",
                      MANUAL_CASES[_i].name);
        if (a->kind == ACTION_DRAIN_WORKER)
            ck_assert_msg(a->force, "%s: operator drains are forced", MANUAL_CASES[_i].name);
        if (a->kind == ACTION_TERMINATE_WORKER && strcmp(a->worker_id, "w1") == 0)
            ck_assert_str_eq(a->pod_id, "pod-w1");
        if (a->kind == ACTION_TERMINATE_WORKER &&
            strcmp(a->worker_id, "gpu-20250101_000000-1e9ac100") == 0)
            ck_assert_str_eq(a->pod_id, "plegacy"); /* the adopted pod goes with the row */
    }
    /* What the request found: the cli turns NOT_FOUND / NOT_OURS into exit 2. */
    if (req.kind == MANUAL_TERMINATE) {
        ManualResult want = MANUAL_RESULT_WORKER;
        if (strcmp(req.worker_id, "zz") == 0)
            want = MANUAL_RESULT_NOT_FOUND;
        else if (strcmp(req.worker_id, "pforeign") == 0)
            want = MANUAL_RESULT_NOT_OURS;
        else if (strcmp(req.worker_id, "pleak") == 0)
            want = MANUAL_RESULT_POD;
        ck_assert_msg(plan.manual_result == want, "%s: manual_result %d, want %d",
                      MANUAL_CASES[_i].name, plan.manual_result, want);
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Pools (issue 14): each pool sizes itself; the fleet's ceilings are shared out              */

/* Adds pool name serving run_types (a comma list) with its MIN/MAX and threshold; the rest of
 * its settings from the base policy. */
static PolicyPool *add_pool(const char *name, const char *run_types, int min, int max, int per_gpu)
{
    ck_assert_uint_lt(pol.n_pools, PLAN_POOLS_MAX);
    PolicyPool *pp = &pol.pools[pol.n_pools++];
    memset(pp, 0, sizeof *pp);
    snprintf(pp->name, sizeof pp->name, "%s", name);
    char buf[256];
    snprintf(buf, sizeof buf, "%s", run_types);
    for (char *tok = buf, *comma; tok && *tok; tok = comma ? comma + 1 : NULL) {
        comma = strchr(tok, ',');
        if (comma)
            *comma = '\0';
        snprintf(pp->run_types[pp->n_run_types++], SNAP_NAME_MAX, "%.127s", tok);
    }
    snprintf(pp->cloud_type, sizeof pp->cloud_type, "SECURE");
    pp->min_active = min;
    pp->max_active = max;
    pp->tasks_per_gpu = per_gpu;
    pp->keep_idle = 0;
    pp->idle_timeout_sec = IDLE_TIMEOUT;
    pp->stuck_timeout_sec = STUCK_TIMEOUT;
    pp->spawning_timeout_sec = SPAWNING_TIMEOUT;
    pp->grace_period_sec = GRACE_PERIOD;
    pp->n_gpu_types = 1;
    snprintf(pp->gpu_types[0], SNAP_NAME_MAX, "GPU-%s", name);
    return pp;
}

/* run_type with n claimable (and queued) tasks. */
static void add_demand(const char *run_type, long long n)
{
    SnapRunType *t = &snap.run_types[snap.n_run_types++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", run_type);
    t->claimable = t->queued = n;
    snap.queued_claimable += n;
    snap.queued_total += n;
}

/* n healthy workers of pool (ids <pool>-1..n), busy or idle (idle recently: never drained). */
static void add_pool_workers(const char *pool, int n, bool busy)
{
    for (int k = 1; k <= n; k++) {
        char id[32];
        snprintf(id, sizeof id, "%s-%d", pool, k);
        SnapWorker *w = busy ? add_busy(id) : add_active(id, 5000);
        snprintf(w->pool, sizeof w->pool, "%s", pool);
    }
}

/* Spawns per pool, as "video:2 image:1" in pool order (pools with none left out). */
static const char *spawns_by_pool(void)
{
    static char buf[256];
    size_t len = 0;
    buf[0] = '\0';
    for (size_t p = 0; p < plan.n_pools; p++) {
        size_t n = 0;
        for (size_t i = 0; i < plan.count; i++)
            if (plan.actions[i].kind == ACTION_SPAWN_WORKER && plan.actions[i].pool == (int)p)
                n++;
        ck_assert_int_eq((long long)n, plan.pools[p].to_spawn);
        if (n)
            len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s:%zu", len ? " " : "",
                                    plan.pools[p].name, n);
    }
    return buf;
}

static void pools_two_own_thresholds(void)
{
    /* video: 1 GPU per task; image: 4 tasks per GPU. */
    add_pool("video", "video", 0, 10, 1);
    add_pool("image", "image,gpu", 0, 10, 4);
    add_demand("video", 3);
    add_demand("gpu", 9);
}
static void pools_three_own_thresholds(void)
{
    add_pool("a", "a", 1, 5, 1);
    add_pool("b", "b", 0, 5, 2);
    add_pool("c", "c", 0, 5, 10);
    add_demand("a", 2);
    add_demand("b", 3);
    add_demand("c", 11);
}
static void pools_ceiling_uneven(void)
{
    /* Fleet MAX 10; video wants 8, image wants 4 (12 > 10): MINs first (video 1, image 1), then
     * the 8 left in proportion to the unmet demand 7 : 3 -> 5.6 : 2.4 -> 5 + 1 (remainder .6) : 2
     * = video 7, image 3. */
    pol.max_active = 10;
    add_pool("video", "video", 1, 10, 1);
    add_pool("image", "image", 1, 10, 1);
    add_demand("video", 8);
    add_demand("image", 4);
}
static void pools_ceiling_min_protected(void)
{
    /* Fleet MAX 4, video already runs 3 busy; image (MIN 1) has nothing queued and no worker:
     * it still gets its MIN before video's backlog takes the last slot. */
    pol.max_active = 4;
    add_pool("video", "video", 0, 10, 1);
    add_pool("image", "image", 1, 10, 1);
    add_pool_workers("video", 3, true);
    add_demand("video", 20);
}
static void pools_breaker_one(void)
{
    add_pool("video", "video", 0, 10, 1);
    add_pool("image", "image", 0, 10, 1);
    add_demand("video", 2);
    add_demand("image", 2);
    snap.n_pool_endings = 1;
    snprintf(snap.pool_endings[0].pool, SNAP_POOL_NAME_MAX, "video");
    snap.pool_endings[0].ended = 10;
    snap.pool_endings[0].unexpected = 10;
}
static void pools_min_idle_other_backlog(void)
{
    /* image sits at its MIN with no work: its idle worker is kept; video scales for its backlog. */
    add_pool("video", "video", 0, 10, 1);
    add_pool("image", "image", 1, 10, 1);
    add_idle_old("image-1", 5000);
    snprintf(snap.workers[snap.n_workers - 1].pool, SNAP_POOL_NAME_MAX, "image");
    add_demand("video", 2);
}
static void pools_unserved(void)
{
    add_pool("video", "video", 0, 10, 1);
    add_demand("video", 1);
    add_demand("audio", 5);
    add_demand("cpu", 2);
}
static void pools_retired(void)
{
    /* A worker of a pool no longer configured: idle past the timeout, it is drained (MIN 0),
     * and nothing is spawned for it. */
    add_pool("video", "video", 0, 10, 1);
    add_idle_old("old-1", 5000);
    snprintf(snap.workers[snap.n_workers - 1].pool, SNAP_POOL_NAME_MAX, "legacy");
}
static void pools_per_pool_max(void)
{
    /* image's own MAX 1 binds; video still gets its share of the fleet. */
    add_pool("video", "video", 0, 10, 1);
    add_pool("image", "image", 0, 1, 1);
    add_demand("video", 2);
    add_demand("image", 5);
}

static void pool_price(const char *pool, double usd)
{
    SnapGpuPrice *g = &snap.prices[snap.n_prices++];
    snprintf(g->gpu_type, sizeof g->gpu_type, "GPU-%s", pool);
    snprintf(g->cloud_type, sizeof g->cloud_type, "SECURE");
    g->usd_per_hr = usd;
}
static void pools_fleet_breaker_two_failing(void)
{
    /* video and image both crash (one broken image shared by pools): the fleet-wide breaker
     * stops every pool, audio too, although audio's own breaker is closed. */
    add_pool("audio", "audio", 0, 10, 1);
    add_pool("image", "image", 0, 10, 1);
    add_pool("video", "video", 0, 10, 1);
    add_demand("audio", 2);
    add_demand("image", 2);
    add_demand("video", 2);
    snap.ended_in_window = 6;
    snap.unexpected_in_window = 6;
    snap.n_pool_endings = 2;
    snprintf(snap.pool_endings[0].pool, SNAP_POOL_NAME_MAX, "image");
    snap.pool_endings[0].ended = snap.pool_endings[0].unexpected = 3;
    snprintf(snap.pool_endings[1].pool, SNAP_POOL_NAME_MAX, "video");
    snap.pool_endings[1].ended = snap.pool_endings[1].unexpected = 3;
}
static void pools_spend_in_dollars(void)
{
    /* Fleet cap $10/h; video pods cost $2, image pods $1, 4 tasks each: handed out one pod per
     * pool in turn (by name): image 1, video 2, image 1, video 2, image 1, video 2, image 1 =
     * $10: image 4, video 3. */
    pol.max_hourly_spend = 10;
    add_pool("video", "video", 0, 10, 1);
    add_pool("image", "image", 0, 10, 1);
    pool_price("video", 2);
    pool_price("image", 1);
    add_demand("video", 4);
    add_demand("image", 4);
}
static void pools_unknown_price_does_not_hold_others(void)
{
    /* image's price is unknown: it gets one pod to learn it; video is sized at its own price. */
    pol.max_hourly_spend = 100;
    add_pool("video", "video", 0, 10, 1);
    add_pool("image", "image", 0, 10, 1);
    pool_price("video", 1);
    add_demand("video", 5);
    add_demand("image", 5);
}
static void pools_learning_pod_needs_room(void)
{
    /* Cap $5/h, one video pod at $3 live: $2 left, less than the dearest known price ($3), so
     * image (price unknown) gets no pod that could cost as much as the dearest type. */
    pol.max_hourly_spend = 5;
    add_pool("video", "video", 0, 10, 1);
    add_pool("image", "image", 0, 10, 1);
    pool_price("video", 3);
    add_pool_workers("video", 1, true);
    snap.workers[snap.n_workers - 1].cost_per_hr = 3;
    add_demand("image", 1);
}
static void pools_small_queue_not_rounded_away(void)
{
    /* One slot left; big has 100 queued, small 3 and no worker: small gets the slot (the
     * proportional split alone would round small's 3/103 of a slot away every cycle). */
    pol.max_active = 10;
    add_pool("big", "big", 0, 20, 1);
    add_pool("small", "small", 0, 20, 1);
    add_pool_workers("big", 9, true);
    add_demand("big", 100);
    add_demand("small", 3);
}

static const struct {
    const char *name;
    void (*setup)(void);
    const char *want_spawns;
    const char *want_limits; /* per pool in pool order, "-" for none */
    const char *want_plan;   /* non-spawn actions, or NULL to skip */
} POOL_CASES[] = {
    {"two pools, own thresholds: video 3 (1 per task), image 3 (ceil 9/4)",
     pools_two_own_thresholds, "video:3 image:3", "- -", ""},
    {"three pools: a 2 (MIN 1, 1 per task), b 2 (ceil 3/2), c 2 (ceil 11/10)",
     pools_three_own_thresholds, "a:2 b:2 c:2", "- - -", ""},
    {"fleet ceiling binds, uneven backlogs: MINs first, then 7 : 3", pools_ceiling_uneven,
     "video:7 image:3", "fleet_ceiling fleet_ceiling", ""},
    {"fleet ceiling: a pool at MIN 0 workers gets its MIN before another's backlog",
     pools_ceiling_min_protected, "image:1", "fleet_ceiling -", ""},
    {"one pool's breaker open: only that pool stops", pools_breaker_one, "image:2",
     "circuit_breaker -", ""},
    {"a pool at MIN with no work keeps its worker while another scales",
     pools_min_idle_other_backlog, "video:2", "- -", ""},
    {"unserved run types: counted, nothing spawned for them", pools_unserved, "video:1", "-", ""},
    {"a worker of a pool no longer configured is drained", pools_retired, "", "-",
     "drain_worker:idle:old-1 terminate_worker:drained:old-1"},
    {"a pool's own MAX caps its desired size before the fleet's", pools_per_pool_max,
     "video:2 image:1", "- -", ""},
    {"two pools failing: the fleet-wide breaker stops every pool", pools_fleet_breaker_two_failing,
     "", "circuit_breaker circuit_breaker circuit_breaker", ""},
    {"fleet spend cap shared in dollars: image 4 x $1, video 3 x $2", pools_spend_in_dollars,
     "video:3 image:4", "spend_cap -", ""},
    {"a pool of unknown price gets one pod and does not hold the others to one",
     pools_unknown_price_does_not_hold_others, "video:5 image:1", "- spend_cap", ""},
    {"a learning pod needs room for the dearest known price", pools_learning_pod_needs_room, "",
     "- spend_cap", ""},
    {"a pool with demand and no worker gets a slot before the proportional split",
     pools_small_queue_not_rounded_away, "small:1", "fleet_ceiling fleet_ceiling", ""},
};

START_TEST(test_planner_pools)
{
    const char *name = POOL_CASES[_i].name;
    reset();
    pol.max_active = 20;
    POOL_CASES[_i].setup();
    decide(name);
    ck_assert_msg(strcmp(spawns_by_pool(), POOL_CASES[_i].want_spawns) == 0,
                  "%s: spawns \"%s\", want \"%s\" (plan %s)", name, spawns_by_pool(),
                  POOL_CASES[_i].want_spawns, plan_str());
    char limits[256];
    size_t len = 0;
    limits[0] = '\0';
    for (size_t p = 0; p < plan.n_pools; p++) {
        SpawnLimit l = plan.pools[p].spawn_limit;
        len += (size_t)snprintf(limits + len, sizeof limits - len, "%s%s", p ? " " : "",
                                l == SPAWN_LIMIT_NONE ? "-" : spawn_limit_str(l));
    }
    ck_assert_msg(strcmp(limits, POOL_CASES[_i].want_limits) == 0, "%s: limits \"%s\", want \"%s\"",
                  name, limits, POOL_CASES[_i].want_limits);
    if (POOL_CASES[_i].want_plan) {
        char rest[4096];
        size_t rl = 0;
        rest[0] = '\0';
        for (size_t i = 0; i < plan.count; i++) {
            const Action *a = &plan.actions[i];
            if (a->kind == ACTION_SPAWN_WORKER)
                continue;
            rl += (size_t)snprintf(rest + rl, sizeof rest - rl, "%s%s:%s:%s", rl ? " " : "",
                                   action_kind_str(a->kind), reason_str(a->reason), action_id(a));
        }
        ck_assert_msg(strcmp(rest, POOL_CASES[_i].want_plan) == 0, "%s: other actions \"%s\"", name,
                      rest);
    }
    /* The fleet's MAX holds whatever the pools want. */
    ck_assert_int_le(plan.active + plan.spawning + plan.terminating + plan.to_spawn,
                     pol.max_active);
}
END_TEST

START_TEST(test_planner_pools_unserved_counted)
{
    reset();
    pools_unserved();
    decide("unserved");
    ck_assert_int_eq(plan.unserved_queued, 7);
    ck_assert_uint_eq(plan.n_unserved, 2);
    ck_assert_str_eq(plan.unserved[0], "audio");
    ck_assert_str_eq(plan.unserved[1], "cpu");
    ck_assert_int_eq(plan.queued, 1); /* only what a pool serves is demand */
}
END_TEST

START_TEST(test_planner_pools_manual_spawn)
{
    reset();
    pools_two_own_thresholds();
    ManualRequest req = {.kind = MANUAL_SPAWN, .count = 2};
    snprintf(req.pool, sizeof req.pool, "image");
    derive_worker_task_facts();
    planner_manual(&snap, &pol, &req, &plan);
    ck_assert_str_eq(spawns_by_pool(), "image:2");
    req.pool[0] = '\0'; /* several pools and none named: refused */
    planner_manual(&snap, &pol, &req, &plan);
    ck_assert_int_eq(plan.manual_result, MANUAL_RESULT_NO_POOL);
    ck_assert_uint_eq(plan_count(&plan, ACTION_SPAWN_WORKER), 0);
    snprintf(req.pool, sizeof req.pool, "nope");
    planner_manual(&snap, &pol, &req, &plan);
    ck_assert_int_eq(plan.manual_result, MANUAL_RESULT_NO_POOL);
}
END_TEST

/* Issue 17 (`explain`): the plan says what sized each pool (wanted before the MAX cap, the
 * term that set it) and lists every limit that holds, not only the last one applied. */
START_TEST(test_planner_pools_every_limit_listed)
{
    reset();
    pol.max_active = 20;
    add_pool("video", "video", 0, 2, 1);
    add_pool_workers("video", 2, true);
    add_demand("video", 5);
    snap.n_pool_endings = 1; /* its breaker open */
    snprintf(snap.pool_endings[0].pool, SNAP_POOL_NAME_MAX, "video");
    snap.pool_endings[0].ended = snap.pool_endings[0].unexpected = 10;
    snap.n_backoffs = 1; /* its only GPU type backed off */
    snprintf(snap.backoffs[0].gpu_type, SNAP_NAME_MAX, "GPU-video");
    snap.backoffs[0].remaining_sec = 100;
    decide("every limit");
    const PlanPool *pp = &plan.pools[0];
    ck_assert_int_eq(pp->wanted, 7); /* busy 2 + 5 queued at 1 per GPU */
    ck_assert_int_eq(pp->desired, 2);
    ck_assert_int_eq(pp->desired_by, REASON_BACKLOG);
    ck_assert_uint_eq(pp->limits, (1u << SPAWN_LIMIT_MAX_ACTIVE) | (1u << SPAWN_LIMIT_BREAKER) |
                                      (1u << SPAWN_LIMIT_GPU_BACKOFF));
    ck_assert_int_eq(pp->spawn_limit, SPAWN_LIMIT_NONE); /* nothing was left to cut */
    ck_assert_int_eq(pp->spend_room, -1);

    /* Below its MAX, every limit that would cut is still listed. */
    reset();
    pol.max_active = 20;
    pol.max_hourly_spend = 1.0;
    PolicyPool *v = add_pool("video", "video", 0, 10, 1);
    v->max_hourly_spend = 1.0;
    add_demand("video", 3);
    snap.n_prices = 1;
    snprintf(snap.prices[0].gpu_type, SNAP_NAME_MAX, "GPU-video");
    snprintf(snap.prices[0].cloud_type, sizeof snap.prices[0].cloud_type, "SECURE");
    snap.prices[0].usd_per_hr = 0.5;
    decide("spend cap");
    pp = &plan.pools[0];
    ck_assert_uint_eq(pp->limits, 1u << SPAWN_LIMIT_SPEND_CAP);
    ck_assert_int_eq(pp->spend_room, 2);
    ck_assert_int_eq(pp->to_spawn, 2);
    ck_assert(!plan.fleet_spend_capped); /* the pool's own cap cut first */
    ck_assert_int_eq(plan.fleet_room, 20);

    /* The fleet's ceiling cutting a pool's share sets its bit too. */
    reset();
    pol.max_active = 10;
    pools_ceiling_uneven();
    decide("fleet ceiling");
    ck_assert_uint_eq(plan.pools[0].limits, 1u << SPAWN_LIMIT_FLEET_CEILING);
    ck_assert_int_eq(plan.pools[0].own_cap, 8);
    ck_assert_int_eq(plan.pools[0].to_spawn, 7);
}
END_TEST

/* Issue 12.7: a worker whose tasks lie past SNAP_TASKS_MAX (so none is in the bounded list) is
 * still busy: never drained as idle, and counted busy. */
/* Issue 12 review: the lag windows count from the create's answer, not from the row's insert
 * (a create that took longer than the window must not be judged on it). */
START_TEST(test_planner_lag_from_the_create_answer)
{
    reset();
    snap.pods_listed = true;
    /* Inserted 100 s ago, its create answered ambiguously 5 s ago: still waiting. */
    SnapWorker *w = add_worker(W, WORKER_SPAWNING, 100, -1, -1, -1);
    w->runpod_id[0] = '\0';
    w->create_unknown = true;
    w->create_unknown_age_sec = 5;
    /* Its pod recorded 5 s ago (a slow 201) and not listed yet: not gone. */
    SnapWorker *v = add_worker("gpu-20261130_120000-0b0b0b0b", WORKER_SPAWNING, 100, -1, -1, -1);
    v->pod_age_sec = 5;
    decide("lag from the answer");
    check_plan("lag from the answer", "");
    /* Past the windows counted from the answers: settled. */
    w->create_unknown_age_sec = POD_ID_GRACE + 1;
    v->pod_age_sec = NOT_FOUND_GRACE + 1;
    decide("lag from the answer, past");
    ck_assert_uint_eq(count_for(ACTION_FAIL_WORKER, W), 1);
    ck_assert_uint_eq(count_for(ACTION_FAIL_WORKER, "gpu-20261130_120000-0b0b0b0b"), 1);
}
END_TEST

/* Issue 12 review: the spend cap bounds a new pod by the dearest GPU type a create may fall back
 * to, and never lets a pod of unknown price in while another's price is still unknown. */
START_TEST(test_planner_spend_cap_price_bound)
{
    reset();
    pol.min_active = 5;
    pol.max_hourly_spend = 3.0;
    pol.n_gpu_types = 2;
    snprintf(pol.gpu_types[0], SNAP_NAME_MAX, "GPU A");
    snprintf(pol.gpu_types[1], SNAP_NAME_MAX, "GPU B");
    snap.n_prices = 2;
    snprintf(snap.prices[0].gpu_type, SNAP_NAME_MAX, "GPU A");
    snap.prices[0].usd_per_hr = 0.30;
    snprintf(snap.prices[0].cloud_type, sizeof snap.prices[0].cloud_type, "SECURE");
    snprintf(snap.prices[1].gpu_type, SNAP_NAME_MAX, "GPU B");
    snap.prices[1].usd_per_hr = 2.00;
    snprintf(snap.prices[1].cloud_type, sizeof snap.prices[1].cloud_type, "SECURE");
    decide("fallback to the dearer type");
    /* A alone would allow 10; a create falling back to B costs 2.00: one fits under 3.00. */
    ck_assert_int_eq(plan.to_spawn, 1);
    ck_assert_int_eq(plan.spawn_limit, SPAWN_LIMIT_SPEND_CAP);

    /* A candidate type of unknown price: one pod to learn it... */
    reset();
    pol.min_active = 5;
    pol.max_hourly_spend = 1.0;
    decide("price never known");
    ck_assert_int_eq(plan.to_spawn, 1);
    /* ...and none while a live pod's price is still unknown (its create never answered). */
    reset();
    pol.min_active = 5;
    pol.max_hourly_spend = 1.0;
    add_worker("gpu-20261130_120000-0c0c0c0c", WORKER_SPAWNING, 30, -1, -1, -1)->runpod_id[0] =
        '\0';
    decide("price never learned");
    ck_assert_int_eq(plan.to_spawn, 0);
    ck_assert_int_eq(plan.spawn_limit, SPAWN_LIMIT_SPEND_CAP);
}
END_TEST

START_TEST(test_planner_busy_beyond_the_task_list)
{
    reset();
    SnapWorker *w = add_idle_old("w1", 5000);
    w->tasks_held = -3; /* derive_worker_task_facts: keep 3, computed in SQL */
    snap.tasks_truncated = true;
    snap.in_progress_total = SNAP_TASKS_MAX + 3;
    decide("busy beyond the list");
    check_plan("busy beyond the list", "");
    ck_assert_int_eq(plan.busy, 1);
}
END_TEST

/* Issue 12.7: an adopted pod brings its price and GPU type, so the spend cap counts it. */
START_TEST(test_planner_adoption_carries_cost)
{
    reset();
    SnapWorker *w = add_worker("gpu-20261130_120000-5e1a1a1a", WORKER_SPAWNING, 30, -1, -1, -1);
    w->runpod_id[0] = '\0';
    snap.pods_listed = true;
    SnapPod *p = add_pod("p1", "gpu-20261130_120000-5e1a1a1a", SNAP_POD_RUNNING, 30);
    p->cost_per_hr = 1.89;
    snprintf(p->gpu_type, sizeof p->gpu_type, "NVIDIA A100 80GB PCIe");
    decide("adoption carries cost");
    const Action *a =
        the_action("adoption carries cost", ACTION_ADOPT_POD, "gpu-20261130_120000-5e1a1a1a");
    ck_assert_str_eq(a->pod_id, "p1");
    ck_assert_double_eq_tol(a->cost_per_hr, 1.89, 1e-9);
    ck_assert_str_eq(a->gpu_type, "NVIDIA A100 80GB PCIe");
}
END_TEST

/* ------------------------------------------------------------------------------------------ */

static void add_loop(Suite *s, const char *name, const TTest *test, size_t rows)
{
    TCase *tc = tcase_create(name);
    tcase_add_loop_test(tc, test, 0, (int)rows);
    suite_add_tcase(s, tc);
}

static Suite *planner_suite(void)
{
    Suite *s = suite_create("planner");
    add_loop(s, "test_planner_heartbeat", test_planner_heartbeat, ARRAY_LEN(HEARTBEAT_CASES));
    add_loop(s, "test_planner_stuck", test_planner_stuck, ARRAY_LEN(STUCK_CASES));
    add_loop(s, "test_planner_spawning", test_planner_spawning, ARRAY_LEN(SPAWNING_CASES));
    add_loop(s, "test_planner_active_pod", test_planner_active_pod, ARRAY_LEN(ACTIVE_POD_CASES));
    add_loop(s, "test_planner_shutdown", test_planner_shutdown, ARRAY_LEN(SHUTDOWN_CASES));
    add_loop(s, "test_planner_idle", test_planner_idle, ARRAY_LEN(IDLE_CASES));
    add_loop(s, "test_planner_scale_down", test_planner_scale_down, ARRAY_LEN(SCALE_DOWN_CASES));
    add_loop(s, "test_planner_scale_up", test_planner_scale_up, ARRAY_LEN(SCALE_UP_CASES));
    add_loop(s, "test_planner_failures", test_planner_failures, ARRAY_LEN(FAILURE_CASES));
    add_loop(s, "test_planner_attempts", test_planner_attempts, ARRAY_LEN(ATTEMPT_CASES));
    add_loop(s, "test_planner_leaked_pods", test_planner_leaked_pods, ARRAY_LEN(LEAK_CASES));
    add_loop(s, "test_planner_busy_beyond_the_task_list", test_planner_busy_beyond_the_task_list,
             1);
    add_loop(s, "test_planner_adoption_carries_cost", test_planner_adoption_carries_cost, 1);
    add_loop(s, "test_planner_pools", test_planner_pools, ARRAY_LEN(POOL_CASES));
    add_loop(s, "test_planner_spend_cap_price_bound", test_planner_spend_cap_price_bound, 1);
    add_loop(s, "test_planner_lag_from_the_create_answer", test_planner_lag_from_the_create_answer,
             1);
    add_loop(s, "test_planner_pools_unserved_counted", test_planner_pools_unserved_counted, 1);
    add_loop(s, "test_planner_pools_manual_spawn", test_planner_pools_manual_spawn, 1);
    add_loop(s, "test_planner_pools_every_limit_listed", test_planner_pools_every_limit_listed, 1);
    add_loop(s, "test_planner_reconcile_due", test_planner_reconcile_due,
             ARRAY_LEN(RECONCILE_CASES));
    add_loop(s, "test_planner_breaker", test_planner_breaker, ARRAY_LEN(BREAKER_CASES));
    add_loop(s, "test_planner_spend_cap", test_planner_spend_cap, ARRAY_LEN(SPEND_CASES));
    add_loop(s, "test_planner_gpu_backoff", test_planner_gpu_backoff, ARRAY_LEN(BACKOFF_CASES));
    add_loop(s, "test_planner_fail_closed", test_planner_fail_closed, ARRAY_LEN(TRUNCATED_CASES));
    add_loop(s, "test_planner_counts", test_planner_counts, ARRAY_LEN(COUNT_CASES));
    add_loop(s, "test_planner_manual", test_planner_manual, ARRAY_LEN(MANUAL_CASES));
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(planner_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
