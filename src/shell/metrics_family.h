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

/* A growing text buffer (metrics_text.c): oom is set once an allocation fails. */
typedef struct {
    char *data;
    size_t len, cap;
    bool oom;
} MetricsBuf;

/* The renderer's pieces, for the families rendered outside metrics_text.c (metrics_ops.c):
 * printf into the buffer, HELP and TYPE lines of a family, a label value escaped, one sample
 * with up to two labels (l2 NULL for one, l1 NULL for none). Cannot fail (oom is recorded). */
void metrics_buf_printf(MetricsBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void metrics_buf_family(MetricsBuf *b, const char *name, const char *type, const char *help);
void metrics_buf_label_value(MetricsBuf *b, const char *v);
void metrics_buf_sample(MetricsBuf *b, const char *name, const char *l1, const char *v1,
                        const char *l2, const char *v2, double v);

/* metrics_ops.c: the issue-17 gauges and the task cost histogram. init sets them from the
 * configuration; observe updates them from a cycle whose snapshot loaded; render appends them;
 * load_line reads back one textfile line of theirs (the histogram, the reconcile findings) and
 * returns true when the line was theirs. None can fail. */
void metrics_ops_init(MetricsState *m, const Config *cfg);
void metrics_ops_observe(MetricsState *m, const Snapshot *snap, const Plan *plan,
                         const ActResult *act);
void metrics_ops_render(MetricsBuf *b, const MetricsState *m);
bool metrics_ops_load_line(MetricsState *m, const char *name, char sep, char *rest);
/* Adds an observation's completed tasks to the histogram (metrics_observe_task_costs). */
void metrics_ops_observe_costs(MetricsState *m, const TaskCostReport *r);

#endif
