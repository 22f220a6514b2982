// The data hub beside each agent: points in (from the HTTP and MQTT
// transports), raw points and window results stored locally, results queued
// for the control plane. Transports live in http.ts and mqtt.ts; this file
// holds the ingest path, the pipelines, the clock and the accounting.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { OutpostError } from '../core/errors.js';
import type { BridgeStats, BrokerQueueStats, HubStats, StreamStats } from '../core/types.js';
import { DEFAULT_MAX_SKEW_MS, Pipeline, type StreamSpec } from '../core/pipeline.js';
import { parseMessage, parseObjectMessage, tsOf, tsRules, type Batch, type TsRules } from '../core/points.js';
import { HubStore, type Retention, type StoredWindow } from './store.js';
import { SourceTable, type Segment } from '../core/mapping.js';
import { digestOf, KEYS_PER_CLIENT, Redeliveries, type MessageKey } from './dedup.js';

export interface HubOptions {
  dataDir: string;
  log: Logger;
  retention?: Partial<Retention>;
  /** QoS 0 MQTT points (acknowledged by no one) wait at most this long to be stored together */
  flushMs?: number;
  now?: () => number;
}

/** A time watermark and a count position mean different things: a stream that changes its kind of window starts afresh. */
const markKey = (stream: string, spec: StreamSpec) => `${stream}#${spec.windowMs !== undefined ? 'time' : 'count'}`;

const emptyStream = (): StreamStats => ({ pointsIn: 0, bytesIn: 0, rejected: 0, late: 0, filtered: 0, windows: 0 });

/** MQTT points waiting to be stored, per stream and device (a stored batch carries one device) */
interface Pending { stream: string; device: string | null; v: number[]; ts: number[]; bytes: number }

/** Where a message's points go: a stream, the device they are tagged with, and (a source's) the field and ts paths of an object payload. */
export interface Target { stream: string; device: string | null; field?: Segment[] | null; ts?: Segment[] | null }

type Counters = Omit<HubStats, 'hubId' | 'reduction' | 'queueDepth' | 'oldestUnsentMs' | 'rawBytes'>;

/** A copy of what a commit changes (the rejected counts are not), to put back if it fails. */
const copyCounters = (c: Counters): Counters => ({ ...c, streams: Object.fromEntries(Object.entries(c.streams).map(([k, v]) => [k, { ...v }])) });

export interface IngestResult {
  accepted: number;
  /** points for a window already emitted: stored raw, counted, in no window */
  late: number;
  filtered: number;
}

/** An HTTP batch's Idempotency-Key, per device ('' for an anonymous client), and the digest of what it names. */
export interface Idempotency {
  device: string;
  key: string;
  /** sha256 of the decoded body and its kind */
  digest: string;
}

export class DataHub extends EventEmitter {
  readonly store: HubStore;
  private readonly pipelines = new Map<string, Pipeline>();
  private readonly specs = new Map<string, string>();
  private current: Record<string, StreamSpec> = {};
  private buffered = new Map<string, Pending>();
  private counters: Counters;
  private readonly retention: Retention;
  private readonly now: () => number;
  private timers: NodeJS.Timeout[] = [];
  /** the embedded broker's queue counters, for the stats (set when it starts) */
  brokerStats: (() => BrokerQueueStats) | null = null;
  /** the bridge upstream, when there is one: its stats, and the windows it still needs kept */
  bridge: { stats(): BridgeStats; keepWindowsAfter(): number } | null = null;
  /** MQTT QoS 1/2 messages taken, by (client, packet id): a re-send of one is not stored again */
  private readonly redeliveries: Redeliveries;

  constructor(private readonly o: HubOptions) {
    super();
    this.store = new HubStore(o.dataDir);
    this.redeliveries = new Redeliveries(this.store);
    this.now = o.now ?? Date.now;
    this.retention = { maxAgeMs: 24 * 3600_000, maxBytes: 1 << 30, ...o.retention };
    const saved = this.store.getMeta('counters');
    this.counters = saved ? JSON.parse(saved) : { pointsIn: 0, bytesIn: 0, rejected: {}, windows: 0, bytesForwarded: 0, streams: {} };
    this.transaction = this.store.db.transaction((fn: () => void) => fn());
  }

  /** runs its argument in one SQLite transaction (made once: it is called for every commit) */
  private readonly transaction: (fn: () => void) => void;

  start(): void {
    this.timers.push(setInterval(() => this.tick(), Math.min(100, this.o.flushMs ?? 50)));
    this.timers.push(setInterval(() => this.housekeeping(), 10_000));
  }

  close(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
    this.commitNow(); // what is waiting (HTTP batches, MQTT messages) is stored before the store closes
    this.tick();
    this.saveCounters();
    this.store.close();
  }

  /**
   * The streams this node processes (from its apps' manifests and the hub's
   * own config). A new or changed stream resumes from its stored watermark and
   * rebuilds its open windows from the raw points kept since.
   */
  setStreams(specs: Record<string, StreamSpec>): void {
    // points waiting go in the usual commit, with their messages' keys and acknowledgements
    // (after a failed commit, which rebuilds the streams here, none wait: no recursion)
    if (this.buffered.size > 0) this.commitNow();
    this.current = specs;
    this.sources = new SourceTable(specs);
    this.emit('sources', this.sourceTopics());
    for (const name of [...this.pipelines.keys()]) {
      if (!specs[name]) { this.flush(name); this.pipelines.delete(name); this.specs.delete(name); }
    }
    for (const [name, spec] of Object.entries(specs)) {
      const key = JSON.stringify(spec);
      if (this.specs.get(name) === key) continue;
      this.flush(name);
      const mark = this.store.watermark(markKey(name, spec));
      const p = new Pipeline(name, spec, mark ?? 0);
      // replay: points stored but not yet in an emitted window (a restart, a changed spec)
      const from = spec.windowMs !== undefined ? { fromTs: mark ?? 0 } : { afterPos: mark ?? 0 };
      let replayed = 0;
      for (const { pos, batch } of this.store.batchesFrom(name, from)) {
        for (let i = 0; i < batch.v.length; i++) {
          if (from.afterPos !== undefined && pos + i <= from.afterPos) continue;
          const ts = tsOf(batch, i);
          if (from.fromTs !== undefined && spec.windowMs !== undefined && ts < (mark ?? 0)) continue;
          p.add(ts, batch.v[i]!, pos + i, batch.device ?? null);
          replayed++;
        }
      }
      p.counters.pointsIn = 0;
      p.counters.filtered = 0;
      this.pipelines.set(name, p);
      this.specs.set(name, key);
      if (replayed) this.o.log.info({ stream: name, replayed }, 'stream resumed from stored points');
    }
  }

  streamNames(): string[] {
    return [...this.pipelines.keys()];
  }

  private sources = new SourceTable({});

  /** The topic patterns streams read besides outpost/data (an external broker is subscribed to them). */
  sourceTopics(): string[] {
    return [...new Set(Object.values(this.current).flatMap((s) => (s.from ?? []).map((f) => f.topic)))];
  }

  /**
   * The streams a message on `topic` feeds through their sources, each with
   * the device the topic names (else `device`, the publisher's credential);
   * empty when no stream reads the topic.
   */
  routes(topic: string, device: string | null): Target[] {
    if (this.sources.size === 0) return [];
    return this.sources.routes(topic).map((r) => ({ stream: r.source.stream, device: r.device ?? device, field: r.source.field, ts: r.source.ts }));
  }

  /** How a stream reads a point's ts now: its unit, no older than the retention, no further ahead than its maxSkewMs. */
  pointRules(stream: string): TsRules {
    const spec = this.pipelines.get(stream)?.spec;
    // a spec from an older control plane has neither field
    return tsRules(spec?.tsUnit ?? 'ms', this.now(), this.retention.maxAgeMs, spec?.maxSkewMs ?? DEFAULT_MAX_SKEW_MS);
  }

  /** Batches with an Idempotency-Key taken but not yet committed: a copy arriving meanwhile waits for the first one's answer. */
  private readonly inflight = new Map<string, { stream: string; digest: string; answer: Promise<IngestResult> }>();

  /**
   * The answer already given (or about to be) to a batch with this key: a
   * device's re-send after a timeout, answered without storing anything.
   * Null for a new key. Synchronous, and called with nothing awaited before
   * ingest(), so two copies arriving together are stored once.
   */
  prior(stream: string, id: Idempotency): Promise<IngestResult> | null {
    const flying = this.inflight.get(`${id.device}\n${id.key}`);
    const kept = flying ?? this.store.keys.find(id.device, id.key);
    if (!kept) return null;
    if (kept.stream !== stream || kept.digest !== id.digest) {
      throw new OutpostError('E_CONFLICT', `the Idempotency-Key "${id.key}" was used for another batch${kept.stream !== stream ? ` (to the stream "${kept.stream}")` : ''} less than retention.maxAgeMs ago: a key names one batch`, { path: 'idempotency-key' });
    }
    return flying ? flying.answer : Promise.resolve(JSON.parse(kept.answer as string) as IngestResult);
  }

  /**
   * An HTTP batch: stored before it is acknowledged, so an accepted point is
   * never lost. Batches that arrive together are committed in one transaction
   * (a commit costs more than the rows in it), then all are answered.
   */
  ingest(stream: string, b: Batch, bytes: number, id?: Idempotency): Promise<IngestResult> {
    if (!this.pipelines.has(stream)) return Promise.reject(new OutpostError('E_UNKNOWN_STREAM', `no app on this node declares the stream "${stream}"`, { path: 'stream' }));
    const answer = new Promise<IngestResult>((resolve, reject) => {
      this.incoming.push({ stream, b, bytes, id, resolve, reject });
      this.commitSoon();
    });
    if (id) {
      // committed (the key is in the store) or refused (a re-send may try again): no longer in flight
      const k = `${id.device}\n${id.key}`;
      this.inflight.set(k, { stream, digest: id.digest, answer });
      const done = () => { this.inflight.delete(k); };
      answer.then(done, done);
    }
    return answer;
  }

  private incoming: { stream: string; b: Batch; bytes: number; id?: Idempotency; resolve: (r: IngestResult) => void; reject: (e: unknown) => void }[] = [];
  /** MQTT messages (QoS 1 and 2) waiting for their points to be stored: each is acknowledged to its device only then */
  private waiting: ((err: Error | null) => void)[] = [];
  private queued: NodeJS.Immediate | null = null;

  /**
   * Commits what is waiting once the event loop is free, not after a timer: a
   * device that keeps few messages in flight (libmosquitto: 20) sends the next
   * ones only when these are acknowledged, so a timer would cap it at a round
   * per tick. Everything that arrived in the same turn (one socket read's
   * messages, every readable connection, HTTP bodies) shares the transaction:
   * groups grow only while the hub is busy.
   */
  private commitSoon(): void {
    this.queued ??= setImmediate(() => this.commitNow());
  }

  /** Stores buffered MQTT points and waiting HTTP batches in one transaction, then answers them all. */
  private commitNow(): void {
    if (this.queued) clearImmediate(this.queued);
    this.queued = null;
    if (this.incoming.length === 0 && this.buffered.size === 0 && this.waiting.length === 0 && !this.redeliveries.dirty) return;
    const items = this.incoming;
    this.incoming = [];
    const results: IngestResult[] = [];
    const err = this.inTransaction(() => {
      this.flushBuffered(); // MQTT points that came first keep their place
      for (const it of items) {
        const p = this.pipelines.get(it.stream);
        if (!p) throw new OutpostError('E_UNKNOWN_STREAM', `the stream "${it.stream}" was just removed`, { path: 'stream' });
        const r = { accepted: it.b.v.length, ...this.accept(it.stream, p, it.b, it.bytes) };
        // in the points' transaction: a crash keeps both or neither
        if (it.id) this.store.keys.keep(it.id.device, it.id.key, { stream: it.stream, digest: it.id.digest, answer: JSON.stringify(r) }, this.now());
        results.push(r);
      }
    });
    items.forEach((it, i) => (err ? it.reject(err) : it.resolve(results[i]!)));
  }

  /**
   * Runs a group of stores in one transaction; acknowledges the MQTT messages
   * it stored, or refuses them if it failed. After a failure nothing of the
   * group was stored: every stream's open windows and the counters are
   * rebuilt from what was, so a device's retry does not count twice.
   */
  private inTransaction(fn: () => void): unknown {
    const waiting = this.waiting;
    this.waiting = [];
    const before = copyCounters(this.counters);
    const mark = this.store.batchMark();
    try {
      // the messages' keys go with their points: both stored, or neither
      this.transaction(() => { fn(); this.redeliveries.write(this.now()); });
    } catch (e) {
      this.store.rollbackBatches(mark);
      this.redeliveries.settle(false);
      this.o.log.error({ err: e }, 'storing points failed');
      this.counters = before;
      for (const cb of waiting) cb(e as Error);
      this.specs.clear();
      this.setStreams(this.current);
      return e;
    }
    this.redeliveries.settle();
    for (const cb of waiting) cb(null);
    return null;
  }

  /**
   * An MQTT message: never throws; bad ones are counted and dropped. With
   * `onStored` (a QoS 1/2 acknowledgement) the points are committed as soon
   * as the event loop is free and `onStored` is called once they are (for
   * every message, stored or not, in the order they came: MQTT answers QoS 1
   * in order); without (QoS 0) they wait for the next tick or for other
   * points' commit. With `key` (QoS 1/2), a re-send of a message already
   * taken is acknowledged and not stored again (dedup.ts). An empty payload
   * (clearing a retained message) carries no point and is not counted.
   */
  ingestMessage(stream: string, payload: Buffer, onStored?: (err: Error | null) => void, key?: MessageKey, device: string | null = null): void {
    this.ingestTo([{ stream, device }], payload, onStored, key);
  }

  /** As ingestMessage, for a message several streams may read (their sources' fields): once de-duplicated, then into each. */
  ingestTo(targets: Target[], payload: Buffer, onStored?: (err: Error | null) => void, key?: MessageKey): void {
    let full = false;
    if (payload.length > 0 && !(key && this.isResend(key, payload))) {
      // the message's bytes count once, with its first stream
      targets.forEach((t, i) => { full = this.buffer(t, payload, i === 0 ? payload.length : 0) || full; });
    }
    if (onStored) {
      this.waiting.push(onStored);
      this.commitSoon();
    }
    if (full) this.commitNow();
  }

  /** A PUBREL: the client's QoS 2 exchange with this packet id is over. */
  releaseMessage(client: string, mid: number): void {
    this.redeliveries.release(client, mid);
    this.commitSoon();
  }

  /** A clean MQTT session began or ended: the hub keeps no message keys for its client. */
  forgetSession(client: string): void {
    this.redeliveries.forget(client);
    this.commitSoon();
  }

  private isResend(key: MessageKey, payload: Buffer): boolean {
    const digest = digestOf(key.topic, payload);
    if (key.dup && this.redeliveries.seen(key, digest)) {
      this.o.log.debug({ client: key.client, mid: key.mid, topic: key.topic }, 'MQTT re-send of a message already stored');
      return true;
    }
    this.redeliveries.take(key, digest);
    return false;
  }

  /** Parses a message for one target and buffers its points; true when the buffer should be stored now. */
  private buffer(t: Target, payload: Buffer, bytes: number): boolean {
    const { stream, device } = t;
    if (!this.pipelines.has(stream)) { this.reject('E_UNKNOWN_STREAM', null); return false; }
    const rules = this.pointRules(stream);
    const b = t.field ? parseObjectMessage(payload, this.now(), t.field, t.ts ?? null, rules) : parseMessage(payload, this.now(), rules);
    if ('code' in b) { this.reject(b.code, stream); return false; }
    const k = device === null ? stream : `${stream}\u0000${device}`;
    let q = this.buffered.get(k);
    if (!q) this.buffered.set(k, (q = { stream, device, v: [], ts: [], bytes: 0 }));
    // each message keeps its own arrival time: a point that arrived before a
    // window's end belongs to that window even if stored just after it
    for (let i = 0; i < b.v.length; i++) {
      q.v.push(b.v[i]!);
      q.ts.push(tsOf(b, i));
    }
    q.bytes += bytes;
    return q.v.length >= 10_000;
  }

  reject(code: string, stream: string | null): void {
    this.counters.rejected[code] = (this.counters.rejected[code] ?? 0) + 1;
    if (stream) this.streamStats(stream).rejected++;
  }

  private readonly warned = new Map<string, { at: number; more: number }>();

  /**
   * A refusal of who may do what (no or wrong credentials, no right, too
   * large, cross-origin): counted by code in the hub's stats (in no stream's:
   * the claim is the refused party's) and logged at warn, at most once per
   * code every 10 s (a device retrying in a loop must not flood the log).
   */
  refuse(code: 'E_UNAUTHORIZED' | 'E_FORBIDDEN' | 'E_TOO_LARGE' | 'E_INVALID', info: Record<string, unknown>): void {
    this.reject(code, null);
    const w = this.warned.get(code);
    const now = Date.now();
    if (w && now - w.at < 10_000) { w.more++; return; }
    this.o.log.warn({ code, ...info, ...(w?.more ? { alsoRefusedSinceLastLog: w.more } : {}) }, 'hub refused');
    this.warned.set(code, { at: now, more: 0 });
  }

  /**
   * Every buffered stream leaves the buffer at once, before any is stored: if
   * one store fails, the whole group is refused, and no stream left behind may
   * be stored afterwards (outside the transaction, after its devices were told
   * to send again) by the recovery's rebuild.
   */
  private flushBuffered(): void {
    const all = this.buffered;
    this.buffered = new Map();
    for (const q of all.values()) this.store1(q);
  }

  /** Stores a stream's buffered points (every device's). */
  private flush(stream: string): void {
    for (const [k, q] of this.buffered) {
      if (q.stream !== stream) continue;
      this.buffered.delete(k);
      this.store1(q);
    }
  }

  private store1(q: Pending): void {
    const p = this.pipelines.get(q.stream);
    if (q.v.length === 0 || !p) return;
    const at = this.now();
    this.accept(q.stream, p, { v: Float64Array.from(q.v), ts: Float64Array.from(q.ts), at, device: q.device }, q.bytes);
  }

  /** Stores the batch, then feeds the pipeline; returns how many points were late or filtered out. */
  private accept(stream: string, p: Pipeline, b: Batch, bytes: number): { late: number; filtered: number } {
    const base = this.store.append(stream, b);
    const late0 = p.counters.late;
    const filtered0 = p.counters.filtered;
    const { v, ts } = b;
    const device = b.device ?? null;
    if (ts) for (let i = 0; i < v.length; i++) p.add(ts[i]!, v[i]!, base + i, device);
    else for (let i = 0; i < v.length; i++) p.add(b.at, v[i]!, base + i, device);
    const s = this.streamStats(stream);
    s.pointsIn += b.v.length;
    s.bytesIn += bytes;
    s.late += p.counters.late - late0;
    s.filtered += p.counters.filtered - filtered0;
    this.counters.pointsIn += b.v.length;
    this.counters.bytesIn += bytes;
    if (p.spec.windowCount !== undefined) this.emitDue(stream, p);
    return { late: p.counters.late - late0, filtered: p.counters.filtered - filtered0 };
  }

  private streamStats(stream: string): StreamStats {
    return (this.counters.streams[stream] ??= emptyStream());
  }

  private emitDue(stream: string, p: Pipeline): void {
    const due = p.due(this.now());
    if (due.length === 0) return;
    this.store.emit(stream, markKey(stream, p.spec), due, p.watermark, this.now());
    this.streamStats(stream).windows += due.length;
    this.counters.windows += due.length;
    this.emit('windows', due.length);
  }

  /** Stores buffered MQTT points and emits the windows whose time has come. */
  tick(): void {
    if (this.buffered.size > 0) this.commitNow();
    try {
      for (const [s, p] of this.pipelines) this.emitDue(s, p);
    } catch (e) {
      // the windows were not stored: rebuild them from the raw points
      this.o.log.error({ err: e }, 'emitting windows failed');
      this.specs.clear();
      this.setStreams(this.current);
    }
  }

  private lastSaved = 0;
  private housekeeping(): void {
    try {
      const r = this.store.retain(this.retention, this.now(), this.bridge?.keepWindowsAfter() ?? Infinity);
      const messageKeys = this.store.pruneMessageKeys(KEYS_PER_CLIENT, this.now() - this.retention.maxAgeMs);
      const httpKeys = this.store.keys.forget(this.now() - this.retention.maxAgeMs);
      if (r.batches || r.windows || messageKeys || httpKeys) this.o.log.debug({ ...r, messageKeys, httpKeys }, 'retention');
      this.saveCounters();
    } catch (e) {
      this.o.log.error({ err: e }, 'hub housekeeping failed');
    }
  }

  private saveCounters(): void {
    this.lastSaved = this.now();
    this.store.setMeta('counters', JSON.stringify(this.counters));
  }

  /** For the uplink: the oldest unacknowledged windows. */
  unsent(limit = 500): StoredWindow[] {
    return this.store.unsent(limit);
  }

  ack(seqs: number[]): void {
    this.counters.bytesForwarded += this.store.ack(seqs);
    if (this.now() - this.lastSaved > 1000) this.saveCounters();
  }

  stats(): HubStats {
    const q = this.store.queue();
    const c = this.counters;
    return {
      hubId: this.store.hubId,
      ...structuredClone(c),
      reduction: c.bytesForwarded > 0 ? Math.round((c.bytesIn / c.bytesForwarded) * 10) / 10 : null,
      queueDepth: q.depth,
      oldestUnsentMs: q.oldest === null ? null : this.now() - q.oldest,
      rawBytes: this.store.rawBytes(),
      ...(this.brokerStats ? { broker: this.brokerStats() } : {}),
      ...(this.bridge ? { bridge: this.bridge.stats() } : {}),
    };
  }
}

