/* ratelimit.h -- RunPod's rate-limit headers and what they allow (issue 16 item 5).
 *
 * Pure module: no I/O, clock or allocation. RunPod REST v2 sends, on every authenticated
 * response, the IETF httpapi-ratelimit-headers draft's two fields (RFC 8941 structured-field
 * lists, one member per window):
 *
 *     RateLimit:        "minute";r=0;t=12, "hour";r=2800;t=1812, "day";r=49500;t=45012
 *     RateLimit-Policy: "minute";q=60;w=60, "hour";q=3000;w=3600, "day";q=50000;w=86400
 *
 * r = requests remaining in the window, t = seconds until it resets, q = the window's quota,
 * w = its length in seconds. The headers are foreign data: a field that does not parse as a
 * structured-field list of such members, a member without r, a negative or oversized number,
 * more than RATE_WINDOWS_MAX members -- any defect makes the whole field unknown (RFC 8941: a
 * field that fails to parse is ignored), never a guess. Unknown means "no proactive limit";
 * a 429 still stops the calls it answers.
 */
#ifndef ORCH_RATELIMIT_H
#define ORCH_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

#define RATE_WINDOWS_MAX 8
#define RATE_NAME_MAX 24
#define RATE_RAW_MAX 512           /* longest header value kept (and persisted); longer = unknown */
#define RATE_RESET_MAX_SEC 3600    /* a window's t is believed up to this (and up to its w) */
#define RATE_RESET_DEFAULT_SEC 60  /* a window without t nor w resets after this */
#define RATE_LIST_DEFER_MAX_SEC 60 /* a "0 left" seen this long ago no longer holds a list */

typedef struct {
    char name[RATE_NAME_MAX]; /* "minute", ... as RunPod names it (any printable text) */
    long long remaining;      /* r; -1 unknown */
    long long reset_sec;      /* seconds after the observation until it is full again: t, at
                                 most min(w, RATE_RESET_MAX_SEC); without t, that bound (w
                                 known) or RATE_RESET_DEFAULT_SEC (ratelimit_parse); -1 unknown */
    long long quota;          /* q from RateLimit-Policy; -1 unknown */
    long long window_sec;     /* w from RateLimit-Policy; -1 unknown */
} RateWindow;

/* What was last seen, and how long ago. */
typedef struct {
    bool known;            /* a RateLimit field was seen and parsed (n >= 1) */
    bool malformed;        /* the last RateLimit field seen could not be parsed: ignored */
    bool policy_malformed; /* the same for RateLimit-Policy */
    double age_sec;        /* since the observation (the reader sets it); >= 0 */
    size_t n;
    RateWindow w[RATE_WINDOWS_MAX];
    double retry_after_sec; /* a 429's Retry-After, seconds after the observation; -1 none */
} RateQuota;

/* Parses the two header values (either may be NULL or empty: absent) into *out, which is fully
 * overwritten (age 0, no Retry-After). out->known is true when ratelimit parsed; a defective
 * field sets out->malformed / out->policy_malformed and contributes nothing. Policy members are
 * matched to RateLimit members by name. Returns STATUS_OK when ratelimit parsed, STATUS_ERR_PARSE
 * when it was present but defective, STATUS_ERR_NOT_FOUND when it was absent. Cannot crash on
 * any input. */
Status ratelimit_parse(const char *ratelimit, const char *policy, RateQuota *out);

/* Whether a cycle's pod list waits for the quota: ratelimit_remaining(q) is 0 because of a
 * Retry-After that has not passed, or of a window at 0 seen less than RATE_LIST_DEFER_MAX_SEC
 * ago. An older "0 left" (persisted by an earlier run, say) does not hold the list back: the
 * list is one call, and its answer brings fresh headers -- without it, a quota read as spent
 * would never be read again. Cannot fail. */
bool ratelimit_defer_list(const RateQuota *q);

/* Requests that may still be made now: the smallest remaining count over the windows, where a
 * window whose reset time has passed (age_sec >= reset_sec) is full again (its quota, or
 * unknown without a policy), and 0 while a Retry-After has not passed. -1 when unknown (no
 * header seen, all windows unknown). Cannot fail. */
long long ratelimit_remaining(const RateQuota *q);

/* Seconds until the window that holds the remaining count down resets (or the Retry-After
 * ends), from now; -1 when unknown. Cannot fail. */
double ratelimit_reset_in(const RateQuota *q);

/* How many pod creates the remaining quota allows once `reserve` calls are kept back (for pod
 * lists and terminations of this and the next cycles) and `other_calls` calls this cycle still
 * has to make: max(0, remaining - reserve - other_calls). -1 when the quota is unknown (no
 * limit). Cannot fail. */
long long ratelimit_create_allowance(const RateQuota *q, long long reserve, long long other_calls);

/* The window of q named name, or NULL. Cannot fail. */
const RateWindow *ratelimit_window(const RateQuota *q, const char *name);

#endif
