// Window results from every node's data hub, kept by the control plane in
// their own SQLite file (they grow with time; the control state does not).
// A result is keyed by (node, hub, seq): a re-sent one is acknowledged again
// and stored once.
import Database from 'better-sqlite3';
import type { UplinkWindow } from '../core/types.js';

export interface HeldWindow {
  /** the node whose hub emitted it */
  node: string;
  /** the stream */
  stream: string;
  /** epoch ms; a count window's first point */
  start: number;
  /** epoch ms; a count window's last point */
  end: number;
  /** points in the window */
  count: number;
  /** one field per operator of the stream (manifest.md) */
  [op: string]: number | string | null;
}

export interface StreamSummary {
  node: string;
  stream: string;
  windows: number;
  firstStart: number | null;
  lastEnd: number | null;
}

/**
 * Where window results are kept: a SQLite file beside a control plane of one
 * process (streams.db), the shared PostgreSQL database for several
 * (streams-pg.ts), so a hub's re-sent results are stored once whichever
 * instance its agent reaches.
 */
export interface WindowStore {
  /** Stores what is new; resolves with every sequence number it now holds (to acknowledge), once committed. */
  add(node: string, hub: string, items: UplinkWindow[], now: number): Promise<number[]>;
  summary(): Promise<StreamSummary[]>;
  windows(stream: string, q: WindowQuery): Promise<HeldWindow[]>;
  /** Deletes window results that ended before `before`; resolves with how many. */
  prune(before: number): Promise<number>;
  close(): Promise<void>;
}

export interface WindowQuery { node?: string; from?: number; to?: number; limit?: number }

/** The items worth storing: a sequence number and the fields every window has. */
export function validWindows(items: UplinkWindow[]): UplinkWindow[] {
  return items.filter((it) => {
    const d = it.doc;
    return Number.isSafeInteger(it.seq) && typeof d?.stream === 'string' && typeof d.start === 'number' && typeof d.end === 'number';
  });
}

export class StreamStore implements WindowStore {
  private readonly db: Database.Database;
  private readonly ins: Database.Statement;

  constructor(file: string) {
    this.db = new Database(file);
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('synchronous = NORMAL');
    this.db.exec(`
CREATE TABLE IF NOT EXISTS windows (node TEXT NOT NULL, hub TEXT NOT NULL, seq INTEGER NOT NULL, stream TEXT NOT NULL, start REAL NOT NULL, end REAL NOT NULL, doc TEXT NOT NULL, received REAL NOT NULL, PRIMARY KEY (node, hub, seq));
CREATE INDEX IF NOT EXISTS windows_stream ON windows(stream, node, start);
`);
    this.ins = this.db.prepare('INSERT OR IGNORE INTO windows (node, hub, seq, stream, start, end, doc, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?)');
  }

  async add(node: string, hub: string, items: UplinkWindow[], now: number): Promise<number[]> {
    const ok = validWindows(items);
    this.db.transaction(() => {
      for (const it of ok) this.ins.run(node, hub, it.seq, it.doc.stream as string, it.doc.start as number, it.doc.end as number, JSON.stringify(it.doc), now);
    })();
    return ok.map((it) => it.seq);
  }

  async summary(): Promise<StreamSummary[]> {
    return this.db.prepare('SELECT node, stream, count(*) AS windows, min(start) AS firstStart, max(end) AS lastEnd FROM windows GROUP BY stream, node ORDER BY stream, node').all() as StreamSummary[];
  }

  async windows(stream: string, q: WindowQuery): Promise<HeldWindow[]> {
    const rows = this.db.prepare(`SELECT node, doc FROM windows WHERE stream = ? ${q.node ? 'AND node = ?' : ''} AND start >= ? AND start < ? ORDER BY start, node LIMIT ?`)
      .all(...[stream, ...(q.node ? [q.node] : []), q.from ?? 0, q.to ?? 8.64e15, q.limit ?? 100_000]) as { node: string; doc: string }[];
    return rows.map((r) => ({ node: r.node, ...(JSON.parse(r.doc) as Omit<HeldWindow, 'node'>) }) as HeldWindow);
  }

  async prune(before: number): Promise<number> {
    return this.db.prepare('DELETE FROM windows WHERE end < ?').run(before).changes;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
