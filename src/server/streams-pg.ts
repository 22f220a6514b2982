// Window results in the PostgreSQL database the instances share (the table
// is made by the store's migrations, postgres.ts): a hub whose agent moves
// to another instance re-sends what was not acknowledged, and it is stored
// once. An acknowledgement goes out only after the insert committed.
import type pg from 'pg';
import type { UplinkWindow } from '../core/types.js';
import { validWindows, type HeldWindow, type StreamSummary, type WindowQuery, type WindowStore } from './streams.js';

export class PgWindowStore implements WindowStore {
  constructor(private readonly pool: pg.Pool) {}

  async add(node: string, hub: string, items: UplinkWindow[], now: number): Promise<number[]> {
    const ok = validWindows(items);
    if (!ok.length) return [];
    await this.pool.query(
      `INSERT INTO windows (node, hub, seq, stream, start, "end", doc, received)
SELECT $1, $2, q, s, b, e, d::json, $3 FROM unnest($4::bigint[], $5::text[], $6::float8[], $7::float8[], $8::text[]) AS t(q, s, b, e, d)
ON CONFLICT (node, hub, seq) DO NOTHING`,
      [node, hub, now, ok.map((i) => i.seq), ok.map((i) => i.doc.stream), ok.map((i) => i.doc.start), ok.map((i) => i.doc.end), ok.map((i) => JSON.stringify(i.doc))],
    );
    return ok.map((i) => i.seq);
  }

  async summary(): Promise<StreamSummary[]> {
    const r = await this.pool.query<{ node: string; stream: string; windows: string; firststart: number | null; lastend: number | null }>(
      'SELECT node, stream, count(*) AS windows, min(start) AS firststart, max("end") AS lastend FROM windows GROUP BY stream, node ORDER BY stream, node',
    );
    return r.rows.map((x) => ({ node: x.node, stream: x.stream, windows: Number(x.windows), firstStart: x.firststart, lastEnd: x.lastend }));
  }

  async windows(stream: string, q: WindowQuery): Promise<HeldWindow[]> {
    const r = await this.pool.query<{ node: string; doc: Omit<HeldWindow, 'node'> }>(
      'SELECT node, doc FROM windows WHERE stream = $1 AND ($2::text IS NULL OR node = $2) AND start >= $3 AND start < $4 ORDER BY start, node LIMIT $5',
      [stream, q.node ?? null, q.from ?? 0, q.to ?? 8.64e15, q.limit ?? 100_000],
    );
    return r.rows.map((x) => ({ node: x.node, ...x.doc }) as HeldWindow);
  }

  async prune(before: number): Promise<number> {
    return (await this.pool.query('DELETE FROM windows WHERE "end" < $1', [before])).rowCount ?? 0;
  }

  /** the pool is the store's: it closes with it */
  async close(): Promise<void> {}
}
