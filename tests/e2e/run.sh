#!/usr/bin/env bash
# run.sh: the end-to-end suite (tests/e2e/test_*.py) against the real binary, the fake RunPod
# and fake workers. Registered with ctest as `e2e`; also runnable by hand:
#
#   tests/e2e/run.sh                       every scenario
#   tests/e2e/run.sh test_02 test_05       only the files whose names contain these words
#
# Uses the PostgreSQL named by PGHOST/PGPORT/PGUSER and the template ORCH_TEST_TEMPLATE_DB when
# scripts/test.sh provides them; otherwise starts a private server (scripts/pg-local.sh) and
# migrates a template with `$ORCH_BINARY migrate`, and stops it afterwards. A missing
# PostgreSQL fails the run; nothing is skipped. Prints "N passed, M failed" last.
set -euo pipefail

root=${ORCH_SOURCE_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
export ORCH_SOURCE_DIR=$root
export ORCH_BINARY=${ORCH_BINARY:-$root/build/orchestrator}
PY=/usr/bin/python3

if [ ! -x "$ORCH_BINARY" ]; then
    echo "e2e: orchestrator binary not found at $ORCH_BINARY (build it, or set ORCH_BINARY)" >&2
    echo "0 passed, 1 failed"
    exit 1
fi
if ! "$PY" -c 'import psycopg2' 2>/dev/null; then
    echo "e2e: $PY cannot import psycopg2; run scripts/install-deps.sh" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

tmp=$(mktemp -d /tmp/orch-e2e.XXXXXX)
chmod 755 "$tmp"
own_pg=0
own_tpl=""
keep_logs=0
cleanup() {
    if [ -n "$own_tpl" ]; then
        dropdb --if-exists "$own_tpl" >/dev/null 2>&1 || true
    fi
    if [ $own_pg -eq 1 ]; then
        "$root/scripts/pg-local.sh" stop "$tmp/pg" || true
    fi
    if [ $keep_logs -eq 0 ]; then
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT

if [ -z "${PGHOST:-}" ] || ! psql -d postgres -Atqc 'SELECT 1' >/dev/null 2>&1; then
    eval "$("$root/scripts/pg-local.sh" start "$tmp/pg")"
    own_pg=1
fi
export PGHOST PGPORT PGUSER
if ! psql -d postgres -Atqc 'SELECT 1' >/dev/null; then
    echo "e2e: PostgreSQL at PGHOST=$PGHOST PGPORT=${PGPORT:-} is not reachable" >&2
    echo "0 passed, 1 failed"
    exit 1
fi

tpl=${ORCH_TEST_TEMPLATE_DB:-}
if [ -z "$tpl" ] || [ "$(psql -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = '$tpl'")" != "1" ]; then
    tpl="orch_tpl_e2e_$$"
    own_tpl=$tpl
    createdb "$tpl"
    url="postgresql:///$tpl?host=$PGHOST&port=${PGPORT:-5432}&user=${PGUSER:-postgres}"
    if [ "${ORCH_E2E_MIGRATE:-binary}" = "psql" ]; then
        for f in "$root"/sql/migrations/*.sql; do
            psql -q -v ON_ERROR_STOP=1 -d "$tpl" -f "$f" >/dev/null
        done
    elif ! DATABASE_URL=$url "$ORCH_BINARY" migrate >"$tmp/migrate.log" 2>&1; then
        echo "e2e: '$ORCH_BINARY migrate' failed:" >&2
        cat "$tmp/migrate.log" >&2
        echo "0 passed, 1 failed"
        exit 1
    fi
fi
export ORCH_TEST_TEMPLATE_DB=$tpl
export ORCH_E2E_LOG_DIR=$tmp/logs
mkdir -p "$ORCH_E2E_LOG_DIR"

set +e
"$PY" "$root/tests/e2e/run_tests.py" "$@"
rc=$?
set -e
if [ $rc -ne 0 ]; then
    keep_logs=1
    echo "e2e: logs kept in $ORCH_E2E_LOG_DIR" >&2
fi
exit $rc
