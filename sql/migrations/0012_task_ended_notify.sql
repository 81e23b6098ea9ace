-- 0012_task_ended_notify.sql: a NOTIFY when a task ends, and an index for measured boot times
-- (issue 17: `orchestrator submit --wait` and `orchestrator explain`).
--
--   * trg_tasks_notify_ended: when a task's status changes to Complete, Failed or Cancelled,
--     pg_notify('orchestrator_task_ended', <task id>) -- delivered at commit, one per row. It is
--     only a wake-up: `submit --wait` LISTENs so that it reacts at once, and polls every 2 s
--     whatever happens, so behind a transaction pooler (where LISTEN does not work) or when a
--     notification is lost it is only slower, never wrong. Existing notifications
--     (orchestrator_wakeup, on INSERT) are unchanged. A retry (In Progress -> Queued) and a
--     claim fire nothing.
--   * idx_workers_promoted: a pool's most recent promotions (created_at -> promoted_at is the
--     boot time `explain` measures), without scanning every ended worker row.

CREATE FUNCTION notify_task_ended() RETURNS trigger
LANGUAGE plpgsql
SET search_path = public, pg_temp
AS $$
BEGIN
    PERFORM pg_notify('orchestrator_task_ended', NEW.id::text);
    RETURN NULL;
END;
$$;

REVOKE ALL ON FUNCTION notify_task_ended() FROM PUBLIC;

CREATE TRIGGER trg_tasks_notify_ended AFTER UPDATE OF status ON tasks
    FOR EACH ROW
    WHEN (OLD.status IS DISTINCT FROM NEW.status
          AND NEW.status IN ('Complete', 'Failed', 'Cancelled'))
    EXECUTE FUNCTION notify_task_ended();

CREATE INDEX idx_workers_promoted ON workers (pool, promoted_at DESC)
    WHERE promoted_at IS NOT NULL;
