-- 11_runpod_lifecycle.sql: the database side of issue 16 (0011_runpod_lifecycle.sql): a drained
-- worker's pod stopped, started again under the same id, a failed worker's log tail, the last
-- billing read.
BEGIN;
SELECT no_plan();

SELECT has_table(t) FROM unnest(ARRAY['worker_failure_logs', 'runpod_billing',
    'runpod_billing_pods']) AS t;
SELECT has_column('workers', c) FROM unnest(ARRAY['stopped_at', 'restarted_at']) AS c;
SELECT is((SELECT count(*) FROM runpod_billing)::int, 1, 'runpod_billing has its one row');

-- Stop: only a terminating worker that holds no task.
SELECT sqltest.mk_worker('lc-term', 'terminating');
SELECT sqltest.mk_worker('lc-busy', 'terminating');
SELECT sqltest.mk_worker('lc-active', 'active');
INSERT INTO tasks (task_type, status, worker_id, generation_started_at)
VALUES ('held', 'In Progress', 'lc-busy', now());
SELECT is(orchestrator_stop_worker('lc-term'), true, 'a drained worker is stopped');
SELECT is(orchestrator_stop_worker('lc-busy'), false, 'a worker holding a task is not');
SELECT is(orchestrator_stop_worker('lc-active'), false, 'an active worker is not');
SELECT is(orchestrator_stop_worker('lc-nobody'), false, 'an unknown worker is not');
SELECT results_eq($$SELECT status::text, stopped_at FROM workers WHERE id = 'lc-term'$$,
                  $$VALUES ('stopped', now())$$, 'stopped, with stopped_at');
SELECT is((SELECT status::text FROM workers WHERE id = 'lc-busy'), 'terminating',
          'the busy one kept its state');

-- A stopped worker claims nothing and is told its status.
INSERT INTO worker_pools (name, run_types) VALUES ('t-lc', ARRAY['lc']) ON CONFLICT DO NOTHING;
UPDATE workers SET pool = 't-lc' WHERE id = 'lc-term';
INSERT INTO tasks (task_type, run_type) VALUES ('lc-task', 'lc');
SELECT is_empty($$SELECT * FROM func_claim_next_task('lc-term', 'lc')$$,
                'a stopped worker claims nothing');
SELECT is(func_worker_heartbeat('lc-term', 1, 1), 'stopped', 'a stopped worker is told stopped');

-- Restart: the same row lives again from now.
UPDATE workers SET last_task_activity_at = now() - interval '1 hour',
                   promoted_at = now() - interval '2 hours' WHERE id = 'lc-term';
SELECT is(orchestrator_restart_worker('lc-term'), true, 'a stopped worker is restarted');
SELECT is(orchestrator_restart_worker('lc-term'), false, 'only once');
SELECT is(orchestrator_restart_worker('lc-active'), false, 'an active worker is not');
SELECT results_eq($$SELECT status::text, restarted_at, promoted_at, ended_at, end_kind,
                           last_task_activity_at, (metadata ->> 'restarts')::int
                      FROM workers WHERE id = 'lc-term'$$,
                  $$VALUES ('spawning', now(), NULL::timestamptz, NULL::timestamptz, NULL::text,
                            NULL::timestamptz, 1)$$,
                  'spawning again, its previous life''s marks cleared');
UPDATE workers SET status = 'active' WHERE id = 'lc-term';
SELECT is((SELECT promoted_at FROM workers WHERE id = 'lc-term'), now(),
          'promoted again on its first heartbeat after the start');

-- A stopped worker's pod can be terminated or vanish.
SELECT sqltest.mk_worker('lc-s1', 'stopped');
SELECT sqltest.mk_worker('lc-s2', 'stopped');
SELECT lives_ok($$UPDATE workers SET status = 'terminated' WHERE id = 'lc-s1'$$,
                'stopped -> terminated');
SELECT lives_ok($$UPDATE workers SET status = 'error' WHERE id = 'lc-s2'$$, 'stopped -> error');

-- Log tails: bounded, one per worker, gone with the row.
INSERT INTO worker_failure_logs (worker_id, outcome, tail) VALUES ('lc-s2', 'ok', 'line');
SELECT throws_ok($$INSERT INTO worker_failure_logs (worker_id, outcome) VALUES ('lc-s2', 'ok')$$,
                 '23505', NULL, 'one log tail per worker');
SELECT throws_ok($$INSERT INTO worker_failure_logs (worker_id, outcome)
                   VALUES ('lc-s1', 'maybe')$$, '23514', NULL, 'outcome is checked');
SELECT throws_ok(format($$INSERT INTO worker_failure_logs (worker_id, outcome, tail)
                          VALUES ('lc-s1', 'ok', %L)$$, repeat('x', 65537)),
                 '23514', NULL, 'a tail is at most 64 KiB');
SELECT throws_ok($$INSERT INTO worker_failure_logs (worker_id, outcome) VALUES ('nobody', 'ok')$$,
                 '23503', NULL, 'a tail belongs to a worker row');
SELECT throws_ok($$INSERT INTO runpod_billing_pods VALUES ('p', -1, now(), now())$$, '23514',
                 NULL, 'a billed amount is never negative');

-- The worker role sees none of it.
SELECT ok(NOT has_table_privilege('orchestrator_worker', t, 'SELECT'), t || ' is not the worker''s')
  FROM unnest(ARRAY['worker_failure_logs', 'runpod_billing', 'runpod_billing_pods']) AS t;

SELECT * FROM finish();
ROLLBACK;
