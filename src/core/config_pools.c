/* config_pools.c -- worker pools from the environment (issue 14): POOLS and every
 * POOL_<NAME>_<SETTING> (see config.h, PoolConfig).
 *
 * Pure: reads only the envp array it is given. Every problem is collected: a bad pool name, a
 * run_type served by two pools, a pool variable naming a pool not in POOLS, a pool's MIN above
 * its MAX, the pools' MINs summing above the fleet's MAX_ACTIVE_GPUS. A pool setting left unset
 * takes the global variable of the same name, with the same bounds (one table: config_table.c).
 */
#include "config.h"

#include <cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "config_table.h"
#include "runpod_json.h"

#define F(field) offsetof(PoolConfig, field), sizeof(((PoolConfig *)0)->field)

/* A pool setting: the suffix after POOL_<NAME>_, the global variable it falls back to (whose
 * type and bounds it shares), and its field. */
typedef struct {
    const char *suffix;
    const char *global;
    size_t offset;
    size_t size;
} PoolSetting;

static const PoolSetting SETTINGS[] = {
    {"RUN_TYPES", NULL, F(run_types)},
    {"GPU_TYPES", "RUNPOD_GPU_TYPES", F(gpu_types)},
    {"WORKER_IMAGE", "RUNPOD_WORKER_IMAGE", F(worker_image)},
    {"CLOUD_TYPE", "RUNPOD_CLOUD_TYPE", F(cloud_type)},
    {"CONTAINER_DISK_GB", "RUNPOD_CONTAINER_DISK_GB", F(container_disk_gb)},
    {"MIN_ACTIVE_GPUS", "MIN_ACTIVE_GPUS", F(min_active_gpus)},
    {"MAX_ACTIVE_GPUS", "MAX_ACTIVE_GPUS", F(max_active_gpus)},
    {"TASKS_PER_GPU_THRESHOLD", "TASKS_PER_GPU_THRESHOLD", F(tasks_per_gpu_threshold)},
    {"MACHINES_TO_KEEP_IDLE", "MACHINES_TO_KEEP_IDLE", F(machines_to_keep_idle)},
    {"GPU_IDLE_TIMEOUT_SEC", "GPU_IDLE_TIMEOUT_SEC", F(gpu_idle_timeout_sec)},
    {"WORKER_GRACE_PERIOD_SEC", "WORKER_GRACE_PERIOD_SEC", F(worker_grace_period_sec)},
    {"SPAWNING_TIMEOUT_SEC", "SPAWNING_TIMEOUT_SEC", F(spawning_timeout_sec)},
    {"TASK_STUCK_TIMEOUT_SEC", "TASK_STUCK_TIMEOUT_SEC", F(task_stuck_timeout_sec)},
    {"MAX_HOURLY_SPEND_USD", "MAX_HOURLY_SPEND_USD", F(max_hourly_spend_usd)},
    {"WARM_STOPPED_PODS", "WARM_STOPPED_PODS", F(warm_stopped_pods)},
};

#define N_SETTINGS (sizeof SETTINGS / sizeof SETTINGS[0])
#define POOL_PREFIX "POOL_"

static bool valid_pool_name(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= CONFIG_POOL_NAME_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_'))
            return false;
    return true;
}

/* The upper-case form of a pool name, as it appears in POOL_<NAME>_... */
static void upper(const char *s, char *out, size_t cap)
{
    size_t i = 0;
    for (; s[i] && i + 1 < cap; i++)
        out[i] = (char)toupper((unsigned char)s[i]);
    out[i] = '\0';
}

/* Copies the global value of a setting into the pool (the fallback). */
static void inherit(const Config *cfg, PoolConfig *p)
{
    p->gpu_types = cfg->runpod_gpu_types;
    snprintf(p->worker_image, sizeof p->worker_image, "%s", cfg->runpod_worker_image);
    snprintf(p->cloud_type, sizeof p->cloud_type, "%s", cfg->runpod_cloud_type);
    p->container_disk_gb = cfg->runpod_container_disk_gb;
    p->min_active_gpus = cfg->min_active_gpus;
    p->max_active_gpus = cfg->max_active_gpus;
    p->tasks_per_gpu_threshold = cfg->tasks_per_gpu_threshold;
    p->machines_to_keep_idle = cfg->machines_to_keep_idle;
    p->gpu_idle_timeout_sec = cfg->gpu_idle_timeout_sec;
    p->worker_grace_period_sec = cfg->worker_grace_period_sec;
    p->spawning_timeout_sec = cfg->spawning_timeout_sec;
    p->task_stuck_timeout_sec = cfg->task_stuck_timeout_sec;
    p->max_hourly_spend_usd = cfg->max_hourly_spend_usd;
    p->warm_stopped_pods = cfg->warm_stopped_pods;
    p->run_types.count = 1;
    snprintf(p->run_types.items[0], sizeof p->run_types.items[0], "%s",
             strcmp(p->name, CONFIG_DEFAULT_POOL) == 0 ? "gpu" : p->name);
}

/* Parses every POOL_<NAME>_<SETTING> of pool p that is set. */
static void parse_settings(const char *const *envp, PoolConfig *p, ConfigErrors *errs)
{
    char up[CONFIG_POOL_NAME_MAX], var[128];
    upper(p->name, up, sizeof up);
    for (size_t k = 0; k < N_SETTINGS; k++) {
        snprintf(var, sizeof var, POOL_PREFIX "%s_%s", up, SETTINGS[k].suffix);
        const char *s = config_env_lookup(envp, var);
        if (!s)
            continue;
        VarSpec v;
        const VarSpec *g = SETTINGS[k].global ? config_var_spec(SETTINGS[k].global) : NULL;
        if (g)
            v = *g;
        else
            v = (VarSpec){.type = VT_LIST};
        v.name = var;
        v.offset = SETTINGS[k].offset;
        v.size = SETTINGS[k].size;
        config_parse_value(&v, s, p, errs);
    }
}

/* POOL_<NAME>_ENV_<VAR>=value of pool p. */
static void parse_env(const char *const *envp, PoolConfig *p, ConfigErrors *errs)
{
    char up[CONFIG_POOL_NAME_MAX], prefix[80];
    upper(p->name, up, sizeof up);
    snprintf(prefix, sizeof prefix, POOL_PREFIX "%s_ENV_", up);
    size_t plen = strlen(prefix);
    for (const char *const *e = envp; e && *e; e++) {
        if (strncmp(*e, prefix, plen) != 0)
            continue;
        const char *name = *e + plen;
        const char *eq = strchr(name, '=');
        if (!eq || eq[1] == '\0')
            continue;
        size_t n = (size_t)(eq - name);
        if (!config_valid_env_name(name, n) || n >= CONFIG_ITEM_MAX) {
            config_add_error(errs,
                             "config: invalid variable name %.*s: %s<NAME> needs NAME made of "
                             "letters, digits and underscores",
                             (int)(n + plen < 120 ? n + plen : 120), *e, prefix);
            continue;
        }
        if ((n == 9 && strncmp(name, "WORKER_ID", 9) == 0) ||
            (n == 11 && strncmp(name, "WORKER_POOL", 11) == 0)) {
            config_add_error(errs,
                             "config: %s%.*s is not allowed: the orchestrator sets it for each "
                             "pod itself; remove the variable",
                             prefix, (int)n, name);
            continue;
        }
        if (strlen(eq + 1) >= CONFIG_STR_MAX) {
            config_add_error(errs, "config: value of %s%.*s is longer than %d characters", prefix,
                             (int)n, name, CONFIG_STR_MAX - 1);
            continue;
        }
        if (p->n_env >= CONFIG_POOL_ENV_MAX) {
            config_add_error(errs, "config: more than %d %s* variables", CONFIG_POOL_ENV_MAX,
                             prefix);
            return;
        }
        ConfigEnvPair *pair = &p->env[p->n_env++];
        memcpy(pair->name, name, n);
        pair->name[n] = '\0';
        snprintf(pair->value, sizeof pair->value, "%s", eq + 1);
    }
}

/* Whether var (the part before '=') is POOL_<NAME>_<SETTING> or POOL_<NAME>_ENV_<VAR> of a pool
 * in cfg->pools. Unknown POOL_* variables are reported: a typo in a pool name must not
 * silently leave the pool on the global settings. */
static bool names_a_known_pool(const Config *cfg, const char *var, size_t n)
{
    char up[CONFIG_POOL_NAME_MAX], want[128];
    for (size_t i = 0; i < cfg->n_pools; i++) {
        upper(cfg->pools[i].name, up, sizeof up);
        for (size_t k = 0; k < N_SETTINGS; k++) {
            int w = snprintf(want, sizeof want, POOL_PREFIX "%s_%s", up, SETTINGS[k].suffix);
            if (w > 0 && (size_t)w == n && strncmp(var, want, n) == 0)
                return true;
        }
        int w = snprintf(want, sizeof want, POOL_PREFIX "%s_ENV_", up);
        if (w > 0 && n > (size_t)w && strncmp(var, want, (size_t)w) == 0)
            return true;
    }
    return false;
}

static void check_unknown_pool_vars(const char *const *envp, const Config *cfg, ConfigErrors *errs)
{
    size_t plen = strlen(POOL_PREFIX);
    for (const char *const *e = envp; e && *e; e++) {
        if (strncmp(*e, POOL_PREFIX, plen) != 0)
            continue;
        const char *eq = strchr(*e, '=');
        size_t n = eq ? (size_t)(eq - *e) : strlen(*e);
        if (names_a_known_pool(cfg, *e, n))
            continue;
        config_add_error(errs,
                         "config: %.*s names no pool of POOLS%s or no pool setting: use "
                         "POOL_<NAME>_<SETTING>, NAME a pool in upper case, SETTING as listed "
                         "under POOLS in `orchestrator help config`",
                         (int)(n < 100 ? n : 100), *e,
                         cfg->pool_names.count ? "" : " (unset: the one pool is DEFAULT)");
    }
}

/* The relations between pools and with the fleet's limits. */
static void check_pools(const Config *cfg, ConfigErrors *errs)
{
    long long min_sum = 0;
    for (size_t i = 0; i < cfg->n_pools; i++) {
        const PoolConfig *p = &cfg->pools[i];
        char up[CONFIG_POOL_NAME_MAX];
        upper(p->name, up, sizeof up);
        bool inherited = p->min_active_gpus == cfg->min_active_gpus &&
                         p->max_active_gpus == cfg->max_active_gpus; /* reported globally */
        if (p->min_active_gpus > p->max_active_gpus && !inherited)
            config_add_error(errs,
                             "config: pool %s: its MIN_ACTIVE_GPUS (%d) is greater than its "
                             "MAX_ACTIVE_GPUS (%d): lower POOL_%s_MIN_ACTIVE_GPUS or raise "
                             "POOL_%s_MAX_ACTIVE_GPUS",
                             p->name, p->min_active_gpus, p->max_active_gpus, up, up);
        if (p->gpu_types.count == 0)
            config_add_error(errs, "config: pool %s has no GPU type: set POOL_%s_GPU_TYPES",
                             p->name, up);
        if (p->run_types.count == 0)
            config_add_error(errs, "config: pool %s serves no run_type: set POOL_%s_RUN_TYPES",
                             p->name, up);
        min_sum += p->min_active_gpus;
        /* Every variable must reach the pod: WORKER_ID, WORKER_POOL, WORKER_ENV_* and the pool's
         * own ENV_* (one of the same name replaces the global one). */
        size_t vars = 2 + cfg->n_worker_env + (cfg->gateway_public_url[0] ? 2 : 0);
        for (size_t e = 0; e < p->n_env; e++) {
            bool overrides = false;
            for (size_t w = 0; w < cfg->n_worker_env; w++)
                overrides = overrides || strcmp(cfg->worker_env[w].name, p->env[e].name) == 0;
            vars += overrides ? 0 : 1;
        }
        if (vars > POD_CREATE_MAX_ENV)
            config_add_error(errs,
                             "config: pool %s's pods would get %zu environment variables "
                             "(WORKER_ID, WORKER_POOL, the gateway's two, WORKER_ENV_* and "
                             "POOL_%s_ENV_*), more than "
                             "the %d a pod is created with: remove some",
                             p->name, vars, up, POD_CREATE_MAX_ENV);
        /* POOL_<A>_<SETTING> must name one pool: with pools `a` and `a_env_x`,
         * POOL_A_ENV_X_MAX_ACTIVE_GPUS would also read as pool a's ENV_X_MAX_ACTIVE_GPUS, and
         * pool a_env_x's variables (its secrets too) would reach pool a's pods. */
        for (size_t j = 0; j < cfg->n_pools; j++) {
            size_t n = strlen(cfg->pools[j].name);
            if (j != i && strncmp(p->name, cfg->pools[j].name, n) == 0 && p->name[n] == '_')
                config_add_error(errs,
                                 "config: pool names %s and %s collide in POOL_<NAME>_<SETTING> "
                                 "(POOL_%s_... could belong to either): rename one so that no "
                                 "name is another's name followed by _",
                                 cfg->pools[j].name, p->name, up);
        }
        for (size_t r = 0; r < p->run_types.count; r++) {
            const char *rt = p->run_types.items[r];
            for (size_t j = 0; j < i; j++) {
                const ConfigList *other = &cfg->pools[j].run_types;
                for (size_t q = 0; q < other->count; q++)
                    if (strcmp(other->items[q], rt) == 0)
                        config_add_error(errs,
                                         "config: run_type \"%s\" is served by two pools, %s and "
                                         "%s: a run_type belongs to one pool",
                                         rt, cfg->pools[j].name, p->name);
            }
        }
    }
    if (cfg->n_pools > 1 && min_sum > cfg->max_active_gpus)
        config_add_error(errs,
                         "config: the pools' MIN_ACTIVE_GPUS add up to %lld, above the fleet's "
                         "MAX_ACTIVE_GPUS (%d): lower a pool's minimum or raise MAX_ACTIVE_GPUS",
                         min_sum, cfg->max_active_gpus);
}

void config_parse_pools(const char *const *envp, Config *cfg, ConfigErrors *errs)
{
    cfg->n_pools = 0;
    if (cfg->pool_names.count == 0) {
        PoolConfig *p = &cfg->pools[cfg->n_pools++];
        snprintf(p->name, sizeof p->name, "%s", CONFIG_DEFAULT_POOL);
    }
    for (size_t i = 0; i < cfg->pool_names.count; i++) {
        const char *name = cfg->pool_names.items[i];
        if (!valid_pool_name(name)) {
            config_add_error(errs,
                             "config: invalid pool name \"%.40s\" in POOLS: expected lower-case "
                             "letters, digits and _ (at most %d characters)",
                             name, CONFIG_POOL_NAME_MAX - 1);
            continue;
        }
        bool dup = false;
        for (size_t j = 0; j < cfg->n_pools; j++)
            dup = dup || strcmp(cfg->pools[j].name, name) == 0;
        if (dup) {
            config_add_error(errs, "config: pool \"%s\" is named twice in POOLS", name);
            continue;
        }
        if (cfg->n_pools >= CONFIG_POOLS_MAX) {
            config_add_error(errs, "config: more than %d pools in POOLS", CONFIG_POOLS_MAX);
            break;
        }
        PoolConfig *p = &cfg->pools[cfg->n_pools++];
        snprintf(p->name, sizeof p->name, "%.31s", name);
    }
    for (size_t i = 0; i < cfg->n_pools; i++) {
        PoolConfig *p = &cfg->pools[i];
        inherit(cfg, p);
        parse_settings(envp, p, errs);
        parse_env(envp, p, errs);
    }
    check_unknown_pool_vars(envp, cfg, errs);
    check_pools(cfg, errs);
}

const PoolConfig *config_pool_for_run_type(const Config *cfg, const char *run_type)
{
    for (size_t i = 0; run_type && i < cfg->n_pools; i++)
        for (size_t r = 0; r < cfg->pools[i].run_types.count; r++)
            if (strcmp(cfg->pools[i].run_types.items[r], run_type) == 0)
                return &cfg->pools[i];
    return NULL;
}

const PoolConfig *config_pool_named(const Config *cfg, const char *name)
{
    for (size_t i = 0; name && i < cfg->n_pools; i++)
        if (strcmp(cfg->pools[i].name, name) == 0)
            return &cfg->pools[i];
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Display                                                                                     */

static cJSON *list_json(const ConfigList *l)
{
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && i < l->count; i++)
        cJSON_AddItemToArray(a, cJSON_CreateString(l->items[i]));
    return a;
}

cJSON *config_pools_json(const Config *cfg)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; arr && i < cfg->n_pools; i++) {
        const PoolConfig *p = &cfg->pools[i];
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        cJSON_AddStringToObject(o, "name", p->name);
        cJSON_AddItemToObject(o, "RUN_TYPES", list_json(&p->run_types));
        cJSON_AddItemToObject(o, "GPU_TYPES", list_json(&p->gpu_types));
        cJSON_AddStringToObject(o, "WORKER_IMAGE", p->worker_image);
        cJSON_AddStringToObject(o, "CLOUD_TYPE", p->cloud_type);
        cJSON_AddNumberToObject(o, "CONTAINER_DISK_GB", p->container_disk_gb);
        cJSON_AddNumberToObject(o, "MIN_ACTIVE_GPUS", p->min_active_gpus);
        cJSON_AddNumberToObject(o, "MAX_ACTIVE_GPUS", p->max_active_gpus);
        cJSON_AddNumberToObject(o, "TASKS_PER_GPU_THRESHOLD", p->tasks_per_gpu_threshold);
        cJSON_AddNumberToObject(o, "MACHINES_TO_KEEP_IDLE", p->machines_to_keep_idle);
        cJSON_AddNumberToObject(o, "GPU_IDLE_TIMEOUT_SEC", p->gpu_idle_timeout_sec);
        cJSON_AddNumberToObject(o, "WORKER_GRACE_PERIOD_SEC", p->worker_grace_period_sec);
        cJSON_AddNumberToObject(o, "SPAWNING_TIMEOUT_SEC", p->spawning_timeout_sec);
        cJSON_AddNumberToObject(o, "TASK_STUCK_TIMEOUT_SEC", p->task_stuck_timeout_sec);
        cJSON_AddNumberToObject(o, "MAX_HOURLY_SPEND_USD", p->max_hourly_spend_usd);
        cJSON_AddNumberToObject(o, "WARM_STOPPED_PODS", p->warm_stopped_pods);
        cJSON *env = cJSON_AddObjectToObject(o, "ENV");
        for (size_t e = 0; env && e < p->n_env; e++)
            cJSON_AddStringToObject(env, p->env[e].name, "***set***");
        cJSON_AddItemToArray(arr, o);
    }
    return arr;
}
