#!/usr/bin/env bash
# migrate_test.sh: `orchestrator migrate` is idempotent, serialised, and refuses edited
# migrations (ctest: sql_migrate).
#
#   1. two runs on an empty database: both exit 0, the second applies nothing, and
#      schema_migrations and `pg_dump --schema-only` are identical before and after it;
#   2. two concurrent runs on another empty database: both exit 0, each migration is applied
#      exactly once between them (each step takes the migration lock in its own transaction, so
#      the two may share the work), and the schema equals the one of a single run;
#   3. a migration whose recorded checksum differs (an edited file) is refused: exit 4, a
#      migrate.checksum_mismatch message naming the file, and nothing applied after it.
# Needs ORCH_BINARY (set by ctest).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

[ -n "${ORCH_BINARY:-}" ] && [ -x "$ORCH_BINARY" ] ||
    sqltest_fail "ORCH_BINARY must name the built orchestrator binary"
sqltest_require pg_dump
sqltest_server
nfiles=$(ls "$sqltest_root"/sql/migrations/[0-9]*_*.sql | wc -l)
fail=0
check() { # check DESCRIPTION COMMAND...
    local what=$1
    shift
    if "$@"; then echo "ok - $what"; else echo "not ok - $what" >&2; fail=1; fi
}
migrate() { # migrate DB OUTFILE ERRFILE -> exit code
    local rc=0
    DATABASE_URL=$(sqltest_url "$1") "$ORCH_BINARY" migrate >"$2" 2>"$3" || rc=$?
    return $rc
}

schema_dump() { # schema_dump DB: pg_dump --schema-only without the random \restrict key lines
    pg_dump --schema-only -d "$1" | grep -v -E '^\\(un)?restrict '
}

# 1. Twice in a row.
db=$(sqltest_createdb sql_migrate)
rc=0; migrate "$db" "$sqltest_tmp/out1" "$sqltest_tmp/err1" || rc=$?
check "first migrate exits 0 (got $rc)" [ "$rc" = 0 ]
check "first migrate applies all $nfiles migrations" \
    grep -q "\"applied\":$nfiles" "$sqltest_tmp/out1"
sqltest_sql "$db" "SELECT version, checksum, applied_at FROM schema_migrations ORDER BY 1" \
    >"$sqltest_tmp/sm1"
schema_dump "$db" >"$sqltest_tmp/dump1"
rc=0; migrate "$db" "$sqltest_tmp/out2" "$sqltest_tmp/err2" || rc=$?
check "second migrate exits 0 (got $rc)" [ "$rc" = 0 ]
check "second migrate applies nothing" grep -q '"applied":0' "$sqltest_tmp/out2"
check "second migrate logs migrate.up_to_date" grep -q 'migrate.up_to_date' "$sqltest_tmp/err2"
sqltest_sql "$db" "SELECT version, checksum, applied_at FROM schema_migrations ORDER BY 1" \
    >"$sqltest_tmp/sm2"
schema_dump "$db" >"$sqltest_tmp/dump2"
check "schema_migrations unchanged by the second run" cmp -s "$sqltest_tmp/sm1" "$sqltest_tmp/sm2"
check "pg_dump --schema-only unchanged by the second run" \
    cmp -s "$sqltest_tmp/dump1" "$sqltest_tmp/dump2"
check "checksums are the md5 of the files" [ "$(cut -d'|' -f2 "$sqltest_tmp/sm1")" = \
    "$(md5sum "$sqltest_root"/sql/migrations/[0-9]*_*.sql | cut -d' ' -f1)" ]
check "no stray notices on stderr" bash -c "! grep -qv '^{' '$sqltest_tmp/err1'"

# 2. Two at once.
db2=$(sqltest_createdb sql_migrate_race)
rca=0; rcb=0
migrate "$db2" "$sqltest_tmp/outa" "$sqltest_tmp/erra" & pa=$!
migrate "$db2" "$sqltest_tmp/outb" "$sqltest_tmp/errb" & pb=$!
wait $pa || rca=$?
wait $pb || rcb=$?
check "concurrent migrates both exit 0 ($rca, $rcb)" [ "$rca" = 0 ] && [ "$rcb" = 0 ]
applied_sum=$(cat "$sqltest_tmp/outa" "$sqltest_tmp/outb" | grep -o '"applied":[0-9]*' |
    awk -F: '{ s += $2 } END { print s + 0 }')
check "between them they applied each of the $nfiles migrations once (applied $applied_sum)" \
    [ "$applied_sum" = "$nfiles" ]
check "schema_migrations records each version once" [ "$(sqltest_sql "$db2" \
    "SELECT count(*) || '/' || count(DISTINCT version) FROM schema_migrations")" = "$nfiles/$nfiles" ]
check "the schema equals the one of a single run" \
    cmp -s "$sqltest_tmp/dump1" <(schema_dump "$db2")

# 3. An edited migration (simulated: the recorded checksum no longer matches the file).
first=$(sqltest_sql "$db" "SELECT min(version) FROM schema_migrations")
last=$(sqltest_sql "$db" "SELECT max(version) FROM schema_migrations")
sqltest_sql "$db" "UPDATE schema_migrations SET checksum = md5('edited') WHERE version = '$first';
                   DELETE FROM schema_migrations WHERE version = '$last'" >/dev/null
rc=0; migrate "$db" "$sqltest_tmp/out3" "$sqltest_tmp/err3" || rc=$?
check "an edited migration is refused with exit 4 (got $rc)" [ "$rc" = 4 ]
check "the refusal is logged as migrate.checksum_mismatch naming $first.sql" \
    grep -q "migrate.checksum_mismatch.*$first.sql" "$sqltest_tmp/err3"
check "the message says what to do" grep -q 'new migration' "$sqltest_tmp/err3"
check "nothing was applied after the mismatch ($last stays unrecorded)" \
    [ "$(sqltest_sql "$db" "SELECT count(*) FROM schema_migrations WHERE version = '$last'")" = 0 ]
echo "--- refusal as printed:"
cat "$sqltest_tmp/err3"

[ $fail = 0 ] && echo "migrate: all checks passed"
exit $fail
