/* db_trace.c -- a recorded run read back as a trace for the policy lab (see db_trace.h).
 *
 * Shell module. Two parameterised, read-only statements; every value is copied out of the
 * PGresult before it is cleared; a malformed cell is a database error, never a crash.
 */
#include "db_trace.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_exec.h"
#include "log.h"

/* Tasks created in the window, oldest first (the claim order), with the database's now(). A
 * created_at that is infinite or in the future is no arrival of this window: skipped. */
static const char SQL_TRACE_TASKS[] =
    "SELECT extract(epoch FROM t.created_at)::float8, t.run_type, t.task_type, t.status::text,"
    " extract(epoch FROM t.generation_started_at)::float8,"
    " extract(epoch FROM t.generation_processed_at)::float8, t.attempts,"
    " extract(epoch FROM now())::float8"
    " FROM tasks t WHERE t.created_at > now() - make_interval(secs => $1::float8)"
    " AND t.created_at <= now() AND isfinite(t.created_at)"
    " ORDER BY t.created_at, t.id LIMIT $2::int";

/* Workers live at some time within the window: created, promoted, left service (now when
 * still live), pool, GPU type and price, and when their last boot began -- the pod's last
 * (re)start: orchestrator_restart_worker (0011) keeps created_at, so a restarted pod's
 * promoted_at - created_at would include its whole stopped time. */
static const char SQL_TRACE_WORKERS[] =
    "SELECT extract(epoch FROM w.created_at)::float8, extract(epoch FROM w.promoted_at)::float8,"
    " extract(epoch FROM coalesce(w.ended_at, now()))::float8, w.pool,"
    " coalesce(w.gpu_type, ''), coalesce(w.cost_per_hr, 0)::float8,"
    " extract(epoch FROM coalesce(w.restarted_at, w.created_at))::float8"
    " FROM workers w WHERE coalesce(w.ended_at, now()) > now() - make_interval(secs => $1::float8)"
    " ORDER BY w.created_at, w.id LIMIT $2::int";

/* A finite float8 cell: NULL, malformed, Infinity (an infinite timestamp) and NaN are absent. */
static bool cell(const PGresult *res, int r, int c, double *out)
{
    if (PQgetisnull(res, r, c))
        return false;
    const char *s = PQgetvalue(res, r, c);
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v))
        return false;
    *out = v;
    return true;
}

typedef struct {
    double created, started, processed;
    bool has_started, has_processed;
    int attempts;
    char status[16];
    char run_type[SNAP_NAME_MAX];
    char task_type[SNAP_NAME_MAX];
} Row;

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median_of(double *v, size_t n)
{
    if (n == 0)
        return -1;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Nearest-rank percentile of sorted v. */
static double rank(const double *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t k = (size_t)ceil(p * (double)n);
    return v[(k > 0 ? k : 1) - 1];
}

static Status load_tasks(PGconn *conn, const char *since, Row **rows, size_t *n, double *now)
{
    char limit[16];
    snprintf(limit, sizeof limit, "%d", DB_TRACE_MAX_TASKS);
    const char *p[] = {since, limit};
    PGresult *res = db_exec_params(conn, "trace_tasks", SQL_TRACE_TASKS, 2, p, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    int m = PQntuples(res);
    Row *out = calloc((size_t)(m > 0 ? m : 1), sizeof *out);
    if (!out) {
        PQclear(res);
        return STATUS_ERR_NOMEM;
    }
    for (int r = 0; r < m; r++) {
        Row *x = &out[r];
        double att = 0;
        if (!cell(res, r, 0, &x->created) || !cell(res, r, 7, now)) {
            log_error("db.bad_value", "column=created_at row=%d", r);
            free(out);
            PQclear(res);
            return STATUS_ERR_DB;
        }
        snprintf(x->run_type, sizeof x->run_type, "%s", PQgetvalue(res, r, 1));
        snprintf(x->task_type, sizeof x->task_type, "%s", PQgetvalue(res, r, 2));
        snprintf(x->status, sizeof x->status, "%s", PQgetvalue(res, r, 3));
        /* infinite, or before the task was created: not a time this run recorded */
        x->has_started = cell(res, r, 4, &x->started) && x->started >= x->created;
        x->has_processed = cell(res, r, 5, &x->processed) && x->processed >= x->created;
        x->attempts = cell(res, r, 6, &att) ? (int)att : 0;
    }
    PQclear(res);
    *rows = out;
    *n = (size_t)m;
    return STATUS_OK;
}

typedef struct {
    double created, promoted, end, price, boot_from;
    bool has_promoted;
    char pool[SNAP_POOL_NAME_MAX];
    char gpu[SNAP_NAME_MAX];
} WRow;

static Status load_workers(PGconn *conn, const char *since, WRow **rows, size_t *n)
{
    char limit[16];
    snprintf(limit, sizeof limit, "%d", DB_TRACE_MAX_WORKERS);
    const char *p[] = {since, limit};
    PGresult *res = db_exec_params(conn, "trace_workers", SQL_TRACE_WORKERS, 2, p, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    int m = PQntuples(res);
    WRow *out = calloc((size_t)(m > 0 ? m : 1), sizeof *out);
    if (!out) {
        PQclear(res);
        return STATUS_ERR_NOMEM;
    }
    size_t k = 0;
    for (int r = 0; r < m; r++) {
        WRow *x = &out[k];
        if (!cell(res, r, 0, &x->created) || !cell(res, r, 2, &x->end) || x->end < x->created) {
            log_warn("trace.worker_skipped",
                     "row=%d reason=\"created_at or ended_at not a finite "
                     "time, or ended before created\"",
                     r);
            continue;
        }
        x->has_promoted = cell(res, r, 1, &x->promoted);
        if (!cell(res, r, 6, &x->boot_from))
            x->boot_from = x->created;
        snprintf(x->pool, sizeof x->pool, "%s", PQgetvalue(res, r, 3));
        snprintf(x->gpu, sizeof x->gpu, "%s", PQgetvalue(res, r, 4));
        if (!cell(res, r, 5, &x->price))
            x->price = 0;
        k++;
    }
    PQclear(res);
    *rows = out;
    *n = k;
    return STATUS_OK;
}

/* Median duration of each run type's timed tasks (for the tasks not finished); names[k] is
 * the run type of med[k]. Returns the number of run types, or -1 when out of memory. */
static long long run_type_medians(const Row *rows, size_t n, char (*names)[SNAP_NAME_MAX],
                                  double *med)
{
    size_t nt = 0;
    double *d = malloc(n * sizeof *d);
    if (!d)
        return -1;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < nt && strcmp(names[k], rows[i].run_type) != 0)
            k++;
        if (k < nt || nt >= SIM_TYPES_MAX)
            continue;
        snprintf(names[nt], SNAP_NAME_MAX, "%s", rows[i].run_type);
        size_t m = 0;
        for (size_t j = i; j < n; j++)
            if (strcmp(rows[j].run_type, names[nt]) == 0 && rows[j].has_started &&
                rows[j].has_processed && rows[j].processed >= rows[j].started)
                d[m++] = rows[j].processed - rows[j].started;
        med[nt++] = m ? median_of(d, m) : 60;
    }
    free(d);
    return (long long)nt;
}

/* The trace and the recorded completions and waits from the task rows; t0 = first created. */
static Status build_trace(const Row *rows, size_t n, SimTrace *t, SimRecorded *rec)
{
    double t0 = rows[0].created;
    char names[SIM_TYPES_MAX][SNAP_NAME_MAX];
    double med[SIM_TYPES_MAX];
    long long nt = run_type_medians(rows, n, names, med);
    double *waits = malloc(n * sizeof *waits);
    rec->completion_ms = malloc(n * sizeof *rec->completion_ms);
    if (nt < 0 || !waits || !rec->completion_ms) {
        free(waits);
        return STATUS_ERR_NOMEM;
    }
    rec->n = n;
    size_t nw = 0;
    for (size_t i = 0; i < n; i++) {
        const Row *x = &rows[i];
        bool complete = strcmp(x->status, "Complete") == 0;
        bool failed = strcmp(x->status, "Failed") == 0;
        bool timed = x->has_started && x->has_processed && x->processed >= x->started;
        rec->tasks++;
        rec->completed += complete;
        rec->failed += failed;
        rec->completion_ms[i] =
            (complete || failed) && x->has_processed ? llround((x->processed - t0) * 1000) : -1;
        if (x->has_started && x->attempts == 0)
            waits[nw++] = x->started - x->created > 0 ? x->started - x->created : 0;
        double dur = timed ? x->processed - x->started : 60;
        for (long long k = 0; !timed && k < nt; k++)
            if (strcmp(names[k], x->run_type) == 0)
                dur = med[k];
        SimOutcome oc = failed                        ? SIM_OUTCOME_FAIL
                        : complete && x->attempts > 0 ? SIM_OUTCOME_FAIL
                                                      : SIM_OUTCOME_OK;
        Status st = sim_trace_add(t, llround((x->created - t0) * 1000), x->run_type, x->task_type,
                                  llround(dur * 1000), oc, failed ? 0 : x->attempts);
        if (st != STATUS_OK) {
            free(waits);
            return st;
        }
    }
    qsort(waits, nw, sizeof *waits, cmp_double);
    rec->wait_p50_sec = rank(waits, nw, 0.5);
    rec->wait_p95_sec = rank(waits, nw, 0.95);
    rec->wait_max_sec = nw ? waits[nw - 1] : 0;
    free(waits);
    return STATUS_OK;
}

typedef struct {
    double t;
    int delta; /* +1 a pod starts, -1 one ends */
} Edge;

static int cmp_edge(const void *a, const void *b)
{
    const Edge *x = a, *y = b;
    if (x->t != y->t)
        return x->t < y->t ? -1 : 1;
    return x->delta - y->delta; /* ends first at equal times */
}

/* The fleet at t0, pods created after it, the peak, the money, and each GPU type's boots. */
static Status build_fleet(const WRow *w, size_t n, double t0, double poll_sec, SimTrace *t,
                          SimRecorded *rec)
{
    Edge *ev = malloc((2 * n + 1) * sizeof *ev);
    double *boots = malloc((n + 1) * sizeof *boots);
    if (!ev || !boots) {
        free(ev);
        free(boots);
        return STATUS_ERR_NOMEM;
    }
    size_t ne = 0;
    for (size_t i = 0; i < n; i++) {
        if (w[i].end <= t0)
            continue;
        if (w[i].created <= t0) { /* live at the start */
            size_t k = 0;
            while (k < t->n_initial && strcmp(t->initial_pool[k], w[i].pool) != 0)
                k++;
            if (k == t->n_initial && k < SIM_INITIAL_MAX) {
                snprintf(t->initial_pool[k], sizeof t->initial_pool[k], "%s", w[i].pool);
                t->initial_count[k] = 0;
                t->n_initial++;
            }
            if (k < SIM_INITIAL_MAX)
                t->initial_count[k]++;
        } else {
            rec->pods_created++;
        }
        double from = w[i].created > t0 ? w[i].created : t0;
        ev[ne++] = (Edge){from, 1};
        ev[ne++] = (Edge){w[i].end, -1};
        rec->usd += w[i].price * (w[i].end - from) / 3600.0;
    }
    qsort(ev, ne, sizeof *ev, cmp_edge);
    long long live = 0;
    for (size_t i = 0; i < ne; i++) {
        live += ev[i].delta;
        if (live > rec->peak_fleet)
            rec->peak_fleet = live;
    }
    /* Boots and prices per GPU type. */
    rec->n_gpus = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < rec->n_gpus && strcmp(rec->gpus[k].name, w[i].gpu) != 0)
            k++;
        if (k == rec->n_gpus) {
            if (k >= SIM_GPUS_MAX || !w[i].gpu[0])
                continue;
            memset(&rec->gpus[k], 0, sizeof rec->gpus[k]);
            snprintf(rec->gpus[k].name, sizeof rec->gpus[k].name, "%s", w[i].gpu);
            rec->n_gpus++;
        }
        if (w[i].price > 0)
            rec->gpus[k].price_per_hr = w[i].price;
    }
    for (size_t k = 0; k < rec->n_gpus; k++) {
        SimRecordedGpu *f = &rec->gpus[k];
        size_t nb = 0;
        for (size_t i = 0; i < n; i++)
            if (w[i].has_promoted && w[i].promoted >= w[i].boot_from &&
                strcmp(w[i].gpu, f->name) == 0) {
                double b = w[i].promoted - w[i].boot_from - poll_sec / 2;
                boots[nb++] = b > 0.05 ? b : 0.05;
            }
        f->boots = (long long)nb;
        f->boot_median_sec = nb ? median_of(boots, nb) : -1;
        double mean = 0, var = 0;
        for (size_t i = 0; i < nb; i++)
            mean += log(boots[i]) / (double)nb;
        for (size_t i = 0; i < nb; i++)
            var += (log(boots[i]) - mean) * (log(boots[i]) - mean);
        f->boot_sigma = nb > 1 ? sqrt(var / (double)(nb - 1)) : 0;
    }
    free(ev);
    free(boots);
    return STATUS_OK;
}

Status db_load_trace(PGconn *conn, long long since_sec, double poll_sec, SimTrace *trace,
                     SimRecorded *rec)
{
    char since[32];
    snprintf(since, sizeof since, "%lld", since_sec);
    Row *rows = NULL;
    WRow *wrows = NULL;
    size_t n = 0, nw = 0;
    double now = 0;
    SimTrace *t = calloc(1, sizeof *t);
    SimRecorded *r = calloc(1, sizeof *r);
    Status st = t && r ? STATUS_OK : STATUS_ERR_NOMEM;
    if (st == STATUS_OK)
        st = load_tasks(conn, since, &rows, &n, &now);
    if (st == STATUS_OK)
        st = load_workers(conn, since, &wrows, &nw);
    if (st == STATUS_OK && n == 0)
        st = STATUS_ERR_NOT_FOUND;
    if (st == STATUS_OK)
        st = build_trace(rows, n, t, r);
    if (st == STATUS_OK)
        st = build_fleet(wrows, nw, rows[0].created, poll_sec, t, r);
    if (st == STATUS_OK) {
        sim_trace_finish(t);
        t->end_ms = llround((now - rows[0].created) * 1000);
        snprintf(t->label, sizeof t->label, "recorded run, last %llds", since_sec);
        r->present = true;
        t->initial_recorded = true;
        *trace = *t;
        *rec = *r;
    } else {
        sim_trace_clear(t);
        sim_recorded_clear(r);
    }
    free(rows);
    free(wrows);
    free(t);
    free(r);
    return st;
}
