#!/usr/bin/env bash
# prometheus_test.sh: the metrics are real Prometheus metrics (issue 6).
#
#   a) `single` with METRICS_FILE writes a textfile that `promtool check metrics` accepts, and the
#      next run continues its counters; no temporary file is left behind.
#   b) `continuous` with METRICS_PORT serves /metrics (promtool-clean), /healthz, /readyz,
#      /status, /config (no secret anywhere), 404 and 405; with an unreachable database
#      /healthz stays 200 and /readyz answers 503.
#   c) a real `prometheus` server (127.0.0.1, temp config and storage) scrapes `continuous`
#      every second; the target turns up and `gpu_orchestrator_build_info` queries as 1.
#
# Needs ORCH_BINARY, promtool and prometheus (Debian package `prometheus`, in
# scripts/install-deps.sh). Uses PGHOST/ORCH_TEST_TEMPLATE_DB from scripts/test.sh when set,
# otherwise starts its own server with scripts/pg-local.sh. Every wait is bounded and every
# process it starts is stopped on exit. Prints "N passed, M failed".
set -uo pipefail
bin=${ORCH_BINARY:?ORCH_BINARY is not set}
root=${ORCH_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
py=/usr/bin/python3
pass=0
fail=0
tmp=$(mktemp -d /tmp/orch-prom.XXXXXX)
chmod 755 "$tmp"
pids=()
own_pg=0
db=""

check() { # name, condition result (0 = ok)
    if [ "$2" -eq 0 ]; then pass=$((pass + 1)); echo "ok - $1"; else fail=$((fail + 1)); echo "not ok - $1"; fi
}

stop_pid() { # pid: TERM, wait up to 5 s, then KILL
    local p=$1 n=0
    kill -TERM "$p" 2>/dev/null || return 0
    while kill -0 "$p" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
    kill -KILL "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
}

cleanup() {
    for p in "${pids[@]}"; do stop_pid "$p"; done
    if [ -n "$db" ]; then dropdb --force "$db" >/dev/null 2>&1 || true; fi
    if [ $own_pg -eq 1 ]; then "$root/scripts/pg-local.sh" stop "$tmp/pg" >/dev/null 2>&1 || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
    "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# HTTP status code of a request (000 when nothing answers); body into $tmp/body.
http_code() { # [curl args...] url
    curl -s -m 5 -o "$tmp/body" -w '%{http_code}' "$@" 2>/dev/null || true
}

code_is() { # code url: does url answer with this status code?
    [ "$(http_code "$2")" = "$1" ]
}

wait_for() { # seconds, command...: retries every 0.2 s until the command succeeds
    local limit=$(($1 * 5)) n=0
    shift
    until "$@"; do
        n=$((n + 1))
        [ $n -ge $limit ] && return 1
        sleep 0.2
    done
}

for tool in promtool prometheus curl; do
    if ! command -v $tool >/dev/null 2>&1; then
        echo "not ok - $tool is not installed: run scripts/install-deps.sh (package prometheus)"
        echo "0 passed, 1 failed"
        exit 1
    fi
done

# The database: the shared test server (scripts/test.sh) or a private one.
if [ -z "${PGHOST:-}" ]; then
    eval "$("$root/scripts/pg-local.sh" start "$tmp/pg")" || { echo "not ok - could not start PostgreSQL"; echo "0 passed, 1 failed"; exit 1; }
    export PGHOST PGPORT PGUSER
    own_pg=1
fi
db="prom_$$"
if [ $own_pg -eq 1 ]; then
    createdb "$db" &&
        DATABASE_URL="postgresql:///$db?host=$PGHOST&port=${PGPORT:-5432}&user=${PGUSER:-postgres}" \
            "$bin" migrate >/dev/null 2>"$tmp/migrate.err"
else
    createdb -T "${ORCH_TEST_TEMPLATE_DB:-orch_tpl}" "$db"
fi
check "a migrated database $db" $?
# A password in the URL and a worker secret: neither may appear on any endpoint.
url="postgresql://postgres:pw-PROM-SECRET@/$db?host=$PGHOST&port=${PGPORT:-5432}"
base_env=(env DATABASE_URL="$url" SAFE_MODE=true WORKER_ENV_HF_TOKEN=hf-PROM-SECRET
          RUNPOD_API_BASE_URL=http://127.0.0.1:9 LOG_LEVEL=WARNING)

# ---------------------------------------------------------------------------------------------
# a) single + METRICS_FILE
prom="$tmp/textfile/orchestrator.prom"
mkdir -p "$tmp/textfile"
"${base_env[@]}" METRICS_FILE="$prom" "$bin" single >"$tmp/single.out" 2>"$tmp/single.err"
rc=$?
check "single with METRICS_FILE exits 0" $rc
check "the textfile exists" $([ -s "$prom" ]; echo $?)
promtool check metrics <"$prom" >"$tmp/promtool.out" 2>&1
rc=$?
echo "promtool check metrics (textfile):"; sed 's/^/  | /' "$tmp/promtool.out"
check "promtool check metrics accepts the textfile" $rc
check "  ...with no lint findings" $([ ! -s "$tmp/promtool.out" ]; echo $?)
check "the textfile has build_info, workers of pool default and cycles_total{result=\"ok\"} 1" \
    $(grep -q '^gpu_orchestrator_build_info{version="[^"]*"} 1$' "$prom" &&
      grep -q '^gpu_orchestrator_workers{state="idle",pool="default"} ' "$prom" &&
      grep -q '^gpu_orchestrator_cycles_total{result="ok"} 1$' "$prom"; echo $?)
"${base_env[@]}" METRICS_FILE="$prom" "$bin" single >/dev/null 2>>"$tmp/single.err"
check "a second run continues the counters (cycles_total{result=\"ok\"} 2)" \
    $(grep -q '^gpu_orchestrator_cycles_total{result="ok"} 2$' "$prom"; echo $?)
check "no temporary file is left next to the textfile" \
    $([ "$(ls "$tmp/textfile" | wc -l)" -eq 1 ]; echo $?)
check "the textfile holds no secret and no worker id" \
    $(! grep -q 'PROM-SECRET\|gpu-[0-9]' "$prom"; echo $?)
# Pools (issue 14): two pools, a worker of a pool since removed from POOLS, and tasks of a run
# type no pool serves. Every pool-labelled series passes promtool.
psql -qAt -d "$db" -c "INSERT INTO workers (id, status, pool) VALUES ('gpu-prom-old', 'spawning', 'old');
    UPDATE workers SET status = 'active', last_heartbeat = now() WHERE id = 'gpu-prom-old';
    INSERT INTO tasks (task_type, run_type) VALUES ('a', 'audio'), ('b', 'audio'), ('v', 'video');" >/dev/null
check "a worker of a removed pool and tasks of run types audio (unserved) and video" $?
pprom="$tmp/textfile/pools.prom"
"${base_env[@]}" METRICS_FILE="$pprom" POOLS=video,image POOL_VIDEO_MIN_ACTIVE_GPUS=0 \
    POOL_IMAGE_MIN_ACTIVE_GPUS=0 "$bin" single >/dev/null 2>"$tmp/pools.err"
check "single with POOLS=video,image exits 0" $?
promtool check metrics <"$pprom" >"$tmp/promtool-pools.out" 2>&1
rc=$?
sed 's/^/  | /' "$tmp/promtool-pools.out"
check "promtool check metrics accepts the pool-labelled textfile, with no lint findings" \
    $([ $rc -eq 0 ] && [ ! -s "$tmp/promtool-pools.out" ]; echo $?)
grep -E 'pool=|tasks_unserved' "$pprom" | grep -v '_total{' | sed 's/^/  pools: /' | head -n 40
check "the fleet, queue, breaker and limit series carry the pool label" \
    $(grep -q '^gpu_orchestrator_workers{state="active",pool="video"} 0$' "$pprom" &&
      grep -q '^gpu_orchestrator_workers{state="active",pool="(none)"} 1$' "$pprom" &&
      grep -q '^gpu_orchestrator_tasks{state="queued",pool="video"} 1$' "$pprom" &&
      grep -q '^gpu_orchestrator_workers_desired{pool="image"} 0$' "$pprom" &&
      grep -q '^gpu_orchestrator_breaker_open{pool="image"} 0$' "$pprom" &&
      grep -q '^gpu_orchestrator_spawn_limited{reason="circuit_breaker",pool="video"} 0$' "$pprom" &&
      grep -q '^gpu_orchestrator_pods_created_total{reason="backlog",pool="image"} 0$' "$pprom" &&
      ! grep -q 'pool="default"' "$pprom"; echo $?)
check "tasks of a run type no pool serves: tasks_unserved{run_type=\"audio\"} 2" \
    $(grep -q '^gpu_orchestrator_tasks_unserved{run_type="audio"} 2$' "$pprom"; echo $?)
psql -qAt -d "$db" -c "DELETE FROM workers WHERE id = 'gpu-prom-old';
    DELETE FROM tasks WHERE run_type IN ('audio', 'video');" >/dev/null
rm -f "$pprom"
"${base_env[@]}" METRICS_FILE="$tmp/no/such/dir/x.prom" "$bin" single >/dev/null 2>"$tmp/bad.err"
rc=$?
check "an unwritable METRICS_FILE is logged (metrics.write_failed), the cycle still exits 0" \
    $([ $rc -eq 0 ] && grep -q '"event":"metrics.write_failed"' "$tmp/bad.err"; echo $?)

# ---------------------------------------------------------------------------------------------
# b) continuous + METRICS_PORT
mport=$(free_port)
"${base_env[@]}" METRICS_PORT="$mport" METRICS_BIND_ADDRESS=127.0.0.1 \
    "$bin" continuous --interval 1 >"$tmp/cont.out" 2>"$tmp/cont.err" &
cont=$!
pids+=("$cont")
m="http://127.0.0.1:$mport"
wait_for 15 code_is 200 "$m/healthz"
check "/healthz answers 200" $?
wait_for 15 code_is 200 "$m/readyz"
check "/readyz answers 200 after a successful cycle" $?
cat "$tmp/body"
code=$(http_code -D "$tmp/headers" "$m/metrics")
cp "$tmp/body" "$tmp/scrape.txt"
check "/metrics answers 200" $([ "$code" = 200 ]; echo $?)
check "  ...as text/plain; version=0.0.4" $(grep -qi '^content-type: text/plain; version=0.0.4' "$tmp/headers"; echo $?)
promtool check metrics <"$tmp/scrape.txt" >"$tmp/promtool2.out" 2>&1
rc=$?
echo "promtool check metrics (/metrics):"; sed 's/^/  | /' "$tmp/promtool2.out"
check "promtool check metrics accepts /metrics" $rc
check "  ...with no lint findings" $([ ! -s "$tmp/promtool2.out" ]; echo $?)
check "/metrics shows gauges of the last cycle" \
    $(grep -q '^gpu_orchestrator_workers_desired{pool="default"} ' "$tmp/scrape.txt" &&
      grep -q '^gpu_orchestrator_last_success_timestamp_seconds ' "$tmp/scrape.txt"; echo $?)
code=$(http_code "$m/status")
check "/status answers 200 with the last cycle summary" \
    $([ "$code" = 200 ] && "$py" -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["command"]=="continuous" and d["result"]=="ok" else 1)' "$tmp/body"; echo $?)
code=$(http_code "$m/config")
check "/config answers 200 with JSON" \
    $([ "$code" = 200 ] && "$py" -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/body"; echo $?)
check "/config shows no secret (password, WORKER_ENV_*)" $(! grep -q 'PROM-SECRET' "$tmp/body"; echo $?)
check "/config shows METRICS_BIND_ADDRESS" $(grep -q '"METRICS_BIND_ADDRESS":"127.0.0.1"' "$tmp/body"; echo $?)
secret_seen=0
for ep in metrics status healthz readyz; do
    http_code "$m/$ep" >/dev/null
    grep -q 'PROM-SECRET' "$tmp/body" && secret_seen=1
done
check "no endpoint shows a secret" $([ $secret_seen -eq 0 ]; echo $?)
check "an unknown path answers 404" $([ "$(http_code "$m/nope")" = 404 ]; echo $?)
check "POST answers 405" $([ "$(http_code -X POST "$m/metrics")" = 405 ]; echo $?)
check "the endpoint listens on 127.0.0.1 only" \
    $(! ss -ltnH 2>/dev/null | awk '{print $4}' | grep -q "^0.0.0.0:$mport$\|^\*:$mport$\|^\[::\]:$mport$"; echo $?)

# ---------------------------------------------------------------------------------------------
# c) a real Prometheus scraping continuous
pport=$(free_port)
cat >"$tmp/prometheus.yml" <<YAML
global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: orchestrator
    scrape_interval: 1s
    scrape_timeout: 1s
    static_configs:
      - targets: ['127.0.0.1:$mport']
YAML
promtool check config "$tmp/prometheus.yml" >/dev/null 2>&1
check "promtool check config accepts the scrape config" $?
prometheus --config.file="$tmp/prometheus.yml" --storage.tsdb.path="$tmp/tsdb" \
    --web.listen-address="127.0.0.1:$pport" --log.level=warn >"$tmp/prometheus.log" 2>&1 &
pids+=("$!")
p="http://127.0.0.1:$pport"
target_up() {
    curl -s -m 2 "$p/api/v1/targets" 2>/dev/null | "$py" -c '
import json, sys
d = json.load(sys.stdin)
ts = d["data"]["activeTargets"]
sys.exit(0 if ts and all(t["health"] == "up" for t in ts) else 1)' 2>/dev/null
}
build_info_is_1() {
    curl -s -m 2 "$p/api/v1/query" --data-urlencode 'query=gpu_orchestrator_build_info' \
        2>/dev/null >"$tmp/query.json"
    "$py" -c '
import json, sys
d = json.load(open(sys.argv[1]))
r = d["data"]["result"]
sys.exit(0 if d["status"] == "success" and r and r[0]["value"][1] == "1" else 1)' "$tmp/query.json" 2>/dev/null
}
wait_for 45 target_up
check "Prometheus reports the orchestrator target up" $?
wait_for 30 build_info_is_1
check "Prometheus query gpu_orchestrator_build_info returns 1" $?
echo "  query result: $(cat "$tmp/query.json" 2>/dev/null)"
q=$(curl -s -m 2 "$p/api/v1/query" --data-urlencode 'query=gpu_orchestrator_workers_desired{pool="default"}' 2>/dev/null)
echo "  gpu_orchestrator_workers_desired{pool=\"default\"}: $q"
check "Prometheus stores the pool label (workers_desired{pool=\"default\"} is one series)" \
    $(echo "$q" | "$py" -c 'import json,sys; r=json.load(sys.stdin)["data"]["result"]; sys.exit(0 if len(r) == 1 and r[0]["metric"]["pool"] == "default" else 1)' 2>/dev/null; echo $?)
q=$(curl -s -m 2 "$p/api/v1/query" --data-urlencode 'query=sum(gpu_orchestrator_cycles_total)' 2>/dev/null)
echo "  sum(gpu_orchestrator_cycles_total): $q"
check "Prometheus sees cycles counted" \
    $(echo "$q" | "$py" -c 'import json,sys; d=json.load(sys.stdin); sys.exit(0 if float(d["data"]["result"][0]["value"][1]) >= 1 else 1)' 2>/dev/null; echo $?)

kill -TERM "$cont"
n=0
while kill -0 "$cont" 2>/dev/null && [ $n -lt 50 ]; do sleep 0.1; n=$((n + 1)); done
wait "$cont"
rc=$?
check "continuous with the endpoint exits 0 within 5 s of SIGTERM" $([ $rc -eq 0 ] && [ $n -lt 50 ]; echo $?)
check "  ...and the port is closed" $(! code_is 200 "$m/healthz"; echo $?)

# ---------------------------------------------------------------------------------------------
# An unreachable database: alive, not ready.
bport=$(free_port)
env DATABASE_URL='postgresql:///nodb?host=/nonexistent' SAFE_MODE=true METRICS_PORT="$bport" \
    METRICS_BIND_ADDRESS=127.0.0.1 LOG_LEVEL=ERROR "$bin" continuous --interval 1 \
    >/dev/null 2>"$tmp/down.err" &
down=$!
pids+=("$down")
b="http://127.0.0.1:$bport"
wait_for 15 code_is 200 "$b/healthz"
check "database down: /healthz still 200" $?
sleep 1.5
code=$(http_code "$b/readyz")
check "database down: /readyz 503 naming the database" \
    $([ "$code" = 503 ] && grep -q 'database' "$tmp/body"; echo $?)
cat "$tmp/body"
stop_pid "$down"

# A bad bind address is a configuration error (exit 3).
env DATABASE_URL="$url" SAFE_MODE=true METRICS_PORT="$bport" METRICS_BIND_ADDRESS=localhost \
    timeout 10 "$bin" continuous --interval 1 >/dev/null 2>"$tmp/bind.err"
rc=$?
check "METRICS_BIND_ADDRESS=localhost (not an IP) exits 3 naming it" \
    $([ $rc -eq 3 ] && grep -q 'METRICS_BIND_ADDRESS' "$tmp/bind.err"; echo $?)

if [ $fail -ne 0 ]; then
    echo "--- continuous stderr (tail)"; tail -n 20 "$tmp/cont.err" 2>/dev/null
    echo "--- prometheus log (tail)"; tail -n 20 "$tmp/prometheus.log" 2>/dev/null
fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
