// The control plane on PostgreSQL, end to end: a real throwaway PostgreSQL,
// the control plane with --store postgres://, a real agent process (process
// runtime) running the example app, then the control plane stopped and
// started again on the same database: it still knows the app, the node and
// the replica, and the agent's workload was neither restarted nor doubled.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
import pg from 'pg';
import type { NodeRecord, ReplicaRecord } from '../src/core/types.js';
import { pgSkipReason, sharedPostgres, sql } from '../src/server/store/pgkit.js';
import { cli, cliEnv, controlPlane, postJson, settleAgents, spawnAgent, tmpDir, waitFor, writeManifest, type AgentProc, type TestControlPlane } from './helpers.js';

const skip = pgSkipReason() ?? undefined;
const cluster = skip ? null : await sharedPostgres();
const url = cluster ? await cluster.newDatabase() : '';
const dataDir = tmpDir();
const agentDir = tmpDir();
let cp: TestControlPlane | null = null;
let agent: AgentProc | null = null;

after(async () => {
  if (cp) await cli(['rm', 'stats'], cliEnv(cp)).catch(() => {});
  await settleAgents();
  agent?.child.kill('SIGKILL');
  await cp?.close();
  cluster?.stop();
});

const stats = { name: 'stats', command: ['node', 'examples/sensor-stats/server.mjs'], ports: [{ name: 'http', container: 5000 }], health: { http: '/healthz', port: 'http' } };
const json = async <T>(args: string[]): Promise<T> => {
  const r = await cli([...args, '--json'], cliEnv(cp!));
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
};
const replicaPid = (id: string) => (JSON.parse(fs.readFileSync(path.join(agentDir, 'agent', 'processes', `${id}.json`), 'utf8')) as { pid: number }).pid;

test('a deploy through a control plane on PostgreSQL runs, and a restarted control plane on the same database still knows the app and the node', { skip }, async () => {
  cp = await controlPlane(dataDir, { store: url });
  agent = spawnAgent(cp, ['--name', 'edge-pg', '--runtime', 'process', '--data-dir', agentDir]);
  await waitFor('node ready', async () => (await json<NodeRecord[]>(['nodes'])).some((n) => n.name === 'edge-pg' && n.state === 'ready'));
  const r = await cli(['deploy', '-f', writeManifest(tmpDir(), 'stats', stats), '--wait', '--json'], cliEnv(cp));
  assert.equal(r.code, 0, r.stderr);
  const rep = (JSON.parse(r.stdout) as { replicas: ReplicaRecord[] }).replicas[0]!;
  assert.equal(rep.state, 'running');
  assert.deepEqual((await postJson(`${rep.endpoint}/process_data`, '[1,2,3]')).json, { processed_data: 2 });
  const pid = replicaPid(rep.id);

  // the state is in PostgreSQL, and no SQLite store was made beside it
  const db = new pg.Client(url);
  await db.connect();
  try {
    assert.deepEqual((await db.query('SELECT key FROM apps')).rows, [{ key: 'stats' }]);
    assert.deepEqual((await db.query('SELECT key, node FROM replicas')).rows, [{ key: rep.id, node: 'edge-pg' }]);
  } finally { await db.end(); }
  assert.equal(fs.existsSync(path.join(dataDir, 'outpost.db')), false);

  // the same port: the agent comes back to the URL it knows
  const port = Number(new URL(cp.url).port);
  await cp.close();
  cp = await controlPlane(dataDir, { store: url, port });
  const apps = await json<{ name: string }[]>(['apps']);
  assert.deepEqual(apps.map((a) => a.name), ['stats'], 'the app survived the restart');
  assert.ok((await json<NodeRecord[]>(['nodes'])).some((n) => n.name === 'edge-pg'), 'so did the node');
  await waitFor('the agent back and the replica running', async () => {
    const nodes = await json<NodeRecord[]>(['nodes']);
    const reps = await json<ReplicaRecord[]>(['replicas', 'stats']);
    return nodes.find((n) => n.name === 'edge-pg')?.state === 'ready' && reps.length === 1 && reps[0]!.state === 'running' ? reps : null;
  });
  const [after2] = await json<ReplicaRecord[]>(['replicas', 'stats']);
  assert.equal(after2!.id, rep.id, 'the same replica, not a new one');
  assert.equal(replicaPid(rep.id), pid, 'its process was not restarted');
  assert.deepEqual((await postJson(`${after2!.endpoint}/process_data`, '[4,6]')).json, { processed_data: 5 });
});

test('a secret set on a PostgreSQL store is nowhere in the database\'s files, its WAL or its log, in the clear or in base64', { skip }, async () => {
  assert.ok(cp, 'the first test left a control plane');
  const value = `pg-${crypto.randomBytes(12).toString('hex')}`;
  const r = await cli(['secret', 'set', 'pg-pw', '--from-literal', value], cliEnv(cp!));
  assert.equal(r.code, 0, r.stderr);
  // the pages written out, not only the WAL
  await sql(url, 'CHECKPOINT');
  assert.equal((await sql<{ n: string }>(url, "SELECT count(*)::text AS n FROM secrets WHERE key = 'pg-pw'"))[0]!.n, '1', 'the secret is in PostgreSQL');
  const needles = [value, Buffer.from(value).toString('base64')].map((x) => Buffer.from(x));
  const hits: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const data = fs.readFileSync(p);
        for (const n of needles) if (data.includes(n)) hits.push(p);
      }
    }
  };
  walk(cluster!.dir);
  assert.deepEqual(hits, []);
});

test('outpost server with an unreachable or wrong --store stops with a code, not a stack trace', { skip }, async () => {
  const dir = tmpDir();
  const down = await cli(['server', '--data-dir', dir, '--listen', '127.0.0.1:0', '--store', 'postgres://outpost:hunter2@127.0.0.1:1/outpost']);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /^error E_STORE: cannot open the PostgreSQL store at postgres:\/\/outpost:\*\*\*@127\.0\.0\.1:1\/outpost/m);
  assert.doesNotMatch(down.stderr, /hunter2|    at /);
  const wrong = await cli(['server', '--data-dir', dir, '--listen', '127.0.0.1:0'], { OUTPOST_STORE: 'mysql://db/outpost' });
  assert.equal(wrong.code, 2);
  assert.match(wrong.stderr, /E_USAGE.*OUTPOST_STORE/);
});
