/* dblog.h -- ENABLE_DB_LOGGING: a copy of the orchestrator's log lines in system_logs.
 *
 * Shell module. Lines are buffered in memory by a log sink (bounded; a full buffer drops and
 * counts) and written once per cycle with one func_insert_logs_batch() call on the cycle's
 * connection. Writing never blocks or fails a cycle: an error drops the batch and counts it.
 * Retention (func_cleanup_old_logs, DB_LOG_RETENTION_HOURS) runs at most hourly, tracked in
 * orchestrator_state.last_log_cleanup_at so cron runs share it.
 */
#ifndef ORCH_DBLOG_H
#define ORCH_DBLOG_H

#include <libpq-fe.h>

#include "config.h"

#define DBLOG_BUFFER_MAX 2000

typedef struct {
    long long written; /* rows the database accepted, over the process lifetime */
    long long dropped; /* lines lost: buffer full, or a batch the database refused */
    long long pending; /* lines buffered now */
} DblogStats;

/* Starts buffering log lines (installs the log sink) when cfg->enable_db_logging. */
void dblog_start(const Config *cfg);

/* Sets the cycle number recorded with the following lines (0 = none). */
void dblog_set_cycle(long long cycle);

/* Writes the buffered lines in one statement, then applies retention when an hour has passed.
 * Never fails the caller: problems are counted in the stats and logged to stderr only. */
void dblog_flush(PGconn *conn, const Config *cfg);

/* Current counters. Cannot fail. */
DblogStats dblog_stats(void);

/* Removes the sink and frees the buffer. */
void dblog_stop(void);

#endif
