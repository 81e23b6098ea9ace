/* lease.h -- the cluster-wide cycle lease: one controller acts at a time, whether the database
 * is reached directly or through a transaction-pooling pooler (PgBouncer pool_mode=transaction,
 * Supabase's pooler on port 6543). structure_docs/safety.md tells the whole story.
 *
 * Shell module (libpq, pthreads). The lease is the row `orchestrator_lease.name = 'cycle'`
 * (sql/migrations/0005_cycle_lease.sql). Every statement on it is one transaction of its own, so
 * it means the same whichever pooled server connection runs it, and every time in it is the
 * database's now(): no client clock is compared with anything.
 *
 *   - lease_try_acquire takes the row when it is free, expired, or already this process's
 *     (a random 128-bit token per Lease), bumps its fence counter and sets expires_at = now() +
 *     CYCLE_LEASE_TTL_SEC; then a renewal thread extends it every TTL/4 on a connection of its
 *     own, opened at the first renewal (a short cycle never opens it). A renewal only extends a
 *     lease that is still ours and not expired: once expired, a hold is over.
 *   - lease_verify is the fence: the hold is valid while the row names our token and fence and
 *     expires more than TTL/4 from now. Callers check it before every mutating action; a
 *     failed check is logged once as cycle.lease_lost and the cycle stops acting.
 *   - lease_release frees the row if it is still ours. A killed process releases nothing: its
 *     hold ends when expires_at passes, at most CYCLE_LEASE_TTL_SEC after its last renewal.
 *
 * Safety comes from the take (atomic, on the row) and the fence checks; the renewal thread only
 * keeps a long cycle (slow creates) from losing the lease. The thread never logs and never
 * touches the caller's connection: it reports through fields the caller's thread reads.
 */
#ifndef ORCH_LEASE_H
#define ORCH_LEASE_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "config.h"
#include "status.h"

typedef struct Lease Lease;

/* A lease handle for this process: a fresh random token, holder_info "<instance id> <command>
 * pid=<pid>" (what operators see in orchestrator_lease), the TTL of cfg. cfg is borrowed and
 * must outlive the handle. Returns STATUS_OK with *out owned by the caller (lease_free), or
 * STATUS_ERR_NOMEM / STATUS_ERR_INTERNAL (logged). Holds nothing yet. */
Status lease_new(const Config *cfg, const char *command, Lease **out);

/* One attempt to take the cycle lease on conn (one statement). *got tells whether we hold it
 * now; when we do, the renewal thread runs until lease_release. When another holds it, logs
 * nothing but keeps who and for how long for lease_log_holder. Returns STATUS_OK or
 * STATUS_ERR_DB (logged). Calling it while holding is an internal error. */
Status lease_try_acquire(Lease *l, PGconn *conn, bool *got);

/* Logs cycle.skipped_locked naming the holder seen by the last failed lease_try_acquire and
 * how long its lease still runs. Cannot fail. */
void lease_log_holder(const Lease *l);

/* The fence: STATUS_OK when l is NULL (the caller asked for no exclusion) or when the hold is
 * still ours and expires more than TTL/4 from the database's now(); STATUS_ERR_LEASE_LOST when
 * it is not (expired, taken over, never taken, or found lost by the renewal thread), logged
 * once per hold as cycle.lease_lost; STATUS_ERR_DB when the check itself failed (logged). One
 * statement on conn, except when the renewal thread already found the lease lost. */
Status lease_verify(Lease *l, PGconn *conn);

/* Ends the hold: stops the renewal thread, then frees the row if it is still ours (one
 * statement on conn; when conn is NULL or broken, on the lease's own connection, opened anew if
 * needed, so a live process whose cycle connection died still frees it; when that fails too,
 * logged as cycle.lease_not_released, the row expires and this process may take it again at
 * once). Logs renewal failures seen during the hold. NULL-safe; a no-op when nothing is held. */
void lease_release(Lease *l, PGconn *conn);

/* The current hold as SQL parameters (token, fence), for a statement that must only take effect
 * while the hold is ours (db_insert_spawning_worker). Both NULL when l is NULL or holds nothing
 * (no exclusion asked for). Cannot fail. */
void lease_guard(const Lease *l, const char **holder, const char **fence);

/* The fence number of the current or last hold (0 before the first). Cannot fail. */
long long lease_fence(const Lease *l);

/* Stops the renewal thread if it still runs, closes its connection and frees l. Does not
 * release the row (lease_release does). NULL-safe. */
void lease_free(Lease *l);

#endif
