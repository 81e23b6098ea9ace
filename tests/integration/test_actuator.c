/* test_actuator.c -- the actuator against a real PostgreSQL: a row that changed between the
 * snapshot and the action is skipped and reported, and so is every later action about the same
 * worker (no pod is terminated for a worker whose failure did not apply). */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "actuator.h"
#include "db.h"
#include "harness.h"
#include "planner.h"

static PGconn *conn;
static char dbname[64];
static Config cfg;
static Snapshot snap;
static Plan plan;

static void setup(void)
{
    conn = harness_db_create(dbname);
    ConfigErrors errs;
    const char *envp[] = {"GPU_IDLE_TIMEOUT_SEC=5", "MIN_ACTIVE_GPUS=0", "MAX_ACTIVE_GPUS=0", NULL};
    ck_assert_int_eq(config_parse(envp, "h", 0, &cfg, &errs), STATUS_OK);
}

static void teardown(void)
{
    harness_db_drop(conn, dbname);
    conn = NULL;
}

static void sql(const char *s)
{
    free(harness_sql(conn, s));
}

static void decide(void)
{
    memset(&snap, 0, sizeof snap);
    ck_assert_int_eq(db_load_snapshot(conn, &cfg, &snap), STATUS_OK);
    Policy pol;
    policy_from_config(&cfg, &pol);
    planner_decide(&snap, &pol, &plan);
}

static const char *result_of(const ActResult *r, const char *action)
{
    for (cJSON *o = r->outcomes->child; o; o = o->next) {
        cJSON *a = cJSON_GetObjectItem(o, "action");
        if (a && strcmp(a->valuestring, action) == 0)
            return cJSON_GetObjectItem(o, "result")->valuestring;
    }
    return "(none)";
}

/* The "pool" of the first outcome of action, or "" when it has none. */
static const char *pool_of(const ActResult *r, const char *action)
{
    for (cJSON *o = r->outcomes->child; o; o = o->next) {
        cJSON *a = cJSON_GetObjectItem(o, "action");
        cJSON *p = cJSON_GetObjectItem(o, "pool");
        if (a && strcmp(a->valuestring, action) == 0)
            return cJSON_IsString(p) ? p->valuestring : "";
    }
    return "(no outcome)";
}

START_TEST(test_actuator_skips_changed_row)
{
    sql("INSERT INTO workers (id, status) VALUES ('gpu-a', 'spawning')");
    sql("UPDATE workers SET last_heartbeat = created_at + interval '1 second'");
    decide();
    ck_assert_uint_eq(plan_count(&plan, ACTION_PROMOTE_WORKER), 1);
    /* Another actor fails the worker after our snapshot. */
    sql("UPDATE workers SET status = 'error' WHERE id = 'gpu-a'");
    App app = {.cfg = &cfg, .conn = conn, .command = "test"};
    ActResult r;
    ck_assert_int_eq(act_result_init(&r), STATUS_OK);
    ck_assert_int_eq(actuator_apply(&app, &snap, &plan, &r), STATUS_OK);
    ck_assert_int_eq(r.workers_promoted, 0);
    ck_assert_int_eq(r.skipped, 1);
    ck_assert_str_eq(result_of(&r, "promote_worker"), "skipped");
    ck_assert_str_eq(pool_of(&r, "promote_worker"), "default"); /* the metrics count by pool */
    char *st = harness_sql(conn, "SELECT status FROM workers WHERE id = 'gpu-a'");
    ck_assert_str_eq(st, "error"); /* not resurrected */
    free(st);
    act_result_clear(&r);
}
END_TEST

START_TEST(test_actuator_blocks_later_actions_on_the_same_worker)
{
    /* An active worker with a stale heartbeat and a task: plan = fail, recover, terminate. */
    sql("INSERT INTO workers (id, status, runpod_id) VALUES ('gpu-a', 'spawning', 'pod-a')");
    sql("UPDATE workers SET status = 'active', last_heartbeat = now() - interval '1 minute'");
    sql("INSERT INTO tasks (task_type, status, worker_id, generation_started_at) VALUES "
        "('x', 'In Progress', 'gpu-a', now())");
    decide();
    ck_assert_uint_eq(plan_count(&plan, ACTION_FAIL_WORKER), 1);
    ck_assert_uint_eq(plan_count(&plan, ACTION_RECOVER_TASK), 1);
    ck_assert_uint_eq(plan_count(&plan, ACTION_TERMINATE_WORKER), 1);
    /* The operator drains it meanwhile (active -> terminating is legal). */
    sql("UPDATE workers SET status = 'terminating' WHERE id = 'gpu-a'");
    App app = {.cfg = &cfg, .conn = conn, .command = "test"}; /* no RunPod client at all */
    ActResult r;
    ck_assert_int_eq(act_result_init(&r), STATUS_OK);
    ck_assert_int_eq(actuator_apply(&app, &snap, &plan, &r), STATUS_OK);
    ck_assert_int_eq(r.skipped, 3);
    ck_assert_str_eq(result_of(&r, "fail_worker"), "skipped");
    ck_assert_str_eq(result_of(&r, "recover_task"), "skipped");
    ck_assert_str_eq(result_of(&r, "terminate_worker"), "skipped");
    ck_assert_int_eq(harness_sql_ll(conn, "SELECT count(*) FROM tasks WHERE status = 'In "
                                          "Progress' AND worker_id = 'gpu-a'"),
                     1);
    act_result_clear(&r);
}
END_TEST

START_TEST(test_actuator_recovers_and_terminates_without_pod)
{
    /* Same world, nothing changes: the worker fails, its task is re-queued with an attempt
     * counted, and (no pod id recorded) it is marked terminated without any API call. */
    sql("INSERT INTO workers (id, status) VALUES ('gpu-a', 'spawning')");
    sql("UPDATE workers SET status = 'active', last_heartbeat = now() - interval '1 minute'");
    sql("INSERT INTO tasks (task_type, status, worker_id, generation_started_at) VALUES "
        "('x', 'In Progress', 'gpu-a', now())");
    decide();
    App app = {.cfg = &cfg, .conn = conn, .command = "test"};
    ActResult r;
    ck_assert_int_eq(act_result_init(&r), STATUS_OK);
    ck_assert_int_eq(actuator_apply(&app, &snap, &plan, &r), STATUS_OK);
    ck_assert_int_eq(r.workers_failed, 1);
    ck_assert_int_eq(r.tasks_reset, 1);
    ck_assert_int_eq(r.workers_terminated, 1);
    char *v = harness_sql(conn, "SELECT status || ':' || attempts || ':' || "
                                "coalesce(worker_id, '-') FROM tasks");
    ck_assert_str_eq(v, "Queued:1:-");
    free(v);
    v = harness_sql(conn, "SELECT status || ':' || (metadata->>'error_reason') FROM workers");
    ck_assert_str_eq(v, "terminated:Stale heartbeat with active tasks (60s old)");
    free(v);
    act_result_clear(&r);
}
END_TEST

START_TEST(test_actuator_statement_error_does_not_stop_the_rest)
{
    /* Issue 12.3: a statement the database refuses (here a trigger, as the state machine
     * refused inactive -> terminating) fails that action only; the unrelated actions after it
     * still apply, the cycle reports each failure and ends partial, not early. */
    sql("INSERT INTO workers (id, status) VALUES ('gpu-a', 'spawning'), ('gpu-b', 'spawning'),"
        " ('legacy-c', 'inactive')");
    sql("UPDATE workers SET status = 'error' WHERE id IN ('gpu-a', 'gpu-b')");
    sql("CREATE FUNCTION refuse_a() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"
        "  IF NEW.id = 'gpu-a' THEN RAISE EXCEPTION 'refused for the test'; END IF;"
        "  RETURN NEW; END $$;"
        "CREATE TRIGGER refuse_a BEFORE UPDATE ON workers FOR EACH ROW"
        "  EXECUTE FUNCTION refuse_a()");
    decide();
    ck_assert_uint_eq(plan_count(&plan, ACTION_TERMINATE_WORKER), 3);
    App app = {.cfg = &cfg, .conn = conn, .command = "test"};
    ActResult r;
    ck_assert_int_eq(act_result_init(&r), STATUS_OK);
    ck_assert_int_eq(actuator_apply(&app, &snap, &plan, &r), STATUS_ERR_PARTIAL);
    ck_assert_int_eq(r.workers_terminated, 2);
    ck_assert_int_eq(r.failed, 1);
    ck_assert(!r.db_failed);
    ck_assert_int_eq(cJSON_GetArraySize(r.errors), 1);
    ck_assert_ptr_nonnull(strstr(r.errors->child->valuestring, "refused for the test"));
    char *v = harness_sql(conn, "SELECT string_agg(id || ':' || status, ',' ORDER BY id)"
                                " FROM workers");
    ck_assert_str_eq(v, "gpu-a:error,gpu-b:terminated,legacy-c:terminated");
    free(v);
    act_result_clear(&r);
}
END_TEST

START_TEST(test_actuator_legacy_inactive_row_ends_terminated)
{
    /* Issue 12.3: a legacy inactive row holding a task: the task goes back to the queue with
     * an attempt counted and the row ends terminated (inactive -> terminated is legal). */
    sql("INSERT INTO workers (id, status) VALUES ('old-1', 'inactive')");
    sql("INSERT INTO tasks (task_type, status, worker_id, generation_started_at) VALUES "
        "('x', 'In Progress', 'old-1', now())");
    decide();
    App app = {.cfg = &cfg, .conn = conn, .command = "test"};
    ActResult r;
    ck_assert_int_eq(act_result_init(&r), STATUS_OK);
    ck_assert_int_eq(actuator_apply(&app, &snap, &plan, &r), STATUS_OK);
    ck_assert_int_eq(r.tasks_reset, 1);
    ck_assert_int_eq(r.workers_terminated, 1);
    char *v = harness_sql(conn, "SELECT status || ':' || attempts FROM tasks");
    ck_assert_str_eq(v, "Queued:1");
    free(v);
    v = harness_sql(conn, "SELECT status || ':' || (metadata->>'terminated_reason') FROM workers");
    ck_assert_str_eq(v, "terminated:legacy_inactive");
    free(v);
    act_result_clear(&r);
}
END_TEST

static Suite *actuator_suite(void)
{
    Suite *s = suite_create("actuator");
    TCase *tc = tcase_create("test_actuator");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_actuator_skips_changed_row);
    tcase_add_test(tc, test_actuator_blocks_later_actions_on_the_same_worker);
    tcase_add_test(tc, test_actuator_recovers_and_terminates_without_pod);
    tcase_add_test(tc, test_actuator_statement_error_does_not_stop_the_rest);
    tcase_add_test(tc, test_actuator_legacy_inactive_row_ends_terminated);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(actuator_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
