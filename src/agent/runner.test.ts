// The replica runner's restart policies, against an in-memory driver that
// implements the real RuntimeDriver interface (instances exit on command).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import { validateApp, specHash } from '../core/manifest.js';
import { OutpostError } from '../core/errors.js';
import type { Assignment, ReplicaStatus } from '../core/types.js';
import type { EnsureResult, InstanceInfo, RunSpec, RuntimeDriver } from './drivers/driver.js';
import { ReplicaRunner } from './runner.js';

class MemoryDriver implements RuntimeDriver {
  readonly kind = 'process' as const;
  readonly instances = new Map<string, InstanceInfo>();
  created = 0;
  imagePresent = true;
  failPull: OutpostError | null = null;
  async inventory() { return { images: [], layers: [], imageLayers: {} }; }
  async list() { return [...this.instances.values()]; }
  async hasImage() { return this.imagePresent; }
  async ensureImage(): Promise<EnsureResult> {
    if (this.failPull) throw this.failPull;
    const pulled = !this.imagePresent;
    this.imagePresent = true;
    return { pulled, bytes: pulled ? 1000 : 0 };
  }
  async create(r: RunSpec) {
    const id = `i${++this.created}`;
    this.instances.set(id, { id, replicaId: r.replicaId, app: r.app, specHash: r.specHash, running: false, exitCode: null, oomKilled: false, hostPorts: r.hostPorts });
    return id;
  }
  async start(id: string) { this.instances.get(id)!.running = true; }
  async inspect(id: string) { const i = this.instances.get(id); return i ? { ...i } : null; }
  async remove(id: string) { this.instances.delete(id); }
  logs() { return () => {}; }
  /** what the exec health check answers */
  healthy = true;
  async exec() { return this.healthy ? 0 : 1; }
  exit(code: number, oom = false) {
    for (const i of this.instances.values()) if (i.running) Object.assign(i, { running: false, exitCode: code, oomKilled: oom });
  }
}

function setup(policy: 'always' | 'on-failure' | 'never', health: object = {}, maxRetries?: number) {
  const spec = validateApp({ name: 'job', command: ['x'], health: { intervalMs: 10, ...health }, restart: { policy, maxRetries } });
  const a: Assignment = { id: 'job-1', app: 'job', specHash: specHash(spec), spec };
  const driver = new MemoryDriver();
  const reports: ReplicaStatus[] = [];
  const runner = new ReplicaRunner(a, {
    driver, node: 'n1', bindHost: '127.0.0.1', advertise: '127.0.0.1', env: {}, log: pino({ level: 'silent' }),
    report: (s) => reports.push(structuredClone(s)),
    ensureImage: (r, p) => driver.ensureImage(),
  });
  return { driver, reports, runner };
}

async function until(what: string, fn: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!fn()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('phases are reported in order with every measurement, and a cached image skips pulling', async () => {
  const { reports, runner } = setup('always');
  runner.start();
  await until('running', () => runner.status.state === 'running');
  assert.deepEqual(reports.map((r) => r.state), ['creating', 'creating', 'starting', 'running']);
  const m = runner.status.measured!;
  assert.equal(m.imageMs, 0);
  assert.ok(m.containerMs! >= 0 && m.engineMs! >= 0);
  await runner.stop();
});

test('a missing image is announced as pulling and measured', async () => {
  const { driver, reports, runner } = setup('always');
  driver.imagePresent = false;
  runner.start();
  await until('running', () => runner.status.state === 'running');
  assert.equal(reports[0]!.state, 'pulling');
  assert.ok(runner.status.measured!.imageMs! >= 0);
  await runner.stop();
});

test('always: an exited replica is restarted with back-off, and the restart is counted', async () => {
  const { driver, runner } = setup('always');
  runner.start();
  await until('running', () => runner.status.state === 'running');
  driver.exit(0);
  await until('failed seen', () => runner.status.state === 'stopped');
  await until('running again', () => runner.status.state === 'running' && runner.status.restarts === 1);
  assert.equal(driver.created, 2);
  assert.equal(driver.instances.size, 1, 'the old instance was removed');
  await runner.stop();
  assert.equal(driver.instances.size, 0);
});

test('on-failure: exit 0 stays stopped; an OOM kill is named and restarted', async () => {
  const ok = setup('on-failure');
  ok.runner.start();
  await until('running', () => ok.runner.status.state === 'running');
  ok.driver.exit(0);
  await until('stopped', () => ok.runner.status.state === 'stopped');
  await new Promise((r) => setTimeout(r, 700));
  assert.equal(ok.driver.created, 1, 'not restarted');

  const oom = setup('on-failure');
  oom.runner.start();
  await until('running', () => oom.runner.status.state === 'running');
  oom.driver.exit(137, true);
  await until('failed', () => oom.runner.status.state === 'failed');
  assert.match(oom.runner.status.error!.message, /OOMKilled/);
  await until('restarted', () => oom.runner.status.restarts === 1 && oom.runner.status.state === 'running');
  await oom.runner.stop();
});

test('maxRetries: after that many restarts in a row the replica stays failed with E_RESTART_LIMIT, its last instance kept for its logs', async () => {
  const { driver, runner } = setup('on-failure', {}, 1);
  runner.start();
  await until('running', () => runner.status.state === 'running');
  driver.exit(3);
  await until('restarted', () => runner.status.restarts === 1 && runner.status.state === 'running');
  driver.exit(3);
  await until('the limit', () => runner.status.error?.code === 'E_RESTART_LIMIT');
  assert.equal(runner.status.state, 'failed');
  assert.equal(runner.status.restarts, 1);
  assert.match(runner.status.error!.message, /^restarted 1 time in a row without staying up 60 s \(restart\.maxRetries: 1\); not restarted again\. The last stop: E_EXITED: the replica stopped \(exit code 3\)$/);
  assert.equal(runner.status.lastExit!.code, 'E_EXITED');
  assert.deepEqual([driver.created, driver.instances.size], [2, 1]);
  await runner.stop();
  assert.equal(driver.instances.size, 0);
});

test('never: a failure stays failed; a pull error carries its code', async () => {
  const { driver, runner } = setup('never');
  driver.imagePresent = false;
  driver.failPull = new OutpostError('E_IMAGE_NOT_FOUND', 'no such image');
  runner.start();
  await until('failed', () => runner.status.state === 'failed');
  assert.equal(runner.status.error!.code, 'E_IMAGE_NOT_FOUND');
  await new Promise((r) => setTimeout(r, 700));
  assert.equal(driver.created, 0);
  assert.equal(runner.status.restarts, 0);
});

test('a failing health check makes the replica not ready, then unhealthy and restarted', async () => {
  const { driver, reports, runner } = setup('always', { exec: ['check'], failureThreshold: 3, intervalMs: 20 });
  runner.start();
  await until('running', () => runner.status.state === 'running' && runner.status.ready === true);
  driver.healthy = false;
  await until('not ready', () => runner.status.ready === false);
  assert.equal(runner.status.state, 'running', 'one failure: still running, only unroutable');
  await until('unhealthy', () => reports.some((r) => r.state === 'failed' && r.error?.code === 'E_UNHEALTHY'));
  driver.healthy = true;
  await until('restarted and ready', () => runner.status.restarts === 1 && runner.status.state === 'running' && runner.status.ready === true);
  assert.equal(driver.created, 2);
  await runner.stop();
});

test('a health check that recovers before the threshold makes the replica ready again without a restart', async () => {
  const { driver, runner } = setup('always', { exec: ['check'], failureThreshold: 50, intervalMs: 10 });
  runner.start();
  await until('running', () => runner.status.ready === true);
  driver.healthy = false;
  await until('not ready', () => runner.status.ready === false);
  driver.healthy = true;
  await until('ready again', () => runner.status.ready === true);
  assert.equal(runner.status.restarts, 0);
  assert.equal(driver.created, 1);
  await runner.stop();
});

test('within the start period failures take the replica out of routing but do not restart it; after it they do', async () => {
  const { driver, runner } = setup('always', { exec: ['check'], failureThreshold: 2, intervalMs: 10, startPeriodMs: 400 });
  runner.start();
  await until('running', () => runner.status.ready === true);
  driver.healthy = false;
  await until('not ready', () => runner.status.ready === false);
  await new Promise((r) => setTimeout(r, 200)); // ~20 failed checks, all inside the period
  assert.equal(runner.status.restarts, 0);
  assert.equal(runner.status.state, 'running');
  await until('restarted after the period', () => runner.status.restarts === 1, 3000);
  await runner.stop();
});

test('exit reasons name signals, and a SIGKILL under a memory limit says the OOM killer may be why', async () => {
  const { exitReason } = await import('./runner.js');
  assert.equal(exitReason({ exitCode: 3, oomKilled: false }, 64), 'exit code 3');
  assert.equal(exitReason({ exitCode: 143, oomKilled: false }, 64), 'exit code 143: SIGTERM');
  assert.match(exitReason({ exitCode: 137, oomKilled: false }, 96), /SIGKILL \(the OOM killer at the 96 MiB memory limit, or a kill from outside\)/);
  assert.equal(exitReason({ exitCode: 137, oomKilled: true }, 96), 'OOMKilled at the 96 MiB memory limit');
});
