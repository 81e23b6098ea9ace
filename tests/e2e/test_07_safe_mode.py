"""Scenario 7: SAFE_MODE=true, `single --dry-run` and `plan` change nothing anywhere: every table
is identical before and after, and the fake RunPod saw no POST or DELETE (SPEC 3, 6, 8).

The state is built so that a real cycle would act on every front: a backlog to spawn for, a
spawning worker past its timeout, an active worker with a stale heartbeat holding a task, an
idle worker, a terminating worker without a task, and a leaked pod. Its rows are
inserted directly (no fake workers run, so nothing else writes while the commands run); the
pods they name are created in the fake beforehand through its API."""

import json
import unittest

from e2e_lib import E2ETestCase


class TestSafeMode(E2ETestCase):

    def _build_state(self):
        fake = self.start_fake(boot_worker=False)
        ids = {
            "spawn_old": "gpu-20260101_000000-0000000a",
            "stale": "gpu-20260101_000000-0000000b",
            "idle": "gpu-20260101_000000-0000000c",
            "draining": "gpu-20260101_000000-0000000d",
        }
        pods = {}
        for key, wid in ids.items():
            pods[key] = fake.inject_pod(wid, env={"WORKER_ID": wid}, age_sec=3600)["id"]
        # A leaked pod: our prefix, no worker row (reconcile would terminate it).
        fake.inject_pod("gpu-20260101_000000-0000000e", age_sec=3600)
        db = self.db
        for key, wid in ids.items():
            db.execute("INSERT INTO workers (id, status, runpod_id, created_at, metadata) "
                       "VALUES (%s, 'spawning', %s, now() - interval '1 hour', %s)",
                       (wid, pods[key], json.dumps({"vram_total_mb": 24564})))
        for key in ("stale", "idle", "draining"):
            db.execute("UPDATE workers SET status = 'active', last_heartbeat = now(), "
                       "promoted_at = now() - interval '50 minutes', "
                       "last_task_activity_at = now() - interval '40 minutes' WHERE id = %s",
                       (ids[key],))
        db.execute("UPDATE workers SET last_heartbeat = now() - interval '10 minutes' "
                   "WHERE id = %s", (ids["stale"],))
        db.execute("UPDATE workers SET status = 'terminating' WHERE id = %s",
                   (ids["draining"],))
        held = db.insert_task("generate", {"duration_sec": 1})
        db.execute("UPDATE tasks SET status = 'In Progress', worker_id = %s, "
                   "generation_started_at = now() - interval '9 minutes' WHERE id = %s",
                   (ids["stale"], held))
        for i in range(9):
            db.insert_task("generate", {"n": i})
        return fake, ids

    def test_safe_mode_dry_run_and_plan_change_nothing(self):
        self.config.update(MIN_ACTIVE_GPUS="1", MAX_ACTIVE_GPUS="6", TASKS_PER_GPU_THRESHOLD="1",
                           GPU_IDLE_TIMEOUT_SEC="60", SPAWNING_TIMEOUT_SEC="60",
                           GRACEFUL_SHUTDOWN_TIMEOUT_SEC="60", WORKER_GRACE_PERIOD_SEC="0",
                           RECONCILE_INTERVAL_SEC="1", ORPHAN_POD_GRACE_SEC="0")
        fake, ids = self._build_state()
        baseline_requests = len(fake.requests())
        before = self.db.dump()

        runs = [
            ("SAFE_MODE=true single", ("single",), {"SAFE_MODE": "true"}),
            ("SAFE_MODE=true without an API key", ("single",),
             {"SAFE_MODE": "true", "RUNPOD_API_KEY": None}),
            ("single --dry-run", ("single", "--dry-run"), {}),
            ("plan", ("plan",), {}),
        ]
        for label, args, env in runs:
            with self.subTest(run=label):
                res = self.run_binary(*args, env_overrides=env)
                self.assertEqual(res.rc, 0, "%s: exit %s\n%s" % (label, res.rc,
                                                                 res.stderr[-4000:]))
                if args[0] == "single":
                    s = res.summary
                    self.assertIsNotNone(s, "%s: no summary" % label)
                    if env.get("SAFE_MODE") == "true":
                        self.assertIs(s.get("safe_mode"), True, label)
                    if "--dry-run" in args:
                        self.assertIs(s.get("dry_run"), True, label)
                    # The would-be actions are reported, not taken.
                    plan = s.get("plan") or []
                    self.assertTrue(plan, "%s: empty plan for a state that needs action" % label)
                    for p in plan:
                        self.assertTrue(p.get("action") and p.get("reason"),
                                        "%s: every planned action has a reason: %s" % (label, p))
                    kinds = {p.get("action") for p in plan}
                    self.assertGreaterEqual(len(kinds), 3, "%s: plan %s" % (label, plan))
                    planned_workers = {p.get("worker_id") for p in plan}
                    for key in ("spawn_old", "stale", "draining"):
                        self.assertIn(ids[key], planned_workers,
                                      "%s: no planned action for the %s worker" % (label, key))
                    for k in ("workers_spawned", "workers_terminated", "workers_failed",
                              "tasks_reset", "workers_promoted"):
                        self.assertEqual(res.action(k), 0, "%s: %s" % (label, res.describe()))
                    self.assertFalse(res.events_named("pod.created"), label)
                    self.assertFalse(res.events_named("pod.terminated"), label)
                after = self.db.dump()
                self.assertEqual(diff_dumps(before, after), [], "%s wrote to the database"
                                 % label)
                mutating = [r for r in fake.requests()[baseline_requests:]
                            if r["method"] not in ("GET", "HEAD")]
                self.assertEqual(mutating, [], "%s called a mutating API" % label)

        # Control: a real cycle on the same state does act (the state was worth guarding).
        res = self.cycle(ok_codes=(0, 6))
        self.assertGreater(res.action("workers_failed") + res.action("workers_terminated")
                           + res.action("workers_spawned"), 0, res.describe())
        self.assertNotEqual(diff_dumps(before, self.db.dump()), [])


def diff_dumps(a, b):
    out = []
    for t in sorted(set(a) | set(b)):
        ra, rb = a.get(t, []), b.get(t, [])
        if ra != rb:
            gone = [r for r in ra if r not in rb]
            new = [r for r in rb if r not in ra]
            out.append("%s: -%s +%s" % (t, gone[:3], new[:3]))
    return out


if __name__ == "__main__":
    unittest.main()
