/* runpod_lifecycle.h -- the RunPod REST v2 calls of issue 16 beyond create/get/list/delete:
 * stop and start a pod (POST /v2/pods/{id}/action), the tail of a pod's log
 * (GET /v2/pods/{id}/logs, Server-Sent Events) and the pod billing
 * (GET /v2/billing/pods). Request and response shapes: openapi-v2.json (PodActionRequest,
 * Pod, the SSE log stream, ListPodBillingResponse); tests/contract checks both sides.
 *
 * Shell module: the HTTP exchange is runpod_http.c's, what an answer means is the pure
 * retry.c's, billing.c's and podlog.c's. Thread-safe like runpod.h (the log reads of one cycle
 * run concurrently). The API key is never logged.
 */
#ifndef ORCH_RUNPOD_LIFECYCLE_H
#define ORCH_RUNPOD_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>

#include "runpod.h"

/* POST /v2/pods/{pod_id}/action {"action": action}, action "stop" or "start". Not retried
 * (a repeated start after an answer that never arrived would read 409 and look refused while
 * the pod boots), except after 429, which means "not done": then it waits Retry-After within
 * RUNPOD_MAX_RETRIES. STATUS_OK on 200 (*out gets the pod when the body reads as one, else
 * out->id stays ""); STATUS_ERR_USAGE for a bad pod id or action; STATUS_ERR_API otherwise:
 * info->error says whether the answer was a refusal (RP_BAD_REQUEST for "no free GPU on the
 * host", RP_CONFLICT, RP_NOT_FOUND, ...) or ambiguous (retry_is_ambiguous: 5xx, timeout,
 * transport -- the action may have happened). out may be NULL. */
Status runpod_pod_action(RunpodClient *c, const char *pod_id, const char *action, Pod *out,
                         RunpodCallInfo *info);

/* How a log tail is read. Zero fields take the defaults in brackets. */
typedef struct {
    int tail_lines;    /* [200] lines RunPod backfills (its `tail`, 1..5000) */
    long timeout_ms;   /* [5000] the whole read, connect included */
    long idle_ms;      /* [1000] end this long after the last data */
    size_t keep_bytes; /* [65536] newest bytes of the stream kept */
} PodLogOptions;

/* GET /v2/pods/{pod_id}/logs?tail=N: the newest keep_bytes of the event stream, read until the
 * stream goes quiet, the time bound or 8 x keep_bytes, whichever first -- never longer than
 * timeout_ms, never retried. STATUS_OK with *sse (malloc'd, NUL-terminated, caller frees) and
 * *len; *window_slid tells older bytes were dropped. STATUS_ERR_API for any failure
 * (info->error RP_TIMEOUT when no answer came in time), STATUS_ERR_USAGE for a bad pod id.
 * window_slid may be NULL. */
Status runpod_pod_logs(RunpodClient *c, const char *pod_id, const PodLogOptions *opts, char **sse,
                       size_t *len, bool *window_slid, RunpodCallInfo *info);

/* GET /v2/billing/pods?bucketSize=hour&lastN=last_n: the raw answer (parse it with
 * billing_parse against the database's clock). Retried like a GET. STATUS_OK with *body
 * (malloc'd, caller frees) and *len; STATUS_ERR_API otherwise (info says which). */
Status runpod_billing_pods(RunpodClient *c, int last_n, char **body, size_t *len,
                           RunpodCallInfo *info);

#endif
