/* dblog.c -- copy of the orchestrator's logs in system_logs (see dblog.h). */
#include "dblog.h"

#include <cJSON.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "taskfile.h"

static struct {
    bool on;
    bool flushing; /* our own log lines while flushing are not buffered */
    char source[CONFIG_ITEM_MAX];
    long long cycle;
    cJSON *batch; /* array of system_logs entries */
    DblogStats stats;
} g_db;

/* The RunPod create threads log concurrently: the batch and the counters are only touched
 * under this lock. */
static pthread_mutex_t g_db_lock = PTHREAD_MUTEX_INITIALIZER;

static void sink_locked(LogLevel level, const char *event, const char *message,
                        const char *fields_json)
{
    if (!g_db.on || g_db.flushing || !g_db.batch)
        return;
    if (g_db.stats.pending >= DBLOG_BUFFER_MAX) {
        g_db.stats.dropped++;
        return;
    }
    cJSON *fields = cJSON_Parse(fields_json);
    cJSON *e = cJSON_CreateObject();
    if (!e) {
        cJSON_Delete(fields);
        g_db.stats.dropped++;
        return;
    }
    cJSON_AddStringToObject(e, "source_type", "orchestrator");
    cJSON_AddStringToObject(e, "source_id", g_db.source);
    cJSON_AddStringToObject(e, "log_level", log_level_name(level));
    char msg[1024];
    if (message && strcmp(message, event) != 0)
        snprintf(msg, sizeof msg, "%s: %s", event, message);
    else
        snprintf(msg, sizeof msg, "%s", event);
    cJSON_AddStringToObject(e, "message", msg);
    cJSON *w = cJSON_GetObjectItemCaseSensitive(fields, "worker_id");
    if (cJSON_IsString(w) && w->valuestring[0])
        cJSON_AddStringToObject(e, "worker_id", w->valuestring);
    cJSON *t = cJSON_GetObjectItemCaseSensitive(fields, "task_id");
    if (cJSON_IsString(t) && taskfile_is_uuid(t->valuestring))
        cJSON_AddStringToObject(e, "task_id", t->valuestring);
    if (g_db.cycle > 0)
        cJSON_AddNumberToObject(e, "cycle_number", (double)g_db.cycle);
    cJSON *meta = fields ? fields : cJSON_CreateObject();
    cJSON_AddStringToObject(meta, "event", event);
    cJSON_AddItemToObject(e, "metadata", meta);
    cJSON_AddItemToArray(g_db.batch, e);
    g_db.stats.pending++;
}

static void sink(void *ctx, LogLevel level, const char *event, const char *message,
                 const char *fields_json)
{
    (void)ctx;
    pthread_mutex_lock(&g_db_lock);
    sink_locked(level, event, message, fields_json);
    pthread_mutex_unlock(&g_db_lock);
}

void dblog_start(const Config *cfg)
{
    if (!cfg->enable_db_logging || g_db.on)
        return;
    g_db.batch = cJSON_CreateArray();
    if (!g_db.batch)
        return;
    snprintf(g_db.source, sizeof g_db.source, "%s", cfg->orchestrator_instance_id);
    g_db.on = true;
    log_set_sink(sink, NULL);
}

void dblog_set_cycle(long long cycle)
{
    g_db.cycle = cycle;
}

DblogStats dblog_stats(void)
{
    pthread_mutex_lock(&g_db_lock);
    DblogStats st = g_db.stats;
    pthread_mutex_unlock(&g_db_lock);
    return st;
}

void dblog_stop(void)
{
    if (g_db.on)
        log_set_sink(NULL, NULL);
    if (g_db.stats.pending > 0) /* a cycle that never reached its flush */
        fprintf(stderr, "{\"severity\":\"WARNING\",\"event\":\"dblog.dropped\",\"lines\":%lld}\n",
                g_db.stats.pending);
    cJSON_Delete(g_db.batch);
    memset(&g_db, 0, sizeof g_db);
}

void dblog_flush(PGconn *conn, const Config *cfg)
{
    if (!g_db.on || !conn || PQstatus(conn) != CONNECTION_OK)
        return;
    /* Take the pending lines out under the lock; write them without it. */
    pthread_mutex_lock(&g_db_lock);
    g_db.flushing = true;
    cJSON *batch = NULL;
    long long n = g_db.stats.pending;
    if (n > 0) {
        batch = g_db.batch;
        g_db.batch = cJSON_CreateArray();
        g_db.stats.pending = 0;
    }
    pthread_mutex_unlock(&g_db_lock);
    if (batch) {
        char *text = cJSON_PrintUnformatted(batch);
        const char *p[] = {text};
        PGresult *res = text ? PQexecParams(conn, "SELECT func_insert_logs_batch($1::jsonb)::text",
                                            1, NULL, p, NULL, NULL, 0)
                             : NULL;
        long long inserted = -1;
        if (res && PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
            cJSON *r = cJSON_Parse(PQgetvalue(res, 0, 0));
            cJSON *ins = cJSON_GetObjectItemCaseSensitive(r, "inserted");
            if (cJSON_IsNumber(ins))
                inserted = (long long)ins->valuedouble;
            cJSON_Delete(r);
        }
        pthread_mutex_lock(&g_db_lock);
        if (inserted < 0) {
            g_db.stats.dropped += n;
        } else {
            g_db.stats.written += inserted;
            g_db.stats.dropped += n - inserted;
        }
        pthread_mutex_unlock(&g_db_lock);
        if (inserted < 0)
            log_warn("dblog.write_failed", "lines=%lld error=%s", n,
                     res ? PQresultErrorMessage(res) : "out of memory");
        PQclear(res);
        free(text);
        cJSON_Delete(batch);
    }
    /* Retention, at most hourly across every instance and cron run. */
    char hours[16];
    snprintf(hours, sizeof hours, "%d", cfg->db_log_retention_hours);
    const char *p[] = {hours};
    PGresult *res =
        PQexecParams(conn,
                     "WITH due AS (UPDATE orchestrator_state SET last_log_cleanup_at = now()"
                     "  WHERE id = 1 AND (last_log_cleanup_at IS NULL"
                     "    OR last_log_cleanup_at < now() - interval '1 hour') RETURNING 1)"
                     " SELECT func_cleanup_old_logs($1::int)::text FROM due",
                     1, NULL, p, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        log_warn("dblog.cleanup_failed", "error=%s", PQresultErrorMessage(res));
    else if (PQntuples(res) == 1)
        log_info("dblog.cleanup", "result=%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    pthread_mutex_lock(&g_db_lock);
    g_db.flushing = false;
    pthread_mutex_unlock(&g_db_lock);
}
