// What the site proxies measured for the app (GET /v1/apps/NAME/demand, one
// request): per site the requests per second against the manifest's declared
// demand, errors and latency; per route (site -> the node that answered) the
// model's predicted request time against the measured p50, nearest first, and
// at the top the model's median error over the routes. Windows reach the
// control plane every few seconds and no event announces them: read again
// every 5 s, and when an event names the app or a node.
import { useMemo } from 'preact/hooks';
import type { DemandView, SiteDemand } from '../../src/contract/api.js';
import { measuredRoutes, medianModelError, type MeasuredRoute } from '../../src/core/demand-routes.js';
import { api, enc } from '../api.js';
import { useLoad } from '../hooks.js';
import { ErrorBox, lat, pct } from './common.js';
import { Table, type Column } from './table.js';
import { filterOver, rowsHeight } from './apps-table.js';
import { AutopilotPanel } from './apps-autopilot.js';

const siteName = (s: string | null): string => s ?? '(no site)';

/** the model is off by more than half: worth a look */
const offClass = (e: number | null): string => (e !== null && e > 50 ? 'warn-text' : '');
const errClass = (e: number | null): string => (e ? 'bad-text' : '');

function Rate({ s }: { s: SiteDemand }) {
  const d = s.declared;
  // measured above what the manifest declares: the plan placed for less than comes
  const over = d !== null && s.rps > d.rps;
  return (
    <span class={over ? 'warn-text' : ''} title={d ? `declared: ${d.rps} rps of ${d.items} item(s) each` : 'no demand declared for this site'}>
      {s.rps} / {d ? d.rps : '-'}
    </span>
  );
}

const siteColumns: Column<SiteDemand>[] = [
  { title: 'site', cell: (s) => siteName(s.site), sort: (s) => s.site ?? '', width: '1fr' },
  { title: 'rps measured / declared', cell: (s) => <Rate s={s} />, sort: (s) => s.rps, num: true, width: '11rem' },
  { title: 'items', cell: (s) => s.declared?.items ?? '-', num: true, width: '4rem' },
  { title: 'requests', cell: (s) => s.requests, sort: (s) => s.requests, num: true, width: '6rem' },
  { title: 'errors', cell: (s) => <span class={errClass(s.errorPct)}>{s.errors} ({pct(s.errorPct)})</span>, sort: (s) => s.errorPct ?? -1, num: true, width: '7rem' },
  { title: 'p50', cell: (s) => lat(s.totalMs.p50), sort: (s) => s.totalMs.p50 ?? Infinity, num: true, width: '6rem' },
  { title: 'p95', cell: (s) => lat(s.totalMs.p95), sort: (s) => s.totalMs.p95 ?? Infinity, num: true, width: '6rem' },
  { title: 'first byte p50', cell: (s) => lat(s.firstByteMs.p50), num: true, width: '7rem' },
  { title: 'reporting nodes', cell: (s) => s.reporters.join(', ') || '-', width: '1fr' },
];

const routeColumns: Column<MeasuredRoute>[] = [
  { title: 'site', cell: (r) => siteName(r.site), sort: (r) => r.site ?? '', width: '1fr' },
  { title: 'node', cell: (r) => r.node, sort: (r) => r.node, width: '1fr' },
  { title: 'requests', cell: (r) => r.requests, sort: (r) => r.requests, num: true, width: '6rem' },
  { title: 'errors', cell: (r) => <span class={errClass(r.errorPct)}>{pct(r.errorPct)}</span>, sort: (r) => r.errorPct ?? -1, num: true, width: '5rem' },
  { title: 'rtt', cell: (r) => lat(r.rttMs), sort: (r) => r.rttMs ?? Infinity, num: true, width: '5rem' },
  {
    title: 'service',
    cell: (r) => (r.serviceMs === null ? <span class="muted" title="no other route of the app has 100 requests: the stage model's items x per-item cost">stages</span> : <span title="learnt from the app's other routes: their measured p50 less RTT">{lat(r.serviceMs)}</span>),
    sort: (r) => r.serviceMs ?? Infinity, num: true, width: '5rem',
  },
  { title: 'predicted', cell: (r) => lat(r.predictedMs), sort: (r) => r.predictedMs ?? Infinity, num: true, width: '6rem' },
  { title: 'measured p50', cell: (r) => lat(r.totalMs.p50), sort: (r) => r.totalMs.p50 ?? Infinity, num: true, width: '7rem' },
  { title: 'p95', cell: (r) => lat(r.totalMs.p95), sort: (r) => r.totalMs.p95 ?? Infinity, num: true, width: '6rem' },
  {
    title: 'model error',
    cell: (r) => <span class={offClass(r.modelErrorPct)} data-testid="route-error" title="abs(predicted - measured p50) / measured p50">{pct(r.modelErrorPct)}</span>,
    sort: (r) => r.modelErrorPct ?? Infinity, num: true, width: '6rem',
  },
];

export function Demand({ name }: { name: string }) {
  const data = useLoad((signal) => api<DemandView>(`/v1/apps/${enc(name)}/demand`, { signal }), [name], { on: (e) => e.app === name || e.type.startsWith('node.'), everyMs: 5000 });
  const v = data.data;
  const routes = useMemo(() => (v ? measuredRoutes(v) : []), [v]);
  if (!v) return data.error ? <ErrorBox error={data.error} /> : <p class="muted">loading ...</p>;
  const median = medianModelError(routes);
  const rps = Math.round(v.sites.reduce((n, s) => n + s.rps, 0) * 1000) / 1000;
  return (
    <div data-testid="demand">
      <ErrorBox error={data.error} />
      <AutopilotPanel name={name} />
      <div class="stats">
        <div class="stat" title="over the routes measured: abs(predicted - measured p50) / measured p50">
          <b data-testid="demand-model-error" class={offClass(median)}>{pct(median)}</b><span>median model error</span>
        </div>
        <div class="stat"><b data-testid="demand-rps">{rps}</b><span>rps, last {v.rateS} s</span></div>
        <div class="stat"><b>{v.sites.reduce((n, s) => n + s.requests, 0)}</b><span>requests, last {v.spanS / 60} min</span></div>
        <div class="stat"><b>{routes.length}</b><span>routes measured</span></div>
      </div>
      {v.sites.length === 0 ? (
        <p class="muted">
          No requests measured in the last {v.spanS / 60} minutes, and no demand declared. The site proxies count the requests of apps with <code>expose</code>;
          {' '}<code>placement.demand</code> declares what each site is expected to send.
        </p>
      ) : (
        <>
          <h3>Sites</h3>
          <p class="muted">Requests through each site's proxy against the manifest's declared demand (rps over the last {v.rateS} s; the rest over {v.spanS / 60} minutes).</p>
          <Table label="demand-sites" rows={v.sites} columns={siteColumns} rowKey={(s) => siteName(s.site)} height={rowsHeight(v.sites.length, 320)}
            text={filterOver(v.sites, (s) => siteName(s.site))} />
          <h3>Routes</h3>
          <p class="muted">Each site's requests by the node that answered, nearest first: the model's predicted request time (RTT + items × per-item cost) against the measured p50.</p>
          <Table label="demand-routes" rows={routes} columns={routeColumns} rowKey={(r) => `${siteName(r.site)}/${r.node}`} height={rowsHeight(routes.length, 400)}
            text={filterOver(routes, (r) => `${siteName(r.site)} ${r.node}`)} empty="No requests measured yet: routes appear as the site proxies report them." />
        </>
      )}
    </div>
  );
}
