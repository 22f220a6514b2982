// A control-plane restart under a fleet, with admission slower than the
// node timeout: agents come back over ~13 s through 503s and Retry-After,
// while the node timeout is 1 s. No node may be declared lost meanwhile (the
// fleet is in a storm, then those still queued keep knocking), so no replica
// moves, none starts twice, and the same replicas run on the same nodes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Swarm } from '../src/swarm/swarm.js';
import { startServer, type RunningServer } from '../src/server/server.js';
import { ApiClient } from '../src/contract/client.js';
import { silent, tmpDir, waitFor } from './helpers.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a restart storm through slow admission moves nothing and starts nothing twice', { timeout: 120_000 }, async () => {
  const dataDir = tmpDir();
  const opts = { dataDir, host: '127.0.0.1', log: silent, nodeTimeoutMs: 1000, reconcileMs: 200, admission: { rate: 3, burst: 3 } };
  let cp: RunningServer = await startServer({ ...opts, port: 0, admission: { rate: 1000, burst: 100 } });
  const port = Number(new URL(cp.url).port);
  const swarm = new Swarm({ server: cp.url, joinToken: await cp.createJoinToken({ uses: 40 }), ca: cp.caPem!, count: 40, phaseMs: [5, 20] });
  try {
    await swarm.enrol();
    swarm.start();
    await waitFor('40 welcomed', () => swarm.stats().welcomed === 40, 60_000);
    const client = new ApiClient(cp.url, cp.adminToken, cp.caPem);
    await client.deploy({ name: 'st', command: ['sleep', '1000'], replicas: 30, resources: { cpu: 0.01, memoryMiB: 8 } });
    await waitFor('30 running', async () => (await client.apps())[0]?.running === 30, 60_000);
    const before = new Map((await client.replicas({ app: 'st' })).map((r) => [r.id, r.node]));
    const base = swarm.openWindow();
    await cp.close();
    const t0 = Date.now();
    cp = await startServer({ ...opts, port });
    await waitFor('40 welcomed again', () => swarm.stats(t0).welcomedSince === 40, 90_000);
    const took = Date.now() - t0;
    assert.ok(took > 5000, `admission spread the storm out (${took} ms)`);
    assert.ok(cp.gateway.stats.deferred > 0, 'handshakes were deferred');
    assert.equal(cp.gateway.stats.resumed, 40, 'every agent resumed its TLS session across the restart (the ticket keys are in the data dir)');
    await sleep(1500); // two node timeouts more: a late loss would show now
    const w = swarm.closeWindow();
    assert.deepEqual(w.started, [], 'nothing was started again');
    assert.deepEqual(base.presentByApp, { st: 30 });
    assert.equal(swarm.stats().running, 30);
    const after = new Map((await new ApiClient(cp.url, cp.adminToken, cp.caPem).replicas({ app: 'st' })).map((r) => [r.id, r.node]));
    assert.deepEqual(after, before, 'the same replicas on the same nodes');
    assert.deepEqual(swarm.starts().filter(([, n, , elsewhere]) => n > 1 || elsewhere), [], 'no replica started twice or on two nodes');
  } finally {
    swarm.close();
    await cp.close();
  }
});
