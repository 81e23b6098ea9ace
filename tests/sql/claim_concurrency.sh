#!/usr/bin/env bash
# claim_concurrency.sh: func_claim_next_task never hands one task to two workers
# (ctest: sql_claim_concurrency; python-original 1.8 shows the original doing exactly that).
#
# Phase 1 (claim storm): CLAIMERS pgbench clients, each one active worker, call
# func_claim_next_task over TASKS queued tasks and log what they got (claim_log has no unique
# key, so a double claim would show). Asserts every task claimed exactly once, by the worker
# that holds it.
# Phase 2 (drain race): the same workers claim and complete while other clients drain random
# workers with the orchestrator's drain transaction (lock the row FOR UPDATE, then
# active -> terminating only if it holds no task). Asserts no terminating worker ever ends up
# holding a task and no drained worker claimed after its drain.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

CLAIMERS=${CLAIMERS:-16}
TASKS=${TASKS:-5000}

sqltest_require pgbench
sqltest_server
db=$(sqltest_createdb sql_claims)
sqltest_migrate "$db"

# ---------------------------------------------------------------------------------------------
# Phase 1
sqltest_sql "$db" "
CREATE TABLE claim_log (task_id uuid, claimer text, holder text,
                        at timestamptz DEFAULT clock_timestamp());
CREATE TABLE drain_log (worker_id text, at timestamptz);
INSERT INTO workers (id) SELECT 'cc-' || i FROM generate_series(0, $CLAIMERS - 1) i;
UPDATE workers SET status = 'active' WHERE id LIKE 'cc-%';
INSERT INTO tasks (task_type, created_at)
SELECT 'load', now() - make_interval(secs => ($TASKS - i) / 1000.0)
  FROM generate_series(1, $TASKS) i;
ANALYZE tasks;" >/dev/null

cat >"$sqltest_tmp/claim.sql" <<'SQL'
INSERT INTO claim_log (task_id, claimer, holder)
SELECT id, 'cc-' || :client_id, worker_id FROM func_claim_next_task('cc-' || :client_id, 'gpu');
SQL

# Enough transactions for every task plus the empty claims near the end; repeat while tasks
# remain (a claim that finds every remaining row locked by others returns nothing).
per_client=$(( TASKS / CLAIMERS + TASKS / (CLAIMERS * 4) + 10 ))
for round in 1 2 3 4 5; do
    pgbench -n -c "$CLAIMERS" -j "$CLAIMERS" -t "$per_client" -f "$sqltest_tmp/claim.sql" \
        "$db" >"$sqltest_tmp/pgbench1.log" 2>&1 || { cat "$sqltest_tmp/pgbench1.log" >&2;
                                                      sqltest_fail "pgbench (claims) failed"; }
    left=$(sqltest_sql "$db" "SELECT count(*) FROM tasks WHERE status = 'Queued'")
    [ "$left" = 0 ] && break
done

read -r logged distinct doubles claimers in_progress queued mismatched <<<"$(sqltest_sql "$db" "
SELECT (SELECT count(*) FROM claim_log),
       (SELECT count(DISTINCT task_id) FROM claim_log),
       (SELECT count(*) FROM (SELECT task_id FROM claim_log GROUP BY task_id
                               HAVING count(*) > 1) d),
       (SELECT count(DISTINCT claimer) FROM claim_log),
       (SELECT count(*) FROM tasks WHERE status = 'In Progress'),
       (SELECT count(*) FROM tasks WHERE status = 'Queued'),
       (SELECT count(*) FROM claim_log l JOIN tasks t ON t.id = l.task_id
         WHERE l.holder IS DISTINCT FROM l.claimer OR t.worker_id IS DISTINCT FROM l.claimer)
" | tr '|' ' ')"
tps=$(grep -o 'tps = [0-9.]*' "$sqltest_tmp/pgbench1.log" | head -n 1 || true)

echo "claim-concurrency: $distinct tasks claimed by $claimers claimers, $doubles double claims" \
     "($logged claims logged, $in_progress In Progress, $queued still queued, $mismatched" \
     "holder mismatches; $tps)"
fail=0
[ "$logged" = "$TASKS" ] || { echo "not ok - expected $TASKS claims, logged $logged" >&2; fail=1; }
[ "$distinct" = "$TASKS" ] || { echo "not ok - $distinct distinct tasks claimed" >&2; fail=1; }
[ "$doubles" = 0 ] || { echo "not ok - $doubles tasks claimed more than once" >&2; fail=1; }
[ "$in_progress" = "$TASKS" ] || { echo "not ok - $in_progress In Progress" >&2; fail=1; }
[ "$mismatched" = 0 ] || { echo "not ok - $mismatched holder mismatches" >&2; fail=1; }
[ "$claimers" = "$CLAIMERS" ] || { echo "not ok - only $claimers claimers got work" >&2; fail=1; }
[ $fail = 0 ] || sqltest_fail "claim storm"

# ---------------------------------------------------------------------------------------------
# Phase 2
sqltest_sql "$db" "
UPDATE tasks SET status = 'Complete' WHERE status = 'In Progress';
TRUNCATE claim_log;
INSERT INTO tasks (task_type) SELECT 'race' FROM generate_series(1, $TASKS);
ANALYZE tasks;" >/dev/null

cat >"$sqltest_tmp/work.sql" <<'SQL'
INSERT INTO claim_log (task_id, claimer, holder)
SELECT id, 'cc-' || :client_id, worker_id FROM func_claim_next_task('cc-' || :client_id, 'gpu');
SELECT func_mark_task_complete(t.id, t.worker_id, '{}', 'out')
  FROM tasks t WHERE t.worker_id = 'cc-' || :client_id AND t.status = 'In Progress';
SQL
# The orchestrator's own drain (orchestrator_drain_worker, which db_drain_worker calls), on a
# random worker: the very statement, not a copy, so a change to it is raced here too. When it
# drained the worker, drain_log gets the time right after the drain's update, while it still
# holds the worker row: a claim logged later than that is a claim after the drain.
cat >"$sqltest_tmp/drain.sql" <<SQL
\\sleep 25 ms
\\set w random(0, $CLAIMERS - 1)
INSERT INTO drain_log (worker_id, at)
SELECT 'cc-' || :w, clock_timestamp() WHERE orchestrator_drain_worker('cc-' || :w, 'race');
SQL
pgbench -n -c "$CLAIMERS" -j "$CLAIMERS" -t 300 -f "$sqltest_tmp/work.sql" "$db" \
    >"$sqltest_tmp/pgbench2.log" 2>&1 &
workers_pid=$!
pgbench -n -c 2 -j 2 -t 24 -f "$sqltest_tmp/drain.sql" "$db" >"$sqltest_tmp/pgbench3.log" 2>&1 ||
    { cat "$sqltest_tmp/pgbench3.log" >&2; sqltest_fail "pgbench (drains) failed"; }
wait "$workers_pid" || { cat "$sqltest_tmp/pgbench2.log" >&2; sqltest_fail "pgbench (work) failed"; }

read -r drained held_by_drained late_claims doubles2 claims2 <<<"$(sqltest_sql "$db" "
SELECT (SELECT count(*) FROM workers WHERE id LIKE 'cc-%' AND status = 'terminating'),
       (SELECT count(*) FROM tasks t JOIN workers w ON w.id = t.worker_id
         WHERE t.status = 'In Progress' AND w.status = 'terminating'),
       (SELECT count(*) FROM claim_log l JOIN drain_log d ON d.worker_id = l.claimer
         WHERE l.at > d.at),
       (SELECT count(*) FROM (SELECT task_id FROM claim_log GROUP BY task_id
                               HAVING count(*) > 1) d),
       (SELECT count(*) FROM claim_log)
" | tr '|' ' ')"
echo "drain-race: $drained of $CLAIMERS workers drained while claiming; $claims2 claims," \
     "$held_by_drained tasks held by drained workers, $late_claims claims after a drain," \
     "$doubles2 double claims"
[ "$held_by_drained" = 0 ] && [ "$late_claims" = 0 ] && [ "$doubles2" = 0 ] ||
    sqltest_fail "drain race"
[ "$drained" -gt 0 ] && [ "$claims2" -gt 0 ] ||
    sqltest_fail "drain race: nothing drained or nothing claimed, the race was not exercised"
echo "ok - claim concurrency"
