/* db_explain.h -- what `orchestrator explain` reads beside the snapshot: the facts about one
 * task and the boot times measured from past workers.
 *
 * Shell module. Read-only statements, every one parameterised; nothing is written. Errors are
 * logged once, here, with the statement's name (db_exec.h).
 */
#ifndef ORCH_DB_EXPLAIN_H
#define ORCH_DB_EXPLAIN_H

#include <libpq-fe.h>

#include "config.h"
#include "explain.h"
#include "status.h"

/* How many of a pool's most recent promotions its boot time is measured over. */
#define DB_BOOT_SAMPLES 50

/* Reads, in one READ ONLY transaction, the facts about task task_id (a UUID checked by the
 * caller; NULL for none) into *task, and the boot times of every pool into *boot:
 *   - the task: its row, whether the claim would take it now (the predicate of
 *     func_claim_next_task), how many claimable tasks of its pool's run types come before it in
 *     claim order (created_at, id), its dependencies and their statuses, its holder's status
 *     (cfg gives the pools' run types);
 *   - boot times: created_at -> promoted_at over the last DB_BOOT_SAMPLES promotions of each
 *     pool in worker_pools (pools without one are left out).
 * Returns STATUS_OK, STATUS_ERR_NOT_FOUND (no such task), STATUS_ERR_DB or STATUS_ERR_NOMEM;
 * the outputs are written only on success. */
Status db_explain_read(PGconn *conn, const Config *cfg, const char *task_id, ExplainTask *task,
                       ExplainBootTimes *boot);

#endif
