-- 06_logs.sql: func_insert_logs_batch, func_worker_heartbeat_with_logs, func_cleanup_old_logs
-- (python-original 1.7, without the heartbeat's row creation).
BEGIN;
SELECT no_plan();

-- Batch insert: bad elements are counted and skipped.
SELECT is(func_insert_logs_batch($$[
    {"source_type": "orchestrator", "source_id": "orch-1", "log_level": "INFO",
     "message": "cycle.start", "cycle_number": 7, "metadata": {"k": 1}},
    {"source_type": "worker", "source_id": "gpu-1", "level": "warn", "message": "slow",
     "worker_id": "gpu-1", "task_id": "00000000-0000-0000-0000-000000000001"},
    {"source_type": "worker", "source_id": "gpu-1", "message": null},
    {"source_type": "martian", "source_id": "x", "message": "m"},
    {"source_type": "worker", "source_id": "gpu-1", "message": "m", "task_id": "not-a-uuid"}
]$$::jsonb), '{"success": true, "inserted": 2, "errors": 3}'::jsonb,
    'two good entries inserted, three bad ones counted');
SELECT results_eq($$SELECT source_type, source_id, log_level, cycle_number, metadata,
                           "timestamp" FROM system_logs WHERE message = 'cycle.start'$$,
                  $$VALUES ('orchestrator', 'orch-1', 'INFO', 7, '{"k": 1}'::jsonb, now())$$,
                  'fields stored; timestamp defaults to now()');
SELECT results_eq($$SELECT log_level, worker_id, task_id, metadata FROM system_logs
                     WHERE message = 'slow'$$,
                  $$VALUES ('WARNING', 'gpu-1', '00000000-0000-0000-0000-000000000001'::uuid,
                            '{}'::jsonb)$$,
                  '"level" accepted, warn normalised to WARNING, metadata defaults to {}');
SELECT is((func_insert_logs_batch('{"not": "an array"}'))->>'success', 'false',
          'a non-array is refused');
SELECT is(func_insert_logs_batch($$[{"source_type": "worker", "source_id": "w",
                                      "message": "from the future",
                                      "timestamp": "2999-01-01T00:00:00Z"}]$$)->>'inserted', '1',
          'an entry with a future timestamp is accepted');
SELECT is((SELECT "timestamp" FROM system_logs WHERE message = 'from the future'), now(),
          '...and clamped to now() so retention still applies');

-- Heartbeat with logs.
SELECT sqltest.mk_worker('lw-1', 'active', '{"keep": true}');
SELECT is(func_worker_heartbeat_with_logs('lw-1', 24576, 512, $$[
    {"level": "ERROR", "message": "CUDA hiccup", "task_id": "00000000-0000-0000-0000-000000000002"},
    {"message": "step 3/10", "worker_id": "someone-else", "source_type": "orchestrator"}
]$$, '00000000-0000-0000-0000-000000000003'),
    '{"success": true, "heartbeat_updated": true, "worker_status": "active",
      "logs_inserted": 2, "log_errors": 0}'::jsonb,
    'heartbeat and two logs');
SELECT results_eq($$SELECT last_heartbeat, metadata ->> 'vram_total_mb', metadata ->> 'keep',
                           status::text FROM workers WHERE id = 'lw-1'$$,
                  $$VALUES (now(), '24576', 'true', 'active')$$,
                  'the heartbeat part follows func_worker_heartbeat');
SELECT set_eq($$SELECT source_type, source_id, worker_id, log_level, task_id::text
                  FROM system_logs WHERE source_id = 'lw-1'$$,
              $$VALUES ('worker', 'lw-1', 'lw-1', 'ERROR', '00000000-0000-0000-0000-000000000002'),
                       ('worker', 'lw-1', 'lw-1', 'INFO', '00000000-0000-0000-0000-000000000003')$$,
              'logs are the worker''s own (source and worker forced), level defaults to INFO, '
              'task_id defaults to p_current_task_id');
SELECT is(func_worker_heartbeat_with_logs('lw-ghost', 1, 1,
                                          '[{"message": "who am I"}]') - 'success',
          '{"heartbeat_updated": false, "worker_status": null, "logs_inserted": 1,
            "log_errors": 0}'::jsonb,
          'an unknown worker: no heartbeat, logs kept');
SELECT is((SELECT count(*) FROM workers WHERE id = 'lw-ghost')::int, 0, 'and no worker row');
SELECT sqltest.mk_worker('lw-gone', 'terminated');
SELECT is(func_worker_heartbeat_with_logs('lw-gone', 1, 1)
              - 'success' - 'logs_inserted' - 'log_errors',
          '{"heartbeat_updated": false, "worker_status": "terminated"}'::jsonb,
          'a terminated worker is not updated and is told terminated; p_logs defaults to []');

-- Retention.
DELETE FROM system_logs;
INSERT INTO system_logs ("timestamp", source_type, source_id, log_level, message) VALUES
    (now() - interval '49 hours', 'worker', 'w', 'INFO', 'old'),
    (now() - interval '47 hours', 'worker', 'w', 'INFO', 'recent'),
    (now() - interval '3 hours', 'worker', 'w', 'INFO', 'fresh');
SELECT is(func_cleanup_old_logs(), '{"success": true, "deleted": 1, "retention_hours": 48}'::jsonb,
          'default retention is 48 h');
SELECT is(func_cleanup_old_logs(2), '{"success": true, "deleted": 2, "retention_hours": 2}'::jsonb,
          'explicit retention');
SELECT throws_ok('SELECT func_cleanup_old_logs(-1)', '22023', NULL, 'negative retention refused');

SELECT * FROM finish();
ROLLBACK;
