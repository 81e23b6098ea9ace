/* sim_trace.c -- traces for the policy lab: the seeded PRNG, parsing (CSV, JSON lines) and CSV
 * export (see sim_trace.h). The generators are sim_gen.c.
 *
 * Pure: no I/O, clock, environment or unseeded randomness. Must not: read files (the cli passes
 * their bytes), or draw from anything but the SimRng it is given.
 */
#include "sim_trace.h"

#include <cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* PRNG                                                                                        */

static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void sim_rng_seed(SimRng *r, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++)
        r->s[i] = splitmix64(&x);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sim_rng_next(SimRng *r)
{
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

double sim_rng_uniform(SimRng *r)
{
    /* 53 random bits, shifted half a step off 0: never 0, never 1. */
    return ((double)(sim_rng_next(r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

double sim_rng_exponential(SimRng *r, double mean)
{
    return -mean * log(sim_rng_uniform(r));
}

double sim_rng_lognormal(SimRng *r, double median, double sigma)
{
    /* Box-Muller: one normal draw from two uniforms. */
    double u1 = sim_rng_uniform(r), u2 = sim_rng_uniform(r);
    double z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
    return median * exp(sigma * z);
}

/* ------------------------------------------------------------------------------------------ */
/* Building                                                                                    */

void sim_trace_clear(SimTrace *t)
{
    if (!t)
        return;
    free(t->tasks);
    memset(t, 0, sizeof *t);
}

/* Index of name in names[0..*n), added when absent; -1 when the table is full. */
static int intern(char (*names)[SNAP_NAME_MAX], size_t *n, const char *name)
{
    for (size_t i = 0; i < *n; i++)
        if (strcmp(names[i], name) == 0)
            return (int)i;
    if (*n >= SIM_TYPES_MAX)
        return -1;
    snprintf(names[*n], SNAP_NAME_MAX, "%s", name);
    return (int)(*n)++;
}

Status sim_trace_add(SimTrace *t, long long arrival_ms, const char *run_type, const char *task_type,
                     long long duration_ms, SimOutcome outcome, int fault_attempts)
{
    if (arrival_ms < 0)
        return STATUS_ERR_PARSE; /* the simulator's clock starts at 0 */
    if (t->n >= SIM_TRACE_MAX)
        return STATUS_ERR_CAPACITY;
    int rt = intern(t->run_types, &t->n_run_types, run_type && run_type[0] ? run_type : "gpu");
    int tt =
        intern(t->task_types, &t->n_task_types, task_type && task_type[0] ? task_type : "task");
    if (rt < 0 || tt < 0)
        return STATUS_ERR_CAPACITY;
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 1024;
        SimTraceTask *p = realloc(t->tasks, cap * sizeof *p);
        if (!p)
            return STATUS_ERR_NOMEM;
        t->tasks = p;
        t->cap = cap;
    }
    SimTraceTask *k = &t->tasks[t->n++];
    memset(k, 0, sizeof *k); /* padding too: traces compare byte for byte */
    k->arrival_ms = arrival_ms;
    k->duration_ms = duration_ms > 0 ? duration_ms : 0;
    k->run_type = (unsigned short)rt;
    k->task_type = (unsigned short)tt;
    k->outcome = (unsigned char)outcome;
    k->fault_attempts = (unsigned char)(fault_attempts < 0     ? 0
                                        : fault_attempts > 255 ? 255
                                                               : fault_attempts);
    return STATUS_OK;
}

/* Stable merge sort by arrival (qsort is not stable; equal arrivals keep their file order). */
static void merge_sort(SimTraceTask *a, SimTraceTask *tmp, size_t n)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    merge_sort(a, tmp, h);
    merge_sort(a + h, tmp, n - h);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp[k++] = a[j].arrival_ms < a[i].arrival_ms ? a[j++] : a[i++];
    while (i < h)
        tmp[k++] = a[i++];
    while (j < n)
        tmp[k++] = a[j++];
    memcpy(a, tmp, n * sizeof *a);
}

void sim_trace_finish(SimTrace *t)
{
    bool sorted = true;
    for (size_t i = 1; i < t->n && sorted; i++)
        sorted = t->tasks[i - 1].arrival_ms <= t->tasks[i].arrival_ms;
    if (!sorted) {
        SimTraceTask *tmp = malloc(t->n * sizeof *tmp);
        if (tmp) {
            merge_sort(t->tasks, tmp, t->n);
            free(tmp);
        } else { /* no room for the merge buffer: insertion sort, slow but stable */
            for (size_t i = 1; i < t->n; i++) {
                SimTraceTask x = t->tasks[i];
                size_t j = i;
                for (; j > 0 && t->tasks[j - 1].arrival_ms > x.arrival_ms; j--)
                    t->tasks[j] = t->tasks[j - 1];
                t->tasks[j] = x;
            }
        }
    }
    if (t->n > 0 && t->end_ms < t->tasks[t->n - 1].arrival_ms)
        t->end_ms = t->tasks[t->n - 1].arrival_ms;
}

int sim_trace_run_type(const SimTrace *t, const char *name)
{
    for (size_t i = 0; i < t->n_run_types; i++)
        if (strcmp(t->run_types[i], name) == 0)
            return (int)i;
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* Parsing                                                                                     */

/* Days since 1970-01-01 of a civil date (H. Hinnant's days_from_civil). */
static long long days_from_civil(long long y, long long m, long long d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static bool digits(const char *s, int n, long long *out)
{
    long long v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* ISO 8601 / PostgreSQL timestamp -> milliseconds since the epoch: YYYY-MM-DD[T ]HH:MM:SS[.f]
 * followed by Z, +HH, +HH:MM, +HHMM (or '-'), or nothing (UTC). Returns 0 or -1. */
static int parse_timestamp(const char *s, long long *out_ms)
{
    long long y, mo, d, h, mi, sec;
    if (strlen(s) < 19 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
        s[7] != '-' || !digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != ' ') ||
        !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
        !digits(s + 17, 2, &sec))
        return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return -1;
    const char *p = s + 19;
    long long ms = 0;
    if (*p == '.') {
        long long scale = 100;
        for (p++; isdigit((unsigned char)*p); p++) {
            ms += (*p - '0') * scale;
            scale /= 10;
        }
    }
    long long offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        long long oh = 0, om = 0;
        p++;
        if (!digits(p, 2, &oh))
            return -1;
        p += 2;
        if (*p == ':')
            p++;
        if (isdigit((unsigned char)*p)) {
            if (!digits(p, 2, &om))
                return -1;
            p += 2;
        }
        offset_min = sign * (oh * 60 + om);
    }
    if (*p != '\0')
        return -1;
    long long days = days_from_civil(y, mo, d);
    *out_ms = ((days * 86400 + h * 3600 + mi * 60 + sec) - offset_min * 60) * 1000 + ms;
    return 0;
}

/* A number of seconds (finite, >= 0) -> milliseconds. Returns 0 or -1. */
static int parse_seconds(const char *s, long long *out_ms)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v) || v < 0 || v > 1e12)
        return -1;
    *out_ms = llround(v * 1000.0);
    return 0;
}

/* "ok", "fail", "crash", "fail:N", "crash:N" (N in 1..255). Returns 0 or -1. */
static int parse_outcome(const char *s, SimOutcome *out, int *attempts)
{
    *attempts = 0;
    if (!s[0] || strcmp(s, "ok") == 0 || strcmp(s, "complete") == 0) {
        *out = SIM_OUTCOME_OK;
        return 0;
    }
    size_t n = strcspn(s, ":");
    if (n == 4 && strncmp(s, "fail", 4) == 0)
        *out = SIM_OUTCOME_FAIL;
    else if (n == 5 && strncmp(s, "crash", 5) == 0)
        *out = SIM_OUTCOME_CRASH;
    else
        return -1;
    if (s[n] == ':') {
        char *end = NULL;
        long v = strtol(s + n + 1, &end, 10);
        if (end == s + n + 1 || *end != '\0' || v < 1 || v > 255)
            return -1;
        *attempts = (int)v;
    }
    return 0;
}

typedef struct {
    SimTrace t;
    int arrival_kind; /* 0 unknown, 1 seconds, 2 timestamps */
    size_t line;
    char *err;
} Parser;

/* Adds one row given its fields as strings (NULL = absent). */
static Status add_row(Parser *ps, const char *arrival, const char *run_type, const char *task_type,
                      const char *duration, const char *outcome)
{
    long long at, dur;
    int kind;
    if (!arrival || !arrival[0]) {
        snprintf(ps->err, SIM_ERROR_LEN, "line %zu: no arrival", ps->line);
        return STATUS_ERR_PARSE;
    }
    if (parse_seconds(arrival, &at) == 0) {
        kind = 1;
    } else if (parse_timestamp(arrival, &at) == 0) {
        kind = 2;
    } else {
        snprintf(ps->err, SIM_ERROR_LEN,
                 "line %zu: arrival \"%.40s\" is neither seconds (>= 0) nor an ISO 8601 "
                 "timestamp",
                 ps->line, arrival);
        return STATUS_ERR_PARSE;
    }
    if (ps->arrival_kind && ps->arrival_kind != kind) {
        snprintf(ps->err, SIM_ERROR_LEN,
                 "line %zu: arrivals mix seconds and timestamps; use one kind", ps->line);
        return STATUS_ERR_PARSE;
    }
    ps->arrival_kind = kind;
    if (!duration || parse_seconds(duration, &dur) != 0) {
        snprintf(ps->err, SIM_ERROR_LEN, "line %zu: duration \"%.40s\" is not seconds >= 0",
                 ps->line, duration ? duration : "");
        return STATUS_ERR_PARSE;
    }
    SimOutcome oc;
    int fa;
    if (parse_outcome(outcome ? outcome : "", &oc, &fa) != 0) {
        snprintf(ps->err, SIM_ERROR_LEN,
                 "line %zu: outcome \"%.40s\" is not ok, fail, crash, fail:N or crash:N", ps->line,
                 outcome);
        return STATUS_ERR_PARSE;
    }
    Status st = sim_trace_add(&ps->t, at, run_type, task_type, dur, oc, fa);
    if (st == STATUS_ERR_CAPACITY)
        snprintf(ps->err, SIM_ERROR_LEN,
                 "line %zu: more than %d tasks or %d distinct run/task types", ps->line,
                 SIM_TRACE_MAX, SIM_TYPES_MAX);
    else if (st == STATUS_ERR_PARSE)
        snprintf(ps->err, SIM_ERROR_LEN, "line %zu: arrival before 1970-01-01", ps->line);
    else if (st != STATUS_OK)
        snprintf(ps->err, SIM_ERROR_LEN, "out of memory");
    return st;
}

enum { COL_ARRIVAL, COL_RUN_TYPE, COL_TASK_TYPE, COL_DURATION, COL_OUTCOME, N_COLS };

static int column_of(const char *name)
{
    static const struct {
        const char *name;
        int col;
    } names[] = {{"arrival", COL_ARRIVAL},       {"arrival_sec", COL_ARRIVAL},
                 {"created_at", COL_ARRIVAL},    {"run_type", COL_RUN_TYPE},
                 {"task_type", COL_TASK_TYPE},   {"duration", COL_DURATION},
                 {"duration_sec", COL_DURATION}, {"outcome", COL_OUTCOME}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(names[i].name, name) == 0)
            return names[i].col;
    return -1;
}

#define CSV_FIELDS_MAX 16
#define CSV_FIELD_LEN 256

/* Splits one CSV line (RFC 4180 quotes, "" inside quotes) into at most CSV_FIELDS_MAX fields,
 * trimmed. Returns the number of fields, or -1 when a field is too long or a quote is open. */
static int csv_split(const char *s, size_t n, char f[CSV_FIELDS_MAX][CSV_FIELD_LEN])
{
    int nf = 0;
    size_t i = 0;
    while (nf < CSV_FIELDS_MAX) {
        size_t k = 0;
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i < n && s[i] == '"') {
            i++;
            for (;;) {
                if (i >= n)
                    return -1;
                if (s[i] == '"') {
                    if (i + 1 < n && s[i + 1] == '"') {
                        i++;
                    } else {
                        i++;
                        break;
                    }
                }
                if (k + 1 >= CSV_FIELD_LEN)
                    return -1;
                f[nf][k++] = s[i++];
            }
            while (i < n && s[i] != ',')
                i++;
        } else {
            while (i < n && s[i] != ',') {
                if (k + 1 >= CSV_FIELD_LEN)
                    return -1;
                f[nf][k++] = s[i++];
            }
            while (k > 0 && (f[nf][k - 1] == ' ' || f[nf][k - 1] == '\t'))
                k--;
        }
        f[nf++][k] = '\0';
        if (i >= n)
            break;
        i++; /* the comma */
    }
    return nf;
}

static Status parse_csv_line(Parser *ps, const char *s, size_t n, int *cols, bool *header)
{
    char f[CSV_FIELDS_MAX][CSV_FIELD_LEN];
    int nf = csv_split(s, n, f);
    if (nf < 0) {
        snprintf(ps->err, SIM_ERROR_LEN, "line %zu: unterminated quote or a field longer than %d",
                 ps->line, CSV_FIELD_LEN - 1);
        return STATUS_ERR_PARSE;
    }
    if (*header) {
        for (int c = 0; c < N_COLS; c++)
            cols[c] = -1;
        for (int i = 0; i < nf; i++) {
            int c = column_of(f[i]);
            if (c >= 0)
                cols[c] = i;
        }
        if (cols[COL_ARRIVAL] < 0 || cols[COL_DURATION] < 0) {
            snprintf(ps->err, SIM_ERROR_LEN,
                     "line %zu: the CSV header must name arrival and duration (also run_type, "
                     "task_type, outcome)",
                     ps->line);
            return STATUS_ERR_PARSE;
        }
        *header = false;
        return STATUS_OK;
    }
    const char *v[N_COLS];
    for (int c = 0; c < N_COLS; c++)
        v[c] = cols[c] >= 0 && cols[c] < nf ? f[cols[c]] : NULL;
    return add_row(ps, v[COL_ARRIVAL], v[COL_RUN_TYPE], v[COL_TASK_TYPE], v[COL_DURATION],
                   v[COL_OUTCOME]);
}

/* A JSON value as text: strings as they are, numbers printed; NULL when absent or another
 * type. */
static const char *json_text(const cJSON *o, const char *const *keys, char *buf, size_t cap)
{
    for (size_t i = 0; keys[i]; i++) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, keys[i]);
        if (cJSON_IsString(x))
            return x->valuestring;
        if (cJSON_IsNumber(x)) {
            snprintf(buf, cap, "%.17g", x->valuedouble);
            return buf;
        }
    }
    return NULL;
}

static Status parse_json_line(Parser *ps, const char *s, size_t n)
{
    cJSON *o = cJSON_ParseWithLength(s, n);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        snprintf(ps->err, SIM_ERROR_LEN, "line %zu: not a JSON object", ps->line);
        return STATUS_ERR_PARSE;
    }
    static const char *const k_arrival[] = {"arrival", "arrival_sec", "created_at", NULL};
    static const char *const k_run[] = {"run_type", NULL};
    static const char *const k_task[] = {"task_type", NULL};
    static const char *const k_dur[] = {"duration", "duration_sec", NULL};
    static const char *const k_out[] = {"outcome", NULL};
    char b1[64], b2[64], b3[64], b4[64], b5[64];
    Status st = add_row(ps, json_text(o, k_arrival, b1, sizeof b1),
                        json_text(o, k_run, b2, sizeof b2), json_text(o, k_task, b3, sizeof b3),
                        json_text(o, k_dur, b4, sizeof b4), json_text(o, k_out, b5, sizeof b5));
    cJSON_Delete(o);
    return st;
}

Status sim_trace_parse(const char *data, size_t len, SimTrace *out, char err[SIM_ERROR_LEN])
{
    Parser *ps = calloc(1, sizeof *ps);
    if (!ps) {
        snprintf(err, SIM_ERROR_LEN, "out of memory");
        return STATUS_ERR_NOMEM;
    }
    ps->err = err;
    err[0] = '\0';
    size_t i = 0;
    while (i < len && isspace((unsigned char)data[i]))
        i++;
    bool json = i < len && data[i] == '{';
    bool header = !json;
    int cols[N_COLS];
    Status st = STATUS_OK;
    for (size_t pos = 0; pos < len && st == STATUS_OK;) {
        const char *nl = memchr(data + pos, '\n', len - pos);
        size_t n = nl ? (size_t)(nl - (data + pos)) : len - pos;
        const char *line = data + pos;
        pos += n + (nl ? 1 : 0);
        ps->line++;
        while (n > 0 && (line[n - 1] == '\r' || isspace((unsigned char)line[n - 1])))
            n--;
        size_t lead = 0;
        while (lead < n && isspace((unsigned char)line[lead]))
            lead++;
        if (lead == n || line[lead] == '#')
            continue;
        st = json ? parse_json_line(ps, line + lead, n - lead)
                  : parse_csv_line(ps, line + lead, n - lead, cols, &header);
    }
    if (st == STATUS_OK && ps->t.n == 0) {
        snprintf(err, SIM_ERROR_LEN, "the trace has no task");
        st = STATUS_ERR_PARSE;
    }
    if (st != STATUS_OK) {
        sim_trace_clear(&ps->t);
        free(ps);
        return st;
    }
    sim_trace_finish(&ps->t);
    if (ps->arrival_kind == 2) { /* timestamps: the first arrival is the trace's 0 */
        long long t0 = ps->t.tasks[0].arrival_ms;
        for (size_t k = 0; k < ps->t.n; k++)
            ps->t.tasks[k].arrival_ms -= t0;
    }
    ps->t.end_ms = ps->t.tasks[ps->t.n - 1].arrival_ms;
    if (ps->t.end_ms > SIM_TRACE_SPAN_MAX_MS) {
        snprintf(err, SIM_ERROR_LEN,
                 "the arrivals span %.0f days; a trace may span at most %lld days (as --days)",
                 (double)ps->t.end_ms / 86400e3, SIM_TRACE_SPAN_MAX_MS / 86400000);
        sim_trace_clear(&ps->t);
        free(ps);
        return STATUS_ERR_PARSE;
    }
    *out = ps->t;
    free(ps);
    return STATUS_OK;
}

/* ------------------------------------------------------------------------------------------ */
/* Export                                                                                      */

char *sim_trace_to_csv(const SimTrace *t)
{
    size_t cap = 128 + t->n * 64;
    for (size_t i = 0; i < t->n_run_types; i++)
        cap += strlen(t->run_types[i]);
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    size_t len = (size_t)snprintf(buf, cap, "arrival,run_type,task_type,duration,outcome\n");
    for (size_t i = 0; i < t->n; i++) {
        const SimTraceTask *k = &t->tasks[i];
        const char *rt = t->run_types[k->run_type], *tt = t->task_types[k->task_type];
        size_t need = strlen(rt) + strlen(tt) + 80;
        if (len + need >= cap) {
            cap = cap * 2 + need;
            char *p = realloc(buf, cap);
            if (!p) {
                free(buf);
                return NULL;
            }
            buf = p;
        }
        const char *oc = k->outcome == SIM_OUTCOME_FAIL    ? "fail"
                         : k->outcome == SIM_OUTCOME_CRASH ? "crash"
                                                           : "ok";
        int w = snprintf(buf + len, cap - len, "%lld.%03lld,%s,%s,%lld.%03lld,%s",
                         k->arrival_ms / 1000, k->arrival_ms % 1000, rt, tt, k->duration_ms / 1000,
                         k->duration_ms % 1000, oc);
        len += (size_t)w;
        if (k->outcome != SIM_OUTCOME_OK && k->fault_attempts > 0)
            len += (size_t)snprintf(buf + len, cap - len, ":%d", k->fault_attempts);
        buf[len++] = '\n';
        buf[len] = '\0';
    }
    return buf;
}
