#!/usr/bin/env bash
# run.sh: the worker gateway's tests (tests/gateway/test_*.py) against the real binary.
# Registered with ctest as gateway_api, gateway_supabase_js and gateway_s3; by hand:
#
#   tests/gateway/run.sh test_gateway          the routes, the refusals, a database restart
#   tests/gateway/run.sh test_supabase_js      @supabase/supabase-js as the client
#   tests/gateway/run.sh test_s3               STORAGE_BACKEND=s3 against a real s3rver
#
# Uses the PostgreSQL named by PGHOST/PGPORT/PGUSER and the template ORCH_TEST_TEMPLATE_DB when
# scripts/test.sh provides them; otherwise starts a private server and migrates a template.
# The npm packages (tests/gateway/package.json, exact versions, package-lock.json) are
# installed with `npm ci` into the build directory (<build>/npm-gateway), once per lock file.
# A missing PostgreSQL, Node.js or npm fails the run; nothing is skipped.
set -euo pipefail

root=${ORCH_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export ORCH_SOURCE_DIR=$root
export ORCH_BINARY=$(readlink -f "${ORCH_BINARY:-$root/build/orchestrator}")
PY=/usr/bin/python3
here=$root/tests/gateway
fail() { echo "gateway: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

[ -x "$ORCH_BINARY" ] || fail "orchestrator binary not found at $ORCH_BINARY"
[ $# -ge 1 ] || fail "name the test module(s), e.g. test_gateway"
"$PY" -c 'import psycopg2' 2>/dev/null || fail "$PY cannot import psycopg2; run scripts/install-deps.sh"

# npm packages for the Node.js tests, cached in the build directory.
needs_npm=0
for m in "$@"; do case $m in *supabase* | *s3*) needs_npm=1 ;; esac; done
if [ $needs_npm = 1 ]; then
    command -v node >/dev/null || fail "node is missing; run scripts/install-deps.sh (nodejs)"
    command -v npm >/dev/null || fail "npm is missing; run scripts/install-deps.sh (npm)"
    npm_dir=${ORCH_NPM_DIR:-$(dirname "$ORCH_BINARY")/npm-gateway}
    stamp=$(sha256sum "$here/package-lock.json" | cut -c1-16)
    # One installer at a time: gateway tests run in parallel (ctest -j) share the directory.
    mkdir -p "$(dirname "$npm_dir")"
    exec 9>"$npm_dir.lock"
    flock 9
    if [ "$(cat "$npm_dir/.stamp" 2>/dev/null || true)" != "$stamp" ]; then
        rm -rf "$npm_dir"
        mkdir -p "$npm_dir"
        cp "$here/package.json" "$here/package-lock.json" "$npm_dir/"
        (cd "$npm_dir" && npm ci --no-audit --no-fund --loglevel=error >"$npm_dir/npm.log" 2>&1) ||
            { cat "$npm_dir/npm.log" >&2; fail "npm ci failed (the npm registry must be reachable)"; }
        echo "$stamp" >"$npm_dir/.stamp"
    fi
    flock -u 9
    exec 9>&-
    export ORCH_NPM_DIR=$npm_dir
fi

tmp=$(mktemp -d /tmp/orch-gw.XXXXXX)
chmod 755 "$tmp"
own_pg=0
own_tpl=""
keep=0
cleanup() {
    [ -n "$own_tpl" ] && { dropdb --if-exists "$own_tpl" >/dev/null 2>&1 || true; }
    [ $own_pg -eq 1 ] && { "$root/scripts/pg-local.sh" stop "$tmp/pg" || true; }
    [ $keep -eq 0 ] && rm -rf "$tmp"
    return 0
}
trap cleanup EXIT

if [ -z "${PGHOST:-}" ] || ! psql -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; then
    eval "$("$root/scripts/pg-local.sh" start "$tmp/pg")"
    own_pg=1
fi
export PGHOST PGPORT PGUSER
psql -d postgres -Atqc 'SELECT 1' >/dev/null || fail "PostgreSQL at PGHOST=$PGHOST is not reachable"
tpl=${ORCH_TEST_TEMPLATE_DB:-}
if [ -z "$tpl" ] || [ "$(psql -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = '$tpl'")" != "1" ]; then
    tpl="orch_tpl_gw_$$"
    own_tpl=$tpl
    createdb "$tpl"
    DATABASE_URL="postgresql:///$tpl?host=$PGHOST&port=${PGPORT:-5432}&user=${PGUSER:-postgres}" \
        "$ORCH_BINARY" migrate >"$tmp/migrate.log" 2>&1 || { cat "$tmp/migrate.log" >&2; fail "migrate failed"; }
fi
export ORCH_TEST_TEMPLATE_DB=$tpl
export ORCH_E2E_LOG_DIR=$tmp/logs
mkdir -p "$ORCH_E2E_LOG_DIR"

set +e
(cd "$here" && "$PY" - "$@" <<'PYRUN'
import sys, time, unittest
sys.path.insert(0, ".")
suite = unittest.TestSuite()
for name in sys.argv[1:]:
    suite.addTests(unittest.TestLoader().loadTestsFromName(name))
total = suite.countTestCases()
t0 = time.monotonic()
res = unittest.TextTestRunner(verbosity=2, stream=sys.stderr).run(suite)
# A skip is a failure here; errors of setUpClass count although no test ran.
failed = len(res.failures) + len(res.errors) + len(res.unexpectedSuccesses) + len(res.skipped)
passed = max(res.testsRun - failed, 0)
print("gateway: %d tests in %.1fs" % (res.testsRun, time.monotonic() - t0), file=sys.stderr)
print("%d passed, %d failed" % (passed, failed))
sys.exit(0 if failed == 0 and total > 0 and passed == total else 1)
PYRUN
)
rc=$?
set -e
if [ $rc -ne 0 ]; then
    keep=1
    echo "gateway: logs kept in $ORCH_E2E_LOG_DIR" >&2
fi
exit $rc
