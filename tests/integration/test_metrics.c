/* test_metrics.c -- the Prometheus metrics module: rendering from a synthetic Plan and
 * ActResult, counters derived from the actuator's outcomes, no ids or secrets in labels, the
 * textfile written atomically and read back by the next run, and the /readyz rule.
 *
 * No database: metrics.c is a shell module (it links the shell), so it is tested here rather
 * than in the pure unit tests. tests/metrics/prometheus_test.sh checks the same text with
 * promtool and a real Prometheus server. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"
#include "metrics.h"

static Config cfg;
static Snapshot *snap;
static Plan *plan;
static ActResult act;

static void setup(void)
{
    ConfigErrors errs;
    const char *envp[] = {"MIN_ACTIVE_GPUS=1", "MAX_ACTIVE_GPUS=7", NULL};
    ck_assert_int_eq(config_parse(envp, "h", 0, &cfg, &errs), STATUS_OK);
    snap = calloc(1, sizeof *snap);
    plan = calloc(1, sizeof *plan);
    ck_assert_ptr_nonnull(snap);
    ck_assert_ptr_nonnull(plan);
    ck_assert_int_eq(act_result_init(&act), STATUS_OK);
}

static void teardown(void)
{
    act_result_clear(&act);
    free(snap);
    free(plan);
}

static void outcome(const char *action, const char *reason, const char *result, const char *detail)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "action", action);
    cJSON_AddStringToObject(o, "reason", reason);
    cJSON_AddStringToObject(o, "worker_id", "gpu-20250101_000000-deadbeef");
    cJSON_AddStringToObject(o, "pod_id", "pod-SECRETISH-id");
    cJSON_AddStringToObject(o, "result", result);
    if (detail)
        cJSON_AddStringToObject(o, "detail", detail);
    cJSON_AddItemToArray(act.outcomes, o);
}

/* A cycle with a bit of everything. */
static void synthetic_cycle(void)
{
    snap->cycle_number = 42;
    snap->queued_total = 11;
    snap->oldest_queued_age_sec = 95;
    plan->queued = 9;
    plan->running = 4;
    plan->spawning = 2;
    plan->active = 5;
    plan->idle = 1;
    plan->busy = 4;
    plan->terminating = 1;
    plan->desired = 7;
    plan->spawn_limit = SPAWN_LIMIT_MAX_ACTIVE;
    plan->fleet_cost_per_hr = 3.45;
    outcome("spawn_worker", "backlog", "applied", "NVIDIA GeForce RTX 4090");
    outcome("spawn_worker", "backlog", "applied", "NVIDIA GeForce RTX 4090");
    outcome("spawn_worker", "backlog", "no_capacity", "Failed to spawn Runpod instance: x");
    outcome("spawn_worker", "backlog", "failed",
            "Failed to spawn Runpod instance: auth: bad key rk-123");
    outcome("spawn_worker", "backlog", "unknown", "create outcome unknown (timeout)");
    outcome("spawn_worker", "backlog", "failed", "pod created; recording its id failed");
    outcome("terminate_worker", "drained", "applied", NULL);
    outcome("terminate_worker", "error_cleanup", "failed", "pod termination failed");
    outcome("terminate_pod", "leaked_pod", "applied", NULL);
    outcome("fail_worker", "stale_heartbeat", "applied", "Heartbeat expired");
    outcome("fail_worker", "stuck_task", "skipped", "row changed since the snapshot");
    act.tasks_reset = 3;
    act.tasks_failed = 1;
}

static char *render(const MetricsState *m)
{
    char *text = metrics_render(m);
    ck_assert_ptr_nonnull(text);
    return text;
}

/* Asserts that text has the exact line. */
static void has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
        if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == '\0'))
            return;
    ck_abort_msg("missing line: %s\n--- text ---\n%s", line, text);
}

START_TEST(test_metrics_initial_state)
{
    MetricsState m;
    metrics_init(&m, &cfg);
    char *text = render(&m);
    has_line(text, "# TYPE gpu_orchestrator_build_info gauge");
    has_line(text, "gpu_orchestrator_build_info{version=\"" ORCH_VERSION "\"} 1");
    has_line(text, "gpu_orchestrator_workers_min 1");
    has_line(text, "gpu_orchestrator_workers_max 7");
    has_line(text, "gpu_orchestrator_pods_created_total{reason=\"backlog\"} 0");
    has_line(text, "gpu_orchestrator_cycles_total{result=\"ok\"} 0");
    has_line(text, "# TYPE gpu_orchestrator_cycles_total counter");
    /* An unknown fleet is absent, never zero workers. */
    ck_assert_ptr_null(strstr(text, "gpu_orchestrator_workers{"));
    ck_assert_ptr_null(strstr(text, "last_success_timestamp_seconds"));
    free(text);
}
END_TEST

START_TEST(test_metrics_cycle_gauges_and_counters)
{
    MetricsState m;
    metrics_init(&m, &cfg);
    synthetic_cycle();
    metrics_observe_cycle(&m, snap, plan, &act, STATUS_ERR_PARTIAL, 1.25);
    char *text = render(&m);
    has_line(text, "gpu_orchestrator_workers{state=\"spawning\"} 2");
    has_line(text, "gpu_orchestrator_workers{state=\"active\"} 5");
    has_line(text, "gpu_orchestrator_workers{state=\"idle\"} 1");
    has_line(text, "gpu_orchestrator_workers{state=\"busy\"} 4");
    has_line(text, "gpu_orchestrator_workers{state=\"terminating\"} 1");
    has_line(text, "gpu_orchestrator_tasks{state=\"queued\"} 9");
    has_line(text, "gpu_orchestrator_tasks{state=\"running\"} 4");
    has_line(text, "gpu_orchestrator_tasks_queued_all 11");
    has_line(text, "gpu_orchestrator_queue_oldest_task_age_seconds 95");
    has_line(text, "gpu_orchestrator_workers_desired 7");
    has_line(text, "gpu_orchestrator_breaker_open 0");
    has_line(text, "gpu_orchestrator_spawn_limited{reason=\"max_active_gpus\"} 1");
    has_line(text, "gpu_orchestrator_spawn_limited{reason=\"circuit_breaker\"} 0");
    has_line(text, "gpu_orchestrator_fleet_cost_per_hour_usd 3.45");
    has_line(text, "gpu_orchestrator_cycle_duration_seconds 1.25");
    /* two applied spawns and one created pod whose id was not recorded */
    has_line(text, "gpu_orchestrator_pods_created_total{reason=\"backlog\"} 3");
    has_line(text, "gpu_orchestrator_pod_create_failures_total{reason=\"no_capacity\"} 1");
    has_line(text, "gpu_orchestrator_pod_create_failures_total{reason=\"auth\"} 1");
    has_line(text, "gpu_orchestrator_pod_create_failures_total{reason=\"outcome_unknown\"} 1");
    has_line(text, "gpu_orchestrator_pods_terminated_total{reason=\"drained\"} 1");
    has_line(text, "gpu_orchestrator_pods_terminated_total{reason=\"error_cleanup\"} 0");
    has_line(text, "gpu_orchestrator_pods_terminated_total{reason=\"leaked_pod\"} 1");
    has_line(text, "gpu_orchestrator_workers_failed_total{reason=\"stale_heartbeat\"} 1");
    has_line(text, "gpu_orchestrator_workers_failed_total{reason=\"stuck_task\"} 0");
    has_line(text, "gpu_orchestrator_tasks_recovered_total{outcome=\"requeued\"} 3");
    has_line(text, "gpu_orchestrator_tasks_recovered_total{outcome=\"failed\"} 1");
    has_line(text, "gpu_orchestrator_cycles_total{result=\"partial\"} 1");
    /* a partial cycle is not a success */
    ck_assert_ptr_null(strstr(text, "last_success_timestamp_seconds"));
    /* no ids, no error details in labels */
    ck_assert_ptr_null(strstr(text, "gpu-2025"));
    ck_assert_ptr_null(strstr(text, "SECRETISH"));
    ck_assert_ptr_null(strstr(text, "rk-123"));
    ck_assert_ptr_null(strstr(text, "RTX"));
    free(text);
}
END_TEST

START_TEST(test_metrics_failed_cycle_keeps_gauges_and_counts)
{
    MetricsState m;
    metrics_init(&m, &cfg);
    synthetic_cycle();
    metrics_observe_cycle(&m, snap, plan, &act, STATUS_OK, 0.5);
    ck_assert(m.last_success_epoch > 1e9);
    /* The next cycle failed before its snapshot: no plan, no actions. */
    Snapshot *empty = calloc(1, sizeof *empty);
    ck_assert_ptr_nonnull(empty);
    metrics_observe_cycle(&m, empty, plan, NULL, STATUS_ERR_DB, 0.1);
    metrics_observe_cycle(&m, NULL, NULL, NULL, STATUS_LOCKED, 0.01);
    free(empty);
    char *text = render(&m);
    has_line(text, "gpu_orchestrator_workers{state=\"busy\"} 4"); /* last known */
    has_line(text, "gpu_orchestrator_cycles_total{result=\"ok\"} 1");
    has_line(text, "gpu_orchestrator_cycles_total{result=\"database\"} 1");
    has_line(text, "gpu_orchestrator_cycles_total{result=\"locked\"} 1");
    has_line(text, "gpu_orchestrator_pods_created_total{reason=\"backlog\"} 3");
    has_line(text, "gpu_orchestrator_cycle_duration_seconds 0.01");
    ck_assert_ptr_nonnull(strstr(text, "gpu_orchestrator_last_success_timestamp_seconds 1"));
    free(text);
    /* NULL state: metrics off, nothing happens */
    metrics_observe_cycle(NULL, snap, plan, &act, STATUS_OK, 1);
}
END_TEST

START_TEST(test_metrics_label_values_bounded)
{
    MetricsState m;
    metrics_init(&m, &cfg);
    for (int i = 0; i < 100; i++) {
        char reason[32];
        snprintf(reason, sizeof reason, "surprise_%d", i);
        outcome("fail_worker", reason, "applied", NULL);
    }
    snap->cycle_number = 1;
    metrics_observe_cycle(&m, snap, plan, &act, STATUS_OK, 0);
    ck_assert_uint_eq(m.workers_failed.count, METRICS_LABELS_MAX);
    double sum = 0;
    for (size_t i = 0; i < m.workers_failed.count; i++)
        sum += m.workers_failed.samples[i].value;
    ck_assert(sum == 100);
    ck_assert(metrics_counter_get(&m.workers_failed, "other") > 0);
    char *text = render(&m);
    has_line(text, "gpu_orchestrator_workers_failed_total{reason=\"stale_heartbeat\"} 0");
    free(text);
}
END_TEST

START_TEST(test_metrics_textfile_round_trip)
{
    char dir[] = "/tmp/orch-metrics-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/orchestrator.prom", dir);

    MetricsState *m = NULL;
    ck_assert_int_eq(metrics_new(&cfg, &m), STATUS_OK);
    ck_assert_int_eq(metrics_file_load(m, path), STATUS_ERR_NOT_FOUND);
    synthetic_cycle();
    metrics_observe_cycle(m, snap, plan, &act, STATUS_OK, 2);
    ck_assert_int_eq(metrics_file_write(m, path), STATUS_OK);
    double success = m->last_success_epoch;
    metrics_free(m);

    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq((int)(sb.st_mode & 0777), 0644);
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    ck_assert_int_ne(stat(tmp, &sb), 0); /* renamed away */

    /* The next run (a fresh process in cron) continues the counters. */
    ck_assert_int_eq(metrics_new(&cfg, &m), STATUS_OK);
    ck_assert_int_eq(metrics_file_load(m, path), STATUS_OK);
    ck_assert(metrics_counter_get(&m->pods_created, "backlog") == 3);
    ck_assert(metrics_counter_get(&m->pod_create_failures, "auth") == 1);
    ck_assert(metrics_counter_get(&m->cycles, "ok") == 1);
    ck_assert(m->last_success_epoch > success - 0.01 && m->last_success_epoch < success + 0.01);
    ck_assert(!m->fleet_known); /* gauges are not carried over */
    metrics_observe_cycle(m, NULL, NULL, NULL, STATUS_LOCKED, 0);
    metrics_observe_cycle(m, snap, plan, &act, STATUS_OK, 1);
    ck_assert_int_eq(metrics_file_write(m, path), STATUS_OK);
    metrics_free(m);

    FILE *fp = fopen(path, "r");
    ck_assert_ptr_nonnull(fp);
    static char text[65536];
    size_t n = fread(text, 1, sizeof text - 1, fp);
    text[n] = '\0';
    fclose(fp);
    has_line(text, "gpu_orchestrator_pods_created_total{reason=\"backlog\"} 6");
    has_line(text, "gpu_orchestrator_cycles_total{result=\"ok\"} 2");
    has_line(text, "gpu_orchestrator_cycles_total{result=\"locked\"} 1");

    /* A directory that does not exist: an error, and no stray temporary file. */
    char bad[300];
    snprintf(bad, sizeof bad, "%s/missing/dir/x.prom", dir);
    ck_assert_int_eq(metrics_new(&cfg, &m), STATUS_OK);
    ck_assert_int_eq(metrics_file_write(m, bad), STATUS_ERR_INTERNAL);
    ck_assert_int_eq(metrics_file_write(m, ""), STATUS_OK); /* unset: no-op */
    metrics_free(m);

    unlink(path);
    rmdir(dir);
}
END_TEST

START_TEST(test_metrics_textfile_ignores_garbage)
{
    char path[] = "/tmp/orch-metrics-garbage-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char *text = "# HELP x\n"
                       "gpu_orchestrator_pods_created_total{reason=\"backlog\"} 5\n"
                       "gpu_orchestrator_pods_created_total{reason=\"Bad Label\"} 9\n"
                       "gpu_orchestrator_pods_created_total{reason=\"min_floor\"} -3\n"
                       "gpu_orchestrator_pods_created_total{reason=\"keep_idle\"} abc\n"
                       "gpu_orchestrator_workers{state=\"idle\"} 3\n"
                       "gpu_orchestrator_cycles_total{outcome=\"ok\"} 4\n"
                       "garbage line without structure\n"
                       "gpu_orchestrator_cycles_total{result=\"ok\"} 7";
    ck_assert_int_eq((int)write(fd, text, strlen(text)), (int)strlen(text));
    close(fd);
    MetricsState m;
    metrics_init(&m, &cfg);
    ck_assert_int_eq(metrics_file_load(&m, path), STATUS_OK);
    unlink(path);
    ck_assert(metrics_counter_get(&m.pods_created, "backlog") == 5);
    ck_assert(metrics_counter_get(&m.pods_created, "min_floor") == 0);
    ck_assert(metrics_counter_get(&m.pods_created, "keep_idle") == 0);
    ck_assert(metrics_counter_get(&m.cycles, "ok") == 7);
    ck_assert(!m.fleet_known);
}
END_TEST

/* /readyz: a recent OK or LOCKED cycle, and the database answered in the last one. */
static const struct {
    const char *name;
    long long now_ms, ok_ms, interval_ms;
    bool have_cycle;
    Status last;
    bool want;
} READY[] = {
    {"no cycle yet", 1000, -1, 1000, false, STATUS_OK, false},
    {"fresh success", 5000, 4000, 1000, true, STATUS_OK, true},
    {"locked counts as success", 5000, 4000, 1000, true, STATUS_LOCKED, true},
    {"success exactly 3 intervals ago", 7000, 4000, 1000, true, STATUS_OK, true},
    {"success too old", 7001, 4000, 1000, true, STATUS_ERR_API, false},
    {"recent success but the database failed last", 5000, 4500, 1000, true, STATUS_ERR_DB, false},
    {"recent success, last cycle partial (database answered)", 5000, 4500, 1000, true,
     STATUS_ERR_PARTIAL, true},
    {"never succeeded", 5000, -1, 1000, true, STATUS_ERR_API, false},
};

START_TEST(test_metrics_readyz_rule)
{
    ck_assert_msg(http_ready(READY[_i].now_ms, READY[_i].ok_ms, READY[_i].interval_ms,
                             READY[_i].have_cycle, READY[_i].last) == READY[_i].want,
                  "%s", READY[_i].name);
}
END_TEST

static Suite *metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_metrics_initial_state);
    tcase_add_test(tc, test_metrics_cycle_gauges_and_counters);
    tcase_add_test(tc, test_metrics_failed_cycle_keeps_gauges_and_counts);
    tcase_add_test(tc, test_metrics_label_values_bounded);
    tcase_add_test(tc, test_metrics_textfile_round_trip);
    tcase_add_test(tc, test_metrics_textfile_ignores_garbage);
    tcase_add_loop_test(tc, test_metrics_readyz_rule, 0, (int)(sizeof READY / sizeof READY[0]));
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(metrics_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
