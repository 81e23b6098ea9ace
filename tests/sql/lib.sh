# lib.sh: shared helpers for the tests/sql scripts (sourced, not run).
#
# Server: uses the PostgreSQL named by PGHOST/PGPORT/PGUSER (scripts/test.sh exports them);
# when PGHOST is unset, starts a private one with scripts/pg-local.sh and stops it on exit.
# A missing or unreachable PostgreSQL FAILS the test; nothing is ever skipped.
#
# Migrations go through the C runner: "$ORCH_BINARY migrate" with DATABASE_URL (ctest sets
# ORCH_BINARY). Only when ORCH_BINARY is unset (a manual run without a build) are the files
# applied with psql, in name order, and a warning says so.

sqltest_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
sqltest_tmp=""
sqltest_dbs=()
sqltest_pg_started=0

sqltest_fail() {
    echo "FAIL: $*" >&2
    exit 1
}

sqltest_cleanup() {
    local db
    for db in "${sqltest_dbs[@]}"; do
        dropdb --if-exists "$db" >/dev/null 2>&1 || true
    done
    if [ "$sqltest_pg_started" = 1 ]; then
        "$sqltest_root/scripts/pg-local.sh" stop "$sqltest_tmp/pg" || true
    fi
    [ -n "$sqltest_tmp" ] && rm -rf "$sqltest_tmp"
}

# sqltest_require TOOL... : fails naming the package script when a tool is missing.
sqltest_require() {
    local t
    for t in "$@"; do
        command -v "$t" >/dev/null 2>&1 ||
            sqltest_fail "$t not found: run scripts/install-deps.sh (as root)"
    done
}

# sqltest_server: makes PG* point at a running server (see the header).
sqltest_server() {
    sqltest_require psql createdb dropdb
    sqltest_tmp=$(mktemp -d /tmp/orch-sqltest.XXXXXX)
    chmod 755 "$sqltest_tmp"
    trap sqltest_cleanup EXIT
    if [ -z "${PGHOST:-}" ]; then
        eval "$("$sqltest_root/scripts/pg-local.sh" start "$sqltest_tmp/pg")" ||
            sqltest_fail "could not start a private PostgreSQL (scripts/pg-local.sh)"
        sqltest_pg_started=1
    fi
    export PGHOST PGPORT="${PGPORT:-5432}" PGUSER="${PGUSER:-postgres}"
    psql -X -q -d postgres -c 'SELECT 1' >/dev/null ||
        sqltest_fail "PostgreSQL at PGHOST=$PGHOST PGPORT=$PGPORT is not reachable"
}

# sqltest_url DB: a libpq URI for DB on the test server.
sqltest_url() {
    echo "postgresql:///$1?host=$PGHOST&port=$PGPORT&user=$PGUSER"
}

# sqltest_createdb PREFIX: creates an empty, uniquely named database and prints its name.
sqltest_createdb() {
    local db="${1}_$$_${RANDOM}"
    createdb "$db" || sqltest_fail "createdb $db"
    sqltest_dbs+=("$db")
    echo "$db"
}

# sqltest_migrate DB: applies the migrations to DB through the C runner.
sqltest_migrate() {
    local db=$1
    if [ -n "${ORCH_BINARY:-}" ]; then
        [ -x "$ORCH_BINARY" ] || sqltest_fail "ORCH_BINARY=$ORCH_BINARY is not executable"
        if ! DATABASE_URL=$(sqltest_url "$db") "$ORCH_BINARY" migrate >/dev/null \
            2>"$sqltest_tmp/migrate.log"; then
            cat "$sqltest_tmp/migrate.log" >&2
            sqltest_fail "orchestrator migrate failed on $db"
        fi
    else
        echo "warning: ORCH_BINARY unset; applying sql/migrations with psql" >&2
        local f
        for f in "$sqltest_root"/sql/migrations/[0-9]*_*.sql; do
            psql -X -q -v ON_ERROR_STOP=1 --single-transaction -d "$db" -f "$f" >/dev/null ||
                sqltest_fail "psql could not apply $f"
        done
    fi
}

# sqltest_sql DB SQL: runs SQL, prints the unaligned tuples-only result.
sqltest_sql() {
    psql -X -q -At -v ON_ERROR_STOP=1 -d "$1" -c "$2"
}
