"""`orchestrator reconcile [--terminate] [--json]`: RunPod pods against worker rows (SPEC 2, 6
step 7).

A fleet of two workers, then, from outside: one worker's pod vanishes, and pods appear that no row
owns -- an old leaked pod, a young one (inside ORPHAN_POD_GRACE_SEC), a second pod carrying a live
worker's name (a create that landed twice), and a pod without our prefix. The report names each;
without --terminate nothing changes (database dump and request log); with --terminate exactly the
pods the cycle's step 7 would terminate go (the planner decides), the vanished row becomes
`error`, the foreign pod is never touched; once the young pod passes the grace it goes too.
"""

import json
import time
import unittest

import e2e_lib
from e2e_lib import SafetyTestCase

GRACE = 30


class TestReconcileCommand(SafetyTestCase):

    def reconcile(self, *args, env=None, code=0):
        r = self.run_binary("reconcile", *args, env_overrides=env)
        self.assertEqual(r.rc, code, "reconcile %s: %s\n%s" % (args, r.stdout, r.stderr[-3000:]))
        return r

    def durable(self):
        """What reconcile could write (the fake workers keep heartbeating meanwhile)."""
        return (self.db.query("SELECT id, status::text, runpod_id, ended_at, end_kind, "
                              "metadata->'error_reason' AS r FROM workers ORDER BY id"),
                self.db.query("SELECT * FROM orchestrator_state"),
                self.db.scalar("SELECT count(*) FROM orchestrator_cycles"),
                self.db.query("SELECT id::text, status::text, attempts FROM tasks ORDER BY id"))

    def test_reconcile_reports_and_terminates_leaks(self):
        self.config.update(MIN_ACTIVE_GPUS="2", MAX_ACTIVE_GPUS="3", TASKS_PER_GPU_THRESHOLD="1",
                           POD_NOT_FOUND_GRACE_SEC="1", ORPHAN_POD_GRACE_SEC=str(GRACE),
                           RECONCILE_INTERVAL_SEC="300", GPU_IDLE_TIMEOUT_SEC="60")
        fake = self.start_fake()
        self.run_cycles_until(lambda: self.db.count_by_status("workers").get("active") == 2,
                              timeout=20, what="two active workers")
        a, b = [w for w in self.db.workers() if w["status"] == "active"]
        old = fake.inject_pod("gpu-20200101_000000-01d01d00", age_sec=GRACE + 70)
        young = fake.inject_pod("gpu-20200101_000000-a0b09000", age_sec=GRACE - 5)
        dup = fake.inject_pod(a["id"], age_sec=GRACE + 70)
        foreign = fake.inject_pod("someone-elses-pod", age_sec=100000)
        # Issue 12.7: starting with the prefix is not enough to be ours.
        lookalike = fake.inject_pod("gpu-shared-notebook", age_sec=100000)
        status, _ = fake.http("POST", "/_fake/pods/%s/kill" % b["runpod_id"], {"to": "gone"})
        self.assertEqual(status, 200)
        time.sleep(1.2)  # the rows pass POD_NOT_FOUND_GRACE_SEC (1 s)

        # -- report only: nothing changes ----------------------------------------------------
        before, deletes = self.durable(), len(fake.api_requests("DELETE"))
        rep = json.loads(self.reconcile("--json").stdout)
        verdicts = {p["pod_id"]: p["verdict"] for p in rep["pods"]}
        self.assertEqual(verdicts, {a["runpod_id"]: "matched", old["id"]: "leaked",
                                    young["id"]: "leaked", dup["id"]: "leaked"})
        terminable = {p["pod_id"] for p in rep["pods"] if p["terminable"]}
        self.assertEqual(terminable, {old["id"], dup["id"]})
        self.assertEqual([v["worker_id"] for v in rep["vanished"]], [b["id"]])
        t = rep["totals"]
        self.assertEqual((t["pods_ours"], t["pods_not_ours"], t["matched"], t["leaked"],
                          t["vanished"]), (4, 2, 1, 3, 1), t)
        self.assertAlmostEqual(t["leaked_cost_per_hr"], 3 * 0.69, places=3)
        self.assertAlmostEqual(t["fleet_cost_per_hr"], 4 * 0.69, places=3)
        # Issue 14: a matched pod names its worker's pool; the totals are per pool too.
        self.assertEqual([p.get("pool") for p in rep["pods"] if p["verdict"] == "matched"],
                         ["default"])
        self.assertEqual([(x["pool"], x["pods"]) for x in t["pools"]], [("default", 1)], t)
        self.assertAlmostEqual(t["pools"][0]["cost_per_hr"], 0.69, places=3)
        self.assertEqual(rep["vanished"][0]["pool"], "default")
        self.assertEqual((rep["terminate"], rep["terminated"], rep["marked_error"]),
                         (False, [], []))
        text = self.reconcile().stdout
        self.assertIn("LEAKED", text)
        self.assertIn("VANISHED: worker %s" % b["id"], text)
        self.assertIn("nothing changed", text)
        self.assertIn("pool default: 1 pod, $0.690/h", text)
        safe = json.loads(self.reconcile("--terminate", "--json",
                                         env={"SAFE_MODE": "true"}).stdout)
        self.assertEqual(safe["terminated"], [])
        self.assertEqual(self.durable(), before, "reconcile without --terminate wrote")
        self.assertEqual(len(fake.api_requests("DELETE")), deletes)

        # -- --terminate: the planner's step 7, and the vanished row marked error ------------
        rep = json.loads(self.reconcile("--terminate", "--json").stdout)
        self.assertEqual(sorted(rep["terminated"]), sorted([old["id"], dup["id"]]))
        self.assertEqual(rep["marked_error"], [b["id"]])
        alive = {p["id"] for p in fake.pods()}
        self.assertTrue({a["runpod_id"], young["id"], foreign["id"], lookalike["id"]} <= alive)
        self.assertFalse({old["id"], dup["id"]} & alive)
        wb = self.db.worker(b["id"])
        self.assertEqual((wb["status"], wb["metadata"]["error_reason"]),
                         ("error", "Pod externally terminated - not found in RunPod"))
        self.assertEqual(self.db.worker(a["id"])["status"], "active")

        # -- the young pod passes the grace -------------------------------------------------
        time.sleep(6)
        rep = json.loads(self.reconcile("--terminate", "--json").stdout)
        self.assertEqual(rep["terminated"], [young["id"]])
        self.assertTrue({foreign["id"], lookalike["id"]} <= {p["id"] for p in fake.pods()})
        e2e_lib.note("reconcile: leaked 3 (old, duplicate name, young), vanished 1, not ours 2 "
                     "(one starting with the prefix); --terminate removed old+duplicate, then "
                     "young after the grace; foreign and look-alike kept")
        self.settle(timeout=30)
        # 2 workers + 5 injected pods were alive together at the fake.
        self.invariants("reconcile command", max_active=3 + 5)


if __name__ == "__main__":
    unittest.main()
