/* actuator_lifecycle.c -- the actions of issue 16: stop a drained worker's pod (warm pool),
 * start a stopped one (before any create), read a failed worker's log tail before its pod is
 * terminated (see actuator_int.h; structure_docs/runpod_lifecycle.md).
 *
 * Shell module. Every branch leaves nothing running that no row owns: a stop that fails
 * becomes a termination, a start that is refused fails its row and terminates its pod, and a
 * start whose answer never came keeps its row spawning (counted under MAX_ACTIVE_GPUS) until
 * the pod's first heartbeat or the spawning timeout. A log read never delays a termination by
 * more than RUNPOD_LOG_TIMEOUT_SEC and never fails the cycle.
 */
#include "actuator_int.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db.h"
#include "db_lifecycle.h"
#include "lease.h"
#include "log.h"
#include "podlog.h"
#include "runpod_lifecycle.h"

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool db_lost(const App *app)
{
    return !app->conn || PQstatus(app->conn) != CONNECTION_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Stop                                                                                        */

Status actuator_stop_worker(App *app, const Action *a, ActResult *res, bool *applied)
{
    *applied = false;
    RunpodCallInfo info;
    memset(&info, 0, sizeof info);
    Status st =
        app->rp ? runpod_pod_action(app->rp, a->pod_id, "stop", NULL, &info) : STATUS_ERR_CONFIG;
    if (st == STATUS_OK) {
        Status d = db_stop_worker(app->conn, a->worker_id, applied);
        if (d == STATUS_OK && *applied) {
            res->workers_stopped++;
            log_info("pod.stopped", "worker_id=%s pod_id=%s reason=%s detail=%s", a->worker_id,
                     a->pod_id, reason_str(a->reason), a->detail);
        }
        /* Not applied: the row changed meanwhile (it failed); the next cycle terminates the
         * stopped pod with it. */
        return d;
    }
    /* The stop did not happen (or we cannot tell): terminate, as without a warm pool. */
    log_warn("pod.stop_failed",
             "worker_id=%s pod_id=%s http_status=%d error=%s detail=%s msg=\"terminating the "
             "pod instead\"",
             a->worker_id, a->pod_id, info.http_status, runpod_error_str(info.error), info.detail);
    res->stop_fallbacks++;
    if (actuator_terminate_pod(app, res, a->pod_id, a->worker_id, "stop_failed") != 0)
        return STATUS_ERR_API;
    Status d = db_mark_terminated(app->conn, a->worker_id, WORKER_TERMINATING,
                                  reason_str(REASON_DRAINED), applied);
    if (d == STATUS_OK && *applied) {
        res->workers_terminated++;
        log_info("worker.terminated", "worker_id=%s reason=%s", a->worker_id,
                 reason_str(REASON_DRAINED));
    }
    return d;
}

/* ------------------------------------------------------------------------------------------ */
/* Start                                                                                       */

/* RunPod refused a start (it did not happen): the row fails, expectedly -- RunPod said no, the
 * worker did nothing wrong -- and its pod is terminated (a pod that cannot start on its host is
 * of no use; 404 counts as done). */
static void start_refused(App *app, const Action *a, ActResult *res, const RunpodCallInfo *info)
{
    char raw[PLAN_DETAIL_MAX], reason[PLAN_DETAIL_MAX];
    snprintf(raw, sizeof raw, "Start refused: %s%s%.100s", runpod_error_str(info->error),
             info->detail[0] ? ": " : "", info->detail);
    log_scrub(raw, reason, sizeof reason);
    log_warn("pod.start_refused", "worker_id=%s pod_id=%s http_status=%d error=%s detail=%s",
             a->worker_id, a->pod_id, info->http_status, runpod_error_str(info->error),
             info->detail);
    if (info->error == RP_AUTH)
        res->api_auth_failed = true;
    if (info->error == RP_RETIRED)
        res->api_retired = true;
    if (info->error == RP_BALANCE)
        res->api_balance_failed = true;
    bool applied = false;
    if (db_fail_worker(app->conn, a->worker_id, WORKER_SPAWNING, reason, false, &applied) !=
        STATUS_OK) {
        res->db_failed = db_lost(app);
        return;
    }
    if (applied &&
        actuator_terminate_pod(app, res, a->pod_id, a->worker_id, "start_refused") == 0 &&
        db_mark_terminated(app->conn, a->worker_id, WORKER_ERROR, "start_refused", &applied) !=
            STATUS_OK)
        res->db_failed = db_lost(app);
    /* A termination that failed leaves an error row: the next cycle retries it. */
    actuator_record(res, a, NULL, "refused", reason);
}

bool actuator_start_worker(App *app, const Action *a, ActResult *res)
{
    bool applied = false;
    const char *holder = NULL, *fence = NULL;
    lease_guard(app->lease, &holder, &fence);
    Status rs = db_restart_worker(app->conn, a->worker_id, holder, fence, &applied);
    if (rs == STATUS_ERR_LEASE_LOST) { /* another cycle took over: nothing more to do */
        res->lease_lost = true;
        actuator_add_error(res, "cycle lease lost: no further action this cycle");
        return false;
    }
    if (rs != STATUS_OK) {
        res->db_failed = db_lost(app);
        res->failed++;
        actuator_record(res, a, NULL, "failed", "database error (see errors)");
        return !res->db_failed;
    }
    if (!applied) {
        res->skipped++;
        actuator_record(res, a, NULL, "skipped", "row changed since the snapshot; created instead");
        return true;
    }
    RunpodCallInfo info;
    memset(&info, 0, sizeof info);
    Pod pod;
    Status st = runpod_pod_action(app->rp, a->pod_id, "start", &pod, &info);
    if (st == STATUS_OK) {
        res->workers_started++;
        log_info("pod.started", "worker_id=%s pod_id=%s gpu_type=%s cost_per_hr=%.3f reason=%s",
                 a->worker_id, a->pod_id, a->gpu_type, pod.cost_per_hr, reason_str(a->reason));
        actuator_record(res, a, NULL, "applied", a->detail);
        return false;
    }
    if (retry_is_ambiguous(info.error) || info.error == RP_RATE_LIMITED || info.error == RP_PARSE) {
        /* It may be booting: keep the row spawning. */
        char msg[PLAN_DETAIL_MAX];
        snprintf(msg, sizeof msg,
                 "start outcome unknown (%s): kept spawning, promoted on its first heartbeat or "
                 "failed after SPAWNING_TIMEOUT_SEC",
                 runpod_error_str(info.error));
        log_warn("pod.start_unknown", "worker_id=%s pod_id=%s error=%s detail=%s", a->worker_id,
                 a->pod_id, runpod_error_str(info.error), info.detail);
        res->spawn_failures++;
        res->failed++;
        actuator_record(res, a, NULL, "unknown", msg);
        actuator_add_error(res, msg);
        return false;
    }
    res->start_fallbacks++;
    start_refused(app, a, res, &info);
    /* Credentials, balance or a retired API refuse a create as well. */
    return !res->api_auth_failed && !res->api_retired && !res->api_balance_failed &&
           !res->db_failed;
}

/* ------------------------------------------------------------------------------------------ */
/* Log tails                                                                                   */

typedef struct {
    const Action *a;
    RunpodClient *rp;
    PodLogOptions opts;
    char *sse;
    size_t len;
    bool slid;
    Status st;
    RunpodCallInfo info;
    long long ms;
    pthread_t thread;
    bool threaded;
    bool done;
} LogRead;

struct LogReads {
    size_t n;
    bool joined;
    LogRead r[ACTUATOR_LOG_READS_MAX];
};

static void read_one(LogRead *lr)
{
    long long t0 = mono_ms();
    lr->st =
        runpod_pod_logs(lr->rp, lr->a->pod_id, &lr->opts, &lr->sse, &lr->len, &lr->slid, &lr->info);
    lr->ms = mono_ms() - t0;
    lr->done = true;
}

static void *read_thread(void *arg)
{
    read_one(arg);
    return NULL;
}

LogReads *actuator_logs_start(App *app, const Plan *plan)
{
    if (!app->rp)
        return NULL;
    LogReads *reads = NULL;
    const Config *cfg = app->cfg;
    for (size_t i = 0; i < plan->count; i++) {
        const Action *a = &plan->actions[i];
        if (a->kind != ACTION_TERMINATE_WORKER || !a->fetch_logs || !a->pod_id[0])
            continue;
        if (!reads && !(reads = calloc(1, sizeof *reads)))
            return NULL; /* no diagnostics this cycle; the terminations go on */
        if (reads->n >= ACTUATOR_LOG_READS_MAX)
            break;
        LogRead *lr = &reads->r[reads->n++];
        lr->a = a;
        lr->rp = app->rp;
        /* The stream keeps 4 x what is stored: the formatting drops the SSE framing. */
        lr->opts = (PodLogOptions){.tail_lines = 200,
                                   .timeout_ms = (long)cfg->runpod_log_timeout_sec * 1000,
                                   .idle_ms = 1000,
                                   .keep_bytes = (size_t)cfg->runpod_log_max_bytes * 4};
        lr->threaded = pthread_create(&lr->thread, NULL, read_thread, lr) == 0;
    }
    return reads;
}

/* Waits for every read (each bounded by its own timeout; a thread that could not start reads
 * now, within the same bound). */
static void join_all(LogReads *reads)
{
    if (!reads || reads->joined)
        return;
    for (size_t i = 0; i < reads->n; i++) {
        LogRead *lr = &reads->r[i];
        if (lr->threaded)
            pthread_join(lr->thread, NULL);
        else
            read_one(lr);
    }
    reads->joined = true;
}

/* The values the tail must never show: every secret of the configuration (the logger's own
 * list is capped; this one is not). */
static size_t config_secrets(const Config *cfg, const char **out, size_t cap, char *pw,
                             size_t pwcap)
{
    size_t n = 0;
    out[n++] = cfg->runpod_api_key;
    out[n++] = cfg->database_url;
    pw[0] = '\0';
    char *err = NULL;
    PQconninfoOption *opts = cfg->database_url[0] ? PQconninfoParse(cfg->database_url, &err) : NULL;
    for (PQconninfoOption *o = opts; o && o->keyword; o++)
        if (strcmp(o->keyword, "password") == 0 && o->val)
            snprintf(pw, pwcap, "%s", o->val);
    PQconninfoFree(opts);
    PQfreemem(err);
    out[n++] = pw;
    for (size_t i = 0; i < cfg->n_worker_env && n < cap; i++)
        out[n++] = cfg->worker_env[i].value;
    for (size_t p = 0; p < cfg->n_pools; p++)
        for (size_t i = 0; i < cfg->pools[p].n_env && n < cap; i++)
            out[n++] = cfg->pools[p].env[i].value;
    return n;
}

/* The configuration's secrets, gathered once for a tail. */
enum { SECRETS_MAX = 3 + CONFIG_WORKER_ENV_MAX + CONFIG_POOLS_MAX * CONFIG_POOL_ENV_MAX };
typedef struct {
    const char *v[SECRETS_MAX];
    size_t n;
    char pw[CONFIG_STR_MAX];
} Secrets;

/* Scrubs text into out (cap): the configuration's secrets and secret-looking values, then the
 * logger's registered secrets. A mask may be longer than what it hides, so when the result
 * does not fit, whole lines are dropped from the front: the newest lines are the ones that
 * tell why the worker died. */
static void scrub(const Secrets *sec, const char *text, char *out, size_t cap)
{
    size_t big = 2 * cap + 64;
    char *tmp = malloc(big), *tmp2 = malloc(big);
    out[0] = '\0';
    if (tmp && tmp2) {
        podlog_scrub(text, sec->v, sec->n, tmp, big);
        log_scrub(tmp, tmp2, big);
        const char *from = tmp2;
        size_t len = strlen(tmp2);
        if (len + 1 > cap) {
            from = tmp2 + (len + 1 - cap);
            const char *nl = strchr(from, '\n');
            from = nl ? nl + 1 : from;
        }
        snprintf(out, cap, "%s", from);
    }
    free(tmp);
    free(tmp2);
}

void actuator_logs_store(App *app, ActResult *res, LogReads *reads, const Action *a)
{
    const Config *cfg = app->cfg;
    join_all(reads);
    const LogRead *lr = NULL;
    for (size_t i = 0; reads && i < reads->n && !lr; i++)
        if (reads->r[i].a == a)
            lr = &reads->r[i];
    size_t cap = (size_t)cfg->runpod_log_max_bytes + 1;
    char *lines = calloc(1, cap), *tail = calloc(1, cap);
    char raw[600], error[600] = "";
    if (!lines || !tail)
        goto out;
    LogTailRecord rec = {.worker_id = a->worker_id,
                         .pod_id = a->pod_id,
                         .reason = a->detail,
                         .outcome = "error",
                         .error = error,
                         .tail = tail};
    PodlogStats stats = {0};
    Secrets sec = {0};
    sec.n = config_secrets(cfg, sec.v, SECRETS_MAX, sec.pw, sizeof sec.pw);
    if (!lr) {
        snprintf(error, sizeof error,
                 "not read: more than %d failed workers in one cycle, or no RunPod client",
                 ACTUATOR_LOG_READS_MAX);
    } else if (lr->st == STATUS_OK) {
        /* Each line is scrubbed before it is cut (podlog.h), and the tail once more here. */
        podlog_from_sse(lr->sse, lr->len, sec.v, sec.n, lines, cap, &stats);
        scrub(&sec, lines, tail, cap);
        rec.outcome = stats.lines > 0 ? "ok" : "empty";
        rec.truncated = lr->slid || stats.dropped > 0;
        rec.bytes = (long long)lr->len;
    } else {
        rec.outcome = lr->info.error == RP_TIMEOUT ? "timeout" : "error";
        snprintf(raw, sizeof raw, "%s (HTTP %d)%s%.400s", runpod_error_str(lr->info.error),
                 lr->info.http_status, lr->info.detail[0] ? ": " : "", lr->info.detail);
        scrub(&sec, raw, error, sizeof error);
    }
    rec.fetch_ms = lr ? lr->ms : 0;
    if (strcmp(rec.outcome, "ok") == 0 || strcmp(rec.outcome, "empty") == 0)
        res->log_tails++;
    else
        res->log_tail_failures++;
    log_info("worker.log_tail",
             "worker_id=%s pod_id=%s outcome=%s lines=%zu bytes=%lld truncated=%s fetch_ms=%lld "
             "error=%s",
             a->worker_id, a->pod_id, rec.outcome, stats.lines, rec.bytes,
             rec.truncated ? "true" : "false", rec.fetch_ms, error);
    if (db_store_log_tail(app->conn, &rec) != STATUS_OK)
        log_warn("worker.log_tail_not_stored",
                 "worker_id=%s msg=\"the log tail could not be stored; the pod is terminated "
                 "all the same\"",
                 a->worker_id);
out:
    free(lines);
    free(tail);
}

void actuator_logs_free(LogReads *reads)
{
    if (!reads)
        return;
    join_all(reads);
    for (size_t i = 0; i < reads->n; i++)
        free(reads->r[i].sse);
    free(reads);
}
