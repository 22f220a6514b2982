// Backup, restore and migrate-store with the real CLI binary on real stores:
// a control plane with a real agent process (node, identity, app, running
// replica, model sample), tokens, a device and a site; its SQLite store backed
// up, restored into fresh data dirs (SQLite and a throwaway PostgreSQL), and
// control planes started on the results serve the same records with the same
// CA and admin token. Bad files and occupied targets are refused with a code,
// and nothing is written.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { KINDS } from '../src/server/store/store.js';
import { openExisting } from '../src/server/backup.js';
import { startServer, type RunningServer } from '../src/server/server.js';
import { ApiClient } from '../src/contract/client.js';
import { pgSkipReason, sharedPostgres } from '../src/server/store/pgkit.js';
import { cli, cliEnv, controlPlane, settleAgents, silent, spawnAgent, tmpDir, waitFor, writeManifest, type AgentProc } from './helpers.js';

const skipPg = pgSkipReason() ?? undefined;
const cluster = skipPg ? null : await sharedPostgres();

const source = tmpDir();
const agentDir = tmpDir();
const file = path.join(tmpDir(), 'outpost.backup');
let agent: AgentProc | null = null;
let adminToken = '';
let caPem = '';
const servers: RunningServer[] = [];

const stats = { name: 'stats', command: ['node', 'examples/sensor-stats/server.mjs'], ports: [{ name: 'http', container: 5000 }], health: { http: '/healthz', port: 'http' } };

/** Every record and sample a store holds, as a backup must carry them. */
async function contents(dataDir: string, store?: string) {
  const s = await openExisting({ dataDir, store });
  try {
    const out: Record<string, unknown> = {};
    for (const k of KINDS) out[k] = (await s.list(k)).map((r) => [r.key, r.doc]);
    out.samples = await s.listSamples(1e9);
    return out;
  } finally {
    await s.close();
  }
}

const run = async (args: string[], env: NodeJS.ProcessEnv = {}) => cli(args, { OUTPOST_STORE: '', ...env });
const ok = async (args: string[], env: NodeJS.ProcessEnv = {}) => {
  const r = await run(args, env);
  assert.equal(r.code, 0, r.stderr);
  return r;
};
const lines = (f: string) => zlib.gunzipSync(fs.readFileSync(f)).toString('utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
const writeLines = (f: string, ls: unknown[]) => fs.writeFileSync(f, zlib.gzipSync(ls.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n'));
const sha = (f: string) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');

/** A control plane on a restored data dir, and what it serves to the original admin token through the original CA. */
async function serves(dataDir: string, store?: string) {
  const s = await startServer({ dataDir, store, host: '127.0.0.1', port: 0, log: silent, nodeTimeoutMs: 600_000 });
  servers.push(s);
  const c = new ApiClient(s.url, adminToken, caPem);
  return {
    server: s,
    apps: (await c.apps()).map((a) => a.name),
    nodes: (await c.nodes()).map((n) => n.name),
    replicas: (await c.replicas()).map((r) => `${r.id}@${r.node}:${r.state}`),
    tokens: (await c.tokens()).map((t) => t.id).sort(),
    devices: (await c.devices()).map((d) => d.name),
  };
}

let want: Awaited<ReturnType<typeof contents>>;

before(async () => {
  const cp = await controlPlane(source, { sharedJoinToken: true });
  adminToken = cp.adminToken;
  caPem = cp.caPem!;
  agent = spawnAgent(cp, ['--name', 'edge-1', '--runtime', 'process', '--data-dir', agentDir]);
  await waitFor('node ready', async () => (await cp.client.nodes()).some((n) => n.name === 'edge-1' && n.state === 'ready'));
  await ok(['deploy', '-f', writeManifest(tmpDir(), 'stats', stats), '--wait'], cliEnv(cp));
  await ok(['device', 'create', 'cam-1', '--streams', 'temp'], cliEnv(cp));
  await ok(['site', 'add', 'berlin', '--probe', '127.0.0.1:9'], cliEnv(cp));
  // a secret: its record is encrypted with secrets.key, which the backup must carry for it to be read again
  await ok(['secret', 'set', 'db-pw', '--from-literal', 'kept-in-the-backup'], cliEnv(cp));
  await waitFor('a model sample', async () => (await cp.cp.store.listSamples(10)).length > 0);
  await cp.close();
  agent.child.kill('SIGKILL');
  await agent.exited;
  want = await contents(source);
});

after(async () => {
  for (const s of servers) await s.close().catch(() => {});
  await settleAgents();
  cluster?.stop();
});

test('a SQLite store backed up offline and restored into a fresh data dir: the same records, CA and admin token, served by a control plane started there', async () => {
  for (const k of [...KINDS, 'samples']) assert.ok((want[k] as unknown[]).length > 0, `the source has ${k}`);
  await ok(['backup', '--offline', '--data-dir', source, '--out', file]);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  const ls = lines(file);
  assert.equal(ls[0]!.format, 'outpost-backup');
  assert.deepEqual(ls.filter((l) => l.type === 'file').map((l) => l.name).sort(), ['admin.token', 'join.token', 'secrets.key', 'tls/ca.crt', 'tls/ca.key', 'tls/hub-ca.crt', 'tls/hub-ca.key', 'tls/identity.key', 'tls/ticket.keys']);
  assert.equal(ls.at(-1)!.type, 'end');

  const dest = path.join(tmpDir(), 'restored');
  const r = await ok(['restore', file, '--data-dir', dest]);
  assert.match(r.stdout, /replicas\s+1\b/);
  assert.deepEqual(await contents(dest), want);
  for (const f of ['admin.token', 'tls/ca.key', 'tls/hub-ca.key', 'join.token', 'secrets.key']) {
    assert.equal(sha(path.join(dest, f)), sha(path.join(source, f)), f);
    assert.equal(fs.statSync(path.join(dest, f)).mode & 0o777, fs.statSync(path.join(source, f)).mode & 0o777, `${f}'s mode`);
  }
  assert.equal(fs.existsSync(path.join(dest, 'tls/server.key')), false, 'the serving certificate is not carried');

  const got = await serves(dest);
  assert.deepEqual(got.apps, ['stats']);
  assert.deepEqual(got.nodes, ['edge-1']);
  assert.equal(got.replicas.length, 1);
  assert.match(got.replicas[0]!, /^stats-.*@edge-1:running$/);
  assert.equal(got.tokens.length, (want.tokens as unknown[]).length);
  assert.deepEqual(got.devices, ['cam-1']);

  // the running control plane's own backup equals the offline one taken after it stops
  const online = path.join(tmpDir(), 'online.backup');
  const env = { OUTPOST_SERVER: got.server.url, OUTPOST_TOKEN: adminToken, OUTPOST_CA: path.join(dest, 'ca.crt') };
  const refused = await run(['backup', '--out', online], { ...env, OUTPOST_TOKEN: 'not-the-token' });
  assert.match(refused.stderr, /^error E_UNAUTHORIZED/m);
  assert.equal(fs.existsSync(online), false);
  await ok(['backup', '--out', online], env);
  await got.server.close();
  const offline = path.join(tmpDir(), 'offline.backup');
  await ok(['backup', '--offline', '--data-dir', dest, '--out', offline]);
  const [h1, ...rest1] = lines(online);
  const [h2, ...rest2] = lines(offline);
  assert.deepEqual(rest1, rest2);
  assert.deepEqual([h1!.store, h1!.schemaVersion], [h2!.store, h2!.schemaVersion]);
});

test('bad files are refused with a code and the line, before anything is written', async () => {
  const all = lines(file);
  const bad = (name: string, ls: unknown[]) => { const f = path.join(tmpDir(), name); writeLines(f, ls); return f; };
  const truncated = path.join(tmpDir(), 'truncated');
  fs.writeFileSync(truncated, fs.readFileSync(file).subarray(0, Math.floor(fs.statSync(file).size / 2)));
  const cases: [string, RegExp][] = [
    [truncated, /^error E_INVALID: backup line \d+: not a whole gzip file/m],
    [bad('garbled', [all[0], all[1], '{"type": "record", "kind": "apps",', ...all.slice(2)]), /^error E_INVALID: backup line 3: not JSON/m],
    [bad('cut', all.slice(0, -2)), /^error E_INVALID: backup line \d+: the file ends without its end line/m],
    [bad('format', [{ ...all[0], format: 'something-else' }, ...all.slice(1)]), /^error E_INVALID: backup line 1: not an Outpost backup/m],
    [bad('version', [{ ...all[0], version: 2 }, ...all.slice(1)]), /^error E_INVALID: backup line 1: backup format version 2/m],
    [bad('newer', [{ ...all[0], schemaVersion: 999 }, ...all.slice(1)]), /^error E_STORE: the backup is of a sqlite store at schema version 999/m],
    [bad('escape', [all[0], { type: 'file', name: '../../evil', mode: 0o600, data: '' }, ...all.slice(1)]), /^error E_INVALID: backup line 2: file "..\/..\/evil" is none of/m],
    [bad('counts', [...all.slice(0, -1), { ...all.at(-1), records: 1 }]), /^error E_INVALID: backup line \d+: the end line counts/m],
    [path.join(tmpDir(), 'missing'), /^error E_USAGE: no backup file/m],
  ];
  for (const [f, want2] of cases) {
    const dest = path.join(tmpDir(), 'never');
    const r = await run(['restore', f, '--data-dir', dest]);
    assert.notEqual(r.code, 0, path.basename(f));
    assert.match(r.stderr, want2);
    assert.equal(fs.existsSync(dest), false, `${path.basename(f)}: nothing written`);
  }
});

test('a store that is not empty, or another control plane\'s trust files, are refused without --force; --force replaces them', async () => {
  // a data dir where another control plane ran: its own CA and records
  const other = path.join(tmpDir(), 'other');
  const s = await startServer({ dataDir: other, host: '127.0.0.1', port: 0, log: silent });
  await s.createJoinToken();
  await s.close();
  const before2 = { ca: sha(path.join(other, 'tls/ca.key')), db: await contents(other) };
  let r = await run(['restore', file, '--data-dir', other]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error E_CONFLICT: .* holds other trust files than the backup's \(admin\.token, tls\/ca\.crt, tls\/ca\.key/m);
  assert.deepEqual({ ca: sha(path.join(other, 'tls/ca.key')), db: await contents(other) }, before2, 'nothing written');

  // the same trust files, but records in the store
  const same = path.join(tmpDir(), 'same');
  await ok(['restore', file, '--data-dir', same]);
  r = await run(['restore', file, '--data-dir', same]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^error E_CONFLICT: the store is not empty \(at revision \d+\)/m);

  await ok(['restore', file, '--data-dir', other, '--force']);
  assert.deepEqual(await contents(other), want);
  assert.equal(sha(path.join(other, 'tls/ca.key')), sha(path.join(source, 'tls/ca.key')));
  // its old serving certificate (of the replaced CA) is gone: the start issues one the restored CA signed
  const got = await serves(other);
  assert.deepEqual(got.apps, ['stats']);
  await got.server.close();
});

test('a backup restored into PostgreSQL, and back out of it, keeps every record; a control plane serves it', { skip: skipPg }, async () => {
  const url = await cluster!.newDatabase();
  const dir = path.join(tmpDir(), 'pg');
  await ok(['restore', file, '--data-dir', dir, '--store', url]);
  assert.deepEqual(await contents(dir, url), want);
  assert.equal(fs.existsSync(path.join(dir, 'outpost.db')), false);
  const got = await serves(dir, url);
  assert.deepEqual([got.apps, got.nodes, got.devices], [['stats'], ['edge-1'], ['cam-1']]);
  // on PostgreSQL the leader marks a node no live instance holds (at its first beat)
  await waitFor('the node marked unreachable', () => got.server.cp.state.node('edge-1')?.state === 'unreachable');
  await got.server.close();
  // that control plane marked the node it could not reach: the store holds it so now
  const held = await contents(dir, url);
  assert.equal((held.nodes as [string, { state: string }][])[0]![1].state, 'unreachable');

  const fromPg = path.join(tmpDir(), 'pg.backup');
  await ok(['backup', '--offline', '--data-dir', dir, '--out', fromPg], { OUTPOST_STORE: url });
  assert.equal(lines(fromPg)[0]!.store, 'postgres');
  const back = path.join(tmpDir(), 'back');
  await ok(['restore', fromPg, '--data-dir', back]);
  assert.deepEqual(await contents(back), held);
});

test('migrate-store copies a SQLite store into an empty PostgreSQL database without writing to it; the data dir then runs on PostgreSQL', { skip: skipPg }, async () => {
  const url = await cluster!.newDatabase();
  const db = path.join(source, 'outpost.db');
  const hash = sha(db);
  const r = await ok(['migrate-store', '--data-dir', source, '--to', url]);
  assert.match(r.stdout, /apps\s+1\b/);
  assert.equal(sha(db), hash, 'the SQLite file is as it was');
  assert.deepEqual(await contents(source, url), want);

  const again = await run(['migrate-store', '--data-dir', source, '--to', url]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /^error E_CONFLICT: the PostgreSQL store is not empty/m);

  const got = await serves(source, url);
  assert.deepEqual([got.apps, got.nodes, got.devices, got.tokens.length], [['stats'], ['edge-1'], ['cam-1'], (want.tokens as unknown[]).length]);
  assert.match(got.replicas[0]!, /^stats-.*@edge-1:running$/);
  await got.server.close();
});
