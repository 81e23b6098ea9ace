/* catalog.h -- RunPod's GPU catalog: stock and price per GPU type (issue 16 item 1).
 *
 * Pure module (cJSON): parses the answer of
 *     GET /v2/catalog/gpus?include=AVAILABILITY&product=POD&cloud=<SECURE|COMMUNITY>
 * (ListGpuTypesResponse in runpod/openapi-v2.json) and decides, per GPU type, whether it is in
 * stock for the pods this system creates. The catalog is foreign data: one bad entry never
 * fails the list (it is skipped, or kept with the bad field unknown), and only a document that
 * is not {"gpus": [...]} within the limits is an error. A type is OUT of stock only when the
 * catalog positively says so; anything unclear is UNKNOWN, which never removes a type.
 */
#ifndef ORCH_CATALOG_H
#define ORCH_CATALOG_H

#include <stdbool.h>
#include <stddef.h>

#include "status.h"

#define CATALOG_MAX_BODY (4u << 20)
#define CATALOG_MAX_ENTRIES 512
#define CATALOG_ID_MAX 128
#define CATALOG_SCOPE_MAX 40
#define CATALOG_PROBLEMS_MAX 8
#define CATALOG_PROBLEM_LEN 160
#define CATALOG_PRICE_MAX_USD 1000.0 /* a list price above this per GPU-hour is not believed */

/* AvailabilityLevel of the OpenAPI document; UNKNOWN when absent or not one of them. */
typedef enum {
    GPU_LEVEL_UNKNOWN = 0,
    GPU_LEVEL_NONE,
    GPU_LEVEL_LOW,
    GPU_LEVEL_MEDIUM,
    GPU_LEVEL_HIGH,
} GpuLevel;

typedef enum {
    GPU_STOCK_UNKNOWN = 0, /* the catalog does not say clearly: the type stays a candidate */
    GPU_STOCK_OUT,         /* shown out of stock (or not offered) for our pods: never tried */
    GPU_STOCK_IN,
} GpuStock;

typedef struct {
    char id[CATALOG_ID_MAX];
    double price_per_hr;   /* list price of one GPU on the requested cloud; -1 unknown */
    GpuLevel availability; /* overall, for the requested product and cloud */
    GpuLevel dc_level;     /* best level among the configured data centers; UNKNOWN without */
    GpuStock stock;        /* for the requested cloud and the configured data centers */
    bool partial;          /* a field was unusable and is unknown */
} CatalogEntry;

typedef struct {
    size_t count;
    CatalogEntry *entries; /* heap; catalog_list_clear() frees */
    size_t skipped;        /* entries dropped: not an object, or no usable id */
    size_t partial;        /* entries kept with a field unknown */
    size_t n_problems;
    char problems[CATALOG_PROBLEMS_MAX][CATALOG_PROBLEM_LEN];
} CatalogList;

/* Frees the entries of list and zeroes it. NULL-safe. */
void catalog_list_clear(CatalogList *list);

/* Parses a ListGpuTypesResponse for pods on `cloud` ("SECURE" or "COMMUNITY"), restricted to
 * the data centers dcs[0..n_dcs) when n_dcs > 0 (RUNPOD_DATA_CENTER_IDS). Per entry: an id that
 * is not a non-empty string of at most CATALOG_ID_MAX - 1 printable bytes skips the entry; a
 * price that is not a positive number up to CATALOG_PRICE_MAX_USD, an availability that is not
 * a known level, a `secure`/`community` flag that is not a boolean, a malformed dataCenters
 * array, or a second entry with the same id that disagrees leave that field unknown (partial).
 * Each entry's stock is catalog_stock()'s. On success *out owns a heap array (free with
 * catalog_list_clear; any previous content is not freed). Returns STATUS_ERR_PARSE (message in
 * err) when the body is not {"gpus": [...]}, is larger than CATALOG_MAX_BODY or has more than
 * CATALOG_MAX_ENTRIES entries; STATUS_ERR_NOMEM; STATUS_ERR_USAGE for an unknown cloud. */
Status catalog_parse(const char *body, size_t len, const char *cloud, const char *const *dcs,
                     size_t n_dcs, CatalogList *out, char *err, size_t errcap);

/* The stock rule. offered: the type's flag for the cloud (1 yes, 0 no, -1 unknown).
 * Without a data-center filter: NONE is OUT, LOW/MEDIUM/HIGH IN, anything else UNKNOWN. With a
 * filter and a dataCenters array: IN when a configured center is LOW or better, UNKNOWN when
 * one of them has an unreadable level, OUT otherwise (listed as NONE, or not listed: not
 * offered there); without the array (RunPod omits it when the type is unavailable everywhere):
 * OUT when the overall level is NONE, else UNKNOWN. Not offered on the cloud is OUT. Cannot
 * fail. */
GpuStock catalog_stock(int offered, GpuLevel availability, bool filtered, bool dcs_present,
                       GpuLevel dc_level, bool dc_level_unreadable);

/* The cache key of one catalog read: the cloud, and the data-center filter as a hash
 * ("SECURE", "COMMUNITY@3f2a09c1d4b5e6f7"), so a changed RUNPOD_DATA_CENTER_IDS is a cache
 * miss. Writes at most cap bytes (CATALOG_SCOPE_MAX is enough). Cannot fail. */
void catalog_scope(const char *cloud, const char *const *dcs, size_t n_dcs, char *out, size_t cap);

/* Stable upper-case names ("HIGH", "NONE", "UNKNOWN") and lower-case stock names ("in",
 * "out", "unknown"); level_parse returns GPU_LEVEL_UNKNOWN for anything else. Cannot fail. */
const char *gpu_level_str(GpuLevel l);
GpuLevel gpu_level_parse(const char *s);
const char *gpu_stock_str(GpuStock s);
GpuStock gpu_stock_parse(const char *s);

#endif
