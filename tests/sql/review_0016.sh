#!/usr/bin/env bash
# review_0016.sh (ctest sql_claim_review): a claim of a pool with several run types never keeps a
# concurrent claim of the same pool from a free task (regression of a review of 0016).
#
# 0016's first version locked (FOR UPDATE SKIP LOCKED) the head of EVERY run type of the pool,
# returned one and kept the others locked until its transaction ended: with pool {a,b} and
# tasks a1 (older) and b1, a second worker claiming at that moment got nothing although b1 was
# free. The claim now peeks without locks and locks only the row it takes, as 0008 did (its
# function is recreated here as func_claim_0008 for comparison).
#
# Part 1 is deterministic (the first claim's transaction is held open while the second claims).
# Part 2 releases K claimers at once (they queue on their worker rows, which this script holds)
# over K claimable tasks, R rounds, and counts the claims that came back empty, for 0016 and for
# 0008's function.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

K=${K:-8}
R=${R:-10}

sqltest_server
db=$(sqltest_createdb sql_review16)
sqltest_migrate "$db"

awk '/CREATE OR REPLACE FUNCTION func_claim_next_task/,/^\$\$;/' \
    "$sqltest_root/sql/migrations/0008_pools.sql" |
    sed 's/FUNCTION func_claim_next_task/FUNCTION func_claim_0008/' |
    psql -X -q -v ON_ERROR_STOP=1 -d "$db" >/dev/null

sqltest_sql "$db" "
INSERT INTO worker_pools (name, run_types) VALUES ('ab', ARRAY['a','b']), ('abcd', ARRAY['a','b','c','d']);
INSERT INTO workers (id, pool) SELECT 'w' || i, 'ab' FROM generate_series(1, 2) i;
INSERT INTO workers (id, pool) SELECT 'k' || i, 'abcd' FROM generate_series(0, $K - 1) i;
UPDATE workers SET status = 'active';" >/dev/null

# ---------------------------------------------------------------------------------------------
# Part 1
part1() { # $1 = claim function
    local fn=$1
    sqltest_sql "$db" "DELETE FROM tasks;
      INSERT INTO tasks (task_type, run_type, created_at) VALUES
        ('x', 'a', now() - interval '2 min'), ('x', 'b', now() - interval '1 min');" >/dev/null
    # w1 claims and its transaction is still open (the window every claim has)
    psql -X -q -At -d "$db" -c "BEGIN; SELECT run_type FROM $fn('w1'); SELECT pg_sleep(2); COMMIT;" \
        >"$sqltest_tmp/w1.out" &
    local bg=$!
    sleep 0.7
    local w2
    w2=$(sqltest_sql "$db" "SELECT coalesce((SELECT run_type FROM $fn('w2')), 'EMPTY')")
    wait "$bg"
    local w1
    w1=$(grep -E '^[ab]$' "$sqltest_tmp/w1.out" || echo EMPTY)
    echo "$fn: w1 got $w1, concurrent w2 got $w2"
    [ "$w2" != EMPTY ]
}

fail=0
part1 func_claim_0008 || { echo "not ok - 0008 left b1 unclaimed (unexpected)" >&2; fail=1; }
part1 func_claim_next_task ||
    { echo "not ok - 0016: w2 claimed nothing while b1 was claimable (held by w1's claim)" >&2; fail=1; }

# ---------------------------------------------------------------------------------------------
# Part 2
part2() { # $1 = claim function; prints the number of empty claims
    local fn=$1 empty=0 r i
    for ((r = 0; r < R; r++)); do
        sqltest_sql "$db" "DELETE FROM tasks;
          INSERT INTO tasks (task_type, run_type, created_at)
          SELECT 'x', (ARRAY['a','b','c','d'])[1 + i % 4], now() - make_interval(secs => $K - i)
            FROM generate_series(0, $K - 1) i;" >/dev/null
        psql -X -q -d "$db" -c "BEGIN; SELECT 1 FROM workers WHERE pool = 'abcd' FOR UPDATE;
                                SELECT pg_sleep(1); COMMIT;" >/dev/null &
        local gate=$!
        sleep 0.3
        local pids=()
        for ((i = 0; i < K; i++)); do
            sqltest_sql "$db" "SELECT coalesce((SELECT id::text FROM $fn('k$i')), 'EMPTY')" \
                >"$sqltest_tmp/k$i.out" &
            pids+=($!)
        done
        wait "$gate" "${pids[@]}"
        empty=$((empty + $(cat "$sqltest_tmp"/k*.out | grep -c EMPTY || true)))
        local doubles
        doubles=$(grep -v EMPTY "$sqltest_tmp"/k*.out | cut -d: -f2 | sort | uniq -d | wc -l)
        [ "$doubles" = 0 ] || sqltest_fail "$fn: a task claimed twice"
        rm -f "$sqltest_tmp"/k*.out
    done
    echo "$empty"
}
e08=$(part2 func_claim_0008)
e16=$(part2 func_claim_next_task)
echo "burst: $R rounds of $K claimers over $K claimable tasks (pool of 4 run types):" \
     "0008 $e08 empty claims, 0016 $e16 empty claims"
[ "$e16" -le "$e08" ] || { echo "not ok - 0016 returned $e16 empty claims while tasks were free" >&2; fail=1; }

[ "$fail" = 0 ] && echo "ok - review_0016" || exit 1
