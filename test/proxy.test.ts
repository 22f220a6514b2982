// The site-local entry point with real processes: a control plane, three
// agents (process runtime) at three sites, each with its own loopback
// address, and an exposed app. Requests through a node's proxy reach the
// nearest replica; a replica killed is failed over; none left answers 503
// E_NO_ENDPOINT until one returns; a rolling update and a scale-in under a
// steady request loop fail no request (drain); a port in use is refused and
// reported, not a crash.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import type { NodeRecord, ReplicaRecord } from '../src/core/types.js';
import { freePort as freePortOn } from '../src/agent/health.js';
import { cli, cliEnv, controlPlane, pidAlive, settleAgents, spawnAgent, tmpDir, waitFor, writeManifest, type AgentProc } from './helpers.js';
import { Listeners, switchFile, threeSites } from './sitekit.js';

const cp = await controlPlane();
const env = cliEnv(cp);
const work = tmpDir();
const DOWN = switchFile();
const listeners = new Listeners();
const agents: AgentProc[] = [];
const dirs: Record<string, string> = {};
after(async () => {
  await cli(['rm', 'web'], env);
  await cli(['rm', 'other'], env);
  await settleAgents();
  for (const a of agents) a.child.kill('SIGKILL');
  listeners.close();
  await cp.close();
});

const listen = (host?: string, port?: number) => listeners.listen(host, port);
const freePort = () => freePortOn('127.0.0.1');

// each node on an address of its own, so that every proxy can take the same port
const NODES = { e1: { site: 's1', addr: '127.0.0.2' }, e2: { site: 's2', addr: '127.0.0.3' }, e3: { site: 's3', addr: '127.0.0.4' } } as const;
const PORT = await freePort();

/** the app: answers who it is (/slow: 30 ms later, so that requests are in flight when a replica stops; /hang: never); refuses to start while the switch file exists */
const APP = `const fs=require('fs'),http=require('http');if(fs.existsSync(${JSON.stringify(DOWN)}))process.exit(3);
http.createServer((q,r)=>{let b='';q.on('data',d=>b+=d);q.on('end',()=>q.url!=='/hang'&&setTimeout(()=>{r.setHeader('content-type','application/json');
r.end(JSON.stringify({node:process.env.OUTPOST_NODE,replica:process.env.OUTPOST_REPLICA,pid:process.pid,v:process.env.V,body:b,via:q.headers.via,xff:q.headers['x-forwarded-for']}))},q.url==='/slow'?30:0))})
.listen(+process.env.PORT,process.env.HOST)`;
const manifest = (o: { v?: string; replicas?: number } = {}) => ({
  name: 'web', command: ['node', '-e', APP], replicas: o.replicas ?? 2, env: { V: o.v ?? '1' },
  ports: [{ name: 'http', container: 5000 }], health: { http: '/', intervalMs: 200 },
  expose: { port: PORT, drainS: 10 }, placement: { nodes: ['e2', 'e3'] },
});

/** e1's proxy gives a replica 1.5 s to begin its answer (the agent setting; 60 s by default) */
const E1_ANSWER_LIMIT_MS = 1500;

function agentArgs(name: keyof typeof NODES): string[] {
  dirs[name] ??= tmpDir();
  const limit = name === 'e1' ? ['--proxy-response-timeout', String(E1_ANSWER_LIMIT_MS)] : [];
  return ['--name', name, '--site', NODES[name].site, '--runtime', 'process', '--data-dir', dirs[name]!, '--advertise', NODES[name].addr, '--bind', NODES[name].addr, ...limit];
}

interface Answer { node: string; replica: string; pid: number; v: string; body: string; via: string; xff: string }
const via = (node: keyof typeof NODES) => `http://${NODES[node].addr}:${PORT}`;
async function ask(node: keyof typeof NODES, o: { post?: string; path?: string } = {}): Promise<{ status: number; json: Answer & { error?: { code: string; message: string } } }> {
  const res = await fetch(`${via(node)}${o.path ?? '/hello'}`, o.post === undefined ? {} : { method: 'POST', body: o.post, headers: { 'content-type': 'text/plain' } });
  return { status: res.status, json: await res.json() as Answer & { error?: { code: string; message: string } } };
}
const json = async <T>(args: string[]) => {
  const r = await cli([...args, '--json'], env);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
};
const replicas = () => json<ReplicaRecord[]>(['replicas', 'web']);

/** Requests through a node's proxy, two at a time, GET and POST in turn, each 30 ms in the replica, until stopped: every failure is kept. */
function steadyLoop(node: keyof typeof NODES = 'e1') {
  let on = true;
  let ok = 0;
  const failures: string[] = [];
  const seen = new Set<string>();
  const worker = async (w: number) => {
    for (let i = 0; on; i++) {
      try {
        const post = (i + w) % 2 === 0 ? `item ${i}` : undefined;
        const r = await ask(node, post === undefined ? { path: '/slow' } : { post, path: '/slow' });
        if (r.status !== 200 || (post !== undefined && r.json.body !== post)) failures.push(`${r.status} ${JSON.stringify(r.json)}`);
        else { ok++; seen.add(r.json.replica); }
      } catch (e) {
        failures.push(String((e as Error & { cause?: Error }).cause ?? e));
      }
    }
  };
  const done = Promise.all([worker(0), worker(1)]);
  return { failures, seen, get ok() { return ok; }, async stop() { on = false; await done; } };
}

test('three agents at three sites, each with a proxy on its own address; the app exposed on one port everywhere', async () => {
  await threeSites(cp, env, listeners, () => { for (const name of Object.keys(NODES)) agents.push(spawnAgent(cp, agentArgs(name as keyof typeof NODES))); });
  const r = await cli(['deploy', '-f', writeManifest(work, 'v1', manifest()), '--wait'], env);
  assert.equal(r.code, 0, r.stderr);
});

test('requests through a node\'s proxy reach the nearest replica, with x-forwarded-for and via', async () => {
  const a = await waitFor('e1\'s proxy answers', async () => { const x = await ask('e1'); return x.status === 200 && x.json; });
  assert.equal(a.node, 'e2', 'from s1, e2 (5 ms) before e3 (20 ms)');
  assert.equal(a.via, '1.1 e1');
  assert.equal(a.xff, '127.0.0.1');
  assert.equal((await ask('e1', { post: 'a body' })).json.body, 'a body');
  assert.equal((await waitFor('e3\'s proxy answers', async () => { const x = await ask('e3'); return x.status === 200 && x.json; })).node, 'e3', 'from s3, e3 itself');
  assert.equal((await waitFor('e2\'s proxy answers', async () => { const x = await ask('e2'); return x.status === 200 && x.json; })).node, 'e2');
});

test('an agent started with a short answer limit (--proxy-response-timeout): a replica that does not answer gets 504 E_UPSTREAM_TIMEOUT', async () => {
  const r = await ask('e1', { path: '/hang' });
  assert.equal(r.status, 504);
  assert.equal(r.json.error?.code, 'E_UPSTREAM_TIMEOUT');
  assert.match(r.json.error!.message, /did not answer web's request within 1\.5 s/);
  assert.equal((await ask('e1')).status, 200, 'the next request is answered');
});

test('a replica killed: requests go to the next one, and none fails after the switch', async () => {
  const first = (await ask('e1')).json;
  assert.equal(first.node, 'e2');
  process.kill(first.pid, 'SIGKILL');
  // requests in flight at the moment of a crash may fail; these are sent one after another, so there are none
  let before = 0;
  let failedBefore = 0;
  await waitFor('a request answered by e3', async () => {
    before++;
    const r = await ask('e1').catch(() => null);
    if (!r || r.status !== 200) failedBefore++;
    return r?.status === 200 && r.json.node === 'e3';
  }, 20_000, 0);
  let failed = 0;
  for (let i = 0; i < 50; i++) {
    const r = await ask('e1').catch(() => null);
    if (r?.status !== 200) failed++;
  }
  assert.equal(failed, 0, `no failed request after the switch (${failedBefore} of ${before} before it)`);
  // e2's replica is restarted by its agent: e1's proxy goes back to it
  await waitFor('e2 answers e1 again', async () => (await ask('e1')).json.node === 'e2', 30_000);
});

test('every replica gone: 503 E_NO_ENDPOINT; one back: answered again', async () => {
  fs.writeFileSync(DOWN, '');
  for (const r of await replicas()) {
    const pid = (await (await fetch(`${r.endpoint}/`)).json() as Answer).pid;
    process.kill(pid, 'SIGKILL');
  }
  const none = await waitFor('503', async () => { const x = await ask('e1'); return x.status === 503 && x; }, 30_000);
  assert.equal(none.json.error!.code, 'E_NO_ENDPOINT');
  assert.match(none.json.error!.message, /^no endpoint of web answered/);
  fs.rmSync(DOWN);
  await waitFor('answered again', async () => (await ask('e1')).status === 200, 60_000, 200);
  await waitFor('both replicas ready', async () => (await replicas()).filter((r) => r.state === 'running' && r.ready !== false).length === 2, 60_000, 200);
});

/** Waits until the app has `n` replicas, none draining, and the processes of those it had before are gone. */
async function settled(n: number, oldPids: number[]): Promise<void> {
  await waitFor(`${n} replicas, none draining`, async () => { const rs = await replicas(); return rs.length === n && rs.every((r) => !r.drain && r.state === 'running' && r.ready !== false); }, 90_000, 100);
  await waitFor('the retired processes stopped', () => oldPids.every((p) => !pidAlive(p)), 30_000, 50);
  // a few more rounds of the loop after the last stop
  await new Promise((r) => setTimeout(r, 300));
}

async function pids(): Promise<number[]> {
  return Promise.all((await replicas()).map(async (r) => ((await (await fetch(`${r.endpoint}/`)).json()) as Answer).pid));
}

test('a rolling update under a steady request loop through the proxy fails no request', async () => {
  const old = await pids();
  const loop = steadyLoop();
  const r = await cli(['deploy', '-f', writeManifest(work, 'v2', manifest({ v: '2' })), '--wait'], env);
  assert.equal(r.code, 0, r.stderr);
  await settled(2, old);
  await loop.stop();
  assert.deepEqual(loop.failures, [], `failed requests (of ${loop.ok + loop.failures.length})`);
  assert.ok(loop.ok > 20, `${loop.ok} requests answered`);
  assert.equal((await ask('e1')).json.v, '2');
  const drained = (await cp.cp.events.list({ app: 'web' })).events.filter((e) => e.type === 'replica.drained');
  assert.ok(drained.length >= 2, 'each old replica drained before it was stopped');
  assert.ok(drained.every((e) => e.data.why === 'drained'), `every proxy confirmed before the deadline: ${drained.map((e) => e.message).join('; ')}`);
});

test('a scale-in under a steady request loop through the proxy fails no request', async () => {
  const old = await pids();
  // the newest replica goes: the loop goes through its own node's proxy, for which it is the nearest
  const newest = (await replicas()).sort((a, b) => b.createdAt - a.createdAt)[0]!;
  const loop = steadyLoop(newest.node as keyof typeof NODES);
  await waitFor('the loop reaches the replica that goes', () => loop.seen.has(newest.id), 10_000);
  const r = await cli(['deploy', '-f', writeManifest(work, 'v2-1', manifest({ v: '2', replicas: 1 })), '--wait'], env);
  assert.equal(r.code, 0, r.stderr);
  const kept = await pids();
  await settled(1, old.filter((p) => !kept.includes(p)));
  await loop.stop();
  assert.ok(!(await replicas()).some((x) => x.id === newest.id), 'the replica the loop reached was the one retired');
  assert.deepEqual(loop.failures, [], `failed requests (of ${loop.ok + loop.failures.length})`);
  assert.ok(loop.ok > 20, `${loop.ok} requests answered`);
});

test('a port another process holds on a node: refused there with E_PORT_IN_USE and an event, served elsewhere, taken once free', async () => {
  const port = await freePort();
  const holder = await listen(NODES.e3.addr, port);
  const other = { name: 'other', command: ['true'], replicas: 0, ports: [{ name: 'p', container: 1 }], expose: { port } };
  assert.equal((await cli(['deploy', '-f', writeManifest(work, 'other', other)], env)).code, 0);
  const refused = await waitFor('e3 reports the refusal', async () => {
    const n = (await json<NodeRecord[]>(['nodes'])).find((x) => x.name === 'e3');
    return n?.proxy?.find((l) => l.app === 'other' && l.state === 'refused');
  }, 20_000, 100);
  assert.equal(refused.error?.code, 'E_PORT_IN_USE');
  assert.match(refused.error!.message, new RegExp(`port ${port} on 127.0.0.4 is in use by another process`));
  assert.match((await cli(['nodes'], env)).stdout, new RegExp(`e3 .*other:${port} E_PORT_IN_USE`), 'outpost nodes shows it');
  const ev = await waitFor('the event', async () => (await cp.cp.events.list({ app: 'other' })).events.find((e) => e.type === 'proxy.refused'));
  assert.equal(ev.node, 'e3');
  // e1 serves it (no replica: 503 E_NO_ENDPOINT, "none is ready"), and e3's agent kept running
  const res = await fetch(`http://${NODES.e1.addr}:${port}/`);
  assert.equal(res.status, 503);
  assert.match(JSON.stringify(await res.json()), /E_NO_ENDPOINT.*none is ready/);
  assert.equal(agents[2]!.child.exitCode, null);
  await new Promise((r) => holder.close(r));
  await waitFor('e3 listens once the port is free', async () => {
    const n = (await json<NodeRecord[]>(['nodes'])).find((x) => x.name === 'e3');
    return n?.proxy?.find((l) => l.app === 'other')?.state === 'listening';
  }, 20_000, 200);
});

test('an agent restarted with no control plane reachable serves its saved route table at once', async () => {
  const e1 = agents[0]!;
  e1.child.kill('SIGKILL');
  await e1.exited;
  // the same node, its control plane unreachable (nothing listens on port 1)
  agents[0] = spawnAgent({ url: 'https://127.0.0.1:1', joinToken: cp.joinToken }, agentArgs('e1'));
  const r = await waitFor('e1\'s proxy answers with no control plane', async () => { const x = await ask('e1').catch(() => null); return x?.status === 200 && x.json; }, 20_000, 100);
  assert.equal(r.via, '1.1 e1');
  assert.match(agents[0]!.output(), /serving the locally saved route table/);
});
