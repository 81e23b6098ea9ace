/* test_sim.c -- unit tests of the policy lab's pure core: traces (parsing, export,
 * generators, the PRNG), the simulated world against timelines worked out by hand, the
 * baselines, the references and the report's determinism.
 *
 * Pure: configurations come from environment arrays (config_parse, sim_params_parse), never
 * from the process environment. Every timeline below is deterministic: boot times have sigma 0,
 * no capacity and crash probabilities are 0 unless a test sets them.
 */
#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim_model.h"
#include "sim_report.h"
#include "sim_trace.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define ENV_MAX 64

/* The deterministic world every timeline starts from: boots of exactly 90 s (restarts 20 s),
 * nothing fails, workers poll every 10 s, MIN 0, cycles every 30 s and on arrivals. */
static const char *const BASE[] = {
    "MIN_ACTIVE_GPUS=0",
    "SIM_BOOT_SIGMA=0",
    "SIM_RESTART_SIGMA=0",
    "SIM_NO_CAPACITY=0",
    "SIM_CRASH_AT_START=0",
    "SIM_RESTART_FAIL=0",
    "SIM_DRAIN_SEC=600",
    "SIM_BOOT_SEC=90",
    "SIM_RESTART_SEC=20",
    "SIM_WORKER_POLL_SEC=10",
    "SIM_HEARTBEAT_SEC=20",
    "SIM_NOTIFY_DEBOUNCE_SEC=0.2",
    NULL,
};

typedef struct {
    Config cfg;
    SimParams par;
    SimTrace trace;
    SimResult res;
} World;

static World *w_;

/* Parses BASE plus extra ("NAME=value", ..., NULL; extra entries come first, so they win). */
static void setup_env(const char *const *extra)
{
    const char *env[ENV_MAX];
    size_t n = 0;
    for (size_t i = 0; extra && extra[i] && n < ENV_MAX - 1; i++)
        env[n++] = extra[i];
    for (size_t i = 0; BASE[i] && n < ENV_MAX - 1; i++)
        env[n++] = BASE[i];
    env[n] = NULL;
    w_ = calloc(1, sizeof *w_);
    ck_assert_ptr_nonnull(w_);
    ConfigErrors *errs = calloc(1, sizeof *errs);
    ck_assert_ptr_nonnull(errs);
    Status st = config_parse(env, "test", CONFIG_NEED_NOTHING, &w_->cfg, errs);
    ck_assert_msg(st == STATUS_OK, "config: %s", errs->count ? errs->messages[0] : "");
    st = sim_params_parse(env, &w_->par, errs);
    ck_assert_msg(st == STATUS_OK, "sim params: %s", errs->count ? errs->messages[0] : "");
    free(errs);
}

static void teardown_world(void)
{
    if (!w_)
        return;
    sim_result_clear(&w_->res);
    sim_trace_clear(&w_->trace);
    free(w_);
    w_ = NULL;
}

static void task(long long arrival_ms, long long duration_ms, SimOutcome oc, int fault_attempts)
{
    ck_assert_int_eq(
        sim_trace_add(&w_->trace, arrival_ms, "gpu", "t", duration_ms, oc, fault_attempts),
        STATUS_OK);
}

static void run(void)
{
    sim_trace_finish(&w_->trace);
    ck_assert_int_eq(sim_run(&w_->trace, &w_->cfg, &w_->par, &w_->res), STATUS_OK);
}

/* ------------------------------------------------------------------------------------------ */
/* PRNG and traces                                                                             */

START_TEST(test_sim_rng_is_seeded_and_bounded)
{
    SimRng a, b, c;
    sim_rng_seed(&a, 42);
    sim_rng_seed(&b, 42);
    sim_rng_seed(&c, 43);
    bool differ = false;
    double sum = 0;
    for (int i = 0; i < 10000; i++) {
        uint64_t x = sim_rng_next(&a), y = sim_rng_next(&b);
        ck_assert(x == y);
        differ = differ || x != sim_rng_next(&c);
        double u = sim_rng_uniform(&a);
        sim_rng_uniform(&b);
        ck_assert(u > 0 && u < 1);
        sum += u;
    }
    ck_assert(differ);
    ck_assert_double_eq_tol(sum / 10000, 0.5, 0.02);
    double med[2001];
    for (int i = 0; i < 2001; i++)
        med[i] = sim_rng_lognormal(&a, 90, 0.35);
    int below = 0;
    for (int i = 0; i < 2001; i++)
        below += med[i] < 90;
    ck_assert_int_ge(below, 900); /* the median is the median */
    ck_assert_int_le(below, 1100);
    ck_assert_double_eq(sim_rng_lognormal(&a, 90, 0), 90);
}
END_TEST

static const struct {
    const char *name, *text;
    size_t n;
    long long arrival1_ms, duration1_ms;
    int outcome1, faults1;
    const char *run_type1;
} PARSE_OK[] = {
    {"csv with header in another order",
     "duration,arrival,run_type,outcome\n60,0,gpu,ok\n30.5,12.25,video,fail:2\n", 2, 12250, 30500,
     SIM_OUTCOME_FAIL, 2, "video"},
    {"csv quotes, comments, blank lines, CRLF",
     "# a comment\r\narrival,run_type,task_type,duration\r\n\r\n1,\"gpu\",\"a, "
     "b\",2\r\n3,gpu,c,4\r\n",
     2, 3000, 4000, SIM_OUTCOME_OK, 0, "gpu"},
    {"json lines with numbers and strings",
     "{\"arrival\": 5, \"duration\": 10}\n{\"arrival_sec\": \"7.5\", \"duration_sec\": 1, "
     "\"run_type\": \"img\", \"outcome\": \"crash\"}\n",
     2, 7500, 1000, SIM_OUTCOME_CRASH, 0, "img"},
    {"timestamps shift to the first arrival",
     "arrival,duration\n2025-05-01T10:00:10Z,1\n2025-05-01 10:00:00.5+00,2\n", 2, 9500, 1000,
     SIM_OUTCOME_OK, 0, "gpu"},
    {"timestamp offsets", "arrival,duration\n2025-05-01T12:00:00+02:00,1\n2025-05-01T10:00:03Z,1\n",
     2, 3000, 1000, SIM_OUTCOME_OK, 0, "gpu"},
};

START_TEST(test_sim_trace_parse_ok)
{
    SimTrace t;
    char err[SIM_ERROR_LEN];
    Status st = sim_trace_parse(PARSE_OK[_i].text, strlen(PARSE_OK[_i].text), &t, err);
    ck_assert_msg(st == STATUS_OK, "%s: %s", PARSE_OK[_i].name, err);
    ck_assert_uint_eq(t.n, PARSE_OK[_i].n);
    ck_assert_int_eq(t.tasks[1].arrival_ms, PARSE_OK[_i].arrival1_ms);
    ck_assert_int_eq(t.tasks[1].duration_ms, PARSE_OK[_i].duration1_ms);
    ck_assert_int_eq(t.tasks[1].outcome, PARSE_OK[_i].outcome1);
    ck_assert_int_eq(t.tasks[1].fault_attempts, PARSE_OK[_i].faults1);
    ck_assert_str_eq(t.run_types[t.tasks[1].run_type], PARSE_OK[_i].run_type1);
    ck_assert(t.tasks[0].arrival_ms <= t.tasks[1].arrival_ms);
    sim_trace_clear(&t);
}
END_TEST

static const struct {
    const char *name, *text, *want;
} PARSE_BAD[] = {
    {"no duration column", "arrival,run_type\n1,gpu\n", "line 1: the CSV header must name"},
    {"bad arrival", "arrival,duration\nsoon,1\n", "line 2: arrival \"soon\""},
    {"negative duration", "arrival,duration\n1,-3\n", "line 2: duration \"-3\""},
    {"bad outcome", "arrival,duration,outcome\n1,1,explode\n", "line 2: outcome \"explode\""},
    {"mixed arrivals", "arrival,duration\n1,1\n2025-05-01T00:00:00Z,1\n", "line 3: arrivals mix"},
    {"broken json", "{\"arrival\": 1, \"duration\": 1}\n{\"arrival\": \n", "line 2: not a JSON"},
    {"unterminated quote", "arrival,duration\n\"1,1\n", "line 2: unterminated quote"},
    {"empty", "# nothing\n\n", "the trace has no task"},
    {"span over 366 days", "arrival,duration\n0,10\n1000000000000,10\n",
     "a trace may span at most 366 days"},
    {"timestamps over 366 days",
     "arrival,duration\n2024-01-01T00:00:00Z,1\n2025-01-02T00:00:01Z,1\n",
     "a trace may span at most 366 days"},
    {"timestamp before 1970", "arrival,duration\n1969-12-31T23:59:59Z,1\n",
     "line 2: arrival before 1970"},
};

/* The simulator's clock starts at 0: sim_trace_add refuses an arrival before it (a
 * created_at = 'infinity' read from the database once came in as LLONG_MIN). */
START_TEST(test_sim_trace_add_refuses_negative_arrival)
{
    SimTrace t = {0};
    ck_assert_int_eq(sim_trace_add(&t, -1, "gpu", "t", 1000, SIM_OUTCOME_OK, 0), STATUS_ERR_PARSE);
    ck_assert_int_eq(sim_trace_add(&t, LLONG_MIN, "gpu", "t", 1000, SIM_OUTCOME_OK, 0),
                     STATUS_ERR_PARSE);
    ck_assert_uint_eq(t.n, 0);
    ck_assert_int_eq(sim_trace_add(&t, 0, "gpu", "t", 1000, SIM_OUTCOME_OK, 0), STATUS_OK);
    sim_trace_clear(&t);
}
END_TEST

START_TEST(test_sim_trace_parse_errors)
{
    SimTrace t = {0};
    char err[SIM_ERROR_LEN];
    Status st = sim_trace_parse(PARSE_BAD[_i].text, strlen(PARSE_BAD[_i].text), &t, err);
    ck_assert_msg(st == STATUS_ERR_PARSE, "%s", PARSE_BAD[_i].name);
    ck_assert_msg(strstr(err, PARSE_BAD[_i].want), "%s: got \"%s\"", PARSE_BAD[_i].name, err);
    ck_assert_ptr_null(t.tasks);
}
END_TEST

START_TEST(test_sim_trace_csv_round_trip)
{
    SimGenSpec spec = {.kind = SIM_GEN_BURSTY, .seed = 7, .n_run_types = 2};
    snprintf(spec.run_types[0], SNAP_NAME_MAX, "video");
    snprintf(spec.run_types[1], SNAP_NAME_MAX, "image");
    SimTrace a, b;
    ck_assert_int_eq(sim_trace_generate(&spec, &a), STATUS_OK);
    a.tasks[3].outcome = SIM_OUTCOME_CRASH;
    a.tasks[3].fault_attempts = 1;
    char *csv = sim_trace_to_csv(&a);
    ck_assert_ptr_nonnull(csv);
    char err[SIM_ERROR_LEN];
    ck_assert_int_eq(sim_trace_parse(csv, strlen(csv), &b, err), STATUS_OK);
    ck_assert_uint_eq(a.n, b.n);
    for (size_t i = 0; i < a.n; i++) {
        ck_assert_int_eq(a.tasks[i].arrival_ms - a.tasks[0].arrival_ms,
                         b.tasks[i].arrival_ms - b.tasks[0].arrival_ms);
        ck_assert_int_eq(a.tasks[i].duration_ms, b.tasks[i].duration_ms);
        ck_assert_int_eq(a.tasks[i].outcome, b.tasks[i].outcome);
        ck_assert_int_eq(a.tasks[i].fault_attempts, b.tasks[i].fault_attempts);
        ck_assert_str_eq(a.run_types[a.tasks[i].run_type], b.run_types[b.tasks[i].run_type]);
    }
    free(csv);
    sim_trace_clear(&a);
    sim_trace_clear(&b);
}
END_TEST

/* Each generator: same seed, same trace; another seed, another; about the tasks asked for; the
 * shape its name promises. */
START_TEST(test_sim_trace_generators)
{
    static const SimGenKind kinds[] = {SIM_GEN_STEADY, SIM_GEN_BURSTY, SIM_GEN_DIURNAL,
                                       SIM_GEN_SPARSE};
    SimGenSpec spec = {.kind = kinds[_i], .seed = 1, .tasks = 0, .days = 2};
    SimTrace a, b, c;
    ck_assert_int_eq(sim_trace_generate(&spec, &a), STATUS_OK);
    ck_assert_int_eq(sim_trace_generate(&spec, &b), STATUS_OK);
    spec.seed = 2;
    ck_assert_int_eq(sim_trace_generate(&spec, &c), STATUS_OK);
    ck_assert_uint_eq(a.n, b.n);
    bool differ = a.n != c.n;
    for (size_t i = 0; i < a.n; i++) {
        ck_assert_int_eq(a.tasks[i].arrival_ms, b.tasks[i].arrival_ms);
        ck_assert_int_eq(a.tasks[i].duration_ms, b.tasks[i].duration_ms);
        ck_assert_int_eq(a.tasks[i].run_type, b.tasks[i].run_type);
        differ = differ || (i < c.n && (a.tasks[i].arrival_ms != c.tasks[i].arrival_ms ||
                                        a.tasks[i].duration_ms != c.tasks[i].duration_ms));
    }
    ck_assert(differ);
    ck_assert_int_eq(a.end_ms, 2 * 86400000LL);
    double want[] = {8640, 1200, 8640, 48};
    ck_assert_msg(fabs((double)a.n - want[_i]) < want[_i] * 0.5 + 10, "%s: %zu tasks",
                  sim_gen_kind_str(kinds[_i]), a.n);
    for (size_t i = 0; i < a.n; i++) {
        ck_assert(a.tasks[i].duration_ms >= 5000 && a.tasks[i].duration_ms <= 240000);
        ck_assert(i == 0 || a.tasks[i - 1].arrival_ms <= a.tasks[i].arrival_ms);
    }
    if (kinds[_i] == SIM_GEN_DIURNAL) { /* noon (10-14 h) is much busier than night (22-2 h) */
        size_t noon = 0, night = 0;
        for (size_t i = 0; i < a.n; i++) {
            long long h = a.tasks[i].arrival_ms / 3600000 % 24;
            noon += h >= 10 && h < 14;
            night += h >= 22 || h < 2;
        }
        ck_assert_msg(noon > 4 * night, "noon %zu night %zu", noon, night);
    }
    if (kinds[_i] == SIM_GEN_BURSTY) { /* most tasks arrive within a minute of 19 others */
        size_t crowded = 0;
        for (size_t i = 0; i < a.n; i++) {
            size_t near = 0;
            for (size_t j = 0; j < a.n; j++)
                near += llabs(a.tasks[j].arrival_ms - a.tasks[i].arrival_ms) <= 60000;
            crowded += near >= 20;
        }
        ck_assert_msg(crowded * 10 >= a.n * 8, "%zu of %zu crowded", crowded, a.n);
    }
    sim_trace_clear(&a);
    sim_trace_clear(&b);
    sim_trace_clear(&c);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Timelines                                                                                   */

/* One task at 10 s, 60 s long, MIN 0. NOTIFY: a cycle at 10.2 s spawns; the pod boots at
 * 100.2 s; the cycle due then (every 30 s from 10.2) promotes it and the worker claims at once
 * (its first poll is at boot): wait 90.2 s, a cold start. Done at 160.2 s; idle more than
 * GPU_IDLE_TIMEOUT_SEC (300) first at the cycle at 490.2 s, which drains and terminates it. */
START_TEST(test_sim_timeline_one_task)
{
    setup_env(NULL);
    task(10000, 60000, SIM_OUTCOME_OK, 0);
    run();
    SimResult *r = &w_->res;
    ck_assert_int_eq(r->wait_ms[0], 90200);
    ck_assert_int_eq(r->completion_ms[0], 160200);
    ck_assert_int_eq(r->total.pods_created, 1);
    ck_assert_int_eq(r->total.cold_starts, 1);
    ck_assert_int_eq(r->total.completed, 1);
    ck_assert_int_eq(r->total.peak_fleet, 1);
    ck_assert_double_eq_tol(r->total.busy_gpu_sec, 60, 1e-9);
    ck_assert_double_eq_tol(r->total.idle_gpu_sec, 480 - 60, 1e-9);
    ck_assert_double_eq_tol(r->total.busy_usd, 60 * 0.69 / 3600, 1e-12);
    ck_assert_double_eq_tol(r->end_sec, 610, 1e-9); /* last arrival + SIM_DRAIN_SEC */
}
END_TEST

/* Without NOTIFY the cycle waits for the poll: 0, 30 (spawn), boot at 120, promoted and
 * claimed at 120: wait 110 s. */
START_TEST(test_sim_timeline_poll_only)
{
    const char *const env[] = {"ENABLE_NOTIFY_WAKEUP=false", NULL};
    setup_env(env);
    task(10000, 60000, SIM_OUTCOME_OK, 0);
    run();
    ck_assert_int_eq(w_->res.wait_ms[0], 110000);
    ck_assert_int_eq(w_->res.completion_ms[0], 180000);
}
END_TEST

/* With MIN 1 the starting worker is warm: it claims at its next poll (every 10 s from its
 * boot, SIM_INITIAL_IDLE_SEC = 600 s before 0, so at 10 s): wait 0, no cold start, no pod. */
START_TEST(test_sim_timeline_warm_worker)
{
    const char *const env[] = {"MIN_ACTIVE_GPUS=1", NULL};
    setup_env(env);
    task(13000, 60000, SIM_OUTCOME_OK, 0);
    run();
    ck_assert_int_eq(w_->res.wait_ms[0], 7000); /* polls at 10 s, then 20 s */
    ck_assert_int_eq(w_->res.total.pods_created, 0);
    ck_assert_int_eq(w_->res.total.cold_starts, 0);
    ck_assert_double_eq_tol(w_->res.total.busy_gpu_sec + w_->res.total.idle_gpu_sec,
                            w_->res.end_sec, 1e-9); /* billed from 0 to the end */
}
END_TEST

/* A task that fails twice (fail:2) completes on its third attempt, after the retry delays of
 * func_task_retry_delay (10 s, then 20 s) and a claim poll each time; one that always fails
 * ends Failed after MAX_TASK_ATTEMPTS. */
START_TEST(test_sim_timeline_failures)
{
    const char *const env[] = {"MIN_ACTIVE_GPUS=1", "SIM_WORKER_POLL_AFTER_TASK_SEC=1", NULL};
    setup_env(env);
    task(10000, 5000, SIM_OUTCOME_FAIL, 2);
    task(500000, 5000, SIM_OUTCOME_FAIL, 0);
    run();
    SimResult *r = &w_->res;
    /* claim 10, fail 15, available 25, poll (anchor 15 + 1 s, every 10 s) 26; fail 31,
     * available 51, poll (32, 42, 52) 52; done 57. */
    ck_assert_int_eq(r->completion_ms[0], 57000);
    ck_assert_int_eq(r->total.completed, 1);
    ck_assert_int_eq(r->total.failed, 1);
    ck_assert(r->completion_ms[1] > 500000);
}
END_TEST

/* A task that crashes its worker on the first attempt: the worker's pod exits, the next cycle
 * that lists pods (a spawning worker, or reconcile due) fails it, the task is recovered (an
 * attempt) and the replacement runs it. */
START_TEST(test_sim_timeline_crash_on_task)
{
    const char *const env[] = {"MIN_ACTIVE_GPUS=1", "RECONCILE_INTERVAL_SEC=60", NULL};
    setup_env(env);
    task(10000, 30000, SIM_OUTCOME_CRASH, 1);
    run();
    SimResult *r = &w_->res;
    ck_assert_int_eq(r->total.completed, 1);
    ck_assert_int_eq(r->total.pods_created, 1); /* the replacement for MIN */
    ck_assert(r->completion_ms[0] > 100000);
}
END_TEST

/* Every pod crashes at start: the planner fails each at the next cycle and spawns anew. With
 * the breaker on (5 unexpected endings within a 10-minute window open it) it pauses whenever
 * five crashes fall in the window, so fewer pods are created in the hour than with it off;
 * either way the task never runs. */
static long long crash_loop_pods(const char *min_workers)
{
    const char *const env[] = {
        "SIM_CRASH_AT_START=1",      "SIM_DRAIN_SEC=3600", "SIM_MAX_EXTRA_SEC=0",
        "FAILURE_WINDOW_MINUTES=10", min_workers,          NULL};
    setup_env(env);
    task(10000, 30000, SIM_OUTCOME_OK, 0);
    run();
    SimResult *r = &w_->res;
    ck_assert_int_eq(r->total.completed, 0);
    ck_assert_int_eq(r->total.unfinished, 1);
    /* the last pod may still be booting when the hour ends */
    ck_assert_int_ge(r->total.crashed_at_start, r->total.pods_created - 1);
    long long pods = r->total.pods_created;
    teardown_world();
    return pods;
}

START_TEST(test_sim_timeline_breaker)
{
    long long with = crash_loop_pods("MIN_WORKERS_FOR_RATE_CHECK=5");
    long long without = crash_loop_pods("MIN_WORKERS_FOR_RATE_CHECK=10000");
    ck_assert_int_ge(without, 35);           /* one every 90 s boot: about 40 in the hour */
    ck_assert_int_le(with * 5, without * 4); /* the pauses cut at least a fifth */
    ck_assert_int_ge(with, 5);
}
END_TEST

/* The stopped warm pool: the drained pod is stopped, not terminated; the next task's pod is
 * a restart (20 s) instead of a create (90 s), and the stopped disk is billed meanwhile. The
 * cycle at 2000.2 s restarts it; it boots at 2020.2 s and the next cycle (2030.2 s) promotes
 * it. */
START_TEST(test_sim_timeline_stopped_pool)
{
    const char *const env[] = {"SIM_WARM_STOPPED_PODS=1", NULL};
    setup_env(env);
    task(10000, 60000, SIM_OUTCOME_OK, 0);
    task(2000000, 60000, SIM_OUTCOME_OK, 0);
    run();
    SimResult *r = &w_->res;
    ck_assert_int_eq(r->total.pods_created, 1);
    ck_assert_int_eq(r->total.restarts, 1);
    ck_assert_int_eq(r->wait_ms[1], 30200); /* restart 20 s; promoted at the next cycle */
    ck_assert(r->total.stopped_usd > 0);
    ck_assert(r->total.stopped_usd < 0.014 * 2100 / 3600 + 1e-9);
}
END_TEST

/* No capacity on the first type: the create falls back to the second, records the backoff,
 * and later spawns skip the backed-off type (the planner removes it). */
START_TEST(test_sim_timeline_no_capacity)
{
    const char *const env[] = {"RUNPOD_GPU_TYPES=NVIDIA GeForce RTX 4090,NVIDIA RTX A6000",
                               "SIM_GPU=NVIDIA GeForce RTX 4090:no_capacity=1", NULL};
    setup_env(env);
    task(10000, 60000, SIM_OUTCOME_OK, 0);
    task(20000, 60000, SIM_OUTCOME_OK, 0);
    task(30000, 60000, SIM_OUTCOME_OK, 0);
    task(40000, 60000, SIM_OUTCOME_OK, 0);
    run();
    SimResult *r = &w_->res;
    ck_assert_int_eq(r->total.completed, 4);
    ck_assert_int_ge(r->total.pods_created, 1);
    ck_assert_int_eq(r->total.no_capacity, 1); /* backed off after the first answer */
    /* every task ran on the A6000 (speed 1.4): 84 s each */
    ck_assert_double_eq_tol(r->total.busy_gpu_sec, 4 * 84, 1e-9);
}
END_TEST

/* GPU choice: ordered takes the first type, cheapest the lowest hourly price, value the lowest
 * price per task (the RTX 4090 at $0.69/h x 1.0 beats the RTX 3090 at $0.44/h x 1.7). */
static const struct {
    const char *choice;
    double busy_sec;
} CHOICE[] = {{"ordered", 102}, {"cheapest", 102}, {"value", 60}};

START_TEST(test_sim_gpu_choice)
{
    char c[64];
    snprintf(c, sizeof c, "SIM_GPU_CHOICE=%s", CHOICE[_i].choice);
    const char *const env[] = {
        c, "RUNPOD_GPU_TYPES=NVIDIA GeForce RTX 3090,NVIDIA GeForce RTX 4090", NULL};
    setup_env(env);
    task(10000, 60000, SIM_OUTCOME_OK, 0);
    run();
    ck_assert_double_eq_tol(w_->res.total.busy_gpu_sec, CHOICE[_i].busy_sec, 1e-9);
}
END_TEST

/* The baselines on the one-task trace, worked out from their rules (sim_policy.c). */
static const struct {
    const char *policy;
    long long wait_ms, billed_sec;
} BASELINE[] = {
    /* runpod: decisions every 1 s; the task has waited > 4 s at 15 s: spawn, boot 105, claim
     * 105, done 165, idle > 5 s at 171. */
    {"runpod", 95000, 171 - 15},
    /* keda: decisions every 30 s: spawn at 30, boot 120, done 180; the highest desired of
     * the last 300 s is 1 until the decision at 450. */
    {"keda", 110000, 450 - 30},
    /* legacy: every 30 s: queued 1 > 3 x 0 at 30: spawn; done 180; idle > 300 s at 510. */
    {"legacy", 110000, 510 - 30},
};

START_TEST(test_sim_baselines)
{
    char p[64];
    snprintf(p, sizeof p, "SIM_POLICY=%s", BASELINE[_i].policy);
    const char *const env[] = {p, NULL};
    setup_env(env);
    task(10000, 60000, SIM_OUTCOME_OK, 0);
    run();
    SimResult *r = &w_->res;
    ck_assert_int_eq(r->wait_ms[0], BASELINE[_i].wait_ms);
    ck_assert_double_eq_tol(r->total.busy_gpu_sec + r->total.idle_gpu_sec,
                            (double)BASELINE[_i].billed_sec, 1e-9);
    ck_assert_int_eq(r->total.pods_created, 1);
}
END_TEST

/* KEDA's rule sizes for queued + running: 7 tasks at once with target 3 -> 3 pods; the legacy
 * rule adds ceil(7 / 3) = 3 too; RunPod's one per waiting task -> 7; the planner 3, then, with
 * 3 busy and 4 still queued, busy + ceil(4 / 3) = 5. */
static const struct {
    const char *policy;
    long long pods;
} BURST[] = {{"keda", 3}, {"legacy", 3}, {"runpod", 7}, {"planner", 5}};

START_TEST(test_sim_baselines_burst)
{
    char p[64];
    snprintf(p, sizeof p, "SIM_POLICY=%s", BURST[_i].policy);
    const char *const env[] = {p, NULL};
    setup_env(env);
    for (int i = 0; i < 7; i++)
        task(10000, 60000, SIM_OUTCOME_OK, 0);
    run();
    ck_assert_int_eq(w_->res.total.pods_created, BURST[_i].pods);
    ck_assert_int_eq(w_->res.total.completed, 7);
}
END_TEST

/* The spend cap holds in the simulation as in a real run: once a pod of the type was created
 * its price is in gpu_prices (per GPU type and cloud), so with the fleet empty again a burst gets
 * floor(2.5 / 0.69) = 3 pods of the RTX 4090 in one cycle (an unknown price would allow one per
 * cycle), and never a fourth while they live. */
START_TEST(test_sim_spend_cap)
{
    const char *const env[] = {"MAX_HOURLY_SPEND_USD=2.5", "TASKS_PER_GPU_THRESHOLD=1", NULL};
    setup_env(env);
    task(10000, 60000, SIM_OUTCOME_OK, 0); /* teaches the price; its pod is gone by 2000 s */
    for (int i = 0; i < 6; i++)
        task(2000000, 60000, SIM_OUTCOME_OK, 0);
    run();
    int first_wave = 0;
    for (size_t i = 1; i < 7; i++)
        first_wave += w_->res.wait_ms[i] <= 100000; /* boot 90 s, claimed at the promotion */
    ck_assert_int_eq(first_wave, 3);
    ck_assert_int_eq(w_->res.total.peak_fleet, 3);
    ck_assert_int_eq(w_->res.total.completed, 7);
}
END_TEST

/* The clairvoyant bound: a pod one boot before each task, reused when idle at most a boot. */
START_TEST(test_sim_clairvoyant)
{
    setup_env(NULL);
    task(0, 60000, SIM_OUTCOME_OK, 0);      /* pod A: boot 90, busy 60, free at 60 */
    task(100000, 60000, SIM_OUTCOME_OK, 0); /* A idle 40 <= 90: reused, free at 160 */
    task(100000, 60000, SIM_OUTCOME_OK, 0); /* pod B at the same time */
    task(400000, 60000, SIM_OUTCOME_OK, 0); /* A, B idle > 90: pod C */
    sim_trace_finish(&w_->trace);
    SimResult b;
    ck_assert_int_eq(sim_clairvoyant(&w_->trace, &w_->cfg, &w_->par, &b), STATUS_OK);
    ck_assert_int_eq(b.total.pods_created, 3);
    ck_assert_int_eq(b.total.peak_fleet, 2);
    ck_assert_double_eq_tol(b.total.busy_gpu_sec, 240, 1e-9);
    ck_assert_double_eq_tol(b.total.idle_gpu_sec, 3 * 90 + 40, 1e-9);
    ck_assert_double_eq_tol(b.total.wait_max_sec, 0, 1e-9);
}
END_TEST

/* A burst: every task at 0 gets its own pod (O(n log n): 20,000 tasks in milliseconds), and a
 * later task reuses the pod that finished last within a boot time. */
START_TEST(test_sim_clairvoyant_burst)
{
    setup_env(NULL);
    for (int i = 0; i < 20000; i++)
        task(0, 60000 + i, SIM_OUTCOME_OK, 0);
    task(100000, 1000, SIM_OUTCOME_OK, 0); /* all free since <= 80 s; the last freed at 79.999 */
    sim_trace_finish(&w_->trace);
    SimResult b;
    ck_assert_int_eq(sim_clairvoyant(&w_->trace, &w_->cfg, &w_->par, &b), STATUS_OK);
    ck_assert_int_eq(b.total.pods_created, 20000);
    ck_assert_int_eq(b.total.peak_fleet, 20000);
    ck_assert_double_eq_tol(b.total.idle_gpu_sec, 20000 * 90.0 + (100000 - 79999) / 1000.0, 1e-6);
}
END_TEST

/* The bound runs a task at most TASK_STUCK_TIMEOUT_SEC, as the system would before failing it. */
START_TEST(test_sim_clairvoyant_caps_at_stuck_timeout)
{
    const char *const env[] = {"TASK_STUCK_TIMEOUT_SEC=600", NULL};
    setup_env(env);
    task(0, 100000000, SIM_OUTCOME_OK, 0);
    sim_trace_finish(&w_->trace);
    SimResult b;
    ck_assert_int_eq(sim_clairvoyant(&w_->trace, &w_->cfg, &w_->par, &b), STATUS_OK);
    ck_assert_double_eq_tol(b.total.busy_gpu_sec, 600, 1e-9);
}
END_TEST

/* A fixed fleet of MAX = 2: the third of three simultaneous tasks waits for the first. */
START_TEST(test_sim_fixed_max)
{
    const char *const env[] = {"MAX_ACTIVE_GPUS=2", NULL};
    setup_env(env);
    for (int i = 0; i < 3; i++)
        task(0, 60000, SIM_OUTCOME_OK, 0);
    sim_trace_finish(&w_->trace);
    SimResult f;
    ck_assert_int_eq(sim_fixed_max(&w_->trace, &w_->cfg, &w_->par, &f), STATUS_OK);
    ck_assert_double_eq_tol(f.total.wait_max_sec, 60, 1e-9);
    ck_assert_double_eq_tol(f.total.wait_p50_sec, 0, 1e-9);
    ck_assert_int_eq(f.total.peak_fleet, 2);
    /* both billed from 0 to the last arrival + SIM_DRAIN_SEC (600 s) */
    ck_assert_double_eq_tol(f.total.busy_gpu_sec + f.total.idle_gpu_sec, 1200, 1e-9);
}
END_TEST

/* Nearest-rank percentiles. */
START_TEST(test_sim_percentiles)
{
    double w[100];
    for (int i = 0; i < 100; i++)
        w[i] = 100 - i; /* unsorted: 100 .. 1 */
    SimMetrics m = {0};
    sim_metrics_set_waits(&m, w, 100);
    ck_assert_double_eq(m.wait_p50_sec, 50);
    ck_assert_double_eq(m.wait_p95_sec, 95);
    ck_assert_double_eq(m.wait_p99_sec, 99);
    ck_assert_double_eq(m.wait_max_sec, 100);
    ck_assert_double_eq(m.wait_mean_sec, 50.5);
}
END_TEST

/* Pools: tasks of a run type go to the pool serving it; an unserved run type is counted and
 * left queued; per-pool figures add up to the total. */
START_TEST(test_sim_pools)
{
    const char *const env[] = {"POOLS=video,image", "POOL_IMAGE_RUN_TYPES=image,gpu", NULL};
    setup_env(env);
    ck_assert_int_eq(sim_trace_add(&w_->trace, 1000, "video", "t", 30000, SIM_OUTCOME_OK, 0),
                     STATUS_OK);
    ck_assert_int_eq(sim_trace_add(&w_->trace, 2000, "gpu", "t", 30000, SIM_OUTCOME_OK, 0),
                     STATUS_OK);
    ck_assert_int_eq(sim_trace_add(&w_->trace, 3000, "audio", "t", 30000, SIM_OUTCOME_OK, 0),
                     STATUS_OK);
    run();
    SimResult *r = &w_->res;
    ck_assert_uint_eq(r->n_pools, 2);
    ck_assert_str_eq(r->pools[0].name, "video");
    ck_assert_int_eq(r->pools[0].completed, 1);
    ck_assert_int_eq(r->pools[1].completed, 1);
    ck_assert_int_eq(r->unserved, 1);
    ck_assert_int_eq(r->completion_ms[2], -1);
    ck_assert_int_eq(r->total.pods_created, r->pools[0].pods_created + r->pools[1].pods_created);
    ck_assert_double_eq_tol(r->total.busy_usd, r->pools[0].busy_usd + r->pools[1].busy_usd, 1e-12);
}
END_TEST

/* Same seed and inputs -> the same report, byte for byte; another SIM_SEED -> another. */
START_TEST(test_sim_report_deterministic)
{
    char *text[3], *json[3];
    for (int k = 0; k < 3; k++) {
        const char *const env[] = {k == 2 ? "SIM_SEED=2" : "SIM_SEED=1",
                                   "SIM_BOOT_SIGMA=0.4",
                                   "SIM_NO_CAPACITY=0.1",
                                   "SIM_CRASH_AT_START=0.05",
                                   "MIN_ACTIVE_GPUS=1",
                                   NULL};
        setup_env(env);
        SimGenSpec spec = {.kind = SIM_GEN_BURSTY, .seed = 3, .days = 1};
        ck_assert_int_eq(sim_trace_generate(&spec, &w_->trace), STATUS_OK);
        ck_assert_int_eq(sim_run(&w_->trace, &w_->cfg, &w_->par, &w_->res), STATUS_OK);
        SimResult b, f;
        ck_assert_int_eq(sim_clairvoyant(&w_->trace, &w_->cfg, &w_->par, &b), STATUS_OK);
        ck_assert_int_eq(sim_fixed_max(&w_->trace, &w_->cfg, &w_->par, &f), STATUS_OK);
        SimRun run1 = {.label = "current", .policy = "planner", .result = w_->res};
        SimReport rep = {&w_->trace, &w_->cfg, 1, &run1, &b, &f, NULL};
        text[k] = sim_report_text(&rep);
        json[k] = sim_report_json(&rep);
        ck_assert_ptr_nonnull(text[k]);
        ck_assert_ptr_nonnull(json[k]);
        teardown_world();
    }
    ck_assert_str_eq(text[0], text[1]);
    ck_assert_str_eq(json[0], json[1]);
    ck_assert_str_ne(json[0], json[2]);
    ck_assert_ptr_nonnull(strstr(text[0], "clairvoyant bound"));
    ck_assert_ptr_nonnull(strstr(json[0], "\"wait_p95_sec\""));
    for (int k = 0; k < 3; k++) {
        free(text[k]);
        free(json[k]);
    }
}
END_TEST

static const struct {
    const char *env, *want;
} PARAM_BAD[] = {
    {"SIM_POLICY=magic", "SIM_POLICY: expected planner, legacy, keda or runpod"},
    {"SIM_GPU_CHOICE=random", "SIM_GPU_CHOICE: expected ordered, cheapest or value"},
    {"SIM_BOOT_SEC=-1", "SIM_BOOT_SEC: expected number in [0, 86400]"},
    {"SIM_NO_CAPACITY=1.5", "SIM_NO_CAPACITY: expected number in [0, 1]"},
    {"SIM_GPU=Foo:price=abc", "SIM_GPU Foo price: expected number"},
    {"SIM_GPU=Foo:flavour=1", "invalid SIM_GPU setting \"flavour=1\" for Foo"},
    {"SIM_WARM_STOPPED_PODS=2.5", "SIM_WARM_STOPPED_PODS: expected a whole number"},
    {"SIM_SEED=-3", "SIM_SEED: expected a whole number"},
};

START_TEST(test_sim_params_errors)
{
    const char *const env[] = {PARAM_BAD[_i].env, NULL};
    SimParams p;
    ConfigErrors *errs = calloc(1, sizeof *errs);
    ck_assert_int_eq(sim_params_parse(env, &p, errs), STATUS_ERR_CONFIG);
    ck_assert_uint_ge(errs->count, 1);
    ck_assert_msg(strstr(errs->messages[0], PARAM_BAD[_i].want), "%s -> %s", PARAM_BAD[_i].env,
                  errs->messages[0]);
    free(errs);
}
END_TEST

/* Issue 16's names work when the SIM_ ones are not set; the SIM_ ones win. */
START_TEST(test_sim_params_issue16_names)
{
    const char *const env[] = {"RUNPOD_GPU_CHOICE=value", "WARM_STOPPED_PODS=3",
                               "SIM_GPU=NVIDIA GeForce RTX 4090:boot=120,restart=15", NULL};
    SimParams p;
    ConfigErrors *errs = calloc(1, sizeof *errs);
    ck_assert_int_eq(sim_params_parse(env, &p, errs), STATUS_OK);
    ck_assert_int_eq(p.gpu_choice, SIM_CHOICE_VALUE);
    ck_assert_int_eq(p.warm_stopped_pods, 3);
    SimGpu g = sim_params_gpu(&p, "NVIDIA GeForce RTX 4090");
    ck_assert_double_eq(g.boot_median_sec, 120);
    ck_assert_double_eq(g.restart_median_sec, 15);
    ck_assert_double_eq(g.price_per_hr, 0.69);
    const char *const env2[] = {"SIM_WARM_STOPPED_PODS=1", "WARM_STOPPED_PODS=3", NULL};
    ck_assert_int_eq(sim_params_parse(env2, &p, errs), STATUS_OK);
    ck_assert_int_eq(p.warm_stopped_pods, 1);
    free(errs);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("sim");
    TCase *tc = tcase_create("sim");
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, NULL, teardown_world);
    tcase_add_test(tc, test_sim_rng_is_seeded_and_bounded);
    tcase_add_loop_test(tc, test_sim_trace_parse_ok, 0, (int)ARRAY_LEN(PARSE_OK));
    tcase_add_loop_test(tc, test_sim_trace_parse_errors, 0, (int)ARRAY_LEN(PARSE_BAD));
    tcase_add_test(tc, test_sim_trace_csv_round_trip);
    tcase_add_loop_test(tc, test_sim_trace_generators, 0, 4);
    tcase_add_test(tc, test_sim_timeline_one_task);
    tcase_add_test(tc, test_sim_timeline_poll_only);
    tcase_add_test(tc, test_sim_timeline_warm_worker);
    tcase_add_test(tc, test_sim_timeline_failures);
    tcase_add_test(tc, test_sim_timeline_crash_on_task);
    tcase_add_test(tc, test_sim_timeline_breaker);
    tcase_add_test(tc, test_sim_timeline_stopped_pool);
    tcase_add_test(tc, test_sim_timeline_no_capacity);
    tcase_add_loop_test(tc, test_sim_gpu_choice, 0, (int)ARRAY_LEN(CHOICE));
    tcase_add_loop_test(tc, test_sim_baselines, 0, (int)ARRAY_LEN(BASELINE));
    tcase_add_loop_test(tc, test_sim_baselines_burst, 0, (int)ARRAY_LEN(BURST));
    tcase_add_test(tc, test_sim_spend_cap);
    tcase_add_test(tc, test_sim_clairvoyant);
    tcase_add_test(tc, test_sim_clairvoyant_burst);
    tcase_add_test(tc, test_sim_clairvoyant_caps_at_stuck_timeout);
    tcase_add_test(tc, test_sim_trace_add_refuses_negative_arrival);
    tcase_add_test(tc, test_sim_fixed_max);
    tcase_add_test(tc, test_sim_percentiles);
    tcase_add_test(tc, test_sim_pools);
    tcase_add_test(tc, test_sim_report_deterministic);
    tcase_add_loop_test(tc, test_sim_params_errors, 0, (int)ARRAY_LEN(PARAM_BAD));
    tcase_add_test(tc, test_sim_params_issue16_names);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
