-- 10_runpod_catalog.sql: the tables of issue 16 (0010_runpod_catalog.sql) -- the GPU catalog
-- cache and the rate-limit quota the orchestrator shares between runs. Orchestrator-owned: the
-- worker role may not read or write them; their checks refuse what no read of RunPod produces.
BEGIN;
SELECT no_plan();

SELECT has_table(t) FROM unnest(ARRAY['runpod_catalog_reads', 'runpod_gpu_catalog',
                                      'runpod_rate_limit']) AS t;
SELECT col_is_pk('runpod_catalog_reads', 'scope');
SELECT col_is_pk('runpod_gpu_catalog', ARRAY['scope', 'gpu_type']);
SELECT col_is_pk('runpod_rate_limit', 'id');
SELECT col_type_is('runpod_catalog_reads', c, ty, 'runpod_catalog_reads.' || c || ' is ' || ty)
  FROM (VALUES ('cloud', 'text'), ('read_at', 'timestamp with time zone'),
               ('attempted_at', 'timestamp with time zone'), ('ok', 'boolean'),
               ('error', 'text'), ('entries', 'integer')) AS v(c, ty);
SELECT col_type_is('runpod_gpu_catalog', c, ty, 'runpod_gpu_catalog.' || c || ' is ' || ty)
  FROM (VALUES ('gpu_type', 'text'), ('stock', 'text'), ('availability', 'text'),
               ('price_per_hr', 'numeric')) AS v(c, ty);
SELECT col_type_is('runpod_rate_limit', c, ty, 'runpod_rate_limit.' || c || ' is ' || ty)
  FROM (VALUES ('observed_at', 'timestamp with time zone'), ('ratelimit', 'text'),
               ('ratelimit_policy', 'text'), ('malformed', 'boolean'),
               ('retry_after_until', 'timestamp with time zone'), ('remaining', 'bigint'))
       AS v(c, ty);
SELECT has_index('tasks', 'idx_tasks_complete_processed', ARRAY['generation_processed_at'],
                 'completed tasks by completion time (the value choice''s durations)');

-- What a read writes is accepted; what none produces is refused.
INSERT INTO runpod_catalog_reads (scope, cloud, read_at, ok, entries)
VALUES ('SECURE', 'SECURE', now(), true, 2);
SELECT lives_ok($$INSERT INTO runpod_gpu_catalog (scope, gpu_type, stock, availability,
                    price_per_hr) VALUES ('SECURE', 'NVIDIA A40', 'out', 'NONE', 0.40),
                    ('SECURE', 'NVIDIA L40S', 'in', 'HIGH', NULL)$$,
                'entries with a stock, a level and a price (or none)');
SELECT throws_ok($$INSERT INTO runpod_gpu_catalog (scope, gpu_type, stock, availability)
                   VALUES ('SECURE', 'X', 'plenty', 'HIGH')$$, '23514', NULL,
                 'a stock other than in/out/unknown is refused');
SELECT throws_ok($$INSERT INTO runpod_gpu_catalog (scope, gpu_type, stock, availability,
                     price_per_hr) VALUES ('SECURE', 'X', 'in', 'HIGH', -1)$$, '23514', NULL,
                 'a price that is not positive is refused');
SELECT throws_ok($$INSERT INTO runpod_gpu_catalog (scope, gpu_type, stock, availability)
                   VALUES ('COMMUNITY', 'X', 'in', 'HIGH')$$, '23503', NULL,
                 'an entry of a scope that was never read is refused');
SELECT throws_ok($$INSERT INTO runpod_catalog_reads (scope, cloud, ok)
                   VALUES ('SPOT', 'SPOT', false)$$, '23514', NULL, 'an unknown cloud is refused');
SELECT throws_ok($$INSERT INTO runpod_rate_limit (id, observed_at) VALUES (2, now())$$, '23514',
                 NULL, 'one rate-limit row only');
SELECT throws_ok(format($$INSERT INTO runpod_rate_limit (id, observed_at, ratelimit)
                          VALUES (1, now(), %L)$$, repeat('x', 600)), '23514', NULL,
                 'a stored header is bounded');
DELETE FROM runpod_catalog_reads WHERE scope = 'SECURE';
SELECT is((SELECT count(*)::int FROM runpod_gpu_catalog), 0,
          'forgetting a read forgets its entries');

-- Orchestrator-owned: the worker role has no access (07_grants checks every table as well).
SELECT is(sqltest.as_worker(q), '42501', 'worker may not: ' || q) FROM unnest(ARRAY[
    'SELECT * FROM runpod_catalog_reads',
    'SELECT * FROM runpod_gpu_catalog',
    'SELECT * FROM runpod_rate_limit',
    $$INSERT INTO runpod_rate_limit (id, observed_at, remaining) VALUES (1, now(), 999999)$$
    ]) AS q;

SELECT * FROM finish();
ROLLBACK;
