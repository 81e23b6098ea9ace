/* test_runpod_client.c -- runpod.c against the fake RunPod (tests/fakes/fake_runpod.py): every
 * classification row of SPEC 7, create-5xx-but-created, Retry-After, timeouts, GPU fallback,
 * concurrent creates, headers, the boot hook, and that the API key never reaches the logs.
 *
 * One fake serves the whole binary (started in main, so a forked test cannot leak it); each
 * test resets it in a checked fixture. No database is needed. */
#include <arpa/inet.h>
#include <check.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fake_runpod.h"
#include "log.h"
#include "runpod.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define KEY "rpa_TESTKEY_0123456789abcdef"

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

static RunpodClient *client_custom(const char *url, const char *key, long timeout_ms, int retries,
                                   size_t max_bytes, long retry_after_max_ms)
{
    RunpodOptions o = {.base_url = url,
                       .api_key = key,
                       .connect_timeout_ms = 2000,
                       .request_timeout_ms = timeout_ms,
                       .max_retries = retries,
                       .max_response_bytes = max_bytes,
                       .backoff_base_ms = 20,
                       .backoff_max_ms = 100,
                       .retry_after_max_ms = retry_after_max_ms};
    RunpodClient *c = NULL;
    ck_assert_int_eq(runpod_client_new(&o, &c), STATUS_OK);
    return c;
}

static RunpodClient *client_with(long timeout_ms, int retries)
{
    return client_custom(fake_runpod_url(fake), KEY, timeout_ms, retries, 0, 5000);
}

static void setup(void)
{
    fake_runpod_reset(fake);
    fake_runpod_config(fake, "{\"provision_sec\": 0.1, \"start_sec\": 0.1, "
                             "\"boot_delay_sec\": 0.4}");
    rp = client_with(3000, 3);
}

static void teardown(void)
{
    runpod_client_free(rp);
    rp = NULL;
}

static PodCreateSpec *make_spec(const char *name)
{
    PodCreateSpec *s = calloc(1, sizeof *s);
    ck_assert_ptr_nonnull(s);
    snprintf(s->name, sizeof s->name, "%s", name);
    snprintf(s->image, sizeof s->image, "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04");
    snprintf(s->gpu_type, sizeof s->gpu_type, "ignored");
    snprintf(s->cloud, sizeof s->cloud, "SECURE");
    s->disk_gb = 50;
    snprintf(s->ports[0], sizeof s->ports[0], "22/tcp");
    snprintf(s->ports[1], sizeof s->ports[1], "8888/http");
    s->n_ports = 2;
    snprintf(s->network_volume_id, sizeof s->network_volume_id, "agv6w2qcg7");
    snprintf(s->volume_mount_path, sizeof s->volume_mount_path, "/workspace");
    snprintf(s->env[0].name, sizeof s->env[0].name, "WORKER_ID");
    snprintf(s->env[0].value, sizeof s->env[0].value, "%s", name);
    s->n_env = 1;
    return s;
}

static const char *const TYPES_AB[] = {"GPU-A", "GPU-B"};

/* Creates a pod through the client; returns its id in id (cap 64). */
static void create_ok(const char *name, char id[64])
{
    PodCreateSpec *s = make_spec(name);
    PodCreateResult r;
    ck_assert_int_eq(runpod_create_pod(rp, s, TYPES_AB, 1, &r), STATUS_OK);
    snprintf(id, 64, "%s", r.pod.id);
    free(s);
}

/* Adds a pod directly in the fake (no request log entry). */
static void inject_pod(const char *name, char id[64])
{
    char body[256];
    snprintf(body, sizeof body, "{\"name\": \"%s\"}", name);
    cJSON *j = fake_runpod_control(fake, "/_fake/pods", body);
    snprintf(id, 64, "%s", cJSON_GetObjectItemCaseSensitive(j, "id")->valuestring);
    cJSON_Delete(j);
}

static PodStatus wait_status(const char *id, PodStatus want, long max_ms, Pod *out)
{
    long long end = mono_ms() + max_ms;
    Pod p;
    memset(&p, 0, sizeof p);
    do {
        ck_assert_int_eq(runpod_get_pod(rp, id, &p, NULL), STATUS_OK);
        if (p.status == want)
            break;
        nap_ms(50);
    } while (mono_ms() < end);
    if (out)
        *out = p;
    return p.status;
}

/* ---------------------------------------------------------------------------------------- */

START_TEST(test_runpod_client_lifecycle)
{
    fake_runpod_config(fake, "{\"boot_delay_sec\": 60}");
    PodCreateSpec *s = make_spec("gpu-life-1");
    PodCreateResult r;
    ck_assert_int_eq(runpod_create_pod(rp, s, TYPES_AB, 2, &r), STATUS_OK);
    ck_assert_int_eq(r.status, STATUS_OK);
    ck_assert_int_eq(r.info.error, RP_OK);
    ck_assert_int_eq(r.info.http_status, 201);
    ck_assert_int_eq(r.info.attempts, 1);
    ck_assert_str_eq(r.gpu_type_used, "GPU-A");
    ck_assert_uint_eq(r.n_no_capacity, 0);
    ck_assert(!r.found_existing);
    ck_assert_str_eq(r.pod.name, "gpu-life-1");
    ck_assert_int_eq(r.pod.status, POD_STATUS_PROVISIONING);
    ck_assert_uint_eq(strlen(r.pod.id), 14);
    ck_assert(r.pod.created_at_epoch > 1700000000LL);
    ck_assert_double_eq_tol(r.pod.cost_per_hr, 0.69, 1e-9);

    /* RUNNING with runtime null while "pulling the image" is normal. */
    Pod p;
    ck_assert_int_eq(wait_status(r.pod.id, POD_STATUS_RUNNING, 3000, &p), POD_STATUS_RUNNING);
    ck_assert(!p.has_runtime);
    fake_runpod_config(fake, "{\"boot_delay_sec\": 0}");
    long long end = mono_ms() + 3000;
    do {
        ck_assert_int_eq(runpod_get_pod(rp, r.pod.id, &p, NULL), STATUS_OK);
    } while (!p.has_runtime && mono_ms() < end);
    ck_assert(p.has_runtime);

    PodList l = {0};
    RunpodCallInfo info;
    ck_assert_int_eq(runpod_list_pods(rp, &l, &info), STATUS_OK);
    ck_assert_int_eq(info.error, RP_OK);
    ck_assert_uint_eq(l.count, 1);
    ck_assert_str_eq(l.pods[0].id, r.pod.id);
    ck_assert_str_eq(l.pods[0].gpu_id, "GPU-A");
    pod_list_clear(&l);

    /* Terminate: 204, then 404 = already gone = success. */
    ck_assert_int_eq(runpod_terminate_pod(rp, r.pod.id, &info), STATUS_OK);
    ck_assert_int_eq(info.error, RP_OK);
    ck_assert_int_eq(info.http_status, 204);
    ck_assert_int_eq(runpod_terminate_pod(rp, r.pod.id, &info), STATUS_OK);
    ck_assert_int_eq(info.error, RP_NOT_FOUND);
    ck_assert_int_eq(info.http_status, 404);
    ck_assert_int_eq(info.attempts, 1);
    ck_assert_int_eq(runpod_get_pod(rp, r.pod.id, &p, &info), STATUS_ERR_NOT_FOUND);
    ck_assert_int_eq(info.error, RP_NOT_FOUND);
    ck_assert_int_eq(runpod_list_pods(rp, &l, NULL), STATUS_OK);
    ck_assert_uint_eq(l.count, 0);
    pod_list_clear(&l);
    free(s);
}
END_TEST

/* One row per classification: the fault, the call, what the client must report. */
typedef enum { CALL_CREATE, CALL_GET, CALL_LIST, CALL_DELETE } Call;
static const struct {
    const char *name;
    Call call;
    const char *method, *path;
    int status, count;
    Status want_st;
    RunpodErrorClass want;
    int want_http, want_attempts;
} ROWS[] = {
    {"create 401 stops", CALL_CREATE, "POST", "/v2/pods", 401, -1, STATUS_ERR_API, RP_AUTH, 401, 1},
    {"create 403 stops", CALL_CREATE, "POST", "/v2/pods", 403, -1, STATUS_ERR_API, RP_AUTH, 403, 1},
    {"create 402 stops", CALL_CREATE, "POST", "/v2/pods", 402, -1, STATUS_ERR_API, RP_BALANCE, 402,
     1},
    {"create 410 stops", CALL_CREATE, "POST", "/v2/pods", 410, -1, STATUS_ERR_API, RP_RETIRED, 410,
     1},
    {"create 422 never retried", CALL_CREATE, "POST", "/v2/pods", 422, -1, STATUS_ERR_API,
     RP_INVALID, 422, 1},
    {"create 409 stops", CALL_CREATE, "POST", "/v2/pods", 409, -1, STATUS_ERR_API, RP_CONFLICT, 409,
     1},
    {"create 429 then ok", CALL_CREATE, "POST", "/v2/pods", 429, 1, STATUS_OK, RP_OK, 201, 2},
    {"get 400", CALL_GET, "GET", "/v2/pods/*", 400, -1, STATUS_ERR_API, RP_BAD_REQUEST, 400, 1},
    {"get 401", CALL_GET, "GET", "/v2/pods/*", 401, -1, STATUS_ERR_API, RP_AUTH, 401, 1},
    {"get 404", CALL_GET, "GET", "/v2/pods/*", 404, -1, STATUS_ERR_NOT_FOUND, RP_NOT_FOUND, 404, 1},
    {"get 410", CALL_GET, "GET", "/v2/pods/*", 410, -1, STATUS_ERR_API, RP_RETIRED, 410, 1},
    {"get 418 unexpected", CALL_GET, "GET", "/v2/pods/*", 418, -1, STATUS_ERR_API, RP_UNEXPECTED,
     418, 1},
    {"get 429 once", CALL_GET, "GET", "/v2/pods/*", 429, 1, STATUS_OK, RP_OK, 200, 2},
    {"get 503 twice", CALL_GET, "GET", "/v2/pods/*", 503, 2, STATUS_OK, RP_OK, 200, 3},
    {"list 403", CALL_LIST, "GET", "/v2/pods", 403, -1, STATUS_ERR_API, RP_AUTH, 403, 1},
    {"list 500 forever", CALL_LIST, "GET", "/v2/pods", 500, -1, STATUS_ERR_API, RP_SERVER, 500, 4},
    {"list 502 twice", CALL_LIST, "GET", "/v2/pods", 502, 2, STATUS_OK, RP_OK, 200, 3},
    {"list 429 forever", CALL_LIST, "GET", "/v2/pods", 429, -1, STATUS_ERR_API, RP_RATE_LIMITED,
     429, 4},
    {"delete 409", CALL_DELETE, "DELETE", "/v2/pods/*", 409, -1, STATUS_ERR_API, RP_CONFLICT, 409,
     1},
    {"delete 402", CALL_DELETE, "DELETE", "/v2/pods/*", 402, -1, STATUS_ERR_API, RP_BALANCE, 402,
     1},
    {"delete 404 = success", CALL_DELETE, "DELETE", "/v2/pods/*", 404, -1, STATUS_OK, RP_NOT_FOUND,
     404, 1},
    {"delete 500 once", CALL_DELETE, "DELETE", "/v2/pods/*", 500, 1, STATUS_OK, RP_OK, 204, 2},
};

START_TEST(test_runpod_client_classification)
{
    char id[64];
    inject_pod("gpu-row", id);
    char rule[512];
    snprintf(rule, sizeof rule,
             "{\"rules\": [{\"method\": \"%s\", \"path\": \"%s\", \"status\": %d, \"count\": %d, "
             "\"retry_after\": 0}]}",
             ROWS[_i].method, ROWS[_i].path, ROWS[_i].status, ROWS[_i].count);
    fake_runpod_faults(fake, rule);
    RunpodCallInfo info;
    Status st;
    switch (ROWS[_i].call) {
    case CALL_CREATE: {
        PodCreateSpec *s = make_spec("gpu-row-create");
        PodCreateResult r;
        st = runpod_create_pod(rp, s, TYPES_AB, 2, &r);
        info = r.info;
        ck_assert_int_eq(r.status, st);
        /* A final error stops at once: the second GPU type is never tried. */
        if (st != STATUS_OK)
            ck_assert_int_eq(fake_runpod_count_requests(fake, "POST", "/v2/pods"), 1);
        free(s);
        break;
    }
    case CALL_GET: {
        Pod p;
        st = runpod_get_pod(rp, id, &p, &info);
        if (st == STATUS_OK)
            ck_assert_str_eq(p.id, id);
        break;
    }
    case CALL_LIST: {
        PodList l = {0};
        st = runpod_list_pods(rp, &l, &info);
        pod_list_clear(&l);
        break;
    }
    default:
        st = runpod_terminate_pod(rp, id, &info);
        break;
    }
    ck_assert_msg(st == ROWS[_i].want_st, "%s: status %s", ROWS[_i].name, status_str(st));
    ck_assert_msg(info.error == ROWS[_i].want, "%s: class %s", ROWS[_i].name,
                  runpod_error_str(info.error));
    ck_assert_msg(info.http_status == ROWS[_i].want_http, "%s: http %d", ROWS[_i].name,
                  info.http_status);
    ck_assert_msg(info.attempts == ROWS[_i].want_attempts, "%s: attempts %d", ROWS[_i].name,
                  info.attempts);
    if (st != STATUS_OK && ROWS[_i].want != RP_NOT_FOUND)
        ck_assert_msg(info.detail[0] != '\0', "%s: no detail", ROWS[_i].name);
}
END_TEST

START_TEST(test_runpod_client_wrong_key)
{
    RunpodClient *bad = client_custom(fake_runpod_url(fake), "wrong-key", 3000, 3, 0, 0);
    PodList l = {0};
    RunpodCallInfo info;
    ck_assert_int_eq(runpod_list_pods(bad, &l, &info), STATUS_ERR_API);
    ck_assert_int_eq(info.error, RP_AUTH);
    ck_assert_int_eq(info.http_status, 401);
    ck_assert_int_eq(info.attempts, 1);
    ck_assert_ptr_nonnull(strstr(info.detail, "Unauthorized"));
    runpod_client_free(bad);
}
END_TEST

START_TEST(test_runpod_client_create_5xx_but_created)
{
    /* RunPod has created pods yet answered 5xx: the client must find the pod by name and
     * never create a second one. */
    fake_runpod_faults(fake, "{\"rules\": [{\"method\": \"POST\", \"path\": \"/v2/pods\", "
                             "\"status\": 500, \"create_anyway\": true, \"count\": 1}]}");
    PodCreateSpec *s = make_spec("gpu-ambiguous-1");
    PodCreateResult r;
    ck_assert_int_eq(runpod_create_pod(rp, s, TYPES_AB, 2, &r), STATUS_OK);
    ck_assert(r.found_existing);
    ck_assert_str_eq(r.pod.name, "gpu-ambiguous-1");
    ck_assert_str_eq(r.gpu_type_used, "GPU-A");
    ck_assert_int_eq(r.info.attempts, 2); /* the POST and the list */
    ck_assert_int_eq(fake_runpod_count_requests(fake, "POST", "/v2/pods"), 1);
    ck_assert_int_eq(fake_runpod_stat(fake, "pods_alive"), 1);
    ck_assert_int_eq(fake_runpod_stat(fake, "max_pods_alive"), 1);
    free(s);
}
END_TEST

START_TEST(test_runpod_client_create_timeout_but_created)
{
    RunpodClient *quick = client_with(400, 3);
    fake_runpod_faults(fake, "{\"rules\": [{\"method\": \"POST\", \"path\": \"/v2/pods\", "
                             "\"create_anyway\": true, \"delay_sec\": 1.5, \"count\": 1}]}");
    PodCreateSpec *s = make_spec("gpu-ambiguous-2");
    PodCreateResult r;
    ck_assert_int_eq(runpod_create_pod(quick, s, TYPES_AB, 2, &r), STATUS_OK);
    ck_assert(r.found_existing);
    ck_assert_int_eq(r.info.error, RP_OK);
    nap_ms(1500); /* the fake logs the slow POST when it finally answers */
    ck_assert_int_eq(fake_runpod_count_requests(fake, "POST", "/v2/pods"), 1);
    ck_assert_int_eq(fake_runpod_stat(fake, "max_pods_alive"), 1);
    runpod_client_free(quick);
    free(s);
}
END_TEST

START_TEST(test_runpod_client_create_5xx_not_created)
{
    /* Issue 12.2: a 5xx is ambiguous (RunPod has been seen to create and answer 5xx, and its
     * list lags a create), so the name is never POSTed again: one POST, one look-up by name,
     * and the outcome stays unknown for the next cycles to settle. */
    fake_runpod_faults(fake, "{\"rules\": [{\"method\": \"POST\", \"path\": \"/v2/pods\", "
                             "\"status\": 503, \"count\": 2}]}");
    PodCreateSpec *s = make_spec("gpu-retry-1");
    PodCreateResult r;
    ck_assert_int_eq(runpod_create_pod(rp, s, TYPES_AB, 2, &r), STATUS_ERR_API);
    ck_assert(!r.found_existing);
    ck_assert(r.outcome_unknown);
    ck_assert_msg(strstr(r.info.detail, "outcome unknown") != NULL, "%s", r.info.detail);
    ck_assert_int_eq(fake_runpod_count_requests(fake, "POST", "/v2/pods"), 1);
    ck_assert_int_eq(fake_runpod_count_requests(fake, "GET", "/v2/pods"), 1);
    ck_assert_int_eq(r.info.attempts, 2);
    ck_assert_int_eq(fake_runpod_stat(fake, "max_pods_alive"), 0);
    free(s);
}
END_TEST

START_TEST(test_runpod_client_create_5xx_created_list_lags)
{
    /* The create happened, answered 503, and the list does not show the pod yet: still one
     * POST (the old client re-POSTed here and made a second pod with the same name). */
    fake_runpod_faults(fake, "{\"rules\": [{\"method\": \"POST\", \"path\": \"/v2/pods\", "
                             "\"status\": 503, \"create_anyway\": true, \"count\": -1}], "
                             "\"list_lag_sec\": 30}");
    PodCreateSpec *s = make_spec("gpu-lag-1");
    PodCreateResult r;
    ck_assert_int_eq(runpod_create_pod(rp, s, TYPES_AB, 2, &r), STATUS_ERR_API);
    ck_assert(r.outcome_unknown);
    ck_assert_int_eq(fake_runpod_count_requests(fake, "POST", "/v2/pods"), 1);
    ck_assert_int_eq(fake_runpod_stat(fake, "max_pods_alive"), 1);
    free(s);
}
END_TEST

START_TEST(test_runpod_client_create_5xx_and_list_fails)
{
    /* The create may have happened and the look-up fails: stop rather than risk two pods. */
    fake_runpod_faults(fake, "{\"rules\": [{\"method\": \"POST\", \"path\": \"/v2/pods\", "
                             "\"status\": 500, \"create_anyway\": true, \"count\": 1}, "
                             "{\"method\": \"GET\", \"path\": \"/v2/pods\", \"status\": 500, "
                             "\"count\": -1}]}");
    PodCreateSpec *s = make_spec("gpu-ambiguous-3");
    PodCreateResult r;
    ck_assert_int_eq(runpod_create_pod(rp, s, TYPES_AB, 2, &r), STATUS_ERR_API);
    ck_assert_int_eq(r.info.error, RP_SERVER);
    ck_assert(r.outcome_unknown);
    ck_assert_msg(strstr(r.info.detail, "pod list failed") != NULL, "%s", r.info.detail);
    ck_assert_int_eq(fake_runpod_count_requests(fake, "POST", "/v2/pods"), 1);
    ck_assert_int_eq(fake_runpod_stat(fake, "pods_alive"), 1);
    free(s);
}
END_TEST

START_TEST(test_runpod_client_create_5xx_forever)
{
    fake_runpod_faults(fake, "{\"rules\": [{\"method\": \"POST\", \"path\": \"/v2/pods\", "
                             "\"status\": 502, \"count\": -1}]}");
    PodCreateSpec *s = make_spec("gpu-down-1");
    PodCreateResult r;
    ck_assert_int_eq(runpod_create_pod(rp, s, TYPES_AB, 2, &r), STATUS_ERR_API);
    ck_assert_int_eq(r.info.error, RP_SERVER);
    ck_assert_int_eq(r.info.http_status, 502);
    ck_assert(r.outcome_unknown);
    /* One POST and one look-up, whatever the retry budget; the next type is not tried either
     * (the first may still have been created). */
    ck_assert_int_eq(fake_runpod_count_requests(fake, "POST", "/v2/pods"), 1);
    ck_assert_int_eq(fake_runpod_count_requests(fake, "GET", "/v2/pods"), 1);
    ck_assert_int_eq(fake_runpod_stat(fake, "pods_alive"), 0);
    free(s);
}
END_TEST

START_TEST(test_runpod_client_gpu_fallback)
{
    fake_runpod_faults(fake, "{\"no_capacity\": [\"GPU-A\"]}");
    PodCreateSpec *s = make_spec("gpu-fallback-1");
    PodCreateResult r;
    ck_assert_int_eq(runpod_create_pod(rp, s, TYPES_AB, 2, &r), STATUS_OK);
    ck_assert_str_eq(r.gpu_type_used, "GPU-B");
    ck_assert_str_eq(r.pod.gpu_id, "GPU-B");
    ck_assert_uint_eq(r.n_no_capacity, 1);
    ck_assert_str_eq(r.no_capacity_types[0], "GPU-A");
    ck_assert_int_eq(r.info.attempts, 2);

    fake_runpod_faults(fake, "{\"no_capacity\": [\"GPU-A\", \"GPU-B\"]}");
    snprintf(s->name, sizeof s->name, "gpu-fallback-2");
    ck_assert_int_eq(runpod_create_pod(rp, s, TYPES_AB, 2, &r), STATUS_ERR_API);
    ck_assert_int_eq(r.info.error, RP_NO_CAPACITY);
    ck_assert_int_eq(r.info.http_status, 400);
    ck_assert_uint_eq(r.n_no_capacity, 2);
    ck_assert_str_eq(r.no_capacity_types[1], "GPU-B");
    ck_assert_ptr_nonnull(strstr(r.info.detail, "no longer any instances"));
    ck_assert_int_eq(fake_runpod_stat(fake, "pods_alive"), 1);

    const char *const none[] = {NULL};
    ck_assert_int_eq(runpod_create_pod(rp, s, none, 0, &r), STATUS_ERR_USAGE);
    free(s);
}
END_TEST

START_TEST(test_runpod_client_retry_after)
{
    fake_runpod_faults(fake, "{\"rules\": [{\"method\": \"GET\", \"path\": \"/v2/pods\", "
                             "\"status\": 429, \"retry_after\": 1, \"count\": 1}]}");
    PodList l = {0};
    RunpodCallInfo info;
    long long t0 = mono_ms();
    ck_assert_int_eq(runpod_list_pods(rp, &l, &info), STATUS_OK);
    long long waited = mono_ms() - t0;
    ck_assert_msg(waited >= 1000, "waited only %lld ms", waited);
    ck_assert_msg(waited < 2500, "waited %lld ms", waited);
    ck_assert_int_eq(info.attempts, 2);
    pod_list_clear(&l);

    /* A huge Retry-After is capped by the client (retry_after_max_ms = 300 here). */
    RunpodClient *capped = client_custom(fake_runpod_url(fake), KEY, 3000, 3, 0, 300);
    fake_runpod_faults(fake, "{\"rules\": [{\"method\": \"GET\", \"path\": \"/v2/pods\", "
                             "\"status\": 429, \"retry_after\": 3600, \"count\": 1}]}");
    t0 = mono_ms();
    ck_assert_int_eq(runpod_list_pods(capped, &l, &info), STATUS_OK);
    waited = mono_ms() - t0;
    ck_assert_msg(waited >= 300 && waited < 2000, "waited %lld ms", waited);
    pod_list_clear(&l);
    runpod_client_free(capped);
}
END_TEST

START_TEST(test_runpod_client_timeout)
{
    RunpodClient *quick = client_with(300, 1);
    fake_runpod_faults(fake, "{\"rules\": [{\"method\": \"GET\", \"path\": \"/v2/pods\", "
                             "\"delay_sec\": 2, \"count\": -1}]}");
    PodList l = {0};
    RunpodCallInfo info;
    long long t0 = mono_ms();
    ck_assert_int_eq(runpod_list_pods(quick, &l, &info), STATUS_ERR_API);
    long long took = mono_ms() - t0;
    ck_assert_int_eq(info.error, RP_TIMEOUT);
    ck_assert_int_eq(info.http_status, 0);
    ck_assert_int_eq(info.attempts, 2);
    ck_assert_msg(took < 1900, "took %lld ms: the timeout was not applied", took);
    runpod_client_free(quick);
}
END_TEST

START_TEST(test_runpod_client_transport)
{
    /* A port nobody listens on: bind, learn the port, close. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t alen = sizeof a;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", ntohs(a.sin_port));
    close(fd);
    RunpodClient *c = client_custom(url, KEY, 1000, 2, 0, 0);
    PodList l = {0};
    RunpodCallInfo info;
    ck_assert_int_eq(runpod_list_pods(c, &l, &info), STATUS_ERR_API);
    ck_assert_int_eq(info.error, RP_TRANSPORT);
    ck_assert_int_eq(info.attempts, 3);
    ck_assert(info.detail[0] != '\0');

    /* An ambiguous create whose look-up cannot run either: one attempt, no second create. */
    PodCreateSpec *s = make_spec("gpu-nowhere");
    PodCreateResult r;
    ck_assert_int_eq(runpod_create_pod(c, s, TYPES_AB, 2, &r), STATUS_ERR_API);
    ck_assert_int_eq(r.info.error, RP_TRANSPORT);
    ck_assert(r.outcome_unknown);
    ck_assert_ptr_nonnull(strstr(r.info.detail, "outcome unknown"));
    free(s);
    runpod_client_free(c);
}
END_TEST

START_TEST(test_runpod_client_bad_responses)
{
    RunpodClient *small = client_custom(fake_runpod_url(fake), KEY, 3000, 3, 1024, 0);
    fake_runpod_faults(fake, "{\"rules\": [{\"method\": \"GET\", \"path\": \"/v2/pods\", "
                             "\"status\": 200, \"body\": \"x\", \"body_repeat\": 100000, "
                             "\"count\": 1}]}");
    PodList l = {0};
    RunpodCallInfo info;
    ck_assert_int_eq(runpod_list_pods(small, &l, &info), STATUS_ERR_API);
    ck_assert_int_eq(info.error, RP_PARSE);
    ck_assert_int_eq(info.attempts, 1);
    ck_assert_ptr_nonnull(strstr(info.detail, "larger than"));
    runpod_client_free(small);

    char id[64];
    inject_pod("gpu-bad-body", id);
    fake_runpod_faults(fake, "{\"rules\": [{\"method\": \"GET\", \"path\": \"/v2/pods/*\", "
                             "\"status\": 200, \"body\": \"{\\\"id\\\": \", \"count\": 1}]}");
    Pod p;
    ck_assert_int_eq(runpod_get_pod(rp, id, &p, &info), STATUS_ERR_API);
    ck_assert_int_eq(info.error, RP_PARSE);
    ck_assert_ptr_nonnull(strstr(info.detail, "malformed"));
    /* A problem body that is not JSON still gives a usable detail. */
    fake_runpod_faults(fake, "{\"rules\": [{\"method\": \"GET\", \"path\": \"/v2/pods/*\", "
                             "\"status\": 502, \"body\": \"<html>bad gateway</html>\", "
                             "\"content_type\": \"text/html\", \"count\": -1}]}");
    ck_assert_int_eq(runpod_get_pod(rp, id, &p, &info), STATUS_ERR_API);
    ck_assert_int_eq(info.error, RP_SERVER);
    ck_assert_str_eq(info.detail, "HTTP 502");
    /* Invalid ids never reach the network. */
    ck_assert_int_eq(runpod_get_pod(rp, "../v2/pods", &p, &info), STATUS_ERR_USAGE);
    ck_assert_int_eq(runpod_terminate_pod(rp, "", &info), STATUS_ERR_USAGE);
    ck_assert_int_eq(info.attempts, 0);
}
END_TEST

START_TEST(test_runpod_client_concurrent_creates)
{
    enum { N = 20 };
    fake_runpod_faults(fake, "{\"create_latency_ms\": 300}");
    PodCreateSpec *specs = calloc(N, sizeof *specs);
    PodCreateResult *res = calloc(N, sizeof *res);
    ck_assert_ptr_nonnull(specs);
    ck_assert_ptr_nonnull(res);
    for (int i = 0; i < N; i++) {
        char name[64];
        snprintf(name, sizeof name, "gpu-par-%02d", i);
        PodCreateSpec *s = make_spec(name);
        specs[i] = *s;
        free(s);
    }
    long long t0 = mono_ms();
    ck_assert_int_eq(runpod_create_pods(rp, specs, N, TYPES_AB, 2, res), STATUS_OK);
    long long took = mono_ms() - t0;
    ck_assert_msg(took < 2000, "20 creates of 300 ms took %lld ms (sequential: 6000)", took);
    for (int i = 0; i < N; i++) {
        ck_assert_int_eq(res[i].status, STATUS_OK);
        ck_assert_str_eq(res[i].pod.name, specs[i].name);
        for (int j = 0; j < i; j++)
            ck_assert_str_ne(res[i].pod.id, res[j].pod.id);
    }
    ck_assert_int_eq(fake_runpod_stat(fake, "pods_alive"), N);

    /* One failing item makes the batch partial; the others still succeed. */
    fake_runpod_faults(fake, "{\"create_latency_ms\": 0, \"rules\": [{\"method\": \"POST\", "
                             "\"path\": \"/v2/pods\", \"status\": 422, \"count\": 1}]}");
    ck_assert_int_eq(runpod_create_pods(rp, specs, 3, TYPES_AB, 2, res), STATUS_ERR_PARTIAL);
    int failed = 0;
    for (int i = 0; i < 3; i++)
        failed += res[i].status != STATUS_OK;
    ck_assert_int_eq(failed, 1);
    ck_assert_int_eq(runpod_create_pods(rp, specs, 0, TYPES_AB, 2, res), STATUS_OK);
    free(specs);
    free(res);
}
END_TEST

static const char *header(const cJSON *req, const char *name)
{
    const cJSON *h;
    cJSON_ArrayForEach(h, cJSON_GetObjectItemCaseSensitive(req, "headers"))
    {
        if (h->string && strcasecmp(h->string, name) == 0 && cJSON_IsString(h))
            return h->valuestring;
    }
    return NULL;
}

START_TEST(test_runpod_client_headers)
{
    char id[64];
    create_ok("gpu-headers", id);
    Pod p;
    ck_assert_int_eq(runpod_get_pod(rp, id, &p, NULL), STATUS_OK);
    PodList l = {0};
    ck_assert_int_eq(runpod_list_pods(rp, &l, NULL), STATUS_OK);
    pod_list_clear(&l);
    ck_assert_int_eq(runpod_terminate_pod(rp, id, NULL), STATUS_OK);
    cJSON *reqs = fake_runpod_requests(fake);
    ck_assert_int_eq(cJSON_GetArraySize(reqs), 4);
    const cJSON *r;
    cJSON_ArrayForEach(r, reqs)
    {
        const char *ua = header(r, "User-Agent");
        ck_assert_ptr_nonnull(ua);
        ck_assert_msg(
            strncmp(ua, "orchestrator/" ORCH_VERSION, strlen("orchestrator/" ORCH_VERSION)) == 0,
            "User-Agent %s", ua);
        ck_assert_str_eq(header(r, "Authorization"), "Bearer <matched>");
        ck_assert_str_eq(header(r, "Content-Type"), "application/json");
    }
    /* The create body is exactly what CreatePodRequest allows. */
    const cJSON *post = cJSON_GetArrayItem(reqs, 0);
    const cJSON *body = cJSON_GetObjectItemCaseSensitive(post, "body");
    ck_assert(cJSON_IsObject(body));
    ck_assert_str_eq(cJSON_GetObjectItemCaseSensitive(body, "name")->valuestring, "gpu-headers");
    ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(body, "gpuTypeIds"));
    ck_assert_ptr_nonnull(cJSON_GetObjectItemCaseSensitive(body, "mounts"));
    cJSON_Delete(reqs);
}
END_TEST

START_TEST(test_runpod_client_key_never_logged)
{
    char path[] = "/tmp/runpod_log.XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    log_configure(LOG_DEBUG, LOG_FORMAT_JSON);
    log_set_fd(fd);
    /* Retries, a 429, an ambiguous create, errors, a wrong key (also secret), 404s. */
    fake_runpod_faults(fake, "{\"rules\": [{\"method\": \"POST\", \"path\": \"/v2/pods\", "
                             "\"status\": 500, \"create_anyway\": true, \"count\": 1}, "
                             "{\"method\": \"GET\", \"path\": \"/v2/pods\", \"status\": 429, "
                             "\"retry_after\": 0, \"count\": 1}, "
                             "{\"method\": \"GET\", \"path\": \"/v2/pods/*\", \"status\": 503, "
                             "\"count\": 2}]}");
    PodCreateSpec *s = make_spec("gpu-secret");
    PodCreateResult r;
    ck_assert_int_eq(runpod_create_pod(rp, s, TYPES_AB, 2, &r), STATUS_OK);
    Pod p;
    ck_assert_int_eq(runpod_get_pod(rp, r.pod.id, &p, NULL), STATUS_OK);
    ck_assert_int_eq(runpod_terminate_pod(rp, r.pod.id, NULL), STATUS_OK);
    ck_assert_int_eq(runpod_terminate_pod(rp, r.pod.id, NULL), STATUS_OK);
    RunpodClient *bad =
        client_custom(fake_runpod_url(fake), "rpa_OTHER_SECRET_KEY_987", 3000, 3, 0, 0);
    PodList l = {0};
    ck_assert_int_eq(runpod_list_pods(bad, &l, NULL), STATUS_ERR_API);
    runpod_client_free(bad);
    log_set_fd(2);
    log_configure(LOG_ERROR, LOG_FORMAT_TEXT);

    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    char *buf = calloc(1, (size_t)st.st_size + 1);
    ck_assert_ptr_nonnull(buf);
    ck_assert_int_eq(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
    close(fd);
    unlink(path);
    ck_assert_msg(strstr(buf, "runpod.request") != NULL, "no runpod.request events:\n%s", buf);
    ck_assert_ptr_nonnull(strstr(buf, "runpod.retry"));
    ck_assert_ptr_nonnull(strstr(buf, "runpod.create_found_existing"));
    ck_assert_ptr_nonnull(strstr(buf, "duration_ms"));
    ck_assert_msg(strstr(buf, KEY) == NULL, "API key in the log");
    ck_assert_msg(strstr(buf, "rpa_OTHER_SECRET_KEY_987") == NULL, "wrong key in the log");
    ck_assert_msg(strstr(buf, "Bearer") == NULL, "a bearer header in the log");
    free(buf);
    free(s);
}
END_TEST

START_TEST(test_runpod_client_fake_faults)
{
    /* 404 for a while right after create; killed from outside; pods that never boot. */
    fake_runpod_faults(fake, "{\"not_found_after_create_sec\": 30}");
    char id[64];
    create_ok("gpu-propagation", id);
    Pod p;
    RunpodCallInfo info;
    ck_assert_int_eq(runpod_get_pod(rp, id, &p, &info), STATUS_ERR_NOT_FOUND);
    PodList l = {0};
    ck_assert_int_eq(runpod_list_pods(rp, &l, NULL), STATUS_OK);
    ck_assert_uint_eq(l.count, 1);
    pod_list_clear(&l);

    fake_runpod_reset(fake);
    fake_runpod_config(fake, "{\"provision_sec\": 0, \"start_sec\": 0, \"boot_delay_sec\": 0}");
    fake_runpod_faults(fake, "{\"never_boot\": true}");
    create_ok("gpu-never-boots", id);
    nap_ms(300);
    ck_assert_int_eq(wait_status(id, POD_STATUS_RUNNING, 2000, &p), POD_STATUS_RUNNING);
    ck_assert(!p.has_runtime);

    fake_runpod_kill_pod(fake, id, "EXITED");
    ck_assert_int_eq(runpod_get_pod(rp, id, &p, NULL), STATUS_OK);
    ck_assert_int_eq(p.status, POD_STATUS_EXITED);
    ck_assert_double_eq(p.cost_per_hr, 0.0);
    fake_runpod_kill_pod(fake, id, "ERROR");
    ck_assert_int_eq(runpod_get_pod(rp, id, &p, NULL), STATUS_OK);
    ck_assert_int_eq(p.status, POD_STATUS_ERROR);
    fake_runpod_kill_pod(fake, id, "gone");
    ck_assert_int_eq(runpod_get_pod(rp, id, &p, NULL), STATUS_ERR_NOT_FOUND);
    ck_assert_int_eq(fake_runpod_stat(fake, "max_pods_alive"), 1);
    ck_assert_int_eq(fake_runpod_stat(fake, "pods_alive"), 0);
}
END_TEST

static pid_t boot_pid(void)
{
    cJSON *j = fake_runpod_control(fake, "/_fake/pods", NULL);
    const cJSON *pods = cJSON_GetObjectItemCaseSensitive(j, "pods");
    const cJSON *bp = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(pods, 0), "_boot_pid");
    pid_t pid = cJSON_IsNumber(bp) ? (pid_t)bp->valueint : 0;
    cJSON_Delete(j);
    return pid;
}

START_TEST(test_runpod_client_boot_hook)
{
    char dir[] = "/tmp/runpod_boot.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    fake_runpod_config(fake, "{\"boot_cmd\": \"echo \\\"$RUNPOD_POD_ID $WORKER_ID\\\" > "
                             "\\\"$OUT_DIR/booted\\\"; exec sleep 60\"}");
    PodCreateSpec *s = make_spec("gpu-boot-1");
    snprintf(s->env[1].name, sizeof s->env[1].name, "OUT_DIR");
    snprintf(s->env[1].value, sizeof s->env[1].value, "%s", dir);
    s->n_env = 2;
    PodCreateResult r;
    ck_assert_int_eq(runpod_create_pod(rp, s, TYPES_AB, 1, &r), STATUS_OK);
    char file[128], line[256] = "";
    snprintf(file, sizeof file, "%s/booted", dir);
    for (int i = 0; i < 100 && !line[0]; i++) {
        FILE *f = fopen(file, "r");
        if (f) {
            if (!fgets(line, sizeof line, f))
                line[0] = '\0';
            fclose(f);
        }
        if (!line[0])
            nap_ms(50);
    }
    char want[256];
    snprintf(want, sizeof want, "%s gpu-boot-1\n", r.pod.id);
    ck_assert_str_eq(line, want);
    pid_t pid = boot_pid();
    ck_assert_int_gt(pid, 0);
    ck_assert_int_eq(kill(pid, 0), 0);
    ck_assert_int_eq(runpod_terminate_pod(rp, r.pod.id, NULL), STATUS_OK);
    bool gone = false;
    for (int i = 0; i < 100 && !gone; i++) {
        gone = kill(pid, 0) != 0 && errno == ESRCH;
        if (!gone)
            nap_ms(50);
    }
    ck_assert_msg(gone, "boot process %d still alive after the pod was deleted", (int)pid);
    unlink(file);
    rmdir(dir);
    free(s);
}
END_TEST

START_TEST(test_runpod_client_options)
{
    int devnull = open("/dev/null", O_WRONLY);
    log_set_fd(devnull); /* the expected runpod.config_invalid errors */
    RunpodClient *c = NULL;
    RunpodOptions o = {.base_url = "ftp://x", .api_key = "k"};
    ck_assert_int_eq(runpod_client_new(&o, &c), STATUS_ERR_CONFIG);
    o.base_url = "https://api.runpod.io/";
    o.api_key = "";
    ck_assert_int_eq(runpod_client_new(&o, &c), STATUS_ERR_CONFIG);
    o.api_key = "key\r\nX-Evil: 1";
    ck_assert_int_eq(runpod_client_new(&o, &c), STATUS_ERR_CONFIG);
    ck_assert_ptr_null(c);
    o.api_key = "key";
    ck_assert_int_eq(runpod_client_new(&o, &c), STATUS_OK);
    runpod_client_free(c);
    runpod_client_free(NULL);
    log_set_fd(2);
    close(devnull);
}
END_TEST

static Suite *runpod_client_suite(void)
{
    Suite *s = suite_create("runpod_client");
    TCase *tc = tcase_create("test_runpod_client_calls");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_runpod_client_lifecycle);
    tcase_add_loop_test(tc, test_runpod_client_classification, 0, (int)ARRAY_LEN(ROWS));
    tcase_add_test(tc, test_runpod_client_wrong_key);
    tcase_add_test(tc, test_runpod_client_retry_after);
    tcase_add_test(tc, test_runpod_client_timeout);
    tcase_add_test(tc, test_runpod_client_transport);
    tcase_add_test(tc, test_runpod_client_bad_responses);
    tcase_add_test(tc, test_runpod_client_headers);
    tcase_add_test(tc, test_runpod_client_key_never_logged);
    tcase_add_test(tc, test_runpod_client_options);
    suite_add_tcase(s, tc);
    tc = tcase_create("test_runpod_client_create");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_runpod_client_create_5xx_but_created);
    tcase_add_test(tc, test_runpod_client_create_timeout_but_created);
    tcase_add_test(tc, test_runpod_client_create_5xx_not_created);
    tcase_add_test(tc, test_runpod_client_create_5xx_created_list_lags);
    tcase_add_test(tc, test_runpod_client_create_5xx_and_list_fails);
    tcase_add_test(tc, test_runpod_client_create_5xx_forever);
    tcase_add_test(tc, test_runpod_client_gpu_fallback);
    tcase_add_test(tc, test_runpod_client_concurrent_creates);
    suite_add_tcase(s, tc);
    tc = tcase_create("test_runpod_client_fake");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_runpod_client_fake_faults);
    tcase_add_test(tc, test_runpod_client_boot_hook);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* main() of the orchestrator does this once; so do we (runpod.h). */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return EXIT_FAILURE;
    log_configure(LOG_ERROR, LOG_FORMAT_TEXT);
    fake = fake_runpod_start(KEY, NULL);
    SRunner *sr = srunner_create(runpod_client_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    fake_runpod_stop(fake);
    curl_global_cleanup();
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
