/* test_actuator_lifecycle.c -- the actuator with a real PostgreSQL and the fake RunPod, one
 * planned cycle at a time (snapshot, pod list, planner_decide, actuator_apply): the spawns of
 * several pools register the pools they were planned for; a drained worker's pod is stopped,
 * or terminated when the stop fails; a stopped pod is started before any create, a refused
 * start becomes a create in the same slot, an ambiguous start keeps its row spawning; a failed
 * worker's log tail is stored, scrubbed, before its pod goes.
 */
#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actuator.h"
#include "db.h"
#include "db_lifecycle.h"
#include "fake_runpod.h"
#include "harness.h"
#include "log.h"
#include "loop.h"
#include "planner.h"
#include "runpod.h"

#define KEY "rpa_TESTKEY_actuator_lifecycle_01"

static FakeRunpod *fake;
static PGconn *conn;
static char dbname[64];
static Config cfg;
static Snapshot snap;
static Plan plan;
static ActResult res;

static void setup(void)
{
    fake_runpod_reset(fake);
    fake_runpod_config(fake, "{\"provision_sec\": 0.05, \"start_sec\": 0.05, \"boot_cmd\": "
                             "\"echo booted; sleep 30\"}");
    conn = harness_db_create(dbname);
    memset(&res, 0, sizeof res);
}

static void teardown(void)
{
    act_result_clear(&res);
    harness_db_drop(conn, dbname);
    conn = NULL;
}

static void sql(const char *s)
{
    free(harness_sql(conn, s));
}

static void configure(const char *const *extra)
{
    const char *envp[32];
    size_t n = 0;
    static char url[256];
    snprintf(url, sizeof url, "RUNPOD_API_BASE_URL=%s", fake_runpod_url(fake));
    envp[n++] = url;
    envp[n++] = "RUNPOD_API_KEY=" KEY;
    envp[n++] = "MIN_ACTIVE_GPUS=0";
    envp[n++] = "TASKS_PER_GPU_THRESHOLD=1";
    envp[n++] = "RUNPOD_MAX_RETRIES=0";
    envp[n++] = "RUNPOD_REQUEST_TIMEOUT_SEC=2";
    for (size_t i = 0; extra && extra[i] && n < 31; i++)
        envp[n++] = extra[i];
    envp[n] = NULL;
    ConfigErrors errs;
    ck_assert_msg(config_parse(envp, "h", 0, &cfg, &errs) == STATUS_OK, "%s", errs.messages[0]);
}

/* One cycle's decision and actions (no lease: app.lease NULL means no fence). */
static Status cycle(void)
{
    App app = {.cfg = &cfg, .conn = conn, .command = "test"};
    RunpodOptions o = {.base_url = cfg.runpod_api_base_url,
                       .api_key = cfg.runpod_api_key,
                       .request_timeout_ms = 2000,
                       .max_retries = 0};
    ck_assert_int_eq(runpod_client_new(&o, &app.rp), STATUS_OK);
    memset(&snap, 0, sizeof snap);
    ck_assert_int_eq(db_load_snapshot(conn, &cfg, &snap), STATUS_OK);
    cJSON *errors = cJSON_CreateArray();
    ck_assert_int_eq(loop_list_pods(&app, &snap, errors), STATUS_OK);
    cJSON_Delete(errors);
    Policy pol;
    policy_from_config(&cfg, &pol);
    planner_decide(&snap, &pol, &plan);
    act_result_clear(&res);
    ck_assert_int_eq(act_result_init(&res), STATUS_OK);
    Status st = actuator_apply(&app, &snap, &plan, &res);
    runpod_client_free(app.rp);
    return st;
}

static long long count(const char *q)
{
    return harness_sql_ll(conn, q);
}

/* A worker of pool `default` at status st with a running pod of the fake (and its id). */
static void worker_with_pod(const char *id, const char *st)
{
    char body[256], q[512];
    snprintf(body, sizeof body, "{\"name\": \"%s\"}", id);
    cJSON *p = fake_runpod_control(fake, "/_fake/pods", body);
    const char *pod = cJSON_GetObjectItem(p, "id")->valuestring;
    snprintf(q, sizeof q,
             "INSERT INTO workers (id, status, runpod_id, cost_per_hr, last_heartbeat)"
             " VALUES ('%s', 'spawning', '%s', 0.69, now())",
             id, pod);
    sql(q);
    cJSON_Delete(p);
    struct timespec ts = {.tv_sec = 0, .tv_nsec = 300000000L};
    nanosleep(&ts, NULL); /* the fake's pod is RUNNING by then */
    if (strcmp(st, "spawning") == 0)
        return;
    snprintf(q, sizeof q, "UPDATE workers SET status = 'active' WHERE id = '%s'", id);
    sql(q);
    if (strcmp(st, "idle") == 0) {
        snprintf(q, sizeof q,
                 "UPDATE workers SET promoted_at = now() - interval '1 hour',"
                 " last_task_activity_at = now() - interval '1 hour',"
                 " created_at = now() - interval '2 hours' WHERE id = '%s'",
                 id);
        sql(q);
    }
}

/* ------------------------------------------------------------------------------------------ */

START_TEST(test_spawns_of_several_pools_keep_their_pools)
{
    const char *env[] = {"POOLS=a,b,c",         "POOL_A_RUN_TYPES=ra", "POOL_B_RUN_TYPES=rb",
                         "POOL_C_RUN_TYPES=rc", "MAX_ACTIVE_GPUS=10",  NULL};
    configure(env);
    sql("INSERT INTO tasks (task_type, run_type) SELECT 't', 'ra' FROM generate_series(1, 1)");
    sql("INSERT INTO tasks (task_type, run_type) SELECT 't', 'rb' FROM generate_series(1, 2)");
    sql("INSERT INTO tasks (task_type, run_type) SELECT 't', 'rc' FROM generate_series(1, 3)");
    ck_assert_int_eq(cycle(), STATUS_OK);
    ck_assert_int_eq(res.workers_spawned, 6);
    /* Each pool's pods as planned: a 1, b 2, c 3 (not the first pool's spec six times). */
    ck_assert_int_eq(count("SELECT count(*) FROM workers WHERE pool = 'a'"), 1);
    ck_assert_int_eq(count("SELECT count(*) FROM workers WHERE pool = 'b'"), 2);
    ck_assert_int_eq(count("SELECT count(*) FROM workers WHERE pool = 'c'"), 3);
}
END_TEST

START_TEST(test_drained_pod_stopped_or_terminated)
{
    const char *env[] = {"WARM_STOPPED_PODS=1", "GPU_IDLE_TIMEOUT_SEC=60",
                         "WORKER_GRACE_PERIOD_SEC=0", NULL};
    configure(env);
    worker_with_pod("gpu-20260601_120000-000000a1", "idle");
    worker_with_pod("gpu-20260601_120000-000000a2", "idle");
    /* The first stop answers 503: that pod is terminated instead; the pool keeps one stopped. */
    fake_runpod_faults(fake, "{\"rules\": [{\"method\": \"POST\", \"path\": \"/v2/pods/*/action\","
                             " \"status\": 503, \"count\": 1}]}");
    ck_assert_int_eq(cycle(), STATUS_OK);
    ck_assert_int_eq(res.workers_drained, 2);
    ck_assert_int_eq(res.stop_fallbacks, 1);
    ck_assert_int_eq(count("SELECT count(*) FROM workers WHERE status = 'terminated'"), 2);
    ck_assert_int_eq(fake_runpod_stat(fake, "pods_alive"), 0);

    /* Next: one drained, stopped this time. */
    worker_with_pod("gpu-20260601_120000-000000a3", "idle");
    ck_assert_int_eq(cycle(), STATUS_OK);
    ck_assert_int_eq(res.workers_stopped, 1);
    char *st = harness_sql(conn, "SELECT status || ':' || (stopped_at IS NOT NULL) FROM workers"
                                 " WHERE id = 'gpu-20260601_120000-000000a3'");
    ck_assert_str_eq(st, "stopped:true");
    free(st);
    ck_assert_int_eq(fake_runpod_stat(fake, "pods_alive"), 1); /* stopped, not gone */
}
END_TEST

/* A stopped worker and its EXITED pod, as a stop leaves them. */
static void stopped_worker(const char *id)
{
    worker_with_pod(id, "active");
    char q[256];
    snprintf(q, sizeof q, "UPDATE workers SET status = 'terminating' WHERE id = '%s'", id);
    sql(q);
    snprintf(q, sizeof q, "SELECT orchestrator_stop_worker('%s')", id);
    sql(q);
    snprintf(q, sizeof q, "SELECT runpod_id FROM workers WHERE id = '%s'", id);
    char *pod = harness_sql(conn, q);
    char path[128];
    snprintf(path, sizeof path, "/_fake/pods/%s/kill", pod);
    cJSON_Delete(fake_runpod_control(fake, path, "{\"to\": \"EXITED\"}"));
    free(pod);
}

START_TEST(test_start_before_create_and_fallbacks)
{
    const char *env[] = {"WARM_STOPPED_PODS=3", "MAX_ACTIVE_GPUS=3", NULL};
    configure(env);
    stopped_worker("gpu-20260601_120000-000000b1");
    stopped_worker("gpu-20260601_120000-000000b2");
    char *refused = harness_sql(conn, "SELECT runpod_id FROM workers"
                                      " WHERE id = 'gpu-20260601_120000-000000b2'");
    char faults[256];
    snprintf(faults, sizeof faults, "{\"start_no_gpu\": [\"%s\"]}", refused);
    fake_runpod_faults(fake, faults);
    sql("INSERT INTO tasks (task_type) SELECT 't' FROM generate_series(1, 3)");
    int creates = (int)fake_runpod_stat(fake, "creates");
    ck_assert_int_eq(cycle(), STATUS_OK);
    /* b1 started, b2 refused (its row failed expectedly, its pod terminated) and replaced by a
     * create, plus one create for the third task: 3 slots, MAX 3. */
    ck_assert_int_eq(res.workers_started, 1);
    ck_assert_int_eq(res.start_fallbacks, 1);
    ck_assert_int_eq(res.workers_spawned, 2);
    ck_assert_int_eq(fake_runpod_stat(fake, "creates") - creates, 2);
    char *b2 = harness_sql(conn, "SELECT status || ':' || end_kind FROM workers"
                                 " WHERE id = 'gpu-20260601_120000-000000b2'");
    ck_assert_str_eq(b2, "terminated:expected");
    char *b1 = harness_sql(conn, "SELECT status || ':' || (restarted_at IS NOT NULL) FROM workers"
                                 " WHERE id = 'gpu-20260601_120000-000000b1'");
    ck_assert_str_eq(b1, "spawning:true");
    ck_assert_int_le(fake_runpod_stat(fake, "pods_alive"), 3);
    free(b1);
    free(b2);
    free(refused);
}
END_TEST

START_TEST(test_ambiguous_start_holds_its_slot)
{
    const char *env[] = {"WARM_STOPPED_PODS=2", "MAX_ACTIVE_GPUS=1", NULL};
    configure(env);
    stopped_worker("gpu-20260601_120000-000000c1");
    fake_runpod_faults(fake, "{\"rules\": [{\"method\": \"POST\", \"path\": \"/v2/pods/*/action\","
                             " \"status\": 502, \"count\": 1}]}");
    sql("INSERT INTO tasks (task_type) SELECT 't' FROM generate_series(1, 2)");
    ck_assert_int_eq(cycle(), STATUS_ERR_PARTIAL);
    ck_assert_int_eq(res.workers_started, 0);
    ck_assert_int_eq(res.workers_spawned, 0);
    char *c1 = harness_sql(conn, "SELECT status FROM workers"
                                 " WHERE id = 'gpu-20260601_120000-000000c1'");
    ck_assert_str_eq(c1, "spawning"); /* it may be booting: it holds MAX's one slot */
    free(c1);
    ck_assert_int_eq(cycle(), STATUS_OK);
    ck_assert_int_eq(res.workers_spawned, 0);
}
END_TEST

/* A restart registers only while the cycle lease is ours, as a spawn's row does. */
START_TEST(test_restart_only_under_the_lease)
{
    configure(NULL);
    stopped_worker("gpu-20260601_120000-000000e1");
    bool applied = true;
    ck_assert_int_eq(
        db_restart_worker(conn, "gpu-20260601_120000-000000e1", "someone-else", "7", &applied),
        STATUS_ERR_LEASE_LOST);
    ck_assert(!applied);
    char *st = harness_sql(conn, "SELECT status FROM workers");
    ck_assert_str_eq(st, "stopped");
    free(st);
    ck_assert_int_eq(db_restart_worker(conn, "gpu-20260601_120000-000000e1", NULL, NULL, &applied),
                     STATUS_OK);
    ck_assert(applied);
}
END_TEST

START_TEST(test_failed_worker_log_tail_stored_scrubbed)
{
    const char *env[] = {"WORKER_ENV_HF_TOKEN=hf_abcdefghijklmnop", "RUNPOD_LOG_TIMEOUT_SEC=2",
                         "MAX_ACTIVE_GPUS=0", NULL};
    configure(env);
    log_add_secret(KEY);
    worker_with_pod("gpu-20260601_120000-000000d1", "active");
    sql("UPDATE workers SET status = 'error', metadata = metadata ||"
        " '{\"error_reason\": \"Stale heartbeat (400s old)\"}'");
    char *pod = harness_sql(conn, "SELECT runpod_id FROM workers");
    char path[128];
    snprintf(path, sizeof path, "/_fake/pods/%s/log", pod);
    cJSON_Delete(
        fake_runpod_control(fake, path,
                            "{\"lines\": [\"export HF_TOKEN=hf_abcdefghijklmnop\", \"key " KEY "\","
                            " \"Traceback: CUDA out of memory\"]}"));
    ck_assert_int_eq(cycle(), STATUS_OK);
    ck_assert_int_eq(res.log_tails, 1);
    ck_assert_int_eq(res.workers_terminated, 1);
    char *tail = harness_sql(conn, "SELECT outcome || '|' || reason || '|' || tail"
                                   " FROM worker_failure_logs");
    ck_assert_msg(strstr(tail, "ok|Stale heartbeat (400s old)|"), "%s", tail);
    ck_assert_msg(strstr(tail, "CUDA out of memory"), "%s", tail);
    ck_assert_msg(!strstr(tail, "hf_abcdefghijklmnop") && !strstr(tail, KEY), "%s", tail);
    free(tail);
    free(pod);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("actuator_lifecycle");
    TCase *tc = tcase_create("cycles");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_spawns_of_several_pools_keep_their_pools);
    tcase_add_test(tc, test_drained_pod_stopped_or_terminated);
    tcase_add_test(tc, test_start_before_create_and_fallbacks);
    tcase_add_test(tc, test_ambiguous_start_holds_its_slot);
    tcase_add_test(tc, test_restart_only_under_the_lease);
    tcase_add_test(tc, test_failed_worker_log_tail_stored_scrubbed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return EXIT_FAILURE;
    log_configure(LOG_ERROR, LOG_FORMAT_TEXT);
    fake = fake_runpod_start(KEY, NULL);
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    fake_runpod_stop(fake);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
