/* runpod_catalog.c -- GET /v2/catalog/gpus (see runpod_catalog.h).
 *
 * Shell module: the call; the HTTP exchange and its retries are runpod_http.c's, what the body
 * means catalog.c's.
 */
#include "runpod_catalog.h"

#include <stdio.h>
#include <string.h>

#include "log.h"
#include "runpod_http.h"

typedef struct {
    const char *cloud;
    const char *const *dcs;
    size_t n_dcs;
    CatalogList *out;
} CatalogRequest;

static Status parse_catalog(const char *body, size_t len, void *ctx, char *err, size_t errcap)
{
    const CatalogRequest *q = ctx;
    return catalog_parse(body, len, q->cloud, q->dcs, q->n_dcs, q->out, err, errcap);
}

Status runpod_list_gpu_types(RunpodClient *c, const char *cloud, const char *const *dcs,
                             size_t n_dcs, CatalogList *out, RunpodCallInfo *info)
{
    RunpodCallInfo local;
    if (!info)
        info = &local;
    memset(info, 0, sizeof *info);
    if (!c || !out)
        return STATUS_ERR_INTERNAL;
    if (!cloud || (strcmp(cloud, "SECURE") != 0 && strcmp(cloud, "COMMUNITY") != 0)) {
        info->error = RP_BAD_REQUEST;
        snprintf(info->detail, sizeof info->detail, "unknown cloud type");
        return STATUS_ERR_USAGE;
    }
    /* include=AVAILABILITY needs product (400 otherwise); cloud scopes the stock and the
     * lowest-price figures to where our pods go; count defaults to 1 GPU, as we create. */
    char path[128];
    snprintf(path, sizeof path, "/v2/catalog/gpus?include=AVAILABILITY&product=POD&cloud=%s",
             cloud);
    CatalogRequest req = {cloud, dcs, n_dcs, out};
    return runpod_http_get_parsed(c, path, "/v2/catalog/gpus", parse_catalog, &req, info);
}
