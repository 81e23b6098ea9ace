-- 0005_cycle_lease.sql: the cluster-wide cycle lease (structure_docs/safety.md, "One cycle at a
-- time"), replacing the session advisory lock of SPEC 6 step 0.
--
-- A session-level pg_try_advisory_lock belongs to a server session. Behind a transaction-pooling
-- pooler (PgBouncer pool_mode=transaction, Supabase's pooler on port 6543) consecutive statements
-- of one client run on whatever server connection is free, so the lock is taken on one session,
-- "re-taken" by another client that lands on the same session (advisory locks are re-entrant),
-- and the unlock runs on a third session and releases nothing: two cycles act at once, or the
-- lock stays held by a pooled session forever and every cycle skips. A row is the same for
-- every client however it is connected.
--
-- One row per lease name ('cycle'). Each statement that touches it is a transaction of its own
-- and compares expires_at with the database's now(), never a client clock:
--   take     holder = my token, fence = fence + 1, expires_at = now() + TTL
--            WHERE holder IS NULL OR expires_at <= now() OR holder = my token
--   renew    expires_at = now() + TTL WHERE holder = me AND fence = mine AND expires_at > now()
--   check    held while holder = me, fence = mine and expires_at is further away than a margin
--   release  holder = NULL, expires_at = now() WHERE holder = me AND fence = mine
-- fence counts every acquisition: a cycle whose fence is no longer the row's lost the lease
-- (taken over after it expired) and stops acting.

CREATE TABLE orchestrator_lease (
    name        text PRIMARY KEY,
    holder      text,                 -- random token of the holding process; NULL = free
    holder_info text,                 -- instance id, command and pid, for operators
    fence       bigint NOT NULL DEFAULT 0,
    acquired_at timestamptz,
    renewed_at  timestamptz,
    expires_at  timestamptz NOT NULL DEFAULT now(),  -- free until taken
    released_at timestamptz
);

INSERT INTO orchestrator_lease (name) VALUES ('cycle');

-- The workers' role never touches it, like every other orchestrator table (0003).
REVOKE ALL ON TABLE orchestrator_lease FROM PUBLIC, orchestrator_worker;
