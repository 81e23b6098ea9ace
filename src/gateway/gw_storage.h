/* gw_storage.h -- where the gateway keeps the workers' output files.
 *
 * Gateway module (talks to the file system or an S3-compatible store). Objects are named by a
 * key `<bucket>/<project_id or "system">/tasks/<task_id>/<file name>` that the caller built from
 * checked parts (gw_request.h: gw_object_path_ok, gw_sanitize_filename); this module checks it
 * again and refuses any key that could leave its root.
 *
 *   local  files under STORAGE_DIR/<key>, written to a temporary file in the final directory
 *          as the bytes arrive and renamed into place when complete (a reader never sees half a
 *          file); served by the gateway.
 *   s3     libcurl with its built-in AWS SigV4 signing (CURLOPT_AWS_SIGV4), path-style URLs
 *          <endpoint>/<bucket>/<key>. Each upload is stored under a temporary key of its own
 *          (.partial/<random>, which no valid key can name) and its commit copies it to key on
 *          the store's side, then deletes it: key is written only by that copy and never
 *          deleted, so a failed upload cannot remove what another upload of key stored. A crash
 *          between the copy and the delete leaves a stray .partial/ object (a lifecycle rule
 *          on the prefix removes it; structure_docs/gateway.md). An upload of declared length
 *          is streamed to the store as it arrives: the request thread writes into a pipe that a
 *          PUT running in a thread of its own reads (a body cut short aborts the PUT and its
 *          temporary object is deleted). A body of unknown length (chunked) is spooled to an
 *          unlinked temporary file first, since S3 wants the Content-Length up front. Reads
 *          are streamed from the store to the client (libcurl's multi interface, paused while
 *          the client is slow); nothing is spooled. The requests themselves: gw_s3.h.
 * Either way no upload is ever held whole in memory. Thread-safe: each call is independent.
 */
#ifndef ORCH_GW_STORAGE_H
#define ORCH_GW_STORAGE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "status.h"

typedef struct GwStorage GwStorage;
typedef struct GwUpload GwUpload;

/* Opens the backend named by cfg->storage_backend (the local directory is created when
 * missing). Returns STATUS_OK and *out (gw_storage_free it), STATUS_ERR_CONFIG (logged) when
 * the directory cannot be used, or STATUS_ERR_NOMEM. cfg is copied from. */
Status gw_storage_new(const Config *cfg, GwStorage **out);

/* Frees the backend. NULL-safe. */
void gw_storage_free(GwStorage *s);

/* Name of the backend: "local" or "s3". */
const char *gw_storage_kind(const GwStorage *s);

/* Starts writing object key of size bytes (-1: not known in advance). The object's content
 * type is gw_storage_content_type(key), never the uploader's. Returns STATUS_OK and *out,
 * STATUS_ERR_PARSE for a key that is not a safe relative path, STATUS_ERR_INTERNAL (logged)
 * when no temporary file can be made. With a known size the caller must write exactly that
 * many bytes before gw_storage_commit (fewer: the commit fails). Nothing is visible under key
 * before gw_storage_commit: a streamed S3 PUT is kept from completing by holding back the
 * body's last byte until then. */
Status gw_storage_begin(GwStorage *s, const char *key, long long size, GwUpload **out);

/* Appends n bytes. STATUS_ERR_INTERNAL (logged) on a write error; the upload must then be
 * aborted. */
Status gw_storage_write(GwUpload *u, const void *data, size_t n);

/* Finishes the object (local: rename into place; s3: finish the temporary object, copy it to
 * the key, delete it) and frees u, whatever happens.
 * Returns STATUS_OK, or STATUS_ERR_INTERNAL / STATUS_ERR_API (logged). */
Status gw_storage_commit(GwUpload *u);

/* Drops an unfinished upload (its temporary file or object is removed; the key is never
 * touched) and frees u. NULL-safe. */
void gw_storage_abort(GwUpload *u);

/* Tells whether object key exists. STATUS_OK with *exists; STATUS_ERR_PARSE for a bad key;
 * STATUS_ERR_API when the store could not be asked (logged). */
Status gw_storage_exists(GwStorage *s, const char *key, bool *exists);

/* A streamed read of an S3 object (see gw_storage_open). */
typedef struct GwReader GwReader;

/* Opens object key for reading, with its *size. local: *fd (the caller closes it) positioned
 * at 0, *reader NULL. s3: *fd -1 and *reader, a GET under way whose bytes the caller takes
 * with gw_storage_read as its client takes them (nothing is spooled; a slow client slows the
 * transfer); with head, only the store's HEAD is made and *reader is NULL. Returns
 * STATUS_ERR_NOT_FOUND when there is no such object; STATUS_ERR_PARSE for a bad key;
 * STATUS_ERR_API / STATUS_ERR_INTERNAL / STATUS_ERR_NOMEM (logged) otherwise. */
Status gw_storage_open(GwStorage *s, const char *key, bool head, int *fd, GwReader **reader,
                       long long *size);

/* Up to max next bytes of the object into buf, waiting for the store when none are held.
 * Returns how many, 0 at the end, -1 when the transfer failed (logged). */
long gw_storage_read(GwReader *rd, char *buf, size_t max);

/* Ends the read (the transfer is abandoned if unfinished) and frees rd. NULL-safe. */
void gw_storage_read_close(GwReader *rd);

/* A Content-Type for a file name, from its extension (application/octet-stream when
 * unknown). Cannot fail. */
const char *gw_storage_content_type(const char *name);

#endif
