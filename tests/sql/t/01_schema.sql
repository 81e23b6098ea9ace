-- 01_schema.sql: tables, columns, enums, indexes and bookkeeping triggers (SPEC 4.1).
BEGIN;
SELECT no_plan();

SELECT enum_has_labels('task_status',
    ARRAY['Queued', 'In Progress', 'Complete', 'Failed', 'Cancelled'], 'task_status labels');
SELECT enum_has_labels('worker_status',
    ARRAY['inactive', 'spawning', 'active', 'terminating', 'error', 'terminated', 'crashed',
          'stopped'],
    'worker_status labels (stopped: issue 16)');

SELECT has_table(t) FROM unnest(ARRAY['tasks', 'workers', 'system_logs', 'orchestrator_state',
    'orchestrator_cycles', 'gpu_capacity_backoff', 'schema_migrations',
    'orchestrator_lease']) AS t;

-- Column names and types are a public contract.
SELECT col_type_is('tasks', c, ty, 'tasks.' || c || ' is ' || ty) FROM (VALUES
    ('id', 'uuid'), ('task_type', 'text'), ('params', 'jsonb'), ('status', 'task_status'),
    ('run_type', 'text'), ('dependant_on', 'uuid[]'), ('attempts', 'integer'),
    ('max_attempts', 'integer'), ('available_at', 'timestamp with time zone'),
    ('worker_id', 'text'), ('project_id', 'uuid'),
    ('generation_started_at', 'timestamp with time zone'),
    ('generation_processed_at', 'timestamp with time zone'), ('error_message', 'text'),
    ('result_data', 'jsonb'), ('output_location', 'text'),
    ('created_at', 'timestamp with time zone'), ('updated_at', 'timestamp with time zone'))
    AS v(c, ty);
SELECT col_type_is('workers', c, ty, 'workers.' || c || ' is ' || ty) FROM (VALUES
    ('id', 'text'), ('instance_type', 'text'), ('status', 'worker_status'),
    ('runpod_id', 'text'), ('last_heartbeat', 'timestamp with time zone'),
    ('metadata', 'jsonb'), ('created_at', 'timestamp with time zone'),
    ('updated_at', 'timestamp with time zone'),
    ('last_task_activity_at', 'timestamp with time zone'),
    ('promoted_at', 'timestamp with time zone'), ('ended_at', 'timestamp with time zone'),
    ('end_kind', 'text'), ('gpu_type', 'text'), ('cost_per_hr', 'numeric')) AS v(c, ty);
SELECT col_type_is('system_logs', c, ty, 'system_logs.' || c || ' is ' || ty) FROM (VALUES
    ('id', 'uuid'), ('timestamp', 'timestamp with time zone'), ('source_type', 'text'),
    ('source_id', 'text'), ('log_level', 'text'), ('message', 'text'), ('task_id', 'uuid'),
    ('worker_id', 'text'), ('cycle_number', 'integer'), ('metadata', 'jsonb')) AS v(c, ty);
SELECT has_column('orchestrator_state', c) FROM unnest(ARRAY['id', 'last_cycle_number',
    'last_cycle_at', 'last_success_at', 'last_scale_up_at', 'last_scale_down_at',
    'last_reconcile_at', 'last_log_cleanup_at', 'breaker_open', 'breaker_opened_at',
    'breaker_reason', 'updated_at']) AS c;
SELECT has_column('orchestrator_cycles', c) FROM unnest(ARRAY['id', 'cycle_number',
    'instance_id', 'command', 'version', 'config_hash', 'safe_mode', 'dry_run', 'started_at',
    'finished_at', 'duration_ms', 'snapshot', 'plan', 'outcomes', 'errors', 'exit_status',
    'exit_code']) AS c;
SELECT has_column('gpu_capacity_backoff', c) FROM unnest(ARRAY['gpu_type', 'failures',
    'last_failure_at', 'backoff_until', 'last_error']) AS c;
SELECT col_is_pk('schema_migrations', 'version');
SELECT col_is_unique('workers', 'runpod_id');

-- Defaults.
INSERT INTO tasks (task_type) VALUES ('defaults') RETURNING id \gset
SELECT results_eq(
    format($$SELECT status::text, run_type, params, attempts, max_attempts, available_at,
                    created_at, updated_at FROM tasks WHERE id = %L$$, :'id'),
    $$VALUES ('Queued', 'gpu', '{}'::jsonb, 0, NULL::int, now(), now(), now())$$,
    'task defaults: Queued, gpu, {}, 0 attempts, max_attempts NULL (= MAX_TASK_ATTEMPTS), available now');
SELECT sqltest.mk_worker('w-defaults', 'spawning');
SELECT results_eq($$SELECT metadata, created_at FROM workers WHERE id = 'w-defaults'$$,
    $$VALUES ('{}'::jsonb, now())$$, 'worker defaults: metadata {}, created_at now()');

-- Partial indexes: nothing the snapshot or the claim needs scans Complete/Failed rows.
SELECT has_index('tasks', i) FROM unnest(ARRAY['idx_tasks_claim', 'idx_tasks_queued_available',
    'idx_tasks_queued_created', 'idx_tasks_in_progress_worker', 'idx_tasks_in_progress_started',
    'idx_tasks_dependant_on']) AS i;
SELECT ok(pg_get_indexdef(i::regclass) LIKE '%WHERE (status = ''Queued''::task_status)',
          i || ' is partial on Queued')
  FROM unnest(ARRAY['idx_tasks_claim', 'idx_tasks_queued_available',
                    'idx_tasks_queued_created']) AS i;
SELECT ok(pg_get_indexdef(i::regclass) LIKE '%WHERE (status = ''In Progress''::task_status)',
          i || ' is partial on In Progress')
  FROM unnest(ARRAY['idx_tasks_in_progress_worker', 'idx_tasks_in_progress_started']) AS i;
SELECT ok(pg_get_indexdef('idx_tasks_dependant_on'::regclass) LIKE '%USING gin (dependant_on)%',
          'dependant_on has a GIN index');
SELECT ok(pg_get_indexdef('idx_workers_live'::regclass) LIKE '%WHERE (status = ANY%',
          'workers have a partial index on live statuses');
SELECT has_index('system_logs', i) FROM unnest(ARRAY['idx_system_logs_timestamp',
    'idx_system_logs_source', 'idx_system_logs_task', 'idx_system_logs_worker',
    'idx_system_logs_level', 'idx_system_logs_cycle']) AS i;
SELECT has_index('orchestrator_cycles', 'idx_orchestrator_cycles_started');

-- orchestrator_lease (0005): the cycle lease row exists from the start, free.
SELECT col_type_is('orchestrator_lease', c, ty, 'orchestrator_lease.' || c || ' is ' || ty)
    FROM (VALUES ('name', 'text'), ('holder', 'text'), ('holder_info', 'text'),
    ('fence', 'bigint'), ('acquired_at', 'timestamp with time zone'),
    ('renewed_at', 'timestamp with time zone'), ('expires_at', 'timestamp with time zone'),
    ('released_at', 'timestamp with time zone')) AS v(c, ty);
SELECT results_eq($$SELECT name, holder IS NULL, expires_at <= now() FROM orchestrator_lease$$,
                  $$VALUES ('cycle', true, true)$$, 'the cycle lease row exists and is free');

-- orchestrator_state: exactly one row, id 1.
SELECT results_eq('SELECT id, breaker_open FROM orchestrator_state', $$VALUES (1, false)$$,
                  'orchestrator_state holds its single row');
SELECT throws_ok($$INSERT INTO orchestrator_state (id) VALUES (2)$$, '23514', NULL,
                 'orchestrator_state refuses a second row');

-- Checks.
SELECT throws_ok($$INSERT INTO system_logs (source_type, source_id, log_level, message)
                   VALUES ('nobody', 'x', 'INFO', 'm')$$, '23514', NULL,
                 'system_logs.source_type is checked');
SELECT throws_ok($$INSERT INTO system_logs (source_type, source_id, log_level, message)
                   VALUES ('worker', 'x', 'LOUD', 'm')$$, '23514', NULL,
                 'system_logs.log_level is checked');
SELECT lives_ok($$INSERT INTO system_logs (source_type, source_id, log_level, message)
                  VALUES ('orchestrator', 'x', 'WARNING', 'm')$$,
                'system_logs accepts source_type orchestrator');
SELECT throws_ok($$UPDATE workers SET end_kind = 'surprising' WHERE id = 'w-defaults'$$,
                 '23514', NULL, 'workers.end_kind is checked');

-- updated_at comes from the database on every update.
UPDATE tasks SET updated_at = '2000-01-01' WHERE id = :'id';
UPDATE tasks SET params = '{"a": 1}' WHERE id = :'id';
SELECT is((SELECT updated_at FROM tasks WHERE id = :'id'), now(), 'tasks.updated_at set by trigger');
UPDATE workers SET updated_at = '2000-01-01' WHERE id = 'w-defaults';
UPDATE workers SET instance_type = 'x' WHERE id = 'w-defaults';
SELECT is((SELECT updated_at FROM workers WHERE id = 'w-defaults'), now(),
          'workers.updated_at set by trigger');

-- NOTIFY orchestrator_wakeup: one per INSERT statement (delivery is checked by run.sh).
SELECT trigger_is('tasks', 'trg_tasks_notify_wakeup', 'notify_orchestrator_wakeup');
SELECT is((SELECT tgtype & 1 FROM pg_trigger WHERE tgname = 'trg_tasks_notify_wakeup')::int, 0,
          'the wake-up trigger is statement-level');
SELECT is((SELECT tgtype & 4 FROM pg_trigger WHERE tgname = 'trg_tasks_notify_wakeup')::int, 4,
          'the wake-up trigger fires on INSERT');

SELECT * FROM finish();
ROLLBACK;
