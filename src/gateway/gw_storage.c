/* gw_storage.c -- local and S3 storage of the workers' outputs (see gw_storage.h).
 *
 * Gateway module. Keys are checked with gw_object_path_ok before any file or URL is made of
 * them. The S3 requests themselves are gw_s3.c's.
 */
#include "gw_storage.h"

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
#include "gw_s3.h"
#include "log.h"

struct GwStorage {
    bool s3;
    char dir[CONFIG_STR_MAX]; /* local root; also where S3 spool files go */
    GwS3 store;
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
    snprintf(s->store.endpoint, sizeof s->store.endpoint, "%s", cfg->storage_s3_endpoint);
    snprintf(s->store.bucket, sizeof s->store.bucket, "%s", cfg->storage_s3_bucket);
    snprintf(s->store.sigv4, sizeof s->store.sigv4, "aws:amz:%s:s3", cfg->storage_s3_region);
    snprintf(s->store.userpwd, sizeof s->store.userpwd, "%s:%s", cfg->storage_s3_access_key_id,
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
             s->dir, s->s3 ? s->store.endpoint : "", s->s3 ? s->store.bucket : "");
    *out = s;
    return STATUS_OK;
}

void gw_storage_free(GwStorage *s)
{
    if (!s)
        return;
    memset(s->store.userpwd, 0, sizeof s->store.userpwd);
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
    u->put_status = gw_s3_request(&u->s->store, "PUT", u->tmp_key, u->rfd, u->declared,
                                  u->content_type, &u->put_http, NULL);
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
    if (gw_s3_request(&u->s->store, "DELETE", u->tmp_key, -1, 0, NULL, &http, NULL) != STATUS_OK ||
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
    Status st = gw_s3_request(&u->s->store, "PUT", u->tmp_key, u->fd, u->size, u->content_type,
                              &http, NULL);
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
            st = gw_s3_copy(&u->s->store, u->tmp_key, u->key);
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
    Status st = gw_s3_request(&s->store, "HEAD", key, -1, 0, NULL, &http, NULL);
    if (st != STATUS_OK)
        return st;
    if (http != 200 && http != 404) {
        log_error("gateway.s3_head_refused", "key=%s http_status=%ld", key, http);
        return STATUS_ERR_API;
    }
    *exists = http == 200;
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
        return gw_s3_read_open(&s->store, key, reader, size);
    }
    /* HEAD: the store's HEAD, never the body. */
    long http = 0;
    long long len = -1;
    Status st = gw_s3_request(&s->store, "HEAD", key, -1, 0, NULL, &http, &len);
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
