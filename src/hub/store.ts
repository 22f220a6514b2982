// The data hub's local store (SQLite, WAL): raw points as typed-array blobs,
// one row per ingested batch; window results with a sequence number and an
// acked flag (the store-and-forward queue); each stream's watermark, written
// in the same transaction as the windows it covers, so a restart neither
// repeats nor loses a window.
import Database from 'better-sqlite3';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Batch } from '../core/points.js';
import type { WindowResult } from '../core/window.js';

/** A point's position: its batch's row id times this, plus its index in the batch (batches hold at most 100,000 points). */
export const POS_SCALE = 1 << 20;

export interface StoredWindow {
  seq: number;
  doc: WindowResult;
  created: number;
  bytes: number;
}

export interface Retention {
  maxAgeMs: number;
  maxBytes: number;
}

export class HubStore {
  readonly db: Database.Database;
  readonly hubId: string;

  constructor(dir: string) {
    fs.mkdirSync(dir, { recursive: true });
    this.db = new Database(path.join(dir, 'hub.db'));
    this.db.pragma('journal_mode = WAL');
    // NORMAL in WAL mode: a commit survives a crash of the process (not of the OS) without an fsync each
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS batches (id INTEGER PRIMARY KEY, stream TEXT NOT NULL, t0 REAL NOT NULL, t1 REAL NOT NULL, n INTEGER NOT NULL, at REAL NOT NULL, v BLOB NOT NULL, ts BLOB, bytes INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS batches_stream_t1 ON batches(stream, t1);
CREATE TABLE IF NOT EXISTS windows (seq INTEGER PRIMARY KEY AUTOINCREMENT, stream TEXT NOT NULL, start REAL NOT NULL, end REAL NOT NULL, doc TEXT NOT NULL, created REAL NOT NULL, acked INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS windows_unacked ON windows(acked, seq);
CREATE INDEX IF NOT EXISTS windows_stream ON windows(stream, start);
CREATE TABLE IF NOT EXISTS watermarks (stream TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE IF NOT EXISTS mqtt_keys (client TEXT NOT NULL, mid INTEGER NOT NULL, digest INTEGER NOT NULL, at REAL NOT NULL, PRIMARY KEY (client, mid)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS mqtt_keys_at ON mqtt_keys(at);
`);
    // a batch's device (a stream grouped by device replays its windows by it): added to stores made before
    if (!(this.db.prepare('PRAGMA table_info(batches)').all() as { name: string }[]).some((c) => c.name === 'device')) this.db.exec('ALTER TABLE batches ADD COLUMN device TEXT');
    // the hub's identity: the control plane de-duplicates by (node, hub, seq),
    // so a hub whose store was wiped starts a new sequence rather than colliding
    let id = this.getMeta('hubId');
    if (!id) this.setMeta('hubId', (id = crypto.randomUUID()));
    this.hubId = id;
    this.insBatch = this.db.prepare('INSERT INTO batches (id, stream, t0, t1, n, at, v, ts, bytes, device) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)');
    // batch ids never go back (a bridge's cursor and count windows' positions are ids): SQLite would
    // reuse them once the retention emptied the table, so the highest one ever given is kept too
    const top = (this.db.prepare('SELECT coalesce(max(id), 0) AS m FROM batches').get() as { m: number }).m;
    this.lastBatchId = Math.max(top, Number(this.getMeta('batches.lastId') ?? 0));
    this.insWindow = this.db.prepare('INSERT INTO windows (stream, start, end, doc, created) VALUES (?, ?, ?, ?, ?)');
    this.setMark = this.db.prepare('INSERT INTO watermarks (stream, value) VALUES (?, ?) ON CONFLICT(stream) DO UPDATE SET value = excluded.value');
    this.getKey = this.db.prepare('SELECT digest FROM mqtt_keys WHERE client = ? AND mid = ?');
    this.putKey = this.db.prepare('INSERT INTO mqtt_keys (client, mid, digest, at) VALUES (?, ?, ?, ?) ON CONFLICT(client, mid) DO UPDATE SET digest = excluded.digest, at = excluded.at');
    this.delKey = this.db.prepare('DELETE FROM mqtt_keys WHERE client = ? AND mid = ?');
    this.delKeys = this.db.prepare('DELETE FROM mqtt_keys WHERE client = ?');
    this.bytes = this.sumBytes();
    this.keys = new IdempotencyKeys(this.db);
  }

  /** HTTP batches' Idempotency-Keys, written in the transaction that stores their points */
  readonly keys: IdempotencyKeys;

  /** raw bytes stored, kept as a running total (a sum over every batch each second would scan the table) */
  private bytes: number;

  private sumBytes(): number {
    return (this.db.prepare('SELECT coalesce(sum(bytes), 0) AS b FROM batches').get() as { b: number }).b;
  }

  private readonly insBatch: Database.Statement;
  private lastBatchId: number;

  /** The batch id a transaction starts from, to give back if it is rolled back (no gap that looks like a loss). */
  batchMark(): number {
    return this.lastBatchId;
  }

  rollbackBatches(mark: number): void {
    this.lastBatchId = mark;
  }
  private readonly insWindow: Database.Statement;
  private readonly setMark: Database.Statement;
  private readonly getKey: Database.Statement;
  private readonly putKey: Database.Statement;
  private readonly delKey: Database.Statement;
  private readonly delKeys: Database.Statement;

  /** The digest kept for an MQTT client's packet id (see dedup.ts), or null. */
  messageKey(client: string, mid: number): number | null {
    return (this.getKey.get(client, mid) as { digest: number } | undefined)?.digest ?? null;
  }

  putMessageKey(client: string, mid: number, digest: number, now: number): void {
    this.putKey.run(client, mid, digest, now);
  }

  dropMessageKey(client: string, mid: number): void {
    this.delKey.run(client, mid);
  }

  dropMessageKeys(client: string): void {
    this.delKeys.run(client);
  }

  /** Drops message keys older than `before`, and each client's beyond its newest `perClient` (keys of one commit share a time: they stay or go together); returns how many. */
  pruneMessageKeys(perClient: number, before: number): number {
    let n = this.db.prepare('DELETE FROM mqtt_keys WHERE at < ?').run(before).changes;
    const over = this.db.prepare('SELECT client FROM mqtt_keys GROUP BY client HAVING count(*) > ?').all(perClient) as { client: string }[];
    const nth = this.db.prepare('SELECT at FROM mqtt_keys WHERE client = ? ORDER BY at DESC LIMIT 1 OFFSET ?');
    const del = this.db.prepare('DELETE FROM mqtt_keys WHERE client = ? AND at < ?');
    for (const { client } of over) {
      const r = nth.get(client, perClient) as { at: number } | undefined;
      if (r) n += del.run(client, r.at).changes;
    }
    return n;
  }

  getMeta(key: string): string | null {
    return (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value ?? null;
  }

  setMeta(key: string, value: string): void {
    this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value').run(key, value);
  }

  /** Stores a batch of raw points; returns the position base of its first point. */
  append(stream: string, b: Batch): number {
    let t0 = b.at;
    let t1 = b.at;
    if (b.ts) {
      t0 = Infinity;
      t1 = -Infinity;
      for (const t of b.ts) { if (t < t0) t0 = t; if (t > t1) t1 = t; }
    }
    const v = Buffer.from(b.v.buffer, b.v.byteOffset, b.v.byteLength);
    const ts = b.ts ? Buffer.from(b.ts.buffer, b.ts.byteOffset, b.ts.byteLength) : null;
    const id = ++this.lastBatchId;
    this.insBatch.run(id, stream, t0, t1, b.v.length, b.at, v, ts, v.length + (ts?.length ?? 0), b.device ?? null);
    this.bytes += v.length + (ts?.length ?? 0);
    return id * POS_SCALE;
  }

  /** Raw batches of a stream that may hold points at or after `fromTs`, or after position `afterPos`, oldest first. */
  batchesFrom(stream: string, opts: { fromTs?: number; afterPos?: number }): { pos: number; batch: Batch }[] {
    const rows = (opts.afterPos !== undefined
      ? this.db.prepare('SELECT id, at, v, ts, device FROM batches WHERE stream = ? AND id >= ? ORDER BY id').all(stream, Math.floor(opts.afterPos / POS_SCALE))
      : this.db.prepare('SELECT id, at, v, ts, device FROM batches WHERE stream = ? AND t1 >= ? ORDER BY id').all(stream, opts.fromTs ?? 0)) as { id: number; at: number; v: Buffer; ts: Buffer | null; device: string | null }[];
    return rows.map((r) => ({ pos: r.id * POS_SCALE, batch: { v: floats(r.v), ts: r.ts ? floats(r.ts) : null, at: r.at, device: r.device } }));
  }

  /** Raw points of a stream in [from, to), oldest first, at most `limit`. */
  points(stream: string, from: number, to: number, limit: number): { ts: number; v: number }[] {
    const out: { ts: number; v: number }[] = [];
    const rows = this.db.prepare('SELECT at, v, ts FROM batches WHERE stream = ? AND t1 >= ? AND t0 < ? ORDER BY id').iterate(stream, from, to) as Iterable<{ at: number; v: Buffer; ts: Buffer | null }>;
    for (const r of rows) {
      const v = floats(r.v);
      const ts = r.ts ? floats(r.ts) : null;
      for (let i = 0; i < v.length; i++) {
        const t = ts ? ts[i]! : r.at;
        if (t < from || t >= to) continue;
        out.push({ ts: t, v: v[i]! });
        if (out.length >= limit) return out;
      }
    }
    return out;
  }

  watermark(key: string): number | null {
    return (this.db.prepare('SELECT value FROM watermarks WHERE stream = ?').get(key) as { value: number } | undefined)?.value ?? null;
  }

  /** Queues windows for the uplink and moves the stream's watermark past them, in one transaction. */
  emit(stream: string, markKey: string, windows: WindowResult[], watermark: number, now: number): void {
    this.db.transaction(() => {
      for (const w of windows) this.insWindow.run(stream, w.start, w.end, JSON.stringify(w), now);
      this.setMark.run(markKey, watermark);
    })();
  }

  /** The oldest windows not yet acknowledged by the control plane. */
  unsent(limit: number): StoredWindow[] {
    const rows = this.db.prepare('SELECT seq, doc, created FROM windows WHERE acked = 0 ORDER BY seq LIMIT ?').all(limit) as { seq: number; doc: string; created: number }[];
    return rows.map((r) => ({ seq: r.seq, doc: JSON.parse(r.doc) as WindowResult, created: r.created, bytes: r.doc.length }));
  }

  /** Windows after `seq` (acknowledged or not), oldest first: what a bridge sends next. */
  windowsAfter(seq: number, limit: number): { seq: number; doc: WindowResult }[] {
    const rows = this.db.prepare('SELECT seq, doc FROM windows WHERE seq > ? ORDER BY seq LIMIT ?').all(seq, limit) as { seq: number; doc: string }[];
    return rows.map((r) => ({ seq: r.seq, doc: JSON.parse(r.doc) as WindowResult }));
  }

  windowsAfterCount(seq: number): number {
    return (this.db.prepare('SELECT count(*) AS n FROM windows WHERE seq > ?').get(seq) as { n: number }).n;
  }

  /** Raw batches after batch `id`, oldest first, with their stream and device. */
  batchesAfter(id: number, limit: number): { id: number; stream: string; batch: Batch }[] {
    const rows = this.db.prepare('SELECT id, stream, at, v, ts, device FROM batches WHERE id > ? ORDER BY id LIMIT ?').all(id, limit) as { id: number; stream: string; at: number; v: Buffer; ts: Buffer | null; device: string | null }[];
    return rows.map((r) => ({ id: r.id, stream: r.stream, batch: { v: floats(r.v), ts: r.ts ? floats(r.ts) : null, at: r.at, device: r.device } }));
  }

  /** Marks windows acknowledged; returns the bytes of those newly acknowledged. */
  ack(seqs: number[]): number {
    const get = this.db.prepare('SELECT length(doc) AS n FROM windows WHERE seq = ? AND acked = 0');
    const upd = this.db.prepare('UPDATE windows SET acked = 1 WHERE seq = ?');
    let bytes = 0;
    this.db.transaction(() => {
      for (const s of seqs) {
        const r = get.get(s) as { n: number } | undefined;
        if (!r) continue;
        bytes += r.n;
        upd.run(s);
      }
    })();
    return bytes;
  }

  queue(): { depth: number; oldest: number | null } {
    const r = this.db.prepare('SELECT count(*) AS n, min(created) AS oldest FROM windows WHERE acked = 0').get() as { n: number; oldest: number | null };
    return { depth: r.n, oldest: r.oldest };
  }

  windows(stream: string, from: number, to: number, limit: number): WindowResult[] {
    const rows = this.db.prepare('SELECT doc FROM windows WHERE stream = ? AND start >= ? AND start < ? ORDER BY start LIMIT ?').all(stream, from, to, limit) as { doc: string }[];
    return rows.map((r) => JSON.parse(r.doc) as WindowResult);
  }

  rawBytes(): number {
    return this.bytes;
  }

  /**
   * Drops raw batches older than the age limit, then the oldest until under the
   * byte limit, and acknowledged windows older than the age limit. Windows not
   * yet acknowledged are never dropped: they are the only copy.
   */
  /** `keepWindowsAfter`: windows after this seq stay (a bridge has not sent them yet). */
  retain(r: Retention, now: number, keepWindowsAfter = Infinity): { batches: number; windows: number } {
    const cut = now - r.maxAgeMs;
    this.setMeta('batches.lastId', String(this.lastBatchId));
    let batches = this.db.prepare('DELETE FROM batches WHERE t1 < ?').run(cut).changes;
    let total = (this.bytes = this.sumBytes());
    if (total > r.maxBytes) {
      const rows = this.db.prepare('SELECT id, bytes FROM batches ORDER BY id').iterate() as Iterable<{ id: number; bytes: number }>;
      let upTo = -1;
      for (const row of rows) {
        if (total <= r.maxBytes) break;
        total -= row.bytes;
        upTo = row.id;
      }
      if (upTo >= 0) batches += this.db.prepare('DELETE FROM batches WHERE id <= ?').run(upTo).changes;
    }
    this.bytes = this.sumBytes();
    const windows = this.db.prepare('DELETE FROM windows WHERE acked = 1 AND created < ? AND seq <= ?').run(cut, Number.isFinite(keepWindowsAfter) ? keepWindowsAfter : Number.MAX_SAFE_INTEGER).changes;
    return { batches, windows };
  }

  close(): void {
    this.db.close();
  }
}

/** The first answer to an HTTP batch sent with an Idempotency-Key. */
export interface KeptAnswer {
  stream: string;
  /** sha256 of the stream and the decoded body: the same key with another batch is a device's mistake, not a re-send */
  digest: string;
  answer: string;
}

/**
 * Idempotency-Keys per device: a row is written in the same transaction as
 * the batch's points (the hub's commit), so a crash keeps both or neither,
 * and is deleted with the raw points of its age (retention.maxAgeMs).
 */
export class IdempotencyKeys {
  private readonly get: Database.Statement;
  private readonly put: Database.Statement;
  private readonly drop: Database.Statement;

  constructor(db: Database.Database) {
    db.exec(`
CREATE TABLE IF NOT EXISTS http_keys (device TEXT NOT NULL, key TEXT NOT NULL, stream TEXT NOT NULL, digest TEXT NOT NULL, answer TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (device, key)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS http_keys_at ON http_keys(at);
`);
    this.get = db.prepare('SELECT stream, digest, answer FROM http_keys WHERE device = ? AND key = ?');
    this.put = db.prepare('INSERT INTO http_keys (device, key, stream, digest, answer, at) VALUES (?, ?, ?, ?, ?, ?)');
    this.drop = db.prepare('DELETE FROM http_keys WHERE at < ?');
  }

  find(device: string, key: string): KeptAnswer | null {
    return (this.get.get(device, key) as KeptAnswer | undefined) ?? null;
  }

  /** Inside the transaction that stores the batch. */
  keep(device: string, key: string, kept: KeptAnswer, at: number): void {
    this.put.run(device, key, kept.stream, kept.digest, kept.answer, at);
  }

  /** Forgets keys first used before `cut`; returns how many. */
  forget(cut: number): number {
    return this.drop.run(cut).changes;
  }
}

/** A copy, aligned for Float64Array (SQLite's buffers need not be). */
function floats(b: Buffer): Float64Array {
  const out = new Float64Array(b.length / 8);
  new Uint8Array(out.buffer).set(b);
  return out;
}
