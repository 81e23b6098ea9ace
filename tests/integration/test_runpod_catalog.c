/* test_runpod_catalog.c -- issue 16 against the fake RunPod and a real PostgreSQL: the GPU
 * catalog call (every hostile answer of the fake), the client's view of the rate limit (real
 * windows, a 429 storm, malformed, absent and repeated headers, a create held back by the
 * reserve), and the database side (the catalog cache and the quota written and read back, the
 * task durations per GPU type).
 *
 * One fake serves the whole binary (started in main); each test resets it and, when it needs
 * one, gets a fresh database, in a checked fixture. The fake records every exchange when the
 * contract test runs this binary (tests/contract/run.sh). */
#include <check.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "db_runpod.h"
#include "fake_runpod.h"
#include "harness.h"
#include "log.h"
#include "runpod.h"
#include "runpod_catalog.h"

#define KEY "rpa_CATALOGKEY_0123456789"
#define CAT_PATH "/v2/catalog/gpus"

static FakeRunpod *fake;
static RunpodClient *rp;
static CatalogList list;

static RunpodClient *client(int retries, long long reserve)
{
    RunpodOptions o = {.base_url = fake_runpod_url(fake),
                       .api_key = KEY,
                       .connect_timeout_ms = 2000,
                       .request_timeout_ms = 1500,
                       .max_retries = retries,
                       .backoff_base_ms = 20,
                       .backoff_max_ms = 50,
                       .retry_after_max_ms = 1500,
                       .rate_limit_reserve = reserve};
    RunpodClient *c = NULL;
    ck_assert_int_eq(runpod_client_new(&o, &c), STATUS_OK);
    return c;
}

static void setup(void)
{
    fake_runpod_reset(fake);
    rp = client(1, 0);
}

static void teardown(void)
{
    catalog_list_clear(&list);
    runpod_client_free(rp);
    rp = NULL;
}

static const CatalogEntry *entry(const char *id)
{
    static const CatalogEntry none;
    for (size_t i = 0; i < list.count; i++)
        if (strcmp(list.entries[i].id, id) == 0)
            return &list.entries[i];
    ck_abort_msg("no catalog entry %s", id);
    return &none;
}

static void catalog_mode(const char *mode)
{
    char body[96];
    snprintf(body, sizeof body, "{\"mode\": \"%s\"}", mode);
    cJSON_Delete(fake_runpod_control(fake, "/_fake/catalog", body));
}

/* ---------------------------------------------------------------------------------------- */
/* The catalog call                                                                           */

START_TEST(test_runpod_catalog_read)
{
    RunpodCallInfo info;
    cJSON_Delete(fake_runpod_control(
        fake, "/_fake/catalog",
        "{\"gpus\": {\"NVIDIA A40\": {\"stock\": \"NONE\"}, \"NVIDIA L40S\": {\"price\": 0.91, "
        "\"community_stock\": \"NONE\", \"dcs\": {\"EU-RO-1\": \"NONE\", \"US-TX-3\": "
        "\"LOW\"}}}}"));
    ck_assert_int_eq(runpod_list_gpu_types(rp, "SECURE", NULL, 0, &list, &info), STATUS_OK);
    ck_assert_uint_eq(list.count, 5);
    ck_assert_uint_eq(list.skipped + list.partial, 0);
    ck_assert_int_eq(entry("NVIDIA A40")->stock, GPU_STOCK_OUT);
    ck_assert_int_eq(entry("NVIDIA L40S")->stock, GPU_STOCK_IN);
    ck_assert_double_eq_tol(entry("NVIDIA L40S")->price_per_hr, 0.91, 1e-9);
    catalog_list_clear(&list);

    /* COMMUNITY: its own stock and price */
    ck_assert_int_eq(runpod_list_gpu_types(rp, "COMMUNITY", NULL, 0, &list, &info), STATUS_OK);
    ck_assert_int_eq(entry("NVIDIA L40S")->stock, GPU_STOCK_OUT);
    ck_assert_double_eq_tol(entry("NVIDIA GeForce RTX 4090")->price_per_hr, 0.34, 1e-9);
    catalog_list_clear(&list);

    /* a data-center filter: L40S only in US-TX-3 */
    const char *eu[] = {"EU-RO-1"}, *tx[] = {"US-TX-3", "EU-RO-1"};
    ck_assert_int_eq(runpod_list_gpu_types(rp, "SECURE", eu, 1, &list, &info), STATUS_OK);
    ck_assert_int_eq(entry("NVIDIA L40S")->stock, GPU_STOCK_OUT);
    catalog_list_clear(&list);
    ck_assert_int_eq(runpod_list_gpu_types(rp, "SECURE", tx, 2, &list, &info), STATUS_OK);
    ck_assert_int_eq(entry("NVIDIA L40S")->stock, GPU_STOCK_IN);

    /* the request the client sent: exactly the documented query, and no body */
    cJSON *reqs = fake_runpod_requests(fake);
    const cJSON *r = cJSON_GetArrayItem(reqs, 0);
    ck_assert_str_eq(cJSON_GetObjectItem(r, "path")->valuestring, CAT_PATH);
    ck_assert_str_eq(cJSON_GetObjectItem(r, "query")->valuestring,
                     "include=AVAILABILITY&product=POD&cloud=SECURE");
    ck_assert(cJSON_IsNull(cJSON_GetObjectItem(r, "body")));
    cJSON_Delete(reqs);
    ck_assert_int_eq(runpod_list_gpu_types(rp, "SPOT", NULL, 0, &list, &info), STATUS_ERR_USAGE);
    ck_assert_int_eq(fake_runpod_count_requests(fake, "GET", CAT_PATH), 4);
}
END_TEST

/* Hostile catalogs: the call fails cleanly (a document that is not a catalog), or succeeds
 * with the odd entries skipped or their odd fields unknown. */
static const struct {
    const char *mode;
    Status want;
    size_t count, skipped_at_least, partial_at_least;
} MODES[] = {
    {"garbage", STATUS_ERR_API, 0, 0, 0},
    {"html", STATUS_ERR_API, 0, 0, 0},
    {"not_a_list", STATUS_ERR_API, 0, 0, 0},
    {"empty", STATUS_OK, 0, 0, 0},
    {"unknown_ids", STATUS_OK, 5, 0, 0},
    {"missing_prices", STATUS_OK, 5, 0, 5},
    {"odd", STATUS_OK, 4, 1, 2},
};

START_TEST(test_runpod_catalog_hostile)
{
    RunpodCallInfo info;
    catalog_mode(MODES[_i].mode);
    Status st = runpod_list_gpu_types(rp, "SECURE", NULL, 0, &list, &info);
    ck_assert_msg(st == MODES[_i].want, "%s: %s (%s)", MODES[_i].mode, status_str(st), info.detail);
    if (st != STATUS_OK) {
        ck_assert_int_eq(info.error, RP_PARSE);
        ck_assert_msg(info.detail[0], "%s: no detail", MODES[_i].mode);
        ck_assert_uint_eq(list.count, 0);
        return;
    }
    ck_assert_msg(list.count == MODES[_i].count, "%s: %zu entries", MODES[_i].mode, list.count);
    ck_assert(list.skipped >= MODES[_i].skipped_at_least);
    ck_assert(list.partial >= MODES[_i].partial_at_least);
    if (strcmp(MODES[_i].mode, "missing_prices") == 0)
        for (size_t i = 0; i < list.count; i++)
            ck_assert_double_eq(list.entries[i].price_per_hr, -1);
}
END_TEST

/* 5xx is retried within RUNPOD_MAX_RETRIES; a hang times out; neither crashes nor lingers. */
START_TEST(test_runpod_catalog_failures)
{
    RunpodCallInfo info;
    fake_runpod_faults(fake, "{\"rules\": [{\"method\": \"GET\", \"path\": \"/v2/catalog/gpus\", "
                             "\"status\": 503, \"count\": 1}]}");
    ck_assert_int_eq(runpod_list_gpu_types(rp, "SECURE", NULL, 0, &list, &info), STATUS_OK);
    ck_assert_int_eq(info.attempts, 2);
    catalog_list_clear(&list);
    fake_runpod_faults(fake, "{\"rules\": [{\"method\": \"GET\", \"path\": \"/v2/catalog/gpus\", "
                             "\"status\": 500, \"count\": -1}]}");
    ck_assert_int_eq(runpod_list_gpu_types(rp, "SECURE", NULL, 0, &list, &info), STATUS_ERR_API);
    ck_assert_int_eq(info.error, RP_SERVER);
    fake_runpod_faults(fake, "{\"rules\": [{\"method\": \"GET\", \"path\": \"/v2/catalog/gpus\", "
                             "\"delay_sec\": 3, \"count\": -1}]}");
    RunpodClient *once = client(0, 0);
    ck_assert_int_eq(runpod_list_gpu_types(once, "SECURE", NULL, 0, &list, &info), STATUS_ERR_API);
    ck_assert_int_eq(info.error, RP_TIMEOUT);
    runpod_client_free(once);
    /* a body far over the cap */
    fake_runpod_faults(fake, "{\"rules\": [{\"method\": \"GET\", \"path\": \"/v2/catalog/gpus\", "
                             "\"status\": 200, \"body\": \"[\", \"body_repeat\": 5000000, "
                             "\"count\": -1}]}");
    ck_assert_int_eq(runpod_list_gpu_types(rp, "SECURE", NULL, 0, &list, &info), STATUS_ERR_API);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* The rate limit as the client sees it                                                      */

static void ratelimit(const char *json)
{
    cJSON_Delete(fake_runpod_control(fake, "/_fake/ratelimit", json));
}

START_TEST(test_runpod_catalog_quota_windows)
{
    RunpodRateSeen seen;
    ck_assert(!runpod_client_rate_limit(rp, &seen));
    ck_assert_int_eq(runpod_client_create_allowance(rp), -1);
    ratelimit("{\"windows\": [{\"name\": \"minute\", \"q\": 6, \"w\": 30}, "
              "{\"name\": \"hour\", \"q\": 100, \"w\": 3600}]}");
    PodList pods = {0};
    RunpodCallInfo info;
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(runpod_list_pods(rp, &pods, &info), STATUS_OK);
        pod_list_clear(&pods);
    }
    ck_assert(runpod_client_rate_limit(rp, &seen) && seen.header_seen);
    ck_assert(seen.quota.known && !seen.quota.malformed);
    ck_assert_int_eq(ratelimit_remaining(&seen.quota), 2);
    ck_assert_int_eq(ratelimit_window(&seen.quota, "minute")->quota, 6);
    ck_assert_int_eq(ratelimit_window(&seen.quota, "hour")->remaining, 96);
    ck_assert_msg(strstr(seen.ratelimit, "\"minute\";r=2;t=") &&
                      strstr(seen.ratelimit, ", \"hour\";r=96;t="),
                  "%s", seen.ratelimit);
    ck_assert_int_eq(runpod_client_create_allowance(rp), 2);

    /* a create with a reserve of 2: nothing left for it, so nothing is POSTed */
    RunpodClient *reserved = client(1, 2);
    ck_assert_int_eq(runpod_list_pods(reserved, &pods, &info), STATUS_OK);
    pod_list_clear(&pods);
    ck_assert_int_eq(runpod_client_create_allowance(reserved), 0);
    PodCreateSpec spec = {0};
    snprintf(spec.name, sizeof spec.name, "gpu-20260101_000000-0a0b0c0d");
    snprintf(spec.image, sizeof spec.image, "img");
    snprintf(spec.cloud, sizeof spec.cloud, "SECURE");
    const char *types[] = {"GPU-A"};
    PodCreateResult res;
    ck_assert_int_eq(runpod_create_pod(reserved, &spec, types, 1, &res), STATUS_ERR_API);
    ck_assert(res.deferred && !res.outcome_unknown);
    ck_assert_int_eq(res.info.error, RP_RATE_LIMITED);
    ck_assert_int_eq(fake_runpod_count_requests(fake, "POST", "/v2/pods"), 0);
    runpod_client_free(reserved);

    /* the window runs out: a 429 with Retry-After, recorded as 0 left until it passes */
    RunpodClient *nore = client(0, 0);
    ck_assert_int_eq(runpod_list_pods(nore, &pods, &info), STATUS_OK); /* the 6th call */
    pod_list_clear(&pods);
    ck_assert_int_eq(runpod_list_pods(nore, &pods, &info), STATUS_ERR_API);
    ck_assert_int_eq(info.error, RP_RATE_LIMITED);
    ck_assert(runpod_client_rate_limit(nore, &seen));
    ck_assert(seen.retry_after_left_sec > 20 && seen.retry_after_left_sec <= 30);
    ck_assert_int_eq(ratelimit_remaining(&seen.quota), 0);
    ck_assert_int_eq(runpod_client_create_allowance(nore), 0);
    runpod_client_free(nore);
}
END_TEST

/* Malformed, absent, repeated and oversized headers: unknown (or the repeated lines joined),
 * never a crash, never a wrong figure. */
START_TEST(test_runpod_catalog_quota_hostile)
{
    RunpodRateSeen seen;
    PodList pods = {0};
    RunpodCallInfo info;
    ratelimit("{\"mode\": \"malformed\", \"malformed_values\": [\"\\\"minute\\\";r=-1;t=5\", "
              "\"limit=100, remaining=5\", \"\\\"m\\\";r=1.5\"]}");
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(runpod_list_pods(rp, &pods, &info), STATUS_OK);
        pod_list_clear(&pods);
        ck_assert(runpod_client_rate_limit(rp, &seen));
        ck_assert(!seen.quota.known && seen.quota.malformed);
        ck_assert_int_eq(runpod_client_create_allowance(rp), -1);
    }
    /* a good header afterwards is read again */
    ratelimit("{\"mode\": \"normal\"}");
    ck_assert_int_eq(runpod_list_pods(rp, &pods, &info), STATUS_OK);
    pod_list_clear(&pods);
    ck_assert(runpod_client_rate_limit(rp, &seen) && seen.quota.known && !seen.quota.malformed);
    /* absent: the last figure stands (it ages), nothing is invented */
    ratelimit("{\"mode\": \"absent\"}");
    ck_assert_int_eq(runpod_list_pods(rp, &pods, &info), STATUS_OK);
    pod_list_clear(&pods);
    ck_assert(runpod_client_rate_limit(rp, &seen) && seen.quota.known);
    /* two RateLimit lines are one field ("a, b"): both windows count */
    fake_runpod_faults(fake,
                       "{\"rules\": [{\"method\": \"GET\", \"path\": \"/v2/pods\", "
                       "\"count\": 1, \"headers\": {\"RateLimit\": [\"\\\"minute\\\";r=9;t=9\", "
                       "\"\\\"hour\\\";r=3;t=99\"]}}]}");
    ck_assert_int_eq(runpod_list_pods(rp, &pods, &info), STATUS_OK);
    pod_list_clear(&pods);
    ck_assert(runpod_client_rate_limit(rp, &seen));
    ck_assert_uint_eq(seen.quota.n, 2);
    ck_assert_int_eq(ratelimit_remaining(&seen.quota), 3);
    /* a field longer than the client keeps: unknown, not a truncated (wrong) figure */
    char rule[2400];
    int n = snprintf(rule, sizeof rule,
                     "{\"rules\": [{\"method\": \"GET\", \"path\": \"/v2/pods\", \"count\": 1, "
                     "\"headers\": {\"RateLimit\": \"\\\"minute\\\";r=900");
    for (int i = 0; i < 200; i++)
        n += snprintf(rule + n, sizeof rule - (size_t)n, ";x=1");
    snprintf(rule + n, sizeof rule - (size_t)n, "\"}}]}");
    fake_runpod_faults(fake, rule);
    ck_assert_int_eq(runpod_list_pods(rp, &pods, &info), STATUS_OK);
    pod_list_clear(&pods);
    ck_assert(runpod_client_rate_limit(rp, &seen));
    ck_assert(!seen.quota.known && seen.quota.malformed && !seen.ratelimit[0]);
}
END_TEST

/* A 429 storm: every call answered 429; the client waits Retry-After (capped) within its
 * retries, and its view says nothing is left. */
START_TEST(test_runpod_catalog_quota_storm)
{
    ratelimit("{\"mode\": \"storm\", \"storm_retry_after\": 1}");
    RunpodCallInfo info;
    ck_assert_int_eq(runpod_list_gpu_types(rp, "SECURE", NULL, 0, &list, &info), STATUS_ERR_API);
    ck_assert_int_eq(info.error, RP_RATE_LIMITED);
    ck_assert_int_eq(info.attempts, 2);
    ck_assert_int_eq(runpod_client_create_allowance(rp), 0);
    ck_assert_int_eq(runpod_terminate_pod(rp, "abc123", &info), STATUS_ERR_API);
    ck_assert_int_eq(info.error, RP_RATE_LIMITED);
}
END_TEST

/* ---------------------------------------------------------------------------------------- */
/* The database side                                                                          */

static PGconn *conn;
static char dbname[64];
static Config *cfg;

/* Runs SQL whose answer is not needed. */
static void exec(const char *sql)
{
    free(harness_sql(conn, sql));
}

static void db_setup(void)
{
    conn = harness_db_create(dbname);
    cfg = calloc(1, sizeof *cfg);
    ConfigErrors errs;
    const char *env[] = {"RUNPOD_GPU_TYPES=NVIDIA A40,NVIDIA L40S,GPU-NEVER-LISTED",
                         "RUNPOD_GPU_CHOICE=value", NULL};
    ck_assert_int_eq(config_parse(env, "h", CONFIG_NEED_NOTHING, cfg, &errs), STATUS_OK);
}

static void db_teardown(void)
{
    harness_db_drop(conn, dbname);
    free(cfg);
}

START_TEST(test_runpod_catalog_db_cache)
{
    RunpodCallInfo info;
    ck_assert_int_eq(runpod_list_gpu_types(rp, "SECURE", NULL, 0, &list, &info), STATUS_OK);
    ck_assert_int_eq(db_save_catalog(conn, "SECURE", "SECURE", &list, NULL), STATUS_OK);
    Snapshot *snap = calloc(1, sizeof *snap);
    ck_assert_ptr_nonnull(snap);
    ck_assert_int_eq(db_load_snapshot(conn, cfg, snap), STATUS_OK);
    ck_assert_uint_eq(snap->n_catalog_scopes, 1);
    ck_assert_str_eq(snap->catalog_scopes[0].scope, "SECURE");
    ck_assert(!snap->catalog_scopes[0].last_failed && snap->catalog_scopes[0].age_sec == 0);
    ck_assert_uint_eq(snap->n_catalog, 2); /* only the configured types that were listed */
    /* a failed read keeps the good entries, marks the scope failed, scrubs and bounds why */
    log_add_secret(KEY);
    ck_assert_int_eq(
        db_save_catalog(conn, "SECURE", "SECURE", NULL, "server_error (HTTP 503): echo " KEY),
        STATUS_OK);
    ck_assert_int_eq(db_load_snapshot(conn, cfg, snap), STATUS_OK);
    ck_assert(snap->catalog_scopes[0].last_failed);
    ck_assert_uint_eq(snap->n_catalog, 2);
    char *err = harness_sql(conn, "SELECT error FROM runpod_catalog_reads");
    ck_assert_msg(!strstr(err, KEY) && strstr(err, "***"), "%s", err);
    free(err);
    /* a new good read replaces the entries: a type no longer listed goes */
    catalog_list_clear(&list);
    cJSON_Delete(fake_runpod_control(fake, "/_fake/catalog",
                                     "{\"replace\": true, \"gpus\": {\"NVIDIA A40\": {}}}"));
    ck_assert_int_eq(runpod_list_gpu_types(rp, "SECURE", NULL, 0, &list, &info), STATUS_OK);
    ck_assert_int_eq(db_save_catalog(conn, "SECURE", "SECURE", &list, NULL), STATUS_OK);
    ck_assert_int_eq(harness_sql_ll(conn, "SELECT count(*) FROM runpod_gpu_catalog"), 1);
    ck_assert_int_eq(harness_sql_ll(conn, "SELECT count(*) FROM runpod_catalog_reads WHERE ok"), 1);
    free(snap);
}
END_TEST

START_TEST(test_runpod_catalog_db_quota)
{
    PodList pods = {0};
    RunpodCallInfo info;
    ratelimit("{\"windows\": [{\"name\": \"minute\", \"q\": 10, \"w\": 40}]}");
    ck_assert_int_eq(runpod_list_pods(rp, &pods, &info), STATUS_OK);
    pod_list_clear(&pods);
    RunpodRateSeen seen;
    ck_assert(runpod_client_rate_limit(rp, &seen));
    ck_assert_int_eq(db_save_rate_limit(conn, &seen), STATUS_OK);
    Snapshot *snap = calloc(1, sizeof *snap);
    ck_assert_int_eq(db_load_snapshot(conn, cfg, snap), STATUS_OK);
    ck_assert(snap->quota.known);
    ck_assert_int_eq(ratelimit_remaining(&snap->quota), 9);
    ck_assert(ratelimit_reset_in(&snap->quota) > 35 && ratelimit_reset_in(&snap->quota) <= 40);
    /* persisted 30 s ago: the next run knows 10 s are left before the reset */
    exec("UPDATE runpod_rate_limit SET observed_at = observed_at - interval '30 s'");
    ck_assert_int_eq(db_load_snapshot(conn, cfg, snap), STATUS_OK);
    ck_assert(ratelimit_reset_in(&snap->quota) > 5 && ratelimit_reset_in(&snap->quota) <= 10);
    /* and after the reset: the policy's full quota */
    exec("UPDATE runpod_rate_limit SET observed_at = observed_at - interval '60 s'");
    ck_assert_int_eq(db_load_snapshot(conn, cfg, snap), STATUS_OK);
    ck_assert_int_eq(ratelimit_remaining(&snap->quota), 10);
    /* a row someone garbled is unknown, not a crash */
    exec("UPDATE runpod_rate_limit SET ratelimit = '\"m\";r=-7'");
    ck_assert_int_eq(db_load_snapshot(conn, cfg, snap), STATUS_OK);
    ck_assert(!snap->quota.known && snap->quota.malformed);
    ck_assert_int_eq(ratelimit_remaining(&snap->quota), -1);
    free(snap);
}
END_TEST

START_TEST(test_runpod_catalog_db_task_stats)
{
    exec("INSERT INTO workers (id, status, gpu_type) VALUES "
         "('w-a', 'spawning', 'NVIDIA A40'), ('w-l', 'spawning', 'NVIDIA L40S'),"
         "('w-x', 'spawning', NULL)");
    /* A40: 100, 200, 300 s; L40S: 50 s twice; one too old, one still running, one failed,
     * one on a worker without a GPU type */
    exec("INSERT INTO tasks (task_type, status, worker_id, generation_started_at, "
         "generation_processed_at) VALUES "
         "('t', 'Complete', 'w-a', now() - interval '100 s', now()),"
         "('t', 'Complete', 'w-a', now() - interval '200 s', now()),"
         "('t', 'Complete', 'w-a', now() - interval '300 s', now()),"
         "('t', 'Complete', 'w-l', now() - interval '50 s', now()),"
         "('t', 'Complete', 'w-l', now() - interval '60 s', now() - interval '10 s'),"
         "('t', 'Complete', 'w-l', now() - interval '9 days', now() - interval '8 days'),"
         "('t', 'Failed', 'w-l', now() - interval '900 s', now()),"
         "('t', 'Complete', 'w-x', now() - interval '5 s', now())");
    Snapshot *snap = calloc(1, sizeof *snap);
    ck_assert_int_eq(db_load_gpu_stats(conn, cfg, snap), STATUS_OK);
    ck_assert(snap->gpu_stats_loaded);
    ck_assert_uint_eq(snap->n_gpu_stats, 3);
    for (size_t i = 0; i < snap->n_gpu_stats; i++) {
        const SnapGpuStat *g = &snap->gpu_stats[i];
        ck_assert_str_eq(g->pool, "default");
        if (strcmp(g->gpu_type, "NVIDIA A40") == 0)
            ck_assert(g->samples == 3 && g->median_sec > 199 && g->median_sec < 201);
        else if (strcmp(g->gpu_type, "NVIDIA L40S") == 0)
            ck_assert(g->samples == 2 && g->median_sec > 49 && g->median_sec < 51);
        else
            ck_assert(g->gpu_type[0] == '\0' && g->samples == 5 && g->median_sec > 99 &&
                      g->median_sec < 101);
    }
    free(snap);
}
END_TEST

static Suite *runpod_catalog_suite(void)
{
    Suite *s = suite_create("runpod_catalog");
    TCase *tc = tcase_create("test_runpod_catalog_call");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_runpod_catalog_read);
    tcase_add_loop_test(tc, test_runpod_catalog_hostile, 0, (int)(sizeof MODES / sizeof MODES[0]));
    tcase_add_test(tc, test_runpod_catalog_failures);
    suite_add_tcase(s, tc);
    tc = tcase_create("test_runpod_catalog_quota");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_runpod_catalog_quota_windows);
    tcase_add_test(tc, test_runpod_catalog_quota_hostile);
    tcase_add_test(tc, test_runpod_catalog_quota_storm);
    suite_add_tcase(s, tc);
    tc = tcase_create("test_runpod_catalog_db");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_checked_fixture(tc, db_setup, db_teardown);
    tcase_add_test(tc, test_runpod_catalog_db_cache);
    tcase_add_test(tc, test_runpod_catalog_db_quota);
    tcase_add_test(tc, test_runpod_catalog_db_task_stats);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return EXIT_FAILURE;
    log_configure(LOG_ERROR, LOG_FORMAT_TEXT);
    fake = fake_runpod_start(KEY, NULL);
    SRunner *sr = srunner_create(runpod_catalog_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    fake_runpod_stop(fake);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
