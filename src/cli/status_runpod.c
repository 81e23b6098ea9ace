/* status_runpod.c -- the RunPod part of `orchestrator status` (see status_runpod.h).
 *
 * CLI module: prints what the snapshot holds; makes no RunPod call and writes nothing.
 */
#include "status_runpod.h"

#include <stdio.h>
#include <string.h>

#include "catalog_cycle.h"
#include "ratelimit.h"

cJSON *status_runpod_json(const Snapshot *snap, const Config *cfg)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "gpu_choice", cfg->runpod_gpu_choice);
    cJSON_AddNumberToObject(o, "catalog_ttl_sec", cfg->runpod_catalog_ttl_sec);
    cJSON_AddNumberToObject(o, "rate_limit_reserve", cfg->runpod_rate_limit_reserve);
    cJSON_AddItemToObject(o, "rate_limit", catalog_cycle_quota_json(&snap->quota));
    cJSON_AddItemToObject(o, "catalog", catalog_cycle_catalog_json(snap));
    return o;
}

void status_runpod_text(const Snapshot *snap, const Config *cfg)
{
    const RateQuota *q = &snap->quota;
    long long left = ratelimit_remaining(q);
    if (q->known || left >= 0) {
        double reset = ratelimit_reset_in(q);
        printf("ratelimit %lld RunPod calls left now (creates keep %d back), seen %.0fs ago", left,
               cfg->runpod_rate_limit_reserve, q->age_sec);
        if (reset >= 0)
            printf(", resets in %.0fs", reset);
        printf("\n");
        for (size_t i = 0; q->known && i < q->n && i < RATE_WINDOWS_MAX; i++) {
            const RateWindow *w = &q->w[i];
            bool reset_passed = w->reset_sec >= 0 && q->age_sec >= (double)w->reset_sec;
            printf("ratelimit   %-.23s: %lld of %lld left", w->name,
                   reset_passed ? w->quota : w->remaining, w->quota);
            if (w->reset_sec >= 0 && !reset_passed)
                printf(", resets in %.0fs", (double)w->reset_sec - q->age_sec);
            printf("\n");
        }
    } else {
        printf("ratelimit %s\n", q->malformed ? "unknown: RunPod's last RateLimit header was "
                                                "unreadable"
                                              : "unknown (no RateLimit header seen yet)");
    }
    for (size_t i = 0; i < snap->n_catalog_scopes; i++) {
        const SnapCatalogScope *s = &snap->catalog_scopes[i];
        size_t in = 0, out = 0, all = 0;
        for (size_t k = 0; k < snap->n_catalog; k++) {
            if (strcmp(snap->catalog[k].scope, s->scope) != 0)
                continue;
            all++;
            in += snap->catalog[k].stock == GPU_STOCK_IN;
            out += snap->catalog[k].stock == GPU_STOCK_OUT;
        }
        printf("catalog  %-.40s: ", s->scope);
        if (s->age_sec >= 0)
            printf("read %llds ago, ", s->age_sec);
        else
            printf("never read, ");
        printf("%zu of our %zu GPU types in stock, %zu out", in, all, out);
        if (s->last_failed)
            printf("; last read FAILED (%.20s)", s->error);
        printf("\n");
    }
    if (snap->n_catalog_scopes == 0)
        printf("catalog  not read yet (choice %s, read when a cycle spawns)\n",
               cfg->runpod_gpu_choice);
}
