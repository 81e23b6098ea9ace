-- 08_hardening.sql: the database side of issue 12 -- one attempt-limit rule for the worker's
-- func_mark_task_failed and the orchestrator's recovery, and the scale-down drain as one
-- function (orchestrator_drain_worker) that the race tests call too.
BEGIN;
SELECT no_plan();

-- ---------------------------------------------------------------------------------------------
-- func_task_max_attempts: the task's max_attempts when set, else orchestrator_state's setting.

UPDATE orchestrator_state SET max_task_attempts = 5 WHERE id = 1;
SELECT is(func_task_max_attempts(NULL), 5, 'NULL follows MAX_TASK_ATTEMPTS as the cycle recorded it');
SELECT is(func_task_max_attempts(0), 5, '0 counts as not set');
SELECT is(func_task_max_attempts(2), 2, 'a task''s own limit wins when set (lower)');
SELECT is(func_task_max_attempts(9), 9, 'a task''s own limit wins when set (higher)');

-- The worker's failure report follows the same rule: a task inserted without max_attempts,
-- with MAX_TASK_ATTEMPTS raised to 5, is re-queued on its third failure (it used to be Failed
-- at the column default 3 whatever the setting).
SELECT sqltest.mk_worker('hw-1', 'active');
INSERT INTO tasks (id, task_type, run_type, attempts) VALUES
    ('00000000-0000-0000-0000-0000000000e1', 'h', 'r-hard', 2);
SELECT is((SELECT count(*) FROM sqltest.claim('hw-1', 'r-hard'))::int, 1, 'claimed');
SELECT is(func_mark_task_failed('00000000-0000-0000-0000-0000000000e1', 'hw-1', 'boom'), true,
          'the holder reports the failure');
SELECT results_eq($$SELECT status::text, attempts FROM tasks
                     WHERE id = '00000000-0000-0000-0000-0000000000e1'$$,
                  $$VALUES ('Queued', 3)$$, 'third failure of 5: back to the queue');
UPDATE tasks SET available_at = now(), attempts = 4
 WHERE id = '00000000-0000-0000-0000-0000000000e1';
SELECT is((SELECT count(*) FROM sqltest.claim('hw-1', 'r-hard'))::int, 1, 'claimed again');
SELECT is(func_mark_task_failed('00000000-0000-0000-0000-0000000000e1', 'hw-1', 'boom'), true,
          'fifth failure reported');
SELECT results_eq($$SELECT status::text, attempts FROM tasks
                     WHERE id = '00000000-0000-0000-0000-0000000000e1'$$,
                  $$VALUES ('Failed', 5)$$, 'fifth failure of 5: Failed for good');

-- An explicit limit beats the setting.
INSERT INTO tasks (id, task_type, run_type, max_attempts) VALUES
    ('00000000-0000-0000-0000-0000000000e2', 'h', 'r-hard2', 1);
SELECT is((SELECT count(*) FROM sqltest.claim('hw-1', 'r-hard2'))::int, 1, 'claimed');
SELECT is(func_mark_task_failed('00000000-0000-0000-0000-0000000000e2', 'hw-1', 'boom'), true,
          'failure reported');
SELECT is((SELECT status::text FROM tasks WHERE id = '00000000-0000-0000-0000-0000000000e2'),
          'Failed', 'max_attempts 1: the first failure is final, whatever the setting');

-- ---------------------------------------------------------------------------------------------
-- orchestrator_drain_worker

SELECT sqltest.mk_worker('hw-idle', 'active');
SELECT sqltest.mk_worker('hw-busy', 'active');
SELECT sqltest.mk_worker('hw-spawning', 'spawning');
INSERT INTO tasks (id, task_type, run_type) VALUES
    ('00000000-0000-0000-0000-0000000000e3', 'h', 'r-drain');
SELECT is((SELECT count(*) FROM sqltest.claim('hw-busy', 'r-drain'))::int, 1, 'busy claims');
SELECT is(orchestrator_drain_worker('hw-idle', 'idle'), true, 'an idle active worker is drained');
SELECT results_eq($$SELECT status::text, metadata ->> 'terminating_reason', end_kind
                     FROM workers WHERE id = 'hw-idle'$$,
                  $$VALUES ('terminating', 'idle', 'expected')$$,
                  'terminating, with its reason, an expected end');
SELECT is(orchestrator_drain_worker('hw-busy', 'idle'), false, 'a worker holding a task is not');
SELECT is((SELECT status::text FROM workers WHERE id = 'hw-busy'), 'active', 'busy stays active');
SELECT is(orchestrator_drain_worker('hw-spawning', 'idle'), false, 'only active workers');
SELECT is(orchestrator_drain_worker('hw-nobody', 'idle'), false, 'an unknown worker: false');
SELECT is(sqltest.as_worker($$SELECT orchestrator_drain_worker('hw-busy', 'x')$$), '42501',
          'workers may not drain anyone');

-- ---------------------------------------------------------------------------------------------
-- pods_first_seen belongs to the orchestrator alone.

SELECT is(sqltest.as_worker($$SELECT * FROM pods_first_seen$$), '42501',
          'workers may not read pods_first_seen');

SELECT * FROM finish();
ROLLBACK;
