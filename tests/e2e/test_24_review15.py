"""Scenario 24: adversarial review of issue 15 (adaptive measures and `simulate`).

Each test reproduced a defect found in review and now holds its fix as a regression test:

  * restarted pods (WARM_STOPPED_PODS) are timed from restarted_at, not created_at, so their
    stopped time no longer inflates the measured cold start (and PREDICTIVE_SCALE_UP);
  * a task row with an infinite timestamp (a completed one with adaptive policies on, a Queued
    one with the defaults) is ignored, not a failed snapshot every cycle;
  * the median-duration lookup of a served run type with no completed task is a slice of the
    per-run-type index, not a walk of the global Complete index;
  * `simulate --from-db` skips a task created_at = 'infinity' (it used to segfault);
  * `simulate --trace` refuses a trace spanning over 366 days (exit 2) instead of running for days;
  * `simulate` on a burst (all tasks at t=0) is O(n log n) in the clairvoyant bound.

The first three build their state with SQL, with the user triggers disabled for the inserts
(the rows are ones the lifecycle produces: a worker restarted from stopped and promoted again; a
worker-written timestamp); they say so.
"""

import json
import os
import re
import subprocess
import tempfile
import time

from e2e_lib import BINARY, REPO, E2ETestCase, note


def measures_sql(run_types, pools, rate=600, warm=900, demote=1800):
    """SQL_SNAPSHOT_MEASURES from src/shell/db_snapshot.c with its parameters inlined."""
    src = open(os.path.join(REPO, "src", "shell", "db_snapshot.c")).read()
    m = re.search(r"SQL_SNAPSHOT_MEASURES\[\] =\n(.*?);\n", src, re.S)
    sql = "".join(re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(1))).replace('\\"', '"')
    return (sql.replace("$1::jsonb", "'%s'::jsonb" % json.dumps(run_types))
            .replace("$2::jsonb", "'%s'::jsonb" % json.dumps(pools))
            .replace("$3::int", str(rate)).replace("$4::int", str(warm))
            .replace("$5::int", str(demote)))


class Review15Measures(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.config.update(MIN_ACTIVE_GPUS="0", MAX_ACTIVE_GPUS="10",
                           TASKS_PER_GPU_THRESHOLD="1")
        self.start_fake()

    def completed_tasks(self, n, every_sec=90, run_type="gpu"):
        self.db.execute("ALTER TABLE tasks DISABLE TRIGGER USER")
        self.db.execute(
            "INSERT INTO tasks (task_type, status, run_type, created_at, generation_started_at,"
            " generation_processed_at) SELECT 'x', 'Complete', %s,"
            " now() - make_interval(secs => i * %s), now() - make_interval(secs => i * %s),"
            " now() - make_interval(secs => i * %s - 20) FROM generate_series(1, %s) i",
            (run_type, every_sec, every_sec, every_sec, n))
        self.db.execute("ALTER TABLE tasks ENABLE TRIGGER USER")

    def test_restarted_pods_timed_from_restart(self):
        # 20 workers created 5 h ago, stopped, restarted 10 min ago and promoted 20 s later
        # (orchestrator_restart_worker clears promoted_at and keeps created_at): their real
        # cold start is 20 s.
        self.db.execute("ALTER TABLE workers DISABLE TRIGGER USER")
        self.db.execute(
            "INSERT INTO workers (id, status, runpod_id, created_at, restarted_at, promoted_at,"
            " ended_at, end_kind, pool, gpu_type) SELECT 'gpu-r' || i, 'terminated', 'pod-r' || i,"
            " now() - interval '5 hours', now() - interval '10 minutes' - make_interval(secs => i),"
            " now() - interval '10 minutes' - make_interval(secs => i) + interval '20 seconds',"
            " now() - interval '1 minute', 'expected', 'default', 'NVIDIA GeForce RTX 4090'"
            " FROM generate_series(1, 20) i")
        self.db.execute("ALTER TABLE workers ENABLE TRIGGER USER")
        self.completed_tasks(6)  # 6 arrivals in the 600 s rate window, queue empty
        off = self.run_binary("plan")
        on = self.run_binary("plan", env_overrides={"PREDICTIVE_SCALE_UP": "true"})
        self.assertEqual(off.rc, 0, off.stderr[-2000:])
        self.assertEqual(on.rc, 0, on.stderr[-2000:])
        pool = on.summary["pools"][0]
        note("review15: restarted pods: predicted_backlog %s, to_spawn %s (off: %s)"
             % (pool["predicted_backlog"], on.status("to_spawn"), off.status("to_spawn")))
        # 6 arrivals / 600 s x a 20 s cold start = 0.2 task: at most one pod.
        self.assertLessEqual(on.status("to_spawn"), 1,
                             "restarted pods measured as hours-long cold starts: predicted %s"
                             % pool["predicted_backlog"])

    def test_infinite_processed_at_is_ignored(self):
        self.completed_tasks(3)
        self.db.execute("ALTER TABLE tasks DISABLE TRIGGER USER")
        self.db.execute(
            "INSERT INTO tasks (task_type, status, run_type, created_at, generation_started_at,"
            " generation_processed_at) VALUES ('x', 'Complete', 'gpu', now() - interval '1 hour',"
            " now() - interval '1 hour', 'infinity')")
        self.db.execute("ALTER TABLE tasks ENABLE TRIGGER USER")
        off = self.run_binary("plan")
        self.assertEqual(off.rc, 0, off.stderr[-2000:])
        on = self.run_binary("plan", env_overrides={"ADAPTIVE_IDLE_GRACE": "true"})
        self.assertEqual(on.rc, 0, "one task row with an infinite timestamp stops every cycle "
                         "once an adaptive policy is on:\n" + on.stderr[-1500:])

    def test_infinite_queued_created_at_is_ignored(self):
        # Pre-existing: Queued tasks created at +-infinity broke the default snapshot's
        # oldest-queued age; an In Progress one started at -infinity broke the stuck check.
        self.db.execute("ALTER TABLE tasks DISABLE TRIGGER USER")
        self.db.execute(
            "INSERT INTO tasks (task_type, status, run_type, created_at) VALUES"
            " ('x', 'Queued', 'gpu', 'infinity'), ('x', 'Queued', 'gpu', '-infinity'),"
            " ('x', 'Queued', 'gpu', now() - interval '30 seconds')")
        self.db.execute("ALTER TABLE tasks ENABLE TRIGGER USER")
        for env in ({}, {"PREDICTIVE_SCALE_UP": "true", "ADAPTIVE_WARM_POOL": "true"}):
            r = self.run_binary("plan", env_overrides=env)
            self.assertEqual(r.rc, 0, "Queued created_at = +-infinity (%s):\n%s"
                             % (env, r.stderr[-1500:]))
            self.assertGreaterEqual(r.status("to_spawn"), 1)

    def test_duration_median_is_an_index_slice(self):
        # 200,000 completed gpu tasks; the pool also serves `video`, which never completed one.
        self.db.execute("ALTER TABLE tasks DISABLE TRIGGER USER")
        self.db.execute(
            "INSERT INTO tasks (task_type, status, run_type, created_at, generation_started_at,"
            " generation_processed_at) SELECT 'x', 'Complete', 'gpu',"
            " now() - interval '3 days' + make_interval(secs => i),"
            " now() - interval '3 days' + make_interval(secs => i),"
            " now() - interval '3 days' + make_interval(secs => i + 30)"
            " FROM generate_series(1, 200000) i")
        self.db.execute("ALTER TABLE tasks ENABLE TRIGGER USER")
        self.db.execute("ANALYZE tasks")
        self.db.execute("SET jit = off")
        plan = self.db.scalar("EXPLAIN (ANALYZE, FORMAT JSON) "
                              + measures_sql(["gpu", "video"], ["default"]))
        if isinstance(plan, str):
            plan = json.loads(plan)
        worst = []

        def walk(node):
            if node.get("Relation Name") == "tasks":
                worst.append((node.get("Rows Removed by Filter", 0) * node.get("Actual Loops", 1),
                              node.get("Index Name"), node.get("Node Type")))
            for child in node.get("Plans", []):
                walk(child)
        walk(plan[0]["Plan"])
        removed, index, kind = max(worst)
        note("review15: measures statement: %.0f ms, worst tasks node %s %s removed %d rows"
             % (plan[0]["Execution Time"], kind, index, removed))
        self.assertLess(removed, 5000, "the measures statement read %d task rows to discard them "
                        "(%s on %s)" % (removed, kind, index))


class Review15Simulate(E2ETestCase):

    def sim(self, args, timeout, env=None):
        e = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        e.update({k: v for k, v in os.environ.items() if k.startswith(("ASAN_", "UBSAN_"))})
        e.update(env or {})
        started = time.monotonic()
        try:
            p = subprocess.run([BINARY, "simulate"] + args, env=e, capture_output=True,
                               timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return None, time.monotonic() - started, ""
        return p.returncode, time.monotonic() - started, p.stderr.decode("utf-8", "replace")

    def trace_file(self, text):
        f = tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, dir=self.log_dir)
        f.write(text)
        f.close()
        return f.name

    def test_from_db_skips_infinite_created_at(self):
        self.db.execute("ALTER TABLE tasks DISABLE TRIGGER USER")
        self.db.execute(
            "INSERT INTO tasks (task_type, status, run_type, created_at, generation_started_at,"
            " generation_processed_at) SELECT 'x', 'Complete', 'gpu',"
            " now() - make_interval(secs => i * 90), now() - make_interval(secs => i * 90),"
            " now() - make_interval(secs => i * 90 - 20) FROM generate_series(1, 6) i")
        self.db.execute("INSERT INTO tasks (task_type, status, run_type, created_at) VALUES"
                        " ('x', 'Queued', 'gpu', 'infinity')")
        self.db.execute("ALTER TABLE tasks ENABLE TRIGGER USER")
        rc, took, err = self.sim(["--from-db", "--since", "1d"], 120,
                                 {"DATABASE_URL": self.db.url})
        self.assertIn(rc, (0, 2, 4), "simulate --from-db exited %s on one created_at = "
                      "'infinity' row:\n%s" % (rc, err[-1500:]))

    def test_trace_span_is_capped(self):
        path = self.trace_file("arrival,duration\n0,10\n1000000000000,10\n")
        rc, took, err = self.sim(["--trace", path], 30)
        self.assertIsNotNone(rc, "a 2-task trace spanning 1e12 s was still simulating after 30 s "
                             "(about 1 s per 1e7 simulated s: ~30 hours)")
        self.assertEqual(rc, 2, err[-1500:])
        self.assertIn("at most 366 days", err)

    def test_burst_is_fast(self):
        # 400,000 tasks (SIM_TRACE_MAX is 2,000,000) all arriving at 0: sim_clairvoyant scans
        # every open pod for every task.
        path = self.trace_file("arrival,duration\n" + "0,60\n" * 400000)
        rc, took, err = self.sim(["--trace", path], 60)
        note("review15: 400k-task burst: rc %s after %.1f s" % (rc, took))
        self.assertIsNotNone(rc, "a 400,000-task burst was still simulating after 60 s")
