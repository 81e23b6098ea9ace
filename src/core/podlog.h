/* podlog.h -- a failed worker's pod log: from RunPod's Server-Sent Events
 * (GET /v2/pods/{id}/logs; each event an `id:` line and a `data:` line holding
 * {"ts", "source", "line"}) to a bounded tail of plain lines, with secrets masked (issue 16
 * item 3).
 *
 * Pure module: cJSON only; no I/O, clock or logging. The text comes from a container we do not
 * control: every byte is treated as hostile (control characters replaced, lines bounded, a
 * partial first event -- the reader keeps only the newest bytes -- skipped).
 */
#ifndef ORCH_PODLOG_H
#define ORCH_PODLOG_H

#include <stdbool.h>
#include <stddef.h>

#define PODLOG_LINE_MAX 1024 /* one log line is cut at this many bytes */
#define PODLOG_PREFIX_MIN 8  /* a cut line never ends with this much of a secret */

typedef struct {
    size_t lines;     /* lines in out */
    size_t dropped;   /* older lines that did not fit in out */
    size_t malformed; /* data lines that were not such JSON, and a partial first line */
} PodlogStats;

/* Turns SSE text (len bytes, not necessarily NUL-terminated, possibly starting in the middle of
 * an event) into lines "<ts> <source>: <line>\n" written to out (cap bytes, NUL-terminated),
 * keeping the newest lines that fit (a line longer than cap is left out; one line is at most
 * PODLOG_LINE_MAX bytes plus its time and source). Each line is first scrubbed whole with
 * podlog_scrub() and the n secrets (secrets may be NULL), and only then cut, so a secret across
 * the cut is masked too; as a backstop, a cut line that ends with the first PODLOG_PREFIX_MIN
 * or more bytes of one of the secrets has that end masked as "***". Control characters other
 * than tab and invalid UTF-8 become '?'. Fills *stats (may be NULL). Cannot fail. */
void podlog_from_sse(const char *sse, size_t len, const char *const *secrets, size_t n, char *out,
                     size_t cap, PodlogStats *stats);

/* Copies in to out (cap bytes, NUL-terminated, truncated) with secrets masked as "***": every
 * occurrence of each of the n values in secrets (values shorter than 4 bytes are ignored, as
 * the logger does), the token after "Bearer ", a JSON Web Token (eyJ...x.y; the gateway's
 * WORKER_TOKEN), the password of a URI
 * (scheme://user:PASSWORD@host), and the value after "=" or ":" of a key that names a secret
 * (password, passwd, secret, token, credential, apikey, api_key, access_key, private_key, or a
 * name ending in _key or _pass; any case). Returns how many values were masked. Cannot fail. */
size_t podlog_scrub(const char *in, const char *const *secrets, size_t n, char *out, size_t cap);

#endif
