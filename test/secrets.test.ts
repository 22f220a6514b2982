// Secrets end to end, with real processes and Podman: a container gets one as
// an env var and one as a read-only file, a process replica gets its own;
// neither value is anywhere else (store, API, CLI output, agents' data dirs,
// logs), a node that runs no app using a secret never receives it, a new
// value rolls the replicas, rotating the envelope key keeps every secret
// readable, and an offline reboot starts the workload with its secret.
import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import pino from 'pino';
import type { ReplicaRecord } from '../src/core/types.js';
import { LABELS } from '../src/agent/drivers/driver.js';
import { secretsBase } from '../src/agent/secrets.js';
import { OutpostError } from '../src/core/errors.js';
import { engineOrSkip } from './engine.js';
import { cli, cliEnv, controlPlane, pidAlive, spawnAgent, tmpDir, waitFor, writeManifest, type AgentProc, type TestControlPlane } from './helpers.js';

const { docker, skip } = await engineOrSkip();
const IMAGE = 'localhost/outpost-secrets-probe:1';

// answers the env var or file it is asked for: how the test reads what the workload got
const PROBE = `import http from 'node:http';
import fs from 'node:fs';
http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  try {
    if (u.pathname === '/healthz') return res.end('ok');
    if (u.pathname === '/env') return res.end(process.env[u.searchParams.get('name')] ?? '');
    if (u.pathname === '/file') return res.end(fs.readFileSync(u.searchParams.get('path') ?? process.env[u.searchParams.get('env')]));
  } catch (e) { res.statusCode = 500; return res.end(String(e.code)); }
  res.statusCode = 404; res.end();
}).listen(Number(process.env.PORT ?? 8080), process.env.HOST ?? '0.0.0.0');
`;

/** Every file under `dir`, read whole (the store's -wal too). */
function filesUnder(dir: string): { file: string; data: Buffer }[] {
  const out: { file: string; data: Buffer }[] = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push({ file: p, data: fs.readFileSync(p) });
  }
  return out;
}

/** Where any of the values (or their base64) shows in `text`: what must stay empty. */
function leaks(where: string, data: Buffer | string, values: string[]): string[] {
  const b = Buffer.isBuffer(data) ? data : Buffer.from(data);
  return values.flatMap((v) => [v, Buffer.from(v).toString('base64')]).filter((x) => b.includes(x)).map((x) => `${where}: ${x}`);
}

// what an agent received: its debug log of every assignment message, bytes and the secrets' names and versions only
const received = (a: AgentProc) => a.output().split('\n').filter((l) => l.includes('"assignments received"')).map((l) => JSON.parse(l) as { bytes: number; secrets: string[] });

describe('secrets', { skip }, () => {
  const tag = `${process.pid}`;
  const na = `sec-a${tag}`;
  const nb = `sec-b${tag}`;
  const work = tmpDir();
  const cpDir = tmpDir();
  const dirA = tmpDir();
  const dirB = tmpDir();
  const serverLog = path.join(work, 'server.log');
  const val = (p: string) => `${p}-${randomBytes(12).toString('hex')}`;
  const V1 = val('dbpw1');
  const V2 = val('dbpw2');
  const TLS = `-----BEGIN ${val('TLS')}-----\n`;
  const PROC = val('proc');
  const all = [V1, V2, TLS.trim(), PROC];
  let cp: TestControlPlane;
  let env: NodeJS.ProcessEnv;
  const agents: AgentProc[] = [];
  let agentB: AgentProc;
  const probeFile = path.join(work, 'probe', 'probe.mjs');
  const startAgent = (name: string, dir: string, runtime: string) => {
    const a = spawnAgent(cp, ['--name', name, '--runtime', runtime, '--data-dir', dir, '--labels', `who=${name}`, '--no-hub'], { OUTPOST_LOG_LEVEL: 'debug' });
    agents.push(a);
    return a;
  };
  const mine = async () => docker!.listContainers({ all: true, filters: { label: [`${LABELS.node}=${na}`] } });
  const ready = async (app: string) => (await cp.client.appReplicas(app)).filter((r) => r.state === 'running' && r.ready && r.endpoint);
  const get = async (r: ReplicaRecord | string, q: string) => {
    const res = await fetch(`${typeof r === 'string' ? r : r.endpoint}${q}`);
    return { status: res.status, text: await res.text() };
  };
  const vault = (extra: object = {}) => ({
    name: 'vault', image: IMAGE, ports: [{ name: 'http', container: 8080 }], health: { http: '/healthz' },
    placement: { constraints: { who: na } }, update: { progressDeadlineMs: 60_000 },
    secrets: [{ name: 'db-pw', env: 'DB_PASSWORD' }, { name: 'tls', file: '/run/secrets/tls.pem' }], ...extra,
  });
  const proc = {
    name: 'proc', command: ['node', probeFile], ports: [{ name: 'http', container: 8080 }], health: { http: '/healthz' },
    placement: { constraints: { who: nb } }, secrets: [{ name: 'proc-token', env: 'PROC_TOKEN' }, { name: 'tls', file: '/run/secrets/tls.pem' }],
  };

  before(async () => {
    // the probe image: the example's base (node) with the probe, run as an unprivileged uid
    fs.mkdirSync(path.dirname(probeFile), { mode: 0o755 });
    fs.chmodSync(work, 0o755);
    fs.writeFileSync(probeFile, PROBE, { mode: 0o644 });
    if (!(await docker!.getImage(IMAGE).inspect().then(() => true, () => false))) {
      const base = `localhost/outpost-node-base:${process.versions.node}`;
      fs.writeFileSync(path.join(work, 'probe', 'Containerfile'), `FROM ${base}\nCOPY probe.mjs /app/\nUSER 65534\nCMD ["/usr/bin/node", "/app/probe.mjs"]\n`);
      execFileSync('podman', ['build', '--pull=never', '-q', '-t', IMAGE, '-f', path.join(work, 'probe', 'Containerfile'), path.join(work, 'probe')]);
    }
    const log = pino({ level: 'debug' }, pino.destination({ dest: serverLog, sync: true }));
    cp = await controlPlane(cpDir, { log });
    env = cliEnv(cp);
    const a = startAgent(na, dirA, 'docker');
    agentB = startAgent(nb, dirB, 'process');
    await waitFor('agents registered', () => a.output().includes('registered with the control plane') && agentB.output().includes('registered with the control plane'));
  });

  after(async () => {
    for (const a of agents) a.child.kill('SIGKILL');
    for (const c of await mine()) await docker!.getContainer(c.Id).remove({ force: true }).catch(() => {});
    for (const f of fs.existsSync(path.join(dirB, 'agent', 'processes')) ? fs.readdirSync(path.join(dirB, 'agent', 'processes')).filter((x) => x.endsWith('.json')) : []) {
      const pid = (JSON.parse(fs.readFileSync(path.join(dirB, 'agent', 'processes', f), 'utf8')) as { pid: number | null }).pid;
      if (pid && pidAlive(pid)) process.kill(-pid, 'SIGKILL');
    }
    for (const n of [na, nb]) fs.rmSync(path.join(secretsBase(), n), { recursive: true, force: true });
    await cp.close().catch(() => {});
  });

  test('bad input is refused with its code and path: a bad name, a too-large value, a missing reference, both env and file, removing a secret in use', async () => {
    const refused = async (p: Promise<unknown>) => p.then(() => assert.fail('accepted'), (e: OutpostError) => ({ code: e.code, path: e.path }));
    assert.deepEqual(await refused(cp.client.setSecret('Bad_Name', Buffer.from('x'))), { code: 'E_INVALID', path: 'name' });
    assert.deepEqual(await refused(cp.client.setSecret('big', Buffer.alloc(64 * 1024 + 1, 1))), { code: 'E_TOO_LARGE', path: 'value' });
    assert.deepEqual(await refused(cp.client.deploy(vault())), { code: 'E_INVALID', path: 'secrets[0].name' });
    assert.deepEqual(await refused(cp.client.deploy({ ...vault(), secrets: [{ name: 'db-pw', env: 'X', file: '/x' }] })), { code: 'E_INVALID', path: 'secrets[0]' });
    assert.deepEqual(await refused(cp.client.deploy({ ...vault(), secrets: [{ name: 'db-pw', file: 'relative' }] })), { code: 'E_INVALID', path: 'secrets[0].file' });
    assert.deepEqual(await refused(cp.client.deploy({ ...vault(), env: { DB_PASSWORD: 'x' }, secrets: [{ name: 'db-pw', env: 'DB_PASSWORD' }] })), { code: 'E_INVALID', path: 'secrets[0].env' });
    const r = await cli(['secret', 'set', 'big', '--from-literal', 'x'.repeat(64 * 1024 + 1)], env);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /E_TOO_LARGE/);
    assert.deepEqual(await cp.client.secrets(), [], 'nothing was stored');
  });

  test('a container gets one secret as an env var and one as a read-only file owned by its uid; a process replica gets its own; each node only its own', async () => {
    const tlsFile = path.join(work, 'tls.pem');
    fs.writeFileSync(tlsFile, TLS);
    for (const args of [['db-pw', '--from-literal', V1], ['tls', '--from-file', tlsFile], ['proc-token', '--from-literal', PROC]]) {
      const r = await cli(['secret', 'set', ...args], env);
      assert.equal(r.code, 0, r.stderr);
    }
    assert.equal((await cli(['deploy', '-f', writeManifest(work, 'vault', vault()), '--wait', '--timeout', '120'], env)).code, 0);
    assert.equal((await cli(['deploy', '-f', writeManifest(work, 'proc', proc), '--wait', '--timeout', '120'], env)).code, 0);
    const [v] = await ready('vault');
    assert.deepEqual(await get(v!, '/env?name=DB_PASSWORD'), { status: 200, text: V1 });
    assert.deepEqual(await get(v!, '/file?path=/run/secrets/tls.pem'), { status: 200, text: TLS });
    const [p] = await ready('proc');
    assert.deepEqual(await get(p!, '/env?name=PROC_TOKEN'), { status: 200, text: PROC });
    assert.deepEqual(await get(p!, '/file?env=OUTPOST_SECRET_FILE_TLS'), { status: 200, text: TLS });
    // on the node: a tmpfs, the replica's directory 0700 and its file 0400, both the workload's uid (65534)
    const dir = path.join(secretsBase(), na, v!.id);
    const st = fs.statSync(path.join(dir, 'tls'));
    assert.equal(st.mode & 0o777, 0o400);
    assert.equal(st.uid, 65534);
    assert.equal(fs.statSync(dir).mode & 0o777, 0o700);
    assert.equal(execFileSync('stat', ['-f', '-c', '%T', dir]).toString().trim(), 'tmpfs');
    // the container sees it through a read-only bind mount of that file
    const mount = (await docker!.getContainer((await mine())[0]!.Id).inspect()).Mounts.find((m) => m.Destination === '/run/secrets/tls.pem');
    assert.deepEqual([mount?.Source, mount?.RW], [path.join(dir, 'tls'), false]);
    const list = await cp.client.secrets();
    assert.deepEqual(list.map((s) => [s.name, s.version, s.apps]), [['db-pw', 1, ['vault']], ['proc-token', 1, ['proc']], ['tls', 1, ['proc', 'vault']]]);
    const gotB = received(agentB).flatMap((m) => m.secrets);
    const gotA = received(agents[0]!).flatMap((m) => m.secrets);
    assert.ok(gotB.includes('proc-token@1') && gotB.includes('tls@1'), `B got ${gotB}`);
    assert.ok(!gotB.some((s) => s.startsWith('db-pw@')), `B never receives db-pw: ${gotB}`);
    assert.ok(gotA.includes('db-pw@1') && !gotA.some((s) => s.startsWith('proc-token@')), `A got ${gotA}`);
    assert.deepEqual(leaks('agent B output', agentB.output(), [V1]), []);
    // removing a secret in use is refused
    await assert.rejects(cp.client.removeSecret('db-pw'), (e: OutpostError) => e.code === 'E_CONFLICT' && e.path === 'name');
  });

  test('a new value rolls the replicas that use it (and only those); the old replica\'s secret files go with it', async () => {
    const [old] = await ready('vault');
    const procBefore = (await ready('proc')).map((r) => r.id);
    const bBefore = received(agentB);
    // the new value on stdin, as a script pipes it
    const r = await cli(['secret', 'set', 'db-pw', '--json'], env, V2);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual((JSON.parse(r.stdout) as { redeployed: string[] }).redeployed, ['vault']);
    await waitFor('the new value in a new replica', async () => {
      const reps = await cp.client.appReplicas('vault');
      return reps.length === 1 && reps[0]!.id !== old!.id && reps[0]!.ready && (await get(reps[0]!, '/env?name=DB_PASSWORD')).text === V2;
    }, 90_000, 200);
    assert.deepEqual((await ready('proc')).map((x) => x.id), procBefore, 'proc does not use db-pw: not rolled');
    // B runs nothing that uses db-pw: not one assignment byte reached it for the change
    assert.deepEqual(received(agentB).slice(bBefore.length), [], 'no assignment message to B');
    await waitFor('old secret dir removed', () => !fs.existsSync(path.join(secretsBase(), na, old!.id)));
  });

  test('rotate-key: a new key file, the old one gone, every secret readable (a deploy after it gets the same values)', async () => {
    const keyFile = path.join(cpDir, 'secrets.key');
    const before = fs.readFileSync(keyFile);
    const r = await cli(['secret', 'rotate-key', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { secrets: number }).secrets, 3);
    const now = fs.readFileSync(keyFile);
    assert.equal(now.length, 32);
    assert.ok(!now.equals(before), 'a new key');
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
    assert.ok(!fs.existsSync(`${keyFile}.old`), 'the old key is gone');
    assert.ok(!fs.readFileSync(path.join(cpDir, 'outpost.db')).includes(before), 'the store holds no key');
    assert.deepEqual((await cp.client.secrets()).map((s) => s.version), [2, 1, 1], 'versions unchanged: nothing rolls');
    assert.equal((await cli(['deploy', '-f', writeManifest(work, 'vault', vault({ env: { GEN: '2' } })), '--wait', '--timeout', '120'], env)).code, 0);
    const [v] = await ready('vault');
    assert.deepEqual(await get(v!, '/env?name=GEN'), { status: 200, text: '2' });
    assert.deepEqual(await get(v!, '/env?name=DB_PASSWORD'), { status: 200, text: V2 });
    assert.deepEqual(await get(v!, '/file?path=/run/secrets/tls.pem'), { status: 200, text: TLS });
  });

  test('no value anywhere: the store, the API\'s answers, apps/replicas/plan --json, the agents\' data dirs, the logs', async () => {
    const found: string[] = [];
    for (const f of filesUnder(cpDir)) found.push(...leaks(f.file, f.data, all));
    for (const d of [dirA, dirB]) for (const f of filesUnder(d)) found.push(...leaks(f.file, f.data, all));
    const answers = { apps: await cp.client.apps(), vault: await cp.client.app('vault'), replicas: await cp.client.replicas(), secrets: await cp.client.secrets() };
    found.push(...leaks('API', JSON.stringify(answers), all));
    assert.ok(JSON.stringify(answers.vault).includes('"DB_PASSWORD"'), 'the spec shows the reference');
    for (const args of [['apps', '--json'], ['replicas', '--json'], ['plan', '-f', path.join(work, 'vault.json'), '--json'], ['secret', 'list', '--json']]) {
      const r = await cli(args, env);
      assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
      found.push(...leaks(args.join(' '), r.stdout + r.stderr, all));
    }
    found.push(...leaks('server log', fs.readFileSync(serverLog), all));
    for (const a of agents) found.push(...leaks('agent log', a.output(), all));
    assert.ok(fs.readFileSync(serverLog, 'utf8').includes('envelope key rotated'), 'the server log was written');
    assert.deepEqual(found, []);
  });

  test('an offline reboot (control plane down, workloads gone) starts the process replica with its secrets from the sealed desired state', async () => {
    const [p] = await ready('proc');
    await cp.close();
    agentB.child.kill('SIGKILL');
    for (const f of fs.readdirSync(path.join(dirB, 'agent', 'processes')).filter((x) => x.endsWith('.json'))) {
      const pid = (JSON.parse(fs.readFileSync(path.join(dirB, 'agent', 'processes', f), 'utf8')) as { pid: number | null }).pid;
      if (pid && pidAlive(pid)) process.kill(-pid, 'SIGKILL');
    }
    fs.rmSync(path.join(secretsBase(), nb), { recursive: true, force: true }); // a tmpfs does not survive a reboot
    await waitFor('workload down', async () => !(await get(p!, '/healthz').then((x) => x.status === 200, () => false)));
    agentB = startAgent(nb, dirB, 'process');
    await waitFor('workload back', async () => (await get(p!, '/healthz').then((x) => x.status === 200, () => false)), 20_000, 100);
    assert.deepEqual(await get(p!, '/env?name=PROC_TOKEN'), { status: 200, text: PROC });
    assert.deepEqual(await get(p!, '/file?env=OUTPOST_SECRET_FILE_TLS'), { status: 200, text: TLS });
    const found: string[] = [];
    for (const f of filesUnder(dirB)) found.push(...leaks(f.file, f.data, all));
    found.push(...leaks('agent B log', agentB.output(), all));
    assert.deepEqual(found, []);
  });
});
