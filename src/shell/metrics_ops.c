/* metrics_ops.c -- the metrics operators alert and build dashboards on (issue 17): the limits
 * and intervals an alert compares against (spend caps, poll and reconcile intervals), when the
 * last reconcile ran and what the last pod list showed (leaked pods, vanished workers), and the
 * histogram of what completed tasks cost. See metrics.h and structure_docs/metrics.md.
 *
 * Shell module: no I/O, no logging. Label values are configured pool names, METRICS_NO_POOL,
 * fixed words, and task types reduced to short plain names (else "other"), at most
 * METRICS_COST_SERIES_MAX of them plus one "other" per pool.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "metrics_family.h"
#include "worker_name.h"

#define OTHER_LABEL "other"
#define LABEL_CHARS "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-"

void metrics_ops_init(MetricsState *m, const Config *cfg)
{
    MetricsOps *o = &m->ops;
    o->poll_interval_sec = cfg->orchestrator_poll_sec;
    o->reconcile_interval_sec = cfg->reconcile_interval_sec;
    o->fleet_spend_cap_usd = cfg->max_hourly_spend_usd;
    for (size_t p = 0; p < m->n_pool_names && p < cfg->n_pools; p++)
        o->pool_spend_cap_usd[p] = cfg->pools[p].max_hourly_spend_usd;
    o->orphan_grace_sec = cfg->orphan_pod_grace_sec;
    snprintf(o->worker_prefix, sizeof o->worker_prefix, "%s", cfg->worker_id_prefix);
}

void metrics_set_poll_interval(MetricsState *m, int interval_sec)
{
    if (m && interval_sec > 0)
        m->ops.poll_interval_sec = interval_sec;
}

/* ------------------------------------------------------------------------------------------ */
/* Reconcile findings                                                                          */

/* Whether a live row owns the pod: it records the pod's id, or it is named like the pod and
 * has no pod id yet (the planner's rule, planner_pod_owned, before this plan's adoptions). */
static bool pod_owned(const Snapshot *snap, const SnapPod *pod)
{
    for (size_t i = 0; i < snap->n_workers; i++) {
        const SnapWorker *w = &snap->workers[i];
        if (w->runpod_id[0] ? strcmp(w->runpod_id, pod->id) == 0 : strcmp(w->id, pod->name) == 0)
            return true;
    }
    return false;
}

static bool pod_listed(const Snapshot *snap, const char *pod_id)
{
    for (size_t k = 0; k < snap->n_pods; k++)
        if (strcmp(snap->pods[k].id, pod_id) == 0)
            return true;
    return false;
}

/* Leaked pods terminated by this cycle (applied terminate_pod outcomes). */
static long long leaks_terminated(const ActResult *act)
{
    long long n = 0;
    for (const cJSON *o = act && act->outcomes ? act->outcomes->child : NULL; o; o = o->next) {
        const cJSON *action = cJSON_GetObjectItemCaseSensitive(o, "action");
        const cJSON *result = cJSON_GetObjectItemCaseSensitive(o, "result");
        n += cJSON_IsString(action) && cJSON_IsString(result) &&
             strcmp(action->valuestring, action_kind_str(ACTION_TERMINATE_POD)) == 0 &&
             strcmp(result->valuestring, "applied") == 0;
    }
    return n;
}

void metrics_ops_observe(MetricsState *m, const Snapshot *snap, const Plan *plan,
                         const ActResult *act)
{
    MetricsOps *o = &m->ops;
    /* orchestrator_state.last_reconcile_at as this cycle read it, or this cycle's own when it
     * reconciled and was not a dry run (a dry run records nothing). */
    if (snap->since_reconcile_sec >= 0)
        o->last_reconcile_epoch = snap->now_epoch - (double)snap->since_reconcile_sec;
    if (plan->reconcile_ran && act)
        o->last_reconcile_epoch = snap->now_epoch;
    o->gpu_types_backed_off = 0;
    for (size_t i = 0; i < snap->n_backoffs; i++)
        o->gpu_types_backed_off += snap->backoffs[i].remaining_sec > 0;
    if (!snap->pods_listed)
        return; /* the last list's findings stand until the next list */
    long long within = 0, past = 0, vanished = 0;
    for (size_t k = 0; k < snap->n_pods; k++) {
        const SnapPod *pod = &snap->pods[k];
        if (!worker_name_matches(o->worker_prefix, pod->name) ||
            pod->status == SNAP_POD_TERMINATED || pod_owned(snap, pod))
            continue;
        if (pod->ended_row || (pod->age_sec >= 0 && pod->age_sec > o->orphan_grace_sec))
            past++;
        else
            within++;
    }
    for (size_t i = 0; i < snap->n_workers; i++)
        vanished += snap->workers[i].runpod_id[0] && !pod_listed(snap, snap->workers[i].runpod_id);
    past -= leaks_terminated(act);
    o->pods_known = true;
    o->leaked_within_grace = within;
    o->leaked_past_grace = past > 0 ? past : 0;
    o->workers_vanished = vanished;
}

/* ------------------------------------------------------------------------------------------ */
/* Task cost histogram                                                                         */

/* A task type as a label value: kept when short and of plain characters, else "other". */
static const char *task_type_label(const char *task_type)
{
    size_t n = strlen(task_type);
    if (n == 0 || n >= METRICS_LABEL_MAX || strspn(task_type, LABEL_CHARS) != n)
        return OTHER_LABEL;
    return task_type;
}

/* The series (pool, task_type), added when new; beyond METRICS_COST_SERIES_MAX a new task type
 * folds into (pool, other), which can always be added. NULL only when even that is full. */
static MetricsCostSeries *cost_series(MetricsOps *o, const char *pool, const char *task_type)
{
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < o->n_cost; i++)
            if (strcmp(o->cost[i].pool, pool) == 0 && strcmp(o->cost[i].task_type, task_type) == 0)
                return &o->cost[i];
        bool other = strcmp(task_type, OTHER_LABEL) == 0;
        size_t cap = other ? sizeof o->cost / sizeof o->cost[0] : METRICS_COST_SERIES_MAX;
        if (o->n_cost < cap) {
            MetricsCostSeries *s = &o->cost[o->n_cost++];
            memset(s, 0, sizeof *s);
            snprintf(s->pool, sizeof s->pool, "%s", pool);
            snprintf(s->task_type, sizeof s->task_type, "%s", task_type);
            return s;
        }
        if (other)
            return NULL;
        task_type = OTHER_LABEL;
    }
    return NULL;
}

void metrics_ops_observe_costs(MetricsState *m, const TaskCostReport *r)
{
    for (size_t i = 0; i < r->n_types; i++) {
        const TaskCostType *t = &r->types[i];
        const char *pool = t->pool[0] && metrics_pool_known(m, t->pool) ? t->pool : METRICS_NO_POOL;
        MetricsCostSeries *s = cost_series(&m->ops, pool, task_type_label(t->task_type));
        if (!s || t->bucket < 0)
            continue;
        for (int b = t->bucket; b < TASK_COST_BUCKETS; b++)
            s->le[b] += (double)t->tasks;
        s->count += (double)t->tasks;
        s->sum += t->usd;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Rendering                                                                                   */

static void gauge(MetricsBuf *b, const char *name, const char *help, double v)
{
    metrics_buf_family(b, name, "gauge", help);
    metrics_buf_sample(b, name, NULL, NULL, NULL, NULL, v);
}

/* One line of a histogram series: name_suffix{pool,task_type[,le]} value. */
static void cost_line(MetricsBuf *b, const char *suffix, const MetricsCostSeries *s, const char *le,
                      double v)
{
    metrics_buf_printf(b, "%stask_cost_usd%s{pool=\"", METRICS_PREFIX, suffix);
    metrics_buf_label_value(b, s->pool);
    metrics_buf_printf(b, "\",task_type=\"");
    metrics_buf_label_value(b, s->task_type);
    if (le)
        metrics_buf_printf(b, "\",le=\"%s", le);
    metrics_buf_printf(b, "\"} %.15g\n", v);
}

void metrics_ops_render(MetricsBuf *b, const MetricsState *m)
{
    const MetricsOps *o = &m->ops;
    gauge(b, "poll_interval_seconds",
          "Seconds between cycles: ORCHESTRATOR_POLL_SEC, or continuous's --interval (set it to "
          "the schedule's period when single runs from cron).",
          o->poll_interval_sec);
    gauge(b, "reconcile_interval_seconds", "RECONCILE_INTERVAL_SEC.", o->reconcile_interval_sec);
    gauge(b, "fleet_spend_cap_per_hour_usd", "MAX_HOURLY_SPEND_USD, the fleet's cap; 0 = off.",
          o->fleet_spend_cap_usd);
    metrics_buf_family(b, "spend_cap_per_hour_usd", "gauge",
                       "The pool's MAX_HOURLY_SPEND_USD (its own, else the global one); 0 = off.");
    for (size_t p = 0; p < m->n_pool_names; p++)
        metrics_buf_sample(b, "spend_cap_per_hour_usd", "pool", m->pool_names[p], NULL, NULL,
                           o->pool_spend_cap_usd[p]);
    if (m->fleet_known)
        gauge(b, "gpu_types_backed_off",
              "GPU types in capacity backoff (RunPod had none; skipped until it passes).",
              (double)o->gpu_types_backed_off);
    if (o->last_reconcile_epoch > 0)
        gauge(b, "last_reconcile_timestamp_seconds",
              "Unix time of the last reconcile (pod list against worker rows), database clock.",
              o->last_reconcile_epoch);
    if (o->pods_known) {
        metrics_buf_family(b, "pods_leaked", "gauge",
                           "Pods of ours that no live worker row owns, in the last pod list: "
                           "within ORPHAN_POD_GRACE_SEC, or past it and not terminated.");
        metrics_buf_sample(b, "pods_leaked", "grace", "within", NULL, NULL,
                           (double)o->leaked_within_grace);
        metrics_buf_sample(b, "pods_leaked", "grace", "past", NULL, NULL,
                           (double)o->leaked_past_grace);
        gauge(b, "workers_vanished",
              "Live worker rows whose recorded pod the last pod list does not show.",
              (double)o->workers_vanished);
    }
    if (o->n_cost == 0)
        return;
    metrics_buf_family(b, "task_cost_usd", "histogram",
                       "Cost of each completed task (its worker's cost_per_hr x its runtime), by "
                       "pool and task type, observed on the reconcile cadence.");
    for (size_t i = 0; i < o->n_cost; i++) {
        const MetricsCostSeries *s = &o->cost[i];
        for (int k = 0; k < TASK_COST_BUCKETS; k++) {
            char le[32];
            snprintf(le, sizeof le, "%g", TASK_COST_BOUNDS[k]);
            cost_line(b, "_bucket", s, le, s->le[k]);
        }
        cost_line(b, "_bucket", s, "+Inf", s->count);
        cost_line(b, "_sum", s, NULL, s->sum);
        cost_line(b, "_count", s, NULL, s->count);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Textfile                                                                                    */

/* Reads `<name>="<value>"` at *p, the value of chars `allowed`, advancing past the closing
 * quote. Returns the value (NUL-terminated in place) or NULL. */
static char *take(char **p, const char *name, const char *allowed)
{
    size_t n = strlen(name);
    if (strncmp(*p, name, n) != 0 || strncmp(*p + n, "=\"", 2) != 0)
        return NULL;
    char *value = *p + n + 2;
    size_t vn = strcmp(name, "pool") == 0 &&
                        strncmp(value, METRICS_NO_POOL "\"", sizeof METRICS_NO_POOL) == 0
                    ? sizeof METRICS_NO_POOL - 1
                    : strspn(value, allowed);
    if (vn == 0 || vn >= METRICS_LABEL_MAX || value[vn] != '"')
        return NULL;
    value[vn] = '\0';
    *p = value + vn + 1;
    return value;
}

/* The number after `} ` or ` ` at p; false when malformed or negative. */
static bool take_value(const char *p, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(p, &end);
    if (errno != 0 || end == p || !isfinite(v) || v < 0)
        return false;
    *out = v;
    return true;
}

/* task_cost_usd_{bucket,sum,count}{pool="..",task_type=".."[,le=".."]} v */
static void load_cost(MetricsState *m, const char *suffix, char *rest)
{
    char *p = rest;
    char *pool = take(&p, "pool", "abcdefghijklmnopqrstuvwxyz0123456789_");
    if (!pool || !metrics_pool_known(m, pool) || *p++ != ',')
        return;
    char *type = take(&p, "task_type", LABEL_CHARS);
    if (!type)
        return;
    int bucket = -1;
    if (strcmp(suffix, "_bucket") == 0) {
        char *le = *p == ',' ? (p++, take(&p, "le", "0123456789.e+-Inf")) : NULL;
        if (!le)
            return;
        for (int k = 0; k < TASK_COST_BUCKETS && bucket < 0; k++) {
            char want[32];
            snprintf(want, sizeof want, "%g", TASK_COST_BOUNDS[k]);
            if (strcmp(le, want) == 0)
                bucket = k;
        }
        if (bucket < 0 && strcmp(le, "+Inf") != 0)
            return;
    }
    double v = 0;
    if (strncmp(p, "} ", 2) != 0 || !take_value(p + 2, &v))
        return;
    MetricsCostSeries *s = cost_series(&m->ops, pool, type);
    if (!s)
        return;
    if (bucket >= 0)
        s->le[bucket] = v;
    else if (strcmp(suffix, "_sum") == 0)
        s->sum = v;
    else if (strcmp(suffix, "_count") == 0)
        s->count = v;
}

bool metrics_ops_load_line(MetricsState *m, const char *name, char sep, char *rest)
{
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    static const char base[] = "task_cost_usd";
    if (strncmp(name, base, sizeof base - 1) == 0) {
        for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++)
            if (strcmp(name + sizeof base - 1, suffixes[i]) == 0 && sep == '{')
                load_cost(m, suffixes[i], rest);
        return true;
    }
    /* The last pod list's findings stand until the next list, across cron runs too (a run
     * that lists no pods would otherwise drop the series an alert waits on). */
    double v = 0;
    if (strcmp(name, "workers_vanished") == 0) {
        if (sep == ' ' && take_value(rest, &v)) {
            m->ops.pods_known = true;
            m->ops.workers_vanished = (long long)v;
        }
        return true;
    }
    if (strcmp(name, "pods_leaked") == 0) {
        char *p = rest;
        char *grace = sep == '{' ? take(&p, "grace", "abcdefghijklmnopqrstuvwxyz") : NULL;
        if (!grace || strncmp(p, "} ", 2) != 0 || !take_value(p + 2, &v))
            return true;
        m->ops.pods_known = true;
        if (strcmp(grace, "within") == 0)
            m->ops.leaked_within_grace = (long long)v;
        else if (strcmp(grace, "past") == 0)
            m->ops.leaked_past_grace = (long long)v;
        return true;
    }
    return false;
}
