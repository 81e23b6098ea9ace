/* wait.h -- `submit --wait`: after the insert, wait until every submitted task ends and make
 * their outcome the exit code (structure_docs/operating.md, "submit --wait"). CLI module. */
#ifndef ORCH_WAIT_H
#define ORCH_WAIT_H

#include <cJSON.h>
#include <libpq-fe.h>
#include <stdbool.h>

#include "config.h"
#include "status.h"

typedef struct {
    bool on;               /* --wait */
    long long timeout_sec; /* --timeout S; 0 = none */
    bool no_listen;        /* --no-listen (or ENABLE_NOTIFY_WAKEUP=false): poll only */
    bool json;             /* --json: one JSON object per line */
} SubmitWait;

/* Parses one argument of submit that belongs to --wait (argv[*i], its value argv[*i + 1]).
 * Returns 1 when it was one (advancing *i past a value), 0 when not, -1 on a bad value
 * (printed). */
int submit_wait_arg(int argc, char **argv, int *i, SubmitWait *w);

/* Waits for the tasks ids (a cJSON array of id strings, as inserted) on *conn (may be replaced
 * by a reconnect), printing each outcome as it ends and a summary. Returns STATUS_OK (all
 * Complete), STATUS_TASKS_FAILED, STATUS_TIMEOUT, STATUS_INTERRUPTED, STATUS_TERMINATED,
 * STATUS_ERR_DB or STATUS_WAIT_FAILED. SIGINT and SIGTERM stop the wait (never the tasks). */
Status submit_wait(const Config *cfg, PGconn **conn, const cJSON *ids, const SubmitWait *w);

#endif
