/* migrate.c -- applies sql/migrations in order, idempotently, one transaction per migration
 * under a transaction-level advisory lock (see migrate.h).
 *
 * Shell module (libpq). Must not: build SQL from values (versions and checksums are
 * parameters; a migration body is a fixed script from our own source tree, sent with PQexec
 * because only the simple-query protocol runs several statements), apply anything after a
 * checksum mismatch, return with a transaction open, or keep anything in the server session
 * between transactions (no session advisory lock, no session SET): behind a
 * transaction-pooling pooler the next transaction may run on another server session, so
 * everything a step relies on is taken inside that step's transaction.
 */
#include "migrate.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define CHECKSUM_LEN 32
#define BYTEA_OID 17

/* ------------------------------------------------------------------------------------------ */
/* libpq helpers                                                                               */

/* Copies a server message into buf, without its trailing newlines. */
static void clean_message(const char *msg, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s", msg ? msg : "");
    size_t len = strlen(buf);
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == ' '))
        buf[--len] = '\0';
}

/* Runs one parameterised statement; returns the result when its status is `want` (caller
 * PQclears), else logs migrate.query_failed naming `what` and returns NULL. */
static PGresult *exec_params(PGconn *conn, const char *what, const char *sql, int n,
                             const char *const *params, ExecStatusType want)
{
    PGresult *res = PQexecParams(conn, sql, n, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) == want)
        return res;
    char msg[512];
    clean_message(res ? PQresultErrorMessage(res) : PQerrorMessage(conn), msg, sizeof msg);
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    log_error("migrate.query_failed", "query=%s sqlstate=%s error=%s", what, state ? state : "",
              msg);
    PQclear(res);
    return NULL;
}

static Status exec_ok(PGconn *conn, const char *what, const char *sql, int n,
                      const char *const *params)
{
    PGresult *res = exec_params(conn, what, sql, n, params, PGRES_COMMAND_OK);
    if (!res)
        return STATUS_ERR_DB;
    PQclear(res);
    return STATUS_OK;
}

static Status exec_tuples(PGconn *conn, const char *what, const char *sql, int n,
                          const char *const *params, PGresult **out)
{
    PGresult *res = exec_params(conn, what, sql, n, params, PGRES_TUPLES_OK);
    if (!res)
        return STATUS_ERR_DB;
    *out = res;
    return STATUS_OK;
}

/* md5 of the file's exact bytes, computed by the server (binary bytea parameter, so the
 * database and client encodings do not matter). */
static Status file_checksum(PGconn *conn, const MigrateFile *f, char out[CHECKSUM_LEN + 1])
{
    if (f->len > (size_t)MIGRATE_MAX_FILE_BYTES) {
        log_error("migrate.too_large", "version=%s bytes=%zu max=%d", f->version, f->len,
                  MIGRATE_MAX_FILE_BYTES);
        return STATUS_ERR_CAPACITY;
    }
    const Oid types[] = {BYTEA_OID};
    const char *values[] = {(const char *)f->sql};
    const int lengths[] = {(int)f->len};
    const int formats[] = {1};
    PGresult *res =
        PQexecParams(conn, "SELECT md5($1::bytea)", 1, types, values, lengths, formats, 0);
    Status st = STATUS_ERR_DB;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 ||
        strlen(PQgetvalue(res, 0, 0)) != CHECKSUM_LEN) {
        char msg[512];
        clean_message(res ? PQresultErrorMessage(res) : PQerrorMessage(conn), msg, sizeof msg);
        log_error("migrate.query_failed", "query=checksum version=%s error=%s", f->version, msg);
        goto out;
    }
    memcpy(out, PQgetvalue(res, 0, 0), CHECKSUM_LEN + 1);
    st = STATUS_OK;
out:
    PQclear(res);
    return st;
}

/* 1-based line of a 1-based character position in a script (bytes approximate characters;
 * the migrations are ASCII apart from comments). 0 when unknown. */
static long position_line(const MigrateFile *f, const char *pos)
{
    if (!pos)
        return 0;
    char *end = NULL;
    long p = strtol(pos, &end, 10);
    if (!end || *end != '\0' || p < 1)
        return 0;
    long line = 1;
    for (size_t i = 0; i < f->len && (long)i < p - 1; i++)
        if (f->sql[i] == '\n')
            line++;
    return line;
}

static double elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1000.0 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* ------------------------------------------------------------------------------------------ */
/* Applying                                                                                    */

static const char SQL_CREATE_SCHEMA_MIGRATIONS[] =
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    " version text PRIMARY KEY,"
    " checksum text NOT NULL,"
    " applied_at timestamptz NOT NULL DEFAULT now())";

/* Opens a transaction holding the migration lock: pg_advisory_xact_lock(MIGRATE_LOCK_KEY),
 * released by COMMIT or ROLLBACK, and notices quietened for this transaction only (e.g.
 * "relation already exists, skipping" would reach stderr unformatted). Waits while another
 * migrate holds the lock. On failure nothing is left open. */
static Status begin_locked(PGconn *conn)
{
    Status st = exec_ok(conn, "begin", "BEGIN", 0, NULL);
    if (st != STATUS_OK)
        return st;
    PGresult *res = NULL;
    st = exec_tuples(conn, "quiet_notices",
                     "SELECT set_config('client_min_messages', 'warning', true)", 0, NULL, &res);
    PQclear(res);
    res = NULL;
    const char *key[] = {MIGRATE_LOCK_KEY};
    if (st == STATUS_OK) {
        log_debug("migrate.lock_wait", "key=%s", MIGRATE_LOCK_KEY);
        st = exec_tuples(conn, "advisory_xact_lock", "SELECT pg_advisory_xact_lock($1::bigint)", 1,
                         key, &res);
        PQclear(res);
    }
    if (st != STATUS_OK && PQtransactionStatus(conn) != PQTRANS_IDLE)
        PQclear(PQexec(conn, "ROLLBACK"));
    return st;
}

/* Under the lock: is version recorded already (by a concurrent migrate since we read the
 * table), and with which checksum? *recorded gets it, or "" when not. */
static Status recorded_checksum(PGconn *conn, const char *version, char recorded[CHECKSUM_LEN + 1])
{
    const char *p[] = {version};
    PGresult *res = NULL;
    Status st =
        exec_tuples(conn, "recheck_migration",
                    "SELECT checksum FROM schema_migrations WHERE version = $1", 1, p, &res);
    if (st != STATUS_OK)
        return st;
    snprintf(recorded, CHECKSUM_LEN + 1, "%s", PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return STATUS_OK;
}

static void log_mismatch(const char *version, const char *recorded, const char *sum)
{
    char file[MIGRATE_VERSION_MAX + 32], msg[MIGRATE_VERSION_MAX + 160];
    snprintf(file, sizeof file, "sql/migrations/%s.sql", version);
    snprintf(msg, sizeof msg,
             "%s was changed after it was applied to this database; nothing was applied", file);
    log_error("migrate.checksum_mismatch",
              "version=%s file=%s recorded_checksum=%s file_checksum=%s msg=%s "
              "hint=\"never edit an applied migration: restore the released file and put the "
              "change in a new migration (the next number)\"",
              version, file, recorded, sum, msg);
}

/* Applies one file and its schema_migrations row in one transaction holding the migration
 * lock, unless a concurrent migrate recorded it meanwhile (*applied = false then). */
static Status apply_one(PGconn *conn, const MigrateFile *f, const char *checksum, bool *applied)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    Status st = begin_locked(conn);
    if (st != STATUS_OK)
        return st;
    char recorded[CHECKSUM_LEN + 1];
    st = recorded_checksum(conn, f->version, recorded);
    if (st != STATUS_OK)
        goto rollback;
    if (recorded[0]) {
        if (strcmp(recorded, checksum) != 0) {
            log_mismatch(f->version, recorded, checksum);
            st = STATUS_ERR_DB;
            goto rollback;
        }
        log_info("migrate.applied_concurrently",
                 "version=%s msg=\"another migrate applied it while this one waited\"", f->version);
        *applied = false;
        return exec_ok(conn, "commit", "COMMIT", 0, NULL);
    }

    PGresult *res = PQexec(conn, (const char *)f->sql);
    ExecStatusType rs = PQresultStatus(res);
    if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK && rs != PGRES_EMPTY_QUERY) {
        char msg[1024];
        clean_message(res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL, msg,
                      sizeof msg);
        if (!msg[0])
            clean_message(res ? PQresultErrorMessage(res) : PQerrorMessage(conn), msg, sizeof msg);
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        const char *ctx = res ? PQresultErrorField(res, PG_DIAG_CONTEXT) : NULL;
        long line =
            position_line(f, res ? PQresultErrorField(res, PG_DIAG_STATEMENT_POSITION) : NULL);
        char file[MIGRATE_VERSION_MAX + 32];
        snprintf(file, sizeof file, "sql/migrations/%s.sql", f->version);
        log_error("migrate.failed",
                  "version=%s file=%s line=%ld sqlstate=%s error=%s context=%s "
                  "msg=\"migration rolled back; fix the database or the migration and rerun\"",
                  f->version, file, line, state ? state : "", msg, ctx ? ctx : "");
        PQclear(res);
        st = STATUS_ERR_DB;
        goto rollback;
    }
    PQclear(res);

    const char *p[] = {f->version, checksum};
    st = exec_ok(conn, "record_migration",
                 "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)", 2, p);
    if (st != STATUS_OK)
        goto rollback;
    st = exec_ok(conn, "commit", "COMMIT", 0, NULL);
    if (st != STATUS_OK)
        goto rollback;
    log_info("migrate.applied", "version=%s checksum=%s duration_ms=%.1f", f->version, checksum,
             elapsed_ms(&t0));
    *applied = true;
    return STATUS_OK;

rollback:
    if (PQtransactionStatus(conn) != PQTRANS_IDLE)
        PQclear(PQexec(conn, "ROLLBACK"));
    return st;
}

/* Index of the file with this version, or -1. */
static long find_file(const MigrateFile *files, size_t n, const char *version)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(files[i].version, version) == 0)
            return (long)i;
    return -1;
}

/* Creates schema_migrations if missing and reads what it records, in one transaction under
 * the migration lock (two first runs would otherwise race on CREATE TABLE). *out gets the rows
 * (version, checksum; caller PQclears). */
static Status read_recorded(PGconn *conn, PGresult **out)
{
    Status st = begin_locked(conn);
    if (st != STATUS_OK)
        return st;
    PGresult *rec = NULL;
    st = exec_ok(conn, "create_schema_migrations", SQL_CREATE_SCHEMA_MIGRATIONS, 0, NULL);
    if (st == STATUS_OK)
        st = exec_tuples(conn, "read_schema_migrations",
                         "SELECT version, checksum FROM schema_migrations ORDER BY version", 0,
                         NULL, &rec);
    if (st == STATUS_OK)
        st = exec_ok(conn, "commit", "COMMIT", 0, NULL);
    if (st != STATUS_OK) {
        PQclear(rec);
        if (PQtransactionStatus(conn) != PQTRANS_IDLE)
            PQclear(PQexec(conn, "ROLLBACK"));
        return st;
    }
    *out = rec;
    return STATUS_OK;
}

/* The body of migrate_apply_files: verify what is recorded, then apply what is pending, each
 * step in a transaction of its own holding the migration lock. */
static Status apply_all(PGconn *conn, const MigrateFile *files, size_t n,
                        char (*sums)[CHECKSUM_LEN + 1], MigrateReport *rep)
{
    Status st = STATUS_OK;
    for (size_t i = 0; i < n && st == STATUS_OK; i++)
        st = file_checksum(conn, &files[i], sums[i]);
    if (st != STATUS_OK)
        return st;
    PGresult *rec = NULL;
    st = read_recorded(conn, &rec);
    if (st != STATUS_OK)
        return st;

    /* Verify everything already applied before applying anything new. */
    bool *done = calloc(n ? n : 1, sizeof *done);
    if (!done) {
        st = STATUS_ERR_NOMEM;
        goto out;
    }
    int rows = PQntuples(rec);
    for (int r = 0; r < rows; r++) {
        const char *version = PQgetvalue(rec, r, 0);
        const char *recorded = PQgetvalue(rec, r, 1);
        long i = find_file(files, n, version);
        if (strcmp(version, rep->last_version) > 0)
            snprintf(rep->last_version, sizeof rep->last_version, "%s", version);
        if (i < 0) {
            rep->unknown++;
            log_warn("migrate.unknown_version",
                     "version=%s msg=\"recorded in schema_migrations but not known to this "
                     "binary; it was applied by a newer release\"",
                     version);
            continue;
        }
        if (strcmp(recorded, sums[i]) != 0) {
            log_mismatch(version, recorded, sums[i]);
            st = STATUS_ERR_DB;
            goto out_done;
        }
        done[i] = true;
        rep->skipped++;
    }

    for (size_t i = 0; i < n; i++) {
        if (done[i])
            continue;
        bool applied = false;
        st = apply_one(conn, &files[i], sums[i], &applied);
        if (st != STATUS_OK)
            goto out_done;
        if (applied)
            rep->applied++;
        else
            rep->skipped++;
        if (strcmp(files[i].version, rep->last_version) > 0)
            snprintf(rep->last_version, sizeof rep->last_version, "%s", files[i].version);
    }
    if (rep->applied == 0)
        log_info("migrate.up_to_date", "version=%s migrations=%zu", rep->last_version, n);
    else
        log_info("migrate.done", "applied=%d already_applied=%d version=%s", rep->applied,
                 rep->skipped, rep->last_version);
out_done:
    free(done);
out:
    PQclear(rec);
    return st;
}

Status migrate_apply_files(PGconn *conn, const MigrateFile *files, size_t n, MigrateReport *report)
{
    if (n > MIGRATE_MAX_FILES) {
        log_error("migrate.too_many", "files=%zu max=%d", n, MIGRATE_MAX_FILES);
        return STATUS_ERR_CAPACITY;
    }
    for (size_t i = 0; i < n; i++) {
        if (strlen(files[i].version) >= MIGRATE_VERSION_MAX ||
            (i > 0 && strcmp(files[i - 1].version, files[i].version) >= 0)) {
            log_error("migrate.bad_order",
                      "version=%s msg=\"migrations must have unique names "
                      "in ascending order, shorter than 128 bytes\"",
                      files[i].version);
            return STATUS_ERR_USAGE;
        }
    }
    if (PQtransactionStatus(conn) != PQTRANS_IDLE) {
        log_error("migrate.busy_connection", "msg=\"connection is inside a transaction\"");
        return STATUS_ERR_INTERNAL;
    }

    MigrateReport rep;
    memset(&rep, 0, sizeof rep);
    char(*sums)[CHECKSUM_LEN + 1] = calloc(n ? n : 1, sizeof *sums);
    Status st = sums ? apply_all(conn, files, n, sums, &rep) : STATUS_ERR_NOMEM;
    free(sums);
    if (PQtransactionStatus(conn) != PQTRANS_IDLE)
        PQclear(PQexec(conn, "ROLLBACK"));
    if (st == STATUS_OK)
        *report = rep;
    return st;
}

Status migrate_apply(PGconn *conn, MigrateReport *report)
{
    size_t n = 0;
    const MigrateFile *files = migrate_embedded_files(&n);
    return migrate_apply_files(conn, files, n, report);
}

/* ------------------------------------------------------------------------------------------ */
/* From a directory                                                                            */

/* NNNN_name.sql: digits, '_', then [A-Za-z0-9_]+, then ".sql". */
static bool is_migration_name(const char *s)
{
    size_t len = strlen(s);
    if (len < 7 || len >= MIGRATE_VERSION_MAX || strcmp(s + len - 4, ".sql") != 0)
        return false;
    size_t i = 0;
    while (s[i] >= '0' && s[i] <= '9')
        i++;
    if (i == 0 || s[i] != '_')
        return false;
    size_t name_start = ++i;
    for (; i < len - 4; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return false;
    }
    return i > name_start;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* Reads a whole file (at most MIGRATE_MAX_FILE_BYTES) into a NUL-terminated heap buffer. */
static Status read_file(const char *path, unsigned char **out, size_t *out_len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        log_error("migrate.read_failed", "path=%s error=%s", path, strerror(errno));
        return STATUS_ERR_CONFIG;
    }
    Status st = STATUS_ERR_NOMEM;
    size_t cap = 8192, len = 0;
    unsigned char *buf = malloc(cap + 1);
    if (!buf)
        goto out;
    for (;;) {
        if (len == cap) {
            if (cap >= (size_t)MIGRATE_MAX_FILE_BYTES) {
                log_error("migrate.too_large", "path=%s max=%d", path, MIGRATE_MAX_FILE_BYTES);
                st = STATUS_ERR_CAPACITY;
                goto out;
            }
            cap *= 2;
            unsigned char *bigger = realloc(buf, cap + 1);
            if (!bigger)
                goto out;
            buf = bigger;
        }
        size_t got = fread(buf + len, 1, cap - len, fp);
        len += got;
        if (got == 0) {
            if (ferror(fp)) {
                log_error("migrate.read_failed", "path=%s error=\"read error\"", path);
                st = STATUS_ERR_CONFIG;
                goto out;
            }
            break;
        }
    }
    if (len > (size_t)MIGRATE_MAX_FILE_BYTES) {
        log_error("migrate.too_large", "path=%s max=%d", path, MIGRATE_MAX_FILE_BYTES);
        st = STATUS_ERR_CAPACITY;
        goto out;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    buf = NULL;
    st = STATUS_OK;
out:
    free(buf);
    fclose(fp);
    return st;
}

Status migrate_apply_dir(PGconn *conn, const char *dir, MigrateReport *report)
{
    DIR *d = opendir(dir);
    if (!d) {
        log_error("migrate.read_failed", "path=%s error=%s", dir, strerror(errno));
        return STATUS_ERR_CONFIG;
    }
    Status st = STATUS_ERR_NOMEM;
    char(*names)[MIGRATE_VERSION_MAX] = calloc(MIGRATE_MAX_FILES, sizeof *names);
    MigrateFile *files = calloc(MIGRATE_MAX_FILES, sizeof *files);
    unsigned char **bodies = calloc(MIGRATE_MAX_FILES, sizeof *bodies);
    size_t n = 0;
    if (!names || !files || !bodies)
        goto out;

    const struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!is_migration_name(e->d_name))
            continue;
        if (n == MIGRATE_MAX_FILES) {
            log_error("migrate.too_many", "path=%s max=%d", dir, MIGRATE_MAX_FILES);
            st = STATUS_ERR_CAPACITY;
            goto out;
        }
        size_t len = strlen(e->d_name); /* < MIGRATE_VERSION_MAX: is_migration_name */
        memcpy(names[n], e->d_name, len + 1);
        n++;
    }
    if (n == 0) {
        log_error("migrate.read_failed", "path=%s error=\"no NNNN_name.sql files\"", dir);
        st = STATUS_ERR_CONFIG;
        goto out;
    }
    qsort(names, n, sizeof names[0], compare_names);

    for (size_t i = 0; i < n; i++) {
        char path[4096];
        int w = snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (w < 0 || (size_t)w >= sizeof path) {
            log_error("migrate.read_failed", "path=%s error=\"path too long\"", dir);
            st = STATUS_ERR_CAPACITY;
            goto out;
        }
        size_t len = 0;
        st = read_file(path, &bodies[i], &len);
        if (st != STATUS_OK)
            goto out;
        names[i][strlen(names[i]) - 4] = '\0'; /* version = name without ".sql" */
        files[i].version = names[i];
        files[i].sql = bodies[i];
        files[i].len = len;
    }
    st = migrate_apply_files(conn, files, n, report);
out:
    if (bodies)
        for (size_t i = 0; i < n; i++)
            free(bodies[i]);
    free(bodies);
    free(files);
    free(names);
    closedir(d);
    return st;
}

/* ------------------------------------------------------------------------------------------ */
/* Read-only: what would be applied (SAFE_MODE)                                                */

Status migrate_pending(PGconn *conn, MigratePending *out)
{
    size_t n = 0;
    const MigrateFile *files = migrate_embedded_files(&n);
    PGresult *res = NULL;
    Status st = exec_tuples(conn, "pending_table",
                            "SELECT to_regclass('schema_migrations') IS NOT NULL", 0, NULL, &res);
    if (st != STATUS_OK)
        return st;
    bool have_table = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    res = NULL;
    /* No schema_migrations yet: every migration is pending (an empty result stands for it). */
    st = exec_tuples(conn, "pending",
                     have_table ? "SELECT version FROM schema_migrations"
                                : "SELECT NULL::text WHERE false",
                     0, NULL, &res);
    if (st != STATUS_OK)
        return st;
    MigratePending p;
    memset(&p, 0, sizeof p);
    for (size_t i = 0; i < n; i++) {
        bool done = false;
        for (int r = 0; r < PQntuples(res) && !done; r++)
            done = !PQgetisnull(res, r, 0) && strcmp(PQgetvalue(res, r, 0), files[i].version) == 0;
        if (done)
            continue;
        if (p.count < MIGRATE_MAX_FILES)
            snprintf(p.versions[p.count], MIGRATE_VERSION_MAX, "%s", files[i].version);
        p.count++;
    }
    PQclear(res);
    *out = p;
    return STATUS_OK;
}
