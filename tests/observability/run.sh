#!/usr/bin/env bash
# run.sh: the Grafana dashboard, the recording rules and the alerts (issue 17; ctest
# `observability`).
#
#   1. A real run makes the metrics: `single` (not SAFE_MODE: the cost observation writes its
#      watermark) against the fake RunPod and a database with a completed task, a run type no
#      pool serves and a due reconcile, writing METRICS_FILE. promtool check metrics on it.
#   2. promtool check rules on deployment/prometheus/{recording_rules,alerts}.yml.
#   3. promtool test rules tests/observability/alerts_test.yml (every alert fires and does not).
#   4. dashboard_test.py against that metrics file (see its header).
#   5. Self-tests, so the checks above are seen to bite: a dashboard naming a metric the
#      orchestrator does not export, a panel query that is no recording rule, and an alert
#      whose threshold moved (80 % -> 95 % of the cap) must each fail.
#
# Needs ORCH_BINARY, promtool (Debian package `prometheus`), python3 with yaml. Uses
# PGHOST/ORCH_TEST_TEMPLATE_DB from scripts/test.sh when set, otherwise starts its own
# PostgreSQL. Prints "N passed, M failed".
set -uo pipefail
bin=${ORCH_BINARY:?ORCH_BINARY is not set}
root=${ORCH_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
py=/usr/bin/python3
here="$root/tests/observability"
pass=0
fail=0
tmp=$(mktemp -d /tmp/orch-obs.XXXXXX)
chmod 755 "$tmp"
own_pg=0
db=""
fake=""

check() { # name, condition result (0 = ok)
    if [ "$2" -eq 0 ]; then pass=$((pass + 1)); echo "ok - $1"; else fail=$((fail + 1)); echo "not ok - $1"; fi
}
cleanup() {
    if [ -n "$fake" ]; then kill "$fake" 2>/dev/null; wait "$fake" 2>/dev/null; fi
    if [ -n "$db" ]; then dropdb --force "$db" >/dev/null 2>&1 || true; fi
    if [ $own_pg -eq 1 ]; then "$root/scripts/pg-local.sh" stop "$tmp/pg" >/dev/null 2>&1 || true; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

command -v promtool >/dev/null 2>&1 ||
    { echo "not ok - promtool is not installed: run scripts/install-deps.sh (package prometheus)"; echo "0 passed, 1 failed"; exit 1; }

# ---------------------------------------------------------------------------------------------
# 1. A real run's metrics
if [ -z "${PGHOST:-}" ]; then
    eval "$("$root/scripts/pg-local.sh" start "$tmp/pg")" || { echo "not ok - could not start PostgreSQL"; echo "0 passed, 1 failed"; exit 1; }
    export PGHOST PGPORT PGUSER
    own_pg=1
fi
db="obs_$$"
url="postgresql:///$db?host=$PGHOST&port=${PGPORT:-5432}&user=${PGUSER:-postgres}"
if [ $own_pg -eq 1 ]; then
    createdb "$db" && DATABASE_URL="$url" "$bin" migrate >/dev/null 2>"$tmp/migrate.err"
else
    createdb -T "${ORCH_TEST_TEMPLATE_DB:-orch_tpl}" "$db"
fi
check "a migrated database $db" $?
# A worker that ran 2 h at $0.72/h and completed two tasks in the last minutes, a queued task of
# a run type no pool serves, a GPU type in capacity backoff, and a reconcile due.
psql -qAt -d "$db" -v ON_ERROR_STOP=1 -c "
    INSERT INTO workers (id, status, cost_per_hr) VALUES ('gpu-obs-1', 'spawning', 0.72);
    UPDATE workers SET status = 'active' WHERE id = 'gpu-obs-1';
    UPDATE workers SET status = 'terminating' WHERE id = 'gpu-obs-1';
    UPDATE workers SET status = 'terminated' WHERE id = 'gpu-obs-1';
    UPDATE workers SET created_at = now() - interval '2 hours' WHERE id = 'gpu-obs-1';
    INSERT INTO tasks (task_type, status, worker_id, generation_started_at, generation_processed_at)
      VALUES ('render', 'Complete', 'gpu-obs-1', now() - interval '3 min', now() - interval '1 min'),
             ('upscale', 'Complete', 'gpu-obs-1', now() - interval '90 s', now() - interval '30 s');
    INSERT INTO tasks (task_type, run_type) VALUES ('speak', 'audio');
    INSERT INTO gpu_capacity_backoff (gpu_type, failures, last_failure_at, backoff_until)
      VALUES ('NVIDIA A40', 1, now(), now() + interval '5 min');
    UPDATE orchestrator_state SET last_reconcile_at = now() - interval '1 hour'" >/dev/null
check "seeded: completed tasks, an unserved run type, a backoff, a due reconcile" $?
"$py" "$root/tests/fakes/fake_runpod.py" --port 0 --port-file "$tmp/fake.port" --api-key obs-key \
    --parent-pid $$ >"$tmp/fake.log" 2>&1 &
fake=$!
for _ in $(seq 100); do [ -s "$tmp/fake.port" ] && break; sleep 0.1; done
check "the fake RunPod is up" $([ -s "$tmp/fake.port" ]; echo $?)
prom="$tmp/orchestrator.prom"
env DATABASE_URL="$url" RUNPOD_API_KEY=obs-key RUNPOD_API_BASE_URL="http://127.0.0.1:$(cat "$tmp/fake.port" 2>/dev/null)" \
    MIN_ACTIVE_GPUS=0 MAX_HOURLY_SPEND_USD=20 METRICS_FILE="$prom" LOG_LEVEL=WARNING \
    "$bin" single >"$tmp/single.json" 2>"$tmp/single.err"
rc=$?
check "single writes the metrics file (exit $rc)" $([ $rc -eq 0 ] && [ -s "$prom" ]; echo $?)
check "  ...its summary has the task cost it observed (2 tasks, \$0.036)" $("$py" - "$tmp/single.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))["task_cost"]
assert c["observed"] and c["tasks"] == 2 and abs(c["task_cost_usd"] - 0.036) < 1e-9, c
assert {x["task_type"] for x in c["by_type"]} == {"render", "upscale"}, c
PY
echo $?)
promtool check metrics <"$prom" >"$tmp/lint.out" 2>&1
check "promtool check metrics accepts it, no lint findings" $([ $? -eq 0 ] && [ ! -s "$tmp/lint.out" ]; echo $?)
sed 's/^/  | /' "$tmp/lint.out"
check "  ...with the histogram, the reconcile findings, the caps and the unserved run type" \
    $(grep -q '^gpu_orchestrator_task_cost_usd_bucket{pool="default",task_type="render",le="0.025"} 1$' "$prom" &&
      grep -q '^gpu_orchestrator_task_cost_usd_count{pool="default",task_type="upscale"} 1$' "$prom" &&
      grep -q '^gpu_orchestrator_pods_leaked{grace="past"} 0$' "$prom" &&
      grep -q '^gpu_orchestrator_spend_cap_per_hour_usd{pool="default"} 20$' "$prom" &&
      grep -q '^gpu_orchestrator_gpu_types_backed_off 1$' "$prom" &&
      grep -q '^gpu_orchestrator_tasks_unserved{run_type="audio"} 1$' "$prom"; echo $?)

# ---------------------------------------------------------------------------------------------
# 2-4. Rules, alert tests, the dashboard
for f in recording_rules alerts; do
    promtool check rules "$root/deployment/prometheus/$f.yml" >"$tmp/rules.out" 2>&1
    check "promtool check rules deployment/prometheus/$f.yml" $?
    grep -i 'warn\|error' "$tmp/rules.out" | sed 's/^/  | /'
done
(cd "$here" && promtool test rules alerts_test.yml) >"$tmp/test.out" 2>&1
rc=$?
check "promtool test rules tests/observability/alerts_test.yml" $rc
[ $rc -ne 0 ] && sed 's/^/  | /' "$tmp/test.out"
"$py" "$here/dashboard_test.py" --root "$root" --metrics "$prom" >"$tmp/dash.out" 2>&1
rc=$?
grep -v -E '^[0-9]+ passed, [0-9]+ failed$' "$tmp/dash.out"
read -r p _ f _ < <(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$tmp/dash.out" | tail -n 1 || echo "0 passed 1 failed")
pass=$((pass + ${p:-0}))
fail=$((fail + ${f:-1}))
[ $rc -ne 0 ] && [ "${f:-0}" -eq 0 ] && { fail=$((fail + 1)); echo "not ok - dashboard_test.py exited $rc"; }

# ---------------------------------------------------------------------------------------------
# 5. The checks bite
mutant() { # name, file to copy, sed expression, then the command (with @FILE@) that must fail
    local name=$1 file=$2 expr=$3
    shift 3
    local copy="$tmp/mutant.${file##*.}"
    sed "$expr" "$file" >"$copy"
    if cmp -s "$file" "$copy"; then
        check "self-test '$name': the mutation applies" 1
        return
    fi
    local cmd=("${@//@FILE@/$copy}")
    "${cmd[@]}" >"$tmp/mutant.out" 2>&1
    check "self-test '$name': caught" $([ $? -ne 0 ]; echo $?)
}
mutant "a panel names a metric that is not exported" "$root/deployment/grafana/orchestrator.json" \
    's/gpu_orchestrator_queue_oldest_task_age_seconds{pool/gpu_orchestrator_queue_oldest_age_seconds{pool/' \
    "$py" "$here/dashboard_test.py" --root "$root" --metrics "$prom" --dashboard @FILE@
mutant "a panel query that is no recording rule" "$root/deployment/grafana/orchestrator.json" \
    's/increase(gpu_orchestrator_pods_created_total{pool=~\\"$pool\\"}\[15m\])/rate(gpu_orchestrator_pods_created_total{pool=~\\"$pool\\"}[15m])/' \
    "$py" "$here/dashboard_test.py" --root "$root" --metrics "$prom" --dashboard @FILE@
mutant "a selector on a label value that is not exported" "$root/deployment/prometheus/alerts.yml" \
    's/pods_leaked{grace="past"}/pods_leaked{grace="expired"}/' \
    "$py" "$here/dashboard_test.py" --root "$root" --metrics "$prom" --alerts @FILE@
cp "$root/deployment/prometheus/alerts.yml" "$tmp/alerts.orig"
mutant "the spend alert's threshold moved from 80 % to 95 %" "$root/deployment/prometheus/alerts.yml" \
    's/> 0\.8 \*/> 0.95 */g' \
    bash -c "mkdir -p '$tmp/m/deployment/prometheus' '$tmp/m/tests/observability' &&
             cp @FILE@ '$tmp/m/deployment/prometheus/alerts.yml' &&
             cp '$here/alerts_test.yml' '$tmp/m/tests/observability/' &&
             cd '$tmp/m/tests/observability' && promtool test rules alerts_test.yml"

if [ $fail -ne 0 ]; then
    echo "--- single stderr (tail)"; tail -n 20 "$tmp/single.err" 2>/dev/null
fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
