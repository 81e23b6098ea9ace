/* runpod_http.h -- one RunPod HTTP exchange and its retry policy (internal to the shell).
 *
 * Shell module, used by runpod.c only: the client object, libcurl, timeouts, the response cap,
 * Retry-After and backoff with jitter. What an answer means is decided by the pure retry.c and
 * runpod_json.c; which calls to make by runpod.c.
 */
#ifndef ORCH_RUNPOD_HTTP_H
#define ORCH_RUNPOD_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#include "ratelimit.h"
#include "retry.h"
#include "runpod.h"

/* A read of a stream that never ends by itself (the SSE pod log, issue 16): it ends on a total
 * timeout, after idle_ms without data once data came, or when max_bytes arrived; only the last
 * keep_bytes are kept. Any of these endings after a 2xx is a complete read. */
typedef struct {
    long timeout_ms;   /* total, connect included */
    long idle_ms;      /* end this long after the last data (once some came) */
    size_t keep_bytes; /* the newest bytes kept */
    size_t max_bytes;  /* stop reading after this many */
    /* filled by the read */
    size_t received;  /* bytes received in all */
    bool window_slid; /* older bytes were dropped to keep keep_bytes */
    long long last_data_ms;
    bool ended_idle, ended_timeout, ended_max;
} HttpStream;

/* One HTTP exchange's answer. Start it as {0}; free the body with runpod_http_resp_free. */
typedef struct {
    HttpStream *stream; /* a stream read (runpod_http_stream); NULL for every other call */
    RunpodTransport xport;
    long status;
    char *body; /* NUL-terminated, heap */
    size_t len;
    size_t cap;
    size_t limit;
    bool too_big;
    bool has_retry_after;
    char retry_after[32];
    /* RunPod's RateLimit / RateLimit-Policy fields (repeated lines joined with ", "); a value
     * longer than RATE_RAW_MAX - 1 sets the *_overflow flag (then taken as malformed) */
    bool has_ratelimit, ratelimit_overflow;
    char ratelimit[RATE_RAW_MAX];
    bool has_policy, policy_overflow;
    char policy[RATE_RAW_MAX];
    char error[256];
    long long duration_ms;
} HttpResp;

/* Frees r's body. NULL-safe. */
void runpod_http_resp_free(HttpResp *r);

/* Sends one request (no retry) and classifies the answer; info gets the attempt counted, the
 * HTTP status, the class and a detail (problem+json title/detail, transport error or status).
 * r holds the response. Returns the class. */
RunpodErrorClass runpod_http_attempt(RunpodClient *c, RunpodOp op, const char *method,
                                     const char *path, const char *body, HttpResp *r,
                                     RunpodCallInfo *info, int attempt);

/* One GET of a stream (no retry): path with `Accept: text/event-stream`, bounded by s (see
 * HttpStream); r->body holds the newest s->keep_bytes. A 2xx that the bound cut off is RP_OK;
 * no answer before the bound is RP_TIMEOUT. info as for runpod_http_attempt. */
RunpodErrorClass runpod_http_stream(RunpodClient *c, const char *path, HttpStream *s, HttpResp *r,
                                    RunpodCallInfo *info);

/* runpod_http_attempt repeated under the retry policy of SPEC 7 (5xx, transport, timeout with
 * backoff and jitter; 429 after Retry-After), at most max_retries times. Returns the last
 * class; r holds the last response. */
RunpodErrorClass runpod_http_call(RunpodClient *c, RunpodOp op, const char *method,
                                  const char *path, const char *body, HttpResp *r,
                                  RunpodCallInfo *info);

/* The wait before repeating after decision d (Retry-After, or backoff with jitter). */
long runpod_http_delay_ms(RunpodClient *c, RetryDecision d, int attempt, const HttpResp *r);

/* The client's retry budget (RUNPOD_MAX_RETRIES). Cannot fail. */
int runpod_http_max_retries(const RunpodClient *c);

/* Sleeps ms milliseconds (restarting after signals). */
void runpod_http_sleep_ms(long ms);

/* Parses the body of a 2xx answer into ctx; STATUS_OK, STATUS_ERR_PARSE (message in err) or
 * STATUS_ERR_NOMEM. */
typedef Status (*RunpodBodyParser)(const char *body, size_t len, void *ctx, char *err,
                                   size_t errcap);

/* GET path (retried like every read) and parse the answer with parse. Returns STATUS_OK;
 * STATUS_ERR_API for a failed call or a body that does not parse (info->error RP_PARSE, the
 * parser's message in info->detail; logged as runpod.error naming log_path, which leaves out
 * the query); STATUS_ERR_NOMEM. info must not be NULL. */
Status runpod_http_get_parsed(RunpodClient *c, const char *path, const char *log_path,
                              RunpodBodyParser parse, void *ctx, RunpodCallInfo *info);

/* Logs runpod.error for a call that failed for good. */
void runpod_http_log_final_error(const char *method, const char *path, const RunpodCallInfo *info);

#endif
