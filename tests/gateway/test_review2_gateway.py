"""test_review2_gateway.py: the second independent review of the worker gateway, as an attacker.

The defects this review confirmed (TestReview2S3: a failed duplicate PUT deleted the completed
output on the S3 backend) are fixed; their reproductions are kept as regressions and say what now
holds. The other tests are attacks that held, kept as regressions too.

Run alone:  tests/gateway/run.sh test_review2_gateway
"""

import http.client
import socket
import time
import unittest

from gw_lib import BUCKET_PREFIX, GatewayTestCase
from test_s3 import S3Case


def open_put(port, path, length, first):
    """Starts a PUT of `length` declared bytes and sends `first` of them; returns the open
    connection (the rest never comes unless the caller sends it)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.putrequest("PUT", path)
    conn.putheader("Content-Length", str(length))
    conn.putheader("Content-Type", "video/mp4")
    conn.endheaders()
    conn.send(first)
    return conn


class TestReview2S3(S3Case):
    """STORAGE_BACKEND=s3 (s3rver)."""

    def assert_no_temporary_object(self):
        """Every upload's temporary object (.partial/<random>) is gone, and none is reachable
        through the public route."""
        objects = self.s3.objects()
        self.assertEqual([k for k in objects if not k.startswith("image_uploads/")], [], objects)
        for raw in ("../.partial/x", "..%2f.partial%2fx", ".partial/x", "a/.partial/x"):
            self.assertIn(self.client.request("GET", BUCKET_PREFIX + raw)[0], (400, 404), raw)

    def test_an_aborted_duplicate_put_leaves_the_completed_output(self):
        """Regression (tasks/storage, S3 backend; the review's first defect): PUT #1 of an
        upload URL starts and stalls; PUT #2 of the same URL succeeds; complete_task
        (storage_path) succeeds; then PUT #1's connection ends -- the reference worker's retry
        helper re-sends a PUT after a timeout or network error while the first connection may
        still be half-open at the gateway. It used to DELETE the key (drop_partial), which every
        PUT of one URL shares, and the Complete task's output answered 404. Now each upload
        streams to a temporary key of its own (gw_storage.c, S3_TMP_PREFIX), the commit copies
        it to the key, and an aborted upload deletes only its own temporary object: the output
        stays, and no temporary object is left."""
        wid, tok = self.new_worker("active")
        tid = self.held_task(wid)
        st, urls, _ = self.client.fn(tok, "generate-upload-url",
                                     {"task_id": tid, "filename": "out.mp4"})
        self.assertEqual(st, 200, urls)
        path = urls["upload_url"][len(self.gw.base_url):]
        n = 256 * 1024
        first = open_put(self.gw.port, path, n, b"1" * 1000)  # the stalled first attempt
        time.sleep(0.5)
        st, body, _ = self.client.request("PUT", path, raw=b"2" * n,
                                          headers={"Content-Type": "video/mp4"})
        self.assertEqual(st, 200, body)
        st, body, _ = self.client.fn(tok, "complete_task",
                                     {"task_id": tid, "storage_path": urls["storage_path"]})
        self.assertEqual(st, 200, body)
        self.assertEqual(self.client.request("GET", BUCKET_PREFIX + urls["storage_path"])[0], 200)
        # The first attempt's connection ends at last (the client's socket closes, or the
        # gateway's idle timeout fires on a half-open connection).
        first.sock.shutdown(socket.SHUT_RDWR)
        first.close()
        time.sleep(2.0)
        self.assertEqual(self.db.scalar("SELECT status::text FROM tasks WHERE id = %s", (tid,)),
                         "Complete")
        st, got, _ = self.client.request("GET", BUCKET_PREFIX + urls["storage_path"])
        self.assertEqual((st, len(got)), (200, n),
                         "the output of a Complete task was deleted by an aborted duplicate PUT "
                         "of the same upload URL (GET answered %d)" % st)
        self.assert_no_temporary_object()

    def test_a_late_duplicate_put_refused_after_completion_leaves_the_output(self):
        """Regression (tasks/storage, S3 backend; the review's second defect, the same cause):
        a PUT of the task's upload URL whose body ends after the task was completed is rightly
        refused (409, the task is no longer In Progress). Refusing it used to abort the streamed
        PUT and DELETE the key, the completed output's own. Now only the refused upload's
        temporary object is deleted: 409, the output untouched, no temporary object left."""
        wid, tok = self.new_worker("active")
        tid = self.held_task(wid)
        st, urls, _ = self.client.fn(tok, "generate-upload-url",
                                     {"task_id": tid, "filename": "late.mp4"})
        self.assertEqual(st, 200, urls)
        path = urls["upload_url"][len(self.gw.base_url):]
        n = 256 * 1024
        first = open_put(self.gw.port, path, n, b"1" * 1000)
        time.sleep(0.5)
        st, body, _ = self.client.request("PUT", path, raw=b"2" * n,
                                          headers={"Content-Type": "video/mp4"})
        self.assertEqual(st, 200, body)
        st, body, _ = self.client.fn(tok, "complete_task",
                                     {"task_id": tid, "storage_path": urls["storage_path"]})
        self.assertEqual(st, 200, body)
        first.send(b"1" * (n - 1000))  # the first attempt's body ends at last
        resp = first.getresponse()
        late = resp.status
        resp.read()
        first.close()
        self.assertEqual(late, 409)
        st, got, _ = self.client.request("GET", BUCKET_PREFIX + urls["storage_path"])
        self.assertEqual((st, got[:1] if st == 200 else got), (200, b"2"),
                         "refusing a late PUT of the same URL deleted the completed task's "
                         "output (GET answered %d)" % st)
        self.assert_no_temporary_object()


class TestReview2Local(GatewayTestCase):
    """STORAGE_BACKEND=local: attacks that held."""

    def test_duplicate_puts_of_one_url_never_remove_the_completed_output(self):
        """Held (local backend): an aborted or refused duplicate PUT of the same upload URL only
        removes its own hidden temporary file; the completed output stays."""
        wid, tok = self.new_worker("active")
        tid = self.held_task(wid)
        st, urls, _ = self.client.fn(tok, "generate-upload-url",
                                     {"task_id": tid, "filename": "out.mp4"})
        self.assertEqual(st, 200, urls)
        path = urls["upload_url"][len(self.gw.base_url):]
        n = 256 * 1024
        cut = open_put(self.gw.port, path, n, b"1" * 1000)
        late = open_put(self.gw.port, path, n, b"1" * 1000)
        time.sleep(0.3)
        st, body, _ = self.client.request("PUT", path, raw=b"2" * n)
        self.assertEqual(st, 200, body)
        st, body, _ = self.client.fn(tok, "complete_task",
                                     {"task_id": tid, "storage_path": urls["storage_path"]})
        self.assertEqual(st, 200, body)
        cut.sock.shutdown(socket.SHUT_RDWR)
        cut.close()
        late.send(b"1" * (n - 1000))
        resp = late.getresponse()
        self.assertEqual(resp.status, 409)
        resp.read()
        late.close()
        time.sleep(0.5)
        st, got, _ = self.client.request("GET", BUCKET_PREFIX + urls["storage_path"])
        self.assertEqual((st, got), (200, b"2" * n))

    def test_deeply_nested_log_metadata_is_kept_or_refused_without_a_crash(self):
        """Held: log metadata nested to cJSON's limit walks every recursive path (UTF-8 check,
        print, duplicate) on the 256 KiB request thread stack; one past the limit is a 400."""
        wid, tok = self.new_worker("active")
        for depth, want in ((990, 200), (999, 400)):
            meta = "[" * depth + "]" * depth
            raw = ('{"worker_id_param": "%s", "logs_param": [{"message": "m", "metadata": '
                   '{"a": %s}}]}' % (wid, meta)).encode()
            st, body, _ = self.client.as_worker(
                tok, "POST", "/rest/v1/rpc/func_worker_heartbeat_with_logs", raw=raw, apikey=True)
            self.assertEqual(st, want, body)
        self.assertEqual(self.client.request("GET", "/healthz")[0], 200)

    def test_tokens_cross_kinds_and_workers(self):
        """Held: an upload token is no worker token, a worker token no upload token, and an
        upload URL of worker A cannot be replayed for another path or after A ended."""
        a, tok_a = self.new_worker("active")
        tid = self.held_task(a)
        st, urls, _ = self.client.fn(tok_a, "generate-upload-url",
                                     {"task_id": tid, "filename": "x.png"})
        self.assertEqual(st, 200, urls)
        up = urls["upload_url"].split("token=")[1]
        self.assertEqual(self.client.fn(up, "claim-next-task", {})[0], 401)
        path = urls["upload_url"][len(self.gw.base_url):].split("?")[0]
        self.assertEqual(self.client.request("PUT", path + "?token=" + tok_a, raw=b"x")[0], 401)
        other = path.replace("x.png", "y.png")
        self.assertEqual(self.client.request("PUT", other + "?token=" + up, raw=b"x")[0], 401)
        self.db.execute("UPDATE workers SET status = 'error' WHERE id = %s", (a,))
        self.assertEqual(self.client.request("PUT", path + "?token=" + up, raw=b"x")[0], 401)


if __name__ == "__main__":
    unittest.main()
