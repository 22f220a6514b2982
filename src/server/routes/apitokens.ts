// /v1/apitokens and /v1/whoami: API tokens (who may call the API, with which
// role and scopes) and the caller's own.
import type { FastifyInstance } from 'fastify';
import { OutpostError } from '../../core/errors.js';
import { parseDuration } from '../../core/jointoken.js';
import { capabilitiesOf } from '../../core/capabilities.js';
import type { Role } from '../../core/types.js';
import type { ApiTokenBody, CreatedApiToken, WhoAmI } from '../../contract/api.js';
import { apiTokenView } from '../services/apitokens.js';
import { caller, type RouteDeps } from '../http.js';

const optionalString = (v: unknown, path: string): string | undefined => {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new OutpostError('E_INVALID', `${path} must be a string`, { path });
  return v;
};

export function apiTokenRoutes(app: FastifyInstance, { cp }: RouteDeps): void {
  app.get('/v1/whoami', async (req): Promise<WhoAmI> => {
    const p = caller(req);
    return { ...p, capabilities: [...capabilitiesOf(p.role)] };
  });

  app.get('/v1/apitokens', async () => cp.apitokens.list());
  app.post<{ Body: ApiTokenBody }>('/v1/apitokens', async (req, reply) => {
    const b = req.body;
    if (!b || typeof b !== 'object' || Array.isArray(b)) throw new OutpostError('E_INVALID', 'the body must be a JSON object {name, role, apps?, sites?, ttl?}');
    const ttl = optionalString(b.ttl, 'ttl');
    const { token, record } = await cp.apitokens.create(caller(req), {
      name: b.name, role: b.role as Role, apps: optionalString(b.apps, 'apps'), sites: optionalString(b.sites, 'sites'),
      ttlMs: ttl === undefined ? null : parseDuration(ttl, 'ttl'),
    });
    req.auth!.target = record.id;
    const answer: CreatedApiToken = { ...apiTokenView(record), token };
    return reply.status(201).send(answer);
  });
  app.delete<{ Params: { id: string } }>('/v1/apitokens/:id', async (req) => cp.apitokens.revoke(caller(req), req.params.id));
}
