/* gw_routes.c -- the gateway's handlers, one per route of the worker dialect (see gateway.h and
 * structure_docs/gateway.md).
 *
 * Gateway layer. Each handler parses its request with gw_request.c (pure), checks that it acts
 * for the token's own worker (403 otherwise), makes one or two func_gateway_* calls with the
 * values as parameters, and shapes the reply the worker reads. The worker id always comes from
 * the token, never from the body.
 */
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw_internal.h"
#include "log.h"
#include "worker_token.h"

#define PATH_PUBLIC "/storage/v1/object/public/" GW_BUCKET "/"
#define PATH_UPLOAD "/storage/v1/object/upload/sign/" GW_BUCKET "/"

static GwReply bad_request(const GwError *e)
{
    return gw_reply_error(MHD_HTTP_BAD_REQUEST, "bad_request", "%s", e->message);
}

static GwReply db_unavailable(void)
{
    return gw_reply_error(MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                          "the database did not answer; retry shortly");
}

static GwReply not_yours(const GwReq *r, const char *other)
{
    log_warn("gateway.refused", "reason=other_worker worker_id=%s claimed_worker_id=%s", r->worker,
             other);
    return gw_reply_error(MHD_HTTP_FORBIDDEN, "forbidden",
                          "this token belongs to worker %s; it cannot act for worker %.128s",
                          r->worker, other);
}

/* The reply for an outcome other than ok/empty. */
static GwReply outcome_reply(const GwReq *r, const GwResult *res, const char *task_id)
{
    if (strcmp(res->outcome, "refused") == 0) {
        cJSON *b = res->body ? cJSON_Parse(res->body) : NULL;
        const cJSON *s = cJSON_GetObjectItemCaseSensitive(b, "worker_status");
        char status[32];
        snprintf(status, sizeof status, "%s", cJSON_IsString(s) ? s->valuestring : "unknown");
        cJSON_Delete(b);
        log_warn("gateway.refused", "reason=worker_ended worker_id=%s worker_status=%s", r->worker,
                 status);
        return gw_reply_error(MHD_HTTP_UNAUTHORIZED, "worker_ended",
                              "worker %s is %s; its token is no longer accepted", r->worker,
                              status);
    }
    if (strcmp(res->outcome, "not_found") == 0)
        return gw_reply_error(MHD_HTTP_NOT_FOUND, "task_not_found", "no task %s", task_id);
    if (strcmp(res->outcome, "not_holder") == 0) {
        log_warn("gateway.refused", "reason=not_holder worker_id=%s task_id=%s", r->worker,
                 task_id);
        return gw_reply_error(MHD_HTTP_FORBIDDEN, "forbidden", "task %s is not held by worker %s",
                              task_id, r->worker);
    }
    if (strcmp(res->outcome, "not_in_progress") == 0)
        return gw_reply_error(MHD_HTTP_CONFLICT, "task_finished",
                              "task %s is no longer In Progress (it was finished or recovered)",
                              task_id);
    return gw_reply_error(MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "unexpected outcome %s",
                          res->outcome);
}

/* Calls which; on ok/empty hands the body over as the reply with code ok_code (empty: 204). */
static GwReply call_and_reply(Gateway *g, const GwReq *r, GwSql which, const char *const *params,
                              const char *task_id, unsigned ok_code)
{
    GwResult res;
    memset(&res, 0, sizeof res);
    if (gw_pool_call(g->pool, which, params, &res) != STATUS_OK)
        return db_unavailable();
    GwReply rep;
    if (strcmp(res.outcome, "ok") == 0) {
        rep = gw_reply_json(ok_code, res.body);
        res.body = NULL;
    } else if (strcmp(res.outcome, "empty") == 0) {
        rep = gw_reply_empty(MHD_HTTP_NO_CONTENT);
    } else {
        rep = outcome_reply(r, &res, task_id ? task_id : "");
    }
    gw_result_clear(&res);
    return rep;
}

/* ------------------------------------------------------------------------------------------ */
/* Heartbeat, queue                                                                            */

GwReply gw_route_heartbeat(Gateway *g, GwReq *r)
{
    GwHeartbeat hb;
    GwError e;
    Status st = gw_parse_heartbeat(r->body, r->len, &hb, &e);
    if (st != STATUS_OK)
        return st == STATUS_ERR_PARSE ? bad_request(&e) : db_unavailable();
    GwReply rep;
    if (strcmp(hb.worker_id, r->worker) != 0) {
        rep = not_yours(r, hb.worker_id);
    } else {
        char total[16], used[16];
        snprintf(total, sizeof total, "%d", hb.vram_total_mb);
        snprintf(used, sizeof used, "%d", hb.vram_used_mb);
        const char *params[5] = {r->worker, hb.vram_known ? total : NULL,
                                 hb.vram_known ? used : NULL, hb.logs_json,
                                 hb.crashed ? "true" : "false"};
        rep = call_and_reply(g, r, GW_SQL_HEARTBEAT, params, NULL, MHD_HTTP_OK);
        if (hb.crashed && rep.code == MHD_HTTP_OK)
            log_warn("gateway.worker_crashed",
                     "worker_id=%s msg=\"the worker reported a crash; "
                     "the next cycle fails it and recovers its tasks\"",
                     r->worker);
    }
    gw_heartbeat_clear(&hb);
    return rep;
}

static GwReply queue_call(Gateway *g, GwReq *r, GwSql which)
{
    GwQueueRequest q;
    GwError e;
    if (gw_parse_queue_request(r->body, r->len, &q, &e) != STATUS_OK)
        return bad_request(&e);
    if (q.has_worker_id && strcmp(q.worker_id, r->worker) != 0)
        return not_yours(r, q.worker_id);
    const char *params[2] = {r->worker, q.run_type};
    return call_and_reply(g, r, which, params, NULL, MHD_HTTP_OK);
}

GwReply gw_route_counts(Gateway *g, GwReq *r)
{
    return queue_call(g, r, GW_SQL_COUNTS);
}

GwReply gw_route_claim(Gateway *g, GwReq *r)
{
    return queue_call(g, r, GW_SQL_CLAIM);
}

/* Keeps only the selected columns of each task object. */
static char *select_columns(const char *body, unsigned columns)
{
    static const struct {
        const char *key;
        unsigned bit;
    } COLS[] = {{"id", GW_COL_ID},
                {"params", GW_COL_PARAMS},
                {"task_type", GW_COL_TASK_TYPE},
                {"project_id", GW_COL_PROJECT_ID},
                {"status", GW_COL_STATUS},
                {"run_type", GW_COL_RUN_TYPE},
                {"attempts", GW_COL_ATTEMPTS},
                {"worker_id", GW_COL_WORKER_ID}};
    cJSON *in = cJSON_Parse(body);
    cJSON *out = cJSON_CreateArray();
    char *text = NULL;
    if (!cJSON_IsArray(in) || !out)
        goto done;
    const cJSON *t;
    cJSON_ArrayForEach(t, in)
    {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(out, o)) {
            cJSON_Delete(o);
            goto done;
        }
        for (size_t i = 0; i < sizeof COLS / sizeof COLS[0]; i++) {
            if (!(columns & COLS[i].bit))
                continue;
            const cJSON *v = cJSON_GetObjectItemCaseSensitive(t, COLS[i].key);
            cJSON *copy = v ? cJSON_Duplicate(v, true) : cJSON_CreateNull();
            if (!copy || !cJSON_AddItemToObject(o, COLS[i].key, copy)) {
                cJSON_Delete(copy);
                goto done;
            }
        }
    }
    text = cJSON_PrintUnformatted(out);
done:
    cJSON_Delete(in);
    cJSON_Delete(out);
    return text;
}

GwReply gw_route_tasks(Gateway *g, GwReq *r, const GwQueryArg *args, size_t n)
{
    GwTasksQuery q;
    GwError e;
    Status st = gw_parse_tasks_query(args, n, &q, &e);
    if (st == STATUS_ERR_NOT_FOUND)
        return gw_reply_error(MHD_HTTP_NOT_FOUND, "not_found",
                              "the gateway serves only the worker's lost-claim query: "
                              "tasks?worker_id=eq.<id>&status=eq.In%%20Progress");
    if (st != STATUS_OK)
        return bad_request(&e);
    if (strcmp(q.worker_id, r->worker) != 0)
        return not_yours(r, q.worker_id);
    char limit[16];
    snprintf(limit, sizeof limit, "%d", q.limit);
    const char *params[2] = {r->worker, limit};
    GwReply rep = call_and_reply(g, r, GW_SQL_HELD, params, NULL, MHD_HTTP_OK);
    if (rep.code == MHD_HTTP_OK && rep.body) {
        char *shaped = select_columns(rep.body, q.columns);
        free(rep.body);
        rep = gw_reply_json(MHD_HTTP_OK, shaped);
    }
    return rep;
}

/* ------------------------------------------------------------------------------------------ */
/* Results                                                                                     */

GwReply gw_route_update(Gateway *g, GwReq *r)
{
    GwStatusUpdate *u = malloc(sizeof *u);
    if (!u)
        return db_unavailable();
    GwError e;
    GwReply rep;
    if (gw_parse_status_update(r->body, r->len, u, &e) != STATUS_OK) {
        rep = bad_request(&e);
    } else if (u->has_worker_id && strcmp(u->worker_id, r->worker) != 0) {
        rep = not_yours(r, u->worker_id);
    } else {
        const char *status = u->status == GW_STATUS_FAILED     ? "Failed"
                             : u->status == GW_STATUS_COMPLETE ? "Complete"
                                                               : "In Progress";
        const char *params[5] = {r->worker, u->task_id, status, u->has_text ? u->text : NULL,
                                 u->reset_started ? "true" : "false"};
        rep = call_and_reply(g, r, GW_SQL_UPDATE, params, u->task_id, MHD_HTTP_OK);
    }
    free(u);
    return rep;
}

/* May this worker store files for task_id? STATUS_OK with the project folder ("system" when
 * the task has none), else *err is the reply. */
static Status task_folder(Gateway *g, const GwReq *r, const char *task_id, char folder[64],
                          GwReply *err)
{
    GwResult res;
    memset(&res, 0, sizeof res);
    const char *params[2] = {r->worker, task_id};
    if (gw_pool_call(g->pool, GW_SQL_FOR_UPLOAD, params, &res) != STATUS_OK) {
        *err = db_unavailable();
        return STATUS_ERR_DB;
    }
    if (strcmp(res.outcome, "ok") != 0) {
        *err = outcome_reply(r, &res, task_id);
        gw_result_clear(&res);
        return STATUS_ERR_NOT_FOUND;
    }
    cJSON *b = res.body ? cJSON_Parse(res.body) : NULL;
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(b, "project_id");
    snprintf(folder, 64, "%s",
             cJSON_IsString(p) && gw_is_uuid(p->valuestring) ? p->valuestring : "system");
    cJSON_Delete(b);
    gw_result_clear(&res);
    return STATUS_OK;
}

static void public_url_of(const Gateway *g, const char *path, char *out, size_t cap)
{
    if (path && path[0])
        snprintf(out, cap, "%s" PATH_PUBLIC "%s", g->public_url, path);
    else
        out[0] = '\0';
}

/* Decodes and stores one base64 file; STATUS_OK or *err is the reply. */
static Status store_b64(Gateway *g, const char *b64, const char *path, GwReply *err)
{
    size_t n = strlen(b64);
    size_t cap = gw_base64_decoded_max(n);
    if ((long long)cap > g->max_upload_bytes + 3) {
        *err = gw_reply_error(MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                              "the file is larger than STORAGE_MAX_UPLOAD_MB (%lld bytes)",
                              g->max_upload_bytes);
        return STATUS_ERR_CAPACITY;
    }
    unsigned char *data = malloc(cap ? cap : 1);
    if (!data) {
        *err = db_unavailable();
        return STATUS_ERR_NOMEM;
    }
    long len = gw_base64_decode(b64, n, data, cap);
    Status st = STATUS_OK;
    if (len < 0) {
        *err = gw_reply_error(MHD_HTTP_BAD_REQUEST, "bad_request", "file data is not valid base64");
        st = STATUS_ERR_PARSE;
    } else {
        char key[GW_PATH_MAX + 32];
        snprintf(key, sizeof key, GW_BUCKET "/%s", path);
        st = gw_storage_put(g->storage, key, gw_storage_content_type(path), data, (size_t)len);
        if (st != STATUS_OK)
            *err = gw_reply_error(MHD_HTTP_INTERNAL_SERVER_ERROR, "storage_failed",
                                  "the file could not be stored; retry");
    }
    free(data);
    return st;
}

/* The object of a storage_path must exist; STATUS_OK or *err is the reply. */
static Status check_stored(Gateway *g, const char *path, GwReply *err)
{
    char key[GW_PATH_MAX + 32];
    snprintf(key, sizeof key, GW_BUCKET "/%s", path);
    bool exists = false;
    if (gw_storage_exists(g->storage, key, &exists) != STATUS_OK) {
        *err = gw_reply_error(MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                              "the storage backend did not answer; retry");
        return STATUS_ERR_API;
    }
    if (!exists) {
        *err = gw_reply_error(MHD_HTTP_BAD_REQUEST, "bad_request",
                              "no stored file at %s; upload it first (generate-upload-url)", path);
        return STATUS_ERR_NOT_FOUND;
    }
    return STATUS_OK;
}

/* Builds "<folder>/tasks/<task>/<prefix><name>" into out (GW_PATH_MAX). */
static void object_path(const char *folder, const char *task, const char *prefix, const char *name,
                        char *out)
{
    snprintf(out, GW_PATH_MAX, "%s/tasks/%s/%s%s", folder, task, prefix, name);
}

static GwReply complete_with(Gateway *g, GwReq *r, GwComplete *c)
{
    char folder[64] = "system";
    struct {
        char path[GW_PATH_MAX], thumb[GW_PATH_MAX];
        char url[GW_URL_MAX + GW_PATH_MAX], thumb_url[GW_URL_MAX + GW_PATH_MAX];
    } *b = calloc(1, sizeof *b);
    if (!b)
        return db_unavailable();
    char *path = b->path, *thumb = b->thumb, *url = b->url, *thumb_url = b->thumb_url;
    GwReply err;
    if (c->kind == GW_COMPLETE_FILE) {
        if (task_folder(g, r, c->task_id, folder, &err) != STATUS_OK)
            goto fail;
        object_path(folder, c->task_id, "", c->filename, path);
        if (store_b64(g, c->file_b64, path, &err) != STATUS_OK)
            goto fail;
        if (c->thumb_b64) {
            object_path(folder, c->task_id, "thumb_", c->thumb_filename, thumb);
            if (store_b64(g, c->thumb_b64, thumb, &err) != STATUS_OK)
                goto fail;
        }
    } else if (c->kind == GW_COMPLETE_STORAGE_PATH) {
        snprintf(path, GW_PATH_MAX, "%s", c->storage_path);
        snprintf(thumb, GW_PATH_MAX, "%s", c->thumb_storage_path);
        if (check_stored(g, path, &err) != STATUS_OK ||
            (thumb[0] && check_stored(g, thumb, &err) != STATUS_OK))
            goto fail;
    }
    if (c->kind == GW_COMPLETE_LOCATION)
        snprintf(url, GW_URL_MAX + GW_PATH_MAX, "%s", c->output_location);
    else
        public_url_of(g, path, url, GW_URL_MAX + GW_PATH_MAX);
    public_url_of(g, thumb, thumb_url, GW_URL_MAX + GW_PATH_MAX);

    cJSON *res = cJSON_CreateObject();
    char *res_text = NULL;
    if (res && cJSON_AddBoolToObject(res, "success", true) &&
        cJSON_AddStringToObject(res, "public_url", url) &&
        (thumb_url[0] ? cJSON_AddStringToObject(res, "thumbnail_url", thumb_url)
                      : cJSON_AddNullToObject(res, "thumbnail_url")) &&
        (path[0] && c->kind != GW_COMPLETE_LOCATION
             ? cJSON_AddStringToObject(res, "storage_path", path) != NULL
             : true))
        res_text = cJSON_PrintUnformatted(res);
    cJSON_Delete(res);
    if (!res_text) {
        err = db_unavailable();
        goto fail;
    }
    const char *params[4] = {r->worker, c->task_id, res_text, url};
    GwReply rep = call_and_reply(g, r, GW_SQL_COMPLETE, params, c->task_id, MHD_HTTP_OK);
    free(res_text);
    free(b);
    return rep;
fail:
    free(b);
    return err;
}

GwReply gw_route_complete(Gateway *g, GwReq *r)
{
    GwComplete c;
    GwError e;
    Status st = gw_parse_complete(r->body, r->len, &c, &e);
    if (st != STATUS_OK)
        return st == STATUS_ERR_PARSE ? bad_request(&e) : db_unavailable();
    GwReply rep = c.has_worker_id && strcmp(c.worker_id, r->worker) != 0 ? not_yours(r, c.worker_id)
                                                                         : complete_with(g, r, &c);
    gw_complete_clear(&c);
    return rep;
}

/* ------------------------------------------------------------------------------------------ */
/* Uploads and files                                                                           */

/* "<public>/storage/v1/object/upload/sign/<bucket>/<path>?token=<upload token>" into out. */
static Status signed_url(Gateway *g, const GwReq *r, const char *task, const char *path,
                         long long exp, char *out, size_t cap)
{
    char token[WORKER_TOKEN_MAX];
    Status st = upload_token_mint(g->secret, r->worker, task, path, exp, token, sizeof token);
    if (st != STATUS_OK)
        return st;
    int n = snprintf(out, cap, "%s" PATH_UPLOAD "%s?token=%s", g->public_url, path, token);
    return n > 0 && (size_t)n < cap ? STATUS_OK : STATUS_ERR_CAPACITY;
}

GwReply gw_route_upload_url(Gateway *g, GwReq *r)
{
    GwUploadUrlRequest q;
    GwError e;
    if (gw_parse_upload_url_request(r->body, r->len, &q, &e) != STATUS_OK)
        return bad_request(&e);
    if (q.has_worker_id && strcmp(q.worker_id, r->worker) != 0)
        return not_yours(r, q.worker_id);
    char folder[64];
    GwReply err;
    if (task_folder(g, r, q.task_id, folder, &err) != STATUS_OK)
        return err;
    long long exp = (long long)time(NULL) + g->upload_ttl_sec;
    enum { CAP = GW_URL_MAX + GW_PATH_MAX + WORKER_TOKEN_MAX };
    struct {
        char path[GW_PATH_MAX], tpath[GW_PATH_MAX], url[CAP], turl[CAP];
    } *buf = calloc(1, sizeof *buf);
    if (!buf)
        return db_unavailable();
    size_t cap = CAP;
    char *path = buf->path, *url = buf->url, *tpath = buf->tpath, *turl = buf->turl;
    object_path(folder, q.task_id, "", q.filename, path);
    Status st = signed_url(g, r, q.task_id, path, exp, url, cap);
    if (st == STATUS_OK && q.thumbnail) {
        char stem[GW_NAME_MAX], name[GW_NAME_MAX];
        snprintf(stem, sizeof stem, "%s", q.filename);
        char *dot = strrchr(stem, '.');
        if (dot && dot != stem)
            *dot = '\0';
        snprintf(name, sizeof name, "%.150s.jpg", stem);
        object_path(folder, q.task_id, "thumb_", name, tpath);
        st = signed_url(g, r, q.task_id, tpath, exp, turl, cap);
    }
    cJSON *o = st == STATUS_OK ? cJSON_CreateObject() : NULL;
    char *text = NULL;
    if (o && cJSON_AddStringToObject(o, "upload_url", url) &&
        cJSON_AddStringToObject(o, "storage_path", path) &&
        (q.thumbnail ? cJSON_AddStringToObject(o, "thumbnail_upload_url", turl)
                     : cJSON_AddNullToObject(o, "thumbnail_upload_url")) &&
        (q.thumbnail ? cJSON_AddStringToObject(o, "thumbnail_storage_path", tpath)
                     : cJSON_AddNullToObject(o, "thumbnail_storage_path")) &&
        cJSON_AddNumberToObject(o, "expires_at", (double)exp) &&
        cJSON_AddStringToObject(o, "content_type", q.content_type))
        text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    free(buf);
    return gw_reply_json(MHD_HTTP_OK, text);
}

Status gw_route_put_begin(Gateway *g, GwReq *r, const char *token, long long content_length,
                          GwReply *err)
{
    if (!gw_object_path_ok(r->path)) {
        *err = gw_reply_error(MHD_HTTP_BAD_REQUEST, "bad_request",
                              "not a valid object path; use the upload_url as given");
        return STATUS_ERR_PARSE;
    }
    char task[WORKER_TOKEN_SUB_MAX];
    TokenError te = token ? upload_token_verify(g->secret, token, r->path, (long long)time(NULL),
                                                r->worker, task, sizeof task)
                          : TOKEN_MALFORMED;
    if (te != TOKEN_OK || !gw_is_uuid(task)) {
        log_warn("gateway.refused", "reason=upload_%s", token_error_str(te));
        *err = gw_reply_error(MHD_HTTP_UNAUTHORIZED, "invalid_token",
                              "the upload URL's token was refused (%s); ask generate-upload-url "
                              "for a new one",
                              token_error_str(te));
        return STATUS_ERR_PARSE;
    }
    if (content_length > g->max_upload_bytes) {
        *err = gw_reply_error(MHD_HTTP_CONTENT_TOO_LARGE, "payload_too_large",
                              "the file is %lld bytes; STORAGE_MAX_UPLOAD_MB allows %lld",
                              content_length, g->max_upload_bytes);
        return STATUS_ERR_CAPACITY;
    }
    char folder[64];
    snprintf(r->task_id, sizeof r->task_id, "%.36s", task);
    if (task_folder(g, r, task, folder, err) != STATUS_OK)
        return STATUS_ERR_NOT_FOUND;
    char key[GW_PATH_MAX + 32];
    snprintf(key, sizeof key, GW_BUCKET "/%s", r->path);
    if (gw_storage_begin(g->storage, key, r->ctype, content_length, &r->upload) != STATUS_OK) {
        *err = gw_reply_error(MHD_HTTP_INTERNAL_SERVER_ERROR, "storage_failed",
                              "the file could not be stored; retry");
        return STATUS_ERR_INTERNAL;
    }
    return STATUS_OK;
}

GwReply gw_route_put_finish(Gateway *g, GwReq *r)
{
    (void)g;
    GwUpload *u = r->upload;
    r->upload = NULL;
    if (!u || gw_storage_commit(u) != STATUS_OK)
        return gw_reply_error(MHD_HTTP_INTERNAL_SERVER_ERROR, "storage_failed",
                              "the file could not be stored; retry");
    log_info("gateway.stored", "worker_id=%s task_id=%s path=%s bytes=%lld", r->worker, r->task_id,
             r->path, r->uploaded);
    cJSON *o = cJSON_CreateObject();
    char *text = NULL;
    char key[GW_PATH_MAX + 32];
    snprintf(key, sizeof key, GW_BUCKET "/%s", r->path);
    if (o && cJSON_AddStringToObject(o, "Key", key) &&
        cJSON_AddStringToObject(o, "path", r->path) &&
        cJSON_AddNumberToObject(o, "size", (double)r->uploaded))
        text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return gw_reply_json(MHD_HTTP_OK, text);
}

GwReply gw_route_get_object(Gateway *g, GwReq *r)
{
    if (!gw_object_path_ok(r->path))
        return gw_reply_error(MHD_HTTP_BAD_REQUEST, "bad_request", "not a valid object path");
    if (g->storage_public_base[0]) {
        GwReply rep = gw_reply_empty(MHD_HTTP_FOUND);
        snprintf(rep.location, sizeof rep.location, "%s/" GW_BUCKET "/%s", g->storage_public_base,
                 r->path);
        return rep;
    }
    char key[GW_PATH_MAX + 32];
    snprintf(key, sizeof key, GW_BUCKET "/%s", r->path);
    int fd = -1;
    long long size = 0;
    Status st = gw_storage_open(g->storage, key, &fd, &size);
    if (st == STATUS_ERR_NOT_FOUND)
        return gw_reply_error(MHD_HTTP_NOT_FOUND, "not_found", "no such file");
    if (st != STATUS_OK)
        return gw_reply_error(MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable",
                              "the storage backend did not answer; retry");
    GwReply rep = gw_reply_empty(MHD_HTTP_OK);
    rep.fd = fd;
    rep.size = size;
    snprintf(rep.ctype, sizeof rep.ctype, "%s", gw_storage_content_type(r->path));
    return rep;
}
