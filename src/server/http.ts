// The HTTP API's frame: the server, who calls and whether they may (the
// table is src/core/capabilities.ts), the audit log of what they did, the
// error shape and the manifest body parser. Routes live per resource in src/server/routes/.
// Errors leave in one shape, {"error": {"code", "message", "path"?}}.
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { OutpostError, toOutpostError } from '../core/errors.js';
import { parseManifestText } from '../core/manifest.js';
import type { ControlPlane } from './controlplane.js';
import type { AgentGateway } from './gateway.js';
import { audited, refuseRole, refuseScope, ruleFor, targetOf, type Principal, type RouteRule } from '../core/capabilities.js';
import { parseJoinToken } from '../core/jointoken.js';
import { claimedId } from './services/apitokens.js';
import { apiTokenRoutes } from './routes/apitokens.js';
import { auditRoutes } from './routes/audit.js';
import { eventRoutes } from './routes/events.js';
import { appRoutes } from './routes/apps.js';
import { nodeRoutes } from './routes/nodes.js';
import { siteRoutes } from './routes/sites.js';
import { secretRoutes } from './routes/secrets.js';
import { streamRoutes } from './routes/streams.js';
import { trustRoutes } from './routes/trust.js';
import { clusterRoutes } from './routes/cluster.js';
import { execRoutes } from './exec.js';
import type { ClusterStatus } from './cluster.js';
import { backupRoutes, type BackupSource } from './routes/backup.js';
import type { TlsMaterial } from './trust/authority.js';
import type { ServerMetrics } from './metrics.js';
import { metricsRoutes } from './metrics-route.js';
import { uiRoutes } from './ui-route.js';
import fastifyCompress from '@fastify/compress';

export interface RouteDeps {
  cp: ControlPlane;
  gateway: AgentGateway;
  /** the instances and the leader (one instance on SQLite) */
  cluster: () => Promise<ClusterStatus>;
  /** what routes count beyond their requests (exec sessions); null in tests of the API alone */
  metrics: ServerMetrics | null;
  log: Logger;
}

/** What the auth hooks learnt of a request, for its route (the caller) and the audit log. */
export interface AuthContext {
  rule: RouteRule | undefined;
  /** the route exists (a missing one answers 404 to a caller with a token) */
  known: boolean;
  /** `METHOD /path`, the path as fastify declares it */
  route: string;
  principal: Principal | null;
  /** the token id the bearer claimed, for the audit log of a refusal */
  claimed: string;
  /** what it acted on; a route may set it (a new token's id) */
  target: string | null;
  error: string | null;
}

declare module 'fastify' {
  interface FastifyRequest {
    auth: AuthContext | null;
  }
}

/** The caller of a route that needs a token (the hooks made sure there is one). */
export function caller(req: FastifyRequest): Principal {
  const p = req.auth?.principal;
  if (!p) throw new OutpostError('E_UNAUTHORIZED', 'no API token');
  return p;
}

export function buildApi(cp: ControlPlane, gateway: AgentGateway, log: Logger, tls: TlsMaterial | null, cluster: RouteDeps['cluster'], backup: BackupSource | null = null, routes: string[] = [], metrics: ServerMetrics | null = null): FastifyInstance {
  // fastify's own per-request logging stays off; errors are logged by the handler below.
  // With TLS, a client may present a certificate (agents do: it is their
  // identity at the agent gateway); API clients authenticate with a token.
  // sessions resume for an hour (the gateway checks the certificate's dates itself: a resumed session skips verification)
  const https = tls ? { key: tls.key, cert: tls.cert, ca: [tls.ca.certPem], requestCert: true, rejectUnauthorized: false, ticketKeys: tls.ticketKeys, sessionTimeout: 3600 } : null;
  const app = (https ? Fastify({ logger: false, bodyLimit: 4 * 1024 * 1024, https }) : Fastify({ logger: false, bodyLimit: 4 * 1024 * 1024 })) as unknown as FastifyInstance;
  app.decorateRequest('auth', null);
  // every route, as declared: src/core/capabilities.ts must name each (test/roles.test.ts checks)
  app.addHook('onRoute', (r) => { for (const m of [r.method].flat()) if (m !== 'HEAD') routes.push(`${m} ${r.url}`); });
  authHooks(app, cp);
  // JSON answers (a 1,000-node list is 700 KiB) and the dashboard's files go
  // compressed to a client that asks (browsers do; the CLI does not). Streamed
  // text (logs) is left alone: a compressor would hold its lines back.
  void app.register(fastifyCompress, { global: true, threshold: 2048, customTypes: /^(application\/json|text\/html|text\/css|application\/javascript|text\/javascript)\b/ });
  if (metrics) metricsRoutes(app, metrics);

  // a manifest may come as YAML (or JSON) text, parsed here with the same line
  // and column errors as `outpost plan`: the CLI sends its file as it is, so
  // it needs no YAML parser or schema of its own to start
  app.addContentTypeParser(['application/yaml', 'application/x-yaml', 'text/yaml'], { parseAs: 'string' }, (_req, body, done) => {
    try {
      done(null, parseManifestText(body as string));
    } catch (e) {
      done(e as Error, undefined);
    }
  });

  app.setErrorHandler((err, req, reply) => {
    const e = toOutpostError(err);
    if (req.auth) req.auth.error = e.code;
    if (e.status >= 500) log.error({ err }, 'request failed');
    void reply.status(e.status).send({ error: e.toJSON() });
  });
  app.setNotFoundHandler((req, reply) => {
    if (req.auth) req.auth.error = 'E_NOT_FOUND';
    void reply.status(404).send({ error: { code: 'E_NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` } });
  });

  // the routes in a plugin of their own (`app` is its instance), registered
  // after the compressor: it picks the routes it compresses as they are added
  void app.register(async (app) => {
    app.get('/healthz', async () => ({ ok: true }));
    const deps: RouteDeps = { cp, gateway, cluster, metrics, log };
    appRoutes(app, deps);
    nodeRoutes(app, deps);
    siteRoutes(app, deps);
    secretRoutes(app, deps);
    streamRoutes(app, deps);
    clusterRoutes(app, deps);
    trustRoutes(app, deps, tls?.trustPem ?? null, tls?.hubCa.certPem ?? null);
    backupRoutes(app, deps, backup);
    apiTokenRoutes(app, deps);
    auditRoutes(app, deps);
    eventRoutes(app, deps);
    execRoutes(app, deps);
    await app.register(uiRoutes);
  });
  return app;
}

/**
 * Who calls, and whether they may: the token is checked when the request
 * arrives (and its role against the route's capability, before any body is
 * read); the target's scope once the body is parsed (a manifest names its
 * app). Once answered, the call goes to the audit log if it changed
 * something, read logs or a backup, or was refused.
 */
function authHooks(app: FastifyInstance, cp: ControlPlane): void {
  app.addHook('onRequest', async (req) => {
    const url = req.routeOptions.url;
    const rule = url === undefined ? undefined : ruleFor(req.method, url);
    const ctx: AuthContext = { rule, known: url !== undefined, route: `${req.method} ${url ?? req.url.split('?')[0]}`, principal: null, claimed: '-', target: null, error: null };
    req.auth = ctx;
    if (rule?.cap === null) return;
    const auth = req.headers.authorization ?? '';
    const bearer = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    ctx.claimed = claimedId(bearer);
    ctx.principal = cp.apitokens.authenticate(bearer);
    ctx.target = targetOf(rule, req);
    // no such route: the not-found handler says so (to a caller with a valid token)
    if (!ctx.known) return;
    const no = refuseRole(ctx.principal, rule, ctx.route);
    if (no) throw no;
  });
  app.addHook('preHandler', async (req) => {
    const ctx = req.auth;
    if (!ctx?.principal || !ctx.rule?.target) return;
    ctx.target = targetOf(ctx.rule, req);
    const no = refuseScope(ctx.principal, ctx.rule, ctx.target);
    if (no) throw no;
  });
  app.addHook('onResponse', async (req, reply) => {
    const ctx = req.auth;
    if (!ctx) return;
    const status = reply.statusCode;
    if (!(status === 401 || status === 403 || (ctx.known && audited(req.method, ctx.rule)))) return;
    const target = ctx.target ?? targetOf(ctx.rule, req);
    cp.audit.record({
      at: Date.now(), principal: ctx.principal ? { id: ctx.principal.id, name: ctx.principal.name } : ctx.rule?.cap === null ? openPrincipal(req) : { id: ctx.claimed, name: '' },
      action: ctx.rule?.cap ?? (ctx.rule ? 'none' : '-'), request: `${req.method} ${req.url.split('?')[0]!.slice(0, 300)}`,
      target: target === null ? null : target.slice(0, 200), from: req.ip, status, error: ctx.error,
    });
  });
}

/** Who called a route that needs no API token (enrolment): the node, and the join token it came with. */
function openPrincipal(req: FastifyRequest): { id: string; name: string } {
  const auth = req.headers.authorization ?? '';
  let id = auth ? '-' : 'node key';
  try { if (auth.startsWith('Bearer ')) id = `join token ${parseJoinToken(auth.slice(7)).id}`; } catch { /* not one: '-' */ }
  const name = (req.body as { name?: unknown } | undefined)?.name;
  return { id, name: typeof name === 'string' ? `node ${name.slice(0, 63)}` : '' };
}
