/* sim_policy.c -- the baselines of the policy lab: the scaling rules of the replaced system,
 * KEDA and RunPod serverless, run as idealised controllers on the same simulated RunPod and
 * workers (structure_docs/simulation.md).
 *
 * Pure. Idealised means: a booted worker is ready at once (no promotion step), a dead worker is
 * noticed at the next decision (its task re-queued, an attempt counted), and scale-down only
 * ever terminates idle workers. Each rule keeps the pool's MIN_ACTIVE_GPUS and MAX_ACTIVE_GPUS
 * (and the fleet's MAX_ACTIVE_GPUS) so that only the scaling rule differs from the planner's.
 *   legacy: every ORCHESTRATOR_POLL_SEC, add workers while queued / (active + starting) > 3, up
 *           to ceil(queued / 3); drop workers idle for 300 s (python-original.md).
 *   keda:   every 30 s (pollingInterval), desired = ceil((queued + running) / target) with
 *           target TASKS_PER_GPU_THRESHOLD; scale down only to the highest desired of the last
 *           300 s (cooldown / HPA stabilisation window); starting pods are removed first.
 *   runpod: every second, add a worker per claimable task that has waited more than 4 s beyond
 *           the workers starting or idle; drop workers idle for 5 s (queue-delay scaling, idle
 *           timeout).
 */
#include "sim_world.h"

#include <stddef.h>

typedef struct {
    long long active, starting, busy, queued, waiting_4s;
} PoolCounts;

static long long idle_since(const SimPod *p)
{
    return p->activity_ms != SIM_NEVER ? p->activity_ms : p->promoted_ms;
}

static PoolCounts counts(SimWorld *w, int pool)
{
    PoolCounts c = {0, 0, 0, 0, 0};
    for (size_t i = 0; i < w->n_live; i++) {
        const SimPod *p = &w->pods[w->live[i]];
        if (!p->live || p->pool != pool)
            continue;
        if (p->state == WORKER_SPAWNING)
            c.starting++;
        else if (p->state == WORKER_ACTIVE) {
            c.active++;
            c.busy += p->task >= 0;
        }
    }
    for (size_t r = 0; r < w->n_rts; r++) {
        const SimRunType *rt = &w->rts[r];
        if (rt->pool != pool)
            continue;
        c.queued += rt->n_ready;
        for (size_t k = 0; k < rt->ready.n; k++)
            c.waiting_4s += w->trace->tasks[rt->ready.v[k]].arrival_ms < w->now - 4000;
    }
    return c;
}

/* Spawns up to n workers of pool within its MAX and the fleet's. */
static void add(SimWorld *w, int pool, long long have, long long n)
{
    const PolicyPool *pp = &w->policy->pools[pool];
    if (n > pp->max_active - have)
        n = pp->max_active - have;
    if (n > w->policy->max_active - w->live_total)
        n = w->policy->max_active - w->live_total;
    for (long long k = 0; k < n; k++)
        sim_spawn(w, pool, pp->gpu_types, pp->n_gpu_types);
}

/* Terminates up to n workers of pool: starting ones first (kind: keda only), then idle ones
 * idle longer than idle_ms, newest first, never below the pool's MIN. */
static void drop(SimWorld *w, int pool, long long have, long long n, long long idle_ms,
                 bool starting_first)
{
    long long floor = w->policy->pools[pool].min_active;
    while (n > 0 && have > floor) {
        long long pick = -1;
        for (size_t i = 0; i < w->n_live; i++) {
            long long k = w->live[i];
            const SimPod *p = &w->pods[k];
            if (!p->live || p->pool != pool)
                continue;
            bool starting = starting_first && p->state == WORKER_SPAWNING;
            bool idle =
                p->state == WORKER_ACTIVE && p->task < 0 && w->now - idle_since(p) > idle_ms;
            if (!starting && !idle)
                continue;
            if (pick < 0) {
                pick = k;
                continue;
            }
            const SimPod *q = &w->pods[pick];
            bool q_starting = starting_first && q->state == WORKER_SPAWNING;
            if ((starting && !q_starting) ||
                (starting == q_starting && p->created_ms >= q->created_ms))
                pick = k;
        }
        if (pick < 0)
            return;
        sim_end_service(w, pick, false);
        sim_terminate(w, pick, true);
        have--;
        n--;
    }
}

static void keda(SimWorld *w, int pool, const PoolCounts *c)
{
    const PolicyPool *pp = &w->policy->pools[pool];
    SimPoolState *ps = &w->pools[pool];
    long long t = pp->tasks_per_gpu > 0 ? pp->tasks_per_gpu : 1;
    long long desired = (c->queued + c->busy + t - 1) / t;
    desired = desired < pp->min_active ? pp->min_active : desired;
    desired = desired > pp->max_active ? pp->max_active : desired;
    ps->keda_t[ps->keda_next] = w->now;
    ps->keda_d[ps->keda_next] = desired;
    ps->keda_next = (ps->keda_next + 1) % SIM_KEDA_HISTORY;
    if (ps->keda_n < SIM_KEDA_HISTORY)
        ps->keda_n++;
    long long stable = desired; /* the highest desired within the cooldown */
    for (size_t k = 0; k < ps->keda_n; k++)
        if (ps->keda_t[k] > w->now - 300000 && ps->keda_d[k] > stable)
            stable = ps->keda_d[k];
    long long have = c->active + c->starting;
    if (desired > have)
        add(w, pool, have, desired - have);
    else if (stable < have)
        drop(w, pool, have, have - stable, 0, true);
}

void sim_cycle_baseline(SimWorld *w)
{
    /* Dead workers (crashed at start, or on a task): gone, their task back in the queue. */
    for (size_t i = 0; i < w->n_live; i++) {
        long long k = w->live[i];
        SimPod *p = &w->pods[k];
        if (!p->live || !p->exited)
            continue;
        sim_end_service(w, k, true);
        sim_terminate(w, k, false); /* recovers its task, counting the attempt */
        i--;
    }
    for (size_t pool = 0; pool < w->n_pools; pool++) {
        const PolicyPool *pp = &w->policy->pools[pool];
        PoolCounts c = counts(w, (int)pool);
        long long have = c.active + c.starting;
        switch (w->par->policy) {
        case SIM_POLICY_LEGACY:
            if (have < pp->min_active)
                add(w, (int)pool, have, pp->min_active - have);
            else if (c.queued > 3 * have)
                add(w, (int)pool, have, (c.queued + 2) / 3 - have);
            else
                drop(w, (int)pool, have, have, 300000, false);
            break;
        case SIM_POLICY_KEDA:
            keda(w, (int)pool, &c);
            break;
        case SIM_POLICY_RUNPOD:
            if (have < pp->min_active)
                add(w, (int)pool, have, pp->min_active - have);
            else if (c.waiting_4s > c.starting + (c.active - c.busy))
                add(w, (int)pool, have, c.waiting_4s - c.starting - (c.active - c.busy));
            else
                drop(w, (int)pool, have, have, 5000, false);
            break;
        case SIM_POLICY_PLANNER:
            break;
        }
    }
    sim_dispatch_all(w);
}
