-- 0016_claim_per_run_type.sql: func_claim_next_task finds the oldest claimable task of each of
-- the pool's run types through the ordered claim index, instead of sorting the whole queue.
--
-- 0008 made the claim take any of the pool's run types with `run_type = ANY (v_run_types)`;
-- PostgreSQL 15 cannot read idx_tasks_claim (run_type, created_at, id) in order under = ANY,
-- so every claim sorted every Queued task of the pool: at 20,000 queued tasks 40-70 ms per
-- claim, and 64 workers claiming at once through the gateway exhausted its database pool
-- (scripts/bench.sh item 6). Same rule as before: the oldest claimable task (created_at, id)
-- among the pool's run types, FOR UPDATE SKIP LOCKED, the status re-checked in the update, and
-- only the row it takes locked (tests/sql/review_0016.sh: a claim that locked the head of every
-- run type left concurrent claims of the same pool empty while a task was free).

CREATE OR REPLACE FUNCTION func_claim_next_task(p_worker_id text, p_run_type text DEFAULT 'gpu')
RETURNS SETOF tasks
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_status    worker_status;
    v_pool      text;
    v_run_types text[];
    v_task      tasks;
BEGIN
    SELECT w.status, w.pool INTO v_status, v_pool
      FROM workers w WHERE w.id = p_worker_id FOR NO KEY UPDATE;
    IF NOT FOUND OR v_status <> 'active' THEN
        RETURN;
    END IF;
    SELECT wp.run_types INTO v_run_types FROM worker_pools wp WHERE wp.name = v_pool;
    IF v_run_types IS NULL OR cardinality(v_run_types) = 0 THEN
        RETURN;
    END IF;

    -- 1. Peek, without locks, at the first few claimable tasks of each served run type (one
    --    ordered scan of idx_tasks_claim each), then lock ONE of them, oldest first, SKIP LOCKED:
    --    a concurrent claim of the same pool is never kept from a task this claim does not take.
    WITH peek AS (
        SELECT c.id
          FROM unnest(v_run_types) AS rt(run_type)
          CROSS JOIN LATERAL (
              SELECT t.id
                FROM tasks t
               WHERE t.status = 'Queued'
                 AND t.run_type = rt.run_type
                 AND t.available_at <= now()
                 AND (t.dependant_on IS NULL OR NOT EXISTS (
                         SELECT 1
                           FROM unnest(t.dependant_on) AS d(id)
                           LEFT JOIN tasks p ON p.id = d.id
                          WHERE p.status IS DISTINCT FROM 'Complete'))
               ORDER BY t.created_at, t.id
               LIMIT 8) c
    ), candidate AS (
        SELECT t.id
          FROM tasks t
         WHERE t.id IN (SELECT id FROM peek)
           AND t.status = 'Queued'
         ORDER BY t.created_at, t.id
         LIMIT 1
           FOR UPDATE OF t SKIP LOCKED
    )
    UPDATE tasks t
       SET status = 'In Progress',
           worker_id = p_worker_id,
           generation_started_at = now(),
           generation_processed_at = NULL
      FROM candidate c
     WHERE t.id = c.id
       AND t.status = 'Queued'
    RETURNING t.* INTO v_task;

    -- 2. Every peeked task was taken or locked by concurrent claims: each run type's oldest
    --    claimable task past them, locked SKIP LOCKED, and the oldest of those.
    IF v_task.id IS NULL THEN
        WITH candidate AS (
            SELECT c.id
              FROM unnest(v_run_types) AS rt(run_type)
              CROSS JOIN LATERAL (
                  SELECT t.id, t.created_at
                    FROM tasks t
                   WHERE t.status = 'Queued'
                     AND t.run_type = rt.run_type
                     AND t.available_at <= now()
                     AND (t.dependant_on IS NULL OR NOT EXISTS (
                             SELECT 1
                               FROM unnest(t.dependant_on) AS d(id)
                               LEFT JOIN tasks p ON p.id = d.id
                              WHERE p.status IS DISTINCT FROM 'Complete'))
                   ORDER BY t.created_at, t.id
                   LIMIT 1
                     FOR UPDATE OF t SKIP LOCKED) c
             ORDER BY c.created_at, c.id
             LIMIT 1
        )
        UPDATE tasks t
           SET status = 'In Progress',
               worker_id = p_worker_id,
               generation_started_at = now(),
               generation_processed_at = NULL
          FROM candidate c
         WHERE t.id = c.id
           AND t.status = 'Queued'
        RETURNING t.* INTO v_task;
    END IF;

    IF v_task.id IS NULL THEN
        RETURN;
    END IF;

    UPDATE workers SET last_task_activity_at = now() WHERE id = p_worker_id;
    RETURN NEXT v_task;
END;
$$;
