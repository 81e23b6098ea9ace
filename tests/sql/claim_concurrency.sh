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
# Phase 3 (pools, issue 14): workers of two pools -- A serving run type a, B serving b and gpu --
# claim concurrently from one queue that mixes a, b, gpu and c (served by no pool), every worker
# always passing run_type 'gpu' as the reference worker does. Asserts no worker ever claimed a
# task of another pool's run types, no task was claimed twice, every served task was claimed,
# and every task of c is still Queued.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

CLAIMERS=${CLAIMERS:-16}
TASKS=${TASKS:-5000}
POOL_TASKS=${POOL_TASKS:-4000}

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

# ---------------------------------------------------------------------------------------------
# Phase 3
half=$((CLAIMERS / 2))
sqltest_sql "$db" "
UPDATE tasks SET status = 'Complete' WHERE status IN ('Queued', 'In Progress');
TRUNCATE claim_log;
ALTER TABLE claim_log ADD COLUMN run_type text;
SELECT orchestrator_sync_pools('{\"pool_a\": [\"a\"], \"pool_b\": [\"b\", \"gpu\"]}');
INSERT INTO workers (id, pool)
SELECT CASE WHEN i < $half THEN 'pa-' || i ELSE 'pb-' || (i - $half) END,
       CASE WHEN i < $half THEN 'pool_a' ELSE 'pool_b' END
  FROM generate_series(0, $CLAIMERS - 1) i;
UPDATE workers SET status = 'active' WHERE id LIKE 'pa-%' OR id LIKE 'pb-%';
INSERT INTO tasks (task_type, run_type, created_at)
SELECT 'mixed', (ARRAY['a', 'b', 'gpu', 'c'])[1 + i % 4],
       now() - make_interval(secs => ($POOL_TASKS - i) / 1000.0)
  FROM generate_series(1, $POOL_TASKS) i;
ANALYZE tasks;" >/dev/null

# Client k is worker pa-k (k < half) or pb-(k - half); every claim passes 'gpu'.
cat >"$sqltest_tmp/pools.sql" <<SQL
INSERT INTO claim_log (task_id, claimer, holder, run_type)
SELECT id, CASE WHEN :client_id < $half THEN 'pa-' || :client_id
                ELSE 'pb-' || (:client_id - $half) END, worker_id, run_type
  FROM func_claim_next_task(CASE WHEN :client_id < $half THEN 'pa-' || :client_id
                                 ELSE 'pb-' || (:client_id - $half) END, 'gpu');
SQL
served=$((POOL_TASKS - POOL_TASKS / 4))
per_client=$(( served / CLAIMERS + served / (CLAIMERS * 2) + 20 ))
for round in 1 2 3 4 5 6; do
    pgbench -n -c "$CLAIMERS" -j "$CLAIMERS" -t "$per_client" -f "$sqltest_tmp/pools.sql" \
        "$db" >"$sqltest_tmp/pgbench4.log" 2>&1 || { cat "$sqltest_tmp/pgbench4.log" >&2;
                                                      sqltest_fail "pgbench (pool claims) failed"; }
    left=$(sqltest_sql "$db" "SELECT count(*) FROM tasks WHERE status = 'Queued' AND run_type <> 'c'")
    [ "$left" = 0 ] && break
done

read -r by_a by_b cross doubles3 unclaimed c_queued c_claimed a_claimers b_claimers gpu_by_b <<<"$(sqltest_sql "$db" "
SELECT (SELECT count(*) FROM claim_log WHERE claimer LIKE 'pa-%'),
       (SELECT count(*) FROM claim_log WHERE claimer LIKE 'pb-%'),
       (SELECT count(*) FROM claim_log l JOIN tasks t ON t.id = l.task_id
         WHERE (l.claimer LIKE 'pa-%' AND t.run_type <> 'a')
            OR (l.claimer LIKE 'pb-%' AND t.run_type NOT IN ('b', 'gpu'))
            OR l.holder IS DISTINCT FROM l.claimer OR l.run_type IS DISTINCT FROM t.run_type),
       (SELECT count(*) FROM (SELECT task_id FROM claim_log GROUP BY task_id
                               HAVING count(*) > 1) d),
       (SELECT count(*) FROM tasks WHERE task_type = 'mixed' AND run_type <> 'c'
           AND status <> 'In Progress'),
       (SELECT count(*) FROM tasks WHERE task_type = 'mixed' AND run_type = 'c'
           AND status = 'Queued'),
       (SELECT count(*) FROM claim_log WHERE run_type = 'c'),
       (SELECT count(DISTINCT claimer) FROM claim_log WHERE claimer LIKE 'pa-%'),
       (SELECT count(DISTINCT claimer) FROM claim_log WHERE claimer LIKE 'pb-%'),
       (SELECT count(*) FROM claim_log WHERE claimer LIKE 'pb-%' AND run_type = 'gpu')
" | tr '|' ' ')"
tps3=$(grep -o 'tps = [0-9.]*' "$sqltest_tmp/pgbench4.log" | head -n 1 || true)
echo "claim-pools: $by_a tasks claimed by $a_claimers workers of pool A (run type a only)," \
     "$by_b by $b_claimers of pool B (b and gpu, $gpu_by_b of them gpu), all passing 'gpu';" \
     "$cross cross-pool claims, $doubles3 double claims, $unclaimed served tasks unclaimed," \
     "$c_queued tasks of unserved run type c still Queued ($c_claimed claimed); $tps3"
fail=0
[ "$cross" = 0 ] || { echo "not ok - $cross claims crossed pools (or holder mismatches)" >&2; fail=1; }
[ "$doubles3" = 0 ] || { echo "not ok - $doubles3 tasks claimed more than once" >&2; fail=1; }
[ "$unclaimed" = 0 ] || { echo "not ok - $unclaimed served tasks not claimed" >&2; fail=1; }
[ "$by_a" = $((POOL_TASKS / 4)) ] || { echo "not ok - pool A claimed $by_a, not $((POOL_TASKS / 4))" >&2; fail=1; }
[ "$by_b" = $((POOL_TASKS / 2)) ] || { echo "not ok - pool B claimed $by_b, not $((POOL_TASKS / 2))" >&2; fail=1; }
[ "$c_queued" = $((POOL_TASKS / 4)) ] && [ "$c_claimed" = 0 ] ||
    { echo "not ok - run type c: $c_queued Queued, $c_claimed claimed" >&2; fail=1; }
[ "$a_claimers" = "$half" ] && [ "$b_claimers" = $((CLAIMERS - half)) ] ||
    { echo "not ok - claimers: A $a_claimers, B $b_claimers" >&2; fail=1; }
[ $fail = 0 ] || sqltest_fail "pool claims"
echo "ok - claim concurrency"
