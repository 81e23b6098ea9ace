/* gw_storage.c -- local and S3 storage of the workers' outputs (see gw_storage.h).
 *
 * Gateway module. Keys are checked with gw_object_path_ok before any file or URL is made of
 * them. S3 requests are signed by libcurl (CURLOPT_AWS_SIGV4); no signing code lives here.
 */
#include "gw_storage.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gw_request.h"
#include "log.h"

struct GwStorage {
    bool s3;
    char dir[CONFIG_STR_MAX]; /* local root; also where S3 spool files go */
    char endpoint[CONFIG_URL_MAX];
    char bucket[CONFIG_ITEM_MAX];
    char sigv4[128];                                    /* "aws:amz:<region>:s3" */
    char userpwd[CONFIG_ITEM_MAX + CONFIG_STR_MAX + 2]; /* access:secret (a secret) */
};

/* Where an S3 upload's bytes go before its commit copies them to the key: a name of its own
 * (128 random bits) under a prefix whose dot segment no valid key has (gw_object_path_ok), so
 * no public read reaches it and no other upload of the same key can touch it. */
#define S3_TMP_PREFIX ".partial/"

struct GwUpload {
    GwStorage *s;
    char key[GW_PATH_MAX + 32];
    char tmp_key[sizeof S3_TMP_PREFIX + 32]; /* s3: S3_TMP_PREFIX and 32 hex digits */
    char final_path[CONFIG_STR_MAX + GW_PATH_MAX + 64];
    char tmp_path[CONFIG_STR_MAX + GW_PATH_MAX + 64];
    char content_type[GW_CTYPE_MAX];
    int fd;         /* where the bytes go: the file, the spool, or the pipe to the S3 PUT */
    long long size; /* bytes written so far */
    /* s3 with a declared length: the PUT runs in its own thread, reading the pipe */
    bool streaming;
    long long declared;
    int rfd;
    pthread_t thread;
    Status put_status;
    long put_http;
    /* The last byte of a streamed body is held back until gw_storage_commit: the store's PUT
     * cannot complete (the object cannot appear) before the caller's last check has passed. */
    bool held;
    unsigned char last;
};

static bool key_ok(const char *key)
{
    return key && gw_object_path_ok(key);
}

/* mkdir -p of the directories leading to path (not path itself). */
static int make_parents(const char *path)
{
    char buf[CONFIG_STR_MAX + GW_PATH_MAX + 64];
    if (snprintf(buf, sizeof buf, "%s", path) >= (int)sizeof buf)
        return -1;
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return 0;
}

Status gw_storage_new(const Config *cfg, GwStorage **out)
{
    GwStorage *s = calloc(1, sizeof *s);
    if (!s)
        return STATUS_ERR_NOMEM;
    s->s3 = strcmp(cfg->storage_backend, "s3") == 0;
    snprintf(s->dir, sizeof s->dir, "%s", cfg->storage_dir);
    size_t n = strlen(s->dir);
    while (n > 1 && s->dir[n - 1] == '/')
        s->dir[--n] = '\0';
    snprintf(s->endpoint, sizeof s->endpoint, "%s", cfg->storage_s3_endpoint);
    snprintf(s->bucket, sizeof s->bucket, "%s", cfg->storage_s3_bucket);
    snprintf(s->sigv4, sizeof s->sigv4, "aws:amz:%s:s3", cfg->storage_s3_region);
    snprintf(s->userpwd, sizeof s->userpwd, "%s:%s", cfg->storage_s3_access_key_id,
             cfg->storage_s3_secret_access_key);
    char probe[CONFIG_STR_MAX + 16];
    snprintf(probe, sizeof probe, "%s/x", s->dir);
    if (make_parents(probe) != 0 || access(s->dir, W_OK) != 0) {
        log_error("gateway.storage_dir_unusable",
                  "dir=%s error=%s msg=\"STORAGE_DIR must be a writable directory (the local "
                  "backend's files, the s3 backend's spool)\"",
                  s->dir, strerror(errno));
        free(s);
        return STATUS_ERR_CONFIG;
    }
    log_info("gateway.storage", "backend=%s dir=%s endpoint=%s bucket=%s", s->s3 ? "s3" : "local",
             s->dir, s->s3 ? s->endpoint : "", s->s3 ? s->bucket : "");
    *out = s;
    return STATUS_OK;
}

void gw_storage_free(GwStorage *s)
{
    if (!s)
        return;
    memset(s->userpwd, 0, sizeof s->userpwd);
    free(s);
}

const char *gw_storage_kind(const GwStorage *s)
{
    return s->s3 ? "s3" : "local";
}

const char *gw_storage_content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } TYPES[] = {{".mp4", "video/mp4"},   {".webm", "video/webm"}, {".mov", "video/quicktime"},
                 {".png", "image/png"},   {".jpg", "image/jpeg"},  {".jpeg", "image/jpeg"},
                 {".webp", "image/webp"}, {".gif", "image/gif"},   {".json", "application/json"},
                 {".txt", "text/plain"},  {".wav", "audio/wav"},   {".mp3", "audio/mpeg"}};
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof TYPES / sizeof TYPES[0]; i++)
        if (strcasecmp(dot, TYPES[i].ext) == 0)
            return TYPES[i].type;
    return "application/octet-stream";
}

/* ------------------------------------------------------------------------------------------ */
/* S3 requests                                                                                 */

static size_t write_to_fd(char *data, size_t size, size_t n, void *ctx)
{
    int fd = *(int *)ctx;
    size_t len = size * n, off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return 0; /* curl aborts the transfer */
        off += (size_t)w;
    }
    return len;
}

static size_t discard(char *data, size_t size, size_t n, void *ctx)
{
    (void)data;
    (void)ctx;
    return size * n;
}

/* The body of a PUT: `left` bytes from fd. An end of file before them (an upload cut short,
 * the writer gone) aborts the request, so the store never keeps a partial object. */
typedef struct {
    int fd;
    long long left;
} Feed;

static size_t read_from_fd(char *buf, size_t size, size_t n, void *ctx)
{
    Feed *f = ctx;
    size_t want = size * n;
    if (f->left <= 0)
        return 0;
    if ((long long)want > f->left)
        want = (size_t)f->left;
    for (;;) {
        ssize_t r = read(f->fd, buf, want);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return CURL_READFUNC_ABORT;
        f->left -= (long long)r;
        return (size_t)r;
    }
}

/* A handle for a signed request about key, with the options every request shares; NULL when
 * libcurl has no memory. The caller adds the method's own options and the headers. */
static CURL *s3_easy(GwStorage *s, const char *key)
{
    CURL *c = curl_easy_init();
    if (!c)
        return NULL;
    char url[CONFIG_URL_MAX + CONFIG_ITEM_MAX + GW_PATH_MAX + 8];
    snprintf(url, sizeof url, "%s/%s/%s", s->endpoint, s->bucket, key);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, s->sigv4);
    curl_easy_setopt(c, CURLOPT_USERPWD, s->userpwd);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L); /* < 1 KiB/s for 60 s: give up */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    return c;
}

/* One signed request: method "PUT" (body from fd, size bytes), "GET" (body into fd), "HEAD" or
 * "DELETE". *http gets the status; STATUS_ERR_API on a transport error (logged). */
static Status s3_request(GwStorage *s, const char *method, const char *key, int fd, long long size,
                         const char *content_type, long *http, long long *length)
{
    CURL *c = s3_easy(s, key);
    if (!c)
        return STATUS_ERR_NOMEM;
    Feed feed = {fd, size};
    struct curl_slist *h = NULL;
    char ct[GW_CTYPE_MAX + 16];
    snprintf(ct, sizeof ct, "Content-Type: %s", content_type ? content_type : "");
    if (strcmp(method, "PUT") == 0) {
        h = curl_slist_append(h, ct);
        h = curl_slist_append(h, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, read_from_fd);
        curl_easy_setopt(c, CURLOPT_READDATA, &feed);
        curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    } else if (strcmp(method, "GET") == 0) {
        h = curl_slist_append(h, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, write_to_fd);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &fd);
    } else if (strcmp(method, "DELETE") == 0) {
        h = curl_slist_append(h, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, "DELETE");
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    } else {
        h = curl_slist_append(h, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    }
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_off_t cl = -1;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        log_error("gateway.s3_failed", "method=%s key=%s error=%s", method, key,
                  curl_easy_strerror(rc));
        return STATUS_ERR_API;
    }
    *http = code;
    if (length)
        *length = (long long)cl;
    return STATUS_OK;
}

/* The first bytes of a response body, to read a verdict from. */
typedef struct {
    char buf[512];
    size_t len;
} Head;

static size_t keep_head(char *data, size_t size, size_t n, void *ctx)
{
    Head *h = ctx;
    size_t len = size * n, room = sizeof h->buf - 1 - h->len;
    memcpy(h->buf + h->len, data, len < room ? len : room);
    h->len += len < room ? len : room;
    h->buf[h->len] = '\0';
    return len;
}

/* Copies object from to object to inside the bucket, on the store's side (CopyObject: a PUT
 * with x-amz-copy-source, signed like any other; the content type is copied with the bytes).
 * The store answers when the copy is done, which for a large object can take a while with
 * nothing on the wire, so the low-speed limit gives way to an overall one. S3 may also answer
 * 200 and report a failure in the body, so the body must be a CopyObjectResult. STATUS_OK, or
 * STATUS_ERR_API (logged). */
static Status s3_copy(GwStorage *s, const char *from, const char *to)
{
    CURL *c = s3_easy(s, to);
    if (!c)
        return STATUS_ERR_NOMEM;
    Feed none = {-1, 0};
    Head head = {0};
    char src[CONFIG_ITEM_MAX + GW_PATH_MAX + 40];
    snprintf(src, sizeof src, "x-amz-copy-source: /%s/%s", s->bucket, from);
    struct curl_slist *h = curl_slist_append(NULL, src);
    h = curl_slist_append(h, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
    h = curl_slist_append(h, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_from_fd);
    curl_easy_setopt(c, CURLOPT_READDATA, &none);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)0);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, keep_head);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &head);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 0L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 900L);
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        log_error("gateway.s3_failed", "method=COPY key=%s from=%s error=%s", to, from,
                  curl_easy_strerror(rc));
        return STATUS_ERR_API;
    }
    if (code < 200 || code > 299 || !strstr(head.buf, "CopyObjectResult")) {
        log_error("gateway.s3_copy_refused", "key=%s from=%s http_status=%ld", to, from, code);
        return STATUS_ERR_API;
    }
    return STATUS_OK;
}

/* An unlinked temporary file in the storage directory (the S3 spool). -1 on failure. */
static int spool_file(GwStorage *s)
{
    char path[CONFIG_STR_MAX + 32];
    snprintf(path, sizeof path, "%s/.spool-XXXXXX", s->dir);
    int fd = mkstemp(path);
    if (fd >= 0)
        unlink(path);
    else
        log_error("gateway.storage_spool_failed", "dir=%s error=%s", s->dir, strerror(errno));
    return fd;
}

/* ------------------------------------------------------------------------------------------ */
/* Uploads                                                                                     */

/* The S3 PUT of a streaming upload, reading the pipe as the request thread fills it. */
static void *put_thread(void *arg)
{
    GwUpload *u = arg;
    u->put_status = s3_request(u->s, "PUT", u->tmp_key, u->rfd, u->declared, u->content_type,
                               &u->put_http, NULL);
    close(u->rfd);
    u->rfd = -1;
    return NULL;
}

/* Starts streaming u to S3 through a pipe; false when a pipe or thread cannot be had (the
 * caller spools instead). */
static bool start_stream(GwUpload *u, long long size)
{
    int fds[2];
    if (pipe(fds) != 0)
        return false;
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    u->rfd = fds[0];
    u->fd = fds[1];
    u->declared = size;
    u->streaming = true;
    if (pthread_create(&u->thread, NULL, put_thread, u) != 0) {
        close(fds[0]);
        close(fds[1]);
        u->fd = u->rfd = -1;
        u->streaming = false;
        return false;
    }
    return true;
}

/* Ends the streaming PUT: closing the pipe's write end gives the thread its end of file (a short
 * body aborts the request); waits for it. */
static void finish_stream(GwUpload *u)
{
    if (!u->streaming)
        return;
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
    pthread_join(u->thread, NULL);
    u->streaming = false;
}

/* Deletes the upload's temporary object: after its commit copied it to the key, or when the
 * upload failed (S3 itself refuses a body shorter than its Content-Length, but not every
 * S3-compatible server does: s3rver keeps what it got). Only ever this upload's own name, never
 * the key, which another PUT of the same upload URL may have stored. Best effort: a failure
 * leaves a stray object under S3_TMP_PREFIX (logged), nothing visible. */
static void drop_temporary(GwUpload *u, bool committed)
{
    long http = 0;
    if (s3_request(u->s, "DELETE", u->tmp_key, -1, 0, NULL, &http, NULL) != STATUS_OK ||
        ((http < 200 || http > 299) && http != 404))
        log_warn("gateway.s3_temporary_left", "key=%s tmp_key=%s http_status=%ld", u->key,
                 u->tmp_key, http);
    else if (!committed)
        log_info("gateway.upload_dropped", "key=%s tmp_key=%s bytes=%lld declared=%lld", u->key,
                 u->tmp_key, u->size, u->declared);
}

/* A fresh temporary name for an S3 upload; false (logged) when no randomness can be had. */
static bool make_tmp_key(GwUpload *u)
{
    unsigned char r[16];
    ssize_t n;
    do
        n = getrandom(r, sizeof r, 0);
    while (n < 0 && errno == EINTR);
    if (n != (ssize_t)sizeof r) {
        log_error("gateway.storage_random_failed", "key=%s error=%s", u->key,
                  n < 0 ? strerror(errno) : "short read");
        return false;
    }
    char *p = u->tmp_key + snprintf(u->tmp_key, sizeof u->tmp_key, "%s", S3_TMP_PREFIX);
    for (size_t i = 0; i < sizeof r; i++)
        p += snprintf(p, 3, "%02x", r[i]);
    return true;
}

Status gw_storage_begin(GwStorage *s, const char *key, long long size, GwUpload **out)
{
    if (!key_ok(key))
        return STATUS_ERR_PARSE;
    GwUpload *u = calloc(1, sizeof *u);
    if (!u)
        return STATUS_ERR_NOMEM;
    u->s = s;
    u->fd = -1;
    u->rfd = -1;
    snprintf(u->key, sizeof u->key, "%s", key);
    /* Never the uploader's own Content-Type: a type from the extension's allowlist. */
    snprintf(u->content_type, sizeof u->content_type, "%s", gw_storage_content_type(key));
    if (s->s3) {
        /* A declared length is streamed straight to the store, under the temporary name; a
         * chunked body is spooled, since S3 wants the length before the first byte (and an
         * empty one too: with no byte to hold back, its PUT would complete before the
         * commit). */
        if (!make_tmp_key(u))
            u->fd = -1;
        else if (size <= 0 || !start_stream(u, size))
            u->fd = spool_file(s);
    } else {
        snprintf(u->final_path, sizeof u->final_path, "%s/%s", s->dir, key);
        /* A dot file next to the final one: never a valid key, so never served half-written. */
        const char *slash = strrchr(u->final_path, '/');
        snprintf(u->tmp_path, sizeof u->tmp_path, "%.*s/.%s.part-XXXXXX",
                 (int)(slash - u->final_path), u->final_path, slash + 1);
        if (make_parents(u->final_path) == 0)
            u->fd = mkstemp(u->tmp_path);
        if (u->fd < 0)
            log_error("gateway.storage_open_failed", "key=%s error=%s", key, strerror(errno));
        else
            fchmod(u->fd, 0644);
    }
    if (u->fd < 0) {
        free(u);
        return STATUS_ERR_INTERNAL;
    }
    *out = u;
    return STATUS_OK;
}

Status gw_storage_write(GwUpload *u, const void *data, size_t n)
{
    const char *p = data;
    size_t off = 0;
    if (n > 0 && u->streaming && !u->held && u->size + (long long)n >= u->declared) {
        /* The declared last byte (or beyond: the commit then fails on the size) is kept. */
        u->held = true;
        u->last = (unsigned char)p[n - 1];
        n--;
        u->size++;
    }
    while (off < n) {
        ssize_t w = write(u->fd, p + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            log_error("gateway.storage_write_failed", "key=%s error=%s", u->key,
                      w < 0 ? strerror(errno) : "short write");
            return STATUS_ERR_INTERNAL;
        }
        off += (size_t)w;
    }
    u->size += (long long)n;
    return STATUS_OK;
}

void gw_storage_abort(GwUpload *u)
{
    if (!u)
        return;
    if (u->streaming) {
        finish_stream(u); /* the PUT sees a short body and aborts */
        drop_temporary(u, false);
    }
    if (u->fd >= 0)
        close(u->fd);
    if (!u->s->s3 && u->tmp_path[0])
        unlink(u->tmp_path);
    free(u);
}

/* Ends the streamed PUT of the temporary object: the held byte completes the body, so only
 * now can the store's PUT finish. STATUS_OK when the store took the whole body. */
static Status end_streamed_put(GwUpload *u)
{
    bool whole = u->size == u->declared;
    if (whole && u->held) {
        ssize_t w;
        do
            w = write(u->fd, &u->last, 1);
        while (w < 0 && errno == EINTR);
        whole = w == 1;
    }
    finish_stream(u);
    Status st = u->put_status;
    if (st == STATUS_OK && (!whole || u->put_http < 200 || u->put_http > 299)) {
        log_error("gateway.s3_put_refused",
                  "key=%s tmp_key=%s http_status=%ld bytes=%lld declared=%lld", u->key, u->tmp_key,
                  u->put_http, u->size, u->declared);
        st = STATUS_ERR_API;
    }
    return st;
}

/* PUTs the spooled body as the temporary object. */
static Status put_spooled(GwUpload *u)
{
    if (lseek(u->fd, 0, SEEK_SET) != 0) {
        log_error("gateway.storage_commit_failed", "key=%s error=%s", u->key, strerror(errno));
        return STATUS_ERR_INTERNAL;
    }
    long http = 0;
    Status st = s3_request(u->s, "PUT", u->tmp_key, u->fd, u->size, u->content_type, &http, NULL);
    if (st == STATUS_OK && (http < 200 || http > 299)) {
        log_error("gateway.s3_put_refused", "key=%s tmp_key=%s http_status=%ld", u->key, u->tmp_key,
                  http);
        st = STATUS_ERR_API;
    }
    return st;
}

Status gw_storage_commit(GwUpload *u)
{
    Status st = STATUS_ERR_INTERNAL;
    if (!u->s->s3) {
        if (fdatasync(u->fd) == 0 && close(u->fd) == 0) {
            u->fd = -1;
            if (rename(u->tmp_path, u->final_path) == 0) {
                u->tmp_path[0] = '\0';
                st = STATUS_OK;
            }
        }
        if (st != STATUS_OK)
            log_error("gateway.storage_commit_failed", "key=%s error=%s", u->key, strerror(errno));
    } else {
        /* The key is written by the copy alone, in one step, and is never deleted: a failed or
         * refused upload of the same key leaves an object stored there untouched. A crash
         * between the copy and the delete leaves a stray temporary object, nothing visible. */
        st = u->streaming ? end_streamed_put(u) : put_spooled(u);
        if (st == STATUS_OK)
            st = s3_copy(u->s, u->tmp_key, u->key);
        drop_temporary(u, st == STATUS_OK);
    }
    gw_storage_abort(u);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* Reads                                                                                       */

Status gw_storage_exists(GwStorage *s, const char *key, bool *exists)
{
    if (!key_ok(key))
        return STATUS_ERR_PARSE;
    if (!s->s3) {
        char path[CONFIG_STR_MAX + GW_PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s", s->dir, key);
        struct stat sb;
        *exists = stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
        return STATUS_OK;
    }
    long http = 0;
    Status st = s3_request(s, "HEAD", key, -1, 0, NULL, &http, NULL);
    if (st != STATUS_OK)
        return st;
    if (http != 200 && http != 404) {
        log_error("gateway.s3_head_refused", "key=%s http_status=%ld", key, http);
        return STATUS_ERR_API;
    }
    *exists = http == 200;
    return STATUS_OK;
}

/* A public read from S3, streamed: libcurl's multi interface is driven from the reader's
 * calls, so bytes move only as fast as the HTTP client takes them (a full buffer pauses the
 * transfer: TCP backpressure all the way to the store) and nothing is spooled to disk. */
#define READ_BUF (256 * 1024)

struct GwReader {
    CURLM *multi;
    CURL *easy;
    struct curl_slist *headers;
    char key[GW_PATH_MAX + 32];
    char *buf; /* bytes received, not yet read: buf[start .. start + len) */
    size_t cap, start, len;
    bool paused, done, headers_done;
    CURLcode result;
};

static size_t reader_header(char *data, size_t size, size_t n, void *ctx)
{
    GwReader *rd = ctx;
    size_t len = size * n;
    if (len <= 2 && (len == 0 || data[0] == '\r' || data[0] == '\n')) {
        long code = 0;
        curl_easy_getinfo(rd->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 200) /* not the end of a 100 Continue */
            rd->headers_done = true;
    }
    return len;
}

static size_t reader_write(char *data, size_t size, size_t n, void *ctx)
{
    GwReader *rd = ctx;
    size_t len = size * n;
    long code = 0;
    curl_easy_getinfo(rd->easy, CURLINFO_RESPONSE_CODE, &code);
    if (code != 200)
        return len; /* an error's body is not the object */
    if (rd->start > 0 && rd->start + rd->len + len > rd->cap) {
        memmove(rd->buf, rd->buf + rd->start, rd->len);
        rd->start = 0;
    }
    if (rd->len + len > rd->cap) {
        if (rd->len > 0) {
            rd->paused = true; /* delivered again once the client has taken what we hold */
            return CURL_WRITEFUNC_PAUSE;
        }
        char *b = realloc(rd->buf, len); /* one piece larger than the buffer */
        if (!b)
            return 0;
        rd->buf = b;
        rd->cap = len;
    }
    memcpy(rd->buf + rd->start + rd->len, data, len);
    rd->len += len;
    return len;
}

/* Runs the transfer until want() holds or it ends; false when it failed to make progress. */
static bool reader_drive(GwReader *rd, bool want_body)
{
    for (;;) {
        int running = 0;
        if (curl_multi_perform(rd->multi, &running) != CURLM_OK)
            return false;
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(rd->multi, &left)) != NULL)
            if (m->msg == CURLMSG_DONE) {
                rd->done = true;
                rd->result = m->data.result;
            }
        if (rd->done || (want_body ? rd->len > 0 : rd->headers_done))
            return true;
        if (rd->paused)
            return true; /* nothing will come before the client reads */
        if (curl_multi_poll(rd->multi, NULL, 0, 1000, NULL) != CURLM_OK)
            return false;
    }
}

void gw_storage_read_close(GwReader *rd)
{
    if (!rd)
        return;
    if (rd->multi && rd->easy)
        curl_multi_remove_handle(rd->multi, rd->easy);
    curl_easy_cleanup(rd->easy);
    curl_multi_cleanup(rd->multi);
    curl_slist_free_all(rd->headers);
    free(rd->buf);
    free(rd);
}

long gw_storage_read(GwReader *rd, char *buf, size_t max)
{
    if (rd->len == 0 && !rd->done && !reader_drive(rd, true))
        return -1;
    if (rd->len == 0) {
        if (rd->result != CURLE_OK) {
            log_warn("gateway.s3_read_cut", "key=%s error=%s", rd->key,
                     curl_easy_strerror(rd->result));
            return -1;
        }
        return 0;
    }
    size_t n = rd->len < max ? rd->len : max;
    memcpy(buf, rd->buf + rd->start, n);
    rd->start += n;
    rd->len -= n;
    if (rd->len == 0)
        rd->start = 0;
    if (rd->paused && rd->len == 0) {
        rd->paused = false;
        curl_easy_pause(rd->easy, CURLPAUSE_CONT); /* may call reader_write at once */
    }
    return (long)n;
}

/* Starts the GET of key and waits for the store's answer to the headers. */
static Status s3_read_open(GwStorage *s, const char *key, GwReader **out, long long *size)
{
    GwReader *rd = calloc(1, sizeof *rd);
    if (!rd)
        return STATUS_ERR_NOMEM;
    snprintf(rd->key, sizeof rd->key, "%s", key);
    rd->cap = READ_BUF;
    rd->buf = malloc(rd->cap);
    rd->multi = curl_multi_init();
    rd->easy = s3_easy(s, key);
    rd->headers = curl_slist_append(NULL, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
    if (!rd->buf || !rd->multi || !rd->easy || !rd->headers) {
        gw_storage_read_close(rd);
        return STATUS_ERR_NOMEM;
    }
    CURL *c = rd->easy;
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, rd->headers);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, reader_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, rd);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, reader_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, rd);
    if (curl_multi_add_handle(rd->multi, c) != CURLM_OK || !reader_drive(rd, false)) {
        gw_storage_read_close(rd);
        return STATUS_ERR_INTERNAL;
    }
    long code = 0;
    curl_off_t cl = -1;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
    Status st = STATUS_OK;
    if (rd->done && rd->result != CURLE_OK && !rd->headers_done) {
        log_error("gateway.s3_failed", "method=GET key=%s error=%s", key,
                  curl_easy_strerror(rd->result));
        st = STATUS_ERR_API;
    } else if (code == 404) {
        st = STATUS_ERR_NOT_FOUND;
    } else if (code != 200 || cl < 0) {
        log_error("gateway.s3_get_refused", "key=%s http_status=%ld", key, code);
        st = STATUS_ERR_API;
    }
    if (st != STATUS_OK) {
        gw_storage_read_close(rd);
        return st;
    }
    *out = rd;
    *size = (long long)cl;
    return STATUS_OK;
}

Status gw_storage_open(GwStorage *s, const char *key, bool head, int *fd, GwReader **reader,
                       long long *size)
{
    if (!key_ok(key))
        return STATUS_ERR_PARSE;
    if (!s->s3) {
        char path[CONFIG_STR_MAX + GW_PATH_MAX + 64];
        snprintf(path, sizeof path, "%s/%s", s->dir, key);
        int f = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (f < 0)
            return errno == ENOENT || errno == ENOTDIR ? STATUS_ERR_NOT_FOUND : STATUS_ERR_INTERNAL;
        struct stat sb;
        if (fstat(f, &sb) != 0 || !S_ISREG(sb.st_mode)) {
            close(f);
            return STATUS_ERR_NOT_FOUND;
        }
        *fd = f;
        *reader = NULL;
        *size = (long long)sb.st_size;
        return STATUS_OK;
    }
    if (!head) {
        *fd = -1;
        return s3_read_open(s, key, reader, size);
    }
    /* HEAD: the store's HEAD, never the body. */
    long http = 0;
    long long len = -1;
    Status st = s3_request(s, "HEAD", key, -1, 0, NULL, &http, &len);
    if (st != STATUS_OK)
        return st;
    if (http == 404)
        return STATUS_ERR_NOT_FOUND;
    if (http != 200 || len < 0) {
        log_error("gateway.s3_head_refused", "key=%s http_status=%ld", key, http);
        return STATUS_ERR_API;
    }
    *fd = -1;
    *reader = NULL;
    *size = len;
    return STATUS_OK;
}
