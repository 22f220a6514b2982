// /v1/nodes: the fleet as agents reported it, and RTTs declared by operators.
import type { FastifyInstance } from 'fastify';
import { OutpostError } from '../../core/errors.js';
import type { RouteDeps } from '../http.js';
import { page, type PageQuery } from './page.js';
import { nodeView } from './trust.js';

export function nodeRoutes(app: FastifyInstance, { cp }: RouteDeps): void {
  // ?state=&site= filter; ?limit=&after= pages (by name)
  app.get<{ Querystring: PageQuery & { state?: string; site?: string } }>('/v1/nodes', async (req, reply) => {
    const q = req.query;
    let list = cp.state.list('nodes');
    if (q.state !== undefined) list = list.filter((n) => n.state === q.state);
    if (q.site !== undefined) list = list.filter((n) => n.site === q.site);
    return page(list, (n) => n.name, q, reply).map((n) => nodeView(n, cp.state.get('identities', n.name)));
  });
  app.get<{ Params: { name: string } }>('/v1/nodes/:name', async (req) => {
    const n = cp.state.node(req.params.name);
    if (!n) throw new OutpostError('E_NOT_FOUND', `no node named "${req.params.name}"`);
    return nodeView(n, cp.state.get('identities', n.name));
  });
  // RTTs declared for a node that cannot probe: {"site": ms, "other": null to remove}
  app.put<{ Params: { name: string }; Body: Record<string, number | null> }>('/v1/nodes/:name/rtt', async (req) => {
    if (!req.body || typeof req.body !== 'object' || Array.isArray(req.body)) throw new OutpostError('E_INVALID', 'body must be an object of site -> ms');
    return cp.sites.declare(req.params.name, req.body);
  });
}
