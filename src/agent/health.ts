// Health checks the agent runs against a replica's published port.
import net from 'node:net';
import type { AppSpec } from '../core/manifest.js';

export type Check = () => Promise<boolean>;

/**
 * A declared check (the app's, or one container's: `ports` are then the
 * ports its `port` defaults from); a TCP connect to the first port when none
 * is declared; null when there is no port to check.
 */
export function buildCheck(h: AppSpec['health'], ports: { name: string }[], host: string, hostPorts: Record<string, number>, exec?: (cmd: string[], timeoutMs: number) => Promise<number>): Check | null {
  if (h?.exec && exec) {
    const cmd = h.exec;
    return async () => (await exec(cmd, h.timeoutMs).catch(() => 1)) === 0;
  }
  const portName = h?.port ?? ports[0]?.name;
  if (portName === undefined) return null;
  const port = hostPorts[portName];
  if (port === undefined) return null;
  const timeoutMs = h?.timeoutMs ?? 1000;
  if (h?.http !== undefined) {
    const url = `http://${host.includes(':') ? `[${host}]` : host}:${port}${h.http}`;
    return () => httpCheck(url, timeoutMs);
  }
  return () => tcpCheck(host, port, timeoutMs);
}

/** One declared check of a replica as its watch runs it: the app's (`container` null) or a container's. */
export interface Watched {
  container: string | null;
  check: Check;
  h: NonNullable<AppSpec['health']>;
}

/**
 * A replica's declared checks, each at its own interval: the replica is
 * ready while every one passed its last run, and unhealthy once one has
 * failed its `failureThreshold` times in a row after its start period.
 */
export class CheckSet {
  private readonly due = new Map<Watched, number>();
  private readonly failures = new Map<Watched, number>();
  private readonly failing = new Set<Watched>();

  constructor(readonly checks: Watched[]) {}

  /** how often the watch wakes: the shortest interval (1 s with no check: exits are watched anyway) */
  get tickMs(): number {
    return Math.min(1000, ...this.checks.map((w) => w.h.intervalMs));
  }

  /** Runs the checks that are due; `sinceStartMs`: time since the replica started. */
  async run(sinceStartMs: number): Promise<{ ready: boolean; failing: string[]; unhealthy: { name: string; failures: number } | null }> {
    const now = performance.now();
    await Promise.all(this.checks.map(async (w) => {
      if ((this.due.get(w) ?? 0) > now) return;
      this.due.set(w, now + w.h.intervalMs);
      if (await w.check()) {
        this.failing.delete(w);
        this.failures.set(w, 0);
        return;
      }
      this.failing.add(w);
      // within the start period a failure takes the replica out of routing but
      // does not count towards a restart (an app that answers before it is warm)
      if (sinceStartMs >= w.h.startPeriodMs) this.failures.set(w, (this.failures.get(w) ?? 0) + 1);
    }));
    const over = this.checks.find((w) => (this.failures.get(w) ?? 0) >= w.h.failureThreshold);
    return {
      ready: this.failing.size === 0,
      failing: [...this.failing].map(label),
      unhealthy: over ? { name: label(over), failures: this.failures.get(over)! } : null,
    };
  }
}

function label(w: Watched): string {
  return w.container === null ? 'the health check' : `container "${w.container}"'s health check`;
}

export async function httpCheck(url: string, timeoutMs: number): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status >= 200 && res.status < 400;
  } catch {
    return false;
  }
}

export function tcpCheck(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => { s.destroy(); resolve(ok); };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** A free TCP port on the host, chosen by the kernel. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}
