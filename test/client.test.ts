// The typed API client's pages, and the CLI's lists printed page by page: against
// a small server that pages as the API's contract says (limit, after,
// x-next-after; src/contract/api.ts), and against today's control plane, which
// answers a list whole.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { spawn } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import { ApiClient, NEXT_AFTER } from '../src/contract/client.js';
import type { AppView, NodeRecord, ReplicaRecord } from '../src/contract/api.js';
import { table } from '../src/cli/output.js';
import { CLI, ROOT, cli, controlPlane } from './helpers.js';

const node = (i: number): NodeRecord => ({
  name: `node-${String(i).padStart(3, '0')}`, hostname: 'h', arch: 'amd64', cpus: 2, memoryMiB: 2048, labels: { zone: 'z' }, site: i % 2 ? 'a' : null,
  runtime: 'process', address: '127.0.0.1', images: [], layers: [], imageLayers: {}, agentVersion: '0', state: i % 3 ? 'ready' : 'unreachable',
  lastSeen: 0, timings: { containerMs: null, engineMs: null, bandwidthMbps: null, samples: 0 }, rttMs: { a: i },
});
// two and a half hours ago: `outpost apps` shows "2h" for the next half hour
const UPDATED = Date.now() - 2.5 * 3_600_000;
const app = (i: number) => ({ name: `app-${String(i).padStart(3, '0')}`, image: 'x:1', command: null, replicas: 2, running: 1, specHash: 'h', revision: 1, rollout: null, history: [], spec: {}, createdAt: 0, updatedAt: UPDATED }) as unknown as AppView;
const replica = (i: number): ReplicaRecord => ({
  id: `app-${String(i % 4).padStart(3, '0')}-${String(i).padStart(8, '0')}`, app: `app-${String(i % 4).padStart(3, '0')}`, node: 'node-001', specHash: 'h', state: 'running',
  endpoint: 'http://127.0.0.1:1', restarts: 0, measured: { imageMs: 0, containerMs: 10, engineMs: 100 }, predicted: { imageMs: 0, containerMs: 10, engineMs: 90, deployMs: 100 },
  progress: null, error: null, createdAt: 0, updatedAt: 0,
});

const data: Record<string, { key: string; items: Record<string, unknown>[] }> = {
  '/v1/nodes': { key: 'name', items: Array.from({ length: 23 }, (_, i) => node(i)) as unknown as Record<string, unknown>[] },
  '/v1/apps': { key: 'name', items: Array.from({ length: 17 }, (_, i) => app(i)) as unknown as Record<string, unknown>[] },
  '/v1/replicas': { key: 'id', items: Array.from({ length: 30 }, (_, i) => replica(i)).sort((a, b) => a.id.localeCompare(b.id)) as unknown as Record<string, unknown>[] },
};

/**
 * A server that pages as the contract says, 7 items at most a page whatever
 * the limit (a page may be shorter than asked). `hold` keeps the answer to a
 * request that asks for a page after the first until it resolves.
 */
async function pagingServer(o: { hold?: Promise<void>; sameNext?: boolean } = {}) {
  const seen: string[] = [];
  const server = http.createServer((req, res) => {
    const url = new URL(req.url!, 'http://x');
    seen.push(url.pathname + url.search);
    const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    const own = /^\/v1\/apps\/([^/]+)\/replicas$/.exec(url.pathname);
    if (own) {
      const name = decodeURIComponent(own[1]!);
      if (!data['/v1/apps']!.items.some((a) => a.name === name)) return send(404, { error: { code: 'E_NOT_FOUND', message: `no app named "${name}"` } });
      return send(200, data['/v1/replicas']!.items.filter((r) => r.app === name));
    }
    const d = data[url.pathname];
    if (!d) return send(404, { error: { code: 'E_NOT_FOUND', message: 'no route' } });
    const q = Object.fromEntries(url.searchParams);
    let items = d.items.filter((it) => Object.entries(q).every(([k, v]) => k === 'limit' || k === 'after' || String(it[k]) === v));
    if (q.limit === undefined) return send(200, items);
    if (q.after !== undefined) items = items.filter((it) => String(it[d.key]) > q.after!);
    const page = items.slice(0, Math.min(Number(q.limit), 7));
    const more = items.length > page.length;
    const next = o.sameNext ? String(q.after ?? page[page.length - 1]![d.key]) : String(page[page.length - 1]?.[d.key]);
    const answer = () => send(200, page, more ? { [NEXT_AFTER]: next } : {});
    if (q.after !== undefined && o.hold) void o.hold.then(answer);
    else answer();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { url, seen, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

const cp = await controlPlane();
after(() => cp.close());

test('pages follows x-next-after to the last page, with the filters on every request', async () => {
  const s = await pagingServer();
  try {
    const c = new ApiClient(s.url, 't');
    const pages: ReplicaRecord[][] = [];
    for await (const p of c.pages('/v1/replicas', { app: 'app-001' }, 5)) pages.push(p);
    const want = data['/v1/replicas']!.items.filter((r) => r.app === 'app-001');
    assert.deepEqual(pages.map((p) => p.length), [5, 3], 'pages of at most the page size');
    assert.deepEqual(pages.flat(), want);
    assert.deepEqual(s.seen, ['/v1/replicas?app=app-001&limit=5', `/v1/replicas?app=app-001&limit=5&after=${want[4]!.id}`]);
    assert.deepEqual(await c.listAll('/v1/nodes', { state: 'ready' }), data['/v1/nodes']!.items.filter((n) => n.state === 'ready'));
    const first = await c.page('/v1/apps', { limit: 3 });
    assert.deepEqual([first.items.length, first.next], [3, 'app-002']);
    const last = await c.page('/v1/apps', { limit: 3, after: 'app-015' });
    assert.deepEqual([last.items.map((a) => a.name), last.next], [['app-016'], null]);
    assert.equal((await c.nodes()).length, 23, 'without limit, the whole list');
  } finally {
    await s.close();
  }
});

test('a server that sends the same next page again is an error, not a loop', async () => {
  const s = await pagingServer({ sameNext: true });
  try {
    await assert.rejects(new ApiClient(s.url, 't').listAll('/v1/apps', {}, 2), (e: Error & { code?: string }) => e.code === 'E_INTERNAL' && /same next page/.test(e.message));
  } finally {
    await s.close();
  }
});

test('against the control plane, pages follows x-next-after page by page to the end', async () => {
  await cp.client.deploy({ name: 'pg-a', command: ['true'], replicas: 0 });
  await cp.client.deploy('name: pg-b\ncommand: ["true"]\nreplicas: 0\n');
  const pages: AppView[][] = [];
  for await (const p of cp.client.pages('/v1/apps', {}, 1)) pages.push(p);
  assert.deepEqual(pages.map((p) => p.map((a) => a.name)), [['pg-a'], ['pg-b']]);
  assert.deepEqual((await cp.client.page('/v1/apps', { limit: 1 })).next, 'pg-a');
  assert.deepEqual((await cp.client.page('/v1/apps', { limit: 1, after: 'pg-a' })).next, null, 'the last page has no next key');
  assert.deepEqual((await cp.client.page('/v1/nodes', { limit: 1 })), { items: [], next: null });
  assert.deepEqual(await cp.client.remove('pg-a'), { removed: [] });
  await cp.client.remove('pg-b');
  assert.deepEqual(await cp.client.healthz(), { ok: true });
});

test('outpost apps, nodes and replicas print every page, --json as one array byte for byte', async () => {
  const s = await pagingServer();
  try {
    const env = { OUTPOST_SERVER: s.url, OUTPOST_TOKEN: 't' };
    for (const [args, path, filter] of [[['apps'], '/v1/apps'], [['nodes'], '/v1/nodes'], [['replicas'], '/v1/replicas'], [['replicas', 'app-002'], '/v1/replicas', 'app-002']] as const) {
      const all = data[path]!.items.filter((r) => filter === undefined || r.app === filter);
      const j = await cli([...args, '--json'], env);
      assert.equal(j.code, 0, j.stderr);
      // one app's replicas also carry the routes they serve as measured: null from this server, which has no demand route
      const want = filter === undefined ? all : all.map((r) => ({ ...r, measuredRoutes: null }));
      assert.equal(j.stdout, JSON.stringify(want, null, 2) + '\n', `${args.join(' ')} --json`);
      const t = await cli([...args], env);
      assert.equal(t.code, 0, t.stderr);
      assert.equal(t.stdout.split('\n').length - 2, all.length, `${args.join(' ')}: a header and a row per item`);
    }
    // the names are all as wide: the table is the one table() prints for the whole list
    const t = await cli(['apps'], env);
    const apps = data['/v1/apps']!.items as unknown as AppView[];
    assert.equal(t.stdout, table(['NAME', 'READY', 'IMAGE / COMMAND', 'UPDATED'], apps.map((a) => [a.name, `${a.running}/${a.replicas}`, a.image, '2h'])) + '\n');
    assert.ok(s.seen.includes('/v1/apps?limit=1000&after=app-006'), 'the CLI asked page by page');
    // an app with no replica: its own route tells an empty list from an unknown app
    assert.deepEqual(JSON.parse((await cli(['replicas', 'app-009', '--json'], env)).stdout), []);
    const none = await cli(['replicas', 'nope'], env);
    assert.equal(none.code, 1);
    assert.equal(none.stdout, '');
    assert.match(none.stderr, /^error E_NOT_FOUND: no app named "nope"/);
  } finally {
    await s.close();
  }
});

test('the CLI prints the first page before the next one has come', async () => {
  let release!: () => void;
  const s = await pagingServer({ hold: new Promise<void>((r) => { release = r; }) });
  try {
    const child = spawn(process.execPath, [CLI, 'nodes', '--json'], { cwd: ROOT, env: { ...process.env, OUTPOST_SERVER: s.url, OUTPOST_TOKEN: 't' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const firstPage = new Promise<string>((resolve) => child.stdout.on('data', (d) => { out += d; if (out.includes('"node-006"')) resolve(out); }));
    const exited = new Promise<number | null>((r) => child.on('exit', r));
    const early = await Promise.race([firstPage, new Promise<null>((r) => setTimeout(() => r(null), 10_000))]);
    assert.ok(early !== null, 'no output while the second page was held');
    assert.ok(early.startsWith('[\n  {') && !early.includes('"node-007"'), 'the first page, and no more');
    release();
    assert.equal(await exited, 0);
    assert.equal(out, JSON.stringify(data['/v1/nodes']!.items, null, 2) + '\n');
  } finally {
    release();
    await s.close();
  }
});
