/* config.h -- the validated, immutable configuration (SPEC section 3).
 *
 * Pure: config_parse() reads only the environment array it is given (never getenv), so unit
 * tests pass arrays and the shell passes `environ`. One table drives parsing, `config --json`,
 * the redacted dump and the help text. After parsing, a Config is treated as const.
 */
#ifndef ORCH_CONFIG_H
#define ORCH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

#define CONFIG_STR_MAX 512
#define CONFIG_URL_MAX 2048
#define CONFIG_LIST_MAX 16
#define CONFIG_ITEM_MAX 128
#define CONFIG_WORKER_ENV_MAX 64
#define CONFIG_ERRORS_MAX 64
#define CONFIG_ERROR_LEN 320

typedef struct {
    char name[CONFIG_ITEM_MAX]; /* without the WORKER_ENV_ prefix */
    char value[CONFIG_STR_MAX];
} ConfigEnvPair;

typedef struct {
    size_t count;
    char items[CONFIG_LIST_MAX][CONFIG_ITEM_MAX];
} ConfigList;

#define CONFIG_POOLS_MAX 16
#define CONFIG_POOL_NAME_MAX 32
#define CONFIG_POOL_ENV_MAX 16
#define CONFIG_DEFAULT_POOL "default"

/* One worker pool (issue 14): the kinds of task it serves, the pods it runs and its limits.
 * Every setting is POOL_<NAME>_<SETTING>, falling back to the global variable of the same name
 * (RUNPOD_GPU_TYPES, RUNPOD_WORKER_IMAGE, RUNPOD_CLOUD_TYPE and RUNPOD_CONTAINER_DISK_GB for
 * GPU_TYPES, WORKER_IMAGE, CLOUD_TYPE and CONTAINER_DISK_GB). */
typedef struct {
    char name[CONFIG_POOL_NAME_MAX]; /* lower-case letters, digits, '_' */
    ConfigList run_types;            /* tasks.run_type values it serves; default: its name */
    ConfigList gpu_types;            /* ordered candidates */
    char worker_image[CONFIG_STR_MAX];
    char cloud_type[16];
    int container_disk_gb;
    int min_active_gpus;
    int max_active_gpus;
    int tasks_per_gpu_threshold;
    int machines_to_keep_idle;
    int gpu_idle_timeout_sec;
    int worker_grace_period_sec;
    int spawning_timeout_sec;
    int task_stuck_timeout_sec;
    double max_hourly_spend_usd;
    int warm_stopped_pods; /* WARM_STOPPED_PODS (issue 16): drained pods kept stopped */
    size_t n_env;          /* POOL_<NAME>_ENV_<VAR>: added after the global WORKER_ENV_* */
    ConfigEnvPair env[CONFIG_POOL_ENV_MAX];
} PoolConfig;

typedef struct {
    /* connections and secrets */
    char database_url[CONFIG_URL_MAX];
    char runpod_api_key[CONFIG_STR_MAX];

    /* fleet sizing */
    int min_active_gpus;
    int max_active_gpus;
    int tasks_per_gpu_threshold;
    int machines_to_keep_idle;

    /* timeouts, seconds */
    int gpu_idle_timeout_sec;
    int task_stuck_timeout_sec;
    int spawning_timeout_sec;
    int graceful_shutdown_timeout_sec;
    int worker_grace_period_sec;
    int orchestrator_poll_sec;
    bool enable_notify_wakeup;   /* ENABLE_NOTIFY_WAKEUP: LISTEN for new tasks in continuous */
    int spawn_pod_id_grace_sec;  /* SPAWN_POD_ID_GRACE_SEC: spawning row without pod id */
    int pod_not_found_grace_sec; /* POD_NOT_FOUND_GRACE_SEC: 404 right after create */

    /* RunPod */
    char runpod_api_base_url[CONFIG_URL_MAX];
    char runpod_gpu_type[CONFIG_ITEM_MAX];
    ConfigList runpod_gpu_types; /* effective ordered list: RUNPOD_GPU_TYPES or the one type */
    char runpod_worker_image[CONFIG_STR_MAX];
    char runpod_cloud_type[16];
    ConfigList runpod_data_center_ids;
    int runpod_container_disk_gb;
    char runpod_network_volume_id[CONFIG_ITEM_MAX];
    char runpod_volume_mount_path[CONFIG_ITEM_MAX];
    ConfigList runpod_ports;
    int runpod_connect_timeout_sec;
    int runpod_request_timeout_sec;
    int runpod_max_retries;
    char runpod_gpu_choice[16];    /* RUNPOD_GPU_CHOICE: ordered | cheapest | value */
    int runpod_catalog_ttl_sec;    /* RUNPOD_CATALOG_TTL_SEC: 0 = no catalog */
    int runpod_value_min_samples;  /* RUNPOD_VALUE_MIN_SAMPLES */
    int runpod_value_window_hours; /* RUNPOD_VALUE_WINDOW_HOURS */
    int runpod_rate_limit_reserve; /* RUNPOD_RATE_LIMIT_RESERVE */
    size_t n_worker_env;
    ConfigEnvPair worker_env[CONFIG_WORKER_ENV_MAX];

    /* identity and task policy */
    char worker_id_prefix[33];
    char stuck_exempt_task_types[CONFIG_ITEM_MAX];
    int max_task_attempts;

    /* safety */
    double max_worker_failure_rate;
    int failure_window_minutes;
    int min_workers_for_rate_check;
    double max_hourly_spend_usd;
    int reconcile_interval_sec;
    int orphan_pod_grace_sec;
    int capacity_backoff_base_sec;
    int capacity_backoff_max_sec;
    bool safe_mode;

    /* observability */
    char log_level[16];
    char log_format[16];
    bool enable_db_logging;
    int db_log_retention_hours;
    int metrics_port;
    char metrics_file[CONFIG_STR_MAX];
    char metrics_bind_address[64]; /* METRICS_BIND_ADDRESS: IP literal the HTTP endpoint binds */
    char orchestrator_instance_id[CONFIG_ITEM_MAX];

    /* worker pools (issue 14): POOLS as given, and every pool resolved (never empty) */
    ConfigList pool_names;
    size_t n_pools;
    PoolConfig pools[CONFIG_POOLS_MAX];
    /* single-controller exclusion (structure_docs/safety.md) */
    int cycle_lease_ttl_sec; /* CYCLE_LEASE_TTL_SEC: the cycle lease's lifetime, renewed at 1/4 */
    /* the worker gateway and its storage (issue 13, structure_docs/gateway.md) */
    int gateway_port;                          /* GATEWAY_PORT: 0 = not served by continuous */
    char gateway_bind_address[64];             /* GATEWAY_BIND_ADDRESS: IP literal */
    char gateway_public_url[CONFIG_URL_MAX];   /* GATEWAY_PUBLIC_URL: what pods call */
    char gateway_jwt_secret[CONFIG_STR_MAX];   /* GATEWAY_JWT_SECRET: signs the tokens (secret) */
    char gateway_database_url[CONFIG_URL_MAX]; /* secret; "" = DATABASE_URL */
    int gateway_db_pool_size;                  /* GATEWAY_DB_POOL_SIZE */
    int gateway_max_connections;               /* GATEWAY_MAX_CONNECTIONS */
    int gateway_max_connections_per_ip;        /* 0 = a quarter of gateway_max_connections */
    int gateway_upload_url_ttl_sec;            /* GATEWAY_UPLOAD_URL_TTL_SEC */
    char storage_backend[16];                  /* STORAGE_BACKEND: local | s3 */
    char storage_dir[CONFIG_STR_MAX];          /* STORAGE_DIR (local) */
    char storage_public_base_url[CONFIG_URL_MAX]; /* STORAGE_PUBLIC_BASE_URL: redirect GETs */
    char storage_s3_endpoint[CONFIG_URL_MAX];
    char storage_s3_bucket[CONFIG_ITEM_MAX];
    char storage_s3_region[64];
    char storage_s3_access_key_id[CONFIG_ITEM_MAX];    /* secret */
    char storage_s3_secret_access_key[CONFIG_STR_MAX]; /* secret */
    int storage_max_upload_mb;                         /* STORAGE_MAX_UPLOAD_MB */
    /* RunPod lifecycle (issue 16 items 3 and 4; structure_docs/runpod_lifecycle.md) */
    int warm_stopped_pods;               /* WARM_STOPPED_PODS: the default of every pool */
    int stopped_pod_max_age_sec;         /* STOPPED_POD_MAX_AGE_SEC */
    double stopped_pod_usd_per_gb_month; /* STOPPED_POD_DISK_USD_PER_GB_MONTH */
    int runpod_log_timeout_sec;          /* RUNPOD_LOG_TIMEOUT_SEC: bound of a log-tail read */
    int runpod_log_max_bytes;            /* RUNPOD_LOG_MAX_BYTES: bytes of a log tail kept */

    /* adaptive policies (issue 15, structure_docs/simulation.md): each off unless turned on */
    bool adaptive_warm_pool;          /* MACHINES_TO_KEEP_IDLE only while the pool is hot */
    int adaptive_warm_min_arrivals;   /* hot: at least this many tasks within the window, */
    int adaptive_warm_window_sec;     /* ... this window, */
    int adaptive_warm_cold_start_sec; /* ... or a median cold start above this; */
    int adaptive_warm_demote_sec;     /* cold again after this long without an arrival */
    bool predictive_scale_up;         /* size for the backlog one cold start from now */
    int adaptive_rate_window_sec;     /* the window arrival rates are measured over */
    bool adaptive_idle_grace;         /* ski rental: idle grace from rates and cold starts */
    int adaptive_idle_grace_min_sec;
    double adaptive_idle_wait_weight; /* a second of waiting, in GPU-seconds of the pool */
} Config;

typedef struct {
    size_t count;
    char messages[CONFIG_ERRORS_MAX][CONFIG_ERROR_LEN];
} ConfigErrors;

/* What a command needs beyond valid values. */
typedef enum {
    CONFIG_NEED_NOTHING = 0,
    CONFIG_NEED_DB = 1,  /* DATABASE_URL (or PGHOST/PGDATABASE/PGSERVICE) */
    CONFIG_NEED_API = 2, /* RUNPOD_API_KEY unless SAFE_MODE */
    /* issue 13: GATEWAY_JWT_SECRET, a database, and the s3 settings when STORAGE_BACKEND=s3 */
    CONFIG_NEED_GATEWAY = 4,
} ConfigNeeds;

/* Parses the configuration from envp ("NAME=value" strings, NULL-terminated, like environ).
 * hostname is used for the default ORCHESTRATOR_INSTANCE_ID (may be NULL).
 * Validates every variable and their relations, collecting every problem into errs.
 * Returns STATUS_OK and fills *out only when there is no error; otherwise STATUS_ERR_CONFIG
 * (errs lists each problem: variable, value, what is accepted), or STATUS_ERR_NOMEM. */
Status config_parse(const char *const *envp, const char *hostname, unsigned needs, Config *out,
                    ConfigErrors *errs);

/* The gateway's limit of connections from one client address: GATEWAY_MAX_CONNECTIONS_PER_IP,
 * or when it is 0 (the default) a quarter of GATEWAY_MAX_CONNECTIONS (at least 1). Cannot
 * fail. */
int config_gateway_per_ip_limit(const Config *cfg);

/* The pool serving run_type, or NULL when none does. Cannot fail. */
const PoolConfig *config_pool_for_run_type(const Config *cfg, const char *run_type);

/* The resolved pools as a JSON array of objects {name, RUN_TYPES, GPU_TYPES, ..., ENV} (ENV
 * values shown as ***set***). Returns a new array (caller deletes) or NULL when out of memory.
 * Used by `config`, the configuration hash and the journal. */
struct cJSON *config_pools_json(const Config *cfg);

/* The pool named name, or NULL. Cannot fail. */
const PoolConfig *config_pool_named(const Config *cfg, const char *name);

/* Writes the effective configuration as "NAME=value" lines (text) or a JSON object, secrets
 * shown as ***set*** or (unset); DATABASE_URL with its password masked.
 * Returns a malloc'd NUL-terminated string the caller frees, or NULL when out of memory. */
char *config_dump(const Config *cfg, bool json);

/* 64-bit FNV-1a hash of the effective non-secret configuration, as 16 hex digits + NUL.
 * Two configs that differ in any non-secret setting hash differently. Cannot fail. */
void config_hash(const Config *cfg, char out[17]);

/* Masks the password of a libpq URI or conninfo ("postgresql://u:***@h/db", "password=***").
 * Writes at most cap bytes including NUL. Cannot fail. */
void config_redact_dburl(const char *url, char *out, size_t cap);

/* Help text listing every variable with its default, bounds and meaning.
 * Returns a malloc'd string the caller frees, or NULL when out of memory. */
char *config_help(void);

/* The table, for tests and docs: entry i's name, kind ('i' integer, 'd' number, 'b' boolean,
 * 's' string, 'u' URL, 'l' comma list, 'e' one of choices), bounds (numbers: value range;
 * strings: length range), default (NULL = unset) and whether it is secret. */
typedef struct {
    const char *name;
    char kind;
    double min, max;
    const char *def;
    const char *choices;
    bool secret;
} ConfigVarInfo;
size_t config_var_count(void);
const char *config_var_name(size_t i);
void config_var_info(size_t i, ConfigVarInfo *out);

#endif
