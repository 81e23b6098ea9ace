/* planner_scale.c -- steps 4 (scale down) and 6 (scale up) of the cycle, per worker pool; the
 * sharing of the fleet's ceilings between pools is in planner_fleet.c (issue 14;
 * structure_docs/pools.md).
 *
 * Pure: reads only the working view; no I/O, clock, environment, allocation or logging.
 *
 * Each pool sizes itself exactly as the single fleet did (SPEC 6 step 6), from its own queue
 * (the claimable tasks of its run types) and its own MIN/MAX/threshold/keep-idle, and is held to
 * its own MAX_ACTIVE_GPUS, circuit breaker and spend cap. The fleet-wide MAX_ACTIVE_GPUS and
 * MAX_HOURLY_SPEND_USD then bind all pools together: when they leave less room than the pools
 * want, the room goes first to every pool's MIN (pools in name order), then to the unmet demand
 * in proportion to each pool's share of it (largest remainder, ties by name). No pool can take
 * another below its MIN.
 */
#include "planner_ctx.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

long long planner_count_state(const Ctx *c, WorkerState st, int pool)
{
    long long n = 0;
    for (size_t i = 0; i < c->snap->n_workers; i++)
        if (c->view[i].state == st && !c->view[i].terminated_in_plan &&
            (pool == PLANNER_ALL_POOLS || c->view[i].pool == pool))
            n++;
    return n;
}

long long planner_count_busy(const Ctx *c, int pool)
{
    long long n = 0;
    for (size_t i = 0; i < c->snap->n_workers; i++)
        if (c->view[i].state == WORKER_ACTIVE && c->view[i].tasks_held > 0 &&
            (pool == PLANNER_ALL_POOLS || c->view[i].pool == pool))
            n++;
    return n;
}

static long long ceil_div(long long a, long long b)
{
    return b > 0 ? (a + b - 1) / b : a;
}

static const PolicyPool *policy_pool(const Ctx *c, int p)
{
    return p >= 0 ? &c->policy->pools[p] : &c->retired;
}

bool planner_serves(const PolicyPool *pp, const char *run_type)
{
    for (size_t r = 0; r < pp->n_run_types; r++)
        if (strcmp(pp->run_types[r], run_type) == 0)
            return true;
    return false;
}

/* Pool p's queue: the claimable tasks of its run types plus what this plan re-queues. */
static long long pool_queued(const Ctx *c, int p)
{
    if (p < 0)
        return 0; /* a retired pool serves nothing */
    long long n = c->requeued[p];
    const PolicyPool *pp = policy_pool(c, p);
    for (size_t k = 0; k < c->snap->n_run_types; k++)
        if (planner_serves(pp, c->snap->run_types[k].name))
            n += c->snap->run_types[k].claimable;
    return n;
}

/* desired = min(MAX, max(MIN, busy + ceil(queued / T), busy + KEEP_IDLE)) of pool p, which term
 * set it, and (wanted, may be NULL) the value before the MAX cap. The adaptive policies
 * (planner_adaptive.c) may add a predicted backlog to the queue and withhold KEEP_IDLE while the
 * pool is cold. Only whole expected tasks count: an expectation of 0.1 task is no reason to keep
 * a GPU (rounded up, it would keep one idle worker forever on a trickle of arrivals); and the
 * prediction is bounded by what the pool could ever run (MAX x T) before any cast. */
static long long desired_workers(Ctx *c, int p, long long busy, long long queued, Reason *why,
                                 long long *wanted)
{
    const PolicyPool *pp = policy_pool(c, p);
    long long by_tasks = busy + ceil_div(queued, pp->tasks_per_gpu);
    long long by_idle = busy + planner_keep_idle(c, p);
    double predicted = planner_predicted_backlog(c, p, busy);
    double per_gpu = pp->tasks_per_gpu > 0 ? (double)pp->tasks_per_gpu : 1.0;
    double bound = (double)(pp->max_active > 0 ? pp->max_active : 0) * per_gpu;
    if (!(predicted <= bound)) /* NaN too */
        predicted = bound;
    /* 1e-9: a prediction of exactly n tasks (a rate times a boot time) is n, not n - 1 */
    long long whole = (long long)floor(predicted + 1e-9);
    long long by_prediction = busy + ceil_div(queued + whole, pp->tasks_per_gpu);
    long long d = pp->min_active;
    *why = REASON_MIN_FLOOR;
    if (by_tasks > d) {
        d = by_tasks;
        *why = REASON_BACKLOG;
    }
    if (whole > 0 && by_prediction > d) {
        d = by_prediction;
        *why = REASON_PREDICTED_BACKLOG;
    }
    if (by_idle > d) {
        d = by_idle;
        *why = REASON_KEEP_IDLE;
    }
    if (wanted)
        *wanted = d;
    if (d > pp->max_active)
        d = pp->max_active;
    return d;
}

/* Idle time of an active worker: from its last task activity, else its promotion, else its
 * creation -- never from its heartbeat (python-original incident 9). */
static long long idle_age(const SnapWorker *w)
{
    if (w->activity_age_sec >= 0)
        return w->activity_age_sec;
    if (w->promoted_age_sec >= 0)
        return w->promoted_age_sec;
    return w->age_sec;
}

/* Whether worker i of pool p may be drained for idleness at all (idle, not just promoted). */
static bool drainable(const Ctx *c, int p, size_t i)
{
    const SnapWorker *w = &c->snap->workers[i];
    if (c->view[i].pool != p || c->view[i].state != WORKER_ACTIVE || c->view[i].tasks_held > 0 ||
        c->view[i].promoted_in_plan || w->id_too_long)
        return false;
    long long since_promotion = w->promoted_age_sec >= 0 ? w->promoted_age_sec : w->age_sec;
    return since_promotion > policy_pool(c, p)->grace_period_sec;
}

/* A predicted backlog must never keep a worker idle past GPU_IDLE_TIMEOUT_SEC: a worker idle
 * that long shows the predicted tasks are not arriving (or others take them), so while one
 * exists the pool is sized without the prediction, in both steps 4 and 6 of this plan. */
static void refute_prediction(Ctx *c, int p)
{
    if (p < 0 || !c->policy->predictive_scale_up)
        return;
    for (size_t i = 0; i < c->snap->n_workers; i++)
        if (drainable(c, p, i) &&
            idle_age(&c->snap->workers[i]) > policy_pool(c, p)->idle_timeout_sec)
            c->prediction_refuted[p] = true;
}

/* Step 4 for pool p: drain idle workers above its desired size, newest first. */
static void scale_down_pool(Ctx *c, int p)
{
    const Snapshot *snap = c->snap;
    Reason why;
    refute_prediction(c, p);
    long long busy = planner_count_busy(c, p);
    long long desired = desired_workers(c, p, busy, pool_queued(c, p), &why, NULL);
    long long excess = planner_count_state(c, WORKER_ACTIVE, p) +
                       planner_count_state(c, WORKER_SPAWNING, p) - desired;
    while (excess > 0) {
        long long pick = -1;
        long long idle_limit =
            planner_idle_grace(c, p, planner_count_state(c, WORKER_ACTIVE, p) - busy);
        for (size_t i = 0; i < snap->n_workers; i++) {
            const SnapWorker *w = &snap->workers[i];
            if (!drainable(c, p, i) || idle_age(w) <= idle_limit)
                continue;
            if (pick < 0 || w->age_sec < snap->workers[pick].age_sec)
                pick = (long long)i; /* newest first: warmed-up workers are kept */
        }
        if (pick < 0)
            break;
        const SnapWorker *w = &snap->workers[pick];
        Action *a = planner_add_action(c, ACTION_DRAIN_WORKER, REASON_IDLE, w);
        if (!a)
            break;
        snprintf(a->detail, sizeof a->detail, "idle %llds", idle_age(w));
        c->view[pick].state = WORKER_TERMINATING;
        c->view[pick].drained_idle = true; /* its pod may be kept stopped (planner_warm.c) */
        excess--;
    }
}

void planner_step_scale_down(Ctx *c)
{
    scale_down_pool(c, POOL_RETIRED);
    for (size_t p = 0; p < c->policy->n_pools && p < PLAN_POOLS_MAX; p++)
        scale_down_pool(c, (int)p);
}

/* ------------------------------------------------------------------------------------------ */
/* Step 6                                                                                      */

/* The highest price per hour known for any GPU type (live pods and gpu_prices); 0 unknown. */
double planner_price_ceiling(const Snapshot *snap)
{
    double top = snap->max_known_pod_cost > 0 ? snap->max_known_pod_cost : 0;
    for (size_t k = 0; k < snap->n_prices; k++)
        if (snap->prices[k].usd_per_hr > top)
            top = snap->prices[k].usd_per_hr;
    return top;
}

/* Cost per hour of the live workers of pool p (or every pool), pods without a known price
 * estimated at the highest price known, stopped pods at their disk's price; per pod the larger
 * of that estimate and what RunPod billed for it (issue 16), and for the whole fleet also what
 * was billed for pods no worker row records. *estimate (may be NULL) gets the estimates alone. */
double planner_fleet_cost_of(const Ctx *c, int pool, double *estimate)
{
    double cost = 0, est_sum = 0, unknown = planner_price_ceiling(c->snap);
    for (size_t i = 0; i < c->snap->n_workers; i++) {
        if (c->view[i].terminated_in_plan || c->view[i].state == WORKER_TERMINATED)
            continue;
        if (pool != PLANNER_ALL_POOLS && c->view[i].pool != pool)
            continue;
        double est;
        cost += planner_worker_cost(c, i, unknown, &est);
        est_sum += est;
    }
    if (pool == PLANNER_ALL_POOLS && c->snap->billing_known &&
        c->snap->billing_unexplained_usd_per_hr > 0)
        cost += c->snap->billing_unexplained_usd_per_hr;
    if (estimate)
        *estimate = est_sum;
    return cost;
}

static double fleet_cost(const Ctx *c, int pool)
{
    return planner_fleet_cost_of(c, pool, NULL);
}

/* Whether a live worker of pool p (or any pool) has no known price yet (a stopped one is priced
 * by its disk). */
bool planner_unpriced_live(const Ctx *c, int pool)
{
    for (size_t i = 0; i < c->snap->n_workers; i++)
        if (!c->view[i].terminated_in_plan && c->view[i].state != WORKER_TERMINATED &&
            c->view[i].state != WORKER_STOPPED &&
            (pool == PLANNER_ALL_POOLS || c->view[i].pool == pool) &&
            !(c->snap->workers[i].cost_per_hr > 0))
            return true;
    return false;
}

/* The most a new pod of a pool may cost per hour: the highest known price among its usable GPU
 * types in the pool's cloud, since a create may fall back to any of them; -1 when one of them
 * has no known price there. */
static double price_bound(const Snapshot *snap, const PolicyPool *pol, const PlanPool *pp)
{
    double bound = 0;
    for (size_t g = 0; g < pp->n_gpu_types; g++) {
        double price = -1;
        for (size_t k = 0; k < snap->n_prices; k++)
            if (strcmp(snap->prices[k].gpu_type, pp->gpu_types[g]) == 0 &&
                strcmp(snap->prices[k].cloud_type, pol->cloud_type) == 0)
                price = snap->prices[k].usd_per_hr;
        if (!(price > 0))
            return -1;
        if (price > bound)
            bound = price;
    }
    return bound;
}

/* How many more pods a spend cap allows (cap 0 = off: unlimited), each costing at most bound.
 * With a price unknown (bound < 0), one pod at a time is created to learn it -- and only when
 * the cap leaves room for the dearest price known of any type (ceiling; any room when no price
 * is known at all) -- and none while a live pod's price is still unknown (creates whose answers
 * never came back). */
static long long spend_allowance(double cap, double cost, double bound, bool unpriced,
                                 double ceiling)
{
    if (cap <= 0)
        return 1LL << 40;
    long long allowed;
    if (bound > 0)
        allowed = (long long)floor((cap - cost) / bound + 1e-9);
    else
        allowed = !unpriced && cost < cap && cap - cost >= ceiling - 1e-9 ? 1 : 0;
    return allowed > 0 ? allowed : 0;
}

/* Whether a pod at `price` fits in `budget` dollars per hour; a pod of unknown price (0: no
 * price known at all) only while the fleet is strictly under the cap. */
bool planner_affordable(double budget, double price)
{
    return price > 0 ? budget >= price - 1e-9 : budget > 1e-9;
}

/* The price of pool p's next slot; the slot is taken. */
double planner_next_slot_price(const Ctx *c, Slots *s)
{
    if (s->at != -2) {
        long long i = planner_warm_next_start(c, s->pool, s->at);
        s->at = i >= 0 ? i : -2;
        if (i >= 0) {
            double own = planner_warm_start_price(c, (size_t)i);
            if (!(own > 0))
                own = s->unknown;
            return own > s->base ? own : s->base;
        }
    }
    return s->base;
}

/* How many of pool p's next `limit` slots fit in a budget (dollars per hour), each at its own
 * price (next_slot_price; the starts first, then creates at `base`). */
static long long slots_within(const Ctx *c, int p, double budget, double base, long long limit)
{
    Slots s = {.pool = p, .base = base, .unknown = planner_price_ceiling(c->snap), .at = -1};
    long long n = 0;
    while (n < limit && s.at != -2) {
        double price = planner_next_slot_price(c, &s);
        if (!planner_affordable(budget, price))
            return n;
        budget -= price;
        n++;
    }
    if (n < limit && base > 0) { /* the rest are creates at base */
        long long more = (long long)floor(budget / base + 1e-9);
        n += more < limit - n ? (more > 0 ? more : 0) : limit - n;
    } else if (n < limit && planner_affordable(budget, base)) {
        n = limit; /* at most one pod of unknown price: spend_allowance's rule */
    }
    return n;
}

/* Pool p's circuit breaker: its endings in the window, with the failures this plan records. */
static void breaker(const Ctx *c, int p, PlanPool *out)
{
    const Snapshot *snap = c->snap;
    const Policy *pol = c->policy;
    long long ended = c->new_unexpected[p], unexpected = c->new_unexpected[p];
    for (size_t k = 0; k < snap->n_pool_endings; k++)
        if (strcmp(snap->pool_endings[k].pool, out->name) == 0) {
            ended += snap->pool_endings[k].ended;
            unexpected += snap->pool_endings[k].unexpected;
        }
    out->failure_rate = ended > 0 ? (double)unexpected / (double)ended : 0.0;
    out->breaker_open =
        ended >= pol->min_workers_for_rate && out->failure_rate > pol->max_failure_rate;
}

/* Pool p's GPU types to try, in the order RUNPOD_GPU_CHOICE gives them (gpu_choice.h): types
 * in capacity backoff, and with a fresh catalog types out of stock, removed. */
static void usable_gpu_types(const Ctx *c, const PolicyPool *pp, PlanPool *out)
{
    const Policy *pol = c->policy;
    GpuChoiceInput in = {.policy = pol->gpu_choice,
                         .catalog_ttl_sec = pol->catalog_ttl_sec,
                         .min_samples = pol->value_min_samples,
                         .scope = pp->catalog_scope,
                         .pool = pp->name,
                         .n_types = pp->n_gpu_types < PLAN_GPU_TYPES_MAX ? pp->n_gpu_types
                                                                         : PLAN_GPU_TYPES_MAX,
                         .types = pp->gpu_types};
    gpu_choice_decide(&in, c->snap, &out->choice);
    out->n_gpu_types = 0;
    for (size_t g = 0; g < out->choice.n_usable; g++)
        memcpy(out->gpu_types[out->n_gpu_types++], out->choice.c[g].gpu_type, SNAP_NAME_MAX);
}

/* Pool p's counts, desired size and own spawn limit; *cap is what it would spawn within its own
 * limits, *min_deficit how far it is below its MIN. */
void planner_size_pool(Ctx *c, int p, long long *cap, long long *min_deficit, Reason *why)
{
    const PolicyPool *pp = policy_pool(c, p);
    const Snapshot *snap = c->snap;
    PlanPool *out = &c->plan->pools[p];
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", pp->name);
    out->active = planner_count_state(c, WORKER_ACTIVE, p);
    out->spawning = planner_count_state(c, WORKER_SPAWNING, p);
    out->terminating = planner_count_state(c, WORKER_TERMINATING, p);
    out->stopped = planner_count_state(c, WORKER_STOPPED, p);
    out->busy = planner_count_busy(c, p);
    out->idle = out->active - out->busy;
    out->queued = pool_queued(c, p);
    out->oldest_queued_age_sec = -1;
    for (size_t k = 0; k < snap->n_run_types; k++)
        if (planner_serves(pp, snap->run_types[k].name)) {
            out->queued_total += snap->run_types[k].queued;
            if (snap->run_types[k].oldest_queued_age_sec > out->oldest_queued_age_sec)
                out->oldest_queued_age_sec = snap->run_types[k].oldest_queued_age_sec;
        }
    for (size_t i = 0; i < snap->n_workers; i++)
        if (c->view[i].pool == p && !c->view[i].terminated_in_plan)
            out->running += c->view[i].tasks_held;
    out->min_active = pp->min_active;
    out->max_active = pp->max_active;
    out->desired = desired_workers(c, p, out->busy, out->queued, why, &out->wanted);
    out->desired_by = *why;
    planner_adaptive_report(c, p, out);
    out->cost_per_hr = fleet_cost(c, p);
    breaker(c, p, out);
    usable_gpu_types(c, pp, out);

    long long have = out->active + out->spawning;
    long long n = c->want_override[p] >= 0 ? c->want_override[p] : out->desired - have;
    if (n < 0)
        n = 0;
    long long room = pp->max_active - (have + out->terminating);
    out->price_bound = price_bound(snap, pp, out);
    long long spend = spend_allowance(pp->max_hourly_spend, out->cost_per_hr, out->price_bound,
                                      planner_unpriced_live(c, p), planner_price_ceiling(snap));
    if (pp->max_hourly_spend > 0 && spend > 0) /* a stopped pod to start may cost more */
        spend = slots_within(c, p, pp->max_hourly_spend - out->cost_per_hr,
                             out->price_bound > 0 ? out->price_bound : planner_price_ceiling(snap),
                             spend);
    out->spend_room = pp->max_hourly_spend > 0 ? spend : -1;
    /* Every limit that would stop the pool from growing to what its demand wants (`explain`
     * lists them all); the cuts below apply them in order. */
    long long need = c->want_override[p] >= 0 ? n : out->wanted - have;
    if (need > 0 && room < need)
        out->limits |= 1u << SPAWN_LIMIT_MAX_ACTIVE;
    if (need > 0 && out->breaker_open)
        out->limits |= 1u << SPAWN_LIMIT_BREAKER;
    if (need > 0 && spend < need)
        out->limits |= 1u << SPAWN_LIMIT_SPEND_CAP;
    if (need > 0 && out->n_gpu_types == 0)
        out->limits |= 1u << (out->choice.n_out_of_stock > 0 ? SPAWN_LIMIT_OUT_OF_STOCK
                                                             : SPAWN_LIMIT_GPU_BACKOFF);
    if (n > 0 && room < n) {
        n = room > 0 ? room : 0;
        out->spawn_limit = SPAWN_LIMIT_MAX_ACTIVE;
    }
    if (n > 0 && out->breaker_open) {
        n = 0;
        out->spawn_limit = SPAWN_LIMIT_BREAKER;
    }
    if (n > 0 && spend < n) {
        n = spend;
        out->spawn_limit = SPAWN_LIMIT_SPEND_CAP;
    }
    if (n > 0 && out->n_gpu_types == 0) {
        n = 0;
        out->spawn_limit =
            out->choice.n_out_of_stock > 0 ? SPAWN_LIMIT_OUT_OF_STOCK : SPAWN_LIMIT_GPU_BACKOFF;
    }
    out->own_cap = n;
    *cap = n;
    *min_deficit = pp->min_active - have > 0 ? pp->min_active - have : 0;
    if (*min_deficit > n)
        *min_deficit = n;
}
