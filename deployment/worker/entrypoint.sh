#!/usr/bin/env bash
# entrypoint.sh -- starts an unmodified Headless-Wan2GP worker against `orchestrator gateway`
# (structure_docs/workers.md). The orchestrator gives every pod:
#   WORKER_ID        the worker id (= pod name)
#   WORKER_API_URL   the gateway's public URL (GATEWAY_PUBLIC_URL)
#   WORKER_TOKEN     this pod's own token (a JWT whose sub is WORKER_ID)
# and this wrapper maps them onto the worker's command line:
#   python worker.py --supabase-url URL --supabase-access-token TOKEN
#                    --supabase-anon-key TOKEN --worker WORKER_ID [extra args]
# --supabase-url and --supabase-anon-key are ALWAYS passed: their defaults point at another
# project's production backend. SUPABASE_SERVICE_ROLE_KEY / SUPABASE_SERVICE_KEY are unset (with
# them the worker also calls a hard-coded production host), and so are the per-endpoint
# SUPABASE_EDGE_*_URL overrides, so every call goes to the gateway. The heartbeat then sends the
# token as its apikey, which the gateway accepts.
#
# Environment of the wrapper itself:
#   HEADLESS_WAN2GP_DIR   the worker's checkout (default /workspace/Headless-Wan2GP)
#   HEADLESS_PYTHON       its interpreter (default python)
#   WORKER_POLL_INTERVAL  --poll-interval in seconds (default: the worker's own, 10)
# Arguments given to the wrapper are appended (e.g. --main-output-dir /workspace/outputs).
set -euo pipefail

fail() { echo "entrypoint: $*" >&2; exit 64; }
[ -n "${WORKER_ID:-}" ] || fail "WORKER_ID is not set (the orchestrator sets it for every pod)"
[ -n "${WORKER_API_URL:-}" ] || fail "WORKER_API_URL is not set: set GATEWAY_PUBLIC_URL and GATEWAY_JWT_SECRET for the orchestrator"
[ -n "${WORKER_TOKEN:-}" ] || fail "WORKER_TOKEN is not set: set GATEWAY_PUBLIC_URL and GATEWAY_JWT_SECRET for the orchestrator"
case $WORKER_API_URL in
http://* | https://*) ;;
*) fail "WORKER_API_URL must be an http(s) URL" ;;
esac
url=${WORKER_API_URL%/}

# Nothing may send the worker elsewhere: no service-role keys, no per-endpoint overrides.
unset SUPABASE_SERVICE_ROLE_KEY SUPABASE_SERVICE_KEY
unset SUPABASE_EDGE_CLAIM_TASK_URL SUPABASE_EDGE_TASK_COUNTS_URL SUPABASE_EDGE_COMPLETE_TASK_URL
unset SUPABASE_EDGE_UPDATE_TASK_URL SUPABASE_EDGE_CREATE_TASK_URL
# Helpers that read the environment instead of the flags see the same values.
export SUPABASE_URL="$url" SUPABASE_ANON_KEY="$WORKER_TOKEN"

args=(worker.py --supabase-url "$url" --supabase-access-token "$WORKER_TOKEN"
      --supabase-anon-key "$WORKER_TOKEN" --worker "$WORKER_ID")
[ -n "${WORKER_POLL_INTERVAL:-}" ] && args+=(--poll-interval "$WORKER_POLL_INTERVAL")

cd "${HEADLESS_WAN2GP_DIR:-/workspace/Headless-Wan2GP}" || fail "no Headless-Wan2GP checkout at ${HEADLESS_WAN2GP_DIR:-/workspace/Headless-Wan2GP}"
exec "${HEADLESS_PYTHON:-python}" "${args[@]}" "$@"
