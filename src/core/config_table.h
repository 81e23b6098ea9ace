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

/* The row of the variable named name, or NULL. */
const VarSpec *config_var_spec(const char *name);

/* Appends a formatted message to errs (at most CONFIG_ERRORS_MAX). */
void config_add_error(ConfigErrors *errs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Value of NAME in envp, or NULL. Empty values count as unset. */
const char *config_env_lookup(const char *const *envp, const char *name);

/* Parses s as variable v into the struct at base (v->offset is relative to it). Returns 0, or
 * -1 after adding an error that names v->name, the value and what is accepted. */
int config_parse_value(const VarSpec *v, const char *s, void *base, ConfigErrors *errs);

/* Whether s[0..n) is a valid environment variable name (letters, digits, '_'). */
bool config_valid_env_name(const char *s, size_t n);

/* Parses POOLS and every POOL_<NAME>_<SETTING> after the global variables (config_pools.c):
 * fills cfg->pools (one pool `default` serving run_type gpu when POOLS is unset) and adds every
 * problem to errs. */
void config_parse_pools(const char *const *envp, Config *cfg, ConfigErrors *errs);

#endif
