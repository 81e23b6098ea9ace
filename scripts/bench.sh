#!/usr/bin/env bash
# bench.sh: performance figures of the control cycle, measured side by side on this machine.
# A benchmark that prints figures, not a timed test (see structure_docs/performance.md).
#
#   scripts/bench.sh [--sizes 1000,100000,1000000] [--reps 15] [--smoke]
#
# It starts its own private PostgreSQL (scripts/pg-local.sh) and fake RunPod
# (tests/fakes/fake_runpod.py, no fake workers) and stops both on exit, whatever happened.
#   1. Cycle cost at scale: for each size, a database with SIZE tasks (1 % Queued, 0.1 % In
#      Progress, the rest Complete/Failed history) and 1,000 worker rows (100 live); a no-op
#      `orchestrator single` against it, timed (wall, peak RSS) alternately with the floor
#      `psql -Atc 'select 1'` on the same database; SQL statements per cycle from
#      pg_stat_statements, cross-checked with the summary's sql_statements.
#   2. Spawn fan-out: the fake adds 500 ms to every create; cycle time to spawn 1 and 20 pods.
#   3. Reaction of `continuous`: INSERT of a task into an idle system -> create request at the
#      fake (both timestamps on this machine's clock).
#   4. Burst: 500 tasks at once with MAX_ACTIVE_GPUS=50: cycles to the desired fleet, retries.
#   5. Pools (issue 14): the no-op cycle with 8 pools against 1 pool (POOLS unset) on the same
#      database (the largest size, 7/8 of its Queued tasks moved to 7 other run types),
#      alternating: SQL statements per cycle (must be equal: demand is counted per run type in
#      one statement, never a query per pool) and wall time (target: 8 pools within 1.2x).
#   6. Policy lab (scripts/bench_simulate.sh): a one-week trace of 100,000 tasks on 4 pools
#      through `orchestrator simulate`: wall time (target < 10 s), simulated-to-real ratio.
# --smoke: tiny sizes and counts; asserts correctness only (statements identical across sizes
# and across pool counts, no-op cycles act on nothing, spawns happen, the reaction is observed,
# the burst converges).
#
# Binary: $ORCH_BINARY, else build-bench/orchestrator (a Release build:
#   cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release && cmake --build build-bench -j2).
# Needs /usr/bin/time (Debian package `time`), psql, /usr/bin/python3 (scripts/install-deps.sh).
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
py=/usr/bin/python3
bin=${ORCH_BINARY:-$root/build-bench/orchestrator}

sizes="1000,100000,1000000"
reps=15
smoke=0
while [ $# -gt 0 ]; do
    case "$1" in
    --sizes) sizes=${2:?--sizes needs a comma list}; shift 2 ;;
    --reps) reps=${2:?--reps needs a number}; shift 2 ;;
    --smoke) smoke=1; shift ;;
    -h | --help) sed -n '2,29p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
# Figures of items 2-4 (smoke: scaled down so the whole run stays well under 40 s).
spawn_big=20 latency_ms=500 spawn_reps=3 react_trials=5 burst_tasks=500 burst_max=50
poll_interval=5
if [ "$smoke" = 1 ]; then
    sizes="200,2000"
    reps=3
    spawn_big=4 latency_ms=200 spawn_reps=1 react_trials=1 burst_tasks=40 burst_max=5
    poll_interval=2
fi
IFS=, read -r -a size_list <<<"$sizes"
for s in "${size_list[@]}"; do
    [[ "$s" =~ ^[0-9]+$ ]] && [ "$s" -ge 1000 -o "$smoke" = 1 ] ||
        { echo "bench: bad size '$s' (whole numbers >= 1000)" >&2; exit 2; }
done
[[ "$reps" =~ ^[0-9]+$ ]] && [ "$reps" -ge 1 ] || { echo "bench: bad --reps" >&2; exit 2; }

die() { echo "bench: FAIL: $*" >&2; exit 1; }
[ -x "$bin" ] || die "no orchestrator binary at $bin: build it (see the header) or set ORCH_BINARY"
for t in psql createdb /usr/bin/time "$py"; do
    command -v "$t" >/dev/null 2>&1 || die "$t not found: run scripts/install-deps.sh (as root)"
done

tmp=$(mktemp -d /tmp/orch-bench.XXXXXX)
chmod 755 "$tmp"
pg_started=0
fake_pid=""
cont_pid=""
cleanup() {
    if [ -n "$cont_pid" ]; then kill "$cont_pid" 2>/dev/null || true; wait "$cont_pid" 2>/dev/null || true; fi
    if [ -n "$fake_pid" ]; then kill "$fake_pid" 2>/dev/null || true; wait "$fake_pid" 2>/dev/null || true; fi
    [ "$pg_started" = 1 ] && "$root/scripts/pg-local.sh" stop "$tmp/pg" || true
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '%s\n' "$*" >&2; }

# ---- PostgreSQL -----------------------------------------------------------------------------
log "bench: starting a private PostgreSQL"
eval "$("$root/scripts/pg-local.sh" start "$tmp/pg")"
pg_started=1
export PGHOST PGPORT PGUSER
unset PGDATABASE DATABASE_URL
url() { echo "postgresql:///$1?host=$PGHOST&port=$PGPORT&user=$PGUSER"; }
sql() { psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
sql postgres "CREATE EXTENSION IF NOT EXISTS pg_stat_statements" >/dev/null

createdb bench_tpl
DATABASE_URL=$(url bench_tpl) "$bin" migrate >/dev/null 2>"$tmp/migrate.log" ||
    { cat "$tmp/migrate.log" >&2; die "orchestrator migrate failed"; }
fresh_db() { # fresh_db NAME: an empty migrated database, reconcile just done
    PGOPTIONS='-c client_min_messages=warning' sql postgres "DROP DATABASE IF EXISTS $1 WITH (FORCE)"
    createdb -T bench_tpl "$1"
    sql "$1" "UPDATE orchestrator_state SET last_reconcile_at = now() WHERE id = 1" >/dev/null
}

# ---- fake RunPod ----------------------------------------------------------------------------
log "bench: starting the fake RunPod"
"$py" "$root/tests/fakes/fake_runpod.py" --port 0 --port-file "$tmp/fake.port" \
    --api-key bench-key --parent-pid $$ >"$tmp/fake.log" 2>&1 &
fake_pid=$!
for _ in $(seq 150); do [ -s "$tmp/fake.port" ] && break; sleep 0.1; done
[ -s "$tmp/fake.port" ] || { cat "$tmp/fake.log" >&2; die "the fake RunPod did not start"; }
fake_url="http://127.0.0.1:$(cat "$tmp/fake.port")"

# fake METHOD PATH [JSON]: the fake's control API; prints the JSON answer.
fake() {
    "$py" - "$fake_url" "$@" <<'PY'
import json, sys, urllib.request
base, method, path = sys.argv[1:4]
data = sys.argv[4].encode() if len(sys.argv) > 4 else None
req = urllib.request.Request(base + path, data=data, method=method,
                             headers={"Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=10) as r:
    sys.stdout.write(r.read().decode())
PY
}
# jq-like helper: jpy 'python expression over d' < JSON
jpy() { "$py" -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# ---- the orchestrator's environment --------------------------------------------------------
# orch_env DB [VAR=VALUE...]: sets ORCH_ENV, the clean, explicit environment of a run on DB.
orch_env() {
    local db=$1; shift
    ORCH_ENV=(PATH="$PATH" HOME="${HOME:-/tmp}"
        DATABASE_URL="$(url "$db")" RUNPOD_API_KEY=bench-key RUNPOD_API_BASE_URL="$fake_url"
        RECONCILE_INTERVAL_SEC=86400 GPU_IDLE_TIMEOUT_SEC=3600 TASK_STUCK_TIMEOUT_SEC=3600
        SPAWNING_TIMEOUT_SEC=3600 LOG_FORMAT=json LOG_LEVEL=INFO "$@")
}
# orch DB [VAR=VALUE...] -- ARGS: runs the binary in that environment.
orch() {
    local db=$1; shift
    local vars=()
    while [ "$1" != "--" ]; do vars+=("$1"); shift; done
    shift
    orch_env "$db" "${vars[@]}"
    env -i "${ORCH_ENV[@]}" "$bin" "$@"
}
NOOP_ENV=(MIN_ACTIVE_GPUS=100 MAX_ACTIVE_GPUS=100 TASKS_PER_GPU_THRESHOLD=3)

# timed CMD...: runs CMD (output discarded) under /usr/bin/time; prints "wall_us rss_kib".
timed() {
    local t0 t1
    t0=$EPOCHREALTIME
    /usr/bin/time -f '%M' -o "$tmp/time.out" "$@" >/dev/null 2>&1 || die "failed: $*"
    t1=$EPOCHREALTIME
    echo "$((10#${t1/./} - 10#${t0/./})) $(tail -n 1 "$tmp/time.out")"
}
median() { sort -n | awk '{a[NR]=$1} END {if (NR%2) print a[(NR+1)/2]; else print int((a[NR/2]+a[NR/2+1])/2)}'; }
ms() { awk -v u="$1" 'BEGIN {printf "%.1f", u / 1000}'; }
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

smoke_failures=0
check() { # check CONDITION_TEXT RESULT(0/1)
    if [ "$2" = 0 ]; then log "  ok   - $1"; else log "  FAIL - $1"; smoke_failures=$((smoke_failures + 1)); fi
}

# ==== 1. data for the cycle-cost databases ===================================================
# 100 live workers: active, promoted two hours ago, heartbeat now, GPU visible; 900 terminated
# (ended two days ago, outside the breaker window). MIN=MAX=100 makes desired = 100 = active, so
# nothing spawns or drains whatever the queue; reconcile was just done (interval 1 day), so no
# RunPod call is due. In Progress tasks sit on live workers (several per worker at 1,000,000),
# started 30 s ago (TASK_STUCK_TIMEOUT_SEC=3600), so nothing is stuck or orphaned.
populate() { # populate DB SIZE
    local db=$1 n=$2 q=$(($2 / 100)) p=$(($2 / 1000))
    local h=$((n - q - p))
    sql "$db" "
SET synchronous_commit = off;
INSERT INTO workers (id, instance_type, gpu_type, runpod_id, cost_per_hr, created_at)
SELECT 'gpu-live-' || lpad(i::text, 4, '0'), 'NVIDIA GeForce RTX 4090', 'NVIDIA GeForce RTX 4090',
       'pod-live-' || i, 0.69, now() - interval '2 hours'
  FROM generate_series(1, 100) i;
UPDATE workers SET status = 'active', promoted_at = now() - interval '2 hours',
       last_heartbeat = now(), last_task_activity_at = now() - interval '1 minute',
       metadata = jsonb_build_object('vram_total_mb', 24564, 'vram_used_mb', 2048)
 WHERE id LIKE 'gpu-live-%';
INSERT INTO workers (id, instance_type, gpu_type, runpod_id, created_at, status)
SELECT 'gpu-old-' || lpad(i::text, 4, '0'), 'NVIDIA GeForce RTX 4090', 'NVIDIA GeForce RTX 4090',
       'pod-old-' || i, now() - interval '3 days', 'inactive'
  FROM generate_series(1, 900) i;
UPDATE workers SET status = 'terminated', ended_at = now() - interval '2 days', end_kind = 'expected'
 WHERE id LIKE 'gpu-old-%';
INSERT INTO tasks (task_type, params, status, attempts, worker_id, created_at, available_at,
                   generation_started_at, generation_processed_at, output_location, result_data)
SELECT 'generate_video', jsonb_build_object('prompt', 'bench prompt ' || i, 'seed', i, 'steps', 30),
       CASE WHEN i % 50 = 0 THEN 'Failed' ELSE 'Complete' END::task_status, 1,
       'gpu-old-' || lpad((i % 900 + 1)::text, 4, '0'),
       now() - make_interval(secs => 40 + i), now() - make_interval(secs => 40 + i),
       now() - make_interval(secs => 30 + i), now() - make_interval(secs => 20 + i),
       's3://bench/out/' || i || '.mp4', jsonb_build_object('frames', 81)
  FROM generate_series(1, $h) i;
INSERT INTO tasks (task_type, params, created_at, available_at)
SELECT 'generate_video', jsonb_build_object('prompt', 'queued ' || i, 'seed', i, 'steps', 30),
       now() - make_interval(secs => i), now() - make_interval(secs => i)
  FROM generate_series(1, $q) i;
-- a tenth of the queue waits on a finished task (exercises the dependency check)
UPDATE tasks SET dependant_on = ARRAY[(SELECT id FROM tasks WHERE status = 'Complete' LIMIT 1)]
 WHERE status = 'Queued' AND abs(hashtext(id::text)) % 10 = 0;
INSERT INTO tasks (task_type, params, status, worker_id, generation_started_at, created_at)
SELECT 'generate_video', jsonb_build_object('prompt', 'running ' || i, 'seed', i),
       'In Progress', 'gpu-live-' || lpad((i % 100 + 1)::text, 4, '0'),
       now() - interval '30 seconds', now() - interval '60 seconds'
  FROM generate_series(1, $p) i;
UPDATE orchestrator_state SET last_reconcile_at = now() WHERE id = 1;
" >/dev/null
    # Close to the steady state autovacuum keeps: statistics current, most of the visibility
    # map set (how much varies from run to run; it only changes heap fetches of Queued rows).
    sql "$db" "CHECKPOINT" >/dev/null
    sql "$db" "VACUUM ANALYZE" >/dev/null
    sql "$db" "VACUUM" >/dev/null
}

dbs=()
for n in "${size_list[@]}"; do
    db=bench_s$n
    log "bench: generating $n tasks and 1,000 worker rows in $db"
    t0=$SECONDS
    createdb -T bench_tpl "$db"
    populate "$db" "$n"
    log "bench:   done in $((SECONDS - t0)) s ($(sql "$db" "SELECT pg_size_pretty(pg_total_relation_size('tasks'))") for tasks)"
    dbs+=("$db")
done

# Statements of one no-op cycle, from pg_stat_statements (top-level statements of that database
# only; reset and read from the `postgres` database, so none of ours is counted).
count_statements() { # count_statements DB -> "pgss_count summary_count actions plan_len"
    local db=$1 oid
    oid=$(sql postgres "SELECT oid FROM pg_database WHERE datname = '$db'")
    sql postgres "SELECT pg_stat_statements_reset()" >/dev/null
    orch "$db" "${NOOP_ENV[@]}" -- single >"$tmp/noop.json" 2>"$tmp/noop.err" ||
        { cat "$tmp/noop.err" >&2; die "no-op cycle on $db failed"; }
    local pgss
    pgss=$(sql postgres "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements
                         WHERE dbid = $oid AND toplevel")
    sql postgres "SELECT calls, regexp_replace(left(query, 70), '\s+', ' ', 'g') FROM pg_stat_statements
                  WHERE dbid = $oid AND toplevel ORDER BY query" >"$tmp/stmts_$db.txt"
    local rest
    rest=$(jpy 'd["sql_statements"], sum(v for v in d["actions"].values()), len(d.get("plan", [])), d["status"]["desired"], d["status"]["active"], d["result"]' <"$tmp/noop.json" | tr -d '(),' )
    echo "$pgss $rest"
}

log "bench: 1. no-op cycles (warm-up, statement counts)"
declare -A stm sumst acts planlen desired active
for db in "${dbs[@]}"; do
    orch "$db" "${NOOP_ENV[@]}" -- single >/dev/null 2>&1 || true # warm the caches
    read -r stm[$db] sumst[$db] acts[$db] planlen[$db] desired[$db] active[$db] res <<<"$(count_statements "$db")"
    [ "$res" = "'ok'" ] || [ "$res" = "ok" ] || log "bench: warning: no-op cycle on $db ended $res"
done
reqs_before=$(fake GET /_fake/stats | jpy 'd["requests"]')

log "bench: 1. timing: $reps rounds, orchestrator and psql alternating on each database"
declare -A ow orss pw prss
for db in "${dbs[@]}"; do : >"$tmp/o_w_$db"; : >"$tmp/o_r_$db"; : >"$tmp/p_w_$db"; : >"$tmp/p_r_$db"; done
for ((r = 1; r <= reps; r++)); do
    for db in "${dbs[@]}"; do
        orch_env "$db" "${NOOP_ENV[@]}"
        read -r w k <<<"$(timed env -i "${ORCH_ENV[@]}" "$bin" single)"
        echo "$w" >>"$tmp/o_w_$db"; echo "$k" >>"$tmp/o_r_$db"
        read -r w k <<<"$(timed psql -X -Atc 'select 1' "$(url "$db")")"
        echo "$w" >>"$tmp/p_w_$db"; echo "$k" >>"$tmp/p_r_$db"
    done
done
reqs_after=$(fake GET /_fake/stats | jpy 'd["requests"]')

echo
echo "== 1. Cycle cost at scale: no-op 'orchestrator single' vs the floor 'psql -Atc \"select 1\"'"
echo "   (median of $reps alternating runs each; wall = fork+exec to exit; RSS = peak, /usr/bin/time %M)"
printf '%-10s %-7s %-8s %-6s %-6s | %-9s %-9s %-6s | %-9s %-9s | %s\n' tasks queued in_prog \
    stmts summ orch_ms psql_ms ratio orch_MiB psql_MiB "actions plan desired/active"
ref_stm=""
for i in "${!dbs[@]}"; do
    db=${dbs[$i]} n=${size_list[$i]}
    ow=$(median <"$tmp/o_w_$db") pw=$(median <"$tmp/p_w_$db")
    orr=$(median <"$tmp/o_r_$db") prr=$(median <"$tmp/p_r_$db")
    ratio=$(awk -v a="$ow" -v b="$pw" 'BEGIN {printf "%.2f", a / b}')
    printf '%-10s %-7s %-8s %-6s %-6s | %-9s %-9s %-6s | %-9s %-9s | %s %s %s/%s\n' "$n" \
        $((n / 100)) $((n / 1000)) "${stm[$db]}" "$((sumst[$db] + 1))" "$(ms "$ow")" "$(ms "$pw")" \
        "$ratio" "$(mib "$orr")" "$(mib "$prr")" "${acts[$db]}" "${planlen[$db]}" \
        "${desired[$db]}" "${active[$db]}"
    [ -z "$ref_stm" ] && ref_stm=${stm[$db]}
    last_ratio=$ratio last_rss=$orr
    max_rss=$(( ${max_rss:-0} > orr ? ${max_rss:-0} : orr ))
    [ "${stm[$db]}" = "$ref_stm" ] || stm_differ=1
    [ "${acts[$db]}" = 0 ] && [ "${planlen[$db]}" = 0 ] || noop_acted=1
done
echo "   stmts = pg_stat_statements top-level calls of the cycle's database; summ = summary"
echo "   sql_statements + 1 (the lease release after the summary). RunPod requests during item 1:"
echo "   $((reqs_after - reqs_before))."
echo "   statements of one cycle ($(basename "${dbs[-1]}")):"
sed 's/^/     /' "$tmp/stmts_${dbs[-1]}.txt"
t_stm=$([ -z "${stm_differ:-}" ] && echo met || echo MISSED)
t_wall=$(awk -v r="$last_ratio" 'BEGIN {print (r <= 2.0) ? "met" : "MISSED"}')
t_rss=$([ "$max_rss" -le 16384 ] && echo met || echo MISSED)
echo "   targets: statements identical at every size: $t_stm; wall at ${size_list[-1]} tasks <= 2x floor" \
    "(${last_ratio}x): $t_wall; peak RSS <= 16 MiB at every size (max $(mib "$max_rss") MiB): $t_rss"
check "no-op cycles changed nothing (no action, empty plan) at every size" "${noop_acted:-0}"
check "statements per cycle identical at every size (${ref_stm})" "${stm_differ:-0}"
check "pg_stat_statements count equals the summary's sql_statements + 1" \
    "$([ "${stm[${dbs[0]}]}" = "$((sumst[${dbs[0]}] + 1))" ] && echo 0 || echo 1)"
check "no RunPod call during no-op cycles" "$([ "$reqs_after" = "$reqs_before" ] && echo 0 || echo 1)"

# ==== 2. spawn fan-out ============================================================================
log "bench: 2. spawn fan-out (create latency ${latency_ms} ms)"
spawn_once() { # spawn_once N -> "wall_us duration_ms spawned creates"
    local k=$1
    fresh_db bench_spawn
    fake POST /_fake/reset >/dev/null
    fake POST /_fake/faults "{\"create_latency_ms\": $latency_ms}" >/dev/null
    local t0 t1
    t0=$EPOCHREALTIME
    orch bench_spawn MIN_ACTIVE_GPUS="$k" MAX_ACTIVE_GPUS="$spawn_big" -- single \
        >"$tmp/spawn.json" 2>"$tmp/spawn.err" || { cat "$tmp/spawn.err" >&2; die "spawn cycle failed"; }
    t1=$EPOCHREALTIME
    local creates
    creates=$(fake GET /_fake/stats | jpy 'd["creates"]')
    echo "$((10#${t1/./} - 10#${t0/./})) $(jpy 'd["duration_ms"] if "duration_ms" in d else -1, d["actions"]["workers_spawned"]' <"$tmp/spawn.json" | tr -d '(),') $creates"
}
: >"$tmp/sp1" ; : >"$tmp/spN"
for ((r = 1; r <= spawn_reps; r++)); do
    spawn_once 1 >>"$tmp/sp1"
    spawn_once "$spawn_big" >>"$tmp/spN"
done
s1=$(awk '{print $1}' "$tmp/sp1" | median) sN=$(awk '{print $1}' "$tmp/spN" | median)
d1=$(awk '{print $2}' "$tmp/sp1" | median) dN=$(awk '{print $2}' "$tmp/spN" | median)
sp_ok=$(awk -v n="$spawn_big" '$3 != 1 && FILENAME ~ /sp1$/ {bad=1} $3 != n && FILENAME ~ /spN$/ {bad=1} END {print bad ? 1 : 0}' "$tmp/sp1" "$tmp/spN")
fan_ratio=$(awk -v a="$sN" -v b="$s1" 'BEGIN {printf "%.2f", a / b}')
echo
echo "== 2. Spawn fan-out: every create answered after ${latency_ms} ms (median of $spawn_reps)"
printf '   %-6s %-14s %-22s %s\n' pods cycle_wall_ms summary_duration_ms "spawned/creates at the fake"
printf '   %-6s %-14s %-22s %s\n' 1 "$(ms "$s1")" "$d1" "$(tail -n 1 "$tmp/sp1" | awk '{print $3 "/" $4}')"
printf '   %-6s %-14s %-22s %s\n' "$spawn_big" "$(ms "$sN")" "$dN" "$(tail -n 1 "$tmp/spN" | awk '{print $3 "/" $4}')"
echo "   target: $spawn_big pods in <= 2x the time of 1: ${fan_ratio}x:" \
    "$(awk -v r="$fan_ratio" 'BEGIN {print (r <= 2.0) ? "met" : "MISSED"}')"
check "every spawn cycle created exactly the pods it planned" "$sp_ok"

# ==== 3. reaction time of continuous =================================================================
log "bench: 3. reaction of 'continuous' ($react_trials trials)"
react_run() { # mode (notify|poll), interval, trials, output file
local mode=$1 interval=$2 trials=$3 out=$4
: >"$out"
for ((r = 1; r <= trials; r++)); do
    fresh_db bench_react
    fake POST /_fake/reset >/dev/null
    : >"$tmp/cont.err"
    # Started directly (not through a function), so $! is the orchestrator itself (env execs it).
    orch_env bench_react MIN_ACTIVE_GPUS=0 MAX_ACTIVE_GPUS=4 \
        ENABLE_NOTIFY_WAKEUP=$([ "$mode" = notify ] && echo true || echo false)
    env -i "${ORCH_ENV[@]}" "$bin" continuous --interval "$interval" >/dev/null 2>"$tmp/cont.err" &
    cont_pid=$!
    for _ in $(seq 100); do grep -q '"cycle.end"' "$tmp/cont.err" && break; sleep 0.05; done
    grep -q '"cycle.end"' "$tmp/cont.err" || { cat "$tmp/cont.err" >&2; die "continuous did not finish its first cycle"; }
    sleep 0.5 # idle: the first cycle is over and the LISTEN is in place
    ins=$(sql bench_react "INSERT INTO tasks (task_type) VALUES ('generate_video')
                           RETURNING extract(epoch FROM clock_timestamp())")
    got=""
    for _ in $(seq $((interval * 20 + 100))); do
        got=$(fake GET /_fake/requests | jpy '" ".join("%.6f" % r["time"] for r in d["requests"] if r["method"] == "POST" and r["path"] == "/v2/pods")')
        [ -n "$got" ] && break
        sleep 0.05
    done
    kill "$cont_pid" 2>/dev/null || true
    wait "$cont_pid" 2>/dev/null || true
    ! kill -0 "$cont_pid" 2>/dev/null || die "orchestrator continuous (pid $cont_pid) did not stop"
    grep -q '"loop.stop"' "$tmp/cont.err" || die "orchestrator continuous did not log loop.stop on SIGTERM"
    cont_pid=""
    [ -n "$got" ] || { tail -n 20 "$tmp/cont.err" >&2; die "no create request after the INSERT"; }
    awk -v a="$ins" -v b="${got%% *}" 'BEGIN {printf "%d\n", (b - a) * 1000000}' >>"$out"
    # Spread the poll-mode INSERTs over the interval instead of always right after a cycle.
    if [ "$mode" = poll ]; then sleep "0.$((RANDOM % 10))"; fi
done
return 0
}
react_run notify 60 "$react_trials" "$tmp/react"
react_run poll "$poll_interval" "$react_trials" "$tmp/react_poll"
rmed=$(median <"$tmp/react")
rmax=$(sort -n "$tmp/react" | tail -n 1)
echo
echo "== 3. Reaction of 'continuous --interval 60': INSERT (server clock_timestamp) -> POST /v2/pods at the fake"
echo "   trials: $(while read -r u; do printf '%s ' "$(ms "$u")"; done <"$tmp/react")ms"
echo "   median $(ms "$rmed") ms, max $(ms "$rmax") ms; target < 1000 ms:" \
    "$([ "$rmax" -lt 1000000 ] && echo met || echo MISSED)"
check "reaction observed (create request after the INSERT, within 5 s)" \
    "$(awk -v m="$rmax" 'BEGIN {print (m > 0 && m < 5000000) ? 0 : 1}')"
pmed=$(median <"$tmp/react_poll")
pmax=$(sort -n "$tmp/react_poll" | tail -n 1)
echo "   without NOTIFY (ENABLE_NOTIFY_WAKEUP=false, --interval $poll_interval):" \
    "$(while read -r u; do printf '%s ' "$(ms "$u")"; done <"$tmp/react_poll")ms;" \
    "median $(ms "$pmed") ms, max $(ms "$pmax") ms (bounded by the interval)"


# ==== 4. burst ==========================================================================================
log "bench: 4. burst of $burst_tasks tasks, MAX_ACTIVE_GPUS=$burst_max"
fresh_db bench_burst
fake POST /_fake/reset >/dev/null
fake POST /_fake/faults "{\"create_latency_ms\": $latency_ms}" >/dev/null
sql bench_burst "INSERT INTO tasks (task_type, params) SELECT 'generate_video',
                 jsonb_build_object('n', i) FROM generate_series(1, $burst_tasks) i" >/dev/null
cycles=0
reached=0
: >"$tmp/burst.err"
: >"$tmp/burst.lines"
for ((c = 1; c <= 6; c++)); do
    t0=$EPOCHREALTIME
    orch bench_burst MIN_ACTIVE_GPUS=0 MAX_ACTIVE_GPUS="$burst_max" -- single \
        >"$tmp/burst.json" 2>>"$tmp/burst.err" || true
    t1=$EPOCHREALTIME
    line=$(jpy '"desired=%s spawned=%s to_spawn=%s result=%s" % (d["status"]["desired"], d["actions"]["workers_spawned"], d["status"]["to_spawn"], d["result"])' <"$tmp/burst.json")
    live=$(sql bench_burst "SELECT count(*) FROM workers WHERE status IN ('spawning', 'active') AND runpod_id IS NOT NULL")
    echo "   cycle $c: $line; live rows with a pod: $live; wall $(ms $((10#${t1/./} - 10#${t0/./}))) ms" >>"$tmp/burst.lines"
    if [ "$live" = "$burst_max" ] && [ "$reached" = 0 ]; then reached=$c; fi
    cycles=$c
    [ "$reached" != 0 ] && [ "$c" -gt "$reached" ] && break # one more cycle: nothing more to do
done
burst_stats=$(fake GET /_fake/requests | jpy '"posts=%d creates_201=%d non_2xx=%d lists=%d deletes=%d" % (sum(1 for r in d["requests"] if r["method"]=="POST" and r["path"]=="/v2/pods"), sum(1 for r in d["requests"] if r["method"]=="POST" and r["status"]==201), sum(1 for r in d["requests"] if r["status"]>=300), sum(1 for r in d["requests"] if r["method"]=="GET"), sum(1 for r in d["requests"] if r["method"]=="DELETE"))')
dup_names=$(fake GET /_fake/requests | jpy 'len([1 for r in d["requests"] if r["method"]=="POST" and r["path"]=="/v2/pods"]) - len(set(r["body"]["name"] for r in d["requests"] if r["method"]=="POST" and r["path"]=="/v2/pods"))')
retries=$(grep -c '"runpod.retry"' "$tmp/burst.err" || true)
echo
echo "== 4. Burst: $burst_tasks tasks queued at once, MAX_ACTIVE_GPUS=$burst_max, create latency ${latency_ms} ms"
cat "$tmp/burst.lines"
echo "   desired fleet ($burst_max pods) reached after $reached cycle(s)"
echo "   fake: $burst_stats; repeated create names: $dup_names; client retries (runpod.retry log lines): $retries"
check "the burst reached the desired fleet" "$([ "$reached" != 0 ] && echo 0 || echo 1)"
check "no create retried or duplicated" "$([ "$retries" = 0 ] && [ "$dup_names" = 0 ] && echo 0 || echo 1)"

# ==== 5. pools ==========================================================================================
pdb=bench_pools
src_db=${dbs[-1]}
log "bench: 5. 8 pools against 1 pool on $pdb (a copy of $src_db), $reps rounds"
PGOPTIONS='-c client_min_messages=warning' sql postgres "DROP DATABASE IF EXISTS $pdb WITH (FORCE)"
createdb -T "$src_db" "$pdb"
sql "$pdb" "UPDATE tasks SET run_type = 'p' || (2 + abs(hashtext(id::text)) % 7)
             WHERE status = 'Queued' AND abs(hashtext(id::text || 'pool')) % 8 <> 0" >/dev/null
sql "$pdb" "VACUUM ANALYZE tasks" >/dev/null
rt_counts=$(sql "$pdb" "SELECT string_agg(run_type || ':' || n, ' ' ORDER BY run_type) FROM
                        (SELECT run_type, count(*) n FROM tasks WHERE status = 'Queued' GROUP BY 1) q")
# 1 pool: POOLS unset (pool default, serving gpu; the other run types are unserved). 8 pools:
# default (MIN = MAX = 100, the live workers' pool) and p2..p8, each with its own GPU type and
# image, serving its own run type, MIN = MAX = 0 (so the cycle stays a no-op: their queues are
# counted and sized, nothing spawns).
ONE_POOL=("${NOOP_ENV[@]}")
EIGHT_POOLS=("${NOOP_ENV[@]}" POOLS=default,p2,p3,p4,p5,p6,p7,p8)
for k in 2 3 4 5 6 7 8; do
    EIGHT_POOLS+=(POOL_P${k}_MIN_ACTIVE_GPUS=0 POOL_P${k}_MAX_ACTIVE_GPUS=0
                  "POOL_P${k}_GPU_TYPES=NVIDIA RTX A$((k * 1000))" POOL_P${k}_WORKER_IMAGE=bench/p$k:1)
done
# pool_noop DB -- ENV...: one no-op cycle -> "pgss_count summary_count actions plan_len pools result"
pool_noop() {
    local db=$1 oid pgss
    shift 2
    oid=$(sql postgres "SELECT oid FROM pg_database WHERE datname = '$db'")
    sql postgres "SELECT pg_stat_statements_reset()" >/dev/null
    orch "$db" "$@" -- single >"$tmp/pools.json" 2>"$tmp/pools.err" ||
        { cat "$tmp/pools.err" >&2; die "pools cycle on $db failed"; }
    pgss=$(sql postgres "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements
                         WHERE dbid = $oid AND toplevel")
    echo "$pgss $(jpy 'd["sql_statements"], sum(v for v in d["actions"].values()), len(d.get("plan", [])), len(d["pools"]), d["result"]' <"$tmp/pools.json" | tr -d "(),'")"
}
# Each configuration's first cycle after the other one writes worker_pools (one statement more);
# the steady cycle right after it is the one counted and timed.
pool_noop "$pdb" -- "${EIGHT_POOLS[@]}" >/dev/null # the copy's worker_pools says 1 pool
read -r one_sync _ <<<"$(pool_noop "$pdb" -- "${ONE_POOL[@]}")"
read -r one_stm one_sum one_acts one_plan one_pools one_res <<<"$(pool_noop "$pdb" -- "${ONE_POOL[@]}")"
read -r eight_sync _ <<<"$(pool_noop "$pdb" -- "${EIGHT_POOLS[@]}")"
read -r eight_stm eight_sum eight_acts eight_plan eight_pools eight_res <<<"$(pool_noop "$pdb" -- "${EIGHT_POOLS[@]}")"
: >"$tmp/pool1_w"; : >"$tmp/pool8_w"
for ((r = 1; r <= reps; r++)); do
    for n in 1 8; do
        if [ "$n" = 1 ]; then cfg=("${ONE_POOL[@]}"); else cfg=("${EIGHT_POOLS[@]}"); fi
        orch "$pdb" "${cfg[@]}" -- single >/dev/null 2>&1 || die "pools warm-up cycle failed"
        orch_env "$pdb" "${cfg[@]}"
        read -r w _ <<<"$(timed env -i "${ORCH_ENV[@]}" "$bin" single)"
        echo "$w" >>"$tmp/pool${n}_w"
    done
done
p1=$(median <"$tmp/pool1_w") p8=$(median <"$tmp/pool8_w")
pratio=$(awk -v a="$p8" -v b="$p1" 'BEGIN {printf "%.2f", a / b}')
echo
echo "== 5. Pools: the no-op cycle with 8 pools vs 1 pool (POOLS unset), same database, alternating"
echo "   ($pdb: ${size_list[-1]} tasks; Queued by run type: $rt_counts; 100 live workers of pool default)"
printf '   %-6s %-13s %-25s %-9s %-8s %s\n' pools stmts summ+1 orch_ms ratio "actions plan result"
printf '   %-6s %-13s %-25s %-9s %-8s %s\n' "$one_pools" "$one_stm" \
    "$((one_sum + 1)) (after a change: $one_sync)" "$(ms "$p1")" 1.00 "$one_acts $one_plan $one_res"
printf '   %-6s %-13s %-25s %-9s %-8s %s\n' "$eight_pools" "$eight_stm" \
    "$((eight_sum + 1)) (after a change: $eight_sync)" "$(ms "$p8")" "$pratio" "$eight_acts $eight_plan $eight_res"
echo "   (median of $reps alternating runs each, every timed run right after one untimed run of the"
echo "   same configuration: a change of POOLS costs one statement once, writing worker_pools)"
echo "   targets: same statements with 8 pools as with 1: $([ "$one_stm" = "$eight_stm" ] && echo met || echo MISSED);" \
    "8 pools within 1.2x of 1 pool (${pratio}x): $(awk -v r="$pratio" 'BEGIN {print (r <= 1.2) ? "met" : "MISSED"}')"
check "8 pools and 1 pool: the same SQL statements per no-op cycle ($one_stm, $eight_stm)" \
    "$([ "$one_stm" = "$eight_stm" ] && [ "$one_stm" = "$((one_sum + 1))" ] && echo 0 || echo 1)"
check "the pool cycles are no-ops reporting 1 and 8 pools" \
    "$([ "$one_acts $one_plan $one_pools $one_res" = "0 0 1 ok" ] && [ "$eight_acts $eight_plan $eight_pools $eight_res" = "0 0 8 ok" ] && echo 0 || echo 1)"

# ==== 6. policy lab ====================================================================================
log "bench: 6. policy lab (orchestrator simulate)"
ORCH_BINARY="$bin" bash "$root/scripts/bench_simulate.sh" $([ "$smoke" = 1 ] && echo --smoke) ||
    smoke_failures=$((smoke_failures + 1))

echo
if [ "$smoke_failures" -gt 0 ]; then
    echo "bench: $smoke_failures correctness check(s) failed"
    exit 1
fi
echo "bench: all correctness checks passed"
