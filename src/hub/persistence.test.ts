// The broker's persistence against aedes-persistence's own conformance suite
// (abstract.js, the tests every aedes persistence must pass), then what the
// suite cannot see: the same file reopened, and the queue limits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { BrokerPersistence, type Pkt } from './persistence.js';

const require = createRequire(import.meta.url);
const abstract = require('aedes-persistence/abstract.js') as (o: object) => void;

abstract({ test, persistence: () => new BrokerPersistence(':memory:'), testAsync: true });

const tmpFile = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'broker-')), 'broker.db');
const broker = (id: string) => ({ id, published: [] as Pkt[], publish(p: Pkt, cb: () => void) { this.published.push(p); cb(); } });
const publish = (topic: string, payload: string, counter: number): Pkt =>
  ({ cmd: 'publish', topic, payload: Buffer.from(payload), qos: 1, retain: false, dup: false, brokerId: 'b1', brokerCounter: counter });
const list = async (s: AsyncIterable<Pkt>) => { const out: Pkt[] = []; for await (const p of s) out.push(p); return out; };

test('reopened: subscriptions, queued messages (with their packet ids and a PUBREL), retained messages, incoming QoS 2 packets, holders; a crash\'s will is published', async () => {
  const file = tmpFile();
  let p = new BrokerPersistence(file);
  await p.setup(broker('b1'));
  const c = { id: 'dev-a-1' };
  await p.addSubscriptions(c, [{ topic: 'outpost/data/s1', qos: 1 }, { topic: 'outpost/data/s2', qos: 0 }]);
  await p.outgoingEnqueueCombi([{ clientId: c.id }], publish('outpost/data/s1', 'one', 1));
  await p.outgoingEnqueueCombi([{ clientId: c.id }], publish('outpost/data/s1', 'two', 2));
  await p.outgoingEnqueueCombi([{ clientId: c.id }], { ...publish('outpost/data/s1', 'three', 3), qos: 2 });
  await p.outgoingUpdate(c, { ...publish('outpost/data/s1', 'one', 1), messageId: 7 });
  await p.outgoingUpdate(c, { ...publish('outpost/data/s1', 'three', 3), messageId: 9 });
  await p.outgoingUpdate(c, { cmd: 'pubrel', messageId: 9 });
  await p.storeRetained({ cmd: 'publish', topic: 'outpost/data/s1', payload: Buffer.from('21.5'), qos: 1, retain: true });
  await p.storeRetained({ cmd: 'publish', topic: 'outpost/data/s2', payload: Buffer.from('gone'), qos: 0, retain: true });
  await p.storeRetained({ cmd: 'publish', topic: 'outpost/data/s2', payload: Buffer.alloc(0), qos: 0, retain: true });
  await p.incomingStorePacket(c, { cmd: 'publish', topic: 'outpost/data/s1', payload: Buffer.from('q2'), qos: 2, messageId: 5 });
  p.holders.set(c.id, 'dev-a');
  p.holders.set('clean-one', 'dev-b'); // no session: not held after a restart
  await p.putWill(c, { topic: 'outpost/data/s1/dev-a', payload: Buffer.from('offline'), qos: 1, retain: false });
  // a crash: no destroy(), so the will stays
  // (better-sqlite3 commits each statement; the next open reads the WAL)

  const asked: [string | undefined, string | undefined][] = [];
  p = new BrokerPersistence(file, { willAllowed: (holder, will) => { asked.push([holder, will.topic]); return true; } });
  const b = broker('b2');
  await p.setup(b);
  assert.deepEqual((await p.subscriptionsByClient(c)).map((s) => [s.topic, s.qos]), [['outpost/data/s1', 1], ['outpost/data/s2', 0]]);
  assert.deepEqual((await p.subscriptionsByTopic('outpost/data/s1')).map((s) => s.clientId), [c.id]);
  const q = await list(p.outgoingStream(c));
  assert.deepEqual(q.map((x) => [x.cmd, x.payload?.toString(), x.messageId]), [['publish', 'one', 7], ['publish', 'two', undefined], ['pubrel', undefined, 9]]);
  assert.deepEqual((await list(p.createRetainedStream('#'))).map((x) => [x.topic, x.payload?.toString()]), [['outpost/data/s1', '21.5']]);
  assert.equal((await p.incomingGetPacket(c, { messageId: 5 })).payload?.toString(), 'q2');
  assert.equal(p.holders.get(c.id), 'dev-a');
  assert.equal(p.holders.get('clean-one'), undefined);
  assert.deepEqual(asked, [['dev-a', 'outpost/data/s1/dev-a']]);
  assert.deepEqual(b.published.map((w) => [w.topic, w.payload?.toString()]), [['outpost/data/s1/dev-a', 'offline']]);
  assert.deepEqual(p.stats(), { queued: 3, queuedBytes: 6, queuedClients: 1, droppedPerClient: 0, droppedTotal: 0 });
  // acknowledged: gone for good
  assert.equal((await p.outgoingClearMessageId(c, { messageId: 7 }))?.payload?.toString(), 'one');
  await p.destroy();

  p = new BrokerPersistence(file);
  await p.setup(broker('b3'));
  assert.deepEqual((await list(p.outgoingStream(c))).map((x) => x.messageId), [undefined, 9]);
  assert.equal(await p.getWill(c), undefined, 'a will is published once');
  await p.destroy();
});

test('queues are bounded per client and in total: the oldest go first, counted, and the counts survive a restart', async () => {
  const file = tmpFile();
  let p = new BrokerPersistence(file, { limits: { perClient: 3, totalMessages: 5 } });
  await p.setup(broker('b1'));
  for (let i = 1; i <= 5; i++) await p.outgoingEnqueueCombi([{ clientId: 'a' }], publish('t', `a${i}`, i));
  assert.deepEqual((await list(p.outgoingStream({ id: 'a' }))).map((x) => String(x.payload)), ['a3', 'a4', 'a5']);
  for (let i = 1; i <= 3; i++) await p.outgoingEnqueueCombi([{ clientId: 'b' }, { clientId: 'c' }], publish('t', `bc${i}`, 10 + i));
  // 5 in all: a's three went first, then b's oldest
  assert.deepEqual(p.stats(), { queued: 5, queuedBytes: 15, queuedClients: 2, droppedPerClient: 2, droppedTotal: 4 });
  assert.deepEqual((await list(p.outgoingStream({ id: 'a' }))), []);
  assert.deepEqual((await list(p.outgoingStream({ id: 'b' }))).map((x) => String(x.payload)), ['bc2', 'bc3']);
  await p.destroy();
  p = new BrokerPersistence(file, { limits: { perClient: 3, totalMessages: 5 } });
  await p.setup(broker('b2'));
  assert.deepEqual(p.stats(), { queued: 5, queuedBytes: 15, queuedClients: 2, droppedPerClient: 2, droppedTotal: 4 });
  await p.destroy();
});
