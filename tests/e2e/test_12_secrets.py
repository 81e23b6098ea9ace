"""No secret reaches an output (SPEC 8): the RunPod API key, the database password and a
WORKER_ENV_* value, each distinctive, never appear in stdout, stderr, the journal
(orchestrator_cycles) or system_logs, across working cycles, failing cycles and the other
commands. WORKER_ENV_* values do reach the pod's environment: that is their purpose.

The password belongs to a role this test creates in the test cluster; the private test server
uses trust authentication, so the password is sent but not checked (enough to prove it is never
printed). METRICS_FILE is checked when the build writes it (metrics are issue 6).
"""

import os
import time
import unittest

import psycopg2

import e2e_lib
from e2e_lib import SafetyTestCase

API_KEY = "rpa_KEY-DISTINCT-7f3a9c"
DB_PASSWORD = "pw-DISTINCT-123"
WORKER_SECRET = "tok-DISTINCT-456"
SECRETS = (API_KEY, DB_PASSWORD, WORKER_SECRET)


class TestSecrets(SafetyTestCase):

    def setUp(self):
        super().setUp()
        self.role = "e2e_secret_%d" % os.getpid()
        with e2e_lib._AdminConn() as admin:
            cur = admin.cursor()
            cur.execute("DROP ROLE IF EXISTS %s" % self.role)
            cur.execute("CREATE ROLE %s LOGIN SUPERUSER PASSWORD %%s" % self.role,
                        (DB_PASSWORD,))
        self.addCleanup(self._drop_role)

    def _drop_role(self):
        with e2e_lib._AdminConn() as admin:
            cur = admin.cursor()
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE usename = %s", (self.role,))
            try:
                cur.execute("DROP ROLE IF EXISTS %s" % self.role)
            except psycopg2.Error:
                pass

    def secret_url(self, dbname):
        host = os.environ.get("PGHOST", "")
        port = os.environ.get("PGPORT", "5432")
        q = "port=%s" % port + ("&host=%s" % host if host else "")
        return "postgresql://%s:%s@/%s?%s" % (self.role, DB_PASSWORD, dbname, q)

    def all_secrets(self):
        """SECRETS, plus with HTTP workers the gateway's signing secret and every pod's token."""
        if not self.http_workers:
            return SECRETS
        tokens = [(r["body"] or {}).get("env", {}).get("WORKER_TOKEN", "") for r in self.creates()]
        self.assertTrue(tokens and all(tokens), "every pod got a WORKER_TOKEN")
        return SECRETS + (e2e_lib.GATEWAY_SECRET,) + tuple(tokens)

    def assert_clean(self, where, text):
        for s in self.all_secrets():
            self.assertNotIn(s, text, "a secret (%s...) appears in %s" % (s[:6], where))

    def test_no_secret_in_any_output(self):
        fake = self.start_fake(extra_args=("--api-key", API_KEY))
        self.config.update(RUNPOD_API_KEY=API_KEY, MIN_ACTIVE_GPUS="0", MAX_ACTIVE_GPUS="2",
                           TASKS_PER_GPU_THRESHOLD="1", ENABLE_DB_LOGGING="true",
                           LOG_LEVEL="DEBUG", WORKER_ENV_SECRET_TOKEN=WORKER_SECRET)
        metrics_file = os.path.join(self.log_dir, "metrics.prom")
        self.config["METRICS_FILE"] = metrics_file
        url = self.secret_url(self.db_name)
        env = {"DATABASE_URL": url}
        self.work(2)
        outputs = []
        # Issue 12.7: RunPod's problem detail can echo what it was sent (the key, a worker env
        # value); it reaches the journal, the summary and the row's error_reason scrubbed.
        fake.set_faults(rules=[{"method": "POST", "path": "/v2/pods", "status": 422,
                                "detail": "rejected key %s with env %s" % (API_KEY, WORKER_SECRET),
                                "count": 1}])
        echoed = self.run_binary("single", env_overrides=env)
        self.assertEqual(echoed.rc, 6, echoed.describe())
        self.assertIn("rejected key ***", echoed.stdout, "the 422 detail is in the summary")
        outputs.append(echoed)
        fake.set_faults(rules=[])
        # Working cycles: spawn, promote, complete.
        for _ in range(40):
            r = self.run_binary("single", env_overrides=env)
            self.assertEqual(r.rc, 0, r.describe() + r.stderr[-2000:])
            outputs.append(r)
            if self.db.count_by_status("tasks").get("Complete") == 2:
                break
            time.sleep(0.3)
        self.assertEqual(self.db.count_by_status("tasks").get("Complete"), 2)
        # Failing cycles: RunPod refusing the key, and a create failing.
        fake.set_faults(rules=[{"method": "*", "path": "/v2/pods*", "status": 401,
                                "count": 2}])
        self.work(2)
        outputs.append(self.run_binary("single", env_overrides=env))
        fake.set_faults(rules=[])
        # The other commands, and a database that does not exist (connect error text).
        for args in (("plan",), ("config",), ("config", "--json"), ("status",),
                     ("status", "--json"), ("reconcile",), ("reconcile", "--json"),
                     ("single", "--dry-run")):
            outputs.append(self.run_binary(*args, env_overrides=env))
        bad = self.run_binary("single", env_overrides={
            "DATABASE_URL": self.secret_url("no_such_db_" + self.db_name)})
        self.assertEqual(bad.rc, 4)
        outputs.append(bad)

        for r in outputs:
            self.assert_clean("stdout of %s" % " ".join(r.args), r.stdout)
            self.assert_clean("stderr of %s" % " ".join(r.args), r.stderr)
        journal = "\n".join(x["j"] for x in self.db.query(
            "SELECT row_to_json(c)::text AS j FROM orchestrator_cycles c"))
        self.assertTrue(journal)
        self.assert_clean("orchestrator_cycles", journal)
        rows = "\n".join(x["j"] for x in self.db.query(
            "SELECT row_to_json(w)::text AS j FROM workers w"))
        self.assertIn("rejected key ***", rows, "the failed row records the scrubbed detail")
        self.assert_clean("workers", rows)
        logs = "\n".join(x["j"] for x in self.db.query(
            "SELECT row_to_json(l)::text AS j FROM system_logs l"))
        # Issue 12.8: an empty system_logs would prove nothing.
        self.assertGreater(logs.count("\n") + 1 if logs else 0, 20, "system_logs is ~empty")
        self.assertIn("pod.created", logs)
        self.assert_clean("system_logs", logs)
        config_out = [r for r in outputs if r.args == ("config",)][0].stdout
        self.assertIn("***set***", config_out)
        # By design: the worker's own environment carries WORKER_ENV_* values.
        envs = [(r["body"] or {}).get("env", {}) for r in self.creates()]
        self.assertTrue(envs and all(e.get("SECRET_TOKEN") == WORKER_SECRET for e in envs))
        self.assertTrue(all(API_KEY not in str(e) and DB_PASSWORD not in str(e) for e in envs),
                        "the orchestrator's own secrets leaked into a pod's environment")
        if self.http_workers:
            # The gateway's own log, and the secret redacted by `config`.
            with open(self.gateway.log_path) as f:
                self.assert_clean("the gateway's log", f.read())
            self.assertIn("GATEWAY_JWT_SECRET=***set***", config_out)
        # Issue 12.8: the metrics file must exist and hold the fleet, or the check proves nothing.
        self.assertTrue(os.path.exists(metrics_file), "METRICS_FILE was not written")
        with open(metrics_file) as f:
            metrics = f.read()
        self.assertIn("gpu_orchestrator_cycles_total", metrics)
        self.assert_clean("METRICS_FILE", metrics)
        metrics_note = "METRICS_FILE checked (%d bytes)" % len(metrics)
        e2e_lib.note("secrets: %d runs, %d journal rows, %d system_logs rows checked; no secret "
                     "found (%s)" % (len(outputs), journal.count("\n") + 1,
                                     logs.count("\n") + 1 if logs else 0, metrics_note))
        self.invariants("secrets")


class TestSecretsHttp(TestSecrets):
    """The same with HTTP workers (issue 13): neither GATEWAY_JWT_SECRET nor any pod's
    WORKER_TOKEN appears in any output, the journal, system_logs, metrics or the gateway's log."""
    http_workers = True


if __name__ == "__main__":
    unittest.main()
