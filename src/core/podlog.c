/* podlog.c -- a failed worker's pod log tail: SSE to plain lines, secrets masked (see
 * podlog.h).
 *
 * Pure: cJSON only; no I/O, clock, environment or logging. Allocates nothing.
 */
#include "podlog.h"

#include <cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ------------------------------------------------------------------------------------------ */
/* Sanitising                                                                                  */

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t want = s[0] < 0x80             ? 1
                  : (s[0] & 0xe0) == 0xc0 ? 2
                  : (s[0] & 0xf0) == 0xe0 ? 3
                  : (s[0] & 0xf8) == 0xf0 ? 4
                                          : 0;
    if (want == 0 || want > n || (want == 2 && s[0] < 0xc2) || (s[0] > 0xf4))
        return 0;
    for (size_t k = 1; k < want; k++)
        if ((s[k] & 0xc0) != 0x80)
            return 0;
    if (want == 3 && s[0] == 0xe0 && s[1] < 0xa0)
        return 0; /* overlong */
    if (want == 3 && s[0] == 0xed && s[1] >= 0xa0)
        return 0; /* a surrogate */
    if (want == 4 && ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90)))
        return 0;
    return want;
}

/* Appends s[0..n) to out at *len (cap bytes with the NUL), control characters (but tab) and
 * invalid UTF-8 replaced by '?', at most max bytes and never half a character. */
static void put_clean(char *out, size_t cap, size_t *len, const char *s, size_t n, size_t max)
{
    size_t put = 0;
    for (size_t i = 0; i < n;) {
        const unsigned char *u = (const unsigned char *)s + i;
        size_t k = utf8_len(u, n - i);
        char repl = '?';
        const char *src = &repl;
        size_t m = 1;
        if (k == 1 && (u[0] >= 0x20 || u[0] == '\t') && u[0] != 0x7f) {
            src = s + i;
        } else if (k > 1) {
            src = s + i;
            m = k;
        }
        if (put + m > max || *len + m + 1 > cap)
            return;
        memcpy(out + *len, src, m);
        *len += m;
        put += m;
        i += k ? k : 1;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* SSE                                                                                         */

/* The configured secrets the lines are scrubbed of. */
typedef struct {
    const char *const *v;
    size_t n;
} Secrets;

/* When the line buf[at..*len) was cut and ends with a prefix of at least PODLOG_PREFIX_MIN
 * bytes of a secret (one the scrub could not see whole), masks that prefix as "***": a
 * backstop, since the line is scrubbed before it is cut. */
static void mask_cut_prefix(char *buf, size_t at, size_t *len, const Secrets *sec)
{
    size_t best = 0;
    for (size_t s = 0; s < sec->n; s++) {
        size_t sl = sec->v[s] ? strlen(sec->v[s]) : 0;
        for (size_t k = sl < *len - at ? sl : *len - at; k >= PODLOG_PREFIX_MIN && k > best; k--)
            if (memcmp(buf + *len - k, sec->v[s], k) == 0) {
                best = k;
                break;
            }
    }
    if (best == 0)
        return;
    *len -= best;
    memcpy(buf + *len, "***", 3); /* best >= PODLOG_PREFIX_MIN > 3: it fits */
    *len += 3;
    buf[*len] = '\0';
}

/* Formats the event data line d[0..n) ("{"ts","source","line"}") into buf (cap); returns its
 * length, or 0 when it is not such an object (then *bad is set). The line is scrubbed of
 * secrets whole, before it is cut at PODLOG_LINE_MAX: a secret across the cut is still seen. */
static size_t format_event(const char *d, size_t n, const Secrets *sec, char *buf, size_t cap,
                           bool *bad)
{
    char scrubbed[PODLOG_LINE_MAX + 2]; /* one byte more than a line keeps: a cut shows */
    size_t len = 0;
    buf[0] = '\0';
    cJSON *o = cJSON_ParseWithLength(d, n);
    const cJSON *line = cJSON_GetObjectItemCaseSensitive(o, "line");
    if (!cJSON_IsObject(o) || !cJSON_IsString(line)) {
        cJSON_Delete(o);
        *bad = true;
        return 0;
    }
    const cJSON *ts = cJSON_GetObjectItemCaseSensitive(o, "ts");
    const cJSON *src = cJSON_GetObjectItemCaseSensitive(o, "source");
    if (cJSON_IsString(ts)) {
        put_clean(buf, cap, &len, ts->valuestring, strlen(ts->valuestring), 40);
        put_clean(buf, cap, &len, " ", 1, 1);
    }
    if (cJSON_IsString(src)) {
        put_clean(buf, cap, &len, src->valuestring, strlen(src->valuestring), 16);
        put_clean(buf, cap, &len, ": ", 2, 2);
    }
    podlog_scrub(line->valuestring, sec->v, sec->n, scrubbed, sizeof scrubbed);
    size_t whole = strlen(scrubbed), at = len;
    put_clean(buf, cap, &len, scrubbed, whole, PODLOG_LINE_MAX);
    if (len - at < whole)
        mask_cut_prefix(buf, at, &len, sec);
    if (len + 2 <= cap) {
        buf[len++] = '\n';
        buf[len] = '\0';
    }
    cJSON_Delete(o);
    return len;
}

/* Calls each data line of sse, formatted, in order: emit(line, n, ctx). Returns the number of
 * lines; *malformed counts data lines that were not events. */
static size_t each_event(const char *sse, size_t len, const Secrets *sec, size_t *malformed,
                         void (*emit)(const char *, size_t, void *), void *ctx)
{
    char buf[PODLOG_LINE_MAX + 128];
    size_t lines = 0;
    for (size_t i = 0; i < len;) {
        const char *nl = memchr(sse + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - sse) : len;
        size_t n = end - i;
        const char *l = sse + i;
        if (n > 0 && l[n - 1] == '\r')
            n--;
        if (n >= 5 && memcmp(l, "data:", 5) == 0) {
            size_t off = (n > 5 && l[5] == ' ') ? 6 : 5;
            bool bad = false;
            size_t m = format_event(l + off, n - off, sec, buf, sizeof buf, &bad);
            if (bad)
                (*malformed)++;
            else if (m > 0) {
                lines++;
                emit(buf, m, ctx);
            }
        }
        i = end + 1;
    }
    return lines;
}

/* The tail being built: lines appended at the end, the oldest dropped from the front when the
 * next one does not fit. */
typedef struct {
    char *out;
    size_t cap, len;
    size_t lines, dropped;
} Tail;

static void append_line(const char *line, size_t n, void *ctx)
{
    Tail *t = ctx;
    if (n + 1 > t->cap)
        return; /* a line longer than the whole tail is left out */
    while (t->len + n + 1 > t->cap && t->len > 0) {
        const char *nl = memchr(t->out, '\n', t->len);
        size_t cut = nl ? (size_t)(nl - t->out) + 1 : t->len;
        memmove(t->out, t->out + cut, t->len - cut);
        t->len -= cut;
        t->lines--;
        t->dropped++;
    }
    memcpy(t->out + t->len, line, n);
    t->len += n;
    t->out[t->len] = '\0';
    t->lines++;
}

void podlog_from_sse(const char *sse, size_t len, const char *const *secrets, size_t n, char *out,
                     size_t cap, PodlogStats *stats)
{
    PodlogStats st = {0};
    Secrets sec = {.v = secrets, .n = secrets ? n : 0};
    if (cap > 0)
        out[0] = '\0';
    Tail t = {.out = out, .cap = cap};
    if (sse && cap > 0)
        each_event(sse, len, &sec, &st.malformed, append_line, &t);
    st.lines = t.lines;
    st.dropped = t.dropped;
    if (stats)
        *stats = st;
}

/* ------------------------------------------------------------------------------------------ */
/* Secrets                                                                                     */

static void put(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
    for (size_t i = 0; i < n && *len + 1 < cap; i++)
        out[(*len)++] = s[i];
    out[*len] = '\0';
}

static bool ident_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '_' || ch == '-' || ch == '.';
}

/* Whether the key k[0..n) names a secret. */
static bool secret_key(const char *k, size_t n)
{
    static const char *const words[] = {"password", "passwd",     "secret",
                                        "token",    "credential", "apikey",
                                        "api_key",  "access_key", "private_key"};
    char low[64];
    if (n == 0 || n >= sizeof low)
        return false;
    for (size_t i = 0; i < n; i++)
        low[i] = (char)tolower((unsigned char)k[i]);
    low[n] = '\0';
    for (size_t w = 0; w < sizeof words / sizeof words[0]; w++)
        if (strstr(low, words[w]))
            return true;
    return (n > 4 && strcmp(low + n - 4, "_key") == 0) ||
           (n > 5 && strcmp(low + n - 5, "_pass") == 0);
}

/* Length of the JSON Web Token at s ("eyJ" then three base64url parts joined by dots), or 0. */
static size_t jwt_len(const char *s)
{
    if (strncmp(s, "eyJ", 3) != 0)
        return 0;
    size_t n = 0, dots = 0;
    for (; s[n]; n++) {
        if (s[n] == '.')
            dots++;
        else if (!isalnum((unsigned char)s[n]) && s[n] != '_' && s[n] != '-')
            break;
    }
    return dots == 2 && s[n - 1] != '.' ? n : 0;
}

/* Length of the value that starts at s (up to a quote, blank or separator). */
static size_t value_len(const char *s, char quote)
{
    size_t n = 0;
    while (s[n] &&
           (quote ? s[n] != quote : !isspace((unsigned char)s[n]) && !strchr("\"',;&}]", s[n])))
        n++;
    return n;
}

/* At in[i], a key naming a secret followed by = or :? Then *value is where its value starts,
 * *vlen its length. */
static bool key_value_at(const char *in, size_t i, size_t *value, size_t *vlen)
{
    if (i > 0 && ident_char(in[i - 1]))
        return false;
    size_t k = i;
    while (ident_char(in[k]))
        k++;
    if (!secret_key(in + i, k - i))
        return false;
    size_t j = k;
    if (in[j] == '"' || in[j] == '\'')
        j++;
    while (in[j] == ' ')
        j++;
    if (in[j] != '=' && in[j] != ':')
        return false;
    j++;
    while (in[j] == ' ')
        j++;
    char quote = (in[j] == '"' || in[j] == '\'') ? in[j] : 0;
    if (quote)
        j++;
    *value = j;
    *vlen = value_len(in + j, quote);
    return *vlen > 0;
}

size_t podlog_scrub(const char *in, const char *const *secrets, size_t n, char *out, size_t cap)
{
    size_t len = 0, masked = 0;
    if (cap == 0)
        return 0;
    out[0] = '\0';
    for (size_t i = 0; in && in[i] && len + 1 < cap;) {
        size_t hit = 0;
        for (size_t s = 0; s < n && !hit; s++) {
            size_t sl = secrets[s] ? strlen(secrets[s]) : 0;
            if (sl >= 4 && strncmp(in + i, secrets[s], sl) == 0)
                hit = sl;
        }
        if (hit) {
            put(out, cap, &len, "***", 3);
            i += hit;
            masked++;
            continue;
        }
        size_t v, vl;
        if (strncasecmp(in + i, "bearer ", 7) == 0 && (vl = value_len(in + i + 7, 0)) > 0) {
            put(out, cap, &len, in + i, 7);
            put(out, cap, &len, "***", 3);
            i += 7 + vl;
            masked++;
            continue;
        }
        if (strncmp(in + i, "://", 3) == 0) {
            size_t u = i + 3, colon = 0;
            while (in[u] && in[u] != '@' && in[u] != '/' && !isspace((unsigned char)in[u])) {
                if (in[u] == ':' && !colon)
                    colon = u;
                u++;
            }
            if (in[u] == '@' && colon) {
                put(out, cap, &len, in + i, colon + 1 - i);
                put(out, cap, &len, "***@", 4);
                i = u + 1;
                masked++;
                continue;
            }
        }
        if ((i == 0 || !ident_char(in[i - 1])) && (vl = jwt_len(in + i)) > 0) {
            put(out, cap, &len, "***", 3); /* a JSON Web Token (a gateway WORKER_TOKEN) */
            i += vl;
            masked++;
            continue;
        }
        if (key_value_at(in, i, &v, &vl)) {
            put(out, cap, &len, in + i, v - i);
            put(out, cap, &len, "***", 3);
            i = v + vl;
            masked++;
            continue;
        }
        put(out, cap, &len, in + i, 1);
        i++;
    }
    return masked;
}
