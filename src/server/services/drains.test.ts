// A drain whose end this instance tried while it was not the leader is picked
// up again: once it leads, the drain ends (it was lost before: its timer had
// fired and stayed recorded, so nothing armed it again).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { validateApp } from '../../core/manifest.js';
import { openControlPlane, reportStatus } from '../controlplane.js';
import { openSqliteStore } from '../store/sqlite.js';
import { nodeInfo, settle } from '../test-fixtures.js';

const spec = (replicas: number) => validateApp({
  name: 'web', command: ['x'], replicas, ports: [{ name: 'http', container: 5000 }], expose: { port: 8080, drainS: 0.05 }, placement: { nodes: ['a', 'b'] },
});

test('a drain refused as not the leader\'s ends once this instance leads again', async () => {
  let now = 5_000_000;
  let leading = true;
  const cp = await openControlPlane({
    store: openSqliteStore(':memory:'), log: pino({ level: 'silent' }), now: () => now,
    cluster: { id: 'one', fence: () => (leading ? { holder: 'one', epoch: 1 } : null), catchUp: async () => {} },
  });
  for (const n of ['a', 'b']) { await cp.nodes.register(nodeInfo(n)); cp.routes.connected(n); }
  await settle(cp);
  await cp.apps.deploy(spec(2));
  for (const r of cp.state.appReplicas('web')) await reportStatus(cp, r.node, [{ id: r.id, state: 'running', ready: true, endpoint: `http://${r.node}:5000` }]);
  await settle(cp);
  for (const n of ['a', 'b']) cp.routes.next(n);
  await cp.apps.deploy(spec(1));
  const retired = cp.state.appReplicas('web').find((r) => r.drain)!;
  assert.ok(retired);
  // the deadline passes while another instance leads: this one's attempt to end the drain is refused
  leading = false;
  now += 10_000;
  await new Promise((r) => setTimeout(r, 300));
  assert.ok(cp.state.replica(retired.id), 'not ended: this instance did not lead');
  leading = true;
  for (let i = 0; i < 250 && cp.state.replica(retired.id); i++) await new Promise((r) => setTimeout(r, 20));
  assert.equal(cp.state.replica(retired.id), undefined, 'ended once this instance leads');
  assert.equal(cp.drains.ended.deadline, 1);
  await cp.writer.close();
});
