// The agent gateway against raw WebSocket clients: the protocol version
// negotiated at the upgrade, messages validated before anything reads them,
// handshakes admitted at a bounded rate, and assignment sets sent only where
// they changed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import WebSocket from 'ws';
import { startServer, type RunningServer } from '../src/server/server.js';
import { dialAgent, enrol, refusal, silent, tmpDir, waitFor } from './helpers.js';

const nodeInfo = (name: string) => ({ name, hostname: name, arch: 'amd64', cpus: 4, memoryMiB: 8192, labels: {}, site: null, runtime: 'process', address: '127.0.0.1', images: [], layers: [], imageLayers: {}, agentVersion: 't' });

const creds = new Map<string, { key: string; cert: string }>();

/** A connection as node `name`, enrolled first (once per server) as a real agent is. */
async function dial(s: RunningServer, protocols: string[] = ['outpost.v1'], name = 'n1'): Promise<WebSocket> {
  const k = `${s.url} ${name}`;
  if (!creds.has(k)) creds.set(k, await enrol(s, name, await s.createJoinToken({ uses: 1 })));
  return dialAgent(s, creds.get(k)!, name, protocols);
}

/** A raw agent: every message it receives, in order. */
async function agent(s: RunningServer, name: string) {
  const ws = await dial(s, ['outpost.v1'], name);
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
      const r = await refusal(await dial(s, offer));
      assert.equal(r.status, 426);
      assert.equal(r.body.error.code, 'E_PROTOCOL');
      assert.match(r.body.error.message, /outpost\.v1/);
    }
    const ok = await dial(s, ['outpost.v2', 'outpost.v1']);
    await new Promise((r, j) => { ok.on('open', r); ok.on('error', j); });
    assert.equal(ok.protocol, 'outpost.v1', 'the one both speak is chosen');
    ok.close();
  } finally {
    await s.close();
  }
});

test('malformed, invalid and out-of-order messages close the connection with a code and the bad field; nothing is stored from them', async () => {
  const s = await startServer({ dataDir: tmpDir(), host: '127.0.0.1', port: 0, log: silent });
  /** sends `msgs` on a fresh connection as `name`; the close code and reason, and the error messages got */
  const refusedAfter = async (name: string, msgs: string[]) => {
    const ws = await dial(s, ['outpost.v1'], name);
    const got: { type: string; code?: string; message?: string }[] = [];
    ws.on('message', (raw) => got.push(JSON.parse(raw.toString())));
    await new Promise((r) => ws.on('open', r));
    const closed = new Promise<[number, string]>((r) => ws.on('close', (code, reason) => r([code, reason.toString()])));
    for (const m of msgs) ws.send(m);
    return { close: await closed, errors: got.filter((m) => m.type === 'error') };
  };
  try {
    const early = await refusedAfter('n1', [JSON.stringify({ type: 'status', replicas: [] })]);
    assert.deepEqual(early.close, [4426, 'E_PROTOCOL'], 'register comes first');
    const bad = await refusedAfter('n1', [JSON.stringify({ type: 'register', node: { ...nodeInfo('n1'), layers: null } })]);
    assert.deepEqual(bad.close, [4400, 'E_INVALID']);
    assert.match(bad.errors[0]!.message!, /^node\.layers:/);
    assert.equal(s.cp.state.count('nodes'), 0, 'the bad register stored nothing');
    const reg = JSON.stringify({ type: 'register', node: nodeInfo('n2') });
    const garbage = await refusedAfter('n2', [reg, 'not json']);
    assert.deepEqual(garbage.close, [4400, 'E_BAD_JSON']);
    const huge = await refusedAfter('n2', [reg, JSON.stringify({ type: 'hub', stats: { hubId: 'x'.repeat(10_000) } })]);
    assert.deepEqual(huge.close, [4400, 'E_INVALID']);
    const unknown = await refusedAfter('n2', [reg, JSON.stringify({ type: 'takeover', node: 'n1' })]);
    assert.deepEqual(unknown.close, [4400, 'E_INVALID']);
    assert.equal(s.cp.state.node('n2')!.hubStats, null);
    assert.equal(s.gateway.stats.refused, 4, 'the bad register, the garbage, the oversized stats, the unknown type');
    assert.equal(s.gateway.stats.refusals.E_PROTOCOL, 1);
  } finally {
    await s.close();
  }
});

test('handshakes over the admission rate are told when to come back (503, Retry-After)', async () => {
  const s = await startServer({ dataDir: tmpDir(), host: '127.0.0.1', port: 0, log: silent, admission: { rate: 2, burst: 1 } });
  try {
    const first = await agent(s, 'n1');
    const r = await refusal(await dial(s, ['outpost.v1'], 'n2'));
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
