/* ratelimit.c -- RunPod's RateLimit / RateLimit-Policy headers (see ratelimit.h).
 *
 * Pure: no I/O, clock or allocation. The parser follows RFC 8941 section 4.2 (lists, items,
 * parameters) strictly and fails the whole field on the first defect, so a hostile or garbled
 * header can neither crash it nor be half-read into a wrong figure.
 */
#include "ratelimit.h"

#include <string.h>

/* The largest integer RFC 8941 allows (15 digits). */
#define SF_INT_MAX 999999999999999LL

typedef struct {
    const char *s;
    size_t i, n;
} Cursor;

static bool at_end(const Cursor *c)
{
    return c->i >= c->n;
}

static char peek(const Cursor *c)
{
    return at_end(c) ? '\0' : c->s[c->i];
}

static void skip_sp(Cursor *c)
{
    while (peek(c) == ' ')
        c->i++;
}

static void skip_ows(Cursor *c)
{
    while (peek(c) == ' ' || peek(c) == '\t')
        c->i++;
}

static bool is_lcalpha(char ch)
{
    return ch >= 'a' && ch <= 'z';
}

static bool is_alpha(char ch)
{
    return is_lcalpha(ch) || (ch >= 'A' && ch <= 'Z');
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

/* RFC 7230 tchar, plus ':' and '/' (sf-token). */
static bool is_tchar(char ch)
{
    return is_alpha(ch) || is_digit(ch) || (ch != '\0' && strchr("!#$%&'*+-.^_`|~:/", ch));
}

/* An sf-string; copies at most cap - 1 bytes into out (cap 0: none). */
static bool parse_string(Cursor *c, char *out, size_t cap)
{
    size_t k = 0;
    if (peek(c) != '"')
        return false;
    c->i++;
    while (!at_end(c)) {
        char ch = c->s[c->i++];
        if (ch == '\\') {
            if (at_end(c))
                return false;
            ch = c->s[c->i++];
            if (ch != '"' && ch != '\\')
                return false;
        } else if (ch == '"') {
            if (cap)
                out[k] = '\0';
            return true;
        } else if ((unsigned char)ch < 0x20 || (unsigned char)ch > 0x7e) {
            return false;
        }
        if (cap && k + 1 < cap)
            out[k++] = ch;
    }
    return false; /* unterminated */
}

static bool parse_token(Cursor *c, char *out, size_t cap)
{
    size_t k = 0;
    char ch = peek(c);
    if (!is_alpha(ch) && ch != '*')
        return false;
    while (!at_end(c) && is_tchar(peek(c))) {
        if (cap && k + 1 < cap)
            out[k++] = c->s[c->i];
        c->i++;
    }
    if (cap)
        out[k] = '\0';
    return true;
}

/* An sf-integer or sf-decimal. *is_int tells which; an integer's value goes to *v. */
static bool parse_number(Cursor *c, long long *v, bool *is_int)
{
    bool neg = false;
    if (peek(c) == '-') {
        neg = true;
        c->i++;
    }
    if (!is_digit(peek(c)))
        return false;
    long long x = 0;
    int digits = 0, frac = 0;
    bool dot = false;
    while (!at_end(c)) {
        char ch = peek(c);
        if (is_digit(ch)) {
            if (dot) {
                if (++frac > 3)
                    return false;
            } else {
                if (++digits > 15)
                    return false;
                x = x * 10 + (ch - '0');
            }
        } else if (ch == '.' && !dot) {
            if (digits > 12)
                return false;
            dot = true;
        } else {
            break;
        }
        c->i++;
    }
    if (dot && frac == 0)
        return false;
    *is_int = !dot;
    *v = neg ? -x : x;
    return true;
}

/* Any bare item (string, token, number, boolean, byte sequence). A non-negative integer's value
 * goes to *v (else -2); a string or token's text to name (cap may be 0). */
static bool parse_bare_item(Cursor *c, long long *v, char *name, size_t cap)
{
    char ch = peek(c);
    *v = -2;
    if (cap)
        name[0] = '\0';
    if (ch == '"')
        return parse_string(c, name, cap);
    if (is_alpha(ch) || ch == '*')
        return parse_token(c, name, cap);
    if (ch == '-' || is_digit(ch)) {
        long long x;
        bool is_int;
        if (!parse_number(c, &x, &is_int))
            return false;
        if (is_int && x >= 0)
            *v = x;
        return true;
    }
    if (ch == '?') {
        c->i++;
        ch = peek(c);
        if (ch != '0' && ch != '1')
            return false;
        c->i++;
        return true;
    }
    if (ch == ':') { /* byte sequence: base64 up to the closing colon */
        c->i++;
        while (!at_end(c) && peek(c) != ':') {
            ch = peek(c);
            if (!is_alpha(ch) && !is_digit(ch) && ch != '+' && ch != '/' && ch != '=')
                return false;
            c->i++;
        }
        if (peek(c) != ':')
            return false;
        c->i++;
        return true;
    }
    return false;
}

/* The parameters of one member: r, t, q, w (non-negative integers) are picked; any other key
 * is checked for syntax and ignored. A listed key with another value is a defect. */
typedef struct {
    long long r, t, q, w;
} Params;

static bool parse_params(Cursor *c, Params *p)
{
    *p = (Params){-1, -1, -1, -1};
    while (peek(c) == ';') {
        c->i++;
        skip_sp(c);
        char key[16];
        size_t k = 0;
        char ch = peek(c);
        if (!is_lcalpha(ch) && ch != '*')
            return false;
        while (!at_end(c)) {
            ch = peek(c);
            if (!is_lcalpha(ch) && !is_digit(ch) && ch != '_' && ch != '-' && ch != '.' &&
                ch != '*')
                break;
            if (k + 1 < sizeof key)
                key[k++] = ch;
            else
                k = sizeof key; /* too long to be one of ours */
            c->i++;
        }
        key[k < sizeof key ? k : 0] = '\0';
        long long v = -2;
        if (peek(c) == '=') {
            c->i++;
            if (!parse_bare_item(c, &v, NULL, 0))
                return false;
        }
        long long *slot = strcmp(key, "r") == 0   ? &p->r
                          : strcmp(key, "t") == 0 ? &p->t
                          : strcmp(key, "q") == 0 ? &p->q
                          : strcmp(key, "w") == 0 ? &p->w
                                                  : NULL;
        if (slot) {
            if (v < 0 || v > SF_INT_MAX)
                return false; /* ours must be non-negative integers */
            *slot = v;
        }
    }
    return true;
}

typedef struct {
    size_t n;
    char names[RATE_WINDOWS_MAX][RATE_NAME_MAX];
    Params params[RATE_WINDOWS_MAX];
} Members;

/* Parses a structured-field list of `"name";key=value...` members. */
static bool parse_list(const char *s, Members *out)
{
    Cursor c = {s, 0, strlen(s)};
    out->n = 0;
    if (c.n >= RATE_RAW_MAX)
        return false;
    skip_sp(&c);
    if (at_end(&c))
        return false; /* empty: no member */
    for (;;) {
        if (out->n >= RATE_WINDOWS_MAX)
            return false;
        char name[RATE_NAME_MAX];
        long long v;
        if (peek(&c) == '(')
            return false; /* inner lists carry no window */
        char ch = peek(&c);
        if (ch != '"' && !is_alpha(ch) && ch != '*')
            return false; /* a window is named by a string or a token */
        if (!parse_bare_item(&c, &v, name, sizeof name))
            return false;
        if (!parse_params(&c, &out->params[out->n]))
            return false;
        memcpy(out->names[out->n], name, sizeof name);
        out->n++;
        skip_ows(&c);
        if (at_end(&c))
            break;
        if (peek(&c) != ',')
            return false;
        c.i++;
        skip_ows(&c);
        if (at_end(&c))
            return false; /* trailing comma */
    }
    /* trailing spaces were skipped by skip_ows */
    return true;
}

/* When a window seen with reset time t and length w (either -1: absent) is full again, in
 * seconds after the observation: t, but never later than the window's length nor
 * RATE_RESET_MAX_SEC (a bogus t must not hold the quota at 0 for days); without t, after its
 * length (as bounded), else after RATE_RESET_DEFAULT_SEC -- a window at 0 that never reset
 * would stop every call that could bring a fresher header. */
static long long reset_after(long long t, long long w)
{
    long long bound = w >= 0 && w < RATE_RESET_MAX_SEC ? w : RATE_RESET_MAX_SEC;
    if (t >= 0)
        return t < bound ? t : bound;
    return w >= 0 ? bound : RATE_RESET_DEFAULT_SEC;
}

Status ratelimit_parse(const char *ratelimit, const char *policy, RateQuota *out)
{
    memset(out, 0, sizeof *out);
    out->retry_after_sec = -1;
    Members lim, pol;
    bool have_pol = false;
    if (policy && policy[0]) {
        if (parse_list(policy, &pol)) {
            have_pol = true;
            for (size_t i = 0; i < pol.n; i++)
                if (pol.params[i].q < 0)
                    have_pol = false; /* a policy member without its quota */
        }
        out->policy_malformed = !have_pol;
    }
    if (!ratelimit || !ratelimit[0])
        return STATUS_ERR_NOT_FOUND;
    if (!parse_list(ratelimit, &lim)) {
        out->malformed = true;
        return STATUS_ERR_PARSE;
    }
    for (size_t i = 0; i < lim.n; i++)
        if (lim.params[i].r < 0) {
            out->malformed = true; /* a window without its remaining count */
            return STATUS_ERR_PARSE;
        }
    for (size_t i = 0; i < lim.n; i++) {
        RateWindow *w = &out->w[out->n++];
        memcpy(w->name, lim.names[i], sizeof w->name);
        w->remaining = lim.params[i].r;
        w->quota = -1;
        w->window_sec = -1;
        for (size_t k = 0; have_pol && k < pol.n; k++)
            if (strcmp(pol.names[k], w->name) == 0) {
                w->quota = pol.params[k].q;
                w->window_sec = pol.params[k].w;
            }
        w->reset_sec = reset_after(lim.params[i].t, w->window_sec);
    }
    out->known = true;
    return STATUS_OK;
}

/* Remaining count of window w at the quota's age; -1 unknown. */
static long long window_remaining(const RateQuota *q, const RateWindow *w)
{
    if (w->reset_sec >= 0 && q->age_sec >= (double)w->reset_sec)
        return w->quota; /* reset since: full again (or unknown without a policy) */
    return w->remaining;
}

long long ratelimit_remaining(const RateQuota *q)
{
    long long best = -1;
    if (q->retry_after_sec >= 0 && q->age_sec < q->retry_after_sec)
        return 0;
    for (size_t i = 0; q->known && i < q->n && i < RATE_WINDOWS_MAX; i++) {
        long long r = window_remaining(q, &q->w[i]);
        if (r >= 0 && (best < 0 || r < best))
            best = r;
    }
    return best;
}

double ratelimit_reset_in(const RateQuota *q)
{
    if (q->retry_after_sec >= 0 && q->age_sec < q->retry_after_sec)
        return q->retry_after_sec - q->age_sec;
    long long best = -1;
    double reset = -1;
    for (size_t i = 0; q->known && i < q->n && i < RATE_WINDOWS_MAX; i++) {
        const RateWindow *w = &q->w[i];
        long long r = window_remaining(q, w);
        if (r < 0 || w->reset_sec < 0 || q->age_sec >= (double)w->reset_sec)
            continue;
        double in = (double)w->reset_sec - q->age_sec;
        if (best < 0 || r < best || (r == best && in > reset)) {
            best = r;
            reset = in;
        }
    }
    return reset;
}

bool ratelimit_defer_list(const RateQuota *q)
{
    if (ratelimit_remaining(q) != 0)
        return false;
    if (q->retry_after_sec >= 0 && q->age_sec < q->retry_after_sec)
        return true; /* a 429's Retry-After (bounded by the client) */
    return q->age_sec < (double)RATE_LIST_DEFER_MAX_SEC;
}

long long ratelimit_create_allowance(const RateQuota *q, long long reserve, long long other_calls)
{
    long long rem = ratelimit_remaining(q);
    if (rem < 0)
        return -1;
    long long a = rem - (reserve > 0 ? reserve : 0) - (other_calls > 0 ? other_calls : 0);
    return a > 0 ? a : 0;
}

const RateWindow *ratelimit_window(const RateQuota *q, const char *name)
{
    for (size_t i = 0; q->known && i < q->n && i < RATE_WINDOWS_MAX; i++)
        if (strcmp(q->w[i].name, name) == 0)
            return &q->w[i];
    return NULL;
}
