/* sim_report.h -- the policy lab's references and report: the clairvoyant lower bound and a
 * fixed fleet at MAX computed on the same trace, a recorded run to calibrate against, and the
 * report as a table or JSON.
 *
 * Pure: no I/O. Rendering is deterministic (fixed formats, the runs in the order given), so the
 * same runs give the same bytes.
 */
#ifndef ORCH_SIM_REPORT_H
#define ORCH_SIM_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "sim_model.h"
#include "sim_trace.h"
#include "status.h"

#define SIM_LABEL_MAX 64

/* One simulated configuration. */
typedef struct {
    char label[SIM_LABEL_MAX];  /* the --compare file's name, or "current" */
    char policy[SIM_LABEL_MAX]; /* "planner", "planner+grace", "keda", ... */
    SimResult result;
} SimRun;

/* One GPU type as the recorded workers show it (`simulate --from-db`). */
typedef struct {
    char name[SNAP_NAME_MAX];
    double price_per_hr;    /* the newest cost_per_hr; 0 unknown */
    double boot_median_sec; /* creation to promotion, less half a poll interval; -1 unknown */
    double boot_sigma;      /* of the log of those times; 0 with fewer than 2 */
    long long boots;
} SimRecordedGpu;

/* What the database says a real run did over the trace's window (`simulate --from-db`). */
typedef struct {
    bool present;
    long long tasks, completed, failed;
    long long pods_created, peak_fleet;
    double wait_p50_sec, wait_p95_sec, wait_max_sec;
    double usd; /* pod lifetimes x cost_per_hr within the window (an estimate) */
    size_t n;
    long long *completion_ms; /* per trace task, from the trace's 0; -1 not ended (owned) */
    size_t n_gpus;            /* the GPU types its workers ran on, measured */
    SimRecordedGpu gpus[SIM_GPUS_MAX];
} SimRecorded;

typedef struct {
    const SimTrace *trace;
    const Config *cfg; /* the first run's: pool names and limits of the references */
    size_t n_runs;
    const SimRun *runs;
    const SimResult *clairvoyant;
    const SimResult *fixed_max;
    const SimRecorded *recorded; /* NULL unless from a recorded run */
} SimReport;

/* The clairvoyant lower bound: every task of a pool gets a pod started exactly one boot time
 * (the median of the pool's best-value GPU type) before it arrives; a pod that finished is
 * reused greedily when it has been idle no longer than a boot time. No wait, no cold start;
 * outcomes are ignored. Returns STATUS_OK or STATUS_ERR_NOMEM. */
Status sim_clairvoyant(const SimTrace *t, const Config *cfg, const SimParams *par, SimResult *out);

/* A fixed fleet at MAX: each pool keeps its MAX_ACTIVE_GPUS (shared down to the fleet's MAX)
 * pods of its first GPU type running for the whole run, serving its tasks first come first
 * served. Returns STATUS_OK or STATUS_ERR_NOMEM. */
Status sim_fixed_max(const SimTrace *t, const Config *cfg, const SimParams *par, SimResult *out);

/* The policy label of a configuration: the SIM_POLICY name and the switches that change it
 * ("planner+warm+predict+grace", "planner+value+stopped2"). Cannot fail. */
void sim_policy_label(const Config *cfg, const SimParams *par, char *out, size_t cap);

/* The report as a text table (totals, then each pool when there are several, then the
 * calibration against a recorded run) or as one JSON object. Returns a malloc'd string the
 * caller frees, or NULL when out of memory. */
char *sim_report_text(const SimReport *r);
char *sim_report_json(const SimReport *r);

/* Frees what r owns and empties it (r may be NULL). */
void sim_recorded_clear(SimRecorded *r);

#endif
