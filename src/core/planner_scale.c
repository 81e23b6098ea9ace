/* planner_scale.c -- steps 4 (scale down) and 6 (scale up) of the cycle, per worker pool, and
 * the sharing of the fleet's ceilings between pools (issue 14; structure_docs/pools.md).
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

static bool serves(const PolicyPool *pp, const char *run_type)
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
        if (serves(pp, c->snap->run_types[k].name))
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
static double price_ceiling(const Snapshot *snap)
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
static double fleet_cost_of(const Ctx *c, int pool, double *estimate)
{
    double cost = 0, est_sum = 0, unknown = price_ceiling(c->snap);
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
    return fleet_cost_of(c, pool, NULL);
}

/* Whether a live worker of pool p (or any pool) has no known price yet (a stopped one is priced
 * by its disk). */
static bool unpriced_live(const Ctx *c, int pool)
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
static bool affordable(double budget, double price)
{
    return price > 0 ? budget >= price - 1e-9 : budget > 1e-9;
}

/* Pool p's scale-up slots in the order they are filled: its stopped pods to start first
 * (planner_warm_next_start), then creates. Each slot is charged for the spend cap at `base`
 * (the pool's price bound) or, for a start, at that pod's known price when larger: a stopped
 * pod may be dearer than every type the bound covers (its price recorded when it was created,
 * or raised since). */
typedef struct {
    int pool;
    double base;
    double unknown; /* a start of no known price (no price recorded, no type): the dearest */
    long long at;   /* the last stopped worker handed out; -1 none yet; -2 none left */
} Slots;

/* The price of pool p's next slot; the slot is taken. */
static double next_slot_price(const Ctx *c, Slots *s)
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
    Slots s = {.pool = p, .base = base, .unknown = price_ceiling(c->snap), .at = -1};
    long long n = 0;
    while (n < limit && s.at != -2) {
        double price = next_slot_price(c, &s);
        if (!affordable(budget, price))
            return n;
        budget -= price;
        n++;
    }
    if (n < limit && base > 0) { /* the rest are creates at base */
        long long more = (long long)floor(budget / base + 1e-9);
        n += more < limit - n ? (more > 0 ? more : 0) : limit - n;
    } else if (n < limit && affordable(budget, base)) {
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
static void size_pool(Ctx *c, int p, long long *cap, long long *min_deficit, Reason *why)
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
        if (serves(pp, snap->run_types[k].name)) {
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
                                      unpriced_live(c, p), price_ceiling(snap));
    if (pp->max_hourly_spend > 0 && spend > 0) /* a stopped pod to start may cost more */
        spend = slots_within(c, p, pp->max_hourly_spend - out->cost_per_hr,
                             out->price_bound > 0 ? out->price_bound : price_ceiling(snap), spend);
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

/* Shares `room` between n pools wanting cap[p] each: every pool's MIN deficit first (pools in
 * name order); then one slot to each pool that has demand and no worker at all (first[0..nf),
 * longest-waiting queue first), so a small queue beside a large one is never rounded away cycle
 * after cycle; then the rest of the demand in proportion (largest remainder; ties by name).
 * give[p] <= cap[p]; sum(give) <= room. */
static void share(long long room, size_t n, const long long *cap, const long long *min_deficit,
                  const size_t *by_name, const size_t *first, size_t nf, long long *give)
{
    for (size_t p = 0; p < n; p++)
        give[p] = 0;
    for (size_t k = 0; k < n && room > 0; k++) {
        size_t p = by_name[k];
        long long g = min_deficit[p] < room ? min_deficit[p] : room;
        give[p] = g;
        room -= g;
    }
    for (size_t k = 0; k < nf && room > 0; k++)
        if (give[first[k]] == 0 && cap[first[k]] > 0) {
            give[first[k]] = 1;
            room--;
        }
    long long rest[PLAN_POOLS_MAX], total = 0;
    for (size_t p = 0; p < n; p++) {
        rest[p] = cap[p] - give[p];
        total += rest[p];
    }
    if (total <= room) {
        for (size_t p = 0; p < n; p++)
            give[p] += rest[p];
        return;
    }
    long long remainder[PLAN_POOLS_MAX], handed = 0;
    for (size_t p = 0; p < n; p++) {
        long long q = room * rest[p] / total;
        remainder[p] = room * rest[p] % total;
        give[p] += q;
        rest[p] -= q;
        handed += q;
    }
    for (long long left = room - handed; left > 0; left--) {
        long long best = -1;
        for (size_t k = 0; k < n; k++) { /* in name order: ties go to the first name */
            size_t p = by_name[k];
            if (rest[p] > 0 && (best < 0 || remainder[p] > remainder[best]))
                best = (long long)p;
        }
        if (best < 0)
            break;
        give[best]++;
        rest[best]--;
        remainder[best] = -1;
    }
}

/* Pool indexes sorted by pool name (insertion sort: at most PLAN_POOLS_MAX). */
static void order_by_name(const Policy *pol, size_t n, size_t *out)
{
    for (size_t p = 0; p < n; p++) {
        size_t k = p;
        while (k > 0 && strcmp(pol->pools[out[k - 1]].name, pol->pools[p].name) > 0) {
            out[k] = out[k - 1];
            k--;
        }
        out[k] = p;
    }
}

/* Queued tasks of run types no pool serves: counted and named, never silently ignored. */
static void unserved(Ctx *c)
{
    const Snapshot *snap = c->snap;
    Plan *plan = c->plan;
    for (size_t k = 0; k < snap->n_run_types; k++) {
        bool served = false;
        for (size_t p = 0; p < c->policy->n_pools && p < PLAN_POOLS_MAX && !served; p++)
            served = serves(&c->policy->pools[p], snap->run_types[k].name);
        if (served)
            continue;
        plan->unserved_queued += snap->run_types[k].queued;
        if (plan->n_unserved < PLAN_UNSERVED_MAX)
            memcpy(plan->unserved[plan->n_unserved], snap->run_types[k].name, SNAP_NAME_MAX);
        plan->n_unserved++;
    }
    plan->unserved_queued += snap->unserved_other_queued;
    plan->n_unserved += (size_t)snap->unserved_other_types;
}

/* The plan's totals, over every pool (and the workers of retired pools). */
static void totals(Ctx *c)
{
    const Snapshot *snap = c->snap;
    Plan *p = c->plan;
    p->active = planner_count_state(c, WORKER_ACTIVE, PLANNER_ALL_POOLS);
    p->spawning = planner_count_state(c, WORKER_SPAWNING, PLANNER_ALL_POOLS);
    p->terminating = planner_count_state(c, WORKER_TERMINATING, PLANNER_ALL_POOLS);
    p->stopped = planner_count_state(c, WORKER_STOPPED, PLANNER_ALL_POOLS);
    p->busy = planner_count_busy(c, PLANNER_ALL_POOLS);
    p->idle = p->active - p->busy;
    p->running = snap->in_progress_total;
    p->queued = 0;
    p->desired = 0;
    /* The fleet's breaker is open when no pool may spawn for it: every pool's own breaker (one
     * pool: exactly its breaker), or the fleet-wide one (fleet_breaker). One pool's open breaker
     * shows in its own entry while the others keep spawning. */
    p->breaker_open = p->n_pools > 0;
    for (size_t k = 0; k < p->n_pools; k++) {
        p->queued += p->pools[k].queued;
        p->desired += p->pools[k].desired;
        p->breaker_open = p->breaker_open && p->pools[k].breaker_open;
    }
    /* The fleet's failure rate (every pool, retired ones included). */
    long long ended = snap->ended_in_window, unexpected = snap->unexpected_in_window;
    for (size_t k = 0; k <= PLAN_POOLS_MAX; k++) {
        ended += c->new_unexpected[k];
        unexpected += c->new_unexpected[k];
    }
    p->failure_rate = ended > 0 ? (double)unexpected / (double)ended : 0.0;
    p->fleet_cost_per_hr = fleet_cost_of(c, PLANNER_ALL_POOLS, &p->spend_estimate_per_hr);
    p->spend_billed_per_hr = snap->billing_known ? snap->billing_total_usd_per_hr : 0;
    /* The first pool's usable GPU types stand for the fleet's (one pool: exactly its own). */
    p->n_gpu_types = 0;
    if (p->n_pools > 0) {
        p->n_gpu_types = p->pools[0].n_gpu_types;
        memcpy(p->gpu_types, p->pools[0].gpu_types, sizeof p->gpu_types);
    }
}

/* Pools with demand and no worker at all, longest-waiting queue first (ties by name). */
static size_t starving_pools(const Plan *plan, size_t n, const long long *cap,
                             const size_t *by_name, size_t *out)
{
    size_t nf = 0;
    for (size_t k = 0; k < n; k++) {
        size_t p = by_name[k];
        const PlanPool *pp = &plan->pools[p];
        if (cap[p] <= 0 || pp->active + pp->spawning > 0)
            continue;
        size_t j = nf++;
        while (j > 0 && plan->pools[out[j - 1]].oldest_queued_age_sec < pp->oldest_queued_age_sec) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = p;
    }
    return nf;
}

/* The fleet's breaker: the fleet-wide failure rate (every pool) tripped, and the unexpected
 * endings come from two pools or more -- a broken image, registry or template shared by pools.
 * One failing pool trips only its own breaker, and the other pools keep serving. Without this,
 * N pools sharing one broken image made N times the crash-loop bound of pods. */
static bool fleet_breaker(const Ctx *c)
{
    const Snapshot *snap = c->snap;
    const Policy *pol = c->policy;
    long long ended = snap->ended_in_window, unexpected = snap->unexpected_in_window;
    for (size_t k = 0; k <= PLAN_POOLS_MAX; k++) {
        ended += c->new_unexpected[k];
        unexpected += c->new_unexpected[k];
    }
    if (ended < pol->min_workers_for_rate || ended == 0 ||
        !((double)unexpected / (double)ended > pol->max_failure_rate))
        return false;
    size_t failing = c->new_unexpected[PLAN_POOLS_MAX] > 0 ? 1 : 0;
    for (size_t k = 0; k < snap->n_pool_endings; k++) {
        bool configured = false;
        for (size_t p = 0; p < pol->n_pools && p < PLAN_POOLS_MAX; p++)
            configured = configured || strcmp(snap->pool_endings[k].pool, pol->pools[p].name) == 0;
        if (!configured && snap->pool_endings[k].unexpected > 0)
            failing++; /* a pool no longer configured */
    }
    for (size_t p = 0; p < pol->n_pools && p < PLAN_POOLS_MAX; p++) {
        long long u = c->new_unexpected[p];
        for (size_t k = 0; k < snap->n_pool_endings; k++)
            if (strcmp(snap->pool_endings[k].pool, pol->pools[p].name) == 0)
                u += snap->pool_endings[k].unexpected;
        if (u > 0)
            failing++;
    }
    return failing >= 2;
}

/* The fleet's spend cap, in dollars: the slots shared out by count are handed out again, each
 * at its own pool's price bound -- MIN deficits first (by name), then one pod per pool in turn
 * (by name) -- and a pool stops when its next pod no longer fits. A pool whose price is unknown
 * gets at most one pod (to learn the price), costed at the dearest price known, and none while
 * one of its live pods has no price yet. One pool of unknown price no longer holds every pool
 * to one pod. A slot that starts a stopped pod is charged at that pod's price when it is above
 * the bound (Slots). Returns whether any pool got fewer than its share. */
static bool spend_share(const Ctx *c, size_t n, const size_t *by_name, const long long *deficit,
                        long long *give)
{
    double cap = c->policy->max_hourly_spend;
    if (cap <= 0)
        return false;
    double budget = cap - c->plan->fleet_cost_per_hr, ceiling = price_ceiling(c->snap);
    long long lim[PLAN_POOLS_MAX], got[PLAN_POOLS_MAX] = {0};
    double price[PLAN_POOLS_MAX]; /* of each pool's next slot */
    Slots slots[PLAN_POOLS_MAX];
    bool stopped[PLAN_POOLS_MAX] = {false};
    for (size_t p = 0; p < n; p++) {
        double base = c->plan->pools[p].price_bound;
        lim[p] = give[p];
        if (base <= 0) {
            base = ceiling;
            if (lim[p] > 1)
                lim[p] = 1;
            if (unpriced_live(c, (int)p))
                lim[p] = 0;
        }
        slots[p] = (Slots){.pool = (int)p, .base = base, .unknown = ceiling, .at = -1};
        price[p] = next_slot_price(c, &slots[p]);
    }
    for (size_t k = 0; k < n; k++) { /* MIN deficits first */
        size_t p = by_name[k];
        long long want = deficit[p] < lim[p] ? deficit[p] : lim[p];
        while (got[p] < want && !stopped[p]) {
            if (!affordable(budget, price[p])) {
                stopped[p] = true;
                break;
            }
            got[p]++;
            budget -= price[p];
            price[p] = next_slot_price(c, &slots[p]);
        }
    }
    for (bool any = true; any;) { /* then one pod per pool in turn */
        any = false;
        for (size_t k = 0; k < n; k++) {
            size_t p = by_name[k];
            if (stopped[p] || got[p] >= lim[p])
                continue;
            if (!affordable(budget, price[p])) {
                stopped[p] = true;
                continue;
            }
            got[p]++;
            budget -= price[p];
            price[p] = next_slot_price(c, &slots[p]);
            any = true;
        }
    }
    bool cut = false;
    for (size_t p = 0; p < n; p++) {
        cut = cut || got[p] < give[p];
        give[p] = got[p];
    }
    return cut;
}

/* A pool below its MIN on a full fleet (a pool just added, a MIN just raised): workers of pools
 * above their own MIN are drained -- idle ones first, then busy ones (a draining worker finishes
 * its task and claims no other), newest first, from the pool furthest above its MIN -- as many as
 * the deficit the fleet's room could not cover, less the workers already on their way out. No
 * pool is taken below its MIN. */
static void rebalance_min(Ctx *c, size_t n, const long long *deficit, const long long *give)
{
    const Snapshot *snap = c->snap;
    long long unmet = 0;
    for (size_t p = 0; p < n; p++)
        if (deficit[p] > give[p])
            unmet += deficit[p] - give[p];
    unmet -= planner_count_state(c, WORKER_TERMINATING, PLANNER_ALL_POOLS);
    while (unmet > 0) {
        long long from = -1, most = 0;
        for (size_t p = 0; p < n; p++) {
            long long above = planner_count_state(c, WORKER_ACTIVE, (int)p) +
                              planner_count_state(c, WORKER_SPAWNING, (int)p) -
                              c->policy->pools[p].min_active;
            if (above > most && planner_count_state(c, WORKER_ACTIVE, (int)p) > 0) {
                most = above;
                from = (long long)p;
            }
        }
        if (from < 0)
            return;
        long long pick = -1;
        for (size_t i = 0; i < snap->n_workers; i++) {
            const View *v = &c->view[i];
            if (v->pool != from || v->state != WORKER_ACTIVE || v->promoted_in_plan ||
                v->terminated_in_plan || snap->workers[i].id_too_long)
                continue;
            if (pick < 0) {
                pick = (long long)i;
                continue;
            }
            bool idle = v->tasks_held == 0, pick_idle = c->view[pick].tasks_held == 0;
            if ((idle && !pick_idle) ||
                (idle == pick_idle && snap->workers[i].age_sec < snap->workers[pick].age_sec))
                pick = (long long)i;
        }
        if (pick < 0)
            return;
        Action *a =
            planner_add_action(c, ACTION_DRAIN_WORKER, REASON_MIN_REBALANCE, &snap->workers[pick]);
        if (!a)
            return;
        snprintf(a->detail, sizeof a->detail,
                 "a pool below its MIN needs the slot (%s has %lld "
                 "above its MIN)",
                 c->policy->pools[from].name, most);
        c->view[pick].state = WORKER_TERMINATING;
        unmet--;
    }
}

/* RunPod calls this plan's terminations make (one DELETE per pod), made before any create. */
static long long planned_api_calls(const Plan *plan)
{
    long long n = 0;
    for (size_t i = 0; i < plan->count; i++) {
        const Action *a = &plan->actions[i];
        if (!a->pod_id[0])
            continue;
        if (a->kind == ACTION_TERMINATE_WORKER || a->kind == ACTION_TERMINATE_POD ||
            a->kind == ACTION_STOP_WORKER)
            n++;
        if (a->kind == ACTION_TERMINATE_WORKER && a->fetch_logs)
            n++; /* the failed worker's log tail, read before its pod goes (issue 16) */
    }
    return n;
}

/* RunPod's rate limit (issue 16): the creates beyond what the quota leaves after the reserve
 * and this plan's other calls (terminations, stops, log tails) wait for later cycles, shared out
 * like the fleet's room (MIN deficits and starving pools first). Terminations are never held back.
 * Applied last, after the MIN rebalance, so a deferred create never makes another pool drain.
 * Returns whether it cut a pool's share. */
static bool rate_share(Ctx *c, size_t n, const long long *deficit, const size_t *by_name,
                       const size_t *first, size_t nf, long long *give)
{
    Plan *plan = c->plan;
    plan->rate_remaining = ratelimit_remaining(&c->snap->quota);
    plan->rate_allowance = ratelimit_create_allowance(
        &c->snap->quota, c->policy->rate_limit_reserve, planned_api_calls(plan));
    long long wanted = 0;
    for (size_t p = 0; p < n; p++)
        wanted += give[p];
    if (plan->rate_allowance < 0 || plan->rate_allowance >= wanted)
        return false;
    long long allowed[PLAN_POOLS_MAX];
    share(plan->rate_allowance, n, give, deficit, by_name, first, nf, allowed);
    plan->rate_deferred = wanted - plan->rate_allowance;
    memcpy(give, allowed, n * sizeof *give);
    return true;
}

/* A spawn's detail: the pool's sizing and the GPU type tried first, with why. */
static void spawn_detail(const PlanPool *pp, char *out, size_t cap)
{
    const GpuChoice *ch = &pp->choice;
    int n = snprintf(out, cap, "pool %s: desired %lld, have %lld", pp->name, pp->desired,
                     pp->active + pp->spawning);
    if (n < 0 || (size_t)n >= cap || ch->n_usable == 0)
        return;
    const GpuCandidate *g = &ch->c[0];
    char price[24] = "";
    if (g->price_per_hr > 0)
        snprintf(price, sizeof price, " $%.3f/h", g->price_per_hr);
    char why[40] = "";
    if (ch->fell_back)
        snprintf(why, sizeof why, " (catalog %s: configured order)",
                 catalog_state_str(ch->catalog));
    snprintf(out + n, cap - (size_t)n, "; gpu %s%s: %s%s", gpu_choice_policy_str(ch->policy), why,
             g->gpu_type, price);
}

void planner_step_scale_up(Ctx *c)
{
    const Policy *pol = c->policy;
    Plan *plan = c->plan;
    size_t n = pol->n_pools < PLAN_POOLS_MAX ? pol->n_pools : PLAN_POOLS_MAX;
    plan->n_pools = n;
    long long cap[PLAN_POOLS_MAX], deficit[PLAN_POOLS_MAX];
    long long give[PLAN_POOLS_MAX];
    Reason why[PLAN_POOLS_MAX];
    size_t by_name[PLAN_POOLS_MAX], first[PLAN_POOLS_MAX];
    for (size_t p = 0; p < n; p++)
        size_pool(c, (int)p, &cap[p], &deficit[p], &why[p]);
    unserved(c);
    totals(c);
    if (fleet_breaker(c)) {
        plan->fleet_breaker_open = plan->breaker_open = true;
        for (size_t p = 0; p < n; p++) {
            if (cap[p] > 0 && c->want_override[p] < 0) {
                plan->pools[p].spawn_limit = SPAWN_LIMIT_BREAKER;
                plan->pools[p].limits |= 1u << SPAWN_LIMIT_BREAKER;
                cap[p] = deficit[p] = 0;
            }
        }
    }
    plan->over_spend_cap =
        pol->max_hourly_spend > 0 && plan->fleet_cost_per_hr > pol->max_hourly_spend + 1e-9;
    for (size_t p = 0; p < n; p++)
        if (pol->pools[p].max_hourly_spend > 0 &&
            plan->pools[p].cost_per_hr > pol->pools[p].max_hourly_spend + 1e-9)
            plan->over_spend_cap = true;

    /* The fleet's ceilings: MAX_ACTIVE_GPUS over every pod (retired pools' included), shared
     * by count, then MAX_HOURLY_SPEND_USD over the whole fleet's cost, in dollars. */
    long long used = plan->active + plan->spawning + plan->terminating;
    long long fleet_room = pol->max_active - used;
    if (fleet_room < 0)
        fleet_room = 0;
    plan->fleet_room = fleet_room;
    order_by_name(pol, n, by_name);
    size_t nf = starving_pools(plan, n, cap, by_name, first);
    share(fleet_room, n, cap, deficit, by_name, first, nf, give);
    long long by_count[PLAN_POOLS_MAX];
    memcpy(by_count, give, sizeof by_count);
    spend_share(c, n, by_name, deficit, give);
    if (!plan->over_spend_cap)
        rebalance_min(c, n, deficit, give);
    long long by_money[PLAN_POOLS_MAX];
    memcpy(by_money, give, sizeof by_money);
    rate_share(c, n, deficit, by_name, first, nf, give);

    plan->spawn_limit = SPAWN_LIMIT_NONE;
    plan->to_spawn = 0;
    for (size_t k = 0; k < n; k++) {
        size_t p = by_name[k];
        PlanPool *pp = &plan->pools[p];
        if (give[p] < by_money[p]) { /* RunPod's rate limit: the rest waits */
            pp->spawn_limit = SPAWN_LIMIT_RATE_LIMIT;
            if (by_money[p] < by_count[p]) { /* the spend cap cut it first (for explain) */
                pp->limits |= 1u << SPAWN_LIMIT_SPEND_CAP;
                plan->fleet_spend_capped = true;
            }
        } else if (give[p] < by_count[p]) { /* the fleet's spend cap cut this pool's share */
            pp->spawn_limit = SPAWN_LIMIT_SPEND_CAP;
            plan->fleet_spend_capped = true;
        } else if (give[p] < cap[p]) { /* the fleet's MAX_ACTIVE_GPUS cut it */
            pp->spawn_limit = n == 1 ? SPAWN_LIMIT_MAX_ACTIVE : SPAWN_LIMIT_FLEET_CEILING;
        }
        if (give[p] < cap[p])
            pp->limits |= 1u << pp->spawn_limit;
        Reason r = c->want_override[p] >= 0 ? REASON_OPERATOR : why[p];
        for (long long s = 0; s < give[p]; s++) {
            /* A stopped pod of the pool is started before any pod is created (issue 16). */
            if (planner_warm_start(c, (int)p, r)) {
                pp->to_spawn++;
                pp->to_start++;
                pp->stopped--;
                plan->stopped--;
                plan->to_start++;
                continue;
            }
            if (c->plan->truncated)
                break;
            Action *a = planner_add_action(c, ACTION_SPAWN_WORKER, r, NULL);
            if (!a)
                break;
            a->pool = (int)p;
            spawn_detail(pp, a->detail, sizeof a->detail);
            pp->to_spawn++;
        }
        plan->to_spawn += pp->to_spawn;
    }
    /* The fleet's limit: the first pool's (in pool order) that spawned fewer than it wanted. */
    for (size_t p = 0; p < n && plan->spawn_limit == SPAWN_LIMIT_NONE; p++)
        plan->spawn_limit = plan->pools[p].spawn_limit;
    /* Counts after this plan's own drains (rebalance). */
    plan->active = planner_count_state(c, WORKER_ACTIVE, PLANNER_ALL_POOLS);
    plan->terminating = planner_count_state(c, WORKER_TERMINATING, PLANNER_ALL_POOLS);
    plan->busy = planner_count_busy(c, PLANNER_ALL_POOLS);
    plan->idle = plan->active - plan->busy;
}
