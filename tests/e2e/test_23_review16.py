"""Scenario 23: an independent review of issue 16 (GPU choice from the catalog, RunPod's rate
limit, spend from billing, failure log tails, the stopped-pod warm pool), against the real
binary, a real PostgreSQL and the RunPod stand-in.

The review found three defects; each reproduction now holds as a regression test (named for
what holds), and one behaviour was found to hold already.

  fixed (branch fix16)
    1. a secret straddling the 1 KiB cut of a log line was stored (all of it but the cut-off
       end) in worker_failure_logs: the scrub ran after the line was cut. Now each line is
       scrubbed whole before the cut, and a cut line never ends with 8+ bytes of a secret
       (test_secret_cut_at_line_limit_is_masked);
    3. a stopped pod of a GPU type the pool no longer uses (RUNPOD_GPU_TYPES changed to a
       cheaper card) was started under the new type's price bound: the fleet ran past
       MAX_HOURLY_SPEND_USD. Now only a stopped pod of a usable type is started, charged at
       its own price when dearer, and one of a type taken out of its pool is terminated
       (stopped_type_gone) (test_stopped_pod_of_a_removed_type_is_not_started_past_the_spend_cap);
    4. one RateLimit answer with a window at r=0 and no reset (`"minute";r=0`) was persisted and
       re-read as "0 left" by every later run: the fleet never scaled up. Now a window without
       t resets after its policy w (else 60 s), t is believed up to min(w, 3600), and the pod
       list never waits more than 60 s on an old "0 left"
       (test_window_without_reset_resets_after_its_length).
  held
    2. the pod's WORKER_TOKEN (a JWT) printed with a full stop after it ("... eyJ..x.y."):
       podlog_scrub's jwt_len gives up on the third dot, but the logger's scrub (log.c) that
       runs after it masks the token.
"""

import time

from e2e_lib import SafetyTestCase, note

A40 = "NVIDIA A40"
H100 = "NVIDIA H100 80GB HBM3"
WARM = dict(MIN_ACTIVE_GPUS="0", MAX_ACTIVE_GPUS="2", TASKS_PER_GPU_THRESHOLD="1",
            GPU_IDLE_TIMEOUT_SEC="2", WORKER_GRACE_PERIOD_SEC="0", WARM_STOPPED_PODS="1",
            POD_NOT_FOUND_GRACE_SEC="3", RECONCILE_INTERVAL_SEC="1")


class Review16Case(SafetyTestCase):

    def statuses(self):
        return self.db.count_by_status("workers")

    def one_active(self, **cfg):
        self.config.update(MIN_ACTIVE_GPUS="1", MAX_ACTIVE_GPUS="1", **cfg)
        self.start_fake()
        self.run_cycles_until(lambda: self.statuses().get("active") == 1, timeout=30,
                              what="one active worker")
        return self.db.one("SELECT id FROM workers WHERE status = 'active'")["id"]

    def fail_with_log(self, wid, lines):
        pod = self.pod_of(wid)
        status, _ = self.fake.http("POST", "/_fake/pods/%s/log" % pod, {"lines": lines})
        self.assertEqual(status, 200)
        self.fake.http("POST", "/_fake/pods/%s/kill" % pod, {"to": "ERROR"})
        self.run_cycles_until(lambda: self.db.query(
            "SELECT 1 FROM worker_failure_logs WHERE worker_id = %s", (wid,)), timeout=30,
            what="the log tail is stored", ok_codes=(0, 6))
        return self.db.one("SELECT tail FROM worker_failure_logs WHERE worker_id = %s",
                           (wid,))["tail"]


class TestLogTailSecrets(Review16Case):

    def test_secret_cut_at_line_limit_is_masked(self):
        secret = "hf_" + "Zq7Lm2Xw9Rt4Kp8Vn3Bc6Hd1Fg5Js0Ya"  # 35 bytes
        wid = self.one_active(WORKER_ENV_HF_TOKEN=secret)
        # A long line (a traceback, a dumped config) whose 1 KiB cut falls 3 bytes before the
        # end of the secret.
        line = "x" * (1024 - len(secret) + 3) + secret + " rest of the line"
        tail = self.fail_with_log(wid, [line, "the last line"])
        self.assertIn("the last line", tail)
        self.assertNotIn(secret[:-3], tail,
                         "32 of the secret's 35 bytes are stored in worker_failure_logs (and "
                         "shown by `logs --worker`): the line is cut before it is scrubbed")
        self.invariants("secret at the line cut", max_active=1)


class TestLogTailWorkerToken(Review16Case):

    # The pods' workers speak HTTP to the gateway (issue 13): each pod gets a WORKER_TOKEN.
    http_workers = True

    def test_held_worker_token_followed_by_full_stop(self):
        wid = self.one_active()
        pod = [p for p in self.fake.pods() if p["id"] == self.pod_of(wid)][0]
        token = pod["env"]["WORKER_TOKEN"]
        self.assertEqual(token.count("."), 2)
        tail = self.fail_with_log(wid, ["gateway refused our credentials %s." % token,
                                        "the last line"])
        self.assertIn("the last line", tail)
        self.assertNotIn(token.split(".")[2], tail,
                         "the WORKER_TOKEN's signature is stored unmasked when a '.' follows "
                         "the token")
        self.invariants("token before a full stop", max_active=1)


class TestWarmPoolSpend(Review16Case):

    def test_stopped_pod_of_a_removed_type_is_not_started_past_the_spend_cap(self):
        self.config.update(WARM, RUNPOD_GPU_TYPES=A40, WARM_STOPPED_PODS="0")
        self.start_fake()
        self.fake.http("POST", "/_fake/config", {"gpu_costs": {A40: 0.40, H100: 2.69}})
        # 1. An A40 pod runs once: its price ($0.40/h) is on record.
        self.work(1, duration_sec=0.2)
        self.run_cycles_until(lambda: self.statuses().get("terminated", 0) == 1, timeout=60,
                              what="an A40 worker did its task and went", ok_codes=(0, 6))
        # 2. The pool runs H100s for a while; one is kept stopped (warm).
        self.config.update(RUNPOD_GPU_TYPES=H100, WARM_STOPPED_PODS="1")
        self.work(1, duration_sec=0.2)
        self.run_cycles_until(lambda: self.statuses().get("stopped", 0) == 1, timeout=60,
                              what="an H100 worker is kept stopped", ok_codes=(0, 6))
        stopped = self.db.one("SELECT id, gpu_type FROM workers WHERE status = 'stopped'")
        self.assertEqual(stopped["gpu_type"], H100)
        # 3. The operator moves the pool to A40s, under a $1/h cap: room for two A40s, none
        # for an H100.
        self.config.update(RUNPOD_GPU_TYPES=A40, MAX_HOURLY_SPEND_USD="1.0")
        self.work(2, duration_sec=20)
        peak = 0.0
        for _ in range(6):
            self.cycle(ok_codes=(0, 6))
            alive = [p for p in self.fake.pods() if p["status"] in
                     ("RUNNING", "STARTING", "PROVISIONING")]
            peak = max(peak, sum(0.40 if p["gpu"]["id"] == A40 else 2.69 for p in alive))
            time.sleep(0.4)
        started = self.db.worker(stopped["id"])["status"]
        note("e2e review16: after the switch to A40 under a $1/h cap, the stopped H100's row is "
             "%s; peak running $%.2f/h" % (started, peak))
        # Its type is no longer the pool's: the stopped H100 is terminated (stopped_type_gone).
        self.assertEqual(started, "terminated")
        self.assertLessEqual(peak, 1.0 + 1e-6,
                             "the stopped H100 pod ($2.69/h) was started under the A40's "
                             "price bound ($0.40/h): the fleet ran at $%.2f/h against a "
                             "$1.00/h MAX_HOURLY_SPEND_USD" % peak)


class TestRateLimitStall(Review16Case):

    def test_window_without_reset_resets_after_its_length(self):
        # Billing is read once an hour, so only the cycle's own calls bring new headers.
        self.config.update(MIN_ACTIVE_GPUS="0", MAX_ACTIVE_GPUS="2", TASKS_PER_GPU_THRESHOLD="1",
                           RECONCILE_INTERVAL_SEC="3600")
        self.start_fake()
        # RateLimit-Policy says the "minute" window is 5 s long: a window without a reset time
        # is taken to reset after its length w (after 60 s without a policy, and the pod list
        # never waits longer than 60 s on a "0 left": tests/unit/test_ratelimit.c).
        status, _ = self.fake.http("POST", "/_fake/ratelimit", {"windows": [
            {"name": "minute", "q": 100000, "w": 5}, {"name": "hour", "q": 1000000, "w": 3600}]})
        self.assertEqual(status, 200)
        # One pod list is answered with a window at 0 and no reset time; every later answer
        # would be normal (the fake's quota is nowhere near spent).
        self.fake.set_faults(rules=[{"method": "GET", "path": "/v2/pods", "count": 1,
                                     "headers": {"RateLimit": '"minute";r=0'}}])
        self.work(2, duration_sec=0.2)
        results = self.run_cycles_for(12, pause=0.5, ok_codes=(0, 6))
        creates = len(self.creates())
        calls = len(self.fake.api_requests())
        row = self.db.one("SELECT * FROM runpod_rate_limit")
        note("e2e review16: RateLimit '\"minute\";r=0' once: %d cycles, %d creates, %d RunPod "
             "calls in all; persisted %r" % (len(results), creates, calls,
                                             {k: row[k] for k in ("ratelimit", "remaining")
                                              if k in row}))
        self.assertGreater(creates, 0,
                           "%d cycles over 12 s made no create (and %d RunPod calls in all) "
                           "after one answer said r=0 without a reset: the persisted window "
                           "did not reset after its 5 s length"
                           % (len(results), calls))
