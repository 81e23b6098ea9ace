-- 0013_task_cost.sql: cost per task and idle GPU cost (issue 17 item 5, structure_docs/cost.md).
--
--   * orchestrator_task_costs(lo, hi, bounds, max_tasks): one set-based read, shared by
--     `orchestrator status` (the last hour and the last day) and the cycle's metrics (the
--     interval since the last observation). Rows:
--       kind 'type': per (pool, task_type[, bucket]) the tasks that completed in (lo, hi], their
--                    summed cost (worker's cost_per_hr x generation_processed_at -
--                    generation_started_at), summed runtime, and how many had no price;
--       kind 'pool': per pool the GPU cost of its workers' alive time within (lo, hi] and the
--                    part of it spent running a task (completed or still In Progress); idle is
--                    the difference.
--     bounds (ascending upper bounds, or NULL): the index of the first bound >= the task's cost,
--     so the caller can fill a histogram; NULL groups by (pool, task_type) only.
--     Bounded: at most max_tasks completed tasks (the newest) are read, in one pass, through the
--     partial index below (past that many the window starts later: an index-only look-up finds
--     where); running tasks through idx_tasks_in_progress_worker, live workers through
--     idx_workers_not_terminated, ended ones through idx_workers_ended. Never a scan of the task
--     history.
--   * orchestrator_state.cost_observed_until: where the metrics' last observation ended, so that
--     every completed task is observed once whichever process (cron run or `continuous`) runs.
--   * idx_tasks_complete_processed: the completed tasks by completion time. Same name and
--     definition as the runpod-catalog work (issue 16) uses, hence IF NOT EXISTS: one index.
--     A plain CREATE INDEX (migrations run in a transaction): on a large tasks table create it
--     CONCURRENTLY by hand beforehand to avoid blocking task writes while it builds.

ALTER TABLE orchestrator_state ADD COLUMN IF NOT EXISTS cost_observed_until timestamptz;

CREATE INDEX IF NOT EXISTS idx_tasks_complete_processed ON tasks (generation_processed_at)
    WHERE status = 'Complete';

CREATE FUNCTION orchestrator_task_costs(p_lo timestamptz, p_hi timestamptz, p_bounds float8[],
                                        p_max_tasks integer)
RETURNS TABLE (kind text, pool text, task_type text, bucket integer, tasks bigint,
               task_usd float8, runtime_sec float8, unpriced bigint, gpu_usd float8,
               busy_usd float8)
LANGUAGE sql STABLE
SET search_path = public, pg_temp
-- The body is planned with its parameters unknown, so the range of completed tasks is estimated
-- at a third of the table, which crosses jit_above_cost on a large table: JIT compilation then
-- costs ~150 ms to read a few hundred rows (measured at 1,000,000 tasks). The snapshot turns JIT
-- off for the same reason.
SET jit = off
AS $$
WITH lim AS (
    -- the window's completed tasks are read from the newest back, at most max_tasks: past that
    -- many, the window starts at the completion of the (max_tasks + 1)-th newest (an index-only
    -- look-up), and the older ones are not counted
    SELECT greatest(p_lo, coalesce((SELECT t.generation_processed_at FROM tasks t
                                     WHERE t.status = 'Complete' AND t.generation_processed_at > p_lo
                                     ORDER BY t.generation_processed_at DESC
                                    OFFSET p_max_tasks LIMIT 1), p_lo)) AS lo
), g AS (
    -- one pass over the tasks completed after lo (also after hi: their run time inside the
    -- window is busy time), grouped by (pool, task_type[, bucket])
    SELECT w.pool, t.task_type,
           CASE WHEN p_bounds IS NOT NULL AND v.done
                THEN (SELECT count(*)::integer FROM unnest(p_bounds) b WHERE b < v.usd) END AS bucket,
           count(*) FILTER (WHERE v.done) AS tasks,
           sum(v.usd) FILTER (WHERE v.done) AS task_usd,
           sum(v.sec) FILTER (WHERE v.done) AS runtime_sec,
           count(*) FILTER (WHERE v.done AND w.cost_per_hr IS NULL) AS unpriced,
           sum(v.price * v.inside / 3600.0) AS busy_usd
      FROM tasks t
      JOIN workers w ON w.id = t.worker_id
     CROSS JOIN LATERAL (
        SELECT coalesce(w.cost_per_hr, 0)::float8 AS price,
               greatest(0, date_part('epoch', t.generation_processed_at - t.generation_started_at))
                   AS sec,
               coalesce(w.cost_per_hr, 0)::float8 / 3600.0 *
                   greatest(0, date_part('epoch', t.generation_processed_at -
                                                  t.generation_started_at)) AS usd,
               t.generation_processed_at <= p_hi AS done,
               greatest(0, date_part('epoch', least(t.generation_processed_at, p_hi) -
                                              greatest(t.generation_started_at, p_lo))) AS inside
     ) v
     WHERE t.status = 'Complete' AND t.generation_processed_at > (SELECT lim.lo FROM lim)
       AND t.generation_started_at IS NOT NULL
     GROUP BY 1, 2, 3
), alive AS (
    -- each worker's time within (lo, hi], from its creation (RunPod bills from the create)
    -- to its termination (updated_at of a terminated row: the terminated transition) or now
    SELECT w.pool, w.cost_per_hr, w.created_at AS born, now() AS gone
      FROM workers w
     WHERE w.status <> 'terminated' AND w.created_at < p_hi
    UNION ALL
    SELECT w.pool, w.cost_per_hr, w.created_at, w.updated_at
      FROM workers w
     WHERE w.status = 'terminated' AND w.ended_at > p_lo - interval '1 day'
       AND w.created_at < p_hi
)
SELECT 'type', g.pool, g.task_type, g.bucket, g.tasks, g.task_usd, g.runtime_sec, g.unpriced,
       NULL::float8, NULL::float8
  FROM g
 WHERE g.tasks > 0
UNION ALL
SELECT 'pool', x.pool, NULL, NULL, NULL, NULL, NULL, NULL, sum(x.gpu), sum(x.busy)
  FROM (SELECT a.pool,
               coalesce(a.cost_per_hr, 0)::float8 / 3600.0 *
                   greatest(0, date_part('epoch', least(a.gone, p_hi) - greatest(a.born, p_lo)))
                       AS gpu,
               0::float8 AS busy
          FROM alive a
        UNION ALL
        SELECT g.pool, 0, g.busy_usd FROM g
        UNION ALL
        -- tasks still running: their time inside the window so far
        SELECT p.pool, 0,
               coalesce(p.cost_per_hr, 0)::float8 / 3600.0 *
                   greatest(0, date_part('epoch', p_hi - greatest(p.started, p_lo)))
          FROM (SELECT w.pool, w.cost_per_hr, t.generation_started_at AS started
                  FROM tasks t
                  JOIN workers w ON w.id = t.worker_id
                 WHERE t.status = 'In Progress' AND t.generation_started_at < p_hi
                 LIMIT p_max_tasks) p) x
 GROUP BY x.pool
$$;

COMMENT ON FUNCTION orchestrator_task_costs(timestamptz, timestamptz, float8[], integer) IS
    'cost per completed task by (pool, task_type[, histogram bucket]) and GPU/busy cost per pool '
    'within (lo, hi]; bounded by max_tasks completed tasks (issue 17, structure_docs/cost.md)';

REVOKE ALL ON FUNCTION orchestrator_task_costs(timestamptz, timestamptz, float8[], integer)
    FROM PUBLIC;
