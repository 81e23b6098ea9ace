/* config.c -- table-driven, strict parsing of the environment into a Config (SPEC section 3).
 *
 * Pure: reads only the envp array it is given; no getenv, no I/O, no logging, no globals that
 * change. Every problem is collected so an operator fixes them all in one round trip. The table
 * is config_table.c; the dump, hash and help are config_show.c.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_table.h"

#define WORKER_ENV_PREFIX "WORKER_ENV_"

/* ------------------------------------------------------------------------------------------ */

void config_add_error(ConfigErrors *errs, const char *fmt, ...)
{
    if (errs->count >= CONFIG_ERRORS_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errs->messages[errs->count], CONFIG_ERROR_LEN, fmt, ap);
    va_end(ap);
    errs->count++;
}

const char *config_env_lookup(const char *const *envp, const char *name)
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

int config_parse_value(const VarSpec *v, const char *s, void *base, ConfigErrors *errs)
{
    char *field = (char *)base + v->offset;
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
            config_add_error(
                errs, "config: invalid value \"%s\" for %s: expected integer in [%lld, %lld]",
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
            config_add_error(errs,
                             "config: invalid value \"%s\" for %s: expected number in [%g, %g]",
                             display, v->name, v->min, v->max);
            return -1;
        }
        *(double *)(void *)field = x;
        return 0;
    }
    case VT_BOOL: {
        bool b;
        if (parse_bool(s, &b) != 0) {
            config_add_error(
                errs,
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
        config_add_error(errs, "config: invalid value \"%s\" for %s: expected one of %s", display,
                         v->name, accepted);
        return -1;
    }
    case VT_URL:
        if (strncmp(s, "http://", 7) != 0 && strncmp(s, "https://", 8) != 0) {
            config_add_error(
                errs, "config: invalid value \"%s\" for %s: expected an http:// or https:// URL",
                display, v->name);
            return -1;
        }
        /* fall through */
    case VT_STRING: {
        size_t n = strlen(s);
        if ((double)n < v->min || (double)n > v->max || n >= v->size) {
            config_add_error(errs,
                             "config: invalid value \"%s\" for %s: expected %g to %g characters",
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
                config_add_error(errs,
                                 "config: invalid value \"%s\" for %s: an item is longer than %d "
                                 "characters",
                                 display, v->name, CONFIG_ITEM_MAX - 1);
                return -1;
            }
            trim_copy(p, n, item, sizeof item);
            if (item[0]) {
                if (list.count >= CONFIG_LIST_MAX || strlen(item) >= CONFIG_ITEM_MAX) {
                    config_add_error(errs,
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

bool config_valid_env_name(const char *s, size_t n)
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
        if (!config_valid_env_name(name, n) || n >= CONFIG_ITEM_MAX) {
            config_add_error(
                errs,
                "config: invalid variable name %.*s: WORKER_ENV_<NAME> needs NAME made of "
                "letters, digits and underscores",
                (int)(n + plen < 100 ? n + plen : 100), *e);
            continue;
        }
        if (n == 9 && strncmp(name, "WORKER_ID", 9) == 0) {
            config_add_error(errs,
                             "config: WORKER_ENV_WORKER_ID is not allowed: the orchestrator sets "
                             "WORKER_ID for each pod itself; remove the variable");
            continue;
        }
        if (strlen(eq + 1) >= CONFIG_STR_MAX) {
            config_add_error(errs, "config: value of WORKER_ENV_%.*s is longer than %d characters",
                             (int)n, name, CONFIG_STR_MAX - 1);
            continue;
        }
        if (cfg->n_worker_env >= CONFIG_WORKER_ENV_MAX) {
            config_add_error(errs, "config: more than %d WORKER_ENV_* variables",
                             CONFIG_WORKER_ENV_MAX);
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
        config_add_error(errs, "config: out of memory");
        return STATUS_ERR_NOMEM;
    }

    for (size_t i = 0; i < CONFIG_N_VARS; i++) {
        const VarSpec *v = &CONFIG_VARS[i];
        const char *s = config_env_lookup(envp, v->name);
        if (!s)
            s = v->def;
        if (s)
            config_parse_value(v, s, cfg, errs);
    }
    parse_worker_env(envp, cfg, errs);

    /* Derived values and relations between variables. */
    if (cfg->runpod_gpu_types.count == 0 && cfg->runpod_gpu_type[0]) {
        cfg->runpod_gpu_types.count = 1;
        memcpy(cfg->runpod_gpu_types.items[0], cfg->runpod_gpu_type,
               strlen(cfg->runpod_gpu_type) + 1);
    }
    if (cfg->min_active_gpus > cfg->max_active_gpus)
        config_add_error(
            errs,
            "config: MIN_ACTIVE_GPUS (%d) is greater than MAX_ACTIVE_GPUS (%d): lower the "
            "minimum or raise the maximum",
            cfg->min_active_gpus, cfg->max_active_gpus);
    if (cfg->capacity_backoff_base_sec > cfg->capacity_backoff_max_sec)
        config_add_error(errs,
                         "config: CAPACITY_BACKOFF_BASE_SEC (%d) is greater than "
                         "CAPACITY_BACKOFF_MAX_SEC (%d)",
                         cfg->capacity_backoff_base_sec, cfg->capacity_backoff_max_sec);
    if (strcmp(cfg->runpod_gpu_choice, "ordered") != 0 && cfg->runpod_catalog_ttl_sec == 0)
        config_add_error(errs,
                         "config: RUNPOD_GPU_CHOICE=%s needs RunPod's GPU catalog, but "
                         "RUNPOD_CATALOG_TTL_SEC is 0 (never read it): set it to a positive "
                         "number of seconds (e.g. 300) or use RUNPOD_GPU_CHOICE=ordered",
                         cfg->runpod_gpu_choice);
    if (cfg->worker_id_prefix[0] && !valid_prefix(cfg->worker_id_prefix))
        config_add_error(errs,
                         "config: invalid value \"%s\" for WORKER_ID_PREFIX: expected lower-case "
                         "letters, digits and '-' (it becomes part of RunPod pod names)",
                         cfg->worker_id_prefix);
    for (size_t i = 0; i < cfg->runpod_ports.count; i++) {
        const char *port = cfg->runpod_ports.items[i];
        char *end = NULL;
        long num = strtol(port, &end, 10);
        if (end == port || num < 1 || num > 65535 ||
            (strcmp(end, "/tcp") != 0 && strcmp(end, "/http") != 0))
            config_add_error(errs,
                             "config: invalid value \"%s\" in RUNPOD_PORTS: expected PORT/tcp or "
                             "PORT/http with PORT in [1, 65535], e.g. 22/tcp,8888/http",
                             port);
    }
    for (size_t i = 0; i < cfg->runpod_data_center_ids.count; i++)
        if (strlen(cfg->runpod_data_center_ids.items[i]) > 63)
            config_add_error(errs,
                             "config: a data center id in RUNPOD_DATA_CENTER_IDS is longer than 63 "
                             "characters");
    config_parse_pools(envp, cfg, errs);
    if (!cfg->orchestrator_instance_id[0])
        snprintf(cfg->orchestrator_instance_id, sizeof cfg->orchestrator_instance_id,
                 "orchestrator-%.100s", hostname && hostname[0] ? hostname : "unknown");

    /* The gateway (issue 13): pods get a token only when both halves are set. */
    if (cfg->gateway_public_url[0] && !cfg->gateway_jwt_secret[0])
        config_add_error(errs,
                         "config: GATEWAY_PUBLIC_URL is set but GATEWAY_JWT_SECRET is not: pods "
                         "cannot be given a token for the gateway; set both, or neither");
    bool gateway = (needs & CONFIG_NEED_GATEWAY) || cfg->gateway_port > 0;
    /* Checked here, not when the server starts (after the database and storage were opened,
     * or in `continuous` after the rest started): an address is an IP literal, since the
     * gateway binds exactly one address and a host name may resolve to several or none. */
    unsigned char ip[sizeof(struct in6_addr)];
    if (inet_pton(AF_INET, cfg->gateway_bind_address, ip) != 1 &&
        inet_pton(AF_INET6, cfg->gateway_bind_address, ip) != 1)
        config_add_error(errs,
                         "config: invalid value \"%s\" for GATEWAY_BIND_ADDRESS: expected an IPv4 "
                         "or IPv6 literal such as 0.0.0.0, 127.0.0.1 or :: (not a host name)",
                         cfg->gateway_bind_address);
    if (cfg->gateway_max_connections_per_ip > cfg->gateway_max_connections)
        config_add_error(errs,
                         "config: GATEWAY_MAX_CONNECTIONS_PER_IP (%d) is greater than "
                         "GATEWAY_MAX_CONNECTIONS (%d): lower it, or set it equal to turn the "
                         "per-address limit off",
                         cfg->gateway_max_connections_per_ip, cfg->gateway_max_connections);
    if (gateway && !cfg->gateway_database_url[0] && !cfg->database_url[0] &&
        !config_env_lookup(envp, "PGHOST") && !config_env_lookup(envp, "PGDATABASE") &&
        !config_env_lookup(envp, "PGSERVICE"))
        config_add_error(errs,
                         "config: the gateway needs a database: set GATEWAY_DATABASE_URL to a "
                         "login role granted only orchestrator_worker (or DATABASE_URL)");
    if (gateway && !cfg->gateway_jwt_secret[0])
        config_add_error(errs,
                         "config: GATEWAY_JWT_SECRET is not set: the gateway needs it to check "
                         "worker tokens; set it to a random string of 32 or more characters "
                         "(e.g. `openssl rand -hex 32`) and give the orchestrator the same value");
    if (gateway && strcmp(cfg->storage_backend, "s3") == 0) {
        const char *missing[4];
        size_t n = 0;
        if (!cfg->storage_s3_endpoint[0])
            missing[n++] = "STORAGE_S3_ENDPOINT";
        if (!cfg->storage_s3_bucket[0])
            missing[n++] = "STORAGE_S3_BUCKET";
        if (!cfg->storage_s3_access_key_id[0])
            missing[n++] = "STORAGE_S3_ACCESS_KEY_ID";
        if (!cfg->storage_s3_secret_access_key[0])
            missing[n++] = "STORAGE_S3_SECRET_ACCESS_KEY";
        for (size_t i = 0; i < n; i++)
            config_add_error(errs, "config: STORAGE_BACKEND=s3 needs %s: set it (see env.example)",
                             missing[i]);
    }

    if ((needs & CONFIG_NEED_DB) && !cfg->database_url[0] && !config_env_lookup(envp, "PGHOST") &&
        !config_env_lookup(envp, "PGDATABASE") && !config_env_lookup(envp, "PGSERVICE"))
        config_add_error(errs,
                         "config: DATABASE_URL is not set: set it to a libpq URI such as "
                         "postgresql://user:password@host:5432/dbname (or set PGHOST/PGDATABASE)");
    if ((needs & CONFIG_NEED_API) && !cfg->safe_mode && !cfg->runpod_api_key[0])
        config_add_error(errs,
                         "config: RUNPOD_API_KEY is not set: set it to your RunPod API key, or "
                         "set SAFE_MODE=true to plan without calling RunPod");

    Status st = STATUS_ERR_CONFIG;
    if (errs->count == 0) {
        *out = *cfg;
        st = STATUS_OK;
    }
    free(cfg);
    return st;
}

int config_gateway_per_ip_limit(const Config *cfg)
{
    if (cfg->gateway_max_connections_per_ip > 0)
        return cfg->gateway_max_connections_per_ip;
    int quarter = cfg->gateway_max_connections / 4;
    return quarter > 0 ? quarter : 1;
}
