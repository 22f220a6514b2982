// /v1/cluster: the control plane's instances, the leader and its lease, and
// how far each instance's state is behind the store (`outpost server status`).
import type { FastifyInstance } from 'fastify';
import type { RouteDeps } from '../http.js';

export function clusterRoutes(app: FastifyInstance, { cluster }: RouteDeps): void {
  app.get('/v1/cluster', async () => cluster());
}
