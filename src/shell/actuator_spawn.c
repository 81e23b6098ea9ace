/* actuator_spawn.c -- the spawn path of the actuator (internal to it; actuator_int.h).
 *
 * Shell module. The plan's spawns come last and run concurrently: starts of stopped pods first,
 * then creates, register-before-create (the worker row exists, spawning and without a pod id,
 * before the pod is requested, and the pod is named after it), in waves held to the spend caps
 * and RunPod's rate limit, each outcome recorded.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uuid/uuid.h>

#include "actuator_int.h"
#include "db.h"
#include "lease.h"
#include "log.h"
#include "runpod.h"
#include "runpod_catalog.h"
#include "worker_name.h"
#include "worker_token.h"

#ifdef ORCH_TEST_HOOKS
/* Crash points for the fault-injection tests: ORCH_TEST_CRASH_AT=<name> kills the process. */
static void crash_point(const char *name)
{
    const char *at = getenv("ORCH_TEST_CRASH_AT");
    if (at && strcmp(at, name) == 0) {
        log_warn("test.crash_point", "point=%s", name);
        raise(SIGKILL);
    }
}
#else
#define crash_point(name) ((void)0)
#endif

/* ------------------------------------------------------------------------------------------ */
/* Spawns                                                                                      */

/* A fresh worker id (= pod name): the UTC time and 4 random bytes (worker_name.h). */
static void make_worker_id(const char *prefix, char out[SNAP_WORKER_ID_MAX])
{
    uuid_t u;
    uuid_generate_random(u);
    if (!worker_name_format(prefix, (long long)time(NULL), u, out, SNAP_WORKER_ID_MAX))
        snprintf(out, SNAP_WORKER_ID_MAX, "%s",
                 prefix); /* cannot happen: the prefix is <= 24 chars */
}

/* Sets name=value in the pod's environment: a later value of the same name replaces the earlier
 * (a pool's ENV_<VAR> overrides WORKER_ENV_<VAR>). The configuration is validated to fit
 * POD_CREATE_MAX_ENV (config_pools.c), so nothing is dropped. */
static void add_env(PodCreateSpec *spec, const char *name, const char *value)
{
    for (size_t i = 0; i < spec->n_env; i++)
        if (strcmp(spec->env[i].name, name) == 0) {
            snprintf(spec->env[i].value, sizeof spec->env[0].value, "%s", value);
            return;
        }
    if (spec->n_env >= POD_CREATE_MAX_ENV)
        return;
    snprintf(spec->env[spec->n_env].name, sizeof spec->env[0].name, "%s", name);
    snprintf(spec->env[spec->n_env].value, sizeof spec->env[0].value, "%s", value);
    spec->n_env++;
}

/* The pod of worker_id in pool: the pool's image, GPU types, cloud and disk, the fleet's ports,
 * data centers and volume, and the environment. */
static void build_spec(const Config *cfg, const PoolConfig *pool, const char *worker_id,
                       PodCreateSpec *spec)
{
    memset(spec, 0, sizeof *spec);
    snprintf(spec->name, sizeof spec->name, "%s", worker_id);
    snprintf(spec->image, sizeof spec->image, "%s", pool->worker_image);
    snprintf(spec->gpu_type, sizeof spec->gpu_type, "%s", pool->gpu_types.items[0]);
    snprintf(spec->cloud, sizeof spec->cloud, "%s", pool->cloud_type);
    spec->disk_gb = pool->container_disk_gb;
    for (size_t i = 0; i < cfg->runpod_ports.count && i < POD_CREATE_MAX_PORTS; i++)
        snprintf(spec->ports[spec->n_ports++], sizeof spec->ports[0], "%.31s",
                 cfg->runpod_ports.items[i]);
    for (size_t i = 0; i < cfg->runpod_data_center_ids.count && i < POD_CREATE_MAX_DCS; i++)
        snprintf(spec->data_center_ids[spec->n_data_center_ids++], sizeof spec->data_center_ids[0],
                 "%.63s", cfg->runpod_data_center_ids.items[i]);
    snprintf(spec->network_volume_id, sizeof spec->network_volume_id, "%s",
             cfg->runpod_network_volume_id);
    snprintf(spec->volume_mount_path, sizeof spec->volume_mount_path, "%s",
             cfg->runpod_volume_mount_path);
    /* The pod's environment: exactly what the operator passed through WORKER_ENV_*, then the
     * pool's POOL_<NAME>_ENV_* (a repeated name keeps the pool's value), then what only the
     * orchestrator may set, last so nothing replaces it: the worker id, its pool and, with the
     * gateway configured, its URL and the pod's own token (issue 13). Nothing of the
     * orchestrator's own secrets. */
    for (size_t i = 0; i < cfg->n_worker_env; i++)
        add_env(spec, cfg->worker_env[i].name, cfg->worker_env[i].value);
    for (size_t i = 0; i < pool->n_env; i++)
        add_env(spec, pool->env[i].name, pool->env[i].value);
    add_env(spec, "WORKER_ID", worker_id);
    add_env(spec, "WORKER_POOL", pool->name);
    if (cfg->gateway_public_url[0] && cfg->gateway_jwt_secret[0]) {
        char token[sizeof spec->env[0].value];
        if (worker_token_mint(cfg->gateway_jwt_secret, worker_id, (long long)time(NULL), token,
                              sizeof token) == STATUS_OK) {
            add_env(spec, "WORKER_API_URL", cfg->gateway_public_url);
            add_env(spec, "WORKER_TOKEN", token);
        }
    }
}

/* The cloud a pod of pool p was created in (its price is that cloud's price); NULL for a pod of
 * no configured pool, whose price is then not recorded as any cloud's. */
const char *actuator_pool_cloud(const Config *cfg, int p)
{
    return p >= 0 && (size_t)p < cfg->n_pools ? cfg->pools[p].cloud_type : NULL;
}

/* A created (or found) pod: record its id on the row, or compensate when the row changed. */
static void record_created(App *app, ActResult *res, const Action *proto, const char *id,
                           const PodCreateResult *r)
{
    bool applied = false;
    Status dst =
        db_record_pod(app->conn, id, r->pod.id, r->gpu_type_used,
                      actuator_pool_cloud(app->cfg, proto->pool), r->pod.cost_per_hr, &applied);
    if (dst != STATUS_OK) {
        /* The pod exists and is named after the row: the next reconcile adopts it. */
        res->db_failed = true;
        actuator_record(res, proto, id, "failed", "pod created; recording its id failed");
        return;
    }
    if (!applied) {
        /* The row changed meanwhile (failed by another actor): do not leak the pod. */
        log_warn("pod.compensate",
                 "worker_id=%s pod_id=%s msg=\"worker row changed during create; terminating "
                 "the new pod\"",
                 id, r->pod.id);
        actuator_terminate_pod(app, res, r->pod.id, id, "compensate");
        actuator_record(res, proto, id, "skipped", "worker row changed during create");
        res->skipped++;
        return;
    }
    db_clear_capacity_backoff(app->conn, r->gpu_type_used);
    log_info("pod.created",
             "worker_id=%s pod_id=%s gpu_type=%s cost_per_hr=%.3f attempts=%d found_existing=%s",
             id, r->pod.id, r->gpu_type_used, r->pod.cost_per_hr, r->info.attempts,
             r->found_existing ? "true" : "false");
    res->workers_spawned++;
    Action a = *proto;
    snprintf(a.pod_id, sizeof a.pod_id, "%s", r->pod.id);
    actuator_record(res, &a, id, "applied", r->gpu_type_used);
}

/* A create whose outcome is unknown: the pod may exist or still appear. The row stays spawning
 * (it holds its slot under MAX_ACTIVE_GPUS); the next cycle adopts the pod by name, or fails
 * the row after SPAWN_POD_ID_GRACE_SEC ("No Runpod ID"). */
static void record_unknown(App *app, ActResult *res, const Action *proto, const char *id,
                           const PodCreateResult *r)
{
    char msg[PLAN_DETAIL_MAX];
    snprintf(msg, sizeof msg,
             "create outcome unknown (%s): kept spawning, adopted by name or failed after "
             "SPAWN_POD_ID_GRACE_SEC",
             runpod_error_str(r->info.error));
    log_warn("pod.create_unknown", "worker_id=%s error=%s detail=%s", id,
             runpod_error_str(r->info.error), r->info.detail);
    char clean[sizeof r->info.detail];
    log_scrub(r->info.detail, clean, sizeof clean);
    if (db_mark_create_unknown(app->conn, id, clean) != STATUS_OK &&
        PQstatus(app->conn) != CONNECTION_OK)
        res->db_failed = true;
    res->spawn_failures++;
    res->failed++;
    actuator_record(res, proto, id, "unknown", msg);
    actuator_add_error(res, msg);
}

/* Not created: the row fails (unexpectedly, unless RunPod had no capacity or rate-limited). */
static void record_not_created(App *app, ActResult *res, const Action *proto, const char *id,
                               const PodCreateResult *r)
{
    RunpodErrorClass ec = r->info.error;
    /* No capacity, or a rate limit that outlasted the retries: RunPod said no, the worker did
     * not fail. Neither counts toward the circuit breaker. */
    bool expected = ec == RP_NO_CAPACITY || ec == RP_RATE_LIMITED;
    char raw[PLAN_DETAIL_MAX], reason[PLAN_DETAIL_MAX];
    snprintf(raw, sizeof raw, "Failed to spawn Runpod instance: %s%s%.100s", runpod_error_str(ec),
             r->info.detail[0] ? ": " : "", r->info.detail);
    log_scrub(raw, reason, sizeof reason); /* RunPod's detail goes into the row's metadata */
    log_error("pod.create_failed", "worker_id=%s error=%s http_status=%d detail=%s", id,
              runpod_error_str(ec), r->info.http_status, r->info.detail);
    if (ec == RP_AUTH)
        res->api_auth_failed = true;
    if (ec == RP_BALANCE)
        res->api_balance_failed = true;
    if (ec == RP_RETIRED)
        res->api_retired = true;
    bool applied = false;
    if (db_fail_worker(app->conn, id, WORKER_SPAWNING, reason, !expected, &applied) != STATUS_OK &&
        PQstatus(app->conn) != CONNECTION_OK)
        res->db_failed = true;
    res->spawn_failures++;
    if (r->deferred) { /* the quota ran out mid-create: RunPod said nothing wrong */
        res->spawns_deferred++;
        actuator_record(res, proto, id, "deferred", reason);
        return;
    }
    if (ec != RP_NO_CAPACITY)
        res->failed++;
    actuator_record(res, proto, id, ec == RP_NO_CAPACITY ? "no_capacity" : "failed", reason);
    actuator_add_error(res, reason);
}

/* Records a no-capacity answer once per GPU type per cycle, however many concurrent creates
 * got it: the backoff doubles per cycle that found no capacity, not per request. */
static void record_capacity(App *app, ActResult *res, const PodCreateResult *results, size_t n,
                            char (*ids)[SNAP_WORKER_ID_MAX])
{
    const Config *cfg = app->cfg;
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < results[i].n_no_capacity; k++) {
            const char *type = results[i].no_capacity_types[k];
            bool seen = false;
            for (size_t j = 0; j <= i && !seen; j++)
                for (size_t m = 0; m < results[j].n_no_capacity && !seen; m++)
                    seen = (j < i || m < k) && strcmp(results[j].no_capacity_types[m], type) == 0;
            log_warn("gpu.no_capacity", "gpu_type=%s worker_id=%s", type, ids[i]);
            if (seen)
                continue;
            if (db_record_capacity_failure(app->conn, type, cfg->capacity_backoff_base_sec,
                                           cfg->capacity_backoff_max_sec,
                                           "no capacity") != STATUS_OK &&
                PQstatus(app->conn) != CONNECTION_OK)
                res->db_failed = true;
        }
}

/* Records one create's outcome: created, unknown or not created. */
static void record_spawn(App *app, ActResult *res, const Action *proto, const char *id,
                         const PodCreateResult *r)
{
    if (r->status == STATUS_OK && r->pod.id[0])
        record_created(app, res, proto, id, r);
    else if (r->outcome_unknown)
        record_unknown(app, res, proto, id, r);
    else
        record_not_created(app, res, proto, id, r);
}

/* The spend caps while the creates of a cycle learn what RunPod really charges. The planner
 * sized the spawns by the last price on record for each pool's GPU types (gpu_prices), which may
 * be stale (a list price moved, a community host prices its own GPUs). Near a cap the creates
 * therefore go in waves of 1, 2, 4, ...: after each wave the real prices replace the estimates,
 * a pool's estimate rises to the dearest price it was just charged, and a spawn that no longer
 * fits under MAX_HOURLY_SPEND_USD (fleet or pool) is not made. Far from the caps (every planned
 * pod fits at twice its estimate) all creates go at once, as before. */
typedef struct {
    double fleet_cap, fleet_cost; /* cap 0 = off */
    double pool_cap[PLAN_POOLS_MAX], pool_cost[PLAN_POOLS_MAX];
    double est[PLAN_POOLS_MAX]; /* what a new pod of the pool is taken to cost; 0 unknown */
    bool on;
} Budget;

static void budget_init(Budget *b, const Config *cfg, const Plan *plan)
{
    memset(b, 0, sizeof *b);
    b->fleet_cap = cfg->max_hourly_spend_usd;
    b->fleet_cost = plan->fleet_cost_per_hr;
    b->on = b->fleet_cap > 0;
    for (size_t p = 0; p < plan->n_pools && p < cfg->n_pools; p++) {
        b->pool_cap[p] = cfg->pools[p].max_hourly_spend_usd;
        b->pool_cost[p] = plan->pools[p].cost_per_hr;
        b->est[p] = plan->pools[p].price_bound > 0 ? plan->pools[p].price_bound : 0;
        b->on = b->on || b->pool_cap[p] > 0;
    }
}

/* Whether `count` more pods of pool p, each at `factor` times its estimate, stay under both
 * caps. */
static bool budget_fits(const Budget *b, int p, double count, double factor)
{
    double add = count * factor * b->est[p];
    if (b->fleet_cap > 0 && b->fleet_cost + add > b->fleet_cap + 1e-9)
        return false;
    return !(b->pool_cap[p] > 0 && b->pool_cost[p] + add > b->pool_cap[p] + 1e-9);
}

static void budget_add(Budget *b, int p, double usd)
{
    b->fleet_cost += usd;
    b->pool_cost[p] += usd;
}

/* Whether all of todo[0..m) fit at twice their estimates: then one wave is safe enough. */
static bool budget_roomy(const Budget *b, const Action *const *todo, size_t m)
{
    double count[PLAN_POOLS_MAX] = {0};
    for (size_t k = 0; k < m; k++)
        count[todo[k]->pool]++;
    Budget t = *b;
    for (size_t p = 0; p < PLAN_POOLS_MAX; p++) {
        if (count[p] == 0)
            continue;
        if (!budget_fits(&t, (int)p, count[p], 2.0))
            return false;
        budget_add(&t, (int)p, count[p] * 2.0 * t.est[p]);
    }
    return true;
}

/* After a wave: the real price of each pod created replaces its estimate, and its pool's
 * estimate rises to it when it was dearer. */
static void budget_learn(Budget *b, const Action *const *wave, const PodCreateResult *results,
                         size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int p = wave[i]->pool;
        double paid =
            results[i].status == STATUS_OK && results[i].pod.id[0] ? results[i].pod.cost_per_hr : 0;
        if (paid > 0) {
            budget_add(b, p, paid - b->est[p]);
            if (paid > b->est[p])
                b->est[p] = paid;
        } else if (!(results[i].status == STATUS_OK || results[i].outcome_unknown)) {
            budget_add(b, p, -b->est[p]); /* not created: costs nothing */
        }
    }
}

/* The starts among todo[0..m) (in plan order), before any create: each start RunPod refused
 * becomes a create in its slot (a copy of the action in fallback); a start that happened, or
 * may have (outcome unknown), adds its pod's price to started_cost[pool] for the spend caps.
 * Returns the new m: todo then holds the creates only, in plan order, the fallbacks last. */
static size_t start_stopped(App *app, const Plan *plan, ActResult *res, const Action **todo,
                            size_t m, Action *fallback, double *started_cost)
{
    size_t kept = 0, nf = 0;
    for (size_t k = 0; k < m; k++) {
        const Action *a = todo[k];
        if (a->kind != ACTION_START_WORKER || res->db_failed || res->lease_lost)
            continue;
        long long before = res->workers_started + res->failed;
        if (actuator_start_worker(app, a, res) && plan->pools[a->pool].n_gpu_types > 0) {
            Action *f = &fallback[nf++];
            *f = *a;
            f->kind = ACTION_SPAWN_WORKER;
            f->worker_id[0] = f->pod_id[0] = '\0';
            snprintf(f->detail, sizeof f->detail, "created: the start of %.64s was refused",
                     a->worker_id);
        } else if (res->workers_started + res->failed > before) {
            started_cost[a->pool] +=
                a->cost_per_hr > 0 ? a->cost_per_hr : plan->pools[a->pool].price_bound;
        }
    }
    for (size_t k = 0; k < m; k++)
        if (todo[k]->kind == ACTION_SPAWN_WORKER)
            todo[kept++] = todo[k];
    for (size_t f = 0; f < nf; f++)
        todo[kept++] = &fallback[f];
    return kept;
}

/* The spawns of the plan, less as many as planned terminations did not happen (cut[p] for pool
 * p, cut_fleet for pods of no pool). Each wave: fence check, rows first, then the creates, then
 * each outcome recorded. Returns STATUS_OK, STATUS_ERR_NOMEM, STATUS_ERR_CONFIG (no client) or
 * STATUS_ERR_DB; the outcome of each create is in res. */
/* RunPod's rate limit as this cycle's own calls left it (the terminations ran first): spawns
 * beyond what the quota allows after RUNPOD_RATE_LIMIT_RESERVE wait for a later cycle, the
 * last of the plan first, before any row is registered. todo[0..m) holds the spawns from the
 * plan's end. Returns how many may go ahead (moved to todo[0..)). */
static size_t defer_over_quota(App *app, ActResult *res, const Action **todo, size_t m)
{
    long long allow = runpod_client_create_allowance(app->rp);
    if (allow < 0 || (long long)m <= allow)
        return m;
    size_t keep = (size_t)allow, cut = m - keep;
    RunpodRateSeen seen;
    runpod_client_rate_limit(app->rp, &seen);
    char why[PLAN_DETAIL_MAX];
    snprintf(why, sizeof why,
             "RunPod rate limit: %lld calls left, RUNPOD_RATE_LIMIT_RESERVE %d; next cycle",
             ratelimit_remaining(&seen.quota), app->cfg->runpod_rate_limit_reserve);
    log_warn("scale.spawn_deferred",
             "planned=%zu deferred=%zu remaining=%lld reserve=%d reset_in_sec=%.0f msg=\"RunPod's "
             "rate-limit quota is low: the other spawns wait for a later cycle\"",
             m, cut, ratelimit_remaining(&seen.quota), app->cfg->runpod_rate_limit_reserve,
             ratelimit_reset_in(&seen.quota));
    for (size_t k = 0; k < cut; k++) {
        actuator_record(res, todo[k], "", "deferred", why);
        res->spawns_deferred++;
    }
    memmove(todo, todo + cut, keep * sizeof *todo);
    return keep;
}

Status actuator_apply_spawns(App *app, const Plan *plan, ActResult *res, const long long *cut,
                             long long cut_fleet)
{
    const Config *cfg = app->cfg;
    /* A start of a stopped pod (issue 16) is a slot like a create, and comes before them. */
    size_t n = plan_count(plan, ACTION_SPAWN_WORKER) + plan_count(plan, ACTION_START_WORKER);
    if (n == 0)
        return STATUS_OK;
    Action *fallback = calloc(n, sizeof *fallback);
    const Action **todo = calloc(n, sizeof *todo);
    PodCreateSpec *specs = calloc(n, sizeof *specs);
    PodCreateResult *results = calloc(n, sizeof *results);
    PodCreateJob *jobs = calloc(n, sizeof *jobs);
    char(*ids)[SNAP_WORKER_ID_MAX] = calloc(n, SNAP_WORKER_ID_MAX);
    const char *types[PLAN_POOLS_MAX][PLAN_GPU_TYPES_MAX];
    Status st = STATUS_OK;
    if (!fallback || !todo || !specs || !results || !jobs || !ids) {
        st = STATUS_ERR_NOMEM;
        goto out;
    }
    long long left[PLAN_POOLS_MAX];
    for (size_t p = 0; p < PLAN_POOLS_MAX; p++)
        left[p] = cut[p];
    size_t m = 0;
    for (size_t i = plan->count; i-- > 0;) { /* from the end: the last spawns go first */
        const Action *a = &plan->actions[i];
        if (a->kind != ACTION_SPAWN_WORKER && a->kind != ACTION_START_WORKER)
            continue;
        int p = a->pool;
        if (p < 0 || (size_t)p >= plan->n_pools || (size_t)p >= cfg->n_pools)
            continue; /* cannot happen: a spawn always names a configured pool */
        if (left[p] > 0) {
            left[p]--;
            continue;
        }
        if (cut_fleet > 0) {
            cut_fleet--;
            continue;
        }
        if (a->kind == ACTION_SPAWN_WORKER && plan->pools[p].n_gpu_types == 0)
            continue;
        todo[m++] = a;
    }
    size_t dropped = n - m;
    if (dropped > 0)
        log_warn("scale.spawn_reduced",
                 "planned=%zu reduced_by=%zu msg=\"planned terminations did not happen this "
                 "cycle\"",
                 n, dropped);
    if (m == 0)
        goto out;
    if (!app->rp) {
        actuator_add_error(res, "cannot spawn: no RunPod client (RUNPOD_API_KEY unset)");
        st = STATUS_ERR_CONFIG;
        goto out;
    }
    m = defer_over_quota(app, res, todo, m);
    if (m == 0)
        goto out;
    for (size_t p = 0; p < plan->n_pools; p++)
        for (size_t g = 0; g < plan->pools[p].n_gpu_types; g++)
            types[p][g] = plan->pools[p].gpu_types[g];
    for (size_t a = 0, b = m; a < --b; a++) { /* back in plan order */
        const Action *t = todo[a];
        todo[a] = todo[b];
        todo[b] = t;
    }
    /* Stopped pods first (issue 16): a refused start becomes a create in its slot. */
    double started_cost[PLAN_POOLS_MAX] = {0};
    if (plan_count(plan, ACTION_START_WORKER) > 0 && actuator_fenced(app, res))
        goto out;
    m = start_stopped(app, plan, res, todo, m, fallback, started_cost);
    if (res->db_failed) {
        st = STATUS_ERR_DB;
        goto out;
    }

    Budget budget;
    budget_init(&budget, cfg, plan);
    for (size_t p = 0; p < PLAN_POOLS_MAX; p++)
        if (started_cost[p] > 0) /* a started pod bills its GPU again */
            budget_add(&budget, (int)p, started_cost[p]);
    size_t wave = !budget.on || budget_roomy(&budget, todo, m) ? m : 1;
    size_t next = 0, done = 0, held = 0;
    while (next < m && !res->db_failed && !res->lease_lost) {
        /* 1. This wave's spawns, each still under the caps at its pool's estimate. */
        size_t first = done, w = 0;
        for (; next < m && w < wave; next++) {
            const Action *a = todo[next];
            if (budget.on && !budget_fits(&budget, a->pool, 1, 1.0)) {
                held++;
                actuator_record(
                    res, a, NULL, "spend_cap",
                    "not created: a create of this cycle was charged more than the price on "
                    "record, and the spend cap is reached");
                continue;
            }
            budget_add(&budget, a->pool, budget.est[a->pool]);
            todo[done + w++] = a;
        }
        if (w == 0 || actuator_fenced(app, res))
            break;
        /* 2. Register every worker row of the wave first (only while the lease is ours). */
        size_t registered = 0;
        for (size_t k = 0; k < w; k++) {
            size_t i = first + k;
            const Action *a = todo[i];
            int p = a->pool;
            make_worker_id(cfg->worker_id_prefix, ids[i]);
            const char *holder = NULL, *fence = NULL;
            lease_guard(app->lease, &holder, &fence);
            Status ist = db_insert_spawning_worker(app->conn, ids[i], types[p][0],
                                                   cfg->pools[p].name, holder, fence);
            if (ist == STATUS_ERR_LEASE_LOST) {
                if (!actuator_fenced(app,
                                     res)) { /* logs cycle.lease_lost; expired between the two */
                    res->lease_lost = true;
                    actuator_add_error(res, "cycle lease lost: no further action this cycle");
                }
                break;
            }
            if (ist != STATUS_OK) {
                res->db_failed = true;
                st = STATUS_ERR_DB;
                break;
            }
            build_spec(cfg, &cfg->pools[p], ids[i], &specs[i]);
            jobs[i] = (PodCreateJob){&specs[i], types[p], plan->pools[p].n_gpu_types, &results[i]};
            registered++;
        }
        if (registered == 0)
            break;
        /* 3. Create the wave's pods concurrently. */
        runpod_create_jobs(app->rp, &jobs[first], registered);
        crash_point("after_create");
        /* 4. Record each outcome. */
        record_capacity(app, res, &results[first], registered, &ids[first]);
        for (size_t k = 0; k < registered; k++)
            record_spawn(app, res, todo[first + k], ids[first + k], &results[first + k]);
        budget_learn(&budget, &todo[first], &results[first], registered);
        done += registered;
        wave *= 2;
    }
    if (held > 0)
        log_warn("spend.spawns_held",
                 "planned=%zu created_or_tried=%zu held=%zu fleet_cost_per_hr=%.3f "
                 "max_hourly_spend_usd=%.3f msg=\"RunPod charged more than the price on record; "
                 "the rest would pass the spend cap\"",
                 m, done, held, budget.fleet_cost, budget.fleet_cap);
out:
    free(fallback);
    free(todo);
    free(specs);
    free(results);
    free(jobs);
    free(ids);
    return st;
}
