-- 0001_schema.sql: tables, enums, indexes and the updated_at triggers (SPEC section 4.1).
--
-- Applied by `orchestrator migrate` inside one transaction (src/migrate.c), so it contains no
-- BEGIN/COMMIT and nothing that refuses to run in a transaction (no CREATE INDEX CONCURRENTLY).
-- Never edit this file once released: the runner refuses a changed checksum. Add a new
-- migration instead.
--
-- Names are a public contract shared with the GPU workers and the original system; columns may be
-- added, never renamed. Every timestamp defaults to the database clock (now()).

-- Requires PostgreSQL 13 or later (built-in gen_random_uuid()).

CREATE TYPE task_status AS ENUM ('Queued', 'In Progress', 'Complete', 'Failed', 'Cancelled');

CREATE TYPE worker_status AS ENUM
    ('inactive', 'spawning', 'active', 'terminating', 'error', 'terminated', 'crashed');

-- --------------------------------------------------------------------------------------------
-- tasks

CREATE TABLE tasks (
    id                      uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    task_type               text NOT NULL,
    params                  jsonb NOT NULL DEFAULT '{}'::jsonb,
    status                  task_status NOT NULL DEFAULT 'Queued',
    run_type                text NOT NULL DEFAULT 'gpu',
    dependant_on            uuid[],
    attempts                integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts            integer NOT NULL DEFAULT 3,
    available_at            timestamptz NOT NULL DEFAULT now(),
    worker_id               text,
    project_id              uuid,
    generation_started_at   timestamptz,
    generation_processed_at timestamptz,
    error_message           text,
    result_data             jsonb,
    output_location         text,
    created_at              timestamptz NOT NULL DEFAULT now(),
    updated_at              timestamptz NOT NULL DEFAULT now()
);

COMMENT ON COLUMN tasks.available_at IS
    'not claimable before this time; func_mark_task_failed pushes it back exponentially';
COMMENT ON COLUMN tasks.dependant_on IS
    'claimable only when every listed task exists and is Complete';

-- The claim: oldest Queued task of a run type. Partial, so it never holds Complete/Failed rows
-- and stays small at any table size.
CREATE INDEX idx_tasks_claim ON tasks (run_type, created_at, id) WHERE status = 'Queued';
-- Counting claimable tasks of a run type whose backoff has passed (snapshot, SPEC 6 step 6).
CREATE INDEX idx_tasks_queued_available ON tasks (run_type, available_at)
    WHERE status = 'Queued';
-- Queue depth and age across run types (snapshot).
CREATE INDEX idx_tasks_queued_created ON tasks (created_at) WHERE status = 'Queued';
-- Running tasks by holder (orphan recovery, drain proof, status) and by age (stuck check).
CREATE INDEX idx_tasks_in_progress_worker ON tasks (worker_id, generation_started_at)
    WHERE status = 'In Progress';
CREATE INDEX idx_tasks_in_progress_started ON tasks (generation_started_at)
    WHERE status = 'In Progress';
-- "Which tasks wait on this one?"
CREATE INDEX idx_tasks_dependant_on ON tasks USING gin (dependant_on)
    WHERE dependant_on IS NOT NULL;
CREATE INDEX idx_tasks_project ON tasks (project_id) WHERE project_id IS NOT NULL;

-- --------------------------------------------------------------------------------------------
-- workers

CREATE TABLE workers (
    id                    text PRIMARY KEY,
    instance_type         text,
    status                worker_status NOT NULL DEFAULT 'spawning',
    runpod_id             text UNIQUE,
    last_heartbeat        timestamptz,
    metadata              jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    -- added beyond the original schema:
    last_task_activity_at timestamptz,
    promoted_at           timestamptz,
    ended_at              timestamptz,
    end_kind              text CHECK (end_kind IN ('expected', 'unexpected')),
    gpu_type              text,
    cost_per_hr           numeric
);

COMMENT ON COLUMN workers.last_task_activity_at IS
    'set by claim, complete and fail; idleness is measured from it, never from heartbeats';
COMMENT ON COLUMN workers.ended_at IS
    'when the worker left service (drain, failure, termination); feeds the spawn circuit breaker';
COMMENT ON COLUMN workers.end_kind IS
    'expected (scale-down, operator) or unexpected (spawn failure, timeout, crash, stuck task)';

-- Live workers: everything the orchestrator looks at. Terminated rows pile up forever and are
-- never scanned. Two predicates because the planner only uses a partial index whose predicate
-- the query implies: the list form, and the "<> terminated" form the snapshot uses.
CREATE INDEX idx_workers_live ON workers (status, created_at)
    WHERE status IN ('spawning', 'active', 'terminating', 'error', 'crashed', 'inactive');
CREATE INDEX idx_workers_not_terminated ON workers (created_at, id)
    WHERE status <> 'terminated';
-- The breaker window (workers that ended recently).
CREATE INDEX idx_workers_ended ON workers (ended_at) WHERE ended_at IS NOT NULL;

-- --------------------------------------------------------------------------------------------
-- system_logs (python-original 1.4; 'orchestrator' added to source_type)

CREATE TABLE system_logs (
    id           uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    "timestamp"  timestamptz NOT NULL DEFAULT now(),
    source_type  text NOT NULL
        CHECK (source_type IN ('orchestrator', 'orchestrator_gpu', 'orchestrator_api', 'worker')),
    source_id    text NOT NULL,
    log_level    text NOT NULL
        CHECK (log_level IN ('DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL')),
    message      text NOT NULL,
    task_id      uuid,
    worker_id    text,
    cycle_number integer,
    metadata     jsonb DEFAULT '{}'::jsonb
);

CREATE INDEX idx_system_logs_timestamp ON system_logs ("timestamp" DESC);
CREATE INDEX idx_system_logs_source ON system_logs (source_type, source_id, "timestamp" DESC);
CREATE INDEX idx_system_logs_task ON system_logs (task_id, "timestamp" DESC)
    WHERE task_id IS NOT NULL;
CREATE INDEX idx_system_logs_worker ON system_logs (worker_id, "timestamp" DESC)
    WHERE worker_id IS NOT NULL;
CREATE INDEX idx_system_logs_level ON system_logs (log_level, "timestamp" DESC);
CREATE INDEX idx_system_logs_cycle ON system_logs (source_type, cycle_number)
    WHERE cycle_number IS NOT NULL;

-- --------------------------------------------------------------------------------------------
-- Orchestrator-owned tables

-- Controller state persisted between cycles, so cron mode behaves like continuous mode.
CREATE TABLE orchestrator_state (
    id                  integer PRIMARY KEY CHECK (id = 1),
    last_cycle_number   bigint NOT NULL DEFAULT 0,
    last_cycle_at       timestamptz,
    last_success_at     timestamptz,
    last_scale_up_at    timestamptz,
    last_scale_down_at  timestamptz,
    last_reconcile_at   timestamptz,
    last_log_cleanup_at timestamptz,
    breaker_open        boolean NOT NULL DEFAULT false,
    breaker_opened_at   timestamptz,
    breaker_reason      text,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

INSERT INTO orchestrator_state (id) VALUES (1);

-- One row per cycle: what it saw, decided and did.
CREATE TABLE orchestrator_cycles (
    id           bigserial PRIMARY KEY,
    cycle_number bigint,
    instance_id  text,
    command      text,
    version      text,
    config_hash  text,
    safe_mode    boolean,
    dry_run      boolean,
    started_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    duration_ms  integer,
    snapshot     jsonb,
    plan         jsonb,
    outcomes     jsonb,
    errors       jsonb,
    exit_status  text,
    exit_code    integer
);

CREATE INDEX idx_orchestrator_cycles_started ON orchestrator_cycles (started_at);
CREATE INDEX idx_orchestrator_cycles_number ON orchestrator_cycles (cycle_number);

-- Per-GPU-type capacity backoff (SPEC section 8), kept here so it survives between cron runs.
CREATE TABLE gpu_capacity_backoff (
    gpu_type        text PRIMARY KEY,
    failures        integer NOT NULL DEFAULT 0,
    last_failure_at timestamptz,
    backoff_until   timestamptz,
    last_error      text
);

-- The runner creates schema_migrations before applying anything; repeated here (IF NOT EXISTS)
-- so the schema is complete when these files are applied by hand with psql.
CREATE TABLE IF NOT EXISTS schema_migrations (
    version    text PRIMARY KEY,
    checksum   text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- --------------------------------------------------------------------------------------------
-- updated_at, always from the database clock

CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TRIGGER trg_tasks_updated_at BEFORE UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_workers_updated_at BEFORE UPDATE ON workers
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
CREATE TRIGGER trg_orchestrator_state_updated_at BEFORE UPDATE ON orchestrator_state
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
