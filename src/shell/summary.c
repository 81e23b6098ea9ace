/* summary.c -- cycle summary and journal documents (see summary.h). */
#include "summary.h"

#include "catalog_cycle.h"
#include "dblog.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

cJSON *summary_plan_array(const Plan *plan)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && plan && i < plan->count; i++) {
        const Action *a = &plan->actions[i];
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        cJSON_AddStringToObject(o, "action", action_kind_str(a->kind));
        cJSON_AddStringToObject(o, "reason", reason_str(a->reason));
        if (a->worker_id[0])
            cJSON_AddStringToObject(o, "worker_id", a->worker_id);
        if (a->task_id[0])
            cJSON_AddStringToObject(o, "task_id", a->task_id);
        if (a->pod_id[0])
            cJSON_AddStringToObject(o, "pod_id", a->pod_id);
        if (a->kind == ACTION_RECOVER_TASK)
            cJSON_AddStringToObject(o, "task_outcome", a->task_to_failed ? "Failed" : "Queued");
        if (a->detail[0])
            cJSON_AddStringToObject(o, "detail", a->detail);
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

char *summary_plan_json(const Plan *plan)
{
    if (!plan)
        return NULL;
    cJSON *arr = summary_plan_array(plan);
    char *s = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    return s;
}

char *summary_snapshot_json(const Snapshot *snap)
{
    if (!snap)
        return NULL;
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddNumberToObject(o, "queued_claimable", (double)snap->queued_claimable);
    cJSON_AddNumberToObject(o, "queued_total", (double)snap->queued_total);
    cJSON_AddNumberToObject(o, "in_progress", (double)snap->in_progress_total);
    cJSON_AddNumberToObject(o, "live_workers", (double)snap->n_workers);
    cJSON_AddNumberToObject(o, "in_progress_tasks_seen", (double)snap->n_tasks);
    cJSON_AddNumberToObject(o, "ended_in_window", (double)snap->ended_in_window);
    cJSON_AddNumberToObject(o, "unexpected_in_window", (double)snap->unexpected_in_window);
    cJSON_AddBoolToObject(o, "pods_listed", snap->pods_listed);
    cJSON_AddNumberToObject(o, "pods", (double)snap->n_pods);
    cJSON *rts = cJSON_AddObjectToObject(o, "run_types");
    for (size_t k = 0; rts && k < snap->n_run_types; k++) {
        cJSON *x = cJSON_AddObjectToObject(rts, snap->run_types[k].name);
        cJSON_AddNumberToObject(x, "claimable", (double)snap->run_types[k].claimable);
        cJSON_AddNumberToObject(x, "queued", (double)snap->run_types[k].queued);
    }
    cJSON *ws = cJSON_AddArrayToObject(o, "workers");
    for (size_t i = 0; ws && i < snap->n_workers; i++) {
        const SnapWorker *w = &snap->workers[i];
        cJSON *x = cJSON_CreateObject();
        if (!x)
            break;
        cJSON_AddStringToObject(x, "id", w->id);
        cJSON_AddStringToObject(x, "pool", w->pool);
        cJSON_AddStringToObject(x, "status", worker_state_str(w->state));
        cJSON_AddNumberToObject(x, "age_sec", (double)w->age_sec);
        cJSON_AddNumberToObject(x, "heartbeat_age_sec", (double)w->heartbeat_age_sec);
        cJSON_AddItemToArray(ws, x);
    }
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return s;
}

static void add_count(cJSON *o, const char *k, long long v)
{
    cJSON_AddNumberToObject(o, k, (double)v);
}

cJSON *summary_pools_array(const Plan *plan)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t p = 0; arr && plan && p < plan->n_pools; p++) {
        const PlanPool *pp = &plan->pools[p];
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        cJSON_AddStringToObject(o, "pool", pp->name);
        add_count(o, "queued", pp->queued);
        add_count(o, "queued_total", pp->queued_total);
        add_count(o, "oldest_queued_age_sec", pp->oldest_queued_age_sec);
        add_count(o, "running", pp->running);
        add_count(o, "spawning", pp->spawning);
        add_count(o, "active", pp->active);
        add_count(o, "idle", pp->idle);
        add_count(o, "busy", pp->busy);
        add_count(o, "terminating", pp->terminating);
        add_count(o, "min", pp->min_active);
        add_count(o, "max", pp->max_active);
        add_count(o, "desired", pp->desired);
        add_count(o, "to_spawn", pp->to_spawn);
        add_count(o, "stopped", pp->stopped);
        add_count(o, "to_start", pp->to_start);
        cJSON_AddStringToObject(o, "spawn_limit", spawn_limit_str(pp->spawn_limit));
        cJSON_AddBoolToObject(o, "breaker_open", pp->breaker_open);
        cJSON_AddNumberToObject(o, "failure_rate", pp->failure_rate);
        cJSON_AddNumberToObject(o, "cost_per_hr", pp->cost_per_hr);
        /* The adaptive policies' view (issue 15): hot for ADAPTIVE_WARM_POOL, the predicted
         * backlog for PREDICTIVE_SCALE_UP, the idle grace for ADAPTIVE_IDLE_GRACE (-1 off). */
        cJSON_AddBoolToObject(o, "hot", pp->hot);
        cJSON_AddNumberToObject(o, "predicted_backlog", round(pp->predicted_backlog * 100) / 100);
        add_count(o, "idle_grace_sec", pp->idle_grace_sec);
        cJSON *g = cJSON_AddArrayToObject(o, "gpu_types_available");
        for (size_t k = 0; g && k < pp->n_gpu_types; k++)
            cJSON_AddItemToArray(g, cJSON_CreateString(pp->gpu_types[k]));
        cJSON_AddItemToObject(o, "gpu_choice", catalog_cycle_choice_json(&pp->choice));
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}

cJSON *summary_unserved(const Plan *plan)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !plan)
        return o;
    add_count(o, "queued", plan->unserved_queued);
    cJSON *a = cJSON_AddArrayToObject(o, "run_types");
    for (size_t k = 0; a && k < plan->n_unserved && k < PLAN_UNSERVED_MAX; k++)
        cJSON_AddItemToArray(a, cJSON_CreateString(plan->unserved[k]));
    return o;
}

cJSON *summary_spend(const Snapshot *snap, const Plan *plan)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !snap || !plan)
        return o;
    cJSON_AddNumberToObject(o, "estimated_usd_per_hr", plan->spend_estimate_per_hr);
    if (snap->billing_known) {
        cJSON_AddNumberToObject(o, "billed_usd_per_hr", snap->billing_total_usd_per_hr);
        cJSON_AddNumberToObject(o, "unexplained_usd_per_hr", snap->billing_unexplained_usd_per_hr);
    } else {
        cJSON_AddNullToObject(o, "billed_usd_per_hr");
        cJSON_AddNullToObject(o, "unexplained_usd_per_hr");
    }
    cJSON_AddNumberToObject(o, "effective_usd_per_hr", plan->fleet_cost_per_hr);
    cJSON_AddBoolToObject(o, "billing_known", snap->billing_known);
    add_count(o, "billing_read_age_sec", snap->billing_read_age_sec);
    return o;
}

cJSON *summary_build(const App *app, const Snapshot *snap, const Plan *plan, const ActResult *act,
                     const cJSON *errors, Status st, long long duration_ms,
                     long long sql_statements)
{
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return NULL;
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    cJSON_AddStringToObject(root, "timestamp", when);
    add_count(root, "cycle", snap ? snap->cycle_number : 0);
    cJSON_AddStringToObject(root, "command", app->command ? app->command : "");
    cJSON_AddBoolToObject(root, "dry_run", app->dry_run);
    cJSON_AddBoolToObject(root, "safe_mode", app->cfg->safe_mode);
    cJSON_AddStringToObject(root, "result", status_str(st));
    cJSON_AddNumberToObject(root, "exit_code", status_exit_code(st));
    if (st == STATUS_LOCKED)
        cJSON_AddStringToObject(root, "skipped", "locked");

    cJSON *actions = cJSON_AddObjectToObject(root, "actions");
    if (actions) {
        add_count(actions, "workers_promoted", act ? act->workers_promoted : 0);
        add_count(actions, "workers_failed", act ? act->workers_failed : 0);
        add_count(actions, "workers_spawned", act ? act->workers_spawned : 0);
        add_count(actions, "workers_terminated", act ? act->workers_terminated : 0);
        add_count(actions, "workers_drained", act ? act->workers_drained : 0);
        add_count(actions, "tasks_reset", act ? act->tasks_reset : 0);
        add_count(actions, "tasks_failed", act ? act->tasks_failed : 0);
        add_count(actions, "pods_adopted", act ? act->pods_adopted : 0);
        add_count(actions, "leaked_pods_terminated", act ? act->leaked_pods_terminated : 0);
        add_count(actions, "spawn_failures", act ? act->spawn_failures : 0);
        add_count(actions, "spawns_deferred",
                  (act ? act->spawns_deferred : 0) + (plan ? plan->rate_deferred : 0));
        add_count(actions, "skipped", act ? act->skipped : 0);
        add_count(actions, "failed", act ? act->failed : 0);
        add_count(actions, "workers_stopped", act ? act->workers_stopped : 0);
        add_count(actions, "workers_started", act ? act->workers_started : 0);
        add_count(actions, "start_fallbacks", act ? act->start_fallbacks : 0);
        add_count(actions, "stop_fallbacks", act ? act->stop_fallbacks : 0);
        add_count(actions, "log_tails_read", act ? act->log_tails : 0);
        add_count(actions, "log_tails_failed", act ? act->log_tail_failures : 0);
    }
    cJSON *status = cJSON_AddObjectToObject(root, "status");
    if (status && plan && snap) {
        add_count(status, "queued", plan->queued);
        add_count(status, "queued_total", snap->queued_total);
        add_count(status, "oldest_queued_age_sec", snap->oldest_queued_age_sec);
        add_count(status, "running", plan->running);
        add_count(status, "spawning", plan->spawning);
        add_count(status, "active", plan->active);
        add_count(status, "idle", plan->idle);
        add_count(status, "busy", plan->busy);
        add_count(status, "terminating", plan->terminating);
        add_count(status, "desired", plan->desired);
        add_count(status, "to_spawn", plan->to_spawn);
        cJSON_AddStringToObject(status, "spawn_limit", spawn_limit_str(plan->spawn_limit));
        cJSON_AddNumberToObject(status, "fleet_cost_per_hr", plan->fleet_cost_per_hr);
        cJSON_AddBoolToObject(status, "over_spend_cap", plan->over_spend_cap);
        cJSON_AddBoolToObject(status, "reconciled", plan->reconcile_ran);
        add_count(status, "tasks_held_by_others", plan->foreign_held_tasks);
        add_count(status, "stopped", plan->stopped);
        add_count(status, "to_start", plan->to_start);
    }
    if (plan && snap)
        cJSON_AddItemToObject(root, "spend", summary_spend(snap, plan));
    cJSON *pl = snap && snap->pods_listed ? cJSON_AddObjectToObject(root, "pod_list") : NULL;
    if (pl) {
        add_count(pl, "pods", (long long)snap->n_pods);
        add_count(pl, "foreign", (long long)snap->pods_foreign);
        add_count(pl, "entries_skipped", (long long)snap->pods_skipped);
        add_count(pl, "entries_partial", (long long)snap->pods_partial);
    }
    cJSON *breaker = cJSON_AddObjectToObject(root, "breaker");
    if (breaker && plan && snap) {
        cJSON_AddBoolToObject(breaker, "open", plan->breaker_open);
        cJSON_AddBoolToObject(breaker, "fleet_wide", plan->fleet_breaker_open);
        cJSON_AddNumberToObject(breaker, "failure_rate", plan->failure_rate);
        add_count(breaker, "ended_in_window", snap->ended_in_window);
        add_count(breaker, "unexpected_in_window", snap->unexpected_in_window);
    }
    cJSON *gpu = cJSON_AddArrayToObject(root, "gpu_types_available");
    for (size_t g = 0; gpu && plan && g < plan->n_gpu_types; g++)
        cJSON_AddItemToArray(gpu, cJSON_CreateString(plan->gpu_types[g]));
    if (plan && snap) {
        cJSON_AddItemToObject(root, "pools", summary_pools_array(plan));
        cJSON_AddItemToObject(root, "unserved", summary_unserved(plan));
        cJSON_AddItemToObject(root, "runpod", catalog_cycle_summary(snap, plan));
    }
    if (plan)
        cJSON_AddItemToObject(root, "plan", summary_plan_array(plan));
    if (act && act->outcomes)
        cJSON_AddItemToObject(root, "outcomes", cJSON_Duplicate(act->outcomes, 1));
    cJSON_AddItemToObject(root, "errors",
                          errors ? cJSON_Duplicate(errors, 1) : cJSON_CreateArray());
    if (app->cfg->enable_db_logging) {
        DblogStats d = dblog_stats();
        cJSON *dl = cJSON_AddObjectToObject(root, "db_logging");
        if (dl) {
            add_count(dl, "written", d.written);
            add_count(dl, "dropped", d.dropped);
            add_count(dl, "pending", d.pending);
        }
    }
    add_count(root, "duration_ms", duration_ms);
    add_count(root, "sql_statements", sql_statements);
    return root;
}

void summary_add_task_cost(cJSON *summary, const TaskCostReport *costs)
{
    cJSON *o = costs->observed ? task_cost_json(costs) : cJSON_CreateObject();
    if (!o)
        return;
    cJSON_AddBoolToObject(o, "observed", costs->observed);
    cJSON_AddItemToObject(summary, "task_cost", o);
}
