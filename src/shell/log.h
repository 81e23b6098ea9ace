/* log.h -- the structured logger: one event per line on stderr (SPEC section 9).
 *
 * Shell module: the only writer of stderr. The pure core never logs; it returns reasons that
 * the shell logs.
 *
 * Every call names a stable dotted event and a field format checked by the compiler:
 *
 *     log_info("pod.created", "worker_id=%s pod_id=%s gpu=%s attempt=%d", w, p, g, n);
 *     log_warn("db.retry", "msg=\"connection lost, retrying\" delay_ms=%lld", delay);
 *
 * The format is a space-separated list of key=value pairs. A value is one printf conversion
 * (%s %d %i %u %ld %lld %lu %llu %zu %f %.3f %g %c; no '*') or a literal, bare or in double
 * quotes. %s values may hold any bytes: they are escaped for JSON, and registered secret values
 * are replaced by "***" before anything is written. A NULL %s is written as null.
 *
 * LOG_FORMAT=json (default) writes {"time":...,"severity":...,"event":...,<fields>}; text writes
 * "time SEVERITY event key=value ...". Each line is written with a single write(2).
 */
#ifndef ORCH_LOG_H
#define ORCH_LOG_H

#include <stddef.h>

#include "status.h"

typedef enum { LOG_DEBUG = 0, LOG_INFO, LOG_WARN, LOG_ERROR } LogLevel;
typedef enum { LOG_FORMAT_JSON = 0, LOG_FORMAT_TEXT } LogFormat;

/* Sink called with every emitted line (already redacted), e.g. to copy logs into system_logs.
 * fields_json is the JSON object of the fields only. Must not call the logger. */
typedef void (*LogSink)(void *ctx, LogLevel level, const char *event, const char *message,
                        const char *fields_json);

/* Sets the minimum level and the format. Cannot fail. Defaults: INFO, json. */
void log_configure(LogLevel min_level, LogFormat format);

/* Redirects output to fd (default 2). For tests. Cannot fail. */
void log_set_fd(int fd);

/* Source id written as "source" on every line (ORCHESTRATOR_INSTANCE_ID); copied. */
void log_set_source(const char *source_id);

/* Cycle number written as "cycle" on every line while > 0. */
void log_set_cycle(long long cycle);

/* Registers a secret value to be scrubbed from every %s value. Values shorter than 4 bytes are
 * ignored (they would scrub ordinary words). Copied; any number are kept. Returns STATUS_OK, or
 * STATUS_ERR_NOMEM when it could not be kept -- then the caller must not go on, since the value
 * would reach the logs unscrubbed. */
Status log_add_secret(const char *secret);

/* Copies s into out (cap bytes, truncated, NUL-terminated) with every registered secret
 * replaced by "***": for text that leaves the process other than through the logger (the
 * journal, the summary). Cannot fail. */
void log_scrub(const char *s, char *out, size_t cap);

/* Forgets all registered secrets (tests). */
void log_clear_secrets(void);

/* Installs or removes (NULL) the sink. */
void log_set_sink(LogSink sink, void *ctx);

/* True when a message at this level would be written. */
int log_enabled(LogLevel level);

/* Parses "DEBUG|INFO|WARN|WARNING|ERROR" (any case). Returns 0 and sets *out, or -1. */
int log_level_parse(const char *s, LogLevel *out);

/* Name written as "severity": DEBUG, INFO, WARNING, ERROR. */
const char *log_level_name(LogLevel level);

/* Writes one event. Prefer the macros below. */
void log_write(LogLevel level, const char *file, int line, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#define log_debug(event, ...) log_write(LOG_DEBUG, __FILE__, __LINE__, event, __VA_ARGS__)
#define log_info(event, ...) log_write(LOG_INFO, __FILE__, __LINE__, event, __VA_ARGS__)
#define log_warn(event, ...) log_write(LOG_WARN, __FILE__, __LINE__, event, __VA_ARGS__)
#define log_error(event, ...) log_write(LOG_ERROR, __FILE__, __LINE__, event, __VA_ARGS__)

/* Appends s to buf as a JSON string literal (with quotes), escaping as RFC 8259 requires.
 * Writes at most cap-1 bytes plus NUL starting at buf[*len]; truncates on overflow.
 * Exposed for the summary writers and tests. */
void log_json_escape(char *buf, size_t cap, size_t *len, const char *s);

#endif
