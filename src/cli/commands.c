/* commands.c -- the subcommands: parse flags, build the App, call the shell modules.
 *
 * Shell module. Each command reads the environment once (config_parse with `environ`), sets
 * up logging, and maps its outcome to a Status (main turns it into the exit code).
 */
#include "commands.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "actuator.h"
#include "app.h"
#include "config.h"
#include "db.h"
#include "dblog.h"
#include "http.h" /* issue 6 */
#include "log.h"
#include "metrics.h" /* issue 6 */
#include "loop.h"
#include "migrate.h"
#include "planner.h"
#include "runpod.h"

extern char **environ;

typedef struct {
    bool dry_run;
    bool json;
    bool terminate;
    int interval_sec; /* 0 = not given */
} Flags;

/* Parses the few flags commands take. Unknown flags are usage errors. */
static Status parse_flags(int argc, char **argv, const char *allowed, Flags *out)
{
    Flags f = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--dry-run") == 0 && strstr(allowed, "dry-run")) {
            f.dry_run = true;
        } else if (strcmp(a, "--json") == 0 && strstr(allowed, "json")) {
            f.json = true;
        } else if (strcmp(a, "--terminate") == 0 && strstr(allowed, "terminate")) {
            f.terminate = true;
        } else if (strcmp(a, "--interval") == 0 && strstr(allowed, "interval")) {
            char *end = NULL;
            long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : -1;
            if (i + 1 >= argc || !end || *end != '\0' || v < 1 || v > 86400) {
                fprintf(stderr,
                        "orchestrator %s: --interval needs a number of seconds in [1, 86400]\n",
                        argv[0]);
                return STATUS_ERR_USAGE;
            }
            f.interval_sec = (int)v;
            i++;
        } else {
            fprintf(stderr,
                    "orchestrator %s: unknown argument '%s'; see `orchestrator %s --help`\n",
                    argv[0], a, argv[0]);
            return STATUS_ERR_USAGE;
        }
    }
    *out = f;
    return STATUS_OK;
}

/* Registers every secret value with the logger so none can reach a log line. */
static void register_secrets(const Config *cfg)
{
    log_add_secret(cfg->runpod_api_key);
    log_add_secret(cfg->database_url);
    if (cfg->database_url[0]) {
        char *err = NULL;
        PQconninfoOption *opts = PQconninfoParse(cfg->database_url, &err);
        for (PQconninfoOption *o = opts; o && o->keyword; o++)
            if (strcmp(o->keyword, "password") == 0 && o->val)
                log_add_secret(o->val);
        PQconninfoFree(opts);
        PQfreemem(err);
    }
    const char *pgpass = getenv("PGPASSWORD");
    log_add_secret(pgpass);
    for (size_t i = 0; i < cfg->n_worker_env; i++)
        log_add_secret(cfg->worker_env[i].value);
}

/* Parses the configuration (printing every error) and configures logging. */
static Status load_config(unsigned needs, Config **out)
{
    Config *cfg = calloc(1, sizeof *cfg);
    ConfigErrors *errs = calloc(1, sizeof *errs);
    Status st = STATUS_ERR_NOMEM;
    if (!cfg || !errs)
        goto out;
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    st = config_parse((const char *const *)environ, host, needs, cfg, errs);
    if (st != STATUS_OK) {
        for (size_t i = 0; i < errs->count; i++)
            fprintf(stderr, "%s\n", errs->messages[i]);
        fprintf(stderr,
                "orchestrator: %zu configuration error%s; see `orchestrator help config` "
                "or env.example\n",
                errs->count, errs->count == 1 ? "" : "s");
        goto out;
    }
    LogLevel level = LOG_INFO;
    log_level_parse(cfg->log_level, &level);
    log_configure(level, strcmp(cfg->log_format, "text") == 0 ? LOG_FORMAT_TEXT : LOG_FORMAT_JSON);
    log_set_source(cfg->orchestrator_instance_id);
    register_secrets(cfg);
    *out = cfg;
    cfg = NULL;
out:
    free(cfg);
    free(errs);
    return st;
}

static Status app_open(App *app, Config *cfg, const char *command, bool dry_run)
{
    memset(app, 0, sizeof *app);
    app->cfg = cfg;
    app->command = command;
    app->dry_run = dry_run || cfg->safe_mode;
    config_hash(cfg, app->config_hash);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("runpod.init_failed", "msg=\"curl_global_init failed\"");
        return STATUS_ERR_INTERNAL;
    }
    if (cfg->runpod_api_key[0]) {
        RunpodOptions o = {
            .base_url = cfg->runpod_api_base_url,
            .api_key = cfg->runpod_api_key,
            .connect_timeout_ms = (long)cfg->runpod_connect_timeout_sec * 1000,
            .request_timeout_ms = (long)cfg->runpod_request_timeout_sec * 1000,
            .max_retries = cfg->runpod_max_retries,
            .max_response_bytes = 4u << 20,
            .backoff_base_ms = 500,
            .backoff_max_ms = 8000,
        };
        Status st = runpod_client_new(&o, &app->rp);
        if (st != STATUS_OK)
            return st;
    }
    dblog_start(cfg);
    log_info("run.start", "version=%s command=%s safe_mode=%s dry_run=%s config_hash=%s",
             ORCH_VERSION, command, cfg->safe_mode ? "true" : "false",
             app->dry_run ? "true" : "false", app->config_hash);
    return STATUS_OK;
}

static void app_close(App *app)
{
    dblog_stop();
    if (app->conn)
        PQfinish(app->conn);
    app->conn = NULL;
    runpod_client_free(app->rp);
    app->rp = NULL;
    curl_global_cleanup();
}

/* One cycle (or an operator's request planned like one), its summary printed on stdout. */
static Status run_cycle(const char *command, bool dry_run, bool force_dry_run,
                        const ManualRequest *manual)
{
    Config *cfg = NULL;
    Status st = load_config(CONFIG_NEED_DB | CONFIG_NEED_API, &cfg);
    if (st != STATUS_OK)
        return st;
    App app;
    st = app_open(&app, cfg, command, dry_run || force_dry_run);
    app.manual = manual;
    /* issue 6: METRICS_FILE, rewritten by loop_cycle; counters continue from the last run. */
    if (st == STATUS_OK && !force_dry_run && cfg->metrics_file[0] &&
        metrics_new(cfg, &app.metrics) == STATUS_OK)
        metrics_file_load(app.metrics, cfg->metrics_file);
    if (st == STATUS_OK) {
        cJSON *summary = NULL;
        st = loop_cycle(&app, &summary);
        if (summary) {
            char *s = cJSON_PrintUnformatted(summary);
            if (s)
                printf("%s\n", s);
            fflush(stdout);
            free(s);
            cJSON_Delete(summary);
        }
    }
    metrics_free(app.metrics); /* issue 6 */
    app_close(&app);
    free(cfg);
    if (st == STATUS_LOCKED && manual) {
        fprintf(stderr,
                "orchestrator %s: another cycle held the lock for 30 s; nothing was "
                "done, try again\n",
                command);
        return STATUS_ERR_DB;
    }
    return st == STATUS_LOCKED ? STATUS_OK : st;
}

static Status run_one_cycle(int argc, char **argv, bool force_dry_run)
{
    Flags f;
    Status st = parse_flags(argc, argv, force_dry_run ? "" : "dry-run", &f);
    if (st != STATUS_OK)
        return st;
    return run_cycle(argv[0], f.dry_run, force_dry_run, NULL);
}

Status cmd_single(int argc, char **argv)
{
    return run_one_cycle(argc, argv, false);
}

Status cmd_plan(int argc, char **argv)
{
    return run_one_cycle(argc, argv, true);
}

Status cmd_spawn(int argc, char **argv)
{
    ManualRequest req = {.kind = MANUAL_SPAWN, .count = 1};
    bool dry_run = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0) {
            dry_run = true;
        } else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc) {
            char *end = NULL;
            long n = strtol(argv[++i], &end, 10);
            if (!end || *end || n < 1 || n > 1000) {
                fprintf(stderr, "orchestrator spawn: --count needs a number in [1, 1000]\n");
                return STATUS_ERR_USAGE;
            }
            req.count = (int)n;
        } else {
            fprintf(stderr,
                    "orchestrator spawn: unknown argument '%s'; see `orchestrator spawn "
                    "--help`\n",
                    argv[i]);
            return STATUS_ERR_USAGE;
        }
    }
    return run_cycle("spawn", dry_run, false, &req);
}

Status cmd_terminate(int argc, char **argv)
{
    ManualRequest req = {.kind = MANUAL_TERMINATE};
    bool dry_run = false;
    const char *id = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0)
            dry_run = true;
        else if (argv[i][0] != '-' && !id)
            id = argv[i];
        else {
            fprintf(stderr,
                    "orchestrator terminate: unexpected argument '%s'; usage: "
                    "orchestrator terminate WORKER_ID [--dry-run]\n",
                    argv[i]);
            return STATUS_ERR_USAGE;
        }
    }
    if (!id || strlen(id) >= sizeof req.worker_id) {
        fprintf(stderr, "orchestrator terminate: give one WORKER_ID (see `orchestrator status`)\n");
        return STATUS_ERR_USAGE;
    }
    snprintf(req.worker_id, sizeof req.worker_id, "%s", id);
    return run_cycle("terminate", dry_run, false, &req);
}

Status cmd_shutdown_all(int argc, char **argv)
{
    ManualRequest req = {.kind = MANUAL_SHUTDOWN_ALL};
    bool dry_run = false, yes = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--dry-run") == 0)
            dry_run = true;
        else if (strcmp(argv[i], "--yes") == 0)
            yes = true;
        else {
            fprintf(stderr, "orchestrator shutdown-all: unknown argument '%s'\n", argv[i]);
            return STATUS_ERR_USAGE;
        }
    }
    if (!yes && !dry_run) {
        if (!isatty(STDIN_FILENO)) {
            fprintf(stderr, "orchestrator shutdown-all: refusing to terminate every worker "
                            "without --yes (standard input is not a terminal to ask on); "
                            "use --dry-run to see what would happen\n");
            return STATUS_ERR_USAGE;
        }
        fprintf(stderr, "Terminate EVERY worker pod and re-queue their tasks? Type 'yes': ");
        char answer[16] = "";
        if (!fgets(answer, sizeof answer, stdin) || strcmp(answer, "yes\n") != 0) {
            fprintf(stderr, "orchestrator shutdown-all: not confirmed; nothing done\n");
            return STATUS_ERR_USAGE;
        }
    }
    return run_cycle("shutdown-all", dry_run, false, &req);
}

Status cmd_continuous(int argc, char **argv)
{
    Flags f;
    Status st = parse_flags(argc, argv, "interval", &f);
    if (st != STATUS_OK)
        return st;
    Config *cfg = NULL;
    st = load_config(CONFIG_NEED_DB | CONFIG_NEED_API, &cfg);
    if (st != STATUS_OK)
        return st;
    App app;
    st = app_open(&app, cfg, "continuous", false);
    int interval = f.interval_sec > 0 ? f.interval_sec : cfg->orchestrator_poll_sec;
    if (st == STATUS_OK) /* issue 6: metrics state, METRICS_FILE, the METRICS_PORT endpoint */
        st = metrics_new(cfg, &app.metrics);
    if (st == STATUS_OK)
        metrics_file_load(app.metrics, cfg->metrics_file);
    if (st == STATUS_OK && cfg->metrics_port > 0)
        st = http_start(cfg, interval, &app.http);
    if (st == STATUS_OK)
        st = loop_continuous(&app, interval);
    http_stop(app.http);
    metrics_free(app.metrics);
    app_close(&app);
    free(cfg);
    return st;
}

Status cmd_migrate(int argc, char **argv)
{
    Flags f;
    Status st = parse_flags(argc, argv, "", &f);
    if (st != STATUS_OK)
        return st;
    Config *cfg = NULL;
    st = load_config(CONFIG_NEED_DB, &cfg);
    if (st != STATUS_OK)
        return st;
    PGconn *conn = NULL;
    st = db_connect(cfg, &conn);
    if (st == STATUS_OK) {
        MigrateReport report;
        memset(&report, 0, sizeof report);
        st = migrate_apply(conn, &report);
        if (st == STATUS_OK)
            printf("{\"applied\":%d,\"already_applied\":%d}\n", report.applied, report.skipped);
    }
    if (conn)
        PQfinish(conn);
    free(cfg);
    return st;
}

Status cmd_config(int argc, char **argv)
{
    Flags f;
    Status st = parse_flags(argc, argv, "json", &f);
    if (st != STATUS_OK)
        return st;
    Config *cfg = NULL;
    st = load_config(CONFIG_NEED_NOTHING, &cfg);
    if (st != STATUS_OK)
        return st;
    char *s = config_dump(cfg, f.json);
    if (!s) {
        free(cfg);
        return STATUS_ERR_NOMEM;
    }
    fputs(s, stdout);
    if (f.json)
        fputc('\n', stdout);
    char hash[17];
    config_hash(cfg, hash);
    if (!f.json)
        printf("# config_hash=%s\n", hash);
    free(s);
    free(cfg);
    return STATUS_OK;
}

Status cmd_version(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("orchestrator %s\n", ORCH_VERSION);
    return STATUS_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* reconcile                                                                                   */

static const char *snap_pod_status_str(SnapPodStatus s)
{
    switch (s) {
    case SNAP_POD_PROVISIONING:
        return "PROVISIONING";
    case SNAP_POD_STARTING:
        return "STARTING";
    case SNAP_POD_RUNNING:
        return "RUNNING";
    case SNAP_POD_EXITED:
        return "EXITED";
    case SNAP_POD_ERROR:
        return "ERROR";
    case SNAP_POD_TERMINATED:
        return "TERMINATED";
    case SNAP_POD_UNKNOWN:
        break;
    }
    return "UNKNOWN";
}

/* The live row that owns pod p (its recorded pod id, or a row named like the pod that has no
 * pod id yet), or -1. The same ownership rule as the planner's step 7. */
static long long pod_owner(const Snapshot *snap, const SnapPod *p, bool *by_name)
{
    *by_name = false;
    for (size_t i = 0; i < snap->n_workers; i++)
        if (snap->workers[i].runpod_id[0] && strcmp(snap->workers[i].runpod_id, p->id) == 0)
            return (long long)i;
    for (size_t i = 0; i < snap->n_workers; i++)
        if (!snap->workers[i].runpod_id[0] && strcmp(snap->workers[i].id, p->name) == 0) {
            *by_name = true;
            return (long long)i;
        }
    return -1;
}

static bool pod_listed(const Snapshot *snap, const char *pod_id)
{
    for (size_t k = 0; k < snap->n_pods; k++)
        if (strcmp(snap->pods[k].id, pod_id) == 0)
            return true;
    return false;
}

static bool plan_terminates_pod(const Plan *plan, const char *pod_id)
{
    for (size_t i = 0; i < plan->count; i++)
        if (plan->actions[i].kind == ACTION_TERMINATE_POD &&
            strcmp(plan->actions[i].pod_id, pod_id) == 0)
            return true;
    return false;
}

/* Marks a vanished row error (guarded: only from the state the snapshot saw). Returns the
 * database status; *applied tells whether the row changed. */
static Status mark_vanished(App *app, const SnapWorker *w, bool *applied)
{
    Status st = db_fail_worker(app->conn, w->id, w->state,
                               "Pod externally terminated - not found in RunPod", true, applied);
    if (st == STATUS_OK && *applied)
        log_warn("worker.failed", "worker_id=%s from=%s reason=%s error_reason=%s", w->id,
                 worker_state_str(w->state), reason_str(REASON_POD_GONE),
                 "Pod externally terminated - not found in RunPod");
    return st;
}

/* `orchestrator reconcile [--terminate] [--json]`: RunPod pods against worker rows. Reports
 * every pod with our prefix (its row, or LEAKED), every live row whose pod is missing
 * (VANISHED), and the fleet's and the leaked pods' cost per hour. --terminate terminates the
 * leaked pods the cycle's step 7 would terminate (same planner rule) and marks vanished rows
 * `error` (the next cycle recovers their tasks and retires them). Without --terminate nothing
 * is written and no mutating call is made. Pods without our prefix are never touched. */
Status cmd_reconcile(int argc, char **argv)
{
    Flags f;
    Status st = parse_flags(argc, argv, "terminate json", &f);
    if (st != STATUS_OK)
        return st;
    Config *cfg = NULL;
    st = load_config(CONFIG_NEED_DB | CONFIG_NEED_API, &cfg);
    if (st != STATUS_OK)
        return st;
    App app;
    Snapshot *snap = calloc(1, sizeof *snap);
    Plan *plan = calloc(1, sizeof *plan);
    Plan *leaks = calloc(1, sizeof *leaks);
    cJSON *out = cJSON_CreateObject();
    cJSON *errors = cJSON_CreateArray();
    ActResult act;
    bool have_act = false, locked = false;
    st = app_open(&app, cfg, "reconcile", !f.terminate);
    if (st != STATUS_OK)
        goto done;
    if (!snap || !plan || !leaks || !out || !errors) {
        st = STATUS_ERR_NOMEM;
        goto done;
    }
    if (!app.rp) {
        fprintf(stderr, "orchestrator reconcile: RUNPOD_API_KEY is unset; the pod list needs it\n");
        st = STATUS_ERR_CONFIG;
        goto done;
    }
    bool act_now = f.terminate && !cfg->safe_mode;
    if (f.terminate && cfg->safe_mode)
        fprintf(stderr, "orchestrator reconcile: SAFE_MODE is on; reporting only, nothing is "
                        "terminated\n");
    st = db_connect(cfg, &app.conn);
    if (st != STATUS_OK)
        goto done;
    if (act_now) {
        /* Act under the cycle lock, so no cycle's create/record races the decisions. */
        bool got = false;
        st = db_try_cycle_lock(app.conn, &got);
        if (st != STATUS_OK)
            goto done;
        if (!got) {
            fprintf(stderr, "orchestrator reconcile: a cycle holds the lock; nothing done, try "
                            "again in a moment\n");
            st = STATUS_OK;
            goto done;
        }
        locked = true;
    }
    st = db_load_snapshot(app.conn, cfg, snap);
    if (st != STATUS_OK)
        goto done;
    st = loop_list_pods(&app, snap, errors);
    if (st != STATUS_OK) {
        fprintf(stderr, "orchestrator reconcile: the RunPod pod list failed (see the log); "
                        "nothing decided\n");
        goto done;
    }
    /* The cycle's own rule: step 7 with reconcile forced due. */
    Policy pol;
    policy_from_config(cfg, &pol);
    snap->since_reconcile_sec = -1;
    planner_decide(snap, &pol, plan);

    size_t plen = strlen(cfg->worker_id_prefix);
    long long n_ours = 0, n_other = 0, n_matched = 0, n_leaked = 0, n_vanished = 0;
    double fleet_cost = 0, leaked_cost = 0;
    cJSON *pods = cJSON_AddArrayToObject(out, "pods");
    if (!f.json)
        printf("%-16s %-36s %-12s %8s %7s  %s\n", "POD", "NAME", "STATUS", "AGE", "$/H",
               "WORKER ROW");
    for (size_t k = 0; k < snap->n_pods; k++) {
        const SnapPod *p = &snap->pods[k];
        if (plen == 0 || strncmp(p->name, cfg->worker_id_prefix, plen) != 0) {
            n_other++;
            continue;
        }
        n_ours++;
        bool by_name = false;
        long long w = pod_owner(snap, p, &by_name);
        bool terminable = plan_terminates_pod(plan, p->id);
        const char *verdict = w >= 0 ? (by_name ? "unrecorded" : "matched") : "leaked";
        if (p->status != SNAP_POD_TERMINATED)
            fleet_cost += p->cost_per_hr;
        if (w >= 0) {
            n_matched++;
        } else if (p->status != SNAP_POD_TERMINATED) {
            n_leaked++;
            leaked_cost += p->cost_per_hr;
        }
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "pod_id", p->id);
        cJSON_AddStringToObject(x, "name", p->name);
        cJSON_AddStringToObject(x, "status", snap_pod_status_str(p->status));
        cJSON_AddNumberToObject(x, "age_sec", (double)p->age_sec);
        cJSON_AddNumberToObject(x, "cost_per_hr", p->cost_per_hr);
        cJSON_AddStringToObject(x, "verdict", verdict);
        if (w >= 0) {
            cJSON_AddStringToObject(x, "worker_id", snap->workers[w].id);
            cJSON_AddStringToObject(x, "worker_status", worker_state_str(snap->workers[w].state));
        }
        cJSON_AddBoolToObject(x, "terminable", terminable);
        cJSON_AddItemToArray(pods, x);
        if (!f.json) {
            char row[96];
            if (w >= 0)
                snprintf(row, sizeof row, "%s%s", worker_state_str(snap->workers[w].state),
                         by_name ? " (pod id not recorded yet: the cycle adopts it)" : "");
            else
                snprintf(row, sizeof row, "LEAKED: no live worker row%s",
                         terminable ? "; older than ORPHAN_POD_GRACE_SEC" : "");
            printf("%-16s %-36s %-12s %7llds %7.3f  %s\n", p->id, p->name,
                   snap_pod_status_str(p->status), p->age_sec, p->cost_per_hr, row);
        }
    }
    cJSON *vanished = cJSON_AddArrayToObject(out, "vanished");
    cJSON *marked = cJSON_AddArrayToObject(out, "marked_error");
    for (size_t i = 0; i < snap->n_workers; i++) {
        const SnapWorker *w = &snap->workers[i];
        if (!w->runpod_id[0] || pod_listed(snap, w->runpod_id))
            continue;
        n_vanished++;
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "worker_id", w->id);
        cJSON_AddStringToObject(x, "worker_status", worker_state_str(w->state));
        cJSON_AddStringToObject(x, "pod_id", w->runpod_id);
        cJSON_AddNumberToObject(x, "age_sec", (double)w->age_sec);
        cJSON_AddItemToArray(vanished, x);
        if (!f.json)
            printf("VANISHED: worker %s (%s) records pod %s, which RunPod does not list\n", w->id,
                   worker_state_str(w->state), w->runpod_id);
        /* Marked only past the post-create grace, and only from a state that may go to
         * error; an error row is retired by the next cycle anyway. */
        if (!act_now || w->state == WORKER_ERROR || w->state == WORKER_INACTIVE ||
            w->age_sec <= pol.pod_not_found_grace_sec)
            continue;
        bool applied = false;
        st = mark_vanished(&app, w, &applied);
        if (st != STATUS_OK)
            goto done;
        if (applied)
            cJSON_AddItemToArray(marked, cJSON_CreateString(w->id));
        if (!f.json)
            printf("  marked %s error%s\n", w->id, applied ? "" : ": skipped, the row changed");
    }

    /* --terminate: only the step-7 terminations of the plan, applied by the actuator. */
    cJSON *terminated = cJSON_AddArrayToObject(out, "terminated");
    if (act_now) {
        leaks->count = 0;
        for (size_t i = 0; i < plan->count; i++)
            if (plan->actions[i].kind == ACTION_TERMINATE_POD)
                leaks->actions[leaks->count++] = plan->actions[i];
        st = act_result_init(&act);
        if (st != STATUS_OK)
            goto done;
        have_act = true;
        st = actuator_apply(&app, snap, leaks, &act);
        for (cJSON *o = act.outcomes ? act.outcomes->child : NULL; o; o = o->next) {
            const cJSON *pid = cJSON_GetObjectItemCaseSensitive(o, "pod_id");
            const cJSON *res = cJSON_GetObjectItemCaseSensitive(o, "result");
            bool ok = cJSON_IsString(res) && strcmp(res->valuestring, "applied") == 0;
            if (cJSON_IsString(pid) && ok)
                cJSON_AddItemToArray(terminated, cJSON_CreateString(pid->valuestring));
            if (!f.json && cJSON_IsString(pid))
                printf("  terminate leaked pod %s: %s\n", pid->valuestring,
                       ok ? "done" : "FAILED (see the log)");
        }
        for (cJSON *e = act.errors ? act.errors->child : NULL; e; e = e->next)
            cJSON_AddItemToArray(errors, cJSON_CreateString(e->valuestring));
    }

    cJSON *tot = cJSON_AddObjectToObject(out, "totals");
    cJSON_AddNumberToObject(tot, "pods_ours", (double)n_ours);
    cJSON_AddNumberToObject(tot, "pods_not_ours", (double)n_other);
    cJSON_AddNumberToObject(tot, "matched", (double)n_matched);
    cJSON_AddNumberToObject(tot, "leaked", (double)n_leaked);
    cJSON_AddNumberToObject(tot, "vanished", (double)n_vanished);
    cJSON_AddNumberToObject(tot, "live_worker_rows", (double)snap->n_workers);
    cJSON_AddNumberToObject(tot, "fleet_cost_per_hr", fleet_cost);
    cJSON_AddNumberToObject(tot, "leaked_cost_per_hr", leaked_cost);
    cJSON_AddBoolToObject(out, "terminate", act_now);
    if (!f.json)
        printf("totals: %lld pods ours (%lld not ours, never touched), %lld matched, %lld "
               "leaked ($%.3f/h), %lld vanished; fleet $%.3f/h%s\n",
               n_ours, n_other, n_matched, n_leaked, leaked_cost, n_vanished, fleet_cost,
               act_now ? "" : "; nothing changed (use --terminate to act)");

done:
    if (out && errors && f.json &&
        (st == STATUS_OK || st == STATUS_ERR_PARTIAL || st == STATUS_ERR_API)) {
        cJSON_AddStringToObject(out, "result", status_str(st));
        cJSON_AddItemToObject(out, "errors", cJSON_Duplicate(errors, 1));
        char *s = cJSON_PrintUnformatted(out);
        if (s)
            printf("%s\n", s);
        free(s);
    }
    fflush(stdout);
    if (locked && app.conn && PQstatus(app.conn) == CONNECTION_OK)
        db_release_cycle_lock(app.conn);
    if (have_act)
        act_result_clear(&act);
    cJSON_Delete(out);
    cJSON_Delete(errors);
    free(snap);
    free(plan);
    free(leaks);
    app_close(&app);
    free(cfg);
    return st;
}

Status commands_load_config(unsigned needs, Config **out)
{
    return load_config(needs, out);
}
