// The hub's store and restart behaviour, in-process with a real SQLite file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
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

/** An MQTT message as the broker hands it over, with its acknowledgement as a promise: null once stored, or the error that refused it. */
const publish = (hub: DataHub, stream: string, payload: string) => new Promise<Error | null>((resolve) => hub.ingestMessage(stream, Buffer.from(payload), resolve));
const batchRows = (db: Database.Database) => db.prepare('SELECT stream, n FROM batches ORDER BY id').all() as { stream: string; n: number }[];

/** A hub on a new directory running `specs`, on a clock the test moves. */
function freshHub(clock: { now: number }): { hub: DataHub; dir: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hub-'));
  const hub = new DataHub({ dataDir: dir, log, now: () => clock.now });
  hub.setStreams(specs);
  return { hub, dir };
}

test('a QoS 1 message is acknowledged once its point is committed, as soon as the event loop is free', async () => {
  const { hub, dir } = freshHub({ now: 10_000 });
  // a second connection sees only committed rows
  const reader = new Database(path.join(dir, 'hub.db'), { readonly: true });
  let seenAtAck: unknown[] | null = null;
  hub.ingestMessage('s', Buffer.from('{"ts": 10100, "v": 1.5}'), (err) => {
    assert.equal(err, null);
    seenAtAck = batchRows(reader);
  });
  assert.equal(seenAtAck, null, 'not acknowledged before it is stored');
  // one turn of the event loop, no timer: the commit is queued ahead of this
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(seenAtAck, [{ stream: 's', n: 1 }]);
  reader.close();
  hub.close();
});

test('messages that arrive in one turn share one commit; a lone message is committed alone', async () => {
  const clock = { now: 10_000 };
  const { hub } = freshHub(clock);
  // a socket read holding many messages: both forms, device time and arrival time
  const acks = Array.from({ length: 50 }, (_, i) => publish(hub, 's', i % 2 ? String(i) : JSON.stringify({ ts: 10_500, v: i })));
  assert.deepEqual(await Promise.all(acks), new Array(50).fill(null));
  assert.deepEqual(batchRows(hub.store.db), [{ stream: 's', n: 50 }]);
  for (let i = 0; i < 3; i++) assert.equal(await publish(hub, 's', '1'), null);
  assert.deepEqual(batchRows(hub.store.db).map((r) => r.n), [50, 1, 1, 1]);
  clock.now = 11_000;
  hub.tick();
  assert.deepEqual(hub.unsent().map((w) => [w.doc.start, w.doc.count, w.doc.sum]), [[10_000, 53, 1225 + 3]]);
  hub.close();
});

for (const order of ['s first', 'c first'] as const) test(`a group that fails to commit is refused whole; the devices' retries are stored and counted once (${order})`, async () => {
  const clock = { now: 10_000 };
  const { hub } = freshHub(clock);
  assert.equal(await publish(hub, 'c', '1'), null);
  // the store refuses one stream's rows, as a full disk would refuse any
  hub.store.db.exec("CREATE TEMP TRIGGER refuse BEFORE INSERT ON batches WHEN NEW.stream = 'c' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END");
  // with c first, s is still buffered when c's store fails
  const send = () => order === 's first'
    ? [publish(hub, 's', '{"ts": 10100, "v": 2}'), publish(hub, 'c', '2'), publish(hub, 'c', '3'), hub.ingest('s', batch([4], [10_200]), 5).then(() => null, (e: Error) => e)]
    : [publish(hub, 'c', '2'), publish(hub, 's', '{"ts": 10100, "v": 2}'), publish(hub, 'c', '3'), hub.ingest('s', batch([4], [10_200]), 5).then(() => null, (e: Error) => e)];
  const refused = await Promise.all(send());
  assert.ok(refused.every((e) => e instanceof Error && /refused by the test/.test(e.message)), String(refused));
  assert.deepEqual(batchRows(hub.store.db), [{ stream: 'c', n: 1 }], 'nothing of the group stored');
  assert.equal(hub.stats().pointsIn, 1, 'nothing of the group counted');
  hub.store.db.exec('DROP TRIGGER refuse');
  assert.deepEqual(await Promise.all(send()), [null, null, null, null]);
  assert.equal(await publish(hub, 'c', '4'), null);
  assert.equal(hub.stats().pointsIn, 6);
  clock.now = 11_000;
  hub.tick();
  assert.deepEqual(hub.unsent().map((w) => [w.doc.stream, w.doc.count, w.doc.sum]), [['c', 4, 10], ['s', 2, 6]]);
  hub.close();
});
