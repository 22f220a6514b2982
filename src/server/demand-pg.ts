// The site proxies' demand windows shared between the instances of a
// control plane on one PostgreSQL database. An agent reports to the instance
// it is connected to; the leader's autopilot must see every node's reports,
// and any instance's `outpost demand` answer them all. Each instance stores
// the windows it took and reads those the others took, by a cursor on their
// seq. Rows are inserted under a transaction lock, so seqs are handed out in
// commit order: a reader never passes over a row that commits later with a
// smaller seq. The table keeps the book's span (ten minutes), so a restarted
// instance starts with it.
import type pg from 'pg';
import type { DemandShare, SharedWindow } from './services/demand.js';
import type { DemandWindow } from '../core/demand.js';

/** pg_advisory_xact_lock's key for the inserts ("dmnd") */
const INSERT_LOCK = 0x646d6e64;
/** rows read at a time */
const PAGE = 5000;

export class PgDemandShare implements DemandShare {
  private cursor = 0;

  constructor(private readonly pool: pg.Pool, private readonly instance: string, private readonly now: () => number = Date.now) {}

  async publish(rows: SharedWindow[]): Promise<void> {
    if (rows.length === 0) return;
    const c = await this.pool.connect();
    try {
      await c.query('BEGIN');
      await c.query('SELECT pg_advisory_xact_lock($1)', [INSERT_LOCK]);
      await c.query(
        'INSERT INTO demand_windows (instance, node, site, received, doc) SELECT $1, n, s, $2, d::json FROM unnest($3::text[], $4::text[], $5::text[]) AS t(n, s, d)',
        [this.instance, this.now(), rows.map((r) => r.node), rows.map((r) => r.site), rows.map((r) => JSON.stringify(r.window))],
      );
      await c.query('COMMIT');
    } catch (e) {
      await c.query('ROLLBACK').catch(() => {});
      throw e;
    } finally {
      c.release();
    }
  }

  async pull(): Promise<SharedWindow[]> {
    const out: SharedWindow[] = [];
    for (;;) {
      // this instance's own rows move the cursor on but are not sent back (it took them already)
      const r = await this.pool.query<{ seq: string; node: string; site: string; doc: DemandWindow | null }>(
        'SELECT seq, node, site, CASE WHEN instance = $2 THEN NULL ELSE doc END AS doc FROM demand_windows WHERE seq > $1 ORDER BY seq LIMIT $3',
        [this.cursor, this.instance, PAGE],
      );
      for (const row of r.rows) if (row.doc) out.push({ node: row.node, site: row.site, window: row.doc });
      if (r.rows.length > 0) this.cursor = Number(r.rows[r.rows.length - 1]!.seq);
      if (r.rows.length < PAGE) return out;
    }
  }

  async prune(before: number): Promise<number> {
    return (await this.pool.query('DELETE FROM demand_windows WHERE received < $1', [before])).rowCount ?? 0;
  }
}
