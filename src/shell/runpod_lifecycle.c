/* runpod_lifecycle.c -- stop/start a pod, read its log tail, read the pod billing (see
 * runpod_lifecycle.h).
 *
 * Shell module: which request to send and how often; the exchange is runpod_http.c's.
 */
#include "runpod_lifecycle.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "runpod_http.h"

#define DEFAULT_TAIL_LINES 200
#define DEFAULT_LOG_TIMEOUT_MS 5000L
#define DEFAULT_LOG_IDLE_MS 1000L
#define DEFAULT_LOG_KEEP_BYTES ((size_t)64 << 10)

static void bad_input(RunpodCallInfo *info, const char *what)
{
    info->error = RP_BAD_REQUEST;
    snprintf(info->detail, sizeof info->detail, "%s", what);
}

/* Moves r's body to the caller (*body, *len); r no longer owns it. */
static Status take_body(HttpResp *r, char **body, size_t *len)
{
    if (!r->body) {
        r->body = malloc(1);
        if (!r->body)
            return STATUS_ERR_NOMEM;
        r->body[0] = '\0';
        r->len = 0;
    }
    *body = r->body;
    *len = r->len;
    r->body = NULL;
    return STATUS_OK;
}

Status runpod_pod_action(RunpodClient *c, const char *pod_id, const char *action, Pod *out,
                         RunpodCallInfo *info)
{
    RunpodCallInfo local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    char path[128];
    if (!c || !action || (strcmp(action, "stop") != 0 && strcmp(action, "start") != 0) ||
        !runpod_pod_path(pod_id, "/action", path, sizeof path)) {
        bad_input(info, "invalid pod id or action");
        return STATUS_ERR_USAGE;
    }
    char body[48];
    snprintf(body, sizeof body, "{\"action\":\"%s\"}", action);
    HttpResp r = {0};
    Status st = STATUS_ERR_API;
    for (int attempt = 1;; attempt++) {
        RunpodErrorClass cls =
            runpod_http_attempt(c, RP_OP_GET, "POST", path, body, &r, info, attempt);
        if (cls == RP_OK) {
            st = STATUS_OK;
            if (out) {
                char err[160];
                memset(out, 0, sizeof *out);
                if (runpod_json_parse_pod(r.body, r.len, out, err, sizeof err) != STATUS_OK)
                    log_warn("runpod.action_body", "pod_id=%s action=%s detail=%s", pod_id, action,
                             err); /* done all the same: the answer was 200 */
            }
            break;
        }
        /* Only a 429 means "not done, try later"; anything else is final here. */
        RetryDecision d =
            cls == RP_RATE_LIMITED
                ? retry_decide(cls, attempt, runpod_http_max_retries(c), r.has_retry_after)
                : RETRY_NO;
        if (d == RETRY_NO) {
            runpod_http_log_final_error("POST", path, info);
            break;
        }
        runpod_http_sleep_ms(runpod_http_delay_ms(c, d, attempt, &r));
    }
    runpod_http_resp_free(&r);
    return st;
}

Status runpod_pod_logs(RunpodClient *c, const char *pod_id, const PodLogOptions *opts, char **sse,
                       size_t *len, bool *window_slid, RunpodCallInfo *info)
{
    RunpodCallInfo local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    PodLogOptions o = opts ? *opts : (PodLogOptions){0};
    int tail = o.tail_lines > 0 ? (o.tail_lines > 5000 ? 5000 : o.tail_lines) : DEFAULT_TAIL_LINES;
    char suffix[48], path[160];
    snprintf(suffix, sizeof suffix, "/logs?tail=%d", tail);
    if (!c || !sse || !len || !runpod_pod_path(pod_id, suffix, path, sizeof path)) {
        bad_input(info, "invalid pod id");
        return STATUS_ERR_USAGE;
    }
    HttpStream s = {
        .timeout_ms = o.timeout_ms > 0 ? o.timeout_ms : DEFAULT_LOG_TIMEOUT_MS,
        .idle_ms = o.idle_ms > 0 ? o.idle_ms : DEFAULT_LOG_IDLE_MS,
        .keep_bytes = o.keep_bytes > 0 ? o.keep_bytes : DEFAULT_LOG_KEEP_BYTES,
    };
    s.max_bytes = s.keep_bytes * 8;
    HttpResp r = {0};
    RunpodErrorClass cls = runpod_http_stream(c, path, &s, &r, info);
    if (cls == RP_OK && s.ended_timeout && s.received == 0) {
        /* The answer began, then nothing came within the bound: a hanging stream. */
        cls = info->error = RP_TIMEOUT;
        snprintf(info->detail, sizeof info->detail,
                 "no log line within %ld ms (the stream stayed silent)", s.timeout_ms);
    }
    Status st = STATUS_ERR_API;
    if (cls == RP_OK) {
        st = take_body(&r, sse, len);
        if (window_slid)
            *window_slid = s.window_slid;
    } else {
        runpod_http_log_final_error("GET", path, info);
    }
    runpod_http_resp_free(&r);
    return st;
}

Status runpod_billing_pods(RunpodClient *c, int last_n, char **body, size_t *len,
                           RunpodCallInfo *info)
{
    RunpodCallInfo local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    if (!c || !body || !len || last_n < 1) {
        bad_input(info, "invalid billing query");
        return STATUS_ERR_USAGE;
    }
    char path[96];
    snprintf(path, sizeof path, "/v2/billing/pods?bucketSize=hour&lastN=%d", last_n);
    HttpResp r = {0};
    RunpodErrorClass cls = runpod_http_call(c, RP_OP_GET, "GET", path, NULL, &r, info);
    Status st = STATUS_ERR_API;
    if (cls == RP_OK)
        st = take_body(&r, body, len);
    else
        runpod_http_log_final_error("GET", "/v2/billing/pods", info);
    runpod_http_resp_free(&r);
    return st;
}
