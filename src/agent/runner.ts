// One replica on this node: image, create, start, first healthy answer, then
// watch it and restart it by its policy with capped exponential back-off
// (at most `restart.maxRetries` times in a row: restarts.ts).
// Each phase is timed: imageMs (pull, 0 when cached), containerMs (create),
// engineMs (start until the health check first passes) -- the seed's
// T_image, T_container and T_engine. A replica of several containers is one
// group: imageMs pulls all its images, containerMs creates all its
// containers, engineMs lasts until every one is started (in `dependsOn`
// order) and every declared check has passed.
import os from 'node:os';
import type { Logger } from 'pino';
import { OutpostError, errorMessage } from '../core/errors.js';
import type { Assignment, ReplicaStatus } from '../core/types.js';
import { containersOf, portsOf, type RunContainer } from '../core/containers.js';
import type { EnsureResult, InstanceInfo, PullProgress, RuntimeDriver } from './drivers/driver.js';
import { CheckSet, buildCheck, freePort, type Check, type Watched } from './health.js';
import type { ConfigFiles } from './configs.js';
import type { SecretFiles, SecretOwner } from './secrets.js';
import type { IdentityTokens } from './workload.js';
import { STABLE_MS, nextRestart } from './restarts.js';

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
  /** where config files are written on this node (null: this agent takes no replica with configs) */
  configFiles?: ConfigFiles | null;
  log: Logger;
  report: (s: ReplicaStatus, pulled?: { bytes: number; ms: number } | null) => void;
  ensureImage: (r: Assignment, onProgress: (p: PullProgress) => void) => Promise<EnsureResult>;
}

const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 30_000;
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
    this.ctx.configFiles?.remove(this.a.id);
  }

  /** the replica's containers (one, for an app that gives its container at the top level) */
  private get containers(): RunContainer[] {
    return containersOf(this.a.spec);
  }

  /** a container's name as the driver takes it: none for a single container (the instance is it) */
  private member(name: string): string | undefined {
    return this.a.spec.containers && this.a.spec.containers.length > 1 ? name : undefined;
  }

  /** the configs the replica's containers mount, written on this node */
  private configs(): Record<string, string> | undefined {
    if (!this.containers.some((c) => c.volumes.some((v) => v.config !== undefined))) return undefined;
    if (!this.ctx.configFiles) throw new OutpostError('E_CREATE_FAILED', 'this agent has no place for config files');
    return this.ctx.configFiles.write(this.a.id, this.a.spec.configs);
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
    let inARow = 0;
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
        const why = { code: 'E_EXITED', message: `the replica stopped (${this.exitWhy(ended)})` };
        this.set({ state: exitCode === 0 ? 'stopped' : 'failed', error: why, lastExit: why });
      } catch (e) {
        if (this.stopped) return;
        const err = e instanceof OutpostError ? e : new OutpostError('E_INTERNAL', errorMessage(e));
        exitCode = (err.details as { exitCode?: number | null } | undefined)?.exitCode ?? null;
        this.ctx.log.warn({ replica: this.a.id, code: err.code, msg: err.message }, 'replica failed');
        this.set({ state: 'failed', error: { code: err.code, message: err.message }, lastExit: { code: err.code, message: err.message }, progress: null });
      }
      const upMs = upSince > 0 ? Date.now() - upSince : 0;
      const next = nextRestart(this.a.spec.restart, { exitCode, upMs }, inARow);
      if (next.action === 'stop') return;
      if (next.action === 'limit') {
        // left as it is (its last instance stays for `outpost logs`), as a replica whose policy is never
        const last = this.status.lastExit;
        const error = { code: 'E_RESTART_LIMIT', message: `restarted ${next.inARow} time${next.inARow === 1 ? '' : 's'} in a row without staying up ${STABLE_MS / 1000} s (restart.maxRetries: ${this.a.spec.restart.maxRetries}); not restarted again. The last stop: ${last ? `${last.code}: ${last.message}` : 'unknown'}` };
        this.ctx.log.warn({ replica: this.a.id, restarts: next.inARow }, 'restart limit reached');
        this.set({ state: 'failed', error, progress: null });
        return;
      }
      inARow = next.inARow;
      if (upMs >= STABLE_MS) backoff = BACKOFF_MIN_MS;
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

    const hostNet = new Set(this.containers.filter((c) => c.networkMode === 'host').map((c) => c.name));
    for (const p of portsOf(spec)) {
      if (this.hostPorts[p.name] !== undefined) continue;
      // on the node's network a container's port is the host's
      this.hostPorts[p.name] = driver.hostNetwork || hostNet.has(p.containerName) ? p.container : await freePort(this.ctx.bindHost);
    }
    const t1 = performance.now();
    const configs = this.configs();
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
      hostPorts: this.hostPorts, bindHost: this.ctx.bindHost, ...(configs ? { configs } : {}),
      env: { ...this.ctx.env, OUTPOST_APP: this.a.app, OUTPOST_REPLICA: this.a.id, OUTPOST_NODE: this.ctx.node },
    });
    const containerMs = performance.now() - t1;
    // startedAt lets the control plane see which starts overlapped on a host
    this.set({ state: 'starting', measured: { containerMs: r1(containerMs) }, startedAt: Date.now() });

    const t2 = performance.now();
    const instance = this.instance;
    await driver.start(instance, (name) => this.dependenciesMet(instance, name));
    this.startedAt = Date.now();
    await this.waitHealthy(t2);
    const engineMs = performance.now() - t2;
    this.set({ state: 'running', ready: true, endpoint: this.endpoint(), measured: { engineMs: r1(engineMs) }, error: null });
  }

  /**
   * Before a container of a group starts: waits until each container it
   * depends on is started (it runs) or healthy (its own check passes), as its
   * `dependsOn` says; fails when one of them exits or stays unhealthy past its
   * `startTimeoutMs`.
   */
  private async dependenciesMet(instance: string, name: string): Promise<void> {
    const c = this.containers.find((x) => x.name === name);
    for (const [dep, cond] of Object.entries(c?.dependsOn ?? {})) {
      const d = this.containers.find((x) => x.name === dep);
      if (!d) continue;
      const check = cond === 'healthy' && d.health ? this.containerCheck(instance, d) : null;
      const limit = d.health?.startTimeoutMs ?? 60_000;
      const t0 = performance.now();
      let lastInspect = -Infinity;
      for (;;) {
        if (this.stopped) throw new OutpostError('E_INTERNAL', 'stopped while starting');
        if (performance.now() - lastInspect > 200 || !check) {
          lastInspect = performance.now();
          const m = (await this.ctx.driver.inspect(instance))?.containers?.find((x) => x.name === dep);
          if (!m?.running) {
            throw new OutpostError('E_EXITED', `container "${dep}" exited before "${name}" could start (${exitReason(m ?? { exitCode: null, oomKilled: false }, d.memoryMiB ?? this.a.spec.resources.memoryMiB)}); see \`outpost logs ${this.a.app}\``, { details: { exitCode: m?.exitCode ?? null } });
          }
          if (!check) break;
        }
        if (await check()) break;
        if (performance.now() - t0 > limit) throw new OutpostError('E_HEALTH_TIMEOUT', `container "${dep}" was not healthy within ${limit} ms, so "${name}" (dependsOn: healthy) did not start`);
        await new Promise((r) => setTimeout(r, START_POLL_MS));
      }
    }
  }

  /**
   * Polls the checks quickly (engineMs is measured by them) until the app's
   * check and every container's own have passed once, the instance exits, or
   * time runs out.
   */
  private async waitHealthy(t0: number): Promise<void> {
    const spec = this.a.spec;
    const pending = new Map<string | null, Check | null>([[null, this.appCheck()], ...this.containerChecks().map((w) => [w.container, w.check] as const)]);
    const limit = Math.max(spec.health?.startTimeoutMs ?? 60_000, ...this.containers.map((c) => c.health?.startTimeoutMs ?? 0));
    const deadline = t0 + limit;
    let lastInspect = performance.now();
    for (;;) {
      if (this.stopped) throw new OutpostError('E_INTERNAL', 'stopped while starting');
      for (const [name, check] of [...pending]) {
        if (check !== null && (await check())) pending.delete(name);
      }
      // no port to check: running is the best signal there is
      if (pending.size === 1 && pending.get(null) === null && (await this.ctx.driver.inspect(this.instance!))?.running) pending.clear();
      if (pending.size === 0) return;
      if (performance.now() - lastInspect > 200) {
        lastInspect = performance.now();
        const i = await this.ctx.driver.inspect(this.instance!);
        if (!i || !i.running) {
          throw new OutpostError('E_EXITED', `the replica exited during start-up (${this.exitWhy(i ?? { exitCode: null, oomKilled: false })}); see \`outpost logs ${this.a.app}\``, { details: { exitCode: i?.exitCode ?? null } });
        }
      }
      if (performance.now() > deadline) {
        const waiting = [...pending.keys()].map((n) => (n === null ? 'the health check' : `container "${n}"`)).join(', ');
        throw new OutpostError('E_HEALTH_TIMEOUT', `no healthy answer within ${limit} ms of start${this.containers.length > 1 ? ` (still waiting: ${waiting})` : ''}`);
      }
      await new Promise((r) => setTimeout(r, START_POLL_MS));
    }
  }

  /** The app's check: declared or a TCP connect to its first port, in whichever container has it (an exec: the port's container, else the first). */
  private appCheck(): Check | null {
    const spec = this.a.spec;
    const id = this.instance;
    const owner = portsOf(spec).find((p) => p.name === spec.health?.port)?.containerName ?? this.containers[0]!.name;
    return buildCheck(spec.health, portsOf(spec), this.checkHost(), this.hostPorts, id ? (cmd, t) => this.ctx.driver.exec(id, cmd, t, this.member(owner)) : undefined);
  }

  /** A container's own check; null when it declares one that has nothing to check (running is then enough). */
  private containerCheck(instance: string, c: RunContainer): Check | null {
    return buildCheck(c.health, c.ports, this.checkHost(), this.hostPorts, (cmd, t) => this.ctx.driver.exec(instance, cmd, t, this.member(c.name)));
  }

  private containerChecks(): Watched[] {
    // a top-level container's health is the app's, checked once
    if (!this.a.spec.containers) return [];
    return this.containers.flatMap((c) => {
      const check = c.health ? this.containerCheck(this.instance!, c) : null;
      return check && c.health ? [{ container: c.name, check, h: c.health }] : [];
    });
  }

  /**
   * Watches a running replica until it stops or turns unhealthy. Its declared
   * checks (the app's and each container's) run at their intervals: one
   * failure makes it not ready (routing skips it), `failureThreshold` in a row
   * make it unhealthy (E_UNHEALTHY), and it is restarted by its policy. Only
   * declared checks count: a replica without one is watched for exit alone.
   */
  private async watch(): Promise<InstanceInfo | null> {
    const h = this.a.spec.health;
    const app = h ? this.appCheck() : null;
    const checks = new CheckSet([...(app && h ? [{ container: null, check: app, h }] : []), ...this.containerChecks()]);
    while (!this.stopped) {
      await this.sleep(checks.tickMs);
      if (this.stopped) return null;
      const i = await this.ctx.driver.inspect(this.instance!);
      if (!i) return { exitCode: null, oomKilled: false } as InstanceInfo;
      if (!i.running) return i;
      if (checks.checks.length === 0) continue;
      const r = await checks.run(Date.now() - this.startedAt);
      if (this.stopped) return null;
      if (r.ready) {
        if (this.status.ready === false) this.set({ state: 'running', ready: true, error: null });
        continue;
      }
      if (this.status.ready !== false) this.set({ state: 'running', ready: false, error: { code: 'E_UNHEALTHY', message: `${r.failing.join(' and ')} failed; not routed to until it passes` } });
      if (r.unhealthy) {
        throw new OutpostError('E_UNHEALTHY', `${r.unhealthy.name} failed ${r.unhealthy.failures} times in a row; restarting`, { details: { exitCode: null } });
      }
    }
    return null;
  }

  /** Why an instance stopped, naming the container of a group that did, with its own memory limit. */
  private exitWhy(i: Pick<InstanceInfo, 'exitCode' | 'oomKilled' | 'stopped'>): string {
    const c = i.stopped !== undefined ? this.containers.find((x) => x.name === i.stopped) : undefined;
    const reason = exitReason(i, c?.memoryMiB ?? this.a.spec.resources.memoryMiB);
    return i.stopped !== undefined ? `container "${i.stopped}": ${reason}` : reason;
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => { this.wake = null; resolve(); }, ms);
      this.wake = () => { clearTimeout(t); this.wake = null; resolve(); };
    });
  }

  private endpoint(): string | null {
    const first = portsOf(this.a.spec)[0];
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
