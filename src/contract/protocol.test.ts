// The agent protocol's schemas: what is refused, with which code and path, and what is tolerated.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AGENT_FEATURES, DEMAND_BACKLOG, offeredMajors, parseAgentMessage, parseServerMessage } from './protocol.js';

const node = { name: 'edge-a', hostname: 'h', arch: 'amd64', cpus: 4, memoryMiB: 8192, labels: {}, site: null, runtime: 'docker', address: '10.0.0.1', images: [], layers: [], imageLayers: {}, agentVersion: '1' };

test('a register with a field of the wrong type is refused with the path of the field', () => {
  const r = parseAgentMessage(JSON.stringify({ type: 'register', node: { ...node, layers: null } }));
  assert.equal(r.ok, false);
  assert.ok(!r.ok && r.code === 'E_INVALID' && r.path === 'node.layers', JSON.stringify(r));
});

test('unknown fields are dropped, not refused: a newer agent of the same major still talks', () => {
  const r = parseAgentMessage(JSON.stringify({ type: 'register', node: { ...node, gpu: 'h100' }, future: 1 }));
  assert.ok(r.ok);
  assert.equal((r.msg as { node: Record<string, unknown> }).node.gpu, undefined);
});

test('bounds: too many labels, an over-long string, a huge status list, not JSON, an unknown type', () => {
  const labels = Object.fromEntries(Array.from({ length: 65 }, (_, i) => [`k${i}`, 'v']));
  const cases: [unknown, string][] = [
    [{ type: 'register', node: { ...node, labels } }, 'node.labels'],
    [{ type: 'register', node: { ...node, hostname: 'x'.repeat(300) } }, 'node.hostname'],
    [{ type: 'status', replicas: Array.from({ length: 10_001 }, (_, i) => ({ id: `r${i}`, state: 'running' })) }, 'replicas'],
    [{ type: 'status', replicas: [{ id: 'r', state: 'exploded' }] }, 'replicas.0.state'],
    [{ type: 'rtt', rttMs: { line: -1 } }, 'rttMs.line'],
    [{ type: 'nope' }, 'type'],
  ];
  for (const [msg, p] of cases) {
    const r = parseAgentMessage(JSON.stringify(msg));
    assert.ok(!r.ok && r.code === 'E_INVALID' && r.path === p, `${p}: ${JSON.stringify(r).slice(0, 200)}`);
  }
  const bad = parseAgentMessage('{"type":');
  assert.ok(!bad.ok && bad.code === 'E_BAD_JSON');
});

test('the majors an agent offers are read from its subprotocol header', () => {
  assert.deepEqual(offeredMajors('outpost.v1'), [1]);
  assert.deepEqual(offeredMajors('outpost.v2, outpost.v1'), [2, 1]);
  assert.deepEqual(offeredMajors('mqtt, chat'), []);
  assert.deepEqual(offeredMajors(undefined), []);
});

test('an agent says which newer messages it takes; volumes.remove and a log request for one container parse, and an agent that lists nothing still registers', () => {
  const r = parseAgentMessage(JSON.stringify({ type: 'register', node, features: [...AGENT_FEATURES] }));
  assert.ok(r.ok && r.msg.type === 'register' && r.msg.features?.includes('volumes.remove'));
  assert.ok(parseAgentMessage(JSON.stringify({ type: 'register', node })).ok);
  const v = parseServerMessage(JSON.stringify({ type: 'volumes.remove', app: 'shop' }));
  assert.ok(v.ok && v.msg.type === 'volumes.remove' && v.msg.app === 'shop');
  const bad = parseServerMessage(JSON.stringify({ type: 'volumes.remove', app: '../x' }));
  assert.ok(!bad.ok && bad.path === 'app');
  const logs = parseServerMessage(JSON.stringify({ type: 'logs', reqId: 'r', replicaId: 'shop-0-1', follow: false, tail: 10, container: 'db' }));
  assert.ok(logs.ok && logs.msg.type === 'logs' && logs.msg.container === 'db');
});

test('site proxy messages: tables and their confirmations are bounded and checked field by field', () => {
  const ep = { replica: 'web-0-0', node: 'edge-a', endpoint: 'http://10.0.0.1:5000' };
  const table = { type: 'routes', seq: 3, apps: [{ app: 'web', port: 8080, protocol: 'http', drainMs: 5000, endpoints: [ep] }], removed: ['old'], whole: false };
  assert.ok(parseServerMessage(JSON.stringify(table)).ok);
  const bad: [unknown, string][] = [
    [{ ...table, apps: [{ ...table.apps[0], port: 0 }] }, 'apps.0.port'],
    [{ ...table, apps: [{ ...table.apps[0], protocol: 'udp' }] }, 'apps.0.protocol'],
    [{ ...table, apps: [{ ...table.apps[0], endpoints: Array.from({ length: 65 }, () => ep) }] }, 'apps.0.endpoints'],
    [{ ...table, removed: ['Not A Name'] }, 'removed.0'],
    [{ ...table, seq: -1 }, 'seq'],
  ];
  for (const [msg, p] of bad) {
    const r = parseServerMessage(JSON.stringify(msg));
    assert.ok(!r.ok && r.code === 'E_INVALID' && r.path === p, `${p}: ${JSON.stringify(r).slice(0, 200)}`);
  }
  assert.ok(parseAgentMessage(JSON.stringify({ type: 'routes.ack', seq: 3, busy: ['web-0-0'] })).ok);
  const ack = parseAgentMessage(JSON.stringify({ type: 'routes.ack', seq: 3 }));
  assert.ok(!ack.ok && ack.path === 'busy');
  const listener = { app: 'web', port: 8080, protocol: 'http', state: 'refused', error: { code: 'E_PORT_IN_USE', message: 'port 8080 is in use' } };
  assert.ok(parseAgentMessage(JSON.stringify({ type: 'proxy', listeners: [listener] })).ok);
  const st = parseAgentMessage(JSON.stringify({ type: 'proxy', listeners: [{ ...listener, state: 'on fire' }] }));
  assert.ok(!st.ok && st.path === 'listeners.0.state');
  assert.ok(AGENT_FEATURES.includes('routes'));
});

test('demand reports: bounded windows of bounded entries; demand.ack goes only to agents that list it', () => {
  const sketch = { n: 2, sum: 3, max: 2, zero: 0, o: 5, c: [1, 0, 1] };
  const entry = { app: 'web', node: 'e2', requests: 2, errors: 0, status: { '2xx': 2, '3xx': 0, '4xx': 0, '5xx': 0 }, connect: { ...sketch, n: 0, sum: 0, max: 0, c: [] }, firstByte: sketch, total: sketch };
  const msg = { type: 'demand', windows: [{ start: 1_800_000_000_000, ms: 10_000, entries: [entry, { ...entry, node: '' }] }] };
  assert.ok(parseAgentMessage(JSON.stringify(msg)).ok);
  const w = msg.windows[0]!;
  const bad: [unknown, string][] = [
    [{ ...msg, windows: [] }, 'windows'],
    [{ ...msg, windows: Array.from({ length: DEMAND_BACKLOG + 1 }, () => w) }, 'windows'],
    [{ ...msg, windows: [{ ...w, ms: 10 }] }, 'windows.0.ms'],
    [{ ...msg, windows: [{ ...w, start: -1 }] }, 'windows.0.start'],
    [{ ...msg, windows: [{ ...w, entries: [{ ...entry, app: 'Not A Name' }] }] }, 'windows.0.entries.0.app'],
    [{ ...msg, windows: [{ ...w, entries: [{ ...entry, requests: -1 }] }] }, 'windows.0.entries.0.requests'],
    [{ ...msg, windows: [{ ...w, entries: [{ ...entry, total: { ...sketch, c: Array.from({ length: 401 }, () => 0) } }] }] }, 'windows.0.entries.0.total.c'],
    [{ ...msg, windows: [{ ...w, entries: [{ ...entry, total: { ...sketch, max: -1 } }] }] }, 'windows.0.entries.0.total.max'],
  ];
  for (const [m, p] of bad) {
    const r = parseAgentMessage(JSON.stringify(m));
    assert.ok(!r.ok && r.path === p, `${p}: ${JSON.stringify(r).slice(0, 200)}`);
  }
  assert.ok(parseServerMessage(JSON.stringify({ type: 'demand.ack', starts: [1_800_000_000_000] })).ok);
  assert.ok(AGENT_FEATURES.includes('demand.ack'));
});
