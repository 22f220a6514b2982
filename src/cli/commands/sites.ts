// outpost sites | site add | site rm | site rtt | endpoints | model
import { OutpostError } from '../../core/errors.js';
import type { TermError } from '../../contract/api.js';
import type { ApiClient } from '../../contract/client.js';
import { printJson, table } from '../output.js';

export async function sites(client: ApiClient, json: boolean): Promise<void> {
  const list = await client.sites();
  if (json) return printJson(list);
  if (list.length === 0) return console.log('no sites; add one with `outpost site add NAME --probe HOST:PORT`');
  console.log(table(['SITE', 'PROBE', 'RTT FROM EACH NODE (ms; * declared)'], list.map((s) => [s.name, s.probe,
    Object.entries(s.rttMs).sort((a, b) => a[1] - b[1]).map(([n, v]) => `${n} ${v}${s.declared.includes(n) ? '*' : ''}`).join(', ') || null])));
}

export async function siteAdd(client: ApiClient, name: string, probe: string, json: boolean): Promise<void> {
  const s = await client.addSite(name, probe);
  if (json) return printJson(s);
  console.log(`site ${s.name} added (probe ${s.probe}); agents measure their RTT to it now`);
}

export async function siteRm(client: ApiClient, name: string): Promise<void> {
  await client.removeSite(name);
  console.log(`site ${name} removed`);
}

export async function siteRtt(client: ApiClient, site: string, node: string, ms: string): Promise<void> {
  const v = ms === 'none' ? null : Number(ms);
  if (v !== null && !(Number.isFinite(v) && v >= 0)) throw new OutpostError('E_USAGE', `MS must be a number >= 0 or "none", got "${ms}"`, { path: 'ms' });
  await client.declareRtt(node, { [site]: v });
  console.log(v === null ? `declared RTT from ${site} to ${node} removed` : `declared RTT from ${site} to ${node}: ${v} ms (wins over its probes)`);
}

export async function endpoints(client: ApiClient, app: string, site: string, items: string | undefined, json: boolean): Promise<void> {
  // the server reads items as Number() does, and names it when it is not a count
  const list = await client.endpoints(app, site, items === undefined ? undefined : Number(items));
  if (json) return printJson(list);
  if (list.length === 0) return console.log(`${app} has no healthy endpoint`);
  console.log(table(['ENDPOINT', 'NODE', 'REPLICA', 'RTT', 'PREDICTED'], list.map((e) => [e.endpoint, e.node, e.replica,
    e.rttMs === null ? 'unknown' : `${e.rttMs} ms`, e.predictedMs === null ? 'unknown' : `${e.predictedMs} ms`])));
}

export async function model(client: ApiClient, json: boolean): Promise<void> {
  const m = await client.model();
  if (json) return printJson(m);
  if (m.samples === 0) return console.log('no deployments measured yet');
  const row = (name: string, e: TermError) => [name, e.n, e.medianPct === null ? '-' : `${e.medianPct}%`, e.p90Pct === null ? '-' : `${e.p90Pct}%`];
  console.log(`model error over ${m.samples} deployments (|predicted - measured| / measured)`);
  console.log(table(['TERM', 'N', 'MEDIAN', 'P90'], [
    row('T_image (pulls only)', m.terms.imageMs), row('T_container', m.terms.containerMs), row('T_engine', m.terms.engineMs),
    row('T_deploy', m.terms.deployMs), row('T_deploy, cold image', m.cold.terms.deployMs), row('T_deploy, cached image', m.warm.terms.deployMs),
  ]));
}
