-- 0002_worker_state_machine.sql: the worker state machine, enforced by the database (SPEC 4.2).
--
-- No client (orchestrator, worker, operator script) can move a worker along an edge that is not
-- in the table below, so a terminal row can never be resurrected (python-original 10.2). The
-- table is data in one IMMUTABLE function so tests can enumerate it.
--
--   spawning    -> active | terminating | error
--   active      -> terminating | error | crashed
--   crashed     -> error
--   terminating -> terminated | error
--   error       -> terminated
--   inactive    -> spawning | terminated        (legacy value only)
--   X -> X      always allowed (metadata-only updates)
--
-- Inserts are accepted only as 'spawning' (or the legacy 'inactive').

CREATE FUNCTION worker_status_transition_allowed(p_from worker_status, p_to worker_status)
RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = public, pg_temp
AS $$
    SELECT p_from = p_to OR (p_from, p_to) IN (
        ('spawning'::worker_status,    'active'::worker_status),
        ('spawning',    'terminating'),
        ('spawning',    'error'),
        ('active',      'terminating'),
        ('active',      'error'),
        ('active',      'crashed'),
        ('crashed',     'error'),
        ('terminating', 'terminated'),
        ('terminating', 'error'),
        ('error',       'terminated'),
        ('inactive',    'spawning'),
        ('inactive',    'terminated'))
$$;

COMMENT ON FUNCTION worker_status_transition_allowed(worker_status, worker_status) IS
    'the legal worker status transitions (SPEC 4.2); same-status is always allowed';

-- BEFORE INSERT OR UPDATE on workers. Besides rejecting illegal moves it fills the bookkeeping
-- columns a client forgot, never overriding a value the statement set:
--   * promoted_at = now() on spawning|inactive -> active;
--   * ended_at = now() and end_kind when the worker leaves service: 'unexpected' for
--     error/crashed, 'expected' for terminating/terminated (the circuit breaker reads these).
-- SECURITY DEFINER so that any role allowed to update workers can run the check without EXECUTE
-- on worker_status_transition_allowed (revoked from PUBLIC in 0003).
CREATE FUNCTION workers_enforce_state_machine() RETURNS trigger
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
                             'terminating->terminated|error, error->terminated, '
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

CREATE TRIGGER trg_workers_state_machine BEFORE INSERT OR UPDATE ON workers
    FOR EACH ROW EXECUTE FUNCTION workers_enforce_state_machine();
