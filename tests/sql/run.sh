#!/usr/bin/env bash
# run.sh: the SQL contract tests (ctest: sql_contract).
#
# Creates a fresh database, applies the migrations through `orchestrator migrate`, installs
# pgTAP and the test helpers (tests/sql/helpers.sql, schema sqltest), runs tests/sql/t/*.sql
# with pg_prove, then checks the NOTIFY wake-up end to end. See tests/sql/lib.sh for how the
# server and the binary are found. A missing PostgreSQL or pgTAP fails the run.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

sqltest_require pg_prove
sqltest_server
db=$(sqltest_createdb sql_contract)
sqltest_migrate "$db"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" -c 'CREATE EXTENSION pgtap' >/dev/null ||
    sqltest_fail "pgTAP is not installed: run scripts/install-deps.sh (postgresql-15-pgtap)"
psql -X -q -v ON_ERROR_STOP=1 -d "$db" -f "$here/helpers.sql" >/dev/null

status=0
pg_prove -d "$db" --ext .sql "$here"/t/*.sql || status=1

# NOTIFY orchestrator_wakeup: one per INSERT statement, delivered at commit.
out=$(psql -X -d "$db" -c 'LISTEN orchestrator_wakeup' \
    -c "INSERT INTO tasks (task_type) SELECT 'n' FROM generate_series(1, 3)" \
    -c "SELECT 1" 2>&1)
n=$(grep -c 'Asynchronous notification "orchestrator_wakeup" with payload "tasks"' <<<"$out" || true)
if [ "$n" = 1 ]; then
    echo "ok - a 3-row INSERT sends exactly one orchestrator_wakeup notification"
else
    echo "not ok - expected 1 orchestrator_wakeup notification for a 3-row INSERT, got $n:" >&2
    echo "$out" >&2
    status=1
fi

# NOTIFY orchestrator_task_ended (0012, `submit --wait`): one per task whose status becomes
# Complete, Failed or Cancelled, with the task id; none for a claim, a retry or another update.
e=00000000-0000-0000-0000-0000000000e
out=$(psql -X -d "$db" -c 'LISTEN orchestrator_task_ended' \
    -c "INSERT INTO tasks (id, task_type) VALUES ('${e}1', 'n'), ('${e}2', 'n'), ('${e}3', 'n')" \
    -c "UPDATE tasks SET status = 'In Progress' WHERE id::text LIKE '${e}_'" \
    -c "UPDATE tasks SET status = 'Complete' WHERE id = '${e}1'" \
    -c "UPDATE tasks SET status = 'Failed' WHERE id = '${e}2'" \
    -c "UPDATE tasks SET status = 'Queued' WHERE id = '${e}3'" \
    -c "UPDATE tasks SET output_location = 'x' WHERE id = '${e}1'" \
    -c "SELECT 1" 2>&1)
got=$(grep -o 'notification "orchestrator_task_ended" with payload "[^"]*"' <<<"$out" |
    sed 's/.*payload "//; s/"$//' | sort | tr '\n' ' ')
if [ "$got" = "${e}1 ${e}2 " ]; then
    echo "ok - orchestrator_task_ended: one notification per task that ends, none otherwise"
else
    echo "not ok - orchestrator_task_ended: expected ${e}1 ${e}2, got '$got':" >&2
    echo "$out" >&2
    status=1
fi

[ $status = 0 ] && echo "sql-contract: all SQL contract tests passed"
exit $status
