/* gw_request.c -- parsing and checking the worker dialect's requests (see gw_request.h).
 * File names, object paths and base64 are in gw_paths.c.
 *
 * Pure: no I/O, clock, logging or globals; cJSON only (compiled alone by the fuzzer). Every
 * input is untrusted: lengths are explicit, every field is type- and range-checked, and text
 * that reaches the database is bounded here.
 */
#include "gw_request.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static Status fail(GwError *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static Status fail(GwError *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return STATUS_ERR_PARSE;
}

/* Length of the well-formed UTF-8 sequence at s[0..n) (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF), or 0 when it is not one. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned char lo = 0x80, hi = 0xbf; /* the range of the second byte */
    if (c >= 0xc2 && c <= 0xdf)
        len = 2;
    else if (c >= 0xe0 && c <= 0xef) {
        len = 3;
        if (c == 0xe0)
            lo = 0xa0; /* overlong */
        else if (c == 0xed)
            hi = 0x9f; /* surrogates */
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4;
        if (c == 0xf0)
            lo = 0x90; /* overlong */
        else if (c == 0xf4)
            hi = 0x8f; /* above U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return len;
}

size_t gw_utf8_invalid_at(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t k = utf8_seq(u + i, n - i);
        if (k == 0)
            return i;
        i += k;
    }
    return n;
}

bool gw_utf8_valid(const char *s, size_t n)
{
    return gw_utf8_invalid_at(s, n) == n;
}

/* A copy of the NUL-terminated s in which each byte that is not part of well-formed UTF-8 is
 * replaced by U+FFFD, cut (never inside a sequence) to at most cap - 1 bytes. malloc'd; NULL
 * when out of memory. */
static char *utf8_cleaned(const char *s, size_t cap)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    char *out = malloc(cap);
    if (!out)
        return NULL;
    size_t i = 0, j = 0;
    while (i < n) {
        size_t k = utf8_seq(u + i, n - i);
        const char *piece = k ? s + i : "\xef\xbf\xbd";
        size_t plen = k ? k : 3;
        if (j + plen >= cap)
            break;
        memcpy(out + j, piece, plen);
        j += plen;
        i += k ? k : 1;
    }
    out[j] = '\0';
    return out;
}

/* True when every key and string of the tree is well-formed UTF-8. */
static bool json_utf8_ok(const cJSON *v)
{
    for (; v; v = v->next) {
        if (v->string && !gw_utf8_valid(v->string, strlen(v->string)))
            return false;
        if (cJSON_IsString(v) && !gw_utf8_valid(v->valuestring, strlen(v->valuestring)))
            return false;
        if ((cJSON_IsObject(v) || cJSON_IsArray(v)) && !json_utf8_ok(v->child))
            return false;
    }
    return true;
}

/* The body as a JSON object; len 0 is {} when allow_empty. NULL after fail(). JSON text is
 * UTF-8 (RFC 8259): with strict_utf8 a body holding anything else is refused here, with a
 * message, instead of reaching PostgreSQL (which refuses such text, SQLSTATE 22021); the
 * heartbeat parses leniently and cleans its log entries itself (normalise_log). */
static cJSON *parse_object(const char *body, size_t len, bool allow_empty, GwError *err,
                           bool strict_utf8)
{
    size_t i = 0;
    while (i < len && (body[i] == ' ' || body[i] == '\n' || body[i] == '\r' || body[i] == '\t'))
        i++;
    if (i == len) {
        if (allow_empty)
            return cJSON_CreateObject();
        fail(err, "the request body is empty; send a JSON object");
        return NULL;
    }
    if (memchr(body, '\0', len)) {
        fail(err, "the request body holds a NUL byte; send a JSON object");
        return NULL;
    }
    size_t bad = strict_utf8 ? gw_utf8_invalid_at(body, len) : len;
    if (bad < len) {
        fail(err, "the request body is not valid UTF-8 (byte %zu); JSON text must be UTF-8", bad);
        return NULL;
    }
    cJSON *doc = cJSON_ParseWithLength(body, len);
    if (!doc) {
        fail(err, "the request body is not valid JSON");
        return NULL;
    }
    if (!cJSON_IsObject(doc)) {
        cJSON_Delete(doc);
        fail(err, "the request body must be a JSON object");
        return NULL;
    }
    return doc;
}

static const cJSON *field(const cJSON *obj, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, name);
    return cJSON_IsNull(v) ? NULL : v; /* null counts as absent */
}

/* Printable ASCII, no space at either end; 1..max-1 bytes. */
static bool token_text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n >= max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* Optional string field that must be a printable token; copies it into out. */
static Status opt_token(const cJSON *obj, const char *name, char *out, size_t cap, bool *present,
                        GwError *err)
{
    const cJSON *v = field(obj, name);
    if (present)
        *present = v != NULL;
    if (!v)
        return STATUS_OK;
    if (!cJSON_IsString(v) || !token_text_ok(v->valuestring, cap))
        return fail(err, "%s must be a string of 1 to %zu printable characters without spaces",
                    name, cap - 1);
    memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
    return STATUS_OK;
}

static Status req_uuid(const cJSON *obj, const char *name, char out[GW_UUID_SIZE], GwError *err)
{
    const cJSON *v = field(obj, name);
    if (!v)
        return fail(err, "%s is required", name);
    if (!cJSON_IsString(v) || !gw_is_uuid(v->valuestring))
        return fail(err,
                    "%s must be a task id (a uuid such as 123e4567-e89b-12d3-a456-426614174000)",
                    name);
    memcpy(out, v->valuestring, GW_UUID_SIZE);
    return STATUS_OK;
}

/* Optional integer in [lo, hi]; *present tells whether it was given. */
static Status opt_int(const cJSON *obj, const char *name, long lo, long hi, int *out, bool *present,
                      GwError *err)
{
    const cJSON *v = field(obj, name);
    *present = v != NULL;
    if (!v)
        return STATUS_OK;
    /* Range first: converting an out-of-range double (1e400 is inf) to an integer is
     * undefined behaviour. */
    double d = cJSON_IsNumber(v) ? v->valuedouble : -1e300;
    if (!cJSON_IsNumber(v) || !(d >= (double)lo && d <= (double)hi) || d != (double)(long)d)
        return fail(err, "%s must be a whole number in [%ld, %ld]", name, lo, hi);
    *out = (int)d;
    return STATUS_OK;
}

static Status opt_bool(const cJSON *obj, const char *name, bool *out, GwError *err)
{
    const cJSON *v = field(obj, name);
    if (!v)
        return STATUS_OK;
    if (!cJSON_IsBool(v))
        return fail(err, "%s must be true or false", name);
    *out = cJSON_IsTrue(v);
    return STATUS_OK;
}

/* Copies at most cap-1 bytes of s, never splitting a UTF-8 sequence. */
static void copy_cut(const char *s, char *out, size_t cap)
{
    size_t n = strlen(s);
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(out, s, n);
    out[n] = '\0';
}

bool gw_is_uuid(const char *s)
{
    static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";
    for (size_t i = 0; i < sizeof shape - 1; i++) {
        char c = s[i];
        if (shape[i] == '-') {
            if (c != '-')
                return false;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return false;
        }
    }
    return s[sizeof shape - 1] == '\0';
}

/* ------------------------------------------------------------------------------------------ */
/* Heartbeat                                                                                   */

/* A short string field of a log entry (timestamp, level) when it is a string of well-formed
 * UTF-8 shorter than max; NULL otherwise (the field is left out). */
static const char *short_text(const cJSON *v, size_t max)
{
    if (!cJSON_IsString(v))
        return NULL;
    size_t n = strlen(v->valuestring);
    return n < max && gw_utf8_valid(v->valuestring, n) ? v->valuestring : NULL;
}

/* The entry's metadata, bounded: a copy when it is an object of well-formed UTF-8 whose text
 * is at most GW_LOG_META_MAX bytes, else an object saying why it was left out. */
static cJSON *log_metadata(const cJSON *meta)
{
    if (!cJSON_IsObject(meta))
        return cJSON_CreateObject();
    const char *why = NULL;
    if (!json_utf8_ok(meta->child)) {
        why = "invalid UTF-8";
    } else {
        char *text = cJSON_PrintUnformatted(meta);
        if (!text)
            return NULL;
        if (strlen(text) > GW_LOG_META_MAX)
            why = "too large";
        free(text);
    }
    if (!why)
        return cJSON_Duplicate(meta, true);
    cJSON *m = cJSON_CreateObject();
    if (m && !cJSON_AddStringToObject(m, "metadata_dropped", why)) {
        cJSON_Delete(m);
        m = NULL;
    }
    return m;
}

/* One log entry of the worker, normalised for func_worker_heartbeat_with_logs; NULL = drop.
 * Bytes that are not UTF-8 never reach the database (it would refuse the whole beat): the
 * message and a task reference are cleaned (U+FFFD), other fields left out. */
static cJSON *normalise_log(const cJSON *e)
{
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
    if (!cJSON_IsObject(e) || !cJSON_IsString(msg))
        return NULL;
    cJSON *out = cJSON_CreateObject();
    char *text = utf8_cleaned(msg->valuestring, GW_LOG_MESSAGE_MAX);
    if (!out || !text || !cJSON_AddStringToObject(out, "message", text))
        goto fail;
    const char *ts = short_text(cJSON_GetObjectItemCaseSensitive(e, "timestamp"), 64);
    if (ts && !cJSON_AddStringToObject(out, "timestamp", ts))
        goto fail;
    const cJSON *lvl = cJSON_GetObjectItemCaseSensitive(e, "level");
    if (!cJSON_IsString(lvl))
        lvl = cJSON_GetObjectItemCaseSensitive(e, "log_level");
    const char *level = short_text(lvl, 16);
    if (level && !cJSON_AddStringToObject(out, "level", level))
        goto fail;
    cJSON *m = log_metadata(cJSON_GetObjectItemCaseSensitive(e, "metadata"));
    if (!m || !cJSON_AddItemToObject(out, "metadata", m)) {
        cJSON_Delete(m);
        goto fail;
    }
    /* The worker sends null, a uuid, or junk ("unknown_task_..."): junk is kept as metadata
     * so the entry is not lost to a failed uuid cast. */
    const cJSON *tid = cJSON_GetObjectItemCaseSensitive(e, "task_id");
    if (cJSON_IsString(tid)) {
        bool uuid = gw_is_uuid(tid->valuestring);
        free(text);
        text = utf8_cleaned(tid->valuestring, 128);
        if (!text || !cJSON_AddStringToObject(uuid ? out : m, uuid ? "task_id" : "task_ref", text))
            goto fail;
    }
    free(text);
    return out;
fail:
    free(text);
    cJSON_Delete(out);
    return NULL;
}

Status gw_parse_heartbeat(const char *body, size_t len, GwHeartbeat *out, GwError *err)
{
    GwHeartbeat hb;
    memset(&hb, 0, sizeof hb);
    cJSON *doc = parse_object(body, len, false, err, false);
    if (!doc)
        return STATUS_ERR_PARSE;
    cJSON *logs = NULL;
    bool has_total = false, has_used = false, has_id = false;
    Status st = opt_token(doc, "worker_id_param", hb.worker_id, sizeof hb.worker_id, &has_id, err);
    if (st == STATUS_OK && !has_id)
        st = fail(err, "worker_id_param is required");
    if (st == STATUS_OK)
        st = opt_int(doc, "vram_total_mb_param", 0, 10000000, &hb.vram_total_mb, &has_total, err);
    if (st == STATUS_OK)
        st = opt_int(doc, "vram_used_mb_param", 0, 10000000, &hb.vram_used_mb, &has_used, err);
    const cJSON *status = field(doc, "status_param");
    if (st == STATUS_OK && status && !cJSON_IsString(status))
        st = fail(err, "status_param must be a string such as \"active\" or \"crashed\"");
    const cJSON *in = field(doc, "logs_param");
    if (st == STATUS_OK && in && !cJSON_IsArray(in))
        st = fail(err, "logs_param must be a JSON array of log entries");
    if (st != STATUS_OK)
        goto out;
    /* This dialect reports 0, 0 when nvidia-smi failed: unknown, never "no GPU". */
    hb.vram_known = has_total && hb.vram_total_mb > 0;
    if (hb.vram_known && !has_used)
        hb.vram_used_mb = 0;
    hb.crashed = status && strcmp(status->valuestring, "crashed") == 0;
    st = STATUS_ERR_NOMEM;
    logs = cJSON_CreateArray();
    if (!logs)
        goto out;
    const cJSON *e;
    cJSON_ArrayForEach(e, in)
    {
        /* The reference worker sends at most 100 entries a beat: more are dropped (counted),
         * so a beat's log rows and database time are bounded and the beat itself still lands. */
        if (hb.n_logs >= GW_LOGS_MAX) {
            hb.n_dropped++;
            continue;
        }
        cJSON *n = normalise_log(e);
        if (n && cJSON_AddItemToArray(logs, n))
            hb.n_logs++;
        else {
            cJSON_Delete(n);
            hb.n_dropped++;
        }
    }
    hb.logs_json = cJSON_PrintUnformatted(logs);
    if (!hb.logs_json)
        goto out;
    *out = hb;
    st = STATUS_OK;
out:
    cJSON_Delete(logs);
    cJSON_Delete(doc);
    return st;
}

void gw_heartbeat_clear(GwHeartbeat *hb)
{
    if (!hb)
        return;
    free(hb->logs_json);
    memset(hb, 0, sizeof *hb);
}

/* ------------------------------------------------------------------------------------------ */
/* Queue, status, upload URL                                                                   */

Status gw_parse_queue_request(const char *body, size_t len, GwQueueRequest *out, GwError *err)
{
    GwQueueRequest q;
    memset(&q, 0, sizeof q);
    snprintf(q.run_type, sizeof q.run_type, "gpu");
    cJSON *doc = parse_object(body, len, true, err, true);
    if (!doc)
        return STATUS_ERR_PARSE;
    Status st = opt_token(doc, "run_type", q.run_type, sizeof q.run_type, NULL, err);
    if (st == STATUS_OK)
        st = opt_token(doc, "worker_id", q.worker_id, sizeof q.worker_id, &q.has_worker_id, err);
    bool include_active = false;
    if (st == STATUS_OK)
        st = opt_bool(doc, "include_active", &include_active, err);
    cJSON_Delete(doc);
    if (st == STATUS_OK)
        *out = q;
    return st;
}

Status gw_parse_status_update(const char *body, size_t len, GwStatusUpdate *out, GwError *err)
{
    GwStatusUpdate *u = calloc(1, sizeof *u);
    if (!u)
        return STATUS_ERR_NOMEM;
    cJSON *doc = parse_object(body, len, false, err, true);
    Status st = doc ? req_uuid(doc, "task_id", u->task_id, err) : STATUS_ERR_PARSE;
    const cJSON *s = doc ? field(doc, "status") : NULL;
    if (st == STATUS_OK && !cJSON_IsString(s))
        st = fail(err, "status is required: \"Failed\", \"Complete\" or \"In Progress\"");
    if (st == STATUS_OK) {
        if (strcmp(s->valuestring, "Failed") == 0)
            u->status = GW_STATUS_FAILED;
        else if (strcmp(s->valuestring, "Complete") == 0)
            u->status = GW_STATUS_COMPLETE;
        else if (strcmp(s->valuestring, "In Progress") == 0)
            u->status = GW_STATUS_IN_PROGRESS;
        else
            st = fail(err, "status must be \"Failed\", \"Complete\" or \"In Progress\"");
    }
    /* The worker puts the error text of a failure in output_location. */
    static const char *const text_fields[] = {"output_location", "error_message", "error_details"};
    for (size_t i = 0; st == STATUS_OK && i < 3 && !u->has_text; i++) {
        const cJSON *t = field(doc, text_fields[i]);
        if (t && !cJSON_IsString(t))
            st = fail(err, "%s must be a string", text_fields[i]);
        else if (t) {
            copy_cut(t->valuestring, u->text, sizeof u->text);
            u->has_text = true;
        }
    }
    if (st == STATUS_OK)
        st = opt_bool(doc, "reset_generation_started_at", &u->reset_started, err);
    if (st == STATUS_OK)
        st = opt_token(doc, "worker_id", u->worker_id, sizeof u->worker_id, &u->has_worker_id, err);
    cJSON_Delete(doc);
    if (st == STATUS_OK)
        *out = *u;
    free(u);
    return st;
}

/* A plausible MIME type: type/subtype of token characters. */
static bool content_type_ok(const char *s)
{
    const char *slash = strchr(s, '/');
    if (!slash || slash == s || !slash[1] || strlen(s) >= GW_CTYPE_MAX)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              strchr("/+-.;= _", *p)))
            return false;
    return true;
}

Status gw_parse_upload_url_request(const char *body, size_t len, GwUploadUrlRequest *out,
                                   GwError *err)
{
    GwUploadUrlRequest r;
    memset(&r, 0, sizeof r);
    snprintf(r.content_type, sizeof r.content_type, "application/octet-stream");
    cJSON *doc = parse_object(body, len, false, err, true);
    if (!doc)
        return STATUS_ERR_PARSE;
    Status st = req_uuid(doc, "task_id", r.task_id, err);
    const cJSON *name = field(doc, "filename");
    if (st == STATUS_OK && !cJSON_IsString(name))
        st = fail(err, "filename is required (a string)");
    if (st == STATUS_OK && gw_sanitize_filename(name->valuestring, r.filename) != STATUS_OK)
        st = fail(err, "filename has no usable characters; send a plain file name");
    const cJSON *ct = field(doc, "content_type");
    if (st == STATUS_OK && ct) {
        if (!cJSON_IsString(ct) || !content_type_ok(ct->valuestring))
            st = fail(err, "content_type must be a MIME type such as video/mp4");
        else
            snprintf(r.content_type, sizeof r.content_type, "%s", ct->valuestring);
    }
    if (st == STATUS_OK)
        st = opt_bool(doc, "generate_thumbnail_url", &r.thumbnail, err);
    if (st == STATUS_OK)
        st = opt_token(doc, "worker_id", r.worker_id, sizeof r.worker_id, &r.has_worker_id, err);
    cJSON_Delete(doc);
    if (st == STATUS_OK)
        *out = r;
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* complete_task                                                                               */

static Status opt_path(const cJSON *doc, const char *name, char out[GW_PATH_MAX], GwError *err)
{
    const cJSON *v = field(doc, name);
    if (!v)
        return STATUS_OK;
    if (!cJSON_IsString(v) || !gw_object_path_ok(v->valuestring))
        return fail(err,
                    "%s must be an object path within the bucket, such as "
                    "<project>/tasks/<task_id>/<file> (no '..', no leading '/')",
                    name);
    memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
    return STATUS_OK;
}

static Status b64_field(const cJSON *doc, const char *data, const char *name, const char **b64,
                        char fname[GW_NAME_MAX], GwError *err)
{
    const cJSON *d = field(doc, data);
    if (!d)
        return STATUS_OK;
    const cJSON *n = field(doc, name);
    if (!cJSON_IsString(d) || !d->valuestring[0])
        return fail(err, "%s must be a non-empty base64 string", data);
    if (!cJSON_IsString(n))
        return fail(err, "%s is required with %s", name, data);
    if (gw_sanitize_filename(n->valuestring, fname) != STATUS_OK)
        return fail(err, "%s has no usable characters; send a plain file name", name);
    *b64 = d->valuestring;
    return STATUS_OK;
}

Status gw_parse_complete(const char *body, size_t len, GwComplete *out, GwError *err)
{
    GwComplete *c = calloc(1, sizeof *c);
    if (!c)
        return STATUS_ERR_NOMEM;
    c->doc = parse_object(body, len, false, err, true);
    Status st = c->doc ? req_uuid(c->doc, "task_id", c->task_id, err) : STATUS_ERR_PARSE;
    if (st == STATUS_OK)
        st = b64_field(c->doc, "file_data", "filename", &c->file_b64, c->filename, err);
    if (st == STATUS_OK)
        st = b64_field(c->doc, "first_frame_data", "first_frame_filename", &c->thumb_b64,
                       c->thumb_filename, err);
    if (st == STATUS_OK)
        st = opt_path(c->doc, "storage_path", c->storage_path, err);
    if (st == STATUS_OK)
        st = opt_path(c->doc, "thumbnail_storage_path", c->thumb_storage_path, err);
    if (st == STATUS_OK)
        st = opt_token(c->doc, "worker_id", c->worker_id, sizeof c->worker_id, &c->has_worker_id,
                       err);
    const cJSON *loc = c->doc ? field(c->doc, "output_location") : NULL;
    if (st == STATUS_OK && loc) {
        if (!cJSON_IsString(loc) || !loc->valuestring[0] ||
            strlen(loc->valuestring) >= sizeof c->output_location)
            st =
                fail(err, "output_location must be a string of 1 to %d characters", GW_URL_MAX - 1);
        else
            memcpy(c->output_location, loc->valuestring, strlen(loc->valuestring) + 1);
    }
    if (st == STATUS_OK) {
        if (c->file_b64)
            c->kind = GW_COMPLETE_FILE;
        else if (c->storage_path[0])
            c->kind = GW_COMPLETE_STORAGE_PATH;
        else if (c->output_location[0])
            c->kind = GW_COMPLETE_LOCATION;
        else
            st = fail(err, "send file_data with filename, or storage_path, or output_location");
    }
    if (st == STATUS_OK && c->thumb_b64 && !c->file_b64)
        st = fail(err, "first_frame_data needs file_data");
    if (st == STATUS_OK) {
        *out = *c;
        c->doc = NULL;
    }
    gw_complete_clear(c);
    free(c);
    return st;
}

void gw_complete_clear(GwComplete *c)
{
    if (!c)
        return;
    cJSON_Delete(c->doc);
    memset(c, 0, sizeof *c);
}

/* ------------------------------------------------------------------------------------------ */
/* The lost-claim query                                                                        */

static const struct {
    const char *name;
    unsigned bit;
} COLUMNS[] = {{"id", GW_COL_ID},
               {"params", GW_COL_PARAMS},
               {"task_type", GW_COL_TASK_TYPE},
               {"project_id", GW_COL_PROJECT_ID},
               {"status", GW_COL_STATUS},
               {"run_type", GW_COL_RUN_TYPE},
               {"attempts", GW_COL_ATTEMPTS},
               {"worker_id", GW_COL_WORKER_ID}};

static unsigned column_bit(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof COLUMNS / sizeof COLUMNS[0]; i++)
        if (strlen(COLUMNS[i].name) == n && memcmp(COLUMNS[i].name, s, n) == 0)
            return COLUMNS[i].bit;
    return 0;
}

Status gw_parse_tasks_query(const GwQueryArg *args, size_t n, GwTasksQuery *out, GwError *err)
{
    GwTasksQuery q;
    memset(&q, 0, sizeof q);
    q.limit = 100;
    q.columns = GW_COL_ID | GW_COL_PARAMS | GW_COL_TASK_TYPE | GW_COL_PROJECT_ID;
    bool seen_worker = false, seen_status = false, seen_select = false, seen_limit = false;
    for (size_t i = 0; i < n; i++) {
        const char *k = args[i].key ? args[i].key : "";
        const char *v = args[i].value ? args[i].value : "";
        if (strcmp(k, "worker_id") == 0 && !seen_worker) {
            seen_worker = true;
            if (strncmp(v, "eq.", 3) != 0 || !token_text_ok(v + 3, sizeof q.worker_id))
                return STATUS_ERR_NOT_FOUND;
            memcpy(q.worker_id, v + 3, strlen(v + 3) + 1);
        } else if (strcmp(k, "status") == 0 && !seen_status) {
            seen_status = true;
            if (strcmp(v, "eq.In Progress") != 0)
                return STATUS_ERR_NOT_FOUND;
        } else if (strcmp(k, "select") == 0 && !seen_select) {
            seen_select = true;
            if (strcmp(v, "*") == 0) {
                q.columns = ~0u;
                continue;
            }
            q.columns = 0;
            for (const char *p = v; *p;) {
                const char *comma = strchr(p, ',');
                size_t len = comma ? (size_t)(comma - p) : strlen(p);
                unsigned bit = column_bit(p, len);
                if (!bit)
                    return fail(err, "select names an unknown column; use id, params, "
                                     "task_type, project_id, status, run_type, attempts, "
                                     "worker_id");
                q.columns |= bit;
                p += len + (comma ? 1 : 0);
            }
            if (!q.columns)
                return fail(err, "select names no column");
        } else if (strcmp(k, "limit") == 0 && !seen_limit) {
            seen_limit = true;
            char *end = NULL;
            long l = strtol(v, &end, 10);
            if (!v[0] || !end || *end || l < 1 || l > 1000)
                return fail(err, "limit must be a whole number in [1, 1000]");
            q.limit = l > 100 ? 100 : (int)l;
        } else if (strcmp(k, "order") == 0) {
            continue; /* the gateway always answers oldest claim first */
        } else {
            return STATUS_ERR_NOT_FOUND;
        }
    }
    if (!seen_worker || !seen_status)
        return STATUS_ERR_NOT_FOUND;
    *out = q;
    return STATUS_OK;
}
