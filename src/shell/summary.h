/* summary.h -- the cycle summary printed by `single` (one JSON object on stdout), and the JSON
 * forms of the snapshot and the plan stored in the journal.
 *
 * Shell module (cJSON only, no I/O). Secrets never enter these documents: they hold counts,
 * worker/pod/task ids, reasons and error classes. */
#ifndef ORCH_SUMMARY_H
#define ORCH_SUMMARY_H

#include <cJSON.h>

#include "actuator.h"
#include "app.h"
#include "planner.h"
#include "snapshot.h"
#include "task_cost.h"

/* Builds the summary. snap, plan and act may be NULL (a cycle that stopped early). errors is
 * copied. Returns a new object (caller deletes) or NULL when out of memory. */
cJSON *summary_build(const App *app, const Snapshot *snap, const Plan *plan, const ActResult *act,
                     const cJSON *errors, Status st, long long duration_ms,
                     long long sql_statements);

/* Adds "task_cost" to a summary (issue 17): {"observed", and when observed the fields of
 * task_cost_json()}. Cannot fail (nothing is added when out of memory). */
void summary_add_task_cost(cJSON *summary, const TaskCostReport *costs);

/* Compact JSON texts for the journal; malloc'd (caller frees) or NULL. NULL input gives NULL. */
char *summary_snapshot_json(const Snapshot *snap);
char *summary_plan_json(const Plan *plan);

/* The plan per pool: [{pool, queued, ..., desired, to_spawn, spawn_limit, breaker_open, ...}]. */
cJSON *summary_pools_array(const Plan *plan);

/* Queued tasks of run types no pool serves: {queued, run_types: [...]}. */
cJSON *summary_unserved(const Plan *plan);

/* The plan as a JSON array of {action, reason, worker_id?, task_id?, pod_id?, detail?}. */
cJSON *summary_plan_array(const Plan *plan);

/* The spend figures of a plan (issue 16): estimated_usd_per_hr, billed_usd_per_hr and
 * unexplained_usd_per_hr (null while no recent billing read is known), effective_usd_per_hr
 * (what the spend cap uses), billing_known, billing_read_age_sec. A new object (caller
 * deletes; NULL when out of memory). */
cJSON *summary_spend(const Snapshot *snap, const Plan *plan);

#endif
