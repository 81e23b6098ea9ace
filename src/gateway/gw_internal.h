/* gw_internal.h -- what gateway.c (the server, authentication, request state) and gw_routes.c
 * (the handlers) share. Internal to src/gateway; nothing else includes it. */
#ifndef ORCH_GW_INTERNAL_H
#define ORCH_GW_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "config.h"
#include "gateway.h"
#include "gw_db.h"
#include "gw_request.h"
#include "gw_storage.h"

#define GW_SMALL_BODY_MAX (64 * 1024)           /* task-counts, claim, update, upload-url */
#define GW_HEARTBEAT_BODY_MAX (2 * 1024 * 1024) /* 100 log entries of up to 4 KiB + metadata */
#define GW_COMPLETE_BODY_MAX (16 * 1024 * 1024) /* base64 outputs (the worker: < 2 MB files) */
/* JSON bodies held at once, all requests: the raw bodies and, while a handler runs, its copies
 * (cJSON's tree and the decoded file or normalised logs: GW_BODY_COPIES times the body). */
#define GW_BODY_BUDGET (64LL * 1024 * 1024)
#define GW_BODY_COPIES 2
#define GW_DRAIN_FACTOR 4 /* a JSON body up to this many times its limit is read, then 413 */
/* Requests of one worker (by its token) in flight at once; more get 503 with Retry-After (the
 * reference worker retries 503 and treats nothing else as transient). The worker itself has at
 * most two: its heartbeat process and its task loop. Signed PUTs are not counted. */
#define GW_WORKER_INFLIGHT_MAX 2
/* Idle timeouts: before a request's headers are in (and between requests of a kept-alive
 * connection), then once they are (a body arriving, a slow reader of a file). */
#define GW_HEADER_TIMEOUT_SEC 10
#define GW_REQUEST_TIMEOUT_SEC 120

struct Gateway {
    struct MHD_Daemon *daemon;
    GwPool *pool;
    GwStorage *storage;
    char secret[CONFIG_STR_MAX];
    char public_url[CONFIG_URL_MAX];
    char storage_public_base[CONFIG_URL_MAX];
    long long max_upload_bytes;
    int upload_ttl_sec;
    int port;
    atomic_llong body_bytes; /* JSON body bytes buffered right now */
    atomic_int public_reads; /* public file reads in flight */
    int public_reads_max;
    /* Requests in flight per worker (GW_WORKER_INFLIGHT_MAX): at most one entry per
     * connection, so max_connections entries. */
    pthread_mutex_t inflight_mu;
    struct GwInflight {
        char worker[GW_ID_MAX];
        int n;
    } * inflight;
    int inflight_cap;
};

typedef enum {
    GW_R_NONE = 0,
    GW_R_HEALTH,
    GW_R_HEARTBEAT,
    GW_R_COUNTS,
    GW_R_CLAIM,
    GW_R_TASKS,
    GW_R_UPDATE,
    GW_R_COMPLETE,
    GW_R_UPLOAD_URL,
    GW_R_PUT_OBJECT,
    GW_R_GET_OBJECT,
} GwRoute;

/* One reply: a JSON body (malloc'd), a file (fd or a streamed store read, and its size), the
 * headers of a file (HEAD), or a redirect. */
typedef struct {
    unsigned code;
    char *body;       /* JSON text, NULL for none */
    int fd;           /* >= 0: serve this file (the reply owns it) */
    GwReader *reader; /* non-NULL: serve this store read (the reply owns it) */
    bool head_only;   /* the headers of a file of `size` bytes, no body */
    long long size;   /* of the file */
    char ctype[GW_CTYPE_MAX];
    char location[CONFIG_URL_MAX + GW_PATH_MAX + 32]; /* redirect target when code is 302 */
    char retry_after[8];                              /* Retry-After seconds ("" = none) */
} GwReply;

/* A worker's claim of a task, as its uploads need it: the folder its files go under (the
 * task's project, or "system") and the attempt it was claimed in (func_gateway_task_for_upload). */
typedef struct {
    char folder[64];
    int attempt;
} GwClaim;

/* The state of one request across libmicrohttpd's calls. */
typedef struct {
    GwRoute route;
    bool head;              /* HEAD of a public object */
    char worker[GW_ID_MAX]; /* the token's worker ("" before authentication) */
    char path[GW_PATH_MAX]; /* object path (PUT, GET) */
    char *body;             /* buffered JSON body */
    size_t len, cap, limit;
    long long declared; /* Content-Length, -1 when none */
    long long budget;   /* bytes charged to Gateway.body_bytes */
    bool too_large;
    bool failed; /* an error reply is ready in `error` */
    GwReply error;
    GwUpload *upload; /* PUT in progress */
    char task_id[GW_UUID_SIZE];
    GwClaim claim; /* PUT: the claim the upload was begun in */
    long long uploaded;
    long long started_us;
    bool counted;     /* holds a place in the worker's in-flight count */
    bool public_read; /* holds a place in Gateway.public_reads */
} GwReq;

/* Replies. gw_reply_json takes ownership of body (NULL -> 500). gw_reply_error builds
 * {"error": code_name, "message": message}. */
GwReply gw_reply_json(unsigned code, char *body);
GwReply gw_reply_error(unsigned code, const char *error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
GwReply gw_reply_empty(unsigned code);

/* Frees what a reply owns (body, reader) and zeroes it. Cannot fail. */
void gw_reply_clear(GwReply *r);

/* The handlers (gw_routes.c). Each reads the request's state and returns the reply. */
GwReply gw_route_heartbeat(Gateway *g, GwReq *r);
GwReply gw_route_counts(Gateway *g, GwReq *r);
GwReply gw_route_claim(Gateway *g, GwReq *r);
GwReply gw_route_tasks(Gateway *g, GwReq *r, const GwQueryArg *args, size_t n);
GwReply gw_route_update(Gateway *g, GwReq *r);
GwReply gw_route_complete(Gateway *g, GwReq *r);
GwReply gw_route_upload_url(Gateway *g, GwReq *r);
GwReply gw_route_get_object(Gateway *g, GwReq *r);

/* PUT of a signed upload URL: _begin checks the token (query `token`), the task and the size,
 * then opens the storage writer (STATUS_OK) or fills *err; _finish commits it. */
Status gw_route_put_begin(Gateway *g, GwReq *r, const char *token, long long content_length,
                          GwReply *err);
GwReply gw_route_put_finish(Gateway *g, GwReq *r);

#endif
