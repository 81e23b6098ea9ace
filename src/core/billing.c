/* billing.c -- the last complete hour of RunPod's pod billing (see billing.h).
 *
 * Pure: cJSON only; no I/O, clock, environment or logging.
 */
#include "billing.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runpod_json.h"

#define HOUR_SEC 3600LL

/* One well-formed record. */
typedef struct {
    const char *pod_id;
    long long start, end;
    double usd;
} Record;

/* Reads record r; false when a field it needs is missing, of the wrong type or out of range. */
static bool read_record(const cJSON *r, Record *out)
{
    if (!cJSON_IsObject(r))
        return false;
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(r, "podId");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(r, "startTime");
    const cJSON *en = cJSON_GetObjectItemCaseSensitive(r, "endTime");
    const cJSON *amt = cJSON_GetObjectItemCaseSensitive(r, "totalAmount");
    if (!cJSON_IsString(id) || !id->valuestring[0] ||
        strlen(id->valuestring) >= BILLING_POD_ID_MAX || !cJSON_IsString(st) ||
        !cJSON_IsString(en) || !cJSON_IsNumber(amt))
        return false;
    double usd = amt->valuedouble;
    if (!isfinite(usd) || usd < 0 || usd > BILLING_USD_PER_POD_HOUR_MAX)
        return false;
    long long s = runpod_json_parse_time(st->valuestring);
    long long e = runpod_json_parse_time(en->valuestring);
    if (s < 0 || e <= s)
        return false;
    *out = (Record){id->valuestring, s, e, usd};
    return true;
}

/* Adds usd to the pod's amount in out (a pod billed twice in one bucket is summed). */
static void add_pod(BillingHour *out, const char *pod_id, double usd)
{
    for (size_t i = 0; i < out->n_pods; i++)
        if (strcmp(out->pods[i].pod_id, pod_id) == 0) {
            out->pods[i].usd += usd;
            out->total_usd += usd;
            return;
        }
    if (out->n_pods >= BILLING_PODS_MAX) {
        out->truncated = true;
        return;
    }
    BillingPod *p = &out->pods[out->n_pods++];
    snprintf(p->pod_id, sizeof p->pod_id, "%s", pod_id);
    p->usd = usd;
    out->total_usd += usd;
}

Status billing_parse(const char *body, size_t len, long long now_epoch, BillingHour *out, char *err,
                     size_t errcap)
{
    cJSON *root = runpod_json_parse_document(body, len, err, errcap);
    if (!root)
        return STATUS_ERR_PARSE;
    Status st = STATUS_ERR_PARSE;
    const cJSON *recs = cJSON_GetObjectItemCaseSensitive(root, "records");
    if (!cJSON_IsObject(root) || !cJSON_IsArray(recs)) {
        if (err && errcap)
            snprintf(err, errcap, "billing answer is not an object with a \"records\" array");
        goto out;
    }
    BillingHour *h = calloc(1, sizeof *h);
    if (!h) {
        st = STATUS_ERR_NOMEM;
        goto out;
    }
    /* First the bucket: the latest one-hour bucket that has ended. */
    const cJSON *r;
    Record rec;
    cJSON_ArrayForEach(r, recs)
    {
        h->records++;
        if (!read_record(r, &rec)) {
            h->malformed++;
            continue;
        }
        if (rec.end - rec.start == HOUR_SEC && rec.end <= now_epoch &&
            (!h->have_bucket || rec.start > h->bucket_start)) {
            h->have_bucket = true;
            h->bucket_start = rec.start;
            h->bucket_end = rec.end;
        }
    }
    /* Then its pods. */
    cJSON_ArrayForEach(r, recs)
    {
        if (!read_record(r, &rec))
            continue;
        if (h->have_bucket && rec.start == h->bucket_start && rec.end == h->bucket_end)
            add_pod(h, rec.pod_id, rec.usd);
        else
            h->other_buckets++;
    }
    memcpy(out, h, sizeof *h);
    free(h);
    st = STATUS_OK;
out:
    cJSON_Delete(root);
    return st;
}
