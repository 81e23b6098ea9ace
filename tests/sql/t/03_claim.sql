-- 03_claim.sql: func_claim_next_task (SPEC 4.3). now() is fixed inside this transaction, so
-- "available_at <= now()" and the timestamps the claim writes are compared exactly. Each
-- section uses its own run_type so sections never see each other's tasks.
BEGIN;
SELECT no_plan();

SELECT has_function('func_claim_next_task', ARRAY['text', 'text']);
SELECT function_returns('func_claim_next_task', ARRAY['text', 'text'], 'setof tasks');
SELECT is_definer('func_claim_next_task', ARRAY['text', 'text']);

-- Workers in every state; only 'active' may claim.
SELECT sqltest.mk_worker('w-' || s, s) FROM unnest(enum_range(NULL::worker_status)) s;
SELECT sqltest.mk_worker('w-active-2', 'active');

INSERT INTO tasks (task_type, run_type) VALUES ('refused', 'r-refuse');
-- Every worker in a pool that serves r-refuse: only the state can refuse the claim.
INSERT INTO worker_pools (name, run_types) VALUES ('t-r-refuse', ARRAY['r-refuse']);
UPDATE workers SET pool = 't-r-refuse';
SELECT is_empty(format($$SELECT * FROM func_claim_next_task(%L, 'r-refuse')$$, 'w-' || s),
                format('a %s worker claims nothing', s))
  FROM unnest(enum_range(NULL::worker_status)) s WHERE s <> 'active';
SELECT is_empty($$SELECT * FROM sqltest.claim('nobody', 'r-refuse')$$,
                'an unknown worker claims nothing');
SELECT is_empty($$SELECT * FROM sqltest.claim(NULL, 'r-refuse')$$,
                'a NULL worker claims nothing');
SELECT is((SELECT status::text || coalesce(worker_id, '-') FROM tasks WHERE run_type = 'r-refuse'),
          'Queued-', 'refused claims leave the task Queued and unassigned');
SELECT is((SELECT count(*) FROM workers WHERE id = 'nobody')::int, 0,
          'a claim never creates a worker row');

-- Order: oldest created_at first, whatever the insertion order.
INSERT INTO tasks (task_type, run_type, created_at) VALUES
    ('second', 'r-order', now() - interval '2 hours'),
    ('third', 'r-order', now() - interval '1 hour'),
    ('first', 'r-order', now() - interval '3 hours');
SELECT results_eq($$SELECT task_type, status::text, worker_id, generation_started_at
                      FROM sqltest.claim('w-active', 'r-order')$$,
                  $$VALUES ('first', 'In Progress', 'w-active', now())$$,
                  'claims the oldest task and returns it In Progress with its holder');
SELECT results_eq($$SELECT status::text, worker_id, generation_started_at FROM tasks
                     WHERE run_type = 'r-order' AND task_type = 'first'$$,
                  $$VALUES ('In Progress', 'w-active', now())$$, 'the claim is stored');
SELECT is((SELECT last_task_activity_at FROM workers WHERE id = 'w-active'), now(),
          'a claim sets workers.last_task_activity_at');
SELECT is((SELECT task_type FROM sqltest.claim('w-active-2', 'r-order')), 'second',
          'the next claim gets the next oldest');
SELECT is((SELECT task_type FROM sqltest.claim('w-active', 'r-order')), 'third',
          'then the newest');
SELECT is_empty($$SELECT * FROM sqltest.claim('w-active', 'r-order')$$,
                'an empty queue returns no row');
SELECT is((SELECT last_task_activity_at FROM workers WHERE id = 'w-spawning'), NULL,
          'a refused claim does not touch last_task_activity_at');

-- run_type: the worker's pool decides (issue 14), whatever run_type the worker passes.
INSERT INTO tasks (task_type, run_type, created_at) VALUES
    ('api-task', 'api', now() - interval '10 days'),
    ('gpu-task', 'gpu', now() - interval '1 day');
UPDATE workers SET pool = 'default' WHERE id = 'w-active';
SELECT is((SELECT task_type FROM func_claim_next_task('w-active', 'api')), 'gpu-task',
          'a worker of pool default (gpu) claims gpu even when it asks for api');
INSERT INTO worker_pools (name, run_types) VALUES ('p-api', ARRAY['api']);
UPDATE workers SET pool = 'p-api' WHERE id = 'w-active';
SELECT is((SELECT task_type FROM func_claim_next_task('w-active')), 'api-task',
          'a worker of pool p-api claims api although it sends the default gpu');

-- available_at: the retry backoff.
INSERT INTO tasks (task_type, run_type, available_at, created_at) VALUES
    ('later', 'r-avail', now() + interval '1 second', now() - interval '2 hours'),
    ('now', 'r-avail', now(), now() - interval '1 hour');
SELECT is((SELECT task_type FROM sqltest.claim('w-active', 'r-avail')), 'now',
          'a task is claimable at available_at = now(), an older one not before its time');
SELECT is_empty($$SELECT * FROM sqltest.claim('w-active', 'r-avail')$$,
                'a task with available_at in the future is not claimable');
UPDATE tasks SET available_at = now() - interval '1 second' WHERE task_type = 'later';
SELECT is((SELECT task_type FROM sqltest.claim('w-active', 'r-avail')), 'later',
          'it is once available_at has passed');

-- Dependencies: claimable only when every listed task exists and is Complete.
INSERT INTO tasks (id, task_type, run_type, status) VALUES
    ('00000000-0000-0000-0000-00000000000a', 'dep-a', 'r-deps-parent', 'Queued'),
    ('00000000-0000-0000-0000-00000000000b', 'dep-b', 'r-deps-parent', 'Complete'),
    ('00000000-0000-0000-0000-00000000000c', 'dep-c', 'r-deps-parent', 'Failed');
INSERT INTO tasks (task_type, run_type, dependant_on, created_at) VALUES
    ('needs-a-b', 'r-deps', ARRAY['00000000-0000-0000-0000-00000000000a',
                                  '00000000-0000-0000-0000-00000000000b']::uuid[],
     now() - interval '5 hours'),
    ('needs-c', 'r-deps', ARRAY['00000000-0000-0000-0000-00000000000c']::uuid[],
     now() - interval '4 hours'),
    ('needs-ghost', 'r-deps', ARRAY['00000000-0000-0000-0000-0000000000ff']::uuid[],
     now() - interval '3 hours'),
    ('needs-b', 'r-deps', ARRAY['00000000-0000-0000-0000-00000000000b']::uuid[],
     now() - interval '2 hours'),
    ('needs-nothing', 'r-deps', ARRAY[]::uuid[], now() - interval '1 hour');
SELECT is((SELECT task_type FROM sqltest.claim('w-active', 'r-deps')), 'needs-b',
          'incomplete, failed and missing dependencies block; all Complete is claimable');
SELECT is((SELECT task_type FROM sqltest.claim('w-active', 'r-deps')), 'needs-nothing',
          'an empty dependency list is claimable');
SELECT is_empty($$SELECT * FROM sqltest.claim('w-active', 'r-deps')$$,
                'nothing else is claimable while a dependency is incomplete');
UPDATE tasks SET status = 'Complete' WHERE id = '00000000-0000-0000-0000-00000000000a';
SELECT is((SELECT task_type FROM sqltest.claim('w-active', 'r-deps')), 'needs-a-b',
          'claimable once every dependency is Complete');
SELECT is_empty($$SELECT * FROM sqltest.claim('w-active', 'r-deps')$$,
                'failed and missing dependencies stay blocked');

-- Only Queued tasks are claimed.
INSERT INTO tasks (task_type, run_type, status, worker_id) VALUES
    ('running', 'r-status', 'In Progress', 'w-active-2'),
    ('done', 'r-status', 'Complete', NULL),
    ('failed', 'r-status', 'Failed', NULL),
    ('cancelled', 'r-status', 'Cancelled', NULL);
SELECT is_empty($$SELECT * FROM sqltest.claim('w-active', 'r-status')$$,
                'In Progress, Complete, Failed and Cancelled tasks are never claimed');
SELECT is((SELECT worker_id FROM tasks WHERE task_type = 'running'), 'w-active-2',
          'a held task keeps its holder');

-- A worker drained to terminating stops claiming at once.
INSERT INTO tasks (task_type, run_type) VALUES ('after-drain', 'r-drain');
UPDATE workers SET status = 'terminating' WHERE id = 'w-active-2';
SELECT is_empty($$SELECT * FROM sqltest.claim('w-active-2', 'r-drain')$$,
                'a terminating worker claims nothing');

SELECT * FROM finish();
ROLLBACK;
