/* test_metrics_ops.c -- the metrics of issue 17 (metrics_ops.c): the task cost histogram (buckets,
 * bounded task_type labels, pools), the busy/idle cost counters, the caps and intervals, the
 * reconcile findings of the last pod list and their carrying across cron runs in the textfile.
 *
 * No database: a synthetic TaskCostReport, Snapshot and Plan. tests/observability/run.sh checks
 * the same families from a real run with promtool. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "metrics.h"

static Config cfg;
static Snapshot *snap;
static Plan *plan;
static TaskCostReport *costs;

static void setup(void)
{
    ConfigErrors errs;
    const char *envp[] = {"POOLS=video,image",
                          "MAX_HOURLY_SPEND_USD=12.5",
                          "POOL_VIDEO_MAX_HOURLY_SPEND_USD=4",
                          "ORCHESTRATOR_POLL_SEC=60",
                          "ORPHAN_POD_GRACE_SEC=300",
                          NULL};
    ck_assert_int_eq(config_parse(envp, "h", 0, &cfg, &errs), STATUS_OK);
    snap = calloc(1, sizeof *snap);
    plan = calloc(1, sizeof *plan);
    costs = calloc(1, sizeof *costs);
    ck_assert_ptr_nonnull(snap);
    ck_assert_ptr_nonnull(plan);
    ck_assert_ptr_nonnull(costs);
}

static void teardown(void)
{
    free(snap);
    free(plan);
    free(costs);
}

static void type_row(const char *pool, const char *task_type, int bucket, long long tasks,
                     double usd)
{
    TaskCostType *t = &costs->types[costs->n_types++];
    memset(t, 0, sizeof *t);
    snprintf(t->pool, sizeof t->pool, "%s", pool);
    snprintf(t->task_type, sizeof t->task_type, "%s", task_type);
    t->bucket = bucket;
    t->tasks = tasks;
    t->usd = usd;
}

static void pool_row(const char *pool, double gpu, double busy)
{
    TaskCostPool *p = &costs->pools[costs->n_pools++];
    snprintf(p->pool, sizeof p->pool, "%s", pool);
    p->gpu_usd = gpu;
    p->busy_usd = busy;
}

/* The value of the one line of text that starts with prefix (then a space), or -1. */
static double line_value(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, prefix, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

START_TEST(test_metrics_ops_caps_and_intervals)
{
    MetricsState *m = NULL;
    ck_assert_int_eq(metrics_new(&cfg, &m), STATUS_OK);
    metrics_set_poll_interval(m, 15); /* continuous --interval 15 */
    char *text = metrics_render(m);
    ck_assert_ptr_nonnull(text);
    ck_assert(line_value(text, "gpu_orchestrator_poll_interval_seconds") == 15);
    ck_assert(line_value(text, "gpu_orchestrator_reconcile_interval_seconds") == 300);
    ck_assert(line_value(text, "gpu_orchestrator_fleet_spend_cap_per_hour_usd") == 12.5);
    ck_assert(line_value(text, "gpu_orchestrator_spend_cap_per_hour_usd{pool=\"video\"}") == 4);
    ck_assert(line_value(text, "gpu_orchestrator_spend_cap_per_hour_usd{pool=\"image\"}") == 12.5);
    /* unknown until a snapshot and a pod list say so */
    ck_assert_ptr_null(strstr(text, "last_reconcile_timestamp_seconds "));
    ck_assert_ptr_null(strstr(text, "pods_leaked{"));
    ck_assert_ptr_null(strstr(text, "task_cost_usd_bucket"));
    ck_assert(line_value(text, "gpu_orchestrator_pod_list_reads_total{result=\"failed\"}") == 0);
    ck_assert(line_value(text, "gpu_orchestrator_worker_cost_usd_total{use=\"idle\",pool="
                               "\"image\"}") == 0);
    free(text);
    metrics_free(m);
}
END_TEST

START_TEST(test_metrics_ops_task_cost_histogram)
{
    MetricsState *m = NULL;
    ck_assert_int_eq(metrics_new(&cfg, &m), STATUS_OK);
    costs->observed = true;
    type_row("video", "render", 6, 2, 0.16); /* two tasks of <= $0.1 (bound 6) */
    type_row("video", "render", 9, 1, 0.9);  /* one of <= $1 */
    type_row("video", "render", 13, 1, 20);  /* one above $10: +Inf only */
    type_row("image", "odd type!", 0, 1, 0.0005);
    type_row("retired", "upscale", 3, 1, 0.01); /* a pool no longer configured: (none) */
    pool_row("video", 2.0, 1.5);
    pool_row("image", 0.5, 0.75); /* busy above gpu (a drained worker's task): idle 0 */
    metrics_observe_task_costs(m, costs);
    metrics_observe_task_costs(m, costs); /* a second observation adds up */
    char *text = metrics_render(m);
    ck_assert_ptr_nonnull(text);
    const char *v = "gpu_orchestrator_task_cost_usd_bucket{pool=\"video\",task_type=\"render\",";
    char key[256];
    snprintf(key, sizeof key, "%sle=\"0.05\"}", v);
    ck_assert(line_value(text, key) == 0);
    snprintf(key, sizeof key, "%sle=\"0.1\"}", v);
    ck_assert(line_value(text, key) == 4);
    snprintf(key, sizeof key, "%sle=\"1\"}", v);
    ck_assert(line_value(text, key) == 6);
    snprintf(key, sizeof key, "%sle=\"10\"}", v);
    ck_assert(line_value(text, key) == 6);
    snprintf(key, sizeof key, "%sle=\"+Inf\"}", v);
    ck_assert(line_value(text, key) == 8);
    ck_assert(line_value(text, "gpu_orchestrator_task_cost_usd_count{pool=\"video\",task_type="
                               "\"render\"}") == 8);
    double sum = line_value(text, "gpu_orchestrator_task_cost_usd_sum{pool=\"video\",task_type="
                                  "\"render\"}");
    ck_assert(sum > 42.11 && sum < 42.13);
    ck_assert(line_value(text, "gpu_orchestrator_task_cost_usd_bucket{pool=\"image\",task_type="
                               "\"other\",le=\"0.001\"}") == 2);
    ck_assert(line_value(text, "gpu_orchestrator_task_cost_usd_count{pool=\"(none)\",task_type="
                               "\"upscale\"}") == 2);
    ck_assert(line_value(text, "gpu_orchestrator_worker_cost_usd_total{use=\"busy\",pool="
                               "\"video\"}") == 3.0);
    ck_assert(line_value(text, "gpu_orchestrator_worker_cost_usd_total{use=\"idle\",pool="
                               "\"video\"}") == 1.0);
    ck_assert(line_value(text, "gpu_orchestrator_worker_cost_usd_total{use=\"idle\",pool="
                               "\"image\"}") == 0);
    ck_assert_ptr_null(strstr(text, "odd type"));
    free(text);

    /* Nothing observed (the watermark did not move): nothing changes. */
    costs->observed = false;
    metrics_observe_task_costs(m, costs);
    ck_assert(m->ops.cost[0].count == 8);
    metrics_free(m);
}
END_TEST

START_TEST(test_metrics_ops_task_types_bounded)
{
    MetricsState *m = NULL;
    ck_assert_int_eq(metrics_new(&cfg, &m), STATUS_OK);
    costs->observed = true;
    for (int i = 0; i < 200; i++) {
        char name[32];
        snprintf(name, sizeof name, "type_%03d", i);
        type_row(i % 2 ? "video" : "image", name, 5, 1, 0.04);
    }
    metrics_observe_task_costs(m, costs);
    /* 48 named series, then one "other" per pool label value that needed one */
    ck_assert_uint_eq(m->ops.n_cost, METRICS_COST_SERIES_MAX + 2);
    double total = 0;
    for (size_t i = 0; i < m->ops.n_cost; i++)
        total += m->ops.cost[i].count;
    ck_assert(total == 200); /* nothing lost, only folded */
    char *text = metrics_render(m);
    ck_assert(line_value(text, "gpu_orchestrator_task_cost_usd_count{pool=\"video\",task_type="
                               "\"other\"}") == 76);
    free(text);
    metrics_free(m);
}
END_TEST

/* A snapshot with a pod list: one leaked pod within the grace, two past it (one of them the
 * pod of an ended row), a pod a live row owns, a pod named after a row without a pod id, a
 * foreign-named pod, and a live row whose pod is missing. */
static void reconcile_snapshot(void)
{
    snap->cycle_number = 7;
    snap->now_epoch = 1800000000;
    snap->since_reconcile_sec = 400;
    snap->pods_listed = true;
    const struct {
        const char *id, *name;
        long long age;
        bool ended_row;
    } pods[] = {
        {"p1", "gpu-20250101_000000-00000001", 100, false},
        {"p2", "gpu-20250101_000000-00000002", 900, false},
        {"p3", "gpu-20250101_000000-00000003", 10, true},
        {"p4", "gpu-20250101_000000-00000004", 900, false}, /* owned by w4's pod id */
        {"p5", "gpu-20250101_000000-00000005", 900, false}, /* w5 has no pod id yet */
        {"p6", "shared-notebook", 9000, false},
    };
    for (size_t k = 0; k < sizeof pods / sizeof pods[0]; k++) {
        SnapPod *p = &snap->pods[snap->n_pods++];
        snprintf(p->id, sizeof p->id, "%s", pods[k].id);
        snprintf(p->name, sizeof p->name, "%s", pods[k].name);
        p->status = SNAP_POD_RUNNING;
        p->age_sec = pods[k].age;
        p->ended_row = pods[k].ended_row;
    }
    const struct {
        const char *id, *pod;
    } rows[] = {{"gpu-20250101_000000-00000004", "p4"},
                {"gpu-20250101_000000-00000005", ""},
                {"gpu-20250101_000000-00000009", "p9"}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        SnapWorker *w = &snap->workers[snap->n_workers++];
        snprintf(w->id, sizeof w->id, "%s", rows[i].id);
        snprintf(w->runpod_id, sizeof w->runpod_id, "%s", rows[i].pod);
        w->state = WORKER_ACTIVE;
    }
    snap->n_backoffs = 2;
    snap->backoffs[0].remaining_sec = 120;
    snap->backoffs[1].remaining_sec = 0;
}

START_TEST(test_metrics_ops_reconcile_findings_carried)
{
    char dir[] = "/tmp/orch-metrics-ops-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/orchestrator.prom", dir);

    MetricsState *m = NULL;
    ck_assert_int_eq(metrics_new(&cfg, &m), STATUS_OK);
    reconcile_snapshot();
    ActResult act;
    ck_assert_int_eq(act_result_init(&act), STATUS_OK);
    cJSON *o = cJSON_CreateObject(); /* the cycle terminated one of the leaked pods */
    cJSON_AddStringToObject(o, "action", "terminate_pod");
    cJSON_AddStringToObject(o, "reason", "leaked_pod");
    cJSON_AddStringToObject(o, "result", "applied");
    cJSON_AddItemToArray(act.outcomes, o);
    plan->reconcile_ran = true;
    metrics_count_pod_list(m, true);
    metrics_count_pod_list(m, false);
    metrics_observe_cycle(m, snap, plan, &act, STATUS_OK, 1);
    act_result_clear(&act);
    ck_assert_int_eq(m->ops.leaked_within_grace, 1);
    ck_assert_int_eq(m->ops.leaked_past_grace, 1); /* two past the grace, one terminated */
    ck_assert_int_eq(m->ops.workers_vanished, 1);
    ck_assert_int_eq(m->ops.gpu_types_backed_off, 1);
    ck_assert(m->ops.last_reconcile_epoch == 1800000000); /* this cycle reconciled */
    costs->observed = true;
    type_row("video", "render", 4, 3, 0.06);
    metrics_observe_task_costs(m, costs);
    ck_assert_int_eq(metrics_file_write(m, path), STATUS_OK);
    metrics_free(m);

    /* The next cron run lists no pods: the findings, the histogram and the pod list counters
     * stand; the reconcile time comes from its own snapshot. */
    ck_assert_int_eq(metrics_new(&cfg, &m), STATUS_OK);
    ck_assert_int_eq(metrics_file_load(m, path), STATUS_OK);
    memset(snap, 0, sizeof *snap);
    memset(plan, 0, sizeof *plan);
    snap->cycle_number = 8;
    snap->now_epoch = 1800000060;
    snap->since_reconcile_sec = 60;
    metrics_observe_cycle(m, snap, plan, NULL, STATUS_OK, 1);
    char *text = metrics_render(m);
    ck_assert(line_value(text, "gpu_orchestrator_pods_leaked{grace=\"past\"}") == 1);
    ck_assert(line_value(text, "gpu_orchestrator_pods_leaked{grace=\"within\"}") == 1);
    ck_assert(line_value(text, "gpu_orchestrator_workers_vanished") == 1);
    ck_assert(line_value(text, "gpu_orchestrator_last_reconcile_timestamp_seconds") == 1800000000);
    ck_assert(line_value(text, "gpu_orchestrator_pod_list_reads_total{result=\"ok\"}") == 1);
    ck_assert(line_value(text, "gpu_orchestrator_pod_list_reads_total{result=\"failed\"}") == 1);
    ck_assert(line_value(text, "gpu_orchestrator_task_cost_usd_bucket{pool=\"video\",task_type="
                               "\"render\",le=\"0.025\"}") == 3);
    ck_assert(line_value(text, "gpu_orchestrator_task_cost_usd_sum{pool=\"video\",task_type="
                               "\"render\"}") == 0.06);
    free(text);
    /* and observations continue from the restored counts */
    metrics_observe_task_costs(m, costs);
    ck_assert(m->ops.cost[0].count == 6);
    metrics_free(m);
    unlink(path);
    rmdir(dir);
}
END_TEST

static Suite *metrics_ops_suite(void)
{
    Suite *s = suite_create("metrics_ops");
    TCase *tc = tcase_create("metrics_ops");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_metrics_ops_caps_and_intervals);
    tcase_add_test(tc, test_metrics_ops_task_cost_histogram);
    tcase_add_test(tc, test_metrics_ops_task_types_bounded);
    tcase_add_test(tc, test_metrics_ops_reconcile_findings_carried);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(metrics_ops_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
