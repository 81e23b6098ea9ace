/* loop.h -- the control cycle: lock, observe, decide, act, record (SPEC section 6).
 *
 * Shell module. loop_cycle() is one tick of `single`, `plan` and `continuous`;
 * loop_continuous() repeats it until SIGTERM/SIGINT, waking early on NOTIFY.
 */
#ifndef ORCH_LOOP_H
#define ORCH_LOOP_H

#include <cJSON.h>

#include "app.h"
#include "status.h"

/* Runs one cycle. *summary receives the summary object (caller cJSON_Deletes it), also on
 * failure when one could be built. Returns STATUS_OK, STATUS_LOCKED (another cycle holds the
 * lock: nothing done), or the failure (database, API, partial). Opens app->conn if needed. */
Status loop_cycle(App *app, cJSON **summary);

/* Runs cycles every interval_sec (a new task wakes it within a second through LISTEN) until
 * SIGTERM or SIGINT, letting a running cycle finish. Database and API failures are logged and
 * retried next tick. Returns STATUS_OK on a signal, or a configuration/internal error. */
Status loop_continuous(App *app, int interval_sec);

#endif
