-- 0015_adaptive_measures.sql: indexes for the measured inputs of the adaptive policies (issue 15,
-- structure_docs/simulation.md), read by the snapshot in one statement when one of them is on:
--   * arrivals per run type within a window and their recent peak (tasks by run_type, created_at);
--   * the median duration of each run type's last 50 completed tasks (Complete only, newest
--     first: the partial index never holds Queued, In Progress or Failed rows);
--   * the median cold start (the pod's last (re)start -> promoted_at) of each pool's last 20
--     promoted workers.
-- Each lookup reads a bounded slice of an index, whatever the size of the history.

CREATE INDEX idx_tasks_run_type_created ON tasks (run_type, created_at);
-- Only timed rows (both timestamps set), as the measures statement reads: the slice of a run
-- type is then its last 50 timed completions however many untimed ones it has. The statement
-- orders by (run_type DESC, generation_processed_at DESC) so that even a run type with no
-- completed task is an empty slice of this index, not a walk of 0010's global
-- idx_tasks_complete_processed to its end.
CREATE INDEX idx_tasks_run_type_complete_processed ON tasks (run_type, generation_processed_at)
    WHERE status = 'Complete' AND generation_started_at IS NOT NULL
      AND generation_processed_at IS NOT NULL;
-- The cold starts read idx_workers_promoted (pool, promoted_at DESC), which 0012 made for
-- `explain`'s boot times: the same slice, so no second index.
