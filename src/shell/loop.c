/* loop.c -- one control cycle, and the continuous loop (see loop.h).
 *
 * Shell module: observe (db_load_snapshot, RunPod pod list when needed), decide
 * (planner_decide, pure), act (actuator_apply) unless dry-run/SAFE_MODE, then record (state,
 * journal, summary, logs).
 */
#include "loop.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#include "actuator.h"
#include "catalog_cycle.h"
#include "db.h"
#include "dblog.h"
#include "http.h" /* issue 6 */
#include "lease.h"
#include "log.h"
#include "metrics.h"
#include "planner.h"
#include "runpod.h"
#include "spend.h"
#include "summary.h"
#include "task_cost.h"
#include "worker_name.h"

static long long monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static SnapPodStatus pod_status_to_snap(PodStatus s)
{
    switch (s) {
    case POD_STATUS_PROVISIONING:
        return SNAP_POD_PROVISIONING;
    case POD_STATUS_STARTING:
        return SNAP_POD_STARTING;
    case POD_STATUS_RUNNING:
        return SNAP_POD_RUNNING;
    case POD_STATUS_EXITED:
        return SNAP_POD_EXITED;
    case POD_STATUS_ERROR:
        return SNAP_POD_ERROR;
    case POD_STATUS_TERMINATED:
        return SNAP_POD_TERMINATED;
    case POD_STATUS_UNKNOWN:
        break;
    }
    return SNAP_POD_UNKNOWN;
}

/* Does this cycle need the pod list? Reconcile due, a spawning worker to check, a live row
 * without a pod id to adopt, or an operator's terminate/shutdown-all (pod ids, leaked pods). */
static bool need_pods(const App *app, const Snapshot *snap, const Policy *pol)
{
    if (app->manual)
        return app->manual->kind != MANUAL_SPAWN;
    if (planner_reconcile_due(snap, pol))
        return true;
    for (size_t i = 0; i < snap->n_workers; i++)
        if (snap->workers[i].state == WORKER_SPAWNING || !snap->workers[i].runpod_id[0])
            return true;
    return false;
}

/* Logs each defective entry of the pod list once per process (a foreign pod with odd fields
 * stays in the account for days; one line per cycle would drown the log). */
static void log_list_problems(const PodList *list)
{
    enum { SEEN_MAX = 128 };
    static char seen[SEEN_MAX][PODLIST_PROBLEM_LEN];
    static size_t n_seen, next;
    for (size_t i = 0; i < list->n_problems; i++) {
        const char *msg = list->problems[i];
        bool known = false;
        for (size_t k = 0; k < n_seen && !known; k++)
            known = strcmp(seen[k], msg) == 0;
        if (known) {
            log_debug("pods.entry_defect", "detail=%s", msg);
            continue;
        }
        log_warn("pods.entry_defect",
                 "detail=%s msg=\"a pod list entry could not be fully read; the other entries are "
                 "used, this one is kept with defaults or skipped\"",
                 msg);
        snprintf(seen[next], PODLIST_PROBLEM_LEN, "%s", msg);
        next = (next + 1) % SEEN_MAX;
        if (n_seen < SEEN_MAX)
            n_seen++;
    }
}

/* Whether the snapshot keeps listed pod p: a name of our worker-id shape, or the pod a live row
 * records (a row named otherwise, a partial entry whose name could not be read). */
static bool pod_is_relevant(const App *app, const Snapshot *snap, const Pod *p)
{
    if (worker_name_matches(app->cfg->worker_id_prefix, p->name))
        return true;
    for (size_t i = 0; i < snap->n_workers; i++)
        if (snap->workers[i].runpod_id[0] && strcmp(snap->workers[i].runpod_id, p->id) == 0)
            return true;
    return false;
}

/* Lists pods into the snapshot. A failure leaves pods_listed false: unknown, never "gone". One
 * defective entry never blinds the rest (runpod_json_parse_list). */
static void list_pods(App *app, Snapshot *snap, cJSON *errors)
{
    if (!app->rp)
        return;
    PodList list = {0};
    RunpodCallInfo info;
    memset(&info, 0, sizeof info);
    bool listed = runpod_list_pods(app->rp, &list, &info) == STATUS_OK;
    metrics_count_pod_list(app->metrics, listed);
    if (!listed) {
        log_warn("pods.list_failed",
                 "error=%s http_status=%d msg=\"pod states unknown this cycle; no pod-based "
                 "decisions\"",
                 runpod_error_str(info.error), info.http_status);
        char msg[160];
        snprintf(msg, sizeof msg, "pod list failed: %s", runpod_error_str(info.error));
        if (errors)
            cJSON_AddItemToArray(errors, cJSON_CreateString(msg));
        pod_list_clear(&list);
        return;
    }
    log_list_problems(&list);
    snap->pods_skipped = list.skipped;
    snap->pods_partial = list.partial;
    /* Only the pods this system may act on are kept: names of our worker-id shape, and the pods
     * live rows record. A shared account's other pods -- however many -- never crowd ours out
     * of the snapshot (they are counted). */
    snap->n_pods = 0;
    snap->pods_foreign = 0;
    size_t relevant = 0;
    for (size_t i = 0; i < list.count; i++)
        relevant += pod_is_relevant(app, snap, &list.pods[i]);
    if (relevant > SNAP_PODS_MAX) {
        log_error("pods.too_many",
                  "count=%zu limit=%d msg=\"more pods of ours than the snapshot holds; no "
                  "pod-based decisions this cycle\"",
                  relevant, SNAP_PODS_MAX);
        if (errors)
            cJSON_AddItemToArray(errors,
                                 cJSON_CreateString("pod list ignored: more pods of ours than the "
                                                    "snapshot holds (2048)"));
        pod_list_clear(&list);
        return;
    }
    for (size_t i = 0; i < list.count; i++) {
        const Pod *p = &list.pods[i];
        if (!pod_is_relevant(app, snap, p)) {
            snap->pods_foreign++;
            continue;
        }
        SnapPod *sp = &snap->pods[snap->n_pods++];
        memset(sp, 0, sizeof *sp);
        snprintf(sp->id, sizeof sp->id, "%s", p->id);
        snprintf(sp->name, sizeof sp->name, "%s", p->name);
        snprintf(sp->gpu_type, sizeof sp->gpu_type, "%s", p->gpu_id);
        sp->status = pod_status_to_snap(p->status);
        sp->cost_per_hr = p->cost_per_hr;
        sp->partial = p->partial;
        sp->age_sec = p->created_at_epoch >= 0
                          ? (long long)(snap->now_epoch - (double)p->created_at_epoch)
                          : -1;
        if (p->created_at_epoch >= 0 && sp->age_sec < 0)
            sp->age_sec = 0; /* clocks disagree a little: a just-created pod */
    }
    snap->pods_listed = true;
    pod_list_clear(&list);
    /* Ages of pods without a readable createdAt (from when we first saw them), and pods named
     * after ended rows. A failure leaves both unknown: such pods are then left alone. */
    if (app->conn &&
        db_annotate_pods(app->conn, snap, app->cfg->worker_id_prefix, app->dry_run) != STATUS_OK)
        log_warn("pods.annotate_failed",
                 "msg=\"pod first-seen ages and ended rows unknown this cycle\"");
}

Status loop_list_pods(App *app, Snapshot *snap, cJSON *errors)
{
    snap->pods_listed = false;
    list_pods(app, snap, errors);
    return snap->pods_listed ? STATUS_OK : STATUS_ERR_API;
}

static void log_plan(const Plan *plan)
{
    for (size_t p = 0; plan->n_pools > 1 && p < plan->n_pools; p++) {
        const PlanPool *pp = &plan->pools[p];
        log_info("scale.pool",
                 "pool=%s queued=%lld busy=%lld idle=%lld spawning=%lld "
                 "terminating=%lld desired=%lld to_spawn=%lld spawn_limit=%s breaker_open=%s",
                 pp->name, pp->queued, pp->busy, pp->idle, pp->spawning, pp->terminating,
                 pp->desired, pp->to_spawn, spawn_limit_str(pp->spawn_limit),
                 pp->breaker_open ? "true" : "false");
    }
    if (plan->unserved_queued > 0)
        log_warn("tasks.unserved",
                 "queued=%lld run_types=%zu first=%s msg=\"Queued tasks of run types no pool "
                 "serves: add the run type to a pool's RUN_TYPES (POOL_<NAME>_RUN_TYPES)\"",
                 plan->unserved_queued, plan->n_unserved,
                 plan->n_unserved ? plan->unserved[0] : "");
    log_info("scale.decision",
             "queued=%lld busy=%lld idle=%lld active=%lld spawning=%lld terminating=%lld "
             "desired=%lld to_spawn=%lld spawn_limit=%s breaker_open=%s failure_rate=%.3f",
             plan->queued, plan->busy, plan->idle, plan->active, plan->spawning, plan->terminating,
             plan->desired, plan->to_spawn, spawn_limit_str(plan->spawn_limit),
             plan->breaker_open ? "true" : "false", plan->failure_rate);
    for (size_t i = 0; i < plan->count; i++) {
        const Action *a = &plan->actions[i];
        log_info("plan.action", "action=%s reason=%s worker_id=%s task_id=%s pod_id=%s detail=%s",
                 action_kind_str(a->kind), reason_str(a->reason), a->worker_id, a->task_id,
                 a->pod_id, a->detail);
    }
    if (plan->over_spend_cap)
        log_warn("spend.over_cap",
                 "fleet_cost_per_hr=%.3f msg=\"the live fleet costs more than a spend cap "
                 "(MAX_HOURLY_SPEND_USD, fleet or pool): nothing is spawned until it is under; "
                 "lower the fleet by hand or raise the cap if this is not expected\"",
                 plan->fleet_cost_per_hr);
    if (plan->fleet_breaker_open)
        log_warn("breaker.fleet_open",
                 "failure_rate=%.3f msg=\"workers of two or more pools are failing: every pool "
                 "stops spawning until the failure window clears (a shared image or registry?)\"",
                 plan->failure_rate);
    if (plan->breaker_open)
        log_warn("breaker.open",
                 "failure_rate=%.3f msg=\"spawning paused until the failure "
                 "window clears\"",
                 plan->failure_rate);
}

static Status ensure_connection(App *app)
{
    if (app->conn && PQstatus(app->conn) == CONNECTION_OK)
        return STATUS_OK;
    if (app->conn) {
        log_warn("db.reconnect", "msg=\"the database connection was lost; reconnecting\"");
        PQfinish(app->conn);
        app->conn = NULL;
    }
    return db_connect(app->cfg, &app->conn);
}

/* Takes the cycle lease (lease.h). An operator's request waits for a running cycle (up to 30 s)
 * instead of skipping. Returns STATUS_OK (held), STATUS_LOCKED (logged as cycle.skipped_locked),
 * or the failure. */
static Status take_cycle_lease(App *app)
{
    Status st = STATUS_OK;
    if (!app->lease)
        st = lease_new(app->cfg, app->command, &app->lease);
    bool got = false;
    if (st == STATUS_OK)
        st = lease_try_acquire(app->lease, app->conn, &got);
    for (int waited = 0; st == STATUS_OK && !got && app->manual && waited < 60; waited++) {
        struct timespec ts = {.tv_sec = 0, .tv_nsec = 500000000L};
        nanosleep(&ts, NULL);
        st = lease_try_acquire(app->lease, app->conn, &got);
    }
    if (st != STATUS_OK)
        return st;
    if (!got) {
        lease_log_holder(app->lease);
        return STATUS_LOCKED;
    }
    return STATUS_OK;
}

/* The plan (pure): an operator's request, or the cycle. */
static void decide(App *app, const Snapshot *snap, const Policy *policy, Plan *plan)
{
    if (app->manual) {
        planner_manual(snap, policy, app->manual, plan);
        app->manual_result = plan->manual_result;
        app->manual_pods_listed = snap->pods_listed;
    } else {
        planner_decide(snap, policy, plan);
    }
}

/* Observe and decide: the snapshot, the pod list when needed, and the plan (pure). */
static Status observe_and_decide(App *app, Snapshot *snap, Plan *plan, cJSON *errors,
                                 bool *pods_wanted)
{
    Status st = db_load_snapshot(app->conn, app->cfg, snap);
    if (st != STATUS_OK) {
        cJSON_AddItemToArray(errors, cJSON_CreateString("snapshot load failed: no actions"));
        return st;
    }
    log_set_cycle(snap->cycle_number);
    dblog_set_cycle(snap->cycle_number);
    log_info("cycle.start", "dry_run=%s workers=%zu queued=%lld in_progress=%lld",
             app->dry_run ? "true" : "false", snap->n_workers, snap->queued_claimable,
             snap->in_progress_total);
    Policy policy;
    policy_from_config(app->cfg, &policy);
    *pods_wanted = need_pods(app, snap, &policy) && app->rp;
    spend_refresh(app, snap); /* the bill, when due (issue 16) */
    catalog_cycle_overlay_quota(app, snap);
    /* RunPod's quota is known to be spent (a 429's Retry-After, or a window at 0 that has not
     * reset, seen less than RATE_LIST_DEFER_MAX_SEC ago): a cycle's pod list would only be
     * answered 429, so it waits, and the cycle decides nothing pod-based, as after a failed
     * list. An older "0 left" lets the list go, so that a fresh header arrives. An operator's
     * request still lists; terminations are never held back. */
    if (*pods_wanted && !app->manual && catalog_cycle_quota_spent(snap)) {
        *pods_wanted = false;
        cJSON_AddItemToArray(errors, cJSON_CreateString("pod list deferred: RunPod's rate-limit "
                                                        "quota is spent until its reset"));
    }
    if (*pods_wanted)
        list_pods(app, snap, errors);
    catalog_cycle_overlay_quota(app, snap);
    decide(app, snap, &policy, plan);
    /* A plan that spawns may want a fresh GPU catalog (or task durations): read, then plan
     * again with it (issue 16; a no-op cycle makes no catalog call). */
    if (catalog_cycle_prepare(app, snap, &policy, plan, errors)) {
        catalog_cycle_overlay_quota(app, snap);
        decide(app, snap, &policy, plan);
    }
    log_plan(plan);
    catalog_cycle_log(plan);
    return STATUS_OK;
}

/* Persists the controller state and writes the journal row. Not after a database failure: the
 * connection may be gone and the state would be a guess. The state only while the cycle lease
 * is still ours (lease_ok): a cycle that lost it must not overwrite what the new holder
 * records; its journal row is still written (an append, with exit_status lease_lost). */
static void record_cycle(App *app, const Snapshot *snap, const Plan *plan, const ActResult *act,
                         const cJSON *errors, Status st, long long duration_ms, bool lease_ok)
{
    const Config *cfg = app->cfg;
    if (st == STATUS_ERR_DB)
        return;
    CycleStateUpdate u = {
        .success = st == STATUS_OK,
        .reconciled = plan && plan->reconcile_ran,
        .scaled_up = act && act->workers_spawned > 0,
        .scaled_down = act && act->workers_drained > 0,
        .breaker_open = plan && plan->breaker_open,
        .breaker_reason =
            plan && plan->breaker_open ? "failure rate above MAX_WORKER_FAILURE_RATE" : NULL,
        .max_task_attempts = cfg->max_task_attempts,
    };
    if (lease_ok) {
        db_save_state(app->conn, snap->cycle_number, &u);
        catalog_cycle_save_quota(app); /* what the next run starts from (issue 16) */
    }
    char *snap_json = summary_snapshot_json(snap);
    char *plan_json = summary_plan_json(plan);
    char *out_json = act ? cJSON_PrintUnformatted(act->outcomes) : NULL;
    char *err_json = cJSON_PrintUnformatted(errors);
    JournalEntry e = {
        .cycle_number = snap->cycle_number,
        .instance_id = cfg->orchestrator_instance_id,
        .command = app->command,
        .config_hash = app->config_hash,
        .safe_mode = cfg->safe_mode,
        .dry_run = app->dry_run,
        .duration_ms = duration_ms,
        .snapshot_json = snap_json ? snap_json : "{}",
        .plan_json = plan_json ? plan_json : "[]",
        .outcomes_json = out_json ? out_json : "[]",
        .errors_json = err_json ? err_json : "[]",
        .exit_status = status_str(st),
        .exit_code = status_exit_code(st),
    };
    db_insert_journal(app->conn, &e);
    free(snap_json);
    free(plan_json);
    free(out_json);
    free(err_json);
}

/* Removes the plan's spawns (the rest of the plan stands). Returns how many. */
static size_t drop_spawns(Plan *plan)
{
    size_t kept = 0, dropped = 0;
    for (size_t i = 0; i < plan->count; i++) {
        if (plan->actions[i].kind == ACTION_SPAWN_WORKER) {
            dropped++;
            continue;
        }
        plan->actions[kept++] = plan->actions[i];
    }
    plan->count = kept;
    plan->to_spawn = 0;
    for (size_t p = 0; p < plan->n_pools; p++)
        plan->pools[p].to_spawn = 0;
    return dropped;
}

/* A cycle that could not see or plan everything is not a success (issue 12 review): more live
 * rows than the snapshot holds (it acts on nothing), or more actions than a plan holds (the rest
 * wait). Each says so in errors and turns an ok cycle into a partial one (exit 6). */
static Status incomplete_plan(const Snapshot *snap, const Plan *plan, cJSON *errors, Status st,
                              bool pods_wanted)
{
    char msg[256];
    bool incomplete = false;
    if (pods_wanted && !snap->pods_listed) {
        /* Blind to pods this cycle: no adoption, no leak sweep, no pod-based failure. Rows whose
         * create's outcome is unknown wait for the list, holding their slots; say so. */
        long long waiting = 0;
        for (size_t i = 0; i < snap->n_workers; i++)
            waiting += snap->workers[i].state == WORKER_SPAWNING && !snap->workers[i].runpod_id[0];
        if (waiting > 0) {
            snprintf(
                msg, sizeof msg,
                "%lld spawning worker%s without a pod id wait for the pod list (their creates' "
                "outcome is unknown); they keep their slots under MAX_ACTIVE_GPUS",
                waiting, waiting == 1 ? "" : "s");
            cJSON_AddItemToArray(errors, cJSON_CreateString(msg));
        }
        return st == STATUS_OK ? STATUS_ERR_API : st;
    }
    if (snap->workers_truncated) {
        snprintf(msg, sizeof msg,
                 "more than %d live worker rows: the cycle acted on nothing; terminate stale rows "
                 "(orchestrator reconcile, shutdown-all) or delete legacy rows",
                 SNAP_WORKERS_MAX);
        cJSON_AddItemToArray(errors, cJSON_CreateString(msg));
        incomplete = true;
    }
    if (plan->truncated) {
        snprintf(msg, sizeof msg,
                 "the plan held only %d actions: the rest wait for the next cycle; run it again",
                 PLAN_MAX_ACTIONS);
        cJSON_AddItemToArray(errors, cJSON_CreateString(msg));
        incomplete = true;
    }
    return incomplete && st == STATUS_OK ? STATUS_ERR_PARTIAL : st;
}

/* Cost per task (issue 17): on the reconcile cadence, under the lease, never in a dry run (it
 * moves orchestrator_state.cost_observed_until), so a no-op cycle between reconciles runs no
 * extra statement (structure_docs/cost.md). A failure is logged and costs nothing else: the
 * interval is observed by the next reconcile. */
static void observe_costs(App *app, const Plan *plan, TaskCostReport *out)
{
    if (!plan->reconcile_due || app->manual || !app->conn)
        return;
    if (task_cost_observe(app->conn, app->cfg->reconcile_interval_sec, out) != STATUS_OK) {
        memset(out, 0, sizeof *out);
        log_warn("cost.observe_failed", "msg=\"task costs not observed this cycle; the next "
                                        "reconcile observes the interval\"");
    }
}

static bool connected(const App *app)
{
    return app->conn && PQstatus(app->conn) == CONNECTION_OK;
}

Status loop_cycle(App *app, cJSON **summary)
{
    const Config *cfg = app->cfg;
    long long t0 = monotonic_ms();
    long long statements0 = db_statement_count();
    Snapshot *snap = NULL;
    Plan *plan = NULL;
    ActResult act;
    bool have_act = false;
    bool leased = false;
    TaskCostReport *costs = NULL;
    Status st;
    *summary = NULL;

    cJSON *errors = cJSON_CreateArray();
    if (!errors)
        return STATUS_ERR_NOMEM;

    st = ensure_connection(app);
    if (st != STATUS_OK) {
        cJSON_AddItemToArray(errors, cJSON_CreateString("database connection failed"));
        goto out;
    }
    /* A dry run (--dry-run, plan, SAFE_MODE) writes nothing, the lease row included, and acts
     * on nothing: it plans from its snapshot without taking the lease. */
    if (!app->dry_run) {
        st = take_cycle_lease(app);
        if (st != STATUS_OK)
            goto out;
        leased = true;
    }

    snap = calloc(1, sizeof *snap);
    plan = calloc(1, sizeof *plan);
    costs = calloc(1, sizeof *costs);
    if (!snap || !plan || !costs) {
        st = STATUS_ERR_NOMEM;
        goto out;
    }
    bool pods_wanted = false;
    st = observe_and_decide(app, snap, plan, errors, &pods_wanted);
    if (st != STATUS_OK || app->dry_run)
        goto out;

    st = act_result_init(&act);
    if (st != STATUS_OK)
        goto out;
    have_act = true;
    /* Which run types each pool's workers may claim (func_claim_next_task reads worker_pools):
     * rewritten only when the configuration changed, before any spawn of the new pools, and only
     * by the lease holder (a fenced-out cycle with an old configuration must not rewrite it). */
    st = lease_verify(app->lease, app->conn);
    if (st != STATUS_OK)
        goto out;
    bool pools_changed = false;
    Status sync = db_sync_pools(app->conn, cfg, snap, &pools_changed);
    if (sync == STATUS_OK && pools_changed)
        log_info("pools.synced", "pools=%zu msg=\"worker_pools now matches POOLS\"", cfg->n_pools);
    if (sync != STATUS_OK) {
        /* Workers of a new pool could claim nothing: no spawn this cycle; the rest goes on. */
        size_t dropped = drop_spawns(plan);
        log_error("pools.sync_failed",
                  "spawns_dropped=%zu msg=\"worker_pools could not be "
                  "rewritten; no spawn this cycle\"",
                  dropped);
        cJSON_AddItemToArray(errors, cJSON_CreateString("worker_pools could not be updated to "
                                                        "match POOLS: no spawn this cycle"));
    }
    st = actuator_apply(app, snap, plan, &act);
    if (st != STATUS_ERR_DB && st != STATUS_ERR_LEASE_LOST) /* a fenced cycle writes nothing more */
        observe_costs(app, plan, costs);
    for (cJSON *e = act.errors ? act.errors->child : NULL; e; e = e->next)
        cJSON_AddItemToArray(errors, cJSON_CreateString(e->valuestring));
    if (sync != STATUS_OK && st == STATUS_OK)
        st = STATUS_ERR_PARTIAL;
    st = incomplete_plan(snap, plan, errors, st, pods_wanted);

out:;
    long long duration_ms = monotonic_ms() - t0;
    /* The fence once more before the state is written (one statement): a lease lost after the
     * last action still ends the cycle lease_lost, and its state is not saved. */
    bool lease_ok = false;
    if (leased && connected(app) && st != STATUS_ERR_DB) {
        Status v = st == STATUS_ERR_LEASE_LOST ? st : lease_verify(app->lease, app->conn);
        lease_ok = v == STATUS_OK;
        if (v != STATUS_OK && (st == STATUS_OK || st == STATUS_ERR_PARTIAL))
            st = v;
    }
    /* Record the cycle: state and journal, unless nothing may be written or nothing ran. */
    if (leased && snap && snap->cycle_number > 0 && connected(app))
        record_cycle(app, snap, plan, have_act ? &act : NULL, errors, st, duration_ms, lease_ok);
    /* Built after the journal so sql_statements counts every statement of the cycle (the
     * lease release that follows adds one). */
    *summary = summary_build(app, snap, plan, have_act ? &act : NULL, errors, st, duration_ms,
                             db_statement_count() - statements0);
    if (*summary && snap && snap->cycle_number > 0 && costs)
        summary_add_task_cost(*summary, costs);
    if (leased)
        lease_release(app->lease, connected(app) ? app->conn : NULL);
    if (app->conn && !connected(app)) {
        PQfinish(app->conn); /* reconnect next time */
        app->conn = NULL;
    }
    if (st != STATUS_LOCKED)
        log_info("cycle.end", "status=%s duration_ms=%lld sql_statements=%lld", status_str(st),
                 duration_ms, db_statement_count() - statements0);
    /* ENABLE_DB_LOGGING: this cycle's lines into system_logs (never in a dry run). */
    if (leased)
        dblog_flush(app->conn, cfg);
    dblog_set_cycle(0);
    /* Metrics: count this cycle, rewrite METRICS_FILE (not after a lock skip: the instance that
     * holds the lease writes it), publish to the HTTP endpoint. No-ops when off. */
    metrics_observe_cycle(app->metrics, snap, plan, have_act ? &act : NULL, st,
                          (double)duration_ms / 1000.0);
    metrics_observe_task_costs(app->metrics, costs);
    catalog_cycle_observe_metrics(app);
    if (st != STATUS_LOCKED)
        metrics_file_write(app->metrics, cfg->metrics_file);
    http_publish(app->http, app->metrics, *summary, st);
    log_set_cycle(0);
    if (have_act)
        act_result_clear(&act);
    cJSON_Delete(errors);
    free(snap);
    free(plan);
    free(costs);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* Continuous                                                                                  */

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* Waits up to timeout_ms for a NOTIFY on the app's connection (LISTEN orchestrator_wakeup) or a
 * signal. Returns early, after a short debounce, when a notification arrives. */
static void wait_for_wakeup(App *app, long long timeout_ms)
{
    long long deadline = monotonic_ms() + timeout_ms;
    while (!g_stop) {
        long long left = deadline - monotonic_ms();
        if (left <= 0)
            return;
        int fd = app->conn ? PQsocket(app->conn) : -1;
        if (fd < 0) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = 200000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(fd, &rd);
        long long slice = left < 500 ? left : 500;
        struct timeval tv = {.tv_sec = (time_t)(slice / 1000),
                             .tv_usec = (suseconds_t)((slice % 1000) * 1000)};
        int r = select(fd + 1, &rd, NULL, NULL, &tv);
        if (r < 0 && errno != EINTR)
            return;
        if (r > 0) {
            if (!PQconsumeInput(app->conn))
                return; /* connection lost: the next cycle reconnects */
            PGnotify *n = PQnotifies(app->conn);
            if (n) {
                for (; n; n = PQnotifies(app->conn))
                    PQfreemem(n);
                /* Debounce: a burst of inserts becomes one cycle. */
                struct timespec ts = {.tv_sec = 0, .tv_nsec = 200000000L};
                nanosleep(&ts, NULL);
                PQconsumeInput(app->conn);
                while ((n = PQnotifies(app->conn)) != NULL)
                    PQfreemem(n);
                log_debug("loop.wakeup", "msg=\"new tasks notified\"");
                return;
            }
        }
    }
}

static void listen_wakeups(App *app)
{
    if (!app->conn)
        return;
    PGresult *res = PQexec(app->conn, "LISTEN orchestrator_wakeup");
    if (PQresultStatus(res) != PGRES_COMMAND_OK)
        log_warn("loop.listen_failed", "error=%s", PQerrorMessage(app->conn));
    PQclear(res);
}

Status loop_continuous(App *app, int interval_sec)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    g_stop = 0;

    log_info("loop.start", "interval_sec=%d", interval_sec);
    while (!g_stop) {
        bool had_conn = app->conn != NULL;
        cJSON *summary = NULL;
        Status st = loop_cycle(app, &summary);
        if (summary) {
            char *s = cJSON_PrintUnformatted(summary);
            if (s && log_enabled(LOG_DEBUG))
                log_debug("cycle.summary", "summary=%s", s);
            free(s);
            cJSON_Delete(summary);
        }
        if (st == STATUS_ERR_CONFIG || st == STATUS_ERR_INTERNAL || st == STATUS_ERR_USAGE ||
            st == STATUS_ERR_NOMEM)
            return st;
        if (st != STATUS_OK && st != STATUS_LOCKED)
            log_warn("loop.cycle_failed", "status=%s msg=\"retrying next tick\"", status_str(st));
        if (app->conn && !had_conn && app->cfg->enable_notify_wakeup)
            listen_wakeups(app);
        wait_for_wakeup(app, (long long)interval_sec * 1000);
    }
    log_info("loop.stop", "msg=\"signal received; the last cycle finished\"");
    return STATUS_OK;
}
