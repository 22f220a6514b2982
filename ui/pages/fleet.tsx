// Fleet: every site and node with its state, runtime, reserved and free
// resources and hub queue, and the latency map (site x node RTTs, each site's
// route for a chosen app). Lists come whole (paged by 5,000), once per change.
import { useMemo, useState } from 'preact/hooks';
import type { AppView, NodeView, RankedEndpoint, ReplicaRecord, SiteView } from '../../src/contract/api.js';
import { api, enc, list } from '../api.js';
import { useLoad } from '../hooks.js';
import { ago, Badge, ErrorBox, Section } from '../parts/common.js';
import { Heatmap, type HeatData } from '../parts/heatmap.js';
import { Table, type Column } from '../parts/table.js';
import type { PageProps } from '../main.js';

interface NodeRow extends NodeView {
  replicas: number;
  cpuUsed: number;
  memUsed: number;
}

/** What the replicas on each node reserve, by their app's current spec: every replica record counts, as the planner counts them (src/core/live.ts liveSnapshot). */
export function reservations(replicas: ReplicaRecord[], apps: AppView[]): Map<string, { n: number; cpu: number; mem: number }> {
  const spec = new Map(apps.map((a) => [a.name, a.spec.resources]));
  const out = new Map<string, { n: number; cpu: number; mem: number }>();
  for (const r of replicas) {
    const res = spec.get(r.app);
    const o = out.get(r.node) ?? { n: 0, cpu: 0, mem: 0 };
    o.n++;
    o.cpu += res?.cpu ?? 0;
    o.mem += res?.memoryMiB ?? 0;
    out.set(r.node, o);
  }
  return out;
}

const columns: Column<NodeRow>[] = [
  { title: 'node', cell: (n) => <b>{n.name}</b>, sort: (n) => n.name, width: '1.4fr' },
  { title: 'site', cell: (n) => n.site ?? '-', sort: (n) => n.site ?? '', width: '1fr' },
  { title: 'state', cell: (n) => <Badge state={n.state} />, sort: (n) => n.state, width: '7rem' },
  { title: 'runtime', cell: (n) => n.runtime, sort: (n) => n.runtime, width: '5rem' },
  { title: 'replicas', cell: (n) => n.replicas, sort: (n) => n.replicas, num: true, width: '5rem' },
  { title: 'CPU reserved / free', cell: (n) => `${n.cpuUsed.toFixed(2)} / ${(n.cpus - n.cpuUsed).toFixed(2)}`, sort: (n) => n.cpus - n.cpuUsed, num: true, width: '9rem' },
  { title: 'memory MiB reserved / free', cell: (n) => `${n.memUsed} / ${n.memoryMiB - n.memUsed}`, sort: (n) => n.memoryMiB - n.memUsed, num: true, width: '11rem' },
  { title: 'hub queue', cell: (n) => (n.hubStats ? n.hubStats.queueDepth : '-'), sort: (n) => n.hubStats?.queueDepth ?? -1, num: true, width: '5.5rem' },
  { title: 'seen', cell: (n) => ago(n.lastSeen), sort: (n) => n.lastSeen, width: '6rem' },
];

export default function Fleet(_: PageProps) {
  const nodes = useLoad((s) => list('/v1/nodes', {}, s), [], { on: (e) => e.type.startsWith('node.'), everyMs: 5000 });
  const sites = useLoad((s) => api<SiteView[]>('/v1/sites', { signal: s }), [], { everyMs: 5000 });
  const apps = useLoad((s) => list('/v1/apps', {}, s), [], { on: (e) => e.type.startsWith('app.') });
  const replicas = useLoad((s) => list('/v1/replicas', {}, s), [], { on: (e) => e.type.startsWith('replica.') || e.type === 'app.removed' || e.type === 'node.lost' });
  const [app, setApp] = useState<string>('');
  const siteNames = (sites.data ?? []).map((s) => s.name);
  const routes = useLoad(async (signal) => {
    if (!app) return {} as Record<string, string | null>;
    const out: Record<string, string | null> = {};
    await Promise.all(siteNames.map(async (s) => {
      const eps = await api<RankedEndpoint[]>(`/v1/apps/${enc(app)}/endpoints?site=${enc(s)}`, { signal });
      out[s] = eps[0]?.node ?? null;
    }));
    return out;
  }, [app, siteNames.join(',')], { on: (e) => e.app === app || e.type.startsWith('node.'), everyMs: 5000 });

  const rows: NodeRow[] = useMemo(() => {
    const used = reservations(replicas.data ?? [], apps.data ?? []);
    return (nodes.data ?? []).map((n) => { const u = used.get(n.name); return { ...n, replicas: u?.n ?? 0, cpuUsed: u?.cpu ?? 0, memUsed: u?.mem ?? 0 }; });
  }, [nodes.data, replicas.data, apps.data]);

  const heat: HeatData = useMemo(() => {
    const ordered = [...(nodes.data ?? [])].sort((a, b) => (a.site ?? '~').localeCompare(b.site ?? '~') || a.name.localeCompare(b.name));
    const rtt: HeatData['rtt'] = {};
    const declared: HeatData['declared'] = {};
    for (const s of sites.data ?? []) {
      rtt[s.name] = s.rttMs;
      declared[s.name] = new Set(s.declared);
    }
    return { sites: siteNames, nodes: ordered.map((n) => ({ name: n.name, site: n.site })), rtt, declared, route: routes.data ?? {} };
  }, [nodes.data, sites.data, routes.data]);

  const count = (st: string): number => (nodes.data ?? []).filter((n) => n.state === st).length;
  const running = (replicas.data ?? []).filter((r) => r.state === 'running').length;
  return (
    <>
      <ErrorBox error={nodes.error ?? sites.error ?? apps.error ?? replicas.error ?? routes.error} />
      <section class="card stats" data-testid="fleet-summary">
        <div class="stat"><b data-testid="nodes-ready">{count('ready')}</b><span>nodes ready</span></div>
        <div class="stat"><b data-testid="nodes-unreachable">{count('unreachable')}</b><span>unreachable</span></div>
        <div class="stat"><b>{count('pending')}</b><span>awaiting approval</span></div>
        <div class="stat"><b data-testid="sites-count">{siteNames.length}</b><span>sites</span></div>
        <div class="stat"><b data-testid="apps-count">{(apps.data ?? []).length}</b><span>apps</span></div>
        <div class="stat"><b data-testid="replicas-running">{running}</b><span>replicas running of {(replicas.data ?? []).length}</span></div>
      </section>
      <Section title="Latency map" right={
        <label class="row">route of app
          <select value={app} onChange={(e) => setApp((e.target as HTMLSelectElement).value)} aria-label="app whose routes are drawn">
            <option value="">(none)</option>
            {(apps.data ?? []).map((a) => <option value={a.name}>{a.name}</option>)}
          </select>
        </label>
      }>
        {siteNames.length === 0 ? <p class="muted">No sites yet: <code>outpost site add NAME --probe HOST:PORT</code> makes every agent measure its RTT to one.</p> : <Heatmap data={heat} />}
      </Section>
      <Section title={`Nodes (${rows.length})`}>
        <Table label="nodes" rows={rows} columns={columns} rowKey={(n) => n.name} text={(n) => `${n.name} ${n.site ?? ''} ${n.state} ${n.runtime}`} height={480}
          empty="No nodes yet: start one with `outpost agent --server URL --join-token-file FILE`." />
      </Section>
    </>
  );
}
