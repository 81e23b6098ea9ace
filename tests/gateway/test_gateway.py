"""test_gateway.py: `orchestrator gateway` route by route, then as an attacker would use it.

Each route of the worker dialect (structure_docs/gateway.md) with what the reference worker
sends and reads; every refusal rule of issue 13 (no token, unsigned, alg none, tampered, another
secret, a token acting for another worker, a finished worker's token, traversal, oversized and
chunked bodies, hostile JSON); no double-held task under concurrent claims; a database restart
survived; and nothing of a token or the secret in the gateway's log.
"""

import concurrent.futures
import json
import os
import random
import re
import subprocess
import tempfile
import time
import unittest
import urllib.parse

import gw_lib
from gw_lib import BUCKET_PREFIX, Client, GatewayTestCase, e2e_lib, mint, worker_token

REPO = e2e_lib.REPO


class TestRoutes(GatewayTestCase):
    """Each route as the worker calls it, and what it changes in the database."""

    def test_heartbeat_vram_logs_and_unknown_vram(self):
        wid, tok = self.new_worker("spawning")
        logs = [{"timestamp": "2026-01-01T00:00:00Z", "level": "INFO", "message": "loaded",
                 "task_id": None, "metadata": {"k": 1}},
                {"timestamp": "2026-01-01T00:00:01Z", "level": "WARNING", "message": "odd",
                 "task_id": "unknown_task_17"},
                {"message": "no level"}, "not an object", {"level": "INFO"}]
        st, body, _ = self.client.beat(tok, wid, 24564, 1200, logs)
        self.assertEqual(st, 200, body)
        self.assertIs(body["success"], True)
        meta = self.db.one("SELECT metadata, last_heartbeat FROM workers WHERE id = %s", (wid,))
        self.assertEqual(meta["metadata"]["vram_total_mb"], 24564)
        self.assertIsNotNone(meta["last_heartbeat"])
        rows = self.db.query("SELECT message, metadata FROM system_logs WHERE worker_id = %s "
                             "ORDER BY message", (wid,))
        self.assertEqual([r["message"] for r in rows], ["loaded", "no level", "odd"])
        self.assertEqual(rows[2]["metadata"].get("task_ref"), "unknown_task_17",
                         "a junk task_id is kept, not lost to a failed uuid cast")
        # 0, 0 from this dialect means nvidia-smi failed: unknown, the figures are kept.
        st, body, _ = self.client.beat(tok, wid, 0, 0)
        self.assertEqual(st, 200, body)
        meta = self.db.scalar("SELECT metadata FROM workers WHERE id = %s", (wid,))
        self.assertEqual(meta["vram_total_mb"], 24564, "0, 0 must not record 'GPU not visible'")
        # A worker that never reported VRAM and sends 0, 0 gets no vram key at all.
        wid2, tok2 = self.new_worker("active")
        self.assertEqual(self.client.beat(tok2, wid2, 0, 0)[0], 200)
        meta2 = self.db.scalar("SELECT metadata FROM workers WHERE id = %s", (wid2,))
        self.assertNotIn("vram_total_mb", meta2)

    def test_heartbeat_crashed_ends_the_worker(self):
        wid, tok = self.new_worker("active")
        st, body, _ = self.client.beat(tok, wid, 0, 0, status="crashed")
        self.assertEqual(st, 200, body)
        row = self.db.one("SELECT status::text, metadata, end_kind FROM workers WHERE id = %s",
                          (wid,))
        self.assertEqual(row["status"], "crashed")
        self.assertEqual(row["end_kind"], "unexpected")
        self.assertIn("crash", row["metadata"]["error_reason"])
        # A spawning worker cannot become crashed (illegal transition): it becomes error.
        wid2, tok2 = self.new_worker("spawning")
        self.assertEqual(self.client.beat(tok2, wid2, 0, 0, status="crashed")[0], 200)
        self.assertEqual(self.db.scalar("SELECT status::text FROM workers WHERE id = %s",
                                        (wid2,)), "error")
        # Its token is worth nothing afterwards.
        self.assertEqual(self.client.beat(tok, wid)[0], 401)

    def test_counts_claim_and_lost_claim(self):
        wid, tok = self.new_worker("active")
        rt = "counts-%s" % wid
        a = self.new_task(run_type=rt, params={"n": 1})
        later = self.new_task(run_type=rt)
        self.db.execute("UPDATE tasks SET available_at = now() + interval '1 hour' "
                        "WHERE id = %s", (later,))
        st, body, _ = self.client.fn(tok, "task-counts", {"run_type": rt, "include_active": True})
        self.assertEqual(st, 200, body)
        self.assertEqual(body["totals"], {"queued_only": 2, "eligible_queued": 1,
                                          "active_only": 0, "queued_plus_active": 2})
        st, task, _ = self.client.fn(tok, "claim-next-task", {"worker_id": wid, "run_type": rt})
        self.assertEqual(st, 200, task)
        self.assertEqual(task["task_id"], a)
        self.assertEqual(task["params"], {"n": 1})
        self.assertEqual(task["task_type"], "t2v")
        self.assertIn("project_id", task)
        st, body, _ = self.client.fn(tok, "claim-next-task", {"worker_id": wid, "run_type": rt})
        self.assertEqual(st, 204, body)
        self.assertEqual(self.client.fn(tok, "task-counts", {"run_type": rt})[1]["totals"]
                         ["active_only"], 1)
        st, rows, _ = self.client.lost_claim(tok, wid)
        self.assertEqual(st, 200, rows)
        self.assertEqual(rows, [{"id": a, "params": {"n": 1}, "task_type": "t2v",
                                 "project_id": None}])
        # A draining worker gets nothing new.
        wid2, tok2 = self.new_worker("terminating")
        self.assertEqual(self.client.fn(tok2, "claim-next-task", {"run_type": rt})[0], 204)

    def test_pool_worker_asking_for_gpu_gets_its_pools_tasks(self):
        """The reference worker always sends run_type "gpu" (headless-worker-interface.md). A
        worker of pool video (serving run type video) must still see and claim video tasks:
        task-counts telling it "0 queued" would make it skip the claim for good."""
        wid, tok = self.new_worker("active")
        self.db.execute("INSERT INTO worker_pools (name, run_types) VALUES ('video', "
                        "ARRAY['video']) ON CONFLICT (name) DO UPDATE SET run_types = "
                        "EXCLUDED.run_types")
        self.db.execute("UPDATE workers SET pool = 'video' WHERE id = %s", (wid,))
        for _ in range(2):
            self.new_task(serve=False, run_type="gpu")  # not this worker's
        tid = self.new_task(serve=False, run_type="video")
        st, body, _ = self.client.fn(tok, "task-counts", {"run_type": "gpu",
                                                           "include_active": True})
        self.assertEqual(st, 200, body)
        self.assertEqual(body["totals"]["queued_only"], 1, body)
        self.assertEqual(body["totals"]["eligible_queued"], 1, body)
        self.assertEqual(body["run_types"], ["video"])
        st, task, _ = self.client.fn(tok, "claim-next-task", {"worker_id": wid, "run_type": "gpu"})
        self.assertEqual(st, 200, task)
        self.assertEqual(task["task_id"], tid)
        self.assertEqual(self.client.fn(tok, "claim-next-task", {"run_type": "gpu"})[0], 204)

    def test_update_status_failed_follows_the_retry_rule(self):
        wid, tok = self.new_worker("active")
        tid = self.held_task(wid, max_attempts=2)
        st, body, _ = self.client.fn(tok, "update-task-status", {
            "task_id": tid, "status": "Failed", "output_location": "CUDA out of memory"})
        self.assertEqual(st, 200, body)
        self.assertEqual((body["success"], body["status"]), (True, "Queued"))
        t = self.db.one("SELECT status::text, attempts, error_message, worker_id, "
                        "available_at > now() AS later FROM tasks WHERE id = %s", (tid,))
        self.assertEqual((t["status"], t["attempts"], t["error_message"], t["worker_id"],
                          t["later"]), ("Queued", 1, "CUDA out of memory", None, True))
        # Second attempt fails for good.
        self.db.execute("UPDATE tasks SET available_at = now() WHERE id = %s", (tid,))
        self.assertEqual(self.db.scalar("SELECT id::text FROM func_claim_next_task(%s, %s)",
                                        (wid, "held-%s" % wid)), tid)
        st, body, _ = self.client.fn(tok, "update-task-status",
                                     {"task_id": tid, "status": "Failed",
                                      "output_location": "again"})
        self.assertEqual((st, body["status"]), (200, "Failed"), body)
        # Not held any more: 409 for its former holder.
        st, body, _ = self.client.fn(tok, "update-task-status",
                                     {"task_id": tid, "status": "Failed"})
        self.assertEqual(st, 409, body)

    def test_update_status_complete_and_in_progress_reset(self):
        wid, tok = self.new_worker("active")
        tid = self.held_task(wid)
        self.db.execute("UPDATE tasks SET generation_started_at = now() - interval '1 hour' "
                        "WHERE id = %s", (tid,))
        st, body, _ = self.client.fn(tok, "update-task-status", {
            "task_id": tid, "status": "In Progress", "reset_generation_started_at": True})
        self.assertEqual(st, 200, body)
        age = self.db.scalar("SELECT extract(epoch FROM now() - generation_started_at) "
                             "FROM tasks WHERE id = %s", (tid,))
        self.assertLess(age, 60)
        # In Progress for a task it does not hold: a 200 no-op.
        other = self.new_task(run_type="nobody")
        st, body, _ = self.client.fn(tok, "update-task-status", {
            "task_id": other, "status": "In Progress", "reset_generation_started_at": True})
        self.assertEqual(st, 200, body)
        self.assertIsNone(self.db.scalar("SELECT generation_started_at FROM tasks WHERE id = %s",
                                         (other,)))
        st, body, _ = self.client.fn(tok, "update-task-status",
                                     {"task_id": tid, "status": "Complete"})
        self.assertEqual((st, body["status"]), (200, "Complete"), body)
        self.assertEqual(self.db.scalar("SELECT status::text FROM tasks WHERE id = %s", (tid,)),
                         "Complete")

    def test_complete_task_base64_with_first_frame(self):
        wid, tok = self.new_worker("active")
        project = "6f1d7a9e-58a4-4c6c-9a5e-2f3c1d0b9a77"
        tid = self.held_task(wid, project_id=project)
        video, frame = os.urandom(150000), b"\xff\xd8frame"
        import base64
        st, body, _ = self.client.fn(tok, "complete_task", {
            "task_id": tid, "file_data": base64.b64encode(video).decode(),
            "filename": "out.mp4", "first_frame_data": base64.b64encode(frame).decode(),
            "first_frame_filename": "frame.jpg"})
        self.assertEqual(st, 200, body)
        want = "%s%s%s/tasks/%s/out.mp4" % (self.gw.base_url, BUCKET_PREFIX, project, tid)
        self.assertEqual(body["public_url"], want)
        self.assertTrue(body["thumbnail_url"].endswith("/tasks/%s/thumb_frame.jpg" % tid))
        t = self.db.one("SELECT status::text, output_location, result_data FROM tasks "
                        "WHERE id = %s", (tid,))
        self.assertEqual((t["status"], t["output_location"]), ("Complete", want))
        self.assertEqual(t["result_data"]["public_url"], want)
        st, got, hdrs = self.client.request("GET", want[len(self.gw.base_url):])
        self.assertEqual((st, got, hdrs["content-type"]), (200, video, "video/mp4"))
        self.assertEqual(self.client.request("GET", body["thumbnail_url"]
                                             [len(self.gw.base_url):])[1], frame)

    def test_upload_url_put_get_and_complete_by_storage_path(self):
        wid, tok = self.new_worker("active")
        tid = self.held_task(wid)
        st, urls, _ = self.client.fn(tok, "generate-upload-url", {
            "task_id": tid, "filename": "result.mp4", "content_type": "video/mp4",
            "generate_thumbnail_url": True})
        self.assertEqual(st, 200, urls)
        self.assertEqual(urls["storage_path"], "system/tasks/%s/result.mp4" % tid)
        self.assertGreater(urls["expires_at"], time.time())
        data = os.urandom(3 * 1024 * 1024 + 7)
        st, body, _ = self.client.request("PUT", urls["upload_url"][len(self.gw.base_url):],
                                          raw=data, headers={"Content-Type": "video/mp4"})
        self.assertEqual(st, 200, body)
        st, body, _ = self.client.request("PUT", urls["thumbnail_upload_url"]
                                          [len(self.gw.base_url):], raw=b"jpg",
                                          headers={"Content-Type": "image/jpeg"})
        self.assertEqual(st, 200, body)
        st, body, _ = self.client.fn(tok, "complete_task", {
            "task_id": tid, "storage_path": urls["storage_path"],
            "thumbnail_storage_path": urls["thumbnail_storage_path"]})
        self.assertEqual(st, 200, body)
        self.assertEqual(body["public_url"], self.gw.base_url + BUCKET_PREFIX
                         + urls["storage_path"])
        self.assertEqual(self.client.request("GET", BUCKET_PREFIX + urls["storage_path"])[1],
                         data)
        # HEAD works too, and a chunked upload (no Content-Length) is accepted.
        self.assertEqual(self.client.request("HEAD", BUCKET_PREFIX + urls["storage_path"])[0],
                         200)
        tid2 = self.held_task(wid, run_type="held2-%s" % wid)
        st, urls2, _ = self.client.fn(tok, "generate-upload-url",
                                      {"task_id": tid2, "filename": "c.bin"})
        st, _ = self.client.put_chunked(urls2["upload_url"][len(self.gw.base_url):],
                                        [b"a" * 1000, b"b" * 5000])
        self.assertEqual(st, 200)
        self.assertEqual(self.client.request("GET", BUCKET_PREFIX + urls2["storage_path"])[1],
                         b"a" * 1000 + b"b" * 5000)

    def test_complete_task_output_location_and_missing_storage_path(self):
        wid, tok = self.new_worker("active")
        tid = self.held_task(wid)
        st, body, _ = self.client.fn(tok, "complete_task", {
            "task_id": tid, "storage_path": "system/tasks/%s/never-uploaded.mp4" % tid})
        self.assertEqual(st, 400, body)
        self.assertIn("upload it first", body["message"])
        st, body, _ = self.client.fn(tok, "complete_task", {
            "task_id": tid, "output_location": "https://cdn.example.com/x.mp4"})
        self.assertEqual((st, body["public_url"]), (200, "https://cdn.example.com/x.mp4"), body)
        self.assertEqual(self.db.scalar("SELECT output_location FROM tasks WHERE id = %s",
                                        (tid,)), "https://cdn.example.com/x.mp4")

    def test_other_routes_are_404_json(self):
        wid, tok = self.new_worker("active")
        for method, path in [("GET", "/"), ("GET", "/rest/v1/workers"),
                             ("GET", "/rest/v1/tasks?select=*"),
                             ("GET", "/rest/v1/tasks?worker_id=eq.%s&status=eq.Queued" % wid),
                             ("GET", "/rest/v1/tasks?worker_id=eq.%s&status=eq.In%%20Progress"
                                     "&task_type=eq.x" % wid),
                             ("PATCH", "/rest/v1/tasks?id=eq.1"), ("DELETE", "/rest/v1/tasks"),
                             ("POST", "/functions/v1/create-task"),
                             ("POST", "/rest/v1/rpc/func_claim_next_task"),
                             ("GET", "/functions/v1/claim-next-task")]:
            st, body, hdrs = self.client.as_worker(tok, method, path, body={} if method in
                                                   ("POST", "PATCH") else None)
            self.assertEqual(st, 404, (method, path, body))
            self.assertTrue(hdrs["content-type"].startswith("application/json"), (method, path))
            self.assertEqual(body["error"], "not_found")
        self.assertEqual(self.client.request("GET", "/healthz")[0], 200)


class TestRefusals(GatewayTestCase):
    """Every refusal rule of issue 13, and hostile input."""

    GATEWAY_ENV = {"STORAGE_MAX_UPLOAD_MB": "8"}

    def assert_refused(self, code, reply, what):
        st, body, hdrs = reply
        self.assertEqual(st, code, "%s: %r" % (what, body))
        self.assertTrue(hdrs.get("content-type", "").startswith("application/json"), what)
        self.assertIn("message", body, what)

    def test_bad_tokens_are_401(self):
        wid, tok = self.new_worker("active")
        claims = gw_lib.claims_of(tok)
        forged_sub = mint(dict(claims, sub="gpu-someone-else"), secret="x" * 40)
        h, p, s = tok.split(".")
        other_payload = gw_lib.b64url(json.dumps(dict(claims, sub="gpu-victim")).encode())
        cases = {
            "no token": None,
            "empty bearer": "",
            "garbage": "garbage",
            "two parts": h + "." + p,
            "four parts": tok + ".x",
            "unsigned": mint(claims, sign=False),
            "alg none": mint(claims, header={"alg": "none", "typ": "JWT"}, sign=False),
            "alg none with a signature": mint(claims, header={"alg": "none"}),
            "alg HS512": mint(claims, header={"alg": "HS512", "typ": "JWT"}),
            "alg RS256": mint(claims, header={"alg": "RS256", "typ": "JWT"}),
            "tampered payload": h + "." + other_payload + "." + s,
            "tampered signature": h + "." + p + "." + s[:-2] + ("AA" if s[-2:] != "AA" else "BB"),
            "another secret": forged_sub,
            "upload token as worker token": mint({"sub": wid, "use": "upload", "task": "x",
                                                  "path": "a/b", "exp": time.time() + 99}),
            "no use claim": mint({"sub": wid}),
            "expired": mint(dict(claims, exp=int(time.time()) - 5)),
            "longer than any token": "eyJ" + "A" * 5000 + ".e.e",
        }
        for name, t in cases.items():
            headers = {} if t is None else {"Authorization": "Bearer " + t}
            reply = self.client.request("POST", "/functions/v1/claim-next-task", body={},
                                        headers=headers)
            self.assert_refused(401, reply, name)
            reply = self.client.request("POST", "/rest/v1/rpc/func_worker_heartbeat_with_logs",
                                        body={"worker_id_param": wid},
                                        headers={} if t is None else {"apikey": t})
            self.assert_refused(401, reply, name + " (apikey)")
        # Headers beyond the server's memory limit are refused by libmicrohttpd itself.
        st, _, _ = self.client.request("POST", "/functions/v1/claim-next-task", body={},
                                       headers={"Authorization": "Bearer " + "A" * 100000})
        self.assertEqual(st, 431)
        # Two different workers' tokens in Authorization and apikey.
        _, tok2 = self.new_worker("active")
        self.assert_refused(401, self.client.request(
            "POST", "/functions/v1/task-counts", body={},
            headers={"Authorization": "Bearer " + tok, "apikey": tok2}), "two workers")
        # And the real token works.
        self.assertEqual(self.client.fn(tok, "task-counts", {})[0], 200)

    def test_a_token_acts_only_for_its_own_worker(self):
        a, tok_a = self.new_worker("active")
        b, tok_b = self.new_worker("active")
        task_b = self.held_task(b)
        refusals = {
            "heartbeat for B": self.client.beat(tok_a, b),
            "claim for B": self.client.fn(tok_a, "claim-next-task", {"worker_id": b}),
            "counts for B": self.client.fn(tok_a, "task-counts", {"worker_id": b}),
            "lost-claim query of B": self.client.lost_claim(tok_a, b),
            "fail B's task": self.client.fn(tok_a, "update-task-status",
                                            {"task_id": task_b, "status": "Failed"}),
            "complete B's task": self.client.fn(tok_a, "update-task-status",
                                                {"task_id": task_b, "status": "Complete"}),
            "complete_task on B's task": self.client.fn(tok_a, "complete_task", {
                "task_id": task_b, "output_location": "https://evil.example/x"}),
            "complete_task file on B's task": self.client.fn(tok_a, "complete_task", {
                "task_id": task_b, "file_data": "aGk=", "filename": "x.txt"}),
            "upload URL for B's task": self.client.fn(tok_a, "generate-upload-url",
                                                      {"task_id": task_b, "filename": "x"}),
            "a body naming B (update)": self.client.fn(tok_a, "update-task-status", {
                "task_id": task_b, "status": "Failed", "worker_id": b}),
            "a body naming B (complete)": self.client.fn(tok_a, "complete_task", {
                "task_id": task_b, "output_location": "x", "worker_id": b}),
            "a body naming B (upload url)": self.client.fn(tok_a, "generate-upload-url", {
                "task_id": task_b, "filename": "x", "worker_id": b}),
        }
        for name, reply in refusals.items():
            self.assert_refused(403, reply, name)
        t = self.db.one("SELECT status::text, worker_id, attempts, output_location FROM tasks "
                        "WHERE id = %s", (task_b,))
        self.assertEqual((t["status"], t["worker_id"], t["attempts"], t["output_location"]),
                         ("In Progress", b, 0, None), "B's task untouched")
        self.assertFalse(os.path.exists(os.path.join(self.gw.storage_dir, "image_uploads",
                                                     "system", "tasks", task_b)),
                         "nothing stored for B's task")
        # An upload URL of A cannot be replayed onto B's task path.
        task_a = self.held_task(a)
        st, urls, _ = self.client.fn(tok_a, "generate-upload-url",
                                     {"task_id": task_a, "filename": "x.mp4"})
        token = urllib.parse.parse_qs(urllib.parse.urlparse(urls["upload_url"]).query)["token"][0]
        st, body, _ = self.client.request(
            "PUT", "/storage/v1/object/upload/sign/image_uploads/system/tasks/%s/x.mp4?token=%s"
            % (task_b, token), raw=b"evil")
        self.assertEqual(st, 401, body)
        # A worker token is no upload token.
        st, body, _ = self.client.request(
            "PUT", "/storage/v1/object/upload/sign/image_uploads/%s?token=%s"
            % (urls["storage_path"], tok_a), raw=b"x")
        self.assertEqual(st, 401, body)
        # Unknown task: 404.
        self.assert_refused(404, self.client.fn(tok_a, "update-task-status", {
            "task_id": "00000000-0000-4000-8000-000000000000", "status": "Failed"}), "unknown")

    def test_a_finished_workers_token_is_refused(self):
        for status in ("terminated", "error", "crashed"):
            wid, tok = self.new_worker(status)
            for name, reply in {
                    "heartbeat": self.client.beat(tok, wid),
                    "counts": self.client.fn(tok, "task-counts", {}),
                    "claim": self.client.fn(tok, "claim-next-task", {}),
                    "lost claim": self.client.lost_claim(tok, wid),
                    "update": self.client.fn(tok, "update-task-status", {
                        "task_id": self.new_task(), "status": "Failed"}),
                    "upload url": self.client.fn(tok, "generate-upload-url", {
                        "task_id": self.new_task(), "filename": "a"})}.items():
                self.assert_refused(401, reply, "%s worker: %s" % (status, name))
                self.assertEqual(reply[1]["error"], "worker_ended")
        # A token of a worker id that has no row at all.
        tok = worker_token("gpu-never-existed")
        self.assert_refused(401, self.client.fn(tok, "claim-next-task", {}), "no row")
        # A worker terminated after it got an upload URL cannot use it.
        wid, tok = self.new_worker("active")
        tid = self.held_task(wid)
        st, urls, _ = self.client.fn(tok, "generate-upload-url", {"task_id": tid,
                                                                  "filename": "late.mp4"})
        self.assertEqual(st, 200)
        self.db.execute("UPDATE workers SET status = 'terminating' WHERE id = %s", (wid,))
        self.db.execute("UPDATE workers SET status = 'terminated' WHERE id = %s", (wid,))
        st, body, _ = self.client.request("PUT", urls["upload_url"][len(self.gw.base_url):],
                                          raw=b"late")
        self.assertEqual(st, 401, body)

    def test_traversal_in_file_names_and_paths(self):
        wid, tok = self.new_worker("active")
        tid = self.held_task(wid)
        outside = os.path.join(os.path.dirname(self.gw.storage_dir), "secret.txt")
        with open(outside, "w") as f:
            f.write("do not serve")
        for name in ("../../secret.txt", "..\\..\\evil.mp4", "/etc/passwd", "a/../../b.mp4",
                     "x\x00y.mp4", "new\nline.mp4", ".hidden", "....//....//x.mp4"):
            st, urls, _ = self.client.fn(tok, "generate-upload-url",
                                         {"task_id": tid, "filename": name})
            self.assertEqual(st, 200, (name, urls))
            path = urls["storage_path"]
            self.assertTrue(path.startswith("system/tasks/%s/" % tid), (name, path))
            leaf = path.rsplit("/", 1)[1]
            self.assertRegex(leaf, r"^[A-Za-z0-9_-][A-Za-z0-9._-]*$", name)
        for name in ("..", "/", "../", "\\", ""):
            st, body, _ = self.client.fn(tok, "generate-upload-url",
                                         {"task_id": tid, "filename": name})
            self.assertEqual(st, 400, (name, body))
        # complete_task with a traversing file name stores inside the task's folder.
        st, body, _ = self.client.fn(tok, "complete_task", {
            "task_id": tid, "file_data": "aGVsbG8=", "filename": "../../../../tmp/pwn.txt"})
        self.assertEqual(st, 200, body)
        self.assertTrue(body["public_url"].endswith("/system/tasks/%s/pwn.txt" % tid), body)
        self.assertFalse(os.path.exists("/tmp/pwn.txt") and
                         open("/tmp/pwn.txt", "rb").read() == b"hello")
        # storage_path and public reads must stay inside the bucket.
        for path in ("../secret.txt", "/etc/passwd", "a//b", "system/tasks/../../secret.txt",
                     ".spool-x", "a/.hidden"):
            st, body, _ = self.client.fn(self.new_worker("active")[1], "complete_task",
                                         {"task_id": tid, "storage_path": path})
            self.assertEqual(st, 400, (path, body))
        for raw in ("../secret.txt", "%2e%2e/secret.txt", "..%2fsecret.txt",
                    "system/../../secret.txt", "%2e%2e%2f%2e%2e%2fsecret.txt", "a%00b"):
            st, body, _ = self.client.request("GET", BUCKET_PREFIX + raw)
            self.assertIn(st, (400, 404), raw)
            self.assertNotIn(b"do not serve", body if isinstance(body, bytes) else b"", raw)

    def test_oversized_bodies_are_413_and_leave_nothing(self):
        wid, tok = self.new_worker("active")
        tid = self.held_task(wid)
        st, urls, _ = self.client.fn(tok, "generate-upload-url",
                                     {"task_id": tid, "filename": "big.mp4"})
        path = urls["upload_url"][len(self.gw.base_url):]
        # 100 MiB declared (STORAGE_MAX_UPLOAD_MB=8): refused before the body is read.
        started = time.monotonic()
        conn = __import__("http.client").client.HTTPConnection("127.0.0.1", self.gw.port,
                                                               timeout=30)
        conn.putrequest("PUT", path)
        conn.putheader("Content-Length", str(100 * 1024 * 1024))
        conn.putheader("Content-Type", "video/mp4")
        conn.endheaders()
        sent = 0
        try:
            chunk = b"\0" * (1 << 20)
            for _ in range(100):
                conn.send(chunk)
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        resp = conn.getresponse()
        self.assertEqual(resp.status, 413)
        self.assertIn(b"STORAGE_MAX_UPLOAD_MB", resp.read())
        conn.close()
        self.assertLess(time.monotonic() - started, 20)
        # 100 MiB chunked (no length): cut off at 8 MiB.
        st, body = self.client.put_chunked(path, (b"\1" * (1 << 20) for _ in range(100)))
        self.assertIn(st, (413, 0), body)
        stored = os.path.join(self.gw.storage_dir, "image_uploads", urls["storage_path"])
        self.assertFalse(os.path.exists(stored), "nothing stored after a refused upload")
        leftovers = [f for _, _, fs in os.walk(self.gw.storage_dir) for f in fs
                     if ".part-" in f or f.startswith(".spool")]
        self.assertEqual(leftovers, [])
        # JSON bodies have their own caps.
        st, body, _ = self.client.as_worker(tok, "POST", "/functions/v1/claim-next-task",
                                            raw=b"{" + b" " * (70 * 1024) + b"}")
        self.assertEqual(st, 413, body)
        # Exactly at the limit is fine.
        st, urls, _ = self.client.fn(tok, "generate-upload-url",
                                     {"task_id": tid, "filename": "limit.bin"})
        st, body, _ = self.client.request("PUT", urls["upload_url"][len(self.gw.base_url):],
                                          raw=b"\2" * (8 * 1024 * 1024))
        self.assertEqual(st, 200, body)

    def test_hostile_json_is_400_and_never_crashes(self):
        wid, tok = self.new_worker("active")
        tid = self.held_task(wid)
        bad = [b"", b"null", b"[]", b"\"x\"", b"{", b"{\"task_id\": }", b"{}" * 3,
               b"{\"task_id\": \"" + tid.encode() + b"\", \"status\": 7}",
               b"{\"task_id\": 12, \"status\": \"Failed\"}",
               b"{\"task_id\": \"not-a-uuid\", \"status\": \"Failed\"}",
               b"{\"task_id\": \"" + tid.encode() + b"\", \"status\": \"Queued\"}",
               b"[" * 60000, b"{\"a\":" * 5000 + b"1" + b"}" * 5000,
               b"\xff\xfe\x00garbage", b"{\"task_id\": \"" + tid.encode() + b"\x00\"}",
               json.dumps({"task_id": tid, "status": "Failed", "output_location": 5}).encode(),
               json.dumps({"task_id": tid, "status": "Failed",
                           "reset_generation_started_at": "yes"}).encode()]
        for raw in bad:
            st, body, _ = self.client.as_worker(tok, "POST", "/functions/v1/update-task-status",
                                                raw=raw)
            self.assertEqual(st, 400, (raw[:60], body))
        for body in ({"worker_id_param": wid, "vram_total_mb_param": "24000"},
                     {"worker_id_param": wid, "vram_used_mb_param": -1e300},
                     {"worker_id_param": wid, "vram_total_mb_param": -1},
                     {"worker_id_param": wid, "vram_total_mb_param": 1.5},
                     {"worker_id_param": wid, "logs_param": {"a": 1}},
                     {"worker_id_param": wid, "logs_param": [{"message": "m"}] * 1001},
                     {"worker_id_param": wid, "status_param": 3},
                     {"worker_id_param": 5}, {}):
            st, reply, _ = self.client.as_worker(
                tok, "POST", "/rest/v1/rpc/func_worker_heartbeat_with_logs", body, apikey=True)
            self.assertEqual(st, 400, (body if len(json.dumps(body)) < 200 else "big", reply))
        # Numbers beyond any integer (cJSON reads 1e400 as infinity).
        for raw in (b'{"worker_id_param": "%s", "vram_total_mb_param": 1e400}' % wid.encode(),
                    b'{"worker_id_param": "%s", "vram_used_mb_param": -1e400}' % wid.encode(),
                    b'{"worker_id_param": "%s", "vram_total_mb_param": 9e18}' % wid.encode()):
            st, reply, _ = self.client.as_worker(
                tok, "POST", "/rest/v1/rpc/func_worker_heartbeat_with_logs", raw=raw,
                apikey=True)
            self.assertEqual(st, 400, (raw, reply))
        for body in ({"task_id": tid}, {"task_id": tid, "file_data": "!!!", "filename": "a"},
                     {"task_id": tid, "file_data": "aGk="},
                     {"task_id": tid, "first_frame_data": "aGk=",
                      "first_frame_filename": "f.jpg", "output_location": "x"}):
            st, reply, _ = self.client.fn(tok, "complete_task", body)
            self.assertEqual(st, 400, (body, reply))
        # A fuzz round over every route: random bytes and mangled JSON, bounded in count.
        rng = random.Random(1313)
        routes = ["/rest/v1/rpc/func_worker_heartbeat_with_logs", "/functions/v1/task-counts",
                  "/functions/v1/claim-next-task", "/functions/v1/update-task-status",
                  "/functions/v1/complete_task", "/functions/v1/generate-upload-url"]
        seeds = [json.dumps({"worker_id_param": wid, "logs_param": [{"message": "x"}]}),
                 json.dumps({"task_id": tid, "status": "Failed", "output_location": "e"}),
                 json.dumps({"task_id": tid, "file_data": "aGVsbG8=", "filename": "a.txt"})]
        for i in range(300):
            s = bytearray(rng.choice(seeds).encode())
            for _ in range(rng.randint(1, 8)):
                pos = rng.randrange(len(s))
                s[pos] = rng.randrange(256)
            st, _, _ = self.client.as_worker(tok, "POST", rng.choice(routes), raw=bytes(s),
                                             apikey=bool(i % 2))
            self.assertIn(st, (200, 204, 400, 403, 404, 409, 413), s[:80])
        self.assertEqual(self.client.request("GET", "/healthz")[0], 200)

    def test_protocol_abuse_and_idle_connections(self):
        """Raw HTTP abuse (bad chunking, lying lengths, pipelining, NUL bytes, header and query
        floods) and more idle connections than GATEWAY_MAX_CONNECTIONS: the gateway answers or
        drops each, and keeps serving. (This found a descriptor-0 double close.)"""
        import socket
        wid, tok = self.new_worker("active")
        auth = b"Authorization: Bearer " + tok.encode() + b"\r\n"
        post = b"POST /functions/v1/claim-next-task HTTP/1.1\r\nHost: x\r\n" + auth

        def raw(data):
            s = socket.create_connection(("127.0.0.1", self.gw.port), timeout=3)
            out = b""
            try:
                s.sendall(data)
                while True:
                    c = s.recv(65536)
                    if not c:
                        break
                    out += c
            except (socket.timeout, ConnectionResetError, BrokenPipeError):
                pass
            finally:
                s.close()
            return out.split(b"\r\n", 1)[0]

        cases = [
            b"GET /healthz HTTP/1.0\r\n\r\n",
            b"\x00\x01\x02 / HTTP/1.1\r\n\r\n",
            post + b"Transfer-Encoding: chunked\r\n\r\nZZZ\r\nabc\r\n0\r\n\r\n",
            post + b"Transfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\nabc\r\n",
            post + b"Content-Length: 100\r\n\r\n{}",
            post + b"Content-Length: -5\r\n\r\n{}",
            b"POST /functions/v1/complete_task HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer no"
            b"\r\nExpect: 100-continue\r\nContent-Length: 9999999\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n" * 5 + post +
            b"Content-Length: 2\r\nConnection: close\r\n\r\n{}",
            b"GET /storage/v1/object/public/image_uploads/a%00/../../x HTTP/1.1\r\nHost: x\r\n"
            b"Connection: close\r\n\r\n",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + b"".join(
                b"X-%d: %s\r\n" % (i, b"a" * 100) for i in range(500)) + b"\r\n",
            b"GET /rest/v1/tasks?" + b"&".join(b"a%d=b" % i for i in range(2000)) +
            b" HTTP/1.1\r\nHost: x\r\n" + auth + b"Connection: close\r\n\r\n",
            b"POST /functions/v1/task-counts HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            b"\xff\xfe\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        ]
        for _ in range(3):
            for data in cases:
                first = raw(data)
                self.assertTrue(first == b"" or first.startswith(b"HTTP/1.1 "), first)
        held = []
        try:
            for _ in range(300):
                held.append(socket.create_connection(("127.0.0.1", self.gw.port), timeout=3))
        except OSError:
            pass
        finally:
            for s in held:
                s.close()
        deadline = time.monotonic() + 10
        st = 0
        while time.monotonic() < deadline and st != 200:
            try:
                st = self.client.request("GET", "/healthz")[0]
            except OSError:
                time.sleep(0.2)
        self.assertEqual(st, 200)
        self.assertEqual(self.client.fn(tok, "task-counts", {})[0], 200)

    def test_no_task_is_held_twice_under_concurrent_claims(self):
        rt = "race"
        n_tasks, n_workers = 150, 16
        for i in range(n_tasks):
            self.new_task(run_type=rt, params={"i": i})
        workers = [self.new_worker("active") for _ in range(n_workers)]

        def drain(w):
            wid, tok = w
            c = Client(self.gw.port)
            got = []
            while True:
                st, body, _ = c.fn(tok, "claim-next-task", {"run_type": rt})
                if st == 204:
                    return got
                self.assertEqual(st, 200, body)
                got.append(body["task_id"])

        with concurrent.futures.ThreadPoolExecutor(n_workers) as ex:
            results = list(ex.map(drain, workers))
        claimed = [t for r in results for t in r]
        self.assertEqual(len(claimed), n_tasks)
        self.assertEqual(len(set(claimed)), n_tasks, "a task was handed out twice")
        rows = self.db.query("SELECT worker_id, count(*) AS n FROM tasks WHERE run_type = %s "
                             "GROUP BY 1", (rt,))
        by_worker = {r["worker_id"]: r["n"] for r in rows}
        for (wid, _), got in zip(workers, results):
            self.assertEqual(by_worker.get(wid, 0), len(got), wid)

    def test_zz_log_holds_no_token_or_secret(self):
        # Runs last in this class (name order): every refusal above has been logged.
        with open(self.gw.log_path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
        self.assertIn("gateway.refused", text)
        self.assertNotIn(e2e_lib.GATEWAY_SECRET, text)
        self.assertIsNone(re.search(r"eyJ[A-Za-z0-9_-]{4,}\.", text), "a token in the log")


class TestContinuousServesTheGateway(GatewayTestCase):
    """`orchestrator continuous` with GATEWAY_PORT set serves the gateway beside its loop (the
    demo runs it so), and stops both on SIGTERM."""

    def test_continuous_with_gateway_port(self):
        import socket
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k in e2e_lib.PASS_ENV or
               k.startswith(("ASAN_", "UBSAN_", "LSAN_"))}
        env.update({"DATABASE_URL": self.db.url, "SAFE_MODE": "true", "LOG_FORMAT": "json",
                    "GATEWAY_PORT": str(port), "GATEWAY_BIND_ADDRESS": "127.0.0.1",
                    "GATEWAY_JWT_SECRET": e2e_lib.GATEWAY_SECRET,
                    "GATEWAY_DATABASE_URL": e2e_lib.gateway_conninfo(self.db.name),
                    "STORAGE_DIR": os.path.join(self.log_dir, "continuous-storage")})
        proc = subprocess.Popen([e2e_lib.BINARY, "continuous", "--interval", "1"], env=env,
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            c = Client(port)
            wid, tok = self.new_worker("active")
            deadline = time.monotonic() + 20
            st = 0
            while time.monotonic() < deadline and st != 200:
                try:
                    st = c.request("GET", "/healthz")[0]
                except OSError:
                    time.sleep(0.1)
            self.assertEqual(st, 200)
            self.assertEqual(c.fn(tok, "task-counts", {})[0], 200)
            self.assertEqual(c.beat(tok, wid)[0], 200)
        finally:
            proc.send_signal(__import__("signal").SIGTERM)
            out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0, err.decode()[-3000:])
        self.assertIn(b'"gateway.start"', err)
        self.assertIn(b'"gateway.stop"', err)
        self.assertIn(b'"cycle.', err)


class TestDatabaseRestart(unittest.TestCase):
    """The pool survives a restart of PostgreSQL: requests fail with 503 while it is down and
    succeed again once it is back, without restarting the gateway. Uses a private server."""

    def test_gateway_survives_a_database_restart(self):
        tmp = tempfile.mkdtemp(prefix="orch-gw-restart-")
        os.chmod(tmp, 0o755)
        pg = os.path.join(REPO, "scripts", "pg-local.sh")
        out = subprocess.run(["bash", pg, "start", tmp + "/pg"], capture_output=True,
                             text=True, check=True).stdout
        env = dict(os.environ)
        for k, v in re.findall(r"(PG\w+)='?([^'\s]+)'?", out):
            env[k] = v
        saved = {k: os.environ.get(k) for k in ("PGHOST", "PGPORT", "PGUSER")}
        os.environ.update({k: env[k] for k in ("PGHOST", "PGPORT", "PGUSER")})
        gw = None
        try:
            subprocess.run(["createdb", "restart_db"], env=env, check=True)
            url = e2e_lib.server_conninfo("restart_db")
            subprocess.run([e2e_lib.BINARY, "migrate"], env=dict(env, DATABASE_URL=url),
                           check=True, capture_output=True)
            db = e2e_lib.Database.__new__(e2e_lib.Database)
            db.name, db.url = "restart_db", url
            import psycopg2
            db.conn = psycopg2.connect(url)
            db.conn.autocommit = True
            gw_lib.mk_worker(db, "gpu-restart", "active")
            db.conn.close()
            gw = e2e_lib.Gateway(db, tmp, env={"GATEWAY_DB_POOL_SIZE": "2"})
            c = Client(gw.port)
            tok = worker_token("gpu-restart")
            self.assertEqual(c.fn(tok, "task-counts", {})[0], 200)
            # The private server runs with synchronous_commit off and stops in "immediate"
            # mode (a crash): make the role and rows created above durable first.
            subprocess.run(["psql", "-X", "-q", "-d", "restart_db", "-c", "CHECKPOINT"],
                           env=env, check=True)
            subprocess.run(["bash", pg, "stop", tmp + "/pg"], check=True)
            st, body, _ = c.fn(tok, "task-counts", {})
            self.assertEqual(st, 503, body)
            subprocess.run(["bash", pg, "start", tmp + "/pg"], check=True, capture_output=True)
            deadline = time.monotonic() + 20
            st = 0
            while time.monotonic() < deadline and st != 200:
                st, body, _ = c.fn(tok, "task-counts", {})
                time.sleep(0.2)
            self.assertEqual(st, 200, "%r\n%s" % (body, e2e_lib.tail(gw.log_path, 30)))
            self.assertEqual(c.beat(tok, "gpu-restart")[0], 200)
        finally:
            if gw is not None:
                self.assertEqual(gw.stop(), 0)
            subprocess.run(["bash", pg, "stop", tmp + "/pg"])
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v
            subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    unittest.main()
