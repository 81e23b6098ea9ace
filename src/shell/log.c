/* log.c -- structured JSON-lines / text logger (see log.h).
 *
 * Shell module. Keeps a little process-wide state (level, format, source id, cycle, secrets):
 * logging is the one place where a global is the ordinary design, and nothing in the pure core
 * reads it.
 */
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_LINE_MAX 8192
#define LOG_FIELDS_MAX 6144
#define LOG_VALUE_MAX 2048
static struct {
    LogLevel min_level;
    LogFormat format;
    int fd;
    char source[128];
    long long cycle;
    char **secrets; /* grows: every WORKER_ENV_* and POOL_<NAME>_ENV_* value is one */
    size_t n_secrets, cap_secrets;
    LogSink sink;
    void *sink_ctx;
} g_log = {.min_level = LOG_INFO, .format = LOG_FORMAT_JSON, .fd = 2};

/* The sink must not recurse into the logger; the guard is per thread, since the RunPod create
 * threads log concurrently (a process-wide flag made other threads' lines skip the sink). */
static _Thread_local int t_in_sink;

void log_configure(LogLevel min_level, LogFormat format)
{
    g_log.min_level = min_level;
    g_log.format = format;
}

void log_set_fd(int fd)
{
    g_log.fd = fd;
}

void log_set_source(const char *source_id)
{
    snprintf(g_log.source, sizeof g_log.source, "%s", source_id ? source_id : "");
}

void log_set_cycle(long long cycle)
{
    g_log.cycle = cycle;
}

Status log_add_secret(const char *secret)
{
    if (!secret || strlen(secret) < 4)
        return STATUS_OK;
    for (size_t i = 0; i < g_log.n_secrets; i++)
        if (strcmp(g_log.secrets[i], secret) == 0)
            return STATUS_OK;
    if (g_log.n_secrets == g_log.cap_secrets) {
        size_t cap = g_log.cap_secrets ? g_log.cap_secrets * 2 : 16;
        char **grown = realloc(g_log.secrets, cap * sizeof *grown);
        if (!grown)
            return STATUS_ERR_NOMEM;
        g_log.secrets = grown;
        g_log.cap_secrets = cap;
    }
    char *copy = strdup(secret);
    if (!copy)
        return STATUS_ERR_NOMEM;
    g_log.secrets[g_log.n_secrets++] = copy;
    return STATUS_OK;
}

void log_clear_secrets(void)
{
    for (size_t i = 0; i < g_log.n_secrets; i++)
        free(g_log.secrets[i]);
    free(g_log.secrets);
    g_log.secrets = NULL;
    g_log.n_secrets = g_log.cap_secrets = 0;
}

void log_set_sink(LogSink sink, void *ctx)
{
    g_log.sink = sink;
    g_log.sink_ctx = ctx;
}

int log_enabled(LogLevel level)
{
    return level >= g_log.min_level;
}

int log_level_parse(const char *s, LogLevel *out)
{
    static const struct {
        const char *name;
        LogLevel level;
    } names[] = {{"DEBUG", LOG_DEBUG},
                 {"INFO", LOG_INFO},
                 {"WARN", LOG_WARN},
                 {"WARNING", LOG_WARN},
                 {"ERROR", LOG_ERROR}};
    if (!s)
        return -1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return -1;
}

const char *log_level_name(LogLevel level)
{
    switch (level) {
    case LOG_DEBUG:
        return "DEBUG";
    case LOG_INFO:
        return "INFO";
    case LOG_WARN:
        return "WARNING";
    case LOG_ERROR:
        return "ERROR";
    }
    return "INFO";
}

/* ------------------------------------------------------------------------------------------ */
/* Buffers                                                                                     */

static void buf_putn(char *buf, size_t cap, size_t *len, const char *s, size_t n)
{
    if (*len + 1 >= cap)
        return;
    size_t room = cap - 1 - *len;
    if (n > room)
        n = room;
    memcpy(buf + *len, s, n);
    *len += n;
    buf[*len] = '\0';
}

static void buf_puts(char *buf, size_t cap, size_t *len, const char *s)
{
    buf_putn(buf, cap, len, s, strlen(s));
}

void log_json_escape(char *buf, size_t cap, size_t *len, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    buf_puts(buf, cap, len, "\"");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char esc[8];
        switch (*p) {
        case '"':
            buf_puts(buf, cap, len, "\\\"");
            break;
        case '\\':
            buf_puts(buf, cap, len, "\\\\");
            break;
        case '\n':
            buf_puts(buf, cap, len, "\\n");
            break;
        case '\r':
            buf_puts(buf, cap, len, "\\r");
            break;
        case '\t':
            buf_puts(buf, cap, len, "\\t");
            break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                esc[0] = '\\';
                esc[1] = 'u';
                esc[2] = '0';
                esc[3] = '0';
                esc[4] = hex[*p >> 4];
                esc[5] = hex[*p & 0xf];
                esc[6] = '\0';
                buf_puts(buf, cap, len, esc);
            } else {
                buf_putn(buf, cap, len, (const char *)p, 1);
            }
        }
    }
    buf_puts(buf, cap, len, "\"");
}

static bool b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* Length of a JSON Web Token starting at s ("eyJ<b64url>.<b64url>.<b64url>"), or 0. The
 * gateway's worker and upload tokens are minted per pod, too many to register one by one, so
 * anything shaped like a token is scrubbed (issue 13). */
static size_t jwt_length(const char *s)
{
    if (strncmp(s, "eyJ", 3) != 0)
        return 0;
    size_t i = 0;
    for (int part = 0; part < 3; part++) {
        size_t start = i;
        while (b64url_char(s[i]))
            i++;
        if (i - start < 2)
            return 0;
        if (part < 2) {
            if (s[i] != '.')
                return 0;
            i++;
        }
    }
    return i;
}

/* Replaces every registered secret and every token-shaped string in s (into out) by "***". */
void log_scrub(const char *s, char *out, size_t cap)
{
    size_t len = 0;
    out[0] = '\0';
    while (*s) {
        size_t matched = jwt_length(s);
        for (size_t i = 0; i < g_log.n_secrets && !matched; i++) {
            size_t n = strlen(g_log.secrets[i]);
            if (strncmp(s, g_log.secrets[i], n) == 0) {
                matched = n;
                break;
            }
        }
        if (matched) {
            buf_puts(out, cap, &len, "***");
            s += matched;
        } else {
            buf_putn(out, cap, &len, s, 1);
            s++;
        }
    }
}

/* Text-format value: bare when it is a plain token, quoted and escaped otherwise. */
static void text_value(char *buf, size_t cap, size_t *len, const char *s)
{
    int plain = *s != '\0';
    for (const char *p = s; *p; p++)
        if (isspace((unsigned char)*p) || *p == '"' || *p == '=' || (unsigned char)*p < 0x20)
            plain = 0;
    if (plain)
        buf_puts(buf, cap, len, s);
    else
        log_json_escape(buf, cap, len, s);
}

/* ------------------------------------------------------------------------------------------ */
/* Field formatting                                                                            */

typedef enum { VAL_STRING, VAL_NUMBER, VAL_NULL } ValKind;

/* Formats one printf conversion spec (spec points at '%', n bytes long) consuming from ap.
 * Returns the kind of value written into val. */
static ValKind format_conversion(const char *spec, size_t n, va_list *ap, char *val, size_t cap)
{
    char f[32];
    if (n >= sizeof f)
        n = sizeof f - 1;
    memcpy(f, spec, n);
    f[n] = '\0';
    char conv = f[n - 1];
    int longs = 0, size_t_mod = 0, half = 0;
    for (size_t i = 1; i + 1 < n; i++) {
        if (f[i] == 'l')
            longs++;
        else if (f[i] == 'z')
            size_t_mod = 1;
        else if (f[i] == 'h')
            half++;
    }
    (void)half; /* short/char arguments are promoted to int */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    switch (conv) {
    case 's': {
        const char *s = va_arg(*ap, const char *);
        if (!s)
            return VAL_NULL;
        snprintf(val, cap, "%s", s);
        return VAL_STRING;
    }
    case 'c':
        snprintf(val, cap, "%c", (char)va_arg(*ap, int));
        return VAL_STRING;
    case 'd':
    case 'i':
        if (size_t_mod)
            snprintf(val, cap, "%zd", (ssize_t)va_arg(*ap, ssize_t));
        else if (longs >= 2)
            snprintf(val, cap, f, va_arg(*ap, long long));
        else if (longs == 1)
            snprintf(val, cap, f, va_arg(*ap, long));
        else
            snprintf(val, cap, f, va_arg(*ap, int));
        return VAL_NUMBER;
    case 'u':
    case 'x':
        if (size_t_mod)
            snprintf(val, cap, f, va_arg(*ap, size_t));
        else if (longs >= 2)
            snprintf(val, cap, f, va_arg(*ap, unsigned long long));
        else if (longs == 1)
            snprintf(val, cap, f, va_arg(*ap, unsigned long));
        else
            snprintf(val, cap, f, va_arg(*ap, unsigned int));
        return conv == 'x' ? VAL_STRING : VAL_NUMBER;
    case 'f':
    case 'g':
    case 'e': {
        double d = va_arg(*ap, double);
        if (d != d || d > 1e308 || d < -1e308) { /* NaN or inf is not JSON */
            snprintf(val, cap, "%s", d != d ? "NaN" : "Inf");
            return VAL_STRING;
        }
        snprintf(val, cap, f, d);
        return VAL_NUMBER;
    }
    default:
        snprintf(val, cap, "?");
        return VAL_STRING;
    }
#pragma GCC diagnostic pop
}

/* Length of the printf conversion spec starting at p ('%'), or 0 when it is not one. */
static size_t conversion_length(const char *p)
{
    size_t i = 1;
    while (p[i] && strchr("-+ #0123456789.", p[i]))
        i++;
    while (p[i] && strchr("hlzj", p[i]))
        i++;
    if (p[i] && strchr("sdiuxfgec", p[i]))
        return i + 1;
    return 0;
}

/* Appends one key/value to the JSON fields object and the text line. */
static void emit_field(char *json, size_t jcap, size_t *jlen, char *text, size_t tcap, size_t *tlen,
                       const char *key, size_t keylen, const char *val, ValKind kind)
{
    char k[64];
    if (keylen >= sizeof k)
        keylen = sizeof k - 1;
    memcpy(k, key, keylen);
    k[keylen] = '\0';

    buf_puts(json, jcap, jlen, ",");
    log_json_escape(json, jcap, jlen, k);
    buf_puts(json, jcap, jlen, ":");
    buf_puts(text, tcap, tlen, " ");
    buf_puts(text, tcap, tlen, k);
    buf_puts(text, tcap, tlen, "=");
    if (kind == VAL_NULL) {
        buf_puts(json, jcap, jlen, "null");
        buf_puts(text, tcap, tlen, "null");
    } else if (kind == VAL_NUMBER) {
        buf_puts(json, jcap, jlen, val);
        buf_puts(text, tcap, tlen, val);
    } else {
        char scrubbed[LOG_VALUE_MAX];
        log_scrub(val, scrubbed, sizeof scrubbed);
        log_json_escape(json, jcap, jlen, scrubbed);
        text_value(text, tcap, tlen, scrubbed);
    }
}

void log_write(LogLevel level, const char *file, int line, const char *event, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    int saved_errno = errno;

    /* Fields: JSON (",k":v...) and text (" k=v...") built side by side. */
    char json[LOG_FIELDS_MAX], text[LOG_FIELDS_MAX];
    size_t jlen = 0, tlen = 0;
    json[0] = text[0] = '\0';
    char message[LOG_VALUE_MAX] = "";

    va_list ap;
    va_start(ap, fmt);
    const char *p = fmt;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        const char *key = p;
        while (*p && *p != '=' && *p != ' ')
            p++;
        size_t keylen = (size_t)(p - key);
        if (*p != '=') { /* a bare word: malformed format, keep it visible */
            emit_field(json, sizeof json, &jlen, text, sizeof text, &tlen, "bad_field", 9, key,
                       VAL_STRING);
            continue;
        }
        p++;
        char val[LOG_VALUE_MAX];
        ValKind kind = VAL_STRING;
        size_t conv = (*p == '%') ? conversion_length(p) : 0;
        if (conv) {
            kind = format_conversion(p, conv, &ap, val, sizeof val);
            p += conv;
        } else if (*p == '"') {
            const char *start = ++p;
            while (*p && *p != '"')
                p++;
            size_t n = (size_t)(p - start);
            if (n >= sizeof val)
                n = sizeof val - 1;
            memcpy(val, start, n);
            val[n] = '\0';
            if (*p == '"')
                p++;
        } else {
            const char *start = p;
            while (*p && *p != ' ')
                p++;
            size_t n = (size_t)(p - start);
            if (n >= sizeof val)
                n = sizeof val - 1;
            memcpy(val, start, n);
            val[n] = '\0';
        }
        if (keylen == 3 && strncmp(key, "msg", 3) == 0 && kind == VAL_STRING)
            log_scrub(val, message, sizeof message);
        emit_field(json, sizeof json, &jlen, text, sizeof text, &tlen, key, keylen, val, kind);
    }
    va_end(ap);

    /* Timestamp, UTC with milliseconds. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char when[96];
    snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000L);

    const char *base = file ? strrchr(file, '/') : NULL;
    base = base ? base + 1 : (file ? file : "?");
    char caller[96];
    snprintf(caller, sizeof caller, "%s:%d", base, line);
    int with_caller = level != LOG_INFO;

    char out[LOG_LINE_MAX];
    size_t len = 0;
    out[0] = '\0';
    if (g_log.format == LOG_FORMAT_JSON) {
        buf_puts(out, sizeof out, &len, "{\"time\":\"");
        buf_puts(out, sizeof out, &len, when);
        buf_puts(out, sizeof out, &len, "\",\"severity\":\"");
        buf_puts(out, sizeof out, &len, log_level_name(level));
        buf_puts(out, sizeof out, &len, "\",\"event\":");
        log_json_escape(out, sizeof out, &len, event);
        if (g_log.source[0]) {
            buf_puts(out, sizeof out, &len, ",\"source\":");
            log_json_escape(out, sizeof out, &len, g_log.source);
        }
        if (g_log.cycle > 0) {
            char c[32];
            snprintf(c, sizeof c, ",\"cycle\":%lld", g_log.cycle);
            buf_puts(out, sizeof out, &len, c);
        }
        if (with_caller) {
            buf_puts(out, sizeof out, &len, ",\"caller\":");
            log_json_escape(out, sizeof out, &len, caller);
        }
        buf_puts(out, sizeof out, &len, json);
        if (len + 3 > sizeof out) /* keep the line valid JSON even when truncated */
            len = sizeof out - 3;
        out[len++] = '}';
        out[len++] = '\n';
        out[len] = '\0';
    } else {
        char head[256];
        snprintf(head, sizeof head, "%s %-7s %s", when, log_level_name(level), event);
        buf_puts(out, sizeof out, &len, head);
        buf_puts(out, sizeof out, &len, text);
        if (g_log.cycle > 0) {
            char c[32];
            snprintf(c, sizeof c, " cycle=%lld", g_log.cycle);
            buf_puts(out, sizeof out, &len, c);
        }
        if (with_caller) {
            buf_puts(out, sizeof out, &len, " caller=");
            buf_puts(out, sizeof out, &len, caller);
        }
        if (len + 2 > sizeof out)
            len = sizeof out - 2;
        out[len++] = '\n';
        out[len] = '\0';
    }

    for (size_t off = 0; off < len;) {
        ssize_t w = write(g_log.fd, out + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
        off += (size_t)w;
    }

    if (g_log.sink && !t_in_sink) {
        /* fields as a JSON object: json holds ",k:v,..." */
        char obj[LOG_FIELDS_MAX + 4];
        snprintf(obj, sizeof obj, "{%s}", jlen ? json + 1 : "");
        t_in_sink = 1;
        g_log.sink(g_log.sink_ctx, level, event, message[0] ? message : event, obj);
        t_in_sink = 0;
    }
    errno = saved_errno;
}
