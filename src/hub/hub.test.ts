// The hub's store and restart behaviour, in-process with a real SQLite file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { streamsSchema } from '../core/pipeline.js';
import { DataHub } from './hub.js';

const log = pino({ level: 'silent' });
const specs = streamsSchema.parse({ s: { windowMs: 1000, lateMs: 0, ops: ['count', 'sum'] }, c: { windowCount: 4, ops: ['sum'] } });
const batch = (vs: number[], ts: number[]) => ({ v: Float64Array.from(vs), ts: Float64Array.from(ts), at: 0 });

test('a restarted hub rebuilds its open windows from stored points: nothing lost, nothing emitted twice', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-'));
  let now = 10_000;
  let hub = new DataHub({ dataDir: dir, log, now: () => now });
  hub.setStreams(specs);
  await hub.ingest('s', batch([1, 2, 3], [10_100, 10_200, 11_100]), 10);
  await hub.ingest('c', batch([1, 2, 3, 4, 5, 6], [1, 2, 3, 4, 5, 6]), 10);
  now = 11_050;
  hub.tick();
  assert.deepEqual(hub.unsent().map((w) => [w.doc.stream, w.doc.start, w.doc.sum]), [['c', 1, 10], ['s', 10_000, 3]]);
  hub.close(); // 11_100's window and the count window's 5 and 6 are open

  hub = new DataHub({ dataDir: dir, log, now: () => now });
  hub.setStreams(specs);
  await hub.ingest('s', batch([4], [11_500]), 5);
  await hub.ingest('c', batch([7, 8], [7, 8]), 5);
  now = 12_000;
  hub.tick();
  assert.deepEqual(hub.unsent().map((w) => [w.doc.stream, w.doc.start, w.doc.count, w.doc.sum]), [
    ['c', 1, 4, 10], ['s', 10_000, 2, 3], ['c', 5, 4, 26], ['s', 11_000, 2, 7],
  ]);
  const seqs = hub.unsent().map((w) => w.seq);
  hub.ack(seqs.slice(0, 2));
  assert.equal(hub.stats().queueDepth, 2);
  assert.ok(hub.stats().bytesForwarded > 0);
  assert.equal(hub.stats().pointsIn, 12, 'counters survive the restart');
  const late = await hub.ingest('s', batch([9], [10_500]), 5);
  assert.equal(late.late, 1, 'a point for an emitted window is late');
  hub.close();
});

test('retention drops the oldest raw points by age and by bytes, and never an unacknowledged window', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-'));
  let now = 0;
  const hub = new DataHub({ dataDir: dir, log, now: () => now, retention: { maxAgeMs: 10_000, maxBytes: 8 * 3000 } });
  hub.setStreams(specs);
  for (let k = 0; k < 5; k++) await hub.ingest('s', batch(new Array(1000).fill(k), new Array(1000).fill(k * 1000)), 100);
  now = 100_000;
  hub.tick();
  assert.equal(hub.unsent().length, 5);
  // 5 batches of 16,000 bytes (values and times): by bytes, only the newest stays
  hub.store.retain({ maxAgeMs: 1e9, maxBytes: 20_000 }, now);
  assert.deepEqual(hub.store.points('s', 0, 1e9, 10).map((p) => p.v), new Array(10).fill(4));
  hub.store.retain({ maxAgeMs: 10_000, maxBytes: 1e9 }, now);
  assert.equal(hub.store.rawBytes(), 0, 'older than the age limit');
  assert.equal(hub.unsent().length, 5, 'unacknowledged windows stay');
  hub.close();
});
