/* planner_warm.c -- the stopped-pod warm pool (issue 16 item 4): which drained pods are stopped
 * instead of terminated, which stopped pods a scale-up starts again, which stopped pods must go,
 * and what a worker costs for the spend cap (estimate or bill, whichever is larger).
 *
 * Pure: reads only the working view; no I/O, clock, environment, allocation or logging.
 *
 * A stopped pod keeps its disk and cached image on its host and is billed for its disk only.
 * Its worker row keeps its id (the pod's environment carries WORKER_ID, so a restarted pod can
 * only come back as that worker) in status `stopped`, which is never capacity: it holds no task,
 * claims nothing and is not counted as active, spawning or under MAX_ACTIVE_GPUS. A start turns
 * it back into `spawning` -- one scale-up slot, counted under MAX like a create -- and the row
 * then lives exactly like a new spawn: promoted on its first heartbeat after the start, failed
 * after SPAWNING_TIMEOUT_SEC without one. structure_docs/runpod_lifecycle.md has the reasons.
 */
#include "planner_ctx.h"

#include <stdio.h>
#include <string.h>

/* Whether worker i is stopped (not ended, not started again) in the view. */
static bool is_stopped(const Ctx *c, size_t i)
{
    return c->view[i].state == WORKER_STOPPED && !c->view[i].terminated_in_plan &&
           !c->view[i].started && !c->snap->workers[i].id_too_long;
}

/* Whether GPU type t is among pool p's configured types. */
static bool type_configured(const PolicyPool *pp, const char *t)
{
    for (size_t g = 0; g < pp->n_gpu_types && g < PLAN_GPU_TYPES_MAX; g++)
        if (strcmp(pp->gpu_types[g], t) == 0)
            return true;
    return false;
}

/* Whether GPU type t is among pool p's usable types in this plan (its configured types less
 * those in capacity backoff or out of stock: size_pool's choice). */
static bool type_usable(const Ctx *c, int p, const char *t)
{
    const PlanPool *pp = &c->plan->pools[p];
    for (size_t g = 0; g < pp->n_gpu_types && g < PLAN_GPU_TYPES_MAX; g++)
        if (strcmp(pp->gpu_types[g], t) == 0)
            return true;
    return false;
}

/* Whether stopped worker i may be started now: it has a pod of a GPU type its pool may use now
 * (a stopped pod of a type the operator removed, or one backed off or out of stock, is not
 * started: it would run on a card the pool does not want, past the price bound the spend cap
 * was computed with; a row that recorded no type is judged by its price alone), and the list
 * (when read) shows that pod EXITED -- within the lag window of its stop it may still read
 * RUNNING; then it is simply not started this cycle. */
static bool startable(const Ctx *c, size_t i)
{
    const SnapWorker *w = &c->snap->workers[i];
    int p = c->view[i].pool;
    if (!w->runpod_id[0] || p < 0 || (w->gpu_type[0] && !type_usable(c, p, w->gpu_type)))
        return false;
    if (!c->snap->pods_listed)
        return true;
    const SnapPod *pod = planner_pod_by_id(c->snap, w->runpod_id);
    return pod && pod->status == SNAP_POD_EXITED;
}

/* Stopped workers of pool p in the view (those stopped in this plan included). */
static long long stopped_in_pool(const Ctx *c, int p)
{
    long long n = 0;
    for (size_t i = 0; i < c->snap->n_workers; i++)
        n += is_stopped(c, i) && c->view[i].pool == p;
    return n;
}

/* Plans the termination of stopped worker i's pod (the row ends: stopped -> terminated).
 * Returns false when the plan is full. */
static bool terminate_stopped(Ctx *c, size_t i, Reason reason, const char *detail)
{
    const SnapWorker *w = &c->snap->workers[i];
    Action *a = planner_add_action(c, ACTION_TERMINATE_WORKER, reason, w);
    if (!a)
        return false;
    a->from_state = WORKER_STOPPED;
    snprintf(a->detail, sizeof a->detail, "%s", detail);
    c->view[i].terminated_in_plan = true;
    return true;
}

/* The pod of stopped worker i as the list shows it, judged: true when it must go (gone, or in a
 * state other than EXITED) -- only once the list had time to show the stop. */
static bool pod_contradicts_stop(const Ctx *c, size_t i, char *why, size_t cap)
{
    const Snapshot *snap = c->snap;
    const SnapWorker *w = &snap->workers[i];
    if (!snap->pods_listed || !w->runpod_id[0] ||
        w->stopped_age_sec <= c->policy->pod_not_found_grace_sec)
        return false; /* the list lags a stop as it lags a create */
    const SnapPod *pod = planner_pod_by_id(snap, w->runpod_id);
    if (!pod) {
        snprintf(why, cap, "stopped pod %.40s no longer listed", w->runpod_id);
        return true;
    }
    if (pod->status == SNAP_POD_EXITED || pod->status == SNAP_POD_UNKNOWN)
        return false; /* stopped, as we left it (an unreadable status decides nothing) */
    snprintf(why, cap, "stopped pod %.40s is %s: no longer as we left it", w->runpod_id,
             pod->status == SNAP_POD_RUNNING        ? "RUNNING"
             : pod->status == SNAP_POD_STARTING     ? "STARTING"
             : pod->status == SNAP_POD_PROVISIONING ? "PROVISIONING"
             : pod->status == SNAP_POD_ERROR        ? "ERROR"
                                                    : "TERMINATED");
    return true;
}

/* Whether stopped worker a goes before b: stopped longer, then the lower index. */
static bool stopped_before(const Ctx *c, long long a, long long b)
{
    long long x = c->snap->workers[a].stopped_age_sec, y = c->snap->workers[b].stopped_age_sec;
    return x > y || (x == y && a < b);
}

/* The stopped worker of pool p stopped longest ago (only a startable one when to_start) that
 * comes after worker `after` in that order (-1: from the first); -1 when none. */
static long long pick_after(const Ctx *c, int p, bool to_start, long long after)
{
    long long best = -1;
    for (size_t i = 0; i < c->snap->n_workers; i++) {
        if (!is_stopped(c, i) || c->view[i].pool != p || (to_start && !startable(c, i)))
            continue;
        if (after >= 0 && !stopped_before(c, after, (long long)i))
            continue;
        if (best < 0 || stopped_before(c, (long long)i, best))
            best = (long long)i;
    }
    return best;
}

static long long pick_oldest(const Ctx *c, int p, bool to_start)
{
    return pick_after(c, p, to_start, -1);
}

long long planner_warm_next_start(const Ctx *c, int p, long long after)
{
    return p >= 0 ? pick_after(c, p, true, after) : -1;
}

double planner_warm_start_price(const Ctx *c, size_t i)
{
    const SnapWorker *w = &c->snap->workers[i];
    int p = c->view[i].pool;
    double price = w->cost_per_hr > 0 ? w->cost_per_hr : 0;
    for (size_t k = 0; p >= 0 && k < c->snap->n_prices; k++)
        if (strcmp(c->snap->prices[k].gpu_type, w->gpu_type) == 0 &&
            strcmp(c->snap->prices[k].cloud_type, c->policy->pools[p].cloud_type) == 0 &&
            c->snap->prices[k].usd_per_hr > price)
            price = c->snap->prices[k].usd_per_hr;
    return price;
}

void planner_step_stopped(Ctx *c)
{
    const Snapshot *snap = c->snap;
    const Policy *pol = c->policy;
    char why[PLAN_DETAIL_MAX];
    for (size_t i = 0; i < snap->n_workers; i++) {
        const SnapWorker *w = &snap->workers[i];
        if (!is_stopped(c, i))
            continue;
        bool ok = true;
        int p = c->view[i].pool;
        if (pod_contradicts_stop(c, i, why, sizeof why)) {
            ok = terminate_stopped(c, i, REASON_STOPPED_POD_STATE, why);
        } else if (p >= 0 && w->gpu_type[0] && pol->pools[p].n_gpu_types > 0 &&
                   !type_configured(&pol->pools[p], w->gpu_type)) {
            /* the operator took its GPU type out of the pool: never started again */
            snprintf(why, sizeof why, "its GPU type %.40s is no longer in pool %.32s's types",
                     w->gpu_type, pol->pools[p].name);
            ok = terminate_stopped(c, i, REASON_STOPPED_TYPE_GONE, why);
        } else if (w->stopped_age_sec > pol->stopped_max_age_sec) {
            snprintf(why, sizeof why, "stopped %llds ago (STOPPED_POD_MAX_AGE_SEC %lld)",
                     w->stopped_age_sec, pol->stopped_max_age_sec);
            ok = terminate_stopped(c, i, REASON_STOPPED_EXPIRED, why);
        }
        if (!ok)
            return; /* the plan is full */
    }
    /* The count bound, per pool: the most recently stopped are kept, the longest stopped go
     * first (a pool no longer configured keeps none). */
    for (int p = POOL_RETIRED; p < (int)pol->n_pools && p < PLAN_POOLS_MAX; p++) {
        long long keep = p >= 0 ? pol->pools[p].warm_stopped : 0;
        for (long long excess = stopped_in_pool(c, p) - keep; excess > 0; excess--) {
            long long oldest = pick_oldest(c, p, false);
            if (oldest < 0)
                break;
            if (p >= 0)
                snprintf(why, sizeof why, "pool %s keeps %lld stopped (WARM_STOPPED_PODS)",
                         pol->pools[p].name, keep);
            else
                snprintf(why, sizeof why, "its pool %.32s is no longer configured",
                         snap->workers[oldest].pool);
            if (!terminate_stopped(c, (size_t)oldest,
                                   p >= 0 ? REASON_STOPPED_EXCESS : REASON_STOPPED_POOL_GONE, why))
                return;
        }
    }
}

bool planner_warm_stop(Ctx *c, size_t i)
{
    const Snapshot *snap = c->snap;
    const SnapWorker *w = &snap->workers[i];
    View *v = &c->view[i];
    int p = v->pool;
    if (p < 0 || !v->drained_idle || v->tasks_held > 0 || !w->runpod_id[0] || w->id_too_long)
        return false;
    const PolicyPool *pp = &c->policy->pools[p];
    if (stopped_in_pool(c, p) >= pp->warm_stopped)
        return false;
    /* Only a worker that was healthy to the end is worth keeping: its heartbeat is fresh, and
     * its pod (when listed) runs. */
    if (w->heartbeat_age_sec < 0 || w->heartbeat_age_sec > pp->idle_timeout_sec)
        return false;
    if (snap->pods_listed) {
        const SnapPod *pod = planner_pod_by_id(snap, w->runpod_id);
        if (!pod || pod->status != SNAP_POD_RUNNING)
            return false;
    }
    Action *a = planner_add_action(c, ACTION_STOP_WORKER, REASON_WARM_POOL, w);
    if (!a)
        return false;
    a->from_state = WORKER_TERMINATING;
    snprintf(a->detail, sizeof a->detail, "pool %s: %lld of %d warm pods stopped", pp->name,
             stopped_in_pool(c, p) + 1, pp->warm_stopped);
    v->state = WORKER_STOPPED;
    return true;
}

bool planner_warm_start(Ctx *c, int p, Reason r)
{
    long long i = p >= 0 ? pick_oldest(c, p, true) : -1;
    if (i < 0)
        return false;
    const SnapWorker *w = &c->snap->workers[i];
    Action *a = planner_add_action(c, ACTION_START_WORKER, r, w);
    if (!a)
        return false;
    a->from_state = WORKER_STOPPED;
    a->pool = p;
    snprintf(a->detail, sizeof a->detail, "pool %s: start its stopped pod (stopped %llds ago)",
             c->policy->pools[p].name, w->stopped_age_sec);
    memcpy(a->gpu_type, w->gpu_type, sizeof a->gpu_type);
    a->cost_per_hr = w->cost_per_hr;
    c->view[i].started = true;
    return true;
}

double planner_worker_cost(const Ctx *c, size_t i, double unknown, double *estimate)
{
    const SnapWorker *w = &c->snap->workers[i];
    double est;
    if (c->view[i].state == WORKER_STOPPED) {
        int p = c->view[i].pool;
        est = p >= 0 ? c->policy->pools[p].stopped_cost_per_hr : 0;
        if (!(est > 0) && p < 0) /* a retired pool's stopped pod: the dearest disk price */
            for (size_t k = 0; k < c->policy->n_pools && k < PLAN_POOLS_MAX; k++)
                if (c->policy->pools[k].stopped_cost_per_hr > est)
                    est = c->policy->pools[k].stopped_cost_per_hr;
    } else {
        est = w->cost_per_hr > 0 ? w->cost_per_hr : unknown;
    }
    if (estimate)
        *estimate = est;
    return w->billed_usd_per_hr > est ? w->billed_usd_per_hr : est;
}
