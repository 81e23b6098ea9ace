/* billing.h -- what RunPod billed per pod in the last complete hour, from the answer of
 * GET /v2/billing/pods?bucketSize=hour&lastN=N (issue 16 item 2; openapi-v2.json
 * ListPodBillingResponse).
 *
 * Pure module: cJSON only; no I/O, clock or logging (the time is an argument). Billing is
 * foreign data and money: one malformed record never fails the read -- it is skipped and
 * counted -- and nothing here can lower a figure the spend cap uses (the cap takes the larger
 * of its own estimate and these amounts, so a skipped record only leaves the estimate in
 * charge). A body that is not a ListPodBillingResponse at all fails the read.
 */
#ifndef ORCH_BILLING_H
#define ORCH_BILLING_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

#define BILLING_PODS_MAX 4096
#define BILLING_POD_ID_MAX 64
/* Larger amounts for one pod-hour are not believed (a hostile or broken answer): the record
 * is skipped as malformed. Far above any GPU's price. */
#define BILLING_USD_PER_POD_HOUR_MAX 10000.0

typedef struct {
    char pod_id[BILLING_POD_ID_MAX];
    double usd; /* billed in the bucket (a complete hour: USD per hour) */
} BillingPod;

typedef struct {
    bool have_bucket;       /* a complete one-hour bucket was found */
    long long bucket_start; /* seconds since the epoch (UTC) */
    long long bucket_end;   /* = bucket_start + 3600 */
    double total_usd;       /* sum of the pods below */
    size_t n_pods;          /* distinct pods billed in that bucket (amounts summed per pod) */
    BillingPod pods[BILLING_PODS_MAX];
    size_t records;       /* records in the answer */
    size_t malformed;     /* records skipped: a field missing or of the wrong type, a bad
                             time, an amount negative, not finite or beyond belief */
    size_t other_buckets; /* well-formed records of other buckets (the current, partial
                             hour; older hours; buckets that are not one hour long) */
    bool truncated;       /* more pods than BILLING_PODS_MAX: the rest are not counted */
} BillingHour;

/* Parses a ListPodBillingResponse and keeps the latest bucket of exactly one hour that has
 * ended by now_epoch (the database's now). A record needs podId (a non-empty string under
 * BILLING_POD_ID_MAX bytes), startTime and endTime (RFC 3339) and totalAmount (a finite number
 * >= 0 and <= BILLING_USD_PER_POD_HOUR_MAX); anything else about it is ignored. *out is
 * written only on success (caller-owned: it is large, allocate it). Returns STATUS_ERR_PARSE
 * (message in err) when the body is not a JSON object with a "records" array, STATUS_ERR_NOMEM
 * when cJSON runs out of memory. A read with no complete hour is a success with have_bucket
 * false. */
Status billing_parse(const char *body, size_t len, long long now_epoch, BillingHour *out, char *err,
                     size_t errcap);

#endif
