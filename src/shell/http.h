/* http.h -- the HTTP endpoint of `continuous` (METRICS_PORT > 0), on libmicrohttpd.
 *
 * Shell module. GET /metrics (Prometheus text 0.0.4), /healthz (200 while the process runs),
 * /readyz (200 when the last successful cycle is recent and the database answered), /status
 * (the last cycle summary JSON) and /config (the redacted configuration JSON). The server runs
 * in libmicrohttpd's own thread and never touches the database, the RunPod client or the
 * logger: it serves copies that the loop publishes after each cycle (http_publish), under a
 * mutex. See structure_docs/metrics.md.
 */
#ifndef ORCH_HTTP_H
#define ORCH_HTTP_H

#include <cJSON.h>

#include "config.h"
#include "metrics.h"
#include "status.h"

typedef struct HttpServer HttpServer;

/* Starts the server on METRICS_BIND_ADDRESS:METRICS_PORT (IPv4 or IPv6 literal). interval_sec
 * is the loop's interval: /readyz wants a successful cycle within 3 x interval_sec. cfg is
 * borrowed for the call only (the redacted /config document is copied). Returns STATUS_OK and
 * sets *out (stop with http_stop); STATUS_ERR_CONFIG when the address is not an IP literal;
 * STATUS_ERR_INTERNAL when the socket cannot be bound (port in use: logged); STATUS_ERR_NOMEM. */
Status http_start(const Config *cfg, int interval_sec, HttpServer **out);

/* Publishes the result of one cycle: a copy of m (may be NULL: /metrics keeps the previous
 * copy), the summary text (may be NULL) and the cycle's status. srv may be NULL (no server:
 * nothing happens). Called from the loop's thread; cannot fail (out of memory keeps the
 * previous summary). */
void http_publish(HttpServer *srv, const MetricsState *m, const cJSON *summary, Status st);

/* Stops the server, waiting for its thread, and frees it. NULL-safe. */
void http_stop(HttpServer *srv);

/* Readiness rule of /readyz, separated for tests: ready when a cycle ended OK or LOCKED
 * within 3 x interval_ms before now_ms (ok_ms < 0: never) and the last cycle's status is not a
 * database failure. Cannot fail. */
bool http_ready(long long now_ms, long long ok_ms, long long interval_ms, bool have_cycle,
                Status last);

#endif
