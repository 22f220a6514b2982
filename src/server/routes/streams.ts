// /v1/streams: window results from the nodes' data hubs, and each hub's accounting.
import type { FastifyInstance } from 'fastify';
import { numberParam } from '../../core/query.js';
import type { StreamRow } from '../../core/types.js';
import type { ControlPlane } from '../controlplane.js';
import type { RouteDeps } from '../http.js';
import type { StreamSummary } from '../streams.js';

export function streamRoutes(app: FastifyInstance, { cp }: RouteDeps): void {
  app.get('/v1/streams', async () => streamsView(cp, await cp.streams?.summary() ?? []));
  app.get<{ Params: { name: string }; Querystring: { node?: string; from?: string; to?: string; limit?: string } }>('/v1/streams/:name', async (req) => {
    const q = req.query;
    return await cp.streams?.windows(req.params.name, { node: q.node, from: numberParam(q.from, 'from'), to: numberParam(q.to, 'to'), limit: numberParam(q.limit, 'limit') }) ?? [];
  });
}

/** One row per (node, stream): windows held here, and that node's hub accounting for the stream. */
function streamsView(cp: ControlPlane, held: StreamSummary[]): StreamRow[] {
  const rows = new Map(held.map((h) => [`${h.node}/${h.stream}`, { ...h }]));
  const nodes = cp.state.list('nodes');
  for (const n of nodes) {
    for (const s of Object.keys(n.hubStats?.streams ?? {})) {
      if (!rows.has(`${n.name}/${s}`)) rows.set(`${n.name}/${s}`, { node: n.name, stream: s, windows: 0, firstStart: null, lastEnd: null });
    }
  }
  return [...rows.values()].sort((a, b) => a.stream.localeCompare(b.stream) || a.node.localeCompare(b.node)).map((r) => {
    const hs = cp.state.node(r.node)?.hubStats ?? null;
    const s = hs?.streams[r.stream] ?? null;
    return {
      ...r,
      pointsIn: s?.pointsIn ?? null, bytesIn: s?.bytesIn ?? null, rejected: s?.rejected ?? null, late: s?.late ?? null, windowsEmitted: s?.windows ?? null,
      hub: hs && { bytesIn: hs.bytesIn, bytesForwarded: hs.bytesForwarded, reduction: hs.reduction, queueDepth: hs.queueDepth, oldestUnsentMs: hs.oldestUnsentMs, rejected: hs.rejected },
    };
  });
}
