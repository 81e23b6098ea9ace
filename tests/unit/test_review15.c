/* test_review15.c -- adversarial review of issue 15 (adaptive policies in the planner).
 *
 * Each test reproduced a defect found in review and now holds the fix as a regression test. Pure:
 * the Snapshot, Policy and Plan are file-scope statics reset by every test (CK_FORK). One pool,
 * `default`, serving run_type gpu, MIN 0, MAX 10, MACHINES_TO_KEEP_IDLE 0, idle timeout 300 s.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner.h"

static Snapshot snap;
static Policy pol;
static Plan plan;

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

static void measure(long long rate_arrivals, long long last_age, double dur, double boot)
{
    SnapMeasures *m = &snap.measures;
    m->n_arrivals = 1;
    snprintf(m->arrivals[0].name, sizeof m->arrivals[0].name, "gpu");
    m->arrivals[0].arrivals_rate = rate_arrivals;
    m->arrivals[0].warm_peak = rate_arrivals;
    m->arrivals[0].last_arrival_age_sec = last_age;
    m->arrivals[0].median_duration_sec = dur;
    m->n_boots = 1;
    snprintf(m->boots[0].pool, sizeof m->boots[0].pool, "default");
    m->boots[0].median_boot_sec = boot;
    m->boots[0].boots = 20;
}

static void idle_worker(const char *id, long long idle_sec)
{
    SnapWorker *w = &snap.workers[snap.n_workers++];
    memset(w, 0, sizeof *w);
    snprintf(w->id, sizeof w->id, "%s", id);
    snprintf(w->pool, sizeof w->pool, "default");
    snprintf(w->runpod_id, sizeof w->runpod_id, "pod-%s", id);
    w->state = WORKER_ACTIVE;
    w->age_sec = 20000;
    w->heartbeat_age_sec = 5;
    w->heartbeat_after_create = true;
    w->promoted_age_sec = 19000;
    w->activity_age_sec = idle_sec;
    w->terminating_age_sec = -1;
    w->vram_total_mb = 24564;
    w->vram_used_mb = 500;
    w->cost_per_hr = 0.69;
    w->create_unknown_age_sec = -1;
    w->pod_age_sec = -1;
    w->oldest_task_age_sec = -1;
    snprintf(w->gpu_type, sizeof w->gpu_type, "NVIDIA GeForce RTX 4090");
}

static long long count(ActionKind k)
{
    long long n = 0;
    for (size_t i = 0; i < plan.count; i++)
        n += plan.actions[i].kind == k;
    return n;
}

/* Was defect 1 (predictive scale-up; now only whole expected tasks count, and a worker idle past
 * GPU_IDLE_TIMEOUT_SEC refutes the prediction): an expected backlog of 0.1 task (one arrival in the
 * 600 s rate window x a 60 s cold start) is rounded up to a whole GPU, so with an empty queue,
 * MACHINES_TO_KEEP_IDLE=0 and MIN 0, a worker idle for 10,000 s (GPU_IDLE_TIMEOUT_SEC is 300)
 * is never drained: GPU_IDLE_TIMEOUT_SEC no longer bounds idleness. With the setting off the
 * same snapshot drains it. */
START_TEST(test_predictive_fraction_drains_idle_past_timeout)
{
    reset();
    measure(1, 60, 30, 60);
    idle_worker("gpu-a", 10000);
    planner_decide(&snap, &pol, &plan);
    ck_assert_int_eq(count(ACTION_DRAIN_WORKER), 1); /* setting off: drained */

    reset();
    pol.predictive_scale_up = true;
    measure(1, 60, 30, 60);
    idle_worker("gpu-a", 10000);
    planner_decide(&snap, &pol, &plan);
    ck_assert_msg(count(ACTION_DRAIN_WORKER) == 1,
                  "predicted backlog %.3f task kept a worker idle 10000 s past the 300 s "
                  "GPU_IDLE_TIMEOUT_SEC (desired %lld)",
                  plan.pools[0].predicted_backlog, plan.pools[0].desired);
}
END_TEST

/* Was defect 2 (predictive scale-up; the measured boot is now clamped to SPAWNING_TIMEOUT_SEC): the
 * measured cold start is trusted whatever its size. No worker can take longer than
 * SPAWNING_TIMEOUT_SEC (600 s) to promote -- it is failed first -- yet a median of 5 h (what the
 * snapshot measures for pods restarted from WARM_STOPPED_PODS: promoted_at - created_at spans the
 * whole stopped time; see test_24_review15.py) makes 6 arrivals in 10 minutes a backlog of 180
 * tasks: the pool spawns to MAX on an empty queue. At most rate x SPAWNING_TIMEOUT_SEC = 6 tasks
 * can be expected within a possible cold start. */
START_TEST(test_predictive_boot_bounded_by_spawning_timeout)
{
    reset();
    pol.predictive_scale_up = true;
    measure(6, 30, 20, 18000);
    planner_decide(&snap, &pol, &plan);
    ck_assert_msg(plan.to_spawn <= 6,
                  "a 5 h measured cold start (SPAWNING_TIMEOUT_SEC 600) predicted %.1f tasks "
                  "and spawned %lld pods on an empty queue",
                  plan.pools[0].predicted_backlog, plan.to_spawn);
}
END_TEST

/* Was defect 3 (undefined behaviour; the prediction is now clamped to MAX x T before the cast):
 * desired_workers casts the predicted backlog to long long without a bound (planner_scale.c: (long
 * long)ceil(...)). A hostile measure (a boot of 1e300 s) is out of range: UB, which on x86-64
 * yields LLONG_MIN, so the prediction silently vanishes (desired 0) instead of being capped at MAX
 * like any other demand. */
START_TEST(test_predictive_bounded_before_cast)
{
    reset();
    pol.predictive_scale_up = true;
    measure(600, 1, 20, 1e300);
    planner_decide(&snap, &pol, &plan);
    ck_assert_msg(plan.pools[0].wanted >= plan.pools[0].desired && plan.pools[0].wanted > 0,
                  "predicted %g tasks but wanted %lld (the cast overflowed)",
                  plan.pools[0].predicted_backlog, plan.pools[0].wanted);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("review15");
    TCase *tc = tcase_create("review15");
    tcase_add_test(tc, test_predictive_fraction_drains_idle_past_timeout);
    tcase_add_test(tc, test_predictive_boot_bounded_by_spawning_timeout);
    tcase_add_test(tc, test_predictive_bounded_before_cast);
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
