/* simulate_cmd.c -- `orchestrator simulate`: the policy lab (issue 15,
 * structure_docs/simulation.md).
 *
 * CLI module: reads the trace file, the --compare environment files and (only with --from-db)
 * the database; builds each run's environment (--set over the file over the process
 * environment), parses it exactly as a real run does, runs the pure simulator (sim_model.h) and
 * prints the report (sim_report.h). Needs neither DATABASE_URL nor RUNPOD_API_KEY, except that
 * --from-db reads the database DATABASE_URL names.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "config.h"
#include "db.h"
#include "db_trace.h"
#include "log.h"
#include "sim_model.h"
#include "sim_report.h"
#include "sim_trace.h"
#include "taskfile.h"

extern char **environ;

#define SETS_MAX 64
#define RUNS_MAX 16
#define ENV_FILE_MAX (1 << 20)

typedef struct {
    const char *trace_file;
    bool from_db;
    long long since_sec;
    bool generate;
    SimGenKind kind;
    unsigned long long seed;
    bool seed_given;
    long long tasks;
    double days;
    size_t n_sets;
    const char *sets[SETS_MAX];
    size_t n_compare;
    const char *compare[RUNS_MAX];
    bool json;
    const char *export_trace;
} SimArgs;

/* One run's environment: "NAME=value" strings, NULL-terminated, with its own storage. */
typedef struct {
    char label[SIM_LABEL_MAX];
    const char **envp;
    size_t n, cap;
    char *file_text; /* the env file's bytes the entries point into */
} RunEnv;

static Status usage(const char *msg, const char *arg)
{
    fprintf(stderr, "orchestrator simulate: %s%s%s; see `orchestrator simulate --help`\n", msg,
            arg ? " " : "", arg ? arg : "");
    return STATUS_ERR_USAGE;
}

static bool parse_ull(const char *s, unsigned long long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end != '\0' || s[0] == '-')
        return false;
    *out = v;
    return true;
}

static Status parse_args(int argc, char **argv, SimArgs *a)
{
    memset(a, 0, sizeof *a);
    a->seed = 1;
    a->since_sec = 7 * 86400;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        unsigned long long u;
        if (strcmp(s, "--json") == 0) {
            a->json = true;
        } else if (strcmp(s, "--from-db") == 0) {
            a->from_db = true;
        } else if (strcmp(s, "--compare") == 0) {
            while (i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
                if (a->n_compare >= RUNS_MAX)
                    return usage("--compare takes at most 16 files", NULL);
                a->compare[a->n_compare++] = argv[++i];
            }
            if (a->n_compare == 0)
                return usage("--compare needs environment files, such as", "a.env b.env");
            continue;
        } else if (!v) {
            return usage("missing value after", s);
        } else if (strcmp(s, "--trace") == 0) {
            a->trace_file = v;
            i++;
        } else if (strcmp(s, "--since") == 0) {
            if (taskfile_parse_duration(v, &a->since_sec) != 0 || a->since_sec <= 0 ||
                a->since_sec > SIM_TRACE_SPAN_MAX_MS / 1000)
                return usage("--since needs a duration such as 1h or 7d, at most 366d, not", v);
            i++;
        } else if (strcmp(s, "--generate") == 0) {
            if (sim_gen_kind_parse(v, &a->kind) != 0)
                return usage("--generate needs steady, bursty, diurnal or sparse, not", v);
            a->generate = true;
            i++;
        } else if (strcmp(s, "--seed") == 0) {
            if (!parse_ull(v, &a->seed))
                return usage("--seed needs a whole number >= 0, not", v);
            a->seed_given = true;
            i++;
        } else if (strcmp(s, "--tasks") == 0) {
            if (!parse_ull(v, &u) || u < 1 || u > SIM_TRACE_MAX)
                return usage("--tasks needs a number in [1, 2000000], not", v);
            a->tasks = (long long)u;
            i++;
        } else if (strcmp(s, "--days") == 0) {
            char *end = NULL;
            a->days = strtod(v, &end);
            if (!end || *end != '\0' || !(a->days > 0 && a->days <= 366))
                return usage("--days needs a number in (0, 366], not", v);
            i++;
        } else if (strcmp(s, "--set") == 0) {
            if (!strchr(v, '=') || v[0] == '=')
                return usage("--set needs KEY=VALUE, not", v);
            if (a->n_sets >= SETS_MAX)
                return usage("at most 64 --set", NULL);
            a->sets[a->n_sets++] = v;
            i++;
        } else if (strcmp(s, "--export-trace") == 0) {
            a->export_trace = v;
            i++;
        } else {
            return usage("unknown argument", s);
        }
    }
    int sources = (a->trace_file != NULL) + a->from_db + a->generate;
    if (sources != 1)
        return usage("give exactly one of --trace FILE, --from-db or --generate KIND", NULL);
    return STATUS_OK;
}

/* Reads a whole file (at most max bytes) into a NUL-terminated buffer. */
static Status read_file(const char *path, size_t max, char **out, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "orchestrator simulate: cannot open %s: %s\n", path, strerror(errno));
        return STATUS_ERR_USAGE;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    Status st = buf ? STATUS_OK : STATUS_ERR_NOMEM;
    while (st == STATUS_OK) {
        if (n == cap) {
            if (cap >= max) {
                fprintf(stderr, "orchestrator simulate: %s is larger than %zu bytes\n", path, max);
                st = STATUS_ERR_USAGE;
                break;
            }
            cap *= 2;
            char *p = realloc(buf, cap + 1);
            if (!p) {
                st = STATUS_ERR_NOMEM;
                break;
            }
            buf = p;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f)) {
                fprintf(stderr, "orchestrator simulate: cannot read %s\n", path);
                st = STATUS_ERR_USAGE;
            }
            break;
        }
    }
    fclose(f);
    if (st != STATUS_OK) {
        free(buf);
        return st;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return STATUS_OK;
}

static bool env_push(RunEnv *e, const char *entry)
{
    if (e->n + 2 > e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 256;
        const char **p = realloc(e->envp, cap * sizeof *p);
        if (!p)
            return false;
        e->envp = p;
        e->cap = cap;
    }
    e->envp[e->n++] = entry;
    e->envp[e->n] = NULL;
    return true;
}

/* Whether e already holds a value for entry's name (earlier entries win in config_parse). */
static bool env_has(const RunEnv *e, const char *entry)
{
    size_t k = strcspn(entry, "=");
    for (size_t i = 0; i < e->n; i++)
        if (strncmp(e->envp[i], entry, k) == 0 && e->envp[i][k] == '=')
            return true;
    return false;
}

/* Parses an environment file in place: NAME=value lines, `export ` allowed, '#' comments,
 * blank lines, values optionally quoted. Appends the entries not already set to e. */
static Status env_file(RunEnv *e, const char *path)
{
    char *text = NULL;
    size_t len = 0;
    Status st = read_file(path, ENV_FILE_MAX, &text, &len);
    if (st != STATUS_OK)
        return st;
    e->file_text = text;
    size_t line = 0;
    for (char *p = text; p && *p;) {
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        line++;
        char *s = p;
        p = nl ? nl + 1 : NULL;
        while (*s == ' ' || *s == '\t')
            s++;
        size_t n = strlen(s);
        while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
            s[--n] = '\0';
        if (!*s || *s == '#')
            continue;
        if (strncmp(s, "export ", 7) == 0)
            s += 7;
        char *eq = strchr(s, '=');
        if (!eq || eq == s) {
            fprintf(stderr, "orchestrator simulate: %s line %zu: expected NAME=value\n", path,
                    line);
            return STATUS_ERR_USAGE;
        }
        char *val = eq + 1;
        size_t vn = strlen(val);
        if (vn >= 2 && (val[0] == '"' || val[0] == '\'') && val[vn - 1] == val[0]) {
            memmove(val, val + 1, vn - 2);
            val[vn - 2] = '\0';
        }
        if (!env_has(e, s) && !env_push(e, s))
            return STATUS_ERR_NOMEM;
    }
    return STATUS_OK;
}

/* A run's environment: --set, then the file (when any), then the process environment. */
static Status build_env(const SimArgs *a, const char *file, RunEnv *e)
{
    memset(e, 0, sizeof *e);
    for (size_t i = 0; i < a->n_sets; i++)
        if (!env_has(e, a->sets[i]) && !env_push(e, a->sets[i]))
            return STATUS_ERR_NOMEM;
    if (file) {
        Status st = env_file(e, file);
        if (st != STATUS_OK)
            return st;
        const char *base = strrchr(file, '/');
        base = base ? base + 1 : file;
        snprintf(e->label, sizeof e->label, "%.*s", (int)strcspn(base, "."), base);
    } else {
        snprintf(e->label, sizeof e->label, "current");
    }
    for (char **v = environ; v && *v; v++)
        if (!env_has(e, *v) && !env_push(e, *v))
            return STATUS_ERR_NOMEM;
    if (!e->envp) { /* nothing at all: an empty environment */
        e->envp = calloc(1, sizeof *e->envp);
        if (!e->envp)
            return STATUS_ERR_NOMEM;
    }
    return STATUS_OK;
}

static void env_clear(RunEnv *e)
{
    free((void *)e->envp);
    free(e->file_text);
    memset(e, 0, sizeof *e);
}

typedef struct {
    RunEnv env;
    Config cfg;
    SimParams par;
} RunSetup;

/* Parses one run's configuration and simulator parameters, printing every problem. */
static Status setup_run(const SimArgs *a, RunSetup *r, bool need_db)
{
    ConfigErrors *errs = calloc(1, sizeof *errs);
    if (!errs)
        return STATUS_ERR_NOMEM;
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    const char *const *envp = r->env.envp;
    Status st =
        config_parse(envp, host, need_db ? CONFIG_NEED_DB : CONFIG_NEED_NOTHING, &r->cfg, errs);
    size_t n = errs->count;
    for (size_t i = 0; i < n; i++)
        fprintf(stderr, "%s (%s)\n", errs->messages[i], r->env.label);
    Status sp = sim_params_parse(envp, &r->par, errs);
    for (size_t i = 0; i < errs->count; i++)
        fprintf(stderr, "%s (%s)\n", errs->messages[i], r->env.label);
    if (sp == STATUS_OK && a->seed_given) {
        bool own = false;
        for (const char *const *v = envp; v && *v && !own; v++)
            own = strncmp(*v, "SIM_SEED=", 9) == 0;
        if (!own)
            r->par.seed = a->seed;
    }
    free(errs);
    if (st == STATUS_OK && sp != STATUS_OK)
        st = sp;
    return st;
}

/* --from-db: the recorded trace, and each GPU type's measured boot and price (a SIM_GPU entry
 * naming the type wins). */
static Status load_from_db(const SimArgs *a, RunSetup *runs, size_t n_runs, SimTrace *trace,
                           SimRecorded *rec)
{
    log_configure(LOG_WARN, LOG_FORMAT_TEXT);
    PGconn *conn = NULL;
    Status st = db_connect(&runs[0].cfg, &conn);
    if (st != STATUS_OK)
        return st;
    st = db_load_trace(conn, a->since_sec, runs[0].cfg.orchestrator_poll_sec, trace, rec);
    PQfinish(conn);
    if (st == STATUS_ERR_NOT_FOUND) {
        fprintf(stderr,
                "orchestrator simulate: no task was created within --since %llds; give a longer "
                "window\n",
                a->since_sec);
        st = STATUS_ERR_USAGE;
    }
    for (size_t k = 0; st == STATUS_OK && k < rec->n_gpus; k++) {
        const SimRecordedGpu *f = &rec->gpus[k];
        for (size_t r = 0; r < n_runs; r++) {
            bool explicit_entry = false;
            for (const char **v = runs[r].env.envp; v && *v && !explicit_entry; v++)
                explicit_entry = strncmp(*v, "SIM_GPU=", 8) == 0 && strstr(*v, f->name);
            if (explicit_entry)
                continue;
            SimParams *p = &runs[r].par;
            size_t i = 0;
            while (i < p->n_gpus && strcmp(p->gpus[i].name, f->name) != 0)
                i++;
            if (i == p->n_gpus) {
                if (p->n_gpus >= SIM_GPUS_MAX)
                    continue;
                p->gpus[p->n_gpus++] = sim_params_gpu(p, f->name);
            }
            if (f->price_per_hr > 0)
                p->gpus[i].price_per_hr = f->price_per_hr;
            if (f->boot_median_sec >= 0) {
                p->gpus[i].boot_median_sec = f->boot_median_sec;
                p->gpus[i].boot_sigma = f->boot_sigma;
            }
        }
    }
    return st;
}

static Status make_trace(const SimArgs *a, RunSetup *runs, size_t n_runs, SimTrace *trace,
                         SimRecorded *rec)
{
    if (a->from_db)
        return load_from_db(a, runs, n_runs, trace, rec);
    if (a->trace_file) {
        char *text = NULL, err[SIM_ERROR_LEN];
        size_t len = 0;
        Status st = read_file(a->trace_file, (size_t)1 << 31, &text, &len);
        if (st != STATUS_OK)
            return st;
        st = sim_trace_parse(text, len, trace, err);
        free(text);
        if (st != STATUS_OK) {
            fprintf(stderr, "orchestrator simulate: %s: %s\n", a->trace_file, err);
            return st == STATUS_ERR_NOMEM ? st : STATUS_ERR_USAGE;
        }
        const char *base = strrchr(a->trace_file, '/');
        snprintf(trace->label, sizeof trace->label, "%s", base ? base + 1 : a->trace_file);
        return STATUS_OK;
    }
    SimGenSpec *spec = calloc(1, sizeof *spec);
    if (!spec)
        return STATUS_ERR_NOMEM;
    spec->kind = a->kind;
    spec->seed = a->seed;
    spec->tasks = a->tasks;
    spec->days = a->days;
    const Config *cfg = &runs[0].cfg; /* tasks spread over the run types of its pools */
    for (size_t p = 0; p < cfg->n_pools; p++)
        for (size_t r = 0; r < cfg->pools[p].run_types.count && spec->n_run_types < SIM_TYPES_MAX;
             r++)
            snprintf(spec->run_types[spec->n_run_types++], SNAP_NAME_MAX, "%s",
                     cfg->pools[p].run_types.items[r]);
    Status st = sim_trace_generate(spec, trace);
    free(spec);
    if (st == STATUS_ERR_USAGE)
        fprintf(stderr, "orchestrator simulate: cannot generate that trace\n");
    return st;
}

static Status write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "orchestrator simulate: cannot write %s: %s\n", path, strerror(errno));
        return STATUS_ERR_USAGE;
    }
    return STATUS_OK;
}

Status cmd_simulate(int argc, char **argv)
{
    SimArgs a;
    Status st = parse_args(argc, argv, &a);
    if (st != STATUS_OK)
        return st;
    size_t n_runs = a.n_compare ? a.n_compare : 1;
    RunSetup *runs = calloc(n_runs, sizeof *runs);
    SimRun *out = calloc(n_runs, sizeof *out);
    SimTrace trace = {0};
    SimRecorded rec = {0};
    SimResult bound = {0}, fixed = {0};
    char *report = NULL;
    if (!runs || !out) {
        st = STATUS_ERR_NOMEM;
        goto done;
    }
    for (size_t i = 0; i < n_runs && st == STATUS_OK; i++) {
        st = build_env(&a, a.n_compare ? a.compare[i] : NULL, &runs[i].env);
        if (st == STATUS_OK)
            st = setup_run(&a, &runs[i], a.from_db && i == 0);
    }
    if (st == STATUS_OK)
        st = make_trace(&a, runs, n_runs, &trace, &rec);
    if (st == STATUS_OK && a.export_trace) {
        char *csv = sim_trace_to_csv(&trace);
        st = csv ? write_text(a.export_trace, csv) : STATUS_ERR_NOMEM;
        free(csv);
    }
    for (size_t i = 0; i < n_runs && st == STATUS_OK; i++) {
        snprintf(out[i].label, sizeof out[i].label, "%s", runs[i].env.label);
        sim_policy_label(&runs[i].cfg, &runs[i].par, out[i].policy, sizeof out[i].policy);
        st = sim_run(&trace, &runs[i].cfg, &runs[i].par, &out[i].result);
    }
    if (st == STATUS_OK)
        st = sim_clairvoyant(&trace, &runs[0].cfg, &runs[0].par, &bound);
    if (st == STATUS_OK)
        st = sim_fixed_max(&trace, &runs[0].cfg, &runs[0].par, &fixed);
    if (st == STATUS_OK) {
        SimReport r = {
            &trace, &runs[0].cfg, n_runs, out, &bound, &fixed, rec.present ? &rec : NULL};
        report = a.json ? sim_report_json(&r) : sim_report_text(&r);
        if (!report)
            st = STATUS_ERR_NOMEM;
        else
            printf("%s%s", report, a.json ? "\n" : "");
    }
    if (st == STATUS_ERR_NOMEM)
        fprintf(stderr, "orchestrator simulate: out of memory\n");
done:
    free(report);
    for (size_t i = 0; runs && i < n_runs; i++)
        env_clear(&runs[i].env);
    for (size_t i = 0; out && i < n_runs; i++)
        sim_result_clear(&out[i].result);
    sim_result_clear(&bound);
    sim_result_clear(&fixed);
    sim_trace_clear(&trace);
    sim_recorded_clear(&rec);
    free(runs);
    free(out);
    return st;
}
