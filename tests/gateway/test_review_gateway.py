"""test_review_gateway.py: an independent review of the worker gateway (issue 13), as an attacker.

Each test named `test_defect_*` reproduced a defect the review confirmed; all are fixed now
(branch gateway-fixes) and kept as regression tests: each docstring opens with how it was fixed,
then names the defect as found. The other tests are attacks that held, kept as regressions. The
s3 half of the review is test_review_s3.py.

Run alone:  tests/gateway/run.sh test_review_gateway
"""

import concurrent.futures
import http.client
import json
import os
import signal
import socket
import threading
import time
import unittest
import urllib.parse

import gw_lib
from gw_lib import BUCKET_PREFIX, Client, GatewayTestCase, e2e_lib, mint, worker_token

FAR = "00000000-0000-4000-8000-000000000000"


def recover_task(db, tid):
    """What the orchestrator's db_recover_task does to a task whose holder it gave up on."""
    db.execute("UPDATE tasks SET attempts = attempts + 1, status = 'Queued', worker_id = NULL, "
               "generation_started_at = NULL, available_at = now(), "
               "error_message = 'review: recovered' WHERE id = %s AND status = 'In Progress'",
               (tid,))


def log_lines(path):
    with open(path, "rb") as f:
        return f.read().decode("utf-8", "replace").splitlines()


class TestReviewTasks(GatewayTestCase):
    """Identity, task ownership and storage integrity."""

    GATEWAY_ENV = {"STORAGE_MAX_UPLOAD_MB": "8"}

    def move_to_pool_of(self, worker, other):
        self.db.execute("UPDATE workers SET pool = (SELECT pool FROM workers WHERE id = %s) "
                        "WHERE id = %s", (other, worker))

    # ---------------------------------------------------------------------------------------
    # Defects

    def test_defect_late_upload_of_a_former_holder_overwrites_the_new_holders_output(self):
        """FIXED: each claim uploads under a folder of its own (<folder>/tasks/<task>/<attempt>/,
        gw_routes.c object_path), and the holder and claim are checked again right before the
        rename / the end of the S3 PUT (commit_if_holder), for the base64 form too.
        DEFECT (tasks/storage): the holder check of a signed PUT is made once, before the body
        is read (gw_route_put_begin, gw_routes.c), and object paths are the same for every claim
        of a task (<folder>/tasks/<task>/<file name>). A worker that began uploading, lost the
        task to the orchestrator's recovery while its body was still arriving, and finishes
        after another worker re-ran and completed the task, silently replaces the new holder's
        output: the task says Complete by B, its public URL serves A's bytes, and A was told
        200. Expected: the former holder's upload is refused (re-check the holder before the
        commit's rename/PUT) and, better, each claim uploads under a path of its own (attempt
        or claim id in the path) so no late writer can reach the new holder's file."""
        a, tok_a = self.new_worker("active")
        b, tok_b = self.new_worker("active")
        tid = self.held_task(a)
        st, ua, _ = self.client.fn(tok_a, "generate-upload-url",
                                   {"task_id": tid, "filename": "out.mp4"})
        self.assertEqual(st, 200, ua)
        n = 1 << 20
        conn = http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=30)
        conn.putrequest("PUT", ua["upload_url"][len(self.gw.base_url):])
        conn.putheader("Content-Length", str(n))
        conn.putheader("Content-Type", "video/mp4")
        conn.endheaders()
        conn.send(b"A" * (n // 2))
        time.sleep(0.3)
        # A is given up on; B (same pool) claims the task, uploads its output and completes.
        recover_task(self.db, tid)
        self.move_to_pool_of(b, a)
        self.assertEqual(self.db.scalar("SELECT id::text FROM func_claim_next_task(%s, 'gpu')",
                                        (b,)), tid)
        st, ub, _ = self.client.fn(tok_b, "generate-upload-url",
                                   {"task_id": tid, "filename": "out.mp4"})
        self.assertEqual(st, 200, ub)
        st, body, _ = self.client.request("PUT", ub["upload_url"][len(self.gw.base_url):],
                                          raw=b"B" * 1000)
        self.assertEqual(st, 200, body)
        st, body, _ = self.client.fn(tok_b, "complete_task",
                                     {"task_id": tid, "storage_path": ub["storage_path"]})
        self.assertEqual(st, 200, body)
        # A's body arrives at last.
        conn.send(b"A" * (n - n // 2))
        resp = conn.getresponse()
        late_status = resp.status
        resp.read()
        conn.close()
        row = self.db.one("SELECT status::text AS status, worker_id FROM tasks WHERE id = %s",
                          (tid,))
        self.assertEqual((row["status"], row["worker_id"]), ("Complete", b))
        st, served, _ = self.client.request("GET", BUCKET_PREFIX + ub["storage_path"])
        self.assertEqual(st, 200)
        self.assertEqual(served, b"B" * 1000,
                         "the completed task's output was replaced by a former holder's late "
                         "upload (%d bytes of A, A's PUT answered %d)" % (len(served),
                                                                          late_status))
        self.assertNotEqual(late_status, 200, "a non-holder's upload was accepted")

    def test_defect_lost_claim_select_worker_id_is_always_null(self):
        """FIXED: func_gateway_task_json has a worker_id key (0006, edited in place).
        DEFECT (dialect): GET /rest/v1/tasks?select=...,worker_id accepts the worker_id
        column (GW_COL_WORKER_ID, gw_request.c) but func_gateway_task_json (0006_gateway.sql)
        has no worker_id key, so select_columns (gw_routes.c) answers null for every row, and
        select=* does too. Observed: worker_id null. Expected: the holder's id (add
        'worker_id', p_task.worker_id to func_gateway_task_json), or refuse the column."""
        wid, tok = self.new_worker("active")
        self.held_task(wid)
        for sel in ("id,worker_id", "*"):
            st, body, _ = self.client.as_worker(
                tok, "GET", "/rest/v1/tasks?select=%s&worker_id=eq.%s&status=eq.In%%20Progress"
                % (sel, urllib.parse.quote(wid)))
            self.assertEqual(st, 200, body)
            self.assertEqual(len(body), 1, body)
            self.assertEqual(body[0].get("worker_id"), wid, "select=%s: %r" % (sel, body))

    def test_defect_invalid_utf8_is_reported_as_a_database_outage(self):
        """FIXED: gw_request.c checks UTF-8 (400 naming the byte); heartbeat log entries are
        cleaned instead; a value PostgreSQL still refuses (class 22) is a 400 and a warning.
        DEFECT (hostile input): cJSON does not validate UTF-8, so a string with invalid bytes
        passes gw_request.c and is sent to PostgreSQL, which refuses it (SQLSTATE 22021). The
        gateway answers 503 "the database did not answer; retry shortly" and logs
        gateway.db_query_failed at ERROR (gw_db.c exec_once): a permanent client error shown to
        the worker as a transient outage (its retry helper retries 503s) and to the operator as
        a database failure. For the heartbeat it is worse: one bad log line loses the whole beat
        (and every retry of it), so the worker goes stale. Expected: 400 with a clear message for
        fields that must be text (task status, output_location), and for log entries the bad
        entry dropped or its bytes replaced so the heartbeat still lands; no ERROR event."""
        wid, tok = self.new_worker("active")
        tid = self.held_task(wid)
        before = len(log_lines(self.gw.log_path))
        raw = (b'{"task_id":"%s","status":"Failed","output_location":"CUDA error \xc3\x28"}'
               % tid.encode())
        st, body, _ = self.client.as_worker(tok, "POST", "/functions/v1/update-task-status",
                                            raw=raw)
        self.assertEqual(st, 400, body)
        self.db.execute("UPDATE workers SET last_heartbeat = now() - interval '1 hour' "
                        "WHERE id = %s", (wid,))
        raw = (b'{"worker_id_param":"%s","vram_total_mb_param":24564,"vram_used_mb_param":1,'
               b'"logs_param":[{"message":"ok"},{"message":"ffmpeg said \xff\xfe"}]}'
               % wid.encode())
        st, body, _ = self.client.as_worker(
            tok, "POST", "/rest/v1/rpc/func_worker_heartbeat_with_logs", raw=raw, apikey=True)
        self.assertIn(st, (200, 400), body)
        errors = [ln for ln in log_lines(self.gw.log_path)[before:]
                  if '"gateway.db_query_failed"' in ln]
        self.assertEqual(errors, [], "a client's bytes logged as a database failure")
        age = self.db.scalar("SELECT extract(epoch FROM now() - last_heartbeat) FROM workers "
                             "WHERE id = %s", (wid,))
        self.assertLess(age, 60, "one bad log line lost the whole heartbeat")

    def test_defect11_conflicting_body_lengths_are_refused(self):
        """FIXED (review note 11, untested then): libmicrohttpd accepted two conflicting
        Content-Length headers, and Content-Length with Transfer-Encoding; behind a proxy that
        reads the other one, that is request smuggling. Both are now a 400 before any body is
        read, on every route, with or without a token."""
        wid, tok = self.new_worker("active")
        beat = json.dumps({"worker_id_param": wid}).encode()
        for extra in (b"Content-Length: %d\r\nContent-Length: 5\r\n" % len(beat),
                      b"Content-Length: %d\r\nTransfer-Encoding: chunked\r\n" % len(beat)):
            with socket.create_connection(("127.0.0.1", self.gw.port), timeout=10) as s:
                s.sendall(b"POST /rest/v1/rpc/func_worker_heartbeat_with_logs HTTP/1.1\r\n"
                          b"Host: x\r\napikey: " + tok.encode() + b"\r\n"
                          b"Content-Type: application/json\r\n" + extra + b"\r\n" + beat)
                reply = b""
                while b"\r\n\r\n" not in reply:
                    got = s.recv(4096)
                    if not got:
                        break
                    reply += got
            self.assertTrue(reply.startswith(b"HTTP/1.1 400"), (extra, reply[:200]))

    # ---------------------------------------------------------------------------------------
    # Attacks that held

    def test_former_holder_is_refused_everywhere_after_a_reclaim(self):
        """Held: once the orchestrator recovered A's task and B claimed it, A's late complete
        (all three forms), Failed, Complete, upload URL and reset are refused or no-ops, and
        B's result stands."""
        a, tok_a = self.new_worker("active")
        b, tok_b = self.new_worker("active")
        tid = self.held_task(a)
        recover_task(self.db, tid)
        self.move_to_pool_of(b, a)
        self.assertEqual(self.db.scalar("SELECT id::text FROM func_claim_next_task(%s, 'gpu')",
                                        (b,)), tid)
        st, body, _ = self.client.fn(tok_b, "complete_task",
                                     {"task_id": tid, "output_location": "https://b/out.mp4"})
        self.assertEqual(st, 200, body)
        late = {
            "complete output_location": self.client.fn(tok_a, "complete_task", {
                "task_id": tid, "output_location": "https://a/late.mp4"}),
            "complete base64": self.client.fn(tok_a, "complete_task", {
                "task_id": tid, "file_data": "aGk=", "filename": "late.txt"}),
            "Failed": self.client.fn(tok_a, "update-task-status", {
                "task_id": tid, "status": "Failed", "output_location": "late"}),
            "Complete": self.client.fn(tok_a, "update-task-status", {
                "task_id": tid, "status": "Complete", "output_location": "late"}),
            "upload url": self.client.fn(tok_a, "generate-upload-url", {
                "task_id": tid, "filename": "late.mp4"}),
        }
        for name, (st, body, _) in late.items():
            self.assertIn(st, (403, 409), "%s: %r" % (name, body))
        st, body, _ = self.client.fn(tok_a, "update-task-status", {
            "task_id": tid, "status": "In Progress", "reset_generation_started_at": True})
        self.assertEqual(st, 200, body)
        self.assertEqual(body["message"], "nothing to change")
        row = self.db.one("SELECT status::text AS status, worker_id, output_location, attempts "
                          "FROM tasks WHERE id = %s", (tid,))
        self.assertEqual((row["status"], row["worker_id"], row["output_location"],
                          row["attempts"]), ("Complete", b, "https://b/out.mp4", 1))
        stored = [f for _, _, fs in os.walk(os.path.join(self.gw.storage_dir, "image_uploads",
                                                          "system", "tasks", tid)) for f in fs]
        self.assertNotIn("late.txt", stored)

    def test_update_and_complete_race_the_orchestrators_recovery(self):
        """Held: the worker's Failed / complete_task and the orchestrator's recovery of the same
        task (db_recover_task's guarded UPDATE) racing 20 times each: exactly one of the two
        applies every time (attempts counted once; a completed task is never re-queued, a
        re-queued one never completed), and the worker is told 200 only when its write won."""
        import psycopg2
        wid, tok = self.new_worker("active")
        for round_ in range(40):
            tid = self.held_task(wid)
            barrier = threading.Barrier(2)
            out = {}

            def orchestrator():
                conn = psycopg2.connect(self.db.url)
                conn.autocommit = True
                try:
                    barrier.wait()
                    with conn.cursor() as cur:
                        cur.execute("UPDATE tasks SET attempts = attempts + 1, status = 'Queued', "
                                    "worker_id = NULL, generation_started_at = NULL, "
                                    "available_at = now() + interval '1 hour' "
                                    "WHERE id = %s AND worker_id = %s AND status = 'In Progress'",
                                    (tid, wid))
                        out["recovered"] = cur.rowcount == 1
                finally:
                    conn.close()

            def worker():
                c = Client(self.gw.port)
                barrier.wait()
                if round_ % 2:
                    out["reply"] = c.fn(tok, "complete_task",
                                        {"task_id": tid, "output_location": "https://x/o"})[0]
                else:
                    out["reply"] = c.fn(tok, "update-task-status",
                                        {"task_id": tid, "status": "Failed",
                                         "output_location": "boom"})[0]

            ts = [threading.Thread(target=orchestrator), threading.Thread(target=worker)]
            for t in ts:
                t.start()
            for t in ts:
                t.join(30)
            row = self.db.one("SELECT status::text AS status, attempts FROM tasks WHERE id = %s",
                              (tid,))
            self.assertEqual(row["attempts"], 0 if (round_ % 2 and not out["recovered"]) else 1,
                             (round_, out, row))
            self.assertNotEqual(out["recovered"], out["reply"] == 200, (round_, out, row))
            if round_ % 2 and out["reply"] == 200:
                self.assertEqual(row["status"], "Complete")

    def test_pools_claim_and_count_only_their_own_run_types(self):
        """Held: concurrent claims through the gateway by workers of two pools, all sending
        run_type "gpu" as the reference worker does, each take only their pool's run types,
        no task twice; a worker whose pool was removed (no run type) or has no worker_pools row
        at all counts 0 and gets 204 with tasks queued."""
        self.db.execute("INSERT INTO worker_pools (name, run_types) VALUES "
                        "('rv_video', ARRAY['rv-video']), ('rv_image', ARRAY['rv-image']) "
                        "ON CONFLICT (name) DO UPDATE SET run_types = EXCLUDED.run_types")
        for i in range(30):
            self.new_task(serve=False, run_type="rv-video", params={"i": i})
            self.new_task(serve=False, run_type="rv-image", params={"i": i})
        workers = []
        for pool in ("rv_video", "rv_image"):
            for _ in range(4):
                wid, tok = self.new_worker("active")
                self.db.execute("UPDATE workers SET pool = %s WHERE id = %s", (pool, wid))
                workers.append((pool, wid, tok))
        st, counts, _ = self.client.fn(workers[0][2], "task-counts", {"run_type": "gpu"})
        self.assertEqual(counts["totals"]["queued_only"], 30, counts)

        def drain(w):
            pool, wid, tok = w
            c = Client(self.gw.port)
            got = []
            while True:
                st, body, _ = c.fn(tok, "claim-next-task", {"worker_id": wid, "run_type": "gpu"})
                if st == 204:
                    return got
                self.assertEqual(st, 200, body)
                got.append((body["task_id"], body["run_type"]))

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            results = list(ex.map(drain, workers))
        ids = [t for r in results for t, _ in r]
        self.assertEqual(len(ids), 60)
        self.assertEqual(len(set(ids)), 60, "a task was handed out twice")
        for (pool, _, _), got in zip(workers, results):
            want = "rv-video" if pool == "rv_video" else "rv-image"
            self.assertTrue(all(rt == want for _, rt in got), (pool, got))
        # A pool removed from the configuration, and a pool with no row.
        self.new_task(serve=False, run_type="rv-image")
        self.db.execute("UPDATE worker_pools SET run_types = '{}' WHERE name = 'rv_image'")
        orphan, tok_o = self.new_worker("active")
        self.db.execute("UPDATE workers SET pool = 'rv_nowhere' WHERE id = %s", (orphan,))
        for tok in (workers[-1][2], tok_o):
            st, counts, _ = self.client.fn(tok, "task-counts", {"run_type": "rv-image"})
            self.assertEqual(counts["totals"]["queued_only"], 0, counts)
            st, body, _ = self.client.fn(tok, "claim-next-task", {"run_type": "rv-image"})
            self.assertEqual(st, 204, body)

    def test_draining_and_spawning_workers_get_no_work(self):
        """Held: a terminating (draining) or spawning worker gets 204 from the claim while
        claimable tasks are queued; the draining one can still finish the task it holds."""
        wid, tok = self.new_worker("active")
        tid = self.held_task(wid)
        self.new_task(serve=False, run_type="held-%s" % wid)
        self.db.execute("UPDATE workers SET status = 'terminating' WHERE id = %s", (wid,))
        st, body, _ = self.client.fn(tok, "claim-next-task", {})
        self.assertEqual(st, 204, body)
        st, body, _ = self.client.fn(tok, "complete_task",
                                     {"task_id": tid, "output_location": "https://x/y"})
        self.assertEqual(st, 200, body)
        sp, tok_sp = self.new_worker("spawning")
        self.db.execute("UPDATE workers SET pool = (SELECT pool FROM workers WHERE id = %s) "
                        "WHERE id = %s", (wid, sp))
        st, body, _ = self.client.fn(tok_sp, "claim-next-task", {})
        self.assertEqual(st, 204, body)

    def test_token_kinds_algorithms_and_odd_subjects(self):
        """Held: an upload token is no worker token (Bearer or apikey), lower-case or padded
        algorithm names and a crit header are refused, a worker token with a far exp is still
        refused once the worker ended, and tokens of odd worker ids (newline, quotes, non-ASCII,
        SQL) are 401 worker_ended with the log still one JSON object per line."""
        wid, tok = self.new_worker("active")
        tid = self.held_task(wid)
        st, urls, _ = self.client.fn(tok, "generate-upload-url",
                                     {"task_id": tid, "filename": "k.mp4"})
        up = urllib.parse.parse_qs(urllib.parse.urlparse(urls["upload_url"]).query)["token"][0]
        self.assertEqual(self.client.as_worker(up, "POST", "/functions/v1/task-counts", {})[0],
                         401)
        self.assertEqual(self.client.beat(up, wid)[0], 401)
        claims = gw_lib.claims_of(tok)
        for header in ({"alg": "hs256"}, {"alg": "HS256 "}, {"alg": ["HS256"]},
                       {"alg": "HS256", "crit": ["exp"]}, {"typ": "JWT"}):
            bad = mint(claims, header=header)
            self.assertEqual(self.client.fn(bad, "task-counts", {})[0], 401, header)
        ended, _ = self.new_worker("terminated")
        far = mint({"sub": ended, "use": "worker", "exp": int(time.time()) + 10 ** 9})
        st, body, _ = self.client.fn(far, "task-counts", {})
        self.assertEqual((st, body.get("error")), (401, "worker_ended"), body)
        for sub in ("a\nb", 'x" OR 1=1 --', "w\u00e9\u4e16", "'; DROP TABLE tasks; --"):
            t = mint({"sub": sub, "use": "worker", "iat": 1})
            st, body, _ = self.client.fn(t, "claim-next-task", {})
            self.assertEqual(st, 401, (sub, body))
        self.assertEqual(self.db.scalar("SELECT count(*) FROM tasks WHERE id = %s", (tid,)), 1)
        for ln in log_lines(self.gw.log_path):
            if ln.startswith("{"):
                json.loads(ln)

    def test_storage_names_cannot_reach_other_tasks_or_escape(self):
        """Held: file names with traversal, absolute paths, encoded separators and the
        thumbnail prefix stay in the worker's own task folder; an upload URL's path is bound
        to its task; percent-encoded traversal in a PUT path is refused."""
        wid, tok = self.new_worker("active")
        tid = self.held_task(wid)
        other = self.held_task(self.new_worker("active")[0])
        for name in ("../%s/out.mp4" % other, "..%%2f%s%%2fout.mp4" % other,
                     "system/tasks/%s/out.mp4" % other, "C:\\tasks\\%s\\out.mp4" % other,
                     "\u202eevil.mp4", "a" * 5000 + ".mp4"):
            st, urls, _ = self.client.fn(tok, "generate-upload-url",
                                         {"task_id": tid, "filename": name,
                                          "generate_thumbnail_url": True})
            self.assertEqual(st, 200, (name, urls))
            for key in ("storage_path", "thumbnail_storage_path"):
                self.assertTrue(urls[key].startswith("system/tasks/%s/0/" % tid), urls[key])
                self.assertEqual(urls[key].count("/"), 4, urls[key])  # the claim's folder
        st, urls, _ = self.client.fn(tok, "generate-upload-url",
                                     {"task_id": tid, "filename": "ok.mp4"})
        token = urllib.parse.parse_qs(urllib.parse.urlparse(urls["upload_url"]).query)["token"][0]
        for path in ("system/tasks/%s/../%s/ok.mp4" % (tid, other),
                     "system/tasks/%s/%%2e%%2e/%s/ok.mp4" % (tid, other),
                     "system%%2ftasks%%2f%s%%2fok.mp4" % other):
            st, body, _ = self.client.request(
                "PUT", "/storage/v1/object/upload/sign/image_uploads/%s?token=%s"
                % (path, token), raw=b"x")
            self.assertIn(st, (400, 401), (path, body))
        self.assertFalse(os.path.exists(os.path.join(self.gw.storage_dir, "image_uploads",
                                                     "system", "tasks", other)))


class TestReviewExhaustion(GatewayTestCase):
    """Resource exhaustion: connections and the database pool."""

    GATEWAY_ENV = {"GATEWAY_MAX_CONNECTIONS": "16", "GATEWAY_DB_POOL_SIZE": "4"}

    def test_defect_complete_task_body_cap_is_not_the_documented_16_mib(self):
        """FIXED: 16 MiB for complete_task, 64 MiB in total counting the handler's copies
        (gw_internal.h), as gateway.md says; a body up to 4x the cap is drained so the client
        reads the 413.
        DEFECT (limits, doc vs code): structure_docs/gateway.md says complete_task's base64
        body is capped at "twice the file limit, at most 16 MiB" and that all buffered JSON
        bodies together are "at most 64 MiB"; the code has GW_COMPLETE_BODY_MAX = 48 MiB and
        GW_BODY_BUDGET = 128 MiB (gw_internal.h). The budget counts only the raw body, while
        the handler also holds cJSON's copy of the base64 text and the decoded file (about 2.7x
        the body), so two concurrent 48 MiB completes hold ~260 MiB. Observed (default
        STORAGE_MAX_UPLOAD_MB): a 20 MiB body is accepted. Expected: 413 above 16 MiB (or the
        doc and the budget made true)."""
        wid, tok = self.new_worker("active")
        tid = self.held_task(wid)
        import base64
        data = base64.b64encode(b"\x01" * (15 * 1024 * 1024)).decode()
        self.assertGreater(len(data), 16 * 1024 * 1024)
        st, body, _ = self.client.fn(tok, "complete_task",
                                     {"task_id": tid, "file_data": data, "filename": "a.bin"})
        self.assertEqual(st, 413, body)

    def test_defect_one_client_address_takes_every_connection(self):
        """FIXED: GATEWAY_MAX_CONNECTIONS_PER_IP (default a quarter of GATEWAY_MAX_CONNECTIONS)
        and a 10 s idle deadline before the headers are in.
        DEFECT (availability, unauthenticated): libmicrohttpd is started with a global
        connection limit and a 120 s idle timeout but no per-address limit
        (MHD_OPTION_PER_IP_CONNECTION_LIMIT) and no deadline for the request headers
        (gateway.c gateway_start). A client with no token opens GATEWAY_MAX_CONNECTIONS
        connections and sends half a request line: every worker is then refused (connection
        reset) for as long as it trickles a byte every < 120 s. Expected: one address cannot
        hold more than a share of the connections (a per-IP limit, configurable), and headers
        must arrive within a short deadline. Here the attacker is 127.0.0.2, the worker
        127.0.0.1."""
        wid, tok = self.new_worker("active")
        held = []
        try:
            for _ in range(16):
                s = socket.socket()
                s.bind(("127.0.0.2", 0))
                s.settimeout(3)
                s.connect(("127.0.0.1", self.gw.port))
                s.sendall(b"POST /functions/v1/claim-next-task HTTP/1.1\r\nHost: x\r\n")
                held.append(s)
            time.sleep(0.5)
            ok = 0
            for _ in range(5):
                try:
                    st = self.client.request(
                        "POST", "/rest/v1/rpc/func_worker_heartbeat_with_logs",
                        body={"worker_id_param": wid}, headers={"apikey": tok}, timeout=5)[0]
                    ok += st == 200
                except OSError:
                    pass
                for s in held:
                    try:
                        s.sendall(b"X")  # a byte now and then keeps each one alive
                    except OSError:
                        pass
                time.sleep(0.2)
            self.assertGreaterEqual(ok, 4, "a worker was locked out by one tokenless client "
                                           "holding every connection (%d of 5 beats)" % ok)
        finally:
            for s in held:
                s.close()

    def test_defect_one_worker_starves_the_database_pool(self):
        """FIXED: at most 2 requests in flight per worker token (503 + Retry-After beyond), a
        heartbeat body cap of 2 MiB and at most 100 log entries kept per beat.
        DEFECT (availability): there is no per-worker bound on concurrent requests or on the
        database time they take. One token (a compromised or buggy pod) sending heartbeats of
        1000 log entries (the gateway's cap; the reference worker sends at most 100) on 12
        connections keeps every pooled connection busy; other workers' requests wait 5 s in the
        pool's line and get 503 (gw_db.c acquire), so their heartbeats go stale and the
        orchestrator would fail them. Expected: a worker holds at most a small number of pooled
        connections at once (429 beyond), so one pod cannot take the fleet's gateway down."""
        bad, tok_bad = self.new_worker("active")
        good, tok_good = self.new_worker("active")
        logs = [{"message": "x" * 3000, "metadata": {"k": "v" * 400}} for _ in range(1000)]
        body = json.dumps({"worker_id_param": bad, "logs_param": logs}).encode()
        # Within the heartbeat's body cap (2 MiB): these reach the database, 100 entries each.
        small = json.dumps({"worker_id_param": bad, "logs_param": logs[:100]}).encode()
        stop = threading.Event()
        # The flooding pod connects from addresses of its own, as pods do (spread over three so
        # that the per-address limit, GATEWAY_MAX_CONNECTIONS_PER_IP = 4 here, still lets it
        # hold 12 connections): what bounds it is the per-worker limit.
        threads = gw_lib.heartbeat_flood(self.gw.port, tok_bad, [small, body], 12, stop)
        try:
            time.sleep(2)
            results = []
            for _ in range(8):
                t0 = time.monotonic()
                try:
                    st = self.client.beat(tok_good, good)[0]
                except OSError as e:
                    st = type(e).__name__
                results.append((st, round(time.monotonic() - t0, 2)))
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=90)
        ok = sum(1 for st, secs in results if st == 200 and secs < 2.5)
        self.assertGreaterEqual(ok, 6, "another worker's heartbeats while one worker floods: "
                                       "%r" % results)


class DropProxy:
    """TCP -> PostgreSQL unix socket. Once armed for a prepared statement name, the first server
    reply after the client's Bind of that statement is swallowed and the connection cut: the
    server has run (and committed) the statement, the client never hears of it."""
    def __init__(self, sock_path):
        self.sock_path = sock_path
        self.lsock = socket.socket(); self.lsock.bind(("127.0.0.1", 0)); self.lsock.listen(16)
        self.port = self.lsock.getsockname()[1]
        self.armed_for = None; self.cut = 0; self._pending = False
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()
    def arm(self, name):
        with self.lock: self.armed_for = name.encode(); self._pending = False
    def _accept(self):
        while True:
            try: c, _ = self.lsock.accept()
            except OSError: return
            s = socket.socket(socket.AF_UNIX); s.connect(self.sock_path)
            st = {"bind_seen": False}
            threading.Thread(target=self._c2s, args=(c, s, st), daemon=True).start()
            threading.Thread(target=self._s2c, args=(s, c, st), daemon=True).start()
    def _c2s(self, c, s, st):
        try:
            while True:
                d = c.recv(65536)
                if not d: break
                with self.lock:
                    n = self.armed_for
                    if n and (b"\x00" + n + b"\x00") in d and (n + b"\x00SELECT") not in d:
                        st["bind_seen"] = True
                s.sendall(d)
        except OSError: pass
        for x in (c, s):
            try: x.shutdown(socket.SHUT_RDWR)
            except OSError: pass
    def _s2c(self, s, c, st):
        try:
            while True:
                d = s.recv(65536)
                if not d: break
                if st["bind_seen"]:
                    with self.lock: self.armed_for = None; self.cut += 1
                    for x in (c, s):
                        try: x.shutdown(socket.SHUT_RDWR)
                        except OSError: pass
                    break
                c.sendall(d)
        except OSError: pass


class TestReviewRetry(unittest.TestCase):
    """The pool's retry after a connection lost mid-statement (gw_db.c gw_pool_call)."""

    def setUp(self):
        e2e_lib.ensure_gateway_role()
        self.db = e2e_lib.Database("gw_review_retry_%d" % os.getpid())
        self.proxy = DropProxy(os.path.join(os.environ.get("PGHOST", "/tmp"),
                                            ".s.PGSQL.%s" % os.environ.get("PGPORT", "5432")))
        url = "postgresql://%s@127.0.0.1:%d/%s?sslmode=disable" % (
            e2e_lib.GATEWAY_ROLE, self.proxy.port, self.db.name)
        self.gw = e2e_lib.Gateway(self.db, e2e_lib.log_dir_for("TestReviewRetry"),
                                  env={"GATEWAY_DATABASE_URL": url, "GATEWAY_DB_POOL_SIZE": "1"})
        self.client = Client(self.gw.port)

    def tearDown(self):
        rc = self.gw.stop()
        self.db.drop()
        self.assertEqual(rc, 0)

    def test_defect_a_committed_claim_is_repeated_after_a_lost_reply(self):
        """FIXED: gw_db.c sends with PQsendQueryPrepared and re-sends only a statement that never
        left, or a read-only one; a lost claim reply is a 503.
        DEFECT (tasks): gw_pool_call retries a statement once on a fresh connection when the
        connection died under it (gw_db.c, "a statement the server answered is never
        repeated"). But a connection that dies after the server ran and committed the
        statement, before its reply arrived (a network cut, a pooler or server restart), looks
        the same: the claim is run a second time. The worker is told about the second task only;
        the first stays In Progress, held by it, until its lost-claim query or the
        orchestrator's timeout finds it. Here a proxy cuts the connection as the reply of the
        first claim arrives. Observed: the worker holds 2 tasks after one claim. Expected: a
        non-idempotent statement (claim, update, complete) is never re-sent once sent; answer
        503 instead (the worker's next lost-claim query then finds its task)."""
        wid = "gpu-review-retry"
        gw_lib.mk_worker(self.db, wid, "active")
        tok = worker_token(wid)
        for i in range(3):
            self.db.execute("INSERT INTO tasks (task_type, params) VALUES ('t2v', %s)",
                            (json.dumps({"i": i}),))
        self.assertEqual(self.client.fn(tok, "task-counts", {})[0], 200)  # a used connection
        self.proxy.arm("gw_claim")
        st, body, _ = self.client.fn(tok, "claim-next-task", {})
        self.assertEqual(self.proxy.cut, 1, "the proxy did not cut the claim's reply")
        held = self.db.query("SELECT id::text FROM tasks WHERE worker_id = %s AND "
                             "status = 'In Progress'", (wid,))
        self.assertEqual(len(held), 1, "one claim request made the worker hold %d tasks (it "
                                       "was told of %r)" % (len(held), body))

    def test_defect_a_committed_complete_is_answered_409_after_a_lost_reply(self):
        """FIXED with the claim above (a lost complete reply is a 503, never a repeat).
        DEFECT (tasks), the same retry on complete_task: the first run completed the task,
        the repeat finds it no longer In Progress and the worker gets 409, which the reference
        worker reports as "Upload failed" (then a Failed update, refused). Expected: 200 for
        the completion that happened, or 503 without a repeat."""
        wid = "gpu-review-retry2"
        gw_lib.mk_worker(self.db, wid, "active")
        tok = worker_token(wid)
        tid = self.db.scalar("INSERT INTO tasks (task_type, params) VALUES ('t2v', '{}') "
                             "RETURNING id::text")
        st, body, _ = self.client.fn(tok, "claim-next-task", {})
        self.assertEqual((st, body["task_id"]), (200, tid))
        self.proxy.arm("gw_complete")
        st, body, _ = self.client.fn(tok, "complete_task",
                                     {"task_id": tid, "output_location": "https://x/out.mp4"})
        self.assertEqual(self.proxy.cut, 1, "the proxy did not cut the complete's reply")
        self.assertEqual(self.db.scalar("SELECT status::text FROM tasks WHERE id = %s", (tid,)),
                         "Complete")
        self.assertIn(st, (200, 503), "the task was completed but the worker was told %d %r"
                      % (st, body))


class TestReviewShutdown(unittest.TestCase):
    """SIGTERM while requests are in flight."""

    def test_sigterm_during_a_slow_upload_and_an_idle_client(self):
        """Held: SIGTERM while a PUT is half sent and a tokenless client holds a half request:
        the gateway exits 0 within seconds and leaves no temporary file."""
        name = "gw_review_sigterm_%d" % os.getpid()
        log_dir = e2e_lib.log_dir_for("TestReviewShutdown")
        db = e2e_lib.Database(name)
        gw = None
        try:
            gw = e2e_lib.Gateway(db, log_dir)
            c = Client(gw.port)
            gw_lib.mk_worker(db, "gpu-review-term", "active")
            tok = worker_token("gpu-review-term")
            tid = db.scalar("INSERT INTO tasks (task_type, params) VALUES ('t2v', '{}') "
                            "RETURNING id::text")
            self.assertEqual(db.scalar("SELECT id::text FROM func_claim_next_task(%s, 'gpu')",
                                       ("gpu-review-term",)), tid)
            st, urls, _ = c.fn(tok, "generate-upload-url", {"task_id": tid, "filename": "t.mp4"})
            self.assertEqual(st, 200, urls)
            conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
            conn.putrequest("PUT", urls["upload_url"][len(gw.base_url):])
            conn.putheader("Content-Length", str(1 << 20))
            conn.endheaders()
            conn.send(b"x" * 1000)
            idle = socket.create_connection(("127.0.0.1", gw.port))
            idle.sendall(b"GET /healthz HTTP/1.1\r\n")
            time.sleep(0.3)
            t0 = time.monotonic()
            rc = gw.stop()
            self.assertEqual(rc, 0, e2e_lib.tail(gw.log_path, 20))
            self.assertLess(time.monotonic() - t0, 10)
            gw = None
            conn.close()
            idle.close()
            left = [f for _, _, fs in os.walk(os.path.join(log_dir, "storage")) for f in fs]
            self.assertEqual(left, [], "temporary files left behind")
        finally:
            if gw is not None:
                gw.stop()
            db.drop()



class TestReviewConfig(unittest.TestCase):
    """Exit codes and messages for a bad gateway configuration."""

    def run_orch(self, args, **env):
        import subprocess
        e = {k: v for k, v in os.environ.items() if k in e2e_lib.PASS_ENV or
             k.startswith(("ASAN_", "UBSAN_", "LSAN_"))}
        e.update({"GATEWAY_JWT_SECRET": e2e_lib.GATEWAY_SECRET, "LOG_FORMAT": "json"})
        e.update(env)
        p = subprocess.run([e2e_lib.BINARY] + args, env=e, capture_output=True, timeout=60)
        return p.returncode, (p.stdout + p.stderr).decode("utf-8", "replace")

    def test_defect_bind_address_is_checked_only_when_the_server_starts(self):
        """FIXED: config_parse checks that it is an IP literal (exit 3).
        DEFECT (configuration, low): GATEWAY_BIND_ADDRESS must be an IP literal
        (gateway_start, gateway.c), but config_parse does not check it: `orchestrator config`
        accepts GATEWAY_BIND_ADDRESS=localhost (exit 0) and the mistake surfaces only when the
        server starts (after the database and storage were opened; in `continuous`, after the
        rest of the process started). The README promises every problem reported at once with
        exit 3. Expected: `config` exits 3 naming GATEWAY_BIND_ADDRESS."""
        rc, out = self.run_orch(["config"], GATEWAY_PORT="8080", GATEWAY_BIND_ADDRESS="localhost",
                                DATABASE_URL="postgresql:///x")
        self.assertEqual(rc, 3, out[-2000:])
        self.assertIn("GATEWAY_BIND_ADDRESS", out)

    def test_defect_a_port_in_use_exits_1_internal(self):
        """FIXED: the gateway binds its own socket; a port in use is exit 3 naming GATEWAY_PORT.
        DEFECT (exit codes, low): a GATEWAY_PORT already in use ends `orchestrator gateway`
        with exit 1 ("internal", gateway_start returns STATUS_ERR_INTERNAL) although its own
        message says "is the port in use? set GATEWAY_PORT": a configuration problem, exit 3 by
        the README's table, which is what a supervisor or an operator's script keys on."""
        db = e2e_lib.Database("gw_review_port_%d" % os.getpid())
        try:
            e2e_lib.ensure_gateway_role()
            with socket.socket() as busy:
                busy.bind(("127.0.0.1", 0))
                busy.listen()
                port = busy.getsockname()[1]
                rc, out = self.run_orch(
                    ["gateway", "--port", str(port)], GATEWAY_BIND_ADDRESS="127.0.0.1",
                    GATEWAY_DATABASE_URL=e2e_lib.gateway_conninfo(db.name),
                    STORAGE_DIR=os.path.join(e2e_lib.log_dir_for("TestReviewConfig"), "st"))
            self.assertIn("gateway.start_failed", out)
            self.assertEqual(rc, 3, out[-2000:])
        finally:
            db.drop()

    def test_secrets_stay_out_of_config_errors_and_logs(self):
        """Held: a too-short GATEWAY_JWT_SECRET is refused with exit 3 without echoing it; the
        gateway's start-up log (a database it cannot reach) holds neither the secret, the
        database password nor the S3 keys."""
        rc, out = self.run_orch(["gateway", "--port", "1"], GATEWAY_JWT_SECRET="short-REVIEW-x",
                                DATABASE_URL="postgresql:///x")
        self.assertEqual(rc, 3, out)
        self.assertNotIn("short-REVIEW-x", out)
        rc, out = self.run_orch(
            ["gateway", "--port", "0"], GATEWAY_BIND_ADDRESS="127.0.0.1",
            GATEWAY_DATABASE_URL="postgresql://g:pwREVIEW1@127.0.0.1:1/d?sslmode=disable",
            DATABASE_URL="postgresql://u:pwREVIEW2@127.0.0.1:1/d",
            STORAGE_S3_ACCESS_KEY_ID="AKIAREVIEW", STORAGE_S3_SECRET_ACCESS_KEY="s3REVIEWsecret",
            STORAGE_DIR=os.path.join(e2e_lib.log_dir_for("TestReviewConfig"), "st2"))
        self.assertEqual(rc, 4, out[-2000:])
        for secret in (e2e_lib.GATEWAY_SECRET, "pwREVIEW1", "pwREVIEW2", "AKIAREVIEW",
                       "s3REVIEWsecret"):
            self.assertNotIn(secret, out)


if __name__ == "__main__":
    unittest.main()
