/* planner_manual.c -- operator requests (spawn, terminate, shutdown-all), planned with the
 * cycle's own actions and guards (see planner.h).
 *
 * Pure, like planner_decide.
 */
#include "planner_ctx.h"

#include <stdio.h>
#include <string.h>

#include "worker_name.h"

/* Drains worker i by hand, recovers its tasks and terminates it (its pod, then the row). A
 * crashed row goes to error first; a legacy inactive row, which may not become terminating,
 * is terminated directly. */
static void manual_terminate(Ctx *c, size_t i)
{
    const Snapshot *snap = c->snap;
    const SnapWorker *w = &snap->workers[i];
    View *v = &c->view[i];
    if (v->terminated_in_plan)
        return;
    planner_adopt(c, i); /* a row terminated by hand takes its pod, recorded or by name */
    bool failed = v->state == WORKER_CRASHED || v->state == WORKER_ERROR;
    if (v->state == WORKER_CRASHED) {
        planner_fail_worker(c, i, REASON_OPERATOR, "Terminated by operator");
        c->plan->actions[c->plan->count - 1].unexpected = false;
        c->new_unexpected[v->pool >= 0 ? v->pool : PLAN_POOLS_MAX]--;
    } else if (v->state == WORKER_SPAWNING || v->state == WORKER_ACTIVE) {
        Action *a = planner_add_action(c, ACTION_DRAIN_WORKER, REASON_OPERATOR, w);
        if (!a)
            return;
        a->force = true;
        a->from_state = v->state;
        snprintf(a->detail, sizeof a->detail, "terminated by operator");
        v->state = WORKER_TERMINATING;
    }
    for (size_t t = 0; t < snap->n_tasks; t++)
        if (strcmp(snap->tasks[t].worker_id, w->id) == 0)
            planner_recover_task(c, &snap->tasks[t], REASON_OPERATOR);
    Action *a = planner_add_action(c, ACTION_TERMINATE_WORKER, REASON_OPERATOR, w);
    if (!a)
        return;
    a->from_state = v->state;
    snprintf(a->pod_id, sizeof a->pod_id, "%s", planner_worker_pod_id(c, i));
    a->fetch_logs = failed && a->pod_id[0]; /* its log tail before its pod goes (issue 16) */
    if (!v->has_pod) {
        /* No pod to terminate -- unless one may still surface: the list could not be read, or
         * the row's create is within the lag window. The operator is told (exit 6). */
        long long since = w->create_unknown_age_sec >= 0 ? w->create_unknown_age_sec : w->age_sec;
        a->pod_unconfirmed = !snap->pods_listed ||
                             (w->state == WORKER_SPAWNING && since <= c->policy->pod_id_grace_sec);
    }
    v->terminated_in_plan = true;
}

/* Terminates a pod of ours that no live row owns (a leaked pod, stopped by hand). */
static void manual_terminate_pod(Ctx *c, const SnapPod *pod)
{
    Action *a = planner_add_action(c, ACTION_TERMINATE_POD, REASON_OPERATOR, NULL);
    if (!a)
        return;
    memcpy(a->pod_id, pod->id, sizeof a->pod_id);
    snprintf(a->detail, sizeof a->detail, "pod %.64s (%.40s), no live worker row", pod->name,
             pod->id);
}

/* `terminate ID`: a live worker by its id or its pod id, else a listed pod of ours no row
 * owns. Anything else plans nothing and says why. */
static void manual_terminate_id(Ctx *c, const char *id)
{
    const Snapshot *snap = c->snap;
    long long i = planner_find_worker(snap, id);
    for (size_t k = 0; i < 0 && id[0] && k < snap->n_workers; k++)
        if (strcmp(planner_worker_pod_id(c, k), id) == 0)
            i = (long long)k;
    if (i >= 0) {
        c->plan->manual_result = MANUAL_RESULT_WORKER;
        manual_terminate(c, (size_t)i);
        return;
    }
    for (size_t k = 0; k < snap->n_pods; k++) {
        const SnapPod *pod = &snap->pods[k];
        if (strcmp(pod->id, id) != 0 && strcmp(pod->name, id) != 0)
            continue;
        if (!worker_name_matches(c->policy->worker_prefix, pod->name)) {
            c->plan->manual_result = MANUAL_RESULT_NOT_OURS;
            return;
        }
        c->plan->manual_result = MANUAL_RESULT_POD;
        manual_terminate_pod(c, pod);
        return;
    }
    c->plan->manual_result = MANUAL_RESULT_NOT_FOUND;
}

/* The pool an operator spawns into: the one named, or the only pool when none is named; -1
 * when there is no such pool, or several and none was named. */
static int manual_pool(const Policy *policy, const char *name)
{
    if (!name[0])
        return policy->n_pools == 1 ? 0 : -1;
    for (size_t p = 0; p < policy->n_pools && p < PLAN_POOLS_MAX; p++)
        if (strcmp(policy->pools[p].name, name) == 0)
            return (int)p;
    return -1;
}

void planner_manual(const Snapshot *snap, const Policy *policy, const ManualRequest *req, Plan *out)
{
    Ctx c;
    if (!planner_ctx_init(&c, snap, policy, out))
        return;
    /* Step 6 below only fills the counts, except for the pool an operator spawns into. */
    for (size_t p = 0; p < PLAN_POOLS_MAX; p++)
        c.want_override[p] = 0;
    switch (req->kind) {
    case MANUAL_SPAWN: {
        int p = manual_pool(policy, req->pool);
        if (p < 0)
            out->manual_result = MANUAL_RESULT_NO_POOL;
        else
            c.want_override[p] = req->count > 0 ? req->count : 0;
        break;
    }
    case MANUAL_TERMINATE:
        manual_terminate_id(&c, req->worker_id);
        break;
    case MANUAL_SHUTDOWN_ALL:
        for (size_t i = 0; i < snap->n_workers; i++)
            manual_terminate(&c, i);
        /* The kill switch stops every pod of ours it can see, rows or not. */
        for (size_t k = 0; k < snap->n_pods; k++) {
            const SnapPod *pod = &snap->pods[k];
            if (worker_name_matches(policy->worker_prefix, pod->name) &&
                pod->status != SNAP_POD_TERMINATED && !planner_pod_owned(&c, pod))
                manual_terminate_pod(&c, pod);
        }
        break;
    }
    planner_step_scale_up(&c);
}
