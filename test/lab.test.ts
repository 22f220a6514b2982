// The edge lab, small: 2 sites, 3 nodes in network namespaces, delays from the
// relay, per-node Podman engines. Needs root, podman, docker-registry and
// python3; skipped with the reason otherwise, unless OUTPOST_REQUIRE_ENGINE=1.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { labDown, labStatus, labUp, requireRoot, LAB_IMAGE } from '../src/lab/lab.js';
import { readTopology } from '../src/lab/topology.js';
import { ApiClient } from '../src/contract/client.js';
import { ROOT, waitFor } from './helpers.js';

function skipReason(): string | false {
  try {
    requireRoot();
  } catch (e) {
    return (e as Error).message;
  }
  try {
    execFileSync('podman', ['image', 'exists', 'localhost/sensor-stats:0.1']);
  } catch {
    return 'the example image localhost/sensor-stats:0.1 is missing (npm run build:images)';
  }
  return false;
}
const skip = skipReason();
if (skip && process.env.OUTPOST_REQUIRE_ENGINE === '1') throw new Error(`OUTPOST_REQUIRE_ENGINE=1 but the lab cannot run: ${skip}`);
if (skip) console.log(`# lab test skipped: ${skip}`);

test('small lab: measured RTTs match the configured delays, demand at one site places on its nearest node, nothing is left behind', { skip, timeout: 300_000 }, async () => {
  const topo = readTopology(path.join(ROOT, 'lab/small.yaml'));
  after(() => labDown());
  const state = await labUp(topo);
  const client = new ApiClient(state.server, state.adminToken, state.ca);

  // agents report the median of their last three probe rounds (5 s apart in the
  // lab); give them up to six rounds to settle after the start-up load
  const off = async () => {
    const nodes = await client.nodes();
    const bad: string[] = [];
    for (const s of topo.sites) {
      for (const n of topo.nodes) {
        const want = topo.rttMs[s.name]![n.name]!;
        const got = nodes.find((x) => x.name === n.name)!.rttMs[s.name]!;
        if (!(Math.abs(got - want) / want <= 0.25)) bad.push(`${s.name} -> ${n.name}: measured ${got} ms, configured ${want} ms`);
      }
    }
    return bad;
  };
  await waitFor('measured RTTs within 25% of the configured delays', async () => (await off()).length === 0, 30_000, 1000).catch(async () => {
    assert.fail(`RTTs off by more than 25%: ${(await off()).join('; ')}`);
  });

  await client.deploy({
    name: 'stats', image: LAB_IMAGE, ports: [{ name: 'http', container: 5000 }], resources: { cpu: 1, memoryMiB: 128 },
    health: { http: '/healthz', port: 'http' }, placement: { demand: [{ site: 'site-a', rps: 10, items: 1000 }] },
  });
  const rep = await waitFor('replica running', async () => {
    const [r] = await client.appReplicas('stats');
    return r?.state === 'running' ? r : null;
  }, 120_000, 200);
  assert.equal(rep.node, 'edge-a', 'site-a\'s nearest node');
  // a request from inside site-a's namespace reaches the replica through the relay
  const out = execFileSync('nsenter', ['--net=/run/netns/olab-s-site-a', process.execPath, '-e',
    `fetch('${rep.endpoint}/process_data',{method:'POST',body:'[1,2,3]'}).then(r=>r.text()).then(console.log)`], { encoding: 'utf8' });
  assert.equal(out.trim(), '{"processed_data":2}');

  await labDown();
  const left = labStatus();
  assert.deepEqual([left.state, left.namespaces, left.links, left.processes], [null, [], [], 0]);
});

test('scenario c\'s lab: nodes at sites, a proxy forwarding to another site\'s replica pays the RTT between the two nodes', { skip, timeout: 300_000 }, async () => {
  const topo = readTopology(path.join(ROOT, 'lab/c.yaml'));
  after(() => labDown());
  const state = await labUp(topo);
  const client = new ApiClient(state.server, state.adminToken, state.ca);
  // the relay holds node<->node packets for the configured delay: never less than it
  const rtt = Number(execFileSync('nsenter', ['--net=/run/netns/olab-n-node-b', process.execPath, path.join(ROOT, 'scripts/lab/rtt.mjs'), state.nodeIp['node-a']!, '9', '5'], { encoding: 'utf8' }).trim());
  assert.ok(rtt >= 40, `node-b -> node-a: ${rtt} ms, configured 40 ms`);
  assert.deepEqual((await client.nodes()).map((n) => [n.name, n.site ?? null]).sort(), [['central', null], ['node-a', 'site-a'], ['node-b', 'site-b'], ['node-c', 'site-c']]);

  await client.deploy({
    name: 'stats', image: LAB_IMAGE, ports: [{ name: 'http', container: 5000 }], resources: { cpu: 0.5, memoryMiB: 128 },
    health: { http: '/healthz', port: 'http' }, expose: { port: 8080 }, placement: { nodes: ['node-a'] },
  });
  await waitFor('replica running', async () => (await client.appReplicas('stats'))[0]?.state === 'running', 120_000, 200);
  // from site-b, through node-b's proxy (1.5 ms away), to the replica on node-a: 40 ms more
  const timed = (site: string, node: string) => Number(execFileSync('nsenter', [`--net=/run/netns/olab-s-${site}`, process.execPath, '-e', `
    (async () => {
      const xs = [];
      for (let i = 0; i < 12; i++) {
        const t0 = performance.now();
        for (;;) { try { const r = await fetch('http://${state.nodeIp[node]}:8080/process_data', { method: 'POST', body: '[1,2,3]' }); if ((await r.text()) === '{"processed_data":2}') break; } catch {} await new Promise((r) => setTimeout(r, 200)); }
        xs.push(performance.now() - t0);
      }
      xs.sort((a, b) => a - b);
      console.log(xs[6]);
    })();`], { encoding: 'utf8' }).trim());
  const far = timed('site-b', 'node-b');
  assert.ok(far >= 41.5, `site-b via node-b's proxy to node-a: ${far} ms`);
  const near = timed('site-a', 'node-a');
  assert.ok(near < far, `site-a via node-a's proxy: ${near} ms, site-b's: ${far} ms`);
  // the proxies report the route: site-b -> node-a
  await waitFor('site-b\'s route to node-a measured', async () => (await client.demand('stats')).sites.find((s) => s.site === 'site-b')?.routes.some((r) => r.node === 'node-a' && r.requests >= 12) ?? false, 30_000, 500);
});
