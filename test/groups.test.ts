// Apps of several containers on a real engine (Podman here): a replica is a
// group on a network of its own, started in dependsOn order, reaching each
// other by name and by alias, restarted as one; named volumes that outlive updates, agent restarts and plain
// `rm`; config files, tmpfs, a read-only root and a device inside the
// containers. Everything through a real control plane, agent and CLI.
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { ReplicaRecord } from '../src/core/types.js';
import { LABELS } from '../src/agent/drivers/driver.js';
import { ProcessDriver } from '../src/agent/drivers/process.js';
import { validateApp, specHash } from '../src/core/manifest.js';
import { OutpostError } from '../src/core/errors.js';
import { engineOrSkip } from './engine.js';
import { ROOT, cli, cliEnv, controlPlane, spawnAgent, tmpDir, waitFor, writeManifest, type AgentProc } from './helpers.js';

const { docker, skip } = await engineOrSkip();
const IMAGE = 'localhost/outpost-groups-probe:1';

// one image, three parts: the backend (healthy only after READY_AFTER_MS), the
// web front that calls it by name, and a check run by exec
const PROBE = `
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
const role = process.argv[2];
const t0 = Date.now();
const json = (res, v) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(v)); };
const attempt = (f) => { try { return f(); } catch (e) { return e.code ?? e.message; } };
if (role === 'check') {
  fetch(process.argv[3]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1));
} else if (role === 'exit') {
  setTimeout(() => process.exit(3), 200);
} else if (role === 'once') {
  // exits the first time only: a marker on the shared volume remembers it
  if (fs.existsSync('/data/once')) setInterval(() => {}, 1 << 30);
  else { fs.writeFileSync('/data/once', 'x'); setTimeout(() => process.exit(3), 200); }
} else if (role === 'back') {
  http.createServer((req, res) => {
    if (req.url === '/healthz') { res.statusCode = Date.now() - t0 >= Number(process.env.READY_AFTER_MS ?? 0) ? 200 : 503; return res.end(); }
    json(res, { service: 'backend', message: process.env.MESSAGE });
  }).listen(7000, '0.0.0.0', () => console.log('backend listening'));
} else {
  const backend = process.env.BACKEND_URL;
  const atStart = await fetch(backend + '/healthz').then((r) => r.status, (e) => e.cause?.code ?? e.message);
  if (fs.existsSync('/data')) fs.appendFileSync('/data/boots', (process.env.REV ?? '?') + '\\n');
  http.createServer(async (req, res) => {
    if (req.url === '/healthz') return res.end('ok');
    if (req.url === '/start') return json(res, { backendAtStart: atStart });
    if (req.url === '/hostname') return res.end(os.hostname());
    if (req.url === '/volume') return res.end(fs.readFileSync('/data/boots', 'utf8'));
    if (req.url === '/config') return res.end(fs.readFileSync('/etc/app/settings.txt', 'utf8'));
    if (req.url === '/fs') return json(res, {
      tmpfs: attempt(() => { fs.writeFileSync('/scratch/t', 'x'); return fs.readFileSync('/scratch/t', 'utf8'); }),
      rootfs: attempt(() => { fs.writeFileSync('/app/x', 'x'); return 'written'; }),
      config: attempt(() => { fs.writeFileSync('/etc/app/settings.txt', 'x'); return 'written'; }),
    });
    if (req.url === '/host') return json(res, {
      read: attempt(() => fs.readFileSync('/host/host.txt', 'utf8')),
      write: attempt(() => { fs.writeFileSync('/host/x', 'x'); return 'written'; }),
    });
    if (req.url === '/device') return json(res, {
      char: attempt(() => fs.statSync('/dev/outpost-null').isCharacterDevice()),
      write: attempt(() => { fs.writeFileSync('/dev/outpost-null', 'x'); return 'ok'; }),
    });
    try { json(res, { got: await (await fetch(backend + '/')).json() }); } catch (e) { res.statusCode = 502; res.end(String(e.cause?.code ?? e.message)); }
  }).listen(8080, '0.0.0.0', () => console.log('web listening'));
}
`;

describe('apps of several containers on a container engine', { skip, timeout: 600_000 }, () => {
  const node = `grp${process.pid}`;
  const app = `grp-${process.pid}`;
  const volume = `outpost-${app}-data`;
  const agentDir = tmpDir();
  const work = tmpDir();
  // a host directory the node allows (--allow-host-paths), readable by the container's user
  const hostDir = tmpDir();
  fs.chmodSync(hostDir, 0o755);
  fs.writeFileSync(path.join(hostDir, 'host.txt'), 'from the node', { mode: 0o644 });
  const agents: AgentProc[] = [];
  let cp: Awaited<ReturnType<typeof controlPlane>>;
  let env: NodeJS.ProcessEnv;
  let agent: AgentProc;
  const startAgent = () => {
    const a = spawnAgent(cp, ['--name', node, '--runtime', 'docker', '--data-dir', agentDir, '--no-hub', '--allow-devices', '/dev/null', '--allow-host-paths', hostDir]);
    agents.push(a);
    return a;
  };
  const mine = async () => docker!.listContainers({ all: true, filters: { label: [`${LABELS.node}=${node}`] } });
  const volumeExists = async () => (await docker!.getVolume(volume).inspect().catch(() => null)) !== null;
  const running = (name: string, not: string[] = []) => waitFor(`${name} running`, async () => {
    const reps = (await cp.client.app(name)).replicas as ReplicaRecord[];
    return reps.length === 1 && reps[0]!.state === 'running' && reps[0]!.endpoint && !not.includes(reps[0]!.id) ? reps[0]! : null;
  }, 60_000);
  const get = async (url: string) => {
    const res = await fetch(url);
    const text = await res.text();
    try { return JSON.parse(text) as Record<string, unknown>; } catch { return text; }
  };

  const web = (over: object = {}) => ({
    name: 'web', image: IMAGE, command: ['/usr/bin/node', '/app/probe.mjs', 'front'],
    ports: [{ name: 'http', container: 8080 }],
    env: { BACKEND_URL: 'http://backend:7000', REV: '1' },
    dependsOn: { backend: 'healthy' },
    volumes: [{ volume: 'data', path: '/data' }, { config: 'settings', path: '/etc/app/settings.txt' }, { tmpfs: 8, path: '/scratch' }, { hostPath: hostDir, path: '/host', readOnly: true }],
    readOnlyRootfs: true,
    devices: ['/dev/null:/dev/outpost-null'],
    ...over,
  });
  const backend = {
    name: 'backend', image: IMAGE, command: ['/usr/bin/node', '/app/probe.mjs', 'back'],
    env: { READY_AFTER_MS: '1500', MESSAGE: 'hello by name' },
    health: { exec: ['/usr/bin/node', '/app/probe.mjs', 'check', 'http://127.0.0.1:7000/healthz'], intervalMs: 500 },
  };
  const manifest = (o: { web?: object; settings?: string } = {}) => ({
    name: app, containers: [web(o.web), backend], configs: { settings: { content: o.settings ?? 'v1' } },
    health: { http: '/healthz', port: 'http', intervalMs: 500 }, placement: { nodes: [node] },
    update: { maxSurge: 0, maxUnavailable: 1 },
  });
  const deploy = async (doc: object) => {
    const r = await cli(['deploy', '-f', writeManifest(work, app, doc), '--wait', '--timeout', '120'], env);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    return r;
  };

  before(async () => {
    const ctx = path.join(work, 'image');
    fs.mkdirSync(ctx);
    fs.writeFileSync(path.join(ctx, 'probe.mjs'), PROBE);
    fs.writeFileSync(path.join(ctx, 'Containerfile'), `FROM localhost/outpost-node-base:${process.versions.node}\nCOPY probe.mjs /app/\nUSER 65534\nCMD ["/usr/bin/node", "/app/probe.mjs", "back"]\n`);
    execFileSync('podman', ['build', '--pull=never', '-q', '-t', IMAGE, '-f', path.join(ctx, 'Containerfile'), ctx]);
    cp = await controlPlane();
    env = cliEnv(cp);
    agent = startAgent();
    await waitFor('agent registered', () => agent.output().includes('registered with the control plane'), 60_000); // an agent's start on a loaded 2-core machine took over 20 s once
  });
  after(async () => {
    await cli(['rm', app, '--volumes'], env);
    await waitFor('containers removed', async () => (await mine()).length === 0, 20_000).catch(() => {});
    for (const a of agents) a.child.kill('SIGKILL');
    for (const c of await mine()) await docker!.getContainer(c.Id).remove({ force: true }).catch(() => {});
    await docker!.getVolume(volume).remove().catch(() => {});
    await cp.close();
  });

  test('a web container calls its backend by name; the backend was healthy before web started (dependsOn: healthy)', async () => {
    const r = await deploy(manifest());
    assert.match(r.stdout, /ready +http:\/\/127\.0\.0\.1:\d+ +\(image 0 ms, container \d+ ms, engine \d+ ms\)/);
    const rep = await running(app);
    assert.deepEqual(await get(rep.endpoint!), { got: { service: 'backend', message: 'hello by name' } });
    assert.deepEqual(await get(`${rep.endpoint}/start`), { backendAtStart: 200 }, 'web started only once the backend answered healthy');
    // engine time covers the backend's 1.5 s to healthy and web's start after it
    assert.ok(rep.measured.engineMs! >= 1500, `engineMs ${rep.measured.engineMs}`);
    const cs = await mine();
    assert.equal(cs.length, 2);
    assert.deepEqual(cs.map((c) => c.Labels[LABELS.container]).sort(), ['backend', 'web']);
    const first = cs.find((c) => c.Labels[LABELS.container] === 'web')!;
    assert.deepEqual(JSON.parse(first.Labels[LABELS.group]!), ['backend', 'web'], 'the first container lists the group in start order');
    const net = await docker!.getNetwork(`outpost-${rep.id}`).inspect();
    assert.equal(net.Labels?.[LABELS.replica], rep.id);
  });

  test('logs are the first container\'s, or the one asked for', async () => {
    const first = await cli(['logs', app], env);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /web listening/);
    assert.doesNotMatch(first.stdout, /backend listening/);
    const other = await cli(['logs', app, '--container', 'backend'], env);
    assert.match(other.stdout, /backend listening/);
    assert.doesNotMatch(other.stdout, /web listening/);
  });

  test('a config file is read inside the container, read-only; tmpfs is writable, the root filesystem is not', async () => {
    const rep = await running(app);
    assert.equal(await get(`${rep.endpoint}/config`), 'v1');
    assert.deepEqual(await get(`${rep.endpoint}/fs`), { tmpfs: 'x', rootfs: 'EROFS', config: 'EROFS' });
    const file = path.join(agentDir, 'agent', 'configs', rep.id, 'settings');
    assert.equal(fs.statSync(file).mode & 0o777, 0o444);
  });

  test('a host path the node allows is bind-mounted, read-only as asked', async () => {
    const r = await running(app);
    assert.deepEqual(await get(`${r.endpoint}/host`), { read: 'from the node', write: 'EROFS' });
  });

  test('a device given to a container is there: /dev/null as /dev/outpost-null', async () => {
    const rep = await running(app);
    assert.deepEqual(await get(`${rep.endpoint}/device`), { char: true, write: 'ok' });
  });

  test('the named volume keeps its file through a rolling update and an agent restart', async () => {
    const old = await running(app);
    await deploy(manifest({ web: { env: { BACKEND_URL: 'http://backend:7000', REV: '2' } } }));
    const rep = await running(app, [old.id]);
    assert.notEqual(rep.id, old.id, 'a new replica');
    assert.equal(await get(`${rep.endpoint}/volume`), '1\n2\n', 'the first revision\'s line is still there');
    const ids = (await mine()).map((c) => c.Id).sort();
    agent.child.kill('SIGKILL');
    await agent.exited;
    agent = startAgent();
    await waitFor('adopted', () => agent.output().includes('adopted running instance'), 30_000);
    assert.deepEqual((await mine()).map((c) => c.Id).sort(), ids, 'the same containers, adopted');
    assert.ok(await volumeExists());
    assert.equal(await get(`${rep.endpoint}/volume`), '1\n2\n');
  });

  test('a changed config rolls the replica, which reads the new content; the old replica\'s config files go with it', async () => {
    const old = await running(app);
    await deploy(manifest({ web: { env: { BACKEND_URL: 'http://backend:7000', REV: 'c' } }, settings: 'v2' }));
    const rep = await running(app, [old.id]);
    assert.equal(await get(`${rep.endpoint}/config`), 'v2');
    await waitFor('old config files removed', () => !fs.existsSync(path.join(agentDir, 'agent', 'configs', old.id)), 10_000);
    await waitFor('old network removed', async () => (await docker!.getNetwork(`outpost-${old.id}`).inspect().catch(() => null)) === null, 10_000);
  });

  test('a container of the group that exits fails the replica, named in its error', async () => {
    const name = `${app}-x`;
    const doc = {
      name, placement: { nodes: [node] }, restart: { policy: 'never' },
      containers: [
        { name: 'main', image: IMAGE, command: ['/usr/bin/node', '/app/probe.mjs', 'back'], ports: [{ name: 'x', container: 7000 }] },
        { name: 'sidecar', image: IMAGE, command: ['/usr/bin/node', '/app/probe.mjs', 'exit'] },
      ],
    };
    await cli(['deploy', '-f', writeManifest(work, name, doc)], env);
    try {
      const rep = await waitFor('failed', async () => ((await cp.client.app(name)).replicas as ReplicaRecord[]).find((r) => r.state === 'failed'), 60_000);
      assert.match(rep.error!.message, /container "sidecar": exit code 3/);
    } finally {
      await cli(['rm', name], env);
    }
  });

  test('a container is reached by its aliases (container_name in Compose), and sees the hostname it was given', async () => {
    const name = `${app}-n`;
    const doc = {
      name, placement: { nodes: [node] }, health: { http: '/healthz', port: 'http' },
      containers: [
        { ...web({ env: { BACKEND_URL: 'http://edgex-store:7000' }, hostname: 'web.plant.local' }), volumes: [], devices: [], readOnlyRootfs: false },
        { ...backend, env: { MESSAGE: 'hello by alias' }, aliases: ['store', 'edgex-store'] },
      ],
    };
    await deploy(doc);
    try {
      const rep = await running(name);
      assert.deepEqual(await get(rep.endpoint!), { got: { service: 'backend', message: 'hello by alias' } });
      assert.equal(await get(`${rep.endpoint}/hostname`), 'web.plant.local');
    } finally {
      await cli(['rm', name], env);
    }
  });

  test('a container that stops restarts its whole group: the container that did not stop starts again too', async () => {
    const name = `${app}-g`;
    const data = [{ volume: 'data', path: '/data' }];
    const doc = {
      name, placement: { nodes: [node] }, health: { http: '/healthz', port: 'http' },
      containers: [
        { name: 'main', image: IMAGE, command: ['/usr/bin/node', '/app/probe.mjs', 'front'], ports: [{ name: 'http', container: 8080 }], env: { REV: 'g' }, volumes: data },
        { name: 'sidecar', image: IMAGE, command: ['/usr/bin/node', '/app/probe.mjs', 'once'], volumes: data },
      ],
    };
    await cli(['deploy', '-f', writeManifest(work, name, doc)], env);
    try {
      const rep = await waitFor('restarted once, running', async () => ((await cp.client.app(name)).replicas as ReplicaRecord[]).find((r) => r.restarts === 1 && r.state === 'running' && r.ready !== false && r.endpoint), 60_000);
      assert.match(rep.lastExit!.message, /container "sidecar": exit code 3/);
      assert.equal(await get(`${rep.endpoint}/volume`), 'g\ng\n', 'main, which never stopped by itself, was started twice');
    } finally {
      await cli(['rm', name, '--volumes'], env);
    }
  });

  test('plain rm keeps the named volume (a new deploy finds its file); rm --volumes removes it', async () => {
    assert.equal((await cli(['rm', app], env)).code, 0);
    await waitFor('containers removed', async () => (await mine()).length === 0, 20_000);
    assert.ok(await volumeExists(), 'kept by a plain rm');
    await deploy(manifest({ web: { env: { BACKEND_URL: 'http://backend:7000', REV: '3' } } }));
    const rep = await running(app);
    assert.equal(await get(`${rep.endpoint}/volume`), '1\n2\nc\n3\n', 'every revision\'s line, through an app removal');
    const r = await cli(['rm', app, '--volumes', '--json'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).volumes, { told: [node], unreached: [] });
    await waitFor('volume removed', async () => !(await volumeExists()), 20_000);
    assert.equal((await mine()).length, 0);
  });
});

test('the process runtime refuses what only a container engine gives, naming the fields (E_UNSUPPORTED)', async () => {
  const driver = new ProcessDriver(tmpDir(), 'proc', ROOT);
  const spec = validateApp({ name: 'p', command: ['node', '-e', '0'], volumes: [{ tmpfs: 8, path: '/scratch' }], user: '1000' });
  const err = await driver.create({ replicaId: 'p-0', app: 'p', specHash: specHash(spec), node: 'proc', spec, hostPorts: {}, bindHost: '127.0.0.1', env: {} }).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof OutpostError);
  assert.equal(err.code, 'E_UNSUPPORTED');
  assert.match(err.message, /volumes, user/);
  assert.deepEqual((await driver.list()).length, 0, 'nothing was created');
});
