/* actuator.h -- applies a Plan, one action at a time, and records each outcome.
 *
 * Shell module: database writes through db.h (compare-and-swap) and RunPod calls through
 * runpod.h. An action whose row changed since the snapshot is skipped and reported, and so is
 * every later action about the same worker. Spawns are created concurrently.
 */
#ifndef ORCH_ACTUATOR_H
#define ORCH_ACTUATOR_H

#include <cJSON.h>
#include <stdbool.h>

#include "app.h"
#include "planner.h"
#include "snapshot.h"
#include "status.h"

typedef struct {
    long long workers_promoted;
    long long workers_failed;
    long long workers_spawned;
    long long workers_terminated;
    long long workers_drained;
    long long tasks_reset;  /* back to Queued */
    long long tasks_failed; /* attempts exhausted */
    long long pods_adopted;
    long long leaked_pods_terminated;
    long long spawn_failures;
    long long spawns_deferred; /* planned spawns held back by RunPod's rate-limit quota */
    long long skipped;         /* guard failed: the row changed since the snapshot */
    long long failed;          /* an action that errored */
    bool api_auth_failed;
    bool api_balance_failed;
    bool api_retired;
    bool db_failed;
    bool lease_lost; /* the fence failed: the cycle lease is no longer ours (lease.h) */
    cJSON *outcomes; /* array of {action, reason, worker_id?, task_id?, pod_id?, pool?, result,
                        detail}; pool names the configured pool of the action (Action.pool) */
    cJSON *errors;   /* array of strings */
    size_t n_pools;  /* the plan's pool names by index, copied by actuator_apply for "pool" */
    char pools[PLAN_POOLS_MAX][SNAP_POOL_NAME_MAX];
    /* issue 16 (actuator_lifecycle.c) */
    long long workers_stopped;   /* drained workers whose pod was stopped (warm pool) */
    long long workers_started;   /* stopped workers whose pod was started again */
    long long start_fallbacks;   /* starts RunPod refused: a pod was created instead */
    long long stop_fallbacks;    /* stops that failed: the pod was terminated instead */
    long long log_tails;         /* failed workers' log tails read (ok or empty) */
    long long log_tail_failures; /* log tails that could not be read (timeout, error) */
} ActResult;

/* Initialises res (allocates its JSON arrays). Returns STATUS_ERR_NOMEM on failure. */
Status act_result_init(ActResult *res);

/* Frees the JSON arrays; NULL-safe. */
void act_result_clear(ActResult *res);

/* Applies the plan in order. Before every mutating action and before the spawns it checks the
 * fence (lease_verify on app->lease; no lease = no check): once the cycle lease is lost nothing
 * more is done and STATUS_ERR_LEASE_LOST is returned. Otherwise returns STATUS_OK when every
 * action applied or was skipped by its guard, STATUS_ERR_DB when the database failed (the
 * remaining actions are not attempted),
 * STATUS_ERR_API for credentials/retired-API errors, STATUS_ERR_PARTIAL when some actions
 * failed. res is filled in every case. */
Status actuator_apply(App *app, const Snapshot *snap, const Plan *plan, ActResult *res);

#endif
