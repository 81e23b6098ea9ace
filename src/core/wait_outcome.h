/* wait_outcome.h -- pure: what `submit --wait` makes of the statuses of the tasks it waits for.
 *
 * No I/O. The shell polls the statuses (task_wait.c); these rules decide when a task has ended
 * and which exit status the whole wait gets.
 */
#ifndef ORCH_WAIT_OUTCOME_H
#define ORCH_WAIT_OUTCOME_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

/* How the tasks waited for stand. */
typedef struct {
    size_t complete;  /* ended Complete */
    size_t failed;    /* ended Failed */
    size_t cancelled; /* ended Cancelled */
    size_t missing;   /* the row vanished (deleted) while waited for: it cannot complete */
    size_t pending;   /* not ended yet (Queued, In Progress) */
} WaitTally;

/* Whether a task status (task_status text) is final: Complete, Failed or Cancelled. A retry
 * goes back to Queued, so Failed is final only as a status, never as a worker's report. Cannot
 * fail. */
bool wait_status_final(const char *status);

/* Counts one task into *t: status is its task_status text, or NULL when its row is gone. */
void wait_tally_add(WaitTally *t, const char *status);

/* The exit status of a wait that stopped with tally t: STATUS_OK when every task is Complete;
 * STATUS_TASKS_FAILED when every task ended and one or more did not complete; when tasks are
 * still pending, `stopped` (STATUS_TIMEOUT, STATUS_INTERRUPTED or STATUS_TERMINATED), since the
 * outcome is unknown. Cannot fail. */
Status wait_verdict(const WaitTally *t, Status stopped);

#endif
