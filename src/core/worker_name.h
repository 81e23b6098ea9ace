/* worker_name.h -- the names of our workers: worker ids, which are also RunPod pod names.
 *
 * Pure: no clock, no randomness; the shell passes the time and the random bytes in. A name is
 * <prefix><UTC yyyymmdd_HHMMSS>-<8 lower-case hex> (SPEC section 3, WORKER_ID_PREFIX). Only a
 * pod whose whole name has this shape is ever treated as ours: a pod that merely starts with
 * the prefix belongs to somebody else sharing the account.
 */
#ifndef ORCH_WORKER_NAME_H
#define ORCH_WORKER_NAME_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the part after the prefix: 15 (timestamp) + 1 + 8 (hex). */
#define WORKER_NAME_SUFFIX_LEN 24

/* Writes <prefix><yyyymmdd_HHMMSS of epoch_sec, UTC>-<hex of rand4> into out (cap bytes).
 * Returns false (out set to "") when it does not fit or epoch_sec is outside years
 * 1970..9999. */
bool worker_name_format(const char *prefix, long long epoch_sec, const unsigned char rand4[4],
                        char *out, size_t cap);

/* True when name is exactly prefix followed by a well-formed suffix (8 digits, '_', 6 digits,
 * '-', 8 lower-case hex digits). An empty prefix matches nothing. Cannot fail. */
bool worker_name_matches(const char *prefix, const char *name);

#endif
