// RTT probes: the time a TCP connect to a site's probe address takes, several
// samples, the median. A site whose every sample fails gets no RTT (the
// planner then treats it as unreachable from this node).
import net from 'node:net';
import type { SiteRecord } from '../core/types.js';

export function connectMs(hostPort: string, timeoutMs: number): Promise<number | null> {
  const i = hostPort.lastIndexOf(':');
  const host = hostPort.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(hostPort.slice(i + 1));
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s = net.connect({ host, port });
    const done = (v: number | null) => { s.destroy(); resolve(v); };
    s.setTimeout(timeoutMs, () => done(null));
    s.once('connect', () => done(performance.now() - t0));
    s.once('error', () => done(null));
  });
}

export async function probeSites(sites: SiteRecord[], samples = 5, timeoutMs = 2000): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const site of sites) {
    const got: number[] = [];
    for (let i = 0; i < samples; i++) {
      const v = await connectMs(site.probe, timeoutMs);
      if (v !== null) got.push(v);
    }
    if (got.length === 0) continue;
    got.sort((a, b) => a - b);
    const mid = got.length >> 1;
    const median = got.length % 2 ? got[mid]! : (got[mid - 1]! + got[mid]!) / 2;
    out[site.name] = Math.round(median * 1000) / 1000;
  }
  return out;
}
