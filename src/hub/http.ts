// The hub's HTTP side: devices post points, people and apps query what is
// stored. A request carries a device's token (`Authorization: Bearer
// NAME.SECRET`) unless the hub allows anonymous clients; a device posts to and
// reads only its streams. Browsers are kept out: a page on another site could
// otherwise post through a victim's browser on the hub's network (a
// `text/plain` POST needs no preflight), so bodies must be JSON or NDJSON and
// a request with an `Origin` is refused unless that origin is allowed. Bodies
// may come gzip- or deflate-compressed, and a batch with an Idempotency-Key
// is stored once however often it is sent.
import crypto from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { SecureContextOptions } from 'node:tls';
import type { Logger } from 'pino';
import { OutpostError, toOutpostError } from '../core/errors.js';
import { mayUseStream, parseBearer, type Principal } from '../core/devices.js';
import { parseBody } from '../core/points.js';
import { numberParam } from '../core/query.js';
import type { DataHub, Idempotency } from './hub.js';
import type { DeviceTable } from './devices.js';
import type { WorkloadTokens } from './identity.js';
import { looksLikeJwt } from '../core/jwt.js';
import { codingOf, decodeBody } from './encoding.js';

const BODY_LIMIT = 16 * 1024 * 1024;

export interface HubHttpOptions {
  devices: DeviceTable;
  /** requests without a token are served (a closed network) */
  anonymous: boolean;
  /** origins (`https://dash.example`) whose pages may call the hub; others' requests are refused */
  allowOrigins: string[];
  /** replicas' identity tokens (absent: only devices) */
  identity?: WorkloadTokens | null;
  /** HTTPS with this certificate and key */
  tls?: SecureContextOptions | null;
}

/** JSON, or NDJSON (newline-delimited: each line a point or an array); null for anything else. */
function bodyKind(type: string | undefined): 'json' | 'ndjson' | null {
  const t = (type ?? '').split(';')[0]!.trim().toLowerCase();
  if (t === 'application/json' || /^application\/[a-z0-9.-]+\+json$/.test(t)) return 'json';
  if (/^application\/(x-)?(ndjson|jsonl|jsonlines)$/.test(t)) return 'ndjson';
  return null;
}

/** A body as the route gets it: its text (decompressed) and its size on the wire (what `bytesIn` counts). */
interface Body { text: string; wire: number }

/** The device each request authenticated as ('' for an anonymous client): its Idempotency-Keys are its own. */
const deviceOf = new WeakMap<object, string>();

/** An `Idempotency-Key` header: 1-128 printable ASCII characters (an sf-string's quotes are dropped); null when absent. */
function idempotencyKey(h: string | string[] | undefined): string | null {
  if (h === undefined) return null;
  const k = (Array.isArray(h) ? h.join(',') : h).trim().replace(/^"(.*)"$/, '$1');
  if (!/^[\x20-\x7e]{1,128}$/.test(k)) throw new OutpostError('E_INVALID', 'an Idempotency-Key is 1 to 128 printable ASCII characters', { path: 'idempotency-key' });
  return k;
}

function range(q: { from?: string; to?: string; limit?: string }, maxLimit: number) {
  const limit = numberParam(q.limit, 'limit') ?? maxLimit;
  return { from: numberParam(q.from, 'from') ?? 0, to: numberParam(q.to, 'to') ?? 8.64e15, limit: Math.min(maxLimit, Math.max(1, limit)) };
}

export function buildHubHttp(hub: DataHub, log: Logger, o: HubHttpOptions): FastifyInstance {
  const app = Fastify({ logger: false, bodyLimit: BODY_LIMIT, ...(o.tls ? { https: o.tls } : {}) }) as unknown as FastifyInstance;
  // bodies are parsed by the hub itself, to name the first bad value
  app.removeAllContentTypeParsers();
  // compressed bodies are read as they came (the wire size is what the limit
  // caps first), then decompressed under the same limit
  app.addContentTypeParser('*', { parseAs: 'buffer' }, async (req: FastifyRequest, raw: Buffer): Promise<Body> =>
    ({ text: await decodeBody(raw, codingOf(req.headers['content-encoding']), BODY_LIMIT), wire: raw.length }));

  app.setErrorHandler((err, req, reply) => {
    const e = toOutpostError(err);
    const stream = (req.params as { stream?: string } | undefined)?.stream;
    // a body that is not JSON, or compressed in a way the hub does not read, is 415, not the 400 of E_INVALID
    const unsupported = e.code === 'E_INVALID' && (e.path === 'content-type' || e.path === 'content-encoding');
    if (e.code === 'E_UNAUTHORIZED' || e.code === 'E_FORBIDDEN' || unsupported) {
      hub.refuse(e.code, { transport: 'http', route: `${req.method} ${req.url.split('?')[0]}`, device: parseBearer(req.headers.authorization)?.name, origin: req.headers.origin, why: e.message });
    } else if (req.method === 'POST') hub.reject(e.code, stream && hub.streamNames().includes(stream) ? stream : null);
    if (e.status >= 500) log.error({ err }, 'hub request failed');
    if (e.code === 'E_UNAUTHORIZED') void reply.header('www-authenticate', 'Bearer realm="outpost-hub"');
    void reply.status(unsupported ? 415 : e.status).send({ error: e.toJSON() });
  });

  // before the body is read: a refused request costs no more than its headers
  app.addHook('onRequest', async (req, reply) => {
    const origin = req.headers.origin;
    if (origin !== undefined) {
      if (!o.allowOrigins.includes(origin)) throw new OutpostError('E_FORBIDDEN', `requests from pages of ${origin} are refused (allowOrigins in the hub config)`, { path: 'origin' });
      void reply.header('access-control-allow-origin', origin).header('vary', 'origin');
      // the preflight of an allowed origin's page: no token on it, by the rules of CORS
      if (req.method === 'OPTIONS') {
        return reply.status(204).header('access-control-allow-methods', 'GET, POST').header('access-control-allow-headers', 'authorization, content-type').header('access-control-max-age', '600').send();
      }
    }
    if (req.url === '/healthz') return;
    const cred = parseBearer(req.headers.authorization);
    const jwt = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    let who: Principal | null = null;
    // a replica's identity token: refused with the reason (expired, bad signature, another node's)
    if (o.identity && jwt && looksLikeJwt(jwt)) who = o.identity.authenticate(jwt);
    else if (cred) who = o.devices.authenticate(cred.name, cred.secret);
    else if (req.headers.authorization === undefined && o.anonymous) who = 'anonymous';
    if (who) deviceOf.set(req.raw, who === 'anonymous' ? '' : who.name);
    if (!who) {
      throw new OutpostError('E_UNAUTHORIZED', req.headers.authorization === undefined
        ? 'this hub serves devices with credentials: send Authorization: Bearer NAME.SECRET'
        : 'unknown device or wrong secret (Authorization: Bearer NAME.SECRET)');
    }
    const stream = (req.params as { stream?: string } | undefined)?.stream;
    if (stream !== undefined && !mayUseStream(who, stream)) {
      throw new OutpostError('E_FORBIDDEN', `"${(who as { name: string }).name}" has no right to the stream "${stream}"`, { path: 'stream' });
    }
    if (req.method === 'POST' && !bodyKind(req.headers['content-type'])) {
      throw new OutpostError('E_INVALID', `send points as application/json or application/x-ndjson, not ${req.headers['content-type'] ?? 'no content-type'}`, { path: 'content-type' });
    }
    if (req.method === 'POST') codingOf(req.headers['content-encoding']);
  });

  app.get('/healthz', async () => ({ ok: true }));
  app.get('/v1/stats', async () => hub.stats());
  app.get('/v1/streams', async () => {
    const s = hub.stats().streams;
    return hub.streamNames().map((name) => ({ name, ...s[name] }));
  });

  app.post<{ Params: { stream: string }; Body: Body | undefined }>('/v1/streams/:stream/points', async (req, reply) => {
    const { text, wire } = req.body ?? { text: '', wire: 0 };
    const stream = req.params.stream;
    if (!hub.streamNames().includes(stream)) {
      throw new OutpostError('E_UNKNOWN_STREAM', `no app on this node declares the stream "${stream}"`, { path: 'stream' });
    }
    const kind = bodyKind(req.headers['content-type']);
    const key = idempotencyKey(req.headers['idempotency-key']);
    const id: Idempotency | undefined = key === null ? undefined
      : { device: deviceOf.get(req.raw) ?? '', key, digest: crypto.createHash('sha256').update(`${kind}\n`).update(text).digest('hex') };
    // a re-send: the first answer, nothing stored (nothing awaited from here to ingest(), so copies racing in are stored once)
    const prior = id ? hub.prior(stream, id) : null;
    if (prior) {
      const first = await prior;
      void reply.header('idempotent-replayed', 'true');
      return first;
    }
    const batch = parseBody(text, kind === 'ndjson', Date.now(), hub.pointRules(stream));
    // a device's points carry its name (a stream grouped by device windows by it)
    batch.device = deviceOf.get(req.raw) || null;
    // accepted points are stored; late ones (for a window already emitted) and filtered ones count no further
    return await hub.ingest(stream, batch, wire, id);
  });

  app.get<{ Params: { stream: string }; Querystring: { from?: string; to?: string; limit?: string } }>('/v1/streams/:stream/windows', async (req) => {
    const r = range(req.query, 10_000);
    return hub.store.windows(req.params.stream, r.from, r.to, r.limit);
  });
  app.get<{ Params: { stream: string }; Querystring: { from?: string; to?: string; limit?: string } }>('/v1/streams/:stream/points', async (req) => {
    const r = range(req.query, 100_000);
    return hub.store.points(req.params.stream, r.from, r.to, r.limit);
  });

  app.setNotFoundHandler((req, reply) => {
    void reply.status(404).send({ error: { code: 'E_NOT_FOUND', message: `no route ${req.method} ${req.url.split('?')[0]}` } });
  });
  return app;
}
