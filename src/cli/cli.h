/* cli.h -- the command table and dispatch (tmux-style: each subcommand is data plus one run
 * function). Shell module. */
#ifndef ORCH_CLI_H
#define ORCH_CLI_H

#include <stddef.h>

#include "status.h"

typedef struct {
    const char *name;
    const char *args;                     /* usage after the name */
    const char *summary;                  /* one line */
    Status (*run)(int argc, char **argv); /* argv[0] is the command name */
} CliCommand;

/* Runs the command named by argv[1] (help when none). Returns the command's Status; usage
 * errors print a message naming the problem and the help command. */
Status cli_run(int argc, char **argv);

/* The table (for help and tests). */
const CliCommand *cli_commands(size_t *count);

#endif
