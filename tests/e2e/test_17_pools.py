"""Worker pools (issue 14), end to end: the real binary, the fake RunPod and fake workers.

1. Two pools with their own GPU type, image and limits scale up and down independently: video
   tasks bring up video pods only (each create names the video image and GPU, WORKER_POOL=video
   in its env, the row's pool video), image tasks then bring up image pods, the video pool drains
   back to its MIN while the image pool is still busy, and the image pool drains back to its MIN
   of zero. Per-pool counters in the metrics textfile agree with the fake's request log.
2. A crash-looping image in one pool (the fake's boot command makes the video image exit 1 at
   start, as a broken image would) opens that pool's circuit breaker and stops its spawns, while
   the other pool keeps serving its tasks to completion.
3. Tasks of a run type no pool serves are reported: `submit` warns, the cycle logs
   tasks.unserved, `status` has an `unserved` line and `status --json` an `unserved` object, and
   the metrics textfile has tasks_unserved{run_type}. `spawn --pool` routes a spawn by pool, and
   an unknown pool or a missing --pool exits 2.
Each ends with the fleet invariants of test_10 (e2e_lib.check_invariants).
"""

import json
import os
import re
import unittest

import e2e_lib
from e2e_lib import FAKE_WORKER, PY, SafetyTestCase

VIDEO_GPU = "NVIDIA A100 80GB PCIe"
IMAGE_GPU = "NVIDIA GeForce RTX 4090"
VIDEO_IMAGE = "example/video-worker:1"
IMAGE_IMAGE = "example/image-worker:1"
BROKEN_VIDEO_IMAGE = "example/video-worker:crashloop"

# The boot command of test 2: an image whose tag is "crashloop" exits 1 at start.
CRASHLOOP_BOOT = ('case "$FAKE_POD_IMAGE" in *:crashloop) echo "fake image $FAKE_POD_IMAGE: '
                  'crash at start" >&2; exit 1;; esac; exec %s %s' % (PY, FAKE_WORKER))

SAMPLE_RE = re.compile(r"^(gpu_orchestrator_[a-z_]+)(\{[^}]*\})? (\S+)$")


def two_pools(**overrides):
    """The configuration of two pools: video (80 GB GPU, MIN 1, MAX 3, 2 tasks per GPU) and
    image (24 GB GPU, MIN 0, MAX 2, 1 task per GPU), under a fleet MAX of 5."""
    cfg = {
        "POOLS": "video,image",
        "MIN_ACTIVE_GPUS": "0",
        "MAX_ACTIVE_GPUS": "5",
        "GPU_IDLE_TIMEOUT_SEC": "3",
        "WORKER_GRACE_PERIOD_SEC": "1",
        "POOL_VIDEO_GPU_TYPES": VIDEO_GPU,
        "POOL_VIDEO_WORKER_IMAGE": VIDEO_IMAGE,
        "POOL_VIDEO_MIN_ACTIVE_GPUS": "1",
        "POOL_VIDEO_MAX_ACTIVE_GPUS": "3",
        "POOL_VIDEO_TASKS_PER_GPU_THRESHOLD": "2",
        "POOL_IMAGE_GPU_TYPES": IMAGE_GPU,
        "POOL_IMAGE_WORKER_IMAGE": IMAGE_IMAGE,
        "POOL_IMAGE_MIN_ACTIVE_GPUS": "0",
        "POOL_IMAGE_MAX_ACTIVE_GPUS": "2",
        "POOL_IMAGE_TASKS_PER_GPU_THRESHOLD": "1",
        "POOL_IMAGE_ENV_IMAGE_MODEL": "sdxl",
    }
    cfg.update(overrides)
    return cfg


class TestPools(SafetyTestCase):

    def setUp(self):
        super().setUp()
        self.metrics_path = os.path.join(self.log_dir, "orchestrator.prom")
        self.config["METRICS_FILE"] = self.metrics_path

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def pool(res, name):
        """The summary's pools[] entry of pool name."""
        for p in (res.summary or {}).get("pools") or []:
            if p["pool"] == name:
                return p
        raise AssertionError("no pool %s in the summary: %s" % (name, res.describe()))

    def rows(self, pool=None, live=True):
        sql = "SELECT id, status::text AS status, pool, runpod_id FROM workers"
        conds, args = [], []
        if pool:
            conds.append("pool = %s")
            args.append(pool)
        if live:
            conds.append("status <> 'terminated'")
        if conds:
            sql += " WHERE " + " AND ".join(conds)
        return self.db.query(sql + " ORDER BY created_at, id", args)

    def creates_of(self, image):
        return [r for r in self.creates() if (r["body"] or {}).get("image") == image]

    def metrics(self):
        """The METRICS_FILE samples: {'name{labels}': value}."""
        out = {}
        with open(self.metrics_path) as f:
            for line in f:
                m = SAMPLE_RE.match(line.strip())
                if m:
                    out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
        return out

    def tasks_of(self, run_type):
        return self.db.query("SELECT id::text, status::text AS status, attempts, worker_id "
                             "FROM tasks WHERE run_type = %s ORDER BY created_at", (run_type,))

    def assert_create(self, req, pool, image, gpu):
        body = req["body"]
        env = body.get("env") or {}
        self.assertEqual((body.get("image"), (body.get("gpu") or {}).get("id")), (image, gpu),
                         "create of pool %s: %s" % (pool, body))
        self.assertEqual(env.get("WORKER_POOL"), pool, env)
        self.assertEqual(env.get("WORKER_ID"), body["name"], env)
        row = self.db.one("SELECT pool FROM workers WHERE id = %s", (body["name"],))
        self.assertEqual(row and row["pool"], pool, "worker row of %s" % body["name"])
        if pool == "image":
            self.assertEqual(env.get("IMAGE_MODEL"), "sdxl", "POOL_IMAGE_ENV_IMAGE_MODEL")
        else:
            self.assertNotIn("IMAGE_MODEL", env, "another pool's env leaked into %s" % pool)

    # -- 1 ---------------------------------------------------------------------------------------

    def test_two_pools_scale_up_and_down_independently(self):
        self.config.update(two_pools())
        self.start_fake()
        video = [self.db.insert_task("generate", {"duration_sec": 1, "n": i}, run_type="video")
                 for i in range(6)]

        # -- video work: video pods only. desired(video) = max(MIN 1, ceil(6 / 2)) = 3 ------
        first = self.cycle()
        v, i = self.pool(first, "video"), self.pool(first, "image")
        self.assertEqual((v["queued"], v["desired"], v["to_spawn"]), (6, 3, 3), first.describe())
        self.assertEqual((i["queued"], i["desired"], i["to_spawn"]), (0, 0, 0), first.describe())
        spawned = [o for o in first.summary["outcomes"] if o["action"] == "spawn_worker"]
        self.assertEqual([(o["pool"], o["result"]) for o in spawned], [("video", "applied")] * 3)
        self.assertEqual(len(self.creates()), 3)
        for req in self.creates():
            self.assert_create(req, "video", VIDEO_IMAGE, VIDEO_GPU)

        def image_pool_idle(res):
            p = self.pool(res, "image")
            self.assertEqual((p["desired"], p["to_spawn"]), (0, 0), res.describe())

        self.run_cycles_until(lambda: {t["status"] for t in self.tasks_of("video")} ==
                              {"Complete"}, timeout=40, what="6 video tasks Complete",
                              check_each=image_pool_idle)
        self.assertEqual(self.rows("image"), [], "the image pool stayed at its MIN of 0")
        self.assertEqual(self.creates_of(IMAGE_IMAGE), [])

        # -- image work: image pods, while the video pool drains -----------------------------
        image = [self.db.insert_task("render", {"duration_sec": 15, "n": i}, run_type="image")
                 for i in range(2)]
        self.run_cycles_until(lambda: [t["status"] for t in self.tasks_of("image")] ==
                              ["In Progress"] * 2, timeout=30, what="both image tasks running")
        image_creates = self.creates_of(IMAGE_IMAGE)
        self.assertEqual(len(image_creates), 2, "image desired = ceil(2 / 1) = its MAX 2")
        for req in image_creates:
            self.assert_create(req, "image", IMAGE_IMAGE, IMAGE_GPU)
        holders = {t["worker_id"] for t in self.tasks_of("image")}
        self.assertEqual({r["pool"] for r in self.rows() if r["id"] in holders}, {"image"},
                         "image tasks are claimed by image workers only")

        rep = json.loads(self.run_binary("reconcile", "--json").stdout)
        pools_of_rows = {r["id"]: r["pool"] for r in self.rows(live=False)}
        matched = [p for p in rep["pods"] if p["verdict"] == "matched"]
        self.assertTrue(matched, rep)
        for p in matched:
            self.assertEqual(p["pool"], pools_of_rows[p["worker_id"]], p)
        totals = {x["pool"]: x["pods"] for x in rep["totals"]["pools"]}
        self.assertEqual(list(totals), ["video", "image"], rep["totals"])
        self.assertEqual(sum(totals.values()), len(matched), rep["totals"])
        self.assertEqual(totals["image"], 2, rep["totals"])

        def video_at_min():
            live = self.rows("video")
            return len(live) == 1 and live[0]["status"] == "active"

        self.run_cycles_until(video_at_min, timeout=30, what="the video pool back to its MIN 1")
        self.assertEqual([t["status"] for t in self.tasks_of("image")], ["In Progress"] * 2,
                         "the video pool drained while the image pool was still busy")
        self.assertEqual(len([r for r in self.rows("image") if r["status"] == "active"]), 2)

        # -- the image pool drains back to its MIN of 0 ---------------------------------------
        self.run_cycles_until(lambda: {t["status"] for t in self.tasks_of("image")} ==
                              {"Complete"} and self.rows("image") == [], timeout=45,
                              what="image tasks Complete and the image pool back to 0")

        def steady(res):
            v, i = self.pool(res, "video"), self.pool(res, "image")
            self.assertEqual((v["active"], v["desired"], v["to_spawn"]), (1, 1, 0),
                             res.describe())
            self.assertEqual((i["active"], i["desired"], i["to_spawn"]), (0, 0, 0),
                             res.describe())
            self.assertEqual(res.action("workers_terminated"), 0, res.describe())

        self.run_cycles_for(2, pause=0.5, check_each=steady)
        self.assertEqual((len(self.creates_of(VIDEO_IMAGE)), len(self.creates_of(IMAGE_IMAGE))),
                         (3, 2), "no spawn beyond each pool's desired")

        # -- the per-pool counters of the textfile, kept across the `single` runs -------------
        m = self.metrics()
        created = {p: sum(v for k, v in m.items() if k.startswith(
            "gpu_orchestrator_pods_created_total{") and 'pool="%s"' % p in k)
            for p in ("video", "image")}
        drained = {p: m.get('gpu_orchestrator_pods_terminated_total{reason="drained",'
                            'pool="%s"}' % p) for p in ("video", "image")}
        self.assertEqual(created, {"video": 3, "image": 2}, m)
        self.assertEqual(drained, {"video": 2, "image": 2}, m)
        self.assertEqual(m['gpu_orchestrator_workers{state="active",pool="video"}'], 1)
        self.assertEqual(m['gpu_orchestrator_workers{state="active",pool="image"}'], 0)
        self.assertEqual(m['gpu_orchestrator_workers_desired{pool="video"}'], 1)
        e2e_lib.note("pools: two pools scaled independently: video up to 3 (%s, %s) and back "
                     "to MIN 1, image up to 2 (%s, %s) and back to MIN 0; pods_created_total by "
                     "pool %s, pods_terminated_total{drained} by pool %s"
                     % (VIDEO_GPU, VIDEO_IMAGE, IMAGE_GPU, IMAGE_IMAGE, created, drained))
        self.invariants("two pools", max_active=5)

    # -- 2 ---------------------------------------------------------------------------------------

    def test_crash_looping_image_opens_only_its_pools_breaker(self):
        self.config.update(two_pools(
            MAX_ACTIVE_GPUS="4",
            POOL_VIDEO_WORKER_IMAGE=BROKEN_VIDEO_IMAGE, POOL_VIDEO_MIN_ACTIVE_GPUS="0",
            POOL_VIDEO_MAX_ACTIVE_GPUS="2", POOL_VIDEO_TASKS_PER_GPU_THRESHOLD="1",
            POOL_IMAGE_MIN_ACTIVE_GPUS="1", GPU_IDLE_TIMEOUT_SEC="4",
            MIN_WORKERS_FOR_RATE_CHECK="3", MAX_WORKER_FAILURE_RATE="0.5",
            FAILURE_WINDOW_MINUTES="5", SPAWNING_TIMEOUT_SEC="20", RECONCILE_INTERVAL_SEC="1",
            ORPHAN_POD_GRACE_SEC="3"))
        self.start_fake(boot_worker=False, extra_args=["--boot-cmd", CRASHLOOP_BOOT])
        video = [self.db.insert_task("generate", {"duration_sec": 0.5, "n": i},
                                     run_type="video") for i in range(4)]
        image = [self.db.insert_task("render", {"duration_sec": 0.5, "n": i},
                                     run_type="image") for i in range(2)]

        def video_breaker_open():
            return self.pool(self.results[-1], "video")["breaker_open"]

        before = self.run_cycles_until(video_breaker_open, timeout=60, pause=0.25,
                                       what="the video pool's breaker open", ok_codes=(0, 6))
        opened = before[-1]
        self.assertEqual(self.pool(opened, "video")["spawn_limit"], "circuit_breaker",
                         opened.describe())
        self.assertFalse(self.pool(opened, "image")["breaker_open"], opened.describe())

        # The image pool keeps serving: a second wave of image tasks completes too.
        image += [self.db.insert_task("render", {"duration_sec": 0.5, "n": 10 + i},
                                      run_type="image") for i in range(2)]

        def image_done():
            return {t["status"] for t in self.tasks_of("image")} == {"Complete"}

        after = self.run_cycles_until(image_done, timeout=40, pause=0.25, ok_codes=(0, 6),
                                      what="every image task Complete, video breaker open")
        after += self.run_cycles_for(2, pause=0.25, ok_codes=(0, 6))
        for res in after:
            v, i = self.pool(res, "video"), self.pool(res, "image")
            self.assertTrue(v["breaker_open"], res.describe())
            self.assertEqual(v["to_spawn"], 0, res.describe())
            self.assertFalse(i["breaker_open"], res.describe())
            self.assertNotEqual(i["spawn_limit"], "circuit_breaker", res.describe())
        video_spawned_after = [o for r in after for o in r.summary.get("outcomes", [])
                               if o["action"] == "spawn_worker" and o.get("pool") == "video"]
        self.assertEqual(video_spawned_after, [], "the video pool spawned with its breaker open")

        video_creates = self.creates_of(BROKEN_VIDEO_IMAGE)
        image_creates = self.creates_of(IMAGE_IMAGE)
        bound = 3 + 2 - 1  # MIN_WORKERS_FOR_RATE_CHECK + the video pool's MAX - 1
        self.assertLessEqual(len(video_creates), bound)
        self.assertGreaterEqual(len(video_creates), 3)
        for req in video_creates:
            self.assert_create(req, "video", BROKEN_VIDEO_IMAGE, VIDEO_GPU)
        for req in image_creates:
            self.assert_create(req, "image", IMAGE_IMAGE, IMAGE_GPU)
        self.assertEqual([(t["status"], t["attempts"]) for t in self.tasks_of("video")],
                         [("Queued", 0)] * 4, "no video task was charged for crashed workers")
        failed = self.db.query("SELECT pool, end_kind, count(*) AS n FROM workers "
                               "WHERE end_kind = 'unexpected' GROUP BY 1, 2")
        self.assertEqual([(f["pool"], f["end_kind"]) for f in failed], [("video", "unexpected")],
                         "only video workers failed")

        m = self.metrics()
        self.assertEqual(m['gpu_orchestrator_breaker_open{pool="video"}'], 1, m)
        self.assertEqual(m['gpu_orchestrator_breaker_open{pool="image"}'], 0, m)
        self.assertEqual(
            m['gpu_orchestrator_spawn_limited{reason="circuit_breaker",pool="video"}'], 1, m)
        st = self.run_binary("status")
        self.assertEqual(st.rc, 0, st.stderr)
        self.assertRegex(st.stdout, r"(?m)^video +.* OPEN +circuit_breaker$")
        self.assertRegex(st.stdout, r"(?m)^image +.* closed ")
        e2e_lib.note("pools: crash-looping image in pool video: %d video pods created (bound %d),"
                     " breaker open after %d cycles, 0 video spawns in the %d cycles after; "
                     "pool image created %d pods and completed %d tasks meanwhile"
                     % (len(video_creates), bound, len(before), len(after), len(image_creates),
                        len(image)))
        self.invariants("crash-looping image in one pool", max_active=4)

    # -- 3 ---------------------------------------------------------------------------------------

    def test_unserved_run_types_are_reported_and_spawn_routes_by_pool(self):
        self.config.update(two_pools(POOL_VIDEO_MIN_ACTIVE_GPUS="0"))
        self.start_fake(boot_worker=False)
        sub = self.run_binary("submit", "--type", "speak", "--run-type", "audio")
        self.assertEqual(sub.rc, 0, sub.stderr)
        self.assertIn("warning: no pool serves run_type 'audio'", sub.stderr)
        for n in range(2):
            self.db.insert_task("speak", {"n": n}, run_type="audio")
        self.db.insert_task("transcribe", {}, run_type="speech")

        res = self.cycle()
        self.assertEqual(res.summary["unserved"], {"queued": 4, "run_types": ["audio", "speech"]},
                         res.describe())
        warned = res.events_named("tasks.unserved")
        self.assertEqual(len(warned), 1, "one tasks.unserved warning per cycle: %s" % warned)
        self.assertEqual(res.action("workers_spawned"), 0, "no pool spawns for unserved work")

        st = self.run_binary("status")
        self.assertEqual(st.rc, 0, st.stderr)
        self.assertRegex(st.stdout,
                         r"(?m)^unserved 4 queued, no pool serves: audio 3, speech 1$")
        js = json.loads(self.run_binary("status", "--json").stdout)
        self.assertEqual(js["unserved"], {"queued": 4, "run_types": [
            {"run_type": "audio", "queued": 3}, {"run_type": "speech", "queued": 1}]})
        m = self.metrics()
        self.assertEqual((m.get('gpu_orchestrator_tasks_unserved{run_type="audio"}'),
                          m.get('gpu_orchestrator_tasks_unserved{run_type="speech"}')), (3, 1), m)

        # spawn routes by pool; an unknown pool, or none named with two pools, exits 2.
        sp = self.run_binary("spawn", "--pool", "image", "--count", "1")
        self.assertEqual(sp.rc, 0, sp.stderr)
        self.assertEqual([(self.pool(sp, p)["to_spawn"]) for p in ("video", "image")], [0, 1])
        self.assertEqual(len(self.creates()), 1)
        self.assert_create(self.creates()[0], "image", IMAGE_IMAGE, IMAGE_GPU)
        bad = self.run_binary("spawn", "--pool", "audio")
        self.assertEqual(bad.rc, 2, bad.stderr)
        self.assertIn("no pool is named 'audio' (POOLS: video, image)", bad.stderr)
        none = self.run_binary("spawn")
        self.assertEqual(none.rc, 2, none.stderr)
        self.assertIn("name the one to spawn into with --pool NAME", none.stderr)
        self.assertEqual(len(self.creates()), 1, "a refused spawn created nothing")
        self.assertEqual({t["status"] for t in self.tasks_of("audio")}, {"Queued"})
        e2e_lib.note("pools: unserved run types audio 3, speech 1 in the summary, status, status "
                     "--json and tasks_unserved{run_type}; spawn --pool image created 1 pod, "
                     "--pool audio and no --pool exited 2")
        self.invariants("unserved run types", max_active=5)


if __name__ == "__main__":
    unittest.main()
