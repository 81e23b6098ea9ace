"""Operator commands against the fake RunPod: `spawn`, `terminate`, `shutdown-all` (SPEC 2).
They are planned like a cycle (same actions, guards and limits) and print a JSON summary."""

import unittest

import e2e_lib
from e2e_lib import E2ETestCase


class TestOperatorCommands(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.config.update(MIN_ACTIVE_GPUS="0", MAX_ACTIVE_GPUS="3", GPU_IDLE_TIMEOUT_SEC="60",
                           WORKER_GRACE_PERIOD_SEC="60", TASKS_PER_GPU_THRESHOLD="1")
        self.start_fake()
        e2e_lib.install_hold_audit(self.db)

    def posts(self):
        return [r for r in self.fake.api_requests("POST")]

    def test_spawn_respects_max_and_terminate_requeues_the_task(self):
        res = self.run_binary("spawn", "--count", "5")
        self.assertEqual(res.rc, 0, res.describe())
        # MAX_ACTIVE_GPUS=3 holds for a manual spawn too.
        self.assertEqual(res.action("workers_spawned"), 3, res.describe())
        self.assertEqual(res.status("spawn_limit"), "max_active_gpus")
        self.assertEqual(len(self.posts()), 3)
        self.assertEqual(res.summary["command"], "spawn")

        task_id = self.db.insert_task("generate", {"duration_sec": 60})
        self.run_cycles_until(lambda: self.db.task(task_id)["status"] == "In Progress",
                              timeout=30, what="a worker claims the long task")
        holder = self.db.task(task_id)["worker_id"]
        pod = self.db.worker(holder)["runpod_id"]

        dry = self.run_binary("terminate", holder, "--dry-run")
        self.assertEqual(dry.rc, 0, dry.describe())
        kinds = [a["action"] for a in dry.summary["plan"]]
        self.assertEqual(kinds, ["drain_worker", "recover_task", "terminate_worker"], kinds)
        self.assertEqual(self.db.worker(holder)["status"], "active", "dry run changed nothing")

        res = self.run_binary("terminate", holder)
        self.assertEqual(res.rc, 0, res.describe())
        self.assertEqual(self.db.worker(holder)["status"], "terminated")
        # What the product promises (issue 12.9): the task was recovered with one attempt
        # counted and the terminated worker no longer holds it. Another fake worker may claim
        # it again at once -- that is legitimate, so its status is not asserted.
        t = self.db.task(task_id)
        self.assertEqual(t["attempts"], 1, t)
        self.assertNotEqual(t["worker_id"], holder, t)
        self.assertIn(t["status"], ("Queued", "In Progress"), t)
        recovered = [o for o in res.summary["outcomes"] if o["action"] == "recover_task"]
        self.assertEqual([(o["task_id"], o["result"]) for o in recovered], [(task_id, "applied")])
        deletes = [r for r in self.fake.api_requests("DELETE") if r["path"].endswith(pod)]
        self.assertEqual(len(deletes), 1, "its pod is deleted")

        # Issue 12.5: an operator's typo while stopping a runaway pod is not a success.
        for unknown in ("gpu-no-such-worker", holder):  # unknown, and already terminated
            res = self.run_binary("terminate", unknown)
            self.assertEqual(res.rc, 2, res.describe())
            self.assertIn("no live worker and no pod of ours has the id", res.stderr)
        self.assertEqual(self.run_binary("terminate").rc, 2, "no worker id is a usage error")

    def test_shutdown_all_needs_yes(self):
        res = self.run_binary("spawn", "--count", "2")
        self.assertEqual(res.action("workers_spawned"), 2, res.describe())
        before = self.db.dump()

        refused = self.run_binary("shutdown-all")  # stdin is not a terminal
        self.assertEqual(refused.rc, 2)
        self.assertIn("without --yes", refused.stderr)
        dry = self.run_binary("shutdown-all", "--dry-run")
        self.assertEqual(dry.rc, 0, dry.describe())
        self.assertEqual(sum(1 for a in dry.summary["plan"] if a["action"] == "terminate_worker"),
                         2)
        self.assertEqual(self.db.dump(), before, "refusal and dry run change nothing")
        self.assertEqual(len(self.fake.api_requests("DELETE")), 0)

        res = self.run_binary("shutdown-all", "--yes")
        self.assertEqual(res.rc, 0, res.describe())
        self.assertEqual(res.action("workers_terminated"), 2)
        self.assertEqual({w["status"] for w in self.db.workers()}, {"terminated"})
        self.assertEqual(self.fake.stats()["pods_alive"], 0)


if __name__ == "__main__":
    unittest.main()
