/* sim_model.c -- the discrete-event loop of the policy lab: containers, the run, set-up and
 * results (see sim_model.h). The fleet -- pods, the simulated RunPod and the workers -- is
 * sim_fleet.c; the orchestrator's side is sim_cycle.c (the real planner) and sim_policy.c (the
 * baselines); the references and the report are sim_report.c.
 *
 * Pure: no I/O, clock, environment or unseeded randomness; it allocates the world. Events are
 * ordered by (time, scheduling order) and arrivals go first at equal times, so a run is a
 * function of its inputs.
 */
#include "sim_world.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* Containers                                                                                  */

bool sim_grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return true;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * size);
    if (!q)
        return false;
    *p = q;
    *cap = n;
    return true;
}

static bool ev_less(const SimEvent *a, const SimEvent *b)
{
    return a->t < b->t || (a->t == b->t && a->seq < b->seq);
}

void sim_schedule(SimWorld *w, long long t, int kind, long long a, unsigned gen)
{
    if (!sim_grow((void **)&w->ev, &w->cap_ev, w->n_ev + 1, sizeof *w->ev)) {
        w->st = STATUS_ERR_NOMEM;
        return;
    }
    SimEvent e = {t, w->seq++, a, gen, kind};
    size_t i = w->n_ev++;
    while (i > 0 && ev_less(&e, &w->ev[(i - 1) / 2])) {
        w->ev[i] = w->ev[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    w->ev[i] = e;
}

static SimEvent ev_pop(SimWorld *w)
{
    SimEvent top = w->ev[0], last = w->ev[--w->n_ev];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const SimEvent *best = &last;
        if (l < w->n_ev && ev_less(&w->ev[l], best))
            m = l, best = &w->ev[l];
        if (r < w->n_ev && ev_less(&w->ev[r], best))
            m = r;
        if (m == i)
            break;
        w->ev[i] = w->ev[m];
        i = m;
    }
    if (w->n_ev > 0)
        w->ev[i] = last;
    return top;
}

void sim_heap_push(SimWorld *w, SimIdxHeap *h, long long v)
{
    if (!sim_grow((void **)&h->v, &h->cap, h->n + 1, sizeof *h->v)) {
        w->st = STATUS_ERR_NOMEM;
        return;
    }
    size_t i = h->n++;
    while (i > 0 && v < h->v[(i - 1) / 2]) {
        h->v[i] = h->v[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h->v[i] = v;
}

void sim_heap_pop(SimIdxHeap *h)
{
    long long last = h->v[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        long long best = last;
        if (l < h->n && h->v[l] < best)
            m = l, best = h->v[l];
        if (r < h->n && h->v[r] < best)
            m = r;
        if (m == i)
            break;
        h->v[i] = h->v[m];
        i = m;
    }
    if (h->n > 0)
        h->v[i] = last;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

double sim_median(const long long *v, size_t n)
{
    if (n == 0)
        return -1;
    long long tmp[64];
    if (n > 64)
        n = 64;
    memcpy(tmp, v, n * sizeof *v);
    qsort(tmp, n, sizeof *tmp, cmp_ll);
    return n % 2 ? (double)tmp[n / 2] : ((double)tmp[n / 2 - 1] + (double)tmp[n / 2]) / 2.0;
}

/* ------------------------------------------------------------------------------------------ */
/* The run                                                                                     */

void sim_request_cycle(SimWorld *w, long long t)
{
    if (t < w->cycle_pending_ms) {
        w->cycle_pending_ms = t;
        sim_schedule(w, t, SIM_EV_CYCLE, 0, 0);
    }
}

static void arrive(SimWorld *w, size_t idx)
{
    const SimTraceTask *k = &w->trace->tasks[idx];
    SimRunType *r = &w->rts[k->run_type];
    r->arrived++;
    sim_enqueue(w, (long long)idx);
    if (r->pool < 0) { /* no pool serves it: it stays queued, never claimed */
        w->unserved++;
        w->finals++;
    } else {
        sim_dispatch(w, r->pool);
    }
    if (w->par->policy == SIM_POLICY_PLANNER && w->notify)
        sim_request_cycle(w, w->now + w->debounce_ms);
}

static void handle(SimWorld *w, const SimEvent *e)
{
    switch (e->kind) {
    case SIM_EV_CYCLE: {
        if (e->t != w->cycle_pending_ms)
            return; /* superseded by an earlier one */
        w->cycle_pending_ms = SIM_INF;
        w->cycles++;
        long long next = w->poll_ms;
        if (w->par->policy == SIM_POLICY_PLANNER) {
            sim_cycle_planner(w);
        } else {
            sim_cycle_baseline(w);
            next = w->par->policy == SIM_POLICY_KEDA     ? 30000
                   : w->par->policy == SIM_POLICY_RUNPOD ? 1000
                                                         : w->poll_ms;
        }
        /* Stopped pods past STOPPED_POD_MAX_AGE_SEC are terminated (never leaked). */
        for (size_t i = 0; i < w->n_live; i++) {
            const SimPod *p = &w->pods[w->live[i]];
            if (p->stopped && w->now - p->stopped_ms > w->par->stopped_max_age_sec * 1000)
                sim_stopped_close(w, w->live[i--]);
        }
        sim_request_cycle(w, w->now + next);
        return;
    }
    case SIM_EV_BOOT:
        if (e->gen == w->pods[e->a].gen && w->pods[e->a].live)
            sim_boot(w, e->a);
        return;
    case SIM_EV_POLL: {
        SimPod *p = &w->pods[e->a];
        if (e->gen != p->gen || p->poll_pending_ms != e->t)
            return;
        p->poll_pending_ms = -1;
        if (sim_can_claim(p))
            sim_claim(w, e->a);
        return;
    }
    case SIM_EV_TASK_END:
        if (e->gen == w->pods[e->a].gen && w->pods[e->a].live)
            sim_task_end(w, e->a);
        return;
    case SIM_EV_AVAILABLE: {
        SimTask *t = &w->tasks[e->a];
        if (t->state != SIM_TS_BACKOFF)
            return;
        w->rts[w->trace->tasks[e->a].run_type].n_backoff--;
        sim_enqueue(w, e->a);
        sim_dispatch(w, w->rts[w->trace->tasks[e->a].run_type].pool);
        return;
    }
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Set-up and results                                                                          */

static int pool_of_run_type(const Policy *pol, const char *run_type)
{
    for (size_t p = 0; p < pol->n_pools && p < PLAN_POOLS_MAX; p++)
        for (size_t r = 0; r < pol->pools[p].n_run_types; r++)
            if (strcmp(pol->pools[p].run_types[r], run_type) == 0)
                return (int)p;
    return -1;
}

/* Each run type's arrival times and, per arrival, its tasks within the warm window up to it
 * (inclusive at both ends and of equal times, as SQL's RANGE window counts them). */
static Status init_arrivals(SimWorld *w)
{
    const SimTrace *tr = w->trace;
    long long win = (long long)w->cfg->adaptive_warm_window_sec * 1000;
    for (size_t r = 0; r < w->n_rts; r++) {
        SimRunType *rt = &w->rts[r];
        size_t n = 0;
        for (size_t i = 0; i < tr->n; i++)
            n += tr->tasks[i].run_type == r;
        rt->arr = malloc((n ? n : 1) * sizeof *rt->arr);
        rt->peak_c = malloc((n ? n : 1) * sizeof *rt->peak_c);
        rt->dq = malloc((n ? n : 1) * sizeof *rt->dq);
        if (!rt->arr || !rt->peak_c || !rt->dq)
            return STATUS_ERR_NOMEM;
        for (size_t i = 0; i < tr->n; i++)
            if (tr->tasks[i].run_type == r)
                rt->arr[rt->n_arr++] = tr->tasks[i].arrival_ms;
        size_t lo = 0, hi = 0;
        for (size_t i = 0; i < rt->n_arr; i++) {
            while (rt->arr[lo] < rt->arr[i] - win)
                lo++;
            if (hi < i)
                hi = i;
            while (hi + 1 < rt->n_arr && rt->arr[hi + 1] == rt->arr[i])
                hi++;
            rt->peak_c[i] = (long long)(hi - lo + 1);
        }
    }
    return STATUS_OK;
}

/* The median trace duration: the history a running system has already seen on each GPU type
 * (value choice) before the run starts, scaled by the type's speed. */
static void seed_value_history(SimWorld *w)
{
    const SimTrace *tr = w->trace;
    long long sample[64];
    size_t n = 0;
    for (size_t i = 0; i < tr->n && n < 64; i += tr->n / 64 + 1)
        sample[n++] = tr->tasks[i].duration_ms;
    double med = sim_median(sample, n);
    for (size_t g = 0; g < w->n_gpus && med > 0; g++) {
        SimGpuState *s = &w->gpus[g];
        for (int k = 0; k < w->par->value_min_samples && k < SIM_GPU_SAMPLES; k++) {
            s->durs[s->next_dur] = llround(med * s->p.speed);
            s->next_dur = (s->next_dur + 1) % SIM_GPU_SAMPLES;
            if (s->n_durs < SIM_GPU_SAMPLES)
                s->n_durs++;
        }
    }
}

static Status world_init(SimWorld *w, const SimTrace *tr, const Config *cfg, const SimParams *par)
{
    w->trace = tr;
    w->cfg = cfg;
    w->par = par;
    w->policy = calloc(1, sizeof *w->policy);
    w->tasks = calloc(tr->n ? tr->n : 1, sizeof *w->tasks);
    if (!w->policy || !w->tasks)
        return STATUS_ERR_NOMEM;
    policy_from_config(cfg, w->policy);
    if (par->policy == SIM_POLICY_PLANNER) {
        w->snap = calloc(1, sizeof *w->snap);
        w->plan = malloc(sizeof *w->plan);
        if (!w->snap || !w->plan)
            return STATUS_ERR_NOMEM;
    }
    sim_rng_seed(&w->rng, par->seed);
    for (size_t i = 0; i < tr->n; i++) {
        w->tasks[i].holder = -1;
        w->tasks[i].first_claim_ms = w->tasks[i].started_ms = SIM_NEVER;
        w->tasks[i].done_ms = -1;
    }
    w->n_rts = tr->n_run_types;
    for (size_t r = 0; r < w->n_rts; r++)
        w->rts[r].pool = pool_of_run_type(w->policy, tr->run_types[r]);
    w->n_pools = w->policy->n_pools < PLAN_POOLS_MAX ? w->policy->n_pools : PLAN_POOLS_MAX;
    for (size_t p = 0; p < w->n_pools; p++) {
        snprintf(w->pools[p].m.name, sizeof w->pools[p].m.name, "%s", w->policy->pools[p].name);
        for (size_t g = 0; g < w->policy->pools[p].n_gpu_types; g++)
            sim_gpu_index(w, w->policy->pools[p].gpu_types[g]);
    }
    if (par->gpu_choice == SIM_CHOICE_VALUE)
        seed_value_history(w);
    w->poll_ms = (long long)cfg->orchestrator_poll_sec * 1000;
    w->worker_poll_ms = llround(par->worker_poll_sec * 1000.0);
    if (w->worker_poll_ms < 1)
        w->worker_poll_ms = 1;
    w->after_task_ms = llround(par->poll_after_task_sec * 1000.0);
    w->hb_ms = llround(par->heartbeat_sec * 1000.0);
    if (w->hb_ms < 1)
        w->hb_ms = 1;
    w->debounce_ms = llround(par->notify_debounce_sec * 1000.0);
    w->max_attempts = cfg->max_task_attempts;
    w->notify = cfg->enable_notify_wakeup;
    w->measures = par->policy == SIM_POLICY_PLANNER &&
                  (cfg->adaptive_warm_pool || cfg->predictive_scale_up || cfg->adaptive_idle_grace);
    long long last = tr->n ? tr->tasks[tr->n - 1].arrival_ms : 0;
    w->horizon_ms =
        tr->end_ms > last + par->drain_sec * 1000 ? tr->end_ms : last + par->drain_sec * 1000;
    w->limit_ms = w->horizon_ms + par->max_extra_sec * 1000;
    w->cycle_pending_ms = SIM_INF;
    w->last_reconcile_ms = SIM_NEVER;
    return init_arrivals(w);
}

/* The fleet at 0: each pool's recorded count (none when a recorded run lists it not), else its
 * MIN_ACTIVE_GPUS, active and idle for SIM_INITIAL_IDLE_SEC, on the GPU type the choice puts
 * first, billed from 0. */
static void initial_fleet(SimWorld *w)
{
    long long idle = llround(w->par->initial_idle_sec * 1000.0);
    for (size_t p = 0; p < w->n_pools; p++) {
        const PolicyPool *pp = &w->policy->pools[p];
        long long n = w->trace->initial_recorded ? 0 : pp->min_active;
        for (size_t k = 0; k < w->trace->n_initial; k++)
            if (strcmp(w->trace->initial_pool[k], pp->name) == 0)
                n = w->trace->initial_count[k];
        int order[PLAN_GPU_TYPES_MAX];
        int g =
            pp->n_gpu_types > 0 && sim_choose_order(w, pp->gpu_types, pp->n_gpu_types, order) > 0
                ? order[0]
                : sim_gpu_index(w, "");
        for (long long k = 0; k < n; k++) {
            long long idx = sim_new_pod(w, (int)p, g, false);
            if (idx < 0)
                return;
            SimPod *pod = &w->pods[idx];
            pod->gen++; /* no boot event: it booted long ago */
            pod->created_ms = -idle - 60000;
            pod->boot_ms = pod->promoted_ms = -idle;
            pod->booted = true;
            pod->will_crash = false;
            pod->state = WORKER_ACTIVE;
            pod->poll_anchor_ms = -idle;
            w->gpus[g].price_known = true;
        }
    }
}

void sim_metrics_set_waits(SimMetrics *m, double *waits, size_t n)
{
    m->wait_p50_sec = m->wait_p95_sec = m->wait_p99_sec = m->wait_max_sec = m->wait_mean_sec = 0;
    if (n == 0)
        return;
    /* Shell sort (no NaN here): in place, no allocation. */
    size_t gap;
    for (gap = n / 2; gap > 0; gap /= 2)
        for (size_t i = gap; i < n; i++) {
            double x = waits[i];
            size_t j = i;
            for (; j >= gap && waits[j - gap] > x; j -= gap)
                waits[j] = waits[j - gap];
            waits[j] = x;
        }
    /* Nearest rank: the smallest wait with at least p of the tasks at or below it. */
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += waits[i];
    const double ps[3] = {0.50, 0.95, 0.99};
    double *out[3] = {&m->wait_p50_sec, &m->wait_p95_sec, &m->wait_p99_sec};
    for (int k = 0; k < 3; k++) {
        size_t rank = (size_t)ceil(ps[k] * (double)n);
        *out[k] = waits[(rank > 0 ? rank : 1) - 1];
    }
    m->wait_max_sec = waits[n - 1];
    m->wait_mean_sec = sum / (double)n;
}

static void add_metrics(SimMetrics *t, const SimMetrics *m)
{
    t->tasks += m->tasks;
    t->completed += m->completed;
    t->failed += m->failed;
    t->unfinished += m->unfinished;
    t->busy_gpu_sec += m->busy_gpu_sec;
    t->idle_gpu_sec += m->idle_gpu_sec;
    t->busy_usd += m->busy_usd;
    t->idle_usd += m->idle_usd;
    t->stopped_usd += m->stopped_usd;
    t->cold_starts += m->cold_starts;
    t->pods_created += m->pods_created;
    t->restarts += m->restarts;
    t->no_capacity += m->no_capacity;
    t->crashed_at_start += m->crashed_at_start;
}

static Status results(SimWorld *w, long long end, SimResult *out)
{
    const SimTrace *tr = w->trace;
    w->now = end;
    while (w->n_live > 0) /* close every bill at the end */
        sim_terminate(w, w->live[w->n_live - 1], false);
    memset(out, 0, sizeof *out);
    out->n_tasks = tr->n;
    out->completion_ms = malloc((tr->n ? tr->n : 1) * sizeof *out->completion_ms);
    out->wait_ms = malloc((tr->n ? tr->n : 1) * sizeof *out->wait_ms);
    double *waits = malloc((tr->n ? tr->n : 1) * sizeof *waits);
    size_t *at = calloc(w->n_pools + 1, sizeof *at);
    if (!out->completion_ms || !out->wait_ms || !waits || !at) {
        free(waits);
        free(at);
        sim_result_clear(out);
        return STATUS_ERR_NOMEM;
    }
    /* Waits grouped by pool in one array: pool p's from at[p]. */
    for (size_t i = 0; i < tr->n; i++) {
        int p = w->rts[tr->tasks[i].run_type].pool;
        if (p >= 0)
            at[p + 1]++;
    }
    for (size_t p = 1; p <= w->n_pools; p++)
        at[p] += at[p - 1];
    size_t *fill = calloc(w->n_pools + 1, sizeof *fill);
    if (!fill) {
        free(waits);
        free(at);
        sim_result_clear(out);
        return STATUS_ERR_NOMEM;
    }
    for (size_t i = 0; i < tr->n; i++) {
        const SimTask *t = &w->tasks[i];
        long long arrival = tr->tasks[i].arrival_ms;
        out->completion_ms[i] = t->done_ms;
        out->wait_ms[i] = t->first_claim_ms != SIM_NEVER ? t->first_claim_ms - arrival : -1;
        int p = w->rts[tr->tasks[i].run_type].pool;
        if (p < 0) {
            out->unserved++;
            continue;
        }
        SimMetrics *m = &w->pools[p].m;
        m->tasks++;
        m->completed += t->state == SIM_TS_DONE;
        m->failed += t->state == SIM_TS_FAILED;
        m->unfinished += t->state != SIM_TS_DONE && t->state != SIM_TS_FAILED;
        m->cold_starts += t->cold;
        long long wait = out->wait_ms[i] >= 0 ? out->wait_ms[i] : end - arrival;
        waits[at[p] + fill[p]++] = (double)(wait > 0 ? wait : 0) / 1000.0;
    }
    snprintf(out->total.name, sizeof out->total.name, "total");
    out->n_pools = w->n_pools;
    for (size_t p = 0; p < w->n_pools; p++) {
        out->pools[p] = w->pools[p].m;
        sim_metrics_set_waits(&out->pools[p], waits + at[p], at[p + 1] - at[p]);
        add_metrics(&out->total, &out->pools[p]);
    }
    out->total.peak_fleet = w->peak_total;
    sim_metrics_set_waits(&out->total, waits, at[w->n_pools]);
    out->cycles = w->cycles;
    out->events = w->events;
    out->end_sec = (double)end / 1000.0;
    free(waits);
    free(at);
    free(fill);
    return STATUS_OK;
}

static void world_free(SimWorld *w)
{
    for (size_t r = 0; r < SIM_TYPES_MAX; r++) {
        free(w->rts[r].ready.v);
        free(w->rts[r].backoff.v);
        free(w->rts[r].arr);
        free(w->rts[r].peak_c);
        free(w->rts[r].dq);
    }
    free(w->policy);
    free(w->snap);
    free(w->plan);
    free(w->ev);
    free(w->tasks);
    free(w->pods);
    free(w->live);
    free(w->endings);
    free(w);
}

Status sim_run(const SimTrace *trace, const Config *cfg, const SimParams *params, SimResult *out)
{
    SimWorld *w = calloc(1, sizeof *w);
    if (!w)
        return STATUS_ERR_NOMEM;
    Status st = world_init(w, trace, cfg, params);
    if (st == STATUS_OK) {
        initial_fleet(w);
        sim_request_cycle(w, 0);
    }
    long long n = (long long)trace->n;
    while (st == STATUS_OK && w->st == STATUS_OK) {
        long long t_arr =
            w->next_arrival < trace->n ? trace->tasks[w->next_arrival].arrival_ms : SIM_INF;
        long long t_ev = w->n_ev ? w->ev[0].t : SIM_INF;
        long long t = t_arr <= t_ev ? t_arr : t_ev;
        if (t == SIM_INF || t > w->limit_ms || (w->finals == n && t > w->horizon_ms))
            break;
        w->now = t;
        w->events++;
        if (t_arr <= t_ev) {
            arrive(w, w->next_arrival++);
        } else {
            SimEvent e = ev_pop(w);
            handle(w, &e);
        }
    }
    if (st == STATUS_OK)
        st = w->st;
    if (st == STATUS_OK) {
        long long end = w->finals == n ? w->last_final_ms : w->now;
        if (end < w->horizon_ms)
            end = w->horizon_ms;
        if (end > w->limit_ms)
            end = w->limit_ms;
        st = results(w, end, out);
    }
    world_free(w);
    return st;
}

void sim_result_clear(SimResult *r)
{
    if (!r)
        return;
    free(r->completion_ms);
    free(r->wait_ms);
    memset(r, 0, sizeof *r);
}
