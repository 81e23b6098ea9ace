"""measure_review.py: the figures of the gateway review's two resource attacks, for one binary
(ORCH_BINARY), printed as one line each. Not a test (nothing is asserted); run through run.sh's
environment, e.g.

  ORCH_BINARY=build-release/orchestrator tests/gateway/run.sh measure_review

  public-read flood (s3): 16 anonymous readers of one 8 MiB object with 4 KiB receive buffers;
      the gateway's peak RSS and spooled bytes over 8 s.
  pool starvation: one worker's token floods heartbeats (12 connections from 3 addresses, half
      of them 1000 entries / 3.4 MiB, half 100 entries) on a pool of 4; another worker's 20
      heartbeats: statuses and latency.
"""

import json
import socket
import threading
import time
import unittest

import gw_lib
from gw_lib import BUCKET_PREFIX, GatewayTestCase
from test_review_s3 import spooled_bytes
from test_s3 import S3Case


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class MeasurePublicReads(S3Case):

    def test_public_read_flood(self):
        wid, tok = self.new_worker("active")
        tid = self.held_task(wid)
        st, urls, _ = self.client.fn(tok, "generate-upload-url",
                                     {"task_id": tid, "filename": "big.mp4"})
        size = 8 << 20
        st, body, _ = self.client.request("PUT", urls["upload_url"][len(self.gw.base_url):],
                                          raw=b"\x07" * size)
        path = (BUCKET_PREFIX + urls["storage_path"]).encode()
        pid = self.gw.proc.pid
        base = rss_kib(pid)
        readers, peak_rss, peak_spool = [], base, 0
        try:
            for _ in range(16):
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                s.connect(("127.0.0.1", self.gw.port))
                s.sendall(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
                readers.append(s)
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                peak_rss = max(peak_rss, rss_kib(pid))
                peak_spool = max(peak_spool, spooled_bytes(pid)[0])
                time.sleep(0.2)
        finally:
            for s in readers:
                s.close()
        print("measure: public-read flood: rss %d KiB idle, %d KiB peak (+%d KiB); spool peak "
              "%d bytes" % (base, peak_rss, peak_rss - base, peak_spool))


class MeasurePoolStarvation(GatewayTestCase):
    GATEWAY_ENV = {"GATEWAY_MAX_CONNECTIONS": "16", "GATEWAY_DB_POOL_SIZE": "4"}

    def test_pool_starvation(self):
        bad, tok_bad = self.new_worker("active")
        good, tok_good = self.new_worker("active")
        logs = [{"message": "x" * 3000, "metadata": {"k": "v" * 400}} for _ in range(1000)]
        big = json.dumps({"worker_id_param": bad, "logs_param": logs}).encode()
        small = json.dumps({"worker_id_param": bad, "logs_param": logs[:100]}).encode()
        stop = threading.Event()
        def beats(n):
            out = []
            for _ in range(n):
                t0 = time.monotonic()
                try:
                    st = self.client.beat(tok_good, good)[0]
                except OSError as e:
                    st = type(e).__name__
                out.append((st, time.monotonic() - t0))
                time.sleep(0.1)
            return out

        quiet = beats(10)
        threads = gw_lib.heartbeat_flood(self.gw.port, tok_bad, [small, big], 12, stop)
        time.sleep(2)
        try:
            loud = beats(20)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=90)

        def summary(rs):
            ok = sorted(s for st, s in rs if st == 200)
            sts = {}
            for st, _ in rs:
                sts[str(st)] = sts.get(str(st), 0) + 1
            med = ok[len(ok) // 2] if ok else float("nan")
            return "%s, 200s: median %.3f s, max %.3f s" % (sts, med, ok[-1] if ok else
                                                             float("nan"))

        print("measure: pool starvation: quiet %s | flooded %s" % (summary(quiet), summary(loud)))


if __name__ == "__main__":
    unittest.main()
