/* db_ops.c -- the statements of the operator commands: queueing tasks (submit) and reading
 * system_logs (logs). See db.h.
 *
 * Shell module. Every value travels as a parameter.
 */
#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_exec.h"

/* ------------------------------------------------------------------------------------------ */
/* Operator commands                                                                           */

Status db_insert_tasks(PGconn *conn, const char *tasks_json, cJSON **ids)
{
    const char *p[] = {tasks_json};
    /* One statement: all rows or none. */
    PGresult *res = db_exec_params(
        conn, "insert_tasks",
        "INSERT INTO tasks (task_type, params, run_type, dependant_on, max_attempts)"
        " SELECT r.task_type, coalesce(r.params, '{}'::jsonb), coalesce(r.run_type, 'gpu'),"
        "   r.dependant_on, r.max_attempts"
        " FROM jsonb_array_elements($1::jsonb) WITH ORDINALITY AS e(doc, n),"
        "   jsonb_to_record(e.doc) AS r(task_type text, params jsonb, run_type text,"
        "     dependant_on uuid[], max_attempts int)"
        " ORDER BY e.n RETURNING id::text",
        1, p, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    cJSON *arr = cJSON_CreateArray();
    for (int r = 0; arr && r < PQntuples(res); r++)
        cJSON_AddItemToArray(arr, cJSON_CreateString(PQgetvalue(res, r, 0)));
    PQclear(res);
    if (!arr)
        return STATUS_ERR_NOMEM;
    *ids = arr;
    return STATUS_OK;
}

Status db_query_logs(PGconn *conn, const LogQuery *q, cJSON **rows)
{
    char cycle[32], since[32], limit[16];
    snprintf(cycle, sizeof cycle, "%lld", q->cycle);
    snprintf(since, sizeof since, "%lld", q->since_sec);
    snprintf(limit, sizeof limit, "%d", q->limit);
    const char *p[] = {q->worker_id,
                       q->task_id,
                       q->cycle > 0 ? cycle : NULL,
                       q->min_level,
                       q->since_sec > 0 ? since : NULL,
                       limit};
    PGresult *res = db_exec_params(
        conn, "query_logs",
        "SELECT to_char(timestamp AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"'),"
        " log_level, source_type, source_id, coalesce(worker_id, ''), coalesce(task_id::text, ''),"
        " coalesce(cycle_number::text, ''), message, coalesce(metadata, '{}'::jsonb)::text"
        " FROM (SELECT * FROM system_logs"
        "  WHERE ($1::text IS NULL OR worker_id = $1)"
        "    AND ($2::text IS NULL OR task_id::text = $2)"
        "    AND ($3::int IS NULL OR cycle_number = $3::int)"
        "    AND ($4::text IS NULL OR array_position(ARRAY['DEBUG','INFO','WARNING','ERROR',"
        "         'CRITICAL'], log_level) >= array_position(ARRAY['DEBUG','INFO','WARNING',"
        "         'ERROR','CRITICAL'], $4::text))"
        "    AND ($5::float8 IS NULL OR timestamp > now() - make_interval(secs => $5::float8))"
        "  ORDER BY timestamp DESC LIMIT $6::int) l"
        " ORDER BY timestamp",
        6, p, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    static const char *keys[] = {"time",      "level",   "source_type", "source_id",
                                 "worker_id", "task_id", "cycle",       "message"};
    cJSON *arr = cJSON_CreateArray();
    for (int r = 0; arr && r < PQntuples(res); r++) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
            break;
        for (int k = 0; k < 8; k++)
            cJSON_AddStringToObject(o, keys[k], PQgetvalue(res, r, k));
        cJSON *meta = cJSON_Parse(PQgetvalue(res, r, 8));
        cJSON_AddItemToObject(o, "metadata", meta ? meta : cJSON_CreateObject());
        cJSON_AddItemToArray(arr, o);
    }
    PQclear(res);
    if (!arr)
        return STATUS_ERR_NOMEM;
    *rows = arr;
    return STATUS_OK;
}
