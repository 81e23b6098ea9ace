/* runpod.h -- the RunPod REST v2 client: create, get, list and terminate pods (SPEC 7).
 *
 * Shell module (libcurl). It owns the HTTP exchange: headers (Bearer key, JSON content type,
 * a User-Agent naming orchestrator/<version>), connect and total timeouts, a response-size cap,
 * TLS verification (always on), retries with backoff and jitter (5xx, transport, timeout),
 * Retry-After on 429, and the create-then-look-up-by-name rule that keeps one name from ever
 * getting two pods. What an answer means is decided by the pure modules retry (classes,
 * backoff) and runpod_json (bodies).
 *
 * The caller must call curl_global_init(CURL_GLOBAL_DEFAULT) once before runpod_client_new and
 * curl_global_cleanup() after the last runpod_client_free (main does; tests do it themselves).
 *
 * Logging: runpod.request (debug; method, path, status, attempt, duration_ms), runpod.retry
 * (warn; also the delay), runpod.error (warn; the final class and detail), runpod.create_lookup
 * and runpod.create_found_existing. The API key is never logged.
 *
 * A RunpodClient is read-only after runpod_client_new, so any number of threads may use one
 * client at once; each request uses its own CURL easy handle.
 */
#ifndef ORCH_RUNPOD_H
#define ORCH_RUNPOD_H

#include <stdbool.h>
#include <stddef.h>

#include "retry.h"
#include "runpod_json.h"
#include "status.h"

typedef struct RunpodClient RunpodClient;

/* Zero (or negative) numeric fields take the defaults in brackets. */
typedef struct {
    const char *base_url;      /* e.g. "https://api.runpod.io" (paths start with /v2/); copied */
    const char *api_key;       /* bearer key; copied; never logged */
    long connect_timeout_ms;   /* [10000] */
    long request_timeout_ms;   /* [30000] total per HTTP request */
    int max_retries;           /* repeats after the first request (5xx, transport, 429); < 0 = 0 */
    size_t max_response_bytes; /* [4 MiB] larger responses are RP_PARSE errors */
    long backoff_base_ms;      /* [500] first backoff ceiling */
    long backoff_max_ms;       /* [8000] */
    long retry_after_max_ms;   /* [60000] cap on a Retry-After wait */
    long long rate_limit_reserve; /* [0] calls of RunPod's rate-limit quota a create never
                                     takes (RUNPOD_RATE_LIMIT_RESERVE; runpod_catalog.h) */
} RunpodOptions;

/* What happened during one call. Written by every call, on success and on failure. */
typedef struct {
    RunpodErrorClass error; /* RP_OK, or the class of the final answer (RP_NOT_FOUND on a
                               terminate of a pod already gone, although that is a success) */
    int http_status;        /* of the last response; 0 when none was received */
    char detail[512];       /* problem detail, transport error text or parse message */
    int attempts;           /* HTTP requests made, including 429s and create look-ups */
} RunpodCallInfo;

/* Creates a client. Returns STATUS_ERR_CONFIG when base_url is not an http(s) URL or api_key is
 * empty or contains control characters, STATUS_ERR_NOMEM on allocation failure. *out is set
 * only on success; free it with runpod_client_free. */
Status runpod_client_new(const RunpodOptions *opts, RunpodClient **out);

/* Frees the client (the key is wiped first). NULL-safe. */
void runpod_client_free(RunpodClient *c);

/* GET /v2/pods/{pod_id}. STATUS_OK fills *out; STATUS_ERR_NOT_FOUND on 404 (gone, or not yet
 * visible right after a create); STATUS_ERR_API for any other failure (info says which);
 * STATUS_ERR_USAGE when pod_id is empty, too long or has characters other than [A-Za-z0-9_-].
 * info may be NULL. */
Status runpod_get_pod(RunpodClient *c, const char *pod_id, Pod *out, RunpodCallInfo *info);

/* GET /v2/pods. STATUS_OK fills *out (free with pod_list_clear); STATUS_ERR_API otherwise. */
Status runpod_list_pods(RunpodClient *c, PodList *out, RunpodCallInfo *info);

/* DELETE /v2/pods/{pod_id}. 204 and 404 both return STATUS_OK (info->error is RP_OK or
 * RP_NOT_FOUND); anything else STATUS_ERR_API. Retried like the other calls: deleting twice is
 * harmless. */
Status runpod_terminate_pod(RunpodClient *c, const char *pod_id, RunpodCallInfo *info);

typedef struct {
    Status status;           /* STATUS_OK when pod holds the created (or found) pod */
    RunpodCallInfo info;     /* final class, HTTP status, detail; attempts over all types */
    Pod pod;                 /* on success */
    char gpu_type_used[128]; /* on success: the GPU type the pod was created with */
    size_t n_no_capacity;    /* GPU types that answered 400 (no capacity), in order */
    char no_capacity_types[16][128];
    bool found_existing;  /* created by an ambiguous attempt, found by name */
    bool outcome_unknown; /* the answer was ambiguous (5xx, timeout, transport, an unreadable
                             2xx) and the look-up by name did not find the pod: it may exist or
                             still appear. Keep the worker row spawning; never POST the name
                             again */
    bool deferred;        /* not (or no further) POSTed: RunPod's rate-limit quota had nothing
                             left beyond the reserve (info.error RP_RATE_LIMITED, or
                             RP_NO_CAPACITY when earlier types answered 400) */
} PodCreateResult;

/* Creates one pod named spec->name (spec->gpu_type is ignored: the types come from gpu_types,
 * tried in order). 400 moves on to the next type and records it in no_capacity_types; 429 waits
 * Retry-After and repeats; 401/403/402/410/422 (and any other final class) stop at once. After
 * an ambiguous answer (5xx, timeout, transport, or a 2xx whose body cannot be read) the name is
 * never POSTed again: the client looks it up by name once (after a backoff when retries are
 * allowed); a pod found that way is returned with found_existing set, otherwise the result is
 * out->outcome_unknown, since RunPod's list lags a create and the pod may still appear. So one
 * name never has two pods. *out is always written. Returns out->status: STATUS_OK, or
 * STATUS_ERR_API (out->info.error says why; RP_NO_CAPACITY when every type answered 400),
 * STATUS_ERR_CONFIG for a spec that cannot be encoded, STATUS_ERR_USAGE for no GPU types. */
Status runpod_create_pod(RunpodClient *c, const PodCreateSpec *spec, const char *const *gpu_types,
                         size_t n_gpu_types, PodCreateResult *out);

/* Maximum number of threads runpod_create_pods runs at once. */
#define RUNPOD_CREATE_MAX_THREADS 32

/* One create of a batch: the pod, the GPU types to try for it (in order), and its result. */
typedef struct {
    const PodCreateSpec *spec;
    const char *const *gpu_types;
    size_t n_gpu_types;
    PodCreateResult *result; /* always written */
} PodCreateJob;

/* Runs runpod_create_pod for every job concurrently (at most RUNPOD_CREATE_MAX_THREADS threads,
 * falling back to the calling thread if none can be started). Each job may have its own GPU
 * types (pools). Returns STATUS_OK when every create succeeded, STATUS_ERR_PARTIAL otherwise
 * (see each result). */
Status runpod_create_jobs(RunpodClient *c, const PodCreateJob *jobs, size_t n);

/* Runs runpod_create_pod for specs[0..n) concurrently (at most RUNPOD_CREATE_MAX_THREADS
 * threads, falling back to the calling thread if none can be started); results[i] is the
 * outcome for specs[i] and is always written. Returns STATUS_OK when every create succeeded,
 * STATUS_ERR_PARTIAL otherwise (see each result). */
Status runpod_create_pods(RunpodClient *c, const PodCreateSpec *specs, size_t n,
                          const char *const *gpu_types, size_t n_gpu_types,
                          PodCreateResult *results);

/* "/v2/pods/<pod_id><suffix>" into path (cap bytes). False when pod_id is empty, longer than 63
 * bytes or has characters other than [A-Za-z0-9_-] (it goes into a URL), or path is too small.
 * Cannot fail otherwise. */
bool runpod_pod_path(const char *pod_id, const char *suffix, char *path, size_t cap);

#endif
