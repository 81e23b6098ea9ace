"""Scenario 2: a worker stops heartbeating while holding a task. It becomes `error` with its
reason, the task goes back to Queued with attempts + 1, its pod is terminated, a replacement is
spawned and the task completes there (SPEC 5; 6 steps 2, 3, 5, 6)."""

import unittest

from e2e_lib import E2ETestCase


class TestStaleHeartbeat(E2ETestCase):

    def test_silent_worker_fails_task_recovered_and_completed_by_replacement(self):
        self.config.update(MIN_ACTIVE_GPUS="1", MAX_ACTIVE_GPUS="3", TASKS_PER_GPU_THRESHOLD="1",
                           GPU_IDLE_TIMEOUT_SEC="3", WORKER_GRACE_PERIOD_SEC="1")
        self.start_fake()
        # On its first attempt the claiming worker goes silent but stays alive holding it.
        task_id = self.db.insert_task("generate", {"duration_sec": 1, "stop_heartbeat": True,
                                                   "fault_attempts": 1})

        first = self.cycle()
        self.assertEqual(first.action("workers_spawned"), 1, first.describe())
        w1 = self.db.workers()[0]["id"]

        self.run_cycles_until(
            lambda: (self.db.task(task_id)["status"] == "In Progress"
                     and self.db.task(task_id)["worker_id"] == w1),
            timeout=20, what="the first worker claims the task")
        pod1 = self.pod_of(w1)
        self.assertTrue(pod1)

        self.run_cycles_until(lambda: self.db.worker(w1)["status"] in ("error", "terminated"),
                              timeout=20, what="the silent worker is failed")
        self.run_cycles_until(lambda: self.db.task(task_id)["status"] == "Complete",
                              timeout=45, what="the task completes on a replacement")
        self.run_cycles_until(lambda: self.db.worker(w1)["status"] == "terminated",
                              timeout=10, what="the failed worker is terminated")

        # -- the failed worker ------------------------------------------------------------------
        row = self.db.worker(w1)
        reason = row["metadata"].get("error_reason") or ""
        self.assertRegex(reason, r"(?i)stale heartbeat", row)
        self.assertRegex(reason, r"(?i)active task", "reason names the held task: %r" % reason)
        self.assertIsNotNone(row["metadata"].get("error_time"), row)
        self.assertEqual(row["end_kind"], "unexpected")
        self.assertEqual(len(self.deletes_of(pod1)), 1, "the silent worker's pod is deleted")
        failed = [e for e in self.all_events("worker.failed") if e.get("worker_id") == w1]
        self.assertEqual(len(failed), 1, "one worker.failed event")
        self.assertEqual(self.total_action("workers_failed"), 1)

        # -- the task: recovered once (attempt counted), then completed by the replacement -----
        recovered = [e for e in self.all_events("task.recovered") if e.get("task_id") == task_id]
        self.assertEqual(len(recovered), 1, "one task.recovered event")
        self.assertEqual(self.total_action("tasks_reset"), 1)
        t = self.db.task(task_id)
        self.assertEqual(t["attempts"], 1, t)
        self.assertNotEqual(t["worker_id"], w1)
        w2 = t["worker_id"]
        replacement = self.db.worker(w2)
        self.assertIsNotNone(replacement, "task completed by a worker row we know")
        self.assertEqual(replacement["status"], "active")
        self.assertGreater(replacement["created_at"], row["created_at"])

        # -- the fake saw exactly two creates (original + replacement) and one delete ----------
        names = [p["body"]["name"] for p in self.creates()]
        self.assertEqual(names, [w1, w2])
        self.assertEqual(len(self.fake.api_requests("DELETE")), 1)
        self.assertEqual(self.total_action("workers_spawned"), 2)


class TestStaleHeartbeatHttp(TestStaleHeartbeat):
    """The same with HTTP workers through `orchestrator gateway` (issue 13)."""
    http_workers = True


if __name__ == "__main__":
    unittest.main()
