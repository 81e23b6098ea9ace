/* test_lease.c -- lease.c against a real PostgreSQL: the cycle lease is exclusive, expires,
 * fences a holder that lost it, is renewed while held, and a release frees only our own hold.
 * Expiry and takeover are made by writing the row (the database clock decides, so no test
 * waits a TTL except the renewal one). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "config.h"
#include "harness.h"
#include "lease.h"
#include "log.h"

static PGconn *conn;
static PGconn *other;
static char dbname[64];
static Config cfg;

static void setup(void)
{
    conn = harness_db_create(dbname);
    char url[512], env_url[600];
    harness_db_url(dbname, url, sizeof url);
    snprintf(env_url, sizeof env_url, "DATABASE_URL=%s", url);
    other = PQconnectdb(url);
    ck_assert_int_eq(PQstatus(other), CONNECTION_OK);
    ConfigErrors errs;
    const char *envp[] = {env_url, "CYCLE_LEASE_TTL_SEC=3", "ORCHESTRATOR_INSTANCE_ID=t", NULL};
    ck_assert_int_eq(config_parse(envp, "h", 0, &cfg, &errs), STATUS_OK);
    log_configure(LOG_ERROR, LOG_FORMAT_JSON); /* lease_lost lines are expected here */
}

static void teardown(void)
{
    PQfinish(other);
    other = NULL;
    harness_db_drop(conn, dbname);
    conn = NULL;
}

static long long fence_now(void)
{
    return harness_sql_ll(conn, "SELECT fence FROM orchestrator_lease WHERE name = 'cycle'");
}

static Lease *take(PGconn *c, bool want)
{
    Lease *l = NULL;
    ck_assert_int_eq(lease_new(&cfg, "single", &l), STATUS_OK);
    bool got = !want;
    ck_assert_int_eq(lease_try_acquire(l, c, &got), STATUS_OK);
    ck_assert_msg(got == want, "lease_try_acquire: got %d, want %d", got, want);
    return l;
}

START_TEST(test_lease_is_exclusive)
{
    Lease *a = take(conn, true);
    long long f1 = lease_fence(a);
    ck_assert_int_eq(f1, fence_now());
    Lease *b = take(other, false); /* held and not expired: refused */
    ck_assert_int_eq(lease_verify(a, conn), STATUS_OK);
    ck_assert_int_eq(lease_verify(b, other), STATUS_ERR_LEASE_LOST); /* b never held it */
    lease_release(a, conn);
    ck_assert_int_eq(
        harness_sql_ll(conn, "SELECT count(*) FROM orchestrator_lease WHERE holder IS NULL"), 1);
    bool got = false;
    ck_assert_int_eq(lease_try_acquire(b, other, &got), STATUS_OK);
    ck_assert(got);
    ck_assert_int_eq(lease_fence(b), f1 + 1); /* every take is a new fence */
    ck_assert_int_eq(lease_verify(b, other), STATUS_OK);
    ck_assert_int_eq(lease_verify(NULL, conn), STATUS_OK); /* no lease asked: no fence */
    lease_release(b, other);
    lease_free(a);
    lease_free(b);
}
END_TEST

/* A hold that expired is lost even if nobody took it, and the next taker gets it; the old
 * holder's release leaves the new hold alone. */
START_TEST(test_lease_expiry_fences_the_old_holder)
{
    Lease *a = take(conn, true);
    free(harness_sql(other, "UPDATE orchestrator_lease SET expires_at = now() - interval '1 s'"));
    ck_assert_int_eq(lease_verify(a, conn), STATUS_ERR_LEASE_LOST);
    Lease *b = take(other, true);
    ck_assert_int_eq(lease_verify(a, conn), STATUS_ERR_LEASE_LOST);
    lease_release(a, conn);
    ck_assert_int_eq(lease_verify(b, other), STATUS_OK);
    char *holder = harness_sql(conn, "SELECT holder_info FROM orchestrator_lease");
    ck_assert_msg(strstr(holder, "t single pid=") == holder, "holder_info %s", holder);
    free(holder);
    lease_release(b, other);
    lease_free(a);
    lease_free(b);
}
END_TEST

/* Less than TTL/4 left counts as lost: the margin a RunPod call needs. */
START_TEST(test_lease_expiring_is_not_held)
{
    Lease *a = take(conn, true);
    free(harness_sql(other, "UPDATE orchestrator_lease SET expires_at = now() + interval "
                            "'0.5 s'"));
    ck_assert_int_eq(lease_verify(a, conn), STATUS_ERR_LEASE_LOST);
    lease_release(a, conn);
    lease_free(a);
}
END_TEST

START_TEST(test_lease_taken_over_is_lost)
{
    Lease *a = take(conn, true);
    free(harness_sql(other, "UPDATE orchestrator_lease SET holder = 'thief', fence = fence + 1,"
                            " expires_at = now() + interval '1 hour'"));
    ck_assert_int_eq(lease_verify(a, conn), STATUS_ERR_LEASE_LOST);
    lease_release(a, conn);
    char *holder = harness_sql(conn, "SELECT holder FROM orchestrator_lease");
    ck_assert_str_eq(holder, "thief"); /* our release did not free the thief's hold */
    free(holder);
    lease_free(a);
}
END_TEST

/* The cycle's connection died: the release goes through a connection of the lease's own. */
START_TEST(test_lease_released_without_the_cycle_connection)
{
    Lease *a = take(conn, true);
    lease_release(a, NULL);
    ck_assert_int_eq(
        harness_sql_ll(conn, "SELECT count(*) FROM orchestrator_lease WHERE holder IS NULL"), 1);
    lease_free(a);
}
END_TEST

/* A release that could not reach the database at all leaves the row ours; the same process
 * takes it again at once (new fence) instead of waiting for the expiry, others still wait. */
START_TEST(test_lease_own_unreleased_hold_is_retaken)
{
    Lease *a = take(conn, true);
    long long f1 = lease_fence(a);
    char good[CONFIG_URL_MAX];
    snprintf(good, sizeof good, "%s", cfg.database_url);
    harness_db_url("no_such_database", cfg.database_url, sizeof cfg.database_url);
    lease_release(a, NULL); /* neither the cycle's connection nor a new one */
    snprintf(cfg.database_url, sizeof cfg.database_url, "%s", good);
    ck_assert_int_eq(harness_sql_ll(conn, "SELECT count(*) FROM orchestrator_lease"
                                          " WHERE holder IS NOT NULL AND expires_at > now()"),
                     1);
    Lease *b = take(other, false);
    bool got = false;
    ck_assert_int_eq(lease_try_acquire(a, conn, &got), STATUS_OK);
    ck_assert(got);
    ck_assert_int_eq(lease_fence(a), f1 + 1);
    lease_release(a, conn);
    lease_free(a);
    lease_free(b);
}
END_TEST

/* The renewal thread keeps a hold alive past its TTL, and stops renewing one it lost. */
START_TEST(test_lease_renewal_extends_and_stops)
{
    Lease *a = take(conn, true);
    struct timespec ts = {.tv_sec = 4, .tv_nsec = 0}; /* > CYCLE_LEASE_TTL_SEC=3 */
    nanosleep(&ts, NULL);
    ck_assert_int_eq(lease_verify(a, conn), STATUS_OK);
    ck_assert_int_eq(harness_sql_ll(conn, "SELECT count(*) FROM orchestrator_lease WHERE"
                                          " renewed_at > acquired_at + interval '2 s'"),
                     1);
    Lease *b = take(other, false);
    free(harness_sql(other, "UPDATE orchestrator_lease SET expires_at = now() - interval '1 s'"));
    nanosleep(&(struct timespec){.tv_sec = 1, .tv_nsec = 200000000L}, NULL); /* > TTL/4 */
    /* The thread's renewal was refused (expired), so the row stays expired... */
    ck_assert_int_eq(
        harness_sql_ll(conn, "SELECT count(*) FROM orchestrator_lease WHERE expires_at < now()"),
        1);
    ck_assert_int_eq(lease_verify(a, conn), STATUS_ERR_LEASE_LOST);
    /* ... and another may take it. */
    bool got = false;
    ck_assert_int_eq(lease_try_acquire(b, other, &got), STATUS_OK);
    ck_assert(got);
    lease_release(a, conn);
    lease_release(b, other);
    lease_free(a);
    lease_free(b);
}
END_TEST

static Suite *lease_suite(void)
{
    Suite *s = suite_create("lease");
    TCase *tc = tcase_create("test_lease");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_lease_is_exclusive);
    tcase_add_test(tc, test_lease_expiry_fences_the_old_holder);
    tcase_add_test(tc, test_lease_expiring_is_not_held);
    tcase_add_test(tc, test_lease_taken_over_is_lost);
    tcase_add_test(tc, test_lease_released_without_the_cycle_connection);
    tcase_add_test(tc, test_lease_own_unreleased_hold_is_retaken);
    tcase_add_test(tc, test_lease_renewal_extends_and_stops);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(lease_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
