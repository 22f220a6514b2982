// A node's data hub on TLS with the node's own certificate, with real parts:
// an `outpost agent` process enrolled with a control plane, curl and
// mosquitto_pub as devices verifying the hub against the hub CA, and raw TLS
// connections reading which certificate is served as it is renewed.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { freePort } from '../src/agent/health.js';
import { controlPlane, settleAgents, spawnAgent, tmpDir, waitFor, type AgentProc } from './helpers.js';
import { noMosquitto } from './hubkit.js';

const agents: AgentProc[] = [];
after(async () => {
  for (const a of agents) a.child.kill('SIGTERM');
  await settleAgents();
});

interface Served { authorized: boolean; error: string | null; cn: string; serial: string }

/** The certificate a TLS server presents, and whether it verifies against `ca` for the address. */
function served(port: number, ca: string): Promise<Served> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca, rejectUnauthorized: false }, () => {
      const c = s.getPeerCertificate();
      resolve({ authorized: s.authorized, error: s.authorizationError ? String(s.authorizationError) : null, cn: String(c.subject?.CN ?? ''), serial: c.serialNumber });
      s.end();
    });
    s.on('error', reject);
  });
}

async function hubAgent(cp: Awaited<ReturnType<typeof controlPlane>>, name: string) {
  const http = await freePort('127.0.0.1');
  const mqtts = await freePort('127.0.0.1');
  const dir = tmpDir();
  const config = path.join(dir, 'hub.yaml');
  fs.writeFileSync(config, 'streams:\n  s1: { windowCount: 1, ops: [count] }\n');
  const a = spawnAgent(cp, ['--name', name, '--data-dir', dir, '--runtime', 'process', '--hub-tls', 'on', '--hub-bind', '127.0.0.1', '--hub-config', config],
    { OUTPOST_HUB_HTTP_PORT: String(http), OUTPOST_HUB_MQTTS_PORT: String(mqtts) });
  agents.push(a);
  return { a, http, mqtts, dir };
}

test('the hub serves HTTPS and MQTT over TLS with the node\'s certificate from the hub CA; devices verify it with curl and mosquitto_pub; it is renewed in place', { skip: noMosquitto }, async () => {
  const cp = await controlPlane(tmpDir(), { trust: { certTtlMs: 12_000 } });
  try {
    const caFile = path.join(cp.dataDir, 'hub-ca.crt');
    const ca = fs.readFileSync(caFile, 'utf8');
    assert.notEqual(ca, cp.caPem, 'the hub CA is not the control plane\'s CA');
    const { a, http, mqtts } = await hubAgent(cp, 'edge-tls');
    // the device exists before the hub has its certificate: it reaches the hub once the node is approved
    const dev = await cp.client.createDevice({ name: 'meter-1', streams: ['s1'] });
    const first = await waitFor('the hub\'s node certificate', async () => {
      const s = await served(http, ca).catch(() => null);
      return s?.authorized ? s : null;
    }, 20_000).catch((e: Error) => { throw new Error(`${e.message}; the agent said:\n${a.output()}`); });
    assert.equal(first.cn, 'edge-tls', 'the certificate names the node');

    // curl as a device: the hub CA verifies it; the control plane's CA does not (nor may it: a node names its own addresses)
    const url = `https://127.0.0.1:${http}/v1/streams/s1/points`;
    const curl = (cafile: string) => spawnSync('curl', ['-s', '-w', '\n%{http_code}', '--cacert', cafile, '-X', 'POST', url, '-H', 'content-type: application/json', '-H', `authorization: Bearer ${dev.bearer}`, '-d', '[1, 2, 3]'], { encoding: 'utf8' });
    // the device reaches the hub with the node's next device list (pushed when it is created)
    const ok = await waitFor('the device accepted', () => {
      const r = curl(caFile);
      return r.status === 0 && /\n20[02]$/.test(r.stdout) ? r : null;
    });
    assert.match(ok.stdout, /"accepted":3/, ok.stdout);
    const cpCa = path.join(cp.dataDir, 'ca.crt');
    assert.equal(curl(cpCa).status, 60, 'the control plane\'s CA does not vouch for a hub (curl: peer certificate cannot be authenticated)');

    // mosquitto_pub as a device over TLS, verified by the hub CA
    const pub = (cafile: string) => spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(mqtts), '--cafile', cafile, '-u', dev.name, '-P', dev.secret, '-t', 'outpost/data/s1', '-q', '1', '-m', '4'], { encoding: 'utf8', timeout: 10_000 });
    const m = pub(caFile);
    assert.equal(m.status, 0, m.stderr);
    assert.notEqual(pub(cpCa).status, 0, 'mosquitto_pub refuses the hub under the control plane\'s CA');
    await waitFor('the four points counted', () => {
      const r = spawnSync('curl', ['-s', '--cacert', caFile, `https://127.0.0.1:${http}/v1/stats`, '-H', `authorization: Bearer ${dev.bearer}`], { encoding: 'utf8' });
      return (JSON.parse(r.stdout || '{}') as { streams?: Record<string, { pointsIn: number }> }).streams?.s1?.pointsIn === 4;
    });

    // renewal: the node renews at half-life (6 s here) and the hub serves the new certificate to new connections, same name
    const open = tls.connect({ host: '127.0.0.1', port: mqtts, ca });
    await new Promise((r) => open.once('secureConnect', r));
    const renewed = await waitFor('a renewed hub certificate', async () => {
      const s = await served(http, ca);
      return s.authorized && s.serial !== first.serial ? s : null;
    }, 15_000);
    assert.equal(renewed.cn, 'edge-tls');
    assert.equal((await served(mqtts, ca)).serial !== first.serial, true, 'the MQTT side serves it too');
    assert.equal(open.destroyed, false, 'a connection made before the renewal stays open');
    open.destroy();
    assert.match(a.output(), /the data hub serves its node certificate/);
  } finally {
    await cp.close();
  }
});

test('a pending node\'s hub serves a certificate nobody trusts until the node is approved', async () => {
  const cp = await controlPlane(tmpDir(), { trust: { approveNodes: true, certTtlMs: 20_000 } });
  try {
    const ca = fs.readFileSync(path.join(cp.dataDir, 'hub-ca.crt'), 'utf8');
    const { http } = await hubAgent(cp, 'edge-pending');
    await waitFor('the pending node', async () => (await cp.client.nodes()).find((n) => n.name === 'edge-pending' && n.state === 'pending'));
    const before = await waitFor('the hub listening', () => served(http, ca).catch(() => null));
    assert.equal(before.authorized, false, 'a pending node\'s hub is not vouched for');
    assert.equal(before.cn, 'edge-pending-awaiting-certificate');
    await cp.client.approveNode('edge-pending');
    const after = await waitFor('the hub\'s certificate after approval', async () => {
      const s = await served(http, ca);
      return s.authorized ? s : null;
    }, 25_000);
    assert.equal(after.cn, 'edge-pending');
  } finally {
    await cp.close();
  }
});

test('hub names a node asks for are checked: wildcards, garbage and more than 8 are refused with the field\'s path', async () => {
  const { hubSans } = await import('../src/server/services/identities.js');
  assert.deepEqual(hubSans(['10.0.0.5', 'Edge-1.example', '::1']), { dns: ['edge-1.example'], ip: ['10.0.0.5', '::1'] });
  for (const [bad, p] of [[['*.example.com'], 'hub.0'], [['ok', 'a b'], 'hub.1'], [[7], 'hub.0'], [[], 'hub'], [Array(9).fill('a'), 'hub'], ['x', 'hub']] as const) {
    assert.throws(() => hubSans(bad), (e: { code: string; path: string }) => e.code === 'E_INVALID' && e.path === p, JSON.stringify(bad));
  }
});

test('--hub-tls auto serves the node certificate only for a hub on the network under a TLS control plane; on needs https; a hub config\'s own certificate wins', async () => {
  const { hubCertNames } = await import('../src/cli/commands/hub.js');
  const base = { hub: true, hubHttpPort: 0, hubMqttPort: 0 };
  const https = 'https://cp:7070';
  assert.equal(hubCertNames({ ...base, hubTls: 'auto' }, '10.1.2.3', https), null, 'loopback: no network to protect');
  assert.deepEqual(hubCertNames({ ...base, hubTls: 'auto', hubBind: '0.0.0.0' }, '10.1.2.3', https), ['10.1.2.3'], 'every address: the advertised one');
  assert.deepEqual(hubCertNames({ ...base, hubTls: 'auto', hubBind: '10.9.9.9' }, '10.1.2.3', https), ['10.9.9.9'], 'one address: that one');
  assert.equal(hubCertNames({ ...base, hubTls: 'auto', hubBind: '0.0.0.0' }, '10.1.2.3', 'http://cp:7070'), null, 'no TLS control plane, no certificate');
  assert.equal(hubCertNames({ ...base, hubTls: 'off', hubBind: '0.0.0.0' }, '10.1.2.3', https), null);
  assert.throws(() => hubCertNames({ ...base, hubTls: 'on' }, '10.1.2.3', 'http://cp:7070'), /E_USAGE|needs a control plane on https/);
  const dir = tmpDir();
  const cfg = path.join(dir, 'hub.yaml');
  fs.writeFileSync(cfg, 'tls: { cert: a.pem, key: b.pem }\n');
  assert.equal(hubCertNames({ ...base, hubTls: 'on', hubConfig: cfg }, '10.1.2.3', https), null, 'the operator\'s certificate stays');
});
