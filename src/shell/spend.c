/* spend.c -- the billing read of a cycle (see spend.h).
 *
 * Shell module: RunPod (runpod_lifecycle.h), the database (db_lifecycle.h) and the pure parser
 * (billing.h).
 */
#include "spend.h"

#include "catalog_cycle.h"
#include "ratelimit.h"

#include <stdio.h>
#include <stdlib.h>

#include "billing.h"
#include "db_lifecycle.h"
#include "log.h"
#include "runpod_lifecycle.h"

/* Buckets asked for: the current (partial) hour and the one before, the last complete hour. */
#define BILLING_LAST_N 2

static void failed(App *app, const char *what, const char *detail)
{
    char raw[600], clean[600];
    snprintf(raw, sizeof raw, "%s: %.500s", what, detail);
    log_scrub(raw, clean, sizeof clean);
    log_warn("billing.read_failed",
             "error=%s msg=\"the spend cap keeps the last good billing read while its hour is "
             "recent, else its own estimate\"",
             clean);
    db_billing_failed(app->conn, clean);
}

void spend_refresh(App *app, Snapshot *snap)
{
    const Config *cfg = app->cfg;
    if (!app->rp || app->dry_run || !app->conn)
        return;
    if (snap->billing_attempted && snap->billing_attempt_age_sec < cfg->reconcile_interval_sec)
        return;
    /* The bill can wait; the quota's reserve is for lists and terminations. A read at a spent
     * quota would be answered 429 and wait out its Retry-After inside the cycle. */
    catalog_cycle_overlay_quota(app, snap);
    long long left = ratelimit_remaining(&snap->quota);
    if (left >= 0 && left <= cfg->runpod_rate_limit_reserve) {
        log_info("billing.deferred",
                 "remaining=%lld reserve=%d msg=\"RunPod's rate-limit quota is at its reserve: "
                 "the billing read waits for a later cycle; the spend cap uses the last read\"",
                 left, cfg->runpod_rate_limit_reserve);
        return;
    }
    char *body = NULL;
    size_t len = 0;
    RunpodCallInfo info;
    if (runpod_billing_pods(app->rp, BILLING_LAST_N, &body, &len, &info) != STATUS_OK) {
        char detail[600];
        snprintf(detail, sizeof detail, "%s (HTTP %d) %s", runpod_error_str(info.error),
                 info.http_status, info.detail);
        failed(app, "GET /v2/billing/pods failed", detail);
        return;
    }
    BillingHour *h = malloc(sizeof *h);
    char err[256] = "";
    Status st = h ? billing_parse(body, len, (long long)snap->now_epoch, h, err, sizeof err)
                  : STATUS_ERR_NOMEM;
    free(body);
    if (st != STATUS_OK) {
        failed(app, "unreadable billing answer", err[0] ? err : status_str(st));
        free(h);
        return;
    }
    if (h->malformed > 0)
        log_warn("billing.records_malformed",
                 "records=%zu malformed=%zu msg=\"billing records without a usable podId, "
                 "time or amount were skipped\"",
                 h->records, h->malformed);
    if (db_store_billing(app->conn, h) == STATUS_OK) {
        log_info("billing.read",
                 "complete_hour=%s bucket_start=%lld total_usd=%.4f pods=%zu records=%zu "
                 "malformed=%zu truncated=%s",
                 h->have_bucket ? "true" : "false", h->bucket_start, h->total_usd, h->n_pods,
                 h->records, h->malformed, h->truncated ? "true" : "false");
        if (db_load_lifecycle(app->conn, snap) != STATUS_OK)
            log_warn("billing.reload_failed", "msg=\"this cycle plans with the previous read\"");
    }
    free(h);
}
