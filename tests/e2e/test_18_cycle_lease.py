"""Scenario 15: one controller at a time, through a real PgBouncer in pool_mode=transaction and
directly against PostgreSQL, with the same code path (issue 12 item 6; structure_docs/safety.md).

Every test runs twice: TestCycleLeaseThroughPgBouncer points DATABASE_URL at a PgBouncer
(tests/e2e/pgbouncer.py: transaction pooling, two server connections per database, so clients
share server sessions) and TestCycleLeaseDirect at the server itself.

  1. many concurrent `spawn --count 1` and `single` runs never act at the same time: the create
     requests of each process (tagged through WORKER_ENV_E2E_RUN) fall in windows that do not
     overlap, the lease log shows holds that never overlap, exactly MAX_ACTIVE_GPUS pods are
     created, never more alive, and no advisory lock is left behind in any server session;
  2. a cycle killed with SIGKILL while it holds the lease blocks the others only until the
     lease's expires_at (at most CYCLE_LEASE_TTL_SEC after its last renewal); then the next
     cycle takes it and acts (adopts the killed cycle's pods, creates none twice);
  3. a cycle whose lease is stolen mid-cycle (while a DELETE is in flight) makes no further
     RunPod call, saves no state, leaves the thief's lease alone and exits 4 (lease_lost);
  4. a cycle paused (SIGSTOP) past its TTL while another takes over and acts resumes fenced:
     no further RunPod call, exit 4;
  5. concurrent `migrate` runs apply every migration exactly once and leave no lock held.
Each prints its figures and the fleet invariants (nothing leaked, never more than MAX pods)."""

import json
import os
import signal
import time
import unittest

import psycopg2

import e2e_lib
from e2e_lib import SafetyTestCase, note, wait_until
from pgbouncer import PgBouncer

TTL = 3  # CYCLE_LEASE_TTL_SEC: renewed every 0.75 s, fence margin 0.75 s
MAX = 4
LATENCY_MS = 400
SPAWNS = 6
SINGLES = 4

CONFIG = {
    "MIN_ACTIVE_GPUS": "0",
    "MAX_ACTIVE_GPUS": str(MAX),
    "TASKS_PER_GPU_THRESHOLD": "1",
    "CYCLE_LEASE_TTL_SEC": str(TTL),
    "SPAWNING_TIMEOUT_SEC": "300",
    "SPAWN_POD_ID_GRACE_SEC": "300",
    "POD_NOT_FOUND_GRACE_SEC": "300",
    "GPU_IDLE_TIMEOUT_SEC": "300",
    "RECONCILE_INTERVAL_SEC": "1",
    "ORPHAN_POD_GRACE_SEC": "300",
}

# A test-only log of the lease row's life, kept by a trigger in the test's own database: every
# take (new fence), renewal (same fence, later expires_at) and release, on the database clock.
LEASE_AUDIT_SQL = """
CREATE TABLE e2e_lease_log (
    seq bigserial PRIMARY KEY, event text NOT NULL, fence bigint NOT NULL, holder text,
    holder_info text, expires_at timestamptz, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE FUNCTION e2e_audit_lease() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.fence IS DISTINCT FROM OLD.fence THEN
        INSERT INTO e2e_lease_log (event, fence, holder, holder_info, expires_at)
        VALUES ('take', NEW.fence, NEW.holder, NEW.holder_info, NEW.expires_at);
    ELSIF NEW.holder IS NULL AND OLD.holder IS NOT NULL THEN
        INSERT INTO e2e_lease_log (event, fence, holder, holder_info, expires_at)
        VALUES ('release', OLD.fence, OLD.holder, OLD.holder_info, NEW.expires_at);
    ELSIF NEW.expires_at IS DISTINCT FROM OLD.expires_at THEN
        INSERT INTO e2e_lease_log (event, fence, holder, holder_info, expires_at)
        VALUES ('renew', NEW.fence, NEW.holder, NEW.holder_info, NEW.expires_at);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER e2e_lease_audit AFTER UPDATE ON orchestrator_lease
    FOR EACH ROW EXECUTE FUNCTION e2e_audit_lease();
"""


def tag_of(req):
    env = (req["body"] or {}).get("env") or {}
    return env.get("E2E_RUN", "?")


class LeaseScenarios:
    """The scenarios; a subclass says how the orchestrator reaches the database."""

    POOLED = False

    def setUp(self):
        super().setUp()
        self.config.update(CONFIG)
        self.pooler = None
        if self.POOLED:
            self.pooler = PgBouncer(self.log_dir)
            self.addCleanup(self.pooler.stop)
        self.mode = "pgbouncer" if self.POOLED else "direct"
        self.has_lease_table = self.db.scalar(
            "SELECT to_regclass('orchestrator_lease') IS NOT NULL")
        if self.has_lease_table:
            self.db.execute(LEASE_AUDIT_SQL)

    def env(self, **overrides):
        if self.pooler is not None:
            overrides.setdefault("DATABASE_URL", self.pooler.url(self.db.name))
        return super().env(**overrides)

    # -- helpers -------------------------------------------------------------------------------

    def lease_log(self):
        self.assertTrue(self.has_lease_table, "no orchestrator_lease table: the binary under "
                        "test predates 0005_cycle_lease")
        return self.db.query("SELECT seq, event, fence, holder, holder_info, expires_at, at "
                             "FROM e2e_lease_log ORDER BY seq")

    def lease_row(self):
        return self.db.one("SELECT holder, holder_info, fence, expires_at, now() AS now "
                           "FROM orchestrator_lease WHERE name = 'cycle'")

    def holds(self):
        """One entry per fence: taken at, ended at (release, or the last expires_at)."""
        out = {}
        for r in self.lease_log():
            h = out.setdefault(r["fence"], {"fence": r["fence"], "take": None, "end": None,
                                            "info": r["holder_info"], "released": False})
            if r["event"] == "take":
                h["take"], h["end"] = r["at"], r["expires_at"]
            elif r["event"] == "renew":
                h["end"] = r["expires_at"]
            else:
                h["end"], h["released"] = r["at"], True
        return [out[f] for f in sorted(out)]

    def assert_holds_disjoint(self, label):
        holds = self.holds()
        for a, b in zip(holds, holds[1:]):
            self.assertIsNotNone(a["take"], "%s: fence %s has no take" % (label, a["fence"]))
            self.assertEqual(b["fence"], a["fence"] + 1, "%s: fences skip" % label)
            self.assertGreaterEqual(b["take"], a["end"], "%s: fence %d taken at %s before "
                                    "fence %d ended at %s" % (label, b["fence"], b["take"],
                                                              a["fence"], a["end"]))
        return holds

    def advisory_locks(self):
        return self.db.scalar("SELECT count(*) FROM pg_locks l JOIN pg_database d "
                              "ON d.oid = l.database WHERE l.locktype = 'advisory' "
                              "AND d.datname = current_database()")

    def error_workers(self, fake, n):
        """n workers in `error` whose pods exist (a cycle terminates each: one DELETE apiece)."""
        ids = []
        for i in range(n):
            wid = "gpu-20260101_000000-%08x" % (0xe0 + i)
            pod = fake.inject_pod(wid, env={"WORKER_ID": wid}, age_sec=600)["id"]
            self.db.execute("INSERT INTO workers (id, status, runpod_id, created_at) "
                            "VALUES (%s, 'spawning', %s, now() - interval '10 minutes')",
                            (wid, pod))
            self.db.execute("UPDATE workers SET status = 'active', promoted_at = now(), "
                            "last_heartbeat = now() WHERE id = %s", (wid,))
            self.db.execute("UPDATE workers SET status = 'error' WHERE id = %s", (wid,))
            ids.append(wid)
        return ids

    def inflight(self, method):
        """API requests of this method that arrived at the fake and are not answered yet."""
        status, body = self.fake.http("GET", "/_fake/inflight")
        self.assertEqual(status, 200, body)
        return [r for r in body["requests"] if r["method"] == method]

    def api_since(self, t):
        """API requests that arrived after time t (time.time() of this host)."""
        return [r for r in self.fake.api_requests() if r["time"] > t]

    # -- 1. concurrent cycles ------------------------------------------------------------------

    def test_concurrent_cycles_never_act_at_once(self):
        fake = self.start_fake(boot_worker=False)
        fake.set_faults(create_latency_ms=LATENCY_MS)
        for i in range(2):
            self.db.insert_task("generate", {"n": i})
        handles = []
        for i in range(max(SPAWNS, SINGLES)):
            if i < SPAWNS:
                label = "spawn-%d" % i
                handles.append((label, self.spawn_binary(
                    "spawn", "--count", "1", env_overrides={"WORKER_ENV_E2E_RUN": label})))
            if i < SINGLES:
                label = "single-%d" % i
                handles.append((label, self.spawn_binary(
                    "single", env_overrides={"WORKER_ENV_E2E_RUN": label})))
        results = {label: self.finish_binary(h, timeout=120) for label, h in handles}
        for label, r in sorted(results.items()):
            self.assertEqual(r.rc, 0, "%s: exit %s\n%s" % (label, r.rc, r.stderr[-3000:]))
            self.assertIsNotNone(r.summary, "%s: no summary" % label)

        # Exactly MAX pods, each name once, each recorded on its row; never more alive.
        posts = self.creates()
        names = [p["body"]["name"] for p in posts]
        self.assertEqual(len(names), len(set(names)), "a pod name was created twice")
        self.assertEqual(len(names), MAX, "creates: %s" % sorted(names))
        self.assertEqual(sorted(names), sorted(w["id"] for w in self.db.workers()))
        self.assertEqual(sum(r.action("workers_spawned") for r in results.values()), MAX)
        stats = fake.stats()
        self.assertLessEqual(stats["max_pods_alive"], MAX)

        # The processes' create windows never overlap: a process's creates all return (the
        # fake holds each LATENCY_MS) before another process's first create arrives.
        windows = {}
        for p in posts:
            w = windows.setdefault(tag_of(p), [p["time"], p["time"]])
            w[0], w[1] = min(w[0], p["time"]), max(w[1], p["time"])
        order = sorted(windows.items(), key=lambda kv: kv[1][0])
        for (la, wa), (lb, wb) in zip(order, order[1:]):
            self.assertGreaterEqual(wb[0], wa[1] + LATENCY_MS / 1000.0,
                                    "%s created while %s was still creating: %s / %s"
                                    % (lb, la, wa, wb))
        self.assertGreaterEqual(len(windows), 2, "only one process created pods: %s" % windows)

        skipped = sorted(label for label, r in results.items() if r.skipped_locked)
        acted = sorted(label for label, r in results.items() if not r.skipped_locked)
        self.assertTrue(skipped, "no single ever found the lease held; the race was not "
                        "exercised")
        for label in skipped:
            self.assertTrue(label.startswith("single"), "%s skipped (operator commands wait)"
                            % label)
            ev = results[label].events_named("cycle.skipped_locked")[0]
            self.assertIn("pid=", ev.get("holder", ""), ev)
            self.assertEqual(results[label].action("workers_spawned"), 0)

        # The lease log: one take per acting process, holds that never overlap, all released.
        holds = self.assert_holds_disjoint("concurrent")
        self.assertEqual(len(holds), len(acted), "takes %s vs acting processes %s"
                         % ([h["info"] for h in holds], acted))
        self.assertTrue(all(h["released"] for h in holds), holds)
        self.assertEqual(self.lease_row()["holder"], None, "the lease is free afterwards")
        self.assertEqual(self.advisory_locks(), 0, "an advisory lock is still held")
        sessions = "direct connections"
        if self.pooler is not None:
            # The clients really shared server sessions: at most default_pool_size of them.
            servers = [x for x in self.pooler.show("SERVERS") if x["database"] == self.db.name]
            self.assertLessEqual(len(servers), 2, servers)
            sessions = "%d clients on %d pooled server sessions" % (len(results), len(servers))

        note("lease: [%s] %d processes (%s): %d acted (%d lease holds, disjoint), %d skipped "
             "(cycle.skipped_locked); %d processes created pods, in disjoint windows; "
             "creates=%d max_pods_alive=%d<=MAX %d; advisory locks left=0"
             % (self.mode, len(results), sessions, len(acted), len(holds), len(skipped),
                len(windows), len(posts), stats["max_pods_alive"], MAX))
        self.invariants("lease concurrent %s" % self.mode, max_active=MAX)

    # -- 2. a killed holder ----------------------------------------------------------------------

    def test_killed_holder_blocks_only_until_ttl(self):
        fake = self.start_fake(boot_worker=False)
        # The victim's creates are held 2 s by the fake, which then creates the pods anyway.
        fake.set_faults(rules=[{"method": "POST", "path": "/v2/pods", "count": -1,
                                "delay_sec": 2}])
        for i in range(2):
            self.db.insert_task("generate", {"n": i})
        victim = self.spawn_binary("single")
        self.assertTrue(wait_until(lambda: len(self.inflight("POST")) >= 2, 30),
                        "the victim never sent its creates")
        held = self.lease_row()
        pid = victim[0].pid
        self.assertIn("pid=%d" % pid, held["holder_info"] or "", "the victim holds the lease")
        os.kill(pid, signal.SIGKILL)
        killed_at = self.db.now()
        self.finish_binary(victim)
        fence = held["fence"]

        blocked, acted = [], None
        deadline = time.monotonic() + 4 * TTL + 10
        while time.monotonic() < deadline:
            res = self.cycle()
            if not res.skipped_locked:
                acted = res
                break
            blocked.append(res)
            time.sleep(0.2)
        self.assertIsNotNone(acted, "no cycle took over after the kill")
        self.assertTrue(blocked, "nothing was blocked by the killed cycle's lease")
        holds = self.assert_holds_disjoint("killed")
        killed = next(h for h in holds if h["fence"] == fence)
        after = next(h for h in holds if h["fence"] == fence + 1)
        self.assertFalse(killed["released"], "a killed process released nothing")
        # Blocked only until the expiry, and that at most a TTL after the kill.
        blocked_sec = (after["take"] - killed_at).total_seconds()
        self.assertLessEqual((killed["end"] - killed_at).total_seconds(), TTL + 0.5)
        self.assertGreaterEqual(after["take"], killed["end"])
        self.assertLessEqual(blocked_sec, TTL + 2.5, "the next cycle waited %.1f s" % blocked_sec)
        self.assertEqual(acted.rc, 0, acted.describe())
        # The taker counted the killed cycle's spawning rows and adopted its pods by name.
        self.assertEqual(len(self.creates()), 2, "no pod created twice or beyond the plan")
        self.assertEqual(acted.action("workers_spawned"), 0, acted.describe())
        fake.set_faults(rules=[])
        self.run_cycles_until(
            lambda: self.db.scalar("SELECT count(*) FROM workers WHERE runpod_id IS NULL") == 0,
            timeout=20, what="the killed cycle's pods are adopted")
        adopted = self.total_action("pods_adopted")
        self.assertEqual(adopted, 2)
        note("lease: [%s] SIGKILLed holder (fence %d): %d cycles skipped, the next took fence "
             "%d %.1f s after the kill (TTL %d s), adopted %d pods, creates=%d"
             % (self.mode, fence, len(blocked), fence + 1, blocked_sec, TTL, adopted,
                len(self.creates())))
        self.invariants("lease killed holder %s" % self.mode, max_active=MAX)

    # -- 3. stolen mid-cycle ---------------------------------------------------------------------

    def test_stolen_lease_fences_the_cycle(self):
        fake = self.start_fake(boot_worker=False)
        ids = self.error_workers(fake, 3)
        for i in range(2):
            self.db.insert_task("generate", {"n": i})
        fake.set_faults(rules=[{"method": "DELETE", "path": "/v2/pods/*", "count": 1,
                                "delay_sec": 1.5}])
        h = self.spawn_binary("single")
        self.assertTrue(wait_until(lambda: self.inflight("DELETE"), 30), "no DELETE arrived")
        stolen = self.db.scalar("UPDATE orchestrator_lease SET holder = 'e2e-thief', "
                                "holder_info = 'e2e thief', fence = fence + 1, "
                                "acquired_at = now(), expires_at = now() + interval '1 hour' "
                                "RETURNING fence")
        stolen_at = time.time()
        self.assertEqual(len(self.inflight("DELETE")), 1, "the steal happened mid-DELETE")
        res = self.finish_binary(h)
        self.assertEqual(res.rc, 4, res.describe() + res.stderr[-3000:])
        self.assertEqual(res.summary["result"], "lease_lost", res.describe())
        lost = res.events_named("cycle.lease_lost")
        self.assertEqual(len(lost), 1, lost)
        self.assertEqual(lost[0]["why"], "taken_over", lost[0])
        self.assertEqual(str(lost[0]["fence_now"]), str(stolen), lost[0])
        later = self.api_since(stolen_at)
        self.assertEqual(later, [], "RunPod calls after the steal: %s"
                         % [(r["method"], r["path"]) for r in later])
        self.assertEqual(len(self.fake.api_requests("DELETE")), 1)
        self.assertEqual(self.creates(), [], "no create after the steal")
        self.assertEqual(self.lease_row()["holder"], "e2e-thief", "the thief's hold stands")
        self.assertEqual(self.db.scalar("SELECT last_cycle_number FROM orchestrator_state"), 0,
                         "a fenced cycle saves no controller state")
        self.assertEqual(self.db.scalar("SELECT count(*) FROM orchestrator_cycles WHERE "
                                        "exit_status = 'lease_lost' AND exit_code = 4"), 1)
        still = self.db.scalar("SELECT count(*) FROM workers WHERE status = 'error'")
        self.assertEqual(still, 2, "the two workers after the fence were left alone")
        note("lease: [%s] lease stolen during the first DELETE: exit 4 lease_lost, RunPod calls "
             "after the steal=0, DELETEs=1 of 3 planned, creates=0, state not saved"
             % self.mode)
        # The thief leaves; the next cycles finish the job.
        self.db.execute("UPDATE orchestrator_lease SET holder = NULL, expires_at = now()")
        self.run_cycles_until(
            lambda: self.db.scalar("SELECT count(*) FROM workers WHERE status = 'error'") == 0,
            timeout=20, what="the remaining error workers are terminated", ok_codes=(0, 6))
        self.assertEqual({self.db.worker(w)["status"] for w in ids}, {"terminated"})
        self.invariants("lease stolen %s" % self.mode, max_active=MAX)

    # -- 4. paused past the TTL ------------------------------------------------------------------

    def test_paused_cycle_resumes_fenced(self):
        # The in-flight DELETE must not time out while the process is stopped: a timed-out call
        # would be retried by the RunPod client before the next fence check (a documented limit:
        # the fence is checked between actions, not between the retries of one call).
        self.config["RUNPOD_REQUEST_TIMEOUT_SEC"] = "60"
        fake = self.start_fake(boot_worker=False)
        self.error_workers(fake, 3)
        fake.set_faults(rules=[{"method": "DELETE", "path": "/v2/pods/*", "count": 1,
                                "delay_sec": 1.0}])
        h = self.spawn_binary("single")
        pid = h[0].pid
        self.assertTrue(wait_until(lambda: self.inflight("DELETE"), 30), "no DELETE arrived")
        os.kill(pid, signal.SIGSTOP)
        try:
            self.assertTrue(wait_until(
                lambda: self.db.scalar("SELECT expires_at < now() FROM orchestrator_lease"),
                TTL + 5), "the paused cycle's lease never expired")
            other = self.cycle(ok_codes=(0,))
            self.assertFalse(other.skipped_locked, other.describe())
            self.assertEqual(other.action("workers_terminated"), 3, other.describe())
            resumed_at = time.time()
        finally:
            os.kill(pid, signal.SIGCONT)
        res = self.finish_binary(h)
        self.assertEqual(res.rc, 4, res.describe() + res.stderr[-3000:])
        self.assertEqual(res.summary["result"], "lease_lost")
        lost = res.events_named("cycle.lease_lost")
        self.assertEqual(len(lost), 1, lost)
        later = self.api_since(resumed_at)
        self.assertEqual(later, [], "RunPod calls after the resume: %s"
                         % [(r["method"], r["path"]) for r in later])
        self.assert_holds_disjoint("paused")
        note("lease: [%s] holder stopped past its TTL, another cycle took over and terminated "
             "3 workers; the resumed cycle: exit 4 (%s), RunPod calls after the resume=0"
             % (self.mode, lost[0]["why"]))
        self.invariants("lease paused %s" % self.mode, max_active=MAX)

    # -- 5. migrate -------------------------------------------------------------------------------

    def test_concurrent_migrates_apply_each_once(self):
        name = "%s_mig" % self.db_name
        with e2e_lib._AdminConn() as admin:
            admin.cursor().execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)
            admin.cursor().execute('CREATE DATABASE "%s"' % name)
        self.addCleanup(self._drop, name)
        url = self.pooler.url(name) if self.pooler else e2e_lib.server_conninfo(name)
        files = sorted(f for f in os.listdir(os.path.join(e2e_lib.REPO, "sql", "migrations"))
                       if f.endswith(".sql"))
        runs = [self.spawn_binary("migrate", env_overrides={"DATABASE_URL": url})
                for _ in range(4)]
        results = [self.finish_binary(r, timeout=120) for r in runs]
        applied = 0
        for r in results:
            self.assertEqual(r.rc, 0, r.stderr[-3000:])
            applied += json.loads(r.stdout.strip().splitlines()[0])["applied"]
        self.assertEqual(applied, len(files), "applied between them")
        again = self.run_binary("migrate", env_overrides={"DATABASE_URL": url})
        self.assertEqual(again.rc, 0)
        self.assertEqual(json.loads(again.stdout.strip().splitlines()[0])["applied"], 0)
        conn = psycopg2.connect(e2e_lib.server_conninfo(name))
        try:
            cur = conn.cursor()
            cur.execute("SELECT count(*), count(DISTINCT version) FROM schema_migrations")
            self.assertEqual(cur.fetchone(), (len(files), len(files)))
            cur.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'")
            self.assertEqual(cur.fetchone()[0], 0, "an advisory lock is still held")
        finally:
            conn.close()
        note("lease: [%s] 4 concurrent migrates: exit 0 each, %d migrations applied once "
             "between them, a 5th applied 0, advisory locks left=0" % (self.mode, applied))

    def _drop(self, name):
        if self.pooler is not None:
            self.pooler.stop()
        with e2e_lib._AdminConn() as admin:
            admin.cursor().execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


class TestCycleLeaseThroughPgBouncer(LeaseScenarios, SafetyTestCase):
    POOLED = True


class TestCycleLeaseDirect(LeaseScenarios, SafetyTestCase):
    POOLED = False


if __name__ == "__main__":
    unittest.main()
