-- 07_grants.sql: orchestrator_worker may execute the worker functions and nothing else; every
-- contract function is SECURITY DEFINER with a pinned search_path (SPEC 4.3).
BEGIN;
SELECT no_plan();

SELECT has_role('orchestrator_worker');
SELECT is((SELECT rolcanlogin FROM pg_roles WHERE rolname = 'orchestrator_worker'), false,
          'orchestrator_worker is NOLOGIN');

-- Catalogue view of the privileges (objects of extensions, e.g. pgTAP, excluded).
SELECT set_eq(
    $$SELECT p.proname::text FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname = 'public'
         AND has_function_privilege('orchestrator_worker', p.oid, 'EXECUTE')
         AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                            AND d.objid = p.oid AND d.deptype = 'e')$$,
    $$VALUES ('func_claim_next_task'), ('func_worker_heartbeat'), ('func_mark_task_complete'),
             ('func_mark_task_failed'), ('func_insert_logs_batch'),
             ('func_worker_heartbeat_with_logs'),
             -- the gateway's entry points (0006_gateway.sql, issue 13)
             ('func_gateway_heartbeat'), ('func_gateway_task_counts'), ('func_gateway_claim'),
             ('func_gateway_held_tasks'), ('func_gateway_task_update'),
             ('func_gateway_task_for_upload'), ('func_gateway_complete')$$,
    'orchestrator_worker can execute exactly the six worker functions and the seven gateway '
    'entry points');
SELECT is_empty(
    $$SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
       WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v', 'm', 'S', 'p')
         AND (has_table_privilege('orchestrator_worker', c.oid,
                  'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER')
              OR has_table_privilege('public', c.oid,
                  'SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER'))
         AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                            AND d.objid = c.oid AND d.deptype = 'e')$$,
    'neither orchestrator_worker nor PUBLIC has any privilege on any table or sequence');
SELECT is_empty(
    $$SELECT p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
       WHERE n.nspname = 'public' AND p.proname LIKE 'func\_%'
         AND (NOT p.prosecdef AND p.proname NOT IN ('func_task_retry_delay',
                                                    'func_normalize_log_level',
                                                    'func_task_max_attempts',
                                                    'func_gateway_task_json')
              OR NOT coalesce(p.proconfig, '{}') @> ARRAY['search_path=public, pg_temp'])$$,
    'every func_* is SECURITY DEFINER (pure helpers aside) with search_path = public, pg_temp');

-- The same, tried for real under SET ROLE orchestrator_worker.
SELECT sqltest.mk_worker('gw-1', 'active');
INSERT INTO tasks (id, task_type, run_type) VALUES
    ('00000000-0000-0000-0000-0000000000a1', 'g', 'r-grants');
SELECT is(sqltest.as_worker(q), 'ok', 'worker may: ' || regexp_replace(q, '\s+', ' ', 'g')) FROM unnest(ARRAY[
    $$SELECT * FROM func_claim_next_task('gw-1', 'r-grants')$$,
    $$SELECT func_worker_heartbeat('gw-1', 1, 1)$$,
    $$SELECT func_worker_heartbeat_with_logs('gw-1', 1, 1, '[{"message": "hi"}]')$$,
    $$SELECT func_insert_logs_batch('[]')$$,
    $$SELECT func_mark_task_failed('00000000-0000-0000-0000-0000000000a1', 'gw-1', 'x')$$,
    $$SELECT func_mark_task_complete('00000000-0000-0000-0000-0000000000a1', 'gw-1', '{}', 'x')$$,
    $$SELECT * FROM func_gateway_task_counts('gw-1', 'r-grants')$$,
    $$SELECT * FROM func_gateway_held_tasks('gw-1', 1)$$
    ]) AS q;
SELECT is(sqltest.as_worker(q), '42501',
          'worker may not: ' || regexp_replace(q, '\s+', ' ', 'g')) FROM unnest(ARRAY[
    'SELECT * FROM tasks',
    'SELECT id FROM workers',
    $$UPDATE workers SET status = 'active' WHERE id = 'gw-1'$$,
    $$UPDATE tasks SET status = 'Complete'$$,
    $$INSERT INTO tasks (task_type) VALUES ('x')$$,
    'DELETE FROM tasks',
    $$INSERT INTO workers (id) VALUES ('sneaky')$$,
    'SELECT * FROM system_logs',
    $$INSERT INTO system_logs (source_type, source_id, log_level, message)
      VALUES ('worker', 'w', 'INFO', 'm')$$,
    'SELECT * FROM orchestrator_state',
    'SELECT * FROM orchestrator_cycles',
    'SELECT * FROM gpu_capacity_backoff',
    'SELECT * FROM schema_migrations',
    'SELECT * FROM orchestrator_lease',
    $$UPDATE orchestrator_lease SET holder = 'worker', expires_at = 'infinity'$$,
    $$SELECT nextval('orchestrator_cycles_id_seq')$$,
    'SELECT func_cleanup_old_logs(0)',
    $$SELECT func_gateway_worker_state('gw-1')$$,
    $$SELECT func_gateway_why_not('00000000-0000-0000-0000-0000000000a1', 'gw-1')$$,
    'SELECT func_task_retry_delay(1)',
    $$SELECT worker_status_transition_allowed('active', 'error')$$
    ]) AS q;
SELECT is((SELECT status::text FROM tasks WHERE id = '00000000-0000-0000-0000-0000000000a1'),
          'Queued', 'the worker functions ran with their own rights (claim, then fail -> Queued)');
SELECT is(current_user::text, 'postgres', 'role restored after the checks');

SELECT * FROM finish();
ROLLBACK;
