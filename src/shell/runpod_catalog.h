/* runpod_catalog.h -- RunPod's GPU catalog call, and what the client saw of the rate limit
 * (issue 16 items 1 and 5).
 *
 * Shell module (libcurl, through runpod_http.c). GET /v2/catalog/gpus is one more read of the
 * REST v2 client, with its timeouts, size cap and retries; what the answer means is the pure
 * catalog.c's. Every response's RateLimit / RateLimit-Policy fields (and every 429's
 * Retry-After) update the client's view of the quota, under a lock, since creates run on
 * several threads; the pure ratelimit.c reads them.
 */
#ifndef ORCH_RUNPOD_CATALOG_H
#define ORCH_RUNPOD_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

#include "catalog.h"
#include "ratelimit.h"
#include "runpod.h"

/* What a client saw of RunPod's rate limit. */
typedef struct {
    bool seen;        /* a RateLimit field or a 429 was received by this client */
    bool header_seen; /* a RateLimit field was (the quota's age counts from the last one) */
    RateQuota quota;  /* parsed; age_sec and retry_after_sec as of the call */
    char ratelimit[RATE_RAW_MAX]; /* the last RateLimit value as received; "" when it was
                                     longer than RATE_RAW_MAX - 1 (then quota.malformed) */
    char policy[RATE_RAW_MAX];    /* the same for RateLimit-Policy */
    double retry_after_left_sec;  /* a 429's Retry-After still to run; -1 none */
} RunpodRateSeen;

/* Fills *out with the client's view now; returns out->seen. Thread-safe. Cannot fail. */
bool runpod_client_rate_limit(RunpodClient *c, RunpodRateSeen *out);

/* Pod creates the quota this client last saw still allows after the reserve
 * (RunpodOptions.rate_limit_reserve): ratelimit_create_allowance(), -1 when unknown (no header
 * seen, or an unreadable one). Thread-safe. Cannot fail. */
long long runpod_client_create_allowance(RunpodClient *c);

/* GET /v2/catalog/gpus?include=AVAILABILITY&product=POD&cloud=<cloud>: the GPU types, their
 * list price on cloud and stock for pods there (restricted to dcs[0..n_dcs) when n_dcs > 0).
 * STATUS_OK fills *out (free with catalog_list_clear); STATUS_ERR_API for a failed call or an
 * unreadable body (info says which, RP_PARSE for the body); STATUS_ERR_USAGE for a cloud other
 * than SECURE or COMMUNITY. Retried like the other reads. info may be NULL. */
Status runpod_list_gpu_types(RunpodClient *c, const char *cloud, const char *const *dcs,
                             size_t n_dcs, CatalogList *out, RunpodCallInfo *info);

#endif
