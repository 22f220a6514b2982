// GET /metrics on the API (a token with metrics:read: what Prometheus sends
// as its bearer token), and the timing of every API request for it.
import type { FastifyInstance } from 'fastify';
import type { ServerMetrics } from './metrics.js';

export function metricsRoutes(app: FastifyInstance, metrics: ServerMetrics): void {
  app.addHook('onResponse', async (req, reply) => {
    metrics.request(req.method, req.routeOptions.url, reply.statusCode, reply.elapsedTime / 1000, req.auth?.error ?? null);
  });
  app.get('/metrics', async (_req, reply) => {
    const r = await metrics.render();
    return reply.type(r.type).send(r.text);
  });
}
