/* explain_cmd.c -- `orchestrator explain TASK_ID | --fleet [--json]`: why a task is not running,
 * why the fleet has the size it has (structure_docs/operating.md, "Why is my task not running?").
 *
 * CLI module. Database only and read-only: the cycle's own snapshot (db_load_snapshot, a READ
 * ONLY transaction), the pure planner in dry run (planner_decide: no action is applied), the
 * task's facts and measured boot times (db_explain.h) in another READ ONLY transaction. It takes
 * no lease, writes nothing and calls no RunPod endpoint: the pod list only matters to decisions
 * about pods, never to why a task waits, so the answer is fast and works without an API key.
 */
#include "explain_cmd.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "db.h"
#include "db_explain.h"
#include "explain.h"
#include "planner.h"
#include "taskfile.h"

/* Everything one explanation reads and computes (megabytes: heap). */
typedef struct {
    Snapshot snap;
    Plan plan;
    Policy policy;
    ExplainTask task;
    ExplainBootTimes boot;
    Explanation why;
    ExplainOptions opt;
} World;

static void usage(const char *msg, const char *arg)
{
    fprintf(stderr,
            "orchestrator explain: %s%s%s; usage: orchestrator explain TASK_ID | --fleet "
            "[--json]\n",
            msg, arg ? " " : "", arg ? arg : "");
}

/* ------------------------------------------------------------------------------------------ */
/* JSON (structure_docs/operating.md lists the keys; keys are only ever added)                 */

static cJSON *reasons_json(const Explanation *why)
{
    cJSON *arr = cJSON_CreateArray();
    for (size_t k = 0; arr && k < why->n; k++) {
        cJSON *r = cJSON_CreateObject();
        cJSON_AddStringToObject(r, "code", explain_code_str(why->reasons[k].code));
        cJSON_AddStringToObject(r, "detail", why->reasons[k].detail);
        cJSON_AddNumberToObject(r, "wait_sec", (double)why->reasons[k].wait_sec);
        cJSON_AddItemToArray(arr, r);
    }
    return arr;
}

static cJSON *boot_json(const ExplainBootTimes *boot, const char *pool)
{
    const ExplainBoot *b = explain_boot_of(boot, pool);
    if (!b)
        return cJSON_CreateNull();
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "samples", (double)b->samples);
    cJSON_AddNumberToObject(o, "median_sec", b->median_sec);
    cJSON_AddNumberToObject(o, "p90_sec", b->p90_sec);
    return o;
}

static cJSON *pool_json(const World *w, size_t p)
{
    const PlanPool *pp = &w->plan.pools[p];
    const PolicyPool *pol = &w->policy.pools[p];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "pool", pp->name);
    cJSON *rts = cJSON_AddArrayToObject(o, "run_types");
    for (size_t r = 0; rts && r < pol->n_run_types; r++)
        cJSON_AddItemToArray(rts, cJSON_CreateString(pol->run_types[r]));
    cJSON_AddNumberToObject(o, "min", (double)pp->min_active);
    cJSON_AddNumberToObject(o, "max", (double)pp->max_active);
    cJSON_AddNumberToObject(o, "tasks_per_gpu", pol->tasks_per_gpu);
    cJSON_AddNumberToObject(o, "keep_idle", pol->keep_idle);
    cJSON_AddNumberToObject(o, "queued", (double)pp->queued);
    cJSON_AddNumberToObject(o, "queued_total", (double)pp->queued_total);
    cJSON_AddNumberToObject(o, "busy", (double)pp->busy);
    cJSON_AddNumberToObject(o, "idle", (double)pp->idle);
    cJSON_AddNumberToObject(o, "active", (double)pp->active);
    cJSON_AddNumberToObject(o, "spawning", (double)pp->spawning);
    cJSON_AddNumberToObject(o, "terminating", (double)pp->terminating);
    cJSON_AddNumberToObject(o, "wanted", (double)pp->wanted);
    cJSON_AddNumberToObject(o, "desired", (double)pp->desired);
    cJSON_AddStringToObject(o, "desired_by", reason_str(pp->desired_by));
    cJSON_AddNumberToObject(o, "to_spawn", (double)pp->to_spawn);
    cJSON_AddStringToObject(o, "spawn_limit", spawn_limit_str(pp->spawn_limit));
    cJSON *lim = cJSON_AddArrayToObject(o, "limits");
    for (unsigned l = 1; lim && l < 32; l++)
        if (pp->limits & (1u << l))
            cJSON_AddItemToArray(lim, cJSON_CreateString(spawn_limit_str((SpawnLimit)l)));
    cJSON_AddBoolToObject(o, "breaker_open", pp->breaker_open);
    cJSON_AddNumberToObject(o, "failure_rate", pp->failure_rate);
    cJSON *gt = cJSON_AddArrayToObject(o, "gpu_types_available");
    for (size_t g = 0; gt && g < pp->n_gpu_types; g++)
        cJSON_AddItemToArray(gt, cJSON_CreateString(pp->gpu_types[g]));
    cJSON_AddNumberToObject(o, "cost_per_hr", pp->cost_per_hr);
    cJSON_AddNumberToObject(o, "max_hourly_spend", pol->max_hourly_spend);
    cJSON_AddNumberToObject(o, "spend_room", (double)pp->spend_room);
    cJSON_AddItemToObject(o, "boot", boot_json(&w->boot, pp->name));
    return o;
}

static cJSON *task_json(const World *w)
{
    const ExplainTask *t = &w->task;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", t->id);
    cJSON_AddStringToObject(o, "status", t->status);
    cJSON_AddStringToObject(o, "task_type", t->task_type);
    cJSON_AddStringToObject(o, "run_type", t->run_type);
    if (w->why.pool >= 0)
        cJSON_AddStringToObject(o, "pool", w->policy.pools[w->why.pool].name);
    else
        cJSON_AddNullToObject(o, "pool");
    cJSON_AddNumberToObject(o, "attempts", t->attempts);
    cJSON_AddNumberToObject(o, "max_attempts", t->max_attempts);
    cJSON_AddNumberToObject(o, "created_age_sec", (double)t->created_age_sec);
    cJSON_AddNumberToObject(o, "available_in_sec",
                            (double)(t->available_in_sec > 0 ? t->available_in_sec : 0));
    cJSON_AddBoolToObject(o, "claimable", t->claimable);
    cJSON_AddNumberToObject(o, "position",
                            t->claimable && t->ahead >= 0 ? (double)t->ahead + 1 : 0);
    cJSON *deps = cJSON_AddArrayToObject(o, "dependencies");
    for (size_t d = 0; deps && d < t->n_deps; d++) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "id", t->deps[d].id);
        if (t->deps[d].status[0])
            cJSON_AddStringToObject(x, "status", t->deps[d].status);
        else
            cJSON_AddNullToObject(x, "status");
        cJSON_AddItemToArray(deps, x);
    }
    cJSON_AddStringToObject(o, "worker_id", t->worker_id);
    cJSON_AddStringToObject(o, "worker_status", t->worker_status);
    cJSON_AddNumberToObject(o, "running_sec", (double)t->running_sec);
    cJSON_AddNumberToObject(o, "finished_age_sec", (double)t->finished_age_sec);
    cJSON_AddStringToObject(o, "output_location", t->output_location);
    cJSON_AddStringToObject(o, "error_message", t->error_message);
    return o;
}

static cJSON *fleet_json(const World *w)
{
    const Plan *pl = &w->plan;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "max", w->policy.max_active);
    cJSON_AddNumberToObject(o, "active", (double)pl->active);
    cJSON_AddNumberToObject(o, "busy", (double)pl->busy);
    cJSON_AddNumberToObject(o, "idle", (double)pl->idle);
    cJSON_AddNumberToObject(o, "spawning", (double)pl->spawning);
    cJSON_AddNumberToObject(o, "terminating", (double)pl->terminating);
    cJSON_AddNumberToObject(o, "desired", (double)pl->desired);
    cJSON_AddNumberToObject(o, "to_spawn", (double)pl->to_spawn);
    cJSON_AddNumberToObject(o, "room", (double)pl->fleet_room);
    cJSON_AddNumberToObject(o, "max_hourly_spend", w->policy.max_hourly_spend);
    cJSON_AddBoolToObject(o, "spend_capped", pl->fleet_spend_capped || pl->over_spend_cap);
    cJSON_AddBoolToObject(o, "breaker_open", pl->fleet_breaker_open);
    cJSON_AddNumberToObject(o, "cost_per_hr", pl->fleet_cost_per_hr);
    cJSON_AddNumberToObject(o, "since_last_success_sec", (double)w->snap.since_success_sec);
    return o;
}

/* ------------------------------------------------------------------------------------------ */
/* Text                                                                                        */

static void print_reasons(const Explanation *why, const char *indent)
{
    for (size_t k = 0; k < why->n; k++)
        printf("%s%zu. %s: %s\n", indent, k + 1, explain_code_str(why->reasons[k].code),
               why->reasons[k].detail);
    if (why->truncated)
        printf("%s(more reasons not listed)\n", indent);
}

static void print_task(const World *w)
{
    const ExplainTask *t = &w->task;
    printf("task %s (%s, run_type %s, pool %s): %s, %d of %d attempts used, created %llds ago\n",
           t->id, t->task_type, t->run_type,
           w->why.pool >= 0 ? w->policy.pools[w->why.pool].name : "(none)", t->status, t->attempts,
           t->max_attempts, t->created_age_sec);
    bool ended = strcmp(t->status, "Queued") != 0;
    printf("%s\n", ended ? "what happened:" : "why it is not running (most decisive first):");
    print_reasons(&w->why, "  ");
}

/* ------------------------------------------------------------------------------------------ */

static Status load(PGconn *conn, const Config *cfg, const char *task_id, World *w)
{
    Status st = db_explain_read(conn, cfg, task_id, &w->task, &w->boot);
    if (st == STATUS_OK)
        st = db_load_snapshot(conn, cfg, &w->snap); /* the cycle's own reads; no pod list */
    if (st != STATUS_OK)
        return st;
    policy_from_config(cfg, &w->policy);
    planner_decide(&w->snap, &w->policy, &w->plan); /* dry run: nothing is applied */
    long long stale = 3LL * cfg->orchestrator_poll_sec;
    w->opt.stale_cycle_sec = stale > 300 ? stale : 300;
    w->opt.max_failure_rate = cfg->max_worker_failure_rate;
    w->opt.failure_window_minutes = cfg->failure_window_minutes;
    return STATUS_OK;
}

static void print_json(cJSON *o)
{
    char *s = o ? cJSON_PrintUnformatted(o) : NULL;
    printf("%s\n", s ? s : "{}");
    free(s);
    cJSON_Delete(o);
}

static void explain_one_task(World *w, bool json)
{
    explain_task(&w->snap, &w->policy, &w->plan, &w->task, &w->boot, &w->opt, &w->why);
    if (!json) {
        print_task(w);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "task", task_json(w));
    cJSON_AddItemToObject(o, "reasons", reasons_json(&w->why));
    if (w->why.pool >= 0 && (size_t)w->why.pool < w->plan.n_pools)
        cJSON_AddItemToObject(o, "pool", pool_json(w, (size_t)w->why.pool));
    else
        cJSON_AddNullToObject(o, "pool");
    print_json(o);
}

static void explain_the_fleet(World *w, bool json)
{
    const Plan *pl = &w->plan;
    explain_fleet(&w->snap, &w->policy, pl, &w->opt, &w->why);
    cJSON *o = json ? cJSON_CreateObject() : NULL;
    if (json) {
        cJSON_AddItemToObject(o, "fleet", fleet_json(w));
        cJSON_AddItemToObject(o, "reasons", reasons_json(&w->why));
    } else {
        printf("fleet: desired %lld; %lld active (%lld busy, %lld idle), %lld spawning, %lld "
               "terminating; MAX_ACTIVE_GPUS %d (room %lld); $%.2f/h\n",
               pl->desired, pl->active, pl->busy, pl->idle, pl->spawning, pl->terminating,
               w->policy.max_active, pl->fleet_room, pl->fleet_cost_per_hr);
        print_reasons(&w->why, "  ");
    }
    cJSON *pools = json ? cJSON_AddArrayToObject(o, "pools") : NULL;
    for (size_t p = 0; p < pl->n_pools; p++) {
        explain_pool(&w->snap, &w->policy, pl, p, &w->boot, &w->opt, &w->why);
        if (json) {
            cJSON *x = pool_json(w, p);
            cJSON_AddItemToObject(x, "reasons", reasons_json(&w->why));
            cJSON_AddItemToArray(pools, x);
        } else {
            printf("pool %s: desired %lld (min %lld, max %lld), to spawn %lld\n", pl->pools[p].name,
                   pl->pools[p].desired, pl->pools[p].min_active, pl->pools[p].max_active,
                   pl->pools[p].to_spawn);
            print_reasons(&w->why, "  ");
        }
    }
    if (json) {
        cJSON *u = cJSON_AddObjectToObject(o, "unserved");
        cJSON_AddNumberToObject(u, "queued", (double)pl->unserved_queued);
        cJSON *names = cJSON_AddArrayToObject(u, "run_types");
        for (size_t k = 0; names && k < pl->n_unserved && k < PLAN_UNSERVED_MAX; k++)
            cJSON_AddItemToArray(names, cJSON_CreateString(pl->unserved[k]));
        print_json(o);
    }
}

Status cmd_explain(int argc, char **argv)
{
    const char *task_id = NULL;
    bool fleet = false, json = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "--fleet") == 0) {
            fleet = true;
        } else if (argv[i][0] == '-' || task_id) {
            usage("unexpected argument", argv[i]);
            return STATUS_ERR_USAGE;
        } else {
            task_id = argv[i];
        }
    }
    if (fleet == (task_id != NULL)) {
        usage("give one TASK_ID or --fleet", NULL);
        return STATUS_ERR_USAGE;
    }
    if (task_id && !taskfile_is_uuid(task_id)) {
        fprintf(stderr,
                "orchestrator explain: '%s' is not a task id: a task id is a UUID such as "
                "0b7e6a0c-2f4e-4d1a-9c55-3e1f2a9d8b10 (as `orchestrator submit` prints it)\n",
                task_id);
        return STATUS_ERR_USAGE;
    }
    Config *cfg = NULL;
    Status st = commands_load_config(CONFIG_NEED_DB, &cfg);
    if (st != STATUS_OK)
        return st;
    PGconn *conn = NULL;
    World *w = calloc(1, sizeof *w);
    st = w ? db_connect(cfg, &conn) : STATUS_ERR_NOMEM;
    if (st == STATUS_OK)
        st = load(conn, cfg, task_id, w);
    if (st == STATUS_ERR_NOT_FOUND) {
        fprintf(stderr,
                "orchestrator explain: no task has the id %s (check the id; `orchestrator logs "
                "--task ID` shows what the system logged about it)\n",
                task_id);
        st = STATUS_ERR_USAGE;
    } else if (st == STATUS_OK && fleet) {
        explain_the_fleet(w, json);
    } else if (st == STATUS_OK) {
        explain_one_task(w, json);
    }
    if (conn)
        PQfinish(conn);
    free(w);
    free(cfg);
    return st;
}
