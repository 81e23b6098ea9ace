/* commands.h -- the run functions of the subcommands (see cli.c for the table). Shell module. */
#ifndef ORCH_COMMANDS_H
#define ORCH_COMMANDS_H

#include "status.h"

Status cmd_single(int argc, char **argv);
Status cmd_plan(int argc, char **argv);
Status cmd_continuous(int argc, char **argv);
Status cmd_migrate(int argc, char **argv);
Status cmd_config(int argc, char **argv);
Status cmd_version(int argc, char **argv);
Status cmd_status(int argc, char **argv);

#endif
