// What several control-plane instances on one PostgreSQL database share
// besides the records: the leader lease, each instance's heartbeat, the
// change notifications, and the files every instance must hold alike (the
// CAs, the admin token), made once under a lock.
//
// Lease times are the database's clock (now()), never an instance's: two
// instances whose clocks disagree still agree on who leads. The epoch grows
// with every change of hands; a commit fenced by an epoch fails once it is
// not the current one (postgres.ts).
import pg from 'pg';
import { CHANGES_CHANNEL, type PostgresStore } from './postgres.js';
import type { InstanceView, LeaseView } from '../../contract/api.js';

/** pg_advisory_lock's key for the one-time initialisation ("init") */
const INIT_LOCK = 0x696e6974;

export type { LeaseView };
/** an instance's heartbeat row */
export type InstanceRow = Omit<InstanceView, 'alive' | 'leader' | 'lag'>;

export interface SharedFile {
  name: string;
  mode: number;
  data: Buffer;
}

export class PgCoordination {
  private listener: pg.Client | null = null;
  private closed = false;

  constructor(private readonly store: PostgresStore, readonly id: string) {}

  private get pool(): pg.Pool {
    return this.store.pool;
  }

  /**
   * Takes the lease if it is free, expired, or this instance's own (held
   * before a failed renewal: a new epoch fences the old one's decisions);
   * the new epoch, or null when another instance holds it.
   */
  async acquire(ttlMs: number): Promise<number | null> {
    const r = await this.pool.query<{ epoch: string }>(
      `INSERT INTO lease (name, holder, epoch, expires) VALUES ('leader', $1, 1, now() + $2 * interval '1 millisecond')
ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, epoch = lease.epoch + 1, expires = excluded.expires WHERE lease.expires < now() OR lease.holder = excluded.holder
RETURNING epoch`,
      [this.id, ttlMs],
    );
    return r.rows[0] ? Number(r.rows[0].epoch) : null;
  }

  /** Extends a lease this instance holds at `epoch`; false when it no longer does. */
  async renew(epoch: number, ttlMs: number): Promise<boolean> {
    const r = await this.pool.query(
      `UPDATE lease SET expires = now() + $3 * interval '1 millisecond' WHERE name = 'leader' AND holder = $1 AND epoch = $2 AND expires > now()`,
      [this.id, epoch, ttlMs],
    );
    return r.rowCount === 1;
  }

  /** Gives the lease up at once (a clean stop), so a successor need not wait for it to expire. */
  async release(epoch: number): Promise<void> {
    await this.pool.query(`UPDATE lease SET expires = now() - interval '1 second' WHERE name = 'leader' AND holder = $1 AND epoch = $2`, [this.id, epoch]);
  }

  async lease(): Promise<LeaseView | null> {
    const r = await this.pool.query<{ holder: string; epoch: string; ms: number }>(
      `SELECT holder, epoch, (extract(epoch FROM expires - now()) * 1000)::float8 AS ms FROM lease WHERE name = 'leader'`,
    );
    const l = r.rows[0];
    return l ? { holder: l.holder, epoch: Number(l.epoch), expiresInMs: Math.round(l.ms) } : null;
  }

  /** This instance's heartbeat; instances silent for a day are forgotten. */
  async heartbeat(doc: Record<string, unknown>, revision: number): Promise<void> {
    await this.pool.query(
      `INSERT INTO instances (id, doc, revision, seen) VALUES ($1, $2, $3, now()) ON CONFLICT (id) DO UPDATE SET doc = excluded.doc, revision = excluded.revision, seen = now()`,
      [this.id, JSON.stringify(doc), revision],
    );
  }

  async instances(): Promise<InstanceRow[]> {
    await this.pool.query(`DELETE FROM instances WHERE seen < now() - interval '1 day'`);
    const r = await this.pool.query<{ id: string; doc: Record<string, unknown>; revision: string; started: Date; ms: number }>(
      `SELECT id, doc, revision, started, (extract(epoch FROM now() - seen) * 1000)::float8 AS ms FROM instances ORDER BY started, id`,
    );
    return r.rows.map((x) => ({ id: x.id, doc: x.doc, revision: Number(x.revision), startedAt: x.started.toISOString(), seenAgoMs: Math.round(x.ms) }));
  }

  async goodbye(): Promise<void> {
    await this.pool.query('DELETE FROM instances WHERE id = $1', [this.id]);
  }

  /**
   * Hears every commit's notification. On a broken connection (the database
   * restarted) it connects again, backing off up to 5 s, and calls `f` once
   * connected: what was committed meanwhile was not notified to it.
   */
  listen(f: () => void): void {
    let wait = 250;
    const connect = async () => {
      if (this.closed) return;
      const c = new pg.Client({ connectionString: this.store.url, keepAlive: true });
      c.on('error', () => {}); // the 'end' below reconnects
      c.on('notification', () => f());
      c.on('end', () => {
        if (this.listener === c) this.listener = null;
        if (!this.closed) setTimeout(() => void connect(), wait);
      });
      try {
        await c.connect();
        await c.query(`LISTEN ${CHANGES_CHANNEL}`);
        this.listener = c;
        wait = 250;
        f();
      } catch {
        wait = Math.min(wait * 2, 5000);
        await c.end().catch(() => {});
      }
    };
    void connect();
  }

  /** Whether the notification connection is up (status shows it). */
  get listening(): boolean {
    return this.listener !== null;
  }

  /**
   * Runs `f` holding the initialisation lock (one instance at a time, across
   * the database): the first instance makes the shared files, the others
   * take them. `f` gets the files the database holds and answers the ones to
   * add.
   */
  async initialise(f: (held: SharedFile[]) => Promise<SharedFile[]>): Promise<void> {
    const c = await this.pool.connect();
    try {
      await c.query('SELECT pg_advisory_lock($1)', [INIT_LOCK]);
      try {
        const held = (await c.query<SharedFile>('SELECT name, mode, data FROM shared_files ORDER BY name')).rows;
        const add = await f(held);
        for (const x of add) await c.query('INSERT INTO shared_files (name, mode, data) VALUES ($1, $2, $3) ON CONFLICT (name) DO NOTHING', [x.name, x.mode, x.data]);
      } finally {
        await c.query('SELECT pg_advisory_unlock($1)', [INIT_LOCK]);
      }
    } finally {
      c.release();
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    const l = this.listener;
    this.listener = null;
    await l?.end().catch(() => {});
  }
}
