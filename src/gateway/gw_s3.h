/* gw_s3.h -- signed requests to an S3-compatible store, for gw_storage.c.
 *
 * Gateway module (talks to the store over HTTP). Path-style URLs <endpoint>/<bucket>/<key>,
 * signed by libcurl's built-in AWS SigV4 (CURLOPT_AWS_SIGV4, UNSIGNED-PAYLOAD). Keys are the
 * caller's, already checked (gw_storage.c); they are put into URLs as they are. Every call is
 * independent and thread-safe; transport errors are logged here, a store's refusal is the
 * caller's to judge (it gets the HTTP status) except where said otherwise.
 */
#ifndef ORCH_GW_S3_H
#define ORCH_GW_S3_H

#include "config.h"
#include "gw_storage.h"
#include "status.h"

/* Where and as whom: filled by gw_storage_new from the configuration. */
typedef struct {
    char endpoint[CONFIG_URL_MAX];
    char bucket[CONFIG_ITEM_MAX];
    char sigv4[128];                                    /* "aws:amz:<region>:s3" */
    char userpwd[CONFIG_ITEM_MAX + CONFIG_STR_MAX + 2]; /* access:secret (a secret) */
} GwS3;

/* One request: method "PUT" (body: size bytes read from fd, with content_type; fewer before
 * the end of fd abort the request), "GET" (body written to fd), "HEAD" or "DELETE". STATUS_OK
 * with *http the status (and *length the Content-Length, -1 unknown, when length is not NULL);
 * STATUS_ERR_API on a transport error (logged); STATUS_ERR_NOMEM. */
Status gw_s3_request(const GwS3 *s, const char *method, const char *key, int fd, long long size,
                     const char *content_type, long *http, long long *length);

/* Copies object from to object to inside the bucket on the store's side (CopyObject: a PUT
 * with x-amz-copy-source; the content type is copied with the bytes). Only a 2xx whose body is
 * a CopyObjectResult counts (S3 may answer 200 and report a failed copy in the body). STATUS_OK,
 * STATUS_ERR_API (logged) or STATUS_ERR_NOMEM. from must need no URL encoding. */
Status gw_s3_copy(const GwS3 *s, const char *from, const char *to);

/* Starts a streamed GET of key (read with gw_storage_read, end with gw_storage_read_close) and
 * waits for the store's headers. STATUS_OK with *out and the object's *size;
 * STATUS_ERR_NOT_FOUND; STATUS_ERR_API / STATUS_ERR_INTERNAL (logged) or STATUS_ERR_NOMEM. */
Status gw_s3_read_open(const GwS3 *s, const char *key, GwReader **out, long long *size);

#endif
