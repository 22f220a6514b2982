// Trust: the CA's certificate, node enrolment, join tokens, and the operator's
// decisions about nodes (approve, revoke, remove).
import type { FastifyInstance } from 'fastify';
import { OutpostError } from '../../core/errors.js';
import { parseDuration } from '../../core/jointoken.js';
import type { NodeIdentity, NodeRecord } from '../../core/types.js';
import type { CreatedDevice, CreatedToken, DeviceBody, EnrolBody, JoinTokenView, NodeTrust, NodeView, TokenBody } from '../../contract/api.js';
import { bearerToken } from '../../core/devices.js';
import type { RouteDeps } from '../http.js';

export function trustView(id: NodeIdentity | undefined): NodeTrust | null {
  if (!id) return null;
  return {
    certNotAfter: id.certNotAfter, enrolledAt: id.enrolledAt, renewedAt: id.renewedAt, tokenId: id.tokenId,
    approved: id.approved, revokedAt: id.revokedAt, lastRefusal: id.lastRefusal ?? null,
  };
}

export function nodeView(n: NodeRecord, id: NodeIdentity | undefined): NodeView {
  return { ...n, trust: trustView(id) };
}

const tokenView = ({ secretHash: _h, ...t }: { secretHash: string } & JoinTokenView): JoinTokenView => t;

function bodyObject<T>(b: unknown): Partial<T> {
  if (b === undefined || b === null) return {};
  if (typeof b !== 'object' || Array.isArray(b)) throw new OutpostError('E_INVALID', 'the body must be a JSON object');
  return b as Partial<T>;
}

export function trustRoutes(app: FastifyInstance, { cp, gateway }: RouteDeps, caPem: string | null, hubCaPem: string | null): void {
  app.get('/v1/ca', async (_req, reply) => {
    if (!caPem) throw new OutpostError('E_NOT_FOUND', 'this control plane runs without TLS (--insecure): it has no CA to trust');
    return reply.type('application/x-pem-file').send(caPem);
  });
  // what devices verify the nodes' hubs with (the hubs' certificates name their nodes)
  app.get('/v1/hub-ca', async (_req, reply) => {
    if (!hubCaPem) throw new OutpostError('E_NOT_FOUND', 'this control plane runs without TLS (--insecure): hubs get no certificates from it');
    return reply.type('application/x-pem-file').send(hubCaPem);
  });

  // what outside services verify the replicas' identity tokens with (a JWKS)
  app.get('/v1/identity/keys', async () => {
    if (!cp.workload) throw new OutpostError('E_NOT_FOUND', 'this control plane has no workload identity key');
    return cp.workload.jwks();
  });

  app.post<{ Body: EnrolBody }>('/v1/enroll', async (req) => {
    const b = bodyObject<EnrolBody>(req.body);
    if (typeof b.name !== 'string') throw new OutpostError('E_INVALID', 'name is required', { path: 'name' });
    if (typeof b.csr !== 'string' || b.csr.length > 8192) throw new OutpostError('E_INVALID', 'csr must be a PEM certificate request', { path: 'csr' });
    const auth = req.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
    try {
      return await cp.identities.enrol({ name: b.name, csr: b.csr, token, ...(b.hub !== undefined ? { hub: b.hub } : {}) });
    } catch (e) {
      if (e instanceof OutpostError) {
        gateway.countRefusal(e.code);
        req.log.warn({ node: b.name, code: e.code }, 'enrolment refused');
      }
      throw e;
    }
  });

  app.get('/v1/tokens', async () => cp.tokens.list().map(tokenView));
  app.post<{ Body: TokenBody }>('/v1/tokens', async (req, reply) => {
    const b = bodyObject<TokenBody>(req.body);
    if (b.ttl !== undefined && typeof b.ttl !== 'string') throw new OutpostError('E_INVALID', 'ttl is a duration such as 30m', { path: 'ttl' });
    if (b.labels !== undefined && (typeof b.labels !== 'object' || b.labels === null || Array.isArray(b.labels))) throw new OutpostError('E_INVALID', 'labels must be an object', { path: 'labels' });
    if (b.note !== undefined && typeof b.note !== 'string') throw new OutpostError('E_INVALID', 'note must be a string', { path: 'note' });
    const { token, record } = await cp.tokens.create({
      ttlMs: parseDuration(b.ttl ?? '1h', 'ttl'), uses: b.uses ?? 1, site: b.site ?? null, labels: b.labels ?? {}, note: b.note,
    });
    const answer: CreatedToken = { ...tokenView(record), token };
    return reply.status(201).send(answer);
  });
  app.delete<{ Params: { id: string } }>('/v1/tokens/:id', async (req) => tokenView(await cp.tokens.revoke(req.params.id)));

  app.get('/v1/devices', async () => cp.devices.list().map(({ secretHash: _h, ...d }) => d));
  app.post<{ Body: DeviceBody }>('/v1/devices', async (req, reply) => {
    const b = bodyObject<DeviceBody>(req.body);
    if (typeof b.name !== 'string') throw new OutpostError('E_INVALID', 'name is required', { path: 'name' });
    const { record, secret } = await cp.devices.create(b.name, b.streams as string[], b.site ?? null);
    const { secretHash: _h, ...view } = record;
    const answer: CreatedDevice = { ...view, secret, bearer: bearerToken(record.name, secret) };
    return reply.status(201).send(answer);
  });
  app.delete<{ Params: { name: string } }>('/v1/devices/:name', async (req) => {
    await cp.devices.remove(req.params.name);
    return { removed: req.params.name };
  });

  app.post<{ Params: { name: string } }>('/v1/nodes/:name/approve', async (req) => {
    const t = trustView(await cp.identities.approve(req.params.name));
    gateway.resync(req.params.name);
    return t;
  });
  app.post<{ Params: { name: string } }>('/v1/nodes/:name/revoke', async (req) => {
    const id = await cp.identities.revoke(req.params.name);
    gateway.disconnect(req.params.name, 'E_NODE_REVOKED');
    return trustView(id);
  });
  app.delete<{ Params: { name: string } }>('/v1/nodes/:name', async (req) => {
    // a node still connected (approved or not) is revoked first: removing it would leave it its socket
    if (gateway.isConnected(req.params.name)) throw new OutpostError('E_CONFLICT', `node ${req.params.name} is connected: \`outpost node revoke ${req.params.name}\` first`);
    await cp.identities.remove(req.params.name);
    gateway.disconnect(req.params.name, 'E_UNAUTHORIZED');
    return { removed: req.params.name };
  });
}
