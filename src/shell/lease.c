/* lease.c -- the cluster-wide cycle lease (see lease.h).
 *
 * Shell module. Must not: keep anything in a server session (no advisory lock, no SET, no
 * prepared statement, no LISTEN), since behind a transaction pooler the next statement may run
 * on another session; compare a client clock with a database time; log or touch the caller's
 * connection from the renewal thread. Values travel as parameters; the lease name is a literal.
 */
#include "lease.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <uuid/uuid.h>

#include "db_exec.h"
#include "log.h"

#define LEASE_TOKEN_LEN 32

struct Lease {
    const Config *cfg;
    char token[LEASE_TOKEN_LEN + 1];
    char info[CONFIG_ITEM_MAX + 64];
    char ttl[16];    /* CYCLE_LEASE_TTL_SEC, as sent */
    char margin[32]; /* TTL/4 in seconds, as sent */
    long long period_ms;

    /* The caller's thread only. */
    bool held;
    bool lost_logged;
    char fence[24];                   /* of the current or last hold, as sent */
    char other[CONFIG_ITEM_MAX + 64]; /* the holder seen by the last failed take */
    double other_left_sec;

    /* Shared with the renewal thread, under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool running; /* a thread was started and not yet joined */
    bool stop;    /* asks the thread to end */
    bool lost;    /* a renewal found the lease no longer ours */
    long long renewals;
    long long renew_errors;
    char renew_error[200];
    pthread_t thread;
    PGconn *renew_conn; /* the thread's own connection; NULL until its first renewal */
};

/* ------------------------------------------------------------------------------------------ */
/* Statements                                                                                  */

/* Take: free, expired, or already ours (a continuous process whose release failed). The
 * previous holder is read in the same statement for the skip message. */
static const char SQL_TAKE[] =
    "WITH prev AS ("
    "  SELECT coalesce(holder_info, '') AS info,"
    "         extract(epoch FROM expires_at - now())::float8 AS left_sec"
    "  FROM orchestrator_lease WHERE name = 'cycle'),"
    " took AS ("
    "  INSERT INTO orchestrator_lease AS l (name, holder, holder_info, fence, acquired_at,"
    "    renewed_at, expires_at, released_at)"
    "  VALUES ('cycle', $1, $2, 1, now(), now(), now() + make_interval(secs => $3::int), NULL)"
    "  ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder,"
    "    holder_info = EXCLUDED.holder_info, fence = l.fence + 1, acquired_at = now(),"
    "    renewed_at = now(), expires_at = EXCLUDED.expires_at, released_at = NULL"
    "  WHERE l.holder IS NULL OR l.expires_at <= now() OR l.holder = EXCLUDED.holder"
    "  RETURNING fence)"
    " SELECT (SELECT fence FROM took), (SELECT info FROM prev),"
    "  coalesce((SELECT left_sec FROM prev), 0)";

/* Who holds the row now (committed): for a take that lost a race, whose own snapshot showed
 * the row as it was before the winner took it (free or expired). */
static const char SQL_HOLDER[] =
    "SELECT coalesce(holder_info, ''), extract(epoch FROM expires_at - now())::float8"
    " FROM orchestrator_lease WHERE name = 'cycle'";

/* Renew: only a hold that is still ours and not yet expired. */
static const char SQL_RENEW[] =
    "UPDATE orchestrator_lease SET renewed_at = now(),"
    " expires_at = now() + make_interval(secs => $3::int)"
    " WHERE name = 'cycle' AND holder = $1 AND fence = $2::bigint AND expires_at > now()";

/* Verify: whose the row is, and how long it still runs (database clock). */
static const char SQL_VERIFY[] =
    "SELECT coalesce(holder = $1 AND fence = $2::bigint, false),"
    " extract(epoch FROM expires_at - now())::float8 > $3::float8,"
    " extract(epoch FROM expires_at - now())::float8, coalesce(holder_info, ''), fence"
    " FROM orchestrator_lease WHERE name = 'cycle'";

static const char SQL_RELEASE[] =
    "UPDATE orchestrator_lease SET holder = NULL, expires_at = now(), released_at = now()"
    " WHERE name = 'cycle' AND holder = $1 AND fence = $2::bigint";

/* ------------------------------------------------------------------------------------------ */
/* The renewal thread                                                                          */

/* Connects like db_connect but silently (this runs off the caller's thread, and the logger is
 * not thread-safe); the failure text goes to the caller through renew_error. */
static PGconn *connect_quiet(const Config *cfg, const char *timeout_sec, char *err, size_t cap)
{
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {cfg->database_url[0] ? cfg->database_url : NULL, timeout_sec,
                          "orchestrator-lease", NULL};
    PGconn *conn = PQconnectdbParams(keys, vals, 1);
    if (conn && PQstatus(conn) == CONNECTION_OK)
        return conn;
    snprintf(err, cap, "connect: %s", conn ? PQerrorMessage(conn) : "out of memory");
    PQfinish(conn);
    return NULL;
}

/* One renewal on the thread's connection. Returns 1 renewed, 0 not ours any more, -1 failed
 * (connection or statement; err says why, the connection is dropped to be reopened). */
static int renew_once(Lease *l, PGconn **conn, char *err, size_t cap)
{
    if (!*conn || PQstatus(*conn) != CONNECTION_OK) {
        PQfinish(*conn);
        *conn = connect_quiet(l->cfg, "10", err, cap);
        if (!*conn)
            return -1;
    }
    const char *p[] = {l->token, l->fence, l->ttl};
    PGresult *res = PQexecParams(*conn, SQL_RENEW, 3, NULL, p, NULL, NULL, 0);
    int out = -1;
    if (PQresultStatus(res) == PGRES_COMMAND_OK) {
        out = strcmp(PQcmdTuples(res), "1") == 0 ? 1 : 0;
    } else {
        snprintf(err, cap, "renew: %s", res ? PQresultErrorMessage(res) : PQerrorMessage(*conn));
        PQfinish(*conn);
        *conn = NULL;
    }
    PQclear(res);
    return out;
}

static void deadline_after(struct timespec *ts, long long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* Renews every period until asked to stop or the lease is found lost. The token and fence are
 * not changed while the thread runs, so it reads them without the mutex. */
static void *renewal_main(void *arg)
{
    Lease *l = arg;
    pthread_mutex_lock(&l->mu);
    PGconn *conn = l->renew_conn;
    l->renew_conn = NULL;
    while (!l->stop) {
        struct timespec until;
        deadline_after(&until, l->period_ms);
        int rc = 0;
        while (!l->stop && rc == 0) /* 0: signalled or spurious; ETIMEDOUT: time to renew */
            rc = pthread_cond_timedwait(&l->cv, &l->mu, &until);
        if (l->stop)
            break;
        pthread_mutex_unlock(&l->mu);
        char err[200] = "";
        int r = renew_once(l, &conn, err, sizeof err);
        pthread_mutex_lock(&l->mu);
        if (r == 1) {
            l->renewals++;
        } else if (r == 0) {
            l->lost = true;
            break;
        } else {
            l->renew_errors++;
            snprintf(l->renew_error, sizeof l->renew_error, "%s", err);
        }
    }
    l->renew_conn = conn; /* kept for the next hold */
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static void stop_renewal(Lease *l)
{
    pthread_mutex_lock(&l->mu);
    bool running = l->running;
    l->stop = true;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    if (running)
        pthread_join(l->thread, NULL);
    l->running = false;
}

static void start_renewal(Lease *l)
{
    pthread_mutex_lock(&l->mu);
    l->stop = false;
    l->lost = false;
    l->renewals = 0;
    l->renew_errors = 0;
    l->renew_error[0] = '\0';
    pthread_mutex_unlock(&l->mu);
    int rc = pthread_create(&l->thread, NULL, renewal_main, l);
    if (rc != 0) {
        /* Safety does not depend on renewal: the hold just ends at its expiry, and the fence
         * checks stop the cycle then. */
        log_warn("cycle.lease_renewal_unavailable",
                 "error=%s msg=\"cannot start the renewal thread; the lease lasts "
                 "CYCLE_LEASE_TTL_SEC\"",
                 strerror(rc));
        return;
    }
    l->running = true;
}

/* ------------------------------------------------------------------------------------------ */
/* API                                                                                         */

Status lease_new(const Config *cfg, const char *command, Lease **out)
{
    Lease *l = calloc(1, sizeof *l);
    if (!l)
        return STATUS_ERR_NOMEM;
    l->cfg = cfg;
    uuid_t u;
    uuid_generate_random(u);
    for (size_t i = 0; i < sizeof u; i++)
        snprintf(l->token + 2 * i, 3, "%02x", u[i]);
    snprintf(l->info, sizeof l->info, "%s %s pid=%ld", cfg->orchestrator_instance_id,
             command ? command : "", (long)getpid());
    int ttl = cfg->cycle_lease_ttl_sec > 0 ? cfg->cycle_lease_ttl_sec : 60;
    snprintf(l->ttl, sizeof l->ttl, "%d", ttl);
    snprintf(l->margin, sizeof l->margin, "%.3f", ttl / 4.0);
    l->period_ms = (long long)ttl * 1000 / 4;
    snprintf(l->fence, sizeof l->fence, "0");
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0) {
        free(l);
        return STATUS_ERR_INTERNAL;
    }
    /* The renewal period is measured on the monotonic clock: wall-clock steps cannot stretch
     * or shrink it (the lease's own times are the database's). */
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&l->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0 || pthread_mutex_init(&l->mu, NULL) != 0) {
        if (rc == 0)
            pthread_cond_destroy(&l->cv);
        log_error("cycle.lease_init_failed", "error=%s", strerror(rc ? rc : errno));
        free(l);
        return STATUS_ERR_INTERNAL;
    }
    *out = l;
    return STATUS_OK;
}

/* A take that lost a race to a concurrent take read the row as it was before (free, or expired
 * long ago): the take waited for the winner's row lock, but its snapshot is older. The row as
 * committed now names the winner. Best effort: the skip is logged either way. */
static void reread_holder(Lease *l, PGconn *conn)
{
    PGresult *res = db_exec_params(conn, "lease_holder", SQL_HOLDER, 0, NULL, PGRES_TUPLES_OK);
    if (res && PQntuples(res) == 1) {
        snprintf(l->other, sizeof l->other, "%s", PQgetvalue(res, 0, 0));
        char *end = NULL;
        double left = strtod(PQgetvalue(res, 0, 1), &end);
        l->other_left_sec = end && *end == '\0' ? left : 0;
    }
    PQclear(res);
}

Status lease_try_acquire(Lease *l, PGconn *conn, bool *got)
{
    if (l->held) {
        log_error("cycle.lease_misuse", "msg=\"lease_try_acquire while holding the lease\"");
        return STATUS_ERR_INTERNAL;
    }
    stop_renewal(l); /* a previous hold's thread, if any, is over */
    const char *p[] = {l->token, l->info, l->ttl};
    PGresult *res = db_exec_params(conn, "lease_take", SQL_TAKE, 3, p, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    Status st = STATUS_ERR_DB;
    if (PQntuples(res) != 1) {
        log_error("db.bad_value", "query=lease_take rows=%d", PQntuples(res));
        goto out;
    }
    if (PQgetisnull(res, 0, 0)) {
        snprintf(l->other, sizeof l->other, "%s", PQgetvalue(res, 0, 1));
        char *end = NULL;
        double left = strtod(PQgetvalue(res, 0, 2), &end);
        l->other_left_sec = end && *end == '\0' ? left : 0;
        if (!l->other[0] || l->other_left_sec <= 0)
            reread_holder(l, conn);
        *got = false;
        st = STATUS_OK;
        goto out;
    }
    snprintf(l->fence, sizeof l->fence, "%s", PQgetvalue(res, 0, 0));
    l->held = true;
    l->lost_logged = false;
    *got = true;
    log_debug("cycle.lease_acquired", "fence=%s ttl_sec=%s holder=%s", l->fence, l->ttl, l->info);
    start_renewal(l);
    st = STATUS_OK;
out:
    PQclear(res);
    return st;
}

void lease_log_holder(const Lease *l)
{
    log_info("cycle.skipped_locked",
             "holder=%s lease_left_sec=%.1f msg=\"another orchestrator cycle holds the cycle "
             "lease; nothing to do\"",
             l->other, l->other_left_sec);
}

/* Logs the loss once per hold. */
static Status lost(Lease *l, const char *why, const char *holder_now, const char *fence_now,
                   double left_sec)
{
    if (!l->lost_logged) {
        l->lost_logged = true;
        log_error("cycle.lease_lost",
                  "why=%s fence=%s fence_now=%s holder_now=%s lease_left_sec=%.1f "
                  "margin_sec=%s msg=\"this cycle no longer holds the cycle lease; it takes no "
                  "further action and ends non-zero\"",
                  why, l->fence, fence_now, holder_now, left_sec, l->margin);
    }
    return STATUS_ERR_LEASE_LOST;
}

Status lease_verify(Lease *l, PGconn *conn)
{
    if (!l)
        return STATUS_OK;
    if (!l->held)
        return lost(l, "not_held", "", "", 0);
    pthread_mutex_lock(&l->mu);
    bool refused = l->lost; /* a renewal already found the row taken or expired */
    pthread_mutex_unlock(&l->mu);
    const char *p[] = {l->token, l->fence, l->margin};
    PGresult *res = db_exec_params(conn, "lease_verify", SQL_VERIFY, 3, p, PGRES_TUPLES_OK);
    if (!res)
        return refused ? lost(l, "renewal_refused", "", "", 0) : STATUS_ERR_DB;
    Status st;
    if (PQntuples(res) != 1) {
        st = lost(l, "row_missing", "", "", 0);
    } else {
        bool mine = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        bool long_enough = strcmp(PQgetvalue(res, 0, 1), "t") == 0;
        char *end = NULL;
        double left = strtod(PQgetvalue(res, 0, 2), &end);
        const char *why = !mine ? "taken_over" : left <= 0 ? "expired" : "expiring";
        if (mine && long_enough && !refused)
            st = STATUS_OK;
        else
            st = lost(l, refused && mine ? "renewal_refused" : why, PQgetvalue(res, 0, 3),
                      PQgetvalue(res, 0, 4), left);
    }
    PQclear(res);
    return st;
}

/* Releases on the lease's own connection when the cycle's is gone (a terminated backend, a
 * network cut), so a live process does not leave its hold to expire: the renewal thread's
 * connection, or a new one. Returns true when the statement ran. */
static bool release_on_own_connection(Lease *l, const char *const *p, bool *released)
{
    char err[200] = "";
    if (!l->renew_conn || PQstatus(l->renew_conn) != CONNECTION_OK) {
        PQfinish(l->renew_conn);
        l->renew_conn = connect_quiet(l->cfg, "5", err, sizeof err);
    }
    PGresult *res =
        l->renew_conn ? PQexecParams(l->renew_conn, SQL_RELEASE, 2, NULL, p, NULL, NULL, 0) : NULL;
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (ok)
        *released = strcmp(PQcmdTuples(res), "1") == 0;
    else
        log_warn("cycle.lease_not_released",
                 "fence=%s ttl_sec=%s error=%s msg=\"the lease expires on its own\"", l->fence,
                 l->ttl,
                 err[0]          ? err
                 : l->renew_conn ? PQerrorMessage(l->renew_conn)
                                 : "");
    PQclear(res);
    return ok;
}

void lease_release(Lease *l, PGconn *conn)
{
    if (!l || !l->held)
        return;
    stop_renewal(l);
    l->held = false;
    if (l->renew_errors > 0)
        log_warn("cycle.lease_renew_failed", "fence=%s failures=%lld renewals=%lld last_error=%s",
                 l->fence, l->renew_errors, l->renewals, l->renew_error);
    const char *p[] = {l->token, l->fence};
    bool released = false;
    if (conn && PQstatus(conn) == CONNECTION_OK) {
        int rows = 0;
        if (db_exec_command(conn, "lease_release", SQL_RELEASE, 2, p, &rows) != STATUS_OK)
            return; /* logged; the lease expires on its own */
        released = rows == 1;
    } else if (!release_on_own_connection(l, p, &released)) {
        return;
    }
    log_debug("cycle.lease_released", "fence=%s renewals=%lld released=%s", l->fence, l->renewals,
              released ? "true" : "false");
}

void lease_guard(const Lease *l, const char **holder, const char **fence)
{
    *holder = l && l->held ? l->token : NULL;
    *fence = l && l->held ? l->fence : NULL;
}

long long lease_fence(const Lease *l)
{
    return l ? strtoll(l->fence, NULL, 10) : 0;
}

void lease_free(Lease *l)
{
    if (!l)
        return;
    stop_renewal(l);
    PQfinish(l->renew_conn);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    free(l);
}
