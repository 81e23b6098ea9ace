/* commands.h -- the run functions of the subcommands (see cli.c for the table). Shell module. */
#ifndef ORCH_COMMANDS_H
#define ORCH_COMMANDS_H

#include <stdbool.h>

#include "app.h"
#include "config.h"
#include "status.h"

Status cmd_single(int argc, char **argv);
Status cmd_plan(int argc, char **argv);
Status cmd_continuous(int argc, char **argv);
Status cmd_migrate(int argc, char **argv);
Status cmd_config(int argc, char **argv);
Status cmd_version(int argc, char **argv);
Status cmd_status(int argc, char **argv);
Status cmd_spawn(int argc, char **argv);
Status cmd_terminate(int argc, char **argv);
Status cmd_shutdown_all(int argc, char **argv);

/* Parses the configuration from the environment (printing every error, exit 3) and sets up
 * logging and secret scrubbing; *out is malloc'd (free it). Shared by the operator commands. */
Status commands_load_config(unsigned needs, Config **out);

/* The few flags commands take. */
typedef struct {
    bool dry_run;
    bool json;
    bool terminate;
    int interval_sec; /* 0 = not given */
} CommandFlags;

/* Parses argv[1..] against the flags named in `allowed` ("dry-run json terminate interval").
 * An unknown flag or a bad value is a usage error (printed). *out is written only on success. */
Status commands_parse_flags(int argc, char **argv, const char *allowed, CommandFlags *out);

/* Fills app for one run of command: the configuration hash, the RunPod client (when a key is
 * set), database logging, and the run.start event. cfg is borrowed for the App's lifetime.
 * Returns STATUS_OK, STATUS_ERR_CONFIG (bad RunPod settings) or STATUS_ERR_INTERNAL. */
Status commands_app_open(App *app, const Config *cfg, const char *command, bool dry_run);

/* Closes the connection and the client of an App opened by commands_app_open. */
void commands_app_close(App *app);

/* `reconcile` (reconcile_cmd.c). */
Status cmd_reconcile(int argc, char **argv);

/* `gateway` (gateway_cmd.c): the worker gateway until SIGTERM. */
Status cmd_gateway(int argc, char **argv);
/* `simulate`, the policy lab (simulate_cmd.c). */
Status cmd_simulate(int argc, char **argv);

/* Operator commands (operate.c). */
Status cmd_submit(int argc, char **argv);
Status cmd_logs(int argc, char **argv);

#endif
