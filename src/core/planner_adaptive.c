/* planner_adaptive.c -- the adaptive policies of the scale steps (issue 15): an adaptive warm
 * pool, predictive scale-up and an adaptive (ski-rental) idle grace. Each is opt-in and only
 * changes one input of planner_scale.c's rules: how many idle workers to keep, how much backlog
 * to size for, and how long an idle worker may stay. structure_docs/simulation.md gives their
 * measured effect on the policy lab's traces.
 *
 * Pure: reads only the working view and the snapshot's measures (SnapMeasures, loaded from the
 * database with one set-based statement); no I/O, clock, environment, allocation or logging.
 * Nothing measured (no measures, no cold start yet) means the configured value: an adaptive
 * rule never acts on a guess.
 */
#include "planner_ctx.h"

#include <math.h>
#include <string.h>

static const PolicyPool *pool_policy(const Ctx *c, int p)
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

/* Each pool's sums and medians of its run types' measures (once per plan). The duration of a
 * pool serving several run types is their medians weighted by recent arrivals (equally when
 * none arrived). */
static void init(Ctx *c)
{
    if (c->adaptive_ready)
        return;
    c->adaptive_ready = true;
    const SnapMeasures *m = &c->snap->measures;
    const Policy *pol = c->policy;
    for (size_t p = 0; p < pol->n_pools && p < PLAN_POOLS_MAX; p++) {
        PoolAdaptive *a = &c->adaptive[p];
        a->boot_sec = -1;
        a->duration_sec = -1;
        a->last_arrival_age_sec = -1;
        if (!m->measured)
            continue;
        a->measured = true;
        const PolicyPool *pp = &pol->pools[p];
        long long arrivals = 0;
        double dur_sum = 0, dur_weight = 0, dur_plain = 0, dur_n = 0;
        for (size_t k = 0; k < m->n_arrivals && k < SNAP_RUN_TYPES_MAX; k++) {
            const SnapArrivals *x = &m->arrivals[k];
            if (!serves(pp, x->name))
                continue;
            arrivals += x->arrivals_rate;
            a->warm_peak += x->warm_peak;
            if (x->last_arrival_age_sec >= 0 &&
                (a->last_arrival_age_sec < 0 || x->last_arrival_age_sec < a->last_arrival_age_sec))
                a->last_arrival_age_sec = x->last_arrival_age_sec;
            if (x->median_duration_sec >= 0 && isfinite(x->median_duration_sec)) {
                dur_sum += x->median_duration_sec * (double)x->arrivals_rate;
                dur_weight += (double)x->arrivals_rate;
                dur_plain += x->median_duration_sec;
                dur_n++;
            }
        }
        if (pol->rate_window_sec > 0)
            a->rate_per_sec = (double)arrivals / (double)pol->rate_window_sec;
        if (dur_weight > 0)
            a->duration_sec = dur_sum / dur_weight;
        else if (dur_n > 0)
            a->duration_sec = dur_plain / dur_n;
        for (size_t k = 0; k < m->n_boots && k < SNAP_POOLS_MAX; k++)
            if (strcmp(m->boots[k].pool, pp->name) == 0 && m->boots[k].boots > 0 &&
                m->boots[k].median_boot_sec >= 0 && !isnan(m->boots[k].median_boot_sec))
                a->boot_sec = m->boots[k].median_boot_sec;
        /* No worker boots for longer than SPAWNING_TIMEOUT_SEC: it is failed first. A longer
         * median is a mismeasure (a hostile row; before 0015's fix, a restarted pod's stopped
         * time), and trusting it would predict a backlog of hours of arrivals. */
        if (a->boot_sec > (double)pp->spawning_timeout_sec && pp->spawning_timeout_sec > 0)
            a->boot_sec = (double)pp->spawning_timeout_sec;
    }
}

/* Hot: an arrival within ADAPTIVE_WARM_DEMOTE_SEC, and either ADAPTIVE_WARM_MIN_ARRIVALS tasks
 * within ADAPTIVE_WARM_WINDOW_SEC at the recent peak, or a median cold start above
 * ADAPTIVE_WARM_COLD_START_SEC. The peak is over windows ending at an arrival within the demote
 * window, so a pool promoted by a burst stays hot until it has been quiet for the demote time,
 * with no state kept between cycles (cron mode behaves like continuous mode). */
static bool hot(const Ctx *c, const PoolAdaptive *a)
{
    const Policy *pol = c->policy;
    if (a->last_arrival_age_sec < 0 || a->last_arrival_age_sec > pol->warm_demote_sec)
        return false;
    return a->warm_peak >= pol->warm_min_arrivals ||
           (a->boot_sec >= 0 && a->boot_sec > (double)pol->warm_cold_start_sec);
}

int planner_keep_idle(Ctx *c, int p)
{
    const PolicyPool *pp = pool_policy(c, p);
    if (!c->policy->adaptive_warm_pool || p < 0)
        return pp->keep_idle;
    init(c);
    const PoolAdaptive *a = &c->adaptive[p];
    if (!a->measured)
        return pp->keep_idle;
    return hot(c, a) ? pp->keep_idle : 0;
}

/* Arrivals expected during one cold start (rate x median boot), less the tasks busy workers
 * finish meanwhile (each busy worker frees up within a boot time with probability about
 * boot / median duration): the backlog a worker spawned now would find when it is ready. */
double planner_predicted_backlog(Ctx *c, int p, long long busy)
{
    if (!c->policy->predictive_scale_up || p < 0 || c->prediction_refuted[p])
        return 0;
    init(c);
    const PoolAdaptive *a = &c->adaptive[p];
    if (!a->measured || a->boot_sec < 0 || a->rate_per_sec <= 0)
        return 0;
    double expected = a->rate_per_sec * a->boot_sec;
    double frees = 0;
    if (a->duration_sec > 0)
        frees = (double)busy * fmin(1.0, a->boot_sec / a->duration_sec);
    return expected > frees ? expected - frees : 0;
}

/* P(N >= k) for N ~ Poisson(mu). */
static double poisson_tail(double mu, long long k)
{
    if (k <= 0)
        return 1;
    if (mu <= 0)
        return 0;
    double term = exp(-mu), cdf = term;
    for (long long i = 1; i < k && i < 100000; i++) {
        term *= mu / (double)i;
        cdf += term;
    }
    return cdf < 1 ? 1 - cdf : 0;
}

/* Ski rental over one boot time b. Keeping the marginal idle worker for b costs b GPU-seconds.
 * Dropping it costs a cold start -- its billed boot plus the task's wait, valued at
 * ADAPTIVE_IDLE_WAIT_WEIGHT GPU-seconds per second: b x (1 + weight) -- but only if, within b,
 * more tasks arrive than the pool can serve without it: the other idle workers, the busy ones
 * that finish meanwhile (busy x min(1, b / median duration)) and those already spawning. With
 * Poisson arrivals at the measured rate r, that is P(N(r b) >= n_idle + frees + spawning). Keep it
 * (up to the pool's GPU_IDLE_TIMEOUT_SEC) while that probability x (1 + weight) > 1; otherwise it
 * goes after ADAPTIVE_IDLE_GRACE_MIN_SEC. With weight 1 this keeps about as many idle workers as
 * tasks are expected during one cold start beyond what frees up -- the Poisson median -- instead
 * of every worker that has not yet been idle for the whole timeout (which, with claims spread
 * over all idle workers, is almost every worker of a busy pool). */
long long planner_idle_grace(Ctx *c, int p, long long n_idle)
{
    const PolicyPool *pp = pool_policy(c, p);
    long long max = pp->idle_timeout_sec;
    if (!c->policy->adaptive_idle_grace || p < 0)
        return max;
    init(c);
    const PoolAdaptive *a = &c->adaptive[p];
    if (!a->measured || a->boot_sec < 0)
        return max;
    long long busy = planner_count_busy(c, p);
    double frees = (double)planner_count_state(c, WORKER_SPAWNING, p);
    if (a->duration_sec > 0)
        frees += (double)busy * fmin(1.0, a->boot_sec / a->duration_sec);
    long long k = (long long)ceil((double)(n_idle > 0 ? n_idle : 1) + frees - 1e-9);
    double needed = poisson_tail(a->rate_per_sec * a->boot_sec, k);
    long long grace =
        needed * (1.0 + c->policy->idle_wait_weight) > 1.0 ? max : c->policy->idle_grace_min_sec;
    return grace < max ? grace : max;
}

void planner_adaptive_report(Ctx *c, int p, PlanPool *out)
{
    const Policy *pol = c->policy;
    out->hot = false;
    out->predicted_backlog = 0;
    out->idle_grace_sec = -1;
    if (p < 0)
        return;
    if (pol->adaptive_warm_pool) {
        init(c);
        out->hot = c->adaptive[p].measured && hot(c, &c->adaptive[p]);
    }
    out->predicted_backlog = planner_predicted_backlog(c, p, out->busy);
    if (pol->adaptive_idle_grace)
        out->idle_grace_sec = planner_idle_grace(c, p, out->idle);
}
