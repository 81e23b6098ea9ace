/* test_gpu_choice.c -- the order of a pool's GPU types (src/core/gpu_choice.c) and what the
 * planner makes of it and of RunPod's rate limit (issue 16 items 1 and 5).
 *
 * Pure: a Snapshot and a Policy built in memory. Snapshot and Plan are megabytes, so they are
 * file-scope statics reset by every test.
 */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "gpu_choice.h"
#include "planner.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static Snapshot snap;
static Policy pol;
static Plan plan;
static GpuChoice choice;

#define A "GPU-A"
#define B "GPU-B"
#define C "GPU-C"
#define D "GPU-D"

/* One pool `default` with GPU types A, B, C, D in that order, cloud SECURE, catalog TTL 300. */
static void reset(void)
{
    memset(&snap, 0, sizeof snap);
    memset(&plan, 0, sizeof plan);
    memset(&pol, 0, sizeof pol);
    memset(&choice, 0, sizeof choice);
    pol.max_active = 10;
    pol.tasks_per_gpu = 1;
    pol.idle_timeout_sec = 300;
    pol.stuck_timeout_sec = 300;
    pol.spawning_timeout_sec = 300;
    pol.graceful_timeout_sec = 600;
    pol.pod_id_grace_sec = 90;
    pol.pod_not_found_grace_sec = 60;
    pol.max_task_attempts = 3;
    pol.max_failure_rate = 0.8;
    pol.min_workers_for_rate = 5;
    pol.reconcile_interval_sec = 300;
    snprintf(pol.worker_prefix, sizeof pol.worker_prefix, "gpu-");
    pol.catalog_ttl_sec = 300;
    pol.value_min_samples = 5;
    pol.rate_limit_reserve = 2;
    pol.n_pools = 1;
    PolicyPool *pp = &pol.pools[0];
    snprintf(pp->name, sizeof pp->name, "default");
    pp->n_run_types = 1;
    snprintf(pp->run_types[0], sizeof pp->run_types[0], "gpu");
    pp->max_active = 10;
    pp->tasks_per_gpu = 1;
    pp->idle_timeout_sec = 300;
    pp->stuck_timeout_sec = 300;
    pp->spawning_timeout_sec = 300;
    const char *types[] = {A, B, C, D};
    for (size_t i = 0; i < 4; i++)
        snprintf(pp->gpu_types[pp->n_gpu_types++], SNAP_NAME_MAX, "%s", types[i]);
    snprintf(pp->catalog_scope, sizeof pp->catalog_scope, "SECURE");
    snap.since_reconcile_sec = 0;
}

/* The cached catalog read of scope SECURE: age_sec old (-1 never), failed or not. */
static void catalog_read(long long age_sec, bool failed)
{
    SnapCatalogScope *s = &snap.catalog_scopes[snap.n_catalog_scopes++];
    snprintf(s->scope, sizeof s->scope, "SECURE");
    s->age_sec = age_sec;
    s->attempt_age_sec = failed ? 0 : age_sec;
    s->last_failed = failed;
}

static void catalog_entry(const char *type, GpuStock stock, double price)
{
    SnapCatalogEntry *e = &snap.catalog[snap.n_catalog++];
    snprintf(e->scope, sizeof e->scope, "SECURE");
    snprintf(e->gpu_type, sizeof e->gpu_type, "%s", type);
    e->stock = stock;
    e->availability = stock == GPU_STOCK_IN    ? GPU_LEVEL_HIGH
                      : stock == GPU_STOCK_OUT ? GPU_LEVEL_NONE
                                               : GPU_LEVEL_UNKNOWN;
    e->price_per_hr = price;
}

static void stat(const char *type, long long samples, double median)
{
    SnapGpuStat *s = &snap.gpu_stats[snap.n_gpu_stats++];
    snprintf(s->pool, sizeof s->pool, "default");
    snprintf(s->gpu_type, sizeof s->gpu_type, "%s", type);
    s->samples = samples;
    s->median_sec = median;
    snap.gpu_stats_loaded = true;
}

static void backoff(const char *type, long long sec)
{
    SnapGpuBackoff *b = &snap.backoffs[snap.n_backoffs++];
    snprintf(b->gpu_type, sizeof b->gpu_type, "%s", type);
    b->remaining_sec = sec;
    b->failures = 1;
}

/* The usable order as "A,B,..." (types without the "GPU-" prefix). */
static const char *order(void)
{
    static char buf[128];
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < choice.n_usable; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", i ? "," : "",
                              choice.c[i].gpu_type + 4);
    return buf;
}

static void decide(GpuChoicePolicy p)
{
    pol.gpu_choice = p;
    const PolicyPool *pp = &pol.pools[0];
    GpuChoiceInput in = {p,        pol.catalog_ttl_sec, pol.value_min_samples, pp->catalog_scope,
                         pp->name, pp->n_gpu_types,     pp->gpu_types};
    gpu_choice_decide(&in, &snap, &choice);
}

/* A fresh catalog: A $0.90 in, B $0.40 out, C $0.50 in, D $0.30 stock unknown. */
static void standard_catalog(void)
{
    catalog_read(30, false);
    catalog_entry(A, GPU_STOCK_IN, 0.90);
    catalog_entry(B, GPU_STOCK_OUT, 0.40);
    catalog_entry(C, GPU_STOCK_IN, 0.50);
    catalog_entry(D, GPU_STOCK_UNKNOWN, 0.30);
}

/* ------------------------------------------------------------------------------------------ */
/* gpu_choice_decide                                                                           */

static void setup_fresh(void)
{
    standard_catalog();
}
static void setup_stale(void)
{
    standard_catalog();
    snap.catalog_scopes[0].age_sec = 301;
}
static void setup_failed(void)
{
    standard_catalog();
    snap.catalog_scopes[0].last_failed = true;
}
static void setup_missing(void)
{
    catalog_entry(B, GPU_STOCK_OUT, 0.40); /* rows of another scope's read would not count */
}
static void setup_off(void)
{
    standard_catalog();
    pol.catalog_ttl_sec = 0;
}
static void setup_other_scope(void)
{
    standard_catalog();
    snprintf(pol.pools[0].catalog_scope, sizeof pol.pools[0].catalog_scope, "COMMUNITY");
}
static void setup_backoff(void)
{
    standard_catalog();
    backoff(C, 120);
}
static void setup_all_out(void)
{
    catalog_read(10, false);
    catalog_entry(A, GPU_STOCK_OUT, 0.9);
    catalog_entry(B, GPU_STOCK_OUT, 0.4);
    catalog_entry(C, GPU_STOCK_OUT, 0.5);
    catalog_entry(D, GPU_STOCK_OUT, 0.3);
}
static void setup_unknown_ids(void)
{
    catalog_read(10, false);
    catalog_entry("GPU-X", GPU_STOCK_IN, 0.1);
    catalog_entry("GPU-Y", GPU_STOCK_OUT, 0.2);
}
static void setup_missing_prices(void)
{
    catalog_read(10, false);
    catalog_entry(A, GPU_STOCK_IN, -1);
    catalog_entry(B, GPU_STOCK_IN, 0.7);
    catalog_entry(C, GPU_STOCK_IN, -1);
    catalog_entry(D, GPU_STOCK_IN, 0.6);
}
/* value: A is dearer per hour than C ($0.90 against $0.50) but three times as fast. */
static void setup_value_history(void)
{
    standard_catalog();
    stat(A, 50, 100);   /* 0.90 $/h * 100 s = $0.0250/task */
    stat(C, 50, 300);   /* 0.50 $/h * 300 s = $0.0417/task */
    stat("", 100, 200); /* the pool's median on any type */
}
static void setup_value_few_samples(void)
{
    standard_catalog();
    stat(A, 50, 100);
    stat(C, 3, 20); /* too few: counted at the pool median, 200 s -> $0.0278 */
    stat("", 53, 200);
}
static void setup_value_no_history(void)
{
    standard_catalog();
}

static const struct {
    const char *name;
    void (*setup)(void);
    GpuChoicePolicy policy;
    const char *want;
    CatalogState state;
    size_t out_of_stock, backoff;
} CHOICES[] = {
    {"ordered, fresh: out-of-stock B skipped", setup_fresh, GPU_CHOICE_ORDERED, "A,C,D",
     CATALOG_FRESH, 1, 0},
    {"cheapest: in stock by price, unknown stock last", setup_fresh, GPU_CHOICE_CHEAPEST, "C,A,D",
     CATALOG_FRESH, 1, 0},
    {"stale catalog: configured order, nothing skipped", setup_stale, GPU_CHOICE_CHEAPEST,
     "A,B,C,D", CATALOG_STALE, 0, 0},
    {"failed read: configured order", setup_failed, GPU_CHOICE_CHEAPEST, "A,B,C,D", CATALOG_FAILED,
     0, 0},
    {"never read: configured order", setup_missing, GPU_CHOICE_VALUE, "A,B,C,D", CATALOG_MISSING, 0,
     0},
    {"catalog off: configured order", setup_off, GPU_CHOICE_ORDERED, "A,B,C,D", CATALOG_OFF, 0, 0},
    {"another cloud's read does not count", setup_other_scope, GPU_CHOICE_CHEAPEST, "A,B,C,D",
     CATALOG_MISSING, 0, 0},
    {"capacity backoff still skips C", setup_backoff, GPU_CHOICE_CHEAPEST, "A,D", CATALOG_FRESH, 1,
     1},
    {"everything out of stock: nothing to try", setup_all_out, GPU_CHOICE_CHEAPEST, "",
     CATALOG_FRESH, 4, 0},
    {"only unknown ids listed: configured order", setup_unknown_ids, GPU_CHOICE_CHEAPEST, "A,B,C,D",
     CATALOG_FRESH, 0, 0},
    {"missing prices go after the priced", setup_missing_prices, GPU_CHOICE_CHEAPEST, "D,B,A,C",
     CATALOG_FRESH, 0, 0},
    {"value: A is cheaper per task though dearer per hour", setup_value_history, GPU_CHOICE_VALUE,
     "A,C,D", CATALOG_FRESH, 1, 0},
    {"value: too few samples count at the pool median", setup_value_few_samples, GPU_CHOICE_VALUE,
     "A,C,D", CATALOG_FRESH, 1, 0},
    {"value without history: by price", setup_value_no_history, GPU_CHOICE_VALUE, "C,A,D",
     CATALOG_FRESH, 1, 0},
    {"cheapest ignores the history", setup_value_history, GPU_CHOICE_CHEAPEST, "C,A,D",
     CATALOG_FRESH, 1, 0},
};

START_TEST(test_gpu_choice_order)
{
    reset();
    CHOICES[_i].setup();
    decide(CHOICES[_i].policy);
    ck_assert_msg(strcmp(order(), CHOICES[_i].want) == 0, "%s: got %s, want %s", CHOICES[_i].name,
                  order(), CHOICES[_i].want);
    ck_assert_msg(choice.catalog == CHOICES[_i].state, "%s: catalog %s", CHOICES[_i].name,
                  catalog_state_str(choice.catalog));
    ck_assert_msg(choice.n_out_of_stock == CHOICES[_i].out_of_stock &&
                      choice.n_backoff == CHOICES[_i].backoff,
                  "%s: %zu out, %zu backoff", CHOICES[_i].name, choice.n_out_of_stock,
                  choice.n_backoff);
    ck_assert_uint_eq(choice.n, 4); /* every candidate is reported, skipped ones last */
    char line[512];
    gpu_choice_describe(&choice, line, sizeof line);
    ck_assert_msg(strstr(line, gpu_choice_policy_str(CHOICES[_i].policy)) == line, "%s", line);
}
END_TEST

/* The inputs of the value decision are reported with it. */
START_TEST(test_gpu_choice_value_inputs)
{
    reset();
    setup_value_few_samples();
    decide(GPU_CHOICE_VALUE);
    const GpuCandidate *a = &choice.c[0], *c = &choice.c[1];
    ck_assert_str_eq(a->gpu_type, A);
    ck_assert(a->own_median && a->samples == 50 && a->est_sec == 100);
    ck_assert_double_eq_tol(a->usd_per_task, 0.90 * 100 / 3600, 1e-12);
    ck_assert_str_eq(c->gpu_type, C);
    ck_assert(!c->own_median && c->samples == 3 && c->median_sec == 20 && c->est_sec == 200);
    ck_assert_double_eq_tol(c->usd_per_task, 0.50 * 200 / 3600, 1e-12);
    char line[512];
    gpu_choice_describe(&choice, line, sizeof line);
    ck_assert_msg(strstr(line, "GPU-A $0.900/h $0.0250/task (median 100s, n=50) in stock") &&
                      strstr(line, "pool median 200s, n=3") &&
                      strstr(line, "; skipped: GPU-B $0.400/h") && strstr(line, " out of stock"),
                  "%s", line);
    /* a tiny buffer truncates, never overflows */
    char small[16];
    gpu_choice_describe(&choice, small, sizeof small);
    ck_assert_uint_eq(strlen(small), sizeof small - 1);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* The planner                                                                                 */

static void queue(long long n)
{
    snap.n_run_types = 1;
    snprintf(snap.run_types[0].name, sizeof snap.run_types[0].name, "gpu");
    snap.run_types[0].claimable = snap.run_types[0].queued = n;
    snap.queued_claimable = snap.queued_total = n;
}

static size_t spawns(void)
{
    return plan_count(&plan, ACTION_SPAWN_WORKER);
}

/* The plan never tries an out-of-stock type, and its spawn says which type goes first. */
START_TEST(test_gpu_choice_planner_stock)
{
    reset();
    pol.gpu_choice = GPU_CHOICE_CHEAPEST;
    standard_catalog();
    queue(2);
    planner_decide(&snap, &pol, &plan);
    ck_assert_uint_eq(spawns(), 2);
    const PlanPool *pp = &plan.pools[0];
    ck_assert_uint_eq(pp->n_gpu_types, 3);
    for (size_t g = 0; g < pp->n_gpu_types; g++)
        ck_assert_str_ne(pp->gpu_types[g], B);
    ck_assert_str_eq(pp->gpu_types[0], C);
    ck_assert_msg(strstr(plan.actions[0].detail, "gpu cheapest: GPU-C $0.500/h"), "%s",
                  plan.actions[0].detail);

    /* every type out of stock: nothing is spawned, and the plan says why */
    reset();
    setup_all_out();
    queue(2);
    planner_decide(&snap, &pol, &plan);
    ck_assert_uint_eq(spawns(), 0);
    ck_assert_int_eq(plan.pools[0].spawn_limit, SPAWN_LIMIT_OUT_OF_STOCK);
    ck_assert_str_eq(spawn_limit_str(plan.spawn_limit), "out_of_stock");

    /* the same catalog, failed: the configured order, never nothing */
    reset();
    setup_all_out();
    snap.catalog_scopes[0].last_failed = true;
    queue(2);
    planner_decide(&snap, &pol, &plan);
    ck_assert_uint_eq(spawns(), 2);
    ck_assert_str_eq(plan.pools[0].gpu_types[0], A);
    ck_assert_msg(strstr(plan.actions[0].detail, "(catalog failed: configured order): GPU-A"), "%s",
                  plan.actions[0].detail);
}
END_TEST

/* RunPod's rate limit: creates beyond remaining - reserve - the plan's other calls wait (a failed
 * worker's termination is two: its log tail, then its pod); the planned terminations are all
 * there. */
static const struct {
    const char *name, *limit;
    long long terminations, queued;
    size_t want_spawns;
    long long deferred;
    SpawnLimit limit_reason;
} RATE[] = {
    {"no header: no limit", NULL, 0, 5, 5, 0, SPAWN_LIMIT_NONE},
    {"plenty left", "\"m\";r=50;t=30", 2, 5, 5, 0, SPAWN_LIMIT_NONE},
    {"9 left, reserve 2, 3 failed workers (log tail + termination each): 1 create",
     "\"m\";r=9;t=30", 3, 5, 1, 4, SPAWN_LIMIT_RATE_LIMIT},
    {"12 left, reserve 2, 3 failed workers: 4 creates", "\"m\";r=12;t=30", 3, 5, 4, 1,
     SPAWN_LIMIT_RATE_LIMIT},
    {"4 left: the terminations take it all", "\"m\";r=4;t=30", 3, 5, 0, 5, SPAWN_LIMIT_RATE_LIMIT},
    {"nothing left", "\"m\";r=0;t=30", 0, 5, 0, 5, SPAWN_LIMIT_RATE_LIMIT},
    {"exactly enough", "\"m\";r=7;t=30", 0, 5, 5, 0, SPAWN_LIMIT_NONE},
    {"malformed header: no proactive limit", "\"m\";r=-3", 0, 5, 5, 0, SPAWN_LIMIT_NONE},
};

START_TEST(test_gpu_choice_planner_rate_limit)
{
    reset();
    queue(RATE[_i].queued);
    ratelimit_parse(RATE[_i].limit, NULL, &snap.quota);
    snap.quota.age_sec = 1;
    /* error workers whose pods are terminated this cycle */
    for (long long t = 0; t < RATE[_i].terminations; t++) {
        SnapWorker *w = &snap.workers[snap.n_workers++];
        memset(w, 0, sizeof *w);
        snprintf(w->id, sizeof w->id, "gpu-err-%lld", t);
        snprintf(w->pool, sizeof w->pool, "default");
        snprintf(w->runpod_id, sizeof w->runpod_id, "pod%lld", t);
        w->state = WORKER_ERROR;
        w->age_sec = 1000;
        w->heartbeat_age_sec = w->promoted_age_sec = w->activity_age_sec = -1;
        w->terminating_age_sec = w->oldest_task_age_sec = w->create_unknown_age_sec = -1;
        w->vram_total_mb = w->vram_used_mb = w->pod_age_sec = -1;
    }
    planner_decide(&snap, &pol, &plan);
    const char *name = RATE[_i].name;
    ck_assert_msg(plan_count(&plan, ACTION_TERMINATE_WORKER) == (size_t)RATE[_i].terminations,
                  "%s: terminations", name);
    ck_assert_msg(spawns() == RATE[_i].want_spawns, "%s: %zu spawns", name, spawns());
    ck_assert_msg(plan.rate_deferred == RATE[_i].deferred, "%s: deferred %lld", name,
                  plan.rate_deferred);
    ck_assert_msg(plan.pools[0].spawn_limit == RATE[_i].limit_reason, "%s: limit %s", name,
                  spawn_limit_str(plan.pools[0].spawn_limit));
    /* terminations come before the spawns in the plan */
    for (size_t i = 0; i < plan.count; i++)
        if (plan.actions[i].kind == ACTION_SPAWN_WORKER)
            for (size_t k = i; k < plan.count; k++)
                ck_assert_int_ne(plan.actions[k].kind, ACTION_TERMINATE_WORKER);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Configuration                                                                               */

static Status parse(const char *const *env, Config *cfg, ConfigErrors *errs)
{
    return config_parse(env, "host", CONFIG_NEED_NOTHING, cfg, errs);
}

static bool has_error(const ConfigErrors *errs, const char *needle)
{
    for (size_t i = 0; i < errs->count; i++)
        if (strstr(errs->messages[i], needle))
            return true;
    return false;
}

START_TEST(test_gpu_choice_config)
{
    Config *cfg = calloc(1, sizeof *cfg);
    ConfigErrors *errs = calloc(1, sizeof *errs);
    ck_assert(cfg && errs);
    const char *none[] = {NULL};
    ck_assert_int_eq(parse(none, cfg, errs), STATUS_OK);
    ck_assert_str_eq(cfg->runpod_gpu_choice, "ordered");
    ck_assert_int_eq(cfg->runpod_catalog_ttl_sec, 300);
    ck_assert_int_eq(cfg->runpod_value_min_samples, 20);
    ck_assert_int_eq(cfg->runpod_value_window_hours, 168);
    ck_assert_int_eq(cfg->runpod_rate_limit_reserve, 10);
    Policy p;
    policy_from_config(cfg, &p);
    ck_assert_int_eq(p.gpu_choice, GPU_CHOICE_ORDERED);
    ck_assert_str_eq(p.pools[0].catalog_scope, "SECURE");

    const char *value[] = {"RUNPOD_GPU_CHOICE=value", "RUNPOD_VALUE_MIN_SAMPLES=3",
                           "RUNPOD_DATA_CENTER_IDS=EU-RO-1", "RUNPOD_CLOUD_TYPE=COMMUNITY", NULL};
    ck_assert_int_eq(parse(value, cfg, errs), STATUS_OK);
    policy_from_config(cfg, &p);
    ck_assert_int_eq(p.gpu_choice, GPU_CHOICE_VALUE);
    ck_assert_int_eq(p.value_min_samples, 3);
    ck_assert(strncmp(p.pools[0].catalog_scope, "COMMUNITY@", 10) == 0);

    const char *bad[] = {"RUNPOD_GPU_CHOICE=fastest", "RUNPOD_CATALOG_TTL_SEC=-1",
                         "RUNPOD_VALUE_MIN_SAMPLES=0", "RUNPOD_RATE_LIMIT_RESERVE=abc", NULL};
    ck_assert_int_eq(parse(bad, cfg, errs), STATUS_ERR_CONFIG);
    ck_assert(has_error(errs, "RUNPOD_GPU_CHOICE"));
    ck_assert(has_error(errs, "RUNPOD_CATALOG_TTL_SEC"));
    ck_assert(has_error(errs, "RUNPOD_VALUE_MIN_SAMPLES"));
    ck_assert(has_error(errs, "RUNPOD_RATE_LIMIT_RESERVE"));

    const char *no_catalog[] = {"RUNPOD_GPU_CHOICE=cheapest", "RUNPOD_CATALOG_TTL_SEC=0", NULL};
    ck_assert_int_eq(parse(no_catalog, cfg, errs), STATUS_ERR_CONFIG);
    ck_assert(has_error(errs, "needs RunPod's GPU catalog"));
    const char *ordered_off[] = {"RUNPOD_CATALOG_TTL_SEC=0", NULL};
    ck_assert_int_eq(parse(ordered_off, cfg, errs), STATUS_OK);
    free(cfg);
    free(errs);
}
END_TEST

static Suite *gpu_choice_suite(void)
{
    Suite *s = suite_create("gpu_choice");
    TCase *tc = tcase_create("test_gpu_choice_decide");
    tcase_add_loop_test(tc, test_gpu_choice_order, 0, (int)ARRAY_LEN(CHOICES));
    tcase_add_test(tc, test_gpu_choice_value_inputs);
    suite_add_tcase(s, tc);
    tc = tcase_create("test_gpu_choice_planner");
    tcase_add_test(tc, test_gpu_choice_planner_stock);
    tcase_add_loop_test(tc, test_gpu_choice_planner_rate_limit, 0, (int)ARRAY_LEN(RATE));
    suite_add_tcase(s, tc);
    tc = tcase_create("test_gpu_choice_config");
    tcase_add_test(tc, test_gpu_choice_config);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(gpu_choice_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
