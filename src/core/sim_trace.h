/* sim_trace.h -- the policy lab's input: a trace of tasks (arrival, run type, task type,
 * duration, outcome), parsed from CSV or JSON lines, generated from a seeded model, or rebuilt
 * from the database by the shell; and the seeded PRNG every random draw of the simulator uses.
 *
 * Pure: no I/O, clock, environment or hidden randomness. Callers pass file bytes in and get
 * bytes out; the only randomness is a SimRng seeded by the caller, so the same seed and inputs
 * give the same trace, byte for byte.
 */
#ifndef ORCH_SIM_TRACE_H
#define ORCH_SIM_TRACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "snapshot.h"
#include "status.h"

#define SIM_TYPES_MAX 64      /* distinct run types (and task types) in one trace */
#define SIM_TRACE_MAX 2000000 /* tasks in one trace */
#define SIM_INITIAL_MAX 16    /* pools with a recorded starting fleet */
#define SIM_ERROR_LEN 256
/* The longest trace: arrivals within 366 days of the first (as --days), so a run is bounded
 * (the simulator steps through the whole span, idle periods included). */
#define SIM_TRACE_SPAN_MAX_MS (366LL * 86400 * 1000)

/* xoshiro256** (Blackman and Vigna), seeded through splitmix64: fast, small, and the same
 * sequence on every platform for a given seed. */
typedef struct {
    uint64_t s[4];
} SimRng;

/* Seeds r from seed (any value, 0 included). Cannot fail. */
void sim_rng_seed(SimRng *r, uint64_t seed);

/* Next 64 random bits. Cannot fail. */
uint64_t sim_rng_next(SimRng *r);

/* Uniform in the open interval (0, 1). Cannot fail. */
double sim_rng_uniform(SimRng *r);

/* Exponential with the given mean (> 0). Cannot fail. */
double sim_rng_exponential(SimRng *r, double mean);

/* Log-normal with the given median and sigma of the underlying normal (sigma 0: the median).
 * Cannot fail. */
double sim_rng_lognormal(SimRng *r, double median, double sigma);

typedef enum {
    SIM_OUTCOME_OK = 0, /* completes after its duration */
    SIM_OUTCOME_FAIL,   /* the worker reports failure after its duration (func_mark_task_failed) */
    SIM_OUTCOME_CRASH,  /* the worker process dies right after claiming it */
} SimOutcome;

typedef struct {
    long long arrival_ms;    /* created_at, from the trace's start */
    long long duration_ms;   /* run time on a GPU of speed 1.0 */
    unsigned short run_type; /* index into SimTrace.run_types */
    unsigned short task_type;
    unsigned char outcome;        /* SimOutcome */
    unsigned char fault_attempts; /* outcome applies to the first N attempts; 0 = to all */
} SimTraceTask;

/* A trace. tasks are sorted by arrival (ties keep their input order), so a smaller index is an
 * older task -- the claim order of func_claim_next_task (created_at, id). */
typedef struct {
    size_t n;
    size_t cap;
    SimTraceTask *tasks; /* owned: sim_trace_clear frees it */
    size_t n_run_types;
    char run_types[SIM_TYPES_MAX][SNAP_NAME_MAX];
    size_t n_task_types;
    char task_types[SIM_TYPES_MAX][SNAP_NAME_MAX];
    long long end_ms; /* end of the observed window (>= the last arrival) */
    char label[96];   /* "steady seed 1", a file name, "db since 7d" */
    /* The fleet at the start, per pool name. A recorded run (initial_recorded) lists every pool
     * that had workers, and the others start empty; otherwise pools not listed start at their
     * MIN_ACTIVE_GPUS. */
    bool initial_recorded;
    size_t n_initial;
    char initial_pool[SIM_INITIAL_MAX][SNAP_POOL_NAME_MAX];
    long long initial_count[SIM_INITIAL_MAX];
} SimTrace;

/* Frees the task array and empties t (t may be NULL). */
void sim_trace_clear(SimTrace *t);

/* Appends one task; run_type and task_type are names ("" = "gpu" / "task"). Tasks may be added
 * in any order; sim_trace_finish sorts them. Returns STATUS_OK, STATUS_ERR_PARSE (an arrival
 * before 0), STATUS_ERR_CAPACITY (more than SIM_TRACE_MAX tasks or SIM_TYPES_MAX type names) or
 * STATUS_ERR_NOMEM. */
Status sim_trace_add(SimTrace *t, long long arrival_ms, const char *run_type, const char *task_type,
                     long long duration_ms, SimOutcome outcome, int fault_attempts);

/* Sorts the tasks by arrival (stable) and sets end_ms to at least the last arrival. Cannot
 * fail. */
void sim_trace_finish(SimTrace *t);

/* Parses a trace file's bytes. The format is told by its first non-blank character: '{' means
 * JSON lines, anything else CSV with a header row. Columns / keys: arrival (seconds from the
 * trace's start, or an ISO 8601 UTC timestamp such as 2025-05-01T10:00:00Z; aliases
 * arrival_sec, created_at), run_type (default gpu), task_type (default task), duration
 * (seconds; alias duration_sec; required), outcome (ok, fail, crash, or fail:N / crash:N for the
 * first N attempts only; default ok). Timestamps are shifted so the first arrival is at 0; the
 * arrivals may span at most SIM_TRACE_SPAN_MAX_MS.
 * Blank lines and lines starting with '#' are skipped. On error returns STATUS_ERR_PARSE with
 * the line and the reason in err; *out is filled only on success. */
Status sim_trace_parse(const char *data, size_t len, SimTrace *out, char err[SIM_ERROR_LEN]);

/* Writes the trace as CSV (the format sim_trace_parse reads, arrival and duration in seconds
 * with millisecond precision). Returns a malloc'd string the caller frees, or NULL when out of
 * memory. */
char *sim_trace_to_csv(const SimTrace *t);

typedef enum {
    SIM_GEN_STEADY = 1, /* Poisson arrivals at a constant rate */
    SIM_GEN_BURSTY,     /* bursts of 20-60 tasks within a minute, a few per day, and a trickle */
    SIM_GEN_DIURNAL, /* Poisson arrivals whose rate follows the day: 0.2x at night, 1.8x at noon */
    SIM_GEN_SPARSE,  /* a task now and then: about one an hour */
} SimGenKind;

typedef struct {
    SimGenKind kind;
    uint64_t seed;
    long long tasks;    /* about how many tasks; 0 = the kind's default per day x days */
    double days;        /* length of the trace; 0 = 1 */
    size_t n_run_types; /* the run types tasks are spread over, evenly (0 = "gpu") */
    char run_types[SIM_TYPES_MAX][SNAP_NAME_MAX];
} SimGenSpec;

/* Parses "steady", "bursty", "diurnal" or "sparse"; returns 0 and sets *out, or -1. */
int sim_gen_kind_parse(const char *s, SimGenKind *out);

/* Name of a generator kind. Cannot fail. */
const char *sim_gen_kind_str(SimGenKind kind);

/* Generates a trace from spec: arrivals as the kind says, durations log-normal (median 60 s,
 * sigma 0.5, within [5 s, 240 s], under the default TASK_STUCK_TIMEOUT_SEC), every task
 * completing. Same spec -> same trace. Returns STATUS_OK, STATUS_ERR_USAGE (bad spec) or
 * STATUS_ERR_NOMEM; *out is filled only on success. */
Status sim_trace_generate(const SimGenSpec *spec, SimTrace *out);

/* The run type index of name in t, or -1. */
int sim_trace_run_type(const SimTrace *t, const char *name);

#endif
