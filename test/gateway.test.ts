// The agent gateway against raw WebSocket clients: the protocol version
// negotiated at the upgrade, messages validated before anything reads them,
// handshakes admitted at a bounded rate, and assignment sets sent only where
// they changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, type RunningServer } from '../src/server/server.js';
import { silent, tmpDir, waitFor } from './helpers.js';

const nodeInfo = (name: string) => ({ name, hostname: name, arch: 'amd64', cpus: 4, memoryMiB: 8192, labels: {}, site: null, runtime: 'process', address: '127.0.0.1', images: [], layers: [], imageLayers: {}, agentVersion: 't' });

function dial(s: RunningServer, protocols: string[] = ['outpost.v1'], name = 'n1'): WebSocket {
  return new WebSocket(s.url.replace('http', 'ws') + '/v1/agent/connect', protocols, { headers: { authorization: `Bearer ${s.joinToken}`, 'x-outpost-node': name } });
}

function refusal(ws: WebSocket): Promise<{ status: number; headers: Record<string, unknown>; body: { error: { code: string; message: string } } }> {
  return new Promise((resolve, reject) => {
    ws.on('open', () => reject(new Error('the upgrade was accepted')));
    ws.on('error', () => {});
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: JSON.parse(body) }));
    });
  });
}

/** A raw agent: every message it receives, in order. */
async function agent(s: RunningServer, name: string) {
  const ws = dial(s, ['outpost.v1'], name);
  const got: { type: string; [k: string]: unknown }[] = [];
  ws.on('message', (raw) => got.push(JSON.parse(raw.toString())));
  await new Promise((r, j) => { ws.on('open', r); ws.on('error', j); });
  ws.send(JSON.stringify({ type: 'register', node: nodeInfo(name) }));
  await waitFor('the messages', () => got.some((m) => m.type === 'assign'), 5000);
  return { ws, got };
}


test('an agent that offers no protocol major this control plane speaks is refused with E_PROTOCOL', async () => {
  const s = await startServer({ dataDir: tmpDir(), host: '127.0.0.1', port: 0, log: silent });
  try {
    for (const offer of [[], ['outpost.v2']]) {
      const r = await refusal(dial(s, offer));
      assert.equal(r.status, 426);
      assert.equal(r.body.error.code, 'E_PROTOCOL');
      assert.match(r.body.error.message, /outpost\.v1/);
    }
    const ok = dial(s, ['outpost.v2', 'outpost.v1']);
    await new Promise((r, j) => { ok.on('open', r); ok.on('error', j); });
    assert.equal(ok.protocol, 'outpost.v1', 'the one both speak is chosen');
    ok.close();
  } finally {
    await s.close();
  }
});

test('malformed and invalid messages are answered with a code and the bad field; nothing is stored from them', async () => {
  const s = await startServer({ dataDir: tmpDir(), host: '127.0.0.1', port: 0, log: silent });
  try {
    const ws = dial(s);
    const got: { type: string; code?: string; message?: string }[] = [];
    ws.on('message', (raw) => got.push(JSON.parse(raw.toString())));
    await new Promise((r) => ws.on('open', r));
    ws.send(JSON.stringify({ type: 'status', replicas: [] }));
    await waitFor('the messages', () => got.length === 1, 5000);
    assert.equal(got[0]!.code, 'E_PROTOCOL', 'register comes first');
    ws.send(JSON.stringify({ type: 'register', node: { ...nodeInfo('n1'), layers: null } }));
    const closed = await new Promise<number>((r) => ws.on('close', (code) => r(code)));
    assert.equal(closed, 4400);
    assert.equal(got[1]!.code, 'E_INVALID');
    assert.match(got[1]!.message!, /^node\.layers:/);
    assert.equal(s.cp.state.count('nodes'), 0, 'the bad register stored nothing');
    // a registered agent that sends garbage keeps its connection; the garbage changes nothing
    const a = await agent(s, 'n2');
    a.ws.send('not json');
    a.ws.send(JSON.stringify({ type: 'hub', stats: { hubId: 'x'.repeat(10_000) } }));
    await waitFor('the messages', () => a.got.filter((m) => m.type === 'error').length === 2, 5000);
    assert.deepEqual(a.got.filter((m) => m.type === 'error').map((m) => m.code), ['E_BAD_JSON', 'E_INVALID']);
    assert.equal(s.cp.state.node('n2')!.hubStats, null);
    assert.equal(s.gateway.stats.refused, 3, 'the bad register, the garbage, the oversized stats');
    a.ws.close();
  } finally {
    await s.close();
  }
});

test('handshakes over the admission rate are told when to come back (503, Retry-After)', async () => {
  const s = await startServer({ dataDir: tmpDir(), host: '127.0.0.1', port: 0, log: silent, admission: { rate: 2, burst: 1 } });
  try {
    const first = await agent(s, 'n1');
    const r = await refusal(dial(s, ['outpost.v1'], 'n2'));
    assert.equal(r.status, 503);
    assert.equal(r.body.error.code, 'E_BUSY');
    assert.equal(r.headers['retry-after'], '1');
    assert.ok(Number(r.headers['x-retry-after-ms']) >= 100 && Number(r.headers['x-retry-after-ms']) <= 1000, String(r.headers['x-retry-after-ms']));
    await new Promise((res) => setTimeout(res, Number(r.headers['x-retry-after-ms'])));
    const again = await agent(s, 'n2');
    assert.deepEqual(s.gateway.stats.deferred, 1);
    first.ws.close();
    again.ws.close();
  } finally {
    await s.close();
  }
});

test('an assignment set goes only to the nodes whose set changed, with a version', async () => {
  const s = await startServer({ dataDir: tmpDir(), host: '127.0.0.1', port: 0, log: silent });
  try {
    const a = await agent(s, 'a');
    const b = await agent(s, 'b');
    const assigns = (x: typeof a) => x.got.filter((m) => m.type === 'assign') as unknown as { replicas: { id: string }[]; version: string }[];
    const v0 = assigns(b)[0]!.version;
    await s.cp.apps.deploy((await import('../src/core/manifest.js')).validateApp({ name: 'only-a', command: ['x'], placement: { nodes: ['a'] } }));
    await waitFor('the messages', () => assigns(a).length === 2, 5000);
    assert.deepEqual(assigns(a)[1]!.replicas.map((r) => r.id), ['only-a-0-0']);
    assert.notEqual(assigns(a)[1]!.version, assigns(a)[0]!.version);
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(assigns(b).length, 1, 'b\'s set did not change: nothing was sent to it');
    assert.equal(assigns(b)[0]!.version, v0);
    a.ws.close();
    b.ws.close();
  } finally {
    await s.close();
  }
});
