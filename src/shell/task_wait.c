/* task_wait.c -- waits for tasks to end: polls, with LISTEN as a speed-up (see task_wait.h).
 *
 * Shell module (libpq, the monotonic clock, select). Never writes a row.
 */
#include "task_wait.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#include "db_exec.h"
#include "log.h"

#define TASK_WAIT_CHANNEL "orchestrator_task_ended"
#define TASK_WAIT_DB_FAILURES_MAX 3

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* LISTEN on the connection; false when it failed (then the wait polls only). */
static bool start_listening(PGconn *conn)
{
    PGresult *res = PQexec(conn, "LISTEN " TASK_WAIT_CHANNEL);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok)
        log_warn("submit.listen_failed", "error=\"%s\" msg=\"polling only\"",
                 PQresultErrorMessage(res));
    PQclear(res);
    return ok;
}

/* "{id,id,...}" of the items still pending; NULL when out of memory. */
static char *pending_ids(const TaskWaitItem *items, size_t n)
{
    size_t cap = 3 + n * (SNAP_TASK_ID_MAX + 1), len = 0;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    buf[len++] = '{';
    for (size_t i = 0; i < n; i++) {
        if (items[i].ended)
            continue;
        int w = snprintf(buf + len, cap - len, "%s%s", len > 1 ? "," : "", items[i].id);
        len += w > 0 ? (size_t)w : 0;
    }
    snprintf(buf + len, cap - len, "}");
    return buf;
}

/* Reads the statuses of the pending items; reports those that ended. */
static Status poll_once(PGconn *conn, TaskWaitItem *items, size_t n, TaskWaitReport report,
                        const void *arg)
{
    char *ids = pending_ids(items, n);
    if (!ids)
        return STATUS_ERR_NOMEM;
    const char *p[] = {ids};
    PGresult *res =
        db_exec_params(conn, "wait_poll",
                       "SELECT t.id::text, t.status::text, coalesce(t.output_location, ''),"
                       " coalesce(t.error_message, '') FROM tasks t WHERE t.id = ANY ($1::uuid[])",
                       1, p, PGRES_TUPLES_OK);
    free(ids);
    if (!res)
        return STATUS_ERR_DB;
    for (size_t i = 0; i < n; i++) {
        TaskWaitItem *it = &items[i];
        if (it->ended)
            continue;
        int row = -1;
        for (int r = 0; r < PQntuples(res) && row < 0; r++)
            if (strcmp(PQgetvalue(res, r, 0), it->id) == 0)
                row = r;
        if (row < 0) {
            it->gone = it->ended = true;
            it->status[0] = '\0';
        } else {
            snprintf(it->status, sizeof it->status, "%s", PQgetvalue(res, row, 1));
            snprintf(it->output_location, sizeof it->output_location, "%s",
                     PQgetvalue(res, row, 2));
            snprintf(it->error_message, sizeof it->error_message, "%s", PQgetvalue(res, row, 3));
            it->ended = wait_status_final(it->status);
        }
        if (it->ended && report)
            report(it, arg);
    }
    PQclear(res);
    return STATUS_OK;
}

static bool all_ended(const TaskWaitItem *items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!items[i].ended)
            return false;
    return true;
}

/* Waits up to ms for the socket to be readable; true when a notification about a pending item
 * arrived. A signal ends the wait early (select returns EINTR). */
static bool wait_notified(PGconn *conn, bool listening, long long ms, const TaskWaitItem *items,
                          size_t n, TaskWaitStats *stats)
{
    int fd = listening ? PQsocket(conn) : -1;
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000),
                         .tv_usec = (suseconds_t)((ms % 1000) * 1000)};
    fd_set rd;
    FD_ZERO(&rd);
    if (fd >= 0)
        FD_SET(fd, &rd);
    int r = select(fd >= 0 ? fd + 1 : 0, fd >= 0 ? &rd : NULL, NULL, NULL, &tv);
    if (r <= 0 || fd < 0)
        return false;
    if (!PQconsumeInput(conn)) {
        stats->listening = false; /* a closed socket stays readable: poll until reconnected */
        return false;
    }
    bool ours = false;
    for (PGnotify *note = PQnotifies(conn); note; note = PQnotifies(conn)) {
        for (size_t i = 0; i < n && !ours; i++)
            ours = !items[i].ended && strcmp(items[i].id, note->extra) == 0;
        PQfreemem(note);
    }
    if (ours)
        stats->notifications++;
    return ours;
}

static void tally(const TaskWaitItem *items, size_t n, WaitTally *t)
{
    memset(t, 0, sizeof *t);
    for (size_t i = 0; i < n; i++)
        wait_tally_add(t, items[i].gone ? NULL : items[i].ended ? items[i].status : "Queued");
}

Status task_wait(PGconn **conn, TaskWaitItem *items, size_t n, const TaskWaitOptions *o,
                 volatile sig_atomic_t *stop, TaskWaitReport report, const void *arg,
                 TaskWaitStats *stats)
{
    memset(stats, 0, sizeof *stats);
    stats->listening = o->listen && start_listening(*conn);
    long long start = now_ms(), next_poll = start;
    int failures = 0;
    Status stopped = STATUS_OK;
    for (;;) {
        long long now = now_ms();
        bool timed_out = o->timeout_ms > 0 && now - start >= o->timeout_ms;
        if (now >= next_poll || timed_out) {
            Status st = poll_once(*conn, items, n, report, arg);
            stats->polls++;
            if (st == STATUS_ERR_NOMEM)
                return st;
            failures = st == STATUS_OK ? 0 : failures + 1;
            if (failures >= TASK_WAIT_DB_FAILURES_MAX)
                return STATUS_ERR_DB;
            if (st != STATUS_OK && PQstatus(*conn) != CONNECTION_OK) {
                PQreset(*conn); /* a restarted server or pooler: carry on polling */
                if (PQstatus(*conn) == CONNECTION_OK && o->listen)
                    stats->listening = start_listening(*conn);
            }
            next_poll = now_ms() + o->poll_ms;
        }
        if (all_ended(items, n))
            break;
        if (timed_out) {
            stopped = STATUS_TIMEOUT;
            break;
        }
        if (*stop) {
            stopped = *stop == SIGTERM ? STATUS_TERMINATED : STATUS_INTERRUPTED;
            break;
        }
        long long until = next_poll;
        if (o->timeout_ms > 0 && start + o->timeout_ms < until)
            until = start + o->timeout_ms;
        long long ms = until - now_ms();
        if (ms > 0 && wait_notified(*conn, stats->listening, ms, items, n, stats))
            next_poll = now_ms(); /* one of ours ended: read it now */
    }
    tally(items, n, &stats->tally);
    return wait_verdict(&stats->tally, stopped);
}
