/* gateway_cmd.c -- `orchestrator gateway [--port N]`: serves the worker gateway until SIGTERM
 * or SIGINT (see src/gateway/gateway.h and structure_docs/gateway.md).
 *
 * Cli module: parses the flags, loads the configuration (CONFIG_NEED_GATEWAY), starts the
 * server and waits for a signal with sigwait, so no handler runs on a request thread.
 */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "gateway.h"
#include "log.h"

Status cmd_gateway(int argc, char **argv)
{
    int port = -1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            char *end = NULL;
            long v = strtol(argv[++i], &end, 10);
            if (!end || *end || v < 0 || v > 65535) {
                fprintf(stderr, "orchestrator gateway: --port needs a number in [0, 65535] "
                                "(0: any free port, printed in the gateway.start event)\n");
                return STATUS_ERR_USAGE;
            }
            port = (int)v;
        } else {
            fprintf(stderr,
                    "orchestrator gateway: unknown argument '%s'; see `orchestrator gateway "
                    "--help`\n",
                    argv[i]);
            return STATUS_ERR_USAGE;
        }
    }
    Config *cfg = NULL;
    Status st = commands_load_config(CONFIG_NEED_GATEWAY, &cfg);
    if (st != STATUS_OK)
        return st;
    if (port < 0 && cfg->gateway_port == 0) {
        fprintf(stderr, "orchestrator gateway: GATEWAY_PORT is 0; set it (e.g. 8080) or pass "
                        "--port N\n");
        free(cfg);
        return STATUS_ERR_CONFIG;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("gateway.init_failed", "msg=\"curl_global_init failed\"");
        free(cfg);
        return STATUS_ERR_INTERNAL;
    }
    log_info("run.start", "version=%s command=gateway", ORCH_VERSION);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    Gateway *g = NULL;
    st = gateway_start(cfg, port, &g);
    if (st == STATUS_OK) {
        int sig = 0;
        sigwait(&set, &sig);
        log_info("gateway.signal", "signal=%d msg=\"stopping\"", sig);
    }
    gateway_stop(g);
    curl_global_cleanup();
    free(cfg);
    return st;
}
