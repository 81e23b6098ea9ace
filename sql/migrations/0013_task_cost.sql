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
--     Bounded: at most max_tasks completed tasks (the newest) are read per part, through the
--     partial index below; live workers through idx_workers_not_terminated, ended ones through
--     idx_workers_ended. Never a scan of the task history.
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
AS $$
WITH done AS (
    -- tasks completed in (lo, hi], newest first, at most max_tasks
    SELECT t.task_type, w.pool, w.cost_per_hr,
           greatest(0, extract(epoch FROM t.generation_processed_at - t.generation_started_at))
               ::float8 AS sec
      FROM tasks t
      JOIN workers w ON w.id = t.worker_id
     WHERE t.status = 'Complete'
       AND t.generation_processed_at > p_lo AND t.generation_processed_at <= p_hi
       AND t.generation_started_at IS NOT NULL
     ORDER BY t.generation_processed_at DESC
     LIMIT p_max_tasks
), priced AS (
    SELECT d.*, coalesce(d.cost_per_hr, 0)::float8 * d.sec / 3600.0 AS usd FROM done d
), run AS (
    -- task run time inside (lo, hi]: completed after lo (also after hi), or still running
    SELECT pool, cost_per_hr, started, finished FROM (
        SELECT w.pool, w.cost_per_hr, t.generation_started_at AS started,
               t.generation_processed_at AS finished
          FROM tasks t
          JOIN workers w ON w.id = t.worker_id
         WHERE t.status = 'Complete' AND t.generation_processed_at > p_lo
           AND t.generation_started_at IS NOT NULL
         ORDER BY t.generation_processed_at DESC
         LIMIT p_max_tasks) c
    UNION ALL
    SELECT * FROM (
        SELECT w.pool, w.cost_per_hr, t.generation_started_at, NULL::timestamptz
          FROM tasks t
          JOIN workers w ON w.id = t.worker_id
         WHERE t.status = 'In Progress' AND t.generation_started_at < p_hi
         LIMIT p_max_tasks) p
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
SELECT 'type', p.pool, p.task_type,
       CASE WHEN p_bounds IS NULL THEN NULL
            ELSE (SELECT count(*)::integer FROM unnest(p_bounds) b WHERE b < p.usd) END,
       count(*), sum(p.usd), sum(p.sec), count(*) FILTER (WHERE p.cost_per_hr IS NULL),
       NULL::float8, NULL::float8
  FROM priced p
 GROUP BY 2, 3, 4
UNION ALL
SELECT 'pool', x.pool, NULL, NULL, NULL, NULL, NULL, NULL, sum(x.gpu), sum(x.busy)
  FROM (SELECT a.pool,
               coalesce(a.cost_per_hr, 0)::float8 / 3600.0 *
                   greatest(0, extract(epoch FROM least(a.gone, p_hi) - greatest(a.born, p_lo)))
                       ::float8 AS gpu,
               0::float8 AS busy
          FROM alive a
        UNION ALL
        SELECT r.pool, 0,
               coalesce(r.cost_per_hr, 0)::float8 / 3600.0 *
                   greatest(0, extract(epoch FROM least(coalesce(r.finished, p_hi), p_hi) -
                                                  greatest(r.started, p_lo)))::float8
          FROM run r) x
 GROUP BY x.pool
$$;

COMMENT ON FUNCTION orchestrator_task_costs(timestamptz, timestamptz, float8[], integer) IS
    'cost per completed task by (pool, task_type[, histogram bucket]) and GPU/busy cost per pool '
    'within (lo, hi]; bounded by max_tasks completed tasks (issue 17, structure_docs/cost.md)';

REVOKE ALL ON FUNCTION orchestrator_task_costs(timestamptz, timestamptz, float8[], integer)
    FROM PUBLIC;
