// The SQLite schema as a list of migrations; PRAGMA user_version counts the
// ones applied. A data dir from an older Outpost is brought forward on open,
// in one transaction per step; a newer one than this code knows is refused.
import type Database from 'better-sqlite3';

type Migration = (db: Database.Database) => void;

export const MIGRATIONS: Migration[] = [
  // 1: the first release's tables (created as they were, so an old data dir and a new one take the same path)
  (db) => db.exec(`
CREATE TABLE IF NOT EXISTS nodes (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS apps (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sites (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (id INTEGER PRIMARY KEY AUTOINCREMENT, replica TEXT UNIQUE NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS replicas (id TEXT PRIMARY KEY, app TEXT NOT NULL, node TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS replicas_app ON replicas(app);
CREATE INDEX IF NOT EXISTS replicas_node ON replicas(node);`),
  // 2: a revision per record and one counter for the store
  (db) => {
    for (const t of ['nodes', 'apps', 'sites', 'replicas']) db.exec(`ALTER TABLE ${t} ADD COLUMN rev INTEGER NOT NULL DEFAULT 1`);
    // records from before revisions are all at revision 1; an empty store starts at 0
    db.exec(`CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT INTO meta SELECT 'revision', EXISTS (SELECT 1 FROM nodes UNION ALL SELECT 1 FROM apps UNION ALL SELECT 1 FROM sites UNION ALL SELECT 1 FROM replicas);`);
  },
  // 3: replicas get their app slot (0..replicas-1, oldest first) and apps a
  // serial, so replica ids are derived from app state (src/core/slots.ts)
  (db) => {
    const apps = db.prepare<[], { name: string; doc: string }>('SELECT name, doc FROM apps').all();
    const reps = db.prepare<[string], { id: string; doc: string }>('SELECT id, doc FROM replicas WHERE app = ?');
    const putRep = db.prepare('UPDATE replicas SET doc = ? WHERE id = ?');
    const putApp = db.prepare('UPDATE apps SET doc = ? WHERE name = ?');
    for (const a of apps) {
      const rows = reps.all(a.name).map((r) => ({ id: r.id, doc: JSON.parse(r.doc) as { createdAt: number; specHash: string; slot?: number } }));
      rows.sort((x, y) => x.doc.createdAt - y.doc.createdAt || (x.id < y.id ? -1 : 1));
      // slots are per revision: a rolling update's old and new replicas each count from 0
      const next = new Map<string, number>();
      for (const r of rows) {
        const s = next.get(r.doc.specHash) ?? 0;
        next.set(r.doc.specHash, s + 1);
        putRep.run(JSON.stringify({ ...r.doc, slot: s }), r.id);
      }
      putApp.run(JSON.stringify({ ...JSON.parse(a.doc), serial: rows.length }), a.name);
    }
  },
  // 4: trust: join tokens (hashed), node identities (the key each node name is
  // bound to, its certificate, approval and revocation) and hub devices
  (db) => db.exec(`
CREATE TABLE tokens (id TEXT PRIMARY KEY, doc TEXT NOT NULL, rev INTEGER NOT NULL DEFAULT 1);
CREATE TABLE identities (name TEXT PRIMARY KEY, doc TEXT NOT NULL, rev INTEGER NOT NULL DEFAULT 1);
CREATE TABLE devices (name TEXT PRIMARY KEY, doc TEXT NOT NULL, rev INTEGER NOT NULL DEFAULT 1);`),
  // 5: who may do what: API tokens with roles (hashed), secrets (encrypted), and the audit log (append-only)
  (db) => db.exec(`
CREATE TABLE apitokens (id TEXT PRIMARY KEY, doc TEXT NOT NULL, rev INTEGER NOT NULL DEFAULT 1);
CREATE TABLE secrets (name TEXT PRIMARY KEY, doc TEXT NOT NULL, rev INTEGER NOT NULL DEFAULT 1);
CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, doc TEXT NOT NULL);
CREATE INDEX audit_at ON audit(at);`),
  // 6: the event log (append-only; AUTOINCREMENT: a seq is never used twice, even once compaction emptied the table)
  (db) => db.exec(`
CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, app TEXT, node TEXT, doc TEXT NOT NULL);
CREATE INDEX events_at ON events(at);
CREATE INDEX events_app ON events(app, seq);
CREATE INDEX events_node ON events(node, seq);`),
];

export function migrate(db: Database.Database): number {
  const at = db.pragma('user_version', { simple: true }) as number;
  if (at > MIGRATIONS.length) throw new Error(`the store is at schema version ${at}, newer than this Outpost knows (${MIGRATIONS.length}): upgrade Outpost`);
  for (let v = at; v < MIGRATIONS.length; v++) {
    db.transaction(() => {
      MIGRATIONS[v]!(db);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return MIGRATIONS.length;
}
