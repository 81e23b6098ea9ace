/* wait.c -- `submit --wait [--timeout S] [--no-listen]` (see wait.h).
 *
 * CLI module: flags, signals and printing; the waiting itself is task_wait (shell), the verdict
 * wait_verdict (core). Exit codes: 0 every task Complete, 1 one or more Failed, Cancelled or
 * deleted, 124 --timeout passed, 125 the wait itself failed, 130/143 SIGINT/SIGTERM; 2 usage,
 * 3 configuration and 4 database as for every command.
 */
#include "wait.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "task_wait.h"

#define WAIT_POLL_MS 2000
#define WAIT_PENDING_LISTED 20

static volatile sig_atomic_t g_wait_stop;

static void on_signal(int sig)
{
    g_wait_stop = sig;
}

int submit_wait_arg(int argc, char **argv, int *i, SubmitWait *w)
{
    const char *a = argv[*i];
    if (strcmp(a, "--wait") == 0) {
        w->on = true;
        return 1;
    }
    if (strcmp(a, "--no-listen") == 0) {
        w->no_listen = true;
        return 1;
    }
    if (strcmp(a, "--timeout") != 0)
        return 0;
    char *end = NULL;
    errno = 0;
    long long v = *i + 1 < argc ? strtoll(argv[*i + 1], &end, 10) : 0;
    if (*i + 1 >= argc || errno || !end || *end || v < 1 || v > 31536000) {
        fprintf(stderr,
                "orchestrator submit: --timeout needs whole seconds in [1, 31536000], "
                "not %s; see `orchestrator submit --help`\n",
                *i + 1 < argc ? argv[*i + 1] : "nothing");
        return -1;
    }
    w->timeout_sec = v;
    (*i)++;
    return 1;
}

static void report(const TaskWaitItem *it, const void *arg)
{
    const SubmitWait *w = arg;
    if (w->json) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "id", it->id);
        if (it->gone)
            cJSON_AddNullToObject(o, "status");
        else
            cJSON_AddStringToObject(o, "status", it->status);
        cJSON_AddStringToObject(o, "output_location", it->output_location);
        cJSON_AddStringToObject(o, "error_message", it->error_message);
        char *s = cJSON_PrintUnformatted(o);
        printf("%s\n", s ? s : "{}");
        free(s);
        cJSON_Delete(o);
    } else if (it->gone) {
        printf("%s missing (the task row was deleted while waiting)\n", it->id);
    } else if (strcmp(it->status, "Complete") == 0) {
        printf("%s Complete %s\n", it->id,
               it->output_location[0] ? it->output_location : "(no output_location)");
    } else {
        printf("%s %s %s\n", it->id, it->status,
               it->error_message[0] ? it->error_message : "(no error_message)");
    }
    fflush(stdout);
}

/* The pending tasks, on stderr, after a timeout or a signal. */
static void list_pending(const TaskWaitItem *items, size_t n, size_t pending)
{
    size_t shown = 0;
    for (size_t i = 0; i < n && shown < WAIT_PENDING_LISTED; i++)
        if (!items[i].ended) {
            fprintf(stderr, "orchestrator submit:   %s %s\n", items[i].id,
                    items[i].status[0] ? items[i].status : "(not read)");
            shown++;
        }
    if (pending > shown)
        fprintf(stderr, "orchestrator submit:   ... and %zu more\n", pending - shown);
}

static void summarize(const SubmitWait *w, const TaskWaitStats *s, size_t n, Status st)
{
    const WaitTally *t = &s->tally;
    if (w->json) {
        printf("{\"waited\":{\"tasks\":%zu,\"complete\":%zu,\"failed\":%zu,\"cancelled\":%zu,"
               "\"missing\":%zu,\"pending\":%zu,\"exit_code\":%d}}\n",
               n, t->complete, t->failed, t->cancelled, t->missing, t->pending,
               status_exit_code(st));
        fflush(stdout);
    }
    log_info("submit.wait_done",
             "tasks=%zu complete=%zu failed=%zu cancelled=%zu missing=%zu pending=%zu "
             "listen=%s polls=%lld notifications=%lld exit_code=%d",
             n, t->complete, t->failed, t->cancelled, t->missing, t->pending,
             s->listening ? "true" : "false", s->polls, s->notifications, status_exit_code(st));
}

Status submit_wait(const Config *cfg, PGconn **conn, const cJSON *ids, const SubmitWait *w)
{
    size_t n = (size_t)cJSON_GetArraySize(ids);
    TaskWaitItem *items = calloc(n ? n : 1, sizeof *items);
    if (!items)
        return STATUS_WAIT_FAILED;
    size_t k = 0;
    for (const cJSON *e = ids->child; e && k < n; e = e->next)
        snprintf(items[k++].id, sizeof items[0].id, "%s", e->valuestring);
    TaskWaitOptions o = {.listen = !w->no_listen && cfg->enable_notify_wakeup,
                         .poll_ms = WAIT_POLL_MS,
                         .timeout_ms = w->timeout_sec * 1000};
    fprintf(stderr,
            "orchestrator submit: waiting for %zu task%s to end (%spolling every %d s%s); "
            "Ctrl-C stops waiting, the tasks stay queued\n",
            n, n == 1 ? "" : "s", o.listen ? "LISTEN, and " : "", WAIT_POLL_MS / 1000,
            w->timeout_sec ? ", --timeout" : "");

    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: the signal ends the select at once */
    sigemptyset(&sa.sa_mask);
    g_wait_stop = 0;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    TaskWaitStats stats;
    Status st = task_wait(conn, items, n, &o, &g_wait_stop, report, w, &stats);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);

    const WaitTally *t = &stats.tally;
    switch (st) {
    case STATUS_OK:
        fprintf(stderr, "orchestrator submit: all %zu task%s Complete\n", n, n == 1 ? "" : "s");
        break;
    case STATUS_TASKS_FAILED:
        fprintf(stderr,
                "orchestrator submit: every task ended, %zu not Complete (%zu Failed, %zu "
                "Cancelled, %zu deleted)\n",
                t->failed + t->cancelled + t->missing, t->failed, t->cancelled, t->missing);
        break;
    case STATUS_TIMEOUT:
        fprintf(stderr,
                "orchestrator submit: timed out after %llds: %zu of %zu tasks have not ended; "
                "they stay in the queue and still run (`orchestrator explain ID` says why one "
                "waits):\n",
                w->timeout_sec, t->pending, n);
        list_pending(items, n, t->pending);
        break;
    case STATUS_INTERRUPTED:
    case STATUS_TERMINATED:
        fprintf(stderr,
                "orchestrator submit: stopped waiting (%s): %zu of %zu tasks have not ended; "
                "they stay queued and still run -- only the waiting stopped:\n",
                st == STATUS_TERMINATED ? "SIGTERM" : "SIGINT", t->pending, n);
        list_pending(items, n, t->pending);
        break;
    case STATUS_ERR_DB:
        fprintf(stderr, "orchestrator submit: waiting failed: the database stopped answering "
                        "(see the log above); the tasks were inserted (ids above) and stay "
                        "queued\n");
        break;
    default:
        st = STATUS_WAIT_FAILED;
        fprintf(stderr, "orchestrator submit: waiting failed (out of memory); the tasks were "
                        "inserted (ids above) and stay queued\n");
        break;
    }
    summarize(w, &stats, n, st);
    free(items);
    return st;
}
