// The writer: group commits, and an operation decided again when its commit
// loses a race to another writer of the same store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { openSqliteStore } from './store/sqlite.js';
import { State } from './state.js';
import { Writer } from './writer.js';
import type { SiteRecord } from '../core/types.js';
import { OutpostError } from '../core/errors.js';
import { StoreFenced } from './store/store.js';

const log = pino({ level: 'silent' });
const site = (name: string, createdAt: number): SiteRecord => ({ name, probe: 'x:1', createdAt });

test('everything decided in one turn of the event loop is one commit', async () => {
  const store = openSqliteStore(':memory:');
  const w = new Writer(store, await State.load(store), log);
  const done = Array.from({ length: 200 }, (_, i) => w.run(() => ({ changes: [{ kind: 'sites', key: `s${i}`, doc: site(`s${i}`, i) }], result: i })));
  assert.equal(w.state.count('sites'), 200, 'the state shows the changes at once');
  assert.deepEqual(await Promise.all(done), Array.from({ length: 200 }, (_, i) => i));
  assert.equal(w.stats.commits, 1);
  assert.equal((await store.list('sites')).length, 200);
});

test('an operation that loses a race to another writer is decided again from what the store holds', async () => {
  const store = openSqliteStore(':memory:');
  await store.commit([{ kind: 'sites', key: 'line', doc: site('line', 1) }]);
  const w = new Writer(store, await State.load(store), log);
  // another control-plane instance bumps the record behind this one's back
  await store.commit([{ kind: 'sites', key: 'line', doc: site('line', 10) }]);
  assert.equal(w.state.site('line')!.createdAt, 1, 'this instance has not seen it');
  const seen: number[] = [];
  const r = await w.run((s) => {
    const cur = s.site('line')!;
    seen.push(cur.createdAt);
    return { changes: [{ kind: 'sites', key: 'line', doc: { ...cur, createdAt: cur.createdAt + 1 } }], result: cur.createdAt + 1 };
  });
  assert.deepEqual(seen, [1, 10], 'decided once on stale state, again on fresh');
  assert.equal(r, 11);
  assert.equal((await store.get<SiteRecord>('sites', 'line'))!.doc.createdAt, 11, 'the other writer\'s change is not lost');
  assert.equal(w.stats.conflicts, 1);
});

test('commit listeners hear of each committed change once, with what it replaced: a retried operation\'s last decision, nothing of a failed commit', async () => {
  const store = openSqliteStore(':memory:');
  await store.commit([{ kind: 'sites', key: 'line', doc: site('line', 1) }]);
  const w = new Writer(store, await State.load(store), log);
  const heard: { key: string; prev: number | null; doc: number | null }[] = [];
  w.onCommit((changes) => { for (const c of changes) heard.push({ key: c.key, prev: (c.prev as SiteRecord | null)?.createdAt ?? null, doc: (c.doc as SiteRecord | null)?.createdAt ?? null }); });
  // another instance's write: this operation loses its first commit and is decided again
  await store.commit([{ kind: 'sites', key: 'line', doc: site('line', 10) }]);
  await w.run((s) => ({ changes: [{ kind: 'sites', key: 'line', doc: { ...s.site('line')!, createdAt: s.site('line')!.createdAt + 1 } }], result: null }));
  assert.deepEqual(heard, [{ key: 'line', prev: 10, doc: 11 }]);
  const real = store.commit;
  store.commit = async () => { throw new Error('disk I/O error'); };
  await assert.rejects(w.run(() => ({ changes: [{ kind: 'sites', key: 'gone', doc: site('gone', 1) }], result: null })));
  store.commit = real;
  await w.run(() => ({ changes: [{ kind: 'sites', key: 'line', doc: null }], result: null }));
  assert.deepEqual(heard.slice(1), [{ key: 'line', prev: 11, doc: null }]);
});

test('a commit that fails drops its changes from the state too, and says so', async () => {
  const store = openSqliteStore(':memory:');
  const w = new Writer(store, await State.load(store), log);
  const real = store.commit;
  store.commit = async () => { throw new Error('disk I/O error'); };
  const p = w.run(() => ({ changes: [{ kind: 'sites', key: 'line', doc: site('line', 1) }], result: 1 }));
  assert.ok(w.state.site('line'));
  await assert.rejects(p, /disk I\/O error/);
  assert.equal(w.state.site('line'), undefined, 'the state matches the store again');
  store.commit = real;
  assert.equal(await w.run(() => ({ changes: [{ kind: 'sites', key: 'line', doc: site('line', 2) }], result: 2 })), 2);
});

test('others\' changes learnt from the store replace older copies, wait for writes in flight, and a reset removes what is gone', async () => {
  const store = openSqliteStore(':memory:');
  await store.commit([{ kind: 'sites', key: 'a', doc: site('a', 1) }, { kind: 'sites', key: 'b', doc: site('b', 1) }]);
  const w = new Writer(store, await State.load(store), log);
  const heard: string[] = [];
  w.subscribe((l) => heard.push(...l.map((x) => `${x.key}:${(x.prev as SiteRecord | null)?.createdAt ?? '-'}>${(x.doc as SiteRecord | null)?.createdAt ?? '-'}`)));
  w.learn([{ kind: 'sites', key: 'a', rev: 5, doc: site('a', 5) }, { kind: 'sites', key: 'a', rev: 3, doc: site('a', 3) }, { kind: 'sites', key: 'c', rev: 4, doc: site('c', 4) }]);
  assert.deepEqual(heard.splice(0), ['a:1>5', 'c:->4'], 'the newest of each, once');
  w.learn([{ kind: 'sites', key: 'a', rev: 5, doc: site('a', 5) }]);
  assert.deepEqual(heard, [], 'a revision already held is not news');
  // a write of ours in flight on b: another's change to b waits for it to settle
  const mine = w.run((s) => ({ changes: [{ kind: 'sites', key: 'b', doc: { ...s.site('b')!, createdAt: 2 } }], result: 0 }));
  w.learn([{ kind: 'sites', key: 'b', rev: 99, doc: site('b', 99) }]);
  assert.equal(w.state.site('b')!.createdAt, 2, 'our optimistic copy stands while the commit is in flight');
  await mine;
  assert.equal(w.state.site('b')!.createdAt, 99, 'then the newer change applies');
  assert.deepEqual(heard.splice(0), ['b:2>99']);
  // a reset: everything the store holds; c is not in it any more
  w.learn([{ kind: 'sites', key: 'a', rev: 5, doc: site('a', 5) }, { kind: 'sites', key: 'b', rev: 99, doc: site('b', 99) }], true);
  assert.equal(w.state.site('c'), undefined);
  assert.deepEqual(heard, ['c:4>-']);
});

test('a leader\'s decision is refused without the lease, and a fenced commit that fails is E_NOT_LEADER while the rest commit', async () => {
  const store = openSqliteStore(':memory:');
  let fence: { holder: string; epoch: number } | null = null;
  const w = new Writer(store, await State.load(store), log, () => fence);
  const op = (key: string) => () => ({ changes: [{ kind: 'sites' as const, key, doc: site(key, 1) }], result: key });
  await assert.rejects(w.run(op('x'), { leader: true }), (e: OutpostError) => e.code === 'E_NOT_LEADER');
  assert.equal(w.state.site('x'), undefined, 'nothing applied');
  // the store refuses the fence (another instance took the lease): the leader's op fails, the other one in the batch commits
  fence = { holder: 'me', epoch: 1 };
  const real = store.commit;
  store.commit = async (writes, samples, f) => { if (f) throw new StoreFenced(f); return real(writes, samples); };
  const [led, plain] = await Promise.allSettled([w.run(op('y'), { leader: true }), w.run(op('z'))]);
  assert.equal(led.status, 'rejected');
  assert.equal(((led as PromiseRejectedResult).reason as OutpostError).code, 'E_NOT_LEADER');
  assert.deepEqual(plain, { status: 'fulfilled', value: 'z' });
  assert.equal(w.state.site('y'), undefined);
  assert.deepEqual((await store.list('sites')).map((r) => r.key), ['z']);
});

test('a record created and then deleted while its creation is still being committed: the deletion expects the creation\'s revision', async () => {
  const store = openSqliteStore(':memory:');
  // a slow store (PostgreSQL's round trip), the same contract
  const slow = { ...store, commit: async (...a: Parameters<typeof store.commit>) => { await new Promise((r) => setTimeout(r, 20)); return store.commit(...a); } };
  const w = new Writer(slow, await State.load(store), log);
  const made = w.run(() => ({ changes: [{ kind: 'sites', key: 'tmp', doc: site('tmp', 1) }], result: 'made' }));
  await new Promise((r) => setImmediate(r)); // its commit is in flight
  const gone = w.run(() => ({ changes: [{ kind: 'sites', key: 'tmp', doc: null }], result: 'gone' }));
  assert.deepEqual(await Promise.all([made, gone]), ['made', 'gone']);
  assert.equal(await store.get('sites', 'tmp'), undefined);
  assert.equal(w.stats.conflicts, 0, 'no race lost against itself');
});

test('an operation\'s events ride its commit: a lost race commits only the events of its second decision, and a failed commit none', async () => {
  const store = openSqliteStore(':memory:');
  await store.commit([{ kind: 'sites', key: 'line', doc: site('line', 1) }]);
  let heard = 0;
  const w = new Writer(store, await State.load(store), log, () => null, async () => {}, () => heard++);
  await store.commit([{ kind: 'sites', key: 'line', doc: site('line', 10) }]);
  const op = (s: State) => {
    const cur = s.site('line')!;
    const ev = { type: 'app.deployed' as const, at: 1, app: null, node: null, replica: null, revision: null, message: `from ${cur.createdAt}`, reason: null, data: {} };
    return { changes: [{ kind: 'sites' as const, key: 'line', doc: { ...cur, createdAt: cur.createdAt + 1 } }], events: [ev], result: 0 };
  };
  await w.run(op);
  assert.deepEqual((await store.listEvents()).events.map((e) => e.message), ['from 10'], 'the stale decision\'s event is not in the log');
  assert.equal(heard, 1, 'followers were woken once');
  // events alone are a commit of their own
  const { seq: _seq, ...first } = (await store.listEvents()).events[0]!;
  await w.run(() => ({ changes: [], events: [{ ...first, message: 'alone' }], result: 0 }));
  const real = store.commit;
  store.commit = async () => { throw new Error('disk I/O error'); };
  await assert.rejects(w.run(op));
  store.commit = real;
  assert.deepEqual((await store.listEvents()).events.map((e) => e.message), ['from 10', 'alone']);
});
