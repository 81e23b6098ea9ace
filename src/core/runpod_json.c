/* runpod_json.c -- RunPod REST v2 JSON <-> structs (see runpod_json.h).
 *
 * Pure: cJSON only; no I/O, no logging, no clock. Never keeps pointers into a cJSON tree after
 * cJSON_Delete (STYLE B4): every string is copied into the caller's fixed-size buffers.
 */
#include "runpod_json.h"

#include <cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------- */
/* small helpers */

static void set_err(char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errcap, const char *fmt, ...)
{
    if (!err || errcap == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
}

/* Copies s into dst; returns false (dst set to the truncated copy) when it does not fit. */
static bool copy_str(char *dst, size_t cap, const char *s)
{
    int n = snprintf(dst, cap, "%s", s);
    return n >= 0 && (size_t)n < cap;
}

/* Parses body (not necessarily NUL-terminated) with the size cap. */
static cJSON *parse_body(const char *body, size_t len, char *err, size_t errcap)
{
    if (!body || len == 0) {
        set_err(err, errcap, "empty response body");
        return NULL;
    }
    if (len > RUNPOD_JSON_MAX_BODY) {
        set_err(err, errcap, "response body too large (%zu bytes, limit %u)", len,
                RUNPOD_JSON_MAX_BODY);
        return NULL;
    }
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(body, len, &end, 0);
    if (!root) {
        /* cJSON reports where it stopped; nesting beyond CJSON_NESTING_LIMIT also lands here. */
        size_t at = (end && end >= body && end <= body + len) ? (size_t)(end - body) : 0;
        set_err(err, errcap, "malformed JSON at byte %zu of %zu", at, len);
        return NULL;
    }
    /* Allow trailing whitespace only. */
    size_t used = end ? (size_t)(end - body) : len;
    for (size_t i = used; i < len; i++) {
        if (!isspace((unsigned char)body[i])) {
            set_err(err, errcap, "unexpected data after JSON at byte %zu", i);
            cJSON_Delete(root);
            return NULL;
        }
    }
    return root;
}

cJSON *runpod_json_parse_root(const char *body, size_t len, char *err, size_t errcap)
{
    return parse_body(body, len, err, errcap);
}

/* ---------------------------------------------------------------------------------------- */
/* statuses and timestamps */

static const char *const STATUS_NAMES[] = {
    [POD_STATUS_UNKNOWN] = "UNKNOWN",       [POD_STATUS_PROVISIONING] = "PROVISIONING",
    [POD_STATUS_STARTING] = "STARTING",     [POD_STATUS_RUNNING] = "RUNNING",
    [POD_STATUS_EXITED] = "EXITED",         [POD_STATUS_ERROR] = "ERROR",
    [POD_STATUS_TERMINATED] = "TERMINATED",
};

PodStatus pod_status_parse(const char *s)
{
    if (!s)
        return POD_STATUS_UNKNOWN;
    for (int i = POD_STATUS_PROVISIONING; i <= POD_STATUS_TERMINATED; i++)
        if (strcmp(s, STATUS_NAMES[i]) == 0)
            return (PodStatus)i;
    return POD_STATUS_UNKNOWN;
}

const char *pod_status_str(PodStatus s)
{
    if ((int)s < POD_STATUS_UNKNOWN || (int)s > POD_STATUS_TERMINATED)
        return "UNKNOWN";
    return STATUS_NAMES[s];
}

/* Reads exactly n digits at *p into *out and advances *p. */
static bool read_digits(const char **p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += n;
    *out = v;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static long long days_from_civil(long long y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

long long runpod_json_parse_time(const char *s)
{
    if (!s)
        return -1;
    const char *p = s;
    int y, mo, d, h, mi, sec;
    if (!read_digits(&p, 4, &y) || *p++ != '-' || !read_digits(&p, 2, &mo) || *p++ != '-' ||
        !read_digits(&p, 2, &d))
        return -1;
    if (*p != 'T' && *p != 't' && *p != ' ')
        return -1;
    p++;
    if (!read_digits(&p, 2, &h) || *p++ != ':' || !read_digits(&p, 2, &mi) || *p++ != ':' ||
        !read_digits(&p, 2, &sec))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p))
            p++;
    }
    long long offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        int oh, om;
        p++;
        if (!read_digits(&p, 2, &oh) || *p++ != ':' || !read_digits(&p, 2, &om) || oh > 23 ||
            om > 59)
            return -1;
        offset = sign * (oh * 3600LL + om * 60LL);
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    long long t = days_from_civil(y, mo, d) * 86400LL + h * 3600LL + mi * 60LL + sec - offset;
    return t < 0 ? -1 : t;
}

/* ---------------------------------------------------------------------------------------- */
/* Pod */

static bool fits_ll(double v)
{
    return isfinite(v) && v >= -9.2e18 && v <= 9.2e18;
}

/* A field that cannot be used. Strict parsing (a single pod) refuses the pod with the message;
 * lenient parsing (an entry of the account's pod list) keeps the pod with the field's default,
 * marks it partial and keeps the first message. */
static bool field_defect(Pod *p, bool lenient, char *err, size_t errcap, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static bool field_defect(Pod *p, bool lenient, char *err, size_t errcap, const char *fmt, ...)
{
    char msg[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!lenient) {
        set_err(err, errcap, "%s", msg);
        return false;
    }
    if (!p->partial)
        snprintf(p->defect, sizeof p->defect, "%s", msg);
    p->partial = true;
    return true;
}

/* Fills *out from one Pod object. where names the object in messages ("pod", "pods[3]").
 * id must be a non-empty string that fits; every other field is checked for type. With
 * lenient, a bad field is replaced by its default (name "", status UNKNOWN, cost 0 = unknown,
 * createdAt unknown, no runtime) and the pod is marked partial; without, it fails the pod. */
static Status pod_from_json(const cJSON *o, Pod *out, const char *where, bool lenient, char *err,
                            size_t errcap)
{
    Pod p;
    memset(&p, 0, sizeof p);
    p.created_at_epoch = -1;
    if (!cJSON_IsObject(o)) {
        set_err(err, errcap, "%s: expected a JSON object", where);
        return STATUS_ERR_PARSE;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(o, "name");
    const cJSON *status = cJSON_GetObjectItemCaseSensitive(o, "status");
    if (!cJSON_IsString(id) || !id->valuestring[0]) {
        set_err(err, errcap, "%s: \"id\" is %s, expected a non-empty string", where,
                id ? "not a non-empty string" : "missing");
        return STATUS_ERR_PARSE;
    }
    if (!copy_str(p.id, sizeof p.id, id->valuestring)) {
        set_err(err, errcap, "%s: \"id\" longer than %zu bytes", where, sizeof p.id - 1);
        return STATUS_ERR_PARSE;
    }
    if (!cJSON_IsString(name)) {
        if (!field_defect(&p, lenient, err, errcap, "%s (id %s): \"name\" is %s, expected a string",
                          where, p.id, name ? "of the wrong type" : "missing"))
            return STATUS_ERR_PARSE;
    } else if (!copy_str(p.name, sizeof p.name, name->valuestring)) {
        /* A truncated name could look like one of ours: keep none. */
        p.name[0] = '\0';
        if (!field_defect(&p, lenient, err, errcap, "%s (id %s): \"name\" longer than %zu bytes",
                          where, p.id, sizeof p.name - 1))
            return STATUS_ERR_PARSE;
    }
    if (!cJSON_IsString(status)) {
        if (!field_defect(&p, lenient, err, errcap,
                          "%s (id %s): \"status\" is %s, expected a string", where, p.id,
                          status ? "of the wrong type" : "missing"))
            return STATUS_ERR_PARSE;
    } else {
        p.status = pod_status_parse(status->valuestring);
    }

    const cJSON *cost = cJSON_GetObjectItemCaseSensitive(o, "cost");
    if (cost && !cJSON_IsNull(cost)) {
        if (!cJSON_IsNumber(cost) || !isfinite(cost->valuedouble) || cost->valuedouble < 0) {
            if (!field_defect(&p, lenient, err, errcap,
                              "%s (id %s): \"cost\" is not a non-negative number", where, p.id))
                return STATUS_ERR_PARSE;
        } else {
            p.cost_per_hr = cost->valuedouble;
        }
    }

    const cJSON *gpu = cJSON_GetObjectItemCaseSensitive(o, "gpu");
    if (gpu && !cJSON_IsNull(gpu)) {
        const cJSON *gid = cJSON_GetObjectItemCaseSensitive(gpu, "id");
        if (!cJSON_IsObject(gpu) || (gid && !cJSON_IsString(gid))) {
            if (!field_defect(&p, lenient, err, errcap,
                              "%s (id %s): \"gpu\" is not an object with a string id", where, p.id))
                return STATUS_ERR_PARSE;
        } else if (gid) {
            copy_str(p.gpu_id, sizeof p.gpu_id, gid->valuestring); /* truncation harmless */
        }
    }

    const cJSON *image = cJSON_GetObjectItemCaseSensitive(o, "image");
    if (image && !cJSON_IsNull(image)) {
        if (!cJSON_IsString(image)) {
            if (!field_defect(&p, lenient, err, errcap, "%s (id %s): \"image\" is not a string",
                              where, p.id))
                return STATUS_ERR_PARSE;
        } else {
            copy_str(p.image, sizeof p.image, image->valuestring); /* display only */
        }
    }

    const cJSON *created = cJSON_GetObjectItemCaseSensitive(o, "createdAt");
    if (created && !cJSON_IsNull(created)) {
        if (!cJSON_IsString(created)) {
            if (!field_defect(&p, lenient, err, errcap, "%s (id %s): \"createdAt\" is not a string",
                              where, p.id))
                return STATUS_ERR_PARSE;
        } else {
            copy_str(p.created_at, sizeof p.created_at, created->valuestring);
            /* An unparseable timestamp is not fatal: the age is unknown (-1), and the caller
             * ages the pod from when this system first saw it. */
            p.created_at_epoch = runpod_json_parse_time(created->valuestring);
        }
    }

    const cJSON *rt = cJSON_GetObjectItemCaseSensitive(o, "runtime");
    if (rt && !cJSON_IsNull(rt)) {
        const cJSON *up =
            cJSON_IsObject(rt) ? cJSON_GetObjectItemCaseSensitive(rt, "uptime") : NULL;
        if (!cJSON_IsObject(rt)) {
            if (!field_defect(&p, lenient, err, errcap,
                              "%s (id %s): \"runtime\" is neither an object nor null", where, p.id))
                return STATUS_ERR_PARSE;
        } else if (up && !cJSON_IsNull(up) &&
                   (!cJSON_IsNumber(up) || !fits_ll(up->valuedouble) || up->valuedouble < 0)) {
            if (!field_defect(&p, lenient, err, errcap,
                              "%s (id %s): \"runtime.uptime\" is not a non-negative number", where,
                              p.id))
                return STATUS_ERR_PARSE;
        } else {
            p.has_runtime = true;
            if (up && !cJSON_IsNull(up))
                p.uptime_sec = (long long)up->valuedouble;
        }
    }
    *out = p;
    return STATUS_OK;
}

Status runpod_json_parse_pod(const char *body, size_t len, Pod *out, char *err, size_t errcap)
{
    cJSON *root = parse_body(body, len, err, errcap);
    if (!root)
        return STATUS_ERR_PARSE;
    Status st = pod_from_json(root, out, "pod", false, err, errcap);
    cJSON_Delete(root);
    return st;
}

Status runpod_json_parse_list(const char *body, size_t len, PodList *out, char *err, size_t errcap)
{
    Status st = STATUS_ERR_PARSE;
    Pod *pods = NULL;
    PodList list;
    memset(&list, 0, sizeof list);
    cJSON *root = parse_body(body, len, err, errcap);
    if (!root)
        return STATUS_ERR_PARSE;
    const cJSON *arr = cJSON_IsObject(root) ? cJSON_GetObjectItemCaseSensitive(root, "pods") : NULL;
    if (!cJSON_IsArray(arr)) {
        set_err(err, errcap, "pod list: expected an object with a \"pods\" array");
        goto out;
    }
    int n = cJSON_GetArraySize(arr);
    if (n < 0 || (size_t)n > RUNPOD_JSON_MAX_PODS) {
        set_err(err, errcap, "pod list: %d pods, limit %u", n, RUNPOD_JSON_MAX_PODS);
        goto out;
    }
    if (n > 0) {
        pods = calloc((size_t)n, sizeof *pods);
        if (!pods) {
            set_err(err, errcap, "pod list: out of memory for %d pods", n);
            st = STATUS_ERR_NOMEM;
            goto out;
        }
    }
    /* The list is foreign data from a shared account: one bad entry never blinds the rest. An
     * entry without a usable id is skipped (nothing can be done with it); any other defect
     * keeps the pod with defaults, marked partial. */
    size_t i = 0, index = 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, arr)
    {
        char where[32], msg[PODLIST_PROBLEM_LEN];
        snprintf(where, sizeof where, "pods[%zu]", index++);
        if (pod_from_json(item, &pods[i], where, true, msg, sizeof msg) != STATUS_OK) {
            if (list.n_problems < PODLIST_PROBLEMS_MAX)
                snprintf(list.problems[list.n_problems++], PODLIST_PROBLEM_LEN, "skipped: %.180s",
                         msg);
            list.skipped++;
            continue;
        }
        if (pods[i].partial) {
            if (list.n_problems < PODLIST_PROBLEMS_MAX)
                snprintf(list.problems[list.n_problems++], PODLIST_PROBLEM_LEN, "%s",
                         pods[i].defect);
            list.partial++;
        }
        i++;
    }
    list.count = i;
    list.pods = pods;
    pods = NULL;
    *out = list;
    st = STATUS_OK;
out:
    free(pods);
    cJSON_Delete(root);
    return st;
}

void pod_list_clear(PodList *list)
{
    if (!list)
        return;
    free(list->pods);
    memset(list, 0, sizeof *list);
}

/* ---------------------------------------------------------------------------------------- */
/* problem+json */

Status runpod_json_parse_problem(const char *body, size_t len, char *title, size_t tcap,
                                 char *detail, size_t dcap)
{
    cJSON *root = parse_body(body, len, NULL, 0);
    if (!root)
        return STATUS_ERR_PARSE;
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return STATUS_ERR_PARSE;
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "title");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "detail");
    const cJSON *errs = cJSON_GetObjectItemCaseSensitive(root, "errors");
    if (title && tcap > 0)
        snprintf(title, tcap, "%s", cJSON_IsString(t) ? t->valuestring : "");
    if (detail && dcap > 0) {
        size_t used = 0;
        int n = snprintf(detail, dcap, "%s", cJSON_IsString(d) ? d->valuestring : "");
        used = n < 0 ? 0 : ((size_t)n >= dcap ? dcap - 1 : (size_t)n);
        if (cJSON_IsArray(errs) && cJSON_GetArraySize(errs) > 0) {
            const cJSON *e;
            bool first = true;
            cJSON_ArrayForEach(e, errs)
            {
                if (!cJSON_IsString(e) || used + 1 >= dcap)
                    continue;
                const char *sep = first ? (used > 0 ? " (" : "(") : "; ";
                n = snprintf(detail + used, dcap - used, "%s%s", sep, e->valuestring);
                used = n < 0 ? used : (used + (size_t)n >= dcap ? dcap - 1 : used + (size_t)n);
                first = false;
            }
            if (!first && used + 1 < dcap) {
                detail[used++] = ')';
                detail[used] = '\0';
            }
        }
    }
    cJSON_Delete(root);
    return STATUS_OK;
}

/* ---------------------------------------------------------------------------------------- */
/* create body */

Status runpod_json_build_create(const PodCreateSpec *spec, char **out_json)
{
    if (!spec || !out_json)
        return STATUS_ERR_INTERNAL;
    if (!spec->name[0] || !spec->image[0] || !spec->gpu_type[0])
        return STATUS_ERR_CONFIG;
    if (spec->cloud[0] && strcmp(spec->cloud, "SECURE") != 0 &&
        strcmp(spec->cloud, "COMMUNITY") != 0)
        return STATUS_ERR_CONFIG;
    if (spec->disk_gb < 0 || spec->n_ports > POD_CREATE_MAX_PORTS ||
        spec->n_data_center_ids > POD_CREATE_MAX_DCS || spec->n_env > POD_CREATE_MAX_ENV)
        return STATUS_ERR_CONFIG;

    Status st = STATUS_ERR_NOMEM;
    cJSON *root = cJSON_CreateObject();
    if (!root)
        return STATUS_ERR_NOMEM;
    cJSON *gpu = cJSON_AddObjectToObject(root, "gpu");
    if (!cJSON_AddStringToObject(root, "name", spec->name) ||
        !cJSON_AddStringToObject(root, "image", spec->image) || !gpu ||
        !cJSON_AddStringToObject(gpu, "id", spec->gpu_type) ||
        !cJSON_AddNumberToObject(gpu, "count", 1))
        goto out;
    if (spec->cloud[0] && !cJSON_AddStringToObject(root, "cloud", spec->cloud))
        goto out;
    if (spec->n_data_center_ids > 0) {
        cJSON *dcs = cJSON_AddArrayToObject(root, "dataCenterIds");
        if (!dcs)
            goto out;
        for (size_t i = 0; i < spec->n_data_center_ids; i++) {
            cJSON *s = cJSON_CreateString(spec->data_center_ids[i]);
            if (!s || !cJSON_AddItemToArray(dcs, s)) {
                cJSON_Delete(s);
                goto out;
            }
        }
    }
    if (spec->disk_gb > 0 && !cJSON_AddNumberToObject(root, "disk", spec->disk_gb))
        goto out;
    if (spec->n_ports > 0) {
        cJSON *ports = cJSON_AddArrayToObject(root, "ports");
        if (!ports)
            goto out;
        for (size_t i = 0; i < spec->n_ports; i++) {
            cJSON *s = cJSON_CreateString(spec->ports[i]);
            if (!s || !cJSON_AddItemToArray(ports, s)) {
                cJSON_Delete(s);
                goto out;
            }
        }
    }
    cJSON *env = cJSON_AddObjectToObject(root, "env");
    if (!env)
        goto out;
    for (size_t i = 0; i < spec->n_env; i++) {
        if (!spec->env[i].name[0]) {
            st = STATUS_ERR_CONFIG;
            goto out;
        }
        cJSON *v = cJSON_CreateString(spec->env[i].value);
        if (!v)
            goto out;
        if (cJSON_GetObjectItemCaseSensitive(env, spec->env[i].name)) {
            if (!cJSON_ReplaceItemInObjectCaseSensitive(env, spec->env[i].name, v)) {
                cJSON_Delete(v);
                goto out;
            }
        } else if (!cJSON_AddItemToObject(env, spec->env[i].name, v)) {
            cJSON_Delete(v);
            goto out;
        }
    }
    if (spec->network_volume_id[0]) {
        cJSON *mounts = cJSON_AddObjectToObject(root, "mounts");
        cJSON *net = mounts ? cJSON_AddArrayToObject(mounts, "network") : NULL;
        cJSON *m = net ? cJSON_CreateObject() : NULL;
        if (!m)
            goto out;
        if (!cJSON_AddItemToArray(net, m)) {
            cJSON_Delete(m);
            goto out;
        }
        const char *path = spec->volume_mount_path[0] ? spec->volume_mount_path : "/workspace";
        if (!cJSON_AddStringToObject(m, "volumeId", spec->network_volume_id) ||
            !cJSON_AddStringToObject(m, "path", path))
            goto out;
    }
    char *s = cJSON_PrintUnformatted(root);
    if (!s)
        goto out;
    *out_json = s;
    st = STATUS_OK;
out:
    cJSON_Delete(root);
    return st;
}

struct cJSON *runpod_json_parse_document(const char *body, size_t len, char *err, size_t errcap)
{
    return parse_body(body, len, err, errcap);
}
