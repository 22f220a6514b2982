// /v1/sites: where requests come from, and each node's RTT to them.
import type { FastifyInstance } from 'fastify';
import { OutpostError } from '../../core/errors.js';
import type { RouteDeps } from '../http.js';

export function siteRoutes(app: FastifyInstance, { cp }: RouteDeps): void {
  app.get('/v1/sites', async () => cp.sites.view());
  app.post<{ Body: { name?: unknown; probe?: unknown } }>('/v1/sites', async (req, reply) => {
    const b = req.body ?? {};
    if (typeof b.name !== 'string') throw new OutpostError('E_INVALID', 'name is required', { path: 'name' });
    if (typeof b.probe !== 'string') throw new OutpostError('E_INVALID', 'probe (HOST:PORT) is required', { path: 'probe' });
    void reply.status(201);
    return cp.sites.add(b.name, b.probe);
  });
  app.delete<{ Params: { name: string } }>('/v1/sites/:name', async (req) => {
    await cp.sites.remove(req.params.name);
    return { removed: req.params.name };
  });
}
