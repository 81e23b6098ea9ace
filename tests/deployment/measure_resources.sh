#!/usr/bin/env bash
# measure_resources.sh: the measurements behind the CPU and memory requests/limits in deployment/
# (structure_docs/deployment.md, "Resource sizing"). Not part of ctest: it is a benchmark.
#
#   bash tests/deployment/measure_resources.sh [BINARY] [TASKS]
#
# Starts a private PostgreSQL (scripts/pg-local.sh) and the fake RunPod on 127.0.0.1, migrates a
# fresh database, inserts TASKS queued tasks (default 100000) plus 900000 finished ones, and runs
# under /usr/bin/time -v:
#   1. SAFE_MODE=true orchestrator single            (read-only cycle)
#   2. orchestrator single                           (a real cycle: spawns up to MAX_ACTIVE_GPUS
#                                                     pods on the fake)
#   3. SAFE_MODE=true orchestrator continuous --interval 1, stopped with SIGTERM after CONT_SEC
#      seconds (default 10.5: ~10 cycles)
# printing peak RSS (kB), wall time and CPU time of each. Stops everything it started.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
bin=${1:-$root/build-deploy/orchestrator}
ntasks=${2:-100000}
py=/usr/bin/python3
[ -x /usr/bin/time ] || { echo "measure: /usr/bin/time missing (apt-get install time)" >&2; exit 1; }

tmp=$(mktemp -d /tmp/orch-measure.XXXXXX)
chmod 755 "$tmp"
fake_pid=
cleanup() {
    if [ -n "$fake_pid" ]; then
        kill "$fake_pid" 2>/dev/null || true
        wait "$fake_pid" 2>/dev/null || true
    fi
    "$root/scripts/pg-local.sh" stop "$tmp/pg" >/dev/null 2>&1 || true
    rm -rf "$tmp"
}
trap cleanup EXIT

eval "$("$root/scripts/pg-local.sh" start "$tmp/pg")"
export PGHOST PGPORT PGUSER PGDATABASE=x
createdb x
export DATABASE_URL="postgresql:///x?host=$PGHOST&port=$PGPORT&user=$PGUSER"
"$bin" migrate >/dev/null 2>&1
psql -qAt -v ON_ERROR_STOP=1 <<SQL
INSERT INTO tasks (task_type, params)
  SELECT 'render', jsonb_build_object('n', g) FROM generate_series(1, $ntasks) g;
INSERT INTO tasks (task_type, params, status, attempts, generation_started_at,
                   generation_processed_at, created_at)
  SELECT 'render', jsonb_build_object('n', g), 'Complete', 1, now() - interval '2 hours',
         now() - interval '1 hour', now() - interval '3 hours'
  FROM generate_series(1, 900000) g;
ANALYZE;
SQL
echo "measure: tasks: $(psql -qAt -c "SELECT status, count(*) FROM tasks GROUP BY 1 ORDER BY 1" | tr '\n' ' ')"

"$py" "$root/tests/fakes/fake_runpod.py" --port 0 --port-file "$tmp/fake.port" \
    --api-key measure-key >"$tmp/fake.log" 2>&1 &
fake_pid=$!
for _ in $(seq 100); do [ -s "$tmp/fake.port" ] && break; sleep 0.1; done
fake_port=$(cat "$tmp/fake.port")
export RUNPOD_API_KEY=measure-key RUNPOD_API_BASE_URL="http://127.0.0.1:$fake_port"
export LOG_LEVEL=INFO

report() { # name, time -v output file
    awk -v n="$1" -F': ' '
        /Maximum resident set size/ {rss=$2}
        /Elapsed \(wall clock\)/    {wall=$2}
        /User time/                 {u=$2}
        /System time/               {s=$2}
        /Exit status/               {rc=$2}
        END {printf "measure: %-34s peak_rss_kb=%s wall=%s user_s=%s sys_s=%s exit=%s\n", n, rss, wall, u, s, rc}' "$2"
}

SAFE_MODE=true /usr/bin/time -v "$bin" single >"$tmp/s1.out" 2>"$tmp/s1.err" || true
report "SAFE_MODE=true single" "$tmp/s1.err"

SAFE_MODE=false /usr/bin/time -v "$bin" single >"$tmp/s2.out" 2>"$tmp/s2.err" || true
report "single (spawns on the fake)" "$tmp/s2.err"
echo "measure: pods on the fake after the real cycle: $(curl -s "$RUNPOD_API_BASE_URL/_fake/stats" 2>/dev/null || echo '?')"

SAFE_MODE=true /usr/bin/time -v "$bin" continuous --interval 1 >"$tmp/c.out" 2>"$tmp/c.err" &
cpid=$!
sleep "${CONT_SEC:-10.5}"
# SIGTERM to the orchestrator itself (the child of /usr/bin/time), so time reports its usage.
child=$(pgrep -P "$cpid" || true)
if [ -n "$child" ]; then kill -TERM "$child" 2>/dev/null || true; fi
wait "$cpid" || true
cycles=$(grep -c '"cycle.start"\|cycle.start' "$tmp/c.err" || true)
report "SAFE_MODE=true continuous (${cycles} cycles)" "$tmp/c.err"
