/* sim_cycle.c -- the orchestrator's cycle in the simulated world: the Snapshot that
 * db_load_snapshot (and the RunPod pod list) would give, the real planner_decide, and the Plan
 * applied as the actuator would apply it.
 *
 * Pure. The snapshot follows the shell's rules: ages in whole seconds from the same clock, the
 * pod list only when reconcile is due or a worker is spawning (loop.c need_pods), the breaker's
 * endings within FAILURE_WINDOW_MINUTES, prices only of GPU types a pod was created on, and the
 * adaptive policies' measures exactly as the snapshot statement computes them. Strings are
 * copied with memcpy, not printf: this runs tens of thousands of times per simulated day.
 */
#include "sim_world.h"

#include <string.h>

static void copy_str(char *dst, size_t cap, const char *src)
{
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Whole seconds from t to now (as extract(epoch ...)::bigint after cell_ll); -1 never. */
static long long age(const SimWorld *w, long long t)
{
    if (t == SIM_NEVER)
        return -1;
    long long a = (w->now - t) / 1000;
    return a > 0 ? a : 0;
}

/* "t<index>" / "pod-<index>" without printf. */
static void index_name(char *dst, size_t cap, const char *prefix, long long v)
{
    char digits[24];
    size_t n = 0;
    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0 && n < sizeof digits);
    size_t p = strlen(prefix);
    if (p + n + 1 > cap)
        n = 0;
    memcpy(dst, prefix, p);
    for (size_t i = 0; i < n; i++)
        dst[p + i] = digits[n - 1 - i];
    dst[p + n] = '\0';
}

static void fill_demand(SimWorld *w, Snapshot *s)
{
    s->n_run_types = 0;
    s->queued_claimable = s->queued_total = s->in_progress_total = 0;
    s->oldest_queued_age_sec = -1;
    s->run_types_truncated = false;
    for (size_t r = 0; r < w->n_rts; r++) {
        SimRunType *rt = &w->rts[r];
        s->in_progress_total += rt->n_running;
        long long q = rt->n_ready + rt->n_backoff;
        if (q == 0)
            continue;
        if (s->n_run_types >= SNAP_RUN_TYPES_MAX) {
            s->run_types_truncated = true;
            continue;
        }
        SnapRunType *x = &s->run_types[s->n_run_types++];
        copy_str(x->name, sizeof x->name, w->trace->run_types[r]);
        x->claimable = rt->n_ready;
        x->queued = q;
        long long oldest = sim_oldest_queued(w, r);
        x->oldest_queued_age_sec = oldest >= 0 ? age(w, w->trace->tasks[oldest].arrival_ms) : -1;
        s->queued_claimable += x->claimable;
        s->queued_total += q;
        if (x->oldest_queued_age_sec > s->oldest_queued_age_sec)
            s->oldest_queued_age_sec = x->oldest_queued_age_sec;
    }
}

/* The last heartbeat: every heartbeat interval from boot, frozen when the worker died. */
static long long last_heartbeat(const SimWorld *w, const SimPod *p)
{
    long long until = p->exited ? p->dead_ms : w->now;
    return p->boot_ms + (until - p->boot_ms) / w->hb_ms * w->hb_ms;
}

static void fill_worker(SimWorld *w, const SimPod *p, SnapWorker *x)
{
    copy_str(x->id, sizeof x->id, p->id);
    copy_str(x->pool, sizeof x->pool, w->policy->pools[p->pool].name);
    x->state = p->state;
    index_name(x->runpod_id, sizeof x->runpod_id, "pod-", p - w->pods);
    x->age_sec = age(w, p->created_ms);
    bool beat = p->booted && !(p->exited && p->dead_ms < p->boot_ms);
    x->heartbeat_age_sec = beat ? age(w, last_heartbeat(w, p)) : -1;
    x->heartbeat_after_create = beat;
    x->promoted_age_sec = age(w, p->promoted_ms);
    x->activity_age_sec = age(w, p->activity_ms);
    x->terminating_age_sec = age(w, p->terminating_ms);
    x->vram_total_mb = beat ? 24564 : -1;
    x->vram_used_mb = beat ? (p->task >= 0 ? 18000 : 500) : -1;
    x->cost_per_hr = w->gpus[p->gpu].p.price_per_hr;
    copy_str(x->gpu_type, sizeof x->gpu_type, w->gpus[p->gpu].p.name);
    x->tasks_held = p->task >= 0 ? 1 : 0;
    if (p->task >= 0) {
        index_name(x->oldest_task_id, sizeof x->oldest_task_id, "t", p->task);
        x->oldest_task_age_sec = age(w, w->tasks[p->task].started_ms);
    } else {
        x->oldest_task_id[0] = '\0';
        x->oldest_task_age_sec = -1;
    }
    x->create_unknown = false;
    x->create_unknown_age_sec = -1;
    x->pod_age_sec = x->age_sec;
    x->id_too_long = false;
}

static void fill_task(SimWorld *w, const SimPod *p, SnapTask *t)
{
    const SimTraceTask *k = &w->trace->tasks[p->task];
    index_name(t->id, sizeof t->id, "t", p->task);
    copy_str(t->worker_id, sizeof t->worker_id, p->id);
    copy_str(t->task_type, sizeof t->task_type, w->trace->task_types[k->task_type]);
    copy_str(t->run_type, sizeof t->run_type, w->trace->run_types[k->run_type]);
    t->exempt = false;
    t->age_sec = age(w, w->tasks[p->task].started_ms);
    t->attempts = w->tasks[p->task].attempts;
    t->max_attempts = 0;
    t->holder_known = true;
    t->holder_too_long = false;
}

static void fill_fleet(SimWorld *w, Snapshot *s)
{
    s->n_workers = s->n_tasks = 0;
    s->workers_truncated = s->tasks_truncated = false;
    bool spawning = false;
    double top = 0;
    for (size_t i = 0; i < w->n_live; i++) {
        const SimPod *p = &w->pods[w->live[i]];
        if (!p->live)
            continue;
        if (s->n_workers >= SNAP_WORKERS_MAX) {
            s->workers_truncated = true;
            break;
        }
        fill_worker(w, p, &s->workers[s->n_workers++]);
        spawning = spawning || p->state == WORKER_SPAWNING;
        if (w->gpus[p->gpu].p.price_per_hr > top)
            top = w->gpus[p->gpu].p.price_per_hr;
        if (p->task >= 0 && s->n_tasks < SNAP_TASKS_MAX)
            fill_task(w, p, &s->tasks[s->n_tasks++]);
    }
    s->max_known_pod_cost = top;
    /* The pod list, when the loop would fetch it. Stopped pods are left out: reconcile would
     * see them as pods of ended rows (issue 16 teaches it about them). */
    s->since_reconcile_sec = age(w, w->last_reconcile_ms);
    s->pods_listed = spawning || planner_reconcile_due(s, w->policy);
    s->n_pods = s->pods_foreign = s->pods_skipped = s->pods_partial = 0;
    for (size_t i = 0; s->pods_listed && i < w->n_live && s->n_pods < SNAP_PODS_MAX; i++) {
        const SimPod *p = &w->pods[w->live[i]];
        if (!p->live)
            continue;
        SnapPod *x = &s->pods[s->n_pods++];
        index_name(x->id, sizeof x->id, "pod-", w->live[i]);
        copy_str(x->name, sizeof x->name, p->id);
        x->status = p->exited ? SNAP_POD_EXITED : SNAP_POD_RUNNING;
        x->age_sec = age(w, p->created_ms);
        x->cost_per_hr = w->gpus[p->gpu].p.price_per_hr;
        copy_str(x->gpu_type, sizeof x->gpu_type, w->gpus[p->gpu].p.name);
        x->partial = false;
        x->ended_row = false;
    }
}

static void fill_state(SimWorld *w, Snapshot *s)
{
    long long window = (long long)w->cfg->failure_window_minutes * 60000;
    while (w->end_head < w->n_end && w->endings[w->end_head].t <= w->now - window)
        w->end_head++;
    s->ended_in_window = s->unexpected_in_window = 0;
    s->n_pool_endings = 0;
    for (size_t p = 0; p < w->n_pools && p < SNAP_POOLS_MAX; p++) {
        SnapPoolEndings *e = &s->pool_endings[s->n_pool_endings];
        e->ended = e->unexpected = 0;
        for (size_t k = w->end_head; k < w->n_end; k++)
            if (w->endings[k].pool == (int)p) {
                e->ended++;
                e->unexpected += w->endings[k].unexpected;
            }
        if (e->ended == 0)
            continue;
        copy_str(e->pool, sizeof e->pool, w->policy->pools[p].name);
        s->ended_in_window += e->ended;
        s->unexpected_in_window += e->unexpected;
        s->n_pool_endings++;
    }
    s->n_pool_claims = 0;
    s->breaker_was_open = false;
    s->since_success_sec = w->poll_ms / 1000;
    s->n_backoffs = s->n_prices = 0;
    for (size_t g = 0; g < w->n_gpus; g++) {
        const SimGpuState *x = &w->gpus[g];
        if (x->backoff_until_ms > w->now && s->n_backoffs < SNAP_GPU_BACKOFF_MAX) {
            SnapGpuBackoff *b = &s->backoffs[s->n_backoffs++];
            copy_str(b->gpu_type, sizeof b->gpu_type, x->p.name);
            b->remaining_sec = (x->backoff_until_ms - w->now) / 1000 + 1;
            b->failures = x->failures;
        }
        /* gpu_prices holds a price per (type, cloud); the simulated RunPod has one price per
         * type, recorded for the cloud of every pool (SECURE and COMMUNITY alike). */
        for (size_t p = 0; x->price_known && p < w->n_pools; p++) {
            const char *cloud = w->policy->pools[p].cloud_type;
            bool seen = false;
            for (size_t q = 0; q < p && !seen; q++)
                seen = strcmp(w->policy->pools[q].cloud_type, cloud) == 0;
            if (seen || s->n_prices >= SNAP_GPU_PRICES_MAX)
                continue;
            SnapGpuPrice *pr = &s->prices[s->n_prices++];
            copy_str(pr->gpu_type, sizeof pr->gpu_type, x->p.name);
            copy_str(pr->cloud_type, sizeof pr->cloud_type, cloud);
            pr->usd_per_hr = x->p.price_per_hr;
        }
    }
}

/* The measures as the snapshot statement computes them (db_snapshot.c, load_measures). */
static void fill_measures(SimWorld *w, SnapMeasures *m)
{
    m->measured = w->measures;
    m->n_arrivals = m->n_boots = 0;
    if (!w->measures)
        return;
    long long rate = (long long)w->cfg->adaptive_rate_window_sec * 1000;
    long long demote = (long long)w->cfg->adaptive_warm_demote_sec * 1000;
    for (size_t r = 0; r < w->n_rts && m->n_arrivals < SNAP_RUN_TYPES_MAX; r++) {
        SimRunType *rt = &w->rts[r];
        while (rt->rate_lo < rt->arrived && rt->arr[rt->rate_lo] <= w->now - rate)
            rt->rate_lo++;
        for (; rt->dq_pushed < rt->arrived; rt->dq_pushed++) {
            while (rt->dq_tail > rt->dq_head &&
                   rt->peak_c[rt->dq[rt->dq_tail - 1]] <= rt->peak_c[rt->dq_pushed])
                rt->dq_tail--;
            rt->dq[rt->dq_tail++] = rt->dq_pushed;
        }
        while (rt->dq_head < rt->dq_tail && rt->arr[rt->dq[rt->dq_head]] <= w->now - demote)
            rt->dq_head++;
        SnapArrivals *x = &m->arrivals[m->n_arrivals++];
        copy_str(x->name, sizeof x->name, w->trace->run_types[r]);
        x->arrivals_rate = (long long)(rt->arrived - rt->rate_lo);
        x->warm_peak = rt->dq_head < rt->dq_tail ? rt->peak_c[rt->dq[rt->dq_head]] : 0;
        long long last = rt->arrived ? rt->arr[rt->arrived - 1] : SIM_NEVER;
        x->last_arrival_age_sec =
            rt->arrived && last > w->now - demote ? (w->now - last) / 1000 : -1;
        double med = sim_median(rt->durs, rt->n_durs);
        x->median_duration_sec = med >= 0 ? med / 1000.0 : -1;
    }
    for (size_t p = 0; p < w->n_pools && m->n_boots < SNAP_POOLS_MAX; p++) {
        const SimPoolState *ps = &w->pools[p];
        SnapPoolBoot *b = &m->boots[m->n_boots++];
        copy_str(b->pool, sizeof b->pool, w->policy->pools[p].name);
        double med = sim_median(ps->boots, ps->n_boots);
        b->median_boot_sec = med >= 0 ? med / 1000.0 : -1;
        b->boots = (long long)ps->n_boots;
    }
}

/* The plan, applied in order as the actuator does, each write guarded as its SQL is. */
static void apply(SimWorld *w)
{
    const Plan *pl = w->plan;
    for (size_t i = 0; i < pl->count; i++) {
        const Action *a = &pl->actions[i];
        long long pod = a->worker_id[0] ? sim_pod_index(w, a->worker_id) : -1;
        SimPod *p = pod >= 0 ? &w->pods[pod] : NULL;
        switch (a->kind) {
        case ACTION_PROMOTE_WORKER:
            if (p && p->live && p->state == WORKER_SPAWNING)
                sim_promote(w, pod);
            break;
        case ACTION_FAIL_WORKER:
            if (p && p->live) {
                p->state = WORKER_ERROR;
                sim_end_service(w, pod, a->unexpected);
            }
            break;
        case ACTION_RECOVER_TASK: {
            long long t = sim_task_index(a->task_id);
            if (t >= 0 && (size_t)t < w->trace->n)
                sim_recover_task(w, t);
            break;
        }
        case ACTION_DRAIN_WORKER:
            if (p && p->live && p->state == WORKER_ACTIVE && p->task < 0) {
                p->state = WORKER_TERMINATING;
                p->terminating_ms = w->now;
                sim_end_service(w, pod, false);
            }
            break;
        case ACTION_TERMINATE_WORKER:
            if (p)
                sim_terminate(w, pod, a->reason == REASON_DRAINED);
            break;
        case ACTION_STOP_WORKER: /* the simulated RunPod keeps it stopped when its warm pool
                                    (WARM_STOPPED_PODS) has room, as for a drained termination */
            if (p)
                sim_terminate(w, pod, true);
            break;
        case ACTION_START_WORKER:
            break; /* never planned: stopped pods stay out of the simulated snapshot, and a
                      spawn restarts one first (sim_spawn) */
        case ACTION_SPAWN_WORKER:
            if (a->pool >= 0 && (size_t)a->pool < pl->n_pools)
                sim_spawn(w, a->pool, pl->pools[a->pool].gpu_types, pl->pools[a->pool].n_gpu_types);
            break;
        case ACTION_ADOPT_POD:
        case ACTION_TERMINATE_POD:
            break; /* every simulated pod has its id recorded: nothing to adopt or leak */
        }
    }
    if (pl->reconcile_ran)
        w->last_reconcile_ms = w->now;
    sim_dispatch_all(w);
}

void sim_cycle_planner(SimWorld *w)
{
    Snapshot *s = w->snap;
    s->now_epoch = (double)SIM_EPOCH0_SEC + (double)w->now / 1000.0;
    s->cycle_number = ++w->cycle_number;
    fill_demand(w, s);
    fill_fleet(w, s);
    fill_state(w, s);
    fill_measures(w, &s->measures);
    planner_decide(s, w->policy, w->plan);
    apply(w);
}
