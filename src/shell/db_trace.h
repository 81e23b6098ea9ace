/* db_trace.h -- a recorded run, read back for the policy lab (`orchestrator simulate
 * --from-db`): the trace of the tasks created in a window, the fleet at its start, what the
 * run did (pods created, peak fleet, waits, completions), and each GPU type's measured boot
 * time and price.
 *
 * Shell module (libpq). Two set-based statements whatever the window holds (bounded by
 * DB_TRACE_MAX_TASKS / DB_TRACE_MAX_WORKERS rows). Read only.
 */
#ifndef ORCH_DB_TRACE_H
#define ORCH_DB_TRACE_H

#include <libpq-fe.h>

#include "sim_model.h"
#include "sim_report.h"
#include "sim_trace.h"
#include "status.h"

#define DB_TRACE_MAX_TASKS 2000000
#define DB_TRACE_MAX_WORKERS 200000

/* Reads the tasks created within the last since_sec seconds into *trace (the first task's
 * created_at is the trace's 0; durations from generation_started_at to generation_processed_at;
 * a Failed task fails every attempt, a completed one after N attempts fails its first N; a task
 * not finished gets its run type's median duration), and the recorded run into *rec, with each
 * GPU type's boots and price (poll_sec: the run's ORCHESTRATOR_POLL_SEC, half of which is taken
 * off each creation-to-promotion time as the promotion's expected delay).
 * Returns STATUS_OK, STATUS_ERR_NOT_FOUND (no task in the window), STATUS_ERR_DB (logged) or
 * STATUS_ERR_NOMEM; the outputs are written only on success (free with sim_trace_clear and
 * sim_recorded_clear). */
Status db_load_trace(PGconn *conn, long long since_sec, double poll_sec, SimTrace *trace,
                     SimRecorded *rec);

#endif
