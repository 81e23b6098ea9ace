/* sim_model.c -- the discrete-event loop of the policy lab and the simulated RunPod and workers
 * (see sim_model.h). The orchestrator's side is sim_cycle.c (the real planner) and
 * sim_policy.c (the baselines); the references and the report are sim_report.c.
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

#include "worker_name.h"

/* ------------------------------------------------------------------------------------------ */
/* Containers                                                                                  */

static bool grow(void **p, size_t *cap, size_t need, size_t size)
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
    if (!grow((void **)&w->ev, &w->cap_ev, w->n_ev + 1, sizeof *w->ev)) {
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

static void heap_push(SimWorld *w, SimIdxHeap *h, long long v)
{
    if (!grow((void **)&h->v, &h->cap, h->n + 1, sizeof *h->v)) {
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

static void heap_pop(SimIdxHeap *h)
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
/* Pods                                                                                        */

long long sim_pod_index(const SimWorld *w, const char *worker_id)
{
    size_t n = strlen(worker_id);
    if (n < 8)
        return -1;
    char *end = NULL;
    unsigned long long i = strtoull(worker_id + n - 8, &end, 16);
    if (!end || *end != '\0' || i >= w->n_pods || strcmp(w->pods[i].id, worker_id) != 0)
        return -1;
    return (long long)i;
}

long long sim_task_index(const char *task_id)
{
    if (task_id[0] != 't')
        return -1;
    char *end = NULL;
    long long i = strtoll(task_id + 1, &end, 10);
    return end && *end == '\0' && i >= 0 ? i : -1;
}

static void live_add(SimWorld *w, long long pod)
{
    if (!grow((void **)&w->live, &w->cap_live, w->n_live + 1, sizeof *w->live)) {
        w->st = STATUS_ERR_NOMEM;
        return;
    }
    w->live[w->n_live++] = pod;
}

static void live_remove(SimWorld *w, long long pod)
{
    for (size_t i = 0; i < w->n_live; i++)
        if (w->live[i] == pod) {
            memmove(&w->live[i], &w->live[i + 1], (w->n_live - i - 1) * sizeof *w->live);
            w->n_live--;
            return;
        }
}

/* A new pod (or worker row on a restarted pod) of pool on GPU type gpu, booting. */
static long long new_pod(SimWorld *w, int pool, int gpu, bool restart)
{
    if (!grow((void **)&w->pods, &w->cap_pods, w->n_pods + 1, sizeof *w->pods)) {
        w->st = STATUS_ERR_NOMEM;
        return -1;
    }
    long long idx = (long long)w->n_pods++;
    SimPod *p = &w->pods[idx];
    memset(p, 0, sizeof *p);
    unsigned char r4[4] = {(unsigned char)(idx >> 24), (unsigned char)(idx >> 16),
                           (unsigned char)(idx >> 8), (unsigned char)idx};
    worker_name_format(w->cfg->worker_id_prefix, SIM_EPOCH0_SEC + w->now / 1000, r4, p->id,
                       sizeof p->id);
    p->pool = pool;
    p->gpu = gpu;
    p->state = WORKER_SPAWNING;
    p->live = true;
    p->restart = restart;
    p->created_ms = p->bill_ms = w->now;
    p->promoted_ms = p->activity_ms = p->terminating_ms = p->dead_ms = SIM_NEVER;
    p->task = -1;
    p->poll_pending_ms = -1;
    const SimGpu *g = &w->gpus[gpu].p;
    double boot = restart ? sim_rng_lognormal(&w->rng, g->restart_median_sec, g->restart_sigma)
                          : sim_rng_lognormal(&w->rng, g->boot_median_sec, g->boot_sigma);
    p->boot_ms = w->now + llround(boot * 1000.0);
    p->will_crash = sim_rng_uniform(&w->rng) < g->crash_at_start;
    sim_schedule(w, p->boot_ms, SIM_EV_BOOT, idx, p->gen);
    live_add(w, idx);
    SimPoolState *ps = &w->pools[pool];
    if (++ps->live > ps->m.peak_fleet)
        ps->m.peak_fleet = ps->live;
    if (++w->live_total > w->peak_total)
        w->peak_total = w->live_total;
    return idx;
}

/* Ends the billing of a live pod: its GPU time and money, busy and idle, to its pool. */
static void bill_close(SimWorld *w, SimPod *p)
{
    long long total = w->now - p->bill_ms;
    long long busy = p->busy_ms < total ? p->busy_ms : total;
    double price = w->gpus[p->gpu].p.price_per_hr;
    SimMetrics *m = &w->pools[p->pool].m;
    m->busy_gpu_sec += (double)busy / 1000.0;
    m->idle_gpu_sec += (double)(total - busy) / 1000.0;
    m->busy_usd += (double)busy / 3.6e6 * price;
    m->idle_usd += (double)(total - busy) / 3.6e6 * price;
    p->busy_ms = 0;
}

/* Ends a stopped pod for good: its disk's billing ends. */
static void stopped_close(SimWorld *w, long long pod)
{
    SimPod *p = &w->pods[pod];
    w->pools[p->pool].m.stopped_usd +=
        (double)(w->now - p->stopped_ms) / 3.6e6 * w->gpus[p->gpu].p.storage_per_hr;
    w->pools[p->pool].stopped--;
    p->stopped = false;
    live_remove(w, pod);
}

/* Busy time of a pod's running task up to now. */
static void stop_task_clock(SimWorld *w, SimPod *p)
{
    if (p->task >= 0)
        p->busy_ms += w->now - w->tasks[p->task].started_ms;
}

void sim_terminate(SimWorld *w, long long pod, bool may_stop)
{
    SimPod *p = &w->pods[pod];
    if (p->stopped) {
        stopped_close(w, pod);
        return;
    }
    if (!p->live)
        return;
    if (p->task >= 0)
        sim_recover_task(w, p->task);
    bill_close(w, p);
    p->live = false;
    p->gen++;
    p->poll_pending_ms = -1;
    p->state = WORKER_TERMINATED;
    w->pools[p->pool].live--;
    w->live_total--;
    SimPoolState *ps = &w->pools[p->pool];
    if (may_stop && p->booted && !p->exited && ps->stopped < w->par->warm_stopped_pods) {
        p->stopped = true;
        p->stopped_ms = w->now;
        ps->stopped++;
        return; /* stays in the live list as a stopped pod */
    }
    live_remove(w, pod);
}

void sim_promote(SimWorld *w, long long pod)
{
    SimPod *p = &w->pods[pod];
    p->state = WORKER_ACTIVE;
    p->promoted_ms = w->now;
    SimPoolState *ps = &w->pools[p->pool];
    ps->boots[ps->next_boot] = w->now - p->created_ms;
    ps->next_boot = (ps->next_boot + 1) % SIM_BOOT_SAMPLES;
    if (ps->n_boots < SIM_BOOT_SAMPLES)
        ps->n_boots++;
}

void sim_end_service(SimWorld *w, long long pod, bool unexpected)
{
    SimPod *p = &w->pods[pod];
    if (p->ended)
        return;
    p->ended = true;
    if (!grow((void **)&w->endings, &w->cap_end, w->n_end + 1, sizeof *w->endings)) {
        w->st = STATUS_ERR_NOMEM;
        return;
    }
    w->endings[w->n_end++] = (SimEnding){w->now, p->pool, unexpected};
}

/* ------------------------------------------------------------------------------------------ */
/* The simulated RunPod: creates and GPU choice                                                */

static int gpu_index(SimWorld *w, const char *name)
{
    for (size_t i = 0; i < w->n_gpus; i++)
        if (strcmp(w->gpus[i].p.name, name) == 0)
            return (int)i;
    if (w->n_gpus >= SIM_GPU_TABLE_MAX)
        return 0;
    SimGpuState *g = &w->gpus[w->n_gpus];
    memset(g, 0, sizeof *g);
    g->p = sim_params_gpu(w->par, name);
    g->no_capacity_cycle = -1;
    return (int)w->n_gpus++;
}

/* Estimated price of a task on GPU g (value choice): its median observed duration x price, or,
 * with fewer than SIM_VALUE_MIN_SAMPLES durations, the candidates' pooled median x price. */
static double task_price(const SimWorld *w, int g, double pooled_median)
{
    const SimGpuState *s = &w->gpus[g];
    double d = (int)s->n_durs >= w->par->value_min_samples ? sim_median(s->durs, s->n_durs)
                                                           : pooled_median;
    return d > 0 ? d * s->p.price_per_hr : s->p.price_per_hr;
}

/* The candidate GPU types' order under the GPU choice (stable: ties keep the configured
 * order). */
static size_t choose_order(SimWorld *w, const char (*types)[SNAP_NAME_MAX], size_t n, int *out)
{
    double key[PLAN_GPU_TYPES_MAX];
    long long pooled[SIM_GPU_SAMPLES * 2];
    size_t n_pooled = 0;
    if (n > PLAN_GPU_TYPES_MAX)
        n = PLAN_GPU_TYPES_MAX;
    for (size_t i = 0; i < n; i++) {
        out[i] = gpu_index(w, types[i]);
        const SimGpuState *s = &w->gpus[out[i]];
        for (size_t k = 0; k < s->n_durs && n_pooled < sizeof pooled / sizeof pooled[0]; k++)
            pooled[n_pooled++] = s->durs[k];
    }
    double med = sim_median(pooled, n_pooled);
    for (size_t i = 0; i < n; i++)
        key[i] = w->par->gpu_choice == SIM_CHOICE_CHEAPEST ? w->gpus[out[i]].p.price_per_hr
                 : w->par->gpu_choice == SIM_CHOICE_VALUE  ? task_price(w, out[i], med)
                                                           : (double)i;
    for (size_t i = 1; i < n; i++) { /* insertion sort: stable */
        int g = out[i];
        double k = key[i];
        size_t j = i;
        for (; j > 0 && key[j - 1] > k; j--) {
            out[j] = out[j - 1];
            key[j] = key[j - 1];
        }
        out[j] = g;
        key[j] = k;
    }
    return n;
}

/* A no-capacity answer: the type's backoff grows once per cycle (CAPACITY_BACKOFF_BASE_SEC
 * doubling to CAPACITY_BACKOFF_MAX_SEC), as the actuator records it. */
static void no_capacity(SimWorld *w, int pool, int g)
{
    SimGpuState *s = &w->gpus[g];
    w->pools[pool].m.no_capacity++;
    if (s->no_capacity_cycle == w->cycles)
        return;
    s->no_capacity_cycle = w->cycles;
    s->failures++;
    double back = (double)w->cfg->capacity_backoff_base_sec * pow(2.0, s->failures - 1);
    if (back > w->cfg->capacity_backoff_max_sec)
        back = w->cfg->capacity_backoff_max_sec;
    s->backoff_until_ms = w->now + llround(back * 1000.0);
}

long long sim_spawn(SimWorld *w, int pool, const char (*types)[SNAP_NAME_MAX], size_t n_types)
{
    /* The stopped warm pool first: the most recently stopped pod of the pool. */
    long long stopped = -1;
    for (size_t i = 0; i < w->n_live; i++) {
        const SimPod *p = &w->pods[w->live[i]];
        if (p->stopped && p->pool == pool &&
            (stopped < 0 || p->stopped_ms >= w->pods[stopped].stopped_ms))
            stopped = w->live[i];
    }
    if (stopped >= 0) {
        int g = w->pods[stopped].gpu;
        bool fails = sim_rng_uniform(&w->rng) < w->gpus[g].p.restart_fail;
        stopped_close(w, stopped);
        if (!fails) {
            w->pools[pool].m.restarts++;
            return new_pod(w, pool, g, true);
        }
        /* no free GPU on its host: it is terminated, and a fresh create follows */
    }
    int order[PLAN_GPU_TYPES_MAX];
    size_t n = choose_order(w, types, n_types, order);
    for (size_t i = 0; i < n; i++) {
        SimGpuState *s = &w->gpus[order[i]];
        if (sim_rng_uniform(&w->rng) < s->p.no_capacity) {
            no_capacity(w, pool, order[i]);
            continue;
        }
        s->price_known = true;
        s->failures = 0;
        s->backoff_until_ms = 0;
        w->pools[pool].m.pods_created++;
        return new_pod(w, pool, order[i], false);
    }
    /* Nothing created: the row ends (expected: RunPod had no capacity). */
    if (grow((void **)&w->endings, &w->cap_end, w->n_end + 1, sizeof *w->endings))
        w->endings[w->n_end++] = (SimEnding){w->now, pool, false};
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Tasks and workers                                                                           */

static void task_final(SimWorld *w, long long idx, SimTaskState st)
{
    w->tasks[idx].state = (unsigned char)st;
    w->tasks[idx].done_ms = w->now;
    w->finals++;
    w->last_final_ms = w->now;
}

static void enqueue(SimWorld *w, long long idx)
{
    SimRunType *r = &w->rts[w->trace->tasks[idx].run_type];
    w->tasks[idx].state = SIM_TS_QUEUED;
    heap_push(w, &r->ready, idx);
    r->n_ready++;
}

void sim_recover_task(SimWorld *w, long long idx)
{
    SimTask *t = &w->tasks[idx];
    if (t->state != SIM_TS_RUNNING)
        return;
    SimPod *p = &w->pods[t->holder];
    stop_task_clock(w, p);
    p->task = -1;
    p->gen++; /* its task end, if any, is void */
    t->holder = -1;
    w->rts[w->trace->tasks[idx].run_type].n_running--;
    t->attempts++;
    if (t->attempts >= w->max_attempts)
        task_final(w, idx, SIM_TS_FAILED);
    else
        enqueue(w, idx);
}

long long sim_oldest_queued(SimWorld *w, size_t r)
{
    SimRunType *rt = &w->rts[r];
    while (rt->backoff.n > 0 && w->tasks[rt->backoff.v[0]].state != SIM_TS_BACKOFF)
        heap_pop(&rt->backoff); /* left backoff since: drop lazily */
    long long a = rt->ready.n ? rt->ready.v[0] : -1, b = rt->backoff.n ? rt->backoff.v[0] : -1;
    return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

/* Whether the worker's outcome applies to this attempt. */
static bool fault_applies(const SimWorld *w, long long idx)
{
    const SimTraceTask *k = &w->trace->tasks[idx];
    return k->outcome != SIM_OUTCOME_OK &&
           (k->fault_attempts == 0 || w->tasks[idx].attempts < k->fault_attempts);
}

/* Pod claims the oldest claimable task of its pool's run types (func_claim_next_task). */
static void claim(SimWorld *w, long long pod)
{
    SimPod *p = &w->pods[pod];
    long long best = -1;
    size_t best_r = 0;
    for (size_t r = 0; r < w->n_rts; r++)
        if (w->rts[r].pool == p->pool && w->rts[r].ready.n > 0 &&
            (best < 0 || w->rts[r].ready.v[0] < best)) {
            best = w->rts[r].ready.v[0];
            best_r = r;
        }
    if (best < 0)
        return;
    SimRunType *rt = &w->rts[best_r];
    heap_pop(&rt->ready);
    rt->n_ready--;
    rt->n_running++;
    SimTask *t = &w->tasks[best];
    t->state = SIM_TS_RUNNING;
    t->holder = pod;
    t->started_ms = w->now;
    if (t->first_claim_ms == SIM_NEVER) {
        t->first_claim_ms = w->now;
        t->cold = p->boot_ms > w->trace->tasks[best].arrival_ms;
    }
    p->task = best;
    p->activity_ms = w->now;
    const SimTraceTask *k = &w->trace->tasks[best];
    if (fault_applies(w, best) && k->outcome == SIM_OUTCOME_CRASH) {
        p->exited = true; /* the worker dies holding it; the orchestrator must notice */
        p->dead_ms = w->now;
        return;
    }
    double speed = w->gpus[p->gpu].p.speed;
    sim_schedule(w, w->now + llround((double)k->duration_ms * speed), SIM_EV_TASK_END, pod, p->gen);
}

static bool can_claim(const SimPod *p)
{
    return p->live && p->state == WORKER_ACTIVE && p->booted && !p->exited && p->task < 0;
}

/* Next claim poll of pod at or after now. */
static long long next_poll(const SimWorld *w, const SimPod *p)
{
    long long first = p->poll_anchor_ms + p->poll_first_ms;
    if (w->now <= first)
        return first;
    long long k = (w->now - first + w->worker_poll_ms - 1) / w->worker_poll_ms;
    return first + k * w->worker_poll_ms;
}

static void dispatch(SimWorld *w, int pool)
{
    bool work = false;
    for (size_t r = 0; r < w->n_rts && !work; r++)
        work = w->rts[r].pool == pool && w->rts[r].n_ready > 0;
    if (!work)
        return;
    for (size_t i = 0; i < w->n_live; i++) {
        SimPod *p = &w->pods[w->live[i]];
        if (p->pool != pool || !can_claim(p))
            continue;
        long long t = next_poll(w, p);
        if (p->poll_pending_ms < 0 || p->poll_pending_ms > t) {
            p->poll_pending_ms = t;
            sim_schedule(w, t, SIM_EV_POLL, w->live[i], p->gen);
        }
    }
}

void sim_dispatch_all(SimWorld *w)
{
    for (size_t p = 0; p < w->n_pools; p++)
        dispatch(w, (int)p);
}

static void task_end(SimWorld *w, long long pod)
{
    SimPod *p = &w->pods[pod];
    long long idx = p->task;
    if (idx < 0)
        return;
    SimTask *t = &w->tasks[idx];
    SimRunType *rt = &w->rts[w->trace->tasks[idx].run_type];
    stop_task_clock(w, p);
    p->task = -1;
    p->activity_ms = w->now;
    p->poll_anchor_ms = w->now;
    p->poll_first_ms = w->after_task_ms;
    p->poll_pending_ms = -1;
    t->holder = -1;
    rt->n_running--;
    if (fault_applies(w, idx)) { /* func_mark_task_failed */
        t->attempts++;
        if (t->attempts >= w->max_attempts) {
            task_final(w, idx, SIM_TS_FAILED);
        } else {
            t->state = SIM_TS_BACKOFF;
            rt->n_backoff++;
            heap_push(w, &rt->backoff, idx);
            double delay = fmin(3600.0, 10.0 * pow(2.0, t->attempts - 1)); /* retry delay */
            sim_schedule(w, w->now + llround(delay * 1000.0), SIM_EV_AVAILABLE, idx, 0);
        }
    } else {
        task_final(w, idx, SIM_TS_DONE);
        long long d = w->now - t->started_ms;
        rt->durs[rt->next_dur] = d;
        rt->next_dur = (rt->next_dur + 1) % SIM_DUR_SAMPLES;
        if (rt->n_durs < SIM_DUR_SAMPLES)
            rt->n_durs++;
        SimGpuState *g = &w->gpus[p->gpu];
        g->durs[g->next_dur] = d;
        g->next_dur = (g->next_dur + 1) % SIM_GPU_SAMPLES;
        if (g->n_durs < SIM_GPU_SAMPLES)
            g->n_durs++;
    }
    dispatch(w, p->pool);
}

static void boot(SimWorld *w, long long pod)
{
    SimPod *p = &w->pods[pod];
    if (p->will_crash) {
        p->exited = true; /* pod EXITED, no heartbeat ever */
        p->dead_ms = w->now;
        w->pools[p->pool].m.crashed_at_start++;
        return;
    }
    p->booted = true;
    p->poll_anchor_ms = w->now;
    p->poll_first_ms = 0;
    if (w->par->policy != SIM_POLICY_PLANNER) /* baselines: ready when booted */
        sim_promote(w, pod);
    dispatch(w, p->pool);
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
    enqueue(w, (long long)idx);
    if (r->pool < 0) { /* no pool serves it: it stays queued, never claimed */
        w->unserved++;
        w->finals++;
    } else {
        dispatch(w, r->pool);
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
                stopped_close(w, w->live[i--]);
        }
        sim_request_cycle(w, w->now + next);
        return;
    }
    case SIM_EV_BOOT:
        if (e->gen == w->pods[e->a].gen && w->pods[e->a].live)
            boot(w, e->a);
        return;
    case SIM_EV_POLL: {
        SimPod *p = &w->pods[e->a];
        if (e->gen != p->gen || p->poll_pending_ms != e->t)
            return;
        p->poll_pending_ms = -1;
        if (can_claim(p))
            claim(w, e->a);
        return;
    }
    case SIM_EV_TASK_END:
        if (e->gen == w->pods[e->a].gen && w->pods[e->a].live)
            task_end(w, e->a);
        return;
    case SIM_EV_AVAILABLE: {
        SimTask *t = &w->tasks[e->a];
        if (t->state != SIM_TS_BACKOFF)
            return;
        w->rts[w->trace->tasks[e->a].run_type].n_backoff--;
        enqueue(w, e->a);
        dispatch(w, w->rts[w->trace->tasks[e->a].run_type].pool);
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
            gpu_index(w, w->policy->pools[p].gpu_types[g]);
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
        int g = pp->n_gpu_types > 0 && choose_order(w, pp->gpu_types, pp->n_gpu_types, order) > 0
                    ? order[0]
                    : gpu_index(w, "");
        for (long long k = 0; k < n; k++) {
            long long idx = new_pod(w, (int)p, g, false);
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
