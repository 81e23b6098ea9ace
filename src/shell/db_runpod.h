/* db_runpod.h -- what RunPod told us, kept in PostgreSQL so that cron-started runs share it:
 * the GPU catalog per scope, the rate-limit quota, and the task durations per GPU type that
 * RUNPOD_GPU_CHOICE=value weighs prices with (issue 16; sql/migrations/0010_runpod_catalog.sql).
 *
 * Shell module. Every statement is parameterised; values read back are foreign data to the
 * pure parsers (a stored header is parsed again, a bad row is a database error naming the
 * column). Errors are logged once, here or in db_exec.c.
 */
#ifndef ORCH_DB_RUNPOD_H
#define ORCH_DB_RUNPOD_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "catalog.h"
#include "config.h"
#include "runpod_catalog.h"
#include "snapshot.h"
#include "status.h"

/* Loads, into snap, the cached catalog reads of the configured pools' scopes and their entries
 * for the configured GPU types, and the persisted rate-limit quota (its age from now()). One
 * statement, run inside the snapshot's transaction (db_load_snapshot calls it). */
Status db_load_runpod(PGconn *conn, const Config *cfg, Snapshot *snap);

/* Loads, from the newest completed tasks (at most 5,000, of the last
 * RUNPOD_VALUE_WINDOW_HOURS), per (pool, GPU type) and per pool (gpu_type ""): their number
 * and median duration (generation_started_at to generation_processed_at). One statement,
 * bounded whatever the size of tasks; sets snap->gpu_stats_loaded on success. */
Status db_load_gpu_stats(PGconn *conn, const Config *cfg, Snapshot *snap);

/* Records one catalog read of scope: on success (list non-NULL) its entries replace the
 * scope's and read_at = attempted_at = now(); on failure (list NULL) only attempted_at, ok =
 * false and error (scrubbed, bounded) are recorded and the last good entries are kept. One
 * transaction. */
Status db_save_catalog(PGconn *conn, const char *scope, const char *cloud, const CatalogList *list,
                       const char *error);

/* Records the rate-limit fields a client saw (seen->seen must be true): observed_at = now() -
 * their age, the end of a pending Retry-After, the smallest remaining count. One statement. */
Status db_save_rate_limit(PGconn *conn, const RunpodRateSeen *seen);

#endif
