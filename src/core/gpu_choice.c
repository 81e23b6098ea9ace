/* gpu_choice.c -- the order in which a pool's GPU types are tried (see gpu_choice.h).
 *
 * Pure: reads only its arguments; no I/O, clock, environment, allocation or logging.
 */
#include "gpu_choice.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *gpu_choice_policy_str(GpuChoicePolicy p)
{
    return p == GPU_CHOICE_CHEAPEST ? "cheapest" : p == GPU_CHOICE_VALUE ? "value" : "ordered";
}

const char *catalog_state_str(CatalogState s)
{
    switch (s) {
    case CATALOG_OFF:
        return "off";
    case CATALOG_FRESH:
        return "fresh";
    case CATALOG_STALE:
        return "stale";
    case CATALOG_MISSING:
        return "missing";
    case CATALOG_FAILED:
        return "failed";
    }
    return "unknown";
}

const char *gpu_skip_str(GpuSkip s)
{
    return s == GPU_SKIP_OUT_OF_STOCK ? "out_of_stock" : s == GPU_SKIP_BACKOFF ? "backoff" : "";
}

/* The state of the cached catalog of scope. */
static CatalogState catalog_state(const GpuChoiceInput *in, const Snapshot *snap, long long *age)
{
    *age = -1;
    if (in->catalog_ttl_sec <= 0)
        return CATALOG_OFF;
    for (size_t i = 0; in->scope && i < snap->n_catalog_scopes && i < SNAP_CATALOG_SCOPES_MAX;
         i++) {
        const SnapCatalogScope *s = &snap->catalog_scopes[i];
        if (strcmp(s->scope, in->scope) != 0)
            continue;
        *age = s->age_sec;
        if (s->last_failed)
            return CATALOG_FAILED;
        if (s->age_sec < 0)
            return CATALOG_MISSING;
        return s->age_sec > in->catalog_ttl_sec ? CATALOG_STALE : CATALOG_FRESH;
    }
    return CATALOG_MISSING;
}

static const SnapCatalogEntry *catalog_entry(const Snapshot *snap, const char *scope,
                                             const char *type)
{
    for (size_t i = 0; i < snap->n_catalog && i < SNAP_CATALOG_MAX; i++)
        if (strcmp(snap->catalog[i].scope, scope) == 0 &&
            strcmp(snap->catalog[i].gpu_type, type) == 0)
            return &snap->catalog[i];
    return NULL;
}

static const SnapGpuStat *gpu_stat(const Snapshot *snap, const char *pool, const char *type)
{
    for (size_t i = 0; snap->gpu_stats_loaded && i < snap->n_gpu_stats && i < SNAP_GPU_STATS_MAX;
         i++)
        if (strcmp(snap->gpu_stats[i].pool, pool) == 0 &&
            strcmp(snap->gpu_stats[i].gpu_type, type) == 0)
            return &snap->gpu_stats[i];
    return NULL;
}

static long long backoff_left(const Snapshot *snap, const char *type)
{
    for (size_t b = 0; b < snap->n_backoffs && b < SNAP_GPU_BACKOFF_MAX; b++)
        if (strcmp(snap->backoffs[b].gpu_type, type) == 0 && snap->backoffs[b].remaining_sec > 0)
            return snap->backoffs[b].remaining_sec;
    return 0;
}

/* -1 when a goes before b, 1 after, 0 equal. Unknown figures (< 0) go after known ones. */
static int cmp_known(double a, double b)
{
    if ((a >= 0) != (b >= 0))
        return a >= 0 ? -1 : 1;
    if (a < b)
        return -1;
    return a > b ? 1 : 0;
}

/* Whether candidate a is tried before b under policy p. */
static bool before(GpuChoicePolicy p, bool ranked, const GpuCandidate *a, const GpuCandidate *b)
{
    if ((a->skip == GPU_SKIP_NONE) != (b->skip == GPU_SKIP_NONE))
        return a->skip == GPU_SKIP_NONE; /* usable ones first */
    if (ranked && a->skip == GPU_SKIP_NONE) {
        int sa = a->stock == GPU_STOCK_IN ? 0 : 1, sb = b->stock == GPU_STOCK_IN ? 0 : 1;
        if (sa != sb)
            return sa < sb; /* in stock before unknown */
        int c = p == GPU_CHOICE_VALUE ? cmp_known(a->usd_per_task, b->usd_per_task) : 0;
        if (c == 0)
            c = cmp_known(a->price_per_hr, b->price_per_hr);
        if (c != 0)
            return c < 0;
    }
    return a->config_index < b->config_index;
}

void gpu_choice_decide(const GpuChoiceInput *in, const Snapshot *snap, GpuChoice *out)
{
    memset(out, 0, sizeof *out);
    out->policy = in->policy;
    out->catalog = catalog_state(in, snap, &out->catalog_age_sec);
    bool fresh = out->catalog == CATALOG_FRESH;
    out->fell_back = out->catalog != CATALOG_OFF && !fresh;
    out->pool_median_sec = -1;
    const char *pool = in->pool ? in->pool : "";
    const SnapGpuStat *all = gpu_stat(snap, pool, "");
    if (all && all->samples > 0 && all->median_sec >= 0) {
        out->pool_median_sec = all->median_sec;
        out->pool_samples = all->samples;
    }
    for (size_t g = 0; g < in->n_types && out->n < GPU_CHOICE_MAX; g++) {
        GpuCandidate *c = &out->c[out->n++];
        memcpy(c->gpu_type, in->types[g], SNAP_NAME_MAX);
        c->gpu_type[SNAP_NAME_MAX - 1] = '\0';
        c->config_index = (int)g;
        c->price_per_hr = c->median_sec = c->est_sec = c->usd_per_task = -1;
        const SnapCatalogEntry *e = fresh ? catalog_entry(snap, in->scope, c->gpu_type) : NULL;
        if (e) {
            c->stock = e->stock;
            c->availability = e->availability;
            c->price_per_hr = e->price_per_hr > 0 ? e->price_per_hr : -1;
        }
        const SnapGpuStat *st = gpu_stat(snap, pool, c->gpu_type);
        if (st && st->samples > 0) {
            c->samples = st->samples;
            c->median_sec = st->median_sec;
        }
        c->own_median = c->samples >= in->min_samples && c->median_sec >= 0;
        c->est_sec = c->own_median ? c->median_sec : out->pool_median_sec;
        if (c->price_per_hr > 0 && c->est_sec >= 0)
            c->usd_per_task = c->price_per_hr * c->est_sec / 3600.0;
        c->backoff_sec = backoff_left(snap, c->gpu_type);
        if (c->stock == GPU_STOCK_OUT) {
            c->skip = GPU_SKIP_OUT_OF_STOCK;
            out->n_out_of_stock++;
        } else if (c->backoff_sec > 0) {
            c->skip = GPU_SKIP_BACKOFF;
            out->n_backoff++;
        } else {
            out->n_usable++;
        }
    }
    /* Insertion sort (at most GPU_CHOICE_MAX): stable, so ties keep the configured order. */
    bool ranked = fresh && in->policy != GPU_CHOICE_ORDERED;
    for (size_t i = 1; i < out->n; i++) {
        GpuCandidate x = out->c[i];
        size_t k = i;
        while (k > 0 && before(in->policy, ranked, &x, &out->c[k - 1])) {
            out->c[k] = out->c[k - 1];
            k--;
        }
        out->c[k] = x;
    }
}

/* Appends printf-style text at *len (never past cap). */
static void put(char *out, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void put(char *out, size_t cap, size_t *len, const char *fmt, ...)
{
    if (*len + 1 >= cap)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(out + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n > 0)
        *len = *len + (size_t)n < cap ? *len + (size_t)n : cap - 1;
}

void gpu_choice_describe(const GpuChoice *c, char *out, size_t cap)
{
    size_t len = 0;
    if (!cap)
        return;
    out[0] = '\0';
    put(out, cap, &len, "%s, catalog %s", gpu_choice_policy_str(c->policy),
        catalog_state_str(c->catalog));
    if (c->catalog_age_sec >= 0 && c->catalog != CATALOG_OFF)
        put(out, cap, &len, " (%llds)", c->catalog_age_sec);
    if (c->fell_back)
        put(out, cap, &len, ", configured order");
    put(out, cap, &len, ":");
    for (size_t i = 0; i < c->n; i++) {
        const GpuCandidate *g = &c->c[i];
        if (i == c->n_usable)
            put(out, cap, &len, " skipped:");
        put(out, cap, &len, " %s", g->gpu_type);
        if (g->price_per_hr > 0)
            put(out, cap, &len, " $%.3f/h", g->price_per_hr);
        if (c->policy == GPU_CHOICE_VALUE && g->usd_per_task >= 0)
            put(out, cap, &len, " $%.4f/task (%s %.0fs, n=%lld)", g->usd_per_task,
                g->own_median ? "median" : "pool median", g->est_sec, g->samples);
        if (g->skip == GPU_SKIP_OUT_OF_STOCK)
            put(out, cap, &len, " out of stock");
        else if (g->skip == GPU_SKIP_BACKOFF)
            put(out, cap, &len, " no capacity, backoff %llds", g->backoff_sec);
        else if (c->catalog == CATALOG_FRESH)
            put(out, cap, &len, " %s", g->stock == GPU_STOCK_IN ? "in stock" : "stock unknown");
        put(out, cap, &len, ";");
    }
    if (len > 0 && out[len - 1] == ';')
        out[--len] = '\0';
}
