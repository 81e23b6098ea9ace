#!/usr/bin/env bash
# demo.sh: the orchestrator on its embedded default stack, for a first look.
#
# Installs what is missing, builds, starts a private PostgreSQL and the local RunPod stand-in
# (tests/fakes/fake_runpod.py) whose pods boot fake GPU workers (tests/fakes/fake_worker.py),
# applies the migrations, queues demo tasks, and runs `orchestrator continuous` with short
# intervals while printing the fleet once a second: watch it grow, work, and shrink back to
# MIN_ACTIVE_GPUS. The workers speak HTTP, as the reference worker Headless-Wan2GP does: the
# same `continuous` serves the worker gateway (GATEWAY_PORT), every pod gets its own token, and
# the outputs land in the gateway's storage. Then it replays the run through `orchestrator
# simulate --from-db` (the policy lab, structure_docs/simulation.md) and prints how the
# simulation compares. Then it stops everything it started. Takes about a minute and a half.
#
#   scripts/demo.sh [--record DIR]   DIR gets demo_trace.csv and demo.env: the recorded trace
#                                    and the settings, for `simulate --trace ... --compare`
set -euo pipefail

record=""
if [ "${1:-}" = "--record" ]; then
    record=${2:?--record needs a directory}
    mkdir -p "$record"
    record=$(cd "$record" && pwd)
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
py=/usr/bin/python3
bash "$root/scripts/install-deps.sh"
cmake -S "$root" -B "$root/build-release" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$root/build-release" -j "$(nproc 2>/dev/null || echo 2)" >/dev/null
bin="$root/build-release/orchestrator"

tmp=$(mktemp -d /tmp/orch-demo.XXXXXX)
chmod 755 "$tmp"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    "$root/scripts/pg-local.sh" stop "$tmp/pg" || true
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

echo "demo: starting a private PostgreSQL"
eval "$("$root/scripts/pg-local.sh" start "$tmp/pg")"
export PGHOST PGPORT PGUSER
createdb orch_demo
export DATABASE_URL="postgresql:///orch_demo?host=$PGHOST&port=$PGPORT&user=$PGUSER"
export PGDATABASE=orch_demo
"$bin" migrate >/dev/null 2>"$tmp/migrate.log" || { cat "$tmp/migrate.log" >&2; exit 1; }

echo "demo: starting the local RunPod stand-in"
"$py" "$root/tests/fakes/fake_runpod.py" --port 0 --port-file "$tmp/fake.port" \
    --api-key demo-key --boot-delay-sec 2 \
    --boot-cmd "$py $root/tests/fakes/fake_worker.py" >"$tmp/fake.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do [ -s "$tmp/fake.port" ] && break; sleep 0.1; done
port=$(cat "$tmp/fake.port")

export RUNPOD_API_KEY=demo-key RUNPOD_API_BASE_URL="http://127.0.0.1:$port"

# The worker gateway, served by `continuous` itself: a login role holding only
# orchestrator_worker, a port on 127.0.0.1, a fresh signing secret. The pods get WORKER_API_URL
# and a WORKER_TOKEN each (no database access at all).
psql -qAt -c "DO \$\$ BEGIN CREATE ROLE demo_gateway LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$" \
    -c "GRANT orchestrator_worker TO demo_gateway" >/dev/null
gw_port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export GATEWAY_PORT=$gw_port GATEWAY_BIND_ADDRESS=127.0.0.1
export GATEWAY_PUBLIC_URL="http://127.0.0.1:$gw_port"
export GATEWAY_JWT_SECRET=$("$py" -c 'import secrets; print(secrets.token_hex(32))')
export GATEWAY_DATABASE_URL="postgresql:///orch_demo?host=$PGHOST&port=$PGPORT&user=demo_gateway"
export STORAGE_DIR="$tmp/storage"
export WORKER_ENV_FAKE_WORKER_CLAIM_POLL_SEC=0.5
export MIN_ACTIVE_GPUS=1 MAX_ACTIVE_GPUS=5 TASKS_PER_GPU_THRESHOLD=2
export GPU_IDLE_TIMEOUT_SEC=8 WORKER_GRACE_PERIOD_SEC=4 SPAWNING_TIMEOUT_SEC=30
export TASK_STUCK_TIMEOUT_SEC=60 RECONCILE_INTERVAL_SEC=10 ORPHAN_POD_GRACE_SEC=30
export LOG_FORMAT=text

echo "demo: queueing 16 tasks of 3 seconds each (every other output uploaded by signed URL)"
psql -qAt -c "INSERT INTO tasks (task_type, params)
              SELECT 'demo_render', jsonb_build_object('duration_sec', 3, 'upload', i % 2 = 0)
              FROM generate_series(1, 16) i"

echo "demo: running 'orchestrator continuous --interval 2' with the worker gateway on $GATEWAY_PUBLIC_URL"
echo "      (its log: $tmp/orchestrator.log)"
"$bin" continuous --interval 2 >"$tmp/orchestrator.log" 2>&1 &
pids+=($!)

show() {
    psql -qAt -F ' ' -c "SELECT
        (SELECT count(*) FROM tasks WHERE status = 'Queued'),
        (SELECT count(*) FROM tasks WHERE status = 'In Progress'),
        (SELECT count(*) FROM tasks WHERE status = 'Complete'),
        (SELECT count(*) FILTER (WHERE status = 'spawning') FROM workers),
        (SELECT count(*) FILTER (WHERE status = 'active') FROM workers),
        (SELECT count(*) FILTER (WHERE status = 'terminating') FROM workers),
        (SELECT count(*) FILTER (WHERE status = 'terminated') FROM workers)"
}
printf '%5s  %-7s %-8s %-9s | %-9s %-7s %-12s %-10s\n' time queued running complete \
    spawning active terminating terminated
start=$SECONDS
peak=0
while [ $((SECONDS - start)) -lt 100 ]; do
    read -r q r c s a t d < <(show)
    printf '%4ss  %-7s %-8s %-9s | %-9s %-7s %-12s %-10s\n' $((SECONDS - start)) \
        "$q" "$r" "$c" "$s" "$a" "$t" "$d"
    [ $((s + a)) -gt $peak ] && peak=$((s + a))
    if [ "$c" -eq 16 ] && [ "$s" -eq 0 ] && [ "$t" -eq 0 ] && [ "$a" -eq "$MIN_ACTIVE_GPUS" ]; then
        echo "demo: all 16 tasks complete; the fleet grew to $peak workers and is back at MIN_ACTIVE_GPUS=$MIN_ACTIVE_GPUS"
        url=$(psql -qAt -c "SELECT output_location FROM tasks ORDER BY created_at LIMIT 1")
        files=$(find "$STORAGE_DIR" -type f | wc -l)
        echo "demo: the workers spoke HTTP only; $files output files stored by the gateway, e.g."
        echo "      $url ($(curl -s -o /dev/null -w '%{http_code}, %{size_download} bytes' "$url"))"
        # The same settings, the fake worker's poll and heartbeat, no capacity or crash faults.
        sim_env=(ORCHESTRATOR_POLL_SEC=2 SIM_WORKER_POLL_SEC=0.3 SIM_HEARTBEAT_SEC=1
            SIM_WORKER_POLL_AFTER_TASK_SEC=0.05 SIM_NO_CAPACITY=0 SIM_CRASH_AT_START=0
            SIM_DRAIN_SEC=60)
        echo "demo: replaying this run through 'orchestrator simulate --from-db':"
        env "${sim_env[@]}" "$bin" simulate --from-db --since 1h \
            ${record:+--export-trace "$record/demo_trace.csv"} | grep -E '^(calibration|recorded)'
        if [ -n "$record" ]; then
            { echo "# scripts/demo.sh's settings (recorded with its trace, demo_trace.csv)"
              for v in MIN_ACTIVE_GPUS MAX_ACTIVE_GPUS TASKS_PER_GPU_THRESHOLD GPU_IDLE_TIMEOUT_SEC \
                  WORKER_GRACE_PERIOD_SEC SPAWNING_TIMEOUT_SEC TASK_STUCK_TIMEOUT_SEC \
                  RECONCILE_INTERVAL_SEC ORPHAN_POD_GRACE_SEC; do echo "$v=${!v}"; done
              printf '%s\n' "${sim_env[@]}"
              echo "# each GPU type's cold start and price, as measured from the workers table"
              env "${sim_env[@]}" "$bin" simulate --from-db --since 1h --json | "$py" -c '
import json, sys
gpus = json.load(sys.stdin)["recorded"]["gpu_types"]
print("SIM_GPU=" + chr(39) + ";".join("%s:boot=%.2f,boot_sigma=%.2f,price=%.2f" % (
    g["name"], g["boot_median_sec"], g["boot_sigma"], g["price_per_hr"]) for g in gpus) + chr(39))'
            } >"$record/demo.env"
            echo "demo: recorded $record/demo_trace.csv and $record/demo.env"
        fi
        exit 0
    fi
    sleep 1
done
echo "demo: did not settle within 100 s; last orchestrator log lines:" >&2
tail -n 20 "$tmp/orchestrator.log" >&2
exit 1
