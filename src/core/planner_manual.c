/* planner_manual.c -- operator requests (spawn, terminate, shutdown-all), planned with the
 * cycle's own actions and guards (see planner.h).
 *
 * Pure, like planner_decide.
 */
#include "planner_ctx.h"

#include <stdio.h>
#include <string.h>

/* Drains worker i by hand, recovers its tasks and terminates it (its pod, then the row). */
static void manual_terminate(Ctx *c, size_t i)
{
    const Snapshot *snap = c->snap;
    const SnapWorker *w = &snap->workers[i];
    View *v = &c->view[i];
    if (v->state == WORKER_CRASHED) {
        planner_fail_worker(c, i, REASON_OPERATOR, "Terminated by operator");
        c->plan->actions[c->plan->count - 1].unexpected = false;
        c->new_unexpected--;
    } else if (v->state == WORKER_SPAWNING || v->state == WORKER_ACTIVE ||
               v->state == WORKER_INACTIVE) {
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
    v->terminated_in_plan = true;
}

void planner_manual(const Snapshot *snap, const Policy *policy, const ManualRequest *req, Plan *out)
{
    Ctx c;
    if (!planner_ctx_init(&c, snap, policy, out))
        return;
    switch (req->kind) {
    case MANUAL_SPAWN:
        c.want_override = req->count > 0 ? req->count : 0;
        break;
    case MANUAL_TERMINATE: {
        long long i = planner_find_worker(snap, req->worker_id);
        if (i >= 0)
            manual_terminate(&c, (size_t)i);
        c.want_override = 0; /* step 6 below only fills the counts */
        break;
    }
    case MANUAL_SHUTDOWN_ALL:
        for (size_t i = 0; i < snap->n_workers; i++)
            manual_terminate(&c, i);
        c.want_override = 0;
        break;
    }
    planner_step_scale_up(&c);
}
