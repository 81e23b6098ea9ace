/* commands.h -- the run functions of the subcommands (see cli.c for the table). Shell module. */
#ifndef ORCH_COMMANDS_H
#define ORCH_COMMANDS_H

#include "config.h"
#include "status.h"

Status cmd_single(int argc, char **argv);
Status cmd_plan(int argc, char **argv);
Status cmd_continuous(int argc, char **argv);
Status cmd_migrate(int argc, char **argv);
Status cmd_config(int argc, char **argv);
Status cmd_version(int argc, char **argv);
Status cmd_status(int argc, char **argv);
Status cmd_reconcile(int argc, char **argv);
Status cmd_spawn(int argc, char **argv);
Status cmd_terminate(int argc, char **argv);
Status cmd_shutdown_all(int argc, char **argv);

/* Parses the configuration from the environment (printing every error, exit 3) and sets up
 * logging and secret scrubbing; *out is malloc'd (free it). Shared by the operator commands. */
Status commands_load_config(unsigned needs, Config **out);

/* Operator commands (operate.c). */
Status cmd_submit(int argc, char **argv);
Status cmd_logs(int argc, char **argv);

#endif
