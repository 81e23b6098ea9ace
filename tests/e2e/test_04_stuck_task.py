"""Scenario 4: a task held longer than TASK_STUCK_TIMEOUT_SEC marks its worker `error` (the task
is recovered and completes elsewhere), while a task whose type matches STUCK_EXEMPT_TASK_TYPES
running just as long leaves its worker alone (SPEC 6 step 2)."""

import unittest

from e2e_lib import E2ETestCase

STUCK_SEC = 3


class TestStuckTask(E2ETestCase):

    def test_stuck_task_fails_worker_but_exempt_type_does_not(self):
        self.config.update(MIN_ACTIVE_GPUS="2", MAX_ACTIVE_GPUS="3", TASKS_PER_GPU_THRESHOLD="1",
                           TASK_STUCK_TIMEOUT_SEC=str(STUCK_SEC),
                           STUCK_EXEMPT_TASK_TYPES="%_orchestrator",
                           GPU_IDLE_TIMEOUT_SEC="30", WORKER_GRACE_PERIOD_SEC="1")
        self.start_fake()
        # Never finishes on its first attempt (heartbeats go on); behaves on the retry.
        stuck = self.db.insert_task("generate", {"hang": True, "fault_attempts": 1,
                                                 "duration_sec": 1})
        # A long-running parent task: 3x the stuck timeout, then completes.
        parent = self.db.insert_task("travel_orchestrator", {"duration_sec": 3 * STUCK_SEC})

        first = self.cycle()
        self.assertEqual(first.action("workers_spawned"), 2, first.describe())

        self.run_cycles_until(
            lambda: all(self.db.task(t)["status"] == "In Progress" for t in (stuck, parent)),
            timeout=20, what="both tasks claimed")
        stuck_holder = self.db.task(stuck)["worker_id"]
        parent_holder = self.db.task(parent)["worker_id"]
        self.assertNotEqual(stuck_holder, parent_holder)

        def parent_holder_never_failed(res):
            w = self.db.worker(parent_holder)
            self.assertEqual(w["status"], "active", "exempt task's worker touched: %s\n%s"
                             % (w, res.describe()))
            for e in res.events_named("worker.failed"):
                self.assertNotEqual(e.get("worker_id"), parent_holder, e)

        self.run_cycles_until(
            lambda: all(self.db.task(t)["status"] == "Complete" for t in (stuck, parent))
            and self.db.worker(stuck_holder)["status"] == "terminated",
            timeout=45, what="both tasks Complete and the stuck worker terminated",
            check_each=parent_holder_never_failed)

        # -- the stuck task's worker: failed with the reason, pod deleted ----------------------
        w = self.db.worker(stuck_holder)
        reason = w["metadata"].get("error_reason") or ""
        self.assertRegex(reason, r"(?i)stuck task", w)
        self.assertIn(stuck, reason, "the reason names the task")
        self.assertRegex(reason, r"timeout: %ds" % STUCK_SEC)
        self.assertEqual(w["end_kind"], "unexpected")
        self.assertEqual(len(self.deletes_of(w["runpod_id"])), 1)
        t = self.db.task(stuck)
        self.assertEqual(t["attempts"], 1, t)
        self.assertNotEqual(t["worker_id"], stuck_holder)
        self.assertEqual(len([e for e in self.all_events("task.recovered")
                              if e.get("task_id") == stuck]), 1)

        # -- the exempt task ran past the stuck timeout on a cycle-watched worker ---------------
        p = self.db.task(parent)
        self.assertEqual(p["attempts"], 0, p)
        self.assertEqual(p["worker_id"], parent_holder)
        ran = (p["generation_processed_at"] - p["generation_started_at"]).total_seconds()
        self.assertGreater(ran, STUCK_SEC + 2, "the exempt task really ran long")
        ph = self.db.worker(parent_holder)
        self.assertEqual(ph["status"], "active")
        self.assertNotIn("error_reason", ph["metadata"])
        self.assertEqual(self.deletes_of(ph["runpod_id"]), [])
        # Cycles did look at the exempt task while it was older than the stuck timeout.
        started = p["generation_started_at"].timestamp()
        finished = p["generation_processed_at"].timestamp()
        watched = [r for r in self.results
                   if r.started > started + STUCK_SEC + 0.5 and r.finished < finished]
        self.assertTrue(watched, "no cycle ran while the exempt task was past the timeout")
        self.assertEqual(self.total_action("workers_failed"), 1)


if __name__ == "__main__":
    unittest.main()
