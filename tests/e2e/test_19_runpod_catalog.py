"""Issue 16 items 1 and 5: stock- and price-aware GPU choice, and RunPod's rate limit.

Against the fake's GPU catalog (tests/fakes/fake_runpod_catalog.py: stock that changes while
the test runs, prices, hostile answers) and its real rate-limit windows:

  * an out-of-stock type is never tried: every create goes to a type the catalog read before it
    showed in stock, through three stock phases (and the fake refuses creates of out-of-stock
    types, so a wrong try would also show as a 400);
  * `cheapest` takes the lowest list price; `value` the lowest dollars per task from our own
    history -- a type that is dearer per hour but faster wins -- and falls back to price below
    RUNPOD_VALUE_MIN_SAMPLES;
  * a failed catalog read (503, timeout, truncated JSON, HTML, not a list) falls back to the
    configured order, every time, and the next good read is used again; odd catalogs (unknown
    ids, missing prices, odd fields) never stop a spawn;
  * the cached catalog is shared between runs: a second run within RUNPOD_CATALOG_TTL_SEC, a
    dry run and a no-op cycle make no catalog call;
  * creates spread over cycles when the quota is low, with no 429 at all, while every planned
    termination happens in the first cycle; in a 429 storm terminations are still attempted
    and no create is sent;
  * the remaining quota is in `status` (text and JSON) and the metrics, read back by later
    processes; malformed headers show as unknown.

The tests write to the database only to lay down a history of completed tasks (the rows a
fleet that ran for a while leaves behind).
"""

import json
import os
import re
import subprocess
import time
import unittest

import e2e_lib
from e2e_lib import SafetyTestCase

H100 = "NVIDIA H100 80GB HBM3"
A40 = "NVIDIA A40"
A6000 = "NVIDIA RTX A6000"
L40S = "NVIDIA L40S"
CAT = "/v2/catalog/gpus"


class TestRunpodCatalog(SafetyTestCase):

    def setUp(self):
        super().setUp()
        self.config.update(MIN_ACTIVE_GPUS="0", MAX_ACTIVE_GPUS="8", TASKS_PER_GPU_THRESHOLD="1",
                           GPU_IDLE_TIMEOUT_SEC="60", SPAWNING_TIMEOUT_SEC="120",
                           SPAWN_POD_ID_GRACE_SEC="60", RECONCILE_INTERVAL_SEC="300")

    # -- helpers -------------------------------------------------------------------------------

    def catalog(self, **body):
        status, ans = self.fake.http("POST", "/_fake/catalog", body)
        self.assertEqual(status, 200, ans)
        return ans

    def ratelimit(self, **body):
        status, ans = self.fake.http("POST" if body else "GET", "/_fake/ratelimit",
                                     body or None)
        self.assertEqual(status, 200, ans)
        return ans

    def promtool_clean(self, text):
        """promtool (Debian package prometheus, installed by scripts/install-deps.sh) accepts
        the exposition text with no lint finding."""
        p = subprocess.run(["promtool", "check", "metrics"], input=text.encode(),
                           capture_output=True, timeout=30)
        out = (p.stdout + p.stderr).decode("utf-8", "replace").strip()
        self.assertEqual((p.returncode, out), (0, ""), "promtool: %s" % out)

    def catalog_reads(self):
        return [r for r in self.fake.api_requests("GET") if r["path"] == CAT]

    def created_types(self, since=0):
        return [r["body"]["gpu"]["id"] for r in self.creates()[since:]]

    def spawn_one(self, **env):
        """One more queued task, one cycle: the cycle spawns one pod (or says why not)."""
        self.db.insert_task("generate", {"duration_sec": 0.2})
        return self.cycle(env_overrides=env or None)

    def history(self, gpu_type, n, seconds):
        """n completed tasks of `seconds` each on a (long terminated) worker of gpu_type."""
        wid = "gpu-hist-%s" % re.sub(r"[^a-z0-9]+", "-", gpu_type.lower())
        self.db.execute("INSERT INTO workers (id, status, gpu_type) VALUES (%s, 'inactive', %s)",
                        (wid, gpu_type))
        self.db.execute("UPDATE workers SET status = 'terminated', ended_at = now() - "
                        "interval '2 days', end_kind = 'expected' WHERE id = %s", (wid,))
        self.db.execute("INSERT INTO tasks (task_type, status, worker_id, generation_started_at, "
                        "generation_processed_at) SELECT 'hist', 'Complete', %s, "
                        "now() - make_interval(hours => g) - make_interval(secs => %s), "
                        "now() - make_interval(hours => g) FROM generate_series(1, %s) g",
                        (wid, seconds, n))

    # -- 1. stock ------------------------------------------------------------------------------

    def test_out_of_stock_type_never_tried(self):
        """Ordered H100, A40, A6000; the catalog changes while cycles run: H100 out, then A40
        out and H100 back, then only A6000. Every create is checked against the catalog read
        that came before it."""
        self.config.update(RUNPOD_GPU_TYPES=",".join([H100, A40, A6000]),
                           RUNPOD_GPU_CHOICE="ordered", RUNPOD_CATALOG_TTL_SEC="1",
                           MAX_ACTIVE_GPUS="64")
        fake = self.start_fake(boot_worker=False)
        phase = 5.0
        self.catalog(gpus={H100: {"stock": "NONE"}, A40: {"stock": "HIGH"},
                           A6000: {"stock": "MEDIUM"}},
                     timeline=[{"after_sec": phase, "gpus": {H100: {"stock": "LOW"},
                                                             A40: {"stock": "NONE"}}},
                               {"after_sec": 2 * phase, "gpus": {H100: {"stock": "NONE"}}}])
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3 * phase + 0.5:
            self.spawn_one()
            time.sleep(0.3)
        log = [r for r in fake.api_requests() if r["path"] in (CAT, "/v2/pods")]
        last, checked, tried_out = None, 0, []
        for r in log:
            if r["path"] == CAT and r["status"] == 200:
                last = {g["id"]: g.get("availability") for g in r["raw"]["response"]["gpus"]}
            elif r["method"] == "POST":
                self.assertIsNotNone(last, "a create before any catalog read")
                gid = r["body"]["gpu"]["id"]
                checked += 1
                if last.get(gid) == "NONE":
                    tried_out.append(gid)
        used = self.created_types()
        refused = [r for r in fake.api_requests("POST") if r["status"] == 400]
        e2e_lib.note("catalog: %d creates over 3 stock phases (%s), %d tried out of stock, "
                     "%d answered no-capacity; %d catalog reads"
                     % (checked, ", ".join("%s x%d" % (t, used.count(t))
                                           for t in (H100, A40, A6000)),
                        len(tried_out), len(refused), len(self.catalog_reads())))
        # A create within a TTL of a stock change may still find the type gone (the fake then
        # answers no-capacity and the next type is tried): that is the cache's staleness, not
        # a type the catalog showed out of stock.
        self.assertEqual(tried_out, [], "created a type the catalog showed out of stock")
        self.assertEqual(set(used), {H100, A40, A6000}, "each phase's first in-stock type")
        self.assertEqual(used[0], A40)
        self.assertEqual(used[-1], A6000)
        self.invariants("out-of-stock never tried")

    # -- 2. cheapest and value -----------------------------------------------------------------

    def test_cheapest_and_value(self):
        """L40S $0.86, A6000 $0.49, A40 $0.40, all in stock. cheapest: A40. value with a history
        where A6000 takes 100 s and A40 300 s: A6000 ($0.0136 against $0.0333 a task), though
        dearer per hour. Below RUNPOD_VALUE_MIN_SAMPLES: by price again."""
        self.config.update(RUNPOD_GPU_TYPES=",".join([L40S, A6000, A40]),
                           RUNPOD_CATALOG_TTL_SEC="300")
        self.start_fake(boot_worker=False)
        self.catalog(gpus={L40S: {"price": 0.86}, A6000: {"price": 0.49, "stock": "HIGH"},
                           A40: {"price": 0.40, "stock": "HIGH"}})
        self.history(A6000, 25, 100)
        self.history(A40, 25, 300)

        r = self.spawn_one(RUNPOD_GPU_CHOICE="cheapest")
        self.assertEqual(self.created_types(), [A40], r.describe())
        r = self.spawn_one(RUNPOD_GPU_CHOICE="value")
        self.assertEqual(self.created_types(1), [A6000], r.describe())
        choice = r.summary["pools"][0]["gpu_choice"]
        first = choice["candidates"][0]
        self.assertEqual((choice["policy"], choice["catalog"], first["gpu_type"]),
                         ("value", "fresh", A6000), choice)
        self.assertEqual((first["samples"], round(first["median_sec"])), (25, 100), first)
        self.assertAlmostEqual(first["usd_per_task"], 0.49 * 100 / 3600, places=6)
        a40 = [c for c in choice["candidates"] if c["gpu_type"] == A40][0]
        self.assertAlmostEqual(a40["usd_per_task"], 0.40 * 300 / 3600, places=6)
        self.assertGreater(first["price_per_hr"], a40["price_per_hr"])
        events = r.events_named("gpu.choice")
        self.assertTrue(events and events[0]["first"] == A6000, events)
        self.assertIn("$0.0136/task", events[0]["choice"])
        self.assertIn("gpu value: %s $0.490/h" % A6000, r.summary["plan"][0]["detail"])
        r = self.spawn_one(RUNPOD_GPU_CHOICE="value", RUNPOD_VALUE_MIN_SAMPLES="30")
        self.assertEqual(self.created_types(2), [A40], r.describe())
        e2e_lib.note("catalog value: A6000 $0.49/h x 100 s = $%.4f/task beats A40 $0.40/h x 300 s = "
                     "$%.4f/task; cheapest picks A40; with 30 samples required, A40 (by price)"
                     % (first["usd_per_task"], a40["usd_per_task"]))

    # -- 3. failed and odd catalogs ------------------------------------------------------------

    def test_failed_catalog_falls_back_to_configured_order(self):
        """cheapest over L40S ($0.86, first configured) and A40 ($0.40). Whenever the read
        fails the configured order is used (L40S), never nothing; odd catalogs still spawn."""
        self.config.update(RUNPOD_GPU_TYPES=",".join([L40S, A40]), RUNPOD_GPU_CHOICE="cheapest",
                           RUNPOD_CATALOG_TTL_SEC="1", RUNPOD_REQUEST_TIMEOUT_SEC="2",
                           RUNPOD_MAX_RETRIES="0", MAX_ACTIVE_GPUS="16")
        fake = self.start_fake(boot_worker=False)
        self.catalog(gpus={L40S: {"price": 0.86}, A40: {"price": 0.40, "stock": "HIGH"}})
        rule = {"method": "GET", "path": CAT, "count": -1}
        failures = [("503", dict(rule, status=503), None),
                    ("timeout", dict(rule, delay_sec=3), None),
                    ("truncated JSON", None, "garbage"), ("HTML", None, "html"),
                    ("not a list", None, "not_a_list")]
        seen = []
        for name, fault, mode in failures:
            fake.set_faults(rules=[fault] if fault else [])
            self.catalog(mode=mode or "ok")
            time.sleep(1.1)  # the read is due again
            n = len(self.creates())
            r = self.spawn_one()
            self.assertEqual(r.rc, 0, r.describe())
            self.assertEqual(self.created_types(n), [L40S], "%s: %s" % (name, r.describe()))
            ch = r.summary["pools"][0]["gpu_choice"]
            self.assertEqual((ch["catalog"], ch["fell_back"]), ("failed", True), name)
            self.assertTrue(any("GPU catalog read failed" in e for e in r.summary["errors"]),
                            r.summary["errors"])
            self.assertTrue(r.events_named("catalog.read_failed"), name)
            seen.append(name)
        row = self.db.one("SELECT ok, error, read_at IS NULL AS never FROM runpod_catalog_reads")
        self.assertEqual((row["ok"], row["never"]), (False, True), row)
        # odd but readable catalogs: a spawn goes ahead, on a configured type
        for mode in ("odd", "missing_prices", "unknown_ids", "empty"):
            fake.set_faults(rules=[])
            self.catalog(mode=mode)
            time.sleep(1.1)
            n = len(self.creates())
            r = self.spawn_one()
            self.assertEqual(r.rc, 0, r.describe())
            got = self.created_types(n)
            self.assertEqual(len(got), 1, "%s: %s" % (mode, r.describe()))
            self.assertIn(got[0], (L40S, A40))
            seen.append("%s -> %s" % (mode, got[0]))
        # a good read again: the cheapest type
        self.catalog(mode="ok")
        time.sleep(1.1)
        n = len(self.creates())
        r = self.spawn_one()
        self.assertEqual(self.created_types(n), [A40], r.describe())
        self.assertEqual(r.summary["pools"][0]["gpu_choice"]["catalog"], "fresh")
        e2e_lib.note("catalog fallback: configured order after %s; cheapest again after a good "
                     "read" % ", ".join(seen))
        self.invariants("failed catalog")

    # -- 4. shared cache -----------------------------------------------------------------------

    def test_catalog_cached_between_runs(self):
        self.config.update(RUNPOD_GPU_TYPES=",".join([L40S, A40]), RUNPOD_GPU_CHOICE="cheapest",
                           RUNPOD_CATALOG_TTL_SEC="300")
        self.start_fake(boot_worker=False)
        r1 = self.spawn_one()
        self.assertEqual(len(self.catalog_reads()), 1, r1.describe())
        r2 = self.spawn_one()  # another process, within the TTL
        self.assertEqual(len(self.catalog_reads()), 1, "the second run read the catalog again")
        self.assertEqual(self.created_types(), [A40, A40])
        self.assertEqual(r2.summary["pools"][0]["gpu_choice"]["catalog"], "fresh")
        self.db.insert_task("generate", {})
        plan = self.run_binary("plan")
        self.assertEqual(plan.rc, 0, plan.stderr[-2000:])
        self.assertEqual(len(self.catalog_reads()), 1, "a dry run read the catalog")
        self.cycle()  # it spawns for the task above: from the cache
        noop = self.cycle()  # nothing to spawn
        self.assertEqual(noop.status("to_spawn"), 0)
        self.assertEqual(len(self.catalog_reads()), 1, "a cycle read the catalog again")
        row = self.db.one("SELECT scope, ok, entries FROM runpod_catalog_reads")
        self.assertEqual((row["scope"], row["ok"], row["entries"]), ("SECURE", True, 5), row)
        time.sleep(2.1)
        r = self.spawn_one(RUNPOD_CATALOG_TTL_SEC="2")
        self.assertEqual(len(self.catalog_reads()), 2, "the TTL passed: a new read")
        self.assertEqual(r.summary["pools"][0]["gpu_choice"]["catalog"], "fresh")
        e2e_lib.note("catalog cache: 5 runs (3 spawning, 1 plan, 1 no-op) made 1 catalog call; "
                     "1 more once RUNPOD_CATALOG_TTL_SEC passed")

    # -- 5. rate limit -------------------------------------------------------------------------

    def fleet_with_exited_pods(self, n):
        """n active workers whose pods then go EXITED (their workers stop)."""
        self.config.update(MIN_ACTIVE_GPUS=str(n), GPU_IDLE_TIMEOUT_SEC="60",
                           RECONCILE_INTERVAL_SEC="1")
        self.run_cycles_until(lambda: self.db.count_by_status("workers").get("active") == n,
                              timeout=30, what="%d active workers" % n)
        pods = [w["runpod_id"] for w in self.db.workers() if w["status"] == "active"]
        for pod in pods:
            status, _ = self.fake.http("POST", "/_fake/pods/%s/kill" % pod, {"to": "EXITED"})
            self.assertEqual(status, 200)
        self.config.update(MIN_ACTIVE_GPUS="0")
        return pods

    def test_creates_spread_when_quota_low(self):
        """3 pods EXITED and 6 tasks queued; a minute window of 12 calls (12 s long here),
        RUNPOD_RATE_LIMIT_RESERVE 2. The first cycle lists (1), reads the GPU catalog when due
        (0 or 1), reads the 3 failed workers' log tails (3), terminates their pods (3) and
        creates only what is left above the reserve (1 or 2); the rest wait for the window's
        reset. No 429 ever."""
        self.config.update(RUNPOD_RATE_LIMIT_RESERVE="2", MAX_ACTIVE_GPUS="9")
        fake = self.start_fake()
        pods = self.fleet_with_exited_pods(3)
        for i in range(6):  # long enough that each new worker holds one: the demand stays
            self.db.insert_task("generate", {"duration_sec": 20, "n": i})
        time.sleep(1.1)  # reconcile due: the next cycle lists pods
        seq0 = max([r["raw"]["seq"] for r in fake.requests()] or [0])
        self.ratelimit(windows=[{"name": "minute", "q": 12, "w": 12}])
        n0 = len(self.creates())
        first = self.cycle(ok_codes=(0, 6))
        deletes = [p for p in pods if self.deletes_of(p)]
        self.assertEqual(sorted(deletes), sorted(pods), "every termination in the first cycle")
        made = len(self.creates()) - n0
        other = [r for r in fake.api_requests() if r["raw"]["seq"] > seq0
                 and not (r["method"] == "POST" and r["path"].rstrip("/") == "/v2/pods")]
        self.assertEqual(len([r for r in other if r["path"].endswith("/logs")]), 3,
                         "each failed pod's log tail read, counted against the quota")
        self.assertEqual(made, 12 - 2 - len(other), first.describe())
        self.assertIn(made, (1, 2), first.describe())
        self.assertEqual(first.status("spawn_limit"), "rate_limit")
        self.assertEqual(first.action("spawns_deferred"), 6 - made, first.describe())
        self.assertTrue(first.events_named("ratelimit.deferred"))
        per_cycle = [made]
        t0 = time.monotonic()
        while len(self.creates()) - n0 < 6 and time.monotonic() - t0 < 40:
            before = len(self.creates())
            self.cycle(ok_codes=(0, 6))
            per_cycle.append(len(self.creates()) - before)
            time.sleep(0.4)
        rl = self.ratelimit()
        api = [r for r in fake.api_requests() if r["raw"]["seq"] > seq0]
        e2e_lib.note("ratelimit spread: window 12 calls / 12 s, reserve 2: creates per cycle %s, "
                     "%d API calls, %d answered 429; 3 terminations in the first cycle"
                     % ([n for n in per_cycle if n] + ["..."], len(api), rl["answered_429"]))
        self.assertEqual(len(self.creates()) - n0, 6, "the deferred creates happened later")
        self.assertEqual(rl["answered_429"], 0, "the quota was overrun")
        self.assertTrue(all(n <= 6 for n in per_cycle))

        # -- visible in status (text and JSON) and the metrics, from another process ----------
        st = self.run_binary("status", "--json")
        self.assertEqual(st.rc, 0, st.stderr[-2000:])
        q = json.loads(st.stdout)["runpod"]["rate_limit"]
        win = q["windows"][0]
        self.assertEqual((q["known"], win["name"], win["quota"], win["window_sec"]),
                         (True, "minute", 12, 12), q)
        self.assertTrue(0 <= q["remaining"] <= 12 and q["remaining"] == win["remaining"], q)
        text = self.run_binary("status").stdout
        self.assertRegex(text, r"(?m)^ratelimit \d+ RunPod calls left now \(creates keep 2 back\)")
        self.assertRegex(text, r"(?m)^ratelimit   minute: \d+ of 12 left")
        mfile = os.path.join(self.log_dir, "metrics.prom")
        self.cycle(env_overrides={"METRICS_FILE": mfile}, ok_codes=(0, 6))
        with open(mfile) as f:
            prom = f.read()
        got = re.search(r"(?m)^gpu_orchestrator_runpod_rate_limit_remaining (\d+)$", prom)
        self.assertTrue(got, prom[-3000:])
        self.assertRegex(prom, r'(?m)^gpu_orchestrator_runpod_rate_limit_window_quota'
                               r'\{window="minute"\} 12$')
        self.assertRegex(prom, r"(?m)^gpu_orchestrator_runpod_rate_limit_header_malformed 0$")
        self.assertRegex(prom, r'(?m)^gpu_orchestrator_spawns_deferred_total'
                               r'\{reason="rate_limit"\} \d+$')
        self.assertTrue(0 <= int(got.group(1)) <= 8, got.group(0))
        self.assertRegex(prom, r'(?m)^gpu_orchestrator_gpu_catalog_age_seconds'
                               r'\{scope="SECURE"\} \d+$')
        self.promtool_clean(prom)
        self.settle(timeout=90)
        self.invariants("rate limit spread", max_active=9)

    def test_storm_terminations_still_attempted(self):
        """Every call answered 429 (Retry-After 1 s): the two stale workers' pods are still
        asked to terminate -- a kill matters more than a create -- and no create is sent; once
        the storm ends they are terminated and the queue is served."""
        self.config.update(MAX_ACTIVE_GPUS="4")
        fake = self.start_fake()
        pods = self.fleet_with_exited_pods(2)
        self.config.update(GPU_IDLE_TIMEOUT_SEC="3")  # their heartbeats stopped: stale soon
        time.sleep(3.5)
        for i in range(3):
            self.db.insert_task("generate", {"duration_sec": 0.2, "n": i})
        self.ratelimit(mode="storm", storm_retry_after=1)
        n0 = len(self.creates())
        storm = [self.cycle(ok_codes=(0, 5, 6)) for _ in range(3)]
        attempted = {p: len(self.deletes_of(p)) for p in pods}
        self.assertEqual(len(self.creates()), n0, "a create was sent into the storm")
        self.assertTrue(all(n >= 1 for n in attempted.values()), attempted)
        self.assertTrue(all(r.summary["errors"] for r in storm))
        self.ratelimit(mode="normal", reset=True)
        self.settle(timeout=60)
        gone = {p["id"] for p in fake.pods()}
        self.assertFalse(set(pods) & gone, "the stale workers' pods were not terminated")
        e2e_lib.note("ratelimit storm: 3 cycles, DELETE attempts per pod %s, 0 creates; "
                     "terminated and served after it" % sorted(attempted.values()))
        self.invariants("429 storm, terminations first", max_active=6)

    def test_malformed_headers_are_unknown(self):
        """Garbled RateLimit headers: the cycle runs as without a quota (unknown), nothing
        crashes, status and the metrics say the header was unreadable."""
        self.config.update(RUNPOD_GPU_TYPES=A40)
        self.start_fake(boot_worker=False)
        self.ratelimit(mode="malformed", malformed_values=[
            '"minute";r=-4;t=60', "garbage ;;", "limit=100, remaining=0, reset=30",
            '"minute";r=99999999999999999;t=1', '("a" "b");r=1'])
        mfile = os.path.join(self.log_dir, "metrics.prom")
        for _ in range(3):
            r = self.spawn_one(METRICS_FILE=mfile)
            self.assertEqual(r.rc, 0, r.describe())
        self.assertEqual(len(self.creates()), 3)
        q = json.loads(self.run_binary("status", "--json").stdout)["runpod"]["rate_limit"]
        self.assertEqual((q["known"], q["malformed"], q["remaining"]), (False, True, -1), q)
        self.assertIn("unreadable", self.run_binary("status").stdout)
        with open(mfile) as f:
            prom = f.read()
        self.assertRegex(prom, r"(?m)^gpu_orchestrator_runpod_rate_limit_header_malformed 1$")
        self.assertNotRegex(prom, r"(?m)^gpu_orchestrator_runpod_rate_limit_remaining ")
        self.promtool_clean(prom)


if __name__ == "__main__":
    unittest.main()
