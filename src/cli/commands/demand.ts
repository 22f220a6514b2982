// outpost demand APP: what the site proxies measured, per site against the
// declared demand, per route against the model's predicted latency.
import type { ApiClient } from '../../contract/client.js';
import { printJson, table } from '../output.js';

export async function demand(client: ApiClient, app: string, json: boolean): Promise<void> {
  const v = await client.demand(app);
  if (json) return printJson(v);
  if (v.sites.length === 0) return console.log(`no requests measured for ${app} in the last ${v.spanS / 60} minutes, and no demand declared (requests are counted by the site proxies: the app needs \`expose\`)`);
  console.log(`${app}: requests through the site proxies in the last ${v.spanS / 60} minutes (rps: the last minute)`);
  console.log(table(['SITE', 'RPS', 'DECLARED', 'REQUESTS', 'ERRORS', 'P50', 'P95', 'FIRST BYTE P50', 'P95'], v.sites.map((s) => [
    s.site ?? '(no site)', s.rps, s.declared ? `${s.declared.rps} rps x ${s.declared.items}` : null, s.requests, pct(s.errorPct),
    lat(s.totalMs.p50), lat(s.totalMs.p95), lat(s.firstByteMs.p50), lat(s.firstByteMs.p95),
  ])));
  // the prediction: the RTT plus the service time learnt from the app's other routes ('stages': none learnt, the stage model's)
  const routes = v.sites.flatMap((s) => s.routes.map((r) => [s.site ?? '(no site)', r.node, r.requests, pct(r.errorPct), lat(r.rttMs), r.serviceMs === null ? 'stages' : lat(r.serviceMs), lat(r.predictedMs), lat(r.totalMs.p50), pct(r.modelErrorPct)]));
  if (routes.length === 0) return;
  console.log('');
  console.log(table(['SITE', 'NODE', 'REQUESTS', 'ERRORS', 'RTT', 'SERVICE', 'PREDICTED', 'MEASURED P50', 'MODEL ERROR'], routes));
}

/** latencies through a site proxy are often under a millisecond: two decimals there */
function lat(x: number | null): string | null {
  return x === null ? null : x < 10 ? `${x.toFixed(2)} ms` : `${Math.round(x)} ms`;
}

function pct(x: number | null): string | null {
  return x === null ? null : `${x.toFixed(1)}%`;
}
