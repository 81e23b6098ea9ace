/* status_lifecycle.h -- the parts of `orchestrator status` that issue 16 adds: the spend
 * (estimated, billed, what the spend cap counts) and the last failure with the outcome and last
 * line of its pod's log tail (`orchestrator logs --worker ID` shows the whole tail).
 *
 * Shell module (cli face). Reads only.
 */
#ifndef ORCH_STATUS_LIFECYCLE_H
#define ORCH_STATUS_LIFECYCLE_H

#include <cJSON.h>
#include <libpq-fe.h>

#include "config.h"
#include "planner.h"
#include "snapshot.h"
#include "status.h"

/* Adds "spend" (summary_spend), "last_failure" (db_last_failure, or null) and fleet.stopped to
 * the status document root. Returns STATUS_OK or STATUS_ERR_DB. */
Status status_lifecycle_json(PGconn *conn, const Snapshot *snap, const Plan *plan, cJSON *root);

/* Prints the "spend" line and, when there is one, the "failed" line (each within 100
 * columns). Returns STATUS_OK or STATUS_ERR_DB. */
Status status_lifecycle_text(PGconn *conn, const Snapshot *snap, const Plan *plan,
                             const Config *cfg);

#endif
