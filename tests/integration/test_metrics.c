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

/* One actuator outcome, as actuator.c's record() writes it (pool NULL: an action of no pool). */
static void pool_outcome(const char *action, const char *reason, const char *pool,
                         const char *result, const char *detail)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "action", action);
    cJSON_AddStringToObject(o, "reason", reason);
    cJSON_AddStringToObject(o, "worker_id", "gpu-20250101_000000-deadbeef");
    cJSON_AddStringToObject(o, "pod_id", "pod-SECRETISH-id");
    if (pool)
        cJSON_AddStringToObject(o, "pool", pool);
    cJSON_AddStringToObject(o, "result", result);
    if (detail)
        cJSON_AddStringToObject(o, "detail", detail);
    cJSON_AddItemToArray(act.outcomes, o);
}

static void outcome(const char *action, const char *reason, const char *result, const char *detail)
{
    pool_outcome(action, reason, strcmp(action, "terminate_pod") == 0 ? NULL : "default", result,
                 detail);
}

/* Pool p of the plan with its counts (the plan's totals are the caller's). */
static PlanPool *plan_pool(size_t p, const char *name, long long spawning, long long active,
                           long long busy, long long terminating, long long queued,
                           long long running, long long desired, double cost)
{
    PlanPool *pp = &plan->pools[p];
    memset(pp, 0, sizeof *pp);
    snprintf(pp->name, sizeof pp->name, "%s", name);
    pp->spawning = spawning;
    pp->active = active;
    pp->busy = busy;
    pp->idle = active - busy;
    pp->terminating = terminating;
    pp->queued = queued;
    pp->running = running;
    pp->desired = desired;
    pp->cost_per_hr = cost;
    pp->oldest_queued_age_sec = -1;
    if (plan->n_pools < p + 1)
        plan->n_pools = p + 1;
    return pp;
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
    PlanPool *pp = plan_pool(0, "default", 2, 5, 4, 1, 9, 4, 7, 3.45);
    pp->spawn_limit = SPAWN_LIMIT_MAX_ACTIVE;
    pp->oldest_queued_age_sec = 95;
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
    has_line(text, "gpu_orchestrator_pods_created_total{reason=\"backlog\",pool=\"default\"} 0");
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
    /* One pool (POOLS unset): every fleet series is the pool default's, with the old totals. */
    has_line(text, "gpu_orchestrator_workers{state=\"spawning\",pool=\"default\"} 2");
    has_line(text, "gpu_orchestrator_workers{state=\"active\",pool=\"default\"} 5");
    has_line(text, "gpu_orchestrator_workers{state=\"idle\",pool=\"default\"} 1");
    has_line(text, "gpu_orchestrator_workers{state=\"busy\",pool=\"default\"} 4");
    has_line(text, "gpu_orchestrator_workers{state=\"terminating\",pool=\"default\"} 1");
    has_line(text, "gpu_orchestrator_tasks{state=\"queued\",pool=\"default\"} 9");
    has_line(text, "gpu_orchestrator_tasks{state=\"running\",pool=\"default\"} 4");
    has_line(text, "gpu_orchestrator_tasks_queued_all 11");
    has_line(text, "gpu_orchestrator_queue_oldest_task_age_seconds{pool=\"default\"} 95");
    has_line(text, "gpu_orchestrator_workers_desired{pool=\"default\"} 7");
    has_line(text, "gpu_orchestrator_breaker_open{pool=\"default\"} 0");
    has_line(text, "gpu_orchestrator_spawn_limited{reason=\"max_active_gpus\",pool=\"default\"} 1");
    has_line(text, "gpu_orchestrator_spawn_limited{reason=\"circuit_breaker\",pool=\"default\"} 0");
    has_line(text, "gpu_orchestrator_fleet_cost_per_hour_usd{pool=\"default\"} 3.45");
    has_line(text, "gpu_orchestrator_cycle_duration_seconds 1.25");
    /* nothing outside the one pool: no (none) series, no unserved run type */
    ck_assert_ptr_null(strstr(text, "workers{state=\"active\",pool=\"(none)\"}"));
    ck_assert_ptr_null(strstr(text, "fleet_cost_per_hour_usd{pool=\"(none)\"}"));
    ck_assert_ptr_null(strstr(text, "tasks_unserved"));
    /* two applied spawns and one created pod whose id was not recorded */
    has_line(text, "gpu_orchestrator_pods_created_total{reason=\"backlog\",pool=\"default\"} 3");
    has_line(
        text,
        "gpu_orchestrator_pod_create_failures_total{reason=\"no_capacity\",pool=\"default\"} 1");
    has_line(text,
             "gpu_orchestrator_pod_create_failures_total{reason=\"auth\",pool=\"default\"} 1");
    has_line(text, "gpu_orchestrator_pod_create_failures_total{reason=\"outcome_unknown\","
                   "pool=\"default\"} 1");
    has_line(text, "gpu_orchestrator_pods_terminated_total{reason=\"drained\",pool=\"default\"} 1");
    has_line(text,
             "gpu_orchestrator_pods_terminated_total{reason=\"error_cleanup\",pool=\"default\"} 0");
    has_line(text,
             "gpu_orchestrator_pods_terminated_total{reason=\"leaked_pod\",pool=\"(none)\"} 1");
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
    has_line(text, "gpu_orchestrator_workers{state=\"busy\",pool=\"default\"} 4"); /* last known */
    has_line(text, "gpu_orchestrator_cycles_total{result=\"ok\"} 1");
    has_line(text, "gpu_orchestrator_cycles_total{result=\"database\"} 1");
    has_line(text, "gpu_orchestrator_cycles_total{result=\"locked\"} 1");
    has_line(text, "gpu_orchestrator_pods_created_total{reason=\"backlog\",pool=\"default\"} 3");
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
    for (int i = 0; i < 300; i++) {
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
    ck_assert(sum == 300);
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
    has_line(text, "gpu_orchestrator_pods_created_total{reason=\"backlog\",pool=\"default\"} 6");
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
    const char *text =
        "# HELP x\n"
        "gpu_orchestrator_pods_created_total{reason=\"backlog\",pool=\"default\"} 5\n"
        "gpu_orchestrator_pods_created_total{reason=\"Bad Label\",pool=\"default\"} 9\n"
        "gpu_orchestrator_pods_created_total{reason=\"min_floor\",pool=\"default\"} -3\n"
        "gpu_orchestrator_pods_created_total{reason=\"keep_idle\",pool=\"default\"} abc\n"
        /* a file of the release before pools: the pool-labelled series start afresh */
        "gpu_orchestrator_pods_created_total{reason=\"operator\"} 8\n"
        /* a pool this configuration does not have (removed from POOLS): its series ends */
        "gpu_orchestrator_pods_created_total{reason=\"operator\",pool=\"gone\"} 4\n"
        "gpu_orchestrator_pods_created_total{reason=\"operator\",pool=\"Default\"} 4\n"
        "gpu_orchestrator_pods_created_total{reason=\"operator\",pool=\"(none\"} 4\n"
        "gpu_orchestrator_pods_terminated_total{reason=\"leaked_pod\",pool=\"(none)\"} 2\n"
        "gpu_orchestrator_cycles_total{result=\"ok\",pool=\"default\"} 3\n"
        "gpu_orchestrator_workers{state=\"idle\",pool=\"default\"} 3\n"
        "gpu_orchestrator_cycles_total{outcome=\"ok\"} 4\n"
        "garbage line without structure\n"
        "gpu_orchestrator_cycles_total{result=\"ok\"} 7";
    ck_assert_int_eq((int)write(fd, text, strlen(text)), (int)strlen(text));
    close(fd);
    MetricsState m;
    metrics_init(&m, &cfg);
    ck_assert_int_eq(metrics_file_load(&m, path), STATUS_OK);
    unlink(path);
    ck_assert(metrics_counter_get_pool(&m.pods_created, "backlog", "default") == 5);
    ck_assert(metrics_counter_get(&m.pods_created, "min_floor") == 0);
    ck_assert(metrics_counter_get(&m.pods_created, "keep_idle") == 0);
    ck_assert(metrics_counter_get(&m.pods_created, "operator") == 0);
    ck_assert(metrics_counter_get_pool(&m.pods_terminated, "leaked_pod", METRICS_NO_POOL) == 2);
    ck_assert(metrics_counter_get(&m.cycles, "ok") == 7);
    ck_assert(!m.fleet_known);
}
END_TEST

/* Two pools, a pool removed from POOLS that still has a worker, a leaked pod, and run types no
 * pool serves: every fleet, queue, spawn, termination and breaker series per pool, what belongs
 * to no configured pool under (none), the unserved run types by name (a strange one and the ones
 * past the plan's list under "other"), and the textfile round trip of the pool labels. */
START_TEST(test_metrics_pools)
{
    Config pcfg;
    ConfigErrors errs;
    const char *envp[] = {
        "MAX_ACTIVE_GPUS=10",           "POOLS=video,image", "POOL_VIDEO_MIN_ACTIVE_GPUS=1",
        "POOL_IMAGE_MIN_ACTIVE_GPUS=1", "MIN_ACTIVE_GPUS=0", NULL};
    ck_assert_int_eq(config_parse(envp, "h", 0, &pcfg, &errs), STATUS_OK);
    MetricsState *m = NULL;
    ck_assert_int_eq(metrics_new(&pcfg, &m), STATUS_OK);
    char *text = render(m);
    has_line(text, "gpu_orchestrator_pods_created_total{reason=\"backlog\",pool=\"video\"} 0");
    has_line(text, "gpu_orchestrator_pods_created_total{reason=\"backlog\",pool=\"image\"} 0");
    ck_assert_ptr_null(strstr(text, "pool=\"default\""));
    free(text);

    snap->cycle_number = 7;
    snap->queued_total = 40;
    /* video: 3 active (2 busy), 4 spawning; image: 2 active, 1 terminating; a worker of the
     * retired pool "old" (active, busy, 0.5 $/h) and 1 task nobody of ours holds */
    plan_pool(0, "video", 4, 3, 2, 0, 20, 2, 7, 2.5)->spawn_limit = SPAWN_LIMIT_FLEET_CEILING;
    PlanPool *img = plan_pool(1, "image", 0, 2, 0, 1, 0, 0, 1, 0.8);
    img->breaker_open = true;
    img->spawn_limit = SPAWN_LIMIT_BREAKER;
    plan->pools[0].oldest_queued_age_sec = 61;
    plan->spawning = 4;
    plan->active = 6;
    plan->busy = 3;
    plan->idle = 3;
    plan->terminating = 1;
    plan->running = 4;
    plan->fleet_cost_per_hr = 3.8;
    /* unserved: 10 run types, the plan lists 8; "audio" 5, "bad label" 2, six of 1, two more */
    snap->n_run_types = 10;
    const char *names[] = {"audio", "bad label", "u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"};
    for (size_t k = 0; k < 10; k++) {
        snprintf(snap->run_types[k].name, SNAP_NAME_MAX, "%s", names[k]);
        snap->run_types[k].queued = k == 0 ? 5 : k == 1 ? 2 : 1;
        if (k < PLAN_UNSERVED_MAX)
            snprintf(plan->unserved[k], SNAP_NAME_MAX, "%s", names[k]);
    }
    plan->n_unserved = 10;
    plan->unserved_queued = 5 + 2 + 8;

    pool_outcome("spawn_worker", "backlog", "video", "applied", "x");
    pool_outcome("spawn_worker", "backlog", "video", "applied", "x");
    pool_outcome("spawn_worker", "min_floor", "image", "applied", "x");
    pool_outcome("spawn_worker", "backlog", "image", "no_capacity", "x");
    pool_outcome("terminate_worker", "drained", "image", "applied", NULL);
    pool_outcome("terminate_worker", "drained", NULL, "applied", NULL);      /* pool "old" */
    pool_outcome("terminate_worker", "drained", "default", "applied", NULL); /* not configured */
    pool_outcome("terminate_pod", "leaked_pod", NULL, "applied", NULL);
    metrics_observe_cycle(m, snap, plan, &act, STATUS_OK, 0.3);
    text = render(m);
    has_line(text, "gpu_orchestrator_workers{state=\"active\",pool=\"video\"} 3");
    has_line(text, "gpu_orchestrator_workers{state=\"spawning\",pool=\"video\"} 4");
    has_line(text, "gpu_orchestrator_workers{state=\"idle\",pool=\"image\"} 2");
    has_line(text, "gpu_orchestrator_workers{state=\"terminating\",pool=\"image\"} 1");
    has_line(text, "gpu_orchestrator_workers{state=\"active\",pool=\"(none)\"} 1");
    has_line(text, "gpu_orchestrator_workers{state=\"busy\",pool=\"(none)\"} 1");
    has_line(text, "gpu_orchestrator_tasks{state=\"queued\",pool=\"video\"} 20");
    has_line(text, "gpu_orchestrator_tasks{state=\"running\",pool=\"video\"} 2");
    has_line(text, "gpu_orchestrator_tasks{state=\"running\",pool=\"(none)\"} 2");
    ck_assert_ptr_null(strstr(text, "tasks{state=\"queued\",pool=\"(none)\"}"));
    has_line(text, "gpu_orchestrator_queue_oldest_task_age_seconds{pool=\"video\"} 61");
    has_line(text, "gpu_orchestrator_queue_oldest_task_age_seconds{pool=\"image\"} 0");
    has_line(text, "gpu_orchestrator_workers_desired{pool=\"video\"} 7");
    has_line(text, "gpu_orchestrator_workers_desired{pool=\"image\"} 1");
    has_line(text, "gpu_orchestrator_breaker_open{pool=\"video\"} 0");
    has_line(text, "gpu_orchestrator_breaker_open{pool=\"image\"} 1");
    has_line(text, "gpu_orchestrator_spawn_limited{reason=\"fleet_ceiling\",pool=\"video\"} 1");
    has_line(text, "gpu_orchestrator_spawn_limited{reason=\"circuit_breaker\",pool=\"image\"} 1");
    has_line(text, "gpu_orchestrator_spawn_limited{reason=\"circuit_breaker\",pool=\"video\"} 0");
    has_line(text, "gpu_orchestrator_fleet_cost_per_hour_usd{pool=\"video\"} 2.5");
    has_line(text, "gpu_orchestrator_fleet_cost_per_hour_usd{pool=\"image\"} 0.8");
    has_line(text, "gpu_orchestrator_fleet_cost_per_hour_usd{pool=\"(none)\"} 0.5");
    has_line(text, "gpu_orchestrator_tasks_unserved{run_type=\"audio\"} 5");
    has_line(text, "gpu_orchestrator_tasks_unserved{run_type=\"u6\"} 1");
    has_line(text, "gpu_orchestrator_tasks_unserved{run_type=\"other\"} 4"); /* 2 + 2 unlisted */
    ck_assert_ptr_null(strstr(text, "bad label"));
    ck_assert_ptr_null(strstr(text, "u7"));
    has_line(text, "gpu_orchestrator_pods_created_total{reason=\"backlog\",pool=\"video\"} 2");
    has_line(text, "gpu_orchestrator_pods_created_total{reason=\"min_floor\",pool=\"image\"} 1");
    has_line(text,
             "gpu_orchestrator_pod_create_failures_total{reason=\"no_capacity\",pool=\"image\"} 1");
    has_line(text, "gpu_orchestrator_pods_terminated_total{reason=\"drained\",pool=\"image\"} 1");
    has_line(text, "gpu_orchestrator_pods_terminated_total{reason=\"drained\",pool=\"(none)\"} 2");
    has_line(text,
             "gpu_orchestrator_pods_terminated_total{reason=\"leaked_pod\",pool=\"(none)\"} 1");
    ck_assert_ptr_null(strstr(text, "pool=\"default\"")); /* never a pool not configured */
    free(text);

    /* The textfile keeps the pool labels: the next run continues each pool's counters. */
    char dir[] = "/tmp/orch-metrics-pools-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/orchestrator.prom", dir);
    ck_assert_int_eq(metrics_file_write(m, path), STATUS_OK);
    metrics_free(m);
    ck_assert_int_eq(metrics_new(&pcfg, &m), STATUS_OK);
    ck_assert_int_eq(metrics_file_load(m, path), STATUS_OK);
    ck_assert(metrics_counter_get_pool(&m->pods_created, "backlog", "video") == 2);
    ck_assert(metrics_counter_get_pool(&m->pods_created, "min_floor", "image") == 1);
    ck_assert(metrics_counter_get_pool(&m->pod_create_failures, "no_capacity", "image") == 1);
    ck_assert(metrics_counter_get_pool(&m->pods_terminated, "drained", METRICS_NO_POOL) == 2);
    ck_assert(metrics_counter_get_pool(&m->pods_terminated, "leaked_pod", METRICS_NO_POOL) == 1);
    ck_assert(metrics_counter_get(&m->cycles, "ok") == 1);
    metrics_free(m);
    /* A configuration without pool video: its series end, the others continue. */
    const char *envp2[] = {"POOLS=image", NULL};
    ck_assert_int_eq(config_parse(envp2, "h", 0, &pcfg, &errs), STATUS_OK);
    ck_assert_int_eq(metrics_new(&pcfg, &m), STATUS_OK);
    ck_assert_int_eq(metrics_file_load(m, path), STATUS_OK);
    ck_assert(metrics_counter_get(&m->pods_created, "backlog") == 0);
    ck_assert(metrics_counter_get_pool(&m->pods_created, "min_floor", "image") == 1);
    metrics_free(m);
    unlink(path);
    rmdir(dir);
}
END_TEST

/* A snapshot too large to act on: the planner stops before sizing any pool. The pools still
 * report the limit, with the last known counts. */
START_TEST(test_metrics_unsafe_snapshot_keeps_pools)
{
    MetricsState m;
    metrics_init(&m, &cfg);
    synthetic_cycle();
    metrics_observe_cycle(&m, snap, plan, &act, STATUS_OK, 0.5);
    Plan *bail = calloc(1, sizeof *bail);
    ck_assert_ptr_nonnull(bail);
    bail->spawn_limit = SPAWN_LIMIT_UNSAFE_SNAPSHOT;
    metrics_observe_cycle(&m, snap, bail, NULL, STATUS_ERR_PARTIAL, 0.5);
    free(bail);
    char *text = render(&m);
    has_line(text, "gpu_orchestrator_workers{state=\"active\",pool=\"default\"} 5");
    has_line(text, "gpu_orchestrator_spawn_limited{reason=\"unsafe_snapshot\",pool=\"default\"} 1");
    has_line(text, "gpu_orchestrator_spawn_limited{reason=\"max_active_gpus\",pool=\"default\"} 0");
    free(text);
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
    tcase_add_test(tc, test_metrics_pools);
    tcase_add_test(tc, test_metrics_unsafe_snapshot_keeps_pools);
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
