/* gateway.h -- `orchestrator gateway`: the HTTP face of the worker contract.
 *
 * Gateway layer (src/gateway: uses the shell and the core, used by the cli). A libmicrohttpd
 * server speaking the Supabase-style dialect of the reference worker, Headless-Wan2GP
 * (shared/reference/headless-worker-interface.md): the heartbeat RPC, the edge functions
 * task-counts, claim-next-task, update-task-status, complete_task and generate-upload-url, the
 * lost-claim PostgREST query, signed uploads and public file reads. Each request is
 * authenticated by the pod's worker token (worker_token.h), acts only for that worker, and
 * becomes one call of a func_gateway_* SQL function (sql/migrations/0006_gateway.sql) over a
 * bounded pool of connections of a role that holds only orchestrator_worker. The route table
 * and every rule are in structure_docs/gateway.md.
 *
 * Threads: one per connection (libmicrohttpd), up to GATEWAY_MAX_CONNECTIONS; they share the
 * pool and the storage backend. Requests log from these threads (log lines only; the database
 * log sink stays with the thread that installed it).
 */
#ifndef ORCH_GATEWAY_H
#define ORCH_GATEWAY_H

#include "config.h"
#include "status.h"

typedef struct Gateway Gateway;

/* Starts the gateway on GATEWAY_BIND_ADDRESS and port (cfg->gateway_port when port < 0; 0 = any
 * free port, see gateway_port), with its connection pool (GATEWAY_DATABASE_URL, else
 * DATABASE_URL) and storage backend. cfg must have been parsed with CONFIG_NEED_GATEWAY (a
 * secret is set); it is copied from, not kept. Returns STATUS_OK and *out (gateway_stop it);
 * STATUS_ERR_CONFIG (bad address, unusable STORAGE_DIR: logged); STATUS_ERR_DB when the
 * database cannot be reached (logged); STATUS_ERR_INTERNAL when the port cannot be bound
 * (logged); STATUS_ERR_NOMEM. */
Status gateway_start(const Config *cfg, int port, Gateway **out);

/* The port the gateway listens on (the one chosen when started with port 0). */
int gateway_port(const Gateway *g);

/* The base URL the gateway hands out in upload and file URLs (GATEWAY_PUBLIC_URL, or
 * http://<bind address>:<port> when unset). */
const char *gateway_public_url(const Gateway *g);

/* Stops serving (waiting for running requests), closes the pool and frees g. NULL-safe. */
void gateway_stop(Gateway *g);

#endif
