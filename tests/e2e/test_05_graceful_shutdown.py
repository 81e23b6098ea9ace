"""Scenario 5: graceful shutdown (SPEC 6 step 5). A worker that is `terminating` while it holds a
task keeps its pod until the task completes; if the task outlives
GRACEFUL_SHUTDOWN_TIMEOUT_SEC, the task is recovered and the pod terminated.

A worker is only chosen for drain when idle, so the race (it claimed a task just as it was
drained) is constructed with the orchestrator's own move to terminating
(orchestrator_mark_terminating, the statement its drain runs after proving the worker idle), minus
that proof. That is the only table write these tests do."""

import time
import unittest

from e2e_lib import E2ETestCase


class TestGracefulShutdown(E2ETestCase):

    def _one_worker_holding(self, params, drain_metadata=True):
        self.start_fake()
        task_id = self.db.insert_task("generate", params)
        first = self.cycle()
        self.assertEqual(first.action("workers_spawned"), 1, first.describe())
        self.run_cycles_until(lambda: self.db.task(task_id)["status"] == "In Progress",
                              timeout=20, what="the worker claims the task")
        worker_id = self.db.task(task_id)["worker_id"]
        if drain_metadata:
            # The statement the orchestrator's drain runs (0007_hardening.sql), without its
            # "holds no task" proof: the claim-vs-drain race the proof and the claim lock
            # prevent. Calling it, not a copy of it, keeps the test from drifting.
            moved = self.db.scalar("SELECT orchestrator_mark_terminating(%s, 'active', 'idle', "
                                   "false)", (worker_id,))
            self.assertTrue(moved)
        else:
            # As an operator script or the legacy system would do it: status only.
            n = self.db.execute("UPDATE workers SET status = 'terminating' WHERE id = %s AND "
                                "status = 'active'", (worker_id,))
            self.assertEqual(n, 1)
        return task_id, worker_id, time.monotonic()

    def test_terminating_worker_keeps_pod_until_task_completes(self):
        self.config.update(MIN_ACTIVE_GPUS="1", MAX_ACTIVE_GPUS="1", TASKS_PER_GPU_THRESHOLD="1",
                           GRACEFUL_SHUTDOWN_TIMEOUT_SEC="60", GPU_IDLE_TIMEOUT_SEC="30")
        task_id, worker_id, _ = self._one_worker_holding({"duration_sec": 6})
        pod = self.pod_of(worker_id)

        def not_killed_while_busy(res):
            t = self.db.task(task_id)
            if t["status"] == "In Progress":
                self.assertEqual(self.db.worker(worker_id)["status"], "terminating",
                                 res.describe())
                self.assertEqual(self.deletes_of(pod), [],
                                 "pod deleted while its task was still running")
            self.assertEqual(res.action("tasks_reset"), 0, res.describe())
            if self.db.worker(worker_id)["status"] == "terminating":
                self.assertEqual(res.action("workers_spawned"), 0, "MAX_ACTIVE_GPUS counts "
                                 "the terminating pod: %s" % res.describe())

        self.run_cycles_until(lambda: self.db.worker(worker_id)["status"] == "terminated",
                              timeout=30, what="the drained worker is terminated",
                              check_each=not_killed_while_busy)
        t = self.db.task(task_id)
        self.assertEqual(t["status"], "Complete", t)
        self.assertEqual(t["attempts"], 0, t)
        self.assertEqual(t["worker_id"], worker_id)
        self.assertEqual(len(self.deletes_of(pod)), 1)
        w = self.db.worker(worker_id)
        self.assertEqual(w["end_kind"], "expected")
        self.assertNotIn("error_reason", w["metadata"])
        self.assertEqual(self.total_action("workers_failed"), 0)

    def test_terminating_worker_task_recovered_after_graceful_timeout(self):
        self._graceful_timeout(drain_metadata=True)

    def test_terminating_set_outside_the_drain_path_still_times_out(self):
        # A worker moved to terminating by anything else (an operator's UPDATE, the original
        # Python system during a migration) has no metadata.terminating_at; the database still
        # records when it left service (ended_at, set by the state-machine trigger). Without a
        # fallback it would hold its task, its pod and a MAX_ACTIVE_GPUS slot forever.
        self._graceful_timeout(drain_metadata=False)

    def _graceful_timeout(self, drain_metadata):
        grace = 4
        self.config.update(MIN_ACTIVE_GPUS="1", MAX_ACTIVE_GPUS="1", TASKS_PER_GPU_THRESHOLD="1",
                           GRACEFUL_SHUTDOWN_TIMEOUT_SEC=str(grace), GPU_IDLE_TIMEOUT_SEC="30",
                           TASK_STUCK_TIMEOUT_SEC="120")
        task_id, worker_id, t0 = self._one_worker_holding({"hang": True, "fault_attempts": 1},
                                                          drain_metadata=drain_metadata)
        pod = self.pod_of(worker_id)

        def not_before_timeout(res):
            if res.finished - t0 < grace - 0.5:
                self.assertEqual(self.deletes_of(pod), [],
                                 "pod deleted before GRACEFUL_SHUTDOWN_TIMEOUT_SEC")
                self.assertEqual(self.db.task(task_id)["status"], "In Progress")

        self.run_cycles_until(lambda: self.db.worker(worker_id)["status"] == "terminated",
                              timeout=grace + 15, what="terminated after the graceful timeout",
                              check_each=not_before_timeout)
        self.assertEqual(len(self.deletes_of(pod)), 1)
        recovered = [e for e in self.all_events("task.recovered") if e.get("task_id") == task_id]
        self.assertEqual(len(recovered), 1)
        # The recovered task (attempt counted) is picked up by a replacement and completes.
        self.run_cycles_until(lambda: self.db.task(task_id)["status"] == "Complete",
                              timeout=40, what="the recovered task completes on a replacement")
        t = self.db.task(task_id)
        self.assertEqual(t["attempts"], 1, t)
        self.assertNotEqual(t["worker_id"], worker_id)
        self.assertEqual(len(self.creates()), 2)


class TestGracefulShutdownHttp(E2ETestCase):
    """Graceful shutdown with HTTP workers (issue 13): like the reference worker they never
    learn they are draining; the gateway's claim answers 204 to a terminating worker, which
    finishes its task, and the orchestrator then deletes the pod."""
    http_workers = True
    _one_worker_holding = TestGracefulShutdown._one_worker_holding
    _graceful_timeout = TestGracefulShutdown._graceful_timeout
    test_terminating_worker_keeps_pod_until_task_completes = \
        TestGracefulShutdown.test_terminating_worker_keeps_pod_until_task_completes
    test_terminating_worker_task_recovered_after_graceful_timeout = \
        TestGracefulShutdown.test_terminating_worker_task_recovered_after_graceful_timeout


if __name__ == "__main__":
    unittest.main()
