// End to end with a real container engine (Podman here, through its Docker
// Engine API socket): deploy the example image with the CLI, call it, kill the
// agent and check that it adopts rather than duplicates, and clean-up.
import { describe, test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { ReplicaRecord } from '../src/core/types.js';
import { LABELS } from '../src/agent/drivers/driver.js';
import { engineOrSkip, EXAMPLE_IMAGE } from './engine.js';
import { cli, cliEnv, controlPlane, postJson, spawnAgent, tmpDir, waitFor, writeManifest, type AgentProc } from './helpers.js';

const { docker, skip } = await engineOrSkip();
// a real OCI registry for pull tests (CI starts Debian's docker-registry on 127.0.0.1:5000)
const registry = process.env.OUTPOST_TEST_REGISTRY;
if (!registry) console.log('# pull-from-registry test skipped: OUTPOST_TEST_REGISTRY is not set');

describe('containers through the Docker Engine API', { skip }, () => {
  const nodeName = `edge-c${process.pid}`;
  let cp: Awaited<ReturnType<typeof controlPlane>>;
  let env: NodeJS.ProcessEnv;
  let agent: AgentProc;
  const agentDir = tmpDir();
  const work = tmpDir();
  const agents: AgentProc[] = [];
  const startAgent = () => {
    const a = spawnAgent(cp, ['--name', nodeName, '--runtime', 'docker', '--data-dir', agentDir]);
    agents.push(a);
    return a;
  };
  const mine = async () => docker!.listContainers({ all: true, filters: { label: [`${LABELS.node}=${nodeName}`] } });
  const replicas = async (app: string) => JSON.parse((await cli(['replicas', app, '--json'], env)).stdout) as ReplicaRecord[];

  before(async () => {
    cp = await controlPlane();
    env = cliEnv(cp);
    agent = startAgent();
    await waitFor('agent registered', () => agent.output().includes('registered with the control plane'));
  });
  after(async () => {
    await cli(['rm', 'stats'], env);
    await waitFor('containers removed', async () => (await mine()).length === 0, 15_000).catch(() => {});
    for (const a of agents) a.child.kill('SIGKILL');
    for (const c of await mine()) await docker!.getContainer(c.Id).remove({ force: true }).catch(() => {});
    await cp.close();
  });

  test('deploy --wait runs a real container; replicas --json shows measured imageMs, containerMs, engineMs', async () => {
    const file = writeManifest(work, 'stats', {
      name: 'stats', image: EXAMPLE_IMAGE, replicas: 1, ports: [{ name: 'http', container: 5000 }],
      health: { http: '/healthz', port: 'http' }, resources: { cpu: 0.5, cpuLimit: 0.75, memoryMiB: 128 },
    });
    const r = await cli(['deploy', '-f', file, '--wait'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /starting/);
    assert.doesNotMatch(r.stdout, /pulling/, 'a cached image is not pulled');
    assert.match(r.stdout, /ready +http:\/\/127\.0\.0\.1:\d+ +\(image 0 ms, container \d+ ms, engine \d+ ms\)/);
    const [rep] = await replicas('stats');
    assert.equal(rep!.state, 'running');
    assert.equal(rep!.measured.imageMs, 0, 'the image is local: no pull');
    assert.ok(rep!.measured.containerMs! > 0);
    assert.ok(rep!.measured.engineMs! > 0);
    assert.ok(rep!.predicted.deployMs! > 0);
    assert.deepEqual((await postJson(`${rep!.endpoint}/process_data`, '[1,2,3]')).json, { processed_data: 2 });
  });

  test('the container is labelled, has explicit nofile/nproc ulimits, its cpu share, its cpu cap and memory limit', async () => {
    const cs = await mine();
    assert.equal(cs.length, 1);
    const info = await docker!.getContainer(cs[0]!.Id).inspect();
    assert.equal(info.Config.Labels[LABELS.app], 'stats');
    const ul = Object.fromEntries((info.HostConfig.Ulimits ?? []).map((u) => [(u.Name ?? '').replace(/^RLIMIT_/i, '').toLowerCase(), u.Soft]));
    assert.equal(ul.nofile, 1024);
    assert.equal(ul.nproc, 4096);
    assert.equal(info.HostConfig.Memory, 128 * 1024 * 1024);
    assert.equal(info.HostConfig.CpuShares, 512, 'cpu 0.5 reserved: a relative share of 512');
    assert.equal(info.HostConfig.CpuPeriod, 10_000);
    assert.equal(info.HostConfig.CpuQuota, 7_500, 'cpuLimit 0.75: a hard quota over a 10 ms period');
  });

  test('logs reach the container through the agent', async () => {
    const r = await cli(['logs', 'stats'], env);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /sensor-stats listening on 0\.0\.0\.0:5000/);
  });

  test('SIGKILL the agent and start it again: it adopts the running container (no duplicate, no restart)', async () => {
    const [c0] = await mine();
    const started0 = (await docker!.getContainer(c0!.Id).inspect()).State.StartedAt;
    agent.child.kill('SIGKILL');
    await agent.exited;
    agent = startAgent();
    await waitFor('adopted', () => agent.output().includes('adopted running instance'), 20_000);
    await new Promise((r) => setTimeout(r, 1500)); // a restart would show within the watch interval
    const cs = await mine();
    assert.equal(cs.length, 1, 'no duplicate container');
    assert.equal(cs[0]!.Id, c0!.Id, 'the same container');
    assert.equal((await docker!.getContainer(c0!.Id).inspect()).State.StartedAt, started0, 'not restarted');
    const [rep] = await replicas('stats');
    assert.equal(rep!.state, 'running');
    assert.equal(rep!.restarts, 0);
  });

  test('a labelled container that nobody wants any more is removed when the agent comes back', async () => {
    const file = writeManifest(work, 'orphan', { name: 'orphan', image: EXAMPLE_IMAGE, ports: [{ name: 'http', container: 5000 }], health: { http: '/healthz', port: 'http' } });
    assert.equal((await cli(['deploy', '-f', file, '--wait'], env)).code, 0);
    const orphanId = (await mine()).find((c) => c.Labels[LABELS.app] === 'orphan')!.Id;
    agent.child.kill('SIGKILL');
    await agent.exited;
    // removed while its node is away: only the agent can clean up, when it returns
    assert.equal((await cli(['rm', 'orphan'], env)).code, 0);
    assert.ok((await mine()).some((c) => c.Id === orphanId));
    agent = startAgent();
    await waitFor('orphan removed', async () => !(await mine()).some((c) => c.Id === orphanId), 20_000);
    assert.equal((await mine()).length, 1);
  });

  test('an image that cannot be pulled fails with a clear code, and nothing else is disturbed', async () => {
    const file = writeManifest(work, 'ghost', { name: 'ghost', image: '127.0.0.1:1/no-such-image:1', ports: [{ name: 'http', container: 80 }], restart: { policy: 'never' } });
    const r = await cli(['deploy', '-f', file, '--wait', '--timeout', '60'], env);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /E_PULL_FAILED|E_IMAGE_NOT_FOUND/);
    const [rep] = await replicas('ghost');
    assert.equal(rep!.state, 'failed');
    assert.match(rep!.error!.code, /E_PULL_FAILED|E_IMAGE_NOT_FOUND/);
    assert.equal((await cli(['rm', 'ghost'], env)).code, 0);
    const [stats] = await replicas('stats');
    assert.equal(stats!.state, 'running');
  });

  test('an image missing on the node is pulled from a real registry; imageMs and the pulled bytes are measured', { skip: registry ? false : 'OUTPOST_TEST_REGISTRY is not set' }, async () => {
    // a layer no node has: 3 MiB of random bytes on top of the example image
    const ctx = tmpDir();
    fs.writeFileSync(path.join(ctx, 'blob'), randomBytes(3 * 1024 * 1024));
    fs.writeFileSync(path.join(ctx, 'Containerfile'), `FROM ${EXAMPLE_IMAGE}\nCOPY blob /blob\n`);
    const ref = `${registry}/outpost-pulltest:${process.pid}`;
    try {
      execFileSync('podman', ['build', '--pull=never', '-q', '-t', ref, ctx], { stdio: 'ignore' });
      execFileSync('podman', ['push', '--tls-verify=false', ref], { stdio: 'ignore' });
      execFileSync('podman', ['rmi', ref], { stdio: 'ignore' });
      const file = writeManifest(work, 'pulled', { name: 'pulled', image: ref, ports: [{ name: 'http', container: 5000 }], health: { http: '/healthz', port: 'http' } });
      const r = await cli(['deploy', '-f', file, '--wait'], env);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /pulling/);
      const [rep] = await replicas('pulled');
      assert.equal(rep!.state, 'running');
      assert.ok(rep!.measured.imageMs! > 0, `imageMs ${rep!.measured.imageMs}`);
      assert.deepEqual((await postJson(`${rep!.endpoint}/storage_data`, '[0.5,0.25]')).json, { stored_data: 0.75 });
      // the node learned its bandwidth to the registry from that pull, and now holds the image
      const node = JSON.parse((await cli(['nodes', '--json'], env)).stdout).find((n: { name: string }) => n.name === nodeName);
      assert.ok(node.timings.bandwidthMbps > 0, 'bandwidth calibrated');
      assert.ok(node.images.includes(ref), 'inventory updated after the pull');
    } finally {
      await cli(['rm', 'pulled'], env);
      await waitFor('pulled container gone', async () => !(await mine()).some((c) => c.Labels[LABELS.app] === 'pulled'), 15_000).catch(() => {});
      // the engine refuses while the container is still being torn down: retry
      await waitFor('test image removed', () => {
        try { execFileSync('podman', ['rmi', '-f', ref], { stdio: 'ignore' }); } catch { /* in use, or gone */ }
        return !execFileSync('podman', ['images', '-q', ref]).toString().trim();
      }, 15_000, 250).catch(() => console.log(`# could not remove ${ref}`));
    }
  });
});
