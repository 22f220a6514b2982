// outpost apps | nodes | replicas | rm
// The lists are fetched a page at a time and printed as each page arrives.
import type { ApiClient } from '../../contract/client.js';
import type { ClusterStatus, DemandView, NodeTrust, ReplicaRecord } from '../../contract/api.js';
import { routesTo, type MeasuredRoute } from '../../core/demand-routes.js';
import type { ProxyListener } from '../../core/types.js';
import { effectiveRtt } from '../../core/live.js';
import { ago, ms, printJson, printPages, table } from '../output.js';

export async function apps(client: ApiClient, json: boolean): Promise<void> {
  await printPages(client.pages('/v1/apps'), json, ['NAME', 'READY', 'IMAGE / COMMAND', 'UPDATED'],
    (a) => [a.name, `${a.running}/${a.replicas}`, a.image ?? a.command?.join(' ') ?? '', ago(a.updatedAt)]);
}

/** A node's certificate as an operator needs it: until when, and why it was last turned away. */
function certificate(t: NodeTrust | null): string | null {
  if (!t) return null;
  const until = `until ${new Date(t.certNotAfter).toISOString().slice(0, 16).replace('T', ' ')}`;
  return t.lastRefusal ? `${until}; refused ${t.lastRefusal.code}` : until;
}

/** The site proxy's listeners the node could not open (a port in use), or null. */
function proxyRefusals(listeners: ProxyListener[] | null | undefined): string | null {
  const refused = (listeners ?? []).filter((l) => l.state === 'refused');
  return refused.length ? refused.map((l) => `${l.app}:${l.port} ${l.error?.code ?? 'refused'}`).join(', ') : null;
}

export async function nodes(client: ApiClient, json: boolean): Promise<void> {
  await printPages(client.pages('/v1/nodes'), json, ['NAME', 'STATE', 'SITE', 'RUNTIME', 'ARCH', 'CPUS', 'MEMORY', 'ADDRESS', 'RTT TO SITES (ms)', 'LABELS', 'CERTIFICATE', 'PROXY'],
    (n) => [n.name, n.state, n.site, n.runtime, n.arch, n.cpus, `${Math.round(n.memoryMiB / 1024)} GiB`, n.address,
      Object.entries(effectiveRtt(n)).map(([s, v]) => `${s} ${v}`).join(', ') || null,
      Object.entries(n.labels).map(([k, v]) => `${k}=${v}`).join(',') || null, certificate(n.trust), proxyRefusals(n.proxy)]);
}

/**
 * Every replica, or one app's, page by page. An app's come from
 * /v1/replicas?app=; when it has none, its own route says whether it exists
 * (E_NOT_FOUND otherwise).
 */
async function* replicaPages(client: ApiClient, app: string | undefined): AsyncGenerator<ReplicaRecord[]> {
  if (app === undefined) return yield* client.pages('/v1/replicas');
  let n = 0;
  for await (const items of client.pages('/v1/replicas', { app })) {
    n += items.length;
    if (items.length) yield items;
  }
  if (n === 0) yield await client.appReplicas(app);
}

/**
 * With an app: each replica's routes as the site proxies measured them (the
 * sites whose requests its node answered, from GET /v1/apps/NAME/demand, one
 * request after the first page), measured p50 against the model's prediction.
 * Without one, the fleet's list stays one request a page.
 */
export async function replicas(client: ApiClient, app: string | undefined, json: boolean): Promise<void> {
  const headers = ['ID', 'APP', 'NODE', 'STATE', 'ENDPOINT', 'RESTARTS', 'IMAGE', 'CONTAINER', 'ENGINE', 'PREDICTED'];
  // a retired replica still runs for the requests the site proxies have in flight
  const cells = (r: ReplicaRecord) => [r.id, r.app, r.node, r.drain ? `${r.state} (draining)` : r.state, r.endpoint, r.restarts, ms(r.measured.imageMs), ms(r.measured.containerMs), ms(r.measured.engineMs),
    ms(r.predicted.deployMs)];
  const error = (r: ReplicaRecord) => (r.error ? `${r.error.code}: ${r.error.message}` : r.restarts > 0 && r.lastExit ? `last restart: ${r.lastExit.code}: ${r.lastExit.message}` : null);
  if (app === undefined) return printPages(replicaPages(client, app), json, [...headers, 'ERROR'], (r) => [...cells(r), error(r)]);
  // the generator below sees it narrowed
  const name = app;
  async function* withRoutes(): AsyncGenerator<(ReplicaRecord & { measuredRoutes: MeasuredRoute[] | null })[]> {
    let v: DemandView | Error | undefined;
    for await (const items of replicaPages(client, name)) {
      if (v === undefined) {
        // asked once the first page is in (an unknown app has failed by then): on the connection that page came on, where
        // asking both at once opens a second one, whose TLS handshake costs more than the request
        v = await client.demand(name).catch((e: Error) => e);
        // a control plane from before measured demand: the replicas without it
        if (v instanceof Error) console.error(`warning: no measured demand for ${name}: ${v.message}`);
      }
      const d = v;
      yield items.map((r) => ({ ...r, measuredRoutes: d instanceof Error ? null : routesTo(d, r.node) }));
    }
  }
  await printPages(withRoutes(), json, [...headers, 'SERVES', 'P50/PREDICTED', 'MODEL ERROR', 'ERROR'], (r) => {
    const m = r.measuredRoutes ?? [];
    // one entry per route, nearest first, in the same order in each column; none measured: "-"
    const list = (f: (x: MeasuredRoute) => string): string | null => (m.length ? m.map(f).join(', ') : null);
    return [...cells(r), list((x) => x.site ?? '(no site)'), list((x) => `${lat(x.totalMs.p50)}/${lat(x.predictedMs)} ms`), list((x) => (x.modelErrorPct === null ? '-' : `${Math.round(x.modelErrorPct)}%`)), error(r)];
  });
}

/** route latencies through a site proxy are often under a millisecond: two decimals there, no unit (the column has it) */
function lat(x: number | null): string {
  return x === null ? '-' : x < 10 ? x.toFixed(2) : String(Math.round(x));
}

export async function rm(client: ApiClient, app: string, json: boolean, volumes = false): Promise<void> {
  const r = await client.remove(app, { volumes });
  if (json) return printJson({ app, ...r });
  console.log(`removed ${app} (${r.removed.length} replica(s))`);
  if (!volumes) return;
  // a control plane from before --volumes answers without it: it removed nothing of the volumes
  if (!r.volumes) return console.error('warning: this control plane does not remove volumes; they stay on the nodes');
  console.log(`named volumes: removal sent to ${r.volumes.told.length} node(s)${r.volumes.told.length ? ` (${r.volumes.told.join(', ')})` : ''}`);
  if (r.volumes.unreached.length) console.error(`warning: not reached, their volumes stay: ${r.volumes.unreached.join(', ')}; run \`outpost rm ${app} --volumes\` again once they are connected`);
}

/** outpost server status: the instances, which leads, how far each is behind the store. */
export async function serverStatus(client: ApiClient, json: boolean): Promise<void> {
  const s = await client.request<ClusterStatus>('GET', '/v1/cluster');
  if (json) return printJson(s);
  const lease = s.leader ? `epoch ${s.leader.epoch}, ${s.leader.expiresInMs > 0 ? `held by ${s.leader.holder}, ${(s.leader.expiresInMs / 1000).toFixed(1)} s left` : 'expired: no leader'}` : 'none (one process leads alone)';
  console.log(`store ${s.store} at revision ${s.revision}; leader lease: ${lease}`);
  console.log(table(['INSTANCE', 'URL', 'STATE', 'LEADER', 'AGENTS', 'LAG', 'SEEN', 'STARTED'], s.instances.map((i) => [
    i.id + (i.id === s.self ? ' (this)' : ''), String(i.doc.url ?? ''), i.alive ? 'alive' : 'gone', i.leader ? 'yes' : '', Number(i.doc.agents ?? 0), i.lag,
    `${(i.seenAgoMs / 1000).toFixed(1)} s ago`, i.startedAt.slice(0, 19).replace('T', ' '),
  ])));
}
