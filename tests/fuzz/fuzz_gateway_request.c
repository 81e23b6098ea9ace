/* fuzz_gateway_request.c -- libFuzzer harness: nothing a worker sends may crash the gateway's
 * request parsing (src/gateway/gw_request.c) or its token checks (src/core/worker_token.c).
 * The first byte picks the parser; the rest is the body, the query string (split on '&' and
 * '=') or the token. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gw_request.h"
#include "worker_token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define SECRET "fuzz-secret-0123456789abcdef0123456789"

static void fuzz_query(const char *s, size_t n)
{
    static char buf[8192];
    GwQueryArg args[32];
    size_t nargs = 0;
    if (n >= sizeof buf)
        n = sizeof buf - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    char *p = buf;
    while (p && *p && nargs < 32) {
        char *amp = strchr(p, '&');
        if (amp)
            *amp = '\0';
        char *eq = strchr(p, '=');
        if (eq)
            *eq = '\0';
        args[nargs].key = p;
        args[nargs].value = eq ? eq + 1 : NULL;
        nargs++;
        p = amp ? amp + 1 : NULL;
    }
    GwTasksQuery q;
    GwError e;
    gw_parse_tasks_query(args, nargs, &q, &e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const char *body = (const char *)data + 1;
    size_t n = size - 1;
    GwError e;
    switch (data[0] % 9) {
    case 0: {
        GwHeartbeat hb;
        if (gw_parse_heartbeat(body, n, &hb, &e) == STATUS_OK)
            gw_heartbeat_clear(&hb);
        break;
    }
    case 1: {
        GwQueueRequest q;
        gw_parse_queue_request(body, n, &q, &e);
        break;
    }
    case 2: {
        GwStatusUpdate *u = malloc(sizeof *u);
        if (u)
            gw_parse_status_update(body, n, u, &e);
        free(u);
        break;
    }
    case 3: {
        GwComplete c;
        if (gw_parse_complete(body, n, &c, &e) == STATUS_OK) {
            if (c.file_b64) {
                size_t len = strlen(c.file_b64);
                unsigned char *out = malloc(gw_base64_decoded_max(len) + 1);
                if (out)
                    gw_base64_decode(c.file_b64, len, out, gw_base64_decoded_max(len));
                free(out);
            }
            gw_complete_clear(&c);
        }
        break;
    }
    case 4: {
        GwUploadUrlRequest r;
        gw_parse_upload_url_request(body, n, &r, &e);
        break;
    }
    case 5:
        fuzz_query(body, n);
        break;
    default: {
        /* tokens, names and paths: NUL-terminated copies */
        char *s = malloc(n + 1);
        if (!s)
            return 0;
        memcpy(s, body, n);
        s[n] = '\0';
        char sub[WORKER_TOKEN_SUB_MAX], task[WORKER_TOKEN_SUB_MAX], name[GW_NAME_MAX];
        worker_token_verify(SECRET, s, 1800000000LL, sub, sizeof sub);
        upload_token_verify(SECRET, s, "p/tasks/t/a.mp4", 1800000000LL, sub, task, sizeof sub);
        gw_sanitize_filename(s, name);
        gw_object_path_ok(s);
        gw_is_uuid(s);
        unsigned char out[4096];
        gw_base64_decode(s, n, out, sizeof out);
        token_b64url_decode(s, n, out, sizeof out);
        free(s);
        break;
    }
    }
    return 0;
}
