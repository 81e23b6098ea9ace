"""test_supabase_js.py: the gateway driven by @supabase/supabase-js (supabase_client.test.mjs,
run with `node --test`), then the database checked for what the client did."""

import os
import subprocess
import unittest

from gw_lib import GatewayTestCase

HERE = os.path.dirname(os.path.abspath(__file__))


class TestSupabaseJs(GatewayTestCase):

    def test_supabase_js_client(self):
        npm_dir = os.environ.get("ORCH_NPM_DIR", "")
        self.assertTrue(os.path.isdir(os.path.join(npm_dir, "node_modules", "@supabase",
                                                   "supabase-js")),
                        "@supabase/supabase-js is not installed in ORCH_NPM_DIR=%r (run "
                        "through tests/gateway/run.sh)" % npm_dir)
        wid, tok = self.new_worker("active")
        other, _ = self.new_worker("active")
        other_task = self.held_task(other)
        rt = "sbjs-%d" % os.getpid()
        tasks = [self.new_task(run_type=rt, task_type="wan_2_2_t2i", params={"n": i})
                 for i in range(3)]
        env = dict(os.environ, GATEWAY_URL=self.gw.base_url, WORKER_ID=wid, WORKER_TOKEN=tok,
                   OTHER_TASK_ID=other_task, RUN_TYPE=rt, ORCH_NPM_DIR=npm_dir)
        p = subprocess.run(["node", "--test", "--test-reporter=tap",
                            os.path.join(HERE, "supabase_client.test.mjs")],
                           env=env, capture_output=True, text=True, timeout=120)
        print(p.stdout[-4000:])
        self.assertEqual(p.returncode, 0, "node --test failed:\n%s\n%s"
                         % (p.stdout[-6000:], p.stderr[-3000:]))
        self.assertIn("# pass 8", p.stdout)
        self.assertIn("# fail 0", p.stdout)
        # What the client did, as the database saw it.
        rows = {r["id"]: r for r in self.db.query(
            "SELECT id::text, status::text, attempts, error_message, output_location, "
            "generation_started_at FROM tasks WHERE run_type = %s", (rt,))}
        st = sorted((r["status"], r["attempts"]) for r in rows.values())
        self.assertEqual(st, [("Complete", 0), ("Complete", 0), ("Queued", 1)])
        failed = [r for r in rows.values() if r["status"] == "Queued"][0]
        self.assertEqual(failed["error_message"], "CUDA error: out of memory")
        for r in rows.values():
            if r["status"] == "Complete":
                self.assertTrue(r["output_location"].startswith(
                    self.gw.base_url + "/storage/v1/object/public/image_uploads/system/tasks/"
                    + r["id"] + "/"), r)
        self.assertEqual(set(rows), set(tasks))
        self.assertEqual(self.db.scalar("SELECT status::text FROM tasks WHERE id = %s",
                                        (other_task,)), "In Progress")
        w = self.db.one("SELECT metadata, last_heartbeat FROM workers WHERE id = %s", (wid,))
        self.assertEqual(w["metadata"]["vram_total_mb"], 24564)
        self.assertEqual(self.db.scalar("SELECT count(*) FROM system_logs WHERE worker_id = %s "
                                        "AND message = 'from supabase-js'", (wid,)), 1)


if __name__ == "__main__":
    unittest.main()
