// The agent's DNS answers with real processes: a control plane, three agents
// (process runtime) at three sites, each on its own loopback address with
// `--dns-listen` on one port, and an exposed app with replicas on two of them.
// Asked with node's resolver (c-ares; `dig` is not needed): APP.outpost is the
// nearest replica's node from the asking site, and the app's exposed port at
// that address answers; the nearest replica down, the answer moves to the
// next one, and back when it returns. Unknown and unexposed apps are
// NXDOMAIN, other names refused; a port in use stops the agent at its start.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import dns from 'node:dns';
import fs from 'node:fs';
import type { ReplicaRecord } from '../src/core/types.js';
import { freePort } from '../src/agent/health.js';
import { cli, cliEnv, controlPlane, settleAgents, spawnAgent, tmpDir, waitFor, writeManifest, type AgentProc } from './helpers.js';
import { Listeners, switchFile, threeSites } from './sitekit.js';

const cp = await controlPlane();
const env = cliEnv(cp);
const work = tmpDir();
const DOWN = switchFile();
const agents: AgentProc[] = [];
const listeners = new Listeners();
after(async () => {
  await cli(['rm', 'web'], env);
  await cli(['rm', 'plain'], env);
  await settleAgents();
  for (const a of agents) a.child.kill('SIGKILL');
  listeners.close();
  await cp.close();
});

// addresses of their own (test/proxy.test.ts takes 127.0.0.2-4), so that every node's DNS and proxy take the same ports
const NODES = { e1: { site: 's1', addr: '127.0.0.12' }, e2: { site: 's2', addr: '127.0.0.13' }, e3: { site: 's3', addr: '127.0.0.14' } } as const;
type Node = keyof typeof NODES;
const PORT = await freePort('127.0.0.1');
const DNS_PORT = await freePort('127.0.0.1');

/** answers which node it runs on; refuses to start while the switch file exists */
const APP = `const fs=require('fs'),http=require('http');if(fs.existsSync(${JSON.stringify(DOWN)}))process.exit(3);
http.createServer((q,r)=>r.end(JSON.stringify({node:process.env.OUTPOST_NODE,pid:process.pid}))).listen(+process.env.PORT,process.env.HOST)`;
const web = {
  name: 'web', command: ['node', '-e', APP], replicas: 2, ports: [{ name: 'http', container: 5000 }], health: { http: '/', intervalMs: 200 },
  expose: { port: PORT }, placement: { nodes: ['e2', 'e3'] },
};
// an app without `expose` is in no route table: it has no name
const plain = { ...web, name: 'plain', expose: undefined, replicas: 1 };

const resolvers = new Map<Node, dns.promises.Resolver>();
function resolverAt(node: Node): dns.promises.Resolver {
  let r = resolvers.get(node);
  if (!r) {
    r = new dns.promises.Resolver({ timeout: 1000, tries: 2 });
    r.setServers([`${NODES[node].addr}:${DNS_PORT}`]);
    resolvers.set(node, r);
  }
  return r;
}
/** the A record node `at` answers for `name` (its rcode as an error code when it has none) */
const a = (at: Node, name: string) => resolverAt(at).resolve4(name, { ttl: true }).then((r) => r.map((x) => `${x.address} ttl ${x.ttl}`), (e: NodeJS.ErrnoException) => e.code ?? 'error');
const addrOf = (at: Node, name: string) => resolverAt(at).resolve4(name).then((r) => r[0], () => undefined);

test('three agents with --dns-listen on their own addresses; an exposed app on e2 and e3', async () => {
  await threeSites(cp, env, listeners, () => {
    for (const [name, n] of Object.entries(NODES)) {
      agents.push(spawnAgent(cp, ['--name', name, '--site', n.site, '--runtime', 'process', '--data-dir', tmpDir(), '--advertise', n.addr, '--bind', n.addr, '--dns-listen', `${n.addr}:${DNS_PORT}`]));
    }
  });
  for (const m of [web, plain]) {
    const r = await cli(['deploy', '-f', writeManifest(work, m.name, m), '--wait'], env);
    assert.equal(r.code, 0, r.stderr);
  }
});

test('APP.outpost answers the nearest replica\'s node from the asking site, TTL 5 s; its exposed port there answers', async () => {
  await waitFor('e1 names web', async () => (await a('e1', 'web.outpost'))[0] === '127.0.0.13 ttl 5');
  assert.deepEqual(await a('e1', 'WEB.Outpost.'), ['127.0.0.13 ttl 5']);
  assert.deepEqual(await waitFor('e3 names web', async () => { const x = await a('e3', 'web.outpost'); return x[0] === '127.0.0.14 ttl 5' && x; }), ['127.0.0.14 ttl 5'], 'from s3, e3 itself');
  // the client takes the name and the app's exposed port: it lands on that node's proxy, which hands it to the replica beside it
  const res = await fetch(`http://${await addrOf('e1', 'web.outpost')}:${PORT}/`);
  assert.equal(((await res.json()) as { node: string }).node, 'e2');
  assert.equal(await resolverAt('e1').resolve6('web.outpost').catch((e: NodeJS.ErrnoException) => e.code), 'ENODATA');
  assert.equal(await a('e1', 'plain.outpost'), 'ENOTFOUND', 'an app without expose has no name');
  assert.equal(await a('e1', 'nope.outpost'), 'ENOTFOUND');
  assert.equal(await a('e1', 'example.com'), 'EREFUSED');
});

test('the nearest replica down: the answer moves to the next one, and back when it returns', async (t) => {
  const replicas = async () => JSON.parse((await cli(['replicas', 'web', '--json'], env)).stdout) as ReplicaRecord[];
  const onE2 = (await replicas()).find((r) => r.node === 'e2')!;
  const pid = ((await (await fetch(`${onE2.endpoint}/`)).json()) as { pid: number }).pid;
  // it cannot come back while the switch file exists
  fs.writeFileSync(DOWN, '');
  const killed = Date.now();
  process.kill(pid, 'SIGKILL');
  await waitFor('e1 names e3', async () => (await addrOf('e1', 'web.outpost')) === '127.0.0.14', 30_000, 20);
  t.diagnostic(`the answer moved ${Date.now() - killed} ms after the kill (clients that cached the old one ask again within the 5 s TTL)`);
  // e2 itself answers e3 too now: its own replica is not ready
  await waitFor('e2 names e3', async () => (await addrOf('e2', 'web.outpost')) === '127.0.0.14', 30_000, 20);
  fs.rmSync(DOWN);
  await waitFor('e1 names e2 again', async () => (await addrOf('e1', 'web.outpost')) === '127.0.0.13', 60_000, 100);
});

test('every replica gone: SERVFAIL (a passing failure), until one is back', async () => {
  const r = await cli(['deploy', '-f', writeManifest(work, 'web-0', { ...web, replicas: 0 }), '--wait'], env);
  assert.equal(r.code, 0, r.stderr);
  await waitFor('SERVFAIL', async () => (await a('e1', 'web.outpost')) === 'ESERVFAIL', 30_000);
  const back = await cli(['deploy', '-f', writeManifest(work, 'web-1', { ...web, replicas: 1 }), '--wait'], env);
  assert.equal(back.code, 0, back.stderr);
  await waitFor('answered again', async () => (await addrOf('e1', 'web.outpost')) !== undefined, 30_000);
});

test('a DNS port in use stops the agent at its start, saying which setting', async () => {
  const clash = spawnAgent(cp, ['--name', 'e4', '--runtime', 'process', '--data-dir', tmpDir(), '--advertise', NODES.e1.addr, '--bind', NODES.e1.addr, '--dns-listen', `${NODES.e1.addr}:${DNS_PORT}`]);
  agents.push(clash);
  let code: number | null | undefined;
  void clash.exited.then((c) => { code = c; });
  await waitFor('e4 exits', () => code !== undefined, 30_000);
  assert.equal(code, 2);
  assert.match(clash.output(), /E_USAGE: --dns-listen 127\.0\.0\.12:\d+: EADDRINUSE/);
});
