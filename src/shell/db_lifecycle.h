/* db_lifecycle.h -- the database side of issue 16 (sql/migrations/0011_runpod_lifecycle.sql):
 * stopped and restarted workers, failed workers' log tails, and the last RunPod billing read.
 *
 * Shell module (libpq), like db.h: every statement parameterised, every write that acts on a
 * row seen in a snapshot guarded by the row's status, errors logged once here.
 */
#ifndef ORCH_DB_LIFECYCLE_H
#define ORCH_DB_LIFECYCLE_H

#include <cJSON.h>
#include <libpq-fe.h>
#include <stdbool.h>

#include "billing.h"
#include "config.h"
#include "snapshot.h"
#include "status.h"

/* A billing read describes the fleet while its complete hour ended less than this long ago
 * (it is one of the last two hours); an older one is not used (the estimate alone counts). */
#define DB_BILLING_MAX_AGE_SEC 7200

/* One statement, run inside the snapshot's transaction (db_load_snapshot): for each live worker
 * that is stopped, was restarted or was billed, its stopped_age_sec, restarted /
 * restart_age_sec (and heartbeat_after_create, from the restart for a restarted row) and
 * billed_usd_per_hr; and the billing read (billing_* of the snapshot). Call it after the
 * workers are loaded. Fills only those fields, only on success. */
Status db_load_lifecycle(PGconn *conn, Snapshot *snap);

/* terminating -> stopped (orchestrator_stop_worker: only while it holds no task). */
Status db_stop_worker(PGconn *conn, const char *id, bool *applied);

/* stopped -> spawning, restarted_at = now() (orchestrator_restart_worker) -- only while the
 * cycle lease named by lease_holder/lease_fence is still ours, in the same statement, as a spawn
 * registers its row (lease_guard; a NULL holder: no lease, no check). STATUS_ERR_LEASE_LOST
 * when it is not. */
Status db_restart_worker(PGconn *conn, const char *id, const char *lease_holder,
                         const char *lease_fence, bool *applied);

/* A failed worker's pod log tail, as read before its pod was terminated. */
typedef struct {
    const char *worker_id;
    const char *pod_id;
    const char *reason;  /* the worker's error_reason as the plan knew it */
    const char *outcome; /* "ok", "empty", "timeout" or "error" */
    const char *error;   /* what went wrong ("" when nothing), scrubbed */
    long long fetch_ms;
    long long bytes;  /* of the stream read */
    bool truncated;   /* older lines were dropped to stay within the bound */
    const char *tail; /* scrubbed, at most RUNPOD_LOG_MAX_BYTES */
} LogTailRecord;

/* Stores (replaces) the log tail of a worker. */
Status db_store_log_tail(PGconn *conn, const LogTailRecord *rec);

/* Records a good billing read (replacing the last one) and its attempt. */
Status db_store_billing(PGconn *conn, const BillingHour *h);

/* Records a billing read that failed: the attempt and its error; the last good read stays. */
Status db_billing_failed(PGconn *conn, const char *error);

/* The stored log tail of worker_id as a JSON object {worker_id, pod_id, reason, outcome,
 * error, fetch_ms, bytes, truncated, fetched_at, tail}, or *out NULL when there is none. */
Status db_failure_log(PGconn *conn, const char *worker_id, cJSON **out);

/* The newest failure within a week: the worker that most recently went to error (its
 * error_reason, when, its pod) with its stored log tail's outcome and last line, as a JSON object,
 * or *out NULL when none. */
Status db_last_failure(PGconn *conn, cJSON **out);

#endif
