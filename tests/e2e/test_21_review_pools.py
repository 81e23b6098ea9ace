"""Scenario 21: an independent review of worker pools (issue 14) and the cycle lease (issue 12
item 6), against the real binary, a real PostgreSQL and the RunPod stand-in.

Tests named test_defect_* reproduced a defect and failed on the code under review (each says
which defect, what was observed and what is expected); every one is fixed and they stay as
regression tests. The test_held_* ones are attacks that held.

  defects
    1. a GPU price that changed since it was last seen (gpu_prices holds the old one) lets one
       cycle spawn past MAX_HOURLY_SPEND_USD;
    2. two pools with the same GPU type in different clouds (COMMUNITY and SECURE, priced
       differently by RunPod) share one gpu_prices row, so the dearer pool is bounded by the
       cheaper price and spawns past MAX_HOURLY_SPEND_USD;
    3. more than SNAP_RUN_TYPES_MAX (64) run types with Queued tasks hide a served pool's small
       queue from the snapshot: the pool never scales up, its tasks wait forever;
    4. a cycle paused between its last fence check and the insert of its spawning rows (stopped,
       swapped out, VM frozen) inserts and creates its whole plan after another cycle took the
       lease and filled the fleet: pods above MAX_ACTIVE_GPUS.
    6. with several pools the operator's `spawn` cannot name a pool (no --pool) and without
       one it does nothing and exits 0;
    7. POOL_<NAME>_ENV_* values are not scrubbed from outputs (nor WORKER_ENV_* values past the
       logger's 16-secret table).
  held
    5. a pool removed from POOLS while its workers hold tasks: the tasks finish, nothing is lost
       or held twice, the removed pool's run type is reported unserved, its workers go.
"""

import os
import signal
import subprocess
import textwrap
import time
import unittest

import e2e_lib
from e2e_lib import SafetyTestCase, note, wait_until

GPU = "NVIDIA GeForce RTX 4090"

# An LD_PRELOAD shim: the first PQexecParams whose statement contains $ORCH_REVIEW_STOP_ON stops
# the whole process (SIGSTOP) just before the statement is sent -- a process frozen at exactly
# that point (a VM pause, a cgroup freeze, swap), resumed later by the test with SIGCONT.
SHIM_C = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
typedef struct pg_conn PGconn;
typedef struct pg_result PGresult;
typedef unsigned int Oid;
typedef PGresult *(*fn_t)(PGconn *, const char *, int, const Oid *, const char *const *,
                          const int *, const int *, int);
static int done;
PGresult *PQexecParams(PGconn *conn, const char *command, int nParams, const Oid *paramTypes,
                       const char *const *paramValues, const int *paramLengths,
                       const int *paramFormats, int resultFormat)
{
    static fn_t real;
    if (!real)
        real = (fn_t)dlsym(RTLD_NEXT, "PQexecParams");
    const char *on = getenv("ORCH_REVIEW_STOP_ON");
    if (on && *on && !done && command && strstr(command, on)) {
        done = 1;
        raise(SIGSTOP);
    }
    return real(conn, command, nParams, paramTypes, paramValues, paramLengths, paramFormats,
                resultFormat);
}
"""


def live_cost(db):
    return float(db.scalar("SELECT coalesce(sum(cost_per_hr), 0) FROM workers "
                           "WHERE status <> 'terminated'"))


def proc_state(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "?"


class ReviewPools(SafetyTestCase):

    def setUp(self):
        super().setUp()
        self.config.update({
            "MIN_ACTIVE_GPUS": "0",
            "TASKS_PER_GPU_THRESHOLD": "1",
            "SPAWNING_TIMEOUT_SEC": "300",
            "SPAWN_POD_ID_GRACE_SEC": "300",
            "POD_NOT_FOUND_GRACE_SEC": "300",
            "RECONCILE_INTERVAL_SEC": "3600",
        })

    def set_costs(self, costs):
        status, body = self.fake.http("POST", "/_fake/config", {"gpu_costs": costs})
        self.assertEqual(status, 200, body)

    # -- 1. stale price --------------------------------------------------------------------------

    def test_defect_stale_gpu_price_overshoots_spend_cap(self):
        """DEFECT 1 (money). planner_scale.c price_bound() bounds a new pod by gpu_prices, the
        price RunPod charged the last time this system created a pod of the type. RunPod's
        prices move (community/spot prices, list price changes); when the type got dearer, one
        cycle spawns floor((cap - fleet) / old price) pods at the new price.
        Observed: cap $10/h, old price $1/h, new price $4/h: 9 pods spawned, fleet $37/h.
        Expected: no spawn pushes the fleet's cost above MAX_HOURLY_SPEND_USD (SPEC section 3)."""
        self.config.update({"MAX_ACTIVE_GPUS": "20", "MAX_HOURLY_SPEND_USD": "10"})
        self.start_fake(boot_worker=False)
        self.set_costs({GPU: 1.0})
        self.db.insert_task("generate", {"n": 0})
        first = self.cycle(ok_codes=(0, 6))
        self.assertEqual(first.action("workers_spawned"), 1, first.describe())
        self.assertEqual(float(self.db.scalar("SELECT cost_per_hr FROM gpu_prices "
                                              "WHERE gpu_type = %s", (GPU,))), 1.0)
        self.set_costs({GPU: 4.0})  # RunPod's price for the type moved
        for i in range(10):
            self.db.insert_task("generate", {"n": i + 1})
        second = self.cycle(ok_codes=(0, 6))
        cost = live_cost(self.db)
        note("review: [stale price] cap $10/h, gpu_prices $1/h, RunPod now $4/h: second cycle "
             "spawned %d, fleet $%.2f/h" % (second.action("workers_spawned"), cost))
        self.assertLessEqual(cost, 10.0 + 1e-6,
                             "fleet cost $%.2f/h above MAX_HOURLY_SPEND_USD=10 after one cycle "
                             "(spawned %d)" % (cost, second.action("workers_spawned")))

    # -- 2. one GPU type, two clouds -------------------------------------------------------------

    def test_defect_same_gpu_two_clouds_share_one_price(self):
        """DEFECT 2 (money, pools). gpu_prices is keyed by GPU type only (0009_gpu_prices.sql,
        db.c record_price), but RunPod prices a type per cloud: COMMUNITY is roughly half of
        SECURE. POOL_<NAME>_CLOUD_TYPE lets pools differ exactly there, so the SECURE pool is
        bounded by the COMMUNITY price.
        Observed: cap $10/h; batch (COMMUNITY, $0.50) ran first; live (SECURE, $2.00) then
        spawned 8 pods: fleet $16.50/h.
        Expected: the price of a pod is known per (GPU type, cloud) or the unknown-price rule
        applies; the fleet stays at or below $10/h."""
        self.config.update({
            "MAX_ACTIVE_GPUS": "20", "MAX_HOURLY_SPEND_USD": "10",
            "POOLS": "batch,live",
            "POOL_BATCH_CLOUD_TYPE": "COMMUNITY", "POOL_LIVE_CLOUD_TYPE": "SECURE",
            "POOL_BATCH_GPU_TYPES": GPU, "POOL_LIVE_GPU_TYPES": GPU,
        })
        self.start_fake(boot_worker=False)
        self.set_costs({GPU + "@COMMUNITY": 0.5, GPU + "@SECURE": 2.0})
        self.db.insert_task("generate", {"n": 0}, run_type="batch")
        first = self.cycle(ok_codes=(0, 6))
        self.assertEqual(first.action("workers_spawned"), 1, first.describe())
        for i in range(8):
            self.db.insert_task("generate", {"n": i}, run_type="live")
        second = self.cycle(ok_codes=(0, 6))
        by_pool = self.db.query("SELECT pool, count(*) AS n, sum(cost_per_hr) AS usd FROM workers "
                                "WHERE status <> 'terminated' GROUP BY pool ORDER BY pool")
        cost = live_cost(self.db)
        note("review: [two clouds] cap $10/h, batch COMMUNITY $0.50 then live SECURE $2.00: "
             "second cycle spawned %d, fleet $%.2f/h, by pool %s"
             % (second.action("workers_spawned"), cost,
                [(r["pool"], r["n"], float(r["usd"])) for r in by_pool]))
        self.assertLessEqual(cost, 10.0 + 1e-6,
                             "fleet cost $%.2f/h above MAX_HOURLY_SPEND_USD=10" % cost)

    # -- 3. run-type flood -------------------------------------------------------------------------

    def test_defect_many_run_types_hide_a_served_pool(self):
        """DEFECT 3 (tasks never served; pool starved forever). db_snapshot.c SQL_SNAPSHOT_DEMAND
        keeps the SNAP_RUN_TYPES_MAX (64) run types with the most Queued tasks and drops the rest
        before the planner maps run types to pools. Run types are free text written by whoever
        submits tasks; 70 unserved ones with 2 tasks each push the served `render` queue (1 task)
        out of the snapshot. Only a log warning says so.
        Observed: no spawn, cycle after cycle; status shows 0 queued for pool render.
        Expected: the served run types are always counted (filter or order by the configured
        run types in SQL and aggregate the rest as unserved)."""
        self.config.update({"MAX_ACTIVE_GPUS": "4", "POOLS": "render"})
        self.start_fake(boot_worker=False)
        self.db.execute("INSERT INTO tasks (task_type, run_type) SELECT 'junk', 'other_' || g "
                        "FROM generate_series(1, 70) g, generate_series(1, 2)")
        task = self.db.insert_task("generate", {"n": 0}, run_type="render")
        results = [self.cycle(ok_codes=(0, 6)) for _ in range(3)]
        spawned = sum(r.action("workers_spawned") for r in results)
        warned = self.all_events("snapshot.run_types_truncated", results)
        pools = results[-1].summary.get("pools") or []
        note("review: [run-type flood] 70 unserved run types x 2 tasks + 1 render task: spawned "
             "%d in 3 cycles, truncation warnings %d, render task %s, pools %s, unserved %s"
             % (spawned, len(warned), self.db.task(task)["status"],
                [(p.get("pool"), p.get("queued")) for p in pools],
                (results[-1].summary.get("unserved") or {}).get("queued")))
        self.assertGreaterEqual(spawned, 1, "pool render never scaled up for its queued task")

    def test_defect_many_run_types_hide_gpu_without_pools(self):
        """DEFECT 3, backward compatibility: the same with POOLS unset. Before issue 14 the
        snapshot counted run_type 'gpu' only, so other kinds of task could not hide it; now a
        deployment that never configured pools stops scaling for its gpu tasks as soon as 64
        other run types each have more Queued tasks."""
        self.config.update({"MAX_ACTIVE_GPUS": "4"})
        self.start_fake(boot_worker=False)
        self.db.execute("INSERT INTO tasks (task_type, run_type) SELECT 'junk', 'other_' || g "
                        "FROM generate_series(1, 64) g, generate_series(1, 2)")
        self.db.insert_task("generate", {"n": 0})  # run_type gpu
        res = self.cycle(ok_codes=(0, 6))
        note("review: [run-type flood, POOLS unset] 64 other run types x 2 + 1 gpu task: "
             "spawned %d, exit %d" % (res.action("workers_spawned"), res.rc))
        self.assertEqual(res.action("workers_spawned"), 1,
                         "the default pool did not scale up for its gpu task")

    # -- 4. paused between the fence and the spawn inserts ----------------------------------------

    def build_shim(self):
        src = os.path.join(self.log_dir, "stop_shim.c")
        lib = os.path.join(self.log_dir, "stop_shim.so")
        with open(src, "w") as f:
            f.write(textwrap.dedent(SHIM_C))
        cc = subprocess.run(["cc", "-shared", "-fPIC", "-O1", "-o", lib, src, "-ldl"],
                            capture_output=True, text=True)
        self.assertEqual(cc.returncode, 0, "cannot build the LD_PRELOAD shim: %s" % cc.stderr)
        return lib

    def test_defect_paused_after_fence_spawns_past_max(self):
        """DEFECT 4 (pods above MAX, two cycles acting at once). actuator.c actuator_apply checks
        the fence once (fenced()) before apply_spawns, which then inserts every spawning row and
        creates every pod with no further check; db_insert_spawning_worker's INSERT does not
        carry the fence. A process frozen between that check and the inserts for longer than
        CYCLE_LEASE_TTL_SEC resumes after another cycle took the lease, saw none of its rows and
        filled the fleet, and then inserts and creates its whole plan. safety.md bounds this
        window to "that one call"; here it is the whole spawn batch.
        Observed: MAX_ACTIVE_GPUS=4, 4 queued tasks: 8 pods created, fake max_pods_alive=8.
        Expected: the spawning-row insert is conditional on the lease in the same statement
        (INSERT ... SELECT ... WHERE EXISTS (lease row: our holder and fence, expires_at >
        now())), so a cycle that lost its lease inserts and creates nothing."""
        self.config.update({"MAX_ACTIVE_GPUS": "4", "CYCLE_LEASE_TTL_SEC": "3"})
        shim = self.build_shim()
        fake = self.start_fake(boot_worker=False)
        for i in range(4):
            self.db.insert_task("generate", {"n": i})
        asan = os.environ.get("ASAN_OPTIONS", "")
        h = self.spawn_binary("single", env_overrides={
            "LD_PRELOAD": shim, "ORCH_REVIEW_STOP_ON": "INSERT INTO workers",
            "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0"})
        pid = h[0].pid
        try:
            self.assertTrue(wait_until(lambda: proc_state(pid) == "T", 30),
                            "the cycle never reached its first spawning-row insert")
            self.assertEqual(self.db.scalar("SELECT count(*) FROM workers"), 0)
            self.assertTrue(wait_until(
                lambda: self.db.scalar("SELECT expires_at < now() FROM orchestrator_lease"),
                15), "the frozen cycle's lease never expired")
            other = self.cycle(ok_codes=(0, 6))
            self.assertFalse(other.skipped_locked, other.describe())
            self.assertEqual(other.action("workers_spawned"), 4, other.describe())
        finally:
            os.kill(pid, signal.SIGCONT)
        res = self.finish_binary(h)
        creates = len(self.creates())
        stats = fake.stats()
        rows = self.db.scalar("SELECT count(*) FROM workers WHERE status <> 'terminated'")
        note("review: [frozen after the fence] MAX 4: the other cycle spawned 4; the resumed "
             "cycle exited %s (%s), spawned %d; creates=%d live rows=%d max_pods_alive=%s"
             % (res.rc, (res.summary or {}).get("result"), res.action("workers_spawned"),
                creates, rows, stats.get("max_pods_alive")))
        self.assertLessEqual(stats["max_pods_alive"], 4,
                             "%d pods alive at once for MAX_ACTIVE_GPUS=4 (a cycle that had "
                             "lost its lease spawned %d)" % (stats["max_pods_alive"],
                                                            res.action("workers_spawned")))

    # -- 6. the operator's spawn with pools -------------------------------------------------------

    def test_defect_operator_spawn_with_pools_silently_does_nothing(self):
        """DEFECT 6 (operator). Issue 14 asks for `spawn --pool NAME --count N`; cmd_spawn
        (src/cli/commands.c) knows no --pool, and with several pools `spawn --count N` plans
        nothing (planner_manual: MANUAL_RESULT_NO_POOL) while run_cycle ignores that result.
        Observed: `spawn --count 1` with POOLS=video,image exits 0, result ok, spawns nothing and
        prints no message; `spawn --pool image --count 1` exits 2 "unknown argument".
        Expected: `spawn --pool image --count 1` spawns one image worker; without --pool and
        several pools, exit 2 naming the pools (like `terminate` with an unknown id)."""
        self.config.update({"MAX_ACTIVE_GPUS": "4", "POOLS": "video,image"})
        self.start_fake(boot_worker=False)
        bare = self.run_binary("spawn", "--count", "1")
        named = self.run_binary("spawn", "--pool", "image", "--count", "1")
        note("review: [spawn with pools] `spawn --count 1`: exit %s, spawned %s, stderr %r; "
             "`spawn --pool image --count 1`: exit %s, stderr %r"
             % (bare.rc, bare.action("workers_spawned") if bare.summary else None,
                [l for l in bare.stderr.splitlines() if "INFO" not in l][-1:],
                named.rc, named.stderr.strip()[-120:]))
        self.assertEqual(named.rc, 0, "spawn --pool is not accepted: %s" % named.stderr[-300:])
        self.assertEqual(self.db.scalar("SELECT count(*) FROM workers WHERE pool = 'image'"), 1)
        self.assertNotEqual(bare.rc, 0, "spawn without --pool with two pools did nothing and "
                            "exited 0")

    # -- 7. pool environment values are secrets too -----------------------------------------------

    def test_defect_pool_env_values_not_scrubbed(self):
        """DEFECT 7 (secrets). register_secrets (src/cli/commands.c) registers every
        WORKER_ENV_* value with the log scrubber but no POOL_<NAME>_ENV_* value, although both
        reach the pod the same way and `config` shows both as ***set***. RunPod's problem detail
        can echo what it was sent (issue 12.7); a pool's token then lands in stderr, the summary,
        the journal and the failed row's error_reason.
        Also: log.c keeps at most LOG_SECRETS_MAX (16) secrets and drops the rest silently, so
        the 14th and later WORKER_ENV_* values are not scrubbed either (shown with 15).
        Expected: every POOL_<NAME>_ENV_* and every WORKER_ENV_* value is scrubbed."""
        pool_secret = "hf-POOLSECRET-9431"
        late_secret = "tok-LATESECRET-5512"
        self.config.update({"MAX_ACTIVE_GPUS": "2", "POOLS": "video",
                            "POOL_VIDEO_ENV_HF_TOKEN": pool_secret})
        for i in range(15):
            self.config["WORKER_ENV_FILLER_%02d" % i] = "filler-value-%02d" % i
        self.config["WORKER_ENV_ZZ_LATE_TOKEN"] = late_secret
        fake = self.start_fake(boot_worker=False)
        fake.set_faults(rules=[{"method": "POST", "path": "/v2/pods", "status": 422, "count": -1,
                                "detail": "rejected env HF_TOKEN=%s ZZ_LATE_TOKEN=%s"
                                % (pool_secret, late_secret)}])
        self.db.insert_task("generate", {"n": 0}, run_type="video")
        res = self.cycle(ok_codes=(0, 6))
        journal = str(self.db.query("SELECT outcomes::text, errors::text FROM orchestrator_cycles"))
        rows = str(self.db.query("SELECT metadata::text FROM workers"))
        outputs = {"stdout": res.stdout, "stderr": res.stderr, "journal": journal,
                   "workers": rows}
        leaks = sorted("%s in %s" % (name, where) for where, text in outputs.items()
                       for name, sec in (("POOL_VIDEO_ENV_HF_TOKEN", pool_secret),
                                         ("WORKER_ENV_ZZ_LATE_TOKEN", late_secret))
                       if sec in text)
        note("review: [pool env secret] RunPod echoed both values in a 422: unscrubbed %s"
             % leaks)
        self.assertEqual(leaks, [], "secret values reached outputs unscrubbed")

    # -- 5. held: a pool removed while its workers hold tasks -------------------------------------

    def test_held_pool_removed_while_holding_tasks(self):
        self.config.update({"MAX_ACTIVE_GPUS": "4", "POOLS": "video,image",
                            "GPU_IDLE_TIMEOUT_SEC": "3"})
        self.start_fake(boot_worker=True)
        held = [self.db.insert_task("generate", {"n": i, "duration_sec": 6}, run_type="image")
                for i in range(2)]
        self.run_cycles_until(
            lambda: self.db.scalar("SELECT count(*) FROM tasks WHERE status = 'In Progress' "
                                   "AND run_type = 'image'") == 2,
            timeout=40, what="image workers hold both image tasks", ok_codes=(0, 6))
        image_workers = {r["id"] for r in self.db.query(
            "SELECT id FROM workers WHERE pool = 'image' AND status <> 'terminated'")}
        # The operator removes the image pool while its workers are busy; a new image task
        # arrives that no pool serves any more.
        self.config["POOLS"] = "video"
        late = self.db.insert_task("generate", {"n": 9}, run_type="image")
        res = self.run_cycles_until(
            lambda: all(self.db.task(t)["status"] == "Complete" for t in held) and
            self.db.scalar("SELECT count(*) FROM workers WHERE pool = 'image' AND status <> "
                           "'terminated'") == 0,
            timeout=60, what="the held tasks complete and the removed pool's workers go",
            ok_codes=(0, 6))
        claims = self.db.query("SELECT new_worker FROM e2e_task_holds WHERE task_id = %s "
                               "AND new_status = 'In Progress'", (late,))
        unserved = (res[-1].summary.get("unserved") or {}).get("queued")
        note("review: [pool removed] held tasks %s, late image task %s (claims %d), image "
             "workers were %d, unserved_queued=%s, worker_pools=%s"
             % ([self.db.task(t)["status"] for t in held], self.db.task(late)["status"],
                len(claims), len(image_workers), unserved,
                self.db.query("SELECT name, run_types FROM worker_pools ORDER BY name")))
        self.assertEqual(claims, [], "a worker of the removed pool claimed a new task")
        self.assertEqual(self.db.task(late)["status"], "Queued")
        self.assertEqual(unserved, 1, "the late image task is reported unserved")
        self.invariants("review pool removed")


if __name__ == "__main__":
    unittest.main()
