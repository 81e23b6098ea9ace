/* metrics_runpod.c -- the gauges of RunPod's rate limit and GPU catalog (issue 16), part of
 * the metrics module (see metrics.h).
 *
 * Shell module: no I/O, no logging. Window names come from RunPod's headers, so they reach a
 * label only as [a-z0-9_]{1,23} -- anything else is "other" -- and at most RATE_WINDOWS_MAX of
 * them; catalog scopes are our own cache keys (catalog_scope()), at most
 * SNAP_CATALOG_SCOPES_MAX.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A label value made safe: [a-z0-9_] only (others become "other"). */
static void window_label(const char *name, char *out, size_t cap)
{
    size_t n = strlen(name);
    bool ok = n > 0 && n < cap;
    for (size_t i = 0; ok && i < n; i++)
        ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
             name[i] == '_';
    snprintf(out, cap, "%s", ok ? name : "other");
}

/* A catalog scope as a label: our own key, [A-Z@0-9a-f] by construction; checked anyway. */
static void scope_label(const char *scope, char *out, size_t cap)
{
    size_t n = strlen(scope);
    bool ok = n > 0 && n < cap;
    for (size_t i = 0; ok && i < n; i++)
        ok = (scope[i] >= 'A' && scope[i] <= 'Z') || (scope[i] >= 'a' && scope[i] <= 'z') ||
             (scope[i] >= '0' && scope[i] <= '9') || scope[i] == '@';
    snprintf(out, cap, "%s", ok ? scope : "other");
}

void metrics_observe_runpod(MetricsState *m, const RateQuota *q, const Snapshot *snap)
{
    if (!m)
        return;
    MetricsRunpod *r = &m->runpod;
    if (q && (q->known || q->malformed)) {
        r->quota_seen = true;
        r->remaining = ratelimit_remaining(q);
        r->reset_in_sec = ratelimit_reset_in(q);
        r->malformed = q->malformed;
        r->n_windows = 0;
        for (size_t i = 0; q->known && i < q->n && i < RATE_WINDOWS_MAX; i++) {
            const RateWindow *w = &q->w[i];
            bool reset = w->reset_sec >= 0 && q->age_sec >= (double)w->reset_sec;
            window_label(w->name, r->windows[r->n_windows].name, sizeof r->windows[0].name);
            r->windows[r->n_windows].remaining = reset ? w->quota : w->remaining;
            r->windows[r->n_windows].quota = w->quota;
            r->n_windows++;
        }
    }
    if (snap) {
        r->n_scopes = 0;
        for (size_t i = 0; i < snap->n_catalog_scopes && i < SNAP_CATALOG_SCOPES_MAX; i++) {
            const SnapCatalogScope *s = &snap->catalog_scopes[i];
            if (s->age_sec < 0)
                continue;
            scope_label(s->scope, r->scopes[r->n_scopes].scope, sizeof r->scopes[0].scope);
            r->scopes[r->n_scopes].age_sec = s->age_sec;
            r->scopes[r->n_scopes].failed = s->last_failed;
            r->n_scopes++;
        }
    }
}

/* Appends printf-style text to *buf (NULL after an allocation failure). */
static void put(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void put(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    if (!*buf)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            free(*buf);
            *buf = NULL;
            return;
        }
        if ((size_t)n < *cap - *len) {
            *len += (size_t)n;
            return;
        }
        char *bigger = realloc(*buf, *cap * 2 + (size_t)n);
        if (!bigger) {
            free(*buf);
            *buf = NULL;
            return;
        }
        *buf = bigger;
        *cap = *cap * 2 + (size_t)n;
    }
}

#define P METRICS_PREFIX
#define GAUGE(name, help) "# HELP " P name " " help "\n# TYPE " P name " gauge\n"

char *metrics_runpod_render(const MetricsState *m)
{
    size_t len = 0, cap = 1024;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    buf[0] = '\0';
    const MetricsRunpod *r = &m->runpod;
    if (r->quota_seen) {
        put(&buf, &len, &cap,
            GAUGE("runpod_rate_limit_header_malformed",
                  "1 when RunPod's last RateLimit header could not be read (the quota is then "
                  "unknown and creates are not held back by it).") P
            "runpod_rate_limit_header_malformed %d\n",
            r->malformed ? 1 : 0);
        if (r->remaining >= 0)
            put(&buf, &len, &cap,
                GAUGE("runpod_rate_limit_remaining",
                      "RunPod API calls the rate-limit quota allows now (the smallest window, "
                      "as last seen; absent while unknown).") P "runpod_rate_limit_remaining "
                                                                "%lld\n",
                r->remaining);
        if (r->reset_in_sec >= 0)
            put(&buf, &len, &cap,
                GAUGE("runpod_rate_limit_reset_seconds",
                      "Seconds until the window holding the quota down resets (or a 429's "
                      "Retry-After ends).") P "runpod_rate_limit_reset_seconds %.0f\n",
                r->reset_in_sec);
        if (r->n_windows > 0) {
            put(&buf, &len, &cap,
                GAUGE("runpod_rate_limit_window_remaining",
                      "Calls left in each RunPod rate-limit window (RateLimit r), as last "
                      "seen."));
            for (size_t i = 0; i < r->n_windows; i++)
                if (r->windows[i].remaining >= 0)
                    put(&buf, &len, &cap,
                        P "runpod_rate_limit_window_remaining{window=\"%s\"} "
                          "%lld\n",
                        r->windows[i].name, r->windows[i].remaining);
            put(&buf, &len, &cap,
                GAUGE("runpod_rate_limit_window_quota",
                      "The quota of each RunPod rate-limit window (RateLimit-Policy q)."));
            for (size_t i = 0; i < r->n_windows; i++)
                if (r->windows[i].quota >= 0)
                    put(&buf, &len, &cap, P "runpod_rate_limit_window_quota{window=\"%s\"} %lld\n",
                        r->windows[i].name, r->windows[i].quota);
        }
    }
    if (r->n_scopes > 0) {
        put(&buf, &len, &cap,
            GAUGE("gpu_catalog_age_seconds",
                  "Age of the last successful read of RunPod's GPU catalog, per cloud and "
                  "data-center filter."));
        for (size_t i = 0; i < r->n_scopes; i++)
            put(&buf, &len, &cap, P "gpu_catalog_age_seconds{scope=\"%s\"} %lld\n",
                r->scopes[i].scope, r->scopes[i].age_sec);
        put(&buf, &len, &cap,
            GAUGE("gpu_catalog_last_read_failed",
                  "1 when the last read of RunPod's GPU catalog failed (GPU types are then "
                  "tried in the configured order)."));
        for (size_t i = 0; i < r->n_scopes; i++)
            put(&buf, &len, &cap, P "gpu_catalog_last_read_failed{scope=\"%s\"} %d\n",
                r->scopes[i].scope, r->scopes[i].failed ? 1 : 0);
    }
    return buf;
}
