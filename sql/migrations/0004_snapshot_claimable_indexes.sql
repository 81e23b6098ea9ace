-- 0004_snapshot_claimable_indexes.sql: partial indexes for the snapshot's claimable-task count
-- (SPEC 6 step 6; src/db.c SQL_SNAPSHOT_SUMMARY), found by scripts/bench.sh.
--
-- The count is split in two: Queued tasks without dependencies (almost all of them), counted
-- from an index alone (index-only scan, no heap visit), and Queued tasks with dependencies,
-- the only ones that need the per-task dependency probe. Before, every Queued row was
-- fetched from the heap to read dependant_on, and the planner charged each one a dependency
-- probe: at 10,000 Queued tasks the estimate (~930,000) crossed the JIT thresholds and one
-- no-op cycle took ~325 ms instead of ~30 ms (structure_docs/performance.md has the figures).
--
-- Both indexes hold Queued rows only, so they stay small whatever the history of the table.
-- Plain CREATE INDEX (migrations run in a transaction): on a large queue it blocks task writes
-- for the time of the build, a fraction of a second for 10,000 Queued rows.

CREATE INDEX idx_tasks_queued_nodeps ON tasks (run_type, available_at)
    WHERE status = 'Queued' AND dependant_on IS NULL;

CREATE INDEX idx_tasks_queued_deps ON tasks (run_type, available_at)
    WHERE status = 'Queued' AND dependant_on IS NOT NULL;
