// outpost backup | restore | migrate-store: the command line of
// src/server/backup.ts. `backup` asks the running control plane (or, with
// --offline, reads a stopped one's store); `restore` and `migrate-store`
// work on a stopped control plane's data dir and store.
import fs from 'node:fs';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { OutpostError } from '../../core/errors.js';
import { readEnv } from '../../env.js';
import { checkBackup, encodeBackup, migrateStore, openExisting, restoreBackup, storeBackup, type Summary, type Target } from '../../server/backup.js';
import { clientFromEnv, dataDir } from '../client.js';
import { printJson, table } from '../output.js';

export interface BackupFlags {
  out?: string;
  offline?: boolean;
  dataDir?: string;
  store?: string;
  json?: boolean;
}

/** --data-dir (or OUTPOST_DATA_DIR, ~/.outpost) and --store (or OUTPOST_STORE), as `outpost server` takes them. */
function target(f: { dataDir?: string; store?: string }): Target {
  const store = f.store ?? readEnv('OUTPOST_STORE');
  return { dataDir: dataDir(f.dataDir), ...(store ? { store } : {}) };
}

/** Writes the backup to FILE (0600, whole or not at all) or stdout; a file is read back and checked. */
async function save(body: Readable, out: string | undefined): Promise<Summary | null> {
  if (!out) {
    await pipeline(body, process.stdout);
    return null;
  }
  const tmp = `${out}.${process.pid}.tmp`;
  try {
    await pipeline(body, fs.createWriteStream(tmp, { mode: 0o600 }));
    const s = await checkBackup(tmp);
    fs.renameSync(tmp, out);
    return s;
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    if (e instanceof OutpostError) throw e;
    throw new OutpostError('E_NO_SERVER', `the backup broke off before its end (${(e as Error).message}); nothing was written to ${out}`);
  }
}

export async function backup(f: BackupFlags): Promise<void> {
  if (!f.out && process.stdout.isTTY) throw new OutpostError('E_USAGE', 'a backup is gzip\'d: give --out FILE, or redirect stdout to a file', { path: 'out' });
  if (!f.offline && (f.dataDir || f.store)) throw new OutpostError('E_USAGE', '--data-dir and --store are for --offline (a stopped control plane); without it the backup comes from the running one at OUTPOST_SERVER', { path: f.dataDir ? 'data-dir' : 'store' });
  let s: Summary | null;
  if (f.offline) {
    const t = target(f);
    const store = await openExisting(t);
    try {
      s = await save(encodeBackup(await storeBackup(store, t.store ? 'postgres' : 'sqlite', t.dataDir)), f.out);
    } finally {
      await store.close();
    }
  } else {
    s = await save(await clientFromEnv().backup(), f.out);
  }
  // stdout may be the backup itself: the account goes to stderr
  if (s) report(s, `backed up to ${f.out}`, !!f.json, process.stderr);
}

export async function restore(file: string, f: { dataDir?: string; store?: string; force?: boolean; json?: boolean }): Promise<void> {
  const t = target(f);
  report(await restoreBackup(file, t, { force: !!f.force }), `restored into ${t.dataDir}${t.store ? ' and its --store' : ''}`, !!f.json);
}

export async function migrate(f: { dataDir?: string; to: string; json?: boolean }): Promise<void> {
  const dir = dataDir(f.dataDir);
  report(await migrateStore(dir, f.to), `copied the SQLite store of ${dir}; from now on start it with: outpost server --data-dir ${dir} --store <that URL>`, !!f.json);
}

function report(s: Summary, what: string, json: boolean, to: NodeJS.WriteStream = process.stdout): void {
  if (json) {
    if (to === process.stdout) printJson(s);
    else to.write(JSON.stringify(s) + '\n');
    return;
  }
  const rows: (string | number)[][] = [...Object.entries(s.records), ['samples', s.samples]];
  if (s.files.length) rows.push(['trust files', s.files.join(' ')]);
  to.write(`${what} (a ${s.header.store} store at schema ${s.header.schemaVersion}, made ${new Date(s.header.createdAt).toISOString()})\n${table(['what', 'count'], rows)}\n`);
}
