-- 0007_hardening.sql: the fixes of issue 12 that live in the database.
--
--   * pods_first_seen: when this system first saw each RunPod pod whose createdAt it could not
--     read, so such a pod still ages (and a leaked one is still terminated) instead of being
--     immortal.
--   * One rule for a task's attempt limit, used by the orchestrator's recovery and by the
--     worker's func_mark_task_failed alike: tasks.max_attempts when it is set, otherwise the
--     fleet's MAX_TASK_ATTEMPTS, which every cycle records in orchestrator_state. New tasks
--     inserted without max_attempts follow the setting; rows that already hold a number keep it.
--   * orchestrator_mark_terminating / orchestrator_drain_worker: the move to terminating (and
--     the scale-down drain, which proves the worker holds no task) as functions, so the
--     orchestrator and the race tests run the same statements.

-- --------------------------------------------------------------------------------------------
-- Pods first seen

CREATE TABLE pods_first_seen (
    pod_id        text PRIMARY KEY,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE pods_first_seen IS
    'RunPod pods listed without a readable createdAt: their age counts from first_seen_at';

REVOKE ALL ON TABLE pods_first_seen FROM PUBLIC, orchestrator_worker;

-- --------------------------------------------------------------------------------------------
-- Attempt limit

ALTER TABLE orchestrator_state
    ADD COLUMN max_task_attempts integer NOT NULL DEFAULT 3 CHECK (max_task_attempts >= 1);

COMMENT ON COLUMN orchestrator_state.max_task_attempts IS
    'MAX_TASK_ATTEMPTS of the last cycle: the limit of tasks whose max_attempts is NULL';

ALTER TABLE tasks ALTER COLUMN max_attempts DROP NOT NULL;
ALTER TABLE tasks ALTER COLUMN max_attempts DROP DEFAULT;

COMMENT ON COLUMN tasks.max_attempts IS
    'attempts before the task is Failed for good; NULL = the fleet setting MAX_TASK_ATTEMPTS '
    '(orchestrator_state.max_task_attempts)';

-- func_task_max_attempts: the attempt limit of a task whose max_attempts is p_max_attempts.
CREATE FUNCTION func_task_max_attempts(p_max_attempts integer)
RETURNS integer
LANGUAGE sql STABLE
SET search_path = public, pg_temp
AS $$
    SELECT coalesce(nullif(p_max_attempts, 0),
                    (SELECT s.max_task_attempts FROM orchestrator_state s WHERE s.id = 1),
                    3)
$$;

REVOKE ALL ON FUNCTION func_task_max_attempts(integer) FROM PUBLIC;

-- func_mark_task_failed: as in 0003, with the one attempt-limit rule above.
CREATE OR REPLACE FUNCTION func_mark_task_failed(p_task_id uuid, p_worker_id text, p_error text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_limit integer;
BEGIN
    SELECT func_task_max_attempts(t.max_attempts) INTO v_limit
      FROM tasks t
     WHERE t.id = p_task_id;
    UPDATE tasks t
       SET attempts = t.attempts + 1,
           error_message = p_error,
           status = CASE WHEN t.attempts + 1 >= v_limit
                         THEN 'Failed'::task_status ELSE 'Queued'::task_status END,
           worker_id = CASE WHEN t.attempts + 1 >= v_limit THEN t.worker_id ELSE NULL END,
           generation_started_at = CASE WHEN t.attempts + 1 >= v_limit
                                        THEN t.generation_started_at ELSE NULL END,
           generation_processed_at = CASE WHEN t.attempts + 1 >= v_limit
                                          THEN now() ELSE NULL END,
           available_at = CASE WHEN t.attempts + 1 >= v_limit
                               THEN t.available_at
                               ELSE now() + func_task_retry_delay(t.attempts + 1) END
     WHERE t.id = p_task_id
       AND t.worker_id = p_worker_id
       AND t.status = 'In Progress';
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE workers SET last_task_activity_at = now() WHERE id = p_worker_id;
    RETURN true;
END;
$$;

-- --------------------------------------------------------------------------------------------
-- The scale-down drain

-- orchestrator_mark_terminating: the one statement that moves a worker to terminating, with
-- the bookkeeping the orchestrator reads later (metadata.terminating_at, the graceful-shutdown
-- clock; terminating_reason; ended_at and end_kind for the circuit breaker). Only from p_from;
-- with p_require_idle, only while the worker holds no In Progress task. Returns whether the row
-- moved. The operator's terminate uses it without the idle proof (the tasks are recovered
-- next), the scale-down drain with it (orchestrator_drain_worker).
CREATE FUNCTION orchestrator_mark_terminating(p_worker_id text, p_from worker_status,
                                              p_reason text, p_require_idle boolean)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    UPDATE workers
       SET status = 'terminating',
           metadata = metadata || jsonb_build_object('terminating_at', extract(epoch FROM now()),
                                                     'terminating_reason', p_reason),
           ended_at = coalesce(ended_at, now()),
           end_kind = coalesce(end_kind, 'expected')
     WHERE id = p_worker_id
       AND status = p_from
       AND (NOT p_require_idle
            OR NOT EXISTS (SELECT 1 FROM tasks
                            WHERE worker_id = p_worker_id AND status = 'In Progress'));
    RETURN FOUND;
END;
$$;

REVOKE ALL ON FUNCTION orchestrator_mark_terminating(text, worker_status, text, boolean)
    FROM PUBLIC;

-- orchestrator_drain_worker: active -> terminating, only while the worker holds no In Progress
-- task. The worker row is locked first (FOR UPDATE): func_claim_next_task locks it too (FOR NO
-- KEY UPDATE) before claiming, so once we hold it no claim is in flight and none can start; the
-- UPDATE then proves no task is held. Returns true when the worker was drained, false when it
-- was not active or holds a task (nothing changed). Called by the orchestrator only.
CREATE FUNCTION orchestrator_drain_worker(p_worker_id text, p_reason text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
DECLARE
    v_status worker_status;
BEGIN
    SELECT w.status INTO v_status FROM workers w WHERE w.id = p_worker_id FOR UPDATE;
    IF NOT FOUND OR v_status <> 'active' THEN
        RETURN false;
    END IF;
    RETURN orchestrator_mark_terminating(p_worker_id, 'active', p_reason, true);
END;
$$;

REVOKE ALL ON FUNCTION orchestrator_drain_worker(text, text) FROM PUBLIC;
