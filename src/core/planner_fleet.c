/* planner_fleet.c -- step 6 (scale up) across the fleet: the sharing of the fleet's ceilings
 * between pools (issue 14; structure_docs/pools.md), the fleet's breaker, RunPod's rate limit, and
 * the spawns. Each pool is sized on its own first (planner_scale.c, planner_size_pool).
 *
 * Pure: reads only the working view; no I/O, clock, environment, allocation or logging.
 */
#include "planner_ctx.h"

#include <stdio.h>
#include <string.h>

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
            served = planner_serves(&c->policy->pools[p], snap->run_types[k].name);
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
    p->fleet_cost_per_hr = planner_fleet_cost_of(c, PLANNER_ALL_POOLS, &p->spend_estimate_per_hr);
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
    double budget = cap - c->plan->fleet_cost_per_hr, ceiling = planner_price_ceiling(c->snap);
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
            if (planner_unpriced_live(c, (int)p))
                lim[p] = 0;
        }
        slots[p] = (Slots){.pool = (int)p, .base = base, .unknown = ceiling, .at = -1};
        price[p] = planner_next_slot_price(c, &slots[p]);
    }
    for (size_t k = 0; k < n; k++) { /* MIN deficits first */
        size_t p = by_name[k];
        long long want = deficit[p] < lim[p] ? deficit[p] : lim[p];
        while (got[p] < want && !stopped[p]) {
            if (!planner_affordable(budget, price[p])) {
                stopped[p] = true;
                break;
            }
            got[p]++;
            budget -= price[p];
            price[p] = planner_next_slot_price(c, &slots[p]);
        }
    }
    for (bool any = true; any;) { /* then one pod per pool in turn */
        any = false;
        for (size_t k = 0; k < n; k++) {
            size_t p = by_name[k];
            if (stopped[p] || got[p] >= lim[p])
                continue;
            if (!planner_affordable(budget, price[p])) {
                stopped[p] = true;
                continue;
            }
            got[p]++;
            budget -= price[p];
            price[p] = planner_next_slot_price(c, &slots[p]);
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
        planner_size_pool(c, (int)p, &cap[p], &deficit[p], &why[p]);
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
