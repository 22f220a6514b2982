// The HTTP API's frame: the server, authentication, the error shape and the
// manifest body parser. Routes live per resource in src/server/routes/.
// Errors leave in one shape, {"error": {"code", "message", "path"?}}.
import Fastify, { type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { OutpostError, toOutpostError } from '../core/errors.js';
import { parseManifestText } from '../core/manifest.js';
import type { ControlPlane } from './controlplane.js';
import type { AgentGateway } from './gateway.js';
import { tokenMatches } from './tokens.js';
import { appRoutes } from './routes/apps.js';
import { nodeRoutes } from './routes/nodes.js';
import { siteRoutes } from './routes/sites.js';
import { secretRoutes } from './routes/secrets.js';
import { streamRoutes } from './routes/streams.js';
import { trustRoutes } from './routes/trust.js';
import { clusterRoutes } from './routes/cluster.js';
import type { ClusterStatus } from './cluster.js';
import { backupRoutes, type BackupSource } from './routes/backup.js';
import type { TlsMaterial } from './trust/authority.js';

export interface RouteDeps {
  cp: ControlPlane;
  gateway: AgentGateway;
  /** the instances and the leader (one instance on SQLite) */
  cluster: () => Promise<ClusterStatus>;
}

/** Routes anyone may call: health, the CA's certificate, and enrolment (which checks its own credential: a join token or the node's key). */
const OPEN = new Set(['/healthz', '/v1/ca', '/v1/hub-ca', '/v1/enroll']);

export function buildApi(cp: ControlPlane, gateway: AgentGateway, adminToken: string, log: Logger, tls: TlsMaterial | null, cluster: RouteDeps['cluster'], backup: BackupSource | null = null): FastifyInstance {
  // fastify's own per-request logging stays off; errors are logged by the handler below.
  // With TLS, a client may present a certificate (agents do: it is their
  // identity at the agent gateway); API clients authenticate with a token.
  // sessions resume for an hour (the gateway checks the certificate's dates itself: a resumed session skips verification)
  const https = tls ? { key: tls.key, cert: tls.cert, ca: [tls.ca.certPem], requestCert: true, rejectUnauthorized: false, ticketKeys: tls.ticketKeys, sessionTimeout: 3600 } : null;
  const app = (https ? Fastify({ logger: false, bodyLimit: 4 * 1024 * 1024, https }) : Fastify({ logger: false, bodyLimit: 4 * 1024 * 1024 })) as unknown as FastifyInstance;

  app.addHook('onRequest', async (req) => {
    if (OPEN.has(req.url.split('?')[0]!)) return;
    const auth = req.headers.authorization ?? '';
    const token = auth.startsWith('Bearer ') ? auth.slice(7) : '';
    if (!tokenMatches(token, adminToken)) {
      throw new OutpostError('E_UNAUTHORIZED', 'missing or unknown API token: send Authorization: Bearer <admin token> (the CLI reads it from $OUTPOST_DATA_DIR/admin.token or $OUTPOST_TOKEN)');
    }
  });

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

  app.setErrorHandler((err, _req, reply) => {
    const e = toOutpostError(err);
    if (e.status >= 500) log.error({ err }, 'request failed');
    void reply.status(e.status).send({ error: e.toJSON() });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: 'E_NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` } });
  });

  app.get('/healthz', async () => ({ ok: true }));
  const deps: RouteDeps = { cp, gateway, cluster };
  appRoutes(app, deps);
  nodeRoutes(app, deps);
  siteRoutes(app, deps);
  secretRoutes(app, deps);
  streamRoutes(app, deps);
  clusterRoutes(app, deps);
  trustRoutes(app, deps, tls?.trustPem ?? null, tls?.hubCa.certPem ?? null);
  backupRoutes(app, deps, backup);
  return app;
}
