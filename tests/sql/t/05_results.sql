-- 05_results.sql: func_mark_task_complete / func_mark_task_failed: only the holder, retry
-- backoff 10 s * 2^(attempts-1) capped at 1 h, Failed at max_attempts (SPEC 4.3, 5).
BEGIN;
SELECT no_plan();

SELECT is_definer('func_mark_task_complete', ARRAY['uuid', 'text', 'jsonb', 'text']);
SELECT is_definer('func_mark_task_failed', ARRAY['uuid', 'text', 'text']);

SELECT sqltest.mk_worker('rw-1', 'active');
SELECT sqltest.mk_worker('rw-2', 'active');
UPDATE workers SET last_task_activity_at = '2000-01-01' WHERE id IN ('rw-1', 'rw-2');

-- Completion.
INSERT INTO tasks (id, task_type, run_type) VALUES
    ('00000000-0000-0000-0000-0000000000c1', 'c', 'r-complete');
SELECT is((SELECT count(*) FROM sqltest.claim('rw-1', 'r-complete'))::int, 1, 'rw-1 claims');
UPDATE workers SET last_task_activity_at = '2000-01-01' WHERE id = 'rw-1';
SELECT is(func_mark_task_complete('00000000-0000-0000-0000-0000000000c1', 'rw-2',
                                  '{"x": 1}', 'https://other'), false,
          'a worker that does not hold the task cannot complete it');
SELECT results_eq($$SELECT status::text, result_data, output_location FROM tasks
                     WHERE id = '00000000-0000-0000-0000-0000000000c1'$$,
                  $$VALUES ('In Progress', NULL::jsonb, NULL::text)$$,
                  'the refused completion changed nothing');
SELECT is((SELECT last_task_activity_at FROM workers WHERE id = 'rw-2'), '2000-01-01'::timestamptz,
          'a refused completion does not count as activity');
SELECT is(func_mark_task_complete('00000000-0000-0000-0000-0000000000c1', 'rw-1',
                                  '{"frames": 81}', 'https://bucket/out.mp4'), true,
          'the holder completes it');
SELECT results_eq($$SELECT status::text, worker_id, generation_processed_at, result_data,
                           output_location FROM tasks
                     WHERE id = '00000000-0000-0000-0000-0000000000c1'$$,
                  $$VALUES ('Complete', 'rw-1', now(), '{"frames": 81}'::jsonb,
                            'https://bucket/out.mp4')$$,
                  'Complete with processed time, result and output location');
SELECT is((SELECT last_task_activity_at FROM workers WHERE id = 'rw-1'), now(),
          'completion sets last_task_activity_at');
SELECT is(func_mark_task_complete('00000000-0000-0000-0000-0000000000c1', 'rw-1', '{}', 'x'),
          false, 'completing twice is refused');
SELECT is(func_mark_task_failed('00000000-0000-0000-0000-0000000000c1', 'rw-1', 'late'),
          false, 'failing a Complete task is refused');
INSERT INTO tasks (id, task_type, run_type) VALUES
    ('00000000-0000-0000-0000-0000000000c2', 'q', 'r-unclaimed');
SELECT is(func_mark_task_complete('00000000-0000-0000-0000-0000000000c2', 'rw-1', '{}', 'x'),
          false, 'a Queued task cannot be completed');
SELECT is(func_mark_task_complete('00000000-0000-0000-0000-0000000000ff', 'rw-1', '{}', 'x'),
          false, 'an unknown task cannot be completed');

-- Backoff formula.
SELECT is(func_task_retry_delay(n), make_interval(secs => s), format('delay after %s: %s s', n, s))
  FROM (VALUES (1, 10), (2, 20), (3, 40), (4, 80), (9, 2560), (10, 3600), (11, 3600),
               (1000, 3600)) AS v(n, s);

-- Failure and retry: 3 attempts (the default), then Failed.
INSERT INTO tasks (id, task_type, run_type) VALUES
    ('00000000-0000-0000-0000-0000000000f1', 'f', 'r-fail');
SELECT is((SELECT count(*) FROM sqltest.claim('rw-1', 'r-fail'))::int, 1, 'claimed');
SELECT is(func_mark_task_failed('00000000-0000-0000-0000-0000000000f1', 'rw-2', 'not mine'),
          false, 'a worker that does not hold the task cannot fail it');
SELECT is((SELECT attempts FROM tasks WHERE id = '00000000-0000-0000-0000-0000000000f1'), 0,
          'the refused failure changed nothing');
UPDATE workers SET last_task_activity_at = '2000-01-01' WHERE id = 'rw-1';
SELECT is(func_mark_task_failed('00000000-0000-0000-0000-0000000000f1', 'rw-1', 'OOM 1'),
          true, 'the holder fails it (attempt 1)');
SELECT results_eq($$SELECT status::text, attempts, worker_id, generation_started_at,
                           generation_processed_at, available_at, error_message FROM tasks
                     WHERE id = '00000000-0000-0000-0000-0000000000f1'$$,
                  $$VALUES ('Queued', 1, NULL::text, NULL::timestamptz, NULL::timestamptz,
                            now() + interval '10 seconds', 'OOM 1')$$,
                  'back to Queued, unassigned, not before now() + 10 s');
SELECT is((SELECT last_task_activity_at FROM workers WHERE id = 'rw-1'), now(),
          'failure sets last_task_activity_at');
SELECT is_empty($$SELECT * FROM sqltest.claim('rw-2', 'r-fail')$$,
                'the retry is not claimable during its backoff');

UPDATE tasks SET available_at = now() WHERE id = '00000000-0000-0000-0000-0000000000f1';
SELECT is((SELECT attempts FROM sqltest.claim('rw-2', 'r-fail')), 1,
          'claimable again after the backoff');
SELECT is(func_mark_task_failed('00000000-0000-0000-0000-0000000000f1', 'rw-2', 'OOM 2'),
          true, 'attempt 2 fails');
SELECT results_eq($$SELECT status::text, attempts, available_at FROM tasks
                     WHERE id = '00000000-0000-0000-0000-0000000000f1'$$,
                  $$VALUES ('Queued', 2, now() + interval '20 seconds')$$,
                  'Queued again, backoff doubled to 20 s');

UPDATE tasks SET available_at = now() WHERE id = '00000000-0000-0000-0000-0000000000f1';
SELECT is((SELECT count(*) FROM sqltest.claim('rw-1', 'r-fail'))::int, 1, 'claimed again');
SELECT is(func_mark_task_failed('00000000-0000-0000-0000-0000000000f1', 'rw-1', 'OOM 3'),
          true, 'attempt 3 fails');
SELECT results_eq($$SELECT status::text, attempts, worker_id, generation_processed_at,
                           error_message FROM tasks
                     WHERE id = '00000000-0000-0000-0000-0000000000f1'$$,
                  $$VALUES ('Failed', 3, 'rw-1', now(), 'OOM 3')$$,
                  'Failed for good at max_attempts; the last holder is kept for diagnosis');
SELECT is_empty($$SELECT * FROM sqltest.claim('rw-1', 'r-fail')$$,
                'a Failed task is never claimed again');
SELECT is(func_mark_task_failed('00000000-0000-0000-0000-0000000000f1', 'rw-1', 'again'),
          false, 'failing a Failed task is refused');

-- max_attempts = 1: the first failure is final.
INSERT INTO tasks (id, task_type, run_type, max_attempts) VALUES
    ('00000000-0000-0000-0000-0000000000f2', 'f', 'r-fail-once', 1);
SELECT is((SELECT count(*) FROM sqltest.claim('rw-1', 'r-fail-once'))::int, 1, 'claimed');
SELECT is(func_mark_task_failed('00000000-0000-0000-0000-0000000000f2', 'rw-1', 'bad input'),
          true, 'fails');
SELECT results_eq($$SELECT status::text, attempts FROM tasks
                     WHERE id = '00000000-0000-0000-0000-0000000000f2'$$,
                  $$VALUES ('Failed', 1)$$, 'max_attempts 1: Failed after one attempt');

-- A task recovered by the orchestrator (back to Queued) can no longer be reported by its
-- old holder.
INSERT INTO tasks (id, task_type, run_type) VALUES
    ('00000000-0000-0000-0000-0000000000f3', 'f', 'r-recovered');
SELECT is((SELECT count(*) FROM sqltest.claim('rw-1', 'r-recovered'))::int, 1, 'claimed');
UPDATE tasks SET status = 'Queued', worker_id = NULL, attempts = attempts + 1
 WHERE id = '00000000-0000-0000-0000-0000000000f3';
SELECT is(func_mark_task_complete('00000000-0000-0000-0000-0000000000f3', 'rw-1', '{}', 'x'),
          false, 'the old holder of a recovered task cannot complete it');
SELECT is(func_mark_task_failed('00000000-0000-0000-0000-0000000000f3', 'rw-1', 'x'),
          false, 'nor fail it');

SELECT * FROM finish();
ROLLBACK;
