-- 0015_adaptive_measures.sql: indexes for the measured inputs of the adaptive policies (issue 15,
-- structure_docs/simulation.md), read by the snapshot in one statement when one of them is on:
--   * arrivals per run type within a window and their recent peak (tasks by run_type, created_at);
--   * the median duration of each run type's last 50 completed tasks (Complete only, newest
--     first: the partial index never holds Queued, In Progress or Failed rows);
--   * the median cold start (created_at -> promoted_at) of each pool's last 20 promoted workers.
-- Each lookup reads a bounded slice of an index, whatever the size of the history.

CREATE INDEX idx_tasks_run_type_created ON tasks (run_type, created_at);
CREATE INDEX idx_tasks_run_type_complete_processed ON tasks (run_type, generation_processed_at)
    WHERE status = 'Complete';
-- The cold starts read idx_workers_promoted (pool, promoted_at DESC), which 0012 made for
-- `explain`'s boot times: the same slice, so no second index.
