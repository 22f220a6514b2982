// Per-item stage costs, as the apps report them. An app that declares
// `metrics: { stages: PATH }` answers GET PATH at its endpoint (its first
// port: in an app of several containers, the container that declares it) with
// cumulative counters:
//   {"process": {"items": N, "us": T}, "storage": {...}, "compute": {...}}
// The agent turns the increase between two readings into microseconds per
// item, smooths it, and reports it per app: the model's t_process, t_storage
// and t_compute on this node.
import type { PerItemUs } from '../core/types.js';
import { ewma } from '../core/model.js';

type Counters = Record<keyof PerItemUs, { items: number; us: number }>;
const STAGES: (keyof PerItemUs)[] = ['process', 'storage', 'compute'];

export class StageTracker {
  private last = new Map<string, Counters>();
  private smoothed = new Map<string, Partial<PerItemUs>>();

  /** Reads one replica's counters; returns the app's smoothed per-item costs once every stage has been seen. */
  async read(app: string, replica: string, url: string): Promise<PerItemUs | null> {
    let now: Counters;
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
      if (!res.ok) return null;
      now = (await res.json()) as Counters;
    } catch {
      return null;
    }
    const prev = this.last.get(replica);
    this.last.set(replica, now);
    if (!prev) return null;
    const s = { ...(this.smoothed.get(app) ?? {}) };
    for (const k of STAGES) {
      const di = (now[k]?.items ?? 0) - (prev[k]?.items ?? 0);
      const du = (now[k]?.us ?? 0) - (prev[k]?.us ?? 0);
      // a restarted replica resets its counters: skip that interval
      if (di > 0 && du >= 0) s[k] = Math.round(ewma(s[k] ?? null, du / di) * 1000) / 1000;
    }
    this.smoothed.set(app, s);
    return STAGES.every((k) => s[k] !== undefined) ? (s as PerItemUs) : null;
  }

  forget(replica: string): void {
    this.last.delete(replica);
  }
}
