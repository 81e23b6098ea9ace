/* gw_reply.c -- the gateway's replies: JSON, empty, errors, streamed bodies (see
 * gw_internal.h). Split from gateway.c under the module size.
 *
 * Gateway layer.
 */
#include <microhttpd.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw_internal.h"
#include "gw_reply.h"
#include "log.h"

/* ------------------------------------------------------------------------------------------ */
/* Replies                                                                                     */

GwReply gw_reply_json(unsigned code, char *body)
{
    GwReply r;
    memset(&r, 0, sizeof r);
    r.fd = -1;
    r.code = body ? code : MHD_HTTP_INTERNAL_SERVER_ERROR;
    r.body = body;
    snprintf(r.ctype, sizeof r.ctype, "application/json");
    return r;
}

GwReply gw_reply_empty(unsigned code)
{
    GwReply r;
    memset(&r, 0, sizeof r);
    r.fd = -1;
    r.code = code;
    return r;
}

GwReply gw_reply_error(unsigned code, const char *error, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    if (o && cJSON_AddStringToObject(o, "error", error) &&
        cJSON_AddStringToObject(o, "message", msg) && cJSON_AddNumberToObject(o, "code", code))
        text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return gw_reply_json(code, text);
}

void gw_reply_clear(GwReply *r)
{
    free(r->body);
    r->body = NULL;
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    gw_storage_read_close(r->reader);
    r->reader = NULL;
}

/* libmicrohttpd's pull of a streamed store read: as fast as the client takes it. */
static ssize_t reader_pull(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    long n = gw_storage_read(cls, buf, max);
    if (n < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    return n == 0 ? MHD_CONTENT_READER_END_OF_STREAM : (ssize_t)n;
}

static void reader_free(void *cls)
{
    gw_storage_read_close(cls);
}

/* A HEAD reply's body is never pulled; if it were, it ends the connection. */
static ssize_t no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    (void)pos;
    (void)buf;
    (void)max;
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

enum MHD_Result gw_send_reply(struct MHD_Connection *conn, GwReply *rep)
{
    struct MHD_Response *resp = NULL;
    bool file = rep->fd >= 0 || rep->reader || rep->head_only;
    if (rep->fd >= 0) {
        resp = MHD_create_response_from_fd64((uint64_t)rep->size, rep->fd);
        if (resp)
            rep->fd = -1; /* the response owns it now */
    } else if (rep->reader) {
        resp = MHD_create_response_from_callback((uint64_t)rep->size, 64 * 1024, reader_pull,
                                                 rep->reader, reader_free);
        if (resp)
            rep->reader = NULL; /* the response owns it now */
    } else if (rep->head_only) {
        resp = MHD_create_response_from_callback((uint64_t)rep->size, 1024, no_body, NULL, NULL);
    } else {
        const char *b = rep->body ? rep->body : "";
        resp =
            MHD_create_response_from_buffer(strlen(b), (void *)(uintptr_t)b, MHD_RESPMEM_MUST_COPY);
    }
    if (!resp) {
        gw_reply_clear(rep);
        return MHD_NO;
    }
    if (rep->ctype[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rep->ctype);
    if (rep->location[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, rep->location);
    if (rep->retry_after[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, rep->retry_after);
    if (!file)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    else
        MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    enum MHD_Result ret = MHD_queue_response(conn, rep->code, resp);
    MHD_destroy_response(resp);
    gw_reply_clear(rep);
    return ret;
}
