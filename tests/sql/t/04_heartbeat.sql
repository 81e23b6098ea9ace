-- 04_heartbeat.sql: func_worker_heartbeat never changes status or other metadata keys, never
-- creates rows, never touches terminated rows, and returns the worker's status (SPEC 4.3,
-- python-original 10.2).
BEGIN;
SELECT no_plan();

SELECT is_definer('func_worker_heartbeat', ARRAY['text', 'integer', 'integer']);
SELECT function_returns('func_worker_heartbeat', ARRAY['text', 'integer', 'integer'], 'text');

SELECT sqltest.mk_worker('hb-' || s, s,
           '{"error_reason": "kept", "promoted_to_active_at": "x", "vram_total_mb": 1}')
  FROM unnest(enum_range(NULL::worker_status)) s;

-- Unknown worker: NULL, and no row appears (the original created "external" ghost rows).
SELECT is(func_worker_heartbeat('hb-ghost', 24576, 100), NULL, 'an unknown worker gets NULL');
SELECT is((SELECT count(*) FROM workers WHERE id = 'hb-ghost')::int, 0,
          'a heartbeat never creates a worker row');

-- Every non-terminated state: status returned and unchanged; heartbeat and VRAM written.
SELECT is(func_worker_heartbeat('hb-' || s, 24576, 1024), s::text,
          format('a %s worker is told %s', s, s))
  FROM unnest(enum_range(NULL::worker_status)) s;
SELECT is((SELECT count(*) FROM workers
            WHERE id LIKE 'hb-%' AND status::text <> substr(id, 4))::int, 0,
          'no heartbeat changed any status (spawning is promoted by the orchestrator only)');
SELECT results_eq(
    $$SELECT last_heartbeat, metadata FROM workers WHERE id = 'hb-active'$$,
    $$VALUES (now(), jsonb_build_object('error_reason', 'kept', 'promoted_to_active_at', 'x',
                                        'vram_total_mb', 24576, 'vram_used_mb', 1024,
                                        'vram_timestamp', extract(epoch FROM now())))$$,
    'last_heartbeat = now(); VRAM keys merged; every other key kept');

-- terminated: reported, never written.
SELECT results_eq(
    $$SELECT status::text, last_heartbeat, metadata FROM workers WHERE id = 'hb-terminated'$$,
    $$VALUES ('terminated', NULL::timestamptz,
              '{"error_reason": "kept", "promoted_to_active_at": "x", "vram_total_mb": 1}'::jsonb)$$,
    'a terminated row is not touched');

-- NULL figures: liveness only, VRAM keys keep their values.
SELECT sqltest.mk_worker('hb-nulls', 'active', '{"vram_total_mb": 8, "vram_used_mb": 2}');
SELECT is(func_worker_heartbeat('hb-nulls', NULL, NULL), 'active', 'NULL VRAM accepted');
SELECT results_eq($$SELECT last_heartbeat, metadata FROM workers WHERE id = 'hb-nulls'$$,
                  $$VALUES (now(), '{"vram_total_mb": 8, "vram_used_mb": 2}'::jsonb)$$,
                  'NULL VRAM figures leave the VRAM keys alone');
SELECT is(func_worker_heartbeat('hb-nulls', 0, NULL), 'active', 'partial VRAM accepted');
SELECT results_eq($$SELECT metadata FROM workers WHERE id = 'hb-nulls'$$,
                  $$VALUES ('{"vram_total_mb": 0, "vram_used_mb": 2}'::jsonb
                            || jsonb_build_object('vram_timestamp', extract(epoch FROM now())))$$,
                  'a reported 0 (GPU not visible) is written, the missing figure kept');

-- The orchestrator's decisions are reported back.
UPDATE workers SET status = 'terminating' WHERE id = 'hb-active';
SELECT is(func_worker_heartbeat('hb-active', 1, 1), 'terminating',
          'a drained worker is told terminating');
UPDATE workers SET status = 'terminated' WHERE id = 'hb-active';
SELECT is(func_worker_heartbeat('hb-active', 1, 1), 'terminated',
          'a terminated worker is told terminated (and exits)');

SELECT * FROM finish();
ROLLBACK;
