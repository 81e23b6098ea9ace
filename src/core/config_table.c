/* config_table.c -- one row per configuration variable (SPEC section 3): name, type, field,
 * default, bounds, secrecy and help. Names and defaults of the first block are the original
 * system's.
 *
 * Pure: data, and the accessors tests and docs read it through.
 */
#include "config_table.h"

#include <stddef.h>
#include <string.h>

#define F(field) offsetof(Config, field), sizeof(((Config *)0)->field)

/* One row per variable. Names and defaults of the first block are the original system's. */
const VarSpec CONFIG_VARS[] = {
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
     "continuous LISTENs for new tasks and starts a cycle at once, and submit --wait for ended "
     "tasks (turn off behind a transaction-pooling PgBouncer, where LISTEN does not work; both "
     "then poll)"},
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
    {"RUNPOD_GPU_CHOICE", VT_ENUM, F(runpod_gpu_choice), "ordered", 0, 0, false,
     "ordered|cheapest|value",
     "order of each pool's GPU types: ordered (as configured), cheapest (lowest list price in "
     "stock) or value (lowest dollars per task from our own task history); out-of-stock types "
     "are skipped whatever the choice"},
    {"RUNPOD_CATALOG_TTL_SEC", VT_INT, F(runpod_catalog_ttl_sec), "300", 0, 86400, false, NULL,
     "RunPod's GPU catalog (stock, prices) is read at most once per this many seconds, when a "
     "cycle spawns, and shared between runs through the database (0 = never read it)"},
    {"RUNPOD_VALUE_MIN_SAMPLES", VT_INT, F(runpod_value_min_samples), "20", 1, 1000000, false, NULL,
     "value: completed tasks a GPU type needs before its own median duration counts (fewer: "
     "the pool's median, i.e. ranked by price)"},
    {"RUNPOD_VALUE_WINDOW_HOURS", VT_INT, F(runpod_value_window_hours), "168", 1, 8760, false, NULL,
     "value: the task-duration figures come from the completed tasks of this many past hours "
     "(the newest 5000 at most)"},
    {"RUNPOD_RATE_LIMIT_RESERVE", VT_INT, F(runpod_rate_limit_reserve), "10", 0, 100000, false,
     NULL,
     "RunPod API calls kept back from pod creates for pod lists and terminations (creates "
     "beyond the remaining quota minus this wait for later cycles; terminations never wait)"},
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
    {"POOLS", VT_LIST, F(pool_names), NULL, 0, 0, false, NULL,
     "worker pools, comma list of names (lower-case letters, digits, _); unset = one pool "
     "`default` serving run_type gpu. Each pool takes POOL_<NAME>_<SETTING> (RUN_TYPES, "
     "GPU_TYPES, WORKER_IMAGE, CLOUD_TYPE, CONTAINER_DISK_GB, MIN_ACTIVE_GPUS, MAX_ACTIVE_GPUS, "
     "TASKS_PER_GPU_THRESHOLD, MACHINES_TO_KEEP_IDLE, GPU_IDLE_TIMEOUT_SEC, "
     "WORKER_GRACE_PERIOD_SEC, SPAWNING_TIMEOUT_SEC, TASK_STUCK_TIMEOUT_SEC, "
     "MAX_HOURLY_SPEND_USD, WARM_STOPPED_PODS, ENV_<VAR>), falling back to the global variable"},
    {"CYCLE_LEASE_TTL_SEC", VT_INT, F(cycle_lease_ttl_sec), "60", 3, 3600, false, NULL,
     "lifetime of the cycle lease (renewed while a cycle runs); a killed cycle blocks others "
     "at most this long"},
    /* The worker gateway and its storage (issue 13, structure_docs/gateway.md). */
    {"GATEWAY_PORT", VT_INT, F(gateway_port), "0", 0, 65535, false, NULL,
     "port of the worker gateway (`orchestrator gateway`; continuous serves it too when > 0)"},
    {"GATEWAY_BIND_ADDRESS", VT_STRING, F(gateway_bind_address), "0.0.0.0", 1, 63, false, NULL,
     "IP address (a literal, not a host name) the gateway binds (0.0.0.0: all; 127.0.0.1: "
     "this host only; :: for IPv6)"},
    {"GATEWAY_PUBLIC_URL", VT_URL, F(gateway_public_url), NULL, 0, CONFIG_URL_MAX - 1, false, NULL,
     "the gateway's URL as pods reach it; with GATEWAY_JWT_SECRET, pods get WORKER_API_URL "
     "and a WORKER_TOKEN"},
    {"GATEWAY_JWT_SECRET", VT_STRING, F(gateway_jwt_secret), NULL, 32, CONFIG_STR_MAX - 1, true,
     NULL, "HS256 key of the per-pod worker tokens and signed upload URLs (32+ characters)"},
    {"GATEWAY_DATABASE_URL", VT_STRING, F(gateway_database_url), NULL, 0, CONFIG_URL_MAX - 1, true,
     NULL,
     "the gateway's connection, as a login role holding only orchestrator_worker "
     "(unset: DATABASE_URL)"},
    {"GATEWAY_DB_POOL_SIZE", VT_INT, F(gateway_db_pool_size), "8", 1, 64, false, NULL,
     "database connections the gateway keeps at most"},
    {"GATEWAY_MAX_CONNECTIONS", VT_INT, F(gateway_max_connections), "256", 4, 4096, false, NULL,
     "HTTP connections the gateway serves at once (more wait in the kernel's backlog)"},
    {"GATEWAY_MAX_CONNECTIONS_PER_IP", VT_INT, F(gateway_max_connections_per_ip), "0", 0, 4096,
     false, NULL,
     "connections one client address may hold at once (0: a quarter of "
     "GATEWAY_MAX_CONNECTIONS); behind a proxy, set it to GATEWAY_MAX_CONNECTIONS"},
    {"GATEWAY_UPLOAD_URL_TTL_SEC", VT_INT, F(gateway_upload_url_ttl_sec), "3600", 10, 604800, false,
     NULL, "lifetime of a signed upload URL from generate-upload-url"},
    {"STORAGE_BACKEND", VT_ENUM, F(storage_backend), "local", 0, 0, false, "local|s3",
     "where the gateway stores worker outputs: local (STORAGE_DIR) or s3"},
    {"STORAGE_DIR", VT_STRING, F(storage_dir), "/var/lib/orchestrator/storage", 1,
     CONFIG_STR_MAX - 1, false, NULL, "directory of the local storage backend"},
    {"STORAGE_PUBLIC_BASE_URL", VT_URL, F(storage_public_base_url), NULL, 0, CONFIG_URL_MAX - 1,
     false, NULL, "when set, public file GETs redirect to <this>/<bucket>/<path> (a CDN)"},
    {"STORAGE_S3_ENDPOINT", VT_URL, F(storage_s3_endpoint), NULL, 0, CONFIG_URL_MAX - 1, false,
     NULL, "S3-compatible endpoint, e.g. https://s3.eu-west-1.amazonaws.com (path-style)"},
    {"STORAGE_S3_BUCKET", VT_STRING, F(storage_s3_bucket), NULL, 0, 63, false, NULL,
     "S3 bucket holding the objects"},
    {"STORAGE_S3_REGION", VT_STRING, F(storage_s3_region), "us-east-1", 1, 63, false, NULL,
     "S3 region used in the SigV4 signature"},
    {"STORAGE_S3_ACCESS_KEY_ID", VT_STRING, F(storage_s3_access_key_id), NULL, 0,
     CONFIG_ITEM_MAX - 1, true, NULL, "S3 access key id"},
    {"STORAGE_S3_SECRET_ACCESS_KEY", VT_STRING, F(storage_s3_secret_access_key), NULL, 0,
     CONFIG_STR_MAX - 1, true, NULL, "S3 secret access key"},
    {"STORAGE_MAX_UPLOAD_MB", VT_INT, F(storage_max_upload_mb), "1024", 1, 102400, false, NULL,
     "largest file a worker may upload through the gateway (MiB)"},
    {"WARM_STOPPED_PODS", VT_INT, F(warm_stopped_pods), "0", 0, 1000, false, NULL,
     "drained idle pods kept stopped (disk and image kept, billed for disk only) and started "
     "again before any create; per pool POOL_<NAME>_WARM_STOPPED_PODS (0 = terminate, as before)"},
    {"STOPPED_POD_MAX_AGE_SEC", VT_INT, F(stopped_pod_max_age_sec), "86400", 60, 2592000, false,
     NULL, "a pod stopped longer than this is terminated"},
    {"STOPPED_POD_DISK_USD_PER_GB_MONTH", VT_DOUBLE, F(stopped_pod_usd_per_gb_month), "0.20", 0,
     1000, false, NULL,
     "what a stopped pod's disk costs per GB and month (the spend cap counts stopped pods at it)"},
    {"RUNPOD_LOG_TIMEOUT_SEC", VT_INT, F(runpod_log_timeout_sec), "5", 1, 60, false, NULL,
     "how long reading a failed worker's pod log may take before its pod is terminated anyway"},
    {"RUNPOD_LOG_MAX_BYTES", VT_INT, F(runpod_log_max_bytes), "16384", 1024, 65536, false, NULL,
     "bytes of a failed worker's pod log tail kept (the read keeps the newest 4x this at most)"},
    /* Adaptive policies (issue 15): opt-in; structure_docs/simulation.md has their measured
     * effect on the policy lab's traces. */
    {"ADAPTIVE_WARM_POOL", VT_BOOL, F(adaptive_warm_pool), "false", 0, 0, false, NULL,
     "keep MACHINES_TO_KEEP_IDLE warm only while the pool is hot (enough recent arrivals, or "
     "slow cold starts); otherwise none"},
    {"ADAPTIVE_WARM_MIN_ARRIVALS", VT_INT, F(adaptive_warm_min_arrivals), "10", 1, 1000000, false,
     NULL, "a pool is hot after this many tasks within ADAPTIVE_WARM_WINDOW_SEC"},
    {"ADAPTIVE_WARM_WINDOW_SEC", VT_INT, F(adaptive_warm_window_sec), "900", 60, 86400, false, NULL,
     "the window ADAPTIVE_WARM_MIN_ARRIVALS is counted over"},
    {"ADAPTIVE_WARM_COLD_START_SEC", VT_INT, F(adaptive_warm_cold_start_sec), "45", 0, 86400, false,
     NULL,
     "a pool is also hot while its median cold start (creation to promotion) "
     "exceeds this"},
    {"ADAPTIVE_WARM_DEMOTE_SEC", VT_INT, F(adaptive_warm_demote_sec), "1800", 60, 604800, false,
     NULL, "a hot pool goes cold after this long without an arrival"},
    {"PREDICTIVE_SCALE_UP", VT_BOOL, F(predictive_scale_up), "false", 0, 0, false, NULL,
     "size each pool for the backlog expected one cold start from now (arrival rate x median "
     "boot time, less what busy workers finish meanwhile), not only for today's queue"},
    {"ADAPTIVE_RATE_WINDOW_SEC", VT_INT, F(adaptive_rate_window_sec), "600", 60, 86400, false, NULL,
     "the window arrival rates are measured over (predictive scale-up, adaptive idle grace)"},
    {"ADAPTIVE_IDLE_GRACE", VT_BOOL, F(adaptive_idle_grace), "false", 0, 0, false, NULL,
     "ski rental: keep an idle worker while the cold start it may save is worth more than "
     "keeping it; never longer than GPU_IDLE_TIMEOUT_SEC"},
    {"ADAPTIVE_IDLE_GRACE_MIN_SEC", VT_INT, F(adaptive_idle_grace_min_sec), "30", 0, 604800, false,
     NULL, "the shortest idle grace the adaptive rule may give"},
    {"ADAPTIVE_IDLE_WAIT_WEIGHT", VT_DOUBLE, F(adaptive_idle_wait_weight), "1", 0, 1000, false,
     NULL, "what a second a task waits for a cold start is worth, in GPU-seconds of its pool"},
};

const size_t CONFIG_N_VARS = sizeof CONFIG_VARS / sizeof CONFIG_VARS[0];

size_t config_var_count(void)
{
    return CONFIG_N_VARS;
}

const char *config_var_name(size_t i)
{
    return i < CONFIG_N_VARS ? CONFIG_VARS[i].name : NULL;
}

void config_var_info(size_t i, ConfigVarInfo *out)
{
    static const char kinds[] = {
        [VT_INT] = 'i',  [VT_DOUBLE] = 'd', [VT_BOOL] = 'b', [VT_STRING] = 's',
        [VT_LIST] = 'l', [VT_ENUM] = 'e',   [VT_URL] = 'u'};
    if (i >= CONFIG_N_VARS) {
        memset(out, 0, sizeof *out);
        return;
    }
    const VarSpec *v = &CONFIG_VARS[i];
    *out = (ConfigVarInfo){v->name, kinds[v->type], v->min, v->max, v->def, v->choices, v->secret};
}

const VarSpec *config_var_spec(const char *name)
{
    for (size_t i = 0; i < CONFIG_N_VARS; i++)
        if (strcmp(CONFIG_VARS[i].name, name) == 0)
            return &CONFIG_VARS[i];
    return NULL;
}
