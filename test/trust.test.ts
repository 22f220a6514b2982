// Attacks on the control plane and its agents, each refused with its code,
// counted, and nothing stored: TLS clients that do not trust the CA, plain HTTP
// to the TLS port, a proxy in the middle, stolen or spent join tokens, a second
// key for a taken name, one node's certificate acting for another, revoked and
// expired certificates, floods, and status for another node's replica.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import https from 'node:https';
import WebSocket from 'ws';
import { validateApp } from '../src/core/manifest.js';
import { createAuthority, issueServerCert } from '../src/trust/pki.js';
import { SessionCache } from '../src/trust/session.js';
import { cli, cliEnv, refusal, controlPlane, dialAgent, enrol, spawnAgent, tmpDir, waitFor, settleAgents, type TestControlPlane } from './helpers.js';

const run = promisify(execFile);
const cp = await controlPlane();
const started: { close(): Promise<void> | void }[] = [];
after(async () => {
  await settleAgents();
  for (const s of started) await s.close();
  await cp.close();
});

const nodeInfo = (name: string, extra: object = {}) => ({ name, hostname: name, arch: 'amd64', cpus: 4, memoryMiB: 8192, labels: {}, site: null, runtime: 'process', address: '127.0.0.1', images: [], layers: [], imageLayers: {}, agentVersion: 't', ...extra });

/** An enrolled, registered raw agent: every message it gets. */
async function rawAgent(s: TestControlPlane, name: string, info: object = {}) {
  const creds = await enrol(s, name, s.joinToken);
  assert.equal(creds.status, 200, JSON.stringify(creds.body));
  const ws = dialAgent(s, creds, name);
  const got: { type: string; [k: string]: unknown }[] = [];
  ws.on('message', (raw) => got.push(JSON.parse(raw.toString())));
  const closed = new Promise<[number, string]>((r) => ws.on('close', (code, reason) => r([code, reason.toString()])));
  await new Promise((r, j) => { ws.on('open', r); ws.on('error', j); });
  ws.send(JSON.stringify({ type: 'register', node: nodeInfo(name, info) }));
  await waitFor('welcome', () => got.some((m) => m.type === 'assign'), 5000);
  return { ws, got, creds, closed };
}

const upgradeRefusal = async (ws: WebSocket) => {
  const r = await refusal(ws);
  return { status: r.status, code: r.body.error.code };
};

test('curl sees a certificate it cannot verify without the CA, and the API with it; plain HTTP to the TLS port gets nothing', async () => {
  const url = `${cp.url}/healthz`;
  const noCa = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', url]).then(() => 0, (e: { code: number }) => e.code);
  assert.equal(noCa, 60, 'curl: the peer certificate cannot be authenticated with known CA certificates');
  const withCa = await run('curl', ['-sS', '--cacert', path.join(cp.dataDir, 'ca.crt'), url]);
  assert.deepEqual(JSON.parse(withCa.stdout), { ok: true });
  const plain = await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', cp.url.replace('https:', 'http:') + '/v1/nodes', '-H', `authorization: Bearer ${cp.adminToken}`])
    .then((r) => r.stdout, (e: { stdout: string }) => e.stdout);
  assert.notEqual(plain, '200', 'no API answer over plain HTTP');
  // what openssl sees: our CA verifies the chain, the system's does not
  const s = await run('bash', ['-c', `openssl s_client -connect 127.0.0.1:${new URL(cp.url).port} -CAfile ${path.join(cp.dataDir, 'ca.crt')} -verify_return_error </dev/null 2>&1 | grep -E 'Verify return code'`]);
  assert.match(s.stdout, /Verify return code: 0 \(ok\)/);
});

test('a proxy in the middle with its own certificate gets no enrolment and nothing runs', async () => {
  // a proxy that terminates TLS with a certificate of its own CA and forwards to the real control plane
  const evil = await createAuthority('evil');
  const leaf = await issueServerCert(evil, { dns: ['localhost'], ip: ['127.0.0.1'] }, Date.now(), 3_600_000);
  const upstream = new URL(cp.url);
  const proxy = tls.createServer({ key: leaf.keyPem, cert: leaf.certPem + evil.certPem }, (client) => {
    const up = tls.connect({ host: '127.0.0.1', port: Number(upstream.port), rejectUnauthorized: false });
    client.pipe(up).pipe(client);
    client.on('error', () => up.destroy());
    up.on('error', () => client.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  started.push({ close: () => { proxy.close(); } });
  const port = (proxy.address() as { port: number }).port;
  const dir = tmpDir();
  const a = spawnAgent({ url: `https://127.0.0.1:${port}`, joinToken: cp.joinToken }, ['--name', 'mitm', '--runtime', 'process', '--data-dir', dir]);
  started.push({ close: () => { a.child.kill('SIGKILL'); } });
  // the CA it fetched through the proxy is the real one (the join token's), so the proxy's own
  // certificate fails verification: no token is sent to it; the agent keeps trying, saying why
  await waitFor('the refusal', () => /"code":"E_TLS".*self-signed certificate in certificate chain/.test(a.output()), 15_000);
  assert.equal(cp.cp.state.node('mitm'), undefined, 'nothing registered');
  assert.equal(cp.cp.identities.get('mitm'), undefined, 'not enrolled');
  assert.equal(fs.existsSync(path.join(dir, 'agent', 'identity', 'node.crt')), false, 'no certificate');
});

test('a proxy that serves the real CA with its own added is refused at first contact (E_CA_MISMATCH)', async () => {
  const evil = await createAuthority('evil');
  const leaf = await issueServerCert(evil, { dns: ['localhost'], ip: ['127.0.0.1'] }, Date.now(), 3_600_000);
  const bundle = fs.readFileSync(path.join(cp.dataDir, 'ca.crt'), 'utf8') + evil.certPem;
  const proxy = https.createServer({ key: leaf.keyPem, cert: leaf.certPem + evil.certPem }, (req, res) => {
    if (req.url === '/v1/ca') return res.end(bundle);
    res.statusCode = 502;
    res.end();
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  started.push({ close: () => { proxy.close(); } });
  const dir = tmpDir();
  const a = spawnAgent({ url: `https://127.0.0.1:${(proxy.address() as { port: number }).port}`, joinToken: cp.joinToken }, ['--name', 'mitm2', '--runtime', 'process', '--data-dir', dir]);
  assert.equal(await a.exited, 1);
  assert.match(a.output(), /error E_CA_MISMATCH: the control plane at .* presents CA [0-9a-f]{16}\.\.\., not the [0-9a-f]{16}\.\.\. the join token names/);
  assert.equal(fs.existsSync(path.join(dir, 'agent', 'identity', 'ca.crt')), false, 'nothing trusted');
});

test('a join token is refused after its uses, after its TTL, once revoked, and from another control plane', async () => {
  const one = (await cp.client.createToken({ ttl: '1h', uses: 1 })).token;
  assert.equal((await enrol(cp, 'tok-a', one)).status, 200);
  const spent = await enrol(cp, 'tok-b', one);
  assert.equal(spent.status, 401);
  assert.match(JSON.stringify(spent.body), /E_TOKEN_INVALID.*no uses left/);
  const short = (await cp.client.createToken({ ttl: '1s', uses: 5 })).token;
  await new Promise((r) => setTimeout(r, 1100));
  assert.match(JSON.stringify((await enrol(cp, 'tok-c', short)).body), /E_TOKEN_INVALID.*expired/);
  const t = await cp.client.createToken({ ttl: '1h', uses: 5 });
  await cp.client.revokeToken(t.id);
  assert.match(JSON.stringify((await enrol(cp, 'tok-d', t.token)).body), /E_TOKEN_INVALID.*revoked/);
  const other = await controlPlane();
  started.push(other);
  assert.match(JSON.stringify((await enrol(cp, 'tok-e', other.joinToken)).body), /E_TOKEN_INVALID.*another CA/);
  for (const n of ['tok-b', 'tok-c', 'tok-d', 'tok-e']) assert.equal(cp.cp.identities.get(n), undefined, `${n} got no identity`);
  assert.ok((cp.gateway.stats.refusals.E_TOKEN_INVALID ?? 0) >= 4, 'counted');
  const listed = await cp.client.tokens();
  assert.ok(listed.every((x) => !('secretHash' in x) && !('token' in x)), 'a list never shows secrets or their hashes');
});

test('a second key for a name already held is E_NODE_NAME_TAKEN; one node\'s certificate cannot act as another', async () => {
  const a = await rawAgent(cp, 'edge-a');
  const thief = await enrol(cp, 'edge-a', cp.joinToken);
  assert.equal(thief.status, 409);
  assert.match(JSON.stringify(thief.body), /E_NODE_NAME_TAKEN/);
  // the thief enrols as itself, then claims edge-a in its register: the connection is closed, edge-a untouched
  const b = await enrol(cp, 'edge-b', cp.joinToken);
  const ws = dialAgent(cp, b, 'edge-a');
  const closed = new Promise<[number, string]>((r) => ws.on('close', (code, reason) => r([code, reason.toString()])));
  await new Promise((r) => ws.on('open', r));
  ws.send(JSON.stringify({ type: 'register', node: nodeInfo('edge-a', { cpus: 1024 }) }));
  assert.deepEqual(await closed, [4403, 'E_FORBIDDEN']);
  assert.equal(cp.cp.state.node('edge-a')!.cpus, 4, 'edge-a\'s record is its own');
  assert.equal(a.ws.readyState, a.ws.OPEN, 'the real edge-a keeps its connection');
  // a certificate from another CA for the same name is refused at the upgrade
  const evil = await createAuthority('evil');
  const leaf = await issueServerCert(evil, { dns: ['edge-a'], ip: [] }, Date.now(), 3_600_000);
  const r = await upgradeRefusal(dialAgent(cp, { key: leaf.keyPem, cert: leaf.certPem }, 'edge-a'));
  assert.deepEqual(r, { status: 401, code: 'E_UNAUTHORIZED' });
  a.ws.close();
});

test('status for a replica of another node closes the connection and changes nothing', async () => {
  const a = await rawAgent(cp, 'own-a');
  const b = await rawAgent(cp, 'own-b');
  await cp.cp.apps.deploy(validateApp({ name: 'only-a', command: ['sleep', '100'], placement: { nodes: ['own-a'] } }));
  await waitFor('the assignment', () => a.got.some((m) => m.type === 'assign' && (m.replicas as unknown[]).length === 1), 5000);
  const id = cp.cp.state.appReplicas('only-a')[0]!.id;
  b.ws.send(JSON.stringify({ type: 'status', replicas: [{ id, state: 'running', ready: true, endpoint: 'http://attacker.example:80' }] }));
  assert.deepEqual(await b.closed, [4403, 'E_FORBIDDEN']);
  const rec = cp.cp.state.replica(id)!;
  assert.notEqual(rec.endpoint, 'http://attacker.example:80');
  assert.notEqual(rec.state, 'running');
  // and nothing of own-a's app reached own-b
  assert.ok(!JSON.stringify(b.got.filter((m) => m.type === 'assign')).includes('only-a'));
  await cp.client.remove('only-a');
  a.ws.close();
});

test('a flood of 20,000 messages closes that connection (E_RATE_LIMITED); another agent and the API carry on', async () => {
  const loud = await rawAgent(cp, 'loud');
  const quiet = await rawAgent(cp, 'quiet');
  const msg = JSON.stringify({ type: 'rtt', rttMs: {} });
  for (let i = 0; i < 20_000 && loud.ws.readyState === loud.ws.OPEN; i++) loud.ws.send(msg);
  assert.deepEqual(await loud.closed, [4429, 'E_RATE_LIMITED']);
  assert.equal(quiet.ws.readyState, quiet.ws.OPEN);
  assert.deepEqual(await cp.client.healthz(), { ok: true });
  await cp.client.deploy({ name: 'after-flood', command: ['sleep', '100'], placement: { nodes: ['quiet'] } });
  await waitFor('quiet gets its assignment', () => quiet.got.filter((m) => m.type === 'assign').length === 2, 5000);
  assert.ok((cp.gateway.stats.refusals.E_RATE_LIMITED ?? 0) >= 1);
  await cp.client.remove('after-flood');
  quiet.ws.close();
});

test('a frame over the size limit closes the connection and is counted', async () => {
  const big = await rawAgent(cp, 'big');
  const before = cp.gateway.stats.refusals.E_TOO_LARGE ?? 0;
  big.ws.send(JSON.stringify({ type: 'hub', stats: { hubId: 'x'.repeat(5 * 1024 * 1024) } }));
  const [code] = await big.closed;
  assert.equal(code, 1009);
  await waitFor('counted', () => (cp.gateway.stats.refusals.E_TOO_LARGE ?? 0) === before + 1, 2000);
  assert.equal(cp.cp.state.node('big')!.hubStats, null);
});

test('revoking a node closes its connection, refuses its certificate and its re-enrolment, and moves its replicas', async () => {
  const v = await rawAgent(cp, 'rev-a');
  const w = await rawAgent(cp, 'rev-b');
  await cp.client.deploy({ name: 'moves', command: ['sleep', '100'], placement: { nodes: ['rev-a', 'rev-b'] } });
  await waitFor('placed', () => cp.cp.state.appReplicas('moves').length === 1);
  const victim = cp.cp.state.appReplicas('moves')[0]!.node;
  const conn = victim === 'rev-a' ? v : w;
  const r = await cli(['node', 'revoke', victim], cliEnv(cp));
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(await conn.closed, [4403, 'E_NODE_REVOKED']);
  assert.deepEqual(await upgradeRefusal(dialAgent(cp, conn.creds, victim)), { status: 403, code: 'E_NODE_REVOKED' });
  assert.match(JSON.stringify((await enrol(cp, victim, cp.joinToken, conn.creds.kp)).body), /E_NODE_REVOKED/);
  await waitFor('the replica moved', () => cp.cp.state.appReplicas('moves').every((x) => x.node !== victim) && cp.cp.state.appReplicas('moves').length === 1, 10_000);
  assert.equal(cp.cp.state.node(victim)!.state, 'revoked');
  await cp.client.remove('moves');
  const rm = await cli(['node', 'rm', victim], cliEnv(cp));
  assert.equal(rm.code, 0, rm.stderr);
  assert.equal(cp.cp.state.node(victim), undefined);
  assert.equal((await enrol(cp, victim, cp.joinToken)).status, 200, 'once removed, the name may enrol again');
  v.ws.close();
  w.ws.close();
});

test('an expired certificate is refused with E_CERT_EXPIRED, shown by outpost nodes; the node enrols again with its key', async () => {
  const s = await controlPlane(tmpDir(), { trust: { certTtlMs: 1500 } });
  started.push(s);
  const creds = await enrol(s, 'late', s.joinToken);
  await new Promise((r) => setTimeout(r, 1700));
  assert.deepEqual(await upgradeRefusal(dialAgent(s, creds, 'late')), { status: 401, code: 'E_CERT_EXPIRED' });
  const nodes = await s.client.nodes();
  assert.equal(nodes.length, 0, 'it never registered');
  assert.equal(s.cp.identities.get('late')!.lastRefusal?.code, 'E_CERT_EXPIRED', 'the control plane says why');
  // proof of the previous key, no token: a new certificate
  const again = await enrol(s, 'late', '', creds.kp);
  assert.equal(again.status, 200);
  const ws = dialAgent(s, { key: creds.key, cert: again.cert }, 'late');
  await new Promise((r, j) => { ws.on('open', r); ws.on('error', j); });
  ws.close();
  // a stranger's key without a token gets nothing
  assert.match(JSON.stringify((await enrol(s, 'late2', '')).body), /E_TOKEN_INVALID/);
});

test('with --approve-nodes a new node waits, takes no replica however big it claims to be, until approved', async () => {
  const s = await controlPlane(tmpDir(), { trust: { approveNodes: true } });
  started.push(s);
  const big = await rawAgent(s, 'huge', { cpus: 1024 });
  assert.equal(s.cp.state.node('huge')!.state, 'pending');
  // what a pending node reports beyond its images and RTTs is not taken, and it hears of no device
  big.ws.send(JSON.stringify({ type: 'hub', stats: { hubId: 'h', pointsIn: 1, bytesIn: 1, rejected: {}, windows: 0, bytesForwarded: 0, reduction: null, queueDepth: 0, oldestUnsentMs: null, rawBytes: 0, streams: {} } }));
  assert.deepEqual(big.got.find((m) => m.type === 'devices')?.devices, []);
  // a connected node cannot be removed (it would keep its socket): revoke first
  const rm = await cli(['node', 'rm', 'huge'], cliEnv(s));
  assert.match(rm.stderr, /^error E_CONFLICT: node huge is connected/);
  await assert.rejects(s.client.deploy({ name: 'wants', command: ['sleep', '100'] }), (e: Error & { code?: string }) => e.code === 'E_UNSCHEDULABLE' && /pending/.test(e.message));
  const r = await cli(['node', 'approve', 'huge'], cliEnv(s));
  assert.equal(r.code, 0, r.stderr);
  await s.client.deploy({ name: 'wants', command: ['sleep', '100'] });
  await waitFor('assigned once approved', () => big.got.some((m) => m.type === 'assign' && (m.replicas as unknown[]).length === 1), 5000);
  assert.equal(s.cp.state.node('huge')!.hubStats, null, 'the stats sent while pending were not stored');
  big.ws.close();
});

test('a join token\'s site and labels win over what the node claims', async () => {
  const t = (await cp.client.createToken({ ttl: '1h', uses: 1, site: 'factory-1', labels: { tier: 'edge' } })).token;
  const creds = await enrol(cp, 'placed', t);
  const ws = dialAgent(cp, creds, 'placed');
  await new Promise((r) => ws.on('open', r));
  ws.send(JSON.stringify({ type: 'register', node: nodeInfo('placed', { site: 'hq', labels: { tier: 'cloud', gpu: 'yes' } }) }));
  await waitFor('registered', () => cp.cp.state.node('placed'));
  const n = cp.cp.state.node('placed')!;
  assert.equal(n.site, 'factory-1');
  assert.deepEqual(n.labels, { tier: 'edge', gpu: 'yes' });
  ws.close();
});

test('a real agent renews its certificate at half-life over its live connection, and reads its join token from a file', async () => {
  const s = await controlPlane(tmpDir(), { trust: { certTtlMs: 8000 } });
  started.push(s);
  const dir = tmpDir();
  const tokenFile = path.join(dir, 'token');
  fs.writeFileSync(tokenFile, s.joinToken, { mode: 0o600 });
  const a = spawnAgent({ url: s.url, joinToken: '' }, ['--name', 'renewer', '--runtime', 'process', '--data-dir', dir, '--join-token-file', tokenFile]);
  started.push({ close: () => { a.child.kill('SIGKILL'); } });
  await waitFor('registered', () => s.cp.state.node('renewer')?.state === 'ready', 20_000);
  const first = s.cp.identities.get('renewer')!;
  await waitFor('renewed', () => (s.cp.identities.get('renewer')!.renewedAt > first.renewedAt ? true : null), 15_000);
  assert.ok(s.cp.identities.get('renewer')!.certNotAfter > first.certNotAfter);
  assert.equal(s.cp.state.node('renewer')!.state, 'ready', 'the connection never dropped');
  // the control plane records the renewal before its answer reaches the agent: wait for the agent's word
  await waitFor('the agent saved the renewed certificate', () => /certificate renewed/.test(a.output()), 10_000);
  assert.doesNotMatch(a.output(), /disconnected from the control plane/);
  // the token is not in its command line
  assert.ok(!fs.readFileSync(`/proc/${a.child.pid}/cmdline`, 'utf8').includes(s.joinToken.slice(-20)));
  const modes = ['identity', 'identity/node.key'].map((f) => fs.statSync(path.join(dir, 'agent', f)).mode & 0o077);
  assert.deepEqual(modes, [0, 0], 'the node\'s key is its owner\'s only');
});

test('a device created at the control plane reaches the hubs of its site only; its credentials work there, and removing it shuts it out', async () => {
  const dir = tmpDir();
  const t = (await cp.client.createToken({ ttl: '1h', uses: 1, site: 'plant-1' })).token;
  const a = spawnAgent({ url: cp.url, joinToken: t }, ['--name', 'hub-node', '--runtime', 'process', '--data-dir', dir]);
  started.push({ close: () => { a.child.kill('SIGKILL'); } });
  const node = await waitFor('the node and its hub', () => cp.cp.state.node('hub-node')?.hub ?? null, 20_000);
  const mqttPort = new URL(node.mqtt).port;
  const created = await cli(['device', 'create', 'sensor-1', '--streams', 'temp', '--site', 'plant-1', '--json'], cliEnv(cp));
  assert.equal(created.code, 0, created.stderr);
  const dev = JSON.parse(created.stdout) as { secret: string; bearer: string };
  const pub = (user: string, pass: string) => run('mosquitto_pub', ['-h', '127.0.0.1', '-p', mqttPort, '-q', '1', '-u', user, '-P', pass, '-t', 'outpost/data/temp', '-m', '21.5']).then(() => 0, (e: { code: number }) => e.code);
  await waitFor('the hub accepts sensor-1', async () => (await pub('sensor-1', dev.secret)) === 0, 10_000);
  const other = await cp.client.createDevice({ name: 'other-site', streams: ['temp'], site: 'plant-2' });
  assert.notEqual(await pub('other-site', other.secret), 0, 'a device of another site is not known at this hub');
  assert.notEqual(await pub('sensor-1', 'wrong'), 0);
  const listed = await cp.client.devices();
  assert.ok(listed.every((d) => !('secretHash' in d) && !('secret' in d)));
  await cp.client.removeDevice('sensor-1');
  await waitFor('the hub refuses it once removed', async () => (await pub('sensor-1', dev.secret)) !== 0, 10_000);
});

test('--insecure: plain HTTP with a warning; a node still enrols with a token and is known by its secret, never its name', async () => {
  const s = await controlPlane(tmpDir(), { tls: false });
  started.push(s);
  assert.match(s.url, /^http:\/\//);
  const dir = tmpDir();
  const a = spawnAgent({ url: s.url, joinToken: s.joinToken }, ['--name', 'plain-1', '--runtime', 'process', '--data-dir', dir]);
  started.push({ close: () => { a.child.kill('SIGKILL'); } });
  await waitFor('registered', () => s.cp.state.node('plain-1')?.state === 'ready', 20_000);
  assert.equal(fs.statSync(path.join(dir, 'agent', 'identity', 'node.secret')).mode & 0o077, 0);
  // the name alone, or a wrong secret, is refused
  const ws = new WebSocket(s.url.replace('http', 'ws') + '/v1/agent/connect', ['outpost.v1'], { headers: { 'x-outpost-node': 'plain-1', authorization: 'Bearer guess' } });
  assert.deepEqual(await upgradeRefusal(ws), { status: 401, code: 'E_UNAUTHORIZED' });
});

test('a reconnecting agent resumes its TLS session (no certificate exchange) and is still known by its certificate', async () => {
  const creds = await enrol(cp, 'resumer', cp.joinToken);
  const sessions = new SessionCache();
  const connect = async () => {
    const ws = new WebSocket(cp.url.replace(/^http/, 'ws') + '/v1/agent/connect', ['outpost.v1'], {
      ca: cp.caPem!, key: creds.key, cert: creds.cert, headers: { 'x-outpost-node': 'resumer' }, createConnection: sessions.connector(creds.cert),
    });
    let reused = false;
    ws.on('upgrade', (res) => { reused = (res.socket as tls.TLSSocket).isSessionReused(); });
    const got: { type: string }[] = [];
    ws.on('message', (raw) => got.push(JSON.parse(raw.toString())));
    await new Promise((r, j) => { ws.on('open', r); ws.on('error', j); });
    ws.send(JSON.stringify({ type: 'register', node: nodeInfo('resumer') }));
    await waitFor('welcome', () => got.some((m) => m.type === 'welcome'), 5000);
    await new Promise((r) => setTimeout(r, 100)); // the session ticket arrives after the handshake
    ws.close();
    await new Promise((r) => ws.on('close', r));
    return reused;
  };
  assert.equal(await connect(), false, 'the first connection is a full handshake');
  assert.equal(await connect(), true, 'the second resumes');
  // a revoked node does not get in by resuming
  await cp.client.revokeNode('resumer');
  const ws = new WebSocket(cp.url.replace(/^http/, 'ws') + '/v1/agent/connect', ['outpost.v1'], {
    ca: cp.caPem!, key: creds.key, cert: creds.cert, headers: { 'x-outpost-node': 'resumer' }, createConnection: sessions.connector(creds.cert),
  });
  assert.deepEqual(await upgradeRefusal(ws), { status: 403, code: 'E_NODE_REVOKED' });
});

test('a real agent whose node is revoked stops, saying E_NODE_REVOKED (the refusal\'s code is read from the answer)', async () => {
  const dir = tmpDir();
  const a = spawnAgent(cp, ['--name', 'to-revoke', '--runtime', 'process', '--data-dir', dir]);
  started.push({ close: () => { a.child.kill('SIGKILL'); } });
  await waitFor('registered', () => cp.cp.state.node('to-revoke')?.state === 'ready', 20_000);
  await cp.client.revokeNode('to-revoke');
  assert.equal(await a.exited, 1);
  assert.match(a.output(), /error E_NODE_REVOKED: node to-revoke was revoked/);
});
