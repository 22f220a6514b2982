// The data hub beside each agent: points in (from the HTTP and MQTT
// transports), raw points and window results stored locally, results queued
// for the control plane. Transports live in http.ts and mqtt.ts; this file
// holds the ingest path, the pipelines, the clock and the accounting.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { OutpostError } from '../core/errors.js';
import type { HubStats, StreamStats } from '../core/types.js';
import { Pipeline, type StreamSpec } from '../core/pipeline.js';
import { parseMessage, tsOf, type Batch } from '../core/points.js';
import { HubStore, POS_SCALE, type Retention, type StoredWindow } from './store.js';

export interface HubOptions {
  dataDir: string;
  log: Logger;
  retention?: Partial<Retention>;
  /** MQTT points wait at most this long to be stored as one batch */
  flushMs?: number;
  now?: () => number;
}

const emptyStream = (): StreamStats => ({ pointsIn: 0, bytesIn: 0, rejected: 0, late: 0, filtered: 0, windows: 0 });

interface Pending { v: number[]; ts: number[]; bytes: number }

export class DataHub extends EventEmitter {
  readonly store: HubStore;
  private readonly pipelines = new Map<string, Pipeline>();
  private readonly specs = new Map<string, string>();
  private readonly buffered = new Map<string, Pending>();
  private readonly counters: Omit<HubStats, 'hubId' | 'reduction' | 'queueDepth' | 'oldestUnsentMs' | 'rawBytes'>;
  private readonly retention: Retention;
  private readonly now: () => number;
  private timers: NodeJS.Timeout[] = [];

  constructor(private readonly o: HubOptions) {
    super();
    this.store = new HubStore(o.dataDir);
    this.now = o.now ?? Date.now;
    this.retention = { maxAgeMs: 24 * 3600_000, maxBytes: 1 << 30, ...o.retention };
    const saved = this.store.getMeta('counters');
    this.counters = saved ? JSON.parse(saved) : { pointsIn: 0, bytesIn: 0, rejected: {}, windows: 0, bytesForwarded: 0, streams: {} };
  }

  start(): void {
    this.timers.push(setInterval(() => this.tick(), Math.min(100, this.o.flushMs ?? 50)));
    this.timers.push(setInterval(() => this.housekeeping(), 10_000));
  }

  close(): void {
    for (const t of this.timers) clearInterval(t);
    this.timers = [];
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
    for (const name of [...this.pipelines.keys()]) {
      if (!specs[name]) { this.flush(name); this.pipelines.delete(name); this.specs.delete(name); }
    }
    for (const [name, spec] of Object.entries(specs)) {
      const key = JSON.stringify(spec);
      if (this.specs.get(name) === key) continue;
      this.flush(name);
      const mark = this.store.watermark(name);
      const p = new Pipeline(name, spec, mark ?? 0);
      // replay: points stored but not yet in an emitted window (a restart, a changed spec)
      const from = spec.windowMs !== undefined ? { fromTs: mark ?? 0 } : { afterPos: mark ?? 0 };
      let replayed = 0;
      for (const { pos, batch } of this.store.batchesFrom(name, from)) {
        for (let i = 0; i < batch.v.length; i++) {
          if (from.afterPos !== undefined && pos + i <= from.afterPos) continue;
          const ts = tsOf(batch, i);
          if (from.fromTs !== undefined && spec.windowMs !== undefined && ts < (mark ?? 0)) continue;
          p.add({ ts, v: batch.v[i]! }, pos + i);
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

  /** An HTTP batch: stored before it is acknowledged, so an accepted point is never lost. */
  ingest(stream: string, b: Batch, bytes: number): { accepted: number; late: number; filtered: number } {
    const p = this.pipelines.get(stream);
    if (!p) throw new OutpostError('E_UNKNOWN_STREAM', `no app on this node declares the stream "${stream}"`, { path: 'stream' });
    this.flush(stream); // keep the stream's points in arrival order
    return { accepted: b.v.length, ...this.accept(stream, p, b, bytes) };
  }

  /** An MQTT message: never throws; bad ones are counted and dropped. */
  ingestMessage(stream: string, payload: Buffer): void {
    const p = this.pipelines.get(stream);
    if (!p) return this.reject('E_UNKNOWN_STREAM', null);
    const b = parseMessage(payload, this.now());
    if (typeof b === 'string') return this.reject('E_BAD_POINT', stream);
    let q = this.buffered.get(stream);
    if (!q) this.buffered.set(stream, (q = { v: [], ts: [], bytes: 0 }));
    // each message keeps its own arrival time: a point that arrived before a
    // window's end belongs to that window even if stored just after it
    for (let i = 0; i < b.v.length; i++) {
      q.v.push(b.v[i]!);
      q.ts.push(tsOf(b, i));
    }
    q.bytes += payload.length;
    if (q.v.length >= 10_000) this.flush(stream);
  }

  reject(code: string, stream: string | null): void {
    this.counters.rejected[code] = (this.counters.rejected[code] ?? 0) + 1;
    if (stream) this.streamStats(stream).rejected++;
  }

  private flush(stream: string): void {
    const q = this.buffered.get(stream);
    const p = this.pipelines.get(stream);
    if (!q || q.v.length === 0 || !p) return;
    this.buffered.delete(stream);
    const at = this.now();
    this.accept(stream, p, { v: Float64Array.from(q.v), ts: Float64Array.from(q.ts), at }, q.bytes);
  }

  /** Stores the batch, then feeds the pipeline; returns how many points were late or filtered out. */
  private accept(stream: string, p: Pipeline, b: Batch, bytes: number): { late: number; filtered: number } {
    const base = this.store.append(stream, b);
    const late0 = p.counters.late;
    const filtered0 = p.counters.filtered;
    for (let i = 0; i < b.v.length; i++) p.add({ ts: tsOf(b, i), v: b.v[i]! }, base + i);
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
    this.store.emit(stream, due, p.watermark, this.now());
    this.streamStats(stream).windows += due.length;
    this.counters.windows += due.length;
    this.emit('windows', due.length);
  }

  /** Stores buffered MQTT points and emits the windows whose time has come. */
  tick(): void {
    for (const s of this.buffered.keys()) this.flush(s);
    for (const [s, p] of this.pipelines) this.emitDue(s, p);
  }

  private lastSaved = 0;
  private housekeeping(): void {
    try {
      const r = this.store.retain(this.retention, this.now());
      if (r.batches || r.windows) this.o.log.debug(r, 'retention');
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
    };
  }
}

export { POS_SCALE };
export type { HubStats, StreamStats };
