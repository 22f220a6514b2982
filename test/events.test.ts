// The event log end to end: a real control plane, real agent processes
// (plain processes, and containers on Podman through its Docker API), the
// real CLI. What a deploy, a crash, an OOM kill, a pull, a lost node and a
// secret's new value put in the log, in order; following it live, and coming
// back after a dropped stream without missing anything; bad input; retention.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import https from 'node:https';
import path from 'node:path';
import type { EventsAnswer, OutpostEvent } from '../src/contract/api.js';
import { EVENT_TYPES } from '../src/core/events.js';
import type { CreatedApiToken } from '../src/contract/api.js';
import { LABELS } from '../src/agent/drivers/driver.js';
import { engineOrSkip, EXAMPLE_IMAGE } from './engine.js';
import { CLI, ROOT, call, cli, cliEnv, controlPlane, settleAgents, spawnAgent, tmpDir, waitFor, workloadsGone, writeManifest, type AgentProc } from './helpers.js';

const { docker, skip: noEngine } = await engineOrSkip();
const registry = process.env.OUTPOST_TEST_REGISTRY;

// a short node timeout: a killed agent's node is lost in seconds, not 15
const cp = await controlPlane(tmpDir(), { nodeTimeoutMs: 2000 });
const env = cliEnv(cp);
const work = tmpDir();
const agents: AgentProc[] = [];
const tag = process.pid.toString(36);
const PROC = `ev-proc-${tag}`;
const AWAY = `ev-away-${tag}`;
const POD = `ev-pod-${tag}`;
const awayDir = tmpDir();
const start = (name: string, dir: string, runtime: string) => {
  const a = spawnAgent(cp, ['--name', name, '--runtime', runtime, '--data-dir', dir, '--no-hub']);
  agents.push(a);
  return a;
};
start(PROC, tmpDir(), 'process');
let away = start(AWAY, awayDir, 'process');
if (!noEngine) start(POD, tmpDir(), 'docker');
const apps = new Set<string>();

after(async () => {
  for (const a of apps) await cli(['rm', a], env).catch(() => {});
  await settleAgents();
  if (docker) {
    await waitFor('containers removed', async () => (await docker.listContainers({ all: true, filters: { label: [`${LABELS.node}=${POD}`] } })).length === 0, 15_000).catch(() => {});
  }
  for (const a of agents) a.child.kill('SIGKILL');
  await cp.close();
});

for (const n of [PROC, AWAY, ...(noEngine ? [] : [POD])]) await waitFor(`${n} ready`, async () => (await cp.client.node(n).catch(() => null))?.state === 'ready', 30_000);

/** The whole log through the CLI (one app's or node's), as --json prints it. */
async function log(...filter: string[]): Promise<OutpostEvent[]> {
  const r = await cli(['events', '--since', '0', '--limit', '100000', '--json', ...filter], env);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as OutpostEvent[];
}

/** Waits until the log of `filter` holds an event that `f` picks; the log then. */
async function until(what: string, f: (e: OutpostEvent) => boolean, filter: string[], timeoutMs = 30_000): Promise<OutpostEvent[]> {
  let last: OutpostEvent[] = [];
  return waitFor(what, async () => { last = await log(...filter); return last.some(f) ? last : null; }, timeoutMs, 200)
    .catch((e: Error) => { throw new Error(`${e.message}; the log: ${last.map((x) => `${x.seq} ${x.type} ${x.message}`).join(' | ')}`); });
}

/** Whether `types` occur in `events` in this order (others may come between). */
function inOrder(events: OutpostEvent[], types: string[]): boolean {
  let i = 0;
  for (const e of events) if (e.type === types[i]) i++;
  return i === types.length;
}

async function deploy(doc: { name: string } & Record<string, unknown>, wait = true): Promise<void> {
  apps.add(doc.name);
  const r = await cli(['deploy', '-f', writeManifest(work, doc.name, doc), ...(wait ? ['--wait'] : [])], env);
  assert.equal(r.code, 0, r.stderr + r.stdout);
}

const idle = ['node', '-e', 'setInterval(() => {}, 1e6)'];

test('a deploy gives app.deployed, then its replica scheduled, started and ready, in the log\'s order, each carrying its app, node and revision', async () => {
  const app = `ev-web-${tag}`;
  await deploy({ name: app, command: idle, placement: { nodes: [PROC] } });
  const l = await until('ready', (e) => e.type === 'replica.ready', ['--app', app]);
  assert.ok(inOrder(l, ['app.deployed', 'replica.scheduled', 'replica.started', 'replica.ready']), l.map((e) => e.type).join(' '));
  assert.ok(l.every((e, i) => i === 0 || e.seq > l[i - 1]!.seq), 'seqs increase');
  const deployed = l.find((e) => e.type === 'app.deployed')!;
  assert.deepEqual([deployed.app, deployed.revision, deployed.data.cause, deployed.data.newRevision], [app, 1, 'api', true]);
  assert.match(String(deployed.data.by), /admin/, 'who deployed it');
  const ready = l.find((e) => e.type === 'replica.ready')!;
  assert.deepEqual([ready.node, ready.revision, typeof ready.data.engineMs], [PROC, 1, 'number']);
  assert.ok(ready.replica?.startsWith(`${app}-`));
  // the human table, and the node filter
  const table = await cli(['events', '--app', app], env);
  assert.match(table.stdout, /^TIME +SEQ +TYPE +APP +NODE +MESSAGE/);
  assert.match(table.stdout, new RegExp(`replica\\.ready +${app} +${PROC} +${ready.replica} on ${PROC} is ready`));
  assert.ok((await log('--node', PROC)).some((e) => e.seq === ready.seq));
  assert.ok(!(await log('--node', AWAY)).some((e) => e.app === app));
});

test('a replica that crashes gives replica.exited and replica.restarted, each with its reason', async () => {
  const app = `ev-crash-${tag}`;
  await deploy({ name: app, command: ['node', '-e', 'setTimeout(() => process.exit(3), 300)'], placement: { nodes: [PROC] } }, false);
  const l = await until('restarted', (e) => e.type === 'replica.restarted', ['--app', app]);
  assert.ok(inOrder(l, ['replica.started', 'replica.exited', 'replica.restarted']), l.map((e) => e.type).join(' '));
  const exited = l.find((e) => e.type === 'replica.exited')!;
  assert.equal(exited.reason!.code, 'E_EXITED');
  assert.match(exited.reason!.message, /exit code 3/);
  const restarted = l.find((e) => e.type === 'replica.restarted')!;
  assert.deepEqual([restarted.reason!.code, restarted.data.restarts, restarted.replica], ['E_EXITED', 1, exited.replica]);
  assert.match(restarted.message, /restarted \(1 so far\): .*exit code 3/);
  await cli(['rm', app], env);
});

test('an OOM-killed container gives replica.oom with the memory limit', { skip: noEngine }, async () => {
  const app = `ev-hog-${tag}`;
  await deploy({
    // a container's own command (an app's top-level `command` is the process runtime's)
    name: app, containers: [{ name: 'hog', image: EXAMPLE_IMAGE, command: ['node', '-e', 'const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1))'] }],
    resources: { memoryMiB: 32 }, restart: { policy: 'never' }, placement: { nodes: [POD] },
  }, false);
  const l = await until('oom', (e) => e.type === 'replica.oom', ['--app', app], 60_000);
  const oom = l.find((e) => e.type === 'replica.oom')!;
  assert.equal(oom.node, POD);
  assert.equal(oom.reason!.code, 'E_EXITED');
  assert.match(oom.reason!.message, /OOMKilled at the 32 MiB memory limit/);
  assert.ok(!l.some((e) => e.type === 'replica.exited'), 'an OOM kill is told as one, not as a plain exit');
  await cli(['rm', app], env);
});

test('an image the node lacks gives pull.started, then pull.finished with the bytes pulled', { skip: noEngine || !registry ? 'needs a container engine and OUTPOST_TEST_REGISTRY' : false }, async () => {
  // a layer no node has: 1 MiB of random bytes on top of the example image
  const ctx = tmpDir();
  fs.writeFileSync(path.join(ctx, 'blob'), randomBytes(1024 * 1024));
  fs.writeFileSync(path.join(ctx, 'Containerfile'), `FROM ${EXAMPLE_IMAGE}\nCOPY blob /blob\n`);
  const ref = `${registry}/outpost-events-pull:${tag}`;
  const app = `ev-pull-${tag}`;
  try {
    execFileSync('podman', ['build', '--pull=never', '-q', '-t', ref, ctx], { stdio: 'ignore' });
    execFileSync('podman', ['push', '--tls-verify=false', ref], { stdio: 'ignore' });
    execFileSync('podman', ['rmi', ref], { stdio: 'ignore' });
    await deploy({ name: app, image: ref, ports: [{ name: 'http', container: 5000 }], health: { http: '/healthz', port: 'http' }, placement: { nodes: [POD] } });
    const l = await until('ready', (e) => e.type === 'replica.ready', ['--app', app], 60_000);
    assert.ok(inOrder(l, ['replica.scheduled', 'pull.started', 'pull.finished', 'replica.started', 'replica.ready']), l.map((e) => e.type).join(' '));
    const fin = l.find((e) => e.type === 'pull.finished')!;
    assert.equal(fin.data.image, ref);
    assert.ok(Number(fin.data.bytes) >= 1024 * 1024, `bytes ${fin.data.bytes}`);
    assert.ok(Number(fin.data.ms) > 0);
  } finally {
    await cli(['rm', app], env);
    await waitFor('test image removed', () => {
      try { execFileSync('podman', ['rmi', '-f', ref], { stdio: 'ignore' }); } catch { /* in use, or gone */ }
      return !execFileSync('podman', ['images', '-q', ref]).toString().trim();
    }, 15_000, 250).catch(() => console.log(`# could not remove ${ref}`));
  }
});

test('a node whose agent is killed gives node.unreachable, then node.lost; back, node.returned', async () => {
  await workloadsGone(awayDir);
  away.child.kill('SIGKILL');
  await away.exited;
  const l = await until('lost', (e) => e.type === 'node.lost', ['--node', AWAY]);
  assert.ok(inOrder(l, ['node.joined', 'node.unreachable', 'node.lost']), l.map((e) => e.type).join(' '));
  away = start(AWAY, awayDir, 'process');
  const back = await until('returned', (e) => e.type === 'node.returned', ['--node', AWAY]);
  const ret = back.find((e) => e.type === 'node.returned')!;
  assert.ok(ret.seq > back.find((e) => e.type === 'node.lost')!.seq);
  assert.equal(ret.data.lost, true, 'it says the node had been lost');
  assert.ok(Number(ret.data.awayMs) > 0);
});

/** Server-sent events of one request: the events as they come, and the response to end it. */
function stream(q: string, headers: Record<string, string> = {}) {
  const got: OutpostEvent[] = [];
  const ids: number[] = [];
  let res: import('node:http').IncomingMessage | null = null;
  const req = https.get(`${cp.url}/v1/events/stream${q}`, { ca: cp.caPem!, headers: { authorization: `Bearer ${cp.adminToken}`, ...headers } }, (r) => {
    res = r;
    let buf = '';
    r.setEncoding('utf8');
    r.on('data', (d: string) => {
      buf += d;
      let cut: number;
      while ((cut = buf.indexOf('\n\n')) >= 0) {
        const block = buf.slice(0, cut);
        buf = buf.slice(cut + 2);
        const data = /^data: (.*)$/m.exec(block)?.[1];
        const id = /^id: (\d+)$/m.exec(block)?.[1];
        if (data) got.push(JSON.parse(data) as OutpostEvent);
        if (id) ids.push(Number(id));
      }
    });
  });
  req.on('error', () => {});
  return { got, ids, status: () => res?.statusCode, close: () => req.destroy() };
}

test('--follow prints a new event as it is committed; a stream dropped and resumed from its last seq misses none and repeats none', async () => {
  const app = `ev-live-${tag}`;
  const before = cp.cp.events.following;
  const child = spawn(process.execPath, [CLI, 'events', '--follow', '--json', '--app', app], { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => { out += d; });
  child.stderr.on('data', (d) => { err += d; });
  const printed = () => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as OutpostEvent);
  try {
    await waitFor('the CLI follows', () => cp.cp.events.following > before);
    // a raw stream too, to be dropped by the client and resumed with Last-Event-ID
    const raw = stream(`?app=${app}`);
    await waitFor('the raw stream follows', () => cp.cp.events.following > before + 1);
    await deploy({ name: app, command: idle, placement: { nodes: [PROC] } });
    await waitFor('the deploy, live', () => printed().some((e) => e.type === 'replica.ready'), 20_000);
    assert.equal(printed()[0]!.type, 'app.deployed', 'nothing from before the follow started');
    await waitFor('the raw stream got it too', () => raw.got.some((e) => e.type === 'replica.ready'));
    // the client drops its stream; more happens meanwhile; it comes back with the last seq it got
    raw.close();
    const lastSeen = raw.ids[raw.ids.length - 1]!;
    // the control plane drops the CLI's stream (as an instance that stops would): the CLI comes back by itself
    cp.cp.events.close();
    await deploy({ name: app, command: idle, replicas: 2, placement: { nodes: [PROC, AWAY] } });
    const resumed = stream(`?app=${app}`, { 'last-event-id': String(lastSeen) });
    const logged = await until('the second replica ready', (e) => e.type === 'replica.ready' && e.seq > lastSeen, ['--app', app]);
    const missed = logged.filter((e) => e.seq > lastSeen).map((e) => e.seq);
    assert.ok(missed.length >= 3, `events while away: ${missed}`);
    await waitFor('the resumed stream caught up', () => resumed.got.length >= missed.length);
    assert.deepEqual(resumed.got.map((e) => e.seq), missed, 'exactly what was missed, in order');
    resumed.close();
    await waitFor('the CLI reconnected and caught up', () => printed().filter((e) => e.type === 'replica.ready').length === 2, 20_000);
    assert.deepEqual(printed().map((e) => e.seq), logged.map((e) => e.seq), 'the CLI printed every event of the app once, in order');
    assert.match(err, /reconnecting/);
  } finally {
    child.kill();
  }
});

test('a bad since, limit, filter or Last-Event-ID is E_INVALID with its path, from the API and the CLI', async () => {
  for (const [q, p] of [['?since=yesterday', 'since'], ['?since=-5', 'since'], ['?since=2024-05-01', 'since'], ['?limit=0.5', 'limit'], ['?limit=10001', 'limit'], ['?app=Not_A_Name', 'app'], ['?node=a%20b', 'node'], ['?newest=maybe', 'newest']]) {
    for (const route of ['/v1/events', '/v1/events/stream']) {
      if (route.endsWith('stream') && (p === 'limit' || p === 'newest')) continue;
      const r = await call(cp, 'GET', `${route}${q}`, { token: cp.adminToken });
      assert.equal(r.status, 400, `${route}${q}`);
      assert.deepEqual([r.body.error!.code, r.body.error!.path], ['E_INVALID', p], `${route}${q}`);
    }
  }
  const bad = await call(cp, 'GET', '/v1/events/stream', { token: cp.adminToken, headers: { 'last-event-id': 'abc' } });
  assert.deepEqual([bad.status, bad.body.error!.path], [400, 'Last-Event-ID']);
  for (const args of [['events', '--since', 'yesterday'], ['events', '--follow', '--since', 'last tuesday']]) {
    const r = await cli(args, env);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /E_INVALID/);
    assert.match(r.stderr, /since/);
    assert.equal(r.stdout, '');
  }
  // a time and a duration are fine; limit 0 answers only where the log is
  const page = (await call(cp, 'GET', '/v1/events?limit=0', { token: cp.adminToken })).body as unknown as EventsAnswer;
  assert.deepEqual([page.events, page.more], [[], false]);
  assert.ok(page.last > 0);
  assert.equal((await call(cp, 'GET', `/v1/events?since=${encodeURIComponent(new Date(Date.now() - 60_000).toISOString())}`, { token: cp.adminToken })).status, 200);
  assert.equal((await cli(['events', '--since', '90s'], env)).code, 0);
  // the newest page (the dashboard's first view): the last events, in seq order, ending at the newest
  const newest = await cp.client.events({ since: '1h', limit: 2, newest: true });
  const all = await cp.client.events({ since: '1h', limit: 10_000 });
  // (what was committed between the two reads is after the newest page's last)
  assert.deepEqual(newest.events.map((e) => e.seq), all.events.filter((e) => e.seq <= newest.last).slice(-2).map((e) => e.seq));
  assert.equal(newest.events.at(-1)!.seq, newest.last);
  assert.equal(newest.more, false);
});

test('a secret\'s new value rolls its app with an event that names the secret and version, and no event holds the value', async () => {
  const value = `hunter2-${randomBytes(8).toString('hex')}`;
  const name = `ev-pw-${tag}`;
  const app = `ev-vault-${tag}`;
  assert.equal((await cli(['secret', 'set', name, '--from-literal', `${value}-v1`], env)).code, 0);
  await deploy({ name: app, command: ['sh', '-c', 'echo "$PW"; exec sleep 600'], secrets: [{ name, env: 'PW' }], placement: { nodes: [PROC] } });
  const r = await cli(['secret', 'set', name], env, `${value}-v2`);
  assert.equal(r.code, 0, r.stderr);
  const l = await until('the redeploy', (e) => e.type === 'app.deployed' && e.revision === 2, ['--app', app]);
  const redeploy = l.find((e) => e.revision === 2 && e.type === 'app.deployed')!;
  assert.equal(redeploy.data.cause, `secret ${name} version 2`);
  await until('its new replica ready', (e) => e.type === 'replica.ready' && e.revision === 2, ['--app', app]);
  const everything = JSON.stringify((await cp.client.events({ since: '0', limit: 10_000 })).events);
  for (const v of [value, Buffer.from(`${value}-v1`).toString('base64'), Buffer.from(`${value}-v2`).toString('base64')]) {
    assert.ok(!everything.includes(v), 'no event holds the secret\'s value, plain or base64');
  }
  await cli(['rm', app], env);
  await cli(['secret', 'rm', name], env);
});

test('event:read: a viewer reads the log; a token scoped to some apps sees theirs and the nodes\', no other app\'s; a device admin none', async () => {
  const mint = async (args: string[]) => {
    const r = await cli(['token', 'create', ...args, '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as CreatedApiToken).token;
  };
  const viewer = await mint(['--role', 'viewer', '--name', 'ev-viewer']);
  const scoped = await mint(['--role', 'viewer', '--name', 'ev-web-only', '--apps', `ev-web-${tag}`]);
  const devices = await mint(['--role', 'device-admin', '--name', 'ev-devices']);
  const as = async (token: string) => ((await call(cp, 'GET', '/v1/events?since=0&limit=10000', { token })).body as unknown as EventsAnswer).events;
  const all = await as(viewer);
  assert.ok(all.some((e) => e.app === `ev-crash-${tag}`));
  const mine = await as(scoped);
  assert.ok(mine.some((e) => e.app === `ev-web-${tag}`));
  assert.ok(mine.some((e) => e.type === 'node.joined'), 'node events have no app: a scoped token sees them');
  assert.ok(mine.every((e) => e.app === null || e.app === `ev-web-${tag}`));
  const refused = await call(cp, 'GET', '/v1/events', { token: devices });
  assert.equal(refused.status, 403);
  assert.match(refused.body.error!.message, /event:read/);
});

test('retention: events older than it are compacted away (the newest stays), and seqs go on from where they were', async () => {
  const cp2 = await controlPlane(tmpDir(), { eventRetentionMs: 1500, compactMs: 200 });
  const dir = tmpDir();
  const a = spawnAgent(cp2, ['--name', `ev-ret-${tag}`, '--runtime', 'process', '--data-dir', dir, '--no-hub']);
  try {
    const first = await waitFor('node.joined', async () => (await cp2.client.events({ since: '0' })).events.find((e) => e.type === 'node.joined'), 30_000);
    // the only event: it is the newest, and stays however old it gets
    await new Promise((r) => setTimeout(r, 2000));
    assert.deepEqual((await cp2.client.events({ since: '0' })).events.map((e) => e.seq), [first.seq]);
    // a second one: the first is older than the retention, and goes at the next compaction
    a.child.kill('SIGKILL');
    const second = await waitFor('node.unreachable', async () => (await cp2.client.events({ since: '0' })).events.find((e) => e.type === 'node.unreachable'), 30_000);
    await waitFor('node.joined compacted', async () => (await cp2.client.events({ since: '0' })).events.every((e) => e.seq !== first.seq), 30_000, 100);
    const left = (await cp2.client.events({ since: '0' })).events;
    assert.ok(left.length >= 1 && left.every((e) => e.seq >= second.seq), `left: ${left.map((e) => `${e.seq} ${e.type}`)}`);
  } finally {
    a.child.kill('SIGKILL');
    await cp2.close();
  }
});

test('docs/observability.md describes every event type', () => {
  const doc = fs.readFileSync(path.join(ROOT, 'docs/observability.md'), 'utf8');
  for (const type of Object.keys(EVENT_TYPES)) assert.ok(doc.includes(`| \`${type}\` |`), `no row for ${type}`);
});
