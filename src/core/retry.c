/* retry.c -- classification of RunPod answers and backoff arithmetic (see retry.h).
 *
 * Pure: no I/O, no clock, no randomness of its own, no allocation, no logging.
 */
#include "retry.h"

#include <ctype.h>
#include <stddef.h>

RunpodErrorClass retry_classify(RunpodOp op, RunpodTransport transport, long http_status)
{
    switch (transport) {
    case RP_XPORT_OK:
        break;
    case RP_XPORT_TIMEOUT:
        return RP_TIMEOUT;
    case RP_XPORT_TOO_LARGE:
        return RP_PARSE;
    case RP_XPORT_ERROR:
    default:
        return RP_TRANSPORT;
    }
    if (http_status >= 200 && http_status <= 299)
        return RP_OK;
    if (http_status >= 500 && http_status <= 599)
        return RP_SERVER;
    switch (http_status) {
    case 400:
        /* v2 answers 400 both for "no capacity" and for cross-field rule violations; on create
         * both mean "try the next GPU type" (the create description's retry table). */
        return op == RP_OP_CREATE ? RP_NO_CAPACITY : RP_BAD_REQUEST;
    case 401:
    case 403:
        return RP_AUTH;
    case 402:
        return RP_BALANCE;
    case 404:
        return RP_NOT_FOUND;
    case 409:
        return RP_CONFLICT;
    case 410:
        return RP_RETIRED;
    case 422:
        return RP_INVALID;
    case 429:
        return RP_RATE_LIMITED;
    default:
        return RP_UNEXPECTED;
    }
}

RetryDecision retry_decide(RunpodErrorClass cls, int attempts_made, int max_retries,
                           bool has_retry_after)
{
    if (max_retries < 0)
        max_retries = 0;
    if (attempts_made > max_retries)
        return RETRY_NO;
    switch (cls) {
    case RP_SERVER:
    case RP_TRANSPORT:
    case RP_TIMEOUT:
        return RETRY_AFTER_BACKOFF;
    case RP_RATE_LIMITED:
        return has_retry_after ? RETRY_AFTER_HEADER : RETRY_AFTER_BACKOFF;
    default:
        return RETRY_NO;
    }
}

long retry_backoff_ms(int retry, long base_ms, long max_ms, uint32_t rand_value)
{
    if (max_ms <= 0)
        return 0;
    if (base_ms <= 0)
        base_ms = 1;
    if (retry < 1)
        retry = 1;
    long ceiling = base_ms;
    /* Double without overflow: stop as soon as the ceiling reaches max_ms. */
    for (int i = 1; i < retry && ceiling < max_ms; i++)
        ceiling = ceiling > max_ms / 2 ? max_ms : ceiling * 2;
    if (ceiling > max_ms)
        ceiling = max_ms;
    long half = ceiling / 2;
    unsigned long span = (unsigned long)(ceiling - half) + 1UL;
    return half + (long)((unsigned long)rand_value % span);
}

long retry_after_ms(const char *value, long cap_ms)
{
    if (cap_ms <= 0)
        cap_ms = RETRY_AFTER_DEFAULT_MAX_MS;
    if (!value)
        return -1;
    const char *p = value;
    while (*p == ' ' || *p == '\t')
        p++;
    if (!isdigit((unsigned char)*p))
        return -1;
    long long sec = 0;
    bool capped = false;
    while (isdigit((unsigned char)*p)) {
        if (!capped) {
            sec = sec * 10 + (*p - '0');
            if (sec > cap_ms / 1000 + 1)
                capped = true; /* beyond the cap: no need to keep the exact (maybe huge) value */
        }
        p++;
    }
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    if (*p != '\0')
        return -1;
    if (capped || sec * 1000 > cap_ms)
        return cap_ms;
    return (long)(sec * 1000);
}

bool retry_is_ambiguous(RunpodErrorClass cls)
{
    return cls == RP_SERVER || cls == RP_TIMEOUT || cls == RP_TRANSPORT;
}

const char *runpod_error_str(RunpodErrorClass cls)
{
    switch (cls) {
    case RP_OK:
        return "ok";
    case RP_NO_CAPACITY:
        return "no_capacity";
    case RP_BAD_REQUEST:
        return "bad_request";
    case RP_AUTH:
        return "auth";
    case RP_BALANCE:
        return "insufficient_balance";
    case RP_NOT_FOUND:
        return "not_found";
    case RP_CONFLICT:
        return "conflict";
    case RP_RETIRED:
        return "api_retired";
    case RP_INVALID:
        return "invalid_request";
    case RP_RATE_LIMITED:
        return "rate_limited";
    case RP_SERVER:
        return "server_error";
    case RP_TRANSPORT:
        return "transport";
    case RP_TIMEOUT:
        return "timeout";
    case RP_PARSE:
        return "bad_response";
    case RP_UNEXPECTED:
        return "unexpected_status";
    }
    return "unknown";
}
