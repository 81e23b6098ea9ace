-- 08_gateway.sql: the gateway's functions (0006_gateway.sql, issue 13): a worker whose row has
-- ended is refused everywhere, the crashed beat ends the worker, results keep the holder rule.
BEGIN;
SELECT no_plan();

SELECT sqltest.mk_worker('g-live', 'active');
SELECT sqltest.mk_worker('g-spawn', 'spawning');
SELECT sqltest.mk_worker('g-draining', 'terminating');
SELECT sqltest.mk_worker('g-done', 'terminated');
SELECT sqltest.mk_worker('g-err', 'error');
SELECT sqltest.mk_worker('g-crash', 'crashed');
INSERT INTO tasks (id, task_type, run_type, project_id) VALUES
    ('00000000-0000-0000-0000-0000000000b1', 'g', 'r-gw', '00000000-0000-0000-0000-0000000000ff'),
    ('00000000-0000-0000-0000-0000000000b2', 'g', 'r-gw', NULL),
    ('00000000-0000-0000-0000-0000000000b3', 'g', 'gpu', NULL);
-- The workers' pool (default) serves run type r-gw (what the orchestrator writes from POOLS).
UPDATE worker_pools SET run_types = ARRAY['r-gw'] WHERE name = 'default';

-- task-counts counts what the worker may claim -- its pool's run types -- whatever run_type it
-- sends: the reference worker always sends "gpu", and "0 queued" would make it skip its claim.
SELECT is((SELECT body -> 'totals' ->> 'queued_only' FROM func_gateway_task_counts('g-live', 'gpu')),
          '2', 'counts: the pool''s run types (r-gw: 2), not the run_type asked for (gpu: 1)');
SELECT is((SELECT body -> 'run_types' FROM func_gateway_task_counts('g-live', 'gpu')),
          '["r-gw"]'::jsonb, 'counts name the run types counted');

-- Ended or unknown workers are refused by every entry point.
SELECT is(outcome, 'refused', 'refused: ' || w || ' ' || f)
  FROM unnest(ARRAY['g-done', 'g-err', 'g-crash', 'nobody']) AS w,
       LATERAL (VALUES
           ('heartbeat', (SELECT outcome FROM func_gateway_heartbeat(w, 1, 1, '[]', false))),
           ('counts', (SELECT outcome FROM func_gateway_task_counts(w, 'r-gw'))),
           ('claim', (SELECT outcome FROM func_gateway_claim(w, 'r-gw'))),
           ('held', (SELECT outcome FROM func_gateway_held_tasks(w, 1))),
           ('update', (SELECT outcome FROM func_gateway_task_update(w,
                          '00000000-0000-0000-0000-0000000000b1', 'Failed', 'x', false))),
           ('for_upload', (SELECT outcome FROM func_gateway_task_for_upload(w,
                          '00000000-0000-0000-0000-0000000000b1'))),
           ('complete', (SELECT outcome FROM func_gateway_complete(w,
                          '00000000-0000-0000-0000-0000000000b1', '{}', 'x')))) AS c(f, outcome);
SELECT is((SELECT body ->> 'worker_status' FROM func_gateway_claim('g-done', 'r-gw')), 'terminated',
          'the refusal names the status');

-- Claims: only an active worker gets a task; the draining and the spawning get 'empty'.
SELECT is((SELECT outcome FROM func_gateway_claim('g-draining', 'r-gw')), 'empty', 'draining: empty');
SELECT is((SELECT outcome FROM func_gateway_claim('g-spawn', 'r-gw')), 'empty', 'spawning: empty');
SELECT is((SELECT body ->> 'task_id' FROM func_gateway_claim('g-live', 'r-gw')),
          '00000000-0000-0000-0000-0000000000b1', 'active: the oldest task');
SELECT is((SELECT body FROM func_gateway_held_tasks('g-live', 5)) -> 0 ->> 'id',
          '00000000-0000-0000-0000-0000000000b1', 'held: the claimed task');
SELECT is((SELECT body -> 'totals' FROM func_gateway_task_counts('g-live', 'r-gw')),
          '{"queued_only": 1, "eligible_queued": 1, "active_only": 1, "queued_plus_active": 2}'::jsonb,
          'counts');

-- Holder rule with reasons.
SELECT is((SELECT outcome FROM func_gateway_task_for_upload('g-draining',
              '00000000-0000-0000-0000-0000000000b1')), 'not_holder', 'another worker: not_holder');
SELECT is((SELECT outcome FROM func_gateway_task_update('g-live',
              '00000000-0000-0000-0000-0000000000c9', 'Failed', 'x', false)), 'not_found',
          'unknown task: not_found');
SELECT is((SELECT body ->> 'project_id' FROM func_gateway_task_for_upload('g-live',
              '00000000-0000-0000-0000-0000000000b1')), '00000000-0000-0000-0000-0000000000ff',
          'for_upload gives the project');
SELECT is((SELECT outcome FROM func_gateway_complete('g-live',
              '00000000-0000-0000-0000-0000000000b1', '{"public_url": "u"}', 'u')), 'ok',
          'complete by the holder');
SELECT is((SELECT outcome FROM func_gateway_complete('g-live',
              '00000000-0000-0000-0000-0000000000b1', '{}', 'u')), 'not_in_progress',
          'completing twice: not_in_progress');
SELECT throws_ok($$SELECT * FROM func_gateway_task_update('g-live',
                     '00000000-0000-0000-0000-0000000000b1', 'Queued', NULL, false)$$, '22023',
                 NULL, 'an unsupported status is an error');

-- Heartbeats: NULL figures keep the keys out; the crashed beat ends the worker.
SELECT is((SELECT outcome FROM func_gateway_heartbeat('g-spawn', NULL, NULL, '[]', false)), 'ok',
          'a spawning worker may beat');
SELECT is((SELECT metadata ? 'vram_total_mb' FROM workers WHERE id = 'g-spawn'), false,
          'unknown VRAM is not written');
SELECT is((SELECT body ->> 'worker_status' FROM func_gateway_heartbeat('g-live', 0, 0, '[]', true)),
          'crashed', 'crashed beat: active -> crashed');
SELECT is((SELECT status::text FROM workers WHERE id = 'g-live'), 'crashed', 'row is crashed');
SELECT is((SELECT body ->> 'worker_status' FROM func_gateway_heartbeat('g-draining', NULL, NULL,
              '[]', true)), 'error', 'crashed beat while draining: -> error');

SELECT * FROM finish();
ROLLBACK;
