/* catalog_cycle.h -- the cycle's use of RunPod's GPU catalog and rate limit (issue 16).
 *
 * Shell module, called by the loop around the pure planner:
 *
 *   snapshot (the cached catalog and the persisted quota)   db_load_snapshot
 *   pod list when needed                                     loop
 *   catalog_cycle_overlay_quota: what this process saw of the quota replaces the persisted one
 *   plan                                                     planner (pure)
 *   catalog_cycle_prepare: only when the plan spawns -- reads the catalog of each spawning
 *       pool's scope when it is due (never read, or last tried RUNPOD_CATALOG_TTL_SEC ago),
 *       records the read (not in a dry run), loads the task durations for `value`; the caller
 *       plans again when it returns true
 *   catalog_cycle_log: the choice of each spawning pool and the rate-limit decision
 *   catalog_cycle_save_quota: after the actions, the quota as the last response left it
 *
 * A cycle that spawns nothing never calls the catalog, so no-op cycles make no RunPod call.
 */
#ifndef ORCH_CATALOG_CYCLE_H
#define ORCH_CATALOG_CYCLE_H

#include <cJSON.h>
#include <stdbool.h>

#include "app.h"
#include "planner.h"
#include "snapshot.h"

/* Replaces snap->quota with what app->rp saw in this process, when it saw anything. Cannot
 * fail. */
void catalog_cycle_overlay_quota(App *app, Snapshot *snap);

/* True (logged as pods.list_deferred) when snap->quota says no call is left now and the pod
 * list should wait: ratelimit_defer_list() (a "0 left" older than RATE_LIST_DEFER_MAX_SEC
 * does not hold the list back, so that a fresh header arrives). */
bool catalog_cycle_quota_spent(const Snapshot *snap);

/* See above. A failed read is logged (catalog.read_failed), recorded (so the next read waits a
 * TTL) and marks the scope failed in snap: the planner then uses the configured order. A
 * failed task-duration query is logged and leaves the figures unloaded (value then ranks by
 * price). Returns whether snap changed (plan again). */
bool catalog_cycle_prepare(App *app, Snapshot *snap, const Policy *pol, const Plan *plan,
                           cJSON *errors);

/* Logs gpu.choice for each pool that spawns (policy, catalog state and age, the order with
 * each type's price, stock and task figures, the skipped types) and ratelimit.deferred when
 * the quota held spawns back. Cannot fail. */
void catalog_cycle_log(const Plan *plan);

/* After metrics_observe_cycle: the quota gauges as the cycle's last response left them. */
void catalog_cycle_observe_metrics(App *app);

/* Persists the quota app->rp saw (not in a dry run; nothing when it saw none). */
void catalog_cycle_save_quota(App *app);

/* JSON views (each a new object or array the caller deletes, NULL when out of memory):
 * quota_json    {known, remaining, reset_in_sec, age_sec, malformed, retry_after_sec,
 *                windows: [{name, remaining, quota, window_sec, reset_in_sec}]} (-1 unknown)
 * catalog_json  [{scope, age_sec, attempt_age_sec, last_read_failed, error?,
 *                 gpu_types: [{gpu_type, stock, availability, price_per_hr}]}]
 * choice_json   {policy, catalog, catalog_age_sec, fell_back, pool_median_sec,
 *                candidates: [{gpu_type, stock, availability, price_per_hr, samples,
 *                              median_sec, est_sec, usd_per_task, skip}]} (tried in order)
 * summary       {rate_limit: quota_json + {create_allowance, deferred}, catalog: catalog_json}
 *               (the summary's and the journal's "runpod" key) */
cJSON *catalog_cycle_quota_json(const RateQuota *q);
cJSON *catalog_cycle_catalog_json(const Snapshot *snap);
cJSON *catalog_cycle_choice_json(const GpuChoice *c);
cJSON *catalog_cycle_summary(const Snapshot *snap, const Plan *plan);

#endif
