-- 0006_gateway.sql: the SQL functions behind `orchestrator gateway`, the HTTP face of the worker
-- contract (issue 13, structure_docs/gateway.md).
--
-- The gateway connects as a login role holding only orchestrator_worker and does all its work
-- through these functions, one call per HTTP request. Each takes the worker id the gateway
-- read from the caller's token (never from the request body) and first checks that the worker
-- row is live: a missing row, or one that has ended (terminated, error, crashed), is refused,
-- so the token of a finished pod is worth nothing. Each returns one row (outcome, body):
--
--   outcome  'ok' | 'empty' | 'refused' | 'not_found' | 'not_holder' | 'not_in_progress'
--   body     the JSON the gateway sends back (or the facts it needs), NULL when none
--
-- The gateway maps the outcome onto an HTTP status; the SQL knows nothing of HTTP. All are
-- SECURITY DEFINER with a pinned search_path, like the contract of 0003.

-- --------------------------------------------------------------------------------------------
-- Helpers (not granted to workers)

-- func_gateway_worker_state: the worker's status when its row is live, 'refused:<status>' when
-- it has ended, 'refused:unknown' when there is no such row.
CREATE FUNCTION func_gateway_worker_state(p_worker_id text)
RETURNS text
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT CASE
               WHEN w.status IS NULL THEN 'refused:unknown'
               WHEN w.status IN ('terminated', 'error', 'crashed') THEN 'refused:' || w.status
               ELSE w.status::text END
      FROM (SELECT (SELECT status FROM workers WHERE id = p_worker_id) AS status) w
$$;

-- func_gateway_task_json: the task as the worker reads it (task_id, params, task_type,
-- project_id, plus run_type, attempts and status for the curious).
CREATE FUNCTION func_gateway_task_json(p_task tasks)
RETURNS jsonb
LANGUAGE sql IMMUTABLE
SET search_path = public, pg_temp
AS $$
    SELECT jsonb_build_object('task_id', p_task.id, 'id', p_task.id,
                              'params', p_task.params, 'task_type', p_task.task_type,
                              'project_id', p_task.project_id, 'run_type', p_task.run_type,
                              'attempts', p_task.attempts, 'status', p_task.status::text)
$$;

-- func_gateway_why_not: why a holder-guarded write changed nothing: 'not_found', 'not_holder'
-- (another worker, or nobody, holds it) or 'not_in_progress' (this worker's, but finished).
CREATE FUNCTION func_gateway_why_not(p_task_id uuid, p_worker_id text)
RETURNS text
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
    SELECT CASE
               WHEN t.id IS NULL THEN 'not_found'
               WHEN t.worker_id IS DISTINCT FROM p_worker_id THEN 'not_holder'
               ELSE 'not_in_progress' END
      FROM (SELECT p_task_id AS k) k
      LEFT JOIN tasks t ON t.id = k.k
$$;

-- --------------------------------------------------------------------------------------------
-- Heartbeat

-- func_gateway_heartbeat: POST /rest/v1/rpc/func_worker_heartbeat_with_logs. A live worker's
-- beat is func_worker_heartbeat_with_logs (NULL VRAM figures are not written: the gateway
-- passes NULL for the dialect's "0, 0 = unknown"). p_crashed (status_param "crashed") ends the
-- worker: active -> crashed, spawning/terminating -> error (the only legal moves), with
-- error_reason and error_time; the next cycle fails it and recovers its tasks.
CREATE FUNCTION func_gateway_heartbeat(p_worker_id text, p_vram_total_mb integer,
                                       p_vram_used_mb integer, p_logs jsonb,
                                       p_crashed boolean)
RETURNS TABLE (outcome text, body jsonb)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_state text := func_gateway_worker_state(p_worker_id);
    v_beat  jsonb;
BEGIN
    IF v_state LIKE 'refused:%' THEN
        RETURN QUERY SELECT 'refused'::text, jsonb_build_object('worker_status',
                                                                 substr(v_state, 9));
        RETURN;
    END IF;
    v_beat := func_worker_heartbeat_with_logs(p_worker_id, p_vram_total_mb, p_vram_used_mb,
                                              coalesce(p_logs, '[]'::jsonb), NULL);
    IF coalesce(p_crashed, false) THEN
        UPDATE workers
           SET status = CASE WHEN status = 'active' THEN 'crashed'::worker_status
                             ELSE 'error'::worker_status END,
               metadata = metadata || jsonb_build_object(
                   'error_reason', 'Worker reported a crash (heartbeat status_param "crashed")',
                   'error_time', extract(epoch FROM now()))
         WHERE id = p_worker_id
           AND status IN ('spawning', 'active', 'terminating')
        RETURNING status::text INTO v_state;
        v_beat := v_beat || jsonb_build_object('worker_status', v_state, 'crash_recorded',
                                               v_state IS NOT NULL);
    END IF;
    RETURN QUERY SELECT 'ok'::text, v_beat;
END;
$$;

-- --------------------------------------------------------------------------------------------
-- Queue

-- func_gateway_task_counts: POST /functions/v1/task-counts. Counted over the run types the
-- worker may claim -- its pool's, from worker_pools (0008), exactly as func_claim_next_task
-- claims -- not over p_run_type: the reference worker always sends "gpu", and a worker of pool
-- `video` told "0 queued" would never try to claim its video tasks. A worker whose pool serves
-- nothing (no worker_pools row yet, a pool removed) sees 0, as its claim would find nothing.
-- queued_only = Queued tasks; eligible_queued = the claimable ones (the snapshot's rule and
-- func_claim_next_task's: available_at passed, every dependency Complete); active_only =
-- In Progress; queued_plus_active = queued_only + active_only.
CREATE FUNCTION func_gateway_task_counts(p_worker_id text, p_run_type text)
RETURNS TABLE (outcome text, body jsonb)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_state    text := func_gateway_worker_state(p_worker_id);
    v_run_type  text := coalesce(p_run_type, 'gpu');
    v_run_types text[];
    v_queued    bigint;
    v_eligible  bigint;
    v_active    bigint;
BEGIN
    IF v_state LIKE 'refused:%' THEN
        RETURN QUERY SELECT 'refused'::text, jsonb_build_object('worker_status',
                                                                 substr(v_state, 9));
        RETURN;
    END IF;
    SELECT coalesce(wp.run_types, '{}') INTO v_run_types
      FROM workers w LEFT JOIN worker_pools wp ON wp.name = w.pool
     WHERE w.id = p_worker_id;
    v_run_types := coalesce(v_run_types, '{}');
    SELECT count(*) INTO v_queued FROM tasks t
     WHERE t.status = 'Queued' AND t.run_type = ANY (v_run_types);
    SELECT (SELECT count(*) FROM tasks t WHERE t.status = 'Queued'
               AND t.run_type = ANY (v_run_types)
               AND t.available_at <= now() AND t.dependant_on IS NULL)
         + (SELECT count(*) FROM tasks t WHERE t.status = 'Queued'
               AND t.run_type = ANY (v_run_types)
               AND t.available_at <= now() AND t.dependant_on IS NOT NULL AND NOT EXISTS (
                   SELECT 1 FROM unnest(t.dependant_on) AS d(id) LEFT JOIN tasks p ON p.id = d.id
                    WHERE p.status IS DISTINCT FROM 'Complete'))
      INTO v_eligible;
    SELECT count(*) INTO v_active FROM tasks t
     WHERE t.status = 'In Progress' AND t.run_type = ANY (v_run_types);
    RETURN QUERY SELECT 'ok'::text, jsonb_build_object(
        'totals', jsonb_build_object('queued_only', v_queued, 'eligible_queued', v_eligible,
                                     'active_only', v_active,
                                     'queued_plus_active', v_queued + v_active),
        'run_type', v_run_type, 'run_types', to_jsonb(v_run_types), 'worker_status', v_state);
END;
$$;

-- func_gateway_claim: POST /functions/v1/claim-next-task. 'ok' with the task (func_claim_next_task
-- claimed it for this worker), 'empty' when there is nothing to claim or the worker is not
-- active (spawning, terminating: a draining worker gets no new work), 'refused' when it ended.
-- The claim comes first: it succeeds only for an active worker, so the state check is needed
-- (and paid for) only when nothing was claimed; this is the gateway's hottest statement.
CREATE FUNCTION func_gateway_claim(p_worker_id text, p_run_type text)
RETURNS TABLE (outcome text, body jsonb)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_state text;
    v_task  tasks;
BEGIN
    SELECT * INTO v_task FROM func_claim_next_task(p_worker_id, coalesce(p_run_type, 'gpu'));
    IF v_task.id IS NOT NULL THEN
        RETURN QUERY SELECT 'ok'::text, func_gateway_task_json(v_task);
        RETURN;
    END IF;
    v_state := func_gateway_worker_state(p_worker_id);
    IF v_state LIKE 'refused:%' THEN
        RETURN QUERY SELECT 'refused'::text, jsonb_build_object('worker_status',
                                                                 substr(v_state, 9));
        RETURN;
    END IF;
    RETURN QUERY SELECT 'empty'::text, jsonb_build_object('worker_status', v_state);
END;
$$;

-- func_gateway_held_tasks: GET /rest/v1/tasks?worker_id=eq.W&status=eq.In%20Progress (the
-- worker's lost-claim recovery): a JSON array of at most p_limit (1..100) tasks this worker
-- holds In Progress, oldest claim first.
CREATE FUNCTION func_gateway_held_tasks(p_worker_id text, p_limit integer)
RETURNS TABLE (outcome text, body jsonb)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_state text := func_gateway_worker_state(p_worker_id);
BEGIN
    IF v_state LIKE 'refused:%' THEN
        RETURN QUERY SELECT 'refused'::text, jsonb_build_object('worker_status',
                                                                 substr(v_state, 9));
        RETURN;
    END IF;
    RETURN QUERY
    SELECT 'ok'::text, coalesce(jsonb_agg(func_gateway_task_json(h) ORDER BY
                                          h.generation_started_at, h.id), '[]'::jsonb)
      FROM (SELECT t.* FROM tasks t
             WHERE t.status = 'In Progress' AND t.worker_id = p_worker_id
             ORDER BY t.generation_started_at, t.id
             LIMIT least(greatest(coalesce(p_limit, 1), 1), 100)) h;
END;
$$;

-- --------------------------------------------------------------------------------------------
-- Results

-- func_gateway_task_update: POST /functions/v1/update-task-status for a task this worker holds.
--   'Failed'      func_mark_task_failed (the retry/attempt rule, p_text as the error)
--   'Complete'    func_mark_task_complete (p_text, when given, as output_location)
--   'In Progress' with p_reset: generation_started_at = now() when this worker holds it In
--                 Progress (after a model load); otherwise, and without p_reset, a no-op 'ok'.
-- Anything else is refused by the gateway before it gets here. Outcomes other than 'ok' come
-- from func_gateway_why_not.
CREATE FUNCTION func_gateway_task_update(p_worker_id text, p_task_id uuid, p_status text,
                                         p_text text, p_reset boolean)
RETURNS TABLE (outcome text, body jsonb)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_state text := func_gateway_worker_state(p_worker_id);
    v_ok    boolean;
    v_now   text;
BEGIN
    IF v_state LIKE 'refused:%' THEN
        RETURN QUERY SELECT 'refused'::text, jsonb_build_object('worker_status',
                                                                 substr(v_state, 9));
        RETURN;
    END IF;
    IF p_status = 'Failed' THEN
        v_ok := func_mark_task_failed(p_task_id, p_worker_id, p_text);
    ELSIF p_status = 'Complete' THEN
        v_ok := func_mark_task_complete(p_task_id, p_worker_id, NULL, p_text);
    ELSIF p_status = 'In Progress' THEN
        IF coalesce(p_reset, false) THEN
            UPDATE tasks SET generation_started_at = now()
             WHERE id = p_task_id AND worker_id = p_worker_id AND status = 'In Progress';
            v_ok := FOUND;
        END IF;
        SELECT status::text INTO v_now FROM tasks
         WHERE id = p_task_id AND worker_id = p_worker_id;
        RETURN QUERY SELECT 'ok'::text, jsonb_build_object(
            'success', true, 'task_id', p_task_id, 'status', coalesce(v_now, 'unknown'),
            'message', CASE WHEN v_ok THEN 'generation_started_at reset'
                            ELSE 'nothing to change' END);
        RETURN;
    ELSE
        RAISE EXCEPTION 'func_gateway_task_update: unsupported status %', p_status
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT v_ok THEN
        RETURN QUERY SELECT func_gateway_why_not(p_task_id, p_worker_id), NULL::jsonb;
        RETURN;
    END IF;
    SELECT status::text INTO v_now FROM tasks WHERE id = p_task_id;
    RETURN QUERY SELECT 'ok'::text, jsonb_build_object(
        'success', true, 'task_id', p_task_id, 'status', v_now,
        'message', CASE WHEN v_now = 'Queued' THEN 'task queued for another attempt'
                        WHEN v_now = 'Failed' THEN 'task failed for good (attempts exhausted)'
                        ELSE 'task complete' END);
END;
$$;

-- func_gateway_task_for_upload: may this worker store files for p_task_id? 'ok' with
-- {project_id} when it holds the task In Progress (files go under the task's project, or
-- "system"); otherwise func_gateway_why_not's outcome.
CREATE FUNCTION func_gateway_task_for_upload(p_worker_id text, p_task_id uuid)
RETURNS TABLE (outcome text, body jsonb)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_state   text := func_gateway_worker_state(p_worker_id);
    v_project uuid;
BEGIN
    IF v_state LIKE 'refused:%' THEN
        RETURN QUERY SELECT 'refused'::text, jsonb_build_object('worker_status',
                                                                 substr(v_state, 9));
        RETURN;
    END IF;
    SELECT t.project_id INTO v_project FROM tasks t
     WHERE t.id = p_task_id AND t.worker_id = p_worker_id AND t.status = 'In Progress';
    IF NOT FOUND THEN
        RETURN QUERY SELECT func_gateway_why_not(p_task_id, p_worker_id), NULL::jsonb;
        RETURN;
    END IF;
    RETURN QUERY SELECT 'ok'::text, jsonb_build_object('project_id', v_project);
END;
$$;

-- func_gateway_complete: POST /functions/v1/complete_task after the gateway stored (or
-- checked) the output: func_mark_task_complete with p_result and p_output_location.
CREATE FUNCTION func_gateway_complete(p_worker_id text, p_task_id uuid, p_result jsonb,
                                      p_output_location text)
RETURNS TABLE (outcome text, body jsonb)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_state text := func_gateway_worker_state(p_worker_id);
BEGIN
    IF v_state LIKE 'refused:%' THEN
        RETURN QUERY SELECT 'refused'::text, jsonb_build_object('worker_status',
                                                                 substr(v_state, 9));
        RETURN;
    END IF;
    IF NOT func_mark_task_complete(p_task_id, p_worker_id, p_result, p_output_location) THEN
        RETURN QUERY SELECT func_gateway_why_not(p_task_id, p_worker_id), NULL::jsonb;
        RETURN;
    END IF;
    RETURN QUERY SELECT 'ok'::text, p_result;
END;
$$;

-- --------------------------------------------------------------------------------------------
-- Grants: the gateway's role holds orchestrator_worker and calls only the entry points.

REVOKE ALL ON FUNCTION
    func_gateway_worker_state(text),
    func_gateway_task_json(tasks),
    func_gateway_why_not(uuid, text),
    func_gateway_heartbeat(text, integer, integer, jsonb, boolean),
    func_gateway_task_counts(text, text),
    func_gateway_claim(text, text),
    func_gateway_held_tasks(text, integer),
    func_gateway_task_update(text, uuid, text, text, boolean),
    func_gateway_task_for_upload(text, uuid),
    func_gateway_complete(text, uuid, jsonb, text)
    FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
    func_gateway_heartbeat(text, integer, integer, jsonb, boolean),
    func_gateway_task_counts(text, text),
    func_gateway_claim(text, text),
    func_gateway_held_tasks(text, integer),
    func_gateway_task_update(text, uuid, text, text, boolean),
    func_gateway_task_for_upload(text, uuid),
    func_gateway_complete(text, uuid, jsonb, text)
    TO orchestrator_worker;
