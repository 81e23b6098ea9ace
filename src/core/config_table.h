/* config_table.h -- the table of configuration variables (internal to the config_*.c modules).
 *
 * Pure: data only. One row per variable drives parsing (config.c), the redacted dump, the hash
 * and the help text (config_show.c), and env.example (tested).
 */
#ifndef ORCH_CONFIG_TABLE_H
#define ORCH_CONFIG_TABLE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

typedef enum { VT_INT, VT_DOUBLE, VT_BOOL, VT_STRING, VT_LIST, VT_ENUM, VT_URL } VarType;

typedef struct {
    const char *name;
    VarType type;
    size_t offset;
    size_t size;         /* capacity for strings */
    const char *def;     /* default, parsed by the same code; NULL = unset */
    double min, max;     /* numeric bounds, or length bounds for strings */
    bool secret;         /* never printed; excluded from the hash */
    const char *choices; /* VT_ENUM: "A|B|C" */
    const char *help;
} VarSpec;

/* The variables, in display order. */
extern const VarSpec CONFIG_VARS[];
extern const size_t CONFIG_N_VARS;

#endif
