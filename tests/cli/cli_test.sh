#!/usr/bin/env bash
# cli_test.sh: the command line's contract -- exit codes, help, config validation and
# redaction, and `continuous` stopping cleanly on SIGTERM and surviving a database outage.
# Needs ORCH_BINARY; the database checks need PGHOST/PGPORT/PGUSER and ORCH_TEST_TEMPLATE_DB
# (scripts/test.sh provides them). A missing server fails the run.
set -uo pipefail
bin=${ORCH_BINARY:?ORCH_BINARY is not set}
pass=0
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

check() { # name, condition result (0 = ok)
    if [ "$2" -eq 0 ]; then pass=$((pass + 1)); echo "ok - $1"; else fail=$((fail + 1)); echo "not ok - $1"; fi
}
run() { # captures stdout, stderr, rc of "$@" (env may be set by the caller with env ...)
    "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
    rc=$?
}
clean_env=(env -i PATH="$PATH" HOME="${HOME:-/root}")

run "${clean_env[@]}" "$bin" version
check "version exits 0 and names the program" $([ $rc -eq 0 ] && grep -q '^orchestrator ' "$tmp/out"; echo $?)
run "${clean_env[@]}" "$bin" --help
check "--help exits 0 and lists single" $([ $rc -eq 0 ] && grep -q 'single' "$tmp/out"; echo $?)
run "${clean_env[@]}" "$bin" single --help
check "single --help exits 0" $([ $rc -eq 0 ] && grep -q 'usage: orchestrator single' "$tmp/out"; echo $?)
run "${clean_env[@]}" "$bin" help config
check "help config lists every variable" $([ $rc -eq 0 ] && grep -q 'MAX_HOURLY_SPEND_USD' "$tmp/out"; echo $?)
run "${clean_env[@]}" "$bin"
check "no command at all exits 2 with a usage line on stderr" $([ $rc -eq 2 ] && grep -q 'usage: orchestrator COMMAND' "$tmp/err" && grep -q 'no command given' "$tmp/err"; echo $?)
run "${clean_env[@]}" "$bin" frobnicate
check "unknown command exits 2 with a message" $([ $rc -eq 2 ] && grep -q "unknown command 'frobnicate'" "$tmp/err"; echo $?)
run "${clean_env[@]}" "$bin" single --bogus
check "unknown flag exits 2" $([ $rc -eq 2 ] && grep -q "unknown argument '--bogus'" "$tmp/err"; echo $?)
run "${clean_env[@]}" "$bin" continuous --interval 0
check "bad --interval exits 2" $([ $rc -eq 2 ]; echo $?)

run "${clean_env[@]}" MAX_ACTIVE_GPUS=abc MIN_ACTIVE_GPUS=-1 "$bin" config
check "MAX_ACTIVE_GPUS=abc MIN_ACTIVE_GPUS=-1 config exits 3" $([ $rc -eq 3 ]; echo $?)
check "  ...naming MAX_ACTIVE_GPUS" $(grep -q 'MAX_ACTIVE_GPUS: expected integer in \[0, 1000\]' "$tmp/err"; echo $?)
check "  ...and MIN_ACTIVE_GPUS" $(grep -q 'MIN_ACTIVE_GPUS: expected integer in \[0, 1000\]' "$tmp/err"; echo $?)
cat "$tmp/err"

run "${clean_env[@]}" "$bin" single
check "single without DATABASE_URL/RUNPOD_API_KEY exits 3 naming both" $([ $rc -eq 3 ] && grep -q DATABASE_URL "$tmp/err" && grep -q RUNPOD_API_KEY "$tmp/err"; echo $?)

run "${clean_env[@]}" DATABASE_URL='postgresql://orch:pw-CLI-SECRET@db/app' RUNPOD_API_KEY=rk-CLI-SECRET \
    WORKER_ENV_HF_TOKEN=hf-CLI-SECRET "$bin" config --json
check "config --json exits 0 and is JSON" $([ $rc -eq 0 ] && /usr/bin/python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$tmp/out"; echo $?)
check "config --json hides every secret" $(! grep -q 'CLI-SECRET' "$tmp/out" "$tmp/err"; echo $?)
check "config --json shows the redacted URL" $(grep -q 'postgresql://orch:\*\*\*@db/app' "$tmp/out"; echo $?)

run "${clean_env[@]}" DATABASE_URL='postgresql:///nodb?host=/nonexistent' SAFE_MODE=true "$bin" single
check "unreachable database exits 4" $([ $rc -eq 4 ] && grep -q 'db.connect_failed' "$tmp/err"; echo $?)

# With the test server: continuous survives an outage and stops on SIGTERM.
if [ -z "${PGHOST:-}" ]; then
    echo "not ok - PGHOST is not set: run through scripts/test.sh"
    fail=$((fail + 1))
else
    db="cli_$$"
    createdb -T "${ORCH_TEST_TEMPLATE_DB:-orch_tpl}" "$db"
    url="postgresql:///$db?host=$PGHOST&port=${PGPORT:-5432}&user=${PGUSER:-postgres}"
    # SAFE_MODE writes nothing, migrations included: it names what would be applied.
    fresh="cli_fresh_$$"
    createdb "$fresh"
    furl="postgresql:///$fresh?host=$PGHOST&port=${PGPORT:-5432}&user=${PGUSER:-postgres}"
    run env DATABASE_URL="$furl" SAFE_MODE=true "$bin" migrate
    tables=$(psql -qAt -d "$fresh" -c "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
    check "SAFE_MODE migrate exits 0, lists the pending migrations and creates nothing" \
        $([ $rc -eq 0 ] && [ "$tables" = 0 ] && grep -q '"safe_mode":true' "$tmp/out" && grep -q '0001_schema' "$tmp/out"; echo $?)
    run env DATABASE_URL="$url" SAFE_MODE=true "$bin" migrate
    check "SAFE_MODE migrate on a migrated database: nothing pending" \
        $([ $rc -eq 0 ] && grep -q '"pending":\[\]' "$tmp/out"; echo $?)
    dropdb "$fresh"

    run env DATABASE_URL="$url" SAFE_MODE=true "$bin" single
    check "SAFE_MODE single without an API key exits 0 with a dry-run summary" \
        $([ $rc -eq 0 ] && /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["dry_run"] and d["safe_mode"] else 1)' "$tmp/out"; echo $?)

    env DATABASE_URL="$url" SAFE_MODE=true LOG_LEVEL=DEBUG "$bin" continuous --interval 1 \
        >"$tmp/cont.out" 2>"$tmp/cont.err" &
    pid=$!
    sleep 2.5
    # Kill the orchestrator's connections: the loop must log the failure and carry on.
    psql -qAt -d postgres -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                              WHERE datname = '$db' AND application_name = 'orchestrator'" >/dev/null
    sleep 2.5
    kill -TERM $pid
    waited=0
    while kill -0 $pid 2>/dev/null && [ $waited -lt 50 ]; do sleep 0.1; waited=$((waited + 1)); done
    wait $pid
    rc=$?
    cycles=$(grep -c '"event":"cycle.end"' "$tmp/cont.err")
    check "continuous exits 0 within 5 s of SIGTERM" $([ $rc -eq 0 ] && [ $waited -lt 50 ]; echo $?)
    check "continuous ran several cycles ($cycles)" $([ "$cycles" -ge 3 ]; echo $?)
    check "continuous logged loop.stop" $(grep -q '"event":"loop.stop"' "$tmp/cont.err"; echo $?)
    fail_line=$(grep -n '"event":"db.reconnect"\|"event":"loop.cycle_failed"' "$tmp/cont.err" | head -n 1 | cut -d: -f1)
    ok_line=$(grep -n '"event":"cycle.end".*"status":"ok"' "$tmp/cont.err" | tail -n 1 | cut -d: -f1)
    check "continuous noticed the lost connection (db.reconnect or loop.cycle_failed)" $([ -n "$fail_line" ]; echo $?)
    check "continuous ran a good cycle after it (reconnected)" \
        $([ -n "$fail_line" ] && [ -n "$ok_line" ] && [ "$ok_line" -gt "$fail_line" ]; echo $?)
    dropdb --force "$db"
fi

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
