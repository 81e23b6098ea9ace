"""test_review_s3.py: the s3 half of the independent gateway review (test_review_gateway.py has
the rest). `test_defect_*` tests reproduce confirmed defects and FAIL until they are fixed; the
others are attacks that held.

Run alone:  tests/gateway/run.sh test_review_s3
"""

import http.client
import json
import os
import socket
import time
import unittest

from gw_lib import BUCKET_PREFIX
from test_s3 import S3Case


def spooled_bytes(pid):
    """Bytes held in the gateway's open (unlinked) .spool-* files."""
    total, n = 0, 0
    for fd in os.listdir("/proc/%d/fd" % pid):
        path = "/proc/%d/fd/%s" % (pid, fd)
        try:
            if ".spool-" in os.readlink(path):
                total += os.stat(path).st_size
                n += 1
        except OSError:
            pass
    return total, n


class TestReviewS3(S3Case):

    def test_defect_public_reads_download_a_full_copy_per_reader(self):
        """FIXED (gw_storage.c s3_read_open: the GET is streamed through libcurl's multi
        interface as the client reads, paused while it does not; HEAD asks the store's HEAD;
        public reads are bounded to half of GATEWAY_MAX_CONNECTIONS). Kept as a regression.
        DEFECT (resource exhaustion, unauthenticated, money): with STORAGE_BACKEND=s3 every
        public GET (no token needed) first downloads the whole object from the store into an
        unlinked spool file under STORAGE_DIR, and only then answers (gw_storage_open,
        gw_storage.c; gw_route_get_object). N readers of one object cost N full downloads
        (store egress is billed) and N copies on the gateway's disk, held for as long as each
        reader is slow to read; a HEAD downloads it too. With the defaults (1 GiB uploads, 256
        connections) an anonymous client can pin 256 GiB of disk. Observed here: 16 readers of
        one 8 MiB object hold 128 MiB of spool. Expected: the object is streamed through
        (curl's write callback feeding a libmicrohttpd callback response), or the GET
        redirects to a presigned store URL, so a reader costs no disk."""
        wid, tok = self.new_worker("active")
        tid = self.held_task(wid)
        st, urls, _ = self.client.fn(tok, "generate-upload-url",
                                     {"task_id": tid, "filename": "big.mp4"})
        self.assertEqual(st, 200, urls)
        size = 8 << 20
        st, body, _ = self.client.request("PUT", urls["upload_url"][len(self.gw.base_url):],
                                          raw=b"\x07" * size)
        self.assertEqual(st, 200, body)
        path = (BUCKET_PREFIX + urls["storage_path"]).encode()
        readers = []
        try:
            for _ in range(16):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.settimeout(30)
                s.connect(("127.0.0.1", self.gw.port))
                s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
                readers.append(s)
            peak, files = 0, 0
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                got, n = spooled_bytes(self.gw.proc.pid)
                if got > peak:
                    peak, files = got, n
                if peak >= 16 * size:
                    break
                time.sleep(0.25)
        finally:
            for s in readers:
                s.close()
        self.assertLess(peak, 2 * size, "16 slow anonymous readers of one %d-byte object made "
                                        "the gateway spool %d bytes in %d files"
                        % (size, peak, files))

    def test_head_and_get_stream_without_spooling(self):
        """Fixed with defect 3: a HEAD asks the store's HEAD (the right Content-Length, no body,
        no spool file), a GET streams the exact bytes, and a missing object is 404 both ways."""
        wid, tok = self.new_worker("active")
        tid = self.held_task(wid)
        st, urls, _ = self.client.fn(tok, "generate-upload-url",
                                     {"task_id": tid, "filename": "h.mp4"})
        data = os.urandom(3 * 1024 * 1024 + 17)
        st, body, _ = self.client.request("PUT", urls["upload_url"][len(self.gw.base_url):],
                                          raw=data)
        self.assertEqual(st, 200, body)
        path = BUCKET_PREFIX + urls["storage_path"]
        conn = http.client.HTTPConnection("127.0.0.1", self.gw.port, timeout=30)
        conn.request("HEAD", path)
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        self.assertEqual(int(resp.getheader("Content-Length")), len(data))
        self.assertEqual(resp.read(), b"")
        conn.close()
        self.assertEqual(spooled_bytes(self.gw.proc.pid), (0, 0))
        st, got, hdrs = self.client.request("GET", path)
        self.assertEqual((st, hdrs["content-type"], hdrs.get("x-content-type-options")),
                         (200, "video/mp4", "nosniff"))
        self.assertEqual(got, data)
        for method in ("GET", "HEAD"):
            self.assertEqual(self.client.request(method, path + "-missing")[0], 404, method)

    def test_defect11_an_uploads_own_content_type_is_not_stored(self):
        """Fixed (review note 11, untested then): a PUT's own Content-Type was stored in S3, so a
        worker could store text/html for a CDN (STORAGE_PUBLIC_BASE_URL) to serve. The stored
        type now comes from the file name's extension allowlist, application/octet-stream for
        anything else."""
        wid, tok = self.new_worker("active")
        tid = self.held_task(wid)
        for name, want in (("page.html", "application/octet-stream"), ("v.mp4", "video/mp4")):
            st, urls, _ = self.client.fn(tok, "generate-upload-url",
                                         {"task_id": tid, "filename": name})
            self.assertEqual(st, 200, urls)
            st, body, _ = self.client.request("PUT", urls["upload_url"][len(self.gw.base_url):],
                                              raw=b"<script>alert(1)</script>",
                                              headers={"Content-Type": "text/html"})
            self.assertEqual(st, 200, body)
            meta = os.path.join(self.s3.dir, "outputs", "image_uploads",
                                urls["storage_path"] + "._S3rver_metadata.json")
            with open(meta) as f:
                stored = json.load(f)
            self.assertEqual(stored.get("content-type"), want, (name, stored))

    def test_s3_keys_stay_under_the_bucket_prefix(self):
        """Held: traversal, encoded separators and odd names never make an S3 key outside
        image_uploads/<folder>/tasks/<task>/, and a public GET of such a path is 400/404."""
        wid, tok = self.new_worker("active")
        tid = self.held_task(wid)
        for name in ("../../../outside.txt", "..%2f..%2foutside.txt", "a?x=1&y=2.txt",
                     "b#frag.txt", "c d\r\nX-Amz-Acl: public-read.txt"):
            st, urls, _ = self.client.fn(tok, "generate-upload-url",
                                         {"task_id": tid, "filename": name})
            self.assertEqual(st, 200, (name, urls))
            st, body, _ = self.client.request("PUT", urls["upload_url"][len(self.gw.base_url):],
                                              raw=b"hi")
            self.assertEqual(st, 200, (name, body))
        objects = self.s3.objects()
        mine = [k for k in objects if k.startswith("image_uploads/system/tasks/%s/" % tid)]
        self.assertEqual(len(mine), 5, objects)
        for key in objects:
            self.assertTrue(key.startswith("image_uploads/system/tasks/"), key)
            self.assertEqual(key.count("/"), 5, key)  # <bucket>/<folder>/tasks/<task>/<attempt>/
        for raw in ("..%2f..%2fx", "%2e%2e/x", "a/../../x", "a?x", "a%0d%0aX:y"):
            st, _, _ = self.client.request("GET", BUCKET_PREFIX + raw)
            self.assertIn(st, (400, 404), raw)


if __name__ == "__main__":
    unittest.main()
