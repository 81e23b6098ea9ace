/* test_runpod_lifecycle.c -- runpod_lifecycle.c against the fake RunPod: stop and start a pod
 * (POST /v2/pods/{id}/action), read the tail of its log (the SSE stream of
 * GET /v2/pods/{id}/logs: ended by the client, bounded in bytes and time, a hanging stream cut
 * at its timeout), read the pod billing (GET /v2/billing/pods), and their failure modes. With
 * ORCH_FAKE_RUNPOD_RECORD_DIR set (tests/contract/run.sh), every exchange is validated against
 * the OpenAPI document afterwards.
 *
 * One fake serves the whole binary (started in main); each test resets it. No database.
 */
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "billing.h"
#include "fake_runpod.h"
#include "log.h"
#include "runpod.h"
#include "runpod_lifecycle.h"

#define KEY "rpa_TESTKEY_lifecycle_0123456789"

static FakeRunpod *fake;
static RunpodClient *rp;

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void nap_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static RunpodClient *client(int retries)
{
    RunpodOptions o = {.base_url = fake_runpod_url(fake),
                       .api_key = KEY,
                       .connect_timeout_ms = 2000,
                       .request_timeout_ms = 3000,
                       .max_retries = retries,
                       .backoff_base_ms = 20,
                       .backoff_max_ms = 100,
                       .retry_after_max_ms = 2000};
    RunpodClient *c = NULL;
    ck_assert_int_eq(runpod_client_new(&o, &c), STATUS_OK);
    return c;
}

static void setup(void)
{
    fake_runpod_reset(fake);
    fake_runpod_config(fake, "{\"provision_sec\": 0.1, \"start_sec\": 0.1, "
                             "\"boot_delay_sec\": 0.2, \"boot_cmd\": \"echo worker up; echo "
                             "second line; sleep 30\"}");
    rp = client(2);
}

static void teardown(void)
{
    runpod_client_free(rp);
    rp = NULL;
}

/* A pod created through the fake's API, RUNNING; its id in id. */
static void running_pod(const char *name, char id[64])
{
    PodCreateSpec *s = calloc(1, sizeof *s);
    ck_assert_ptr_nonnull(s);
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->image, sizeof s->image, "runpod/base:1");
    snprintf(s->cloud, sizeof s->cloud, "SECURE");
    s->disk_gb = 20;
    const char *types[] = {"NVIDIA GeForce RTX 4090"};
    PodCreateResult r;
    ck_assert_int_eq(runpod_create_pod(rp, s, types, 1, &r), STATUS_OK);
    snprintf(id, 64, "%s", r.pod.id);
    free(s);
    Pod p;
    for (int i = 0; i < 100; i++) {
        ck_assert_int_eq(runpod_get_pod(rp, id, &p, NULL), STATUS_OK);
        if (p.status == POD_STATUS_RUNNING)
            break;
        nap_ms(30);
    }
    ck_assert_int_eq(p.status, POD_STATUS_RUNNING);
}

/* ------------------------------------------------------------------------------------------ */
/* Actions                                                                                     */

START_TEST(test_stop_and_start)
{
    char id[64];
    running_pod("gpu-20260601_120000-0000aaaa", id);
    Pod p;
    RunpodCallInfo info;
    ck_assert_int_eq(runpod_pod_action(rp, id, "stop", &p, &info), STATUS_OK);
    ck_assert_int_eq(p.status, POD_STATUS_EXITED);
    ck_assert(p.cost_per_hr == 0);
    /* Stopping a stopped pod is not valid now: 409, final, one request. */
    ck_assert_int_eq(runpod_pod_action(rp, id, "stop", NULL, &info), STATUS_ERR_API);
    ck_assert_int_eq(info.error, RP_CONFLICT);
    ck_assert_int_eq(info.attempts, 1);
    ck_assert_int_eq(runpod_pod_action(rp, id, "start", &p, &info), STATUS_OK);
    ck_assert(p.status == POD_STATUS_PROVISIONING || p.status == POD_STATUS_STARTING ||
              p.status == POD_STATUS_RUNNING);
    ck_assert_int_eq(runpod_pod_action(rp, id, "start", NULL, &info), STATUS_ERR_API);
    ck_assert_int_eq(info.error, RP_CONFLICT);
    ck_assert_int_eq(fake_runpod_count_requests(fake, "POST", "/v2/pods/*"), 4 + 0);
}
END_TEST

START_TEST(test_start_refused_no_free_gpu)
{
    char id[64];
    running_pod("gpu-20260601_120000-0000bbbb", id);
    ck_assert_int_eq(runpod_pod_action(rp, id, "stop", NULL, NULL), STATUS_OK);
    fake_runpod_faults(fake, "{\"start_no_gpu\": true}");
    RunpodCallInfo info;
    ck_assert_int_eq(runpod_pod_action(rp, id, "start", NULL, &info), STATUS_ERR_API);
    ck_assert_int_eq(info.error, RP_BAD_REQUEST);
    ck_assert_int_eq(info.http_status, 400);
    ck_assert_msg(strstr(info.detail, "not enough free GPUs"), "%s", info.detail);
    ck_assert(!retry_is_ambiguous(info.error)); /* a refusal: the caller creates instead */
}
END_TEST

START_TEST(test_action_failure_modes)
{
    char id[64];
    running_pod("gpu-20260601_120000-0000cccc", id);
    RunpodCallInfo info;
    /* 429 means "not done": waited for and repeated. */
    fake_runpod_faults(fake, "{\"rules\": [{\"method\": \"POST\", \"path\": \"/v2/pods/*/action\","
                             " \"status\": 429, \"retry_after\": 0, \"count\": 1}]}");
    ck_assert_int_eq(runpod_pod_action(rp, id, "stop", NULL, &info), STATUS_OK);
    ck_assert_int_eq(info.attempts, 2);
    /* 5xx: ambiguous, never repeated (a start may be booting). */
    fake_runpod_faults(fake, "{\"rules\": [{\"method\": \"POST\", \"path\": \"/v2/pods/*/action\","
                             " \"status\": 503, \"count\": 3}]}");
    ck_assert_int_eq(runpod_pod_action(rp, id, "start", NULL, &info), STATUS_ERR_API);
    ck_assert_int_eq(info.error, RP_SERVER);
    ck_assert_int_eq(info.attempts, 1);
    ck_assert(retry_is_ambiguous(info.error));
    /* A slow answer: a timeout, ambiguous too. */
    fake_runpod_faults(fake, "{\"rules\": [{\"method\": \"POST\", \"path\": \"/v2/pods/*/action\","
                             " \"delay_sec\": 5, \"count\": 1}]}");
    ck_assert_int_eq(runpod_pod_action(rp, id, "start", NULL, &info), STATUS_ERR_API);
    ck_assert_int_eq(info.error, RP_TIMEOUT);
    fake_runpod_faults(fake, "{\"rules\": []}");
    /* Gone. */
    ck_assert_int_eq(runpod_pod_action(rp, "nosuchpod00001", "start", NULL, &info), STATUS_ERR_API);
    ck_assert_int_eq(info.error, RP_NOT_FOUND);
    /* Never sent: a bad id or action. */
    int before = fake_runpod_count_requests(fake, "POST", "/v2/pods/*");
    ck_assert_int_eq(runpod_pod_action(rp, "../x", "stop", NULL, &info), STATUS_ERR_USAGE);
    ck_assert_int_eq(runpod_pod_action(rp, id, "reset", NULL, &info), STATUS_ERR_USAGE);
    ck_assert_int_eq(fake_runpod_count_requests(fake, "POST", "/v2/pods/*"), before);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Logs                                                                                        */

START_TEST(test_log_tail)
{
    char id[64];
    running_pod("gpu-20260601_120000-0000dddd", id);
    nap_ms(400); /* the boot process has written its lines */
    char *sse = NULL;
    size_t len = 0;
    bool slid = true;
    RunpodCallInfo info;
    PodLogOptions o = {.tail_lines = 50, .timeout_ms = 4000, .idle_ms = 300};
    long long t0 = mono_ms();
    ck_assert_int_eq(runpod_pod_logs(rp, id, &o, &sse, &len, &slid, &info), STATUS_OK);
    long long took = mono_ms() - t0;
    /* The stream stays open (as RunPod's does); the read ends on its own once it goes quiet. */
    ck_assert_msg(took < 2500, "the read took %lld ms: it did not end on idle", took);
    ck_assert(!slid);
    ck_assert_msg(strstr(sse, "\"line\": \"worker up\"") && strstr(sse, "second line"), "%s", sse);
    ck_assert_msg(strstr(sse, "create container"), "system lines too: %s", sse);
    free(sse);
}
END_TEST

START_TEST(test_log_tail_keeps_the_newest_bytes)
{
    char id[64];
    running_pod("gpu-20260601_120000-0000eeee", id);
    char body[8192];
    size_t off = (size_t)snprintf(body, sizeof body, "{\"lines\": [");
    for (int i = 0; i < 60; i++)
        off += (size_t)snprintf(body + off, sizeof body - off, "%s\"filler line %03d\"",
                                i ? "," : "", i);
    snprintf(body + off, sizeof body - off, ", \"the very last line\"]}");
    char path[96];
    snprintf(path, sizeof path, "/_fake/pods/%s/log", id);
    cJSON_Delete(fake_runpod_control(fake, path, body));
    char *sse = NULL;
    size_t len = 0;
    bool slid = false;
    PodLogOptions o = {.tail_lines = 500, .timeout_ms = 4000, .idle_ms = 300, .keep_bytes = 1024};
    ck_assert_int_eq(runpod_pod_logs(rp, id, &o, &sse, &len, &slid, NULL), STATUS_OK);
    ck_assert_msg(slid, "len %zu: %s", len, sse);
    ck_assert_uint_le(len, 1024);
    ck_assert_msg(strstr(sse, "the very last line"), "the newest line kept: %s", sse);
    ck_assert(!strstr(sse, "filler line 000"));
    free(sse);
}
END_TEST

START_TEST(test_log_tail_hangs_and_fails)
{
    char id[64];
    running_pod("gpu-20260601_120000-0000ffff", id);
    /* Headers, then silence: cut at the time bound, a timeout. */
    fake_runpod_faults(fake, "{\"logs_hang_sec\": 20}");
    char *sse = NULL;
    size_t len = 0;
    RunpodCallInfo info;
    PodLogOptions o = {.timeout_ms = 1200, .idle_ms = 300};
    long long t0 = mono_ms();
    ck_assert_int_eq(runpod_pod_logs(rp, id, &o, &sse, &len, NULL, &info), STATUS_ERR_API);
    long long took = mono_ms() - t0;
    ck_assert_int_eq(info.error, RP_TIMEOUT);
    ck_assert_msg(took >= 1100 && took < 2500, "bounded by its own timeout: %lld ms", took);
    ck_assert_ptr_null(sse);
    /* No answer at all before the bound (a proxy that holds the request): a timeout. */
    fake_runpod_faults(fake, "{\"logs_hang_sec\": 0, \"rules\": [{\"method\": \"GET\", "
                             "\"path\": \"/v2/pods/*/logs\", \"delay_sec\": 5, \"count\": 1}]}");
    t0 = mono_ms();
    ck_assert_int_eq(runpod_pod_logs(rp, id, &o, &sse, &len, NULL, &info), STATUS_ERR_API);
    ck_assert_int_eq(info.error, RP_TIMEOUT);
    ck_assert_int_lt(mono_ms() - t0, 2500);
    /* Never retried: one request per read. */
    fake_runpod_faults(fake, "{\"rules\": [{\"method\": \"GET\", \"path\": \"/v2/pods/*/logs\","
                             " \"status\": 502, \"count\": 5}]}");
    int before = fake_runpod_count_requests(fake, "GET", "/v2/pods/*");
    ck_assert_int_eq(runpod_pod_logs(rp, id, &o, &sse, &len, NULL, &info), STATUS_ERR_API);
    ck_assert_int_eq(info.error, RP_SERVER);
    ck_assert_int_eq(fake_runpod_count_requests(fake, "GET", "/v2/pods/*"), before + 1);
    fake_runpod_faults(fake, "{\"rules\": []}");
    ck_assert_int_eq(runpod_pod_logs(rp, "nosuchpod00002", &o, &sse, &len, NULL, &info),
                     STATUS_ERR_API);
    ck_assert_int_eq(info.error, RP_NOT_FOUND);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Billing                                                                                     */

START_TEST(test_billing)
{
    char id[64];
    running_pod("gpu-20260601_120000-00001111", id);
    fake_runpod_faults(fake, "{\"billing_extra\": [{\"podId\": \"ph1\", \"usd_per_hr\": 2.5}]}");
    char *body = NULL;
    size_t len = 0;
    RunpodCallInfo info;
    ck_assert_int_eq(runpod_billing_pods(rp, 2, &body, &len, &info), STATUS_OK);
    BillingHour *h = malloc(sizeof *h);
    ck_assert_ptr_nonnull(h);
    char err[128];
    ck_assert_int_eq(billing_parse(body, len, (long long)time(NULL), h, err, sizeof err),
                     STATUS_OK);
    ck_assert(h->have_bucket);
    ck_assert_uint_eq(h->n_pods, 1); /* the pod of this test did not run in the last hour */
    ck_assert_str_eq(h->pods[0].pod_id, "ph1");
    ck_assert(h->pods[0].usd > 2.49 && h->pods[0].usd < 2.51);
    free(body);
    /* Malformed records are skipped and counted; the read stands. */
    fake_runpod_faults(fake, "{\"billing_malformed\": true}");
    ck_assert_int_eq(runpod_billing_pods(rp, 2, &body, &len, &info), STATUS_OK);
    ck_assert_int_eq(billing_parse(body, len, (long long)time(NULL), h, err, sizeof err),
                     STATUS_OK);
    ck_assert_uint_ge(h->malformed, 5);
    free(body);
    /* 5xx is retried like any GET; a persistent one fails the read. */
    fake_runpod_faults(fake, "{\"billing_malformed\": false, \"rules\": [{\"method\": \"GET\", "
                             "\"path\": \"/v2/billing/pods\", \"status\": 500, \"count\": 1}]}");
    ck_assert_int_eq(runpod_billing_pods(rp, 2, &body, &len, &info), STATUS_OK);
    ck_assert_int_eq(info.attempts, 2);
    free(body);
    fake_runpod_faults(fake, "{\"rules\": [{\"method\": \"GET\", \"path\": \"/v2/billing/pods\","
                             " \"status\": 503, \"count\": -1}]}");
    ck_assert_int_eq(runpod_billing_pods(rp, 2, &body, &len, &info), STATUS_ERR_API);
    ck_assert_int_eq(info.error, RP_SERVER);
    fake_runpod_faults(fake, "{\"rules\": []}");
    free(h);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("runpod_lifecycle");
    TCase *tc = tcase_create("actions");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_stop_and_start);
    tcase_add_test(tc, test_start_refused_no_free_gpu);
    tcase_add_test(tc, test_action_failure_modes);
    suite_add_tcase(s, tc);
    tc = tcase_create("logs");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_log_tail);
    tcase_add_test(tc, test_log_tail_keeps_the_newest_bytes);
    tcase_add_test(tc, test_log_tail_hangs_and_fails);
    suite_add_tcase(s, tc);
    tc = tcase_create("billing");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_billing);
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
