/* db_runpod.c -- the catalog cache, the rate-limit quota and the task durations per GPU type
 * in PostgreSQL (see db_runpod.h).
 *
 * Shell module. Sets of names travel as one JSON array parameter; nothing is interpolated.
 */
#include "db_runpod.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_exec.h"
#include "log.h"

/* ------------------------------------------------------------------------------------------ */
/* Loading                                                                                     */

/* JSON arrays of the configured pools' catalog scopes, GPU types and names. */
typedef struct {
    char *scopes, *types, *pools;
} ConfiguredSets;

static void sets_clear(ConfiguredSets *s)
{
    cJSON_free(s->scopes);
    cJSON_free(s->types);
    cJSON_free(s->pools);
    memset(s, 0, sizeof *s);
}

static bool in_array(const cJSON *arr, const char *s)
{
    const cJSON *x;
    cJSON_ArrayForEach(x, arr) if (strcmp(x->valuestring, s) == 0) return true;
    return false;
}

static void add_unique(cJSON *arr, const char *s)
{
    if (arr && !in_array(arr, s))
        cJSON_AddItemToArray(arr, cJSON_CreateString(s));
}

static Status configured_sets(const Config *cfg, ConfiguredSets *out)
{
    memset(out, 0, sizeof *out);
    cJSON *scopes = cJSON_CreateArray(), *types = cJSON_CreateArray(), *pools = cJSON_CreateArray();
    const char *dcs[CONFIG_LIST_MAX];
    for (size_t d = 0; d < cfg->runpod_data_center_ids.count && d < CONFIG_LIST_MAX; d++)
        dcs[d] = cfg->runpod_data_center_ids.items[d];
    for (size_t p = 0; p < cfg->n_pools && p < CONFIG_POOLS_MAX; p++) {
        const PoolConfig *pc = &cfg->pools[p];
        char scope[CATALOG_SCOPE_MAX];
        catalog_scope(pc->cloud_type, dcs, cfg->runpod_data_center_ids.count, scope, sizeof scope);
        add_unique(scopes, scope);
        add_unique(pools, pc->name);
        for (size_t g = 0; g < pc->gpu_types.count; g++)
            add_unique(types, pc->gpu_types.items[g]);
    }
    if (scopes && types && pools) {
        out->scopes = cJSON_PrintUnformatted(scopes);
        out->types = cJSON_PrintUnformatted(types);
        out->pools = cJSON_PrintUnformatted(pools);
    }
    cJSON_Delete(scopes);
    cJSON_Delete(types);
    cJSON_Delete(pools);
    if (!out->scopes || !out->types || !out->pools) {
        sets_clear(out);
        return STATUS_ERR_NOMEM;
    }
    return STATUS_OK;
}

/* kind, scope, a, b, c, x, y, flag, text -- one row per catalog read, catalog entry, and the
 * rate-limit row. */
static const char SQL_LOAD_RUNPOD[] =
    "SELECT 'read', r.scope, NULL::text, NULL::text, NULL::text,"
    "  extract(epoch FROM now() - r.read_at)::float8,"
    "  extract(epoch FROM now() - r.attempted_at)::float8, r.ok, coalesce(r.error, '')"
    " FROM runpod_catalog_reads r"
    " WHERE r.scope IN (SELECT jsonb_array_elements_text($1::jsonb))"
    " UNION ALL"
    " SELECT 'gpu', g.scope, g.gpu_type, g.stock, g.availability, g.price_per_hr::float8,"
    "  NULL, NULL, NULL"
    " FROM runpod_gpu_catalog g"
    " WHERE g.scope IN (SELECT jsonb_array_elements_text($1::jsonb))"
    "   AND g.gpu_type IN (SELECT jsonb_array_elements_text($2::jsonb))"
    " UNION ALL"
    " SELECT 'rate', NULL, q.ratelimit, q.ratelimit_policy, NULL,"
    "  greatest(extract(epoch FROM now() - q.observed_at), 0)::float8,"
    "  CASE WHEN q.retry_after_until > now()"
    "    THEN extract(epoch FROM q.retry_after_until - q.observed_at)::float8 END,"
    "  q.malformed, NULL"
    " FROM runpod_rate_limit q WHERE q.id = 1"
    " ORDER BY 1, 2, 3 LIMIT $3::int";

static void load_read_row(const PGresult *res, int r, Snapshot *snap)
{
    if (snap->n_catalog_scopes >= SNAP_CATALOG_SCOPES_MAX)
        return;
    SnapCatalogScope *s = &snap->catalog_scopes[snap->n_catalog_scopes++];
    memset(s, 0, sizeof *s);
    db_cell_str(res, r, 1, s->scope, sizeof s->scope);
    double age, attempt;
    db_cell_double(res, r, 5, &age);
    db_cell_double(res, r, 6, &attempt);
    s->age_sec = PQgetisnull(res, r, 5) ? -1 : age < 0 ? 0 : (long long)age;
    s->attempt_age_sec = PQgetisnull(res, r, 6) ? -1 : attempt < 0 ? 0 : (long long)attempt;
    s->last_failed = !db_cell_bool(res, r, 7);
    db_cell_str(res, r, 8, s->error, sizeof s->error);
}

static void load_gpu_row(const PGresult *res, int r, Snapshot *snap, size_t *dropped)
{
    if (snap->n_catalog >= SNAP_CATALOG_MAX) {
        (*dropped)++;
        return;
    }
    SnapCatalogEntry *e = &snap->catalog[snap->n_catalog++];
    memset(e, 0, sizeof *e);
    db_cell_str(res, r, 1, e->scope, sizeof e->scope);
    db_cell_str(res, r, 2, e->gpu_type, sizeof e->gpu_type);
    e->stock = gpu_stock_parse(PQgetvalue(res, r, 3));
    e->availability = gpu_level_parse(PQgetvalue(res, r, 4));
    double price = -1;
    db_cell_double(res, r, 5, &price);
    e->price_per_hr = price > 0 ? price : -1;
}

/* The persisted rate limit, parsed again (it is RunPod's text as received). */
static void load_rate_row(const PGresult *res, int r, Snapshot *snap)
{
    const char *lim = PQgetisnull(res, r, 2) ? NULL : PQgetvalue(res, r, 2);
    const char *pol = PQgetisnull(res, r, 3) ? NULL : PQgetvalue(res, r, 3);
    RateQuota *q = &snap->quota;
    if (ratelimit_parse(lim, pol, q) == STATUS_ERR_PARSE || db_cell_bool(res, r, 7)) {
        q->known = false;
        q->malformed = true;
        q->n = 0;
    }
    double age = 0, retry = -1;
    db_cell_double(res, r, 5, &age);
    db_cell_double(res, r, 6, &retry);
    q->age_sec = age > 0 ? age : 0;
    q->retry_after_sec = PQgetisnull(res, r, 6) ? -1 : retry;
}

Status db_load_runpod(PGconn *conn, const Config *cfg, Snapshot *snap)
{
    ConfiguredSets sets;
    Status st = configured_sets(cfg, &sets);
    if (st != STATUS_OK)
        return st;
    char limit[16];
    snprintf(limit, sizeof limit, "%d", SNAP_CATALOG_SCOPES_MAX + SNAP_CATALOG_MAX + 64);
    const char *p[] = {sets.scopes, sets.types, limit};
    PGresult *res = db_exec_params(conn, "snapshot_runpod", SQL_LOAD_RUNPOD, 3, p, PGRES_TUPLES_OK);
    sets_clear(&sets);
    if (!res)
        return STATUS_ERR_DB;
    snap->n_catalog_scopes = 0;
    snap->n_catalog = 0;
    memset(&snap->quota, 0, sizeof snap->quota);
    snap->quota.retry_after_sec = -1;
    size_t dropped = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        const char *kind = PQgetvalue(res, r, 0);
        if (strcmp(kind, "read") == 0)
            load_read_row(res, r, snap);
        else if (strcmp(kind, "gpu") == 0)
            load_gpu_row(res, r, snap, &dropped);
        else if (strcmp(kind, "rate") == 0)
            load_rate_row(res, r, snap);
    }
    PQclear(res);
    if (dropped > 0)
        log_warn("snapshot.catalog_truncated",
                 "dropped=%zu limit=%d msg=\"more cached catalog entries of configured GPU types "
                 "than the snapshot holds; the rest count as not in the catalog\"",
                 dropped, SNAP_CATALOG_MAX);
    return STATUS_OK;
}

/* The newest completed tasks the durations come from, at most. The whole window at 1,000,000
 * completed tasks took 13 s (a sort of every row); the newest 5,000, read backwards through
 * idx_tasks_complete_processed, 20 ms (structure_docs/gpu_choice_and_rate_limit.md). */
#define GPU_STATS_SAMPLE_TASKS 5000

static const char SQL_GPU_STATS[] =
    "WITH recent AS (SELECT t.worker_id,"
    "    extract(epoch FROM t.generation_processed_at - t.generation_started_at) AS sec"
    "  FROM tasks t WHERE t.status = 'Complete'"
    "   AND t.generation_processed_at > now() - make_interval(hours => $1::int)"
    "   AND t.generation_started_at IS NOT NULL"
    "   AND t.generation_processed_at >= t.generation_started_at"
    "  ORDER BY t.generation_processed_at DESC LIMIT $4::int)"
    " SELECT w.pool, coalesce(w.gpu_type, ''), count(*)::float8,"
    "  percentile_cont(0.5) WITHIN GROUP (ORDER BY r.sec)::float8"
    " FROM recent r JOIN workers w ON w.id = r.worker_id"
    " WHERE w.gpu_type IS NOT NULL AND w.gpu_type <> ''"
    "   AND w.pool IN (SELECT jsonb_array_elements_text($2::jsonb))"
    " GROUP BY GROUPING SETS ((w.pool, w.gpu_type), (w.pool))"
    " ORDER BY 1, 2 LIMIT $3::int";

Status db_load_gpu_stats(PGconn *conn, const Config *cfg, Snapshot *snap)
{
    ConfiguredSets sets;
    Status st = configured_sets(cfg, &sets);
    if (st != STATUS_OK)
        return st;
    char hours[16], limit[16], sample[16];
    snprintf(hours, sizeof hours, "%d", cfg->runpod_value_window_hours);
    snprintf(limit, sizeof limit, "%d", SNAP_GPU_STATS_MAX);
    snprintf(sample, sizeof sample, "%d", GPU_STATS_SAMPLE_TASKS);
    const char *p[] = {hours, sets.pools, limit, sample};
    PGresult *res = db_exec_params(conn, "gpu_task_stats", SQL_GPU_STATS, 4, p, PGRES_TUPLES_OK);
    sets_clear(&sets);
    if (!res)
        return STATUS_ERR_DB;
    st = STATUS_ERR_DB;
    snap->n_gpu_stats = 0;
    for (int r = 0; r < PQntuples(res) && r < SNAP_GPU_STATS_MAX; r++) {
        SnapGpuStat *g = &snap->gpu_stats[snap->n_gpu_stats];
        memset(g, 0, sizeof *g);
        db_cell_str(res, r, 0, g->pool, sizeof g->pool);
        db_cell_str(res, r, 1, g->gpu_type, sizeof g->gpu_type);
        if (db_cell_ll(res, r, 2, &g->samples) || db_cell_double(res, r, 3, &g->median_sec))
            goto out;
        snap->n_gpu_stats++;
    }
    snap->gpu_stats_loaded = true;
    st = STATUS_OK;
out:
    PQclear(res);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* Saving                                                                                      */

/* One statement: the read recorded; on success the scope's entries replaced (the entries of
 * types no longer listed deleted, the rest inserted or updated -- disjoint rows, so one
 * statement can do both). */
static const char SQL_SAVE_CATALOG[] =
    "WITH r AS (INSERT INTO runpod_catalog_reads AS r (scope, cloud, read_at, attempted_at, ok,"
    "    error, entries, skipped, partial)"
    "  VALUES ($1, $2, CASE WHEN $3::bool THEN now() END, now(), $3::bool, $4, $5::int,"
    "    $6::int, $7::int)"
    "  ON CONFLICT (scope) DO UPDATE SET cloud = EXCLUDED.cloud,"
    "    read_at = CASE WHEN EXCLUDED.ok THEN now() ELSE r.read_at END,"
    "    attempted_at = now(), ok = EXCLUDED.ok, error = EXCLUDED.error,"
    "    entries = CASE WHEN EXCLUDED.ok THEN EXCLUDED.entries ELSE r.entries END,"
    "    skipped = CASE WHEN EXCLUDED.ok THEN EXCLUDED.skipped ELSE r.skipped END,"
    "    partial = CASE WHEN EXCLUDED.ok THEN EXCLUDED.partial ELSE r.partial END"
    "  RETURNING 1),"
    " e AS (SELECT * FROM jsonb_to_recordset($8::jsonb)"
    "   AS x(gpu_type text, stock text, availability text, price float8)),"
    " d AS (DELETE FROM runpod_gpu_catalog g WHERE $3::bool AND g.scope = $1"
    "   AND g.gpu_type NOT IN (SELECT gpu_type FROM e)),"
    " i AS (INSERT INTO runpod_gpu_catalog (scope, gpu_type, stock, availability, price_per_hr)"
    "   SELECT $1, gpu_type, stock, availability, CASE WHEN price > 0 THEN price END FROM e"
    "   WHERE $3::bool"
    "   ON CONFLICT (scope, gpu_type) DO UPDATE SET stock = EXCLUDED.stock,"
    "     availability = EXCLUDED.availability, price_per_hr = EXCLUDED.price_per_hr)"
    " SELECT count(*) FROM r";

static char *entries_json(const CatalogList *list)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && list && i < list->count; i++) {
        const CatalogEntry *e = &list->entries[i];
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        cJSON_AddStringToObject(o, "gpu_type", e->id);
        cJSON_AddStringToObject(o, "stock", gpu_stock_str(e->stock));
        cJSON_AddStringToObject(o, "availability", gpu_level_str(e->availability));
        cJSON_AddNumberToObject(o, "price", e->price_per_hr);
        cJSON_AddItemToArray(arr, o);
    }
    char *s = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    return s;
}

Status db_save_catalog(PGconn *conn, const char *scope, const char *cloud, const CatalogList *list,
                       const char *error)
{
    char *entries = entries_json(list);
    if (!entries)
        return STATUS_ERR_NOMEM;
    char n[16], skipped[16], partial[16], clean[512];
    snprintf(n, sizeof n, "%zu", list ? list->count : 0);
    snprintf(skipped, sizeof skipped, "%zu", list ? list->skipped : 0);
    snprintf(partial, sizeof partial, "%zu", list ? list->partial : 0);
    log_scrub(error ? error : "", clean, sizeof clean);
    const char *p[] = {scope, cloud,   list ? "t" : "f", list ? NULL : clean,
                       n,     skipped, partial,          entries};
    PGresult *res = db_exec_params(conn, "save_catalog", SQL_SAVE_CATALOG, 8, p, PGRES_TUPLES_OK);
    cJSON_free(entries);
    if (!res)
        return STATUS_ERR_DB;
    PQclear(res);
    return STATUS_OK;
}

Status db_save_rate_limit(PGconn *conn, const RunpodRateSeen *seen)
{
    char age[32], retry[32], remaining[32];
    snprintf(age, sizeof age, "%.3f", seen->quota.age_sec > 0 ? seen->quota.age_sec : 0);
    snprintf(retry, sizeof retry, "%.3f", seen->retry_after_left_sec);
    snprintf(remaining, sizeof remaining, "%lld", ratelimit_remaining(&seen->quota));
    /* RunPod's text as received, scrubbed like everything else that is stored: a header that
     * echoed a secret is then unreadable, which reads back as unknown. */
    char lim[RATE_RAW_MAX], pol[RATE_RAW_MAX];
    log_scrub(seen->ratelimit, lim, sizeof lim);
    log_scrub(seen->policy, pol, sizeof pol);
    const char *p[] = {age,
                       lim[0] ? lim : NULL,
                       pol[0] ? pol : NULL,
                       seen->quota.malformed ? "t" : "f",
                       seen->retry_after_left_sec > 0 ? retry : NULL,
                       remaining};
    return db_exec_command(
        conn, "save_rate_limit",
        "INSERT INTO runpod_rate_limit AS q (id, observed_at, ratelimit, ratelimit_policy,"
        "  malformed, retry_after_until, remaining, updated_at)"
        " VALUES (1, now() - make_interval(secs => $1::float8), $2, $3, $4::bool,"
        "  now() + make_interval(secs => $5::float8), $6::bigint, now())"
        " ON CONFLICT (id) DO UPDATE SET observed_at = EXCLUDED.observed_at,"
        "  ratelimit = EXCLUDED.ratelimit, ratelimit_policy = EXCLUDED.ratelimit_policy,"
        "  malformed = EXCLUDED.malformed, retry_after_until = EXCLUDED.retry_after_until,"
        "  remaining = EXCLUDED.remaining, updated_at = now()",
        6, p, NULL);
}
