/* actuator_int.h -- what actuator.c, actuator_spawn.c and actuator_lifecycle.c share (internal
 * to them).
 *
 * Shell module. actuator_lifecycle.c applies the actions of issue 16 -- stop a drained
 * worker's pod, start a stopped one, read a failed worker's log tail before its pod goes --
 * with the same outcome records, errors and pod terminations as every other action.
 */
#ifndef ORCH_ACTUATOR_INT_H
#define ORCH_ACTUATOR_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "actuator.h"

/* Appends an outcome {action, reason, worker_id, task_id, pod_id, result, detail (scrubbed)}
 * (worker_id NULL = the action's). */
void actuator_record(ActResult *res, const Action *a, const char *worker_id, const char *result,
                     const char *detail);

/* Appends a (scrubbed) message to res->errors. */
void actuator_add_error(ActResult *res, const char *msg);

/* Terminates a pod (404 counts as done), logging pod.terminated or pod.terminate_failed.
 * Returns 0 on success. */
int actuator_terminate_pod(App *app, ActResult *res, const char *pod_id, const char *worker_id,
                           const char *why);

/* The fence (lease.h): true, and nothing more may be done, once the cycle lease is lost. */
bool actuator_fenced(App *app, ActResult *res);

/* The cloud a pod of pool p was created in (its price is that cloud's price); NULL for a pod of
 * no configured pool, whose price is then not recorded as any cloud's. */
const char *actuator_pool_cloud(const Config *cfg, int p);

/* The spawns of the plan (actuator_spawn.c), less as many as planned terminations did not
 * happen (cut[p] for pool p, cut_fleet for pods of no pool). Returns STATUS_OK,
 * STATUS_ERR_NOMEM, STATUS_ERR_CONFIG (no client) or STATUS_ERR_DB; the outcome of each create
 * is in res. */
Status actuator_apply_spawns(App *app, const Plan *plan, ActResult *res, const long long *cut,
                             long long cut_fleet);

/* ACTION_STOP_WORKER: stops the pod and moves the row terminating -> stopped; when the stop
 * fails, terminates the pod and the row instead (nothing is left running). Returns STATUS_OK
 * (*applied: the row moved, to stopped or terminated), STATUS_ERR_DB when a statement failed,
 * or STATUS_ERR_API when neither stop nor terminate succeeded (recorded). */
Status actuator_stop_worker(App *app, const Action *a, ActResult *res, bool *applied);

/* ACTION_START_WORKER: stopped -> spawning (registered before the start), then starts the pod.
 * Returns true when the slot needs a fresh create instead: the row could not be restarted, or
 * RunPod refused the start (no free GPU on the host, not startable, gone) -- then the row is
 * failed (expected) and its pod terminated. An ambiguous answer (5xx, timeout) leaves the row
 * spawning: it is promoted on its first heartbeat or failed after SPAWNING_TIMEOUT_SEC, like a
 * create whose outcome is unknown, and no create is added (MAX_ACTIVE_GPUS holds). */
bool actuator_start_worker(App *app, const Action *a, ActResult *res);

/* The log tails of one cycle: read concurrently from the start of the actuator, each within
 * RUNPOD_LOG_TIMEOUT_SEC, and stored when their termination comes. */
typedef struct LogReads LogReads;

/* Starts reading the log tail of every pod the plan terminates with fetch_logs (at most
 * ACTUATOR_LOG_READS_MAX; the others are recorded as not read). Returns NULL when there is
 * none or no RunPod client. Never fails the cycle. */
#define ACTUATOR_LOG_READS_MAX 16
LogReads *actuator_logs_start(App *app, const Plan *plan);

/* Before terminating a's pod: waits for the reads (bounded by their timeout), then stores a's
 * tail -- scrubbed of every secret of the configuration -- with the worker. A failure is
 * logged and recorded in the tail's outcome, never returned. */
void actuator_logs_store(App *app, ActResult *res, LogReads *reads, const Action *a);

/* Waits for the reads and frees them. NULL-safe. */
void actuator_logs_free(LogReads *reads);

#endif
