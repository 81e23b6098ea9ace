"""Fault classes found by the independent review of issue 12 (each failed before its fix).

- A hostile pod list: a foreign pod with odd fields (a 143-byte name, cost "abc", gpu.id 5,
  runtime "odd", an unreadable createdAt) next to creates answered 503 after creating. Before
  the fix one bad entry failed the whole list: the leak sweep, adoption by name and the look-up
  after an ambiguous create all went blind, and 5 cycles left 5 pods running for MAX=1.
- An ambiguous create with a lagging list, with and without client retries: the old client
  re-POSTed after one look-up ~0.3 s later (two pods with one WORKER_ID), and with
  RUNPOD_MAX_RETRIES=0 read a last 5xx as "not created" (a replacement next cycle).
- A pod of ours whose createdAt cannot be read still ages and is terminated once leaked.
- A legacy `inactive` row during shutdown-all: the illegal inactive -> terminating transition
  aborted every later action (exit 4, nothing terminated, no journal row). Now the kill switch
  stops every pod it can, reports each failure, and exits non-zero while any is still running.
- A skipped task recovery during scale-up: the blocked termination left the pod running while
  the spawns of the same cycle went ahead (one pod over MAX).

Each prints its invariants: nothing leaked, nothing lost, no double hold, never more than MAX.
"""

import json
import time
import unittest

import e2e_lib
from e2e_lib import SafetyTestCase

LONG_NAME = "gpu-" + "x" * 139  # 143 bytes

FAST = {
    "MIN_ACTIVE_GPUS": "0",
    "TASKS_PER_GPU_THRESHOLD": "1",
    "GPU_IDLE_TIMEOUT_SEC": "4",
    "WORKER_GRACE_PERIOD_SEC": "1",
    "SPAWNING_TIMEOUT_SEC": "30",
    "SPAWN_POD_ID_GRACE_SEC": "6",
    "POD_NOT_FOUND_GRACE_SEC": "5",
    "RECONCILE_INTERVAL_SEC": "1",
    "ORPHAN_POD_GRACE_SEC": "3",
    "RUNPOD_REQUEST_TIMEOUT_SEC": "5",
}


def rule(status=None, method="*", path="/v2/pods*", count=1, **kw):
    r = {"method": method, "path": path, "count": count}
    if status is not None:
        r["status"] = status
    r.update(kw)
    return r


class TestHardening(SafetyTestCase):

    def setUp(self):
        super().setUp()
        self.config.update(FAST)

    def ours(self):
        prefix = self.config.get("WORKER_ID_PREFIX", "gpu-")
        return [p for p in self.fake.pods() if e2e_lib.is_ours(prefix, p["name"])]

    def one_pod_per_name(self):
        names = {}
        for p in self.fake.pods():
            names.setdefault(p["name"], []).append(p["id"])
        return {n: ids for n, ids in names.items() if len(ids) > 1}

    def inject_hostile_foreign_pods(self):
        """Foreign pods of a shared account, each with one odd field."""
        odd = [
            self.fake.inject_pod(LONG_NAME, age_sec=100000),
            self.fake.inject_pod("notebook-cost", age_sec=100000, override={"cost": "abc"}),
            self.fake.inject_pod("notebook-gpu", age_sec=100000, override={"gpu": {"id": 5}}),
            self.fake.inject_pod("notebook-runtime", age_sec=100000,
                                 override={"runtime": "odd"}),
            self.fake.inject_pod("notebook-created", age_sec=100000,
                                 override={"createdAt": "yesterday"}),
            self.fake.inject_pod("notebook-noid", age_sec=100000, override={"id": 42}),
        ]
        return odd

    # -- the pod list is foreign data ------------------------------------------------------------

    def test_malformed_foreign_pods_with_ambiguous_creates(self):
        self.config.update(MAX_ACTIVE_GPUS="1", RUNPOD_MAX_RETRIES="1")
        fake = self.start_fake()
        foreign = self.inject_hostile_foreign_pods()
        self.work(3)
        fake.set_faults(rules=[rule(503, method="POST", path="/v2/pods", count=-1,
                                    create_anyway=True)])
        for _ in range(5):
            res = self.cycle(ok_codes=(0, 6))
            pl = res.summary.get("pod_list")
            if pl is not None:
                self.assertEqual((pl["entries_skipped"], pl["entries_partial"]), (1, 4), pl)
            time.sleep(0.5)
        # One worker, one pod: its create was answered 503, the pod was found by name (or
        # adopted by a later cycle), and the name was never POSTed again.
        posts = self.creates()
        self.assertEqual(len(posts), 1, [p["body"]["name"] for p in posts])
        self.assertEqual(len(self.ours()), 1)
        self.assertEqual(self.one_pod_per_name(), {})
        rows = [w for w in self.db.workers() if w["status"] != "terminated"]
        self.assertEqual(len(rows), 1, e2e_lib.fmt_rows(rows))
        self.assertTrue(rows[0]["runpod_id"], "the pod was adopted (its id recorded)")
        defects = self.all_events("pods.entry_defect")
        self.assertTrue(any("name" in e.get("detail", "") for e in defects), defects)
        fake.set_faults(rules=[])
        self.settle(timeout=60)
        alive = {str(p["id"]) for p in fake.pods()}
        for p in foreign:
            self.assertIn(str(p["id"]), alive, "a foreign pod was terminated")
            self.assertEqual(self.deletes_of(str(p["id"])), [], "a foreign pod was touched")
        e2e_lib.note("hostile list: 6 foreign pods (1 skipped, 4 partial), 5 cycles of "
                     "503-after-create with MAX=1: %d POST, %d pod(s) of ours"
                     % (len(posts), len(self.ours())))
        self.invariants("malformed foreign pods + ambiguous creates", max_active=1 + 6)

    def test_unreadable_created_at_still_ages(self):
        """A leaked pod of ours whose createdAt cannot be read ages from when we first saw it
        (pods_first_seen) and goes after ORPHAN_POD_GRACE_SEC instead of living forever."""
        self.config.update(MAX_ACTIVE_GPUS="2")
        fake = self.start_fake()
        leaked = fake.inject_pod("gpu-20200101_000000-0badda7e", age_sec=0,
                                 override={"createdAt": "not a time"})
        first = self.cycle()
        self.assertEqual(self.deletes_of(leaked["id"]), [], "kept within the grace")
        self.run_cycles_until(lambda: self.deletes_of(leaked["id"]), timeout=20,
                              what="the leaked pod with an unreadable createdAt is terminated")
        seen = self.db.scalar("SELECT count(*) FROM pods_first_seen WHERE pod_id = %s",
                              (leaked["id"],))
        self.assertEqual(seen, 1)
        self.assertIsNotNone(first.summary)
        self.invariants("unreadable createdAt", max_active=2 + 1)

    # -- ambiguous creates and a lagging list ----------------------------------------------------

    def ambiguous_create_with_lagging_list(self, retries):
        self.config.update(MAX_ACTIVE_GPUS="1", RUNPOD_MAX_RETRIES=str(retries),
                           SPAWN_POD_ID_GRACE_SEC="8")
        fake = self.start_fake()
        fake.set_faults(list_lag_sec=4.0,
                        rules=[rule(503, method="POST", path="/v2/pods", count=1,
                                    create_anyway=True)])
        self.work(2)
        first = self.cycle(ok_codes=(0, 6))
        self.assertEqual(first.action("workers_spawned"), 0, first.describe())
        spawning = self.db.query("SELECT id, runpod_id, metadata FROM workers")
        self.assertEqual(len(spawning), 1)
        self.assertTrue(spawning[0]["metadata"].get("create_outcome_unknown"), spawning)
        # Cycles while the list still lags: the row holds its slot, nothing else is created.
        for _ in range(4):
            self.cycle(ok_codes=(0, 6))
            self.assertEqual(len(self.creates()), 1, "a second create while the first is unknown")
            time.sleep(0.3)
        # The pod surfaces in the list after the lag and is adopted by name, whatever the row
        # is doing meanwhile (its worker may already have heartbeated and been promoted).
        self.run_cycles_until(lambda: self.db.scalar("SELECT runpod_id FROM workers") is not None,
                              timeout=30, what="the pod is adopted once the list shows it",
                              ok_codes=(0, 6))
        self.settle(timeout=60)
        self.assertEqual(self.one_pod_per_name(), {})
        self.assertEqual(len({p["body"]["name"] for p in self.creates()}), len(self.creates()),
                         "a name was POSTed twice")
        adopted = self.total_action("pods_adopted")
        cost = self.db.scalar("SELECT cost_per_hr FROM workers")
        self.assertAlmostEqual(float(cost or 0), 0.69, places=3,
                               msg="an adopted pod records its price (the spend cap counts it)")
        e2e_lib.note("ambiguous create, list lagging 4 s, RUNPOD_MAX_RETRIES=%d: %d POST(s), "
                     "%d adopted, max_pods_alive %d" % (retries, len(self.creates()), adopted,
                                                        fake.stats()["max_pods_alive"]))
        self.assertGreaterEqual(adopted, 1)
        self.invariants("ambiguous create, lagging list, retries=%d" % retries)

    def test_ambiguous_create_lagging_list_with_retries(self):
        self.ambiguous_create_with_lagging_list(1)

    def test_ambiguous_create_lagging_list_without_retries(self):
        self.ambiguous_create_with_lagging_list(0)

    # -- capacity backoff -------------------------------------------------------------------------

    def test_capacity_backoff_once_per_cycle(self):
        """Three concurrent creates all told "no capacity" for both GPU types: one backoff step
        per type for the cycle, not one per answer (the old code jumped to the maximum)."""
        self.config.update(MAX_ACTIVE_GPUS="3", RUNPOD_GPU_TYPES="GPU A,GPU B",
                           CAPACITY_BACKOFF_BASE_SEC="60", CAPACITY_BACKOFF_MAX_SEC="3600")
        fake = self.start_fake()
        fake.set_faults(no_capacity=["GPU A", "GPU B"])
        self.work(3)
        res = self.cycle(ok_codes=(0, 6))
        self.assertEqual(res.action("spawn_failures"), 3, res.describe())
        rows = self.db.query("SELECT gpu_type, failures, round(extract(epoch FROM backoff_until"
                             " - last_failure_at)) AS secs FROM gpu_capacity_backoff"
                             " ORDER BY gpu_type")
        self.assertEqual([(r["gpu_type"], r["failures"], int(r["secs"])) for r in rows],
                         [("GPU A", 1, 60), ("GPU B", 1, 60)])
        e2e_lib.note("capacity: 3 creates x 2 types answered 400 in one cycle -> failures=1, "
                     "backoff 60 s per type")

    # -- the kill switch -------------------------------------------------------------------------

    def test_shutdown_all_with_legacy_inactive_rows(self):
        self.config.update(MAX_ACTIVE_GPUS="3", GPU_IDLE_TIMEOUT_SEC="60",
                           WORKER_GRACE_PERIOD_SEC="60")
        fake = self.start_fake()
        res = self.run_binary("spawn", "--count", "2")
        self.assertEqual(res.action("workers_spawned"), 2, res.describe())
        # Legacy rows of the replaced system: one whose pod exists (by name), one without.
        legacy = "gpu-20250101_000000-1e9ac100"
        self.db.execute("INSERT INTO workers (id, status, metadata) VALUES (%s, 'inactive', "
                        "'{\"orchestrator_status\": \"spawning\"}')", (legacy,))
        self.db.execute("INSERT INTO workers (id, status) VALUES ('legacy-nopod', 'inactive')")
        legacy_pod = fake.inject_pod(legacy, age_sec=3600)
        task = self.db.insert_task("generate", {"duration_sec": 1})
        self.db.execute("UPDATE tasks SET status = 'In Progress', worker_id = %s, "
                        "generation_started_at = now() WHERE id = %s", (legacy, task))
        leaked = fake.inject_pod("gpu-20250101_000000-0eaced00", age_sec=10)
        # One pod's DELETE fails for good: the others still go, the failure is reported.
        stubborn = self.db.scalar("SELECT runpod_id FROM workers WHERE runpod_id IS NOT NULL "
                                  "AND status IN ('spawning', 'active') ORDER BY id LIMIT 1")
        fake.set_faults(rules=[rule(500, method="DELETE", path="/v2/pods/" + stubborn,
                                    count=-1)])
        res = self.run_binary("shutdown-all", "--yes")
        self.assertEqual(res.rc, 6, res.describe() + res.stderr[-2000:])
        self.assertTrue(any(stubborn in e for e in res.summary["errors"]), res.summary["errors"])
        alive = {p["id"] for p in fake.pods()}
        self.assertEqual(alive, {stubborn}, "every pod but the stubborn one is gone")
        self.assertNotIn(legacy_pod["id"], alive)
        self.assertNotIn(leaked["id"], alive, "the kill switch also stops pods without a row")
        statuses = {w["id"]: w["status"] for w in self.db.workers()}
        self.assertEqual(statuses[legacy], "terminated")
        self.assertEqual(statuses["legacy-nopod"], "terminated")
        t = self.db.task(task)
        self.assertEqual((t["status"], t["attempts"]), ("Queued", 1), t)
        journal = self.db.scalar("SELECT count(*) FROM orchestrator_cycles "
                                 "WHERE command = 'shutdown-all' AND exit_code = 6")
        self.assertEqual(journal, 1, "the failing shutdown-all is in the journal")
        # Again, with the fault gone: everything stops, exit 0.
        fake.set_faults(rules=[])
        res = self.run_binary("shutdown-all", "--yes")
        self.assertEqual(res.rc, 0, res.describe() + res.stderr[-2000:])
        self.assertEqual(fake.pods(), [])
        self.assertEqual({w["status"] for w in self.db.workers()}, {"terminated"})
        e2e_lib.note("shutdown-all with 2 legacy inactive rows, a leaked pod and one DELETE "
                     "failing: exit 6, 4 of 5 pods stopped; rerun: exit 0, 0 pods")
        self.invariants("shutdown-all with legacy inactive rows", max_active=3 + 2)

    # -- MAX holds when a termination does not happen --------------------------------------------

    def test_skipped_recovery_during_scale_up(self):
        self.config.update(MAX_ACTIVE_GPUS="2", TASK_STUCK_TIMEOUT_SEC="3",
                           GPU_IDLE_TIMEOUT_SEC="60", WORKER_GRACE_PERIOD_SEC="60")
        fake = self.start_fake()
        stuck = self.db.insert_task("generate", {"duration_sec": 120})
        self.run_cycles_until(lambda: self.db.task(stuck)["status"] == "In Progress",
                              timeout=30, what="a worker claims the long task")
        holder = self.db.task(stuck)["worker_id"]
        # The task row changes under the orchestrator's feet: its recovery matches no row
        # (as when the worker completes it in the same instant), so the recovery is skipped
        # and the worker's termination is blocked for this cycle.
        self.db.execute("""
            CREATE FUNCTION e2e_keep_task() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF OLD.id = %s::uuid AND OLD.status = 'In Progress' THEN RETURN NULL; END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER e2e_keep_task BEFORE UPDATE ON tasks
                FOR EACH ROW EXECUTE FUNCTION e2e_keep_task();""", (stuck,))
        self.work(4, duration_sec=0.5)  # demand for more workers in the same cycle
        time.sleep(4.5)  # the task passes TASK_STUCK_TIMEOUT_SEC (ages count whole seconds)
        res = self.cycle(ok_codes=(0, 6))
        kinds = [(o["action"], o["result"]) for o in res.summary["outcomes"]]
        self.assertIn(("fail_worker", "applied"), kinds, kinds)
        self.assertIn(("recover_task", "skipped"), kinds, kinds)
        self.assertIn(("terminate_worker", "skipped"), kinds, kinds)
        self.assertEqual(self.db.worker(holder)["status"], "error")
        self.assertLessEqual(fake.stats()["max_pods_alive"], 2,
                             "the blocked termination's pod still runs: spawns must shrink")
        self.db.execute("DROP TRIGGER e2e_keep_task ON tasks")
        self.settle(timeout=90)
        e2e_lib.note("skipped recovery during scale-up: max_pods_alive %d <= MAX 2"
                     % fake.stats()["max_pods_alive"])
        self.invariants("skipped recovery during scale-up")


if __name__ == "__main__":
    unittest.main()
