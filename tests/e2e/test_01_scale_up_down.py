"""Scenario 1: from zero workers and 12 queued tasks, scale up to `desired`, promote each worker
on its first heartbeat, complete every task, then scale down idle GPUs to MIN_ACTIVE_GPUS and
no further (SPEC 6 steps 1, 4, 5, 6)."""

import re
import time
import unittest

from e2e_lib import E2ETestCase

WORKER_ID_RE = re.compile(r"^gpu-\d{8}_\d{6}-[0-9a-f]{8}$")


class TestScaleUpAndDown(E2ETestCase):

    def test_scale_up_complete_then_idle_scale_down_to_min(self):
        self.config.update(MIN_ACTIVE_GPUS="1", MAX_ACTIVE_GPUS="4", TASKS_PER_GPU_THRESHOLD="3",
                           GPU_IDLE_TIMEOUT_SEC="3", WORKER_GRACE_PERIOD_SEC="1")
        self.start_fake()
        # HTTP workers: every other task's output goes through generate-upload-url + PUT, the
        # rest as base64 in complete_task.
        task_ids = [self.db.insert_task("generate", {"duration_sec": 1, "n": i,
                                                     "upload": i % 2 == 0})
                    for i in range(12)]

        # -- scale up: desired = min(4, max(1, 0 + ceil(12 / 3))) = 4 -------------------------
        first = self.cycle()
        self.assertEqual(first.status("queued"), 12, first.describe())
        self.assertEqual(first.status("desired"), 4, first.describe())
        self.assertEqual(first.action("workers_spawned"), 4, first.describe())
        self.assertTrue(first.events_named("scale.decision"), "no scale.decision event")
        self.assertEqual(len(first.events_named("pod.created")), 4)

        workers = self.db.workers()
        self.assertEqual(len(workers), 4)
        ids = sorted(w["id"] for w in workers)
        for w in workers:
            self.assertRegex(w["id"], WORKER_ID_RE)
            self.assertIn(w["status"], ("spawning", "active"))
            self.assertTrue(w["runpod_id"], "pod id not recorded for %s" % w["id"])

        posts = self.creates()
        self.assertEqual(len(posts), 4, "POST /v2/pods count")
        self.assertEqual(sorted(p["body"]["name"] for p in posts), ids,
                         "each pod is named after its worker row")
        for p in posts:
            env = p["body"].get("env") or {}
            self.assertEqual(env.get("WORKER_ID"), p["body"]["name"])
            self.assertNotIn("RUNPOD_API_KEY", env, "secrets must not reach the pods")
            if self.http_workers:
                # The pod reaches the gateway with a token of its own, and nothing else.
                self.assertEqual(env.get("WORKER_API_URL"), self.gateway.base_url)
                claims = jwt_claims(env.get("WORKER_TOKEN", ""))
                self.assertEqual((claims.get("sub"), claims.get("use")),
                                 (p["body"]["name"], "worker"), claims)
                self.assertNotIn("DATABASE_URL", env, "HTTP workers get no database access")
                self.assertNotIn("GATEWAY_JWT_SECRET", env)
            else:
                self.assertEqual(env.get("DATABASE_URL"), self.db.url,
                                 "WORKER_ENV_DATABASE_URL passed through as DATABASE_URL")

        # -- promotion on the first heartbeat -------------------------------------------------
        self.run_cycles_until(
            lambda: self.db.count_by_status("workers").get("active", 0) == 4,
            timeout=20, what="4 workers active")
        for w in self.db.workers():
            self.assertEqual(w["status"], "active")
            self.assertIsNotNone(w["promoted_at"], w["id"])
            self.assertIsNotNone(w["last_heartbeat"], w["id"])
            self.assertEqual(w["metadata"].get("vram_total_mb"), 24564, w["id"])
        promoted = {e.get("worker_id") for e in self.all_events("worker.promoted")}
        self.assertEqual(promoted, set(ids), "one worker.promoted event per worker")
        self.assertEqual(self.total_action("workers_promoted"), 4)

        # -- every task completes, no failures -------------------------------------------------
        self.run_cycles_until(
            lambda: self.db.count_by_status("tasks") == {"Complete": 12},
            timeout=30, what="12 tasks Complete")
        for t in self.db.tasks():
            self.assertEqual(t["attempts"], 0, t)
            self.assertIn(t["worker_id"], ids, t)
            if not self.http_workers:
                self.assertEqual(t["output_location"], "fake://output/%s" % t["id"])
                continue
            # The output was stored by the gateway under the task and is served back.
            prefix = "%s/storage/v1/object/public/image_uploads/system/tasks/%s/" % (
                self.gateway.base_url, t["id"])
            self.assertTrue(t["output_location"].startswith(prefix), t["output_location"])
            status, body = self.gateway.get(t["output_location"][len(self.gateway.base_url):])
            self.assertEqual(status, 200)
            self.assertEqual(body, ("fake output of %s\n" % t["id"]).encode() * 64)
        self.assertEqual(sorted(t["id"] for t in self.db.tasks()), sorted(task_ids))
        self.assertEqual(self.total_action("workers_failed"), 0)
        self.assertEqual(self.total_action("tasks_reset"), 0)
        self.assertEqual(len(self.creates()), 4, "no spawn beyond desired")

        # -- idle scale-down to MIN_ACTIVE_GPUS = 1 --------------------------------------------
        def scaled_down():
            c = self.db.count_by_status("workers")
            return c.get("active", 0) == 1 and c.get("terminated", 0) == 3 and \
                sum(c.values()) == 4

        self.run_cycles_until(scaled_down, timeout=30, what="3 idle workers terminated, 1 left")
        survivors = [w for w in self.db.workers() if w["status"] == "active"]
        self.assertEqual(len(survivors), 1)
        survivor = survivors[0]
        for w in self.db.workers():
            if w["id"] == survivor["id"]:
                continue
            self.assertEqual(w["end_kind"], "expected", "idle scale-down is expected: %s" % w)
            self.assertNotIn("error_reason", w["metadata"], w)
            self.assertEqual(len(self.deletes_of(w["runpod_id"])), 1,
                             "exactly one DELETE for the pod of %s" % w["id"])
        self.assertEqual(self.deletes_of(survivor["runpod_id"]), [])
        self.assertEqual(self.total_action("workers_terminated"), 3)
        terminated_events = {e.get("worker_id") for e in self.all_events("pod.terminated")}
        self.assertEqual(terminated_events, set(ids) - {survivor["id"]})

        # -- and no further: MIN_ACTIVE_GPUS holds across several idle timeouts -----------------
        n_deletes = len(self.fake.api_requests("DELETE"))

        def steady(res):
            self.assertEqual(res.status("active"), 1, res.describe())
            self.assertEqual(res.status("desired"), 1, res.describe())
            self.assertEqual(res.action("workers_spawned"), 0, res.describe())
            self.assertEqual(res.action("workers_terminated"), 0, res.describe())

        self.run_cycles_for(5, pause=0.5, check_each=steady)
        self.assertEqual(self.db.worker(survivor["id"])["status"], "active")
        self.assertEqual(len(self.fake.api_requests("DELETE")), n_deletes)
        self.assertEqual(len(self.creates()), 4)
        # The survivor keeps heartbeating (its pod was never touched).
        hb = self.db.worker(survivor["id"])["last_heartbeat"]
        time.sleep(1.2)
        self.assertGreater(self.db.worker(survivor["id"])["last_heartbeat"], hb)


def jwt_claims(token):
    """The payload of a JWT, unverified (the gateway's own tests check signatures)."""
    import base64
    import json
    try:
        part = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    except (IndexError, ValueError):
        return {}


class TestScaleUpAndDownHttp(TestScaleUpAndDown):
    """The same scenario with HTTP workers: the Headless-Wan2GP dialect through `orchestrator
    gateway` (issue 13), uploads both ways."""
    http_workers = True


if __name__ == "__main__":
    unittest.main()
