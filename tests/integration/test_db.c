/* test_db.c -- db.c against a real PostgreSQL: the snapshot and the guarded writes. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "db.h"
#include "harness.h"

static PGconn *conn;
static char dbname[64];
static Config cfg;

static void setup(void)
{
    conn = harness_db_create(dbname);
    ConfigErrors errs;
    const char *envp[] = {"FAILURE_WINDOW_MINUTES=5", NULL};
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

static Snapshot *load(void)
{
    static Snapshot snap;
    memset(&snap, 0, sizeof snap);
    ck_assert_int_eq(db_load_snapshot(conn, &cfg, &snap), STATUS_OK);
    return &snap;
}

START_TEST(test_db_snapshot_counts)
{
    sql("INSERT INTO tasks (task_type) SELECT 'a' FROM generate_series(1, 7)");
    sql("INSERT INTO tasks (task_type, run_type) VALUES ('api', 'api')");
    sql("INSERT INTO tasks (task_type, available_at) VALUES ('later', now() + interval '1 hour')");
    sql("INSERT INTO tasks (id, task_type, status) VALUES "
        "('00000000-0000-0000-0000-000000000001', 'dep', 'In Progress')");
    sql("INSERT INTO tasks (task_type, dependant_on) VALUES "
        "('child', ARRAY['00000000-0000-0000-0000-000000000001'::uuid])");
    sql("INSERT INTO workers (id, status) VALUES ('gpu-a', 'spawning')");
    sql("INSERT INTO workers (id, status) VALUES ('gpu-b', 'spawning')");
    sql("UPDATE workers SET status = 'active' WHERE id = 'gpu-b'");
    Snapshot *s = load();
    /* Per run type (issue 14): gpu 7 claimable of 9 queued (not later, not the blocked child),
     * api 1 of 1; the largest queue first. */
    ck_assert_uint_eq(s->n_run_types, 2);
    ck_assert_str_eq(s->run_types[0].name, "gpu");
    ck_assert_int_eq(s->run_types[0].claimable, 7);
    ck_assert_int_eq(s->run_types[0].queued, 9);
    ck_assert_str_eq(s->run_types[1].name, "api");
    ck_assert_int_eq(s->run_types[1].claimable, 1);
    ck_assert_int_eq(s->queued_claimable, 8); /* every run type */
    ck_assert_int_eq(s->queued_total, 10);
    ck_assert_int_eq(s->in_progress_total, 1);
    ck_assert_uint_eq(s->n_workers, 2);
    ck_assert_uint_eq(s->n_tasks, 1);
    ck_assert_int_eq(s->cycle_number, 1);
    ck_assert_int_eq(s->workers[0].heartbeat_age_sec, -1);
    ck_assert(s->now_epoch > 1.7e9);

    sql("UPDATE tasks SET status = 'Complete' WHERE task_type = 'dep'");
    s = load();
    ck_assert_int_eq(s->run_types[0].claimable, 8); /* the child is claimable now */
}
END_TEST

/* The number of statements a snapshot takes does not depend on the table sizes. */
START_TEST(test_db_snapshot_statement_count_is_fixed)
{
    sql("INSERT INTO tasks (task_type) SELECT 'a' FROM generate_series(1, 10)");
    long long before = db_statement_count();
    load();
    long long small = db_statement_count() - before;
    sql("INSERT INTO tasks (task_type, status) SELECT 'a', 'Complete' "
        "FROM generate_series(1, 20000)");
    sql("INSERT INTO tasks (task_type) SELECT 'a' FROM generate_series(1, 2000)");
    sql("INSERT INTO workers (id, status) SELECT 'gpu-' || g, 'spawning' "
        "FROM generate_series(1, 200) g");
    before = db_statement_count();
    Snapshot *s = load();
    long long large = db_statement_count() - before;
    ck_assert_int_eq(small, large);
    /* BEGIN, SET LOCAL jit = off, 8 reads (summary, demand per run type, pools, workers, tasks,
     * backoff, RunPod catalog cache and rate limit, and issue 16's stopped pods, restarts and
     * billing), COMMIT -- the same with one pool or many (issue 14); the adaptive policies'
     * measures add one, only when one of them is on (test_db_snapshot_measures) */
    ck_assert_int_eq(small, 11);
    ck_assert_int_eq(s->queued_claimable, 2010);
    ck_assert_uint_eq(s->n_workers, 200);
}
END_TEST

/* The adaptive policies' measures (issue 15): one more statement, only when one is on, and
 * figures that match what the simulator computes for the same history (sim_cycle.c). */
START_TEST(test_db_snapshot_measures)
{
    ConfigErrors errs;
    const char *envp[] = {"POOLS=video,image", "POOL_IMAGE_RUN_TYPES=image,gpu",
                          "ADAPTIVE_IDLE_GRACE=true", NULL};
    ck_assert_int_eq(config_parse(envp, "h", 0, &cfg, &errs), STATUS_OK);
    /* video: two tasks within the 600 s rate window, a cluster 1700-1790 s ago whose 900 s
     * window also holds one from 2500 s ago (outside the 1800 s demote window): peak 4. */
    sql("INSERT INTO tasks (task_type, run_type, created_at) SELECT 'v', 'video', "
        "now() - make_interval(secs => s) FROM unnest(ARRAY[100, 200, 1700, 1750, 1790, 2500]) s");
    sql("INSERT INTO tasks (task_type, run_type, created_at) VALUES ('g', 'gpu', "
        "now() - interval '50 seconds')");
    /* three completed video tasks, long ago, of 10, 20 and 30 s: median 20 */
    sql("INSERT INTO tasks (task_type, run_type, status, created_at, generation_started_at, "
        "generation_processed_at) SELECT 'done', 'video', 'Complete', now() - interval '1 day', "
        "now() - make_interval(secs => 9000 + d), now() - interval '9000 seconds' "
        "FROM unnest(ARRAY[10, 20, 30]) d");
    /* video workers promoted 60, 90 and 120 s after creation: median 90 */
    sql("INSERT INTO workers (id, status, pool, created_at) SELECT 'gpu-v' || b, 'spawning', "
        "'video', now() - make_interval(secs => 1000 + b) FROM unnest(ARRAY[60, 90, 120]) b");
    sql("UPDATE workers SET status = 'active', "
        "promoted_at = created_at + make_interval(secs => substr(id, 6)::int)");
    long long before = db_statement_count();
    Snapshot *s = load();
    ck_assert_int_eq(db_statement_count() - before, 12); /* the 11 of every cycle + measures */
    const SnapMeasures *m = &s->measures;
    ck_assert(m->measured);
    ck_assert_uint_eq(m->n_arrivals, 3); /* the pools' run types: video, image, gpu */
    const SnapArrivals *v = NULL, *img = NULL, *gpu = NULL;
    for (size_t i = 0; i < m->n_arrivals; i++) {
        if (strcmp(m->arrivals[i].name, "video") == 0)
            v = &m->arrivals[i];
        if (strcmp(m->arrivals[i].name, "image") == 0)
            img = &m->arrivals[i];
        if (strcmp(m->arrivals[i].name, "gpu") == 0)
            gpu = &m->arrivals[i];
    }
    ck_assert(v && img && gpu);
    ck_assert_int_eq(v->arrivals_rate, 2);
    ck_assert_int_eq(v->warm_peak, 4);
    ck_assert_int_eq(v->last_arrival_age_sec, 100);
    ck_assert_double_eq_tol(v->median_duration_sec, 20, 1e-6);
    ck_assert_int_eq(gpu->arrivals_rate, 1);
    ck_assert_int_eq(gpu->warm_peak, 1);
    ck_assert_int_eq(img->arrivals_rate, 0);
    ck_assert_int_eq(img->warm_peak, 0);
    ck_assert_int_eq(img->last_arrival_age_sec, -1);
    ck_assert_double_eq(img->median_duration_sec, -1);
    ck_assert_uint_eq(m->n_boots, 2);
    ck_assert_str_eq(m->boots[0].pool, "image");
    ck_assert_int_eq(m->boots[0].boots, 0);
    ck_assert_double_eq(m->boots[0].median_boot_sec, -1);
    ck_assert_str_eq(m->boots[1].pool, "video");
    ck_assert_int_eq(m->boots[1].boots, 3);
    ck_assert_double_eq_tol(m->boots[1].median_boot_sec, 90, 1e-6);

    /* With every adaptive policy off: no statement, no measures. */
    const char *off[] = {"POOLS=video,image", NULL};
    ck_assert_int_eq(config_parse(off, "h", 0, &cfg, &errs), STATUS_OK);
    before = db_statement_count();
    s = load();
    ck_assert_int_eq(db_statement_count() - before, 11);
    ck_assert(!s->measures.measured);
}
END_TEST

START_TEST(test_db_promote_is_guarded)
{
    sql("INSERT INTO workers (id, status) VALUES ('gpu-a', 'spawning')");
    bool applied = false;
    ck_assert_int_eq(db_promote_worker(conn, "gpu-a", &applied), STATUS_OK);
    ck_assert(applied);
    ck_assert_int_eq(db_promote_worker(conn, "gpu-a", &applied), STATUS_OK);
    ck_assert(!applied); /* already active: the guard refuses */
    char *st = harness_sql(conn, "SELECT status FROM workers WHERE id = 'gpu-a'");
    ck_assert_str_eq(st, "active");
    free(st);
    ck_assert_int_eq(harness_sql_ll(conn, "SELECT count(*) FROM workers WHERE promoted_at IS "
                                          "NOT NULL"),
                     1);
}
END_TEST

START_TEST(test_db_fail_worker_records_reason)
{
    sql("INSERT INTO workers (id, status) VALUES ('gpu-a', 'spawning')");
    bool applied = false;
    /* Wrong expected state: nothing written. */
    ck_assert_int_eq(db_fail_worker(conn, "gpu-a", WORKER_ACTIVE, "x", true, &applied), STATUS_OK);
    ck_assert(!applied);
    ck_assert_int_eq(
        db_fail_worker(conn, "gpu-a", WORKER_SPAWNING, "Spawning timeout", true, &applied),
        STATUS_OK);
    ck_assert(applied);
    char *r = harness_sql(conn, "SELECT metadata->>'error_reason' || '|' || end_kind || '|' || "
                                "(ended_at IS NOT NULL) FROM workers WHERE id = 'gpu-a'");
    ck_assert_str_eq(r, "Spawning timeout|unexpected|true");
    free(r);
}
END_TEST

START_TEST(test_db_drain_refuses_a_busy_worker)
{
    sql("INSERT INTO workers (id, status) VALUES ('gpu-a', 'spawning'), ('gpu-b', 'spawning')");
    sql("UPDATE workers SET status = 'active'");
    sql("INSERT INTO tasks (task_type, status, worker_id) VALUES ('a', 'In Progress', 'gpu-a')");
    bool applied = true;
    ck_assert_int_eq(db_drain_worker(conn, "gpu-a", "idle", &applied), STATUS_OK);
    ck_assert(!applied);
    ck_assert_int_eq(db_drain_worker(conn, "gpu-b", "idle", &applied), STATUS_OK);
    ck_assert(applied);
    char *r = harness_sql(conn, "SELECT string_agg(id || '=' || status, ',' ORDER BY id) "
                                "FROM workers");
    ck_assert_str_eq(r, "gpu-a=active,gpu-b=terminating");
    free(r);
    ck_assert_int_eq(harness_sql_ll(conn, "SELECT count(*) FROM workers WHERE "
                                          "jsonb_typeof(metadata->'terminating_at') = 'number'"),
                     1);
}
END_TEST

START_TEST(test_db_recover_task_counts_attempts)
{
    sql("INSERT INTO workers (id, status) VALUES ('gpu-a', 'spawning')");
    sql("UPDATE workers SET status = 'active'");
    sql("INSERT INTO tasks (id, task_type, status, worker_id, attempts, max_attempts) VALUES "
        "('00000000-0000-0000-0000-00000000000a', 'a', 'In Progress', 'gpu-a', 0, 3),"
        "('00000000-0000-0000-0000-00000000000b', 'a', 'In Progress', 'gpu-a', 2, 3),"
        "('00000000-0000-0000-0000-00000000000c', 'a', 'Complete', 'gpu-a', 0, 3)");
    bool applied = false;
    char st[16] = "";
    ck_assert_int_eq(db_recover_task(conn, "00000000-0000-0000-0000-00000000000a", "gpu-a", 3, "r",
                                     &applied, st),
                     STATUS_OK);
    ck_assert(applied);
    ck_assert_str_eq(st, "Queued");
    ck_assert_int_eq(db_recover_task(conn, "00000000-0000-0000-0000-00000000000b", "gpu-a", 3, "r",
                                     &applied, st),
                     STATUS_OK);
    ck_assert(applied);
    ck_assert_str_eq(st, "Failed");
    /* Completed meanwhile: never re-queued. Wrong holder: untouched. */
    ck_assert_int_eq(db_recover_task(conn, "00000000-0000-0000-0000-00000000000c", "gpu-a", 3, "r",
                                     &applied, st),
                     STATUS_OK);
    ck_assert(!applied);
    ck_assert_int_eq(db_recover_task(conn, "00000000-0000-0000-0000-00000000000a", "gpu-z", 3, "r",
                                     &applied, st),
                     STATUS_OK);
    ck_assert(!applied);
    char *r = harness_sql(conn, "SELECT string_agg(status || ':' || attempts || ':' || "
                                "coalesce(worker_id, '-'), ',' ORDER BY id) FROM tasks");
    ck_assert_str_eq(r, "Queued:1:-,Failed:3:gpu-a,Complete:0:gpu-a");
    free(r);
}
END_TEST

START_TEST(test_db_capacity_backoff_doubles)
{
    ck_assert_int_eq(db_record_capacity_failure(conn, "A40", 300, 1800, "none"), STATUS_OK);
    long long first = harness_sql_ll(conn, "SELECT round(extract(epoch FROM backoff_until - "
                                           "last_failure_at)) FROM gpu_capacity_backoff");
    ck_assert_int_eq(first, 300);
    ck_assert_int_eq(db_record_capacity_failure(conn, "A40", 300, 1800, "none"), STATUS_OK);
    ck_assert_int_eq(harness_sql_ll(conn, "SELECT round(extract(epoch FROM backoff_until - "
                                          "last_failure_at)) FROM gpu_capacity_backoff"),
                     600);
    for (int i = 0; i < 5; i++)
        db_record_capacity_failure(conn, "A40", 300, 1800, "none");
    ck_assert_int_eq(harness_sql_ll(conn, "SELECT round(extract(epoch FROM backoff_until - "
                                          "last_failure_at)) FROM gpu_capacity_backoff"),
                     1800);
    Snapshot *s = load();
    ck_assert_uint_eq(s->n_backoffs, 1);
    ck_assert_str_eq(s->backoffs[0].gpu_type, "A40");
    ck_assert(s->backoffs[0].remaining_sec > 1700);
    ck_assert_int_eq(db_clear_capacity_backoff(conn, "A40"), STATUS_OK);
    ck_assert_uint_eq(load()->n_backoffs, 0);
}
END_TEST

START_TEST(test_db_state_and_journal)
{
    CycleStateUpdate u = {.success = true, .reconciled = true};
    ck_assert_int_eq(db_save_state(conn, 7, &u), STATUS_OK);
    ck_assert_int_eq(load()->cycle_number, 8);
    ck_assert(load()->since_reconcile_sec >= 0);
    JournalEntry e = {.cycle_number = 7,
                      .instance_id = "i",
                      .command = "single",
                      .config_hash = "0123456789abcdef",
                      .duration_ms = 12,
                      .snapshot_json = "{}",
                      .plan_json = "[]",
                      .outcomes_json = "[]",
                      .errors_json = "[]",
                      .exit_status = "ok",
                      .exit_code = 0};
    ck_assert_int_eq(db_insert_journal(conn, &e), STATUS_OK);
    ck_assert_int_eq(harness_sql_ll(conn, "SELECT count(*) FROM orchestrator_cycles WHERE "
                                          "cycle_number = 7 AND duration_ms = 12"),
                     1);
}
END_TEST

/* A read that fails is never "zero workers": the load reports the error and publishes nothing. */
START_TEST(test_db_snapshot_fails_closed)
{
    sql("INSERT INTO workers (id, status) VALUES ('gpu-a', 'spawning')");
    char url[512];
    harness_db_url(dbname, url, sizeof url);
    PGconn *other = PQconnectdb(url);
    ck_assert_int_eq(PQstatus(other), CONNECTION_OK);
    char kill[128];
    snprintf(kill, sizeof kill, "SELECT pg_terminate_backend(%d)", PQbackendPID(conn));
    free(harness_sql(other, kill));
    PQfinish(other);
    static Snapshot snap;
    memset(&snap, 0, sizeof snap);
    snap.n_workers = 99; /* must stay untouched */
    ck_assert_int_eq(db_load_snapshot(conn, &cfg, &snap), STATUS_ERR_DB);
    ck_assert_uint_eq(snap.n_workers, 99);
}
END_TEST

static Suite *db_suite(void)
{
    Suite *s = suite_create("db");
    TCase *tc = tcase_create("test_db");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_db_snapshot_counts);
    tcase_add_test(tc, test_db_snapshot_statement_count_is_fixed);
    tcase_add_test(tc, test_db_snapshot_measures);
    tcase_add_test(tc, test_db_promote_is_guarded);
    tcase_add_test(tc, test_db_fail_worker_records_reason);
    tcase_add_test(tc, test_db_drain_refuses_a_busy_worker);
    tcase_add_test(tc, test_db_recover_task_counts_attempts);
    tcase_add_test(tc, test_db_capacity_backoff_doubles);
    tcase_add_test(tc, test_db_state_and_journal);
    tcase_add_test(tc, test_db_snapshot_fails_closed);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(db_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
