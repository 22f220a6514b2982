// The hub store's positions: batch ids never go back (a bridge's cursor and
// count windows' replay positions are ids), even once the retention has
// emptied the table and across a reopening; and the retention keeps windows a
// bridge has not sent yet.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { HubStore } from './store.js';

const batch = (at: number) => ({ v: Float64Array.of(1, 2), ts: null, at });
const keepAll = { maxAgeMs: 1e12, maxBytes: 1 << 30 };

test('batch ids keep growing after the retention empties the table, and after a reopening', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-store-'));
  let s = new HubStore(dir);
  for (const at of [1000, 2000, 3000]) s.append('x', batch(at));
  assert.deepEqual(s.batchesAfter(0, 10).map((b) => b.id), [1, 2, 3]);
  assert.equal(s.retain({ maxAgeMs: 1, maxBytes: 1 << 30 }, 10_000).batches, 3, 'all three are older than the retention');
  assert.equal(s.batchesAfter(0, 10).length, 0);
  s.append('x', batch(20_000));
  assert.deepEqual(s.batchesAfter(3, 10).map((b) => b.id), [4], 'id 4, not 1 again');
  s.retain({ maxAgeMs: 1, maxBytes: 1 << 30 }, 30_000);
  s.close();
  s = new HubStore(dir);
  s.append('x', batch(40_000));
  assert.deepEqual(s.batchesAfter(4, 10).map((b) => b.id), [5], 'after a reopening on an empty table too');
  s.close();
});

test('the retention deletes acknowledged windows a bridge has sent, and keeps those after its cursor', () => {
  const s = new HubStore(fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-store-')));
  const w = (start: number) => ({ stream: 'x', start, end: start + 1, count: 1 });
  s.emit('x', 'x#time', [w(0), w(1), w(2)], 3, 1000);
  s.ack([1, 2, 3]);
  assert.equal(s.retain({ ...keepAll, maxAgeMs: 10 }, 5000, 1).windows, 1, 'only window 1 was sent upstream');
  assert.deepEqual(s.windowsAfter(0, 10).map((x) => x.seq), [2, 3]);
  assert.equal(s.retain({ ...keepAll, maxAgeMs: 10 }, 5000).windows, 2, 'no bridge: every acknowledged old window goes');
  s.close();
});
