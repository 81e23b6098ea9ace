"""Scenario 22 (issue 17 items 3 and 4): `orchestrator explain` and `submit --wait`.

explain: every reason it can give is set up and asserted in both the text and the --json form
(queue position, retry backoff, each kind of dependency, no pool, pool at MAX, fleet ceiling,
circuit breaker, GPU capacity backoff, spend cap, workers booting with the expected wait from
measured boot times, no recent cycle, an idle worker about to claim, In Progress, Complete,
Failed), then `explain --fleet`, the exit codes of bad input (2) and of a database error (4),
and that explain writes nothing and calls no RunPod endpoint.

The explain scenarios build the state with SQL in the test's own database (workers inserted as
spawning and moved through the legal transitions, as the state machine demands): explain is
read-only, so what matters is that it reads that state with the planner's rules.

submit --wait: exit 0 with fake workers completing the tasks, 1 with a failing task, 124 with a
short timeout, 130 on SIGINT with the task left queued; the polling fallback with LISTEN off
(--no-listen and ENABLE_NOTIFY_WAKEUP=false) and behind a real PgBouncer in transaction mode.
Each wait's reaction time (task ended -> submit exited) is printed ("explain:" lines)."""

import calendar
import json
import os
import re
import signal
import time
import unittest
import uuid

from e2e_lib import E2ETestCase, note, wait_until
from pgbouncer import PgBouncer

GPU = "NVIDIA GeForce RTX 4090"  # RUNPOD_GPU_TYPE's default


class ExplainCase(E2ETestCase):
    """Helpers: build fleet state with SQL, run explain in both forms."""

    def setUp(self):
        super().setUp()
        self.config.update(MIN_ACTIVE_GPUS="0", MAX_ACTIVE_GPUS="4", TASKS_PER_GPU_THRESHOLD="1")
        self.cycled()

    # -- state --------------------------------------------------------------------------------

    def cycled(self):
        """A cycle succeeded just now (so no_recent_cycle does not show)."""
        self.db.execute("UPDATE orchestrator_state SET last_success_at = now(), "
                        "last_cycle_number = 1")

    def worker(self, wid, status="active", age=600, boot=40, cost=None, pool="default"):
        """A worker row moved through legal transitions; an active one heartbeats now."""
        self.db.execute(
            "INSERT INTO workers (id, status, runpod_id, created_at, pool, gpu_type, cost_per_hr,"
            " metadata) VALUES (%s, 'spawning', %s, now() - make_interval(secs => %s), %s, %s,"
            " %s, '{\"vram_total_mb\": 24000}')",
            (wid, "pod-" + wid, age, pool, GPU, cost))
        if status == "spawning":
            return wid
        self.db.execute("UPDATE workers SET status = 'active', last_heartbeat = now(),"
                        " last_task_activity_at = now(),"
                        " promoted_at = created_at + make_interval(secs => %s) WHERE id = %s",
                        (boot, wid))
        if status == "failed":  # ended unexpectedly (the breaker counts it)
            self.db.execute("UPDATE workers SET status = 'error' WHERE id = %s", (wid,))
            self.db.execute("UPDATE workers SET status = 'terminated' WHERE id = %s", (wid,))
        elif status == "terminated":
            self.db.execute("UPDATE workers SET status = 'terminating' WHERE id = %s", (wid,))
            self.db.execute("UPDATE workers SET status = 'terminated' WHERE id = %s", (wid,))
        return wid

    def held_task(self, wid, run_type="gpu"):
        return self.db.scalar(
            "INSERT INTO tasks (task_type, run_type, status, worker_id, generation_started_at)"
            " VALUES ('generate', %s, 'In Progress', %s, now() - interval '42 seconds')"
            " RETURNING id::text", (run_type, wid))

    def dependent(self, deps, **cols):
        """A Queued task whose dependant_on lists deps."""
        names = ["task_type", "dependant_on"] + list(cols)
        return self.db.scalar("INSERT INTO tasks (%s) VALUES ('generate', %%s::uuid[]%s)"
                              " RETURNING id::text" % (", ".join(names),
                                                       ", %s" * len(cols)),
                              [deps] + list(cols.values()))

    def queued(self, n=1, **cols):
        return [self.db.insert_task("generate", {"n": i}, **cols) for i in range(n)]

    # -- explain ------------------------------------------------------------------------------

    def explain(self, *args, rc=0, env=None):
        """Runs explain ARGS in text and in --json; returns (text, document)."""
        text = self.run_binary("explain", *args, env_overrides=env)
        self.assertEqual(text.rc, rc, "explain %s: rc %s\n%s\n%s" % (args, text.rc, text.stdout,
                                                                    text.stderr))
        js = self.run_binary("explain", *args, "--json", env_overrides=env)
        self.assertEqual(js.rc, rc, js.stderr)
        return text.stdout, (json.loads(js.stdout) if rc == 0 else None)

    def codes(self, doc):
        return [r["code"] for r in doc["reasons"]]

    def assert_reason(self, task_id, code, *fragments, env=None):
        """The reason `code` is listed for task_id in the text and in the JSON, with each
        fragment in its detail. Returns (text, doc, reason)."""
        text, doc = self.explain(task_id, env=env)
        self.assertIn(code, self.codes(doc), "reasons: %s" % json.dumps(doc["reasons"], indent=1))
        reason = [r for r in doc["reasons"] if r["code"] == code][0]
        self.assertRegex(text, r"\n  \d+\. %s: " % re.escape(code), text)
        for f in fragments:
            self.assertIn(f, reason["detail"])
            self.assertIn(f, text)
        self.assertEqual(doc["task"]["id"], task_id)
        return text, doc, reason


class TestExplainTask(ExplainCase):

    def test_queue_position_and_next_scale_up(self):
        ids = self.queued(3)
        text, doc, r = self.assert_reason(ids[2], "queue_position", "position 3", "2 ahead")
        self.assertEqual(doc["task"]["position"], 3)
        self.assertTrue(doc["task"]["claimable"])
        self.assertEqual(doc["task"]["status"], "Queued")
        self.assertEqual(doc["pool"]["pool"], "default")
        self.assertEqual(doc["pool"]["desired"], 3)
        self.assert_reason(ids[2], "scale_up_next_cycle", "spawns 3 workers")
        self.assertIn("why it is not running (most decisive first):", text)

    def test_retry_backoff(self):
        tid = self.db.insert_task("generate", {}, attempts=1,
                                  available_at=self.db.scalar("SELECT now() + interval '300 s'"),
                                  error_message="CUDA out of memory")
        _, doc, r = self.assert_reason(tid, "retry_backoff", "attempt 1 of 3", "CUDA out of memory")
        self.assertTrue(290 <= r["wait_sec"] <= 300, r)
        self.assertFalse(doc["task"]["claimable"])
        self.assertNotIn("queue_position", self.codes(doc))

    def test_dependencies_pending_missing_failed(self):
        parent = self.queued(1)[0]
        failed = self.db.insert_task("generate", {}, status="Failed")
        done = self.db.insert_task("generate", {}, status="Complete")
        ghost = str(uuid.uuid4())
        tid = self.dependent([parent, failed, done, ghost])
        _, doc, _ = self.assert_reason(tid, "dependency_pending", parent + " (Queued)")
        self.assert_reason(tid, "dependency_missing", ghost)
        self.assert_reason(tid, "dependency_failed", failed + " (Failed)", "never be claimed")
        codes = self.codes(doc)
        self.assertEqual(codes[:3], ["dependency_failed", "dependency_missing",
                                     "dependency_pending"], "most decisive first")
        deps = {d["id"]: d["status"] for d in doc["task"]["dependencies"]}
        self.assertEqual(deps, {parent: "Queued", failed: "Failed", done: "Complete",
                                ghost: None})

    def test_no_pool_serves_its_run_type(self):
        tid = self.queued(1, run_type="audio")[0]
        _, doc, _ = self.assert_reason(tid, "no_pool", "run_type 'audio'", "default serves gpu")
        self.assertIsNone(doc["task"]["pool"])
        self.assertIsNone(doc["pool"])
        self.assertEqual(self.codes(doc)[0], "no_pool")

    def test_pool_at_max(self):
        self.config.update(MAX_ACTIVE_GPUS="1")
        self.held_task(self.worker("gpu-busy-1"))
        tid = self.queued(2)[1]
        _, doc, _ = self.assert_reason(tid, "pool_at_max", "MAX_ACTIVE_GPUS 1",
                                       "demand wants 3 workers")
        self.assertIn("max_active_gpus", doc["pool"]["limits"])
        self.assertEqual(doc["pool"]["wanted"], 3)
        self.assertEqual(doc["pool"]["desired"], 1)

    def test_fleet_ceiling_shared_between_pools(self):
        self.config.update(POOLS="video,image", MAX_ACTIVE_GPUS="2",
                           POOL_VIDEO_MAX_ACTIVE_GPUS="4", POOL_IMAGE_MAX_ACTIVE_GPUS="4")
        self.queued(3, run_type="image")
        tid = self.queued(3, run_type="video")[2]
        _, doc, _ = self.assert_reason(tid, "fleet_ceiling", "MAX_ACTIVE_GPUS 2",
                                       "pool video gets 1 of the 3")
        self.assertEqual(doc["task"]["pool"], "video")
        self.assertIn("fleet_ceiling", doc["pool"]["limits"])

    def test_circuit_breaker_open(self):
        self.config.update(MIN_WORKERS_FOR_RATE_CHECK="3", MAX_WORKER_FAILURE_RATE="0.5")
        for k in range(3):
            self.worker("gpu-crashed-%d" % k, status="failed")
        tid = self.queued(1)[0]
        _, doc, _ = self.assert_reason(tid, "circuit_breaker", "3 of 3 workers",
                                       "ended unexpectedly")
        self.assertTrue(doc["pool"]["breaker_open"])

    def test_every_gpu_type_in_capacity_backoff(self):
        self.db.execute("INSERT INTO gpu_capacity_backoff (gpu_type, failures, last_failure_at,"
                        " backoff_until) VALUES (%s, 2, now(), now() + interval '600 s')", (GPU,))
        tid = self.queued(1)[0]
        _, doc, r = self.assert_reason(tid, "gpu_capacity_backoff", GPU, "2 failures")
        self.assertTrue(590 <= r["wait_sec"] <= 600, r)
        self.assertEqual(doc["pool"]["gpu_types_available"], [])

    def test_spend_cap(self):
        self.config.update(MAX_HOURLY_SPEND_USD="1.00")
        self.db.execute("INSERT INTO gpu_prices (gpu_type, cloud_type, cost_per_hr)"
                        " VALUES (%s, 'SECURE', 0.80)", (GPU,))
        self.held_task(self.worker("gpu-busy-1", cost=0.80))
        tid = self.queued(1)[0]
        _, doc, _ = self.assert_reason(tid, "spend_cap", "MAX_HOURLY_SPEND_USD",
                                       "$1.00/h", "allows 0 more pods")
        self.assertIn("spend_cap", doc["pool"]["limits"])
        self.assertEqual(doc["pool"]["spend_room"], 0)

    def test_fleet_booting_with_measured_boot_time(self):
        # Boot times of past workers: 40 s, 50 s, 60 s (median 50 s, p90 58 s).
        for k, boot in enumerate((40, 50, 60)):
            self.worker("gpu-old-%d" % k, status="terminated", age=3600, boot=boot)
        self.worker("gpu-booting-1", status="spawning", age=20)
        tid = self.queued(1)[0]
        _, doc, r = self.assert_reason(tid, "fleet_booting", "1 worker of pool default is booting",
                                       "median 50s, p90 58s", "last 3 workers")
        self.assertTrue(28 <= r["wait_sec"] <= 30, r)  # 50 s median - 20 s already booting
        self.assertEqual(doc["pool"]["boot"]["samples"], 3)
        self.assertAlmostEqual(doc["pool"]["boot"]["median_sec"], 50, delta=0.5)

    def test_no_recent_cycle(self):
        self.db.execute("UPDATE orchestrator_state SET last_success_at = NULL")
        tid = self.queued(1)[0]
        _, doc, _ = self.assert_reason(tid, "no_recent_cycle", "no cycle has ever succeeded")
        self.db.execute("UPDATE orchestrator_state SET last_success_at = now() - "
                        "interval '1 hour'")
        self.assert_reason(tid, "no_recent_cycle", "last successful cycle was 3600s ago")

    def test_idle_worker_claims_it_soon(self):
        self.worker("gpu-idle-1")
        tid = self.queued(1)[0]
        _, doc, r = self.assert_reason(tid, "claim_imminent", "1 idle worker")
        self.assertEqual(self.codes(doc), ["claim_imminent"])

    def test_running_complete_failed(self):
        wid = self.worker("gpu-busy-1")
        tid = self.held_task(wid)
        text, doc, _ = self.assert_reason(tid, "running", "In Progress on worker gpu-busy-1",
                                          "(active) for 4")
        self.assertEqual(doc["task"]["worker_id"], wid)
        self.assertTrue(42 <= doc["task"]["running_sec"] <= 50)
        self.assertIn("what happened:", text)
        done = self.db.insert_task("generate", {}, status="Complete",
                                   output_location="s3://bucket/out.mp4")
        _, doc, _ = self.assert_reason(done, "complete", "s3://bucket/out.mp4")
        self.assertEqual(doc["task"]["output_location"], "s3://bucket/out.mp4")
        failed = self.db.insert_task("generate", {}, status="Failed", attempts=3,
                                     error_message="CUDA out of memory")
        self.assert_reason(failed, "failed", "3 of 3 attempts", "CUDA out of memory")
        cancelled = self.db.insert_task("generate", {}, status="Cancelled")
        self.assert_reason(cancelled, "cancelled", "it will not run")

    def test_unsafe_snapshot(self):
        # More live worker rows than a cycle sees (SNAP_WORKERS_MAX = 1024): cycles act on
        # nothing, and explain says so first among the fleet's reasons.
        self.db.execute("INSERT INTO workers (id, status) SELECT 'gpu-row-' || g, 'spawning'"
                        " FROM generate_series(1, 1025) g")
        tid = self.queued(1)[0]
        _, doc, _ = self.assert_reason(tid, "unsafe_snapshot", "more live worker rows")
        self.assertEqual(self.codes(doc), ["unsafe_snapshot"])

    def test_several_reasons_most_decisive_first(self):
        self.config.update(MIN_WORKERS_FOR_RATE_CHECK="3", MAX_WORKER_FAILURE_RATE="0.5")
        for k in range(3):
            self.worker("gpu-crashed-%d" % k, status="failed")
        parent = self.queued(1)[0]
        tid = self.dependent([parent], attempts=1,
                             available_at=self.db.scalar("SELECT now() + interval '60 s'"))
        _, doc = self.explain(tid)
        self.assertEqual(self.codes(doc), ["dependency_pending", "retry_backoff",
                                           "circuit_breaker"])


class TestExplainFleetAndErrors(ExplainCase):

    def test_fleet_pool_by_pool(self):
        self.config.update(POOLS="video,image", MAX_ACTIVE_GPUS="3",
                           POOL_VIDEO_MAX_ACTIVE_GPUS="2", POOL_IMAGE_MIN_ACTIVE_GPUS="1",
                           POOL_VIDEO_TASKS_PER_GPU_THRESHOLD="2")
        self.db.execute("INSERT INTO gpu_capacity_backoff (gpu_type, failures, last_failure_at,"
                        " backoff_until) VALUES (%s, 1, now(), now() + interval '60 s')", (GPU,))
        self.queued(6, run_type="video")
        self.queued(2, run_type="audio")
        text, doc = self.explain("--fleet")
        self.assertEqual(set(doc), {"fleet", "reasons", "pools", "unserved"})
        self.assertEqual(doc["fleet"]["max"], 3)
        pools = {p["pool"]: p for p in doc["pools"]}
        self.assertEqual(set(pools), {"video", "image"})
        video = pools["video"]
        self.assertEqual((video["wanted"], video["desired"], video["desired_by"]),
                         (3, 2, "backlog"))
        self.assertEqual(sorted(video["limits"]), ["gpu_capacity_backoff", "max_active_gpus"])
        vcodes = [r["code"] for r in video["reasons"]]
        self.assertEqual(vcodes[0], "pool_size")
        self.assertIn("gpu_capacity_backoff", vcodes)
        self.assertIn("pool_at_max", vcodes)
        self.assertEqual(pools["image"]["desired_by"], "min_floor")
        self.assertEqual(doc["unserved"], {"queued": 2, "run_types": ["audio"]})
        self.assertIn("unserved_run_types", self.codes(doc))
        for fragment in ("fleet: desired", "pool video: desired 2", "pool image: desired 1",
                         "pool_size: pool video: desired 2 = busy 0 + ceil(6 claimable / "
                         "TASKS_PER_GPU_THRESHOLD 2) = 3, capped at its MAX",
                         "unserved_run_types: 2 queued tasks"):
            self.assertIn(fragment, text)

    def test_bad_input_and_database_errors(self):
        unknown = str(uuid.uuid4())
        res = self.run_binary("explain", unknown)
        self.assertEqual(res.rc, 2, res.stderr)
        self.assertIn("no task has the id %s" % unknown, res.stderr)
        res = self.run_binary("explain", "not-a-uuid", "--json")
        self.assertEqual(res.rc, 2)
        self.assertIn("'not-a-uuid' is not a task id", res.stderr)
        for args in ((), ("--fleet", unknown), (unknown, "--bogus")):
            res = self.run_binary("explain", *args)
            self.assertEqual(res.rc, 2, (args, res.stderr))
            self.assertIn("usage: orchestrator explain TASK_ID | --fleet", res.stderr)
        self.assertEqual(res.stdout, "")
        # A database that does not exist: exit 4, like every command.
        url = self.db.url.replace(self.db_name, self.db_name + "_nope")
        res = self.run_binary("explain", unknown, env_overrides={"DATABASE_URL": url})
        self.assertEqual(res.rc, 4, res.stderr)
        res = self.run_binary("explain", "--fleet", env_overrides={"DATABASE_URL": url})
        self.assertEqual(res.rc, 4, res.stderr)

    def test_explain_writes_nothing_and_calls_no_runpod_endpoint(self):
        self.start_fake(boot_worker=False)
        self.held_task(self.worker("gpu-busy-1"))
        ids = self.queued(3)
        before = self.db.dump()
        self.explain(ids[0])
        self.explain("--fleet")
        self.explain(ids[2], env={"SAFE_MODE": "true", "RUNPOD_API_KEY": None})
        self.assertEqual(self.db.dump(), before, "explain wrote to the database")
        self.assertEqual(self.fake.api_requests(), [], "explain called the RunPod API")

    def test_latency_on_10k_queued_tasks(self):
        self.db.execute("INSERT INTO tasks (task_type, params, created_at)"
                        " SELECT 'generate', '{}', now() - make_interval(secs => 20000 - g)"
                        " FROM generate_series(1, 10000) g")
        last = self.db.scalar("SELECT id::text FROM tasks ORDER BY created_at DESC LIMIT 1")
        self.db.execute("ANALYZE tasks")
        times = []
        for _ in range(5):
            t0 = time.monotonic()
            res = self.run_binary("explain", last, "--json")
            times.append(time.monotonic() - t0)
            self.assertEqual(res.rc, 0, res.stderr)
        doc = json.loads(res.stdout)
        self.assertEqual(doc["task"]["position"], 10000)
        times.sort()
        note("explain: latency at 10,000 queued tasks (whole process): median %.0f ms, max "
             "%.0f ms" % (1000 * times[2], 1000 * times[-1]))
        self.assertLess(times[2], 2.0)


# ------------------------------------------------------------------------------------------------
# submit --wait


class TestSubmitWait(E2ETestCase):

    def setUp(self):
        super().setUp()
        self.config.update(MIN_ACTIVE_GPUS="0", MAX_ACTIVE_GPUS="2", TASKS_PER_GPU_THRESHOLD="1",
                           GPU_IDLE_TIMEOUT_SEC="30", WORKER_GRACE_PERIOD_SEC="30")

    def wait_with_cycles(self, *args, env=None, timeout=60):
        """Starts `submit ARGS --wait`, runs cycles until it exits; returns its result."""
        handle = self.spawn_binary("submit", *args, env_overrides=env)
        proc = handle[0]
        deadline = time.monotonic() + timeout
        while proc.poll() is None and time.monotonic() < deadline:
            self.cycle(ok_codes=(0, 6))
            time.sleep(0.3)
        return self.finish_binary(handle, timeout=10)

    def wait_done(self, res):
        events = [e for e in res.events if e.get("event") == "submit.wait_done"]
        self.assertEqual(len(events), 1, res.stderr)
        return events[0]

    def reaction_ms(self, res, task_ids):
        """Milliseconds from the last task's end (its generation_processed_at, the database
        clock of this machine) to the wait's end (the time of its submit.wait_done event)."""
        ended = self.db.scalar("SELECT extract(epoch FROM max(generation_processed_at))"
                               " FROM tasks WHERE id = ANY(%s::uuid[])", (task_ids,))
        stamp = self.wait_done(res)["time"]
        done = calendar.timegm(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) + \
            float("0" + stamp[19:].rstrip("Z"))
        return 1000 * (done - float(ended))

    def test_exit_0_all_complete_with_listen(self):
        self.start_fake()
        res = self.wait_with_cycles("--type", "generate", "--params", '{"duration_sec": 0.5}',
                                    "--wait", "--timeout", "60")
        self.assertEqual(res.rc, 0, res.stderr)
        lines = res.stdout.strip().splitlines()
        tid = lines[0]
        self.assertEqual(lines[1], "%s Complete fake://output/%s" % (tid, tid))
        self.assertIn("waiting for 1 task to end (LISTEN, and polling every 2 s", res.stderr)
        done = self.wait_done(res)
        self.assertEqual((done["listen"], done["complete"], done["exit_code"]), ("true", 1, 0))
        self.assertGreaterEqual(done["notifications"], 1, "the NOTIFY woke the wait")
        ms = self.reaction_ms(res, [tid])
        note("explain: submit --wait reaction with LISTEN: %.0f ms (task ended -> exit)" % ms)
        self.assertLess(ms, 1500)
        # Boot times are measured from the workers that ran: --fleet shows them.
        fleet = json.loads(self.run_binary("explain", "--fleet", "--json").stdout)
        self.assertGreaterEqual(fleet["pools"][0]["boot"]["samples"], 1)

    def test_exit_1_when_a_task_fails_json(self):
        self.start_fake()
        res = self.wait_with_cycles("--type", "generate", "--params", '{"fail": true}',
                                    "--max-attempts", "1", "--wait", "--json")
        self.assertEqual(res.rc, 1, res.stderr)
        docs = [json.loads(line) for line in res.stdout.strip().splitlines()]
        tid = docs[0]["ids"][0]
        self.assertEqual(docs[1], {"id": tid, "status": "Failed", "output_location": "",
                                   "error_message": "fake failure"})
        self.assertEqual(docs[2]["waited"], {"tasks": 1, "complete": 0, "failed": 1,
                                             "cancelled": 0, "missing": 0, "pending": 0,
                                             "exit_code": 1})
        self.assertIn("every task ended, 1 not Complete (1 Failed", res.stderr)

    def test_exit_124_on_timeout_task_stays_queued(self):
        started = time.monotonic()
        res = self.run_binary("submit", "--type", "generate", "--wait", "--timeout", "2")
        elapsed = time.monotonic() - started
        self.assertEqual(res.rc, 124, res.stderr)
        tid = res.stdout.strip().splitlines()[0]
        self.assertIn("timed out after 2s: 1 of 1 tasks have not ended", res.stderr)
        self.assertIn("%s Queued" % tid, res.stderr)
        self.assertIn("orchestrator explain ID", res.stderr)
        self.assertEqual(self.db.task(tid)["status"], "Queued")
        self.assertTrue(2.0 <= elapsed < 6.0, elapsed)

    def test_sigint_stops_waiting_and_leaves_the_task_queued(self):
        handle = self.spawn_binary("submit", "--type", "generate", "--wait")
        self.assertTrue(wait_until(lambda: self.db.scalar("SELECT count(*) FROM tasks") == 1, 10))
        time.sleep(0.5)
        handle[0].send_signal(signal.SIGINT)
        res = self.finish_binary(handle, timeout=10)
        self.assertEqual(res.rc, 130, res.stderr)
        self.assertIn("stopped waiting (SIGINT)", res.stderr)
        self.assertIn("they stay queued and still run", res.stderr)
        self.assertEqual(self.db.scalar("SELECT status::text FROM tasks"), "Queued")
        handle = self.spawn_binary("submit", "--type", "generate", "--wait")
        time.sleep(1.0)
        handle[0].send_signal(signal.SIGTERM)
        self.assertEqual(self.finish_binary(handle, timeout=10).rc, 143)

    def test_usage_errors(self):
        for args, msg in ((("--type", "g", "--timeout", "5"), "go with --wait"),
                          (("--type", "g", "--no-listen"), "go with --wait"),
                          (("--type", "g", "--wait", "--timeout", "soon"), "--timeout needs"),
                          (("--type", "g", "--wait", "--timeout", "0"), "--timeout needs")):
            res = self.run_binary("submit", *args)
            self.assertEqual(res.rc, 2, (args, res.stderr))
            self.assertIn(msg, res.stderr)
        self.assertEqual(self.db.scalar("SELECT count(*) FROM tasks"), 0)

    def polling_only(self, env=None, extra=()):
        self.start_fake()
        res = self.wait_with_cycles("--type", "generate", "--params", '{"duration_sec": 0.5}',
                                    "--wait", *extra, env=env)
        self.assertEqual(res.rc, 0, res.stderr)
        tid = res.stdout.strip().splitlines()[0]
        done = self.wait_done(res)
        return res, tid, done

    def test_polling_fallback_without_listen(self):
        res, tid, done = self.polling_only(extra=("--no-listen",))
        self.assertEqual((done["listen"], done["notifications"]), ("false", 0))
        self.assertGreaterEqual(done["polls"], 2)
        self.assertIn("(polling every 2 s", res.stderr)
        ms = self.reaction_ms(res, [tid])
        note("explain: submit --wait reaction polling only (--no-listen): %.0f ms" % ms)
        self.assertLess(ms, 3500)
        res, tid, done = self.polling_only(env={"ENABLE_NOTIFY_WAKEUP": "false"})
        self.assertEqual((done["listen"], done["notifications"]), ("false", 0))

    def test_polling_fallback_behind_a_transaction_pooler(self):
        bouncer = PgBouncer(self.log_dir)
        self.addCleanup(bouncer.stop)
        url = bouncer.url(self.db_name)
        self.start_fake()
        # Behind transaction pooling LISTEN is accepted but its session goes back to the pool:
        # the wait must finish on polling alone.
        handle = self.spawn_binary("submit", "--type", "generate", "--params",
                                   '{"duration_sec": 0.5}', "--wait", "--timeout", "60",
                                   env_overrides={"DATABASE_URL": url})
        deadline = time.monotonic() + 60
        while handle[0].poll() is None and time.monotonic() < deadline:
            self.cycle(ok_codes=(0, 6))
            time.sleep(0.3)
        res = self.finish_binary(handle, timeout=10)
        self.assertEqual(res.rc, 0, res.stderr)
        tid = res.stdout.strip().splitlines()[0]
        self.assertIn("%s Complete" % tid, res.stdout)
        done = self.wait_done(res)
        note("explain: submit --wait through PgBouncer (transaction mode): listen=%s polls=%s "
             "notifications=%s reaction %.0f ms" % (done["listen"], done["polls"],
                                                    done["notifications"],
                                                    self.reaction_ms(res, [tid])))


if __name__ == "__main__":
    unittest.main()
