/* test_planner_adaptive.c -- table-driven unit tests of the adaptive policies of the planner
 * (planner_adaptive.c, issue 15): the adaptive warm pool, predictive scale-up and the adaptive
 * (ski-rental) idle grace, each from a Snapshot whose measures a row sets.
 *
 * Pure: the Snapshot, Policy and Plan are file-scope statics reset by every row (CK_FORK runs
 * each row in its own process). One pool, `default`, serving run_type gpu.
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

/* MIN 0, MAX 10, one task per GPU, idle timeout 300 s, grace period 120 s; every adaptive
 * policy off; the measures present but empty (a pool nothing arrived at, no cold start yet). */
static void reset(void)
{
    memset(&snap, 0, sizeof snap);
    memset(&pol, 0, sizeof pol);
    memset(&plan, 0, sizeof plan);
    pol.max_active = 10;
    pol.tasks_per_gpu = 1;
    pol.idle_timeout_sec = 300;
    pol.stuck_timeout_sec = 3600;
    pol.spawning_timeout_sec = 600;
    pol.graceful_timeout_sec = 600;
    pol.grace_period_sec = 120;
    pol.pod_id_grace_sec = 60;
    pol.pod_not_found_grace_sec = 60;
    pol.max_task_attempts = 3;
    pol.max_failure_rate = 0.8;
    pol.min_workers_for_rate = 5;
    pol.reconcile_interval_sec = 86400;
    snprintf(pol.worker_prefix, sizeof pol.worker_prefix, "gpu-");
    pol.warm_min_arrivals = 10;
    pol.warm_cold_start_sec = 45;
    pol.warm_demote_sec = 1800;
    pol.rate_window_sec = 600;
    pol.idle_grace_min_sec = 30;
    pol.idle_wait_weight = 1.0;
    pol.n_pools = 1;
    PolicyPool *pp = &pol.pools[0];
    snprintf(pp->name, sizeof pp->name, "default");
    pp->n_run_types = 1;
    snprintf(pp->run_types[0], sizeof pp->run_types[0], "gpu");
    pp->min_active = 0;
    pp->max_active = 10;
    pp->tasks_per_gpu = 1;
    pp->idle_timeout_sec = 300;
    pp->stuck_timeout_sec = 3600;
    pp->spawning_timeout_sec = 600;
    pp->grace_period_sec = 120;
    pp->n_gpu_types = 1;
    snprintf(pp->gpu_types[0], sizeof pp->gpu_types[0], "NVIDIA GeForce RTX 4090");
    snap.since_reconcile_sec = 0;
    snap.measures.measured = true;
}

/* The measures of run type gpu and of the pool (boot < 0: no cold start measured). */
static void measure(long long rate_arrivals, long long peak, long long last_age, double dur,
                    double boot)
{
    SnapMeasures *m = &snap.measures;
    m->n_arrivals = 1;
    snprintf(m->arrivals[0].name, sizeof m->arrivals[0].name, "gpu");
    m->arrivals[0].arrivals_rate = rate_arrivals;
    m->arrivals[0].warm_peak = peak;
    m->arrivals[0].last_arrival_age_sec = last_age;
    m->arrivals[0].median_duration_sec = dur;
    m->n_boots = 1;
    snprintf(m->boots[0].pool, sizeof m->boots[0].pool, "default");
    m->boots[0].median_boot_sec = boot;
    m->boots[0].boots = boot >= 0 ? 20 : 0;
}

static SnapWorker *worker(const char *id, long long activity_age, bool busy)
{
    SnapWorker *w = &snap.workers[snap.n_workers++];
    memset(w, 0, sizeof *w);
    snprintf(w->id, sizeof w->id, "%s", id);
    snprintf(w->pool, sizeof w->pool, "default");
    snprintf(w->runpod_id, sizeof w->runpod_id, "pod-%s", id);
    w->state = WORKER_ACTIVE;
    w->age_sec = 5000;
    w->heartbeat_age_sec = 5;
    w->heartbeat_after_create = true;
    w->promoted_age_sec = 4000;
    w->activity_age_sec = activity_age;
    w->terminating_age_sec = -1;
    w->vram_total_mb = 24564;
    w->vram_used_mb = 500;
    w->cost_per_hr = 0.69;
    w->create_unknown_age_sec = -1;
    w->pod_age_sec = -1;
    snprintf(w->gpu_type, sizeof w->gpu_type, "NVIDIA GeForce RTX 4090");
    if (busy) {
        w->tasks_held = 1;
        snprintf(w->oldest_task_id, sizeof w->oldest_task_id, "t-%s", id);
        w->oldest_task_age_sec = 5;
        SnapTask *t = &snap.tasks[snap.n_tasks++];
        memset(t, 0, sizeof *t);
        snprintf(t->id, sizeof t->id, "t-%s", id);
        snprintf(t->worker_id, sizeof t->worker_id, "%s", id);
        snprintf(t->run_type, sizeof t->run_type, "gpu");
        t->age_sec = 5;
        t->holder_known = true;
        snap.in_progress_total++;
    } else {
        w->oldest_task_age_sec = -1;
    }
    return w;
}

static void queue(long long n)
{
    if (n == 0)
        return;
    snap.n_run_types = 1;
    snprintf(snap.run_types[0].name, sizeof snap.run_types[0].name, "gpu");
    snap.run_types[0].claimable = snap.run_types[0].queued = n;
    snap.queued_claimable = snap.queued_total = n;
}

static long long spawns_with(Reason r)
{
    long long n = 0;
    for (size_t i = 0; i < plan.count; i++)
        n += plan.actions[i].kind == ACTION_SPAWN_WORKER && plan.actions[i].reason == r;
    return n;
}

/* ------------------------------------------------------------------------------------------ */
/* Adaptive warm pool                                                                          */

static const struct {
    const char *name;
    bool on;
    bool measured;
    long long peak, last_age;
    double boot;
    long long want_spawn;
    bool want_hot;
} WARM[] = {
    {"off: MACHINES_TO_KEEP_IDLE always", false, true, 0, -1, -1, 2, false},
    {"nothing measured: as configured", true, false, 0, -1, -1, 2, false},
    {"no arrival within the demote window: cold", true, true, 0, -1, 60, 0, false},
    {"10 arrivals in the window: hot", true, true, 10, 60, 30, 2, true},
    {"9 arrivals and quick cold starts: cold", true, true, 9, 60, 30, 0, false},
    {"45 s cold start is not above 45 s: cold", true, true, 3, 60, 45, 0, false},
    {"slow cold starts: hot on a single arrival", true, true, 1, 60, 46, 2, true},
    {"hot, then 1800 s quiet: still hot", true, true, 50, 1800, 30, 2, true},
    {"hot, then 1801 s quiet: demoted", true, true, 50, 1801, 30, 0, false},
};

START_TEST(test_adaptive_warm_pool)
{
    reset();
    pol.adaptive_warm_pool = WARM[_i].on;
    pol.pools[0].keep_idle = 2;
    snap.measures.measured = WARM[_i].measured;
    measure(0, WARM[_i].peak, WARM[_i].last_age, -1, WARM[_i].boot);
    planner_decide(&snap, &pol, &plan);
    ck_assert_msg(spawns_with(REASON_KEEP_IDLE) == WARM[_i].want_spawn, "%s: %lld spawns",
                  WARM[_i].name, spawns_with(REASON_KEEP_IDLE));
    ck_assert_int_eq(plan.to_spawn, WARM[_i].want_spawn);
    ck_assert_msg(plan.pools[0].hot == WARM[_i].want_hot, "%s: hot %d", WARM[_i].name,
                  plan.pools[0].hot);
}
END_TEST

/* A cold pool's idle workers above MIN go at the idle timeout like any others; a hot pool keeps
 * MACHINES_TO_KEEP_IDLE of them. */
START_TEST(test_adaptive_warm_pool_scale_down)
{
    for (int hot = 0; hot < 2; hot++) {
        reset();
        pol.adaptive_warm_pool = true;
        pol.pools[0].keep_idle = 1;
        measure(0, hot ? 20 : 0, hot ? 30 : -1, -1, 30);
        worker("gpu-a", 400, false);
        worker("gpu-b", 400, false);
        planner_decide(&snap, &pol, &plan);
        ck_assert_int_eq((long long)plan_count(&plan, ACTION_DRAIN_WORKER), hot ? 1 : 2);
    }
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Predictive scale-up                                                                         */

static const struct {
    const char *name;
    bool on;
    long long arrivals; /* within the 600 s rate window */
    double boot, dur;
    int per_gpu;
    long long busy, queued;
    long long want_spawn;
    Reason want_reason;
    double want_backlog;
} PREDICT[] = {
    {"off: today's queue only", false, 60, 100, 50, 1, 0, 0, 0, REASON_NONE, 0},
    {"6 a minute x 100 s boot: 10 expected", true, 60, 100, 50, 1, 0, 0, 10,
     REASON_PREDICTED_BACKLOG, 10},
    {"busy workers finishing within a boot serve some", true, 30, 100, 50, 1, 4, 0, 1,
     REASON_PREDICTED_BACKLOG, 1},
    {"long tasks: busy workers free only boot/duration of themselves", true, 30, 100, 400, 1, 4, 0,
     4, REASON_PREDICTED_BACKLOG, 4},
    {"no cold start measured yet: no prediction", true, 60, -1, 50, 1, 0, 0, 0, REASON_NONE, 0},
    {"1 expected: one more worker", true, 6, 100, 50, 1, 0, 0, 1, REASON_PREDICTED_BACKLOG, 1},
    {"0.5 expected with 1 queued: whole tasks only, 1 worker", true, 3, 100, 50, 1, 0, 1, 1,
     REASON_BACKLOG, 0.5},
    {"1.9 expected: one more worker, not two", true, 6, 190, 500, 1, 0, 0, 1,
     REASON_PREDICTED_BACKLOG, 1.9},
    {"3 per GPU: the prediction does not add a GPU", true, 6, 100, 50, 3, 0, 2, 1, REASON_BACKLOG,
     1},
    {"capped at MAX", true, 600, 100, 50, 1, 0, 0, 10, REASON_PREDICTED_BACKLOG, 100},
    {"nothing arrived: no prediction", true, 0, 100, 50, 1, 0, 0, 0, REASON_NONE, 0},
};

START_TEST(test_adaptive_predictive)
{
    reset();
    pol.predictive_scale_up = PREDICT[_i].on;
    pol.pools[0].tasks_per_gpu = PREDICT[_i].per_gpu;
    measure(PREDICT[_i].arrivals, PREDICT[_i].arrivals, 10, PREDICT[_i].dur, PREDICT[_i].boot);
    char id[32];
    for (long long k = 0; k < PREDICT[_i].busy; k++) {
        snprintf(id, sizeof id, "gpu-%lld", k);
        worker(id, 5, true);
    }
    queue(PREDICT[_i].queued);
    planner_decide(&snap, &pol, &plan);
    ck_assert_msg(plan.to_spawn == PREDICT[_i].want_spawn, "%s: %lld spawns", PREDICT[_i].name,
                  plan.to_spawn);
    if (PREDICT[_i].want_spawn > 0)
        ck_assert_msg(spawns_with(PREDICT[_i].want_reason) == PREDICT[_i].want_spawn,
                      "%s: reason %s", PREDICT[_i].name,
                      reason_str(plan.count ? plan.actions[0].reason : REASON_NONE));
    ck_assert_double_eq_tol(plan.pools[0].predicted_backlog, PREDICT[_i].want_backlog, 1e-9);
}
END_TEST

/* The prediction also holds idle workers that a shortened idle grace would drain. */
START_TEST(test_adaptive_predictive_keeps_workers)
{
    reset();
    pol.predictive_scale_up = true;
    pol.adaptive_idle_grace = true;
    measure(6, 6, 10, 50, 100); /* 1 task expected one cold start from now */
    worker("gpu-a", 200, false);
    worker("gpu-b", 200, false);
    planner_decide(&snap, &pol, &plan);
    ck_assert_int_eq((long long)plan_count(&plan, ACTION_DRAIN_WORKER), 1);
}
END_TEST

/* ...but never past GPU_IDLE_TIMEOUT_SEC (300 s): a worker idle that long shows the predicted
 * task is not coming, so the plan sizes the pool without the prediction, and spawns nothing. */
START_TEST(test_adaptive_predictive_never_holds_past_idle_timeout)
{
    reset();
    pol.predictive_scale_up = true;
    measure(6, 6, 10, 50, 100);
    worker("gpu-a", 400, false);
    worker("gpu-b", 200, false);
    planner_decide(&snap, &pol, &plan);
    ck_assert_int_eq((long long)plan_count(&plan, ACTION_DRAIN_WORKER), 1);
    ck_assert_int_eq(plan.to_spawn, 0);
    ck_assert_double_eq_tol(plan.pools[0].predicted_backlog, 0, 1e-9);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Adaptive idle grace                                                                         */

static const struct {
    const char *name;
    bool on, measured;
    long long arrivals; /* within the 600 s rate window */
    double boot, weight;
    int idle_workers, busy_workers;
    long long idle_age;
    long long want_drained;
    long long want_grace;
} GRACE[] = {
    {"off: the idle timeout", false, true, 0, 60, 1, 1, 0, 299, 0, -1},
    {"off: past the idle timeout", false, true, 0, 60, 1, 1, 0, 301, 1, -1},
    {"nothing measured: the idle timeout", true, false, 0, 60, 1, 1, 0, 299, 0, 300},
    {"no cold start measured: the idle timeout", true, true, 0, -1, 1, 1, 0, 299, 0, 300},
    {"no arrivals: not needed, the minimum grace", true, true, 0, 60, 1, 1, 0, 31, 1, 30},
    {"no arrivals: kept within the minimum grace", true, true, 0, 60, 1, 1, 0, 29, 0, 30},
    /* 12 arrivals in 600 s x 60 s boot: 1.2 expected; P(N >= 1) = 0.70; x 2 > 1: kept */
    {"likely needed within a boot: kept to the idle timeout", true, true, 12, 60, 1, 1, 0, 299, 0,
     300},
    {"kept to the idle timeout, not beyond", true, true, 12, 60, 1, 1, 0, 301, 1, 300},
    /* two idle: P(N >= 2) = 0.34 x 2 < 1: one goes; then P(N >= 1) = 0.70: one stays */
    {"two idle, 1.2 expected: one goes, one stays", true, true, 12, 60, 1, 2, 0, 150, 1, 300},
    /* 6 arrivals: 0.6 expected; P(N >= 1) = 0.45 x 2 < 1 */
    {"0.6 expected: not worth keeping at weight 1", true, true, 6, 60, 1, 1, 0, 31, 1, 30},
    {"0.6 expected: worth keeping at weight 9", true, true, 6, 60, 9, 1, 0, 299, 0, 300},
    {"weight 0: a cold start costs only its boot, never worth keeping", true, true, 12, 60, 0, 1, 0,
     31, 1, 30},
    /* a busy worker finishing within the boot (median 30 s < 60 s) covers one arrival: P(N >=
     * 2) = 0.34 x 2 < 1 */
    {"a busy worker that frees up covers it", true, true, 12, 60, 1, 1, 1, 31, 1, 30},
};

START_TEST(test_adaptive_idle_grace)
{
    reset();
    pol.adaptive_idle_grace = GRACE[_i].on;
    pol.idle_wait_weight = GRACE[_i].weight;
    snap.measures.measured = GRACE[_i].measured;
    measure(GRACE[_i].arrivals, GRACE[_i].arrivals, 10, 30, GRACE[_i].boot);
    char id[32];
    for (int k = 0; k < GRACE[_i].idle_workers; k++) {
        snprintf(id, sizeof id, "gpu-%d", k);
        worker(id, GRACE[_i].idle_age, false);
    }
    for (int k = 0; k < GRACE[_i].busy_workers; k++) {
        snprintf(id, sizeof id, "gpu-busy-%d", k);
        worker(id, 5, true);
    }
    planner_decide(&snap, &pol, &plan);
    ck_assert_msg((long long)plan_count(&plan, ACTION_DRAIN_WORKER) == GRACE[_i].want_drained,
                  "%s: %zu drained", GRACE[_i].name, plan_count(&plan, ACTION_DRAIN_WORKER));
    ck_assert_msg(plan.pools[0].idle_grace_sec == GRACE[_i].want_grace, "%s: grace %lld",
                  GRACE[_i].name, plan.pools[0].idle_grace_sec);
}
END_TEST

/* The grace never keeps a worker below MIN, nor inside WORKER_GRACE_PERIOD_SEC of promotion. */
START_TEST(test_adaptive_idle_grace_limits)
{
    reset();
    pol.adaptive_idle_grace = true;
    pol.pools[0].min_active = 1;
    measure(0, 0, -1, 30, 60);
    worker("gpu-a", 200, false);
    SnapWorker *young = worker("gpu-b", 200, false);
    young->promoted_age_sec = 100; /* inside the 120 s grace period */
    worker("gpu-c", 200, false);
    planner_decide(&snap, &pol, &plan);
    /* a and c are past the 30 s grace of a worker not needed; b is protected; MIN keeps one */
    ck_assert_int_eq((long long)plan_count(&plan, ACTION_DRAIN_WORKER), 2);
    for (size_t i = 0; i < plan.count; i++)
        ck_assert_str_ne(plan.actions[i].worker_id, "gpu-b");
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("planner_adaptive");
    TCase *tc = tcase_create("adaptive");
    tcase_add_loop_test(tc, test_adaptive_warm_pool, 0, (int)ARRAY_LEN(WARM));
    tcase_add_test(tc, test_adaptive_warm_pool_scale_down);
    tcase_add_loop_test(tc, test_adaptive_predictive, 0, (int)ARRAY_LEN(PREDICT));
    tcase_add_test(tc, test_adaptive_predictive_keeps_workers);
    tcase_add_test(tc, test_adaptive_predictive_never_holds_past_idle_timeout);
    tcase_add_loop_test(tc, test_adaptive_idle_grace, 0, (int)ARRAY_LEN(GRACE));
    tcase_add_test(tc, test_adaptive_idle_grace_limits);
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
