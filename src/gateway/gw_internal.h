/* gw_internal.h -- what gateway.c (the server, authentication, request state) and gw_routes.c
 * (the handlers) share. Internal to src/gateway; nothing else includes it. */
#ifndef ORCH_GW_INTERNAL_H
#define ORCH_GW_INTERNAL_H

#include <stdatomic.h>
#include <stdbool.h>

#include "config.h"
#include "gateway.h"
#include "gw_db.h"
#include "gw_request.h"
#include "gw_storage.h"

#define GW_SMALL_BODY_MAX (64 * 1024)           /* task-counts, claim, update, upload-url */
#define GW_HEARTBEAT_BODY_MAX (4 * 1024 * 1024) /* up to 1000 log entries */
#define GW_COMPLETE_BODY_MAX (48 * 1024 * 1024) /* base64 outputs (the worker: < 2 MB files) */
#define GW_BODY_BUDGET (128LL * 1024 * 1024)    /* JSON bodies buffered at once, all requests */

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

/* One reply: a JSON body (malloc'd) or a file (fd, size), or a redirect. */
typedef struct {
    unsigned code;
    char *body;     /* JSON text, NULL for none */
    int fd;         /* >= 0: serve this file (the reply owns it) */
    long long size; /* of the file */
    char ctype[GW_CTYPE_MAX];
    char location[CONFIG_URL_MAX + GW_PATH_MAX + 32]; /* redirect target when code is 302 */
} GwReply;

/* The state of one request across libmicrohttpd's calls. */
typedef struct {
    GwRoute route;
    bool head;              /* HEAD of a public object */
    char worker[GW_ID_MAX]; /* the token's worker ("" before authentication) */
    char path[GW_PATH_MAX]; /* object path (PUT, GET) */
    char *body;             /* buffered JSON body */
    size_t len, cap, limit;
    long long budget; /* bytes charged to Gateway.body_bytes */
    bool too_large;
    bool failed; /* an error reply is ready in `error` */
    GwReply error;
    GwUpload *upload; /* PUT in progress */
    char task_id[GW_UUID_SIZE];
    char ctype[GW_CTYPE_MAX];
    long long uploaded;
    long long started_us;
} GwReq;

/* Replies. gw_reply_json takes ownership of body (NULL -> 500). gw_reply_error builds
 * {"error": code_name, "message": message}. */
GwReply gw_reply_json(unsigned code, char *body);
GwReply gw_reply_error(unsigned code, const char *error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
GwReply gw_reply_empty(unsigned code);

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
