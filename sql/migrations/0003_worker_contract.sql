-- 0003_worker_contract.sql: the SQL functions GPU workers call (SPEC 4.3), the worker role and
-- its grants, and the NOTIFY that wakes `orchestrator continuous` when tasks are queued.
--
-- Every function is SECURITY DEFINER with a pinned search_path, so the role
-- orchestrator_worker needs EXECUTE on these functions and no privilege on any table.
-- Timestamps come from now() (the database clock), never from the caller.
--
-- Bugs of the original these functions must not repeat (python-original 1.7, 1.8, 10):
--   * one task handed to two workers (no SKIP LOCKED, no status re-check);
--   * claim functions that fail with enum/text type mismatches;
--   * heartbeats that create "external" rows, overwrite status or replace metadata wholesale;
--   * a retried task left with generation_started_at set, retried without delay.

-- --------------------------------------------------------------------------------------------
-- Claim

-- func_claim_next_task: claims the oldest claimable task for an *active* worker.
-- Claimable = Queued, run_type = p_run_type, available_at <= now(), and every id in
-- dependant_on names an existing Complete task. Returns the claimed row, or no row.
--
-- Concurrency: the worker row is locked first (FOR NO KEY UPDATE), which conflicts with the
-- orchestrator's drain (SELECT ... FOR UPDATE then active -> terminating), so a worker is never
-- drained while a claim is in flight and never claims after it was drained. The candidate is
-- locked with FOR UPDATE SKIP LOCKED (concurrent claimers take different rows), the UPDATE
-- re-checks status = 'Queued', and only a row the UPDATE changed is returned.
CREATE FUNCTION func_claim_next_task(p_worker_id text, p_run_type text DEFAULT 'gpu')
RETURNS SETOF tasks
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_status worker_status;
    v_task   tasks;
BEGIN
    SELECT w.status INTO v_status FROM workers w WHERE w.id = p_worker_id FOR NO KEY UPDATE;
    IF NOT FOUND OR v_status <> 'active' THEN
        RETURN;
    END IF;

    WITH candidate AS (
        SELECT t.id
          FROM tasks t
         WHERE t.status = 'Queued'
           AND t.run_type = coalesce(p_run_type, 'gpu')
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

-- --------------------------------------------------------------------------------------------
-- Heartbeat

-- func_worker_heartbeat: records that the worker is alive and its VRAM figures, in ONE UPDATE:
-- last_heartbeat = now() and metadata || {vram_total_mb, vram_used_mb, vram_timestamp}. A NULL
-- figure is not written (the key keeps its previous value); vram_timestamp is written when at
-- least one figure is given. Never touches status or other metadata keys, never creates a row,
-- never updates a terminated row.
-- Returns the worker's status (the worker obeys it: terminating = finish and exit, terminated /
-- error = exit now), or NULL for an unknown worker.
CREATE FUNCTION func_worker_heartbeat(p_worker_id text, p_vram_total_mb integer,
                                      p_vram_used_mb integer)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_status worker_status;
BEGIN
    UPDATE workers
       SET last_heartbeat = now(),
           metadata = metadata || CASE
               WHEN p_vram_total_mb IS NULL AND p_vram_used_mb IS NULL THEN '{}'::jsonb
               ELSE jsonb_strip_nulls(jsonb_build_object(
                        'vram_total_mb', p_vram_total_mb,
                        'vram_used_mb', p_vram_used_mb,
                        'vram_timestamp', extract(epoch FROM now())))
               END
     WHERE id = p_worker_id
       AND status <> 'terminated'
    RETURNING status INTO v_status;

    IF NOT FOUND THEN
        SELECT w.status INTO v_status FROM workers w WHERE w.id = p_worker_id;
    END IF;
    RETURN v_status::text;
END;
$$;

-- --------------------------------------------------------------------------------------------
-- Task results

-- func_mark_task_complete: the holder reports success. Returns true when the task was
-- In Progress and held by p_worker_id (it becomes Complete with generation_processed_at,
-- result_data and output_location set); false otherwise (not the holder, already finished,
-- recovered by the orchestrator, unknown id), changing nothing.
CREATE FUNCTION func_mark_task_complete(p_task_id uuid, p_worker_id text, p_result jsonb,
                                        p_output_location text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
BEGIN
    UPDATE tasks
       SET status = 'Complete',
           generation_processed_at = now(),
           result_data = p_result,
           output_location = p_output_location
     WHERE id = p_task_id
       AND worker_id = p_worker_id
       AND status = 'In Progress';
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    UPDATE workers SET last_task_activity_at = now() WHERE id = p_worker_id;
    RETURN true;
END;
$$;

-- func_task_retry_delay: the retry backoff after the n-th failed attempt:
--   10 s * 2^(n - 1), capped at 1 hour  (n = attempts after the increment, n >= 1)
-- i.e. 10 s, 20 s, 40 s, 80 s, ... 3600 s.
CREATE FUNCTION func_task_retry_delay(p_attempts integer)
RETURNS interval
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = public, pg_temp
AS $$
    SELECT make_interval(secs => least(3600.0,
               10.0 * power(2.0, least(greatest(coalesce(p_attempts, 1), 1) - 1, 30))))
$$;

-- func_mark_task_failed: the holder reports failure. Returns true when the task was In Progress
-- and held by p_worker_id; false otherwise, changing nothing. attempts is incremented; when it
-- reaches max_attempts the task is Failed for good (generation_processed_at = now()), otherwise
-- it goes back to Queued with worker_id and generation_started_at cleared and available_at =
-- now() + func_task_retry_delay(attempts). error_message records p_error in both cases.
CREATE FUNCTION func_mark_task_failed(p_task_id uuid, p_worker_id text, p_error text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
BEGIN
    UPDATE tasks t
       SET attempts = t.attempts + 1,
           error_message = p_error,
           status = CASE WHEN t.attempts + 1 >= t.max_attempts
                         THEN 'Failed'::task_status ELSE 'Queued'::task_status END,
           worker_id = CASE WHEN t.attempts + 1 >= t.max_attempts
                            THEN t.worker_id ELSE NULL END,
           generation_started_at = CASE WHEN t.attempts + 1 >= t.max_attempts
                                        THEN t.generation_started_at ELSE NULL END,
           generation_processed_at = CASE WHEN t.attempts + 1 >= t.max_attempts
                                          THEN now() ELSE NULL END,
           available_at = CASE WHEN t.attempts + 1 >= t.max_attempts
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
-- Logs (python-original 1.7, without the heartbeat's row creation)

-- Normalises a level name to the system_logs check set; unknown names become INFO.
CREATE FUNCTION func_normalize_log_level(p_level text)
RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = public, pg_temp
AS $$
    SELECT CASE upper(coalesce(p_level, 'INFO'))
               WHEN 'WARN' THEN 'WARNING'
               WHEN 'FATAL' THEN 'CRITICAL'
               WHEN 'DEBUG' THEN 'DEBUG'
               WHEN 'INFO' THEN 'INFO'
               WHEN 'WARNING' THEN 'WARNING'
               WHEN 'ERROR' THEN 'ERROR'
               WHEN 'CRITICAL' THEN 'CRITICAL'
               ELSE 'INFO' END
$$;

-- func_insert_logs_batch: inserts each element of a JSON array into system_logs. Element keys:
-- source_type, source_id, message (required), log_level or level (default INFO), timestamp
-- (default now(); never later than now()), task_id, worker_id, cycle_number, metadata (default
-- {}). A bad element is counted and skipped, the others are kept.
-- Returns {"success": true, "inserted": n, "errors": n}.
CREATE FUNCTION func_insert_logs_batch(p_logs jsonb)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_entry    jsonb;
    v_inserted integer := 0;
    v_errors   integer := 0;
BEGIN
    IF p_logs IS NULL OR jsonb_typeof(p_logs) <> 'array' THEN
        RETURN jsonb_build_object('success', false, 'inserted', 0, 'errors', 0,
                                  'error', 'logs must be a JSON array');
    END IF;
    FOR v_entry IN SELECT value FROM jsonb_array_elements(p_logs) LOOP
        BEGIN
            INSERT INTO system_logs ("timestamp", source_type, source_id, log_level, message,
                                     task_id, worker_id, cycle_number, metadata)
            VALUES (least(coalesce((v_entry ->> 'timestamp')::timestamptz, now()), now()),
                    v_entry ->> 'source_type',
                    v_entry ->> 'source_id',
                    func_normalize_log_level(coalesce(v_entry ->> 'log_level',
                                                      v_entry ->> 'level')),
                    v_entry ->> 'message',
                    (v_entry ->> 'task_id')::uuid,
                    v_entry ->> 'worker_id',
                    (v_entry ->> 'cycle_number')::integer,
                    coalesce(v_entry -> 'metadata', '{}'::jsonb));
            v_inserted := v_inserted + 1;
        EXCEPTION WHEN OTHERS THEN
            v_errors := v_errors + 1;
        END;
    END LOOP;
    RETURN jsonb_build_object('success', true, 'inserted', v_inserted, 'errors', v_errors);
END;
$$;

-- func_worker_heartbeat_with_logs: func_worker_heartbeat plus a batch of the worker's own logs
-- (source_type 'worker', source_id and worker_id = p_worker_id whatever the entries say; level
-- from "level"/"log_level", default INFO; task_id from the entry or p_current_task_id). Logs of
-- an unknown worker are still stored (they explain "mystery" pods); no worker row is created.
-- Returns {"success", "heartbeat_updated", "worker_status", "logs_inserted", "log_errors"}.
CREATE FUNCTION func_worker_heartbeat_with_logs(p_worker_id text, p_vram_total_mb integer,
                                                p_vram_used_mb integer,
                                                p_logs jsonb DEFAULT '[]'::jsonb,
                                                p_current_task_id uuid DEFAULT NULL)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_status   text;
    v_updated  boolean;
    v_entry    jsonb;
    v_inserted integer := 0;
    v_errors   integer := 0;
BEGIN
    v_status := func_worker_heartbeat(p_worker_id, p_vram_total_mb, p_vram_used_mb);
    v_updated := v_status IS NOT NULL AND v_status <> 'terminated';

    IF p_logs IS NOT NULL AND jsonb_typeof(p_logs) = 'array' THEN
        FOR v_entry IN SELECT value FROM jsonb_array_elements(p_logs) LOOP
            BEGIN
                INSERT INTO system_logs ("timestamp", source_type, source_id, log_level,
                                         message, task_id, worker_id, cycle_number, metadata)
                VALUES (least(coalesce((v_entry ->> 'timestamp')::timestamptz, now()), now()),
                        'worker',
                        p_worker_id,
                        func_normalize_log_level(coalesce(v_entry ->> 'level',
                                                          v_entry ->> 'log_level')),
                        v_entry ->> 'message',
                        coalesce((v_entry ->> 'task_id')::uuid, p_current_task_id),
                        p_worker_id,
                        NULL,
                        coalesce(v_entry -> 'metadata', '{}'::jsonb));
                v_inserted := v_inserted + 1;
            EXCEPTION WHEN OTHERS THEN
                v_errors := v_errors + 1;
            END;
        END LOOP;
    END IF;

    RETURN jsonb_build_object('success', true, 'heartbeat_updated', v_updated,
                              'worker_status', v_status, 'logs_inserted', v_inserted,
                              'log_errors', v_errors);
END;
$$;

-- func_cleanup_old_logs: deletes system_logs rows older than p_retention_hours (>= 0).
-- Returns {"success": true, "deleted": n, "retention_hours": h}. Called by the orchestrator
-- (DB_LOG_RETENTION_HOURS); not granted to workers, who must not erase the audit trail.
CREATE FUNCTION func_cleanup_old_logs(p_retention_hours integer DEFAULT 48)
RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
DECLARE
    v_deleted bigint;
BEGIN
    IF p_retention_hours IS NULL OR p_retention_hours < 0 THEN
        RAISE EXCEPTION 'func_cleanup_old_logs: retention must be >= 0 hours, got %',
                p_retention_hours USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM system_logs WHERE "timestamp" < now() - make_interval(hours => p_retention_hours);
    GET DIAGNOSTICS v_deleted = ROW_COUNT;
    RETURN jsonb_build_object('success', true, 'deleted', v_deleted,
                              'retention_hours', p_retention_hours);
END;
$$;

-- --------------------------------------------------------------------------------------------
-- Wake-up for `orchestrator continuous` (LISTEN orchestrator_wakeup): one NOTIFY per INSERT
-- statement, however many rows it inserts. NOTIFY is delivered at commit.

CREATE FUNCTION notify_orchestrator_wakeup() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('orchestrator_wakeup', 'tasks');
    RETURN NULL;
END;
$$;

CREATE TRIGGER trg_tasks_notify_wakeup AFTER INSERT ON tasks
    FOR EACH STATEMENT EXECUTE FUNCTION notify_orchestrator_wakeup();

-- --------------------------------------------------------------------------------------------
-- Role and grants

-- Roles are cluster-wide: another database on the same server may have created it already, or
-- be creating it right now (hence the exception handler).
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'orchestrator_worker') THEN
        CREATE ROLE orchestrator_worker NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END;
$$;

REVOKE ALL ON TABLE tasks, workers, system_logs, orchestrator_state, orchestrator_cycles,
                    gpu_capacity_backoff, schema_migrations
    FROM PUBLIC, orchestrator_worker;
REVOKE ALL ON SEQUENCE orchestrator_cycles_id_seq FROM PUBLIC, orchestrator_worker;

REVOKE ALL ON FUNCTION
    func_claim_next_task(text, text),
    func_worker_heartbeat(text, integer, integer),
    func_mark_task_complete(uuid, text, jsonb, text),
    func_mark_task_failed(uuid, text, text),
    func_insert_logs_batch(jsonb),
    func_worker_heartbeat_with_logs(text, integer, integer, jsonb, uuid),
    func_cleanup_old_logs(integer),
    func_task_retry_delay(integer),
    func_normalize_log_level(text),
    worker_status_transition_allowed(worker_status, worker_status),
    workers_enforce_state_machine(),
    set_updated_at(),
    notify_orchestrator_wakeup()
    FROM PUBLIC;

GRANT USAGE ON SCHEMA public TO orchestrator_worker;
GRANT EXECUTE ON FUNCTION
    func_claim_next_task(text, text),
    func_worker_heartbeat(text, integer, integer),
    func_mark_task_complete(uuid, text, jsonb, text),
    func_mark_task_failed(uuid, text, text),
    func_insert_logs_batch(jsonb),
    func_worker_heartbeat_with_logs(text, integer, integer, jsonb, uuid)
    TO orchestrator_worker;
