#!/usr/bin/env bash
# bench.sh: performance figures of the control cycle, measured side by side on this machine.
# A benchmark that prints figures, not a timed test (see structure_docs/performance.md).
#
#   scripts/bench.sh [--sizes 1000,100000,1000000] [--reps 15] [--smoke] [--gateway-only]
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
#   6. The worker gateway (issue 13): claims/s and p50/p99 through `orchestrator gateway` vs the
#      direct SQL claim at 1, 16 and 64 concurrent claimers (tests/bench/claim_bench.c), and the
#      gateway's peak RSS while 64 workers poll.
#   7. Cost per task (issue 17): statements and wall time of the no-op cycle before
#      ($ORCH_BINARY_BEFORE, optional) and after, and of the cycle with the reconcile (and so the
#      cost observation) due; the cost statement's own time from pg_stat_statements.
#   8. Policy lab (scripts/bench_simulate.sh): a one-week trace of 100,000 tasks on 4 pools
#      through `orchestrator simulate`: wall time (target < 10 s), simulated-to-real ratio.
# --gateway-only: item 6 alone.
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
gateway_only=0
while [ $# -gt 0 ]; do
    case "$1" in
    --sizes) sizes=${2:?--sizes needs a comma list}; shift 2 ;;
    --reps) reps=${2:?--reps needs a number}; shift 2 ;;
    --smoke) smoke=1; shift ;;
    --gateway-only) gateway_only=1; shift ;;
    -h | --help) sed -n '2,35p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
# Figures of items 2-4 (smoke: scaled down so the whole run stays well under 40 s).
spawn_big=20 latency_ms=500 spawn_reps=3 react_trials=5 burst_tasks=500 burst_max=50
poll_interval=5
gw_secs=5 gw_tasks=60000
if [ "$smoke" = 1 ]; then
    gw_secs=1 gw_tasks=3000
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
gw_pid=""
cleanup() {
    if [ -n "$gw_pid" ]; then kill "$gw_pid" 2>/dev/null || true; wait "$gw_pid" 2>/dev/null || true; fi
    if [ -n "$cont_pid" ]; then kill "$cont_pid" 2>/dev/null || true; wait "$cont_pid" 2>/dev/null || true; fi
    if [ -n "$fake_pid" ]; then kill "$fake_pid" 2>/dev/null || true; wait "$fake_pid" 2>/dev/null || true; fi
    [ "$pg_started" = 1 ] && "$root/scripts/pg-local.sh" stop "$tmp/pg" || true
    [ -n "${ORCH_BENCH_KEEP:-}" ] && cp "$tmp"/*.log "$ORCH_BENCH_KEEP"/ 2>/dev/null; rm -rf "$tmp"
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

if [ "$gateway_only" = 0 ]; then # items 1-4 (skipped by --gateway-only)
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

# ==== 5. pools ===================================================================================
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

# ==== 7. cost per task (issue 17) ====================================================================
# The cost observation (one statement over orchestrator_task_costs) runs only in cycles where the
# reconcile is due, so a no-op cycle between reconciles runs exactly the statements it ran before.
# On a copy of the largest database: the no-op cycle of the binary before issue 17
# ($ORCH_BINARY_BEFORE, when given) and of this one, alternating, and this binary's cycle with the
# reconcile due (the pod list, and the cost observation of a 5-minute interval, as in
# production). POD_NOT_FOUND_GRACE_SEC=86400 keeps the live rows, whose pods the fake does not
# list, untouched, so every cycle stays a no-op.
cdb=bench_cost
bin_before=${ORCH_BINARY_BEFORE:-}
log "bench: 7. cost per task on $cdb (a copy of ${dbs[-1]}), $reps rounds"
PGOPTIONS='-c client_min_messages=warning' sql postgres "DROP DATABASE IF EXISTS $cdb WITH (FORCE)"
createdb -T "${dbs[-1]}" "$cdb"
COST_ENV=("${NOOP_ENV[@]}" POD_NOT_FOUND_GRACE_SEC=86400)
cost_due() { sql "$cdb" "UPDATE orchestrator_state SET last_reconcile_at = now() - interval '2 days',
                         cost_observed_until = now() - interval '5 minutes' WHERE id = 1" >/dev/null; }
cost_not_due() { sql "$cdb" "UPDATE orchestrator_state SET last_reconcile_at = now() WHERE id = 1" >/dev/null; }
# cost_cycle BINARY -> "pgss_count summary_count actions plan_len result observed tasks"
cost_cycle() {
    local b=$1 oid pgss
    oid=$(sql postgres "SELECT oid FROM pg_database WHERE datname = '$cdb'")
    sql postgres "SELECT pg_stat_statements_reset()" >/dev/null
    orch_env "$cdb" "${COST_ENV[@]}"
    env -i "${ORCH_ENV[@]}" "$b" single >"$tmp/cost.json" 2>"$tmp/cost.err" ||
        { cat "$tmp/cost.err" >&2; die "cost cycle on $cdb failed"; }
    pgss=$(sql postgres "SELECT coalesce(sum(calls), 0) FROM pg_stat_statements
                         WHERE dbid = $oid AND toplevel")
    echo "$pgss $(jpy 'd["sql_statements"], sum(v for v in d["actions"].values()), len(d.get("plan", [])), d["result"], d.get("task_cost", {}).get("observed", "-"), d.get("task_cost", {}).get("tasks", "-")' <"$tmp/cost.json" | tr -d "(),'")"
}
cost_not_due
orch "$cdb" "${COST_ENV[@]}" -- single >/dev/null 2>&1 || true # warm-up
variants=(after_noop after_due)
[ -n "$bin_before" ] && variants=(before_noop "${variants[@]}")
declare -A cstm csum cacts cplan cres cobs ctasks
for v in "${variants[@]}"; do
    b=$bin; [ "$v" = before_noop ] && b=$bin_before
    if [ "$v" = after_due ]; then cost_due; else cost_not_due; fi
    read -r cstm[$v] csum[$v] cacts[$v] cplan[$v] cres[$v] cobs[$v] ctasks[$v] <<<"$(cost_cycle "$b")"
done
read -r cost_calls cost_ms <<<"$(sql postgres "SELECT coalesce(sum(calls), 0),
    round(max(mean_exec_time)::numeric, 1) FROM pg_stat_statements
    WHERE query LIKE '%orchestrator_task_costs%' AND toplevel" | tr '|' ' ')"
for v in "${variants[@]}"; do : >"$tmp/cost_$v"; done
for ((r = 1; r <= reps; r++)); do
    for v in "${variants[@]}"; do
        b=$bin; [ "$v" = before_noop ] && b=$bin_before
        if [ "$v" = after_due ]; then cost_due; else cost_not_due; fi
        orch_env "$cdb" "${COST_ENV[@]}"
        read -r w _ <<<"$(timed env -i "${ORCH_ENV[@]}" "$b" single)"
        echo "$w" >>"$tmp/cost_$v"
    done
done
echo
echo "== 7. Cost per task: statements and time of a cycle, before and after issue 17, same database"
echo "   ($cdb: ${size_list[-1]} tasks, $(sql "$cdb" "SELECT count(*) FROM tasks WHERE status = 'Complete'
    AND generation_processed_at > now() - interval '1 hour'") completed in the last hour; median of $reps alternating runs)"
printf '   %-12s %-6s %-6s %-9s %-8s %s\n' cycle stmts summ+1 wall_ms result "actions plan cost_observed tasks_observed"
for v in "${variants[@]}"; do
    printf '   %-12s %-6s %-6s %-9s %-8s %s\n' "$v" "${cstm[$v]}" "$((csum[$v] + 1))" \
        "$(ms "$(median <"$tmp/cost_$v")")" "${cres[$v]}" "${cacts[$v]} ${cplan[$v]} ${cobs[$v]} ${ctasks[$v]}"
done
echo "   the reconcile-due cycle's statements include the pod list's bookkeeping and $cost_calls cost"
echo "   statement; that statement alone (pg_stat_statements mean): ${cost_ms:-?} ms"
[ -z "$bin_before" ] && echo "   (set ORCH_BINARY_BEFORE to a build of the previous release for the 'before' row)"
check "the no-op cycle between reconciles runs no extra statement for cost per task" \
    "$([ -z "$bin_before" ] || [ "${cstm[before_noop]}" = "${cstm[after_noop]}" ] && echo 0 || echo 1)"
check "the reconcile-due cycle observes costs with one statement, and acts on nothing" \
    "$([ "${cobs[after_due]}" = True ] && [ "$cost_calls" = 1 ] && [ "${cacts[after_due]} ${cplan[after_due]}" = "0 0" ] &&
       [ "${cobs[after_noop]}" = False ] && echo 0 || echo 1)"

# ==== 8. policy lab (issue 15) =========================================================================
log "bench: 8. policy lab (orchestrator simulate)"
ORCH_BINARY="$bin" bash "$root/scripts/bench_simulate.sh" $([ "$smoke" = 1 ] && echo --smoke) ||
    smoke_failures=$((smoke_failures + 1))

fi # --gateway-only
# ---- 6. The worker gateway (issue 13) ---------------------------------------------------------
# claims/s and latency through `orchestrator gateway` against the direct SQL claim, at 1, 16 and
# 64 concurrent claimers on the same run (alternating, a fresh queue before each measurement);
# then the gateway's peak RSS while 64 workers poll as the reference worker does.
claim_bench=$(dirname "$bin")/claim_bench
[ -x "$claim_bench" ] || die "no $claim_bench: build the claim_bench target next to the binary"
log "bench: 6. the worker gateway (${gw_secs}s per measurement)"
sql postgres "DO \$\$ BEGIN CREATE ROLE orch_bench_gw LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END \$\$" >/dev/null
sql postgres "GRANT orchestrator_worker TO orch_bench_gw" >/dev/null 2>&1
fresh_db bench_gw
gw_url_db="postgresql:///bench_gw?host=$PGHOST&port=$PGPORT&user=orch_bench_gw"
gw_secret=bench-gateway-secret-0123456789abcdef01234
sql bench_gw "INSERT INTO workers (id, status) SELECT 'gpu-bench-' || i, 'spawning' FROM generate_series(1, 64) i;
              UPDATE workers SET status = 'active'" >/dev/null
"$py" - "$gw_secret" >"$tmp/gw_workers" <<'PY'
import base64, hashlib, hmac, json, sys, time
b = lambda x: base64.urlsafe_b64encode(x).rstrip(b"=").decode()
for i in range(1, 65):
    w = "gpu-bench-%d" % i
    h = b(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    p = b(json.dumps({"sub": w, "use": "worker", "iat": int(time.time())}).encode())
    s = b(hmac.new(sys.argv[1].encode(), (h + "." + p).encode(), hashlib.sha256).digest())
    print(w, h + "." + p + "." + s)
PY
# Every simulated worker connects from 127.0.0.1, as a fleet behind one proxy would: no
# per-address connection limit (GATEWAY_MAX_CONNECTIONS_PER_IP, structure_docs/gateway.md).
env -i PATH="$PATH" GATEWAY_DATABASE_URL="$gw_url_db" GATEWAY_JWT_SECRET="$gw_secret" \
    GATEWAY_BIND_ADDRESS=127.0.0.1 STORAGE_DIR="$tmp/gw_storage" LOG_FORMAT=json LOG_LEVEL=INFO \
    GATEWAY_MAX_CONNECTIONS_PER_IP=256 \
    "$bin" gateway --port 0 2>"$tmp/gw.log" &
gw_pid=$!
for _ in $(seq 100); do grep -q '"gateway.start"' "$tmp/gw.log" 2>/dev/null && break; sleep 0.1; done
gw_port=$(grep '"gateway.start"' "$tmp/gw.log" | jpy 'd["port"]') || { cat "$tmp/gw.log" >&2; die "the gateway did not start"; }
gw_base="http://127.0.0.1:$gw_port"
reset_queue() { # reset_queue N: N fresh claimable tasks, nothing held
    sql bench_gw "TRUNCATE tasks; INSERT INTO tasks (task_type, params)
                  SELECT 't2v', jsonb_build_object('i', i) FROM generate_series(1, $1) i" >/dev/null
    sql bench_gw "VACUUM ANALYZE tasks" >/dev/null
}
: >"$tmp/gw_lines"
for c in 1 16 64; do
    for mode in sql http; do
        reset_queue "$gw_tasks"
        if [ "$mode" = sql ]; then
            out=$("$claim_bench" --mode sql --dsn "$gw_url_db" --workers "$tmp/gw_workers" \
                --concurrency "$c" --duration "$gw_secs") || die "claim_bench $mode $c failed: $out"
        else
            out=$("$claim_bench" --mode http --url "$gw_base" --workers "$tmp/gw_workers" \
                --concurrency "$c" --duration "$gw_secs") || die "claim_bench $mode $c failed: $out"
        fi
        held=$(sql bench_gw "SELECT count(*) FROM tasks WHERE status = 'In Progress'")
        claims=$(sed -n 's/.* claims=\([0-9]*\) .*/\1/p' <<<"$out")
        echo "$out held=$held" >>"$tmp/gw_lines"
        check "gateway: $mode x$c claimed ($claims) = tasks held ($held), no errors" \
            "$([ "$claims" -gt 0 ] && [ "$claims" = "$held" ] && grep -q 'errors=0' <<<"$out" && echo 0 || echo 1)"
    done
done
reset_queue 0
rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$gw_pid/status")
# Reset the peak (VmHWM) so it covers the polling alone (Linux clear_refs 5; needs the same
# user as the gateway, which we are).
hwm_reset=no
echo 5 >"/proc/$gw_pid/clear_refs" 2>/dev/null && hwm_reset=yes
poll_out=$("$claim_bench" --mode poll --url "$gw_base" --workers "$tmp/gw_workers" \
    --concurrency 64 --duration "$gw_secs") || die "claim_bench poll failed: $poll_out"
rss_peak=$(awk '/VmHWM/ {print $2}' "/proc/$gw_pid/status")
gw_threads=$(awk '/Threads/ {print $2}' "/proc/$gw_pid/status")
kill "$gw_pid" 2>/dev/null || true
wait "$gw_pid" 2>/dev/null || true
echo
echo "== 6. The worker gateway: claim-next-task through the gateway vs func_claim_next_task over SQL"
echo "   (${gw_secs} s each, a fresh queue of $gw_tasks tasks before each; both as a role holding only"
echo "   orchestrator_worker; gateway pool GATEWAY_DB_POOL_SIZE=8; load generator on the same 2 cores)"
printf '   %-5s %-11s | %-11s %-8s %-8s | %-11s %-8s %-8s | %s\n' claimers sql_claims/s p50_ms p99_ms "" gw_claims/s p50_ms p99_ms "gw/sql"
for c in 1 16 64; do
    s=$(grep "mode=sql concurrency=$c " "$tmp/gw_lines")
    g=$(grep "mode=http concurrency=$c " "$tmp/gw_lines")
    f() { sed -n "s/.* $2=\([0-9.]*\).*/\1/p" <<<"$1"; }
    ratio=$(awk -v a="$(f "$g" claims_per_sec)" -v b="$(f "$s" claims_per_sec)" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
    printf '   %-8s %-11s | %-11s %-8s %-8s | %-11s %-8s %-8s | %s\n' "$c" "$(f "$s" claims_per_sec)" \
        "$(f "$s" p50_ms)" "$(f "$s" p99_ms)" "" "$(f "$g" claims_per_sec)" "$(f "$g" p50_ms)" \
        "$(f "$g" p99_ms)" "$ratio"
    [ "$c" = 64 ] && { gw_ratio64=$ratio; gw_p99_64=$(f "$g" p99_ms); }
done
echo "   64 workers polling (lost-claim GET + task-counts + claim, a heartbeat a second, empty queue):"
echo "   $poll_out"
echo "   gateway RSS: $(mib "$rss_before") MiB before polling, peak while polling (VmHWM, reset before: $hwm_reset) $(mib "$rss_peak") MiB; threads at the end: $gw_threads"
echo "   targets at 64 claimers: throughput >= 0.5x SQL: ${gw_ratio64}x;" \
    "p99 < 100 ms: ${gw_p99_64} ms; peak RSS < 32 MiB: $(mib "$rss_peak") MiB"
check "gateway: 64 pollers without errors" "$(grep -q 'errors=0' <<<"$poll_out" && echo 0 || echo 1)"

echo
if [ "$smoke_failures" -gt 0 ]; then
    echo "bench: $smoke_failures correctness check(s) failed"
    exit 1
fi
echo "bench: all correctness checks passed"
