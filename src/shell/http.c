/* http.c -- the HTTP endpoint of `continuous` (see http.h).
 *
 * Shell module. The request handler runs in libmicrohttpd's polling thread: it reads only the
 * copies published under srv->mu and the /config text fixed at start. It must not log (the
 * logger belongs to the loop's thread), open database connections or call RunPod.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "log.h"

struct HttpServer {
    struct MHD_Daemon *daemon;
    pthread_mutex_t mu;
    long long interval_ms;
    char *config_json; /* fixed at start */

    /* published by the loop, read by the handler; all under mu */
    MetricsState metrics; /* before the first cycle: build info, limits, zero counters */
    char *summary_json;
    bool have_cycle;
    Status last_status;
    long long last_ok_ms; /* monotonic end of the last OK or LOCKED cycle; -1 none */
};

static long long monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool http_ready(long long now_ms, long long ok_ms, long long interval_ms, bool have_cycle,
                Status last)
{
    if (!have_cycle || ok_ms < 0 || last == STATUS_ERR_DB)
        return false;
    return now_ms - ok_ms <= 3 * interval_ms;
}

/* ------------------------------------------------------------------------------------------ */
/* Request handling (libmicrohttpd's thread)                                                   */

/* Queues a response that takes ownership of body (malloc'd; NULL = out of memory). */
static enum MHD_Result reply(struct MHD_Connection *conn, unsigned int code, const char *type,
                             char *body)
{
    if (!body)
        return MHD_NO; /* closes the connection */
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

static char *dup_text(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static char *readyz_body(HttpServer *srv, unsigned int *code)
{
    long long now = monotonic_ms();
    pthread_mutex_lock(&srv->mu);
    bool have = srv->have_cycle;
    Status last = srv->last_status;
    long long ok = srv->last_ok_ms;
    pthread_mutex_unlock(&srv->mu);

    bool ready = http_ready(now, ok, srv->interval_ms, have, last);
    const char *why = ready                   ? "ok"
                      : !have                 ? "no cycle has ended yet"
                      : last == STATUS_ERR_DB ? "the database failed in the last cycle"
                      : ok < 0                ? "no successful cycle yet"
                                              : "no successful cycle within 3 x the interval";
    char buf[320];
    snprintf(buf, sizeof buf,
             "{\"ready\":%s,\"reason\":\"%s\",\"last_cycle\":\"%s\",\"since_success_sec\":%.3f,"
             "\"limit_sec\":%.3f}\n",
             ready ? "true" : "false", why, have ? status_str(last) : "none",
             ok < 0 ? -1.0 : (double)(now - ok) / 1000.0, (double)(3 * srv->interval_ms) / 1000.0);
    *code = ready ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE;
    return dup_text(buf);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    (void)version;
    (void)upload_data;
    (void)con_cls;
    HttpServer *srv = cls;
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain",
                     dup_text("method not allowed\n"));
    if (*upload_data_size != 0) {
        *upload_data_size = 0; /* a GET body is ignored */
        return MHD_YES;
    }

    if (strcmp(url, "/metrics") == 0) {
        pthread_mutex_lock(&srv->mu);
        char *text = metrics_render(&srv->metrics);
        pthread_mutex_unlock(&srv->mu);
        return reply(conn, MHD_HTTP_OK, METRICS_CONTENT_TYPE, text);
    }
    if (strcmp(url, "/healthz") == 0)
        return reply(conn, MHD_HTTP_OK, "text/plain", dup_text("ok\n"));
    if (strcmp(url, "/readyz") == 0) {
        unsigned int code = MHD_HTTP_SERVICE_UNAVAILABLE;
        char *body = readyz_body(srv, &code);
        return reply(conn, code, "application/json", body);
    }
    if (strcmp(url, "/status") == 0) {
        pthread_mutex_lock(&srv->mu);
        char *body = srv->summary_json ? dup_text(srv->summary_json) : NULL;
        pthread_mutex_unlock(&srv->mu);
        if (!body)
            return reply(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "application/json",
                         dup_text("{\"error\":\"no cycle has ended yet\"}\n"));
        return reply(conn, MHD_HTTP_OK, "application/json", body);
    }
    if (strcmp(url, "/config") == 0)
        return reply(conn, MHD_HTTP_OK, "application/json", dup_text(srv->config_json));
    return reply(conn, MHD_HTTP_NOT_FOUND, "text/plain",
                 dup_text("not found: try /metrics /healthz /readyz /status /config\n"));
}

/* ------------------------------------------------------------------------------------------ */
/* Lifecycle (the loop's thread)                                                               */

Status http_start(const Config *cfg, int interval_sec, HttpServer **out)
{
    struct sockaddr_storage addr;
    memset(&addr, 0, sizeof addr);
    unsigned int flags = (unsigned int)MHD_USE_INTERNAL_POLLING_THREAD;
    struct sockaddr_in *v4 = (struct sockaddr_in *)(void *)&addr;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)(void *)&addr;
    if (inet_pton(AF_INET, cfg->metrics_bind_address, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)cfg->metrics_port);
    } else if (inet_pton(AF_INET6, cfg->metrics_bind_address, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)cfg->metrics_port);
        flags |= (unsigned int)MHD_USE_IPv6;
    } else {
        log_error("http.bad_address",
                  "address=%s msg=\"METRICS_BIND_ADDRESS must be an IPv4 or IPv6 literal, e.g. "
                  "0.0.0.0, 127.0.0.1 or ::\"",
                  cfg->metrics_bind_address);
        return STATUS_ERR_CONFIG;
    }

    HttpServer *srv = calloc(1, sizeof *srv);
    if (!srv)
        return STATUS_ERR_NOMEM;
    srv->interval_ms = (long long)interval_sec * 1000;
    srv->last_ok_ms = -1;
    metrics_init(&srv->metrics, cfg);
    srv->config_json = config_dump(cfg, true);
    if (!srv->config_json || pthread_mutex_init(&srv->mu, NULL) != 0) {
        free(srv->config_json);
        free(srv);
        return STATUS_ERR_NOMEM;
    }
    srv->daemon = MHD_start_daemon(flags, (uint16_t)cfg->metrics_port, NULL, NULL, on_request, srv,
                                   MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
                                   MHD_OPTION_CONNECTION_LIMIT, (unsigned int)64,
                                   MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)10, MHD_OPTION_END);
    if (!srv->daemon) {
        int err = errno;
        log_error("http.start_failed",
                  "address=%s port=%d error=%s msg=\"cannot serve /metrics; is the port in use? "
                  "set METRICS_PORT to a free port or 0 to turn the endpoint off\"",
                  cfg->metrics_bind_address, cfg->metrics_port, strerror(err));
        pthread_mutex_destroy(&srv->mu);
        free(srv->config_json);
        free(srv);
        return STATUS_ERR_INTERNAL;
    }
    log_info("http.start",
             "address=%s port=%d endpoints=\"/metrics /healthz /readyz /status "
             "/config\"",
             cfg->metrics_bind_address, cfg->metrics_port);
    *out = srv;
    return STATUS_OK;
}

void http_publish(HttpServer *srv, const MetricsState *m, const cJSON *summary, Status st)
{
    if (!srv)
        return;
    char *text = summary ? cJSON_PrintUnformatted(summary) : NULL;
    long long now = monotonic_ms();
    pthread_mutex_lock(&srv->mu);
    if (m)
        srv->metrics = *m;
    if (text) {
        char *old = srv->summary_json;
        srv->summary_json = text;
        text = old;
    }
    srv->have_cycle = true;
    srv->last_status = st;
    if (st == STATUS_OK || st == STATUS_LOCKED)
        srv->last_ok_ms = now;
    pthread_mutex_unlock(&srv->mu);
    free(text);
}

void http_stop(HttpServer *srv)
{
    if (!srv)
        return;
    MHD_stop_daemon(srv->daemon);
    pthread_mutex_destroy(&srv->mu);
    free(srv->summary_json);
    free(srv->config_json);
    free(srv);
    log_info("http.stop", "msg=\"metrics endpoint closed\"");
}
