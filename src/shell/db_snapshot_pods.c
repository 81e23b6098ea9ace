/* db_snapshot_pods.c -- what the database knows about the pods RunPod lists (see db.h,
 * db_annotate_pods): ages from pods_first_seen, and whether a pod's row has ended.
 *
 * Shell module. Apart from the snapshot's transaction (db_snapshot.c). Never keeps pointers into a
 * PGresult.
 */
#include "db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db_exec.h"
#include "worker_name.h"

/* ------------------------------------------------------------------------------------------ */
/* What the database knows about listed pods                                                   */

typedef struct {
    const Snapshot *snap;
    const char *prefix;
} PodPick;

/* A pod whose createdAt could not be read. */
static bool age_unknown(const SnapPod *p, const PodPick *pick)
{
    (void)pick;
    return p->age_sec < 0;
}

/* A pod named like one of our workers that is not a live row. */
static bool ours_without_live_row(const SnapPod *p, const PodPick *pick)
{
    if (!worker_name_matches(pick->prefix, p->name))
        return false;
    for (size_t i = 0; i < pick->snap->n_workers; i++)
        if (strcmp(pick->snap->workers[i].id, p->name) == 0)
            return false;
    return true;
}

/* A JSON array of the ids (or names) of the listed pods that want() picks; *n their number. */
static char *pick_json(const PodPick *pick, bool (*want)(const SnapPod *, const PodPick *),
                       bool names, size_t *n)
{
    cJSON *arr = cJSON_CreateArray();
    *n = 0;
    for (size_t k = 0; arr && k < pick->snap->n_pods; k++) {
        const SnapPod *p = &pick->snap->pods[k];
        if (!want(p, pick))
            continue;
        cJSON_AddItemToArray(arr, cJSON_CreateString(names ? p->name : p->id));
        (*n)++;
    }
    char *s = arr ? cJSON_PrintUnformatted(arr) : NULL;
    cJSON_Delete(arr);
    return s;
}

/* Ages of pods without a readable createdAt, from pods_first_seen (recorded now unless
 * read_only, together with the removal of entries unseen for a week). */
static Status first_seen_ages(PGconn *conn, Snapshot *snap, const PodPick *pick, bool read_only)
{
    size_t n = 0;
    char *ids = pick_json(pick, age_unknown, false, &n);
    if (!ids)
        return STATUS_ERR_NOMEM;
    Status st = STATUS_OK;
    if (n == 0)
        goto out;
    const char *p[] = {ids};
    PGresult *res = db_exec_params(
        conn, "pods_first_seen",
        read_only ? "SELECT s.pod_id,"
                    " (extract(epoch FROM now()) - extract(epoch FROM s.first_seen_at))::float8"
                    " FROM pods_first_seen s"
                    " WHERE s.pod_id IN (SELECT jsonb_array_elements_text($1::jsonb))"
                  : "WITH gone AS (DELETE FROM pods_first_seen"
                    "   WHERE last_seen_at < now() - interval '7 days'),"
                    " seen AS (INSERT INTO pods_first_seen (pod_id)"
                    "   SELECT DISTINCT jsonb_array_elements_text($1::jsonb)"
                    "   ON CONFLICT (pod_id) DO UPDATE SET last_seen_at = now()"
                    "   RETURNING pod_id, first_seen_at)"
                    " SELECT pod_id,"
                    " (extract(epoch FROM now()) - extract(epoch FROM first_seen_at))::float8"
                    " FROM seen",
        1, p, PGRES_TUPLES_OK);
    if (!res) {
        st = STATUS_ERR_DB;
        goto out;
    }
    for (int r = 0; r < PQntuples(res); r++) {
        long long age;
        if (db_cell_ll(res, r, 1, &age) != 0)
            continue;
        for (size_t k = 0; k < snap->n_pods; k++)
            if (snap->pods[k].age_sec < 0 && strcmp(snap->pods[k].id, PQgetvalue(res, r, 0)) == 0)
                snap->pods[k].age_sec = age;
    }
    PQclear(res);
out:
    free(ids);
    return st;
}

/* Marks pods named after a worker row that has ended (terminated): ours, and unwanted. */
static Status ended_rows(PGconn *conn, Snapshot *snap, const PodPick *pick)
{
    size_t n = 0;
    char *names = pick_json(pick, ours_without_live_row, true, &n);
    if (!names)
        return STATUS_ERR_NOMEM;
    Status st = STATUS_OK;
    if (n == 0)
        goto out;
    const char *p[] = {names};
    PGresult *res = db_exec_params(conn, "pods_ended_rows",
                                   "SELECT w.id FROM workers w WHERE w.status = 'terminated'"
                                   " AND w.id IN (SELECT jsonb_array_elements_text($1::jsonb))",
                                   1, p, PGRES_TUPLES_OK);
    if (!res) {
        st = STATUS_ERR_DB;
        goto out;
    }
    for (int r = 0; r < PQntuples(res); r++)
        for (size_t k = 0; k < snap->n_pods; k++)
            if (strcmp(snap->pods[k].name, PQgetvalue(res, r, 0)) == 0)
                snap->pods[k].ended_row = true;
    PQclear(res);
out:
    free(names);
    return st;
}

Status db_annotate_pods(PGconn *conn, Snapshot *snap, const char *prefix, bool read_only)
{
    PodPick pick = {snap, prefix};
    Status st = first_seen_ages(conn, snap, &pick, read_only);
    if (st == STATUS_OK)
        st = ended_rows(conn, snap, &pick);
    return st;
}
