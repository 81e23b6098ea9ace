-- 17_task_cost.sql: orchestrator_task_costs (issue 17 item 5, structure_docs/cost.md). In one
-- transaction now() stands still, so every figure is exact: a task's cost is its worker's price
-- x its runtime; a pool's GPU cost its workers' time inside the window x their price; busy the
-- part tasks ran in (completed ones, one completed after the window's end, a running one); the
-- histogram bucket the first bound >= the cost; max_tasks keeps the newest completions only.
BEGIN;
SELECT no_plan();

SELECT has_function('orchestrator_task_costs',
                    ARRAY['timestamp with time zone', 'timestamp with time zone',
                          'double precision[]', 'integer']);
SELECT has_column('orchestrator_state', 'cost_observed_until');
SELECT has_index('tasks', 'idx_tasks_complete_processed');
SELECT function_privs_are('orchestrator_task_costs',
                          ARRAY['timestamp with time zone', 'timestamp with time zone',
                                'double precision[]', 'integer'],
                          'orchestrator_worker', ARRAY[]::text[],
                          'the workers may not read costs');

-- A: $0.72/h, alive for the whole hour. B: no price. C: $3.60/h, terminated 30 min ago.
INSERT INTO workers (id, status, pool, cost_per_hr) VALUES
    ('gpu-cost-a', 'spawning', 'video', 0.72), ('gpu-cost-b', 'spawning', 'video', NULL),
    ('gpu-cost-c', 'spawning', 'image', 3.60);
UPDATE workers SET status = 'active';
UPDATE workers SET created_at = now() - interval '2 hours';
INSERT INTO tasks (task_type, status, worker_id, generation_started_at, generation_processed_at)
VALUES ('render', 'Complete', 'gpu-cost-a', now() - interval '20 min', now() - interval '10 min'),
       ('render', 'Complete', 'gpu-cost-a', now() - interval '70 min', now() - interval '55 min'),
       ('upscale', 'Complete', 'gpu-cost-b', now() - interval '5 min', now() - interval '4 min'),
       ('render', 'Complete', 'gpu-cost-c', now() - interval '40 min', now() - interval '35 min'),
       ('late', 'Complete', 'gpu-cost-a', now() - interval '3 min', now() + interval '1 min'),
       ('old', 'Complete', 'gpu-cost-a', now() - interval '3 hours', now() - interval '2 hours');
INSERT INTO tasks (task_type, status, worker_id, generation_started_at)
VALUES ('render', 'In Progress', 'gpu-cost-a', now() - interval '2 min');
-- C is terminated at now() - 30 min (updated_at is its terminated transition).
ALTER TABLE workers DISABLE TRIGGER trg_workers_updated_at;
UPDATE workers SET status = 'terminating' WHERE id = 'gpu-cost-c';
UPDATE workers SET status = 'terminated', updated_at = now() - interval '30 min'
 WHERE id = 'gpu-cost-c';
ALTER TABLE workers ENABLE TRIGGER trg_workers_updated_at;

CREATE TEMP TABLE c AS
SELECT * FROM orchestrator_task_costs(now() - interval '1 hour', now(), NULL, 1000);

SELECT results_eq(
    $$SELECT pool, task_type, tasks, round(task_usd::numeric, 6), round(runtime_sec::numeric),
             unpriced FROM c WHERE kind = 'type' ORDER BY pool, task_type$$,
    $$VALUES ('image', 'render', 1::bigint, 0.300000, 300::numeric, 0::bigint),
             ('video', 'render', 2::bigint, 0.300000, 1500::numeric, 0::bigint),
             ('video', 'upscale', 1::bigint, 0.000000, 60::numeric, 1::bigint)$$,
    'per (pool, task_type): completed in the window only (not the late nor the old one), the '
    'whole runtime priced, an unpriced worker counted at $0');
-- video GPU: A for the hour (0.72) + B (no price, 0). busy: A's tasks inside the window:
-- 600 s + 300 s (the 70-55 min task from the window's start) + 180 s (late, up to now) + 120 s
-- (running) = 1200 s x 0.72 / 3600 = 0.24. image: C alive 30 min of the hour = 1.80; its
-- task 300 s = 0.30.
SELECT results_eq(
    $$SELECT pool, round(gpu_usd::numeric, 6), round(busy_usd::numeric, 6) FROM c
       WHERE kind = 'pool' ORDER BY pool$$,
    $$VALUES ('image', 1.800000, 0.300000), ('video', 0.720000, 0.240000)$$,
    'per pool: GPU time inside the window and the part tasks ran in');

SELECT results_eq(
    $$SELECT task_type, bucket, tasks FROM orchestrator_task_costs(now() - interval '1 hour',
        now(), ARRAY[0.01, 0.1, 0.2, 0.3]::float8[], 1000)
       WHERE kind = 'type' AND pool = 'video' ORDER BY task_type, bucket$$,
    $$VALUES ('render', 2, 2::bigint), ('upscale', 0, 1::bigint)$$,
    'buckets: $0.12 and $0.18 -> 0.2 (index 2), $0 -> 0.01 (index 0)');

SELECT results_eq(
    $$SELECT sum(tasks) FROM orchestrator_task_costs(now() - interval '1 hour', now(), NULL, 2)
       WHERE kind = 'type'$$,
    $$VALUES (1::numeric)$$,
    'max_tasks bounds the completed tasks read: the newest 2 (the late one, after the window, '
    'and the upscale), so 1 counted');

SELECT is((SELECT count(*) FROM orchestrator_task_costs(now() - interval '1 hour',
              now() - interval '59 min', NULL, 1000) WHERE kind = 'type'), 0::bigint,
          'a window without completions has no type rows');

SELECT * FROM finish();
ROLLBACK;
