/* status.h -- the Status enum every fallible function returns, and its exit codes.
 * Pure: no I/O. */
#ifndef ORCH_STATUS_H
#define ORCH_STATUS_H

typedef enum {
    STATUS_OK = 0,
    STATUS_ERR_INTERNAL,  /* a bug or an impossible state: exit 1 */
    STATUS_ERR_USAGE,     /* bad command line: exit 2 */
    STATUS_ERR_CONFIG,    /* bad environment/configuration: exit 3 */
    STATUS_ERR_DB,        /* PostgreSQL unreachable or a query failed: exit 4 */
    STATUS_ERR_API,       /* RunPod API failed: exit 5 */
    STATUS_ERR_PARTIAL,   /* the cycle ran but some actions failed: exit 6 */
    STATUS_ERR_CAPACITY,  /* a fixed-size buffer or array was too small: exit 1 */
    STATUS_ERR_PARSE,     /* malformed input (JSON, number, row): exit 1 unless mapped */
    STATUS_ERR_NOT_FOUND, /* a looked-up object does not exist */
    STATUS_ERR_NOMEM,     /* allocation failed: exit 1 */
    STATUS_LOCKED,        /* another cycle holds the lock: exit 0 */
    /* This cycle lost the cycle lease (expired or taken over) and stopped acting: exit 4, like
     * the database the lease lives in. */
    STATUS_ERR_LEASE_LOST,
    /* `submit --wait` (issue 17): the outcome of the tasks waited for becomes the exit code, as
     * a remote command's would. */
    STATUS_TASKS_FAILED, /* every task ended, one or more not Complete: exit 1 */
    STATUS_TIMEOUT,      /* --timeout passed first: exit 124 (as GNU timeout) */
    STATUS_WAIT_FAILED,  /* the wait itself failed (internal): exit 125 (as GNU timeout) */
    STATUS_INTERRUPTED,  /* SIGINT while waiting: exit 130 */
    STATUS_TERMINATED,   /* SIGTERM while waiting: exit 143 */
} Status;

/* Stable lower-case name of a status ("ok", "db", ...). Cannot fail; unknown -> "unknown". */
const char *status_str(Status st);

/* Process exit code for a status (SPEC section 2). Cannot fail. */
int status_exit_code(Status st);

#endif
