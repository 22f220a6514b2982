// Workload identity end to end, with a real control plane, a process-runtime
// agent and its data hub: a replica gets a token (env and file) naming its
// app, replica and node, verified with node:crypto against the published
// JWKS; the node's hub takes points posted with it to its app's stream and
// refuses them for another app's stream, and refuses an expired or tampered
// token; a node asking for a token for a replica not its own is refused.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import WebSocket from 'ws';
import mqtt from 'mqtt';
import type { ReplicaRecord } from '../src/core/types.js';
import { signIdentity, type IdentityJwk } from '../src/core/jwt.js';
import { secretsBase } from '../src/agent/secrets.js';
import { execFileSync, spawnSync } from 'node:child_process';
import { engineOrSkip } from './engine.js';
import { call, controlPlane, dialAgent, enrol, settleAgents, spawnAgent, tmpDir, waitFor, type AgentProc } from './helpers.js';
import { device, devicesYaml, hubConfigFile, noMosquitto } from './hubkit.js';

const cp = await controlPlane();
const agents: AgentProc[] = [];
after(async () => {
  for (const app of ['id-a', 'id-b']) await cp.client.remove(app).catch(() => {});
  await settleAgents();
  for (const a of agents) a.child.kill('SIGTERM');
  await Promise.all(agents.map((a) => a.exited));
  await cp.close();
});

// answers an env var, or the file an env var names: how the test reads what the workload got
const PROBE = `import http from 'node:http';
import fs from 'node:fs';
http.createServer((req, res) => {
  const u = new URL(req.url, 'http://x');
  if (u.pathname === '/env') return res.end(process.env[u.searchParams.get('name')] ?? '');
  if (u.pathname === '/file') return res.end(fs.readFileSync(process.env[u.searchParams.get('env')]));
  res.end('ok');
}).listen(Number(process.env.PORT), process.env.HOST ?? '127.0.0.1');
`;

const node = `idn${process.pid}`;
const work = tmpDir();
const probe = path.join(work, 'probe.mjs');
fs.writeFileSync(probe, PROBE, { mode: 0o644 });
// replicas run as nobody: the probe must be readable to them
fs.chmodSync(work, 0o755);
// a hub config with a device: the hub takes no anonymous clients
const hubConfig = ['--hub-config', hubConfigFile(tmpDir(), devicesYaml([device('dev1', ['unused'])]))];

const app = (name: string, stream: string) => ({
  name, command: ['node', probe], ports: [{ name: 'http', container: 8080 }], health: { http: '/healthz', port: 'http' }, placement: { nodes: [node] },
  streams: { [stream]: { windowMs: 1000, ops: ['count'] } },
});

const running = (name: string) => waitFor(`${name} running`, async () => {
  const r = ((await cp.client.app(name)).replicas as ReplicaRecord[]).find((x) => x.state === 'running' && x.endpoint);
  return r ?? null;
}, 30_000).catch(async (e) => {
  throw new Error(`${(e as Error).message}: ${JSON.stringify((await cp.client.app(name)).replicas)}\n${agents.map((a) => a.output()).join('\n').slice(-3000)}`);
});

const text = async (url: string) => (await fetch(url)).text();
const claimsOf = (jwt: string) => JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;

test('a replica\'s identity token names it, verifies against the JWKS, and opens only its app\'s streams on the node\'s hub', { timeout: 90_000 }, async () => {
  agents.push(spawnAgent(cp, ['--name', node, '--runtime', 'process', '--data-dir', tmpDir(), ...hubConfig]));
  const hub = await waitFor('the hub', async () => (await cp.client.nodes()).find((n) => n.name === node && n.state === 'ready')?.hub);
  await cp.client.deploy(app('id-a', 'id-a-s'));
  await cp.client.deploy(app('id-b', 'id-b-s'));
  const r = await running('id-a');
  await running('id-b');

  const token = await text(`${r.endpoint}/env?name=OUTPOST_IDENTITY_TOKEN`);
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, 'a JWT in OUTPOST_IDENTITY_TOKEN');
  assert.equal(await text(`${r.endpoint}/file?env=OUTPOST_IDENTITY_TOKEN_FILE`), token, 'the same token in the file');
  const file = await text(`${r.endpoint}/env?name=OUTPOST_IDENTITY_TOKEN_FILE`);
  assert.equal(fs.statSync(file).mode & 0o777, 0o400);
  assert.equal(fs.statSync(path.dirname(file)).mode & 0o777, 0o700);

  // the JWKS, with no token, verified with node:crypto alone
  const keys = await call(cp, 'GET', '/v1/identity/keys', { token: null });
  assert.equal(keys.status, 200);
  const jwks = keys.body as unknown as { keys: IdentityJwk[] };
  const [h, p, s] = token.split('.') as [string, string, string];
  const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
  assert.deepEqual(header, { alg: 'ES256', kid: jwks.keys[0]!.kid, typ: 'JWT' });
  const pub = crypto.createPublicKey({ key: jwks.keys.find((k) => k.kid === header.kid)! as unknown as crypto.JsonWebKey, format: 'jwk' });
  assert.ok(crypto.verify('sha256', Buffer.from(`${h}.${p}`), { key: pub, dsaEncoding: 'ieee-p1363' }, Buffer.from(s, 'base64url')), 'the signature verifies');
  const c = claimsOf(token);
  assert.equal(c.app, 'id-a');
  assert.equal(c.replica, r.id);
  assert.equal(c.node, node);
  assert.equal(c.sub, `replica:${r.id}`);
  assert.equal(c.iss, 'outpost');
  assert.equal(c.aud, 'outpost');
  assert.equal((c.exp as number) - (c.iat as number), 3600);

  const post = (stream: string, jwt: string) => fetch(`${hub.http}/v1/streams/${stream}/points`, {
    method: 'POST', body: JSON.stringify([{ ts: Date.now(), v: 1 }]), headers: { 'content-type': 'application/json', authorization: `Bearer ${jwt}` },
  }).then(async (res) => ({ status: res.status, body: await res.json() as { accepted?: number; error?: { code: string; message: string } } }));

  const ok = await post('id-a-s', token);
  assert.equal(ok.status, 200, JSON.stringify(ok.body));
  assert.equal(ok.body.accepted, 1);

  const other = await post('id-b-s', token);
  assert.equal(other.status, 403);
  assert.equal(other.body.error?.code, 'E_FORBIDDEN', 'another app\'s stream');

  // the payload changed to name the other app, the signature kept
  const forged = `${h}.${Buffer.from(JSON.stringify({ ...c, app: 'id-b' })).toString('base64url')}.${s}`;
  const tampered = await post('id-b-s', forged);
  assert.equal(tampered.status, 401);
  assert.match(tampered.body.error?.message ?? '', /bad signature/);

  // a token the real key signed, an hour and a minute ago
  const key = crypto.createPrivateKey(fs.readFileSync(path.join(cp.dataDir, 'tls/identity.key')));
  const iat = Math.floor(Date.now() / 1000) - 3660;
  const old = signIdentity(key, header.kid, { ...(c as object), iat, exp: iat + 3600 } as Parameters<typeof signIdentity>[2]);
  const expired = await post('id-a-s', old);
  assert.equal(expired.status, 401);
  assert.match(expired.body.error?.message ?? '', /expired/);

  if (noMosquitto) return;
  // MQTT: the token is the password (any username); a QoS 1 publish returns 0 only once its PUBACK came, after the points were stored
  const u = new URL(hub.mqtt);
  const mqttPub = (stream: string, jwt: string) => spawnSync('mosquitto_pub', [
    '-h', u.hostname, '-p', u.port, ...(u.protocol === 'mqtts:' ? ['--cafile', path.join(cp.dataDir, 'ca.crt')] : []),
    '-u', 'replica', '-P', jwt, '-t', `outpost/data/${stream}`, '-q', '1', '-m', '5', '-i', `id-test-${stream}`,
  ], { encoding: 'utf8', timeout: 10_000 });
  const before = await streamCount(hub.http, token, 'id-a-s');
  const m = mqttPub('id-a-s', token);
  assert.equal(m.status, 0, m.stderr);
  assert.equal(await streamCount(hub.http, token, 'id-a-s'), before + 1, 'the MQTT point was stored in the app\'s stream');
  const elsewhere = mqttPub('id-b-s', token);
  assert.notEqual(elsewhere.status, 0, 'another app\'s stream over MQTT: the connection is closed before any PUBACK');
  assert.match(mqttPub('id-a-s', old).stderr, /bad user name or password/i, 'an expired token over MQTT');
  assert.match(mqttPub('id-a-s', forged).stderr, /bad user name or password/i, 'a tampered token over MQTT');

  // a connection lasts as long as its token: one signed to expire in 2 s is closed then
  const soon = Math.floor(Date.now() / 1000);
  const short = signIdentity(key, header.kid, { ...(c as object), iat: soon, exp: soon + 2 } as Parameters<typeof signIdentity>[2]);
  const client = await mqtt.connectAsync(hub.mqtt, { username: 'replica', password: short, reconnectPeriod: 0, ca: fs.readFileSync(path.join(cp.dataDir, 'ca.crt')) });
  const t0 = Date.now();
  await new Promise<void>((r) => client.once('close', () => r()));
  assert.ok(Date.now() - t0 < 6000, 'closed when the token expired');
  await client.endAsync(true);
});

/** Points the hub took for a stream (GET /v1/streams with the replica's own token). */
async function streamCount(hubHttp: string, jwt: string, stream: string): Promise<number> {
  const list = await (await fetch(`${hubHttp}/v1/streams`, { headers: { authorization: `Bearer ${jwt}` } })).json() as { name: string; pointsIn?: number }[];
  return list.find((x) => x.name === stream)?.pointsIn ?? 0;
}

test('a node that asks for a token for a replica not its own is refused (E_FORBIDDEN) and gets none', { timeout: 60_000 }, async () => {
  const mine = await running('id-a');
  const other = 'idother';
  const creds = await enrol(cp, other, cp.joinToken);
  const ws: WebSocket = dialAgent(cp, creds, other);
  const got: { type: string; code?: string; tokens?: unknown }[] = [];
  ws.on('message', (raw) => got.push(JSON.parse(raw.toString())));
  await new Promise((r, j) => { ws.on('open', r); ws.on('error', j); });
  const closed = new Promise<number>((r) => ws.on('close', (code) => r(code)));
  ws.send(JSON.stringify({ type: 'register', node: { name: other, hostname: other, arch: 'amd64', cpus: 1, memoryMiB: 512, labels: {}, site: null, runtime: 'process', address: '127.0.0.1', images: [], layers: [], imageLayers: {}, agentVersion: 't' } }));
  await waitFor('registered', () => got.some((m) => m.type === 'assign'), 5000);
  ws.send(JSON.stringify({ type: 'identity', replicas: [mine.id] }));
  assert.equal(await closed, 4403);
  assert.equal(got.find((m) => m.type === 'error')?.code, 'E_FORBIDDEN');
  assert.ok(!got.some((m) => m.type === 'identity'), 'no token was sent');
  await cp.client.removeNode(other).catch(() => {});
});

const { skip } = await engineOrSkip();
const IMAGE = 'localhost/outpost-identity-probe:1';

test('a container finds its token in /run/outpost/identity/token, and a token replaced by a rename shows through the mount', { skip, timeout: 120_000 }, async () => {
  const cnode = `idc${process.pid}`;
  const probeDir = path.join(work, 'image');
  fs.mkdirSync(probeDir, { mode: 0o755 });
  fs.copyFileSync(probe, path.join(probeDir, 'probe.mjs'));
  fs.writeFileSync(path.join(probeDir, 'Containerfile'), `FROM localhost/outpost-node-base:${process.versions.node}\nCOPY probe.mjs /app/\nUSER 65534\nCMD ["/usr/bin/node", "/app/probe.mjs"]\n`);
  execFileSync('podman', ['build', '--pull=never', '-q', '-t', IMAGE, '-f', path.join(probeDir, 'Containerfile'), probeDir]);
  agents.push(spawnAgent(cp, ['--name', cnode, '--runtime', 'docker', '--data-dir', tmpDir(), '--no-hub']));
  await waitFor('the container node', async () => (await cp.client.nodes()).some((n) => n.name === cnode && n.state === 'ready'));
  await cp.client.deploy({ name: 'id-c', image: IMAGE, env: { PORT: '8080', HOST: '0.0.0.0' }, ports: [{ name: 'http', container: 8080 }], health: { http: '/healthz' }, placement: { nodes: [cnode] } });
  try {
    const r = await running('id-c');
    const token = await text(`${r.endpoint}/env?name=OUTPOST_IDENTITY_TOKEN`);
    assert.equal(claimsOf(token).node, cnode);
    assert.equal(await text(`${r.endpoint}/env?name=OUTPOST_IDENTITY_TOKEN_FILE`), '/run/outpost/identity/token');
    assert.equal(await text(`${r.endpoint}/file?env=OUTPOST_IDENTITY_TOKEN_FILE`), token, 'read inside the container as its user (65534)');
    // the agent rotates by writing a new file and renaming it over the old one: the directory mount shows the new one
    const dir = fs.readdirSync(path.join(secretsBase(), cnode)).map((d) => path.join(secretsBase(), cnode, d, 'identity')).find((d) => fs.existsSync(d))!;
    assert.equal(fs.statSync(path.join(dir, 'token')).uid, 65534, 'the file is the workload user\'s');
    fs.writeFileSync(path.join(dir, 'token.new'), 'rotated', { mode: 0o444 });
    fs.renameSync(path.join(dir, 'token.new'), path.join(dir, 'token'));
    assert.equal(await text(`${r.endpoint}/file?env=OUTPOST_IDENTITY_TOKEN_FILE`), 'rotated');
  } finally {
    await cp.client.remove('id-c').catch(() => {});
  }
});
