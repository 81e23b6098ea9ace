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
#include "gateway.h"
#include "http.h" /* issue 6 */
#include "lease.h"
#include "log.h"
#include "metrics.h"
#include "loop.h"
#include "migrate.h"
#include "planner.h"
#include "runpod.h"

extern char **environ;

Status commands_parse_flags(int argc, char **argv, const char *allowed, CommandFlags *out)
{
    CommandFlags f = {0};
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
/* Every value that must never reach an output: the API key, the database URL and password, and
 * every environment value given to the pods (WORKER_ENV_* and each pool's POOL_<NAME>_ENV_*),
 * which RunPod may echo back in an error. STATUS_ERR_NOMEM when one could not be kept. */
static Status register_secrets(const Config *cfg)
{
    Status st = log_add_secret(cfg->runpod_api_key);
    const char *urls[] = {cfg->database_url, cfg->gateway_database_url};
    for (size_t u = 0; st == STATUS_OK && u < 2; u++) {
        st = log_add_secret(urls[u]);
        if (st != STATUS_OK || !urls[u][0])
            continue;
        char *err = NULL;
        PQconninfoOption *opts = PQconninfoParse(urls[u], &err);
        for (PQconninfoOption *o = opts; st == STATUS_OK && o && o->keyword; o++)
            if (strcmp(o->keyword, "password") == 0 && o->val)
                st = log_add_secret(o->val);
        PQconninfoFree(opts);
        PQfreemem(err);
    }
    if (st == STATUS_OK)
        st = log_add_secret(getenv("PGPASSWORD"));
    for (size_t i = 0; st == STATUS_OK && i < cfg->n_worker_env; i++)
        st = log_add_secret(cfg->worker_env[i].value);
    for (size_t p = 0; st == STATUS_OK && p < cfg->n_pools; p++)
        for (size_t i = 0; st == STATUS_OK && i < cfg->pools[p].n_env; i++)
            st = log_add_secret(cfg->pools[p].env[i].value);
    /* issue 13: the gateway's key and the S3 keys */
    const char *keys[] = {cfg->gateway_jwt_secret, cfg->storage_s3_secret_access_key,
                          cfg->storage_s3_access_key_id};
    for (size_t k = 0; st == STATUS_OK && k < 3; k++)
        st = log_add_secret(keys[k]);
    return st;
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
    st = register_secrets(cfg);
    if (st != STATUS_OK) {
        fprintf(stderr, "orchestrator: out of memory while registering the secrets to scrub "
                        "from every output; nothing was done\n");
        goto out;
    }
    *out = cfg;
    cfg = NULL;
out:
    free(cfg);
    free(errs);
    return st;
}

Status commands_app_open(App *app, const Config *cfg, const char *command, bool dry_run)
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
            .max_response_bytes = RUNPOD_JSON_MAX_BODY, /* a list of ~4,000 pods */
            .backoff_base_ms = 500,
            .backoff_max_ms = 8000,
            .rate_limit_reserve = cfg->runpod_rate_limit_reserve,
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

void commands_app_close(App *app)
{
    /* Normally released by the cycle already; this ends a hold left by an early return. */
    lease_release(app->lease, app->conn && PQstatus(app->conn) == CONNECTION_OK ? app->conn : NULL);
    lease_free(app->lease);
    app->lease = NULL;
    dblog_stop();
    if (app->conn)
        PQfinish(app->conn);
    app->conn = NULL;
    runpod_client_free(app->rp);
    app->rp = NULL;
    curl_global_cleanup();
}

/* The configured pool names as "a, b, c" (for messages). Cannot fail; truncates. */
static void pool_list(const Config *cfg, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    for (size_t p = 0; p < cfg->n_pools && len < cap; p++) {
        int n = snprintf(out + len, cap - len, "%s%s", p ? ", " : "", cfg->pools[p].name);
        if (n < 0)
            break;
        len += (size_t)n;
    }
}

/* spawn found no pool to spawn into: say why, and which pools there are. */
static void spawn_no_pool(const ManualRequest *manual, const char *pools)
{
    if (manual->pool[0])
        fprintf(stderr,
                "orchestrator spawn: no pool is named '%s' (POOLS: %s); nothing done. Give "
                "--pool one of those names\n",
                manual->pool, pools);
    else
        fprintf(stderr,
                "orchestrator spawn: POOLS has several pools (%s): name the one to spawn into "
                "with --pool NAME; nothing done\n",
                pools);
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
    st = commands_app_open(&app, cfg, command, dry_run || force_dry_run);
    app.manual = manual;
    /* METRICS_FILE, rewritten by loop_cycle; counters continue from the last run. */
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
    metrics_free(app.metrics);
    ManualResult found = app.manual_result;
    bool pods_listed = app.manual_pods_listed;
    bool was_dry_run = app.dry_run;
    char pools[CONFIG_POOLS_MAX * (CONFIG_POOL_NAME_MAX + 2)];
    pool_list(cfg, pools, sizeof pools);
    commands_app_close(&app);
    free(cfg);
    if (st == STATUS_LOCKED && manual) {
        fprintf(stderr,
                "orchestrator %s: another cycle held the cycle lease for 30 s; nothing was "
                "done, try again\n",
                command);
        return STATUS_ERR_DB;
    }
    if (manual && manual->kind == MANUAL_SPAWN && found == MANUAL_RESULT_NO_POOL &&
        st != STATUS_LOCKED) {
        /* A typo in a pool name must not look like a spawn that the limits cut to zero. */
        spawn_no_pool(manual, pools);
        return STATUS_ERR_USAGE;
    }
    if (manual && manual->kind == MANUAL_TERMINATE &&
        (found == MANUAL_RESULT_NOT_FOUND || found == MANUAL_RESULT_NOT_OURS)) {
        /* An operator's typo while stopping a runaway pod must not look like success. */
        if (found == MANUAL_RESULT_NOT_OURS)
            fprintf(stderr,
                    "orchestrator terminate: pod %s is not one of ours (its name is not "
                    "<WORKER_ID_PREFIX><yyyymmdd_HHMMSS>-<8 hex>); nothing done. Stop it in the "
                    "RunPod console if you mean it\n",
                    manual->worker_id);
        else
            fprintf(stderr,
                    "orchestrator terminate: no live worker and no pod of ours has the id %s "
                    "(unknown, or already terminated)%s; nothing done. See `orchestrator "
                    "status` and `orchestrator reconcile`\n",
                    manual->worker_id,
                    pods_listed ? ""
                                : "; the RunPod pod list could not be read, so pod ids were "
                                  "not checked");
        return STATUS_ERR_USAGE;
    }
    if (manual && manual->kind == MANUAL_SHUTDOWN_ALL && !was_dry_run && !pods_listed &&
        st == STATUS_OK) {
        /* The kill switch stopped every worker's pod, but pods without a row stay unknown. */
        fprintf(stderr, "orchestrator shutdown-all: the RunPod pod list could not be read: pods "
                        "of ours without a worker row were not checked; run it again\n");
        return STATUS_ERR_API;
    }
    return st == STATUS_LOCKED ? STATUS_OK : st;
}

static Status run_one_cycle(int argc, char **argv, bool force_dry_run)
{
    CommandFlags f;
    Status st = commands_parse_flags(argc, argv, force_dry_run ? "" : "dry-run", &f);
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
        } else if (strcmp(argv[i], "--pool") == 0 && i + 1 < argc) {
            const char *name = argv[++i];
            if (!name[0] || strlen(name) >= sizeof req.pool) {
                fprintf(stderr,
                        "orchestrator spawn: --pool needs a pool name of POOLS (at most "
                        "%zu characters)\n",
                        sizeof req.pool - 1);
                return STATUS_ERR_USAGE;
            }
            snprintf(req.pool, sizeof req.pool, "%s", name);
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
    CommandFlags f;
    Status st = commands_parse_flags(argc, argv, "interval", &f);
    if (st != STATUS_OK)
        return st;
    Config *cfg = NULL;
    st = load_config(CONFIG_NEED_DB | CONFIG_NEED_API, &cfg);
    if (st != STATUS_OK)
        return st;
    App app;
    st = commands_app_open(&app, cfg, "continuous", false);
    int interval = f.interval_sec > 0 ? f.interval_sec : cfg->orchestrator_poll_sec;
    if (st == STATUS_OK) /* metrics state, METRICS_FILE, the METRICS_PORT endpoint */
        st = metrics_new(cfg, &app.metrics);
    if (st == STATUS_OK)
        metrics_file_load(app.metrics, cfg->metrics_file);
    metrics_set_poll_interval(app.metrics, interval);
    if (st == STATUS_OK && cfg->metrics_port > 0)
        st = http_start(cfg, interval, &app.http);
    Gateway *gw = NULL; /* issue 13: GATEWAY_PORT > 0 serves the worker gateway too */
    if (st == STATUS_OK && cfg->gateway_port > 0)
        st = gateway_start(cfg, -1, &gw);
    if (st == STATUS_OK)
        st = loop_continuous(&app, interval);
    gateway_stop(gw);
    http_stop(app.http);
    metrics_free(app.metrics);
    commands_app_close(&app);
    free(cfg);
    return st;
}

Status cmd_migrate(int argc, char **argv)
{
    CommandFlags f;
    Status st = commands_parse_flags(argc, argv, "", &f);
    if (st != STATUS_OK)
        return st;
    Config *cfg = NULL;
    st = load_config(CONFIG_NEED_DB, &cfg);
    if (st != STATUS_OK)
        return st;
    PGconn *conn = NULL;
    st = db_connect(cfg, &conn);
    if (st == STATUS_OK && cfg->safe_mode) {
        /* SAFE_MODE writes nothing, migrations included: say what would be applied. */
        MigratePending *pending = calloc(1, sizeof *pending);
        st = pending ? migrate_pending(conn, pending) : STATUS_ERR_NOMEM;
        if (st == STATUS_OK) {
            printf("{\"applied\":0,\"safe_mode\":true,\"pending\":[");
            for (size_t i = 0; i < pending->count && i < MIGRATE_MAX_FILES; i++)
                printf("%s\"%s\"", i ? "," : "", pending->versions[i]);
            printf("]}\n");
            log_info("migrate.safe_mode", "pending=%zu msg=\"SAFE_MODE: nothing applied\"",
                     pending->count);
        }
        free(pending);
    } else if (st == STATUS_OK) {
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
    CommandFlags f;
    Status st = commands_parse_flags(argc, argv, "json", &f);
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

Status commands_load_config(unsigned needs, Config **out)
{
    return load_config(needs, out);
}
