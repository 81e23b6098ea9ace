"""Incident replays (python-original section 9): the production failures the rewrite must make
impossible or bounded.

1. Incident 1 (990+ workers): a worker image that crashes at start. Every pod's container exits
   at once (the fake marks the pod EXITED when its boot process exits non-zero, as RunPod does
   when a container's main process dies), each worker fails `unexpected`, and the circuit
   breaker must stop the spawning: the pods created stay bounded by
   MIN_WORKERS_FOR_RATE_CHECK + MAX_ACTIVE_GPUS - 1 however many cycles run.
2. Incident 13 (poison task): a task that crashes every worker that claims it ends Failed after
   MAX_TASK_ATTEMPTS, and no more than MAX_TASK_ATTEMPTS workers die of it (SPEC 5: every
   recovery counts as an attempt).
Both end with the fleet invariants of test_10 (e2e_lib.check_invariants).
"""

import time
import unittest

import e2e_lib
from e2e_lib import SafetyTestCase


class TestIncidents(SafetyTestCase):

    def test_crash_looping_image_is_stopped_by_the_breaker(self):
        settings = {
            "MIN_ACTIVE_GPUS": "0", "MAX_ACTIVE_GPUS": "2", "TASKS_PER_GPU_THRESHOLD": "1",
            "MIN_WORKERS_FOR_RATE_CHECK": "4", "MAX_WORKER_FAILURE_RATE": "0.5",
            "FAILURE_WINDOW_MINUTES": "5", "SPAWNING_TIMEOUT_SEC": "20",
            "RECONCILE_INTERVAL_SEC": "1", "ORPHAN_POD_GRACE_SEC": "3",
            "GPU_IDLE_TIMEOUT_SEC": "4", "WORKER_GRACE_PERIOD_SEC": "1",
        }
        self.config.update(settings)
        self.config["WORKER_ENV_FAKE_WORKER_CRASH_AT_START"] = "1"
        fake = self.start_fake()
        ids = self.work(4)
        cycles = 30
        opened_at = None
        spawned_after_open = 0
        for n in range(1, cycles + 1):
            r = self.cycle(ok_codes=(0, 6))
            if (r.summary.get("breaker") or {}).get("open"):
                if opened_at is None:
                    opened_at = n
                    self.assertEqual(r.status("spawn_limit"), "circuit_breaker", r.describe())
                spawned_after_open += r.action("workers_spawned")
            time.sleep(0.25)
        created = fake.stats()["creates"]
        bound = int(settings["MIN_WORKERS_FOR_RATE_CHECK"]) + int(settings["MAX_ACTIVE_GPUS"]) - 1
        reasons = sorted({(w["metadata"] or {}).get("error_reason") for w in self.db.workers()})
        e2e_lib.note("crash-loop: %d pods created in %d cycles, breaker open since cycle %s "
                     "(bound %d = MIN_WORKERS_FOR_RATE_CHECK %s + MAX_ACTIVE_GPUS %s - 1; "
                     "MAX_WORKER_FAILURE_RATE %s, FAILURE_WINDOW_MINUTES %s, "
                     "SPAWNING_TIMEOUT_SEC %s; failures: %s)"
                     % (created, cycles, opened_at, bound, settings["MIN_WORKERS_FOR_RATE_CHECK"],
                        settings["MAX_ACTIVE_GPUS"], settings["MAX_WORKER_FAILURE_RATE"],
                        settings["FAILURE_WINDOW_MINUTES"], settings["SPAWNING_TIMEOUT_SEC"],
                        reasons))
        self.assertIsNotNone(opened_at, "the breaker never opened")
        self.assertLessEqual(created, bound)
        self.assertEqual(spawned_after_open, 0, "spawned while the breaker was open")
        state = self.db.one("SELECT breaker_open, breaker_opened_at FROM orchestrator_state")
        self.assertTrue(state["breaker_open"] and state["breaker_opened_at"])
        self.assertEqual({self.db.task(t)["status"] for t in ids}, {"Queued"},
                         "no task was charged for workers that never claimed")
        self.invariants("crash-looping image, breaker open")

        # Recovery: the operator fixes the image, and the failure window passes (simulated by
        # moving the recorded endings back in this test's database: the window is minutes).
        del self.config["WORKER_ENV_FAKE_WORKER_CRASH_AT_START"]
        self.db.execute("UPDATE workers SET ended_at = ended_at - interval '10 minutes' "
                        "WHERE ended_at IS NOT NULL")
        after = self.settle(timeout=40)
        self.assertFalse(after[-1].summary["breaker"]["open"])
        self.assertEqual({self.db.task(t)["status"] for t in ids}, {"Complete"})
        self.invariants("crash-looping image, recovered")

    def test_poison_task_fails_after_max_attempts(self):
        self.config.update({
            "MIN_ACTIVE_GPUS": "0", "MAX_ACTIVE_GPUS": "2", "TASKS_PER_GPU_THRESHOLD": "1",
            "MAX_TASK_ATTEMPTS": "3", "RECONCILE_INTERVAL_SEC": "1",
            "ORPHAN_POD_GRACE_SEC": "3", "GPU_IDLE_TIMEOUT_SEC": "4",
            "WORKER_GRACE_PERIOD_SEC": "1", "SPAWNING_TIMEOUT_SEC": "20",
        })
        fake = self.start_fake()
        poison = self.db.insert_task("generate", {"crash": True})
        normal = self.work(3)
        self.settle(timeout=60)
        t = self.db.task(poison)
        claims = e2e_lib.claims_of(self.db, poison)
        died = self.db.query("SELECT id, metadata->>'error_reason' AS reason, end_kind "
                             "FROM workers WHERE id = ANY(%s)", (claims,))
        e2e_lib.note("poison: task %s after %d attempts; %d workers claimed it and died "
                     "(MAX_TASK_ATTEMPTS 3): %s" % (t["status"], t["attempts"], len(set(claims)),
                                                    sorted(d["reason"] for d in died)))
        self.assertEqual((t["status"], t["attempts"]), ("Failed", 3), t)
        self.assertEqual(len(claims), 3, "one claim per attempt: %s" % claims)
        self.assertEqual(len(set(claims)), 3)
        self.assertTrue(all(d["end_kind"] == "unexpected" for d in died), died)
        self.assertEqual({self.db.task(x)["status"] for x in normal}, {"Complete"})
        self.assertLessEqual(fake.stats()["creates"], 3 + 2)
        self.invariants("poison task")


class TestPoisonTaskHttp(SafetyTestCase):
    """The poison task with HTTP workers (issue 13): each dies after its guardian's last
    heartbeat with status_param "crashed"; the gateway ends it as crashed and the cycle
    recovers the task, counting the attempt."""
    http_workers = True
    test_poison_task_fails_after_max_attempts = \
        TestIncidents.test_poison_task_fails_after_max_attempts


if __name__ == "__main__":
    unittest.main()
