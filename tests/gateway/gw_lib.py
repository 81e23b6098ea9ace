"""gw_lib.py: shared helpers of the gateway tests (tests/gateway/test_*.py).

Reuses the end-to-end machinery (tests/e2e/e2e_lib.py: throw-away databases copied from the
migrated template, `orchestrator gateway` as a child process connected as a login role that
holds only orchestrator_worker). Tokens are minted here with Python's own hmac/hashlib, an
implementation independent of the gateway's C code, so the tests also prove the two agree on
HS256 (RFC 7519).
"""

import base64
import hashlib
import hmac
import http.client
import json
import os
import sys
import time
import unittest
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "e2e"))

import e2e_lib  # noqa: E402
from e2e_lib import Database, Gateway, GATEWAY_SECRET  # noqa: E402,F401

BUCKET_PREFIX = "/storage/v1/object/public/image_uploads/"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def mint(claims, secret=GATEWAY_SECRET, header=None, sign=True):
    """A JWT with these claims. header defaults to HS256; sign=False leaves the signature
    empty (an "unsigned" token)."""
    h = b64url(json.dumps(header or {"alg": "HS256", "typ": "JWT"}).encode())
    p = b64url(json.dumps(claims).encode())
    sig = hmac.new(secret.encode(), (h + "." + p).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (h, p, b64url(sig) if sign else "")


def worker_token(worker_id, secret=GATEWAY_SECRET):
    return mint({"sub": worker_id, "use": "worker", "role": "orchestrator_worker",
                 "iss": "orchestrator", "iat": int(time.time())}, secret)


def claims_of(token):
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


class Client:
    """HTTP to the gateway with http.client (full control of headers and bodies)."""

    def __init__(self, port):
        self.port = port

    def request(self, method, path, body=None, headers=None, raw=None, timeout=30):
        """Returns (status, parsed JSON or raw bytes, headers dict)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        h = {"Content-Type": "application/json"} if data is not None else {}
        h.update(headers or {})
        try:
            conn.request(method, path, body=data, headers=h)
            resp = conn.getresponse()
            payload = resp.read()
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()
        if hdrs.get("content-type", "").startswith("application/json") and payload.strip():
            try:
                return resp.status, json.loads(payload), hdrs
            except ValueError:
                pass
        return resp.status, payload, hdrs

    def as_worker(self, token, method, path, body=None, apikey=False, **kw):
        h = {"apikey": token} if apikey else {"Authorization": "Bearer " + token}
        h.update(kw.pop("headers", {}))
        return self.request(method, path, body=body, headers=h, **kw)

    def fn(self, token, name, body):
        return self.as_worker(token, "POST", "/functions/v1/" + name, body)

    def beat(self, token, worker_id, total=24564, used=800, logs=None, status="active"):
        return self.as_worker(token, "POST", "/rest/v1/rpc/func_worker_heartbeat_with_logs", {
            "worker_id_param": worker_id, "vram_total_mb_param": total,
            "vram_used_mb_param": used, "logs_param": logs or [], "status_param": status},
            apikey=True)

    def lost_claim(self, token, worker_id, extra=""):
        return self.as_worker(token, "GET", "/rest/v1/tasks?select=id,params,task_type,"
                              "project_id&worker_id=eq.%s&status=eq.In%%20Progress&limit=1%s"
                              % (urllib.parse.quote(worker_id), extra), apikey=True)

    def put_chunked(self, path, chunks, headers=None, timeout=60):
        """PUT with Transfer-Encoding: chunked (no Content-Length); chunks is an iterable of
        bytes. Returns (status, body); a connection the server closed early counts as
        (status read, or 0)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.putrequest("PUT", path)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            try:
                for c in chunks:
                    conn.send(b"%x\r\n%s\r\n" % (len(c), c))
                conn.send(b"0\r\n\r\n")
            except (BrokenPipeError, ConnectionResetError):
                pass
            try:
                resp = conn.getresponse()
                return resp.status, resp.read()
            except (http.client.HTTPException, ConnectionResetError, BrokenPipeError):
                return 0, b""
        finally:
            conn.close()


def mk_worker(db, worker_id, status="active"):
    """A worker row in `status`, walked through legal transitions as the orchestrator would."""
    db.execute("INSERT INTO workers (id, status) VALUES (%s, 'spawning')", (worker_id,))
    path = {"spawning": [], "active": ["active"], "terminating": ["active", "terminating"],
            "error": ["error"], "crashed": ["active", "crashed"],
            "terminated": ["active", "terminating", "terminated"]}[status]
    for s in path:
        db.execute("UPDATE workers SET status = %s WHERE id = %s", (s, worker_id))


class GatewayTestCase(unittest.TestCase):
    """One database and one gateway per test class (setUpClass); GATEWAY_ENV extends the
    gateway's environment."""

    GATEWAY_ENV = {}
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        if not e2e_lib.binary_usable():
            raise AssertionError("orchestrator binary not found at %s" % e2e_lib.BINARY)
        name = "gw_%s_%d" % (cls.__name__.lower()[-30:], os.getpid())
        cls.log_dir = e2e_lib.log_dir_for(cls.__name__)
        cls.db = Database(name)
        try:
            cls.gw = Gateway(cls.db, cls.log_dir, env=dict(cls.GATEWAY_ENV))
        except Exception:
            cls.db.drop()
            raise
        cls.client = Client(cls.gw.port)

    @classmethod
    def tearDownClass(cls):
        rc = cls.gw.stop()
        cls.db.drop()
        if rc != 0:
            raise AssertionError("the gateway exited %s on SIGTERM:\n%s"
                                 % (rc, e2e_lib.tail(cls.gw.log_path, 40)))

    _n = 0

    def new_worker(self, status="active"):
        GatewayTestCase._n += 1
        wid = "gpu-test-%d-%d" % (os.getpid(), GatewayTestCase._n)
        mk_worker(self.db, wid, status)
        return wid, worker_token(wid)

    def setUp(self):
        # Each test starts from an empty queue: a worker claims the oldest task of any run type
        # its pool serves (issue 14), so a task left by an earlier test could be handed out.
        self.db.execute("DELETE FROM tasks")

    def new_task(self, serve=True, **cols):
        # The workers here are of pool `default`; the pool serves every run type a test uses
        # (the orchestrator would write this from POOL_DEFAULT_RUN_TYPES), unless serve=False.
        if serve and cols.get("run_type"):
            self.db.execute("UPDATE worker_pools SET run_types = array_append(run_types, %s) "
                            "WHERE name = 'default' AND NOT (%s = ANY (run_types))",
                            (cols["run_type"], cols["run_type"]))
        cols.setdefault("task_type", "t2v")
        params = cols.pop("params", {"prompt": "a cat"})
        names = ["params"] + list(cols)
        sql = "INSERT INTO tasks (%s) VALUES (%s) RETURNING id::text" % (
            ", ".join(names), ", ".join(["%s"] * len(names)))
        return self.db.scalar(sql, [json.dumps(params)] + list(cols.values()))

    def held_task(self, worker_id, **cols):
        """A task In Progress held by worker_id (claimed through the SQL contract)."""
        cols.setdefault("run_type", "held-%s" % worker_id)
        tid = self.new_task(serve=False, **cols)
        # The worker gets a pool of its own serving only this run type, so the claim below takes
        # exactly this task whatever else is queued.
        pool = "held_%s" % worker_id
        self.db.execute("INSERT INTO worker_pools (name, run_types) VALUES (%s, ARRAY[%s]) "
                        "ON CONFLICT (name) DO UPDATE SET run_types = EXCLUDED.run_types",
                        (pool, cols["run_type"]))
        self.db.execute("UPDATE workers SET pool = %s WHERE id = %s", (pool, worker_id))
        got = self.db.scalar("SELECT id::text FROM func_claim_next_task(%s, %s)",
                             (worker_id, cols["run_type"]))
        self.assertEqual(got, tid)
        return tid
