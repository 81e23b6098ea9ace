/* test_explain.c -- table-driven unit tests of explain_task/explain_pool/explain_fleet (issue 17)
 * and of the verdict of `submit --wait` (wait_outcome).
 *
 * Pure: builds a Snapshot, a Policy and a task in memory, runs the real planner (dry run) and
 * explains. Each row states the reason codes expected, in order (most decisive first), so a
 * row fails on a missing reason, an extra one, or a wrong order.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "explain.h"
#include "planner.h"
#include "wait_outcome.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static Snapshot snap;
static Policy pol;
static Plan plan;
static ExplainTask task;
static ExplainBootTimes boot;
static Explanation why;
static const ExplainOptions OPT = {
    .stale_cycle_sec = 300, .max_failure_rate = 0.8, .failure_window_minutes = 5};

/* One pool "default" serving gpu, MIN 0 MAX 4, 1 task per GPU; a cycle ran 10 s ago; one Queued
 * claimable gpu task first in line. */
static void reset(void)
{
    memset(&snap, 0, sizeof snap);
    memset(&pol, 0, sizeof pol);
    memset(&plan, 0, sizeof plan);
    memset(&task, 0, sizeof task);
    memset(&boot, 0, sizeof boot);
    memset(&why, 0, sizeof why);
    pol.max_active = 4;
    pol.tasks_per_gpu = 1;
    pol.idle_timeout_sec = 300;
    pol.stuck_timeout_sec = 300;
    pol.spawning_timeout_sec = 300;
    pol.grace_period_sec = 60;
    pol.max_task_attempts = 3;
    pol.max_failure_rate = 0.8;
    pol.min_workers_for_rate = 5;
    snprintf(pol.worker_prefix, sizeof pol.worker_prefix, "gpu-");
    pol.n_pools = 1;
    PolicyPool *pp = &pol.pools[0];
    snprintf(pp->name, sizeof pp->name, "default");
    pp->n_run_types = 1;
    snprintf(pp->run_types[0], SNAP_NAME_MAX, "gpu");
    pp->max_active = 4;
    pp->tasks_per_gpu = 1;
    pp->idle_timeout_sec = 300;
    pp->stuck_timeout_sec = 300;
    pp->spawning_timeout_sec = 300;
    pp->grace_period_sec = 60;
    pp->n_gpu_types = 1;
    snprintf(pp->gpu_types[0], SNAP_NAME_MAX, "RTX");
    snprintf(pp->cloud_type, sizeof pp->cloud_type, "SECURE");
    snap.since_success_sec = 10;
    snap.since_reconcile_sec = 0;
    snap.n_run_types = 1;
    snprintf(snap.run_types[0].name, SNAP_NAME_MAX, "gpu");
    snap.run_types[0].claimable = snap.run_types[0].queued = 1;
    snprintf(task.id, sizeof task.id, "00000000-0000-0000-0000-000000000001");
    snprintf(task.status, sizeof task.status, "Queued");
    snprintf(task.run_type, sizeof task.run_type, "gpu");
    task.max_attempts = 3;
    task.claimable = true;
    task.ahead = 0;
}

static SnapWorker *worker(const char *id, WorkerState st, long long age, long long tasks)
{
    SnapWorker *w = &snap.workers[snap.n_workers++];
    memset(w, 0, sizeof *w);
    snprintf(w->id, sizeof w->id, "%s", id);
    snprintf(w->pool, sizeof w->pool, "default");
    snprintf(w->runpod_id, sizeof w->runpod_id, "pod-%s", id);
    w->state = st;
    w->age_sec = age;
    w->heartbeat_age_sec = st == WORKER_SPAWNING ? -1 : 1;
    w->promoted_age_sec = st == WORKER_SPAWNING ? -1 : age;
    w->activity_age_sec = 1;
    w->vram_total_mb = st == WORKER_SPAWNING ? -1 : 24000;
    w->vram_used_mb = -1;
    w->tasks_held = tasks;
    return w;
}

static void dep(const char *id, const char *status)
{
    ExplainDep *d = &task.deps[task.n_deps++];
    snprintf(d->id, sizeof d->id, "%s", id);
    snprintf(d->status, sizeof d->status, "%s", status);
    task.claimable = false;
}

/* The codes of `why`, space-separated. */
static const char *codes(void)
{
    static char buf[512];
    size_t len = 0;
    buf[0] = '\0';
    for (size_t k = 0; k < why.n; k++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", k ? " " : "",
                                explain_code_str(why.reasons[k].code));
    return buf;
}

static const char *detail_of(ExplainCode code)
{
    for (size_t k = 0; k < why.n; k++)
        if (why.reasons[k].code == code)
            return why.reasons[k].detail;
    return "";
}

static long long wait_of(ExplainCode code)
{
    for (size_t k = 0; k < why.n; k++)
        if (why.reasons[k].code == code)
            return why.reasons[k].wait_sec;
    return -99;
}

/* ------------------------------------------------------------------------------------------ */
/* Setups, one per reason                                                                      */

static void s_complete(void)
{
    snprintf(task.status, sizeof task.status, "Complete");
    snprintf(task.output_location, sizeof task.output_location, "s3://out/1");
    task.finished_age_sec = 5;
}
static void s_failed(void)
{
    snprintf(task.status, sizeof task.status, "Failed");
    task.attempts = 3;
    snprintf(task.error_message, sizeof task.error_message, "CUDA OOM");
}
static void s_cancelled(void)
{
    snprintf(task.status, sizeof task.status, "Cancelled");
}
static void s_running(void)
{
    snprintf(task.status, sizeof task.status, "In Progress");
    snprintf(task.worker_id, sizeof task.worker_id, "gpu-w1");
    snprintf(task.worker_status, sizeof task.worker_status, "active");
    task.running_sec = 42;
    worker("gpu-w1", WORKER_ACTIVE, 500, 1);
}
static void s_no_pool(void)
{
    snprintf(task.run_type, sizeof task.run_type, "audio");
    snprintf(snap.run_types[0].name, SNAP_NAME_MAX, "audio");
}
static void s_deps(void)
{
    dep("dep-failed", "Failed");
    dep("dep-missing", "");
    dep("dep-pending", "In Progress");
    dep("dep-done", "Complete");
    snap.run_types[0].claimable = 0;
}
static void s_backoff(void)
{
    task.claimable = false;
    task.attempts = 1;
    task.available_in_sec = 17;
    snap.run_types[0].claimable = 0;
}
static void s_never_cycled(void)
{
    snap.since_success_sec = -1;
    worker("gpu-w1", WORKER_ACTIVE, 500, 1);
}
static void s_stale_cycle(void)
{
    snap.since_success_sec = 301;
    worker("gpu-w1", WORKER_ACTIVE, 500, 1);
    task.ahead = 0;
}
static void s_breaker(void)
{
    snap.n_pool_endings = 1;
    snprintf(snap.pool_endings[0].pool, SNAP_POOL_NAME_MAX, "default");
    snap.pool_endings[0].ended = snap.pool_endings[0].unexpected = 6;
}
static void s_gpu_backoff(void)
{
    snap.n_backoffs = 1;
    snprintf(snap.backoffs[0].gpu_type, SNAP_NAME_MAX, "RTX");
    snap.backoffs[0].remaining_sec = 120;
    snap.backoffs[0].failures = 2;
}
static void s_spend_cap(void)
{
    pol.max_hourly_spend = 1.0;
    pol.pools[0].max_hourly_spend = 1.0;
    snap.n_prices = 1;
    snprintf(snap.prices[0].gpu_type, SNAP_NAME_MAX, "RTX");
    snprintf(snap.prices[0].cloud_type, sizeof snap.prices[0].cloud_type, "SECURE");
    snap.prices[0].usd_per_hr = 0.6;
    worker("gpu-w1", WORKER_ACTIVE, 500, 1)->cost_per_hr = 0.6;
}
static void s_rate_limit(void)
{
    /* RunPod's quota: 11 calls left in the minute, the reserve keeps 10: no create this cycle */
    pol.rate_limit_reserve = 10;
    snap.run_types[0].claimable = snap.run_types[0].queued = 4;
    snap.quota.known = true;
    snap.quota.n = 1;
    snprintf(snap.quota.w[0].name, sizeof snap.quota.w[0].name, "minute");
    snap.quota.w[0].remaining = 10;
    snap.quota.w[0].reset_sec = 60;
    snap.quota.w[0].quota = 60;
    snap.quota.w[0].window_sec = 60;
    snap.quota.retry_after_sec = -1;
    task.ahead = 3;
}
static void s_at_max(void)
{
    for (int k = 0; k < 4; k++) {
        char id[16];
        snprintf(id, sizeof id, "gpu-w%d", k);
        worker(id, WORKER_ACTIVE, 500, 1);
    }
    snap.run_types[0].claimable = snap.run_types[0].queued = 6;
    task.ahead = 5;
}
static void s_fleet_ceiling(void)
{
    pol.max_active = 3;
    pol.n_pools = 2;
    PolicyPool *v = &pol.pools[1];
    *v = pol.pools[0];
    snprintf(v->name, sizeof v->name, "video");
    snprintf(v->run_types[0], SNAP_NAME_MAX, "video");
    snap.n_run_types = 2;
    snap.run_types[0].claimable = snap.run_types[0].queued = 3;
    snprintf(snap.run_types[1].name, SNAP_NAME_MAX, "video");
    snap.run_types[1].claimable = snap.run_types[1].queued = 3;
    task.ahead = 2;
}
static void s_booting(void)
{
    worker("gpu-w1", WORKER_SPAWNING, 30, 0);
    boot.n = 1;
    snprintf(boot.pools[0].pool, SNAP_POOL_NAME_MAX, "default");
    boot.pools[0].samples = 8;
    boot.pools[0].median_sec = 90;
    boot.pools[0].p90_sec = 120;
}
static void s_busy_queue(void)
{
    worker("gpu-w1", WORKER_ACTIVE, 500, 1);
    pol.pools[0].max_active = 1;
    pol.pools[0].tasks_per_gpu = 3;
    snap.run_types[0].claimable = snap.run_types[0].queued = 3;
    task.ahead = 2;
}
static void s_idle(void)
{
    worker("gpu-w1", WORKER_ACTIVE, 500, 0);
    s_breaker(); /* an idle worker takes it anyway: the breaker does not hold it back */
}

static const struct {
    const char *name;
    void (*setup)(void);
    const char *want;
} CASES[] = {
    {"complete: its outcome", s_complete, "complete"},
    {"failed: its outcome", s_failed, "failed"},
    {"cancelled", s_cancelled, "cancelled"},
    {"running: holder and since when", s_running, "running"},
    {"no pool serves its run type", s_no_pool, "no_pool"},
    {"dependencies: failed, missing, pending (the complete one not named)", s_deps,
     "dependency_failed dependency_missing dependency_pending"},
    {"retry backoff", s_backoff, "retry_backoff"},
    {"no cycle ever", s_never_cycled, "no_recent_cycle queue_position scale_up_next_cycle"},
    {"no cycle lately", s_stale_cycle, "no_recent_cycle queue_position scale_up_next_cycle"},
    {"breaker open", s_breaker, "circuit_breaker queue_position"},
    {"every GPU type backed off", s_gpu_backoff, "gpu_capacity_backoff queue_position"},
    {"spend cap", s_spend_cap, "spend_cap queue_position"},
    {"RunPod's rate limit holds creates back", s_rate_limit, "rate_limit queue_position"},
    {"pool at MAX", s_at_max, "pool_at_max queue_position"},
    {"fleet ceiling shared with another pool", s_fleet_ceiling,
     "fleet_ceiling queue_position scale_up_next_cycle"},
    {"workers booting, expected wait from measured boot times", s_booting,
     "fleet_booting queue_position"},
    {"busy workers, threshold: behind the queue", s_busy_queue, "pool_at_max queue_position"},
    {"an idle worker will claim it: limits do not hold it back", s_idle, "claim_imminent"},
};

START_TEST(test_explain_task_reasons)
{
    reset();
    CASES[_i].setup();
    planner_decide(&snap, &pol, &plan);
    explain_task(&snap, &pol, &plan, &task, &boot, &OPT, &why);
    ck_assert_msg(strcmp(codes(), CASES[_i].want) == 0, "%s: got \"%s\", want \"%s\"",
                  CASES[_i].name, codes(), CASES[_i].want);
    for (size_t k = 0; k < why.n; k++)
        ck_assert_msg(why.reasons[k].detail[0], "%s: reason %zu has no detail", CASES[_i].name, k);
}
END_TEST

/* The details carry the numbers an operator acts on. */
START_TEST(test_explain_task_details)
{
    reset();
    s_booting();
    planner_decide(&snap, &pol, &plan);
    explain_task(&snap, &pol, &plan, &task, &boot, &OPT, &why);
    ck_assert_int_eq(wait_of(EXPLAIN_BOOTING), 60); /* median 90 - 30 s already booting */
    ck_assert_ptr_nonnull(strstr(detail_of(EXPLAIN_BOOTING), "median 90s, p90 120s"));

    reset();
    s_backoff();
    planner_decide(&snap, &pol, &plan);
    explain_task(&snap, &pol, &plan, &task, &boot, &OPT, &why);
    ck_assert_int_eq(wait_of(EXPLAIN_RETRY_BACKOFF), 17);
    ck_assert_ptr_nonnull(strstr(detail_of(EXPLAIN_RETRY_BACKOFF), "attempt 1 of 3"));

    reset();
    s_deps();
    planner_decide(&snap, &pol, &plan);
    explain_task(&snap, &pol, &plan, &task, &boot, &OPT, &why);
    ck_assert_ptr_nonnull(
        strstr(detail_of(EXPLAIN_DEPENDENCY_PENDING), "dep-pending (In Progress)"));
    ck_assert_ptr_null(strstr(detail_of(EXPLAIN_DEPENDENCY_PENDING), "dep-done"));
    ck_assert_ptr_nonnull(strstr(detail_of(EXPLAIN_DEPENDENCY_MISSING), "dep-missing"));

    reset();
    s_gpu_backoff();
    planner_decide(&snap, &pol, &plan);
    explain_task(&snap, &pol, &plan, &task, &boot, &OPT, &why);
    ck_assert_int_eq(wait_of(EXPLAIN_GPU_BACKOFF), 120);

    reset();
    s_at_max();
    planner_decide(&snap, &pol, &plan);
    explain_task(&snap, &pol, &plan, &task, &boot, &OPT, &why);
    ck_assert_ptr_nonnull(strstr(detail_of(EXPLAIN_POOL_AT_MAX), "demand wants 10 workers"));
    ck_assert_ptr_nonnull(strstr(detail_of(EXPLAIN_QUEUE_POSITION), "position 6"));
}
END_TEST

/* --fleet: how each pool's size came about, and what concerns the whole fleet. */
START_TEST(test_explain_fleet_and_pools)
{
    reset();
    s_at_max();
    planner_decide(&snap, &pol, &plan);
    explain_pool(&snap, &pol, &plan, 0, &boot, &OPT, &why);
    ck_assert_str_eq(codes(), "pool_size pool_at_max");
    ck_assert_ptr_nonnull(strstr(detail_of(EXPLAIN_POOL_SIZE), "busy 4 + ceil(6 claimable"));

    reset();
    worker("gpu-w1", WORKER_ACTIVE, 500, 0)->activity_age_sec = 1000;
    snap.run_types[0].claimable = snap.run_types[0].queued = 0;
    planner_decide(&snap, &pol, &plan);
    explain_pool(&snap, &pol, &plan, 0, &boot, &OPT, &why);
    ck_assert_str_eq(codes(), "pool_size scale_down");

    reset();
    worker("gpu-w1", WORKER_ACTIVE, 500, 1);
    planner_decide(&snap, &pol, &plan);
    explain_pool(&snap, &pol, &plan, 0, &boot, &OPT, &why);
    ck_assert_str_eq(codes(), "pool_size scale_up_next_cycle");

    reset();
    worker("gpu-w1", WORKER_ACTIVE, 500, 1);
    snap.run_types[0].claimable = snap.run_types[0].queued = 0;
    planner_decide(&snap, &pol, &plan);
    explain_pool(&snap, &pol, &plan, 0, &boot, &OPT, &why);
    ck_assert_str_eq(codes(), "pool_size at_desired_size");

    reset();
    s_fleet_ceiling();
    snap.since_success_sec = -1;
    snap.n_run_types = 3;
    snprintf(snap.run_types[2].name, SNAP_NAME_MAX, "audio");
    snap.run_types[2].queued = 4;
    planner_decide(&snap, &pol, &plan);
    explain_fleet(&snap, &pol, &plan, &OPT, &why);
    ck_assert_str_eq(codes(), "no_recent_cycle fleet_ceiling unserved_run_types");
    ck_assert_ptr_nonnull(strstr(detail_of(EXPLAIN_UNSERVED), "4 queued tasks"));
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* submit --wait                                                                               */

static const struct {
    const char *name;
    const char *statuses[4]; /* NULL-terminated; "-" = the row is gone */
    Status stopped;
    Status want;
} WAIT_CASES[] = {
    {"all complete", {"Complete", "Complete", NULL}, STATUS_OK, STATUS_OK},
    {"one failed", {"Complete", "Failed", NULL}, STATUS_OK, STATUS_TASKS_FAILED},
    {"one cancelled", {"Cancelled", NULL}, STATUS_OK, STATUS_TASKS_FAILED},
    {"one deleted", {"Complete", "-", NULL}, STATUS_OK, STATUS_TASKS_FAILED},
    {"timeout with one pending", {"Complete", "Queued", NULL}, STATUS_TIMEOUT, STATUS_TIMEOUT},
    {"timeout, pending and failed: the outcome is unknown",
     {"Failed", "In Progress", NULL},
     STATUS_TIMEOUT,
     STATUS_TIMEOUT},
    {"SIGINT", {"Queued", NULL}, STATUS_INTERRUPTED, STATUS_INTERRUPTED},
    {"SIGTERM", {"In Progress", NULL}, STATUS_TERMINATED, STATUS_TERMINATED},
    {"all ended when the timeout came", {"Complete", NULL}, STATUS_TIMEOUT, STATUS_OK},
};

START_TEST(test_wait_outcome_verdict)
{
    WaitTally t = {0};
    for (size_t k = 0; WAIT_CASES[_i].statuses[k]; k++) {
        const char *s = WAIT_CASES[_i].statuses[k];
        wait_tally_add(&t, strcmp(s, "-") == 0 ? NULL : s);
    }
    Status got = wait_verdict(&t, WAIT_CASES[_i].stopped);
    ck_assert_msg(got == WAIT_CASES[_i].want, "%s: got %s, want %s", WAIT_CASES[_i].name,
                  status_str(got), status_str(WAIT_CASES[_i].want));
}
END_TEST

START_TEST(test_wait_outcome_exit_codes)
{
    ck_assert(wait_status_final("Complete") && wait_status_final("Failed") &&
              wait_status_final("Cancelled"));
    ck_assert(!wait_status_final("Queued") && !wait_status_final("In Progress") &&
              !wait_status_final(NULL));
    ck_assert_int_eq(status_exit_code(STATUS_OK), 0);
    ck_assert_int_eq(status_exit_code(STATUS_TASKS_FAILED), 1);
    ck_assert_int_eq(status_exit_code(STATUS_TIMEOUT), 124);
    ck_assert_int_eq(status_exit_code(STATUS_WAIT_FAILED), 125);
    ck_assert_int_eq(status_exit_code(STATUS_INTERRUPTED), 130);
    ck_assert_int_eq(status_exit_code(STATUS_TERMINATED), 143);
    ck_assert_int_eq(status_exit_code(STATUS_ERR_USAGE), 2);
    ck_assert_int_eq(status_exit_code(STATUS_ERR_DB), 4);
}
END_TEST

static Suite *explain_suite(void)
{
    Suite *s = suite_create("explain");
    TCase *tc = tcase_create("test_explain_task_reasons");
    tcase_add_loop_test(tc, test_explain_task_reasons, 0, (int)ARRAY_LEN(CASES));
    suite_add_tcase(s, tc);
    tc = tcase_create("test_explain_task_details");
    tcase_add_test(tc, test_explain_task_details);
    suite_add_tcase(s, tc);
    tc = tcase_create("test_explain_fleet_and_pools");
    tcase_add_test(tc, test_explain_fleet_and_pools);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *wait_outcome_suite(void)
{
    Suite *s = suite_create("wait_outcome");
    TCase *tc = tcase_create("test_wait_outcome_verdict");
    tcase_add_loop_test(tc, test_wait_outcome_verdict, 0, (int)ARRAY_LEN(WAIT_CASES));
    suite_add_tcase(s, tc);
    tc = tcase_create("test_wait_outcome_exit_codes");
    tcase_add_test(tc, test_wait_outcome_exit_codes);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(explain_suite());
    srunner_add_suite(sr, wait_outcome_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
