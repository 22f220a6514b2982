// Health checks the agent runs against a replica's published port.
import net from 'node:net';
import type { AppSpec } from '../core/manifest.js';

export type Check = () => Promise<boolean>;

/** The app's declared check; a TCP connect to its first port when it declares none; null when it has no port. */
export function buildCheck(spec: AppSpec, host: string, hostPorts: Record<string, number>, exec?: (cmd: string[], timeoutMs: number) => Promise<number>): Check | null {
  const h = spec.health;
  if (h?.exec && exec) {
    const cmd = h.exec;
    return async () => (await exec(cmd, h.timeoutMs).catch(() => 1)) === 0;
  }
  const portName = h?.port ?? spec.ports[0]?.name;
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
