/* sim_report.c -- the references (clairvoyant bound, fixed fleet at MAX) and the report of the
 * policy lab (see sim_report.h).
 *
 * Pure: no I/O; deterministic formatting.
 */
#include "sim_report.h"

#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* References                                                                                  */

static int pool_of(const Config *cfg, const char *run_type)
{
    for (size_t p = 0; p < cfg->n_pools; p++)
        for (size_t r = 0; r < cfg->pools[p].run_types.count; r++)
            if (strcmp(cfg->pools[p].run_types.items[r], run_type) == 0)
                return (int)p;
    return -1;
}

/* The pool's GPU type with the lowest price per task (price x speed). */
static SimGpu best_value(const Config *cfg, const SimParams *par, size_t p)
{
    const PoolConfig *pc = &cfg->pools[p];
    SimGpu best = sim_params_gpu(par, pc->gpu_types.count ? pc->gpu_types.items[0] : "");
    for (size_t g = 1; g < pc->gpu_types.count; g++) {
        SimGpu x = sim_params_gpu(par, pc->gpu_types.items[g]);
        if (x.price_per_hr * x.speed < best.price_per_hr * best.speed)
            best = x;
    }
    return best;
}

static void ref_init(const SimTrace *t, const Config *cfg, SimResult *out, int *pool_of_rt)
{
    memset(out, 0, sizeof *out);
    out->n_pools = cfg->n_pools < PLAN_POOLS_MAX ? cfg->n_pools : PLAN_POOLS_MAX;
    for (size_t p = 0; p < out->n_pools; p++)
        snprintf(out->pools[p].name, sizeof out->pools[p].name, "%s", cfg->pools[p].name);
    snprintf(out->total.name, sizeof out->total.name, "total");
    for (size_t r = 0; r < t->n_run_types; r++)
        pool_of_rt[r] = pool_of(cfg, t->run_types[r]);
}

static void ref_totals(SimResult *out)
{
    for (size_t p = 0; p < out->n_pools; p++) {
        const SimMetrics *m = &out->pools[p];
        SimMetrics *s = &out->total;
        s->tasks += m->tasks;
        s->completed += m->completed;
        s->busy_gpu_sec += m->busy_gpu_sec;
        s->idle_gpu_sec += m->idle_gpu_sec;
        s->busy_usd += m->busy_usd;
        s->idle_usd += m->idle_usd;
        s->pods_created += m->pods_created;
        s->peak_fleet += m->peak_fleet;
        if (m->wait_max_sec > s->wait_max_sec)
            s->wait_max_sec = m->wait_max_sec;
    }
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* Most intervals [start, end) open at once; ev holds +starts and -ends encoded as 2t+1 / 2t. */
static long long peak_of(long long *ev, size_t n)
{
    qsort(ev, n, sizeof *ev, cmp_ll);
    long long live = 0, peak = 0;
    for (size_t i = 0; i < n; i++) {
        live += ev[i] % 2 != 0 ? 1 : -1;
        if (live > peak)
            peak = live;
    }
    return peak;
}

/* A min-heap of busy pods' free times (the pool's pods still running a task). */
static void heap_push(long long *h, size_t *n, long long v)
{
    size_t i = (*n)++;
    while (i > 0 && h[(i - 1) / 2] > v) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = v;
}

static long long heap_pop(long long *h, size_t *n)
{
    long long top = h[0], v = h[--*n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && h[c + 1] < h[c])
            c++;
        if (h[c] >= v)
            break;
        h[i] = h[c];
        i = c;
    }
    if (*n > 0)
        h[i] = v;
    return top;
}

/* Each task in arrival order: pods that finished by its arrival move from the busy heap to the
 * back of the free queue, which stays sorted by free time (arrivals only grow); pods idle
 * longer than a boot leave at its front (their end goes to the peak sweep); the task takes the
 * pod that finished last (the back), else a new pod. O(n log n) for n tasks, bursts included.
 * A task runs at most the pool's TASK_STUCK_TIMEOUT_SEC, after which the system fails it. */
Status sim_clairvoyant(const SimTrace *t, const Config *cfg, const SimParams *par, SimResult *out)
{
    int prt[SIM_TYPES_MAX];
    ref_init(t, cfg, out, prt);
    long long *busy_at = malloc((t->n + 1) * sizeof *busy_at);
    long long *free_q = malloc((t->n + 1) * sizeof *free_q);
    long long *ev = malloc((2 * t->n + 2) * sizeof *ev);
    if (!busy_at || !free_q || !ev) {
        free(busy_at);
        free(free_q);
        free(ev);
        return STATUS_ERR_NOMEM;
    }
    for (size_t p = 0; p < out->n_pools; p++) {
        SimGpu g = best_value(cfg, par, p);
        long long boot = llround(g.boot_median_sec * 1000.0);
        long long stuck = (long long)cfg->pools[p].task_stuck_timeout_sec * 1000;
        SimMetrics *m = &out->pools[p];
        size_t n_busy = 0, head = 0, tail = 0, n_ev = 0;
        long long busy = 0, idle = 0;
        for (size_t i = 0; i < t->n; i++) {
            const SimTraceTask *k = &t->tasks[i];
            if (prt[k->run_type] != (int)p)
                continue;
            long long a = k->arrival_ms, d = llround((double)k->duration_ms * g.speed);
            if (stuck > 0 && d > stuck)
                d = stuck;
            m->tasks++;
            m->completed++;
            while (n_busy > 0 && busy_at[0] <= a)
                free_q[tail++] = heap_pop(busy_at, &n_busy);
            while (head < tail && free_q[head] < a - boot)
                ev[n_ev++] = 2 * free_q[head++];
            busy += d;
            if (head < tail) {
                idle += a - free_q[--tail];
            } else {
                idle += boot;
                m->pods_created++;
                ev[n_ev++] = 2 * (a - boot) + 1;
            }
            heap_push(busy_at, &n_busy, a + d);
            if (head == tail)
                head = tail = 0; /* the queue is empty: reuse its room */
        }
        for (size_t j = head; j < tail; j++)
            ev[n_ev++] = 2 * free_q[j];
        for (size_t j = 0; j < n_busy; j++)
            ev[n_ev++] = 2 * busy_at[j];
        m->peak_fleet = peak_of(ev, n_ev);
        m->busy_gpu_sec = (double)busy / 1000.0;
        m->idle_gpu_sec = (double)idle / 1000.0;
        m->busy_usd = (double)busy / 3.6e6 * g.price_per_hr;
        m->idle_usd = (double)idle / 3.6e6 * g.price_per_hr;
    }
    free(busy_at);
    free(free_q);
    free(ev);
    ref_totals(out);
    return STATUS_OK;
}

Status sim_fixed_max(const SimTrace *t, const Config *cfg, const SimParams *par, SimResult *out)
{
    int prt[SIM_TYPES_MAX];
    ref_init(t, cfg, out, prt);
    /* Each pool's MAX, taken down (largest first, ties by order) to the fleet's MAX. */
    long long size[PLAN_POOLS_MAX], sum = 0;
    for (size_t p = 0; p < out->n_pools; p++)
        sum += size[p] = cfg->pools[p].max_active_gpus;
    while (sum > cfg->max_active_gpus) {
        size_t big = 0;
        for (size_t p = 1; p < out->n_pools; p++)
            if (size[p] > size[big])
                big = p;
        size[big]--;
        sum--;
    }
    long long last = t->n ? t->tasks[t->n - 1].arrival_ms : 0;
    long long horizon =
        t->end_ms > last + par->drain_sec * 1000 ? t->end_ms : last + par->drain_sec * 1000;
    double *waits = malloc((t->n + 1) * sizeof *waits);
    long long *free_at = malloc(((size_t)cfg->max_active_gpus + 1) * sizeof *free_at);
    if (!waits || !free_at) {
        free(waits);
        free(free_at);
        return STATUS_ERR_NOMEM;
    }
    size_t n_all = 0;
    double *all = malloc((t->n + 1) * sizeof *all);
    if (!all) {
        free(waits);
        free(free_at);
        return STATUS_ERR_NOMEM;
    }
    long long end = horizon;
    for (size_t p = 0; p < out->n_pools; p++) {
        const PoolConfig *pc = &cfg->pools[p];
        SimGpu g = sim_params_gpu(par, pc->gpu_types.count ? pc->gpu_types.items[0] : "");
        SimMetrics *m = &out->pools[p];
        long long c = size[p], busy = 0, pool_end = horizon;
        size_t nw = 0;
        for (long long s = 0; s < c; s++)
            free_at[s] = 0;
        for (size_t i = 0; i < t->n; i++) {
            const SimTraceTask *k = &t->tasks[i];
            if (prt[k->run_type] != (int)p)
                continue;
            m->tasks++;
            long long a = k->arrival_ms, d = llround((double)k->duration_ms * g.speed);
            if (c == 0) {
                m->unfinished++;
                continue;
            }
            long long s = 0;
            for (long long j = 1; j < c; j++)
                if (free_at[j] < free_at[s])
                    s = j;
            long long start = free_at[s] > a ? free_at[s] : a;
            waits[nw++] = (double)(start - a) / 1000.0;
            free_at[s] = start + d;
            busy += d;
            m->completed++;
            if (start + d > pool_end)
                pool_end = start + d;
        }
        if (pool_end > end)
            end = pool_end;
        memcpy(all + n_all, waits, nw * sizeof *waits);
        n_all += nw;
        sim_metrics_set_waits(m, waits, nw);
        m->pods_created = m->peak_fleet = c;
        double total = (double)c * (double)pool_end / 1000.0;
        m->busy_gpu_sec = (double)busy / 1000.0;
        m->idle_gpu_sec = total - m->busy_gpu_sec;
        m->busy_usd = m->busy_gpu_sec / 3600.0 * g.price_per_hr;
        m->idle_usd = m->idle_gpu_sec / 3600.0 * g.price_per_hr;
    }
    ref_totals(out);
    sim_metrics_set_waits(&out->total, all, n_all);
    out->end_sec = (double)end / 1000.0;
    free(waits);
    free(free_at);
    free(all);
    return STATUS_OK;
}

void sim_recorded_clear(SimRecorded *r)
{
    if (!r)
        return;
    free(r->completion_ms);
    memset(r, 0, sizeof *r);
}

void sim_policy_label(const Config *cfg, const SimParams *par, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s", sim_policy_str(par->policy));
    if (par->policy == SIM_POLICY_PLANNER) {
        if (cfg->adaptive_warm_pool)
            n += snprintf(out + n, cap > (size_t)n ? cap - (size_t)n : 0, "+warm");
        if (cfg->predictive_scale_up)
            n += snprintf(out + n, cap > (size_t)n ? cap - (size_t)n : 0, "+predict");
        if (cfg->adaptive_idle_grace)
            n += snprintf(out + n, cap > (size_t)n ? cap - (size_t)n : 0, "+grace");
    }
    if (par->gpu_choice != SIM_CHOICE_ORDERED)
        n += snprintf(out + n, cap > (size_t)n ? cap - (size_t)n : 0, "+%s",
                      sim_choice_str(par->gpu_choice));
    if (par->warm_stopped_pods > 0)
        snprintf(out + n, cap > (size_t)n ? cap - (size_t)n : 0, "+stopped%d",
                 par->warm_stopped_pods);
}

/* ------------------------------------------------------------------------------------------ */
/* Text                                                                                        */

typedef struct {
    char *s;
    size_t len, cap;
    bool oom;
} Buf;

static void put(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(Buf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n + 1;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = true;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
}

static double usd(const SimMetrics *m)
{
    return m->busy_usd + m->idle_usd + m->stopped_usd;
}

static void header(Buf *b, const char *title)
{
    put(b, "\n%-30s %9s %8s %8s %9s %9s %8s %7s %7s %7s %6s %5s %5s %5s %6s %5s\n", title,
        "dollars", "busy$", "idle$", "busyGPUh", "idleGPUh", "wait:p50", "p95", "p99", "max",
        "cold", "pods", "rest", "peak", "failed", "unfin");
}

static void row(Buf *b, const char *name, const SimMetrics *m, bool waits)
{
    put(b, "%-30.30s %9.2f %8.2f %8.2f %9.2f %9.2f ", name, usd(m), m->busy_usd,
        m->idle_usd + m->stopped_usd, m->busy_gpu_sec / 3600.0, m->idle_gpu_sec / 3600.0);
    if (waits)
        put(b, "%8.1f %7.1f %7.1f %7.1f ", m->wait_p50_sec, m->wait_p95_sec, m->wait_p99_sec,
            m->wait_max_sec);
    else
        put(b, "%8s %7s %7s %7s ", "0", "0", "0", "0");
    put(b, "%6lld %5lld %5lld %5lld %6lld %5lld\n", m->cold_starts, m->pods_created, m->restarts,
        m->peak_fleet, m->failed, m->unfinished);
}

static const SimMetrics *pick(const SimResult *r, size_t p)
{
    return p == (size_t)-1 ? &r->total : &r->pools[p];
}

static void table(Buf *b, const SimReport *r, size_t p, const char *title)
{
    header(b, title);
    for (size_t i = 0; i < r->n_runs; i++) {
        char name[2 * SIM_LABEL_MAX + 4];
        if (strcmp(r->runs[i].label, r->runs[i].policy) == 0)
            snprintf(name, sizeof name, "%s", r->runs[i].label);
        else
            snprintf(name, sizeof name, "%s (%s)", r->runs[i].label, r->runs[i].policy);
        if (p == (size_t)-1 || p < r->runs[i].result.n_pools)
            row(b, name, pick(&r->runs[i].result, p), true);
    }
    if (r->clairvoyant && (p == (size_t)-1 || p < r->clairvoyant->n_pools))
        row(b, "clairvoyant bound", pick(r->clairvoyant, p), false);
    if (r->fixed_max && (p == (size_t)-1 || p < r->fixed_max->n_pools))
        row(b, "fixed fleet at MAX", pick(r->fixed_max, p), true);
}

/* Mean and max |simulated - recorded| completion time over tasks ended in both. */
static void completion_diff(const SimRecorded *rec, const SimResult *res, double *mean, double *max,
                            long long *n)
{
    double sum = 0;
    *max = 0;
    *n = 0;
    for (size_t i = 0; i < rec->n && i < res->n_tasks; i++) {
        if (rec->completion_ms[i] < 0 || res->completion_ms[i] < 0)
            continue;
        double d = fabs((double)(res->completion_ms[i] - rec->completion_ms[i])) / 1000.0;
        sum += d;
        if (d > *max)
            *max = d;
        (*n)++;
    }
    *mean = *n ? sum / (double)*n : 0;
}

static long long last_completion(const long long *c, size_t n)
{
    long long last = -1;
    for (size_t i = 0; i < n; i++)
        if (c[i] > last)
            last = c[i];
    return last;
}

char *sim_report_text(const SimReport *r)
{
    Buf b = {malloc(4096), 0, 4096, false};
    if (!b.s)
        return NULL;
    b.s[0] = '\0';
    const SimTrace *t = r->trace;
    put(&b, "trace: %s -- %zu tasks, %zu run type%s, %.2f days observed\n", t->label, t->n,
        t->n_run_types, t->n_run_types == 1 ? "" : "s", (double)t->end_ms / 86400000.0);
    for (size_t i = 0; i < r->n_runs; i++)
        put(&b, "run %-28s %lld cycles, %lld events, ended at %.0f s%s\n", r->runs[i].label,
            r->runs[i].result.cycles, r->runs[i].result.events, r->runs[i].result.end_sec,
            r->runs[i].result.unserved ? " (tasks of unserved run types left queued)" : "");
    table(&b, r, (size_t)-1, "total");
    size_t pools = r->n_runs ? r->runs[0].result.n_pools : 0;
    for (size_t p = 0; pools > 1 && p < pools; p++) {
        char title[64];
        snprintf(title, sizeof title, "pool %s", r->runs[0].result.pools[p].name);
        table(&b, r, p, title);
    }
    put(&b, "\nwaits in seconds from arrival to first claim; cold = tasks claimed by a worker "
            "that booted after they arrived;\nrest = stopped pods restarted; idle$ includes "
            "booting, draining and stopped disks.\n");
    const SimRecorded *rec = r->recorded;
    if (rec && rec->present) {
        put(&b,
            "\nrecorded run: %lld tasks (%lld completed, %lld failed), pods created %lld, peak "
            "fleet %lld, wait p50 %.1f p95 %.1f max %.1f s, about $%.2f\n",
            rec->tasks, rec->completed, rec->failed, rec->pods_created, rec->peak_fleet,
            rec->wait_p50_sec, rec->wait_p95_sec, rec->wait_max_sec, rec->usd);
        for (size_t k = 0; k < rec->n_gpus; k++)
            put(&b,
                "measured %s: cold start (creation to promotion) median %.2f s, sigma %.2f, "
                "over %lld workers; $%.2f/h\n",
                rec->gpus[k].name, rec->gpus[k].boot_median_sec, rec->gpus[k].boot_sigma,
                rec->gpus[k].boots, rec->gpus[k].price_per_hr);
        for (size_t i = 0; i < r->n_runs; i++) {
            const SimResult *res = &r->runs[i].result;
            double mean, max;
            long long n;
            completion_diff(rec, res, &mean, &max, &n);
            put(&b,
                "calibration %s: pods created %lld vs %lld recorded, peak fleet %lld vs %lld, "
                "completion |sim - real| mean %.1f s max %.1f s over %lld tasks, last completion "
                "%.1f s vs %.1f s\n",
                r->runs[i].label, res->total.pods_created, rec->pods_created, res->total.peak_fleet,
                rec->peak_fleet, mean, max, n,
                (double)last_completion(res->completion_ms, res->n_tasks) / 1000.0,
                (double)last_completion(rec->completion_ms, rec->n) / 1000.0);
        }
    }
    if (b.oom) {
        free(b.s);
        return NULL;
    }
    return b.s;
}

/* ------------------------------------------------------------------------------------------ */
/* JSON                                                                                        */

static double r4(double x)
{
    return round(x * 10000.0) / 10000.0;
}

static cJSON *metrics_json(const SimMetrics *m, bool waits)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "name", m->name);
    cJSON_AddNumberToObject(o, "tasks", (double)m->tasks);
    cJSON_AddNumberToObject(o, "completed", (double)m->completed);
    cJSON_AddNumberToObject(o, "failed", (double)m->failed);
    cJSON_AddNumberToObject(o, "unfinished", (double)m->unfinished);
    cJSON_AddNumberToObject(o, "usd", r4(usd(m)));
    cJSON_AddNumberToObject(o, "busy_usd", r4(m->busy_usd));
    cJSON_AddNumberToObject(o, "idle_usd", r4(m->idle_usd));
    cJSON_AddNumberToObject(o, "stopped_usd", r4(m->stopped_usd));
    cJSON_AddNumberToObject(o, "busy_gpu_hours", r4(m->busy_gpu_sec / 3600.0));
    cJSON_AddNumberToObject(o, "idle_gpu_hours", r4(m->idle_gpu_sec / 3600.0));
    if (waits) {
        cJSON_AddNumberToObject(o, "wait_p50_sec", r4(m->wait_p50_sec));
        cJSON_AddNumberToObject(o, "wait_p95_sec", r4(m->wait_p95_sec));
        cJSON_AddNumberToObject(o, "wait_p99_sec", r4(m->wait_p99_sec));
        cJSON_AddNumberToObject(o, "wait_max_sec", r4(m->wait_max_sec));
        cJSON_AddNumberToObject(o, "wait_mean_sec", r4(m->wait_mean_sec));
    }
    cJSON_AddNumberToObject(o, "cold_starts", (double)m->cold_starts);
    cJSON_AddNumberToObject(o, "pods_created", (double)m->pods_created);
    cJSON_AddNumberToObject(o, "restarts", (double)m->restarts);
    cJSON_AddNumberToObject(o, "peak_fleet", (double)m->peak_fleet);
    cJSON_AddNumberToObject(o, "no_capacity", (double)m->no_capacity);
    cJSON_AddNumberToObject(o, "crashed_at_start", (double)m->crashed_at_start);
    return o;
}

static cJSON *result_json(const SimResult *res, bool waits)
{
    cJSON *o = cJSON_CreateObject();
    cJSON *pools = cJSON_CreateArray();
    if (!o || !pools) {
        cJSON_Delete(o);
        cJSON_Delete(pools);
        return NULL;
    }
    cJSON_AddItemToObject(o, "total", metrics_json(&res->total, waits));
    for (size_t p = 0; p < res->n_pools; p++)
        cJSON_AddItemToArray(pools, metrics_json(&res->pools[p], waits));
    cJSON_AddItemToObject(o, "pools", pools);
    return o;
}

char *sim_report_json(const SimReport *r)
{
    cJSON *root = cJSON_CreateObject();
    cJSON *trace = cJSON_CreateObject();
    cJSON *runs = cJSON_CreateArray();
    cJSON *rts = cJSON_CreateArray();
    if (!root || !trace || !runs || !rts) {
        cJSON_Delete(root);
        cJSON_Delete(trace);
        cJSON_Delete(runs);
        cJSON_Delete(rts);
        return NULL;
    }
    const SimTrace *t = r->trace;
    cJSON_AddStringToObject(trace, "label", t->label);
    cJSON_AddNumberToObject(trace, "tasks", (double)t->n);
    for (size_t i = 0; i < t->n_run_types; i++)
        cJSON_AddItemToArray(rts, cJSON_CreateString(t->run_types[i]));
    cJSON_AddItemToObject(trace, "run_types", rts);
    cJSON_AddNumberToObject(trace, "observed_sec", (double)t->end_ms / 1000.0);
    cJSON_AddItemToObject(root, "trace", trace);
    for (size_t i = 0; i < r->n_runs; i++) {
        const SimResult *res = &r->runs[i].result;
        cJSON *o = result_json(res, true);
        if (!o)
            continue;
        cJSON_AddStringToObject(o, "label", r->runs[i].label);
        cJSON_AddStringToObject(o, "policy", r->runs[i].policy);
        cJSON_AddNumberToObject(o, "cycles", (double)res->cycles);
        cJSON_AddNumberToObject(o, "events", (double)res->events);
        cJSON_AddNumberToObject(o, "end_sec", r4(res->end_sec));
        cJSON_AddNumberToObject(o, "unserved", (double)res->unserved);
        if (r->recorded && r->recorded->present) {
            double mean, max;
            long long n;
            completion_diff(r->recorded, res, &mean, &max, &n);
            cJSON *cal = cJSON_AddObjectToObject(o, "calibration");
            cJSON_AddNumberToObject(cal, "completion_mean_abs_diff_sec", r4(mean));
            cJSON_AddNumberToObject(cal, "completion_max_abs_diff_sec", r4(max));
            cJSON_AddNumberToObject(cal, "tasks_compared", (double)n);
            cJSON_AddNumberToObject(
                cal, "last_completion_sec",
                r4((double)last_completion(res->completion_ms, res->n_tasks) / 1000.0));
        }
        cJSON_AddItemToArray(runs, o);
    }
    cJSON_AddItemToObject(root, "runs", runs);
    if (r->clairvoyant)
        cJSON_AddItemToObject(root, "clairvoyant", result_json(r->clairvoyant, false));
    if (r->fixed_max)
        cJSON_AddItemToObject(root, "fixed_max", result_json(r->fixed_max, true));
    const SimRecorded *rec = r->recorded;
    if (rec && rec->present) {
        cJSON *o = cJSON_AddObjectToObject(root, "recorded");
        cJSON_AddNumberToObject(o, "tasks", (double)rec->tasks);
        cJSON_AddNumberToObject(o, "completed", (double)rec->completed);
        cJSON_AddNumberToObject(o, "failed", (double)rec->failed);
        cJSON_AddNumberToObject(o, "pods_created", (double)rec->pods_created);
        cJSON_AddNumberToObject(o, "peak_fleet", (double)rec->peak_fleet);
        cJSON_AddNumberToObject(o, "wait_p50_sec", r4(rec->wait_p50_sec));
        cJSON_AddNumberToObject(o, "wait_p95_sec", r4(rec->wait_p95_sec));
        cJSON_AddNumberToObject(o, "wait_max_sec", r4(rec->wait_max_sec));
        cJSON_AddNumberToObject(o, "usd", r4(rec->usd));
        cJSON_AddNumberToObject(o, "last_completion_sec",
                                r4((double)last_completion(rec->completion_ms, rec->n) / 1000.0));
        cJSON *g = cJSON_AddArrayToObject(o, "gpu_types");
        for (size_t k = 0; g && k < rec->n_gpus; k++) {
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "name", rec->gpus[k].name);
            cJSON_AddNumberToObject(x, "price_per_hr", r4(rec->gpus[k].price_per_hr));
            cJSON_AddNumberToObject(x, "boot_median_sec", r4(rec->gpus[k].boot_median_sec));
            cJSON_AddNumberToObject(x, "boot_sigma", r4(rec->gpus[k].boot_sigma));
            cJSON_AddNumberToObject(x, "boots", (double)rec->gpus[k].boots);
            cJSON_AddItemToArray(g, x);
        }
    }
    char *s = cJSON_Print(root);
    cJSON_Delete(root);
    return s;
}
