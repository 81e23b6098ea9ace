/* test_dblog.c -- ENABLE_DB_LOGGING's sink under the RunPod create threads (issue 12.7): up to
 * RUNPOD_CREATE_MAX_THREADS threads log at once while pods are created, and every line must
 * reach system_logs exactly once. Before the sink took a lock, concurrent appends to its batch
 * lost lines or corrupted the array (ASan reports it in the sanitizer build). */
#include <check.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "dblog.h"
#include "harness.h"
#include "log.h"
#include "runpod.h"

enum { THREADS = RUNPOD_CREATE_MAX_THREADS, LINES = 50 };

static PGconn *conn;
static char dbname[64];

static void setup(void)
{
    conn = harness_db_create(dbname);
}

static void teardown(void)
{
    harness_db_drop(conn, dbname);
    conn = NULL;
}

static void *logger(void *arg)
{
    long id = (long)(intptr_t)arg;
    for (int i = 0; i < LINES; i++)
        log_info("test.line", "thread=%ld line=%d worker_id=gpu-t%ld", id, i, id);
    return NULL;
}

START_TEST(test_dblog_concurrent_lines_all_written_once)
{
    ConfigErrors errs;
    Config cfg;
    const char *envp[] = {"ENABLE_DB_LOGGING=true", "ORCHESTRATOR_INSTANCE_ID=dblog-test", NULL};
    ck_assert_int_eq(config_parse(envp, "h", 0, &cfg, &errs), STATUS_OK);
    int devnull = open("/dev/null", O_WRONLY);
    log_set_fd(devnull);
    dblog_start(&cfg);
    pthread_t t[THREADS];
    for (long i = 0; i < THREADS; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, logger, (void *)(intptr_t)i), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    DblogStats st = dblog_stats();
    ck_assert_int_eq(st.pending, THREADS * LINES);
    ck_assert_int_eq(st.dropped, 0);
    dblog_flush(conn, &cfg);
    st = dblog_stats();
    ck_assert_int_eq(st.pending, 0);
    ck_assert_int_eq(st.written, THREADS * LINES);
    ck_assert_int_eq(harness_sql_ll(conn, "SELECT count(*) FROM system_logs WHERE metadata->>"
                                          "'event' = 'test.line'"),
                     THREADS * LINES);
    ck_assert_int_eq(harness_sql_ll(conn, "SELECT count(DISTINCT (metadata->>'thread', "
                                          "metadata->>'line')) FROM system_logs"),
                     THREADS * LINES);
    dblog_stop();
    log_set_fd(2);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("dblog");
    TCase *tc = tcase_create("test_dblog");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_dblog_concurrent_lines_all_written_once);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
