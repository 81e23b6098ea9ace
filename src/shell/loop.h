/* loop.h -- the control cycle: lease, observe, decide, act, record (SPEC section 6; the lease
 * replaces step 0's advisory lock, see lease.h).
 *
 * Shell module. loop_cycle() is one tick of `single`, `plan` and `continuous`;
 * loop_continuous() repeats it until SIGTERM/SIGINT, waking early on NOTIFY.
 */
#ifndef ORCH_LOOP_H
#define ORCH_LOOP_H

#include <cJSON.h>

#include "app.h"
#include "snapshot.h"
#include "status.h"

/* Runs one cycle. *summary receives the summary object (caller cJSON_Deletes it), also on
 * failure when one could be built. Unless app->dry_run, takes the cycle lease first (an
 * operator's request, app->manual, waits up to 30 s for it), fences every action with it, and
 * releases it at the end; a dry run takes no lease and writes nothing. Returns STATUS_OK,
 * STATUS_LOCKED (another cycle holds the lease: nothing done), STATUS_ERR_LEASE_LOST (the
 * lease was lost mid-cycle: no further action, controller state not saved), or the failure
 * (database, API, partial). Opens app->conn if needed; app->lease is created on first use and
 * kept for the next cycle (the caller frees it). */
Status loop_cycle(App *app, cJSON **summary);

/* Lists the RunPod pods into snap (n_pods, pods, pods_listed = true). A failure is logged and
 * added to errors (may be NULL) and leaves snap->pods_listed false: pod states are unknown,
 * never "gone". Returns STATUS_OK, or STATUS_ERR_API (also when app has no RunPod client). Used
 * by the cycle and by `orchestrator reconcile`. */
Status loop_list_pods(App *app, Snapshot *snap, cJSON *errors);

/* Runs cycles every interval_sec (a new task wakes it within a second through LISTEN) until
 * SIGTERM or SIGINT, letting a running cycle finish. Database and API failures are logged and
 * retried next tick. Returns STATUS_OK on a signal, or a configuration/internal error. */
Status loop_continuous(App *app, int interval_sec);

#endif
