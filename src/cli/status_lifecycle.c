/* status_lifecycle.c -- what `orchestrator status` shows of issue 16: the spend (estimate,
 * bill, what the cap counts) and the last failure with its pod's log tail.
 *
 * Shell module (cli face): one extra read (db_last_failure), no write.
 */
#include "status_lifecycle.h"

#include <stdio.h>
#include <string.h>

#include "db_lifecycle.h"
#include "summary.h"

static void age_text(long long sec, char *out, size_t cap)
{
    if (sec < 0)
        snprintf(out, cap, "never");
    else if (sec < 120)
        snprintf(out, cap, "%llds ago", sec);
    else if (sec < 7200)
        snprintf(out, cap, "%lldm ago", sec / 60);
    else
        snprintf(out, cap, "%lldh ago", sec / 3600);
}

static const char *str_of(const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : "";
}

Status status_lifecycle_json(PGconn *conn, const Snapshot *snap, const Plan *plan, cJSON *root)
{
    cJSON_AddItemToObject(root, "spend", summary_spend(snap, plan));
    cJSON *f = cJSON_GetObjectItemCaseSensitive(root, "fleet");
    if (f)
        cJSON_AddNumberToObject(f, "stopped", (double)plan->stopped);
    cJSON *last = NULL;
    Status st = db_last_failure(conn, &last);
    if (st != STATUS_OK)
        return st;
    cJSON_AddItemToObject(root, "last_failure", last ? last : cJSON_CreateNull());
    return STATUS_OK;
}

Status status_lifecycle_text(PGconn *conn, const Snapshot *snap, const Plan *plan,
                             const Config *cfg)
{
    char when[32];
    age_text(snap->billing_read_age_sec, when, sizeof when);
    char billed[128] = "no recent bill";
    if (snap->billing_known)
        snprintf(billed, sizeof billed, "billed $%.2f/h (last full hour, read %s)",
                 snap->billing_total_usd_per_hr, when);
    char cap[32] = "";
    if (cfg->max_hourly_spend_usd > 0)
        snprintf(cap, sizeof cap, " of $%.2f", cfg->max_hourly_spend_usd);
    printf("spend    est $%.2f/h, %s; cap counts $%.2f/h%s\n", plan->spend_estimate_per_hr, billed,
           plan->fleet_cost_per_hr, cap);
    if (plan->stopped > 0 || cfg->warm_stopped_pods > 0)
        printf("warm     %lld pod%s stopped (disk kept, started before any create)\n",
               plan->stopped, plan->stopped == 1 ? "" : "s");
    cJSON *last = NULL;
    Status st = db_last_failure(conn, &last);
    if (st != STATUS_OK || !last)
        return st;
    const cJSON *age = cJSON_GetObjectItemCaseSensitive(last, "age_sec");
    age_text(cJSON_IsNumber(age) ? (long long)age->valuedouble : -1, when, sizeof when);
    const char *outcome = str_of(last, "log_outcome");
    /* At most 9 + 32 + 1 + 8 + 2 + 24 + 11 + 7 = 94 columns; `logs --worker ID` has the rest. */
    printf("failed   %.32s %s: %.24s; log tail %s\n", str_of(last, "worker_id"), when,
           str_of(last, "reason"), outcome[0] ? outcome : "none");
    cJSON_Delete(last);
    return STATUS_OK;
}
