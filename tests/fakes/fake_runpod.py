#!/usr/bin/python3
"""fake_runpod.py -- a faithful fake of the RunPod REST v2 pod API, for tests and the demo.

Python 3 standard library only; run it with /usr/bin/python3. Listens on 127.0.0.1 only.

Serves POST/GET /v2/pods and GET/DELETE /v2/pods/{id} shaped like RunPod's answers (see
tests/fixtures/runpod/ and openapi-v2.json): the same field set, application/problem+json
errors, 401 without the right bearer key, 422 for a body that breaks CreatePodRequest
(unknown properties included). Pods move PROVISIONING -> STARTING -> RUNNING; a RUNNING pod
keeps "runtime": null until it has "booted" (boot delay), then gets a runtime object. DELETE
removes the pod (404 afterwards, absent from the list).

Boot hook: --boot-cmd CMD (or POST /_fake/config {"boot_cmd": ...}) starts CMD with /bin/sh
when a pod reaches RUNNING, with the pod's env plus RUNPOD_POD_ID (and RUNPOD_POD_NAME) added
to the environment, and FAKE_POD_IMAGE naming the pod's image (so a test's boot command can make
one image crash, as a broken image would), in its own process group. The group gets SIGTERM (then SIGKILL after 3 s)
when the pod is deleted or killed from outside, and on exit.

Control API (no auth), all JSON:
  GET  /_fake/health                  {"ok": true}
  POST /_fake/reset                   forget pods, faults, request log, counters; config back to
                                      the command-line values
  GET  /_fake/faults                  current faults
  POST /_fake/faults   {...}          merge fault switches (see FAULT_DEFAULTS below)
  POST /_fake/config   {...}          boot_cmd, boot_delay_sec, provision_sec, start_sec,
                                      gpu_costs {type: usd_per_hr} (a key "type@CLOUD"
                                      prices one cloud only), default_cost
  GET  /_fake/requests[?since=N]      {"requests": [...]}: seq, method, path, query, headers
                                      (an Authorization value is replaced by
                                      "Bearer <matched>", "Bearer <mismatched>" or
                                      "<not a bearer token>"; the key is never logged), body (parsed JSON or text),
                                      status, response_headers, response (parsed JSON or text),
                                      fault (the rule that shaped the answer, if any)
  GET  /_fake/stats                   {"max_pods_alive", "pods_alive", "requests", "creates"}
  GET  /_fake/inflight                {"requests": [...]}: API requests that arrived and are not
                                      answered yet (method, path, time, body), e.g. held by a
                                      delay_sec rule; the request log only has answered ones
  GET  /_fake/pods                    {"pods": [Pod + "_boot_pid"]} (no fault applies)
  POST /_fake/pods     {name, ...}    inject a pod: name, gpu, image, status, age_sec, env, booted;
                                      "override": {field: value} replaces fields of every answer
                                      about it (odd values of a foreign pod: "cost": "abc",
                                      "gpu": {"id": 5}, "runtime": "odd", "createdAt": "x"), and
                                      "omit": [field, ...] leaves fields out
  POST /_fake/pods/{id}/kill {"to": "EXITED"|"ERROR"|"gone"}

Faults (POST /_fake/faults; each key optional; reset restores the defaults):
  no_capacity: [gpu type ids]   create with one of these answers 400 (RunPod's no-capacity text)
  rules: [ {method: "POST"|"GET"|"DELETE"|"*", path: glob ("/v2/pods", "/v2/pods/*"),
            status: int (answer this problem status; omit for the normal answer),
            count: N (matches left; -1 = unlimited, default 1),
            retry_after: seconds (header on the answer), delay_sec: seconds before answering,
            headers: {name: value or [values]} (replace the answer's headers; a list sends
            one line per value),
            create_anyway: bool (POST /v2/pods: create the pod first, then answer status),
            detail: str, body: raw body text, body_repeat: N, content_type: str} ]
     Rules are checked in order after authentication; the first match applies.
  not_found_after_create_sec: T  GET /v2/pods/{id} answers 404 for T s after the pod's create
  never_boot: bool               RUNNING pods keep runtime null and the boot hook never runs
  create_latency_ms: N           every create takes N ms longer (handled concurrently)
  list_lag_sec: T                GET /v2/pods leaves out pods created less than T s ago, as
                                 RunPod's list lags behind creates (GET /v2/pods/{id} still
                                 finds them)
  exit_on_crash: bool            (default true) a created pod whose boot process exits
                                 non-zero goes EXITED, as a RunPod pod whose container's main
                                 process dies; false keeps it RUNNING (a container that
                                 lingers). Injected pods (POST /_fake/pods) never do.

GPU catalog (GET /v2/catalog/gpus) and rate limit (RateLimit / RateLimit-Policy on every
authenticated answer, 429 when a window is exhausted): tests/fakes/fake_runpod_catalog.py, with
its control endpoints /_fake/catalog and /_fake/ratelimit.

Start: fake_runpod.py --port 0 --api-key KEY [--port-file F] [--record F.jsonl]
       [--boot-cmd CMD] [--boot-delay-sec S] [--provision-sec S] [--start-sec S]
       [--parent-pid PID] [--boot-log F]
The first stdout line is "PORT=<n>"; --port-file gets the same number (written atomically).
--record appends every /v2 exchange as one JSON line (used by the contract test).
--parent-pid: exit when that process is gone (tests that crash cannot leak the fake).
SIGTERM/SIGINT: stop serving, stop every boot process, exit 0.
"""

import argparse
import collections
import copy
import fnmatch
import json
import os
import random
import signal
import string
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import fake_runpod_catalog
import fake_runpod_lifecycle as lifecycle

NO_CAPACITY_DETAIL = ("There are no longer any instances available with the requested "
                      "specifications. Please refresh and try again.")
TITLES = {400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
          404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 410: "Gone",
          422: "Unprocessable Entity", 429: "Too Many Requests", 500: "Internal Server Error",
          502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}
DETAILS = {401: "invalid bearer token", 402: "insufficient balance", 403: "access denied",
           404: "resource not found", 409: "pod cannot be modified in its current state",
           410: "this API version has been retired", 422: "Request validation failed.",
           429: "rate limit exceeded for the minute window",
           500: "internal server error", 502: "bad gateway", 503: "service unavailable"}
FAULT_DEFAULTS = {"no_capacity": [], "rules": [], "not_found_after_create_sec": 0.0,
                  "never_boot": False, "create_latency_ms": 0, "exit_on_crash": True,
                  "list_lag_sec": 0.0}
FAULT_DEFAULTS.update(lifecycle.LIFECYCLE_FAULTS)  # stop/start, logs, billing (issue 16)
CREATE_KEYS = {"name", "image", "gpu", "cpu", "cloud", "dataCenterIds", "disk", "ports", "env",
               "mounts", "args", "registry", "startSsh", "startJupyter", "globalNetworking",
               "templateId"}


def iso(ts):
    d = datetime.fromtimestamp(ts, tz=timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (d.microsecond // 1000)


def problem(status, detail=None, errors=None):
    body = {"title": TITLES.get(status, "Error"), "status": status,
            "detail": detail if detail is not None else DETAILS.get(status, "error")}
    if errors:
        body["errors"] = errors
    return body


def validate_create(body):
    """Checks a create body against CreatePodRequest; returns a list of violations."""
    errs = []
    if not isinstance(body, dict):
        return ["$: expected an object"]
    for k in sorted(body):
        if k not in CREATE_KEYS:
            errs.append("$: additional properties '%s' not allowed" % k)

    def want(key, kind, label):
        if key in body and not isinstance(body[key], kind):
            errs.append("$.%s: expected %s" % (key, label))

    if not isinstance(body.get("name"), str) or not body.get("name"):
        errs.append("$.name: required non-empty string")
    if "templateId" not in body and not isinstance(body.get("image"), str):
        errs.append("$.image: required string")
    want("image", str, "string")
    want("args", str, "string")
    want("ports", list, "array")
    want("env", dict, "object")
    want("dataCenterIds", list, "array")
    if "disk" in body and (not isinstance(body["disk"], int) or isinstance(body["disk"], bool)
                           or body["disk"] < 1):
        errs.append("$.disk: expected integer >= 1")
    if "cloud" in body and body["cloud"] not in ("SECURE", "COMMUNITY"):
        errs.append("$.cloud: must be one of SECURE, COMMUNITY")
    for k in ("ports", "dataCenterIds"):
        if isinstance(body.get(k), list) and not all(isinstance(x, str) for x in body[k]):
            errs.append("$.%s: items must be strings" % k)
    if isinstance(body.get("env"), dict) and not all(isinstance(v, str)
                                                     for v in body["env"].values()):
        errs.append("$.env: values must be strings")
    if "gpu" in body:
        g = body["gpu"]
        if not isinstance(g, dict) or not isinstance(g.get("id"), str):
            errs.append("$.gpu: expected an object with a string id")
        else:
            for k in g:
                if k not in ("id", "count", "allowedCudaVersions", "minCudaVersion"):
                    errs.append("$.gpu: additional properties '%s' not allowed" % k)
            c = g.get("count", 1)
            if not isinstance(c, int) or isinstance(c, bool) or c < 1:
                errs.append("$.gpu.count: expected integer >= 1")
    elif "cpu" not in body:
        errs.append("$: exactly one of gpu or cpu is required")
    if "mounts" in body:
        m = body["mounts"]
        if not isinstance(m, dict) or any(k not in ("network", "persistent") for k in m):
            errs.append("$.mounts: expected {network} or {persistent}")
        elif "network" in m:
            n = m["network"]
            if (not isinstance(n, list) or len(n) > 1 or
                    not all(isinstance(x, dict) and set(x) == {"volumeId", "path"} and
                            all(isinstance(v, str) for v in x.values()) for x in n)):
                errs.append("$.mounts.network: expected at most one {volumeId, path}")
    return errs


class FakePod:
    def __init__(self, pid, name, req, now, cost):
        self.id = pid
        self.name = name
        self.req = req
        self.created = now
        self.started = None
        self.status = "PROVISIONING"
        self.forced = None          # EXITED / ERROR set from outside
        self.booted = False
        self.boot_at = None
        self.cost = cost
        self.proc = None
        self.exit_code = None       # the boot process's exit status once it died (EXITED)
        self.injected = False       # POST /_fake/pods: never goes EXITED on its own
        self.override = {}          # fields replaced in every answer (hostile foreign pods)
        self.omit = []              # fields left out of every answer
        self.public_port_base = random.randint(10000, 60000)
        self.lifecycle_at = now     # its lifecycle (PROVISIONING, STARTING, ...) runs from here
        self.stopped_at = None
        self.stuck = False          # started, but never boots (fault start_stuck)
        self.starts = 0
        self.log_lines = collections.deque(maxlen=5000)  # (ts, source, line) for /logs
        self.log("system", "create container %s" % req.get("image", ""))

    def log(self, source, line):
        self.log_lines.append((iso(time.time()), source, line))

    def runtime(self, now):
        if self.status != "RUNNING" or not self.booted:
            return None
        ports = []
        for i, p in enumerate(self.req.get("ports") or []):
            num, _, kind = p.partition("/")
            try:
                priv = int(num)
            except ValueError:
                continue
            ports.append({"ip": "100.65.14.155" if kind == "http" else "213.173.108.23",
                          "private": priv, "public": self.public_port_base + i,
                          "type": kind or "tcp"})
        return {"uptime": int(max(0, now - (self.boot_at or now))),
                "gpus": [{"util": 0, "memoryUtil": 0}], "cpu": {"util": 1},
                "memory": {"util": 3}, "ports": ports}

    def to_json(self, now):
        req = self.req
        ports = list(req.get("ports") or [])
        actions = {"PROVISIONING": ["stop", "terminate"], "STARTING": ["stop", "terminate"],
                   "RUNNING": ["stop", "restart", "terminate"],
                   "EXITED": ["start", "terminate"], "ERROR": ["terminate"],
                   "TERMINATED": []}[self.status]
        user = "%s-64411eb2" % self.id
        direct = None
        if self.status == "RUNNING" and self.booted and "22/tcp" in ports:
            port = self.public_port_base + ports.index("22/tcp")
            direct = {"host": "213.173.108.23", "port": port, "username": "root",
                      "command": "ssh root@213.173.108.23 -p %d" % port}
        dcs = req.get("dataCenterIds") or []
        pod = {
            "id": self.id,
            "name": self.name,
            "image": req.get("image", ""),
            "args": req.get("args", ""),
            "disk": req.get("disk", 50),
            "ports": ports,
            "env": dict(req.get("env") or {}),
            "registry": None,
            "status": self.status,
            "actions": actions,
            "mounts": copy.deepcopy(req.get("mounts") or {}),
            "gpu": {"id": (req.get("gpu") or {}).get("id", "NVIDIA GeForce RTX 4090"),
                    "count": (req.get("gpu") or {}).get("count", 1)},
            "cloud": req.get("cloud", "SECURE"),
            "dataCenterId": dcs[0] if dcs else "EU-RO-1",
            "cudaVersion": "12.8",
            "ssh": {"proxy": {"host": "ssh.runpod.io", "port": 22, "username": user,
                              "command": "ssh %s@ssh.runpod.io" % user},
                    "direct": direct},
            "template": None,
            "cost": 0.0 if self.status in ("EXITED", "TERMINATED") else self.cost,
            "locked": False,
            "globalNetworking": {"enabled": False},
            "runtime": self.runtime(now),
            "createdAt": iso(self.created),
            "startedAt": iso(self.started) if self.started else None,
        }
        pod.update(copy.deepcopy(self.override))
        for k in self.omit:
            pod.pop(k, None)
        return pod


class State:
    def __init__(self, args):
        self.args = args
        self.lock = threading.RLock()
        self.log_lock = threading.Lock()
        self.record_file = open(args.record, "a", encoding="utf-8") if args.record else None
        self.catalog = fake_runpod_catalog.Catalog()
        self.ratelimit = fake_runpod_catalog.RateLimiter()
        self.reset()

    def reset(self):
        with self.lock:
            old = list(getattr(self, "pods", {}).values())
            self.pods = {}
            self.faults = copy.deepcopy(FAULT_DEFAULTS)
            self.config = {"boot_cmd": self.args.boot_cmd, "boot_delay_sec": self.args.boot_delay_sec,
                           "provision_sec": self.args.provision_sec,
                           "start_sec": self.args.start_sec, "gpu_costs": {},
                           "default_cost": 0.69}
            self.requests = []
            self.inflight = {}
            self.history = lifecycle.History()
            self.seq = 0
            self.max_alive = 0
            self.creates = 0
        self.catalog.reset()
        self.ratelimit.reset()
        for p in old:
            stop_proc(p)

    def new_id(self):
        alphabet = string.ascii_lowercase + string.digits
        while True:
            pid = "".join(random.choice(alphabet) for _ in range(14))
            if pid not in self.pods:
                return pid

    def add_pod(self, name, req, created=None):
        with self.lock:
            now = time.time()
            gpu = (req.get("gpu") or {}).get("id", "")
            # "TYPE@CLOUD" first: RunPod prices one GPU type differently in SECURE and COMMUNITY.
            costs = self.config["gpu_costs"]
            cloud = req.get("cloud", "SECURE")
            cost = float(costs.get("%s@%s" % (gpu, cloud), costs.get(gpu, self.config["default_cost"])))
            pod = FakePod(self.new_id(), name, req, created if created is not None else now, cost)
            self.pods[pod.id] = pod
            self.history.open(pod, "run", pod.created)
            self.creates += 1
            self.max_alive = max(self.max_alive, len(self.pods))
            self.advance_locked(now)
            return pod

    def advance_locked(self, now):
        """Moves every pod along its lifecycle; starts boot processes at RUNNING."""
        cfg = self.config
        for pod in self.pods.values():
            if (not pod.forced and not pod.injected and pod.proc is not None
                    and pod.proc.poll() is not None and pod.proc.returncode != 0
                    and self.faults["exit_on_crash"]):
                # The container's main process died: RunPod shows the pod EXITED (cost 0)
                # until someone terminates it. A clean exit (0) keeps the pod RUNNING here,
                # as before, so drained workers wait for the orchestrator's DELETE.
                pod.forced = "EXITED"
                pod.exit_code = pod.proc.returncode
                pod.log("system", "container exited with code %d" % pod.exit_code)
                self.history.open(pod, "stopped", now)
            if pod.forced:
                pod.status = pod.forced
                continue
            age = now - pod.lifecycle_at
            before = pod.status
            if pod.stuck:
                pod.status = "STARTING"  # accepted a start, never comes up
                continue
            if age < cfg["provision_sec"]:
                pod.status = "PROVISIONING"
            elif age < cfg["provision_sec"] + cfg["start_sec"]:
                pod.status = "STARTING"
            else:
                pod.status = "RUNNING"
            if pod.status != "PROVISIONING" and pod.started is None:
                pod.started = now
            if (pod.status == "RUNNING" and not pod.booted and not self.faults["never_boot"]
                    and age >= cfg["boot_delay_sec"]):
                pod.booted = True
                pod.boot_at = now
            if (pod.status == "RUNNING" and before != "RUNNING" and cfg["boot_cmd"]
                    and not self.faults["never_boot"] and pod.proc is None):
                start_proc(pod, cfg["boot_cmd"], self.args.boot_log)

    def record(self, entry):
        with self.log_lock:
            self.seq += 1
            entry["seq"] = self.seq
            self.requests.append(entry)
            if len(self.requests) > 20000:
                del self.requests[:10000]
            if self.record_file:
                self.record_file.write(json.dumps(entry, sort_keys=True) + "\n")
                self.record_file.flush()


def start_proc(pod, cmd, boot_log):
    env = dict(os.environ)
    for k, v in (pod.req.get("env") or {}).items():
        env[str(k)] = str(v)
    env["RUNPOD_POD_ID"] = pod.id
    env["RUNPOD_POD_NAME"] = pod.name
    env["FAKE_POD_IMAGE"] = str(pod.req.get("image") or "")
    try:
        # Its output goes to the pod's log (GET /v2/pods/{id}/logs) and the shared boot log.
        pod.proc = subprocess.Popen(["/bin/sh", "-c", cmd], env=env, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    start_new_session=True)
        lifecycle.pump_output(pod, pod.proc.stdout, boot_log)
    except OSError as e:
        sys.stderr.write("fake_runpod: boot command failed to start: %s\n" % e)


def stop_proc(pod, wait=False):
    proc = pod.proc
    pod.proc = None
    if proc is None or proc.poll() is not None:
        return

    def reap():
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except OSError:
            pass
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            proc.wait()

    if wait:
        reap()
    else:
        threading.Thread(target=reap, daemon=True).start()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "fake-runpod/1.0"

    def log_message(self, fmt, *a):  # quiet: tests read the request log instead
        pass

    # -- plumbing ---------------------------------------------------------------------------

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send(self, status, obj=None, raw=None, ctype=None, extra=None, rec=None):
        if raw is not None:
            data = raw.encode() if isinstance(raw, str) else raw
            ctype = ctype or "application/json"
        elif obj is not None:
            data = json.dumps(obj).encode()
            if ctype is None:
                ctype = "application/problem+json" if status >= 400 else "application/json"
        else:
            data = b""
        headers = {}
        if data:
            headers["Content-Type"] = ctype
        if rec is not None and status != 401:
            headers.update(STATE.ratelimit.headers())
            odd = STATE.ratelimit.odd_mode()
            if odd:  # the contract test does not expect well-formed headers here
                rec.setdefault("fault", {})["ratelimit_mode"] = odd
        headers.update(extra or {})
        if rec is not None:
            headers.update(rec.pop("_headers", None) or {})
            with STATE.log_lock:
                STATE.inflight.pop(id(rec), None)
            # Logged before the answer leaves, so a client that has its answer also finds
            # the exchange in the log.
            rec["status"] = status
            rec["response_headers"] = headers
            try:
                rec["response"] = json.loads(data) if data else None
            except (ValueError, RecursionError):
                rec["response"] = data[:2000].decode("utf-8", "replace")
            STATE.record(rec)
        try:
            self.send_response(status)
            for k, v in headers.items():
                for one in (v if isinstance(v, list) else [v]):  # a list: repeated lines
                    self.send_header(k, str(one))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if data:
                self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout tests)

    def stream(self, status, headers, text, rec, hang_sec=0.0, live_sec=0.0):
        """An endless answer (SSE): headers, after hang_sec the text, then the connection stays
        open for live_sec, as RunPod's live log stream does. Recorded before it starts."""
        hdrs = dict(headers)
        hdrs.update(STATE.ratelimit.headers())
        with STATE.log_lock:
            STATE.inflight.pop(id(rec), None)
        rec["status"] = status
        rec["response_headers"] = hdrs
        rec["response"] = text[:2000]
        STATE.record(rec)
        self.close_connection = True
        try:
            self.send_response(status)
            for k, v in hdrs.items():
                self.send_header(k, str(v))
            self.end_headers()
            self.wfile.flush()
            deadline = time.time() + hang_sec
            while time.time() < deadline:
                time.sleep(0.05)
            self.wfile.write(text.encode())
            self.wfile.flush()
            deadline = time.time() + live_sec
            while time.time() < deadline:
                time.sleep(0.05)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client ended its read

    # -- dispatch ---------------------------------------------------------------------------

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PATCH(self):
        self.dispatch("PATCH")

    def do_PUT(self):
        self.dispatch("PUT")

    def dispatch(self, method):
        url = urlsplit(self.path)
        path = url.path
        raw = self.read_body()
        if path.startswith("/_fake/"):
            return self.control(method, path, url.query, raw)
        headers = {k: v for k, v in self.headers.items()}
        auth = self.headers.get("Authorization")
        want = "Bearer " + STATE.args.api_key
        for k in list(headers):
            if k.lower() == "authorization":
                if auth == want:
                    headers[k] = "Bearer <matched>"
                elif auth.startswith("Bearer "):
                    headers[k] = "Bearer <mismatched>"
                else:
                    headers[k] = "<not a bearer token>"
        body = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw[:2000].decode("utf-8", "replace")
        rec = {"time": time.time(), "method": method, "path": path, "query": url.query,
               "headers": headers, "body": body}
        with STATE.log_lock:
            STATE.inflight[id(rec)] = {"method": method, "path": path, "time": rec["time"],
                                       "body": body}
        if auth is None or not auth.startswith("Bearer "):
            return self.send(401, problem(401, "missing bearer token"), rec=rec)
        if auth != want:
            return self.send(401, problem(401, "invalid bearer token"), rec=rec)
        limited = STATE.ratelimit.take(path)
        if limited:
            return self.send(429, problem(429, limited[1]),
                             extra={"Retry-After": str(limited[0])}, rec=rec)
        rule = self.match_rule(method, path)
        if rule:
            rec["fault"] = {k: v for k, v in rule.items() if k != "count"}
            if rule.get("create_anyway") and method == "POST" and path == "/v2/pods":
                created = self.create(body, rec, answer=False)
                if rule.get("delay_sec"):
                    time.sleep(float(rule["delay_sec"]))
                if created and "status" not in rule:
                    return self.send(201, created.to_json(time.time()), rec=rec)
                return self.answer_rule(rule, rec)
            if rule.get("delay_sec"):
                time.sleep(float(rule["delay_sec"]))
            if "status" in rule or "body" in rule:
                return self.answer_rule(rule, rec)
            if isinstance(rule.get("headers"), dict):  # the normal answer, these headers
                rec["_headers"] = rule["headers"]
        self.route(method, path, body, raw, rec)

    def match_rule(self, method, path):
        with STATE.lock:
            for rule in STATE.faults["rules"]:
                m = rule.get("method", "*")
                if m not in ("*", method):
                    continue
                if not fnmatch.fnmatchcase(path, rule.get("path", "*")):
                    continue
                count = rule.get("count", 1)
                if count == 0:
                    continue
                if count > 0:
                    rule["count"] = count - 1
                return dict(rule)
        return None

    def answer_rule(self, rule, rec):
        status = int(rule.get("status", 200))
        extra = {}
        if "retry_after" in rule:
            extra["Retry-After"] = str(rule["retry_after"])
        if isinstance(rule.get("headers"), dict):  # e.g. hostile RateLimit fields (issue 16)
            extra.update(rule["headers"])
        if "body" in rule:
            raw = str(rule["body"]) * int(rule.get("body_repeat", 1))
            return self.send(status, raw=raw, ctype=rule.get("content_type"), extra=extra,
                             rec=rec)
        return self.send(status, problem(status, rule.get("detail")), extra=extra, rec=rec)

    def route(self, method, path, body, raw, rec):
        parts = path.rstrip("/").split("/")
        if path.rstrip("/") == "/v2/catalog/gpus":
            if method != "GET":
                return self.send(405, problem(405, "The requested method is not allowed for "
                                                   "this path."), extra={"Allow": "GET"},
                                 rec=rec)
            status, obj, ctype, marker = STATE.catalog.answer(rec["query"])
            if marker:
                rec.setdefault("fault", {}).update(marker)
            if status != 200:
                return self.send(status, problem(status, obj["detail"]), rec=rec)
            if isinstance(obj, str):
                return self.send(200, raw=obj, ctype=ctype, rec=rec)
            return self.send(200, obj, rec=rec)
        if path.rstrip("/") == "/v2/billing/pods" and method == "GET":
            return lifecycle.billing(self, STATE, rec.get("query", ""), rec, problem)
        if len(parts) == 5 and parts[1] == "v2" and parts[2] == "pods":
            if parts[4] == "action" and method == "POST":
                if raw and isinstance(body, str):
                    return self.send(400, problem(400, "request body is not valid JSON"),
                                     rec=rec)
                return lifecycle.action(self, STATE, parts[3], body, rec, stop_proc, problem)
            if parts[4] == "logs" and method == "GET":
                return lifecycle.logs(self, STATE, parts[3], rec.get("query", ""), rec, problem)
        if path.rstrip("/") == "/v2/pods":
            if method == "GET":
                with STATE.lock:
                    now = time.time()
                    STATE.advance_locked(now)
                    lag = float(STATE.faults["list_lag_sec"] or 0)
                    pods = [p.to_json(now) for p in STATE.pods.values()
                            if not lag or now - p.created >= lag]
                return self.send(200, {"pods": pods}, rec=rec)
            if method == "POST":
                if raw and isinstance(body, str):
                    return self.send(400, problem(400, "request body is not valid JSON"),
                                     rec=rec)
                return self.create(body, rec, answer=True)
            return self.send(405, problem(405, "The requested method is not allowed for this "
                                               "path."), extra={"Allow": "GET, POST"}, rec=rec)
        if len(parts) == 4 and parts[1] == "v2" and parts[2] == "pods":
            pid = parts[3]
            with STATE.lock:
                now = time.time()
                STATE.advance_locked(now)
                pod = STATE.pods.get(pid)
                if method == "GET":
                    hide = STATE.faults["not_found_after_create_sec"]
                    if pod is None or (hide and now - pod.created < float(hide)):
                        return self.send(404, problem(404, "pod not found"), rec=rec)
                    return self.send(200, pod.to_json(now), rec=rec)
                if method == "DELETE":
                    if pod is None:
                        return self.send(404, problem(404, "pod not found to terminate"),
                                         rec=rec)
                    del STATE.pods[pid]
                    STATE.history.close(pid, now)
                    stop_proc(pod)
                    return self.send(204, rec=rec)
            return self.send(405, problem(405, "The requested method is not allowed for this "
                                               "path."), extra={"Allow": "GET, DELETE"}, rec=rec)
        return self.send(404, problem(404, "no such route: %s %s" % (method, path)), rec=rec)

    def create(self, body, rec, answer):
        errs = validate_create(body)
        if errs:
            if answer:
                self.send(422, problem(422, "Request validation failed.", errs), rec=rec)
            return None
        gpu = body.get("gpu", {}).get("id", "")
        sold_out = STATE.catalog.out_of_stock(gpu, body.get("cloud", "SECURE"),
                                              body.get("dataCenterIds") or [])
        with STATE.lock:
            no_cap = gpu in STATE.faults["no_capacity"] or sold_out
            latency = float(STATE.faults["create_latency_ms"]) / 1000.0
        if latency > 0:
            time.sleep(latency)
        if no_cap:
            if answer:
                self.send(400, problem(400, NO_CAPACITY_DETAIL), rec=rec)
            return None
        pod = STATE.add_pod(body["name"], body)
        if answer:
            with STATE.lock:
                obj = pod.to_json(time.time())
            self.send(201, obj, rec=rec)
        return pod

    # -- control API ------------------------------------------------------------------------

    def control(self, method, path, query, raw):
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            return self.send(400, {"error": "body is not JSON"})
        if path == "/_fake/health":
            return self.send(200, {"ok": True})
        if path == "/_fake/reset" and method == "POST":
            STATE.reset()
            return self.send(200, {"ok": True})
        if path == "/_fake/faults":
            with STATE.lock:
                if method == "POST":
                    for k, v in body.items():
                        if k not in FAULT_DEFAULTS:
                            return self.send(400, {"error": "unknown fault %s" % k})
                        STATE.faults[k] = v
                return self.send(200, STATE.faults)
        if path == "/_fake/config":
            with STATE.lock:
                if method == "POST":
                    for k, v in body.items():
                        if k not in STATE.config:
                            return self.send(400, {"error": "unknown config %s" % k})
                        STATE.config[k] = v
                return self.send(200, STATE.config)
        if path == "/_fake/catalog" and method in ("GET", "POST"):
            return self.send(*STATE.catalog.control(method, body))
        if path == "/_fake/ratelimit" and method in ("GET", "POST"):
            return self.send(*STATE.ratelimit.control(method, body))
        if path == "/_fake/requests":
            since = int((parse_qs(query).get("since") or ["0"])[0])
            with STATE.log_lock:
                reqs = [r for r in STATE.requests if r["seq"] > since]
            return self.send(200, {"requests": reqs})
        if path == "/_fake/inflight":
            with STATE.log_lock:
                reqs = sorted(STATE.inflight.values(), key=lambda r: r["time"])
            return self.send(200, {"requests": reqs})
        if path == "/_fake/stats":
            with STATE.lock:
                return self.send(200, {"max_pods_alive": STATE.max_alive,
                                       "pods_alive": len(STATE.pods),
                                       "requests": STATE.seq, "creates": STATE.creates})
        if path == "/_fake/pods" and method == "GET":
            with STATE.lock:
                now = time.time()
                STATE.advance_locked(now)
                out = []
                for p in STATE.pods.values():
                    j = p.to_json(now)
                    j["_boot_pid"] = p.proc.pid if p.proc and p.proc.poll() is None else None
                    out.append(j)
            return self.send(200, {"pods": out})
        if path == "/_fake/pods" and method == "POST":
            if not isinstance(body.get("name"), str):
                return self.send(400, {"error": "name required"})
            req = {"name": body["name"], "image": body.get("image", "runpod/base:1"),
                   "gpu": {"id": body.get("gpu", "NVIDIA GeForce RTX 4090"), "count": 1},
                   "ports": body.get("ports", []), "env": body.get("env", {})}
            created = time.time() - float(body.get("age_sec", 0))
            pod = STATE.add_pod(body["name"], req, created=created)
            with STATE.lock:
                pod.injected = True
                if isinstance(body.get("override"), dict):
                    pod.override = body["override"]
                if isinstance(body.get("omit"), list):
                    pod.omit = [str(k) for k in body["omit"]]
                if body.get("status") in ("EXITED", "ERROR"):
                    pod.forced = body["status"]
                STATE.advance_locked(time.time())
                return self.send(201, pod.to_json(time.time()))
        parts = path.split("/")
        if len(parts) == 5 and parts[2] == "pods" and parts[4] == "log" and method == "POST":
            status, answer = lifecycle.control_log(STATE, parts[3], body)
            return self.send(status, answer)
        if len(parts) == 5 and parts[2] == "pods" and parts[4] == "kill" and method == "POST":
            to = body.get("to", "gone")
            with STATE.lock:
                pod = STATE.pods.get(parts[3])
                if pod is None:
                    return self.send(404, {"error": "no such pod"})
                if to == "gone":
                    del STATE.pods[pod.id]
                    STATE.history.close(pod.id, time.time())
                elif to in ("EXITED", "ERROR"):
                    pod.forced = to
                    pod.status = to
                    pod.log("system", "%s by someone else" % to.lower())
                    STATE.history.open(pod, "stopped", time.time())
                else:
                    return self.send(400, {"error": "to must be EXITED, ERROR or gone"})
                stop_proc(pod)
            return self.send(200, {"ok": True})
        return self.send(404, {"error": "no such control endpoint"})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # A client that gives up (timeouts, closed keep-alive connections) is normal here.
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionResetError, BrokenPipeError, TimeoutError)):
            return
        super().handle_error(request, client_address)


STATE = None


def ticker(stop):
    while not stop.wait(0.05):
        with STATE.lock:
            STATE.advance_locked(time.time())


def parent_watch(ppid, stop, httpd):
    while not stop.wait(0.5):
        try:
            os.kill(ppid, 0)
        except ProcessLookupError:
            threading.Thread(target=httpd.shutdown, daemon=True).start()
            return
        except PermissionError:
            pass


def main():
    global STATE
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--api-key", default="test-key")
    ap.add_argument("--record")
    ap.add_argument("--boot-cmd", default="")
    ap.add_argument("--boot-log")
    ap.add_argument("--boot-delay-sec", type=float, default=1.0)
    ap.add_argument("--provision-sec", type=float, default=0.2)
    ap.add_argument("--start-sec", type=float, default=0.2)
    ap.add_argument("--parent-pid", type=int, default=0)
    args = ap.parse_args()

    STATE = State(args)
    httpd = Server(("127.0.0.1", args.port), Handler)
    port = httpd.server_address[1]
    stop = threading.Event()

    def on_signal(signum, frame):
        threading.Thread(target=httpd.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=ticker, args=(stop,), daemon=True).start()
    if args.parent_pid:
        threading.Thread(target=parent_watch, args=(args.parent_pid, stop, httpd),
                         daemon=True).start()
    sys.stdout.write("PORT=%d\n" % port)
    sys.stdout.flush()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    try:
        httpd.serve_forever(poll_interval=0.2)
    finally:
        stop.set()
        with STATE.lock:
            pods = list(STATE.pods.values())
        for p in pods:
            stop_proc(p, wait=True)
        httpd.server_close()
        if STATE.record_file:
            STATE.record_file.close()


if __name__ == "__main__":
    main()
