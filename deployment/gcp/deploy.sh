#!/usr/bin/env bash
# deploy.sh -- deploys the orchestrator on Google Cloud: Cloud Run jobs (migrate, and the cycle)
# plus a Cloud Scheduler job that starts the cycle every minute. Idempotent: re-run it for a new
# release (IMAGE) and it updates what exists.
#
#   PROJECT_ID=my-project REGION=europe-west4 \
#   IMAGE=europe-west4-docker.pkg.dev/my-project/orchestrator/orchestrator:0.1.0 \
#     bash deployment/gcp/deploy.sh
#
# Prerequisites (once; see structure_docs/deployment.md): the image pushed to Artifact Registry;
# secrets orchestrator-database-url, orchestrator-runpod-api-key and
# orchestrator-worker-database-url in Secret Manager (and, for the worker gateway,
# orchestrator-gateway-database-url, orchestrator-gateway-jwt-secret and the Cloud Storage HMAC
# key pair orchestrator-gcs-hmac-access-id / orchestrator-gcs-hmac-secret); a service account
# orchestrator-runner@PROJECT_ID (roles/secretmanager.secretAccessor, roles/cloudsql.client) that
# runs the jobs, and one orchestrator-scheduler@PROJECT_ID (roles/run.invoker on the job) that
# Cloud Scheduler uses to start executions.
set -euo pipefail

: "${PROJECT_ID:?set PROJECT_ID}"
: "${REGION:?set REGION}"
: "${IMAGE:?set IMAGE (the pushed orchestrator image)}"
SQL_INSTANCE=${SQL_INSTANCE:-orchestrator-db}
SCHEDULER_SA=${SCHEDULER_SA:-orchestrator-scheduler@${PROJECT_ID}.iam.gserviceaccount.com}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

render() { # template -> rendered copy with the placeholders filled in
    sed -e "s|REGION-docker.pkg.dev/PROJECT_ID/orchestrator/orchestrator:0.1.0|${IMAGE}|" \
        -e "s|PROJECT_ID:REGION:orchestrator-db|${PROJECT_ID}:${REGION}:${SQL_INSTANCE}|" \
        -e "s|PROJECT_ID|${PROJECT_ID}|g" -e "s|REGION|${REGION}|g" "$1" >"$2"
}
render "$here/migrate-job.yaml" "$tmp/migrate-job.yaml"
render "$here/cloud-run-job.yaml" "$tmp/cloud-run-job.yaml"
render "$here/gateway-service.yaml" "$tmp/gateway-service.yaml"

# 1. Migrations first (idempotent, each step under a transaction-level advisory lock).
gcloud run jobs replace "$tmp/migrate-job.yaml" --project "$PROJECT_ID" --region "$REGION"
gcloud run jobs execute orchestrator-migrate --project "$PROJECT_ID" --region "$REGION" --wait

# 2. The cycle job.
gcloud run jobs replace "$tmp/cloud-run-job.yaml" --project "$PROJECT_ID" --region "$REGION"

# 2b. The worker gateway (DEPLOY_GATEWAY=0 skips it): a service the workers call with their own
#     tokens, so Cloud Run lets anyone reach it and the gateway authenticates.
if [ "${DEPLOY_GATEWAY:-1}" = 1 ]; then
    gcloud run services replace "$tmp/gateway-service.yaml" --project "$PROJECT_ID" --region "$REGION"
    gcloud run services add-iam-policy-binding orchestrator-gateway --project "$PROJECT_ID" \
        --region "$REGION" --member allUsers --role roles/run.invoker
fi

# 3. Cloud Scheduler: POST .../jobs/orchestrator:run every minute, no retries (the next minute
#    is the retry), with an OAuth token of the scheduler service account.
run_uri="https://${REGION}-run.googleapis.com/apis/run.googleapis.com/v1/namespaces/${PROJECT_ID}/jobs/orchestrator:run"
sched_args=(
    --project "$PROJECT_ID" --location "$REGION"
    --schedule "* * * * *" --time-zone "Etc/UTC"
    --uri "$run_uri" --http-method POST
    --oauth-service-account-email "$SCHEDULER_SA"
    --attempt-deadline 30s --max-retry-attempts 0
)
if gcloud scheduler jobs describe orchestrator-every-minute --project "$PROJECT_ID" \
        --location "$REGION" >/dev/null 2>&1; then
    gcloud scheduler jobs update http orchestrator-every-minute "${sched_args[@]}"
else
    gcloud scheduler jobs create http orchestrator-every-minute "${sched_args[@]}"
fi
echo "deploy: done; logs: gcloud logging read 'resource.type=\"cloud_run_job\" AND resource.labels.job_name=\"orchestrator\"' --project $PROJECT_ID --limit 50"
