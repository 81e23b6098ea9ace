-- 09_pools.sql: worker pools on the database side (issue 14). A worker claims only tasks of its
-- own pool's run types (worker_pools), whatever run_type it passes; a pool with no row, or with
-- no run type (no longer configured), claims nothing; orchestrator_sync_pools writes the
-- configuration and empties pools it no longer names; existing rows joined `default`.
BEGIN;
SELECT no_plan();

SELECT has_column('workers', 'pool');
SELECT col_not_null('workers', 'pool');
SELECT col_default_is('workers', 'pool', 'default');
SELECT results_eq($$SELECT run_types FROM worker_pools WHERE name = 'default'$$,
                  $$VALUES (ARRAY['gpu'])$$, 'the migration leaves pool default serving gpu');

SELECT is(orchestrator_sync_pools('{"video": ["video", "gpu-hq"], "image": ["image"]}'), 3,
          'sync writes two new pools and empties default, which the configuration no longer names');
SELECT results_eq($$SELECT name, run_types FROM worker_pools ORDER BY name$$,
                  $$VALUES ('default', '{}'::text[]), ('image', ARRAY['image']),
                           ('video', ARRAY['video', 'gpu-hq'])$$, 'worker_pools says so');
SELECT is(orchestrator_sync_pools('{"video": ["video", "gpu-hq"], "image": ["image"]}'), 0,
          'a second sync with the same configuration changes nothing');

SELECT sqltest.mk_worker('pv-1', 'active');
SELECT sqltest.mk_worker('pi-1', 'active');
SELECT sqltest.mk_worker('pd-1', 'active');
SELECT sqltest.mk_worker('px-1', 'active');
UPDATE workers SET pool = 'video' WHERE id = 'pv-1';
UPDATE workers SET pool = 'image' WHERE id = 'pi-1';
UPDATE workers SET pool = 'nowhere' WHERE id = 'px-1';
INSERT INTO tasks (task_type, run_type, created_at) VALUES
    ('an-image', 'image', now() - interval '3 hours'),
    ('a-video', 'video', now() - interval '2 hours'),
    ('an-hq', 'gpu-hq', now() - interval '1 hour'),
    ('a-gpu', 'gpu', now() - interval '4 hours');

SELECT is((SELECT task_type FROM func_claim_next_task('pv-1', 'gpu')), 'a-video',
          'a video worker sending gpu gets the oldest task of its pool''s run types');
SELECT is((SELECT task_type FROM func_claim_next_task('pv-1', 'image')), 'an-hq',
          'then the next of its pool (never the older image task it asked for)');
SELECT is_empty($$SELECT * FROM func_claim_next_task('pv-1', 'image')$$,
                'and nothing of another pool');
SELECT is((SELECT task_type FROM func_claim_next_task('pi-1', 'video')), 'an-image',
          'an image worker gets image tasks only');
SELECT is_empty($$SELECT * FROM func_claim_next_task('pd-1', 'gpu')$$,
                'a worker of a pool no longer configured (no run type) claims nothing');
SELECT is_empty($$SELECT * FROM func_claim_next_task('px-1', 'gpu')$$,
                'a worker of a pool without a row claims nothing');
SELECT is((SELECT status::text FROM tasks WHERE task_type = 'a-gpu'), 'Queued',
          'the gpu task nobody serves stays Queued');

SELECT is(sqltest.as_worker($$SELECT * FROM worker_pools$$), '42501',
          'workers may not read worker_pools');
SELECT is(sqltest.as_worker($$SELECT orchestrator_sync_pools('{}')$$), '42501',
          'workers may not change the pools');

SELECT * FROM finish();
ROLLBACK;
