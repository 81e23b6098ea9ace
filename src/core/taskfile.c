/* taskfile.c -- pure parsing and validation of tasks to submit (see taskfile.h).
 * No I/O, no logging: errors are collected for the caller to print. */
#include "taskfile.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add_error(TaskfileErrors *errs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_error(TaskfileErrors *errs, const char *fmt, ...)
{
    if (errs->count < TASKFILE_ERRORS_MAX) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errs->messages[errs->count], TASKFILE_ERROR_LEN, fmt, ap);
        va_end(ap);
    }
    errs->count++;
}

bool taskfile_is_uuid(const char *s)
{
    static const int dash_at[] = {8, 13, 18, 23};
    if (!s || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        bool dash = i == dash_at[0] || i == dash_at[1] || i == dash_at[2] || i == dash_at[3];
        if (dash ? s[i] != '-' : !isxdigit((unsigned char)s[i]))
            return false;
    }
    return true;
}

int taskfile_parse_duration(const char *s, long long *seconds)
{
    if (!s || !*s)
        return -1;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0)
        return -1;
    long long mult = 1;
    if (*end == 's')
        end++;
    else if (*end == 'm')
        mult = 60, end++;
    else if (*end == 'h')
        mult = 3600, end++;
    else if (*end == 'd')
        mult = 86400, end++;
    if (*end != '\0' || v > 100LL * 365 * 86400 / mult)
        return -1;
    *seconds = v * mult;
    return 0;
}

static bool valid_run_type(const char *s)
{
    if (!*s || strlen(s) > 64)
        return false;
    for (const char *p = s; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_'))
            return false;
    return true;
}

Status taskfile_add(cJSON *tasks, const char *task_type, const char *params_json,
                    const char *run_type, const char *depends_on, int max_attempts,
                    const char *where, TaskfileErrors *errs)
{
    size_t before = errs->count;
    if (!task_type || !task_type[0])
        add_error(errs, "%s: task_type is missing", where);
    else if (strlen(task_type) > 200)
        add_error(errs, "%s: task_type is longer than 200 characters", where);

    cJSON *params = NULL;
    if (params_json && params_json[0]) {
        params = cJSON_Parse(params_json);
        if (!cJSON_IsObject(params)) {
            add_error(errs, "%s: params is not a JSON object: %.60s", where, params_json);
            cJSON_Delete(params);
            params = NULL;
        }
    } else {
        params = cJSON_CreateObject();
    }

    const char *rt = run_type && run_type[0] ? run_type : "gpu";
    if (!valid_run_type(rt))
        add_error(errs, "%s: run_type \"%.40s\" must be lower-case letters, digits and '_'", where,
                  rt);

    cJSON *deps = cJSON_CreateArray();
    if (depends_on && depends_on[0]) {
        const char *p = depends_on;
        while (*p) {
            const char *comma = strchr(p, ',');
            size_t n = comma ? (size_t)(comma - p) : strlen(p);
            char id[64];
            while (n && isspace((unsigned char)*p))
                p++, n--;
            while (n && isspace((unsigned char)p[n - 1]))
                n--;
            snprintf(id, sizeof id, "%.*s", (int)(n < 63 ? n : 63), p);
            if (!taskfile_is_uuid(id))
                add_error(errs, "%s: depends_on \"%s\" is not a task id (a UUID)", where, id);
            else if (deps)
                cJSON_AddItemToArray(deps, cJSON_CreateString(id));
            p += n;
            while (*p && *p != ',')
                p++;
            if (*p == ',')
                p++;
        }
    }
    if (max_attempts < 0 || max_attempts > 100)
        add_error(errs, "%s: max_attempts %d is outside [1, 100]", where, max_attempts);

    if (errs->count > before || !params || !deps) {
        cJSON_Delete(params);
        cJSON_Delete(deps);
        return errs->count > before ? STATUS_ERR_USAGE : STATUS_ERR_NOMEM;
    }
    cJSON *t = cJSON_CreateObject();
    if (!t) {
        cJSON_Delete(params);
        cJSON_Delete(deps);
        return STATUS_ERR_NOMEM;
    }
    cJSON_AddStringToObject(t, "task_type", task_type);
    cJSON_AddItemToObject(t, "params", params);
    cJSON_AddStringToObject(t, "run_type", rt);
    if (cJSON_GetArraySize(deps) > 0)
        cJSON_AddItemToObject(t, "dependant_on", deps);
    else
        cJSON_Delete(deps);
    if (max_attempts > 0)
        cJSON_AddNumberToObject(t, "max_attempts", max_attempts);
    cJSON_AddItemToArray(tasks, t);
    return STATUS_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* CSV (RFC 4180)                                                                              */

#define CSV_MAX_FIELDS 8

typedef struct {
    size_t n;
    char *fields[CSV_MAX_FIELDS];
} CsvRow;

static void csv_row_clear(CsvRow *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->fields[i]);
    r->n = 0;
}

/* Reads one record starting at *pos. Returns 1 with a row, 0 at the end, -1 on a malformed
 * record (message in err). */
static int csv_next(const char *d, size_t len, size_t *pos, CsvRow *row, char *err, size_t ecap)
{
    row->n = 0;
    if (*pos >= len)
        return 0;
    size_t cap = 256, flen = 0;
    char *field = malloc(cap);
    if (!field) {
        snprintf(err, ecap, "out of memory");
        return -1;
    }
    bool quoted = false, in_quotes = false;
    for (;;) {
        char c = *pos < len ? d[*pos] : '\0';
        bool at_end = *pos >= len;
        if (in_quotes) {
            if (at_end) {
                free(field);
                csv_row_clear(row);
                snprintf(err, ecap, "unterminated quoted field");
                return -1;
            }
            (*pos)++;
            if (c == '"') {
                if (*pos < len && d[*pos] == '"') {
                    (*pos)++;
                } else {
                    in_quotes = false;
                    continue;
                }
            }
        } else if (at_end || c == ',' || c == '\n' || c == '\r') {
            if (row->n >= CSV_MAX_FIELDS) {
                free(field);
                csv_row_clear(row);
                snprintf(err, ecap, "more than %d fields", CSV_MAX_FIELDS);
                return -1;
            }
            field[flen] = '\0';
            row->fields[row->n++] = field;
            if (!at_end)
                (*pos)++;
            if (at_end || c != ',') {
                if (c == '\r' && *pos < len && d[*pos] == '\n')
                    (*pos)++;
                return 1;
            }
            cap = 256;
            flen = 0;
            quoted = false;
            field = malloc(cap);
            if (!field) {
                csv_row_clear(row);
                snprintf(err, ecap, "out of memory");
                return -1;
            }
            continue;
        } else if (c == '"' && flen == 0 && !quoted) {
            quoted = in_quotes = true;
            (*pos)++;
            continue;
        } else {
            (*pos)++;
        }
        if (flen + 2 > cap) {
            char *bigger = realloc(field, cap * 2);
            if (!bigger) {
                free(field);
                csv_row_clear(row);
                snprintf(err, ecap, "out of memory");
                return -1;
            }
            field = bigger;
            cap *= 2;
        }
        field[flen++] = c;
    }
}

static Status parse_csv(const char *d, size_t len, cJSON *tasks, TaskfileErrors *errs)
{
    static const char *names[] = {"task_type", "params", "run_type", "depends_on", "max_attempts"};
    int col[5] = {-1, -1, -1, -1, -1};
    size_t pos = 0;
    CsvRow row = {0};
    char err[128];
    int r = csv_next(d, len, &pos, &row, err, sizeof err);
    if (r <= 0) {
        add_error(errs, "line 1: %s", r < 0 ? err : "the file is empty (a header row is needed)");
        return STATUS_ERR_USAGE;
    }
    for (size_t i = 0; i < row.n; i++) {
        bool known = false;
        for (int k = 0; k < 5; k++)
            if (strcmp(row.fields[i], names[k]) == 0) {
                col[k] = (int)i;
                known = true;
            }
        if (!known)
            add_error(errs,
                      "line 1: unknown column \"%.40s\" (expected task_type, params, "
                      "run_type, depends_on, max_attempts)",
                      row.fields[i]);
    }
    csv_row_clear(&row);
    if (col[0] < 0)
        add_error(errs, "line 1: the header has no task_type column");
    if (errs->count)
        return STATUS_ERR_USAGE;
    size_t line = 1;
    for (;;) {
        if (pos < len && (d[pos] == '\n' || d[pos] == '\r')) { /* blank line */
            pos += (d[pos] == '\r' && pos + 1 < len && d[pos + 1] == '\n') ? 2 : 1;
            line++;
            continue;
        }
        r = csv_next(d, len, &pos, &row, err, sizeof err);
        if (r == 0)
            break;
        line++;
        char where[32];
        snprintf(where, sizeof where, "line %zu", line);
        if (r < 0) {
            add_error(errs, "%s: %s", where, err);
            break;
        }
        const char *v[5] = {NULL, NULL, NULL, NULL, NULL};
        for (int k = 0; k < 5; k++)
            if (col[k] >= 0 && (size_t)col[k] < row.n)
                v[k] = row.fields[col[k]];
        int max_attempts = 0;
        if (v[4] && v[4][0]) {
            char *end = NULL;
            long m = strtol(v[4], &end, 10);
            max_attempts = (end && *end == '\0' && m >= 1 && m <= 100) ? (int)m : -1;
        }
        if (cJSON_GetArraySize(tasks) >= TASKFILE_MAX_TASKS) {
            add_error(errs, "%s: more than %d tasks in one file", where, TASKFILE_MAX_TASKS);
            csv_row_clear(&row);
            break;
        }
        taskfile_add(tasks, v[0], v[1], v[2], v[3], max_attempts, where, errs);
        csv_row_clear(&row);
    }
    return errs->count ? STATUS_ERR_USAGE : STATUS_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* JSON lines                                                                                  */

static Status parse_jsonl(const char *d, size_t len, cJSON *tasks, TaskfileErrors *errs)
{
    size_t pos = 0, line = 0;
    while (pos < len) {
        size_t start = pos;
        while (pos < len && d[pos] != '\n')
            pos++;
        size_t n = pos - start;
        pos++;
        line++;
        while (n && isspace((unsigned char)d[start]))
            start++, n--;
        if (n == 0 || d[start] == '#')
            continue;
        char where[32];
        snprintf(where, sizeof where, "line %zu", line);
        cJSON *o = cJSON_ParseWithLength(d + start, n);
        if (!cJSON_IsObject(o)) {
            add_error(errs, "%s: not a JSON object", where);
            cJSON_Delete(o);
            continue;
        }
        cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "task_type");
        cJSON *params = cJSON_GetObjectItemCaseSensitive(o, "params");
        cJSON *rt = cJSON_GetObjectItemCaseSensitive(o, "run_type");
        cJSON *deps = cJSON_GetObjectItemCaseSensitive(o, "depends_on");
        cJSON *maxa = cJSON_GetObjectItemCaseSensitive(o, "max_attempts");
        char *params_text = params ? cJSON_PrintUnformatted(params) : NULL;
        char deps_text[4096] = "";
        if (cJSON_IsString(deps)) {
            snprintf(deps_text, sizeof deps_text, "%s", deps->valuestring);
        } else if (cJSON_IsArray(deps)) {
            size_t dl = 0;
            for (cJSON *e = deps->child; e; e = e->next) {
                int w = snprintf(deps_text + dl, sizeof deps_text - dl, "%s%s", dl ? "," : "",
                                 cJSON_IsString(e) ? e->valuestring : "(not a string)");
                if (w < 0 || (size_t)w >= sizeof deps_text - dl)
                    break;
                dl += (size_t)w;
            }
        } else if (deps && !cJSON_IsNull(deps)) {
            add_error(errs, "%s: depends_on must be a string or an array of strings", where);
        }
        if (type && !cJSON_IsString(type))
            add_error(errs, "%s: task_type must be a string", where);
        if (rt && !cJSON_IsString(rt) && !cJSON_IsNull(rt))
            add_error(errs, "%s: run_type must be a string", where);
        int max_attempts = 0;
        if (maxa && !cJSON_IsNull(maxa))
            max_attempts = cJSON_IsNumber(maxa) && maxa->valuedouble >= 1 &&
                                   maxa->valuedouble <= 100 &&
                                   maxa->valuedouble == (double)(int)maxa->valuedouble
                               ? (int)maxa->valuedouble
                               : -1;
        if (cJSON_GetArraySize(tasks) >= TASKFILE_MAX_TASKS) {
            add_error(errs, "%s: more than %d tasks in one file", where, TASKFILE_MAX_TASKS);
            free(params_text);
            cJSON_Delete(o);
            break;
        }
        taskfile_add(tasks, cJSON_IsString(type) ? type->valuestring : NULL, params_text,
                     cJSON_IsString(rt) ? rt->valuestring : NULL, deps_text, max_attempts, where,
                     errs);
        free(params_text);
        cJSON_Delete(o);
    }
    return errs->count ? STATUS_ERR_USAGE : STATUS_OK;
}

Status taskfile_parse(const char *data, size_t len, TaskfileFormat format, cJSON **out,
                      TaskfileErrors *errs)
{
    memset(errs, 0, sizeof *errs);
    cJSON *tasks = cJSON_CreateArray();
    if (!tasks)
        return STATUS_ERR_NOMEM;
    Status st = format == TASKFILE_CSV ? parse_csv(data, len, tasks, errs)
                                       : parse_jsonl(data, len, tasks, errs);
    if (st == STATUS_OK && cJSON_GetArraySize(tasks) == 0) {
        add_error(errs, "the file holds no task");
        st = STATUS_ERR_USAGE;
    }
    if (st != STATUS_OK) {
        cJSON_Delete(tasks);
        return st;
    }
    *out = tasks;
    return STATUS_OK;
}
