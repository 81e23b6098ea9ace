/* harness.c -- see harness.h. */
#include "harness.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static PGconn *connect_db(const char *dbname)
{
    const char *keys[] = {"dbname", NULL};
    const char *vals[] = {dbname, NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 0);
    if (!c || PQstatus(c) != CONNECTION_OK)
        ck_abort_msg("cannot connect to the test PostgreSQL (PGHOST=%s): %s -- run the tests "
                     "through scripts/test.sh, which starts one",
                     getenv("PGHOST") ? getenv("PGHOST") : "(unset)",
                     c ? PQerrorMessage(c) : "out of memory");
    return c;
}

static void exec_or_abort(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        ck_abort_msg("SQL failed: %s: %s", sql, PQerrorMessage(c));
    PQclear(r);
}

PGconn *harness_db_create(char name[64])
{
    const char *tpl = getenv("ORCH_TEST_TEMPLATE_DB");
    if (!tpl || !tpl[0])
        tpl = "orch_tpl";
    static unsigned counter;
    snprintf(name, 64, "t_%d_%u", (int)getpid(), counter++);
    PGconn *admin = connect_db("postgres");
    char sql[256];
    /* Identifiers cannot be parameters; both names are generated here, never user input. */
    snprintf(sql, sizeof sql, "CREATE DATABASE %s TEMPLATE %s", name, tpl);
    exec_or_abort(admin, sql);
    PQfinish(admin);
    return connect_db(name);
}

void harness_db_drop(PGconn *conn, const char *name)
{
    if (conn)
        PQfinish(conn);
    if (!name || !name[0])
        return;
    PGconn *admin = connect_db("postgres");
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    exec_or_abort(admin, sql);
    PQfinish(admin);
}

void harness_db_url(const char *name, char *out, size_t cap)
{
    const char *host = getenv("PGHOST");
    const char *port = getenv("PGPORT");
    const char *user = getenv("PGUSER");
    snprintf(out, cap, "postgresql:///%s?host=%s&port=%s&user=%s", name, host ? host : "/tmp",
             port ? port : "5432", user ? user : "postgres");
}

char *harness_sql(PGconn *conn, const char *sql)
{
    PGresult *r = PQexec(conn, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
        ck_abort_msg("SQL failed: %s: %s", sql, PQerrorMessage(conn));
    char *v = strdup(PQntuples(r) > 0 && PQnfields(r) > 0 ? PQgetvalue(r, 0, 0) : "");
    PQclear(r);
    return v;
}

long long harness_sql_ll(PGconn *conn, const char *sql)
{
    char *v = harness_sql(conn, sql);
    char *end = NULL;
    long long x = strtoll(v, &end, 10);
    ck_assert_msg(end && *end == '\0' && end != v, "not a number: %s -> '%s'", sql, v);
    free(v);
    return x;
}
