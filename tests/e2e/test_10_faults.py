"""Fault injection: the fleet stays safe while RunPod, the database or the orchestrator itself
misbehave (SPEC 7, 8; issue 5).

Every scenario drives cycles through a fault, clears it, lets the system recover, and then checks
the four invariants with e2e_lib.check_invariants (printed as `invariants[...]: ...`):
(a) nothing leaked, (b) nothing lost, (c) no task held by two workers, (d) never more pods than
MAX_ACTIVE_GPUS at the fake. Each test has its own database (with the e2e_task_holds log) and its
own fake RunPod booting fake workers.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import psycopg2

import e2e_lib
from e2e_lib import SafetyTestCase, wait_until

MAX = 3

FAST = {
    "MIN_ACTIVE_GPUS": "0",
    "MAX_ACTIVE_GPUS": str(MAX),
    "TASKS_PER_GPU_THRESHOLD": "1",
    "GPU_IDLE_TIMEOUT_SEC": "4",
    "WORKER_GRACE_PERIOD_SEC": "1",
    "SPAWNING_TIMEOUT_SEC": "20",
    "SPAWN_POD_ID_GRACE_SEC": "8",
    "POD_NOT_FOUND_GRACE_SEC": "5",
    "RECONCILE_INTERVAL_SEC": "1",
    "ORPHAN_POD_GRACE_SEC": "3",
    "RUNPOD_MAX_RETRIES": "1",
    "RUNPOD_REQUEST_TIMEOUT_SEC": "5",
}


def rule(status=None, method="*", path="/v2/pods*", count=1, **kw):
    r = {"method": method, "path": path, "count": count}
    if status is not None:
        r["status"] = status
    r.update(kw)
    return r


class TestFaults(SafetyTestCase):

    def setUp(self):
        super().setUp()
        self.config.update(FAST)

    def answered(self, status):
        return [r for r in self.fake.api_requests() if r["status"] == status]

    def one_pod_per_name(self):
        names = {}
        for p in self.fake.pods():
            names.setdefault(p["name"], []).append(p["id"])
        return {n: ids for n, ids in names.items() if len(ids) > 1}

    # -- RunPod API faults ----------------------------------------------------------------------

    def test_rate_limit_storm_with_retry_after(self):
        fake = self.start_fake()
        self.work(4)
        fake.set_faults(rules=[rule(429, count=-1, retry_after=1)])
        t0 = time.monotonic()
        # Exit 5 when the pod list was refused, 0 or 6 otherwise.
        storm = [self.cycle(ok_codes=(0, 5, 6)) for _ in range(3)]
        self.assertEqual(fake.stats()["pods_alive"], 0, "nothing gets through a 429 storm")
        for r in storm:
            self.assertTrue(r.summary["errors"], r.describe())
        # Retry-After was honoured: the 429'd list waited ~1 s before its one retry, and (issue
        # 16) no create was sent into the storm: the spawns wait for the quota, and a cycle
        # within a Retry-After makes no call that would only be answered 429 again.
        self.assertGreaterEqual(time.monotonic() - t0, 1.0)
        self.assertGreaterEqual(len(self.answered(429)), 2)
        self.assertEqual(self.creates(), [], "a create was sent into a 429 storm")
        self.assertGreater(storm[0].action("spawns_deferred"), 0, storm[0].describe())
        self.invariants("429 storm")
        fake.set_faults(rules=[])
        self.settle()
        self.invariants("429 storm, recovered")

    def test_server_error_burst(self):
        fake = self.start_fake()
        self.work(4)
        fake.set_faults(rules=[rule(503, count=10)])
        for _ in range(3):
            self.cycle(ok_codes=(0, 6))
        self.assertGreater(len(self.answered(503)), 0)
        self.assertEqual(self.one_pod_per_name(), {})
        self.invariants("5xx burst")
        fake.set_faults(rules=[])
        self.settle()
        self.assertEqual(self.one_pod_per_name(), {})
        self.invariants("5xx burst, recovered")

    def test_client_timeouts(self):
        """Answers slower than RUNPOD_REQUEST_TIMEOUT_SEC. A timed-out create still happens at
        the fake (as it may at RunPod) after the client has given up and looked the name up."""
        self.config.update(RUNPOD_REQUEST_TIMEOUT_SEC="1")
        fake = self.start_fake()
        self.work(3)
        fake.set_faults(rules=[rule(method="*", delay_sec=2, count=3)])
        for _ in range(2):
            self.cycle(ok_codes=(0, 4, 5, 6))
        time.sleep(2.2)  # the delayed answers finish at the fake
        dups = self.one_pod_per_name()
        print_note("timeouts: pods sharing a name after the slow creates: %d" % len(dups))
        fake.set_faults(rules=[])
        after = self.settle(timeout=45)
        print_note("timeouts: creates with an unknown outcome kept spawning: %d, pods adopted "
                   "by name: %d" % (len(self.all_events("pod.create_unknown")),
                                    self.total_action("pods_adopted", after)))
        self.assertEqual(self.one_pod_per_name(), {}, "a second pod with a worker's name "
                         "survived (it costs money and nobody owns it)")
        self.invariants("client timeouts, recovered")

    def test_create_answers_5xx_but_creates_the_pod(self):
        fake = self.start_fake()
        self.work(3)
        fake.set_faults(rules=[rule(500, method="POST", path="/v2/pods", count=3,
                                    create_anyway=True)])
        res = self.cycle(ok_codes=(0, 6))
        found = self.all_events("runpod.create_found_existing", [res])
        self.assertGreaterEqual(len(found), 1, res.describe())
        self.assertEqual(self.one_pod_per_name(), {}, "one name, one pod")
        for w in self.db.workers():
            self.assertTrue(w["runpod_id"], "the found pod's id is recorded: %s" % w)
        self.invariants("create 5xx but created")
        self.settle()
        self.invariants("create 5xx but created, recovered")

    def test_not_found_right_after_create(self):
        fake = self.start_fake()
        fake.set_faults(not_found_after_create_sec=4)
        ids = self.work(3, duration_sec=1)
        self.settle()
        failed = [e for e in self.all_events("worker.failed")]
        self.assertEqual(failed, [], "a 404 right after create failed a worker")
        self.assertEqual({self.db.task(t)["attempts"] for t in ids}, {0})
        self.invariants("404 after create")

    def test_credential_balance_and_retired_api_errors(self):
        """401 (exit 5), 402 (spawn fails, exit 6), 410 (exit 5): no pod is created, nothing
        leaks, and once the fault clears the work gets done."""
        fake = self.start_fake()
        self.work(3)
        for status, method, code in ((401, "*", 5), (402, "POST", 6), (410, "*", 5)):
            fake.set_faults(rules=[rule(status, method=method, count=-1)])
            for _ in range(2):
                r = self.cycle(ok_codes=(code,))
                self.assertEqual(r.action("workers_spawned"), 0, r.describe())
            self.assertEqual(fake.stats()["creates"], 0, "HTTP %d: a pod was created" % status)
            self.invariants("HTTP %d" % status)
            fake.set_faults(rules=[])
        failures = self.db.query("SELECT metadata->>'error_reason' AS r, end_kind FROM workers "
                                 "WHERE status IN ('error', 'terminated')")
        self.assertTrue(failures and all(f["end_kind"] == "unexpected" for f in failures))
        self.settle()
        self.invariants("401/402/410, recovered")

    def test_failing_pod_list_decides_nothing_from_pods(self):
        fake = self.start_fake()
        ids = self.work(3, duration_sec=3)
        self.run_cycles_until(lambda: self.db.count_by_status("tasks").get("In Progress") == 3,
                              timeout=20, what="three tasks running")
        fake.set_faults(rules=[rule(500, method="GET", path="/v2/pods", count=-1)])
        during = self.run_cycles_for(3, ok_codes=(0, 5, 6))
        for r in during:
            self.assertEqual(r.action("workers_failed"), 0, r.describe())
            self.assertFalse(r.status("reconciled"), r.describe())
        # A cycle that needed the pods and could not read them says so (issue 12 review): exit 5
        # and "pod list failed" (a cycle that needed no pods is not blind).
        blind = [r for r in during if any("pod list failed" in e for e in r.summary["errors"])]
        self.assertTrue(blind, "no cycle tried the failing list")
        self.assertEqual({r.rc for r in blind}, {5})
        journal = self.db.query("SELECT snapshot->>'pods_listed' AS listed FROM "
                                "orchestrator_cycles ORDER BY id DESC LIMIT %s", (len(during),))
        self.assertEqual({j["listed"] for j in journal}, {"false"})
        self.invariants("pod list failing")
        fake.set_faults(rules=[])
        self.settle()
        self.assertEqual({self.db.task(t)["attempts"] for t in ids}, {0}, "nothing wrongly failed")
        self.invariants("pod list failing, recovered")

    def test_pods_killed_from_outside(self):
        fake = self.start_fake()
        ids = self.work(3, duration_sec=6)
        self.run_cycles_until(lambda: self.db.count_by_status("tasks").get("In Progress") == 3,
                              timeout=20, what="three tasks running")
        holders = {t["worker_id"]: t["id"] for t in self.db.tasks()}
        victims = list(holders)[:3]
        for wid, to in zip(victims, ("EXITED", "ERROR", "gone")):
            status, _ = fake.http("POST", "/_fake/pods/%s/kill" % self.pod_of(wid), {"to": to})
            self.assertEqual(status, 200)
        self.settle(timeout=45)
        reasons = {}
        for wid in victims:
            w = self.db.worker(wid)
            self.assertEqual(w["status"], "terminated")
            self.assertEqual(w["end_kind"], "unexpected")
            reasons[wid] = w["metadata"].get("error_reason")
        print_note("killed from outside: %s" % sorted(reasons.values()))
        for wid in victims:
            t = self.db.task(holders[wid])
            self.assertEqual((t["status"], t["attempts"]), ("Complete", 1), t)
        self.assertGreaterEqual(fake.stats()["creates"], 6, "replacements were spawned")
        self.invariants("pods killed from outside")

    # -- database faults ------------------------------------------------------------------------

    def test_database_connection_killed_mid_cycle(self):
        fake = self.start_fake()
        fake.set_faults(create_latency_ms=1500)
        self.work(3)
        h = self.spawn_binary("single")
        self.assertTrue(wait_until(lambda: self.db.scalar(
            "SELECT count(*) FROM workers WHERE status = 'spawning' AND runpod_id IS NULL") == MAX,
            timeout=10), "rows registered before the creates")
        time.sleep(0.3)
        killed = self.db.scalar("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                "WHERE datname = current_database() "
                                "AND application_name = 'orchestrator'")
        res = self.finish_binary(h)
        print_note("db killed mid-cycle: backends terminated=%s, cycle exit=%s" % (killed, res.rc))
        self.assertEqual(killed, 1)
        self.assertEqual(res.rc, 4, res.describe())
        fake.set_faults(create_latency_ms=0)
        self.assertTrue(wait_until(lambda: fake.stats()["creates"] == MAX, timeout=5))
        after = self.settle()
        self.assertEqual(self.total_action("pods_adopted", after), MAX,
                         "the next cycle adopts the pods by name")
        self.invariants("db connection killed mid-cycle")

    def test_database_restarted_between_cycles(self):
        """A private server owned by this test (scripts/pg-local.sh), restarted between cycles
        while the fleet works; the fake workers reconnect."""
        srv = e2e_lib_private_server(self)
        self.db = srv.db
        e2e_lib.install_hold_audit(self.db)
        fake = self.start_fake()
        ids = self.work(4, duration_sec=1.5)
        self.run_cycles_until(lambda: self.db.count_by_status("tasks").get("In Progress", 0) >= 2,
                              timeout=20, what="tasks running")
        srv.restart()
        self.db.reconnect()
        self.settle(timeout=45)
        self.assertEqual({self.db.task(t)["status"] for t in ids}, {"Complete"})
        self.invariants("database restarted between cycles")

    # -- the orchestrator killed between create and record ---------------------------------------

    def _crash_round(self, n, use_hook):
        db = e2e_lib.Database("%s_k%d" % (self.db_name, n))
        self.addCleanup(db.drop)
        self.db = db
        e2e_lib.install_hold_audit(db)
        fake = self.start_fake()
        fake.set_faults(create_latency_ms=1200)
        self.work(2)
        if use_hook:
            res = self.run_binary("single", env_overrides={"ORCH_TEST_CRASH_AT": "after_create"})
        else:
            h = self.spawn_binary("single")
            self.assertTrue(wait_until(lambda: db.scalar(
                "SELECT count(*) FROM workers WHERE status = 'spawning'") == 2, timeout=10))
            time.sleep(0.4)
            h[0].send_signal(signal.SIGKILL)
            res = self.finish_binary(h)
        self.assertEqual(res.rc, -signal.SIGKILL, res.describe())
        self.assertTrue(wait_until(lambda: fake.stats()["creates"] == 2, timeout=5))
        rows = db.workers()
        self.assertEqual([(w["status"], w["runpod_id"]) for w in rows], [("spawning", None)] * 2)
        fake.set_faults(create_latency_ms=0)
        after = self.settle()
        adopted = self.total_action("pods_adopted", after)
        print_note("SIGKILL between create and record (%s): pods adopted=%d"
                   % ("ORCH_TEST_CRASH_AT=after_create" if use_hook else "external SIGKILL",
                      adopted))
        self.assertEqual(adopted, 2)
        self.invariants("SIGKILL after create (%s)" % ("hook" if use_hook else "external"))
        fake.stop()
        self.fake = None

    def test_sigkill_between_create_and_record(self):
        self._crash_round(0, use_hook=False)
        if e2e_lib.binary_has_test_hooks():
            self._crash_round(1, use_hook=True)
        else:
            print_note("binary built without ORCH_TEST_HOOKS: the crash-point round is the "
                       "external SIGKILL only")

    # -- two orchestrators racing ---------------------------------------------------------------

    def test_two_orchestrators_racing(self):
        fake = self.start_fake()
        fake.set_faults(create_latency_ms=150)
        locked = 0
        for rnd in range(20):
            if rnd % 3 == 0:
                self.work(2, duration_sec=0.5)
            a, b = self.spawn_binary("single"), self.spawn_binary("single")
            for r in (self.finish_binary(a), self.finish_binary(b)):
                self.assertIn(r.rc, (0, 6), r.describe())
                locked += 1 if r.skipped_locked else 0
            self.assertLessEqual(fake.stats()["max_pods_alive"], MAX, "round %d" % rnd)
            time.sleep(0.1)
        print_note("racing: 20 rounds, %d cycles skipped on the lock" % locked)
        self.assertGreater(locked, 0, "the race was never exercised")
        self.settle()
        self.invariants("two orchestrators racing")


# ------------------------------------------------------------------------------------------------


def print_note(msg):
    e2e_lib.note("faults: " + msg)


class PrivateServer:
    """A PostgreSQL server owned by one test (scripts/pg-local.sh in a temp dir), so it may be
    restarted; one database migrated with `$ORCH_BINARY migrate`."""

    def __init__(self, tc):
        self.tc = tc
        self.dir = tempfile.mkdtemp(prefix="orch-e2e-pg-")
        os.chmod(self.dir, 0o755)
        self.script = os.path.join(e2e_lib.REPO, "scripts", "pg-local.sh")
        out = subprocess.run([self.script, "start", self.dir], capture_output=True, text=True,
                             timeout=120)
        if out.returncode != 0:
            raise RuntimeError("pg-local start failed: %s" % out.stderr)
        self.sock = os.path.join(self.dir, "sock")
        url = "postgresql:///postgres?host=%s&port=5432&user=postgres" % self.sock
        c = psycopg2.connect(url)
        c.autocommit = True
        c.cursor().execute("CREATE DATABASE e2e_restart")
        c.close()
        self.url = "postgresql:///e2e_restart?host=%s&port=5432&user=postgres" % self.sock
        env = {"PATH": os.environ.get("PATH", ""), "DATABASE_URL": self.url}
        m = subprocess.run([e2e_lib.BINARY, "migrate"], env=env, capture_output=True, text=True,
                           timeout=60)
        if m.returncode != 0:
            raise RuntimeError("migrate failed: %s" % m.stderr)
        self.db = _UrlDatabase(self.url)

    def restart(self):
        subprocess.run([self.script, "stop", self.dir], check=True, timeout=60)
        time.sleep(0.5)
        subprocess.run([self.script, "start", self.dir], check=True, timeout=60,
                       capture_output=True)

    def stop(self):
        try:
            self.db.conn.close()
        except Exception:  # noqa: BLE001
            pass
        subprocess.run([self.script, "stop", self.dir], timeout=60)
        shutil.rmtree(self.dir, ignore_errors=True)


class _UrlDatabase(e2e_lib.Database):
    """Database helpers on an existing database named by a URL (no template copy)."""

    def __init__(self, url):  # noqa: D401 - deliberately not calling the parent
        self.name = "e2e_restart"
        self.url = url
        self.reconnect()

    def reconnect(self):
        deadline = time.monotonic() + 30
        while True:
            try:
                self.conn = psycopg2.connect(self.url, application_name="e2e_test")
                self.conn.autocommit = True
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def drop(self):
        pass


def e2e_lib_private_server(tc):
    srv = PrivateServer(tc)
    tc.addCleanup(srv.stop)
    return srv


if __name__ == "__main__":
    unittest.main()
