/* gpu_choice.h -- the order in which a pool's GPU types are tried (issue 16 item 1).
 *
 * Pure: reads only its arguments (the snapshot's cached catalog, task-duration figures and
 * capacity backoffs); no I/O, clock, environment, allocation or logging. RunPod v2 creates a
 * pod on exactly one GPU type, so this order decides which card a new worker gets:
 *
 *   ordered   the configured order (RUNPOD_GPU_TYPES / POOL_<NAME>_GPU_TYPES);
 *   cheapest  the lowest list price first, among the types in stock;
 *   value     the lowest dollars per task first: the median duration of the pool's completed
 *             tasks on the type times its price, where a type with fewer than
 *             RUNPOD_VALUE_MIN_SAMPLES tasks counts at the pool's median on any type (so it is
 *             ranked by its price).
 *
 * Whatever the policy, with a fresh catalog a type shown out of stock is skipped, and a type in
 * capacity backoff is skipped. Without a fresh catalog (never read, stale, the last read
 * failed, or RUNPOD_CATALOG_TTL_SEC=0) the configured order is used, minus the backoffs -- never
 * nothing because of the catalog. Ties keep the configured order.
 */
#ifndef ORCH_GPU_CHOICE_H
#define ORCH_GPU_CHOICE_H

#include <stdbool.h>
#include <stddef.h>

#include "snapshot.h"

#define GPU_CHOICE_MAX 16 /* PLAN_GPU_TYPES_MAX */

typedef enum { GPU_CHOICE_ORDERED = 0, GPU_CHOICE_CHEAPEST, GPU_CHOICE_VALUE } GpuChoicePolicy;

typedef enum {
    CATALOG_OFF = 0, /* RUNPOD_CATALOG_TTL_SEC = 0 */
    CATALOG_FRESH,   /* read within the TTL */
    CATALOG_STALE,   /* older than the TTL */
    CATALOG_MISSING, /* never read for this cloud and data-center filter */
    CATALOG_FAILED,  /* the last read failed */
} CatalogState;

typedef enum {
    GPU_SKIP_NONE = 0,
    GPU_SKIP_OUT_OF_STOCK, /* the fresh catalog shows it out of stock: never tried */
    GPU_SKIP_BACKOFF,      /* answered "no capacity" lately (gpu_capacity_backoff) */
} GpuSkip;

/* One candidate type and the inputs of the decision about it. */
typedef struct {
    char gpu_type[SNAP_NAME_MAX];
    int config_index;      /* position in the configured list */
    GpuStock stock;        /* from the catalog; UNKNOWN without a fresh one */
    GpuLevel availability; /* as the catalog says it */
    double price_per_hr;   /* catalog list price on the pool's cloud; -1 unknown */
    long long samples;     /* completed tasks of the pool on this type (value) */
    double median_sec;     /* their median duration; -1 none */
    bool own_median;       /* samples >= RUNPOD_VALUE_MIN_SAMPLES: its own median is used */
    double est_sec;        /* duration used: own median, else the pool's; -1 unknown */
    double usd_per_task;   /* price_per_hr * est_sec / 3600; -1 unknown */
    GpuSkip skip;
    long long backoff_sec; /* GPU_SKIP_BACKOFF: seconds left */
} GpuCandidate;

typedef struct {
    GpuChoicePolicy policy;
    CatalogState catalog;
    long long catalog_age_sec; /* -1 never read */
    bool fell_back;            /* a catalog was wanted but not fresh: configured order */
    double pool_median_sec;    /* the pool's median task on any type; -1 none */
    long long pool_samples;
    size_t n; /* candidates: usable ones first, in the chosen order */
    size_t n_usable;
    size_t n_out_of_stock;
    size_t n_backoff;
    GpuCandidate c[GPU_CHOICE_MAX];
} GpuChoice;

typedef struct {
    GpuChoicePolicy policy;
    long long catalog_ttl_sec; /* 0 = no catalog */
    long long min_samples;     /* RUNPOD_VALUE_MIN_SAMPLES */
    const char *scope;         /* catalog_scope() of the pool's cloud and data centers */
    const char *pool;          /* for the task-duration figures */
    size_t n_types;
    const char (*types)[SNAP_NAME_MAX]; /* the configured order */
} GpuChoiceInput;

/* Orders in->types for one pool (see the top of this header) into *out, fully overwritten.
 * Cannot fail. */
void gpu_choice_decide(const GpuChoiceInput *in, const Snapshot *snap, GpuChoice *out);

/* One line naming the policy, the catalog's state and the usable order with each type's
 * inputs, then the skipped types and why, e.g.
 * "cheapest, catalog fresh (40s): NVIDIA A40 $0.350/h in; NVIDIA GeForce RTX 4090 $0.440/h in;
 * skipped: NVIDIA H100 80GB HBM3 out of stock". Truncated to cap. Cannot fail. */
void gpu_choice_describe(const GpuChoice *c, char *out, size_t cap);

/* Stable lower-case names for logs, the summary and status. Cannot fail. */
const char *gpu_choice_policy_str(GpuChoicePolicy p);
const char *catalog_state_str(CatalogState s);
const char *gpu_skip_str(GpuSkip s);

#endif
