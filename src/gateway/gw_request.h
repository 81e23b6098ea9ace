/* gw_request.h -- the worker dialect's request bodies and queries, parsed and checked.
 *
 * Pure: no I/O, clock, logging or globals; depends on cJSON only, so the fuzzer
 * (tests/fuzz/fuzz_gateway_request.c) and the unit tests compile this file alone. Every parser
 * takes untrusted bytes (not NUL-terminated, any length) and either fills its out-struct or
 * returns STATUS_ERR_PARSE with a message for the 400 reply; it never crashes and never reads
 * past len. Nothing here builds SQL: the gateway passes the parsed values as parameters.
 *
 * The dialect is the one Headless-Wan2GP speaks (shared/reference/headless-worker-interface.md,
 * structure_docs/gateway.md).
 */
#ifndef ORCH_GW_REQUEST_H
#define ORCH_GW_REQUEST_H

#include <cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "status.h"

#define GW_ID_MAX 128             /* worker ids, NUL included */
#define GW_UUID_SIZE 37           /* canonical uuid text + NUL */
#define GW_RUN_TYPE_MAX 64        /* run_type, NUL included */
#define GW_NAME_MAX 161           /* a sanitised file name, NUL included */
#define GW_PATH_MAX 1024          /* an object path within the bucket, NUL included */
#define GW_TEXT_MAX 8192          /* error texts are cut to this (bytes, NUL included) */
#define GW_URL_MAX 4096           /* output_location, NUL included */
#define GW_MSG_MAX 256            /* a parse error message */
#define GW_LOGS_MAX 1000          /* log entries in one heartbeat */
#define GW_CTYPE_MAX 128          /* content type, NUL included */
#define GW_BUCKET "image_uploads" /* the bucket name the worker builds its URLs with */

/* A parse failure: the message of the 400 reply. */
typedef struct {
    char message[GW_MSG_MAX];
} GwError;

/* POST /rest/v1/rpc/func_worker_heartbeat_with_logs */
typedef struct {
    char worker_id[GW_ID_MAX];
    bool vram_known; /* false: "0, 0" or absent, stored as NULL (never "GPU not visible") */
    int vram_total_mb, vram_used_mb;
    bool crashed;    /* status_param == "crashed" */
    char *logs_json; /* normalised JSON array (malloc'd; gw_heartbeat_clear frees) */
    size_t n_logs, n_dropped;
} GwHeartbeat;

/* POST /functions/v1/task-counts and /functions/v1/claim-next-task */
typedef struct {
    char run_type[GW_RUN_TYPE_MAX]; /* default "gpu" */
    bool has_worker_id;
    char worker_id[GW_ID_MAX]; /* claim: must equal the token's worker */
} GwQueueRequest;

typedef enum { GW_STATUS_FAILED = 1, GW_STATUS_COMPLETE, GW_STATUS_IN_PROGRESS } GwTaskStatus;

/* POST /functions/v1/update-task-status */
typedef struct {
    char task_id[GW_UUID_SIZE];
    GwTaskStatus status;
    bool has_text;
    char text[GW_TEXT_MAX]; /* Failed: the error; Complete: the output location */
    bool reset_started;     /* reset_generation_started_at */
    bool has_worker_id;     /* an optional worker_id must be the token's */
    char worker_id[GW_ID_MAX];
} GwStatusUpdate;

typedef enum {
    GW_COMPLETE_FILE = 1,
    GW_COMPLETE_STORAGE_PATH,
    GW_COMPLETE_LOCATION
} GwCompleteKind;

/* POST /functions/v1/complete_task, in its three forms. The *_b64 pointers point into doc. */
typedef struct {
    cJSON *doc; /* owned: the parsed body (gw_complete_clear deletes it) */
    char task_id[GW_UUID_SIZE];
    GwCompleteKind kind;
    const char *file_b64; /* FILE: base64 of the output, and its sanitised name */
    char filename[GW_NAME_MAX];
    const char *thumb_b64; /* FILE: optional first frame and its name */
    char thumb_filename[GW_NAME_MAX];
    char storage_path[GW_PATH_MAX];       /* STORAGE_PATH: object path within the bucket */
    char thumb_storage_path[GW_PATH_MAX]; /* optional */
    char output_location[GW_URL_MAX];     /* LOCATION */
    bool has_worker_id;                   /* an optional worker_id must be the token's */
    char worker_id[GW_ID_MAX];
} GwComplete;

/* POST /functions/v1/generate-upload-url */
typedef struct {
    char task_id[GW_UUID_SIZE];
    char filename[GW_NAME_MAX];
    char content_type[GW_CTYPE_MAX];
    bool thumbnail;     /* generate_thumbnail_url */
    bool has_worker_id; /* an optional worker_id must be the token's */
    char worker_id[GW_ID_MAX];
} GwUploadUrlRequest;

/* Columns GET /rest/v1/tasks may select (select=...; none given = the worker's four). */
#define GW_COL_ID 1u
#define GW_COL_PARAMS 2u
#define GW_COL_TASK_TYPE 4u
#define GW_COL_PROJECT_ID 8u
#define GW_COL_STATUS 16u
#define GW_COL_RUN_TYPE 32u
#define GW_COL_ATTEMPTS 64u
#define GW_COL_WORKER_ID 128u

/* GET /rest/v1/tasks?select=...&worker_id=eq.W&status=eq.In%20Progress&limit=N */
typedef struct {
    char worker_id[GW_ID_MAX];
    int limit; /* 1..100, default 100 */
    unsigned columns;
} GwTasksQuery;

/* One decoded query-string argument. */
typedef struct {
    const char *key;
    const char *value; /* NULL when the argument had no '=' */
} GwQueryArg;

/* Parses each body; len may be 0 (counts and claim then use their defaults). Fill *out and
 * return STATUS_OK, or STATUS_ERR_PARSE with err->message set (malformed JSON, not an object,
 * a field of the wrong type or out of range), or STATUS_ERR_NOMEM. */
Status gw_parse_heartbeat(const char *body, size_t len, GwHeartbeat *out, GwError *err);
Status gw_parse_queue_request(const char *body, size_t len, GwQueueRequest *out, GwError *err);
Status gw_parse_status_update(const char *body, size_t len, GwStatusUpdate *out, GwError *err);
Status gw_parse_complete(const char *body, size_t len, GwComplete *out, GwError *err);
Status gw_parse_upload_url_request(const char *body, size_t len, GwUploadUrlRequest *out,
                                   GwError *err);

/* Frees what a parsed heartbeat / complete owns and zeroes it. NULL-safe. */
void gw_heartbeat_clear(GwHeartbeat *hb);
void gw_complete_clear(GwComplete *c);

/* Parses the lost-claim query. STATUS_OK for exactly the worker's query shape (worker_id=eq.W,
 * status=eq.In Progress, optional select= of known columns, limit=, order=); STATUS_ERR_NOT_FOUND
 * for any other PostgREST query (the gateway answers 404); STATUS_ERR_PARSE for a bad value. */
Status gw_parse_tasks_query(const GwQueryArg *args, size_t n, GwTasksQuery *out, GwError *err);

/* Makes a safe file name of name: the part after the last '/' or '\', each byte outside
 * [A-Za-z0-9._-] replaced by '_', no leading '.', at most GW_NAME_MAX - 1 bytes (the extension
 * kept). Returns STATUS_OK, or STATUS_ERR_PARSE when nothing usable is left ("", "..", "/").
 * out is written only on success. */
Status gw_sanitize_filename(const char *name, char out[GW_NAME_MAX]);

/* True when path is a safe relative object path: 1..GW_PATH_MAX-1 bytes of segments separated by
 * single '/', each segment made of [A-Za-z0-9._-], not starting with '.', never "." or "..". */
bool gw_object_path_ok(const char *path);

/* True for a canonical uuid text (8-4-4-4-12 hex digits). */
bool gw_is_uuid(const char *s);

/* Standard base64 (RFC 4648 section 4; padding optional, CR/LF/space ignored) into out (cap
 * bytes). Returns the decoded length, or -1 for a bad character, bad padding or too small an
 * out. */
long gw_base64_decode(const char *in, size_t n, unsigned char *out, size_t cap);

/* Upper bound of gw_base64_decode's output for n input characters. Cannot fail. */
size_t gw_base64_decoded_max(size_t n);

#endif
