/* reconcile_cmd.c -- `orchestrator reconcile [--terminate] [--json]`: RunPod pods against worker
 * rows.
 *
 * Reports every pod whose name has our worker-id shape (its row and that worker's pool, or
 * LEAKED), every live row whose pod is missing (VANISHED), the pods and cost per hour of each pool
 * (issue 14), and the fleet's and the leaked pods' cost per hour. --terminate
 * terminates the leaked pods the cycle's step 7 would terminate (the same planner rule, applied by
 * the actuator) and marks vanished rows `error` (the next cycle recovers their tasks and retires
 * them). Without --terminate nothing is written and no mutating call is made. Pods without our
 * prefix are never touched.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "actuator.h"
#include "commands.h"
#include "db.h"
#include "lease.h"
#include "log.h"
#include "loop.h"
#include "planner.h"
#include "worker_name.h"

static const char *snap_pod_status_str(SnapPodStatus s)
{
    switch (s) {
    case SNAP_POD_PROVISIONING:
        return "PROVISIONING";
    case SNAP_POD_STARTING:
        return "STARTING";
    case SNAP_POD_RUNNING:
        return "RUNNING";
    case SNAP_POD_EXITED:
        return "EXITED";
    case SNAP_POD_ERROR:
        return "ERROR";
    case SNAP_POD_TERMINATED:
        return "TERMINATED";
    case SNAP_POD_UNKNOWN:
        break;
    }
    return "UNKNOWN";
}

/* The live row that owns pod p (its recorded pod id, or a row named like the pod that has no
 * pod id yet), or -1. The same ownership rule as the planner's step 7. */
static long long pod_owner(const Snapshot *snap, const SnapPod *p, bool *by_name)
{
    *by_name = false;
    for (size_t i = 0; i < snap->n_workers; i++)
        if (snap->workers[i].runpod_id[0] && strcmp(snap->workers[i].runpod_id, p->id) == 0)
            return (long long)i;
    for (size_t i = 0; i < snap->n_workers; i++)
        if (!snap->workers[i].runpod_id[0] && strcmp(snap->workers[i].id, p->name) == 0) {
            *by_name = true;
            return (long long)i;
        }
    return -1;
}

static bool pod_listed(const Snapshot *snap, const char *pod_id)
{
    for (size_t k = 0; k < snap->n_pods; k++)
        if (strcmp(snap->pods[k].id, pod_id) == 0)
            return true;
    return false;
}

static bool plan_terminates_pod(const Plan *plan, const char *pod_id)
{
    for (size_t i = 0; i < plan->count; i++)
        if (plan->actions[i].kind == ACTION_TERMINATE_POD &&
            strcmp(plan->actions[i].pod_id, pod_id) == 0)
            return true;
    return false;
}

/* The matched pods of one pool. */
typedef struct {
    char name[SNAP_POOL_NAME_MAX];
    long long pods;
    double cost;
} PoolTotal;

typedef struct {
    long long ours, other, foreign, matched, leaked, vanished;
    double fleet_cost, leaked_cost;
    size_t n_pools; /* the configured pools first (POOLS order), then any other a worker has */
    PoolTotal pools[CONFIG_POOLS_MAX + SNAP_POOLS_MAX];
} Totals;

static PoolTotal *pool_total(Totals *t, const char *name)
{
    for (size_t p = 0; p < t->n_pools; p++)
        if (strcmp(t->pools[p].name, name) == 0)
            return &t->pools[p];
    if (t->n_pools >= sizeof t->pools / sizeof t->pools[0])
        return NULL;
    PoolTotal *pt = &t->pools[t->n_pools++];
    snprintf(pt->name, sizeof pt->name, "%s", name);
    pt->pods = 0;
    pt->cost = 0;
    return pt;
}

/* One line and one JSON object per pod with our prefix. */
static void report_pods(const Config *cfg, const Snapshot *snap, const Plan *plan, bool json,
                        cJSON *pods, Totals *t)
{
    for (size_t p = 0; p < cfg->n_pools; p++)
        pool_total(t, cfg->pools[p].name);
    if (!json)
        printf("%-16s %-36s %-12s %8s %7s  %s\n", "POD", "NAME", "STATUS", "AGE", "$/H",
               "WORKER ROW (POOL)");
    for (size_t k = 0; k < snap->n_pods; k++) {
        const SnapPod *p = &snap->pods[k];
        if (!worker_name_matches(cfg->worker_id_prefix, p->name)) {
            t->other++; /* not of our worker-id shape: somebody else's, never touched */
            continue;
        }
        t->ours++;
        bool by_name = false;
        long long w = pod_owner(snap, p, &by_name);
        bool terminable = plan_terminates_pod(plan, p->id);
        const char *verdict = w >= 0 ? (by_name ? "unrecorded" : "matched") : "leaked";
        if (p->status != SNAP_POD_TERMINATED)
            t->fleet_cost += p->cost_per_hr;
        if (w >= 0) {
            t->matched++;
            PoolTotal *pt = pool_total(t, snap->workers[w].pool);
            if (pt && p->status != SNAP_POD_TERMINATED) {
                pt->pods++;
                pt->cost += p->cost_per_hr;
            }
        } else if (p->status != SNAP_POD_TERMINATED) {
            t->leaked++;
            t->leaked_cost += p->cost_per_hr;
        }
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "pod_id", p->id);
        cJSON_AddStringToObject(x, "name", p->name);
        cJSON_AddStringToObject(x, "status", snap_pod_status_str(p->status));
        cJSON_AddNumberToObject(x, "age_sec", (double)p->age_sec);
        cJSON_AddNumberToObject(x, "cost_per_hr", p->cost_per_hr);
        cJSON_AddStringToObject(x, "verdict", verdict);
        if (w >= 0) {
            cJSON_AddStringToObject(x, "worker_id", snap->workers[w].id);
            cJSON_AddStringToObject(x, "worker_status", worker_state_str(snap->workers[w].state));
            cJSON_AddStringToObject(x, "pool", snap->workers[w].pool);
        }
        cJSON_AddBoolToObject(x, "terminable", terminable);
        cJSON_AddItemToArray(pods, x);
        if (json)
            continue;
        char row[128];
        if (w >= 0)
            snprintf(row, sizeof row, "%s (%s)%s", worker_state_str(snap->workers[w].state),
                     snap->workers[w].pool,
                     by_name ? "; pod id not recorded yet: the cycle adopts it" : "");
        else
            snprintf(row, sizeof row, "LEAKED: no live worker row%s",
                     terminable ? "; older than ORPHAN_POD_GRACE_SEC" : "");
        printf("%-16s %-36s %-12s %7llds %7.3f  %s\n", p->id, p->name,
               snap_pod_status_str(p->status), p->age_sec, p->cost_per_hr, row);
    }
}

/* Marks a vanished row error (guarded: only from the state the snapshot saw). Returns the
 * database status; *applied tells whether the row changed. */
static Status mark_vanished(App *app, const SnapWorker *w, bool *applied)
{
    Status st = db_fail_worker(app->conn, w->id, w->state,
                               "Pod externally terminated - not found in RunPod", true, applied);
    if (st == STATUS_OK && *applied)
        log_warn("worker.failed", "worker_id=%s from=%s reason=%s error_reason=%s", w->id,
                 worker_state_str(w->state), reason_str(REASON_POD_GONE),
                 "Pod externally terminated - not found in RunPod");
    return st;
}

/* Every live row whose recorded pod RunPod does not list; with act_now, marked error once past
 * the post-create grace (an error row is retired by the next cycle anyway). */
static Status report_vanished(App *app, const Snapshot *snap, const Policy *pol, bool act_now,
                              bool json, cJSON *out, Totals *t)
{
    cJSON *vanished = cJSON_AddArrayToObject(out, "vanished");
    cJSON *marked = cJSON_AddArrayToObject(out, "marked_error");
    for (size_t i = 0; i < snap->n_workers; i++) {
        const SnapWorker *w = &snap->workers[i];
        if (!w->runpod_id[0] || pod_listed(snap, w->runpod_id))
            continue;
        t->vanished++;
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "worker_id", w->id);
        cJSON_AddStringToObject(x, "worker_status", worker_state_str(w->state));
        cJSON_AddStringToObject(x, "pool", w->pool);
        cJSON_AddStringToObject(x, "pod_id", w->runpod_id);
        cJSON_AddNumberToObject(x, "age_sec", (double)w->age_sec);
        cJSON_AddItemToArray(vanished, x);
        if (!json)
            printf("VANISHED: worker %s (%s) records pod %s, which RunPod does not list\n", w->id,
                   worker_state_str(w->state), w->runpod_id);
        if (!act_now || w->state == WORKER_ERROR || w->state == WORKER_INACTIVE ||
            w->age_sec <= pol->pod_not_found_grace_sec)
            continue;
        bool applied = false;
        Status st = mark_vanished(app, w, &applied);
        if (st != STATUS_OK)
            return st;
        if (applied)
            cJSON_AddItemToArray(marked, cJSON_CreateString(w->id));
        if (!json)
            printf("  marked %s error%s\n", w->id, applied ? "" : ": skipped, the row changed");
    }
    return STATUS_OK;
}

/* --terminate: only the step-7 terminations of the plan, applied by the actuator. */
static Status terminate_leaks(App *app, const Snapshot *snap, const Plan *plan, bool json,
                              cJSON *terminated, cJSON *errors)
{
    Plan *leaks = calloc(1, sizeof *leaks);
    ActResult act;
    if (!leaks || act_result_init(&act) != STATUS_OK) {
        free(leaks);
        return STATUS_ERR_NOMEM;
    }
    for (size_t i = 0; i < plan->count; i++)
        if (plan->actions[i].kind == ACTION_TERMINATE_POD)
            leaks->actions[leaks->count++] = plan->actions[i];
    Status st = actuator_apply(app, snap, leaks, &act);
    for (cJSON *o = act.outcomes ? act.outcomes->child : NULL; o; o = o->next) {
        const cJSON *pid = cJSON_GetObjectItemCaseSensitive(o, "pod_id");
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(o, "result");
        bool ok = cJSON_IsString(res) && strcmp(res->valuestring, "applied") == 0;
        if (cJSON_IsString(pid) && ok)
            cJSON_AddItemToArray(terminated, cJSON_CreateString(pid->valuestring));
        if (!json && cJSON_IsString(pid))
            printf("  terminate leaked pod %s: %s\n", pid->valuestring,
                   ok ? "done" : "FAILED (see the log)");
    }
    for (cJSON *e = act.errors ? act.errors->child : NULL; e; e = e->next)
        cJSON_AddItemToArray(errors, cJSON_CreateString(e->valuestring));
    act_result_clear(&act);
    free(leaks);
    return st;
}

/* The matched pods and their cost per hour, per pool. */
static void add_pool_totals(cJSON *tot, const Totals *t, bool json)
{
    cJSON *arr = cJSON_AddArrayToObject(tot, "pools");
    for (size_t p = 0; arr && p < t->n_pools; p++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "pool", t->pools[p].name);
        cJSON_AddNumberToObject(x, "pods", (double)t->pools[p].pods);
        cJSON_AddNumberToObject(x, "cost_per_hr", t->pools[p].cost);
        cJSON_AddItemToArray(arr, x);
        if (!json)
            printf("pool %s: %lld pod%s, $%.3f/h\n", t->pools[p].name, t->pools[p].pods,
                   t->pools[p].pods == 1 ? "" : "s", t->pools[p].cost);
    }
}

static void add_totals(cJSON *out, const Totals *t, size_t live_rows, bool act_now, bool json)
{
    cJSON *tot = cJSON_AddObjectToObject(out, "totals");
    add_pool_totals(tot, t, json);
    cJSON_AddNumberToObject(tot, "pods_ours", (double)t->ours);
    cJSON_AddNumberToObject(tot, "pods_not_ours", (double)(t->other + t->foreign));
    cJSON_AddNumberToObject(tot, "matched", (double)t->matched);
    cJSON_AddNumberToObject(tot, "leaked", (double)t->leaked);
    cJSON_AddNumberToObject(tot, "vanished", (double)t->vanished);
    cJSON_AddNumberToObject(tot, "live_worker_rows", (double)live_rows);
    cJSON_AddNumberToObject(tot, "fleet_cost_per_hr", t->fleet_cost);
    cJSON_AddNumberToObject(tot, "leaked_cost_per_hr", t->leaked_cost);
    cJSON_AddBoolToObject(out, "terminate", act_now);
    if (!json)
        printf("totals: %lld pods ours (%lld not ours, never touched), %lld matched, %lld "
               "leaked ($%.3f/h), %lld vanished; fleet $%.3f/h%s\n",
               t->ours, t->other + t->foreign, t->matched, t->leaked, t->leaked_cost, t->vanished,
               t->fleet_cost, act_now ? "" : "; nothing changed (use --terminate to act)");
}

/* Observe: the snapshot and the pod list (under the cycle lease when acting, so no cycle's
 * create/record races the decisions), then the cycle's own rule, step 7 forced due. */
static Status observe(App *app, bool act_now, bool *locked, Snapshot *snap, Plan *plan,
                      cJSON *errors)
{
    Status st = db_connect(app->cfg, &app->conn);
    if (st != STATUS_OK)
        return st;
    if (act_now) {
        /* Like the other operator commands: wait up to 30 s for a running cycle. */
        bool got = false;
        st = lease_new(app->cfg, "reconcile", &app->lease);
        if (st == STATUS_OK)
            st = lease_try_acquire(app->lease, app->conn, &got);
        if (st != STATUS_OK)
            return st;
        if (!got) {
            lease_log_holder(app->lease);
            fprintf(stderr, "orchestrator reconcile: a cycle holds the cycle lease; nothing "
                            "done, try again in a moment\n");
            return STATUS_LOCKED;
        }
        *locked = true;
    }
    st = db_load_snapshot(app->conn, app->cfg, snap);
    if (st != STATUS_OK)
        return st;
    st = loop_list_pods(app, snap, errors);
    if (st != STATUS_OK) {
        fprintf(stderr, "orchestrator reconcile: the RunPod pod list failed (see the log); "
                        "nothing decided\n");
        return st;
    }
    Policy pol;
    policy_from_config(app->cfg, &pol);
    snap->since_reconcile_sec = -1;
    planner_decide(snap, &pol, plan);
    return STATUS_OK;
}

Status cmd_reconcile(int argc, char **argv)
{
    CommandFlags f;
    Status st = commands_parse_flags(argc, argv, "terminate json", &f);
    if (st != STATUS_OK)
        return st;
    Config *cfg = NULL;
    st = commands_load_config(CONFIG_NEED_DB | CONFIG_NEED_API, &cfg);
    if (st != STATUS_OK)
        return st;
    App app;
    Snapshot *snap = calloc(1, sizeof *snap);
    Plan *plan = calloc(1, sizeof *plan);
    cJSON *out = cJSON_CreateObject();
    cJSON *errors = cJSON_CreateArray();
    bool locked = false;
    st = commands_app_open(&app, cfg, "reconcile", !f.terminate);
    if (st != STATUS_OK)
        goto done;
    if (!snap || !plan || !out || !errors) {
        st = STATUS_ERR_NOMEM;
        goto done;
    }
    if (!app.rp) {
        fprintf(stderr, "orchestrator reconcile: RUNPOD_API_KEY is unset; the pod list needs it\n");
        st = STATUS_ERR_CONFIG;
        goto done;
    }
    bool act_now = f.terminate && !cfg->safe_mode;
    if (f.terminate && cfg->safe_mode)
        fprintf(stderr, "orchestrator reconcile: SAFE_MODE is on; reporting only, nothing is "
                        "terminated\n");
    st = observe(&app, act_now, &locked, snap, plan, errors);
    if (st != STATUS_OK)
        goto done;

    Totals t = {0};
    Policy pol;
    policy_from_config(cfg, &pol);
    report_pods(cfg, snap, plan, f.json, cJSON_AddArrayToObject(out, "pods"), &t);
    t.foreign = (long long)snap->pods_foreign; /* not kept in the snapshot at all */
    if (act_now) /* the fence (lease.h): the pod list may have taken long */
        st = lease_verify(app.lease, app.conn);
    if (st == STATUS_OK)
        st = report_vanished(&app, snap, &pol, act_now, f.json, out, &t);
    if (st != STATUS_OK)
        goto done;
    cJSON *terminated = cJSON_AddArrayToObject(out, "terminated");
    if (act_now)
        st = terminate_leaks(&app, snap, plan, f.json, terminated, errors);
    add_totals(out, &t, snap->n_workers, act_now, f.json);

done:
    if (out && errors && f.json &&
        (st == STATUS_OK || st == STATUS_ERR_PARTIAL || st == STATUS_ERR_API)) {
        cJSON_AddStringToObject(out, "result", status_str(st));
        cJSON_AddItemToObject(out, "errors", cJSON_Duplicate(errors, 1));
        char *s = cJSON_PrintUnformatted(out);
        if (s)
            printf("%s\n", s);
        free(s);
    }
    fflush(stdout);
    if (locked)
        lease_release(app.lease, app.conn && PQstatus(app.conn) == CONNECTION_OK ? app.conn : NULL);
    cJSON_Delete(out);
    cJSON_Delete(errors);
    free(snap);
    free(plan);
    commands_app_close(&app);
    free(cfg);
    return st;
}
