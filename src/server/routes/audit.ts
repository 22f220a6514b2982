// /v1/audit: the audit log, oldest first from `since`.
import type { FastifyInstance } from 'fastify';
import { OutpostError } from '../../core/errors.js';
import { numberParam } from '../../core/query.js';
import type { AuditQuery } from '../../contract/api.js';
import type { RouteDeps } from '../http.js';

export const MAX_AUDIT_PAGE = 10_000;

export function auditRoutes(app: FastifyInstance, { cp }: RouteDeps): void {
  app.get<{ Querystring: { since?: string; limit?: string } }>('/v1/audit', async (req) => {
    const q: AuditQuery = { since: numberParam(req.query.since, 'since'), limit: numberParam(req.query.limit, 'limit') };
    if (q.since !== undefined && !(q.since >= 0)) throw new OutpostError('E_INVALID', 'since is epoch ms, 0 or more', { path: 'since' });
    if (q.limit !== undefined && !(Number.isInteger(q.limit) && q.limit >= 1 && q.limit <= MAX_AUDIT_PAGE)) throw new OutpostError('E_INVALID', `limit must be an integer from 1 to ${MAX_AUDIT_PAGE}`, { path: 'limit' });
    return cp.audit.list(q);
  });
}
