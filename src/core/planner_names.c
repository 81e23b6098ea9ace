/* planner_names.c -- stable names of the planner's enums, plan_count, the policy taken from a
 * Config, and when reconcile is due (see planner.h).
 *
 * Pure.
 */
#include "planner.h"

#include <stdio.h>
#include <string.h>

const char *worker_state_str(WorkerState s)
{
    switch (s) {
    case WORKER_INACTIVE:
        return "inactive";
    case WORKER_SPAWNING:
        return "spawning";
    case WORKER_ACTIVE:
        return "active";
    case WORKER_TERMINATING:
        return "terminating";
    case WORKER_ERROR:
        return "error";
    case WORKER_TERMINATED:
        return "terminated";
    case WORKER_CRASHED:
        return "crashed";
    case WORKER_STOPPED:
        return "stopped";
    }
    return "unknown";
}

int worker_state_parse(const char *s, WorkerState *out)
{
    static const WorkerState all[] = {WORKER_INACTIVE,    WORKER_SPAWNING, WORKER_ACTIVE,
                                      WORKER_TERMINATING, WORKER_ERROR,    WORKER_TERMINATED,
                                      WORKER_CRASHED,     WORKER_STOPPED};
    for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++) {
        if (strcmp(s, worker_state_str(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    }
    return -1;
}

const char *action_kind_str(ActionKind kind)
{
    switch (kind) {
    case ACTION_PROMOTE_WORKER:
        return "promote_worker";
    case ACTION_FAIL_WORKER:
        return "fail_worker";
    case ACTION_RECOVER_TASK:
        return "recover_task";
    case ACTION_DRAIN_WORKER:
        return "drain_worker";
    case ACTION_TERMINATE_WORKER:
        return "terminate_worker";
    case ACTION_SPAWN_WORKER:
        return "spawn_worker";
    case ACTION_ADOPT_POD:
        return "adopt_pod";
    case ACTION_TERMINATE_POD:
        return "terminate_pod";
    case ACTION_STOP_WORKER:
        return "stop_worker";
    case ACTION_START_WORKER:
        return "start_worker";
    }
    return "unknown";
}

const char *reason_str(Reason reason)
{
    static const char *names[] = {
        [REASON_NONE] = "none",
        [REASON_FIRST_HEARTBEAT] = "first_heartbeat",
        [REASON_NO_POD_ID] = "no_pod_id",
        [REASON_POD_ERROR] = "pod_error",
        [REASON_POD_EXITED] = "pod_exited",
        [REASON_POD_TERMINATED] = "pod_terminated",
        [REASON_POD_GONE] = "pod_gone",
        [REASON_SPAWNING_TIMEOUT] = "spawning_timeout",
        [REASON_STALE_HEARTBEAT] = "stale_heartbeat",
        [REASON_STUCK_TASK] = "stuck_task",
        [REASON_GPU_NOT_VISIBLE] = "gpu_not_visible",
        [REASON_WORKER_CRASHED] = "worker_crashed",
        [REASON_WORKER_FAILED] = "worker_failed",
        [REASON_GRACEFUL_TIMEOUT] = "graceful_timeout",
        [REASON_IDLE] = "idle",
        [REASON_DRAINED] = "drained",
        [REASON_ERROR_CLEANUP] = "error_cleanup",
        [REASON_BACKLOG] = "backlog",
        [REASON_MIN_FLOOR] = "min_floor",
        [REASON_KEEP_IDLE] = "keep_idle",
        [REASON_LEAKED_POD] = "leaked_pod",
        [REASON_ADOPT_ORPHAN_POD] = "adopt_orphan_pod",
        [REASON_OPERATOR] = "operator",
        [REASON_LEGACY_INACTIVE] = "legacy_inactive",
        [REASON_MIN_REBALANCE] = "min_rebalance",
        [REASON_WARM_POOL] = "warm_pool",
        [REASON_STOPPED_EXPIRED] = "stopped_expired",
        [REASON_STOPPED_EXCESS] = "stopped_excess",
        [REASON_STOPPED_POOL_GONE] = "stopped_pool_gone",
        [REASON_STOPPED_POD_STATE] = "stopped_pod_state",
        [REASON_PREDICTED_BACKLOG] = "predicted_backlog",
        [REASON_STOPPED_TYPE_GONE] = "stopped_type_gone",
    };
    if ((size_t)reason < sizeof names / sizeof names[0] && names[reason])
        return names[reason];
    return "unknown";
}

const char *spawn_limit_str(SpawnLimit limit)
{
    switch (limit) {
    case SPAWN_LIMIT_NONE:
        return "none";
    case SPAWN_LIMIT_MAX_ACTIVE:
        return "max_active_gpus";
    case SPAWN_LIMIT_BREAKER:
        return "circuit_breaker";
    case SPAWN_LIMIT_SPEND_CAP:
        return "spend_cap";
    case SPAWN_LIMIT_GPU_BACKOFF:
        return "gpu_capacity_backoff";
    case SPAWN_LIMIT_UNSAFE_SNAPSHOT:
        return "unsafe_snapshot";
    case SPAWN_LIMIT_FLEET_CEILING:
        return "fleet_ceiling";
    case SPAWN_LIMIT_OUT_OF_STOCK:
        return "out_of_stock";
    case SPAWN_LIMIT_RATE_LIMIT:
        return "rate_limit";
    }
    return "unknown";
}

size_t plan_count(const Plan *plan, ActionKind kind)
{
    size_t n = 0;
    for (size_t i = 0; i < plan->count; i++)
        if (plan->actions[i].kind == kind)
            n++;
    return n;
}

void policy_from_config(const Config *cfg, Policy *out)
{
    memset(out, 0, sizeof *out);
    out->min_active = cfg->min_active_gpus;
    out->max_active = cfg->max_active_gpus;
    out->tasks_per_gpu = cfg->tasks_per_gpu_threshold;
    out->keep_idle = cfg->machines_to_keep_idle;
    out->idle_timeout_sec = cfg->gpu_idle_timeout_sec;
    out->stuck_timeout_sec = cfg->task_stuck_timeout_sec;
    out->spawning_timeout_sec = cfg->spawning_timeout_sec;
    out->graceful_timeout_sec = cfg->graceful_shutdown_timeout_sec;
    out->grace_period_sec = cfg->worker_grace_period_sec;
    out->pod_id_grace_sec = cfg->spawn_pod_id_grace_sec;
    out->pod_not_found_grace_sec = cfg->pod_not_found_grace_sec;
    out->max_task_attempts = cfg->max_task_attempts;
    out->max_failure_rate = cfg->max_worker_failure_rate;
    out->min_workers_for_rate = cfg->min_workers_for_rate_check;
    out->max_hourly_spend = cfg->max_hourly_spend_usd;
    out->reconcile_interval_sec = cfg->reconcile_interval_sec;
    out->orphan_pod_grace_sec = cfg->orphan_pod_grace_sec;
    out->stopped_max_age_sec = cfg->stopped_pod_max_age_sec;
    snprintf(out->worker_prefix, sizeof out->worker_prefix, "%s", cfg->worker_id_prefix);
    for (size_t g = 0; g < cfg->runpod_gpu_types.count && g < PLAN_GPU_TYPES_MAX; g++)
        snprintf(out->gpu_types[out->n_gpu_types++], SNAP_NAME_MAX, "%s",
                 cfg->runpod_gpu_types.items[g]);
    for (size_t p = 0; p < cfg->n_pools && p < PLAN_POOLS_MAX; p++) {
        const PoolConfig *pc = &cfg->pools[p];
        PolicyPool *pp = &out->pools[out->n_pools++];
        snprintf(pp->name, sizeof pp->name, "%s", pc->name);
        for (size_t r = 0; r < pc->run_types.count && r < PLAN_RUN_TYPES_MAX; r++)
            snprintf(pp->run_types[pp->n_run_types++], SNAP_NAME_MAX, "%s", pc->run_types.items[r]);
        pp->min_active = pc->min_active_gpus;
        pp->max_active = pc->max_active_gpus;
        pp->tasks_per_gpu = pc->tasks_per_gpu_threshold;
        pp->keep_idle = pc->machines_to_keep_idle;
        pp->idle_timeout_sec = pc->gpu_idle_timeout_sec;
        pp->stuck_timeout_sec = pc->task_stuck_timeout_sec;
        pp->spawning_timeout_sec = pc->spawning_timeout_sec;
        pp->grace_period_sec = pc->worker_grace_period_sec;
        pp->max_hourly_spend = pc->max_hourly_spend_usd;
        snprintf(pp->cloud_type, sizeof pp->cloud_type, "%s", pc->cloud_type);
        pp->warm_stopped = pc->warm_stopped_pods;
        /* A stopped pod keeps its disk: GB x $/GB-month over the 730 hours of a month. */
        pp->stopped_cost_per_hr =
            (double)pc->container_disk_gb * cfg->stopped_pod_usd_per_gb_month / 730.0;
        for (size_t g = 0; g < pc->gpu_types.count && g < PLAN_GPU_TYPES_MAX; g++)
            snprintf(pp->gpu_types[pp->n_gpu_types++], SNAP_NAME_MAX, "%s", pc->gpu_types.items[g]);
        const char *dcs[CONFIG_LIST_MAX];
        for (size_t d = 0; d < cfg->runpod_data_center_ids.count; d++)
            dcs[d] = cfg->runpod_data_center_ids.items[d];
        catalog_scope(pc->cloud_type, dcs, cfg->runpod_data_center_ids.count, pp->catalog_scope,
                      sizeof pp->catalog_scope);
    }
    out->gpu_choice = strcmp(cfg->runpod_gpu_choice, "cheapest") == 0 ? GPU_CHOICE_CHEAPEST
                      : strcmp(cfg->runpod_gpu_choice, "value") == 0  ? GPU_CHOICE_VALUE
                                                                      : GPU_CHOICE_ORDERED;
    out->catalog_ttl_sec = cfg->runpod_catalog_ttl_sec;
    out->value_min_samples = cfg->runpod_value_min_samples;
    out->rate_limit_reserve = cfg->runpod_rate_limit_reserve;
    out->adaptive_warm_pool = cfg->adaptive_warm_pool;
    out->warm_min_arrivals = cfg->adaptive_warm_min_arrivals;
    out->warm_cold_start_sec = cfg->adaptive_warm_cold_start_sec;
    out->warm_demote_sec = cfg->adaptive_warm_demote_sec;
    out->predictive_scale_up = cfg->predictive_scale_up;
    out->rate_window_sec = cfg->adaptive_rate_window_sec;
    out->adaptive_idle_grace = cfg->adaptive_idle_grace;
    out->idle_grace_min_sec = cfg->adaptive_idle_grace_min_sec;
    out->idle_wait_weight = cfg->adaptive_idle_wait_weight;
}

bool planner_reconcile_due(const Snapshot *snap, const Policy *policy)
{
    return snap->since_reconcile_sec < 0 ||
           snap->since_reconcile_sec >= policy->reconcile_interval_sec;
}
