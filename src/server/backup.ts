// Backups of the control plane, independent of the CLI: one gzip'd file of
// JSON lines. Line 1 is the header; then the data dir's trust files (what a
// restored control plane needs to keep its identity: the CAs and their keys,
// the admin token, the TLS session ticket keys, join.token); then every record
// of every kind; then the start-time model's samples (oldest first); last an
// end line with the counts, so a file cut short at a line boundary is told
// from a whole one. Window results (streams.db) are not in it.
//
// Restore validates the whole file before it writes anything, then writes the
// records in commits of CHUNK writes (a file is read twice, never held whole).
import fs from 'node:fs';
import path from 'node:path';
import { Readable, pipeline } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { createGunzip, createGzip } from 'node:zlib';
import type { ModelSample } from '../core/types.js';
import { OutpostError } from '../core/errors.js';
import type { ControlPlane } from './controlplane.js';
import { KEY_FIELD, KINDS, type Kind, type Store, type Write } from './store/store.js';
import { MIGRATIONS } from './store/migrations.js';
import { openSqliteStore } from './store/sqlite.js';
import { openPostgresStore, PG_MIGRATIONS, type PostgresStore } from './store/postgres.js';

export const BACKUP_FORMAT = 'outpost-backup';
export const BACKUP_VERSION = 1;
export type StoreKind = 'sqlite' | 'postgres';

/** The schema version this Outpost knows per backend: a backup from a newer one is refused. */
const KNOWN_SCHEMA: Record<StoreKind, number> = { sqlite: MIGRATIONS.length, postgres: PG_MIGRATIONS.length };

/**
 * The data dir's files a restored control plane needs to stay the same
 * control plane (agents pin its CA, the CLI holds its admin token). Not the
 * serving certificate: each start re-issues it from the CA; nor ca.crt and
 * hub-ca.crt at the top, which each start publishes from these.
 */
export const TRUST_FILES = ['admin.token', 'join.token', 'tls/ca.crt', 'tls/ca.key', 'tls/hub-ca.crt', 'tls/hub-ca.key', 'tls/ticket.keys', 'secrets.key', 'tls/identity.key'] as const;
/** Made by the start from the CA: stale once another CA is restored over it. */
const ISSUED_FILES = ['tls/server.crt', 'tls/server.key'];

/** Writes per commit on restore. */
const CHUNK = 1000;
/** listSamples' limit that means all of them */
const ALL = Number.MAX_SAFE_INTEGER;

/** The record field that holds its key. */

export interface Header { format: string; version: number; schemaVersion: number; revision: number; createdAt: number; store: StoreKind }
export interface FileLine { type: 'file'; name: string; mode: number; data: string }
export interface RecordLine { type: 'record'; kind: Kind; key: string; doc: object }
export interface SampleLine { type: 'sample'; doc: ModelSample }
export interface EndLine { type: 'end'; files: number; records: number; samples: number }
type Line = FileLine | RecordLine | SampleLine | EndLine;

export interface Summary {
  header: Header;
  records: Record<Kind, number>;
  samples: number;
  files: string[];
}

// ---- making one ----------------------------------------------------------------

function trustFiles(dataDir: string): FileLine[] {
  const out: FileLine[] = [];
  for (const name of TRUST_FILES) {
    const p = path.join(dataDir, name);
    if (!fs.existsSync(p)) continue;
    out.push({ type: 'file', name, mode: fs.statSync(p).mode & 0o777, data: fs.readFileSync(p).toString('base64') });
  }
  return out;
}

/** The lines after the header, counted into the end line. */
async function* body(files: FileLine[], records: AsyncIterable<RecordLine> | Iterable<RecordLine>, samples: ModelSample[]): AsyncGenerator<Line> {
  let n = 0;
  yield* files;
  for await (const r of records) { n++; yield r; }
  // newest first from the store: oldest first here, so a restore's ids keep their order
  for (let i = samples.length - 1; i >= 0; i--) yield { type: 'sample', doc: samples[i]! };
  yield { type: 'end', files: files.length, records: n, samples: samples.length };
}

/**
 * A running control plane's backup: what was queued is committed first, then
 * every kind is taken from memory in one synchronous turn (one consistent
 * moment: no operation can run between two kinds). Documents are never
 * changed in place (the writer replaces them), so the lists taken are safe
 * to serialise while the control plane goes on.
 */
export async function liveBackup(cp: ControlPlane, source: { dataDir: string; store: StoreKind }): Promise<{ header: Header; lines: AsyncGenerator<Line> }> {
  await cp.writer.flush();
  const revision = await cp.store.revision();
  const samples = await cp.store.listSamples(ALL);
  await cp.writer.flush();
  const lists = KINDS.map((kind) => [kind, [...cp.state.list(kind)]] as const);
  const header = newHeader(source.store, cp.store.schemaVersion, revision);
  const records = lists.flatMap(([kind, docs]) => docs.map((doc): RecordLine => ({ type: 'record', kind, key: (doc as unknown as Record<string, string>)[KEY_FIELD[kind]]!, doc })));
  return { header, lines: body(trustFiles(source.dataDir), records, samples) };
}

/** A stopped control plane's backup, read from its store a page at a time. */
export async function storeBackup(store: Store, kind: StoreKind, dataDir: string): Promise<{ header: Header; lines: AsyncGenerator<Line> }> {
  const header = newHeader(kind, store.schemaVersion, await store.revision());
  const samples = await store.listSamples(ALL);
  return { header, lines: body(trustFiles(dataDir), storeRecords(store), samples) };
}

async function* storeRecords(store: Store): AsyncGenerator<RecordLine> {
  for (const kind of KINDS) {
    let after: string | undefined;
    for (;;) {
      const rows = await store.list<object>(kind, { after, limit: CHUNK });
      for (const r of rows) yield { type: 'record', kind, key: r.key, doc: r.doc };
      if (rows.length < CHUNK) break;
      after = rows[rows.length - 1]!.key;
    }
  }
}

const newHeader = (store: StoreKind, schemaVersion: number, revision: number): Header =>
  ({ format: BACKUP_FORMAT, version: BACKUP_VERSION, schemaVersion, revision, createdAt: Date.now(), store });

/** The backup file's bytes: gzip'd JSON lines, as they are produced. */
export function encodeBackup(b: { header: Header; lines: AsyncIterable<Line> }): Readable {
  async function* text(): AsyncGenerator<string> {
    let buf = JSON.stringify(b.header) + '\n';
    for await (const l of b.lines) {
      buf += JSON.stringify(l) + '\n';
      if (buf.length >= 65536) { yield buf; buf = ''; }
    }
    yield buf;
  }
  const gz = createGzip();
  // a failure half-way ends the output with an error: never a file that looks whole
  pipeline(Readable.from(text()), gz, () => {});
  return gz;
}

// ---- reading and checking one -----------------------------------------------------

const invalid = (n: number, msg: string) => new OutpostError('E_INVALID', `backup line ${n}: ${msg}`, { path: `line ${n}` });

/** The file's lines, parsed, with their numbers; a file that is not whole gzip is E_INVALID at the line reached. */
async function* readLines(file: string): AsyncGenerator<{ n: number; value: unknown }> {
  if (!fs.existsSync(file)) throw new OutpostError('E_USAGE', `no backup file ${file}`);
  const input = fs.createReadStream(file).pipe(createGunzip());
  const dec = new StringDecoder('utf8');
  let held = '';
  let n = 0;
  const parse = (s: string) => {
    n++;
    try { return { n, value: JSON.parse(s) as unknown }; } catch { throw invalid(n, 'not JSON: the file is garbled'); }
  };
  try {
    for await (const chunk of input) {
      const parts = (held + dec.write(chunk as Buffer)).split('\n');
      held = parts.pop()!;
      for (const p of parts) yield parse(p);
    }
  } catch (e) {
    if (e instanceof OutpostError) throw e;
    throw invalid(n + 1, `not a whole gzip file (${(e as Error).message}): truncated or not a backup`);
  } finally {
    input.destroy();
  }
  held += dec.end();
  if (held) yield parse(held);
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function checkHeader(v: unknown): Header {
  if (!isObj(v) || v.format !== BACKUP_FORMAT) throw invalid(1, `not an Outpost backup (its first line has no "format": "${BACKUP_FORMAT}")`);
  if (v.version !== BACKUP_VERSION) throw invalid(1, `backup format version ${JSON.stringify(v.version)}; this Outpost reads version ${BACKUP_VERSION}`);
  if (v.store !== 'sqlite' && v.store !== 'postgres') throw invalid(1, `"store" must be sqlite or postgres, got ${JSON.stringify(v.store)}`);
  for (const f of ['schemaVersion', 'revision', 'createdAt']) if (!Number.isInteger(v[f]) || (v[f] as number) < 0) throw invalid(1, `"${f}" must be a whole number`);
  const known = KNOWN_SCHEMA[v.store];
  if ((v.schemaVersion as number) > known) {
    throw new OutpostError('E_STORE', `the backup is of a ${v.store} store at schema version ${v.schemaVersion}, newer than this Outpost knows (${known}): restore it with a newer Outpost`, { path: 'line 1' });
  }
  return v as unknown as Header;
}

function checkLine(n: number, v: unknown): Line {
  if (!isObj(v)) throw invalid(n, 'not an object');
  switch (v.type) {
    case 'file':
      if (!(TRUST_FILES as readonly unknown[]).includes(v.name)) throw invalid(n, `file ${JSON.stringify(v.name)} is none of ${TRUST_FILES.join(', ')}`);
      if (!Number.isInteger(v.mode) || (v.mode as number) < 0 || (v.mode as number) > 0o777) throw invalid(n, '"mode" must be a file mode (0 to 0o777)');
      if (typeof v.data !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(v.data)) throw invalid(n, '"data" must be base64');
      break;
    case 'record': {
      if (!(KINDS as readonly unknown[]).includes(v.kind)) throw invalid(n, `kind ${JSON.stringify(v.kind)} is none of ${KINDS.join(', ')}`);
      const kind = v.kind as Kind;
      if (typeof v.key !== 'string' || v.key === '') throw invalid(n, '"key" must be a non-empty string');
      if (!isObj(v.doc) || v.doc[KEY_FIELD[kind]] !== v.key) throw invalid(n, `"doc" must be an object whose ${KEY_FIELD[kind]} is its key`);
      if (kind === 'replicas' && (typeof v.doc.app !== 'string' || typeof v.doc.node !== 'string')) throw invalid(n, 'a replica needs its app and node');
      break;
    }
    case 'sample':
      if (!isObj(v.doc) || typeof v.doc.replica !== 'string') throw invalid(n, 'a sample needs its replica');
      break;
    case 'end':
      for (const f of ['files', 'records', 'samples']) if (!Number.isInteger(v[f])) throw invalid(n, `"${f}" must be a whole number`);
      break;
    default:
      throw invalid(n, `"type" must be file, record, sample or end, got ${JSON.stringify(v.type)}`);
  }
  return v as unknown as Line;
}

/** The file's lines after its header, each checked (one pass; `checkBackup` checks the whole first). */
async function* backupLines(file: string, onHeader: (h: Header) => void = () => {}): AsyncGenerator<{ n: number; line: Line }> {
  let ended = 0;
  let n = 0;
  for await (const l of readLines(file)) {
    n = l.n;
    if (n === 1) { onHeader(checkHeader(l.value)); continue; }
    if (ended) throw invalid(n, `a line after the end line (line ${ended})`);
    const line = checkLine(n, l.value);
    if (line.type === 'end') ended = n;
    yield { n, line };
  }
  if (n === 0) throw invalid(1, 'the file is empty');
  if (!ended) throw invalid(n, 'the file ends without its end line: it was cut short');
}

/** Reads the whole file and checks every line: the summary of a whole, valid backup, or an error that says where it is not. */
export async function checkBackup(file: string): Promise<Summary> {
  return (await scan(file)).summary;
}

const noRecords = () => Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<Kind, number>;

/** checkBackup, and the trust files (a few KB) kept for the restore. */
async function scan(file: string): Promise<{ summary: Summary; files: FileLine[] }> {
  let header: Header | null = null;
  const s: Omit<Summary, 'header'> = { records: noRecords(), samples: 0, files: [] };
  const files: FileLine[] = [];
  const seen = new Set<string>();
  for await (const { n, line } of backupLines(file, (h) => { header = h; })) {
    if (line.type === 'end') {
      const records = Object.values(s.records).reduce((a, b) => a + b, 0);
      if (line.files !== s.files.length || line.records !== records || line.samples !== s.samples) {
        throw invalid(n, `the end line counts ${line.files} files, ${line.records} records and ${line.samples} samples; the file holds ${s.files.length}, ${records} and ${s.samples}`);
      }
      continue;
    }
    const id = line.type === 'record' ? `${line.kind}/${line.key}` : line.type === 'file' ? `file ${line.name}` : `sample ${line.doc.replica}`;
    if (seen.has(id)) throw invalid(n, `${id} appears twice`);
    seen.add(id);
    if (line.type === 'record') s.records[line.kind]++;
    else if (line.type === 'file') { s.files.push(line.name); files.push(line); }
    else s.samples++;
  }
  return { summary: { header: header!, ...s }, files };
}

// ---- restoring one -----------------------------------------------------------------

export interface Target {
  dataDir: string;
  /** a postgres:// URL; none: the SQLite file outpost.db in the data dir */
  store?: string;
}

export const sqliteFile = (dataDir: string) => path.join(dataDir, 'outpost.db');

/** The store a control plane with this data dir and --store would open. */
export async function openTarget(t: Target): Promise<Store> {
  if (t.store) return openPostgresStore(t.store, { max: 2 });
  fs.mkdirSync(t.dataDir, { recursive: true, mode: 0o700 });
  return openSqliteStore(sqliteFile(t.dataDir));
}

/** A data dir's existing store, for a backup or a migration: never a new, empty one made by opening it. */
export async function openExisting(t: Target): Promise<Store> {
  if (!t.store && !fs.existsSync(sqliteFile(t.dataDir))) throw new OutpostError('E_USAGE', `no store in ${t.dataDir} (no outpost.db there; give --store for a PostgreSQL one)`, { path: 'data-dir' });
  return openTarget(t);
}

/** Writes the records and samples among `lines`, CHUNK to a commit (unconditional: the store was empty). */
async function writeAll(store: Store, lines: AsyncIterable<Line>): Promise<void> {
  let writes: Write[] = [];
  let samples: ModelSample[] = [];
  for await (const l of lines) {
    if (l.type === 'record') writes.push({ kind: l.kind, key: l.key, doc: l.doc });
    else if (l.type === 'sample') samples.push(l.doc);
    if (writes.length + samples.length >= CHUNK) { await store.commit(writes, samples); writes = []; samples = []; }
  }
  if (writes.length || samples.length) await store.commit(writes, samples);
}

async function deleteAll(store: Store): Promise<void> {
  for (const kind of KINDS) {
    for (;;) {
      const rows = await store.list(kind, { limit: CHUNK });
      if (!rows.length) break;
      await store.commit(rows.map((r) => ({ kind, key: r.key, doc: null })));
    }
  }
}

/** The trust files in the data dir that differ from the backup's. */
function differingFiles(files: FileLine[], dataDir: string): string[] {
  return files.filter((l) => {
    const p = path.join(dataDir, l.name);
    return fs.existsSync(p) && !fs.readFileSync(p).equals(Buffer.from(l.data, 'base64'));
  }).map((l) => l.name);
}

function writeFile(dataDir: string, l: FileLine): void {
  const p = path.join(dataDir, l.name);
  fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o700 });
  const data = Buffer.from(l.data, 'base64');
  if (fs.existsSync(p) && fs.readFileSync(p).equals(data)) return;
  const tmp = `${p}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data, { mode: l.mode });
  fs.chmodSync(tmp, l.mode); // the umask must not narrow or the file keep another mode
  fs.renameSync(tmp, p);
  if (l.name === 'tls/ca.key') for (const f of ISSUED_FILES) fs.rmSync(path.join(dataDir, f), { force: true });
}

/**
 * Restores a backup into a stopped control plane's data dir and store. The
 * whole file is checked first; a store that holds anything (revision > 0)
 * or trust files that differ from the backup's are refused (E_CONFLICT)
 * unless `force`, which deletes every record first and overwrites the files.
 */
export async function restoreBackup(file: string, t: Target, o: { force?: boolean } = {}): Promise<Summary> {
  const { summary, files } = await scan(file);
  const differ = differingFiles(files, t.dataDir);
  if (differ.length && !o.force) {
    throw new OutpostError('E_CONFLICT', `${t.dataDir} holds other trust files than the backup's (${differ.join(', ')}): another control plane's identity; --force replaces them`, { path: differ[0] });
  }
  const store = await openTarget(t);
  try {
    const rev = await store.revision();
    if (rev > 0 && !o.force) throw new OutpostError('E_CONFLICT', `the store is not empty (at revision ${rev}): restore into an empty one, or give --force to delete every record in it first`);
    if (rev > 0) await deleteAll(store);
    await writeAll(store, (async function* () { for await (const { line } of backupLines(file)) yield line; })());
    // the instances of a PostgreSQL store share its trust files (trust/shared.ts): the restored
    // data dir's become the shared ones at the next start; an instance holding others is refused
    if ('pool' in store) await (store as PostgresStore).pool.query('DELETE FROM shared_files');
  } finally {
    await store.close();
  }
  fs.mkdirSync(t.dataDir, { recursive: true, mode: 0o700 });
  for (const f of files) writeFile(t.dataDir, f);
  return summary;
}

/**
 * Copies a data dir's SQLite store into an empty PostgreSQL database (the
 * trust files stay where they are: the same data dir goes on with --store).
 * Nothing is written to the SQLite file.
 */
export async function migrateStore(dataDir: string, url: string): Promise<Summary> {
  const from = await openExisting({ dataDir });
  try {
    const to = await openPostgresStore(url, { max: 2 });
    try {
      const rev = await to.revision();
      if (rev > 0) throw new OutpostError('E_CONFLICT', `the PostgreSQL store is not empty (at revision ${rev}): migrate into an empty database`, { path: 'to' });
      const b = await storeBackup(from, 'sqlite', dataDir);
      const summary: Summary = { header: b.header, records: noRecords(), samples: 0, files: [] };
      await writeAll(to, (async function* () {
        for await (const l of b.lines) {
          if (l.type === 'record') summary.records[l.kind]++;
          else if (l.type === 'sample') summary.samples++;
          yield l;
        }
      })());
      return summary;
    } finally {
      await to.close();
    }
  } finally {
    await from.close();
  }
}
