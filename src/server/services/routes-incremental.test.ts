// The route tables' incremental paths, against a real (in-memory) SQLite
// store: a change costs what it touches (one app, the vantages whose order
// moved), and what each node ends up holding, message after message, is
// always the table a from-scratch ranking gives.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validateApp } from '../../core/manifest.js';
import { appRoute, vantageOf, type AppRoute } from '../../core/routes.js';
import { reportStatus, type ControlPlane } from '../controlplane.js';
import { memoryControlPlane, nodeInfo, settle } from '../test-fixtures.js';

const NODES = [['a', 'sa'], ['b', 'sb'], ['c', 'sc'], ['a2', 'sa'], ['d', undefined]] as const;
const APPS = { web: ['a', 'b'], api: ['a', 'c'], jobs: ['b', 'c'], cache: ['c', 'a2'] } as const;

const exposed = (name: string, port: number, nodes: readonly string[], drainS = 5) =>
  validateApp({ name, command: ['x'], replicas: nodes.length, ports: [{ name: 'p', container: 80 }], expose: { port, drainS }, placement: { nodes: [...nodes] } });

/**
 * Sites sa, sb, sc; a and a2 at sa, b at sb, c at sc, d at none and
 * measuring none (it ranks from itself): four vantages. Four exposed apps of
 * two replicas, all ready; every agent connected.
 */
async function fleet(): Promise<ControlPlane> {
  const cp = await memoryControlPlane(() => 5_000_000);
  for (const s of ['sa', 'sb', 'sc']) await cp.sites.add(s, '127.0.0.1:1');
  for (const [n, site] of NODES) {
    await cp.nodes.register({ ...nodeInfo(n), ...(site ? { site } : {}) });
    cp.routes.connected(n);
  }
  await cp.sites.declare('a', { sa: 1, sb: 30, sc: 40 });
  await cp.sites.declare('a2', { sa: 2, sb: 35, sc: 45 });
  await cp.sites.declare('b', { sa: 30, sb: 1, sc: 20 });
  await cp.sites.declare('c', { sa: 40, sb: 20, sc: 1 });
  let port = 9000;
  for (const [app, nodes] of Object.entries(APPS)) await cp.apps.deploy(exposed(app, port++, nodes));
  await settle(cp);
  for (const r of cp.state.unordered('replicas')) await reportStatus(cp, r.node, [{ id: r.id, state: 'running', ready: true, endpoint: `http://${r.node}:80` }]);
  await settle(cp);
  await new Promise((r) => setImmediate(r));
  return cp;
}

/** What each node's proxy holds, applied message after message as the agent does; and the apps each message named. */
class Proxies {
  readonly held = new Map<string, Map<string, AppRoute>>();
  last = new Map<string, { apps: string[]; removed: string[] } | null>();

  constructor(private readonly cp: ControlPlane) {}

  /** every node takes its next message (the gateway's text, read back) */
  take(): void {
    for (const [n] of NODES) {
      const text = this.cp.routes.nextText(n);
      const t = text === null ? null : (JSON.parse(text) as { type: string; apps: AppRoute[]; removed: string[]; whole: boolean });
      this.last.set(n, t && { apps: t.apps.map((a) => a.app), removed: t.removed });
      if (!t) continue;
      assert.equal(t.type, 'routes');
      const m = t.whole ? new Map<string, AppRoute>() : this.held.get(n) ?? new Map<string, AppRoute>();
      for (const a of t.apps) m.set(a.app, a);
      for (const a of t.removed) m.delete(a);
      this.held.set(n, m);
    }
  }

  /** each node holds exactly the table ranked from scratch from its vantage */
  assertFresh(): void {
    const s = this.cp.state;
    const sites = new Set(s.list('sites').map((x) => x.name));
    for (const [n] of NODES) {
      const v = vantageOf(s.node(n)!, sites);
      const want = s.list('apps').filter((a) => a.spec.expose).map((a) => appRoute(v, a, s.appReplicas(a.name), (x) => s.node(x))).sort((x, y) => (x.app < y.app ? -1 : 1));
      assert.deepEqual([...this.held.get(n)!.values()].sort((x, y) => (x.app < y.app ? -1 : 1)), want, `${n} (${v}) holds a fresh ranking's table`);
    }
  }
}

async function change(cp: ControlPlane, f: () => Promise<unknown>): Promise<{ rankings: number; checks: number; told: string[] }> {
  const r0 = cp.routes.stats.rankings;
  const c0 = cp.routes.stats.checks;
  let told: string[] = [];
  cp.routes.subscribe((n) => { told = n; });
  await f();
  await settle(cp);
  await new Promise((r) => setImmediate(r));
  return { rankings: cp.routes.stats.rankings - r0, checks: cp.routes.stats.checks - c0, told: told.sort() };
}

test('a replica of one app turning unready ranks that app once per vantage and sends only its entry; every other entry is the same', async () => {
  const cp = await fleet();
  const p = new Proxies(cp);
  p.take();
  p.assertFresh();
  const before = new Map([...p.held].map(([n, m]) => [n, new Map(m)]));
  const victim = cp.state.appReplicas('web').find((r) => r.node === 'a')!;
  const c = await change(cp, () => reportStatus(cp, 'a', [{ id: victim.id, state: 'running', ready: false }]));
  assert.equal(c.rankings, 4, 'web, once for each of the four vantages (sa, sb, sc, node:d), not once per node');
  assert.equal(c.checks, 0);
  p.take();
  for (const [n] of NODES) {
    assert.deepEqual(p.last.get(n), { apps: ['web'], removed: [] }, `${n} is sent web's entry only`);
    for (const [app, e] of before.get(n)!) if (app !== 'web') assert.deepEqual(p.held.get(n)!.get(app), e, `${n}: ${app} untouched`);
    assert.ok(!p.held.get(n)!.get('web')!.endpoints.some((e) => e.replica === victim.id));
  }
  p.assertFresh();
});

test('an RTT report that keeps every order ranks nothing and sends nothing; one that moves an order re-ranks only that site\'s apps of that node', async () => {
  const cp = await fleet();
  const p = new Proxies(cp);
  p.take();
  // c's RTTs drift by a little everywhere: the order holds, each site vantage checks c's apps (api, jobs, cache)
  const keep = await change(cp, () => cp.sites.declare('c', { sa: 40.5, sb: 20.5, sc: 1.5 }));
  assert.equal(keep.rankings, 0, 'no app ranked again');
  assert.equal(keep.checks, 9, 'three apps on c, checked from the three site vantages whose RTT to c changed');
  p.take();
  for (const [n] of NODES) assert.equal(p.last.get(n), null, `${n} is sent nothing`);
  // only sa's RTT to c changes, and c becomes the nearest from sa for all three: sa's vantage re-ranks them; sb and sc do not even check
  const move = await change(cp, () => cp.sites.declare('c', { sa: 0.5 }));
  assert.equal(move.checks, 3, 'c\'s three apps, from sa only');
  assert.equal(move.rankings, 3, 'each of them reordered from sa');
  assert.deepEqual(move.told, ['a', 'a2'], 'only sa\'s nodes');
  p.take();
  assert.deepEqual(p.last.get('a'), { apps: ['api', 'cache', 'jobs'], removed: [] });
  for (const n of ['b', 'c', 'd']) assert.equal(p.last.get(n), null);
  assert.deepEqual(p.held.get('a')!.get('api')!.endpoints.map((e) => e.node), ['c', 'a']);
  p.assertFresh();
});

test('a stage cost reported for one app checks that app from every site, and nothing else', async () => {
  const cp = await fleet();
  const p = new Proxies(cp);
  p.take();
  // jobs on b costs 12 ms an item more: from sa, c (40 ms) is now nearer than b (30 + 12); from sb, b (1 + 12) stays nearer than c (20)
  const c = await change(cp, async () => { cp.nodes.setStages('b', 'jobs', { process: 12_000, storage: 0, compute: 0 }); });
  assert.equal(c.checks, 3, 'jobs from sa, sb, sc; web on b is not looked at');
  assert.equal(c.rankings, 1, 'only sa\'s order moved');
  p.take();
  for (const n of ['a', 'a2']) assert.deepEqual(p.last.get(n), { apps: ['jobs'], removed: [] });
  assert.deepEqual(p.held.get('a')!.get('jobs')!.endpoints.map((e) => e.node), ['c', 'b']);
  for (const n of ['b', 'c', 'd']) assert.equal(p.last.get(n), null, `${n}: jobs' order from its vantage holds`);
  p.assertFresh();
});

test('a deploy, a node moving site, a node lost and an app removed: each node is sent what changed and holds a fresh table', async () => {
  const cp = await fleet();
  const p = new Proxies(cp);
  p.take();
  await change(cp, () => cp.apps.deploy(exposed('more', 9100, ['b'])));
  p.take();
  for (const [n] of NODES) assert.deepEqual(p.last.get(n), { apps: ['more'], removed: [] }, `${n}: the new app's entry only (no replica ready yet)`);
  p.assertFresh();
  // d joins sb: it moves vantage and is sent the entries that differ, not its whole table
  await change(cp, () => cp.nodes.update('d', (n) => ({ ...n, site: 'sb' })));
  p.take();
  assert.ok(p.last.get('d')!.apps.length > 0 && p.last.get('d')!.apps.length < 5);
  p.assertFresh();
  await change(cp, () => cp.nodes.update('c', (n) => ({ ...n, state: 'unreachable' })));
  p.take();
  assert.deepEqual(p.last.get('a'), { apps: ['api', 'cache', 'jobs'], removed: [] }, 'the apps with a replica on c');
  p.assertFresh();
  await change(cp, () => cp.apps.deploy(exposed('web', 9000, ['a', 'b'], 7)));
  p.take();
  assert.deepEqual(p.last.get('b'), { apps: ['web'], removed: [] }, 'a new drain deadline: web\'s entry');
  await change(cp, () => cp.apps.remove('jobs'));
  p.take();
  for (const [n] of NODES) assert.deepEqual(p.last.get(n), { apps: [], removed: ['jobs'] });
  p.assertFresh();
  // a reconnect: the whole table again, the same as held
  const held = new Map(p.held.get('a2')!);
  cp.routes.connected('a2');
  p.take();
  assert.deepEqual(p.held.get('a2'), held);
});

test('the site list changing rebuilds every table, and each node is sent only the entries that differ from what it holds', async () => {
  const cp = await fleet();
  const p = new Proxies(cp);
  p.take();
  await change(cp, () => cp.sites.add('sd', '127.0.0.1:1'));
  p.take();
  for (const [n] of NODES) assert.equal(p.last.get(n), null, `${n}: a site no one is at changes no table`);
  // sc goes: c ranks from the site nearest it by its RTTs (sb, 20 ms), as b does
  await change(cp, () => cp.sites.remove('sc'));
  p.take();
  assert.deepEqual(p.last.get('c'), { apps: ['jobs'], removed: [] }, 'only jobs (b, c) ranks otherwise from sb than from sc: the other entries it holds are sent again to no one');
  for (const n of ['a', 'a2', 'b', 'd']) assert.equal(p.last.get(n), null, `${n}: no RTT to sc is left to rank by, and none was used from its vantage`);
  assert.deepEqual(p.held.get('c'), p.held.get('b'));
  p.assertFresh();
});

test('the text sent is the message as JSON.stringify writes it', async () => {
  const cp = await fleet();
  // a and a2 share a vantage: one takes the text, the other the objects
  const text = cp.routes.nextText('a')!;
  const obj = cp.routes.next('a2')!;
  assert.equal(text, JSON.stringify({ type: 'routes', ...obj }));
  const victim = cp.state.appReplicas('cache').find((r) => r.node === 'a2')!;
  await change(cp, () => reportStatus(cp, 'a2', [{ id: victim.id, state: 'running', ready: false }]));
  assert.equal(cp.routes.nextText('a'), JSON.stringify({ type: 'routes', ...cp.routes.next('a2')! }));
  await change(cp, () => cp.apps.remove('cache'));
  assert.equal(cp.routes.nextText('a'), JSON.stringify({ type: 'routes', ...cp.routes.next('a2')! }));
});
