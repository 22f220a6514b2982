// The PostgreSQL store (`outpost server --store postgres://...`): the same
// contract as the SQLite one (store.contract.test.ts), for a control plane
// whose state must live outside its machine.
//
// Isolation: READ COMMITTED plus one row lock. Every commit first locks the
// store's revision counter (SELECT ... FOR UPDATE on its meta row), so commits
// on one database, from any pool or process, run one at a time, as SQLite's
// single writer does. A statement under READ COMMITTED sees everything
// committed before it started, so the compare-and-set checks made after the
// lock is held read what the previous commit left: two stores can never both
// win on one key. SERIALIZABLE would add nothing here (the counter already
// orders every commit) except serialization failures to retry.
//
// Documents are `json`, not `jsonb`: json keeps the text as written, key order
// included, and the control plane compares documents with JSON.stringify
// (src/server/services/*), so a document must read back exactly as it was
// stored; nothing queries inside a document, so jsonb's operators and
// indexes would buy nothing. Keys are COLLATE "C": key order is byte order,
// as in SQLite, whatever the database's locale.
import pg from 'pg';
import type { AuditEntry, ModelSample } from '../../core/types.js';
import type { EventDraft, OutpostEvent } from '../../core/events.js';
import { OutpostError } from '../../core/errors.js';
import { KINDS, SAMPLES_KEPT, StoreConflict, StoreFenced, type Changed, type EventQuery, type Fence, type Kind, type ListQuery, type Row, type Store, type Write } from './store.js';

/** the kinds the first migrations made tables for (frozen: a migration never changes once released) */
const V1_KINDS = ['nodes', 'apps', 'sites', 'replicas', 'tokens', 'identities', 'devices'];

const PG_V3 = `CREATE TABLE apitokens (key text COLLATE "C" PRIMARY KEY, rev bigint NOT NULL, doc json NOT NULL);
CREATE TABLE secrets (key text COLLATE "C" PRIMARY KEY, rev bigint NOT NULL, doc json NOT NULL);
CREATE INDEX apitokens_rev ON apitokens (rev);
CREATE INDEX secrets_rev ON secrets (rev);
CREATE TABLE audit (id bigserial PRIMARY KEY, at double precision NOT NULL, doc json NOT NULL);
CREATE INDEX audit_at ON audit (at);`;

/** Each step runs once, in order; outpost_schema.version counts those applied. */
export const PG_MIGRATIONS: string[] = [
  // 1: the counter, a table per kind, the replicas' app and node indexed with
  // the key (a node's or an app's replicas come in key order from the index
  // alone, at 100,000 replicas), and the start-time model's samples
  `CREATE TABLE meta (key text COLLATE "C" PRIMARY KEY, value bigint NOT NULL);
INSERT INTO meta VALUES ('revision', 0);
${V1_KINDS.filter((k) => k !== 'replicas').map((k) => `CREATE TABLE ${k} (key text COLLATE "C" PRIMARY KEY, rev bigint NOT NULL, doc json NOT NULL);`).join('\n')}
CREATE TABLE replicas (key text COLLATE "C" PRIMARY KEY, app text COLLATE "C" NOT NULL, node text COLLATE "C" NOT NULL, rev bigint NOT NULL, doc json NOT NULL);
CREATE INDEX replicas_app ON replicas (app, key);
CREATE INDEX replicas_node ON replicas (node, key);
CREATE TABLE samples (id bigserial PRIMARY KEY, replica text NOT NULL UNIQUE, doc json NOT NULL);`,
  // 2: several instances on one database. Every kind indexed by revision and
  // deletions kept as tombstones (for a while), so an instance reads what
  // others committed since its last look; the leader lease; the instances'
  // heartbeats; the files every instance must share (the CAs, the admin
  // token); window results from the hubs (streams.db of a single process).
  `${V1_KINDS.map((k) => `CREATE INDEX ${k}_rev ON ${k} (rev);`).join('\n')}
CREATE TABLE tombstones (kind text COLLATE "C" NOT NULL, key text COLLATE "C" NOT NULL, rev bigint NOT NULL, at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (kind, key));
CREATE INDEX tombstones_rev ON tombstones (rev);
CREATE INDEX tombstones_at ON tombstones (at);
INSERT INTO meta VALUES ('compacted', 0);
CREATE TABLE lease (name text PRIMARY KEY, holder text NOT NULL, epoch bigint NOT NULL, expires timestamptz NOT NULL);
CREATE TABLE instances (id text PRIMARY KEY, doc json NOT NULL, revision bigint NOT NULL, started timestamptz NOT NULL DEFAULT now(), seen timestamptz NOT NULL);
CREATE TABLE shared_files (name text PRIMARY KEY, mode integer NOT NULL, data bytea NOT NULL);
CREATE TABLE windows (node text COLLATE "C" NOT NULL, hub text NOT NULL, seq bigint NOT NULL, stream text COLLATE "C" NOT NULL, start double precision NOT NULL, "end" double precision NOT NULL, doc json NOT NULL, received double precision NOT NULL, PRIMARY KEY (node, hub, seq));
CREATE INDEX windows_stream ON windows (stream, node, start);
CREATE INDEX windows_end ON windows ("end");`,

  // 3: API tokens with roles (hashed), secrets (encrypted), the audit log (append-only)
PG_V3,
  // 4: the event log. Its seq is taken inside the commit, after the revision
  // counter's lock (apply()), so seqs are handed out in commit order: what a
  // reader sees is always every event up to the highest seq it sees
  `CREATE TABLE events (seq bigserial PRIMARY KEY, at double precision NOT NULL, app text COLLATE "C", node text COLLATE "C", doc json NOT NULL);
CREATE INDEX events_at ON events (at);
CREATE INDEX events_app ON events (app, seq);
CREATE INDEX events_node ON events (node, seq);`,
  // 5: the site proxies' demand windows, each taken by the instance its node is connected to and shared with
  // the others (src/server/demand-pg.ts): the leader's autopilot sees every node's, and a restarted instance
  // the last ten minutes. Inserted under a lock, so seqs are handed out in commit order (as events' are)
  `CREATE TABLE demand_windows (seq bigserial PRIMARY KEY, instance text NOT NULL, node text COLLATE "C" NOT NULL, site text COLLATE "C" NOT NULL, received double precision NOT NULL, doc json NOT NULL);
CREATE INDEX demand_windows_received ON demand_windows (received);`,
];

/** the channel every commit notifies with its revision */
export const CHANGES_CHANNEL = 'outpost_changes';
/** deletions are kept this long for instances catching up; one further behind reads everything again */
const TOMBSTONE_KEEP = '10 minutes';

/** pg_advisory_xact_lock's key for migrations: two instances starting on an empty database must not both create the schema */
const MIGRATION_LOCK = 0x6f757470; // "outp"

/** The URL with its password hidden: it goes into messages and logs. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparseable)';
  }
}

async function migrate(pool: pg.Pool): Promise<number> {
  const c = await pool.connect();
  try {
    // DDL is transactional in PostgreSQL: all steps or none, under the lock
    await c.query('BEGIN');
    await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
    await c.query('CREATE TABLE IF NOT EXISTS outpost_schema (version integer NOT NULL)');
    const r = await c.query<{ version: number }>('SELECT version FROM outpost_schema');
    if (r.rows.length === 0) await c.query('INSERT INTO outpost_schema VALUES (0)');
    const at = r.rows[0]?.version ?? 0;
    if (at > PG_MIGRATIONS.length) {
      throw new OutpostError('E_STORE', `the store is at schema version ${at}, newer than this Outpost knows (${PG_MIGRATIONS.length}): upgrade Outpost`);
    }
    for (let v = at; v < PG_MIGRATIONS.length; v++) await c.query(PG_MIGRATIONS[v]!);
    await c.query('UPDATE outpost_schema SET version = $1', [PG_MIGRATIONS.length]);
    await c.query('COMMIT');
    return PG_MIGRATIONS.length;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    c.release();
  }
}

type Raw = { key: string; rev: string; doc: unknown };
// bigint comes back as text (pg will not round a 64-bit number silently); revisions stay far below 2^53
const toRow = <T>(r: Raw): Row<T> => ({ key: r.key, rev: Number(r.rev), doc: r.doc as T });

export interface PostgresStoreOptions {
  /** connections in the pool (default 4: the control plane's writer commits one at a time, and reads after the start are few) */
  max?: number;
  /** a query unanswered this long fails (default 15 s) */
  queryTimeoutMs?: number;
}

/** The PostgreSQL store, and what the instances' coordination (pgcluster.ts) shares with it. */
export interface PostgresStore extends Store {
  readonly url: string;
  readonly pool: pg.Pool;
  changes(since: number): ReturnType<NonNullable<Store['changes']>>;
}

/** Opens (and migrates) the store; an unreachable server, bad credentials or a newer schema are E_STORE. */
export async function openPostgresStore(url: string, o: PostgresStoreOptions = {}): Promise<PostgresStore> {
  if (!/^postgres(ql)?:\/\//.test(url)) throw new OutpostError('E_USAGE', `--store: want a postgres:// URL, got ${redactUrl(url)}`);
  let pool: pg.Pool;
  try {
    // a query that gets no answer (the network to the database cut) fails after
    // query_timeout instead of holding the writer forever; keepAlive notices a dead peer
    pool = new pg.Pool({ connectionString: url, max: o.max ?? 4, connectionTimeoutMillis: 10_000, query_timeout: o.queryTimeoutMs ?? 15_000, keepAlive: true });
  } catch (e) {
    throw new OutpostError('E_USAGE', `--store ${redactUrl(url)}: ${(e as Error).message}`);
  }
  // an idle connection that breaks (PostgreSQL restarted) is dropped by the
  // pool; without a listener its error would end the process. The next query
  // opens a new connection, and fails loudly if the server is still away.
  pool.on('error', () => {});
  let schemaVersion: number;
  try {
    schemaVersion = await migrate(pool);
  } catch (e) {
    await pool.end().catch(() => {});
    if (e instanceof OutpostError) throw e;
    throw new OutpostError('E_STORE', `cannot open the PostgreSQL store at ${redactUrl(url)}: ${(e as Error).message || (e as { code?: string }).code}`, { cause: e });
  }

  const revision = async () => Number((await pool.query<{ value: string }>("SELECT value FROM meta WHERE key = 'revision'")).rows[0]!.value);

  async function apply(c: pg.PoolClient, writes: Write[], samples: ModelSample[], fence?: Fence, events: EventDraft[] = []): Promise<number> {
    const cur = Number((await c.query<{ value: string }>("SELECT value FROM meta WHERE key = 'revision' FOR UPDATE")).rows[0]!.value);
    if (fence) {
      // FOR SHARE: a successor's takeover (an UPDATE of this row) waits for this commit, so the
      // lease cannot change hands between this check and the commit
      const l = (await c.query<{ holder: string; epoch: string; live: boolean }>("SELECT holder, epoch, expires > now() AS live FROM lease WHERE name = 'leader' FOR SHARE")).rows[0];
      if (!l || l.holder !== fence.holder || Number(l.epoch) !== fence.epoch || !l.live) throw new StoreFenced(fence);
    }
    // every check reads the state before this commit's writes, as in SQLite
    const checked = new Map<Kind, string[]>();
    for (const w of writes) if (w.expect !== undefined) checked.set(w.kind, [...(checked.get(w.kind) ?? []), w.key]);
    for (const [kind, keys] of checked) {
      const revs = new Map((await c.query<{ key: string; rev: string }>(`SELECT key, rev FROM ${kind} WHERE key = ANY($1::text[])`, [keys])).rows.map((r) => [r.key, Number(r.rev)]));
      for (const w of writes) {
        if (w.kind !== kind || w.expect === undefined) continue;
        const actual = revs.get(w.key) ?? 0;
        if (actual !== w.expect) throw new StoreConflict(kind, w.key, w.expect, actual);
      }
    }
    const rev = cur + 1;
    await c.query("UPDATE meta SET value = $1 WHERE key = 'revision'", [rev]);
    // the last write of a key wins, as when SQLite applies them one by one;
    // one statement per kind and operation instead of one per write
    const last = new Map<Kind, Map<string, object | null>>();
    for (const w of writes) {
      const m = last.get(w.kind) ?? new Map<string, object | null>();
      m.delete(w.key);
      m.set(w.key, w.doc);
      last.set(w.kind, m);
    }
    for (const [kind, m] of last) {
      const gone = [...m].filter(([, d]) => d === null).map(([k]) => k);
      const put = [...m].filter((e): e is [string, object] => e[1] !== null);
      if (gone.length) {
        await c.query(`DELETE FROM ${kind} WHERE key = ANY($1::text[])`, [gone]);
        await c.query(
          `INSERT INTO tombstones (kind, key, rev) SELECT $1, k, $2 FROM unnest($3::text[]) AS t(k) ON CONFLICT (kind, key) DO UPDATE SET rev = excluded.rev, at = now()`,
          [kind, rev, gone],
        );
      }
      if (!put.length) continue;
      const keys = put.map(([k]) => k);
      const docs = put.map(([, d]) => JSON.stringify(d));
      if (kind === 'replicas') {
        const ds = put.map(([, d]) => d as { app: string; node: string });
        await c.query(
          `INSERT INTO replicas (key, app, node, rev, doc) SELECT k, a, n, $4, d::json FROM unnest($1::text[], $2::text[], $3::text[], $5::text[]) AS t(k, a, n, d)
ON CONFLICT (key) DO UPDATE SET app = excluded.app, node = excluded.node, rev = excluded.rev, doc = excluded.doc`,
          [keys, ds.map((d) => d.app), ds.map((d) => d.node), rev, docs],
        );
      } else {
        await c.query(
          `INSERT INTO ${kind} (key, rev, doc) SELECT k, $2, d::json FROM unnest($1::text[], $3::text[]) AS t(k, d)
ON CONFLICT (key) DO UPDATE SET rev = excluded.rev, doc = excluded.doc`,
          [keys, rev, docs],
        );
      }
    }
    if (samples.length) {
      // the first sample of a replica is kept (SQLite's INSERT OR IGNORE); ids follow the order given, for "newest first"
      await c.query(
        `INSERT INTO samples (replica, doc) SELECT r, d::json FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(r, d, i) ORDER BY i ON CONFLICT (replica) DO NOTHING`,
        [samples.map((s) => s.replica), samples.map((s) => JSON.stringify(s))],
      );
    }
    if (events.length) {
      await c.query(
        `INSERT INTO events (at, app, node, doc) SELECT a, p, n, d::json FROM unnest($1::float8[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS t(a, p, n, d, i) ORDER BY i`,
        [events.map((e) => e.at), events.map((e) => e.app), events.map((e) => e.node), events.map((e) => JSON.stringify(e))],
      );
    }
    // delivered to every listening instance when (and only if) this commits
    await c.query('SELECT pg_notify($1, $2)', [CHANGES_CHANNEL, String(rev)]);
    return rev;
  }

  return {
    url,
    pool,
    schemaVersion,
    revision,
    get: async <T>(kind: Kind, key: string) => {
      const r = (await pool.query<Raw>(`SELECT key, rev, doc FROM ${kind} WHERE key = $1`, [key])).rows[0];
      return r ? toRow<T>(r) : undefined;
    },
    list: async <T>(kind: Kind, q: ListQuery = {}) => {
      const where: string[] = [];
      const args: unknown[] = [];
      if (q.after !== undefined) { args.push(q.after); where.push(`key > $${args.length}`); }
      if (kind === 'replicas' && q.app !== undefined) { args.push(q.app); where.push(`app = $${args.length}`); }
      if (kind === 'replicas' && q.node !== undefined) { args.push(q.node); where.push(`node = $${args.length}`); }
      args.push(q.limit ?? null); // LIMIT NULL: all
      const sql = `SELECT key, rev, doc FROM ${kind}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY key LIMIT $${args.length}`;
      return (await pool.query<Raw>(sql, args)).rows.map((r) => toRow<T>(r));
    },
    changes: async (since) => {
      const c = await pool.connect();
      try {
        // one snapshot: the revision read and the rows listed agree
        await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const meta = new Map((await c.query<{ key: string; value: string }>('SELECT key, value FROM meta')).rows.map((r) => [r.key, Number(r.value)]));
        const revision = meta.get('revision')!;
        const reset = since < (meta.get('compacted') ?? 0);
        const from = reset ? 0 : since;
        const changes: Changed[] = [];
        for (const kind of KINDS) {
          for (const r of (await c.query<Raw>(`SELECT key, rev, doc FROM ${kind} WHERE rev > $1`, [from])).rows) changes.push({ kind, key: r.key, rev: Number(r.rev), doc: r.doc });
        }
        if (!reset) {
          for (const r of (await c.query<{ kind: Kind; key: string; rev: string }>('SELECT kind, key, rev FROM tombstones WHERE rev > $1', [from])).rows) changes.push({ kind: r.kind, key: r.key, rev: Number(r.rev), doc: null });
        }
        await c.query('COMMIT');
        return { revision, changes, ...(reset ? { reset } : {}) };
      } catch (e) {
        await c.query('ROLLBACK').catch(() => {});
        throw e;
      } finally {
        c.release();
      }
    },
    compact: async (o = {}) => {
      const t = await pool.query<{ rev: string | null; n: string }>(
        `WITH d AS (DELETE FROM tombstones WHERE at < now() - interval '${TOMBSTONE_KEEP}' RETURNING rev) SELECT max(rev) AS rev, count(*) AS n FROM d`,
      );
      const gone = t.rows[0]!;
      // readers behind the newest deletion dropped cannot be told of it: they read everything again
      if (gone.rev !== null) await pool.query("UPDATE meta SET value = greatest(value, $1) WHERE key = 'compacted'", [gone.rev]);
      const s = await pool.query('DELETE FROM samples WHERE id <= (SELECT id FROM samples ORDER BY id DESC LIMIT 1 OFFSET $1)', [SAMPLES_KEPT]);
      const a = o.auditBefore !== undefined ? await pool.query('DELETE FROM audit WHERE at < $1', [o.auditBefore]) : null;
      // the newest event stays: it holds the log's place (its seq), which readers resume from
      const e = o.eventsBefore !== undefined ? await pool.query('DELETE FROM events WHERE at < $1 AND seq < (SELECT max(seq) FROM events)', [o.eventsBefore]) : null;
      return Number(gone.n) + (s.rowCount ?? 0) + (a?.rowCount ?? 0) + (e?.rowCount ?? 0);
    },
    commit: async (writes, samples = [], fence, events = []) => {
      if (writes.length === 0 && samples.length === 0 && events.length === 0) return revision();
      const c = await pool.connect();
      let broken: Error | undefined;
      try {
        await c.query('BEGIN');
        const rev = await apply(c, writes, samples, fence, events);
        await c.query('COMMIT');
        return rev;
      } catch (e) {
        // a connection that cannot even roll back is discarded, not pooled
        await c.query('ROLLBACK').catch((re: Error) => { broken = re; });
        throw e;
      } finally {
        c.release(broken);
      }
    },
    audit: async (entries) => {
      if (!entries.length) return;
      await pool.query('INSERT INTO audit (at, doc) SELECT a, d::json FROM unnest($1::float8[], $2::text[]) WITH ORDINALITY AS t(a, d, i) ORDER BY i', [entries.map((e) => e.at), entries.map((e) => JSON.stringify(e))]);
    },
    listAudit: async (q = {}) => (await pool.query<{ doc: AuditEntry }>('SELECT doc FROM audit WHERE at >= $1 ORDER BY id LIMIT $2', [q.since ?? 0, q.limit ?? 1000])).rows.map((r) => r.doc),
    listEvents: async (q: EventQuery = {}) => {
      const where: string[] = [];
      const args: unknown[] = [];
      if (q.after !== undefined) { args.push(q.after); where.push(`seq > $${args.length}`); }
      if (q.from !== undefined) { args.push(q.from); where.push(`at >= $${args.length}`); }
      if (q.app !== undefined) { args.push(q.app); where.push(`app = $${args.length}`); }
      if (q.node !== undefined) { args.push(q.node); where.push(`node = $${args.length}`); }
      const limit = q.limit ?? 1000;
      args.push(limit);
      const c = await pool.connect();
      try {
        // one snapshot: the newest seq and the page agree. Seqs are given in commit
        // order (apply()), so none below the newest visible one can still appear
        await c.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
        const head = Number((await c.query<{ s: string | null }>('SELECT max(seq) AS s FROM events')).rows[0]!.s ?? 0);
        const rows = (await c.query<{ seq: string; doc: EventDraft }>(`SELECT seq, doc FROM events${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq${q.newest ? ' DESC' : ''} LIMIT $${args.length}`, args)).rows;
        await c.query('COMMIT');
        if (q.newest) rows.reverse();
        const events = rows.map((r) => ({ seq: Number(r.seq), ...r.doc }) as OutpostEvent);
        return { events, last: !q.newest && limit > 0 && events.length === limit ? events[events.length - 1]!.seq : head };
      } catch (e) {
        await c.query('ROLLBACK').catch(() => {});
        throw e;
      } finally {
        c.release();
      }
    },
    listSamples: async (limit = 1000) => (await pool.query<{ doc: ModelSample }>('SELECT doc FROM samples ORDER BY id DESC LIMIT $1', [limit])).rows.map((r) => r.doc),
    close: async () => { await pool.end(); },
  };
}
