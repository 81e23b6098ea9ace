/* metrics.c -- Prometheus metrics of the control cycle (see metrics.h).
 *
 * Shell module: no I/O or logging except the textfile reader and writer at the end. Label
 * values come only from fixed name tables (planner reasons, cycle results, RunPod error
 * classes), never from ids or configuration values, so cardinality stays bounded.
 */
#include "metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cJSON.h>

#include "log.h"
#include "retry.h"

#define OTHER_LABEL "other"

/* ------------------------------------------------------------------------------------------ */
/* Counters                                                                                    */

/* Slot of label in c, added at 0 when new. The last slot is kept for "other", so a surprise
 * label folds into it and can never push a known one out. Returns c->count when full. */
static size_t counter_slot(MetricsCounter *c, const char *label)
{
    for (size_t i = 0; i < c->count; i++)
        if (strcmp(c->samples[i].label, label) == 0)
            return i;
    bool other = strcmp(label, OTHER_LABEL) == 0;
    if (c->count + 1 < METRICS_LABELS_MAX || (other && c->count < METRICS_LABELS_MAX)) {
        snprintf(c->samples[c->count].label, sizeof c->samples[c->count].label, "%s", label);
        c->samples[c->count].value = 0;
        return c->count++;
    }
    return other ? c->count : counter_slot(c, OTHER_LABEL);
}

static void counter_add(MetricsCounter *c, const char *label, double delta)
{
    size_t i = counter_slot(c, label && label[0] ? label : "unknown");
    if (i < c->count)
        c->samples[i].value += delta;
}

static void counter_set(MetricsCounter *c, const char *label, double value)
{
    size_t i = counter_slot(c, label);
    if (i < c->count)
        c->samples[i].value = value;
}

double metrics_counter_get(const MetricsCounter *c, const char *label)
{
    for (size_t i = 0; c && i < c->count; i++)
        if (strcmp(c->samples[i].label, label) == 0)
            return c->samples[i].value;
    return 0;
}

/* The counter families: name (after the prefix), label name, help, and where they live. */
typedef struct {
    const char *name;
    const char *label;
    const char *help;
    size_t offset;
} CounterFamily;

static const CounterFamily COUNTERS[] = {
    {"pods_created_total", "reason", "RunPod pods created, by the scale-up reason.",
     offsetof(MetricsState, pods_created)},
    {"pod_create_failures_total", "reason",
     "Pod creations that failed (no_capacity, outcome_unknown, or the RunPod error class).",
     offsetof(MetricsState, pod_create_failures)},
    {"pods_terminated_total", "reason", "RunPod pods terminated, by the planner reason.",
     offsetof(MetricsState, pods_terminated)},
    {"workers_failed_total", "reason", "Workers moved to error, by the health-check reason.",
     offsetof(MetricsState, workers_failed)},
    {"tasks_recovered_total", "outcome",
     "In Progress tasks taken back from failed or gone workers: requeued, or failed for good.",
     offsetof(MetricsState, tasks_recovered)},
    {"cycles_total", "result", "Control cycles run, by result (ok, locked, database, ...).",
     offsetof(MetricsState, cycles)},
    {"pod_list_entries_skipped_total", "kind",
     "Entries of RunPod's pod list that could not be fully read: skipped (no usable id) or "
     "partial (kept, a field replaced by its default). The rest of the list is still used.",
     offsetof(MetricsState, pod_list_defects)},
    {"spawns_deferred_total", "reason",
     "Planned spawns held back for a later cycle because RunPod's rate-limit quota was low "
     "(terminations are never held back).",
     offsetof(MetricsState, spawns_deferred)},
    {"gpu_catalog_reads_total", "result",
     "Reads of RunPod's GPU catalog (stock and prices), by result (ok, failed).",
     offsetof(MetricsState, catalog_reads)},
};
#define N_COUNTERS (sizeof COUNTERS / sizeof COUNTERS[0])

static MetricsCounter *family_of(MetricsState *m, const CounterFamily *f)
{
    return (MetricsCounter *)(void *)((char *)m + f->offset);
}

static const MetricsCounter *family_of_const(const MetricsState *m, const CounterFamily *f)
{
    return (const MetricsCounter *)(const void *)((const char *)m + f->offset);
}

/* ------------------------------------------------------------------------------------------ */
/* State                                                                                       */

void metrics_init(MetricsState *m, const Config *cfg)
{
    memset(m, 0, sizeof *m);
    m->workers_min = cfg->min_active_gpus;
    m->workers_max = cfg->max_active_gpus;
    m->safe_mode = cfg->safe_mode;

    /* Every label value known in advance starts at 0, so rate() sees the first increment. */
    static const Reason created[] = {REASON_BACKLOG, REASON_MIN_FLOOR, REASON_KEEP_IDLE};
    static const Reason terminated[] = {REASON_DRAINED, REASON_ERROR_CLEANUP,
                                        REASON_GRACEFUL_TIMEOUT, REASON_LEAKED_POD};
    static const Reason failed[] = {REASON_NO_POD_ID,       REASON_POD_ERROR,
                                    REASON_POD_EXITED,      REASON_POD_TERMINATED,
                                    REASON_POD_GONE,        REASON_SPAWNING_TIMEOUT,
                                    REASON_STALE_HEARTBEAT, REASON_STUCK_TASK,
                                    REASON_GPU_NOT_VISIBLE, REASON_WORKER_CRASHED};
    static const Status results[] = {STATUS_OK, STATUS_LOCKED, STATUS_ERR_DB, STATUS_ERR_API,
                                     STATUS_ERR_PARTIAL};
    for (size_t i = 0; i < sizeof created / sizeof created[0]; i++)
        counter_add(&m->pods_created, reason_str(created[i]), 0);
    for (size_t i = 0; i < sizeof terminated / sizeof terminated[0]; i++)
        counter_add(&m->pods_terminated, reason_str(terminated[i]), 0);
    for (size_t i = 0; i < sizeof failed / sizeof failed[0]; i++)
        counter_add(&m->workers_failed, reason_str(failed[i]), 0);
    for (size_t i = 0; i < sizeof results / sizeof results[0]; i++)
        counter_add(&m->cycles, status_str(results[i]), 0);
    counter_add(&m->pod_create_failures, runpod_error_str(RP_NO_CAPACITY), 0);
    counter_add(&m->pod_create_failures, "outcome_unknown", 0);
    counter_add(&m->tasks_recovered, "requeued", 0);
    counter_add(&m->tasks_recovered, "failed", 0);
    counter_add(&m->pod_list_defects, "skipped", 0);
    counter_add(&m->pod_list_defects, "partial", 0);
    counter_add(&m->spawns_deferred, "rate_limit", 0);
    counter_add(&m->catalog_reads, "ok", 0);
    counter_add(&m->catalog_reads, "failed", 0);
}

void metrics_count_catalog_read(MetricsState *m, bool ok)
{
    if (m)
        counter_add(&m->catalog_reads, ok ? "ok" : "failed", 1);
}

Status metrics_new(const Config *cfg, MetricsState **out)
{
    MetricsState *m = malloc(sizeof *m);
    if (!m)
        return STATUS_ERR_NOMEM;
    metrics_init(m, cfg);
    *out = m;
    return STATUS_OK;
}

void metrics_free(MetricsState *m)
{
    free(m);
}

static const char *json_str(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) && v->valuestring ? v->valuestring : "";
}

/* The failure class of a spawn whose result is "failed", from the actuator's detail
 * ("Failed to spawn Runpod instance: <class>[: detail]"). */
static const char *create_failure_class(const char *detail)
{
    static const char prefix[] = "Failed to spawn Runpod instance: ";
    if (strncmp(detail, prefix, sizeof prefix - 1) != 0)
        return "error";
    const char *rest = detail + sizeof prefix - 1;
    for (int c = RP_NO_CAPACITY; c <= RP_UNEXPECTED; c++) {
        const char *name = runpod_error_str((RunpodErrorClass)c);
        size_t n = strlen(name);
        if (strncmp(rest, name, n) == 0 && (rest[n] == ':' || rest[n] == '\0'))
            return name;
    }
    return "error";
}

/* Adds one actuator outcome {action, reason, result, detail} to the counters. */
static void observe_outcome(MetricsState *m, const cJSON *o)
{
    const char *action = json_str(o, "action");
    const char *reason = json_str(o, "reason");
    const char *result = json_str(o, "result");
    const char *detail = json_str(o, "detail");
    bool applied = strcmp(result, "applied") == 0;

    if (strcmp(action, action_kind_str(ACTION_SPAWN_WORKER)) == 0) {
        if (strcmp(result, "deferred") == 0)
            counter_add(&m->spawns_deferred, "rate_limit", 1);
        else if (applied || strncmp(detail, "pod created", 11) == 0)
            counter_add(&m->pods_created, reason, 1); /* the pod exists, whatever the row */
        else if (strcmp(result, "no_capacity") == 0)
            counter_add(&m->pod_create_failures, runpod_error_str(RP_NO_CAPACITY), 1);
        else if (strcmp(result, "unknown") == 0)
            counter_add(&m->pod_create_failures, "outcome_unknown", 1);
        else if (strcmp(result, "failed") == 0)
            counter_add(&m->pod_create_failures, create_failure_class(detail), 1);
        return;
    }
    if (!applied)
        return;
    if (strcmp(action, action_kind_str(ACTION_TERMINATE_WORKER)) == 0 ||
        strcmp(action, action_kind_str(ACTION_TERMINATE_POD)) == 0)
        counter_add(&m->pods_terminated, reason, 1);
    else if (strcmp(action, action_kind_str(ACTION_FAIL_WORKER)) == 0)
        counter_add(&m->workers_failed, reason, 1);
}

static double wall_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void metrics_observe_cycle(MetricsState *m, const Snapshot *snap, const Plan *plan,
                           const ActResult *act, Status st, double duration_sec)
{
    if (!m)
        return;
    if (snap && plan && snap->cycle_number > 0) {
        m->fleet_known = true;
        m->spawning = plan->spawning;
        m->active = plan->active;
        m->idle = plan->idle;
        m->busy = plan->busy;
        m->terminating = plan->terminating;
        m->tasks_queued = plan->queued;
        m->tasks_queued_all = snap->queued_total;
        m->tasks_running = plan->running;
        m->oldest_queued_age_sec =
            snap->oldest_queued_age_sec > 0 ? snap->oldest_queued_age_sec : 0;
        m->desired = plan->desired;
        m->breaker_open = plan->breaker_open;
        m->spawn_limit = plan->spawn_limit;
        m->fleet_cost_per_hr = plan->fleet_cost_per_hr;
        m->tasks_foreign_held = plan->foreign_held_tasks;
        if (snap->pods_listed) {
            counter_add(&m->pod_list_defects, "skipped", (double)snap->pods_skipped);
            counter_add(&m->pod_list_defects, "partial", (double)snap->pods_partial);
        }
        if (act) /* the planner's deferrals (a dry run acts on nothing, defers nothing) */
            counter_add(&m->spawns_deferred, "rate_limit", (double)plan->rate_deferred);
        metrics_observe_runpod(m, &snap->quota, snap);
    }
    if (act) {
        for (const cJSON *o = act->outcomes ? act->outcomes->child : NULL; o; o = o->next)
            observe_outcome(m, o);
        counter_add(&m->tasks_recovered, "requeued", (double)act->tasks_reset);
        counter_add(&m->tasks_recovered, "failed", (double)act->tasks_failed);
    }
    counter_add(&m->cycles, status_str(st), 1);
    m->cycle_seen = true;
    m->cycle_duration_sec = duration_sec >= 0 ? duration_sec : 0;
    if (st == STATUS_OK)
        m->last_success_epoch = wall_clock();
}

/* ------------------------------------------------------------------------------------------ */
/* Rendering                                                                                   */

typedef struct {
    char *data;
    size_t len, cap;
    bool oom;
} Buf;

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

static void sample(Buf *b, const char *name, const char *label, const char *value_of_label,
                   double v)
{
    buf_printf(b, "%s%s", METRICS_PREFIX, name);
    if (label) {
        buf_printf(b, "{%s=\"", label);
        label_value(b, value_of_label);
        buf_printf(b, "\"}");
    }
    if (isnan(v))
        buf_printf(b, " NaN\n");
    else
        buf_printf(b, " %.15g\n", v);
}

static void gauge(Buf *b, const char *name, const char *help, double v)
{
    family(b, name, "gauge", help);
    sample(b, name, NULL, NULL, v);
}

char *metrics_render(const MetricsState *m)
{
    Buf b = {.data = malloc(4096), .len = 0, .cap = 4096, .oom = false};
    if (!b.data)
        return NULL;
    b.data[0] = '\0';

    family(&b, "build_info", "gauge", "Always 1; the version label names the build.");
    sample(&b, "build_info", "version", ORCH_VERSION, 1);
    gauge(&b, "safe_mode", "1 when SAFE_MODE is on (plan and report only, never act).",
          m->safe_mode ? 1 : 0);

    if (m->fleet_known) {
        family(&b, "workers", "gauge",
               "Workers by state after the last cycle's plan (active = idle + busy).");
        sample(&b, "workers", "state", "spawning", (double)m->spawning);
        sample(&b, "workers", "state", "active", (double)m->active);
        sample(&b, "workers", "state", "idle", (double)m->idle);
        sample(&b, "workers", "state", "busy", (double)m->busy);
        sample(&b, "workers", "state", "terminating", (double)m->terminating);
        family(&b, "tasks", "gauge",
               "GPU tasks: queued (claimable now, plus those re-queued this cycle) and "
               "running (In Progress).");
        sample(&b, "tasks", "state", "queued", (double)m->tasks_queued);
        sample(&b, "tasks", "state", "running", (double)m->tasks_running);
        gauge(&b, "tasks_queued_all",
              "Every Queued task, including those not claimable yet (dependencies, "
              "available_at, non-GPU).",
              (double)m->tasks_queued_all);
        gauge(&b, "queue_oldest_task_age_seconds", "Age of the oldest Queued task (0 when none).",
              (double)m->oldest_queued_age_sec);
        gauge(&b, "workers_desired", "Fleet size the last cycle aimed for (SPEC 6 step 6).",
              (double)m->desired);
    }
    gauge(&b, "workers_min", "MIN_ACTIVE_GPUS.", (double)m->workers_min);
    gauge(&b, "workers_max", "MAX_ACTIVE_GPUS.", (double)m->workers_max);
    if (m->fleet_known) {
        gauge(&b, "breaker_open", "1 while the failure-rate circuit breaker pauses spawning.",
              m->breaker_open ? 1 : 0);
        family(&b, "spawn_limited", "gauge",
               "1 for the reason the last cycle spawned fewer workers than desired, else 0.");
        for (int l = SPAWN_LIMIT_NONE + 1; l < 64; l++) {
            const char *name = spawn_limit_str((SpawnLimit)l);
            if (strcmp(name, "unknown") == 0)
                break;
            sample(&b, "spawn_limited", "reason", name, m->spawn_limit == (SpawnLimit)l ? 1 : 0);
        }
        gauge(&b, "fleet_cost_per_hour_usd", "Summed RunPod cost per hour of the live fleet.",
              m->fleet_cost_per_hr);
        gauge(&b, "tasks_held_by_others",
              "In Progress tasks held by a claimer that never was one of our workers (never "
              "recovered by the orchestrator).",
              (double)m->tasks_foreign_held);
    }
    if (m->cycle_seen)
        gauge(&b, "cycle_duration_seconds", "Wall time of the last cycle.", m->cycle_duration_sec);
    if (m->last_success_epoch > 0)
        gauge(&b, "last_success_timestamp_seconds",
              "Unix time at which the last successful cycle ended.", m->last_success_epoch);

    for (size_t f = 0; f < N_COUNTERS; f++) {
        const MetricsCounter *c = family_of_const(m, &COUNTERS[f]);
        family(&b, COUNTERS[f].name, "counter", COUNTERS[f].help);
        for (size_t i = 0; i < c->count; i++)
            sample(&b, COUNTERS[f].name, COUNTERS[f].label, c->samples[i].label,
                   c->samples[i].value);
    }
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

/* Parses one line `prefix<name>{<label>="<value>"} <number>` of our own output into the
 * state. Anything else is ignored. */
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
    if (sep != '{')
        return;
    for (size_t f = 0; f < N_COUNTERS; f++) {
        if (strcmp(name, COUNTERS[f].name) != 0)
            continue;
        size_t ln = strlen(COUNTERS[f].label);
        if (strncmp(rest, COUNTERS[f].label, ln) != 0 || strncmp(rest + ln, "=\"", 2) != 0)
            return;
        char *value = rest + ln + 2;
        size_t vn = strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789_");
        if (vn == 0 || vn >= METRICS_LABEL_MAX || strncmp(value + vn, "\"} ", 3) != 0)
            return;
        value[vn] = '\0';
        char *num = value + vn + 3;
        char *end = NULL;
        errno = 0;
        double v = strtod(num, &end);
        if (errno != 0 || end == num || !isfinite(v) || v < 0)
            return;
        counter_set(family_of(m, &COUNTERS[f]), value, v);
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
