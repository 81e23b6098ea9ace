/* runpod_http.c -- the RunPod client object and one HTTP exchange over libcurl (see
 * runpod_http.h, runpod.h).
 *
 * Shell module: HTTP, sleeping and jitter live here. It must not log the API key, follow
 * redirects (the bearer header would travel with them) or turn TLS verification off.
 */
#include "runpod_http.h"

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
#include "runpod_catalog.h"

/* curl writes up to CURL_ERROR_SIZE bytes into the error buffer. */
_Static_assert(sizeof(((HttpResp *)0)->error) >= CURL_ERROR_SIZE, "HttpResp.error too small");

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
    long long rate_limit_reserve;
    pthread_mutex_t rng_lock; /* jitter source shared by the create threads */
    uint64_t rng;
    /* RunPod's rate limit as last seen (runpod_catalog.h), under rate_lock */
    pthread_mutex_t rate_lock;
    bool rate_seen, rate_header_seen;
    long long rate_header_ms;       /* monotonic time of the last RateLimit field */
    long long retry_after_until_ms; /* monotonic end of the last 429's Retry-After; 0 none */
    RateQuota rate;                 /* parsed from the fields below (age 0) */
    char rate_raw[RATE_RAW_MAX];
    char rate_policy_raw[RATE_RAW_MAX];
};

/* ---------------------------------------------------------------------------------------- */
/* time, sleep, jitter */

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void runpod_http_sleep_ms(long ms)
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
    c->rate_limit_reserve = opts->rate_limit_reserve > 0 ? opts->rate_limit_reserve : 0;
    if (pthread_mutex_init(&c->rng_lock, NULL) != 0) {
        free(c->auth_header);
        free(c);
        return STATUS_ERR_INTERNAL;
    }
    if (pthread_mutex_init(&c->rate_lock, NULL) != 0) {
        pthread_mutex_destroy(&c->rng_lock);
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
    pthread_mutex_destroy(&c->rate_lock);
    free(c);
}

/* ---------------------------------------------------------------------------------------- */
/* one HTTP exchange */

/* A stream keeps its newest keep_bytes: older bytes slide out. Sets ended_max once max_bytes
 * came (this chunk is still kept, then the read ends). */
static void stream_window(HttpResp *r, const char **data, size_t *n)
{
    HttpStream *s = r->stream;
    s->received += *n;
    s->last_data_ms = now_ms();
    if (s->received >= s->max_bytes)
        s->ended_max = true;
    if (*n > s->keep_bytes) {
        *data += *n - s->keep_bytes;
        *n = s->keep_bytes;
        r->len = 0;
        s->window_slid = true;
    } else if (r->len + *n > s->keep_bytes) {
        size_t drop = r->len + *n - s->keep_bytes;
        memmove(r->body, r->body + drop, r->len - drop);
        r->len -= drop;
        s->window_slid = true;
    }
}

/* Ends a stream that went quiet after data came (libcurl calls this about once a second, and
 * more often while data flows). */
static int stream_progress(void *userp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                           curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    HttpStream *s = ((HttpResp *)userp)->stream;
    if (s->received > 0 && now_ms() - s->last_data_ms >= s->idle_ms) {
        s->ended_idle = true;
        return 1;
    }
    return 0;
}

static size_t write_cb(char *data, size_t size, size_t nmemb, void *userp)
{
    HttpResp *r = userp;
    size_t n = size * nmemb, taken = n;
    const char *src = data;
    if (r->stream)
        stream_window(r, &src, &n);
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
    memcpy(r->body + r->len, src, n);
    r->len += n;
    r->body[r->len] = '\0';
    if (r->stream && r->stream->ended_max)
        return 0; /* enough read: makes curl end the transfer (CURLE_WRITE_ERROR) */
    return taken;
}

/* The value of header line data[0..n) when its name is `name` (lower case, with the colon):
 * blanks and the line end trimmed. Returns its length, or -1 for another header. */
static long header_value(const char *data, size_t n, const char *name, const char **value)
{
    size_t nl = strlen(name);
    if (n <= nl || strncasecmp(data, name, nl) != 0)
        return -1;
    size_t i = nl, end = n;
    while (i < n && (data[i] == ' ' || data[i] == '\t'))
        i++;
    while (end > i && (data[end - 1] == '\r' || data[end - 1] == '\n' || data[end - 1] == ' ' ||
                       data[end - 1] == '\t'))
        end--;
    *value = data + i;
    return (long)(end - i);
}

/* Appends one line's value to a structured field (repeated lines join with ", ", RFC 9110). */
static void field_append(char *field, size_t cap, bool *has, bool *overflow, const char *v,
                         long len)
{
    size_t have = strlen(field);
    size_t need = have + (*has ? 2 : 0) + (size_t)len;
    if (need + 1 > cap) {
        *overflow = true;
    } else {
        snprintf(field + have, cap - have, "%s%.*s", *has ? ", " : "", (int)len, v);
    }
    *has = true;
}

static size_t header_cb(char *data, size_t size, size_t nitems, void *userp)
{
    HttpResp *r = userp;
    size_t n = size * nitems;
    const char *v = NULL;
    long len;
    if (n >= 7 && strncmp(data, "HTTP/", 5) == 0) {
        /* A new response (an interim 1xx, or after a redirect we do not follow): its fields
         * replace the previous ones. */
        r->has_retry_after = r->has_ratelimit = r->has_policy = false;
        r->ratelimit_overflow = r->policy_overflow = false;
        r->retry_after[0] = r->ratelimit[0] = r->policy[0] = '\0';
    } else if ((len = header_value(data, n, "retry-after:", &v)) >= 0) {
        snprintf(r->retry_after, sizeof r->retry_after, "%.*s", (int)len, v);
        r->has_retry_after = true;
    } else if ((len = header_value(data, n, "ratelimit:", &v)) >= 0) {
        field_append(r->ratelimit, sizeof r->ratelimit, &r->has_ratelimit, &r->ratelimit_overflow,
                     v, len);
    } else if ((len = header_value(data, n, "ratelimit-policy:", &v)) >= 0) {
        field_append(r->policy, sizeof r->policy, &r->has_policy, &r->policy_overflow, v, len);
    }
    return n;
}

static void resp_reset(HttpResp *r, size_t limit)
{
    HttpStream *stream = r->stream; /* kept: it says how to read, not what was read */
    free(r->body);
    memset(r, 0, sizeof *r);
    r->limit = limit;
    r->stream = stream;
}

void runpod_http_resp_free(HttpResp *r)
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
                           r->stream ? "Accept: text/event-stream, application/problem+json"
                                     : "Accept: application/json, application/problem+json",
                           "Expect:"};
    long timeout_ms = r->stream ? r->stream->timeout_ms : c->request_timeout_ms;
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
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS,
                     c->connect_timeout_ms < timeout_ms ? c->connect_timeout_ms : timeout_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
    if (r->stream) {
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, stream_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, r);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    }
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
    if (r->stream && rc != CURLE_OK) {
        /* A stream is always cut by us: after a 2xx, a cut is the end of a good read. */
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
        r->stream->ended_timeout = rc == CURLE_OPERATION_TIMEDOUT;
        if (r->status >= 200 && r->status < 300 &&
            (rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_ABORTED_BY_CALLBACK ||
             (rc == CURLE_WRITE_ERROR && r->stream->ended_max)))
            rc = CURLE_OK;
    }
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

/* ---------------------------------------------------------------------------------------- */
/* RunPod's rate limit as this client saw it (runpod_catalog.h)                                 */

/* Records one response's RateLimit fields and, for a 429, its Retry-After. */
static void note_rate_limit(RunpodClient *c, const HttpResp *r)
{
    if (r->xport != RP_XPORT_OK || (!r->has_ratelimit && r->status != 429))
        return;
    long long now = now_ms();
    pthread_mutex_lock(&c->rate_lock);
    if (r->has_ratelimit) {
        const char *lim = r->ratelimit_overflow ? NULL : r->ratelimit;
        const char *pol = r->has_policy && !r->policy_overflow ? r->policy : NULL;
        bool was_malformed = c->rate.malformed;
        if (ratelimit_parse(lim, pol, &c->rate) != STATUS_OK) {
            c->rate.known = false;
            c->rate.malformed = true;
        }
        snprintf(c->rate_raw, sizeof c->rate_raw, "%s", lim ? lim : "");
        snprintf(c->rate_policy_raw, sizeof c->rate_policy_raw, "%s", pol ? pol : "");
        c->rate_header_ms = now;
        c->rate_header_seen = true;
        if (c->rate.malformed && !was_malformed)
            log_warn("runpod.ratelimit_unreadable",
                     "status=%ld bytes=%zu msg=\"RunPod's RateLimit header could not be read; the "
                     "quota is unknown until a readable one arrives (429s still stop calls)\"",
                     r->status, strlen(r->ratelimit));
    }
    if (r->status == 429) {
        /* What RunPod said, up to an hour (the wait before a retry is capped separately). */
        long ms = r->has_retry_after ? retry_after_ms(r->retry_after, 3600000L) : -1;
        c->retry_after_until_ms = now + (ms >= 0 ? ms : 1000);
    }
    c->rate_seen = true;
    pthread_mutex_unlock(&c->rate_lock);
}

bool runpod_client_rate_limit(RunpodClient *c, RunpodRateSeen *out)
{
    memset(out, 0, sizeof *out);
    out->quota.retry_after_sec = -1;
    out->retry_after_left_sec = -1;
    if (!c)
        return false;
    long long now = now_ms();
    pthread_mutex_lock(&c->rate_lock);
    out->seen = c->rate_seen;
    out->header_seen = c->rate_header_seen;
    if (c->rate_header_seen) {
        out->quota = c->rate;
        snprintf(out->ratelimit, sizeof out->ratelimit, "%s", c->rate_raw);
        snprintf(out->policy, sizeof out->policy, "%s", c->rate_policy_raw);
    }
    long long base = c->rate_header_seen ? c->rate_header_ms : now;
    out->quota.age_sec = (double)(now - base) / 1000.0;
    out->quota.retry_after_sec = -1;
    if (c->retry_after_until_ms > now) {
        out->retry_after_left_sec = (double)(c->retry_after_until_ms - now) / 1000.0;
        out->quota.retry_after_sec = (double)(c->retry_after_until_ms - base) / 1000.0;
    }
    pthread_mutex_unlock(&c->rate_lock);
    return out->seen;
}

long long runpod_client_create_allowance(RunpodClient *c)
{
    RunpodRateSeen seen;
    if (!runpod_client_rate_limit(c, &seen))
        return -1;
    return ratelimit_create_allowance(&seen.quota, c->rate_limit_reserve, 0);
}

/* Sends one request and classifies it; updates info (attempts, status, class, detail). */
RunpodErrorClass runpod_http_attempt(RunpodClient *c, RunpodOp op, const char *method,
                                     const char *path, const char *body, HttpResp *r,
                                     RunpodCallInfo *info, int attempt)
{
    resp_reset(r, c->max_response_bytes);
    http_once(c, method, path, body, r);
    note_rate_limit(c, r);
    RunpodErrorClass cls = retry_classify(op, r->xport, r->status);
    info->attempts++;
    info->http_status = (int)r->status;
    info->error = cls;
    info->detail[0] = '\0';
    if (cls != RP_OK) {
        /* RunPod's problem text may echo what it was sent (the key, a worker env value): it is
         * scrubbed whole, before anything truncates it, so no part of a secret survives a cut
         * (issue 12 review). */
        char title[1024] = "", detail[4096] = "", raw[5200], clean[5200];
        raw[0] = '\0';
        if (r->xport == RP_XPORT_OK && r->body &&
            runpod_json_parse_problem(r->body, r->len, title, sizeof title, detail,
                                      sizeof detail) == STATUS_OK &&
            (title[0] || detail[0]))
            snprintf(raw, sizeof raw, "%s%s%s", title, title[0] && detail[0] ? ": " : "", detail);
        else if (r->xport != RP_XPORT_OK)
            snprintf(raw, sizeof raw, "%s", r->error);
        else
            snprintf(raw, sizeof raw, "HTTP %ld", r->status);
        log_scrub(raw, clean, sizeof clean);
        snprintf(info->detail, sizeof info->detail, "%.*s", (int)sizeof info->detail - 1, clean);
    }
    log_debug("runpod.request", "method=%s path=%s status=%ld attempt=%d duration_ms=%lld error=%s",
              method, path, r->status, attempt, r->duration_ms, runpod_error_str(cls));
    return cls;
}

/* The wait before repeating after decision d. */
long runpod_http_delay_ms(RunpodClient *c, RetryDecision d, int attempt, const HttpResp *r)
{
    if (d == RETRY_AFTER_HEADER) {
        long ms = retry_after_ms(r->retry_after, c->retry_after_max_ms);
        if (ms >= 0)
            return ms;
    }
    return retry_backoff_ms(attempt, c->backoff_base_ms, c->backoff_max_ms, next_random(c));
}

/* Runs one call with the retry policy of SPEC 7. On return r holds the last response. */
RunpodErrorClass runpod_http_call(RunpodClient *c, RunpodOp op, const char *method,
                                  const char *path, const char *body, HttpResp *r,
                                  RunpodCallInfo *info)
{
    for (int attempt = 1;; attempt++) {
        RunpodErrorClass cls = runpod_http_attempt(c, op, method, path, body, r, info, attempt);
        if (cls == RP_OK)
            return cls;
        RetryDecision d = retry_decide(cls, attempt, c->max_retries, r->has_retry_after);
        if (d == RETRY_NO)
            return cls;
        long delay = runpod_http_delay_ms(c, d, attempt, r);
        log_warn("runpod.retry",
                 "method=%s path=%s status=%ld attempt=%d error=%s delay_ms=%ld detail=%s", method,
                 path, r->status, attempt, runpod_error_str(cls), delay, info->detail);
        runpod_http_sleep_ms(delay);
    }
}

Status runpod_http_get_parsed(RunpodClient *c, const char *path, const char *log_path,
                              RunpodBodyParser parse, void *ctx, RunpodCallInfo *info)
{
    HttpResp r = {0};
    Status st = STATUS_ERR_API;
    RunpodErrorClass cls = runpod_http_call(c, RP_OP_LIST, "GET", path, NULL, &r, info);
    if (cls == RP_OK) {
        char err[256] = "";
        Status pst = parse(r.body, r.len, ctx, err, sizeof err);
        if (pst == STATUS_OK) {
            st = STATUS_OK;
            goto out;
        }
        info->error = RP_PARSE;
        snprintf(info->detail, sizeof info->detail, "%s", err);
        if (pst == STATUS_ERR_NOMEM)
            st = STATUS_ERR_NOMEM;
    }
    runpod_http_log_final_error("GET", log_path, info);
out:
    runpod_http_resp_free(&r);
    return st;
}

void runpod_http_log_final_error(const char *method, const char *path, const RunpodCallInfo *info)
{
    log_warn("runpod.error", "method=%s path=%s status=%d error=%s attempts=%d detail=%s", method,
             path, info->http_status, runpod_error_str(info->error), info->attempts, info->detail);
}

int runpod_http_max_retries(const RunpodClient *c)
{
    return c->max_retries;
}

RunpodErrorClass runpod_http_stream(RunpodClient *c, const char *path, HttpStream *s, HttpResp *r,
                                    RunpodCallInfo *info)
{
    s->received = 0;
    s->window_slid = s->ended_idle = s->ended_timeout = s->ended_max = false;
    s->last_data_ms = now_ms();
    r->stream = s;
    RunpodErrorClass cls = runpod_http_attempt(c, RP_OP_GET, "GET", path, NULL, r, info, 1);
    r->stream = NULL;
    return cls;
}
