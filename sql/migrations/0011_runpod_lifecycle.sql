-- 0011_runpod_lifecycle.sql: what issue 16 items 2-4 keep in the database
-- (structure_docs/runpod_lifecycle.md).
--
--   * Worker status 'stopped': a worker whose pod is stopped (RunPod action "stop"), kept as a
--     warm pod -- disk and cached image on its host, billed for storage only -- and started
--     again on a later scale-up under the same worker id (the pod's environment carries
--     WORKER_ID, so a restarted pod can only come back as the worker it was). New legal
--     transitions: terminating -> stopped (the drained worker's pod was stopped instead of
--     terminated), stopped -> spawning (started again), stopped -> terminated (the pod was
--     terminated: age or count bound, pool gone, shutdown-all) and stopped -> error (its pod
--     vanished, seen by `reconcile --terminate`). Every earlier transition is unchanged.
--   * workers.stopped_at / workers.restarted_at: when the pod was last stopped (the age bound
--     STOPPED_POD_MAX_AGE_SEC counts from it) and last started again (the spawning timeout and
--     the first-heartbeat promotion count from it).
--   * worker_failure_logs: the tail of a failed worker's pod log, read before its pod is
--     terminated (scrubbed of secrets, bounded), shown by `logs --worker` and `status`.
--   * runpod_billing / runpod_billing_pods: the last read of GET /v2/billing/pods (cadence
--     RECONCILE_INTERVAL_SEC, shared by cron runs), what RunPod billed per pod in the last
--     complete hour; the spend cap takes the larger of that and its own estimate.
--
-- The new enum value cannot be used in the transaction that adds it, so the transition table
-- below compares statuses as text (plpgsql bodies are only checked when they first run).

ALTER TYPE worker_status ADD VALUE IF NOT EXISTS 'stopped';

CREATE OR REPLACE FUNCTION worker_status_transition_allowed(p_from worker_status,
                                                            p_to worker_status)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = public, pg_temp
AS $$
    SELECT p_from = p_to OR (p_from::text, p_to::text) IN (
        ('spawning',    'active'),
        ('spawning',    'terminating'),
        ('spawning',    'error'),
        ('active',      'terminating'),
        ('active',      'error'),
        ('active',      'crashed'),
        ('crashed',     'error'),
        ('terminating', 'terminated'),
        ('terminating', 'error'),
        ('terminating', 'stopped'),
        ('stopped',     'spawning'),
        ('stopped',     'terminated'),
        ('stopped',     'error'),
        ('error',       'terminated'),
        ('inactive',    'spawning'),
        ('inactive',    'terminated'))
$$;

COMMENT ON FUNCTION worker_status_transition_allowed(worker_status, worker_status) IS
    'the legal worker status transitions (SPEC 4.2, and issue 16: terminating -> stopped, '
    'stopped -> spawning | terminated | error); same-status is always allowed';

-- The trigger's hint names the table; everything else is as in 0002.
CREATE OR REPLACE FUNCTION workers_enforce_state_machine() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = public, pg_temp
AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.status NOT IN ('spawning', 'inactive') THEN
            RAISE EXCEPTION 'worker % may only be inserted as spawning, not %', NEW.id, NEW.status
                USING ERRCODE = 'check_violation',
                      HINT = 'insert the row as spawning; the orchestrator promotes it on its '
                             'first heartbeat';
        END IF;
        RETURN NEW;
    END IF;

    IF NEW.status IS DISTINCT FROM OLD.status THEN
        IF NOT worker_status_transition_allowed(OLD.status, NEW.status) THEN
            RAISE EXCEPTION 'illegal worker status transition % -> % (worker %)',
                    OLD.status, NEW.status, OLD.id
                USING ERRCODE = 'check_violation',
                      HINT = 'legal: spawning->active|terminating|error, '
                             'active->terminating|error|crashed, crashed->error, '
                             'terminating->terminated|error|stopped, '
                             'stopped->spawning|terminated|error, error->terminated, '
                             'inactive->spawning|terminated';
        END IF;
        IF NEW.status = 'active' AND NEW.promoted_at IS NULL THEN
            NEW.promoted_at := now();
        END IF;
        IF NEW.status IN ('error', 'crashed', 'terminating', 'terminated')
           AND NEW.ended_at IS NULL THEN
            NEW.ended_at := now();
            IF NEW.end_kind IS NULL THEN
                NEW.end_kind := CASE WHEN NEW.status IN ('error', 'crashed')
                                     THEN 'unexpected' ELSE 'expected' END;
            END IF;
        END IF;
    END IF;
    RETURN NEW;
END;
$$;

-- --------------------------------------------------------------------------------------------
-- Stopped pods

ALTER TABLE workers ADD COLUMN stopped_at timestamptz;
ALTER TABLE workers ADD COLUMN restarted_at timestamptz;

COMMENT ON COLUMN workers.stopped_at IS
    'when the worker''s pod was last stopped (status stopped: a warm pod); '
    'STOPPED_POD_MAX_AGE_SEC counts from it';
COMMENT ON COLUMN workers.restarted_at IS
    'when the worker''s stopped pod was last started again; its spawning timeout and its '
    'promotion (first heartbeat after this) count from it';

-- (Not a partial index on status = 'stopped': the new value cannot be used in this transaction.)
CREATE INDEX idx_workers_stopped_at ON workers (stopped_at) WHERE stopped_at IS NOT NULL;

-- orchestrator_stop_worker: terminating -> stopped once the worker's pod was stopped. Only a
-- worker that holds no In Progress task (a drained one); the row is locked first, as the claim
-- function locks it, so no claim can slip in. Returns whether the row moved.
CREATE FUNCTION orchestrator_stop_worker(p_worker_id text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
DECLARE
    v_status worker_status;
BEGIN
    SELECT w.status INTO v_status FROM workers w WHERE w.id = p_worker_id FOR UPDATE;
    IF NOT FOUND OR v_status::text <> 'terminating' THEN
        RETURN false;
    END IF;
    UPDATE workers
       SET status = 'stopped',
           stopped_at = now(),
           metadata = metadata || jsonb_build_object('stopped_at', now(),
                                                     'stops', coalesce((metadata ->> 'stops')::int, 0) + 1)
     WHERE id = p_worker_id
       AND NOT EXISTS (SELECT 1 FROM tasks
                        WHERE worker_id = p_worker_id AND status = 'In Progress');
    RETURN FOUND;
END;
$$;

REVOKE ALL ON FUNCTION orchestrator_stop_worker(text) FROM PUBLIC;

-- orchestrator_restart_worker: stopped -> spawning, before its pod is started (register before
-- start, as a spawn registers before create: the slot counts under MAX_ACTIVE_GPUS before any
-- GPU is taken). The row starts a new life under the same id: restarted_at = now() (the
-- spawning timeout and the promotion count from it), and the end, promotion and idle marks of
-- the previous life are cleared so the breaker, the grace period and the idle clock see the
-- new one. Returns whether the row moved.
CREATE FUNCTION orchestrator_restart_worker(p_worker_id text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    UPDATE workers
       SET status = 'spawning',
           restarted_at = now(),
           promoted_at = NULL,
           ended_at = NULL,
           end_kind = NULL,
           last_task_activity_at = NULL,
           metadata = (metadata - 'terminating_at' - 'terminating_reason' - 'error_reason'
                                - 'error_time')
                      || jsonb_build_object('restarted_at', now(),
                                            'restarts',
                                            coalesce((metadata ->> 'restarts')::int, 0) + 1)
     WHERE id = p_worker_id
       AND status::text = 'stopped';
    RETURN FOUND;
END;
$$;

REVOKE ALL ON FUNCTION orchestrator_restart_worker(text) FROM PUBLIC;

-- --------------------------------------------------------------------------------------------
-- Failure diagnostics

CREATE TABLE worker_failure_logs (
    worker_id   text PRIMARY KEY REFERENCES workers (id) ON DELETE CASCADE,
    pod_id      text,
    reason      text,
    outcome     text NOT NULL CHECK (outcome IN ('ok', 'empty', 'timeout', 'error')),
    error       text,
    fetch_ms    integer,
    bytes       integer NOT NULL DEFAULT 0,
    truncated   boolean NOT NULL DEFAULT false,
    tail        text NOT NULL DEFAULT '' CHECK (octet_length(tail) <= 65536),
    fetched_at  timestamptz NOT NULL DEFAULT now()
);

COMMENT ON TABLE worker_failure_logs IS
    'the tail of a failed (error/crashed) worker''s pod log, read from GET /v2/pods/{id}/logs '
    'before its pod was terminated; secrets scrubbed, at most 16 KiB kept';

CREATE INDEX idx_worker_failure_logs_fetched ON worker_failure_logs (fetched_at DESC);

REVOKE ALL ON TABLE worker_failure_logs FROM PUBLIC, orchestrator_worker;

-- --------------------------------------------------------------------------------------------
-- Billing

CREATE TABLE runpod_billing (
    id           integer PRIMARY KEY CHECK (id = 1),
    attempted_at timestamptz,
    read_at      timestamptz,
    bucket_start timestamptz,
    bucket_end   timestamptz,
    total_usd    numeric CHECK (total_usd >= 0),
    records      integer,
    malformed    integer,
    last_error   text
);

COMMENT ON TABLE runpod_billing IS
    'the last read of GET /v2/billing/pods: attempted_at paces the reads '
    '(RECONCILE_INTERVAL_SEC); bucket_* and total_usd are the last complete hour of the last '
    'good read';

INSERT INTO runpod_billing (id) VALUES (1);

CREATE TABLE runpod_billing_pods (
    pod_id       text PRIMARY KEY,
    usd          numeric NOT NULL CHECK (usd >= 0),
    bucket_start timestamptz NOT NULL,
    bucket_end   timestamptz NOT NULL
);

COMMENT ON TABLE runpod_billing_pods IS
    'what RunPod billed per pod in the last complete hour of the last good billing read '
    '(replaced whole by each good read)';

REVOKE ALL ON TABLE runpod_billing, runpod_billing_pods FROM PUBLIC, orchestrator_worker;
