/* catalog.c -- RunPod's GPU catalog: parse, stock rule, cache key (see catalog.h).
 *
 * Pure: cJSON only; no I/O, logging or clock. Never keeps pointers into the cJSON tree.
 */
#include "catalog.h"

#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runpod_json.h"

static const char *const LEVELS[] = {[GPU_LEVEL_UNKNOWN] = "UNKNOWN",
                                     [GPU_LEVEL_NONE] = "NONE",
                                     [GPU_LEVEL_LOW] = "LOW",
                                     [GPU_LEVEL_MEDIUM] = "MEDIUM",
                                     [GPU_LEVEL_HIGH] = "HIGH"};

const char *gpu_level_str(GpuLevel l)
{
    return (unsigned)l <= GPU_LEVEL_HIGH ? LEVELS[l] : "UNKNOWN";
}

GpuLevel gpu_level_parse(const char *s)
{
    for (int l = GPU_LEVEL_NONE; s && l <= GPU_LEVEL_HIGH; l++)
        if (strcmp(s, LEVELS[l]) == 0)
            return (GpuLevel)l;
    return GPU_LEVEL_UNKNOWN;
}

const char *gpu_stock_str(GpuStock s)
{
    return s == GPU_STOCK_IN ? "in" : s == GPU_STOCK_OUT ? "out" : "unknown";
}

GpuStock gpu_stock_parse(const char *s)
{
    if (s && strcmp(s, "in") == 0)
        return GPU_STOCK_IN;
    if (s && strcmp(s, "out") == 0)
        return GPU_STOCK_OUT;
    return GPU_STOCK_UNKNOWN;
}

GpuStock catalog_stock(int offered, GpuLevel availability, bool filtered, bool dcs_present,
                       GpuLevel dc_level, bool dc_level_unreadable)
{
    if (offered == 0)
        return GPU_STOCK_OUT; /* not offered on this cloud at all */
    if (filtered) {
        if (!dcs_present) /* omitted when unavailable everywhere; odd otherwise */
            return availability == GPU_LEVEL_NONE ? GPU_STOCK_OUT : GPU_STOCK_UNKNOWN;
        if (dc_level >= GPU_LEVEL_LOW)
            return GPU_STOCK_IN;
        return dc_level_unreadable ? GPU_STOCK_UNKNOWN : GPU_STOCK_OUT;
    }
    if (availability == GPU_LEVEL_NONE)
        return GPU_STOCK_OUT;
    return availability >= GPU_LEVEL_LOW ? GPU_STOCK_IN : GPU_STOCK_UNKNOWN;
}

void catalog_scope(const char *cloud, const char *const *dcs, size_t n_dcs, char *out, size_t cap)
{
    if (n_dcs == 0 || !dcs) {
        snprintf(out, cap, "%.16s", cloud ? cloud : "");
        return;
    }
    uint64_t h = 1469598103934665603ULL; /* FNV-1a over "dc1,dc2,..." */
    for (size_t i = 0; i < n_dcs; i++) {
        for (const char *p = dcs[i] ? dcs[i] : ""; *p; p++) {
            h ^= (unsigned char)*p;
            h *= 1099511628211ULL;
        }
        h ^= (unsigned char)',';
        h *= 1099511628211ULL;
    }
    snprintf(out, cap, "%.16s@%016llx", cloud ? cloud : "", (unsigned long long)h);
}

void catalog_list_clear(CatalogList *list)
{
    if (!list)
        return;
    free(list->entries);
    memset(list, 0, sizeof *list);
}

/* ------------------------------------------------------------------------------------------ */
/* Parsing                                                                                     */

static void problem(CatalogList *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void problem(CatalogList *l, const char *fmt, ...)
{
    if (l->n_problems >= CATALOG_PROBLEMS_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(l->problems[l->n_problems++], CATALOG_PROBLEM_LEN, fmt, ap);
    va_end(ap);
}

static bool printable_id(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= CATALOG_ID_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p == 0x7f)
            return false;
    return true;
}

/* A level field: UNKNOWN when absent; UNKNOWN and *bad when present but not a level. */
static GpuLevel level_of(const cJSON *v, bool *bad)
{
    if (!v || cJSON_IsNull(v))
        return GPU_LEVEL_UNKNOWN;
    GpuLevel l = cJSON_IsString(v) ? gpu_level_parse(v->valuestring) : GPU_LEVEL_UNKNOWN;
    if (l == GPU_LEVEL_UNKNOWN)
        *bad = true;
    return l;
}

/* The best level among the configured data centers listed in arr. */
static GpuLevel best_dc_level(const cJSON *arr, const char *const *dcs, size_t n_dcs,
                              bool *unreadable, bool *bad)
{
    GpuLevel best = GPU_LEVEL_UNKNOWN;
    const cJSON *dc;
    cJSON_ArrayForEach(dc, arr)
    {
        const cJSON *id = cJSON_IsObject(dc) ? cJSON_GetObjectItemCaseSensitive(dc, "id") : NULL;
        if (!cJSON_IsString(id) || !id->valuestring) {
            *bad = true;
            continue;
        }
        bool wanted = false;
        for (size_t k = 0; k < n_dcs && !wanted; k++)
            wanted = dcs[k] && strcmp(dcs[k], id->valuestring) == 0;
        if (!wanted)
            continue;
        bool lbad = false;
        GpuLevel l = level_of(cJSON_GetObjectItemCaseSensitive(dc, "availability"), &lbad);
        if (l == GPU_LEVEL_UNKNOWN) {
            *unreadable = true;
            *bad = true;
        } else if (l > best) {
            best = l;
        }
    }
    return best;
}

/* Appends ",field" (or "field") to the list in buf. */
static void add_field(char *buf, size_t cap, const char *field)
{
    size_t n = strlen(buf);
    if (n < cap)
        snprintf(buf + n, cap - n, "%s%s", n ? "," : "", field);
}

/* One entry of "gpus": 0 kept (*e filled), -1 skipped (why in msg). */
static int entry_from_json(const cJSON *item, const char *cloud_key, const char *const *dcs,
                           size_t n_dcs, CatalogEntry *e, char *msg, size_t cap)
{
    memset(e, 0, sizeof *e);
    const cJSON *id = cJSON_IsObject(item) ? cJSON_GetObjectItemCaseSensitive(item, "id") : NULL;
    if (!cJSON_IsObject(item)) {
        snprintf(msg, cap, "not an object");
        return -1;
    }
    if (!cJSON_IsString(id) || !id->valuestring || !printable_id(id->valuestring)) {
        snprintf(msg, cap, "no usable id");
        return -1;
    }
    snprintf(e->id, sizeof e->id, "%s", id->valuestring);
    char bad_fields[96] = "";
#define BAD(field) add_field(bad_fields, sizeof bad_fields, field)

    /* price.<cloud>: a positive number we can believe */
    const cJSON *price = cJSON_GetObjectItemCaseSensitive(item, "price");
    const cJSON *pv =
        cJSON_IsObject(price) ? cJSON_GetObjectItemCaseSensitive(price, cloud_key) : NULL;
    e->price_per_hr = -1;
    if (cJSON_IsNumber(pv) && isfinite(pv->valuedouble) && pv->valuedouble > 0 &&
        pv->valuedouble <= CATALOG_PRICE_MAX_USD)
        e->price_per_hr = pv->valuedouble;
    else
        BAD("price");

    /* secure / community: offered on this cloud */
    const cJSON *flag = cJSON_GetObjectItemCaseSensitive(item, cloud_key);
    int offered = -1;
    if (cJSON_IsBool(flag))
        offered = cJSON_IsTrue(flag) ? 1 : 0;
    else
        BAD("offered");

    bool lbad = false;
    e->availability = level_of(cJSON_GetObjectItemCaseSensitive(item, "availability"), &lbad);
    if (lbad)
        BAD("availability");

    const cJSON *arr = cJSON_GetObjectItemCaseSensitive(item, "dataCenters");
    bool present = cJSON_IsArray(arr), unreadable = false, dbad = false;
    if (arr && !present && !cJSON_IsNull(arr))
        dbad = true;
    e->dc_level = present && n_dcs > 0 ? best_dc_level(arr, dcs, n_dcs, &unreadable, &dbad)
                                       : GPU_LEVEL_UNKNOWN;
    if (dbad)
        BAD("dataCenters");
#undef BAD
    e->stock = catalog_stock(offered, e->availability, n_dcs > 0, present, e->dc_level,
                             unreadable || (n_dcs > 0 && dbad));
    if (bad_fields[0]) {
        e->partial = true;
        snprintf(msg, cap, "%s", bad_fields);
    }
    return 0;
}

/* A second entry with the same id: where the two disagree, the field becomes unknown. */
static void merge_duplicate(CatalogEntry *kept, const CatalogEntry *again)
{
    if (kept->stock != again->stock)
        kept->stock = GPU_STOCK_UNKNOWN;
    if (kept->price_per_hr != again->price_per_hr)
        kept->price_per_hr = -1;
    if (kept->availability != again->availability)
        kept->availability = GPU_LEVEL_UNKNOWN;
    kept->partial = true;
}

Status catalog_parse(const char *body, size_t len, const char *cloud, const char *const *dcs,
                     size_t n_dcs, CatalogList *out, char *err, size_t errcap)
{
    const char *cloud_key = cloud && strcmp(cloud, "SECURE") == 0      ? "secure"
                            : cloud && strcmp(cloud, "COMMUNITY") == 0 ? "community"
                                                                       : NULL;
    if (!cloud_key) {
        if (err && errcap)
            snprintf(err, errcap, "catalog: unknown cloud type");
        return STATUS_ERR_USAGE;
    }
    if (len > CATALOG_MAX_BODY) {
        if (err && errcap)
            snprintf(err, errcap, "catalog: body of %zu bytes, limit %u", len, CATALOG_MAX_BODY);
        return STATUS_ERR_PARSE;
    }
    Status st = STATUS_ERR_PARSE;
    CatalogList list;
    memset(&list, 0, sizeof list);
    CatalogEntry *entries = NULL;
    cJSON *root = runpod_json_parse_root(body, len, err, errcap);
    if (!root)
        return STATUS_ERR_PARSE;
    const cJSON *arr = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "gpus") : NULL;
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;
    if (n < 0 || (size_t)n > CATALOG_MAX_ENTRIES) {
        if (err && errcap)
            snprintf(err, errcap,
                     n < 0 ? "catalog: expected an object with a \"gpus\" array"
                           : "catalog: too many GPU types (limit %d)",
                     CATALOG_MAX_ENTRIES);
        goto out;
    }
    if (n > 0 && !(entries = calloc((size_t)n, sizeof *entries))) {
        st = STATUS_ERR_NOMEM;
        goto out;
    }
    size_t index = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, arr)
    {
        char msg[96] = "";
        CatalogEntry e;
        size_t at = index++;
        if (entry_from_json(item, cloud_key, dcs, n_dcs, &e, msg, sizeof msg) != 0) {
            problem(&list, "gpus[%zu] skipped: %s", at, msg);
            list.skipped++;
            continue;
        }
        size_t k = 0;
        while (k < list.count && strcmp(entries[k].id, e.id) != 0)
            k++;
        if (k < list.count) {
            merge_duplicate(&entries[k], &e);
            problem(&list, "gpus[%zu] %.100s: a second entry with this id", at, e.id);
            continue;
        }
        if (e.partial) {
            problem(&list, "gpus[%zu] %.100s: unusable %s", at, e.id, msg);
            list.partial++;
        }
        entries[list.count++] = e;
    }
    list.entries = entries;
    entries = NULL;
    *out = list;
    st = STATUS_OK;
out:
    free(entries);
    cJSON_Delete(root);
    return st;
}
