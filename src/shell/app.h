/* app.h -- what one run of the program holds: the configuration and its connections.
 * Plain data shared by the shell modules (loop, actuator, commands). */
#ifndef ORCH_APP_H
#define ORCH_APP_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "config.h"
#include "planner.h"

struct RunpodClient;
struct Lease;        /* lease.h */
struct MetricsState; /* metrics.h */
struct HttpServer;   /* http.h */

typedef struct {
    const Config *cfg;
    PGconn *conn;            /* owned; NULL until connected */
    struct RunpodClient *rp; /* owned; NULL when no API key (SAFE_MODE) */
    const char *command;     /* "single", "continuous", ... */
    bool dry_run;            /* --dry-run, `plan`, or SAFE_MODE */
    char config_hash[17];
    struct MetricsState *metrics; /* owned by the command; NULL = no metrics (issue 6) */
    struct HttpServer *http;      /* owned by the command; NULL = no HTTP endpoint */
    const ManualRequest *manual;  /* an operator's request planned instead of the cycle */
    ManualResult manual_result;   /* set by loop_cycle: what the operator's request found */
    bool manual_pods_listed;      /* set by loop_cycle: the pod list was read for it */
    struct Lease *lease; /* owned; the cycle lease (lease.h), NULL until a cycle first takes it;
                            actions are fenced by it (lease_verify) */
} App;

#endif
