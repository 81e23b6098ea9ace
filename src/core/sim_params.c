/* sim_params.c -- the parameters of the simulated world: SIM_* variables over built-in
 * defaults (see sim_model.h, structure_docs/simulation.md).
 *
 * Pure: reads only the envp array it is given. The built-in prices and speeds are assumptions
 * for the lab, not RunPod's catalog: override them with SIM_GPU (or rebuild them from a
 * recorded run with `simulate --from-db`).
 */
#include "sim_model.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Price per hour (secure cloud, one GPU) and speed (duration multiplier against the RTX 4090)
 * of a few common types. */
static const struct {
    const char *name;
    double price, speed;
} BUILT_IN[] = {
    {"NVIDIA GeForce RTX 4090", 0.69, 1.00},
    {"NVIDIA GeForce RTX 3090", 0.44, 1.70},
    {"NVIDIA RTX A5000", 0.27, 1.80},
    {"NVIDIA RTX A6000", 0.49, 1.40},
    {"NVIDIA L40S", 0.86, 0.85},
    {"NVIDIA A100 80GB PCIe", 1.64, 0.60},
    {"NVIDIA H100 80GB HBM3", 2.69, 0.40},
};

#define N_BUILT_IN (sizeof BUILT_IN / sizeof BUILT_IN[0])

static void add_error(ConfigErrors *errs, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void add_error(ConfigErrors *errs, const char *fmt, ...)
{
    if (errs->count >= CONFIG_ERRORS_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(errs->messages[errs->count++], CONFIG_ERROR_LEN, fmt, ap);
    va_end(ap);
}

static const char *lookup(const char *const *envp, const char *name)
{
    size_t n = strlen(name);
    for (const char *const *e = envp; e && *e; e++)
        if (strncmp(*e, name, n) == 0 && (*e)[n] == '=')
            return (*e)[n + 1] ? *e + n + 1 : NULL;
    return NULL;
}

/* A number in [lo, hi] from s; 0, or -1 after an error naming what. */
static int number(const char *s, const char *what, double lo, double hi, double *out,
                  ConfigErrors *errs)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v) || v < lo || v > hi) {
        add_error(errs, "config: invalid value \"%.60s\" for %s: expected number in [%g, %g]", s,
                  what, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

/* Sets *out from variable name when it is set. */
static void env_number(const char *const *envp, const char *name, double lo, double hi, double *out,
                       ConfigErrors *errs)
{
    const char *s = lookup(envp, name);
    if (s)
        number(s, name, lo, hi, out, errs);
}

static void env_count(const char *const *envp, const char *name, double lo, double hi,
                      long long *out, ConfigErrors *errs)
{
    double v = (double)*out;
    const char *s = lookup(envp, name);
    if (s && number(s, name, lo, hi, &v, errs) == 0) {
        if (v != floor(v))
            add_error(errs, "config: invalid value \"%.60s\" for %s: expected a whole number", s,
                      name);
        *out = (long long)v;
    }
}

const char *sim_policy_str(SimPolicyKind k)
{
    switch (k) {
    case SIM_POLICY_PLANNER:
        return "planner";
    case SIM_POLICY_LEGACY:
        return "legacy";
    case SIM_POLICY_KEDA:
        return "keda";
    case SIM_POLICY_RUNPOD:
        return "runpod";
    }
    return "unknown";
}

const char *sim_choice_str(SimGpuChoice c)
{
    switch (c) {
    case SIM_CHOICE_ORDERED:
        return "ordered";
    case SIM_CHOICE_CHEAPEST:
        return "cheapest";
    case SIM_CHOICE_VALUE:
        return "value";
    }
    return "unknown";
}

SimGpu sim_params_gpu(const SimParams *p, const char *name)
{
    for (size_t i = 0; i < p->n_gpus; i++)
        if (strcmp(p->gpus[i].name, name) == 0)
            return p->gpus[i];
    SimGpu g = p->fallback;
    snprintf(g.name, sizeof g.name, "%s", name);
    return g;
}

/* Index of the entry named name in p->gpus, added (from the fallback) when absent; -1 full. */
static int gpu_slot(SimParams *p, const char *name)
{
    for (size_t i = 0; i < p->n_gpus; i++)
        if (strcmp(p->gpus[i].name, name) == 0)
            return (int)i;
    if (p->n_gpus >= SIM_GPUS_MAX)
        return -1;
    SimGpu *g = &p->gpus[p->n_gpus];
    *g = p->fallback;
    snprintf(g->name, sizeof g->name, "%s", name);
    return (int)p->n_gpus++;
}

/* One SIM_GPU entry, "NAME:key=value,key=value". */
static void parse_gpu_entry(SimParams *p, const char *s, size_t n, ConfigErrors *errs)
{
    char entry[512];
    if (n >= sizeof entry) {
        add_error(errs, "config: SIM_GPU entry longer than %zu characters", sizeof entry - 1);
        return;
    }
    memcpy(entry, s, n);
    entry[n] = '\0';
    char *colon = strchr(entry, ':');
    if (colon)
        *colon = '\0';
    char *name = entry;
    while (*name == ' ')
        name++;
    size_t nl = strlen(name);
    while (nl > 0 && name[nl - 1] == ' ')
        name[--nl] = '\0';
    if (!name[0] || nl >= SNAP_NAME_MAX) {
        add_error(errs, "config: invalid SIM_GPU entry \"%.60s\": expected NAME:key=value,...",
                  entry);
        return;
    }
    int slot = gpu_slot(p, name);
    if (slot < 0) {
        add_error(errs, "config: SIM_GPU names more than %d GPU types", SIM_GPUS_MAX);
        return;
    }
    SimGpu *g = &p->gpus[slot];
    static const struct {
        const char *key;
        size_t offset;
        double lo, hi;
    } KEYS[] = {
        {"price", offsetof(SimGpu, price_per_hr), 0, 1000},
        {"speed", offsetof(SimGpu, speed), 0.01, 100},
        {"boot", offsetof(SimGpu, boot_median_sec), 0, 86400},
        {"boot_sigma", offsetof(SimGpu, boot_sigma), 0, 3},
        {"restart", offsetof(SimGpu, restart_median_sec), 0, 86400},
        {"restart_sigma", offsetof(SimGpu, restart_sigma), 0, 3},
        {"no_capacity", offsetof(SimGpu, no_capacity), 0, 1},
        {"crash", offsetof(SimGpu, crash_at_start), 0, 1},
        {"restart_fail", offsetof(SimGpu, restart_fail), 0, 1},
        {"storage", offsetof(SimGpu, storage_per_hr), 0, 1000},
    };
    for (char *kv = colon ? colon + 1 : NULL; kv && *kv;) {
        char *comma = strchr(kv, ',');
        if (comma)
            *comma = '\0';
        char *eq = strchr(kv, '=');
        bool done = false;
        for (size_t k = 0; eq && k < sizeof KEYS / sizeof KEYS[0] && !done; k++) {
            if ((size_t)(eq - kv) == strlen(KEYS[k].key) &&
                strncmp(kv, KEYS[k].key, (size_t)(eq - kv)) == 0) {
                char what[SNAP_NAME_MAX + 32];
                snprintf(what, sizeof what, "SIM_GPU %.100s %s", name, KEYS[k].key);
                number(eq + 1, what, KEYS[k].lo, KEYS[k].hi,
                       (double *)(void *)((char *)g + KEYS[k].offset), errs);
                done = true;
            }
        }
        if (!done)
            add_error(errs,
                      "config: invalid SIM_GPU setting \"%.60s\" for %s: expected price, speed, "
                      "boot, boot_sigma, restart, restart_sigma, no_capacity, crash, "
                      "restart_fail or storage = number",
                      kv, name);
        kv = comma ? comma + 1 : NULL;
    }
}

static void parse_choice(const char *s, const char *name, SimGpuChoice *out, ConfigErrors *errs)
{
    static const SimGpuChoice all[] = {SIM_CHOICE_ORDERED, SIM_CHOICE_CHEAPEST, SIM_CHOICE_VALUE};
    for (size_t i = 0; i < 3; i++)
        if (strcmp(s, sim_choice_str(all[i])) == 0) {
            *out = all[i];
            return;
        }
    add_error(errs, "config: invalid value \"%.60s\" for %s: expected ordered, cheapest or value",
              s, name);
}

Status sim_params_parse(const char *const *envp, SimParams *out, ConfigErrors *errs)
{
    SimParams *p = calloc(1, sizeof *p);
    if (!p)
        return STATUS_ERR_NOMEM;
    memset(errs, 0, sizeof *errs);
    p->policy = SIM_POLICY_PLANNER;
    p->gpu_choice = SIM_CHOICE_ORDERED;
    p->value_min_samples = 5;
    p->fallback = (SimGpu){.price_per_hr = 0.69,
                           .speed = 1.0,
                           .boot_median_sec = 90,
                           .boot_sigma = 0.35,
                           .restart_median_sec = 20,
                           .restart_sigma = 0.3,
                           .no_capacity = 0.02,
                           .crash_at_start = 0.01,
                           .restart_fail = 0.1,
                           .storage_per_hr = 0.014};
    p->worker_poll_sec = 10;
    p->poll_after_task_sec = 1;
    p->heartbeat_sec = 20;
    p->notify_debounce_sec = 0.2;
    p->warm_stopped_pods = 0;
    p->stopped_max_age_sec = 86400;
    p->drain_sec = 3600;
    p->max_extra_sec = 7 * 86400;
    p->initial_idle_sec = 600;
    p->seed = 1;

    const char *s = lookup(envp, "SIM_POLICY");
    if (s) {
        static const SimPolicyKind all[] = {SIM_POLICY_PLANNER, SIM_POLICY_LEGACY, SIM_POLICY_KEDA,
                                            SIM_POLICY_RUNPOD};
        bool ok = false;
        for (size_t i = 0; i < 4 && !ok; i++)
            if (strcmp(s, sim_policy_str(all[i])) == 0) {
                p->policy = all[i];
                ok = true;
            }
        if (!ok)
            add_error(errs,
                      "config: invalid value \"%.60s\" for SIM_POLICY: expected planner, legacy, "
                      "keda or runpod",
                      s);
    }
    if ((s = lookup(envp, "SIM_GPU_CHOICE")) != NULL)
        parse_choice(s, "SIM_GPU_CHOICE", &p->gpu_choice, errs);
    else if ((s = lookup(envp, "RUNPOD_GPU_CHOICE")) != NULL)
        parse_choice(s, "RUNPOD_GPU_CHOICE", &p->gpu_choice, errs);
    long long v = p->value_min_samples;
    env_count(envp, "SIM_VALUE_MIN_SAMPLES", 1, 1000, &v, errs);
    p->value_min_samples = (int)v;

    SimGpu *f = &p->fallback;
    env_number(envp, "SIM_PRICE_USD_PER_HR", 0, 1000, &f->price_per_hr, errs);
    env_number(envp, "SIM_SPEED", 0.01, 100, &f->speed, errs);
    env_number(envp, "SIM_BOOT_SEC", 0, 86400, &f->boot_median_sec, errs);
    env_number(envp, "SIM_BOOT_SIGMA", 0, 3, &f->boot_sigma, errs);
    env_number(envp, "SIM_RESTART_SEC", 0, 86400, &f->restart_median_sec, errs);
    env_number(envp, "SIM_RESTART_SIGMA", 0, 3, &f->restart_sigma, errs);
    env_number(envp, "SIM_NO_CAPACITY", 0, 1, &f->no_capacity, errs);
    env_number(envp, "SIM_CRASH_AT_START", 0, 1, &f->crash_at_start, errs);
    env_number(envp, "SIM_RESTART_FAIL", 0, 1, &f->restart_fail, errs);
    env_number(envp, "SIM_STORAGE_USD_PER_HR", 0, 1000, &f->storage_per_hr, errs);
    /* Built-in types: their price and speed, the rest from the (overridable) fallback. */
    for (size_t i = 0; i < N_BUILT_IN; i++) {
        SimGpu *g = &p->gpus[p->n_gpus++];
        *g = *f;
        snprintf(g->name, sizeof g->name, "%s", BUILT_IN[i].name);
        g->price_per_hr = BUILT_IN[i].price;
        g->speed = BUILT_IN[i].speed;
    }
    if ((s = lookup(envp, "SIM_GPU")) != NULL)
        for (const char *e = s; *e;) {
            size_t n = strcspn(e, ";");
            if (n > 0)
                parse_gpu_entry(p, e, n, errs);
            e += n + (e[n] == ';' ? 1 : 0);
        }

    env_number(envp, "SIM_WORKER_POLL_SEC", 0.01, 3600, &p->worker_poll_sec, errs);
    env_number(envp, "SIM_WORKER_POLL_AFTER_TASK_SEC", 0, 3600, &p->poll_after_task_sec, errs);
    env_number(envp, "SIM_HEARTBEAT_SEC", 0.01, 3600, &p->heartbeat_sec, errs);
    env_number(envp, "SIM_NOTIFY_DEBOUNCE_SEC", 0, 60, &p->notify_debounce_sec, errs);
    v = p->warm_stopped_pods;
    env_count(envp,
              lookup(envp, "SIM_WARM_STOPPED_PODS") ? "SIM_WARM_STOPPED_PODS" : "WARM_STOPPED_PODS",
              0, 1000, &v, errs);
    p->warm_stopped_pods = (int)v;
    env_count(envp,
              lookup(envp, "SIM_STOPPED_POD_MAX_AGE_SEC") ? "SIM_STOPPED_POD_MAX_AGE_SEC"
                                                          : "STOPPED_POD_MAX_AGE_SEC",
              1, 31536000, &p->stopped_max_age_sec, errs);
    env_count(envp, "SIM_DRAIN_SEC", 0, 31536000, &p->drain_sec, errs);
    env_count(envp, "SIM_MAX_EXTRA_SEC", 0, 31536000, &p->max_extra_sec, errs);
    env_number(envp, "SIM_INITIAL_IDLE_SEC", 0, 31536000, &p->initial_idle_sec, errs);
    if ((s = lookup(envp, "SIM_SEED")) != NULL) {
        char *end = NULL;
        errno = 0;
        unsigned long long seed = strtoull(s, &end, 10);
        if (errno || end == s || *end != '\0' || s[0] == '-')
            add_error(errs,
                      "config: invalid value \"%.60s\" for SIM_SEED: expected a whole number >= 0",
                      s);
        else
            p->seed = seed;
    }
    Status st = STATUS_ERR_CONFIG;
    if (errs->count == 0) {
        *out = *p;
        st = STATUS_OK;
    }
    free(p);
    return st;
}
