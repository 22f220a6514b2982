// The control plane's store of window results, on SQLite and on PostgreSQL:
// each (node, hub, seq) once, queries, pruning.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { StreamStore, type WindowStore } from './streams.js';
import { PgWindowStore } from './streams-pg.js';
import { openPostgresStore } from './store/postgres.js';
import { pgSkipReason, sharedPostgres } from './store/pgkit.js';

const skip = pgSkipReason() ?? undefined;
const cluster = skip ? null : await sharedPostgres();
after(() => cluster?.stop());

async function contract(s: WindowStore): Promise<void> {
  const w = (seq: number, start: number) => ({ seq, doc: { stream: 't', start, end: start + 1000, count: 3, mean: 2 } });
  assert.deepEqual(await s.add('n1', 'hub-a', [w(1, 0), w(2, 1000)], 5), [1, 2]);
  assert.deepEqual(await s.add('n1', 'hub-a', [w(2, 1000), w(3, 2000)], 6), [2, 3], 'the re-sent 2 is acknowledged');
  assert.deepEqual(await s.add('n1', 'hub-b', [w(1, 3000)], 7), [1], 'another hub id is another sequence');
  assert.deepEqual(await s.add('n1', 'hub-a', [{ seq: 9, doc: { stream: 't' } } as never, { seq: 1.5, doc: w(0, 0).doc }], 8), [], 'malformed items are not acknowledged');
  assert.deepEqual((await s.windows('t', { node: 'n1' })).map((x) => x.start), [0, 1000, 2000, 3000]);
  assert.deepEqual((await s.windows('t', { from: 1000, to: 3000 })).map((x) => [x.node, x.start, x.mean]), [['n1', 1000, 2], ['n1', 2000, 2]]);
  assert.deepEqual(await s.summary(), [{ node: 'n1', stream: 't', windows: 4, firstStart: 0, lastEnd: 4000 }]);
  assert.equal(await s.prune(2500), 2);
  assert.deepEqual((await s.windows('t', {})).map((x) => x.start), [2000, 3000]);
  await s.close();
}

test('SQLite: a re-sent result is acknowledged again and stored once; old results are pruned', () => contract(new StreamStore(':memory:')));

test('PostgreSQL: the same', { skip }, async () => {
  const store = await openPostgresStore(await cluster!.newDatabase());
  try { await contract(new PgWindowStore(store.pool)); } finally { await store.close(); }
});
