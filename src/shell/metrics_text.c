/* metrics_text.c -- the metrics in the Prometheus text exposition format 0.0.4, and the
 * node_exporter textfile: rendering (metrics_render), reading the counters back
 * (metrics_file_load) and the atomic write (metrics_file_write). See metrics.h.
 *
 * Shell module: I/O and logging only in the two textfile functions. Every pool-labelled family
 * shows the configured pools (their names come from the configuration, at most PLAN_POOLS_MAX)
 * and, where something belongs to no configured pool, METRICS_NO_POOL.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"
#include "metrics_family.h"

/* ------------------------------------------------------------------------------------------ */
/* Rendering                                                                                   */

typedef MetricsBuf Buf;

static void buf_printf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void buf_printf(Buf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = true;
        va_end(ap2);
        return;
    }
    if ((size_t)n >= b->cap - b->len) {
        size_t cap = b->cap;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) {
            b->oom = true;
            va_end(ap2);
            return;
        }
        b->data = p;
        b->cap = cap;
        vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap2);
    }
    va_end(ap2);
    b->len += (size_t)n;
}

/* HELP and TYPE lines of a family. */
static void family(Buf *b, const char *name, const char *type, const char *help)
{
    buf_printf(b, "# HELP %s%s %s\n# TYPE %s%s %s\n", METRICS_PREFIX, name, help, METRICS_PREFIX,
               name, type);
}

/* A label value with \, " and newline escaped (exposition format 0.0.4). */
static void label_value(Buf *b, const char *v)
{
    for (const char *p = v; *p; p++) {
        if (*p == '\\')
            buf_printf(b, "\\\\");
        else if (*p == '"')
            buf_printf(b, "\\\"");
        else if (*p == '\n')
            buf_printf(b, "\\n");
        else
            buf_printf(b, "%c", *p);
    }
}

/* One sample: name, up to two labels (l2 NULL for one, l1 NULL for none), its value. */
static void sample(Buf *b, const char *name, const char *l1, const char *v1, const char *l2,
                   const char *v2, double v)
{
    buf_printf(b, "%s%s", METRICS_PREFIX, name);
    if (l1) {
        buf_printf(b, "{%s=\"", l1);
        label_value(b, v1);
        if (l2) {
            buf_printf(b, "\",%s=\"", l2);
            label_value(b, v2);
        }
        buf_printf(b, "\"}");
    }
    if (isnan(v))
        buf_printf(b, " NaN\n");
    else
        buf_printf(b, " %.15g\n", v);
}

void metrics_buf_printf(MetricsBuf *b, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof small)
        b->oom = true; /* the pieces of issue 17 print short lines only */
    else
        buf_printf(b, "%s", small);
}

void metrics_buf_family(MetricsBuf *b, const char *name, const char *type, const char *help)
{
    family(b, name, type, help);
}

void metrics_buf_label_value(MetricsBuf *b, const char *v)
{
    label_value(b, v);
}

void metrics_buf_sample(MetricsBuf *b, const char *name, const char *l1, const char *v1,
                        const char *l2, const char *v2, double v)
{
    sample(b, name, l1, v1, l2, v2, v);
}

static void gauge(Buf *b, const char *name, const char *help, double v)
{
    family(b, name, "gauge", help);
    sample(b, name, NULL, NULL, NULL, NULL, v);
}

/* The fleet and queue gauges, one sample per pool. */
static void render_fleet(Buf *b, const MetricsState *m)
{
    static const char *const states[] = {"spawning", "active",      "idle",
                                         "busy",     "terminating", "stopped"};
    family(b, "workers", "gauge",
           "Workers by state and pool after the last cycle's plan (active = idle + busy; "
           "stopped: warm pods kept stopped, never capacity).");
    for (size_t p = 0; p < m->n_pools; p++) {
        const MetricsPool *e = &m->pools[p];
        const long long v[] = {e->spawning, e->active,      e->idle,
                               e->busy,     e->terminating, e->stopped};
        for (size_t s = 0; s < sizeof states / sizeof states[0]; s++)
            sample(b, "workers", "state", states[s], "pool", e->name, (double)v[s]);
    }
    family(b, "tasks", "gauge",
           "Tasks by pool: queued (claimable tasks of the pool's run types, plus those re-queued "
           "this cycle) and running (In Progress, held by the pool's workers).");
    for (size_t p = 0; p < m->n_pools; p++) {
        const MetricsPool *e = &m->pools[p];
        if (e->configured)
            sample(b, "tasks", "state", "queued", "pool", e->name, (double)e->tasks_queued);
        sample(b, "tasks", "state", "running", "pool", e->name, (double)e->tasks_running);
    }
    gauge(b, "tasks_queued_all",
          "Every Queued task, including those not claimable yet (dependencies, "
          "available_at) and those no pool serves.",
          (double)m->tasks_queued_all);
    if (m->n_unserved > 0) {
        family(b, "tasks_unserved", "gauge",
               "Queued tasks of a run type that no pool serves (never claimed until a pool "
               "does), by run type.");
        for (size_t k = 0; k < m->n_unserved; k++)
            sample(b, "tasks_unserved", "run_type", m->unserved[k].run_type, NULL, NULL,
                   (double)m->unserved[k].queued);
    }
    family(b, "queue_oldest_task_age_seconds", "gauge",
           "Age of the oldest Queued task of the pool's run types (0 when none).");
    for (size_t p = 0; p < m->n_pools; p++)
        if (m->pools[p].configured)
            sample(b, "queue_oldest_task_age_seconds", "pool", m->pools[p].name, NULL, NULL,
                   (double)m->pools[p].oldest_queued_age_sec);
    family(b, "workers_desired", "gauge",
           "Pool size the last cycle aimed for (SPEC 6 step 6, per pool).");
    for (size_t p = 0; p < m->n_pools; p++)
        if (m->pools[p].configured)
            sample(b, "workers_desired", "pool", m->pools[p].name, NULL, NULL,
                   (double)m->pools[p].desired);
}

/* The spawn limits, the breaker and the cost, one sample per pool. */
static void render_limits(Buf *b, const MetricsState *m)
{
    family(b, "breaker_open", "gauge",
           "1 while the pool's failure-rate circuit breaker pauses its spawning.");
    for (size_t p = 0; p < m->n_pools; p++)
        if (m->pools[p].configured)
            sample(b, "breaker_open", "pool", m->pools[p].name, NULL, NULL,
                   m->pools[p].breaker_open ? 1 : 0);
    family(b, "spawn_limited", "gauge",
           "1 for the reason the last cycle spawned fewer workers than the pool desired, else 0.");
    for (size_t p = 0; p < m->n_pools; p++) {
        if (!m->pools[p].configured)
            continue;
        for (int l = SPAWN_LIMIT_NONE + 1; l < 64; l++) {
            const char *name = spawn_limit_str((SpawnLimit)l);
            if (strcmp(name, "unknown") == 0)
                break;
            sample(b, "spawn_limited", "reason", name, "pool", m->pools[p].name,
                   m->pools[p].spawn_limit == (SpawnLimit)l ? 1 : 0);
        }
    }
    family(b, "fleet_cost_per_hour_usd", "gauge",
           "Cost per hour of the live fleet as the spend cap counts it, by pool: per pod the "
           "larger of its price and what RunPod billed for it ((none): also pods billed that no "
           "worker row records).");
    for (size_t p = 0; p < m->n_pools; p++)
        sample(b, "fleet_cost_per_hour_usd", "pool", m->pools[p].name, NULL, NULL,
               m->pools[p].cost_per_hr);
    gauge(b, "spend_estimated_usd_per_hour",
          "The fleet's cost per hour from the pods' prices alone (stopped pods at their disk's "
          "price).",
          m->spend_estimated);
    if (m->billing_known)
        gauge(b, "spend_billed_usd_per_hour",
              "What RunPod billed for pods in the last complete hour (GET /v2/billing/pods; "
              "absent while no recent read is known).",
              m->spend_billed);
    gauge(b, "tasks_held_by_others",
          "In Progress tasks held by a claimer that never was one of our workers (never "
          "recovered by the orchestrator).",
          (double)m->tasks_foreign_held);
}

char *metrics_render(const MetricsState *m)
{
    Buf b = {.data = malloc(16384), .len = 0, .cap = 16384, .oom = false};
    if (!b.data)
        return NULL;
    b.data[0] = '\0';

    family(&b, "build_info", "gauge", "Always 1; the version label names the build.");
    sample(&b, "build_info", "version", ORCH_VERSION, NULL, NULL, 1);
    gauge(&b, "safe_mode", "1 when SAFE_MODE is on (plan and report only, never act).",
          m->safe_mode ? 1 : 0);
    if (m->fleet_known)
        render_fleet(&b, m);
    gauge(&b, "workers_min", "MIN_ACTIVE_GPUS.", (double)m->workers_min);
    gauge(&b, "workers_max", "MAX_ACTIVE_GPUS.", (double)m->workers_max);
    if (m->fleet_known)
        render_limits(&b, m);
    if (m->cycle_seen)
        gauge(&b, "cycle_duration_seconds", "Wall time of the last cycle.", m->cycle_duration_sec);
    if (m->last_success_epoch > 0)
        gauge(&b, "last_success_timestamp_seconds",
              "Unix time at which the last successful cycle ended.", m->last_success_epoch);

    for (size_t f = 0; f < METRICS_N_COUNTERS; f++) {
        const MetricsFamily *fam = &METRICS_COUNTERS[f];
        const MetricsCounter *c = metrics_family_of_const(m, fam);
        family(&b, fam->name, "counter", fam->help);
        for (size_t i = 0; i < c->count; i++)
            sample(&b, fam->name, fam->label, c->samples[i].label, fam->by_pool ? "pool" : NULL,
                   c->samples[i].pool, c->samples[i].value);
    }
    metrics_ops_render(&b, m);
    char *runpod = metrics_runpod_render(m);
    if (runpod)
        buf_printf(&b, "%s", runpod);
    else
        b.oom = true;
    free(runpod);
    if (b.oom) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

/* ------------------------------------------------------------------------------------------ */
/* Textfile (node_exporter textfile collector)                                                 */

/* Reads `<name>="<value>"` at *p (a value of [a-z0-9_], or METRICS_NO_POOL for the pool label),
 * advancing *p past the closing quote. Returns the value (NUL-terminated in place) or NULL. */
static char *take_label(char **p, const char *name)
{
    bool pool = strcmp(name, "pool") == 0;
    size_t n = strlen(name);
    if (strncmp(*p, name, n) != 0 || strncmp(*p + n, "=\"", 2) != 0)
        return NULL;
    char *value = *p + n + 2;
    size_t vn = pool && strncmp(value, METRICS_NO_POOL "\"", sizeof METRICS_NO_POOL) == 0
                    ? sizeof METRICS_NO_POOL - 1
                    : strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789_");
    if (vn == 0 || vn >= METRICS_LABEL_MAX || value[vn] != '"')
        return NULL;
    value[vn] = '\0';
    *p = value + vn + 1;
    return value;
}

/* Parses one counter sample `<label>="<v>"[,pool="<p>"]} <number>` of family f (rest is what
 * follows the `{`) into the state. A pool-labelled family needs a pool this configuration knows
 * (a pool since removed from POOLS ends its series); anything malformed is ignored. */
static void load_counter(MetricsState *m, const MetricsFamily *f, char *rest)
{
    char *p = rest;
    char *value = take_label(&p, f->label);
    if (!value)
        return;
    const char *pool = "";
    if (f->by_pool) {
        if (*p++ != ',')
            return;
        char *pv = take_label(&p, "pool");
        if (!pv || !metrics_pool_known(m, pv))
            return;
        pool = pv;
    }
    if (strncmp(p, "} ", 2) != 0)
        return;
    char *num = p + 2;
    char *end = NULL;
    errno = 0;
    double v = strtod(num, &end);
    if (errno != 0 || end == num || !isfinite(v) || v < 0)
        return;
    metrics_counter_set(metrics_family_of(m, f), value, pool, v);
}

/* Parses one line `prefix<name>{<labels>} <number>` of our own output into the state. Anything
 * else is ignored. */
static void load_line(MetricsState *m, const char *line, size_t len)
{
    char text[256];
    if (len == 0 || line[0] == '#' || len >= sizeof text)
        return;
    memcpy(text, line, len);
    text[len] = '\0';
    size_t plen = strlen(METRICS_PREFIX);
    if (strncmp(text, METRICS_PREFIX, plen) != 0)
        return;
    char *name = text + plen;
    char *p = name + strcspn(name, "{ ");
    char sep = *p;
    *p = '\0';
    char *rest = p + 1;
    if (sep == '\0')
        return;

    if (strcmp(name, "last_success_timestamp_seconds") == 0 && sep == ' ') {
        char *end = NULL;
        errno = 0;
        double v = strtod(rest, &end);
        if (errno == 0 && end != rest && isfinite(v) && v > 0)
            m->last_success_epoch = v;
        return;
    }
    if (metrics_ops_load_line(m, name, sep, rest))
        return;
    if (sep != '{')
        return;
    for (size_t f = 0; f < METRICS_N_COUNTERS; f++)
        if (strcmp(name, METRICS_COUNTERS[f].name) == 0) {
            load_counter(m, &METRICS_COUNTERS[f], rest);
            return;
        }
}

Status metrics_file_load(MetricsState *m, const char *path)
{
    if (!m || !path || !path[0])
        return STATUS_OK;
    FILE *fp = fopen(path, "r");
    if (!fp) {
        if (errno == ENOENT)
            return STATUS_ERR_NOT_FOUND;
        log_warn("metrics.load_failed", "path=%s error=%s msg=\"counters start at zero\"", path,
                 strerror(errno));
        return STATUS_ERR_PARSE;
    }
    Status st = STATUS_ERR_PARSE;
    char *text = malloc(METRICS_FILE_MAX_BYTES + 1);
    if (!text) {
        st = STATUS_ERR_NOMEM;
        goto out;
    }
    size_t n = fread(text, 1, METRICS_FILE_MAX_BYTES + 1, fp);
    if (ferror(fp) || n > METRICS_FILE_MAX_BYTES) {
        log_warn("metrics.load_failed",
                 "path=%s max_bytes=%u msg=\"unreadable or too large; counters start at zero\"",
                 path, METRICS_FILE_MAX_BYTES);
        goto out;
    }
    for (size_t start = 0; start < n;) {
        const char *nl = memchr(text + start, '\n', n - start);
        size_t end = nl ? (size_t)(nl - text) : n;
        load_line(m, text + start, end - start);
        start = end + 1;
    }
    st = STATUS_OK;
out:
    free(text);
    fclose(fp);
    return st;
}

/* Writes all of buf to fd, retrying short writes and EINTR. Returns 0 or -1 (errno set). */
static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* fsyncs the directory holding path, so the rename itself survives a crash. Best effort. */
static void sync_dir_of(const char *path)
{
    char dir[CONFIG_STR_MAX + 8];
    int n = snprintf(dir, sizeof dir, "%s", path);
    if (n < 0 || (size_t)n >= sizeof dir)
        return;
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}

Status metrics_file_write(const MetricsState *m, const char *path)
{
    if (!m || !path || !path[0])
        return STATUS_OK;
    char *text = metrics_render(m);
    if (!text)
        return STATUS_ERR_NOMEM;
    Status st = STATUS_ERR_INTERNAL;
    const char *step = "path";
    char tmp[CONFIG_STR_MAX + 32];
    int fd = -1;
    int n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp) {
        errno = ENAMETOOLONG;
        goto out;
    }
    step = "open";
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        goto out;
    step = "write";
    if (write_all(fd, text, strlen(text)) != 0)
        goto out;
    step = "fsync";
    if (fsync(fd) != 0)
        goto out;
    step = "close";
    int rc = close(fd);
    fd = -1;
    if (rc != 0)
        goto out;
    step = "rename";
    if (rename(tmp, path) != 0)
        goto out;
    sync_dir_of(path);
    st = STATUS_OK;
out:
    if (st != STATUS_OK) {
        int err = errno;
        log_error("metrics.write_failed",
                  "path=%s step=%s error=%s msg=\"the textfile keeps its previous "
                  "content; check that METRICS_FILE's directory exists and is writable\"",
                  path, step, strerror(err));
        if (fd >= 0)
            close(fd);
        if (strcmp(step, "path") != 0)
            unlink(tmp);
    }
    free(text);
    return st;
}
