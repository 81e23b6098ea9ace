/* runpod.c -- RunPod REST v2 client over libcurl (see runpod.h).
 *
 * Shell module: HTTP, sleeping, threads and logging live here; what an answer means is decided
 * by retry.c and runpod_json.c. It must not log the API key, follow redirects (the bearer
 * header would travel with them) or turn TLS verification off.
 */
#include "runpod.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#ifndef ORCH_VERSION
#define ORCH_VERSION "0.0.0"
#endif

#define DEFAULT_CONNECT_TIMEOUT_MS 10000L
#define DEFAULT_REQUEST_TIMEOUT_MS 30000L
#define DEFAULT_MAX_RESPONSE_BYTES ((size_t)4 << 20)
#define DEFAULT_BACKOFF_BASE_MS 500L
#define DEFAULT_BACKOFF_MAX_MS 8000L
#define URL_MAX 1024

struct RunpodClient {
    char base_url[URL_MAX]; /* without a trailing slash */
    char *auth_header;      /* "Authorization: Bearer <key>" (heap, wiped on free) */
    char user_agent[96];
    long connect_timeout_ms;
    long request_timeout_ms;
    int max_retries;
    size_t max_response_bytes;
    long backoff_base_ms;
    long backoff_max_ms;
    long retry_after_max_ms;
    pthread_mutex_t rng_lock; /* jitter source shared by the create threads */
    uint64_t rng;
};

/* One HTTP exchange. */
typedef struct {
    RunpodTransport xport;
    long status;
    char *body; /* NUL-terminated, heap */
    size_t len;
    size_t cap;
    size_t limit;
    bool too_big;
    bool has_retry_after;
    char retry_after[32];
    char error[CURL_ERROR_SIZE];
    long long duration_ms;
} HttpResp;

/* ---------------------------------------------------------------------------------------- */
/* time, sleep, jitter */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static uint32_t next_random(RunpodClient *c)
{
    pthread_mutex_lock(&c->rng_lock);
    /* xorshift64*: jitter only needs to spread clients apart, not be unpredictable. */
    uint64_t x = c->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    c->rng = x;
    pthread_mutex_unlock(&c->rng_lock);
    return (uint32_t)((x * 2685821657736338717ULL) >> 32);
}

/* ---------------------------------------------------------------------------------------- */
/* client */

static bool has_control_chars(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return true;
    return false;
}

Status runpod_client_new(const RunpodOptions *opts, RunpodClient **out)
{
    if (!opts || !out)
        return STATUS_ERR_INTERNAL;
    const char *url = opts->base_url;
    if (!url || (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0) ||
        has_control_chars(url)) {
        log_error("runpod.config_invalid",
                  "msg=\"RUNPOD_API_BASE_URL must start with https:// (or http:// for a local "
                  "fake)\" base_url=%s",
                  url ? url : "(null)");
        return STATUS_ERR_CONFIG;
    }
    if (!opts->api_key || !opts->api_key[0] || has_control_chars(opts->api_key) ||
        strchr(opts->api_key, ' ')) {
        log_error("runpod.config_invalid",
                  "msg=\"RUNPOD_API_KEY is empty or contains spaces or control characters\"");
        return STATUS_ERR_CONFIG;
    }
    RunpodClient *c = calloc(1, sizeof *c);
    if (!c)
        return STATUS_ERR_NOMEM;
    int n = snprintf(c->base_url, sizeof c->base_url, "%s", url);
    if (n < 0 || (size_t)n >= sizeof c->base_url - 64) {
        free(c);
        log_error("runpod.config_invalid", "msg=\"RUNPOD_API_BASE_URL is too long\"");
        return STATUS_ERR_CONFIG;
    }
    while (n > 0 && c->base_url[n - 1] == '/')
        c->base_url[--n] = '\0';
    size_t hlen = strlen("Authorization: Bearer ") + strlen(opts->api_key) + 1;
    c->auth_header = malloc(hlen);
    if (!c->auth_header) {
        free(c);
        return STATUS_ERR_NOMEM;
    }
    snprintf(c->auth_header, hlen, "Authorization: Bearer %s", opts->api_key);
    snprintf(c->user_agent, sizeof c->user_agent, "orchestrator/%s (libcurl/%s)", ORCH_VERSION,
             curl_version_info(CURLVERSION_NOW)->version);
    c->connect_timeout_ms =
        opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    c->request_timeout_ms =
        opts->request_timeout_ms > 0 ? opts->request_timeout_ms : DEFAULT_REQUEST_TIMEOUT_MS;
    c->max_retries = opts->max_retries > 0 ? opts->max_retries : 0;
    c->max_response_bytes =
        opts->max_response_bytes > 0 ? opts->max_response_bytes : DEFAULT_MAX_RESPONSE_BYTES;
    c->backoff_base_ms =
        opts->backoff_base_ms > 0 ? opts->backoff_base_ms : DEFAULT_BACKOFF_BASE_MS;
    c->backoff_max_ms = opts->backoff_max_ms > 0 ? opts->backoff_max_ms : DEFAULT_BACKOFF_MAX_MS;
    c->retry_after_max_ms =
        opts->retry_after_max_ms > 0 ? opts->retry_after_max_ms : RETRY_AFTER_DEFAULT_MAX_MS;
    if (pthread_mutex_init(&c->rng_lock, NULL) != 0) {
        free(c->auth_header);
        free(c);
        return STATUS_ERR_INTERNAL;
    }
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    c->rng = ((uint64_t)ts.tv_sec * 1000000007ULL) ^ (uint64_t)ts.tv_nsec ^
             ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)c;
    if (c->rng == 0)
        c->rng = 0x9e3779b97f4a7c15ULL;
    *out = c;
    return STATUS_OK;
}

void runpod_client_free(RunpodClient *c)
{
    if (!c)
        return;
    if (c->auth_header) {
        /* volatile stores so the wipe is not optimised away */
        volatile char *p = c->auth_header;
        while (*p)
            *p++ = '\0';
        free(c->auth_header);
    }
    pthread_mutex_destroy(&c->rng_lock);
    free(c);
}

/* ---------------------------------------------------------------------------------------- */
/* one HTTP exchange */

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    HttpResp *r = userp;
    size_t n = size * nmemb;
    if (r->len + n > r->limit) {
        r->too_big = true;
        return 0; /* makes curl abort with CURLE_WRITE_ERROR */
    }
    if (r->len + n + 1 > r->cap) {
        size_t ncap = r->cap ? r->cap : 4096;
        while (ncap < r->len + n + 1)
            ncap *= 2;
        char *nb = realloc(r->body, ncap);
        if (!nb)
            return 0;
        r->body = nb;
        r->cap = ncap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

static size_t header_cb(char *data, size_t size, size_t nitems, void *userp)
{
    HttpResp *r = userp;
    size_t n = size * nitems;
    static const char name[] = "retry-after:";
    size_t nl = sizeof name - 1;
    if (n > nl && strncasecmp(data, name, nl) == 0) {
        size_t i = nl, j = 0;
        while (i < n && (data[i] == ' ' || data[i] == '\t'))
            i++;
        while (i < n && data[i] != '\r' && data[i] != '\n' && j + 1 < sizeof r->retry_after)
            r->retry_after[j++] = data[i++];
        r->retry_after[j] = '\0';
        r->has_retry_after = true;
    }
    return n;
}

static void resp_reset(HttpResp *r, size_t limit)
{
    free(r->body);
    memset(r, 0, sizeof *r);
    r->limit = limit;
}

static void resp_free(HttpResp *r)
{
    free(r->body);
    r->body = NULL;
}

/* Sends one request; fills r->xport, r->status, r->body. Never retries. */
static void http_once(RunpodClient *c, const char *method, const char *path, const char *body,
                      HttpResp *r)
{
    long long t0 = now_ms();
    char url[URL_MAX + 128];
    snprintf(url, sizeof url, "%s%s", c->base_url, path);
    struct curl_slist *hdrs = NULL, *tmp;
    const char *lines[] = {c->auth_header, "Content-Type: application/json",
                           "Accept: application/json, application/problem+json", "Expect:"};
    CURL *h = curl_easy_init();
    r->xport = RP_XPORT_ERROR;
    if (!h) {
        snprintf(r->error, sizeof r->error, "curl_easy_init failed");
        goto out;
    }
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        tmp = curl_slist_append(hdrs, lines[i]);
        if (!tmp) {
            snprintf(r->error, sizeof r->error, "out of memory building headers");
            goto out;
        }
        hdrs = tmp;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, c->user_agent);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->request_timeout_ms);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
#if LIBCURL_VERSION_NUM >= 0x075500
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->error);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(body ? strlen(body) : 0));
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK) {
        r->xport = RP_XPORT_OK;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    } else if (rc == CURLE_OPERATION_TIMEDOUT) {
        r->xport = RP_XPORT_TIMEOUT;
    } else if (rc == CURLE_WRITE_ERROR && r->too_big) {
        r->xport = RP_XPORT_TOO_LARGE;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
        snprintf(r->error, sizeof r->error, "response larger than %zu bytes", r->limit);
    }
    if (rc != CURLE_OK && !r->error[0])
        snprintf(r->error, sizeof r->error, "%s", curl_easy_strerror(rc));
out:
    curl_slist_free_all(hdrs);
    if (h)
        curl_easy_cleanup(h);
    r->duration_ms = now_ms() - t0;
}

/* Sends one request and classifies it; updates info (attempts, status, class, detail). */
static RunpodErrorClass attempt_once(RunpodClient *c, RunpodOp op, const char *method,
                                     const char *path, const char *body, HttpResp *r,
                                     RunpodCallInfo *info, int attempt)
{
    resp_reset(r, c->max_response_bytes);
    http_once(c, method, path, body, r);
    RunpodErrorClass cls = retry_classify(op, r->xport, r->status);
    info->attempts++;
    info->http_status = (int)r->status;
    info->error = cls;
    info->detail[0] = '\0';
    if (cls != RP_OK) {
        char title[128] = "", detail[400] = "";
        if (r->xport == RP_XPORT_OK && r->body &&
            runpod_json_parse_problem(r->body, r->len, title, sizeof title, detail,
                                      sizeof detail) == STATUS_OK &&
            (title[0] || detail[0]))
            snprintf(info->detail, sizeof info->detail, "%.100s%s%.390s", title,
                     title[0] && detail[0] ? ": " : "", detail);
        else if (r->xport != RP_XPORT_OK)
            snprintf(info->detail, sizeof info->detail, "%s", r->error);
        else
            snprintf(info->detail, sizeof info->detail, "HTTP %ld", r->status);
    }
    log_debug("runpod.request", "method=%s path=%s status=%ld attempt=%d duration_ms=%lld error=%s",
              method, path, r->status, attempt, r->duration_ms, runpod_error_str(cls));
    return cls;
}

/* The wait before repeating after decision d. */
static long retry_delay_ms(RunpodClient *c, RetryDecision d, int attempt, const HttpResp *r)
{
    if (d == RETRY_AFTER_HEADER) {
        long ms = retry_after_ms(r->retry_after, c->retry_after_max_ms);
        if (ms >= 0)
            return ms;
    }
    return retry_backoff_ms(attempt, c->backoff_base_ms, c->backoff_max_ms, next_random(c));
}

/* Runs one call with the retry policy of SPEC 7. On return r holds the last response. */
static RunpodErrorClass call_retrying(RunpodClient *c, RunpodOp op, const char *method,
                                      const char *path, const char *body, HttpResp *r,
                                      RunpodCallInfo *info)
{
    for (int attempt = 1;; attempt++) {
        RunpodErrorClass cls = attempt_once(c, op, method, path, body, r, info, attempt);
        if (cls == RP_OK)
            return cls;
        RetryDecision d = retry_decide(cls, attempt, c->max_retries, r->has_retry_after);
        if (d == RETRY_NO)
            return cls;
        long delay = retry_delay_ms(c, d, attempt, r);
        log_warn("runpod.retry",
                 "method=%s path=%s status=%ld attempt=%d error=%s delay_ms=%ld detail=%s", method,
                 path, r->status, attempt, runpod_error_str(cls), delay, info->detail);
        sleep_ms(delay);
    }
}

static void log_final_error(const char *method, const char *path, const RunpodCallInfo *info)
{
    log_warn("runpod.error", "method=%s path=%s status=%d error=%s attempts=%d detail=%s", method,
             path, info->http_status, runpod_error_str(info->error), info->attempts, info->detail);
}

/* Validates a pod id (it goes into the URL path) and builds "/v2/pods/<id>". */
static bool pod_path(const char *pod_id, char *path, size_t cap)
{
    if (!pod_id || !pod_id[0] || strlen(pod_id) > 63)
        return false;
    for (const char *p = pod_id; *p; p++) {
        char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-';
        if (!ok)
            return false;
    }
    snprintf(path, cap, "/v2/pods/%s", pod_id);
    return true;
}

/* ---------------------------------------------------------------------------------------- */
/* get, list, terminate */

Status runpod_get_pod(RunpodClient *c, const char *pod_id, Pod *out, RunpodCallInfo *info)
{
    RunpodCallInfo local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    char path[96];
    if (!c || !out || !pod_path(pod_id, path, sizeof path)) {
        info->error = RP_BAD_REQUEST;
        snprintf(info->detail, sizeof info->detail, "invalid pod id");
        return STATUS_ERR_USAGE;
    }
    HttpResp r = {0};
    Status st = STATUS_ERR_API;
    RunpodErrorClass cls = call_retrying(c, RP_OP_GET, "GET", path, NULL, &r, info);
    if (cls == RP_NOT_FOUND) {
        st = STATUS_ERR_NOT_FOUND;
        goto out;
    }
    if (cls == RP_OK) {
        char err[256];
        if (runpod_json_parse_pod(r.body, r.len, out, err, sizeof err) == STATUS_OK) {
            st = STATUS_OK;
            goto out;
        }
        info->error = RP_PARSE;
        snprintf(info->detail, sizeof info->detail, "%s", err);
    }
    log_final_error("GET", path, info);
out:
    resp_free(&r);
    return st;
}

Status runpod_list_pods(RunpodClient *c, PodList *out, RunpodCallInfo *info)
{
    RunpodCallInfo local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    if (!c || !out)
        return STATUS_ERR_INTERNAL;
    HttpResp r = {0};
    Status st = STATUS_ERR_API;
    RunpodErrorClass cls = call_retrying(c, RP_OP_LIST, "GET", "/v2/pods", NULL, &r, info);
    if (cls == RP_OK) {
        char err[256];
        Status pst = runpod_json_parse_list(r.body, r.len, out, err, sizeof err);
        if (pst == STATUS_OK) {
            st = STATUS_OK;
            goto out;
        }
        info->error = RP_PARSE;
        snprintf(info->detail, sizeof info->detail, "%s", err);
        if (pst == STATUS_ERR_NOMEM)
            st = STATUS_ERR_NOMEM;
    }
    log_final_error("GET", "/v2/pods", info);
out:
    resp_free(&r);
    return st;
}

Status runpod_terminate_pod(RunpodClient *c, const char *pod_id, RunpodCallInfo *info)
{
    RunpodCallInfo local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    char path[96];
    if (!c || !pod_path(pod_id, path, sizeof path)) {
        info->error = RP_BAD_REQUEST;
        snprintf(info->detail, sizeof info->detail, "invalid pod id");
        return STATUS_ERR_USAGE;
    }
    HttpResp r = {0};
    RunpodErrorClass cls = call_retrying(c, RP_OP_TERMINATE, "DELETE", path, NULL, &r, info);
    resp_free(&r);
    if (cls == RP_OK || cls == RP_NOT_FOUND)
        return STATUS_OK; /* 404: already gone, which is what we wanted */
    log_final_error("DELETE", path, info);
    return STATUS_ERR_API;
}

/* ---------------------------------------------------------------------------------------- */
/* create */

/* Looks for a pod named name. Returns 1 found (*out filled), 0 not found, -1 list failed. */
static int find_by_name(RunpodClient *c, const char *name, Pod *out, RunpodCallInfo *total,
                        char *why, size_t whycap)
{
    PodList list = {0};
    RunpodCallInfo li;
    Status st = runpod_list_pods(c, &list, &li);
    total->attempts += li.attempts;
    if (st != STATUS_OK) {
        snprintf(why, whycap, "%s (HTTP %d)%s%.300s", runpod_error_str(li.error), li.http_status,
                 li.detail[0] ? ": " : "", li.detail);
        return -1;
    }
    int found = 0;
    for (size_t i = 0; i < list.count; i++) {
        if (strcmp(list.pods[i].name, name) != 0 || list.pods[i].status == POD_STATUS_TERMINATED)
            continue;
        if (found) {
            log_error("runpod.create_duplicate",
                      "name=%s pod_id=%s kept_pod_id=%s msg=\"two pods share a name\"", name,
                      list.pods[i].id, out->id);
            continue;
        }
        *out = list.pods[i];
        found = 1;
    }
    pod_list_clear(&list);
    return found;
}

static void create_fail(PodCreateResult *out, RunpodErrorClass cls, const char *name,
                        const char *gpu_type)
{
    out->status = STATUS_ERR_API;
    out->info.error = cls;
    log_warn("runpod.error",
             "method=POST path=/v2/pods name=%s gpu_type=%s status=%d error=%s attempts=%d "
             "detail=%s",
             name, gpu_type, out->info.http_status, runpod_error_str(cls), out->info.attempts,
             out->info.detail);
}

Status runpod_create_pod(RunpodClient *c, const PodCreateSpec *spec, const char *const *gpu_types,
                         size_t n_gpu_types, PodCreateResult *out)
{
    if (!out)
        return STATUS_ERR_INTERNAL;
    memset(out, 0, sizeof *out);
    if (!c || !spec || !gpu_types || n_gpu_types == 0) {
        out->status = STATUS_ERR_USAGE;
        out->info.error = RP_BAD_REQUEST;
        snprintf(out->info.detail, sizeof out->info.detail, "no GPU types to try");
        return out->status;
    }
    PodCreateSpec *s = malloc(sizeof *s); /* ~50 KB: keep it off thread stacks */
    HttpResp r = {0};
    if (!s) {
        out->status = STATUS_ERR_NOMEM;
        return out->status;
    }
    *s = *spec;
    RunpodErrorClass last = RP_NO_CAPACITY;
    for (size_t t = 0; t < n_gpu_types; t++) {
        const char *type = gpu_types[t] ? gpu_types[t] : "";
        snprintf(s->gpu_type, sizeof s->gpu_type, "%s", type);
        char *body = NULL;
        Status bst = runpod_json_build_create(s, &body);
        if (bst != STATUS_OK) {
            out->status = bst;
            out->info.error = RP_INVALID;
            snprintf(out->info.detail, sizeof out->info.detail,
                     "cannot encode the create request for %s (%s)", s->name, status_str(bst));
            log_error("runpod.error", "method=POST path=/v2/pods name=%s detail=%s", s->name,
                      out->info.detail);
            goto done;
        }
        for (int attempt = 1;; attempt++) {
            RunpodErrorClass cls =
                attempt_once(c, RP_OP_CREATE, "POST", "/v2/pods", body, &r, &out->info, attempt);
            if (cls == RP_OK) {
                char err[256];
                if (runpod_json_parse_pod(r.body, r.len, &out->pod, err, sizeof err) == STATUS_OK) {
                    snprintf(out->gpu_type_used, sizeof out->gpu_type_used, "%s", type);
                    out->status = STATUS_OK;
                    free(body);
                    goto done;
                }
                /* Created, but we cannot read the answer: find the pod rather than retry. */
                cls = RP_PARSE;
                out->info.error = RP_PARSE;
                snprintf(out->info.detail, sizeof out->info.detail, "%s", err);
            }
            if (cls == RP_NO_CAPACITY) {
                if (out->n_no_capacity <
                    sizeof out->no_capacity_types / sizeof out->no_capacity_types[0])
                    snprintf(out->no_capacity_types[out->n_no_capacity++],
                             sizeof out->no_capacity_types[0], "%s", type);
                log_info("runpod.no_capacity", "name=%s gpu_type=%s detail=%s", s->name, type,
                         out->info.detail);
                last = cls;
                break; /* next GPU type */
            }
            if (cls == RP_RATE_LIMITED) {
                RetryDecision d = retry_decide(cls, attempt, c->max_retries, r.has_retry_after);
                if (d == RETRY_NO) {
                    create_fail(out, cls, s->name, type);
                    free(body);
                    goto done;
                }
                long delay = retry_delay_ms(c, d, attempt, &r);
                log_warn("runpod.retry",
                         "method=POST path=/v2/pods name=%s status=%ld attempt=%d error=%s "
                         "delay_ms=%ld",
                         s->name, r.status, attempt, runpod_error_str(cls), delay);
                sleep_ms(delay);
                continue;
            }
            if (!retry_is_ambiguous(cls) && cls != RP_PARSE) {
                /* 401/403, 402, 410, 422, 409, ...: the same on every type; stop at once. */
                create_fail(out, cls, s->name, type);
                free(body);
                goto done;
            }
            /* Ambiguous: the pod may exist. Wait first (gives the API time to list it), then
             * look it up by its unique name before creating again. */
            RetryDecision d =
                retry_decide(cls == RP_PARSE ? RP_SERVER : cls, attempt, c->max_retries, false);
            char saved_detail[sizeof out->info.detail];
            int saved_status = out->info.http_status;
            snprintf(saved_detail, sizeof saved_detail, "%s", out->info.detail);
            if (d != RETRY_NO) {
                long delay = retry_delay_ms(c, d, attempt, &r);
                log_warn("runpod.retry",
                         "method=POST path=/v2/pods name=%s status=%ld attempt=%d error=%s "
                         "delay_ms=%ld detail=%s msg=\"looking the pod up by name first\"",
                         s->name, r.status, attempt, runpod_error_str(cls), delay, saved_detail);
                sleep_ms(delay);
            }
            char why[400] = "";
            int found = find_by_name(c, s->name, &out->pod, &out->info, why, sizeof why);
            out->info.http_status = saved_status;
            log_info("runpod.create_lookup", "name=%s found=%s error=%s", s->name,
                     found > 0 ? "true" : (found == 0 ? "false" : "unknown"),
                     runpod_error_str(cls));
            if (found > 0) {
                out->found_existing = true;
                out->status = STATUS_OK;
                out->info.error = RP_OK;
                snprintf(out->info.detail, sizeof out->info.detail,
                         "created by an earlier attempt that failed with %s",
                         runpod_error_str(cls));
                snprintf(out->gpu_type_used, sizeof out->gpu_type_used, "%s",
                         out->pod.gpu_id[0] ? out->pod.gpu_id : type);
                log_warn("runpod.create_found_existing", "name=%s pod_id=%s after=%s", s->name,
                         out->pod.id, runpod_error_str(cls));
                free(body);
                goto done;
            }
            if (found < 0) {
                snprintf(out->info.detail, sizeof out->info.detail,
                         "create outcome unknown (%.150s); pod list failed: %.200s; not "
                         "creating again",
                         saved_detail, why);
                out->outcome_unknown = true;
                create_fail(out, cls, s->name, type);
                free(body);
                goto done;
            }
            if (cls == RP_TIMEOUT || cls == RP_TRANSPORT) {
                /* No answer: the request may still be running at RunPod and create the pod
                 * after this look-up. Creating again could give one name two pods (and the
                 * fleet one pod above MAX_ACTIVE_GPUS); the next cycle's pod list adopts the
                 * pod by name instead, or the row fails after SPAWN_POD_ID_GRACE_SEC. */
                snprintf(out->info.detail, sizeof out->info.detail,
                         "create outcome unknown (%.150s); not listed by name yet; not creating "
                         "again",
                         saved_detail);
                out->outcome_unknown = true;
                create_fail(out, cls, s->name, type);
                free(body);
                goto done;
            }
            snprintf(out->info.detail, sizeof out->info.detail, "%s", saved_detail);
            if (d == RETRY_NO) {
                create_fail(out, cls, s->name, type);
                free(body);
                goto done;
            }
        }
        free(body);
    }
    /* Every type answered 400. */
    out->info.error = last;
    create_fail(out, last, s->name, n_gpu_types ? gpu_types[n_gpu_types - 1] : "");
done:
    resp_free(&r);
    free(s);
    return out->status;
}

/* ---------------------------------------------------------------------------------------- */
/* concurrent creates */

typedef struct {
    RunpodClient *c;
    const PodCreateSpec *specs;
    size_t n;
    const char *const *types;
    size_t n_types;
    PodCreateResult *results;
    pthread_mutex_t lock;
    size_t next;
} CreateBatch;

static void *create_worker(void *arg)
{
    CreateBatch *b = arg;
    for (;;) {
        pthread_mutex_lock(&b->lock);
        size_t i = b->next < b->n ? b->next++ : b->n;
        pthread_mutex_unlock(&b->lock);
        if (i >= b->n)
            break;
        runpod_create_pod(b->c, &b->specs[i], b->types, b->n_types, &b->results[i]);
    }
    return NULL;
}

Status runpod_create_pods(RunpodClient *c, const PodCreateSpec *specs, size_t n,
                          const char *const *gpu_types, size_t n_gpu_types,
                          PodCreateResult *results)
{
    if (n == 0)
        return STATUS_OK;
    if (!specs || !results)
        return STATUS_ERR_INTERNAL;
    CreateBatch b = {.c = c,
                     .specs = specs,
                     .n = n,
                     .types = gpu_types,
                     .n_types = n_gpu_types,
                     .results = results};
    if (pthread_mutex_init(&b.lock, NULL) != 0)
        return STATUS_ERR_INTERNAL;
    pthread_t threads[RUNPOD_CREATE_MAX_THREADS];
    size_t want = n < RUNPOD_CREATE_MAX_THREADS ? n : RUNPOD_CREATE_MAX_THREADS;
    size_t started = 0;
    for (; started < want; started++)
        if (pthread_create(&threads[started], NULL, create_worker, &b) != 0)
            break;
    if (started < want)
        log_warn("runpod.threads", "wanted=%zu started=%zu msg=\"running the rest inline\"", want,
                 started);
    create_worker(&b); /* the caller helps (and does everything if no thread started) */
    for (size_t i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    pthread_mutex_destroy(&b.lock);
    for (size_t i = 0; i < n; i++)
        if (results[i].status != STATUS_OK)
            return STATUS_ERR_PARTIAL;
    return STATUS_OK;
}
