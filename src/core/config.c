/* config.c -- table-driven, strict parsing of the environment into a Config (SPEC section 3).
 *
 * Pure: reads only the envp array it is given; no getenv, no I/O, no logging, no globals that
 * change. Every problem is collected so an operator fixes them all in one round trip.
 */
#include "config.h"

#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef enum { VT_INT, VT_DOUBLE, VT_BOOL, VT_STRING, VT_LIST, VT_ENUM, VT_URL } VarType;

typedef struct {
    const char *name;
    VarType type;
    size_t offset;
    size_t size;         /* capacity for strings */
    const char *def;     /* default, parsed by the same code; NULL = unset */
    double min, max;     /* numeric bounds, or length bounds for strings */
    bool secret;         /* never printed; excluded from the hash */
    const char *choices; /* VT_ENUM: "A|B|C" */
    const char *help;
} VarSpec;

#define F(field) offsetof(Config, field), sizeof(((Config *)0)->field)

/* One row per variable. Names and defaults of the first block are the original system's. */
static const VarSpec VARS[] = {
    {"DATABASE_URL", VT_STRING, F(database_url), NULL, 0, CONFIG_URL_MAX - 1, true, NULL,
     "libpq connection URI or conninfo; the standard PG* variables also work"},
    {"RUNPOD_API_KEY", VT_STRING, F(runpod_api_key), NULL, 0, CONFIG_STR_MAX - 1, true, NULL,
     "bearer key for the RunPod REST API (required unless SAFE_MODE)"},
    {"MIN_ACTIVE_GPUS", VT_INT, F(min_active_gpus), "2", 0, 1000, false, NULL,
     "floor of the fleet (0 allowed: scale to zero)"},
    {"MAX_ACTIVE_GPUS", VT_INT, F(max_active_gpus), "10", 0, 1000, false, NULL,
     "hard ceiling, counting spawning and terminating pods (0 = kill switch: never spawn)"},
    {"TASKS_PER_GPU_THRESHOLD", VT_INT, F(tasks_per_gpu_threshold), "3", 1, 100000, false, NULL,
     "queued tasks tolerated per GPU before scaling up (1 = one GPU per task)"},
    {"MACHINES_TO_KEEP_IDLE", VT_INT, F(machines_to_keep_idle), "0", 0, 1000, false, NULL,
     "idle GPUs kept ready beyond the busy ones"},
    {"GPU_IDLE_TIMEOUT_SEC", VT_INT, F(gpu_idle_timeout_sec), "300", 1, 604800, false, NULL,
     "heartbeat expiry; also how long a GPU may sit idle before scale-down"},
    {"TASK_STUCK_TIMEOUT_SEC", VT_INT, F(task_stuck_timeout_sec), "300", 1, 604800, false, NULL,
     "a task running longer than this marks its worker failed"},
    {"SPAWNING_TIMEOUT_SEC", VT_INT, F(spawning_timeout_sec), "300", 1, 604800, false, NULL,
     "a pod with no first heartbeat after this is failed and terminated"},
    {"GRACEFUL_SHUTDOWN_TIMEOUT_SEC", VT_INT, F(graceful_shutdown_timeout_sec), "600", 0, 604800,
     false, NULL, "how long a terminating worker may finish its task"},
    {"WORKER_GRACE_PERIOD_SEC", VT_INT, F(worker_grace_period_sec), "120", 0, 604800, false, NULL,
     "no idle scale-down within this time after promotion"},
    {"ORCHESTRATOR_POLL_SEC", VT_INT, F(orchestrator_poll_sec), "30", 1, 86400, false, NULL,
     "interval of `continuous`"},
    {"ENABLE_NOTIFY_WAKEUP", VT_BOOL, F(enable_notify_wakeup), "true", 0, 0, false, NULL,
     "continuous LISTENs for new tasks and starts a cycle at once (turn off behind a "
     "transaction-pooling PgBouncer, where LISTEN does not work)"},
    {"SPAWN_POD_ID_GRACE_SEC", VT_INT, F(spawn_pod_id_grace_sec), "120", 1, 86400, false, NULL,
     "a spawning row still without a pod id after this (and not adopted) is failed"},
    {"POD_NOT_FOUND_GRACE_SEC", VT_INT, F(pod_not_found_grace_sec), "60", 0, 86400, false, NULL,
     "RunPod answering 404 for a pod younger than this is not yet taken as gone"},
    {"RUNPOD_API_BASE_URL", VT_URL, F(runpod_api_base_url), "https://api.runpod.io", 0,
     CONFIG_URL_MAX - 1, false, NULL, "REST v2 base (paths start with /v2/); tests use the fake"},
    {"RUNPOD_GPU_TYPE", VT_STRING, F(runpod_gpu_type), "NVIDIA GeForce RTX 4090", 1,
     CONFIG_ITEM_MAX - 1, false, NULL, "GPU type id"},
    {"RUNPOD_GPU_TYPES", VT_LIST, F(runpod_gpu_types), NULL, 0, 0, false, NULL,
     "ordered fallback list of GPU type ids (comma list); when set it replaces RUNPOD_GPU_TYPE"},
    {"RUNPOD_WORKER_IMAGE", VT_STRING, F(runpod_worker_image),
     "runpod/pytorch:2.4.0-py3.11-cuda12.4.1-devel-ubuntu22.04", 1, CONFIG_STR_MAX - 1, false, NULL,
     "container image; its entrypoint starts the worker"},
    {"RUNPOD_CLOUD_TYPE", VT_ENUM, F(runpod_cloud_type), "SECURE", 0, 0, false, "SECURE|COMMUNITY",
     "SECURE or COMMUNITY"},
    {"RUNPOD_DATA_CENTER_IDS", VT_LIST, F(runpod_data_center_ids), NULL, 0, 0, false, NULL,
     "optional comma list of data center ids"},
    {"RUNPOD_CONTAINER_DISK_GB", VT_INT, F(runpod_container_disk_gb), "50", 1, 10000, false, NULL,
     "container disk in GB"},
    {"RUNPOD_NETWORK_VOLUME_ID", VT_STRING, F(runpod_network_volume_id), NULL, 0,
     CONFIG_ITEM_MAX - 1, false, NULL, "optional network volume id"},
    {"RUNPOD_VOLUME_MOUNT_PATH", VT_STRING, F(runpod_volume_mount_path), "/workspace", 1,
     CONFIG_ITEM_MAX - 1, false, NULL, "mount path of the network volume"},
    {"RUNPOD_PORTS", VT_LIST, F(runpod_ports), "22/tcp,8888/http", 0, 0, false, NULL,
     "exposed ports"},
    {"RUNPOD_CONNECT_TIMEOUT_SEC", VT_INT, F(runpod_connect_timeout_sec), "10", 1, 300, false, NULL,
     "connect timeout of each RunPod call"},
    {"RUNPOD_REQUEST_TIMEOUT_SEC", VT_INT, F(runpod_request_timeout_sec), "30", 1, 600, false, NULL,
     "total timeout of each RunPod call"},
    {"RUNPOD_MAX_RETRIES", VT_INT, F(runpod_max_retries), "3", 0, 10, false, NULL,
     "retries of a RunPod call after 429, 5xx or a transport error"},
    {"WORKER_ID_PREFIX", VT_STRING, F(worker_id_prefix), "gpu-", 1, 24, false, NULL,
     "worker ids and pod names are <prefix><UTC yyyymmdd_HHMMSS>-<8 hex>"},
    {"STUCK_EXEMPT_TASK_TYPES", VT_STRING, F(stuck_exempt_task_types), "%_orchestrator", 0,
     CONFIG_ITEM_MAX - 1, false, NULL,
     "SQL LIKE pattern of long-running parent tasks exempt from the stuck check (empty: none)"},
    {"MAX_TASK_ATTEMPTS", VT_INT, F(max_task_attempts), "3", 1, 100, false, NULL,
     "attempts before a task is Failed for good"},
    {"MAX_WORKER_FAILURE_RATE", VT_DOUBLE, F(max_worker_failure_rate), "0.8", 0, 1, false, NULL,
     "spawn circuit breaker: share of unexpected endings that pauses spawning"},
    {"FAILURE_WINDOW_MINUTES", VT_INT, F(failure_window_minutes), "5", 1, 1440, false, NULL,
     "spawn circuit breaker window"},
    {"MIN_WORKERS_FOR_RATE_CHECK", VT_INT, F(min_workers_for_rate_check), "5", 1, 10000, false,
     NULL, "endings needed in the window before the breaker may open"},
    {"MAX_HOURLY_SPEND_USD", VT_DOUBLE, F(max_hourly_spend_usd), "0", 0, 1000000, false, NULL,
     "no spawn may push the fleet's cost per hour above this (0 = off)"},
    {"RECONCILE_INTERVAL_SEC", VT_INT, F(reconcile_interval_sec), "300", 0, 86400, false, NULL,
     "leaked-pod sweep cadence (0 = every cycle)"},
    {"ORPHAN_POD_GRACE_SEC", VT_INT, F(orphan_pod_grace_sec), "300", 0, 86400, false, NULL,
     "age before a pod with our prefix and no worker row is terminated"},
    {"CAPACITY_BACKOFF_BASE_SEC", VT_INT, F(capacity_backoff_base_sec), "300", 1, 86400, false,
     NULL, "first backoff of a GPU type after a no-capacity answer (doubles per failure)"},
    {"CAPACITY_BACKOFF_MAX_SEC", VT_INT, F(capacity_backoff_max_sec), "1800", 1, 86400, false, NULL,
     "longest backoff of a GPU type"},
    {"SAFE_MODE", VT_BOOL, F(safe_mode), "false", 0, 0, false, NULL,
     "read-only: plan and report, never write or call a mutating API"},
    {"LOG_LEVEL", VT_ENUM, F(log_level), "INFO", 0, 0, false, "DEBUG|INFO|WARN|WARNING|ERROR",
     "DEBUG, INFO, WARNING or ERROR"},
    {"LOG_FORMAT", VT_ENUM, F(log_format), "json", 0, 0, false, "json|text",
     "json (one object per line) or text"},
    {"ENABLE_DB_LOGGING", VT_BOOL, F(enable_db_logging), "false", 0, 0, false, NULL,
     "also write logs to system_logs"},
    {"DB_LOG_RETENTION_HOURS", VT_INT, F(db_log_retention_hours), "48", 1, 87600, false, NULL,
     "system_logs retention"},
    {"METRICS_PORT", VT_INT, F(metrics_port), "0", 0, 65535, false, NULL,
     "HTTP /metrics /healthz /readyz in continuous (0 = off)"},
    {"METRICS_FILE", VT_STRING, F(metrics_file), NULL, 0, CONFIG_STR_MAX - 1, false, NULL,
     "Prometheus textfile written after each cycle"},
    {"METRICS_BIND_ADDRESS", VT_STRING, F(metrics_bind_address), "0.0.0.0", 1, 63, false, NULL,
     "IP address the METRICS_PORT endpoint binds (0.0.0.0: all, for Kubernetes probes)"},
    {"ORCHESTRATOR_INSTANCE_ID", VT_STRING, F(orchestrator_instance_id), NULL, 0,
     CONFIG_ITEM_MAX - 1, false, NULL, "source id in logs and the journal"},
};

#define N_VARS (sizeof VARS / sizeof VARS[0])
#define WORKER_ENV_PREFIX "WORKER_ENV_"

size_t config_var_count(void)
{
    return N_VARS;
}

const char *config_var_name(size_t i)
{
    return i < N_VARS ? VARS[i].name : NULL;
}

void config_var_info(size_t i, ConfigVarInfo *out)
{
    static const char kinds[] = {
        [VT_INT] = 'i',  [VT_DOUBLE] = 'd', [VT_BOOL] = 'b', [VT_STRING] = 's',
        [VT_LIST] = 'l', [VT_ENUM] = 'e',   [VT_URL] = 'u'};
    if (i >= N_VARS) {
        memset(out, 0, sizeof *out);
        return;
    }
    const VarSpec *v = &VARS[i];
    *out = (ConfigVarInfo){v->name, kinds[v->type], v->min, v->max, v->def, v->choices, v->secret};
}

/* ------------------------------------------------------------------------------------------ */

static void add_error(ConfigErrors *errs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_error(ConfigErrors *errs, const char *fmt, ...)
{
    if (errs->count >= CONFIG_ERRORS_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errs->messages[errs->count], CONFIG_ERROR_LEN, fmt, ap);
    va_end(ap);
    errs->count++;
}

/* Value of NAME in envp, or NULL. Empty values count as unset. */
static const char *env_lookup(const char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (const char *const *e = envp; e && *e; e++) {
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return (*e)[n + 1] ? *e + n + 1 : NULL;
    }
    return NULL;
}

/* Shortened, printable copy of a bad value for error messages. */
static void quote_value(const char *v, char *out, size_t cap)
{
    size_t j = 0;
    for (size_t i = 0; v[i] && j + 4 < cap; i++) {
        unsigned char c = (unsigned char)v[i];
        out[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
        if (i >= 60) {
            out[j++] = '.';
            out[j++] = '.';
            out[j++] = '.';
            break;
        }
    }
    out[j] = '\0';
}

static int parse_bool(const char *s, bool *out)
{
    static const char *yes[] = {"1", "true", "yes", "on"};
    static const char *no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

static void trim_copy(const char *start, size_t n, char *out, size_t cap)
{
    while (n && isspace((unsigned char)*start)) {
        start++;
        n--;
    }
    while (n && isspace((unsigned char)start[n - 1]))
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, start, n);
    out[n] = '\0';
}

/* Parses one variable's value into cfg. Returns 0, or -1 after adding an error. */
static int parse_value(const VarSpec *v, const char *s, Config *cfg, ConfigErrors *errs)
{
    char *field = (char *)cfg + v->offset;
    char shown[80];
    quote_value(s, shown, sizeof shown);
    const char *display = v->secret ? "***" : shown;

    switch (v->type) {
    case VT_INT: {
        char *end = NULL;
        errno = 0;
        long long x = strtoll(s, &end, 10);
        bool converted = end != s;
        while (end && isspace((unsigned char)*end))
            end++;
        if (errno || !converted || *end != '\0' || x < (long long)v->min || x > (long long)v->max) {
            add_error(errs, "config: invalid value \"%s\" for %s: expected integer in [%lld, %lld]",
                      display, v->name, (long long)v->min, (long long)v->max);
            return -1;
        }
        *(int *)(void *)field = (int)x;
        return 0;
    }
    case VT_DOUBLE: {
        char *end = NULL;
        errno = 0;
        double x = strtod(s, &end);
        bool converted = end != s;
        while (end && isspace((unsigned char)*end))
            end++;
        if (errno || !converted || *end != '\0' || !isfinite(x) || x < v->min || x > v->max) {
            add_error(errs, "config: invalid value \"%s\" for %s: expected number in [%g, %g]",
                      display, v->name, v->min, v->max);
            return -1;
        }
        *(double *)(void *)field = x;
        return 0;
    }
    case VT_BOOL: {
        bool b;
        if (parse_bool(s, &b) != 0) {
            add_error(errs,
                      "config: invalid value \"%s\" for %s: expected true or false (also 1/0, "
                      "yes/no, on/off)",
                      display, v->name);
            return -1;
        }
        *(bool *)(void *)field = b;
        return 0;
    }
    case VT_ENUM: {
        char choices[128];
        snprintf(choices, sizeof choices, "%s", v->choices);
        const char *p = choices;
        while (*p) {
            const char *bar = strchr(p, '|');
            size_t n = bar ? (size_t)(bar - p) : strlen(p);
            if (strlen(s) == n && strncasecmp(s, p, n) == 0) {
                trim_copy(p, n, field, v->size);
                return 0;
            }
            p += n + (bar ? 1 : 0);
        }
        char accepted[160];
        size_t j = 0;
        for (const char *c = v->choices; *c && j + 3 < sizeof accepted; c++) {
            if (*c == '|') {
                accepted[j++] = ',';
                accepted[j++] = ' ';
            } else {
                accepted[j++] = *c;
            }
        }
        accepted[j] = '\0';
        add_error(errs, "config: invalid value \"%s\" for %s: expected one of %s", display, v->name,
                  accepted);
        return -1;
    }
    case VT_URL:
        if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0) {
            add_error(errs,
                      "config: invalid value \"%s\" for %s: expected an http:// or https:// URL",
                      display, v->name);
            return -1;
        }
        /* fall through */
    case VT_STRING: {
        size_t n = strlen(s);
        if ((double)n < v->min || (double)n > v->max || n >= v->size) {
            add_error(errs, "config: invalid value \"%s\" for %s: expected %g to %g characters",
                      display, v->name, v->min, v->max);
            return -1;
        }
        memcpy(field, s, n + 1);
        if (v->type == VT_URL) { /* no trailing slash: paths are appended as /v2/... */
            while (n > 0 && field[n - 1] == '/')
                field[--n] = '\0';
        }
        return 0;
    }
    case VT_LIST: {
        ConfigList list = {0};
        const char *p = s;
        while (*p) {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            char item[CONFIG_ITEM_MAX + 8];
            if (n >= sizeof item) {
                add_error(errs,
                          "config: invalid value \"%s\" for %s: an item is longer than %d "
                          "characters",
                          display, v->name, CONFIG_ITEM_MAX - 1);
                return -1;
            }
            trim_copy(p, n, item, sizeof item);
            if (item[0]) {
                if (list.count >= CONFIG_LIST_MAX || strlen(item) >= CONFIG_ITEM_MAX) {
                    add_error(errs,
                              "config: invalid value \"%s\" for %s: expected at most %d "
                              "comma-separated items of at most %d characters",
                              display, v->name, CONFIG_LIST_MAX, CONFIG_ITEM_MAX - 1);
                    return -1;
                }
                memcpy(list.items[list.count++], item, strlen(item) + 1);
            }
            p += n + (comma ? 1 : 0);
        }
        *(ConfigList *)(void *)field = list;
        return 0;
    }
    }
    return -1;
}

static bool valid_env_name(const char *s, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '_'))
            return false;
    return true;
}

static void parse_worker_env(const char *const *envp, Config *cfg, ConfigErrors *errs)
{
    size_t plen = strlen(WORKER_ENV_PREFIX);
    for (const char *const *e = envp; e && *e; e++) {
        if (strncmp(*e, WORKER_ENV_PREFIX, plen) != 0)
            continue;
        const char *name = *e + plen;
        const char *eq = strchr(name, '=');
        if (!eq)
            continue;
        size_t n = (size_t)(eq - name);
        if (!valid_env_name(name, n) || n >= CONFIG_ITEM_MAX) {
            add_error(errs,
                      "config: invalid variable name %.*s: WORKER_ENV_<NAME> needs NAME made of "
                      "letters, digits and underscores",
                      (int)(n + plen < 100 ? n + plen : 100), *e);
            continue;
        }
        if (n == 9 && strncmp(name, "WORKER_ID", 9) == 0) {
            add_error(errs, "config: WORKER_ENV_WORKER_ID is not allowed: the orchestrator sets "
                            "WORKER_ID for each pod itself; remove the variable");
            continue;
        }
        if (strlen(eq + 1) >= CONFIG_STR_MAX) {
            add_error(errs, "config: value of WORKER_ENV_%.*s is longer than %d characters", (int)n,
                      name, CONFIG_STR_MAX - 1);
            continue;
        }
        if (cfg->n_worker_env >= CONFIG_WORKER_ENV_MAX) {
            add_error(errs, "config: more than %d WORKER_ENV_* variables", CONFIG_WORKER_ENV_MAX);
            return;
        }
        ConfigEnvPair *pair = &cfg->worker_env[cfg->n_worker_env++];
        memcpy(pair->name, name, n);
        pair->name[n] = '\0';
        snprintf(pair->value, sizeof pair->value, "%s", eq + 1);
    }
}

static bool valid_prefix(const char *s)
{
    for (const char *p = s; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '-'))
            return false;
    return s[0] != '\0';
}

Status config_parse(const char *const *envp, const char *hostname, unsigned needs, Config *out,
                    ConfigErrors *errs)
{
    /* Config is large (tens of KiB): parse on the heap, publish only on success. */
    memset(errs, 0, sizeof *errs);
    Config *cfg = calloc(1, sizeof *cfg);
    if (!cfg) {
        add_error(errs, "config: out of memory");
        return STATUS_ERR_NOMEM;
    }

    for (size_t i = 0; i < N_VARS; i++) {
        const VarSpec *v = &VARS[i];
        const char *s = env_lookup(envp, v->name);
        if (!s)
            s = v->def;
        if (s)
            parse_value(v, s, cfg, errs);
    }
    parse_worker_env(envp, cfg, errs);

    /* Derived values and relations between variables. */
    if (cfg->runpod_gpu_types.count == 0 && cfg->runpod_gpu_type[0]) {
        cfg->runpod_gpu_types.count = 1;
        memcpy(cfg->runpod_gpu_types.items[0], cfg->runpod_gpu_type,
               strlen(cfg->runpod_gpu_type) + 1);
    }
    if (cfg->min_active_gpus > cfg->max_active_gpus)
        add_error(errs,
                  "config: MIN_ACTIVE_GPUS (%d) is greater than MAX_ACTIVE_GPUS (%d): lower the "
                  "minimum or raise the maximum",
                  cfg->min_active_gpus, cfg->max_active_gpus);
    if (cfg->capacity_backoff_base_sec > cfg->capacity_backoff_max_sec)
        add_error(errs,
                  "config: CAPACITY_BACKOFF_BASE_SEC (%d) is greater than "
                  "CAPACITY_BACKOFF_MAX_SEC (%d)",
                  cfg->capacity_backoff_base_sec, cfg->capacity_backoff_max_sec);
    if (cfg->worker_id_prefix[0] && !valid_prefix(cfg->worker_id_prefix))
        add_error(errs,
                  "config: invalid value \"%s\" for WORKER_ID_PREFIX: expected lower-case "
                  "letters, digits and '-' (it becomes part of RunPod pod names)",
                  cfg->worker_id_prefix);
    for (size_t i = 0; i < cfg->runpod_ports.count; i++) {
        const char *port = cfg->runpod_ports.items[i];
        char *end = NULL;
        long num = strtol(port, &end, 10);
        if (end == port || num < 1 || num > 65535 ||
            (strcmp(end, "/tcp") != 0 && strcmp(end, "/http") != 0))
            add_error(errs,
                      "config: invalid value \"%s\" in RUNPOD_PORTS: expected PORT/tcp or "
                      "PORT/http with PORT in [1, 65535], e.g. 22/tcp,8888/http",
                      port);
    }
    for (size_t i = 0; i < cfg->runpod_data_center_ids.count; i++)
        if (strlen(cfg->runpod_data_center_ids.items[i]) > 63)
            add_error(errs, "config: a data center id in RUNPOD_DATA_CENTER_IDS is longer than 63 "
                            "characters");
    if (!cfg->orchestrator_instance_id[0])
        snprintf(cfg->orchestrator_instance_id, sizeof cfg->orchestrator_instance_id,
                 "orchestrator-%.100s", hostname && hostname[0] ? hostname : "unknown");

    if ((needs & CONFIG_NEED_DB) && !cfg->database_url[0] && !env_lookup(envp, "PGHOST") &&
        !env_lookup(envp, "PGDATABASE") && !env_lookup(envp, "PGSERVICE"))
        add_error(errs, "config: DATABASE_URL is not set: set it to a libpq URI such as "
                        "postgresql://user:password@host:5432/dbname (or set PGHOST/PGDATABASE)");
    if ((needs & CONFIG_NEED_API) && !cfg->safe_mode && !cfg->runpod_api_key[0])
        add_error(errs, "config: RUNPOD_API_KEY is not set: set it to your RunPod API key, or "
                        "set SAFE_MODE=true to plan without calling RunPod");

    Status st = STATUS_ERR_CONFIG;
    if (errs->count == 0) {
        *out = *cfg;
        st = STATUS_OK;
    }
    free(cfg);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* Display                                                                                     */

void config_redact_dburl(const char *url, char *out, size_t cap)
{
    if (!url || !url[0]) {
        snprintf(out, cap, "(unset)");
        return;
    }
    const char *scheme = strstr(url, "://");
    if (scheme) {
        /* URI: user:password@host -> user:***@host */
        const char *auth = scheme + 3;
        const char *at = strchr(auth, '@');
        const char *slash = strchr(auth, '/');
        if (at && (!slash || at < slash)) {
            const char *colon = memchr(auth, ':', (size_t)(at - auth));
            if (colon) {
                snprintf(out, cap, "%.*s:***%s", (int)(colon - url), url, at);
                return;
            }
        }
        /* password as a query parameter */
        const char *pw = strstr(url, "password=");
        if (pw) {
            const char *amp = strchr(pw, '&');
            snprintf(out, cap, "%.*spassword=***%s", (int)(pw - url), url, amp ? amp : "");
            return;
        }
        snprintf(out, cap, "%s", url);
        return;
    }
    /* conninfo: key=value pairs; mask password=... */
    const char *pw = strstr(url, "password");
    if (pw) {
        const char *eq = strchr(pw, '=');
        const char *end = eq ? eq + 1 : pw;
        while (*end == ' ')
            end++;
        if (*end == '\'') {
            end++;
            while (*end && *end != '\'') {
                if (*end == '\\' && end[1])
                    end++;
                end++;
            }
            if (*end)
                end++;
        } else {
            while (*end && *end != ' ')
                end++;
        }
        snprintf(out, cap, "%.*spassword=***%s", (int)(pw - url), url, end);
        return;
    }
    snprintf(out, cap, "%s", url);
}

/* Display form of variable v: secrets redacted. */
static void display_value(const Config *cfg, const VarSpec *v, char *out, size_t cap)
{
    const char *field = (const char *)cfg + v->offset;
    switch (v->type) {
    case VT_INT:
        snprintf(out, cap, "%d", *(const int *)(const void *)field);
        return;
    case VT_DOUBLE:
        snprintf(out, cap, "%g", *(const double *)(const void *)field);
        return;
    case VT_BOOL:
        snprintf(out, cap, "%s", *(const bool *)(const void *)field ? "true" : "false");
        return;
    case VT_LIST: {
        const ConfigList *l = (const ConfigList *)(const void *)field;
        size_t len = 0;
        out[0] = '\0';
        for (size_t i = 0; i < l->count && len + 1 < cap; i++) {
            int w = snprintf(out + len, cap - len, "%s%s", i ? "," : "", l->items[i]);
            if (w < 0)
                break;
            len += (size_t)w;
        }
        if (len >= cap)
            out[cap - 1] = '\0';
        return;
    }
    case VT_STRING:
    case VT_URL:
    case VT_ENUM:
        if (strcmp(v->name, "DATABASE_URL") == 0)
            config_redact_dburl(field, out, cap);
        else if (v->secret)
            snprintf(out, cap, "%s", field[0] ? "***set***" : "(unset)");
        else
            snprintf(out, cap, "%s", field);
        return;
    }
}

static cJSON *json_value(const Config *cfg, const VarSpec *v)
{
    const char *field = (const char *)cfg + v->offset;
    char buf[CONFIG_URL_MAX];
    switch (v->type) {
    case VT_INT:
        return cJSON_CreateNumber(*(const int *)(const void *)field);
    case VT_DOUBLE:
        return cJSON_CreateNumber(*(const double *)(const void *)field);
    case VT_BOOL:
        return cJSON_CreateBool(*(const bool *)(const void *)field);
    case VT_LIST: {
        const ConfigList *l = (const ConfigList *)(const void *)field;
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; arr && i < l->count; i++)
            cJSON_AddItemToArray(arr, cJSON_CreateString(l->items[i]));
        return arr;
    }
    default:
        display_value(cfg, v, buf, sizeof buf);
        return cJSON_CreateString(buf);
    }
}

char *config_dump(const Config *cfg, bool json)
{
    if (json) {
        cJSON *root = cJSON_CreateObject();
        if (!root)
            return NULL;
        for (size_t i = 0; i < N_VARS; i++)
            cJSON_AddItemToObject(root, VARS[i].name, json_value(cfg, &VARS[i]));
        cJSON *we = cJSON_AddObjectToObject(root, "WORKER_ENV");
        for (size_t i = 0; we && i < cfg->n_worker_env; i++)
            cJSON_AddStringToObject(we, cfg->worker_env[i].name, "***set***");
        char *s = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        return s;
    }
    size_t cap = 4096 + N_VARS * 256 + cfg->n_worker_env * 160;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t len = 0;
    s[0] = '\0';
    char val[CONFIG_URL_MAX];
    for (size_t i = 0; i < N_VARS; i++) {
        display_value(cfg, &VARS[i], val, sizeof val);
        int w = snprintf(s + len, cap - len, "%s=%s\n", VARS[i].name, val);
        if (w < 0 || (size_t)w >= cap - len)
            break;
        len += (size_t)w;
    }
    for (size_t i = 0; i < cfg->n_worker_env; i++) {
        int w = snprintf(s + len, cap - len, "WORKER_ENV_%s=***set***\n", cfg->worker_env[i].name);
        if (w < 0 || (size_t)w >= cap - len)
            break;
        len += (size_t)w;
    }
    return s;
}

void config_hash(const Config *cfg, char out[17])
{
    uint64_t h = 1469598103934665603ULL;
    char val[CONFIG_URL_MAX];
    for (size_t i = 0; i < N_VARS; i++) {
        if (VARS[i].secret)
            continue;
        display_value(cfg, &VARS[i], val, sizeof val);
        const char *parts[] = {VARS[i].name, "=", val, "\n"};
        for (size_t k = 0; k < 4; k++)
            for (const unsigned char *p = (const unsigned char *)parts[k]; *p; p++) {
                h ^= *p;
                h *= 1099511628211ULL;
            }
    }
    for (size_t i = 0; i < cfg->n_worker_env; i++)
        for (const unsigned char *p = (const unsigned char *)cfg->worker_env[i].name; *p; p++) {
            h ^= *p;
            h *= 1099511628211ULL;
        }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

char *config_help(void)
{
    size_t cap = 512 + N_VARS * 320;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t len = 0;
    s[0] = '\0';
    for (size_t i = 0; i < N_VARS; i++) {
        const VarSpec *v = &VARS[i];
        char bounds[96] = "";
        if (v->type == VT_INT)
            snprintf(bounds, sizeof bounds, " [%lld..%lld]", (long long)v->min, (long long)v->max);
        else if (v->type == VT_DOUBLE)
            snprintf(bounds, sizeof bounds, " [%g..%g]", v->min, v->max);
        else if (v->type == VT_ENUM)
            snprintf(bounds, sizeof bounds, " {%s}", v->choices);
        int w =
            snprintf(s + len, cap - len, "  %-30s default %s%s%s\n      %s\n", v->name,
                     v->def ? v->def : "(unset)", bounds, v->secret ? " (secret)" : "", v->help);
        if (w < 0 || (size_t)w >= cap - len)
            break;
        len += (size_t)w;
    }
    snprintf(s + len, cap - len, "  %-30s each is passed to every pod as <NAME> (secret)\n",
             "WORKER_ENV_<NAME>");
    return s;
}
