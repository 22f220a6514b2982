// /v1/apps, /v1/replicas and /v1/model: deploy, inspect, roll back and
// remove apps; their replicas, endpoints and logs.
import type { FastifyInstance } from 'fastify';
import { OutpostError } from '../../core/errors.js';
import { NAME_RE, validateApp } from '../../core/manifest.js';
import { numberParam } from '../../core/query.js';
import type { AppRecord, AppView, DeployAnswer, ReplicaRecord } from '../../core/types.js';
import { caller, type RouteDeps } from '../http.js';
import type { RemoveAnswer, UndoAnswer } from '../../contract/api.js';
import { page, type PageQuery } from './page.js';

type ReplicaQuery = PageQuery & { app?: string; node?: string; state?: string };

/** GET /v1/model?samples=N answers at most this many samples: a chart's worth, not a backup */
const MAX_MODEL_SAMPLES = 1000;

export function appRoutes(app: FastifyInstance, { cp, gateway }: RouteDeps): void {
  const s = cp.state;

  app.get<{ Querystring: PageQuery }>('/v1/apps', async (req, reply) =>
    page(s.list('apps'), (a) => a.name, req.query, reply).map((a) => appView(a, s.appReplicas(a.name))));

  // ?after=VERSION&waitMs=N: a long poll, answered as soon as the app or one of
  // its replicas changes from that version (or after N ms, at most 30 s)
  app.get<{ Params: { name: string }; Querystring: { after?: string; waitMs?: string } }>('/v1/apps/:name', async (req) => {
    const name = req.params.name;
    const waitMs = Math.min(numberParam(req.query.waitMs, 'waitMs') ?? 0, 30_000);
    if (req.query.after !== undefined && waitMs > 0 && cp.changes.version(name) === req.query.after) {
      await cp.changes.next(name, waitMs, req.raw);
    }
    const a = s.app(name);
    if (!a) throw new OutpostError('E_NOT_FOUND', `no app named "${name}"`);
    const replicas = s.appReplicas(a.name);
    return { ...appView(a, replicas), version: cp.changes.version(name), replicas };
  });

  // create or update: the body is the manifest, as JSON or as YAML text
  // (application/yaml: the CLI sends its file as it is)
  app.post<{ Querystring: { dryRun?: string } }>('/v1/apps', async (req, reply): Promise<DeployAnswer> => {
    if (req.body === undefined || req.body === null || typeof req.body !== 'object' || Array.isArray(req.body)) {
      throw new OutpostError('E_INVALID', 'the request body must be an app manifest object');
    }
    const spec = validateApp(req.body);
    const existed = s.app(spec.name) !== undefined;
    const dry = req.query.dryRun === '1' || req.query.dryRun === 'true';
    const r = dry ? cp.apps.plan(spec) : await cp.apps.deploy(spec, { cause: 'api', by: who(req) });
    void reply.status(existed || dry ? 200 : 201);
    return { app: r.app.name, revision: r.app.revision ?? null, changed: r.changed, plan: r.plan, removed: r.removed, replicas: r.replicas };
  });

  // ?volumes=true: the agents connected here also remove the app's named volumes
  // (also for an app removed before: a node that was away then is reached now)
  app.delete<{ Params: { name: string }; Querystring: { volumes?: string } }>('/v1/apps/:name', async (req): Promise<RemoveAnswer> => {
    const name = req.params.name;
    if (req.query.volumes !== '1' && req.query.volumes !== 'true') return cp.apps.remove(name);
    const ranOn = new Set(s.appReplicas(name).map((r) => r.node));
    const r = s.app(name) ? await cp.apps.remove(name) : { removed: [] };
    const told = gateway.removeVolumes(name);
    return { ...r, volumes: { told, unreached: [...ranOn].filter((n) => !told.includes(n)).sort() } };
  });
  app.post<{ Params: { name: string } }>('/v1/apps/:name/undo', async (req): Promise<UndoAnswer> => {
    const r = await cp.apps.undo(req.params.name, who(req));
    return { app: r.app.name, revision: r.app.revision ?? 0, changed: r.changed, replicas: r.replicas };
  });

  app.get<{ Params: { name: string }; Querystring: { site?: string; items?: string } }>('/v1/apps/:name/endpoints', async (req) => {
    if (!req.query.site) throw new OutpostError('E_INVALID', 'the site query parameter is required (?site=NAME)', { path: 'site' });
    const items = req.query.items === undefined ? undefined : Number(req.query.items);
    if (items !== undefined && (!Number.isInteger(items) || items < 0)) throw new OutpostError('E_INVALID', 'items must be a non-negative integer', { path: 'items' });
    return cp.sites.endpoints(req.params.name, req.query.site, items);
  });

  // what the site proxies measured, per site, against the declared demand and the model (docs/routing.md)
  app.get<{ Params: { name: string } }>('/v1/apps/:name/demand', async (req) => cp.demand.view(req.params.name));
  // the autopilot's range, standing decision and latest evaluation (docs/routing.md)
  app.get<{ Params: { name: string } }>('/v1/apps/:name/autopilot', async (req) => cp.autopilot.view(req.params.name));

  // ?samples=N: the newest N samples as well, for the dashboard's error-over-time chart
  app.get<{ Querystring: { samples?: string } }>('/v1/model', async (req) => {
    const n = numberParam(req.query.samples, 'samples') ?? 0;
    if (!Number.isInteger(n) || n < 0 || n > MAX_MODEL_SAMPLES) throw new OutpostError('E_INVALID', `samples must be an integer from 0 to ${MAX_MODEL_SAMPLES}`, { path: 'samples' });
    return cp.statuses.modelError(n);
  });

  // ?app=&node=&state= filter; ?limit=&after= pages (by replica id)
  app.get<{ Querystring: ReplicaQuery }>('/v1/replicas', async (req, reply) => {
    const q = req.query;
    let list: ReplicaRecord[] = q.app !== undefined ? s.appReplicas(q.app) : q.node !== undefined ? s.nodeReplicas(q.node) : s.list('replicas');
    if (q.node !== undefined) list = list.filter((r) => r.node === q.node);
    if (q.state !== undefined) list = list.filter((r) => r.state === q.state);
    return page(list, (r) => r.id, q, reply);
  });
  app.get<{ Params: { name: string } }>('/v1/apps/:name/replicas', async (req) => {
    if (!s.app(req.params.name)) throw new OutpostError('E_NOT_FOUND', `no app named "${req.params.name}"`);
    return s.appReplicas(req.params.name);
  });

  // Logs travel through each agent's own outbound connection, streamed as text.
  app.get<{ Params: { name: string }; Querystring: { follow?: string; tail?: string; container?: string; replica?: string } }>('/v1/apps/:name/logs', async (req, reply) => {
    const name = req.params.name;
    if (!NAME_RE.test(name) || !s.app(name)) throw new OutpostError('E_NOT_FOUND', `no app named "${name}"`);
    const follow = req.query.follow === '1' || req.query.follow === 'true';
    const tail = req.query.tail === undefined ? 200 : Number(req.query.tail);
    if (!Number.isInteger(tail) || tail < 0) throw new OutpostError('E_INVALID', 'tail must be a non-negative integer', { path: 'tail' });
    const container = req.query.container;
    if (container !== undefined && !NAME_RE.test(container)) throw new OutpostError('E_INVALID', 'container must be a container name of the app', { path: 'container' });
    let replicas = s.appReplicas(name);
    const one = req.query.replica;
    if (one !== undefined) {
      const r = replicas.find((x) => x.id === one);
      if (!r) throw new OutpostError('E_NOT_FOUND', `app ${name} has no replica "${one}" (its replicas: ${replicas.map((x) => x.id).join(', ') || 'none'})`, { path: 'replica' });
      replicas = [r];
    }
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
        cancels.push(gateway.requestLogs(r.node, r.id, { follow, tail, container },
          (data) => res.write(prefix ? data.replace(/^(?=.)/gm, tag) : data),
          (err) => { if (err) res.write(`${tag}(logs ended: ${err})\n`); done(); }));
      } catch (e) {
        res.write(`${tag}(no logs: ${(e as Error).message})\n`);
        done();
      }
    }
    req.raw.on('close', () => cancels.forEach((c) => c()));
  });
}

/** The caller, as an event names who deployed: the token's name and id. */
function who(req: Parameters<typeof caller>[0]): string {
  const p = caller(req);
  return p.name ? `${p.name} (${p.id})` : p.id;
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
