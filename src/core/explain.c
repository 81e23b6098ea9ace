/* explain.c -- pure: the reasons `orchestrator explain` prints (see explain.h).
 *
 * Pure: reads only its arguments; no I/O, clock, environment, allocation or logging. Every
 * pool-level fact comes from the plan planner_decide() made (wanted, desired_by, limits, rooms),
 * so an explanation says what the cycle decides, never a second opinion.
 */
#include "explain.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* Building an explanation                                                                     */

static void reset(Explanation *out, int pool)
{
    out->pool = pool;
    out->n = 0;
    out->truncated = false;
}

__attribute__((format(printf, 4, 5))) static void add(Explanation *out, ExplainCode code,
                                                      long long wait_sec, const char *fmt, ...)
{
    if (out->n >= EXPLAIN_REASONS_MAX) {
        out->truncated = true;
        return;
    }
    ExplainReason *r = &out->reasons[out->n++];
    r->code = code;
    r->wait_sec = wait_sec;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->detail, sizeof r->detail, fmt, ap);
    va_end(ap);
}

/* Most decisive first: by code, stable (insertion sort of at most EXPLAIN_REASONS_MAX). */
static void sort_reasons(Explanation *out)
{
    for (size_t i = 1; i < out->n; i++) {
        ExplainReason r = out->reasons[i];
        size_t k = i;
        while (k > 0 && out->reasons[k - 1].code > r.code) {
            out->reasons[k] = out->reasons[k - 1];
            k--;
        }
        out->reasons[k] = r;
    }
}

static bool has_limit(const PlanPool *pp, SpawnLimit l)
{
    return (pp->limits & (1u << l)) != 0;
}

static const char *plural(long long n)
{
    return n == 1 ? "" : "s";
}

/* ------------------------------------------------------------------------------------------ */
/* Facts about a pool                                                                          */

int explain_pool_of_run_type(const Policy *policy, const char *run_type)
{
    for (size_t p = 0; p < policy->n_pools && p < PLAN_POOLS_MAX; p++)
        for (size_t r = 0; r < policy->pools[p].n_run_types; r++)
            if (strcmp(policy->pools[p].run_types[r], run_type) == 0)
                return (int)p;
    return -1;
}

const ExplainBoot *explain_boot_of(const ExplainBootTimes *boot, const char *pool)
{
    for (size_t k = 0; boot && k < boot->n && k < SNAP_POOLS_MAX; k++)
        if (strcmp(boot->pools[k].pool, pool) == 0 && boot->pools[k].samples > 0)
            return &boot->pools[k];
    return NULL;
}

/* Spawning workers of the pool named pool in the snapshot, and the age of the oldest. */
static long long booting(const Snapshot *snap, const char *pool, long long *oldest_sec)
{
    long long n = 0;
    *oldest_sec = -1;
    for (size_t i = 0; i < snap->n_workers; i++) {
        const SnapWorker *w = &snap->workers[i];
        if (w->state != WORKER_SPAWNING || strcmp(w->pool, pool) != 0)
            continue;
        n++;
        if (w->age_sec > *oldest_sec)
            *oldest_sec = w->age_sec;
    }
    return n;
}

/* The pool's run types as "a,b" (truncated to cap). */
static void run_types_str(const PolicyPool *pp, char *buf, size_t cap)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t r = 0; r < pp->n_run_types && len + 1 < cap; r++) {
        int w = snprintf(buf + len, cap - len, "%s%s", r ? "," : "", pp->run_types[r]);
        len = w < 0 ? cap : len + (size_t)w;
    }
}

/* Seconds until the first of the pool's booting workers should be up, from the measured boot
 * times; -1 unknown. */
static long long boot_wait(const ExplainBoot *b, long long oldest_sec)
{
    if (!b || oldest_sec < 0)
        return -1;
    long long left = (long long)(b->median_sec + 0.5) - oldest_sec;
    return left > 0 ? left : 0;
}

static void add_booting(Explanation *out, const Snapshot *snap, const PlanPool *pp,
                        const ExplainBoot *b, long long ahead)
{
    long long oldest;
    long long n = booting(snap, pp->name, &oldest);
    if (n == 0)
        return;
    char measured[160];
    if (b)
        snprintf(measured, sizeof measured,
                 "boot time measured over the last %lld worker%s of the pool: median %.0fs, p90 "
                 "%.0fs",
                 b->samples, plural(b->samples), b->median_sec, b->p90_sec);
    else
        snprintf(measured, sizeof measured, "no boot time measured yet for this pool");
    long long wait = boot_wait(b, oldest);
    char ahead_note[96] = "";
    if (ahead > 0)
        snprintf(ahead_note, sizeof ahead_note, "; %lld claimable task%s ahead of it go first",
                 ahead, plural(ahead));
    if (wait >= 0)
        add(out, EXPLAIN_BOOTING, wait,
            "%lld worker%s of pool %s %s booting (oldest %llds); %s: the first should be up in "
            "about %llds%s",
            n, plural(n), pp->name, n == 1 ? "is" : "are", oldest, measured, wait, ahead_note);
    else
        add(out, EXPLAIN_BOOTING, -1, "%lld worker%s of pool %s %s booting (oldest %llds); %s%s", n,
            plural(n), pp->name, n == 1 ? "is" : "are", oldest, measured, ahead_note);
}

/* ------------------------------------------------------------------------------------------ */
/* The limits a pool's plan reports                                                            */

static void add_breaker(Explanation *out, const Snapshot *snap, const Plan *plan,
                        const PlanPool *pp, const ExplainOptions *opt)
{
    if (plan->fleet_breaker_open && !pp->breaker_open) {
        add(out, EXPLAIN_BREAKER_OPEN, -1,
            "the fleet-wide circuit breaker is open: %lld of %lld workers that ended in the last "
            "%d min ended unexpectedly (%.0f%% > MAX_WORKER_FAILURE_RATE %.0f%%), in two or more "
            "pools; no pool spawns until the window clears (see `orchestrator logs`)",
            snap->unexpected_in_window, snap->ended_in_window, opt->failure_window_minutes,
            100.0 * plan->failure_rate, 100.0 * opt->max_failure_rate);
        return;
    }
    long long ended = 0, unexpected = 0;
    for (size_t k = 0; k < snap->n_pool_endings; k++)
        if (strcmp(snap->pool_endings[k].pool, pp->name) == 0) {
            ended = snap->pool_endings[k].ended;
            unexpected = snap->pool_endings[k].unexpected;
        }
    add(out, EXPLAIN_BREAKER_OPEN, -1,
        "the circuit breaker of pool %s is open: %lld of %lld workers that ended in the last %d "
        "min ended unexpectedly (%.0f%% > MAX_WORKER_FAILURE_RATE %.0f%%); no worker is spawned "
        "until the window clears (see `orchestrator logs` for the failures)",
        pp->name, unexpected, ended, opt->failure_window_minutes, 100.0 * pp->failure_rate,
        100.0 * opt->max_failure_rate);
}

static void add_gpu_backoff(Explanation *out, const Snapshot *snap, const PolicyPool *pol_pool)
{
    char list[256] = "";
    size_t len = 0;
    long long soonest = -1;
    for (size_t g = 0; g < pol_pool->n_gpu_types; g++)
        for (size_t b = 0; b < snap->n_backoffs; b++) {
            const SnapGpuBackoff *bo = &snap->backoffs[b];
            if (strcmp(bo->gpu_type, pol_pool->gpu_types[g]) != 0 || bo->remaining_sec <= 0)
                continue;
            if (soonest < 0 || bo->remaining_sec < soonest)
                soonest = bo->remaining_sec;
            if (len + 1 < sizeof list) {
                int w = snprintf(list + len, sizeof list - len, "%s%s (%llds left, %d failures)",
                                 len ? ", " : "", bo->gpu_type, bo->remaining_sec, bo->failures);
                len = w < 0 ? sizeof list : len + (size_t)w;
            }
        }
    add(out, EXPLAIN_GPU_BACKOFF, soonest,
        "every GPU type of pool %s is in capacity backoff after RunPod had no capacity: %s; no "
        "worker is spawned until one clears",
        pol_pool->name, list[0] ? list : "(none listed)");
}

static void add_spend_cap(Explanation *out, const Policy *policy, const Plan *plan,
                          const PlanPool *pp, const PolicyPool *pol_pool)
{
    char pool_part[160] = "", fleet_part[160] = "";
    if (pol_pool->max_hourly_spend > 0 && pp->spend_room >= 0)
        snprintf(pool_part, sizeof pool_part,
                 "pool %s's cap $%.2f/h (its pods cost $%.2f/h) allows %lld more pod%s", pp->name,
                 pol_pool->max_hourly_spend, pp->cost_per_hr, pp->spend_room,
                 plural(pp->spend_room));
    if (policy->max_hourly_spend > 0) {
        double left = policy->max_hourly_spend - plan->fleet_cost_per_hr;
        snprintf(fleet_part, sizeof fleet_part,
                 "the fleet's cap $%.2f/h (the fleet costs $%.2f/h) leaves $%.2f/h",
                 policy->max_hourly_spend, plan->fleet_cost_per_hr, left > 0 ? left : 0.0);
    }
    char bound[96];
    if (pp->price_bound > 0)
        snprintf(bound, sizeof bound, "a new pod may cost up to $%.2f/h", pp->price_bound);
    else
        snprintf(bound, sizeof bound, "a new pod's price is not known yet");
    add(out, EXPLAIN_SPEND_CAP, -1, "MAX_HOURLY_SPEND_USD holds pool %s back: %s%s%s; %s", pp->name,
        pool_part, pool_part[0] && fleet_part[0] ? "; " : "", fleet_part, bound);
}

static void add_pool_at_max(Explanation *out, const PlanPool *pp)
{
    add(out, EXPLAIN_POOL_AT_MAX, -1,
        "pool %s is at its MAX_ACTIVE_GPUS %lld (%lld active, %lld spawning, %lld terminating) "
        "while its demand wants %lld worker%s",
        pp->name, pp->max_active, pp->active, pp->spawning, pp->terminating, pp->wanted,
        plural(pp->wanted));
}

static void add_fleet_ceiling(Explanation *out, const Policy *policy, const Plan *plan,
                              const PlanPool *pp)
{
    add(out, EXPLAIN_FLEET_CEILING, -1,
        "the fleet's MAX_ACTIVE_GPUS %d is shared by every pool (%lld active, %lld spawning, "
        "%lld terminating in all; room for %lld more): pool %s gets %lld of the %lld it would "
        "spawn",
        policy->max_active, plan->active, plan->spawning, plan->terminating, plan->fleet_room,
        pp->name, pp->to_spawn, pp->own_cap);
}

static void add_out_of_stock(Explanation *out, const PlanPool *pp)
{
    char list[256];
    gpu_choice_describe(&pp->choice, list, sizeof list);
    add(out, EXPLAIN_OUT_OF_STOCK, -1,
        "RunPod's GPU catalog shows every GPU type pool %s may use out of stock (%s); no worker "
        "is spawned until one is back in stock or the catalog is read again",
        pp->name, list);
}

static void add_rate_limit(Explanation *out, const Policy *policy, const Plan *plan,
                           const PlanPool *pp)
{
    add(out, EXPLAIN_RATE_LIMIT, -1,
        "RunPod's rate-limit quota holds pool %s's creates back: %lld call%s left now, "
        "RUNPOD_RATE_LIMIT_RESERVE %lld kept for terminations and the pod list; the rest wait "
        "for the quota's reset (%lld deferred this cycle)",
        pp->name, plan->rate_remaining, plural(plan->rate_remaining), policy->rate_limit_reserve,
        plan->rate_deferred);
}

/* Every limit of the plan that keeps pool p below what its demand wants. */
static void add_limits(Explanation *out, const Snapshot *snap, const Policy *policy,
                       const Plan *plan, size_t p, const ExplainOptions *opt)
{
    const PlanPool *pp = &plan->pools[p];
    if (has_limit(pp, SPAWN_LIMIT_BREAKER))
        add_breaker(out, snap, plan, pp, opt);
    if (has_limit(pp, SPAWN_LIMIT_GPU_BACKOFF))
        add_gpu_backoff(out, snap, &policy->pools[p]);
    if (has_limit(pp, SPAWN_LIMIT_OUT_OF_STOCK))
        add_out_of_stock(out, pp);
    if (has_limit(pp, SPAWN_LIMIT_SPEND_CAP))
        add_spend_cap(out, policy, plan, pp, &policy->pools[p]);
    if (has_limit(pp, SPAWN_LIMIT_MAX_ACTIVE))
        add_pool_at_max(out, pp);
    if (has_limit(pp, SPAWN_LIMIT_FLEET_CEILING))
        add_fleet_ceiling(out, policy, plan, pp);
    if (has_limit(pp, SPAWN_LIMIT_RATE_LIMIT))
        add_rate_limit(out, policy, plan, pp);
}

static void add_fleet_wide(Explanation *out, const Snapshot *snap, const ExplainOptions *opt)
{
    if (snap->since_success_sec < 0)
        add(out, EXPLAIN_NO_RECENT_CYCLE, -1,
            "no cycle has ever succeeded on this database: is `orchestrator single` (cron) or "
            "`orchestrator continuous` running? Nothing scales until one does");
    else if (snap->since_success_sec > opt->stale_cycle_sec)
        add(out, EXPLAIN_NO_RECENT_CYCLE, -1,
            "the last successful cycle was %llds ago (more than %llds): is the orchestrator "
            "running? See `orchestrator status` and its logs; nothing scales until a cycle runs",
            snap->since_success_sec, opt->stale_cycle_sec);
    if (snap->workers_truncated)
        add(out, EXPLAIN_UNSAFE_SNAPSHOT, -1,
            "there are more live worker rows than a cycle can see (%d): every cycle acts on "
            "nothing until stale rows are cleaned up (orchestrator reconcile)",
            SNAP_WORKERS_MAX);
}

/* ------------------------------------------------------------------------------------------ */
/* A task                                                                                      */

static void explain_ended(const ExplainTask *t, Explanation *out)
{
    char ago[48] = "";
    if (t->finished_age_sec >= 0)
        snprintf(ago, sizeof ago, " %llds ago", t->finished_age_sec);
    if (strcmp(t->status, "Complete") == 0)
        add(out, EXPLAIN_TASK_COMPLETE, -1, "it ran: Complete%s after %d attempt%s; output: %s",
            ago, t->attempts + 1, plural(t->attempts + 1),
            t->output_location[0] ? t->output_location : "(no output_location)");
    else if (strcmp(t->status, "Failed") == 0)
        add(out, EXPLAIN_TASK_FAILED, -1,
            "it ran and Failed for good%s after %d of %d attempts: %s", ago, t->attempts,
            t->max_attempts, t->error_message[0] ? t->error_message : "(no error_message)");
    else
        add(out, EXPLAIN_TASK_CANCELLED, -1, "it was Cancelled%s; it will not run", ago);
}

static void explain_running(const ExplainTask *t, Explanation *out)
{
    const char *ws = t->worker_status;
    bool live = strcmp(ws, "active") == 0 || strcmp(ws, "terminating") == 0;
    add(out, EXPLAIN_TASK_RUNNING, -1,
        "it is running: In Progress on worker %s (%s) for %llds, attempt %d of %d%s",
        t->worker_id[0] ? t->worker_id : "(none)", ws[0] ? ws : "no worker row", t->running_sec,
        t->attempts + 1, t->max_attempts,
        live ? ""
             : "; its holder is not a live worker: the next cycle re-queues it (attempt "
               "counted) if the holder is one of ours");
}

static void explain_dependencies(const ExplainTask *t, Explanation *out)
{
    char failed[256] = "", missing[256] = "", pending[256] = "";
    size_t lf = 0, lm = 0, lp = 0;
    for (size_t d = 0; d < t->n_deps && d < EXPLAIN_DEPS_MAX; d++) {
        const ExplainDep *dep = &t->deps[d];
        char *buf;
        size_t *len;
        size_t cap;
        if (strcmp(dep->status, "Complete") == 0)
            continue;
        if (!dep->status[0]) {
            buf = missing, len = &lm, cap = sizeof missing;
        } else if (strcmp(dep->status, "Failed") == 0 || strcmp(dep->status, "Cancelled") == 0) {
            buf = failed, len = &lf, cap = sizeof failed;
        } else {
            buf = pending, len = &lp, cap = sizeof pending;
        }
        if (*len + 1 >= cap)
            continue;
        int w = dep->status[0]
                    ? snprintf(buf + *len, cap - *len, "%s%s (%s)", *len ? ", " : "", dep->id,
                               dep->status)
                    : snprintf(buf + *len, cap - *len, "%s%s", *len ? ", " : "", dep->id);
        *len = w < 0 ? cap : *len + (size_t)w;
    }
    if (failed[0])
        add(out, EXPLAIN_DEPENDENCY_FAILED, -1,
            "a dependency ended without completing: %s; this task can never be claimed (submit "
            "it again without that dependency, or re-run the dependency)",
            failed);
    if (missing[0])
        add(out, EXPLAIN_DEPENDENCY_MISSING, -1,
            "a dependency names no task: %s; this task can never be claimed (dependant_on must "
            "list existing task ids)",
            missing);
    if (pending[0])
        add(out, EXPLAIN_DEPENDENCY_PENDING, -1, "it waits for a dependency to be Complete: %s%s",
            pending, t->deps_truncated ? " (more dependencies not listed)" : "");
}

/* A Queued task: every reason it is not running. */
static void explain_queued(const Snapshot *snap, const Policy *policy, const Plan *plan,
                           const ExplainTask *t, const ExplainBootTimes *boot,
                           const ExplainOptions *opt, Explanation *out)
{
    int p = out->pool;
    if (p < 0) {
        char served[512] = "";
        size_t len = 0;
        for (size_t k = 0; k < policy->n_pools && k < PLAN_POOLS_MAX && len + 1 < sizeof served;
             k++) {
            char rts[256];
            run_types_str(&policy->pools[k], rts, sizeof rts);
            int w = snprintf(served + len, sizeof served - len, "%s%s serves %s", len ? "; " : "",
                             policy->pools[k].name, rts);
            len = w < 0 ? sizeof served : len + (size_t)w;
        }
        add(out, EXPLAIN_NO_POOL, -1,
            "no pool serves its run_type '%s' (%s): no worker will claim it until POOLS has a "
            "pool for it (POOL_<NAME>_RUN_TYPES)",
            t->run_type, served[0] ? served : "no pool configured");
    }
    explain_dependencies(t, out);
    if (t->available_in_sec > 0) {
        if (t->attempts > 0)
            add(out, EXPLAIN_RETRY_BACKOFF, t->available_in_sec,
                "retry backoff after attempt %d of %d (%s): claimable again in %llds "
                "(available_at)",
                t->attempts, t->max_attempts,
                t->error_message[0] ? t->error_message : "no error_message", t->available_in_sec);
        else
            add(out, EXPLAIN_RETRY_BACKOFF, t->available_in_sec,
                "its available_at is %llds in the future: not claimable before then",
                t->available_in_sec);
    }
    add_fleet_wide(out, snap, opt);
    if (p < 0 || (size_t)p >= plan->n_pools)
        return;
    const PlanPool *pp = &plan->pools[p];
    const ExplainBoot *b = explain_boot_of(boot, pp->name);
    long long ahead = t->claimable && t->ahead > 0 ? t->ahead : 0;
    if (t->claimable && pp->idle > ahead) {
        /* An idle worker takes it at its next claim: the fleet's limits do not hold it back. */
        add(out, EXPLAIN_CLAIM_IMMINENT, 0,
            "pool %s has %lld idle worker%s and %lld claimable task%s ahead of it: a worker "
            "should claim it within seconds",
            pp->name, pp->idle, plural(pp->idle), ahead, plural(ahead));
        sort_reasons(out);
        return;
    }
    add_limits(out, snap, policy, plan, (size_t)p, opt);
    add_booting(out, snap, pp, b, ahead);
    if (t->claimable) {
        char rts[256];
        run_types_str(&policy->pools[p], rts, sizeof rts);
        add(out, EXPLAIN_QUEUE_POSITION, -1,
            "position %lld in pool %s's queue (claimable tasks of run types %s, claimed oldest "
            "first): %lld ahead of it; the pool has %lld busy and %lld idle worker%s, desired "
            "%lld",
            ahead + 1, pp->name, rts, ahead, pp->busy, pp->idle, plural(pp->idle), pp->desired);
    }
    if (pp->to_spawn > 0)
        add(out, EXPLAIN_SCALE_UP_NEXT, b ? (long long)(b->median_sec + 0.5) : -1,
            "the next cycle spawns %lld worker%s for pool %s (desired %lld, has %lld active + "
            "%lld spawning)%s",
            pp->to_spawn, plural(pp->to_spawn), pp->name, pp->desired, pp->active, pp->spawning,
            b ? "; a new worker boots in about the measured median" : "");
}

void explain_task(const Snapshot *snap, const Policy *policy, const Plan *plan,
                  const ExplainTask *t, const ExplainBootTimes *boot, const ExplainOptions *opt,
                  Explanation *out)
{
    reset(out, explain_pool_of_run_type(policy, t->run_type));
    if (strcmp(t->status, "In Progress") == 0)
        explain_running(t, out);
    else if (strcmp(t->status, "Queued") == 0)
        explain_queued(snap, policy, plan, t, boot, opt, out);
    else
        explain_ended(t, out);
    sort_reasons(out);
}

/* ------------------------------------------------------------------------------------------ */
/* The fleet                                                                                   */

static void add_pool_size(Explanation *out, const PlanPool *pp, const PolicyPool *pol_pool)
{
    char rule[200];
    if (pp->desired_by == REASON_BACKLOG)
        snprintf(rule, sizeof rule,
                 "busy %lld + ceil(%lld claimable / TASKS_PER_GPU_THRESHOLD %d) = %lld", pp->busy,
                 pp->queued, pol_pool->tasks_per_gpu, pp->wanted);
    else if (pp->desired_by == REASON_PREDICTED_BACKLOG)
        snprintf(rule, sizeof rule,
                 "busy %lld + ceil((%lld claimable + %.1f expected within a cold start) / "
                 "TASKS_PER_GPU_THRESHOLD %d) = %lld (PREDICTIVE_SCALE_UP)",
                 pp->busy, pp->queued, pp->predicted_backlog, pol_pool->tasks_per_gpu, pp->wanted);
    else if (pp->desired_by == REASON_KEEP_IDLE)
        snprintf(rule, sizeof rule, "busy %lld + MACHINES_TO_KEEP_IDLE %d = %lld%s", pp->busy,
                 pol_pool->keep_idle, pp->wanted,
                 pp->hot ? " (ADAPTIVE_WARM_POOL: the pool is hot)" : "");
    else
        snprintf(rule, sizeof rule, "its MIN_ACTIVE_GPUS %lld (busy %lld, %lld claimable)",
                 pp->min_active, pp->busy, pp->queued);
    add(out, EXPLAIN_POOL_SIZE, -1,
        "pool %s: desired %lld = %s%s, within MIN %lld and MAX %lld; it has %lld active (%lld "
        "busy, %lld idle), %lld spawning, %lld terminating",
        pp->name, pp->desired, rule, pp->wanted > pp->desired ? ", capped at its MAX" : "",
        pp->min_active, pp->max_active, pp->active, pp->busy, pp->idle, pp->spawning,
        pp->terminating);
}

void explain_pool(const Snapshot *snap, const Policy *policy, const Plan *plan, size_t p,
                  const ExplainBootTimes *boot, const ExplainOptions *opt, Explanation *out)
{
    reset(out, (int)p);
    if (p >= plan->n_pools)
        return;
    const PlanPool *pp = &plan->pools[p];
    const PolicyPool *pol_pool = &policy->pools[p];
    add_pool_size(out, pp, pol_pool);
    if (pp->wanted > pp->desired && !has_limit(pp, SPAWN_LIMIT_MAX_ACTIVE))
        add_pool_at_max(out, pp); /* at MAX and nothing left to cut: still why it stops there */
    add_limits(out, snap, policy, plan, p, opt);
    add_booting(out, snap, pp, explain_boot_of(boot, pp->name), 0);
    if (pp->to_spawn > 0)
        add(out, EXPLAIN_SCALE_UP_NEXT, -1, "the next cycle spawns %lld worker%s for pool %s",
            pp->to_spawn, plural(pp->to_spawn), pp->name);
    long long drains = 0;
    for (size_t i = 0; i < plan->count; i++)
        if (plan->actions[i].kind == ACTION_DRAIN_WORKER && plan->actions[i].pool == (int)p)
            drains++;
    long long above = pp->active + pp->spawning - pp->desired;
    if (drains > 0)
        add(out, EXPLAIN_SCALE_DOWN, -1,
            "the next cycle drains %lld idle worker%s of pool %s (above desired %lld, idle longer "
            "than GPU_IDLE_TIMEOUT_SEC %llds)",
            drains, plural(drains), pp->name, pp->desired, pol_pool->idle_timeout_sec);
    else if (above > 0 && pp->idle > 0)
        add(out, EXPLAIN_SCALE_DOWN, -1,
            "pool %s has %lld worker%s above desired %lld: idle ones are drained once idle longer "
            "than GPU_IDLE_TIMEOUT_SEC %llds and promoted more than WORKER_GRACE_PERIOD_SEC %llds "
            "ago",
            pp->name, above, plural(above), pp->desired, pol_pool->idle_timeout_sec,
            pol_pool->grace_period_sec);
    if (out->n == 1 && pp->active + pp->spawning == pp->desired)
        add(out, EXPLAIN_AT_DESIRED, -1, "pool %s has the size its rule wants", pp->name);
    sort_reasons(out);
}

void explain_fleet(const Snapshot *snap, const Policy *policy, const Plan *plan,
                   const ExplainOptions *opt, Explanation *out)
{
    reset(out, -1);
    add_fleet_wide(out, snap, opt);
    bool wants = false;
    for (size_t p = 0; p < plan->n_pools; p++)
        wants = wants || has_limit(&plan->pools[p], SPAWN_LIMIT_FLEET_CEILING);
    if (wants)
        add(out, EXPLAIN_FLEET_CEILING, -1,
            "the fleet's MAX_ACTIVE_GPUS %d binds: %lld active, %lld spawning, %lld terminating; "
            "room for %lld more, shared every pool's MIN first, then the unmet demand in "
            "proportion",
            policy->max_active, plan->active, plan->spawning, plan->terminating, plan->fleet_room);
    if (policy->max_hourly_spend > 0 && (plan->fleet_spend_capped || plan->over_spend_cap))
        add(out, EXPLAIN_SPEND_CAP, -1,
            "the fleet's MAX_HOURLY_SPEND_USD $%.2f/h %s (the fleet costs $%.2f/h)",
            policy->max_hourly_spend,
            plan->over_spend_cap ? "is exceeded: nothing is spawned until the cost falls"
                                 : "cuts the spawns the pools want",
            plan->fleet_cost_per_hr);
    if (plan->n_unserved > 0) {
        char names[400] = "";
        size_t len = 0;
        for (size_t k = 0; k < plan->n_unserved && k < PLAN_UNSERVED_MAX && len + 1 < sizeof names;
             k++) {
            int w =
                snprintf(names + len, sizeof names - len, "%s%s", k ? ", " : "", plan->unserved[k]);
            len = w < 0 ? sizeof names : len + (size_t)w;
        }
        add(out, EXPLAIN_UNSERVED, -1,
            "%lld queued task%s of run type%s no pool serves (%s): nothing is spawned for them",
            plan->unserved_queued, plural(plan->unserved_queued),
            plural((long long)plan->n_unserved), names);
    }
    sort_reasons(out);
}

/* ------------------------------------------------------------------------------------------ */

const char *explain_code_str(ExplainCode code)
{
    switch (code) {
    case EXPLAIN_TASK_COMPLETE:
        return "complete";
    case EXPLAIN_TASK_FAILED:
        return "failed";
    case EXPLAIN_TASK_CANCELLED:
        return "cancelled";
    case EXPLAIN_TASK_RUNNING:
        return "running";
    case EXPLAIN_NO_POOL:
        return "no_pool";
    case EXPLAIN_DEPENDENCY_FAILED:
        return "dependency_failed";
    case EXPLAIN_DEPENDENCY_MISSING:
        return "dependency_missing";
    case EXPLAIN_DEPENDENCY_PENDING:
        return "dependency_pending";
    case EXPLAIN_RETRY_BACKOFF:
        return "retry_backoff";
    case EXPLAIN_NO_RECENT_CYCLE:
        return "no_recent_cycle";
    case EXPLAIN_UNSAFE_SNAPSHOT:
        return "unsafe_snapshot";
    case EXPLAIN_BREAKER_OPEN:
        return "circuit_breaker";
    case EXPLAIN_GPU_BACKOFF:
        return "gpu_capacity_backoff";
    case EXPLAIN_SPEND_CAP:
        return "spend_cap";
    case EXPLAIN_POOL_AT_MAX:
        return "pool_at_max";
    case EXPLAIN_FLEET_CEILING:
        return "fleet_ceiling";
    case EXPLAIN_OUT_OF_STOCK:
        return "out_of_stock";
    case EXPLAIN_RATE_LIMIT:
        return "rate_limit";
    case EXPLAIN_UNSERVED:
        return "unserved_run_types";
    case EXPLAIN_BOOTING:
        return "fleet_booting";
    case EXPLAIN_QUEUE_POSITION:
        return "queue_position";
    case EXPLAIN_SCALE_UP_NEXT:
        return "scale_up_next_cycle";
    case EXPLAIN_POOL_SIZE:
        return "pool_size";
    case EXPLAIN_SCALE_DOWN:
        return "scale_down";
    case EXPLAIN_AT_DESIRED:
        return "at_desired_size";
    case EXPLAIN_CLAIM_IMMINENT:
        return "claim_imminent";
    }
    return "unknown";
}
