/* status_runpod.h -- the RunPod part of `orchestrator status` (issue 16): the rate-limit quota
 * the last run saw and the cached GPU catalog, from the snapshot (no RunPod call). */
#ifndef ORCH_STATUS_RUNPOD_H
#define ORCH_STATUS_RUNPOD_H

#include <cJSON.h>

#include "config.h"
#include "snapshot.h"

/* The "runpod" object of `status --json`: {gpu_choice, catalog_ttl_sec, rate_limit_reserve,
 * rate_limit: {...}, catalog: [...]} (catalog_cycle.h describes the two). NULL when out of
 * memory. */
cJSON *status_runpod_json(const Snapshot *snap, const Config *cfg);

/* The same as text lines of at most 100 columns ("ratelimit ...", "catalog ..."). */
void status_runpod_text(const Snapshot *snap, const Config *cfg);

#endif
