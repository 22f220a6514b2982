// The HTTP JSON API under /v1. Every route but /healthz needs the admin token.
// Errors leave in one shape, {"error": {"code", "message", "path"?}}, mapped in
// one place (the error handler below).
import Fastify from 'fastify';
import type { Logger } from 'pino';
import { OutpostError, toOutpostError } from '../core/errors.js';
import { NAME_RE, parseManifestText, specHash, validateApp } from '../core/manifest.js';
import { numberParam } from '../core/query.js';
import type { ControlPlane } from './controlplane.js';
import type { AgentGateway } from './gateway.js';
import { tokenMatches } from './tokens.js';
import type { AppRecord, AppView, DeployAnswer, StreamRow } from '../core/types.js';

export function buildApi(cp: ControlPlane, gateway: AgentGateway, adminToken: string, log: Logger) {
  // fastify's own per-request logging stays off; errors are logged by the handler below
  const app = Fastify({ logger: false, bodyLimit: 4 * 1024 * 1024 });

  app.addHook('onRequest', async (req) => {
    if (req.url === '/healthz') return;
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

  app.get('/v1/nodes', async () => cp.store.listNodes());
  app.get<{ Params: { name: string } }>('/v1/nodes/:name', async (req) => {
    const n = cp.store.getNode(req.params.name);
    if (!n) throw new OutpostError('E_NOT_FOUND', `no node named "${req.params.name}"`);
    return n;
  });

  app.get('/v1/apps', async () => {
    const replicas = cp.store.listReplicas();
    return cp.store.listApps().map((a) => appView(a, replicas.filter((r) => r.app === a.name)));
  });
  // ?after=VERSION&waitMs=N: a long poll, answered as soon as the app or one of
  // its replicas changes from that version (or after N ms, at most 30 s)
  app.get<{ Params: { name: string }; Querystring: { after?: string; waitMs?: string } }>('/v1/apps/:name', async (req) => {
    const name = req.params.name;
    const waitMs = Math.min(numberParam(req.query.waitMs, 'waitMs') ?? 0, 30_000);
    if (req.query.after !== undefined && waitMs > 0 && cp.changes.version(name) === req.query.after) {
      await cp.changes.next(name, waitMs, req.raw);
    }
    const a = cp.store.getApp(name);
    if (!a) throw new OutpostError('E_NOT_FOUND', `no app named "${name}"`);
    const replicas = cp.store.listReplicas(a.name);
    return { ...appView(a, replicas), version: cp.changes.version(name), replicas };
  });

  // create or update: the body is the manifest, as JSON or as YAML text
  // (application/yaml: the CLI sends its file as it is)
  app.post<{ Querystring: { dryRun?: string } }>('/v1/apps', async (req, reply): Promise<DeployAnswer> => {
    if (req.body === undefined || req.body === null || typeof req.body !== 'object' || Array.isArray(req.body)) {
      throw new OutpostError('E_INVALID', 'the request body must be an app manifest object');
    }
    const spec = validateApp(req.body);
    const existed = cp.store.getApp(spec.name) !== undefined;
    const dry = req.query.dryRun === '1' || req.query.dryRun === 'true';
    const t = Date.now();
    const r = dry
      ? cp.reconcileApp({ name: spec.name, spec, specHash: specHash(spec), createdAt: t, updatedAt: t }, false)
      : cp.deploy(spec);
    void reply.status(existed || dry ? 200 : 201);
    return { app: r.app.name, revision: r.app.revision ?? null, changed: r.changed, plan: r.plan, removed: r.removed, replicas: r.replicas };
  });

  app.delete<{ Params: { name: string } }>('/v1/apps/:name', async (req) => cp.remove(req.params.name));
  app.post<{ Params: { name: string } }>('/v1/apps/:name/undo', async (req) => {
    const r = cp.undo(req.params.name);
    return { app: r.app.name, revision: r.app.revision, changed: r.changed, replicas: r.replicas };
  });

  // data hub streams: per (node, stream) what the control plane holds and the hub's accounting
  app.get('/v1/streams', async () => streamsView(cp));
  app.get<{ Params: { name: string }; Querystring: { node?: string; from?: string; to?: string; limit?: string } }>('/v1/streams/:name', async (req) => {
    const q = req.query;
    return cp.streams?.windows(req.params.name, { node: q.node, from: numberParam(q.from, 'from'), to: numberParam(q.to, 'to'), limit: numberParam(q.limit, 'limit') }) ?? [];
  });

  app.get('/v1/sites', async () => cp.sitesView());
  app.post<{ Body: { name?: unknown; probe?: unknown } }>('/v1/sites', async (req, reply) => {
    const b = req.body ?? {};
    if (typeof b.name !== 'string') throw new OutpostError('E_INVALID', 'name is required', { path: 'name' });
    if (typeof b.probe !== 'string') throw new OutpostError('E_INVALID', 'probe (HOST:PORT) is required', { path: 'probe' });
    void reply.status(201);
    return cp.addSite(b.name, b.probe);
  });
  app.delete<{ Params: { name: string } }>('/v1/sites/:name', async (req) => {
    cp.removeSite(req.params.name);
    return { removed: req.params.name };
  });
  // RTTs declared for a node that cannot probe: {"site": ms, "other": null to remove}
  app.put<{ Params: { name: string }; Body: Record<string, number | null> }>('/v1/nodes/:name/rtt', async (req) => {
    if (!req.body || typeof req.body !== 'object' || Array.isArray(req.body)) throw new OutpostError('E_INVALID', 'body must be an object of site -> ms');
    return cp.declareRtt(req.params.name, req.body);
  });

  app.get<{ Params: { name: string }; Querystring: { site?: string; items?: string } }>('/v1/apps/:name/endpoints', async (req) => {
    if (!req.query.site) throw new OutpostError('E_INVALID', 'the site query parameter is required (?site=NAME)', { path: 'site' });
    const items = req.query.items === undefined ? undefined : Number(req.query.items);
    if (items !== undefined && (!Number.isInteger(items) || items < 0)) throw new OutpostError('E_INVALID', 'items must be a non-negative integer', { path: 'items' });
    return cp.endpoints(req.params.name, req.query.site, items);
  });

  app.get('/v1/model', async () => cp.modelError());

  app.get<{ Querystring: { app?: string } }>('/v1/replicas', async (req) => cp.store.listReplicas(req.query.app));
  app.get<{ Params: { name: string } }>('/v1/apps/:name/replicas', async (req) => {
    if (!cp.store.getApp(req.params.name)) throw new OutpostError('E_NOT_FOUND', `no app named "${req.params.name}"`);
    return cp.store.listReplicas(req.params.name);
  });

  // Logs travel through each agent's own outbound connection, streamed as text.
  app.get<{ Params: { name: string }; Querystring: { follow?: string; tail?: string } }>('/v1/apps/:name/logs', async (req, reply) => {
    const name = req.params.name;
    if (!NAME_RE.test(name) || !cp.store.getApp(name)) throw new OutpostError('E_NOT_FOUND', `no app named "${name}"`);
    const follow = req.query.follow === '1' || req.query.follow === 'true';
    const tail = req.query.tail === undefined ? 200 : Number(req.query.tail);
    if (!Number.isInteger(tail) || tail < 0) throw new OutpostError('E_INVALID', 'tail must be a non-negative integer', { path: 'tail' });
    const replicas = cp.store.listReplicas(name);
    const prefix = replicas.length > 1;
    reply.hijack();
    const res = reply.raw;
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-cache' });
    let open = replicas.length;
    const cancels: (() => void)[] = [];
    const done = () => { if (--open <= 0) res.end(); };
    if (open === 0) res.end();
    for (const r of replicas) {
      const tag = prefix ? `[${r.id}] ` : '';
      try {
        cancels.push(gateway.requestLogs(r.node, r.id, { follow, tail },
          (data) => res.write(prefix ? data.replace(/^(?=.)/gm, tag) : data),
          (err) => { if (err) res.write(`${tag}(logs ended: ${err})\n`); done(); }));
      } catch (e) {
        res.write(`${tag}(no logs: ${(e as Error).message})\n`);
        done();
      }
    }
    req.raw.on('close', () => cancels.forEach((c) => c()));
  });

  return app;
}

function appView(a: AppRecord, replicas: { state: string }[]): AppView {
  const spec = a.spec;
  return {
    name: a.name,
    image: spec.image ?? null,
    command: spec.command ?? null,
    replicas: spec.replicas,
    running: replicas.filter((r) => r.state === 'running').length,
    specHash: a.specHash,
    revision: a.revision ?? null,
    rollout: a.rollout ?? null,
    history: (a.history ?? []).map((h) => ({ revision: h.revision, specHash: h.specHash, at: h.at, status: h.status })),
    spec: a.spec,
    createdAt: a.createdAt,
    updatedAt: a.updatedAt,
  };
}


/** One row per (node, stream): windows held here, and that node's hub accounting for the stream. */
function streamsView(cp: ControlPlane): StreamRow[] {
  const held = cp.streams?.summary() ?? [];
  const rows = new Map(held.map((h) => [`${h.node}/${h.stream}`, { ...h }]));
  const nodes = cp.store.listNodes();
  for (const n of nodes) {
    for (const s of Object.keys(n.hubStats?.streams ?? {})) {
      if (!rows.has(`${n.name}/${s}`)) rows.set(`${n.name}/${s}`, { node: n.name, stream: s, windows: 0, firstStart: null, lastEnd: null });
    }
  }
  return [...rows.values()].sort((a, b) => a.stream.localeCompare(b.stream) || a.node.localeCompare(b.node)).map((r) => {
    const hs = nodes.find((n) => n.name === r.node)?.hubStats ?? null;
    const s = hs?.streams[r.stream] ?? null;
    return {
      ...r,
      pointsIn: s?.pointsIn ?? null, bytesIn: s?.bytesIn ?? null, rejected: s?.rejected ?? null, late: s?.late ?? null, windowsEmitted: s?.windows ?? null,
      hub: hs && { bytesIn: hs.bytesIn, bytesForwarded: hs.bytesForwarded, reduction: hs.reduction, queueDepth: hs.queueDepth, oldestUnsentMs: hs.oldestUnsentMs, rejected: hs.rejected },
    };
  });
}
