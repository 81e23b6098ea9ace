/* status_cmd.c -- `orchestrator status [--json] [--watch S]`: the fleet at a glance.
 *
 * Shell module. Reads one snapshot (the cycle's own read-only queries; no lock, no write),
 * lets the pure planner compute `desired` and the limits as the next cycle would see them, and
 * prints a table that fits 100 columns, or the JSON document described in
 * structure_docs/status.md.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "db.h"
#include "planner.h"
#include "status_runpod.h"

static void fmt_age(long long sec, char *out, size_t cap)
{
    if (sec < 0)
        snprintf(out, cap, "-");
    else if (sec < 120)
        snprintf(out, cap, "%llds", sec);
    else if (sec < 7200)
        snprintf(out, cap, "%lldm%02llds", sec / 60, sec % 60);
    else if (sec < 172800)
        snprintf(out, cap, "%lldh%02lldm", sec / 3600, (sec % 3600) / 60);
    else
        snprintf(out, cap, "%lldd%02lldh", sec / 86400, (sec % 86400) / 3600);
}

/* The oldest In Progress task a worker holds, or NULL. */
static const SnapTask *task_of(const Snapshot *snap, const char *worker_id)
{
    const SnapTask *best = NULL;
    for (size_t t = 0; t < snap->n_tasks; t++)
        if (strcmp(snap->tasks[t].worker_id, worker_id) == 0 &&
            (!best || snap->tasks[t].age_sec > best->age_sec))
            best = &snap->tasks[t];
    return best;
}

/* The fleet as it is now (the plan's counts are after the next cycle's own transitions). */
typedef struct {
    long long spawning, active, busy, idle, terminating, error;
    double failure_rate;
} Now;

static Now now_of(const Snapshot *snap)
{
    Now n = {0};
    for (size_t i = 0; i < snap->n_workers; i++) {
        const SnapWorker *w = &snap->workers[i];
        if (w->state == WORKER_SPAWNING)
            n.spawning++;
        else if (w->state == WORKER_TERMINATING)
            n.terminating++;
        else if (w->state == WORKER_ERROR || w->state == WORKER_CRASHED)
            n.error++;
        else if (w->state == WORKER_ACTIVE) {
            n.active++;
            if (task_of(snap, w->id))
                n.busy++;
            else
                n.idle++;
        }
    }
    n.failure_rate = snap->ended_in_window > 0
                         ? (double)snap->unexpected_in_window / (double)snap->ended_in_window
                         : 0.0;
    return n;
}

static double fleet_cost(const Snapshot *snap)
{
    double c = 0;
    for (size_t i = 0; i < snap->n_workers; i++)
        c += snap->workers[i].cost_per_hr;
    return c;
}

static cJSON *status_json(const Snapshot *snap, const Plan *plan, const Config *cfg)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON *q = cJSON_AddObjectToObject(o, "queue");
    cJSON_AddNumberToObject(q, "claimable", (double)snap->queued_claimable);
    cJSON_AddNumberToObject(q, "queued", (double)snap->queued_total);
    cJSON_AddNumberToObject(q, "running", (double)snap->in_progress_total);
    cJSON_AddNumberToObject(q, "oldest_queued_age_sec", (double)snap->oldest_queued_age_sec);
    Now n = now_of(snap);
    cJSON *f = cJSON_AddObjectToObject(o, "fleet");
    cJSON_AddNumberToObject(f, "desired", (double)plan->desired);
    cJSON_AddNumberToObject(f, "spawning", (double)n.spawning);
    cJSON_AddNumberToObject(f, "active", (double)n.active);
    cJSON_AddNumberToObject(f, "busy", (double)n.busy);
    cJSON_AddNumberToObject(f, "idle", (double)n.idle);
    cJSON_AddNumberToObject(f, "terminating", (double)n.terminating);
    cJSON_AddNumberToObject(f, "error", (double)n.error);
    cJSON_AddNumberToObject(f, "min", cfg->min_active_gpus);
    cJSON_AddNumberToObject(f, "max", cfg->max_active_gpus);
    cJSON_AddNumberToObject(f, "cost_per_hr", fleet_cost(snap));
    cJSON_AddStringToObject(f, "spawn_limit", spawn_limit_str(plan->spawn_limit));
    cJSON *b = cJSON_AddObjectToObject(o, "breaker");
    cJSON_AddBoolToObject(b, "open", snap->breaker_was_open);
    cJSON_AddNumberToObject(b, "failure_rate", n.failure_rate);
    cJSON_AddNumberToObject(b, "ended_in_window", (double)snap->ended_in_window);
    cJSON_AddNumberToObject(b, "unexpected_in_window", (double)snap->unexpected_in_window);
    cJSON_AddNumberToObject(b, "window_minutes", cfg->failure_window_minutes);
    cJSON *bo = cJSON_AddArrayToObject(o, "gpu_backoff");
    for (size_t i = 0; bo && i < snap->n_backoffs; i++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "gpu_type", snap->backoffs[i].gpu_type);
        cJSON_AddNumberToObject(x, "remaining_sec", (double)snap->backoffs[i].remaining_sec);
        cJSON_AddNumberToObject(x, "failures", snap->backoffs[i].failures);
        cJSON_AddItemToArray(bo, x);
    }
    cJSON_AddItemToObject(o, "runpod", status_runpod_json(snap, cfg)); /* issue 16 */
    cJSON *c = cJSON_AddObjectToObject(o, "cycles");
    cJSON_AddNumberToObject(c, "last_cycle", (double)(snap->cycle_number - 1));
    cJSON_AddNumberToObject(c, "since_last_success_sec", (double)snap->since_success_sec);
    cJSON_AddNumberToObject(c, "since_last_reconcile_sec", (double)snap->since_reconcile_sec);
    cJSON *ws = cJSON_AddArrayToObject(o, "workers");
    for (size_t i = 0; ws && i < snap->n_workers; i++) {
        const SnapWorker *w = &snap->workers[i];
        const SnapTask *t = task_of(snap, w->id);
        cJSON *x = cJSON_CreateObject();
        if (!x)
            break;
        cJSON_AddStringToObject(x, "id", w->id);
        cJSON_AddStringToObject(x, "status", worker_state_str(w->state));
        cJSON_AddStringToObject(x, "pod_id", w->runpod_id);
        cJSON_AddStringToObject(x, "gpu_type", w->gpu_type);
        cJSON_AddNumberToObject(x, "age_sec", (double)w->age_sec);
        cJSON_AddNumberToObject(x, "heartbeat_age_sec", (double)w->heartbeat_age_sec);
        cJSON_AddNumberToObject(x, "vram_total_mb", (double)w->vram_total_mb);
        cJSON_AddNumberToObject(x, "vram_used_mb", (double)w->vram_used_mb);
        if (w->vram_total_mb > 0 && w->vram_used_mb >= 0)
            cJSON_AddNumberToObject(x, "vram_percent",
                                    100.0 * (double)w->vram_used_mb / (double)w->vram_total_mb);
        else
            cJSON_AddNullToObject(x, "vram_percent");
        if (t) {
            cJSON_AddStringToObject(x, "task_id", t->id);
            cJSON_AddStringToObject(x, "task_type", t->task_type);
            cJSON_AddNumberToObject(x, "task_runtime_sec", (double)t->age_sec);
        } else {
            cJSON_AddNullToObject(x, "task_id");
            cJSON_AddNullToObject(x, "task_type");
            cJSON_AddNullToObject(x, "task_runtime_sec");
        }
        cJSON_AddNumberToObject(x, "cost_per_hr", w->cost_per_hr);
        cJSON_AddItemToArray(ws, x);
    }
    return o;
}

static void status_text(const Snapshot *snap, const Plan *plan, const Config *cfg)
{
    char age[32], a2[32], a3[32];
    fmt_age(snap->oldest_queued_age_sec, age, sizeof age);
    printf("queue    %lld claimable, %lld queued (oldest %s), %lld running\n",
           snap->queued_claimable, snap->queued_total, age, snap->in_progress_total);
    Now n = now_of(snap);
    printf("fleet    desired %lld; %lld active (%lld busy, %lld idle), %lld spawning, "
           "%lld terminating, %lld error; min %d max %d\n",
           plan->desired, n.active, n.busy, n.idle, n.spawning, n.terminating, n.error,
           cfg->min_active_gpus, cfg->max_active_gpus);
    printf("spawning %s; breaker %s (%lld of %lld endings unexpected in %d min)\n",
           plan->spawn_limit == SPAWN_LIMIT_NONE ? "allowed" : spawn_limit_str(plan->spawn_limit),
           snap->breaker_was_open ? "OPEN" : "closed", snap->unexpected_in_window,
           snap->ended_in_window, cfg->failure_window_minutes);
    for (size_t i = 0; i < snap->n_backoffs; i++) {
        fmt_age(snap->backoffs[i].remaining_sec, age, sizeof age);
        printf("backoff  %s for %s more (%d failures)\n", snap->backoffs[i].gpu_type, age,
               snap->backoffs[i].failures);
    }
    status_runpod_text(snap, cfg); /* issue 16 */
    fmt_age(snap->since_success_sec, a2, sizeof a2);
    fmt_age(snap->since_reconcile_sec, a3, sizeof a3);
    printf("cycles   last #%lld, last success %s ago, last reconcile %s ago; fleet $%.2f/h\n\n",
           snap->cycle_number - 1, a2, a3, fleet_cost(snap));
    printf("%-28s %-11s %6s %6s %17s %-8s %6s %6s\n", "WORKER", "STATE", "AGE", "BEAT", "VRAM MB",
           "TASK", "RUN", "$/H");
    for (size_t i = 0; i < snap->n_workers; i++) {
        const SnapWorker *w = &snap->workers[i];
        const SnapTask *t = task_of(snap, w->id);
        char vram[64], run[32];
        if (w->vram_total_mb > 0 && w->vram_used_mb >= 0)
            snprintf(vram, sizeof vram, "%lld/%lld %3.0f%%", w->vram_used_mb, w->vram_total_mb,
                     100.0 * (double)w->vram_used_mb / (double)w->vram_total_mb);
        else if (w->vram_total_mb == 0)
            snprintf(vram, sizeof vram, "no GPU");
        else
            snprintf(vram, sizeof vram, "-");
        fmt_age(w->age_sec, age, sizeof age);
        fmt_age(w->heartbeat_age_sec, a2, sizeof a2);
        fmt_age(t ? t->age_sec : -1, run, sizeof run);
        printf("%-28.28s %-11s %6s %6s %17s %-8.8s %6s %6.3f\n", w->id, worker_state_str(w->state),
               age, a2, vram, t ? t->id : "-", run, w->cost_per_hr);
    }
    if (snap->n_workers == 0)
        printf("(no live workers)\n");
}

static volatile sig_atomic_t g_stop_watch;

static void on_signal(int sig)
{
    (void)sig;
    g_stop_watch = 1;
}

Status cmd_status(int argc, char **argv)
{
    bool json = false;
    long watch = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--watch") == 0 && i + 1 < argc) {
            char *end = NULL;
            watch = strtol(argv[++i], &end, 10);
            if (!end || *end || watch < 1 || watch > 3600) {
                fprintf(stderr, "orchestrator status: --watch needs seconds in [1, 3600]\n");
                return STATUS_ERR_USAGE;
            }
        } else {
            fprintf(stderr,
                    "orchestrator status: unknown argument '%s'; see `orchestrator "
                    "status --help`\n",
                    argv[i]);
            return STATUS_ERR_USAGE;
        }
    }
    Config *cfg = NULL;
    Status st = commands_load_config(CONFIG_NEED_DB, &cfg);
    if (st != STATUS_OK)
        return st;
    PGconn *conn = NULL;
    Snapshot *snap = calloc(1, sizeof *snap);
    Plan *plan = calloc(1, sizeof *plan);
    if (!snap || !plan) {
        st = STATUS_ERR_NOMEM;
        goto out;
    }
    st = db_connect(cfg, &conn);
    if (st != STATUS_OK)
        goto out;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    if (watch > 0) {
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
    }
    bool tty = isatty(STDOUT_FILENO);
    do {
        st = db_load_snapshot(conn, cfg, snap);
        if (st != STATUS_OK)
            break;
        Policy pol;
        policy_from_config(cfg, &pol);
        planner_decide(snap, &pol, plan);
        if (watch > 0 && tty && !json)
            printf("\033[H\033[2J");
        if (json) {
            cJSON *o = status_json(snap, plan, cfg);
            char *s = o ? cJSON_PrintUnformatted(o) : NULL;
            printf("%s\n", s ? s : "{}");
            free(s);
            cJSON_Delete(o);
        } else {
            status_text(snap, plan, cfg);
        }
        fflush(stdout);
        for (long k = 0; watch > 0 && k < watch * 10 && !g_stop_watch; k++) {
            struct timespec ts = {.tv_sec = 0, .tv_nsec = 100000000L};
            nanosleep(&ts, NULL);
        }
    } while (watch > 0 && !g_stop_watch);
out:
    if (conn)
        PQfinish(conn);
    free(snap);
    free(plan);
    free(cfg);
    return st;
}
