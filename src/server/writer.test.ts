// The writer: group commits, and an operation decided again when its commit
// loses a race to another writer of the same store.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { openSqliteStore } from './store/sqlite.js';
import { State } from './state.js';
import { Writer } from './writer.js';
import type { SiteRecord } from '../core/types.js';

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
