/* runpod_json.h -- RunPod REST v2 JSON <-> C structs (SPEC 7, runpod/openapi-v2.json).
 *
 * Pure module: cJSON only. No I/O, no logging, no clock. Parsing is defensive: a missing
 * required field, a wrong type, truncated or oversized input is an error with a message,
 * never a crash. A pod that is RUNNING with "runtime": null is normal (the image may still be
 * pulling): has_runtime is false and it is not an error.
 */
#ifndef ORCH_RUNPOD_JSON_H
#define ORCH_RUNPOD_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

/* Largest body the parsers accept; larger input is refused with STATUS_ERR_PARSE. */
#define RUNPOD_JSON_MAX_BODY (8u << 20)
/* Most pods a list may hold. */
#define RUNPOD_JSON_MAX_PODS 10000u

#define POD_CREATE_MAX_PORTS 16
#define POD_CREATE_MAX_DCS 16
#define POD_CREATE_MAX_ENV 72

typedef enum {
    POD_STATUS_UNKNOWN = 0, /* a status this build does not know (or none) */
    POD_STATUS_PROVISIONING,
    POD_STATUS_STARTING,
    POD_STATUS_RUNNING,
    POD_STATUS_EXITED,
    POD_STATUS_ERROR,
    POD_STATUS_TERMINATED,
} PodStatus;

/* The fields of a v2 Pod the orchestrator uses. */
typedef struct {
    char id[64];
    char name[128];
    PodStatus status;
    double cost_per_hr;         /* "cost": USD per hour (0 when EXITED/TERMINATED) */
    char gpu_id[128];           /* "gpu.id"; "" for a CPU pod */
    char image[512];            /* truncated if longer */
    char created_at[40];        /* "createdAt" as sent ("" when absent/null) */
    long long created_at_epoch; /* seconds since 1970 (UTC), -1 if absent or unparseable */
    bool has_runtime;           /* "runtime" is an object (false for null/absent) */
    long long uptime_sec;       /* runtime.uptime, 0 without runtime */
    bool partial;               /* list entry with an unusable field, kept with its default */
    char defect[160];           /* the first such field's message */
} Pod;

#define PODLIST_PROBLEMS_MAX 16
#define PODLIST_PROBLEM_LEN 200

typedef struct {
    size_t count;
    Pod *pods;      /* heap; pod_list_clear() frees */
    size_t skipped; /* entries dropped: not an object, or no usable id */
    size_t partial; /* entries kept with a defective field replaced by its default */
    size_t n_problems;
    char problems[PODLIST_PROBLEMS_MAX][PODLIST_PROBLEM_LEN]; /* the first messages, in order */
} PodList;

/* What to create (the CreatePodRequest fields we send). Empty strings and zero counts mean
 * "not set". */
typedef struct {
    char name[128];
    char image[512];
    char gpu_type[128];
    char cloud[16]; /* "SECURE" | "COMMUNITY" | "" (omitted: RunPod's default is SECURE) */
    int disk_gb;    /* container disk ("disk"); 0 = omitted */
    char ports[POD_CREATE_MAX_PORTS][32]; /* "22/tcp", "8888/http" */
    size_t n_ports;
    char data_center_ids[POD_CREATE_MAX_DCS][64];
    size_t n_data_center_ids;
    char network_volume_id[128]; /* "" = no mount */
    char volume_mount_path[128]; /* "" with a volume = "/workspace" */
    struct {
        char name[128];
        char value[512];
    } env[POD_CREATE_MAX_ENV];
    size_t n_env;
} PodCreateSpec;

/* Frees the pods of list and zeroes it. NULL-safe. */
void pod_list_clear(PodList *list);

/* Parses a v2 status string. Unknown or NULL gives POD_STATUS_UNKNOWN. Cannot fail. */
PodStatus pod_status_parse(const char *s);

/* Upper-case v2 name of a status ("RUNNING"); "UNKNOWN" for POD_STATUS_UNKNOWN. */
const char *pod_status_str(PodStatus s);

/* Parses an RFC 3339 timestamp ("2026-09-15T10:15:02.117Z", "...+02:00") into seconds since
 * the epoch. Returns -1 when s is NULL or not such a timestamp. Cannot fail otherwise. */
long long runpod_json_parse_time(const char *s);

/* Builds the POST /v2/pods body for spec: name, image, gpu {id, count: 1}, cloud, disk, ports,
 * env, and dataCenterIds / mounts.network only when set. Nothing else is sent, so the body
 * validates against CreatePodRequest (unevaluatedProperties: false). On success *out_json is a
 * malloc'd NUL-terminated string the caller frees. Returns STATUS_ERR_CONFIG when a required
 * value (name, image, gpu_type) is empty, cloud is not SECURE/COMMUNITY, disk_gb is negative or
 * a count exceeds its array; STATUS_ERR_NOMEM when allocation fails. A repeated env name keeps
 * the last value. */
Status runpod_json_build_create(const PodCreateSpec *spec, char **out_json);

/* Parses a Pod object (GET /v2/pods/{id}, POST /v2/pods). id, name and status must be strings
 * (id non-empty); cost, gpu, image, createdAt, runtime are checked for type when present (null
 * allowed where the OpenAPI document allows it). An unknown status string is accepted as
 * POD_STATUS_UNKNOWN. On error returns STATUS_ERR_PARSE with a message in err (may be NULL) and
 * leaves *out untouched. */
Status runpod_json_parse_pod(const char *body, size_t len, Pod *out, char *err, size_t errcap);

/* Parses {"pods": [Pod, ...]}, the account's pod list: foreign data, so one bad entry never
 * fails the list. An entry that is not an object or has no usable id (a non-empty string of at
 * most 63 bytes) is skipped and counted (out->skipped); an entry with any other defective field
 * (name too long or not a string, status, cost, gpu, image, createdAt or runtime of the wrong
 * type) is kept with that field's default -- name "" (so it never matches one of ours by
 * name), status UNKNOWN, cost 0, createdAt unknown, no runtime -- marked partial and counted
 * (out->partial). The first messages, naming each entry's index and id, are in
 * out->problems. On success *out owns a heap array (free with pod_list_clear); any previous
 * content of *out is not freed. An empty list gives count 0 and pods NULL. Returns
 * STATUS_ERR_PARSE (message in err) only when the body is not a {"pods": [...]} document
 * within the limits; STATUS_ERR_NOMEM when allocation fails. */
Status runpod_json_parse_list(const char *body, size_t len, PodList *out, char *err, size_t errcap);

/* Parses an RFC 9457 problem body {title, status, detail, errors?}. title and detail receive
 * the strings ("" when absent); the entries of "errors" are appended to detail in parentheses,
 * separated by "; ". Output is truncated to the capacities. Returns STATUS_ERR_PARSE (outputs
 * untouched) when body is not a JSON object. */
Status runpod_json_parse_problem(const char *body, size_t len, char *title, size_t tcap,
                                 char *detail, size_t dcap);

/* Parses one JSON document of at most RUNPOD_JSON_MAX_BODY bytes (trailing whitespace allowed)
 * for the other RunPod parsers (catalog.c). Returns the tree (caller cJSON_Deletes), or NULL
 * with a message in err (may be NULL). */
struct cJSON *runpod_json_parse_root(const char *body, size_t len, char *err, size_t errcap);
/* Parses a JSON document of at most RUNPOD_JSON_MAX_BODY bytes (not necessarily
 * NUL-terminated; trailing whitespace allowed) for the other pure parsers of RunPod answers
 * (billing.c). Returns the root (caller cJSON_Delete) or NULL with a message in err. */
struct cJSON *runpod_json_parse_document(const char *body, size_t len, char *err, size_t errcap);

#endif
