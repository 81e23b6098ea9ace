"""e2e_lib.py: shared machinery of the end-to-end tests (tests/e2e/test_*.py).

Each test gets its own database (CREATE DATABASE ... TEMPLATE orch_tpl), its own fake RunPod
server (tests/fakes/fake_runpod.py on 127.0.0.1, port 0) booting fake workers
(tests/fakes/fake_worker.py) for the pods it creates, and runs the real binary
(`$ORCH_BINARY single`) in a loop with a scaled-down configuration. Everything a test started is
stopped and dropped in its cleanups, whatever happened.

The tests only read the database, except where a scenario needs a state that a real system
reaches through a race (they say so). Fake workers use the worker contract only.

Environment:
  PGHOST PGPORT PGUSER    the PostgreSQL server holding the template (run.sh provides one)
  ORCH_TEST_TEMPLATE_DB   template database name, default orch_tpl
  ORCH_BINARY             the orchestrator binary, default <repo>/build/orchestrator
  ORCH_SOURCE_DIR         the repository, default two levels above this file
  ORCH_E2E_LOG_DIR        where per-test logs go (default a fresh /tmp directory)
  ORCH_E2E_VERBOSE=1      print every cycle summary line
"""

import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.request

import psycopg2
import psycopg2.extras

PY = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.environ.get("ORCH_SOURCE_DIR") or os.path.dirname(os.path.dirname(HERE))
BINARY = os.environ.get("ORCH_BINARY") or os.path.join(REPO, "build", "orchestrator")
TEMPLATE_DB = os.environ.get("ORCH_TEST_TEMPLATE_DB") or "orch_tpl"
FAKE_RUNPOD = os.path.join(REPO, "tests", "fakes", "fake_runpod.py")
FAKE_WORKER = os.path.join(REPO, "tests", "fakes", "fake_worker.py")
VERBOSE = os.environ.get("ORCH_E2E_VERBOSE") == "1"

_LOG_ROOT = os.environ.get("ORCH_E2E_LOG_DIR") or tempfile.mkdtemp(prefix="orch-e2e-")

# The scaled-down configuration every test starts from (SPEC section 3); tests override keys.
BASE_CONFIG = {
    "RUNPOD_API_KEY": "e2e-test-key",
    "MIN_ACTIVE_GPUS": "1",
    "MAX_ACTIVE_GPUS": "4",
    "TASKS_PER_GPU_THRESHOLD": "3",
    "MACHINES_TO_KEEP_IDLE": "0",
    "GPU_IDLE_TIMEOUT_SEC": "4",
    "TASK_STUCK_TIMEOUT_SEC": "60",
    "SPAWNING_TIMEOUT_SEC": "15",
    "GRACEFUL_SHUTDOWN_TIMEOUT_SEC": "30",
    "WORKER_GRACE_PERIOD_SEC": "1",
    "ORCHESTRATOR_POLL_SEC": "1",
    "SPAWN_POD_ID_GRACE_SEC": "10",
    "POD_NOT_FOUND_GRACE_SEC": "10",
    "RECONCILE_INTERVAL_SEC": "2",
    "ORPHAN_POD_GRACE_SEC": "60",
    "STUCK_EXEMPT_TASK_TYPES": "%_orchestrator",
    "MAX_TASK_ATTEMPTS": "3",
    "MIN_WORKERS_FOR_RATE_CHECK": "50",
    "RUNPOD_CONNECT_TIMEOUT_SEC": "2",
    "RUNPOD_REQUEST_TIMEOUT_SEC": "5",
    "RUNPOD_MAX_RETRIES": "1",
    # A SIGKILLed cycle blocks the next ones until its lease expires: keep that short here.
    "CYCLE_LEASE_TTL_SEC": "5",
    "SAFE_MODE": "false",
    "LOG_FORMAT": "json",
    "LOG_LEVEL": "INFO",
    "WORKER_ID_PREFIX": "gpu-",
    # What every fake worker gets in its pod environment (WORKER_ENV_<NAME> -> <NAME>).
    "WORKER_ENV_FAKE_WORKER_HEARTBEAT_SEC": "0.5",
    "WORKER_ENV_FAKE_WORKER_CLAIM_POLL_SEC": "0.2",
}

PASS_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "USER")

# Worker statuses that still occupy (or may occupy) a pod.
LIVE_STATUSES = ("spawning", "active", "terminating", "error", "crashed", "inactive")


def log_dir_for(test_id):
    d = os.path.join(_LOG_ROOT, re.sub(r"[^A-Za-z0-9_.-]+", "_", test_id))
    os.makedirs(d, exist_ok=True)
    return d


def log_root():
    return _LOG_ROOT


# ------------------------------------------------------------------------------------------------
# PostgreSQL


def server_conninfo(dbname):
    """A libpq URI for dbname on the server named by the PG* variables (unix socket or TCP)."""
    host = os.environ.get("PGHOST", "")
    port = os.environ.get("PGPORT", "5432")
    user = os.environ.get("PGUSER", "postgres")
    q = "port=%s&user=%s" % (port, user)
    if host:
        q = "host=%s&%s" % (host, q)
    return "postgresql:///%s?%s" % (dbname, q)


def admin_connect():
    conn = psycopg2.connect(server_conninfo("postgres"), connect_timeout=5)
    conn.autocommit = True
    return conn


class Database:
    """A throw-away database copied from the migrated template."""

    def __init__(self, name):
        self.name = name
        self.url = server_conninfo(name)
        with _AdminConn() as admin:
            cur = admin.cursor()
            cur.execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % _ident(name))
            # The template may be busy for a moment (another test's CREATE DATABASE).
            for attempt in range(50):
                try:
                    cur.execute("CREATE DATABASE %s TEMPLATE %s" % (_ident(name),
                                                                    _ident(TEMPLATE_DB)))
                    break
                except psycopg2.errors.ObjectInUse:
                    if attempt == 49:
                        raise
                    time.sleep(0.1)
        self.conn = psycopg2.connect(self.url, application_name="e2e_test")
        self.conn.autocommit = True

    def drop(self):
        try:
            self.conn.close()
        except psycopg2.Error:
            pass
        with _AdminConn() as admin:
            admin.cursor().execute("DROP DATABASE IF EXISTS %s WITH (FORCE)" % _ident(self.name))

    def query(self, sql, args=None):
        with self.conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
            cur.execute(sql, args)
            if cur.description is None:
                return []
            return [dict(r) for r in cur.fetchall()]

    def one(self, sql, args=None):
        rows = self.query(sql, args)
        return rows[0] if rows else None

    def scalar(self, sql, args=None):
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            row = cur.fetchone()
            return row[0] if row else None

    def execute(self, sql, args=None):
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.rowcount

    # -- domain helpers ---------------------------------------------------------------------------

    def insert_task(self, task_type="generate", params=None, **cols):
        """Inserts one Queued gpu task (own statement, so created_at orders insertions)."""
        names = ["task_type", "params"] + list(cols)
        values = [task_type, json.dumps(params or {})] + list(cols.values())
        sql = "INSERT INTO tasks (%s) VALUES (%s) RETURNING id::text" % (
            ", ".join(names), ", ".join(["%s"] * len(names)))
        return self.scalar(sql, values)

    def tasks(self):
        return self.query("SELECT id::text, task_type, params, status::text, attempts, "
                          "max_attempts, worker_id, error_message, output_location, "
                          "generation_started_at, generation_processed_at, available_at "
                          "FROM tasks ORDER BY created_at, id")

    def task(self, task_id):
        return self.one("SELECT id::text, task_type, params, status::text, attempts, "
                        "worker_id, error_message, output_location, generation_started_at, "
                        "generation_processed_at FROM tasks WHERE id = %s", (task_id,))

    def workers(self):
        return self.query("SELECT id, status::text, runpod_id, last_heartbeat, metadata, "
                          "created_at, promoted_at, ended_at, end_kind, last_task_activity_at "
                          "FROM workers ORDER BY created_at, id")

    def worker(self, worker_id):
        return self.one("SELECT id, status::text, runpod_id, last_heartbeat, metadata, "
                        "created_at, promoted_at, ended_at, end_kind FROM workers WHERE id = %s",
                        (worker_id,))

    def count_by_status(self, table):
        rows = self.query("SELECT status::text AS s, count(*) AS n FROM %s GROUP BY 1"
                          % _ident(table))
        return {r["s"]: r["n"] for r in rows}

    def now(self):
        return self.scalar("SELECT now()")

    def dump(self):
        """Every row of every table and every sequence position, as sorted JSON text: two dumps
        compare equal iff nothing was written."""
        out = {}
        tables = [r["t"] for r in self.query(
            "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) AS t "
            "FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') "
            "ORDER BY 1")]
        for t in tables:
            rows = self.query("SELECT row_to_json(x)::text AS j FROM %s x" % t)
            out[t] = sorted(r["j"] for r in rows)
        seqs = [r["s"] for r in self.query(
            "SELECT quote_ident(schemaname) || '.' || quote_ident(sequencename) AS s "
            "FROM pg_sequences WHERE schemaname NOT IN ('pg_catalog', 'information_schema')")]
        for s in seqs:
            out["seq:" + s] = [json.dumps(self.one("SELECT last_value, is_called FROM %s" % s))]
        return out


class _AdminConn:
    def __enter__(self):
        self.conn = admin_connect()
        return self.conn

    def __exit__(self, *exc):
        self.conn.close()
        return False


def _ident(name):
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError("bad identifier %r" % name)
    return '"%s"' % name


# ------------------------------------------------------------------------------------------------
# Fake RunPod


class FakeRunPod:
    """tests/fakes/fake_runpod.py as a child process (its own process group, so its fake
    workers die with it). `requests()` returns the recorded requests as dicts with at least
    method, path and body (parsed JSON or None)."""

    def __init__(self, log_dir, boot_worker=True, extra_args=(), env=None):
        self.log_path = os.path.join(log_dir, "fake_runpod.log")
        self.workers_log_path = os.path.join(log_dir, "fake_workers.log")
        args = [PY, FAKE_RUNPOD, "--port", "0", "--api-key", BASE_CONFIG["RUNPOD_API_KEY"],
                "--boot-log", self.workers_log_path, "--parent-pid", str(os.getpid())]
        if boot_worker:
            args += ["--boot-cmd", "%s %s" % (PY, FAKE_WORKER)]
        args += list(extra_args)
        self.args = args
        self._log = open(self.log_path, "ab", buffering=0)
        penv = dict(os.environ)
        penv.update(env or {})
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self._log,
                                     stdin=subprocess.DEVNULL, env=penv,
                                     start_new_session=True)
        self.port = self._read_port(timeout=15)
        self.base_url = "http://127.0.0.1:%d" % self.port
        self._drain = threading.Thread(target=self._copy_stdout, daemon=True)
        self._drain.start()

    def _read_port(self, timeout):
        deadline = time.monotonic() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            r, _, _ = select.select([fd], [], [], 0.1)
            if not r:
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
            self._log.write(chunk)
            for line in buf.decode("utf-8", "replace").splitlines():
                m = (re.search(r"127\.0\.0\.1:(\d+)", line) or
                     re.search(r"\bport[\"'=: ]+(\d+)", line, re.I) or
                     re.fullmatch(r"\s*(\d{2,5})\s*", line))
                if m and int(m.group(1)) > 0:
                    return int(m.group(1))
        self.stop()
        raise RuntimeError("fake_runpod did not print its port (args %r); log %s:\n%s"
                           % (self.args, self.log_path, tail(self.log_path)))

    def _copy_stdout(self):
        try:
            for chunk in iter(lambda: self.proc.stdout.read1(4096), b""):
                self._log.write(chunk)
        except (ValueError, OSError):
            pass

    # -- control API ---------------------------------------------------------------------------

    def http(self, method, path, body=None, timeout=5):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base_url + path, data=data, method=method)
        req.add_header("Authorization", "Bearer " + BASE_CONFIG["RUNPOD_API_KEY"])
        req.add_header("User-Agent", "orchestrator-e2e/1")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                raw = resp.read()
                return resp.status, (json.loads(raw) if raw.strip() else None)
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw) if raw.strip() else None
            except ValueError:
                return e.code, raw.decode("utf-8", "replace")

    def requests(self):
        status, body = self.http("GET", CONTROL["requests"])
        if status != 200:
            raise RuntimeError("fake request log: HTTP %s %r" % (status, body))
        items = body.get("requests", body) if isinstance(body, dict) else body
        return [normalise_request(r) for r in items]

    def stats(self):
        status, body = self.http("GET", CONTROL["stats"])
        if status != 200:
            raise RuntimeError("fake stats: HTTP %s %r" % (status, body))
        return body

    def set_faults(self, **faults):
        """POST /_fake/faults: merges fault switches (never_boot, create_latency_ms, rules...)."""
        status, body = self.http("POST", "/_fake/faults", faults)
        if status != 200:
            raise RuntimeError("fake faults: HTTP %s %r" % (status, body))
        return body

    def pods(self):
        """The fake's pods (GET /_fake/pods, not recorded), each with _boot_pid."""
        status, body = self.http("GET", "/_fake/pods")
        if status != 200:
            raise RuntimeError("fake pods: HTTP %s %r" % (status, body))
        return body["pods"]

    def inject_pod(self, name, **fields):
        """POST /_fake/pods: a pod that exists without a create request (not recorded)."""
        fields["name"] = name
        status, body = self.http("POST", "/_fake/pods", fields)
        if status != 201:
            raise RuntimeError("fake inject pod: HTTP %s %r" % (status, body))
        return body

    def api_requests(self, method=None):
        """Recorded requests to the RunPod API itself (paths under /v2/), optionally of one
        method."""
        out = [r for r in self.requests() if r["path"].startswith("/v2/")]
        if method:
            out = [r for r in out if r["method"] == method]
        return out

    def stop(self):
        boot_pids = []
        if self.proc.poll() is None:
            try:
                boot_pids = [p["_boot_pid"] for p in self.pods() if p.get("_boot_pid")]
            except Exception:  # noqa: BLE001 - best effort: the fake may be wedged
                boot_pids = []
        if self.proc.poll() is None:
            # SIGTERM: the fake stops every boot process (own process groups) and exits.
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        # Whatever is left of the group (fake workers included) goes now.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        # Boot processes run in their own process groups; make sure none outlives the test
        # (after a moment's grace: the fake SIGTERMed them and they log their exit).
        deadline = time.monotonic() + 1.0
        for pid in boot_pids:
            while time.monotonic() < deadline and _group_alive(pid):
                time.sleep(0.05)
        for pid in boot_pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.proc.stdout.close()
        except OSError:
            pass
        self._log.close()


# ------------------------------------------------------------------------------------------------
# The worker gateway (issue 13)

GATEWAY_SECRET = "e2e-gateway-secret-0123456789abcdef0123456789"
GATEWAY_ROLE = "orch_gateway_e2e"


def ensure_gateway_role():
    """A login role holding only orchestrator_worker, as the gateway should connect (roles are
    cluster-wide; created once)."""
    with _AdminConn() as admin:
        cur = admin.cursor()
        cur.execute("DO $$ BEGIN CREATE ROLE %s LOGIN; EXCEPTION WHEN duplicate_object OR "
                    "unique_violation THEN NULL; END $$" % _ident(GATEWAY_ROLE))
        cur.execute("GRANT orchestrator_worker TO %s" % _ident(GATEWAY_ROLE))


def gateway_conninfo(dbname):
    host = os.environ.get("PGHOST", "")
    port = os.environ.get("PGPORT", "5432")
    q = "port=%s&user=%s" % (port, GATEWAY_ROLE)
    if host:
        q = "host=%s&%s" % (host, q)
    return "postgresql:///%s?%s" % (dbname, q)


class Gateway:
    """`$ORCH_BINARY gateway --port 0` on 127.0.0.1 for one test database, connected as
    GATEWAY_ROLE, local storage under the test's log directory. Its port is read from the
    gateway.start event; its log goes to gateway.log."""

    def __init__(self, db, log_dir, env=None):
        ensure_gateway_role()
        self.log_path = os.path.join(log_dir, "gateway.log")
        self.storage_dir = os.path.join(log_dir, "storage")
        e = {k: v for k, v in os.environ.items()
             if k in PASS_ENV or k.startswith(("ASAN_", "UBSAN_", "LSAN_"))}
        e.update({"GATEWAY_DATABASE_URL": gateway_conninfo(db.name),
                  "GATEWAY_JWT_SECRET": GATEWAY_SECRET, "GATEWAY_BIND_ADDRESS": "127.0.0.1",
                  "STORAGE_DIR": self.storage_dir, "LOG_FORMAT": "json", "LOG_LEVEL": "INFO"})
        e.update(env or {})
        self._log = open(self.log_path, "ab", buffering=0)
        self.proc = subprocess.Popen([BINARY, "gateway", "--port", "0"], env=e,
                                     stdin=subprocess.DEVNULL, stdout=self._log,
                                     stderr=subprocess.PIPE)
        self.port = None
        deadline = time.monotonic() + 20
        buf = b""
        fd = self.proc.stderr.fileno()
        while time.monotonic() < deadline and self.port is None and self.proc.poll() is None:
            r, _, _ = select.select([fd], [], [], 0.1)
            if not r:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            buf += chunk
            self._log.write(chunk)
            for line in buf.decode("utf-8", "replace").splitlines():
                if '"gateway.start"' in line:
                    try:
                        self.port = int(json.loads(line)["port"])
                    except (ValueError, KeyError):
                        pass
        if self.port is None:
            self.stop()
            raise RuntimeError("the gateway did not start; log %s:\n%s"
                               % (self.log_path, tail(self.log_path)))
        self.base_url = "http://127.0.0.1:%d" % self.port
        self._drain = threading.Thread(target=self._copy, daemon=True)
        self._drain.start()

    def _copy(self):
        try:
            for chunk in iter(lambda: self.proc.stderr.read1(65536), b""):
                self._log.write(chunk)
        except (ValueError, OSError):
            pass

    def get(self, path, timeout=10):
        """GET base_url + path: (status, body bytes)."""
        try:
            with urllib.request.urlopen(self.base_url + path, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def stop(self):
        """SIGTERM, then wait; returns the exit code (SIGKILL after 15 s)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        try:
            self._log.close()
        except OSError:
            pass
        return self.proc.returncode


def _group_alive(pgid):
    """True while a non-zombie process of the group exists."""
    try:
        out = subprocess.run(["ps", "-o", "stat=", "-g", str(pgid)], capture_output=True,
                             text=True, timeout=5).stdout.split()
    except (OSError, subprocess.TimeoutExpired):
        return False
    return any(not st.startswith("Z") for st in out)


# Control endpoints of the fake (adapted to tests/fakes/fake_runpod.py).
CONTROL = {
    "requests": "/_fake/requests",
    "stats": "/_fake/stats",
}


def normalise_request(r):
    body = r.get("body")
    if isinstance(body, str):
        try:
            body = json.loads(body) if body.strip() else None
        except ValueError:
            pass
    path = r.get("path") or r.get("url") or ""
    return {"method": (r.get("method") or "").upper(), "path": path.split("?")[0],
            "body": body, "status": r.get("status") or r.get("response_status"),
            "time": r.get("time") or r.get("ts") or r.get("timestamp"), "raw": r}


# ------------------------------------------------------------------------------------------------
# The binary


class CycleResult:
    def __init__(self, args, rc, stdout, stderr, started, finished):
        self.args = args
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.started = started
        self.finished = finished
        self.summary = parse_summary(stdout)
        self.events = parse_events(stderr)

    def events_named(self, name):
        return [e for e in self.events if e.get("event") == name]

    def action(self, key):
        return int(((self.summary or {}).get("actions") or {}).get(key, 0) or 0)

    def status(self, key):
        return ((self.summary or {}).get("status") or {}).get(key)

    @property
    def skipped_locked(self):
        return (self.summary or {}).get("skipped") == "locked" or \
            bool(self.events_named("cycle.skipped_locked"))

    def describe(self):
        s = self.summary or {}
        acts = {k: v for k, v in (s.get("actions") or {}).items() if v}
        st = {k: v for k, v in (s.get("status") or {}).items()
              if k in ("queued", "running", "spawning", "active", "idle", "busy",
                       "terminating", "desired")}
        extra = " skipped=%s" % s["skipped"] if s.get("skipped") else ""
        return "rc=%s cycle=%s%s actions=%s status=%s plan=%s errors=%s" % (
            self.rc, s.get("cycle"), extra, json.dumps(acts), json.dumps(st),
            json.dumps([(p.get("action"), p.get("reason"), p.get("worker_id"))
                        for p in (s.get("plan") or [])]), json.dumps(s.get("errors")))


def parse_summary(stdout):
    text = stdout.strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        pass
    # Tolerate stray lines: the summary is the last line that is a JSON object.
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def parse_events(stderr):
    out = []
    for line in stderr.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
    return out


def tail(path, n=60):
    try:
        with open(path, "rb") as f:
            lines = f.read().decode("utf-8", "replace").splitlines()
        return "\n".join(lines[-n:])
    except OSError as e:
        return "(no log: %s)" % e


def binary_usable():
    return os.path.isfile(BINARY) and os.access(BINARY, os.X_OK)


# ------------------------------------------------------------------------------------------------
# Test case base


class E2ETestCase(unittest.TestCase):
    """Fresh database per test; `start_fake()`, `cycle()`, `run_cycles_until()`; everything is
    cleaned up. On failure the last cycles' logs and the fake's log are printed."""

    maxDiff = None
    fake = None

    def setUp(self):
        if not binary_usable():
            self.fail("orchestrator binary not found at %s (set ORCH_BINARY or build it)"
                      % BINARY)
        tid = self.id().split(".", 1)[-1]
        self.log_dir = log_dir_for(tid)
        self.db_name = ("e2e_%s_%d" % (re.sub(r"[^a-z0-9]+", "_", tid.lower())[-40:],
                                       os.getpid()))
        self.db = Database(self.db_name)
        self.addCleanup(self.db.drop)
        self.config = dict(BASE_CONFIG)
        self.results = []
        self._cycle_no = 0
        self.addCleanup(self._report_on_failure)

    # -- fake ---------------------------------------------------------------------------------

    def start_fake(self, boot_worker=True, extra_args=(), env=None):
        if self.http_workers and self.gateway is None:
            self.start_gateway()
        fake = FakeRunPod(self.log_dir, boot_worker=boot_worker, extra_args=extra_args,
                          env=env)
        self.addCleanup(fake.stop)
        self.fake = fake
        return fake

    # -- the worker gateway (issue 13) ----------------------------------------------------------

    # True in the HTTP variants of the scenarios: the pods' workers speak the reference worker's
    # HTTP dialect to `orchestrator gateway` (started per test) instead of calling SQL.
    http_workers = False
    gateway = None

    def start_gateway(self, **env):
        gw = Gateway(self.db, self.log_dir, env=env)
        self.addCleanup(self._stop_gateway, gw)
        self.gateway = gw
        self.config["GATEWAY_PUBLIC_URL"] = gw.base_url
        self.config["GATEWAY_JWT_SECRET"] = GATEWAY_SECRET
        return gw

    def _stop_gateway(self, gw):
        rc = gw.stop()
        if rc != 0:   # a crash, a sanitizer report or a leak fails the test
            raise AssertionError("the gateway exited %s on SIGTERM; log %s:\n%s"
                                 % (rc, gw.log_path, tail(gw.log_path, 40)))

    # -- running the binary -------------------------------------------------------------------

    def env(self, **overrides):
        # Only what a process needs from the outside (no stray configuration variable of the
        # developer's shell may change a scenario), then the scenario's configuration.
        e = {k: v for k, v in os.environ.items()
             if k in PASS_ENV or k.startswith(("ASAN_", "UBSAN_", "LSAN_", "PG"))}
        e.update(self.config)
        e["DATABASE_URL"] = self.db.url
        if not self.http_workers:       # HTTP workers get no database access at all
            e["WORKER_ENV_DATABASE_URL"] = self.db.url
        if self.fake is not None:
            e["RUNPOD_API_BASE_URL"] = self.fake.base_url
        for k, v in overrides.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = str(v)
        return e

    def run_binary(self, *args, env_overrides=None, timeout=60):
        env = self.env(**(env_overrides or {}))
        started = time.time()
        p = subprocess.run([BINARY] + list(args), env=env, stdin=subprocess.DEVNULL,
                           capture_output=True, timeout=timeout)
        res = CycleResult(args, p.returncode, p.stdout.decode("utf-8", "replace"),
                          p.stderr.decode("utf-8", "replace"), started, time.time())
        self._record(res)
        return res

    def spawn_binary(self, *args, env_overrides=None):
        """Starts the binary without waiting; finish with finish_binary(handle)."""
        env = self.env(**(env_overrides or {}))
        p = subprocess.Popen([BINARY] + list(args), env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        return (p, args, time.time())

    def finish_binary(self, handle, timeout=60):
        p, args, started = handle
        out, err = p.communicate(timeout=timeout)
        res = CycleResult(args, p.returncode, out.decode("utf-8", "replace"),
                          err.decode("utf-8", "replace"), started, time.time())
        self._record(res)
        return res

    def _record(self, res):
        self._cycle_no += 1
        res.index = self._cycle_no
        base = os.path.join(self.log_dir, "run-%03d-%s" % (self._cycle_no,
                                                          "_".join(res.args) or "none"))
        with open(base + ".stdout", "w") as f:
            f.write(res.stdout)
        with open(base + ".stderr", "w") as f:
            f.write(res.stderr)
        self.results.append(res)
        if VERBOSE:
            sys.stderr.write("  [%s #%d] %s\n" % (self.id().rsplit(".", 1)[-1], res.index,
                                                  res.describe()))

    def cycle(self, *extra_args, ok_codes=(0,), env_overrides=None):
        """One `orchestrator single`; asserts the exit code and that a summary was printed."""
        res = self.run_binary("single", *extra_args, env_overrides=env_overrides)
        self.assertIn(res.rc, ok_codes, "orchestrator single exited %s\nstdout:\n%s\nstderr:\n%s"
                      % (res.rc, res.stdout[-3000:], res.stderr[-6000:]))
        self.assertIsNotNone(res.summary, "no JSON summary on stdout: %r" % res.stdout[-2000:])
        return res

    def run_cycles_until(self, predicate, timeout, what, pause=0.4, check_each=None,
                         **kwargs):
        """Runs cycles (pause seconds apart) until predicate() is true; fails after timeout
        seconds naming `what`. check_each(result), if given, runs after every cycle (for
        invariants that must hold all along). Returns the results of these cycles."""
        deadline = time.monotonic() + timeout
        out = []
        while True:
            res = self.cycle(**kwargs)
            out.append(res)
            if check_each is not None:
                check_each(res)
            if predicate():
                return out
            if time.monotonic() >= deadline:
                self.fail("timed out after %ss waiting for: %s\nworkers: %s\ntasks: %s\n"
                          "last cycle: %s" % (timeout, what, fmt_rows(self.db.workers()),
                                              fmt_rows(self.db.tasks()), res.describe()))
            time.sleep(pause)

    def run_cycles_for(self, seconds, pause=0.4, check_each=None, **kwargs):
        deadline = time.monotonic() + seconds
        out = []
        while time.monotonic() < deadline:
            res = self.cycle(**kwargs)
            out.append(res)
            if check_each is not None:
                check_each(res)
            time.sleep(pause)
        return out

    # -- assertions on the logs / summaries ---------------------------------------------------

    def all_events(self, name, results=None):
        out = []
        for r in (results if results is not None else self.results):
            out.extend(r.events_named(name))
        return out

    def total_action(self, key, results=None):
        return sum(r.action(key) for r in (results if results is not None else self.results))

    def pod_of(self, worker_id):
        return self.db.scalar("SELECT runpod_id FROM workers WHERE id = %s", (worker_id,))

    def deletes_of(self, pod_id):
        return [r for r in self.fake.api_requests("DELETE") if r["path"].rstrip("/")
                .endswith("/" + pod_id)]

    def creates(self):
        return [r for r in self.fake.api_requests("POST") if r["path"].rstrip("/") == "/v2/pods"]

    # -- diagnostics ---------------------------------------------------------------------------

    def _report_on_failure(self):
        outcome = getattr(self, "_outcome", None)
        result = getattr(outcome, "result", None)
        failed = False
        if result is not None:
            for test, _ in list(getattr(result, "failures", [])) + \
                    list(getattr(result, "errors", [])):
                if test is self:
                    failed = True
        if outcome is not None and not getattr(outcome, "success", True):
            failed = True
        if not failed:
            return
        w = sys.stderr.write
        w("\n==== diagnostics for %s (logs in %s)\n" % (self.id(), self.log_dir))
        try:
            w("workers:\n%s\n" % fmt_rows(self.db.workers()))
            w("tasks:\n%s\n" % fmt_rows(self.db.tasks()))
        except Exception as e:  # noqa: BLE001 - diagnostics only
            w("(db unavailable: %s)\n" % e)
        for r in self.results[-3:]:
            w("-- run #%d %s: %s\n" % (getattr(r, "index", 0), " ".join(r.args),
                                       r.describe()))
            w("\n".join(r.stderr.splitlines()[-25:]) + "\n")
        if self.fake is not None:
            w("-- fake_runpod.log (tail):\n%s\n" % tail(self.fake.log_path, 20))
            w("-- fake_workers.log (tail):\n%s\n" % tail(self.fake.workers_log_path, 40))


def fmt_rows(rows):
    def short(v):
        if isinstance(v, dict):
            v = {k: v[k] for k in v if k in ("error_reason", "vram_total_mb", "duration_sec",
                                              "hang", "stop_heartbeat", "fault_attempts")}
        s = str(v)
        return s if len(s) <= 60 else s[:57] + "..."
    return "\n".join("  " + ", ".join("%s=%s" % (k, short(v)) for k, v in r.items())
                     for r in rows) or "  (none)"


def wait_until(predicate, timeout, pause=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(pause)
    return predicate()


# ------------------------------------------------------------------------------------------------
# Safety helpers (tests/e2e/test_1*.py): a hold log, the four fleet invariants, settling.

# A test-only audit of every change of a task's status or holder, filled by a trigger that the
# test creates in its own throw-away database (never part of the product schema).
HOLD_AUDIT_SQL = """
CREATE TABLE IF NOT EXISTS e2e_task_holds (
    seq bigserial PRIMARY KEY, task_id uuid NOT NULL, old_status text, new_status text,
    old_worker text, new_worker text, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE OR REPLACE FUNCTION e2e_audit_task_holds() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.worker_id IS DISTINCT FROM OLD.worker_id OR NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO e2e_task_holds (task_id, old_status, new_status, old_worker, new_worker)
        VALUES (NEW.id, OLD.status::text, NEW.status::text, OLD.worker_id, NEW.worker_id);
    END IF;
    RETURN NEW;
END $$;
DROP TRIGGER IF EXISTS e2e_task_holds_audit ON tasks;
CREATE TRIGGER e2e_task_holds_audit AFTER UPDATE ON tasks
    FOR EACH ROW EXECUTE FUNCTION e2e_audit_task_holds();
"""


def note(line):
    """Prints one result line at the start of a line of stderr (ctest's log keeps it; scripts/
    test.sh lists lines starting with invariants:, crash-loop:, poison: as highlights)."""
    sys.stderr.write("\n" + line + "\n")
    sys.stderr.flush()


def install_hold_audit(db):
    """Creates the e2e_task_holds log and its trigger in db (a test database)."""
    db.execute(HOLD_AUDIT_SQL)


def double_held(db):
    """Transitions that handed an In Progress task from one worker to another without a
    release (the task held by two workers): must stay empty."""
    return db.query("SELECT task_id::text, old_worker, new_worker, at FROM e2e_task_holds "
                    "WHERE old_status = 'In Progress' AND new_status = 'In Progress' "
                    "AND old_worker IS DISTINCT FROM new_worker")


def claims_of(db, task_id):
    """Workers that claimed task_id, in order (one entry per claim)."""
    return [r["new_worker"] for r in db.query(
        "SELECT new_worker FROM e2e_task_holds WHERE task_id = %s AND new_status = 'In Progress' "
        "AND old_status IS DISTINCT FROM 'In Progress' ORDER BY seq", (task_id,))]


def binary_has_test_hooks(binary=None):
    """True when the binary was built with -DORCH_TEST_HOOKS=ON (its crash points are compiled
    in, so their names are in the binary)."""
    try:
        with open(binary or BINARY, "rb") as f:
            return b"ORCH_TEST_CRASH_AT" in f.read()
    except OSError:
        return False


def is_ours(prefix, name):
    """Whether a pod name has our worker-id shape: <prefix><yyyymmdd_HHMMSS>-<8 lower hex>
    (src/core/worker_name.c). A name that merely starts with the prefix is somebody else's."""
    return isinstance(name, str) and re.fullmatch(
        re.escape(prefix) + r"[0-9]{8}_[0-9]{6}-[0-9a-f]{8}", name) is not None


def fleet_facts(db, fake, prefix="gpu-"):
    """The fleet as the invariants see it: our pods, live rows, leaked pods, vanished rows,
    task counts, lost tasks (In Progress without a live holder), double holds, the fake's
    max_pods_alive."""
    pods = [p for p in fake.pods() if is_ours(prefix, p["name"])] if fake else []
    rows = db.query("SELECT id, status::text, runpod_id FROM workers WHERE status <> 'terminated'")
    by_pod = {r["runpod_id"]: r for r in rows if r["runpod_id"]}
    unrecorded = {r["id"]: r for r in rows if not r["runpod_id"]}
    leaked = [p for p in pods if p["id"] not in by_pod and p["name"] not in unrecorded]
    pod_ids = {p["id"] for p in pods}
    vanished = [r for r in rows if r["runpod_id"] and r["runpod_id"] not in pod_ids]
    tasks = db.count_by_status("tasks")
    lost = db.query("SELECT t.id::text, t.worker_id, w.status::text AS worker_status FROM tasks t "
                    "LEFT JOIN workers w ON w.id = t.worker_id WHERE t.status = 'In Progress' "
                    "AND (w.id IS NULL OR w.status NOT IN ('active', 'terminating'))")
    try:
        doubles = double_held(db)
    except psycopg2.Error:
        doubles = None  # no audit installed
    stats = fake.stats() if fake else {}
    return {"pods": pods, "rows": rows, "leaked": leaked, "vanished": vanished, "tasks": tasks,
            "lost": lost, "double_held": doubles, "max_pods_alive": stats.get("max_pods_alive"),
            "creates": stats.get("creates")}


def check_invariants(tc, label, max_active=None, allow_lost=False, fake=None, db=None):
    """The four invariants of the fault-injection suite, checked and printed:
    (a) every pod with our prefix belongs to a live worker row (its recorded pod, or the pod
        named after a row that has no pod id yet): nothing leaked;
    (b) every task is Complete, Failed, Queued, or In Progress held by an active/terminating
        worker: nothing lost;
    (c) no task was ever handed from one worker to another while In Progress (hold log);
    (d) the fake never held more than MAX_ACTIVE_GPUS pods at once."""
    fake = fake if fake is not None else tc.fake
    db = db if db is not None else tc.db
    prefix = tc.config.get("WORKER_ID_PREFIX", "gpu-")
    mx = int(max_active if max_active is not None else tc.config["MAX_ACTIVE_GPUS"])
    f = fleet_facts(db, fake, prefix)
    line = ("invariants: [%s] pods_ours=%d live_rows=%d leaked=%d vanished=%d tasks=%s lost=%d "
            "double_held=%s max_pods_alive=%s<=MAX %d creates=%s"
            % (label, len(f["pods"]), len(f["rows"]), len(f["leaked"]), len(f["vanished"]),
               dict(sorted(f["tasks"].items())), len(f["lost"]),
               "n/a" if f["double_held"] is None else len(f["double_held"]),
               f["max_pods_alive"], mx, f["creates"]))
    note(line)
    tc.invariant_lines = getattr(tc, "invariant_lines", []) + [line]
    tc.assertEqual(f["leaked"], [], "%s: leaked pods (ours, no live row)" % label)
    if not allow_lost:
        tc.assertEqual(f["lost"], [], "%s: In Progress tasks without a live holder" % label)
    if f["double_held"] is not None:
        tc.assertEqual(f["double_held"], [], "%s: a task held by two workers" % label)
    if f["max_pods_alive"] is not None:
        tc.assertLessEqual(f["max_pods_alive"], mx, "%s: the fake held more pods than "
                           "MAX_ACTIVE_GPUS" % label)
    return f


class SafetyTestCase(E2ETestCase):
    """E2ETestCase with the hold log installed and settle()/invariants()."""

    def setUp(self):
        super().setUp()
        install_hold_audit(self.db)

    def work(self, n, **params):
        params.setdefault("duration_sec", 0.3)
        return [self.db.insert_task("generate", dict(params, n=i)) for i in range(n)]

    def settled(self, allow_statuses=("Complete", "Failed")):
        f = fleet_facts(self.db, self.fake, self.config.get("WORKER_ID_PREFIX", "gpu-"))
        open_tasks = {k: v for k, v in f["tasks"].items() if k not in allow_statuses}
        busy_rows = [r for r in f["rows"] if r["status"] in ("error", "spawning", "crashed")]
        return not open_tasks and not f["leaked"] and not busy_rows and not f["vanished"]

    def settle(self, timeout=40, what="the fleet settles (tasks done, no leak, no error rows)",
               **kwargs):
        """Runs cycles until every task is Complete/Failed, no pod leaked and no row is left
        in error/spawning."""
        kwargs.setdefault("ok_codes", (0, 6))
        return self.run_cycles_until(self.settled, timeout=timeout, what=what, **kwargs)

    def invariants(self, label, **kw):
        return check_invariants(self, label, **kw)
