#!/usr/bin/env bash
# simulate_test.sh: the contract of `orchestrator simulate` (issue 15) -- exit codes, the
# environment it needs (none, except --from-db), --set over --compare files over the process
# environment, byte-identical reports for the same seed, --json, --export-trace round trips,
# trace file errors, and --from-db against a recorded history. Needs ORCH_BINARY; the --from-db
# checks need PGHOST/PGPORT/PGUSER and ORCH_TEST_TEMPLATE_DB (scripts/test.sh provides them).
set -uo pipefail
bin=${ORCH_BINARY:?ORCH_BINARY is not set}
py=/usr/bin/python3
pass=0
fail=0
tmp=$(mktemp -d)
db=""
cleanup() {
    [ -n "$db" ] && dropdb --if-exists "$db" >/dev/null 2>&1
    rm -rf "$tmp"
}
trap cleanup EXIT

check() { # name, condition result (0 = ok)
    if [ "$2" -eq 0 ]; then pass=$((pass + 1)); echo "ok - $1"; else fail=$((fail + 1)); echo "not ok - $1"; fi
}
run() { # captures stdout, stderr, rc of "$@"
    "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    rc=$?
}
clean=(env -i PATH="$PATH" HOME="${HOME:-/root}")
sim=("${clean[@]}" "$bin" simulate)

# ---- usage and configuration errors ---------------------------------------------------------
run "${clean[@]}" "$bin" simulate --help
check "simulate --help exits 0 and names the sources" $([ $rc -eq 0 ] && grep -q -- '--generate' "$tmp/out" && grep -q -- '--from-db' "$tmp/out"; echo $?)
run "${sim[@]}"
check "no trace source exits 2" $([ $rc -eq 2 ] && grep -q 'exactly one of' "$tmp/err"; echo $?)
run "${sim[@]}" --generate steady --trace x.csv
check "two trace sources exit 2" $([ $rc -eq 2 ]; echo $?)
run "${sim[@]}" --generate lumpy
check "an unknown generator exits 2 naming it" $([ $rc -eq 2 ] && grep -q 'lumpy' "$tmp/err"; echo $?)
run "${sim[@]}" --generate steady --set NOEQUALS
check "--set without = exits 2" $([ $rc -eq 2 ]; echo $?)
run "${sim[@]}" --generate steady --bogus
check "an unknown flag exits 2" $([ $rc -eq 2 ] && grep -q -- "--bogus" "$tmp/err"; echo $?)
run "${sim[@]}" --generate steady --set MAX_ACTIVE_GPUS=abc --set SIM_POLICY=magic
check "bad settings exit 3 naming each" $([ $rc -eq 3 ] && grep -q 'MAX_ACTIVE_GPUS' "$tmp/err" && grep -q 'SIM_POLICY' "$tmp/err"; echo $?)
run "${sim[@]}" --trace "$tmp/missing.csv"
check "a missing trace file exits 2" $([ $rc -eq 2 ] && grep -q 'cannot open' "$tmp/err"; echo $?)
printf 'arrival,duration\n1,5\nsoon,5\n' >"$tmp/bad.csv"
run "${sim[@]}" --trace "$tmp/bad.csv"
check "a malformed trace exits 2 naming the line" $([ $rc -eq 2 ] && grep -q 'line 3' "$tmp/err"; echo $?)

# ---- a run needs neither DATABASE_URL nor RUNPOD_API_KEY; the report is deterministic -------
run "${sim[@]}" --generate bursty --seed 5 --set SIM_BOOT_SIGMA=0.5 --set SIM_NO_CAPACITY=0.2
check "a generated run exits 0 with an empty environment" $([ $rc -eq 0 ] && grep -q 'clairvoyant bound' "$tmp/out"; echo $?)
cp "$tmp/out" "$tmp/a.txt"
run "${sim[@]}" --generate bursty --seed 5 --set SIM_BOOT_SIGMA=0.5 --set SIM_NO_CAPACITY=0.2
check "same seed and inputs: byte-identical report" $(cmp -s "$tmp/out" "$tmp/a.txt"; echo $?)
run "${sim[@]}" --generate bursty --seed 6 --set SIM_BOOT_SIGMA=0.5 --set SIM_NO_CAPACITY=0.2
check "another seed: another report" $(! cmp -s "$tmp/out" "$tmp/a.txt"; echo $?)
run "${sim[@]}" --generate diurnal --seed 2 --json
cp "$tmp/out" "$tmp/a.json"
run "${sim[@]}" --generate diurnal --seed 2 --json
check "same seed: byte-identical JSON" $(cmp -s "$tmp/out" "$tmp/a.json"; echo $?)
check "--json: every run, the bound and the fixed fleet, totals = sum of pools" $("$py" - "$tmp/a.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
r = d["runs"][0]
ok = d["trace"]["tasks"] > 1000 and r["total"]["completed"] == d["trace"]["tasks"]
for k in ("usd", "busy_usd", "pods_created", "cold_starts"):
    ok = ok and abs(r["total"][k] - sum(p[k] for p in r["pools"])) < 1e-3
ok = ok and d["clairvoyant"]["total"]["busy_usd"] > 0 and d["fixed_max"]["total"]["peak_fleet"] == 10
ok = ok and r["total"]["wait_p50_sec"] <= r["total"]["wait_p95_sec"] <= r["total"]["wait_p99_sec"] <= r["total"]["wait_max_sec"]
sys.exit(0 if ok else 1)
PY
echo $?)

# ---- --compare files, --set over them, the process environment under them -----------------
printf '# the KEDA rule\nSIM_POLICY=keda\n' >"$tmp/keda.env"
printf 'export ADAPTIVE_IDLE_GRACE="true"\n' >"$tmp/grace.env"
: >"$tmp/default.env"
run env -i PATH="$PATH" MIN_ACTIVE_GPUS=0 "$bin" simulate --generate sparse --seed 1 \
    --compare "$tmp/default.env" "$tmp/keda.env" "$tmp/grace.env" --json
check "--compare runs each file" $("$py" -c '
import json, sys
d = json.load(open(sys.argv[1]))
got = [(r["label"], r["policy"]) for r in d["runs"]]
sys.exit(0 if got == [("default", "planner"), ("keda", "keda"), ("grace", "planner+grace")] else 1)
' "$tmp/out"; echo $?)
check "the process environment applies under the files (MIN_ACTIVE_GPUS=0: fleet empties)" $("$py" -c '
import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if all(r["total"]["cold_starts"] > 0 for r in d["runs"]) else 1)
' "$tmp/out"; echo $?)
run "${sim[@]}" --generate sparse --seed 1 --compare "$tmp/keda.env" --set SIM_POLICY=legacy --json
check "--set wins over a --compare file" $("$py" -c '
import json, sys
sys.exit(0 if json.load(open(sys.argv[1]))["runs"][0]["policy"] == "legacy" else 1)' "$tmp/out"; echo $?)
printf 'MIN_ACTIVE_GPUS\n' >"$tmp/broken.env"
run "${sim[@]}" --generate sparse --compare "$tmp/broken.env"
check "a malformed env file exits 2 naming the line" $([ $rc -eq 2 ] && grep -q 'broken.env line 1' "$tmp/err"; echo $?)

# ---- --export-trace round trip --------------------------------------------------------------
run "${sim[@]}" --generate steady --seed 9 --days 0.25 --json --export-trace "$tmp/t.csv"
cp "$tmp/out" "$tmp/gen.json"
run "${sim[@]}" --trace "$tmp/t.csv" --seed 9 --json # --seed also seeds the simulated RunPod
check "an exported trace replays to the same figures" $("$py" - "$tmp/gen.json" "$tmp/out" <<'PY'
import json, sys
a, b = (json.load(open(f)) for f in sys.argv[1:3])
ra, rb = a["runs"][0]["total"], b["runs"][0]["total"]
same = all(ra[k] == rb[k] for k in ("completed", "pods_created", "cold_starts", "wait_p95_sec", "peak_fleet"))
sys.exit(0 if same and a["trace"]["tasks"] == b["trace"]["tasks"] else 1)
PY
echo $?)

# ---- --from-db -------------------------------------------------------------------------------
run "${sim[@]}" --from-db
check "--from-db without DATABASE_URL exits 3" $([ $rc -eq 3 ] && grep -q DATABASE_URL "$tmp/err"; echo $?)
if [ -z "${PGHOST:-}" ] || [ -z "${ORCH_TEST_TEMPLATE_DB:-}" ]; then
    echo "not ok - PGHOST / ORCH_TEST_TEMPLATE_DB not set: run through scripts/test.sh"
    fail=$((fail + 1))
else
    db="sim_cli_$$"
    createdb -T "$ORCH_TEST_TEMPLATE_DB" "$db"
    url="postgresql:///$db?host=$PGHOST&port=${PGPORT:-5432}&user=${PGUSER:-postgres}"
    run "${clean[@]}" DATABASE_URL="$url" "$bin" simulate --from-db --since 1h
    check "--from-db with no task in the window exits 2" $([ $rc -eq 2 ] && grep -q 'no task was created' "$tmp/err"; echo $?)
    # A recorded history: one worker live at the first task (MIN), one created for the burst
    # (promoted 40 s after creation), 16 tasks of 3 s completed over a minute.
    psql -q -X -v ON_ERROR_STOP=1 -d "$db" -c "
INSERT INTO workers (id, status, pool, created_at, gpu_type, cost_per_hr) VALUES
  ('gpu-20250101_000000-00000001', 'spawning', 'default', now() - interval '20 minutes',
   'NVIDIA GeForce RTX 4090', 0.69),
  ('gpu-20250101_000000-00000002', 'spawning', 'default', now() - interval '9 minutes',
   'NVIDIA GeForce RTX 4090', 0.69);
UPDATE workers SET status = 'active', promoted_at = created_at + interval '40 seconds';
UPDATE workers SET status = 'terminating' WHERE id LIKE '%2';
INSERT INTO tasks (task_type, status, created_at, generation_started_at, generation_processed_at)
SELECT 'demo', 'Complete', now() - interval '10 minutes' + make_interval(secs => i),
       now() - interval '10 minutes' + make_interval(secs => i * 5),
       now() - interval '10 minutes' + make_interval(secs => i * 5 + 3)
  FROM generate_series(1, 16) i;" >/dev/null
    run "${clean[@]}" DATABASE_URL="$url" MIN_ACTIVE_GPUS=1 ORCHESTRATOR_POLL_SEC=2 \
        SIM_CRASH_AT_START=0 SIM_NO_CAPACITY=0 "$bin" simulate --from-db --since 1h --json \
        --export-trace "$tmp/db.csv"
    check "--from-db exits 0" $([ $rc -eq 0 ]; echo $?)
    cat "$tmp/err"
    check "--from-db: the recorded run next to the simulated one" $("$py" - "$tmp/out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
rec, run = d["recorded"], d["runs"][0]
ok = d["trace"]["tasks"] == 16 and rec["completed"] == 16 and rec["pods_created"] == 1
ok = ok and rec["peak_fleet"] == 2 and abs(rec["wait_max_sec"] - 64) < 1.5
ok = ok and run["total"]["completed"] == 16 and run["calibration"]["tasks_compared"] == 16
# the cold start measured: promoted 40 s after creation, less half the 2 s poll
g = rec["gpu_types"]
ok = ok and len(g) == 1 and abs(g[0]["boot_median_sec"] - 39) < 0.5 and g[0]["boots"] == 2
sys.exit(0 if ok else 1)
PY
echo $?)
    check "--from-db: the exported trace holds the recorded durations" $(grep -c ',demo,3.000,ok$' "$tmp/db.csv" | grep -qx 16; echo $?)
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
