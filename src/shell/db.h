/* db.h -- PostgreSQL access of the orchestrator (libpq): the snapshot, the guarded writes of
 * the actuator, the persisted controller state and the cycle journal.
 *
 * Shell module. Every statement is parameterised (PQexecParams). Every write that acts on a
 * row seen in the snapshot is a compare-and-swap (`WHERE id = $1 AND status = $2`): when the row
 * changed in the meantime nothing is written and the caller is told (*applied = false).
 * Errors are logged here, once, with the query's name; callers just propagate the Status.
 */
#ifndef ORCH_DB_H
#define ORCH_DB_H

#include <cJSON.h>
#include <libpq-fe.h>
#include <stdbool.h>

#include "config.h"
#include "snapshot.h"
#include "status.h"

/* Connects with the configured URL (empty: libpq's PG* variables), a 10 s connect timeout and
 * application_name=orchestrator. On success *out owns the connection (PQfinish it). */
Status db_connect(const Config *cfg, PGconn **out);

/* Number of SQL statements sent on any connection since the process started. Cannot fail. */
long long db_statement_count(void);

/* The cluster-wide exclusion of cycles is the cycle lease (lease.h), not an advisory lock: a
 * session lock does not hold behind a transaction-pooling pooler. */

/* Loads the snapshot with a fixed number of set-based statements in one read-only,
 * repeatable-read transaction, whatever the size of the tables. Fills *out only on success;
 * any failed read fails the whole load (fail closed). Does not touch out->pods. */
Status db_load_snapshot(PGconn *conn, const Config *cfg, Snapshot *out);

/* What the database knows about the pods listed in snap: pods without a readable createdAt get
 * an age counted from when this system first saw them (pods_first_seen: recorded now unless
 * read_only; -1 stays when never recorded), and pods of our worker-name shape that no live row
 * names but a terminated row does get ended_row. At most two statements, none when no pod needs
 * them. On failure the pods keep what they had (unknown ages never make a pod leaked). */
Status db_annotate_pods(PGconn *conn, Snapshot *snap, const char *prefix, bool read_only);

/* ---- guarded worker transitions (each sets *applied) ---- */

/* spawning -> active, promoted_at = now(). */
Status db_promote_worker(PGconn *conn, const char *id, bool *applied);

/* from -> error, recording metadata.error_reason/error_time, ended_at and end_kind. */
Status db_fail_worker(PGconn *conn, const char *id, WorkerState from, const char *reason,
                      bool unexpected, bool *applied);

/* active -> terminating in one statement (orchestrator_drain_worker) that locks the worker row
 * and proves it holds no In Progress task (claims lock the row too, so none can slip in). */
Status db_drain_worker(PGconn *conn, const char *id, const char *reason, bool *applied);

/* from -> terminating by an operator, without proving the worker holds no task (its tasks are
 * recovered next). */
Status db_force_drain_worker(PGconn *conn, const char *id, WorkerState from, const char *reason,
                             bool *applied);

/* from -> terminated, metadata.terminated_at, ended_at (kept if set). */
Status db_mark_terminated(PGconn *conn, const char *id, WorkerState from, const char *reason,
                          bool *applied);

/* Records the pod id of a spawning row that has none (spawn or adoption), and the price as
 * the price of gpu_type in cloud_type (gpu_prices; NULL cloud: the price is not recorded). */
Status db_record_pod(PGconn *conn, const char *id, const char *pod_id, const char *gpu_type,
                     const char *cloud_type, double cost_per_hr, bool *applied);

/* Records the pod id (and its GPU type and price, when known) of a live row that has none: a
 * pod found by the row's name (adoption), whatever the row's state. */
Status db_adopt_pod(PGconn *conn, const char *id, const char *pod_id, const char *gpu_type,
                    const char *cloud_type, double cost_per_hr, bool *applied);

/* Makes worker_pools (which run types each pool's workers may claim, read by
 * func_claim_next_task) say what cfg says, when snap shows it does not: one statement then,
 * none in the steady state. Pools no longer configured keep a row with no run type. *changed
 * tells whether a row changed. */
Status db_sync_pools(PGconn *conn, const Config *cfg, const Snapshot *snap, bool *changed);

/* Inserts a new worker row of pool: spawning, no pod id -- only while the cycle lease row names
 * lease_holder and lease_fence and has not expired (lease_guard), checked in the same statement;
 * lease_holder NULL: no check. STATUS_ERR_LEASE_LOST when the lease is no longer ours (nothing
 * inserted), STATUS_ERR_DB on a database error. */
Status db_insert_spawning_worker(PGconn *conn, const char *id, const char *gpu_type,
                                 const char *pool, const char *lease_holder,
                                 const char *lease_fence);

/* ---- tasks ---- */

/* Recovers an In Progress task held by worker_id: attempts + 1, then Failed when attempts reach
 * the task's limit (its max_attempts when set, else max_task_attempts = MAX_TASK_ATTEMPTS: the
 * rule of func_task_max_attempts), else Queued (worker cleared). Guarded by id, holder and
 * status. *new_status gets "Queued" or "Failed" when applied. */
Status db_recover_task(PGconn *conn, const char *task_id, const char *worker_id,
                       int max_task_attempts, const char *reason, bool *applied,
                       char new_status[16]);

/* Recovers every In Progress task still held by worker_id once its row is terminated (as
 * db_recover_task, set-based): the tasks an operator's terminate could not see in its snapshot.
 * *recovered gets how many. */
Status db_recover_tasks_of(PGconn *conn, const char *worker_id, int max_task_attempts,
                           const char *reason, int *recovered);

/* Marks a spawning row without a pod id whose create's outcome is unknown (metadata
 * create_outcome_unknown, create_unknown_at, create_unknown_detail). Metadata only. */
Status db_mark_create_unknown(PGconn *conn, const char *id, const char *detail);

/* ---- controller state, capacity backoff, journal ---- */

typedef struct {
    bool success;     /* the cycle completed without failed actions */
    bool reconciled;  /* reconcile ran: last_reconcile_at = now() */
    bool scaled_up;   /* a spawn happened */
    bool scaled_down; /* a drain happened */
    bool breaker_open;
    const char *breaker_reason;
    int max_task_attempts; /* MAX_TASK_ATTEMPTS, recorded for tasks whose max_attempts is NULL */
} CycleStateUpdate;

/* Persists the controller state after a cycle (cycle counter, timestamps, breaker). */
Status db_save_state(PGconn *conn, long long cycle_number, const CycleStateUpdate *u);

/* Records a no-capacity answer for a GPU type: failures + 1, backoff_until = now() +
 * min(max_sec, base_sec * 2^(failures - 1)). */
Status db_record_capacity_failure(PGconn *conn, const char *gpu_type, int base_sec, int max_sec,
                                  const char *detail);

/* Clears the backoff of a GPU type after a successful create. */
Status db_clear_capacity_backoff(PGconn *conn, const char *gpu_type);

typedef struct {
    long long cycle_number;
    const char *instance_id;
    const char *command;
    const char *config_hash;
    bool safe_mode;
    bool dry_run;
    long long duration_ms;
    const char *snapshot_json; /* JSON texts */
    const char *plan_json;
    const char *outcomes_json;
    const char *errors_json;
    const char *exit_status;
    int exit_code;
} JournalEntry;

/* Inserts one row into orchestrator_cycles. */
Status db_insert_journal(PGconn *conn, const JournalEntry *e);

/* ---- operator commands ---- */

/* Inserts the tasks of a JSON array (objects with task_type, params, run_type, dependant_on,
 * max_attempts; see taskfile.h) in ONE statement: all or none. A task without max_attempts
 * gets NULL: it follows MAX_TASK_ATTEMPTS. *ids receives the new ids in input order (a cJSON
 * array of strings; caller deletes). */
Status db_insert_tasks(PGconn *conn, const char *tasks_json, cJSON **ids);

typedef struct {
    const char *worker_id; /* NULL = any */
    const char *task_id;   /* NULL = any */
    long long cycle;       /* 0 = any */
    const char *min_level; /* DEBUG INFO WARNING ERROR CRITICAL; NULL = any */
    long long since_sec;   /* 0 = any age */
    int limit;             /* newest rows kept, returned oldest first */
} LogQuery;

/* Reads system_logs with the filters; *rows receives a cJSON array of objects. */
Status db_query_logs(PGconn *conn, const LogQuery *q, cJSON **rows);

#endif
