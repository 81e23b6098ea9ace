/* test_review_pools.c -- an independent review of worker pools (issue 14) in the planner.
 *
 * Pure: builds a Snapshot and a Policy in memory and runs planner_decide, several times where a
 * defect only shows over cycles (the "next cycle" is built from what the previous plan spawned,
 * as if every create succeeded and the new worker picked up work at once).
 *
 * Tests named review_defect_* reproduce a defect and FAIL on the code under review; the others
 * are attacks that held and stay as regression tests.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "planner.h"

static Snapshot snap;
static Policy pol;
static Plan plan;

static void reset(void)
{
    memset(&snap, 0, sizeof snap);
    memset(&plan, 0, sizeof plan);
    memset(&pol, 0, sizeof pol);
    pol.min_active = 0;
    pol.max_active = 10;
    pol.tasks_per_gpu = 1;
    pol.idle_timeout_sec = 300;
    pol.stuck_timeout_sec = 350;
    pol.spawning_timeout_sec = 400;
    pol.graceful_timeout_sec = 600;
    pol.grace_period_sec = 120;
    pol.pod_id_grace_sec = 90;
    pol.pod_not_found_grace_sec = 60;
    pol.max_task_attempts = 3;
    pol.max_failure_rate = 0.8;
    pol.min_workers_for_rate = 5;
    pol.reconcile_interval_sec = 100000;
    pol.orphan_pod_grace_sec = 500;
    snprintf(pol.worker_prefix, sizeof pol.worker_prefix, "gpu-");
    snap.since_reconcile_sec = 0;
}

static PolicyPool *add_pool(const char *name, const char *run_type, int min, int max,
                            const char *gpu, double spend_cap)
{
    ck_assert_uint_lt(pol.n_pools, PLAN_POOLS_MAX);
    PolicyPool *pp = &pol.pools[pol.n_pools++];
    memset(pp, 0, sizeof *pp);
    snprintf(pp->name, sizeof pp->name, "%s", name);
    pp->n_run_types = 1;
    snprintf(pp->run_types[0], sizeof pp->run_types[0], "%s", run_type);
    pp->min_active = min;
    pp->max_active = max;
    pp->tasks_per_gpu = 1;
    pp->idle_timeout_sec = pol.idle_timeout_sec;
    pp->stuck_timeout_sec = pol.stuck_timeout_sec;
    pp->spawning_timeout_sec = pol.spawning_timeout_sec;
    pp->grace_period_sec = pol.grace_period_sec;
    pp->max_hourly_spend = spend_cap;
    snprintf(pp->cloud_type, sizeof pp->cloud_type, "SECURE");
    pp->n_gpu_types = 1;
    snprintf(pp->gpu_types[0], sizeof pp->gpu_types[0], "%s", gpu);
    return pp;
}

static void set_demand(const char *run_type, long long n)
{
    for (size_t k = 0; k < snap.n_run_types; k++)
        if (strcmp(snap.run_types[k].name, run_type) == 0) {
            snap.run_types[k].claimable = snap.run_types[k].queued = n;
            return;
        }
    SnapRunType *t = &snap.run_types[snap.n_run_types++];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", run_type);
    t->claimable = t->queued = n;
}

static void set_price(const char *gpu, double usd)
{
    SnapGpuPrice *g = &snap.prices[snap.n_prices++];
    snprintf(g->gpu_type, sizeof g->gpu_type, "%s", gpu);
    snprintf(g->cloud_type, sizeof g->cloud_type, "SECURE");
    g->usd_per_hr = usd;
}

/* A healthy active worker of pool that holds one task (busy: never drained). */
static void add_busy_worker(const char *pool, const char *gpu, double cost)
{
    ck_assert_uint_lt(snap.n_workers, SNAP_WORKERS_MAX);
    SnapWorker *w = &snap.workers[snap.n_workers];
    memset(w, 0, sizeof *w);
    snprintf(w->id, sizeof w->id, "gpu-20261130_120000-%08zx", snap.n_workers);
    snprintf(w->pool, sizeof w->pool, "%s", pool);
    snprintf(w->runpod_id, sizeof w->runpod_id, "pod-%zu", snap.n_workers);
    snprintf(w->gpu_type, sizeof w->gpu_type, "%s", gpu);
    w->state = WORKER_ACTIVE;
    w->age_sec = 1000;
    w->heartbeat_age_sec = 1;
    w->heartbeat_after_create = true;
    w->promoted_age_sec = 900;
    w->activity_age_sec = 1;
    w->terminating_age_sec = -1;
    w->vram_total_mb = -1;
    w->vram_used_mb = -1;
    w->cost_per_hr = cost;
    w->tasks_held = 1;
    w->oldest_task_age_sec = -1;
    w->create_unknown_age_sec = -1;
    w->pod_age_sec = -1;
    snap.n_workers++;
}

static long long spawns_of(const char *pool)
{
    long long n = 0;
    for (size_t p = 0; p < plan.n_pools; p++)
        if (strcmp(plan.pools[p].name, pool) == 0)
            for (size_t i = 0; i < plan.count; i++)
                if (plan.actions[i].kind == ACTION_SPAWN_WORKER && plan.actions[i].pool == (int)p)
                    n++;
    return n;
}

static long long workers_of(const char *pool)
{
    long long n = 0;
    for (size_t i = 0; i < snap.n_workers; i++)
        n += strcmp(snap.workers[i].pool, pool) == 0;
    return n;
}

/* ------------------------------------------------------------------------------------------ */

/* DEFECT (pools + spend cap): one pool whose GPU type has no known price yet turns the fleet's
 * spend allowance into "one pod per cycle" (planner_scale.c, planner_step_scale_up: `bound`
 * becomes -1 as soon as any pool with demand has an unknown price, and spend_allowance then
 * returns 1 for the whole fleet). That single slot goes through the proportional share, so the
 * pool with the bigger backlog -- whose price IS known -- takes it every cycle. The new pool
 * never gets the one pod that would teach its price, the known-price pool is throttled to one
 * pod per cycle although the cap is nowhere near, and once the fleet is full the new pool is
 * starved for as long as the other's backlog lasts.
 * Expected: the "learn the price" pod goes to the pool whose price is unknown, and pools with
 * known prices are bounded by their known prices. */
START_TEST(review_defect_unknown_price_pool_starved_under_spend_cap)
{
    reset();
    pol.max_active = 10;
    pol.max_hourly_spend = 100; /* $100/h: ten pods at $1/h are nowhere near it */
    add_pool("alpha", "alpha", 0, 10, "GPU-known", 100);
    add_pool("beta", "beta", 0, 10, "GPU-new", 100);
    set_price("GPU-known", 1.0); /* GPU-new was never created: no price */
    set_demand("alpha", 50);
    set_demand("beta", 5);
    long long alpha_first = -1, beta_total = 0;
    for (int cycle = 0; cycle < 15; cycle++) {
        planner_decide(&snap, &pol, &plan);
        long long a = spawns_of("alpha"), b = spawns_of("beta");
        if (cycle == 0)
            alpha_first = a;
        beta_total += b;
        for (long long k = 0; k < a; k++)
            add_busy_worker("alpha", "GPU-known", 1.0);
        for (long long k = 0; k < b; k++)
            add_busy_worker("beta", "GPU-new", 2.0);
    }
    fprintf(stderr,
            "review: unknown-price pool under a $100/h cap: first cycle alpha spawned %lld; after "
            "15 cycles alpha=%lld workers, beta=%lld workers (beta has 5 queued tasks)\n",
            alpha_first, workers_of("alpha"), workers_of("beta"));
    ck_assert_msg(beta_total > 0,
                  "pool beta (unknown GPU price, 5 queued) never got a worker in 15 cycles; the "
                  "fleet filled with alpha (%lld workers)",
                  workers_of("alpha"));
    ck_assert_msg(alpha_first > 1,
                  "alpha (known price $1/h, cap $100/h, 50 queued) was throttled to %lld pod in "
                  "its first cycle by another pool's unknown price",
                  alpha_first);
}
END_TEST

/* DEFECT (pool starved forever): the ceiling split is recomputed from scratch each cycle with
 * the largest-remainder rule. When the fleet has little room (1 slot frees at a time, as workers
 * end), a pool with a small backlog never wins the remainder against one with a big backlog:
 * its proportional share (3/103 of a slot per cycle) is never paid out, and with MIN 0 it keeps
 * zero workers while its tasks wait for as long as the big pool's backlog lasts.
 * Expected: a pool with queued work and no worker gets capacity within a bounded number of
 * cycles (e.g. a pool at zero with demand is served before proportional shares, or the rounding
 * deficit is carried over between cycles). */
START_TEST(review_defect_small_pool_starved_by_largest_remainder)
{
    reset();
    pol.max_active = 10;
    add_pool("big", "big", 0, 20, "GPU-a", 0);
    add_pool("small", "small", 0, 20, "GPU-b", 0);
    set_demand("big", 100);
    set_demand("small", 3);
    for (int k = 0; k < 9; k++)
        add_busy_worker("big", "GPU-a", 1.0);
    long long small_total = 0;
    for (int cycle = 0; cycle < 20; cycle++) {
        planner_decide(&snap, &pol, &plan);
        small_total += spawns_of("small");
        for (long long k = spawns_of("big"); k > 0; k--)
            add_busy_worker("big", "GPU-a", 1.0);
        for (long long k = spawns_of("small"); k > 0; k--)
            add_busy_worker("small", "GPU-b", 1.0);
        /* One big worker ends (its pod died and was cleaned up): one slot frees. */
        for (size_t i = 0; i < snap.n_workers; i++)
            if (strcmp(snap.workers[i].pool, "big") == 0) {
                snap.workers[i] = snap.workers[--snap.n_workers];
                break;
            }
    }
    fprintf(stderr,
            "review: largest remainder, 1 slot per cycle: after 20 cycles big=%lld workers, "
            "small=%lld workers (small has 3 queued tasks, MIN 0)\n",
            workers_of("big"), workers_of("small"));
    ck_assert_msg(small_total > 0,
                  "pool small (3 queued, 0 workers) got no worker in 20 cycles: every freed slot "
                  "went to pool big");
}
END_TEST

/* DEFECT (money; safety.md "Bound: with a worker image that always dies, at most
 * MIN_WORKERS_FOR_RATE_CHECK + MAX_ACTIVE_GPUS - 1 pods are created"): the breaker is now only
 * per pool, and Plan.failure_rate (the fleet's) stops nothing. A fault common to every pool --
 * the global RUNPOD_WORKER_IMAGE or a WORKER_ENV_* every pool inherits (a rotated database
 * password), a registry outage -- needs MIN_WORKERS_FOR_RATE_CHECK endings in EACH pool before
 * that pool stops: with 4 pools, 16 crashed pods of 16 endings and the fleet's rate 100% still
 * spawn 4 more (and up to 16 pools x 5 = 80 pods before all stop, instead of 5).
 * Expected: a fleet-wide rate above MAX_WORKER_FAILURE_RATE over >= MIN_WORKERS_FOR_RATE_CHECK
 * endings spread over several pools stops every pool (or the documented bound is revised). */
START_TEST(review_defect_per_pool_breaker_multiplies_the_crash_loop_bound)
{
    reset();
    pol.max_active = 20;
    pol.min_workers_for_rate = 5;
    pol.max_failure_rate = 0.8;
    const char *names[] = {"p1", "p2", "p3", "p4"};
    for (size_t i = 0; i < 4; i++) {
        add_pool(names[i], names[i], 0, 5, "GPU-a", 0);
        set_demand(names[i], 3);
        SnapPoolEndings *e = &snap.pool_endings[snap.n_pool_endings++];
        snprintf(e->pool, sizeof e->pool, "%s", names[i]);
        e->ended = 4; /* each pool: 4 endings, all unexpected (one below the per-pool minimum) */
        e->unexpected = 4;
    }
    snap.ended_in_window = 16;
    snap.unexpected_in_window = 16;
    planner_decide(&snap, &pol, &plan);
    long long spawned = (long long)plan_count(&plan, ACTION_SPAWN_WORKER);
    fprintf(stderr,
            "review: 4 pools sharing one broken image: 16 of 16 endings unexpected (fleet rate "
            "%.2f), breaker_open=%d, spawns this cycle=%lld\n",
            plan.failure_rate, plan.breaker_open, spawned);
    ck_assert_msg(spawned == 0,
                  "16 of 16 fleet endings unexpected (>= MIN_WORKERS_FOR_RATE_CHECK 5, rate 1.0 > "
                  "0.8) and the planner still spawns %lld pods",
                  spawned);
}
END_TEST

/* DEFECT (issue 14: "no pool can starve another below its MIN"): the MINs are only served out
 * of free room. When the fleet is already full of another pool's busy workers -- a pool added
 * to POOLS, or a MIN raised, on a busy fleet -- the pool below its MIN gets nothing, and since
 * busy workers are never drained (a worker claims its next task as soon as it finishes one),
 * it stays at 0 for as long as the other pool has a backlog.
 * Expected: a pool below its MIN takes a slot from a pool above its own MIN within bounded
 * time, e.g. by a graceful drain (terminating: the worker finishes its task, claims no other). */
START_TEST(review_defect_min_not_protected_when_the_fleet_is_full)
{
    reset();
    pol.max_active = 4;
    add_pool("video", "video", 0, 10, "GPU-a", 0);
    add_pool("image", "image", 1, 10, "GPU-b", 0); /* MIN 1; sum of MINs 1 <= fleet MAX 4 */
    for (int k = 0; k < 4; k++)
        add_busy_worker("video", "GPU-a", 1.0);
    set_demand("video", 20);
    long long image_spawns = 0, video_drains = 0, most = 0;
    for (int cycle = 0; cycle < 10; cycle++) {
        planner_decide(&snap, &pol, &plan);
        image_spawns += spawns_of("image");
        /* A drained worker is terminating (it finishes its task, keeps its slot) for two
         * cycles, then ends and leaves the snapshot. */
        for (size_t i = 0; i < plan.count; i++)
            if (plan.actions[i].kind == ACTION_DRAIN_WORKER) {
                video_drains++;
                ck_assert_int_eq(plan.actions[i].reason, REASON_MIN_REBALANCE);
                for (size_t w = 0; w < snap.n_workers; w++)
                    if (strcmp(snap.workers[w].id, plan.actions[i].worker_id) == 0) {
                        snap.workers[w].state = WORKER_TERMINATING;
                        snap.workers[w].terminating_age_sec = 0;
                    }
            }
        for (size_t w = 0; w < snap.n_workers;) {
            if (snap.workers[w].state == WORKER_TERMINATING &&
                snap.workers[w].terminating_age_sec++ >= 2) {
                snap.workers[w] = snap.workers[--snap.n_workers];
                continue;
            }
            w++;
        }
        for (long long k = spawns_of("image"); k > 0; k--)
            add_busy_worker("image", "GPU-b", 1.0);
        if ((long long)snap.n_workers > most)
            most = (long long)snap.n_workers;
    }
    fprintf(stderr,
            "review: fleet full of busy video workers, image MIN 1 with 0 workers: after 10 "
            "cycles image spawns=%lld, video drains=%lld, most workers at once=%lld\n",
            image_spawns, video_drains, most);
    ck_assert_msg(image_spawns == 1 && video_drains == 1,
                  "pool image below its MIN: expected one video worker drained and one image "
                  "spawn (got %lld drains, %lld spawns)",
                  video_drains, image_spawns);
    ck_assert_int_le(most, 4);
    ck_assert_int_eq(workers_of("image"), 1);
}
END_TEST

/* DEFECT (config, secrets across pools): POOL_<NAME>_ENV_<VAR> is matched by prefix
 * (config_pools.c parse_env), so with pools `a` and `a_env_x` every variable of pool a_env_x --
 * POOL_A_ENV_X_ENV_HF_TOKEN (its pods' secret) and POOL_A_ENV_X_MAX_ACTIVE_GPUS (a setting) --
 * is also taken as an environment variable of pool a (X_ENV_HF_TOKEN, X_MAX_ACTIVE_GPUS) and
 * sent to pool a's pods. Valid names, no error.
 * Expected: such names are rejected at start (exit 3: "pool names a and a_env_x collide in
 * POOL_A_ENV_..."), or parse_env skips variables that belong to a longer pool name. */
START_TEST(review_defect_pool_env_prefix_collision)
{
    const char *envp[] = {"DATABASE_URL=postgresql:///x",
                          "RUNPOD_API_KEY=k",
                          "MIN_ACTIVE_GPUS=0",
                          "POOLS=a,a_env_x",
                          "POOL_A_ENV_X_ENV_HF_TOKEN=secret-of-a_env_x-only",
                          "POOL_A_ENV_X_MAX_ACTIVE_GPUS=2",
                          NULL};
    static Config cfg;
    static ConfigErrors errs;
    memset(&errs, 0, sizeof errs);
    Status st = config_parse(envp, "host", CONFIG_NEED_DB | CONFIG_NEED_API, &cfg, &errs);
    if (st == STATUS_OK) {
        const PoolConfig *a = config_pool_named(&cfg, "a");
        ck_assert_ptr_nonnull(a);
        for (size_t i = 0; i < a->n_env; i++)
            fprintf(stderr, "review: pool a pods get %s=%s\n", a->env[i].name, a->env[i].value);
    }
    /* Fixed: the names are rejected at start, naming both pools. */
    ck_assert_int_eq(st, STATUS_ERR_CONFIG);
    bool named = false;
    for (size_t i = 0; i < errs.count; i++)
        named =
            named || (strstr(errs.messages[i], "collide") && strstr(errs.messages[i], "a_env_x"));
    ck_assert_msg(named, "no error names the colliding pool names");
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Attacks that held                                                                           */

static unsigned rng_state = 12345;
static unsigned rnd(unsigned n)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return (rng_state >> 16) % (n ? n : 1);
}

/* Random pools, MINs, MAXs, demands, existing workers and prices: the plan never exceeds the
 * fleet's MAX, a pool's MAX, or (with every price known) the fleet's spend cap; every pool's
 * MIN deficit is covered whenever the fleet has room for all of them. */
START_TEST(review_held_random_pools_respect_every_ceiling)
{
    for (int iter = 0; iter < 3000; iter++) {
        reset();
        size_t n = 1 + rnd(PLAN_POOLS_MAX);
        pol.max_active = (int)rnd(40);
        bool priced = rnd(2);
        pol.max_hourly_spend = rnd(3) ? 0 : (double)(1 + rnd(60));
        int min_sum = 0;
        for (size_t p = 0; p < n; p++) {
            char name[16], gpu[16];
            snprintf(name, sizeof name, "p%02zu", (n * 7 + p * 13) % 97); /* unsorted names */
            snprintf(gpu, sizeof gpu, "G%zu", p % 3);
            int max = (int)rnd(15);
            int min = max ? (int)rnd((unsigned)max + 1) : 0;
            if (min_sum + min > pol.max_active)
                min = 0; /* config_pools rejects MIN sums above the fleet's MAX */
            min_sum += min;
            add_pool(name, name, min, max, gpu, rnd(2) ? 0 : (double)(1 + rnd(30)));
            set_demand(name, rnd(30));
            for (unsigned k = rnd(5); k > 0; k--)
                add_busy_worker(name, gpu, priced ? 1.0 + (double)(p % 3) : 0);
        }
        if (priced)
            for (int g = 0; g < 3; g++) {
                char gpu[16];
                snprintf(gpu, sizeof gpu, "G%d", g);
                set_price(gpu, 1.0 + g);
            }
        planner_decide(&snap, &pol, &plan);
        long long live = (long long)snap.n_workers;
        long long spawned = (long long)plan_count(&plan, ACTION_SPAWN_WORKER);
        if (live <= pol.max_active)
            ck_assert_int_le(live + spawned, pol.max_active);
        else
            ck_assert_int_eq(spawned, 0);
        double new_cost = 0;
        for (size_t p = 0; p < plan.n_pools; p++) {
            long long have = workers_of(pol.pools[p].name);
            long long s = plan.pools[p].to_spawn;
            if (s > 0)
                ck_assert_int_le(have + s, pol.pools[p].max_active);
            new_cost += (double)s * (1.0 + (double)(p % 3));
            if (pol.pools[p].max_hourly_spend > 0 && priced && s > 0)
                ck_assert(plan.pools[p].cost_per_hr + (double)s * (1.0 + (double)(p % 3)) <=
                          pol.pools[p].max_hourly_spend + 1e-9);
        }
        if (pol.max_hourly_spend > 0 && priced && spawned > 0)
            ck_assert_msg(plan.fleet_cost_per_hr + new_cost <= pol.max_hourly_spend + 1e-9,
                          "iter %d: fleet %.2f + new %.2f > cap %.2f", iter, plan.fleet_cost_per_hr,
                          new_cost, pol.max_hourly_spend);
    }
}
END_TEST

/* A worker row of a pool that no configuration names (renamed, removed, a legacy row of pool
 * "default" after POOLS was set) counts toward the fleet's MAX and gets nothing spawned. */
START_TEST(review_held_unknown_pool_counts_toward_fleet_max)
{
    reset();
    pol.max_active = 4;
    add_pool("video", "video", 0, 10, "GPU-a", 0);
    for (int k = 0; k < 3; k++)
        add_busy_worker("renamed_away", "GPU-a", 1.0);
    set_demand("video", 10);
    planner_decide(&snap, &pol, &plan);
    ck_assert_int_eq(spawns_of("video"), 1);
    ck_assert_uint_eq(plan_count(&plan, ACTION_SPAWN_WORKER), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("review_pools");
    TCase *tc = tcase_create("review");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, review_defect_unknown_price_pool_starved_under_spend_cap);
    tcase_add_test(tc, review_defect_small_pool_starved_by_largest_remainder);
    tcase_add_test(tc, review_defect_per_pool_breaker_multiplies_the_crash_loop_bound);
    tcase_add_test(tc, review_defect_min_not_protected_when_the_fleet_is_full);
    tcase_add_test(tc, review_defect_pool_env_prefix_collision);
    tcase_add_test(tc, review_held_random_pools_respect_every_ceiling);
    tcase_add_test(tc, review_held_unknown_pool_counts_toward_fleet_max);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
