// Sites, the RTT between each site and each node (measured by agents or
// declared by an operator), and routing clients to the nearest replicas.
import { OutpostError } from '../../core/errors.js';
import { NAME_RE } from '../../core/manifest.js';
import { rankEndpoints, type RankedEndpoint } from '../../core/routing.js';
import type { NodeRecord, SiteRecord } from '../../core/types.js';
import { loggedByWriter, type Writer } from '../writer.js';
import type { Nodes } from './nodes.js';
import type { SiteView } from '../../contract/api.js';

export class Sites {
  private readonly listeners: ((sites: SiteRecord[]) => void)[] = [];

  constructor(private readonly w: Writer, private readonly nodes: Nodes, private readonly now: () => number) {}

  /** `f` hears the whole site list whenever it changes (agents re-probe) */
  subscribe(f: (sites: SiteRecord[]) => void): void {
    this.listeners.push(f);
  }

  list(): SiteRecord[] {
    return this.w.state.list('sites');
  }

  async add(name: string, probe: string): Promise<SiteRecord> {
    if (!NAME_RE.test(name)) throw new OutpostError('E_INVALID', 'site name must be [a-z0-9-]', { path: 'name' });
    if (probe.length > 255 || !/^[^\s:]+:\d{1,5}$|^\[[0-9a-fA-F:.]+\]:\d{1,5}$/.test(probe) || Number(probe.split(':').pop()) > 65535 || Number(probe.split(':').pop()) < 1) {
      throw new OutpostError('E_INVALID', `probe must be HOST:PORT (a TCP address that answers), got "${probe}"`, { path: 'probe' });
    }
    const site = await this.w.run((s) => {
      const doc: SiteRecord = { name, probe, createdAt: s.site(name)?.createdAt ?? this.now() };
      return { changes: [{ kind: 'sites', key: name, doc }], result: doc };
    });
    this.announce();
    return site;
  }

  async remove(name: string): Promise<void> {
    await this.w.run((s) => {
      if (!s.site(name)) throw new OutpostError('E_NOT_FOUND', `no site named "${name}"`, { path: 'name' });
      const nodes = s.list('nodes').filter((n) => n.rttMs[name] !== undefined || n.declaredRttMs?.[name] !== undefined).map((n) => {
        const { [name]: _a, ...rtt } = n.rttMs;
        const { [name]: _b, ...declared } = n.declaredRttMs ?? {};
        return { kind: 'nodes' as const, key: n.name, doc: { ...n, rttMs: rtt, declaredRttMs: declared } };
      });
      return { changes: [{ kind: 'sites', key: name, doc: null }, ...nodes], result: undefined };
    });
    this.announce();
  }

  /** Sites with every node's RTT to them (declared wins over measured). */
  view(): SiteView[] {
    const nodes = this.w.state.list('nodes');
    return this.list().map((s) => {
      const rttMs: Record<string, number> = {};
      const declared: string[] = [];
      for (const n of nodes) {
        const d = n.declaredRttMs?.[s.name];
        const m = n.rttMs[s.name];
        if (d !== undefined) { rttMs[n.name] = d; declared.push(n.name); } else if (m !== undefined) rttMs[n.name] = m;
      }
      return { ...s, rttMs, declared };
    });
  }

  setMeasured(node: string, rttMs: Record<string, number>): void {
    const known = this.w.state;
    const clean: Record<string, number> = {};
    for (const [site, v] of Object.entries(rttMs)) if (known.site(site) && Number.isFinite(v) && v >= 0) clean[site] = v;
    this.nodes.update(node, (n) => (JSON.stringify(n.rttMs) === JSON.stringify(clean) ? null : { ...n, rttMs: clean })).catch(loggedByWriter);
  }

  /** RTTs an operator declares for a node that cannot probe; null removes one. */
  async declare(node: string, values: Record<string, number | null>): Promise<NodeRecord> {
    const s = this.w.state;
    const n = s.node(node);
    if (!n) throw new OutpostError('E_NOT_FOUND', `no node named "${node}"`, { path: 'node' });
    const declared = { ...(n.declaredRttMs ?? {}) };
    for (const [site, v] of Object.entries(values)) {
      if (!s.site(site)) throw new OutpostError('E_INVALID', `unknown site "${site}"`, { path: site });
      if (v === null) delete declared[site];
      else if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw new OutpostError('E_INVALID', `RTT must be a finite number of ms >= 0, got ${JSON.stringify(v)}`, { path: site });
      else declared[site] = v;
    }
    return (await this.nodes.update(node, (x) => ({ ...x, declaredRttMs: declared })))!;
  }

  endpoints(app: string, site: string, items?: number): RankedEndpoint[] {
    const s = this.w.state;
    const a = s.app(app);
    if (!a) throw new OutpostError('E_NOT_FOUND', `no app named "${app}"`);
    if (!s.site(site)) throw new OutpostError('E_NOT_FOUND', `no site named "${site}"`, { path: 'site' });
    const n = items ?? a.spec.placement.demand.find((d) => d.site === site)?.items ?? 1;
    const reps = s.appReplicas(app);
    const nodes = [...new Set(reps.map((r) => r.node))].map((x) => s.node(x)!).filter(Boolean);
    return rankEndpoints(app, reps, nodes, site, n);
  }

  /** Every connected agent gets the sites (after a change, here or by another instance). */
  announce(): void {
    const sites = this.list();
    for (const f of this.listeners) f(sites);
  }
}
