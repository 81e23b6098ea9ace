/* planner.c -- pure decision function of the control cycle (SPEC section 6): the working view,
 * the cycle's steps 1-7 and planner_decide.
 *
 * Pure: reads only its arguments; no I/O, clock, environment, allocation or logging. Operator
 * requests are planner_manual.c; names and the policy planner_names.c.
 */
#include "planner_ctx.h"

#include <stdio.h>
#include <string.h>

#include "worker_name.h"

/* ------------------------------------------------------------------------------------------ */
/* Working view                                                                                */

/* Index of the configured pool named name, or POOL_RETIRED. */
static int pool_index(const Policy *policy, const char *name)
{
    for (size_t p = 0; p < policy->n_pools && p < PLAN_POOLS_MAX; p++)
        if (strcmp(policy->pools[p].name, name) == 0)
            return (int)p;
    return POOL_RETIRED;
}

/* Index of the pool serving run_type, or -1 when none does. */
static int pool_of_run_type(const Policy *policy, const char *run_type)
{
    for (size_t p = 0; p < policy->n_pools && p < PLAN_POOLS_MAX; p++)
        for (size_t r = 0; r < policy->pools[p].n_run_types; r++)
            if (strcmp(policy->pools[p].run_types[r], run_type) == 0)
                return (int)p;
    return -1;
}

const PolicyPool *planner_pool_of(const Ctx *c, size_t i)
{
    int p = c->view[i].pool;
    return p >= 0 ? &c->policy->pools[p] : &c->retired;
}

bool planner_ctx_init(Ctx *c, const Snapshot *snap, const Policy *policy, Plan *out)
{
    memset(c, 0, sizeof *c);
    c->snap = snap;
    c->policy = policy;
    c->plan = out;
    out->count = 0;
    out->truncated = false;
    out->queued = out->running = out->spawning = out->active = out->idle = out->busy = 0;
    out->terminating = out->desired = out->to_spawn = 0;
    out->spawn_limit = SPAWN_LIMIT_NONE;
    out->breaker_open = false;
    out->failure_rate = 0;
    out->fleet_cost_per_hr = 0;
    out->n_gpu_types = 0;
    out->reconcile_due = planner_reconcile_due(snap, policy);
    out->reconcile_ran = false;
    out->foreign_held_tasks = 0;
    out->manual_result = MANUAL_RESULT_NONE;
    out->n_pools = 0;
    out->unserved_queued = 0;
    out->fleet_room = 0;
    out->fleet_spend_capped = false;
    out->n_unserved = 0;
    out->stopped = out->to_start = 0;
    out->spend_estimate_per_hr = out->spend_billed_per_hr = 0;
    for (size_t p = 0; p < PLAN_POOLS_MAX; p++)
        c->want_override[p] = -1;
    /* Workers of a pool no longer configured: the global settings, MIN 0, MAX 0. */
    PolicyPool *r = &c->retired;
    snprintf(r->name, sizeof r->name, "(retired)");
    r->min_active = 0;
    r->max_active = 0;
    r->tasks_per_gpu = policy->tasks_per_gpu > 0 ? policy->tasks_per_gpu : 1;
    r->keep_idle = 0;
    r->idle_timeout_sec = policy->idle_timeout_sec;
    r->stuck_timeout_sec = policy->stuck_timeout_sec;
    r->spawning_timeout_sec = policy->spawning_timeout_sec;
    r->grace_period_sec = policy->grace_period_sec;

    if (snap->workers_truncated) {
        /* More live workers than we can see: any decision could be wrong. Fail closed. */
        out->spawn_limit = SPAWN_LIMIT_UNSAFE_SNAPSHOT;
        return false;
    }
    /* tasks_held comes from SQL over every In Progress task, not from the bounded task list:
     * a worker whose tasks lie past SNAP_TASKS_MAX is still busy, never drained as idle. */
    for (size_t i = 0; i < snap->n_workers; i++) {
        c->view[i].state = snap->workers[i].state;
        c->view[i].has_pod = snap->workers[i].runpod_id[0] != '\0';
        c->view[i].tasks_held = snap->workers[i].tasks_held;
        c->view[i].pool = pool_index(policy, snap->workers[i].pool);
    }
    return true;
}

Action *planner_add_action(Ctx *c, ActionKind kind, Reason reason, const SnapWorker *w)
{
    Plan *p = c->plan;
    if (w && w->id_too_long)
        return NULL; /* its id cannot be addressed: every write would miss it */
    if (p->count >= PLAN_MAX_ACTIONS) {
        p->truncated = true;
        return NULL;
    }
    Action *a = &p->actions[p->count++];
    memset(a, 0, sizeof *a);
    a->kind = kind;
    a->reason = reason;
    a->pool = POOL_RETIRED;
    if (w) {
        memcpy(a->worker_id, w->id, sizeof a->worker_id);
        memcpy(a->pod_id, w->runpod_id, sizeof a->pod_id);
        a->from_state = w->state;
        size_t i = (size_t)(w - c->snap->workers); /* w is one of the snapshot's workers */
        if (i < c->snap->n_workers)
            a->pool = c->view[i].pool;
    }
    return a;
}

long long planner_find_worker(const Snapshot *snap, const char *id)
{
    if (!id[0])
        return -1;
    for (size_t i = 0; i < snap->n_workers; i++)
        if (strcmp(snap->workers[i].id, id) == 0)
            return (long long)i;
    return -1;
}

static const SnapPod *find_pod_by_id(const Snapshot *snap, const char *pod_id)
{
    for (size_t i = 0; pod_id[0] && i < snap->n_pods; i++)
        if (strcmp(snap->pods[i].id, pod_id) == 0)
            return &snap->pods[i];
    return NULL;
}

static const SnapPod *find_pod_by_name(const Snapshot *snap, const char *name)
{
    for (size_t i = 0; name[0] && i < snap->n_pods; i++)
        if (strcmp(snap->pods[i].name, name) == 0)
            return &snap->pods[i];
    return NULL;
}

const SnapPod *planner_pod_by_id(const Snapshot *snap, const char *pod_id)
{
    return find_pod_by_id(snap, pod_id);
}

/* How long worker w has had its pod id: the list may lag that long behind the create's
 * answer, so a pod missing from the list is only "gone" past POD_NOT_FOUND_GRACE_SEC of it. */
static long long pod_age(const SnapWorker *w)
{
    return w->pod_age_sec >= 0 ? w->pod_age_sec : w->age_sec;
}

const char *planner_worker_pod_id(const Ctx *c, size_t i)
{
    return c->view[i].adopted ? c->view[i].adopted->id : c->snap->workers[i].runpod_id;
}

/* Fails worker i: -> error with a reason. Its tasks are recovered in step 3 and its pod is
 * terminated in step 5. */
void planner_fail_worker(Ctx *c, size_t i, Reason reason, const char *detail)
{
    const SnapWorker *w = &c->snap->workers[i];
    Action *a = planner_add_action(c, ACTION_FAIL_WORKER, reason, w);
    if (!a)
        return;
    a->from_state = c->view[i].state;
    a->unexpected = true;
    snprintf(a->detail, sizeof a->detail, "%s", detail);
    c->view[i].state = WORKER_ERROR;
    int p = c->view[i].pool;
    c->new_unexpected[p >= 0 ? p : PLAN_POOLS_MAX]++;
}

/* The attempt limit: the task's own max_attempts when set, else MAX_TASK_ATTEMPTS (the rule of
 * func_task_max_attempts, 0007_hardening.sql, which the worker's func_mark_task_failed uses). */
static int effective_max_attempts(const Policy *policy, const SnapTask *t)
{
    return t->max_attempts > 0 ? t->max_attempts : policy->max_task_attempts;
}

void planner_recover_task(Ctx *c, const SnapTask *t, Reason reason)
{
    Action *a = planner_add_action(c, ACTION_RECOVER_TASK, reason, NULL);
    if (!a)
        return;
    memcpy(a->task_id, t->id, sizeof a->task_id);
    memcpy(a->worker_id, t->worker_id, sizeof a->worker_id);
    a->task_to_failed = t->attempts + 1 >= effective_max_attempts(c->policy, t);
    snprintf(a->detail, sizeof a->detail, "attempt %d of %d", t->attempts + 1,
             effective_max_attempts(c->policy, t));
    int p = pool_of_run_type(c->policy, t->run_type);
    if (!a->task_to_failed && p >= 0)
        c->requeued[p]++;
}

/* ------------------------------------------------------------------------------------------ */
/* Steps                                                                                       */

/* Step 0: a live row without a pod id whose pod RunPod lists under the row's name gets that
 * pod adopted (its id recorded) before anything else is decided about it: a create that
 * timed out or crashed before recording, or a legacy row. Whatever happens to the row next
 * (promotion, failure, termination) then acts on the pod by id. */
void planner_adopt(Ctx *c, size_t i)
{
    const Snapshot *snap = c->snap;
    const SnapWorker *w = &snap->workers[i];
    if (!snap->pods_listed || c->view[i].has_pod || w->state == WORKER_TERMINATED)
        return;
    /* Only a name of our worker-id shape is ours: a row named otherwise (an operator's, a
     * legacy system's) never gets a pod of that name adopted, terminated or counted. */
    if (!worker_name_matches(c->policy->worker_prefix, w->id))
        return;
    const SnapPod *pod = find_pod_by_name(snap, w->id);
    if (!pod || pod->status == SNAP_POD_TERMINATED)
        return;
    Action *a = planner_add_action(c, ACTION_ADOPT_POD, REASON_ADOPT_ORPHAN_POD, w);
    if (!a)
        return;
    memcpy(a->pod_id, pod->id, sizeof a->pod_id);
    memcpy(a->gpu_type, pod->gpu_type, sizeof a->gpu_type);
    a->cost_per_hr = pod->cost_per_hr;
    c->view[i].has_pod = true;
    c->view[i].adopted = pod;
}

static void step_adopt(Ctx *c)
{
    for (size_t i = 0; i < c->snap->n_workers; i++)
        planner_adopt(c, i);
}

/* Step 1: promote or fail spawning workers. A row without a pod id is failed only when the pod
 * list positively shows no pod of its name after SPAWN_POD_ID_GRACE_SEC (RunPod's list lags a
 * create by seconds): until then its create may still surface, so it keeps its slot under
 * MAX_ACTIVE_GPUS and nothing is created in its name. A row failed that way has no pod to
 * terminate; should one appear later, reconcile terminates it as a pod of an ended row. */
static void step_spawning(Ctx *c)
{
    const Snapshot *snap = c->snap;
    const Policy *pol = c->policy;
    char detail[PLAN_DETAIL_MAX];
    for (size_t i = 0; i < snap->n_workers; i++) {
        const SnapWorker *w = &snap->workers[i];
        if (c->view[i].state != WORKER_SPAWNING)
            continue;
        const PolicyPool *pp = planner_pool_of(c, i);
        if (w->heartbeat_age_sec >= 0 && w->heartbeat_after_create) {
            if (!planner_add_action(c, ACTION_PROMOTE_WORKER, REASON_FIRST_HEARTBEAT, w))
                continue;
            c->view[i].state = WORKER_ACTIVE;
            c->view[i].promoted_in_plan = true;
            continue;
        }
        if (!c->view[i].has_pod) {
            /* The lag window counts from the create's ambiguous answer (a slow create can
             * outlast the window measured from the insert). */
            long long since =
                w->create_unknown_age_sec >= 0 ? w->create_unknown_age_sec : w->age_sec;
            if (snap->pods_listed && since > pol->pod_id_grace_sec) {
                snprintf(detail, sizeof detail,
                         "No Runpod ID: no pod named %.64s listed %llds after its %s", w->id,
                         w->age_sec, w->create_unknown ? "ambiguous create" : "registration");
                planner_fail_worker(c, i, REASON_NO_POD_ID, detail);
            }
            continue; /* unknown yet: wait, holding its slot */
        }
        /* A stopped pod started again (issue 16) lives from its start: the list may still show
         * it EXITED for the lag window, and its spawning timeout counts from then. */
        long long life = w->restarted ? w->restart_age_sec : w->age_sec;
        bool lagging = w->restarted && w->restart_age_sec <= pol->pod_not_found_grace_sec;
        const SnapPod *pod = c->view[i].adopted;
        if (snap->pods_listed && !pod) {
            pod = find_pod_by_id(snap, w->runpod_id);
            if (!pod && pod_age(w) > pol->pod_not_found_grace_sec) {
                planner_fail_worker(c, i, REASON_POD_GONE, "Pod not found in RunPod");
                continue;
            }
        }
        if (pod && pod->status == SNAP_POD_ERROR) {
            planner_fail_worker(c, i, REASON_POD_ERROR, "Pod failed");
            continue;
        }
        if (pod && pod->status == SNAP_POD_EXITED && !lagging) {
            planner_fail_worker(c, i, REASON_POD_EXITED,
                                w->restarted ? "Pod exited (not started again)" : "Pod exited");
            continue;
        }
        if (pod && pod->status == SNAP_POD_TERMINATED) {
            planner_fail_worker(c, i, REASON_POD_TERMINATED, "Pod terminated");
            continue;
        }
        if (life > pp->spawning_timeout_sec)
            planner_fail_worker(c, i, REASON_SPAWNING_TIMEOUT,
                                w->restarted ? "Spawning timeout (after a start)"
                                             : "Spawning timeout");
    }
}

/* Step 2: health of active (and crashed, and terminating) workers. */
static void step_health(Ctx *c)
{
    const Snapshot *snap = c->snap;
    const Policy *pol = c->policy;
    char detail[PLAN_DETAIL_MAX];
    for (size_t i = 0; i < snap->n_workers; i++) {
        const SnapWorker *w = &snap->workers[i];
        WorkerState st = c->view[i].state;
        if (st == WORKER_CRASHED) {
            planner_fail_worker(c, i, REASON_WORKER_CRASHED, "Worker crashed");
            continue;
        }
        if (st != WORKER_ACTIVE && st != WORKER_TERMINATING)
            continue;
        bool holds = c->view[i].tasks_held > 0;
        if (st == WORKER_TERMINATING && !holds)
            continue; /* step 5 terminates it; a silent idle worker is no failure */
        const PolicyPool *pp = planner_pool_of(c, i);

        /* Liveness: a heartbeat older than GPU_IDLE_TIMEOUT_SEC. A worker promoted without
         * one (legacy row) is measured from its promotion, then its creation. */
        long long hb = w->heartbeat_age_sec;
        if (hb < 0)
            hb = w->promoted_age_sec >= 0 ? w->promoted_age_sec : w->age_sec;
        if (hb > pp->idle_timeout_sec) {
            if (holds)
                snprintf(detail, sizeof detail, "Stale heartbeat with active tasks (%llds old)",
                         hb);
            else
                snprintf(detail, sizeof detail, "Stale heartbeat (%llds old)", hb);
            planner_fail_worker(c, i, REASON_STALE_HEARTBEAT, detail);
            continue;
        }
        if (w->oldest_task_id[0] && w->oldest_task_age_sec > pp->stuck_timeout_sec) {
            snprintf(detail, sizeof detail, "Stuck task %s (timeout: %llds)", w->oldest_task_id,
                     pp->stuck_timeout_sec);
            planner_fail_worker(c, i, REASON_STUCK_TASK, detail);
            continue;
        }
        if (w->vram_total_mb == 0) {
            planner_fail_worker(c, i, REASON_GPU_NOT_VISIBLE,
                                "GPU not visible (vram_total_mb = 0)");
            continue;
        }
        if (snap->pods_listed && c->view[i].has_pod) {
            const SnapPod *pod = find_pod_by_id(snap, planner_worker_pod_id(c, i));
            if (!pod && pod_age(w) > pol->pod_not_found_grace_sec) {
                planner_fail_worker(c, i, REASON_POD_GONE,
                                    "Pod externally terminated - not found in RunPod");
                continue;
            }
            if (pod && (pod->status == SNAP_POD_EXITED || pod->status == SNAP_POD_ERROR ||
                        pod->status == SNAP_POD_TERMINATED)) {
                planner_fail_worker(c, i,
                                    pod->status == SNAP_POD_ERROR    ? REASON_POD_ERROR
                                    : pod->status == SNAP_POD_EXITED ? REASON_POD_EXITED
                                                                     : REASON_POD_TERMINATED,
                                    pod->status == SNAP_POD_ERROR    ? "Pod failed"
                                    : pod->status == SNAP_POD_EXITED ? "Pod exited"
                                                                     : "Pod terminated");
                continue;
            }
        }
    }
}

/* Whether task t's holder is, or was, one of our workers: a row of ours (live or ended), or a
 * name of our worker-id shape (a row deleted by hand). */
static bool held_by_ours(const Ctx *c, const SnapTask *t)
{
    return t->holder_known || worker_name_matches(c->policy->worker_prefix, t->worker_id);
}

/* Step 3: In Progress tasks held by one of our workers that failed (error), is a legacy
 * inactive row, or is no longer live go back to the queue (attempt counted) or fail for good.
 * A task held by a claimer that never was one of our workers (an API worker, another system)
 * is not ours to take back: it is counted (foreign_held_tasks) and left alone. */
static void step_orphans(Ctx *c)
{
    const Snapshot *snap = c->snap;
    for (size_t t = 0; t < snap->n_tasks; t++) {
        const SnapTask *task = &snap->tasks[t];
        if (!task->worker_id[0] || task->holder_too_long)
            continue;
        long long w = planner_find_worker(snap, task->worker_id);
        if (w >= 0 && c->view[w].state != WORKER_ERROR && c->view[w].state != WORKER_INACTIVE &&
            c->view[w].state != WORKER_STOPPED) /* a stopped worker works on nothing */
            continue;
        if (w < 0 && !held_by_ours(c, task)) {
            c->plan->foreign_held_tasks++;
            continue;
        }
        planner_recover_task(c, task, REASON_WORKER_FAILED);
    }
}

/* Step 5: terminating workers without a task, and error workers, have their pods terminated.
 * A terminating worker still holding a task after the graceful timeout has it recovered. */
static void step_shutdown(Ctx *c)
{
    const Snapshot *snap = c->snap;
    const Policy *pol = c->policy;
    for (size_t i = 0; i < snap->n_workers; i++) {
        const SnapWorker *w = &snap->workers[i];
        View *v = &c->view[i];
        Reason reason = REASON_NONE;
        if (v->state == WORKER_TERMINATING) {
            if (v->tasks_held == 0) {
                if (planner_warm_stop(c, i))
                    continue; /* its pod is kept stopped (issue 16) */
                reason = REASON_DRAINED;
            } else if (w->terminating_age_sec > pol->graceful_timeout_sec) {
                for (size_t t = 0; t < snap->n_tasks; t++)
                    if (strcmp(snap->tasks[t].worker_id, w->id) == 0)
                        planner_recover_task(c, &snap->tasks[t], REASON_GRACEFUL_TIMEOUT);
                reason = REASON_GRACEFUL_TIMEOUT;
            }
        } else if (v->state == WORKER_ERROR) {
            reason = REASON_ERROR_CLEANUP;
        } else if (v->state == WORKER_INACTIVE) {
            /* A legacy row (the replaced system's pre-create insert): its tasks went back to
             * the queue in step 3; its pod, if any, is terminated and the row ends. */
            reason = REASON_LEGACY_INACTIVE;
        }
        if (reason == REASON_NONE)
            continue;
        Action *a = planner_add_action(c, ACTION_TERMINATE_WORKER, reason, w);
        if (!a) {
            if (c->plan->truncated)
                return;
            continue; /* a worker whose id cannot be addressed */
        }
        a->from_state = v->state;
        snprintf(a->pod_id, sizeof a->pod_id, "%s", planner_worker_pod_id(c, i));
        a->fetch_logs = v->state == WORKER_ERROR && a->pod_id[0];
        v->terminated_in_plan = true;
    }
}

/* Whether a live row owns pod: its recorded (or adopted) pod id is the pod's, or a row named
 * like the pod has no pod id yet. A second pod with a row's name (a create that timed out and
 * still happened after the look-up by name) is not owned: the row's pod is the recorded one. */
bool planner_pod_owned(const Ctx *c, const SnapPod *pod)
{
    for (size_t i = 0; i < c->snap->n_workers; i++) {
        const char *pid = planner_worker_pod_id(c, i);
        if (pid[0] ? strcmp(pid, pod->id) == 0 : strcmp(c->snap->workers[i].id, pod->name) == 0)
            return true;
    }
    return false;
}

/* Step 7: leaked pods -- a name of our worker-id shape, no live worker row owning it, and
 * either older than ORPHAN_POD_GRACE_SEC or named after a worker row that has ended (ours for
 * certain, and no longer wanted: no grace). Pods of any other name are never touched, nor an
 * entry whose name could not be read. */
static void step_reconcile(Ctx *c)
{
    const Snapshot *snap = c->snap;
    const Policy *pol = c->policy;
    for (size_t k = 0; k < snap->n_pods; k++) {
        const SnapPod *pod = &snap->pods[k];
        if (!worker_name_matches(pol->worker_prefix, pod->name))
            continue; /* never touch pods that are not ours */
        if (pod->status == SNAP_POD_TERMINATED || planner_pod_owned(c, pod))
            continue;
        bool aged = pod->age_sec >= 0 && pod->age_sec > pol->orphan_pod_grace_sec;
        if (!aged && !pod->ended_row)
            continue;
        Action *a = planner_add_action(c, ACTION_TERMINATE_POD, REASON_LEAKED_POD, NULL);
        if (!a)
            return;
        memcpy(a->pod_id, pod->id, sizeof a->pod_id);
        snprintf(a->detail, sizeof a->detail, "pod %.64s (%.40s) age %llds, %s", pod->name, pod->id,
                 pod->age_sec, pod->ended_row ? "its worker row has ended" : "no worker row");
    }
}

/* ------------------------------------------------------------------------------------------ */

void planner_decide(const Snapshot *snap, const Policy *policy, Plan *out)
{
    Ctx c;
    if (!planner_ctx_init(&c, snap, policy, out))
        return;

    step_adopt(&c);
    step_spawning(&c);
    step_health(&c);
    step_orphans(&c);
    planner_step_stopped(&c);
    planner_step_scale_down(&c);
    step_shutdown(&c);
    planner_step_scale_up(&c);
    if (out->reconcile_due && snap->pods_listed) {
        step_reconcile(&c);
        out->reconcile_ran = true;
    }
}
