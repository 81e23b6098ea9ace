/* worker_token.c -- HS256 JWTs for the worker gateway (see worker_token.h).
 *
 * Pure: no clock, I/O or logging. The cryptography is OpenSSL's (HMAC with EVP_sha256, compared
 * with CRYPTO_memcmp); this file only lays out and parses the three base64url parts. The
 * signature is checked before the payload is parsed, and the header's algorithm before that.
 */
#include "worker_token.h"

#include <cJSON.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SIG_LEN 32 /* HMAC-SHA256 */
/* {"alg":"HS256","typ":"JWT"} */
static const char HEADER_B64[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

const char *token_error_str(TokenError e)
{
    switch (e) {
    case TOKEN_OK:
        return "ok";
    case TOKEN_MALFORMED:
        return "malformed";
    case TOKEN_BAD_ALG:
        return "bad_alg";
    case TOKEN_BAD_SIGNATURE:
        return "bad_signature";
    case TOKEN_BAD_CLAIMS:
        return "bad_claims";
    case TOKEN_EXPIRED:
        return "expired";
    }
    return "unknown";
}

/* ------------------------------------------------------------------------------------------ */
/* base64url                                                                                   */

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t token_b64url_encode(const unsigned char *in, size_t n, char *out, size_t cap)
{
    size_t need = (n / 3) * 4 + (n % 3 ? n % 3 + 1 : 0);
    if (cap == 0)
        return 0;
    if (need + 1 > cap) {
        out[0] = '\0';
        return 0;
    }
    size_t j = 0;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        out[j++] = B64URL[(v >> 18) & 63];
        out[j++] = B64URL[(v >> 12) & 63];
        if (i + 1 < n)
            out[j++] = B64URL[(v >> 6) & 63];
        if (i + 2 < n)
            out[j++] = B64URL[v & 63];
    }
    out[j] = '\0';
    return j;
}

static int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long token_b64url_decode(const char *in, size_t n, unsigned char *out, size_t cap)
{
    if (n % 4 == 1)
        return -1;
    size_t need = (n / 4) * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (need > cap)
        return -1;
    size_t j = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_value(in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[j++] = (unsigned char)((acc >> bits) & 0xff);
        }
    }
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return -1; /* non-canonical: leftover bits must be zero */
    return (long)j;
}

/* ------------------------------------------------------------------------------------------ */
/* Signing                                                                                     */

static bool hmac_sha256(const char *secret, const char *data, size_t n, unsigned char md[SIG_LEN])
{
    unsigned int len = 0;
    size_t klen = strlen(secret);
    if (klen > (size_t)0x7fffffff)
        return false;
    return HMAC(EVP_sha256(), secret, (int)klen, (const unsigned char *)data, n, md, &len) &&
           len == SIG_LEN;
}

/* header.payload.signature for a payload object (consumed). */
static Status sign_payload(const char *secret, cJSON *payload, char *out, size_t cap)
{
    Status st = STATUS_ERR_NOMEM;
    char *json = payload ? cJSON_PrintUnformatted(payload) : NULL;
    cJSON_Delete(payload);
    char *buf = malloc(WORKER_TOKEN_MAX);
    if (!json || !buf)
        goto out;
    st = STATUS_ERR_CAPACITY;
    size_t len = strlen(HEADER_B64);
    memcpy(buf, HEADER_B64, len);
    buf[len++] = '.';
    size_t plen = token_b64url_encode((const unsigned char *)json, strlen(json), buf + len,
                                      WORKER_TOKEN_MAX - len);
    if (plen == 0)
        goto out;
    len += plen;
    unsigned char md[SIG_LEN];
    st = STATUS_ERR_INTERNAL;
    if (!hmac_sha256(secret, buf, len, md))
        goto out;
    st = STATUS_ERR_CAPACITY;
    if (len + 1 >= WORKER_TOKEN_MAX)
        goto out;
    buf[len++] = '.';
    size_t slen = token_b64url_encode(md, SIG_LEN, buf + len, WORKER_TOKEN_MAX - len);
    if (slen == 0)
        goto out;
    len += slen;
    if (len + 1 > cap)
        goto out;
    memcpy(out, buf, len + 1);
    st = STATUS_OK;
out:
    free(json);
    free(buf);
    return st;
}

static bool valid_id(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n < max;
}

Status worker_token_mint(const char *secret, const char *worker_id, long long iat, char *out,
                         size_t cap)
{
    if (!secret || strlen(secret) < WORKER_TOKEN_SECRET_MIN ||
        !valid_id(worker_id, WORKER_TOKEN_SUB_MAX))
        return STATUS_ERR_CONFIG;
    cJSON *p = cJSON_CreateObject();
    if (p && (!cJSON_AddStringToObject(p, "sub", worker_id) ||
              !cJSON_AddStringToObject(p, "use", "worker") ||
              !cJSON_AddStringToObject(p, "role", "orchestrator_worker") ||
              !cJSON_AddStringToObject(p, "iss", "orchestrator") ||
              !cJSON_AddNumberToObject(p, "iat", (double)iat))) {
        cJSON_Delete(p);
        return STATUS_ERR_NOMEM;
    }
    return sign_payload(secret, p, out, cap);
}

Status upload_token_mint(const char *secret, const char *worker_id, const char *task_id,
                         const char *path, long long exp, char *out, size_t cap)
{
    if (!secret || strlen(secret) < WORKER_TOKEN_SECRET_MIN ||
        !valid_id(worker_id, WORKER_TOKEN_SUB_MAX) || !valid_id(task_id, WORKER_TOKEN_SUB_MAX) ||
        !valid_id(path, WORKER_TOKEN_PATH_MAX))
        return STATUS_ERR_CONFIG;
    cJSON *p = cJSON_CreateObject();
    if (p && (!cJSON_AddStringToObject(p, "sub", worker_id) ||
              !cJSON_AddStringToObject(p, "use", "upload") ||
              !cJSON_AddStringToObject(p, "task", task_id) ||
              !cJSON_AddStringToObject(p, "path", path) ||
              !cJSON_AddNumberToObject(p, "exp", (double)exp))) {
        cJSON_Delete(p);
        return STATUS_ERR_NOMEM;
    }
    return sign_payload(secret, p, out, cap);
}

/* ------------------------------------------------------------------------------------------ */
/* Verification                                                                                */

/* Decodes one base64url part into a NUL-terminated JSON object, or NULL. */
static cJSON *decode_json_part(const char *s, size_t n)
{
    unsigned char buf[WORKER_TOKEN_MAX];
    long len = token_b64url_decode(s, n, buf, sizeof buf - 1);
    if (len <= 0)
        return NULL;
    buf[len] = '\0';
    if (memchr(buf, '\0', (size_t)len))
        return NULL; /* an embedded NUL would hide the rest from the parser */
    cJSON *j = cJSON_ParseWithLength((const char *)buf, (size_t)len);
    if (j && !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* Checks structure, algorithm and signature; on TOKEN_OK *payload owns the parsed claims. */
static TokenError verify_signed(const char *secret, const char *token, cJSON **payload)
{
    if (!secret || strlen(secret) < WORKER_TOKEN_SECRET_MIN || !token)
        return TOKEN_MALFORMED;
    size_t n = strnlen(token, WORKER_TOKEN_MAX);
    if (n == 0 || n >= WORKER_TOKEN_MAX)
        return TOKEN_MALFORMED;
    const char *dot1 = memchr(token, '.', n);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', n - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot1 || !dot2 || memchr(dot2 + 1, '.', n - (size_t)(dot2 + 1 - token)))
        return TOKEN_MALFORMED;

    cJSON *header = decode_json_part(token, (size_t)(dot1 - token));
    if (!header)
        return TOKEN_MALFORMED;
    const cJSON *alg = cJSON_GetObjectItemCaseSensitive(header, "alg");
    bool hs256 = cJSON_IsString(alg) && strcmp(alg->valuestring, "HS256") == 0;
    const cJSON *crit = cJSON_GetObjectItemCaseSensitive(header, "crit");
    cJSON_Delete(header);
    if (!hs256 || crit)
        return TOKEN_BAD_ALG;

    unsigned char sig[SIG_LEN + 4];
    long slen = token_b64url_decode(dot2 + 1, n - (size_t)(dot2 + 1 - token), sig, sizeof sig);
    unsigned char md[SIG_LEN];
    if (!hmac_sha256(secret, token, (size_t)(dot2 - token), md))
        return TOKEN_BAD_SIGNATURE;
    /* Constant time over the full digest; a wrong length compares a zeroed buffer. */
    unsigned char given[SIG_LEN];
    memset(given, 0, sizeof given);
    if (slen == SIG_LEN)
        memcpy(given, sig, SIG_LEN);
    if (CRYPTO_memcmp(md, given, SIG_LEN) != 0 || slen != SIG_LEN)
        return TOKEN_BAD_SIGNATURE;

    cJSON *claims = decode_json_part(dot1 + 1, (size_t)(dot2 - dot1 - 1));
    if (!claims)
        return TOKEN_MALFORMED;
    *payload = claims;
    return TOKEN_OK;
}

/* String claim name of claims, 1..max-1 bytes, or NULL. */
static const char *claim_str(const cJSON *claims, const char *name, size_t max)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(claims, name);
    if (!cJSON_IsString(v) || !valid_id(v->valuestring, max))
        return NULL;
    return v->valuestring;
}

/* exp, when present, must be a number after now; required says whether it must be present. */
static TokenError check_exp(const cJSON *claims, long long now, bool required)
{
    const cJSON *exp = cJSON_GetObjectItemCaseSensitive(claims, "exp");
    if (!exp)
        return required ? TOKEN_BAD_CLAIMS : TOKEN_OK;
    if (!cJSON_IsNumber(exp))
        return TOKEN_BAD_CLAIMS;
    return exp->valuedouble > (double)now ? TOKEN_OK : TOKEN_EXPIRED;
}

TokenError worker_token_verify(const char *secret, const char *token, long long now, char *sub,
                               size_t cap)
{
    cJSON *claims = NULL;
    TokenError e = verify_signed(secret, token, &claims);
    if (e != TOKEN_OK)
        return e;
    const char *use = claim_str(claims, "use", 16);
    const char *who = claim_str(claims, "sub", WORKER_TOKEN_SUB_MAX);
    e = TOKEN_BAD_CLAIMS;
    if (use && strcmp(use, "worker") == 0 && who && strlen(who) < cap)
        e = check_exp(claims, now, false);
    if (e == TOKEN_OK)
        memcpy(sub, who, strlen(who) + 1);
    cJSON_Delete(claims);
    return e;
}

TokenError upload_token_verify(const char *secret, const char *token, const char *path,
                               long long now, char *worker_id, char *task_id, size_t cap)
{
    cJSON *claims = NULL;
    TokenError e = verify_signed(secret, token, &claims);
    if (e != TOKEN_OK)
        return e;
    const char *use = claim_str(claims, "use", 16);
    const char *who = claim_str(claims, "sub", WORKER_TOKEN_SUB_MAX);
    const char *task = claim_str(claims, "task", WORKER_TOKEN_SUB_MAX);
    const char *p = claim_str(claims, "path", WORKER_TOKEN_PATH_MAX);
    e = TOKEN_BAD_CLAIMS;
    if (use && strcmp(use, "upload") == 0 && who && task && p && path && strcmp(p, path) == 0 &&
        strlen(who) < cap && strlen(task) < cap)
        e = check_exp(claims, now, true);
    if (e == TOKEN_OK) {
        memcpy(worker_id, who, strlen(who) + 1);
        memcpy(task_id, task, strlen(task) + 1);
    }
    cJSON_Delete(claims);
    return e;
}
