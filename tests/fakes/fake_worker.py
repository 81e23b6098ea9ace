#!/usr/bin/python3
"""fake_worker.py: a stand-in GPU worker that speaks only the worker contract (SPEC 4.3).

It heartbeats with VRAM figures, claims tasks, "works" on them for a while and reports the
result, all through the SQL functions func_worker_heartbeat, func_claim_next_task,
func_mark_task_complete and func_mark_task_failed. It must never read or write a table
directly: the end-to-end tests rely on it to exercise the contract exactly as a real worker
(Headless-Wan2GP) would.

The fake RunPod server (tests/fakes/fake_runpod.py --boot-cmd ...) starts one per pod with the
pod's environment and kills it when the pod is deleted.

Environment:
  WORKER_ID                          required; set by the orchestrator for every pod
  DATABASE_URL                       libpq URI/conninfo (the orchestrator passes it as
                                     WORKER_ENV_DATABASE_URL); the PG* variables also work
  FAKE_WORKER_HEARTBEAT_SEC          heartbeat interval, default 1 (fractions allowed)
  FAKE_WORKER_CLAIM_POLL_SEC         how often an idle active worker tries to claim, default 0.3
  FAKE_WORKER_VRAM_TOTAL_MB          reported total VRAM, default 24564 (0 = GPU not visible)
  FAKE_WORKER_CRASH_AT_START=1       exit 1 at once, before any heartbeat
  FAKE_WORKER_STOP_HEARTBEAT_AFTER_SEC=N  after N s stop heartbeating (and stop working) but
                                     stay alive holding whatever task it has
  FAKE_WORKER_HANG_ON_TASK=1         claim a task and never finish it, keep heartbeating
  FAKE_WORKER_CRASH_ON_TASK_TYPE=T   exit 1 right after claiming a task of type T (poison task)
  FAKE_WORKER_RUN_TYPE               run type to claim, default gpu
  FAKE_WORKER_RECONNECT_SEC          how long to retry a lost database connection, default 30

Task params understood (all optional):
  duration_sec (default 1)  how long the task "runs"
  fail: true                report failure with func_mark_task_failed
  crash: true               exit 1 right after claiming
  hang: true                never finish the task, keep heartbeating
  stop_heartbeat: true      stop heartbeating and working at once, stay alive holding the task
  fault_attempts: N         the four faults above apply only while the claimed row's
                            attempts < N (so a recovered task behaves on its retry); default:
                            always

Exit status: 0 after a normal stop (told terminating/terminated/error/unknown, or SIGTERM),
1 on a simulated crash or when the database stays unreachable.

HTTP mode (issue 13): when WORKER_API_URL and WORKER_TOKEN are set (the orchestrator gives every
pod both when the gateway is configured), the worker speaks only the HTTP dialect of the
reference worker, Headless-Wan2GP (shared/reference/headless-worker-interface.md), to
`orchestrator gateway`, exactly as that worker does: the heartbeat RPC with `apikey` only and
the `*_param` names (a last beat with status_param "crashed" when it crashes), the lost-claim
GET, task-counts then claim-next-task with `Authorization: Bearer`, complete_task with a base64
file or through generate-upload-url + PUT, update-task-status for failures. Like the real
worker it never learns its own status: it stops when its pod is deleted (or on SIGTERM).
  FAKE_WORKER_MODE=sql          force the SQL contract even when WORKER_API_URL is set
Task params in HTTP mode: upload: true -> the upload-URL path (else base64); no_output: true ->
update-task-status Complete without a file.
"""

import json
import os
import random
import signal
import sys
import time

import psycopg2
import psycopg2.extras

_stop_requested = False


def _on_sigterm(signum, frame):  # noqa: ARG001 - signal handler signature
    global _stop_requested
    _stop_requested = True


def env_float(name, default):
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        sys.stderr.write("fake_worker: bad %s=%r, using %r\n" % (name, raw, default))
        return default


def env_flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


class Worker:
    """One fake worker: a single-threaded loop interleaving heartbeats and task work."""

    def __init__(self):
        self.worker_id = os.environ.get("WORKER_ID", "")
        self.dsn = os.environ.get("DATABASE_URL", "")
        self.hb_sec = max(0.05, env_float("FAKE_WORKER_HEARTBEAT_SEC", 1.0))
        self.claim_poll_sec = max(0.05, env_float("FAKE_WORKER_CLAIM_POLL_SEC", 0.3))
        self.vram_total = int(env_float("FAKE_WORKER_VRAM_TOTAL_MB", 24564))
        self.stop_hb_after = env_float("FAKE_WORKER_STOP_HEARTBEAT_AFTER_SEC", -1.0)
        self.hang_on_task = env_flag("FAKE_WORKER_HANG_ON_TASK")
        self.crash_type = os.environ.get("FAKE_WORKER_CRASH_ON_TASK_TYPE", "")
        self.run_type = os.environ.get("FAKE_WORKER_RUN_TYPE", "gpu") or "gpu"
        self.reconnect_sec = env_float("FAKE_WORKER_RECONNECT_SEC", 30.0)
        self.conn = None
        self.ever_connected = False
        self.started = time.monotonic()
        self.status = None          # last status returned by the heartbeat
        self.draining = False       # told 'terminating': finish the task, then exit
        self.frozen = False         # stopped heartbeating: alive, silent, holding its task
        self.task = None            # dict: id, task_type, params, attempts
        self.task_done_at = None    # monotonic deadline of the current task (None = hangs)
        self.task_outcome = None    # 'complete' | 'fail'
        self.next_hb = 0.0
        self.next_claim = 0.0

    # -- logging ------------------------------------------------------------------------------

    def log(self, event, **fields):
        parts = ["%s fake_worker worker_id=%s event=%s" % (
            time.strftime("%H:%M:%S"), self.worker_id or "-", event)]
        for k, v in fields.items():
            s = str(v)
            if " " in s or s == "":
                s = '"%s"' % s.replace('"', "'")
            parts.append("%s=%s" % (k, s))
        sys.stderr.write(" ".join(parts) + "\n")
        sys.stderr.flush()

    # -- database -----------------------------------------------------------------------------

    def connect(self):
        """Connects (or reconnects), retrying every second for reconnect_sec; False on give-up."""
        deadline = time.monotonic() + self.reconnect_sec
        failures = 0
        while True:
            if _stop_requested:
                return False
            try:
                conn = psycopg2.connect(self.dsn, application_name="fake_worker",
                                        connect_timeout=5)
                conn.autocommit = True
                self.conn = conn
                self.log("db.reconnected" if self.ever_connected else "db.connected",
                         attempts_failed=failures)
                self.ever_connected = True
                return True
            except psycopg2.Error as e:
                msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                self.log("db.connect_failed", error=msg)
            failures += 1
            if time.monotonic() >= deadline:
                return False
            time.sleep(1.0)

    def drop_connection(self):
        if self.conn is not None:
            try:
                self.conn.close()
            except psycopg2.Error:
                pass
        self.conn = None

    def call(self, sql, args, fetch="one"):
        """Runs one contract call. Returns (ok, result). A lost connection is re-established
        (ok=False, the caller retries later); a SQL error is logged and returned as ok=False."""
        if self.conn is None or self.conn.closed:
            if not self.connect():
                self.log("db.gave_up", after_sec=self.reconnect_sec)
                sys.exit(1)
        try:
            with self.conn.cursor(cursor_factory=psycopg2.extras.RealDictCursor) as cur:
                cur.execute(sql, args)
                if fetch == "one":
                    return True, cur.fetchone()
                return True, None
        except (psycopg2.OperationalError, psycopg2.InterfaceError) as e:
            self.log("db.connection_lost", error=str(e).strip().splitlines()[0] if str(e).strip()
                     else type(e).__name__)
            self.drop_connection()
            return False, None
        except psycopg2.Error as e:
            self.log("db.error", sqlstate=e.pgcode or "", error=(e.pgerror or str(e)).strip()
                     .splitlines()[0])
            return False, None

    # -- contract calls -----------------------------------------------------------------------

    def heartbeat(self):
        if self.vram_total <= 0:
            total, used = 0, 0
        elif self.task is not None:
            used = min(self.vram_total, 18000 + random.randint(0, 3000))
            total = self.vram_total
        else:
            used = 400 + random.randint(0, 400)
            total = self.vram_total
        ok, row = self.call("SELECT func_worker_heartbeat(%s, %s, %s) AS status",
                            (self.worker_id, total, used))
        if not ok:
            return
        status = row["status"] if row else None
        if status != self.status:
            self.log("heartbeat.status", status=status if status is not None else "NULL",
                     vram_total_mb=total, vram_used_mb=used)
        self.status = status
        if status is None or status in ("terminated", "error", "crashed", "inactive"):
            self.log("exit", reason="told %s" % (status if status is not None else "NULL"),
                     holding_task=self.task["id"] if self.task else "")
            sys.exit(0)
        if status == "terminating" and not self.draining:
            self.draining = True
            self.log("draining", holding_task=self.task["id"] if self.task else "")
        if self.draining and self.task is None:
            self.log("exit", reason="drained")
            sys.exit(0)

    def claim(self):
        ok, row = self.call("SELECT * FROM func_claim_next_task(%s, %s)",
                            (self.worker_id, self.run_type))
        if not ok or not row or row.get("id") is None:
            return
        params = row.get("params") or {}
        if not isinstance(params, dict):
            params = {}
        attempts = row.get("attempts") or 0
        self.task = {"id": str(row["id"]), "task_type": row.get("task_type") or "",
                     "params": params, "attempts": attempts}
        self.log("task.claimed", task_id=self.task["id"], task_type=self.task["task_type"],
                 attempts=attempts)
        fault_attempts = params.get("fault_attempts")
        faults_on = fault_attempts is None or attempts < int(fault_attempts)
        if (self.crash_type and self.task["task_type"] == self.crash_type) or \
                (faults_on and params.get("crash") is True):
            self.log("crash", reason="poison task", task_id=self.task["id"])
            os._exit(1)
        if faults_on and params.get("stop_heartbeat") is True:
            self.freeze("task asked to stop heartbeating")
            return
        self.task_outcome = "fail" if (faults_on and params.get("fail") is True) else "complete"
        if self.hang_on_task or (faults_on and params.get("hang") is True):
            self.task_done_at = None
            self.log("task.hanging", task_id=self.task["id"])
        else:
            try:
                duration = float(params.get("duration_sec", 1))
            except (TypeError, ValueError):
                duration = 1.0
            self.task_done_at = time.monotonic() + max(0.0, duration)

    def finish(self):
        tid = self.task["id"]
        if self.task_outcome == "fail":
            ok, row = self.call("SELECT func_mark_task_failed(%s::uuid, %s, %s) AS r",
                                (tid, self.worker_id, "fake failure"))
            event = "task.failed"
        else:
            ok, row = self.call(
                "SELECT func_mark_task_complete(%s::uuid, %s, '{\"ok\":true}'::jsonb, %s) AS r",
                (tid, self.worker_id, "fake://output/%s" % tid))
            event = "task.completed"
        if not ok:
            if self.conn is None:
                return          # connection lost: retry after reconnecting
            self.log(event + "_rejected", task_id=tid)
        else:
            self.log(event, task_id=tid, result=row["r"] if row else None)
        self.task = None
        self.task_done_at = None
        if self.draining:
            self.log("exit", reason="drained after task")
            sys.exit(0)

    def freeze(self, why):
        self.frozen = True
        self.log("heartbeat.stopped", reason=why, holding_task=self.task["id"] if self.task
                 else "")

    # -- main loop ----------------------------------------------------------------------------

    def run(self):
        if not self.worker_id:
            sys.stderr.write("fake_worker: WORKER_ID is not set\n")
            return 2
        self.log("start", heartbeat_sec=self.hb_sec, vram_total_mb=self.vram_total,
                 pid=os.getpid())
        if env_flag("FAKE_WORKER_CRASH_AT_START"):
            self.log("crash", reason="FAKE_WORKER_CRASH_AT_START")
            return 1
        if not self.connect():
            self.log("db.gave_up", after_sec=self.reconnect_sec)
            return 1
        while not _stop_requested:
            now = time.monotonic()
            if not self.frozen and self.stop_hb_after >= 0 and \
                    now - self.started >= self.stop_hb_after:
                self.freeze("FAKE_WORKER_STOP_HEARTBEAT_AFTER_SEC")
            if self.frozen:
                time.sleep(0.1)
                continue
            if now >= self.next_hb:
                self.next_hb = now + self.hb_sec
                self.heartbeat()
            if self.task is not None:
                if self.task_done_at is not None and time.monotonic() >= self.task_done_at:
                    self.finish()
            elif self.status == "active" and not self.draining and \
                    time.monotonic() >= self.next_claim:
                self.next_claim = time.monotonic() + self.claim_poll_sec
                self.claim()
            time.sleep(0.05)
        self.log("exit", reason="SIGTERM", holding_task=self.task["id"] if self.task else "")
        return 0


class HttpWorker:
    """The HTTP dialect of Headless-Wan2GP, against the gateway (see the module docstring)."""

    def __init__(self):
        self.worker_id = os.environ.get("WORKER_ID", "")
        self.base = os.environ.get("WORKER_API_URL", "").rstrip("/")
        self.token = os.environ.get("WORKER_TOKEN", "")
        self.hb_sec = max(0.05, env_float("FAKE_WORKER_HEARTBEAT_SEC", 1.0))
        self.poll_sec = max(0.05, env_float("FAKE_WORKER_CLAIM_POLL_SEC", 0.3))
        self.vram_total = int(env_float("FAKE_WORKER_VRAM_TOTAL_MB", 24564))
        self.stop_hb_after = env_float("FAKE_WORKER_STOP_HEARTBEAT_AFTER_SEC", -1.0)
        self.hang_on_task = env_flag("FAKE_WORKER_HANG_ON_TASK")
        self.crash_type = os.environ.get("FAKE_WORKER_CRASH_ON_TASK_TYPE", "")
        self.run_type = os.environ.get("FAKE_WORKER_RUN_TYPE", "gpu") or "gpu"
        self.started = time.monotonic()
        self.frozen = False
        self.task = None
        self.task_done_at = None
        self.task_outcome = None
        self.next_hb = 0.0
        self.next_poll = 0.0

    log = Worker.log

    def http(self, method, path, body=None, headers=None, raw=None, url=None, timeout=15):
        """One request; returns (status, parsed JSON or None). Network errors are (0, None)."""
        import urllib.error
        import urllib.request
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        req = urllib.request.Request(url or (self.base + path), data=data, method=method)
        for k, v in (headers or {}).items():
            req.add_header(k, v)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                text = resp.read()
                status = resp.status
        except urllib.error.HTTPError as e:
            text = e.read()
            status = e.code
        except (OSError, ValueError) as e:
            self.log("http.error", path=path, error=str(e))
            return 0, None
        try:
            return status, json.loads(text) if text.strip() else None
        except ValueError:
            return status, None

    def bearer(self):
        return {"Authorization": "Bearer " + self.token, "Content-Type": "application/json"}

    # -- the guardian's heartbeat ---------------------------------------------------------------

    def heartbeat(self, status="active"):
        if status == "crashed" or self.vram_total <= 0:
            total, used = 0, 0
        else:
            total = self.vram_total
            used = min(total, 18000 + random.randint(0, 3000)) if self.task else \
                400 + random.randint(0, 400)
        logs = [] if status == "crashed" else [{
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "level": "INFO",
            "message": "fake worker alive", "task_id": self.task["id"] if self.task else
            "unknown_task_%d" % os.getpid(), "metadata": {"pid": os.getpid()}}]
        code, reply = self.http("POST", "/rest/v1/rpc/func_worker_heartbeat_with_logs", {
            "worker_id_param": self.worker_id, "vram_total_mb_param": total,
            "vram_used_mb_param": used, "logs_param": logs, "status_param": status},
            headers={"apikey": self.token, "Content-Type": "application/json",
                     "Prefer": "return=representation"})
        if code != 200:
            self.log("heartbeat.refused", http_status=code,
                     error=(reply or {}).get("error", "") if isinstance(reply, dict) else "")

    # -- the poll loop ----------------------------------------------------------------------------

    def take(self, t, how):
        params = t.get("params") or {}
        if not isinstance(params, dict):
            params = {}
        attempts = t.get("attempts") or 0
        self.task = {"id": str(t.get("task_id") or t.get("id")), "task_type":
                     t.get("task_type") or "", "params": params, "attempts": attempts}
        self.log("task.claimed", task_id=self.task["id"], task_type=self.task["task_type"],
                 attempts=attempts, via=how)
        fault_attempts = params.get("fault_attempts")
        faults_on = fault_attempts is None or attempts < int(fault_attempts)
        if (self.crash_type and self.task["task_type"] == self.crash_type) or \
                (faults_on and params.get("crash") is True):
            self.log("crash", reason="poison task", task_id=self.task["id"])
            self.heartbeat("crashed")          # the guardian's last beat
            os._exit(1)
        if faults_on and params.get("stop_heartbeat") is True:
            self.frozen = True
            self.log("heartbeat.stopped", reason="task asked to stop heartbeating",
                     holding_task=self.task["id"])
            return
        self.task_outcome = "fail" if (faults_on and params.get("fail") is True) else "complete"
        if self.hang_on_task or (faults_on and params.get("hang") is True):
            self.task_done_at = None
            self.log("task.hanging", task_id=self.task["id"])
            return
        try:
            duration = float(params.get("duration_sec", 1))
        except (TypeError, ValueError):
            duration = 1.0
        # After "loading a model", the worker resets generation_started_at of its task.
        self.http("POST", "/functions/v1/update-task-status", {
            "task_id": self.task["id"], "status": "In Progress",
            "reset_generation_started_at": True}, headers=self.bearer())
        self.task_done_at = time.monotonic() + max(0.0, duration)

    def poll(self):
        code, rows = self.http(
            "GET", "/rest/v1/tasks?select=id,params,task_type,project_id&worker_id=eq.%s"
            "&status=eq.In%%20Progress&limit=1" % self.worker_id,
            headers={"apikey": self.token, "Authorization": "Bearer " + self.token})
        if code == 200 and isinstance(rows, list) and rows:
            self.take(rows[0], "lost_claim")
            return
        code, counts = self.http("POST", "/functions/v1/task-counts",
                                 {"run_type": self.run_type, "include_active": True},
                                 headers=self.bearer(), timeout=10)
        totals = (counts or {}).get("totals") if isinstance(counts, dict) else None
        if code == 200 and isinstance(totals, dict) and totals.get("queued_only", 0) <= 0 \
                and totals.get("eligible_queued", 0) == 0:
            return
        code, task = self.http("POST", "/functions/v1/claim-next-task",
                               {"worker_id": self.worker_id, "run_type": self.run_type},
                               headers=self.bearer())
        if code == 200 and isinstance(task, dict):
            self.take(task, "claim")

    def finish(self):
        tid = self.task["id"]
        params = self.task["params"]
        if self.task_outcome == "fail":
            code, reply = self.http("POST", "/functions/v1/update-task-status", {
                "task_id": tid, "status": "Failed", "output_location": "fake failure"},
                headers=self.bearer())
            event = "task.failed"
        elif params.get("no_output") is True:
            code, reply = self.http("POST", "/functions/v1/update-task-status",
                                    {"task_id": tid, "status": "Complete"},
                                    headers=self.bearer())
            event = "task.completed"
        else:
            data = ("fake output of %s\n" % tid).encode() * 64
            if params.get("upload") is True:
                code, urls = self.http("POST", "/functions/v1/generate-upload-url", {
                    "task_id": tid, "filename": "output.mp4", "content_type": "video/mp4",
                    "generate_thumbnail_url": True}, headers=self.bearer())
                if code == 200:
                    code, _ = self.http("PUT", "", raw=data, url=urls["upload_url"],
                                        headers={"Content-Type": "video/mp4"})
                if code == 200:
                    code, _ = self.http("PUT", "", raw=b"\xff\xd8thumb",
                                        url=urls["thumbnail_upload_url"],
                                        headers={"Content-Type": "image/jpeg"})
                if code == 200:
                    code, reply = self.http("POST", "/functions/v1/complete_task", {
                        "task_id": tid, "storage_path": urls["storage_path"],
                        "thumbnail_storage_path": urls["thumbnail_storage_path"]},
                        headers=self.bearer())
                else:
                    reply = None
            else:
                import base64
                code, reply = self.http("POST", "/functions/v1/complete_task", {
                    "task_id": tid, "file_data": base64.b64encode(data).decode(),
                    "filename": "output.mp4"}, headers=self.bearer())
            event = "task.completed"
        if code == 0:
            return                  # gateway unreachable: retry the report later
        if code not in (200, 201):
            self.log(event + "_rejected", task_id=tid, http_status=code)
        else:
            self.log(event, task_id=tid, public_url=(reply or {}).get("public_url", "")
                     if isinstance(reply, dict) else "")
        self.task = None
        self.task_done_at = None

    def run(self):
        if not self.worker_id or not self.base or not self.token:
            sys.stderr.write("fake_worker: WORKER_ID, WORKER_API_URL and WORKER_TOKEN are "
                             "needed in HTTP mode\n")
            return 2
        self.log("start", mode="http", heartbeat_sec=self.hb_sec, vram_total_mb=self.vram_total,
                 pid=os.getpid())
        if env_flag("FAKE_WORKER_CRASH_AT_START"):
            self.log("crash", reason="FAKE_WORKER_CRASH_AT_START")
            return 1
        while not _stop_requested:
            now = time.monotonic()
            if not self.frozen and self.stop_hb_after >= 0 and \
                    now - self.started >= self.stop_hb_after:
                self.frozen = True
                self.log("heartbeat.stopped", reason="FAKE_WORKER_STOP_HEARTBEAT_AFTER_SEC")
            if self.frozen:
                time.sleep(0.1)
                continue
            if now >= self.next_hb:
                self.next_hb = now + self.hb_sec
                self.heartbeat()
            if self.task is not None:
                if self.task_done_at is not None and time.monotonic() >= self.task_done_at:
                    self.finish()
            elif time.monotonic() >= self.next_poll:
                self.next_poll = time.monotonic() + self.poll_sec
                self.poll()
            time.sleep(0.05)
        self.log("exit", reason="SIGTERM", holding_task=self.task["id"] if self.task else "")
        return 0


def main():
    signal.signal(signal.SIGTERM, _on_sigterm)
    signal.signal(signal.SIGINT, _on_sigterm)
    if os.environ.get("WORKER_API_URL") and os.environ.get("FAKE_WORKER_MODE", "") != "sql":
        return HttpWorker().run()
    w = Worker()
    try:
        rc = w.run()
    finally:
        w.drop_connection()
    return rc


if __name__ == "__main__":
    sys.exit(main())
