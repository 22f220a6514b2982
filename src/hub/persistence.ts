// The embedded broker's state on disk: an aedes persistence on SQLite
// (<hub data dir>/broker.db, WAL), so a restart keeps what Mosquitto with
// persistence keeps: retained messages, persistent sessions (their
// subscriptions, and the device holding each client id), the QoS 1/2
// messages queued for them, incoming QoS 2 packets awaiting PUBREL, and wills.
//
// Reads stay in memory. Subscriptions, retained messages and incoming QoS 2
// packets are mirrored in aedes' own in-memory persistence (its topic trie
// answers every publish): loaded at start, written through on each change.
// Queues are read from disk only when a session resumes, and a client with
// nothing queued costs no disk access, so a publish no persistent session
// subscribes to touches no disk at all.
//
// Queues are bounded per client and in total (messages and bytes); what is
// over a bound is dropped oldest first (a subscriber back after a long
// absence gets the newest readings, and order is kept) and counted.
import Database from 'better-sqlite3';
import { createRequire } from 'node:module';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { BrokerQueueStats } from '../core/types.js';

/** A packet as aedes hands it over (a PUBLISH, or a PUBREL in a queue). */
export type Pkt = {
  cmd?: string;
  topic?: string;
  payload?: Buffer | Uint8Array | string;
  messageId?: number;
  brokerId?: string;
  brokerCounter?: number;
  clientId?: string;
  [k: string]: unknown;
};
interface Sub { topic: string; qos: number; clientId?: string; [k: string]: unknown }
interface ClientRef { id: string }
interface BrokerRef { id: string; publish(p: Pkt, cb: (err?: Error | null) => void): void }

/** aedes-persistence's in-memory persistence, the part used here. */
interface Memory {
  setup(broker: unknown): Promise<void>;
  storeRetained(p: Pkt): Promise<void>;
  createRetainedStream(pattern: string): Readable;
  createRetainedStreamCombi(patterns: string[]): Readable;
  addSubscriptions(c: ClientRef, subs: Sub[]): Promise<void>;
  removeSubscriptions(c: ClientRef, topics: string[]): Promise<void>;
  subscriptionsByClient(c: ClientRef): Promise<Sub[]>;
  countOffline(): Promise<{ subsCount: number; clientsCount: number }>;
  subscriptionsByTopic(pattern: string): Promise<Sub[]>;
  cleanSubscriptions(c: ClientRef): Promise<void>;
  incomingStorePacket(c: ClientRef, p: Pkt): Promise<void>;
  incomingGetPacket(c: ClientRef, p: Pkt): Promise<Pkt>;
  incomingDelPacket(c: ClientRef, p: Pkt): Promise<void>;
  cleanIncoming(c: ClientRef): Promise<void>;
  getClientList(topic: string): Readable;
}

// aedes' own dependencies (CommonJS, no typings at these paths): the trie and
// packet shape aedes expects, rather than a copy of them
const require = createRequire(import.meta.url);
const MemoryPersistence = require('aedes-persistence/asyncPersistence.js') as new () => Memory;
const Packet = require('aedes-packet') as new (p: Pkt) => Pkt;

export interface QueueLimits {
  /** messages queued for one client */
  perClient: number;
  /** messages queued for every client */
  totalMessages: number;
  /** payload bytes queued for every client */
  totalBytes: number;
}

export const QUEUE_LIMITS: QueueLimits = { perClient: 1000, totalMessages: 100_000, totalBytes: 256 * 1024 * 1024 };

export interface PersistenceOptions {
  limits?: Partial<QueueLimits>;
  /**
   * May the will of a connection the previous run never closed (a crash) be
   * published now? `holder`: the device that held its client id ('' for an
   * anonymous client). Without it such wills are dropped.
   */
  willAllowed?: (holder: string | undefined, will: Pkt) => boolean;
  log?: Logger;
}

/** Which device holds a client id (and so its session); the broker's authentication reads and writes it. */
export interface SessionHolders {
  get(clientId: string): string | undefined;
  set(clientId: string, holder: string): void;
  delete(clientId: string): boolean;
}

interface Row { packet: string; payload: Buffer | null }
interface QueueRow extends Row { seq: number; client: string; message_id: number | null; bytes: number }

/** JSON for every field but a binary payload, which goes in a BLOB as it is. */
function encode(p: Pkt): [string, Buffer | null] {
  const { payload, ...rest } = p;
  if (payload === undefined || typeof payload === 'string') return [JSON.stringify(p), null];
  return [JSON.stringify(rest), Buffer.isBuffer(payload) ? payload : Buffer.from(payload)];
}

/** MQTT 5 properties may hold Buffers (correlation data): JSON keeps them as { type: 'Buffer', data }. */
const revive = (_k: string, v: unknown) => {
  const b = v as { type?: unknown; data?: unknown } | null;
  return b && typeof b === 'object' && b.type === 'Buffer' && Array.isArray(b.data) ? Buffer.from(b.data as number[]) : v;
};

function decode(r: Row): Pkt {
  const p = JSON.parse(r.packet, revive) as Pkt;
  if (r.payload !== null) p.payload = r.payload;
  return p;
}

const payloadBytes = (p: Pkt) => (typeof p.payload === 'string' ? Buffer.byteLength(p.payload) : p.payload?.length ?? 0);

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS retained (topic TEXT PRIMARY KEY, packet TEXT NOT NULL, payload BLOB);
CREATE TABLE IF NOT EXISTS subs (client TEXT NOT NULL, topic TEXT NOT NULL, sub TEXT NOT NULL, PRIMARY KEY (client, topic));
CREATE TABLE IF NOT EXISTS holders (client TEXT PRIMARY KEY, holder TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outgoing (seq INTEGER PRIMARY KEY AUTOINCREMENT, client TEXT NOT NULL, broker_id TEXT, broker_counter INTEGER, message_id INTEGER, packet TEXT NOT NULL, payload BLOB, bytes INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS outgoing_client ON outgoing(client, seq);
CREATE INDEX IF NOT EXISTS outgoing_counter ON outgoing(client, broker_id, broker_counter);
CREATE INDEX IF NOT EXISTS outgoing_mid ON outgoing(client, message_id);
CREATE TABLE IF NOT EXISTS incoming (client TEXT NOT NULL, message_id INTEGER NOT NULL, packet TEXT NOT NULL, payload BLOB, PRIMARY KEY (client, message_id));
CREATE TABLE IF NOT EXISTS wills (client TEXT PRIMARY KEY, packet TEXT NOT NULL, payload BLOB);
`;

/** An aedes persistence (the async interface aedes 1.x calls) kept in a SQLite file; ':memory:' for none. */
export class BrokerPersistence {
  readonly holders: SessionHolders;
  private readonly db: Database.Database;
  private readonly mem = new MemoryPersistence();
  private readonly limits: QueueLimits;
  private brokerRef: BrokerRef | null = null;
  private readonly wills = new Map<string, Pkt>();
  private readonly held = new Map<string, string>();
  /** client id -> messages queued; a client absent here has none (no disk read) */
  private readonly queued = new Map<string, number>();
  private readonly withIncoming = new Set<string>();
  private totalQueued = 0;
  private totalBytes = 0;
  private dropped = { perClient: 0, total: 0 };
  /** clients already warned about in this run (a full queue would log each message) */
  private readonly warned = new Set<string>();
  private closed = false;
  private readonly q;

  constructor(file: string, private readonly o: PersistenceOptions = {}) {
    this.limits = { ...QUEUE_LIMITS, ...o.limits };
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode: a commit survives a crash of the process (not of the OS) without an fsync each
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(SCHEMA);
    const p = (sql: string) => this.db.prepare(sql);
    this.q = {
      setMeta: p('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value'),
      putRetained: p('INSERT INTO retained (topic, packet, payload) VALUES (?, ?, ?) ON CONFLICT(topic) DO UPDATE SET packet = excluded.packet, payload = excluded.payload'),
      delRetained: p('DELETE FROM retained WHERE topic = ?'),
      putSub: p('INSERT INTO subs (client, topic, sub) VALUES (?, ?, ?) ON CONFLICT(client, topic) DO UPDATE SET sub = excluded.sub'),
      delSub: p('DELETE FROM subs WHERE client = ? AND topic = ?'),
      delSubs: p('DELETE FROM subs WHERE client = ?'),
      putHolder: p('INSERT INTO holders (client, holder) VALUES (?, ?) ON CONFLICT(client) DO UPDATE SET holder = excluded.holder'),
      delHolder: p('DELETE FROM holders WHERE client = ?'),
      insOut: p('INSERT INTO outgoing (client, broker_id, broker_counter, message_id, packet, payload, bytes) VALUES (?, ?, ?, ?, ?, ?, ?)'),
      queueOf: p('SELECT seq, client, message_id, packet, payload, bytes FROM outgoing WHERE client = ? ORDER BY seq'),
      oldestOf: p('SELECT seq, client, bytes FROM outgoing WHERE client = ? ORDER BY seq LIMIT 1'),
      oldest: p('SELECT seq, client, bytes FROM outgoing ORDER BY seq LIMIT 1'),
      byMid: p('SELECT seq, client, message_id, packet, payload, bytes FROM outgoing WHERE client = ? AND message_id = ? ORDER BY seq LIMIT 1'),
      setMid: p('UPDATE outgoing SET message_id = ? WHERE seq = (SELECT seq FROM outgoing WHERE client = ? AND broker_id = ? AND broker_counter = ? ORDER BY seq LIMIT 1)'),
      toPubrel: p('UPDATE outgoing SET broker_id = NULL, broker_counter = NULL, packet = ?, payload = NULL, bytes = 0 WHERE seq = ?'),
      delOut: p('DELETE FROM outgoing WHERE seq = ?'),
      putIn: p('INSERT INTO incoming (client, message_id, packet, payload) VALUES (?, ?, ?, ?) ON CONFLICT(client, message_id) DO UPDATE SET packet = excluded.packet, payload = excluded.payload'),
      delIn: p('DELETE FROM incoming WHERE client = ? AND message_id = ?'),
      delIns: p('DELETE FROM incoming WHERE client = ?'),
      putWill: p('INSERT INTO wills (client, packet, payload) VALUES (?, ?, ?) ON CONFLICT(client) DO UPDATE SET packet = excluded.packet, payload = excluded.payload'),
      delWill: p('DELETE FROM wills WHERE client = ?'),
    };
    for (const r of p('SELECT client, holder FROM holders').all() as { client: string; holder: string }[]) this.held.set(r.client, r.holder);
    this.holders = {
      get: (id) => this.held.get(id),
      set: (id, holder) => {
        if (this.held.get(id) === holder) return;
        this.held.set(id, holder);
        this.write(this.q.putHolder, id, holder);
      },
      delete: (id) => {
        if (!this.held.delete(id)) return false;
        this.write(this.q.delHolder, id);
        return true;
      },
    };
  }

  /** A statement run unless the broker has closed (late callbacks of closing connections arrive after). */
  private write(s: Database.Statement, ...args: unknown[]): void {
    if (!this.closed) s.run(...args);
  }

  get broker(): BrokerRef | null {
    return this.brokerRef;
  }

  /** Loads the state the last run left; publishes the wills of connections it never closed. */
  async setup(broker: BrokerRef): Promise<void> {
    this.brokerRef = broker;
    await this.mem.setup(broker);
    const all = <T>(sql: string) => this.db.prepare(sql).all() as T[];
    for (const r of all<Row>('SELECT packet, payload FROM retained')) await this.mem.storeRetained(decode(r));
    const subs = new Map<string, Sub[]>();
    for (const r of all<{ client: string; sub: string }>('SELECT client, sub FROM subs ORDER BY rowid')) {
      const list = subs.get(r.client) ?? [];
      list.push(JSON.parse(r.sub) as Sub);
      subs.set(r.client, list);
    }
    for (const [id, list] of subs) await this.mem.addSubscriptions({ id }, list);
    for (const r of all<Row & { client: string }>('SELECT client, packet, payload FROM incoming')) {
      await this.mem.incomingStorePacket({ id: r.client }, decode(r));
      this.withIncoming.add(r.client);
    }
    this.recount();
    const meta = all<{ key: string; value: string }>("SELECT key, value FROM meta WHERE key = 'dropped'")[0];
    if (meta) this.dropped = JSON.parse(meta.value);
    // wills still here are of connections a crash cut (a stop publishes or deletes them)
    for (const r of all<Row & { client: string }>('SELECT client, packet, payload FROM wills')) {
      const will = decode(r);
      const ok = this.o.willAllowed?.(this.held.get(r.client), will) ?? false;
      if (ok) await new Promise<void>((resolve) => broker.publish(will, () => resolve()));
      else this.o.log?.warn({ clientId: r.client, topic: will.topic }, 'a will left by the last run was not published: its client may not publish there');
      this.q.delWill.run(r.client);
    }
    // a client id stays held only while it has a session to keep
    this.db.exec('DELETE FROM holders WHERE client NOT IN (SELECT client FROM subs) AND client NOT IN (SELECT client FROM outgoing) AND client NOT IN (SELECT client FROM incoming)');
    for (const id of [...this.held.keys()]) if (!subs.has(id) && !this.queued.has(id) && !this.withIncoming.has(id)) this.held.delete(id);
  }

  /** The queue counters, from the table (at start, or after a failed write). */
  private recount(): void {
    this.queued.clear();
    this.totalQueued = 0;
    this.totalBytes = 0;
    for (const r of this.db.prepare('SELECT client, count(*) AS n, coalesce(sum(bytes), 0) AS b FROM outgoing GROUP BY client').all() as { client: string; n: number; b: number }[]) {
      this.queued.set(r.client, r.n);
      this.totalQueued += r.n;
      this.totalBytes += r.b;
    }
  }

  stats(): BrokerQueueStats {
    return { queued: this.totalQueued, queuedBytes: this.totalBytes, queuedClients: this.queued.size, droppedPerClient: this.dropped.perClient, droppedTotal: this.dropped.total };
  }

  // retained messages: an empty payload deletes

  async storeRetained(packet: Pkt): Promise<void> {
    await this.mem.storeRetained(packet);
    if (payloadBytes(packet) === 0) return this.write(this.q.delRetained, packet.topic);
    const [json, payload] = encode(packet);
    this.write(this.q.putRetained, packet.topic, json, payload);
  }

  createRetainedStream(pattern: string): Readable {
    return this.mem.createRetainedStream(pattern);
  }

  createRetainedStreamCombi(patterns: string[]): Readable {
    return this.mem.createRetainedStreamCombi(patterns);
  }

  // subscriptions of persistent sessions

  async addSubscriptions(client: ClientRef, subs: Sub[]): Promise<void> {
    await this.mem.addSubscriptions(client, subs);
    this.batch(() => { for (const s of subs) this.write(this.q.putSub, client.id, s.topic, JSON.stringify(s)); });
  }

  async removeSubscriptions(client: ClientRef, topics: string[]): Promise<void> {
    await this.mem.removeSubscriptions(client, topics);
    this.batch(() => { for (const t of topics) this.write(this.q.delSub, client.id, t); });
  }

  async subscriptionsByClient(client: ClientRef): Promise<Sub[]> {
    return this.mem.subscriptionsByClient(client);
  }

  async countOffline(): Promise<{ subsCount: number; clientsCount: number }> {
    return this.mem.countOffline();
  }

  async subscriptionsByTopic(pattern: string): Promise<Sub[]> {
    return this.mem.subscriptionsByTopic(pattern);
  }

  /** Called on every clean-session connect: the disk only when there was a session. */
  async cleanSubscriptions(client: ClientRef): Promise<void> {
    const had = (await this.mem.subscriptionsByClient(client)).length > 0;
    await this.mem.cleanSubscriptions(client);
    if (had) this.write(this.q.delSubs, client.id);
  }

  getClientList(topic: string): Readable {
    return this.mem.getClientList(topic);
  }

  /** Several statements in one transaction: one commit. */
  private batch(fn: () => void): void {
    if (!this.closed) this.db.transaction(fn)();
  }

  // queued messages (QoS 1/2) of persistent sessions, oldest first

  async outgoingEnqueue(sub: { clientId: string }, packet: Pkt): Promise<void> {
    return this.outgoingEnqueueCombi([sub], packet);
  }

  async outgoingEnqueueCombi(subs: { clientId: string }[], packet: Pkt): Promise<void> {
    if (subs.length === 0 || this.closed) return;
    const p = new Packet(packet);
    const [json, payload] = encode(p);
    const bytes = payloadBytes(p);
    try {
      this.batch(() => {
        for (const s of subs) {
          if (!this.makeRoom(s.clientId, bytes)) continue;
          this.q.insOut.run(s.clientId, p.brokerId ?? null, p.brokerCounter ?? null, null, json, payload, bytes);
          this.counted(s.clientId, 1, bytes);
        }
      });
    } catch (e) {
      this.recount(); // the transaction rolled back: so do the counters
      throw e;
    }
  }

  private counted(client: string, n: number, bytes: number): void {
    const left = (this.queued.get(client) ?? 0) + n;
    if (left > 0) this.queued.set(client, left);
    else this.queued.delete(client);
    this.totalQueued += n;
    this.totalBytes += bytes;
  }

  /** Drops the oldest messages over the limits; false when `bytes` alone is over the total. */
  private makeRoom(client: string, bytes: number): boolean {
    const L = this.limits;
    const before = { ...this.dropped };
    const drop = (r: { seq: number; client: string; bytes: number } | undefined) => {
      if (!r) return false;
      this.q.delOut.run(r.seq);
      this.counted(r.client, -1, -r.bytes);
      return true;
    };
    let room = bytes <= L.totalBytes;
    if (!room) this.dropped.total++;
    else {
      if ((this.queued.get(client) ?? 0) >= L.perClient && drop(this.q.oldestOf.get(client) as QueueRow | undefined)) this.dropped.perClient++;
      while (this.totalQueued > 0 && (this.totalQueued >= L.totalMessages || this.totalBytes + bytes > L.totalBytes)) {
        if (!drop(this.q.oldest.get() as QueueRow | undefined)) break;
        this.dropped.total++;
      }
    }
    if (this.dropped.perClient !== before.perClient || this.dropped.total !== before.total) {
      this.q.setMeta.run('dropped', JSON.stringify(this.dropped));
      if (!this.warned.has(client)) {
        this.warned.add(client);
        this.o.log?.warn({ clientId: client, limits: L, dropped: this.dropped }, 'broker queue full: the oldest queued messages are dropped');
      }
    }
    return room;
  }

  private static fromRow(r: QueueRow): Pkt {
    const o = decode(r);
    const p = o.cmd === 'publish' ? new Packet(o) : o;
    if (r.message_id !== null) p.messageId = r.message_id;
    return p;
  }

  /**
   * A publish about to be (re)sent gets its packet id; a PUBREL replaces the
   * PUBLISH of its packet id, so a resumed session re-sends the PUBREL. A
   * publish not found (dropped over a limit, or already acknowledged) is still
   * sent: there is nothing to update.
   */
  async outgoingUpdate(client: ClientRef, packet: Pkt): Promise<void> {
    if (this.closed) return;
    if (packet.brokerId) {
      if (this.queued.has(client.id)) this.q.setMid.run(packet.messageId ?? null, client.id, packet.brokerId, packet.brokerCounter ?? 0);
      return;
    }
    const r = this.queued.has(client.id) ? this.q.byMid.get(client.id, packet.messageId) as QueueRow | undefined : undefined;
    const [json] = encode(packet);
    if (r) {
      this.q.toPubrel.run(json, r.seq);
      this.counted(client.id, 0, -r.bytes);
    } else {
      this.q.insOut.run(client.id, null, null, packet.messageId ?? null, json, null, 0);
      this.counted(client.id, 1, 0);
    }
  }

  /** On PUBACK/PUBCOMP (of every client): the disk only for a client with messages queued. */
  async outgoingClearMessageId(client: ClientRef, packet: Pkt): Promise<Pkt | undefined> {
    const id = packet?.messageId;
    if (id === undefined || this.closed || !this.queued.has(client.id)) return undefined;
    const r = this.q.byMid.get(client.id, id) as QueueRow | undefined;
    if (!r) return undefined;
    this.q.delOut.run(r.seq);
    this.counted(client.id, -1, -r.bytes);
    return BrokerPersistence.fromRow(r);
  }

  outgoingStream(client: ClientRef): Readable {
    const rows = this.closed || !this.queued.has(client.id) ? [] : this.q.queueOf.all(client.id) as QueueRow[];
    return Readable.from(rows.map(BrokerPersistence.fromRow));
  }

  // incoming QoS 2 packets awaiting PUBREL

  async incomingStorePacket(client: ClientRef, packet: Pkt): Promise<void> {
    await this.mem.incomingStorePacket(client, packet);
    const [json, payload] = encode(packet);
    this.write(this.q.putIn, client.id, packet.messageId, json, payload);
    this.withIncoming.add(client.id);
  }

  async incomingGetPacket(client: ClientRef, packet: Pkt): Promise<Pkt> {
    return this.mem.incomingGetPacket(client, packet);
  }

  async incomingDelPacket(client: ClientRef, packet: Pkt): Promise<void> {
    await this.mem.incomingDelPacket(client, packet);
    this.write(this.q.delIn, client.id, packet.messageId);
  }

  /** Called as every clean session starts and ends: the disk only when it stored something. */
  async cleanIncoming(client: ClientRef): Promise<void> {
    await this.mem.cleanIncoming(client);
    if (this.withIncoming.delete(client.id)) this.write(this.q.delIns, client.id);
  }

  // wills

  async putWill(client: ClientRef, packet: Pkt): Promise<void> {
    packet.brokerId = this.brokerRef?.id;
    packet.clientId = client.id;
    this.wills.set(client.id, packet);
    const [json, payload] = encode(packet);
    this.write(this.q.putWill, client.id, json, payload);
  }

  async getWill(client: ClientRef): Promise<Pkt | undefined> {
    return this.wills.get(client.id);
  }

  async delWill(client: ClientRef): Promise<Pkt | undefined> {
    const will = this.wills.get(client.id);
    if (will) {
      this.wills.delete(client.id);
      this.write(this.q.delWill, client.id);
    }
    return will;
  }

  streamWill(brokers: Record<string, unknown> = {}): Readable {
    return Readable.from([...this.wills.values()].filter((w) => !brokers[w.brokerId ?? '']));
  }

  /**
   * After the broker closed its connections (each will published or
   * deleted), so the wills left are of closed connections: gone, or the next
   * start would publish them again.
   */
  async destroy(): Promise<void> {
    if (this.closed) return;
    this.db.exec('DELETE FROM wills');
    this.closed = true;
    this.db.close();
  }
}
