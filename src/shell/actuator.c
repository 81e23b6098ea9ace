/* actuator.c -- applies a Plan (see actuator.h).
 *
 * Shell module. Order matters and is the plan's: promotions and failures first, then task
 * recovery, drains, terminations, and last the spawns, which run concurrently. A spawn is
 * register-before-create: the worker row exists (spawning, no pod id) before the pod is
 * requested, and the pod is named after it, so a crash at any point leaves a row or a pod that
 * the next cycle's reconcile can match by name. The spawns are in actuator_spawn.c.
 */
#include "actuator.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "actuator_int.h"
#include "db.h"
#include "lease.h"
#include "log.h"
#include "runpod.h"

Status act_result_init(ActResult *res)
{
    memset(res, 0, sizeof *res);
    res->outcomes = cJSON_CreateArray();
    res->errors = cJSON_CreateArray();
    if (!res->outcomes || !res->errors) {
        act_result_clear(res);
        return STATUS_ERR_NOMEM;
    }
    return STATUS_OK;
}

void act_result_clear(ActResult *res)
{
    if (!res)
        return;
    cJSON_Delete(res->outcomes);
    cJSON_Delete(res->errors);
    res->outcomes = NULL;
    res->errors = NULL;
}

static void record(ActResult *res, const Action *a, const char *worker_id, const char *result,
                   const char *detail)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return;
    cJSON_AddStringToObject(o, "action", action_kind_str(a->kind));
    cJSON_AddStringToObject(o, "reason", reason_str(a->reason));
    const char *wid = worker_id ? worker_id : a->worker_id;
    if (wid[0])
        cJSON_AddStringToObject(o, "worker_id", wid);
    if (a->task_id[0])
        cJSON_AddStringToObject(o, "task_id", a->task_id);
    if (a->pod_id[0])
        cJSON_AddStringToObject(o, "pod_id", a->pod_id);
    if (a->pool >= 0 && (size_t)a->pool < res->n_pools) /* metrics count spawns per pool */
        cJSON_AddStringToObject(o, "pool", res->pools[a->pool]);
    cJSON_AddStringToObject(o, "result", result);
    if (detail && detail[0]) {
        /* RunPod's problem detail lands here: scrubbed like a log line before it reaches the
         * journal and the summary. */
        char clean[PLAN_DETAIL_MAX * 2];
        log_scrub(detail, clean, sizeof clean);
        cJSON_AddStringToObject(o, "detail", clean);
    }
    cJSON_AddItemToArray(res->outcomes, o);
}

static void add_error(ActResult *res, const char *msg)
{
    char clean[512];
    log_scrub(msg, clean, sizeof clean);
    cJSON_AddItemToArray(res->errors, cJSON_CreateString(clean));
}

/* Workers whose earlier action was skipped or failed: later actions about them wait for the
 * next cycle's fresh snapshot. */
typedef struct {
    size_t n;
    char ids[PLAN_MAX_ACTIONS][SNAP_WORKER_ID_MAX];
} Blocked;

static bool is_blocked(const Blocked *b, const char *id)
{
    for (size_t i = 0; id[0] && i < b->n; i++)
        if (strcmp(b->ids[i], id) == 0)
            return true;
    return false;
}

static void block(Blocked *b, const char *id)
{
    if (id[0] && b->n < PLAN_MAX_ACTIONS && !is_blocked(b, id))
        snprintf(b->ids[b->n++], SNAP_WORKER_ID_MAX, "%s", id);
}

/* Terminates a pod; 404 counts as done. Returns 0 on success. */
static int terminate_pod(App *app, ActResult *res, const char *pod_id, const char *worker_id,
                         const char *why)
{
    if (!pod_id[0])
        return 0;
    if (!app->rp) {
        add_error(res, "cannot terminate a pod: no RunPod client (RUNPOD_API_KEY unset)");
        return -1;
    }
    RunpodCallInfo info;
    memset(&info, 0, sizeof info);
    Status st = runpod_terminate_pod(app->rp, pod_id, &info);
    if (st != STATUS_OK) {
        log_error("pod.terminate_failed",
                  "pod_id=%s worker_id=%s http_status=%d error=%s detail=%s", pod_id, worker_id,
                  info.http_status, runpod_error_str(info.error), info.detail);
        if (info.error == RP_AUTH)
            res->api_auth_failed = true;
        if (info.error == RP_RETIRED)
            res->api_retired = true;
        char msg[256];
        snprintf(msg, sizeof msg, "terminate pod %.64s: %s", pod_id, runpod_error_str(info.error));
        add_error(res, msg);
        return -1;
    }
    log_info("pod.terminated", "pod_id=%s worker_id=%s reason=%s already_gone=%s", pod_id,
             worker_id, why, info.error == RP_NOT_FOUND ? "true" : "false");
    return 0;
}

/* ------------------------------------------------------------------------------------------ */

typedef enum {
    OUT_APPLIED,
    OUT_SKIPPED, /* the guard failed: the row changed since the snapshot */
    OUT_FAILED,  /* this action failed (a RunPod call, or a statement the database refused) */
    OUT_DB_LOST, /* the database connection is gone: nothing more can be done this cycle */
} Outcome;

/* A failed statement: the connection lost ends the cycle; any other database error (a
 * constraint, a trigger refusing a transition) fails this action only. */
static Outcome db_failure(App *app, ActResult *res, const Action *a)
{
    char msg[512], clean[512];
    const char *err = app->conn ? PQerrorMessage(app->conn) : "no connection";
    snprintf(msg, sizeof msg, "%s %.64s%s%.40s: database error: %.300s", action_kind_str(a->kind),
             a->worker_id, a->task_id[0] ? " task " : "", a->task_id, err);
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    log_scrub(msg, clean, sizeof clean);
    add_error(res, clean);
    if (!app->conn || PQstatus(app->conn) != CONNECTION_OK) {
        res->db_failed = true;
        record(res, a, NULL, "failed", "database connection lost");
        return OUT_DB_LOST;
    }
    res->failed++;
    record(res, a, NULL, "failed", "database error (see errors)");
    return OUT_FAILED;
}

/* Applies one non-spawn action. Records its outcome, except for OUT_APPLIED/OUT_SKIPPED, which
 * the caller records. logs: the log tails being read for failed workers (may be NULL). */
static Outcome apply_one(App *app, const Action *a, ActResult *res, LogReads *logs)
{
    const Config *cfg = app->cfg;
    bool applied = false;
    Status s = STATUS_OK;
    char new_status[16] = "";
    switch (a->kind) {
    case ACTION_PROMOTE_WORKER:
        s = db_promote_worker(app->conn, a->worker_id, &applied);
        if (s == STATUS_OK && applied) {
            res->workers_promoted++;
            log_info("worker.promoted", "worker_id=%s", a->worker_id);
        }
        break;
    case ACTION_FAIL_WORKER:
        s = db_fail_worker(app->conn, a->worker_id, a->from_state, a->detail, a->unexpected,
                           &applied);
        if (s == STATUS_OK && applied) {
            res->workers_failed++;
            log_warn("worker.failed", "worker_id=%s from=%s reason=%s error_reason=%s",
                     a->worker_id, worker_state_str(a->from_state), reason_str(a->reason),
                     a->detail);
        }
        break;
    case ACTION_RECOVER_TASK: {
        char why[PLAN_DETAIL_MAX + 48];
        snprintf(why, sizeof why, "Reset - orphaned from failed worker (%s)",
                 reason_str(a->reason));
        s = db_recover_task(app->conn, a->task_id, a->worker_id, cfg->max_task_attempts, why,
                            &applied, new_status);
        if (s == STATUS_OK && applied) {
            if (strcmp(new_status, "Failed") == 0)
                res->tasks_failed++;
            else
                res->tasks_reset++;
            log_warn("task.recovered", "task_id=%s worker_id=%s reason=%s new_status=%s",
                     a->task_id, a->worker_id, reason_str(a->reason), new_status);
        }
        break;
    }
    case ACTION_DRAIN_WORKER:
        s = a->force ? db_force_drain_worker(app->conn, a->worker_id, a->from_state,
                                             reason_str(a->reason), &applied)
                     : db_drain_worker(app->conn, a->worker_id, reason_str(a->reason), &applied);
        if (s == STATUS_OK && applied) {
            res->workers_drained++;
            log_info("worker.draining", "worker_id=%s reason=%s detail=%s", a->worker_id,
                     reason_str(a->reason), a->detail);
        }
        break;
    case ACTION_TERMINATE_WORKER:
        if (a->fetch_logs) /* its diagnostics first, within RUNPOD_LOG_TIMEOUT_SEC (issue 16) */
            actuator_logs_store(app, res, logs, a);
        if (terminate_pod(app, res, a->pod_id, a->worker_id, reason_str(a->reason)) != 0) {
            res->failed++;
            record(res, a, NULL, "failed", "pod termination failed; retried next cycle");
            return OUT_FAILED;
        }
        s = db_mark_terminated(app->conn, a->worker_id, a->from_state, reason_str(a->reason),
                               &applied);
        if (s == STATUS_OK && applied) {
            res->workers_terminated++;
            log_info("worker.terminated", "worker_id=%s reason=%s", a->worker_id,
                     reason_str(a->reason));
        }
        if (s == STATUS_OK && applied && a->reason == REASON_OPERATOR) {
            /* A task claimed between the snapshot and the move to terminating is recovered
             * now, not left to a later cycle that may never run (the kill switch). */
            int n = 0;
            s = db_recover_tasks_of(app->conn, a->worker_id, cfg->max_task_attempts,
                                    "Reset - orphaned from failed worker (operator)", &n);
            res->tasks_reset += n;
        }
        if (s == STATUS_OK && applied && a->pod_unconfirmed) {
            char msg[320];
            snprintf(msg, sizeof msg,
                     "worker %.64s ended, but its create's outcome is unknown: a pod named like it "
                     "may still appear; run the command again after SPAWN_POD_ID_GRACE_SEC, or let "
                     "the cycle run (it terminates such a pod as soon as it is listed)",
                     a->worker_id);
            add_error(res, msg);
            res->failed++;
        }
        break;
    case ACTION_ADOPT_POD:
        s = db_adopt_pod(app->conn, a->worker_id, a->pod_id, a->gpu_type,
                         actuator_pool_cloud(cfg, a->pool), a->cost_per_hr, &applied);
        if (s == STATUS_OK && applied) {
            res->pods_adopted++;
            log_info("pod.adopted", "worker_id=%s pod_id=%s gpu_type=%s cost_per_hr=%.3f",
                     a->worker_id, a->pod_id, a->gpu_type, a->cost_per_hr);
        }
        break;
    case ACTION_TERMINATE_POD:
        if (terminate_pod(app, res, a->pod_id, "", reason_str(a->reason)) != 0) {
            res->failed++;
            record(res, a, NULL, "failed", "pod termination failed");
            return OUT_FAILED;
        }
        applied = true;
        res->leaked_pods_terminated++;
        log_warn("pod.leak_terminated", "pod_id=%s reason=%s detail=%s", a->pod_id,
                 reason_str(a->reason), a->detail);
        break;
    case ACTION_STOP_WORKER:
        s = actuator_stop_worker(app, a, res, &applied);
        if (s == STATUS_ERR_API) {
            res->failed++;
            record(res, a, NULL, "failed", "pod stop and termination failed; retried next cycle");
            return OUT_FAILED;
        }
        break;
    case ACTION_SPAWN_WORKER:
    case ACTION_START_WORKER:
        break;
    }
    if (s != STATUS_OK)
        return db_failure(app, res, a);
    return applied ? OUT_APPLIED : OUT_SKIPPED;
}

/* Counts a planned termination that did not happen against its worker's pool (a pod of no pool,
 * or of a pool no longer configured, against the fleet). */
static void count_not_terminated(const Action *a, long long *by_pool, long long *fleet)
{
    if (a->kind != ACTION_TERMINATE_WORKER && a->kind != ACTION_TERMINATE_POD &&
        a->kind != ACTION_STOP_WORKER)
        return;
    if (a->from_state == WORKER_STOPPED)
        return; /* a stopped pod holds no GPU */
    if (a->kind != ACTION_TERMINATE_POD && a->pool >= 0 && a->pool < PLAN_POOLS_MAX)
        by_pool[a->pool]++;
    else
        (*fleet)++;
}

/* The fence (lease.h): true, and nothing more may be done, once the cycle lease is lost. */
bool actuator_fenced(App *app, ActResult *res)
{
    Status st = lease_verify(app->lease, app->conn);
    if (st == STATUS_ERR_DB)
        res->db_failed = true;
    else if (st != STATUS_OK)
        res->lease_lost = true;
    if (res->lease_lost)
        add_error(res, "cycle lease lost: no further action this cycle");
    return st != STATUS_OK;
}

Status actuator_apply(App *app, const Snapshot *snap, const Plan *plan, ActResult *res)
{
    (void)snap;
    Blocked *blocked = calloc(1, sizeof *blocked);
    if (!blocked)
        return STATUS_ERR_NOMEM;
    size_t spawns = 0;
    /* Planned terminations that did not happen (failed, skipped, or blocked by an earlier
     * action on the same worker): those pods still run, so this cycle's spawns shrink by as
     * many -- in the worker's own pool, or fleet-wide for a pod of no pool -- and every
     * MAX_ACTIVE_GPUS holds. */
    long long not_terminated[PLAN_POOLS_MAX] = {0}, not_terminated_fleet = 0;
    Status st = STATUS_OK;
    res->n_pools = 0; /* the outcomes name each action's pool */
    for (size_t p = 0; p < plan->n_pools && p < PLAN_POOLS_MAX; p++)
        memcpy(res->pools[res->n_pools++], plan->pools[p].name, SNAP_POOL_NAME_MAX);
    /* Failed workers' log tails are read concurrently from now on, so their terminations wait
     * at most one RUNPOD_LOG_TIMEOUT_SEC (issue 16). */
    LogReads *logs = actuator_logs_start(app, plan);

    /* One failed action never stops the unrelated actions after it; only a lost database
     * connection ends the cycle early. */
    for (size_t i = 0; i < plan->count && !res->db_failed; i++) {
        const Action *a = &plan->actions[i];
        if (a->kind == ACTION_SPAWN_WORKER || a->kind == ACTION_START_WORKER) {
            spawns++;
            continue;
        }
        if (is_blocked(blocked, a->worker_id)) {
            record(res, a, NULL, "skipped", "an earlier action on this worker did not apply");
            res->skipped++;
            count_not_terminated(a, not_terminated, &not_terminated_fleet);
            continue;
        }
        if (actuator_fenced(app, res))
            break;
        Outcome o = apply_one(app, a, res, logs);
        if (o == OUT_APPLIED) {
            record(res, a, NULL, "applied", a->detail);
            continue;
        }
        count_not_terminated(a, not_terminated, &not_terminated_fleet);
        if (o == OUT_SKIPPED) {
            res->skipped++;
            record(res, a, NULL, "skipped", "row changed since the snapshot");
            log_info("action.skipped", "action=%s worker_id=%s task_id=%s",
                     action_kind_str(a->kind), a->worker_id, a->task_id);
        }
        block(blocked, a->worker_id);
    }

    actuator_logs_free(logs);
    if (!res->db_failed && !res->lease_lost && spawns > 0 && !actuator_fenced(app, res)) {
        Status s = actuator_apply_spawns(app, plan, res, not_terminated, not_terminated_fleet);
        if (s != STATUS_OK && st == STATUS_OK)
            st = s;
    }
    free(blocked);

    if (res->lease_lost)
        return STATUS_ERR_LEASE_LOST;
    if (res->db_failed)
        return STATUS_ERR_DB;
    if (res->api_auth_failed || res->api_retired)
        return STATUS_ERR_API;
    if (st != STATUS_OK)
        return st;
    if (res->failed > 0)
        return STATUS_ERR_PARTIAL;
    return STATUS_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Shared with actuator_lifecycle.c (actuator_int.h)                                           */

void actuator_record(ActResult *res, const Action *a, const char *worker_id, const char *result,
                     const char *detail)
{
    record(res, a, worker_id, result, detail);
}

void actuator_add_error(ActResult *res, const char *msg)
{
    add_error(res, msg);
}

int actuator_terminate_pod(App *app, ActResult *res, const char *pod_id, const char *worker_id,
                           const char *why)
{
    return terminate_pod(app, res, pod_id, worker_id, why);
}
