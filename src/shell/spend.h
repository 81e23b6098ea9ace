/* spend.h -- the cycle's read of RunPod's pod billing (issue 16 item 2).
 *
 * Shell module. The spend cap (planner_scale.c) takes, per pod, the larger of its own estimate
 * and what RunPod billed for the pod in the last complete hour, plus what was billed for pods
 * no worker row records; this module keeps that bill current: at most once per
 * RECONCILE_INTERVAL_SEC (paced by runpod_billing.attempted_at, so cron runs share it) it reads
 * GET /v2/billing/pods, stores the result and refreshes the snapshot. A failed or unreadable
 * read never fails the cycle and never lowers a figure: the last good read stays in force until
 * its hour is older than DB_BILLING_MAX_AGE_SEC, then the estimate alone counts, as before
 * issue 16. structure_docs/runpod_lifecycle.md.
 */
#ifndef ORCH_SPEND_H
#define ORCH_SPEND_H

#include "app.h"
#include "snapshot.h"

/* Reads the billing when due (not in a dry run: it records the read), stores it and reloads
 * the snapshot's billing facts. Logs billing.read, billing.records_malformed or
 * billing.read_failed. Cannot fail. */
void spend_refresh(App *app, Snapshot *snap);

#endif
