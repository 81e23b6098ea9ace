"""fake_runpod_lifecycle.py -- the parts of the fake RunPod that issue 16 uses: pod actions
(POST /v2/pods/{id}/action), the pod log stream (GET /v2/pods/{id}/logs, Server-Sent Events)
and the pod billing (GET /v2/billing/pods), shaped as openapi-v2.json describes them
(PodActionRequest, Pod, the text/event-stream of {ts, source, line} events,
ListPodBillingResponse). Imported by fake_runpod.py, which owns the pods and the HTTP plumbing;
everything here takes the state and the request handler as arguments.

Behaviour:
  stop      RUNNING/PROVISIONING/STARTING -> EXITED (the boot process gets SIGTERM, cost 0,
            disk kept and billed at the disk price); anything else 409
  start     EXITED/ERROR -> PROVISIONING -> STARTING -> RUNNING again (boot process restarted);
            anything else 409
  restart   RUNNING: the boot process is restarted; else 409
  terminate as DELETE /v2/pods/{id}: 204
  logs      the pod's lines (system events and its boot process's stdout/stderr), `tail`
            (0..5000, default 100) backfilled, then the stream stays open like RunPod's live
            stream (the client must end the read itself) for logs_live_sec
  billing   per pod per bucket (bucketSize hour|day|week|month|year; lastN or startTime/endTime):
            GPU at the pod's cost while it ran, disk at DISK_USD_PER_GB_MONTH while stopped, from
            a history that outlives deleted pods; records carry an extra field RunPod may add

Faults (POST /_fake/faults, see FAULT_DEFAULTS in fake_runpod.py):
  start_no_gpu: bool | [pod ids]   start answers start_no_gpu_status (default 400) "There are
                                   not enough free GPUs on the host machine to start this pod."
  start_no_gpu_status: int
  start_stuck: bool | [pod ids]    start answers 200 but the pod never boots (stays STARTING)
  logs_hang_sec: S                 the log stream sends its headers, then nothing for S s
  logs_live_sec: S                 (default 30) how long the stream stays open after backfill
  logs_junk: bool                  the stream also carries comments, retry:/event: lines, a data
                                   line that is not JSON, an over-long line and control bytes
  billing_extra: [{podId, usd_per_hr}]  phantom pods billed at that rate (a pod this system
                                   cannot see)
  billing_factor: F                real amounts multiplied by F (a mis-priced pod)
  billing_malformed: bool          records without podId, with a string amount, a negative one,
                                   an absurd one, bad times (the exchange is exempt from the
                                   contract's response check)
Control:
  POST /_fake/pods/{id}/log {"lines": [...], "source": "container"}  appends log lines
"""

import json
import threading
import time
from datetime import datetime, timezone
from urllib.parse import parse_qs

NO_GPU_DETAIL = "There are not enough free GPUs on the host machine to start this pod."
DISK_USD_PER_GB_MONTH = 0.20
ACTIONS = ("start", "stop", "restart", "terminate")
BUCKETS = {"hour": 3600, "day": 86400, "week": 7 * 86400, "month": 30 * 86400,
           "year": 365 * 86400}
LIFECYCLE_FAULTS = {"start_no_gpu": False, "start_no_gpu_status": 400, "start_stuck": False,
                    "logs_hang_sec": 0.0, "logs_live_sec": 30.0, "logs_junk": False,
                    "billing_extra": [], "billing_factor": 1.0, "billing_malformed": False}


def iso_sec(ts):
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(s):
    try:
        d = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except (ValueError, AttributeError):
        return None
    if d.tzinfo is None:
        return None
    return d.timestamp()


def applies(fault, pod_id):
    return fault is True or (isinstance(fault, list) and pod_id in fault)


# ------------------------------------------------------------------------------------------------
# Pod history: running and stopped intervals, kept after a pod is deleted (for billing)


class History:
    def __init__(self):
        self.pods = {}  # id -> {"cost": usd_per_hr, "disk": gb, "spans": [[kind, start, end]]}

    def open(self, pod, kind, now):
        h = self.pods.setdefault(pod.id, {"cost": pod.cost,
                                          "disk": int(pod.req.get("disk", 50) or 50),
                                          "spans": []})
        self.close(pod.id, now)
        h["spans"].append([kind, now, None])

    def close(self, pod_id, now):
        h = self.pods.get(pod_id)
        if h and h["spans"] and h["spans"][-1][2] is None:
            h["spans"][-1][2] = now

    def amounts(self, pod_id, start, end, now):
        """(gpu_usd, disk_usd) billed for pod_id within [start, end)."""
        h = self.pods[pod_id]
        gpu = disk = 0.0
        for kind, s, e in h["spans"]:
            e = now if e is None else e
            overlap = max(0.0, min(e, end, now) - max(s, start))
            if overlap <= 0:
                continue
            if kind == "run":
                gpu += h["cost"] * overlap / 3600.0
            else:
                disk += h["disk"] * DISK_USD_PER_GB_MONTH / 730.0 * overlap / 3600.0
        return gpu, disk


# ------------------------------------------------------------------------------------------------
# Actions


def action(handler, state, pod_id, body, rec, stop_proc, problem):
    if (not isinstance(body, dict) or set(body) != {"action"}
            or body.get("action") not in ACTIONS):
        errs = ["$: additional properties '%s' not allowed" % k for k in sorted(body)
                if k != "action"] if isinstance(body, dict) else ["$: expected an object"]
        if isinstance(body, dict) and body.get("action") not in ACTIONS:
            errs.append("$.action: must be one of start, stop, restart, terminate")
        return handler.send(422, problem(422, "Request validation failed.", errs), rec=rec)
    act = body["action"]
    with state.lock:
        now = time.time()
        state.advance_locked(now)
        pod = state.pods.get(pod_id)
        if pod is None:
            return handler.send(404, problem(404, "pod not found"), rec=rec)
        if act == "terminate":
            del state.pods[pod_id]
            state.history.close(pod_id, now)
            stop_proc(pod)
            return handler.send(204, rec=rec)
        allowed = {"stop": ("RUNNING", "PROVISIONING", "STARTING"), "start": ("EXITED", "ERROR"),
                   "restart": ("RUNNING",)}[act]
        if pod.status not in allowed:
            return handler.send(409, problem(409, "cannot %s a pod that is %s" %
                                             (act, pod.status)), rec=rec)
        faults = state.faults
        if act == "start" and applies(faults["start_no_gpu"], pod_id):
            status = int(faults["start_no_gpu_status"] or 400)
            return handler.send(status, problem(status, NO_GPU_DETAIL), rec=rec)
        if act == "stop":
            stop_proc(pod)
            pod.forced = "EXITED"
            pod.status = "EXITED"
            pod.booted = False
            pod.stopped_at = now
            state.history.open(pod, "stopped", now)
            pod.log("system", "stop container")
        elif act == "start":
            stop_proc(pod)
            pod.forced = None
            pod.lifecycle_at = now
            pod.booted = False
            pod.boot_at = None
            pod.started = None
            pod.stuck = applies(faults["start_stuck"], pod_id)
            pod.starts += 1
            state.history.open(pod, "run", now)
            pod.log("system", "start container (start %d)" % pod.starts)
            state.advance_locked(now)
        else:
            stop_proc(pod)
            pod.lifecycle_at = now - state.config["provision_sec"] - state.config["start_sec"]
            pod.booted = False
            pod.log("system", "restart container")
            state.advance_locked(now)
        return handler.send(200, pod.to_json(now), rec=rec)


# ------------------------------------------------------------------------------------------------
# Logs


def log_query(query):
    """(tail, source) from the query string, or an error message."""
    q = parse_qs(query, keep_blank_values=True)
    for k in q:
        if k not in ("tail", "source", "since"):
            return None, None, "unknown query parameter %s" % k
    tail = 100
    if "tail" in q:
        try:
            tail = int(q["tail"][0])
        except ValueError:
            return None, None, "tail must be an integer"
        if not 0 <= tail <= 5000:
            return None, None, "tail must be within [0, 5000]"
    source = q.get("source", [None])[0]
    if source not in (None, "container", "system"):
        return None, None, "source must be container or system"
    if "since" in q and parse_time(q["since"][0]) is None:
        return None, None, "since must be an RFC 3339 date-time"
    return tail, source, None


def sse_events(pod, tail, source, junk):
    lines = [x for x in list(pod.log_lines) if source is None or x[1] == source]
    lines = lines[-tail:] if tail else []
    out = []
    for i, (ts, src, line) in enumerate(lines):
        out.append("id: %s/%012d\ndata: %s\n\n" % (ts, i + 1, json.dumps(
            {"ts": ts, "source": src, "line": line})))
    if junk:
        out.insert(0, ": keep-alive comment\nretry: 3000\n\n")
        out.insert(1, "event: ping\ndata: not json at all\n\n")
        out.append("data: %s\n\n" % json.dumps({"ts": "x", "source": "container",
                                                 "line": "\x1b[31mred\x1b[0m\tbell\x07 " +
                                                 "L" * 3000}))
        out.append("data: {\"line\": 5}\n\n")
    return "".join(out)


def logs(handler, state, pod_id, query, rec, problem):
    tail, source, err = log_query(query)
    if err:
        return handler.send(400, problem(400, err), rec=rec)
    with state.lock:
        pod = state.pods.get(pod_id)
        if pod is None:
            return handler.send(404, problem(404, "pod not found"), rec=rec)
        text = sse_events(pod, tail, source, state.faults["logs_junk"])
        hang = float(state.faults["logs_hang_sec"] or 0)
        live = float(state.faults["logs_live_sec"] or 0)
    headers = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache",
               "Connection": "keep-alive", "X-Accel-Buffering": "no"}
    handler.stream(200, headers, text, rec=rec, hang_sec=hang, live_sec=live)


# ------------------------------------------------------------------------------------------------
# Billing


BILLING_PARAMS = ("startTime", "endTime", "bucketSize", "lastN", "podId")


def billing_window(query, now):
    """(start, end, bucket_sec, bucket_name, pod_filter, query_echo) or an error string."""
    q = parse_qs(query, keep_blank_values=True)
    for k in q:
        if k not in BILLING_PARAMS:
            return "unknown query parameter %s" % k
    name = q.get("bucketSize", ["day"])[0]
    if name not in BUCKETS:
        return "bucketSize must be one of hour, day, week, month, year"
    size = BUCKETS[name]
    if "lastN" in q and ("startTime" in q or "endTime" in q):
        return "lastN is mutually exclusive with startTime/endTime"
    if "lastN" in q:
        try:
            n = int(q["lastN"][0])
        except ValueError:
            return "lastN must be an integer"
        if n < 1:
            return "lastN must be at least 1"
        end = (int(now) // size + 1) * size
        start = end - n * size
    else:
        start = parse_time(q["startTime"][0]) if "startTime" in q else now - 30 * 86400
        end = parse_time(q["endTime"][0]) if "endTime" in q else now
        if start is None or end is None or end <= start:
            return "startTime and endTime must be RFC 3339 date-times, startTime first"
        start = int(start) // size * size
        end = -(-int(end) // size) * size
    pod = q.get("podId", [None])[0]
    return start, end, size, name, pod


def billing(handler, state, query, rec, problem):
    now = time.time()
    w = billing_window(query, now)
    if isinstance(w, str):
        return handler.send(400, problem(400, w), rec=rec)
    start, end, size, name, pod_filter = w
    records = []
    with state.lock:
        faults = dict(state.faults)
        hist = state.history
        for b in range(int(start), int(end), size):
            for pid in sorted(hist.pods):
                if pod_filter and pid != pod_filter:
                    continue
                gpu, disk = hist.amounts(pid, b, b + size, now)
                if gpu <= 0 and disk <= 0:
                    continue
                f = float(faults["billing_factor"] or 1.0)
                records.append({"startTime": iso_sec(b), "endTime": iso_sec(b + size),
                                "podId": pid, "gpuAmount": round(gpu * f, 6), "cpuAmount": 0,
                                "diskAmount": round(disk, 6),
                                "totalAmount": round(gpu * f + disk, 6),
                                "currency": "USD"})
            for extra in faults["billing_extra"] or []:
                if pod_filter and extra.get("podId") != pod_filter:
                    continue
                covered = max(0.0, min(b + size, now) - b)
                usd = float(extra.get("usd_per_hr", 0)) * covered / 3600.0
                if usd > 0:
                    records.append({"startTime": iso_sec(b), "endTime": iso_sec(b + size),
                                    "podId": extra.get("podId", "phantom"),
                                    "gpuAmount": round(usd, 6), "cpuAmount": 0,
                                    "diskAmount": 0, "totalAmount": round(usd, 6)})
    if faults["billing_malformed"]:
        rec["fault"] = {"body": "billing_malformed"}
        prev = iso_sec((int(now) // 3600 - 1) * 3600)
        prev_end = iso_sec((int(now) // 3600) * 3600)
        records += [{"startTime": prev, "endTime": prev_end, "totalAmount": 50.0},
                    {"startTime": prev, "endTime": prev_end, "podId": "bad-amount",
                     "totalAmount": "5.00"},
                    {"startTime": prev, "endTime": prev_end, "podId": "negative",
                     "totalAmount": -40.0},
                    {"startTime": prev, "endTime": prev_end, "podId": "absurd",
                     "totalAmount": 1e12},
                    {"startTime": "yesterday", "endTime": prev_end, "podId": "bad-time",
                     "totalAmount": 7.0},
                    "not an object", None]
    keys = ("totalAmount", "gpuAmount", "cpuAmount", "diskAmount")
    good = [r for r in records if isinstance(r, dict) and "podId" in r
            and all(isinstance(r.get(k), (int, float)) for k in keys)]
    totals = {k: round(sum(r[k] for r in good), 6) for k in keys}
    body = {"records": records,
            "metadata": {"query": {"startTime": iso_sec(start), "endTime": iso_sec(end),
                                   "bucketSize": name, "podId": pod_filter},
                         "recordCount": len(records), "totals": totals,
                         "uniquePodCount": len({r.get("podId") for r in good})}}
    return handler.send(200, body, rec=rec)


def control_log(state, pod_id, body):
    """POST /_fake/pods/{id}/log: appends lines to a pod's log. Returns (status, answer)."""
    lines = body.get("lines")
    if not isinstance(lines, list) or not all(isinstance(x, str) for x in lines):
        return 400, {"error": "lines must be a list of strings"}
    with state.lock:
        pod = state.pods.get(pod_id)
        if pod is None:
            return 404, {"error": "no such pod"}
        for line in lines:
            pod.log(str(body.get("source", "container")), line)
    return 200, {"ok": True}


def pump_output(pod, stream, boot_log):
    """Copies a boot process's output into its pod's log (and the shared boot log)."""
    def run():
        out = open(boot_log, "ab") if boot_log else None
        try:
            for raw in iter(stream.readline, b""):
                if out:
                    out.write(raw)
                    out.flush()
                pod.log("container", raw.decode("utf-8", "replace").rstrip("\n"))
        except (OSError, ValueError):
            pass
        finally:
            if out:
                out.close()
            try:
                stream.close()
            except OSError:
                pass
    threading.Thread(target=run, daemon=True).start()
