/* gateway.c -- the gateway's HTTP server: routing, authentication, bodies (see gateway.h; the
 * handlers are gw_routes.c, the replies gw_reply.c).
 *
 * Gateway layer. A request goes through three stages of libmicrohttpd's access callback:
 *   1. headers: route it, authenticate it (worker token, or the upload token of a PUT), check
 *      its declared size; a refusal is answered at once, before any body is read;
 *   2. body: buffered up to the route's limit (JSON) or streamed to storage (PUT); beyond the
 *      limit the rest is discarded and 413 is answered;
 *   3. end: the handler runs and its reply is queued.
 * Tokens are never logged; a refusal logs only its reason.
 */
#include "gateway.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "gw_internal.h"
#include "gw_reply.h"
#include "log.h"
#include "worker_token.h"

#define PFX_FUNCTIONS "/functions/v1/"
#define PFX_PUBLIC "/storage/v1/object/public/" GW_BUCKET "/"
#define PFX_UPLOAD "/storage/v1/object/upload/sign/" GW_BUCKET "/"

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* ------------------------------------------------------------------------------------------ */
/* Routing and authentication                                                                  */

static GwRoute route_of(const char *method, const char *url, bool *head)
{
    bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    *head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    if (post && strcmp(url, "/rest/v1/rpc/func_worker_heartbeat_with_logs") == 0)
        return GW_R_HEARTBEAT;
    if (post && strncmp(url, PFX_FUNCTIONS, strlen(PFX_FUNCTIONS)) == 0) {
        const char *fn = url + strlen(PFX_FUNCTIONS);
        if (strcmp(fn, "task-counts") == 0)
            return GW_R_COUNTS;
        if (strcmp(fn, "claim-next-task") == 0)
            return GW_R_CLAIM;
        if (strcmp(fn, "update-task-status") == 0)
            return GW_R_UPDATE;
        if (strcmp(fn, "complete_task") == 0)
            return GW_R_COMPLETE;
        if (strcmp(fn, "generate-upload-url") == 0)
            return GW_R_UPLOAD_URL;
        return GW_R_NONE;
    }
    if (get && strcmp(url, "/rest/v1/tasks") == 0)
        return GW_R_TASKS;
    if ((get || *head) && strncmp(url, PFX_PUBLIC, strlen(PFX_PUBLIC)) == 0)
        return GW_R_GET_OBJECT;
    if (strcmp(method, MHD_HTTP_METHOD_PUT) == 0 &&
        strncmp(url, PFX_UPLOAD, strlen(PFX_UPLOAD)) == 0)
        return GW_R_PUT_OBJECT;
    if (get && strcmp(url, "/healthz") == 0)
        return GW_R_HEALTH;
    return GW_R_NONE;
}

static const char *bearer(const char *auth)
{
    if (!auth)
        return NULL;
    if (strncasecmp(auth, "Bearer ", 7) != 0)
        return "";
    auth += 7;
    while (*auth == ' ')
        auth++;
    return auth;
}

/* Authenticates the worker token of a request (Authorization: Bearer, or apikey). When both
 * are sent and differ, both must be valid tokens of the same worker. 0 and r->worker set, or
 * -1 with r->error filled. */
static int authenticate(Gateway *g, struct MHD_Connection *conn, GwReq *r)
{
    const char *a = bearer(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization"));
    const char *k = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "apikey");
    if ((!a || !a[0]) && (!k || !k[0])) {
        r->error = gw_reply_error(MHD_HTTP_UNAUTHORIZED, "unauthorized",
                                  "send the pod's WORKER_TOKEN as 'Authorization: Bearer "
                                  "<token>' or as 'apikey: <token>'");
        log_warn("gateway.refused", "reason=no_token route=%d", (int)r->route);
        return -1;
    }
    const char *tokens[2] = {a && a[0] ? a : NULL, k && k[0] ? k : NULL};
    if (tokens[0] && tokens[1] && strcmp(tokens[0], tokens[1]) == 0)
        tokens[1] = NULL;
    long long now = (long long)time(NULL);
    char who[2][WORKER_TOKEN_SUB_MAX] = {"", ""};
    for (int i = 0; i < 2; i++) {
        if (!tokens[i])
            continue;
        TokenError e = worker_token_verify(g->secret, tokens[i], now, who[i], sizeof who[i]);
        if (e != TOKEN_OK) {
            r->error = gw_reply_error(MHD_HTTP_UNAUTHORIZED, "invalid_token",
                                      "the worker token was refused (%s); each pod gets its own "
                                      "WORKER_TOKEN from the orchestrator",
                                      token_error_str(e));
            log_warn("gateway.refused", "reason=%s route=%d", token_error_str(e), (int)r->route);
            return -1;
        }
    }
    if (tokens[0] && tokens[1] && strcmp(who[0], who[1]) != 0) {
        r->error = gw_reply_error(MHD_HTTP_UNAUTHORIZED, "invalid_token",
                                  "Authorization and apikey carry tokens of two workers");
        log_warn("gateway.refused", "reason=two_workers route=%d", (int)r->route);
        return -1;
    }
    snprintf(r->worker, sizeof r->worker, "%s", tokens[0] ? who[0] : who[1]);
    return 0;
}

static long long content_length(struct MHD_Connection *conn)
{
    const char *v = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (!v)
        return -1;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    return (end && *end == '\0' && n >= 0) ? n : -1;
}

static size_t body_limit(const Gateway *g, GwRoute route)
{
    switch (route) {
    case GW_R_HEARTBEAT:
        return GW_HEARTBEAT_BODY_MAX;
    case GW_R_COMPLETE: {
        long long b64 = g->max_upload_bytes / 3 * 4 * 2 + GW_SMALL_BODY_MAX; /* file + frame */
        return (size_t)(b64 < GW_COMPLETE_BODY_MAX ? b64 : GW_COMPLETE_BODY_MAX);
    }
    default:
        return GW_SMALL_BODY_MAX;
    }
}

typedef struct {
    int content_length, transfer_encoding;
} LengthHeaders;

static enum MHD_Result count_length_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                           const char *value)
{
    (void)kind;
    (void)value;
    LengthHeaders *h = cls;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0)
        h->content_length++;
    else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0)
        h->transfer_encoding++;
    return MHD_YES;
}

/* True when the request gives its body's length more than once (two Content-Length headers,
 * or one with Transfer-Encoding): a proxy in front and this server could read two different
 * bodies out of it (request smuggling), so it is refused before any body is read. */
static bool ambiguous_length(struct MHD_Connection *conn)
{
    LengthHeaders h = {0, 0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_length_header, &h);
    return h.content_length > 1 || (h.content_length > 0 && h.transfer_encoding > 0);
}

/* Takes one of the worker's places in flight; false when it has GW_WORKER_INFLIGHT_MAX. */
static bool inflight_take(Gateway *g, const char *worker)
{
    bool ok = true;
    pthread_mutex_lock(&g->inflight_mu);
    struct GwInflight *slot = NULL, *free_slot = NULL;
    for (int i = 0; i < g->inflight_cap && !slot; i++) {
        if (g->inflight[i].n > 0 && strcmp(g->inflight[i].worker, worker) == 0)
            slot = &g->inflight[i];
        else if (g->inflight[i].n == 0 && !free_slot)
            free_slot = &g->inflight[i];
    }
    if (!slot && free_slot) {
        slot = free_slot;
        snprintf(slot->worker, sizeof slot->worker, "%s", worker);
    }
    if (!slot || slot->n >= GW_WORKER_INFLIGHT_MAX)
        ok = false;
    else
        slot->n++;
    pthread_mutex_unlock(&g->inflight_mu);
    return ok;
}

static void inflight_release(Gateway *g, const char *worker)
{
    pthread_mutex_lock(&g->inflight_mu);
    for (int i = 0; i < g->inflight_cap; i++)
        if (g->inflight[i].n > 0 && strcmp(g->inflight[i].worker, worker) == 0) {
            g->inflight[i].n--;
            break;
        }
    pthread_mutex_unlock(&g->inflight_mu);
}

/* Charges n bytes to the JSON body budget; false (nothing charged) when it would be exceeded. */
static bool budget_take(Gateway *g, long long n)
{
    if (atomic_fetch_add(&g->body_bytes, n) + n > GW_BODY_BUDGET) {
        atomic_fetch_sub(&g->body_bytes, n);
        return false;
    }
    return true;
}

/* 503 with Retry-After: a transient refusal the reference worker retries. */
static GwReply busy(const char *message)
{
    GwReply e = gw_reply_error(MHD_HTTP_SERVICE_UNAVAILABLE, "busy", "%s", message);
    snprintf(e.retry_after, sizeof e.retry_after, "1");
    return e;
}

/* Stage 1. 0 = go on reading; -1 = r->error is the answer. */
static int begin_request(Gateway *g, struct MHD_Connection *conn, const char *url, GwReq *r)
{
    if (ambiguous_length(conn)) {
        r->error = gw_reply_error(MHD_HTTP_BAD_REQUEST, "bad_request",
                                  "the body's length is given twice (Content-Length and "
                                  "Transfer-Encoding, or two Content-Length headers); send one");
        log_warn("gateway.refused", "reason=ambiguous_length route=%d", (int)r->route);
        return -1;
    }
    switch (r->route) {
    case GW_R_NONE:
        r->error = gw_reply_error(MHD_HTTP_NOT_FOUND, "not_found",
                                  "no such route: see structure_docs/gateway.md for the routes");
        return -1;
    case GW_R_HEALTH:
        return 0;
    case GW_R_GET_OBJECT:
        /* Public reads need no token: bounded in number, so anonymous readers of large files
         * cannot hold every connection (and every store transfer) at once. */
        if (atomic_fetch_add(&g->public_reads, 1) >= g->public_reads_max) {
            atomic_fetch_sub(&g->public_reads, 1);
            r->error = busy("too many public file reads at once; retry shortly");
            log_warn("gateway.refused", "reason=public_reads_busy max=%d", g->public_reads_max);
            return -1;
        }
        r->public_read = true;
        snprintf(r->path, sizeof r->path, "%s", url + strlen(PFX_PUBLIC));
        return 0;
    case GW_R_PUT_OBJECT: {
        snprintf(r->path, sizeof r->path, "%s", url + strlen(PFX_UPLOAD));
        /* The request's own Content-Type is not kept: the stored type comes from the file
         * name's extension (gw_storage_content_type), so no worker can store text/html. */
        const char *token = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "token");
        return gw_route_put_begin(g, r, token, content_length(conn), &r->error) == STATUS_OK ? 0
                                                                                             : -1;
    }
    default:
        break;
    }
    if (authenticate(g, conn, r) != 0)
        return -1;
    /* One worker's token (a buggy or compromised pod) may not hold more than a few requests,
     * and so pooled connections, at once: the others' heartbeats and claims must get through. */
    if (!inflight_take(g, r->worker)) {
        r->error = busy("this worker has too many requests in flight; retry after they end");
        log_warn("gateway.refused", "reason=worker_busy worker_id=%s max=%d", r->worker,
                 GW_WORKER_INFLIGHT_MAX);
        return -1;
    }
    r->counted = true;
    r->limit = body_limit(g, r->route);
    long long declared = content_length(conn);
    r->declared = declared;
    /* A body a little over the limit is read and dropped, then answered 413: a client that
     * sends its whole body before reading the reply (no Expect: 100-continue) gets the 413
     * instead of a reset connection. A far larger one is refused before it is read. */
    if (declared > (long long)r->limit * GW_DRAIN_FACTOR) {
        r->error = gw_reply_error(MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                                  "the body is %lld bytes; this route takes at most %zu", declared,
                                  r->limit);
        return -1;
    }
    if (declared > (long long)r->limit)
        r->too_large = true;
    return 0;
}

/* Stage 2 for JSON routes: buffer, within the route's limit and the global budget. */
static void take_body(Gateway *g, GwReq *r, const char *data, size_t n)
{
    if (r->too_large || r->failed)
        return;
    if (r->len + n > r->limit) {
        r->too_large = true;
        return;
    }
    if (r->len + n + 1 > r->cap) {
        /* A declared length is allocated at once (no doubling slack charged to the budget). */
        size_t cap = r->cap ? r->cap
                     : r->declared > 0 && (size_t)r->declared + 1 >= r->len + n + 1
                         ? (size_t)r->declared + 1
                         : 4096;
        while (cap < r->len + n + 1)
            cap *= 2;
        if (cap > r->limit + 1)
            cap = r->limit + 1;
        long long grow = (long long)(cap - r->cap);
        if (!budget_take(g, grow)) {
            r->failed = true;
            r->error = busy("the gateway is holding too many request bodies; retry");
            return;
        }
        char *b = realloc(r->body, cap);
        if (!b) {
            atomic_fetch_sub(&g->body_bytes, grow);
            r->failed = true;
            r->error = gw_reply_error(MHD_HTTP_SERVICE_UNAVAILABLE, "busy", "out of memory");
            return;
        }
        r->budget += grow;
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    r->body[r->len] = '\0';
}

/* Stage 2 for PUT: stream into storage. */
static void take_upload(Gateway *g, GwReq *r, const char *data, size_t n)
{
    if (r->too_large || r->failed)
        return;
    if (r->uploaded + (long long)n > g->max_upload_bytes) {
        r->too_large = true;
        gw_storage_abort(r->upload);
        r->upload = NULL;
        return;
    }
    if (gw_storage_write(r->upload, data, n) != STATUS_OK) {
        r->failed = true;
        r->error = gw_reply_error(MHD_HTTP_INTERNAL_SERVER_ERROR, "storage_failed",
                                  "the file could not be stored; retry");
        gw_storage_abort(r->upload);
        r->upload = NULL;
        return;
    }
    r->uploaded += (long long)n;
}

typedef struct {
    GwQueryArg args[32];
    size_t n;
    bool overflow;
} QueryArgs;

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    (void)kind;
    QueryArgs *q = cls;
    if (q->n >= sizeof q->args / sizeof q->args[0]) {
        q->overflow = true;
        return MHD_NO;
    }
    q->args[q->n].key = key;
    q->args[q->n].value = value;
    q->n++;
    return MHD_YES;
}

/* Stage 3. */
static GwReply finish_request(Gateway *g, struct MHD_Connection *conn, GwReq *r)
{
    if (r->failed)
        return r->error;
    if (r->too_large) {
        long long lim = r->route == GW_R_PUT_OBJECT ? g->max_upload_bytes : (long long)r->limit;
        return gw_reply_error(MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                              "the body is larger than %lld bytes, the most this route takes%s",
                              lim, r->route == GW_R_PUT_OBJECT ? " (STORAGE_MAX_UPLOAD_MB)" : "");
    }
    /* The handler's copies of a JSON body (cJSON's tree, the decoded file, the normalised log
     * entries) count against the same budget as the bodies themselves. */
    long long copies = (long long)r->len * GW_BODY_COPIES;
    if (r->len > 0 && r->route != GW_R_PUT_OBJECT) {
        if (!budget_take(g, copies))
            return busy("the gateway is holding too many request bodies; retry");
        r->budget += copies;
    }
    switch (r->route) {
    case GW_R_HEALTH:
        return gw_reply_json(MHD_HTTP_OK, strdup("{\"ok\":true}"));
    case GW_R_HEARTBEAT:
        return gw_route_heartbeat(g, r);
    case GW_R_COUNTS:
        return gw_route_counts(g, r);
    case GW_R_CLAIM:
        return gw_route_claim(g, r);
    case GW_R_UPDATE:
        return gw_route_update(g, r);
    case GW_R_COMPLETE:
        return gw_route_complete(g, r);
    case GW_R_UPLOAD_URL:
        return gw_route_upload_url(g, r);
    case GW_R_PUT_OBJECT:
        return gw_route_put_finish(g, r);
    case GW_R_GET_OBJECT:
        return gw_route_get_object(g, r);
    case GW_R_TASKS: {
        QueryArgs q;
        memset(&q, 0, sizeof q);
        MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, &q);
        if (q.overflow)
            return gw_reply_error(MHD_HTTP_NOT_FOUND, "not_found",
                                  "this PostgREST query is not served by the gateway");
        return gw_route_tasks(g, r, q.args, q.n);
    }
    case GW_R_NONE:
        break;
    }
    return gw_reply_error(MHD_HTTP_NOT_FOUND, "not_found", "no such route");
}

static void log_done(const GwReq *r, const char *method, unsigned code)
{
    long long ms = (now_us() - r->started_us) / 1000;
    if (code >= 500)
        log_error("gateway.request", "method=%s route=%d status=%u worker_id=%s ms=%lld", method,
                  (int)r->route, code, r->worker, ms);
    else if (log_enabled(LOG_DEBUG))
        log_debug("gateway.request", "method=%s route=%d status=%u worker_id=%s ms=%lld", method,
                  (int)r->route, code, r->worker, ms);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    Gateway *g = cls;
    GwReq *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r)
            return MHD_NO;
        *con_cls = r;
        r->error.fd = -1; /* no file to close (0 is a descriptor: calloc is not enough) */
        r->started_us = now_us();
        /* The headers are in: from now on the long idle timeout (a body, a slow reader). */
        MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
                                  (unsigned int)GW_REQUEST_TIMEOUT_SEC);
        r->route = route_of(method, url, &r->head);
        if (begin_request(g, conn, url, r) != 0) {
            /* Answered before the body is read; libmicrohttpd closes the connection after. */
            r->failed = true;
            unsigned code = r->error.code;
            GwReply e = r->error;
            memset(&r->error, 0, sizeof r->error);
            r->error.fd = -1;
            log_done(r, method, code);
            return gw_send_reply(conn, &e);
        }
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (r->route == GW_R_PUT_OBJECT)
            take_upload(g, r, upload_data, *upload_data_size);
        else if (!r->failed)
            take_body(g, r, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (r->failed && r->error.code == 0)
        return MHD_YES; /* already answered in stage 1 */
    GwReply rep = finish_request(g, conn, r);
    /* The handler is done with the database: the worker's place is free before the reply goes
     * out (once it has the reply it may send its next request before this thread ends). */
    if (r->counted)
        inflight_release(g, r->worker);
    r->counted = false;
    if (r->failed)
        memset(&r->error, 0, sizeof r->error);
    r->failed = true;
    r->error.fd = -1;
    log_done(r, method, rep.code);
    return gw_send_reply(conn, &rep);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)toe;
    Gateway *g = cls;
    GwReq *r = *con_cls;
    /* Back to the short timeout while a kept-alive connection waits for its next request. */
    if (conn)
        MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT,
                                  (unsigned int)GW_HEADER_TIMEOUT_SEC);
    if (!r)
        return;
    gw_storage_abort(r->upload); /* an interrupted PUT leaves nothing behind */
    atomic_fetch_sub(&g->body_bytes, r->budget);
    if (r->counted)
        inflight_release(g, r->worker);
    if (r->public_read)
        atomic_fetch_sub(&g->public_reads, 1);
    free(r->body);
    gw_reply_clear(&r->error);
    free(r);
    *con_cls = NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Lifecycle                                                                                   */

/* Binds and listens on addr (the gateway's own socket, handed to libmicrohttpd, so that a port
 * in use or an address not on this host is told apart from a failure of the server). -1 with
 * *err set on failure. */
static int listen_on(const struct sockaddr_storage *addr, int *err)
{
    socklen_t len = addr->ss_family == AF_INET6 ? (socklen_t)sizeof(struct sockaddr_in6)
                                                : (socklen_t)sizeof(struct sockaddr_in);
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    if (fd >= 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == 0 &&
        bind(fd, (const struct sockaddr *)(const void *)addr, len) == 0 && listen(fd, 256) == 0)
        return fd;
    *err = errno;
    if (fd >= 0)
        close(fd);
    return -1;
}

Status gateway_start(const Config *cfg, int port, Gateway **out)
{
    if (port < 0)
        port = cfg->gateway_port;
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof addr);
    unsigned int flags = (unsigned int)(MHD_USE_INTERNAL_POLLING_THREAD |
                                        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL);
    struct sockaddr_in *v4 = (struct sockaddr_in *)(void *)&addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)(void *)&addr;
    /* config_parse checked that GATEWAY_BIND_ADDRESS is an IP literal (exit 3 otherwise). */
    if (inet_pton(AF_INET, cfg->gateway_bind_address, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
    } else if (inet_pton(AF_INET6, cfg->gateway_bind_address, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        flags |= (unsigned int)MHD_USE_IPv6;
    } else {
        log_error("gateway.bad_address",
                  "address=%s msg=\"GATEWAY_BIND_ADDRESS must be an IPv4 or IPv6 literal\"",
                  cfg->gateway_bind_address);
        return STATUS_ERR_CONFIG;
    }
    Gateway *g = calloc(1, sizeof *g);
    if (!g)
        return STATUS_ERR_NOMEM;
    atomic_init(&g->body_bytes, 0);
    atomic_init(&g->public_reads, 0);
    g->public_reads_max = cfg->gateway_max_connections / 2;
    g->inflight_cap = cfg->gateway_max_connections;
    g->inflight = calloc((size_t)g->inflight_cap, sizeof *g->inflight);
    if (!g->inflight || pthread_mutex_init(&g->inflight_mu, NULL) != 0) {
        free(g->inflight);
        free(g);
        return STATUS_ERR_NOMEM;
    }
    snprintf(g->secret, sizeof g->secret, "%s", cfg->gateway_jwt_secret);
    snprintf(g->storage_public_base, sizeof g->storage_public_base, "%s",
             cfg->storage_public_base_url);
    g->max_upload_bytes = (long long)cfg->storage_max_upload_mb * 1024 * 1024;
    g->upload_ttl_sec = cfg->gateway_upload_url_ttl_sec;
    const char *url = cfg->gateway_database_url[0] ? cfg->gateway_database_url : cfg->database_url;
    Status st = gw_storage_new(cfg, &g->storage);
    if (st == STATUS_OK)
        st = gw_pool_new(url, cfg->gateway_db_pool_size, &g->pool);
    if (st != STATUS_OK) {
        gateway_stop(g);
        return st;
    }
    int err = 0;
    int lfd = listen_on(&addr, &err);
    if (lfd < 0) {
        /* The environment, not the program: a port in use or not ours to take, an address not
         * on this host. A configuration error (exit 3) naming what to change. */
        log_error("gateway.start_failed",
                  "address=%s port=%d error=%s msg=\"cannot listen on GATEWAY_BIND_ADDRESS:"
                  "GATEWAY_PORT; %s\"",
                  cfg->gateway_bind_address, port, strerror(err),
                  err == EADDRINUSE      ? "the port is in use: set GATEWAY_PORT to a free port"
                  : err == EACCES        ? "ports below 1024 need privileges: set GATEWAY_PORT"
                  : err == EADDRNOTAVAIL ? "the address is not on this host: set "
                                           "GATEWAY_BIND_ADDRESS"
                                         : "check GATEWAY_BIND_ADDRESS and GATEWAY_PORT");
        gateway_stop(g);
        return STATUS_ERR_CONFIG;
    }
    /* The server's threads inherit this mask: SIGTERM and SIGINT go to the caller's thread
     * (the loop of `continuous`, the sigwait of `gateway`), never to a request thread. */
    sigset_t block, saved;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &block, &saved);
    /* Connections: GATEWAY_MAX_CONNECTIONS in all, GATEWAY_MAX_CONNECTIONS_PER_IP from one
     * address (one client cannot take them all); a connection idle for GW_HEADER_TIMEOUT_SEC
     * before its headers are in (or between requests) is closed, GW_REQUEST_TIMEOUT_SEC once
     * they are (on_request, on_completed). */
    g->daemon = MHD_start_daemon(
        flags, (uint16_t)port, NULL, NULL, on_request, g, MHD_OPTION_LISTEN_SOCKET, lfd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned int)cfg->gateway_max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)config_gateway_per_ip_limit(cfg),
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)GW_HEADER_TIMEOUT_SEC,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, g, MHD_OPTION_THREAD_STACK_SIZE,
        (size_t)(256 * 1024), MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024),
        MHD_OPTION_END);
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    if (!g->daemon) {
        log_error("gateway.start_failed", "address=%s port=%d error=%s msg=\"%s\"",
                  cfg->gateway_bind_address, port, strerror(errno),
                  "the HTTP server did not start");
        close(lfd);
        gateway_stop(g);
        return STATUS_ERR_INTERNAL;
    }
    struct sockaddr_storage bound;
    socklen_t blen = sizeof bound;
    g->port = port;
    if (getsockname(lfd, (struct sockaddr *)(void *)&bound, &blen) == 0)
        g->port =
            ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)(void *)&bound)->sin6_port
                                              : ((struct sockaddr_in *)(void *)&bound)->sin_port);
    if (cfg->gateway_public_url[0])
        snprintf(g->public_url, sizeof g->public_url, "%s", cfg->gateway_public_url);
    else
        snprintf(g->public_url, sizeof g->public_url, "http://%s%s%s:%d",
                 v6->sin6_family == AF_INET6 ? "[" : "",
                 strcmp(cfg->gateway_bind_address, "0.0.0.0") == 0 ? "127.0.0.1"
                                                                   : cfg->gateway_bind_address,
                 v6->sin6_family == AF_INET6 ? "]" : "", g->port);
    log_info("gateway.start",
             "address=%s port=%d public_url=%s storage=%s pool_size=%d max_connections=%d "
             "max_connections_per_ip=%d max_upload_mb=%d",
             cfg->gateway_bind_address, g->port, g->public_url, gw_storage_kind(g->storage),
             cfg->gateway_db_pool_size, cfg->gateway_max_connections,
             config_gateway_per_ip_limit(cfg), cfg->storage_max_upload_mb);
    *out = g;
    return STATUS_OK;
}

int gateway_port(const Gateway *g)
{
    return g->port;
}

const char *gateway_public_url(const Gateway *g)
{
    return g->public_url;
}

void gateway_stop(Gateway *g)
{
    if (!g)
        return;
    bool was_running = g->daemon != NULL;
    if (g->daemon)
        MHD_stop_daemon(g->daemon);
    gw_pool_free(g->pool);
    gw_storage_free(g->storage);
    memset(g->secret, 0, sizeof g->secret);
    pthread_mutex_destroy(&g->inflight_mu);
    free(g->inflight);
    free(g);
    if (was_running)
        log_info("gateway.stop", "msg=\"worker gateway closed\"");
}
