/* worker_token.h -- the credentials of the worker gateway: HS256 JSON Web Tokens (RFC 7519).
 *
 * Pure: no clock (the caller passes `now`), no I/O, no logging. The HMAC is OpenSSL libcrypto's
 * (HMAC-SHA256); signatures are compared with CRYPTO_memcmp, in constant time. Only HS256 is
 * accepted: a token whose header names any other algorithm ("none" included) is refused before
 * its signature is looked at.
 *
 * Two kinds, told apart by the "use" claim so neither can stand in for the other:
 *   worker token  {"sub": worker id, "use": "worker", "role": "orchestrator_worker", "iat"}
 *                 one per pod (the actuator mints it as WORKER_TOKEN); no expiry: it is worth
 *                 something exactly as long as the worker's row is live (the gateway checks).
 *   upload token  {"sub": worker id, "use": "upload", "task": task id, "path": object path,
 *                 "exp"} in a signed upload URL: one object of one task, until exp.
 * Tokens and the secret are secrets: never log them.
 */
#ifndef ORCH_WORKER_TOKEN_H
#define ORCH_WORKER_TOKEN_H

#include <stddef.h>

#include "status.h"

#define WORKER_TOKEN_MAX 2048      /* longest token accepted or minted, NUL included */
#define WORKER_TOKEN_SUB_MAX 128   /* longest worker id, NUL included */
#define WORKER_TOKEN_PATH_MAX 1024 /* longest object path in an upload token, NUL included */
#define WORKER_TOKEN_SECRET_MIN 32 /* shortest GATEWAY_JWT_SECRET accepted (256 bits) */

/* Why a token was refused (TOKEN_OK: it was not). */
typedef enum {
    TOKEN_OK = 0,
    TOKEN_MALFORMED,     /* not three base64url parts, bad JSON, too long */
    TOKEN_BAD_ALG,       /* header alg is not exactly "HS256" (e.g. "none") */
    TOKEN_BAD_SIGNATURE, /* signature does not match: tampered, or another secret */
    TOKEN_BAD_CLAIMS,    /* wrong "use", missing or oversized sub/task/path */
    TOKEN_EXPIRED,       /* exp is not after now */
} TokenError;

/* Stable name of a TokenError ("malformed", "bad_alg", ...). Cannot fail. */
const char *token_error_str(TokenError e);

/* Mints the worker token of worker_id (1..127 bytes), issued at iat (Unix seconds), signed with
 * secret. Writes the NUL-terminated token into out (cap bytes). Returns STATUS_OK;
 * STATUS_ERR_CONFIG when the secret is shorter than WORKER_TOKEN_SECRET_MIN or the worker id is
 * empty or too long; STATUS_ERR_CAPACITY when out is too small; STATUS_ERR_NOMEM. out is
 * written only on success. */
Status worker_token_mint(const char *secret, const char *worker_id, long long iat, char *out,
                         size_t cap);

/* Verifies a worker token against secret at time now (Unix seconds; an "exp", if present, must
 * be after it). On TOKEN_OK copies the worker id into sub (cap bytes, at most
 * WORKER_TOKEN_SUB_MAX); otherwise sub is untouched. Never reads past the token's NUL.
 * Cannot crash on any input. */
TokenError worker_token_verify(const char *secret, const char *token, long long now, char *sub,
                               size_t cap);

/* Mints an upload token for one object: worker_id, task_id, path (the object path within the
 * bucket), valid until exp. Same returns as worker_token_mint. */
Status upload_token_mint(const char *secret, const char *worker_id, const char *task_id,
                         const char *path, long long exp, char *out, size_t cap);

/* Verifies an upload token at now and that it was minted for exactly `path`. On TOKEN_OK copies
 * the worker id and task id out (each cap bytes, at most WORKER_TOKEN_SUB_MAX); otherwise
 * leaves them untouched. A path mismatch is TOKEN_BAD_CLAIMS. Cannot crash on any input. */
TokenError upload_token_verify(const char *secret, const char *token, const char *path,
                               long long now, char *worker_id, char *task_id, size_t cap);

/* base64url without padding (RFC 4648 section 5), as JWTs use. Encodes n bytes into out
 * (cap bytes, NUL-terminated). Returns the encoded length, or 0 when out is too small (then
 * out holds ""). Cannot fail otherwise. */
size_t token_b64url_encode(const unsigned char *in, size_t n, char *out, size_t cap);

/* Decodes n characters of unpadded base64url into out (cap bytes). Returns the decoded length,
 * or -1 for a character outside the alphabet, an impossible length (n % 4 == 1), non-zero
 * trailing bits, or too small an out. */
long token_b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap);

#endif
