/* catalog_cycle.c -- the cycle's use of RunPod's GPU catalog and rate limit (see
 * catalog_cycle.h).
 *
 * Shell module: RunPod calls through runpod_catalog.h, rows through db_runpod.h, decisions by
 * the pure catalog.c, gpu_choice.c and ratelimit.c.
 */
#include "catalog_cycle.h"

#include <stdio.h>
#include <string.h>

#include "db_runpod.h"
#include "log.h"
#include "metrics.h"
#include "runpod_catalog.h"

/* ------------------------------------------------------------------------------------------ */
/* The quota                                                                                   */

void catalog_cycle_overlay_quota(App *app, Snapshot *snap)
{
    RunpodRateSeen seen;
    if (!app->rp || !runpod_client_rate_limit(app->rp, &seen))
        return;
    if (seen.header_seen) {
        snap->quota = seen.quota;
    } else if (seen.retry_after_left_sec > 0) {
        /* only a 429 without RateLimit fields: the persisted windows stand, and nothing goes
         * out before its Retry-After */
        snap->quota.retry_after_sec = snap->quota.age_sec + seen.retry_after_left_sec;
    }
}

bool catalog_cycle_quota_spent(const Snapshot *snap)
{
    if (!ratelimit_defer_list(&snap->quota))
        return false;
    log_info("pods.list_deferred",
             "reset_in_sec=%.0f msg=\"RunPod's rate-limit quota is spent: the pod list waits "
             "for the reset; no pod-based decision this cycle\"",
             ratelimit_reset_in(&snap->quota));
    return true;
}

void catalog_cycle_observe_metrics(App *app)
{
    RunpodRateSeen seen;
    if (app->metrics && app->rp && runpod_client_rate_limit(app->rp, &seen) && seen.header_seen)
        metrics_observe_runpod(app->metrics, &seen.quota, NULL);
}

void catalog_cycle_save_quota(App *app)
{
    RunpodRateSeen seen;
    if (app->dry_run || !app->conn || !app->rp || !runpod_client_rate_limit(app->rp, &seen))
        return;
    if (db_save_rate_limit(app->conn, &seen) != STATUS_OK)
        log_warn("ratelimit.save_failed",
                 "msg=\"the next run will not know the quota this one saw\"");
}

/* ------------------------------------------------------------------------------------------ */
/* The catalog                                                                                 */

static SnapCatalogScope *scope_row(Snapshot *snap, const char *scope)
{
    for (size_t i = 0; i < snap->n_catalog_scopes; i++)
        if (strcmp(snap->catalog_scopes[i].scope, scope) == 0)
            return &snap->catalog_scopes[i];
    if (snap->n_catalog_scopes >= SNAP_CATALOG_SCOPES_MAX)
        return NULL;
    SnapCatalogScope *s = &snap->catalog_scopes[snap->n_catalog_scopes++];
    memset(s, 0, sizeof *s);
    snprintf(s->scope, sizeof s->scope, "%s", scope);
    s->age_sec = s->attempt_age_sec = -1;
    return s;
}

/* A read is due when never tried, or last tried RUNPOD_CATALOG_TTL_SEC ago or more (whether
 * that worked or not: at most one read per TTL, and a failing endpoint is not hammered). */
static bool read_due(const Snapshot *snap, const char *scope, long long ttl)
{
    for (size_t i = 0; i < snap->n_catalog_scopes; i++)
        if (strcmp(snap->catalog_scopes[i].scope, scope) == 0)
            return snap->catalog_scopes[i].attempt_age_sec < 0 ||
                   snap->catalog_scopes[i].attempt_age_sec >= ttl;
    return true;
}

static bool configured_type(const Config *cfg, const char *type)
{
    for (size_t p = 0; p < cfg->n_pools; p++)
        for (size_t g = 0; g < cfg->pools[p].gpu_types.count; g++)
            if (strcmp(cfg->pools[p].gpu_types.items[g], type) == 0)
                return true;
    return false;
}

/* The fresh read of scope replaces its entries in the snapshot (configured types only). */
static void put_entries(const Config *cfg, Snapshot *snap, const char *scope,
                        const CatalogList *list)
{
    size_t k = 0;
    for (size_t i = 0; i < snap->n_catalog; i++)
        if (strcmp(snap->catalog[i].scope, scope) != 0)
            snap->catalog[k++] = snap->catalog[i];
    snap->n_catalog = k;
    for (size_t i = 0; i < list->count && snap->n_catalog < SNAP_CATALOG_MAX; i++) {
        const CatalogEntry *e = &list->entries[i];
        if (!configured_type(cfg, e->id))
            continue;
        SnapCatalogEntry *x = &snap->catalog[snap->n_catalog++];
        memset(x, 0, sizeof *x);
        snprintf(x->scope, sizeof x->scope, "%s", scope);
        snprintf(x->gpu_type, sizeof x->gpu_type, "%s", e->id);
        x->stock = e->stock;
        x->availability = e->availability;
        x->price_per_hr = e->price_per_hr;
    }
}

/* Reads the catalog of one scope, records it, and puts it into the snapshot. */
static void read_catalog(App *app, Snapshot *snap, const char *scope, const char *cloud,
                         cJSON *errors)
{
    const Config *cfg = app->cfg;
    const char *dcs[CONFIG_LIST_MAX];
    size_t n_dcs = cfg->runpod_data_center_ids.count;
    for (size_t d = 0; d < n_dcs && d < CONFIG_LIST_MAX; d++)
        dcs[d] = cfg->runpod_data_center_ids.items[d];
    CatalogList list = {0};
    RunpodCallInfo info;
    Status st = runpod_list_gpu_types(app->rp, cloud, dcs, n_dcs, &list, &info);
    SnapCatalogScope *row = scope_row(snap, scope);
    metrics_count_catalog_read(app->metrics, st == STATUS_OK);
    if (st == STATUS_OK) {
        size_t in = 0, out = 0;
        for (size_t i = 0; i < list.count; i++) {
            in += list.entries[i].stock == GPU_STOCK_IN;
            out += list.entries[i].stock == GPU_STOCK_OUT;
        }
        log_info("catalog.read",
                 "scope=%s cloud=%s gpu_types=%zu in_stock=%zu out_of_stock=%zu skipped=%zu "
                 "partial=%zu attempts=%d",
                 scope, cloud, list.count, in, out, list.skipped, list.partial, info.attempts);
        for (size_t i = 0; i < list.n_problems; i++)
            log_warn("catalog.entry_defect",
                     "scope=%s detail=%s msg=\"the entry is skipped or the field counts as "
                     "unknown; unknown stock never removes a GPU type\"",
                     scope, list.problems[i]);
        if (!app->dry_run && app->conn &&
            db_save_catalog(app->conn, scope, cloud, &list, NULL) != STATUS_OK)
            log_warn("catalog.save_failed", "scope=%s msg=\"the next run reads it again\"", scope);
        put_entries(cfg, snap, scope, &list);
        if (row) {
            row->age_sec = row->attempt_age_sec = 0;
            row->last_failed = false;
            row->error[0] = '\0';
        }
    } else {
        char why[sizeof info.detail + 64];
        snprintf(why, sizeof why, "%s (HTTP %d)%s%.300s", runpod_error_str(info.error),
                 info.http_status, info.detail[0] ? ": " : "", info.detail);
        log_warn("catalog.read_failed",
                 "scope=%s cloud=%s error=%s http_status=%d detail=%s msg=\"GPU types are tried "
                 "in the configured order (no stock check) until a read succeeds; the next read "
                 "in RUNPOD_CATALOG_TTL_SEC\"",
                 scope, cloud, runpod_error_str(info.error), info.http_status, info.detail);
        char msg[200];
        snprintf(msg, sizeof msg, "GPU catalog read failed (%s): configured GPU order this cycle",
                 runpod_error_str(info.error));
        if (errors)
            cJSON_AddItemToArray(errors, cJSON_CreateString(msg));
        if (!app->dry_run && app->conn &&
            db_save_catalog(app->conn, scope, cloud, NULL, why) != STATUS_OK)
            log_warn("catalog.save_failed", "scope=%s", scope);
        if (row) {
            row->attempt_age_sec = 0;
            row->last_failed = true;
            snprintf(row->error, sizeof row->error, "%s", runpod_error_str(info.error));
        }
    }
    catalog_list_clear(&list);
}

bool catalog_cycle_prepare(App *app, Snapshot *snap, const Policy *pol, const Plan *plan,
                           cJSON *errors)
{
    const Config *cfg = app->cfg;
    bool changed = false, spawning = false;
    for (size_t p = 0; p < plan->n_pools && p < cfg->n_pools && p < pol->n_pools; p++) {
        if (plan->pools[p].to_spawn <= 0)
            continue;
        spawning = true;
        const char *scope = pol->pools[p].catalog_scope;
        if (pol->catalog_ttl_sec <= 0 || !app->rp || !read_due(snap, scope, pol->catalog_ttl_sec))
            continue;
        read_catalog(app, snap, scope, cfg->pools[p].cloud_type, errors);
        changed = true; /* the scope is no longer due: read once per cycle */
    }
    if (spawning && pol->gpu_choice == GPU_CHOICE_VALUE && !snap->gpu_stats_loaded && app->conn) {
        if (db_load_gpu_stats(app->conn, cfg, snap) == STATUS_OK)
            changed = true;
        else
            log_warn("gpu.stats_failed",
                     "msg=\"task durations per GPU type unknown this cycle: value ranks by "
                     "price\"");
    }
    return changed;
}

/* ------------------------------------------------------------------------------------------ */
/* Logs and the summary                                                                        */

void catalog_cycle_log(const Plan *plan)
{
    for (size_t p = 0; p < plan->n_pools; p++) {
        const PlanPool *pp = &plan->pools[p];
        if (pp->to_spawn <= 0 && pp->spawn_limit != SPAWN_LIMIT_OUT_OF_STOCK)
            continue;
        char line[1024];
        gpu_choice_describe(&pp->choice, line, sizeof line);
        log_info("gpu.choice", "pool=%s to_spawn=%lld first=%s choice=%s", pp->name, pp->to_spawn,
                 pp->n_gpu_types ? pp->gpu_types[0] : "", line);
    }
    if (plan->rate_deferred > 0)
        log_warn("ratelimit.deferred",
                 "remaining=%lld allowance=%lld deferred=%lld msg=\"RunPod's rate-limit quota "
                 "is low: these spawns wait for later cycles (terminations never wait)\"",
                 plan->rate_remaining, plan->rate_allowance, plan->rate_deferred);
}

cJSON *catalog_cycle_quota_json(const RateQuota *q)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddBoolToObject(o, "known", q->known);
    cJSON_AddNumberToObject(o, "remaining", (double)ratelimit_remaining(q));
    cJSON_AddNumberToObject(o, "reset_in_sec", ratelimit_reset_in(q));
    cJSON_AddNumberToObject(o, "age_sec", q->known || q->malformed ? q->age_sec : -1);
    cJSON_AddBoolToObject(o, "malformed", q->malformed);
    cJSON_AddNumberToObject(o, "retry_after_sec",
                            q->retry_after_sec >= 0 && q->age_sec < q->retry_after_sec
                                ? q->retry_after_sec - q->age_sec
                                : 0);
    cJSON *ws = cJSON_AddArrayToObject(o, "windows");
    for (size_t i = 0; ws && q->known && i < q->n && i < RATE_WINDOWS_MAX; i++) {
        const RateWindow *w = &q->w[i];
        cJSON *x = cJSON_CreateObject();
        if (!x)
            break;
        bool reset = w->reset_sec >= 0 && q->age_sec >= (double)w->reset_sec;
        cJSON_AddStringToObject(x, "name", w->name);
        cJSON_AddNumberToObject(x, "remaining", (double)(reset ? w->quota : w->remaining));
        cJSON_AddNumberToObject(x, "quota", (double)w->quota);
        cJSON_AddNumberToObject(x, "window_sec", (double)w->window_sec);
        cJSON_AddNumberToObject(x, "reset_in_sec",
                                w->reset_sec < 0 || reset ? -1 : (double)w->reset_sec - q->age_sec);
        cJSON_AddItemToArray(ws, x);
    }
    return o;
}

cJSON *catalog_cycle_catalog_json(const Snapshot *snap)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < snap->n_catalog_scopes; i++) {
        const SnapCatalogScope *s = &snap->catalog_scopes[i];
        cJSON *x = cJSON_CreateObject();
        if (!x)
            break;
        cJSON_AddStringToObject(x, "scope", s->scope);
        cJSON_AddNumberToObject(x, "age_sec", (double)s->age_sec);
        cJSON_AddNumberToObject(x, "attempt_age_sec", (double)s->attempt_age_sec);
        cJSON_AddBoolToObject(x, "last_read_failed", s->last_failed);
        if (s->last_failed)
            cJSON_AddStringToObject(x, "error", s->error);
        cJSON *g = cJSON_AddArrayToObject(x, "gpu_types");
        for (size_t k = 0; g && k < snap->n_catalog; k++) {
            const SnapCatalogEntry *e = &snap->catalog[k];
            cJSON *y = strcmp(e->scope, s->scope) == 0 ? cJSON_CreateObject() : NULL;
            if (!y)
                continue;
            cJSON_AddStringToObject(y, "gpu_type", e->gpu_type);
            cJSON_AddStringToObject(y, "stock", gpu_stock_str(e->stock));
            cJSON_AddStringToObject(y, "availability", gpu_level_str(e->availability));
            cJSON_AddNumberToObject(y, "price_per_hr", e->price_per_hr);
            cJSON_AddItemToArray(g, y);
        }
        cJSON_AddItemToArray(arr, x);
    }
    return arr;
}

cJSON *catalog_cycle_choice_json(const GpuChoice *c)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "policy", gpu_choice_policy_str(c->policy));
    cJSON_AddStringToObject(o, "catalog", catalog_state_str(c->catalog));
    cJSON_AddNumberToObject(o, "catalog_age_sec", (double)c->catalog_age_sec);
    cJSON_AddBoolToObject(o, "fell_back", c->fell_back);
    cJSON_AddNumberToObject(o, "pool_median_sec", c->pool_median_sec);
    cJSON *arr = cJSON_AddArrayToObject(o, "candidates");
    for (size_t i = 0; arr && i < c->n; i++) {
        const GpuCandidate *g = &c->c[i];
        cJSON *x = cJSON_CreateObject();
        if (!x)
            break;
        cJSON_AddStringToObject(x, "gpu_type", g->gpu_type);
        cJSON_AddStringToObject(x, "stock", gpu_stock_str(g->stock));
        cJSON_AddStringToObject(x, "availability", gpu_level_str(g->availability));
        cJSON_AddNumberToObject(x, "price_per_hr", g->price_per_hr);
        cJSON_AddNumberToObject(x, "samples", (double)g->samples);
        cJSON_AddNumberToObject(x, "median_sec", g->median_sec);
        cJSON_AddNumberToObject(x, "est_sec", g->est_sec);
        cJSON_AddNumberToObject(x, "usd_per_task", g->usd_per_task);
        cJSON_AddStringToObject(x, "skip", gpu_skip_str(g->skip));
        cJSON_AddItemToArray(arr, x);
    }
    return o;
}

cJSON *catalog_cycle_summary(const Snapshot *snap, const Plan *plan)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !snap)
        return o;
    cJSON *rl = catalog_cycle_quota_json(&snap->quota);
    if (rl && plan) {
        cJSON_AddNumberToObject(rl, "create_allowance", (double)plan->rate_allowance);
        cJSON_AddNumberToObject(rl, "deferred", (double)plan->rate_deferred);
    }
    cJSON_AddItemToObject(o, "rate_limit", rl);
    cJSON_AddItemToObject(o, "catalog", catalog_cycle_catalog_json(snap));
    return o;
}
