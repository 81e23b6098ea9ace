/* operate.c -- operator commands that work on the queue and the logs: `submit` and `logs`.
 *
 * Shell module: parses flags, reads files, talks to PostgreSQL through db.h. Validation of
 * tasks is the pure taskfile module, so a bad file is refused before anything is inserted.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "commands.h"
#include "db.h"
#include "db_lifecycle.h"
#include "log.h"
#include "taskfile.h"
#include "wait.h"

#define SUBMIT_FILE_MAX (64u << 20)

static int usage(const char *cmd, const char *msg, const char *arg)
{
    fprintf(stderr, "orchestrator %s: %s%s%s; see `orchestrator %s --help`\n", cmd, msg,
            arg ? " " : "", arg ? arg : "", cmd);
    return 0;
}

/* Reads a whole file (at most SUBMIT_FILE_MAX bytes). Returns a malloc'd buffer or NULL after
 * printing why. "-" is standard input. */
static char *read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "orchestrator submit: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    while (buf) {
        if (n + 1 >= cap) {
            if (cap >= SUBMIT_FILE_MAX) {
                fprintf(stderr, "orchestrator submit: %s is larger than %u MiB\n", path,
                        SUBMIT_FILE_MAX >> 20);
                free(buf);
                buf = NULL;
                break;
            }
            char *bigger = realloc(buf, cap * 2);
            if (!bigger) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - 1 - n, f);
        n += got;
        if (got == 0)
            break;
    }
    if (buf && ferror(f)) {
        fprintf(stderr, "orchestrator submit: error reading %s\n", path);
        free(buf);
        buf = NULL;
    }
    if (f != stdin)
        fclose(f);
    if (buf) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

static void print_errors(const TaskfileErrors *errs)
{
    for (size_t i = 0; i < errs->count && i < TASKFILE_ERRORS_MAX; i++)
        fprintf(stderr, "orchestrator submit: %s\n", errs->messages[i]);
    if (errs->count > TASKFILE_ERRORS_MAX)
        fprintf(stderr, "orchestrator submit: ... and %zu more\n",
                errs->count - TASKFILE_ERRORS_MAX);
    fprintf(stderr, "orchestrator submit: nothing was inserted\n");
}

/* Warns on stderr, once per run type, about tasks of a run type that no pool serves: they are
 * inserted (a pool may be added for them) but no worker will claim them until then. */
static void warn_unserved(const Config *cfg, const cJSON *tasks)
{
    const char *warned[16];
    size_t n_warned = 0;
    for (const cJSON *t = tasks ? tasks->child : NULL; t; t = t->next) {
        const cJSON *rt = cJSON_GetObjectItemCaseSensitive(t, "run_type");
        const char *name = cJSON_IsString(rt) && rt->valuestring ? rt->valuestring : "gpu";
        bool seen = config_pool_for_run_type(cfg, name) != NULL;
        for (size_t k = 0; k < n_warned && !seen; k++)
            seen = strcmp(warned[k], name) == 0;
        if (seen || n_warned >= sizeof warned / sizeof warned[0])
            continue; /* served, already named, or enough named */
        warned[n_warned++] = name;
        char served[1024] = "";
        size_t len = 0;
        for (size_t p = 0; p < cfg->n_pools && len < sizeof served; p++)
            for (size_t r = 0; r < cfg->pools[p].run_types.count && len < sizeof served; r++) {
                int w = snprintf(served + len, sizeof served - len, "%s%s (%s)", len ? ", " : "",
                                 cfg->pools[p].run_types.items[r], cfg->pools[p].name);
                len = w < 0 ? sizeof served : len + (size_t)w;
            }
        fprintf(stderr,
                "orchestrator submit: warning: no pool serves run_type '%s': its tasks are "
                "inserted but no worker claims them until POOLS has a pool for it (served: "
                "%s)\n",
                name, served);
    }
}

Status cmd_submit(int argc, char **argv)
{
    const char *type = NULL, *params = NULL, *run_type = NULL, *deps = NULL, *file = NULL;
    const char *format = NULL;
    int max_attempts = 0;
    bool json = false;
    SubmitWait wait = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char **target = NULL;
        int w = submit_wait_arg(argc, argv, &i, &wait);
        if (w != 0) {
            if (w < 0)
                return STATUS_ERR_USAGE;
            continue;
        }
        if (strcmp(a, "--type") == 0)
            target = &type;
        else if (strcmp(a, "--params") == 0)
            target = &params;
        else if (strcmp(a, "--run-type") == 0)
            target = &run_type;
        else if (strcmp(a, "--depends-on") == 0)
            target = &deps;
        else if (strcmp(a, "--file") == 0)
            target = &file;
        else if (strcmp(a, "--format") == 0)
            target = &format;
        else if (strcmp(a, "--json") == 0) {
            json = true;
            continue;
        } else if (strcmp(a, "--max-attempts") == 0) {
            char *end = NULL;
            long v = i + 1 < argc ? strtol(argv[i + 1], &end, 10) : 0;
            if (i + 1 >= argc || !end || *end || v < 1 || v > 100) {
                usage("submit", "--max-attempts needs a number in [1, 100]", NULL);
                return STATUS_ERR_USAGE;
            }
            max_attempts = (int)v;
            i++;
            continue;
        } else {
            usage("submit", "unknown argument", a);
            return STATUS_ERR_USAGE;
        }
        if (i + 1 >= argc) {
            usage("submit", "missing value after", a);
            return STATUS_ERR_USAGE;
        }
        *target = argv[++i];
    }
    if ((file != NULL) == (type != NULL)) {
        usage("submit", "give either --type (one task) or --file (many)", NULL);
        return STATUS_ERR_USAGE;
    }
    if (file && (params || run_type || deps || max_attempts)) {
        usage("submit", "--params, --run-type, --depends-on and --max-attempts go with --type",
              NULL);
        return STATUS_ERR_USAGE;
    }
    if (!wait.on && (wait.timeout_sec || wait.no_listen)) {
        usage("submit", "--timeout and --no-listen go with --wait", NULL);
        return STATUS_ERR_USAGE;
    }
    wait.json = json;

    /* Validate everything before touching the database. */
    static TaskfileErrors errs;
    memset(&errs, 0, sizeof errs);
    cJSON *tasks = NULL;
    Status st;
    if (type) {
        tasks = cJSON_CreateArray();
        if (!tasks)
            return STATUS_ERR_NOMEM;
        st = taskfile_add(tasks, type, params, run_type, deps, max_attempts, "--type", &errs);
    } else {
        TaskfileFormat fmt = TASKFILE_JSONL;
        const char *dot = strrchr(file, '.');
        if (format ? strcasecmp(format, "csv") == 0 : (dot && strcasecmp(dot, ".csv") == 0))
            fmt = TASKFILE_CSV;
        else if (format && strcasecmp(format, "jsonl") != 0) {
            usage("submit", "--format must be csv or jsonl, not", format);
            return STATUS_ERR_USAGE;
        }
        size_t len = 0;
        char *data = read_file(file, &len);
        if (!data)
            return STATUS_ERR_USAGE;
        st = taskfile_parse(data, len, fmt, &tasks, &errs);
        free(data);
    }
    if (st != STATUS_OK) {
        print_errors(&errs);
        cJSON_Delete(tasks);
        return st == STATUS_ERR_NOMEM ? st : STATUS_ERR_USAGE;
    }

    Config *cfg = NULL;
    st = commands_load_config(CONFIG_NEED_DB, &cfg);
    if (st != STATUS_OK) {
        cJSON_Delete(tasks);
        return st;
    }
    warn_unserved(cfg, tasks);
    char *text = cJSON_PrintUnformatted(tasks);
    size_t n = (size_t)cJSON_GetArraySize(tasks);
    cJSON_Delete(tasks);
    PGconn *conn = NULL;
    cJSON *ids = NULL;
    if (!text)
        st = STATUS_ERR_NOMEM;
    if (st == STATUS_OK && cfg->safe_mode) {
        fprintf(stderr,
                "orchestrator submit: SAFE_MODE is on: %zu task%s validated, nothing "
                "inserted\n",
                n, n == 1 ? "" : "s");
        goto out;
    }
    if (st == STATUS_OK)
        st = db_connect(cfg, &conn);
    if (st == STATUS_OK)
        st = db_insert_tasks(conn, text, &ids);
    if (st == STATUS_OK) {
        if (json) {
            char *s = cJSON_PrintUnformatted(ids);
            printf("{\"inserted\":%zu,\"ids\":%s}\n", n, s ? s : "[]");
            free(s);
        } else {
            for (cJSON *e = ids->child; e; e = e->next)
                printf("%s\n", e->valuestring);
        }
        log_info("tasks.submitted", "count=%zu", n);
        fflush(stdout);
        if (wait.on)
            st = submit_wait(cfg, &conn, ids, &wait);
    }
out:
    cJSON_Delete(ids);
    free(text);
    if (conn)
        PQfinish(conn);
    free(cfg);
    /* Under --wait, exit 1 means a task failed: an internal error exits 125 instead. */
    if (wait.on && st != STATUS_TASKS_FAILED && status_exit_code(st) == 1)
        st = STATUS_WAIT_FAILED;
    return st;
}

/* Prints the stored pod log tail of worker_id, if any: a header line and the tail (text), or
 * one JSON object {"kind": "pod_log_tail", ...} (json). */
static Status print_failure_log(PGconn *conn, const char *worker_id, bool json)
{
    cJSON *o = NULL;
    Status st = db_failure_log(conn, worker_id, &o);
    if (st != STATUS_OK || !o)
        return st;
    if (json) {
        cJSON_AddStringToObject(o, "kind", "pod_log_tail");
        char *s = cJSON_PrintUnformatted(o);
        printf("%s\n", s ? s : "{}");
        free(s);
    } else {
        const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(o, "bytes");
        const char *s[] = {"pod_id", "reason", "fetched_at", "outcome", "error", "tail"};
        const char *v[6];
        for (size_t i = 0; i < 6; i++) {
            const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, s[i]);
            v[i] = cJSON_IsString(x) ? x->valuestring : "";
        }
        printf("\n--- pod log tail of %s (pod %s; %s) read %s: %s, %.0f bytes%s%s%s ---\n",
               worker_id, v[0], v[1][0] ? v[1] : "failed", v[2], v[3],
               cJSON_IsNumber(bytes) ? bytes->valuedouble : 0,
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "truncated"))
                   ? ", older lines dropped"
                   : "",
               v[4][0] ? "; " : "", v[4]);
        fputs(v[5], stdout);
        if (v[5][0] && v[5][strlen(v[5]) - 1] != '\n')
            putchar('\n');
    }
    cJSON_Delete(o);
    return STATUS_OK;
}

Status cmd_logs(int argc, char **argv)
{
    LogQuery q = {.limit = 200};
    bool json = false;
    static const char *levels[] = {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--json") == 0) {
            json = true;
            continue;
        }
        if (!v) {
            usage("logs", "missing value after", a);
            return STATUS_ERR_USAGE;
        }
        i++;
        if (strcmp(a, "--worker") == 0) {
            q.worker_id = v;
        } else if (strcmp(a, "--task") == 0) {
            if (!taskfile_is_uuid(v)) {
                usage("logs", "--task needs a task id (a UUID), not", v);
                return STATUS_ERR_USAGE;
            }
            q.task_id = v;
        } else if (strcmp(a, "--cycle") == 0) {
            char *end = NULL;
            errno = 0;
            q.cycle = strtoll(v, &end, 10);
            /* system_logs.cycle_number is an integer: a larger number matches nothing and
             * would fail inside SQL. */
            if (errno || !end || *end || q.cycle < 1 || q.cycle > 2147483647LL) {
                usage("logs", "--cycle needs a cycle number in [1, 2147483647], not", v);
                return STATUS_ERR_USAGE;
            }
        } else if (strcmp(a, "--level") == 0) {
            for (size_t k = 0; k < 5; k++)
                if (strcasecmp(v, levels[k]) == 0 || (k == 2 && strcasecmp(v, "WARN") == 0))
                    q.min_level = levels[k];
            if (!q.min_level) {
                usage("logs", "--level must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not", v);
                return STATUS_ERR_USAGE;
            }
        } else if (strcmp(a, "--since") == 0) {
            if (taskfile_parse_duration(v, &q.since_sec) != 0 || q.since_sec == 0) {
                usage("logs", "--since needs a duration such as 30s, 15m, 2h or 7d, not", v);
                return STATUS_ERR_USAGE;
            }
        } else if (strcmp(a, "--limit") == 0) {
            char *end = NULL;
            long n = strtol(v, &end, 10);
            if (!end || *end || n < 1 || n > 100000) {
                usage("logs", "--limit needs a number in [1, 100000], not", v);
                return STATUS_ERR_USAGE;
            }
            q.limit = (int)n;
        } else {
            usage("logs", "unknown argument", a);
            return STATUS_ERR_USAGE;
        }
    }
    Config *cfg = NULL;
    Status st = commands_load_config(CONFIG_NEED_DB, &cfg);
    if (st != STATUS_OK)
        return st;
    PGconn *conn = NULL;
    cJSON *rows = NULL;
    st = db_connect(cfg, &conn);
    if (st == STATUS_OK)
        st = db_query_logs(conn, &q, &rows);
    if (st == STATUS_OK) {
        if (json) {
            for (cJSON *r = rows->child; r; r = r->next) {
                char *s = cJSON_PrintUnformatted(r);
                printf("%s\n", s ? s : "{}");
                free(s);
            }
        } else {
            printf("%-24s %-8s %-22s %-30s %s\n", "TIME", "LEVEL", "SOURCE", "WORKER/TASK",
                   "MESSAGE");
            for (cJSON *r = rows->child; r; r = r->next) {
                const char *w = cJSON_GetObjectItem(r, "worker_id")->valuestring;
                const char *t = cJSON_GetObjectItem(r, "task_id")->valuestring;
                printf("%-24s %-8s %-22.22s %-30.30s %s\n",
                       cJSON_GetObjectItem(r, "time")->valuestring,
                       cJSON_GetObjectItem(r, "level")->valuestring,
                       cJSON_GetObjectItem(r, "source_id")->valuestring, w[0] ? w : t,
                       cJSON_GetObjectItem(r, "message")->valuestring);
            }
        }
    }
    /* A failed worker's pod log tail, read before its pod was terminated (issue 16). */
    if (st == STATUS_OK && q.worker_id)
        st = print_failure_log(conn, q.worker_id, json);
    cJSON_Delete(rows);
    if (conn)
        PQfinish(conn);
    free(cfg);
    return st;
}
