// supabase_client.test.mjs: @supabase/supabase-js, the real client, against `orchestrator gateway`.
// Run by test_supabase_js.py (node --test) with the gateway, a worker and its tasks prepared:
//   GATEWAY_URL, WORKER_ID, WORKER_TOKEN, OTHER_TASK_ID (held by another worker), RUN_TYPE,
//   ORCH_NPM_DIR (where tests/gateway/run.sh installed the pinned packages).
// The client is made exactly as a worker would (the pod's token as the key), then every route:
// supabase.rpc('func_worker_heartbeat_with_logs') and supabase.functions.invoke() of each edge
// function, plus a plain PUT of a file to its signed upload URL and a GET of it back.
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { test } from 'node:test';

const require = createRequire(process.env.ORCH_NPM_DIR + '/');
const { createClient, FunctionsHttpError } = require('@supabase/supabase-js');

const url = process.env.GATEWAY_URL;
const workerId = process.env.WORKER_ID;
const token = process.env.WORKER_TOKEN;
const runType = process.env.RUN_TYPE;
// Realtime (websockets) is never used by a worker; Node 20 has no WebSocket of its own, so the
// client gets an inert transport instead of an extra package.
class NoWebSocket {}
const options = { auth: { persistSession: false, autoRefreshToken: false },
                  realtime: { transport: NoWebSocket } };
const supabase = createClient(url, token, options);
const invoke = (name, body) => supabase.functions.invoke(name, { body });
const claimed = [];

test('rpc func_worker_heartbeat_with_logs', async () => {
  const { data, error } = await supabase.rpc('func_worker_heartbeat_with_logs', {
    worker_id_param: workerId,
    vram_total_mb_param: 24564,
    vram_used_mb_param: 512,
    logs_param: [{ timestamp: new Date().toISOString(), level: 'INFO', message: 'from supabase-js',
                   task_id: null, metadata: { client: 'supabase-js' } }],
    status_param: 'active',
  });
  assert.equal(error, null);
  assert.equal(data.success, true);
  assert.equal(data.logs_inserted, 1);
});

test('functions.invoke task-counts', async () => {
  const { data, error } = await invoke('task-counts', { run_type: runType, include_active: true });
  assert.equal(error, null);
  assert.deepEqual(data.totals, { queued_only: 3, eligible_queued: 3, active_only: 0,
                                  queued_plus_active: 3 });
});

test('functions.invoke claim-next-task (200 three times, then 204)', async () => {
  for (let i = 0; i < 3; i++) {
    const { data, error } = await invoke('claim-next-task', { worker_id: workerId, run_type: runType });
    assert.equal(error, null);
    assert.match(data.task_id, /^[0-9a-f-]{36}$/);
    assert.equal(typeof data.params, 'object');
    assert.equal(data.task_type, 'wan_2_2_t2i');
    claimed.push(data.task_id);
  }
  const { data, error } = await invoke('claim-next-task', { worker_id: workerId, run_type: runType });
  assert.equal(error, null);
  assert.ok(data === null || data === '' , `204 has no task: ${JSON.stringify(data)}`);
});

test('functions.invoke update-task-status In Progress (reset_generation_started_at)', async () => {
  const { data, error } = await invoke('update-task-status', {
    task_id: claimed[0], status: 'In Progress', reset_generation_started_at: true });
  assert.equal(error, null);
  assert.equal(data.success, true);
  assert.equal(data.status, 'In Progress');
});

test('generate-upload-url, plain PUT and GET, complete_task with storage_path', async () => {
  const { data: urls, error } = await invoke('generate-upload-url', {
    task_id: claimed[0], filename: 'clip.mp4', content_type: 'video/mp4',
    generate_thumbnail_url: true });
  assert.equal(error, null);
  assert.ok(urls.upload_url.startsWith(url + '/storage/v1/object/upload/sign/image_uploads/'));
  const bytes = new Uint8Array(2.5 * 1024 * 1024).map((_, i) => (i * 7) & 0xff);
  const put = await fetch(urls.upload_url, { method: 'PUT', body: bytes,
                                             headers: { 'Content-Type': 'video/mp4' } });
  assert.equal(put.status, 200);
  const thumb = await fetch(urls.thumbnail_upload_url, { method: 'PUT', body: 'jpeg',
                                                         headers: { 'Content-Type': 'image/jpeg' } });
  assert.equal(thumb.status, 200);
  const { data, error: err2 } = await invoke('complete_task', {
    task_id: claimed[0], storage_path: urls.storage_path,
    thumbnail_storage_path: urls.thumbnail_storage_path });
  assert.equal(err2, null);
  assert.equal(data.success, true);
  assert.equal(data.public_url, `${url}/storage/v1/object/public/image_uploads/${urls.storage_path}`);
  const got = await fetch(data.public_url);
  assert.equal(got.status, 200);
  assert.equal(got.headers.get('content-type'), 'video/mp4');
  assert.deepEqual(new Uint8Array(await got.arrayBuffer()), bytes);
  assert.ok(data.thumbnail_url.endsWith('thumb_clip.jpg'));
});

test('functions.invoke update-task-status Failed', async () => {
  const { data, error } = await invoke('update-task-status', {
    task_id: claimed[1], status: 'Failed', output_location: 'CUDA error: out of memory' });
  assert.equal(error, null);
  assert.equal(data.success, true);
  assert.equal(data.status, 'Queued');
});

test('functions.invoke complete_task with base64 file_data', async () => {
  const { data, error } = await invoke('complete_task', {
    task_id: claimed[2], file_data: Buffer.from('tiny image').toString('base64'),
    filename: 'image.png' });
  assert.equal(error, null);
  assert.equal(data.success, true);
  const got = await fetch(data.public_url);
  assert.equal(await got.text(), 'tiny image');
  assert.equal(data.thumbnail_url, null);
});

test('refusals surface as FunctionsHttpError with the status', async () => {
  const { data, error } = await invoke('update-task-status', {
    task_id: process.env.OTHER_TASK_ID, status: 'Failed', output_location: 'x' });
  assert.equal(data, null);
  assert.ok(error instanceof FunctionsHttpError);
  assert.equal(error.context.status, 403);
  const body = await error.context.json();
  assert.equal(body.error, 'forbidden');
  const bad = createClient(url, token.slice(0, -4) + 'AAAA', options);
  const r = await bad.rpc('func_worker_heartbeat_with_logs', { worker_id_param: workerId });
  assert.notEqual(r.error, null);
  assert.equal(r.status, 401);
});
