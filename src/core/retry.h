/* retry.h -- what to do about one RunPod API answer, and the backoff arithmetic (SPEC 7).
 *
 * Pure module: maps (transport outcome, HTTP status, operation) to an error class, the class to
 * a retry decision, and computes backoff delays. It does no I/O, reads no clock and draws no
 * random numbers: the jitter comes from a number the caller supplies. runpod.c is the shell
 * that acts on these answers.
 */
#ifndef ORCH_RETRY_H
#define ORCH_RETRY_H

#include <stdbool.h>
#include <stdint.h>

/* The RunPod REST v2 calls the client makes. */
typedef enum { RP_OP_CREATE = 0, RP_OP_GET, RP_OP_LIST, RP_OP_TERMINATE } RunpodOp;

/* How the HTTP exchange itself went, before any status code is looked at. */
typedef enum {
    RP_XPORT_OK = 0,    /* a complete HTTP response was received */
    RP_XPORT_ERROR,     /* connection refused/reset, DNS, TLS, ...: no usable response */
    RP_XPORT_TIMEOUT,   /* connect or total timeout expired */
    RP_XPORT_TOO_LARGE, /* the response body exceeded the client's size cap */
} RunpodTransport;

/* Error classes of SPEC 7. RP_OK means success (2xx). */
typedef enum {
    RP_OK = 0,
    RP_NO_CAPACITY,  /* 400 on create: no capacity (or a rule violation) for this GPU type */
    RP_BAD_REQUEST,  /* 400 on any other call */
    RP_AUTH,         /* 401 / 403: credentials */
    RP_BALANCE,      /* 402: insufficient balance */
    RP_NOT_FOUND,    /* 404: gone */
    RP_CONFLICT,     /* 409: action not valid now */
    RP_RETIRED,      /* 410: API retired */
    RP_INVALID,      /* 422: our request is wrong; never retried */
    RP_RATE_LIMITED, /* 429: wait Retry-After */
    RP_SERVER,       /* 5xx */
    RP_TRANSPORT,    /* no HTTP response */
    RP_TIMEOUT,      /* connect/total timeout */
    RP_PARSE,        /* a response we cannot use: malformed JSON, too large */
    RP_UNEXPECTED,   /* any other status (1xx, 3xx, unlisted 4xx): not retried */
} RunpodErrorClass;

typedef enum {
    RETRY_NO = 0,        /* final: report the class */
    RETRY_AFTER_BACKOFF, /* wait retry_backoff_ms(), then repeat the request */
    RETRY_AFTER_HEADER,  /* wait what the Retry-After header says, then repeat */
} RetryDecision;

/* Cap on a Retry-After wait when the caller gives none (0): 60 s. */
#define RETRY_AFTER_DEFAULT_MAX_MS 60000L

/* Classifies one exchange. http_status is ignored unless transport is RP_XPORT_OK. 2xx is RP_OK
 * for every operation; 400 is RP_NO_CAPACITY only for RP_OP_CREATE. Cannot fail. */
RunpodErrorClass retry_classify(RunpodOp op, RunpodTransport transport, long http_status);

/* Decides whether to repeat a request after an answer of class cls. attempts_made counts the
 * requests already sent for this call (the first one is 1), and at most max_retries repeats are
 * allowed, so nothing is retried once attempts_made > max_retries. A 429 counts as an attempt
 * like any other. 5xx, transport errors and timeouts are retried after a backoff; 429 after the
 * Retry-After header when has_retry_after, else after a backoff; every other class (notably
 * 422, 401/403, 402, 410, 400, 404, 409) is final. Cannot fail. */
RetryDecision retry_decide(RunpodErrorClass cls, int attempts_made, int max_retries,
                           bool has_retry_after);

/* Backoff before retry number `retry` (1 = first retry), "equal jitter": the ceiling is
 * min(max_ms, base_ms * 2^(retry-1)) and the delay is drawn uniformly from [ceiling/2, ceiling]
 * using rand_value (any 32-bit random number from the caller). Non-positive inputs are treated
 * as 0 / 1 as appropriate; the result is always within [0, max(max_ms, 0)]. Cannot fail. */
long retry_backoff_ms(int retry, long base_ms, long max_ms, uint32_t rand_value);

/* Parses a Retry-After header value (RunPod sends integer seconds; the HTTP-date form is not
 * used by RunPod and is not accepted). Leading/trailing blanks are allowed. Returns the wait in
 * milliseconds clamped to [0, cap_ms] (cap_ms <= 0 means RETRY_AFTER_DEFAULT_MAX_MS), or -1
 * when value is NULL, empty or not a non-negative integer. Cannot fail. */
long retry_after_ms(const char *value, long cap_ms);

/* True for the classes after which a create may have happened although we got no success
 * (5xx, timeout, transport): the pod must be looked up by name before creating again. */
bool retry_is_ambiguous(RunpodErrorClass cls);

/* Stable lower-case name of a class ("no_capacity", "auth", ...), for logs and summaries.
 * Cannot fail; unknown values give "unknown". */
const char *runpod_error_str(RunpodErrorClass cls);

#endif
