// Node policy, devices and per-site overrides with real agents running real
// Podman containers: a bind mount and a device go only to the node that
// allows (and has) them, and `plan` says why the other refused; overrides
// give two sites different env and images; an agent refuses an assignment
// its policy forbids even when the control plane sends it.
import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { ReplicaRecord } from '../src/core/types.js';
import { LABELS } from '../src/agent/drivers/driver.js';
import { specHash, validateApp } from '../src/core/manifest.js';
import { engineOrSkip, EXAMPLE_IMAGE } from './engine.js';
import { cli, cliEnv, controlPlane, spawnAgent, tmpDir, waitFor, writeManifest, type AgentProc } from './helpers.js';

const { docker, skip } = await engineOrSkip();
const ALT_IMAGE = 'localhost/outpost-policy-alt:1';

describe('node policy and overrides, with real agents and containers', { skip }, () => {
  const a = `pol-a${process.pid}`;
  const b = `pol-b${process.pid}`;
  let cp: Awaited<ReturnType<typeof controlPlane>>;
  let env: NodeJS.ProcessEnv;
  const agents: AgentProc[] = [];
  const work = tmpDir();
  const shared = tmpDir('outpost-hostpath-');
  const backing = path.join(work, 'loop.img');
  let loop = '';
  const apps = ['bind', 'dev', 'usb', 'sited', 'forged'];

  const on = async (node: string) => docker!.listContainers({ all: true, filters: { label: [`${LABELS.node}=${node}`] } });
  const replicas = async (app: string) => JSON.parse((await cli(['replicas', app, '--json'], env)).stdout) as ReplicaRecord[];
  const web = (name: string, more: object) => writeManifest(work, name, {
    name, image: EXAMPLE_IMAGE, ports: [{ name: 'http', container: 5000 }], health: { http: '/healthz', port: 'http' }, resources: { cpu: 0.1, memoryMiB: 64 }, ...more,
  });

  before(async () => {
    // a block device of this test's own: only node a allows it
    fs.writeFileSync(backing, Buffer.alloc(1024 * 1024));
    loop = execFileSync('losetup', ['-f', '--show', backing], { encoding: 'utf8' }).trim();
    await docker!.getImage(EXAMPLE_IMAGE).tag({ repo: ALT_IMAGE.split(':')[0], tag: '1' });
    cp = await controlPlane();
    env = cliEnv(cp);
    agents.push(spawnAgent(cp, ['--name', a, '--site', 'a', '--runtime', 'docker', '--data-dir', tmpDir(), '--allow-host-paths', shared, '--allow-devices', loop]));
    agents.push(spawnAgent(cp, ['--name', b, '--site', 'b', '--runtime', 'docker', '--data-dir', tmpDir(), '--allow-devices', '/dev/ttyUSB*']));
    await waitFor('both agents registered', async () => (await cp.client.nodes()).filter((n) => n.state === 'ready').length === 2);
  });
  after(async () => {
    for (const app of apps) await cli(['rm', app], env);
    await waitFor('containers removed', async () => (await on(a)).length + (await on(b)).length === 0, 15_000).catch(() => {});
    for (const x of agents) x.child.kill('SIGKILL');
    for (const c of [...await on(a), ...await on(b)]) await docker!.getContainer(c.Id).remove({ force: true }).catch(() => {});
    await docker!.getImage(ALT_IMAGE).remove().catch(() => {});
    await cp.close();
    if (loop) execFileSync('losetup', ['-d', loop]);
  });

  test('agents report their policy and the allowed devices they have', async () => {
    const nodes = Object.fromEntries((await cp.client.nodes()).map((n) => [n.name, n]));
    assert.deepEqual(nodes[a]!.policy, { devices: [loop], hostPaths: [shared], privileged: false });
    assert.deepEqual(nodes[a]!.devices, [loop]);
    assert.deepEqual(nodes[b]!.policy, { devices: ['/dev/ttyUSB*'], hostPaths: [], privileged: false });
    assert.deepEqual(nodes[b]!.devices, [], 'no ttyUSB on this machine');
  });

  test('a bind mount goes only to the node that allows its host path; plan says why the other refused', async () => {
    const file = web('bind', { replicas: 1, volumes: [{ path: '/in', hostPath: `${shared}/in`, readOnly: true }] });
    const p = await cli(['plan', '-f', file], env);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, new RegExp(`0 +${a} `));
    assert.match(p.stdout, new RegExp(`${b}: volumes\\[0\\]\\.hostPath: host path ${shared}/in is not allowed \\(outpost agent --allow-host-paths\\)`));
    const d = await cli(['deploy', '-f', file, '--wait', '--timeout', '60'], env);
    assert.equal(d.code, 0, d.stderr);
    assert.deepEqual((await replicas('bind')).map((r) => [r.node, r.state]), [[a, 'running']]);
    // two replicas need two nodes that allow it: refused whole, nothing changed
    const two = await cli(['deploy', '-f', web('bind', { replicas: 2, volumes: [{ path: '/in', hostPath: `${shared}/in`, readOnly: true }] })], env);
    assert.notEqual(two.code, 0);
    assert.match(two.stderr, /E_UNSCHEDULABLE/);
    assert.match(two.stderr, new RegExp(`${b}: volumes\\[0\\]\\.hostPath: host path ${shared}/in is not allowed`));
    assert.equal((await replicas('bind')).length, 1);
  });

  test('a device goes only to the node that allows and has it: not allowed on one node, missing on another', async () => {
    const file = web('dev', { replicas: 1, devices: [loop] });
    const p = await cli(['plan', '-f', file, '--json'], env);
    const plan = JSON.parse(p.stdout) as { placements: { node: string }[]; filtered: { node: string; reasons: string[] }[] };
    assert.deepEqual(plan.placements.map((x) => x.node), [a]);
    assert.deepEqual(plan.filtered.find((f) => f.node === b)?.reasons, [`devices[0]: device ${loop} is not allowed (outpost agent --allow-devices)`]);
    const d = await cli(['deploy', '-f', file, '--wait', '--timeout', '60'], env);
    assert.equal(d.code, 0, d.stderr);
    assert.deepEqual((await replicas('dev')).map((r) => [r.node, r.state]), [[a, 'running']]);
    // a serial adapter node b would allow, but no node has
    const usb = await cli(['plan', '-f', web('usb', { devices: ['/dev/ttyUSB7'] })], env);
    assert.match(usb.stderr, /E_UNSCHEDULABLE/);
    assert.match(usb.stderr, new RegExp(`${a}: devices\\[0\\]: device /dev/ttyUSB7 is not allowed`));
    assert.match(usb.stderr, new RegExp(`${b}: devices\\[0\\]: device /dev/ttyUSB7 is missing on the node \\(allowed, not present\\)`));
  });

  test('overrides give the two sites different env and images; a selector matching no node warns', async () => {
    const file = web('sited', {
      replicas: 2, env: { SITE: 'base', KEEP: 'yes' },
      overrides: [
        { match: { sites: ['a'] }, set: { env: { SITE: 'a' } } },
        { match: { sites: ['b'] }, set: { image: ALT_IMAGE, env: { SITE: 'b' } } },
        { match: { sites: ['c-*'] }, set: { env: { SITE: 'c' } } },
      ],
    });
    const p = await cli(['plan', '-f', file], env);
    assert.equal(p.code, 0, p.stderr);
    assert.match(p.stdout, new RegExp(`${a}: overrides\\[0\\]\\n +env\\.SITE: "base" -> "a"`));
    assert.match(p.stdout, new RegExp(`${b}: overrides\\[1\\]\\n +env\\.SITE: "base" -> "b"\\n +image: "${EXAMPLE_IMAGE}" -> "${ALT_IMAGE}"`));
    assert.match(p.stdout, /warning: overrides\[2\]: its match selects no node \({"sites":\["c-\*"\]}\)/);
    const d = await cli(['deploy', '-f', file, '--wait', '--timeout', '60'], env);
    assert.equal(d.code, 0, d.stderr);
    assert.match(d.stderr, /warning: overrides\[2\]: its match selects no node/, 'a warning, not an error: the app deployed');
    const seen: Record<string, { image: string; env: string[] }> = {};
    for (const node of [a, b]) {
      const [c] = (await on(node)).filter((x) => x.Labels[LABELS.app] === 'sited');
      const info = await docker!.getContainer(c!.Id).inspect();
      seen[node] = { image: info.Config.Image, env: info.Config.Env.filter((e) => /^(SITE|KEEP)=/.test(e)).sort() };
    }
    assert.deepEqual(seen, {
      [a]: { image: EXAMPLE_IMAGE, env: ['KEEP=yes', 'SITE=a'] },
      [b]: { image: ALT_IMAGE, env: ['KEEP=yes', 'SITE=b'] },
    });
  });

  test('an agent refuses an assignment its policy forbids, before creating anything (E_POLICY)', async () => {
    // hand-crafted: an app and a replica written straight into the store, on the node that refuses it, as a control plane that does not check would send it
    const spec = validateApp({ name: 'forged', image: EXAMPLE_IMAGE, replicas: 1, volumes: [{ path: '/etc-of-host', hostPath: '/etc' }], devices: [loop], privileged: true });
    const hash = specHash(spec);
    const t = Date.now();
    const replica: ReplicaRecord = {
      id: 'forged-0-0', app: 'forged', slot: 0, node: b, specHash: hash, state: 'pending', endpoint: null, restarts: 0,
      measured: { imageMs: null, containerMs: null, engineMs: null }, predicted: { imageMs: null, containerMs: null, engineMs: null, deployMs: null },
      progress: null, error: null, createdAt: t, updatedAt: t,
    };
    await cp.cp.writer.run(() => ({
      changes: [{ kind: 'apps', key: 'forged', doc: { name: 'forged', spec, specHash: hash, createdAt: t, updatedAt: t, serial: 1 } }, { kind: 'replicas', key: replica.id, doc: replica }],
      result: undefined,
    }));
    cp.cp.assignments.touch([b]);
    const [r] = await waitFor('the replica failed', async () => {
      const reps = await replicas('forged');
      return reps[0]?.state === 'failed' ? reps : null;
    });
    assert.equal(r!.node, b);
    assert.equal(r!.error?.code, 'E_POLICY');
    assert.equal(r!.error?.message, `node ${b} refuses this replica: `
      + `devices[0]: device ${loop} is not allowed (outpost agent --allow-devices would allow it); `
      + 'volumes[0].hostPath: host path /etc is not allowed (outpost agent --allow-host-paths would allow it); '
      + 'privileged: a privileged container is not allowed (outpost agent --allow-privileged would allow it)');
    assert.deepEqual((await on(b)).filter((c) => c.Labels[LABELS.replica] === 'forged-0-0'), [], 'nothing was created');
  });
});
