"""Reproductions from the independent review of issue 12's hardening (review12).

Each test asserts what the product promises (SPEC, structure_docs/safety.md,
structure_docs/task_processing.md) and FAILS on the code as reviewed. Run with
tests/e2e/run.sh test_16.
"""

import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import unittest

import e2e_lib
from e2e_lib import SafetyTestCase

FAST = {
    "MIN_ACTIVE_GPUS": "0",
    "TASKS_PER_GPU_THRESHOLD": "1",
    "GPU_IDLE_TIMEOUT_SEC": "60",
    "WORKER_GRACE_PERIOD_SEC": "60",
    "SPAWNING_TIMEOUT_SEC": "30",
    "SPAWN_POD_ID_GRACE_SEC": "8",
    "POD_NOT_FOUND_GRACE_SEC": "5",
    "RECONCILE_INTERVAL_SEC": "1",
    "ORPHAN_POD_GRACE_SEC": "3",
    "RUNPOD_REQUEST_TIMEOUT_SEC": "5",
}


def rule(status=None, method="*", path="/v2/pods*", count=1, **kw):
    r = {"method": method, "path": path, "count": count}
    if status is not None:
        r["status"] = status
    r.update(kw)
    return r


class TestReview12(SafetyTestCase):

    def setUp(self):
        super().setUp()
        self.config.update(FAST)

    def ours(self):
        prefix = self.config.get("WORKER_ID_PREFIX", "gpu-")
        return [p for p in self.fake.pods() if e2e_lib.is_ours(prefix, p["name"])]

    # -- 1. MAX_TASK_ATTEMPTS is never recorded for the worker's failure path -------------------

    def test_cycle_records_max_task_attempts_for_the_worker_rule(self):
        """task_processing.md: "Every cycle records the setting in
        orchestrator_state.max_task_attempts, where the worker's function reads it"."""
        self.config.update(MAX_TASK_ATTEMPTS="7")
        self.start_fake(boot_worker=False)
        self.cycle()
        recorded = self.db.scalar("SELECT max_task_attempts FROM orchestrator_state")
        # The consequence: a task inserted without max_attempts (follows the setting, 7),
        # failed by its worker on its third attempt.
        self.db.execute("INSERT INTO workers (id, status) VALUES ('gpu-20260101_000000-0000aaaa',"
                        " 'spawning')")
        self.db.execute("UPDATE workers SET status = 'active' WHERE id = "
                        "'gpu-20260101_000000-0000aaaa'")
        task = self.db.insert_task("generate", {}, attempts=2)
        claimed = self.db.scalar("SELECT id::text FROM func_claim_next_task("
                                 "'gpu-20260101_000000-0000aaaa')")
        self.assertEqual(claimed, task)
        self.db.scalar("SELECT func_mark_task_failed(%s, 'gpu-20260101_000000-0000aaaa', 'x')",
                       (task,))
        t = self.db.task(task)
        e2e_lib.note("review12 max_task_attempts: MAX_TASK_ATTEMPTS=7, recorded=%s; worker "
                     "failure on attempt 3 -> %s" % (recorded, t["status"]))
        self.assertEqual(recorded, 7, "the cycle did not record MAX_TASK_ATTEMPTS")
        self.assertEqual(t["status"], "Queued", "attempt 3 of 7 was failed for good")

    # -- 2. the kill switch reports success while an ambiguous create's pod runs ----------------

    def ambiguous_row(self):
        """One spawning row whose create was answered 503 after RunPod created the pod, while
        the list lags: the row has no pod id, the pod exists."""
        self.config.update(MAX_ACTIVE_GPUS="1", RUNPOD_MAX_RETRIES="0")
        fake = self.start_fake()
        fake.set_faults(list_lag_sec=20.0,
                        rules=[rule(503, method="POST", path="/v2/pods", count=1,
                                    create_anyway=True)])
        self.work(1)
        first = self.cycle(ok_codes=(0, 6))
        rows = self.db.query("SELECT id, runpod_id, metadata FROM workers")
        self.assertEqual(len(rows), 1, first.describe())
        self.assertIsNone(rows[0]["runpod_id"])
        self.assertEqual(len(self.ours()), 1, "the fake created the pod")
        return rows[0]["id"]

    def test_shutdown_all_exit_0_while_ambiguous_pod_runs(self):
        """safety.md: the kill switch exits 0 "only when everything it could see is stopped";
        the row says its create's outcome is unknown, so the pod may exist -- and it does."""
        wid = self.ambiguous_row()
        res = self.run_binary("shutdown-all", "--yes")
        alive = self.ours()
        status = self.db.scalar("SELECT status::text FROM workers WHERE id = %s", (wid,))
        e2e_lib.note("review12 shutdown-all: rc=%d, row %s, pods of ours still running: %s"
                     % (res.rc, status, [(p["name"], p["status"]) for p in alive]))
        if res.rc == 0:
            self.assertEqual(alive, [], "shutdown-all exited 0 while a pod of ours runs")

    def test_terminate_exit_0_while_ambiguous_pod_runs(self):
        wid = self.ambiguous_row()
        res = self.run_binary("terminate", wid)
        alive = self.ours()
        status = self.db.scalar("SELECT status::text FROM workers WHERE id = %s", (wid,))
        e2e_lib.note("review12 terminate: rc=%d, row %s, pods of ours still running: %s"
                     % (res.rc, status, [(p["name"], p["status"]) for p in alive]))
        if res.rc == 0:
            self.assertEqual(alive, [], "terminate exited 0 while the worker's pod runs")

    # -- 3. the cycle lock behind a transaction-pooling PgBouncer (issue 12 item 6) -------------

    def start_pgbouncer(self, pool_size=1):
        exe = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not os.path.exists(exe):
            self.fail("pgbouncer is not installed (Debian package pgbouncer)")
        d = tempfile.mkdtemp(prefix="r12-pgb-")
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        host = os.environ.get("PGHOST", "")
        pgport = os.environ.get("PGPORT", "5432")
        user = os.environ.get("PGUSER", "postgres")
        with open(os.path.join(d, "pgb.ini"), "w") as f:
            f.write("[databases]\n* = host=%s port=%s user=%s\n[pgbouncer]\n"
                    "listen_addr = 127.0.0.1\nlisten_port = %d\nunix_socket_dir =\n"
                    "auth_type = trust\nauth_file = %s/users.txt\npool_mode = transaction\n"
                    "default_pool_size = %d\nmax_client_conn = 100\nlogfile = %s/pgb.log\n"
                    % (host, pgport, user, port, d, pool_size, d))
        with open(os.path.join(d, "users.txt"), "w") as f:
            f.write('"%s" ""\n' % user)
        cmd = [exe, os.path.join(d, "pgb.ini")]
        if os.geteuid() == 0:  # pgbouncer refuses to run as root
            subprocess.run(["chown", "-R", "postgres:", d], check=True)
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def stop():
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
            shutil.rmtree(d, ignore_errors=True)
        self.addCleanup(stop)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        return "postgresql://%s@127.0.0.1:%d/%s" % (user, port, self.db.name)

    def test_cycle_lock_behind_transaction_pooler(self):
        """Two overlapping cron cycles through PgBouncer (pool_mode=transaction, the Supabase
        6543 pooler) both act: MAX_ACTIVE_GPUS=1 and two pods. Issue 12 item 6 asked for
        exclusion that holds there, or a refusal with exit 3."""
        self.config.update(MAX_ACTIVE_GPUS="1")
        url = self.start_pgbouncer(pool_size=1)
        fake = self.start_fake(boot_worker=False)
        # Both cycles list pods (reconcile is due) and the list takes 1.5 s: both plan before
        # either registers its worker, as two overlapping cron runs do.
        fake.set_faults(rules=[rule(method="GET", path="/v2/pods", count=2, delay_sec=1.5)])
        self.work(3)
        env = {"DATABASE_URL": url}
        if os.environ.get("R12_POOLER_CONTROL") == "1":  # control: the same, direct
            env = {}
        a = self.spawn_binary("single", env_overrides=env)
        time.sleep(0.05)
        b = self.spawn_binary("single", env_overrides=env)
        ra, rb = self.finish_binary(a), self.finish_binary(b)
        stats = fake.stats()
        e2e_lib.note("review12 pooler: cycle A rc=%d skipped=%s spawned=%d; cycle B rc=%d "
                     "skipped=%s spawned=%d; creates=%d max_pods_alive=%d (MAX 1)"
                     % (ra.rc, ra.skipped_locked, ra.action("workers_spawned"), rb.rc,
                        rb.skipped_locked, rb.action("workers_spawned"), stats["creates"],
                        stats["max_pods_alive"]))
        self.assertTrue(ra.rc == 3 or rb.rc == 3 or ra.skipped_locked or rb.skipped_locked,
                        "both cycles acted at once behind the pooler")
        self.assertLessEqual(stats["max_pods_alive"], 1)

    # -- 4. a huge pod list blinds the cycle, silently ------------------------------------------

    def inject_many(self, n, prefix="notebook-"):
        errs = []

        def part(lo, hi):
            try:
                for i in range(lo, hi):
                    self.fake.inject_pod("%s%05d" % (prefix, i), age_sec=100000)
            except Exception as e:  # noqa: BLE001
                errs.append(e)
        step = (n + 7) // 8
        ts = [threading.Thread(target=part, args=(k, min(n, k + step))) for k in range(0, n, step)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.assertEqual(errs, [])

    def test_huge_foreign_pod_list_blinds_leak_sweep_and_exit_0(self):
        """A shared account with 2,049 foreign pods (under RUNPOD_JSON_MAX_PODS and the 4 MB
        response cap): list_pods drops the whole list (SNAP_PODS_MAX), so the leak sweep never
        runs, a leaked pod of ours bills forever, and every cycle exits 0 with no error."""
        self.config.update(MAX_ACTIVE_GPUS="1")
        fake = self.start_fake(boot_worker=False)
        leaked = fake.inject_pod("gpu-20250101_000000-0eaced00", age_sec=3600)
        self.inject_many(2049)
        results = []
        for _ in range(3):
            results.append(self.cycle(ok_codes=(0, 5, 6)))
            time.sleep(1.2)
        deleted = self.deletes_of(leaked["id"])
        e2e_lib.note("review12 huge list: %d pods listed by the fake; cycles rc=%s errors=%s; "
                     "pod_list=%s; leaked pod of ours deleted=%s"
                     % (len(fake.pods()), [r.rc for r in results],
                        [r.summary.get("errors") for r in results],
                        results[-1].summary.get("pod_list"), bool(deleted)))
        self.assertTrue(deleted, "a leaked pod of ours was never terminated (list ignored)")
        # Fixed: the shared account's foreign pods are counted, never kept (nor crowding ours).
        self.assertEqual(results[-1].summary["pod_list"]["foreign"], 2049)

    # -- 5. an ambiguous create whose pod never appears, while the list keeps failing ----------

    def test_unknown_create_row_holds_max_slot_forever_when_list_fails(self):
        """A create answered 503 that created nothing, then GET /v2/pods fails (500) for good:
        the row stays `spawning` past SPAWNING_TIMEOUT_SEC for ever, holding the only slot
        under MAX_ACTIVE_GPUS=1; queued work never gets a worker and cycles exit 0."""
        self.config.update(MAX_ACTIVE_GPUS="1", RUNPOD_MAX_RETRIES="0",
                           SPAWNING_TIMEOUT_SEC="4", SPAWN_POD_ID_GRACE_SEC="3")
        fake = self.start_fake(boot_worker=False)
        fake.set_faults(rules=[rule(503, method="POST", path="/v2/pods", count=1),
                               rule(500, method="GET", path="/v2/pods", count=-1)])
        self.work(3)
        first = self.cycle(ok_codes=(0, 6))
        results = self.run_cycles_for(12, pause=1.0, ok_codes=(0, 5, 6))
        row = self.db.one("SELECT id, status::text, runpod_id, extract(epoch FROM now() - "
                          "created_at)::int AS age FROM workers")
        e2e_lib.note("review12 unknown create + failing list: first rc=%d; row %s age %ss "
                     "(SPAWNING_TIMEOUT_SEC=4); later rcs=%s; POSTs=%d; pods=%d"
                     % (first.rc, row["status"], row["age"], sorted({r.rc for r in results}),
                        len(self.creates()), len(fake.pods())))
        # Kept by design (structure_docs/safety.md): without a readable list the create's outcome
        # stays unknown, and failing the row could leave its pod billing for ever. What must
        # not happen: a second create, or a silent cycle.
        self.assertEqual(row["status"], "spawning")
        self.assertEqual(len(self.creates()), 1, "the name was POSTed again")
        self.assertEqual(sorted({r.rc for r in results}), [5], "a blind cycle must not exit 0")
        self.assertTrue(all(any("wait for the pod list" in e for e in r.summary["errors"])
                            for r in results), "the waiting row is not reported")

    # -- 6. a worker row whose id is longer than SNAP_ID_MAX - 1 ---------------------------------

    def test_long_worker_id_row_task_lost_and_capacity_cut(self):
        """workers.id is unbounded text; the snapshot truncates it to 63 bytes, so every guarded
        write about the row (fail, recover its task, terminate) matches nothing and is
        'skipped' -- every cycle, for ever, with exit 0: its task stays In Progress under a dead
        holder, and the blocked termination cuts every cycle's spawns by one."""
        self.config.update(MAX_ACTIVE_GPUS="2", GPU_IDLE_TIMEOUT_SEC="5")
        fake = self.start_fake(boot_worker=False)
        long_id = "legacy-worker-" + "0123456789" * 6  # 74 bytes
        self.db.execute("INSERT INTO workers (id, status, last_heartbeat, created_at) VALUES "
                        "(%s, 'spawning', now() - interval '1 hour', now() - interval '2 hours')",
                        (long_id,))
        self.db.execute("UPDATE workers SET status = 'active', promoted_at = now() - "
                        "interval '1 hour' WHERE id = %s", (long_id,))
        held = self.db.insert_task("generate", {})
        self.db.execute("UPDATE tasks SET status = 'In Progress', worker_id = %s, "
                        "generation_started_at = now() - interval '1 hour' WHERE id = %s",
                        (long_id, held))
        self.work(4)
        results = [self.cycle(ok_codes=(0, 6)) for _ in range(3)]
        row = self.db.one("SELECT status::text FROM workers WHERE id = %s", (long_id,))
        t = self.db.task(held)
        outcomes = sorted({(o["action"], o["result"]) for r in results
                           for o in r.summary.get("outcomes", [])})
        e2e_lib.note("review12 long id: rcs=%s row=%s task=%s/%s attempts=%s; outcomes=%s; "
                     "pods created=%d (MAX 2, 4 queued)"
                     % ([r.rc for r in results], row["status"], t["status"], t["worker_id"][:20]
                        if t["worker_id"] else None, t["attempts"], outcomes,
                        fake.stats()["creates"]))
        self.assertNotEqual(row["status"], "active", "the dead worker was never failed")
        self.assertNotEqual(t["status"], "In Progress", "its task is lost")

    # -- 7. the spend cap with a GPU fallback list -----------------------------------------------

    def test_spend_cap_overshoot_on_gpu_fallback(self):
        """MAX_HOURLY_SPEND_USD: "no spawn may push the fleet's summed cost per hour above
        this". The cap sizes a cycle's spawns by the highest price *seen* (GPU A, 0.30), then
        the creates fall back to GPU B (2.00) when A has no capacity."""
        self.config.update(MAX_ACTIVE_GPUS="5", MAX_HOURLY_SPEND_USD="3.0",
                           RUNPOD_GPU_TYPES="GPU A,GPU B", SPAWNING_TIMEOUT_SEC="120")
        fake = self.start_fake(boot_worker=False)
        status, _ = fake.http("POST", "/_fake/config",
                              {"gpu_costs": {"GPU A": 0.30, "GPU B": 2.00}})
        self.assertEqual(status, 200)
        self.work(1)
        first = self.cycle(ok_codes=(0, 6))
        self.assertEqual(first.action("workers_spawned"), 1, first.describe())
        self.work(10)
        fake.set_faults(no_capacity=["GPU A"])
        second = self.cycle(ok_codes=(0, 6))
        fleet = sum(float(p["cost"]) for p in self.ours())
        rows = self.db.query("SELECT gpu_type, cost_per_hr FROM workers "
                             "WHERE status <> 'terminated' ORDER BY created_at")
        e2e_lib.note("review12 spend cap 3.00 $/h: cycle 2 spawned %d (spawn_limit=%s); fleet at "
                     "the fake %.2f $/h; rows %s"
                     % (second.action("workers_spawned"), second.status("spawn_limit"), fleet,
                        [(r["gpu_type"], float(r["cost_per_hr"] or 0)) for r in rows]))
        self.assertLessEqual(fleet, 3.0 + 1e-9, "the fleet's cost passed MAX_HOURLY_SPEND_USD")

    def test_spend_cap_with_price_never_learned(self):
        """"With no price known yet it spawns one pod at a time ... to learn the price": when
        the price is never learned (creates answered 503 after creating, the list failing), it
        keeps spawning one per cycle past the cap, up to MAX."""
        self.config.update(MAX_ACTIVE_GPUS="4", MAX_HOURLY_SPEND_USD="1.0",
                           RUNPOD_MAX_RETRIES="0")
        fake = self.start_fake(boot_worker=False)
        fake.set_faults(rules=[rule(503, method="POST", path="/v2/pods", count=-1,
                                    create_anyway=True),
                               rule(500, method="GET", path="/v2/pods", count=-1)])
        self.work(6)
        results = [self.cycle(ok_codes=(0, 5, 6)) for _ in range(5)]
        fleet = sum(float(p["cost"]) for p in self.ours())
        e2e_lib.note("review12 spend cap 1.00 $/h, price never learned: spawns per cycle %s; "
                     "%d pods at the fake, %.2f $/h"
                     % ([len([o for o in r.summary.get("outcomes", [])
                              if o["action"] == "spawn_worker"]) for r in results],
                        len(self.ours()), fleet))
        self.assertLessEqual(fleet, 1.0 + 1e-9, "the fleet's cost passed MAX_HOURLY_SPEND_USD")

    # -- 8. secrets: truncated before they are scrubbed ----------------------------------------

    def test_secret_prefix_survives_truncation_before_scrub(self):
        """RunPod's problem detail echoes a worker env value (test_12's scenario), placed so the
        `%.100s` of record_not_created cuts through it: the scrubber never sees the whole secret
        and 24 of its 32 characters reach the summary, the journal and the row's error_reason."""
        secret = "tok-SECRET-abcdefghijklmnopqrstu"  # 32 bytes
        self.config.update(MAX_ACTIVE_GPUS="1", WORKER_ENV_SECRET_TOKEN=secret)
        fake = self.start_fake(boot_worker=False)
        # info.detail = "Unprocessable Entity: " (22) + detail; the summary keeps its first 100.
        detail = "r" * (100 - 22 - 24 - 5) + " env=" + secret
        fake.set_faults(rules=[rule(422, method="POST", path="/v2/pods", count=1,
                                    detail=detail)])
        self.work(1)
        res = self.cycle(ok_codes=(0, 6))
        journal = self.db.scalar("SELECT string_agg(errors::text || outcomes::text, ' ') "
                                 "FROM orchestrator_cycles")
        reason = self.db.scalar("SELECT string_agg(metadata::text, ' ') FROM workers")
        leak = secret[:16]
        where = [n for n, text in (("summary", res.stdout), ("journal", journal or ""),
                                   ("workers.metadata", reason or ""), ("stderr", res.stderr))
                 if leak in text]
        e2e_lib.note("review12 secret prefix: %r... found in %s" % (secret[:10], where))
        self.assertEqual(where, [], "a secret's first %d+ characters reached outputs" % len(leak))

    # -- 9. reconcile --terminate says ok when it did nothing ----------------------------------

    def test_reconcile_terminate_exit_0_when_locked(self):
        """`reconcile --terminate` finds the cycle lock held, does nothing and exits 0 with
        "result": "ok" (safety.md lists 0, 3, 4, 5, 6; terminate/shutdown-all exit 4 here)."""
        fake = self.start_fake(boot_worker=False)
        leaked = fake.inject_pod("gpu-20250101_000000-0eaced00", age_sec=3600)
        holder = e2e_lib.psycopg2.connect(self.db.url)
        holder.autocommit = True
        self.addCleanup(holder.close)
        holder.cursor().execute("SELECT pg_advisory_lock(8030606375798600818)")
        res = self.run_binary("reconcile", "--terminate", "--json")
        e2e_lib.note("review12 reconcile --terminate under a held lock: rc=%d stdout=%s "
                     "leaked pod deleted=%s" % (res.rc, res.stdout.strip(),
                                                bool(self.deletes_of(leaked["id"]))))
        if not self.deletes_of(leaked["id"]):
            self.assertNotEqual(res.rc, 0, "nothing was terminated, yet exit 0")

    # -- 10. the lag window of an ambiguous create is measured from the row's insert -----------

    def test_slow_ambiguous_create_row_failed_within_lag_then_duplicate(self):
        """SPAWN_POD_ID_GRACE_SEC (8 s) is larger than the list's lag (4 s), but it is counted
        from the row's insert, not from the create's answer: a create that takes 7 s to be
        answered 503 (after creating) leaves 1 s of window. The row is failed "No Runpod ID"
        while its pod is still hidden by the lag, the same cycle spawns a replacement, and two
        pods run for MAX_ACTIVE_GPUS=1 (metadata.create_unknown_at is recorded, not used)."""
        self.config.update(MAX_ACTIVE_GPUS="1", RUNPOD_MAX_RETRIES="0",
                           SPAWN_POD_ID_GRACE_SEC="8", RUNPOD_REQUEST_TIMEOUT_SEC="20",
                           SPAWNING_TIMEOUT_SEC="60")
        fake = self.start_fake(boot_worker=False)
        fake.set_faults(list_lag_sec=4.0, create_latency_ms=7000,
                        rules=[rule(503, method="POST", path="/v2/pods", count=1,
                                    create_anyway=True)])
        self.work(2)
        first = self.cycle(ok_codes=(0, 6))
        fake.set_faults(create_latency_ms=0)
        results = self.run_cycles_for(10, pause=0.5, ok_codes=(0, 6))
        failed = [o for r in results for o in r.summary.get("outcomes", [])
                  if o["action"] == "fail_worker"]
        stats = fake.stats()
        e2e_lib.note("review12 slow ambiguous create: first cycle %.1fs; failed rows %s; "
                     "POSTs=%d; max_pods_alive=%d (MAX 1)"
                     % (first.finished - first.started,
                        [(o.get("reason"), o.get("detail", "")[:60]) for o in failed],
                        len(self.creates()), stats["max_pods_alive"]))
        self.assertLessEqual(stats["max_pods_alive"], 1, "two pods for MAX_ACTIVE_GPUS=1")

    def test_slow_create_pod_failed_as_gone_within_lag(self):
        """The same clock for a create that succeeded: POD_NOT_FOUND_GRACE_SEC (5 s) > lag
        (4 s), but a create answered 201 after 7 s leaves a row older than the grace whose pod
        the lagging list does not show yet: "Pod not found in RunPod", the healthy pod is
        DELETEd, counted as an unexpected failure."""
        self.config.update(MAX_ACTIVE_GPUS="1", POD_NOT_FOUND_GRACE_SEC="5",
                           RUNPOD_REQUEST_TIMEOUT_SEC="20", SPAWNING_TIMEOUT_SEC="60")
        fake = self.start_fake(boot_worker=False)
        fake.set_faults(list_lag_sec=4.0, create_latency_ms=7000)
        self.work(1)
        first = self.cycle(ok_codes=(0, 6))
        self.assertEqual(first.action("workers_spawned"), 1, first.describe())
        fake.set_faults(create_latency_ms=0)
        results = self.run_cycles_for(3, pause=0.5, ok_codes=(0, 6))
        failed = [(o.get("reason"), o.get("detail")) for r in results
                  for o in r.summary.get("outcomes", []) if o["action"] == "fail_worker"]
        e2e_lib.note("review12 slow create, lagging list: failed %s; DELETEs=%d"
                     % (failed, len(fake.api_requests("DELETE"))))
        self.assertEqual(failed, [], "a healthy new pod was failed as gone during the lag")

    # -- 11. shutdown-all on a big fleet: the plan is truncated, exit 0 ------------------------

    def test_shutdown_all_truncated_plan_exit_0(self):
        """1,000 workers (under SNAP_WORKERS_MAX) holding 3 tasks each: shutdown-all plans
        drain + 3 recoveries + terminate per worker = 5,000 actions > PLAN_MAX_ACTIONS (4,096).
        plan->truncated is read by nobody: the kill switch exits 0 while the pods of the last
        ~180 workers still run."""
        self.config.update(MAX_ACTIVE_GPUS="1000", GPU_IDLE_TIMEOUT_SEC="3600",
                           TASK_STUCK_TIMEOUT_SEC="3600")
        fake = self.start_fake(boot_worker=False)
        n = 1000
        names = ["gpu-20260101_000000-%08x" % i for i in range(n)]
        pods = {}
        lock = threading.Lock()

        def part(chunk):
            for name in chunk:
                p = fake.inject_pod(name, age_sec=600)
                with lock:
                    pods[name] = p["id"]
        ts = [threading.Thread(target=part, args=(names[k::8],)) for k in range(8)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        self.db.execute(
            "INSERT INTO workers (id, status, runpod_id, last_heartbeat, promoted_at, metadata) "
            "SELECT w.name, 'spawning', w.pod, now(), now(), '{\"vram_total_mb\": 24000}' "
            "FROM json_to_recordset(%s::json) AS w(name text, pod text)",
            (__import__("json").dumps([{"name": k, "pod": v} for k, v in pods.items()]),))
        self.db.execute("UPDATE workers SET status = 'active'")
        self.db.execute(
            "INSERT INTO tasks (task_type, params, status, worker_id, generation_started_at) "
            "SELECT 'generate', '{}', 'In Progress', w.id, now() FROM workers w, "
            "generate_series(1, 3)")
        res = self.run_binary("shutdown-all", "--yes", timeout=300)
        alive = self.ours()
        live_rows = self.db.scalar("SELECT count(*) FROM workers WHERE status <> 'terminated'")
        e2e_lib.note("review12 shutdown-all, %d workers x 3 tasks: rc=%d, plan actions=%d, "
                     "pods of ours still running=%d, live rows=%d, errors=%s"
                     % (n, res.rc, len((res.summary or {}).get("plan") or []), len(alive),
                        live_rows, ((res.summary or {}).get("errors") or [])[:3]))
        if res.rc == 0:
            self.assertEqual(len(alive), 0, "shutdown-all exited 0 with pods of ours running")

    # -- 12. more live rows than SNAP_WORKERS_MAX: blind for ever, "ok" -------------------------

    def test_too_many_live_rows_blind_forever_exit_0(self):
        """1,025 legacy `inactive` rows (the replaced system's pre-create inserts; issue 12 says
        they are retired): the snapshot fails closed, so they are never retired, nothing else
        is ever done either, and every cycle says result "ok", exit 0, errors []."""
        self.config.update(MIN_ACTIVE_GPUS="1")
        fake = self.start_fake(boot_worker=False)
        self.db.execute("INSERT INTO workers (id, status) SELECT 'gpu-20250101_000000-' || "
                        "lpad(to_hex(g), 8, '0'), 'inactive' FROM generate_series(1, 1025) g")
        self.work(2)
        results = [self.cycle(ok_codes=(0, 3, 4, 5, 6)) for _ in range(3)]
        live = self.db.scalar("SELECT count(*) FROM workers WHERE status <> 'terminated'")
        e2e_lib.note("review12 1025 inactive rows: rcs=%s results=%s errors=%s spawn_limit=%s; "
                     "live rows after 3 cycles=%d; pods=%d"
                     % ([r.rc for r in results], [r.summary.get("result") for r in results],
                        [r.summary.get("errors") for r in results],
                        results[-1].status("spawn_limit"), live, len(fake.pods())))
        self.assertTrue(live < 1025 or any(r.rc != 0 for r in results),
                        "blind for ever and every cycle reports success")

    # -- 13. adoption by name ignores the worker-id shape ---------------------------------------

    def test_pod_not_of_our_shape_adopted_and_terminated(self):
        """safety.md: a pod whose name is not of our worker-id shape "is never touched,
        counted, adopted or reported as leaked". planner_adopt matches any live row's id, so a
        legacy row named like a manual pod (`manual-gpu-...`, which the replaced system never
        reconciled) gets that pod adopted and DELETEd."""
        fake = self.start_fake(boot_worker=False)
        manual = fake.inject_pod("manual-gpu-debug1", age_sec=3600)
        self.db.execute("INSERT INTO workers (id, status) VALUES ('manual-gpu-debug1', "
                        "'inactive')")
        res = self.cycle(ok_codes=(0, 6))
        deleted = self.deletes_of(manual["id"])
        e2e_lib.note("review12 shape: plan=%s; foreign-shaped pod DELETEd=%s"
                     % ([(p.get("action"), p.get("reason")) for p in res.summary.get("plan", [])],
                        bool(deleted)))
        self.assertEqual(deleted, [], "a pod not of our worker-id shape was terminated")


if __name__ == "__main__":
    unittest.main()
