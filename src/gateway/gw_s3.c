/* gw_s3.c -- signed requests to an S3-compatible store (see gw_s3.h).
 *
 * Gateway module. Requests are signed by libcurl (CURLOPT_AWS_SIGV4); no signing code lives
 * here.
 */
#include "gw_s3.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gw_request.h"
#include "log.h"

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
static CURL *s3_easy(const GwS3 *s, const char *key)
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

Status gw_s3_request(const GwS3 *s, const char *method, const char *key, int fd, long long size,
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

/* The store answers a copy when it is done, which for a large object can take a while with
 * nothing on the wire, so the low-speed limit gives way to an overall one. */
Status gw_s3_copy(const GwS3 *s, const char *from, const char *to)
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

/* Starts the GET and waits for the store's answer to the headers. */
Status gw_s3_read_open(const GwS3 *s, const char *key, GwReader **out, long long *size)
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
