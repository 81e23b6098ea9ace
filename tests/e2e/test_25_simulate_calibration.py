"""Calibration of the policy lab (issue 15): a real run against the fake RunPod and fake workers,
replayed through `orchestrator simulate --from-db` with the same settings, must agree with what
happened: pods created and peak fleet within one pod, every task's completion time within a few
seconds. A simulator that is not checked against the system is only a story.

The real run is `orchestrator continuous --interval 1` (NOTIFY on, as the simulator models it)
while a scripted trace is submitted in three waves; the simulation gets the fake worker's claim
poll (0.2 s) and heartbeat (0.5 s), no capacity failures, no crashes, and the cold starts and
prices it measures from the workers table. The figures are printed for the closing note
(`e2e calibration: ...`).
"""

import json
import os
import signal
import subprocess
import time

from e2e_lib import BINARY, E2ETestCase, wait_until

# (offset from the first wave in seconds, number of tasks, duration of each in seconds)
WAVES = [(0.0, 8, 3.0), (9.0, 6, 2.0), (18.0, 2, 4.0)]

# Tolerances: the simulator ignores the real cycle's own duration (tens to hundreds of ms on
# this machine, more under ASan), python start-up jitter of the fake workers and the heartbeat
# that tells a fake worker it was promoted (up to 0.5 s): seconds, not tens of seconds.
PODS_TOLERANCE = 1
PEAK_TOLERANCE = 1
MEAN_COMPLETION_TOLERANCE_SEC = 3.0
MAX_COMPLETION_TOLERANCE_SEC = 8.0


class SimulateCalibration(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.config.update({
            "MIN_ACTIVE_GPUS": "1",
            "MAX_ACTIVE_GPUS": "4",
            "TASKS_PER_GPU_THRESHOLD": "2",
            "GPU_IDLE_TIMEOUT_SEC": "4",
            "WORKER_GRACE_PERIOD_SEC": "2",
            "SPAWNING_TIMEOUT_SEC": "30",
            "ORCHESTRATOR_POLL_SEC": "1",
            "RECONCILE_INTERVAL_SEC": "10",
            "ENABLE_NOTIFY_WAKEUP": "true",
        })

    def fleet(self):
        return self.db.one(
            "SELECT count(*) FILTER (WHERE status = 'active') AS active, "
            "count(*) FILTER (WHERE status IN ('spawning', 'terminating', 'error')) AS moving "
            "FROM workers")

    def test_replay_matches_the_recorded_run(self):
        self.start_fake()
        handle = self.spawn_binary("continuous", "--interval", "1")
        proc = handle[0]
        try:
            self.assertTrue(wait_until(lambda: self.fleet()["active"] == 1 and
                                       self.fleet()["moving"] == 0, 60),
                            "MIN_ACTIVE_GPUS=1 never became one active worker")
            time.sleep(1)
            t0 = time.monotonic()
            for offset, n, duration in WAVES:
                delay = t0 + offset - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                # One statement per wave: one NOTIFY, as a burst of submissions gives.
                self.db.execute(
                    "INSERT INTO tasks (task_type, params) SELECT 'calibrate', "
                    "jsonb_build_object('duration_sec', %s) FROM generate_series(1, %s)",
                    (duration, n))
            total = sum(n for _, n, _ in WAVES)
            self.assertTrue(wait_until(
                lambda: self.db.scalar("SELECT count(*) FROM tasks WHERE status = 'Complete'")
                == total, 120), "the recorded run did not complete its tasks")
            self.assertTrue(wait_until(lambda: self.fleet()["active"] == 1 and
                                       self.fleet()["moving"] == 0, 90),
                            "the fleet did not settle back to MIN_ACTIVE_GPUS")
        finally:
            proc.send_signal(signal.SIGTERM)
            res = self.finish_binary(handle, timeout=60)
        self.assertEqual(res.rc, 0, res.stderr[-3000:])

        env = self.env(SIM_WORKER_POLL_SEC="0.2", SIM_HEARTBEAT_SEC="0.5",
                       SIM_WORKER_POLL_AFTER_TASK_SEC="0.05", SIM_NO_CAPACITY="0",
                       SIM_CRASH_AT_START="0", SIM_DRAIN_SEC="60")
        trace_csv = os.path.join(self.log_dir, "calibration_trace.csv")
        p = subprocess.run([BINARY, "simulate", "--from-db", "--since", "10m", "--json",
                            "--export-trace", trace_csv], env=env, capture_output=True,
                           timeout=120)
        self.assertEqual(p.returncode, 0, p.stderr.decode()[-3000:])
        report = json.loads(p.stdout)
        with open(os.path.join(self.log_dir, "calibration.json"), "w") as f:
            json.dump(report, f, indent=1)
        rec = report["recorded"]
        run = report["runs"][0]
        sim = run["total"]
        cal = run["calibration"]
        total = sum(n for _, n, _ in WAVES)
        print("\ne2e calibration: recorded pods created %d, peak fleet %d, last completion %.1f s;"
              " simulated pods created %d, peak fleet %d, last completion %.1f s; completion"
              " |sim - real| mean %.2f s, max %.2f s over %d tasks (tolerance: pods +-%d, peak"
              " +-%d, mean %.1f s, max %.1f s)"
              % (rec["pods_created"], rec["peak_fleet"], rec["last_completion_sec"],
                 sim["pods_created"], sim["peak_fleet"], cal["last_completion_sec"],
                 cal["completion_mean_abs_diff_sec"], cal["completion_max_abs_diff_sec"],
                 cal["tasks_compared"], PODS_TOLERANCE, PEAK_TOLERANCE,
                 MEAN_COMPLETION_TOLERANCE_SEC, MAX_COMPLETION_TOLERANCE_SEC), flush=True)

        self.assertEqual(rec["completed"], total)
        self.assertEqual(sim["completed"], total)
        self.assertEqual(cal["tasks_compared"], total)
        self.assertGreaterEqual(rec["pods_created"], 1, "the waves needed more than MIN")
        self.assertLessEqual(abs(sim["pods_created"] - rec["pods_created"]), PODS_TOLERANCE)
        self.assertLessEqual(abs(sim["peak_fleet"] - rec["peak_fleet"]), PEAK_TOLERANCE)
        self.assertLessEqual(cal["completion_mean_abs_diff_sec"], MEAN_COMPLETION_TOLERANCE_SEC)
        self.assertLessEqual(cal["completion_max_abs_diff_sec"], MAX_COMPLETION_TOLERANCE_SEC)
