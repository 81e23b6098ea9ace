/* sim_fleet.c -- the simulated fleet: pods (each a worker row and its pod), the simulated
 * RunPod (creates, GPU choice, capacity answers, stops and restarts, billing) and the workers
 * (boot, claim polls, running, completing, failing or dying on a task). See sim_model.h; the
 * event loop is sim_model.c.
 *
 * Pure: no I/O, clock, environment or unseeded randomness; every draw is from the world's
 * SimRng, in event order.
 */
#include "sim_world.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worker_name.h"

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
    if (!sim_grow((void **)&w->live, &w->cap_live, w->n_live + 1, sizeof *w->live)) {
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
long long sim_new_pod(SimWorld *w, int pool, int gpu, bool restart)
{
    if (!sim_grow((void **)&w->pods, &w->cap_pods, w->n_pods + 1, sizeof *w->pods)) {
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
void sim_stopped_close(SimWorld *w, long long pod)
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
        sim_stopped_close(w, pod);
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
    if (!sim_grow((void **)&w->endings, &w->cap_end, w->n_end + 1, sizeof *w->endings)) {
        w->st = STATUS_ERR_NOMEM;
        return;
    }
    w->endings[w->n_end++] = (SimEnding){w->now, p->pool, unexpected};
}

/* ------------------------------------------------------------------------------------------ */
/* The simulated RunPod: creates and GPU choice                                                */

int sim_gpu_index(SimWorld *w, const char *name)
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
size_t sim_choose_order(SimWorld *w, const char (*types)[SNAP_NAME_MAX], size_t n, int *out)
{
    double key[PLAN_GPU_TYPES_MAX];
    long long pooled[SIM_GPU_SAMPLES * 2] = {0};
    size_t n_pooled = 0;
    if (n > PLAN_GPU_TYPES_MAX)
        n = PLAN_GPU_TYPES_MAX;
    for (size_t i = 0; i < n; i++) {
        out[i] = sim_gpu_index(w, types[i]);
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
        sim_stopped_close(w, stopped);
        if (!fails) {
            w->pools[pool].m.restarts++;
            return sim_new_pod(w, pool, g, true);
        }
        /* no free GPU on its host: it is terminated, and a fresh create follows */
    }
    int order[PLAN_GPU_TYPES_MAX];
    size_t n = sim_choose_order(w, types, n_types, order);
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
        return sim_new_pod(w, pool, order[i], false);
    }
    /* Nothing created: the row ends (expected: RunPod had no capacity). */
    if (sim_grow((void **)&w->endings, &w->cap_end, w->n_end + 1, sizeof *w->endings))
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

void sim_enqueue(SimWorld *w, long long idx)
{
    SimRunType *r = &w->rts[w->trace->tasks[idx].run_type];
    w->tasks[idx].state = SIM_TS_QUEUED;
    sim_heap_push(w, &r->ready, idx);
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
        sim_enqueue(w, idx);
}

long long sim_oldest_queued(SimWorld *w, size_t r)
{
    SimRunType *rt = &w->rts[r];
    while (rt->backoff.n > 0 && w->tasks[rt->backoff.v[0]].state != SIM_TS_BACKOFF)
        sim_heap_pop(&rt->backoff); /* left backoff since: drop lazily */
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
void sim_claim(SimWorld *w, long long pod)
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
    sim_heap_pop(&rt->ready);
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

bool sim_can_claim(const SimPod *p)
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

void sim_dispatch(SimWorld *w, int pool)
{
    bool work = false;
    for (size_t r = 0; r < w->n_rts && !work; r++)
        work = w->rts[r].pool == pool && w->rts[r].n_ready > 0;
    if (!work)
        return;
    for (size_t i = 0; i < w->n_live; i++) {
        SimPod *p = &w->pods[w->live[i]];
        if (p->pool != pool || !sim_can_claim(p))
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
        sim_dispatch(w, (int)p);
}

void sim_task_end(SimWorld *w, long long pod)
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
            sim_heap_push(w, &rt->backoff, idx);
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
    sim_dispatch(w, p->pool);
}

void sim_boot(SimWorld *w, long long pod)
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
    sim_dispatch(w, p->pool);
}
