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

#include "app.h"
#include "config.h"
#include "db.h"
#include "log.h"
#include "loop.h"
#include "migrate.h"
#include "planner.h"
#include "runpod.h"

extern char **environ;

typedef struct {
    bool dry_run;
    bool json;
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
            fprintf(stderr, "orchestrator %s: unknown argument '%s'; see `orchestrator %s --help`\n",
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
        fprintf(stderr, "orchestrator: %zu configuration error%s; see `orchestrator help config` "
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
    log_info("run.start", "version=%s command=%s safe_mode=%s dry_run=%s config_hash=%s",
             ORCH_VERSION, command, cfg->safe_mode ? "true" : "false",
             app->dry_run ? "true" : "false", app->config_hash);
    return STATUS_OK;
}

static void app_close(App *app)
{
    if (app->conn)
        PQfinish(app->conn);
    app->conn = NULL;
    runpod_client_free(app->rp);
    app->rp = NULL;
    curl_global_cleanup();
}

static Status run_one_cycle(int argc, char **argv, bool force_dry_run)
{
    Flags f;
    Status st = parse_flags(argc, argv, force_dry_run ? "" : "dry-run", &f);
    if (st != STATUS_OK)
        return st;
    Config *cfg = NULL;
    st = load_config(CONFIG_NEED_DB | CONFIG_NEED_API, &cfg);
    if (st != STATUS_OK)
        return st;
    App app;
    st = app_open(&app, cfg, argv[0], f.dry_run || force_dry_run);
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
    app_close(&app);
    free(cfg);
    return st == STATUS_LOCKED ? STATUS_OK : st;
}

Status cmd_single(int argc, char **argv)
{
    return run_one_cycle(argc, argv, false);
}

Status cmd_plan(int argc, char **argv)
{
    return run_one_cycle(argc, argv, true);
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
    if (st == STATUS_OK)
        st = loop_continuous(&app, f.interval_sec > 0 ? f.interval_sec : cfg->orchestrator_poll_sec);
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

Status cmd_status(int argc, char **argv)
{
    Flags f;
    Status st = parse_flags(argc, argv, "json", &f);
    if (st != STATUS_OK)
        return st;
    Config *cfg = NULL;
    st = load_config(CONFIG_NEED_DB, &cfg);
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
    if (st == STATUS_OK)
        st = db_load_snapshot(conn, cfg, snap);
    if (st != STATUS_OK)
        goto out;
    Policy pol;
    policy_from_config(cfg, &pol);
    planner_decide(snap, &pol, plan);
    if (f.json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "queued", (double)snap->queued_claimable);
        cJSON_AddNumberToObject(o, "queued_total", (double)snap->queued_total);
        cJSON_AddNumberToObject(o, "oldest_queued_age_sec", (double)snap->oldest_queued_age_sec);
        cJSON_AddNumberToObject(o, "running", (double)snap->in_progress_total);
        cJSON_AddNumberToObject(o, "desired", (double)plan->desired);
        cJSON *ws = cJSON_AddArrayToObject(o, "workers");
        for (size_t i = 0; i < snap->n_workers; i++) {
            const SnapWorker *w = &snap->workers[i];
            cJSON *x = cJSON_CreateObject();
            cJSON_AddStringToObject(x, "id", w->id);
            cJSON_AddStringToObject(x, "status", worker_state_str(w->state));
            cJSON_AddNumberToObject(x, "age_sec", (double)w->age_sec);
            cJSON_AddNumberToObject(x, "heartbeat_age_sec", (double)w->heartbeat_age_sec);
            cJSON_AddNumberToObject(x, "vram_total_mb", (double)w->vram_total_mb);
            cJSON_AddNumberToObject(x, "vram_used_mb", (double)w->vram_used_mb);
            cJSON_AddNumberToObject(x, "cost_per_hr", w->cost_per_hr);
            cJSON_AddItemToArray(ws, x);
        }
        char *s = cJSON_PrintUnformatted(o);
        printf("%s\n", s ? s : "{}");
        free(s);
        cJSON_Delete(o);
    } else {
        printf("queue: %lld claimable, %lld queued in all, %lld running; desired workers %lld\n",
               snap->queued_claimable, snap->queued_total, snap->in_progress_total,
               plan->desired);
        printf("%-34s %-11s %8s %8s %12s %8s\n", "WORKER", "STATE", "AGE", "BEAT", "VRAM MB",
               "$/H");
        for (size_t i = 0; i < snap->n_workers; i++) {
            const SnapWorker *w = &snap->workers[i];
            char vram[32];
            if (w->vram_total_mb >= 0)
                snprintf(vram, sizeof vram, "%lld/%lld", w->vram_used_mb, w->vram_total_mb);
            else
                snprintf(vram, sizeof vram, "-");
            printf("%-34s %-11s %7llds %7llds %12s %8.3f\n", w->id, worker_state_str(w->state),
                   w->age_sec, w->heartbeat_age_sec, vram, w->cost_per_hr);
        }
    }
out:
    if (conn)
        PQfinish(conn);
    free(snap);
    free(plan);
    free(cfg);
    return st;
}
