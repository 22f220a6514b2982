// What a node was sent, kept as a shared snapshot and its own changes on
// top: against a plain map of entries after every one of many changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SentTable, snapshot, type Entry } from './routes-sent.js';

/** a small deterministic generator (the same sequence every run) */
function lcg(seed: number): () => number {
  let x = seed;
  return () => ((x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
}

function entry(app: string, replicas: string[]): Entry {
  return { route: { app, port: 1, protocol: 'http', drainMs: 0, endpoints: replicas.map((r) => ({ replica: r, node: 'n', endpoint: 'http://n:1' })) }, key: `${app} ${replicas.join(',')}` };
}

test('a sent table answers its entries, the replicas it holds and those a change drops, as a plain copy would, across folds', () => {
  const rnd = lcg(7);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const apps = Array.from({ length: 12 }, (_, i) => `app${i}`);
  // replica ids carry their app's name: a replica is in one app's entry only
  const some = (app: string) => Array.from({ length: Math.floor(rnd() * 4) }, () => `${app}-${Math.floor(rnd() * 6)}`).filter((r, i, xs) => xs.indexOf(r) === i);
  const model = new Map<string, Entry>(apps.slice(0, 8).map((a) => [a, entry(a, some(a))]));
  const t = new SentTable(snapshot(model));
  for (let i = 0; i < 400; i++) {
    const app = pick(apps);
    const cur = rnd() < 0.2 ? undefined : entry(app, some(app));
    const before = new Set(model.get(app)?.route.endpoints.map((e) => e.replica));
    const gone = t.set(app, cur);
    const now = new Set(cur?.route.endpoints.map((e) => e.replica));
    assert.deepEqual(gone.sort(), [...before].filter((r) => !now.has(r)).sort(), `change ${i}: what it drops`);
    if (cur) model.set(app, cur); else model.delete(app);
    assert.deepEqual([...t.apps()].sort(), [...model.keys()].sort());
    for (const a of apps) assert.equal(t.get(a), model.get(a));
    const held = new Set([...model.values()].flatMap((e) => e.route.endpoints.map((x) => x.replica)));
    assert.deepEqual([...t.replicas()].sort(), [...held].sort(), `change ${i}: what it holds`);
    for (const a of apps) for (let k = 0; k < 6; k++) assert.equal(t.holds(`${a}-${k}`), held.has(`${a}-${k}`));
  }
});
