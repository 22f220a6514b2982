// The SQLite store (WAL): the embedded default. Each kind is a table of
// (key, rev, doc) with the replicas' app and node as indexed columns.
// better-sqlite3 is synchronous; a commit is one short transaction, and the
// control plane groups many changes into each (src/server/writer.ts).
import Database from 'better-sqlite3';
import type { AuditEntry, ModelSample } from '../../core/types.js';
import type { EventDraft, OutpostEvent } from '../../core/events.js';
import { migrate } from './migrations.js';
import { KEY_FIELD, SAMPLES_KEPT, StoreConflict, type EventPage, type EventQuery, type Kind, type ListQuery, type Row, type Store, type Write } from './store.js';

const KEY = KEY_FIELD;
/** compaction keeps the newest event: it holds the log's place (its seq), which readers resume from */
const NEWEST_EVENT = '(SELECT max(seq) FROM events)';

export function openSqliteStore(file: string): Store {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  const schemaVersion = migrate(db);
  const stmt = new Map<string, Database.Statement>();
  const prep = (sql: string) => {
    let s = stmt.get(sql);
    if (!s) stmt.set(sql, (s = db.prepare(sql)));
    return s;
  };
  const revOf = (kind: Kind, key: string) => (prep(`SELECT rev FROM ${kind} WHERE ${KEY[kind]} = ?`).get(key) as { rev: number } | undefined)?.rev ?? 0;
  const toRow = <T>(r: { k: string; rev: number; doc: string }): Row<T> => ({ key: r.k, rev: r.rev, doc: JSON.parse(r.doc) as T });

  const commit = db.transaction((writes: Write[], samples: ModelSample[], events: EventDraft[]) => {
    for (const w of writes) {
      if (w.expect === undefined) continue;
      const actual = revOf(w.kind, w.key);
      if (actual !== w.expect) throw new StoreConflict(w.kind, w.key, w.expect, actual);
    }
    const cur = (prep("SELECT value FROM meta WHERE key = 'revision'").get() as { value: number }).value;
    if (writes.length === 0 && samples.length === 0 && events.length === 0) return cur;
    const rev = cur + 1;
    prep("UPDATE meta SET value = ? WHERE key = 'revision'").run(rev);
    for (const w of writes) {
      const k = KEY[w.kind];
      if (w.doc === null) prep(`DELETE FROM ${w.kind} WHERE ${k} = ?`).run(w.key);
      else if (w.kind === 'replicas') {
        const d = w.doc as { app: string; node: string };
        prep('INSERT INTO replicas (id, app, node, rev, doc) VALUES (?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET app = excluded.app, node = excluded.node, rev = excluded.rev, doc = excluded.doc')
          .run(w.key, d.app, d.node, rev, JSON.stringify(w.doc));
      } else {
        prep(`INSERT INTO ${w.kind} (${k}, rev, doc) VALUES (?, ?, ?) ON CONFLICT(${k}) DO UPDATE SET rev = excluded.rev, doc = excluded.doc`).run(w.key, rev, JSON.stringify(w.doc));
      }
    }
    for (const s of samples) prep('INSERT OR IGNORE INTO samples (replica, doc) VALUES (?, ?)').run(s.replica, JSON.stringify(s));
    for (const e of events) prep('INSERT INTO events (at, app, node, doc) VALUES (?, ?, ?, ?)').run(e.at, e.app, e.node, JSON.stringify(e));
    return rev;
  });

  const listEvents = (q: EventQuery): EventPage => {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (q.after !== undefined) { where.push('seq > ?'); args.push(q.after); }
    if (q.from !== undefined) { where.push('at >= ?'); args.push(q.from); }
    if (q.app !== undefined) { where.push('app = ?'); args.push(q.app); }
    if (q.node !== undefined) { where.push('node = ?'); args.push(q.node); }
    const limit = q.limit ?? 1000;
    // the newest seq (compaction keeps the newest event, so this never goes back)
    const head = (prep('SELECT max(seq) AS s FROM events').get() as { s: number | null }).s ?? 0;
    const rows = prep(`SELECT seq, doc FROM events${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq${q.newest ? ' DESC' : ''} LIMIT ?`).all(...args, limit) as { seq: number; doc: string }[];
    if (q.newest) rows.reverse();
    const events = rows.map((r) => ({ seq: r.seq, ...JSON.parse(r.doc) }) as OutpostEvent);
    return { events, last: !q.newest && limit > 0 && events.length === limit ? events[events.length - 1]!.seq : head };
  };

  return {
    schemaVersion,
    revision: async () => (prep("SELECT value FROM meta WHERE key = 'revision'").get() as { value: number }).value,
    get: async <T>(kind: Kind, key: string) => {
      const r = prep(`SELECT ${KEY[kind]} AS k, rev, doc FROM ${kind} WHERE ${KEY[kind]} = ?`).get(key) as { k: string; rev: number; doc: string } | undefined;
      return r ? toRow<T>(r) : undefined;
    },
    list: async <T>(kind: Kind, q: ListQuery = {}) => {
      const k = KEY[kind];
      const where: string[] = [];
      const args: (string | number)[] = [];
      if (q.after !== undefined) { where.push(`${k} > ?`); args.push(q.after); }
      if (kind === 'replicas' && q.app !== undefined) { where.push('app = ?'); args.push(q.app); }
      if (kind === 'replicas' && q.node !== undefined) { where.push('node = ?'); args.push(q.node); }
      args.push(q.limit ?? -1);
      const sql = `SELECT ${k} AS k, rev, doc FROM ${kind}${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY ${k} LIMIT ?`;
      return (prep(sql).all(...args) as { k: string; rev: number; doc: string }[]).map((r) => toRow<T>(r));
    },
    commit: async (writes, samples = [], _fence, events = []) => commit(writes, samples, events),
    listSamples: async (limit = 1000) => (prep('SELECT doc FROM samples ORDER BY id DESC LIMIT ?').all(limit) as { doc: string }[]).map((r) => JSON.parse(r.doc) as ModelSample),
    audit: async (entries) => {
      db.transaction(() => { for (const e of entries) prep('INSERT INTO audit (at, doc) VALUES (?, ?)').run(e.at, JSON.stringify(e)); })();
    },
    listAudit: async (q = {}) => (prep('SELECT doc FROM audit WHERE at >= ? ORDER BY id LIMIT ?').all(q.since ?? 0, q.limit ?? 1000) as { doc: string }[]).map((r) => JSON.parse(r.doc) as AuditEntry),
    listEvents: async (q = {}) => listEvents(q),
    compact: async (o = {}) => prep('DELETE FROM samples WHERE id <= (SELECT id FROM samples ORDER BY id DESC LIMIT 1 OFFSET ?)').run(SAMPLES_KEPT).changes
      + (o.auditBefore !== undefined ? prep('DELETE FROM audit WHERE at < ?').run(o.auditBefore).changes : 0)
      + (o.eventsBefore !== undefined ? prep(`DELETE FROM events WHERE at < ? AND seq < ${NEWEST_EVENT}`).run(o.eventsBefore).changes : 0),
    close: async () => { db.close(); },
  };
}
