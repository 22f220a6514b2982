// Control-plane state in SQLite (WAL). Rows hold a few indexed columns plus a
// JSON document; every multi-row change goes through one transaction so a
// crash never leaves half an update behind.
import Database from 'better-sqlite3';
import type { AppRecord, ModelSample, NodeRecord, ReplicaRecord, SiteRecord } from '../core/types.js';

export interface Store {
  getNode(name: string): NodeRecord | undefined;
  listNodes(): NodeRecord[];
  putNode(n: NodeRecord): void;
  getApp(name: string): AppRecord | undefined;
  listApps(): AppRecord[];
  listReplicas(app?: string): ReplicaRecord[];
  /** the replicas assigned to one node */
  listNodeReplicas(node: string): ReplicaRecord[];
  getReplica(id: string): ReplicaRecord | undefined;
  putReplica(r: ReplicaRecord): void;
  addSample(s: ModelSample): void;
  listSamples(limit?: number): ModelSample[];
  listSites(): SiteRecord[];
  getSite(name: string): SiteRecord | undefined;
  putSite(s: SiteRecord): void;
  deleteSite(name: string): boolean;
  /** Applies an app change and its replica changes atomically. */
  applyApp(change: { app?: AppRecord; deleteApp?: string; put: ReplicaRecord[]; remove: string[] }): void;
  close(): void;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS nodes (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS apps (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sites (name TEXT PRIMARY KEY, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS samples (id INTEGER PRIMARY KEY AUTOINCREMENT, replica TEXT UNIQUE NOT NULL, doc TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS replicas (id TEXT PRIMARY KEY, app TEXT NOT NULL, node TEXT NOT NULL, doc TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS replicas_app ON replicas(app);
CREATE INDEX IF NOT EXISTS replicas_node ON replicas(node);
`;

export function openStore(file: string): Store {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('busy_timeout = 5000');
  db.exec(SCHEMA);
  const q = {
    getNode: db.prepare<[string], { doc: string }>('SELECT doc FROM nodes WHERE name = ?'),
    listNodes: db.prepare<[], { doc: string }>('SELECT doc FROM nodes ORDER BY name'),
    putNode: db.prepare('INSERT INTO nodes(name, doc) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET doc = excluded.doc'),
    getApp: db.prepare<[string], { doc: string }>('SELECT doc FROM apps WHERE name = ?'),
    listApps: db.prepare<[], { doc: string }>('SELECT doc FROM apps ORDER BY name'),
    putApp: db.prepare('INSERT INTO apps(name, doc) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET doc = excluded.doc'),
    delApp: db.prepare('DELETE FROM apps WHERE name = ?'),
    listReplicas: db.prepare<[], { doc: string }>('SELECT doc FROM replicas ORDER BY app, id'),
    listAppReplicas: db.prepare<[string], { doc: string }>('SELECT doc FROM replicas WHERE app = ? ORDER BY id'),
    listNodeReplicas: db.prepare<[string], { doc: string }>('SELECT doc FROM replicas WHERE node = ? ORDER BY id'),
    getReplica: db.prepare<[string], { doc: string }>('SELECT doc FROM replicas WHERE id = ?'),
    putReplica: db.prepare('INSERT INTO replicas(id, app, node, doc) VALUES (?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET node = excluded.node, doc = excluded.doc'),
    delReplica: db.prepare('DELETE FROM replicas WHERE id = ?'),
    addSample: db.prepare('INSERT OR IGNORE INTO samples(replica, doc) VALUES (?, ?)'),
    listSamples: db.prepare<[number], { doc: string }>('SELECT doc FROM samples ORDER BY id DESC LIMIT ?'),
    listSites: db.prepare<[], { doc: string }>('SELECT doc FROM sites ORDER BY name'),
    getSite: db.prepare<[string], { doc: string }>('SELECT doc FROM sites WHERE name = ?'),
    putSite: db.prepare('INSERT INTO sites(name, doc) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET doc = excluded.doc'),
    delSite: db.prepare('DELETE FROM sites WHERE name = ?'),
  };
  const parse = <T>(row: { doc: string } | undefined): T | undefined => (row ? (JSON.parse(row.doc) as T) : undefined);
  const putReplica = (r: ReplicaRecord) => q.putReplica.run(r.id, r.app, r.node, JSON.stringify(r));
  const applyApp = db.transaction((change: Parameters<Store['applyApp']>[0]) => {
    if (change.app) q.putApp.run(change.app.name, JSON.stringify(change.app));
    if (change.deleteApp) q.delApp.run(change.deleteApp);
    for (const id of change.remove) q.delReplica.run(id);
    for (const r of change.put) putReplica(r);
  });
  return {
    getNode: (name) => parse<NodeRecord>(q.getNode.get(name)),
    listNodes: () => q.listNodes.all().map((r) => JSON.parse(r.doc) as NodeRecord),
    putNode: (n) => void q.putNode.run(n.name, JSON.stringify(n)),
    getApp: (name) => parse<AppRecord>(q.getApp.get(name)),
    listApps: () => q.listApps.all().map((r) => JSON.parse(r.doc) as AppRecord),
    listReplicas: (app) => (app === undefined ? q.listReplicas.all() : q.listAppReplicas.all(app)).map((r) => JSON.parse(r.doc) as ReplicaRecord),
    listNodeReplicas: (node) => q.listNodeReplicas.all(node).map((r) => JSON.parse(r.doc) as ReplicaRecord),
    getReplica: (id) => parse<ReplicaRecord>(q.getReplica.get(id)),
    putReplica: (r) => void putReplica(r),
    addSample: (s) => void q.addSample.run(s.replica, JSON.stringify(s)),
    listSamples: (limit = 1000) => q.listSamples.all(limit).map((r) => JSON.parse(r.doc) as ModelSample),
    listSites: () => q.listSites.all().map((r) => JSON.parse(r.doc) as SiteRecord),
    getSite: (name) => parse<SiteRecord>(q.getSite.get(name)),
    putSite: (s) => void q.putSite.run(s.name, JSON.stringify(s)),
    deleteSite: (name) => q.delSite.run(name).changes > 0,
    applyApp: (c) => applyApp(c),
    close: () => db.close(),
  };
}
