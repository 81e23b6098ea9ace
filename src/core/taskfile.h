/* taskfile.h -- pure: tasks to submit, from flags or from a CSV / JSON-lines file, validated
 * before anything is inserted (all or nothing), and a few small parsers the operator commands
 * share. No I/O: callers pass the file's bytes. */
#ifndef ORCH_TASKFILE_H
#define ORCH_TASKFILE_H

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "status.h"

#define TASKFILE_MAX_TASKS 100000
#define TASKFILE_ERRORS_MAX 20
#define TASKFILE_ERROR_LEN 256

typedef struct {
    size_t count; /* errors found (only the first TASKFILE_ERRORS_MAX are kept) */
    char messages[TASKFILE_ERRORS_MAX][TASKFILE_ERROR_LEN];
} TaskfileErrors;

typedef enum { TASKFILE_CSV, TASKFILE_JSONL } TaskfileFormat;

/* Adds one task to *tasks (a cJSON array of objects {task_type, params, run_type, dependant_on,
 * max_attempts?}) after validating it: task_type non-empty (at most 200 characters), params a
 * JSON object (NULL or "" = {}), run_type of [a-z0-9_] (NULL or "" = "gpu"), depends_on a
 * comma list of UUIDs (NULL or "" = none), max_attempts in [1, 100] (0 = not set: the task
 * follows MAX_TASK_ATTEMPTS).
 * where names the source ("--type", "line 3") in error messages. Returns STATUS_OK or
 * STATUS_ERR_USAGE (errs says why), STATUS_ERR_NOMEM. */
Status taskfile_add(cJSON *tasks, const char *task_type, const char *params_json,
                    const char *run_type, const char *depends_on, int max_attempts,
                    const char *where, TaskfileErrors *errs);

/* Parses a whole file into *out (a new cJSON array; caller deletes). CSV: a header row naming
 * columns among task_type (required), params, run_type, depends_on, max_attempts; RFC 4180
 * quoting ("" inside quotes). JSON lines: one object per line with the same keys (params an
 * object, depends_on a string or an array of strings); blank lines and lines starting with '#'
 * are skipped. Every row is validated; any error means STATUS_ERR_USAGE and *out untouched. */
Status taskfile_parse(const char *data, size_t len, TaskfileFormat format, cJSON **out,
                      TaskfileErrors *errs);

/* Parses a duration such as "90", "30s", "15m", "2h", "7d" into seconds. Returns 0 and sets
 * *seconds, or -1. */
int taskfile_parse_duration(const char *s, long long *seconds);

/* True when s is a canonical UUID (8-4-4-4-12 hex digits). */
bool taskfile_is_uuid(const char *s);

#endif
