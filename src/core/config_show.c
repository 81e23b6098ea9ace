/* config_show.c -- showing a Config: the redacted dump (`config`, `config --json`), the hash of
 * the effective non-secret settings (run.start, the journal) and the help text.
 *
 * Pure: builds strings; never prints a secret (they show as ***set*** or (unset), and the
 * password inside DATABASE_URL is masked).
 */
#include "config.h"

#include <cJSON.h>
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_table.h"

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

/* The effective settings of every pool as POOL_<NAME>_<SETTING>=value lines. */
static void dump_pools(const Config *cfg, char *s, size_t cap, size_t *len)
{
    cJSON *pools = config_pools_json(cfg);
    const cJSON *p;
    cJSON_ArrayForEach(p, pools)
    {
        char up[CONFIG_POOL_NAME_MAX];
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(p, "name");
        size_t i = 0;
        for (; name && name->valuestring[i] && i + 1 < sizeof up; i++)
            up[i] = (char)toupper((unsigned char)name->valuestring[i]);
        up[i] = '\0';
        const cJSON *f;
        cJSON_ArrayForEach(f, p)
        {
            if (strcmp(f->string, "name") == 0)
                continue;
            char val[1024] = "";
            if (cJSON_IsString(f)) {
                snprintf(val, sizeof val, "%s", f->valuestring);
            } else if (cJSON_IsNumber(f)) {
                snprintf(val, sizeof val, "%g", f->valuedouble);
            } else if (cJSON_IsArray(f)) {
                size_t n = 0;
                const cJSON *x;
                cJSON_ArrayForEach(x, f)
                {
                    int w = snprintf(val + n, sizeof val - n, "%s%s", n ? "," : "", x->valuestring);
                    if (w < 0 || (size_t)w >= sizeof val - n)
                        break;
                    n += (size_t)w;
                }
            } else if (cJSON_IsObject(f)) { /* ENV: one line per variable, values hidden */
                const cJSON *x;
                cJSON_ArrayForEach(x, f)
                {
                    int w =
                        snprintf(s + *len, cap - *len, "POOL_%s_ENV_%s=***set***\n", up, x->string);
                    if (w < 0 || (size_t)w >= cap - *len)
                        break;
                    *len += (size_t)w;
                }
                continue;
            }
            int w = snprintf(s + *len, cap - *len, "POOL_%s_%s=%s\n", up, f->string, val);
            if (w < 0 || (size_t)w >= cap - *len)
                break;
            *len += (size_t)w;
        }
    }
    cJSON_Delete(pools);
}

char *config_dump(const Config *cfg, bool json)
{
    if (json) {
        cJSON *root = cJSON_CreateObject();
        if (!root)
            return NULL;
        for (size_t i = 0; i < CONFIG_N_VARS; i++)
            cJSON_AddItemToObject(root, CONFIG_VARS[i].name, json_value(cfg, &CONFIG_VARS[i]));
        cJSON *we = cJSON_AddObjectToObject(root, "WORKER_ENV");
        for (size_t i = 0; we && i < cfg->n_worker_env; i++)
            cJSON_AddStringToObject(we, cfg->worker_env[i].name, "***set***");
        cJSON_AddItemToObject(root, "POOLS_EFFECTIVE", config_pools_json(cfg));
        char *s = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        return s;
    }
    size_t cap = 4096 + CONFIG_N_VARS * 256 + cfg->n_worker_env * 160 + cfg->n_pools * 8192;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t len = 0;
    s[0] = '\0';
    char val[CONFIG_URL_MAX];
    for (size_t i = 0; i < CONFIG_N_VARS; i++) {
        display_value(cfg, &CONFIG_VARS[i], val, sizeof val);
        int w = snprintf(s + len, cap - len, "%s=%s\n", CONFIG_VARS[i].name, val);
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
    dump_pools(cfg, s, cap, &len);
    return s;
}

void config_hash(const Config *cfg, char out[17])
{
    uint64_t h = 1469598103934665603ULL;
    char val[CONFIG_URL_MAX];
    for (size_t i = 0; i < CONFIG_N_VARS; i++) {
        if (CONFIG_VARS[i].secret)
            continue;
        display_value(cfg, &CONFIG_VARS[i], val, sizeof val);
        const char *parts[] = {CONFIG_VARS[i].name, "=", val, "\n"};
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
    /* The resolved pools (ENV values hidden, names kept), only when POOLS is set: a
     * configuration without pools hashes as it did before pools existed. */
    cJSON *pools = cfg->pool_names.count ? config_pools_json(cfg) : NULL;
    char *text = pools ? cJSON_PrintUnformatted(pools) : NULL;
    for (const unsigned char *p = (const unsigned char *)(text ? text : ""); *p; p++) {
        h ^= *p;
        h *= 1099511628211ULL;
    }
    free(text);
    cJSON_Delete(pools);
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

char *config_help(void)
{
    size_t cap = 512 + CONFIG_N_VARS * 320;
    char *s = malloc(cap);
    if (!s)
        return NULL;
    size_t len = 0;
    s[0] = '\0';
    for (size_t i = 0; i < CONFIG_N_VARS; i++) {
        const VarSpec *v = &CONFIG_VARS[i];
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
