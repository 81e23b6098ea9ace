"""test_s3.py: STORAGE_BACKEND=s3 against a real S3-compatible server, s3rver (npm), started by
the test on 127.0.0.1 with signature checking on: the gateway's requests are signed by libcurl's
AWS SigV4 (a wrong secret key must fail), uploads land under
<bucket>/<project or system>/tasks/<task_id>/<file>, and public reads come back through the
gateway (or redirect to STORAGE_PUBLIC_BASE_URL)."""

import base64
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
import unittest

from gw_lib import BUCKET_PREFIX, Client, GatewayTestCase, e2e_lib


class S3rver:
    def __init__(self):
        npm = os.environ.get("ORCH_NPM_DIR", "")
        cli = os.path.join(npm, "node_modules", "s3rver", "bin", "s3rver.js")
        if not os.path.isfile(cli):
            raise AssertionError("s3rver is not installed in ORCH_NPM_DIR=%r (run through "
                                 "tests/gateway/run.sh)" % npm)
        self.dir = tempfile.mkdtemp(prefix="orch-s3rver-")
        self.proc = subprocess.Popen(["node", cli, "-d", self.dir, "-a", "127.0.0.1", "-p", "0",
                                      "--configure-bucket", "outputs"],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.port = None
        buf = b""
        deadline = time.monotonic() + 30
        while self.port is None and time.monotonic() < deadline and self.proc.poll() is None:
            r, _, _ = select.select([self.proc.stdout], [], [], 0.2)
            if r:
                buf += os.read(self.proc.stdout.fileno(), 4096)
                m = re.search(rb"127\.0\.0\.1:(\d+)", buf)
                if m:
                    self.port = int(m.group(1))
        if self.port is None:
            self.stop()
            raise AssertionError("s3rver did not start: %r" % buf[-2000:])
        self.url = "http://127.0.0.1:%d" % self.port

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def objects(self):
        """Keys stored in bucket outputs."""
        root = os.path.join(self.dir, "outputs")
        out = []
        for d, _, files in os.walk(root):
            for f in files:
                if f.endswith("._S3rver_object"):
                    out.append(os.path.relpath(os.path.join(d, f[:-len("._S3rver_object")]),
                                               root))
        return sorted(out)


def s3_env(s3, secret="S3RVER", key_id="S3RVER", **extra):
    env = {"STORAGE_BACKEND": "s3", "STORAGE_S3_ENDPOINT": s3.url, "STORAGE_S3_BUCKET": "outputs",
           "STORAGE_S3_REGION": "us-east-1", "STORAGE_S3_ACCESS_KEY_ID": key_id,
           "STORAGE_S3_SECRET_ACCESS_KEY": secret, "STORAGE_MAX_UPLOAD_MB": "16"}
    env.update(extra)
    return env


class TestS3(GatewayTestCase):

    @classmethod
    def setUpClass(cls):
        cls.s3 = S3rver()
        cls.GATEWAY_ENV = s3_env(cls.s3)
        try:
            super().setUpClass()
        except Exception:
            cls.s3.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        try:
            super().tearDownClass()
        finally:
            cls.s3.stop()

    def test_upload_url_put_and_read_back_through_s3(self):
        wid, tok = self.new_worker("active")
        project = "0b6c1a8e-2f4d-4e1b-9c3a-5d7e9f1a2b3c"
        tid = self.held_task(wid, project_id=project)
        st, urls, _ = self.client.fn(tok, "generate-upload-url", {
            "task_id": tid, "filename": "../video.mp4", "content_type": "video/mp4"})
        self.assertEqual(st, 200, urls)
        data = os.urandom(5 * 1024 * 1024 + 3)
        st, body, _ = self.client.request("PUT", urls["upload_url"][len(self.gw.base_url):],
                                          raw=data, headers={"Content-Type": "video/mp4"})
        self.assertEqual(st, 200, body)
        key = "image_uploads/%s/tasks/%s/video.mp4" % (project, tid)
        self.assertIn(key, self.s3.objects())
        st, body, _ = self.client.fn(tok, "complete_task", {"task_id": tid,
                                                            "storage_path": urls["storage_path"]})
        self.assertEqual(st, 200, body)
        st, got, hdrs = self.client.request("GET", BUCKET_PREFIX + urls["storage_path"])
        self.assertEqual((st, hdrs["content-type"]), (200, "video/mp4"))
        self.assertEqual(got, data)
        # A chunked upload (no Content-Length) is spooled, then sent with its length.
        tid2 = self.held_task(wid, run_type="s3-chunked-%s" % wid)
        st, urls2, _ = self.client.fn(tok, "generate-upload-url",
                                      {"task_id": tid2, "filename": "c.bin"})
        st, _ = self.client.put_chunked(urls2["upload_url"][len(self.gw.base_url):],
                                        [b"x" * 70000, b"y" * 3])
        self.assertEqual(st, 200)
        self.assertEqual(self.client.request("GET", BUCKET_PREFIX + urls2["storage_path"])[1],
                         b"x" * 70000 + b"y" * 3)
        # Missing objects: 404 on read, 400 on complete.
        self.assertEqual(self.client.request("GET", BUCKET_PREFIX + "system/tasks/none.mp4")[0],
                         404)
        st, body, _ = self.client.fn(tok, "complete_task", {
            "task_id": tid2, "storage_path": "system/tasks/%s/nothing.mp4" % tid2})
        self.assertEqual(st, 400, body)

    def test_an_interrupted_upload_leaves_no_object(self):
        # A declared length is streamed to the store as it arrives; a client that vanishes
        # half-way must not leave half an object behind.
        import http.client
        wid, tok = self.new_worker("active")
        tid = self.held_task(wid)
        st, urls, _ = self.client.fn(tok, "generate-upload-url",
                                     {"task_id": tid, "filename": "cut.mp4"})
        conn = http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=10)
        conn.putrequest("PUT", urls["upload_url"][len(self.gw.base_url):])
        conn.putheader("Content-Length", str(4 * 1024 * 1024))
        conn.endheaders()
        conn.send(b"z" * (512 * 1024))
        time.sleep(0.3)
        conn.close()
        # Wait for the gateway to have aborted the PUT and deleted the key (its log says so).
        deadline = time.monotonic() + 30
        dropped = False
        while time.monotonic() < deadline and not dropped:
            with open(self.gw.log_path, "rb") as f:
                dropped = b'"gateway.upload_dropped"' in f.read()
            time.sleep(0.1)
        self.assertTrue(dropped, "the interrupted upload was not dropped")
        self.assertNotIn("image_uploads/system/tasks/%s/cut.mp4" % tid, self.s3.objects())
        self.assertEqual(self.client.request("GET", BUCKET_PREFIX + urls["storage_path"])[0], 404)
        # The gateway is fine afterwards, and the same URL works for a whole upload.
        st, body, _ = self.client.request("PUT", urls["upload_url"][len(self.gw.base_url):],
                                          raw=b"w" * 4096)
        self.assertEqual(st, 200, body)
        self.assertIn("image_uploads/system/tasks/%s/cut.mp4" % tid, self.s3.objects())

    def test_base64_complete_into_s3(self):
        wid, tok = self.new_worker("active")
        tid = self.held_task(wid)
        st, body, _ = self.client.fn(tok, "complete_task", {
            "task_id": tid, "file_data": base64.b64encode(b"png bytes").decode(),
            "filename": "i.png"})
        self.assertEqual(st, 200, body)
        self.assertIn("image_uploads/system/tasks/%s/i.png" % tid, self.s3.objects())
        st, got, hdrs = self.client.request("GET", body["public_url"][len(self.gw.base_url):])
        self.assertEqual((st, got, hdrs["content-type"]), (200, b"png bytes", "image/png"))

    def test_unknown_credentials_are_refused_by_the_store(self):
        # s3rver 3.7.1 checks the access key id of a SigV4 Authorization header (it does not
        # recompute v4 signatures: "Signature version 4 calculation is unimplemented" in its
        # lib/middleware/authentication.js), so an unknown key id proves the gateway's requests
        # carry libcurl's SigV4 header and that a refusal stores nothing.
        log_dir = e2e_lib.log_dir_for("s3_wrong_key")
        gw = e2e_lib.Gateway(self.db, log_dir, env=s3_env(self.s3, secret="WRONG-SECRET",
                                                          key_id="NOT-A-KEY"))
        try:
            c = Client(gw.port)
            wid, tok = self.new_worker("active")
            tid = self.held_task(wid)
            st, body, _ = c.fn(tok, "complete_task", {"task_id": tid, "file_data": "aGk=",
                                                      "filename": "x.txt"})
            self.assertEqual(st, 500, body)
            self.assertNotIn("image_uploads/system/tasks/%s/x.txt" % tid, self.s3.objects())
            self.assertEqual(self.db.scalar("SELECT status::text FROM tasks WHERE id = %s",
                                            (tid,)), "In Progress")
            with open(gw.log_path) as f:
                log = f.read()
            self.assertIn("gateway.s3_put_refused", log)
            self.assertNotIn("WRONG-SECRET", log)
        finally:
            self.assertEqual(gw.stop(), 0)

    def test_public_base_url_redirects(self):
        log_dir = e2e_lib.log_dir_for("s3_public_base")
        gw = e2e_lib.Gateway(self.db, log_dir, env=s3_env(
            self.s3, STORAGE_PUBLIC_BASE_URL="https://cdn.example.com/media/"))
        try:
            st, _, hdrs = Client(gw.port).request("GET", BUCKET_PREFIX + "p/tasks/t/a.mp4")
            self.assertEqual(st, 302)
            self.assertEqual(hdrs["location"],
                             "https://cdn.example.com/media/image_uploads/p/tasks/t/a.mp4")
        finally:
            self.assertEqual(gw.stop(), 0)


if __name__ == "__main__":
    unittest.main()
