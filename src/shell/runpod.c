/* runpod.c -- the RunPod REST v2 pod calls: get, list, terminate, create (see runpod.h).
 *
 * Shell module: which calls to make, and the create-then-look-up-by-name rule; one HTTP
 * exchange and its retries are runpod_http.c's, what an answer means retry.c's and
 * runpod_json.c's.
 */
#include "runpod.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "runpod_catalog.h"
#include "runpod_http.h"

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
    RunpodErrorClass cls = runpod_http_call(c, RP_OP_GET, "GET", path, NULL, &r, info);
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
    runpod_http_log_final_error("GET", path, info);
out:
    runpod_http_resp_free(&r);
    return st;
}

static Status parse_pod_list(const char *body, size_t len, void *out, char *err, size_t errcap)
{
    return runpod_json_parse_list(body, len, out, err, errcap);
}

Status runpod_list_pods(RunpodClient *c, PodList *out, RunpodCallInfo *info)
{
    RunpodCallInfo local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    if (!c || !out)
        return STATUS_ERR_INTERNAL;
    return runpod_http_get_parsed(c, "/v2/pods", "/v2/pods", parse_pod_list, out, info);
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
    RunpodErrorClass cls = runpod_http_call(c, RP_OP_TERMINATE, "DELETE", path, NULL, &r, info);
    runpod_http_resp_free(&r);
    if (cls == RP_OK || cls == RP_NOT_FOUND)
        return STATUS_OK; /* 404: already gone, which is what we wanted */
    runpod_http_log_final_error("DELETE", path, info);
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

/* What one attempt at one GPU type leads to. */
typedef enum {
    STEP_DONE,      /* out is final (created, found, or failed for good) */
    STEP_NEXT_TYPE, /* no capacity: try the next GPU type */
    STEP_REPEAT,    /* POST this type again (after a wait, or a look-up that found nothing) */
} CreateStep;

/* 429: wait Retry-After (or back off) and repeat, within the retry budget. */
static CreateStep on_rate_limited(RunpodClient *c, const PodCreateSpec *s, const char *type,
                                  int attempt, const HttpResp *r, PodCreateResult *out)
{
    RetryDecision d =
        retry_decide(RP_RATE_LIMITED, attempt, runpod_http_max_retries(c), r->has_retry_after);
    if (d == RETRY_NO) {
        create_fail(out, RP_RATE_LIMITED, s->name, type);
        return STEP_DONE;
    }
    long delay = runpod_http_delay_ms(c, d, attempt, r);
    log_warn("runpod.retry",
             "method=POST path=/v2/pods name=%s status=%ld attempt=%d error=%s delay_ms=%ld",
             s->name, r->status, attempt, runpod_error_str(RP_RATE_LIMITED), delay);
    runpod_http_sleep_ms(delay);
    return STEP_REPEAT;
}

/* An ambiguous answer (5xx, timeout, transport, unreadable 2xx): the pod may exist, now or in a
 * few seconds (RunPod's list lags a create). The name is never POSTed again in this call: one
 * look-up by name (after a backoff, when the retry budget allows one) either finds the pod, or
 * the outcome stays unknown and the caller keeps the worker row spawning -- counted toward
 * MAX_ACTIVE_GPUS -- until a later cycle's pod list adopts the pod or positively shows it absent
 * after SPAWN_POD_ID_GRACE_SEC. A second POST under the same name could make a second pod that
 * answers to the same WORKER_ID. */
static CreateStep on_ambiguous(RunpodClient *c, const PodCreateSpec *s, const char *type,
                               RunpodErrorClass cls, int attempt, const HttpResp *r,
                               PodCreateResult *out)
{
    RetryDecision d =
        retry_decide(cls == RP_PARSE ? RP_SERVER : cls, attempt, runpod_http_max_retries(c), false);
    char saved_detail[sizeof out->info.detail];
    int saved_status = out->info.http_status;
    snprintf(saved_detail, sizeof saved_detail, "%s", out->info.detail);
    if (d != RETRY_NO) {
        long delay = runpod_http_delay_ms(c, d, attempt, r);
        log_warn("runpod.create_ambiguous",
                 "name=%s status=%ld attempt=%d error=%s delay_ms=%ld detail=%s msg=\"looking "
                 "the pod up by name; never creating it again\"",
                 s->name, r->status, attempt, runpod_error_str(cls), delay, saved_detail);
        runpod_http_sleep_ms(delay);
    }
    char why[400] = "";
    int found = find_by_name(c, s->name, &out->pod, &out->info, why, sizeof why);
    out->info.http_status = saved_status;
    log_info("runpod.create_lookup", "name=%s found=%s error=%s", s->name,
             found > 0 ? "true" : (found == 0 ? "false" : "unknown"), runpod_error_str(cls));
    if (found > 0) {
        out->found_existing = true;
        out->status = STATUS_OK;
        out->info.error = RP_OK;
        snprintf(out->info.detail, sizeof out->info.detail,
                 "created by an attempt that failed with %s", runpod_error_str(cls));
        snprintf(out->gpu_type_used, sizeof out->gpu_type_used, "%s",
                 out->pod.gpu_id[0] ? out->pod.gpu_id : type);
        log_warn("runpod.create_found_existing", "name=%s pod_id=%s after=%s", s->name, out->pod.id,
                 runpod_error_str(cls));
        return STEP_DONE;
    }
    if (found < 0)
        snprintf(out->info.detail, sizeof out->info.detail,
                 "create outcome unknown (%.150s); pod list failed: %.200s", saved_detail, why);
    else
        snprintf(out->info.detail, sizeof out->info.detail,
                 "create outcome unknown (%.150s); not listed by name yet (the list lags)",
                 saved_detail);
    out->outcome_unknown = true;
    create_fail(out, cls, s->name, type);
    return STEP_DONE;
}

/* RunPod's rate-limit quota has nothing left beyond the reserve: no (further) POST for this
 * pod this cycle. The actuator sized the cycle's creates to the quota, so this only stops the
 * extra requests of a create -- a fallback to the next GPU type, a repeat after a 429. */
static CreateStep create_deferred(const PodCreateSpec *s, const char *type, PodCreateResult *out)
{
    out->deferred = true;
    snprintf(out->info.detail, sizeof out->info.detail,
             "deferred: RunPod's rate-limit quota is down to RUNPOD_RATE_LIMIT_RESERVE");
    log_info("runpod.create_deferred", "name=%s gpu_type=%s detail=%s", s->name, type,
             out->info.detail);
    create_fail(out, out->n_no_capacity > 0 ? RP_NO_CAPACITY : RP_RATE_LIMITED, s->name, type);
    return STEP_DONE;
}

/* POSTs body for one GPU type until it is created, found, refused for good or out of
 * capacity. */
static CreateStep create_with_type(RunpodClient *c, const PodCreateSpec *s, const char *type,
                                   const char *body, HttpResp *r, PodCreateResult *out)
{
    for (int attempt = 1;; attempt++) {
        if (runpod_client_create_allowance(c) == 0)
            return create_deferred(s, type, out);
        RunpodErrorClass cls =
            runpod_http_attempt(c, RP_OP_CREATE, "POST", "/v2/pods", body, r, &out->info, attempt);
        if (cls == RP_OK) {
            char err[256];
            if (runpod_json_parse_pod(r->body, r->len, &out->pod, err, sizeof err) == STATUS_OK) {
                snprintf(out->gpu_type_used, sizeof out->gpu_type_used, "%s", type);
                out->status = STATUS_OK;
                return STEP_DONE;
            }
            /* Created, but we cannot read the answer: find the pod rather than retry. */
            cls = RP_PARSE;
            out->info.error = RP_PARSE;
            snprintf(out->info.detail, sizeof out->info.detail, "%s", err);
        }
        CreateStep step;
        if (cls == RP_NO_CAPACITY) {
            if (out->n_no_capacity <
                sizeof out->no_capacity_types / sizeof out->no_capacity_types[0])
                snprintf(out->no_capacity_types[out->n_no_capacity++],
                         sizeof out->no_capacity_types[0], "%s", type);
            log_info("runpod.no_capacity", "name=%s gpu_type=%s detail=%s", s->name, type,
                     out->info.detail);
            return STEP_NEXT_TYPE;
        } else if (cls == RP_RATE_LIMITED) {
            step = on_rate_limited(c, s, type, attempt, r, out);
        } else if (!retry_is_ambiguous(cls) && cls != RP_PARSE) {
            /* 401/403, 402, 410, 422, 409, ...: the same on every type; stop at once. */
            create_fail(out, cls, s->name, type);
            step = STEP_DONE;
        } else {
            step = on_ambiguous(c, s, type, cls, attempt, r, out);
        }
        if (step != STEP_REPEAT)
            return step;
    }
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
        CreateStep step = create_with_type(c, s, type, body, &r, out);
        free(body);
        if (step == STEP_DONE)
            goto done;
    }
    /* Every type answered 400. */
    create_fail(out, RP_NO_CAPACITY, s->name,
                gpu_types[n_gpu_types - 1] ? gpu_types[n_gpu_types - 1] : "");
done:
    runpod_http_resp_free(&r);
    free(s);
    return out->status;
}

/* ---------------------------------------------------------------------------------------- */
/* concurrent creates */

typedef struct {
    RunpodClient *c;
    const PodCreateJob *jobs;
    size_t n;
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
        const PodCreateJob *j = &b->jobs[i];
        runpod_create_pod(b->c, j->spec, j->gpu_types, j->n_gpu_types, j->result);
    }
    return NULL;
}

Status runpod_create_jobs(RunpodClient *c, const PodCreateJob *jobs, size_t n)
{
    if (n == 0)
        return STATUS_OK;
    if (!jobs)
        return STATUS_ERR_INTERNAL;
    CreateBatch b = {.c = c, .jobs = jobs, .n = n};
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
        if (jobs[i].result->status != STATUS_OK)
            return STATUS_ERR_PARTIAL;
    return STATUS_OK;
}

Status runpod_create_pods(RunpodClient *c, const PodCreateSpec *specs, size_t n,
                          const char *const *gpu_types, size_t n_gpu_types,
                          PodCreateResult *results)
{
    if (n == 0)
        return STATUS_OK;
    if (!specs || !results)
        return STATUS_ERR_INTERNAL;
    PodCreateJob *jobs = calloc(n, sizeof *jobs);
    if (!jobs)
        return STATUS_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        jobs[i] = (PodCreateJob){&specs[i], gpu_types, n_gpu_types, &results[i]};
    Status st = runpod_create_jobs(c, jobs, n);
    free(jobs);
    return st;
}

bool runpod_pod_path(const char *pod_id, const char *suffix, char *path, size_t cap)
{
    char base[96];
    if (!pod_path(pod_id, base, sizeof base))
        return false;
    int n = snprintf(path, cap, "%s%s", base, suffix ? suffix : "");
    return n > 0 && (size_t)n < cap;
}
