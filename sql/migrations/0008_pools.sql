-- 0008_pools.sql: worker pools (issue 14).
--
-- A worker belongs to one pool (workers.pool, set at spawn; existing rows join `default`), and a
-- pool serves a set of run types (worker_pools, written by the orchestrator from POOLS /
-- POOL_<NAME>_RUN_TYPES whenever the configuration changes). func_claim_next_task hands a worker
-- only tasks of its own pool's run types, whatever run_type the worker passes: the reference
-- worker always sends "gpu". A pool the configuration no longer names keeps its row with no run
-- type, so its remaining workers claim nothing and are scaled down.

ALTER TABLE workers ADD COLUMN pool text NOT NULL DEFAULT 'default';

COMMENT ON COLUMN workers.pool IS
    'the worker pool (POOLS) the worker was spawned for; it claims only that pool''s run types';

CREATE INDEX idx_workers_pool_ended ON workers (pool, ended_at) WHERE ended_at IS NOT NULL;

CREATE TABLE worker_pools (
    name       text PRIMARY KEY,
    run_types  text[] NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE worker_pools IS
    'which run types each pool''s workers may claim; written by the orchestrator from its '
    'configuration (a pool no longer configured keeps an empty list)';

-- Until the orchestrator writes its configuration, the one pool of a deployment without POOLS.
INSERT INTO worker_pools (name, run_types) VALUES ('default', ARRAY['gpu']);

REVOKE ALL ON TABLE worker_pools FROM PUBLIC, orchestrator_worker;

-- func_claim_next_task: as in 0003 (the worker row locked first, FOR UPDATE SKIP LOCKED on the
-- candidate, the status re-checked in the update), with the candidate's run_type among the run
-- types of the worker's pool. p_run_type is accepted for compatibility and ignored: the pool
-- decides. A worker whose pool has no row claims nothing.
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

    WITH candidate AS (
        SELECT t.id
          FROM tasks t
         WHERE t.status = 'Queued'
           AND t.run_type = ANY (v_run_types)
           AND t.available_at <= now()
           AND (t.dependant_on IS NULL OR NOT EXISTS (
                   SELECT 1
                     FROM unnest(t.dependant_on) AS d(id)
                     LEFT JOIN tasks p ON p.id = d.id
                    WHERE p.status IS DISTINCT FROM 'Complete'))
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

    IF v_task.id IS NULL THEN
        RETURN;
    END IF;

    UPDATE workers SET last_task_activity_at = now() WHERE id = p_worker_id;
    RETURN NEXT v_task;
END;
$$;

-- orchestrator_sync_pools: makes worker_pools say what the configuration says. p_pools is a
-- JSON object {pool name: [run types]}; pools not in it keep their row with no run type.
-- Returns the number of rows changed (0 when nothing differed). Called by the orchestrator only.
CREATE FUNCTION orchestrator_sync_pools(p_pools jsonb)
RETURNS integer
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
DECLARE
    v_changed integer := 0;
    v_n       integer;
BEGIN
    WITH wanted AS (
        SELECT key AS name,
               ARRAY(SELECT jsonb_array_elements_text(value)) AS run_types
          FROM jsonb_each(p_pools))
    INSERT INTO worker_pools AS wp (name, run_types)
    SELECT name, run_types FROM wanted
    ON CONFLICT (name) DO UPDATE SET run_types = EXCLUDED.run_types, updated_at = now()
     WHERE wp.run_types IS DISTINCT FROM EXCLUDED.run_types;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    v_changed := v_changed + v_n;
    UPDATE worker_pools SET run_types = '{}', updated_at = now()
     WHERE NOT (p_pools ? name) AND cardinality(run_types) > 0;
    GET DIAGNOSTICS v_n = ROW_COUNT;
    RETURN v_changed + v_n;
END;
$$;

REVOKE ALL ON FUNCTION orchestrator_sync_pools(jsonb) FROM PUBLIC;
