#!/usr/bin/env bash
# scale_check.sh: at 1,000,000 finished tasks, the claim and the snapshot's task queries read
# only the partial indexes (Queued / In Progress), never the Complete/Failed rows
# (ctest: sql_scale). Checks the plans (no sequential scan of tasks) and prints the timings.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

ROWS=${ROWS:-1000000}
sqltest_server
db=$(sqltest_createdb sql_scale)
sqltest_migrate "$db"
sqltest_sql "$db" "
INSERT INTO workers (id) SELECT 'b-' || i FROM generate_series(1, 20) i;
UPDATE workers SET status = 'active';
INSERT INTO tasks (task_type, status, created_at, worker_id, generation_started_at,
                   generation_processed_at)
SELECT 'old', CASE WHEN i % 50 = 0 THEN 'Failed' ELSE 'Complete' END::task_status,
       now() - make_interval(secs => i), 'b-' || (i % 20 + 1), now(), now()
  FROM generate_series(1, $ROWS) i;
INSERT INTO tasks (task_type, created_at)
SELECT 'q', now() - make_interval(secs => i) FROM generate_series(1, 2000) i;
INSERT INTO tasks (task_type, status, worker_id, generation_started_at)
SELECT 'r', 'In Progress', 'b-' || i, now() FROM generate_series(1, 20) i;
" >/dev/null
sqltest_sql "$db" "VACUUM ANALYZE tasks" >/dev/null

fail=0
plan_check() { # plan_check NAME SQL
    local plan
    plan=$(sqltest_sql "$db" "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY ON) $2")
    local ms
    ms=$(grep -o 'Execution Time: [0-9.]* ms' <<<"$plan" | grep -o '[0-9.]* ms')
    if grep -q 'Seq Scan on tasks' <<<"$plan"; then
        echo "not ok - $1 scans the whole tasks table:" >&2
        echo "$plan" >&2
        fail=1
    else
        echo "ok - $1 uses partial indexes ($ms at $ROWS finished tasks)"
    fi
}
# The claim's candidate exactly as func_claim_next_task (0016) finds it: one ordered scan of
# idx_tasks_claim per run type of the pool, never a sort of the whole queue.
claim_sql="
SELECT c.id FROM unnest(ARRAY['gpu', 'video']) AS rt(run_type)
 CROSS JOIN LATERAL (
   SELECT t.id, t.created_at FROM tasks t
    WHERE t.status = 'Queued' AND t.run_type = rt.run_type AND t.available_at <= now()
      AND (t.dependant_on IS NULL OR NOT EXISTS (
           SELECT 1 FROM unnest(t.dependant_on) AS d(id) LEFT JOIN tasks p ON p.id = d.id
            WHERE p.status IS DISTINCT FROM 'Complete'))
    ORDER BY t.created_at, t.id LIMIT 1 FOR UPDATE OF t SKIP LOCKED) c
 ORDER BY c.created_at, c.id LIMIT 1"
plan_check "claim candidate" "$claim_sql"
# ... and that is the shape the function runs (its plan is not visible through EXPLAIN).
if sqltest_sql "$db" "SELECT prosrc FROM pg_proc WHERE proname = 'func_claim_next_task'" |
    grep -q 'unnest(v_run_types) AS rt(run_type)'; then
    echo "ok - func_claim_next_task looks up each run type of the pool on its own"
else
    echo "not ok - func_claim_next_task no longer takes each run type on its own" >&2
    fail=1
fi
claim_plan=$(sqltest_sql "$db" "EXPLAIN (COSTS OFF) $claim_sql")
if grep -q 'Index Scan using idx_tasks_claim' <<<"$claim_plan" &&
    ! grep -q 'Sort Key: t.created_at' <<<"$claim_plan"; then
    echo "ok - the claim reads each run type's oldest tasks in index order (no sort of the queue)"
else
    echo "not ok - the claim sorts the queue instead of reading idx_tasks_claim in order:" >&2
    echo "$claim_plan" >&2
    fail=1
fi
plan_check "claimable GPU count" "
SELECT count(*) FROM tasks t
 WHERE t.status = 'Queued' AND t.run_type = 'gpu' AND t.available_at <= now()
   AND (t.dependant_on IS NULL OR NOT EXISTS (
        SELECT 1 FROM unnest(t.dependant_on) AS d(id) LEFT JOIN tasks p ON p.id = d.id
         WHERE p.status IS DISTINCT FROM 'Complete'))"
plan_check "queue depth and age" "
SELECT count(*), min(created_at) FROM tasks WHERE status = 'Queued'"
plan_check "running tasks by worker" "
SELECT worker_id, count(*), min(generation_started_at) FROM tasks
 WHERE status = 'In Progress' GROUP BY worker_id"
plan_check "drain proof (does the worker hold a task?)" "
SELECT EXISTS (SELECT 1 FROM tasks WHERE worker_id = 'b-3' AND status = 'In Progress')"
# Issue 16 (RUNPOD_GPU_CHOICE=value): the newest completed tasks only, through
# idx_tasks_complete_processed, however many there are (src/shell/db_runpod.c).
plan_check "task durations per GPU type (value choice)" "
WITH recent AS (SELECT t.worker_id,
    extract(epoch FROM t.generation_processed_at - t.generation_started_at) AS sec
  FROM tasks t WHERE t.status = 'Complete'
   AND t.generation_processed_at > now() - make_interval(hours => 168)
   AND t.generation_started_at IS NOT NULL
   AND t.generation_processed_at >= t.generation_started_at
  ORDER BY t.generation_processed_at DESC LIMIT 5000)
SELECT w.pool, coalesce(w.gpu_type, ''), count(*),
  percentile_cont(0.5) WITHIN GROUP (ORDER BY r.sec)
 FROM recent r JOIN workers w ON w.id = r.worker_id
 GROUP BY GROUPING SETS ((w.pool, w.gpu_type), (w.pool))"
# The adaptive policies' measures (db_snapshot.c SQL_SNAPSHOT_MEASURES, with its parameters):
# index slices of the recent tasks and of the last completed ones, whatever the history.
# 'video' is served but never completed a task: its median-duration slice must still be one of
# idx_tasks_run_type_complete_processed, not a walk of the global idx_tasks_complete_processed
# (1,000,000 rows read to find none, 187 ms per such run type before the fix).
measures_sql=$(python3 - "$here/../../src/shell/db_snapshot.c" <<'PY'
import json, re, sys
src = open(sys.argv[1]).read()
m = re.search(r"SQL_SNAPSHOT_MEASURES\[\] =\n(.*?);\n", src, re.S)
sql = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1))).replace('\\"', '"')
print(sql.replace("$1::jsonb", "'%s'::jsonb" % json.dumps(["gpu", "video"]))
      .replace("$2::jsonb", "'%s'::jsonb" % json.dumps(["default"]))
      .replace("$3::int", "600").replace("$4::int", "900").replace("$5::int", "1800"))
PY
)
plan_check "adaptive measures" "$measures_sql"
measures_plan=$(sqltest_sql "$db" "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) $measures_sql")
if grep -q 'idx_tasks_complete_processed' <<<"$measures_plan"; then
    echo "not ok - adaptive measures walk the global idx_tasks_complete_processed:" >&2
    echo "$measures_plan" >&2
    fail=1
else
    echo "ok - adaptive measures: a run type with no completed task is an index slice"
fi
start=$(date +%s%N)
sqltest_sql "$db" "SELECT count(*) FROM func_claim_next_task('b-1')" >/dev/null
echo "ok - func_claim_next_task at $ROWS finished tasks: $(( ($(date +%s%N) - start) / 1000000 )) ms (psql round trip included)"
exit $fail
