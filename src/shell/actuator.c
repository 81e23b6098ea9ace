/* actuator.c -- applies a Plan (see actuator.h).
 *
 * Shell module. Order matters and is the plan's: promotions and failures first, then task
 * recovery, drains, terminations, and last the spawns, which run concurrently. A spawn is
 * register-before-create: the worker row exists (spawning, no pod id) before the pod is
 * requested, and the pod is named after it, so a crash at any point leaves a row or a pod that
 * the next cycle's reconcile can match by name.
 */
#include "actuator.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

#include "db.h"
#include "log.h"
#include "runpod.h"
#include "worker_token.h"

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
    cJSON_AddStringToObject(o, "result", result);
    if (detail && detail[0])
        cJSON_AddStringToObject(o, "detail", detail);
    cJSON_AddItemToArray(res->outcomes, o);
}

static void add_error(ActResult *res, const char *msg)
{
    cJSON_AddItemToArray(res->errors, cJSON_CreateString(msg));
}

/* Workers whose earlier action was skipped or failed: later actions about them wait for the
 * next cycle's fresh snapshot. */
typedef struct {
    size_t n;
    char ids[PLAN_MAX_ACTIONS][SNAP_ID_MAX];
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
        snprintf(b->ids[b->n++], SNAP_ID_MAX, "%s", id);
}

#ifdef ORCH_TEST_HOOKS
/* Crash points for the fault-injection tests: ORCH_TEST_CRASH_AT=<name> kills the process. */
static void crash_point(const char *name)
{
    const char *at = getenv("ORCH_TEST_CRASH_AT");
    if (at && strcmp(at, name) == 0) {
        log_warn("test.crash_point", "point=%s", name);
        raise(SIGKILL);
    }
}
#else
#define crash_point(name) ((void)0)
#endif

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
/* Spawns                                                                                      */

static void make_worker_id(const char *prefix, char out[SNAP_ID_MAX])
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char stamp[32];
    if (strftime(stamp, sizeof stamp, "%Y%m%d_%H%M%S", &tm) == 0)
        stamp[0] = '\0';
    uuid_t u;
    uuid_generate_random(u);
    snprintf(out, SNAP_ID_MAX, "%.24s%.15s-%02x%02x%02x%02x", prefix, stamp, u[0], u[1], u[2],
             u[3]);
}

static void build_spec(const Config *cfg, const char *worker_id, PodCreateSpec *spec)
{
    memset(spec, 0, sizeof *spec);
    snprintf(spec->name, sizeof spec->name, "%s", worker_id);
    snprintf(spec->image, sizeof spec->image, "%s", cfg->runpod_worker_image);
    snprintf(spec->gpu_type, sizeof spec->gpu_type, "%s", cfg->runpod_gpu_types.items[0]);
    snprintf(spec->cloud, sizeof spec->cloud, "%s", cfg->runpod_cloud_type);
    spec->disk_gb = cfg->runpod_container_disk_gb;
    for (size_t i = 0; i < cfg->runpod_ports.count && i < 16; i++)
        snprintf(spec->ports[spec->n_ports++], sizeof spec->ports[0], "%.31s",
                 cfg->runpod_ports.items[i]);
    for (size_t i = 0; i < cfg->runpod_data_center_ids.count && i < 16; i++)
        snprintf(spec->data_center_ids[spec->n_data_center_ids++], sizeof spec->data_center_ids[0],
                 "%.63s", cfg->runpod_data_center_ids.items[i]);
    snprintf(spec->network_volume_id, sizeof spec->network_volume_id, "%s",
             cfg->runpod_network_volume_id);
    snprintf(spec->volume_mount_path, sizeof spec->volume_mount_path, "%s",
             cfg->runpod_volume_mount_path);
    /* The pod's environment: exactly what the operator passed through WORKER_ENV_*, plus the
     * worker id. Nothing of the orchestrator's own secrets. */
    snprintf(spec->env[0].name, sizeof spec->env[0].name, "WORKER_ID");
    snprintf(spec->env[0].value, sizeof spec->env[0].value, "%s", worker_id);
    spec->n_env = 1;
    /* issue 13: with the gateway configured, the pod reaches it with its own token. */
    if (cfg->gateway_public_url[0] && cfg->gateway_jwt_secret[0]) {
        snprintf(spec->env[1].name, sizeof spec->env[0].name, "WORKER_API_URL");
        snprintf(spec->env[1].value, sizeof spec->env[0].value, "%.511s", cfg->gateway_public_url);
        snprintf(spec->env[2].name, sizeof spec->env[0].name, "WORKER_TOKEN");
        if (worker_token_mint(cfg->gateway_jwt_secret, worker_id, (long long)time(NULL),
                              spec->env[2].value, sizeof spec->env[0].value) == STATUS_OK)
            spec->n_env = 3;
    }
    for (size_t i = 0; i < cfg->n_worker_env && spec->n_env < 72; i++) {
        snprintf(spec->env[spec->n_env].name, sizeof spec->env[0].name, "%s",
                 cfg->worker_env[i].name);
        snprintf(spec->env[spec->n_env].value, sizeof spec->env[0].value, "%s",
                 cfg->worker_env[i].value);
        spec->n_env++;
    }
}

/* A created (or found) pod: record its id on the row, or compensate when the row changed. */
static void record_created(App *app, ActResult *res, const Action *proto, const char *id,
                           const PodCreateResult *r)
{
    bool applied = false;
    Status dst =
        db_record_pod(app->conn, id, r->pod.id, r->gpu_type_used, r->pod.cost_per_hr, &applied);
    if (dst != STATUS_OK) {
        /* The pod exists and is named after the row: the next reconcile adopts it. */
        res->db_failed = true;
        record(res, proto, id, "failed", "pod created; recording its id failed");
        return;
    }
    if (!applied) {
        /* The row changed meanwhile (failed by another actor): do not leak the pod. */
        log_warn("pod.compensate",
                 "worker_id=%s pod_id=%s msg=\"worker row changed during create; terminating "
                 "the new pod\"",
                 id, r->pod.id);
        terminate_pod(app, res, r->pod.id, id, "compensate");
        record(res, proto, id, "skipped", "worker row changed during create");
        res->skipped++;
        return;
    }
    db_clear_capacity_backoff(app->conn, r->gpu_type_used);
    log_info("pod.created",
             "worker_id=%s pod_id=%s gpu_type=%s cost_per_hr=%.3f attempts=%d found_existing=%s",
             id, r->pod.id, r->gpu_type_used, r->pod.cost_per_hr, r->info.attempts,
             r->found_existing ? "true" : "false");
    res->workers_spawned++;
    Action a = *proto;
    snprintf(a.pod_id, sizeof a.pod_id, "%s", r->pod.id);
    record(res, &a, id, "applied", r->gpu_type_used);
}

/* A create whose outcome is unknown: the pod may exist or still appear. The row stays spawning
 * (it holds its slot under MAX_ACTIVE_GPUS); the next cycle adopts the pod by name, or fails
 * the row after SPAWN_POD_ID_GRACE_SEC ("No Runpod ID"). */
static void record_unknown(ActResult *res, const Action *proto, const char *id,
                           const PodCreateResult *r)
{
    char msg[PLAN_DETAIL_MAX];
    snprintf(msg, sizeof msg,
             "create outcome unknown (%s): kept spawning, adopted by name or failed after "
             "SPAWN_POD_ID_GRACE_SEC",
             runpod_error_str(r->info.error));
    log_warn("pod.create_unknown", "worker_id=%s error=%s detail=%s", id,
             runpod_error_str(r->info.error), r->info.detail);
    res->spawn_failures++;
    res->failed++;
    record(res, proto, id, "unknown", msg);
    add_error(res, msg);
}

/* Not created: the row fails (unexpectedly, unless RunPod had no capacity). */
static void record_not_created(App *app, ActResult *res, const Action *proto, const char *id,
                               const PodCreateResult *r)
{
    RunpodErrorClass ec = r->info.error;
    bool capacity = ec == RP_NO_CAPACITY;
    char reason[PLAN_DETAIL_MAX];
    snprintf(reason, sizeof reason, "Failed to spawn Runpod instance: %s%s%.100s",
             runpod_error_str(ec), r->info.detail[0] ? ": " : "", r->info.detail);
    log_error("pod.create_failed", "worker_id=%s error=%s http_status=%d detail=%s", id,
              runpod_error_str(ec), r->info.http_status, r->info.detail);
    if (ec == RP_AUTH)
        res->api_auth_failed = true;
    if (ec == RP_BALANCE)
        res->api_balance_failed = true;
    if (ec == RP_RETIRED)
        res->api_retired = true;
    bool applied = false;
    if (db_fail_worker(app->conn, id, WORKER_SPAWNING, reason, !capacity, &applied) != STATUS_OK)
        res->db_failed = true;
    res->spawn_failures++;
    if (!capacity)
        res->failed++;
    record(res, proto, id, capacity ? "no_capacity" : "failed", reason);
    add_error(res, reason);
}

/* Records one create's outcome: capacity backoffs, then created, unknown or not created. */
static void record_spawn(App *app, ActResult *res, const Action *proto, const char *id,
                         const PodCreateResult *r)
{
    const Config *cfg = app->cfg;
    for (size_t k = 0; k < r->n_no_capacity; k++) {
        log_warn("gpu.no_capacity", "gpu_type=%s worker_id=%s", r->no_capacity_types[k], id);
        if (db_record_capacity_failure(app->conn, r->no_capacity_types[k],
                                       cfg->capacity_backoff_base_sec,
                                       cfg->capacity_backoff_max_sec, "no capacity") != STATUS_OK)
            res->db_failed = true;
    }
    if (r->status == STATUS_OK && r->pod.id[0])
        record_created(app, res, proto, id, r);
    else if (r->outcome_unknown)
        record_unknown(res, proto, id, r);
    else
        record_not_created(app, res, proto, id, r);
}

/* The plan's first spawn action: the reason and detail every spawn of this cycle reports. */
static Action spawn_proto(const Plan *plan)
{
    Action proto;
    memset(&proto, 0, sizeof proto);
    proto.kind = ACTION_SPAWN_WORKER;
    for (size_t i = 0; i < plan->count; i++)
        if (plan->actions[i].kind == ACTION_SPAWN_WORKER)
            return plan->actions[i];
    return proto;
}

/* Spawns n workers, register-before-create: every row first, then the pods concurrently, then
 * each outcome. */
static Status apply_spawns(App *app, const Plan *plan, size_t n, ActResult *res,
                           long long failed_terminations)
{
    const Config *cfg = app->cfg;
    Action proto = spawn_proto(plan);
    /* Pods whose termination failed this cycle still exist: keep MAX_ACTIVE_GPUS true. */
    if (failed_terminations > 0) {
        size_t cut = (size_t)failed_terminations > n ? n : (size_t)failed_terminations;
        log_warn("scale.spawn_reduced",
                 "planned=%zu reduced_by=%zu msg=\"pod terminations failed this cycle\"", n, cut);
        n -= cut;
    }
    if (n == 0)
        return STATUS_OK;
    if (!app->rp) {
        add_error(res, "cannot spawn: no RunPod client (RUNPOD_API_KEY unset)");
        return STATUS_ERR_CONFIG;
    }
    if (plan->n_gpu_types == 0)
        return STATUS_OK;

    PodCreateSpec *specs = calloc(n, sizeof *specs);
    PodCreateResult *results = calloc(n, sizeof *results);
    char(*ids)[SNAP_ID_MAX] = calloc(n, SNAP_ID_MAX);
    const char *types[PLAN_GPU_TYPES_MAX];
    Status st = STATUS_OK;
    if (!specs || !results || !ids) {
        st = STATUS_ERR_NOMEM;
        goto out;
    }
    for (size_t g = 0; g < plan->n_gpu_types; g++)
        types[g] = plan->gpu_types[g];

    /* 1. Register every worker row first. */
    size_t registered = 0;
    for (size_t i = 0; i < n; i++) {
        make_worker_id(cfg->worker_id_prefix, ids[i]);
        if (db_insert_spawning_worker(app->conn, ids[i], types[0]) != STATUS_OK) {
            res->db_failed = true;
            st = STATUS_ERR_DB;
            break;
        }
        build_spec(cfg, ids[i], &specs[registered]);
        registered++;
    }
    if (registered == 0)
        goto out;

    /* 2. Create the pods concurrently. */
    runpod_create_pods(app->rp, specs, registered, types, plan->n_gpu_types, results);
    crash_point("after_create");

    /* 3. Record each outcome. */
    for (size_t i = 0; i < registered; i++)
        record_spawn(app, res, &proto, ids[i], &results[i]);
out:
    free(specs);
    free(results);
    free(ids);
    return st;
}

/* ------------------------------------------------------------------------------------------ */

Status actuator_apply(App *app, const Snapshot *snap, const Plan *plan, ActResult *res)
{
    (void)snap;
    Blocked *blocked = calloc(1, sizeof *blocked);
    if (!blocked)
        return STATUS_ERR_NOMEM;
    const Config *cfg = app->cfg;
    size_t spawns = 0;
    long long failed_terminations = 0;
    Status st = STATUS_OK;

    for (size_t i = 0; i < plan->count && !res->db_failed; i++) {
        const Action *a = &plan->actions[i];
        if (a->kind == ACTION_SPAWN_WORKER) {
            spawns++;
            continue;
        }
        if (is_blocked(blocked, a->worker_id)) {
            record(res, a, NULL, "skipped", "an earlier action on this worker did not apply");
            res->skipped++;
            continue;
        }
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
            s = a->force
                    ? db_force_drain_worker(app->conn, a->worker_id, a->from_state,
                                            reason_str(a->reason), &applied)
                    : db_drain_worker(app->conn, a->worker_id, reason_str(a->reason), &applied);
            if (s == STATUS_OK && applied) {
                res->workers_drained++;
                log_info("worker.draining", "worker_id=%s reason=%s detail=%s", a->worker_id,
                         reason_str(a->reason), a->detail);
            }
            break;
        case ACTION_TERMINATE_WORKER:
            if (terminate_pod(app, res, a->pod_id, a->worker_id, reason_str(a->reason)) != 0) {
                failed_terminations++;
                res->failed++;
                record(res, a, NULL, "failed", "pod termination failed; retried next cycle");
                block(blocked, a->worker_id);
                continue;
            }
            s = db_mark_terminated(app->conn, a->worker_id, a->from_state, reason_str(a->reason),
                                   &applied);
            if (s == STATUS_OK && applied) {
                res->workers_terminated++;
                log_info("worker.terminated", "worker_id=%s reason=%s", a->worker_id,
                         reason_str(a->reason));
            }
            break;
        case ACTION_ADOPT_POD:
            s = db_record_pod(app->conn, a->worker_id, a->pod_id, NULL, 0, &applied);
            if (s == STATUS_OK && applied) {
                res->pods_adopted++;
                log_info("pod.adopted", "worker_id=%s pod_id=%s", a->worker_id, a->pod_id);
            }
            break;
        case ACTION_TERMINATE_POD:
            if (terminate_pod(app, res, a->pod_id, "", "leaked_pod") != 0) {
                failed_terminations++;
                res->failed++;
                record(res, a, NULL, "failed", "pod termination failed");
                continue;
            }
            applied = true;
            res->leaked_pods_terminated++;
            log_warn("pod.leak_terminated", "pod_id=%s detail=%s", a->pod_id, a->detail);
            break;
        case ACTION_SPAWN_WORKER:
            break;
        }
        if (s != STATUS_OK) {
            res->db_failed = true;
            record(res, a, NULL, "failed", "database error");
            break;
        }
        if (!applied) {
            res->skipped++;
            record(res, a, NULL, "skipped", "row changed since the snapshot");
            log_info("action.skipped", "action=%s worker_id=%s task_id=%s",
                     action_kind_str(a->kind), a->worker_id, a->task_id);
            block(blocked, a->worker_id);
            continue;
        }
        record(res, a, NULL, "applied", a->detail);
    }

    if (!res->db_failed && spawns > 0) {
        Status s = apply_spawns(app, plan, spawns, res, failed_terminations);
        if (s != STATUS_OK && st == STATUS_OK)
            st = s;
    }
    free(blocked);

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
