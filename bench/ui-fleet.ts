// A fleet for the dashboard's benchmark (bench/ui.ts) and screenshots
// (scripts/screenshots.mjs), added to a running control plane: sites on a
// map, each with its own simulated agents (src/swarm, one swarm process per
// site, enrolled with a join token bound to the site) that report RTTs by the
// distance between sites, and apps deployed through the API, most with
// demand at a site or two so the planner puts them near it.
import { ApiClient } from '../src/contract/client.js';
import type { AppView } from '../src/contract/api.js';
import { SwarmGroup, sleep } from '../src/swarm/control.js';

export interface SiteSpec {
  name: string;
  /** where it is on a map whose unit is 1 ms of RTT */
  at: [number, number];
  /** simulated nodes at it */
  nodes: number;
}

export interface ControlPlaneRef {
  url: string;
  /** PEM of its CA */
  ca: string;
  adminToken: string;
}

/** The RTT from a node at site `a` to site `b`: 1.5 ms within a site, else their distance (each agent spreads it +-20%). */
export function siteRtt(a: SiteSpec, b: SiteSpec): number {
  return a === b ? 1.5 : Math.round(Math.hypot(a.at[0] - b.at[0], a.at[1] - b.at[1]) * 10) / 10;
}

/**
 * An app of the fleet: `replicas` of a command, or of `image` with an HTTP
 * port (for nodes that say they run containers; the swarm runs nothing and
 * pulls nothing), with demand at `demand` sites when given.
 */
export function fleetApp(name: string, replicas: number, demand: { site: string; rps: number }[] = [], image?: string): object {
  return {
    name, replicas, resources: { cpu: 0.05, memoryMiB: 32 },
    ...(image ? { image, ports: [{ name: 'http', container: 8080 }] } : { command: ['sleep', 'infinity'] }),
    ...(demand.length ? { placement: { demand } } : {}),
  };
}

export class SimFleet {
  readonly client: ApiClient;
  readonly swarms = new Map<string, SwarmGroup>();

  constructor(readonly cp: ControlPlaneRef, readonly sites: SiteSpec[]) {
    this.client = new ApiClient(cp.url, cp.adminToken, cp.ca);
  }

  get nodeCount(): number {
    return this.sites.reduce((a, s) => a + s.nodes, 0);
  }

  /**
   * The sites (their probe: any TCP address; simulated agents do not dial it)
   * and their nodes, node names `SITE-NNNNN`, of the process runtime unless
   * `runtime` says docker; resolves when every agent is welcomed.
   */
  async start(o: { probe: string; phaseMs?: [number, number]; nofile?: number; runtime?: 'process' | 'docker' }): Promise<void> {
    for (const s of this.sites) await this.client.addSite(s.name, o.probe);
    let from = 0;
    for (const s of this.sites) {
      const joinToken = (await this.client.createToken({ ttl: '1h', uses: s.nodes, site: s.name, note: 'dashboard fleet' })).token;
      const swarm = await SwarmGroup.spawn(1, o.nofile ?? 65_536);
      this.swarms.set(s.name, swarm);
      const rttMs = Object.fromEntries(this.sites.map((b) => [b.name, siteRtt(s, b)]));
      await swarm.start({ server: this.cp.url, joinToken, ca: this.cp.ca, count: s.nodes, from, prefix: `${s.name}-`, rttMs, phaseMs: o.phaseMs ?? [50, 300], runtime: o.runtime });
      from += s.nodes;
    }
    await until(`${this.nodeCount} simulated agents welcomed`, async () => {
      let n = 0;
      for (const sw of this.swarms.values()) n += (await sw.stats()).welcomed;
      return n >= this.nodeCount;
    });
  }

  /** Deploys the apps one after another through the API (a 409 E_CONFLICT sent again) and waits until each runs what it asks. */
  async deploy(apps: object[]): Promise<void> {
    for (const m of apps) {
      for (let i = 0; ; i++) {
        try {
          await this.client.deploy(m);
          break;
        } catch (e) {
          if ((e as { code?: string }).code !== 'E_CONFLICT' || i >= 5) throw e;
        }
      }
    }
    const want = new Map(apps.map((m) => [(m as { name: string }).name, (m as { replicas: number }).replicas]));
    await until(`${apps.length} apps running`, async () => {
      const views = await this.client.listAll('/v1/apps') as AppView[];
      return [...want].every(([name, k]) => views.find((a) => a.name === name)?.running === k);
    });
  }

  /** Closes the connections of `count` nodes of a site (they stay gone); their names. */
  async lose(site: string, count = 1): Promise<string[]> {
    const swarm = this.swarms.get(site)!;
    const spec = this.sites.find((s) => s.name === site)!;
    return (await swarm.lose((count * 100) / spec.nodes, 'close')).nodes;
  }

  async stop(): Promise<void> {
    await Promise.all([...this.swarms.values()].map((s) => s.exit()));
  }
}

/** Polls `fn` until it holds, or throws after `timeoutMs`. */
export async function until(what: string, fn: () => Promise<boolean>, timeoutMs = 300_000): Promise<void> {
  const t0 = Date.now();
  let last = '';
  while (Date.now() - t0 < timeoutMs) {
    if (await fn().catch((e: Error) => { last = `: ${e.message}`; return false; })) return;
    await sleep(250);
  }
  throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}${last}`);
}
