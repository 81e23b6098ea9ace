-- helpers.sql: test-only helpers, installed by tests/sql/run.sh into schema sqltest of the
-- throw-away test database (never part of the migrations).

CREATE SCHEMA sqltest;

-- Creates worker p_id in state p_status by walking legal transitions from 'spawning' (or
-- inserting the legacy 'inactive'), exactly as the orchestrator would.
CREATE FUNCTION sqltest.mk_worker(p_id text, p_status worker_status,
                                  p_metadata jsonb DEFAULT '{}'::jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    v_path worker_status[];
    v_step worker_status;
BEGIN
    IF p_status = 'inactive' THEN
        INSERT INTO workers (id, status, metadata) VALUES (p_id, 'inactive', p_metadata);
        RETURN;
    END IF;
    INSERT INTO workers (id, status, metadata) VALUES (p_id, 'spawning', p_metadata);
    v_path := CASE p_status
        WHEN 'spawning' THEN ARRAY[]::worker_status[]
        WHEN 'active' THEN ARRAY['active']::worker_status[]
        WHEN 'terminating' THEN ARRAY['active', 'terminating']::worker_status[]
        WHEN 'error' THEN ARRAY['error']::worker_status[]
        WHEN 'crashed' THEN ARRAY['active', 'crashed']::worker_status[]
        WHEN 'terminated' THEN ARRAY['terminating', 'terminated']::worker_status[]
        WHEN 'stopped' THEN ARRAY['active', 'terminating', 'stopped']::worker_status[]
    END;
    FOREACH v_step IN ARRAY v_path LOOP
        UPDATE workers SET status = v_step WHERE id = p_id;
    END LOOP;
END;
$$;

-- Runs p_sql as role orchestrator_worker; returns 'ok' or the SQLSTATE it failed with.
-- (pgTAP itself cannot run under that role: its temp tables belong to the session user.)
CREATE FUNCTION sqltest.as_worker(p_sql text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_result text := 'ok';
BEGIN
    PERFORM set_config('role', 'orchestrator_worker', true);
    BEGIN
        EXECUTE p_sql;
    EXCEPTION WHEN OTHERS THEN
        v_result := SQLSTATE;
    END;
    PERFORM set_config('role', 'none', true);
    RETURN v_result;
END;
$$;

-- The legal transitions, written out independently of the migration (SPEC 4.2).
CREATE FUNCTION sqltest.legal_transitions()
RETURNS TABLE (from_status worker_status, to_status worker_status)
LANGUAGE sql AS $$
    VALUES ('spawning'::worker_status, 'active'::worker_status),
           ('spawning', 'terminating'), ('spawning', 'error'),
           ('active', 'terminating'), ('active', 'error'), ('active', 'crashed'),
           ('crashed', 'error'),
           ('terminating', 'terminated'), ('terminating', 'error'),
           ('error', 'terminated'),
           ('inactive', 'spawning'), ('inactive', 'terminated'),
           -- issue 16: the stopped-pod warm pool (0011_runpod_lifecycle.sql)
           ('terminating', 'stopped'), ('stopped', 'spawning'), ('stopped', 'terminated'),
           ('stopped', 'error')
$$;

-- Claims as func_claim_next_task does, for a worker moved first into a pool that serves exactly
-- p_run_type (pool 't-<run type>', created on demand). Since issue 14 the claim function takes
-- the run types from the worker's pool and ignores p_run_type; the contract tests of the claim
-- mechanics (order, dependencies, backoff, status) keep one run type per section this way.
CREATE FUNCTION sqltest.claim(p_worker_id text, p_run_type text DEFAULT 'gpu')
RETURNS SETOF tasks LANGUAGE plpgsql AS $$
DECLARE
    v_pool text := 't-' || coalesce(p_run_type, 'gpu');
BEGIN
    INSERT INTO worker_pools (name, run_types)
    VALUES (v_pool, ARRAY[coalesce(p_run_type, 'gpu')]) ON CONFLICT (name) DO NOTHING;
    UPDATE workers SET pool = v_pool WHERE id = p_worker_id AND pool IS DISTINCT FROM v_pool;
    RETURN QUERY SELECT * FROM func_claim_next_task(p_worker_id, p_run_type);
END;
$$;
