"""Scenario 3: a pod that never boots (the fake's never_boot fault: RUNNING, runtime null, no
worker process). After
SPAWNING_TIMEOUT_SEC without a first heartbeat the worker becomes `error` ("Spawning timeout"),
its pod is terminated and the row ends `terminated` (SPEC 6 steps 1, 5)."""

import time
import unittest

from e2e_lib import E2ETestCase, wait_until

SPAWN_TIMEOUT = 3


class TestSpawningTimeout(E2ETestCase):

    def test_pod_that_never_boots_times_out_and_is_terminated(self):
        # MAX 1: one pod at a time, so the replacement that MIN 1 asks for waits until the dead
        # one is gone, and the test sees exactly one failure before it stops.
        self.config.update(MIN_ACTIVE_GPUS="1", MAX_ACTIVE_GPUS="1", TASKS_PER_GPU_THRESHOLD="1",
                           SPAWNING_TIMEOUT_SEC=str(SPAWN_TIMEOUT), SPAWN_POD_ID_GRACE_SEC="30",
                           POD_NOT_FOUND_GRACE_SEC="30", GPU_IDLE_TIMEOUT_SEC="30")
        fake = self.start_fake()
        task_id = self.db.insert_task("generate", {"duration_sec": 1})

        # The fake's never_boot fault holds for pods that reach RUNNING while it is set: keep it
        # on until the first pod is RUNNING, then clear it so the replacement boots.
        fake.set_faults(never_boot=True)
        first = self.cycle()
        self.assertEqual(first.action("workers_spawned"), 1, first.describe())
        w1 = self.db.workers()[0]
        pod1 = w1["runpod_id"]
        self.assertTrue(pod1)
        t0 = time.monotonic()
        self.assertTrue(wait_until(lambda: any(p["id"] == pod1 and p["status"] == "RUNNING"
                                               for p in fake.pods()), timeout=5),
                        "the fake's first pod never reached RUNNING")
        fake.set_faults(never_boot=False)
        self.assertIsNone([p for p in fake.pods() if p["id"] == pod1][0]["_boot_pid"])

        def not_before_timeout(res):
            w = self.db.worker(w1["id"])
            if res.finished - t0 < SPAWN_TIMEOUT - 1:
                self.assertEqual(w["status"], "spawning", "failed before the timeout: %s"
                                 % res.describe())
            self.assertIsNone(w["last_heartbeat"], "the never-booted pod heartbeated")

        self.run_cycles_until(lambda: self.db.worker(w1["id"])["status"] == "terminated",
                              timeout=SPAWN_TIMEOUT + 15, what="the unbooted worker terminated",
                              check_each=not_before_timeout)
        w = self.db.worker(w1["id"])
        self.assertRegex(w["metadata"].get("error_reason") or "", r"(?i)spawning timeout", w)
        self.assertIsNone(w["promoted_at"])
        self.assertEqual(w["end_kind"], "unexpected")
        self.assertEqual(len(self.deletes_of(pod1)), 1, "its pod is terminated")
        failed = [e for e in self.all_events("worker.failed") if e.get("worker_id") == w1["id"]]
        self.assertEqual(len(failed), 1)
        self.assertEqual([e.get("worker_id") for e in self.all_events("pod.terminated")
                          if e.get("pod_id") == pod1], [w1["id"]])
        self.assertEqual(self.db.task(task_id)["attempts"], 0,
                         "a task never claimed is not charged an attempt")

        # The replacement (MIN 1, one task queued) boots normally and does the work.
        self.run_cycles_until(lambda: self.db.task(task_id)["status"] == "Complete",
                              timeout=25, what="the task completes on the replacement")
        self.assertEqual(len(self.creates()), 2)
        self.assertEqual(self.total_action("workers_failed"), 1)
        self.assertEqual(len(fake.api_requests("DELETE")), 1)


if __name__ == "__main__":
    unittest.main()
