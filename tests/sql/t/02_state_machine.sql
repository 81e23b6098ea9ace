-- 02_state_machine.sql: the worker state machine trigger (SPEC 4.2, and issue 16's stopped).
-- Every one of the 64 (from, to) pairs is generated and tried against a real row.
BEGIN;
SELECT no_plan();

SELECT set_eq(
    $$SELECT f, t FROM unnest(enum_range(NULL::worker_status)) f,
                       unnest(enum_range(NULL::worker_status)) t
       WHERE f <> t AND worker_status_transition_allowed(f, t)$$,
    'SELECT from_status, to_status FROM sqltest.legal_transitions()',
    'worker_status_transition_allowed() is exactly the SPEC table');
SELECT is((SELECT count(*) FROM sqltest.legal_transitions())::int, 16, '16 legal transitions');

-- One worker per pair, in the pair's from-state.
SELECT sqltest.mk_worker(format('sm-%s-%s', f, t), f)
  FROM unnest(enum_range(NULL::worker_status)) f, unnest(enum_range(NULL::worker_status)) t;
SELECT is((SELECT count(*) FROM workers WHERE id LIKE 'sm-%')::int, 64, '64 pair workers');
SELECT is((SELECT count(*) FROM workers
            WHERE id LIKE 'sm-%' AND status::text <> split_part(id, '-', 2))::int, 0,
          'every pair worker is in its from-state');

-- Legal and same-status moves are accepted...
SELECT lives_ok(
           format('UPDATE workers SET status = %L WHERE id = %L', t, format('sm-%s-%s', f, t)),
           format('%s -> %s is accepted', f, t))
  FROM unnest(enum_range(NULL::worker_status)) f, unnest(enum_range(NULL::worker_status)) t
 WHERE f = t OR (f, t) IN (SELECT * FROM sqltest.legal_transitions())
 ORDER BY f, t;

-- ...every other one is rejected with a message naming both states.
SELECT throws_ok(
           format('UPDATE workers SET status = %L WHERE id = %L', t, format('sm-%s-%s', f, t)),
           '23514',
           format('illegal worker status transition %s -> %s (worker sm-%s-%s)', f, t, f, t),
           format('%s -> %s is rejected', f, t))
  FROM unnest(enum_range(NULL::worker_status)) f, unnest(enum_range(NULL::worker_status)) t
 WHERE f <> t AND (f, t) NOT IN (SELECT * FROM sqltest.legal_transitions())
 ORDER BY f, t;

SELECT is((SELECT count(*) FROM workers
            WHERE id LIKE 'sm-%' AND status::text <> split_part(id, '-', 3))::int, 40,
          'exactly the 40 illegal pairs kept their from-state');

-- Terminal rows cannot be resurrected, whoever asks, even together with other changes.
SELECT throws_ok($$UPDATE workers SET status = 'active', last_heartbeat = now()
                    WHERE id = 'sm-terminated-active'$$, '23514', NULL,
                 'a heartbeat-style PATCH cannot resurrect a terminated worker');
SELECT lives_ok($$UPDATE workers SET metadata = metadata || '{"note": 1}'
                   WHERE id = 'sm-terminated-active'$$,
                'same-status updates (metadata) of a terminated row are allowed');

-- Inserts only as spawning (or legacy inactive).
SELECT throws_ok(format($$INSERT INTO workers (id, status) VALUES ('ins-%s', %L)$$, s, s),
                 '23514', format('worker ins-%s may only be inserted as spawning, not %s', s, s),
                 format('insert as %s is rejected', s))
  FROM unnest(ARRAY['active', 'terminating', 'error', 'terminated', 'crashed', 'stopped']) s;
SELECT lives_ok($$INSERT INTO workers (id) VALUES ('ins-default')$$, 'insert with the default');
SELECT is((SELECT status::text FROM workers WHERE id = 'ins-default'), 'spawning',
          'the default status is spawning');
SELECT lives_ok($$INSERT INTO workers (id, status) VALUES ('ins-inactive', 'inactive')$$,
                'insert as legacy inactive');

-- Bookkeeping filled by the trigger when the statement did not set it.
SELECT sqltest.mk_worker('bk-promote', 'spawning');
UPDATE workers SET status = 'active' WHERE id = 'bk-promote';
SELECT is((SELECT promoted_at FROM workers WHERE id = 'bk-promote'), now(),
          'spawning -> active sets promoted_at');
SELECT sqltest.mk_worker('bk-error', 'active');
UPDATE workers SET status = 'error' WHERE id = 'bk-error';
SELECT results_eq($$SELECT ended_at, end_kind FROM workers WHERE id = 'bk-error'$$,
                  $$VALUES (now(), 'unexpected')$$, 'active -> error ends it unexpectedly');
SELECT sqltest.mk_worker('bk-drain', 'active');
UPDATE workers SET status = 'terminating' WHERE id = 'bk-drain';
SELECT results_eq($$SELECT ended_at, end_kind FROM workers WHERE id = 'bk-drain'$$,
                  $$VALUES (now(), 'expected')$$, 'active -> terminating ends it as expected');
SELECT sqltest.mk_worker('bk-explicit', 'active');
UPDATE workers SET status = 'error', end_kind = 'expected', ended_at = '2001-01-01'
 WHERE id = 'bk-explicit';
SELECT results_eq($$SELECT ended_at, end_kind FROM workers WHERE id = 'bk-explicit'$$,
                  $$VALUES ('2001-01-01'::timestamptz, 'expected')$$,
                  'values set by the statement are kept');
UPDATE workers SET status = 'terminated' WHERE id = 'bk-drain';
SELECT results_eq($$SELECT ended_at, end_kind FROM workers WHERE id = 'bk-drain'$$,
                  $$VALUES (now(), 'expected')$$, 'terminated keeps the first end');

SELECT * FROM finish();
ROLLBACK;
