/* gw_db.c -- the gateway's connection pool (see gw_db.h).
 *
 * Gateway module. Every value travels as a parameter of a prepared statement; no SQL is built
 * from input. Values are copied out of each PGresult before PQclear.
 */
#include "gw_db.h"

#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define POOL_MAX 64
#define WAIT_SEC 5

static const struct {
    const char *name;
    int n_params;
    const char *sql;
} STATEMENTS[GW_SQL_COUNT_] = {
    [GW_SQL_HEARTBEAT] = {"gw_heartbeat", 5,
                          "SELECT outcome, body::text FROM func_gateway_heartbeat($1, $2::int, "
                          "$3::int, $4::jsonb, $5::boolean)"},
    [GW_SQL_COUNTS] = {"gw_counts", 2,
                       "SELECT outcome, body::text FROM func_gateway_task_counts($1, $2)"},
    [GW_SQL_CLAIM] = {"gw_claim", 2, "SELECT outcome, body::text FROM func_gateway_claim($1, $2)"},
    [GW_SQL_HELD] = {"gw_held", 2,
                     "SELECT outcome, body::text FROM func_gateway_held_tasks($1, $2::int)"},
    [GW_SQL_UPDATE] = {"gw_update", 5,
                       "SELECT outcome, body::text FROM func_gateway_task_update($1, $2::uuid, $3, "
                       "$4, $5::boolean)"},
    [GW_SQL_FOR_UPLOAD] = {"gw_for_upload", 2,
                           "SELECT outcome, body::text FROM func_gateway_task_for_upload($1, "
                           "$2::uuid)"},
    [GW_SQL_COMPLETE] = {"gw_complete", 4,
                         "SELECT outcome, body::text FROM func_gateway_complete($1, $2::uuid, "
                         "$3::jsonb, $4)"},
};

typedef struct {
    PGconn *conn;      /* NULL: not open */
    unsigned prepared; /* bit i: STATEMENTS[i] is prepared on conn */
    bool busy;
} Slot;

/* A thread waiting for a connection. Waiters are served first come, first served: a released
 * slot is handed straight to the oldest waiter, so no request starves behind luckier ones (the
 * tail latency of 64 claimers sharing 8 connections depends on it). */
typedef struct Waiter {
    pthread_cond_t cv;
    Slot *got;
    struct Waiter *next;
} Waiter;

struct GwPool {
    pthread_mutex_t mu;
    Waiter *head, *tail; /* FIFO of waiting threads */
    char *conninfo;
    int size;
    Slot slots[POOL_MAX];
};

static PGconn *open_conn(const char *conninfo)
{
    const char *keys[] = {"dbname", "connect_timeout", "application_name", "options", NULL};
    /* A stuck statement must not hold a pooled connection for ever. */
    const char *vals[] = {conninfo[0] ? conninfo : NULL, "5", "orchestrator-gateway",
                          "-c statement_timeout=15000", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
    if (c && PQstatus(c) == CONNECTION_OK)
        return c;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", c ? PQerrorMessage(c) : "out of memory");
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    log_error("gateway.db_connect_failed", "error=%s msg=\"check GATEWAY_DATABASE_URL\"", msg);
    PQfinish(c);
    return NULL;
}

/* Warns when the gateway's role can touch the tables itself: it should hold only
 * orchestrator_worker, so a bug in the gateway can do no more than a worker could. */
static void check_role(PGconn *c)
{
    PGresult *r = PQexec(c, "SELECT current_user, has_table_privilege('tasks', 'UPDATE') OR "
                            "has_table_privilege('workers', 'UPDATE'), "
                            "pg_has_role('orchestrator_worker', 'USAGE')");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
        bool tables = strcmp(PQgetvalue(r, 0, 1), "t") == 0;
        bool worker = strcmp(PQgetvalue(r, 0, 2), "t") == 0;
        if (tables || !worker)
            log_warn("gateway.role_too_powerful",
                     "role=%s can_write_tables=%s holds_orchestrator_worker=%s msg=\"connect the "
                     "gateway as a login role granted only orchestrator_worker "
                     "(GATEWAY_DATABASE_URL)\"",
                     PQgetvalue(r, 0, 0), tables ? "true" : "false", worker ? "true" : "false");
        else
            log_info("gateway.db_role", "role=%s holds_orchestrator_worker=true",
                     PQgetvalue(r, 0, 0));
    }
    PQclear(r);
}

Status gw_pool_new(const char *conninfo, int size, GwPool **out)
{
    if (size < 1 || size > POOL_MAX)
        return STATUS_ERR_CONFIG;
    GwPool *p = calloc(1, sizeof *p);
    if (!p)
        return STATUS_ERR_NOMEM;
    p->conninfo = strdup(conninfo ? conninfo : "");
    p->size = size;
    if (!p->conninfo || pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p->conninfo);
        free(p);
        return STATUS_ERR_NOMEM;
    }
    p->slots[0].conn = open_conn(p->conninfo);
    if (!p->slots[0].conn) {
        gw_pool_free(p);
        return STATUS_ERR_DB;
    }
    check_role(p->slots[0].conn);
    *out = p;
    return STATUS_OK;
}

void gw_pool_free(GwPool *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->size; i++)
        PQfinish(p->slots[i].conn);
    pthread_mutex_destroy(&p->mu);
    free(p->conninfo);
    free(p);
}

void gw_result_clear(GwResult *r)
{
    if (!r)
        return;
    free(r->body);
    memset(r, 0, sizeof *r);
}

/* A free slot, preferring one with an open connection; NULL when all are busy. Under mu. */
static Slot *free_slot(GwPool *p)
{
    Slot *closed = NULL;
    for (int i = 0; i < p->size; i++) {
        if (p->slots[i].busy)
            continue;
        if (p->slots[i].conn)
            return &p->slots[i];
        if (!closed)
            closed = &p->slots[i];
    }
    return closed;
}

/* Takes a slot, waiting in line up to WAIT_SEC; NULL on timeout. */
static Slot *acquire(GwPool *p)
{
    pthread_mutex_lock(&p->mu);
    Slot *got = p->head ? NULL : free_slot(p);
    if (got) {
        got->busy = true;
        pthread_mutex_unlock(&p->mu);
        return got;
    }
    Waiter w;
    memset(&w, 0, sizeof w);
    if (pthread_cond_init(&w.cv, NULL) != 0) {
        pthread_mutex_unlock(&p->mu);
        return NULL;
    }
    if (p->tail)
        p->tail->next = &w;
    else
        p->head = &w;
    p->tail = &w;
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += WAIT_SEC;
    while (!w.got && pthread_cond_timedwait(&w.cv, &p->mu, &deadline) != ETIMEDOUT) {
    }
    if (!w.got) { /* timed out: leave the line */
        Waiter **pp = &p->head;
        Waiter *prev = NULL;
        while (*pp && *pp != &w) {
            prev = *pp;
            pp = &(*pp)->next;
        }
        if (*pp)
            *pp = w.next;
        if (p->tail == &w)
            p->tail = prev;
    }
    got = w.got;
    pthread_mutex_unlock(&p->mu);
    pthread_cond_destroy(&w.cv);
    return got;
}

/* Hands s to the oldest waiter, or frees it. */
static void release(GwPool *p, Slot *s)
{
    pthread_mutex_lock(&p->mu);
    Waiter *w = p->head;
    if (w) {
        p->head = w->next;
        if (!p->head)
            p->tail = NULL;
        w->got = s; /* stays busy: it changes hands */
        pthread_cond_signal(&w->cv);
    } else {
        s->busy = false;
    }
    pthread_mutex_unlock(&p->mu);
}

static void drop(Slot *s)
{
    PQfinish(s->conn);
    s->conn = NULL;
    s->prepared = 0;
}

/* Makes sure s holds a healthy connection. An idle connection whose server went away has a
 * FATAL message or EOF waiting: PQconsumeInput notices it before we send anything. */
static bool ready(GwPool *p, Slot *s)
{
    if (s->conn && (PQconsumeInput(s->conn) == 0 || PQstatus(s->conn) != CONNECTION_OK))
        drop(s);
    if (!s->conn) {
        s->conn = open_conn(p->conninfo);
        if (s->conn)
            log_info("gateway.db_connected", "msg=\"pooled connection opened\"");
    }
    return s->conn != NULL;
}

/* Runs the statement once; NULL and *dead when the connection died under it. */
static PGresult *exec_once(Slot *s, GwSql which, const char *const *params, bool *dead)
{
    *dead = false;
    unsigned bit = 1u << which;
    if (!(s->prepared & bit)) {
        PGresult *pr = PQprepare(s->conn, STATEMENTS[which].name, STATEMENTS[which].sql,
                                 STATEMENTS[which].n_params, NULL);
        bool ok = PQresultStatus(pr) == PGRES_COMMAND_OK;
        PQclear(pr);
        if (!ok) {
            *dead = PQstatus(s->conn) != CONNECTION_OK;
            if (!*dead)
                log_error("gateway.db_prepare_failed", "query=%s error=%s", STATEMENTS[which].name,
                          PQerrorMessage(s->conn));
            return NULL;
        }
        s->prepared |= bit;
    }
    PGresult *r = PQexecPrepared(s->conn, STATEMENTS[which].name, STATEMENTS[which].n_params,
                                 params, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK)
        return r;
    *dead = PQstatus(s->conn) != CONNECTION_OK;
    if (!*dead) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        char msg[512];
        snprintf(msg, sizeof msg, "%s", r ? PQresultErrorMessage(r) : PQerrorMessage(s->conn));
        size_t n = strlen(msg);
        while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
            msg[--n] = '\0';
        log_error("gateway.db_query_failed", "query=%s sqlstate=%s error=%s",
                  STATEMENTS[which].name, state ? state : "", msg);
    }
    PQclear(r);
    return NULL;
}

Status gw_pool_call(GwPool *p, GwSql which, const char *const *params, GwResult *out)
{
    if ((int)which < 0 || which >= GW_SQL_COUNT_)
        return STATUS_ERR_INTERNAL;
    Slot *s = acquire(p);
    if (!s) {
        log_warn("gateway.db_pool_exhausted",
                 "wait_sec=%d msg=\"every pooled connection stayed busy; raise "
                 "GATEWAY_DB_POOL_SIZE or look for slow statements\"",
                 WAIT_SEC);
        return STATUS_ERR_DB;
    }
    PGresult *r = NULL;
    /* A connection that died between the check and the statement (a restart racing us) is
     * retried once on a fresh one; a statement the server answered is never repeated. */
    for (int attempt = 0; attempt < 2 && !r; attempt++) {
        bool dead = false;
        bool was_open = s->conn != NULL;
        if (!ready(p, s))
            break;
        bool fresh = !was_open || s->prepared == 0;
        r = exec_once(s, which, params, &dead);
        if (!r && dead) {
            log_warn("gateway.db_connection_lost", "query=%s msg=\"reconnecting\"",
                     STATEMENTS[which].name);
            drop(s);
            if (fresh)
                break; /* a brand-new connection that died: the server is down */
            continue;
        }
        break;
    }
    Status st = STATUS_ERR_DB;
    if (r && PQntuples(r) == 1 && PQnfields(r) == 2) {
        GwResult res;
        memset(&res, 0, sizeof res);
        snprintf(res.outcome, sizeof res.outcome, "%s", PQgetvalue(r, 0, 0));
        if (!PQgetisnull(r, 0, 1)) {
            res.body = strdup(PQgetvalue(r, 0, 1));
            if (!res.body)
                st = STATUS_ERR_NOMEM;
        }
        if (st != STATUS_ERR_NOMEM) {
            *out = res;
            st = STATUS_OK;
        }
    } else if (r) {
        log_error("gateway.db_bad_answer", "query=%s rows=%d", STATEMENTS[which].name,
                  PQntuples(r));
    }
    PQclear(r);
    release(p, s);
    return st;
}
