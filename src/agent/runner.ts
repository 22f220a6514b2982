// One replica on this node: image, create, start, first healthy answer, then
// watch it and restart it by its policy with capped exponential back-off.
// Each phase is timed: imageMs (pull, 0 when cached), containerMs (create),
// engineMs (start until the health check first passes) -- the seed's
// T_image, T_container and T_engine.
import os from 'node:os';
import type { Logger } from 'pino';
import { OutpostError, errorMessage } from '../core/errors.js';
import type { Assignment, ReplicaStatus } from '../core/types.js';
import type { EnsureResult, InstanceInfo, PullProgress, RuntimeDriver } from './drivers/driver.js';
import { buildCheck, freePort } from './health.js';
import type { SecretFiles, SecretOwner } from './secrets.js';
import type { IdentityTokens } from './workload.js';

export interface RunnerContext {
  driver: RuntimeDriver;
  node: string;
  bindHost: string;
  /** address clients use to reach published ports */
  advertise: string;
  env: Record<string, string>;
  /** where secrets are written on this node (null: this agent takes no replica with secrets) */
  secretFiles?: SecretFiles | null;
  /** the replicas' identity tokens (null: none) */
  identity?: IdentityTokens | null;
  log: Logger;
  report: (s: ReplicaStatus, pulled?: { bytes: number; ms: number } | null) => void;
  ensureImage: (r: Assignment, onProgress: (p: PullProgress) => void) => Promise<EnsureResult>;
}

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;
/** a replica that stayed up this long has its back-off reset */
const STABLE_MS = 60_000;
const START_POLL_MS = 10;

export class ReplicaRunner {
  private stopped = false;
  private instance: string | null = null;
  private hostPorts: Record<string, number> = {};
  private restarts = 0;
  /** when the current instance was started (0: adopted, its start is long past) */
  private startedAt = 0;
  private wake: (() => void) | null = null;
  private loop: Promise<void> | null = null;
  status: ReplicaStatus;

  constructor(readonly a: Assignment, private readonly ctx: RunnerContext) {
    this.status = { id: a.id, state: 'pending' };
  }

  get instanceId(): string | null {
    return this.instance;
  }

  /** Starts supervising; with `adopt`, takes over a running instance instead of creating one. */
  start(adopt?: InstanceInfo): void {
    this.loop = this.run(adopt).catch((e) => this.ctx.log.error({ err: e, replica: this.a.id }, 'runner crashed'));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wake?.();
    await this.loop;
    if (this.instance) await this.ctx.driver.remove(this.instance).catch((e) => this.ctx.log.warn({ err: e }, 'remove failed'));
    this.instance = null;
    this.ctx.identity?.forget(this.a.id);
    this.ctx.secretFiles?.remove(this.a.id);
  }

  /** where this replica's secrets are written, when it has any */
  private secrets(): SecretFiles | null {
    if (!this.a.secrets?.length) return null;
    if (!this.ctx.secretFiles) throw new OutpostError('E_CREATE_FAILED', 'this agent has no place for secrets');
    return this.ctx.secretFiles;
  }

  private set(s: Omit<ReplicaStatus, 'id'>, pulled: { bytes: number; ms: number } | null = null): void {
    if (this.stopped) return;
    // cumulative, so a status re-sent after a reconnect still carries every measurement
    this.status = { ...this.status, ...s, id: this.a.id, restarts: this.restarts, measured: { ...this.status.measured, ...s.measured } };
    this.ctx.report(this.status, pulled);
  }

  private async run(adopt?: InstanceInfo): Promise<void> {
    let backoff = BACKOFF_MIN_MS;
    if (adopt && adopt.running && adopt.specHash === this.a.specHash) {
      this.instance = adopt.id;
      this.hostPorts = adopt.hostPorts;
      this.set({ state: 'running', ready: true, endpoint: this.endpoint(), error: null, progress: null });
      this.ctx.log.info({ replica: this.a.id }, 'adopted running instance');
      this.ctx.identity?.adopt(this.a.id);
    } else if (adopt) {
      // a stopped instance (after a reboot, say): start afresh on the same
      // ports, so the endpoint clients and the control plane know stays valid
      if (adopt.specHash === this.a.specHash) this.hostPorts = { ...adopt.hostPorts };
      await this.ctx.driver.remove(adopt.id);
    }
    while (!this.stopped) {
      let upSince = 0;
      let exitCode: number | null = null;
      try {
        if (!this.instance) await this.deploy();
        upSince = Date.now();
        const ended = await this.watch();
        if (ended === null) return; // stopped on purpose
        exitCode = ended.exitCode;
        const reason = exitReason(ended, this.a.spec.resources.memoryMiB);
        const why = { code: 'E_EXITED', message: `the replica stopped (${reason})` };
        this.set({ state: exitCode === 0 ? 'stopped' : 'failed', error: why, lastExit: why });
      } catch (e) {
        if (this.stopped) return;
        const err = e instanceof OutpostError ? e : new OutpostError('E_INTERNAL', errorMessage(e));
        exitCode = (err.details as { exitCode?: number | null } | undefined)?.exitCode ?? null;
        this.ctx.log.warn({ replica: this.a.id, code: err.code, msg: err.message }, 'replica failed');
        this.set({ state: 'failed', error: { code: err.code, message: err.message }, lastExit: { code: err.code, message: err.message }, progress: null });
      }
      const policy = this.a.spec.restart.policy;
      if (policy === 'never' || (policy === 'on-failure' && exitCode === 0)) return;
      if (upSince > 0 && Date.now() - upSince > STABLE_MS) backoff = BACKOFF_MIN_MS;
      await this.sleep(backoff);
      backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
      if (this.stopped) return;
      if (this.instance) await this.ctx.driver.remove(this.instance).catch(() => {});
      this.instance = null;
      this.restarts++;
    }
  }

  private async deploy(): Promise<void> {
    const { driver } = this.ctx;
    const spec = this.a.spec;
    // announce a pull only when there will be one: a cached image goes straight to creating
    const cached = await driver.hasImage(spec);
    this.set({ state: cached ? 'creating' : 'pulling', error: null, progress: null, endpoint: null });
    const t0 = performance.now();
    let lastReport = 0;
    const got = await this.ctx.ensureImage(this.a, (p) => {
      const now = performance.now();
      if (now - lastReport < 200) return;
      lastReport = now;
      this.set({ state: 'pulling', progress: p });
    });
    const imageMs = got.pulled ? performance.now() - t0 : 0;
    this.set({ state: 'creating', progress: null, measured: { imageMs: r1(imageMs) } }, got.pulled ? { bytes: got.bytes, ms: imageMs } : null);

    for (const p of spec.ports) {
      if (this.hostPorts[p.name] !== undefined) continue;
      this.hostPorts[p.name] = driver.hostNetwork ? p.container : await freePort(this.ctx.bindHost);
    }
    const t1 = performance.now();
    const secrets = this.secrets();
    const identity = this.ctx.identity;
    const owner = secrets || identity ? await (driver.secretOwner?.(spec) ?? ownUser()) : null;
    const written = secrets ? secrets.write(this.a.id, this.a.secrets!, owner!) : undefined;
    // after the secrets: writing them starts the replica's directory afresh
    const id = identity ? await identity.issue(this.a.id, owner!) : null;
    this.instance = await driver.create({
      secrets: id?.token ? { env: { ...written?.env, OUTPOST_IDENTITY_TOKEN: id.token }, files: written?.files ?? [] } : written,
      ...(id ? { identityDir: id.dir } : {}),
      replicaId: this.a.id, app: this.a.app, specHash: this.a.specHash, node: this.ctx.node, spec,
      hostPorts: this.hostPorts, bindHost: this.ctx.bindHost,
      env: { ...this.ctx.env, OUTPOST_APP: this.a.app, OUTPOST_REPLICA: this.a.id, OUTPOST_NODE: this.ctx.node },
    });
    const containerMs = performance.now() - t1;
    // startedAt lets the control plane see which starts overlapped on a host
    this.set({ state: 'starting', measured: { containerMs: r1(containerMs) }, startedAt: Date.now() });

    const t2 = performance.now();
    await driver.start(this.instance);
    this.startedAt = Date.now();
    await this.waitHealthy(t2);
    const engineMs = performance.now() - t2;
    this.set({ state: 'running', ready: true, endpoint: this.endpoint(), measured: { engineMs: r1(engineMs) }, error: null });
  }

  /** Polls the health check quickly (engineMs is measured by it) until it passes, the instance exits, or time runs out. */
  private async waitHealthy(t0: number): Promise<void> {
    const spec = this.a.spec;
    const check = this.check();
    const deadline = t0 + (spec.health?.startTimeoutMs ?? 60_000);
    let lastInspect = performance.now();
    for (;;) {
      if (this.stopped) throw new OutpostError('E_INTERNAL', 'stopped while starting');
      if (check === null || (await check())) {
        if (check !== null) return;
        // no port to check: running is the best signal there is
        const i = await this.ctx.driver.inspect(this.instance!);
        if (i?.running) return;
      }
      if (performance.now() - lastInspect > 200) {
        lastInspect = performance.now();
        const i = await this.ctx.driver.inspect(this.instance!);
        if (!i || !i.running) {
          throw new OutpostError('E_EXITED', `the replica exited during start-up (exit code ${i?.exitCode ?? 'unknown'}${i?.oomKilled ? ', OOMKilled' : ''}); see \`outpost logs ${this.a.app}\``, { details: { exitCode: i?.exitCode ?? null } });
        }
      }
      if (performance.now() > deadline) {
        throw new OutpostError('E_HEALTH_TIMEOUT', `no healthy answer within ${spec.health?.startTimeoutMs ?? 60_000} ms of start`);
      }
      await new Promise((r) => setTimeout(r, START_POLL_MS));
    }
  }

  private check() {
    const id = this.instance;
    return buildCheck(this.a.spec, this.checkHost(), this.hostPorts, id ? (cmd, t) => this.ctx.driver.exec(id, cmd, t) : undefined);
  }

  /**
   * Watches a running replica until it stops or turns unhealthy. Its health
   * check runs every interval: one failure makes it not ready (routing skips
   * it), `failureThreshold` in a row make it unhealthy (E_UNHEALTHY), and it is
   * restarted by its policy. Only declared checks count: a replica without one
   * is watched for exit alone.
   */
  private async watch(): Promise<InstanceInfo | null> {
    const h = this.a.spec.health;
    const interval = h?.intervalMs ?? 1000;
    const check = h ? this.check() : null;
    let failures = 0;
    while (!this.stopped) {
      await this.sleep(interval);
      if (this.stopped) return null;
      const i = await this.ctx.driver.inspect(this.instance!);
      if (!i) return { exitCode: null, oomKilled: false } as InstanceInfo;
      if (!i.running) return i;
      if (!check) continue;
      const ok = await check();
      if (this.stopped) return null;
      if (ok) {
        if (this.status.ready === false) this.set({ state: 'running', ready: true, error: null });
        failures = 0;
        continue;
      }
      // within the start period a failure takes the replica out of routing but
      // does not count towards a restart (an app that answers before it is warm)
      if (Date.now() - this.startedAt >= (h?.startPeriodMs ?? 0)) failures++;
      if (this.status.ready !== false) this.set({ state: 'running', ready: false, error: { code: 'E_UNHEALTHY', message: 'the health check failed; not routed to until it passes' } });
      if (failures >= (h?.failureThreshold ?? 3)) {
        throw new OutpostError('E_UNHEALTHY', `the health check failed ${failures} times in a row; restarting`, { details: { exitCode: null } });
      }
    }
    return null;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.wake = null; resolve(); }, ms);
      this.wake = () => { clearTimeout(t); this.wake = null; resolve(); };
    });
  }

  private endpoint(): string | null {
    const first = this.a.spec.ports[0];
    if (!first || this.hostPorts[first.name] === undefined) return null;
    const h = this.ctx.advertise;
    return `http://${h.includes(':') ? `[${h}]` : h}:${this.hostPorts[first.name]}`;
  }

  private checkHost(): string {
    return this.ctx.bindHost === '0.0.0.0' ? '127.0.0.1' : this.ctx.bindHost === '::' ? '::1' : this.ctx.bindHost;
  }
}

function ownUser(): Promise<SecretOwner> {
  return Promise.resolve({ uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 });
}

function r1(x: number): number {
  return Math.round(x * 10) / 10;
}

/**
 * A person-readable exit reason. Engines do not always flag an OOM kill
 * (Podman 4.3 with runc here reports OOMKilled=false for a container the
 * kernel killed at its memory limit), so a SIGKILL is named with both of its
 * usual causes.
 */
export function exitReason(i: { exitCode: number | null; oomKilled: boolean }, memoryMiB: number): string {
  if (i.oomKilled) return `OOMKilled at the ${memoryMiB} MiB memory limit`;
  if (i.exitCode === null) return 'exit code unknown';
  if (i.exitCode > 128 && i.exitCode < 160) {
    const sig = Object.entries(os.constants.signals).find(([, n]) => n === i.exitCode! - 128)?.[0] ?? `signal ${i.exitCode - 128}`;
    return sig === 'SIGKILL'
      ? `exit code ${i.exitCode}: SIGKILL (the OOM killer at the ${memoryMiB} MiB memory limit, or a kill from outside)`
      : `exit code ${i.exitCode}: ${sig}`;
  }
  return `exit code ${i.exitCode}`;
}
