/* metrics.c -- Prometheus metrics of the control cycle: the state and how a cycle updates it
 * (see metrics.h; metrics_text.c renders it and reads and writes the textfile).
 *
 * Shell module: no I/O, no logging. Label values come only from fixed name tables (planner
 * reasons, cycle results, RunPod error classes) and the configured pool names, never from ids,
 * so cardinality stays bounded.
 */
#include "metrics.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cJSON.h>

#include "metrics_family.h"
#include "retry.h"

#define OTHER_LABEL "other"

/* ------------------------------------------------------------------------------------------ */
/* Counters                                                                                    */

const MetricsFamily METRICS_COUNTERS[] = {
    {"pods_created_total", "reason", true, "RunPod pods created, by the scale-up reason and pool.",
     offsetof(MetricsState, pods_created)},
    {"pod_create_failures_total", "reason", true,
     "Pod creations that failed (no_capacity, outcome_unknown, or the RunPod error class), by "
     "pool.",
     offsetof(MetricsState, pod_create_failures)},
    {"pods_terminated_total", "reason", true,
     "RunPod pods terminated, by the planner reason and pool ((none): leaked pods and pools no "
     "longer configured).",
     offsetof(MetricsState, pods_terminated)},
    {"workers_failed_total", "reason", false, "Workers moved to error, by the health-check reason.",
     offsetof(MetricsState, workers_failed)},
    {"tasks_recovered_total", "outcome", false,
     "In Progress tasks taken back from failed or gone workers: requeued, or failed for good.",
     offsetof(MetricsState, tasks_recovered)},
    {"cycles_total", "result", false, "Control cycles run, by result (ok, locked, database, ...).",
     offsetof(MetricsState, cycles)},
    {"pod_list_entries_skipped_total", "kind", false,
     "Entries of RunPod's pod list that could not be fully read: skipped (no usable id) or "
     "partial (kept, a field replaced by its default). The rest of the list is still used.",
     offsetof(MetricsState, pod_list_defects)},
    {"pod_list_reads_total", "result", false,
     "Reads of RunPod's pod list (reconcile, spawning checks, adoption), by result: ok or "
     "failed (a failed read decides nothing about pods that cycle).",
     offsetof(MetricsState, pod_list_reads)},
    {"worker_cost_usd_total", "use", true,
     "GPU cost of the pool's workers' alive time (cost_per_hr x time), split into busy (a task "
     "was running) and idle (none was), observed on the reconcile cadence.",
     offsetof(MetricsState, worker_cost)},
    {"spawns_deferred_total", "reason", false,
     "Planned spawns held back for a later cycle because RunPod's rate-limit quota was low "
     "(terminations are never held back).",
     offsetof(MetricsState, spawns_deferred)},
    {"gpu_catalog_reads_total", "result", false,
     "Reads of RunPod's GPU catalog (stock and prices), by result (ok, failed).",
     offsetof(MetricsState, catalog_reads)},
    {"warm_pool_events_total", "event", false,
     "Stopped-pod warm pool (WARM_STOPPED_PODS): drained pods stopped, stopped pods started "
     "again, starts RunPod refused (a pod was created instead), stops that failed (the pod was "
     "terminated instead).",
     offsetof(MetricsState, warm_pool)},
    {"pod_log_reads_total", "outcome", false,
     "Log tails of failed workers' pods read before termination: read, or failed (timeout or "
     "error; the pod was terminated all the same).",
     offsetof(MetricsState, pod_log_reads)},
};
const size_t METRICS_N_COUNTERS = sizeof METRICS_COUNTERS / sizeof METRICS_COUNTERS[0];

MetricsCounter *metrics_family_of(MetricsState *m, const MetricsFamily *f)
{
    return (MetricsCounter *)(void *)((char *)m + f->offset);
}

const MetricsCounter *metrics_family_of_const(const MetricsState *m, const MetricsFamily *f)
{
    return (const MetricsCounter *)(const void *)((const char *)m + f->offset);
}

/* Slot of (label, pool) in c, added at 0 when new. The last slot is kept for "other" (with the
 * pool (none) in a family with the pool label), so a surprise label set folds into it and can
 * never push a known one out. Returns c->count when full. */
static size_t counter_slot(MetricsCounter *c, const char *label, const char *pool)
{
    for (size_t i = 0; i < c->count; i++)
        if (strcmp(c->samples[i].label, label) == 0 && strcmp(c->samples[i].pool, pool) == 0)
            return i;
    const char *other_pool = pool[0] ? METRICS_NO_POOL : "";
    bool other = strcmp(label, OTHER_LABEL) == 0 && strcmp(pool, other_pool) == 0;
    if (c->count + 1 < METRICS_LABELS_MAX || (other && c->count < METRICS_LABELS_MAX)) {
        snprintf(c->samples[c->count].label, sizeof c->samples[c->count].label, "%s", label);
        snprintf(c->samples[c->count].pool, sizeof c->samples[c->count].pool, "%s", pool);
        c->samples[c->count].value = 0;
        return c->count++;
    }
    return other ? c->count : counter_slot(c, OTHER_LABEL, other_pool);
}

static void counter_add(MetricsCounter *c, const char *label, const char *pool, double delta)
{
    size_t i = counter_slot(c, label && label[0] ? label : "unknown", pool);
    if (i < c->count)
        c->samples[i].value += delta;
}

void metrics_counter_set(MetricsCounter *c, const char *label, const char *pool, double value)
{
    size_t i = counter_slot(c, label, pool);
    if (i < c->count)
        c->samples[i].value = value;
}

double metrics_counter_get(const MetricsCounter *c, const char *label)
{
    double v = 0;
    for (size_t i = 0; c && i < c->count; i++)
        if (strcmp(c->samples[i].label, label) == 0)
            v += c->samples[i].value;
    return v;
}

double metrics_counter_get_pool(const MetricsCounter *c, const char *label, const char *pool)
{
    for (size_t i = 0; c && i < c->count; i++)
        if (strcmp(c->samples[i].label, label) == 0 && strcmp(c->samples[i].pool, pool) == 0)
            return c->samples[i].value;
    return 0;
}

bool metrics_pool_known(const MetricsState *m, const char *pool)
{
    if (strcmp(pool, METRICS_NO_POOL) == 0)
        return true;
    for (size_t p = 0; p < m->n_pool_names; p++)
        if (strcmp(m->pool_names[p], pool) == 0)
            return true;
    return false;
}

/* The pool label of an outcome's "pool": a configured pool, else (none). */
static const char *pool_label(const MetricsState *m, const char *pool)
{
    return pool[0] && metrics_pool_known(m, pool) ? pool : METRICS_NO_POOL;
}

/* ------------------------------------------------------------------------------------------ */
/* State                                                                                       */

void metrics_init(MetricsState *m, const Config *cfg)
{
    memset(m, 0, sizeof *m);
    m->workers_min = cfg->min_active_gpus;
    m->workers_max = cfg->max_active_gpus;
    m->safe_mode = cfg->safe_mode;
    for (size_t p = 0; p < cfg->n_pools && p < PLAN_POOLS_MAX; p++)
        snprintf(m->pool_names[m->n_pool_names++], METRICS_POOL_MAX, "%s", cfg->pools[p].name);

    /* Every label set known in advance starts at 0, so rate() sees the first increment. */
    static const Reason created[] = {REASON_BACKLOG, REASON_MIN_FLOOR, REASON_KEEP_IDLE};
    static const Reason terminated[] = {REASON_DRAINED, REASON_ERROR_CLEANUP,
                                        REASON_GRACEFUL_TIMEOUT};
    static const Reason failed[] = {REASON_NO_POD_ID,       REASON_POD_ERROR,
                                    REASON_POD_EXITED,      REASON_POD_TERMINATED,
                                    REASON_POD_GONE,        REASON_SPAWNING_TIMEOUT,
                                    REASON_STALE_HEARTBEAT, REASON_STUCK_TASK,
                                    REASON_GPU_NOT_VISIBLE, REASON_WORKER_CRASHED};
    static const Status results[] = {STATUS_OK, STATUS_LOCKED, STATUS_ERR_DB, STATUS_ERR_API,
                                     STATUS_ERR_PARTIAL};
    for (size_t p = 0; p < m->n_pool_names; p++) {
        const char *pool = m->pool_names[p];
        for (size_t i = 0; i < sizeof created / sizeof created[0]; i++)
            counter_add(&m->pods_created, reason_str(created[i]), pool, 0);
        for (size_t i = 0; i < sizeof terminated / sizeof terminated[0]; i++)
            counter_add(&m->pods_terminated, reason_str(terminated[i]), pool, 0);
        counter_add(&m->pod_create_failures, runpod_error_str(RP_NO_CAPACITY), pool, 0);
        counter_add(&m->pod_create_failures, "outcome_unknown", pool, 0);
    }
    counter_add(&m->pods_terminated, reason_str(REASON_LEAKED_POD), METRICS_NO_POOL, 0);
    for (size_t i = 0; i < sizeof failed / sizeof failed[0]; i++)
        counter_add(&m->workers_failed, reason_str(failed[i]), "", 0);
    for (size_t i = 0; i < sizeof results / sizeof results[0]; i++)
        counter_add(&m->cycles, status_str(results[i]), "", 0);
    counter_add(&m->tasks_recovered, "requeued", "", 0);
    counter_add(&m->tasks_recovered, "failed", "", 0);
    counter_add(&m->pod_list_defects, "skipped", "", 0);
    counter_add(&m->pod_list_defects, "partial", "", 0);
    counter_add(&m->pod_list_reads, "ok", "", 0);
    counter_add(&m->pod_list_reads, "failed", "", 0);
    for (size_t p = 0; p < m->n_pool_names; p++) {
        counter_add(&m->worker_cost, "busy", m->pool_names[p], 0);
        counter_add(&m->worker_cost, "idle", m->pool_names[p], 0);
    }
    counter_add(&m->spawns_deferred, "rate_limit", "", 0);
    counter_add(&m->catalog_reads, "ok", "", 0);
    counter_add(&m->catalog_reads, "failed", "", 0);
    static const char *const warm[] = {"stopped", "started", "start_refused", "stop_failed"};
    for (size_t i = 0; i < sizeof warm / sizeof warm[0]; i++)
        counter_add(&m->warm_pool, warm[i], "", 0);
    counter_add(&m->pod_log_reads, "read", "", 0);
    counter_add(&m->pod_log_reads, "failed", "", 0);
    metrics_ops_init(m, cfg);
}

void metrics_count_pod_list(MetricsState *m, bool ok)
{
    if (m)
        counter_add(&m->pod_list_reads, ok ? "ok" : "failed", "", 1);
}

/* The busy and idle cost of each pool of an observation (the histogram: metrics_ops.c). */
void metrics_observe_task_costs(MetricsState *m, const TaskCostReport *r)
{
    if (!m || !r || !r->observed)
        return;
    for (size_t p = 0; p < r->n_pools; p++) {
        const char *pool = pool_label(m, r->pools[p].pool);
        counter_add(&m->worker_cost, "busy", pool, r->pools[p].busy_usd);
        counter_add(&m->worker_cost, "idle", pool, task_cost_idle(&r->pools[p]));
    }
    metrics_ops_observe_costs(m, r);
}

void metrics_count_catalog_read(MetricsState *m, bool ok)
{
    if (m)
        counter_add(&m->catalog_reads, ok ? "ok" : "failed", "", 1);
}

Status metrics_new(const Config *cfg, MetricsState **out)
{
    MetricsState *m = malloc(sizeof *m);
    if (!m)
        return STATUS_ERR_NOMEM;
    metrics_init(m, cfg);
    *out = m;
    return STATUS_OK;
}

void metrics_free(MetricsState *m)
{
    free(m);
}

static const char *json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : "";
}

/* The failure class of a spawn whose result is "failed", from the actuator's detail
 * ("Failed to spawn Runpod instance: <class>[: detail]"). */
static const char *create_failure_class(const char *detail)
{
    static const char prefix[] = "Failed to spawn Runpod instance: ";
    if (strncmp(detail, prefix, sizeof prefix - 1) != 0)
        return "error";
    const char *rest = detail + sizeof prefix - 1;
    for (int c = RP_NO_CAPACITY; c <= RP_UNEXPECTED; c++) {
        const char *name = runpod_error_str((RunpodErrorClass)c);
        size_t n = strlen(name);
        if (strncmp(rest, name, n) == 0 && (rest[n] == ':' || rest[n] == '\0'))
            return name;
    }
    return "error";
}

/* Adds one actuator outcome {action, reason, pool?, result, detail} to the counters. */
static void observe_outcome(MetricsState *m, const cJSON *o)
{
    const char *action = json_str(o, "action");
    const char *reason = json_str(o, "reason");
    const char *result = json_str(o, "result");
    const char *detail = json_str(o, "detail");
    const char *pool = pool_label(m, json_str(o, "pool"));
    bool applied = strcmp(result, "applied") == 0;

    if (strcmp(action, action_kind_str(ACTION_SPAWN_WORKER)) == 0) {
        if (strcmp(result, "deferred") == 0)
            counter_add(&m->spawns_deferred, "rate_limit", "", 1);
        else if (applied || strncmp(detail, "pod created", 11) == 0)
            counter_add(&m->pods_created, reason, pool, 1); /* the pod exists, whatever the row */
        else if (strcmp(result, "no_capacity") == 0)
            counter_add(&m->pod_create_failures, runpod_error_str(RP_NO_CAPACITY), pool, 1);
        else if (strcmp(result, "unknown") == 0)
            counter_add(&m->pod_create_failures, "outcome_unknown", pool, 1);
        else if (strcmp(result, "failed") == 0)
            counter_add(&m->pod_create_failures, create_failure_class(detail), pool, 1);
        return;
    }
    if (!applied)
        return;
    if (strcmp(action, action_kind_str(ACTION_TERMINATE_WORKER)) == 0 ||
        strcmp(action, action_kind_str(ACTION_TERMINATE_POD)) == 0)
        counter_add(&m->pods_terminated, reason, pool, 1);
    else if (strcmp(action, action_kind_str(ACTION_FAIL_WORKER)) == 0)
        counter_add(&m->workers_failed, reason, "", 1);
}

static double wall_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The plan's pools, in its order, then what no configured pool holds (workers of pools removed
 * from POOLS, tasks of no live worker of a pool, their cost) as METRICS_NO_POOL when any. When
 * the planner stopped early (an unsafe snapshot: no pools in the plan) the last known counts stay
 * and every pool reports the plan's spawn limit. */
static void observe_pools(MetricsState *m, const Plan *plan)
{
    if (plan->n_pools == 0) {
        if (m->n_pools == 0) /* none known yet: the configured pools, counts unknown (0) */
            for (size_t p = 0; p < m->n_pool_names; p++) {
                MetricsPool *e = &m->pools[m->n_pools++];
                memset(e, 0, sizeof *e);
                snprintf(e->name, sizeof e->name, "%s", m->pool_names[p]);
                e->configured = true;
            }
        for (size_t p = 0; p < m->n_pools; p++)
            m->pools[p].spawn_limit = m->pools[p].configured ? plan->spawn_limit : SPAWN_LIMIT_NONE;
        return;
    }
    MetricsPool rest = {.spawning = plan->spawning,
                        .active = plan->active,
                        .idle = plan->idle,
                        .busy = plan->busy,
                        .terminating = plan->terminating,
                        .stopped = plan->stopped,
                        .tasks_running = plan->running,
                        .cost_per_hr = plan->fleet_cost_per_hr};
    m->n_pools = 0;
    for (size_t p = 0; p < plan->n_pools && p < PLAN_POOLS_MAX; p++) {
        const PlanPool *pp = &plan->pools[p];
        MetricsPool *e = &m->pools[m->n_pools++];
        memset(e, 0, sizeof *e);
        snprintf(e->name, sizeof e->name, "%s", pp->name);
        e->configured = true;
        e->spawning = pp->spawning;
        e->active = pp->active;
        e->idle = pp->idle;
        e->busy = pp->busy;
        e->terminating = pp->terminating;
        e->stopped = pp->stopped;
        e->tasks_queued = pp->queued;
        e->tasks_running = pp->running;
        e->oldest_queued_age_sec = pp->oldest_queued_age_sec > 0 ? pp->oldest_queued_age_sec : 0;
        e->desired = pp->desired;
        e->breaker_open = pp->breaker_open;
        e->spawn_limit = pp->spawn_limit;
        e->cost_per_hr = pp->cost_per_hr;
        rest.spawning -= e->spawning;
        rest.active -= e->active;
        rest.idle -= e->idle;
        rest.busy -= e->busy;
        rest.terminating -= e->terminating;
        rest.stopped -= e->stopped;
        rest.tasks_running -= e->tasks_running;
        rest.cost_per_hr -= e->cost_per_hr;
    }
    if (fabs(rest.cost_per_hr) < 0.0005)
        rest.cost_per_hr = 0;
    if (rest.spawning > 0 || rest.active > 0 || rest.terminating > 0 || rest.stopped > 0 ||
        rest.tasks_running > 0 || rest.cost_per_hr > 0) {
        snprintf(rest.name, sizeof rest.name, "%s", METRICS_NO_POOL);
        m->pools[m->n_pools++] = rest;
    }
}

/* A run type as a label value: kept when it is short and of plain characters, else "other"
 * (task data must not put arbitrary text into a label). */
static const char *run_type_label(const char *run_type)
{
    size_t n = strlen(run_type);
    if (n == 0 || n >= METRICS_LABEL_MAX ||
        strspn(run_type, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") != n)
        return OTHER_LABEL;
    return run_type;
}

static void unserved_add(MetricsState *m, const char *label, long long queued)
{
    for (size_t k = 0; k < m->n_unserved; k++)
        if (strcmp(m->unserved[k].run_type, label) == 0) {
            m->unserved[k].queued += queued;
            return;
        }
    if (m->n_unserved >= METRICS_UNSERVED_MAX) /* cannot happen: at most 8 names and other */
        return;
    snprintf(m->unserved[m->n_unserved].run_type, METRICS_LABEL_MAX, "%s", label);
    m->unserved[m->n_unserved++].queued = queued;
}

/* Queued tasks of run types no pool serves: the plan names up to PLAN_UNSERVED_MAX run types,
 * the snapshot counts each; whatever is left over is "other". */
static void observe_unserved(MetricsState *m, const Snapshot *snap, const Plan *plan)
{
    m->n_unserved = 0;
    long long named = 0;
    for (size_t u = 0; u < plan->n_unserved && u < PLAN_UNSERVED_MAX; u++)
        for (size_t k = 0; k < snap->n_run_types; k++)
            if (strcmp(snap->run_types[k].name, plan->unserved[u]) == 0) {
                unserved_add(m, run_type_label(plan->unserved[u]), snap->run_types[k].queued);
                named += snap->run_types[k].queued;
                break;
            }
    if (plan->unserved_queued > named)
        unserved_add(m, OTHER_LABEL, plan->unserved_queued - named);
}

void metrics_observe_cycle(MetricsState *m, const Snapshot *snap, const Plan *plan,
                           const ActResult *act, Status st, double duration_sec)
{
    if (!m)
        return;
    if (snap && plan && snap->cycle_number > 0) {
        observe_pools(m, plan);
        observe_unserved(m, snap, plan);
        m->fleet_known = true;
        m->tasks_queued_all = snap->queued_total;
        m->tasks_foreign_held = plan->foreign_held_tasks;
        m->spend_estimated = plan->spend_estimate_per_hr;
        m->billing_known = snap->billing_known;
        m->spend_billed = snap->billing_total_usd_per_hr;
        if (snap->pods_listed) {
            counter_add(&m->pod_list_defects, "skipped", "", (double)snap->pods_skipped);
            counter_add(&m->pod_list_defects, "partial", "", (double)snap->pods_partial);
        }
        metrics_ops_observe(m, snap, plan, act);
        if (act) /* the planner's deferrals (a dry run acts on nothing, defers nothing) */
            counter_add(&m->spawns_deferred, "rate_limit", "", (double)plan->rate_deferred);
        metrics_observe_runpod(m, &snap->quota, snap);
    }
    if (act) {
        for (const cJSON *o = act->outcomes ? act->outcomes->child : NULL; o; o = o->next)
            observe_outcome(m, o);
        counter_add(&m->tasks_recovered, "requeued", "", (double)act->tasks_reset);
        counter_add(&m->tasks_recovered, "failed", "", (double)act->tasks_failed);
        counter_add(&m->warm_pool, "stopped", "", (double)act->workers_stopped);
        counter_add(&m->warm_pool, "started", "", (double)act->workers_started);
        counter_add(&m->warm_pool, "start_refused", "", (double)act->start_fallbacks);
        counter_add(&m->warm_pool, "stop_failed", "", (double)act->stop_fallbacks);
        counter_add(&m->pod_log_reads, "read", "", (double)act->log_tails);
        counter_add(&m->pod_log_reads, "failed", "", (double)act->log_tail_failures);
    }
    counter_add(&m->cycles, status_str(st), "", 1);
    m->cycle_seen = true;
    m->cycle_duration_sec = duration_sec >= 0 ? duration_sec : 0;
    if (st == STATUS_OK)
        m->last_success_epoch = wall_clock();
}
