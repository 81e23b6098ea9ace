/* explain_cmd.h -- `orchestrator explain TASK_ID | --fleet [--json]` (explain_cmd.c). */
#ifndef ORCH_EXPLAIN_CMD_H
#define ORCH_EXPLAIN_CMD_H

#include "status.h"

Status cmd_explain(int argc, char **argv);

#endif
