/* sim_gen.c -- the policy lab's four trace generators: steady, bursty, diurnal and sparse (see
 * sim_trace.h, sim_trace_generate).
 *
 * Pure: every draw comes from a SimRng seeded with the spec's seed, so a spec is a trace.
 */
#include "sim_trace.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* Generators                                                                                  */

int sim_gen_kind_parse(const char *s, SimGenKind *out)
{
    static const SimGenKind all[] = {SIM_GEN_STEADY, SIM_GEN_BURSTY, SIM_GEN_DIURNAL,
                                     SIM_GEN_SPARSE};
    for (size_t i = 0; s && i < sizeof all / sizeof all[0]; i++)
        if (strcmp(s, sim_gen_kind_str(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    return -1;
}

const char *sim_gen_kind_str(SimGenKind kind)
{
    switch (kind) {
    case SIM_GEN_STEADY:
        return "steady";
    case SIM_GEN_BURSTY:
        return "bursty";
    case SIM_GEN_DIURNAL:
        return "diurnal";
    case SIM_GEN_SPARSE:
        return "sparse";
    }
    return "unknown";
}

/* Tasks per day of each kind when the spec does not say. */
static double default_per_day(SimGenKind kind)
{
    switch (kind) {
    case SIM_GEN_STEADY:
    case SIM_GEN_DIURNAL:
        return 4320; /* 3 a minute: about 3.4 GPUs busy on average */
    case SIM_GEN_BURSTY:
        return 600; /* about 13 bursts of 40 and a trickle */
    case SIM_GEN_SPARSE:
        return 24;
    }
    return 0;
}

typedef struct {
    const SimGenSpec *spec;
    SimRng rng;
    SimTrace *t;
    Status st;
} Gen;

/* Adds a task arriving at at_sec with a drawn duration and run type. */
static void gen_task(Gen *g, double at_sec)
{
    if (g->st != STATUS_OK)
        return;
    double d = sim_rng_lognormal(&g->rng, 60.0, 0.5);
    d = d < 5 ? 5 : d > 240 ? 240 : d;
    size_t n = g->spec->n_run_types;
    const char *rt = n ? g->spec->run_types[sim_rng_next(&g->rng) % n] : "gpu";
    g->st = sim_trace_add(g->t, llround(at_sec * 1000.0), rt, "generated", llround(d * 1000.0),
                          SIM_OUTCOME_OK, 0);
}

static void gen_poisson(Gen *g, double rate_per_sec, double span)
{
    for (double t = sim_rng_exponential(&g->rng, 1.0 / rate_per_sec); t < span;
         t += sim_rng_exponential(&g->rng, 1.0 / rate_per_sec))
        gen_task(g, t);
}

Status sim_trace_generate(const SimGenSpec *spec, SimTrace *out)
{
    double days = spec->days > 0 ? spec->days : 1;
    if (days > 366 || spec->tasks < 0 || spec->tasks > SIM_TRACE_MAX ||
        spec->n_run_types > SIM_TYPES_MAX || sim_gen_kind_str(spec->kind)[0] == 'u')
        return STATUS_ERR_USAGE;
    double span = days * 86400.0;
    double n = spec->tasks > 0 ? (double)spec->tasks : default_per_day(spec->kind) * days;
    SimTrace *t = calloc(1, sizeof *t);
    if (!t)
        return STATUS_ERR_NOMEM;
    Gen g = {.spec = spec, .t = t, .st = STATUS_OK};
    sim_rng_seed(&g.rng, spec->seed);

    switch (spec->kind) {
    case SIM_GEN_STEADY:
    case SIM_GEN_SPARSE:
        gen_poisson(&g, n / span, span);
        break;
    case SIM_GEN_BURSTY: {
        /* 90 % of the tasks in bursts of 20-60 (40 on average) spread over a minute, at
         * Poisson times; the rest a Poisson trickle. */
        double mean_gap = span / (n * 0.9 / 40.0);
        for (double b = sim_rng_exponential(&g.rng, mean_gap); b < span;
             b += sim_rng_exponential(&g.rng, mean_gap)) {
            long long size = 20 + (long long)(sim_rng_next(&g.rng) % 41);
            for (long long k = 0; k < size; k++)
                gen_task(&g, b + 60.0 * sim_rng_uniform(&g.rng));
        }
        gen_poisson(&g, n * 0.1 / span, span);
        break;
    }
    case SIM_GEN_DIURNAL: {
        /* rate(t) = base (1 - 0.8 cos(2 pi t / day)): 0.2x at midnight, 1.8x at noon; drawn by
         * thinning a Poisson process at the peak rate. */
        double base = n / span, peak = base * 1.8;
        for (double t0 = sim_rng_exponential(&g.rng, 1.0 / peak); t0 < span;
             t0 += sim_rng_exponential(&g.rng, 1.0 / peak)) {
            double rate = base * (1.0 - 0.8 * cos(6.283185307179586 * t0 / 86400.0));
            if (sim_rng_uniform(&g.rng) * peak < rate)
                gen_task(&g, t0);
        }
        break;
    }
    }
    if (g.st == STATUS_OK && t->n == 0)
        gen_task(&g, span / 2); /* never an empty trace */
    if (g.st != STATUS_OK) {
        Status st = g.st == STATUS_ERR_CAPACITY ? STATUS_ERR_USAGE : g.st;
        sim_trace_clear(t);
        free(t);
        return st;
    }
    sim_trace_finish(t);
    if (t->end_ms < llround(span * 1000.0))
        t->end_ms = llround(span * 1000.0);
    snprintf(t->label, sizeof t->label, "%s seed %llu", sim_gen_kind_str(spec->kind),
             (unsigned long long)spec->seed);
    *out = *t;
    free(t);
    return STATUS_OK;
}
