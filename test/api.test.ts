// The control plane's HTTP API and agent gateway, against a real server and SQLite file.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import { call as callApi, controlPlane } from './helpers.js';
import type { ModelAnswer, ModelSample } from '../src/contract/api.js';

const cp = await controlPlane();
after(() => cp.close());

const call = (method: string, p: string, body?: string, token: string | null = cp.adminToken) => callApi(cp, method, p, { body, token });

test('tokens are written to the data dir, owner-only', () => {
  for (const f of ['admin.token', 'tls/ca.key', 'tls/server.key']) {
    const st = fs.statSync(path.join(cp.dataDir, f));
    assert.equal(st.mode & 0o077, 0, `${f} must not be readable by others`);
  }
  // no shared join token unless the operator asks for one
  assert.equal(fs.existsSync(path.join(cp.dataDir, 'join.token')), false);
});

test('/healthz is open; /v1 needs the admin token', async () => {
  assert.equal((await call('GET', '/healthz', undefined, null)).status, 200);
  const none = await call('GET', '/v1/nodes', undefined, null);
  assert.equal(none.status, 401);
  assert.equal(none.body.error?.code, 'E_UNAUTHORIZED');
  assert.equal((await call('GET', '/v1/nodes', undefined, 'wrong')).status, 401);
  // the join token is for agents only
  assert.equal((await call('GET', '/v1/nodes', undefined, cp.joinToken)).status, 401);
  assert.equal((await call('GET', '/v1/nodes')).status, 200);
});

test('bad manifests get 4xx with a stable code and the field path, and write nothing', async () => {
  const cases: [string, number, string, string | undefined][] = [
    ['{"name":', 400, 'E_BAD_JSON', undefined],
    ['[1,2]', 400, 'E_INVALID', undefined],
    ['{"name":"Bad Name","image":"x"}', 400, 'E_INVALID', 'name'],
    ['{"name":"a","image":"x","replicas":"many"}', 400, 'E_INVALID', 'replicas'],
    ['{"name":"a","image":"x","bogus":1}', 400, 'E_INVALID', 'bogus'],
    ['{"name":"a","image":"x","ports":[{"name":"http","container":0}]}', 400, 'E_INVALID', 'ports[0].container'],
  ];
  for (const [body, status, code, p] of cases) {
    const r = await call('POST', '/v1/apps', body);
    assert.equal(r.status, status, body);
    assert.equal(r.body.error?.code, code, body);
    if (p !== undefined) assert.equal(r.body.error?.path, p, body);
  }
  assert.deepEqual((await call('GET', '/v1/apps')).body, []);
});

test('an app with no node to run on is E_UNSCHEDULABLE (409) and is not stored', async () => {
  const r = await call('POST', '/v1/apps', JSON.stringify({ name: 'lonely', image: 'x:1' }));
  assert.equal(r.status, 409);
  assert.equal(r.body.error?.code, 'E_UNSCHEDULABLE');
  assert.equal((await call('GET', '/v1/apps/lonely')).status, 404);
});

test('unknown things are 404 with E_NOT_FOUND', async () => {
  for (const p of ['/v1/apps/nope', '/v1/nodes/nope', '/v1/apps/nope/replicas', '/v1/nothing']) {
    const r = await call('GET', p);
    assert.equal(r.status, 404, p);
    assert.equal(r.body.error?.code, 'E_NOT_FOUND', p);
  }
  assert.equal((await call('DELETE', '/v1/apps/nope')).body.error?.code, 'E_NOT_FOUND');
});

test('an agent without a node certificate is refused with 401, even with a valid join token', async () => {
  const ws = new WebSocket(cp.url.replace('http', 'ws') + '/v1/agent/connect', ['outpost.v1'], { ca: cp.caPem!, headers: { authorization: `Bearer ${cp.joinToken}`, 'x-outpost-node': 'n1' } });
  const status = await new Promise<number>((resolve) => {
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.on('open', () => resolve(101));
    ws.on('error', () => {});
  });
  assert.equal(status, 401);
});

test('a long poll on an app answers at its next change, at its wait otherwise, and at once when the server closes', async () => {
  const own = await controlPlane();
  const c = own.client;
  try {
    // no node has joined: an app of 0 replicas is stored, and changing it is a change
    await c.deploy('name: lp\ncommand: ["true"]\nreplicas: 0\n');
    const first = await c.app('lp');
    const quiet0 = Date.now();
    const quiet = await c.app('lp', { after: first.version, waitMs: 300 });
    assert.ok(Date.now() - quiet0 >= 250, 'with nothing changing, the answer waits out waitMs');
    assert.equal(quiet.version, first.version);
    const polled = c.app('lp', { after: first.version, waitMs: 20_000 });
    await new Promise((r) => setTimeout(r, 100));
    await c.deploy({ name: 'lp', command: ['true'], replicas: 0, env: { V: '2' } });
    const changed = await polled;
    assert.notEqual(changed.version, first.version);
    assert.deepEqual(changed.spec.env, { V: '2' }, 'the answer shows the change');
    // a poll still waiting when the server closes is answered, so the close does not wait 30 s
    const pending = c.app('lp', { after: changed.version, waitMs: 30_000 }).then(() => 'answered', (e: Error) => e.message);
    await new Promise((r) => setTimeout(r, 100));
    const closed = await Promise.race([own.close().then(() => 'closed'), new Promise((r) => setTimeout(() => r('stuck'), 10_000))]);
    assert.equal(closed, 'closed');
    assert.equal(await pending, 'answered');
  } finally {
    await own.close().catch(() => {});
  }
});

test('GET /v1/model?samples=N answers the newest N samples, oldest first, and refuses a bad N with E_INVALID at samples', async () => {
  const own = await controlPlane();
  try {
    const sample = (i: number): ModelSample => ({
      replica: `m-0-${i}`, app: 'm', node: 'n1', image: 'x:1', cached: i % 2 === 1, at: 1_000 + i,
      predicted: { imageMs: 100, containerMs: 20, engineMs: 300, deployMs: 420 },
      measured: { imageMs: i % 2 ? 0 : 80, containerMs: 25, engineMs: 330 + i, deployMs: 355 + i + (i % 2 ? 0 : 80) },
    });
    // one commit per sample, as each start is recorded
    for (let i = 0; i < 5; i++) await own.cp.writer.run(() => ({ changes: [], samples: [sample(i)], result: null }));
    const q = (s: string) => callApi(own, 'GET', `/v1/model${s}`, { token: own.adminToken });
    const model = async (s: string) => (await q(s)).body as unknown as ModelAnswer;
    const plain = await model('');
    assert.equal(plain.samples, 5);
    assert.equal('recent' in plain, false, 'without samples the answer is as it was');
    assert.equal('recent' in (await model('?samples=0')), false);
    const two = await model('?samples=2');
    assert.deepEqual(two.recent, [sample(3), sample(4)], 'the newest two, oldest first');
    assert.deepEqual({ ...two, recent: undefined }, { ...plain, recent: undefined }, 'the aggregate does not change');
    assert.equal((await model('?samples=1000')).recent?.length, 5);
    for (const bad of ['x', '-1', '1.5', '1001']) {
      const r = await q(`?samples=${bad}`);
      assert.equal(r.status, 400, bad);
      assert.equal(r.body.error?.code, 'E_INVALID', bad);
      assert.equal(r.body.error?.path, 'samples', bad);
    }
  } finally {
    await own.close();
  }
});
