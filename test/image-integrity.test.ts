// Containers hardened by default, and images that are what their digest says,
// with a real container engine (Podman through its Docker Engine API), real
// registries (docker-registry: the CI's plain one, and TLS ones with htpasswd
// or token authentication started here) and a registry in the middle that
// sends other bytes than the digest names.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { ReplicaRecord } from '../src/core/types.js';
import { LABELS } from '../src/agent/drivers/driver.js';
import { CAP_DROP } from '../src/agent/drivers/docker.js';
import { engineOrSkip, EXAMPLE_IMAGE } from './engine.js';
import { cli, cliEnv, controlPlane, postJson, spawnAgent, tmpDir, waitFor, writeManifest, type AgentProc } from './helpers.js';
import { bcryptLine, buildAndPush, selfSigned, startRegistry, startTamperingRegistry, startTokenServer, trust, type Registry } from './registries.js';

const { docker, skip } = await engineOrSkip();
const registry = process.env.OUTPOST_TEST_REGISTRY;
const noRegistry = registry ? false : 'OUTPOST_TEST_REGISTRY is not set';
const htpasswd = bcryptLine('alice', 'wonderland');
const noBcrypt = htpasswd ? false : 'no bcrypt for an htpasswd file (htpasswd -B or python3 crypt)';

/** Capability numbers (linux/capability.h) */
const CAP_BITS: Record<string, number> = { CHOWN: 0, DAC_OVERRIDE: 1, FOWNER: 3, FSETID: 4, KILL: 5, SETGID: 6, SETUID: 7, SETPCAP: 8, NET_BIND_SERVICE: 10, NET_RAW: 13, SYS_CHROOT: 18, MKNOD: 27, AUDIT_WRITE: 29, SETFCAP: 31 };
const hasCap = (mask: string, cap: string) => ((BigInt(`0x${mask}`) >> BigInt(CAP_BITS[cap]!)) & 1n) === 1n;
const statusField = (status: string, f: string) => new RegExp(`^${f}:\\s*(\\S+)`, 'm').exec(status)?.[1] ?? '';

/** A control plane, an agent on the container runtime, and the CLI's environment. */
function cluster(agentArgs: string[][]): { env: () => NodeJS.ProcessEnv; cp: () => Awaited<ReturnType<typeof controlPlane>>; agents: AgentProc[]; work: string; names: string[] } {
  const c = { cp: null as unknown as Awaited<ReturnType<typeof controlPlane>>, agents: [] as AgentProc[], work: tmpDir(), names: agentArgs.map((_, i) => `edge-img${i}-${process.pid}`) };
  before(async () => {
    c.cp = await controlPlane();
    for (const [i, extra] of agentArgs.entries()) {
      const a = spawnAgent(c.cp, ['--name', c.names[i]!, '--runtime', 'docker', '--data-dir', tmpDir(), ...extra]);
      c.agents.push(a);
      await waitFor('agent registered', () => a.output().includes('registered with the control plane'));
    }
  });
  after(async () => {
    const mine = async () => (await docker!.listContainers({ all: true })).filter((x) => c.names.includes(x.Labels[LABELS.node] ?? ''));
    for (const app of await c.cp.client.apps()) await c.cp.client.remove(app.name).catch(() => {});
    await waitFor('containers removed', async () => (await mine()).length === 0, 15_000).catch(() => {});
    for (const a of c.agents) a.child.kill('SIGKILL');
    for (const x of await mine()) await docker!.getContainer(x.Id).remove({ force: true }).catch(() => {});
    await c.cp.close();
  });
  return { env: () => cliEnv(c.cp), cp: () => c.cp, agents: c.agents, work: c.work, names: c.names };
}

async function replica(env: NodeJS.ProcessEnv, app: string): Promise<ReplicaRecord> {
  return (JSON.parse((await cli(['replicas', app, '--json'], env)).stdout) as ReplicaRecord[])[0]!;
}

async function containersOf(app: string) {
  return docker!.listContainers({ all: true, filters: { label: [`${LABELS.app}=${app}`] } });
}

/** Output of a command run in the container (an exec, as `user`). */
async function execOut(id: string, cmd: string[], user = ''): Promise<string> {
  const e = await docker!.getContainer(id).exec({ Cmd: cmd, AttachStdout: true, AttachStderr: true, User: user });
  const stream = await e.start({ hijack: true, stdin: false });
  let out = '';
  const sink = new (await import('node:stream')).PassThrough();
  sink.on('data', (d: Buffer) => { out += d.toString('utf8'); });
  docker!.modem.demuxStream(stream, sink, sink);
  await new Promise((r) => stream.on('end', r));
  return out;
}

const READ_STATUS = ['/usr/bin/node', '-e', 'process.stdout.write(require("fs").readFileSync("/proc/self/status","utf8"))'];

function removeImages(ids: string[]): void {
  for (const id of ids) {
    try { execFileSync('podman', ['rmi', '-f', id], { stdio: 'ignore' }); } catch { /* in use by a container being removed, or gone */ }
  }
}

describe('containers are hardened by default', { skip }, () => {
  const c = cluster([[]]);
  let id = '';

  test('the example app deploys and passes health with no-new-privileges, its pids limit and fewer capabilities (engine inspect)', async () => {
    const file = writeManifest(c.work, 'hard', {
      name: 'hard', image: EXAMPLE_IMAGE, ports: [{ name: 'http', container: 5000 }], health: { http: '/healthz', port: 'http' }, resources: { pids: 200 },
    });
    const r = await cli(['deploy', '-f', file, '--wait'], c.env());
    assert.equal(r.code, 0, r.stderr);
    const rep = await replica(c.env(), 'hard');
    assert.equal(rep.state, 'running');
    assert.deepEqual((await postJson(`${rep.endpoint}/process_data`, '[1,2,3]')).json, { processed_data: 2 });
    const cs = await containersOf('hard');
    assert.equal(cs.length, 1);
    id = cs[0]!.Id;
    const h = (await docker!.getContainer(id).inspect()).HostConfig as { SecurityOpt?: string[]; PidsLimit?: number; CapDrop?: string[]; Ulimits?: { Name?: string; Soft?: number }[] };
    assert.ok((h.SecurityOpt ?? []).some((o) => /^no-new-privileges(:true|=true)?$/.test(o)), `SecurityOpt ${JSON.stringify(h.SecurityOpt)}`);
    assert.equal(h.PidsLimit, 200);
    for (const cap of CAP_DROP) assert.ok((h.CapDrop ?? []).map((x) => x.replace(/^CAP_/, '')).includes(cap), `CapDrop lacks ${cap}: ${JSON.stringify(h.CapDrop)}`);
    const ul = Object.fromEntries((h.Ulimits ?? []).map((u) => [(u.Name ?? '').replace(/^RLIMIT_/i, '').toLowerCase(), u.Soft]));
    assert.deepEqual([ul.nofile, ul.nproc], [1024, 4096], 'the ulimits stay');
  });

  test('the kernel agrees: NoNewPrivs 1, the dropped capabilities gone even for root in the container, pids.max 200', async () => {
    const pid = (await docker!.getContainer(id).inspect()).State.Pid;
    // the app's own process, as the host's kernel sees it
    const app = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    assert.equal(statusField(app, 'NoNewPrivs'), '1');
    for (const cap of CAP_DROP) assert.ok(!hasCap(statusField(app, 'CapBnd'), cap), `${cap} in the bounding set`);
    // root inside the container: it keeps what images need, and has none of the dropped ones
    const root = await execOut(id, READ_STATUS, '0');
    assert.equal(statusField(root, 'NoNewPrivs'), '1', root);
    const eff = statusField(root, 'CapEff');
    for (const cap of ['CHOWN', 'SETUID', 'SETGID', 'NET_BIND_SERVICE', 'DAC_OVERRIDE', 'FOWNER', 'KILL']) assert.ok(hasCap(eff, cap), `root lacks ${cap} (CapEff ${eff})`);
    for (const cap of CAP_DROP) assert.ok(!hasCap(eff, cap), `root has ${cap} (CapEff ${eff})`);
    // the pids cgroup the engine put it in (v1 `N:pids:/path`, or v2 `0::/path`)
    const cg = fs.readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    const v1 = /^\d+:pids:(.+)$/m.exec(cg)?.[1];
    const file = v1 ? path.join('/sys/fs/cgroup/pids', v1, 'pids.max') : path.join('/sys/fs/cgroup', /^0::(.+)$/m.exec(cg)![1]!, 'pids.max');
    assert.equal(fs.readFileSync(file, 'utf8').trim(), '200');
  });
});

describe('images pinned by digest', { skip: skip || noRegistry }, () => {
  const c = cluster([[]]);
  const repo = `${registry}/outpost-pin-${process.pid}`;
  const tls = skip || noRegistry ? null : selfSigned();
  let digestA = '';
  let digestB = '';
  let tamper: Awaited<ReturnType<typeof startTamperingRegistry>> | null = null;
  let untrust = () => {};
  const images: string[] = [];
  const app = (name: string, image: string) => writeManifest(c.work, name, {
    name, image, ports: [{ name: 'http', container: 5000 }], health: { http: '/healthz', port: 'http' }, restart: { policy: 'never' },
  });

  before(async () => {
    // two different images pushed under one tag: the tag now names B, A is reachable only by its digest
    digestA = await buildAndPush(`${repo}:1`, EXAMPLE_IMAGE, `a-${process.pid}`);
    images.push(`sha256:${execFileSync('podman', ['image', 'inspect', '--format', '{{.Id}}', `${repo}:1`]).toString().trim()}`);
    digestB = await buildAndPush(`${repo}:1`, EXAMPLE_IMAGE, `b-${process.pid}`);
    images.push(`sha256:${execFileSync('podman', ['image', 'inspect', '--format', '{{.Id}}', `${repo}:1`]).toString().trim()}`);
    assert.notEqual(digestA, digestB);
    // in the middle: asked for A's manifest it sends B's; asked for the tag `lie` it sends the tag's manifest but claims A's digest
    tamper = await startTamperingRegistry(tls!, registry!, { [digestA]: { serve: digestB }, lie: { serve: '1', claim: digestA } });
    untrust = trust(tamper.hostPort, tls!);
  });
  after(async () => {
    untrust();
    await tamper?.close();
    removeImages(images);
    // the shared registry keeps nothing of this run (its config allows deletes)
    for (const d of [digestA, digestB].filter(Boolean)) await fetch(`http://${registry}/v2/outpost-pin-${process.pid}/manifests/${d}`, { method: 'DELETE' }).catch(() => {});
  });

  test('pinned to the right digest: it runs that image, although the local tag names another', async () => {
    const r = await cli(['deploy', '-f', app('pinned', `${repo}:1@${digestA}`), '--wait'], c.env());
    assert.equal(r.code, 0, r.stderr);
    const rep = await replica(c.env(), 'pinned');
    assert.equal(rep.state, 'running');
    assert.deepEqual((await postJson(`${rep.endpoint}/process_data`, '[2,4]')).json, { processed_data: 3 });
    const [ct] = await containersOf('pinned');
    const info = await docker!.getContainer(ct!.Id).inspect();
    assert.equal(info.Image, images[0], 'created from image A (what the digest names), not B (what the tag names)');
    assert.equal(info.Config.Labels['io.outpost.test'], `a-${process.pid}`);
  });

  test('a registry that sends other bytes for the pinned digest: E_DIGEST_MISMATCH, and no container is created', async () => {
    // A is on this node under the real registry's name: Podman would run it for any name with that digest; the agent pulls instead
    const r = await cli(['deploy', '-f', app('tampered', `${tamper!.hostPort}/outpost-pin-${process.pid}@${digestA}`), '--wait', '--timeout', '60'], c.env());
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /E_DIGEST_MISMATCH/);
    const rep = await replica(c.env(), 'tampered');
    assert.equal(rep.state, 'failed');
    assert.equal(rep.error?.code, 'E_DIGEST_MISMATCH', JSON.stringify(rep.error));
    assert.deepEqual(await containersOf('tampered'), [], 'nothing was created');
  });

  test('a digest pinned under a repository that never held it is not run from another repository\'s image', async () => {
    const r = await cli(['deploy', '-f', app('elsewhere', `${registry}/outpost-pin-other-${process.pid}@${digestA}`), '--wait', '--timeout', '60'], c.env());
    assert.notEqual(r.code, 0);
    const rep = await replica(c.env(), 'elsewhere');
    assert.equal(rep.state, 'failed');
    assert.equal(rep.error?.code, 'E_IMAGE_NOT_FOUND', JSON.stringify(rep.error));
    assert.deepEqual(await containersOf('elsewhere'), []);
  });

  test('deploy --pin resolves the tag to the digest the registry holds now, prints it, and every replica runs it', async () => {
    const file = path.join(c.work, 'topin.yaml');
    fs.writeFileSync(file, `# the tag moves; the pin does not\nname: topin\nimage: ${repo}:1\nports:\n  - { name: http, container: 5000 }\nhealth: { http: /healthz, port: http }\n`);
    const r = await cli(['deploy', '--pin', '-f', file, '--wait'], c.env());
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`pinned ${repo}:1 to ${repo}:1@${digestB}`));
    const detail = await c.cp().client.app('topin');
    assert.equal(detail.spec.image, `${repo}:1@${digestB}`, 'the control plane got the pinned image');
    const [ct] = await containersOf('topin');
    assert.equal((await docker!.getContainer(ct!.Id).inspect()).Image, images[1]);
  });

  test('deploy --pin refuses a local-only image (E_INVALID at image) and a registry whose digest header lies (E_DIGEST_MISMATCH)', async () => {
    const local = await cli(['deploy', '--pin', '-f', app('local', EXAMPLE_IMAGE)], c.env());
    assert.equal(local.code, 1);
    assert.match(local.stderr, /^error E_INVALID: .*localhost\/sensor-stats:0\.1 is a local image/m);
    const lie = await cli(['deploy', '--pin', '-f', app('lie', `${tamper!.hostPort}/outpost-pin-${process.pid}:lie`)], c.env());
    assert.equal(lie.code, 1);
    assert.match(lie.stderr, new RegExp(`^error E_DIGEST_MISMATCH: .*says .*:lie is ${digestA}, but the manifest it sent is ${digestB}`, 'm'));
    for (const name of ['local', 'lie']) assert.equal((await cli(['replicas', name, '--json'], c.env())).code, 1, `${name} was never deployed`);
  });
});

describe('private registries', { skip: skip || noRegistry || noBcrypt }, () => {
  const tls = skip || noRegistry || noBcrypt ? null : selfSigned();
  const authDir = tmpDir('outpost-auth-');
  const authFile = path.join(authDir, 'auth.json');
  const basicReg = { r: null as Registry | null, undo: () => {} };
  const tokenReg = { r: null as Registry | null, undo: () => {}, server: null as Awaited<ReturnType<typeof startTokenServer>> | null };
  const images: string[] = [];
  const ref = (reg: { r: Registry | null }, tag: string) => `${reg.r!.hostPort}/outpost-private-${process.pid}:${tag}`;

  before(async () => {
    if (!tls) return;
    fs.writeFileSync(path.join(authDir, 'htpasswd'), `${htpasswd}\n`);
    basicReg.r = await startRegistry(tls, `auth:\n  htpasswd:\n    realm: outpost-test\n    path: ${authDir}/htpasswd`);
    basicReg.undo = trust(basicReg.r.hostPort, tls);
    tokenReg.server = await startTokenServer(tls, { user: 'alice', password: 'wonderland', service: 'outpost-registry', issuer: 'outpost-test-issuer' });
    tokenReg.r = await startRegistry(tls, `auth:\n  token:\n    realm: ${tokenReg.server.realm}\n    service: outpost-registry\n    issuer: outpost-test-issuer\n    rootcertbundle: ${tls.cert}`);
    tokenReg.undo = trust(tokenReg.r.hostPort, tls);
    fs.writeFileSync(authFile, JSON.stringify({ auths: {
      [basicReg.r.hostPort]: { auth: Buffer.from('alice:wonderland').toString('base64') },
      [`https://${tokenReg.r.hostPort}`]: { auth: Buffer.from('alice:wonderland').toString('base64') },
    } }), { mode: 0o600 });
    for (const reg of [basicReg, tokenReg]) {
      await buildAndPush(ref(reg, '1'), EXAMPLE_IMAGE, `private-${process.pid}`, ['--creds', 'alice:wonderland']);
      images.push(`sha256:${execFileSync('podman', ['image', 'inspect', '--format', '{{.Id}}', ref(reg, '1')]).toString().trim()}`);
      // the nodes must pull it
      execFileSync('podman', ['rmi', ref(reg, '1')], { stdio: 'ignore' });
    }
  });
  // one agent with the credentials, one without
  const c = cluster([['--registry-auth', authFile], []]);
  after(async () => {
    basicReg.undo();
    tokenReg.undo();
    await basicReg.r?.stop();
    await tokenReg.r?.stop();
    await tokenReg.server?.close();
    removeImages(images);
  });

  const onNode = (name: string, image: string, node: string) => writeManifest(c.work, name, {
    name, image, ports: [{ name: 'http', container: 5000 }], health: { http: '/healthz', port: 'http' }, restart: { policy: 'never' }, placement: { nodes: [node] },
  });

  test('an agent without credentials cannot pull from a registry that wants them; one with --registry-auth pulls and runs (htpasswd, Basic)', async () => {
    const denied = await cli(['deploy', '-f', onNode('nocreds', ref(basicReg, '1'), c.names[1]!), '--wait', '--timeout', '60'], c.env());
    assert.notEqual(denied.code, 0);
    const rep = await replica(c.env(), 'nocreds');
    assert.equal(rep.error?.code, 'E_PULL_FAILED', JSON.stringify(rep.error));
    assert.match(rep.error!.message, /unauthorized|authentication required/i);
    const ok = await cli(['deploy', '-f', onNode('basic', ref(basicReg, '1'), c.names[0]!), '--wait'], c.env());
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /pulling/);
    assert.equal((await replica(c.env(), 'basic')).state, 'running');
  });

  test('a registry with token authentication (Bearer): the agent pulls, and deploy --pin resolves through the token server', async () => {
    const file = onNode('bearer', ref(tokenReg, '1'), c.names[0]!);
    const denied = await cli(['deploy', '--pin', '-f', file], c.env());
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /^error E_UNAUTHORIZED: .*refused an anonymous request.*--registry-auth/m);
    const r = await cli(['deploy', '--pin', '--registry-auth', authFile, '-f', file, '--wait'], c.env());
    assert.equal(r.code, 0, r.stderr);
    const pinned = /pinned \S+ to (\S+@sha256:[0-9a-f]{64})/.exec(r.stdout)?.[1];
    assert.ok(pinned, r.stdout);
    assert.equal((await c.cp().client.app('bearer')).spec.image, pinned);
    assert.equal((await replica(c.env(), 'bearer')).state, 'running');
    assert.ok(tokenReg.server!.requests.some((q) => /repository:outpost-private-\d+:pull with credentials/.test(q)), tokenReg.server!.requests.join('\n'));
  });

  test('deploy --pin with Basic authentication, the credentials from OUTPOST_REGISTRY_AUTH', async () => {
    const r = await cli(['deploy', '--pin', '-f', onNode('basicpin', ref(basicReg, '1'), c.names[0]!)], { ...c.env(), OUTPOST_REGISTRY_AUTH: authFile });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /pinned \S+:1 to \S+:1@sha256:[0-9a-f]{64}/);
  });

  test('an auth file others can read is refused: the agent does not start, deploy --pin does not use it', async () => {
    const loose = path.join(authDir, 'loose.json');
    fs.writeFileSync(loose, fs.readFileSync(authFile));
    fs.chmodSync(loose, 0o644);
    const a = spawnAgent(c.cp(), ['--name', `edge-loose-${process.pid}`, '--runtime', 'docker', '--data-dir', tmpDir(), '--registry-auth', loose]);
    assert.equal(await a.exited, 2);
    assert.match(a.output(), /error E_USAGE: the registry auth file .*loose\.json can be read by others \(mode 0644\).*chmod 600/);
    const r = await cli(['deploy', '--pin', '--registry-auth', loose, '-f', onNode('loose', ref(basicReg, '1'), c.names[0]!)], c.env());
    assert.equal(r.code, 2);
    assert.match(r.stderr, /E_USAGE: the registry auth file/);
  });
});
