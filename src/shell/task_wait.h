/* task_wait.h -- waiting until tasks end (`submit --wait`): polls their statuses, with LISTEN
 * orchestrator_task_ended (migration 0012) as a speed-up only.
 *
 * Shell module. Polling alone is correct: every poll reads the statuses of the tasks still
 * pending, so a lost notification, a transaction pooler where LISTEN does not work, or a
 * database without migration 0012 only make the wait react at the next poll. Read-only: it
 * never changes a task.
 */
#ifndef ORCH_TASK_WAIT_H
#define ORCH_TASK_WAIT_H

#include <libpq-fe.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

#include "explain.h"
#include "status.h"
#include "wait_outcome.h"

typedef struct {
    char id[SNAP_TASK_ID_MAX];
    char status[EXPLAIN_STATUS_MAX]; /* the last status read; "" = not read yet, or row gone */
    bool gone;                       /* the row vanished */
    bool ended;                      /* final status (wait_status_final), or gone */
    char output_location[EXPLAIN_TEXT_MAX];
    char error_message[EXPLAIN_TEXT_MAX];
} TaskWaitItem;

typedef struct {
    bool listen;          /* LISTEN orchestrator_task_ended (false: poll only) */
    long long poll_ms;    /* poll interval */
    long long timeout_ms; /* 0 = no timeout */
} TaskWaitOptions;

typedef struct {
    bool listening;          /* LISTEN succeeded */
    long long polls;         /* status reads */
    long long notifications; /* notifications about one of the tasks */
    WaitTally tally;         /* at the end */
} TaskWaitStats;

/* Called once per task when it ends, in the order they end. */
typedef void (*TaskWaitReport)(const TaskWaitItem *item, const void *arg);

/* Waits until every item has ended, the timeout passes, or *stop becomes SIGINT or SIGTERM.
 * *conn may be replaced (reconnected after a lost connection; still owned by the caller).
 * Returns wait_verdict(): STATUS_OK, STATUS_TASKS_FAILED, STATUS_TIMEOUT, STATUS_INTERRUPTED,
 * STATUS_TERMINATED; STATUS_ERR_DB after three polls in a row failed; STATUS_ERR_NOMEM. */
Status task_wait(PGconn **conn, TaskWaitItem *items, size_t n, const TaskWaitOptions *o,
                 volatile sig_atomic_t *stop, TaskWaitReport report, const void *arg,
                 TaskWaitStats *stats);

#endif
