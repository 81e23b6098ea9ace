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

struct GwUpload {
    GwStorage *s;
    char key[GW_PATH_MAX + 32];
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

/* One signed request: method "PUT" (body from fd, size bytes), "GET" (body into fd), "HEAD" or
 * "DELETE". *http gets the status; STATUS_ERR_API on a transport error (logged). */
static Status s3_request(GwStorage *s, const char *method, const char *key, int fd, long long size,
                         const char *content_type, long *http)
{
    CURL *c = curl_easy_init();
    if (!c)
        return STATUS_ERR_NOMEM;
    Feed feed = {fd, size};
    char url[CONFIG_URL_MAX + CONFIG_ITEM_MAX + GW_PATH_MAX + 8];
    snprintf(url, sizeof url, "%s/%s/%s", s->endpoint, s->bucket, key);
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
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_AWS_SIGV4, s->sigv4);
    curl_easy_setopt(c, CURLOPT_USERPWD, s->userpwd);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L); /* < 1 KiB/s for 60 s: give up */
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    CURLcode rc = curl_easy_perform(c);
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        log_error("gateway.s3_failed", "method=%s key=%s error=%s", method, key,
                  curl_easy_strerror(rc));
        return STATUS_ERR_API;
    }
    *http = code;
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
    u->put_status =
        s3_request(u->s, "PUT", u->key, u->rfd, u->declared, u->content_type, &u->put_http);
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

/* After a streamed PUT that did not complete: S3 itself refuses a body shorter than its
 * Content-Length, but not every S3-compatible server does (s3rver keeps what it got), so the
 * key is deleted to be sure no partial object stays. Best effort: logged, never fatal. */
static void drop_partial(GwUpload *u)
{
    long http = 0;
    if (s3_request(u->s, "DELETE", u->key, -1, 0, NULL, &http) == STATUS_OK &&
        (http < 200 || http > 299) && http != 404)
        log_warn("gateway.s3_delete_refused", "key=%s http_status=%ld", u->key, http);
    else
        log_info("gateway.upload_dropped", "key=%s bytes=%lld declared=%lld", u->key, u->size,
                 u->declared);
}

Status gw_storage_begin(GwStorage *s, const char *key, const char *content_type, long long size,
                        GwUpload **out)
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
    snprintf(u->content_type, sizeof u->content_type, "%s",
             content_type && content_type[0] ? content_type : gw_storage_content_type(key));
    if (s->s3) {
        /* A declared length is streamed straight to the store; a chunked body is spooled,
         * since S3 wants the length before the first byte. */
        if (size < 0 || !start_stream(u, size))
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
        drop_partial(u);
    }
    if (u->fd >= 0)
        close(u->fd);
    if (!u->s->s3 && u->tmp_path[0])
        unlink(u->tmp_path);
    free(u);
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
    } else if (u->streaming) {
        bool whole = u->size == u->declared;
        finish_stream(u);
        st = u->put_status;
        if (st == STATUS_OK && (!whole || u->put_http < 200 || u->put_http > 299)) {
            log_error("gateway.s3_put_refused", "key=%s http_status=%ld bytes=%lld declared=%lld",
                      u->key, u->put_http, u->size, u->declared);
            st = STATUS_ERR_API;
        }
        if (st != STATUS_OK)
            drop_partial(u);
    } else if (lseek(u->fd, 0, SEEK_SET) == 0) {
        long http = 0;
        st = s3_request(u->s, "PUT", u->key, u->fd, u->size, u->content_type, &http);
        if (st == STATUS_OK && (http < 200 || http > 299)) {
            log_error("gateway.s3_put_refused", "key=%s http_status=%ld", u->key, http);
            st = STATUS_ERR_API;
        }
    }
    gw_storage_abort(u);
    return st;
}

Status gw_storage_put(GwStorage *s, const char *key, const char *content_type,
                      const unsigned char *data, size_t n)
{
    GwUpload *u = NULL;
    Status st = gw_storage_begin(s, key, content_type, (long long)n, &u);
    if (st != STATUS_OK)
        return st;
    st = gw_storage_write(u, data, n);
    if (st != STATUS_OK) {
        gw_storage_abort(u);
        return st;
    }
    return gw_storage_commit(u);
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
    Status st = s3_request(s, "HEAD", key, -1, 0, NULL, &http);
    if (st != STATUS_OK)
        return st;
    if (http != 200 && http != 404) {
        log_error("gateway.s3_head_refused", "key=%s http_status=%ld", key, http);
        return STATUS_ERR_API;
    }
    *exists = http == 200;
    return STATUS_OK;
}

Status gw_storage_open(GwStorage *s, const char *key, int *fd, long long *size)
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
        *size = (long long)sb.st_size;
        return STATUS_OK;
    }
    int f = spool_file(s);
    if (f < 0)
        return STATUS_ERR_INTERNAL;
    long http = 0;
    Status st = s3_request(s, "GET", key, f, 0, NULL, &http);
    if (st == STATUS_OK && http == 404)
        st = STATUS_ERR_NOT_FOUND;
    else if (st == STATUS_OK && http != 200) {
        log_error("gateway.s3_get_refused", "key=%s http_status=%ld", key, http);
        st = STATUS_ERR_API;
    }
    off_t end = st == STATUS_OK ? lseek(f, 0, SEEK_END) : -1;
    if (st == STATUS_OK && (end < 0 || lseek(f, 0, SEEK_SET) != 0))
        st = STATUS_ERR_INTERNAL;
    if (st != STATUS_OK) {
        close(f);
        return st;
    }
    *fd = f;
    *size = (long long)end;
    return STATUS_OK;
}
