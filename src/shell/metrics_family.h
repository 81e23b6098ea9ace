/* metrics_family.h -- internal to the metrics module (metrics.c keeps the state, metrics_text.c
 * renders it and reads the textfile back): the counter families and the bounded counter
 * operations both need. Nothing outside the module includes it. */
#ifndef ORCH_METRICS_FAMILY_H
#define ORCH_METRICS_FAMILY_H

#include <stdbool.h>
#include <stddef.h>

#include "metrics.h"

/* A counter family: name (after the prefix), its label, whether it has the pool label too, its
 * help text, and where it lives in MetricsState. */
typedef struct {
    const char *name;
    const char *label;
    bool by_pool;
    const char *help;
    size_t offset;
} MetricsFamily;

extern const MetricsFamily METRICS_COUNTERS[];
extern const size_t METRICS_N_COUNTERS;

/* The counter of family f in m. Cannot fail. */
MetricsCounter *metrics_family_of(MetricsState *m, const MetricsFamily *f);
const MetricsCounter *metrics_family_of_const(const MetricsState *m, const MetricsFamily *f);

/* Sets the sample (label, pool) of c to value, adding it when new; a label set beyond
 * METRICS_LABELS_MAX folds into "other" (the last slot is kept for it). Cannot fail. */
void metrics_counter_set(MetricsCounter *c, const char *label, const char *pool, double value);

/* True when pool is a label value this state may use: a configured pool or METRICS_NO_POOL.
 * Cannot fail. */
bool metrics_pool_known(const MetricsState *m, const char *pool);

#endif
