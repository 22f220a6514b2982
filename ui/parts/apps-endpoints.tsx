// Where each site's requests for the app go: for every site, the app's healthy
// endpoints nearest first (GET /v1/apps/NAME/endpoints?site=S: one request per
// site, not per replica), with the predicted request time and the RTT. Made
// again when an event names the app or a node, and every 5 s for the RTTs,
// which no event announces.
import type { AppDetail, RankedEndpoint, SiteView, WhoAmI } from '../../src/contract/api.js';
import { api, enc } from '../api.js';
import { useLoad } from '../hooks.js';
import { ErrorBox, ms } from './common.js';
import { Table, type Column } from './table.js';
import { filterOver, rowsHeight } from './apps-table.js';

interface Row {
  site: string;
  /** 1 is the route: the nearest */
  rank: number;
  /** null: the site has no healthy endpoint */
  ep: RankedEndpoint | null;
}

const columns: Column<Row>[] = [
  { title: 'site', cell: (r) => (r.rank === 1 ? <b>{r.site}</b> : <span class="muted">{r.site}</span>), sort: (r) => r.site, width: '1fr' },
  { title: '#', cell: (r) => (r.ep ? r.rank : '-'), sort: (r) => r.rank, num: true, width: '2.5rem' },
  { title: 'node', cell: (r) => (r.ep ? (r.rank === 1 ? <b title="this site's route">{r.ep.node} ◀</b> : r.ep.node) : <span class="bad-text">no healthy replica</span>), sort: (r) => r.ep?.node ?? '', width: '1fr' },
  { title: 'replica', cell: (r) => <span class="mono">{r.ep?.replica ?? ''}</span>, sort: (r) => r.ep?.replica ?? '', width: '1.3fr' },
  { title: 'endpoint', cell: (r) => <span class="mono">{r.ep?.endpoint ?? ''}</span>, width: '1.4fr' },
  { title: 'predicted', cell: (r) => (r.ep ? ms(r.ep.predictedMs) : ''), sort: (r) => r.ep?.predictedMs ?? Infinity, num: true, width: '6rem' },
  { title: 'RTT', cell: (r) => (r.ep ? ms(r.ep.rttMs) : ''), sort: (r) => r.ep?.rttMs ?? Infinity, num: true, width: '5rem' },
];

export function Endpoints({ app, me }: { app: AppDetail; me: WhoAmI }) {
  const name = app.name;
  const data = useLoad(async (signal) => {
    const sites = await api<SiteView[]>('/v1/sites', { signal });
    const per = await Promise.all(sites.map((s) => api<RankedEndpoint[]>(`/v1/apps/${enc(name)}/endpoints?site=${enc(s.name)}`, { signal })));
    return sites.flatMap((s, i): Row[] => (per[i]!.length ? per[i]!.map((ep, k) => ({ site: s.name, rank: k + 1, ep })) : [{ site: s.name, rank: 1, ep: null }]));
  }, [name], { on: (e) => e.app === name || e.type.startsWith('node.'), everyMs: 5000 });
  const rows = data.data ?? [];
  const sites = new Set(rows.map((r) => r.site)).size;
  return (
    <>
      <ErrorBox error={data.error} />
      <p class="muted">
        For each site, the replicas its clients would be sent to, nearest first (predicted request time: RTT + items × per-item cost; the
        first, ◀, is the site's route). Only running, ready replicas on connected nodes are listed.
      </p>
      {data.data && sites === 0 ? (
        <p class="muted">No sites yet: <code>outpost site add NAME --probe HOST:PORT</code> makes every agent measure its RTT to one.</p>
      ) : (
        <Table label="endpoints" rows={rows} columns={columns} rowKey={(r) => `${r.site}/${r.ep?.replica ?? '-'}`} height={rowsHeight(rows.length, 480)}
          text={filterOver(rows, (r) => `${r.site} ${r.ep?.node ?? ''} ${r.ep?.replica ?? ''}`)} empty={data.data ? 'nothing here' : 'loading ...'} />
      )}
    </>
  );
}
